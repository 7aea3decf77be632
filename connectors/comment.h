/*
 * A comment on a remote record as a connector hands it to the engine (Jira comments, Trello
 * commentCard actions, Zoho Notes, Fxiaoke follow-up records), and one comment write. Bodies are
 * canonical markdown; the crmbridge marker a connector hides in the comments it writes (an entity
 * property, a hidden markdown line or a short "[cb:...]" trailer, per service) is taken out of
 * the body and reported in marker. The lifetime helpers are inline so that connectors and the
 * engine share them without a library of their own.
 */
#ifndef CB_COMMENT_H
#define CB_COMMENT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"

struct comment {
    char *id;           /* remote id, a string */
    char *author;       /* display name of the writer; may be NULL */
    int64_t created_ms; /* ms since epoch UTC */
    int64_t updated_ms; /* last edit; equals created_ms when never edited */
    char *body;         /* canonical markdown without the marker */
    char *marker;       /* crmbridge marker found on the comment, or NULL */
    int by_us;          /* written by crmbridge (a marker was found): never copied back */
};

struct comment_list {
    struct comment *v;
    size_t n, alloc;
};

/* A connector that learns a record's number of comments with the record itself (Trello's
 * badges) may put it in record.fields under this pseudo field: a record with none is not listed. */
#define COMMENT_COUNT_FIELD "$comments"
/* Newest updated (else created) ms among the record's comments; set only when all came with it. */
#define COMMENT_NEWEST_FIELD "$comments_ms"

/* One create or update. */
struct comment_op {
    /* in */
    const char *id;     /* comment to update; NULL to create */
    const char *body;   /* markdown to write (borrowed) */
    const char *marker; /* marker to hide in the comment so that list_comments reports it */
    /* out */
    char *new_id; /* create: id of the new comment (owned by the op; comment_op_release) */
};

/* Frees what c owns and zeroes it. */
static inline void comment_release(struct comment *c)
{
    free(c->id);
    free(c->author);
    free(c->body);
    free(c->marker);
    memset(c, 0, sizeof(*c));
}

/* Moves c into the list (c is zeroed). */
static inline void comment_list_push(struct comment_list *l, struct comment *c)
{
    if (l->n == l->alloc) {
        l->alloc = l->alloc ? l->alloc * 2 : 16;
        l->v = xrealloc(l->v, l->alloc * sizeof(*l->v));
    }
    l->v[l->n++] = *c;
    memset(c, 0, sizeof(*c));
}

static inline void comment_list_release(struct comment_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        comment_release(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static inline void comment_op_release(struct comment_op *op)
{
    free(op->new_id);
    op->new_id = NULL;
}

/* The short text trailer for services whose comment format hides nothing: "[cb:MARKER]" on a
 * line of its own at the end. comment_trailer_add appends it to body (into out);
 * comment_trailer_split removes the last such line from text in place and returns its marker
 * (malloc'ed) or NULL. */
#define COMMENT_TRAILER_OPEN "[cb:"

static inline void comment_trailer_add(struct strbuf *out, const char *body, const char *marker)
{
    (void)strbuf_addf(out, "%s%s%s%s]", body, *body ? "\n\n" : "", COMMENT_TRAILER_OPEN, marker);
}

static inline char *comment_trailer_split(char *text)
{
    char *p = NULL;
    for (char *q = text; (q = strstr(q, COMMENT_TRAILER_OPEN)) != NULL; q++)
        p = q;
    if (!p || (p != text && p[-1] != '\n'))
        return NULL;
    char *end = strchr(p, ']');
    if (!end || end[strspn(end + 1, " \t\r\n") + 1] != '\0')
        return NULL;
    char *m = xstrndup(p + strlen(COMMENT_TRAILER_OPEN),
                       (size_t)(end - p) - strlen(COMMENT_TRAILER_OPEN));
    while (p > text && (p[-1] == '\n' || p[-1] == '\r' || p[-1] == ' '))
        p--;
    *p = '\0';
    return m;
}

#endif
