/*
 * The three-way merge of one linked pair of records, field by field, against the stored base.
 * Pure: no I/O, no cache, no network; the engine feeds it views and applies what it returns.
 *
 * The base is stored as {"item": {field: agreed value}, "fp": [{field: hash}, {field: hash}]}:
 * the agreed item plus, per side, a fingerprint of what that side last showed for each field.
 * A side "changed" a field when its current value no longer matches its fingerprint, which
 * makes our own writes (echoes) and lossy value maps (two CRM statuses read as one canonical
 * status) invisible as changes.
 */
#ifndef CB_MERGE_H
#define CB_MERGE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "mapping/mapping.h"

struct merge_conflict {
    const char *field;      /* borrowed from the mapping */
    cJSON *base, *value[2]; /* owned */
};

struct merge_result {
    cJSON *patch[2];  /* item fields to write to each side (owned; possibly empty objects) */
    cJSON *new_base;  /* the base to store once the patches are written (owned) */
    struct merge_conflict *conflicts;
    size_t n_conflicts;
    int changed;      /* 1 when new_base differs from the old base */
};

/* Merges view[0] (crm) and view[1] (tracker) against base (NULL for a new link). modified_ms
 * are the sides' remote modified times (for newest_wins). held lists fields with an open
 * conflict that must not be merged (NULL-terminated; may be NULL). forced maps fields to values
 * a person chose (a resolved conflict): they are written to whichever side differs (may be
 * NULL). Multi-valued fields (labels) merge as sets and never conflict. */
void merge_run(const struct mapping *m, const cJSON *base, const cJSON *const view[2],
               const int64_t modified_ms[2], const char *const *held, const cJSON *forced,
               struct merge_result *out);
void merge_result_release(struct merge_result *r);

/* The base for a link just created on side `target` from view `src_view` of side SIDE_OTHER:
 * the source side fingerprints all its values, the target fingerprints what it was written. */
cJSON *merge_base_for_create(const struct mapping *m, enum side target, const cJSON *src_view,
                             const cJSON *written_patch);

/* After a crash between a write and the commit of its base. pending is the base the write was
 * to record plus "to": [[fields written to crm], [fields written to tracker]]. Where a written
 * side still shows exactly what was written, the write landed: adopt its fingerprint and agreed
 * value into base (in place), and the source side's too unless it changed again since, so the
 * unacknowledged write is not taken for a person's edit. */
void merge_adopt_pending(cJSON *base, const cJSON *pending, const cJSON *const view[2]);

/* Sets side s's fingerprint of field to value v in base (as if s had last shown v). */
void merge_fingerprint(cJSON *base, enum side s, const char *field, const cJSON *v);

/* The view side s shows when it has not changed since base was stored (owned by the caller):
 * each agreed field as s holds it, where that matches s's fingerprint. A field s keeps a value
 * of its own in (a lossy value map, a person it cannot hold, an open fingerprint) is left out:
 * the merge then takes it as unchanged on s and writes a change from the other side as is. */
cJSON *merge_view_from_base(const struct mapping *m, const cJSON *base, enum side s);

/* True when side s's view differs from its fingerprints in base (or there is no base). */
int merge_side_changed(const struct mapping *m, const cJSON *base, enum side s, const cJSON *view);

#endif
