/*
 * End to end against Jira Data Center: the crmbridge binary with a jira endpoint of flavor
 * "datacenter" and the Jira simulator in its Data Center mode (REST v2 only, a personal access
 * token as Bearer, /search with startAt/total, wiki-markup bodies). Records, status, rich text
 * and comments cross both ways, a second run writes nothing, and the configuration is checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "tests/unit/e2e.h"

/* The Data Center endpoint as an admin writes it: no email, the token from the environment. */
static void write_dc_conf_map(struct e2e *e, const char *flavor, const char *jira_extra,
                              const char *pair_extra)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "state_dir = \"%s/state\";\n"
             "endpoints = {\n"
             "  zoho = { type = \"zoho\"; accounts_url = \"%s\"; api_url = \"%s\";\n"
             "    client_id = \"1000.SIMCLIENT\"; client_secret = \"env:CB_TEST_ZOHO_SECRET\";\n"
             "    refresh_token = \"file:%s/zoho.token\"; };\n"
             "  jira = { type = \"jira\"; flavor = \"%s\"; api_url = \"%s\";\n"
             "    api_token = \"env:CB_TEST_JIRA_PAT\"; %s };\n"
             "};\n"
             "pairs = ( { name = \"dc\";\n"
             "  crm = { endpoint = \"zoho\"; module = \"Cases\"; };\n"
             "  tracker = { endpoint = \"jira\"; project = \"SUP\"; issue_type = \"Task\"; };\n"
             "  overlap = 5; %s } );\n",
             e->dir, e->zoho.base, e->zoho.base, e->dir, flavor, e->jira.base, jira_extra,
             pair_extra);
    assert_int_equal(tu_write_file(e->conf, text), 0);
}

static void write_dc_conf(struct e2e *e, const char *flavor, const char *jira_extra)
{
    write_dc_conf_map(e, flavor, jira_extra, "");
}

static int dc_setup(void **state)
{
    e2e_setup(state);
    struct e2e *e = *state;
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/config", "{\"flavor\":\"datacenter\"}"));
    setenv("CB_TEST_JIRA_PAT", "sim-jira-dc-pat", 1);
    write_dc_conf(e, "datacenter", "");
    return 0;
}

/* Requests the crmbridge run sent to paths starting with prefix. */
static int jira_calls(struct e2e *e, const char *prefix)
{
    return sim_count(&e->jira, NULL, prefix);
}

static cJSON *jira_field(struct e2e *e, const char *key, const char *f)
{
    cJSON *i = e2e_jira_issue(e, key);
    cJSON *v = cJSON_DetachItemFromObject(cJSON_GetObjectItem(i, "fields"), f);
    cJSON_Delete(i);
    return v;
}

static void test_dc_case_becomes_issue_in_wiki_markup(void **state)
{
    struct e2e *e = *state;
    char *id = e2e_seed_case(e, "{\"Subject\":\"导出太慢 Export is slow\",\"Status\":\"New\","
                                "\"Priority\":\"High\",\"Description\":\"Steps:\\n1. open "
                                "Reports\\n2. export\\n* CSV\\n* XLSX\\nLog: "
                                "https://logs.example.com/q?id=8812\\nuse snake_case_flag\"}");
    sim_clear_log(&e->jira);
    char *out = NULL;
    assert_int_equal(e2e_run(e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "created 0 in crm, 1 in tracker"));
    free(out);
    /* only v2, and the old search */
    assert_int_equal(jira_calls(e, "/rest/api/3/"), 0);
    assert_true(jira_calls(e, "/rest/api/2/search") > 0);

    char *key = e2e_linked_key(e, id);
    assert_non_null(key);
    cJSON *issue = e2e_jira_issue(e, key);
    assert_string_equal(e2e_jfield(issue, "summary"), "导出太慢 Export is slow");
    assert_string_equal(e2e_jfield(issue, "priority"), "High");
    assert_string_equal(e2e_jfield(issue, "status"), "To Do");
    cJSON_Delete(issue);
    /* the textarea's typed list arrives as wiki lists, the URL as a link, snake_case as is */
    cJSON *desc = jira_field(e, key, "description");
    assert_true(cJSON_IsString(desc));
    assert_string_equal(desc->valuestring, "Steps:\n\n# open Reports\n# export\n\n* CSV\n* XLSX\n\n"
                                           "Log: [https://logs.example.com/q?id=8812]\n"
                                           "use snake_case_flag");
    cJSON_Delete(desc);
    e2e_assert_quiet(e);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

static char *dc_linked_case(struct e2e *e, const char *subject, char **key)
{
    char buf[200];
    snprintf(buf, sizeof(buf), "{\"Subject\":\"%s\",\"Status\":\"New\"}", subject);
    char *id = e2e_seed_case(e, buf);
    assert_int_equal(e2e_sync_once(e), 0);
    *key = e2e_linked_key(e, id);
    assert_non_null(*key);
    return id;
}

static void jira_set_description(struct e2e *e, const char *key, const char *wiki_json)
{
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"description\":\"%s\"},"
                         "\"user\":\"Mia Krystof\"}",
                         key, wiki_json));
}

static void test_dc_status_and_wiki_edit_reach_zoho(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = dc_linked_case(e, "SSO with WeCom", &key);
    /* a person edits the description in wiki markup plain text can carry, and closes it */
    jira_set_description(e, key,
                         "The token expired {color:red}again{color}:\\n# renew it\\n"
                         "## in the admin console\\n# retry\\n"
                         "See https://wiki.example.com/sso and ask [~li.wei].");
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/transition",
                         "{\"key\":\"%s\",\"to\":\"Done\",\"user\":\"Mia Krystof\"}", key));
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *c = e2e_zoho_case(e, id);
    assert_string_equal(e2e_zfield(c, "Status"), "Closed");
    assert_string_equal(e2e_zfield(c, "Description"),
                        "The token expired again:\n\n1. renew it\n   1. in the admin console\n"
                        "2. retry\n\nSee https://wiki.example.com/sso and ask @li.wei.");
    cJSON_Delete(c);
    e2e_assert_quiet(e);
    /* and back: a Zoho edit is written to Jira as wiki markup */
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Description\":"
                         "\"Still failing:\\n- on Safari\\n- on Edge\"},\"user\":\"Li Wei\"}",
                         id));
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *desc = jira_field(e, key, "description");
    assert_string_equal(cJSON_GetStringValue(desc), "Still failing:\n\n* on Safari\n* on Edge");
    cJSON_Delete(desc);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

/* What a plain-text field cannot say arrives as readable text. */
static void test_dc_rich_wiki_degrades_to_readable_text(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = dc_linked_case(e, "Invoice PDF", &key);
    jira_set_description(e, key,
                         "h3. Cause\\nThe *token* expired, see [runbook|https://wiki.example.com"
                         "/sso]:\\n{code:bash}\\nsso-admin renew --all\\n{code}");
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *c = e2e_zoho_case(e, id);
    assert_string_equal(e2e_zfield(c, "Description"),
                        "Cause\n\nThe token expired, see runbook (https://wiki.example.com/sso):"
                        "\n\nsso-admin renew --all");
    cJSON_Delete(c);
    /* the poorer copy in Zoho is not an edit there: nothing flows back over the original */
    e2e_assert_quiet(e);
    cJSON *issue = e2e_jira_issue(e, key);
    assert_non_null(strstr(e2e_jfield(issue, "description"), "The *token* expired"));
    cJSON_Delete(issue);
    free(key);
    free(id);
}

static void test_dc_comments_both_ways(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = dc_linked_case(e, "Report export fails", &key);
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"comment\":\"Reproduced with *250* "
                         "rows\"},\"user\":\"Mia Krystof\"}",
                         key));
    assert_int_equal(e2e_sync_once(e), 0);
    char path[200];
    snprintf(path, sizeof(path), "/_sim/notes?module=Cases&id=%s", id);
    cJSON *notes = sim_call(&e->zoho, "GET", path, NULL, NULL);
    int found = 0;
    const cJSON *n;
    cJSON_ArrayForEach(n, notes)
    {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(n, "Note_Content"));
        found += s && strstr(s, "Mia Krystof") && strstr(s, "Reproduced with 250 rows");
    }
    assert_int_equal(found, 1);
    cJSON_Delete(notes);
    /* a comment crmbridge wrote to Jira is a wiki string */
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/note",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"text\":\"Customer: fails on "
                         "Safari\",\"user\":\"Li Wei\"}",
                         id));
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *issue = e2e_jira_issue(e, key);
    int copies = 0;
    cJSON_ArrayForEach(n, cJSON_GetObjectItem(issue, "comments"))
    {
        const cJSON *body = cJSON_GetObjectItem(n, "body");
        copies += cJSON_IsString(body) && strstr(body->valuestring, "fails on Safari");
    }
    assert_int_equal(copies, 1);
    cJSON_Delete(issue);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

/* More issues than a search page holds: startAt paging reads them all, once. */
static void test_dc_search_pages_by_start_at(void **state)
{
    struct e2e *e = *state;
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"count\":130}"));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/config", "{\"search_page_cap\":40}"));
    assert_int_equal(e2e_sync_once(e), 0);
    assert_int_equal(e2e_count_issues(e), 130);
    sim_clear_log(&e->jira);
    e2e_assert_quiet(e);
    /* the quiet run read every page: 130 issues in pages of 40 */
    cJSON *log = sim_call(&e->jira, "GET", "/_sim/log", NULL, NULL);
    int starts = 0;
    const cJSON *en;
    cJSON_ArrayForEach(en, log)
    {
        const char *q = cJSON_GetStringValue(cJSON_GetObjectItem(en, "query"));
        starts += q && strstr(q, "startAt=120") != NULL;
    }
    cJSON_Delete(log);
    assert_true(starts >= 1);
}

/* The built-in mapping plus Zoho's "Reported By" text <-> Jira's reporter: on Data Center a
 * user is a name both ways. */
static void test_dc_users_by_name(void **state)
{
    struct e2e *e = *state;
    char *pair = e2e_mapping_with(
        e, "  { item = \"reporter\"; crm = \"Reported_By\"; tracker = \"reporter\"; },\n", NULL);
    write_dc_conf_map(e, "datacenter", "", pair);
    free(pair);

    char *id = e2e_seed_case(e, "{\"Subject\":\"VPN drops\",\"Status\":\"New\","
                                "\"Reported_By\":\"li.wei\"}");
    assert_int_equal(e2e_sync_once(e), 0);
    char *key = e2e_linked_key(e, id);
    assert_non_null(key);
    cJSON *reporter = jira_field(e, key, "reporter");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(reporter, "name")), "li.wei");
    assert_null(cJSON_GetObjectItem(reporter, "accountId"));
    cJSON_Delete(reporter);
    e2e_assert_quiet(e);
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"reporter\":\"Mia Krystof\"},"
                         "\"user\":\"Mia Krystof\"}",
                         key));
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *c = e2e_zoho_case(e, id);
    /* a person reaches a CRM text field as people read it: name and e-mail */
    assert_string_equal(e2e_zfield(c, "Reported_By"), "Mia Krystof <mia@acme.test>");
    cJSON_Delete(c);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

/* An issue deleted in Jira after linking does not break the reads of the others. */
static void test_dc_deleted_issue_does_not_break_reads(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = dc_linked_case(e, "Gone soon", &key);
    char *key2 = NULL, *id2 = dc_linked_case(e, "Stays", &key2);
    char path[200];
    snprintf(path, sizeof(path), "/_sim/issue/%s", key);
    cJSON_Delete(sim_call(&e->jira, "DELETE", path, NULL, NULL));
    for (int k = 0; k < 2; k++)
        cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                             "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Priority\":"
                             "\"Low\"}}",
                             k ? id2 : id));
    char *out = NULL;
    int rc = e2e_run(e, &out, "sync", "--once");
    assert_true(rc == 0 || rc == 1);
    assert_null(strstr(out, "does not exist for field"));
    free(out);
    cJSON *i = e2e_jira_issue(e, key2);
    assert_string_equal(e2e_jfield(i, "priority"), "Low");
    cJSON_Delete(i);
    free(key), free(id), free(key2), free(id2);
}

static void test_dc_config_is_checked(void **state)
{
    struct e2e *e = *state;
    char *out = NULL;
    write_dc_conf(e, "datacenter", "email = \"bot@acme.test\";");
    assert_int_equal(e2e_run(e, &out, "check", NULL), 2);
    assert_non_null(strstr(out, "crmbridge.conf:"));
    assert_non_null(strstr(out, "personal access token"));
    free(out);
    write_dc_conf(e, "server", "");
    assert_int_equal(e2e_run(e, &out, "check", NULL), 2);
    assert_non_null(strstr(out, "must be \"cloud\" or \"datacenter\" (got 'server')"));
    free(out);
    /* the Cloud flavor against a Data Center: refused, and said so without the token */
    e2e_write_conf(e, NULL);
    free(e2e_seed_case(e, "{\"Subject\":\"x\",\"Status\":\"New\"}"));
    int rc = e2e_run(e, &out, "sync", "--once");
    assert_true(rc != 0);
    assert_null(strstr(out, "sim-jira-dc-pat"));
    free(out);
    /* a wrong token is a clear authentication failure */
    write_dc_conf(e, "datacenter", "");
    setenv("CB_TEST_JIRA_PAT", "not-the-pat", 1);
    rc = e2e_run(e, &out, "sync", "--once");
    assert_true(rc != 0);
    assert_non_null(strstr(out, "jira rejected the credentials"));
    assert_null(strstr(out, "not-the-pat"));
    free(out);
    assert_int_equal(e2e_count_issues(e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dc_case_becomes_issue_in_wiki_markup, dc_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_dc_status_and_wiki_edit_reach_zoho, dc_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_dc_rich_wiki_degrades_to_readable_text, dc_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_dc_comments_both_ways, dc_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_dc_search_pages_by_start_at, dc_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_dc_users_by_name, dc_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_dc_deleted_issue_does_not_break_reads, dc_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_dc_config_is_checked, dc_setup, e2e_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
