/*
 * `crmbridge webhooks list|register`: the callback URL of every endpoint whose service sends
 * webhooks, and their registration where the API allows it. Jira: an admin webhook
 * (/rest/webhooks/1.0/webhook) signed with webhooks.secret, filtered on the pairs' projects.
 * Trello: one webhook per board (/1/webhooks). Neither expires; registering again is a no-op.
 * Services with expiring push channels (Zoho) go through the connector's watch slot: one channel
 * per pair side, renewed in place, its expiry kept in the cache for the daemon to renew.
 * Fxiaoke is not registered here: the command prints what to set up by hand.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "connectors/connector.h"
#include "connectors/http.h"
#include "core/timeutil.h"
#include "sync/hooks.h"

struct reg {
    const struct config *cfg;
    const struct endpoint_conf *ep;
    const char *only; /* --pair */
    const char *url;  /* the callback URL */
    struct http *http;
};

static const char *const jira_events[] = {"jira:issue_created", "jira:issue_updated",
                                          "jira:issue_deleted", "comment_created",
                                          "comment_updated",    NULL};

/* "Authorization: Basic base64(email:token)" (Cloud) or "Bearer PAT" (Data Center). */
static enum cb_status jira_auth(const struct endpoint_conf *ep, struct strbuf *hdr,
                                struct strbuf *err)
{
    char *token = NULL;
    if (conf_secret(&ep->g, "api_token", &token, err) != CB_OK)
        return CB_ERR_CONFIG;
    const char *email = conf_get(&ep->g, "email");
    if (!email) {
        strbuf_setf(hdr, "Authorization: Bearer %s", token);
    } else {
        struct strbuf plain = STRBUF_INIT;
        (void)strbuf_addf(&plain, "%s:%s", email, token);
        unsigned char *b64 = xmalloc(4 * (plain.len / 3 + 1) + 1);
        EVP_EncodeBlock(b64, (const unsigned char *)plain.buf, (int)plain.len);
        strbuf_setf(hdr, "Authorization: Basic %s", (const char *)b64);
        free(b64);
        strbuf_release(&plain);
    }
    free(token);
    return CB_OK;
}

/* Sends method to api_url + path (+ query, which may carry credentials and is never shown)
 * with an optional auth header and JSON body. Returns CB_OK on a 2xx answer, else its class. */
static enum cb_status call(const struct reg *r, const char *auth, const char *method,
                           const char *path, const char *query, const char *body,
                           struct http_resp *resp, struct strbuf *err)
{
    struct strbuf url = STRBUF_INIT, why = STRBUF_INIT;
    (void)strbuf_addf(&url, "%s%s%s", conf_get(&r->ep->g, "api_url"), path, query ? query : "");
    const char *headers[] = {"Accept: application/json", auth, NULL};
    struct http_req rq = {.method = method,
                          .url = url.buf,
                          .headers = headers,
                          .body = body,
                          .body_len = body ? strlen(body) : 0,
                          .no_retry = body != NULL};
    enum cb_status st = http_request(r->http, &rq, resp, &why);
    if (st == CB_OK && (st = http_classify(resp->status)) != CB_OK)
        strbuf_setf(&why, "http %ld", resp->status);
    if (st != CB_OK)
        strbuf_setf(err, "cannot %s '%s%s': %s", method, conf_get(&r->ep->g, "api_url"), path,
                    why.buf);
    strbuf_release(&url);
    strbuf_release(&why);
    return st;
}

static enum cb_status jira_call(const struct reg *r, const char *auth, const char *method,
                                const char *path, const char *body, struct http_resp *resp,
                                struct strbuf *err)
{
    return call(r, auth, method, path, NULL, body, resp, err);
}

/* The id of the admin webhook already pointing at r->url, or NULL (caller frees). */
static char *jira_find(const struct reg *r, const char *auth, struct strbuf *err)
{
    struct http_resp resp;
    http_resp_init(&resp);
    char *id = NULL;
    if (jira_call(r, auth, "GET", "/rest/webhooks/1.0/webhook", NULL, &resp, err) == CB_OK) {
        cJSON *list = cJSON_ParseWithLengthOpts(resp.body.buf, resp.body.len, NULL, 0);
        const cJSON *h;
        cJSON_ArrayForEach(h, list)
        {
            const char *u = cJSON_GetStringValue(cJSON_GetObjectItem(h, "url"));
            const char *self = cJSON_GetStringValue(cJSON_GetObjectItem(h, "self"));
            if (!id && u && self && !strcmp(u, r->url))
                id = xstrdup(strrchr(self, '/') ? strrchr(self, '/') + 1 : self);
        }
        cJSON_Delete(list);
    }
    http_resp_release(&resp);
    return id;
}

/* The JQL filter: the projects of the pairs that use this endpoint as their tracker. */
static void jira_filter(const struct reg *r, struct strbuf *jql)
{
    int n = 0;
    for (size_t i = 0; i < r->cfg->n_pairs; i++) {
        const struct pair_conf *pc = &r->cfg->pairs[i];
        const char *project = conf_get(&pc->side[1].g, "project");
        if (!str_eq(pc->side[1].endpoint, r->ep->name) || !project ||
            (r->only && !str_eq(r->only, pc->name)))
            continue;
        (void)strbuf_adds(jql, n++ ? ", " : "project in (");
        (void)strbuf_adds(jql, project);
    }
    if (n)
        (void)strbuf_addch(jql, ')');
}

static char *jira_body(const struct reg *r, const char *secret, const char *jql)
{
    cJSON *o = cJSON_CreateObject();
    struct strbuf name = STRBUF_INIT;
    (void)strbuf_addf(&name, "crmbridge %s", r->ep->name);
    cJSON_AddStringToObject(o, "name", name.buf);
    cJSON_AddStringToObject(o, "url", r->url);
    cJSON *ev = cJSON_AddArrayToObject(o, "events");
    for (int i = 0; jira_events[i]; i++)
        cJSON_AddItemToArray(ev, cJSON_CreateString(jira_events[i]));
    if (*jql)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "filters"),
                                "issue-related-events-section", jql);
    cJSON_AddFalseToObject(o, "excludeBody");
    cJSON_AddStringToObject(o, "secret", secret);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    strbuf_release(&name);
    return txt;
}

static enum cb_status jira_register(const struct reg *r, const char *secret, struct strbuf *err)
{
    struct strbuf auth = STRBUF_INIT, jql = STRBUF_INIT;
    enum cb_status st = jira_auth(r->ep, &auth, err);
    char *id = st == CB_OK ? jira_find(r, auth.buf, err) : NULL;
    if (id) {
        printf("endpoint '%s': webhook %s already delivers to %s\n", r->ep->name, id, r->url);
    } else if (st == CB_OK && !err->len) {
        jira_filter(r, &jql);
        char *body = jira_body(r, secret, jql.buf);
        struct http_resp resp;
        http_resp_init(&resp);
        st = jira_call(r, auth.buf, "POST", "/rest/webhooks/1.0/webhook", body, &resp, err);
        if (st == CB_OK)
            printf("endpoint '%s': registered a webhook (%s) delivering to %s\n", r->ep->name,
                   *jql.buf ? jql.buf : "every project", r->url);
        http_resp_release(&resp);
        cJSON_free(body);
    } else if (st == CB_OK) {
        st = CB_ERR_TEMP;
    }
    free(id);
    strbuf_release(&auth);
    strbuf_release(&jql);
    return st;
}

/* "?key=K&token=T" for Trello calls. */
static enum cb_status trello_query(const struct endpoint_conf *ep, struct strbuf *q, char **token,
                                   struct strbuf *err)
{
    char *key = NULL;
    enum cb_status st = conf_secret(&ep->g, "key", &key, err);
    if (st == CB_OK)
        st = conf_secret(&ep->g, "token", token, err);
    if (st == CB_OK) {
        (void)strbuf_adds(q, "?key=");
        (void)strbuf_add_urlencoded(q, key);
        (void)strbuf_adds(q, "&token=");
        (void)strbuf_add_urlencoded(q, *token);
    }
    free(key);
    return st;
}

/* GET path+query and parse the JSON answer (caller deletes); NULL on failure (err says why). */
static cJSON *get_json(const struct reg *r, const char *path, const char *query, struct strbuf *err)
{
    struct http_resp resp;
    http_resp_init(&resp);
    cJSON *j = NULL;
    if (call(r, NULL, "GET", path, query, NULL, &resp, err) == CB_OK) {
        j = cJSON_ParseWithLengthOpts(resp.body.buf, resp.body.len, NULL, 0);
        if (!j)
            strbuf_setf(err, "cannot read the answer of GET '%s'", path);
    }
    http_resp_release(&resp);
    return j;
}

/* 1 when a webhook of the token already sends board_id's changes to r->url. */
static int trello_known(const cJSON *hooks, const struct reg *r, const char *board_id)
{
    const cJSON *h;
    cJSON_ArrayForEach(h, hooks)
    {
        if (str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(h, "callbackURL")), r->url) &&
            str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(h, "idModel")), board_id))
            return 1;
    }
    return 0;
}

/* One webhook per board (Trello checks the callback with HEAD first: the daemon must run). */
static enum cb_status trello_board(const struct reg *r, const char *board, const char *q,
                                   const cJSON *hooks, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT, query = STRBUF_INIT;
    (void)strbuf_addf(&path, "/1/boards/%s", board);
    (void)strbuf_addf(&query, "%s&fields=id", q);
    cJSON *b = get_json(r, path.buf, query.buf, err);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(b, "id"));
    enum cb_status st = id ? CB_OK : CB_ERR_FINAL;
    if (id && trello_known(hooks, r, id)) {
        printf("endpoint '%s': a webhook already delivers board %s to %s\n", r->ep->name, board,
               r->url);
    } else if (id) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "callbackURL", r->url);
        cJSON_AddStringToObject(o, "idModel", id);
        cJSON_AddStringToObject(o, "description", "crmbridge");
        char *body = cJSON_PrintUnformatted(o);
        struct http_resp resp;
        http_resp_init(&resp);
        st = call(r, NULL, "POST", "/1/webhooks", q, body, &resp, err);
        if (st == CB_OK)
            printf("endpoint '%s': registered a webhook for board %s delivering to %s\n",
                   r->ep->name, board, r->url);
        http_resp_release(&resp);
        cJSON_free(body);
        cJSON_Delete(o);
    }
    cJSON_Delete(b);
    strbuf_release(&path);
    strbuf_release(&query);
    return st;
}

static enum cb_status trello_register(const struct reg *r, struct strbuf *err)
{
    struct strbuf q = STRBUF_INIT, path = STRBUF_INIT;
    char *token = NULL;
    enum cb_status st = trello_query(r->ep, &q, &token, err);
    cJSON *hooks = NULL;
    if (st == CB_OK) {
        (void)strbuf_addf(&path, "/1/tokens/%s/webhooks", token);
        hooks = get_json(r, path.buf, q.buf, err);
        st = hooks ? CB_OK : CB_ERR_TEMP;
    }
    for (size_t i = 0; st == CB_OK && i < r->cfg->n_pairs; i++) {
        const struct pair_conf *pc = &r->cfg->pairs[i];
        if (str_eq(pc->side[1].endpoint, r->ep->name) && (!r->only || str_eq(r->only, pc->name)))
            st = trello_board(r, conf_get(&pc->side[1].g, "board"), q.buf, hooks, err);
    }
    cJSON_Delete(hooks);
    free(token);
    strbuf_release(&q);
    strbuf_release(&path);
    return st;
}

/* ------------------------------------------------------------------ push channels (watch) */

#define HOUR_MS 3600000LL
#define CHANNEL_HOURS_MAX 168 /* Zoho's limit: one week */

void cli_channel_token(const char *secret, const char *endpoint, struct strbuf *out)
{
    struct strbuf msg = STRBUF_INIT, mac = STRBUF_INIT;
    (void)strbuf_addf(&msg, "crmbridge channel %s", endpoint);
    hooks_sign_sha256(secret, msg.buf, msg.len, &mac);
    strbuf_reset(out);
    (void)strbuf_add(out, mac.buf + 7, 40); /* after "sha256=" */
    strbuf_release(&msg);
    strbuf_release(&mac);
}

/* A numeric id, stable per pair and side: 15 digits from FNV-1a over the pair name and side. */
static void channel_id(const char *pair, enum side s, char *buf, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)pair; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h = (h ^ (uint64_t)s) * 1099511628211ULL;
    snprintf(buf, n, "%" PRIu64, (uint64_t)(100000000000000ULL + h % 900000000000000ULL));
}

static void watch_key(const char *pair, enum side s, struct strbuf *key)
{
    strbuf_setf(key, "watch:%s:%s", pair, side_name(s));
}

int64_t cli_watch_expiry(struct app *a, const char *pair, enum side s)
{
    struct cache_txn *t;
    struct strbuf key = STRBUF_INIT, err = STRBUF_INIT;
    cJSON *v = NULL;
    watch_key(pair, s, &key);
    if (a->cache && cache_txn_begin(a->cache, 1, &t, &err) == CB_OK) {
        (void)cache_meta_get(t, key.buf, &v);
        cache_txn_abort(t);
    }
    const cJSON *e = cJSON_GetObjectItem(v, "expiry_ms");
    int64_t ms = cJSON_IsNumber(e) ? (int64_t)e->valuedouble : 0;
    cJSON_Delete(v);
    strbuf_release(&key);
    strbuf_release(&err);
    return ms;
}

static enum cb_status watch_store(struct app *a, const char *pair, enum side s,
                                  const struct watch_req *rq, struct strbuf *err)
{
    if (!a->cache)
        return CB_OK;
    struct cache_txn *t;
    struct strbuf key = STRBUF_INIT;
    watch_key(pair, s, &key);
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "channel_id", rq->channel_id);
    cJSON_AddNumberToObject(v, "expiry_ms", (double)rq->expiry_ms);
    enum cb_status st = cache_txn_begin(a->cache, 0, &t, err);
    if (st == CB_OK) {
        (void)cache_meta_put(t, key.buf, v);
        st = cache_txn_commit(t, err);
    }
    cJSON_Delete(v);
    strbuf_release(&key);
    return st;
}

/* Opens side s's connector and asks it for the channel described by rq. */
static enum cb_status watch_call(struct app *a, const struct pair_conf *pc, enum side s,
                                 const struct watch_req *rq, struct strbuf *info,
                                 struct strbuf *err)
{
    const struct endpoint_conf *ep = config_endpoint(a->cfg, pc->side[s].endpoint);
    const struct connector_ops *ops = ep ? connector_find(ep->type) : NULL;
    if (!ops || !ops->watch)
        return CB_ERR_NOTFOUND;
    struct connector_params cp = {
        .ep = ep,
        .side = &pc->side[s],
        .http = {.timeout_s = a->cfg->http_timeout_s, .max_body = a->cfg->max_body_bytes},
        .cache = a->cache,
    };
    struct connector *c = NULL;
    enum cb_status st = ops->open(&cp, &c, err);
    if (st == CB_OK)
        st = ops->watch(c, rq, info, err);
    if (c)
        ops->close(c);
    return st;
}

enum cb_status cli_watch_side(struct app *a, const struct pair_conf *pc, enum side s,
                              const char *secret, int hours, struct strbuf *info,
                              struct strbuf *err)
{
    char id[24];
    channel_id(pc->name, s, id, sizeof(id));
    struct strbuf url = STRBUF_INIT, token = STRBUF_INIT;
    cli_webhook_url(a->cfg, pc->side[s].endpoint, &url);
    cli_channel_token(secret, pc->side[s].endpoint, &token);
    int64_t now = cbtime_now_ms();
    struct watch_req rq = {.channel_id = id,
                           .notify_url = url.buf,
                           .token = token.buf,
                           .expiry_ms = now - now % 1000 + hours * HOUR_MS};
    enum cb_status st = watch_call(a, pc, s, &rq, info, err);
    if (st == CB_OK)
        st = watch_store(a, pc->name, s, &rq, err);
    strbuf_release(&url);
    strbuf_release(&token);
    return st;
}

/* Every pair side on r->ep gets its channel; CB_ERR_NOTFOUND when the service has none. */
static enum cb_status watch_register(const struct reg *r, struct app *a, const char *secret,
                                     int hours, struct strbuf *err)
{
    enum cb_status st = CB_ERR_NOTFOUND;
    struct strbuf info = STRBUF_INIT;
    for (size_t i = 0; i < r->cfg->n_pairs && (st == CB_OK || st == CB_ERR_NOTFOUND); i++) {
        const struct pair_conf *pc = &r->cfg->pairs[i];
        for (int s = 0; s < 2 && (!r->only || str_eq(r->only, pc->name)); s++) {
            if (!str_eq(pc->side[s].endpoint, r->ep->name))
                continue;
            st = cli_watch_side(a, pc, (enum side)s, secret, hours, &info, err);
            if (st == CB_OK)
                printf("endpoint '%s': pair '%s': %s, delivering to %s\n", r->ep->name,
                       pc->name, info.buf, r->url);
            else
                break;
        }
    }
    strbuf_release(&info);
    return st;
}

static void print_manual(const struct reg *r, enum hook_kind k)
{
    static const char *const how[] = {
        [HOOK_FXIAOKE] = "add a workflow HTTP callback that POSTs with header "
                         "'X-Crmbridge-Signature: sha256=<hex HMAC-SHA256(webhooks.secret, body)>'",
    };
    printf("endpoint '%s' (%s): not registered by crmbridge: %s; URL %s\n", r->ep->name,
           r->ep->type, how[k], r->url);
}

static int uses(const struct config *cfg, const char *only, const char *endpoint)
{
    for (size_t i = 0; i < cfg->n_pairs; i++) {
        const struct pair_conf *pc = &cfg->pairs[i];
        if ((!only || str_eq(only, pc->name)) &&
            (str_eq(pc->side[0].endpoint, endpoint) || str_eq(pc->side[1].endpoint, endpoint)))
            return 1;
    }
    return 0;
}

static int register_all(struct app *a, const char *only, const char *secret, int hours)
{
    struct http_opts opts = {.timeout_s = a->cfg->http_timeout_s,
                             .max_body = a->cfg->max_body_bytes};
    struct reg r = {.cfg = a->cfg, .only = only, .http = http_new(&opts)};
    struct strbuf url = STRBUF_INIT, err = STRBUF_INIT;
    int rc = EXIT_OK;
    for (size_t i = 0; i < a->cfg->n_endpoints; i++) {
        r.ep = &a->cfg->endpoints[i];
        enum hook_kind k = hooks_kind(r.ep->type);
        if (k == HOOK_NONE || !uses(a->cfg, only, r.ep->name))
            continue;
        cli_webhook_url(a->cfg, r.ep->name, &url);
        r.url = url.buf;
        strbuf_reset(&err);
        enum cb_status st = CB_OK;
        if (k == HOOK_JIRA)
            st = jira_register(&r, secret, &err);
        else if (k == HOOK_TRELLO)
            st = trello_register(&r, &err);
        else if ((st = watch_register(&r, a, secret, hours, &err)) == CB_ERR_NOTFOUND)
            st = CB_OK;
        if (k == HOOK_FXIAOKE)
            print_manual(&r, k);
        if (st != CB_OK) {
            cli_error("cannot register the webhook of endpoint '%s': %s", r.ep->name, err.buf);
            rc = EXIT_FATAL;
        }
    }
    http_free(r.http);
    strbuf_release(&url);
    strbuf_release(&err);
    return rc;
}

static int list_all(struct app *a)
{
    struct strbuf url = STRBUF_INIT;
    for (size_t i = 0; i < a->cfg->n_endpoints; i++) {
        const struct endpoint_conf *ep = &a->cfg->endpoints[i];
        if (hooks_kind(ep->type) == HOOK_NONE)
            continue;
        cli_webhook_url(a->cfg, ep->name, &url);
        printf("%-16s %-8s %s\n", ep->name, ep->type, url.buf);
    }
    strbuf_release(&url);
    return EXIT_OK;
}

int cmd_webhooks(struct app *a, int argc, char **argv)
{
    const char *verb = cli_positional(argc, argv, 0);
    if (!verb || (strcmp(verb, "list") != 0 && strcmp(verb, "register") != 0)) {
        cli_error("'webhooks' needs 'list' or 'register'");
        return EXIT_USAGE;
    }
    const char *only = NULL;
    const char *h = cli_opt(argc, argv, "--channel-hours");
    int hours = h ? atoi(h) : CHANNEL_HOURS_MAX;
    if (hours < 1 || hours > CHANNEL_HOURS_MAX) {
        cli_error("bad --channel-hours '%s': want 1 to %d", h, CHANNEL_HOURS_MAX);
        return EXIT_USAGE;
    }
    int rc = cli_load_pair_opt(a, argc, argv, !strcmp(verb, "register"), &only);
    if (rc != EXIT_OK)
        return rc;
    if (!conf_get(&a->cfg->webhooks, "listen")) {
        cli_error("no 'webhooks' group with 'listen' in '%s'", a->config_path);
        return EXIT_USAGE;
    }
    if (!strcmp(verb, "list"))
        return list_all(a);
    char *secret = NULL;
    struct strbuf err = STRBUF_INIT;
    if (conf_secret(&a->cfg->webhooks, "secret", &secret, &err) != CB_OK) {
        cli_error("%s", err.buf);
        rc = EXIT_USAGE;
    } else {
        rc = register_all(a, only, secret, hours);
    }
    free(secret);
    strbuf_release(&err);
    return rc;
}
