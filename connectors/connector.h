/*
 * The contract between the sync engine and one remote service (isync's struct driver). Each
 * service fills one const struct connector_ops with designated initialisers; connector_find()
 * looks it up by the endpoint's "type". The engine sees only this header.
 *
 * Threading: a struct connector is used by one thread at a time.
 * Errors: every fallible slot returns enum cb_status (CB_OK = 0) and writes a lower-case message
 * naming the object into err; it never prints and never exits. CB_ERR_TEMP / CB_ERR_WAIT mean
 * "try again later", CB_ERR_AUTH means the endpoint is unusable until its credentials change,
 * CB_ERR_FINAL means this one request was rejected.
 */
#ifndef CB_CONNECTOR_H
#define CB_CONNECTOR_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "connectors/comment.h"
#include "connectors/http.h"
#include "connectors/record.h"
#include "core/config.h"
#include "core/status.h"
#include "core/strbuf.h"
#include "mapping/people.h"

struct cache;
struct connector; /* one service's private state */

struct connector_params {
    const struct endpoint_conf *ep; /* the endpoint block of the config */
    const struct side_conf *side;   /* the pair's side block (module, project, ...) */
    struct http_opts http;          /* timeouts, body cap, CA file */
    struct cache *cache;            /* token store (encrypted); may be NULL (tokens not kept) */
    const char *const *fields;      /* remote fields the mapping needs (NULL-terminated) */
};

/* Called once per page of changed records; records are borrowed for the call only (move what
 * you keep with record_copy). Returning non-OK stops the listing with that status. */
typedef enum cb_status (*record_page_fn)(void *arg, struct record *recs, size_t n);

/* One create or update within a batch. */
struct write_op {
    /* in */
    const char *id;      /* remote id to update; NULL to create */
    const cJSON *fields; /* remote field name -> canonical value to write; borrowed */
    const char *marker;  /* create: marker to store on the new record (find_marker finds it) */
    const char
        *link_url; /* create: URL of the record on the other side, for a link back; may be NULL */
    const char *link_title;
    int64_t created_ms;     /* create, migrate only: when the original was created (0 = unknown) */
    const char *created_by; /* and its creator's user id on this side (NULL = unknown); a
                             * connector that can keep both (Fxiaoke hasSpecifyTime,
                             * hasSpecifyCreatedBy) does, the others ignore them */
    const struct record *current; /* update: the record as this cycle read it, or NULL; a
                                   * connector may start from its values (a Jira issue's
                                   * status) instead of reading them again, but they may be
                                   * stale: a write they mislead must be corrected, not fail */
    /* out */
    enum cb_status st; /* per-record outcome */
    struct strbuf err; /* per-record message when st != CB_OK */
    struct record rec; /* on success: at least id, key, url; modified_ms when known (a
                        * create may leave it 0: the engine reads new records back) */
};

/* A push channel to register or renew (connector_ops.watch). */
struct watch_req {
    const char *channel_id; /* numeric string, stable per pair and side */
    const char *notify_url; /* where the service POSTs its notifications */
    const char *token;      /* echoed in every notification (<= 50 chars); never a secret */
    int64_t expiry_ms;      /* wall clock; the service may refuse one too far away */
};

void write_op_init(struct write_op *op);
void write_op_release(struct write_op *op);

struct connector_ops {
    const char *name; /* the endpoint "type" value */

    /* Validates the endpoint and side blocks without network access. Appends one
     * "FILE:LINE: message" line to err per problem and returns CB_ERR_CONFIG if any. */
    enum cb_status (*check_config)(const struct endpoint_conf *ep, const struct side_conf *side,
                                   struct strbuf *err);

    /* Creates the connector (resolves secrets, no network). On failure *out stays NULL. */
    enum cb_status (*open)(const struct connector_params *p, struct connector **out,
                           struct strbuf *err);
    void (*close)(struct connector *c);

    /* Authenticates and reads what the connector needs (field metadata, workflow, time zone).
     * Called before the first list or write and by `crmbridge check`; info receives a one-line
     * human description ("jira cloud 'acme', project SUP, 3 statuses"). Idempotent. */
    enum cb_status (*ping)(struct connector *c, struct strbuf *info, struct strbuf *err);

    /* Streams every record of the side's scope whose modified time is >= since_ms (0 = all), in
     * pages, oldest first where the API allows. Records may repeat (overlap); the engine
     * de-duplicates. */
    enum cb_status (*list_changed)(struct connector *c, int64_t since_ms, record_page_fn fn,
                                   void *arg, struct strbuf *err);

    /* Fetches the current state of ids[0..n) (n <= max_batch_read), appending found records to
     * out; ids that no longer exist are simply missing from out. */
    enum cb_status (*get_many)(struct connector *c, const char *const *ids, size_t n,
                               struct record_list *out, struct strbuf *err);

    /* Writes ops[0..n) (n <= max_batch_write), all creates or all updates. Each op gets its own
     * outcome; one record's failure never fails the others. The return value is CB_OK unless
     * the whole request failed before any record was processed (then every op carries it too).
     * Status changes in trackers whose status is not a plain field are performed here too. */
    enum cb_status (*write)(struct connector *c, struct write_op *ops, size_t n,
                            struct strbuf *err);

    /* Looks for a record carrying marker, created at or after since_ms. CB_OK fills out;
     * CB_ERR_NOTFOUND when none is visible (the caller decides whether search lag may hide it). */
    enum cb_status (*find_marker)(struct connector *c, const char *marker, int64_t since_ms,
                                  struct record *out, struct strbuf *err);

    int max_batch_read;  /* get_many limit */
    int max_batch_write; /* write limit */
    /* 1: write() builds updates from write_op.current (the record as this cycle read it: a
     * Jira status's transitions, a Trello card's other members), so the engine reads a record
     * before it updates it; 0: writes need only the fields, and the engine may write a record
     * its complete listing showed unchanged without reading it. */
    int write_reads_current;
    /* How long a fresh write may stay invisible to find_marker/list_changed (search lag). */
    int64_t search_lag_ms;
    /* Optional: the search lag of this connector's own configuration, which overrides
     * search_lag_ms when the slot is set (NULL = use search_lag_ms). Never fails. */
    int64_t (*search_lag)(const struct connector *c);
    /* Optional: the service's clock now (epoch ms), never later than the truth, as its answers'
     * Date headers tell (http_server_now); 0 when unknown. The engine then re-reads from the
     * start of the last complete listing rather than from the newest record it saw. Never
     * fails, no network. */
    int64_t (*server_now)(const struct connector *c);
    /* Optional: what the connector knows of its rate-limit budget (its HTTP clients' figures
     * summed, the tightest remaining allowance, its own pacing waits in paced). NULL = unknown. */
    void (*budget)(const struct connector *c, struct http_budget *out, unsigned long *paced);
    /* Optional: what a read of remote field `field` will give after `written` (a canonical
     * value) was written, when the service keeps it in a poorer format (Markdown written to a
     * plain-text field reads back without its markup). Returns an owned value, or NULL when a
     * read gives back what was written. Pure: no network. The engine fingerprints the echo, so
     * the poorer read-back is never taken for a person's edit and written back. */
    cJSON *(*echo)(const struct connector *c, const char *field, const cJSON *written);
    /* Optional: archives record id the service's own way (Trello closes the card, Fxiaoke
     * invalidates the record). NULL: the engine archives by writing the pair's archive_status.
     * CB_ERR_NOTFOUND when the record is already gone. */
    enum cb_status (*archive)(struct connector *c, const char *id, struct strbuf *err);
    /* Optional: deletes record id (CB_ERR_NOTFOUND when it is already gone). NULL: the service
     * is never asked to delete; a pair with deletes = "delete" reports it and keeps the record. */
    enum cb_status (*remove)(struct connector *c, const char *id, struct strbuf *err);

    /* Optional comments (NULL = the connector has none; sync/comments.c then leaves the pair's
     * comments alone). list_comments appends every comment of record_id, oldest first, to out
     * (owned by the caller: comment_list_release); CB_ERR_NOTFOUND when the record is gone. */
    enum cb_status (*list_comments)(struct connector *c, const char *record_id,
                                    struct comment_list *out, struct strbuf *err);
    /* Creates (op->id NULL: hides op->marker in it and fills op->new_id) or updates one comment
     * of record_id. A create is sent once: after a lost answer the engine looks for the marker. */
    enum cb_status (*write_comment)(struct connector *c, const char *record_id,
                                    struct comment_op *op, struct strbuf *err);
    /* Optional: for services where a new or edited comment leaves its record's modified time
     * alone (Zoho Notes, Fxiaoke follow-ups), appends to *ids (caller frees each id and the
     * array) the records in scope whose comments changed at or after since_ms. */
    enum cb_status (*comments_changed)(struct connector *c, int64_t since_ms, char ***ids,
                                       size_t *n, struct strbuf *err);
    /* Optional: registers the side's push channel req->channel_id, or renews it (new expiry,
     * same id) when it exists, so that running it twice never makes two. info receives a
     * one-line description. NULL: the service has no channel crmbridge can register. */
    enum cb_status (*watch)(struct connector *c, const struct watch_req *req, struct strbuf *info,
                            struct strbuf *err);
    /* Optional people (mapping/people.h). list_users appends the users a person field of this
     * side may be set to (Jira: the project's assignable users; Zoho: active users; Trello: the
     * board's members; Fxiaoke: the company's employees), each once, paging through them all.
     * NULL: the side has no person fields. Called after ping. */
    enum cb_status (*list_users)(struct connector *c, struct person_list *out, struct strbuf *err);
    /* Optional: 1 when remote field `field` holds a user on this side (read as a person object,
     * written from a user id), 0 otherwise. Pure: answers from what ping learnt. */
    int (*person_field)(const struct connector *c, const char *field);
    /* Optional: list_changed (same since_ms, pages, order and ownership), plus the records
     * ids[0..n) of the side's scope whatever their modified time, as current as the service can
     * read them (Jira Cloud names them in reconcileIssues: read-after-write, even while its
     * search lags behind a recent edit). Lets the engine read in its listing the records whose
     * other side changed instead of asking for them afterwards (get_many). Ids that no longer
     * exist or left the scope are simply missing. n <= max_list_also (0: list_changed); over
     * it, or an id the service cannot name: CB_ERR_FINAL, nothing sent. On CB_ERR_FINAL (also
     * a query the service refused) the engine lists with list_changed and reads by id. NULL:
     * list, then read by id. */
    enum cb_status (*list_changed_also)(struct connector *c, int64_t since_ms,
                                        const char *const *ids, size_t n, record_page_fn fn,
                                        void *arg, struct strbuf *err);
    int max_list_also; /* list_changed_also limit */

    /* Optional: like list_changed, but each record carries only its id and modified time
     * (no fields, no scope flag), in modified order, so that a caller can count a listing or
     * check which records it already handled for a fraction of the requests. CB_ERR_FINAL
     * when the service cannot page through it exactly (the caller then uses list_changed).
     * NULL: use list_changed. */
    enum cb_status (*list_changed_ids)(struct connector *c, int64_t since_ms, record_page_fn fn,
                                       void *arg, struct strbuf *err);
};

const struct connector_ops *connector_find(const char *type);
/* Adds a connector type at run time (a test seam: in-memory fakes). At most 8; the ops must
 * outlive every use. */
void connector_register(const struct connector_ops *ops);
/* Comma-separated list of known types, for error messages. */
const char *connector_types(void);

/* The HTTP client a connector opens: p->http, plus the endpoint's "ca_file" (config.h) as the
 * CA bundle when p->http names none. Never fails except on allocation (aborts). */
struct http *connector_http_new(const struct connector_params *p);

#endif
