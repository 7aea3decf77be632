/*
 * One-shot migration (backfill) of a pair: copies every matching record of one side to the other
 * through the engine's own create path (intent, marker, batched write, link, read back, merge),
 * page by page, with a checkpoint in the cache so that an interrupted run continues where it
 * stopped and never creates a duplicate. It never prints: progress goes through a callback and
 * the outcome into a struct migrate_report that cli/ shows.
 */
#ifndef CB_MIGRATE_H
#define CB_MIGRATE_H

#include <stdint.h>

#include "core/config.h"
#include "core/status.h"
#include "core/strbuf.h"
#include "mapping/item.h"
#include "sync/engine.h"

struct migrate_opts {
    enum side from;     /* copy records of this side to the other one */
    const char *filter; /* "field=value,field!=value" on item fields (AND); NULL = every record */
    long limit;         /* copy at most this many records in this run (0 = no limit) */
    int dry_run;        /* plan only: read and count, write nothing (not even the checkpoint) */
    int workers;        /* connections writing in parallel (each its own connectors); <= 1 = one */
    int no_comments;    /* copy the records only, not their comments */
    const char *match;  /* item field: link a source record to the target record with the same
                         * value (an external id) instead of copying it; NULL = by marker only */
    const struct config *cfg; /* to open those connections; NULL = one connection */
};

/* Counts of this run (the checkpoint keeps the migration's totals across runs). */
struct migrate_counts {
    long read;      /* source records listed in scope (records this migration linked are not
                     * counted again when a write moves them to the end of the listing) */
    long filtered;  /* not matching --filter, or outside the side's own filter (scope) */
    long already;   /* linked before this migration started: left alone */
    long created;   /* copied to the target and linked */
    long linked;    /* linked to a record already on the target (a create found by its marker) */
    long skipped;   /* left alone on purpose, reason in problems */
    long failed;    /* could not be copied, reason in problems */
    long postponed; /* to retry by running the migration again (rate limit, search lag) */
    long updated;   /* records written after the copy (the target's key back on the source...) */
    long comments;  /* comments copied with the records */
};

struct migrate_progress {
    struct migrate_counts n;
    long total;             /* records to copy found by the planning pass, or (to_read) to read */
    long done;              /* of those, handled so far (created, linked, skipped, failed; and when
                             * counting what was read, already linked or filtered out too) */
    int64_t started_ms;     /* this run */
    unsigned long requests; /* HTTP requests so far in this run */
    const char *phase;      /* "plan", "copy", "verify" */
};

/* Called after each page (and phase change); p is borrowed for the call. */
typedef void (*migrate_progress_fn)(void *arg, const struct migrate_progress *p);

struct migrate_report {
    struct migrate_counts n;     /* this run */
    struct migrate_counts total; /* the whole migration, over every run */
    long to_read;                /* source records from the position on, as its ids listing
                                  * counted them (instead of a planning pass); 0 = not counted */
    long to_copy;                /* planning pass: records that would be copied */
    long to_settle;              /* planning pass: copies of an interrupted page to finish */
    long to_link;                /* planning pass: records --match would link to existing ones */
    long intents;                /* creates of an earlier run whose outcome was unknown */
    unsigned long requests;      /* HTTP requests made by this run */
    int64_t first_started_ms;    /* when the migration began (its first run) */
    int64_t started_ms, finished_ms;
    int resumed;      /* 1 when a checkpoint was found */
    int finished;     /* 1 when the listing reached its end (nothing left to copy) */
    int was_finished; /* 1 when an earlier run had already finished it */
    int stopped;      /* 1 when a stop request or --limit ended the run early */
    /* dry run: the plan */
    long plan_calls[2];  /* estimated requests per side */
    double plan_seconds; /* estimated duration at the measured request time */
    /* verification: migrated links against the target's listing */
    long verify_links;      /* links this migration made */
    long verify_found;      /* of those, target records read back from the target by id */
    long verify_differ;     /* target records that no longer match what was agreed */
    int verified;           /* 1 when the verification pass ran */
    struct strbuf problems; /* one line per skipped, failed or postponed record */
};

void migrate_report_init(struct migrate_report *r);
void migrate_report_release(struct migrate_report *r);
/* The report as JSON (owned by the caller). */
cJSON *migrate_report_json(const struct migrate_report *r, const char *pair, enum side from);

/* Validates o's --filter expression and --match field against the pair's item fields;
 * CB_ERR_CONFIG with a message naming the bad part otherwise. */
enum cb_status migrate_check_opts(struct sync_pair *p, const struct migrate_opts *o,
                                  struct strbuf *err) CB_WUR;

/* Runs (or, with o->dry_run, plans) the migration of pair p. Returns CB_OK when the run went to
 * its end or to o->limit (per-record outcomes are in rep); CB_ERR_STOPPED after a stop request
 * (sync_request_stop: in-flight writes finish, the checkpoint is saved); otherwise the status
 * that stopped it (auth, cache, an endpoint failing), with err saying why. Whatever happens the
 * cache stays consistent and the same call continues the migration. Memory is bounded by one
 * page of the source listing, not by the size of the migration. */
enum cb_status migrate_run(struct sync_pair *p, const struct migrate_opts *o,
                           migrate_progress_fn fn, void *arg, struct migrate_report *rep,
                           struct strbuf *err) CB_WUR;

#endif
