/*
 * Time as int64 milliseconds since the Unix epoch (UTC), parsed from and printed to the formats
 * the four APIs use: ISO-8601 with 'Z', '+08:00' or '+0800' offsets and optional fractions,
 * plain dates, epoch milliseconds, and RFC 1123. No local time zone of this machine is ever used.
 */
#ifndef CB_TIMEUTIL_H
#define CB_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

#define CBTIME_BUFSZ 40

/* Parses s into *ms. Accepts ISO-8601 date-times (offset required unless assume_utc), dates
 * (YYYY-MM-DD, midnight UTC), all-digit epoch milliseconds, and RFC 1123. On failure returns
 * CB_ERR_PARSE and leaves *ms unchanged. */
enum cb_status cbtime_parse(const char *s, int64_t *ms) CB_WUR;

/* Parses a UTC offset "+08:00", "+0800", "-05", "Z" or "UTC" into minutes east of UTC. */
enum cb_status cbtime_parse_offset(const char *s, int *minutes) CB_WUR;

/* Formats into buf (CBTIME_BUFSZ bytes). offset_min is minutes east of UTC. Return buf. */
char *cbtime_format_iso(int64_t ms, int offset_min, char *buf);        /* 2026-01-02T10:11:12+08:00 */
char *cbtime_format_iso_ms(int64_t ms, int offset_min, char *buf);     /* ...12.345+0800 (Jira) */
char *cbtime_format_date(int64_t ms, int offset_min, char *buf);       /* 2026-01-02 */
char *cbtime_format_rfc1123(int64_t ms, char *buf);                    /* Fri, 02 Jan 2026 ... GMT */

/* Wall clock in milliseconds; CRMBRIDGE_FAKE_NOW_MS (tests) overrides it when set. */
int64_t cbtime_now_ms(void);

#endif
