/*
 * Comments both ways for one pair: every comment a person wrote on one side of a linked record
 * pair appears once on the other side (with its author and time in the text), edits follow, and
 * the copies crmbridge wrote are never copied back. Called by the engine at the end of a cycle.
 */
#ifndef CB_COMMENTS_H
#define CB_COMMENTS_H

#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "connectors/connector.h"
#include "core/status.h"
#include "core/strbuf.h"
#include "sync/engine.h"

/* What the comment sync needs of a pair (all borrowed). */
struct comment_sync {
    const char *pair;
    struct cache *cache;
    const struct connector_ops *ops[2]; /* indexed by enum side */
    struct connector *conn[2];
    int64_t since_ms[2];     /* where the cycle's listings began (0 = first cycle) */
    struct sync_report *rep; /* notes, problems, failed and postponed counts */
    int origin;              /* migrate: the first copy on a new record says who created the
                              * original and when (record.created_ms / created_by) */
    int no_pending;          /* 1: leave the links pending from earlier runs alone (runs in
                              * parallel: one pass of the caller's settles them afterwards, as
                              * two runs on one link could both create a journaled copy) */
};

/* Syncs the comments of the n links at first, first + stride, ... (links embedded in the
 * caller's own array of structs: stride is that struct's size), plus the links whose comments
 * changed since the cursors (connectors with comments_changed) and, unless cs->no_pending, the
 * links left pending by an earlier cycle. Links with an id of 0 or a missing side are skipped. recs
 * is NULL or, at the same stride, the two records (crm, tracker) read for each link in this cycle:
 * a record that carries a crmbridge marker on a link made in this cycle was just created by us and
 * has no comments to read.
 *
 * Every create is journaled first (a meta key with its marker, written before the remote call)
 * so that a lost answer or a crash never duplicates a comment: the next run finds the marker on
 * the target and links it. The state lives in the cache's meta db: "clink:<pair>:<side>:<id>"
 * (original -> copy id, fingerprint of the text written, marker), "cintent:..." (a journaled
 * create), "ccopy:<pair>:<side>:<copy id>" (a copy is ours even without its marker),
 * "cseen:<pair>:<link id>" and "cpending:<pair>" (links to look at again). Per-comment failures are
 * counted in rep (failed or postponed, with a problem line) and retried by a later cycle; the
 * return value is CB_OK unless a side rejected our credentials (CB_ERR_AUTH), the cache failed, or
 * a stop was requested. A pair whose connectors do not both have comments returns CB_OK at once. */
enum cb_status sync_comments(const struct comment_sync *cs, const struct link *first,
                             const struct record *recs, size_t n, size_t stride,
                             struct strbuf *err) CB_WUR;

/* The text of the copy of comment x from a service ("zoho", "jira", ...):
 * "Comment by Li Wei on 2026-11-27 10:02 UTC (Zoho CRM):" then a blank line and the body; for
 * the origin note of a migrated record (id "origin:..."): "Created by Li Wei on 2025-03-02 10:11
 * UTC in Zoho CRM; copied here by crmbridge." Returns a malloc'ed string. */
char *sync_comment_copy_text(const struct comment *x, const char *service);

#endif
