/*
 * Delete policies, end to end (the crmbridge binary against the Zoho CRM and Jira simulators):
 * a deleted Jira issue leaves the Case alone under `ignore`, closes it under `archive` (found by
 * the sweep of linked ids, as Jira search never shows a deletion), and the mass-delete guard
 * refuses a cycle that would archive most of a pair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/e2e.h"

#define ARCHIVE "deletes = \"archive\"; delete_sweep = 1;"

static void delete_issue(struct e2e *e, const char *key)
{
    char path[128];
    snprintf(path, sizeof(path), "/_sim/issue/%s", key);
    cJSON_Delete(sim_call(&e->jira, "DELETE", path, NULL, NULL));
}

static char *case_status(struct e2e *e, const char *id)
{
    cJSON *c = e2e_zoho_case(e, id);
    char *s = strdup(e2e_zfield(c, "Status"));
    cJSON_Delete(c);
    return s;
}

static int link_count(struct e2e *e)
{
    char *out = NULL;
    int rc = tu_run_crmbridge(&out, "-c", e->conf, "links", "list", "--json", (char *)NULL);
    assert_int_equal(rc, 0);
    cJSON *l = cJSON_Parse(out);
    int n = cJSON_GetArraySize(l);
    cJSON_Delete(l);
    free(out);
    return n;
}

/* Seeds n cases and syncs them into issues; ids and keys are returned (caller frees). */
static void seed_linked(struct e2e *e, int n, char **ids, char **keys)
{
    for (int i = 0; i < n; i++) {
        char f[96];
        snprintf(f, sizeof(f), "{\"Subject\":\"Request %d\",\"Status\":\"New\"}", i);
        ids[i] = e2e_seed_case(e, f);
    }
    assert_int_equal(e2e_sync_once(e), 0);
    for (int i = 0; i < n; i++)
        keys[i] = e2e_linked_key(e, ids[i]);
}

static void release(int n, char **ids, char **keys)
{
    for (int i = 0; i < n; i++) {
        free(ids[i]);
        free(keys[i]);
    }
}

static void test_ignore_keeps_the_case(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "delete_sweep = 1;");
    char *ids[1], *keys[1];
    seed_linked(e, 1, ids, keys);
    delete_issue(e, keys[0]);
    sleep(1);
    sim_clear_log(&e->zoho);
    assert_int_equal(e2e_sync_once(e), 0);
    assert_int_equal(e2e_writes(&e->zoho), 0);
    char *st = case_status(e, ids[0]);
    assert_string_equal(st, "New");
    free(st);
    assert_int_equal(link_count(e), 1);
    release(1, ids, keys);
}

static void test_archive_closes_the_case_once(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, ARCHIVE);
    char *ids[4], *keys[4];
    seed_linked(e, 4, ids, keys);
    delete_issue(e, keys[1]);
    sleep(1); /* the sweep of linked ids is due again */
    char *out = NULL;
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 0);
    if (!strstr(out, "1 archived and 0 deleted in crm"))
        fail_msg("sync said:\n%s", out);
    assert_non_null(strstr(out, "is gone (deleted or invalidated)"));
    free(out);
    char *st = case_status(e, ids[1]);
    assert_string_equal(st, "Closed"); /* archive_status "rejected" is Zoho's Closed */
    free(st);
    st = case_status(e, ids[0]);
    assert_string_equal(st, "New");
    free(st);
    /* the link is cut: the closed case is neither synced nor re-created */
    assert_int_equal(link_count(e), 3);
    sleep(1);
    e2e_assert_quiet(e);
    assert_int_equal(e2e_count_issues(e), 3);
    release(4, ids, keys);
}

static void test_guard_refuses_mass_archive(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, ARCHIVE);
    char *ids[5], *keys[5];
    seed_linked(e, 5, ids, keys);
    for (int i = 0; i < 3; i++) /* 60% of the pair */
        delete_issue(e, keys[i]);
    sleep(1);
    sim_clear_log(&e->zoho);
    char *out = NULL;
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 1); /* not a green run */
    if (!strstr(out, "refused to archive 3 of 5 linked records"))
        fail_msg("sync said:\n%s", out);
    free(out);
    assert_int_equal(e2e_writes(&e->zoho), 0);
    for (int i = 0; i < 5; i++) {
        char *st = case_status(e, ids[i]);
        assert_string_equal(st, "New");
        free(st);
    }
    assert_int_equal(link_count(e), 5);
    /* an admin who means it raises the guard: then the three are archived */
    e2e_write_conf(e, ARCHIVE " delete_guard = 80;");
    sleep(1);
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "3 archived and 0 deleted in crm"));
    free(out);
    assert_int_equal(link_count(e), 2);
    release(5, ids, keys);
}

static void test_delete_policy_deletes_the_issue(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "deletes = \"delete\"; delete_sweep = 1;");
    char *ids[3], *keys[3];
    seed_linked(e, 3, ids, keys);
    /* the account manager deletes a case: its issue goes too, the others stay */
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"delete\":true}", ids[2]));
    sleep(1);
    char *out = NULL;
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 0);
    if (!strstr(out, "0 archived and 1 deleted in tracker"))
        fail_msg("sync said:\n%s", out);
    free(out);
    assert_int_equal(e2e_count_issues(e), 2);
    cJSON *kept = e2e_jira_issue(e, keys[0]); /* asserts it exists */
    cJSON_Delete(kept);
    assert_int_equal(link_count(e), 2);
    sleep(1);
    e2e_assert_quiet(e);
    release(3, ids, keys);
}

/* A create that never landed, whose case is then deleted, is not looked for forever. */
static void test_pending_create_of_a_deleted_case_is_dropped(void **state)
{
    struct e2e *e = *state;
    /* a create answered 503 may still land: it is waited out for twice the HTTP timeout */
    char *conf = tu_read_file(e->conf), text[8192];
    snprintf(text, sizeof(text), "http_timeout = 1;\n%s", conf);
    free(conf);
    assert_int_equal(tu_write_file(e->conf, text), 0);
    char *id = e2e_seed_case(e, "{\"Subject\":\"Short-lived\",\"Status\":\"New\"}");
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"POST\",\"path\":\"/rest/api/3/issue/bulk\","
                         "\"kind\":\"status\",\"status\":503,\"count\":100}]}"));
    char *out = NULL;
    e2e_run(e, &out, "sync", "--once");
    assert_non_null(strstr(out, "postponed"));
    free(out);
    cJSON_Delete(sim_call(&e->jira, "DELETE", "/_sim/faults", NULL, NULL));
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"delete\":true}", id));
    sleep(3);
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 0);
    if (!strstr(out, "dropped the pending create"))
        fail_msg("sync said:\n%s", out);
    free(out);
    assert_int_equal(tu_run_crmbridge(&out, "-c", e->conf, "status", "--json", (char *)NULL), 0);
    cJSON *st = cJSON_Parse(out);
    free(out);
    assert_int_equal((int)cJSON_GetNumberValue(
                         cJSON_GetObjectItem(cJSON_GetArrayItem(st, 0), "pending_creates")),
                     0);
    cJSON_Delete(st);
    assert_int_equal(e2e_count_issues(e), 0);
    e2e_assert_quiet(e);
    free(id);
}

static void test_bad_policy_is_a_config_error(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "deletes = \"purge\";");
    char *out = NULL;
    assert_int_equal(tu_run_crmbridge(&out, "-c", e->conf, "check", (char *)NULL), 2);
    assert_non_null(strstr(out, "'deletes' must be one of ignore, archive, delete"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ignore_keeps_the_case, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_archive_closes_the_case_once, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_guard_refuses_mass_archive, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_delete_policy_deletes_the_issue, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_pending_create_of_a_deleted_case_is_dropped,
                                        e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_bad_policy_is_a_config_error, e2e_setup, e2e_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
