/*
 * Time parsing and printing without the C library's local-time machinery: conversions go through
 * a days-from-civil calculation, so results never depend on TZ. Leap seconds are not modelled
 * (no API here emits them).
 */
#include "core/timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const wday_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const mon_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t yy = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned dd = doy - (153 * mp + 2) / 5 + 1;
    const unsigned mm = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

enum cb_status cbtime_parse_offset(const char *s, int *minutes)
{
    if (strcmp(s, "Z") == 0 || strcasecmp(s, "UTC") == 0 || strcasecmp(s, "GMT") == 0) {
        *minutes = 0;
        return CB_OK;
    }
    if (s[0] != '+' && s[0] != '-')
        return CB_ERR_PARSE;
    int h, m = 0;
    size_t n = strlen(s);
    if (n == 3) {
        if (digits(s + 1, 2, &h))
            return CB_ERR_PARSE;
    } else if (n == 5) {
        if (digits(s + 1, 2, &h) || digits(s + 3, 2, &m))
            return CB_ERR_PARSE;
    } else if (n == 6 && s[3] == ':') {
        if (digits(s + 1, 2, &h) || digits(s + 4, 2, &m))
            return CB_ERR_PARSE;
    } else {
        return CB_ERR_PARSE;
    }
    if (h > 14 || m > 59)
        return CB_ERR_PARSE;
    *minutes = (s[0] == '-' ? -1 : 1) * (h * 60 + m);
    return CB_OK;
}

static enum cb_status parse_iso(const char *s, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, se = 0, frac = 0, off = 0;
    if (strlen(s) < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
        s[7] != '-' || digits(s + 8, 2, &d))
        return CB_ERR_PARSE;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return CB_ERR_PARSE;
    const char *p = s + 10;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (digits(p, 2, &h) || p[2] != ':' || digits(p + 3, 2, &mi))
            return CB_ERR_PARSE;
        p += 5;
        if (*p == ':') {
            if (digits(p + 1, 2, &se))
                return CB_ERR_PARSE;
            p += 3;
        }
        if (*p == '.' || *p == ',') {
            p++;
            int nd = 0;
            while (isdigit((unsigned char)*p)) {
                if (nd < 3)
                    frac = frac * 10 + (*p - '0');
                nd++;
                p++;
            }
            if (nd == 0)
                return CB_ERR_PARSE;
            for (; nd < 3; nd++)
                frac *= 10;
        }
        if (h > 23 || mi > 59 || se > 60)
            return CB_ERR_PARSE;
        if (*p == '\0')
            return CB_ERR_PARSE; /* a date-time without an offset is ambiguous */
        if (cbtime_parse_offset(p, &off) != CB_OK)
            return CB_ERR_PARSE;
    } else if (*p != '\0') {
        return CB_ERR_PARSE;
    }
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - (int64_t)off * 60;
    *ms = secs * 1000 + frac;
    return CB_OK;
}

static enum cb_status parse_rfc1123(const char *s, int64_t *ms)
{
    /* "Fri, 02 Jan 2026 10:11:12 GMT": the weekday is checked for form, not recomputed */
    int wd = -1, d, y, h, mi, se, mo = -1;
    for (int i = 0; i < 7; i++)
        if (strncmp(s, wday_names[i], 3) == 0 && s[3] == ',')
            wd = i;
    if (wd < 0)
        return CB_ERR_PARSE;
    const char *p = s + 4;
    while (*p == ' ')
        p++;
    if (strlen(p) != 24 || digits(p, 2, &d) || p[2] != ' ')
        return CB_ERR_PARSE;
    for (int i = 0; i < 12; i++)
        if (strncmp(p + 3, mon_names[i], 3) == 0)
            mo = i + 1;
    if (mo < 0 || p[6] != ' ' || digits(p + 7, 4, &y) || p[11] != ' ' || digits(p + 12, 2, &h) ||
        p[14] != ':' || digits(p + 15, 2, &mi) || p[17] != ':' || digits(p + 18, 2, &se) ||
        strcmp(p + 20, " GMT") != 0)
        return CB_ERR_PARSE;
    if (d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60)
        return CB_ERR_PARSE;
    *ms = (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se) * 1000;
    return CB_OK;
}

enum cb_status cbtime_parse(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return CB_ERR_PARSE;
    size_t n = strlen(s);
    size_t nd = strspn(s, "0123456789");
    if (nd == n && n >= 10 && n <= 16) {
        *ms = strtoll(s, NULL, 10);
        return CB_OK;
    }
    if (isalpha((unsigned char)s[0]))
        return parse_rfc1123(s, ms);
    return parse_iso(s, ms);
}

static void split(int64_t ms, int offset_min, struct tm *tm, int *millis)
{
    int64_t t = ms + (int64_t)offset_min * 60000;
    int64_t secs = t >= 0 ? t / 1000 : -((-t + 999) / 1000);
    *millis = (int)(t - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    memset(tm, 0, sizeof(*tm));
    civil_from_days(days, &tm->tm_year, &tm->tm_mon, &tm->tm_mday);
    tm->tm_hour = (int)(rem / 3600);
    tm->tm_min = (int)(rem % 3600 / 60);
    tm->tm_sec = (int)(rem % 60);
    tm->tm_wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
}

static void fmt_offset(int offset_min, int colon, char *out)
{
    unsigned a = offset_min < 0 ? 0u - (unsigned)offset_min : (unsigned)offset_min;
    a %= 100 * 60; /* two hour digits, so the compiler can prove 8 bytes suffice */
    snprintf(out, 8, colon ? "%c%02u:%02u" : "%c%02u%02u", offset_min < 0 ? '-' : '+', a / 60,
             a % 60);
}

char *cbtime_format_iso(int64_t ms, int offset_min, char *buf)
{
    struct tm tm;
    int millis;
    char off[8];
    split(ms, offset_min, &tm, &millis);
    fmt_offset(offset_min, 1, off);
    snprintf(buf, CBTIME_BUFSZ, "%04d-%02d-%02dT%02d:%02d:%02d%s", tm.tm_year, tm.tm_mon,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, off);
    return buf;
}

char *cbtime_format_iso_ms(int64_t ms, int offset_min, char *buf)
{
    struct tm tm;
    int millis;
    char off[8];
    split(ms, offset_min, &tm, &millis);
    fmt_offset(offset_min, 0, off);
    snprintf(buf, CBTIME_BUFSZ, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%s", tm.tm_year, tm.tm_mon,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis, off);
    return buf;
}

char *cbtime_format_date(int64_t ms, int offset_min, char *buf)
{
    struct tm tm;
    int millis;
    split(ms, offset_min, &tm, &millis);
    snprintf(buf, CBTIME_BUFSZ, "%04d-%02d-%02d", tm.tm_year, tm.tm_mon, tm.tm_mday);
    return buf;
}

char *cbtime_format_rfc1123(int64_t ms, char *buf)
{
    struct tm tm;
    int millis;
    split(ms, 0, &tm, &millis);
    snprintf(buf, CBTIME_BUFSZ, "%s, %02d %s %04d %02d:%02d:%02d GMT", wday_names[tm.tm_wday],
             tm.tm_mday, mon_names[tm.tm_mon - 1], tm.tm_year, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

int64_t cbtime_now_ms(void)
{
    const char *fake = getenv("CRMBRIDGE_FAKE_NOW_MS");
    if (fake && *fake)
        return strtoll(fake, NULL, 10);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
