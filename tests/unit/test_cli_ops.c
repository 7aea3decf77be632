/*
 * The operator's commands against a real pair (Zoho CRM and Jira simulators): conflicts
 * list/show/resolve, status, links list/show/unlink, and every subcommand's --help.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/e2e.h"

/* Makes one title conflict on a fresh case; returns the case id, *key gets the issue key. */
static char *make_conflict(struct e2e *e, char **key)
{
    char *id = e2e_seed_case(e, "{\"Subject\":\"Invoice PDF\",\"Status\":\"New\"}");
    assert_int_equal(e2e_sync_once(e), 0);
    *key = e2e_linked_key(e, id);
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Subject\":\"VAT wrong\"},"
                         "\"user\":\"Li Wei\"}", id));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"summary\":\"Rounding bug\"},"
                         "\"user\":\"Mia Krystof\"}", *key));
    assert_int_equal(e2e_sync_once(e), 0);
    return id;
}

static cJSON *run_json(struct e2e *e, int expect_rc, const char *a1, const char *a2,
                       const char *a3)
{
    char *out = NULL;
    int rc = tu_run_crmbridge(&out, "-c", e->conf, a1, "--json", a2, a3, (char *)NULL);
    if (rc != expect_rc)
        fprintf(stderr, "%s %s -> %d\n%s\n", a1, a2, rc, out);
    assert_int_equal(rc, expect_rc);
    cJSON *j = cJSON_Parse(out);
    if (!j)
        fprintf(stderr, "not JSON:\n%s\n", out);
    assert_non_null(j);
    free(out);
    return j;
}

static int run3(struct e2e *e, char **out, const char *a, const char *b, const char *c,
                const char *d, const char *f)
{
    char *o = NULL;
    int rc = tu_run_crmbridge(&o, "-c", e->conf, a, b, c, d, f, (char *)NULL);
    if (out)
        *out = o;
    else
        free(o);
    return rc;
}

static void test_resolve_take_crm(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = make_conflict(e, &key);
    cJSON *list = run_json(e, 0, "conflicts", "list", NULL);
    assert_int_equal(cJSON_GetArraySize(list), 1);
    const cJSON *k = cJSON_GetArrayItem(list, 0);
    char cid[32];
    snprintf(cid, sizeof(cid), "%.0f", cJSON_GetNumberValue(cJSON_GetObjectItem(k, "id")));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(k, "field")), "title");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(k, "base")), "Invoice PDF");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(k, "crm"),
                                                                 "value")), "VAT wrong");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetObjectItem(k, "tracker"), "value")), "Rounding bug");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(k, "state")), "open");
    cJSON_Delete(list);

    char *out = NULL;
    assert_int_equal(run3(e, &out, "conflicts", "show", cid, NULL, NULL), 0);
    assert_non_null(strstr(out, "VAT wrong"));
    assert_non_null(strstr(out, "Rounding bug"));
    assert_null(strstr(out, "\033[")); /* not a terminal: no colour */
    free(out);

    assert_int_equal(run3(e, &out, "conflicts", "resolve", cid, "--take", "crm"), 0);
    assert_non_null(strstr(out, "resolved conflict"));
    free(out);
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *c = e2e_zoho_case(e, id), *i = e2e_jira_issue(e, key);
    assert_string_equal(e2e_zfield(c, "Subject"), "VAT wrong");
    assert_string_equal(e2e_jfield(i, "summary"), "VAT wrong");
    cJSON_Delete(c);
    cJSON_Delete(i);
    list = run_json(e, 0, "conflicts", "list", NULL);
    assert_int_equal(cJSON_GetArraySize(list), 0);
    cJSON_Delete(list);
    e2e_assert_quiet(e);

    /* the held field syncs again */
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"summary\":\"VAT rate wrong\"}}", key));
    assert_int_equal(e2e_sync_once(e), 0);
    c = e2e_zoho_case(e, id);
    assert_string_equal(e2e_zfield(c, "Subject"), "VAT rate wrong");
    cJSON_Delete(c);

    /* resolving again or resolving what does not exist changes nothing and says so */
    assert_int_equal(run3(e, &out, "conflicts", "resolve", cid, "--take", "tracker"), 0);
    assert_non_null(strstr(out, "already resolved"));
    free(out);
    assert_int_equal(run3(e, &out, "conflicts", "resolve", "999", "--take", "crm"), 2);
    assert_non_null(strstr(out, "no conflict 999"));
    free(out);
    c = e2e_zoho_case(e, id);
    assert_string_equal(e2e_zfield(c, "Subject"), "VAT rate wrong");
    cJSON_Delete(c);
    free(key);
    free(id);
}

static void test_resolve_value_apply(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = make_conflict(e, &key);
    char *out = NULL;
    char *o = NULL;
    int rc = tu_run_crmbridge(&o, "-c", e->conf, "conflicts", "resolve", "1", "--value",
                              "Invoice PDF: VAT rounding", "--apply", (char *)NULL);
    assert_int_equal(rc, 0);
    free(o);
    cJSON *c = e2e_zoho_case(e, id), *i = e2e_jira_issue(e, key);
    assert_string_equal(e2e_zfield(c, "Subject"), "Invoice PDF: VAT rounding");
    assert_string_equal(e2e_jfield(i, "summary"), "Invoice PDF: VAT rounding");
    cJSON_Delete(c);
    cJSON_Delete(i);
    assert_int_equal(run3(e, &out, "conflicts", "show", "1", NULL, NULL), 0);
    assert_non_null(strstr(out, "written to both sides"));
    free(out);
    free(key);
    free(id);
}

static void test_show_diffs_long_text(void **state)
{
    struct e2e *e = *state;
    char *id = e2e_seed_case(e, "{\"Subject\":\"Spec\",\"Description\":\"Export rows.\\n\\nLimit is 10k.\\n\\nCSV only.\"}");
    assert_int_equal(e2e_sync_once(e), 0);
    char *key = e2e_linked_key(e, id);
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Description\":"
                         "\"Export rows.\\n\\nLimit is 50k.\\n\\nCSV only.\"}}", id));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"description\":"
                         "\"Export rows.\\n\\nLimit is 10k.\\n\\nCSV and XLSX.\"}}", key));
    assert_int_equal(e2e_sync_once(e), 0);
    char *out = NULL;
    assert_int_equal(run3(e, &out, "conflicts", "show", "1", NULL, NULL), 0);
    assert_non_null(strstr(out, "crm against the base"));
    assert_non_null(strstr(out, "- Limit is 10k."));
    assert_non_null(strstr(out, "+ Limit is 50k."));
    assert_non_null(strstr(out, "+ CSV and XLSX."));
    free(out);
    free(key);
    free(id);
}

static char *first_conflict_id(struct e2e *e, const char *want_crm_value)
{
    cJSON *list = run_json(e, 0, "conflicts", "list", NULL);
    assert_int_equal(cJSON_GetArraySize(list), 1);
    const cJSON *k = cJSON_GetArrayItem(list, 0);
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(k, "crm"), "value")),
        want_crm_value);
    char *id = malloc(32);
    snprintf(id, 32, "%.0f", cJSON_GetNumberValue(cJSON_GetObjectItem(k, "id")));
    cJSON_Delete(list);
    return id;
}

/* A held field edited again shows its new value, --take applies that one, and a choice made
 * before a newer edit never overwrites it: the conflict opens again instead. */
static void test_conflict_follows_later_edits(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = make_conflict(e, &key);
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Subject\":\"VAT 19%% "
                         "wrong\"}}",
                         id));
    assert_int_equal(e2e_sync_once(e), 0); /* still held: a conflict is not a failure */
    char *cid = first_conflict_id(e, "VAT 19% wrong");
    assert_int_equal(run3(e, NULL, "conflicts", "resolve", cid, "--take", "tracker"), 0);
    /* the account manager edits once more before the next cycle applies the choice */
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Subject\":\"VAT 7%% "
                         "wrong\"}}",
                         id));
    char *out = NULL;
    e2e_run(e, &out, "sync", "--once");
    assert_non_null(strstr(out, "opened again"));
    free(out);
    cJSON *c = e2e_zoho_case(e, id);
    assert_string_equal(e2e_zfield(c, "Subject"), "VAT 7% wrong"); /* not overwritten */
    cJSON_Delete(c);
    free(cid);
    cid = first_conflict_id(e, "VAT 7% wrong");
    assert_int_equal(run3(e, NULL, "conflicts", "resolve", cid, "--take", "crm"), 0);
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *i = e2e_jira_issue(e, key);
    assert_string_equal(e2e_jfield(i, "summary"), "VAT 7% wrong");
    cJSON_Delete(i);
    e2e_assert_quiet(e);
    free(cid);
    free(key);
    free(id);
}

static void test_status_reports_skipped(void **state)
{
    struct e2e *e = *state;
    cJSON *st = run_json(e, 1, "status", NULL, NULL);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(st, 0), "state")),
                        "never synced");
    cJSON_Delete(st);
    char *id = e2e_seed_case(e, "{\"Subject\":\"Gone soon\",\"Status\":\"New\"}");
    assert_int_equal(e2e_sync_once(e), 0);
    st = run_json(e, 0, "status", NULL, NULL);
    const cJSON *p = cJSON_GetArrayItem(st, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(p, "state")), "ok");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(p, "links")), 1);
    cJSON_Delete(st);

    char *key = e2e_linked_key(e, id);
    char path[128];
    snprintf(path, sizeof(path), "/_sim/issue/%s", key);
    cJSON_Delete(sim_call(&e->jira, "DELETE", path, NULL, NULL));
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Priority\":\"High\"}}", id));
    assert_int_equal(e2e_sync_once(e), 1); /* a record was skipped: not a green run */
    st = run_json(e, 1, "status", NULL, NULL);
    p = cJSON_GetArrayItem(st, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(p, "state")), "degraded");
    const cJSON *last = cJSON_GetObjectItem(p, "last_cycle");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(last, "skipped")), 1);
    const char *why = cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(last, "problems"), 0));
    assert_non_null(strstr(why, key));
    assert_non_null(strstr(why, "no longer exists"));
    cJSON_Delete(st);
    char *out = NULL;
    assert_int_equal(run3(e, &out, "status", NULL, NULL, NULL, NULL), 1);
    assert_non_null(strstr(out, "degraded"));
    assert_non_null(strstr(out, "no longer exists"));
    free(out);
    free(key);
    free(id);
}

static double jnum(const cJSON *o, const char *a, const char *b, const char *c)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, a), b), c);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

/* status shows what each side has left of its rate limit, and what throttling cost */
static void test_status_reports_rate_limit_budget(void **state)
{
    struct e2e *e = *state;
    char *id = e2e_seed_case(e, "{\"Subject\":\"Budget\",\"Status\":\"New\"}");
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"GET\",\"path\":\"/rest/api/3/search/jql\","
                         "\"kind\":\"status\",\"status\":429,\"count\":1}]}"));
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *zs = sim_ctl(&e->zoho, "GET", "/_sim/stats", NULL);
    double left = cJSON_GetNumberValue(cJSON_GetObjectItem(zs, "credits_limit")) -
                  cJSON_GetNumberValue(cJSON_GetObjectItem(zs, "credits_used"));
    cJSON_Delete(zs);
    cJSON *st = run_json(e, 0, "status", NULL, NULL);
    const cJSON *last = cJSON_GetObjectItem(cJSON_GetArrayItem(st, 0), "last_cycle");
    /* Zoho publishes its credits left; the figure is the simulator's own count */
    assert_true(jnum(last, "crm", "budget", "remaining") == left);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(last, "crm"), "budget"), "limit")));
    assert_int_equal((int)jnum(last, "crm", "budget", "throttled"), 0);
    /* Jira answered one 429: counted, waited through, and its headers read */
    assert_int_equal((int)jnum(last, "tracker", "budget", "throttled"), 1);
    assert_true(jnum(last, "tracker", "budget", "waited_ms") >= 1000);
    assert_true(jnum(last, "tracker", "budget", "requests") >= 2);
    cJSON_Delete(st);
    char *out = NULL;
    assert_int_equal(run3(e, &out, "status", NULL, NULL, NULL, NULL), 0);
    char want[96];
    snprintf(want, sizeof(want), "rate limit crm    %.0f left;", left);
    if (!strstr(out, want))
        fprintf(stderr, "want '%s' in:\n%s\n", want, out);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "1 throttled, waited 1."));
    free(out);
    free(id);
}

static void test_links_list_show_unlink(void **state)
{
    struct e2e *e = *state;
    char *id = e2e_seed_case(e, "{\"Subject\":\"Link me\",\"Status\":\"New\"}");
    assert_int_equal(e2e_sync_once(e), 0);
    char *key = e2e_linked_key(e, id);
    cJSON *links = run_json(e, 0, "links", "list", NULL);
    assert_int_equal(cJSON_GetArraySize(links), 1);
    const cJSON *l = cJSON_GetArrayItem(links, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(l, "crm"), "id")), id);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(l, "tracker"), "key")), key);
    cJSON_Delete(links);
    cJSON *one = run_json(e, 0, "links", "show", "1");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(one, "agreed"), "title")),
                        "Link me");
    cJSON_Delete(one);
    char *out = NULL;
    assert_int_equal(run3(e, &out, "links", "unlink", "1", NULL, NULL), 0);
    assert_non_null(strstr(out, "unlinked 1"));
    free(out);
    /* neither record is synced or re-created after the cut */
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Subject\":\"Link me again\"}}", id));
    e2e_assert_quiet(e);
    assert_int_equal(e2e_count_issues(e), 1);
    assert_int_equal(run3(e, &out, "links", "unlink", "1", NULL, NULL), 2);
    assert_non_null(strstr(out, "no link 1"));
    free(out);
    free(key);
    free(id);
}

static void test_every_command_has_help(void **state)
{
    static const char *const cmds[] = {"check", "sync", "daemon", "status", "conflicts", "links", NULL};
    for (int i = 0; cmds[i]; i++) {
        char *out = NULL;
        assert_int_equal(tu_run_crmbridge(&out, cmds[i], "--help", (char *)NULL), 0);
        char want[64];
        snprintf(want, sizeof(want), "usage: crmbridge [-c FILE] %s", cmds[i]);
        assert_non_null(strstr(out, want));
        free(out);
    }
    char *out = NULL;
    assert_int_equal(tu_run_crmbridge(&out, "--help", (char *)NULL), 0);
    assert_non_null(strstr(out, "exit codes"));
    free(out);
    assert_int_equal(tu_run_crmbridge(&out, "--version", (char *)NULL), 0);
    assert_non_null(strstr(out, "crmbridge "));
    free(out);
    assert_int_equal(tu_run_crmbridge(&out, "frobnicate", (char *)NULL), 2);
    assert_non_null(strstr(out, "unknown command 'frobnicate'"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resolve_take_crm, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_resolve_value_apply, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_show_diffs_long_text, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_conflict_follows_later_edits, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_status_reports_skipped, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_status_reports_rate_limit_budget, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_links_list_show_unlink, e2e_setup, e2e_teardown),
        cmocka_unit_test(test_every_command_has_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
