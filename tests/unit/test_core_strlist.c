/*
 * Tests for core/strlist: pushes copy (the caller's string can change), has compares exactly
 * (case matters; NULL matches nothing), clear frees and leaves a list that can be used again.
 */
#include <string.h>

#include "core/strlist.h"
#include "tests/unit/testutil.h"

static void test_push_copies_and_has_compares_exactly(void **state)
{
    (void)state;
    struct strlist l = {0};
    char id[8] = "10001";
    strlist_push(&l, id);
    strlist_push(&l, "SUP-2");
    id[0] = '9';
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0], "10001");
    assert_true(strlist_has(&l, "10001"));
    assert_true(strlist_has(&l, "SUP-2"));
    assert_false(strlist_has(&l, "sup-2"));
    assert_false(strlist_has(&l, "90001"));
    assert_false(strlist_has(&l, NULL));
    strlist_clear(&l);
    assert_int_equal(l.n, 0);
    assert_null(l.v);
    assert_false(strlist_has(&l, "10001"));
    strlist_push(&l, "again");
    assert_true(strlist_has(&l, "again"));
    strlist_clear(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_copies_and_has_compares_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
