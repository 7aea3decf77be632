/*
 * Tests for core/timeutil: parsing the time formats the APIs send, printing them back, round
 * trips, UTC offsets and the fake clock. Expected values come from a naive day-counting reference
 * in this file (checked against well-known epoch constants), never from the code under test.
 * Every test runs three times: with TZ=UTC, Asia/Shanghai and America/New_York.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/timeutil.h"
#include "tests/unit/testutil.h"

/* ---- independent reference: count days year by year, month by month ---- */

static int ref_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t ref_days(int64_t y, int m, int d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = 0;
    for (int64_t yy = 1970; yy < y; yy++)
        days += 365 + ref_leap(yy);
    for (int64_t yy = y; yy < 1970; yy++)
        days -= 365 + ref_leap(yy);
    for (int mm = 1; mm < m; mm++)
        days += mdays[mm - 1] + (mm == 2 && ref_leap(y));
    return days + d - 1;
}

/* Milliseconds since the epoch of a UTC wall-clock time. */
static int64_t ref_ms(int64_t y, int mo, int d, int h, int mi, int s, int ms)
{
    return ((ref_days(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)s * 1000 + ms;
}

static int64_t floor_to(int64_t v, int64_t unit)
{
    int64_t q = v / unit;
    if (v % unit < 0)
        q--;
    return q * unit;
}

static void assert_parses(const char *s, int64_t want)
{
    int64_t got = 0;
    if (cbtime_parse(s, &got) != CB_OK)
        fail_msg("cannot parse '%s'", s);
    if (got != want)
        fail_msg("'%s': got %lld, want %lld", s, (long long)got, (long long)want);
}

static void assert_rejects(const char *s)
{
    const int64_t sentinel = 4242;
    int64_t got = sentinel;
    if (cbtime_parse(s, &got) != CB_ERR_PARSE)
        fail_msg("'%s' was accepted as %lld", s ? s : "(null)", (long long)got);
    assert_int_equal(got, sentinel); /* a failed parse leaves *ms alone */
}

/* ---- the reference itself ---- */

static void test_reference_matches_known_constants(void **state)
{
    (void)state;
    assert_int_equal(ref_ms(1970, 1, 1, 0, 0, 0, 0), 0);
    assert_int_equal(ref_ms(2000, 1, 1, 0, 0, 0, 0), 946684800000LL);
    assert_int_equal(ref_ms(2001, 9, 9, 1, 46, 40, 0), 1000000000000LL);
    assert_int_equal(ref_ms(2038, 1, 19, 3, 14, 7, 0), 2147483647000LL);
    assert_int_equal(ref_ms(1969, 7, 20, 20, 17, 40, 0), -14182940000LL);
    assert_int_equal(ref_ms(1900, 1, 1, 0, 0, 0, 0), -2208988800000LL);
}

/* ---- parsing ---- */

static void test_parse_iso_offsets(void **state)
{
    (void)state;
    int64_t t = ref_ms(2026, 1, 2, 10, 11, 12, 0);
    assert_parses("2026-01-02T10:11:12Z", t);
    assert_parses("2026-01-02T10:11:12+00:00", t);
    assert_parses("2026-01-02T18:11:12+08:00", t);
    assert_parses("2026-01-02T18:11:12+0800", t);
    assert_parses("2026-01-02T04:41:12-05:30", t);
    assert_parses("2026-01-02T04:41:12-0530", t);
    assert_parses("2026-01-02T05:11:12-05", t);
    assert_parses("2026-01-02 18:11:12+08:00", t); /* space instead of 'T' (RFC 3339 allows it) */
    assert_parses("2026-01-02T10:11Z", ref_ms(2026, 1, 2, 10, 11, 0, 0)); /* no seconds */
}

static void test_parse_iso_fractions(void **state)
{
    (void)state;
    assert_parses("2026-01-02T10:11:12.123Z", ref_ms(2026, 1, 2, 10, 11, 12, 123));
    assert_parses("2026-01-02T10:11:12.1Z", ref_ms(2026, 1, 2, 10, 11, 12, 100));
    assert_parses("2026-01-02T10:11:12.12Z", ref_ms(2026, 1, 2, 10, 11, 12, 120));
    /* sub-millisecond digits are truncated, not rounded */
    assert_parses("2026-01-02T10:11:12.123456Z", ref_ms(2026, 1, 2, 10, 11, 12, 123));
    assert_parses("2026-01-02T10:11:12.999999+08:00", ref_ms(2026, 1, 2, 2, 11, 12, 999));
    assert_rejects("2026-01-02T10:11:12.Z");
}

static void test_parse_service_samples(void **state)
{
    (void)state;
    /* Jira fields.updated: milliseconds and a colon-less offset */
    assert_parses("2022-12-08T02:22:18.889-0800", ref_ms(2022, 12, 8, 10, 22, 18, 889));
    /* Zoho Modified_Time: seconds and a colon offset */
    assert_parses("2026-01-02T10:11:12+05:30", ref_ms(2026, 1, 2, 4, 41, 12, 0));
    /* HTTP Date / Retry-After dates */
    assert_parses("Fri, 02 Jan 2026 10:11:12 GMT", ref_ms(2026, 1, 2, 10, 11, 12, 0));
    assert_parses("Thu, 01 Jan 1970 00:00:00 GMT", 0);
}

static void test_parse_date_and_epoch(void **state)
{
    (void)state;
    assert_parses("2026-01-02", ref_ms(2026, 1, 2, 0, 0, 0, 0));
    assert_parses("1969-12-31", ref_ms(1969, 12, 31, 0, 0, 0, 0));
    int64_t t = ref_ms(2026, 1, 2, 10, 11, 12, 345);
    char digits[32];
    snprintf(digits, sizeof(digits), "%lld", (long long)t);
    assert_parses(digits, t);
    assert_parses("1000000000000", 1000000000000LL);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    assert_rejects(NULL);
    assert_rejects("");
    assert_rejects("garbage");
    assert_rejects("not a date, really");
    assert_rejects("2026-01-02T10:11:12");     /* no offset: ambiguous */
    assert_rejects("2026-01-02T10:11:12.123"); /* no offset either */
    assert_rejects("2026-13-01");
    assert_rejects("2026-00-10");
    assert_rejects("2026-01-00");
    assert_rejects("2026-01-32");
    assert_rejects("2026-02-30");
    assert_rejects("2026-04-31T00:00:00Z");
    assert_rejects("2023-02-29");
    assert_rejects("2026-01-02T24:00:00Z");
    assert_rejects("2026-01-02T10:60:00Z");
    assert_rejects("2026-01-02T10:11:12+15:00");
    assert_rejects("2026-01-02T10:11:12+08:60");
    assert_rejects("2026-01-02T10:11:12Zjunk");
    assert_rejects("2026-01-02T10:11:12+08:00 ");
    assert_rejects("2026-01-02T10:11:12+08:00x");
    assert_rejects("2026-01-02junk");
    assert_rejects("2026-01-02T");
    assert_rejects("2026-1-2");
    assert_rejects("12345"); /* too short for epoch ms */
    assert_rejects("Fri, 02 Jan 2026 10:11:12 GMTjunk");
    assert_rejects("Fri, 02 Jan 2026 10:11:12 PST");
    assert_rejects("Fri, 02 Foo 2026 10:11:12 GMT");
    assert_rejects("Mon, 30 Feb 2026 10:11:12 GMT");
    assert_rejects("Fri, 02 Jan 2026 10:11:12");
}

static void test_parse_leap_years(void **state)
{
    (void)state;
    assert_parses("2024-02-29", ref_ms(2024, 2, 29, 0, 0, 0, 0));
    assert_parses("2024-02-29T23:59:59Z", ref_ms(2024, 2, 29, 23, 59, 59, 0));
    assert_parses("2000-02-29", ref_ms(2000, 2, 29, 0, 0, 0, 0)); /* divisible by 400 */
    assert_rejects("1900-02-29");                                 /* divisible by 100 only */
    assert_rejects("2100-02-29");
    assert_parses("Thu, 29 Feb 2024 12:00:00 GMT", ref_ms(2024, 2, 29, 12, 0, 0, 0));
    assert_rejects("Wed, 29 Feb 2023 12:00:00 GMT");
}

static void test_parse_offsets_cross_boundaries(void **state)
{
    (void)state;
    /* a negative offset pushes the UTC instant into the next day, month and year */
    assert_parses("2025-12-31T22:00:00-05:00", ref_ms(2026, 1, 1, 3, 0, 0, 0));
    assert_parses("2024-02-28T23:30:00-01:00", ref_ms(2024, 2, 29, 0, 30, 0, 0));
    /* a positive offset pulls it back into the previous day, month and year */
    assert_parses("2026-01-01T01:00:00+08:00", ref_ms(2025, 12, 31, 17, 0, 0, 0));
    assert_parses("2024-03-01T00:30:00+01:00", ref_ms(2024, 2, 29, 23, 30, 0, 0));
    assert_parses("1970-01-01T00:00:00+00:01", -60000);
    assert_parses("1969-12-31T19:00:00.001-05:00", 1);
}

static void test_parse_offset_forms(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int minutes;
    } ok[] = {{"Z", 0},        {"UTC", 0},      {"GMT", 0},       {"+00:00", 0},   {"+08:00", 480},
              {"+0800", 480},  {"+08", 480},    {"-05:30", -330}, {"-0530", -330}, {"-05", -300},
              {"+05:45", 345}, {"+14:00", 840}, {"-12:00", -720}, {"-00:30", -30}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int m = 9999;
        if (cbtime_parse_offset(ok[i].s, &m) != CB_OK)
            fail_msg("offset '%s' rejected", ok[i].s);
        if (m != ok[i].minutes)
            fail_msg("offset '%s': got %d, want %d", ok[i].s, m, ok[i].minutes);
    }
    static const char *const bad[] = {"",       "08:00",  "+8:00",  "+08:0", "+08:00x", "+15:00",
                                      "+08:60", "+08-00", "+0800 ", "*0800", "+ab:cd",  "x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int m = 9999;
        if (cbtime_parse_offset(bad[i], &m) != CB_ERR_PARSE)
            fail_msg("offset '%s' accepted as %d", bad[i], m);
        assert_int_equal(m, 9999);
    }
}

/* ---- formatting ---- */

static void assert_formats(char *(*fn)(int64_t, int, char *), int64_t ms, int off, const char *want)
{
    char buf[CBTIME_BUFSZ];
    assert_string_equal(fn(ms, off, buf), want);
}

static void test_format_iso(void **state)
{
    (void)state;
    int64_t t = ref_ms(2026, 1, 2, 10, 11, 12, 345);
    assert_formats(cbtime_format_iso, t, 0, "2026-01-02T10:11:12+00:00");
    assert_formats(cbtime_format_iso, t, 480, "2026-01-02T18:11:12+08:00");
    assert_formats(cbtime_format_iso, t, -330, "2026-01-02T04:41:12-05:30");
    assert_formats(cbtime_format_iso, ref_ms(2025, 12, 31, 22, 0, 0, 0), 480,
                   "2026-01-01T06:00:00+08:00");
    assert_formats(cbtime_format_iso, ref_ms(2026, 1, 1, 3, 0, 0, 0), -300,
                   "2025-12-31T22:00:00-05:00");
    assert_formats(cbtime_format_iso, -1, 0, "1969-12-31T23:59:59+00:00");
}

static void test_format_iso_ms(void **state)
{
    (void)state;
    int64_t t = ref_ms(2022, 12, 8, 10, 22, 18, 889);
    assert_formats(cbtime_format_iso_ms, t, -480, "2022-12-08T02:22:18.889-0800");
    assert_formats(cbtime_format_iso_ms, t, 480, "2022-12-08T18:22:18.889+0800");
    assert_formats(cbtime_format_iso_ms, t, 0, "2022-12-08T10:22:18.889+0000");
    assert_formats(cbtime_format_iso_ms, t, -330, "2022-12-08T04:52:18.889-0530");
    assert_formats(cbtime_format_iso_ms, ref_ms(2026, 1, 2, 0, 0, 0, 5), 0,
                   "2026-01-02T00:00:00.005+0000");
    assert_formats(cbtime_format_iso_ms, -1, 0, "1969-12-31T23:59:59.999+0000");
    assert_formats(cbtime_format_iso_ms, -1000, 0, "1969-12-31T23:59:59.000+0000");
}

static void test_format_date(void **state)
{
    (void)state;
    int64_t t = ref_ms(2026, 1, 1, 20, 0, 0, 0);
    assert_formats(cbtime_format_date, t, 0, "2026-01-01");
    assert_formats(cbtime_format_date, t, 480, "2026-01-02");
    assert_formats(cbtime_format_date, ref_ms(2026, 1, 1, 2, 0, 0, 0), -330, "2025-12-31");
    assert_formats(cbtime_format_date, ref_ms(2024, 2, 29, 0, 0, 0, 0), 0, "2024-02-29");
    assert_formats(cbtime_format_date, -1, 0, "1969-12-31");
}

static void test_format_rfc1123(void **state)
{
    (void)state;
    char buf[CBTIME_BUFSZ];
    assert_string_equal(cbtime_format_rfc1123(ref_ms(2026, 1, 2, 10, 11, 12, 999), buf),
                        "Fri, 02 Jan 2026 10:11:12 GMT");
    assert_string_equal(cbtime_format_rfc1123(0, buf), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_string_equal(cbtime_format_rfc1123(-1, buf), "Wed, 31 Dec 1969 23:59:59 GMT");
    assert_string_equal(cbtime_format_rfc1123(ref_ms(2000, 2, 29, 0, 0, 0, 0), buf),
                        "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_string_equal(cbtime_format_rfc1123(ref_ms(2100, 12, 31, 23, 59, 59, 0), buf),
                        "Fri, 31 Dec 2100 23:59:59 GMT");

    /* weekday over ten years of consecutive days either side of the epoch: 1970-01-01 was a
     * Thursday, so the reference weekday is (days + 4) mod 7 */
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    for (int64_t day = -1830; day <= 1830; day++) {
        cbtime_format_rfc1123(day * 86400000 + 43200000, buf);
        int w = (int)(((day % 7) + 7 + 4) % 7);
        if (strncmp(buf, wd[w], 3) != 0)
            fail_msg("day %lld: '%s' should start with %s", (long long)day, buf, wd[w]);
    }
}

/* ---- round trips ---- */

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void check_round_trip(int64_t x)
{
    static const int offsets[] = {0, 480, -480, -330, 330, 345, 840, -720, 60, -60};
    char buf[CBTIME_BUFSZ];
    int64_t got;
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        int off = offsets[i];
        cbtime_format_iso_ms(x, off, buf);
        if (cbtime_parse(buf, &got) != CB_OK || got != x)
            fail_msg("iso_ms %lld at %+d -> '%s' -> %lld", (long long)x, off, buf, (long long)got);
        cbtime_format_iso(x, off, buf);
        if (cbtime_parse(buf, &got) != CB_OK || got != floor_to(x, 1000))
            fail_msg("iso %lld at %+d -> '%s' -> %lld", (long long)x, off, buf, (long long)got);
    }
    cbtime_format_rfc1123(x, buf);
    if (cbtime_parse(buf, &got) != CB_OK || got != floor_to(x, 1000))
        fail_msg("rfc1123 %lld -> '%s' -> %lld", (long long)x, buf, (long long)got);
    cbtime_format_date(x, 0, buf);
    if (cbtime_parse(buf, &got) != CB_OK || got != floor_to(x, 86400000))
        fail_msg("date %lld -> '%s' -> %lld", (long long)x, buf, (long long)got);
}

static void test_round_trip(void **state)
{
    (void)state;
    const int64_t lo = ref_ms(1900, 1, 1, 0, 0, 0, 0);
    const int64_t hi = ref_ms(2101, 1, 1, 0, 0, 0, 0);
    static const int64_t edges[] = {0,   -1,   1,        -999,     -1000,     -1001,
                                    999, 1000, 86399999, 86400000, -86400000, -86400001};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        check_round_trip(edges[i]);
    check_round_trip(lo);
    check_round_trip(hi - 1);
    check_round_trip(ref_ms(2100, 2, 28, 23, 59, 59, 999));
    check_round_trip(ref_ms(2100, 3, 1, 0, 0, 0, 0));
    check_round_trip(ref_ms(1904, 2, 29, 12, 0, 0, 1));
    for (int i = 0; i < 5000; i++)
        check_round_trip(lo + (int64_t)(rng_next() % (uint64_t)(hi - lo)));
}

/* ---- the clock ---- */

static void test_now_fake_and_real(void **state)
{
    (void)state;
    setenv("CRMBRIDGE_FAKE_NOW_MS", "1767348672345", 1);
    assert_int_equal(cbtime_now_ms(), 1767348672345LL);
    setenv("CRMBRIDGE_FAKE_NOW_MS", "0", 1);
    assert_int_equal(cbtime_now_ms(), 0);
    unsetenv("CRMBRIDGE_FAKE_NOW_MS");
    /* bracket with the same clock: time() reads the coarse clock, which can lag a
     * full tick behind CLOCK_REALTIME and made this check flaky */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t now = cbtime_now_ms();
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t after = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    assert_true(now >= before && now <= after);
}

/* ---- running everything under several TZ settings ---- */

static int set_tz(const char *tz, long want_gmtoff)
{
    setenv("TZ", tz, 1);
    tzset();
    /* make sure the zone really took effect, or the repetition proves nothing */
    time_t jan = (time_t)(ref_ms(2026, 1, 15, 12, 0, 0, 0) / 1000);
    struct tm tm;
    localtime_r(&jan, &tm);
    if (tm.tm_gmtoff != want_gmtoff) {
        fprintf(stderr, "TZ=%s gives offset %ld, want %ld (tzdata missing?)\n", tz,
                (long)tm.tm_gmtoff, want_gmtoff);
        return -1;
    }
    return 0;
}

static int setup_utc(void **state)
{
    (void)state;
    return set_tz("UTC", 0);
}

static int setup_shanghai(void **state)
{
    (void)state;
    return set_tz("Asia/Shanghai", 8 * 3600);
}

static int setup_new_york(void **state)
{
    (void)state;
    return set_tz("America/New_York", -5 * 3600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_matches_known_constants),
        cmocka_unit_test(test_parse_iso_offsets),
        cmocka_unit_test(test_parse_iso_fractions),
        cmocka_unit_test(test_parse_service_samples),
        cmocka_unit_test(test_parse_date_and_epoch),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_leap_years),
        cmocka_unit_test(test_parse_offsets_cross_boundaries),
        cmocka_unit_test(test_parse_offset_forms),
        cmocka_unit_test(test_format_iso),
        cmocka_unit_test(test_format_iso_ms),
        cmocka_unit_test(test_format_date),
        cmocka_unit_test(test_format_rfc1123),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_now_fake_and_real),
    };
    int failed = cmocka_run_group_tests_name("time, TZ=UTC", tests, setup_utc, NULL);
    failed += cmocka_run_group_tests_name("time, TZ=Asia/Shanghai", tests, setup_shanghai, NULL);
    failed += cmocka_run_group_tests_name("time, TZ=America/New_York", tests, setup_new_york, NULL);
    return failed;
}
