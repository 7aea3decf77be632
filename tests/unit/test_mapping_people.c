/*
 * People between two sides: a person read on one side becomes "Name <email>" (or the table's
 * name) in the item, and is written to the other side as that side's user id, found by the
 * mapping's table, by e-mail, by a display name only one user has, or else the fallback; an
 * unmapped person is left out, reported, and never read back as an edit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/mapping.h"
#include "tests/unit/testutil.h"

#define FIELDS                                                                                     \
    "fields = ( { item = \"assignee\"; crm = \"Owner\"; tracker = \"assignee\"; },\n"              \
    "           { item = \"reporter\"; crm = \"Reporter_Name\"; tracker = \"reporter\"; } );\n"

static struct mapping *load(const char *text, struct strbuf *err, enum cb_status want)
{
    char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/people.conf", dir);
    assert_int_equal(tu_write_file(path, text), 0);
    struct mapping *m = NULL;
    assert_int_equal(mapping_load(path, "zoho", "jira", &m, err), want);
    tu_rmrf(dir);
    free(dir);
    return m;
}

/* Directories: Zoho users (ids z*) and Jira users (account ids a*; one hides the e-mail, two
 * share a display name). Owner and assignee hold users; Reporter_Name is a text field. */
static struct mapping *with_people(const char *people)
{
    struct strbuf text = STRBUF_INIT, err = STRBUF_INIT;
    (void)strbuf_addf(&text, "%s%s", FIELDS, people);
    struct mapping *m = load(text.buf, &err, CB_OK);
    struct person_list z = {0}, j = {0};
    person_list_add(&z, "z1", "Li Wei", "li.wei@acme.cn");
    person_list_add(&z, "z2", "张伟", "zhang.wei@acme.cn");
    person_list_add(&z, "z3", "Chen Jing", "chen.jing@acme.cn");
    person_list_add(&z, "z4", "Integration Bot", "bot@acme.cn");
    person_list_add(&j, "a1", "Wei Li", "LI.WEI@acme.cn");
    person_list_add(&j, "a2", "张伟", NULL);
    person_list_add(&j, "a3", "Chen Jing", "cj1@other.com");
    person_list_add(&j, "a4", "Chen Jing", "cj2@other.com");
    person_list_add(&j, "a5", "Sync Bot", "bot@acme.com");
    const char *const zf[] = {"Owner", NULL}, *const jf[] = {"assignee", "reporter", NULL};
    mapping_set_people(m, SIDE_CRM, &z, zf);
    mapping_set_people(m, SIDE_TRACKER, &j, jf);
    assert_int_equal(z.n + j.n, 0); /* taken over */
    strbuf_release(&text);
    strbuf_release(&err);
    return m;
}

/* The item value a person object of side s reads as (owned string). */
static char *read_person(struct mapping *m, enum side s, const char *id, const char *name,
                         const char *email)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddItemToObject(f, s == SIDE_CRM ? "Owner" : "assignee", person_to_json(id, name, email));
    struct remote_view rv = {"1", "K-1", NULL, f};
    cJSON *item = mapping_to_item(m, s, &rv, NULL);
    char *v = strdup(cJSON_GetStringValue(cJSON_GetObjectItem(item, "assignee")));
    cJSON_Delete(item);
    cJSON_Delete(f);
    return v;
}

/* What mapping_to_remote writes to side s's field for an item assignee (owned JSON, or NULL
 * when the field is left out); warn collects the messages. */
static cJSON *write_person(struct mapping *m, enum side s, const char *who, struct strbuf *warn)
{
    cJSON *patch = cJSON_CreateObject();
    cJSON_AddStringToObject(patch, "assignee", who);
    cJSON *rem = mapping_to_remote(m, s, patch, warn);
    cJSON *v = cJSON_DetachItemFromObject(rem, s == SIDE_CRM ? "Owner" : "assignee");
    cJSON_Delete(rem);
    cJSON_Delete(patch);
    return v;
}

static void assert_string_json(const cJSON *v, const char *want)
{
    assert_non_null(v);
    assert_string_equal(cJSON_GetStringValue(v), want);
}

static void test_by_email_then_by_name(void **state)
{
    (void)state;
    struct mapping *m = with_people("");
    char *li = read_person(m, SIDE_CRM, "z1", "Li Wei", "li.wei@acme.cn");
    assert_string_equal(li, "Li Wei <li.wei@acme.cn>");
    cJSON *v = write_person(m, SIDE_TRACKER, li, NULL); /* e-mail, whatever the case and name */
    assert_string_json(v, "a1");
    cJSON_Delete(v);
    /* what Jira shows afterwards is that user as Jira names him: the read-back, not an edit */
    cJSON *in = cJSON_CreateString(li), *rt = mapping_roundtrip(m, SIDE_TRACKER, "assignee", in);
    assert_string_json(rt, "Wei Li <LI.WEI@acme.cn>");
    cJSON_Delete(rt);
    cJSON_Delete(in);
    free(li);

    /* Jira hides 张伟's e-mail: the display name, held by one Zoho user only, finds him */
    char *zw = read_person(m, SIDE_TRACKER, "a2", "张伟", NULL);
    assert_string_equal(zw, "张伟");
    v = write_person(m, SIDE_CRM, zw, NULL);
    assert_string_json(v, "z2");
    cJSON_Delete(v);
    free(zw);

    cJSON *none = cJSON_CreateObject();
    cJSON_AddNullToObject(none, "assignee");
    cJSON *rem = mapping_to_remote(m, SIDE_TRACKER, none, NULL);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(rem, "assignee"))); /* unassign stays unassign */
    cJSON_Delete(rem);
    cJSON_Delete(none);
    cJSON *nothing = mapping_take_unmapped(m);
    assert_int_equal(cJSON_GetArraySize(nothing), 0);
    cJSON_Delete(nothing);
    mapping_free(m);
}

static void test_unmapped_person_is_left_out_and_reported(void **state)
{
    (void)state;
    struct mapping *m = with_people("");
    struct strbuf warn = STRBUF_INIT;
    /* two Jira users are called Chen Jing and neither has her e-mail: no guess */
    cJSON *v = write_person(m, SIDE_TRACKER, "Chen Jing <chen.jing@acme.cn>", &warn);
    assert_null(v);
    assert_non_null(strstr(warn.buf, "'assignee' person 'Chen Jing <chen.jing@acme.cn>' has no "
                                     "user on the tracker side: left as it is"));
    v = write_person(m, SIDE_TRACKER, "Chen Jing <chen.jing@acme.cn>", NULL); /* again */
    assert_null(v);
    v = write_person(m, SIDE_TRACKER, "Wang Fang", NULL);
    assert_null(v);
    cJSON *in = cJSON_CreateString("Wang Fang");
    assert_null(mapping_roundtrip(m, SIDE_TRACKER, "assignee", in)); /* the merge keeps Jira's */
    cJSON_Delete(in);
    cJSON *un = mapping_take_unmapped(m);
    assert_int_equal(cJSON_GetArraySize(un), 2); /* each person once */
    cJSON *first = cJSON_GetArrayItem(un, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "side")), "tracker");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "field")), "assignee");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "name")),
                        "Chen Jing <chen.jing@acme.cn>");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(first, "fallback")));
    cJSON_Delete(un);
    un = mapping_take_unmapped(m);
    assert_int_equal(cJSON_GetArraySize(un), 0); /* taken */
    cJSON_Delete(un);
    assert_false(mapping_person_known(m, SIDE_TRACKER, "Wang Fang"));
    assert_true(mapping_person_known(m, SIDE_CRM, "Chen Jing <chen.jing@acme.cn>"));
    strbuf_release(&warn);
    mapping_free(m);
}

static void test_table_and_fallback(void **state)
{
    (void)state;
    struct mapping *m = with_people(
        "people = { table = ( { name = \"Chen Jing\"; crm = \"chen.jing@acme.cn\"; tracker = "
        "\"a4\"; } );\n"
        "           fallback = { tracker = \"bot@acme.com\"; crm = \"Integration Bot\"; }; };\n");
    /* the table names her on both sides, whatever each service calls her */
    char *cj = read_person(m, SIDE_CRM, "z3", "Chen Jing", "chen.jing@acme.cn");
    assert_string_equal(cj, "Chen Jing");
    cJSON *v = write_person(m, SIDE_TRACKER, cj, NULL);
    assert_string_json(v, "a4");
    cJSON_Delete(v);
    free(cj);
    cj = read_person(m, SIDE_TRACKER, "a4", "Chen Jing", "cj2@other.com");
    assert_string_equal(cj, "Chen Jing");
    free(cj);

    /* nobody matches: the fallback user, reported as such; the read-back is the fallback */
    v = write_person(m, SIDE_TRACKER, "Wang Fang", NULL);
    assert_string_json(v, "a5");
    cJSON_Delete(v);
    cJSON *in = cJSON_CreateString("Wang Fang");
    cJSON *rt = mapping_roundtrip(m, SIDE_TRACKER, "assignee", in);
    assert_string_json(rt, "Sync Bot <bot@acme.com>");
    cJSON_Delete(rt);
    cJSON_Delete(in);
    v = write_person(m, SIDE_CRM, "Someone Else", NULL);
    assert_string_json(v, "z4");
    cJSON_Delete(v);
    cJSON *un = mapping_take_unmapped(m);
    assert_int_equal(cJSON_GetArraySize(un), 2);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(un, 0), "fallback")));
    cJSON_Delete(un);
    mapping_free(m);
}

static void test_text_field_gets_the_name(void **state)
{
    (void)state;
    struct mapping *m = with_people("");
    /* Reporter_Name is a Zoho text field: the person arrives as readable text */
    cJSON *patch = cJSON_CreateObject();
    cJSON_AddStringToObject(patch, "reporter", "Wei Li <LI.WEI@acme.cn>");
    cJSON *rem = mapping_to_remote(m, SIDE_CRM, patch, NULL);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(rem, "Reporter_Name")),
                        "Wei Li <LI.WEI@acme.cn>");
    cJSON_Delete(rem);
    cJSON_Delete(patch);
    mapping_free(m);
}

static void test_people_config_errors(void **state)
{
    (void)state;
    struct strbuf err = STRBUF_INIT;
    struct mapping *m = load(FIELDS "people = { table = ( { crm = \"x@y\"; } ); colour = 1; };\n",
                             &err, CB_ERR_CONFIG);
    assert_null(m);
    assert_non_null(strstr(err.buf, "people.conf:3: each people table entry needs a name"));
    assert_non_null(strstr(err.buf, "unknown people setting 'colour'"));
    strbuf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_email_then_by_name),
        cmocka_unit_test(test_unmapped_person_is_left_out_and_reported),
        cmocka_unit_test(test_table_and_fallback),
        cmocka_unit_test(test_text_field_gets_the_name),
        cmocka_unit_test(test_people_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
