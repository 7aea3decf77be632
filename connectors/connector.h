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

#include "connectors/http.h"
#include "connectors/record.h"
#include "core/config.h"
#include "core/status.h"
#include "core/strbuf.h"

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
    const char *id;       /* remote id to update; NULL to create */
    const cJSON *fields;  /* remote field name -> canonical value to write; borrowed */
    const char *marker;   /* create: marker to store on the new record (find_marker finds it) */
    const char *link_url; /* create: URL of the record on the other side, for a link back; may be NULL */
    const char *link_title;
    /* out */
    enum cb_status st;    /* per-record outcome */
    struct strbuf err;    /* per-record message when st != CB_OK */
    struct record rec;    /* on success: at least id, key, url; modified_ms when known (a
                           * create may leave it 0: the engine reads new records back) */
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
    /* How long a fresh write may stay invisible to find_marker/list_changed (search lag). */
    int64_t search_lag_ms;
    /* Optional: the search lag of this connector's own configuration, which overrides
     * search_lag_ms when the slot is set (NULL = use search_lag_ms). Never fails. */
    int64_t (*search_lag)(const struct connector *c);
};

const struct connector_ops *connector_find(const char *type);
/* Adds a connector type at run time (a test seam: in-memory fakes). At most 8; the ops must
 * outlive every use. */
void connector_register(const struct connector_ops *ops);
/* Comma-separated list of known types, for error messages. */
const char *connector_types(void);

#endif
