/*
 * End to end: the crmbridge binary, run as an admin would run it, against the Zoho CRM and Jira
 * Cloud simulators. Each test checks what a user sees on both sides (and in the exit code and
 * output), that a following run writes nothing, and that faults leave nothing duplicated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/strbuf.h"
#include "tests/unit/testutil.h"

struct e2e {
    struct sim zoho, jira;
    char *dir;
    char conf[600];
};

static void write_conf(struct e2e *e, const char *extra_pair)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "state_dir = \"%s/state\";\n"
             "endpoints = {\n"
             "  zoho = { type = \"zoho\"; accounts_url = \"%s\"; api_url = \"%s\";\n"
             "    client_id = \"1000.SIMCLIENT\"; client_secret = \"env:CB_TEST_ZOHO_SECRET\";\n"
             "    refresh_token = \"file:%s/zoho.token\"; };\n"
             "  jira = { type = \"jira\"; api_url = \"%s\"; email = \"bot@acme.test\";\n"
             "    api_token = \"env:CB_TEST_JIRA_TOKEN\"; search_lag = 0; };\n"
             "};\n"
             "pairs = ( { name = \"feedback\";\n"
             "  crm = { endpoint = \"zoho\"; module = \"Cases\"; };\n"
             "  tracker = { endpoint = \"jira\"; project = \"SUP\"; issue_type = \"Task\"; };\n"
             "  overlap = 5; %s } );\n",
             e->dir, e->zoho.base, e->zoho.base, e->dir, e->jira.base, extra_pair ? extra_pair : "");
    assert_int_equal(tu_write_file(e->conf, text), 0);
}

static int setup(void **state)
{
    struct e2e *e = calloc(1, sizeof(*e));
    e->dir = tu_tmpdir();
    assert_int_equal(sim_start(&e->zoho, "zoho", NULL), 0);
    assert_int_equal(sim_start(&e->jira, "jira", NULL), 0);
    char tok[600];
    snprintf(tok, sizeof(tok), "%s/zoho.token", e->dir);
    assert_int_equal(tu_write_file(tok, "1000.sim-refresh-token\n"), 0);
    setenv("CB_TEST_ZOHO_SECRET", "sim-client-secret", 1);
    setenv("CB_TEST_JIRA_TOKEN", "sim-jira-token", 1);
    snprintf(e->conf, sizeof(e->conf), "%s/crmbridge.conf", e->dir);
    write_conf(e, NULL);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct e2e *e = *state;
    sim_stop(&e->zoho);
    sim_stop(&e->jira);
    tu_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

static int run(struct e2e *e, char **out, const char *a1, const char *a2)
{
    char *o = NULL;
    int rc = tu_run_crmbridge(&o, "-c", e->conf, a1, a2, (char *)NULL);
    if (rc != 0 && rc != 1)
        fprintf(stderr, "crmbridge %s %s -> %d:\n%s\n", a1, a2 ? a2 : "", rc, o);
    if (out)
        *out = o;
    else
        free(o);
    return rc;
}

static int sync_once(struct e2e *e)
{
    return run(e, NULL, "sync", "--once");
}

/* Requests that change data (reads over POST excluded). */
static int writes(const struct sim *s)
{
    static const char *const reads[] = {"/rest/api/3/search", "/rest/api/3/issue/bulkfetch",
                                        "/crm/v8/coql", "/oauth/v2/token", NULL};
    cJSON *log = sim_call(s, "GET", "/_sim/log", NULL, NULL);
    int n = 0;
    const cJSON *en;
    cJSON_ArrayForEach(en, log)
    {
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(en, "method"));
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(en, "path"));
        if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
            continue;
        int read = 0;
        for (int i = 0; reads[i]; i++)
            if (!strncmp(p, reads[i], strlen(reads[i])))
                read = 1;
        n += !read;
    }
    cJSON_Delete(log);
    return n;
}

static void assert_quiet(struct e2e *e)
{
    sim_clear_log(&e->zoho);
    sim_clear_log(&e->jira);
    assert_int_equal(sync_once(e), 0);
    assert_int_equal(writes(&e->zoho), 0);
    assert_int_equal(writes(&e->jira), 0);
}

static cJSON *jira_issues(struct e2e *e)
{
    return sim_call(&e->jira, "GET", "/_sim/issues", NULL, NULL);
}

static cJSON *jira_issue(struct e2e *e, const char *key)
{
    cJSON *all = jira_issues(e), *found = NULL;
    const cJSON *i;
    cJSON_ArrayForEach(i, all)
    {
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(i, "key")), key))
            found = cJSON_Duplicate(i, 1);
    }
    cJSON_Delete(all);
    assert_non_null(found);
    return found;
}

static const char *jfield(const cJSON *issue, const char *f)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(issue, "fields"), f);
    if (cJSON_IsObject(v)) {
        const cJSON *n = cJSON_GetObjectItem(v, "name");
        return n ? cJSON_GetStringValue(n) : cJSON_GetStringValue(cJSON_GetObjectItem(v, "value"));
    }
    return cJSON_GetStringValue(v);
}

static cJSON *zoho_case(struct e2e *e, const char *id)
{
    cJSON *all = sim_call(&e->zoho, "GET", "/_sim/records?module=Cases", NULL, NULL);
    cJSON *found = NULL;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data"))
    {
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r, "id")), id))
            found = cJSON_Duplicate(r, 1);
    }
    cJSON_Delete(all);
    assert_non_null(found);
    return found;
}

static const char *zfield(const cJSON *c, const char *f)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(c, f));
}

/* Seeds one case; returns its id (caller frees). */
static char *seed_case(struct e2e *e, const char *fields_json)
{
    struct strbuf b = STRBUF_INIT;
    (void)strbuf_addf(&b, "{\"module\":\"Cases\",\"records\":[%s]}", fields_json);
    cJSON *r = sim_ctl(&e->zoho, "POST", "/_sim/seed", "%s", b.buf);
    strbuf_release(&b);
    const cJSON *ids = cJSON_GetObjectItem(r, "ids");
    char *id = strdup(cJSON_GetStringValue(cJSON_GetArrayItem(ids, 0)));
    cJSON_Delete(r);
    return id;
}

static char *linked_key(struct e2e *e, const char *case_id)
{
    cJSON *c = zoho_case(e, case_id);
    const char *k = zfield(c, "Jira_Issue");
    char *key = k ? strdup(k) : NULL;
    cJSON_Delete(c);
    return key;
}

static void test_case_becomes_issue_then_quiet(void **state)
{
    struct e2e *e = *state;
    char *id = seed_case(e, "{\"Subject\":\"Export to Excel is too slow\",\"Status\":\"New\","
                            "\"Priority\":\"High\",\"Due_Date\":\"2026-12-24\","
                            "\"Description\":\"Takes minutes:\\n* CSV\\n* XLSX\"}");
    char *out = NULL;
    assert_int_equal(run(e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "created 0 in crm, 1 in tracker"));
    free(out);
    char *key = linked_key(e, id);
    assert_non_null(key);
    cJSON *issue = jira_issue(e, key);
    assert_string_equal(jfield(issue, "summary"), "Export to Excel is too slow");
    assert_string_equal(jfield(issue, "priority"), "High");
    assert_string_equal(jfield(issue, "status"), "To Do");
    assert_string_equal(jfield(issue, "duedate"), "2026-12-24");
    const cJSON *desc = cJSON_GetObjectItem(cJSON_GetObjectItem(issue, "fields"), "description");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(desc, "type")), "doc");
    char *adf = cJSON_PrintUnformatted(desc);
    assert_non_null(strstr(adf, "bulletList"));
    cJSON_free(adf);
    cJSON_Delete(issue);
    assert_quiet(e);
    assert_quiet(e);
    free(key);
    free(id);
}

static void test_jira_done_reaches_zoho(void **state)
{
    struct e2e *e = *state;
    char *id = seed_case(e, "{\"Subject\":\"SSO with WeCom\",\"Status\":\"New\"}");
    assert_int_equal(sync_once(e), 0);
    char *key = linked_key(e, id);
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/transition",
                         "{\"key\":\"%s\",\"to\":\"Done\",\"user\":\"Mia Krystof\"}", key));
    assert_int_equal(sync_once(e), 0);
    cJSON *c = zoho_case(e, id);
    assert_string_equal(zfield(c, "Status"), "Closed");
    cJSON_Delete(c);
    assert_quiet(e);
    free(key);
    free(id);
}

static void test_merge_and_conflict(void **state)
{
    struct e2e *e = *state;
    char *id = seed_case(e, "{\"Subject\":\"Invoice PDF\",\"Priority\":\"Low\",\"Status\":\"New\"}");
    assert_int_equal(sync_once(e), 0);
    char *key = linked_key(e, id);
    /* different fields on each side: both survive */
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Priority\":\"High\"},"
                         "\"user\":\"Li Wei\"}", id));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"summary\":\"Invoice PDF tax rate\"},"
                         "\"user\":\"Mia Krystof\"}", key));
    assert_int_equal(sync_once(e), 0);
    cJSON *c = zoho_case(e, id), *i = jira_issue(e, key);
    assert_string_equal(zfield(c, "Subject"), "Invoice PDF tax rate");
    assert_string_equal(jfield(i, "priority"), "High");
    cJSON_Delete(c);
    cJSON_Delete(i);
    /* the same field differently on both sides: one conflict, neither overwritten */
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Subject\":\"VAT wrong\"},"
                         "\"user\":\"Li Wei\"}", id));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"summary\":\"Rounding bug\"},"
                         "\"user\":\"Mia Krystof\"}", key));
    char *out = NULL;
    assert_int_equal(run(e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "1 conflict(s) held"));
    free(out);
    c = zoho_case(e, id);
    i = jira_issue(e, key);
    assert_string_equal(zfield(c, "Subject"), "VAT wrong");
    assert_string_equal(jfield(i, "summary"), "Rounding bug");
    cJSON_Delete(c);
    cJSON_Delete(i);
    assert_quiet(e);
    assert_int_equal(run(e, &out, "conflicts", "list"), 0);
    assert_non_null(strstr(out, "title"));
    free(out);
    char *json = NULL;
    assert_int_equal(tu_run_crmbridge(&json, "-c", e->conf, "conflicts", "list", "--json", (char *)NULL), 0);
    cJSON *arr = cJSON_Parse(json);
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    const cJSON *k = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(k, "base")), "Invoice PDF tax rate");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(k, "crm"), "value")), "VAT wrong");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(k, "tracker"), "value")), "Rounding bug");
    cJSON_Delete(arr);
    free(json);
    free(key);
    free(id);
}

static int count_issues(struct e2e *e)
{
    cJSON *all = jira_issues(e);
    int n = cJSON_GetArraySize(all);
    cJSON_Delete(all);
    return n;
}

static void test_lost_create_response(void **state)
{
    struct e2e *e = *state;
    char *id = seed_case(e, "{\"Subject\":\"Audit trail export\",\"Status\":\"New\"}");
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"POST\",\"path\":\"/rest/api/3/issue\","
                         "\"kind\":\"drop_response\",\"count\":1}]}"));
    char *out = NULL;
    run(e, &out, "sync", "--once");
    assert_non_null(strstr(out, "postponed"));
    free(out);
    assert_int_equal(count_issues(e), 1); /* the create landed, its answer was lost */
    assert_null(linked_key(e, id));
    assert_int_equal(run(e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "1 linked after recovery"));
    free(out);
    assert_int_equal(count_issues(e), 1);
    char *key = linked_key(e, id);
    assert_non_null(key);
    assert_quiet(e);
    free(key);
    free(id);
}

static void test_2500_cases(void **state)
{
    struct e2e *e = *state;
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"count\":2500}"));
    /* a generous Jira rate so the test measures correctness, not the limiter */
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/config",
                         "{\"rate\":{\"GET\":2000,\"POST\":2000,\"PUT\":2000}}"));
    assert_int_equal(sync_once(e), 0);
    assert_int_equal(count_issues(e), 2500);
    cJSON *all = sim_call(&e->zoho, "GET", "/_sim/records?module=Cases", NULL, NULL);
    int linked = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data"))
        linked += zfield(r, "Jira_Issue") != NULL;
    cJSON_Delete(all);
    assert_int_equal(linked, 2500);
    assert_quiet(e);
}

static void test_bad_config(void **state)
{
    struct e2e *e = *state;
    assert_int_equal(tu_write_file(e->conf,
                                   "state_dir = 5;\n"
                                   "endpoints = { z = { type = \"zoho\"; api_url = \"http://x\"; }; };\n"
                                   "pairs = ( { name = \"p\"; crm = { endpoint = \"z\"; };\n"
                                   "            tracker = { endpoint = \"nowhere\"; }; interval = \"often\"; } );\n"),
                     0);
    char *out = NULL;
    assert_int_equal(run(e, &out, "sync", "--once"), 2);
    assert_non_null(strstr(out, "crmbridge.conf:1:"));
    assert_non_null(strstr(out, "crmbridge.conf:4:"));
    assert_non_null(strstr(out, "nowhere"));
    free(out);
    assert_int_equal(tu_write_file(e->conf, "endpoints = {\n"), 0);
    assert_int_equal(run(e, &out, "check", NULL), 2);
    assert_non_null(strstr(out, "crmbridge.conf:"));
    free(out);
}

static void test_expired_token_and_reuse(void **state)
{
    struct e2e *e = *state;
    char *id = seed_case(e, "{\"Subject\":\"Token test\",\"Status\":\"New\"}");
    assert_int_equal(sync_once(e), 0);
    assert_int_equal(sync_once(e), 0);
    cJSON *st = sim_call(&e->zoho, "GET", "/_sim/stats", NULL, NULL);
    /* the token is kept (encrypted) in the cache and reused by the next run */
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "tokens_minted")), 1);
    cJSON_Delete(st);
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/expire_tokens", NULL));
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Priority\":\"High\"}}", id));
    assert_int_equal(sync_once(e), 0);
    char *key = linked_key(e, id);
    cJSON *i = jira_issue(e, key);
    assert_string_equal(jfield(i, "priority"), "High");
    cJSON_Delete(i);
    st = sim_call(&e->zoho, "GET", "/_sim/stats", NULL, NULL);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "tokens_minted")), 2);
    cJSON_Delete(st);
    /* the token never reaches the output, and the cache holds it only encrypted */
    char *out = NULL;
    assert_int_equal(tu_run_crmbridge(&out, "-v", "-c", e->conf, "sync", "--once", (char *)NULL), 0);
    assert_null(strstr(out, "sim-client-secret"));
    assert_null(strstr(out, "sim-jira-token"));
    assert_null(strstr(out, "1000.sim-refresh-token"));
    free(out);
    free(key);
    free(id);
}

static void test_rate_limit_storm_and_5xx_burst(void **state)
{
    struct e2e *e = *state;
    char *id = seed_case(e, "{\"Subject\":\"Storm\",\"Status\":\"New\"}");
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"path\":\"/rest/api/3/search/jql\",\"kind\":\"status\","
                         "\"status\":429,\"retry_after\":1,\"count\":2}]}"));
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"GET\",\"path\":\"/crm/v8/Cases\",\"kind\":\"status\","
                         "\"status\":500,\"count\":2}]}"));
    assert_int_equal(sync_once(e), 0);
    char *key = linked_key(e, id);
    assert_non_null(key);
    /* a storm longer than the retries: the run fails cleanly, the next one converges */
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Priority\":\"Low\"}}", id));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"path\":\"/rest/api/3/.*\",\"kind\":\"status\","
                         "\"status\":503,\"count\":-1}]}"));
    char *out = NULL;
    assert_int_equal(run(e, &out, "sync", "--once"), 3);
    assert_non_null(strstr(out, "error:"));
    free(out);
    cJSON_Delete(sim_call(&e->jira, "DELETE", "/_sim/faults", NULL, NULL));
    assert_int_equal(sync_once(e), 0);
    cJSON *i = jira_issue(e, key);
    assert_string_equal(jfield(i, "priority"), "Low");
    cJSON_Delete(i);
    assert_int_equal(count_issues(e), 1);
    assert_quiet(e);
    free(key);
    free(id);
}

/* The daemon syncs on its interval and stops cleanly on SIGTERM with exit 0. */
static void test_daemon_interval_and_sigterm(void **state)
{
    struct e2e *e = *state;
    write_conf(e, "interval = 1;");
    char *id = seed_case(e, "{\"Subject\":\"Daemon\",\"Status\":\"New\"}");
    char log[700];
    snprintf(log, sizeof(log), "%s/daemon.log", e->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        dup2(2, 1);
        const char *bin = tu_crmbridge_bin();
        execl(bin, bin, "-c", e->conf, "daemon", (char *)NULL);
        _exit(127);
    }
    char *key = NULL;
    for (int i = 0; i < 100 && !key; i++) {
        usleep(100 * 1000);
        key = linked_key(e, id);
    }
    assert_non_null(key);
    /* a later edit is picked up by a later cycle without restarting */
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/transition",
                         "{\"key\":\"%s\",\"to\":\"In Progress\",\"user\":\"Mia Krystof\"}", key));
    int synced = 0;
    for (int i = 0; i < 100 && !synced; i++) {
        usleep(100 * 1000);
        cJSON *c = zoho_case(e, id);
        synced = zfield(c, "Status") && !strcmp(zfield(c, "Status"), "Escalated");
        cJSON_Delete(c);
    }
    assert_true(synced);
    kill(pid, SIGTERM);
    int ws = 0;
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, &ws, WNOHANG) == pid)
            break;
        usleep(100 * 1000);
    }
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    free(key);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_case_becomes_issue_then_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jira_done_reaches_zoho, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_and_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_create_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_token_and_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_storm_and_5xx_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_interval_and_sigterm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_2500_cases, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
