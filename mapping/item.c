/*
 * Comparison, normalisation and fingerprints of item values. The merge decides "changed or not"
 * only through these functions, so equal meaning must give equal results here: labels are sets,
 * empty text equals null, trailing whitespace is not a change.
 */
#include "mapping/item.h"

#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"

const char *side_name(enum side s)
{
    return s == SIDE_CRM ? "crm" : "tracker";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts an array of strings and removes duplicates and empty strings, in place. */
static void normalize_set(cJSON *arr)
{
    int n = cJSON_GetArraySize(arr);
    if (n <= 0)
        return;
    const char **v = xcalloc((size_t)n, sizeof(*v));
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (cJSON_IsString(e) && e->valuestring[0])
            v[k++] = e->valuestring;
    }
    qsort(v, (size_t)k, sizeof(*v), cmp_str);
    cJSON *out = cJSON_CreateArray();
    for (int i = 0; i < k; i++)
        if (i == 0 || strcmp(v[i], v[i - 1]) != 0)
            cJSON_AddItemToArray(out, cJSON_CreateString(v[i]));
    free(v);
    while (cJSON_GetArraySize(arr) > 0)
        cJSON_DeleteItemFromArray(arr, 0);
    cJSON *it;
    while ((it = cJSON_DetachItemFromArray(out, 0)) != NULL)
        cJSON_AddItemToArray(arr, it);
    cJSON_Delete(out);
}

static int is_empty(const cJSON *v)
{
    if (!v || cJSON_IsNull(v))
        return 1;
    if (cJSON_IsString(v))
        return v->valuestring[0] == '\0';
    if (cJSON_IsArray(v))
        return cJSON_GetArraySize(v) == 0;
    return 0;
}

static int str_eq_trimmed(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la && strchr(" \t\r\n", a[la - 1]))
        la--;
    while (lb && strchr(" \t\r\n", b[lb - 1]))
        lb--;
    return la == lb && memcmp(a, b, la) == 0;
}

int item_value_equal(const char *field, const cJSON *a, const cJSON *b)
{
    if (is_empty(a) || is_empty(b))
        return is_empty(a) && is_empty(b);
    if (cJSON_IsString(a) && cJSON_IsString(b))
        return str_eq_trimmed(a->valuestring, b->valuestring);
    if (cJSON_IsArray(a) && cJSON_IsArray(b) && field && strcmp(field, "labels") == 0) {
        cJSON *x = cJSON_Duplicate(a, 1), *y = cJSON_Duplicate(b, 1);
        normalize_set(x);
        normalize_set(y);
        int eq = cJSON_Compare(x, y, 1);
        cJSON_Delete(x);
        cJSON_Delete(y);
        return eq;
    }
    return cJSON_Compare(a, b, 1);
}

void item_normalize(cJSON *item)
{
    cJSON *f = item ? item->child : NULL;
    for (; f; f = f->next) {
        if (cJSON_IsString(f)) {
            struct strbuf sb = STRBUF_INIT;
            (void)strbuf_adds(&sb, f->valuestring);
            strbuf_trim_end(&sb);
            if (sb.len == 0) {
                cJSON_ReplaceItemViaPointer(item, f, cJSON_CreateNull());
                strbuf_release(&sb);
                item_normalize(item); /* f was freed; restart (fields are few) */
                return;
            }
            cJSON_SetValuestring(f, sb.buf);
            strbuf_release(&sb);
        } else if (cJSON_IsArray(f) && f->string && strcmp(f->string, "labels") == 0) {
            normalize_set(f);
        }
    }
}

uint64_t item_value_hash(const cJSON *v)
{
    uint64_t h = 1469598103934665603ULL;
    if (is_empty(v))
        return h;
    char *s = cJSON_PrintUnformatted(v);
    size_t n = strlen(s);
    if (cJSON_IsString(v)) {
        /* hash the trimmed string so that the hash agrees with item_value_equal */
        cJSON_free(s);
        const char *t = v->valuestring;
        n = strlen(t);
        while (n && strchr(" \t\r\n", t[n - 1]))
            n--;
        for (size_t i = 0; i < n; i++) {
            h ^= (unsigned char)t[i];
            h *= 1099511628211ULL;
        }
        return h;
    }
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    cJSON_free(s);
    return h;
}
