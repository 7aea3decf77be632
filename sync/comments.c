/*
 * Comments both ways (issue 5): for each linked record pair of a cycle, lists the comments of
 * both records, copies every comment a person wrote to the other side once (behind a journaled
 * intent and a marker hidden in the copy, so a lost answer never duplicates it) and updates the
 * copy when the original is edited. Copies carry a marker and are never copied back. It keeps
 * its state in the cache's meta db; it does not delete copies when an original is deleted, and
 * it ignores edits people make to the copies.
 */
#define LOG_MODULE "sync"
#define ORIGIN_PREFIX "origin:" /* the id of a migrated record's origin note */
#include "sync/comments.h"

#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "mapping/item.h"

/* A link to look at and what is known of its comments. */
struct citem {
    struct link l;          /* owned copy */
    int need[2];            /* list this side: its comments may have changed */
    int listed[2], gone[2]; /* listed (or tried); gone: not readable now */
    int unseen;             /* never synced: the old comments of its records are still to read */
    int64_t known_ms[2];    /* record times up to which its comments are known (0: unknown) */
    int64_t rec_ms[2];      /* the records' modified times in this cycle (0: not read) */
    int64_t created_ms[2];  /* cs->origin: when the records were created (0: unknown) */
    char *created_by[2];    /* and by whom (owned; may be NULL) */
    struct comment_list cl[2];
};

/* One run over the links of a cycle. */
struct crun {
    const struct comment_sync *cs;
    struct citem *items; /* de-duplicated by link id */
    size_t n, alloc;
    uint64_t *trouble; /* links to look at again next cycle (failures, open intents) */
    size_t n_trouble;
};

/* The state of one original comment, from the meta db. */
struct cstate {
    char *to;     /* id of the copy on the other side; NULL when none is linked */
    char *fp;     /* fingerprint of the text last written to the copy (or journaled) */
    char *marker; /* the copy's marker */
    int intent;   /* 1: a create was journaled and its outcome is unknown */
    int is_copy;  /* the comment is a copy crmbridge wrote (even if a person removed its marker) */
};

static const char *service_label(const char *type)
{
    static const char *const names[][2] = {
        {"zoho", "Zoho CRM"}, {"fxiaoke", "Fxiaoke"}, {"jira", "Jira"}, {"trello", "Trello"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (str_eq(type, names[i][0]))
            return names[i][1];
    return type ? type : "?";
}

char *sync_comment_copy_text(const struct comment *x, const char *service)
{
    char when[CBTIME_BUFSZ];
    cbtime_format_iso(x->created_ms, 0, when);
    when[10] = ' ';
    when[16] = '\0';
    struct strbuf b = STRBUF_INIT;
    if (x->id && strncmp(x->id, ORIGIN_PREFIX, strlen(ORIGIN_PREFIX)) == 0)
        (void)strbuf_addf(&b, "Created%s%s on %s UTC in %s; copied here by crmbridge.",
                          x->author ? " by " : "", x->author ? x->author : "", when,
                          service_label(service));
    else
        (void)strbuf_addf(&b, "Comment%s%s on %s UTC (%s):\n\n%s", x->author ? " by " : "",
                          x->author ? x->author : "", when, service_label(service),
                          x->body ? x->body : "");
    return strbuf_detach(&b);
}

/* FNV-1a 64 of text, as 16 hex digits. */
static void fingerprint(const char *text, char out[17])
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static void new_marker(char out[9])
{
    unsigned char b[4];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        fputs("fatal: no random source for comment markers\n", stderr);
        abort();
    }
    snprintf(out, 9, "%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
}

static void meta_key(struct strbuf *k, const char *kind, const char *pair, int side, const char *id)
{
    strbuf_setf(k, "%s:%s:%d:%s", kind, pair, side, id);
}

static const char *jstr(const cJSON *o, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void cstate_release(struct cstate *st)
{
    free(st->to);
    free(st->fp);
    free(st->marker);
    memset(st, 0, sizeof(*st));
}

static void problem(struct crun *r, const char *fmt, ...) CB_PRINTF(2, 3);
static void problem(struct crun *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct strbuf line = STRBUF_INIT;
    (void)strbuf_vaddf(&line, fmt, ap);
    va_end(ap);
    log_info("pair '%s': %s", r->cs->pair, line.buf);
    (void)strbuf_addf(&r->cs->rep->problems, "%s\n", line.buf);
    strbuf_release(&line);
}

static void note(struct crun *r, const char *fmt, ...) CB_PRINTF(2, 3);
static void note(struct crun *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct strbuf line = STRBUF_INIT;
    (void)strbuf_vaddf(&line, fmt, ap);
    va_end(ap);
    log_info("pair '%s': %s", r->cs->pair, line.buf);
    (void)strbuf_addf(&r->cs->rep->notes, "%s\n", line.buf);
    strbuf_release(&line);
}

static void add_trouble(struct crun *r, uint64_t id)
{
    for (size_t i = 0; i < r->n_trouble; i++)
        if (r->trouble[i] == id)
            return;
    r->trouble = xrealloc(r->trouble, (r->n_trouble + 1) * sizeof(*r->trouble));
    r->trouble[r->n_trouble++] = id;
}

/* ---------------------------------------------------------------- cache state */

static enum cb_status state_read(struct crun *r, int side, const char *id, struct cstate *out)
{
    memset(out, 0, sizeof(*out));
    struct cache_txn *t;
    struct strbuf e = STRBUF_INIT, k = STRBUF_INIT;
    enum cb_status st = cache_txn_begin(r->cs->cache, 1, &t, &e);
    cJSON *link = NULL, *in = NULL, *copy = NULL;
    if (st == CB_OK) {
        static const char *const kinds[] = {"clink", "cintent", "ccopy"};
        cJSON **outs[] = {&link, &in, &copy};
        for (int i = 0; i < 3; i++) {
            meta_key(&k, kinds[i], r->cs->pair, side, id);
            enum cb_status got = cache_meta_get(t, k.buf, outs[i]);
            if (got != CB_OK && got != CB_ERR_NOTFOUND)
                st = CB_ERR_CACHE;
        }
        cache_txn_abort(t);
    }
    out->is_copy = copy != NULL;
    cJSON_Delete(copy);
    const cJSON *src = link ? link : in;
    if (st == CB_OK && src) {
        out->to = dup_or_null(link ? jstr(link, "to") : NULL);
        out->fp = dup_or_null(jstr(src, "fp"));
        out->marker = dup_or_null(jstr(src, "m"));
        out->intent = !link;
    }
    cJSON_Delete(link);
    cJSON_Delete(in);
    strbuf_release(&e);
    strbuf_release(&k);
    return st;
}

/* The meta write of one step: the comment link (to != NULL) or the intent, the other removed. */
struct state_write {
    struct crun *r;
    int side;
    const char *id;
    const char *to; /* NULL: journal an intent instead of a link */
    const char *fp;
    const char *marker;
    int drop;         /* 1: remove the intent and write nothing */
    uint64_t link_id; /* intent: keep this link pending until the intent is settled */
};

static enum cb_status pending_add(struct cache_txn *t, const char *pair, uint64_t link_id)
{
    struct strbuf k = STRBUF_INIT;
    strbuf_setf(&k, "cpending:%s", pair);
    cJSON *arr = NULL;
    enum cb_status st = cache_meta_get(t, k.buf, &arr);
    if (st == CB_ERR_NOTFOUND || !cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        arr = cJSON_CreateArray();
        st = CB_OK;
    }
    int have = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) have |= (uint64_t)cJSON_GetNumberValue(v) == link_id;
    if (st == CB_OK && !have) {
        cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)link_id));
        st = cache_meta_put(t, k.buf, arr);
    }
    cJSON_Delete(arr);
    strbuf_release(&k);
    return st;
}

static enum cb_status state_apply(struct cache_txn *t, const struct state_write *w)
{
    const char *pair = w->r->cs->pair;
    struct strbuf k = STRBUF_INIT;
    enum cb_status st = CB_OK;
    meta_key(&k, "cintent", pair, w->side, w->id);
    if (w->to || w->drop) {
        st = cache_meta_del(t, k.buf);
        meta_key(&k, "clink", pair, w->side, w->id);
    }
    if (st == CB_OK && !w->drop) {
        cJSON *o = cJSON_CreateObject();
        if (w->to)
            cJSON_AddStringToObject(o, "to", w->to);
        cJSON_AddStringToObject(o, "fp", w->fp);
        cJSON_AddStringToObject(o, "m", w->marker);
        cJSON_AddNumberToObject(o, "ms", (double)cbtime_now_ms());
        st = cache_meta_put(t, k.buf, o);
        cJSON_Delete(o);
    }
    if (st == CB_OK && !w->to && !w->drop)
        st = pending_add(t, pair, w->link_id);
    if (st == CB_OK && w->to) { /* the reverse: the copy is ours whatever happens to its marker */
        meta_key(&k, "ccopy", pair, 1 - w->side, w->to);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "of", w->id);
        st = cache_meta_put(t, k.buf, o);
        cJSON_Delete(o);
    }
    strbuf_release(&k);
    return st;
}

static enum cb_status state_write(const struct state_write *w)
{
    struct cache_txn *t;
    struct strbuf e = STRBUF_INIT;
    enum cb_status st = cache_txn_begin(w->r->cs->cache, 0, &t, &e);
    if (st == CB_OK) {
        st = state_apply(t, w);
        if (st != CB_OK)
            cache_txn_abort(t);
        else
            st = cache_txn_commit(t, &e);
    }
    if (st != CB_OK)
        log_warn("cannot keep comment state of pair '%s': %s", w->r->cs->pair,
                 e.len ? e.buf : cb_status_str(st));
    strbuf_release(&e);
    return st == CB_OK ? CB_OK : CB_ERR_CACHE;
}

/* ---------------------------------------------------------------- one comment */

struct copy_ctx {
    struct crun *r;
    struct citem *it;
    const struct link *l;
    int s, t;                /* source and target sides */
    const struct comment *x; /* the original */
    char *text;
    char fp[17];
};

static const char *label(const struct link *l, int side)
{
    return l->key[side] ? l->key[side] : l->remote[side];
}

static enum cb_status list_side(struct crun *r, struct citem *it, int s);

/* Classifies a failed write; returns the status that must stop the run, else CB_OK. */
static enum cb_status write_failed(struct copy_ctx *c, const char *verb, enum cb_status st,
                                   const struct strbuf *e)
{
    struct crun *r = c->r;
    const char *why = e->len ? e->buf : cb_status_str(st);
    if (st == CB_ERR_FINAL || st == CB_ERR_NOTFOUND) { /* rejected, or the record is gone */
        r->cs->rep->failed++;
        problem(r, "cannot %s comment '%s' of %s '%s' %s %s '%s': %s", verb, c->x->id,
                side_name((enum side)c->s), label(c->l, c->s), strcmp(verb, "copy") ? "on" : "to",
                side_name((enum side)c->t), label(c->l, c->t), why);
    } else {
        r->cs->rep->postponed++;
        add_trouble(r, c->l->id);
        problem(r, "postponed %s of comment '%s' of %s '%s': %s", verb, c->x->id,
                side_name((enum side)c->s), label(c->l, c->s), why);
    }
    return st == CB_ERR_AUTH || st == CB_ERR_STOPPED ? st : CB_OK;
}

static enum cb_status copy_update(struct copy_ctx *c, const struct cstate *cur)
{
    struct crun *r = c->r;
    struct comment_op op = {.id = cur->to, .body = c->text, .marker = cur->marker};
    struct strbuf e = STRBUF_INIT;
    enum cb_status st =
        r->cs->ops[c->t]->write_comment(r->cs->conn[c->t], c->l->remote[c->t], &op, &e);
    comment_op_release(&op);
    if (st == CB_OK || st == CB_ERR_NOTFOUND) {
        /* a copy a person deleted stays deleted: remember the text so it is not retried */
        struct state_write w = {r, c->s, c->x->id, cur->to, c->fp, cur->marker, 0, c->l->id};
        st = state_write(&w);
        if (st == CB_OK)
            note(r, "updated the copy of comment '%s' on %s '%s'", c->x->id,
                 side_name((enum side)c->t), label(c->l, c->t));
    } else {
        st = write_failed(c, "update", st, &e);
    }
    strbuf_release(&e);
    return st;
}

static enum cb_status copy_create(struct copy_ctx *c, const char *marker)
{
    struct crun *r = c->r;
    struct comment_op op = {.body = c->text, .marker = marker};
    struct strbuf e = STRBUF_INIT;
    enum cb_status st =
        r->cs->ops[c->t]->write_comment(r->cs->conn[c->t], c->l->remote[c->t], &op, &e);
    if (st == CB_OK && op.new_id) {
        struct state_write w = {r, c->s, c->x->id, op.new_id, c->fp, marker, 0, c->l->id};
        st = state_write(&w);
        if (st == CB_OK && strncmp(c->x->id, ORIGIN_PREFIX, strlen(ORIGIN_PREFIX)) != 0)
            r->cs->rep->comments[c->t]++; /* a person's comment, not the origin note */
        if (st == CB_OK)
            note(r, "copied comment '%s' of %s '%s' to %s '%s'", c->x->id,
                 side_name((enum side)c->s), label(c->l, c->s), side_name((enum side)c->t),
                 label(c->l, c->t));
    } else {
        if (st == CB_OK)
            st = CB_ERR_PARSE; /* no id came back: the marker finds the copy next time */
        if (st == CB_ERR_FINAL || st == CB_ERR_NOTFOUND) {
            struct state_write w = {r, c->s, c->x->id, NULL, c->fp, marker, 1, c->l->id};
            (void)state_write(&w); /* nothing was created: forget the intent */
        }
        st = write_failed(c, "copy", st, &e);
    }
    comment_op_release(&op);
    strbuf_release(&e);
    return st;
}

static const struct comment *find_by_marker(const struct comment_list *l, const char *marker)
{
    for (size_t i = 0; i < l->n; i++)
        if (str_eq(l->v[i].marker, marker))
            return &l->v[i];
    return NULL;
}

/* A create whose outcome was unknown: link the copy if the target shows its marker. Sets *blind
 * when the target's comments cannot be read now (then nothing may be created). */
static enum cb_status settle_intent(struct copy_ctx *c, struct cstate *cur, int *blind)
{
    enum cb_status st = CB_OK;
    if (!c->it->listed[c->t])
        st = list_side(c->r, c->it, c->t);
    *blind = c->it->gone[c->t];
    const struct comment *found = *blind ? NULL : find_by_marker(&c->it->cl[c->t], cur->marker);
    if (st != CB_OK || !found)
        return st;
    struct state_write w = {c->r, c->s, c->x->id, found->id, cur->fp, cur->marker, 0, c->l->id};
    st = state_write(&w);
    if (st == CB_OK) {
        note(c->r, "linked comment '%s' of %s '%s' to its copy made before an interruption",
             c->x->id, side_name((enum side)c->s), label(c->l, c->s));
        cur->to = xstrdup(found->id);
        cur->intent = 0;
    }
    return st;
}

static enum cb_status copy_one(struct crun *r, struct citem *it, int s, const struct comment *x)
{
    struct copy_ctx c = {r, it, &it->l, s, 1 - s, x, NULL, {0}};
    const struct link *l = &it->l;
    struct cstate cur;
    enum cb_status st = state_read(r, s, x->id, &cur);
    if (st != CB_OK || cur.is_copy) {
        cstate_release(&cur);
        return st;
    }
    c.text = sync_comment_copy_text(x, r->cs->ops[s]->name);
    fingerprint(c.text, c.fp);
    int blind = 0;
    if (cur.intent)
        st = settle_intent(&c, &cur, &blind);
    if (blind) {
        add_trouble(r, l->id); /* the intent stays until the target can be read */
    } else if (st == CB_OK && cur.to && !str_eq(cur.fp, c.fp)) {
        st = copy_update(&c, &cur);
    } else if (st == CB_OK && !cur.to) {
        char fresh[9];
        const char *marker = cur.marker;
        if (!marker) {
            new_marker(fresh);
            marker = fresh;
            struct state_write w = {r, s, x->id, NULL, c.fp, marker, 0, l->id};
            st = state_write(&w);
        }
        if (st == CB_OK)
            st = copy_create(&c, marker);
    }
    free(c.text);
    cstate_release(&cur);
    return st;
}

/* ---------------------------------------------------------------- one link */

/* Lists side s of it into it->cl[s]; a record that is gone or cannot be read now is marked gone
 * (a temporary failure keeps the link pending). */
static enum cb_status list_side(struct crun *r, struct citem *it, int s)
{
    const struct link *l = &it->l;
    struct strbuf e = STRBUF_INIT;
    it->listed[s] = 1;
    enum cb_status st = r->cs->ops[s]->list_comments(r->cs->conn[s], l->remote[s], &it->cl[s], &e);
    if (st == CB_ERR_NOTFOUND) {
        it->gone[s] = 1; /* the record is gone: the engine reports that */
        st = CB_OK;
    } else if (st != CB_OK) {
        it->gone[s] = 1;
        r->cs->rep->postponed++;
        if (cb_status_retryable(st))
            add_trouble(r, l->id);
        problem(r, "postponed comments of %s '%s': %s", side_name((enum side)s), label(l, s),
                e.len ? e.buf : cb_status_str(st));
        st = st == CB_ERR_AUTH || st == CB_ERR_STOPPED ? st : CB_OK;
    }
    strbuf_release(&e);
    return st;
}

/* The origin note of a migrated record: a comment of its own, so that it is copied once, behind
 * an intent and a marker, like any other. */
static void add_origin(struct citem *it, int s)
{
    struct comment x = {0};
    struct strbuf id = STRBUF_INIT;
    (void)strbuf_addf(&id, "%s%s", ORIGIN_PREFIX, it->l.remote[s]);
    x.id = strbuf_detach(&id);
    x.author = it->created_by[s] ? xstrdup(it->created_by[s]) : NULL;
    x.created_ms = x.updated_ms = it->created_ms[s];
    x.body = xstrdup("");
    comment_list_push(&it->cl[s], &x);
    if (it->cl[s].n > 1) { /* first: the copies keep the original order */
        struct comment o = it->cl[s].v[it->cl[s].n - 1];
        memmove(&it->cl[s].v[1], &it->cl[s].v[0], (it->cl[s].n - 1) * sizeof(o));
        it->cl[s].v[0] = o;
    }
}

/* Copies what changed on the sides that may have changed; the other side is only read when a
 * journaled create must be looked for there. */
static enum cb_status sync_item(struct crun *r, struct citem *it)
{
    enum cb_status st = CB_OK;
    for (int s = 0; s < 2 && st == CB_OK; s++)
        if (it->need[s] && !it->listed[s])
            st = list_side(r, it, s);
    for (int s = 0; s < 2 && st == CB_OK; s++) {
        if (!it->need[s] || it->gone[s] || it->gone[1 - s])
            continue;
        if (it->unseen && it->created_ms[s])
            add_origin(it, s);
        for (size_t i = 0; i < it->cl[s].n && st == CB_OK; i++)
            if (!it->cl[s].v[i].by_us && !sync_stop_requested())
                st = copy_one(r, it, s, &it->cl[s].v[i]);
    }
    if (st == CB_OK && sync_stop_requested())
        st = CB_ERR_STOPPED;
    return st;
}

/* ---------------------------------------------------------------- which links */

static struct citem *links_add(struct crun *r, const struct link *l, int need0, int need1)
{
    if (!l->id || !l->remote[0] || !l->remote[1])
        return NULL;
    struct citem *it = NULL;
    for (size_t i = 0; i < r->n && !it; i++)
        if (r->items[i].l.id == l->id)
            it = &r->items[i];
    if (!it) {
        if (r->n == r->alloc) {
            r->alloc = r->alloc ? r->alloc * 2 : 32;
            r->items = xrealloc(r->items, r->alloc * sizeof(*r->items));
        }
        it = &r->items[r->n++];
        memset(it, 0, sizeof(*it));
        it->l.id = l->id;
        it->l.created_ms = l->created_ms;
        for (int s = 0; s < 2; s++) {
            it->l.remote[s] = dup_or_null(l->remote[s]);
            it->l.key[s] = dup_or_null(l->key[s]);
            it->l.url[s] = dup_or_null(l->url[s]);
        }
    }
    it->need[0] |= need0;
    it->need[1] |= need1;
    return it;
}

static void item_release(struct citem *it)
{
    link_release(&it->l);
    comment_list_release(&it->cl[0]);
    comment_list_release(&it->cl[1]);
    free(it->created_by[0]);
    free(it->created_by[1]);
}

/* Links left pending by an earlier cycle. */
static enum cb_status add_pending(struct crun *r, struct cache_txn *t)
{
    struct strbuf k = STRBUF_INIT;
    strbuf_setf(&k, "cpending:%s", r->cs->pair);
    cJSON *arr = NULL;
    enum cb_status st = cache_meta_get(t, k.buf, &arr);
    const cJSON *v;
    cJSON_ArrayForEach(v, arr)
    {
        struct link l = {0};
        if (cache_link_get(t, r->cs->pair, (uint64_t)cJSON_GetNumberValue(v), &l) == CB_OK)
            (void)links_add(r, &l, 1, 1);
        link_release(&l);
    }
    cJSON_Delete(arr);
    strbuf_release(&k);
    return st == CB_ERR_NOTFOUND ? CB_OK : st;
}

static void free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* Linked records whose comments changed, from connectors that can tell. */
static enum cb_status add_changed(struct crun *r, int s)
{
    const struct comment_sync *cs = r->cs;
    if (!cs->ops[s]->comments_changed || cs->since_ms[s] <= 0)
        return CB_OK; /* a first cycle: every link is new */
    int64_t since = cs->since_ms[s];
    char **ids = NULL;
    size_t n = 0;
    struct strbuf e = STRBUF_INIT;
    enum cb_status st = cs->ops[s]->comments_changed(cs->conn[s], since, &ids, &n, &e);
    if (st != CB_OK) {
        problem(r, "cannot list changed comments on %s: %s", side_name((enum side)s),
                e.len ? e.buf : cb_status_str(st));
        strbuf_release(&e);
        free_ids(ids, n);
        return st == CB_ERR_AUTH || st == CB_ERR_STOPPED ? st : CB_OK;
    }
    struct cache_txn *t;
    st = cache_txn_begin(cs->cache, 1, &t, &e);
    for (size_t i = 0; i < n && st == CB_OK; i++) {
        struct link l = {0};
        if (cache_link_find(t, cs->pair, s, ids[i], &l) == CB_OK)
            (void)links_add(r, &l, s == 0, s == 1);
        link_release(&l);
    }
    if (st == CB_OK)
        cache_txn_abort(t);
    strbuf_release(&e);
    free_ids(ids, n);
    return st;
}

static int in_trouble(const struct crun *r, uint64_t id)
{
    for (size_t i = 0; i < r->n_trouble; i++)
        if (r->trouble[i] == id)
            return 1;
    return 0;
}

/* What is known of each link's comments after this run: a record whose modified time has not
 * moved past its mark has no comment we have not seen (for services where a comment moves it). */
static enum cb_status mark_seen(struct crun *r, struct cache_txn *t, struct strbuf *k)
{
    enum cb_status st = CB_OK;
    for (size_t i = 0; i < r->n && st == CB_OK; i++) {
        struct citem *it = &r->items[i];
        if (in_trouble(r, it->l.id) ||
            (!it->unseen && it->rec_ms[0] <= it->known_ms[0] && it->rec_ms[1] <= it->known_ms[1]))
            continue;
        cJSON *ms = cJSON_CreateArray();
        for (int s = 0; s < 2; s++) {
            int64_t m = it->rec_ms[s] > it->known_ms[s] ? it->rec_ms[s] : it->known_ms[s];
            cJSON_AddItemToArray(ms, cJSON_CreateNumber((double)m));
        }
        strbuf_setf(k, "cseen:%s:%llu", r->cs->pair, (unsigned long long)it->l.id);
        st = cache_meta_put(t, k->buf, ms);
        cJSON_Delete(ms);
    }
    return st;
}

static int handled_here(const struct crun *r, uint64_t id)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->items[i].l.id == id)
            return 1;
    return 0;
}

/* The pending list after this run: what another run (a migration's other connection) left or
 * added stays, the links handled here leave it unless they are in trouble. Read and written in
 * one write transaction, so that runs in parallel never drop each other's entries. */
static enum cb_status pending_merge(struct crun *r, struct cache_txn *t, const struct strbuf *k)
{
    cJSON *old = NULL;
    enum cb_status st = cache_meta_get(t, k->buf, &old);
    if (st != CB_OK && st != CB_ERR_NOTFOUND)
        return st;
    cJSON *arr = cJSON_CreateArray();
    const cJSON *v;
    cJSON_ArrayForEach(v, old)
    {
        uint64_t id = (uint64_t)cJSON_GetNumberValue(v);
        if (id && !handled_here(r, id) && !in_trouble(r, id))
            cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)id));
    }
    for (size_t i = 0; i < r->n_trouble; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)r->trouble[i]));
    st = cJSON_GetArraySize(arr) ? cache_meta_put(t, k->buf, arr)
         : old                   ? cache_meta_del(t, k->buf)
                                 : CB_OK;
    cJSON_Delete(old);
    cJSON_Delete(arr);
    return st;
}

static enum cb_status pending_store(struct crun *r, size_t from)
{
    for (size_t i = from; i < r->n; i++)
        add_trouble(r, r->items[i].l.id); /* not reached (stopped): keep for the next cycle */
    struct strbuf k = STRBUF_INIT, e = STRBUF_INIT;
    strbuf_setf(&k, "cpending:%s", r->cs->pair);
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(r->cs->cache, 0, &t, &e);
    if (st == CB_OK) {
        st = pending_merge(r, t, &k);
        st = st == CB_OK ? mark_seen(r, t, &k) : st;
        if (st != CB_OK)
            cache_txn_abort(t);
        else
            st = cache_txn_commit(t, &e);
    }
    strbuf_release(&k);
    strbuf_release(&e);
    return st == CB_OK ? CB_OK : CB_ERR_CACHE;
}

static int has_comments(const struct comment_sync *cs)
{
    for (int s = 0; s < 2; s++)
        if (!cs->ops[s]->list_comments || !cs->ops[s]->write_comment)
            return 0;
    return 1;
}

/* Reads the marks of link id into known[]; returns 0 when the link was never synced. */
static int was_seen(struct crun *r, struct cache_txn *t, uint64_t id, int64_t known[2])
{
    struct strbuf k = STRBUF_INIT;
    strbuf_setf(&k, "cseen:%s:%llu", r->cs->pair, (unsigned long long)id);
    cJSON *v = NULL;
    int seen = cache_meta_get(t, k.buf, &v) == CB_OK;
    for (int s = 0; s < 2; s++)
        known[s] = (int64_t)cJSON_GetNumberValue(cJSON_GetArrayItem(v, s));
    cJSON_Delete(v);
    strbuf_release(&k);
    return seen;
}

/* Whether side s of a link passed by the engine may have comments we have not seen. A link never
 * synced: every record crmbridge did not just create (ours carry a marker and no comments yet).
 * Later, for a connector that reports changed comments: only records it names (add_changed);
 * for one that does not (a comment moves the or card's modified time): a record read in
 * this cycle whose modified time moved past the mark of the last listing and, when the record
 * came with all its comments (COMMENT_NEWEST_FIELD: Jira), whose newest comment is past it too,
 * so that editing an issue's title costs no listing. A count of 0 (COMMENT_COUNT_FIELD) never
 * needs one.
 *
 * Why the newest time against the mark is safe: the mark is the record's modified time as read
 * before the last listing, and that listing ran after the read. A comment stamped at or before
 * the mark (by the service's own clock, which also stamps modified times) was there when the
 * record was read, so the listing saw it in that version; one created or edited since has a
 * later created or updated time and is listed. Skipping moves the mark to this read's modified
 * time (mark_seen), which stays safe: every comment the read returned is at or before the old
 * mark, and any later one is stamped after this read. It needs the comments and the modified time
 * of one read (Jira's search and bulk read return both from one issue state). */
static int need_side(const struct comment_sync *cs, int s, const struct record *rec, int unseen,
                     const int64_t known[2])
{
    const cJSON *f = rec && rec[s].id ? rec[s].fields : NULL;
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(f, COMMENT_COUNT_FIELD);
    const cJSON *newest = cJSON_GetObjectItemCaseSensitive(f, COMMENT_NEWEST_FIELD);
    if (cJSON_IsNumber(count) && count->valuedouble < 1)
        return 0; /* the connector says it has none */
    if (unseen)
        return !(rec && rec[s].id && rec[s].marker);
    if (cs->ops[s]->comments_changed)
        return 0;
    if (cJSON_IsNumber(newest) && (int64_t)newest->valuedouble <= known[s])
        return 0; /* every comment it has was there at the last listing */
    return !rec || (rec[s].id && rec[s].modified_ms > known[s]);
}

/* The links of the cycle: one listing per record that may have changed, about what reading or
 * creating the record cost. */
static enum cb_status gather(struct crun *r, struct cache_txn *t, const struct link *first,
                             const struct record *recs, size_t n, size_t stride)
{
    const struct comment_sync *cs = r->cs;
    for (size_t i = 0; i < n; i++) {
        const struct link *l = (const void *)((const char *)first + i * stride);
        const struct record *rec = recs ? (const void *)((const char *)recs + i * stride) : NULL;
        if (rec && (rec[0].out_of_scope || rec[1].out_of_scope))
            continue; /* it left a side's filter: its comments stay where they are too */
        int64_t known[2] = {0, 0};
        int unseen = l->id && !was_seen(r, t, l->id, known);
        struct citem *it = links_add(r, l, need_side(cs, 0, rec, unseen, known),
                                     need_side(cs, 1, rec, unseen, known));
        if (!it)
            continue;
        it->unseen |= unseen;
        for (int s = 0; s < 2; s++) {
            it->known_ms[s] = known[s];
            it->rec_ms[s] = rec && rec[s].id ? rec[s].modified_ms : 0;
            if (cs->origin && rec && rec[s].id && !rec[s].marker && rec[s].created_ms > 0 &&
                !it->created_ms[s]) {
                it->created_ms[s] = rec[s].created_ms;
                it->created_by[s] = rec[s].created_by ? xstrdup(rec[s].created_by) : NULL;
            }
        }
    }
    return r->cs->no_pending ? CB_OK : add_pending(r, t);
}

static enum cb_status gather_all(struct crun *r, const struct link *first,
                                 const struct record *recs, size_t n, size_t stride)
{
    struct cache_txn *t;
    struct strbuf e = STRBUF_INIT;
    enum cb_status st = cache_txn_begin(r->cs->cache, 1, &t, &e);
    if (st == CB_OK) {
        st = gather(r, t, first, recs, n, stride);
        cache_txn_abort(t);
    }
    strbuf_release(&e);
    for (int s = 0; s < 2 && st == CB_OK; s++)
        st = add_changed(r, s);
    return st;
}

enum cb_status sync_comments(const struct comment_sync *cs, const struct link *first,
                             const struct record *recs, size_t n, size_t stride, struct strbuf *err)
{
    if (!has_comments(cs))
        return CB_OK;
    struct crun r = {.cs = cs};
    enum cb_status st = gather_all(&r, first, recs, n, stride);
    size_t i = 0;
    while (i < r.n && st == CB_OK) {
        st = sync_item(&r, &r.items[i]);
        i += st == CB_OK;
    }
    if (st == CB_OK || st == CB_ERR_STOPPED || st == CB_ERR_AUTH) {
        enum cb_status ps = pending_store(&r, i);
        if (st == CB_OK)
            st = ps;
    }
    if (st != CB_OK)
        strbuf_setf(err, "cannot sync comments of pair '%s': %s", cs->pair, cb_status_str(st));
    for (size_t k = 0; k < r.n; k++)
        item_release(&r.items[k]);
    free(r.items);
    free(r.trouble);
    return st;
}
