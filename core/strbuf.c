/*
 * The capped string buffer and the aborting allocators. Everything sized by the network goes
 * through a strbuf with a cap, so an oversized body becomes CB_ERR_TOOBIG instead of a crash.
 */
#include "core/strbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char strbuf_empty[1];

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("fatal: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fputs("fatal: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("fatal: out of memory\n", stderr);
        abort();
    }
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

void strbuf_init(struct strbuf *sb, size_t cap)
{
    sb->buf = strbuf_empty;
    sb->len = 0;
    sb->alloc = 0;
    sb->cap = cap;
}

void strbuf_release(struct strbuf *sb)
{
    if (sb->alloc)
        free(sb->buf);
    strbuf_init(sb, sb->cap);
}

void strbuf_reset(struct strbuf *sb)
{
    sb->len = 0;
    if (sb->alloc)
        sb->buf[0] = '\0';
}

char *strbuf_detach(struct strbuf *sb)
{
    char *p = sb->alloc ? sb->buf : xstrdup("");
    strbuf_init(sb, sb->cap);
    return p;
}

static enum cb_status grow(struct strbuf *sb, size_t extra)
{
    /* refuse sizes whose doubling below could overflow before any arithmetic on them */
    if (extra >= SIZE_MAX / 2 - sb->len)
        return CB_ERR_TOOBIG;
    if (sb->cap && sb->len + extra > sb->cap)
        return CB_ERR_TOOBIG;
    size_t need = sb->len + extra + 1;
    if (need <= sb->alloc)
        return CB_OK;
    size_t n = sb->alloc ? sb->alloc : 64;
    while (n < need)
        n *= 2;
    if (sb->alloc) {
        sb->buf = xrealloc(sb->buf, n);
    } else {
        sb->buf = xmalloc(n);
        sb->buf[0] = '\0';
    }
    sb->alloc = n;
    return CB_OK;
}

enum cb_status strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
    if (grow(sb, len) != CB_OK)
        return CB_ERR_TOOBIG;
    if (len)
        memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
    return CB_OK;
}

enum cb_status strbuf_adds(struct strbuf *sb, const char *s)
{
    return strbuf_add(sb, s, strlen(s));
}

enum cb_status strbuf_addch(struct strbuf *sb, char c)
{
    return strbuf_add(sb, &c, 1);
}

enum cb_status strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return CB_ERR_INTERNAL;
    if (grow(sb, (size_t)n) != CB_OK)
        return CB_ERR_TOOBIG;
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
    return CB_OK;
}

enum cb_status strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum cb_status st = strbuf_vaddf(sb, fmt, ap);
    va_end(ap);
    return st;
}

void strbuf_setf(struct strbuf *sb, const char *fmt, ...)
{
    if (!sb)
        return;
    strbuf_reset(sb);
    va_list ap;
    va_start(ap, fmt);
    (void)strbuf_vaddf(sb, fmt, ap);
    va_end(ap);
}

void strbuf_trim_end(struct strbuf *sb)
{
    while (sb->len && (sb->buf[sb->len - 1] == ' ' || sb->buf[sb->len - 1] == '\n' ||
                       sb->buf[sb->len - 1] == '\t' || sb->buf[sb->len - 1] == '\r'))
        sb->buf[--sb->len] = '\0';
}

enum cb_status strbuf_add_urlencoded(struct strbuf *sb, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t old_len = sb->len;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        enum cb_status st;
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            st = strbuf_addch(sb, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            st = strbuf_add(sb, e, 3);
        }
        if (st != CB_OK) {
            /* all or nothing, like every other append */
            sb->len = old_len;
            if (sb->alloc)
                sb->buf[old_len] = '\0';
            return st;
        }
    }
    return CB_OK;
}
