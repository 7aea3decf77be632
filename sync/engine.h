/*
 * The sync engine: runs one pair's cycle (recover intents, pull both sides since their cursors,
 * merge, create and update, commit link, base and cursor). It sees connectors only through
 * connectors/connector.h and the cache only through cache/cache.h.
 */
#ifndef CB_ENGINE_H
#define CB_ENGINE_H

#include "cache/cache.h"
#include "core/config.h"
#include "core/status.h"
#include "core/strbuf.h"
#include "mapping/item.h"

struct sync_pair;

/* What one cycle did; kept by the caller across cycles or printed. */
struct sync_report {
    int read[2];        /* records listed per side (after de-duplication) */
    int created[2];     /* records created on each side */
    int updated[2];     /* records updated on each side */
    int archived[2];    /* records archived on each side by the delete policy */
    int deleted[2];     /* records deleted on each side by the delete policy */
    int comments[2];    /* comments copied to each side */
    int linked;         /* records linked by recovering a lost create */
    int unchanged;      /* listed records with nothing to do (echoes included) */
    int conflicts;      /* new conflicts stored */
    int skipped;        /* records left alone on purpose, with a reason in problems */
    int failed;         /* records that could not be written, with a reason in problems */
    int postponed;      /* records waiting for a later cycle (search lag, rate limit) */
    unsigned long requests; /* HTTP requests made during the cycle */
    struct strbuf problems; /* one line per skipped/failed/postponed record */
    struct strbuf notes;    /* one line per created/updated record and conflict (for summaries) */
};

void sync_report_init(struct sync_report *r);
void sync_report_release(struct sync_report *r);
/* Adds b's counts and lines to a. */
void sync_report_add(struct sync_report *a, const struct sync_report *b);

/* Opens the pair: loads its mapping, opens both connectors (no network yet). On failure *out
 * stays NULL and err says why (config errors as "FILE:LINE: ..."). */
enum cb_status sync_pair_open(const struct config *cfg, const struct pair_conf *pc,
                              struct cache *cache, struct sync_pair **out,
                              struct strbuf *err) CB_WUR;
void sync_pair_close(struct sync_pair *p);
const char *sync_pair_name(const struct sync_pair *p);

/* Authenticates side s and describes it in info. */
enum cb_status sync_pair_ping(struct sync_pair *p, enum side s, struct strbuf *info,
                              struct strbuf *err) CB_WUR;

/* Runs one cycle. Returns CB_OK when the cycle ran (per-record failures are in rep->failed);
 * otherwise the status that stopped it (auth, cache, stop request). The cache is consistent
 * whatever happens: every record's outcome commits in one transaction, and cursors advance only
 * past records that were applied. */
enum cb_status sync_pair_cycle(struct sync_pair *p, struct sync_report *rep,
                               struct strbuf *err) CB_WUR;

/* Makes the pair's next cycle read every linked id for deletions now, whatever delete_sweep
 * says (a webhook told of a deletion, which a service's search never shows). Call it from the
 * thread that runs the pair's cycles. */
void sync_pair_sweep_soon(struct sync_pair *p);

/* Asks running cycles to stop after their in-flight writes (async-signal-safe). */
void sync_request_stop(void);
int sync_stop_requested(void);
void sync_stop_reset(void);

/* Validates the pair against the connectors' own config checks (no network). Appends problems
 * to err; returns CB_ERR_CONFIG when there are any. */
enum cb_status sync_check_pair_config(const struct config *cfg, const struct pair_conf *pc,
                                      struct strbuf *err) CB_WUR;

#endif
