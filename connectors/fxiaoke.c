/*
 * Fxiaoke / 纷享销客 (ShareCRM) open API connector: corp access token (body auth) or OAuth2
 * bearer token (x-fs-ea / x-fs-userid headers), one object per side (preset ...Obj on
 * /cgi/crm/v2/data, custom __c on /cgi/crm/custom/v2/data), field metadata from describe (select
 * values <-> labels), incremental listing on last_modified_time restarted from the last time
 * seen (offsets over a moving set skip rows), reads by _id IN, one-record creates and partial
 * updates with workflows off, owners changed through changeOwner, employee fields read as people
 * from the company's employee list, markers in a text field found with an EQ query.
 * Every answer is HTTP 200 with an errorCode; each code is classed once, in code_class().
 * It does not read details (slave objects) or take event pushes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cache/cache.h"
#include "connectors/connector.h"
#include "connectors/filter_expr.h"
#include "connectors/pace.h"
#include "core/timeutil.h"
#include "mapping/richtext.h"

#define LOG_MODULE "fxiaoke"
#include "core/log.h"

#define FX_LIMIT 100      /* query limit: the documented maximum */
#define FX_BATCH 100      /* ids per _id IN read */
#define FX_RATE_CALLS 100 /* per interface per 20 s, unless rate_limit says otherwise */
#define FX_RATE_WINDOW 20000
#define FX_RENEW_MS 600000 /* renew in the last 600 s (the 6,600..7,200 s window) */
#define FX_RETRIES 2       /* extra attempts for busy / frequency answers */
#define FX_MAX_IFACES 16
#define FX_PAGE_BUDGET 20000 /* pages per listing: a server that never ends cannot spin us */
#define FX_DEFAULT_WEB "https://www.fxiaoke.com"
#define FX_ALL_DEPARTMENTS 999999 /* the root department: the whole company */
#define FX_OWNER "owner"

enum fkind {
    FK_TEXT,
    FK_LONG,
    FK_SELECT,
    FK_MULTI,
    FK_DATE,
    FK_DATETIME,
    FK_NUMBER,
    FK_BOOL,
    FK_REF,
    FK_EMPLOYEE,
    FK_OTHER
};

struct fopt {
    char *value, *label;
};

struct ffield {
    char *name;
    enum fkind kind;
    int read_only;
    struct fopt *opts;
    size_t n_opts;
};

struct iface_pace {
    char *path;
    struct pace *pace; /* shared by every connection of the app to the same gateway */
};

struct connector {
    char *name; /* endpoint name: messages and the token cache key */
    char *api_url, *web_url, *app_id, *app_secret, *permanent_code, *user_id;
    char *marker_field, *object;
    int bearer, custom, tz_min;
    int rate_limit; /* calls per interface per 20 s (the tenant's package) */
    struct http *http;
    struct cache *cache;
    char **want; /* remote fields the mapping needs, pseudo fields dropped */
    size_t n_want;
    char *token, *corp; /* access token and corpId (corp auth) or ea (bearer auth) */
    int64_t token_exp_ms;
    int cache_tried;
    struct ffield *meta; /* the object's fields; NULL until described */
    size_t n_meta;
    char *label;     /* the object's display name */
    char *key_field; /* an auto_number field, or NULL */
    struct iface_pace paces[FX_MAX_IFACES];
    size_t n_paces;
    char *filter_text;      /* the side's `filter`, or NULL */
    cJSON *filters;         /* its conditions as query filters (ANDed into listings) */
    struct filter *filter;  /* the same, evaluated on records read by id */
    struct person_list dir; /* the employees, for the names and e-mails of employee fields */
    int dir_tried;          /* dir was loaded (or could not be) */
};

/* One call: the interface path, its data member (borrowed) and the options beside data. */
struct fx_call {
    const char *path;
    const cJSON *data;
    int create;        /* not idempotent: no retry of busy answers, no curl resend */
    int flows;         /* add triggerWorkFlow / triggerApprovalFlow = false */
    int top;           /* data's members go beside the auth fields, not into a data member */
    const cJSON *opts; /* options beside the auth fields (hasSpecifyTime...); may be NULL */
};

static const char *const ep_keys[] = {"api_url",        "app_id",  "app_secret",
                                      "permanent_code", "user_id", NULL};
static const char *const ep_extra[] = {"auth",       "marker_field", "web_url",
                                       "utc_offset", "rate_limit",   NULL};
static const char *const side_keys[] = {"object", NULL};
static const char *const side_extra[] = {"filter", NULL};
static const char *const system_ro[] = {
    "_id",         "create_time", "created_by", "last_modified_time", "last_modified_by",
    "life_status", "lock_status", "version",    "is_deleted",         "object_describe_api_name",
    NULL};

/* ---- small helpers ---------------------------------------------------------------------- */

static void secret_free(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s));
    free(s);
}

static int listed(const char *const *l, const char *s)
{
    while (*l && strcmp(*l, s) != 0)
        l++;
    return *l != NULL;
}

static const char *jstr(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static char *dup_or_null(const char *s)
{
    return s && *s ? xstrdup(s) : NULL;
}

static char *trimmed_url(const char *u)
{
    size_t n = strlen(u);
    while (n && u[n - 1] == '/')
        n--;
    return xstrndup(u, n);
}

static int is_api_name(const char *s)
{
    return *s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
                     strlen(s);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A JSON number or numeric string as int64 epoch ms; 0 when neither. */
static int64_t json_ms(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return (int64_t)v->valuedouble;
    if (cJSON_IsString(v) && *v->valuestring)
        return strtoll(v->valuestring, NULL, 10);
    return 0;
}

/* ---- configuration ---------------------------------------------------------------------- */

static int check_url(const struct conf_group *g, const char *key, struct strbuf *err)
{
    const char *v = conf_get(g, key);
    if (!v || strncmp(v, "https://", 8) == 0 || strncmp(v, "http://", 7) == 0)
        return 0;
    conf_error(g, key, err, "'%s' must be an http:// or https:// url, got '%s'", key, v);
    return 1;
}

static int check_endpoint_values(const struct conf_group *g, struct strbuf *err)
{
    int bad = check_url(g, "api_url", err) + check_url(g, "web_url", err), tz = 0;
    const char *auth = conf_get(g, "auth"), *mf = conf_get(g, "marker_field");
    const char *off = conf_get(g, "utc_offset");
    if (auth && strcmp(auth, "corp") != 0 && strcmp(auth, "bearer") != 0) {
        conf_error(g, "auth", err, "'auth' must be \"corp\" or \"bearer\", got '%s'", auth);
        bad++;
    }
    if (mf && !is_api_name(mf)) {
        conf_error(g, "marker_field", err, "'marker_field' must be a field api name, got '%s'", mf);
        bad++;
    }
    const char *rl = conf_get(g, "rate_limit");
    if (rl && (strspn(rl, "0123456789") != strlen(rl) || atoi(rl) < 10 || atoi(rl) > 100000)) {
        conf_error(g, "rate_limit", err,
                   "'rate_limit' is calls per interface per 20 s (10..100000), got '%s'", rl);
        bad++;
    }
    if (off && cbtime_parse_offset(off, &tz) != CB_OK) {
        conf_error(g, "utc_offset", err, "'utc_offset' must look like \"+08:00\", got '%s'", off);
        bad++;
    }
    for (const char *const *k = (const char *const[]){"app_secret", "permanent_code", NULL}; *k;
         k++) {
        char *v = NULL;
        if (conf_find(g, *k) && conf_secret(g, *k, &v, err) != CB_OK)
            bad++;
        secret_free(v);
    }
    return bad;
}

/* Appends one query filter; values (owned) is a JSON array. */
static void add_filter(cJSON *filters, const char *field, const char *op, cJSON *values)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "field_name", field);
    cJSON_AddItemToObject(f, "field_values", values);
    cJSON_AddStringToObject(f, "operator", op);
    cJSON_AddItemToArray(filters, f);
}

/* The operators a scope filter may use: the query's own name and how it reads locally. */
static const struct {
    const char *name;
    enum filter_op op;
    int n_min; /* values needed */
} scope_ops[] = {
    {"EQ", FILTER_EQ, 1},    {"N", FILTER_NE, 1},       {"IN", FILTER_IN, 1},
    {"NIN", FILTER_NIN, 1},  {"LIKE", FILTER_LIKE, 1},  {"STARTWITH", FILTER_STARTS, 1},
    {"IS", FILTER_EMPTY, 0}, {"ISN", FILTER_NEMPTY, 0}, {NULL, FILTER_EQ, 0}};

/* One condition {field, operator, values} into the query filters and the local filter (either
 * may be NULL: check only). */
static enum cb_status scope_cond(const cJSON *o, cJSON *filters, struct filter *local,
                                 struct strbuf *why)
{
    const char *field = jstr(o, "field"), *opname = jstr(o, "operator");
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(o, "values"), *v;
    int k = 0;
    while (opname && scope_ops[k].name && strcmp(scope_ops[k].name, opname))
        k++;
    if (!cJSON_IsObject(o) || !field || !is_api_name(field)) {
        strbuf_setf(why, "each condition needs a 'field' api name");
        return CB_ERR_CONFIG;
    }
    if (!opname || !scope_ops[k].name) {
        strbuf_setf(why, "'operator' of '%s' must be EQ, N, IN, NIN, LIKE, STARTWITH, IS or ISN",
                    field);
        return CB_ERR_CONFIG;
    }
    size_t n = 0;
    const char *texts[64];
    char nums[64][32];
    cJSON_ArrayForEach(v, vals) if (n < 64 && (cJSON_IsString(v) || cJSON_IsNumber(v)))
    {
        if (cJSON_IsNumber(v))
            snprintf(nums[n], sizeof(nums[n]), "%.17g", v->valuedouble);
        texts[n] = cJSON_IsString(v) ? v->valuestring : nums[n];
        n++;
    }
    if ((vals && !cJSON_IsArray(vals)) || (int)n != cJSON_GetArraySize(vals) ||
        (int)n < scope_ops[k].n_min) {
        strbuf_setf(why, "'values' of '%s' must be a list of up to 64 strings or numbers%s", field,
                    scope_ops[k].n_min ? ", not empty" : "");
        return CB_ERR_CONFIG;
    }
    if (filters)
        add_filter(filters, field, opname, vals ? cJSON_Duplicate(vals, 1) : cJSON_CreateArray());
    if (local)
        filter_add(local, field, scope_ops[k].op, texts, n);
    return CB_OK;
}

/* Parses a filter setting: one condition or a list of them, as JSON (libconfig groups reach the
 * connector as JSON text). filters and local may be NULL (check only). */
static enum cb_status scope_parse(const char *text, cJSON *filters, struct filter *local,
                                  struct strbuf *why)
{
    cJSON *j = cJSON_ParseWithLengthOpts(text, strlen(text) + 1, NULL, 1); /* +1: the NUL */
    enum cb_status st = CB_OK;
    if (!j || (!cJSON_IsObject(j) && !cJSON_IsArray(j)) ||
        (cJSON_IsArray(j) && !cJSON_GetArraySize(j))) {
        strbuf_setf(why, "not one condition or a list of them");
        st = CB_ERR_CONFIG;
    } else if (cJSON_IsObject(j)) {
        st = scope_cond(j, filters, local, why);
    } else {
        const cJSON *o;
        cJSON_ArrayForEach(o, j) if (st == CB_OK) st = scope_cond(o, filters, local, why);
    }
    cJSON_Delete(j);
    return st;
}

static int check_side(const struct side_conf *side, struct strbuf *err)
{
    const struct conf_group *g = &side->g;
    int bad = conf_require(g, side_keys, "the fxiaoke side of the pair", err);
    bad += conf_unknown_keys(g, side_keys, side_extra, "fxiaoke side", err);
    const char *o = conf_get(g, "object");
    if (o && (!is_api_name(o) || !(ends_with(o, "Obj") || ends_with(o, "__c")))) {
        conf_error(g, "object", err,
                   "'object' must be an object api name (\"CasesObj\" or a custom "
                   "\"object_xxx__c\"), got '%s'",
                   o);
        bad++;
    }
    const char *f = conf_get(g, "filter");
    struct strbuf why = STRBUF_INIT;
    if (f && scope_parse(f, NULL, NULL, &why) != CB_OK) {
        conf_error(g, "filter", err,
                   "fxiaoke 'filter' must be { field = \"record_type\"; operator = \"EQ\"; "
                   "values = [\"default__c\"]; } or a list of them: %s",
                   why.buf);
        bad++;
    }
    strbuf_release(&why);
    return bad;
}

static enum cb_status fx_check_config(const struct endpoint_conf *ep, const struct side_conf *side,
                                      struct strbuf *err)
{
    struct strbuf what = STRBUF_INIT;
    (void)strbuf_addf(&what, "fxiaoke endpoint '%s'", ep->name ? ep->name : "?");
    int bad = conf_require(&ep->g, ep_keys, what.buf, err);
    bad += conf_unknown_keys(&ep->g, ep_keys, ep_extra, "fxiaoke endpoint", err);
    bad += check_endpoint_values(&ep->g, err);
    if (side)
        bad += check_side(side, err);
    strbuf_release(&what);
    return bad ? CB_ERR_CONFIG : CB_OK;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void meta_free(struct connector *c)
{
    for (size_t i = 0; i < c->n_meta; i++) {
        for (size_t k = 0; k < c->meta[i].n_opts; k++) {
            free(c->meta[i].opts[k].value);
            free(c->meta[i].opts[k].label);
        }
        free(c->meta[i].opts);
        free(c->meta[i].name);
    }
    free(c->meta);
    c->meta = NULL;
    c->n_meta = 0;
    free(c->label);
    free(c->key_field);
    c->label = c->key_field = NULL;
}

static void token_drop(struct connector *c)
{
    secret_free(c->token);
    free(c->corp);
    c->token = c->corp = NULL;
    c->token_exp_ms = 0;
}

static void fx_close(struct connector *c)
{
    if (!c)
        return;
    meta_free(c);
    token_drop(c);
    for (size_t i = 0; i < c->n_want; i++)
        free(c->want[i]);
    for (size_t i = 0; i < c->n_paces; i++)
        free(c->paces[i].path);
    free(c->want);
    free(c->name);
    free(c->api_url);
    free(c->web_url);
    free(c->app_id);
    secret_free(c->app_secret);
    secret_free(c->permanent_code);
    free(c->user_id);
    free(c->marker_field);
    free(c->object);
    free(c->filter_text);
    cJSON_Delete(c->filters);
    filter_free(c->filter);
    person_list_release(&c->dir);
    http_free(c->http);
    free(c);
}

static void want_add(struct connector *c, const char *f)
{
    if (!f || f[0] == '$')
        return;
    for (size_t i = 0; i < c->n_want; i++)
        if (strcmp(c->want[i], f) == 0)
            return;
    c->want = xrealloc(c->want, (c->n_want + 1) * sizeof(*c->want));
    c->want[c->n_want++] = xstrdup(f);
}

static void open_settings(struct connector *c, const struct connector_params *p)
{
    const struct conf_group *g = &p->ep->g;
    const char *web = conf_get(g, "web_url"), *mf = conf_get(g, "marker_field");
    const char *off = conf_get(g, "utc_offset");
    c->name = xstrdup(p->ep->name ? p->ep->name : "fxiaoke");
    c->api_url = trimmed_url(conf_get(g, "api_url"));
    c->web_url = trimmed_url(web ? web : FX_DEFAULT_WEB);
    c->app_id = xstrdup(conf_get(g, "app_id"));
    c->user_id = xstrdup(conf_get(g, "user_id"));
    c->marker_field = xstrdup(mf ? mf : "crmbridge_id__c");
    c->object = xstrdup(p->side ? conf_get(&p->side->g, "object") : "CasesObj");
    c->custom = ends_with(c->object, "__c");
    c->bearer = str_eq(conf_get(g, "auth"), "bearer");
    c->tz_min = 480; /* China Standard Time unless utc_offset says otherwise */
    c->rate_limit = conf_get(g, "rate_limit") ? atoi(conf_get(g, "rate_limit")) : FX_RATE_CALLS;
    if (off && cbtime_parse_offset(off, &c->tz_min) != CB_OK)
        c->tz_min = 480; /* check_config rejected it already */
    const char *f = p->side ? conf_get(&p->side->g, "filter") : NULL;
    struct strbuf ignore = STRBUF_INIT;
    if (f) {
        c->filter_text = xstrdup(f);
        c->filters = cJSON_CreateArray();
        c->filter = filter_new_all();
        (void)scope_parse(f, c->filters, c->filter, &ignore); /* check_config passed it */
    }
    strbuf_release(&ignore);
}

static enum cb_status fx_open(const struct connector_params *p, struct connector **out,
                              struct strbuf *err)
{
    *out = NULL;
    struct strbuf why = STRBUF_INIT;
    struct connector *c = NULL;
    enum cb_status st = fx_check_config(p->ep, p->side, &why);
    if (st == CB_OK) {
        c = xcalloc(1, sizeof(*c));
        open_settings(c, p);
        if (conf_secret(&p->ep->g, "app_secret", &c->app_secret, &why) != CB_OK ||
            conf_secret(&p->ep->g, "permanent_code", &c->permanent_code, &why) != CB_OK)
            st = CB_ERR_CONFIG;
    }
    if (st != CB_OK) {
        strbuf_trim_end(&why);
        strbuf_setf(err, "%s", why.buf);
        strbuf_release(&why);
        fx_close(c);
        return st;
    }
    strbuf_release(&why);
    c->http = connector_http_new(p);
    c->cache = p->cache;
    for (const char *const *f = p->fields; f && *f; f++)
        want_add(c, *f);
    *out = c;
    return CB_OK;
}

/* ---- error codes ------------------------------------------------------------------------ */

/* The failure class of a non-zero errorCode. Sources disagree on the table (see the API notes):
 * credentials, permissions and quota-not-bought stop the endpoint; busy and timeouts are worth
 * an immediate retry; frequency and daily quota a later one; the rest rejects one request. */
static enum cb_status code_class(long code)
{
    static const long temp[] = {-1, -2, 50009, 0};
    static const long wait[] = {30004, 30002, 14001, 0};
    static const long auth[] = {20005, 20006, 20015, 20016, 20017, 20020, 20021,
                                20022, 20023, 15003, 30003, 30007, 30027, 0};
    for (int i = 0; temp[i]; i++)
        if (code == temp[i])
            return CB_ERR_TEMP;
    for (int i = 0; wait[i]; i++)
        if (code == wait[i])
            return CB_ERR_WAIT;
    for (int i = 0; auth[i]; i++)
        if (code == auth[i])
            return CB_ERR_AUTH;
    if ((code >= 10001 && code <= 10099) || (code >= 11001 && code <= 11099))
        return CB_ERR_AUTH; /* missing or illegal appId / appSecret / permanentCode */
    return CB_ERR_FINAL;
}

static int token_code(long code)
{
    return code == 20016 || code == 20017;
}

/* ---- transport -------------------------------------------------------------------------- */

static struct pace *pace_for(struct connector *c, const char *path)
{
    for (size_t i = 0; i < c->n_paces; i++)
        if (strcmp(c->paces[i].path, path) == 0)
            return c->paces[i].pace;
    struct iface_pace *ip = &c->paces[c->n_paces < FX_MAX_IFACES ? c->n_paces++ : 0];
    free(ip->path);
    ip->path = xstrdup(path);
    /* a bucket of the full 100 refilled at 100 per 20 s lets 200 calls through in some 20 s
     * window: a bucket of a fifth, refilled so that burst + refill stay at 95% of the limit in
     * any window, however the gateway counts */
    int burst = c->rate_limit / 5, budget = c->rate_limit * 95 / 100;
    struct strbuf k = STRBUF_INIT, w = STRBUF_INIT;
    (void)strbuf_addf(&w, "%s%s %d", c->api_url, path, c->rate_limit);
    pace_key(&k, "fxiaoke app", c->app_id, w.buf);
    ip->pace = pace_shared(k.buf, burst, (int64_t)burst * FX_RATE_WINDOW / (budget - burst));
    strbuf_release(&k);
    strbuf_release(&w);
    return ip->pace;
}

/* ?thirdTraceId=<uuid v4>: newer docs ask for it on every call, older ones ignore it. */
static void trace_id(struct strbuf *url)
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char)(rand() & 0xff);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    (void)strbuf_adds(url, "?thirdTraceId=");
    for (size_t i = 0; i < sizeof(b); i++)
        (void)strbuf_addf(url, "%s%02x", i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", b[i]);
}

/* POSTs body to path; on CB_OK *out is the parsed answer (caller deletes) with any errorCode. */
static enum cb_status post_json(struct connector *c, const char *path, const char *body,
                                const char *const *headers, int create, const char *what,
                                cJSON **out, struct strbuf *err)
{
    struct strbuf url = STRBUF_INIT, why = STRBUF_INIT;
    (void)strbuf_addf(&url, "%s%s", c->api_url, path);
    trace_id(&url);
    struct http_req rq = {.method = "POST",
                          .url = url.buf,
                          .headers = headers,
                          .body = body,
                          .body_len = strlen(body),
                          .no_retry = create};
    struct http_resp resp;
    http_resp_init(&resp);
    *out = NULL;
    enum cb_status st = pace_wait(pace_for(c, path));
    if (st == CB_OK)
        st = http_request(c->http, &rq, &resp, &why);
    if (st != CB_OK) {
        strbuf_setf(err, "cannot %s: %s", what, why.len ? why.buf : cb_status_str(st));
    } else if (resp.status != 200) {
        strbuf_setf(err, "cannot %s: http %ld from the fxiaoke gateway", what, resp.status);
        st = resp.status == 401 ? CB_ERR_AUTH : http_classify(resp.status);
        st = st == CB_OK ? CB_ERR_PARSE : st;
    } else {
        const char *end = NULL;
        *out = cJSON_ParseWithLengthOpts(resp.body.buf, resp.body.len, &end, 0);
        if (!cJSON_IsObject(*out) ||
            !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(*out, "errorCode"))) {
            strbuf_setf(err, "cannot %s: %s from fxiaoke (%zu bytes)", what,
                        resp.body.len && resp.body.buf[0] == '<' ? "html" : "malformed json",
                        resp.body.len);
            st = resp.body.len && resp.body.buf[0] == '<' ? CB_ERR_TEMP : CB_ERR_PARSE;
            cJSON_Delete(*out);
            *out = NULL;
        }
    }
    http_resp_release(&resp);
    strbuf_release(&url);
    strbuf_release(&why);
    return st;
}

static long answer_code(const cJSON *j)
{
    return (long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "errorCode"));
}

/* "cannot <what>: fxiaoke error N (message)", and the code's class. */
static enum cb_status answer_failure(const cJSON *j, const char *what, struct strbuf *err)
{
    const char *msg = jstr(j, "errorMessage"), *desc = jstr(j, "errorDescription");
    strbuf_setf(err, "cannot %s: fxiaoke error %ld", what, answer_code(j));
    if (msg && *msg)
        (void)strbuf_addf(err, " (%s)", msg);
    else if (desc && *desc)
        (void)strbuf_addf(err, " (%s)", desc);
    return code_class(answer_code(j));
}

/* ---- tokens ----------------------------------------------------------------------------- */

static int token_fresh(const struct connector *c)
{
    return c->token && cbtime_now_ms() < c->token_exp_ms - FX_RENEW_MS;
}

static void token_adopt(struct connector *c, const char *tok, const char *corp, int64_t exp_ms)
{
    token_drop(c);
    c->token = xstrdup(tok);
    c->corp = xstrdup(corp);
    c->token_exp_ms = exp_ms;
    log_add_secret(c->token);
}

/* The blob kept (encrypted) in the cache; it is only reused by the same app, style and host. */
static char *token_blob(const struct connector *c)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "token", c->token);
    cJSON_AddStringToObject(j, "corp", c->corp);
    cJSON_AddNumberToObject(j, "expires_ms", (double)c->token_exp_ms);
    cJSON_AddStringToObject(j, "app_id", c->app_id);
    cJSON_AddStringToObject(j, "api_url", c->api_url);
    cJSON_AddBoolToObject(j, "bearer", c->bearer);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static void token_from_blob(struct connector *c, const struct strbuf *blob)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(blob->buf, blob->len, &end, 0);
    const char *tok = jstr(j, "token"), *corp = jstr(j, "corp");
    if (tok && corp && str_eq(jstr(j, "app_id"), c->app_id) &&
        str_eq(jstr(j, "api_url"), c->api_url) &&
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "bearer")) == c->bearer)
        token_adopt(c, tok, corp, json_ms(cJSON_GetObjectItemCaseSensitive(j, "expires_ms")));
    if (tok)
        explicit_bzero(cJSON_GetObjectItemCaseSensitive(j, "token")->valuestring, strlen(tok));
    cJSON_Delete(j);
}

/* Loads (store == 0) or stores the token in the cache; cache trouble is only logged. */
static void token_cache(struct connector *c, int store)
{
    struct cache_txn *t = NULL;
    struct strbuf blob = STRBUF_INIT, e = STRBUF_INIT;
    enum cb_status st = cache_txn_begin(c->cache, !store, &t, &e);
    if (st == CB_OK && store) {
        char *s = token_blob(c);
        st = cache_token_put(t, c->name, s, strlen(s));
        secret_free(s);
    } else if (st == CB_OK && cache_token_get(t, c->name, &blob) == CB_OK) {
        token_from_blob(c, &blob);
    }
    if (t && cache_txn_commit(t, &e) != CB_OK)
        st = CB_ERR_CACHE;
    if (st != CB_OK)
        log_warn("cannot %s the token of '%s' in the cache: %s", store ? "store" : "read", c->name,
                 e.buf);
    if (blob.alloc)
        explicit_bzero(blob.buf, blob.len);
    strbuf_release(&blob);
    strbuf_release(&e);
}

static enum cb_status token_answer(struct connector *c, const cJSON *j, const char *what,
                                   struct strbuf *err)
{
    const char *tok = jstr(j, c->bearer ? "accessToken" : "corpAccessToken");
    const char *corp = jstr(j, c->bearer ? "ea" : "corpId");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(j, "expiresIn");
    if (answer_code(j) != 0) {
        enum cb_status st = answer_failure(j, what, err);
        (void)strbuf_adds(err, st == CB_ERR_AUTH ? ": check app_id, app_secret and "
                                                   "permanent_code"
                                                 : "");
        return st;
    }
    if (!tok || !*tok || !corp || !*corp) {
        strbuf_setf(err, "cannot %s: the answer has no token", what);
        return CB_ERR_PARSE;
    }
    /* expiresIn is what is left of the token's life; renewing early returns the same token, so
     * a short remainder is kept for what it is worth rather than renewed in a loop */
    int64_t life = cJSON_IsNumber(in) ? (int64_t)(in->valuedouble * 1000) : 7200000;
    if (life <= FX_RENEW_MS)
        life = FX_RENEW_MS + (life > 30000 ? life - 30000 : 0) / 2;
    token_adopt(c, tok, corp, cbtime_now_ms() + life);
    return CB_OK;
}

static enum cb_status token_renew(struct connector *c, struct strbuf *err)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "appId", c->app_id);
    cJSON_AddStringToObject(body, "appSecret", c->app_secret);
    cJSON_AddStringToObject(body, "permanentCode", c->permanent_code);
    if (c->bearer)
        cJSON_AddStringToObject(body, "grantType", "app_secret");
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    struct strbuf what = STRBUF_INIT;
    (void)strbuf_addf(&what, "get a fxiaoke %s token from '%s'", c->bearer ? "bearer" : "corp",
                      c->api_url);
    cJSON *j = NULL;
    enum cb_status st = post_json(c, c->bearer ? "/oauth2.0/token" : "/cgi/corpAccessToken/get/V2",
                                  text, NULL, 0, what.buf, &j, err);
    secret_free(text);
    if (st == CB_OK)
        st = token_answer(c, j, what.buf, err);
    const char *tok = jstr(j, c->bearer ? "accessToken" : "corpAccessToken");
    if (tok)
        explicit_bzero((char *)tok, strlen(tok));
    cJSON_Delete(j);
    strbuf_release(&what);
    if (st == CB_OK && c->cache)
        token_cache(c, 1);
    return st;
}

static enum cb_status token_ensure(struct connector *c, struct strbuf *err)
{
    if (token_fresh(c))
        return CB_OK;
    if (!c->cache_tried && c->cache) {
        c->cache_tried = 1;
        token_cache(c, 0);
        if (token_fresh(c))
            return CB_OK;
    }
    return token_renew(c, err);
}

/* ---- API calls -------------------------------------------------------------------------- */

static char *call_body(const struct connector *c, const struct fx_call *fc)
{
    cJSON *body = cJSON_CreateObject();
    if (!c->bearer) {
        cJSON_AddStringToObject(body, "corpAccessToken", c->token);
        cJSON_AddStringToObject(body, "corpId", c->corp);
        cJSON_AddStringToObject(body, "currentOpenUserId", c->user_id);
    }
    if (fc->flows) {
        cJSON_AddFalseToObject(body, "triggerWorkFlow");
        cJSON_AddFalseToObject(body, "triggerApprovalFlow");
    }
    const cJSON *o;
    cJSON_ArrayForEach(o, fc->opts)
    {
        cJSON_AddItemToObject(body, o->string, cJSON_Duplicate(o, 1));
    }
    if (fc->top) {
        const cJSON *m;
        cJSON_ArrayForEach(m, fc->data)
        {
            cJSON_AddItemToObject(body, m->string, cJSON_Duplicate(m, 1));
        }
    } else {
        cJSON_AddItemToObject(body, "data", cJSON_Duplicate(fc->data, 1));
    }
    char *s = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    return s;
}

static enum cb_status call_once(struct connector *c, const struct fx_call *fc, const char *what,
                                cJSON **out, struct strbuf *err)
{
    struct strbuf auth = STRBUF_INIT, ea = STRBUF_INIT, uid = STRBUF_INIT;
    const char *headers[4] = {NULL};
    if (c->bearer) {
        (void)strbuf_addf(&auth, "authorization: Bearer %s", c->token);
        (void)strbuf_addf(&ea, "x-fs-ea: %s", c->corp);
        (void)strbuf_addf(&uid, "x-fs-userid: %s", c->user_id);
        headers[0] = auth.buf;
        headers[1] = ea.buf;
        headers[2] = uid.buf;
    }
    char *body = call_body(c, fc);
    enum cb_status st = post_json(c, fc->path, body, headers, fc->create, what, out, err);
    secret_free(body);
    if (auth.alloc)
        explicit_bzero(auth.buf, auth.len);
    strbuf_release(&auth);
    strbuf_release(&ea);
    strbuf_release(&uid);
    return st;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    if (!http_stopped())
        nanosleep(&ts, NULL);
}

/* Sends one call with a valid token. A token answer (20016, or 20017 for a token the gateway no
 * longer knows) renews the token and retries once; a frequency answer (30004) empties the
 * interface's bucket and retries; busy answers retry unless the call creates. On CB_OK *out is
 * the successful answer (caller deletes). */
static enum cb_status fx_call(struct connector *c, const struct fx_call *fc, const char *what,
                              cJSON **out, struct strbuf *err)
{
    int renewed = 0;
    *out = NULL;
    for (int attempt = 0;; attempt++) {
        enum cb_status st = token_ensure(c, err);
        cJSON *j = NULL;
        if (st == CB_OK)
            st = call_once(c, fc, what, &j, err);
        if (st != CB_OK)
            return st;
        long code = answer_code(j);
        if (code == 0) {
            *out = j;
            return CB_OK;
        }
        st = answer_failure(j, what, err);
        cJSON_Delete(j);
        if (token_code(code) && !renewed) {
            log_debug("fxiaoke token of '%s' rejected (%ld); getting a new one", c->name, code);
            token_drop(c);
            c->cache_tried = 1;
            renewed = 1;
            attempt--;
            continue;
        }
        if (code == 30004)
            pace_drain(pace_for(c, fc->path));
        int again = attempt < FX_RETRIES && (code == 30004 || (st == CB_ERR_TEMP && !fc->create));
        if (!again)
            return st;
        log_debug("%s; retrying", err->buf);
        pause_ms(code == 30004 ? 0 : 200L << attempt);
    }
}

/* ---- describe --------------------------------------------------------------------------- */

static const struct ffield *meta_find(const struct connector *c, const char *name)
{
    for (size_t i = 0; i < c->n_meta; i++)
        if (strcmp(c->meta[i].name, name) == 0)
            return &c->meta[i];
    return NULL;
}

static enum fkind kind_of(const char *t)
{
    static const struct {
        const char *type;
        enum fkind kind;
    } kinds[] = {{"long_text", FK_LONG},     {"select_one", FK_SELECT},
                 {"select_many", FK_MULTI},  {"date", FK_DATE},
                 {"date_time", FK_DATETIME}, {"number", FK_NUMBER},
                 {"currency", FK_NUMBER},    {"percentile", FK_NUMBER},
                 {"true_or_false", FK_BOOL}, {"object_reference", FK_REF},
                 {"employee", FK_EMPLOYEE},  {"text", FK_TEXT},
                 {"email", FK_TEXT},         {"phone_number", FK_TEXT},
                 {"url", FK_TEXT},           {"auto_number", FK_TEXT}};
    for (size_t i = 0; t && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].type, t) == 0)
            return kinds[i].kind;
    return FK_OTHER;
}

static void field_adopt(struct connector *c, const char *name, const cJSON *f)
{
    const char *type = jstr(f, "type");
    struct ffield *z = &c->meta[c->n_meta++];
    z->name = xstrdup(name);
    z->kind = kind_of(type);
    z->read_only = listed(system_ro, name) || str_eq(type, "auto_number") ||
                   str_eq(type, "formula") || str_eq(type, "count") ||
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "is_readonly"));
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(f, "options"), *o;
    z->opts = xcalloc((size_t)cJSON_GetArraySize(opts) + 1, sizeof(*z->opts));
    cJSON_ArrayForEach(o, opts)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
        const char *label = jstr(o, "label");
        char num[32];
        if (cJSON_IsNumber(v))
            snprintf(num, sizeof(num), "%.0f", v->valuedouble);
        const char *value = cJSON_IsString(v) ? v->valuestring : cJSON_IsNumber(v) ? num : NULL;
        if (!value || !label)
            continue;
        z->opts[z->n_opts].value = xstrdup(value);
        z->opts[z->n_opts++].label = xstrdup(label);
    }
    if (!c->key_field && str_eq(type, "auto_number"))
        c->key_field = xstrdup(name);
}

static enum cb_status meta_load(struct connector *c, struct strbuf *err)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "apiName", c->object);
    cJSON_AddFalseToObject(data, "includeDetail");
    struct strbuf what = STRBUF_INIT;
    (void)strbuf_addf(&what, "describe fxiaoke object '%s'", c->object);
    struct fx_call fc = {.path = "/cgi/crm/v2/object/describe", .data = data};
    cJSON *j = NULL;
    enum cb_status st = fx_call(c, &fc, what.buf, &j, err);
    const cJSON *desc =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "data"), "describe");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(desc, "fields"), *f;
    if (st == CB_ERR_FINAL)
        (void)strbuf_addf(err, " (check 'object' in the pair: custom objects end in __c)");
    if (st == CB_OK && !cJSON_IsObject(fields)) {
        strbuf_setf(err, "cannot %s: no field list in the answer", what.buf);
        st = CB_ERR_PARSE;
    }
    if (st == CB_OK) {
        meta_free(c);
        c->meta = xcalloc((size_t)cJSON_GetArraySize(fields) + 1, sizeof(*c->meta));
        cJSON_ArrayForEach(f, fields)
        {
            if (f->string)
                field_adopt(c, f->string, f);
        }
        c->label = dup_or_null(jstr(desc, "display_name"));
    }
    cJSON_Delete(j);
    cJSON_Delete(data);
    strbuf_release(&what);
    return st;
}

static enum cb_status meta_ensure(struct connector *c, struct strbuf *err)
{
    return c->meta ? CB_OK : meta_load(c, err);
}

/* The mapped fields the object does not have ("a, b"), appended to sb; returns how many. */
static size_t unmapped(const struct connector *c, struct strbuf *sb)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_want; i++)
        if (!meta_find(c, c->want[i]))
            (void)strbuf_addf(sb, "%s%s", n++ ? ", " : "", c->want[i]);
    return n;
}

static enum cb_status fx_ping(struct connector *c, struct strbuf *info, struct strbuf *err)
{
    meta_free(c);
    enum cb_status st = meta_load(c, err);
    if (st != CB_OK)
        return st;
    const cJSON *sf;
    cJSON_ArrayForEach(sf, c->filters) if (!meta_find(c, jstr(sf, "field_name")))
    {
        strbuf_setf(err, "field '%s' of the filter does not exist in fxiaoke object '%s'",
                    jstr(sf, "field_name"), c->object);
        return CB_ERR_CONFIG;
    }
    struct strbuf miss = STRBUF_INIT;
    size_t n = unmapped(c, &miss);
    if (n)
        log_warn("fxiaoke object '%s' has no field %s: left unmapped", c->object, miss.buf);
    if (info) {
        strbuf_setf(info, "fxiaoke '%s' (%s, %s auth), object %s%s%s%s, %zu fields", c->name,
                    c->api_url, c->bearer ? "bearer" : "corp", c->object, c->label ? " (" : "",
                    c->label ? c->label : "", c->label ? ")" : "", c->n_meta);
        if (n)
            (void)strbuf_addf(info, "; left unmapped (not on the object): %s", miss.buf);
        if (c->filter_text)
            (void)strbuf_addf(info, "; filter %s", c->filter_text);
        if (!meta_find(c, c->marker_field))
            (void)strbuf_addf(info,
                              "; no marker field '%s' (creates in fxiaoke need a text "
                              "field with that api name)",
                              c->marker_field);
    }
    strbuf_release(&miss);
    return CB_OK;
}

/* ---- records ---------------------------------------------------------------------------- */

static const char *data_path(const struct connector *c, const char *verb, struct strbuf *sb)
{
    strbuf_reset(sb);
    (void)strbuf_addf(sb, "/cgi/crm/%sv2/data/%s", c->custom ? "custom/" : "", verb);
    return sb->buf;
}

/* The browser address of a record (the web UI's object detail route). */
static char *record_url(const struct connector *c, const char *id)
{
    struct strbuf sb = STRBUF_INIT;
    (void)strbuf_addf(&sb, "%s/XV/UI/Home#objdetail/%s/%s", c->web_url, c->object, id);
    return strbuf_detach(&sb);
}

static const char *opt_label(const struct ffield *f, const char *value)
{
    for (size_t i = 0; i < f->n_opts; i++)
        if (strcmp(f->opts[i].value, value) == 0)
            return f->opts[i].label;
    return value; /* an option describe does not list: keep the value */
}

static cJSON *canon_select(const struct ffield *f, const cJSON *v)
{
    if (cJSON_IsString(v))
        return *v->valuestring ? cJSON_CreateString(opt_label(f, v->valuestring))
                               : cJSON_CreateNull();
    cJSON *arr = cJSON_CreateArray();
    const cJSON *x;
    cJSON_ArrayForEach(x, v)
    {
        if (cJSON_IsString(x))
            cJSON_AddItemToArray(arr, cJSON_CreateString(opt_label(f, x->valuestring)));
    }
    return arr;
}

/* The display text of a lookup or employee: the <field>__r companion. */
static cJSON *canon_ref(const cJSON *item, const char *name)
{
    struct strbuf r = STRBUF_INIT;
    (void)strbuf_addf(&r, "%s__r", name);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, r.buf);
    strbuf_release(&r);
    if (cJSON_IsArray(v))
        v = cJSON_GetArrayItem(v, 0);
    const char *s = cJSON_IsString(v) ? v->valuestring : jstr(v, "name");
    return s && *s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static const struct person *dir_find(const struct connector *c, const char *id)
{
    for (size_t i = 0; i < c->dir.n; i++)
        if (strcmp(c->dir.v[i].id, id) == 0)
            return &c->dir.v[i];
    return NULL;
}

/* An employee field ([id], first id kept) as a person: name and e-mail from the employee list,
 * else the name of the <field>__r companion. */
static cJSON *canon_person(const struct connector *c, const cJSON *item, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, name);
    const char *id = cJSON_GetStringValue(cJSON_IsArray(v) ? cJSON_GetArrayItem(v, 0) : v);
    if (!id || !*id)
        return cJSON_CreateNull();
    const struct person *p = dir_find(c, id);
    if (p)
        return person_to_json(id, p->name, p->email);
    cJSON *r = canon_ref(item, name);
    cJSON *out = person_to_json(id, cJSON_GetStringValue(r), NULL);
    cJSON_Delete(r);
    return out;
}

static cJSON *canon_time(const struct connector *c, enum fkind k, const cJSON *v)
{
    char buf[CBTIME_BUFSZ];
    int64_t ms = json_ms(v);
    if (!ms && !(cJSON_IsNumber(v) || (cJSON_IsString(v) && *v->valuestring == '0')))
        return cJSON_CreateNull();
    return cJSON_CreateString(k == FK_DATE ? cbtime_format_date(ms, c->tz_min, buf)
                                           : cbtime_format_iso(ms, c->tz_min, buf));
}

/* A wire value as the canonical value (see the connector conventions). */
static cJSON *canon_value(const struct connector *c, const struct ffield *f, const cJSON *item)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, f->name);
    if (f->kind == FK_EMPLOYEE)
        return canon_person(c, item, f->name);
    if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && !*v->valuestring && f->kind != FK_OTHER))
        return f->kind == FK_REF ? canon_ref(item, f->name) : cJSON_CreateNull();
    switch (f->kind) {
    case FK_LONG: {
        char *md = cJSON_IsString(v) ? richtext_plain_to_md(v->valuestring) : NULL;
        cJSON *out = md ? cJSON_CreateString(md) : cJSON_Duplicate(v, 1);
        free(md);
        return out;
    }
    case FK_SELECT:
    case FK_MULTI:
        return canon_select(f, v);
    case FK_DATE:
    case FK_DATETIME:
        return canon_time(c, f->kind, v);
    case FK_NUMBER:
        return cJSON_IsString(v) ? cJSON_CreateNumber(strtod(v->valuestring, NULL))
                                 : cJSON_Duplicate(v, 1);
    case FK_REF:
        return canon_ref(item, f->name);
    default:
        return cJSON_Duplicate(v, 1);
    }
}

/* The name of the user in employee field `field` (last_modified_by, created_by), else the id. */
static char *user_of(const cJSON *item, const char *field)
{
    cJSON *name = canon_ref(item, field);
    char *s = dup_or_null(cJSON_GetStringValue(name));
    cJSON_Delete(name);
    if (!s)
        s = dup_or_null(cJSON_GetStringValue(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(item, field), 0)));
    return s;
}

static enum cb_status record_decode(const struct connector *c, const cJSON *item, struct record *r,
                                    struct strbuf *err)
{
    const char *id = jstr(item, "_id");
    memset(r, 0, sizeof(*r));
    if (!id || !*id) {
        strbuf_setf(err, "cannot read fxiaoke object '%s': a record without an _id", c->object);
        return CB_ERR_PARSE;
    }
    r->id = xstrdup(id);
    r->key = c->key_field ? dup_or_null(jstr(item, c->key_field)) : NULL;
    r->url = record_url(c, id);
    r->modified_ms = json_ms(cJSON_GetObjectItemCaseSensitive(item, "last_modified_time"));
    r->modified_by = user_of(item, "last_modified_by");
    r->created_ms = json_ms(cJSON_GetObjectItemCaseSensitive(item, "create_time"));
    r->created_by = user_of(item, "created_by");
    r->marker = dup_or_null(jstr(item, c->marker_field));
    r->out_of_scope = c->filter && !filter_match(c->filter, item);
    r->fields = cJSON_CreateObject();
    for (size_t i = 0; i < c->n_want; i++) {
        const struct ffield *f = meta_find(c, c->want[i]);
        if (f) /* fields the object lacks stay absent: not known, not synced */
            cJSON_AddItemToObject(r->fields, f->name, canon_value(c, f, item));
    }
    return CB_OK;
}

static int is_invalid(const cJSON *item)
{
    return str_eq(jstr(item, "life_status"), "invalid");
}

/* ---- queries ---------------------------------------------------------------------------- */

static void add_order(cJSON *orders, const char *field)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "fieldName", field);
    cJSON_AddTrueToObject(o, "isAsc");
    cJSON_AddItemToArray(orders, o);
}

/* Adds field f to a projection unless it is there already. */
static void proj_add(cJSON *proj, const char *f)
{
    for (const cJSON *x = proj->child; x; x = x->next)
        if (strcmp(x->valuestring, f) == 0)
            return;
    cJSON_AddItemToArray(proj, cJSON_CreateString(f));
}

static void add_projection(const struct connector *c, cJSON *sqi)
{
    const char *own[] = {"_id",         "name",       "last_modified_time", "last_modified_by",
                         "create_time", "created_by", "life_status",        c->marker_field,
                         c->key_field};
    cJSON *proj = cJSON_AddArrayToObject(sqi, "fieldProjection");
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]) + c->n_want; i++) {
        const char *f = i < c->n_want ? c->want[i] : own[i - c->n_want];
        if (f && meta_find(c, f))
            proj_add(proj, f);
    }
    const cJSON *sf;
    cJSON_ArrayForEach(sf, c->filters) /* what the scope filter reads on records read by id */
        proj_add(proj, jstr(sf, "field_name"));
}

/* A query's data member; filters (owned) become search_query_info.filters. */
static cJSON *query_data(const struct connector *c, cJSON *filters, int offset, int by_time)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "dataObjectApiName", c->object);
    cJSON_AddFalseToObject(data, "find_explicit_total_num");
    cJSON *sqi = cJSON_AddObjectToObject(data, "search_query_info");
    cJSON_AddNumberToObject(sqi, "limit", FX_LIMIT);
    cJSON_AddNumberToObject(sqi, "offset", offset);
    cJSON_AddItemToObject(sqi, "filters", filters);
    cJSON *orders = cJSON_AddArrayToObject(sqi, "orders");
    if (by_time)
        add_order(orders, "last_modified_time");
    add_order(orders, "_id");
    add_projection(c, sqi);
    return data;
}

/* Runs one query page; *list borrows into *answer (caller deletes the answer). */
static enum cb_status query_page(struct connector *c, cJSON *data, const char *what, cJSON **answer,
                                 const cJSON **list, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    struct fx_call fc = {.path = data_path(c, "query", &path), .data = data};
    enum cb_status st = fx_call(c, &fc, what, answer, err);
    *list = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(*answer, "data"),
                                             "dataList");
    if (st == CB_OK && !cJSON_IsArray(*list)) {
        strbuf_setf(err, "cannot %s: answer without data.dataList", what);
        st = CB_ERR_PARSE;
    }
    strbuf_release(&path);
    return st;
}

/* Decodes the live (not invalidated) rows of list into out. */
static enum cb_status decode_rows(const struct connector *c, const cJSON *list,
                                  struct record_list *out, struct strbuf *err)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        struct record r;
        if (is_invalid(item))
            continue;
        enum cb_status st = record_decode(c, item, &r, err);
        if (st != CB_OK) {
            record_release(&r);
            return st;
        }
        record_list_push(out, &r);
    }
    return CB_OK;
}

/* ---- employees -------------------------------------------------------------------------- */

/* (Re)loads the employee list: /cgi/user/list of the whole company with every sub-department,
 * in one answer (the API has no paging); stopped employees left out. dir stays as it was on
 * failure. */
static enum cb_status dir_load(struct connector *c, struct strbuf *err)
{
    cJSON *data = cJSON_CreateObject(), *j = NULL;
    cJSON_AddNumberToObject(data, "departmentId", FX_ALL_DEPARTMENTS);
    cJSON_AddTrueToObject(data, "fetchChild");
    struct fx_call fc = {.path = "/cgi/user/list", .data = data, .top = 1};
    enum cb_status st = fx_call(c, &fc, "list the fxiaoke employees", &j, err);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "userList"), *u;
    if (st == CB_OK && !cJSON_IsArray(list)) {
        strbuf_setf(err, "cannot list the fxiaoke employees: answer without userList");
        st = CB_ERR_PARSE;
    }
    if (st == CB_OK) {
        person_list_release(&c->dir);
        cJSON_ArrayForEach(u, list)
        {
            const char *id = jstr(u, "openUserId");
            if (id && *id && !dir_find(c, id) &&
                !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(u, "isStop")))
                person_list_add(&c->dir, id, jstr(u, "name"), jstr(u, "email"));
        }
    }
    c->dir_tried = 1;
    cJSON_Delete(j);
    cJSON_Delete(data);
    return st;
}

/* Field metadata, and the employee list once when a mapped field holds employees (without
 * it employee fields still read, with the names of their __r companions and no e-mail). */
static enum cb_status read_ensure(struct connector *c, struct strbuf *err)
{
    enum cb_status st = meta_ensure(c, err);
    for (size_t i = 0; st == CB_OK && !c->dir_tried && i < c->n_want; i++) {
        const struct ffield *f = meta_find(c, c->want[i]);
        struct strbuf why = STRBUF_INIT;
        if (f && f->kind == FK_EMPLOYEE && dir_load(c, &why) != CB_OK)
            log_warn("%s; employee fields read without e-mails", why.buf);
        strbuf_release(&why);
    }
    return st;
}

/* The employees: every one once, the list kept for reading employee fields. */
static enum cb_status fx_list_users(struct connector *c, struct person_list *out,
                                    struct strbuf *err)
{
    enum cb_status st = dir_load(c, err);
    for (size_t i = 0; st == CB_OK && i < c->dir.n; i++) {
        const struct person *p = &c->dir.v[i];
        int known = 0;
        for (size_t k = 0; k < out->n && !known; k++)
            known = strcmp(out->v[k].id, p->id) == 0;
        if (!known)
            person_list_add(out, p->id, p->name, p->email);
    }
    return st;
}

/* owner, created_by, last_modified_by and custom employee fields (describe type "employee"). */
static int fx_person_field(const struct connector *c, const char *field)
{
    const struct ffield *f = meta_find(c, field);
    return f && f->kind == FK_EMPLOYEE;
}

/* ---- listing ---------------------------------------------------------------------------- */

/*
 * Offset paging over rows ordered by last_modified_time is not stable: a row edited while we
 * page jumps to the end and every later row moves one place up, so the next offset skips one.
 * So each page restarts at offset 0 from the newest time already seen (a window [lo, now]),
 * and rows seen at exactly that time are skipped by id. Only a run of more than a page of rows
 * sharing one millisecond is walked with offsets (still multiples of the limit). A row edited
 * mid-listing shows up again later with its new time; the engine keeps the newest copy.
 */
struct list_state {
    int64_t lo;  /* the window starts here (inclusive) */
    int offset;  /* within rows at >= lo; > 0 only inside a long same-millisecond run */
    char **seen; /* ids already handed out whose time is lo */
    size_t n_seen;
};

static int seen_at_lo(const struct list_state *ls, const char *id)
{
    for (size_t i = 0; i < ls->n_seen; i++)
        if (strcmp(ls->seen[i], id) == 0)
            return 1;
    return 0;
}

static void seen_reset(struct list_state *ls, int64_t lo)
{
    for (size_t i = 0; i < ls->n_seen; i++)
        free(ls->seen[i]);
    ls->n_seen = 0;
    ls->lo = lo;
}

static void seen_add(struct list_state *ls, const char *id)
{
    ls->seen = xrealloc(ls->seen, (ls->n_seen + 1) * sizeof(*ls->seen));
    ls->seen[ls->n_seen++] = xstrdup(id);
}

/* Moves the window past a page: to the page's newest time, or deeper into a same-time run. */
static void window_advance(struct list_state *ls, const cJSON *list)
{
    const cJSON *item;
    int64_t last = json_ms(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(list, cJSON_GetArraySize(list) - 1), "last_modified_time"));
    if (last > ls->lo) {
        seen_reset(ls, last);
        ls->offset = 0;
    } else {
        ls->offset += FX_LIMIT;
    }
    cJSON_ArrayForEach(item, list)
    {
        const char *id = jstr(item, "_id");
        if (id && json_ms(cJSON_GetObjectItemCaseSensitive(item, "last_modified_time")) == ls->lo &&
            !seen_at_lo(ls, id))
            seen_add(ls, id);
    }
}

/* The rows of one page not handed out before (all but those seen at the window's start). */
static cJSON *page_fresh(const struct list_state *ls, const cJSON *list)
{
    cJSON *fresh = cJSON_CreateArray();
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        const char *id = jstr(item, "_id");
        int64_t t = json_ms(cJSON_GetObjectItemCaseSensitive(item, "last_modified_time"));
        if (!(id && t == ls->lo && seen_at_lo(ls, id)))
            cJSON_AddItemReferenceToArray(fresh, (cJSON *)item);
    }
    return fresh;
}

static enum cb_status list_step(struct connector *c, struct list_state *ls, record_page_fn fn,
                                void *arg, int *more, struct strbuf *err)
{
    cJSON *filters = cJSON_CreateArray(), *answer = NULL, *vals = cJSON_CreateArray();
    /* GT lo-1 rather than GTE lo: GT is in both published operator vocabularies (GTE/GE) */
    cJSON_AddItemToArray(vals, cJSON_CreateNumber((double)(ls->lo - 1)));
    add_filter(filters, "last_modified_time", "GT", vals);
    const cJSON *f;
    cJSON_ArrayForEach(f, c->filters) /* the side's scope, as the query takes it */
        cJSON_AddItemToArray(filters, cJSON_Duplicate(f, 1));
    cJSON *data = query_data(c, filters, ls->offset, 1);
    struct strbuf what = STRBUF_INIT;
    (void)strbuf_addf(&what, "list fxiaoke object '%s'", c->object);
    const cJSON *list = NULL;
    enum cb_status st = query_page(c, data, what.buf, &answer, &list, err);
    *more = 0;
    if (st == CB_OK) {
        cJSON *fresh = page_fresh(ls, list);
        struct record_list recs = {0};
        st = decode_rows(c, fresh, &recs, err);
        if (st == CB_OK && recs.n)
            st = fn(arg, recs.v, recs.n);
        record_list_release(&recs);
        cJSON_Delete(fresh);
        *more = cJSON_GetArraySize(list) >= FX_LIMIT;
        if (*more)
            window_advance(ls, list);
    }
    cJSON_Delete(answer);
    cJSON_Delete(data);
    strbuf_release(&what);
    return st;
}

static enum cb_status fx_list_changed(struct connector *c, int64_t since_ms, record_page_fn fn,
                                      void *arg, struct strbuf *err)
{
    enum cb_status st = read_ensure(c, err);
    struct list_state ls = {.lo = since_ms > 0 ? since_ms : 0};
    int more = 1;
    for (int page = 0; st == CB_OK && more; page++) {
        if (page >= FX_PAGE_BUDGET) {
            strbuf_setf(err, "cannot list fxiaoke object '%s': still more after %d pages",
                        c->object, page);
            st = CB_ERR_TEMP;
            break;
        }
        st = list_step(c, &ls, fn, arg, &more, err);
    }
    seen_reset(&ls, 0);
    free(ls.seen);
    return st;
}

/* Reads ids[0..n) with one query (_id IN ...); invalidated rows count as gone. */
static enum cb_status get_chunk(struct connector *c, const char *const *ids, size_t n,
                                struct record_list *out, struct strbuf *err)
{
    cJSON *filters = cJSON_CreateArray(), *vals = cJSON_CreateArray(), *answer = NULL;
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(vals, cJSON_CreateString(ids[i]));
    add_filter(filters, "_id", "IN", vals);
    cJSON *data = query_data(c, filters, 0, 0);
    struct strbuf what = STRBUF_INIT;
    (void)strbuf_addf(&what, "read %zu record%s of fxiaoke object '%s'", n, n == 1 ? "" : "s",
                      c->object);
    const cJSON *list = NULL;
    enum cb_status st = query_page(c, data, what.buf, &answer, &list, err);
    if (st == CB_OK)
        st = decode_rows(c, list, out, err);
    cJSON_Delete(answer);
    cJSON_Delete(data);
    strbuf_release(&what);
    return st;
}

static enum cb_status fx_get_many(struct connector *c, const char *const *ids, size_t n,
                                  struct record_list *out, struct strbuf *err)
{
    enum cb_status st = read_ensure(c, err);
    for (size_t i = 0; st == CB_OK && i < n; i += FX_BATCH)
        st = get_chunk(c, ids + i, n - i < FX_BATCH ? n - i : FX_BATCH, out, err);
    return st;
}

/* ---- writing ---------------------------------------------------------------------------- */

/* Fails op: "cannot update fxiaoke CasesObj record 'ID': [field 'F' ]WHY". */
static void op_fail(const struct connector *c, struct write_op *op, enum cb_status st,
                    const char *field, const char *why)
{
    op->st = st;
    strbuf_setf(&op->err, "cannot %s fxiaoke %s record %s'%s': ", op->id ? "update" : "create",
                c->object, op->id ? "" : "with marker ",
                op->id       ? op->id
                : op->marker ? op->marker
                             : "");
    if (field)
        (void)strbuf_addf(&op->err, "field '%s' ", field);
    (void)strbuf_adds(&op->err, why);
}

/* The option value for a label (or a value given as such); NULL when neither. */
static const char *opt_value(const struct ffield *f, const char *s)
{
    for (size_t i = 0; i < f->n_opts; i++)
        if (strcmp(f->opts[i].label, s) == 0)
            return f->opts[i].value;
    for (size_t i = 0; i < f->n_opts; i++)
        if (strcmp(f->opts[i].value, s) == 0)
            return f->opts[i].value;
    return NULL;
}

static cJSON *wire_select(const struct ffield *f, const cJSON *v, struct strbuf *why)
{
    if (f->kind == FK_SELECT && cJSON_IsString(v)) {
        const char *val = opt_value(f, v->valuestring);
        if (val)
            return cJSON_CreateString(val);
        (void)strbuf_addf(why, "'%s' is not an option (options:", v->valuestring);
        for (size_t i = 0; i < f->n_opts; i++)
            (void)strbuf_addf(why, "%s %s", i ? "," : "", f->opts[i].label);
        (void)strbuf_adds(why, ")");
        return NULL;
    }
    cJSON *arr = cJSON_CreateArray();
    const cJSON *x;
    cJSON_ArrayForEach(x, v)
    {
        cJSON *one = wire_select(
            &(struct ffield){.kind = FK_SELECT, .opts = f->opts, .n_opts = f->n_opts}, x, why);
        if (!one) {
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, one);
    }
    return arr;
}

/* "YYYY-MM-DD" at midnight in the tenant's zone, or an ISO date-time, as epoch ms. */
static cJSON *wire_time(const struct connector *c, const struct ffield *f, const char *s,
                        struct strbuf *why)
{
    int64_t ms = 0;
    if (cbtime_parse(s, &ms) != CB_OK) {
        (void)strbuf_addf(why, "'%s' is not a %s", s, f->kind == FK_DATE ? "date" : "date-time");
        return NULL;
    }
    if (f->kind == FK_DATE && strlen(s) == 10)
        ms -= (int64_t)c->tz_min * 60000;
    return cJSON_CreateNumber((double)ms);
}

/* The wire value for a canonical one, or NULL with the reason in why. */
static cJSON *wire_value(const struct connector *c, const struct ffield *f, const cJSON *v,
                         struct strbuf *why)
{
    if (cJSON_IsNull(v) || (cJSON_IsString(v) && !*v->valuestring))
        return f->kind == FK_MULTI ? cJSON_CreateArray() : cJSON_CreateNull();
    switch (f->kind) {
    case FK_SELECT:
    case FK_MULTI:
        if (cJSON_IsString(v) == (f->kind == FK_SELECT) || cJSON_IsArray(v))
            return wire_select(f, v, why);
        break;
    case FK_DATE:
    case FK_DATETIME:
        if (cJSON_IsString(v))
            return wire_time(c, f, v->valuestring, why);
        break;
    case FK_LONG:
        if (cJSON_IsString(v)) {
            char *plain = richtext_md_to_plain(v->valuestring);
            cJSON *out = cJSON_CreateString(plain);
            free(plain);
            return out;
        }
        break;
    case FK_EMPLOYEE:
        if (cJSON_IsString(v)) /* an employee id, as the mapping resolved it */
            return cJSON_CreateStringArray((const char *const[]){v->valuestring}, 1);
        break;
    case FK_REF:
        (void)strbuf_adds(why, "is a lookup; fxiaoke cannot set it by name");
        return NULL;
    default:
        return cJSON_Duplicate(v, 1);
    }
    (void)strbuf_adds(why, "has a value of the wrong type");
    return NULL;
}

static int is_wanted(const struct connector *c, const char *name)
{
    for (size_t i = 0; i < c->n_want; i++)
        if (strcmp(c->want[i], name) == 0)
            return 1;
    return 0;
}

/* Adds one field to object_data; 0 after failing op. Mapped fields the object lacks are
 * skipped (ping and check list them as left unmapped). */
static int encode_field(const struct connector *c, struct write_op *op, cJSON *od, const cJSON *v)
{
    const char *name = v->string;
    if (!name || name[0] == '$')
        return 1;
    const struct ffield *f = meta_find(c, name);
    if (!f && is_wanted(c, name)) {
        log_debug("fxiaoke object '%s' has no field '%s': not written", c->object, name);
        return 1;
    }
    struct strbuf why = STRBUF_INIT;
    cJSON *w = NULL;
    if (!f || f->read_only)
        (void)strbuf_adds(&why, f ? "is read-only" : "does not exist on the object");
    else
        w = wire_value(c, f, v, &why);
    if (!w)
        op_fail(c, op, CB_ERR_FINAL, name, why.buf);
    else
        cJSON_AddItemToObject(od, name, w);
    strbuf_release(&why);
    return w != NULL;
}

/* An update's owner: set aside for changeOwner (update ignores it); 0 after failing op, as
 * every record has an owner. A create takes it in object_data, or gets the default owner. */
static int owner_take(const struct connector *c, struct write_op *op, const cJSON *v,
                      const char **owner)
{
    if (cJSON_IsString(v) && *v->valuestring) {
        *owner = v->valuestring;
        return 1;
    }
    op_fail(c, op, CB_ERR_FINAL, FX_OWNER,
            cJSON_IsNull(v) || cJSON_IsString(v) ? "is mandatory in fxiaoke: it cannot be emptied"
                                                 : "takes a fxiaoke employee id");
    return 0;
}

/* data{object_data{...}} for op, or NULL after failing op; *owner is an update's new owner. */
static cJSON *op_data(const struct connector *c, struct write_op *op, const char **owner)
{
    cJSON *data = cJSON_CreateObject();
    cJSON *od = cJSON_AddObjectToObject(data, "object_data");
    cJSON_AddStringToObject(od, "dataObjectApiName", c->object);
    if (op->id)
        cJSON_AddStringToObject(od, "_id", op->id);
    const cJSON *v;
    *owner = NULL;
    cJSON_ArrayForEach(v, op->fields)
    {
        int is_owner = str_eq(v->string, FX_OWNER);
        if (is_owner && !op->id && cJSON_IsNull(v))
            continue; /* a new record without an owner: the default one below */
        if (is_owner && op->id ? !owner_take(c, op, v, owner) : !encode_field(c, op, od, v)) {
            cJSON_Delete(data);
            return NULL;
        }
    }
    if (op->id)
        return data;
    if (!op->marker || !*op->marker || !meta_find(c, c->marker_field)) {
        op_fail(c, op, CB_ERR_FINAL, NULL,
                op->marker && *op->marker ? "the object has no marker field (add a text "
                                            "field; see marker_field)"
                                          : "a create needs a marker");
        cJSON_Delete(data);
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(od, c->marker_field);
    cJSON_AddStringToObject(od, c->marker_field, op->marker);
    if (!cJSON_HasObjectItem(od, FX_OWNER))
        cJSON_AddItemToObject(od, FX_OWNER,
                              cJSON_CreateStringArray((const char *const[]){c->user_id}, 1));
    return data;
}

/* After an "employee not found" answer (30027): the employee field of op whose id the employee
 * list lacks, else the first employee field op wrote; NULL when op wrote none. */
static const cJSON *refused_employee(const struct connector *c, const struct write_op *op)
{
    const cJSON *v, *first = NULL;
    cJSON_ArrayForEach(v, op->fields)
    {
        const struct ffield *f = v->string ? meta_find(c, v->string) : NULL;
        if (!f || f->kind != FK_EMPLOYEE || !cJSON_IsString(v))
            continue;
        if (!dir_find(c, v->valuestring))
            return v;
        first = first ? first : v;
    }
    return first;
}

/* Fails op after a failed call; an employee id refused (30027 names no field) fails op only. */
static void write_failed(const struct connector *c, struct write_op *op, enum cb_status st,
                         const struct strbuf *e)
{
    const cJSON *bad = strstr(e->buf, "error 30027") ? refused_employee(c, op) : NULL;
    const char *colon = strstr(e->buf, ": ");
    struct strbuf why = STRBUF_INIT;
    if (bad)
        (void)strbuf_addf(&why, "'%s' is not a fxiaoke employee (", bad->valuestring);
    (void)strbuf_addf(&why, "%s%s", colon ? colon + 2 : e->buf, bad ? ")" : "");
    op_fail(c, op, bad ? CB_ERR_FINAL : st, bad ? bad->string : NULL, why.buf);
    strbuf_release(&why);
}

/* changeOwner of record id: update ignores the owner. */
static enum cb_status owner_change(struct connector *c, const char *id, const char *owner,
                                   struct strbuf *err)
{
    cJSON *data = cJSON_CreateObject(), *item = cJSON_CreateObject(), *j = NULL;
    cJSON_AddStringToObject(data, "dataObjectApiName", c->object);
    cJSON_AddStringToObject(item, "objectDataId", id);
    cJSON_AddItemToObject(item, "ownerId", cJSON_CreateStringArray(&owner, 1));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(data, "Data"), item);
    struct strbuf path = STRBUF_INIT;
    struct fx_call fc = {.path = data_path(c, "changeOwner", &path), .data = data};
    enum cb_status st = fx_call(c, &fc, "change the owner", &j, err);
    cJSON_Delete(j);
    cJSON_Delete(data);
    strbuf_release(&path);
    return st;
}

/* An update carrying no field but its owner needs no update call. */
static int has_fields(const cJSON *data)
{
    return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(data, "object_data")) > 2;
}

/* A migrated create keeps the original's creation time and creator: the options that let the
 * API take them (NULL when there is nothing to keep). */
static cJSON *origin_opts(const struct write_op *op, cJSON *data)
{
    if (op->id || (op->created_ms <= 0 && !op->created_by))
        return NULL;
    cJSON *opts = cJSON_CreateObject();
    cJSON *od = cJSON_GetObjectItemCaseSensitive(data, "object_data");
    if (op->created_ms > 0) {
        cJSON_AddTrueToObject(opts, "hasSpecifyTime");
        cJSON_AddNumberToObject(od, "create_time", (double)op->created_ms);
    }
    if (op->created_by) {
        cJSON_AddTrueToObject(opts, "hasSpecifyCreatedBy");
        cJSON_AddItemToObject(od, "created_by",
                              cJSON_CreateStringArray((const char *const[]){op->created_by}, 1));
    }
    return opts;
}

/* The owner goes first: a refused owner leaves the record untouched. */
static void write_one(struct connector *c, struct write_op *op)
{
    op->st = CB_OK;
    strbuf_reset(&op->err);
    const char *owner = NULL;
    cJSON *data = op_data(c, op, &owner), *j = NULL;
    if (!data)
        return;
    struct strbuf path = STRBUF_INIT, e = STRBUF_INIT;
    struct fx_call fc = {.path = data_path(c, op->id ? "update" : "create", &path),
                         .data = data,
                         .create = !op->id,
                         .flows = 1,
                         .opts = origin_opts(op, data)};
    enum cb_status st = owner ? owner_change(c, op->id, owner, &e) : CB_OK;
    if (st == CB_OK && (!op->id || has_fields(data)))
        st = fx_call(c, &fc, op->id ? "write" : "create", &j, &e);
    const char *id = op->id ? op->id : jstr(j, "dataId");
    if (st == CB_OK && !id) {
        strbuf_setf(&e, "cannot create: the answer has no dataId");
        st = CB_ERR_PARSE;
    }
    if (st != CB_OK) {
        write_failed(c, op, st, &e);
    } else {
        record_release(&op->rec);
        op->rec.id = xstrdup(id);
        op->rec.url = record_url(c, id);
        op->rec.marker = op->id ? NULL : dup_or_null(op->marker);
    }
    cJSON_Delete(j);
    cJSON_Delete(data);
    cJSON_Delete((cJSON *)fc.opts);
    strbuf_release(&path);
    strbuf_release(&e);
}

/* One request per record (the v2 API writes one record per call); one record's failure never
 * stops the others, but an endpoint-wide failure (auth, quota) does. */
static enum cb_status fx_write(struct connector *c, struct write_op *ops, size_t n,
                               struct strbuf *err)
{
    enum cb_status st = meta_ensure(c, err);
    for (size_t i = 0; i < n; i++) {
        if (st == CB_OK) {
            write_one(c, &ops[i]);
            if (ops[i].st == CB_ERR_AUTH || ops[i].st == CB_ERR_WAIT) {
                st = ops[i].st;
                strbuf_setf(err, "%s", ops[i].err.buf);
            }
        } else {
            ops[i].st = st;
            strbuf_setf(&ops[i].err, "%s", err->buf);
        }
    }
    return st;
}

/* ---- markers ---------------------------------------------------------------------------- */

/* The marker field is a plain text field the connector owns, so an EQ query finds it at once
 * (queries read the database, no search index lag); markers are unique, since_ms is moot. */
static enum cb_status fx_find_marker(struct connector *c, const char *marker, int64_t since_ms,
                                     struct record *out, struct strbuf *err)
{
    (void)since_ms;
    enum cb_status st = read_ensure(c, err);
    if (st != CB_OK)
        return st;
    if (!meta_find(c, c->marker_field)) {
        strbuf_setf(err, "fxiaoke object '%s' has no marker field '%s'", c->object,
                    c->marker_field);
        return CB_ERR_CONFIG;
    }
    cJSON *filters = cJSON_CreateArray(), *vals = cJSON_CreateArray(), *answer = NULL;
    cJSON_AddItemToArray(vals, cJSON_CreateString(marker));
    add_filter(filters, c->marker_field, "EQ", vals);
    cJSON *data = query_data(c, filters, 0, 0);
    struct strbuf what = STRBUF_INIT;
    (void)strbuf_addf(&what, "find marker '%s' in fxiaoke object '%s'", marker, c->object);
    const cJSON *list = NULL;
    st = query_page(c, data, what.buf, &answer, &list, err);
    const cJSON *hit = st == CB_OK ? cJSON_GetArrayItem(list, 0) : NULL;
    if (st == CB_OK && !hit) {
        strbuf_setf(err, "no fxiaoke %s record carries marker '%s'", c->object, marker);
        st = CB_ERR_NOTFOUND;
    }
    if (st == CB_OK) {
        st = record_decode(c, hit, out, err);
        if (st != CB_OK)
            record_release(out);
    }
    cJSON_Delete(answer);
    cJSON_Delete(data);
    strbuf_release(&what);
    return st;
}

/* ---- follow-up records (comments) ------------------------------------------------------- */

/* Comments are follow-up records (销售记录, ActiveRecordObj): Fxiaoke's own place for what was
 * said about a record, shown on the record's page, linked through related_object_data
 * [{describe_api_name, id}], with the text in the long-text active_record_content. That text is
 * plain, so the copies crmbridge writes end with a short "[cb:...]" trailer. */
#define FOLLOW_OBJ "ActiveRecordObj"
#define FOLLOW_TEXT "active_record_content"
#define FOLLOW_REL "related_object_data"
#define FOLLOW_PATH "/cgi/crm/v2/data/"

typedef void (*follow_fn)(const struct connector *c, const cJSON *row, void *arg);

/* Runs a query of follow-up records (filters owned) page by page, calling fn for each live one. */
static enum cb_status follow_query(struct connector *c, cJSON *filters, follow_fn fn, void *arg,
                                   struct strbuf *err)
{
    enum cb_status st = CB_OK;
    for (int offset = 0, more = 1; st == CB_OK && more; offset += FX_LIMIT) {
        cJSON *data = cJSON_CreateObject(), *answer = NULL;
        cJSON_AddStringToObject(data, "dataObjectApiName", FOLLOW_OBJ);
        cJSON_AddFalseToObject(data, "find_explicit_total_num");
        cJSON *sqi = cJSON_AddObjectToObject(data, "search_query_info");
        cJSON_AddNumberToObject(sqi, "limit", FX_LIMIT);
        cJSON_AddNumberToObject(sqi, "offset", offset);
        cJSON_AddItemToObject(sqi, "filters", cJSON_Duplicate(filters, 1));
        cJSON *orders = cJSON_AddArrayToObject(sqi, "orders");
        add_order(orders, "create_time");
        add_order(orders, "_id");
        const char *proj[] = {"_id",         FOLLOW_TEXT,          FOLLOW_REL,   "created_by",
                              "create_time", "last_modified_time", "life_status"};
        cJSON_AddItemToObject(sqi, "fieldProjection", cJSON_CreateStringArray(proj, 7));
        struct fx_call fc = {.path = FOLLOW_PATH "query", .data = data};
        st = fx_call(c, &fc, "query fxiaoke follow-up records", &answer, err);
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(answer, "data"), "dataList");
        const cJSON *row;
        cJSON_ArrayForEach(row, list) if (!is_invalid(row)) fn(c, row, arg);
        more = cJSON_GetArraySize(list) == FX_LIMIT;
        cJSON_Delete(answer);
        cJSON_Delete(data);
    }
    cJSON_Delete(filters);
    return st;
}

/* Does the follow-up row belong to record id (NULL: to any record of this object)? Returns the
 * id of the related record of this object, or NULL. */
static const char *follow_parent(const struct connector *c, const cJSON *row, const char *id)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(row, FOLLOW_REL))
    {
        if (str_eq(jstr(e, "describe_api_name"), c->object) && jstr(e, "id") &&
            (!id || str_eq(jstr(e, "id"), id)))
            return jstr(e, "id");
    }
    return NULL;
}

struct follow_list {
    const char *id;
    struct comment_list *out;
};

static void follow_to_comment(const struct connector *c, const cJSON *row, void *arg)
{
    struct follow_list *fl = arg;
    const char *id = jstr(row, "_id");
    if (!id || !follow_parent(c, row, fl->id))
        return;
    struct comment x = {0};
    x.id = xstrdup(id);
    cJSON *who = canon_ref(row, "created_by");
    x.author = dup_or_null(cJSON_GetStringValue(who));
    cJSON_Delete(who);
    x.created_ms = json_ms(cJSON_GetObjectItemCaseSensitive(row, "create_time"));
    x.updated_ms = json_ms(cJSON_GetObjectItemCaseSensitive(row, "last_modified_time"));
    char *text = xstrdup(jstr(row, FOLLOW_TEXT) ? jstr(row, FOLLOW_TEXT) : "");
    x.marker = comment_trailer_split(text);
    x.by_us = x.marker != NULL;
    x.body = richtext_plain_to_md(text);
    free(text);
    comment_list_push(fl->out, &x);
}

static enum cb_status fx_list_comments(struct connector *c, const char *record_id,
                                       struct comment_list *out, struct strbuf *err)
{
    cJSON *filters = cJSON_CreateArray();
    add_filter(filters, FOLLOW_REL, "HASANYOF", cJSON_CreateStringArray(&record_id, 1));
    struct follow_list fl = {record_id, out};
    return follow_query(c, filters, follow_to_comment, &fl, err);
}

static enum cb_status fx_write_comment(struct connector *c, const char *record_id,
                                       struct comment_op *op, struct strbuf *err)
{
    struct strbuf text = STRBUF_INIT;
    char *plain = richtext_md_to_plain(op->body);
    if (op->marker)
        comment_trailer_add(&text, plain, op->marker);
    else
        (void)strbuf_adds(&text, plain);
    free(plain);
    cJSON *data = cJSON_CreateObject(), *answer = NULL;
    cJSON *od = cJSON_AddObjectToObject(data, "object_data");
    cJSON_AddStringToObject(od, "dataObjectApiName", FOLLOW_OBJ);
    if (op->id) {
        cJSON_AddStringToObject(od, "_id", op->id);
    } else {
        cJSON *rel = cJSON_CreateObject();
        cJSON_AddStringToObject(rel, "describe_api_name", c->object);
        cJSON_AddStringToObject(rel, "id", record_id);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(od, FOLLOW_REL), rel);
    }
    cJSON_AddStringToObject(od, FOLLOW_TEXT, text.buf);
    struct fx_call fc = {.path = op->id ? FOLLOW_PATH "update" : FOLLOW_PATH "create",
                         .data = data,
                         .create = !op->id,
                         .flows = 1};
    enum cb_status st = fx_call(
        c, &fc, op->id ? "update a fxiaoke follow-up record" : "add a fxiaoke follow-up record",
        &answer, err);
    if (st == CB_OK && !op->id)
        op->new_id = dup_or_null(jstr(answer, "dataId"));
    cJSON_Delete(answer);
    cJSON_Delete(data);
    strbuf_release(&text);
    return st;
}

struct follow_ids {
    char ***ids;
    size_t *n;
};

static void follow_parent_id(const struct connector *c, const cJSON *row, void *arg)
{
    struct follow_ids *fi = arg;
    const char *id = follow_parent(c, row, NULL);
    for (size_t i = 0; id && i < *fi->n; i++)
        if (str_eq((*fi->ids)[i], id))
            return;
    if (!id)
        return;
    *fi->ids = xrealloc(*fi->ids, (*fi->n + 1) * sizeof(char *));
    (*fi->ids)[(*fi->n)++] = xstrdup(id);
}

/* A new or edited follow-up record leaves its parent's last_modified_time alone. */
static enum cb_status fx_comments_changed(struct connector *c, int64_t since_ms, char ***ids,
                                          size_t *n, struct strbuf *err)
{
    cJSON *filters = cJSON_CreateArray(), *since = cJSON_CreateArray();
    cJSON_AddItemToArray(since, cJSON_CreateNumber((double)since_ms));
    add_filter(filters, "last_modified_time", "GTE", since);
    struct follow_ids fi = {ids, n};
    return follow_query(c, filters, follow_parent_id, &fi, err);
}

static int64_t fx_server_now(const struct connector *c)
{
    return http_server_now(c->http);
}

static void fx_budget(const struct connector *c, struct http_budget *out, unsigned long *paced)
{
    http_budget_get(c->http, out);
    *paced = 0;
    for (size_t i = 0; i < c->n_paces; i++)
        *paced += c->paces[i].pace->waits; /* of every connection sharing them */
}

/* A long text field keeps plain text: Markdown written there reads back without its markup. */
static cJSON *fx_echo(const struct connector *c, const char *field, const cJSON *written)
{
    const struct ffield *f = meta_find(c, field);
    if (!f || f->kind != FK_LONG || !cJSON_IsString(written))
        return NULL;
    /* what a write sends, read back the way every read decodes it */
    struct strbuf why = STRBUF_INIT;
    cJSON *row = cJSON_CreateObject(), *back = NULL;
    cJSON *wire = wire_value(c, f, written, &why);
    if (wire) {
        cJSON_AddItemToObject(row, f->name, wire);
        back = canon_value(c, f, row);
    }
    cJSON_Delete(row);
    strbuf_release(&why);
    return back;
}

/* One life-cycle verb (invalid, delete) on record id. An unknown id (320002004) is NOTFOUND. */
static enum cb_status life_call(struct connector *c, const char *verb, const char *id,
                                struct strbuf *err)
{
    cJSON *data = cJSON_CreateObject(), *j = NULL;
    cJSON_AddStringToObject(data, "dataObjectApiName", c->object);
    if (!strcmp(verb, "delete"))
        cJSON_AddItemToArray(cJSON_AddArrayToObject(data, "idList"), cJSON_CreateString(id));
    else
        cJSON_AddStringToObject(data, "object_data_id", id);
    struct strbuf path = STRBUF_INIT, what = STRBUF_INIT;
    (void)strbuf_addf(&what, "%s fxiaoke %s record '%s'",
                      strcmp(verb, "delete") ? "invalidate" : verb, c->object, id);
    struct fx_call fc = {.path = data_path(c, verb, &path), .data = data};
    enum cb_status st = fx_call(c, &fc, what.buf, &j, err);
    if (st != CB_OK && strstr(err->buf, "error 320002004"))
        st = CB_ERR_NOTFOUND;
    cJSON_Delete(j);
    cJSON_Delete(data);
    strbuf_release(&path);
    strbuf_release(&what);
    return st;
}

/* Archiving is invalidating (作废), as the web UI's "invalid" button does; it can be recovered. */
static enum cb_status fx_archive(struct connector *c, const char *id, struct strbuf *err)
{
    return life_call(c, "invalid", id, err);
}

/* Fxiaoke deletes only invalidated records: invalidate first, then delete. */
static enum cb_status fx_remove(struct connector *c, const char *id, struct strbuf *err)
{
    enum cb_status st = life_call(c, "invalid", id, err);
    if (st == CB_OK || strstr(err->buf, "error 320001403"))
        st = life_call(c, "delete", id, err);
    return st;
}

const struct connector_ops fxiaoke_ops = {
    .name = "fxiaoke",
    .check_config = fx_check_config,
    .open = fx_open,
    .close = fx_close,
    .ping = fx_ping,
    .list_changed = fx_list_changed,
    .get_many = fx_get_many,
    .write = fx_write,
    .find_marker = fx_find_marker,
    .list_comments = fx_list_comments,
    .write_comment = fx_write_comment,
    .comments_changed = fx_comments_changed,
    .max_batch_read = FX_BATCH,
    .max_batch_write = 20,
    .budget = fx_budget,
    .server_now = fx_server_now,
    .echo = fx_echo,
    .archive = fx_archive,
    .remove = fx_remove,
    .search_lag_ms = 0,
    .list_users = fx_list_users,
    .person_field = fx_person_field,
};
