/*
 * Field-level three-way merge (see merge.h for the base format). Decides, per item field, which
 * side changed, what to write where, and what is a conflict; applies per-field policies
 * (manual, crm_wins, tracker_wins, newest_wins with a skew tolerance). Labels compare as sets.
 */
#include "sync/merge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"

/* Fingerprint of field f's value, normalised first so that equal meaning hashes equally
 * (labels are a set whatever order or repetition a side reports them in). */
static void hash_hex(const char *f, const cJSON *v, char out[17])
{
    if (!cJSON_IsArray(v)) {
        snprintf(out, 17, "%016" PRIx64, item_value_hash(v));
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, f, cJSON_Duplicate(v, 1));
    item_normalize(o);
    snprintf(out, 17, "%016" PRIx64, item_value_hash(o->child));
    cJSON_Delete(o);
}

static const cJSON *fp_of(const cJSON *base, enum side s, const char *field)
{
    const cJSON *fp = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(base, "fp"), (int)s);
    return cJSON_GetObjectItemCaseSensitive(fp, field);
}

/* A side's fingerprint "*": it was not written what the source held (it cannot hold that
 * person or value), so whatever it shows at first is its own, not an edit. */
#define FP_ANY "*"

static int field_changed(const cJSON *base, enum side s, const char *field, const cJSON *v)
{
    const cJSON *fp = fp_of(base, s, field);
    if (cJSON_IsString(fp) && strcmp(fp->valuestring, FP_ANY) == 0)
        return 0;
    if (cJSON_IsString(fp)) {
        char h[17];
        hash_hex(field, v, h);
        return strcmp(h, fp->valuestring) != 0;
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(base, "item"),
                                                      field);
    return !item_value_equal(field, v, b);
}

int merge_side_changed(const struct mapping *m, const cJSON *base, enum side s, const cJSON *view)
{
    if (!base)
        return 1;
    for (const char *const *f = mapping_item_fields(m); *f; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(view, *f);
        if (v && field_changed(base, s, *f, v))
            return 1;
    }
    return 0;
}

cJSON *merge_view_from_base(const struct mapping *m, const cJSON *base, enum side s)
{
    cJSON *view = cJSON_CreateObject();
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(base, "item");
    for (const char *const *f = mapping_item_fields(m); *f; f++) {
        const cJSON *agreed = cJSON_GetObjectItemCaseSensitive(item, *f);
        const cJSON *fp = fp_of(base, s, *f);
        if (!agreed || (cJSON_IsString(fp) && strcmp(fp->valuestring, FP_ANY) == 0))
            continue;
        cJSON *held = mapping_roundtrip(m, s, *f, agreed);
        if (held && !field_changed(base, s, *f, held))
            cJSON_AddItemToObject(view, *f, held);
        else
            cJSON_Delete(held);
    }
    return view;
}

static cJSON *new_base_skeleton(const cJSON *base)
{
    cJSON *nb = base ? cJSON_Duplicate(base, 1) : cJSON_CreateObject();
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(nb, "item"))) {
        cJSON_DeleteItemFromObjectCaseSensitive(nb, "item");
        cJSON_AddItemToObject(nb, "item", cJSON_CreateObject());
    }
    cJSON *fp = cJSON_GetObjectItemCaseSensitive(nb, "fp");
    if (!cJSON_IsArray(fp) || cJSON_GetArraySize(fp) != 2) {
        cJSON_DeleteItemFromObjectCaseSensitive(nb, "fp");
        fp = cJSON_AddArrayToObject(nb, "fp");
        cJSON_AddItemToArray(fp, cJSON_CreateObject());
        cJSON_AddItemToArray(fp, cJSON_CreateObject());
    }
    return nb;
}

static void set_obj(cJSON *obj, const char *field, cJSON *v)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, field))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, field, v);
    else
        cJSON_AddItemToObject(obj, field, v);
}

static void set_fp(cJSON *nb, enum side s, const char *field, const cJSON *v)
{
    char h[17];
    hash_hex(field, v, h);
    set_obj(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(nb, "fp"), (int)s), field,
            cJSON_CreateString(h));
}

void merge_fingerprint(cJSON *base, enum side s, const char *field, const cJSON *v)
{
    cJSON *fp = cJSON_GetObjectItemCaseSensitive(base, "fp");
    if (cJSON_IsArray(fp) && cJSON_GetArraySize(fp) == 2)
        set_fp(base, s, field, v);
}

static void set_item(cJSON *nb, const char *field, const cJSON *v)
{
    set_obj(cJSON_GetObjectItemCaseSensitive(nb, "item"), field,
            v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
}

static int shows(const cJSON *pending, int s, const char *f, const cJSON *view)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(pending, "fp"), s), f);
    char now[17];
    hash_hex(f, cJSON_GetObjectItemCaseSensitive(view, f), now);
    return cJSON_IsString(h) && strcmp(now, h->valuestring) == 0;
}

void merge_adopt_pending(cJSON *base, const cJSON *pending, const cJSON *const view[2])
{
    cJSON *fp = cJSON_GetObjectItemCaseSensitive(base, "fp");
    if (!cJSON_IsArray(fp) || cJSON_GetArraySize(fp) != 2)
        return;
    const cJSON *pitem = cJSON_GetObjectItemCaseSensitive(pending, "item");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(pending, "to");
    for (int t = 0; t < 2; t++) {
        int o = 1 - t;
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetArrayItem(to, t))
        {
            const char *name = cJSON_GetStringValue(f);
            /* the write to t landed only if t still shows it; a person's edit since (or a write
             * that never landed) leaves the base alone: the merge then sees what changed */
            if (!name || !shows(pending, t, name, view[t]))
                continue;
            for (int s = 0; s < 2; s++) {
                if (s == o && !shows(pending, o, name, view[o]))
                    continue; /* the source changed again since: that change must flow */
                const cJSON *h = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(pending, "fp"), s), name);
                set_obj(cJSON_GetArrayItem(fp, s), name, cJSON_CreateString(h->valuestring));
            }
            const cJSON *agreed = cJSON_GetObjectItemCaseSensitive(pitem, name);
            if (agreed)
                set_item(base, name, agreed);
        }
    }
}

static int is_empty_value(const cJSON *v)
{
    return !v || cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[0]) ||
           (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0);
}

static int is_held(const char *const *held, const char *field)
{
    for (; held && *held; held++)
        if (strcmp(*held, field) == 0)
            return 1;
    return 0;
}

/* Side w's value wins field f: write it to the other side where the mapping lets it flow. */
static void take(const struct mapping *m, const char *f, enum side w, const cJSON *const view[2],
                 cJSON *nb, struct merge_result *out)
{
    enum side o = SIDE_OTHER(w);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(view[w], f);
    const cJSON *cur_o = cJSON_GetObjectItemCaseSensitive(view[o], f);
    set_fp(nb, w, f, v);
    if (!mapping_flows(m, f, w))
        return; /* a one-way field edited against its direction: noted, not copied */
    set_item(nb, f, v);
    cJSON *rt = mapping_roundtrip(m, o, f, v);
    if (!rt) {
        /* the other side cannot hold this value (a person with no user there): it keeps its
         * own, which is then no edit of its own to copy back */
        if (cur_o)
            set_fp(nb, o, f, cur_o);
        return;
    }
    if (!(cur_o && item_value_equal(f, rt, cur_o)))
        cJSON_AddItemToObject(out->patch[o], f, cJSON_Duplicate(v, 1));
    set_fp(nb, o, f, rt);
    cJSON_Delete(rt);
}

static void add_conflict(struct merge_result *out, const char *f, const cJSON *base,
                         const cJSON *const view[2])
{
    out->conflicts = xrealloc(out->conflicts, (out->n_conflicts + 1) * sizeof(*out->conflicts));
    struct merge_conflict *c = &out->conflicts[out->n_conflicts++];
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(base, "item"),
                                                      f);
    c->field = f;
    c->base = b ? cJSON_Duplicate(b, 1) : cJSON_CreateNull();
    for (int s = 0; s < 2; s++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(view[s], f);
        c->value[s] = v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
    }
}

/* Both sides changed f to different values: the field's policy picks a winner, or -1. */
static int pick_winner(const struct mapping *m, const char *f, const int64_t modified_ms[2])
{
    switch (mapping_policy(m, f)) {
    case POLICY_CRM_WINS:
        return SIDE_CRM;
    case POLICY_TRACKER_WINS:
        return SIDE_TRACKER;
    case POLICY_NEWEST_WINS: {
        int64_t d = modified_ms[0] - modified_ms[1];
        if (d > mapping_skew_ms(m))
            return SIDE_CRM;
        if (-d > mapping_skew_ms(m))
            return SIDE_TRACKER;
        return -1; /* too close to call given clock skew: ask a person */
    }
    case POLICY_MANUAL:
        break;
    }
    return -1;
}

/* Writes v (a person's choice) to each side that differs, and agrees on it. */
static void force(const struct mapping *m, const char *f, const cJSON *v, const cJSON *const view[2],
                  cJSON *nb, struct merge_result *out)
{
    set_item(nb, f, v);
    for (int s = 0; s < 2; s++) {
        cJSON *rt = mapping_roundtrip(m, (enum side)s, f, v);
        const cJSON *cur = cJSON_GetObjectItemCaseSensitive(view[s], f);
        if (!rt) {
            if (cur)
                set_fp(nb, (enum side)s, f, cur); /* s keeps its own value (see take) */
            continue;
        }
        if (!(cur && item_value_equal(f, rt, cur)))
            cJSON_AddItemToObject(out->patch[s], f, cJSON_Duplicate(v, 1));
        set_fp(nb, (enum side)s, f, rt);
        cJSON_Delete(rt);
    }
}

static int has_string(const cJSON *arr, const char *s)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (cJSON_IsString(e) && strcmp(e->valuestring, s) == 0)
            return 1;
    }
    return 0;
}

/* Both sides changed a set: base + what either added - what either removed. */
static cJSON *merge_sets(const cJSON *base, const cJSON *a, const cJSON *b)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *sides[2] = {a, b};
    const cJSON *e;
    cJSON_ArrayForEach(e, base)
    {
        if (cJSON_IsString(e) && has_string(a, e->valuestring) && has_string(b, e->valuestring))
            cJSON_AddItemToArray(out, cJSON_CreateString(e->valuestring));
    }
    for (int s = 0; s < 2; s++) {
        cJSON_ArrayForEach(e, sides[s])
        {
            if (cJSON_IsString(e) && !has_string(base, e->valuestring) &&
                !has_string(out, e->valuestring))
                cJSON_AddItemToArray(out, cJSON_CreateString(e->valuestring));
        }
    }
    return out;
}

/* Replaces each FP_ANY with the fingerprint of what that side now shows. */
static void settle_any(cJSON *nb, const cJSON *const view[2])
{
    for (int s = 0; s < 2; s++) {
        cJSON *fps = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(nb, "fp"), s);
        for (cJSON *f = fps ? fps->child : NULL, *next; f; f = next) {
            next = f->next; /* set_fp replaces f */
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(view[s], f->string);
            if (v && cJSON_IsString(f) && strcmp(f->valuestring, FP_ANY) == 0)
                set_fp(nb, (enum side)s, f->string, v);
        }
    }
}

void merge_run(const struct mapping *m, const cJSON *base, const cJSON *const view[2],
               const int64_t modified_ms[2], const char *const *held, const cJSON *forced,
               struct merge_result *out)
{
    memset(out, 0, sizeof(*out));
    out->patch[0] = cJSON_CreateObject();
    out->patch[1] = cJSON_CreateObject();
    cJSON *nb = new_base_skeleton(base);
    for (const char *const *fp = mapping_item_fields(m); *fp; fp++) {
        const char *f = *fp;
        const cJSON *v[2] = {cJSON_GetObjectItemCaseSensitive(view[0], f),
                             cJSON_GetObjectItemCaseSensitive(view[1], f)};
        const cJSON *chosen = cJSON_GetObjectItemCaseSensitive(forced, f);
        if (chosen) {
            force(m, f, chosen, view, nb, out);
            continue;
        }
        int ch[2];
        for (int s = 0; s < 2; s++)
            ch[s] = v[s] && (!base || field_changed(base, (enum side)s, f, v[s]));
        if (!ch[0] && !ch[1])
            continue;
        if (is_held(held, f))
            continue;
        if (ch[0] && ch[1]) {
            if (item_value_equal(f, v[0], v[1])) {
                set_item(nb, f, v[0]);
                set_fp(nb, SIDE_CRM, f, v[0]);
                set_fp(nb, SIDE_TRACKER, f, v[1]);
                continue;
            }
            if (!base) {
                /* a link without history (recovered): a value beats an empty field (the target
                 * filled in a default), else the side that flows wins, crm first */
                enum side w = mapping_flows(m, f, SIDE_CRM) ? SIDE_CRM : SIDE_TRACKER;
                if (is_empty_value(v[0]) != is_empty_value(v[1]))
                    w = is_empty_value(v[0]) ? SIDE_TRACKER : SIDE_CRM;
                take(m, f, w, view, nb, out);
                continue;
            }
            if (cJSON_IsArray(v[0]) && cJSON_IsArray(v[1])) {
                const cJSON *b = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(base, "item"), f);
                cJSON *merged = merge_sets(b, v[0], v[1]);
                force(m, f, merged, view, nb, out);
                cJSON_Delete(merged);
                continue;
            }
            int w = pick_winner(m, f, modified_ms);
            if (w < 0) {
                add_conflict(out, f, base, view);
                continue;
            }
            take(m, f, (enum side)w, view, nb, out);
            continue;
        }
        take(m, f, ch[0] ? SIDE_CRM : SIDE_TRACKER, view, nb, out);
    }
    settle_any(nb, view);
    out->changed = !base || !cJSON_Compare(nb, base, 1);
    out->new_base = nb;
}

void merge_result_release(struct merge_result *r)
{
    cJSON_Delete(r->patch[0]);
    cJSON_Delete(r->patch[1]);
    cJSON_Delete(r->new_base);
    for (size_t i = 0; i < r->n_conflicts; i++) {
        cJSON_Delete(r->conflicts[i].base);
        cJSON_Delete(r->conflicts[i].value[0]);
        cJSON_Delete(r->conflicts[i].value[1]);
    }
    free(r->conflicts);
    memset(r, 0, sizeof(*r));
}

cJSON *merge_base_for_create(const struct mapping *m, enum side target, const cJSON *src_view,
                             const cJSON *written_patch)
{
    enum side src = SIDE_OTHER(target);
    cJSON *nb = new_base_skeleton(NULL);
    const cJSON *v;
    cJSON_ArrayForEach(v, src_view)
    {
        set_item(nb, v->string, v);
        set_fp(nb, src, v->string, v);
    }
    cJSON_ArrayForEach(v, written_patch)
    {
        cJSON *rt = mapping_roundtrip(m, target, v->string, v);
        if (rt)
            set_fp(nb, target, v->string, rt);
        cJSON_Delete(rt);
    }
    cJSON_ArrayForEach(v, src_view)
    {
        cJSON *rt = mapping_flows(m, v->string, src) ? mapping_roundtrip(m, target, v->string, v)
                                                     : NULL;
        if (!rt && mapping_flows(m, v->string, src) && mapping_holds(m, v->string, target))
            set_obj(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(nb, "fp"), (int)target),
                    v->string, cJSON_CreateString(FP_ANY));
        cJSON_Delete(rt);
    }
    return nb;
}
