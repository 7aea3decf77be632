/*
 * Zoho CRM connector (REST API v8 by default). Access tokens come from the refresh-token grant
 * of the org's data-centre accounts server and live in memory (sealed in the cache too when one
 * is given); field metadata is read once; changes are listed with If-Modified-Since and page /
 * page_token paging; records are read by ids, updated in batches and created through upsert on
 * the marker field, so a repeated create never duplicates; markers are found with COQL.
 * Notification channels (/actions/watch) are enabled or renewed in place for `webhooks register`;
 * user fields (owner and user lookups) read as people and are written by user id, and the
 * active users are the side's directory. It does not decide what a field means (mapping/ does).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache/cache.h"
#include "connectors/connector.h"
#include "connectors/filter_expr.h"
#include "connectors/pace.h"
#include "core/timeutil.h"
#include "mapping/richtext.h"

#define LOG_MODULE "zoho"
#include "core/log.h"
#include "core/strlist.h"

#define ZOHO_MAX_FIELDS 50 /* fields= limit of Get Records */
#define ZOHO_PER_PAGE 200
#define ZOHO_MAX_PAGE 10 /* page= reaches the first 2,000 rows; page_token goes further */
#define ZOHO_BATCH 100
#define ZOHO_CONCURRENCY 10     /* API calls in flight per org: the Standard edition's limit */
#define ZOHO_SUB_CONCURRENCY 10 /* of them complex calls, in every edition */
#define ZOHO_USER_PAGES 100     /* 20,000 users: a server that never ends cannot spin us */
#define TOKEN_MARGIN_MS 60000

enum zkind { ZK_PLAIN, ZK_TEXTAREA, ZK_LOOKUP, ZK_PICKLIST, ZK_USER };

struct zfield {
    char *name;
    enum zkind kind;
    int read_only;
    int mandatory; /* may never be emptied (system_mandatory, or the record's Owner) */
};

struct connector {
    char *name; /* endpoint name: messages and the token cache key */
    char *accounts_url, *api_url, *web_url;
    char *client_id, *client_secret, *refresh_token;
    char *marker_field, *api_version, *module;
    int concurrency; /* the org's API calls in flight at once; 0 = no limit */
    struct http *http;
    struct cache *cache;
    char **want; /* remote fields the mapping needs, pseudo fields dropped */
    size_t n_want;
    char *token; /* access token or NULL */
    int64_t token_exp_ms;
    char *api_domain; /* from the token answer; wins over api_url */
    int cache_tried;
    struct zfield *meta; /* the module's fields; NULL until loaded */
    size_t n_meta;
    char *key_field;       /* the module's autonumber field (Case_Number), or NULL */
    char *fields_param;    /* what list and get calls request */
    char *filter_text;     /* the side's `filter` (a Zoho criteria), or NULL */
    struct filter *filter; /* parsed filter_text: records outside it are flagged out_of_scope */
    char **ffields;        /* the fields the filter reads (requested, not decoded) */
    size_t n_ffields;
};

/* One call of the CRM API. */
struct api_req {
    const char *method;
    const char *path; /* after /crm/<version>, starting with '/' */
    const char *body; /* JSON or NULL */
    const char *ims;  /* If-Modified-Since value or NULL */
    int per_record;   /* a 4xx answer carrying data[] is per-record results: hand it back */
    int create;       /* not idempotent (no upsert): never resent; a marker settles a lost answer */
    size_t records;   /* records in the body: a write of more than 10 is a complex call */
};

static const char *const ep_required[] = {"accounts_url",  "api_url",       "client_id",
                                          "client_secret", "refresh_token", NULL};
static const char *const ep_optional[] = {"web_url", "marker_field", "api_version", "concurrency",
                                          NULL};
static const char *const ep_secrets[] = {"client_id", "client_secret", "refresh_token", NULL};
static const char *const ep_urls[] = {"accounts_url", "api_url", "web_url", NULL};
static const char *const side_required[] = {"module", NULL};
static const char *const side_optional[] = {"filter", NULL};

/* ---- small helpers ---------------------------------------------------------------------- */

static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void release_secret(struct strbuf *sb)
{
    if (sb->alloc)
        explicit_bzero(sb->buf, sb->len);
    strbuf_release(sb);
}

static int url_ok(const char *u)
{
    const char *rest = strncmp(u, "https://", 8) == 0  ? u + 8
                       : strncmp(u, "http://", 7) == 0 ? u + 7
                                                       : NULL;
    return rest && *rest && *rest != '/';
}

static int name_ok(const char *s)
{
    return *s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
                     strlen(s);
}

static int version_ok(const char *s)
{
    return s[0] == 'v' && s[1] >= '1' && s[1] <= '9' &&
           strspn(s + 1, "0123456789.") == strlen(s + 1);
}

/* A copy of a URL without trailing slashes. */
static char *url_dup(const char *u)
{
    size_t n = strlen(u);
    while (n > 0 && u[n - 1] == '/')
        n--;
    return xstrndup(u, n);
}

static const char *jstr(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static const char *api_base(const struct connector *c)
{
    return c->api_domain ? c->api_domain : c->api_url;
}

/* ---- configuration ---------------------------------------------------------------------- */

static int check_values(const struct conf_group *g, struct strbuf *err)
{
    int bad = 0;
    for (const char *const *k = ep_urls; *k; k++) {
        const char *v = conf_get(g, *k);
        if (v && !url_ok(v)) {
            conf_error(g, *k, err, "'%s' must be an http:// or https:// url, got '%s'", *k, v);
            bad++;
        }
    }
    const char *acc = conf_get(g, "accounts_url");
    if (acc && strstr(acc, "/oauth")) {
        conf_error(g, "accounts_url", err,
                   "'accounts_url' is the accounts server alone (https://accounts.zoho.com), "
                   "without /oauth/v2/token");
        bad++;
    }
    const char *marker = conf_get(g, "marker_field");
    if (marker && !name_ok(marker)) {
        conf_error(g, "marker_field", err, "'marker_field' must be a field api name, got '%s'",
                   marker);
        bad++;
    }
    const char *ver = conf_get(g, "api_version");
    if (ver && !version_ok(ver)) {
        conf_error(g, "api_version", err, "'api_version' must look like 'v8', got '%s'", ver);
        bad++;
    }
    const char *conc = conf_get(g, "concurrency");
    char *end = NULL;
    long n = conc ? strtol(conc, &end, 10) : 0;
    if (conc && (end == conc || *end || n < 0 || n > 1000)) {
        conf_error(g, "concurrency", err,
                   "zoho 'concurrency' must be the edition's api calls in flight at once, "
                   "between 0 (no limit) and 1000 (got '%s')",
                   conc);
        bad++;
    }
    return bad;
}

static int check_secrets(const struct conf_group *g, struct strbuf *err)
{
    int bad = 0;
    for (const char *const *k = ep_secrets; *k; k++) {
        char *v = NULL;
        if (!conf_find(g, *k))
            continue;
        if (conf_secret(g, *k, &v, err) != CB_OK)
            bad++;
        free_secret(v);
    }
    return bad;
}

static int check_side(const struct side_conf *side, struct strbuf *err)
{
    const struct conf_group *g = &side->g;
    int bad = conf_require(g, side_required, "the zoho side of the pair", err);
    bad += conf_unknown_keys(g, side_required, side_optional, "zoho side", err);
    const char *m = conf_get(g, "module");
    if (m && !name_ok(m)) {
        conf_error(g, "module", err, "'module' must be a module api name (Cases), got '%s'", m);
        bad++;
    }
    const char *f = conf_get(g, "filter");
    struct filter *parsed = NULL;
    struct strbuf why = STRBUF_INIT;
    if (f && filter_parse_zoho(f, &parsed, &why) != CB_OK) {
        conf_error(g, "filter", err,
                   "zoho 'filter' must be a criteria like "
                   "\"((Case_Origin:equals:Web)and(Status:in:New,Escalated))\": %s",
                   why.buf);
        bad++;
    }
    filter_free(parsed);
    strbuf_release(&why);
    return bad;
}

static enum cb_status zoho_check_config(const struct endpoint_conf *ep,
                                        const struct side_conf *side, struct strbuf *err)
{
    const struct conf_group *g = &ep->g;
    struct strbuf what = STRBUF_INIT;
    (void)strbuf_addf(&what, "zoho endpoint '%s'", ep->name ? ep->name : "?");
    int bad = conf_require(g, ep_required, what.buf, err);
    bad += conf_unknown_keys(g, ep_required, ep_optional, "zoho endpoint", err);
    bad += check_values(g, err);
    bad += check_secrets(g, err);
    if (side)
        bad += check_side(side, err);
    strbuf_release(&what);
    return bad ? CB_ERR_CONFIG : CB_OK;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void meta_free(struct connector *c)
{
    for (size_t i = 0; i < c->n_meta; i++)
        free(c->meta[i].name);
    free(c->meta);
    c->meta = NULL;
    c->n_meta = 0;
    free(c->key_field);
    c->key_field = NULL;
    free(c->fields_param);
    c->fields_param = NULL;
}

static void token_forget(struct connector *c)
{
    free_secret(c->token);
    c->token = NULL;
    c->token_exp_ms = 0;
}

static void zoho_close(struct connector *c)
{
    if (!c)
        return;
    meta_free(c);
    token_forget(c);
    for (size_t i = 0; i < c->n_want; i++)
        free(c->want[i]);
    free(c->want);
    free(c->name);
    free(c->accounts_url);
    free(c->api_url);
    free(c->web_url);
    free_secret(c->client_id);
    free_secret(c->client_secret);
    free_secret(c->refresh_token);
    free(c->marker_field);
    free(c->api_version);
    free(c->module);
    free(c->api_domain);
    free(c->filter_text);
    filter_free(c->filter);
    for (size_t i = 0; i < c->n_ffields; i++)
        free(c->ffields[i]);
    free(c->ffields);
    http_free(c->http);
    free(c);
}

static void want_add(struct connector *c, const char *f)
{
    if (!f || f[0] == '$' || strcmp(f, "id") == 0)
        return;
    for (size_t i = 0; i < c->n_want; i++)
        if (strcmp(c->want[i], f) == 0)
            return;
    c->want = xrealloc(c->want, (c->n_want + 1) * sizeof(*c->want));
    c->want[c->n_want++] = xstrdup(f);
}

static void ffield_add(void *arg, const char *f)
{
    struct connector *c = arg;
    for (size_t i = 0; i < c->n_ffields; i++)
        if (strcmp(c->ffields[i], f) == 0)
            return;
    c->ffields = xrealloc(c->ffields, (c->n_ffields + 1) * sizeof(*c->ffields));
    c->ffields[c->n_ffields++] = xstrdup(f);
}

static enum cb_status zoho_open(const struct connector_params *p, struct connector **out,
                                struct strbuf *err)
{
    *out = NULL;
    struct strbuf why = STRBUF_INIT;
    if (zoho_check_config(p->ep, p->side, &why) != CB_OK) {
        strbuf_trim_end(&why);
        strbuf_setf(err, "%s", why.buf);
        strbuf_release(&why);
        return CB_ERR_CONFIG;
    }
    const struct conf_group *g = &p->ep->g;
    struct connector *c = xcalloc(1, sizeof(*c));
    c->name = xstrdup(p->ep->name ? p->ep->name : "zoho");
    c->accounts_url = url_dup(conf_get(g, "accounts_url"));
    c->api_url = url_dup(conf_get(g, "api_url"));
    c->web_url = conf_get(g, "web_url") ? url_dup(conf_get(g, "web_url")) : NULL;
    const char *mf = conf_get(g, "marker_field"), *ver = conf_get(g, "api_version");
    c->marker_field = xstrdup(mf ? mf : "crmbridge_id");
    c->api_version = xstrdup(ver ? ver : "v8");
    c->module = xstrdup(p->side ? conf_get(&p->side->g, "module") : "Cases");
    const char *conc = conf_get(g, "concurrency");
    c->concurrency = conc ? (int)strtol(conc, NULL, 10) : ZOHO_CONCURRENCY; /* checked above */
    if (conf_secret(g, "client_id", &c->client_id, &why) != CB_OK ||
        conf_secret(g, "client_secret", &c->client_secret, &why) != CB_OK ||
        conf_secret(g, "refresh_token", &c->refresh_token, &why) != CB_OK) {
        strbuf_trim_end(&why);
        strbuf_setf(err, "%s", why.buf);
        strbuf_release(&why);
        zoho_close(c);
        return CB_ERR_CONFIG;
    }
    const char *ft = p->side ? conf_get(&p->side->g, "filter") : NULL;
    if (ft && filter_parse_zoho(ft, &c->filter, &why) == CB_OK) { /* checked above */
        c->filter_text = xstrdup(ft);
        filter_each_field(c->filter, ffield_add, c);
    }
    strbuf_release(&why);
    c->http = connector_http_new(p);
    c->cache = p->cache;
    for (const char *const *f = p->fields; f && *f; f++)
        want_add(c, *f);
    *out = c;
    return CB_OK;
}

/* ---- JSON answers ----------------------------------------------------------------------- */

static int looks_html(const struct http_resp *resp)
{
    struct strbuf ct = STRBUF_INIT;
    int html = http_resp_header(resp, "Content-Type", &ct) && strstr(ct.buf, "html");
    strbuf_release(&ct);
    const char *b = resp->body.buf + strspn(resp->body.buf, " \t\r\n");
    return html || *b == '<';
}

/* Parses a 2xx body into *out (owned by the caller). HTML: CB_ERR_TEMP; not JSON: CB_ERR_PARSE. */
static enum cb_status parse_answer(const struct http_resp *resp, const char *what, cJSON **out,
                                   struct strbuf *err)
{
    *out = NULL;
    if (resp->body.len && looks_html(resp)) {
        strbuf_setf(err, "cannot %s: unexpected html from zoho (http %ld)", what, resp->status);
        return CB_ERR_TEMP;
    }
    const char *end = NULL;
    cJSON *j =
        resp->body.len ? cJSON_ParseWithLengthOpts(resp->body.buf, resp->body.len, &end, 0) : NULL;
    if (!j || !cJSON_IsObject(j)) {
        strbuf_setf(err, "cannot %s: malformed json from zoho (http %ld, %zu bytes)", what,
                    resp->status, resp->body.len);
        cJSON_Delete(j);
        return CB_ERR_PARSE;
    }
    *out = j;
    return CB_OK;
}

static enum cb_status status_class(long status)
{
    return status == 401 ? CB_ERR_AUTH : http_classify(status);
}

/* Writes "cannot <what>: http N CODE (message)" and returns the failure class. */
static enum cb_status api_failure(const struct http_resp *resp, const char *what,
                                  struct strbuf *err)
{
    const char *end = NULL;
    cJSON *j =
        resp->body.len ? cJSON_ParseWithLengthOpts(resp->body.buf, resp->body.len, &end, 0) : NULL;
    const char *code = jstr(j, "code"), *msg = jstr(j, "message");
    strbuf_setf(err, "cannot %s: http %ld", what, resp->status);
    if (code)
        (void)strbuf_addf(err, " %s", code);
    if (msg && *msg)
        (void)strbuf_addf(err, " (%s)", msg);
    cJSON_Delete(j);
    return status_class(resp->status);
}

static int is_invalid_token(const struct http_resp *resp)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(resp->body.buf, resp->body.len, &end, 0);
    int yes = str_eq(jstr(j, "code"), "INVALID_TOKEN");
    cJSON_Delete(j);
    return yes;
}

/* ---- OAuth ------------------------------------------------------------------------------ */

static int token_fresh(const struct connector *c)
{
    return c->token && cbtime_now_ms() < c->token_exp_ms - TOKEN_MARGIN_MS;
}

static void adopt_domain(struct connector *c, const char *domain)
{
    if (domain && url_ok(domain)) {
        free(c->api_domain);
        c->api_domain = url_dup(domain);
    }
}

/* The cached blob: {"access_token","expires_ms","api_domain","client_id","accounts_url"}. */
static void token_cache_adopt(struct connector *c, const char *blob, size_t len)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(blob, len, &end, 0);
    const char *tok = jstr(j, "access_token");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "expires_ms");
    if (tok && cJSON_IsNumber(exp) && str_eq(jstr(j, "client_id"), c->client_id) &&
        str_eq(jstr(j, "accounts_url"), c->accounts_url)) {
        token_forget(c);
        c->token = xstrdup(tok);
        c->token_exp_ms = (int64_t)exp->valuedouble;
        adopt_domain(c, jstr(j, "api_domain"));
        log_add_secret(c->token);
    }
    if (j && tok)
        explicit_bzero(cJSON_GetObjectItemCaseSensitive(j, "access_token")->valuestring,
                       strlen(tok));
    cJSON_Delete(j);
}

static void token_cache_load(struct connector *c)
{
    struct cache_txn *t = NULL;
    struct strbuf blob = STRBUF_INIT, e = STRBUF_INIT;
    if (cache_txn_begin(c->cache, 1, &t, &e) != CB_OK) {
        log_warn("cannot read the token cache for '%s': %s", c->name, e.buf);
        strbuf_release(&e);
        return;
    }
    enum cb_status st = cache_token_get(t, c->name, &blob);
    if (cache_txn_commit(t, &e) != CB_OK && st != CB_ERR_NOTFOUND)
        log_warn("cannot read the token cache for '%s': %s", c->name, e.buf);
    if (st == CB_OK)
        token_cache_adopt(c, blob.buf, blob.len);
    release_secret(&blob);
    strbuf_release(&e);
}

static void token_cache_store(struct connector *c)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "access_token", c->token);
    cJSON_AddNumberToObject(j, "expires_ms", (double)c->token_exp_ms);
    cJSON_AddStringToObject(j, "api_domain", api_base(c));
    cJSON_AddStringToObject(j, "client_id", c->client_id);
    cJSON_AddStringToObject(j, "accounts_url", c->accounts_url);
    char *blob = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    struct cache_txn *t = NULL;
    struct strbuf e = STRBUF_INIT;
    if (cache_txn_begin(c->cache, 0, &t, &e) == CB_OK) {
        (void)cache_token_put(t, c->name, blob, strlen(blob));
        if (cache_txn_commit(t, &e) != CB_OK)
            log_warn("cannot store the token for '%s' in the cache: %s", c->name, e.buf);
    } else {
        log_warn("cannot store the token for '%s' in the cache: %s", c->name, e.buf);
    }
    free_secret(blob);
    strbuf_release(&e);
}

static const char *token_error_hint(const char *error)
{
    if (strcmp(error, "invalid_client") == 0)
        return "the accounts server does not know client_id: check client_id, and that "
               "accounts_url is the accounts server of the data centre where the client was "
               "registered (https://accounts.zoho.com.cn for China, .eu, .in, ...)";
    if (strcmp(error, "invalid_client_secret") == 0)
        return "client_secret does not match client_id: check client_secret";
    if (strcmp(error, "invalid_code") == 0)
        return "the refresh token is expired, revoked or issued to another client: generate a "
               "new refresh_token for this client";
    return "check the endpoint's client_id, client_secret and refresh_token";
}

static int64_t expires_ms(const cJSON *j)
{
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(j, "expires_in_sec");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
    double s = cJSON_IsNumber(sec) ? sec->valuedouble : cJSON_IsNumber(in) ? in->valuedouble : 3600;
    if (s > 86400) /* an older answer shape gave milliseconds */
        s /= 1000;
    return (int64_t)(s * 1000);
}

/* Reads the token endpoint's answer: errors come as HTTP 200 {"error": ...}. */
static enum cb_status token_answer(struct connector *c, const struct http_resp *resp,
                                   const char *what, struct strbuf *err)
{
    if (resp->status >= 500 || resp->status == 429)
        return api_failure(resp, what, err);
    if (resp->status == 404) {
        strbuf_setf(err, "cannot %s: http 404 (is accounts_url the zoho accounts server?)", what);
        return CB_ERR_CONFIG;
    }
    cJSON *j = NULL;
    enum cb_status st = parse_answer(resp, what, &j, err);
    if (st != CB_OK)
        return st;
    const char *error = jstr(j, "error"), *tok = jstr(j, "access_token");
    if (error && resp->status == 400 && strcasecmp(error, "Access Denied") == 0) {
        strbuf_setf(err,
                    "cannot %s: zoho refuses new tokens for now (at most 10 per refresh "
                    "token in 10 minutes); try again later",
                    what);
        st = CB_ERR_WAIT;
    } else if (error || !tok || !*tok) {
        strbuf_setf(err, "cannot %s: %s (%s)", what, error ? error : "no access_token",
                    error ? token_error_hint(error) : "http answer without a token");
        st = CB_ERR_AUTH;
    } else {
        token_forget(c);
        c->token = xstrdup(tok);
        c->token_exp_ms = cbtime_now_ms() + expires_ms(j);
        log_add_secret(c->token);
        adopt_domain(c, jstr(j, "api_domain"));
        explicit_bzero(cJSON_GetObjectItemCaseSensitive(j, "access_token")->valuestring,
                       strlen(tok));
    }
    cJSON_Delete(j);
    return st;
}

static enum cb_status token_refresh(struct connector *c, struct strbuf *err)
{
    struct strbuf url = STRBUF_INIT, form = STRBUF_INIT, what = STRBUF_INIT, why = STRBUF_INIT;
    (void)strbuf_addf(&url, "%s/oauth/v2/token", c->accounts_url);
    (void)strbuf_addf(&what, "get a zoho access token from '%s'", c->accounts_url);
    (void)strbuf_adds(&form, "grant_type=refresh_token&client_id=");
    (void)strbuf_add_urlencoded(&form, c->client_id);
    (void)strbuf_adds(&form, "&client_secret=");
    (void)strbuf_add_urlencoded(&form, c->client_secret);
    (void)strbuf_adds(&form, "&refresh_token=");
    (void)strbuf_add_urlencoded(&form, c->refresh_token);
    struct http_req rq = {.method = "POST",
                          .url = url.buf,
                          .body = form.buf,
                          .body_len = form.len,
                          .content_type = "application/x-www-form-urlencoded"};
    struct http_resp resp;
    http_resp_init(&resp);
    enum cb_status st = http_request(c->http, &rq, &resp, &why);
    release_secret(&form);
    if (st != CB_OK)
        strbuf_setf(err, "cannot %s: %s", what.buf, why.buf);
    else
        st = token_answer(c, &resp, what.buf, err);
    if (st == CB_OK && c->cache)
        token_cache_store(c);
    http_resp_release(&resp);
    strbuf_release(&url);
    strbuf_release(&what);
    strbuf_release(&why);
    return st;
}

static enum cb_status token_get(struct connector *c, struct strbuf *err)
{
    if (token_fresh(c))
        return CB_OK;
    if (!c->cache_tried && c->cache) {
        c->cache_tried = 1;
        token_cache_load(c);
        if (token_fresh(c))
            return CB_OK;
    }
    return token_refresh(c, err);
}

/* ---- concurrency ------------------------------------------------------------------------ */

/* The slots one API call holds while in flight: the sub-concurrency's when it is a complex call
 * (taken first, so that a call waiting for it holds nothing), then the org's concurrency. */
struct slots {
    struct gate *gate[2];
    int held;
};

/* Zoho's complex APIs, which count against the sub-concurrency too: COQL, listings sorted
 * (sort_by) or of a custom view (cvid), writes of more than 10 records. */
static int is_complex(const struct api_req *rq)
{
    if (!strncmp(rq->path, "/coql", 5) || rq->records > 10)
        return 1;
    const char *q = strchr(rq->path, '?');
    return q && !strcmp(rq->method, "GET") && (strstr(q, "sort_by=") || strstr(q, "cvid="));
}

/* The process-wide gate of one of the org's limits, keyed by the API base and the client id
 * (hashed: the key is no secret); NULL when the endpoint sets concurrency = 0. */
static struct gate *org_gate(const struct connector *c, const char *limit_name, int limit)
{
    if (c->concurrency <= 0)
        return NULL;
    struct strbuf what = STRBUF_INIT, key = STRBUF_INIT;
    (void)strbuf_addf(&what, "%s %s %d", api_base(c), limit_name, limit);
    pace_key(&key, "zoho client", c->client_id, what.buf);
    struct gate *g = gate_shared(key.buf, limit);
    strbuf_release(&what);
    strbuf_release(&key);
    return g;
}

static void slots_init(struct slots *s, const struct connector *c, const struct api_req *rq)
{
    s->gate[0] = is_complex(rq) ? org_gate(c, "sub-concurrency", ZOHO_SUB_CONCURRENCY) : NULL;
    s->gate[1] = org_gate(c, "concurrency", c->concurrency);
    s->held = 0;
}

static enum cb_status slots_enter(struct slots *s)
{
    if (gate_enter(s->gate[0]) != CB_OK)
        return CB_ERR_STOPPED;
    if (gate_enter(s->gate[1]) != CB_OK) {
        gate_leave(s->gate[0]);
        return CB_ERR_STOPPED;
    }
    s->held = 1;
    return CB_OK;
}

static void slots_leave(struct slots *s)
{
    if (!s->held)
        return;
    gate_leave(s->gate[1]);
    gate_leave(s->gate[0]);
    s->held = 0;
}

/* http's hook around a wait before a retry: a call waiting to be resent is not in flight. */
static enum cb_status slots_on_wait(void *arg, int waiting)
{
    struct slots *s = arg;
    if (!waiting)
        return slots_enter(s);
    slots_leave(s);
    return CB_OK;
}

/* ---- API calls -------------------------------------------------------------------------- */

static enum cb_status api_send(struct connector *c, const struct api_req *rq,
                               struct http_resp *resp, const char *what, struct strbuf *err)
{
    struct strbuf url = STRBUF_INIT, auth = STRBUF_INIT, ims = STRBUF_INIT, why = STRBUF_INIT;
    (void)strbuf_addf(&url, "%s/crm/%s%s", api_base(c), c->api_version, rq->path);
    (void)strbuf_addf(&auth, "Authorization: Zoho-oauthtoken %s", c->token);
    const char *headers[3] = {auth.buf, NULL, NULL};
    if (rq->ims) {
        (void)strbuf_addf(&ims, "If-Modified-Since: %s", rq->ims);
        headers[1] = ims.buf;
    }
    struct http_req hr = {.method = rq->method,
                          .url = url.buf,
                          .headers = headers,
                          .body = rq->body,
                          .body_len = rq->body ? strlen(rq->body) : 0,
                          .no_retry = rq->create,
                          .on_wait = slots_on_wait};
    struct slots slots;
    slots_init(&slots, c, rq);
    hr.wait_arg = &slots;
    enum cb_status st = slots_enter(&slots);
    if (st == CB_OK)
        st = http_request(c->http, &hr, resp, &why);
    else
        strbuf_setf(&why, "stopped while waiting for one of the org's %d api slots",
                    c->concurrency);
    slots_leave(&slots);
    if (st != CB_OK)
        strbuf_setf(err, "cannot %s: %s", what, why.buf);
    release_secret(&auth);
    strbuf_release(&url);
    strbuf_release(&ims);
    strbuf_release(&why);
    return st;
}

/* Interprets one answer: 204/304 give *out NULL; 2xx give the parsed body; per-record 4xx
 * answers (data[]) are handed back when rq->per_record; everything else is a failure. */
static enum cb_status api_answer(const struct api_req *rq, const struct http_resp *resp,
                                 const char *what, long *status, cJSON **out, struct strbuf *err)
{
    *status = resp->status;
    *out = NULL;
    if (resp->status == 204 || resp->status == 304)
        return CB_OK;
    if (resp->status >= 200 && resp->status <= 299)
        return parse_answer(resp, what, out, err);
    if (rq->per_record && resp->status >= 400 && resp->status < 500) {
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(resp->body.buf, resp->body.len, &end, 0);
        if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "data"))) {
            *out = j;
            return CB_OK;
        }
        cJSON_Delete(j);
    }
    return api_failure(resp, what, err);
}

/* Sends rq with a valid token; an INVALID_TOKEN answer refreshes the token and retries once.
 * On CB_OK *out (owned by the caller, may be NULL) and *status describe the answer. */
static enum cb_status api_call(struct connector *c, const struct api_req *rq, const char *what,
                               long *status, cJSON **out, struct strbuf *err)
{
    *out = NULL;
    for (int attempt = 0;; attempt++) {
        enum cb_status st = token_get(c, err);
        if (st != CB_OK)
            return st;
        struct http_resp resp;
        http_resp_init(&resp);
        st = api_send(c, rq, &resp, what, err);
        if (st == CB_OK && resp.status == 401 && attempt == 0 && is_invalid_token(&resp)) {
            log_debug("zoho access token for '%s' rejected; getting a new one", c->name);
            token_forget(c);
            http_resp_release(&resp);
            continue;
        }
        if (st == CB_OK)
            st = api_answer(rq, &resp, what, status, out, err);
        http_resp_release(&resp);
        return st;
    }
}

/* ---- field metadata --------------------------------------------------------------------- */

static const struct zfield *meta_find(const struct connector *c, const char *name)
{
    for (size_t i = 0; i < c->n_meta; i++)
        if (strcmp(c->meta[i].name, name) == 0)
            return &c->meta[i];
    return NULL;
}

static enum zkind kind_of(const char *type)
{
    if (str_eq(type, "textarea"))
        return ZK_TEXTAREA;
    if (str_eq(type, "ownerlookup") || str_eq(type, "userlookup"))
        return ZK_USER;
    if (str_eq(type, "lookup"))
        return ZK_LOOKUP;
    return str_eq(type, "picklist") ? ZK_PICKLIST : ZK_PLAIN;
}

static int read_only_of(const cJSON *f, const char *type)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "read_only")) ||
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "field_read_only")) ||
           str_eq(type, "autonumber") || str_eq(type, "formula");
}

static void meta_adopt(struct connector *c, const cJSON *fields)
{
    meta_free(c);
    c->meta = xcalloc((size_t)cJSON_GetArraySize(fields) + 1, sizeof(*c->meta));
    const cJSON *f;
    cJSON_ArrayForEach(f, fields)
    {
        const char *name = jstr(f, "api_name"), *type = jstr(f, "data_type");
        if (!name)
            continue;
        struct zfield *z = &c->meta[c->n_meta++];
        z->name = xstrdup(name);
        z->kind = kind_of(type);
        z->read_only = read_only_of(f, type);
        /* every record has an owner: zoho refuses an emptied Owner (MANDATORY_NOT_FOUND) */
        z->mandatory = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "system_mandatory")) ||
                       str_eq(type, "ownerlookup");
        if (!c->key_field && str_eq(type, "autonumber"))
            c->key_field = xstrdup(name);
    }
}

/* Builds fields_param: the mapping's fields, the filter's and what the connector reads itself. */
static enum cb_status fields_build(struct connector *c, struct strbuf *err)
{
    const char *own[] = {"Modified_Time", "Modified_By",  "Created_Time",
                         "Created_By",    c->marker_field, c->key_field};
    const size_t n_own = sizeof(own) / sizeof(own[0]);
    size_t all = c->n_want + n_own + c->n_ffields, n = 0;
    const char **names = xcalloc(all, sizeof(*names));
    for (size_t i = 0; i < all; i++) {
        const char *f = i < c->n_want           ? c->want[i]
                        : i < c->n_want + n_own ? own[i - c->n_want]
                                                : c->ffields[i - c->n_want - n_own];
        int skip = !f || !meta_find(c, f);
        for (size_t k = 0; !skip && k < n; k++)
            skip = strcmp(names[k], f) == 0;
        if (!skip)
            names[n++] = f;
    }
    enum cb_status st = CB_OK;
    if (n > ZOHO_MAX_FIELDS) {
        strbuf_setf(err, "zoho returns at most %d fields per call; module '%s' needs %zu",
                    ZOHO_MAX_FIELDS, c->module, n);
        st = CB_ERR_CONFIG;
    } else {
        struct strbuf sb = STRBUF_INIT;
        for (size_t k = 0; k < n; k++)
            (void)strbuf_addf(&sb, "%s%s", k ? "," : "", names[k]);
        free(c->fields_param);
        c->fields_param = strbuf_detach(&sb);
    }
    free(names);
    return st;
}

static enum cb_status fields_check(struct connector *c, struct strbuf *err)
{
    strbuf_reset(err);
    for (size_t i = 0; i < c->n_want; i++)
        if (!meta_find(c, c->want[i]))
            (void)strbuf_addf(err, "%sfield '%s' does not exist in zoho module '%s'",
                              err->len ? "; " : "", c->want[i], c->module);
    for (size_t i = 0; i < c->n_ffields; i++)
        if (!meta_find(c, c->ffields[i]))
            (void)strbuf_addf(err, "%sfield '%s' of the filter does not exist in zoho module '%s'",
                              err->len ? "; " : "", c->ffields[i], c->module);
    if (!meta_find(c, c->marker_field))
        (void)strbuf_addf(err,
                          "%smarker field '%s' does not exist in zoho module '%s' (add a "
                          "unique single-line field with that api name)",
                          err->len ? "; " : "", c->marker_field, c->module);
    return err->len ? CB_ERR_CONFIG : fields_build(c, err);
}

static enum cb_status meta_load(struct connector *c, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT, what = STRBUF_INIT;
    (void)strbuf_adds(&path, "/settings/fields?module=");
    (void)strbuf_add_urlencoded(&path, c->module);
    (void)strbuf_addf(&what, "read the fields of zoho module '%s'", c->module);
    struct api_req rq = {.method = "GET", .path = path.buf};
    long status = 0;
    cJSON *j = NULL;
    enum cb_status st = api_call(c, &rq, what.buf, &status, &j, err);
    if (st == CB_ERR_FINAL && strstr(err->buf, "INVALID_MODULE")) {
        strbuf_setf(err, "zoho module '%s' does not exist (check 'module' in the pair)", c->module);
        st = CB_ERR_CONFIG;
    }
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(j, "fields");
    if (st == CB_OK && !cJSON_IsArray(fields)) {
        strbuf_setf(err, "cannot %s: no field list in the answer (http %ld)", what.buf, status);
        st = CB_ERR_PARSE;
    }
    if (st == CB_OK) {
        meta_adopt(c, fields);
        st = fields_check(c, err);
    }
    if (st != CB_OK)
        meta_free(c);
    cJSON_Delete(j);
    strbuf_release(&path);
    strbuf_release(&what);
    return st;
}

static enum cb_status meta_ensure(struct connector *c, struct strbuf *err)
{
    return c->meta ? CB_OK : meta_load(c, err);
}

static enum cb_status zoho_ping(struct connector *c, struct strbuf *info, struct strbuf *err)
{
    meta_free(c);
    enum cb_status st = meta_load(c, err);
    if (st == CB_OK && info)
        strbuf_setf(info, "zoho crm '%s' (%s), module %s, %zu fields%s%s", c->name, api_base(c),
                    c->module, c->n_meta, c->filter_text ? ", filter " : "",
                    c->filter_text ? c->filter_text : "");
    return st;
}

/* ---- records ---------------------------------------------------------------------------- */

/* The browser URL <base>/tab/<Module>/<id>. base is web_url when set (as the org's CRM shows
 * it, e.g. https://crm.zoho.com.cn/crm/org123456), else the CRM host of the API's data centre
 * (www.zohoapis.eu -> https://crm.zoho.eu/crm), else the API base itself (simulators). */
static char *record_url(const struct connector *c, const char *id)
{
    struct strbuf sb = STRBUF_INIT;
    const char *base = api_base(c), *dc = strstr(base, "zohoapis.");
    if (c->web_url)
        (void)strbuf_adds(&sb, c->web_url);
    else if (dc && strcmp(dc, "zohoapis.ca") == 0)
        (void)strbuf_adds(&sb, "https://crm.zohocloud.ca/crm");
    else if (dc)
        (void)strbuf_addf(&sb, "https://crm.zoho.%s/crm", dc + strlen("zohoapis."));
    else
        (void)strbuf_addf(&sb, "%s/crm", base);
    (void)strbuf_addf(&sb, "/tab/%s/%s", c->module, id);
    return strbuf_detach(&sb);
}

/* A wire value as the canonical value (see connector conventions). */
static cJSON *canon_value(const struct zfield *f, const cJSON *v)
{
    enum zkind k = f ? f->kind : ZK_PLAIN;
    if (!v || cJSON_IsNull(v))
        return cJSON_CreateNull();
    if (cJSON_IsObject(v) && k == ZK_LOOKUP) {
        const char *name = jstr(v, "name");
        return name ? cJSON_CreateString(name) : cJSON_CreateNull();
    }
    if (cJSON_IsObject(v) && k == ZK_USER) {
        const char *id = jstr(v, "id");
        return id && *id ? person_to_json(id, jstr(v, "name"), jstr(v, "email"))
                         : cJSON_CreateNull();
    }
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (!*s || (k == ZK_PICKLIST && strcmp(s, "-None-") == 0))
            return cJSON_CreateNull();
        if (k == ZK_TEXTAREA) {
            char *md = richtext_plain_to_md(s);
            cJSON *out = cJSON_CreateString(md);
            free(md);
            return out;
        }
    }
    return cJSON_Duplicate(v, 1);
}

static char *dup_nonempty(const char *s)
{
    return s && *s ? xstrdup(s) : NULL;
}

/* info.more_records of a paged answer. */
static int more_records(const cJSON *j)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "info"), "more_records"));
}

typedef void (*item_fn)(const struct connector *c, const cJSON *item, void *arg);

/* GETs path (a query string already begun) with page=1, 2, ... while info.more_records says
 * so, at most max_pages, and calls fn on each item of the answer's array member. */
static enum cb_status get_pages(struct connector *c, const char *path, const char *ims,
                                const char *member, int max_pages, const char *what, item_fn fn,
                                void *arg, struct strbuf *err)
{
    struct strbuf p = STRBUF_INIT;
    enum cb_status st = CB_OK;
    for (int page = 1, more = 1; st == CB_OK && more && page <= max_pages; page++) {
        strbuf_reset(&p);
        (void)strbuf_addf(&p, "%s&page=%d", path, page);
        struct api_req rq = {.method = "GET", .path = p.buf, .ims = ims};
        long status = 0;
        cJSON *j = NULL;
        st = api_call(c, &rq, what, &status, &j, err);
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(j, member))
        {
            fn(c, item, arg);
        }
        more = more_records(j);
        cJSON_Delete(j);
    }
    strbuf_release(&p);
    return st;
}

static enum cb_status record_decode(const struct connector *c, const cJSON *item, struct record *r,
                                    struct strbuf *err)
{
    const char *id = jstr(item, "id"), *mt = jstr(item, "Modified_Time");
    memset(r, 0, sizeof(*r));
    if (!id || !*id) {
        strbuf_setf(err, "cannot read zoho module '%s': a record without an id", c->module);
        return CB_ERR_PARSE;
    }
    if (mt && cbtime_parse(mt, &r->modified_ms) != CB_OK) {
        strbuf_setf(err, "cannot read zoho record '%s': bad Modified_Time '%s'", id, mt);
        return CB_ERR_PARSE;
    }
    r->id = xstrdup(id);
    r->key = c->key_field ? dup_nonempty(jstr(item, c->key_field)) : NULL;
    r->url = record_url(c, id);
    r->modified_by =
        dup_nonempty(jstr(cJSON_GetObjectItemCaseSensitive(item, "Modified_By"), "name"));
    const char *ct = jstr(item, "Created_Time");
    if (!ct || cbtime_parse(ct, &r->created_ms) != CB_OK)
        r->created_ms = 0;
    r->created_by =
        dup_nonempty(jstr(cJSON_GetObjectItemCaseSensitive(item, "Created_By"), "name"));
    r->marker = dup_nonempty(jstr(item, c->marker_field));
    r->out_of_scope = c->filter && !filter_match(c->filter, item);
    r->fields = cJSON_CreateObject();
    for (size_t i = 0; i < c->n_want; i++)
        cJSON_AddItemToObject(r->fields, c->want[i],
                              canon_value(meta_find(c, c->want[i]),
                                          cJSON_GetObjectItemCaseSensitive(item, c->want[i])));
    return CB_OK;
}

/* Decodes data[] of an answer into out; CB_ERR_PARSE when data is missing or a record is bad. */
static enum cb_status records_decode(const struct connector *c, const cJSON *j,
                                     struct record_list *out, struct strbuf *err)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data"), *item;
    if (!cJSON_IsArray(data)) {
        strbuf_setf(err, "cannot read zoho module '%s': answer without data[]", c->module);
        return CB_ERR_PARSE;
    }
    cJSON_ArrayForEach(item, data)
    {
        struct record r;
        enum cb_status st = record_decode(c, item, &r, err);
        if (st != CB_OK) {
            record_release(&r);
            return st;
        }
        record_list_push(out, &r);
    }
    return CB_OK;
}

/* ---- listing ---------------------------------------------------------------------------- */

/* sb = "/<module>" */
static void module_path(const struct connector *c, struct strbuf *sb)
{
    strbuf_reset(sb);
    (void)strbuf_adds(sb, "/");
    (void)strbuf_add_urlencoded(sb, c->module);
}

static void list_path(const struct connector *c, int page, const char *token, struct strbuf *sb)
{
    module_path(c, sb);
    (void)strbuf_adds(sb, "?fields=");
    (void)strbuf_add_urlencoded(sb, c->fields_param);
    (void)strbuf_addf(sb, "&sort_by=Modified_Time&sort_order=asc&per_page=%d", ZOHO_PER_PAGE);
    if (token) {
        (void)strbuf_adds(sb, "&page_token=");
        (void)strbuf_add_urlencoded(sb, token);
    } else {
        (void)strbuf_addf(sb, "&page=%d", page);
    }
}

/* Hands one page to fn; sets *next to the page token to follow (owned), NULL at the end. */
static enum cb_status list_page(struct connector *c, const cJSON *j, record_page_fn fn, void *arg,
                                int *more, char **next, struct strbuf *err)
{
    struct record_list recs = {0};
    enum cb_status st = records_decode(c, j, &recs, err);
    if (st == CB_OK && recs.n)
        st = fn(arg, recs.v, recs.n);
    record_list_release(&recs);
    *more = more_records(j);
    *next = dup_nonempty(jstr(cJSON_GetObjectItemCaseSensitive(j, "info"), "next_page_token"));
    return st;
}

/* Zoho's If-Modified-Since keeps rows strictly newer, to the second; one second earlier than
 * since_ms keeps every row modified at or after it (the engine removes the overlap). */
static void ims_value(int64_t since_ms, char *buf)
{
    int64_t t = since_ms - since_ms % 1000 - 1000;
    cbtime_format_iso(t > 0 ? t : 0, 0, buf);
}

static enum cb_status zoho_list_changed(struct connector *c, int64_t since_ms, record_page_fn fn,
                                        void *arg, struct strbuf *err)
{
    enum cb_status st = meta_ensure(c, err);
    struct strbuf path = STRBUF_INIT, what = STRBUF_INIT;
    char ims[CBTIME_BUFSZ];
    if (since_ms > 0)
        ims_value(since_ms, ims);
    (void)strbuf_addf(&what, "list zoho module '%s'", c->module);
    char *token = NULL;
    for (int page = 1, more = 1; st == CB_OK && more; page++) {
        list_path(c, page, token, &path);
        struct api_req rq = {.method = "GET", .path = path.buf, .ims = since_ms > 0 ? ims : NULL};
        long status = 0;
        cJSON *j = NULL;
        st = api_call(c, &rq, what.buf, &status, &j, err);
        char *next = NULL;
        more = 0;
        if (st == CB_OK && j)
            st = list_page(c, j, fn, arg, &more, &next, err);
        cJSON_Delete(j);
        if (st == CB_OK && more && page >= ZOHO_MAX_PAGE) {
            free(token);
            token = next;
            next = NULL;
            if (!token) {
                strbuf_setf(err, "cannot %s: more records but no next_page_token", what.buf);
                st = CB_ERR_PARSE;
            }
        }
        free(next);
    }
    free(token);
    strbuf_release(&path);
    strbuf_release(&what);
    return st;
}

static enum cb_status get_chunk(struct connector *c, const char *const *ids, size_t n,
                                struct record_list *out, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT, what = STRBUF_INIT;
    module_path(c, &path);
    (void)strbuf_adds(&path, "?ids=");
    for (size_t i = 0; i < n; i++) {
        if (i)
            (void)strbuf_adds(&path, ",");
        (void)strbuf_add_urlencoded(&path, ids[i]);
    }
    (void)strbuf_adds(&path, "&fields=");
    (void)strbuf_add_urlencoded(&path, c->fields_param);
    (void)strbuf_addf(&what, "read %zu record%s of zoho module '%s'", n, n == 1 ? "" : "s",
                      c->module);
    struct api_req rq = {.method = "GET", .path = path.buf};
    long status = 0;
    cJSON *j = NULL;
    enum cb_status st = api_call(c, &rq, what.buf, &status, &j, err);
    if (st == CB_OK && j)
        st = records_decode(c, j, out, err);
    cJSON_Delete(j);
    strbuf_release(&path);
    strbuf_release(&what);
    return st;
}

static enum cb_status zoho_get_many(struct connector *c, const char *const *ids, size_t n,
                                    struct record_list *out, struct strbuf *err)
{
    enum cb_status st = meta_ensure(c, err);
    for (size_t i = 0; st == CB_OK && i < n; i += ZOHO_BATCH)
        st = get_chunk(c, ids + i, n - i < ZOHO_BATCH ? n - i : ZOHO_BATCH, out, err);
    return st;
}

/* ---- writing ---------------------------------------------------------------------------- */

static void op_fail(const struct connector *c, struct write_op *op, enum cb_status st,
                    const char *fmt, ...) CB_PRINTF(4, 5);
static void op_fail(const struct connector *c, struct write_op *op, enum cb_status st,
                    const char *fmt, ...)
{
    op->st = st;
    strbuf_reset(&op->err);
    if (op->id)
        (void)strbuf_addf(&op->err, "cannot update zoho %s record '%s': ", c->module, op->id);
    else
        (void)strbuf_addf(&op->err, "cannot create zoho %s record with marker '%s': ", c->module,
                          op->marker ? op->marker : "");
    va_list ap;
    va_start(ap, fmt);
    (void)strbuf_vaddf(&op->err, fmt, ap);
    va_end(ap);
}

/* A user field's wire value: {"id": user id} from the id the mapping resolved. */
static cJSON *wire_user(const struct zfield *f, const cJSON *v, const char **why)
{
    if (cJSON_IsNull(v) && f->mandatory) {
        *why = "is mandatory in zoho: it cannot be emptied";
        return NULL;
    }
    if (cJSON_IsNull(v))
        return cJSON_CreateNull();
    if (!cJSON_IsString(v) || !*v->valuestring) {
        *why = "takes a zoho user id";
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", v->valuestring);
    return o;
}

/* The wire value for a canonical one, or NULL (with *why) when zoho cannot take it. */
static cJSON *wire_value(const struct zfield *f, const cJSON *v, const char **why)
{
    if (f->kind == ZK_USER)
        return wire_user(f, v, why);
    if (cJSON_IsNull(v))
        return cJSON_CreateNull();
    if (cJSON_IsString(v) && f->kind == ZK_LOOKUP) {
        *why = "is a lookup; zoho cannot set it by name";
        return NULL;
    }
    if (cJSON_IsString(v) && !*v->valuestring)
        return cJSON_CreateNull();
    if (cJSON_IsString(v) && f->kind == ZK_TEXTAREA) {
        char *plain = richtext_md_to_plain(v->valuestring);
        cJSON *out = cJSON_CreateString(plain);
        free(plain);
        return out;
    }
    return cJSON_Duplicate(v, 1);
}

/* One data[] item for op, or NULL after failing op. */
static cJSON *op_encode(const struct connector *c, struct write_op *op)
{
    cJSON *item = cJSON_CreateObject();
    const cJSON *v;
    if (op->id)
        cJSON_AddStringToObject(item, "id", op->id);
    cJSON_ArrayForEach(v, op->fields)
    {
        const char *name = v->string, *why = NULL;
        const struct zfield *f = name && name[0] != '$' ? meta_find(c, name) : NULL;
        if (name && name[0] == '$')
            continue;
        if (!f || f->read_only)
            why = f ? "is read-only" : "does not exist in the module";
        /* a new record without an owner gets zoho's default one: the integration user */
        if (!why && !op->id && f->kind == ZK_USER && f->mandatory && cJSON_IsNull(v))
            continue;
        cJSON *w = why ? NULL : wire_value(f, v, &why);
        if (!w) {
            op_fail(c, op, CB_ERR_FINAL, "field '%s' %s", name ? name : "?", why);
            cJSON_Delete(item);
            return NULL;
        }
        cJSON_AddItemToObject(item, name, w);
    }
    if (!op->id && !(op->marker && *op->marker)) {
        op_fail(c, op, CB_ERR_FINAL, "a create needs a marker");
        cJSON_Delete(item);
        return NULL;
    }
    if (!op->id) {
        cJSON_DeleteItemFromObjectCaseSensitive(item, c->marker_field);
        cJSON_AddStringToObject(item, c->marker_field, op->marker);
    }
    return item;
}

static enum cb_status item_class(const char *code, const cJSON *details, int update)
{
    if (str_eq(code, "ALREADY_MODIFIED"))
        return CB_ERR_CONFLICT;
    if (update && str_eq(code, "INVALID_DATA") && str_eq(jstr(details, "api_name"), "id"))
        return CB_ERR_NOTFOUND;
    if (str_eq(code, "RECORD_LOCKED") || str_eq(code, "INTERNAL_ERROR"))
        return CB_ERR_TEMP;
    return CB_ERR_FINAL;
}

/* "field 'Owner': 'ID' is not an active zoho user (CODE message)" when zoho refused the user
 * id op wrote to a user field; 0 when the failure is about something else. */
static int user_refused(const struct connector *c, struct write_op *op, const char *field,
                        const char *code, const char *msg)
{
    const struct zfield *f = field ? meta_find(c, field) : NULL;
    const char *id =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(op->fields, field ? field : ""));
    if (!f || f->kind != ZK_USER || !id || !str_eq(code, "INVALID_DATA"))
        return 0;
    op_fail(c, op, CB_ERR_FINAL, "field '%s': '%s' is not an active zoho user (%s %s)", field, id,
            code, msg ? msg : "");
    return 1;
}

static void item_failed(const struct connector *c, struct write_op *op, const cJSON *res)
{
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(res, "details");
    const char *code = jstr(res, "code"), *msg = jstr(res, "message");
    const char *field = jstr(details, "api_name");
    if (user_refused(c, op, field, code, msg))
        return;
    struct strbuf extra = STRBUF_INIT;
    if (field)
        (void)strbuf_addf(&extra, " (field '%s'", field);
    const cJSON *allowed = cJSON_GetObjectItemCaseSensitive(details, "supported_values"), *a;
    cJSON_ArrayForEach(a, allowed)
    {
        if (cJSON_IsString(a))
            (void)strbuf_addf(&extra, "%s%s", a == allowed->child ? "; allowed: " : ", ",
                              a->valuestring);
    }
    const cJSON *maxlen = cJSON_GetObjectItemCaseSensitive(details, "maximum_length");
    if (cJSON_IsNumber(maxlen))
        (void)strbuf_addf(&extra, "; at most %d characters", maxlen->valueint);
    if (field)
        (void)strbuf_adds(&extra, ")");
    op_fail(c, op, item_class(code, details, op->id != NULL), "%s %s%s", code ? code : "error",
            msg ? msg : "", extra.buf);
    strbuf_release(&extra);
}

static void item_succeeded(const struct connector *c, struct write_op *op, const cJSON *res)
{
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(res, "details");
    const char *id = jstr(details, "id"), *mt = jstr(details, "Modified_Time");
    if (!id && op->id)
        id = op->id;
    if (!id) {
        op_fail(c, op, CB_ERR_PARSE, "zoho answered SUCCESS without an id");
        return;
    }
    record_release(&op->rec);
    op->rec.id = xstrdup(id);
    op->rec.url = record_url(c, id);
    if (!mt || cbtime_parse(mt, &op->rec.modified_ms) != CB_OK)
        op->rec.modified_ms = cbtime_now_ms();
    op->rec.modified_by =
        dup_nonempty(jstr(cJSON_GetObjectItemCaseSensitive(details, "Modified_By"), "name"));
    op->rec.marker = op->id ? NULL : dup_nonempty(op->marker);
    op->st = CB_OK;
    strbuf_reset(&op->err);
}

static void results_apply(const struct connector *c, struct write_op *ops, const size_t *slot,
                          size_t sent, const cJSON *j)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    if (cJSON_GetArraySize(data) != (int)sent) {
        for (size_t k = 0; k < sent; k++)
            op_fail(c, &ops[slot[k]], CB_ERR_PARSE, "zoho answered %d results for %zu records",
                    cJSON_GetArraySize(data), sent);
        return;
    }
    size_t k = 0;
    const cJSON *res;
    cJSON_ArrayForEach(res, data)
    {
        if (str_eq(jstr(res, "status"), "success") || str_eq(jstr(res, "code"), "SUCCESS"))
            item_succeeded(c, &ops[slot[k]], res);
        else
            item_failed(c, &ops[slot[k]], res);
        k++;
    }
}

static cJSON *batch_body(const struct connector *c, int create, cJSON *data)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "data", data);
    cJSON_AddItemToObject(body, "trigger", cJSON_CreateArray()); /* run no automation */
    if (create) {
        cJSON *dup = cJSON_AddArrayToObject(body, "duplicate_check_fields");
        cJSON_AddItemToArray(dup, cJSON_CreateString(c->marker_field));
    }
    return body;
}

/* Creates go through upsert keyed on the marker: repeating one (after a lost answer or a crash)
 * updates the record made the first time instead of making another, so retries are safe. */
static enum cb_status write_batch(struct connector *c, struct write_op *ops, size_t n,
                                  struct strbuf *err)
{
    int create = ops[0].id == NULL;
    cJSON *data = cJSON_CreateArray();
    size_t *slot = xcalloc(n, sizeof(*slot)), sent = 0;
    for (size_t i = 0; i < n; i++) {
        ops[i].st = CB_OK;
        strbuf_reset(&ops[i].err);
        cJSON *item = op_encode(c, &ops[i]);
        if (item) {
            cJSON_AddItemToArray(data, item);
            slot[sent++] = i;
        }
    }
    enum cb_status st = CB_OK;
    cJSON *body = batch_body(c, create, data);
    if (sent) {
        struct strbuf path = STRBUF_INIT, what = STRBUF_INIT;
        module_path(c, &path);
        (void)strbuf_adds(&path, create ? "/upsert" : "");
        (void)strbuf_addf(&what, "%s zoho %s records", create ? "create" : "update", c->module);
        char *text = cJSON_PrintUnformatted(body);
        struct api_req rq = {.method = create ? "POST" : "PUT",
                             .path = path.buf,
                             .body = text,
                             .per_record = 1,
                             .records = sent};
        long status = 0;
        cJSON *j = NULL;
        st = api_call(c, &rq, what.buf, &status, &j, err);
        if (st == CB_OK)
            results_apply(c, ops, slot, sent, j);
        for (size_t k = 0; st != CB_OK && k < sent; k++) {
            ops[slot[k]].st = st;
            strbuf_setf(&ops[slot[k]].err, "%s", err->buf);
        }
        cJSON_Delete(j);
        free(text);
        strbuf_release(&path);
        strbuf_release(&what);
    }
    cJSON_Delete(body);
    free(slot);
    return st;
}

static enum cb_status zoho_write(struct connector *c, struct write_op *ops, size_t n,
                                 struct strbuf *err)
{
    enum cb_status st = meta_ensure(c, err);
    for (size_t i = 0; st == CB_OK && i < n; i += ZOHO_BATCH)
        st = write_batch(c, ops + i, n - i < ZOHO_BATCH ? n - i : ZOHO_BATCH, err);
    for (size_t i = 0; st != CB_OK && i < n; i++) {
        if (ops[i].st == CB_OK && !ops[i].rec.id) {
            ops[i].st = st;
            strbuf_setf(&ops[i].err, "%s", err->buf);
        }
    }
    return st;
}

/* ---- markers ---------------------------------------------------------------------------- */

/* COQL string literal: quotes and backslashes escaped with a backslash. */
static void coql_quote(struct strbuf *sb, const char *s)
{
    (void)strbuf_addch(sb, '\'');
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            (void)strbuf_addch(sb, '\\');
        (void)strbuf_addch(sb, *s);
    }
    (void)strbuf_addch(sb, '\'');
}

/* Sends one COQL query; *out holds the answer (NULL on 204: no rows). */
static enum cb_status coql_query(struct connector *c, const char *query, const char *what,
                                 cJSON **out, struct strbuf *err)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "select_query", query);
    char *text = cJSON_PrintUnformatted(body);
    struct api_req rq = {.method = "POST", .path = "/coql", .body = text};
    long status = 0;
    *out = NULL;
    enum cb_status st = api_call(c, &rq, what, &status, out, err);
    cJSON_Delete(body);
    free(text);
    return st;
}

/* COQL answers lookups as bare ids, so the hit is read again by id for canonical values; both
 * reads are immediately consistent (unlike search), so a fresh create is always found. The
 * marker field is unique, so since_ms needs no filter. */
static enum cb_status zoho_find_marker(struct connector *c, const char *marker, int64_t since_ms,
                                       struct record *out, struct strbuf *err)
{
    (void)since_ms;
    enum cb_status st = meta_ensure(c, err);
    if (st != CB_OK)
        return st;
    struct strbuf q = STRBUF_INIT, what = STRBUF_INIT;
    (void)strbuf_addf(&q, "select id, Modified_Time from %s where %s = ", c->module,
                      c->marker_field);
    coql_quote(&q, marker);
    (void)strbuf_adds(&q, " limit 1");
    (void)strbuf_addf(&what, "find marker '%s' in zoho module '%s'", marker, c->module);
    cJSON *j = NULL;
    st = coql_query(c, q.buf, what.buf, &j, err);
    const char *id = jstr(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "data"), 0), "id");
    struct record_list found = {0};
    if (st == CB_OK && id)
        st = zoho_get_many(c, &id, 1, &found, err);
    if (st == CB_OK && found.n == 0) {
        strbuf_setf(err, "no zoho %s record carries marker '%s'", c->module, marker);
        st = CB_ERR_NOTFOUND;
    }
    if (st == CB_OK) {
        *out = found.v[0];
        memset(&found.v[0], 0, sizeof(found.v[0]));
    }
    record_list_release(&found);
    cJSON_Delete(j);
    strbuf_release(&q);
    strbuf_release(&what);
    return st;
}

/* ---- ids only ---------------------------------------------------------------------------- */

#define COQL_MAX_ROWS 2000 /* LIMIT of one COQL query */

/* One COQL page of ids modified at or after from_ms (to the second), oldest first: the rows
 * not in seen go to out; *last_ms is the newest time of the page, *full whether it was full. */
static enum cb_status ids_page(struct connector *c, int64_t from_ms, const struct strlist *seen,
                               struct record_list *out, int64_t *last_ms, int *full,
                               struct strbuf *err)
{
    char when[CBTIME_BUFSZ];
    struct strbuf q = STRBUF_INIT, what = STRBUF_INIT;
    (void)strbuf_addf(&q,
                      "select id, Modified_Time from %s where Modified_Time >= '%s' order by "
                      "Modified_Time asc, id asc limit %d",
                      c->module, cbtime_format_iso(from_ms, 0, when), COQL_MAX_ROWS);
    (void)strbuf_addf(&what, "list ids of zoho module '%s'", c->module);
    cJSON *j = NULL;
    enum cb_status st = coql_query(c, q.buf, what.buf, &j, err);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data"), *row;
    *full = cJSON_GetArraySize(data) >= COQL_MAX_ROWS;
    cJSON_ArrayForEach(row, data)
    {
        const char *id = jstr(row, "id"), *mt = jstr(row, "Modified_Time");
        struct record r = {0};
        if (st != CB_OK)
            break;
        if (!id || !mt || cbtime_parse(mt, &r.modified_ms) != CB_OK) {
            strbuf_setf(err, "cannot %s: a row without id or Modified_Time", what.buf);
            st = CB_ERR_PARSE;
            break;
        }
        *last_ms = r.modified_ms;
        if (r.modified_ms == from_ms && strlist_has(seen, id))
            continue;
        r.id = xstrdup(id);
        record_list_push(out, &r);
    }
    cJSON_Delete(j);
    strbuf_release(&q);
    strbuf_release(&what);
    return st;
}

/* COQL pages restart at the last page's newest second, skipping the ids already given there;
 * a second holding a whole page of records cannot be paged through exactly: CB_ERR_FINAL. */
static enum cb_status zoho_list_changed_ids(struct connector *c, int64_t since_ms,
                                            record_page_fn fn, void *arg, struct strbuf *err)
{
    enum cb_status st = meta_ensure(c, err);
    int64_t from = since_ms > 0 ? since_ms - since_ms % 1000 : 0;
    struct strlist seen = {0};
    for (int full = 1; st == CB_OK && full;) {
        struct record_list page = {0};
        int64_t last = from;
        st = ids_page(c, from, &seen, &page, &last, &full, err);
        if (st == CB_OK && full && last == from) {
            strbuf_setf(err,
                        "cannot list ids of zoho module '%s': over %d records modified at %lld",
                        c->module, COQL_MAX_ROWS, (long long)from);
            st = CB_ERR_FINAL;
        }
        if (st == CB_OK && page.n)
            st = fn(arg, page.v, page.n);
        if (last != from)
            strlist_clear(&seen);
        for (size_t i = 0; i < page.n; i++)
            if (page.v[i].modified_ms == last)
                strlist_push(&seen, page.v[i].id);
        from = last;
        record_list_release(&page);
    }
    strlist_clear(&seen);
    return st;
}

/* ---- notes (comments) ------------------------------------------------------------------- */

#define NOTE_FIELDS "Note_Title,Note_Content,Created_Time,Modified_Time,Created_By"

/* A note as a comment: the title (if any) as a first line, the content read as light markup,
 * the "[cb:...]" trailer of the notes crmbridge wrote taken out (Note_Content is plain text:
 * nothing else would stay hidden and survive an edit in the CRM). */
static enum cb_status note_decode(const cJSON *n, struct comment *out)
{
    const char *id = jstr(n, "id"), *ct = jstr(n, "Created_Time"), *mt = jstr(n, "Modified_Time");
    memset(out, 0, sizeof(*out));
    if (!id || !ct || cbtime_parse(ct, &out->created_ms) != CB_OK)
        return CB_ERR_PARSE;
    if (!mt || cbtime_parse(mt, &out->updated_ms) != CB_OK)
        out->updated_ms = out->created_ms;
    out->id = xstrdup(id);
    out->author = dup_nonempty(jstr(cJSON_GetObjectItemCaseSensitive(n, "Created_By"), "name"));
    const char *title = jstr(n, "Note_Title");
    struct strbuf text = STRBUF_INIT;
    if (title && *title)
        (void)strbuf_addf(&text, "%s\n\n", title);
    (void)strbuf_adds(&text, jstr(n, "Note_Content") ? jstr(n, "Note_Content") : "");
    out->marker = comment_trailer_split(text.buf);
    out->by_us = out->marker != NULL;
    out->body = richtext_plain_to_md(text.buf);
    strbuf_release(&text);
    return CB_OK;
}

static void note_push(const struct connector *c, const cJSON *n, void *arg)
{
    (void)c;
    struct comment x;
    if (note_decode(n, &x) == CB_OK)
        comment_list_push(arg, &x);
}

static enum cb_status zoho_list_comments(struct connector *c, const char *record_id,
                                         struct comment_list *out, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT, what = STRBUF_INIT;
    (void)strbuf_addf(&what, "list the notes of zoho %s record '%s'", c->module, record_id);
    module_path(c, &path);
    (void)strbuf_adds(&path, "/");
    (void)strbuf_add_urlencoded(&path, record_id);
    (void)strbuf_addf(&path, "/Notes?fields=%s&sort_by=Created_Time&sort_order=asc&per_page=%d",
                      NOTE_FIELDS, ZOHO_PER_PAGE);
    enum cb_status st =
        get_pages(c, path.buf, NULL, "data", ZOHO_MAX_PAGE, what.buf, note_push, out, err);
    strbuf_release(&path);
    strbuf_release(&what);
    return st;
}

static enum cb_status zoho_write_comment(struct connector *c, const char *record_id,
                                         struct comment_op *op, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT, what = STRBUF_INIT, text = STRBUF_INIT;
    char *plain = richtext_md_to_plain(op->body);
    if (op->marker)
        comment_trailer_add(&text, plain, op->marker);
    else
        (void)strbuf_adds(&text, plain);
    free(plain);
    cJSON *body = cJSON_CreateObject(), *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "Note_Content", text.buf);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(body, "data"), item);
    char *json = cJSON_PrintUnformatted(body);
    if (op->id) {
        (void)strbuf_adds(&path, "/Notes/");
        (void)strbuf_add_urlencoded(&path, op->id);
        (void)strbuf_addf(&what, "update note '%s' of zoho %s record '%s'", op->id, c->module,
                          record_id);
    } else {
        module_path(c, &path);
        (void)strbuf_adds(&path, "/");
        (void)strbuf_add_urlencoded(&path, record_id);
        (void)strbuf_adds(&path, "/Notes");
        (void)strbuf_addf(&what, "add a note to zoho %s record '%s'", c->module, record_id);
    }
    struct api_req rq = {.method = op->id ? "PUT" : "POST",
                         .path = path.buf,
                         .body = json,
                         .per_record = 1,
                         .create = !op->id};
    long status = 0;
    cJSON *j = NULL;
    enum cb_status st = api_call(c, &rq, what.buf, &status, &j, err);
    const cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "data"), 0);
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(res, "details");
    if (st == CB_OK && !str_eq(jstr(res, "code"), "SUCCESS")) {
        st = item_class(jstr(res, "code"), details, op->id != NULL);
        const char *code = jstr(res, "code"), *msg = jstr(res, "message");
        strbuf_setf(err, "cannot %s: %s %s", what.buf, code ? code : "error", msg ? msg : "");
    } else if (st == CB_OK && !op->id) {
        op->new_id = dup_nonempty(jstr(details, "id"));
    }
    cJSON_Delete(j);
    cJSON_Delete(body);
    free(json);
    strbuf_release(&text);
    strbuf_release(&path);
    strbuf_release(&what);
    return st;
}

static void id_push(char ***ids, size_t *n, const char *id)
{
    for (size_t i = 0; i < *n; i++)
        if (str_eq((*ids)[i], id))
            return;
    *ids = xrealloc(*ids, (*n + 1) * sizeof(**ids));
    (*ids)[(*n)++] = xstrdup(id);
}

struct id_set {
    char ***ids;
    size_t *n;
};

/* Keeps the id of the note's parent when it is a record of the side's module. */
static void note_parent(const struct connector *c, const cJSON *note, void *arg)
{
    struct id_set *set = arg;
    const cJSON *parent = cJSON_GetObjectItemCaseSensitive(note, "Parent_Id");
    const char *mod = jstr(cJSON_GetObjectItemCaseSensitive(parent, "module"), "api_name");
    if (jstr(parent, "id") && str_eq(mod ? mod : jstr(note, "$se_module"), c->module))
        id_push(set->ids, set->n, jstr(parent, "id"));
}

/* Adding or editing a note leaves its record's Modified_Time alone: the notes modified since
 * then name the records whose comments changed. */
static enum cb_status zoho_comments_changed(struct connector *c, int64_t since_ms, char ***ids,
                                            size_t *n, struct strbuf *err)
{
    char ims[CBTIME_BUFSZ], path[200];
    ims_value(since_ms, ims);
    snprintf(path, sizeof(path),
             "/Notes?fields=Parent_Id,Modified_Time&sort_by=Modified_Time&sort_order=desc"
             "&per_page=%d",
             ZOHO_PER_PAGE);
    struct id_set set = {ids, n};
    return get_pages(c, path, ims, "data", ZOHO_MAX_PAGE, "list changed zoho notes", note_parent,
                     &set, err);
}

static int64_t zoho_server_now(const struct connector *c)
{
    return http_server_now(c->http);
}

static void zoho_budget(const struct connector *c, struct http_budget *out, unsigned long *paced)
{
    http_budget_get(c->http, out);
    *paced = 0;
}

/* A textarea keeps plain text: Markdown written there reads back as plain text's markdown. */
static cJSON *zoho_echo(const struct connector *c, const char *field, const cJSON *written)
{
    const struct zfield *f = meta_find(c, field);
    if (!f || f->kind != ZK_TEXTAREA || !cJSON_IsString(written))
        return NULL;
    const char *why = NULL;
    cJSON *wire = wire_value(f, written, &why);
    cJSON *back = wire ? canon_value(f, wire) : NULL;
    cJSON_Delete(wire);
    return back;
}

/* Deletes a record into Zoho's recycle bin (kept 60 days there), without firing workflows. */
static enum cb_status zoho_remove(struct connector *c, const char *id, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT, what = STRBUF_INIT;
    (void)strbuf_addf(&path, "/%s?ids=", c->module);
    (void)strbuf_add_urlencoded(&path, id);
    (void)strbuf_adds(&path, "&wf_trigger=false");
    (void)strbuf_addf(&what, "delete zoho %s record '%s'", c->module, id);
    struct api_req rq = {.method = "DELETE", .path = path.buf};
    long status = 0;
    cJSON *j = NULL;
    enum cb_status st = api_call(c, &rq, what.buf, &status, &j, err);
    if (st == CB_ERR_FINAL && strstr(err->buf, "INVALID_DATA"))
        st = CB_ERR_NOTFOUND;
    cJSON_Delete(j);
    strbuf_release(&path);
    strbuf_release(&what);
    return st;
}

/* ---- people ---------------------------------------------------------------------------- */

static int has_person(const struct person_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].id, id) == 0)
            return 1;
    return 0;
}

static void user_push(const struct connector *c, const cJSON *u, void *arg)
{
    (void)c;
    const char *id = jstr(u, "id");
    if (id && *id && !has_person(arg, id))
        person_list_add(arg, id, jstr(u, "full_name"), jstr(u, "email"));
}

/* The active users, 200 a page; the list is only appended to once every page was read. */
static enum cb_status zoho_list_users(struct connector *c, struct person_list *out,
                                      struct strbuf *err)
{
    struct person_list got = {0};
    char path[64];
    snprintf(path, sizeof(path), "/users?type=ActiveUsers&per_page=%d", ZOHO_PER_PAGE);
    enum cb_status st = get_pages(c, path, NULL, "users", ZOHO_USER_PAGES,
                                  "list the active zoho users", user_push, &got, err);
    if (st == CB_ERR_AUTH && strstr(err->buf, "OAUTH_SCOPE_MISMATCH"))
        (void)strbuf_adds(err, ": the refresh token needs the ZohoCRM.users.READ scope");
    for (size_t i = 0; st == CB_OK && i < got.n; i++)
        if (!has_person(out, got.v[i].id))
            person_list_add(out, got.v[i].id, got.v[i].name, got.v[i].email);
    person_list_release(&got);
    return st;
}

/* Owner, Created_By, Modified_By and user lookups (data_type ownerlookup / userlookup). */
static int zoho_person_field(const struct connector *c, const char *field)
{
    const struct zfield *f = meta_find(c, field);
    return f && f->kind == ZK_USER;
}

/* ---- notification channel (watch) ------------------------------------------------------ */

static char *watch_body(const struct connector *c, const struct watch_req *req)
{
    char when[40], ev[80];
    snprintf(ev, sizeof(ev), "%s.all", c->module);
    cJSON *o = cJSON_CreateObject();
    cJSON *w = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "watch"), w);
    cJSON_AddStringToObject(w, "channel_id", req->channel_id);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(w, "events"), cJSON_CreateString(ev));
    cJSON_AddStringToObject(w, "notify_url", req->notify_url);
    cJSON_AddStringToObject(w, "token", req->token);
    cJSON_AddStringToObject(w, "channel_expiry", cbtime_format_iso(req->expiry_ms, 0, when));
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return txt;
}

/* PATCH renews an existing channel; NOT_SUBSCRIBED means there is none yet: POST enables it. */
static enum cb_status zoho_watch(struct connector *c, const struct watch_req *req,
                                 struct strbuf *info, struct strbuf *err)
{
    struct strbuf what = STRBUF_INIT;
    (void)strbuf_addf(&what, "watch zoho %s (channel %s)", c->module, req->channel_id);
    char *body = watch_body(c, req);
    struct api_req rq = {.method = "PATCH", .path = "/actions/watch", .body = body};
    long status = 0;
    cJSON *j = NULL;
    enum cb_status st = api_call(c, &rq, what.buf, &status, &j, err);
    int renewed = st == CB_OK;
    if (st == CB_ERR_FINAL && strstr(err->buf, "NOT_SUBSCRIBED")) {
        strbuf_reset(err);
        rq.method = "POST";
        st = api_call(c, &rq, what.buf, &status, &j, err);
    }
    const cJSON *item = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "watch"), 0);
    if (st == CB_OK && !str_eq(jstr(item, "code"), "SUCCESS")) {
        strbuf_setf(err, "cannot %s: %s", what.buf, jstr(item, "code") ? jstr(item, "code")
                                                                      : "unexpected answer");
        st = CB_ERR_FINAL;
    }
    char when[40];
    if (st == CB_OK)
        strbuf_setf(info, "zoho %s channel %s %s until %s", c->module, req->channel_id,
                    renewed ? "renewed" : "enabled", cbtime_format_iso(req->expiry_ms, 0, when));
    cJSON_Delete(j);
    cJSON_free(body);
    strbuf_release(&what);
    return st;
}

const struct connector_ops zoho_ops = {
    .name = "zoho",
    .check_config = zoho_check_config,
    .open = zoho_open,
    .close = zoho_close,
    .ping = zoho_ping,
    .list_changed = zoho_list_changed,
    .get_many = zoho_get_many,
    .list_comments = zoho_list_comments,
    .write_comment = zoho_write_comment,
    .comments_changed = zoho_comments_changed,
    .write = zoho_write,
    .find_marker = zoho_find_marker,
    .list_changed_ids = zoho_list_changed_ids,
    .max_batch_read = ZOHO_BATCH,
    .max_batch_write = ZOHO_BATCH,
    .search_lag_ms = 0,
    .budget = zoho_budget,
    .server_now = zoho_server_now,
    .echo = zoho_echo,
    .remove = zoho_remove,
    .watch = zoho_watch,
    .list_users = zoho_list_users,
    .person_field = zoho_person_field,
};
