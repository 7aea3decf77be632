/*
 * People on a pair: after a side is pinged, its user directory and person fields go to the
 * mapping (mapping_set_people), and the people a write found no user for are kept in the cache
 * (meta "people:<pair>") for `crmbridge status`, until a directory or the mapping's table knows
 * them. A directory that cannot be read never stops the sync: its people count as unmapped.
 */
#define LOG_MODULE "people"
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "sync/engine_p.h"

#define UNMAPPED_CAP 500 /* people kept per pair; the oldest seen go first */

static void meta_key(const struct sync_pair *p, struct strbuf *key)
{
    (void)strbuf_addf(key, "people:%s", p->pc->name);
}

/* Drops the entries of side s that the mapping can now place. Returns 1 when it dropped any. */
static int prune(struct sync_pair *p, enum side s, cJSON *stored)
{
    int dropped = 0;
    cJSON *e = stored ? stored->child : NULL;
    while (e) {
        cJSON *next = e->next;
        const char *side = cJSON_GetStringValue(cJSON_GetObjectItem(e, "side"));
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(e, "name"));
        if (side && name && !strcmp(side, side_name(s)) && mapping_person_known(p->map, s, name)) {
            cJSON_Delete(cJSON_DetachItemViaPointer(stored, e));
            dropped = 1;
        }
        e = next;
    }
    return dropped;
}

/* Reads meta "people:<pair>", lets fn change it, writes it back when fn says so. */
static void update_stored(struct sync_pair *p, int (*fn)(struct sync_pair *, cJSON *, void *),
                          void *arg)
{
    struct strbuf key = STRBUF_INIT, err = STRBUF_INIT;
    meta_key(p, &key);
    struct cache_txn *t;
    if (cache_txn_begin(p->cache, 0, &t, &err) != CB_OK) {
        log_warn("pair '%s': cannot keep unmapped people: %s", p->pc->name, err.buf);
        goto out;
    }
    cJSON *stored = NULL;
    if (cache_meta_get(t, key.buf, &stored) != CB_OK || !cJSON_IsArray(stored)) {
        cJSON_Delete(stored);
        stored = cJSON_CreateArray();
    }
    if (fn(p, stored, arg) && cache_meta_put(t, key.buf, stored) == CB_OK) {
        if (cache_txn_commit(t, &err) != CB_OK)
            log_warn("pair '%s': cannot keep unmapped people: %s", p->pc->name, err.buf);
    } else {
        cache_txn_abort(t);
    }
    cJSON_Delete(stored);
out:
    strbuf_release(&key);
    strbuf_release(&err);
}

static int prune_fn(struct sync_pair *p, cJSON *stored, void *arg)
{
    return prune(p, *(enum side *)arg, stored);
}

void sync_people_load(struct sync_pair *p, enum side s, struct strbuf *info)
{
    const struct connector_ops *o = p->ops[s];
    if (!o->list_users || !o->person_field)
        return;
    const char *const *rf = mapping_remote_fields(p->map, s);
    size_t n = 0;
    while (rf[n])
        n++;
    const char **pf = xcalloc(n + 1, sizeof(*pf));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (rf[i][0] != '$' && o->person_field(p->conn[s], rf[i]))
            pf[k++] = rf[i];
    if (k == 0) { /* no person field mapped: no directory to read (it costs requests) */
        free(pf);
        return;
    }
    struct person_list users = {0};
    struct strbuf err = STRBUF_INIT;
    if (o->list_users(p->conn[s], &users, &err) != CB_OK) {
        /* not retried every cycle (a missing scope would cost a request and a warning each
         * time): the next start or reload asks again */
        log_warn("pair '%s': cannot list the users of %s endpoint '%s': %s; people count as "
                 "unmapped there until the next start",
                 p->pc->name, side_name(s), p->ep_name[s], err.buf);
        person_list_release(&users);
    } else if (info) {
        (void)strbuf_addf(info, ", %zu user(s)", users.n);
    }
    strbuf_release(&err);
    size_t known = users.n;
    mapping_set_people(p->map, s, &users, pf); /* takes users over */
    free(pf);
    if (known)
        update_stored(p, prune_fn, &s);
}

static int same_string(const cJSON *a, const cJSON *b, const char *name)
{
    const char *x = cJSON_GetStringValue(cJSON_GetObjectItem(a, name));
    const char *y = cJSON_GetStringValue(cJSON_GetObjectItem(b, name));
    return x && y && strcmp(x, y) == 0;
}

static cJSON *find_entry(cJSON *stored, const cJSON *u)
{
    cJSON *e;
    cJSON_ArrayForEach(e, stored)
    {
        int same = 1;
        static const char *const keys[] = {"side", "field", "name"};
        for (int i = 0; i < 3 && same; i++)
            same = same_string(e, u, keys[i]);
        if (same)
            return e;
    }
    return NULL;
}

static void set_num(cJSON *o, const char *name, double v)
{
    cJSON *n = cJSON_GetObjectItem(o, name);
    if (n)
        cJSON_SetNumberValue(n, v);
    else
        cJSON_AddNumberToObject(o, name, v);
}

static int merge_fn(struct sync_pair *p, cJSON *stored, void *arg)
{
    (void)p;
    double now = (double)cbtime_now_ms();
    cJSON *u;
    cJSON_ArrayForEach(u, (cJSON *)arg)
    {
        cJSON *e = find_entry(stored, u);
        if (!e) {
            e = cJSON_Duplicate(u, 1);
            set_num(e, "first_ms", now);
            cJSON_AddItemToArray(stored, e);
        }
        set_num(e, "last_ms", now);
    }
    while (cJSON_GetArraySize(stored) > UNMAPPED_CAP) {
        cJSON *oldest = stored->child;
        cJSON_ArrayForEach(u, stored)
        {
            if (cJSON_GetObjectItem(u, "last_ms")->valuedouble <
                cJSON_GetObjectItem(oldest, "last_ms")->valuedouble)
                oldest = u;
        }
        cJSON_Delete(cJSON_DetachItemViaPointer(stored, oldest));
    }
    return 1;
}

void sync_people_save(struct sync_pair *p)
{
    cJSON *found = mapping_take_unmapped(p->map);
    if (cJSON_GetArraySize(found) > 0) {
        for (const cJSON *u = found->child; u; u = u->next)
            log_warn("pair '%s': %s has no user on the %s side ('%s' %s)", p->pc->name,
                     cJSON_GetStringValue(cJSON_GetObjectItem(u, "name")),
                     cJSON_GetStringValue(cJSON_GetObjectItem(u, "side")),
                     cJSON_GetStringValue(cJSON_GetObjectItem(u, "field")),
                     cJSON_IsTrue(cJSON_GetObjectItem(u, "fallback")) ? "set to the fallback"
                                                                      : "left as it is");
        update_stored(p, merge_fn, found);
    }
    cJSON_Delete(found);
}
