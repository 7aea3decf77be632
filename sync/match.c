/*
 * `crmbridge migrate --match FIELD`: an index of the target's unlinked records by the value of one
 * item field (an external id, a key typed in by hand), so that a migration into a non-empty
 * target links a source record to the record already there instead of copying it. One listing
 * of the target, kept as value, id, key and url per record (about 100 bytes each). Values
 * compare trimmed and case-insensitively; a value two target records share links neither.
 */
#define LOG_MODULE "migrate"
#include "sync/match_p.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

struct entry {
    char *value;
    struct record stub; /* id, key, url only */
    int dup;            /* another record has the same value: never matched */
    int used;
};

struct match_index {
    struct cycle *c;
    enum side t;
    const char *field;
    struct cache_txn *txn;
    struct entry *v;
    size_t n, alloc;
    size_t linked_skipped;
};

/* The trimmed string value of item field f in view, or NULL when empty or not a string. */
static char *value_of(const cJSON *view, const char *f)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(view, f));
    if (!s)
        return NULL;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return n ? xstrndup(s, n) : NULL;
}

static enum cb_status on_target(void *arg, struct record *recs, size_t n)
{
    struct match_index *ix = arg;
    for (size_t i = 0; i < n; i++) {
        struct link l = {0};
        if (!recs[i].id || recs[i].gone)
            continue;
        if (cache_link_find(ix->txn, ix->c->p->pc->name, (int)ix->t, recs[i].id, &l) == CB_OK) {
            link_release(&l); /* already linked: not a candidate */
            ix->linked_skipped++;
            continue;
        }
        cJSON *view = map_record(ix->c, ix->t, &recs[i]);
        char *v = value_of(view, ix->field);
        cJSON_Delete(view);
        if (!v)
            continue;
        if (ix->n == ix->alloc) {
            ix->alloc = ix->alloc ? 2 * ix->alloc : 256;
            ix->v = xrealloc(ix->v, ix->alloc * sizeof(*ix->v));
        }
        struct entry *e = &ix->v[ix->n++];
        memset(e, 0, sizeof(*e));
        e->value = v;
        e->stub.id = xstrdup(recs[i].id);
        e->stub.key = recs[i].key ? xstrdup(recs[i].key) : NULL;
        e->stub.url = recs[i].url ? xstrdup(recs[i].url) : NULL;
        e->stub.modified_ms = recs[i].modified_ms;
    }
    return CB_OK;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcasecmp(((const struct entry *)a)->value, ((const struct entry *)b)->value);
}

enum cb_status match_index_build(struct cycle *c, enum side t, const char *field,
                                 struct match_index **out, struct strbuf *err)
{
    struct match_index *ix = xcalloc(1, sizeof(*ix));
    ix->c = c;
    ix->t = t;
    ix->field = field;
    enum cb_status st = cache_txn_begin(c->p->cache, 1, &ix->txn, err);
    if (st == CB_OK) {
        st = c->p->ops[t]->list_changed(c->p->conn[t], 0, on_target, ix, err);
        cache_txn_abort(ix->txn);
        ix->txn = NULL;
    }
    if (st != CB_OK) {
        match_index_free(ix);
        return st;
    }
    qsort(ix->v, ix->n, sizeof(*ix->v), cmp_entry);
    for (size_t i = 1; i < ix->n; i++)
        if (strcasecmp(ix->v[i].value, ix->v[i - 1].value) == 0)
            ix->v[i].dup = ix->v[i - 1].dup = 1;
    log_info("%s records to match by '%s': %zu unlinked with a value, %zu already linked",
             side_name(t), field, ix->n, ix->linked_skipped);
    *out = ix;
    return CB_OK;
}

const struct record *match_index_find(struct match_index *ix, const cJSON *view, int take,
                                      int *ambiguous)
{
    *ambiguous = 0;
    char *v = value_of(view, ix->field);
    if (!v)
        return NULL;
    struct entry key = {.value = v};
    struct entry *e = bsearch(&key, ix->v, ix->n, sizeof(*ix->v), cmp_entry);
    free(v);
    if (!e || e->used)
        return NULL;
    if (e->dup) {
        *ambiguous = 1;
        return NULL;
    }
    e->used = take;
    return &e->stub;
}

void match_index_free(struct match_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->n; i++) {
        free(ix->v[i].value);
        record_release(&ix->v[i].stub);
    }
    free(ix->v);
    free(ix);
}
