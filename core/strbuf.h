/*
 * A growable, always NUL-terminated string buffer with an optional cap (git strbuf + curl dynbuf).
 * Treat the members as read-only outside strbuf.c. Allocation failure aborts (xmalloc rule);
 * exceeding the cap is reported by strbuf_add* returning CB_ERR_TOOBIG and leaves the buffer as
 * it was before the call.
 */
#ifndef CB_STRBUF_H
#define CB_STRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include "core/status.h"

struct strbuf {
    char *buf;  /* never NULL after init: points at "" when empty */
    size_t len; /* bytes used, not counting the NUL */
    size_t alloc;
    size_t cap; /* 0 = unlimited */
};

extern char strbuf_empty[];
#define STRBUF_INIT {strbuf_empty, 0, 0, 0}

void strbuf_init(struct strbuf *sb, size_t cap);
void strbuf_release(struct strbuf *sb);
void strbuf_reset(struct strbuf *sb);
/* Hands the buffer to the caller (free() it) and leaves sb empty. Never NULL. */
char *strbuf_detach(struct strbuf *sb);

enum cb_status strbuf_add(struct strbuf *sb, const void *data, size_t len);
enum cb_status strbuf_adds(struct strbuf *sb, const char *s);
enum cb_status strbuf_addch(struct strbuf *sb, char c);
enum cb_status strbuf_addf(struct strbuf *sb, const char *fmt, ...) CB_PRINTF(2, 3);
enum cb_status strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap) CB_PRINTF(2, 0);
/* Replaces the contents with a formatted string (for error out-parameters). NULL sb is allowed. */
void strbuf_setf(struct strbuf *sb, const char *fmt, ...) CB_PRINTF(2, 3);
void strbuf_trim_end(struct strbuf *sb);
/* Appends s percent-encoded for a URL query or path (RFC 3986 unreserved kept). */
enum cb_status strbuf_add_urlencoded(struct strbuf *sb, const char *s);

/* Allocation helpers that abort on out-of-memory. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Equal as C strings, with NULL equal only to NULL. */
int str_eq(const char *a, const char *b);

#endif
