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
#include "tests/unit/e2e.h"

static void test_case_becomes_issue_then_quiet(void **state)
{
    struct e2e *e = *state;
    char *id = e2e_seed_case(e, "{\"Subject\":\"Export to Excel is too slow\",\"Status\":\"New\","
                            "\"Priority\":\"High\",\"Due_Date\":\"2026-12-24\","
                            "\"Description\":\"Takes minutes:\\n* CSV\\n* XLSX\"}");
    char *out = NULL;
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "created 0 in crm, 1 in tracker"));
    free(out);
    char *key = e2e_linked_key(e, id);
    assert_non_null(key);
    cJSON *issue = e2e_jira_issue(e, key);
    assert_string_equal(e2e_jfield(issue, "summary"), "Export to Excel is too slow");
    assert_string_equal(e2e_jfield(issue, "priority"), "High");
    assert_string_equal(e2e_jfield(issue, "status"), "To Do");
    assert_string_equal(e2e_jfield(issue, "duedate"), "2026-12-24");
    const cJSON *desc = cJSON_GetObjectItem(cJSON_GetObjectItem(issue, "fields"), "description");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(desc, "type")), "doc");
    char *adf = cJSON_PrintUnformatted(desc);
    assert_non_null(strstr(adf, "bulletList"));
    cJSON_free(adf);
    cJSON_Delete(issue);
    e2e_assert_quiet(e);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

static void test_jira_done_reaches_zoho(void **state)
{
    struct e2e *e = *state;
    char *id = e2e_seed_case(e, "{\"Subject\":\"SSO with WeCom\",\"Status\":\"New\"}");
    assert_int_equal(e2e_sync_once(e), 0);
    char *key = e2e_linked_key(e, id);
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/transition",
                         "{\"key\":\"%s\",\"to\":\"Done\",\"user\":\"Mia Krystof\"}", key));
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *c = e2e_zoho_case(e, id);
    assert_string_equal(e2e_zfield(c, "Status"), "Closed");
    cJSON_Delete(c);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

static void test_merge_and_conflict(void **state)
{
    struct e2e *e = *state;
    char *id = e2e_seed_case(e, "{\"Subject\":\"Invoice PDF\",\"Priority\":\"Low\",\"Status\":\"New\"}");
    assert_int_equal(e2e_sync_once(e), 0);
    char *key = e2e_linked_key(e, id);
    /* different fields on each side: both survive */
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Priority\":\"High\"},"
                         "\"user\":\"Li Wei\"}", id));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"summary\":\"Invoice PDF tax rate\"},"
                         "\"user\":\"Mia Krystof\"}", key));
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *c = e2e_zoho_case(e, id), *i = e2e_jira_issue(e, key);
    assert_string_equal(e2e_zfield(c, "Subject"), "Invoice PDF tax rate");
    assert_string_equal(e2e_jfield(i, "priority"), "High");
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
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "1 conflict(s) held"));
    free(out);
    c = e2e_zoho_case(e, id);
    i = e2e_jira_issue(e, key);
    assert_string_equal(e2e_zfield(c, "Subject"), "VAT wrong");
    assert_string_equal(e2e_jfield(i, "summary"), "Rounding bug");
    cJSON_Delete(c);
    cJSON_Delete(i);
    e2e_assert_quiet(e);
    assert_int_equal(e2e_run(e, &out, "conflicts", "list"), 0);
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

/* Li Wei sets field of case id to value in Zoho. */
static void edit_case(struct e2e *e, const char *id, const char *field, const char *value)
{
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"%s\":\"%s\"},"
                         "\"user\":\"Li Wei\"}",
                         id, field, value));
}

/* Mia Krystof sets field of issue key to value in Jira. */
static void edit_issue(struct e2e *e, const char *key, const char *field, const char *value)
{
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"%s\":\"%s\"},\"user\":\"Mia Krystof\"}",
                         key, field, value));
}

/* Runs one cycle, whose output shows want (NULL: anything) and whose Jira side is one search
 * (POSTed, naming the linked issue), no read by id and puts PUTs; then case field zf reads zv
 * and issue field jf reads jv, and once Jira's search caught up a run writes nothing. */
static void run_naming(struct e2e *e, const char *id, const char *key, int puts, const char *want,
                       const char *zf, const char *zv, const char *jf, const char *jv)
{
    sim_clear_log(&e->jira);
    char *out = NULL;
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 0);
    if (want)
        assert_non_null(strstr(out, want));
    free(out);
    assert_int_equal(sim_count(&e->jira, "POST", "/rest/api/3/search/jql"), 1);
    assert_int_equal(sim_count(&e->jira, "GET", "/rest/api/3/search/jql"), 0);
    assert_int_equal(sim_count(&e->jira, "POST", "/rest/api/3/issue/bulkfetch"), 0);
    assert_int_equal(sim_count(&e->jira, "PUT", NULL), puts);
    cJSON *c = e2e_zoho_case(e, id), *i = e2e_jira_issue(e, key);
    assert_string_equal(e2e_zfield(c, zf), zv);
    assert_string_equal(e2e_jfield(i, jf), jv);
    cJSON_Delete(c);
    cJSON_Delete(i);
    e2e_advance_clocks(e, 25000);
    e2e_assert_quiet(e);
}

/* A case edit costs Jira one search and one update: the search names the linked issue, which
 * comes as it is now although Jira's search has not caught up with a person's edit of it. */
static void test_crm_edit_reads_the_issue_in_the_listing(void **state)
{
    struct e2e *e = *state;
    char *id = e2e_seed_case(e, "{\"Subject\":\"Invoice PDF\",\"Priority\":\"Low\",\"Status\":\"New\"}");
    assert_int_equal(e2e_sync_once(e), 0);
    char *key = e2e_linked_key(e, id);
    e2e_advance_clocks(e, 120000);
    e2e_assert_quiet(e);
    /* from now on Jira's search shows an edit 20 s late */
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/config", "{\"search_lag_ms\":20000}"));
    /* different fields, the Jira one just before the cycle: each reaches the other side */
    edit_issue(e, key, "priority", "High");
    edit_case(e, id, "Subject", "Invoice PDF tax rate");
    run_naming(e, id, key, 1, NULL, "Priority", "High", "summary", "Invoice PDF tax rate");
    /* the same field, the Jira edit not searchable yet: one conflict, neither overwritten */
    edit_issue(e, key, "summary", "Rounding bug");
    edit_case(e, id, "Subject", "VAT wrong");
    run_naming(e, id, key, 0, "1 conflict(s) held", "Subject", "VAT wrong", "summary",
               "Rounding bug");
    /* the named listing refused (as a query naming an issue deleted since may be): listed and
     * read by id as without naming, the edit still arrives */
    edit_case(e, id, "Priority", "Low");
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"POST\",\"path\":\"/rest/api/3/search/jql\","
                         "\"kind\":\"status\",\"status\":400,\"count\":1}]}"));
    sim_clear_log(&e->jira);
    assert_int_equal(e2e_sync_once(e), 0);
    assert_int_equal(sim_count(&e->jira, "GET", "/rest/api/3/search/jql"), 1);
    assert_int_equal(sim_count(&e->jira, "POST", "/rest/api/3/issue/bulkfetch"), 1);
    cJSON *i = e2e_jira_issue(e, key);
    assert_string_equal(e2e_jfield(i, "priority"), "Low");
    cJSON_Delete(i);
    free(key);
    free(id);
}

/* Zoho's GETs of the Cases module in the log: listings, and reads by id (?ids=). */
static void zoho_case_reads(struct e2e *e, int *listings, int *by_id)
{
    *by_id = sim_count_query(&e->zoho, "GET", "/crm/v8/Cases", "ids=", 1);
    *listings = sim_count_query(&e->zoho, "GET", "/crm/v8/Cases", "ids=", 0);
}

/* Runs one cycle (exit code rc) whose Zoho side is `listings` listings of the Cases module,
 * `by_id` reads by id and `puts` updates; returns what the run printed (owned). */
static char *run_counting_zoho(struct e2e *e, int rc, int listings, int by_id, int puts)
{
    sim_clear_log(&e->zoho);
    char *out = NULL;
    int got = e2e_run(e, &out, "sync", "--once");
    int l = 0, b = 0;
    zoho_case_reads(e, &l, &b);
    if (got != rc || l != listings || b != by_id || sim_count(&e->zoho, "PUT", NULL) != puts)
        fail_msg("exit %d, zoho: %d listing(s), %d read(s) by id, %d PUT(s); sync said:\n%s", got,
                 l, b, sim_count(&e->zoho, "PUT", NULL), out);
    return out;
}

/* A linked case and issue, synced and quiet, and time past the listings' overlap. */
static char *seed_pair(struct e2e *e, char **key)
{
    char *id =
        e2e_seed_case(e, "{\"Subject\":\"Invoice PDF\",\"Priority\":\"Low\",\"Status\":\"New\"}");
    assert_int_equal(e2e_sync_once(e), 0);
    *key = e2e_linked_key(e, id);
    assert_non_null(*key);
    e2e_advance_clocks(e, 120000);
    e2e_assert_quiet(e);
    return id;
}

/* An issue edit costs Zoho one listing and one update: the case, absent from the complete
 * listing, is unchanged since the last sync, so it is not read by id. */
static void test_issue_edit_does_not_read_the_case(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = seed_pair(e, &key);
    edit_issue(e, key, "summary", "Invoice PDF tax rate");
    free(run_counting_zoho(e, 0, 1, 0, 1));
    cJSON *c = e2e_zoho_case(e, id);
    assert_string_equal(e2e_zfield(c, "Subject"), "Invoice PDF tax rate");
    assert_string_equal(e2e_zfield(c, "Priority"), "Low");
    cJSON_Delete(c);
    e2e_assert_quiet(e);
    /* a status Jira and Zoho name differently travels the same way */
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/transition",
                         "{\"key\":\"%s\",\"to\":\"Done\",\"user\":\"Mia Krystof\"}", key));
    free(run_counting_zoho(e, 0, 1, 0, 1));
    c = e2e_zoho_case(e, id);
    assert_string_equal(e2e_zfield(c, "Status"), "Closed");
    cJSON_Delete(c);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

/* A person edits another field of the case after the cycle listed Zoho and before it wrote the
 * issue's change there: the update carries only the issue's field, and the next cycle brings
 * the person's edit to Jira. */
static void test_case_edit_during_the_cycle_survives(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = seed_pair(e, &key);
    edit_issue(e, key, "summary", "Invoice PDF tax rate");
    /* Jira's search (after Zoho's listing) answers late; the person edits meanwhile */
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"POST\",\"path\":\"/rest/api/3/search/jql\","
                         "\"kind\":\"latency\",\"delay_ms\":2500}]}"));
    sim_clear_log(&e->zoho);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (int i = 0; i < 200 && sim_count(&e->zoho, "GET", "/crm/v8/Cases") == 0; i++)
            usleep(50 * 1000); /* until Zoho was listed */
        edit_case(e, id, "Priority", "High");
        _exit(0);
    }
    char *out = run_counting_zoho(e, 0, 1, 0, 1);
    int wst = 0;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    /* the edit came after Zoho's listing, which did not show the case */
    if (!strstr(out, "read 0 crm / 1 tracker"))
        fail_msg("sync said:\n%s", out);
    free(out);
    cJSON *c = e2e_zoho_case(e, id);
    assert_string_equal(e2e_zfield(c, "Subject"), "Invoice PDF tax rate");
    assert_string_equal(e2e_zfield(c, "Priority"), "High");
    cJSON_Delete(c);
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *i = e2e_jira_issue(e, key);
    assert_string_equal(e2e_jfield(i, "priority"), "High");
    assert_string_equal(e2e_jfield(i, "summary"), "Invoice PDF tax rate");
    cJSON_Delete(i);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

/* The case was deleted in Zoho when its issue is edited: the update finds it gone, a read by id
 * confirms it, and the link ends as the deletes policy says, once. */
static void test_issue_edit_of_a_deleted_case(void **state)
{
    struct e2e *e = *state;
    char *key[2], *id[2];
    for (int i = 0; i < 2; i++)
        id[i] = seed_pair(e, &key[i]);
    /* deletes = "ignore" (the default): reported, the link kept, no error loop */
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"delete\":true}", id[0]));
    edit_issue(e, key[0], "summary", "Invoice PDF tax rate");
    char *out = run_counting_zoho(e, 1, 1, 1, 1);
    if (!strstr(out, "no longer exists (deletes are ignored)") || strstr(out, "cannot update"))
        fail_msg("sync said:\n%s", out);
    free(out);
    /* the listings' overlap shows the issue's edit once more, then nothing is left of it */
    e2e_advance_clocks(e, 120000);
    e2e_sync_once(e);
    out = run_counting_zoho(e, 0, 1, 0, 0);
    assert_null(strstr(out, "no longer exists"));
    free(out);
    assert_int_equal(e2e_writes(&e->jira), 0);
    /* deletes = "delete" without the sweep: the issue goes with its case, the other stays */
    e2e_write_conf(e, "deletes = \"delete\"; delete_sweep = 0;");
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"delete\":true}", id[1]));
    edit_issue(e, key[1], "priority", "High");
    out = run_counting_zoho(e, 0, 1, 1, 1);
    if (!strstr(out, "0 archived and 1 deleted in tracker"))
        fail_msg("sync said:\n%s", out);
    free(out);
    assert_int_equal(e2e_count_issues(e), 1);
    cJSON *kept = e2e_jira_issue(e, key[0]);
    assert_string_equal(e2e_jfield(kept, "summary"), "Invoice PDF tax rate");
    cJSON_Delete(kept);
    e2e_advance_clocks(e, 120000);
    e2e_assert_quiet(e);
    for (int i = 0; i < 2; i++) {
        free(key[i]);
        free(id[i]);
    }
}

/* A link with an open conflict still reads its case by id: the conflict shows what each side
 * holds now, which the base does not know. */
static void test_open_conflict_keeps_the_read(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = seed_pair(e, &key);
    edit_case(e, id, "Subject", "VAT wrong");
    edit_issue(e, key, "summary", "Rounding bug");
    char *out = NULL;
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "1 conflict(s) held"));
    free(out);
    e2e_advance_clocks(e, 120000);
    e2e_assert_quiet(e); /* the case's edit is behind the listings now */
    edit_issue(e, key, "priority", "High");
    free(run_counting_zoho(e, 0, 1, 1, 1));
    cJSON *c = e2e_zoho_case(e, id);
    assert_string_equal(e2e_zfield(c, "Priority"), "High");
    assert_string_equal(e2e_zfield(c, "Subject"), "VAT wrong");
    cJSON_Delete(c);
    char *json = NULL;
    assert_int_equal(
        tu_run_crmbridge(&json, "-c", e->conf, "conflicts", "list", "--json", (char *)NULL), 0);
    cJSON *arr = cJSON_Parse(json);
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    const cJSON *k = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(k, "crm"), "value")),
        "VAT wrong");
    cJSON_Delete(arr);
    free(json);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

static void test_lost_create_response(void **state)
{
    struct e2e *e = *state;
    char *id = e2e_seed_case(e, "{\"Subject\":\"Audit trail export\",\"Status\":\"New\"}");
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"POST\",\"path\":\"/rest/api/3/issue/bulk\","
                         "\"kind\":\"drop_response\",\"count\":1}]}"));
    char *out = NULL;
    e2e_run(e, &out, "sync", "--once");
    assert_non_null(strstr(out, "postponed"));
    free(out);
    assert_int_equal(e2e_count_issues(e), 1); /* the create landed, its answer was lost */
    assert_null(e2e_linked_key(e, id));
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "1 linked after recovery"));
    free(out);
    e2e_assert_one_linked_issue(e, id);
    free(id);
}

static void test_2500_cases(void **state)
{
    struct e2e *e = *state;
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"count\":2500}"));
    /* a generous Jira rate so the test measures correctness, not the limiter */
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/config",
                         "{\"rate\":{\"GET\":2000,\"POST\":2000,\"PUT\":2000}}"));
    assert_int_equal(e2e_sync_once(e), 0);
    assert_int_equal(e2e_count_issues(e), 2500);
    cJSON *all = sim_call(&e->zoho, "GET", "/_sim/records?module=Cases", NULL, NULL);
    int linked = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data"))
        linked += e2e_zfield(r, "Jira_Issue") != NULL;
    cJSON_Delete(all);
    assert_int_equal(linked, 2500);
    e2e_assert_quiet(e);
    /* once a listing has begun after the load, the load is not listed again: two minutes on
     * (Jira's JQL times are whole minutes), a cycle with no change reads one page per side */
    for (int i = 0; i < 2; i++) {
        e2e_advance_clocks(e, 120000);
        e2e_assert_quiet(e);
    }
    assert_int_equal(sim_count(&e->zoho, "GET", "/crm/v8/Cases"), 1);
    assert_int_equal(sim_count(&e->jira, "GET", "/rest/api/3/search/jql"), 1);
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
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 2);
    assert_non_null(strstr(out, "crmbridge.conf:1:"));
    assert_non_null(strstr(out, "crmbridge.conf:4:"));
    assert_non_null(strstr(out, "nowhere"));
    free(out);
    assert_int_equal(tu_write_file(e->conf, "endpoints = {\n"), 0);
    assert_int_equal(e2e_run(e, &out, "check", NULL), 2);
    assert_non_null(strstr(out, "crmbridge.conf:"));
    free(out);
}

static void test_expired_token_and_reuse(void **state)
{
    struct e2e *e = *state;
    char *id = e2e_seed_case(e, "{\"Subject\":\"Token test\",\"Status\":\"New\"}");
    assert_int_equal(e2e_sync_once(e), 0);
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *st = sim_call(&e->zoho, "GET", "/_sim/stats", NULL, NULL);
    /* the token is kept (encrypted) in the cache and reused by the next run */
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "tokens_minted")), 1);
    cJSON_Delete(st);
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/expire_tokens", NULL));
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Priority\":\"High\"}}", id));
    assert_int_equal(e2e_sync_once(e), 0);
    char *key = e2e_linked_key(e, id);
    cJSON *i = e2e_jira_issue(e, key);
    assert_string_equal(e2e_jfield(i, "priority"), "High");
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
    char *id = e2e_seed_case(e, "{\"Subject\":\"Storm\",\"Status\":\"New\"}");
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"path\":\"/rest/api/3/search/jql\",\"kind\":\"status\","
                         "\"status\":429,\"retry_after\":1,\"count\":2}]}"));
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"GET\",\"path\":\"/crm/v8/Cases\",\"kind\":\"status\","
                         "\"status\":500,\"count\":2}]}"));
    assert_int_equal(e2e_sync_once(e), 0);
    char *key = e2e_linked_key(e, id);
    assert_non_null(key);
    /* a storm longer than the retries: the run fails cleanly, the next one converges */
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Priority\":\"Low\"}}", id));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"path\":\"/rest/api/3/.*\",\"kind\":\"status\","
                         "\"status\":503,\"count\":-1}]}"));
    char *out = NULL;
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 3);
    assert_non_null(strstr(out, "error:"));
    free(out);
    cJSON_Delete(sim_call(&e->jira, "DELETE", "/_sim/faults", NULL, NULL));
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *i = e2e_jira_issue(e, key);
    assert_string_equal(e2e_jfield(i, "priority"), "Low");
    cJSON_Delete(i);
    assert_int_equal(e2e_count_issues(e), 1);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

/* The daemon syncs on its interval and stops cleanly on SIGTERM with exit 0. */
static void test_daemon_interval_and_sigterm(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "interval = 1;");
    char *id = e2e_seed_case(e, "{\"Subject\":\"Daemon\",\"Status\":\"New\"}");
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
        key = e2e_linked_key(e, id);
    }
    assert_non_null(key);
    /* a later edit is picked up by a later cycle without restarting */
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/transition",
                         "{\"key\":\"%s\",\"to\":\"In Progress\",\"user\":\"Mia Krystof\"}", key));
    int synced = 0;
    for (int i = 0; i < 100 && !synced; i++) {
        usleep(100 * 1000);
        cJSON *c = e2e_zoho_case(e, id);
        synced = e2e_zfield(c, "Status") && !strcmp(e2e_zfield(c, "Status"), "Escalated");
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
        cmocka_unit_test_setup_teardown(test_case_becomes_issue_then_quiet, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_jira_done_reaches_zoho, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_merge_and_conflict, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_crm_edit_reads_the_issue_in_the_listing, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_issue_edit_does_not_read_the_case, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_case_edit_during_the_cycle_survives, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_issue_edit_of_a_deleted_case, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_open_conflict_keeps_the_read, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_lost_create_response, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_expired_token_and_reuse, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_storm_and_5xx_burst, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_daemon_interval_and_sigterm, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_2500_cases, e2e_setup, e2e_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
