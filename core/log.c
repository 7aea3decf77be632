/*
 * Logging with redaction. Lines are formatted into memory first, scrubbed of registered secrets
 * and credential-looking query parameters and headers, then written in one fwrite so that lines
 * from signal-driven shutdown do not interleave. It does not rotate files: use journald.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/strbuf.h"

static enum log_level cur_level = LOG_INFO;
static FILE *out_stream;
static char **secrets;
static size_t n_secrets;

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

void log_add_secret(const char *secret)
{
    if (!secret || strlen(secret) < 4)
        return;
    for (size_t i = 0; i < n_secrets; i++)
        if (strcmp(secrets[i], secret) == 0)
            return;
    secrets = xrealloc(secrets, (n_secrets + 1) * sizeof(*secrets));
    secrets[n_secrets++] = xstrdup(secret);
}

void log_clear_secrets(void)
{
    for (size_t i = 0; i < n_secrets; i++)
        free(secrets[i]);
    free(secrets);
    secrets = NULL;
    n_secrets = 0;
}

/* Query parameters and header names whose values are credentials wherever they appear. */
static const char *const sensitive_params[] = {
    "token=", "key=", "access_token=", "refresh_token=", "client_secret=", "api_token=",
    "appSecret=", "corpAccessToken=", "permanentCode=", "code=", NULL};
static const char *const sensitive_headers[] = {"Authorization:", "authorization:", NULL};

static int is_param_start(const char *s, const char *base)
{
    if (s == base)
        return 1;
    char c = s[-1];
    return c == '?' || c == '&' || c == ' ' || c == '"' || c == ',';
}

char *log_redact(const char *s)
{
    struct strbuf sb = STRBUF_INIT;
    const char *p = s;
    while (*p) {
        int matched = 0;
        for (size_t i = 0; i < n_secrets && !matched; i++) {
            size_t n = strlen(secrets[i]);
            if (strncmp(p, secrets[i], n) == 0) {
                (void)strbuf_adds(&sb, "***");
                p += n;
                matched = 1;
            }
        }
        for (int i = 0; sensitive_params[i] && !matched; i++) {
            size_t n = strlen(sensitive_params[i]);
            if (strncmp(p, sensitive_params[i], n) == 0 && is_param_start(p, s)) {
                (void)strbuf_add(&sb, p, n);
                (void)strbuf_adds(&sb, "***");
                p += n;
                while (*p && *p != '&' && *p != ' ' && *p != '"' && *p != '\n')
                    p++;
                matched = 1;
            }
        }
        for (int i = 0; sensitive_headers[i] && !matched; i++) {
            size_t n = strlen(sensitive_headers[i]);
            if (strncmp(p, sensitive_headers[i], n) == 0) {
                (void)strbuf_add(&sb, p, n);
                (void)strbuf_adds(&sb, " ***");
                p += n;
                while (*p && *p != '\n' && *p != '\r')
                    p++;
                matched = 1;
            }
        }
        if (!matched)
            (void)strbuf_addch(&sb, *p++);
    }
    return strbuf_detach(&sb);
}

void log_write(enum log_level lvl, const char *module, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (lvl > cur_level)
        return;
    struct strbuf msg = STRBUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    (void)strbuf_vaddf(&msg, fmt, ap);
    va_end(ap);
    char *clean = log_redact(msg.buf);
    strbuf_release(&msg);

    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);

    struct strbuf line = STRBUF_INIT;
    (void)strbuf_addf(&line, "%s %s %s: %s\n", ts, names[lvl], module, clean);
    free(clean);
    FILE *f = out_stream ? out_stream : stderr;
    fwrite(line.buf, 1, line.len, f);
    fflush(f);
    strbuf_release(&line);
}
