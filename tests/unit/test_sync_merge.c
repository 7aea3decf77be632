/*
 * The three-way merge on its own: which side changed, what flows where, conflicts and policies,
 * lossy value maps, one-way fields, and sets. Uses the built-in Zoho <-> Jira mapping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/mapping.h"
#include "sync/merge.h"
#include "tests/unit/testutil.h"

static struct mapping *load_map(const char *text)
{
    struct mapping *m = NULL;
    struct strbuf err = STRBUF_INIT;
    if (!text) {
        assert_int_equal(mapping_load(NULL, "zoho", "jira", &m, &err), CB_OK);
    } else {
        char *dir = tu_tmpdir();
        char path[512];
        snprintf(path, sizeof(path), "%s/m.conf", dir);
        assert_int_equal(tu_write_file(path, text), 0);
        enum cb_status st = mapping_load(path, "x", "y", &m, &err);
        if (st != CB_OK)
            fprintf(stderr, "%s\n", err.buf);
        assert_int_equal(st, CB_OK);
        tu_rmrf(dir);
        free(dir);
    }
    strbuf_release(&err);
    return m;
}

static cJSON *J(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    return j;
}

/* The base after an initial agreement on view. */
static cJSON *agreed(struct mapping *m, const char *crm, const char *trk)
{
    cJSON *v[2] = {J(crm), J(trk)};
    const cJSON *views[2] = {v[0], v[1]};
    int64_t mod[2] = {0, 0};
    struct merge_result r;
    merge_run(m, NULL, views, mod, NULL, NULL, &r);
    cJSON *base = cJSON_Duplicate(r.new_base, 1);
    merge_result_release(&r);
    cJSON_Delete(v[0]);
    cJSON_Delete(v[1]);
    return base;
}

static void run(struct mapping *m, const cJSON *base, const char *crm, const char *trk,
                int64_t mc, int64_t mt, struct merge_result *r)
{
    cJSON *v[2] = {J(crm), J(trk)};
    const cJSON *views[2] = {v[0], v[1]};
    int64_t mod[2] = {mc, mt};
    merge_run(m, base, views, mod, NULL, NULL, r);
    cJSON_Delete(v[0]);
    cJSON_Delete(v[1]);
}

static const char *patch_str(const struct merge_result *r, int side, const char *f)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r->patch[side], f));
}

static void test_one_side_change_flows(void **state)
{
    struct mapping *m = load_map(NULL);
    cJSON *base = agreed(m, "{\"title\":\"A\",\"status\":\"new\"}", "{\"title\":\"A\",\"status\":\"new\"}");
    struct merge_result r;
    run(m, base, "{\"title\":\"A\",\"status\":\"new\"}", "{\"title\":\"A\",\"status\":\"done\"}", 0, 0, &r);
    assert_string_equal(patch_str(&r, 0, "status"), "done");
    assert_int_equal(cJSON_GetArraySize(r.patch[1]), 0);
    assert_int_equal(r.n_conflicts, 0);
    /* the new base makes the same views a no-op */
    struct merge_result r2;
    run(m, r.new_base, "{\"title\":\"A\",\"status\":\"done\"}", "{\"title\":\"A\",\"status\":\"done\"}", 0, 0, &r2);
    assert_int_equal(cJSON_GetArraySize(r2.patch[0]) + cJSON_GetArraySize(r2.patch[1]), 0);
    assert_false(r2.changed);
    merge_result_release(&r);
    merge_result_release(&r2);
    cJSON_Delete(base);
    mapping_free(m);
}

static void test_same_change_both_sides_is_no_conflict(void **state)
{
    struct mapping *m = load_map(NULL);
    cJSON *base = agreed(m, "{\"title\":\"A\"}", "{\"title\":\"A\"}");
    struct merge_result r;
    run(m, base, "{\"title\":\"B\"}", "{\"title\":\"B  \"}", 0, 0, &r);
    assert_int_equal(r.n_conflicts, 0);
    assert_int_equal(cJSON_GetArraySize(r.patch[0]) + cJSON_GetArraySize(r.patch[1]), 0);
    merge_result_release(&r);
    cJSON_Delete(base);
    mapping_free(m);
}

static void test_conflict_manual_and_policies(void **state)
{
    struct mapping *m = load_map(NULL);
    cJSON *base = agreed(m, "{\"title\":\"A\",\"priority\":\"low\"}", "{\"title\":\"A\",\"priority\":\"low\"}");
    struct merge_result r;
    run(m, base, "{\"title\":\"B\",\"priority\":\"high\"}", "{\"title\":\"C\",\"priority\":\"low\"}", 0, 0, &r);
    assert_int_equal(r.n_conflicts, 1);
    assert_string_equal(r.conflicts[0].field, "title");
    assert_string_equal(cJSON_GetStringValue(r.conflicts[0].base), "A");
    assert_string_equal(cJSON_GetStringValue(r.conflicts[0].value[0]), "B");
    assert_string_equal(cJSON_GetStringValue(r.conflicts[0].value[1]), "C");
    assert_null(patch_str(&r, 0, "title"));
    assert_null(patch_str(&r, 1, "title"));
    assert_string_equal(patch_str(&r, 1, "priority"), "high"); /* other fields still flow */
    merge_result_release(&r);
    cJSON_Delete(base);
    mapping_free(m);

    m = load_map("fields = ( { item = \"title\"; crm = \"S\"; tracker = \"s\"; conflict = \"newest_wins\"; } );\nskew = 60;\n");
    base = agreed(m, "{\"title\":\"A\"}", "{\"title\":\"A\"}");
    run(m, base, "{\"title\":\"B\"}", "{\"title\":\"C\"}", 1000000, 1000000 + 61000, &r);
    assert_int_equal(r.n_conflicts, 0);
    assert_string_equal(patch_str(&r, 0, "title"), "C");
    merge_result_release(&r);
    run(m, base, "{\"title\":\"B\"}", "{\"title\":\"C\"}", 1000000, 1000000 + 30000, &r);
    assert_int_equal(r.n_conflicts, 1); /* within the skew tolerance: a person decides */
    merge_result_release(&r);
    cJSON_Delete(base);
    mapping_free(m);
}

static void test_crm_wins_and_tracker_wins(void **state)
{
    struct mapping *m = load_map("fields = ( { item = \"title\"; crm = \"S\"; tracker = \"s\"; conflict = \"crm_wins\"; },\n"
                                 "           { item = \"kind\"; crm = \"K\"; tracker = \"k\"; conflict = \"tracker_wins\"; } );\n");
    cJSON *base = agreed(m, "{\"title\":\"A\",\"kind\":\"bug\"}", "{\"title\":\"A\",\"kind\":\"bug\"}");
    struct merge_result r;
    run(m, base, "{\"title\":\"B\",\"kind\":\"task\"}", "{\"title\":\"C\",\"kind\":\"feedback\"}", 0, 0, &r);
    assert_int_equal(r.n_conflicts, 0);
    assert_string_equal(patch_str(&r, 1, "title"), "B");
    assert_string_equal(patch_str(&r, 0, "kind"), "feedback");
    merge_result_release(&r);
    cJSON_Delete(base);
    mapping_free(m);
}

static void test_labels_merge_as_sets(void **state)
{
    struct mapping *m = load_map("fields = ( { item = \"labels\"; crm = \"Tag\"; tracker = \"labels\"; } );\n");
    cJSON *base = agreed(m, "{\"labels\":[\"a\",\"b\"]}", "{\"labels\":[\"a\",\"b\"]}");
    struct merge_result r;
    /* crm adds c and drops a; tracker adds d: no conflict, both get {b, c, d} */
    run(m, base, "{\"labels\":[\"b\",\"c\"]}", "{\"labels\":[\"a\",\"b\",\"d\"]}", 0, 0, &r);
    assert_int_equal(r.n_conflicts, 0);
    const cJSON *p0 = cJSON_GetObjectItem(r.patch[0], "labels");
    const cJSON *p1 = cJSON_GetObjectItem(r.patch[1], "labels");
    cJSON *want = J("[\"b\",\"c\",\"d\"]");
    assert_true(item_value_equal("labels", p0, want));
    assert_true(item_value_equal("labels", p1, want));
    cJSON_Delete(want);
    merge_result_release(&r);
    cJSON_Delete(base);
    mapping_free(m);
}

static void test_forced_value_goes_to_both(void **state)
{
    struct mapping *m = load_map(NULL);
    cJSON *base = agreed(m, "{\"title\":\"A\"}", "{\"title\":\"A\"}");
    cJSON *v[2] = {J("{\"title\":\"B\"}"), J("{\"title\":\"C\"}")};
    const cJSON *views[2] = {v[0], v[1]};
    int64_t mod[2] = {0, 0};
    cJSON *forced = J("{\"title\":\"B\"}");
    struct merge_result r;
    merge_run(m, base, views, mod, NULL, forced, &r);
    assert_int_equal(r.n_conflicts, 0);
    assert_null(patch_str(&r, 0, "title")); /* already B */
    assert_string_equal(patch_str(&r, 1, "title"), "B");
    merge_result_release(&r);
    cJSON_Delete(forced);
    cJSON_Delete(v[0]);
    cJSON_Delete(v[1]);
    cJSON_Delete(base);
    mapping_free(m);
}

static void test_lossy_value_map_is_not_an_echo(void **state)
{
    /* Zoho has no 'rejected': it is written as Closed, which reads back as 'done'. */
    struct mapping *m = load_map(NULL);
    cJSON *base = agreed(m, "{\"status\":\"new\"}", "{\"status\":\"new\"}");
    struct merge_result r;
    run(m, base, "{\"status\":\"new\"}", "{\"status\":\"rejected\"}", 0, 0, &r);
    assert_string_equal(patch_str(&r, 0, "status"), "rejected");
    struct merge_result r2;
    /* after the write the CRM reads 'done' (Closed): that is our echo, not a human change */
    run(m, r.new_base, "{\"status\":\"done\"}", "{\"status\":\"rejected\"}", 0, 0, &r2);
    assert_int_equal(cJSON_GetArraySize(r2.patch[0]) + cJSON_GetArraySize(r2.patch[1]), 0);
    assert_int_equal(r2.n_conflicts, 0);
    merge_result_release(&r);
    merge_result_release(&r2);
    cJSON_Delete(base);
    mapping_free(m);
}

static void test_one_way_field(void **state)
{
    struct mapping *m = load_map(NULL);
    cJSON *base = agreed(m, "{\"customer\":\"Acme\"}", "{\"customer\":\"Acme\"}");
    struct merge_result r;
    run(m, base, "{\"customer\":\"Acme\"}", "{\"customer\":\"Globex\"}", 0, 0, &r);
    assert_int_equal(cJSON_GetArraySize(r.patch[0]), 0); /* to_tracker only */
    merge_result_release(&r);
    run(m, base, "{\"customer\":\"Initech\"}", "{\"customer\":\"Acme\"}", 0, 0, &r);
    assert_string_equal(patch_str(&r, 1, "customer"), "Initech");
    merge_result_release(&r);
    cJSON_Delete(base);
    mapping_free(m);
}

static void test_labels_are_sets(void **state)
{
    struct mapping *m = load_map("fields = ( { item = \"labels\"; crm = \"Tag\"; tracker = \"labels\"; } );\n");
    cJSON *base = agreed(m, "{\"labels\":[\"a\",\"b\"]}", "{\"labels\":[\"b\",\"a\"]}");
    struct merge_result r;
    run(m, base, "{\"labels\":[\"b\",\"a\",\"a\"]}", "{\"labels\":[\"a\",\"b\"]}", 0, 0, &r);
    assert_false(r.changed);
    merge_result_release(&r);
    cJSON_Delete(base);
    mapping_free(m);
}

static void test_create_base_then_key_flows_back(void **state)
{
    struct mapping *m = load_map(NULL);
    cJSON *src = J("{\"title\":\"X\",\"status\":\"new\",\"tracker_ref\":null}");
    cJSON *written = J("{\"title\":\"X\",\"status\":\"new\"}");
    cJSON *base = merge_base_for_create(m, SIDE_TRACKER, src, written);
    struct merge_result r;
    run(m, base, "{\"title\":\"X\",\"status\":\"new\",\"tracker_ref\":null}",
        "{\"title\":\"X\",\"status\":\"new\",\"tracker_ref\":\"SUP-7\"}", 0, 0, &r);
    assert_string_equal(patch_str(&r, 0, "tracker_ref"), "SUP-7");
    assert_int_equal(cJSON_GetArraySize(r.patch[1]), 0);
    merge_result_release(&r);
    cJSON_Delete(base);
    cJSON_Delete(src);
    cJSON_Delete(written);
    mapping_free(m);
}

/* A person with no user on the other side: nothing is written there, and the other side's own
 * assignee, left as it was, is not taken for an edit and copied back over the CRM's. */
static void test_unmapped_person_is_not_copied_back(void **state)
{
    (void)state;
    struct mapping *m = load_map("fields = ( { item = \"assignee\"; crm = \"Owner\"; "
                                 "tracker = \"assignee\"; } );\n");
    struct person_list z = {0}, j = {0};
    person_list_add(&z, "z1", "Li Wei", "li.wei@acme.cn");
    person_list_add(&z, "z2", "Wang Fang", "wang.fang@acme.cn");
    person_list_add(&j, "a1", "Li Wei", "li.wei@acme.cn");
    const char *const zf[] = {"Owner", NULL}, *const jf[] = {"assignee", NULL};
    mapping_set_people(m, SIDE_CRM, &z, zf);
    mapping_set_people(m, SIDE_TRACKER, &j, jf);
    const char *li = "{\"assignee\":\"Li Wei <li.wei@acme.cn>\"}";
    cJSON *base = agreed(m, li, li);
    struct merge_result r;
    run(m, base, "{\"assignee\":\"Wang Fang <wang.fang@acme.cn>\"}", li, 2, 1, &r);
    assert_null(cJSON_GetObjectItem(r.patch[SIDE_TRACKER], "assignee")); /* no Jira user */
    assert_int_equal(r.n_conflicts, 0);
    cJSON *tv = J(li);
    assert_false(merge_side_changed(m, r.new_base, SIDE_TRACKER, tv)); /* still Li Wei: no edit */
    cJSON *nb = cJSON_Duplicate(r.new_base, 1);
    merge_result_release(&r);
    run(m, nb, "{\"assignee\":\"Wang Fang <wang.fang@acme.cn>\"}", li, 3, 3, &r);
    assert_int_equal(cJSON_GetArraySize(r.patch[SIDE_CRM]), 0); /* nothing flows back */
    assert_int_equal(cJSON_GetArraySize(r.patch[SIDE_TRACKER]), 0);
    merge_result_release(&r);
    cJSON_Delete(nb);
    cJSON_Delete(base);

    /* a case created in Jira from a CRM case whose owner has no Jira user: the new issue's
     * first assignee (none, or a default) is Jira's own, not an edit that empties the CRM */
    cJSON *src = J("{\"assignee\":\"Wang Fang <wang.fang@acme.cn>\"}");
    cJSON *written = mapping_to_remote(m, SIDE_TRACKER, src, NULL);
    assert_null(cJSON_GetObjectItem(written, "assignee"));
    base = merge_base_for_create(m, SIDE_TRACKER, src, written);
    run(m, base, "{\"assignee\":\"Wang Fang <wang.fang@acme.cn>\"}", "{\"assignee\":null}", 1,
        1, &r);
    assert_int_equal(cJSON_GetArraySize(r.patch[SIDE_CRM]), 0);
    nb = cJSON_Duplicate(r.new_base, 1);
    merge_result_release(&r);
    run(m, nb, "{\"assignee\":\"Wang Fang <wang.fang@acme.cn>\"}", li, 1, 2, &r);
    assert_string_equal(patch_str(&r, SIDE_CRM, "assignee"), "Li Wei <li.wei@acme.cn>");
    merge_result_release(&r); /* ...and a later assignment in Jira is an edit again */
    cJSON_Delete(nb);
    cJSON_Delete(base);
    cJSON_Delete(written);
    cJSON_Delete(src);
    cJSON_Delete(tv);
    mapping_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_side_change_flows),
        cmocka_unit_test(test_same_change_both_sides_is_no_conflict),
        cmocka_unit_test(test_conflict_manual_and_policies),
        cmocka_unit_test(test_lossy_value_map_is_not_an_echo),
        cmocka_unit_test(test_crm_wins_and_tracker_wins),
        cmocka_unit_test(test_labels_merge_as_sets),
        cmocka_unit_test(test_forced_value_goes_to_both),
        cmocka_unit_test(test_one_way_field),
        cmocka_unit_test(test_labels_are_sets),
        cmocka_unit_test(test_create_base_then_key_flows_back),
        cmocka_unit_test(test_unmapped_person_is_not_copied_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
