/*
 * The "fake" connector: records in a JSON file, loaded and saved around every call. Not fast and
 * not meant to be; it is a faithful enough remote for the engine: monotonic modified times,
 * markers, batches with per-record outcomes, and injectable faults.
 */
#include "tests/unit/fake_connector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/connector.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "tests/unit/testutil.h"

struct connector {
    char *path;
};

static cJSON *load(const char *path)
{
    char *text = tu_read_file(path);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

static void save(const char *path, cJSON *j)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    char *txt = cJSON_Print(j);
    FILE *f = fopen(tmp, "wb");
    if (f) {
        fputs(txt, f);
        fclose(f);
        rename(tmp, path);
    }
    cJSON_free(txt);
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void set_num(cJSON *o, const char *k, double v)
{
    cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (it)
        cJSON_SetNumberValue(it, v);
    else
        cJSON_AddNumberToObject(o, k, v);
}

/* Monotonic modified time: the wall clock, but always after the previous one. */
static double tick(cJSON *st)
{
    double now = (double)cbtime_now_ms(), last = num(st, "clock");
    if (now <= last)
        now = last + 1;
    set_num(st, "clock", now);
    return now;
}

void fake_init(const char *path, const char *prefix)
{
    cJSON *st = cJSON_CreateObject();
    cJSON_AddStringToObject(st, "prefix", prefix);
    cJSON_AddNumberToObject(st, "seq", 0);
    cJSON_AddNumberToObject(st, "clock", 0);
    cJSON_AddNumberToObject(st, "writes", 0);
    cJSON_AddObjectToObject(st, "records");
    save(path, st);
    cJSON_Delete(st);
}

static void merge_fields(cJSON *dst, const cJSON *src)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, src)
    {
        if (cJSON_GetObjectItemCaseSensitive(dst, v->string))
            cJSON_ReplaceItemInObjectCaseSensitive(dst, v->string, cJSON_Duplicate(v, 1));
        else
            cJSON_AddItemToObject(dst, v->string, cJSON_Duplicate(v, 1));
    }
}

static char *new_record(cJSON *st, const cJSON *fields, const char *marker)
{
    double seq = num(st, "seq") + 1;
    set_num(st, "seq", seq);
    char id[64], key[64];
    const char *prefix = cJSON_GetStringValue(cJSON_GetObjectItem(st, "prefix"));
    snprintf(id, sizeof(id), "%s%04d", prefix, (int)seq);
    snprintf(key, sizeof(key), "%s-%d", prefix, (int)seq);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "key", key);
    double t = tick(st);
    cJSON_AddNumberToObject(r, "modified_ms", t);
    cJSON_AddNumberToObject(r, "created_ms", t);
    if (marker)
        cJSON_AddStringToObject(r, "marker", marker);
    cJSON *f = cJSON_AddObjectToObject(r, "fields");
    merge_fields(f, fields);
    cJSON_AddItemToObject(cJSON_GetObjectItem(st, "records"), id, r);
    return xstrdup(id);
}

char *fake_human_create(const char *path, const char *fields_json)
{
    cJSON *st = load(path), *fields = cJSON_Parse(fields_json);
    char *id = new_record(st, fields, NULL);
    save(path, st);
    cJSON_Delete(st);
    cJSON_Delete(fields);
    return id;
}

void fake_human_edit(const char *path, const char *id, const char *fields_json)
{
    cJSON *st = load(path), *fields = cJSON_Parse(fields_json);
    cJSON *r = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(st, "records"), id);
    if (r) {
        merge_fields(cJSON_GetObjectItem(r, "fields"), fields);
        set_num(r, "modified_ms", tick(st));
    }
    save(path, st);
    cJSON_Delete(st);
    cJSON_Delete(fields);
}

cJSON *fake_fields(const char *path, const char *id)
{
    cJSON *st = load(path);
    cJSON *r = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(st, "records"), id);
    cJSON *f = r ? cJSON_Duplicate(cJSON_GetObjectItem(r, "fields"), 1) : NULL;
    cJSON_Delete(st);
    return f;
}

int fake_count(const char *path)
{
    cJSON *st = load(path);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(st, "records"));
    cJSON_Delete(st);
    return n;
}

int fake_writes(const char *path)
{
    cJSON *st = load(path);
    int n = (int)num(st, "writes");
    cJSON_Delete(st);
    return n;
}

void fake_set(const char *path, const char *name, double value)
{
    cJSON *st = load(path);
    set_num(st, name, value);
    save(path, st);
    cJSON_Delete(st);
}

char *fake_find(const char *path, const char *field, const char *value)
{
    cJSON *st = load(path);
    char *found = NULL;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(st, "records"))
    {
        const char *v = cJSON_GetStringValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(r, "fields"), field));
        if (v && strcmp(v, value) == 0) {
            free(found);
            found = xstrdup(r->string);
        }
    }
    cJSON_Delete(st);
    return found;
}

/* ---------------------------------------------------------------- connector ops */

static void to_record(const cJSON *r, struct record *out)
{
    memset(out, 0, sizeof(*out));
    out->id = xstrdup(r->string);
    out->key = xstrdup(cJSON_GetStringValue(cJSON_GetObjectItem(r, "key")));
    out->modified_ms = (int64_t)num(r, "modified_ms");
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(r, "marker"));
    out->marker = m ? xstrdup(m) : NULL;
    out->modified_by = xstrdup("someone");
    out->fields = cJSON_Duplicate(cJSON_GetObjectItem(r, "fields"), 1);
}

static enum cb_status f_check(const struct endpoint_conf *ep, const struct side_conf *side,
                              struct strbuf *err)
{
    static const char *const req[] = {"store", NULL};
    return conf_require(&ep->g, req, "fake endpoint", err) ? CB_ERR_CONFIG : CB_OK;
}

static enum cb_status f_open(const struct connector_params *p, struct connector **out,
                             struct strbuf *err)
{
    struct connector *c = xcalloc(1, sizeof(*c));
    c->path = xstrdup(conf_get(&p->ep->g, "store"));
    *out = c;
    return CB_OK;
}

static void f_close(struct connector *c)
{
    free(c->path);
    free(c);
}

static enum cb_status f_ping(struct connector *c, struct strbuf *info, struct strbuf *err)
{
    cJSON *st = load(c->path);
    if (!st) {
        strbuf_setf(err, "cannot read fake store '%s'", c->path);
        return CB_ERR_TEMP;
    }
    strbuf_setf(info, "fake store '%s'", c->path);
    cJSON_Delete(st);
    return CB_OK;
}

static int cmp_mod(const void *a, const void *b)
{
    const struct record *x = a, *y = b;
    return (x->modified_ms > y->modified_ms) - (x->modified_ms < y->modified_ms);
}

static enum cb_status f_list(struct connector *c, int64_t since_ms, record_page_fn fn, void *arg,
                             struct strbuf *err)
{
    cJSON *st = load(c->path);
    struct record_list l = {0};
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(st, "records"))
    {
        if ((int64_t)num(r, "modified_ms") < since_ms)
            continue;
        struct record rec;
        to_record(r, &rec);
        record_list_push(&l, &rec);
    }
    cJSON_Delete(st);
    if (l.n)
        qsort(l.v, l.n, sizeof(*l.v), cmp_mod);
    enum cb_status res = CB_OK;
    for (size_t i = 0; i < l.n && res == CB_OK; i += 50)
        res = fn(arg, l.v + i, l.n - i < 50 ? l.n - i : 50);
    record_list_release(&l);
    return res;
}

static enum cb_status f_get_many(struct connector *c, const char *const *ids, size_t n,
                                 struct record_list *out, struct strbuf *err)
{
    cJSON *st = load(c->path);
    for (size_t i = 0; i < n; i++) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(st, "records"), ids[i]);
        if (!r)
            continue;
        struct record rec;
        to_record(r, &rec);
        record_list_push(out, &rec);
    }
    cJSON_Delete(st);
    return CB_OK;
}

static void write_one(cJSON *st, struct write_op *op)
{
    set_num(st, "writes", num(st, "writes") + 1);
    cJSON *recs = cJSON_GetObjectItem(st, "records");
    if (!op->id) {
        char *id = new_record(st, op->fields, op->marker);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(recs, id);
        to_record(r, &op->rec);
        free(id);
        if (num(st, "drop_creates") > 0) {
            set_num(st, "drop_creates", num(st, "drop_creates") - 1);
            record_release(&op->rec);
            op->st = CB_ERR_TEMP;
            strbuf_setf(&op->err, "connection lost after sending the create");
        }
        return;
    }
    cJSON *r = cJSON_GetObjectItemCaseSensitive(recs, op->id);
    if (!r) {
        op->st = CB_ERR_NOTFOUND;
        strbuf_setf(&op->err, "no record '%s'", op->id);
        return;
    }
    if (num(st, "fail_updates_final") > 0) {
        set_num(st, "fail_updates_final", num(st, "fail_updates_final") - 1);
        op->st = CB_ERR_FINAL;
        strbuf_setf(&op->err, "invalid data for '%s'", op->id);
        return;
    }
    if (num(st, "fail_updates_temp") > 0) {
        set_num(st, "fail_updates_temp", num(st, "fail_updates_temp") - 1);
        op->st = CB_ERR_TEMP;
        strbuf_setf(&op->err, "http 503");
        return;
    }
    merge_fields(cJSON_GetObjectItem(r, "fields"), op->fields);
    set_num(r, "modified_ms", tick(st));
    to_record(r, &op->rec);
}

static enum cb_status f_write(struct connector *c, struct write_op *ops, size_t n,
                              struct strbuf *err)
{
    cJSON *st = load(c->path);
    for (size_t i = 0; i < n; i++)
        write_one(st, &ops[i]);
    save(c->path, st);
    cJSON_Delete(st);
    return CB_OK;
}

static enum cb_status f_find_marker(struct connector *c, const char *marker, int64_t since_ms,
                                    struct record *out, struct strbuf *err)
{
    cJSON *st = load(c->path);
    double lag = num(st, "lag_ms"), now = (double)cbtime_now_ms();
    enum cb_status res = CB_ERR_NOTFOUND;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(st, "records"))
    {
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(r, "marker"));
        if (m && strcmp(m, marker) == 0 && num(r, "created_ms") + lag <= now) {
            to_record(r, out);
            res = CB_OK;
            break;
        }
    }
    cJSON_Delete(st);
    return res;
}

static struct connector_ops fake_ops = {
    .name = "fake",
    .check_config = f_check,
    .open = f_open,
    .close = f_close,
    .ping = f_ping,
    .list_changed = f_list,
    .get_many = f_get_many,
    .write = f_write,
    .find_marker = f_find_marker,
    .max_batch_read = 10,
    .max_batch_write = 3,
    .search_lag_ms = 0,
};

void fake_reads_current(int yes)
{
    fake_ops.write_reads_current = yes;
}

void fake_register(void)
{
    const char *lag = getenv("CB_FAKE_SEARCH_LAG_MS");
    fake_ops.search_lag_ms = lag ? strtoll(lag, NULL, 10) : 0;
    connector_register(&fake_ops);
}
