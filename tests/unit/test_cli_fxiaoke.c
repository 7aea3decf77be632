/*
 * End to end with Fxiaoke / 纷享销客: the crmbridge binary against the Fxiaoke and Jira Cloud
 * simulators, for the preset CasesObj and a custom __c object. Each test checks both sides as a
 * person would see them, that the next run writes nothing, and that expired tokens, rows moving
 * while we page, lost answers and invalidated (作废) records leave nothing lost or duplicated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/strbuf.h"
#include "tests/unit/e2e.h"
#include "tests/unit/testutil.h"

struct fxe {
    struct sim fx, jira;
    char *dir;
    char conf[600];
};

#define FX_USER "FSUID_00000000000000000000000000000001"

/* pair_extra goes into the pair; object is the CRM side's object. */
static void write_conf(struct fxe *e, const char *object, const char *pair_extra)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "state_dir = \"%s/state\";\n"
             "endpoints = {\n"
             "  fx = { type = \"fxiaoke\"; api_url = \"%s\"; app_id = \"FSAID_SIMAPP01\";\n"
             "    app_secret = \"env:CB_TEST_FX_SECRET\"; permanent_code = \"file:%s/fx.code\";\n"
             "    user_id = \"" FX_USER "\"; rate_limit = 5000; };\n"
             "  jira = { type = \"jira\"; api_url = \"%s\"; email = \"bot@acme.test\";\n"
             "    api_token = \"env:CB_TEST_JIRA_TOKEN\"; search_lag = 0; };\n"
             "};\n"
             "pairs = ( { name = \"cases\";\n"
             "  crm = { endpoint = \"fx\"; object = \"%s\"; };\n"
             "  tracker = { endpoint = \"jira\"; project = \"SUP\"; issue_type = \"Task\"; };\n"
             "  overlap = 5; %s } );\n",
             e->dir, e->fx.base, e->dir, e->jira.base, object, pair_extra ? pair_extra : "");
    assert_int_equal(tu_write_file(e->conf, text), 0);
}

static int setup(void **state)
{
    struct fxe *e = calloc(1, sizeof(*e));
    e->dir = tu_tmpdir();
    assert_int_equal(sim_start(&e->fx, "fxiaoke", NULL), 0);
    assert_int_equal(sim_start(&e->jira, "jira", NULL), 0);
    char path[700];
    snprintf(path, sizeof(path), "%s/fx.code", e->dir);
    assert_int_equal(tu_write_file(path, "sim-permanent-code\n"), 0);
    setenv("CB_TEST_FX_SECRET", "sim-app-secret", 1);
    setenv("CB_TEST_JIRA_TOKEN", "sim-jira-token", 1);
    snprintf(e->conf, sizeof(e->conf), "%s/crmbridge.conf", e->dir);
    write_conf(e, "CasesObj", NULL);
    cJSON_Delete(sim_ctl(&e->fx, "POST", "/_sim/config", "{\"rate_calls\":5000}"));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/config",
                         "{\"rate\":{\"GET\":3000,\"POST\":3000,\"PUT\":3000}}"));
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct fxe *e = *state;
    sim_stop(&e->fx);
    sim_stop(&e->jira);
    tu_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

static int run(struct fxe *e, char **out, const char *a1, const char *a2)
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

static int sync_once(struct fxe *e)
{
    return run(e, NULL, "sync", "--once");
}

/* Fxiaoke requests that change data (every call is a POST; queries and tokens only read). */
static int fx_writes(const struct sim *s)
{
    static const char *const verbs[] = {"/create", "/update", "/invalid", "/delete", NULL};
    cJSON *log = sim_call(s, "GET", "/_sim/log", NULL, NULL);
    int n = 0;
    const cJSON *en;
    cJSON_ArrayForEach(en, log)
    {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(en, "path"));
        for (int i = 0; verbs[i]; i++)
            n += strstr(p, verbs[i]) != NULL;
    }
    cJSON_Delete(log);
    return n;
}

static void assert_quiet(struct fxe *e)
{
    sim_clear_log(&e->fx);
    sim_clear_log(&e->jira);
    assert_int_equal(sync_once(e), 0);
    assert_int_equal(fx_writes(&e->fx), 0);
    assert_int_equal(e2e_writes(&e->jira), 0);
}

static char *seed(struct fxe *e, const char *object, const char *record_json)
{
    cJSON *r = sim_ctl(&e->fx, "POST", "/_sim/seed", "{\"object\":\"%s\",\"records\":[%s]}", object,
                       record_json);
    char *id = strdup(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "ids"), 0)));
    cJSON_Delete(r);
    return id;
}

static cJSON *fx_records(struct fxe *e, const char *object)
{
    char path[128];
    snprintf(path, sizeof(path), "/_sim/records?object=%s", object);
    return sim_ctl(&e->fx, "GET", path, NULL);
}

/* A copy of the stored record's field f (caller frees), or NULL. */
static char *fx_field(struct fxe *e, const char *object, const char *id, const char *f)
{
    cJSON *all = fx_records(e, object);
    char *v = NULL;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data"))
    {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(r, f));
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r, "_id")), id) && s)
            v = strdup(s);
    }
    cJSON_Delete(all);
    return v;
}

static int count_issues(struct fxe *e)
{
    cJSON *all = sim_call(&e->jira, "GET", "/_sim/issues", NULL, NULL);
    int n = cJSON_GetArraySize(all);
    cJSON_Delete(all);
    return n;
}

static void transition(struct fxe *e, const char *key, const char *to)
{
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/transition",
                         "{\"key\":\"%s\",\"to\":\"%s\",\"user\":\"Mia Krystof\"}", key, to));
}

static double fx_stat(struct fxe *e, const char *key)
{
    cJSON *st = sim_ctl(&e->fx, "GET", "/_sim/stats", NULL);
    double v = cJSON_GetNumberValue(cJSON_GetObjectItem(st, key));
    cJSON_Delete(st);
    return v;
}

/* The issue's fields as one JSON text (caller frees), for substring checks of ADF. */
static char *issue_text(struct fxe *e, const char *key)
{
    struct e2e tmp = {.jira = e->jira};
    cJSON *i = e2e_jira_issue(&tmp, key);
    char *s = cJSON_PrintUnformatted(cJSON_GetObjectItem(i, "fields"));
    cJSON_Delete(i);
    return s;
}

static const char *jf(struct fxe *e, cJSON **keep, const char *key, const char *f)
{
    struct e2e tmp = {.jira = e->jira};
    cJSON_Delete(*keep);
    *keep = e2e_jira_issue(&tmp, key);
    return e2e_jfield(*keep, f);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_case_becomes_issue_and_status_comes_back(void **state)
{
    struct fxe *e = *state;
    char *id = seed(e, "CasesObj",
                    "{\"name\":\"导出报表太慢\",\"status\":\"新建\",\"priority\":\"紧急\","
                    "\"deadline\":\"2026-12-24\",\"account_id\":\"华为技术有限公司\","
                    "\"description\":\"需要支持：\\n* CSV\\n* XLSX（大文件）\"}");
    char *out = NULL;
    assert_int_equal(run(e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "created 0 in crm, 1 in tracker"));
    free(out);
    char *key = fx_field(e, "CasesObj", id, "tracker_ref__c");
    assert_non_null(key);
    cJSON *keep = NULL;
    assert_string_equal(jf(e, &keep, key, "summary"), "导出报表太慢");
    assert_string_equal(jf(e, &keep, key, "priority"), "Highest");
    assert_string_equal(jf(e, &keep, key, "status"), "To Do");
    assert_string_equal(jf(e, &keep, key, "duedate"), "2026-12-24");
    assert_string_equal(jf(e, &keep, key, "customfield_10050"), "华为技术有限公司");
    char *text = issue_text(e, key);
    assert_non_null(strstr(text, "bulletList"));
    assert_non_null(strstr(text, "XLSX（大文件）"));
    free(text);
    assert_quiet(e);
    /* a Jira transition reaches the record's status (as the option value of 已解决) */
    transition(e, key, "Done");
    assert_int_equal(sync_once(e), 0);
    char *status = fx_field(e, "CasesObj", id, "status__label");
    assert_string_equal(status, "已解决");
    free(status);
    assert_int_equal(fx_stat(e, "workflow_writes"), 0);
    assert_quiet(e);
    cJSON_Delete(keep);
    free(key);
    free(id);
}

static void test_custom_object_both_ways(void **state)
{
    struct fxe *e = *state;
    char map[700], extra[800];
    snprintf(map, sizeof(map), "%s/feedback.conf", e->dir);
    assert_int_equal(
        tu_write_file(map,
                      "fields = (\n"
                      "  { item = \"title\"; crm = \"name\"; tracker = \"summary\"; },\n"
                      "  { item = \"description\"; crm = \"field_content__c\";"
                      " tracker = \"description\"; },\n"
                      "  { item = \"status\"; crm = \"field_state__c\"; tracker = \"status\";\n"
                      "    crm_values = { new = [\"待处理\"]; in_progress = [\"处理中\"];"
                      " done = [\"已完成\"]; rejected = [\"不采纳\"]; waiting = [\"处理中\"]; };\n"
                      "    tracker_values = { new = [\"To Do\"]; in_progress = [\"In Progress\"];"
                      " waiting = [\"Waiting for customer\"]; done = [\"Done\"];"
                      " rejected = [\"Won't Do\"]; }; },\n"
                      "  { item = \"tracker_ref\"; crm = \"field_jira__c\"; tracker = \"$key\";"
                      " direction = \"to_crm\"; }\n"
                      ");\n"),
        0);
    snprintf(extra, sizeof(extra), "mapping = \"%s\";", map);
    write_conf(e, "object_feedback__c", extra);
    char *id = seed(e, "object_feedback__c",
                    "{\"name\":\"希望支持深色模式\",\"field_state__c\":\"待处理\","
                    "\"field_content__c\":\"夜间使用太刺眼\"}");
    assert_int_equal(sync_once(e), 0);
    char *key = fx_field(e, "object_feedback__c", id, "field_jira__c");
    assert_non_null(key);
    cJSON *keep = NULL;
    assert_string_equal(jf(e, &keep, key, "summary"), "希望支持深色模式");
    assert_quiet(e);
    transition(e, key, "Done");
    assert_int_equal(sync_once(e), 0);
    char *state_value = fx_field(e, "object_feedback__c", id, "field_state__c");
    assert_string_equal(state_value, "option3"); /* 已完成 */
    free(state_value);
    assert_quiet(e);
    /* the custom object never takes the preset path; only the comment sync queries the preset
     * ActiveRecordObj (follow-up records) there */
    assert_int_equal(sim_count(&e->fx, "POST", "/cgi/crm/v2/data/") -
                         sim_count(&e->fx, "POST", "/cgi/crm/v2/data/query"),
                     0);
    cJSON_Delete(keep);
    free(key);
    free(id);
}

static void test_custom_object_default_mapping(void **state)
{
    struct fxe *e = *state;
    write_conf(e, "object_feedback__c", NULL);
    char *out = NULL;
    assert_int_equal(run(e, &out, "check", NULL), 0);
    assert_non_null(strstr(out, "left unmapped (not on the object): description, status"));
    free(out);
    free(seed(e, "object_feedback__c", "{\"name\":\"报表导出支持中文文件名\"}"));
    assert_int_equal(sync_once(e), 0);
    cJSON *all = sim_call(&e->jira, "GET", "/_sim/issues", NULL, NULL);
    assert_int_equal(cJSON_GetArraySize(all), 1);
    assert_string_equal(e2e_jfield(cJSON_GetArrayItem(all, 0), "summary"),
                        "报表导出支持中文文件名");
    cJSON_Delete(all);
    assert_quiet(e);
}

static void test_token_expires_mid_cycle(void **state)
{
    struct fxe *e = *state;
    cJSON_Delete(sim_ctl(&e->fx, "POST", "/_sim/seed", "{\"object\":\"CasesObj\",\"count\":250}"));
    cJSON_Delete(sim_ctl(&e->fx, "POST", "/_sim/config", "{\"expire_tokens_after\":4}"));
    assert_int_equal(sync_once(e), 0);
    assert_int_equal(count_issues(e), 250);
    assert_int_equal(fx_stat(e, "tokens_minted"), 2);
    cJSON *all = fx_records(e, "CasesObj");
    int linked = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data"))
    {
        linked += cJSON_GetStringValue(cJSON_GetObjectItem(r, "tracker_ref__c")) != NULL;
    }
    cJSON_Delete(all);
    assert_int_equal(linked, 250);
    assert_quiet(e);
    assert_int_equal(fx_stat(e, "tokens_minted"), 2); /* kept in the cache between runs */
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_1000_edited_while_paging(void **state)
{
    struct fxe *e = *state;
    cJSON_Delete(sim_ctl(&e->fx, "POST", "/_sim/seed", "{\"object\":\"CasesObj\",\"count\":1000}"));
    cJSON_Delete(sim_ctl(&e->fx, "POST", "/_sim/config",
                         "{\"edit_while_paging\":300,\"edit_per_page\":30}"));
    assert_int_equal(sync_once(e), 0);
    assert_int_equal(sync_once(e), 0); /* edits made after their rows were read */
    assert_true(fx_stat(e, "edits_while_paging") >= 100);
    assert_int_equal(count_issues(e), 1000);
    cJSON *all = fx_records(e, "CasesObj");
    char *keys[1000];
    int n = 0, edited = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data"))
    {
        const char *k = cJSON_GetStringValue(cJSON_GetObjectItem(r, "tracker_ref__c"));
        assert_non_null(k);
        keys[n++] = strdup(k);
        const char *d = cJSON_GetStringValue(cJSON_GetObjectItem(r, "description"));
        if (d && strstr(d, "次修改") && edited++ < 20) { /* the latest edit reached Jira */
            char *text = issue_text(e, k);
            assert_non_null(strstr(text, d));
            free(text);
        }
    }
    cJSON_Delete(all);
    assert_int_equal(n, 1000);
    assert_true(edited >= 100);
    qsort(keys, (size_t)n, sizeof(*keys), cmp_str);
    for (int i = 1; i < n; i++)
        assert_string_not_equal(keys[i - 1], keys[i]); /* none linked twice */
    for (int i = 0; i < n; i++)
        free(keys[i]);
    assert_quiet(e);
}

static void test_lost_create_response_in_fxiaoke(void **state)
{
    struct fxe *e = *state;
    write_conf(e, "CasesObj", "create = \"both\";");
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/seed",
                         "{\"issues\":[{\"summary\":\"客户要求导出 PDF\"}]}"));
    cJSON_Delete(sim_ctl(&e->fx, "POST", "/_sim/faults",
                         "{\"rules\":[{\"path\":\"/cgi/crm/v2/data/create\","
                         "\"kind\":\"drop_response\",\"count\":1}]}"));
    char *out = NULL;
    tu_run_crmbridge(&out, "-c", e->conf, "sync", "--once", (char *)NULL);
    assert_non_null(strstr(out, "postponed"));
    free(out);
    assert_int_equal(run(e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "1 linked after recovery"));
    free(out);
    cJSON *all = fx_records(e, "CasesObj");
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data"))
    {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(r, "name"));
        if (!strcmp(name, "客户要求导出 PDF")) {
            n++;
            assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "status__label")),
                                "新建");
        }
    }
    cJSON_Delete(all);
    assert_int_equal(n, 1);
    assert_int_equal(count_issues(e), 1);
    assert_quiet(e);
}

static void test_invalidated_record_deletes_nothing(void **state)
{
    struct fxe *e = *state;
    char *id = seed(e, "CasesObj", "{\"name\":\"将被作废的工单\",\"status\":\"新建\"}");
    assert_int_equal(sync_once(e), 0);
    char *key = fx_field(e, "CasesObj", id, "tracker_ref__c");
    assert_non_null(key);
    cJSON_Delete(sim_ctl(&e->fx, "POST", "/_sim/edit",
                         "{\"object\":\"CasesObj\",\"id\":\"%s\",\"invalid\":true}", id));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"summary\":\"still here\"}}", key));
    char *out = NULL;
    assert_int_equal(run(e, &out, "sync", "--once"), 1); /* 1: a record was skipped */
    assert_non_null(strstr(out, "deletes are ignored"));
    free(out);
    assert_int_equal(count_issues(e), 1);
    cJSON *keep = NULL;
    assert_string_equal(jf(e, &keep, key, "summary"), "still here");
    char *life = fx_field(e, "CasesObj", id, "life_status");
    assert_string_equal(life, "invalid");
    free(life);
    char *name = fx_field(e, "CasesObj", id, "name");
    assert_string_equal(name, "将被作废的工单");
    free(name);
    cJSON_Delete(keep);
    free(key);
    free(id);
}

/* Under deletes = "archive", an invalidated (作废) record closes its issue as Won't Do (the
 * mapping's "rejected"), found by the sweep of linked ids; the link is cut and all is quiet. */
static void test_invalidated_record_archives_the_issue(void **state)
{
    struct fxe *e = *state;
    write_conf(e, "CasesObj", "deletes = \"archive\"; delete_sweep = 1;");
    char *id = seed(e, "CasesObj", "{\"name\":\"客户取消了需求\",\"status\":\"新建\"}");
    char *id2 = seed(e, "CasesObj", "{\"name\":\"保留的工单\",\"status\":\"新建\"}");
    assert_int_equal(sync_once(e), 0);
    char *key = fx_field(e, "CasesObj", id, "tracker_ref__c");
    assert_non_null(key);
    cJSON_Delete(sim_ctl(&e->fx, "POST", "/_sim/edit",
                         "{\"object\":\"CasesObj\",\"id\":\"%s\",\"invalid\":true}", id));
    sleep(1);
    char *out = NULL;
    assert_int_equal(run(e, &out, "sync", "--once"), 0);
    if (!strstr(out, "1 archived and 0 deleted in tracker"))
        fail_msg("sync said:\n%s", out);
    free(out);
    cJSON *keep = NULL;
    assert_string_equal(jf(e, &keep, key, "status"), "Won't Do");
    cJSON_Delete(keep);
    assert_int_equal(count_issues(e), 2);
    sleep(1);
    assert_quiet(e);
    free(key);
    free(id);
    free(id2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_case_becomes_issue_and_status_comes_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_custom_object_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_custom_object_default_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_expires_mid_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_1000_edited_while_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_create_response_in_fxiaoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalidated_record_deletes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalidated_record_archives_the_issue, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
