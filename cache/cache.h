/*
 * The LMDB cache: one environment under state_dir, named databases opened once. It is the only
 * module that includes lmdb.h. Transactions are short and never span an HTTP request; values are
 * copied out before a transaction ends. A write transaction carries a sticky status: after the
 * first failure every later call is a no-op returning that status, and commit aborts.
 * CB_ERR_NOTFOUND answers are not failures: they never stick.
 *
 * Databases (keys are built from the pair name, a side byte and ids):
 *   links     "R" pair \0 side remote_id -> link id;  "L" pair \0 be64(id) -> link JSON
 *   base      pair \0 be64(link id) -> last agreed item (JSON)
 *   cursors   pair \0 side -> JSON {"ms": newest applied, "listed": listing start}
 *   intents   pair \0 be64(id) -> pending create (JSON)
 *   conflicts be64(id) -> conflict (JSON)
 *   tokens    endpoint name -> AES-256-GCM sealed token blob
 *   meta      "schema_version", "seq", "linkcount:" pair -> counters
 */
#ifndef CB_CACHE_H
#define CB_CACHE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/strbuf.h"

struct cache;
struct cache_txn;

struct link {
    uint64_t id;
    char *remote[2]; /* remote id per side (0 = crm, 1 = tracker) */
    char *key[2];    /* human keys; may be NULL */
    char *url[2];    /* may be NULL */
    int64_t created_ms;
};

struct intent {
    uint64_t id;
    int target;          /* side the record is being created on */
    char *source_id;     /* remote id on the other side */
    char *marker;        /* stored on the created record */
    int64_t created_ms;
    int64_t unsure_ms;   /* when a send's outcome was last unknown (timeout); 0 = never */
    cJSON *base;         /* the base to keep if the create is found after a crash; owned, may
                          * be NULL */
};

struct conflict {
    uint64_t id;
    char *pair;
    uint64_t link_id;
    char *field;            /* canonical item field */
    cJSON *base, *value[2]; /* owned; values per side */
    char *who[2];           /* who changed each side; may be NULL */
    int64_t changed_ms[2];
    char *key[2];           /* record keys at the time, for display */
    int64_t created_ms;
    int resolved;           /* 0 open, 1 resolved (to be written to both sides), 2 applied */
    cJSON *resolution;      /* owned; the value chosen when resolved */
};

/* Opens (creating if needed, mode 0700) the environment in dir. On failure *out stays NULL. */
enum cb_status cache_open(const char *dir, struct cache **out, struct strbuf *err) CB_WUR;
void cache_close(struct cache *c);
/* Drops the memory-mapped database's pages from this process's resident set: they stay in the
 * OS page cache and the next read maps them again (long runs: `migrate` between pages; every
 * whole-table walk below does it by itself every so many records). Never fails; open
 * transactions are unaffected. */
void cache_trim(struct cache *c);

/* Begins a transaction; rdonly = 1 for reads. Aborts on allocation failure only. */
enum cb_status cache_txn_begin(struct cache *c, int rdonly, struct cache_txn **out,
                               struct strbuf *err) CB_WUR;
/* Commits (or, for read-only and failed transactions, ends) and frees txn. Returns the sticky
 * status if an earlier call failed. */
enum cb_status cache_txn_commit(struct cache_txn *txn, struct strbuf *err) CB_WUR;
void cache_txn_abort(struct cache_txn *txn);
enum cb_status cache_txn_status(const struct cache_txn *txn);

void link_release(struct link *l);
void intent_release(struct intent *i);
void conflict_release(struct conflict *c);

/* Links. find: CB_ERR_NOTFOUND when side/remote_id is not linked. put assigns l->id when 0 and
 * indexes both remote ids; a remote id already indexed to another link fails the transaction
 * (CB_ERR_INTERNAL: it would be a duplicate). del removes the link, its reverse index and its
 * base. */
enum cb_status cache_link_find(struct cache_txn *t, const char *pair, int side,
                               const char *remote_id, struct link *out);
enum cb_status cache_link_get(struct cache_txn *t, const char *pair, uint64_t id, struct link *out);
enum cb_status cache_link_put(struct cache_txn *t, const char *pair, struct link *l);
enum cb_status cache_link_del(struct cache_txn *t, const char *pair, uint64_t id);
/* Calls fn for every link of pair in id order; fn returning non-zero stops the walk. l and its
 * strings are the walk's, valid until fn returns. The resident part of the file stays bounded
 * whatever the number of links (see cache_trim). */
enum cb_status cache_link_foreach(struct cache_txn *t, const char *pair,
                                  int (*fn)(void *arg, const struct link *l), void *arg);
/* The number of links of pair, from a counter put and del keep in their transaction (no walk;
 * a cache written before the counters is counted once by cache_open). 0 on failure. */
size_t cache_link_count(struct cache_txn *t, const char *pair);

/* Base item of a link: *out is owned by the caller; CB_ERR_NOTFOUND when none. */
enum cb_status cache_base_get(struct cache_txn *t, const char *pair, uint64_t link_id, cJSON **out);
enum cb_status cache_base_put(struct cache_txn *t, const char *pair, uint64_t link_id,
                              const cJSON *item);

/* Where the next listing of a side starts. */
struct cursor {
    int64_t ms;        /* the newest modified time applied; 0 when never synced */
    int64_t listed_ms; /* the service's time when the last complete listing began, when every
                        * record it returned was applied; 0 when unknown */
};
/* Cursor per side; all zero when never synced. */
enum cb_status cache_cursor_get(struct cache_txn *t, const char *pair, int side, struct cursor *out);
enum cb_status cache_cursor_put(struct cache_txn *t, const char *pair, int side,
                                const struct cursor *c);

/* Intents: put assigns i->id when 0. list appends every intent of pair to *out (caller frees
 * each with intent_release and the array with free). */
enum cb_status cache_intent_put(struct cache_txn *t, const char *pair, struct intent *i);
enum cb_status cache_intent_del(struct cache_txn *t, const char *pair, uint64_t id);
enum cb_status cache_intent_list(struct cache_txn *t, const char *pair, struct intent **out,
                                 size_t *n);

/* Conflicts: put assigns c->id when 0. find_open looks for the open conflict on (pair, link,
 * field). list appends all (pair NULL = every pair), open ones only when open_only. */
enum cb_status cache_conflict_put(struct cache_txn *t, struct conflict *c);
enum cb_status cache_conflict_get(struct cache_txn *t, uint64_t id, struct conflict *out);
enum cb_status cache_conflict_find_open(struct cache_txn *t, const char *pair, uint64_t link_id,
                                        const char *field, struct conflict *out);
enum cb_status cache_conflict_list(struct cache_txn *t, const char *pair, int open_only,
                                   struct conflict **out, size_t *n);

/* Tokens, sealed with AES-256-GCM under a key kept in state_dir/secret.key (0600, created on
 * first use). get: CB_ERR_NOTFOUND when absent, CB_ERR_CACHE when it cannot be decrypted. */
enum cb_status cache_token_get(struct cache_txn *t, const char *endpoint, struct strbuf *out);
enum cb_status cache_token_put(struct cache_txn *t, const char *endpoint, const char *token,
                               size_t len);
enum cb_status cache_token_del(struct cache_txn *t, const char *endpoint);

/* Free-form per-pair state (last cycle report, ...), JSON. put refuses the cache's own keys
 * "schema_version", "seq" and those starting with "linkcount:". */
enum cb_status cache_meta_get(struct cache_txn *t, const char *key, cJSON **out);
enum cb_status cache_meta_put(struct cache_txn *t, const char *key, const cJSON *val);
/* Removes key; an absent key is not an error. Refuses the cache's own keys like put. */
enum cb_status cache_meta_del(struct cache_txn *t, const char *key);

/* Cuts link id of pair and remembers both its records as unlinked, so that neither is synced
 * or created again (`links unlink`, delete policies). CB_ERR_NOTFOUND when there is no such link. */
enum cb_status cache_link_unlink(struct cache_txn *t, const char *pair, uint64_t id);
/* True when record id of side was part of a link of pair that was cut. */
int cache_was_unlinked(struct cache_txn *t, const char *pair, int side, const char *id);

/* Test seam: after n more successful write commits, the next commit kills the process with
 * SIGKILL before committing (n < 0 disables). Read from CRMBRIDGE_CRASH_AFTER_COMMITS too. */
void cache_crash_after_commits(long n);

#endif
