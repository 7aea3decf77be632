/*
 * One pair's sync cycle (design.md, "Sync cycle"): recover intents, pull both sides since their
 * cursors minus the overlap (a side whose listing can name records second, naming those linked
 * to the first side's changes), drop what matches the base, read what else a merge needs (not
 * what a complete, immediate listing proves unchanged), merge field by field, create what is
 * new behind a journaled intent and a marker, write only changed fields, and commit link, base
 * and cursor. Both directions run through the same code, indexed by enum side. It never
 * includes a concrete connector's header and never prints.
 */
#define LOG_MODULE "sync"
#include "sync/engine.h"

#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/connector.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "mapping/mapping.h"
#include "sync/comments.h"
#include "sync/engine_p.h"
#include "sync/merge.h"

/* atomic: set by signal handlers, read by every pair's thread (lock-free, so signal-safe) */
static atomic_int stop_flag;

void sync_request_stop(void)
{
    stop_flag = 1;
}

int sync_stop_requested(void)
{
    return stop_flag != 0;
}

void sync_stop_reset(void)
{
    stop_flag = 0;
}

void sync_report_init(struct sync_report *r)
{
    memset(r, 0, sizeof(*r));
    strbuf_init(&r->problems, 1 << 20);
    strbuf_init(&r->notes, 1 << 20);
}

void sync_report_release(struct sync_report *r)
{
    strbuf_release(&r->problems);
    strbuf_release(&r->notes);
}

void sync_report_add(struct sync_report *a, const struct sync_report *b)
{
    for (int s = 0; s < 2; s++) {
        a->read[s] += b->read[s];
        a->created[s] += b->created[s];
        a->updated[s] += b->updated[s];
        a->archived[s] += b->archived[s];
        a->deleted[s] += b->deleted[s];
        a->comments[s] += b->comments[s];
    }
    a->linked += b->linked;
    a->unchanged += b->unchanged;
    a->conflicts += b->conflicts;
    a->skipped += b->skipped;
    a->failed += b->failed;
    a->postponed += b->postponed;
    a->requests += b->requests;
    (void)strbuf_add(&a->problems, b->problems.buf, b->problems.len);
    (void)strbuf_add(&a->notes, b->notes.buf, b->notes.len);
}

void sync_pair_sweep_soon(struct sync_pair *p)
{
    p->sweep_soon = 1;
}

const char *sync_pair_name(const struct sync_pair *p)
{
    return p->pc->name;
}

void cap_cursor(struct cycle *c, enum side s, int64_t ms)
{
    if (ms > 0 && ms - 1 < c->cap_ms[s])
        c->cap_ms[s] = ms - 1;
}

const char *rec_label(const struct record *r)
{
    return r->key ? r->key : r->id ? r->id : "?";
}

/* ---------------------------------------------------------------- open, close, ping, check */

static enum cb_status open_side(struct sync_pair *p, const struct config *cfg, enum side s,
                                struct strbuf *err)
{
    const struct side_conf *sc = &p->pc->side[s];
    const struct endpoint_conf *ep = config_endpoint(cfg, sc->endpoint);
    p->ops[s] = ep ? connector_find(ep->type) : NULL;
    if (!p->ops[s]) {
        strbuf_setf(err, "pair '%s': unknown %s endpoint type '%s' (known: %s)", p->pc->name,
                    side_name(s), ep && ep->type ? ep->type : "?", connector_types());
        return CB_ERR_CONFIG;
    }
    p->ep_name[s] = ep->name;
    struct connector_params cp = {
        .ep = ep,
        .side = sc,
        .http = {.timeout_s = cfg->http_timeout_s, .max_body = cfg->max_body_bytes},
        .cache = p->cache,
        .fields = mapping_remote_fields(p->map, s),
    };
    return p->ops[s]->open(&cp, &p->conn[s], err);
}

enum cb_status sync_pair_open(const struct config *cfg, const struct pair_conf *pc,
                              struct cache *cache, struct sync_pair **out, struct strbuf *err)
{
    struct sync_pair *p = xcalloc(1, sizeof(*p));
    p->pc = pc;
    p->cache = cache;
    /* the server may finish a request after our timeout gave up on it: twice the timeout */
    p->settle_ms = 2000LL * (cfg->http_timeout_s > 0 ? cfg->http_timeout_s : 30);
    const char *types[2];
    for (int s = 0; s < 2; s++) {
        const struct endpoint_conf *ep = config_endpoint(cfg, pc->side[s].endpoint);
        types[s] = ep && ep->type ? ep->type : "?";
    }
    enum cb_status st = mapping_load(pc->mapping, types[0], types[1], &p->map, err);
    for (int s = 0; st == CB_OK && s < 2; s++)
        st = open_side(p, cfg, (enum side)s, err);
    if (st != CB_OK) {
        sync_pair_close(p);
        return st;
    }
    p->create_from[SIDE_CRM] = !strcmp(pc->create, "to_tracker") || !strcmp(pc->create, "both");
    p->create_from[SIDE_TRACKER] = !strcmp(pc->create, "to_crm") || !strcmp(pc->create, "both");
    *out = p;
    return CB_OK;
}

void sync_pair_close(struct sync_pair *p)
{
    if (!p)
        return;
    for (int s = 0; s < 2; s++)
        if (p->conn[s])
            p->ops[s]->close(p->conn[s]);
    mapping_free(p->map);
    free(p);
}

enum cb_status sync_pair_ping(struct sync_pair *p, enum side s, struct strbuf *info,
                              struct strbuf *err)
{
    enum cb_status st = p->ops[s]->ping(p->conn[s], info, err);
    p->pinged[s] = st == CB_OK;
    if (st == CB_OK)
        sync_people_load(p, s, info);
    return st;
}

enum cb_status sync_check_pair_config(const struct config *cfg, const struct pair_conf *pc,
                                      struct strbuf *err)
{
    enum cb_status res = CB_OK;
    const char *types[2] = {"?", "?"};
    for (int s = 0; s < 2; s++) {
        const struct endpoint_conf *ep = config_endpoint(cfg, pc->side[s].endpoint);
        if (!ep)
            continue;
        types[s] = ep->type ? ep->type : "?";
        const struct connector_ops *ops = connector_find(ep->type);
        if (!ops) {
            conf_error(&ep->g, NULL, err, "endpoint '%s': unknown type '%s' (known: %s)", ep->name,
                       types[s], connector_types());
            res = CB_ERR_CONFIG;
            continue;
        }
        if (ops->check_config(ep, &pc->side[s], err) != CB_OK)
            res = CB_ERR_CONFIG;
    }
    struct mapping *m = NULL;
    struct strbuf merr = STRBUF_INIT;
    if (res == CB_OK && mapping_load(pc->mapping, types[0], types[1], &m, &merr) != CB_OK) {
        (void)strbuf_addf(err, "%s\n", merr.buf);
        res = CB_ERR_CONFIG;
    }
    strbuf_release(&merr);
    mapping_free(m);
    return res;
}

/* ---------------------------------------------------------------- small helpers */

static void new_marker(char out[33])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        /* RAND_bytes failing means the system RNG is broken: refuse to invent weak markers */
        fputs("fatal: no random source for sync markers\n", stderr);
        abort();
    }
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static struct remote_view view_of(const struct record *r)
{
    struct remote_view v = {r->id, r->key, r->url, r->fields};
    return v;
}

cJSON *map_record(struct cycle *c, enum side s, const struct record *r)
{
    struct remote_view rv = view_of(r);
    return mapping_to_item(c->p->map, s, &rv, NULL);
}

/* A target that keeps a field in a poorer format (Markdown in a plain-text field) reads back
 * something other than what was written: fingerprint the read-back instead, so it is not
 * taken for a person's edit there and copied back over the richer original. */
static void fingerprint_echoes(struct cycle *c, enum side s, const cJSON *written, cJSON *base)
{
    const struct connector_ops *o = c->p->ops[s];
    if (!o->echo || !written || !base)
        return;
    cJSON *echoed = cJSON_CreateObject();
    int any = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, written)
    {
        cJSON *e = o->echo(c->p->conn[s], f->string, f);
        any |= e != NULL;
        cJSON_AddItemToObject(echoed, f->string, e ? e : cJSON_Duplicate(f, 1));
    }
    if (any) {
        struct remote_view rw = {NULL, NULL, NULL, written}, re = {NULL, NULL, NULL, echoed};
        cJSON *vw = mapping_to_item(c->p->map, s, &rw, NULL);
        cJSON *ve = mapping_to_item(c->p->map, s, &re, NULL);
        const cJSON *v;
        cJSON_ArrayForEach(v, ve)
        {
            if (!item_value_equal(v->string, v, cJSON_GetObjectItemCaseSensitive(vw, v->string)))
                merge_fingerprint(base, s, v->string, v);
        }
        cJSON_Delete(vw);
        cJSON_Delete(ve);
    }
    cJSON_Delete(echoed);
}

struct work *work_add(struct cycle *c)
{
    if (c->n_w == c->alloc_w) {
        c->alloc_w = c->alloc_w ? c->alloc_w * 2 : 64;
        c->w = xrealloc(c->w, c->alloc_w * sizeof(*c->w));
    }
    struct work *w = &c->w[c->n_w++];
    memset(w, 0, sizeof(*w));
    return w;
}

static struct work *work_find(struct cycle *c, uint64_t link_id)
{
    for (size_t i = 0; i < c->n_w; i++)
        if (c->w[i].link.id == link_id)
            return &c->w[i];
    return NULL;
}

void work_release(struct work *w)
{
    link_release(&w->link);
    cJSON_Delete(w->forced);
    cJSON_Delete(w->forced_was);
    free(w->resolved);
    for (int s = 0; s < 2; s++) {
        record_release(&w->rec[s]);
        cJSON_Delete(w->view[s]);
    }
    cJSON_Delete(w->base);
    cJSON_Delete(w->pending);
}

int is_blocked(struct cycle *c, enum side s, const char *id)
{
    for (size_t i = 0; i < c->n_blocked[s]; i++)
        if (strcmp(c->blocked[s][i], id) == 0)
            return 1;
    return 0;
}

static void block(struct cycle *c, enum side s, const char *id)
{
    c->blocked[s] = xrealloc(c->blocked[s], (c->n_blocked[s] + 1) * sizeof(char *));
    c->blocked[s][c->n_blocked[s]++] = xstrdup(id);
}

static const struct intent *intent_for(struct cycle *c, enum side src, const char *source_id)
{
    for (size_t i = 0; i < c->n_intents; i++)
        if (c->intents[i].target == (int)SIDE_OTHER(src) &&
            str_eq(c->intents[i].source_id, source_id))
            return &c->intents[i];
    return NULL;
}

void cycle_problem(struct cycle *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct strbuf line = STRBUF_INIT;
    (void)strbuf_vaddf(&line, fmt, ap);
    va_end(ap);
    log_info("pair '%s': %s", c->p->pc->name, line.buf); /* the report carries it to the user */
    (void)strbuf_addf(&c->rep->problems, "%s\n", line.buf);
    strbuf_release(&line);
}

void cycle_note(struct cycle *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct strbuf line = STRBUF_INIT;
    (void)strbuf_vaddf(&line, fmt, ap);
    va_end(ap);
    log_info("pair '%s': %s", c->p->pc->name, line.buf);
    (void)strbuf_addf(&c->rep->notes, "%s\n", line.buf);
    strbuf_release(&line);
}

/* Runs fn inside one write transaction and commits it. */
enum cb_status with_txn(struct cycle *c, enum cb_status (*fn)(struct cache_txn *, void *),
                        void *arg, struct strbuf *err)
{
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(c->p->cache, 0, &t, err);
    if (st != CB_OK)
        return st;
    st = fn(t, arg);
    if (st != CB_OK) {
        cache_txn_abort(t);
        strbuf_setf(err, "cannot update cache: %s", cb_status_str(st));
        return st;
    }
    return cache_txn_commit(t, err);
}

/* ---------------------------------------------------------------- step 1: intents */

struct link_commit {
    const char *pair;
    struct link *link;
    const cJSON *base;  /* may be NULL */
    uint64_t intent_id; /* 0 = none to delete */
};

static enum cb_status commit_link(struct cache_txn *t, void *arg)
{
    struct link_commit *lc = arg;
    enum cb_status st = cache_link_put(t, lc->pair, lc->link);
    if (st == CB_OK && lc->base)
        st = cache_base_put(t, lc->pair, lc->link->id, lc->base);
    if (st == CB_OK && lc->intent_id)
        st = cache_intent_del(t, lc->pair, lc->intent_id);
    return st;
}

static void fill_link_side(struct link *l, enum side s, const struct record *r)
{
    free(l->remote[s]);
    free(l->key[s]);
    free(l->url[s]);
    l->remote[s] = r->id ? xstrdup(r->id) : NULL;
    l->key[s] = r->key ? xstrdup(r->key) : NULL;
    l->url[s] = r->url ? xstrdup(r->url) : NULL;
}

/* How long a write to side s may stay invisible to its listing. */
int64_t lag_of(const struct sync_pair *p, enum side s)
{
    return p->ops[s]->search_lag ? p->ops[s]->search_lag(p->conn[s]) : p->ops[s]->search_lag_ms;
}

/* A create whose outcome is unknown (crash or lost response): link it if the target shows the
 * marker; otherwise wait out the target's search lag before creating it again. */
static enum cb_status recover_one(struct cycle *c, const struct intent *in, struct strbuf *err)
{
    struct sync_pair *p = c->p;
    enum side t = (enum side)in->target, s = SIDE_OTHER(t);
    struct record found = {0};
    struct strbuf e = STRBUF_INIT;
    enum cb_status st = p->ops[t]->find_marker(p->conn[t], in->marker, in->created_ms, &found, &e);
    if (st == CB_OK) {
        struct work *w = work_add(c);
        w->link.remote[s] = xstrdup(in->source_id);
        fill_link_side(&w->link, t, &found);
        w->link.created_ms = cbtime_now_ms();
        /* the base journaled with the intent: an edit made on the new copy meanwhile is a
         * change there, not something the source overwrites */
        w->base = in->base ? cJSON_Duplicate(in->base, 1) : NULL;
        struct link_commit lc = {p->pc->name, &w->link, w->base, in->id};
        st = with_txn(c, commit_link, &lc, err);
        w->rec[t] = found;
        w->recovered = 1;
        c->rep->linked++;
        cycle_note(c, "linked %s '%s' to %s record '%s' created before an interruption",
                   side_name(s), in->source_id, side_name(t), rec_label(&w->rec[t]));
        strbuf_release(&e);
        return st;
    }
    record_release(&found);
    int64_t now = cbtime_now_ms(), lag = lag_of(p, t);
    /* not visible: wait out the search lag, and after a send whose answer never came, as long
     * as the server may still be working on it */
    int settled =
        now - in->created_ms >= lag && (!in->unsure_ms || now - in->unsure_ms >= p->settle_ms);
    if (st == CB_ERR_NOTFOUND && settled) {
        strbuf_release(&e);
        c->n_stale++; /* not there: the create step makes it again, with the same marker */
        return CB_OK;
    }
    block(c, s, in->source_id);
    c->rep->postponed++;
    if (st == CB_ERR_NOTFOUND)
        cycle_problem(c,
                      "postponed create of %s record '%s': not visible on %s yet (search lag, "
                      "or an earlier attempt may still land)",
                      side_name(s), in->source_id, side_name(t));
    else
        cycle_problem(c, "postponed create of %s record '%s': %s", side_name(s), in->source_id,
                      e.buf);
    strbuf_release(&e);
    return st == CB_ERR_AUTH ? st : CB_OK;
}

enum cb_status recover_intents(struct cycle *c, struct strbuf *err)
{
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(c->p->cache, 1, &t, err);
    if (st != CB_OK)
        return st;
    st = cache_intent_list(t, c->p->pc->name, &c->intents, &c->n_intents);
    cache_txn_abort(t);
    if (st != CB_OK) {
        strbuf_setf(err, "cannot read pending creates: %s", cb_status_str(st));
        return st;
    }
    for (size_t i = 0; i < c->n_intents && st == CB_OK; i++)
        st = recover_one(c, &c->intents[i], err);
    return st;
}

/* ---------------------------------------------------------------- step 2: pull */

struct pull_ctx {
    struct cycle *c;
    enum side s;
    int64_t since; /* where the listing starts */
    int named;     /* the listing also names records by id (list_changed_also) */
};

/* A record older than the listing's start that a listing naming ids gave: it is there only
 * because it was named, as if read by id, so it neither counts as listed nor moves the cursor. */
static int named_only(const struct pull_ctx *pc, const struct record *r)
{
    return pc->named && r->modified_ms < pc->since;
}

static enum cb_status on_page(void *arg, struct record *recs, size_t n)
{
    struct pull_ctx *pc = arg;
    for (size_t i = 0; i < n; i++) {
        struct record r;
        record_copy(&r, &recs[i]);
        if (!named_only(pc, &r) && r.modified_ms > pc->c->max_ms[pc->s])
            pc->c->max_ms[pc->s] = r.modified_ms;
        record_list_push(&pc->c->pulled[pc->s], &r);
    }
    return sync_stop_requested() ? CB_ERR_STOPPED : CB_OK;
}

static int cmp_rec(const void *a, const void *b)
{
    const struct record *x = a, *y = b;
    int d = strcmp(x->id, y->id);
    if (d)
        return d;
    return (x->modified_ms > y->modified_ms) - (x->modified_ms < y->modified_ms);
}

/* Keeps the newest copy of each id (overlap windows and moving pages repeat records). */
static void dedupe(struct record_list *l)
{
    if (l->n < 2)
        return;
    qsort(l->v, l->n, sizeof(*l->v), cmp_rec);
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (i + 1 < l->n && strcmp(l->v[i].id, l->v[i + 1].id) == 0) {
            record_release(&l->v[i]);
            continue;
        }
        l->v[k++] = l->v[i];
    }
    l->n = k;
}

/* How far behind a cursor a listing starts: the pair's overlap, or by default the side's search
 * lag plus LISTING_MARGIN_MS (Date headers and modified times are whole seconds). */
#define LISTING_MARGIN_MS 2000
static int64_t overlap_ms(const struct sync_pair *p, enum side s)
{
    return p->pc->overlap_s >= 0 ? (int64_t)p->pc->overlap_s * 1000
                                 : lag_of(p, s) + LISTING_MARGIN_MS;
}

/* Where side s's listing starts: the overlap behind the newest record applied, or behind the
 * start of the last complete listing when that is later: a record older than that start minus
 * the search lag was visible to that listing and applied. After a burst of writes this stops
 * re-reading the burst once one listing has begun after it; 0 reads everything. */
int64_t sync_listing_since(const struct sync_pair *p, enum side s, const struct cursor *cu)
{
    int64_t ov = overlap_ms(p, s);
    int64_t a = cu->ms > 0 ? cu->ms - ov : 0, b = cu->listed_ms > 0 ? cu->listed_ms - ov : 0;
    int64_t since = a > b ? a : b;
    return since > 0 ? since : 0;
}

/* Lists side s's changes since its cursor, and the records ids[0..n) (n > 0 only when its
 * connector has list_changed_also and n <= max_list_also), into c->pulled[s]. */
static enum cb_status pull(struct cycle *c, enum side s, const struct cursor *cu,
                           const char *const *ids, size_t n, struct strbuf *err)
{
    struct sync_pair *p = c->p;
    int64_t since = sync_listing_since(p, s, cu);
    c->listed_ms[s] = p->ops[s]->server_now ? p->ops[s]->server_now(p->conn[s]) : 0;
    struct pull_ctx pc = {c, s, since, n > 0};
    struct strbuf e = STRBUF_INIT;
    enum cb_status st = CB_ERR_FINAL;
    if (n)
        st = p->ops[s]->list_changed_also(p->conn[s], since, ids, n, on_page, &pc, &e);
    if (st == CB_ERR_FINAL) {
        /* refused (a record deleted since it was linked may fail a whole query): list without
         * naming any; fetch_side reads them by id */
        if (n)
            log_info("pair '%s': listing %s naming %zu records refused, listing without: %s",
                     p->pc->name, side_name(s), n, e.buf);
        strbuf_reset(&e);
        st = p->ops[s]->list_changed(p->conn[s], since, on_page, &pc, &e);
    }
    if (st != CB_OK)
        strbuf_setf(err, "cannot list changes on %s '%s': %s", side_name(s), p->ep_name[s],
                    e.len ? e.buf : cb_status_str(st));
    strbuf_release(&e);
    for (size_t i = 0; i < c->pulled[s].n; i++)
        if (!c->pulled[s].v[i].id) {
            strbuf_setf(err, "%s '%s' returned a record without an id", side_name(s),
                        p->ep_name[s]);
            return CB_ERR_PARSE;
        }
    dedupe(&c->pulled[s]);
    c->listed_all[s] = st == CB_OK;
    c->rep->read[s] = 0;
    for (size_t i = 0; i < c->pulled[s].n; i++)
        c->rep->read[s] += !named_only(&pc, &c->pulled[s].v[i]);
    return st;
}

/* ---------------------------------------------------------------- step 3: sort pulled records */

/* Sorts side s's pulled records: linked ones onto their work items, new ones to create. */
static enum cb_status classify(struct cycle *c, enum side s, struct strbuf *err)
{
    struct sync_pair *p = c->p;
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(p->cache, 1, &t, err);
    if (st != CB_OK)
        return st;
    for (size_t i = 0; i < c->pulled[s].n; i++) {
        struct record *r = &c->pulled[s].v[i];
        struct link l = {0};
        enum cb_status fs = cache_link_find(t, p->pc->name, s, r->id, &l);
        if (fs == CB_OK) {
            struct work *w = work_find(c, l.id);
            if (!w) {
                w = work_add(c);
                w->link = l;
            } else {
                link_release(&l);
            }
            if (!w->rec[s].id) {
                w->rec[s] = *r;
                memset(r, 0, sizeof(*r));
            }
            continue;
        }
        if (fs != CB_ERR_NOTFOUND) {
            st = fs;
            break;
        }
        if (cache_was_unlinked(t, p->pc->name, (int)s, r->id)) {
            c->rep->unchanged++; /* a person cut this link: leave the record alone */
            continue;
        }
        if (r->out_of_scope) {
            c->rep->unchanged++; /* outside the side's filter: not this pair's record */
            continue;
        }
        if (!p->create_from[s]) {
            c->rep->unchanged++; /* not created from this side: out of this pair's scope */
            continue;
        }
        if (r->marker) {
            /* made by crmbridge and not linked: never copy it back (that would loop) */
            c->rep->skipped++;
            cycle_problem(c, "skipped %s record '%s': it carries a crmbridge marker but no link",
                          side_name(s), rec_label(r));
            continue;
        }
        if (is_blocked(c, s, r->id)) {
            cap_cursor(c, s, r->modified_ms);
            continue;
        }
        record_list_push(&c->creates[s], r);
    }
    cache_txn_abort(t);
    if (st != CB_OK)
        strbuf_setf(err, "cannot read links: %s", cb_status_str(st));
    return st;
}

/* ---------------------------------------------------------------- step 3b: resolutions */

static void add_resolution(struct cycle *c, struct cache_txn *t, const struct conflict *k)
{
    struct work *w = work_find(c, k->link_id);
    if (!w) {
        struct link l = {0};
        if (cache_link_get(t, c->p->pc->name, k->link_id, &l) != CB_OK) {
            link_release(&l);
            return; /* the link is gone (unlinked): nothing to write */
        }
        w = work_add(c);
        w->link = l;
    }
    if (!w->forced)
        w->forced = cJSON_CreateObject();
    cJSON_DeleteItemFromObjectCaseSensitive(w->forced, k->field);
    cJSON_AddItemToObject(w->forced, k->field,
                          k->resolution ? cJSON_Duplicate(k->resolution, 1) : cJSON_CreateNull());
    if (!w->forced_was)
        w->forced_was = cJSON_CreateObject();
    cJSON *was = cJSON_CreateArray();
    for (int s = 0; s < 2; s++)
        cJSON_AddItemToArray(was,
                             k->value[s] ? cJSON_Duplicate(k->value[s], 1) : cJSON_CreateNull());
    cJSON_DeleteItemFromObjectCaseSensitive(w->forced_was, k->field);
    cJSON_AddItemToObject(w->forced_was, k->field, was);
    w->resolved = xrealloc(w->resolved, (w->n_resolved + 1) * sizeof(*w->resolved));
    w->resolved[w->n_resolved++] = k->id;
}

/* Conflicts a person resolved since the last cycle: their values go to both sides now. */
static enum cb_status load_resolutions(struct cycle *c, struct strbuf *err)
{
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(c->p->cache, 1, &t, err);
    if (st != CB_OK)
        return st;
    struct conflict *ks = NULL;
    size_t n = 0;
    st = cache_conflict_list(t, c->p->pc->name, 0, &ks, &n);
    for (size_t i = 0; i < n; i++) {
        if (st == CB_OK && ks[i].resolved == 1)
            add_resolution(c, t, &ks[i]);
        conflict_release(&ks[i]);
    }
    free(ks);
    cache_txn_abort(t);
    if (st != CB_OK)
        strbuf_setf(err, "cannot read conflicts: %s", cb_status_str(st));
    return st;
}

/* ---------------------------------------------------------------- step 4: fetch the other side */

/* load_bases for the work items from index `from` on. */
static enum cb_status load_bases_from(struct cycle *c, size_t from, struct strbuf *err)
{
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(c->p->cache, 1, &t, err);
    if (st != CB_OK)
        return st;
    for (size_t i = from; i < c->n_w && st == CB_OK; i++) {
        struct work *w = &c->w[i];
        if (w->recovered)
            continue;
        enum cb_status bs = cache_base_get(t, c->p->pc->name, w->link.id, &w->base);
        if (bs != CB_OK && bs != CB_ERR_NOTFOUND)
            st = bs;
        if (w->base)
            w->pending = cJSON_DetachItemFromObjectCaseSensitive(w->base, "pending");
    }
    cache_txn_abort(t);
    return st;
}

enum cb_status load_bases(struct cycle *c, struct strbuf *err)
{
    return load_bases_from(c, 0, err);
}

/* A record whose side shows no change against its fingerprints needs nothing (our own echo or
 * a change to a field we do not map); everything else needs the other side's current state. */
static void drop_unchanged(struct cycle *c)
{
    for (size_t i = 0; i < c->n_w; i++) {
        struct work *w = &c->w[i];
        for (int s = 0; s < 2; s++)
            if (w->rec[s].id && !w->view[s])
                w->view[s] = map_record(c, (enum side)s, &w->rec[s]);
        if (w->recovered || w->forced)
            continue;
        int changed = 0;
        for (int s = 0; s < 2; s++)
            if (w->view[s] && merge_side_changed(c->p->map, w->base, (enum side)s, w->view[s]))
                changed = 1;
        if (!changed) {
            w->done = 1;
            c->rep->unchanged++;
        }
    }
}

/* The side whose listing can also name records by id (list_changed_also), or -1. */
static int naming_side(const struct sync_pair *p)
{
    for (int s = SIDE_TRACKER; s >= (int)SIDE_CRM; s--)
        if (p->ops[s]->list_changed_also && p->ops[s]->max_list_also > 0)
            return s;
    return -1;
}

/* Side t's ids of the records linked to those that changed on side s (views against bases):
 * what merging them needs from t. *out (freed by the caller) borrows them from the work items.
 * Returns 0 when t's listing cannot name them all: they are read by id after it instead. */
static size_t ids_to_name(struct cycle *c, enum side s, const char ***out)
{
    enum side t = SIDE_OTHER(s);
    size_t max = (size_t)c->p->ops[t]->max_list_also, n = 0;
    const char **ids = xcalloc(max + 1, sizeof(*ids));
    for (size_t i = 0; i < c->n_w; i++) {
        struct work *w = &c->w[i];
        if (w->recovered || !w->rec[s].id || w->rec[t].id || !w->link.remote[t])
            continue;
        if (!w->view[s])
            w->view[s] = map_record(c, s, &w->rec[s]);
        if (!merge_side_changed(c->p->map, w->base, s, w->view[s]))
            continue;
        if (n == max) {
            n = 0;
            break;
        }
        ids[n++] = w->link.remote[t];
    }
    *out = ids;
    return n;
}

/* Steps 2 and 3: lists both sides and sorts what they listed. When one side's listing can name
 * records, the other side is listed first, and the records linked to its changes are named in
 * that listing: they come with it (current, where the service lags) and fetch_side finds them
 * read. The first side's work items get their bases here: *based = how many have them. */
static enum cb_status pull_sides(struct cycle *c, const struct cursor cur[2], size_t *based,
                                 struct strbuf *err)
{
    int naming = naming_side(c->p);
    enum side first = naming == (int)SIDE_CRM ? SIDE_TRACKER : SIDE_CRM;
    enum side second = SIDE_OTHER(first);
    const char **ids = NULL;
    size_t n = 0;
    *based = 0;
    enum cb_status st = pull(c, first, &cur[first], NULL, 0, err);
    if (st == CB_OK)
        st = classify(c, first, err);
    if (st == CB_OK && naming >= 0) {
        st = load_bases_from(c, 0, err);
        *based = c->n_w;
        if (st == CB_OK)
            n = ids_to_name(c, first, &ids);
    }
    if (st == CB_OK)
        st = pull(c, second, &cur[second], ids, n, err);
    if (st == CB_OK)
        st = classify(c, second, err);
    free(ids);
    return st;
}

/* ---------------------------------------------------------------- step 4a: records not listed */

/* 1 when the records of side s that this cycle's listing did not show are unchanged since the
 * last sync (the listing ran to its end and shows every edit at once: no search lag) and may
 * be written unread (its writer does not start from the record as read: write_reads_current).
 * Not on a side scoped by a `filter`: a service that filters on its side (Fxiaoke) drops a
 * record that left the scope from the listing instead of showing its change. Today: Zoho and
 * Fxiaoke without a filter. */
static int unlisted_unchanged(const struct cycle *c, enum side s)
{
    return !c->p->ops[s]->write_reads_current && c->listed_all[s] && lag_of(c->p, s) == 0 &&
           !conf_get(&c->p->pc->side[s].g, "filter");
}

/* 1 when link id is among the open conflicts k[0..n): its held fields need what the sides
 * show now, not the base. */
static int conflict_open(const struct conflict *k, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (k[i].link_id == id)
            return 1;
    return 0;
}

/* A work item whose side s would be read by id only to be merged against a change of the other
 * side, and whose state there the base tells: no person's choice, open conflict (k[0..n)) or
 * unacknowledged write needs what s shows beyond it. */
static int may_assume(const struct work *w, enum side s, const struct conflict *k, size_t n)
{
    return !w->done && !w->recovered && w->base && !w->pending && !w->forced && !w->forced_was &&
           w->link.id && w->link.remote[s] && !w->rec[s].id && w->rec[SIDE_OTHER(s)].id &&
           !conflict_open(k, n, w->link.id);
}

static void assume(struct cycle *c, struct work *w, enum side s)
{
    struct record *r = &w->rec[s];
    r->id = xstrdup(w->link.remote[s]);
    r->key = w->link.key[s] ? xstrdup(w->link.key[s]) : NULL;
    r->url = w->link.url[s] ? xstrdup(w->link.url[s]) : NULL;
    w->view[s] = merge_view_from_base(c->p->map, w->base, s);
    w->assumed[s] = 1;
}

/* Gives the linked records that a complete, immediate listing did not show their state from
 * the base instead of a read by id: merged against the other side's change, only what changed
 * is written. A write that then fails sends the item back to a read (recheck_assumed). The
 * pair's open conflicts are listed once; when the cache cannot list them, nothing is assumed. */
static enum cb_status assume_unlisted(struct cycle *c, struct strbuf *err)
{
    if (!unlisted_unchanged(c, SIDE_CRM) && !unlisted_unchanged(c, SIDE_TRACKER))
        return CB_OK;
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(c->p->cache, 1, &t, err);
    if (st != CB_OK)
        return st;
    struct conflict *open = NULL;
    size_t n_open = 0;
    enum cb_status ls = cache_conflict_list(t, c->p->pc->name, 1, &open, &n_open);
    cache_txn_abort(t);
    for (int si = 0; si < 2 && ls == CB_OK; si++) {
        enum side s = (enum side)si;
        for (size_t i = 0; unlisted_unchanged(c, s) && i < c->n_w; i++)
            if (may_assume(&c->w[i], s, open, n_open))
                assume(c, &c->w[i], s);
    }
    for (size_t i = 0; i < n_open; i++)
        conflict_release(&open[i]);
    free(open);
    return CB_OK;
}

/* A failed write to an assumed side: forget the assumption, so that the side is read by id
 * (the record may be gone, or edited since its listing) and the item merged again. */
static void unassume(struct work *w, enum side s)
{
    record_release(&w->rec[s]);
    cJSON_Delete(w->view[s]);
    w->view[s] = NULL;
    w->assumed[s] = 0;
    w->recheck = 1;
    w->done = 0;
}

/* Step 5b: the items unassume() sent back are read by id and go through the deletes and the
 * merge as without the assumption: a record deleted since ends as a read would have found it. */
static enum cb_status recheck_assumed(struct cycle *c, struct strbuf *err)
{
    int any = 0;
    for (size_t i = 0; i < c->n_w; i++)
        any |= c->w[i].recheck;
    if (!any)
        return CB_OK;
    enum cb_status st = CB_OK;
    for (int s = 0; s < 2 && st == CB_OK; s++)
        st = fetch_side(c, (enum side)s, err);
    c->rechecking = 1;
    if (st == CB_OK)
        st = deletes_apply(c, err);
    c->rechecking = 0;
    if (st == CB_OK)
        st = merge_and_write(c, 0, err);
    return st;
}

enum cb_status fetch_side(struct cycle *c, enum side s, struct strbuf *err)
{
    struct sync_pair *p = c->p;
    size_t max = (size_t)(p->ops[s]->max_batch_read > 0 ? p->ops[s]->max_batch_read : 1);
    const char **ids = xcalloc(max, sizeof(char *));
    size_t *idx = xcalloc(max, sizeof(size_t));
    enum cb_status st = CB_OK;
    size_t i = 0;
    while (i < c->n_w && st == CB_OK) {
        size_t n = 0;
        for (; i < c->n_w && n < max; i++) {
            struct work *w = &c->w[i];
            if (w->done || w->rec[s].id || !w->link.remote[s])
                continue;
            idx[n] = i;
            ids[n++] = w->link.remote[s];
        }
        if (n == 0)
            break;
        struct record_list got = {0};
        struct strbuf e = STRBUF_INIT;
        st = p->ops[s]->get_many(p->conn[s], ids, n, &got, &e);
        if (st != CB_OK)
            strbuf_setf(err, "cannot read %s records from '%s': %s", side_name(s), p->ep_name[s],
                        e.buf);
        for (size_t k = 0; k < got.n; k++)
            for (size_t j = 0; j < n; j++)
                if (str_eq(got.v[k].id, ids[j]) && !c->w[idx[j]].rec[s].id) {
                    c->w[idx[j]].rec[s] = got.v[k];
                    memset(&got.v[k], 0, sizeof(got.v[k]));
                    break;
                }
        record_list_release(&got);
        strbuf_release(&e);
    }
    free(ids);
    free(idx);
    return st;
}

/* ---------------------------------------------------------------- step 5: merge and write */

struct base_commit {
    const char *pair;
    struct link *link;
    const cJSON *base;
    struct conflict *conflicts;
    size_t n_conflicts;
    const uint64_t *applied; /* resolved conflicts now written to both sides */
    size_t n_applied;
};

static enum cb_status mark_applied(struct cache_txn *t, uint64_t id)
{
    struct conflict k = {0};
    enum cb_status st = cache_conflict_get(t, id, &k);
    if (st == CB_OK) {
        k.resolved = 2;
        st = cache_conflict_put(t, &k);
    }
    conflict_release(&k);
    return st == CB_ERR_NOTFOUND ? CB_OK : st;
}

static enum cb_status commit_base(struct cache_txn *t, void *arg)
{
    struct base_commit *bc = arg;
    enum cb_status st = cache_link_put(t, bc->pair, bc->link);
    if (st == CB_OK)
        st = cache_base_put(t, bc->pair, bc->link->id, bc->base);
    for (size_t i = 0; i < bc->n_conflicts && st == CB_OK; i++) {
        struct conflict old = {0};
        enum cb_status fs =
            cache_conflict_find_open(t, bc->pair, bc->link->id, bc->conflicts[i].field, &old);
        if (fs == CB_OK) {
            bc->conflicts[i].id = old.id; /* refresh the open one with the latest values */
            bc->conflicts[i].created_ms = old.created_ms;
        }
        conflict_release(&old);
        if (fs != CB_OK && fs != CB_ERR_NOTFOUND)
            st = fs;
        else
            st = cache_conflict_put(t, &bc->conflicts[i]);
    }
    for (size_t i = 0; i < bc->n_applied && st == CB_OK; i++)
        st = mark_applied(t, bc->applied[i]);
    return st;
}

/* Everything needed to finish one work item once its writes are known. */
struct pending {
    struct work *w;
    struct merge_result mr;
    cJSON *remote[2]; /* remote fields to write per side (owned), NULL = none */
    enum cb_status st[2];
    char *err[2];
};

struct conflict_puts {
    struct conflict *v;
    size_t n;
};

static enum cb_status put_conflicts(struct cache_txn *t, void *arg)
{
    struct conflict_puts *cp = arg;
    enum cb_status st = CB_OK;
    for (size_t i = 0; i < cp->n && st == CB_OK; i++)
        st = cache_conflict_put(t, &cp->v[i]);
    return st;
}

/* A conflict shows each side's current value: a person who edits the held field again sees
 * that edit in `conflicts show`, and `--take` applies it, never an older one. Returns 1 when
 * k changed. */
static int refresh_conflict(const struct work *w, const char *f, struct conflict *k)
{
    int changed = 0;
    for (int s = 0; s < 2; s++) {
        if (!w->view[s])
            continue;
        const cJSON *cur = cJSON_GetObjectItemCaseSensitive(w->view[s], f);
        if (item_value_equal(f, cur, k->value[s]))
            continue;
        cJSON_Delete(k->value[s]);
        k->value[s] = cur ? cJSON_Duplicate(cur, 1) : cJSON_CreateNull();
        free(k->who[s]);
        k->who[s] = w->rec[s].modified_by ? xstrdup(w->rec[s].modified_by) : NULL;
        k->changed_ms[s] = w->rec[s].modified_ms;
        changed = 1;
    }
    return changed;
}

/* A side edited again after the person chose (its value is neither the one they saw nor the
 * one they chose): applying the choice would overwrite that edit. Such a field is not forced;
 * its conflict opens again with the new value. */
static void drop_stale_choices(struct cycle *c, struct work *w)
{
    const cJSON *was;
    struct conflict_puts cp = {
        xcalloc((size_t)cJSON_GetArraySize(w->forced_was) + 1, sizeof(struct conflict)), 0};
    struct strbuf e = STRBUF_INIT;
    cJSON_ArrayForEach(was, w->forced_was)
    {
        const char *f = was->string;
        const cJSON *chosen = cJSON_GetObjectItemCaseSensitive(w->forced, f);
        int stale = 0;
        for (int s = 0; s < 2; s++) {
            const cJSON *cur = w->view[s] ? cJSON_GetObjectItemCaseSensitive(w->view[s], f) : NULL;
            if (w->view[s] && !item_value_equal(f, cur, cJSON_GetArrayItem(was, s)) &&
                !item_value_equal(f, cur, chosen))
                stale = 1;
        }
        if (!stale)
            continue;
        cJSON_DeleteItemFromObjectCaseSensitive(w->forced, f);
        struct conflict k = {0};
        struct cache_txn *t;
        if (cache_txn_begin(c->p->cache, 1, &t, &e) == CB_OK) {
            if (cache_conflict_find_open(t, c->p->pc->name, w->link.id, f, &k) != CB_OK) {
                conflict_release(&k);
                for (size_t i = 0; i < w->n_resolved; i++) {
                    struct conflict r = {0};
                    if (cache_conflict_get(t, w->resolved[i], &r) == CB_OK && !strcmp(r.field, f)) {
                        k = r;
                        w->resolved[i] = 0; /* not applied: it opens again */
                        break;
                    }
                    conflict_release(&r);
                }
            }
            cache_txn_abort(t);
        }
        if (!k.id)
            continue;
        refresh_conflict(w, f, &k);
        k.resolved = 0;
        cJSON_Delete(k.resolution);
        k.resolution = NULL;
        cp.v[cp.n++] = k;
        cycle_note(c,
                   "conflict on '%s' of link %llu opened again: a side changed after it was "
                   "resolved",
                   f, (unsigned long long)w->link.id);
    }
    if (cp.n && with_txn(c, put_conflicts, &cp, &e) != CB_OK)
        log_warn("cannot reopen conflicts of link %llu: %s", (unsigned long long)w->link.id, e.buf);
    for (size_t i = 0; i < cp.n; i++)
        conflict_release(&cp.v[i]);
    free(cp.v);
    strbuf_release(&e);
}

static void held_fields(struct cycle *c, struct work *w, const char ***out)
{
    *out = NULL;
    if (w->recovered || !w->link.id)
        return;
    struct cache_txn *t;
    struct strbuf e = STRBUF_INIT;
    if (cache_txn_begin(c->p->cache, 1, &t, &e) != CB_OK) {
        strbuf_release(&e);
        return;
    }
    const char *const *fields = mapping_item_fields(c->p->map);
    size_t n = 0;
    for (const char *const *f = fields; *f; f++)
        n++;
    const char **held = xcalloc(n + 1, sizeof(char *));
    struct conflict_puts cp = {xcalloc(n + 1, sizeof(struct conflict)), 0};
    size_t k = 0;
    for (const char *const *f = fields; *f; f++) {
        struct conflict old = {0};
        if (cache_conflict_find_open(t, c->p->pc->name, w->link.id, *f, &old) == CB_OK) {
            held[k++] = *f;
            if (refresh_conflict(w, *f, &old)) {
                cp.v[cp.n++] = old;
                continue;
            }
        }
        conflict_release(&old);
    }
    cache_txn_abort(t);
    if (cp.n && with_txn(c, put_conflicts, &cp, &e) != CB_OK)
        log_warn("cannot refresh the conflicts of link %llu: %s", (unsigned long long)w->link.id,
                 e.buf);
    for (size_t i = 0; i < cp.n; i++)
        conflict_release(&cp.v[i]);
    free(cp.v);
    strbuf_release(&e);
    *out = held;
}

static void fill_conflicts(struct cycle *c, struct pending *pd, struct conflict **out)
{
    struct work *w = pd->w;
    *out = xcalloc(pd->mr.n_conflicts + 1, sizeof(**out));
    for (size_t i = 0; i < pd->mr.n_conflicts; i++) {
        struct conflict *k = &(*out)[i];
        const struct merge_conflict *mc = &pd->mr.conflicts[i];
        k->pair = xstrdup(c->p->pc->name);
        k->link_id = w->link.id;
        k->field = xstrdup(mc->field);
        k->base = cJSON_Duplicate(mc->base, 1);
        for (int s = 0; s < 2; s++) {
            k->value[s] = cJSON_Duplicate(mc->value[s], 1);
            k->who[s] = w->rec[s].modified_by ? xstrdup(w->rec[s].modified_by) : NULL;
            k->changed_ms[s] = w->rec[s].modified_ms;
            k->key[s] = w->rec[s].key       ? xstrdup(w->rec[s].key)
                        : w->link.remote[s] ? xstrdup(w->link.remote[s])
                                            : NULL;
        }
        k->created_ms = cbtime_now_ms();
    }
}

/* Commits the outcome of one merged work item whose writes all succeeded. */
static void finish(struct cycle *c, struct pending *pd, struct strbuf *err)
{
    struct work *w = pd->w;
    for (int s = 0; s < 2; s++)
        if (w->rec[s].id)
            fill_link_side(&w->link, (enum side)s, &w->rec[s]);
    struct conflict *conf = NULL;
    fill_conflicts(c, pd, &conf);
    struct base_commit bc = {c->p->pc->name,     &w->link,    pd->mr.new_base, conf,
                             pd->mr.n_conflicts, w->resolved, w->n_resolved};
    enum cb_status st = with_txn(c, commit_base, &bc, err);
    for (size_t i = 0; i < pd->mr.n_conflicts; i++) {
        if (st == CB_OK && conf[i].created_ms >= c->started_ms) {
            c->rep->conflicts++;
            cycle_note(c, "conflict on '%s' between %s '%s' and %s '%s': held for review",
                       conf[i].field, side_name(SIDE_CRM), conf[i].key[0] ? conf[i].key[0] : "?",
                       side_name(SIDE_TRACKER), conf[i].key[1] ? conf[i].key[1] : "?");
        }
        conflict_release(&conf[i]);
    }
    free(conf);
    if (st != CB_OK) {
        c->rep->failed++;
        cycle_problem(c, "cannot record the sync of link %llu: %s", (unsigned long long)w->link.id,
                      err->buf);
    }
}

static void merge_work(struct cycle *c, struct work *w, struct pending *pd)
{
    memset(pd, 0, sizeof(*pd));
    pd->w = w;
    const cJSON *views[2] = {w->view[0], w->view[1]};
    int64_t mod[2] = {w->rec[0].modified_ms, w->rec[1].modified_ms};
    const char **held = NULL;
    if (w->forced_was)
        drop_stale_choices(c, w);
    held_fields(c, w, &held);
    if (w->pending && w->base)
        merge_adopt_pending(w->base, w->pending, views);
    merge_run(c->p->map, w->base, views, mod, held, w->forced, &pd->mr);
    if (w->pending)
        pd->mr.changed = 1; /* commit the base, which clears the pending one */
    free(held);
    for (int s = 0; s < 2; s++) {
        if (cJSON_GetArraySize(pd->mr.patch[s]) == 0)
            continue;
        struct strbuf warn = STRBUF_INIT;
        cJSON *rem = mapping_to_remote(c->p->map, (enum side)s, pd->mr.patch[s], &warn);
        if (warn.len)
            log_debug("pair '%s': %s", c->p->pc->name, warn.buf);
        strbuf_release(&warn);
        if (cJSON_GetArraySize(rem) == 0) {
            cJSON_Delete(rem);
            continue;
        }
        pd->remote[s] = rem;
        pd->st[s] = CB_ERR_STOPPED; /* until the write reports its outcome */
    }
}

struct pending_commit {
    const char *pair;
    struct pending *pds;
    size_t n;
};

/* Before any update goes out, each base that is about to change is stored with the new base as
 * "pending": if the process dies after the write and before the commit, the next cycle
 * recognises the written values as ours instead of as a person's edit. */
static enum cb_status commit_pending(struct cache_txn *t, void *arg)
{
    struct pending_commit *pc = arg;
    enum cb_status st = CB_OK;
    for (size_t i = 0; i < pc->n && st == CB_OK; i++) {
        struct pending *pd = &pc->pds[i];
        if (!pd->w->base || !pd->w->link.id || (!pd->remote[0] && !pd->remote[1]))
            continue;
        cJSON *b = cJSON_Duplicate(pd->w->base, 1);
        cJSON *pb = cJSON_Duplicate(pd->mr.new_base, 1);
        cJSON *to = cJSON_AddArrayToObject(pb, "to");
        for (int s = 0; s < 2; s++) {
            cJSON *names = cJSON_CreateArray();
            const cJSON *f;
            const cJSON *written = pd->remote[s] ? pd->mr.patch[s] : NULL;
            cJSON_ArrayForEach(f, written)
                cJSON_AddItemToArray(names, cJSON_CreateString(f->string));
            cJSON_AddItemToArray(to, names);
        }
        cJSON_AddItemToObject(b, "pending", pb);
        st = cache_base_put(t, pc->pair, pd->w->link.id, b);
        cJSON_Delete(b);
    }
    return st;
}

/* Writes the pending updates of side s in batches; records each op's outcome in pd->st[s]. */
static enum cb_status write_updates(struct cycle *c, enum side s, struct pending *pds, size_t n,
                                    struct strbuf *err)
{
    struct sync_pair *p = c->p;
    size_t max = (size_t)(p->ops[s]->max_batch_write > 0 ? p->ops[s]->max_batch_write : 1);
    struct write_op *ops = xcalloc(max, sizeof(*ops));
    size_t *idx = xcalloc(max, sizeof(size_t));
    enum cb_status res = CB_OK;
    size_t i = 0;
    while (i < n) {
        if (sync_stop_requested()) {
            res = CB_ERR_STOPPED;
            break;
        }
        size_t k = 0;
        for (; i < n && k < max; i++) {
            if (!pds[i].remote[s])
                continue;
            write_op_init(&ops[k]);
            ops[k].id = pds[i].w->link.remote[s];
            ops[k].fields = pds[i].remote[s];
            ops[k].current =
                pds[i].w->rec[s].id && !pds[i].w->assumed[s] ? &pds[i].w->rec[s] : NULL;
            idx[k++] = i;
        }
        if (k == 0)
            break;
        struct strbuf e = STRBUF_INIT;
        enum cb_status st = p->ops[s]->write(p->conn[s], ops, k, &e);
        for (size_t j = 0; j < k; j++) {
            struct pending *pd = &pds[idx[j]];
            pd->st[s] = ops[j].st;
            if (ops[j].st != CB_OK) {
                pd->err[s] = xstrdup(ops[j].err.len ? ops[j].err.buf
                                     : e.len        ? e.buf
                                                    : cb_status_str(ops[j].st));
            } else if (ops[j].rec.modified_ms) {
                /* keep the record's post-write identity for the link */
                struct record *r = &pd->w->rec[s];
                if (ops[j].rec.key && !r->key)
                    r->key = xstrdup(ops[j].rec.key);
            }
            write_op_release(&ops[j]);
        }
        strbuf_release(&e);
        if (st == CB_ERR_AUTH) {
            strbuf_setf(err, "%s '%s' rejected our credentials", side_name(s), p->ep_name[s]);
            res = st;
            break;
        }
    }
    free(ops);
    free(idx);
    return res;
}

static void settle(struct cycle *c, struct pending *pd, struct strbuf *err)
{
    struct work *w = pd->w;
    int ok = 1;
    for (int si = 0; si < 2; si++) {
        enum side s = (enum side)si;
        if (!pd->remote[s])
            continue;
        if (pd->st[s] == CB_OK) {
            fingerprint_echoes(c, s, pd->remote[s], pd->mr.new_base);
            c->rep->updated[s]++;
            char *fields = NULL;
            struct strbuf names = STRBUF_INIT;
            const cJSON *f;
            cJSON_ArrayForEach(f, pd->mr.patch[s])
            {
                (void)strbuf_addf(&names, "%s%s", names.len ? ", " : "", f->string);
            }
            fields = strbuf_detach(&names);
            cycle_note(c, "updated %s '%s': %s", side_name(s),
                       w->link.key[s] ? w->link.key[s] : w->link.remote[s], fields);
            free(fields);
            continue;
        }
        ok = 0;
        enum side src = SIDE_OTHER(s);
        if (w->assumed[s] && !pd->remote[src] && pd->st[s] != CB_ERR_TEMP &&
            pd->st[s] != CB_ERR_WAIT && pd->st[s] != CB_ERR_STOPPED && pd->st[s] != CB_ERR_AUTH) {
            unassume(w, s); /* read it and try again, or find it gone */
            continue;
        }
        const char *what = w->link.key[s] ? w->link.key[s] : w->link.remote[s];
        const char *why = pd->err[s] ? pd->err[s] : cb_status_str(pd->st[s]);
        if (pd->st[s] == CB_ERR_FINAL || pd->st[s] == CB_ERR_NOTFOUND) {
            c->rep->failed++;
            cycle_problem(c, "cannot update %s '%s': %s", side_name(s), what, why);
        } else {
            c->rep->postponed++;
            cycle_problem(c, "postponed update of %s '%s': %s", side_name(s), what, why);
        }
        /* the change stays unapplied: the next cycle must list it again */
        cap_cursor(c, src, w->rec[src].modified_ms);
    }
    if (ok && (pd->mr.changed || pd->mr.n_conflicts || w->n_resolved))
        finish(c, pd, err);
}

static void pending_release(struct pending *pd)
{
    merge_result_release(&pd->mr);
    for (int s = 0; s < 2; s++) {
        cJSON_Delete(pd->remote[s]);
        free(pd->err[s]);
    }
}

/* Merges and writes every work item from index `from` on; returns the first fatal status. */
enum cb_status merge_and_write(struct cycle *c, size_t from, struct strbuf *err)
{
    size_t n = 0;
    for (size_t i = from; i < c->n_w; i++)
        if (!c->w[i].done)
            n++;
    struct pending *pds = xcalloc(n + 1, sizeof(*pds));
    size_t k = 0;
    for (size_t i = from; i < c->n_w; i++) {
        struct work *w = &c->w[i];
        if (w->done)
            continue;
        int missing = 0;
        for (int s = 0; s < 2; s++) {
            if (w->rec[s].id)
                continue;
            missing = 1;
            c->rep->skipped++;
            cycle_problem(
                c, "skipped link %llu: %s record '%s' no longer exists (deletes are ignored)",
                (unsigned long long)w->link.id, side_name((enum side)s),
                w->link.key[s]      ? w->link.key[s]
                : w->link.remote[s] ? w->link.remote[s]
                                    : "?");
        }
        w->done = 1;
        if (missing)
            continue;
        if (w->rec[0].out_of_scope || w->rec[1].out_of_scope) {
            /* it left a side's filter: the link stays, the records go their own ways */
            c->rep->unchanged++;
            continue;
        }
        for (int s = 0; s < 2; s++)
            if (!w->view[s])
                w->view[s] = map_record(c, (enum side)s, &w->rec[s]);
        merge_work(c, w, &pds[k++]);
    }
    struct pending_commit pc = {c->p->pc->name, pds, k};
    int writes = 0;
    for (size_t i = 0; i < k; i++)
        writes |= pds[i].remote[0] || pds[i].remote[1];
    enum cb_status st = writes ? with_txn(c, commit_pending, &pc, err) : CB_OK;
    for (int s = 0; s < 2 && st == CB_OK; s++)
        st = write_updates(c, (enum side)s, pds, k, err);
    for (size_t i = 0; i < k; i++) {
        settle(c, &pds[i], err);
        pending_release(&pds[i]);
    }
    free(pds);
    return st;
}

/* ---------------------------------------------------------------- step 6: create */

struct intent_commit {
    const char *pair;
    struct intent *in;
};

static enum cb_status commit_intent(struct cache_txn *t, void *arg)
{
    struct intent_commit *ic = arg;
    return cache_intent_put(t, ic->pair, ic->in);
}

static enum cb_status drop_intent(struct cache_txn *t, void *arg)
{
    struct intent_commit *ic = arg;
    return cache_intent_del(t, ic->pair, ic->in->id);
}

static int intent_listed(const struct cycle *c, enum side s, const char *id)
{
    for (size_t i = 0; i < c->pulled[s].n; i++)
        if (str_eq(c->pulled[s].v[i].id, id))
            return 1;
    return 0;
}

static int work_has_source(const struct cycle *c, enum side s, const char *id)
{
    for (size_t i = 0; i < c->n_w; i++)
        if (str_eq(c->w[i].link.remote[s], id))
            return 1;
    return 0;
}

/* A pending create whose source record is neither listed nor readable any more (deleted
 * before its create could be retried) would be looked for on every cycle: drop it. */
static enum cb_status drop_orphan_intents(struct cycle *c, struct strbuf *err)
{
    if (!c->n_stale)
        return CB_OK;
    struct sync_pair *p = c->p;
    enum cb_status st = CB_OK;
    for (size_t i = 0; i < c->n_intents && st == CB_OK; i++) {
        struct intent *in = &c->intents[i];
        enum side s = SIDE_OTHER((enum side)in->target);
        if (intent_listed(c, s, in->source_id) || work_has_source(c, s, in->source_id))
            continue;
        struct record_list got = {0};
        const char *ids[1] = {in->source_id};
        struct strbuf e = STRBUF_INIT;
        enum cb_status gs = p->ops[s]->get_many(p->conn[s], ids, 1, &got, &e);
        if (gs == CB_OK && got.n == 0) {
            struct intent_commit ic = {p->pc->name, in};
            st = with_txn(c, drop_intent, &ic, err);
            cycle_note(c, "dropped the pending create of %s record '%s': it no longer exists",
                       side_name(s), in->source_id);
        }
        record_list_release(&got);
        strbuf_release(&e);
    }
    return st;
}

struct create_job {
    struct record *src;
    char *creator; /* keep_origin: the creator's user id on the target (owned; may be NULL) */
    cJSON *view;   /* source view (owned) */
    cJSON *remote; /* remote fields for the target (owned) */
    struct intent in;
    char marker[33];
};

static void prepare_create(struct cycle *c, enum side s, struct record *r, struct create_job *j)
{
    enum side t = SIDE_OTHER(s);
    memset(j, 0, sizeof(*j));
    j->src = r;
    j->view = map_record(c, s, r);
    struct strbuf warn = STRBUF_INIT;
    j->remote = mapping_to_remote(c->p->map, t, j->view, &warn);
    strbuf_release(&warn);
    const cJSON *d;
    cJSON_ArrayForEach(d, mapping_create_defaults(c->p->map, t))
    {
        if (!cJSON_GetObjectItemCaseSensitive(j->remote, d->string))
            cJSON_AddItemToObject(j->remote, d->string, cJSON_Duplicate(d, 1));
    }
    const struct intent *old = intent_for(c, s, r->id);
    if (old) {
        snprintf(j->marker, sizeof(j->marker), "%s", old->marker);
        j->in.id = old->id;
        j->in.created_ms = old->created_ms;
    } else {
        new_marker(j->marker);
        j->in.created_ms = cbtime_now_ms();
    }
    j->in.target = (int)t;
    j->in.source_id = r->id;
    j->in.marker = j->marker;
    j->in.base = merge_base_for_create(c->p->map, t, j->view, j->remote);
    fingerprint_echoes(c, t, j->remote, j->in.base);
}

static void create_done(struct cycle *c, enum side s, struct create_job *j, struct write_op *op,
                        struct strbuf *err)
{
    enum side t = SIDE_OTHER(s);
    struct sync_pair *p = c->p;
    if (op->st != CB_OK) {
        if (op->st == CB_ERR_FINAL) {
            struct intent_commit ic = {p->pc->name, &j->in};
            struct strbuf e = STRBUF_INIT;
            if (with_txn(c, drop_intent, &ic, &e) != CB_OK)
                log_warn("cannot drop intent: %s", e.buf);
            strbuf_release(&e);
            c->rep->failed++;
            cycle_problem(c, "cannot create %s record for %s '%s': %s", side_name(t), side_name(s),
                          rec_label(j->src), op->err.buf);
        } else {
            if (op->st == CB_ERR_TEMP && j->in.id) {
                /* no answer, or a 5xx: the create may still land; recovery waits for it */
                j->in.unsure_ms = cbtime_now_ms();
                struct intent_commit ic = {p->pc->name, &j->in};
                struct strbuf e = STRBUF_INIT;
                if (with_txn(c, commit_intent, &ic, &e) != CB_OK)
                    log_warn("cannot keep intent: %s", e.buf);
                strbuf_release(&e);
            }
            c->rep->postponed++;
            cap_cursor(c, s, j->src->modified_ms);
            cycle_problem(c, "postponed create for %s '%s': %s", side_name(s), rec_label(j->src),
                          op->err.len ? op->err.buf : cb_status_str(op->st));
        }
        return;
    }
    struct work *w = work_add(c);
    fill_link_side(&w->link, s, j->src);
    fill_link_side(&w->link, t, &op->rec);
    w->link.created_ms = cbtime_now_ms();
    w->base = cJSON_Duplicate(j->in.base, 1);
    struct link_commit lc = {p->pc->name, &w->link, w->base, j->in.id};
    enum cb_status st = with_txn(c, commit_link, &lc, err);
    if (st != CB_OK) {
        c->rep->failed++;
        cycle_problem(c, "created %s '%s' but cannot record the link: %s", side_name(t),
                      rec_label(&op->rec), err->buf);
        w->done = 1;
        return;
    }
    c->rep->created[t]++;
    cycle_note(c, "created %s '%s' from %s '%s'", side_name(t), rec_label(&op->rec), side_name(s),
               rec_label(j->src));
    /* The new record is read back (in batches, by fetch_side) and merged once more: what only
     * it knows (its key) and what the target filled in itself (a default priority, the
     * workflow's first status) flow back at once, and the base starts from its real state. */
    record_copy(&w->rec[s], j->src);
    w->view[s] = cJSON_Duplicate(j->view, 1);
}

enum cb_status create_side(struct cycle *c, enum side s, struct strbuf *err)
{
    struct sync_pair *p = c->p;
    enum side t = SIDE_OTHER(s);
    size_t max = (size_t)(p->ops[t]->max_batch_write > 0 ? p->ops[t]->max_batch_write : 1);
    struct record_list *l = &c->creates[s];
    struct create_job *jobs = xcalloc(max, sizeof(*jobs));
    struct write_op *ops = xcalloc(max, sizeof(*ops));
    enum cb_status res = CB_OK;
    size_t i = 0;
    while (i < l->n && res == CB_OK) {
        if (sync_stop_requested()) {
            res = CB_ERR_STOPPED;
            break;
        }
        size_t k = 0;
        for (; i < l->n && k < max; i++, k++) {
            prepare_create(c, s, &l->v[i], &jobs[k]);
            if (!jobs[k].in.id) {
                struct intent_commit ic = {p->pc->name, &jobs[k].in};
                res = with_txn(c, commit_intent, &ic, err);
                if (res != CB_OK) {
                    k++;
                    break;
                }
            }
            write_op_init(&ops[k]);
            ops[k].fields = jobs[k].remote;
            ops[k].marker = jobs[k].marker;
            ops[k].link_url = l->v[i].url;
            ops[k].link_title = l->v[i].key;
            if (c->keep_origin) {
                ops[k].created_ms = l->v[i].created_ms;
                jobs[k].creator = mapping_person_id(p->map, t, l->v[i].created_by);
                ops[k].created_by = jobs[k].creator;
            }
        }
        if (res == CB_OK) {
            struct strbuf e = STRBUF_INIT;
            enum cb_status st = p->ops[t]->write(p->conn[t], ops, k, &e);
            for (size_t j = 0; j < k; j++)
                create_done(c, s, &jobs[j], &ops[j], err);
            if (st == CB_ERR_AUTH) {
                strbuf_setf(err, "%s '%s' rejected our credentials", side_name(t), p->ep_name[t]);
                res = st;
            }
            strbuf_release(&e);
        }
        for (size_t j = 0; j < k; j++) {
            if (res == CB_OK)
                write_op_release(&ops[j]);
            cJSON_Delete(jobs[j].view);
            cJSON_Delete(jobs[j].remote);
            cJSON_Delete(jobs[j].in.base);
            free(jobs[j].creator);
        }
    }
    free(jobs);
    free(ops);
    return res;
}

/* ---------------------------------------------------------------- the cycle */

struct cursor_commit {
    struct cycle *c;
    struct cursor old[2];
};

/* The newest record applied, never past one left for later; the listing's start only when
 * nothing of it was left for later (else the next listing must reach back to that record). */
static enum cb_status commit_cursors(struct cache_txn *t, void *arg)
{
    struct cursor_commit *cc = arg;
    struct cycle *c = cc->c;
    enum cb_status st = CB_OK;
    for (int s = 0; s < 2 && st == CB_OK; s++) {
        int64_t nc = c->max_ms[s] < c->cap_ms[s] ? c->max_ms[s] : c->cap_ms[s];
        struct cursor cu = {nc > cc->old[s].ms ? nc : cc->old[s].ms,
                            c->cap_ms[s] == INT64_MAX ? c->listed_ms[s] : 0};
        if (cu.ms != cc->old[s].ms || cu.listed_ms != cc->old[s].listed_ms)
            st = cache_cursor_put(t, c->p->pc->name, s, &cu);
    }
    return st;
}

static enum cb_status read_cursors(struct cycle *c, struct cursor cur[2], struct strbuf *err)
{
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(c->p->cache, 1, &t, err);
    for (int s = 0; st == CB_OK && s < 2; s++)
        st = cache_cursor_get(t, c->p->pc->name, s, &cur[s]);
    if (t)
        cache_txn_abort(t);
    return st;
}

static void cycle_release(struct cycle *c)
{
    for (int s = 0; s < 2; s++) {
        record_list_release(&c->pulled[s]);
        record_list_release(&c->creates[s]);
        for (size_t i = 0; i < c->n_blocked[s]; i++)
            free(c->blocked[s][i]);
        free(c->blocked[s]);
    }
    for (size_t i = 0; i < c->n_w; i++)
        work_release(&c->w[i]);
    free(c->w);
    for (size_t i = 0; i < c->n_intents; i++)
        intent_release(&c->intents[i]);
    free(c->intents);
}

enum cb_status ensure_pinged(struct sync_pair *p, struct strbuf *err)
{
    for (int s = 0; s < 2; s++) {
        if (p->pinged[s])
            continue;
        struct strbuf info = STRBUF_INIT, e = STRBUF_INIT;
        enum cb_status st = sync_pair_ping(p, (enum side)s, &info, &e);
        if (st != CB_OK)
            strbuf_setf(err, "cannot use %s endpoint '%s': %s", side_name((enum side)s),
                        p->ep_name[s], e.buf);
        strbuf_release(&info);
        strbuf_release(&e);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

static enum cb_status run_cycle(struct cycle *c, struct strbuf *err)
{
    struct cursor cur[2] = {{0, 0}, {0, 0}};
    enum cb_status st = ensure_pinged(c->p, err);
    if (st == CB_OK)
        st = read_cursors(c, cur, err);
    if (st == CB_OK)
        st = recover_intents(c, err);
    size_t based = 0;
    if (st == CB_OK)
        st = pull_sides(c, cur, &based, err);
    if (st != CB_OK)
        return st;
    st = drop_orphan_intents(c, err);
    if (st == CB_OK)
        st = load_resolutions(c, err);
    if (st == CB_OK)
        st = load_bases_from(c, based, err);
    if (st != CB_OK)
        return st;
    drop_unchanged(c);
    st = assume_unlisted(c, err);
    for (int s = 0; s < 2 && st == CB_OK; s++)
        st = fetch_side(c, (enum side)s, err);
    if (st == CB_OK)
        st = deletes_apply(c, err);
    if (st == CB_OK)
        st = merge_and_write(c, 0, err);
    if (st == CB_OK)
        st = recheck_assumed(c, err);
    for (int s = 0; s < 2 && st == CB_OK; s++) {
        size_t first_new = c->n_w;
        st = create_side(c, (enum side)s, err);
        if (st == CB_OK)
            st = fetch_side(c, SIDE_OTHER((enum side)s), err);
        if (st == CB_OK)
            st = merge_and_write(c, first_new, err);
    }
    if (st != CB_OK)
        return st;
    struct comment_sync cs = {.pair = c->p->pc->name,
                              .cache = c->p->cache,
                              .ops = {c->p->ops[0], c->p->ops[1]},
                              .conn = {c->p->conn[0], c->p->conn[1]},
                              .since_ms = {sync_listing_since(c->p, SIDE_CRM, &cur[0]),
                                           sync_listing_since(c->p, SIDE_TRACKER, &cur[1])},
                              .rep = c->rep};
    st = sync_comments(&cs, c->n_w ? &c->w[0].link : NULL, c->n_w ? c->w[0].rec : NULL, c->n_w,
                       sizeof(*c->w), err);
    if (st != CB_OK)
        return st;
    struct cursor_commit cc = {c, {cur[0], cur[1]}};
    return with_txn(c, commit_cursors, &cc, err);
}

void add_lines(cJSON *o, const char *name, const struct strbuf *lines, int max)
{
    cJSON *arr = cJSON_AddArrayToObject(o, name);
    const char *q = lines->buf;
    for (int n = 0; *q && n < max; n++) {
        const char *nl = strchr(q, '\n');
        size_t len = nl ? (size_t)(nl - q) : strlen(q);
        char *line = xstrndup(q, len);
        cJSON_AddItemToArray(arr, cJSON_CreateString(line));
        free(line);
        q += len + (nl ? 1 : 0);
    }
}

struct report_commit {
    const char *key;
    cJSON *report;
};

static enum cb_status commit_report(struct cache_txn *t, void *arg)
{
    struct report_commit *rc = arg;
    return cache_meta_put(t, rc->key, rc->report);
}

static void add_num_or_null(cJSON *o, const char *name, long v)
{
    cJSON_AddItemToObject(o, name, v >= 0 ? cJSON_CreateNumber((double)v) : cJSON_CreateNull());
}

/* What side s's connector knows of its rate-limit budget (counts since the pair was opened). */
static void add_budget(cJSON *side, const struct sync_pair *p, enum side s)
{
    if (!p->ops[s]->budget || !p->conn[s])
        return;
    struct http_budget b;
    unsigned long paced = 0;
    p->ops[s]->budget(p->conn[s], &b, &paced);
    cJSON *o = cJSON_AddObjectToObject(side, "budget");
    add_num_or_null(o, "remaining", b.remaining);
    add_num_or_null(o, "limit", b.limit);
    cJSON_AddNumberToObject(o, "requests", (double)b.requests);
    cJSON_AddNumberToObject(o, "throttled", (double)b.throttled);
    cJSON_AddNumberToObject(o, "waited_ms", (double)b.waited_ms);
    cJSON_AddNumberToObject(o, "paced_waits", (double)paced);
}

unsigned long sync_pair_requests(const struct sync_pair *p)
{
    unsigned long n = 0;
    for (int s = 0; s < 2; s++) {
        if (!p->ops[s]->budget || !p->conn[s])
            return http_total_requests(); /* a connector that does not count: all requests */
        struct http_budget b;
        unsigned long paced;
        p->ops[s]->budget(p->conn[s], &b, &paced);
        n += b.requests;
    }
    return n;
}

/* Keeps the cycle's outcome in the cache for `crmbridge status`. */
static void save_report(struct cycle *c, enum cb_status st, const struct strbuf *err)
{
    const struct sync_report *r = c->rep;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "started_ms", (double)c->started_ms);
    cJSON_AddNumberToObject(o, "finished_ms", (double)cbtime_now_ms());
    const char *state = st != CB_OK ? "error" : (r->failed || r->skipped) ? "degraded" : "ok";
    cJSON_AddStringToObject(o, "state", state);
    if (st != CB_OK)
        cJSON_AddStringToObject(o, "error", err->len ? err->buf : cb_status_str(st));
    static const char *const names[2] = {"crm", "tracker"};
    for (int s = 0; s < 2; s++) {
        cJSON *side = cJSON_AddObjectToObject(o, names[s]);
        cJSON_AddNumberToObject(side, "read", r->read[s]);
        cJSON_AddNumberToObject(side, "created", r->created[s]);
        cJSON_AddNumberToObject(side, "updated", r->updated[s]);
        cJSON_AddNumberToObject(side, "archived", r->archived[s]);
        cJSON_AddNumberToObject(side, "deleted", r->deleted[s]);
        add_budget(side, c->p, (enum side)s);
    }
    cJSON_AddNumberToObject(o, "linked", r->linked);
    cJSON_AddNumberToObject(o, "unchanged", r->unchanged);
    cJSON_AddNumberToObject(o, "conflicts", r->conflicts);
    cJSON_AddNumberToObject(o, "skipped", r->skipped);
    cJSON_AddNumberToObject(o, "failed", r->failed);
    cJSON_AddNumberToObject(o, "postponed", r->postponed);
    cJSON_AddNumberToObject(o, "requests", (double)r->requests);
    add_lines(o, "problems", &r->problems, 200);
    struct strbuf key = STRBUF_INIT, e = STRBUF_INIT;
    (void)strbuf_addf(&key, "report:%s", c->p->pc->name);
    struct report_commit rc = {key.buf, o};
    if (with_txn(c, commit_report, &rc, &e) != CB_OK)
        log_warn("cannot keep the cycle report of pair '%s': %s", c->p->pc->name, e.buf);
    sync_people_save(c->p);
    strbuf_release(&key);
    strbuf_release(&e);
    cJSON_Delete(o);
}

enum cb_status sync_pair_cycle(struct sync_pair *p, struct sync_report *rep, struct strbuf *err)
{
    struct cycle c;
    memset(&c, 0, sizeof(c));
    c.p = p;
    c.rep = rep;
    c.cap_ms[0] = c.cap_ms[1] = INT64_MAX;
    c.started_ms = cbtime_now_ms();
    unsigned long req0 = sync_pair_requests(p);
    enum cb_status st = run_cycle(&c, err);
    rep->requests += sync_pair_requests(p) - req0;
    if (st != CB_ERR_CACHE)
        save_report(&c, st, err);
    cycle_release(&c);
    return st;
}
