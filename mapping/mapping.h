/*
 * The declarative mapping between one CRM side and one tracker side of a pair: which remote
 * field feeds which item field, value maps (status, priority, kind), defaults used when
 * creating, the direction each field may flow in, and the conflict policy per field. Loaded from
 * a libconfig file or built in per combination of connector types.
 */
#ifndef CB_MAPPING_H
#define CB_MAPPING_H

#include <cjson/cJSON.h>

#include "core/status.h"
#include "core/strbuf.h"
#include "mapping/item.h"
#include "mapping/people.h"

struct mapping;

enum field_dir { DIR_BOTH = 0, DIR_TO_TRACKER, DIR_TO_CRM };
enum conflict_policy { POLICY_MANUAL = 0, POLICY_CRM_WINS, POLICY_TRACKER_WINS, POLICY_NEWEST_WINS };

/* Loads the mapping in path, or the built-in default for crm_type/tracker_type when path is NULL.
 * Every problem is reported ("FILE:LINE: ...", one per line); on failure *out stays NULL. */
enum cb_status mapping_load(const char *path, const char *crm_type, const char *tracker_type,
                            struct mapping **out, struct strbuf *err) CB_WUR;
void mapping_free(struct mapping *m);

/* NULL-terminated list of the remote field names side s needs to read (owned by m). */
const char *const *mapping_remote_fields(const struct mapping *m, enum side s);

/* The parts of a remote record the mapping reads (connectors/record.h has the full record). */
struct remote_view {
    const char *id, *key, *url; /* feed the pseudo fields "$id", "$key", "$url" */
    const cJSON *fields;        /* remote field name -> canonical value */
};

/* Maps a record of side s into a new item (owned by the caller). Values without an entry in a
 * value map are kept verbatim and noted in warn (when not NULL). */
cJSON *mapping_to_item(const struct mapping *m, enum side s, const struct remote_view *r,
                       struct strbuf *warn);

/* Translates the item fields in patch into remote fields for side s (a new object owned by the
 * caller). Fields that may not flow to s, pseudo fields and values with no mapping on s are left
 * out; each value left out for lack of a mapping is noted in warn. */
cJSON *mapping_to_remote(const struct mapping *m, enum side s, const cJSON *patch,
                         struct strbuf *warn);

/* What side s will read back after writing value v for item field f: the value passed through
 * the write map and then the read map (identity for unmapped fields). Owned by the caller; NULL
 * when s cannot hold v. */
cJSON *mapping_roundtrip(const struct mapping *m, enum side s, const char *field, const cJSON *v);

/* Fields to fill in when creating on side s, as remote fields (owned by m; may be empty). */
const cJSON *mapping_create_defaults(const struct mapping *m, enum side s);

/* Per item field: may a change flow from side `from` to the other side? */
int mapping_flows(const struct mapping *m, const char *field, enum side from);
/* 1 when side s has a remote field for item field `field`. */
int mapping_holds(const struct mapping *m, const char *field, enum side s);
enum conflict_policy mapping_policy(const struct mapping *m, const char *field);
/* Clock-skew tolerance for newest_wins, in ms. */
long mapping_skew_ms(const struct mapping *m);
/* People (people.h): hands side s's user directory to m (takes *users over and zeroes it) and
 * names the remote fields of s that hold users (copied). Until it is called for a side, that
 * side has no person fields: person values are written to it as text. */
void mapping_set_people(struct mapping *m, enum side s, struct person_list *users,
                        const char *const *person_fields);
/* The people mapping_to_remote found no user for since the last call, each once:
 * [{"side": "tracker", "field": "assignee", "name": "Li Wei <li@acme.cn>", "fallback": false}]
 * (owned by the caller; an empty array when none). */
cJSON *mapping_take_unmapped(struct mapping *m);
/* The user id on side s of person `name` (a canonical string or a display name; owned), or
 * NULL when nobody matches (the fallback is not used) or name is NULL. */
char *mapping_person_id(const struct mapping *m, enum side s, const char *name);
/* 1 when person `name` (a canonical string) now has a user on side s (not counting fallback). */
int mapping_person_known(const struct mapping *m, enum side s, const char *name);

/* NULL-terminated list of the item fields this mapping knows (owned by m). */
const char *const *mapping_item_fields(const struct mapping *m);

#endif
