/*
 * End to end, people: the crmbridge binary against the Zoho CRM and Jira Cloud simulators with a
 * mapping that keeps Zoho's Support_Engineer (a user lookup) and Jira's assignee in step. A
 * person found on both sides by e-mail is carried over; a person with no Jira user leaves the
 * issue alone, is never copied back as an edit, and is listed by `crmbridge status` until a user
 * exists; an assignment in Jira comes back to the CRM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "tests/unit/e2e.h"

/* Adds a Zoho user; returns its id (owned). */
static char *zoho_user(struct e2e *e, const char *name, const char *email)
{
    cJSON *r = sim_ctl(&e->zoho, "POST", "/_sim/users", "{\"full_name\":\"%s\",\"email\":\"%s\"}",
                       name, email);
    char *id = strdup(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "ids"), 0)));
    cJSON_Delete(r);
    return id;
}

/* Adds a Jira user; returns its accountId (owned). */
static char *jira_user(struct e2e *e, const char *name, const char *email)
{
    cJSON *r = sim_ctl(&e->jira, "POST", "/_sim/users",
                       "{\"displayName\":\"%s\",\"emailAddress\":\"%s\"}", name, email);
    char *id = strdup(cJSON_GetStringValue(cJSON_GetObjectItem(r, "accountId")));
    cJSON_Delete(r);
    return id;
}

static char *case_with_engineer(struct e2e *e, const char *subject, const char *user_id)
{
    char f[300];
    snprintf(f, sizeof(f),
             "{\"Subject\":\"%s\",\"Status\":\"New\",\"Support_Engineer\":{\"id\":\"%s\"}}",
             subject, user_id);
    return e2e_seed_case(e, f);
}

/* The accountId of the issue's assignee, or NULL when unassigned (owned). */
static char *assignee_of(struct e2e *e, const char *case_id)
{
    char *key = e2e_linked_key(e, case_id);
    assert_non_null(key);
    cJSON *iss = e2e_jira_issue(e, key);
    const cJSON *a = cJSON_GetObjectItem(cJSON_GetObjectItem(iss, "fields"), "assignee");
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(a, "accountId"));
    char *out = id ? strdup(id) : NULL;
    cJSON_Delete(iss);
    free(key);
    return out;
}

static char *engineer_of(struct e2e *e, const char *case_id)
{
    cJSON *c = e2e_zoho_case(e, case_id);
    const cJSON *v = cJSON_GetObjectItem(c, "Support_Engineer");
    const char *id = cJSON_GetStringValue(cJSON_IsObject(v) ? cJSON_GetObjectItem(v, "id") : v);
    char *out = id ? strdup(id) : NULL;
    cJSON_Delete(c);
    return out;
}

static cJSON *status_json(struct e2e *e)
{
    char *out = NULL;
    (void)e2e_run(e, &out, "status", "--json");
    cJSON *all = cJSON_Parse(out);
    assert_non_null(all);
    free(out);
    return all;
}

/* The pair keeps Zoho's Support_Engineer and Jira's assignee in step (plus top-level
 * settings such as a people block; may be NULL). */
static void use_engineer_mapping(struct e2e *e, const char *top)
{
    char *pair = e2e_mapping_with(
        e, "  { item = \"assignee\"; crm = \"Support_Engineer\"; tracker = \"assignee\"; },\n",
        top);
    e2e_write_conf(e, pair);
    free(pair);
}

/* The unmapped people `crmbridge status --json` lists for the one pair (borrowed from st). */
static const cJSON *unmapped_of(const cJSON *st)
{
    return cJSON_GetObjectItem(cJSON_GetArrayItem(st, 0), "unmapped_people");
}

static void test_people_follow_by_email_and_unmapped_are_listed(void **state)
{
    struct e2e *e = *state;
    use_engineer_mapping(e, NULL);
    char *z_li = zoho_user(e, "Ada Park", "ada.park@acme.test");
    char *z_wang = zoho_user(e, "Wang Fang", "wang.fang@acme.test");
    char *j_li = jira_user(e, "Park Ada", "ADA.PARK@acme.test");
    char *a = case_with_engineer(e, "Printer offline", z_li);
    char *b = case_with_engineer(e, "Invoice total wrong", z_wang);
    assert_int_equal(e2e_sync_once(e), 0);

    /* the same e-mail, whatever the case or the display name: the same person */
    char *got = assignee_of(e, a);
    assert_non_null(got);
    assert_string_equal(got, j_li);
    free(got);
    /* Wang Fang has no Jira user: the issue is left unassigned, and she is listed */
    assert_null(assignee_of(e, b));
    cJSON *st = status_json(e);
    const cJSON *people = unmapped_of(st);
    assert_int_equal(cJSON_GetArraySize(people), 1);
    const cJSON *p0 = cJSON_GetArrayItem(people, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(p0, "name")),
                        "Wang Fang <wang.fang@acme.test>");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(p0, "side")), "tracker");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(p0, "field")), "assignee");
    /* an unmapped person is not a skipped record: the pair stays ok */
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(st, 0), "state")), "ok");
    cJSON_Delete(st);
    char *out = NULL;
    assert_int_equal(e2e_run(e, &out, "status", NULL), 0);
    assert_non_null(strstr(out, "unmapped people  1"));
    assert_non_null(strstr(out, "Wang Fang <wang.fang@acme.test>: no user on the tracker side for "
                                "'assignee' (left as it was)"));
    free(out);

    /* the empty assignee in Jira is Jira's own, not an edit: the CRM keeps its engineer */
    e2e_assert_quiet(e);
    got = engineer_of(e, b);
    assert_string_equal(got, z_wang);
    free(got);

    /* assigned in Jira to Park Ada: the CRM's engineer becomes Ada Park */
    char *kb = e2e_linked_key(e, b);
    cJSON_Delete(sim_ctl(
        &e->jira, "POST", "/_sim/edit",
        "{\"key\":\"%s\",\"fields\":{\"assignee\":\"Park Ada\"},\"user\":\"Mia Krystof\"}", kb));
    assert_int_equal(e2e_sync_once(e), 0);
    got = engineer_of(e, b);
    assert_string_equal(got, z_li);
    free(got);
    e2e_assert_quiet(e);

    /* once Wang Fang has a Jira account, status stops listing her */
    free(jira_user(e, "Fang Wang", "wang.fang@acme.test"));
    assert_int_equal(e2e_sync_once(e), 0);
    st = status_json(e);
    people = unmapped_of(st);
    assert_int_equal(cJSON_GetArraySize(people), 0);
    cJSON_Delete(st);
    free(kb);
    free(a);
    free(b);
    free(z_li);
    free(z_wang);
    free(j_li);
}

/* The mapping's table names a person whose e-mails differ; the fallback takes the others. */
static void test_table_and_fallback(void **state)
{
    struct e2e *e = *state;
    char *z_chen = zoho_user(e, "Chen Jing", "chen.jing@acme.cn");
    char *z_zhao = zoho_user(e, "赵敏", "zhao.min@acme.cn");
    char *j_chen = jira_user(e, "Jing Chen", "jchen@partner.example");
    char *j_bot = jira_user(e, "Triage Bot", "triage@acme.test");
    char top[600];
    snprintf(top, sizeof(top),
             "people = { table = ( { name = \"Chen Jing\"; crm = \"chen.jing@acme.cn\"; "
             "tracker = \"%s\"; } );\n fallback = { tracker = \"triage@acme.test\"; }; };",
             j_chen);
    use_engineer_mapping(e, top);
    char *a = case_with_engineer(e, "Sync stalls", z_chen);
    char *b = case_with_engineer(e, "报表导出乱码", z_zhao);
    assert_int_equal(e2e_sync_once(e), 0);
    char *got = assignee_of(e, a);
    assert_string_equal(got, j_chen);
    free(got);
    got = assignee_of(e, b); /* 赵敏 has no Jira user: the fallback triages it */
    assert_string_equal(got, j_bot);
    free(got);
    cJSON *st = status_json(e);
    const cJSON *p0 = cJSON_GetArrayItem(unmapped_of(st), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(p0, "name")),
                        "赵敏 <zhao.min@acme.cn>");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(p0, "fallback")));
    cJSON_Delete(st);
    /* the fallback in Jira is not read back as an edit that would reassign the CRM case */
    e2e_assert_quiet(e);
    got = engineer_of(e, b);
    assert_string_equal(got, z_zhao);
    free(got);
    free(a);
    free(b);
    free(z_chen);
    free(z_zhao);
    free(j_chen);
    free(j_bot);
}

/* A directory that cannot be read (here Jira's user search fails) never stops the sync: the
 * issue is created without an assignee and the person is listed as unmapped. */
static void test_unreadable_directory_does_not_block(void **state)
{
    struct e2e *e = *state;
    use_engineer_mapping(e, NULL);
    char *z = zoho_user(e, "Ada Park", "ada.park@acme.test");
    free(jira_user(e, "Park Ada", "ada.park@acme.test"));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"GET\",\"path\":\"/rest/api/3/user/"
                         "assignable/search\",\"kind\":\"status\",\"status\":500,\"count\":-1}]}"));
    char *a = case_with_engineer(e, "Directory down", z);
    char *out = NULL;
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 0);
    free(out);
    assert_null(assignee_of(e, a)); /* created, nobody assigned */
    cJSON *st = status_json(e);
    const cJSON *people = unmapped_of(st);
    assert_int_equal(cJSON_GetArraySize(people), 1);
    cJSON_Delete(st);
    /* back up: the next run reads the directory and she is no longer listed; the issue keeps
     * Jira's own (empty) assignee until someone changes the engineer again */
    cJSON_Delete(sim_call(&e->jira, "DELETE", "/_sim/faults", NULL, NULL));
    e2e_assert_quiet(e);
    st = status_json(e);
    people = unmapped_of(st);
    assert_int_equal(cJSON_GetArraySize(people), 0);
    cJSON_Delete(st);
    free(a);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_people_follow_by_email_and_unmapped_are_listed,
                                        e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_table_and_fallback, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_directory_does_not_block, e2e_setup,
                                        e2e_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
