/*
 * Secret resolution for configuration values. Secrets are only ever read from the config file,
 * the environment or a file, then registered with the logger so no later log line shows them.
 * Storing them at rest is the cache's job (cache/crypt.c), not this module's.
 */
#include "core/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

enum cb_status secret_resolve(const char *spec, char **out, struct strbuf *err)
{
    char *val = NULL;
    if (strncmp(spec, "env:", 4) == 0) {
        const char *v = getenv(spec + 4);
        if (!v || !*v) {
            strbuf_setf(err, "environment variable '%s' is not set", spec + 4);
            return CB_ERR_CONFIG;
        }
        val = xstrdup(v);
    } else if (strncmp(spec, "file:", 5) == 0) {
        FILE *f = fopen(spec + 5, "r");
        if (!f) {
            strbuf_setf(err, "cannot read secret file '%s': %s", spec + 5, strerror(errno));
            return CB_ERR_CONFIG;
        }
        struct strbuf sb = STRBUF_INIT;
        sb.cap = 64 * 1024;
        char buf[4096];
        size_t n;
        enum cb_status st = CB_OK;
        while (st == CB_OK && (n = fread(buf, 1, sizeof(buf), f)) > 0)
            st = strbuf_add(&sb, buf, n);
        int rd_errno = ferror(f) ? errno : 0; /* a directory opens but cannot be read */
        fclose(f);
        if (rd_errno) {
            strbuf_setf(err, "cannot read secret file '%s': %s", spec + 5, strerror(rd_errno));
            strbuf_release(&sb);
            return CB_ERR_CONFIG;
        }
        strbuf_trim_end(&sb);
        if (st != CB_OK || sb.len == 0) {
            strbuf_setf(err, "secret file '%s' is %s", spec + 5, st ? "too large" : "empty");
            strbuf_release(&sb);
            return CB_ERR_CONFIG;
        }
        val = strbuf_detach(&sb);
    } else {
        val = xstrdup(spec);
    }
    log_add_secret(val);
    *out = val;
    return CB_OK;
}
