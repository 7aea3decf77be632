/*
 * The configuration file (libconfig syntax), loaded once into plain structs. This module knows
 * the shape shared by every deployment (state_dir, endpoints, pairs); the keys that belong to one
 * service stay as key/value lists that the service's connector validates itself, so adding a
 * connector never touches this file.
 */
#ifndef CB_CONFIG_H
#define CB_CONFIG_H

#include <stddef.h>
#include "core/status.h"
#include "core/strbuf.h"

#define CONFIG_DEFAULT_PATH "/etc/crmbridge/crmbridge.conf"

struct conf_kv {
    char *key;
    char *value; /* scalars are kept as text; lists as comma-joined text */
    int line;
};

/* A group of key/value settings with the file and line they came from. */
struct conf_group {
    const char *file; /* borrowed from struct config */
    int line;
    struct conf_kv *kv;
    size_t n_kv;
};

struct endpoint_conf {
    char *name;
    char *type; /* "zoho", "jira", ... : looked up in the connectors table */
    char *ca_file; /* "ca_file": extra CA bundle (PEM) trusted for this endpoint's TLS, on top
                    * of the system store; NULL = system store only. Never in g. */
    struct conf_group g;
};

struct side_conf {
    char *endpoint; /* name of an endpoint */
    struct conf_group g;
};

struct pair_conf {
    char *name;
    struct side_conf side[2]; /* indexed by enum side: 0 = crm, 1 = tracker */
    int interval_s;           /* daemon: seconds between cycles (default: top-level interval) */
    int overlap_s;            /* seconds a listing re-reads behind its cursor; -1 (default):
                               * each side's search lag plus 2 s */
    char *mapping;            /* optional mapping file; NULL = built-in default */
    char *create;             /* "to_tracker" (default), "to_crm", "both", "none" */
    char *deletes;            /* when a linked record goes: "ignore" (default), "archive", "delete" */
    int delete_guard_pct;     /* refuse a cycle removing more than this share of links (50) */
    int delete_sweep_s;       /* seconds between sweeps of linked ids for deletes (3600; 0 off) */
    char *archive_status;     /* canonical status that archives where a side has no archive (rejected) */
    int line;
};

struct config {
    char *path;
    char *state_dir;
    char *log_level;
    int http_timeout_s;
    long max_body_bytes;
    int interval_s;           /* default of every pair's interval (default 60) */
    char *log_format;         /* "text" or "json"; NULL = text */
    struct conf_group webhooks; /* the daemon's listener settings; n_kv == 0 when absent */
    struct endpoint_conf *endpoints;
    size_t n_endpoints;
    struct pair_conf *pairs;
    size_t n_pairs;
};

/* Loads and validates path. On failure returns CB_ERR_CONFIG with every problem found, one per
 * line as "FILE:LINE: message", in err, and *out stays NULL. The result is freed with
 * config_free(). */
enum cb_status config_load(const char *path, struct config **out, struct strbuf *err) CB_WUR;
/* Same, from a string; name is used in messages instead of a file name. */
enum cb_status config_load_string(const char *text, const char *name, struct config **out,
                                  struct strbuf *err) CB_WUR;
void config_free(struct config *cfg);

const struct endpoint_conf *config_endpoint(const struct config *cfg, const char *name);
const struct pair_conf *config_pair(const struct config *cfg, const char *name);

/* Value of key in g, or NULL. */
const char *conf_get(const struct conf_group *g, const char *key);
const struct conf_kv *conf_find(const struct conf_group *g, const char *key);
/* Appends "FILE:LINE: <fmt>" and a newline to err (for any libconfig-based file). */
void conf_add_error(struct strbuf *err, const char *file, int line, const char *fmt, ...)
    CB_PRINTF(4, 5);
/* Appends "FILE:LINE: <fmt>" and a newline to err for key (or the group when key is absent). */
void conf_error(const struct conf_group *g, const char *key, struct strbuf *err, const char *fmt,
                ...) CB_PRINTF(4, 5);
/* Checks that every key in required (NULL-terminated) is present; reports each missing one.
 * Returns the number missing. */
int conf_require(const struct conf_group *g, const char *const *required, const char *what,
                 struct strbuf *err);
/* Reports every key of g that is in neither known nor extra (NULL-terminated lists; extra may
 * be NULL) as "FILE:LINE: unknown <what> setting 'k'". Returns how many there were. */
int conf_unknown_keys(const struct conf_group *g, const char *const *known,
                      const char *const *extra, const char *what, struct strbuf *err);
/* Resolves a secret-valued key ("literal", "env:NAME", "file:PATH") into *out (caller frees).
 * The value is registered with the logger for redaction. Missing key or unreadable source:
 * CB_ERR_CONFIG with a message naming file and line. */
enum cb_status conf_secret(const struct conf_group *g, const char *key, char **out,
                           struct strbuf *err) CB_WUR;

#endif
