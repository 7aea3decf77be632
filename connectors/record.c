/* Lifetime helpers for records; no parsing happens here (each connector decodes its own JSON). */
#include "connectors/record.h"

#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"

void record_release(struct record *r)
{
    free(r->id);
    free(r->key);
    free(r->url);
    free(r->modified_by);
    free(r->created_by);
    free(r->marker);
    cJSON_Delete(r->fields);
    memset(r, 0, sizeof(*r));
}

void record_list_push(struct record_list *l, struct record *r)
{
    if (l->n == l->alloc) {
        l->alloc = l->alloc ? l->alloc * 2 : 16;
        l->v = xrealloc(l->v, l->alloc * sizeof(*l->v));
    }
    l->v[l->n++] = *r;
    memset(r, 0, sizeof(*r));
}

void record_list_release(struct record_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        record_release(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void record_copy(struct record *dst, const struct record *src)
{
    dst->id = dup_or_null(src->id);
    dst->key = dup_or_null(src->key);
    dst->url = dup_or_null(src->url);
    dst->modified_ms = src->modified_ms;
    dst->gone = src->gone;
    dst->out_of_scope = src->out_of_scope;
    dst->modified_by = dup_or_null(src->modified_by);
    dst->created_ms = src->created_ms;
    dst->created_by = dup_or_null(src->created_by);
    dst->marker = dup_or_null(src->marker);
    dst->fields = src->fields ? cJSON_Duplicate(src->fields, 1) : NULL;
}
