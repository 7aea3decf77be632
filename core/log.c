/*
 * Logging with redaction. Lines are formatted into memory first, scrubbed of registered secrets
 * and credential-looking query parameters and headers, then written in one fwrite so that lines
 * from signal-driven shutdown do not interleave. It does not rotate files: use journald.
 */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/strbuf.h"
#include "core/timeutil.h"

static enum log_level cur_level = LOG_INFO;
static FILE *out_stream;
static char **secrets;
static size_t n_secrets;
/* the daemon opens pairs on several threads: each may register secrets while others log */
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_format cur_format = LOG_FORMAT_TEXT;

void log_set_level(enum log_level lvl)
{
    cur_level = lvl;
}

enum log_level log_get_level(void)
{
    return cur_level;
}

int log_level_parse(const char *s)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

void log_set_stream(FILE *f)
{
    out_stream = f;
}

void log_set_format(enum log_format f)
{
    cur_format = f;
}

void log_add_secret(const char *secret)
{
    if (!secret || strlen(secret) < 4)
        return;
    pthread_mutex_lock(&secrets_lock);
    int known = 0;
    for (size_t i = 0; i < n_secrets && !known; i++)
        known = strcmp(secrets[i], secret) == 0;
    if (!known) {
        secrets = xrealloc(secrets, (n_secrets + 1) * sizeof(*secrets));
        secrets[n_secrets++] = xstrdup(secret);
    }
    pthread_mutex_unlock(&secrets_lock);
}

void log_clear_secrets(void)
{
    pthread_mutex_lock(&secrets_lock);
    for (size_t i = 0; i < n_secrets; i++)
        free(secrets[i]);
    free(secrets);
    secrets = NULL;
    n_secrets = 0;
    pthread_mutex_unlock(&secrets_lock);
}

/* Query parameters whose values are credentials wherever they appear as a parameter. */
static const char *const sensitive_params[] = {
    "token=",   "key=",      "access_token=", "refresh_token=",   "client_secret=", "api_token=",
    "api_key=", "password=", "appSecret=",    "corpAccessToken=", "permanentCode=", "code=",
    NULL};
/* JSON members whose string values are credentials (a token endpoint's answer, say). Not "key"
 * or "code": in Jira and Zoho bodies those are issue keys and status codes. */
static const char *const sensitive_json[] = {
    "\"access_token\"",    "\"refresh_token\"", "\"client_secret\"",
    "\"api_token\"",       "\"password\"",      "\"appSecret\"",
    "\"corpAccessToken\"", "\"permanentCode\"", NULL};
static const char *const sensitive_headers[] = {"Authorization:", "Proxy-Authorization:", NULL};

/* A parameter name counts only at the start of the line or after a separator, so "monkey=1" or
 * "postcode=1" stay readable while "?key=..." and "&code=..." do not. */
static int is_param_start(const char *s, const char *base)
{
    if (s == base)
        return 1;
    char c = s[-1];
    return c == '?' || c == '&' || c == ' ' || c == '"' || c == ',';
}

/* Length of the longest registered secret at p, 0 if none: with secrets "abcd" and "abcdef",
 * the longer one must win or its tail would be printed. */
static size_t secret_at(const char *p)
{
    size_t best = 0;
    for (size_t i = 0; i < n_secrets; i++) {
        size_t n = strlen(secrets[i]);
        if (n > best && strncmp(p, secrets[i], n) == 0)
            best = n;
    }
    return best;
}

/* A credential introduced by one of names at p ("token=", "Authorization:"): copies the name,
 * writes mask instead of the value, and skips the value up to the first byte of stop. Returns
 * where to go on, or NULL when no name matches. */
static const char *redact_value(const char *p, const char *const *names,
                                int (*cmp)(const char *, const char *, size_t), const char *mask,
                                const char *stop, struct strbuf *sb)
{
    for (int i = 0; names[i]; i++) {
        size_t n = strlen(names[i]);
        if (cmp(p, names[i], n) != 0)
            continue;
        (void)strbuf_add(sb, p, n);
        (void)strbuf_adds(sb, mask);
        p += n;
        return p + strcspn(p, stop);
    }
    return NULL;
}

/* "access_token": "x": keeps the member name, hides the string value. */
static const char *redact_json(const char *p, struct strbuf *sb)
{
    for (int i = 0; sensitive_json[i]; i++) {
        size_t n = strlen(sensitive_json[i]);
        if (strncmp(p, sensitive_json[i], n) != 0)
            continue;
        const char *q = p + n + strspn(p + n, " \t");
        if (*q != ':')
            return NULL;
        q += 1 + strspn(q + 1, " \t");
        if (*q != '"')
            return NULL;
        (void)strbuf_add(sb, p, (size_t)(q - p));
        (void)strbuf_adds(sb, "\"***\"");
        for (q++; *q && *q != '"'; q++)
            if (*q == '\\' && q[1])
                q++;
        return *q ? q + 1 : q;
    }
    return NULL;
}

char *log_redact(const char *s)
{
    pthread_mutex_lock(&secrets_lock);
    struct strbuf sb = STRBUF_INIT;
    const char *p = s ? s : "";
    while (*p) {
        size_t n = secret_at(p);
        const char *next;
        if (n) {
            (void)strbuf_adds(&sb, "***");
            p += n;
        } else if ((is_param_start(p, s) &&
                    (next = redact_value(p, sensitive_params, strncmp, "***", "& \"\r\n", &sb))) ||
                   (next = redact_value(p, sensitive_headers, strncasecmp, " ***", "\r\n", &sb)) ||
                   (next = redact_json(p, &sb))) {
            p = next;
        } else {
            (void)strbuf_addch(&sb, *p++);
        }
    }
    pthread_mutex_unlock(&secrets_lock);
    return strbuf_detach(&sb);
}

/* One JSON object per line: {"ts":..,"level":..,"module":..,"msg":..}. */
static void add_json_string(struct strbuf *sb, const char *s)
{
    (void)strbuf_addch(sb, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            (void)strbuf_addf(sb, "\\%c", *p);
        else if (*p < 0x20)
            (void)strbuf_addf(sb, "\\u%04x", *p);
        else
            (void)strbuf_addch(sb, (char)*p);
    }
    (void)strbuf_addch(sb, '"');
}

static void format_line(struct strbuf *line, const char *ts, const char *level, const char *module,
                        const char *msg)
{
    if (cur_format == LOG_FORMAT_TEXT) {
        (void)strbuf_addf(line, "%s %s %s: %s\n", ts, level, module, msg);
        return;
    }
    (void)strbuf_addf(line, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":", ts, level);
    add_json_string(line, module);
    (void)strbuf_adds(line, ",\"msg\":");
    add_json_string(line, msg);
    (void)strbuf_adds(line, "}\n");
}

void log_write(enum log_level lvl, const char *module, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if ((unsigned)lvl > (unsigned)LOG_DEBUG || lvl > cur_level)
        return;
    struct strbuf msg = STRBUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    (void)strbuf_vaddf(&msg, fmt, ap);
    va_end(ap);
    char *clean = log_redact(msg.buf);
    strbuf_release(&msg);

    char ts[32];
    /* the engine's clock, so a test's CRMBRIDGE_FAKE_NOW_MS also dates its log lines */
    int64_t now_ms = cbtime_now_ms();
    time_t now = (time_t)((now_ms - (now_ms < 0 ? 999 : 0)) / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);

    struct strbuf line = STRBUF_INIT;
    format_line(&line, ts, names[lvl], module, clean);
    free(clean);
    FILE *f = out_stream ? out_stream : stderr;
    fwrite(line.buf, 1, line.len, f);
    fflush(f);
    strbuf_release(&line);
}
