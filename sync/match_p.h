/*
 * The target index of `crmbridge migrate --match FIELD` (sync/match.c): the target's unlinked
 * records by the value of one item field. Internal to sync/.
 */
#ifndef CB_MATCH_P_H
#define CB_MATCH_P_H

#include "sync/engine_p.h"

struct match_index;

/* Lists every record of side t once (one full listing) and indexes the unlinked ones that have
 * a value for item field `field` (borrowed: must outlive the index). */
enum cb_status match_index_build(struct cycle *c, enum side t, const char *field,
                                 struct match_index **out, struct strbuf *err) CB_WUR;
/* The target record (id, key, url; borrowed) whose value equals the source view's, or NULL.
 * take marks it used (one target record links one source record). *ambiguous is set when
 * several target records share that value: none is matched. */
const struct record *match_index_find(struct match_index *ix, const cJSON *view, int take,
                                      int *ambiguous);
void match_index_free(struct match_index *ix);

#endif
