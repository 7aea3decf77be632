/*
 * `crmbridge migrate`: copies every matching record of one side of a pair to the other, page by
 * page of the source listing, through the engine's own steps (engine_p.h): intents and markers,
 * batched creates, links, reading the copies back and merging them once, so the daemon carries
 * on from the links with nothing to re-match. With workers, each page is split into chunks that
 * a thread per connection writes, several pages at once. A checkpoint in the cache (meta key
 * "migrate:<pair>:<side>") keeps the listing position and the counts; the verification reads
 * every copy back by id. It never prints.
 */
#define LOG_MODULE "migrate"
#include "sync/migrate.h"

#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "core/strlist.h"
#include "core/timeutil.h"
#include "sync/comments.h"
#include "sync/engine_p.h"
#include "sync/match_p.h"
#include "sync/merge.h"

#define PROBLEMS_CAP (4 << 20)
#define POS_IDS_CAP 2000 /* ids kept with the position (records sharing its time) */
#define FLIGHT_MAX 3     /* pages handed to the workers at a time (memory: records of 3 pages) */
#define PROBE_MARGIN_MS 60000 /* the source's clock may be behind ours by this much */

struct cond {
    char *field, *value;
    int neg;
};

struct checkpoint {
    int64_t first_started_ms; /* the migration's first run; 0 = no checkpoint */
    int64_t pos_ms;           /* every source record modified before it is done */
    cJSON *pos_ids;           /* and these ids modified at pos_ms (owned array, capped) */
    int64_t saved_ms;         /* when it was last saved */
    int64_t settled_ms;       /* every copy made before it was read back and merged */
    int finished;
    int64_t finished_ms;
    struct migrate_counts total;
};

/* Where a listed page ends: its last record's modified time and the ids handled at that time
 * (the listing is in modified order, so these are all a position needs). */
struct page_end {
    int64_t ms; /* INT64_MIN: nothing yet */
    struct strlist ids;
};

/* The verification of a migration's copies: their ids on the target, read back by id in
 * batches, several at once with workers (and with workers, the copies of each page as soon as
 * it is done). Fields marked (mu) are shared by the readers. */
struct verify_run {
    struct migrate *m;
    struct strlist ids; /* target ids of this migration's links left to the end */
    long links;         /* this migration's links */
    enum cb_status st;  /* the first failure (mu) */
    struct strbuf err;  /* (mu) */
};

struct migrate {
    struct sync_pair *p;
    const struct migrate_opts *o;
    enum side s, t;
    struct cycle c;
    struct sync_report page; /* what the engine did with the current page */
    struct migrate_report *rep;
    struct checkpoint ck;
    int64_t settle_after; /* links of this migration made after this (and before this run)
                           * belong to a page an interruption left unfinished */
    char ck_key[300];
    struct cond *conds;
    size_t n_conds;
    struct worker *workers; /* connections writing in parallel (NULL: p writes, page by page) */
    size_t n_workers;
    pthread_mutex_t mu;
    pthread_cond_t chunk_ready, chunk_done;
    struct chunk *queue;           /* chunks no worker has taken yet (mu) */
    int closing;                   /* the workers stop (mu) */
    struct flight *fl[FLIGHT_MAX]; /* pages handed to the workers, oldest first */
    size_t n_fl;
    struct page_end listed; /* the listing goes on from the last record this run handled */
    struct strlist fresh_ids; /* the page's records copied or matched (read back with it) */
    struct verify_run vr;
    int64_t verify_from_ms; /* links made since are read back with their page (workers) */
    size_t verify_left;     /* verification chunks queued and not done yet (mu) */
    struct intent *fresh;   /* creates made by this run whose outcome is unknown (page start) */
    size_t n_fresh;
    migrate_progress_fn fn;
    void *arg;
    const char *phase;
    int plan;    /* classifying only (planning pass or dry run) */
    int restart; /* the last page wrote to the source: list again from the checkpoint */
    int probe;   /* the listing reached the records this run moved: check the rest by id */
    int probed;  /* (once a run) */
    int count_later; /* count the source once the first page is with the workers */
    int limit_hit;
    long queued;                  /* creates queued in this run (for --limit) */
    long pages;                   /* listing pages seen by the planning pass */
    struct match_index *match;    /* --match: the target's unlinked records by value */
    const struct record *matched; /* the target record classify_one matched */
    unsigned long req0;
};

/* What to do with one listed source record. */
enum verdict {
    V_RELISTED,
    V_ALREADY,
    V_SETTLE,
    V_FILTERED,
    V_UNLINKED,
    V_MARKER,
    V_BLOCKED,
    V_MATCH,
    V_AMBIGUOUS,
    V_COPY
};

void migrate_report_init(struct migrate_report *r)
{
    memset(r, 0, sizeof(*r));
    strbuf_init(&r->problems, PROBLEMS_CAP);
}

void migrate_report_release(struct migrate_report *r)
{
    strbuf_release(&r->problems);
}

/* ---------------------------------------------------------------- filter */

static void conds_free(struct cond *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].field);
        free(v[i].value);
    }
    free(v);
}

static char *trimmed(const char *b, const char *e)
{
    while (b < e && (*b == ' ' || *b == '\t'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return xstrndup(b, (size_t)(e - b));
}

static int known_field(const struct mapping *map, const char *f)
{
    for (const char *const *k = mapping_item_fields(map); *k; k++)
        if (!strcmp(*k, f))
            return 1;
    return 0;
}

/* One "field=value" or "field!=value" between b and e. */
static enum cb_status parse_cond(const struct mapping *map, const char *b, const char *e,
                                 struct cond *out, struct strbuf *err)
{
    const char *eq = memchr(b, '=', (size_t)(e - b));
    if (!eq || eq == b) {
        char *part = trimmed(b, e);
        strbuf_setf(err, "invalid filter '%s': expected field=value or field!=value", part);
        free(part);
        return CB_ERR_CONFIG;
    }
    out->neg = eq[-1] == '!';
    out->field = trimmed(b, eq - out->neg);
    out->value = trimmed(eq + 1, e);
    if (!known_field(map, out->field)) {
        strbuf_setf(err,
                    "invalid filter: unknown field '%s' (the pair's mapping has no such item "
                    "field)",
                    out->field);
        return CB_ERR_CONFIG;
    }
    return CB_OK;
}

static enum cb_status parse_filter(const struct mapping *map, const char *expr, struct cond **out,
                                   size_t *n, struct strbuf *err)
{
    *out = NULL;
    *n = 0;
    if (!expr || !*expr)
        return CB_OK;
    enum cb_status st = CB_OK;
    for (const char *b = expr; st == CB_OK && *b;) {
        const char *e = strchr(b, ',');
        if (!e)
            e = b + strlen(b);
        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        memset(&(*out)[*n], 0, sizeof(**out));
        st = parse_cond(map, b, e, &(*out)[(*n)++], err);
        b = *e ? e + 1 : e;
    }
    if (st != CB_OK) {
        conds_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return st;
}

static enum cb_status check_match(const struct mapping *map, const char *field, struct strbuf *err)
{
    if (!field || known_field(map, field))
        return CB_OK;
    strbuf_setf(err,
                "invalid --match: unknown field '%s' (the pair's mapping has no such item "
                "field)",
                field);
    return CB_ERR_CONFIG;
}

enum cb_status migrate_check_opts(struct sync_pair *p, const struct migrate_opts *o,
                                  struct strbuf *err)
{
    struct cond *v;
    size_t n;
    enum cb_status st = parse_filter(p->map, o->filter, &v, &n, err);
    conds_free(v, n);
    return st == CB_OK ? check_match(p->map, o->match, err) : st;
}

static int value_is(const cJSON *v, const char *want)
{
    if (cJSON_IsString(v))
        return !strcasecmp(v->valuestring, want);
    if (cJSON_IsNumber(v)) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%g", v->valuedouble);
        return !strcmp(buf, want);
    }
    if (cJSON_IsBool(v))
        return !strcasecmp(cJSON_IsTrue(v) ? "true" : "false", want);
    if (cJSON_IsArray(v)) { /* labels: the set contains the value */
        const cJSON *e;
        cJSON_ArrayForEach(e, v) if (value_is(e, want)) return 1;
        return 0;
    }
    return !*want; /* missing or null matches "field=" */
}

static int matches(const struct migrate *m, const cJSON *view)
{
    for (size_t i = 0; i < m->n_conds; i++) {
        const struct cond *k = &m->conds[i];
        if (value_is(cJSON_GetObjectItemCaseSensitive(view, k->field), k->value) == k->neg)
            return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- checkpoint */

static long jlong(const cJSON *o, const char *name)
{
    return (long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

static int64_t jms(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static void counts_to_json(cJSON *o, const struct migrate_counts *n)
{
    cJSON_AddNumberToObject(o, "read", (double)n->read);
    cJSON_AddNumberToObject(o, "filtered", (double)n->filtered);
    cJSON_AddNumberToObject(o, "already_linked", (double)n->already);
    cJSON_AddNumberToObject(o, "created", (double)n->created);
    cJSON_AddNumberToObject(o, "linked", (double)n->linked);
    cJSON_AddNumberToObject(o, "skipped", (double)n->skipped);
    cJSON_AddNumberToObject(o, "failed", (double)n->failed);
    cJSON_AddNumberToObject(o, "postponed", (double)n->postponed);
    cJSON_AddNumberToObject(o, "updated", (double)n->updated);
    cJSON_AddNumberToObject(o, "comments", (double)n->comments);
}

static void counts_from_json(const cJSON *o, struct migrate_counts *n)
{
    n->read = jlong(o, "read");
    n->filtered = jlong(o, "filtered");
    n->already = jlong(o, "already_linked");
    n->created = jlong(o, "created");
    n->linked = jlong(o, "linked");
    n->skipped = jlong(o, "skipped");
    n->failed = jlong(o, "failed");
    n->postponed = jlong(o, "postponed");
    n->updated = jlong(o, "updated");
    n->comments = jlong(o, "comments");
}

static void counts_add(struct migrate_counts *a, const struct migrate_counts *b)
{
    a->read += b->read;
    a->filtered += b->filtered;
    a->already += b->already;
    a->created += b->created;
    a->linked += b->linked;
    a->skipped += b->skipped;
    a->failed += b->failed;
    a->postponed += b->postponed;
    a->updated += b->updated;
    a->comments += b->comments;
}

static enum cb_status load_checkpoint(struct migrate *m, struct strbuf *err)
{
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(m->p->cache, 1, &t, err);
    if (st != CB_OK)
        return st;
    cJSON *j = NULL;
    st = cache_meta_get(t, m->ck_key, &j);
    cache_txn_abort(t);
    if (st == CB_ERR_NOTFOUND || (st == CB_OK && !j))
        return CB_OK;
    if (st != CB_OK) {
        strbuf_setf(err, "cannot read checkpoint '%s': %s", m->ck_key, cb_status_str(st));
        return st;
    }
    m->ck.first_started_ms = jms(j, "started_ms");
    m->ck.pos_ms = jms(j, "pos_ms");
    cJSON *ids = cJSON_DetachItemFromObjectCaseSensitive(j, "pos_ids");
    if (cJSON_IsArray(ids))
        m->ck.pos_ids = ids;
    else
        cJSON_Delete(ids);
    m->ck.saved_ms = jms(j, "saved_ms");
    m->ck.settled_ms = jms(j, "settled_ms");
    m->ck.finished = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "finished"));
    m->ck.finished_ms = jms(j, "finished_ms");
    counts_from_json(cJSON_GetObjectItemCaseSensitive(j, "counts"), &m->ck.total);
    const char *was = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "filter"));
    if (!str_eq(was ? was : "", m->o->filter ? m->o->filter : "")) {
        /* another selection is another migration: start over (linked records are skipped) */
        log_info("checkpoint '%s' was made with another filter: starting over", m->ck_key);
        cJSON_Delete(m->ck.pos_ids);
        memset(&m->ck, 0, sizeof(m->ck));
    }
    cJSON_Delete(j);
    return CB_OK;
}

struct ck_commit {
    const char *key;
    cJSON *val;
};

static enum cb_status commit_checkpoint(struct cache_txn *t, void *arg)
{
    struct ck_commit *cc = arg;
    return cache_meta_put(t, cc->key, cc->val);
}

/* Saves the position and the counts so far (this run's added to the earlier runs'). */
static enum cb_status save_checkpoint(struct migrate *m, struct strbuf *err)
{
    if (m->plan)
        return CB_OK;
    m->ck.saved_ms = cbtime_now_ms();
    struct migrate_counts tot = m->ck.total;
    counts_add(&tot, &m->rep->n);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "from", side_name(m->s));
    cJSON_AddNumberToObject(j, "started_ms", (double)m->ck.first_started_ms);
    cJSON_AddNumberToObject(j, "pos_ms", (double)m->ck.pos_ms);
    if (m->ck.pos_ids)
        cJSON_AddItemToObject(j, "pos_ids", cJSON_Duplicate(m->ck.pos_ids, 1));
    cJSON_AddNumberToObject(j, "saved_ms", (double)m->ck.saved_ms);
    cJSON_AddNumberToObject(j, "settled_ms", (double)m->ck.settled_ms);
    cJSON_AddBoolToObject(j, "finished", m->ck.finished);
    if (m->ck.finished)
        cJSON_AddNumberToObject(j, "finished_ms", (double)m->ck.finished_ms);
    if (m->o->filter)
        cJSON_AddStringToObject(j, "filter", m->o->filter);
    counts_to_json(cJSON_AddObjectToObject(j, "counts"), &tot);
    struct ck_commit cc = {m->ck_key, j};
    enum cb_status st = with_txn(&m->c, commit_checkpoint, &cc, err);
    cJSON_Delete(j);
    return st;
}

/* ---------------------------------------------------------------- progress */

static void progress(struct migrate *m)
{
    if (!m->fn)
        return;
    const struct migrate_counts *n = &m->rep->n;
    struct migrate_progress pr = {
        .n = *n,
        .total = m->rep->to_read ? m->rep->to_read : m->rep->to_copy + m->rep->to_settle,
        .done = n->created + n->linked + n->failed + n->postponed + (m->plan ? 0 : n->skipped) +
                (m->rep->to_read ? n->already + n->filtered : 0),
        .started_ms = m->rep->started_ms,
        .requests = http_total_requests() - m->req0,
        .phase = m->phase,
    };
    m->fn(m->arg, &pr);
}

/* ---------------------------------------------------------------- one page */

/* Handled by an earlier page or run: the listing repeats records around its position. */
static int before_position(const struct migrate *m, const struct record *r)
{
    if (r->modified_ms != m->ck.pos_ms)
        return r->modified_ms < m->ck.pos_ms;
    const cJSON *id;
    cJSON_ArrayForEach(id, m->ck.pos_ids) if (str_eq(id->valuestring, r->id)) return 1;
    return 0;
}

static void fresh_release(struct migrate *m)
{
    for (size_t i = 0; i < m->n_fresh; i++)
        intent_release(&m->fresh[i]);
    free(m->fresh);
    m->fresh = NULL;
    m->n_fresh = 0;
}

/* A create of this run whose answer was lost must not be sent again before the next run has
 * looked for its marker (the engine's rule: recover first, then re-create). */
static int fresh_intent(const struct migrate *m, const char *source_id)
{
    for (size_t i = 0; i < m->n_fresh; i++)
        if (m->fresh[i].target == (int)m->t && m->fresh[i].created_ms >= m->rep->started_ms &&
            str_eq(m->fresh[i].source_id, source_id))
            return 1;
    return 0;
}

/* Moves e to the end of recs[0..used): past it, or adding the ids handled at the same time. */
static void end_at(struct page_end *e, const struct record *recs, size_t used)
{
    if (!used || recs[used - 1].modified_ms < e->ms)
        return;
    if (recs[used - 1].modified_ms > e->ms) {
        strlist_clear(&e->ids);
        e->ms = recs[used - 1].modified_ms;
    }
    for (size_t i = 0; i < used; i++)
        if (recs[i].id && recs[i].modified_ms == e->ms)
            strlist_push(&e->ids, recs[i].id);
}

/* Moves dst to src when src ends later, or adds src's ids when both end at the same time. */
static void end_merge(struct page_end *dst, const struct page_end *src)
{
    if (src->ms == INT64_MIN || src->ms < dst->ms)
        return;
    if (src->ms > dst->ms) {
        strlist_clear(&dst->ids);
        dst->ms = src->ms;
    }
    for (size_t i = 0; i < src->ids.n; i++)
        if (!strlist_has(&dst->ids, src->ids.v[i]))
            strlist_push(&dst->ids, src->ids.v[i]);
}

static struct page_end end_of(const struct record *recs, size_t used)
{
    struct page_end e = {INT64_MIN, {0}};
    end_at(&e, recs, used);
    return e;
}

/* Handled by this run: the listing, restarted after the last page, repeats the records at its
 * start. */
static int before_listed(const struct migrate *m, const struct record *r)
{
    if (r->modified_ms != m->listed.ms)
        return r->modified_ms < m->listed.ms;
    return strlist_has(&m->listed.ids, r->id);
}

static int in_flight(const struct migrate *m, const char *id);

/* What a record's id and modified time decide (V_RELISTED, V_ALREADY or V_SETTLE), or V_COPY
 * when it is not linked and its fields must decide. */
static enum verdict classify_linked(struct migrate *m, struct cache_txn *t, const struct record *r,
                                    struct link *l)
{
    /* before anything else: a link made by this run, settled or not, is never settled again */
    if (before_position(m, r) || before_listed(m, r) || in_flight(m, r->id))
        return V_RELISTED;
    if (cache_link_find(t, m->p->pc->name, m->s, r->id, l) != CB_OK)
        return V_COPY;
    if (l->created_ms < m->ck.first_started_ms || !m->ck.first_started_ms)
        return V_ALREADY;
    /* ours: made by a page that an interruption left unfinished, or seen again because a
     * write after the copy moved it to the end of the listing */
    return l->created_ms > m->settle_after && l->created_ms < m->rep->started_ms ? V_SETTLE
                                                                                 : V_RELISTED;
}

static enum verdict classify_one(struct migrate *m, struct cache_txn *t, const struct record *r,
                                 struct link *l)
{
    const char *pair = m->p->pc->name;
    enum verdict v = classify_linked(m, t, r, l);
    if (v != V_COPY)
        return v;
    if (r->out_of_scope) /* outside the side's filter: the daemon leaves it too */
        return V_FILTERED;
    if (m->n_conds) {
        cJSON *view = map_record(&m->c, m->s, r);
        int ok = matches(m, view);
        cJSON_Delete(view);
        if (!ok)
            return V_FILTERED;
    }
    if (cache_was_unlinked(t, pair, (int)m->s, r->id))
        return V_UNLINKED;
    if (r->marker)
        return V_MARKER;
    if (fresh_intent(m, r->id))
        return V_RELISTED; /* counted as postponed when its create failed */
    if (is_blocked(&m->c, m->s, r->id))
        return V_BLOCKED;
    if (m->match) {
        int ambiguous;
        cJSON *view = map_record(&m->c, m->s, r);
        m->matched = match_index_find(m->match, view, !m->plan, &ambiguous);
        cJSON_Delete(view);
        if (m->matched || ambiguous)
            return m->matched ? V_MATCH : V_AMBIGUOUS;
    }
    return V_COPY;
}

static const char *rec_name(const struct record *r)
{
    return r->key ? r->key : r->id;
}

static void add_problem(struct migrate *m, const char *fmt, ...) CB_PRINTF(2, 3);
static void add_problem(struct migrate *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)strbuf_vaddf(&m->rep->problems, fmt, ap);
    va_end(ap);
    (void)strbuf_adds(&m->rep->problems, "\n");
}

/* A source record --match found on the target: a link to commit (id 0 until then) and a work
 * item, so that the page's merge settles the two records as a link without history. */
static void queue_match(struct migrate *m, const struct record *r)
{
    struct work *w = work_add(&m->c);
    for (int k = 0; k < 2; k++) {
        const struct record *x = k == (int)m->s ? r : m->matched;
        w->link.remote[k] = xstrdup(x->id);
        w->link.key[k] = x->key ? xstrdup(x->key) : NULL;
        w->link.url[k] = x->url ? xstrdup(x->url) : NULL;
    }
    w->link.created_ms = cbtime_now_ms();
    w->recovered = 1;
    record_copy(&w->rec[m->s], r);
}

static enum cb_status put_matches(struct cache_txn *t, void *arg)
{
    struct migrate *m = arg;
    enum cb_status st = CB_OK;
    for (size_t i = 0; i < m->c.n_w && st == CB_OK; i++)
        if (m->c.w[i].link.id == 0)
            st = cache_link_put(t, m->p->pc->name, &m->c.w[i].link);
    return st;
}

/* Counts r's verdict; in a copy run queues what must be written. */
static void take(struct migrate *m, enum verdict v, struct record *r, struct link *l)
{
    struct migrate_counts *n = &m->rep->n;
    const char *sn = side_name(m->s);
    if (v != V_RELISTED && v != V_SETTLE)
        n->read++;
    switch (v) {
    case V_RELISTED:
        break;
    case V_ALREADY:
        n->already++;
        break;
    case V_FILTERED:
        n->filtered++;
        break;
    case V_UNLINKED:
        n->skipped++;
        add_problem(m, "skipped %s record '%s': a person unlinked it", sn, rec_name(r));
        break;
    case V_MARKER:
        n->skipped++;
        add_problem(m, "skipped %s record '%s': it was made by crmbridge but is not linked", sn,
                    rec_name(r));
        break;
    case V_BLOCKED:
        n->postponed++;
        if (!m->plan && r->modified_ms - 1 < m->c.cap_ms[m->s])
            m->c.cap_ms[m->s] = r->modified_ms - 1;
        if (!m->plan)
            add_problem(m, "postponed %s record '%s': an earlier create of it is not visible yet",
                        sn, rec_name(r));
        break;
    case V_MATCH:
        n->linked++;
        m->rep->to_link += m->plan;
        if (!m->plan)
            queue_match(m, r);
        break;
    case V_AMBIGUOUS:
        n->skipped++;
        add_problem(m, "skipped %s record '%s': several %s records have its '%s'; link it by hand",
                    sn, rec_name(r), side_name(m->t), m->o->match);
        break;
    case V_SETTLE:
        m->rep->to_settle += m->plan;
        if (!m->plan) {
            struct work *w = work_add(&m->c);
            w->link = *l;
            memset(l, 0, sizeof(*l));
            record_copy(&w->rec[m->s], r);
        }
        break;
    case V_COPY:
        m->queued++;
        if (m->plan) {
            m->rep->to_copy++;
        } else {
            struct record copy;
            record_copy(&copy, r);
            record_list_push(&m->c.creates[m->s], &copy);
        }
        break;
    }
}

static void page_reset(struct migrate *m)
{
    for (size_t i = 0; i < m->c.n_w; i++)
        work_release(&m->c.w[i]);
    m->c.n_w = 0;
    record_list_release(&m->c.creates[m->s]);
    sync_report_release(&m->page);
    sync_report_init(&m->page);
}

/* Adds what the engine did with (part of) a page to the run's counts and problems. */
static void absorb(struct migrate *m, const struct sync_report *page)
{
    struct migrate_counts *n = &m->rep->n;
    n->created += page->created[m->t];
    n->linked += page->linked;
    n->failed += page->failed;
    n->postponed += page->postponed;
    n->skipped += page->skipped;
    n->updated += page->updated[0] + page->updated[1];
    n->comments += page->comments[m->t];
    (void)strbuf_add(&m->rep->problems, page->problems.buf, page->problems.len);
}

static struct comment_sync comment_run(struct cycle *c, int no_pending)
{
    struct comment_sync cs = {.pair = c->p->pc->name,
                              .cache = c->p->cache,
                              .ops = {c->p->ops[0], c->p->ops[1]},
                              .conn = {c->p->conn[0], c->p->conn[1]},
                              .rep = c->rep,
                              .origin = 1,
                              .no_pending = no_pending};
    return cs;
}

/* The engine's create path for the records queued in c, then the read back and the merge, and
 * the comments of those records (the copies, marked as ours, have none to read: the read back
 * carries the target's comments, so none are listed). One of several in parallel (in_parallel)
 * leaves the links pending from earlier runs to settle_pending. */
static enum cb_status write_cycle(struct cycle *c, enum side s, int comments, int in_parallel,
                                  struct strbuf *err)
{
    enum cb_status st = ensure_pinged(c->p, err);
    if (st == CB_OK)
        st = load_bases(c, err);
    if (st == CB_OK)
        st = create_side(c, s, err);
    for (int k = 0; k < 2 && st == CB_OK; k++)
        st = fetch_side(c, (enum side)k, err);
    if (st == CB_OK)
        st = merge_and_write(c, 0, err);
    if (st != CB_OK || !comments || !c->n_w)
        return st;
    struct comment_sync cs = comment_run(c, in_parallel);
    return sync_comments(&cs, &c->w[0].link, c->w[0].rec, c->n_w, sizeof(*c->w), err);
}

/* After the workers of a page: the comments of links left pending (a lost answer, a failure). */
static enum cb_status settle_pending(struct migrate *m, struct strbuf *err)
{
    struct sync_report rep;
    sync_report_init(&rep);
    struct cycle c = {.p = m->p, .rep = &rep};
    struct comment_sync cs = comment_run(&c, 0);
    enum cb_status st = sync_comments(&cs, NULL, NULL, 0, sizeof(struct work), err);
    absorb(m, &rep);
    sync_report_release(&rep);
    return st;
}

/* ---------------------------------------------------------------- workers (several in flight) */

/* One more connection to both services: its own connectors (and HTTP clients) and cycle, and
 * a thread that writes chunks of pages from the queue. */
struct worker {
    struct migrate *m;
    struct sync_pair *p;
    struct cycle c;
    struct sync_report page;
    struct strbuf err;
    pthread_t th;
    int th_ok;
};

/* A page handed to the workers in chunks. Its records stay in flight (never queued again) until
 * every chunk is done; the position moves past it only then, and only after the pages listed
 * before it. Fields marked (mu) are written by workers under m->mu. */
struct flight {
    struct strlist ids;       /* of every record of the page handled */
    struct strlist fresh_ids; /* of those copied or matched */
    struct page_end end;
    int64_t launched_ms;    /* links made before it belong to pages handed over earlier */
    size_t left;            /* chunks not done yet (mu) */
    struct sync_report rep; /* what the workers did with it (mu) */
    int64_t cap_ms;         /* the position may not pass it (mu) */
    enum cb_status st;      /* the first failure (mu) */
    struct strbuf err;      /* (mu) */
};

/* A worker's share of a page: some of its creates or of its unfinished copies. */
struct chunk {
    struct flight *f;
    struct record_list creates;
    struct work *w;
    size_t n_w;
    struct strlist verify; /* or (f NULL) target ids of copies to read back */
    struct chunk *next;
};

static void read_back(struct verify_run *v, struct sync_pair *p, const char *const *ids, size_t n);
static void verify_failed(struct verify_run *v, enum cb_status st, const char *why);

static void worker_reset(struct worker *w, struct migrate *m)
{
    for (size_t i = 0; i < w->c.n_w; i++)
        work_release(&w->c.w[i]);
    free(w->c.w);
    record_list_release(&w->c.creates[m->s]);
    memset(&w->c, 0, sizeof(w->c));
    w->c.p = w->p;
    w->c.rep = &w->page;
    w->c.cap_ms[0] = w->c.cap_ms[1] = INT64_MAX;
    w->c.started_ms = m->c.started_ms;
    w->c.keep_origin = 1;
    w->c.intents = m->c.intents; /* shared, read only: markers of creates to retry */
    w->c.n_intents = m->c.n_intents;
    sync_report_release(&w->page);
    sync_report_init(&w->page);
    strbuf_reset(&w->err);
}

static void chunk_free(struct chunk *ch)
{
    strlist_clear(&ch->verify);
    record_list_release(&ch->creates);
    for (size_t i = 0; i < ch->n_w; i++)
        work_release(&ch->w[i]);
    free(ch->w);
    free(ch);
}

/* Writes one chunk on the worker's connection and adds the outcome to its page. */
static void run_chunk(struct worker *w, struct chunk *ch)
{
    struct migrate *m = w->m;
    if (!ch->f) {
        read_back(&m->vr, w->p, (const char *const *)ch->verify.v, ch->verify.n);
        pthread_mutex_lock(&m->mu);
        m->verify_left--;
        pthread_cond_broadcast(&m->chunk_done);
        pthread_mutex_unlock(&m->mu);
        return;
    }
    worker_reset(w, m);
    w->c.creates[m->s] = ch->creates;
    w->c.w = ch->w;
    w->c.n_w = w->c.alloc_w = ch->n_w;
    ch->creates = (struct record_list){0};
    ch->w = NULL;
    ch->n_w = 0;
    enum cb_status st = write_cycle(&w->c, m->s, !m->o->no_comments, 1, &w->err);
    struct flight *f = ch->f;
    pthread_mutex_lock(&m->mu);
    sync_report_add(&f->rep, &w->page);
    if (w->c.cap_ms[m->s] < f->cap_ms)
        f->cap_ms = w->c.cap_ms[m->s];
    if (st != CB_OK && f->st == CB_OK) {
        f->st = st;
        strbuf_setf(&f->err, "%s", w->err.buf);
    }
    f->left--;
    pthread_cond_broadcast(&m->chunk_done);
    pthread_mutex_unlock(&m->mu);
    cache_trim(m->p->cache); /* the pages this chunk's commits mapped need not stay */
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct migrate *m = w->m;
    /* its connections are checked while the source is counted and listed (a failure here is
     * met again, and reported, by the first chunk) */
    (void)ensure_pinged(w->p, &w->err);
    strbuf_reset(&w->err);
    pthread_mutex_lock(&m->mu);
    for (;;) {
        while (!m->queue && !m->closing)
            pthread_cond_wait(&m->chunk_ready, &m->mu);
        struct chunk *ch = m->queue;
        if (!ch)
            break;
        m->queue = ch->next;
        pthread_mutex_unlock(&m->mu);
        run_chunk(w, ch);
        chunk_free(ch);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static void workers_close(struct migrate *m)
{
    pthread_mutex_lock(&m->mu);
    m->closing = 1;
    pthread_cond_broadcast(&m->chunk_ready);
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < m->n_workers; i++) {
        struct worker *w = &m->workers[i];
        if (w->th_ok)
            pthread_join(w->th, NULL);
        worker_reset(w, m);
        w->c.intents = NULL;
        sync_report_release(&w->page);
        strbuf_release(&w->err);
        sync_people_save(w->p);
        sync_pair_close(w->p);
    }
    free(m->workers);
    m->workers = NULL;
    m->n_workers = 0;
}

/* Opens o->workers connections besides the pair's own (which lists the source meanwhile) and
 * starts a thread on each. With fewer than two, the pair's own connection does everything, one
 * page after the other. */
static void workers_open(struct migrate *m)
{
    /* An arena per thread (up to 8 per core) keeps what each thread freed: two serve dozens of
     * threads that mostly wait on the network as fast, with less memory held. */
    (void)mallopt(M_ARENA_MAX, 2);
    size_t k = m->o->workers > 1 && m->o->cfg ? (size_t)m->o->workers : 0, started = 0;
    m->workers = xcalloc(k ? k : 1, sizeof(*m->workers));
    for (size_t i = 0; i < k; i++) {
        struct worker *w = &m->workers[i];
        struct strbuf e = STRBUF_INIT;
        if (sync_pair_open(m->o->cfg, m->p->pc, m->p->cache, &w->p, &e) != CB_OK) {
            log_warn("cannot open connection %zu of pair '%s': %s", i + 1, m->p->pc->name, e.buf);
            strbuf_release(&e);
            break;
        }
        strbuf_release(&e);
        w->m = m;
        strbuf_init(&w->err, 0);
        sync_report_init(&w->page);
        m->n_workers = i + 1;
        w->th_ok = pthread_create(&w->th, NULL, worker_main, w) == 0;
        started += (size_t)w->th_ok;
    }
    if (started < 2)
        workers_close(m);
}

/* ---------------------------------------------------------------- pages in flight */

static void flight_free(struct flight *f)
{
    strlist_clear(&f->ids);
    strlist_clear(&f->fresh_ids);
    strlist_clear(&f->end.ids);
    sync_report_release(&f->rep);
    strbuf_release(&f->err);
    free(f);
}

static struct flight *flight_new(const struct record *recs, size_t used)
{
    struct flight *f = xcalloc(1, sizeof(*f));
    for (size_t i = 0; i < used; i++)
        if (recs[i].id)
            strlist_push(&f->ids, recs[i].id);
    f->end = end_of(recs, used);
    f->launched_ms = cbtime_now_ms();
    f->cap_ms = INT64_MAX;
    sync_report_init(&f->rep);
    strbuf_init(&f->err, 0);
    return f;
}

/* The newest modified time among the records in flight. */
static int64_t flight_end(const struct migrate *m)
{
    int64_t end = INT64_MIN;
    for (size_t k = 0; k < m->n_fl; k++)
        if (m->fl[k]->end.ms > end)
            end = m->fl[k]->end.ms;
    return end;
}

/* A record of a page whose writes may still run (its link or intent may not exist yet). */
static int in_flight(const struct migrate *m, const char *id)
{
    for (size_t k = 0; k < m->n_fl; k++)
        if (strlist_has(&m->fl[k]->ids, id))
            return 1;
    return 0;
}

/* Appends chunks to the workers' queue (verifications: how many of them are). */
static void enqueue(struct migrate *m, struct chunk *head, size_t verifications)
{
    pthread_mutex_lock(&m->mu);
    struct chunk **end = &m->queue;
    while (*end)
        end = &(*end)->next;
    *end = head;
    m->verify_left += verifications;
    pthread_cond_broadcast(&m->chunk_ready);
    pthread_mutex_unlock(&m->mu);
}

/* Splits the page's creates and unfinished copies into one chunk per worker (a target's
 * requests per new record, such as Jira's links and transitions, then run on every
 * connection) and queues them behind the pages handed over before. */
static void hand_over(struct migrate *m, const struct record *recs, size_t used)
{
    struct flight *f = flight_new(recs, used);
    struct record_list *l = &m->c.creates[m->s];
    size_t per = (l->n + m->c.n_w + m->n_workers - 1) / m->n_workers;
    struct chunk *head = NULL, **tail = &head;
    for (size_t i = 0; i < l->n + m->c.n_w; i += per) {
        struct chunk *ch = xcalloc(1, sizeof(*ch));
        ch->f = f;
        for (size_t j = i; j < i + per && j < l->n + m->c.n_w; j++) {
            if (j < l->n) {
                record_list_push(&ch->creates, &l->v[j]);
                continue;
            }
            ch->w = xrealloc(ch->w, (ch->n_w + 1) * sizeof(*ch->w));
            ch->w[ch->n_w++] = m->c.w[j - l->n];
        }
        f->left++;
        *tail = ch;
        tail = &ch->next;
    }
    l->n = 0;
    m->c.n_w = 0;
    f->fresh_ids = m->fresh_ids;
    m->fresh_ids = (struct strlist){0};
    m->fl[m->n_fl++] = f;
    enqueue(m, head, 0);
}

/* Queues reads of the target records ids[0..n) (target ids) for the workers, in the target's
 * largest batches: a connection is only ever used by its own worker's thread. */
static void enqueue_reads(struct migrate *m, char *const *ids, size_t n)
{
    size_t max =
        (size_t)(m->p->ops[m->t]->max_batch_read > 0 ? m->p->ops[m->t]->max_batch_read : 1);
    struct chunk *head = NULL, **tail = &head;
    size_t k = 0;
    for (size_t i = 0; i < n; i += max, k++) {
        struct chunk *ch = xcalloc(1, sizeof(*ch));
        for (size_t j = i; j < n && j < i + max; j++)
            strlist_push(&ch->verify, ids[j]);
        *tail = ch;
        tail = &ch->next;
    }
    enqueue(m, head, k);
}

/* Waits for every verification chunk queued. */
static void verify_wait(struct migrate *m)
{
    pthread_mutex_lock(&m->mu);
    while (m->verify_left)
        pthread_cond_wait(&m->chunk_done, &m->mu);
    pthread_mutex_unlock(&m->mu);
}

/* Queues the verification of the copies of a page's records (ids[0..n), source ids) that this
 * run's pages made: read back in batches by the workers, between the pages' chunks. */
static void queue_verify(struct migrate *m, char *const *ids, size_t n)
{
    if (!m->workers || m->o->dry_run)
        return;
    struct cache_txn *t;
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = cache_txn_begin(m->p->cache, 1, &t, &err);
    if (st != CB_OK) {
        verify_failed(&m->vr, st, err.buf); /* the run then says it could not verify */
        strbuf_release(&err);
        return;
    }
    struct strlist copies = {0};
    for (size_t i = 0; i < n; i++) {
        struct link l = {0};
        if (cache_link_find(t, m->p->pc->name, m->s, ids[i], &l) == CB_OK &&
            l.created_ms >= m->verify_from_ms && l.remote[m->t])
            strlist_push(&copies, l.remote[m->t]);
        link_release(&l);
    }
    cache_txn_abort(t);
    cache_trim(m->p->cache);
    strbuf_release(&err);
    enqueue_reads(m, copies.v, copies.n);
    strlist_clear(&copies);
}

/* The position to resume from: the last record handled (with the ids handled at its time),
 * but never past one left for later. */
static void advance(struct migrate *m, const struct page_end *e)
{
    if (e->ms == INT64_MIN)
        return;
    int64_t pos = e->ms;
    int capped = m->c.cap_ms[m->s] != INT64_MAX && m->c.cap_ms[m->s] + 1 < pos;
    if (capped)
        pos = m->c.cap_ms[m->s] + 1;
    if (pos < m->ck.pos_ms)
        return;
    if (pos > m->ck.pos_ms || !m->ck.pos_ids) {
        cJSON_Delete(m->ck.pos_ids);
        m->ck.pos_ids = cJSON_CreateArray();
        m->ck.pos_ms = pos;
    }
    for (size_t i = 0; i < e->ids.n && !capped; i++)
        if (cJSON_GetArraySize(m->ck.pos_ids) < POS_IDS_CAP)
            cJSON_AddItemToArray(m->ck.pos_ids, cJSON_CreateString(e->ids.v[i]));
}

/* Moves the position past a finished page (settled: every link made before settled_ms belongs
 * to a page finished by now) and saves the checkpoint. */
static enum cb_status page_done(struct migrate *m, const struct page_end *e, int64_t settled_ms,
                                struct strbuf *err)
{
    advance(m, e);
    m->ck.settled_ms = settled_ms;
    return save_checkpoint(m, err);
}

/* page_done for the page recs[0..used), handled here and now. */
static enum cb_status records_done(struct migrate *m, const struct record *recs, size_t used,
                                   struct strbuf *err)
{
    struct page_end e = end_of(recs, used);
    enum cb_status st = page_done(m, &e, cbtime_now_ms(), err);
    strlist_clear(&e.ids);
    return st;
}

static int flight_left(struct migrate *m, struct flight *f, int wait)
{
    pthread_mutex_lock(&m->mu);
    while (wait && f->left)
        pthread_cond_wait(&m->chunk_done, &m->mu);
    size_t left = f->left;
    pthread_mutex_unlock(&m->mu);
    return left > 0;
}

/* Waits for the oldest page in flight and counts what was done with it; when it went well
 * (and keep: every page before it did), moves the position past it. *wrote tells whether it
 * wrote to source records. */
static enum cb_status retire(struct migrate *m, int keep, int *wrote, struct strbuf *err)
{
    struct flight *f = m->fl[0];
    (void)flight_left(m, f, 1);
    memmove(m->fl, m->fl + 1, --m->n_fl * sizeof(*m->fl));
    absorb(m, &f->rep);
    if (f->cap_ms < m->c.cap_ms[m->s])
        m->c.cap_ms[m->s] = f->cap_ms;
    *wrote |= f->rep.updated[m->s] > 0;
    (void)malloc_trim(0); /* give back what the page's records and answers took */
    enum cb_status st = f->st;
    if (st != CB_OK && f->err.len)
        strbuf_setf(err, "%s", f->err.buf);
    if (st == CB_OK && keep)
        st = page_done(m, &f->end, m->n_fl ? m->fl[0]->launched_ms : cbtime_now_ms(), err);
    if (st == CB_OK && keep)
        queue_verify(m, f->fresh_ids.v, f->fresh_ids.n);
    flight_free(f);
    progress(m);
    return st;
}

/* One page with workers: its chunks join the queue, and the pages before it that are done are
 * retired (waiting for the oldest while FLIGHT_MAX pages are in flight). The listing then
 * restarts after this page: our writes move source records to its end, which offset paging
 * would skip. A page with nothing to write waits for every page in flight instead, unless it
 * ends past all their records. */
static enum cb_status pipe_page(struct migrate *m, const struct record *recs, size_t used,
                                struct strbuf *err)
{
    int queued = m->c.creates[m->s].n > 0 || m->c.n_w > 0, wrote = 0;
    if (queued)
        hand_over(m, recs, used);
    /* Nothing to write here, but a listing from this page's end starts past every record in
     * flight (their writes then only append to it): it need not wait for them. */
    int past = !queued && used > 0 && m->n_fl > 0 && recs[used - 1].modified_ms > flight_end(m);
    int wait_all = !queued && !past;
    enum cb_status st = CB_OK;
    while (st == CB_OK && m->n_fl &&
           (wait_all || m->n_fl >= FLIGHT_MAX || !flight_left(m, m->fl[0], 0)))
        st = retire(m, 1, &wrote, err);
    if (wait_all && st == CB_OK)
        st = records_done(m, recs, used, err);
    if (!queued) /* links made by --match only: nothing to write */
        queue_verify(m, m->fresh_ids.v, m->fresh_ids.n);
    end_at(&m->listed, recs, used);
    m->restart = queued || wrote || past;
    return st;
}

/* After the listing: drops the chunks not started when it stopped on a failure or a stop
 * request, waits for the rest and settles the comment copies left pending. */
static enum cb_status drain(struct migrate *m, enum cb_status st, struct strbuf *err)
{
    if (!m->workers)
        return st;
    int drop = (st != CB_OK && !m->limit_hit) || sync_stop_requested();
    pthread_mutex_lock(&m->mu);
    while (drop && m->queue) {
        struct chunk *ch = m->queue;
        m->queue = ch->next;
        if (!ch->f) {
            m->verify_left--;
        } else {
            ch->f->left--;
            if (ch->f->st == CB_OK)
                ch->f->st = CB_ERR_STOPPED;
        }
        chunk_free(ch);
    }
    pthread_mutex_unlock(&m->mu);
    int keep = st == CB_OK || st == CB_ERR_STOPPED, wrote = 0;
    while (m->n_fl) {
        struct strbuf e = STRBUF_INIT;
        enum cb_status rs = retire(m, keep, &wrote, &e);
        if (rs != CB_OK) {
            keep = 0;
            if (st == CB_OK || (st == CB_ERR_STOPPED && rs != CB_ERR_STOPPED)) {
                st = rs;
                strbuf_setf(err, "%s", e.buf);
            }
        }
        strbuf_release(&e);
    }
    int limit_only = st == CB_ERR_STOPPED && m->limit_hit && !sync_stop_requested();
    if ((st == CB_OK || limit_only) && !m->o->no_comments) {
        enum cb_status ss = settle_pending(m, err);
        st = ss != CB_OK ? ss : st;
    }
    return st;
}

/* A page without workers: written here, then the position moves past it. */
static enum cb_status one_page(struct migrate *m, const struct record *recs, size_t used,
                               struct strbuf *err)
{
    enum cb_status st = write_cycle(&m->c, m->s, !m->o->no_comments, 0, err);
    absorb(m, &m->page);
    m->restart = m->page.updated[m->s] > 0;
    if (used > 0 && st == CB_OK) { /* a stopped page is listed again: its copies are settled */
        end_at(&m->listed, recs, used);
        return records_done(m, recs, used, err);
    }
    enum cb_status cs = save_checkpoint(m, err);
    return st == CB_OK ? cs : st;
}

static int count_source(struct migrate *m);

static enum cb_status on_page(void *arg, struct record *recs, size_t n)
{
    struct migrate *m = arg;
    if (sync_stop_requested())
        return CB_ERR_STOPPED;
    struct strbuf err = STRBUF_INIT;
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(m->p->cache, 1, &t, &err);
    if (st != CB_OK) {
        log_error("%s", err.buf);
        strbuf_release(&err);
        return st;
    }
    fresh_release(m);
    if (!m->plan)
        st = cache_intent_list(t, m->p->pc->name, &m->fresh, &m->n_fresh);
    size_t used = 0, relisted = 0;
    for (; st == CB_OK && used < n; used++) {
        if (m->o->limit > 0 && m->queued >= m->o->limit) {
            m->limit_hit = 1;
            break;
        }
        if (!recs[used].id)
            continue;
        struct link l = {0};
        enum verdict v = classify_one(m, t, &recs[used], &l);
        relisted += v == V_RELISTED;
        if ((v == V_COPY || v == V_MATCH) && m->workers && !m->plan)
            strlist_push(&m->fresh_ids, recs[used].id);
        take(m, v, &recs[used], &l);
        link_release(&l);
    }
    cache_txn_abort(t);
    if (st == CB_OK && !m->plan && m->match)
        st = with_txn(&m->c, put_matches, m, &err); /* linked before anything is written */
    m->pages++;
    if (m->plan) {
        progress(m);
        strbuf_release(&err);
        return st != CB_OK ? st : m->limit_hit ? CB_ERR_STOPPED : CB_OK;
    }
    if (st == CB_OK)
        st = m->workers ? pipe_page(m, recs, used, &err) : one_page(m, recs, used, &err);
    if (st == CB_OK && m->count_later) {
        m->count_later = 0;
        (void)count_source(m);
    }
    if (st != CB_OK && st != CB_ERR_STOPPED)
        log_error("%s", err.buf);
    log_debug("page of %zu records (%zu handled): %s; position %lld", n, used, cb_status_str(st),
              (long long)m->ck.pos_ms);
    page_reset(m);
    strlist_clear(&m->fresh_ids);
    cache_trim(m->p->cache); /* the database grows with the run; what it maps need not stay */
    progress(m);
    strbuf_release(&err);
    if (st != CB_OK)
        return st;
    /* a whole page of records this run handled, modified since it started: what our writes
     * moved to the end of the listing */
    m->probe = !m->probed && n > 0 && relisted == n && m->p->ops[m->s]->list_changed_ids &&
               recs[0].modified_ms >= m->rep->started_ms - PROBE_MARGIN_MS;
    if (m->limit_hit || m->restart || m->probe)
        return CB_ERR_STOPPED;
    return CB_OK;
}

/* ---------------------------------------------------------------- the source's ids */

/* A walk of the source's ids listing (list_changed_ids): counting them, or (probe) checking
 * that every one was handled already. */
struct ids_walk {
    struct migrate *m;
    int probe;
    long n;              /* ids listed, but those this migration handled already */
    long already;        /* probe: of them, linked before the migration began */
    int unhandled;       /* probe: one still needs copying or settling (the walk stopped) */
    struct page_end end; /* probe: where the ids checked end */
};

static enum cb_status on_ids(void *arg, struct record *recs, size_t n)
{
    struct ids_walk *w = arg;
    if (sync_stop_requested())
        return CB_ERR_STOPPED;
    struct strbuf err = STRBUF_INIT;
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(w->m->p->cache, 1, &t, &err);
    if (st != CB_OK) {
        log_error("%s", err.buf);
        strbuf_release(&err);
        return st;
    }
    for (size_t i = 0; st == CB_OK && i < n; i++) {
        struct link l = {0};
        enum verdict v = classify_linked(w->m, t, &recs[i], &l);
        link_release(&l);
        w->n += v != V_RELISTED && v != V_SETTLE; /* what the copy will count as read */
        w->already += v == V_ALREADY;
        if (w->probe && v != V_ALREADY && v != V_RELISTED) {
            w->unhandled = 1;
            st = CB_ERR_STOPPED;
        }
    }
    cache_txn_abort(t);
    cache_trim(w->m->p->cache); /* the links looked up are spread over the whole file */
    if (st == CB_OK)
        end_at(&w->end, recs, n);
    strbuf_release(&err);
    return st;
}

/* Counts the source's records from the position through its ids listing, for the progress
 * total (a fraction of a planning pass's requests): those left, and those read so far. 0 when
 * the source cannot. */
static int count_source(struct migrate *m)
{
    struct sync_pair *p = m->p;
    if (!p->ops[m->s]->list_changed_ids)
        return 0;
    struct ids_walk w = {.m = m, .end = {INT64_MIN, {0}}};
    struct strbuf e = STRBUF_INIT;
    enum cb_status st = p->ops[m->s]->list_changed_ids(p->conn[m->s], m->ck.pos_ms, on_ids, &w, &e);
    if (st != CB_OK && st != CB_ERR_STOPPED)
        log_info("cannot count %s records from their ids: %s", side_name(m->s), e.buf);
    strbuf_release(&e);
    strlist_clear(&w.end.ids);
    m->rep->to_read = st == CB_OK ? w.n + m->rep->n.read : 0; /* and those read so far */
    return st == CB_OK;
}

/* Our writes move the records we copied to the end of the source's listing, which would read
 * them all again. Once a page holds only those, the rest is checked from the ids alone: when
 * every record from the position on was handled by this run (or linked before it began), the
 * position jumps to the last. Otherwise, or when the ids cannot be listed, the listing reads
 * on. The pages in flight finish first: their writes are part of that end. */
static enum cb_status probe_tail(struct migrate *m, struct strbuf *err)
{
    struct sync_pair *p = m->p;
    int wrote = 0;
    enum cb_status st = CB_OK;
    m->probe = 0;
    m->probed = 1;
    while (st == CB_OK && m->n_fl)
        st = retire(m, 1, &wrote, err);
    if (st != CB_OK)
        return st;
    struct ids_walk w = {.m = m, .probe = 1, .end = {INT64_MIN, {0}}};
    struct strbuf e = STRBUF_INIT;
    int64_t from = m->listed.ms > m->ck.pos_ms ? m->listed.ms : m->ck.pos_ms;
    st = p->ops[m->s]->list_changed_ids(p->conn[m->s], from, on_ids, &w, &e);
    if (st == CB_OK) {
        log_debug("%ld records past the position were handled already: the listing jumps", w.n);
        m->rep->n.read += w.already;
        m->rep->n.already += w.already;
        end_merge(&m->listed, &w.end);
        st = page_done(m, &w.end, cbtime_now_ms(), err);
    } else if (!sync_stop_requested()) {
        log_debug("the listing reads on: %s", w.unhandled ? "a record needs copying" : e.buf);
        st = CB_OK;
    }
    strlist_clear(&w.end.ids);
    strbuf_release(&e);
    return st;
}

/* Lists the source from the checkpoint to its end, page by page, restarting after pages that
 * wrote to the source (with workers: after the last page handed to them), then waits for the
 * pages still in flight. */
static enum cb_status walk_source(struct migrate *m, struct strbuf *err)
{
    struct sync_pair *p = m->p;
    enum cb_status st;
    do {
        m->restart = 0;
        if (m->probe && (st = probe_tail(m, err)) != CB_OK)
            break;
        struct strbuf e = STRBUF_INIT;
        int64_t from = m->listed.ms > m->ck.pos_ms ? m->listed.ms : m->ck.pos_ms;
        st = p->ops[m->s]->list_changed(p->conn[m->s], from, on_page, m, &e);
        if (st != CB_OK && st != CB_ERR_STOPPED)
            strbuf_setf(err, "cannot list %s '%s': %s", side_name(m->s), p->ep_name[m->s],
                        e.len ? e.buf : cb_status_str(st));
        strbuf_release(&e);
    } while (st == CB_ERR_STOPPED && (m->restart || m->probe) && !sync_stop_requested() &&
             !m->limit_hit);
    return drain(m, st, err);
}

/* ---------------------------------------------------------------- intents left behind */

/* Waits until every pending create is older than its target's search lag, so that the
 * recovery can tell "lost" from "not visible yet". */
static enum cb_status wait_for_intents(struct migrate *m, struct strbuf *err)
{
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(m->p->cache, 1, &t, err);
    if (st != CB_OK)
        return st;
    struct intent *v = NULL;
    size_t n = 0;
    st = cache_intent_list(t, m->p->pc->name, &v, &n);
    cache_txn_abort(t);
    int64_t until = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t ready = v[i].created_ms + lag_of(m->p, (enum side)v[i].target);
        if (ready > until)
            until = ready;
        intent_release(&v[i]);
    }
    free(v);
    m->rep->intents = (long)n;
    while (st == CB_OK && cbtime_now_ms() < until) {
        if (sync_stop_requested())
            return CB_ERR_STOPPED;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return st;
}

/* Links (or lets the create path re-make) the creates an interruption left unfinished. */
static enum cb_status recover(struct migrate *m, struct strbuf *err)
{
    enum cb_status st = wait_for_intents(m, err);
    if (st == CB_OK)
        st = recover_intents(&m->c, err);
    for (int s = 0; s < 2 && st == CB_OK; s++)
        st = fetch_side(&m->c, (enum side)s, err);
    if (st == CB_OK)
        st = merge_and_write(&m->c, 0, err);
    absorb(m, &m->page);
    page_reset(m);
    return st;
}

/* ---------------------------------------------------------------- verification */

struct verify_reader {
    struct verify_run *v;
    struct sync_pair *p; /* the connection (and mapping) it reads with */
};

/* This migration's links; those not read back with their page are left to the end. */
static int collect_ours(void *arg, const struct link *l)
{
    struct verify_run *v = arg;
    if (l->created_ms < v->m->ck.first_started_ms || !l->remote[v->m->t])
        return 0;
    v->links++;
    if (l->created_ms < v->m->verify_from_ms)
        strlist_push(&v->ids, l->remote[v->m->t]);
    return 0;
}

/* Compares each copy read with what was agreed with its source (the base). */
static enum cb_status verify_got(struct verify_reader *r, const struct record_list *got)
{
    struct migrate *m = r->v->m;
    struct cycle c = {.p = r->p};
    struct cache_txn *t;
    struct strbuf e = STRBUF_INIT;
    enum cb_status st = cache_txn_begin(m->p->cache, 1, &t, &e);
    strbuf_release(&e);
    for (size_t i = 0; st == CB_OK && i < got->n; i++) {
        const struct record *rec = &got->v[i];
        struct link l = {0};
        if (!rec->id || cache_link_find(t, m->p->pc->name, m->t, rec->id, &l) != CB_OK) {
            link_release(&l);
            continue;
        }
        cJSON *base = NULL;
        (void)cache_base_get(t, m->p->pc->name, l.id, &base);
        cJSON *view = map_record(&c, m->t, rec);
        int differ = merge_side_changed(r->p->map, base, m->t, view);
        pthread_mutex_lock(&m->mu);
        m->rep->verify_found++;
        if (differ) {
            m->rep->verify_differ++;
            add_problem(m, "%s record '%s' differs from the copy agreed with %s '%s'",
                        side_name(m->t), rec_name(rec), side_name(m->s),
                        l.key[m->s] ? l.key[m->s] : l.remote[m->s]);
        }
        pthread_mutex_unlock(&m->mu);
        cJSON_Delete(view);
        cJSON_Delete(base);
        link_release(&l);
    }
    if (st == CB_OK)
        cache_txn_abort(t);
    cache_trim(m->p->cache); /* the links and bases read are spread over the whole file */
    return st;
}

/* Reads ids[0..n) back from the target on p's connection and compares them; a failure is kept
 * in v. */
static void read_back(struct verify_run *v, struct sync_pair *p, const char *const *ids, size_t n)
{
    struct migrate *m = v->m;
    struct verify_reader r = {.v = v, .p = p};
    struct record_list got = {0};
    struct strbuf e = STRBUF_INIT;
    enum cb_status st = p->ops[m->t]->get_many(p->conn[m->t], ids, n, &got, &e);
    if (st == CB_OK)
        st = verify_got(&r, &got);
    record_list_release(&got);
    if (st != CB_OK)
        verify_failed(v, st, e.len ? e.buf : cb_status_str(st));
    strbuf_release(&e);
}

/* Keeps the verification's first failure (any thread). */
static void verify_failed(struct verify_run *v, enum cb_status st, const char *why)
{
    pthread_mutex_lock(&v->m->mu);
    if (v->st == CB_OK) {
        v->st = st;
        strbuf_setf(&v->err, "%s", why);
    }
    pthread_mutex_unlock(&v->m->mu);
}

/* Reads every copy this migration made back from the target by id (a read the target answers
 * as it is now, where its search may lag) and compares it with what was agreed with its
 * source: copies missing or changed since are problems. With workers, on all their
 * connections at once. */
static enum cb_status verify(struct migrate *m, struct strbuf *err)
{
    m->phase = "verify";
    progress(m);
    struct verify_run *v = &m->vr;
    verify_wait(m); /* the pages' own verification ends first */
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(m->p->cache, 1, &t, err);
    if (st != CB_OK)
        return st;
    st = cache_link_foreach(t, m->p->pc->name, collect_ours, v);
    cache_txn_abort(t);
    m->rep->verify_links = v->links;
    size_t max =
        (size_t)(m->p->ops[m->t]->max_batch_read > 0 ? m->p->ops[m->t]->max_batch_read : 1);
    if (st == CB_OK && m->workers) { /* on every connection at once */
        enqueue_reads(m, v->ids.v, v->ids.n);
        verify_wait(m);
    }
    for (size_t i = 0; st == CB_OK && !m->workers && i < v->ids.n && v->st == CB_OK; i += max)
        read_back(v, m->p, (const char *const *)v->ids.v + i,
                  v->ids.n - i < max ? v->ids.n - i : max);
    if (st == CB_OK && v->st == CB_OK && sync_stop_requested())
        v->st = CB_ERR_STOPPED;
    if (st == CB_OK && v->st != CB_OK) {
        st = v->st;
        strbuf_setf(err, "cannot verify the copies on %s '%s': %s", side_name(m->t),
                    m->p->ep_name[m->t], v->err.len ? v->err.buf : cb_status_str(st));
    }
    strlist_clear(&v->ids);
    m->rep->verified = st == CB_OK;
    long missing = m->rep->verify_links - m->rep->verify_found;
    if (m->rep->verified && missing > 0)
        add_problem(m, "%ld linked %s record(s) not found on %s '%s'", missing, side_name(m->t),
                    side_name(m->t), m->p->ep_name[m->t]);
    return st;
}

/* ---------------------------------------------------------------- cursors, plan, run */

static enum cb_status commit_cursors(struct cache_txn *t, void *arg)
{
    struct migrate *m = arg;
    enum cb_status st = CB_OK;
    for (int s = 0; s < 2 && st == CB_OK; s++) {
        struct cursor cur;
        st = cache_cursor_get(t, m->p->pc->name, s, &cur);
        /* our clock's start time on the service's clock (a lower bound: never later there) */
        const struct sync_pair *p = m->p;
        int64_t there = p->ops[s]->server_now ? p->ops[s]->server_now(p->conn[s]) : 0;
        int64_t skew = there > 0 ? there - cbtime_now_ms() : 0;
        struct cursor from = {m->ck.first_started_ms + (skew < 0 ? skew : 0), 0};
        if (st == CB_OK && cur.ms == 0)
            st = cache_cursor_put(t, m->p->pc->name, s, &from);
    }
    return st;
}

/* A pair never synced starts from the migration: the daemon then reads only what changed since
 * (our copies included, which it finds linked and unchanged). A pair already synced keeps its
 * cursors. */
static enum cb_status set_cursors(struct migrate *m, struct strbuf *err)
{
    return with_txn(&m->c, commit_cursors, m, err);
}

static long div_up(long a, int b)
{
    return b > 0 ? (a + b - 1) / b : a;
}

/* Requests a copy run would make, from the planning pass's counts and the batch sizes. */
static void estimate(struct migrate *m, int64_t plan_ms, unsigned long plan_requests)
{
    struct sync_pair *p = m->p;
    long n = m->rep->to_copy;
    int writes_back = 0;
    for (const char *const *f = mapping_item_fields(p->map); *f; f++)
        writes_back |= mapping_flows(p->map, *f, m->t);
    m->rep->plan_calls[m->s] = (long)plan_requests + m->pages +
                               (writes_back ? div_up(n, p->ops[m->s]->max_batch_write) : 0);
    m->rep->plan_calls[m->t] = div_up(n, p->ops[m->t]->max_batch_write) +
                               div_up(n, p->ops[m->t]->max_batch_read) + div_up(n, 100);
    /* the source is listed on one connection; the writes and read-backs spread over all */
    double per_call = plan_requests ? (double)plan_ms / (double)plan_requests : 0;
    long listed = (long)plan_requests + m->pages;
    double spread = m->workers ? (double)m->n_workers : 1.0;
    m->rep->plan_seconds =
        per_call *
        ((double)listed +
         (double)(m->rep->plan_calls[0] + m->rep->plan_calls[1] - listed) / spread) /
        1000.0;
}

/* Reads the source from the checkpoint and counts what a copy would do (writes nothing). */
static enum cb_status plan(struct migrate *m, struct strbuf *err)
{
    m->plan = 1;
    m->phase = "plan";
    struct migrate_counts keep = m->rep->n;
    unsigned long r0 = http_total_requests();
    int64_t t0 = cbtime_now_ms();
    struct strbuf e = STRBUF_INIT;
    struct sync_pair *p = m->p;
    enum cb_status st = p->ops[m->s]->list_changed(p->conn[m->s], m->ck.pos_ms, on_page, m, &e);
    if (st == CB_ERR_STOPPED && m->limit_hit && !sync_stop_requested())
        st = CB_OK;
    if (st != CB_OK)
        strbuf_setf(err, "cannot list %s '%s': %s", side_name(m->s), p->ep_name[m->s],
                    e.len ? e.buf : cb_status_str(st));
    strbuf_release(&e);
    estimate(m, cbtime_now_ms() - t0, http_total_requests() - r0);
    if (!m->o->dry_run)
        m->rep->n = keep; /* the copy pass counts for real */
    m->plan = 0;
    m->limit_hit = 0;
    m->queued = 0;
    return st;
}

static enum cb_status run(struct migrate *m, struct strbuf *err)
{
    enum cb_status st = ensure_pinged(m->p, err);
    if (st != CB_OK)
        return st;
    workers_open(m); /* after the pair's own connection got its tokens, which they share */
    st = load_checkpoint(m, err);
    if (st != CB_OK)
        return st;
    m->rep->resumed = m->ck.first_started_ms != 0;
    m->settle_after = m->ck.settled_ms;
    m->rep->was_finished = m->ck.finished;
    if (!m->ck.first_started_ms)
        m->ck.first_started_ms = m->ck.settled_ms = m->rep->started_ms;
    m->rep->first_started_ms = m->ck.first_started_ms;
    if (!m->o->dry_run)
        st = recover(m, err);
    if (st == CB_OK && m->o->match) {
        if ((st = check_match(m->p->map, m->o->match, err)) != CB_OK)
            return st;
        m->phase = "index";
        progress(m);
        st = match_index_build(&m->c, m->t, m->o->match, &m->match, err);
    }
    /* a real run counts the source for its progress where it can, instead of planning: with
     * workers, while they write the first page */
    int counts = !m->o->dry_run && m->o->limit <= 0 && m->p->ops[m->s]->list_changed_ids;
    m->count_later = counts && m->workers;
    if (st == CB_OK && !m->count_later && (!counts || !count_source(m)))
        st = plan(m, err);
    if (st != CB_OK || m->o->dry_run)
        return st;
    m->phase = "copy";
    progress(m);
    m->ck.finished = 0;
    /* saved before the first write, so that every copy made from here on is known as ours */
    st = save_checkpoint(m, err);
    /* with workers, the copies of each page are read back as soon as it is done; those made
     * before (by earlier runs, or recovered above) at the end */
    m->verify_from_ms = m->workers ? cbtime_now_ms() + 1 : INT64_MAX;
    if (st == CB_OK)
        st = walk_source(m, err);
    if (st == CB_ERR_STOPPED && m->limit_hit && !sync_stop_requested())
        st = CB_OK;
    m->rep->stopped = m->limit_hit || st == CB_ERR_STOPPED;
    if (st != CB_OK || m->limit_hit)
        return st;
    m->rep->finished = 1;
    m->ck.finished = 1;
    m->ck.finished_ms = cbtime_now_ms();
    st = save_checkpoint(m, err);
    if (st == CB_OK)
        st = set_cursors(m, err);
    if (st == CB_OK)
        st = verify(m, err);
    return st;
}

enum cb_status migrate_run(struct sync_pair *p, const struct migrate_opts *o,
                           migrate_progress_fn fn, void *arg, struct migrate_report *rep,
                           struct strbuf *err)
{
    struct migrate *m = xcalloc(1, sizeof(*m));
    m->p = p;
    m->o = o;
    m->s = o->from;
    m->t = SIDE_OTHER(o->from);
    m->rep = rep;
    m->fn = fn;
    m->arg = arg;
    m->phase = "plan";
    m->req0 = http_total_requests();
    m->c.p = p;
    m->c.rep = &m->page;
    m->c.cap_ms[0] = m->c.cap_ms[1] = INT64_MAX;
    m->c.started_ms = rep->started_ms = cbtime_now_ms();
    m->c.keep_origin = 1;
    sync_report_init(&m->page);
    m->vr.m = m;
    strbuf_init(&m->vr.err, 0);
    m->verify_from_ms = INT64_MAX;
    snprintf(m->ck_key, sizeof(m->ck_key), "migrate:%s:%s", p->pc->name, side_name(m->s));
    enum cb_status st = parse_filter(p->map, o->filter, &m->conds, &m->n_conds, err);
    if (st == CB_OK) {
        pthread_mutex_init(&m->mu, NULL);
        pthread_cond_init(&m->chunk_ready, NULL);
        pthread_cond_init(&m->chunk_done, NULL);
        st = run(m, err);
        workers_close(m);
        pthread_cond_destroy(&m->chunk_done);
        pthread_cond_destroy(&m->chunk_ready);
        pthread_mutex_destroy(&m->mu);
    }
    sync_people_save(p);
    counts_add(&rep->total, &m->ck.total);
    if (!o->dry_run)
        counts_add(&rep->total, &rep->n);
    rep->requests = http_total_requests() - m->req0;
    rep->finished_ms = cbtime_now_ms();
    page_reset(m);
    sync_report_release(&m->page);
    m->c.creates[m->s] = (struct record_list){0};
    m->c.rep = NULL;
    for (size_t i = 0; i < m->c.n_intents; i++)
        intent_release(&m->c.intents[i]);
    free(m->c.intents);
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < m->c.n_blocked[s]; i++)
            free(m->c.blocked[s][i]);
        free(m->c.blocked[s]);
    }
    free(m->c.w);
    conds_free(m->conds, m->n_conds);
    match_index_free(m->match);
    fresh_release(m);
    strlist_clear(&m->listed.ids);
    strlist_clear(&m->vr.ids);
    strlist_clear(&m->fresh_ids);
    strbuf_release(&m->vr.err);
    cJSON_Delete(m->ck.pos_ids);
    free(m);
    return st;
}

/* ---------------------------------------------------------------- report */

cJSON *migrate_report_json(const struct migrate_report *r, const char *pair, enum side from)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "pair", pair);
    cJSON_AddStringToObject(o, "from", side_name(from));
    cJSON_AddStringToObject(o, "to", side_name(SIDE_OTHER(from)));
    cJSON_AddNumberToObject(o, "migration_started_ms", (double)r->first_started_ms);
    cJSON_AddNumberToObject(o, "started_ms", (double)r->started_ms);
    cJSON_AddNumberToObject(o, "finished_ms", (double)r->finished_ms);
    cJSON_AddBoolToObject(o, "resumed", r->resumed);
    cJSON_AddBoolToObject(o, "finished", r->finished);
    cJSON_AddBoolToObject(o, "stopped", r->stopped);
    cJSON_AddNumberToObject(o, "to_read", (double)r->to_read);
    cJSON_AddNumberToObject(o, "to_copy", (double)r->to_copy);
    cJSON_AddNumberToObject(o, "pending_creates_found", (double)r->intents);
    counts_to_json(cJSON_AddObjectToObject(o, "run"), &r->n);
    counts_to_json(cJSON_AddObjectToObject(o, "migration"), &r->total);
    cJSON_AddNumberToObject(o, "requests", (double)r->requests);
    if (r->verified) {
        cJSON *v = cJSON_AddObjectToObject(o, "verification");
        cJSON_AddNumberToObject(v, "links", (double)r->verify_links);
        cJSON_AddNumberToObject(v, "found_on_target", (double)r->verify_found);
        cJSON_AddNumberToObject(v, "missing", (double)(r->verify_links - r->verify_found));
        cJSON_AddNumberToObject(v, "differ", (double)r->verify_differ);
    }
    add_lines(o, "problems", &r->problems, INT_MAX);
    return o;
}
