/*
 * The mapping's people rules (mapping.c only): the `people` block of a mapping file (an explicit
 * table, matching by e-mail, a fallback per side), each side's directory and person fields, and
 * the resolution of a person's canonical string to a user of a side. Not a public API.
 */
#ifndef CB_PEOPLE_P_H
#define CB_PEOPLE_P_H

#include <cjson/cJSON.h>
#include <libconfig.h>

#include "core/strbuf.h"
#include "mapping/item.h"
#include "mapping/people.h"

struct people_map;

/* Parses the `people` group g (NULL: defaults: match by e-mail, no table, no fallback); each
 * problem goes to err as "FILE:LINE: ...". Never NULL. */
struct people_map *people_map_load(const config_setting_t *g, const char *file, struct strbuf *err);
void people_map_free(struct people_map *pm);
/* Takes over side s's directory (*users is zeroed) and copies its person fields. */
void people_map_set_side(struct people_map *pm, enum side s, struct person_list *users,
                         const char *const *person_fields);
/* 1 when remote field `remote` of side s holds users (people_map_set_side said so). */
int people_map_is_person_field(const struct people_map *pm, enum side s, const char *remote);
/* The canonical string of person object `p` read on side s (owned by the caller); NULL when p is
 * not a person object. */
cJSON *people_map_canon(const struct people_map *pm, enum side s, const cJSON *p);
/* The user id of side s for canonical value v (a JSON string; owned by the caller), JSON null
 * for null, or NULL when nobody on s matches and there is no fallback. The person is noted as
 * unmapped (with the item field) when the table, e-mail and name all failed. */
cJSON *people_map_resolve(struct people_map *pm, enum side s, const char *item_field,
                          const cJSON *v);
/* The user id on side s of canonical person `name` (table, e-mail or name; not the fallback),
 * borrowed from pm, or NULL. */
const char *people_map_user(const struct people_map *pm, enum side s, const char *name);
/* 1 when canonical person `name` has a user on side s (table, e-mail or name; not fallback). */
int people_map_known(const struct people_map *pm, enum side s, const char *name);
/* What side s reads back after v is written there (owned), NULL when s cannot hold v. */
cJSON *people_map_roundtrip(const struct people_map *pm, enum side s, const cJSON *v);
/* Unmapped people noted since the last call: [{"side","field","name","fallback"}] (owned). */
cJSON *people_map_take_unmapped(struct people_map *pm);

#endif
