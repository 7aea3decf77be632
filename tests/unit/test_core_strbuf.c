/*
 * Tests for core/strbuf: growth, formatted appends, the cap (an append over it fails with
 * CB_ERR_TOOBIG and changes nothing), detach, reset, trimming and URL encoding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "tests/unit/testutil.h"

/* Copies the visible state of sb so a later call can be checked to have changed nothing. */
struct snapshot {
    char *text;
    size_t len;
};

static struct snapshot snap(const struct strbuf *sb)
{
    struct snapshot s = {xstrndup(sb->buf, sb->len), sb->len};
    return s;
}

static void assert_unchanged(const struct strbuf *sb, struct snapshot *s)
{
    assert_int_equal(sb->len, s->len);
    assert_memory_equal(sb->buf, s->text, s->len + 1);
    free(s->text);
}

static void test_init_is_empty(void **state)
{
    (void)state;
    struct strbuf sb = STRBUF_INIT;
    assert_non_null(sb.buf);
    assert_string_equal(sb.buf, "");
    assert_int_equal(sb.len, 0);
    strbuf_release(&sb); /* releasing an untouched buffer is fine */
    strbuf_init(&sb, 10);
    assert_string_equal(sb.buf, "");
    strbuf_reset(&sb);
    strbuf_trim_end(&sb);
    assert_string_equal(sb.buf, "");
    strbuf_release(&sb);
}

static void test_growth_keeps_contents(void **state)
{
    (void)state;
    struct strbuf sb = STRBUF_INIT;
    char want[5001];
    for (int i = 0; i < 5000; i++) {
        want[i] = (char)('a' + i % 26);
        assert_int_equal(strbuf_addch(&sb, want[i]), CB_OK);
        assert_int_equal(sb.len, (size_t)i + 1);
        assert_int_equal(sb.buf[sb.len], '\0');
    }
    want[5000] = '\0';
    assert_string_equal(sb.buf, want);
    assert_true(sb.alloc > sb.len);
    /* binary data with embedded NULs counts by length */
    strbuf_reset(&sb);
    assert_int_equal(strbuf_add(&sb, "a\0b", 3), CB_OK);
    assert_int_equal(sb.len, 3);
    assert_memory_equal(sb.buf, "a\0b", 4);
    assert_int_equal(strbuf_add(&sb, NULL, 0), CB_OK);
    assert_int_equal(sb.len, 3);
    strbuf_release(&sb);
}

static void test_addf(void **state)
{
    (void)state;
    struct strbuf sb = STRBUF_INIT;
    assert_int_equal(strbuf_adds(&sb, "issue "), CB_OK);
    assert_int_equal(strbuf_addf(&sb, "'%s-%d': %s", "SUP", 12, "http 429"), CB_OK);
    assert_string_equal(sb.buf, "issue 'SUP-12': http 429");
    assert_int_equal(strbuf_addf(&sb, "%s", ""), CB_OK);
    assert_int_equal(sb.len, strlen("issue 'SUP-12': http 429"));
    /* a long formatted string forces a reallocation during vsnprintf */
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    strbuf_reset(&sb);
    assert_int_equal(strbuf_addf(&sb, "<%s>%d", big, 7), CB_OK);
    assert_int_equal(sb.len, sizeof(big) - 1 + 3);
    assert_int_equal(sb.buf[0], '<');
    assert_string_equal(sb.buf + sb.len - 2, ">7");
    strbuf_release(&sb);
}

static void test_cap_enforced_and_unchanged(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb, 10);
    assert_int_equal(strbuf_adds(&sb, "12345"), CB_OK);

    struct snapshot s = snap(&sb);
    assert_int_equal(strbuf_adds(&sb, "678901"), CB_ERR_TOOBIG);
    assert_unchanged(&sb, &s);

    s = snap(&sb);
    assert_int_equal(strbuf_addf(&sb, "%d", 123456), CB_ERR_TOOBIG);
    assert_unchanged(&sb, &s);

    s = snap(&sb);
    assert_int_equal(strbuf_add_urlencoded(&sb, "a b c"), CB_ERR_TOOBIG); /* "a%20b" would fit */
    assert_unchanged(&sb, &s);

    /* exactly up to the cap is allowed, one byte more is not */
    assert_int_equal(strbuf_adds(&sb, "67890"), CB_OK);
    assert_string_equal(sb.buf, "1234567890");
    s = snap(&sb);
    assert_int_equal(strbuf_addch(&sb, 'x'), CB_ERR_TOOBIG);
    assert_unchanged(&sb, &s);
    assert_int_equal(strbuf_add(&sb, "", 0), CB_OK);

    /* an absurd length is refused rather than wrapping around */
    s = snap(&sb);
    assert_int_equal(strbuf_add(&sb, "x", (size_t)-1), CB_ERR_TOOBIG);
    assert_unchanged(&sb, &s);

    /* the cap survives release and reset */
    strbuf_release(&sb);
    assert_int_equal(sb.cap, 10);
    assert_int_equal(strbuf_adds(&sb, "12345678901"), CB_ERR_TOOBIG);
    assert_string_equal(sb.buf, "");
    strbuf_release(&sb);
}

static void test_uncapped_huge_length_refused(void **state)
{
    (void)state;
    struct strbuf sb = STRBUF_INIT;
    assert_int_equal(strbuf_adds(&sb, "abc"), CB_OK);
    struct snapshot s = snap(&sb);
    assert_int_equal(strbuf_add(&sb, "x", (size_t)-1), CB_ERR_TOOBIG);
    assert_unchanged(&sb, &s);
    s = snap(&sb);
    assert_int_equal(strbuf_add(&sb, "x", (size_t)-1 - 2), CB_ERR_TOOBIG);
    assert_unchanged(&sb, &s);
    strbuf_release(&sb);
}

static void test_detach_and_reset(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb, 100);
    char *empty = strbuf_detach(&sb); /* never NULL, even when nothing was allocated */
    assert_non_null(empty);
    assert_string_equal(empty, "");
    free(empty);

    assert_int_equal(strbuf_adds(&sb, "hello"), CB_OK);
    char *p = strbuf_detach(&sb);
    assert_string_equal(p, "hello");
    assert_string_equal(sb.buf, "");
    assert_int_equal(sb.len, 0);
    assert_int_equal(sb.cap, 100);
    /* the buffer is reusable after a detach and does not alias the detached string */
    assert_int_equal(strbuf_adds(&sb, "world"), CB_OK);
    assert_string_equal(p, "hello");
    free(p);

    strbuf_reset(&sb);
    assert_int_equal(sb.len, 0);
    assert_string_equal(sb.buf, "");
    assert_int_equal(strbuf_adds(&sb, "again"), CB_OK);
    assert_string_equal(sb.buf, "again");
    strbuf_release(&sb);
}

static void test_setf(void **state)
{
    (void)state;
    strbuf_setf(NULL, "ignored %d", 1); /* error out-parameters may be NULL */
    struct strbuf sb = STRBUF_INIT;
    assert_int_equal(strbuf_adds(&sb, "old text that is long"), CB_OK);
    strbuf_setf(&sb, "cannot open '%s'", "x.conf");
    assert_string_equal(sb.buf, "cannot open 'x.conf'");
    strbuf_setf(&sb, "%s", "");
    assert_string_equal(sb.buf, "");
    strbuf_release(&sb);
}

static void test_trim_end(void **state)
{
    (void)state;
    struct strbuf sb = STRBUF_INIT;
    assert_int_equal(strbuf_adds(&sb, "  keep  inner \t\r\n \n"), CB_OK);
    strbuf_trim_end(&sb);
    assert_string_equal(sb.buf, "  keep  inner");
    assert_int_equal(sb.len, strlen("  keep  inner"));
    strbuf_reset(&sb);
    assert_int_equal(strbuf_adds(&sb, " \n\t"), CB_OK);
    strbuf_trim_end(&sb);
    assert_string_equal(sb.buf, "");
    assert_int_equal(sb.len, 0);
    strbuf_release(&sb);
}

static void assert_urlencodes(const char *in, const char *want)
{
    struct strbuf sb = STRBUF_INIT;
    assert_int_equal(strbuf_adds(&sb, "q="), CB_OK);
    assert_int_equal(strbuf_add_urlencoded(&sb, in), CB_OK);
    assert_string_equal(sb.buf + 2, want);
    strbuf_release(&sb);
}

static void test_urlencode(void **state)
{
    (void)state;
    assert_urlencodes("", "");
    assert_urlencodes("AZaz09-_.~", "AZaz09-_.~");
    assert_urlencodes("a b", "a%20b");
    assert_urlencodes("updated >= -5m", "updated%20%3E%3D%20-5m");
    assert_urlencodes(":/?#[]@!$&'()*+,;=%",
                      "%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D%25");
    assert_urlencodes("\"\n", "%22%0A");
    assert_urlencodes("需求", "%E9%9C%80%E6%B1%82"); /* UTF-8 bytes, upper-case hex */
    assert_urlencodes("反馈 ok", "%E5%8F%8D%E9%A6%88%20ok");
}

static void test_large_appends(void **state)
{
    (void)state;
    const size_t chunk = 64 * 1024, total = 10 * 1024 * 1024;
    char *block = xmalloc(chunk);
    for (size_t i = 0; i < chunk; i++)
        block[i] = (char)('A' + i % 23);
    struct strbuf sb = STRBUF_INIT;
    for (size_t done = 0; done < total; done += chunk)
        assert_int_equal(strbuf_add(&sb, block, chunk), CB_OK);
    assert_int_equal(sb.len, total);
    assert_int_equal(sb.buf[total], '\0');
    for (size_t off = 0; off < total; off += chunk)
        assert_memory_equal(sb.buf + off, block, chunk);

    /* one 10 MiB append into a buffer capped just below and just at that size */
    struct strbuf capped;
    strbuf_init(&capped, total - 1);
    assert_int_equal(strbuf_add(&capped, sb.buf, total), CB_ERR_TOOBIG);
    assert_int_equal(capped.len, 0);
    strbuf_release(&capped);
    strbuf_init(&capped, total);
    assert_int_equal(strbuf_add(&capped, sb.buf, total), CB_OK);
    assert_memory_equal(capped.buf, sb.buf, total + 1);
    strbuf_release(&capped);

    char *p = strbuf_detach(&sb);
    assert_int_equal(strlen(p), total);
    free(p);
    free(block);
}

static void test_helpers(void **state)
{
    (void)state;
    assert_true(str_eq(NULL, NULL));
    assert_false(str_eq("a", NULL));
    assert_false(str_eq(NULL, "a"));
    assert_true(str_eq("abc", "abc"));
    assert_false(str_eq("abc", "abd"));
    char *d = xstrndup("abcdef", 3);
    assert_string_equal(d, "abc");
    free(d);
    d = xstrdup("");
    assert_string_equal(d, "");
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_is_empty),
        cmocka_unit_test(test_growth_keeps_contents),
        cmocka_unit_test(test_addf),
        cmocka_unit_test(test_cap_enforced_and_unchanged),
        cmocka_unit_test(test_uncapped_huge_length_refused),
        cmocka_unit_test(test_detach_and_reset),
        cmocka_unit_test(test_setf),
        cmocka_unit_test(test_trim_end),
        cmocka_unit_test(test_urlencode),
        cmocka_unit_test(test_large_appends),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests_name("strbuf", tests, NULL, NULL);
}
