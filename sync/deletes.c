/*
 * Step 4b of a cycle: linked records that went away on one side. A record is gone when its side
 * archived it (a closed card, an invalidated Fxiaoke record: the connector sets record.gone) or
 * no longer returns it (deleted: found missing when read by id, or by the periodic sweep of all
 * linked ids, the only way to see a Jira deletion without a webhook). The pair's `deletes` policy
 * decides: ignore (the default: the other record stays, the link is reported), archive or
 * delete the other record; then the link is cut so that neither record is synced or re-created.
 * A guard refuses a cycle that would archive or delete more than `delete_guard` percent of the
 * pair's links, as an emptied or misconfigured side would look exactly like that.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "sync/engine_p.h"

struct removal {
    struct link link; /* a copy (owned) */
    enum side gone;   /* the side whose record went */
    int archived;     /* 1: archived there; 0: deleted there */
};

struct removals {
    struct removal *v;
    size_t n, alloc;
};

enum policy { KEEP, ARCHIVE, DELETE };

static enum policy policy_of(const struct sync_pair *p)
{
    const char *d = p->pc->deletes;
    return !d || !strcmp(d, "ignore") ? KEEP : !strcmp(d, "delete") ? DELETE : ARCHIVE;
}

static void link_dup(struct link *dst, const struct link *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->id = src->id;
    dst->created_ms = src->created_ms;
    for (int s = 0; s < 2; s++) {
        dst->remote[s] = src->remote[s] ? xstrdup(src->remote[s]) : NULL;
        dst->key[s] = src->key[s] ? xstrdup(src->key[s]) : NULL;
        dst->url[s] = src->url[s] ? xstrdup(src->url[s]) : NULL;
    }
}

static void add(struct removals *rs, const struct link *l, enum side gone, int archived)
{
    if (rs->n == rs->alloc) {
        rs->alloc = rs->alloc ? rs->alloc * 2 : 16;
        rs->v = xrealloc(rs->v, rs->alloc * sizeof(*rs->v));
    }
    struct removal *r = &rs->v[rs->n++];
    link_dup(&r->link, l);
    r->gone = gone;
    r->archived = archived;
}

static void removals_release(struct removals *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        link_release(&rs->v[i].link);
    free(rs->v);
}

static const char *label(const struct link *l, enum side s)
{
    return l->key[s] ? l->key[s] : l->remote[s] ? l->remote[s] : "?";
}

/* The cycle's own work items: a side that could not be read back, or that shows archived. */
static void from_work(struct cycle *c, struct removals *rs)
{
    for (size_t i = 0; i < c->n_w; i++) {
        struct work *w = &c->w[i];
        if (w->recovered || !w->link.id || (c->rechecking && !w->recheck))
            continue;
        for (int si = 0; si < 2; si++) {
            enum side s = (enum side)si, o = SIDE_OTHER(s);
            /* unchanged items (done) were not read back: only an archive shows there */
            int missing = !w->done && w->link.remote[s] && !w->rec[s].id;
            int archived = w->rec[s].id && w->rec[s].gone && !w->rec[o].gone;
            if ((missing && w->rec[o].id) || archived) {
                add(rs, &w->link, s, archived);
                w->done = 1; /* not merged: it follows the policy instead */
                break;
            }
        }
    }
}

/* ---- the sweep of every linked id ---- */

struct sweep {
    const struct removals *found; /* already known gone: not read again */
    char **ids[2];
    uint64_t *link_ids;
    size_t n, alloc;
};

static int known(const struct removals *rs, uint64_t id)
{
    for (size_t i = 0; i < rs->n; i++)
        if (rs->v[i].link.id == id)
            return 1;
    return 0;
}

static int collect_link(void *arg, const struct link *l)
{
    struct sweep *sw = arg;
    if (!l->remote[0] || !l->remote[1] || known(sw->found, l->id))
        return 0;
    if (sw->n == sw->alloc) {
        sw->alloc = sw->alloc ? sw->alloc * 2 : 256;
        for (int s = 0; s < 2; s++)
            sw->ids[s] = xrealloc(sw->ids[s], sw->alloc * sizeof(char *));
        sw->link_ids = xrealloc(sw->link_ids, sw->alloc * sizeof(uint64_t));
    }
    for (int s = 0; s < 2; s++)
        sw->ids[s][sw->n] = xstrdup(l->remote[s]);
    sw->link_ids[sw->n++] = l->id;
    return 0;
}

static void sweep_release(struct sweep *sw)
{
    for (size_t i = 0; i < sw->n; i++)
        for (int s = 0; s < 2; s++)
            free(sw->ids[s][i]);
    for (int s = 0; s < 2; s++)
        free(sw->ids[s]);
    free(sw->link_ids);
}

static const struct record *find_rec(const struct record_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].id, id))
            return &l->v[i];
    return NULL;
}

/* Reads side s of every swept link in batches; state[i] |= 1 missing, 2 archived. */
static enum cb_status sweep_side(struct cycle *c, struct sweep *sw, enum side s, unsigned char *state,
                                 struct strbuf *err)
{
    const struct sync_pair *p = c->p;
    size_t max = (size_t)(p->ops[s]->max_batch_read > 0 ? p->ops[s]->max_batch_read : 1);
    for (size_t i = 0; i < sw->n; i += max) {
        size_t k = sw->n - i < max ? sw->n - i : max;
        struct record_list got = {0};
        enum cb_status st = p->ops[s]->get_many(p->conn[s], (const char *const *)sw->ids[s] + i, k,
                                                &got, err);
        for (size_t j = 0; j < k && st == CB_OK; j++) {
            const struct record *r = find_rec(&got, sw->ids[s][i + j]);
            state[i + j] |= (unsigned char)(!r ? 1 : r->gone ? 2 : 0) << (2 * s);
        }
        record_list_release(&got);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

static int sweep_due(struct cycle *c, struct cache_txn *t, const char *key)
{
    int every = c->p->pc->delete_sweep_s;
    if (c->p->sweep_soon)
        return 1;
    if (every <= 0)
        return 0;
    cJSON *last = NULL;
    int due = cache_meta_get(t, key, &last) != CB_OK || !cJSON_IsNumber(last) ||
              cbtime_now_ms() - (int64_t)last->valuedouble >= (int64_t)every * 1000;
    cJSON_Delete(last);
    return due;
}

struct sweep_mark {
    const char *key;
};

static enum cb_status mark_swept(struct cache_txn *t, void *arg)
{
    struct sweep_mark *m = arg;
    cJSON *now = cJSON_CreateNumber((double)cbtime_now_ms());
    enum cb_status st = cache_meta_put(t, m->key, now);
    cJSON_Delete(now);
    return st;
}

static enum cb_status get_link(struct cycle *c, uint64_t id, struct link *out, struct strbuf *err)
{
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(c->p->cache, 1, &t, err);
    if (st == CB_OK) {
        st = cache_link_get(t, c->p->pc->name, id, out);
        cache_txn_abort(t);
    }
    return st;
}

/* Every sweep interval: read each linked id not seen this cycle, to find what went silently. */
static enum cb_status from_sweep(struct cycle *c, struct removals *rs, struct strbuf *err)
{
    struct strbuf key = STRBUF_INIT;
    (void)strbuf_addf(&key, "sweep:%s", c->p->pc->name);
    struct sweep sw = {.found = rs};
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(c->p->cache, 1, &t, err);
    int due = 0;
    if (st == CB_OK) {
        due = sweep_due(c, t, key.buf);
        if (due)
            st = cache_link_foreach(t, c->p->pc->name, collect_link, &sw);
        cache_txn_abort(t);
    }
    unsigned char *state = xcalloc(sw.n + 1, 1);
    for (int s = 0; s < 2 && st == CB_OK && due; s++) {
        st = sweep_side(c, &sw, (enum side)s, state, err);
        if (st == CB_ERR_TEMP || st == CB_ERR_WAIT || st == CB_ERR_PARSE || st == CB_ERR_FINAL) {
            /* a failed sweep finds nothing and runs again next cycle; the sync goes on */
            cycle_problem(c, "delete sweep of %s postponed: %s", side_name((enum side)s), err->buf);
            c->rep->postponed++;
            strbuf_reset(err);
            st = CB_OK;
            due = 0;
            memset(state, 0, sw.n + 1);
        }
    }
    for (size_t i = 0; i < sw.n && st == CB_OK; i++) {
        int crm = state[i] & 3, trk = (state[i] >> 2) & 3;
        if ((crm && trk) || (!crm && !trk))
            continue; /* both present, or both gone: nothing to carry over */
        struct link l = {0};
        if (get_link(c, sw.link_ids[i], &l, err) == CB_OK)
            add(rs, &l, crm ? SIDE_CRM : SIDE_TRACKER, (crm ? crm : trk) == 2);
        link_release(&l);
    }
    if (st == CB_OK && due) {
        c->p->sweep_soon = 0;
        struct sweep_mark m = {key.buf};
        st = with_txn(c, mark_swept, &m, err);
        log_debug("pair '%s': swept %zu links for deletes", c->p->pc->name, sw.n);
    }
    free(state);
    sweep_release(&sw);
    strbuf_release(&key);
    return st;
}

/* ---- applying the policy ---- */

struct unlink_arg {
    const char *pair;
    uint64_t id;
};

static enum cb_status do_unlink(struct cache_txn *t, void *arg)
{
    struct unlink_arg *u = arg;
    enum cb_status st = cache_link_unlink(t, u->pair, u->id);
    return st == CB_ERR_NOTFOUND ? CB_OK : st;
}

/* A side without an archive of its own archives by moving the record to archive_status. */
static enum cb_status archive_by_status(struct cycle *c, enum side t, const char *id,
                                        struct strbuf *err)
{
    const struct sync_pair *p = c->p;
    cJSON *patch = cJSON_CreateObject();
    cJSON_AddStringToObject(patch, "status", p->pc->archive_status);
    struct strbuf warn = STRBUF_INIT;
    cJSON *remote = mapping_to_remote(p->map, t, patch, &warn);
    strbuf_release(&warn);
    enum cb_status st = CB_OK;
    if (cJSON_GetArraySize(remote) == 0) {
        strbuf_setf(err, "the mapping gives no %s status for '%s' (archive_status)", side_name(t),
                    p->pc->archive_status);
        st = CB_ERR_FINAL;
    } else {
        struct write_op op;
        write_op_init(&op);
        op.id = id;
        op.fields = remote;
        st = p->ops[t]->write(p->conn[t], &op, 1, err);
        if (st == CB_OK && op.st != CB_OK) {
            st = op.st;
            strbuf_setf(err, "%s", op.err.len ? op.err.buf : cb_status_str(op.st));
        }
        write_op_release(&op);
    }
    cJSON_Delete(remote);
    cJSON_Delete(patch);
    return st;
}

static enum cb_status act_on(struct cycle *c, enum policy pol, enum side t, const char *id,
                             struct strbuf *err)
{
    const struct sync_pair *p = c->p;
    if (pol == DELETE) {
        if (p->ops[t]->remove)
            return p->ops[t]->remove(p->conn[t], id, err);
        strbuf_setf(err, "%s '%s' (%s) cannot delete records; use deletes = \"archive\"",
                    side_name(t), p->ep_name[t], p->ops[t]->name);
        return CB_ERR_FINAL;
    }
    if (p->ops[t]->archive)
        return p->ops[t]->archive(p->conn[t], id, err);
    return archive_by_status(c, t, id, err);
}

static enum cb_status apply_one(struct cycle *c, enum policy pol, const struct removal *rm)
{
    enum side g = rm->gone, t = SIDE_OTHER(g);
    const struct link *l = &rm->link;
    const char *why = rm->archived ? "was archived" : "is gone (deleted or invalidated)";
    struct strbuf e = STRBUF_INIT;
    enum cb_status st = act_on(c, pol, t, l->remote[t], &e);
    if (st == CB_ERR_NOTFOUND)
        st = CB_OK; /* already gone there too */
    if (st == CB_OK) {
        struct unlink_arg u = {c->p->pc->name, l->id};
        st = with_txn(c, do_unlink, &u, &e);
    }
    if (st == CB_OK) {
        if (pol == DELETE)
            c->rep->deleted[t]++;
        else
            c->rep->archived[t]++;
        cycle_note(c, "%s %s '%s': %s '%s' %s", pol == DELETE ? "deleted" : "archived",
                   side_name(t), label(l, t), side_name(g), label(l, g), why);
    } else {
        c->rep->failed++;
        cycle_problem(c, "cannot %s %s '%s' (%s '%s' %s): %s",
                      pol == DELETE ? "delete" : "archive", side_name(t), label(l, t), side_name(g),
                      label(l, g), why, e.buf);
    }
    strbuf_release(&e);
    return st == CB_ERR_AUTH || st == CB_ERR_STOPPED || st == CB_ERR_CACHE ? st : CB_OK;
}

static size_t link_count(struct cycle *c)
{
    struct cache_txn *t;
    struct strbuf e = STRBUF_INIT;
    size_t n = 0;
    if (cache_txn_begin(c->p->cache, 1, &t, &e) == CB_OK) {
        n = cache_link_count(t, c->p->pc->name);
        cache_txn_abort(t);
    }
    strbuf_release(&e);
    return n;
}

/* The guard: refuses when more than delete_guard percent of the links would go at once. */
static int refused(struct cycle *c, enum policy pol, const struct removals *rs)
{
    size_t links = link_count(c);
    int pct = c->p->pc->delete_guard_pct;
    if (rs->n < 2 || rs->n * 100 <= (size_t)pct * links)
        return 0;
    c->rep->skipped += (int)rs->n;
    cycle_problem(c,
                  "refused to %s %zu of %zu linked records (more than delete_guard = %d%%): is a "
                  "side emptied or misconfigured? Nothing was %s; raise delete_guard to allow it",
                  pol == DELETE ? "delete" : "archive", rs->n, links, pct,
                  pol == DELETE ? "deleted" : "archived");
    for (size_t i = 0; i < rs->n; i++) {
        const struct removal *r = &rs->v[i];
        cycle_problem(c, "held: %s '%s' %s", side_name(r->gone), label(&r->link, r->gone),
                      r->archived ? "was archived" : "is gone");
    }
    return 1;
}

enum cb_status deletes_apply(struct cycle *c, struct strbuf *err)
{
    enum policy pol = policy_of(c->p);
    if (pol == KEEP)
        return CB_OK; /* merge_and_write reports each link whose record went, and keeps it */
    struct removals rs = {0};
    from_work(c, &rs);
    enum cb_status st = c->rechecking ? CB_OK : from_sweep(c, &rs, err); /* swept already */
    if (st == CB_OK && rs.n && !refused(c, pol, &rs))
        for (size_t i = 0; i < rs.n && st == CB_OK; i++)
            st = apply_one(c, pol, &rs.v[i]);
    removals_release(&rs);
    return st;
}
