/*
 * Tests for connectors/filter_expr: Zoho criteria parsing (operators, escapes, and/or groups,
 * the errors a user gets for what is not supported) and matching on wire JSON records (strings,
 * lookups, multi-values, numbers, empty fields), and all-of filters built condition by condition.
 */
#include <stdlib.h>
#include <string.h>

#include "connectors/filter_expr.h"
#include "tests/unit/testutil.h"

/* A Zoho case as the API sends it. */
static const char *case_json =
    "{\"Status\":\"New\",\"Case_Origin\":\"Web\",\"Subject\":\"Printer (lab 2), jammed\","
    "\"Priority\":\"High\",\"Account_Name\":{\"name\":\"Acme Corp\",\"id\":\"555\"},"
    "\"Tags\":[\"vip\",\"emea\"],\"Amount\":42,\"Escalated\":false,\"Description\":null,"
    "\"Type\":\"\"}";

/* 1/0 for a match, -1 when the criteria does not parse. */
static int zmatch(const char *criteria)
{
    struct strbuf err = STRBUF_INIT;
    struct filter *f = NULL;
    cJSON *rec = cJSON_Parse(case_json);
    int rc = -1;
    if (filter_parse_zoho(criteria, &f, &err) == CB_OK)
        rc = filter_match(f, rec);
    else
        assert_null(f);
    filter_free(f);
    cJSON_Delete(rec);
    strbuf_release(&err);
    return rc;
}

static void test_zoho_single_conditions(void **state)
{
    (void)state;
    assert_int_equal(zmatch("(Case_Origin:equals:Web)"), 1);
    assert_int_equal(zmatch("(Case_Origin:equals:web)"), 1); /* case-insensitive */
    assert_int_equal(zmatch("(Case_Origin:equals:Phone)"), 0);
    assert_int_equal(zmatch("(Status:not_equal:Closed)"), 1);
    assert_int_equal(zmatch("(Status:not_equal:New)"), 0);
    assert_int_equal(zmatch("(Priority:starts_with:Hi)"), 1);
    assert_int_equal(zmatch("(Priority:starts_with:Lo)"), 0);
    assert_int_equal(zmatch("(Priority:in:Low,High)"), 1);
    assert_int_equal(zmatch("(Priority:in:Low,Medium)"), 0);
}

static void test_zoho_value_shapes(void **state)
{
    (void)state;
    assert_int_equal(zmatch("(Account_Name:equals:Acme Corp)"), 1); /* lookup by name */
    assert_int_equal(zmatch("(Tags:equals:emea)"), 1);              /* multi-select: any */
    assert_int_equal(zmatch("(Tags:not_equal:vip)"), 0);
    assert_int_equal(zmatch("(Amount:equals:42)"), 1);
    assert_int_equal(zmatch("(Escalated:equals:false)"), 1);
    assert_int_equal(zmatch("(Description:not_equal:x)"), 1); /* null has no value */
    assert_int_equal(zmatch("(Description:equals:)"), 0);
    assert_int_equal(zmatch("(Missing_Field:equals:x)"), 0);
    assert_int_equal(zmatch("(Type:in:Problem,Question)"), 0);
}

static void test_zoho_escapes(void **state)
{
    (void)state;
    assert_int_equal(zmatch("(Subject:equals:Printer \\(lab 2\\)\\, jammed)"), 1);
    assert_int_equal(zmatch("(Subject:in:x,Printer \\(lab 2\\)\\, jammed)"), 1);
    assert_int_equal(zmatch("(Subject:starts_with:Printer \\(lab)"), 1);
}

static void test_zoho_and_or(void **state)
{
    (void)state;
    assert_int_equal(zmatch("((Case_Origin:equals:Web)and(Status:equals:New))"), 1);
    assert_int_equal(zmatch("((Case_Origin:equals:Web)and(Status:equals:Closed))"), 0);
    assert_int_equal(zmatch("((Case_Origin:equals:Phone)or(Status:equals:New))"), 1);
    assert_int_equal(zmatch("((Case_Origin:equals:Phone)OR(Status:equals:Closed))"), 0);
    assert_int_equal(zmatch("(Case_Origin:equals:Web) and (Priority:equals:High)"), 1);
    /* ((A and B) or C), nested */
    assert_int_equal(zmatch("(((Status:equals:Closed)and(Priority:equals:High))or(Tags:in:vip))"),
                     1);
    assert_int_equal(zmatch("(((Status:equals:Closed)and(Priority:equals:High))or(Tags:in:apac))"),
                     0);
}

static void assert_parse_error(const char *criteria, const char *needle)
{
    struct strbuf err = STRBUF_INIT;
    struct filter *f = (struct filter *)1;
    assert_int_equal(filter_parse_zoho(criteria, &f, &err), CB_ERR_CONFIG);
    assert_null(f);
    if (!strstr(err.buf, needle))
        fail_msg("criteria '%s': got '%s', expected '%s'", criteria, err.buf, needle);
    strbuf_release(&err);
}

static void test_zoho_rejects(void **state)
{
    (void)state;
    assert_parse_error("Status:equals:New", "expected '('");
    assert_parse_error("(Status:greater_than:3)", "operator must be equals, not_equal");
    assert_parse_error("(Status:equals:New", "missing ')'");
    assert_parse_error("(Status=New)", "expected 'Field_API_name:operator:value'");
    assert_parse_error("(A:equals:1)and(B:equals:2)or(C:equals:3)", "group 'and' and 'or'");
    assert_parse_error("(A:equals:1) junk", "unexpected text");
    assert_parse_error("((A:equals:1)and(B:equals:2)", "expected ')'");
    assert_parse_error("(A:equals:a(b)", "must be escaped");
    assert_parse_error("", "expected '('");
}

static void collect(void *arg, const char *field)
{
    struct strbuf *sb = arg;
    (void)strbuf_addf(sb, "%s;", field);
}

static void test_fields_listed(void **state)
{
    (void)state;
    struct strbuf err = STRBUF_INIT, names = STRBUF_INIT;
    struct filter *f = NULL;
    assert_int_equal(filter_parse_zoho("((Status:equals:New)or(Priority:in:High,Low))", &f, &err),
                     CB_OK);
    filter_each_field(f, collect, &names);
    assert_string_equal(names.buf, "Status;Priority;");
    filter_free(f);
    strbuf_release(&err);
    strbuf_release(&names);
}

static void test_all_of(void **state)
{
    (void)state;
    const char *web[] = {"Web"}, *types[] = {"Problem", "Question"}, *pre[] = {"print"};
    cJSON *rec = cJSON_Parse(case_json);
    struct filter *f = filter_new_all();
    assert_int_equal(filter_match(f, rec), 1); /* no condition: everything */
    filter_add(f, "Case_Origin", FILTER_EQ, web, 1);
    filter_add(f, "Subject", FILTER_LIKE, (const char *const[]){"LAB 2"}, 1);
    filter_add(f, "Subject", FILTER_STARTS, pre, 1);
    filter_add(f, "Type", FILTER_NIN, types, 2);
    filter_add(f, "Type", FILTER_EMPTY, NULL, 0);
    filter_add(f, "Tags", FILTER_NEMPTY, NULL, 0);
    assert_int_equal(filter_match(f, rec), 1);
    filter_add(f, "Priority", FILTER_IN, types, 2);
    assert_int_equal(filter_match(f, rec), 0);
    filter_free(f);
    cJSON_Delete(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zoho_single_conditions),
        cmocka_unit_test(test_zoho_value_shapes),
        cmocka_unit_test(test_zoho_escapes),
        cmocka_unit_test(test_zoho_and_or),
        cmocka_unit_test(test_zoho_rejects),
        cmocka_unit_test(test_fields_listed),
        cmocka_unit_test(test_all_of),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
