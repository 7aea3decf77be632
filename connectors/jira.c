/*
 * Jira Cloud (REST v3) connector: Basic auth with an API token, fields named by id or display
 * name (resolved through /field), incremental listing through /search/jql with epoch-ms JQL and
 * cursor paging (named issues too, read-after-write through reconcileIssues), bulk reads, bulk
 * creates (50 a request) carrying the crmbridge marker as an issue property and the first hop
 * of a wanted status, edits of the changed fields only, and status changes through (multi-hop)
 * workflow transitions, learnt once per connection.
 * With flavor = "datacenter" it speaks Jira Data Center instead: REST v2 paths, a personal
 * access token as Bearer, /search with startAt/total (also for reads by id), wiki-markup bodies,
 * creates one by one. User fields read as person objects and are written by accountId (Data
 * Center: user name); the directory is the project's assignable users. It does not do webhooks.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/connector.h"
#include "connectors/pace.h"
#include "core/strlist.h"
#include "core/timeutil.h"
#include "mapping/richtext.h"

#define LOG_MODULE "jira"
#include "core/log.h"

#define PAGE_SIZE 100
#define BULK_MAX 100     /* ids per bulkfetch */
#define BULK_CREATE 50   /* issues per bulk create: the API's maximum */
#define RECONCILE_MAX 50 /* issues named in one search's reconcileIssues: the API's maximum */
#define PAGE_BUDGET 5000 /* pages per listing: a server that never says isLast cannot spin us */
#define MAX_HOPS 6       /* transitions tried per status change */
#define MARKER_PROP "crmbridge"
#define COMMENT_PAGE 100 /* comments per page: the API's maximum */
#define USER_PAGE 1000   /* users per assignable-search page: the API's maximum */
#define MARKER_SLACK_MS                                                                            \
    3600000 /* find_marker looks this far before since_ms: the two clocks may                      \
             * disagree by minutes (a tracker behind ours hides its issue) */

enum fkind {
    FK_TEXT,
    FK_ADF,
    FK_NAMED,
    FK_OPTION,
    FK_LABELS,
    FK_OPTIONS,
    FK_USER,
    FK_DATE,
    FK_NUMBER,
    FK_RAW
};

struct jfield {
    char *id, *name;
    enum fkind kind;
};

/* One learned workflow edge: status `from` has transition `tid` to `to`. */
struct edge {
    char *from, *tid, *to;
    int to_done; /* target is in the done category */
};

struct connector {
    struct http *http;
    char *api_url, *email, *auth, *project, *issue_type;
    char *filter; /* the side's JQL fragment (scope), or NULL */
    int dc;       /* flavor "datacenter": REST v2, Bearer token, wiki markup, users by name */
    int64_t search_lag_ms;
    int burst_limit;     /* Cloud's burst limit for GET and POST per endpoint (PUT, DELETE: half) */
    struct strlist need; /* field names as the mapping says them (no pseudo fields) */
    const char **need_ids; /* resolved ids, parallel to need (point into cat) */
    const struct jfield **need_f;
    struct jfield *cat; /* GET /field */
    size_t n_cat;
    char *fields_param; /* ids for search and GET: need + updated, created, creator, comment */
    char *issue_type_id;
    char *initial_status; /* the workflow's first status, learnt from the first create */
    struct strlist statuses, priorities;
    struct strlist explored; /* statuses whose outgoing transitions are in edges */
    struct edge *edges;
    size_t n_edges;
    char *tz;
    int ready;
};

static const char *const default_fields[] = {"summary", "description", "status", "priority",
                                             "labels",  "duedate",     NULL};

/* --- small helpers ------------------------------------------------------------------------- */

/* Jira compares field and status names without case (ids are digits either way). */
static int strlist_has_nocase(const struct strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

static void strlist_join(const struct strlist *l, struct strbuf *out)
{
    for (size_t i = 0; i < l->n; i++)
        (void)strbuf_addf(out, "%s%s", i ? ", " : "", l->v[i]);
}

static const char *jstr(const cJSON *obj, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, name));
}

static char *base64(const char *s)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    char *out = xmalloc(4 * ((n + 2) / 3) + 1), *o = out;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static void jql_quote(struct strbuf *q, const char *s)
{
    (void)strbuf_addch(q, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            (void)strbuf_addch(q, '\\');
        (void)strbuf_addch(q, *s);
    }
    (void)strbuf_addch(q, '"');
}

/* --- configuration ------------------------------------------------------------------------- */

static const char *const ep_keys[] = {"api_url", "email",       "api_token", "search_lag",
                                      "flavor",  "burst_limit", NULL};

/* 1 for flavor "datacenter", 0 for "cloud" (the default), -1 for anything else. */
static int flavor_dc(const struct conf_group *g)
{
    const char *f = conf_get(g, "flavor");
    return !f || !strcmp(f, "cloud") ? 0 : !strcmp(f, "datacenter") ? 1 : -1;
}
static const char *const side_keys[] = {"project", "issue_type", "filter", NULL};

static int check_endpoint(const struct endpoint_conf *ep, struct strbuf *err)
{
    static const char *const required[] = {"api_url", "email", "api_token", NULL};
    /* Data Center signs in with a personal access token alone: no e-mail */
    static const char *const required_dc[] = {"api_url", "api_token", NULL};
    const struct conf_group *g = &ep->g;
    int dc = flavor_dc(g);
    int bad = conf_require(g, dc == 1 ? required_dc : required, "jira endpoint", err) +
              conf_unknown_keys(g, ep_keys, NULL, "jira endpoint", err);
    if (dc < 0) {
        conf_error(g, "flavor", err, "jira 'flavor' must be \"cloud\" or \"datacenter\" (got '%s')",
                   conf_get(g, "flavor"));
        bad++;
    }
    const char *url = conf_get(g, "api_url");
    if (url && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        conf_error(g, "api_url", err, "jira 'api_url' must start with https:// (got '%s')", url);
        bad++;
    }
    const char *email = conf_get(g, "email");
    if (email && dc == 1) {
        conf_error(g, "email", err,
                   "jira 'email' is not used with flavor \"datacenter\": it signs in with the "
                   "personal access token in 'api_token' alone");
        bad++;
    } else if (email && !strchr(email, '@')) {
        conf_error(g, "email", err, "jira 'email' must be the account's e-mail address");
        bad++;
    }
    const char *lag = conf_get(g, "search_lag");
    char *end = NULL;
    long secs = lag ? strtol(lag, &end, 10) : 0;
    if (lag && (end == lag || *end || secs < 0 || secs > 3600)) {
        conf_error(g, "search_lag", err, "jira 'search_lag' must be seconds between 0 and 3600");
        bad++;
    }
    const char *burst = conf_get(g, "burst_limit");
    long rps = burst ? strtol(burst, &end, 10) : 0;
    if (burst && (end == burst || *end || rps < 0 || rps > 100000)) {
        conf_error(g, "burst_limit", err,
                   "jira 'burst_limit' must be requests per second between 0 (no pacing) and "
                   "100000");
        bad++;
    }
    return bad;
}

/* NULL when a JQL fragment can be ANDed into a query, else what is wrong with it. */
static const char *fragment_problem(const char *f)
{
    int depth = 0;
    char quote = 0;
    if (!f[strspn(f, " \t\r\n")])
        return "is empty";
    for (const char *p = f; *p; p++) {
        if (quote) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == quote)
                quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '(' || *p == ')') {
            depth += *p == '(' ? 1 : -1;
            if (depth < 0)
                return "closes a parenthesis it never opened";
        } else if (!strncasecmp(p, "order by", 8) && (p == f || strchr(" \t)", p[-1]))) {
            return "has an ORDER BY (crmbridge orders its own searches)";
        }
    }
    return quote ? "has an unfinished quoted string" : depth ? "leaves a parenthesis open" : NULL;
}

static int check_side(const struct side_conf *side, struct strbuf *err)
{
    static const char *const required[] = {"project", NULL};
    const struct conf_group *g = &side->g;
    int bad = conf_require(g, required, "jira side", err) +
              conf_unknown_keys(g, side_keys, NULL, "jira side", err);
    const char *p = conf_get(g, "project");
    if (p && (strlen(p) < 2 || strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(p) ||
              p[0] < 'A' || p[0] > 'Z')) {
        conf_error(g, "project", err,
                   "jira 'project' must be a project key like \"SUP\" (got '%s')", p);
        bad++;
    }
    const char *f = conf_get(g, "filter");
    const char *why = f ? fragment_problem(f) : NULL;
    if (why) {
        conf_error(g, "filter", err,
                   "jira 'filter' must be a JQL condition like \"labels = customer\": it %s", why);
        bad++;
    }
    return bad;
}

static enum cb_status jira_check_config(const struct endpoint_conf *ep,
                                        const struct side_conf *side, struct strbuf *err)
{
    int bad = check_endpoint(ep, err) + (side ? check_side(side, err) : 0);
    if (bad)
        strbuf_trim_end(err);
    return bad ? CB_ERR_CONFIG : CB_OK;
}

/* --- lifecycle ----------------------------------------------------------------------------- */

static void clear_metadata(struct connector *c)
{
    for (size_t i = 0; i < c->n_cat; i++) {
        free(c->cat[i].id);
        free(c->cat[i].name);
    }
    free(c->cat);
    c->cat = NULL;
    c->n_cat = 0;
    free(c->need_ids);
    free(c->need_f);
    c->need_ids = NULL;
    c->need_f = NULL;
    free(c->fields_param);
    free(c->issue_type_id);
    free(c->tz);
    free(c->initial_status);
    c->fields_param = c->issue_type_id = c->tz = c->initial_status = NULL;
    strlist_clear(&c->statuses);
    strlist_clear(&c->priorities);
    c->ready = 0;
}

static void clear_workflow(struct connector *c)
{
    for (size_t i = 0; i < c->n_edges; i++) {
        free(c->edges[i].from);
        free(c->edges[i].tid);
        free(c->edges[i].to);
    }
    free(c->edges);
    c->edges = NULL;
    c->n_edges = 0;
    strlist_clear(&c->explored);
}

static void jira_close(struct connector *c)
{
    if (!c)
        return;
    clear_metadata(c);
    clear_workflow(c);
    strlist_clear(&c->need);
    http_free(c->http);
    free(c->api_url);
    free(c->email);
    memset(c->auth, 0, strlen(c->auth));
    free(c->auth);
    free(c->project);
    free(c->issue_type);
    free(c->filter);
    free(c);
}

static char *auth_header(const char *email, const char *token)
{
    struct strbuf pair = STRBUF_INIT;
    if (!email) { /* Data Center: the personal access token as it is */
        log_add_secret(token);
        (void)strbuf_addf(&pair, "Authorization: Bearer %s", token);
        return strbuf_detach(&pair);
    }
    (void)strbuf_addf(&pair, "%s:%s", email, token);
    char *b64 = base64(pair.buf);
    log_add_secret(b64);
    memset(pair.buf, 0, pair.len);
    strbuf_release(&pair);
    struct strbuf h = STRBUF_INIT;
    (void)strbuf_addf(&h, "Authorization: Basic %s", b64);
    free(b64);
    return strbuf_detach(&h);
}

static enum cb_status jira_open(const struct connector_params *p, struct connector **out,
                                struct strbuf *err)
{
    *out = NULL;
    strbuf_reset(err);
    if (jira_check_config(p->ep, p->side, err) != CB_OK)
        return CB_ERR_CONFIG;
    char *token = NULL;
    if (conf_secret(&p->ep->g, "api_token", &token, err) != CB_OK)
        return CB_ERR_CONFIG;
    struct connector *c = xcalloc(1, sizeof(*c));
    const struct conf_group *g = &p->ep->g;
    c->api_url = xstrdup(conf_get(g, "api_url"));
    size_t n = strlen(c->api_url);
    while (n > 0 && c->api_url[n - 1] == '/')
        c->api_url[--n] = '\0';
    c->dc = flavor_dc(g) == 1;
    c->auth = auth_header(c->dc ? NULL : conf_get(g, "email"), token);
    /* messages name the account: the e-mail, or on Data Center the token's user (load_myself) */
    c->email = xstrdup(c->dc ? "personal access token" : conf_get(g, "email"));
    memset(token, 0, strlen(token));
    free(token);
    const char *lag = conf_get(g, "search_lag");
    /* Data Center's search reads its index right after a write; Cloud's lags */
    c->search_lag_ms = (lag ? strtol(lag, NULL, 10) : c->dc ? 0 : 30) * 1000;
    const char *burst = conf_get(g, "burst_limit");
    c->burst_limit = c->dc ? 0 : burst ? (int)strtol(burst, NULL, 10) : 100;
    c->project = xstrdup(conf_get(&p->side->g, "project"));
    const char *it = conf_get(&p->side->g, "issue_type");
    c->issue_type = xstrdup(it ? it : "Task");
    const char *filter = conf_get(&p->side->g, "filter");
    c->filter = filter ? xstrdup(filter) : NULL;
    for (const char *const *f = p->fields ? p->fields : default_fields; *f; f++)
        if ((*f)[0] != '$' && !strlist_has_nocase(&c->need, *f))
            strlist_push(&c->need, *f);
    c->http = connector_http_new(p);
    *out = c;
    return CB_OK;
}

/* --- requests ------------------------------------------------------------------------------ */

/* Appends Jira's ErrorCollection text ("msg; field: msg") to out. */
static void error_text(const cJSON *body, struct strbuf *out)
{
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(body, "errorMessages"))
    {
        if (cJSON_IsString(e))
            (void)strbuf_addf(out, "%s%s", n++ ? "; " : ": ", e->valuestring);
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(body, "errors"))
    {
        if (cJSON_IsString(e))
            (void)strbuf_addf(out, "%s%s: %s", n++ ? "; " : ": ", e->string, e->valuestring);
    }
}

static int is_html(const struct http_resp *r)
{
    struct strbuf ct = STRBUF_INIT;
    int html = http_resp_header(r, "Content-Type", &ct) && strstr(ct.buf, "html");
    strbuf_release(&ct);
    const char *b = r->body.buf + strspn(r->body.buf, " \t\r\n");
    return html || *b == '<';
}

static const char *find_nocase(const char *s, const char *needle)
{
    size_t n = strlen(needle);
    for (; *s; s++)
        if (strncasecmp(s, needle, n) == 0)
            return s;
    return NULL;
}

/* Appends " ('<title>')" of an HTML page, if it has one. */
static void html_title(const char *body, struct strbuf *out)
{
    const char *t = find_nocase(body, "<title>");
    const char *e = t ? find_nocase(t, "</title>") : NULL;
    if (t && e && e - t - 7 < 120)
        (void)strbuf_addf(out, " ('%.*s')", (int)(e - t - 7), t + 7);
}

/* Turns a response into a status, a parsed body (*out, may be NULL for 204) and a message. */
static enum cb_status read_response(struct connector *c, const struct http_resp *r, cJSON **out,
                                    int keep, const char *what, struct strbuf *err)
{
    enum cb_status st = http_classify(r->status);
    if (st == CB_ERR_AUTH) {
        strbuf_setf(err, "jira rejected the credentials for '%s' (http 401 when trying to %s)",
                    c->email, what);
        return st;
    }
    if (r->body.len && is_html(r)) {
        strbuf_setf(err, "cannot %s: http %ld with an HTML page instead of JSON", what, r->status);
        html_title(r->body.buf, err);
        return st == CB_OK ? CB_ERR_TEMP : st;
    }
    const char *end = NULL;
    cJSON *j = r->body.len ? cJSON_ParseWithLengthOpts(r->body.buf, r->body.len, &end, 0) : NULL;
    if (r->body.len && !j) {
        strbuf_setf(err, "cannot %s: malformed JSON from jira (http %ld, byte %ld of %zu)", what,
                    r->status, end ? (long)(end - r->body.buf) : 0L, r->body.len);
        return st == CB_OK ? CB_ERR_PARSE : st;
    }
    if (st != CB_OK) {
        strbuf_setf(err, "cannot %s: http %ld", what, r->status);
        error_text(j, err);
        if (r->retry_after_s >= 0)
            (void)strbuf_addf(err, " (retry after %ld s)", r->retry_after_s);
        if (keep)
            *out = j;
        else
            cJSON_Delete(j);
        return st;
    }
    *out = j;
    return CB_OK;
}

#define CALL_NO_RETRY 1   /* a create: sent once (http_req.no_retry) */
#define CALL_KEEP_ERROR 2 /* a failed call still hands its parsed JSON body to *out */

/* A path segment that names one resource: a numeric id (not the API version) or a key. */
static int is_id_segment(const char *s, size_t n)
{
    size_t d = 0;
    while (d < n && isdigit((unsigned char)s[n - 1 - d]))
        d++;
    if (d == n)
        return n > 1;
    return d > 0 && s[n - 1 - d] == '-'; /* SUP-12 */
}

/* Jira Cloud's burst limits: one token bucket per site, endpoint and method (GET and POST
 * burst_limit requests a second, by default 100; PUT and DELETE half), shared by every
 * connection of the process, paced at 95% with a burst of a twentieth so that parallel
 * connections never bounce off them. NULL (no pacing) on Data Center, whose limits are its
 * admin's, or with burst_limit 0. */
static struct pace *burst_pace(const struct connector *c, const char *method, const char *path)
{
    if (c->burst_limit <= 0)
        return NULL;
    struct strbuf k = STRBUF_INIT;
    (void)strbuf_addf(&k, "jira burst %s %s ", c->api_url, method);
    size_t end = strcspn(path, "?");
    for (size_t i = 0; i < end;) {
        size_t n = strcspn(path + i + 1, "/?") + 1; /* the '/' and the segment */
        if (i + n > end)
            n = end - i;
        if (is_id_segment(path + i + 1, n - 1))
            (void)strbuf_adds(&k, "/{id}");
        else
            (void)strbuf_add(&k, path + i, n);
        i += n;
    }
    int limit =
        !strcmp(method, "PUT") || !strcmp(method, "DELETE") ? c->burst_limit / 2 : c->burst_limit;
    (void)strbuf_addf(&k, " %d/s", limit);
    int burst = limit / 20 > 0 ? limit / 20 : 1,
        steady = limit * 95 / 100 > 0 ? limit * 95 / 100 : 1;
    struct pace *p = pace_shared(k.buf, burst, (int64_t)1000 * burst / steady);
    strbuf_release(&k);
    return p;
}

/* Sends method path (relative to api_url) with an optional JSON body. On success *out holds the
 * parsed answer (owned by the caller; NULL when empty). what names the action for messages.
 * flags: CALL_NO_RETRY, CALL_KEEP_ERROR (0 for neither). */
static enum cb_status jira_call(struct connector *c, const char *method, const char *path,
                                const cJSON *body, int flags, cJSON **out, struct strbuf *err,
                                const char *what_fmt, ...) CB_PRINTF(8, 9);
static enum cb_status jira_call(struct connector *c, const char *method, const char *path,
                                const cJSON *body, int flags, cJSON **out, struct strbuf *err,
                                const char *what_fmt, ...)
{
    struct strbuf url = STRBUF_INIT, what = STRBUF_INIT, why = STRBUF_INIT;
    va_list ap;
    va_start(ap, what_fmt);
    (void)strbuf_vaddf(&what, what_fmt, ap);
    va_end(ap);
    /* Data Center has the same resources under v2 only */
    if (c->dc && !strncmp(path, "/rest/api/3/", 12))
        (void)strbuf_addf(&url, "%s/rest/api/2/%s", c->api_url, path + 12);
    else
        (void)strbuf_addf(&url, "%s%s", c->api_url, path);
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    const char *headers[] = {c->auth, "Accept: application/json", NULL};
    struct http_req req = {.method = method,
                           .url = url.buf,
                           .headers = headers,
                           .body = text,
                           .body_len = text ? strlen(text) : 0,
                           .no_retry = flags & CALL_NO_RETRY};
    struct http_resp resp;
    http_resp_init(&resp);
    *out = NULL;
    struct pace *pace = burst_pace(c, method, path);
    enum cb_status st = pace ? pace_wait(pace) : CB_OK;
    if (st == CB_OK)
        st = http_request(c->http, &req, &resp, &why);
    else
        strbuf_setf(&why, "stopped while pacing jira requests");
    if (st != CB_OK)
        strbuf_setf(err, "cannot %s: %s", what.buf, why.buf);
    else
        st = read_response(c, &resp, out, flags & CALL_KEEP_ERROR, what.buf, err);
    http_resp_release(&resp);
    free(text);
    strbuf_release(&url);
    strbuf_release(&what);
    strbuf_release(&why);
    return st;
}

/* --- field metadata ------------------------------------------------------------------------ */

static enum fkind kind_of(const cJSON *schema)
{
    const char *type = jstr(schema, "type"), *sys = jstr(schema, "system");
    const char *custom = jstr(schema, "custom"), *items = jstr(schema, "items");
    static const char *const named[] = {"status",     "priority",  "issuetype",
                                        "resolution", "project",   "securitylevel",
                                        "version",    "component", NULL};
    if (!type)
        return FK_RAW;
    if ((sys && (!strcmp(sys, "description") || !strcmp(sys, "environment"))) ||
        (custom && strstr(custom, ":textarea")))
        return FK_ADF;
    if (!strcmp(type, "string"))
        return FK_TEXT;
    for (int i = 0; named[i]; i++)
        if (!strcmp(type, named[i]))
            return FK_NAMED;
    if (!strcmp(type, "option") || !strcmp(type, "option-with-child"))
        return FK_OPTION;
    if (!strcmp(type, "array") && items)
        return !strcmp(items, "string")   ? FK_LABELS
               : !strcmp(items, "option") ? FK_OPTIONS
                                          : FK_RAW;
    if (!strcmp(type, "user"))
        return FK_USER;
    if (!strcmp(type, "date") || !strcmp(type, "datetime"))
        return FK_DATE;
    return !strcmp(type, "number") ? FK_NUMBER : FK_RAW;
}

static void load_catalogue(struct connector *c, const cJSON *list)
{
    c->cat = xcalloc((size_t)cJSON_GetArraySize(list) + 1, sizeof(*c->cat));
    const cJSON *f;
    cJSON_ArrayForEach(f, list)
    {
        const char *id = jstr(f, "id"), *name = jstr(f, "name");
        if (!id || !name)
            continue;
        struct jfield *jf = &c->cat[c->n_cat++];
        jf->id = xstrdup(id);
        jf->name = xstrdup(name);
        jf->kind = kind_of(cJSON_GetObjectItemCaseSensitive(f, "schema"));
    }
}

/* Finds a field by id, else by display name (exact, then case-insensitive). Several fields with
 * one name make the name ambiguous: NULL, and *dupes counts them. */
static const struct jfield *find_field(const struct connector *c, const char *name, int *dupes)
{
    const struct jfield *hit = NULL;
    *dupes = 0;
    for (size_t i = 0; i < c->n_cat; i++)
        if (!strcmp(c->cat[i].id, name))
            return &c->cat[i];
    for (int pass = 0; pass < 2 && !hit; pass++)
        for (size_t i = 0; i < c->n_cat; i++)
            if (pass ? !strcasecmp(c->cat[i].name, name) : !strcmp(c->cat[i].name, name)) {
                (*dupes)++;
                hit = &c->cat[i];
            }
    return *dupes > 1 ? NULL : hit;
}

static enum cb_status resolve_needed(struct connector *c, struct strbuf *err)
{
    struct strbuf ids = STRBUF_INIT;
    int bad = 0;
    c->need_f = xcalloc(c->need.n + 1, sizeof(*c->need_f));
    c->need_ids = xcalloc(c->need.n + 1, sizeof(*c->need_ids));
    strbuf_reset(err);
    for (size_t i = 0; i < c->need.n; i++) {
        int dupes;
        const struct jfield *f = find_field(c, c->need.v[i], &dupes);
        if (!f) {
            (void)strbuf_addf(err, "%sjira field '%s' %s in project '%s'%s", bad++ ? "; " : "",
                              c->need.v[i], dupes ? "is ambiguous" : "does not exist", c->project,
                              dupes ? " (several fields have that name: use the field id)" : "");
            continue;
        }
        c->need_f[i] = f;
        c->need_ids[i] = f->id;
        (void)strbuf_addf(&ids, "%s,", f->id);
    }
    (void)strbuf_adds(&ids, "updated,created,creator,comment");
    c->fields_param = strbuf_detach(&ids);
    return bad ? CB_ERR_CONFIG : CB_OK;
}

static enum cb_status load_fields(struct connector *c, struct strbuf *err)
{
    cJSON *list;
    enum cb_status st =
        jira_call(c, "GET", "/rest/api/3/field", NULL, 0, &list, err, "read jira fields");
    if (st != CB_OK)
        return st;
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(list);
        strbuf_setf(err, "cannot read jira fields: the answer is not a list");
        return CB_ERR_PARSE;
    }
    load_catalogue(c, list);
    cJSON_Delete(list);
    return resolve_needed(c, err);
}

static enum cb_status load_myself(struct connector *c, struct strbuf *err)
{
    cJSON *me;
    enum cb_status st = jira_call(c, "GET", "/rest/api/3/myself", NULL, 0, &me, err,
                                  "read the jira account of '%s'", c->email);
    if (st != CB_OK)
        return st;
    const char *tz = jstr(me, "timeZone");
    c->tz = xstrdup(tz ? tz : "UTC");
    if (c->dc && jstr(me, "name")) { /* Data Center users are names */
        free(c->email);
        c->email = xstrdup(jstr(me, "name"));
    }
    cJSON_Delete(me);
    return CB_OK;
}

/* Issue type id and the statuses of that issue type, from /project/{key}/statuses. */
static enum cb_status load_statuses(struct connector *c, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_adds(&path, "/rest/api/3/project/");
    (void)strbuf_add_urlencoded(&path, c->project);
    (void)strbuf_adds(&path, "/statuses");
    cJSON *types;
    enum cb_status st = jira_call(c, "GET", path.buf, NULL, 0, &types, err,
                                  "read the statuses of jira project '%s'", c->project);
    strbuf_release(&path);
    if (st == CB_ERR_NOTFOUND) {
        strbuf_setf(err, "jira project '%s' does not exist or '%s' cannot see it", c->project,
                    c->email);
        return CB_ERR_CONFIG;
    }
    if (st != CB_OK)
        return st;
    struct strlist names = {0};
    const cJSON *t, *s;
    cJSON_ArrayForEach(t, types)
    {
        const char *name = jstr(t, "name"), *id = jstr(t, "id");
        if (!name || !id)
            continue;
        strlist_push(&names, name);
        if (strcasecmp(name, c->issue_type) || c->issue_type_id)
            continue;
        c->issue_type_id = xstrdup(id);
        cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(t, "statuses")) if (jstr(s, "name"))
            strlist_push(&c->statuses, jstr(s, "name"));
    }
    cJSON_Delete(types);
    if (!c->issue_type_id) {
        strbuf_setf(err, "jira project '%s' has no issue type '%s' (it has: ", c->project,
                    c->issue_type);
        strlist_join(&names, err);
        (void)strbuf_addch(err, ')');
        st = CB_ERR_CONFIG;
    }
    strlist_clear(&names);
    return st;
}

static enum cb_status load_priorities(struct connector *c, struct strbuf *err)
{
    cJSON *page;
    /* Data Center lists all priorities at once, Cloud pages them */
    const char *path =
        c->dc ? "/rest/api/3/priority" : "/rest/api/3/priority/search?maxResults=100";
    enum cb_status st = jira_call(c, "GET", path, NULL, 0, &page, err, "read jira priorities");
    if (st != CB_OK)
        return st;
    const cJSON *p, *list = c->dc ? page : cJSON_GetObjectItemCaseSensitive(page, "values");
    cJSON_ArrayForEach(p, list) if (jstr(p, "name")) strlist_push(&c->priorities, jstr(p, "name"));
    cJSON_Delete(page);
    return CB_OK;
}

static enum cb_status jira_ping(struct connector *c, struct strbuf *info, struct strbuf *err)
{
    clear_metadata(c);
    enum cb_status st = load_myself(c, err);
    if (st == CB_OK)
        st = load_fields(c, err);
    if (st == CB_OK)
        st = load_statuses(c, err);
    if (st == CB_OK)
        st = load_priorities(c, err);
    if (st != CB_OK) {
        clear_metadata(c);
        return st;
    }
    c->ready = 1;
    if (info)
        strbuf_setf(info,
                    "jira %s '%s', project %s, issue type %s, %zu statuses, "
                    "%zu fields, profile zone %s%s%s",
                    c->dc ? "data center" : "cloud", c->api_url, c->project, c->issue_type,
                    c->statuses.n, c->n_cat, c->tz, c->filter ? ", filter " : "",
                    c->filter ? c->filter : "");
    return CB_OK;
}

static enum cb_status ensure_ready(struct connector *c, struct strbuf *err)
{
    return c->ready ? CB_OK : jira_ping(c, NULL, err);
}

/* --- decoding issues into records ---------------------------------------------------------- */

static cJSON *decode_value(const struct jfield *f, const cJSON *v)
{
    if (!v || cJSON_IsNull(v))
        return cJSON_CreateNull();
    switch (f->kind) {
    case FK_TEXT:
    case FK_DATE:
        if (cJSON_IsString(v) && !v->valuestring[0])
            return cJSON_CreateNull();
        break;
    case FK_ADF: {
        if (!cJSON_IsObject(v) && !cJSON_IsString(v))
            break;
        /* Cloud v3 rich text is an ADF object, Data Center's a wiki-markup string */
        char *md = cJSON_IsString(v) ? richtext_wiki_to_md(v->valuestring) : richtext_adf_to_md(v);
        cJSON *out = md[0] ? cJSON_CreateString(md) : cJSON_CreateNull();
        free(md);
        return out;
    }
    case FK_USER: {
        /* a person: Cloud names users by accountId, Data Center (no accountId) by name */
        const char *id = jstr(v, "accountId") ? jstr(v, "accountId") : jstr(v, "name");
        if (!id)
            break;
        return person_to_json(id, jstr(v, "displayName"), jstr(v, "emailAddress"));
    }
    case FK_NAMED:
    case FK_OPTION: {
        const char *s = jstr(v, f->kind == FK_OPTION ? "value" : "name");
        return s ? cJSON_CreateString(s) : cJSON_Duplicate(v, 1);
    }
    case FK_OPTIONS: {
        cJSON *arr = cJSON_CreateArray();
        const cJSON *o;
        cJSON_ArrayForEach(o, v) if (jstr(o, "value"))
            cJSON_AddItemToArray(arr, cJSON_CreateString(jstr(o, "value")));
        return arr;
    }
    default:
        break;
    }
    return cJSON_Duplicate(v, 1);
}

/* From the issue's "comment" field (a first page of its comments: comments, total): the count
 * and, when the page holds them all, the newest comment time, under the pseudo fields of
 * comment.h. They spare the comment sync a listing when no comment changed; copies crmbridge
 * wrote count like any other comment. Without a total nothing is set, and without a readable
 * time on every comment no time: the comment sync then lists the issue as before. */
static void comment_summary(const cJSON *fields, cJSON *out)
{
    const cJSON *page = cJSON_GetObjectItemCaseSensitive(fields, "comment");
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(page, "total");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(page, "comments"), *jc;
    if (!cJSON_IsNumber(total) || !cJSON_IsArray(list))
        return;
    cJSON_AddNumberToObject(out, COMMENT_COUNT_FIELD, total->valuedouble);
    int n = cJSON_GetArraySize(list);
    int64_t newest = 0;
    cJSON_ArrayForEach(jc, list)
    {
        const char *t = jstr(jc, "updated") ? jstr(jc, "updated") : jstr(jc, "created");
        int64_t ms;
        if (!t || cbtime_parse(t, &ms) != CB_OK)
            return;
        newest = ms > newest ? ms : newest;
    }
    if (n > 0 && total->valuedouble <= n) /* not when the page left some out */
        cJSON_AddNumberToObject(out, COMMENT_NEWEST_FIELD, (double)newest);
}

/* Fills r from one issue JSON (search, bulkfetch or GET). */
static enum cb_status issue_to_record(const struct connector *c, const cJSON *issue,
                                      struct record *r, struct strbuf *err)
{
    const char *id = jstr(issue, "id"), *key = jstr(issue, "key");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(issue, "fields");
    const char *updated = jstr(fields, "updated");
    int64_t ms = 0;
    if (!id || !key || !updated || cbtime_parse(updated, &ms) != CB_OK) {
        strbuf_setf(err, "cannot read jira issue '%s': missing id, key or a valid 'updated'",
                    key  ? key
                    : id ? id
                         : "?");
        return CB_ERR_PARSE;
    }
    memset(r, 0, sizeof(*r));
    r->id = xstrdup(id);
    r->key = xstrdup(key);
    struct strbuf url = STRBUF_INIT;
    (void)strbuf_addf(&url, "%s/browse/%s", c->api_url, key);
    r->url = strbuf_detach(&url);
    r->modified_ms = ms;
    const char *created = jstr(fields, "created");
    if (!created || cbtime_parse(created, &r->created_ms) != CB_OK)
        r->created_ms = 0;
    const char *creator = jstr(cJSON_GetObjectItemCaseSensitive(fields, "creator"), "displayName");
    r->created_by = creator ? xstrdup(creator) : NULL;
    const cJSON *prop = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(issue, "properties"), MARKER_PROP);
    const char *marker = jstr(prop, "marker");
    r->marker = marker ? xstrdup(marker) : NULL;
    r->fields = cJSON_CreateObject();
    for (size_t i = 0; i < c->need.n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, c->need_ids[i]);
        if (v)
            cJSON_AddItemToObject(r->fields, c->need.v[i], decode_value(c->need_f[i], v));
    }
    comment_summary(fields, r->fields);
    return CB_OK;
}

/* Decodes every issue of a JSON array into out. */
static enum cb_status issues_to_records(const struct connector *c, const cJSON *issues,
                                        struct record_list *out, struct strbuf *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, issues)
    {
        struct record r;
        enum cb_status st = issue_to_record(c, it, &r, err);
        if (st != CB_OK)
            return st;
        record_list_push(out, &r);
    }
    return CB_OK;
}

/* --- search -------------------------------------------------------------------------------- */

/* Called per page of issues; set *stop to end the listing early. */
typedef enum cb_status (*issues_fn)(struct connector *c, const cJSON *issues, void *arg, int *stop,
                                    struct strbuf *err);

static void search_path(const struct connector *c, const char *jql, const char *token,
                        struct strbuf *path)
{
    strbuf_reset(path);
    /* Data Center has only the old search, paged by startAt (the "token" here) */
    (void)strbuf_adds(path, c->dc ? "/rest/api/3/search?jql=" : "/rest/api/3/search/jql?jql=");
    (void)strbuf_add_urlencoded(path, jql);
    (void)strbuf_adds(path, "&fields=");
    (void)strbuf_add_urlencoded(path, c->fields_param);
    (void)strbuf_addf(path, "&properties=%s&maxResults=%d", MARKER_PROP, PAGE_SIZE);
    if (c->dc) /* an id deleted since we linked it must not fail the whole read */
        (void)strbuf_adds(path, "&validateQuery=false");
    if (token) {
        (void)strbuf_adds(path, c->dc ? "&startAt=" : "&nextPageToken=");
        (void)strbuf_add_urlencoded(path, token);
    }
}

/* The token of the page after resp (NULL after the last): Cloud's nextPageToken unless isLast,
 * or on Data Center the next startAt while it is below total. */
static char *next_token(const struct connector *c, const cJSON *resp, const char *token)
{
    const char *next = jstr(resp, "nextPageToken");
    if (!c->dc)
        return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "isLast")) || !next
                   ? NULL
                   : xstrdup(next);
    long start = token ? strtol(token, NULL, 10) : 0;
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(resp, "issues"));
    double total = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(resp, "total"));
    if (!n || !(start + n < total))
        return NULL;
    struct strbuf sb = STRBUF_INIT;
    (void)strbuf_addf(&sb, "%ld", start + n);
    return strbuf_detach(&sb);
}

static void add_read_params(const struct connector *c, cJSON *body);

/* One page of jql into *resp: a GET, or on Cloud with issues to reconcile (a JSON array of
 * their numeric ids) a POST whose body names them, the same list on every page. */
static enum cb_status search_page(struct connector *c, const char *jql, const char *token,
                                  const cJSON *reconcile, cJSON **resp, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    cJSON *body = NULL;
    if (reconcile) {
        (void)strbuf_adds(&path, "/rest/api/3/search/jql");
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "jql", jql);
        add_read_params(c, body);
        cJSON_AddNumberToObject(body, "maxResults", PAGE_SIZE);
        cJSON_AddItemToObject(body, "reconcileIssues", cJSON_Duplicate(reconcile, 1));
        if (token)
            cJSON_AddStringToObject(body, "nextPageToken", token);
    } else {
        search_path(c, jql, token, &path);
    }
    enum cb_status st = jira_call(c, body ? "POST" : "GET", path.buf, body, 0, resp, err,
                                  "search jira project '%s'", c->project);
    cJSON_Delete(body);
    strbuf_release(&path);
    return st;
}

/* Runs jql page by page until the last, handing each page to fn; reconcile as search_page. */
static enum cb_status search_all(struct connector *c, const char *jql, const cJSON *reconcile,
                                 issues_fn fn, void *arg, struct strbuf *err)
{
    char *token = NULL;
    enum cb_status st = CB_OK;
    int stop = 0;
    for (int page = 0; st == CB_OK && !stop; page++) {
        if (page == PAGE_BUDGET) {
            strbuf_setf(err,
                        "cannot list jira project '%s': search still not finished after %d "
                        "pages",
                        c->project, PAGE_BUDGET);
            st = CB_ERR_TEMP;
            break;
        }
        cJSON *resp;
        st = search_page(c, jql, token, reconcile, &resp, err);
        if (st != CB_OK)
            break;
        const cJSON *issues = cJSON_GetObjectItemCaseSensitive(resp, "issues");
        char *next = next_token(c, resp, token);
        if (!cJSON_IsArray(issues)) {
            strbuf_setf(err, "cannot search jira project '%s': no 'issues' in the answer",
                        c->project);
            st = CB_ERR_PARSE;
        } else {
            st = fn(c, issues, arg, &stop, err);
        }
        if (!next)
            stop = 1;
        else if (token && !strcmp(token, next)) {
            strbuf_setf(err, "cannot search jira project '%s': the server repeated a page token",
                        c->project);
            st = CB_ERR_TEMP;
        } else {
            free(token);
            token = next;
            next = NULL;
        }
        free(next);
        cJSON_Delete(resp);
    }
    free(token);
    return st;
}

static void jql_ids(struct strbuf *q, const char *const *ids, size_t n);

/* project = "SUP" [AND (<filter>)] [AND <field> >= <ms>] ORDER BY <order>; with ids[0..n) the
 * last clause becomes AND (<field> >= <ms> OR id in (...)). */
static char *jql_since(const struct connector *c, int scoped, const char *field, int64_t since_ms,
                       const char *const *ids, size_t n, const char *order)
{
    struct strbuf q = STRBUF_INIT;
    (void)strbuf_adds(&q, "project = ");
    jql_quote(&q, c->project);
    if (scoped && c->filter)
        (void)strbuf_addf(&q, " AND (%s)", c->filter);
    if (since_ms > 0 && n > 0) {
        (void)strbuf_addf(&q, " AND (%s >= %lld OR ", field, (long long)since_ms);
        jql_ids(&q, ids, n);
        (void)strbuf_addch(&q, ')');
    } else if (since_ms > 0) {
        (void)strbuf_addf(&q, " AND %s >= %lld", field, (long long)since_ms);
    }
    (void)strbuf_addf(&q, " ORDER BY %s", order);
    return strbuf_detach(&q);
}

struct list_ctx {
    record_page_fn fn;
    void *arg;
};

static enum cb_status list_page(struct connector *c, const cJSON *issues, void *arg, int *stop,
                                struct strbuf *err)
{
    struct list_ctx *lc = arg;
    struct record_list recs = {0};
    enum cb_status st = issues_to_records(c, issues, &recs, err);
    if (st == CB_OK && recs.n)
        st = lc->fn(lc->arg, recs.v, recs.n);
    record_list_release(&recs);
    return st;
}

/* Issues in scope updated since since_ms, and issues ids[0..n) whatever their updated; reconcile
 * as search_page. */
static enum cb_status list_issues(struct connector *c, int64_t since_ms, const char *const *ids,
                                  size_t n, const cJSON *reconcile, record_page_fn fn, void *arg,
                                  struct strbuf *err)
{
    enum cb_status st = ensure_ready(c, err);
    if (st != CB_OK)
        return st;
    /* Epoch milliseconds: a bare JQL date would be read in the account's zone, to the minute. */
    char *jql = jql_since(c, 1, "updated", since_ms, ids, n, "updated ASC, id ASC");
    struct list_ctx lc = {fn, arg};
    st = search_all(c, jql, reconcile, list_page, &lc, err);
    free(jql);
    return st;
}

static enum cb_status jira_list_changed(struct connector *c, int64_t since_ms, record_page_fn fn,
                                        void *arg, struct strbuf *err)
{
    return list_issues(c, since_ms, NULL, 0, NULL, fn, arg, err);
}

/* ids as reconcileIssues wants them, JSON numbers (written raw: an id never passes through a
 * double); NULL with err set when one is not a numeric issue id. */
static cJSON *reconcile_ids(const struct connector *c, const char *const *ids, size_t n,
                            struct strbuf *err)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(ids[i]);
        if (len == 0 || len > 18 || strspn(ids[i], "0123456789") != len) {
            strbuf_setf(err, "cannot list jira issue '%s' in project '%s': not a numeric issue id",
                        ids[i], c->project);
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, cJSON_CreateRaw(ids[i]));
    }
    return arr;
}

/* Cloud names the issues in reconcileIssues, so a fresh edit of one is read even while search
 * lags; Data Center (no such parameter) only adds them to the JQL, as current as its search. */
static enum cb_status jira_list_changed_also(struct connector *c, int64_t since_ms,
                                             const char *const *ids, size_t n, record_page_fn fn,
                                             void *arg, struct strbuf *err)
{
    if (n > RECONCILE_MAX) {
        strbuf_setf(err, "cannot list jira project '%s' with %zu issues named: at most %d",
                    c->project, n, RECONCILE_MAX);
        return CB_ERR_FINAL;
    }
    cJSON *reconcile = reconcile_ids(c, ids, n, err);
    if (!reconcile)
        return CB_ERR_FINAL;
    enum cb_status st =
        list_issues(c, since_ms, ids, n, c->dc || n == 0 ? NULL : reconcile, fn, arg, err);
    cJSON_Delete(reconcile);
    return st;
}

struct marker_ctx {
    const char *marker;
    struct record *out;
    int found;
};

static enum cb_status marker_page(struct connector *c, const cJSON *issues, void *arg, int *stop,
                                  struct strbuf *err)
{
    struct marker_ctx *mc = arg;
    const cJSON *it;
    cJSON_ArrayForEach(it, issues)
    {
        const cJSON *prop = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(it, "properties"), MARKER_PROP);
        if (!str_eq(jstr(prop, "marker"), mc->marker))
            continue;
        *stop = mc->found = 1;
        return issue_to_record(c, it, mc->out, err);
    }
    return CB_OK;
}

static enum cb_status jira_find_marker(struct connector *c, const char *marker, int64_t since_ms,
                                       struct record *out, struct strbuf *err)
{
    enum cb_status st = ensure_ready(c, err);
    if (st != CB_OK)
        return st;
    int64_t from = since_ms > MARKER_SLACK_MS ? since_ms - MARKER_SLACK_MS : 0;
    char *jql = jql_since(c, 0, "created", from, NULL, 0, "created ASC");
    struct marker_ctx mc = {marker, out, 0};
    st = search_all(c, jql, NULL, marker_page, &mc, err);
    free(jql);
    if (st == CB_OK && !mc.found) {
        strbuf_setf(err,
                    "no jira issue in project '%s' carries marker '%s' (search may lag "
                    "up to %lld s)",
                    c->project, marker, (long long)(c->search_lag_ms / 1000));
        st = CB_ERR_NOTFOUND;
    }
    return st;
}

static int64_t jira_search_lag(const struct connector *c)
{
    return c->search_lag_ms;
}

/* --- reading by id ------------------------------------------------------------------------- */

static cJSON *field_ids_array(const struct connector *c)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < c->need.n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(c->need_ids[i]));
    cJSON_AddItemToArray(arr, cJSON_CreateString("updated"));
    cJSON_AddItemToArray(arr, cJSON_CreateString("created"));
    cJSON_AddItemToArray(arr, cJSON_CreateString("creator"));
    cJSON_AddItemToArray(arr, cJSON_CreateString("comment"));
    return arr;
}

/* Adds what a read asks for besides the issues (the fields and the marker property) to body. */
static void add_read_params(const struct connector *c, cJSON *body)
{
    cJSON_AddItemToObject(body, "fields", field_ids_array(c));
    cJSON *props = cJSON_AddArrayToObject(body, "properties");
    cJSON_AddItemToArray(props, cJSON_CreateString(MARKER_PROP));
}

/* One POST /issue/bulkfetch for at most BULK_MAX ids. */
static enum cb_status bulkfetch(struct connector *c, const char *const *ids, size_t n,
                                struct record_list *out, struct strbuf *err)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "issueIdsOrKeys", cJSON_CreateStringArray(ids, (int)n));
    add_read_params(c, body);
    cJSON *resp;
    enum cb_status st = jira_call(c, "POST", "/rest/api/3/issue/bulkfetch", body, 0, &resp, err,
                                  "read %zu jira issues", n);
    cJSON_Delete(body);
    if (st != CB_OK)
        return st;
    st = issues_to_records(c, cJSON_GetObjectItemCaseSensitive(resp, "issues"), out, err);
    cJSON_Delete(resp);
    return st;
}

static enum cb_status collect_page(struct connector *c, const cJSON *issues, void *arg, int *stop,
                                   struct strbuf *err)
{
    (void)stop;
    return issues_to_records(c, issues, arg, err);
}

/* q = "id in ("1", "2")" */
static void jql_ids(struct strbuf *q, const char *const *ids, size_t n)
{
    (void)strbuf_adds(q, "id in (");
    for (size_t i = 0; i < n; i++) {
        (void)strbuf_adds(q, i ? ", " : "");
        jql_quote(q, ids[i]);
    }
    (void)strbuf_addch(q, ')');
}

/* Data Center has no bulkfetch: one search for the ids instead. */
static enum cb_status search_ids(struct connector *c, const char *const *ids, size_t n,
                                 struct record_list *out, struct strbuf *err)
{
    struct strbuf q = STRBUF_INIT;
    jql_ids(&q, ids, n);
    (void)strbuf_adds(&q, " ORDER BY id ASC");
    enum cb_status st = search_all(c, q.buf, NULL, collect_page, out, err);
    strbuf_release(&q);
    return st;
}

static enum cb_status scope_page(struct connector *c, const cJSON *issues, void *arg, int *stop,
                                 struct strbuf *err)
{
    (void)c, (void)stop, (void)err;
    const cJSON *it;
    cJSON_ArrayForEach(it, issues) if (jstr(it, "id")) strlist_push(arg, jstr(it, "id"));
    return CB_OK;
}

/* Flags out->v[from..] out_of_scope unless one search "id in (...) AND (<filter>)" finds them. */
static enum cb_status scope_mark(struct connector *c, struct record_list *out, size_t from,
                                 struct strbuf *err)
{
    if (!c->filter || from >= out->n)
        return CB_OK;
    const char **ids = xcalloc(out->n - from, sizeof(*ids));
    for (size_t i = from; i < out->n; i++)
        ids[i - from] = out->v[i].id;
    struct strbuf q = STRBUF_INIT;
    jql_ids(&q, ids, out->n - from);
    (void)strbuf_addf(&q, " AND (%s) ORDER BY id ASC", c->filter);
    struct strlist hit = {0};
    enum cb_status st = search_all(c, q.buf, NULL, scope_page, &hit, err);
    for (size_t i = from; st == CB_OK && i < out->n; i++)
        out->v[i].out_of_scope = !strlist_has_nocase(&hit, out->v[i].id);
    strlist_clear(&hit);
    strbuf_release(&q);
    free(ids);
    return st;
}

static enum cb_status jira_get_many(struct connector *c, const char *const *ids, size_t n,
                                    struct record_list *out, struct strbuf *err)
{
    enum cb_status st = ensure_ready(c, err);
    for (size_t i = 0, k; st == CB_OK && i < n; i += k) {
        k = n - i < BULK_MAX ? n - i : BULK_MAX;
        size_t from = out->n;
        st = c->dc ? search_ids(c, ids + i, k, out, err) : bulkfetch(c, ids + i, k, out, err);
        if (st == CB_OK)
            st = scope_mark(c, out, from, err);
    }
    return st;
}

/* GET /issue/{id}?fields=... into *out. */
static enum cb_status get_issue(struct connector *c, const char *id, const char *fields,
                                cJSON **out, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_adds(&path, "/rest/api/3/issue/");
    (void)strbuf_add_urlencoded(&path, id);
    (void)strbuf_addf(&path, "?fields=%s", fields);
    enum cb_status st =
        jira_call(c, "GET", path.buf, NULL, 0, out, err, "read jira issue '%s'", id);
    strbuf_release(&path);
    return st;
}

/* --- encoding writes ----------------------------------------------------------------------- */

struct body_parts {
    cJSON *fields;      /* "fields" of the request */
    cJSON *update;      /* "update" (edits only; NULL for creates) */
    const char *status; /* wanted status name, borrowed from the op */
};

/* Markdown as the rich text this Jira takes: ADF on Cloud, a wiki-markup string on DC. */
static cJSON *md_to_body(const struct connector *c, const char *md)
{
    if (!c->dc)
        return richtext_md_to_adf(md);
    char *wiki = richtext_md_to_wiki(md);
    cJSON *out = cJSON_CreateString(wiki);
    free(wiki);
    return out;
}

static enum cb_status encode_value(const struct connector *c, const struct jfield *f,
                                   const char *name, const cJSON *v, struct body_parts *b,
                                   struct strbuf *err)
{
    int null = !v || cJSON_IsNull(v);
    if (!strcmp(f->id, "status")) {
        if (null)
            return CB_OK; /* no status: a new issue takes its workflow's first; none is cleared */
        if (!cJSON_IsString(v)) {
            strbuf_setf(err, "field '%s' must be a status name", name);
            return CB_ERR_FINAL;
        }
        b->status = v->valuestring;
        return CB_OK;
    }
    cJSON *out = NULL;
    switch (f->kind) {
    case FK_USER: /* a remote user id: Cloud's accountId, Data Center's user name */
        if (!null && !cJSON_IsString(v))
            break;
        out = null ? cJSON_CreateNull() : cJSON_CreateObject();
        if (!null)
            cJSON_AddStringToObject(out, c->dc ? "name" : "accountId", v->valuestring);
        break;
    case FK_ADF:
        if (!null && !cJSON_IsString(v))
            break;
        out = null ? cJSON_CreateNull() : md_to_body(c, v->valuestring);
        break;
    case FK_NAMED:
    case FK_OPTION:
        if (!null && !cJSON_IsString(v))
            break;
        if (!null && !strcmp(f->id, "priority") && c->priorities.n &&
            !strlist_has_nocase(&c->priorities, v->valuestring)) {
            strbuf_setf(err, "jira has no priority '%s' (it has: ", v->valuestring);
            strlist_join(&c->priorities, err);
            (void)strbuf_addch(err, ')');
            return CB_ERR_FINAL;
        }
        out = null ? cJSON_CreateNull() : cJSON_CreateObject();
        if (!null)
            cJSON_AddStringToObject(out, f->kind == FK_OPTION ? "value" : "name", v->valuestring);
        break;
    case FK_LABELS:
        if (!null && !cJSON_IsArray(v))
            break;
        out = null ? cJSON_CreateArray() : cJSON_Duplicate(v, 1);
        if (b->update) {
            cJSON *op = cJSON_CreateObject(), *ops = cJSON_AddArrayToObject(b->update, f->id);
            cJSON_AddItemToObject(op, "set", out);
            cJSON_AddItemToArray(ops, op);
            return CB_OK;
        }
        break;
    case FK_OPTIONS:
        if (!null && !cJSON_IsArray(v))
            break;
        out = cJSON_CreateArray();
        const cJSON *o, *list = null ? NULL : v;
        cJSON_ArrayForEach(o, list)
        {
            cJSON *opt = cJSON_CreateObject();
            cJSON_AddStringToObject(opt, "value", cJSON_GetStringValue(o) ? o->valuestring : "");
            cJSON_AddItemToArray(out, opt);
        }
        break;
    case FK_TEXT:
    case FK_DATE:
        if (!null && !cJSON_IsString(v))
            break;
        out = null ? cJSON_CreateNull() : cJSON_Duplicate(v, 1);
        break;
    default:
        out = null ? cJSON_CreateNull() : cJSON_Duplicate(v, 1);
        break;
    }
    if (!out) {
        strbuf_setf(err, "field '%s' has a value of the wrong type for jira", name);
        return CB_ERR_FINAL;
    }
    cJSON_AddItemToObject(b->fields, f->id, out);
    return CB_OK;
}

static enum cb_status encode_fields(const struct connector *c, const cJSON *fields,
                                    struct body_parts *b, struct strbuf *err)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, fields)
    {
        if (v->string[0] == '$')
            continue;
        int dupes;
        const struct jfield *f = find_field(c, v->string, &dupes);
        if (!f) {
            strbuf_setf(err, "jira field '%s' %s in project '%s'", v->string,
                        dupes ? "is ambiguous" : "does not exist", c->project);
            return CB_ERR_FINAL;
        }
        enum cb_status st = encode_value(c, f, v->string, v, b, err);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

/* --- workflow ------------------------------------------------------------------------------ */

static void learn_edges(struct connector *c, const char *from, const cJSON *transitions)
{
    if (strlist_has_nocase(&c->explored, from))
        return;
    strlist_push(&c->explored, from);
    const cJSON *t;
    cJSON_ArrayForEach(t, transitions)
    {
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(t, "to");
        const char *cat = jstr(cJSON_GetObjectItemCaseSensitive(to, "statusCategory"), "key");
        if (!jstr(t, "id") || !jstr(to, "name"))
            continue;
        c->edges = xrealloc(c->edges, (c->n_edges + 1) * sizeof(*c->edges));
        struct edge *e = &c->edges[c->n_edges++];
        e->from = xstrdup(from);
        e->tid = xstrdup(jstr(t, "id"));
        e->to = xstrdup(jstr(to, "name"));
        e->to_done = str_eq(cat, "done");
    }
}

/* Breadth-first search over the learned edges from `from` to `target`, never entering a done
 * status other than the target nor a status in avoid. Returns 1 when a path is known; *closed
 * tells whether every status reached has been explored (so "no path" is certain). */
static int known_path(const struct connector *c, const char *from, const char *target,
                      const struct strlist *avoid, int *closed)
{
    struct strlist seen = {0};
    strlist_push(&seen, from);
    int found = 0;
    *closed = 1;
    for (size_t head = 0; head < seen.n && !found; head++) {
        if (!strlist_has_nocase(&c->explored, seen.v[head]))
            *closed = 0;
        for (size_t i = 0; i < c->n_edges && !found; i++) {
            const struct edge *e = &c->edges[i];
            if (strcasecmp(e->from, seen.v[head]) || strlist_has_nocase(&seen, e->to) ||
                strlist_has_nocase(avoid, e->to))
                continue;
            found = !strcasecmp(e->to, target);
            if (!e->to_done)
                strlist_push(&seen, e->to);
        }
    }
    strlist_clear(&seen);
    return found;
}

static enum cb_status get_transitions(struct connector *c, const char *id, const char *key,
                                      cJSON **out, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_addf(&path, "/rest/api/3/issue/%s/transitions", id);
    enum cb_status st = jira_call(c, "GET", path.buf, NULL, 0, out, err,
                                  "read the transitions of jira issue '%s'", key);
    strbuf_release(&path);
    return st;
}

static enum cb_status post_transition(struct connector *c, const char *id, const char *key,
                                      const char *tid, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_addf(&path, "/rest/api/3/issue/%s/transitions", id);
    cJSON *body = cJSON_CreateObject(), *resp;
    cJSON_AddStringToObject(cJSON_AddObjectToObject(body, "transition"), "id", tid);
    enum cb_status st =
        jira_call(c, "POST", path.buf, body, 0, &resp, err, "transition jira issue '%s'", key);
    cJSON_Delete(resp);
    cJSON_Delete(body);
    strbuf_release(&path);
    return st;
}

/* Picks the next transition from the ones offered: straight to target, else one the learned
 * graph says leads there, else an unexplored step that neither closes the issue nor returns
 * to a status already visited. NULL when there is none. */
static const cJSON *pick_step(const struct connector *c, const cJSON *ts, const char *target,
                              const struct strlist *visited)
{
    const cJSON *t, *explore = NULL;
    cJSON_ArrayForEach(t, ts)
    {
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(t, "to");
        const char *name = jstr(to, "name");
        const char *cat = jstr(cJSON_GetObjectItemCaseSensitive(to, "statusCategory"), "key");
        int closed;
        if (!name || !jstr(t, "id") || strlist_has_nocase(visited, name))
            continue;
        if (!strcasecmp(name, target) || known_path(c, name, target, visited, &closed))
            return t;
        if (!explore && !str_eq(cat, "done") && !strlist_has_nocase(&c->explored, name))
            explore = t;
    }
    return explore;
}

/* The learned edge out of `from` that starts a known path to `target` (straight there first),
 * never entering a done status on the way other than the target. NULL when none is known. */
static const struct edge *known_step(const struct connector *c, const char *from,
                                     const char *target)
{
    const struct edge *step = NULL;
    struct strlist avoid = {0};
    strlist_push(&avoid, from);
    for (int pass = 0; pass < 2 && !step; pass++)
        for (size_t i = 0; i < c->n_edges && !step; i++) {
            int closed;
            const struct edge *e = &c->edges[i];
            if (strcasecmp(e->from, from))
                continue;
            if (pass ? !e->to_done && known_path(c, e->to, target, &avoid, &closed)
                     : !strcasecmp(e->to, target))
                step = e;
        }
    strlist_clear(&avoid);
    return step;
}

/* Moves the issue back to `home` along learned edges after a fruitless exploration. */
static void walk_back(struct connector *c, const char *id, const char *key, const char *from,
                      const char *home)
{
    char *cur = xstrdup(from);
    struct strbuf ignore = STRBUF_INIT;
    for (int hop = 0; hop < MAX_HOPS && strcasecmp(cur, home); hop++) {
        const struct edge *step = known_step(c, cur, home);
        if (!step || post_transition(c, id, key, step->tid, &ignore) != CB_OK)
            break;
        free(cur);
        cur = xstrdup(step->to);
    }
    if (strcasecmp(cur, home))
        log_warn("jira issue '%s' left in status '%s' after looking for a workflow path", key, cur);
    free(cur);
    strbuf_release(&ignore);
}

static enum cb_status no_path(const char *from, const char *target, const char *key,
                              struct strbuf *err)
{
    strbuf_setf(err, "no workflow path from '%s' to '%s' for issue '%s'", from, target, key);
    return CB_ERR_FINAL;
}

/* Brings issue id from status `from` to `target`, one transition at a time. */
static enum cb_status walk_to_status(struct connector *c, const char *id, const char *key,
                                     const char *from, const char *target, struct strbuf *err)
{
    int closed;
    struct strlist visited = {0};
    strlist_push(&visited, from);
    if (!known_path(c, from, target, &visited, &closed) && closed) {
        strlist_clear(&visited); /* the learned workflow already rules it out */
        return no_path(from, target, key, err);
    }
    enum cb_status st = CB_OK;
    const char *cur = from;
    int arrived = 0;
    for (int hop = 0; hop < MAX_HOPS && st == CB_OK && !arrived; hop++) {
        cJSON *resp = NULL;
        st = get_transitions(c, id, key, &resp, err);
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(resp, "transitions");
        if (st == CB_OK)
            learn_edges(c, cur, ts);
        const cJSON *t = st == CB_OK ? pick_step(c, ts, target, &visited) : NULL;
        if (t) {
            const char *to = jstr(cJSON_GetObjectItemCaseSensitive(t, "to"), "name");
            st = post_transition(c, id, key, jstr(t, "id"), err);
            arrived = !strcasecmp(to, target);
            strlist_push(&visited, to);
            cur = visited.v[visited.n - 1];
        }
        cJSON_Delete(resp);
        if (st == CB_OK && !t)
            break;
    }
    if (st == CB_OK && !arrived) {
        walk_back(c, id, key, cur, from);
        st = no_path(from, target, key, err);
    }
    strlist_clear(&visited);
    return st;
}

/* Current status name of an issue JSON, or NULL. */
static const char *issue_status(const cJSON *issue)
{
    return jstr(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(issue, "fields"),
                                                 "status"),
                "name");
}

/* Moves the issue to target if it is elsewhere; *issue is refreshed (status, updated). */
/* CB_ERR_FINAL with a message when the issue type has no status `target`. */
static enum cb_status check_status(const struct connector *c, const char *target,
                                   struct strbuf *err)
{
    if (!c->statuses.n || strlist_has_nocase(&c->statuses, target))
        return CB_OK;
    strbuf_setf(err,
                "jira project '%s' has no status '%s' for issue type '%s' (it has: ", c->project,
                target, c->issue_type);
    strlist_join(&c->statuses, err);
    (void)strbuf_addch(err, ')');
    return CB_ERR_FINAL;
}

static enum cb_status set_status(struct connector *c, const char *id, const char *key,
                                 const char *target, cJSON **issue, struct strbuf *err)
{
    enum cb_status st = check_status(c, target, err);
    if (st != CB_OK)
        return st;
    if (!issue_status(*issue)) {
        cJSON_Delete(*issue);
        st = get_issue(c, id, "status,updated", issue, err);
    }
    const char *cur = st == CB_OK ? issue_status(*issue) : NULL;
    if (st != CB_OK || !cur || !strcasecmp(cur, target))
        return st;
    char *from = xstrdup(cur), *k = xstrdup(jstr(*issue, "key") ? jstr(*issue, "key") : key);
    st = walk_to_status(c, id, k, from, target, err);
    free(from);
    free(k);
    if (st == CB_OK) {
        cJSON_Delete(*issue);
        st = get_issue(c, id, "status,updated", issue, err);
    }
    return st;
}

/* --- writing ------------------------------------------------------------------------------- */

static void fill_url(const struct connector *c, struct write_op *op)
{
    struct strbuf url = STRBUF_INIT;
    (void)strbuf_addf(&url, "%s/browse/%s", c->api_url, op->rec.key);
    free(op->rec.url);
    op->rec.url = strbuf_detach(&url);
}

/* Fills op->rec from the issue JSON the last request returned (id, key, url, modified). */
static enum cb_status fill_written(struct connector *c, struct write_op *op, const cJSON *issue)
{
    const char *key = jstr(issue, "key");
    const char *updated = jstr(cJSON_GetObjectItemCaseSensitive(issue, "fields"), "updated");
    int64_t ms = 0;
    if (!key || !updated || cbtime_parse(updated, &ms) != CB_OK) {
        strbuf_setf(&op->err, "cannot read jira issue '%s' after writing it: no valid 'updated'",
                    op->rec.key ? op->rec.key : op->rec.id);
        return CB_ERR_PARSE;
    }
    if (!op->rec.id)
        op->rec.id = xstrdup(jstr(issue, "id") ? jstr(issue, "id") : op->id);
    if (!op->rec.key)
        op->rec.key = xstrdup(key);
    fill_url(c, op);
    op->rec.modified_ms = ms;
    return CB_OK;
}

static void add_remote_link(struct connector *c, const struct write_op *op)
{
    cJSON *body = cJSON_CreateObject(), *resp = NULL;
    struct strbuf gid = STRBUF_INIT, path = STRBUF_INIT, why = STRBUF_INIT;
    (void)strbuf_addf(&gid, "crmbridge:%s", op->marker ? op->marker : op->link_url);
    cJSON_AddStringToObject(body, "globalId", gid.buf);
    cJSON *obj = cJSON_AddObjectToObject(body, "object");
    cJSON_AddStringToObject(obj, "url", op->link_url);
    cJSON_AddStringToObject(obj, "title", op->link_title ? op->link_title : op->link_url);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(body, "application"), "name", "crmbridge");
    (void)strbuf_addf(&path, "/rest/api/3/issue/%s/remotelink", op->rec.id);
    /* A failed link leaves the issue and its marker in place: warn, do not fail the create. */
    if (jira_call(c, "POST", path.buf, body, 0, &resp, &why, "link jira issue '%s'", op->rec.key) !=
        CB_OK)
        log_warn("%s", why.buf);
    cJSON_Delete(resp);
    cJSON_Delete(body);
    strbuf_release(&gid);
    strbuf_release(&path);
    strbuf_release(&why);
}

/* --- creating ------------------------------------------------------------------------------ */

/* One create of a batch: its request element and what the issue's status is to become. */
struct create_job {
    cJSON *body;        /* IssueUpdateDetails; NULL once sent or when the op failed to encode */
    const char *status; /* wanted status (borrowed from the op's fields); NULL for none */
    char *at;           /* the status the create leaves the issue in, when known */
};

/* Encodes op into job->body; on failure sets op->st and op->err. On Cloud the first hop towards
 * a wanted status rides on the create when the learnt workflow knows it. */
static void create_prepare(const struct connector *c, struct write_op *op, struct create_job *job)
{
    cJSON *body = cJSON_CreateObject();
    struct body_parts b = {cJSON_AddObjectToObject(body, "fields"), NULL, NULL};
    cJSON_AddStringToObject(cJSON_AddObjectToObject(b.fields, "project"), "key", c->project);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(b.fields, "issuetype"), "id", c->issue_type_id);
    op->st = encode_fields(c, op->fields, &b, &op->err);
    if (op->st == CB_OK && b.status)
        op->st = check_status(c, b.status, &op->err);
    if (op->st != CB_OK) {
        cJSON_Delete(body);
        return;
    }
    if (op->marker) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "key", MARKER_PROP);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "value"), "marker", op->marker);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(body, "properties"), p);
    }
    job->body = body;
    job->status = b.status;
    job->at = c->initial_status ? xstrdup(c->initial_status) : NULL;
    const struct edge *hop = job->at && b.status && strcasecmp(b.status, job->at) && !c->dc
                                 ? known_step(c, job->at, b.status)
                                 : NULL;
    if (hop) {
        cJSON_AddStringToObject(cJSON_AddObjectToObject(body, "transition"), "id", hop->tid);
        free(job->at);
        job->at = xstrdup(hop->to);
    }
}

/* Takes the {id, key} of a created issue into op; CB_ERR_TEMP when the answer lacks them (the
 * create may have happened: the engine looks for its marker). */
static enum cb_status create_taken(const struct connector *c, struct write_op *op,
                                   struct create_job *job, const cJSON *ref)
{
    if (!jstr(ref, "id") || !jstr(ref, "key")) {
        strbuf_setf(&op->err, "cannot create issue in jira project '%s': no id in the answer",
                    c->project);
        return CB_ERR_TEMP;
    }
    op->rec.id = xstrdup(jstr(ref, "id"));
    op->rec.key = xstrdup(jstr(ref, "key"));
    op->rec.marker = op->marker ? xstrdup(op->marker) : NULL;
    /* Jira reports a refused transition of a create here; the issue stays where it began */
    double tst = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(ref, "transition"), "status"));
    if (tst >= 300 && job->at) {
        free(job->at);
        job->at = c->initial_status ? xstrdup(c->initial_status) : NULL;
    }
    return CB_OK;
}

/* Data Center: one POST /issue per issue. */
static void create_single(struct connector *c, struct write_op *op, struct create_job *job)
{
    cJSON *resp = NULL;
    op->st = jira_call(c, "POST", "/rest/api/3/issue", job->body, CALL_NO_RETRY, &resp, &op->err,
                       "create issue in jira project '%s'", c->project);
    if (op->st == CB_OK)
        op->st = create_taken(c, op, job, resp);
    cJSON_Delete(resp);
}

/* Hands a bulk answer's outcomes to the ops it sent (ops[idx[0..n)]): errors by
 * failedElementNumber, the created issues to the other elements in request order (the answer
 * names no element, JRACLOUD-81005). */
static void bulk_outcomes(struct connector *c, struct write_op *ops, struct create_job *jobs,
                          const size_t *idx, size_t n, const cJSON *resp)
{
    char *failed = xcalloc(n ? n : 1, 1);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(resp, "errors"))
    {
        double k = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "failedElementNumber"));
        if (!(k >= 0 && k < (double)n))
            continue;
        struct write_op *op = &ops[idx[(size_t)k]];
        double status = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "status"));
        long code = status >= 100 && status < 600 ? (long)status : 400L;
        failed[(size_t)k] = 1;
        op->st = http_classify(code) == CB_OK ? CB_ERR_FINAL : http_classify(code);
        strbuf_setf(&op->err, "cannot create issue in jira project '%s': http %ld", c->project,
                    code);
        error_text(cJSON_GetObjectItemCaseSensitive(e, "elementErrors"), &op->err);
    }
    const cJSON *issues = cJSON_GetObjectItemCaseSensitive(resp, "issues");
    const cJSON *ref = cJSON_IsArray(issues) ? issues->child : NULL;
    for (size_t k = 0; k < n; k++) {
        if (failed[k])
            continue;
        ops[idx[k]].st = create_taken(c, &ops[idx[k]], &jobs[idx[k]], ref);
        ref = ref ? ref->next : NULL;
    }
    free(failed);
}

/* Cloud: one POST /issue/bulk for the prepared jobs among ops[0..n), n <= BULK_CREATE. */
static void create_bulk(struct connector *c, struct write_op *ops, struct create_job *jobs,
                        size_t n)
{
    size_t idx[BULK_CREATE], k = 0;
    cJSON *body = cJSON_CreateObject(), *resp = NULL;
    cJSON *list = cJSON_AddArrayToObject(body, "issueUpdates");
    for (size_t i = 0; i < n; i++)
        if (jobs[i].body) {
            cJSON_AddItemToArray(list, jobs[i].body);
            jobs[i].body = NULL;
            idx[k++] = i;
        }
    struct strbuf why = STRBUF_INIT;
    enum cb_status st =
        k ? jira_call(c, "POST", "/rest/api/3/issue/bulk", body, CALL_NO_RETRY | CALL_KEEP_ERROR,
                      &resp, &why, "create %zu issues in jira project '%s'", k, c->project)
          : CB_OK;
    /* a 400 when every element failed still says why, element by element */
    if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(resp, "errors")) ||
        cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(resp, "issues"))) {
        bulk_outcomes(c, ops, jobs, idx, k, resp);
    } else {
        for (size_t j = 0; j < k; j++) {
            ops[idx[j]].st = st == CB_OK ? CB_ERR_TEMP : st;
            strbuf_setf(&ops[idx[j]].err, "%s",
                        st == CB_OK ? "cannot create issues in jira: no 'issues' in the answer"
                                    : why.buf);
        }
    }
    strbuf_release(&why);
    cJSON_Delete(resp);
    cJSON_Delete(body);
}

/* The status of a new issue its create left somewhere unknown, from one GET that also lists
 * the transitions out of it (learnt); the first such read teaches the workflow's first status.
 * NULL on failure (*st and op->err say why). */
static char *read_new_status(struct connector *c, struct write_op *op, enum cb_status *st)
{
    cJSON *issue = NULL;
    char *at = NULL;
    *st = get_issue(c, op->rec.id, "status&expand=transitions", &issue, &op->err); /* one GET */
    const char *cur = *st == CB_OK ? issue_status(issue) : NULL;
    if (cur) {
        at = xstrdup(cur);
        if (!c->initial_status)
            c->initial_status = xstrdup(cur);
        learn_edges(c, cur, cJSON_GetObjectItemCaseSensitive(issue, "transitions"));
    } else if (*st == CB_OK) {
        strbuf_setf(&op->err, "cannot read the status of jira issue '%s'", op->rec.key);
        *st = CB_ERR_PARSE;
    }
    cJSON_Delete(issue);
    return at;
}

/* Brings a new issue from `at` (NULL: unknown) to target: along learnt transitions without
 * reading anything; only where none is known, or one is refused, by listing transitions. */
static enum cb_status settle_new(struct connector *c, struct write_op *op, const char *at,
                                 const char *target)
{
    enum cb_status st = CB_OK;
    char *cur = at ? xstrdup(at) : read_new_status(c, op, &st);
    for (int hop = 0; cur && st == CB_OK && hop < MAX_HOPS && strcasecmp(cur, target); hop++) {
        const struct edge *e = known_step(c, cur, target);
        if (!e)
            break;
        char *to = xstrdup(e->to);
        st = post_transition(c, op->rec.id, op->rec.key, e->tid, &op->err);
        if (st == CB_ERR_FINAL) { /* refused: the learnt workflow is out of date, ask the issue */
            strbuf_reset(&op->err);
            st = CB_OK;
            free(to);
            break;
        }
        free(st == CB_OK ? cur : to);
        cur = st == CB_OK ? to : cur;
    }
    if (cur && st == CB_OK && strcasecmp(cur, target))
        st = walk_to_status(c, op->rec.id, op->rec.key, cur, target, &op->err);
    free(cur);
    return st;
}

/* After a create: the link back, then the status. modified_ms stays 0: the engine reads new
 * issues back in batches. */
static void create_finish(struct connector *c, struct write_op *op, const struct create_job *job)
{
    if (op->link_url)
        add_remote_link(c, op);
    fill_url(c, op);
    if (job->status)
        op->st = settle_new(c, op, job->at, job->status);
    if (op->st != CB_OK) {
        /* The issue exists (rec.id is set): say so, the engine finds it by its marker. */
        char *why = strbuf_detach(&op->err);
        strbuf_setf(&op->err, "created jira issue '%s' but %s", op->rec.key, why);
        free(why);
    }
}

/* Creates ops[0..n): on Cloud in bulk requests of up to BULK_CREATE, on Data Center one by
 * one (its bulk create is not known to take properties and transitions alike). */
static void create_all(struct connector *c, struct write_op *ops, size_t n)
{
    struct create_job *jobs = xcalloc(n, sizeof(*jobs));
    for (size_t i = 0; i < n; i++)
        create_prepare(c, &ops[i], &jobs[i]);
    for (size_t i = 0; i < n; i += BULK_CREATE) {
        size_t k = n - i < BULK_CREATE ? n - i : BULK_CREATE;
        for (size_t j = i; c->dc && j < i + k; j++)
            if (jobs[j].body)
                create_single(c, &ops[j], &jobs[j]);
        if (!c->dc)
            create_bulk(c, ops + i, jobs + i, k);
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i].st == CB_OK && ops[i].rec.id)
            create_finish(c, &ops[i], &jobs[i]);
        cJSON_Delete(jobs[i].body);
        free(jobs[i].at);
    }
    free(jobs);
}

/* The status name the issue showed when the engine read it in this cycle; NULL if unknown. */
static const char *seen_status(const struct connector *c, const struct write_op *op)
{
    for (size_t i = 0; op->current && i < c->need.n; i++)
        if (!strcmp(c->need_ids[i], "status"))
            return cJSON_GetStringValue(
                cJSON_GetObjectItemCaseSensitive(op->current->fields, c->need.v[i]));
    return NULL;
}

/* A status change from the status the cycle read, along learnt transitions: one POST per hop
 * and no read. NULL *done (and nothing changed) when no edge is known or the first is refused
 * (the status read is stale, or the workflow changed): the caller then asks the issue. */
static enum cb_status status_by_edges(struct connector *c, struct write_op *op, const char *target,
                                      int *done)
{
    const char *from = seen_status(c, op);
    *done = 0;
    if (!from || !strcasecmp(from, target) || check_status(c, target, &op->err) != CB_OK)
        return CB_OK;
    const struct edge *e = known_step(c, from, target);
    if (!e || strcasecmp(e->to, target))
        return CB_OK; /* one hop only: a walk half done from a stale status would mislead */
    enum cb_status st = post_transition(c, op->id, op->id, e->tid, &op->err);
    if (st == CB_ERR_FINAL) {
        strbuf_reset(&op->err);
        return CB_OK;
    }
    *done = st == CB_OK;
    return st;
}

/* Fills op->rec after a write that read nothing back: id, key and url; modified_ms stays 0
 * (the engine's next listing reads the issue). */
static void fill_unread(struct connector *c, struct write_op *op)
{
    if (!op->rec.id)
        op->rec.id = xstrdup(op->id);
    if (!op->rec.key)
        op->rec.key = xstrdup(op->current && op->current->key ? op->current->key : op->id);
    fill_url(c, op);
}

static enum cb_status update_one(struct connector *c, struct write_op *op)
{
    cJSON *body = cJSON_CreateObject(), *issue = NULL;
    struct body_parts b = {cJSON_AddObjectToObject(body, "fields"),
                           cJSON_AddObjectToObject(body, "update"), NULL};
    enum cb_status st = encode_fields(c, op->fields, &b, &op->err);
    if (st == CB_OK && (cJSON_GetArraySize(b.fields) || cJSON_GetArraySize(b.update))) {
        struct strbuf path = STRBUF_INIT;
        (void)strbuf_adds(&path, "/rest/api/3/issue/");
        (void)strbuf_add_urlencoded(&path, op->id);
        (void)strbuf_adds(&path, "?returnIssue=true");
        st = jira_call(c, "PUT", path.buf, body, 0, &issue, &op->err, "update jira issue '%s'",
                       op->id);
        strbuf_release(&path);
    }
    int moved = 0;
    if (st == CB_OK && b.status)
        st = status_by_edges(c, op, b.status, &moved);
    if (st == CB_OK && b.status && !moved)
        st = set_status(c, op->id, op->id, b.status, &issue, &op->err);
    else if (st == CB_OK && !issue && !moved)
        st = get_issue(c, op->id, "updated", &issue, &op->err);
    if (st == CB_OK && moved)
        fill_unread(c, op);
    else if (st == CB_OK)
        st = fill_written(c, op, issue);
    cJSON_Delete(issue);
    cJSON_Delete(body);
    return st;
}

/* 1 when Jira's error text (error_text: ": field: why" or "; field: why") blames field_id. */
static int blames(const char *msg, const char *field_id)
{
    size_t n = strlen(field_id);
    for (const char *p = msg; (p = strstr(p, field_id)) != NULL; p++)
        if (p - msg >= 2 && strchr(":;", p[-2]) && p[-1] == ' ' && !strncmp(p + n, ": ", 2))
            return 1;
    return 0;
}

/* A write Jira refused because of a user id: says which field and id, keeping Jira's words
 * ("cannot update jira issue '1': assignee 'x' is not an assignable user (http 400: ...)"). */
static void name_refused_user(const struct connector *c, struct write_op *op)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, op->fields)
    {
        int dupes;
        const struct jfield *f = v->string[0] == '$' ? NULL : find_field(c, v->string, &dupes);
        const char *why = op->err.buf, *cut = strstr(why, ": ");
        if (!f || f->kind != FK_USER || !cJSON_IsString(v) || !cut || !blames(why, f->id))
            continue;
        char *old = strbuf_detach(&op->err);
        cut = old + (cut - why);
        strbuf_setf(&op->err, "%.*s: %s '%s' is not an assignable user (%s)", (int)(cut - old), old,
                    v->string, v->valuestring, cut + 2);
        free(old);
        return;
    }
}

static enum cb_status jira_write(struct connector *c, struct write_op *ops, size_t n,
                                 struct strbuf *err)
{
    enum cb_status st = ensure_ready(c, err);
    for (size_t i = 0; i < n; i++) {
        struct write_op *op = &ops[i];
        strbuf_reset(&op->err);
        op->st = st;
        if (st != CB_OK)
            strbuf_setf(&op->err, "%s", err->buf);
    }
    if (st != CB_OK || !n)
        return st;
    if (!ops[0].id) /* all creates (connector.h) */
        create_all(c, ops, n);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].id)
            ops[i].st = update_one(c, &ops[i]);
        if (ops[i].st == CB_ERR_FINAL)
            name_refused_user(c, &ops[i]);
    }
    return st;
}

static int64_t jira_server_now(const struct connector *c)
{
    return http_server_now(c->http);
}

static void jira_budget(const struct connector *c, struct http_budget *out, unsigned long *paced)
{
    http_budget_get(c->http, out);
    *paced = 0;
}

/* A rich-text field holds ADF (DC: wiki): Markdown written there reads back as its markdown. */
static cJSON *jira_echo(const struct connector *c, const char *field, const cJSON *written)
{
    int dupes = 0;
    const struct jfield *f = find_field(c, field, &dupes);
    if (!f || f->kind != FK_ADF || !cJSON_IsString(written))
        return NULL;
    cJSON *body = md_to_body(c, written->valuestring);
    cJSON *back = decode_value(f, body);
    cJSON_Delete(body);
    return back;
}

/* --- people ------------------------------------------------------------------------------ */

static int jira_person_field(const struct connector *c, const char *field)
{
    int dupes = 0;
    const struct jfield *f = find_field(c, field, &dupes);
    return f && f->kind == FK_USER;
}

static int has_person(const struct person_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].id, id))
            return 1;
    return 0;
}

/* Adds the active users of one page to out (each once); returns the page's length. */
static int add_users(const struct connector *c, const cJSON *page, struct person_list *out)
{
    const cJSON *u;
    cJSON_ArrayForEach(u, page)
    {
        const char *id = jstr(u, c->dc ? "name" : "accountId");
        if (id && !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(u, "active")) &&
            !has_person(out, id))
            person_list_add(out, id, jstr(u, "displayName"), jstr(u, "emailAddress"));
    }
    return cJSON_GetArraySize(page);
}

/* One page of the project's assignable users from startAt start into *page. */
static enum cb_status users_page(struct connector *c, int start, cJSON **page, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_adds(&path, "/rest/api/3/user/assignable/search?project=");
    (void)strbuf_add_urlencoded(&path, c->project);
    /* Data Center wants its (empty = any) username filter; Cloud refuses the parameter */
    (void)strbuf_addf(&path, "%s&startAt=%d&maxResults=%d", c->dc ? "&username=" : "", start,
                      USER_PAGE);
    enum cb_status st = jira_call(c, "GET", path.buf, NULL, 0, page, err,
                                  "list the assignable users of jira project '%s'", c->project);
    strbuf_release(&path);
    if (st == CB_OK && !cJSON_IsArray(*page)) {
        strbuf_setf(err,
                    "cannot list the assignable users of jira project '%s': the answer is "
                    "not a list",
                    c->project);
        cJSON_Delete(*page);
        *page = NULL;
        st = CB_ERR_PARSE;
    }
    return st;
}

/* Pages on by what each page held until one is empty: a site may cap maxResults below what we
 * ask, so a short page does not prove it was the last. */
static enum cb_status jira_list_users(struct connector *c, struct person_list *out,
                                      struct strbuf *err)
{
    enum cb_status st = ensure_ready(c, err);
    for (int start = 0, page = 0, n = 1; st == CB_OK && n > 0; page++, start += n) {
        cJSON *arr = NULL;
        if (page == PAGE_BUDGET) {
            strbuf_setf(err,
                        "cannot list the assignable users of jira project '%s': still "
                        "more after %d pages",
                        c->project, PAGE_BUDGET);
            return CB_ERR_TEMP;
        }
        st = users_page(c, start, &arr, err);
        n = st == CB_OK ? add_users(c, arr, out) : 0;
        cJSON_Delete(arr);
    }
    return st;
}

/* --- comments ---------------------------------------------------------------------------- */

/* The crmbridge marker of a comment: its entity property MARKER_PROP (asked with
 * expand=properties), invisible to people and kept by edits. */
static const char *comment_marker(const cJSON *jc)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(jc, "properties"))
    {
        if (str_eq(jstr(p, "key"), MARKER_PROP))
            return jstr(cJSON_GetObjectItemCaseSensitive(p, "value"), "marker");
    }
    return NULL;
}

static enum cb_status comment_decode(const cJSON *jc, struct comment *out)
{
    const char *id = jstr(jc, "id"), *created = jstr(jc, "created"), *updated = jstr(jc, "updated");
    memset(out, 0, sizeof(*out));
    if (!id || !created || cbtime_parse(created, &out->created_ms) != CB_OK)
        return CB_ERR_PARSE;
    if (!updated || cbtime_parse(updated, &out->updated_ms) != CB_OK)
        out->updated_ms = out->created_ms;
    out->id = xstrdup(id);
    const char *who = jstr(cJSON_GetObjectItemCaseSensitive(jc, "author"), "displayName");
    out->author = who ? xstrdup(who) : NULL;
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(jc, "body");
    out->body = cJSON_IsObject(body)   ? richtext_adf_to_md(body)
                : cJSON_IsString(body) ? richtext_wiki_to_md(body->valuestring) /* DC */
                                       : xstrdup("");
    const char *m = comment_marker(jc);
    out->marker = m ? xstrdup(m) : NULL;
    out->by_us = m != NULL;
    return CB_OK;
}

static enum cb_status jira_list_comments(struct connector *c, const char *record_id,
                                         struct comment_list *out, struct strbuf *err)
{
    for (int start = 0;;) {
        struct strbuf path = STRBUF_INIT;
        (void)strbuf_addf(&path,
                          "/rest/api/3/issue/%s/comment?startAt=%d&maxResults=%d"
                          "&orderBy=created&expand=properties",
                          record_id, start, COMMENT_PAGE);
        cJSON *j = NULL;
        enum cb_status st = jira_call(c, "GET", path.buf, NULL, 0, &j, err,
                                      "list comments of jira issue '%s'", record_id);
        strbuf_release(&path);
        if (st != CB_OK)
            return st;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "comments"), *jc;
        int n = cJSON_GetArraySize(arr);
        double total = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "total"));
        cJSON_ArrayForEach(jc, arr)
        {
            struct comment x;
            if (comment_decode(jc, &x) == CB_OK)
                comment_list_push(out, &x);
        }
        cJSON_Delete(j);
        start += n;
        if (n == 0 || !(start < total))
            return CB_OK;
    }
}

static enum cb_status jira_write_comment(struct connector *c, const char *record_id,
                                         struct comment_op *op, struct strbuf *err)
{
    cJSON *body = cJSON_CreateObject(), *resp = NULL;
    cJSON_AddItemToObject(body, "body", md_to_body(c, op->body));
    struct strbuf path = STRBUF_INIT;
    enum cb_status st;
    if (op->id) {
        (void)strbuf_addf(&path, "/rest/api/3/issue/%s/comment/%s", record_id, op->id);
        st = jira_call(c, "PUT", path.buf, body, 0, &resp, err,
                       "update comment '%s' of jira issue '%s'", op->id, record_id);
    } else {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "key", MARKER_PROP);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "value"), "marker", op->marker);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(body, "properties"), p);
        (void)strbuf_addf(&path, "/rest/api/3/issue/%s/comment", record_id);
        st = jira_call(c, "POST", path.buf, body, 1, &resp, err, "add a comment to jira issue '%s'",
                       record_id);
        if (st == CB_OK && jstr(resp, "id"))
            op->new_id = xstrdup(jstr(resp, "id"));
    }
    cJSON_Delete(resp);
    cJSON_Delete(body);
    strbuf_release(&path);
    return st;
}

/* Deletes an issue (its subtasks too: deleteSubtasks=true, as the web UI asks). */
static enum cb_status jira_remove(struct connector *c, const char *id, struct strbuf *err)
{
    enum cb_status st = ensure_ready(c, err);
    cJSON *out = NULL;
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_adds(&path, "/rest/api/3/issue/");
    (void)strbuf_add_urlencoded(&path, id);
    (void)strbuf_adds(&path, "?deleteSubtasks=true");
    if (st == CB_OK)
        st = jira_call(c, "DELETE", path.buf, NULL, 0, &out, err, "delete jira issue '%s'", id);
    cJSON_Delete(out);
    strbuf_release(&path);
    return st;
}

const struct connector_ops jira_ops = {
    .name = "jira",
    .check_config = jira_check_config,
    .open = jira_open,
    .close = jira_close,
    .ping = jira_ping,
    .list_changed = jira_list_changed,
    .list_changed_also = jira_list_changed_also,
    .max_list_also = RECONCILE_MAX,
    .get_many = jira_get_many,
    .write = jira_write,
    .find_marker = jira_find_marker,
    .max_batch_read = BULK_MAX,
    .max_batch_write = BULK_CREATE, /* creates go in bulk; updates one by one as before */
    .write_reads_current = 1,
    .search_lag_ms = 30000,
    .search_lag = jira_search_lag,
    .list_comments = jira_list_comments,
    .write_comment = jira_write_comment,
    .budget = jira_budget,
    .server_now = jira_server_now,
    .echo = jira_echo,
    .remove = jira_remove,
    .list_users = jira_list_users,
    .person_field = jira_person_field,
};
