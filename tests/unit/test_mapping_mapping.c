/*
 * The declarative mapping: the built-in Zoho <-> Jira default, value maps both ways, pseudo
 * fields, directions, defaults, and errors that name file and line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/mapping.h"
#include "tests/unit/testutil.h"

static struct mapping *builtin(void)
{
    struct mapping *m = NULL;
    struct strbuf err = STRBUF_INIT;
    assert_int_equal(mapping_load(NULL, "zoho", "jira", &m, &err), CB_OK);
    strbuf_release(&err);
    return m;
}

static int has(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (!strcmp(*list, s))
            return 1;
    return 0;
}

static void test_builtin_default_loads(void **state)
{
    struct mapping *m = builtin();
    const char *const *crm = mapping_remote_fields(m, SIDE_CRM);
    const char *const *trk = mapping_remote_fields(m, SIDE_TRACKER);
    assert_true(has(crm, "Subject") && has(crm, "Status") && has(crm, "Due_Date"));
    assert_true(has(trk, "summary") && has(trk, "status") && has(trk, "duedate"));
    assert_true(has(trk, "Customer") && has(trk, "$key"));
    assert_int_equal(mapping_policy(m, "title"), POLICY_MANUAL);
    mapping_free(m);

    /* the shipped file and the built-in default are the same text */
    char *path = NULL;
    struct strbuf err = STRBUF_INIT;
    size_t n = strlen(CB_SOURCE_DIR) + 64;
    path = malloc(n);
    snprintf(path, n, "%s/etc/mappings/zoho-jira.conf", CB_SOURCE_DIR);
    assert_int_equal(mapping_load(path, "zoho", "jira", &m, &err), CB_OK);
    mapping_free(m);
    free(path);
    strbuf_release(&err);
}

static void test_record_to_item_and_back(void **state)
{
    struct mapping *m = builtin();
    cJSON *fields = cJSON_Parse("{\"Subject\":\"Slow export\",\"Status\":\"On Hold\","
                                "\"Priority\":\"High\",\"Due_Date\":\"2026-12-01\","
                                "\"Account_Name\":\"Acme\",\"Unmapped\":\"x\"}");
    struct remote_view rv = {"123", "CASE-1", "https://crm/1", fields};
    struct strbuf warn = STRBUF_INIT;
    cJSON *item = mapping_to_item(m, SIDE_CRM, &rv, &warn);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(item, "status")), "waiting");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(item, "priority")), "high");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(item, "customer")), "Acme");
    assert_null(cJSON_GetObjectItem(item, "Unmapped"));
    assert_null(cJSON_GetObjectItem(item, "description")); /* not delivered: unknown, not empty */
    assert_int_equal(warn.len, 0);

    cJSON *remote = mapping_to_remote(m, SIDE_TRACKER, item, &warn);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(remote, "status")),
                        "Waiting for customer");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(remote, "priority")), "High");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(remote, "Customer")), "Acme");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(remote, "duedate")), "2026-12-01");
    cJSON_Delete(remote);

    /* customer flows only to the tracker; the key is read-only on the tracker side */
    remote = mapping_to_remote(m, SIDE_CRM, item, &warn);
    assert_null(cJSON_GetObjectItem(remote, "Account_Name"));
    cJSON_Delete(remote);
    cJSON_Delete(item);
    cJSON_Delete(fields);

    /* tracker side: status names are case-insensitive, the key fills tracker_ref */
    fields = cJSON_Parse("{\"summary\":\"S\",\"status\":\"in progress\",\"labels\":[\"b\",\"a\"]}");
    struct remote_view tv = {"10001", "SUP-9", NULL, fields};
    item = mapping_to_item(m, SIDE_TRACKER, &tv, &warn);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(item, "status")), "in_progress");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(item, "tracker_ref")), "SUP-9");
    remote = mapping_to_remote(m, SIDE_CRM, item, &warn);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(remote, "Status")), "Escalated");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(remote, "Jira_Issue")), "SUP-9");
    cJSON_Delete(remote);
    cJSON_Delete(item);
    cJSON_Delete(fields);
    strbuf_release(&warn);
    mapping_free(m);
}

static void test_unmapped_value_is_kept_and_reported(void **state)
{
    struct mapping *m = builtin();
    cJSON *fields = cJSON_Parse("{\"status\":\"Triage\"}");
    struct remote_view tv = {"1", "SUP-1", NULL, fields};
    struct strbuf warn = STRBUF_INIT;
    cJSON *item = mapping_to_item(m, SIDE_TRACKER, &tv, &warn);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(item, "status")), "Triage");
    assert_non_null(strstr(warn.buf, "Triage"));
    strbuf_reset(&warn);
    cJSON *remote = mapping_to_remote(m, SIDE_CRM, item, &warn);
    assert_null(cJSON_GetObjectItem(remote, "Status")); /* never write a value Zoho would reject */
    assert_non_null(strstr(warn.buf, "cannot be written"));
    assert_null(mapping_roundtrip(m, SIDE_CRM, "status", cJSON_GetObjectItem(item, "status")));
    cJSON_Delete(remote);
    cJSON_Delete(item);
    cJSON_Delete(fields);
    strbuf_release(&warn);
    mapping_free(m);
}

static void test_errors_name_file_and_line(void **state)
{
    char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/bad.conf", dir);
    assert_int_equal(tu_write_file(path,
                                   "fields = (\n"
                                   "  { item = \"title\"; crm = \"Subject\"; direction = \"sideways\"; },\n"
                                   "  { crm = \"X\"; },\n"
                                   "  { item = \"title\"; tracker = \"summary\"; colour = 1; }\n"
                                   ");\n"),
                     0);
    struct mapping *m = NULL;
    struct strbuf err = STRBUF_INIT;
    assert_int_equal(mapping_load(path, "zoho", "jira", &m, &err), CB_ERR_CONFIG);
    assert_null(m);
    assert_non_null(strstr(err.buf, "bad.conf:2: direction 'sideways'"));
    assert_non_null(strstr(err.buf, "bad.conf:3: field entry is missing 'item'"));
    assert_non_null(strstr(err.buf, "bad.conf:4: unknown field setting 'colour'"));
    assert_non_null(strstr(err.buf, "mapped twice"));

    assert_int_equal(tu_write_file(path, "fields = ( { item = \"title\" ; \n"), 0);
    strbuf_reset(&err);
    assert_int_equal(mapping_load(path, "zoho", "jira", &m, &err), CB_ERR_CONFIG);
    assert_non_null(strstr(err.buf, "bad.conf:"));

    strbuf_reset(&err);
    assert_int_equal(mapping_load(NULL, "zoho", "nosuch", &m, &err), CB_ERR_CONFIG);
    assert_non_null(strstr(err.buf, "no built-in mapping"));
    strbuf_release(&err);
    tu_rmrf(dir);
    free(dir);
}

static void test_create_defaults(void **state)
{
    struct mapping *m = builtin();
    const cJSON *d = mapping_create_defaults(m, SIDE_CRM);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "Case_Origin")), "Web");
    mapping_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_default_loads),
        cmocka_unit_test(test_record_to_item_and_back),
        cmocka_unit_test(test_unmapped_value_is_kept_and_reported),
        cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_create_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
