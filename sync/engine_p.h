/*
 * The engine's internals shared by the files of sync/ (engine.c and migrate.c): the open pair,
 * one cycle's state and the steps of a cycle that a one-shot migration reuses page by page
 * (intent recovery, the create path, reading records back, merge and write). Not a public API:
 * cli/ and the connectors never include it.
 */
#ifndef CB_ENGINE_P_H
#define CB_ENGINE_P_H

#include "cache/cache.h"
#include "connectors/connector.h"
#include "mapping/mapping.h"
#include "sync/engine.h"

struct sync_pair {
    const struct pair_conf *pc;
    struct cache *cache;
    struct mapping *map;
    const struct connector_ops *ops[2];
    struct connector *conn[2];
    const char *ep_name[2];
    int pinged[2];
    int create_from[2]; /* may a record first seen on side s be created on the other side? */
    int64_t settle_ms;  /* a create that timed out may still land this long after it was sent */
    int sweep_soon;     /* the next cycle sweeps linked ids for deletions (a delete webhook) */
};

/* A linked (or about to be linked) pair of records processed in this cycle. */
struct work {
    struct link link;
    struct record rec[2]; /* id == NULL when not (yet) known */
    cJSON *view[2];
    cJSON *base;
    cJSON *pending;       /* the base a write of the last cycle was to record, if it never
                           * was (a crash between the write and the commit); owned */
    int recovered;        /* linked by intent recovery: no base yet */
    int done;
    cJSON *forced;        /* field -> value chosen by a person (resolved conflicts), or NULL */
    cJSON *forced_was;    /* field -> [crm, tracker] values the person chose between */
    uint64_t *resolved;   /* ids of those conflicts, marked applied with the base */
    size_t n_resolved;
    int assumed[2]; /* rec[s] and view[s] stand for the stored base: side s's complete
                     * listing did not show the record, so it is unchanged (not read) */
    int recheck;    /* a write to an assumed side failed: read it and merge once more */
};

struct cycle {
    struct sync_pair *p;
    struct sync_report *rep;
    struct record_list pulled[2];
    int64_t max_ms[2];
    int64_t cap_ms[2];    /* cursor may not pass this (a record left for later); INT64_MAX = none */
    int64_t listed_ms[2]; /* the service's time when this cycle's listing began; 0 unknown */
    int listed_all[2];    /* side s's listing of this cycle ran to its end */
    int rechecking;       /* deletes_apply: only the work items marked recheck, no sweep */
    struct work *w;
    size_t n_w, alloc_w;
    struct record_list creates[2]; /* unlinked records of side s to create on the other side */
    struct intent *intents;
    size_t n_intents;
    size_t n_stale;       /* intents whose record was not found after the search lag */
    char **blocked[2];    /* source ids whose create waits (search lag) */
    size_t n_blocked[2];
    int64_t started_ms;
    int keep_origin;      /* migrate: creates keep the originals' creation time and creator
                           * where the target can */
};

/* People (sync/people.c): after side s is pinged, hands its user directory and person fields
 * to the mapping (info gets ", N user(s)"); never fails the ping. */
void sync_people_load(struct sync_pair *p, enum side s, struct strbuf *info);
/* Keeps the people the mapping found no user for since the last call (for `crmbridge status`). */
void sync_people_save(struct sync_pair *p);

/* One line in the report: cycle_problem for a skipped, failed or postponed record (the
 * counter is the caller's), cycle_note for what was done. */
void cycle_problem(struct cycle *c, const char *fmt, ...) CB_PRINTF(2, 3);
void cycle_note(struct cycle *c, const char *fmt, ...) CB_PRINTF(2, 3);
/* "KEY" or "id" of a record, for messages. */
const char *rec_label(const struct record *r);
/* Keeps side s's cursor at or below ms (a record left for a later cycle). */
void cap_cursor(struct cycle *c, enum side s, int64_t ms);
/* Adds array `name` to o with the first max lines of lines, one string each. */
void add_lines(cJSON *o, const char *name, const struct strbuf *lines, int max);
/* HTTP requests the pair's two connectors have sent since they were opened (other pairs'
 * requests, in other threads, are not counted). */
unsigned long sync_pair_requests(const struct sync_pair *p);
/* Runs fn inside one write transaction and commits it; err says why it failed. */
enum cb_status with_txn(struct cycle *c, enum cb_status (*fn)(struct cache_txn *, void *),
                        void *arg, struct strbuf *err);
/* The item view of record r of side s (owned by the caller). */
cJSON *map_record(struct cycle *c, enum side s, const struct record *r);
/* Appends a zeroed work item to c (the pointer stays valid until the next work_add). */
struct work *work_add(struct cycle *c);
/* Frees what w owns (not w itself). */
void work_release(struct work *w);
/* Pings each side once per pair (the first list or write needs it). */
enum cb_status ensure_pinged(struct sync_pair *p, struct strbuf *err);
/* How long a write to side s may stay invisible to its listing. */
int64_t lag_of(const struct sync_pair *p, enum side s);
/* Where a listing of side s starts for cursor cu (epoch ms; 0 = everything). */
int64_t sync_listing_since(const struct sync_pair *p, enum side s, const struct cursor *cu);
/* Step 1: loads the pair's intents into c->intents and links the creates an interruption left
 * behind (as work items with `recovered` set); young unfound ones are blocked. */
enum cb_status recover_intents(struct cycle *c, struct strbuf *err);
/* 1 when the create of side s record id waits (search lag) in this cycle. */
int is_blocked(struct cycle *c, enum side s, const char *id);
/* Loads the stored base of every work item not recovered. */
enum cb_status load_bases(struct cycle *c, struct strbuf *err);
/* Reads side s of every unfinished work item that lacks it, in batches of max_batch_read. */
enum cb_status fetch_side(struct cycle *c, enum side s, struct strbuf *err);
/* Merges and writes every unfinished work item from index `from` on. */
enum cb_status merge_and_write(struct cycle *c, size_t from, struct strbuf *err);
/* Step 4b (sync/deletes.c): linked records archived or deleted on one side follow the pair's
 * delete policy on the other, behind the mass-delete guard; their work items are marked done. */
enum cb_status deletes_apply(struct cycle *c, struct strbuf *err);
/* Step 6: creates c->creates[s] on the other side in batches of max_batch_write, each behind a
 * journaled intent and a marker, and links each new record (a work item to read back). */
enum cb_status create_side(struct cycle *c, enum side s, struct strbuf *err);

#endif
