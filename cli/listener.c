/*
 * The daemon's HTTP listener over libmicrohttpd (see listener.h): one internal polling thread,
 * so requests are served one at a time and the de-duplication ring needs no lock. It answers
 * 200 to a verified delivery, 401 to a bad signature, 404 to an unknown path, 413 to an oversized
 * body; it only reads, verifies and hands hints on. Routes change under a mutex on reload.
 */
#define LOG_MODULE "listener"
#include "cli/listener.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

enum outcome { OUT_ACCEPTED, OUT_DUPLICATE, OUT_UNAUTHORIZED, OUT_TOO_LARGE, OUT_COUNT };
static const char *const outcome_names[OUT_COUNT] = {"accepted", "duplicate", "unauthorized",
                                                     "too_large"};

struct route {
    char *endpoint, *secret, *callback_url;
    enum hook_kind kind;
    unsigned long count[OUT_COUNT];
};

struct listener {
    struct MHD_Daemon *mhd;
    struct listener_ops ops;
    size_t max_body;
    pthread_mutex_t lock; /* guards routes against listener_set_routes */
    struct route *routes;
    size_t n_routes;
    struct hooks_dedup *seen;
    int port;
};

/* Per request: the body read so far. */
struct request {
    struct strbuf body;
    int too_big;
};

static void free_routes(struct route *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].endpoint);
        free(r[i].secret);
        free(r[i].callback_url);
    }
    free(r);
}

static struct route *find_route(struct listener *l, const char *endpoint)
{
    for (size_t i = 0; i < l->n_routes; i++)
        if (!strcmp(l->routes[i].endpoint, endpoint))
            return &l->routes[i];
    return NULL;
}

/* Keeps the counters of endpoints that stay across a reload. */
void listener_set_routes(struct listener *l, const struct listener_route *routes, size_t n)
{
    struct route *r = xcalloc(n + 1, sizeof(*r));
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < n; i++) {
        r[i].endpoint = xstrdup(routes[i].endpoint);
        r[i].secret = xstrdup(routes[i].secret ? routes[i].secret : "");
        r[i].callback_url = xstrdup(routes[i].callback_url ? routes[i].callback_url : "");
        r[i].kind = routes[i].kind;
        const struct route *old = find_route(l, routes[i].endpoint);
        if (old)
            memcpy(r[i].count, old->count, sizeof(r[i].count));
    }
    free_routes(l->routes, l->n_routes);
    l->routes = r;
    l->n_routes = n;
    pthread_mutex_unlock(&l->lock);
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned int status, const char *ctype,
                               const char *text, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned int status, const char *text)
{
    return respond(c, status, "text/plain; charset=utf-8", text, strlen(text));
}

static void add_hook_metrics(struct listener *l, struct strbuf *out)
{
    (void)strbuf_adds(out, "# HELP crmbridge_webhooks_total Webhook deliveries by endpoint and "
                           "outcome.\n# TYPE crmbridge_webhooks_total counter\n");
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->n_routes; i++)
        for (int k = 0; k < OUT_COUNT; k++)
            (void)strbuf_addf(out, "crmbridge_webhooks_total{endpoint=\"%s\",outcome=\"%s\"} %lu\n",
                              l->routes[i].endpoint, outcome_names[k], l->routes[i].count[k]);
    pthread_mutex_unlock(&l->lock);
}

static enum MHD_Result serve_metrics(struct listener *l, struct MHD_Connection *c)
{
    struct strbuf out = STRBUF_INIT;
    l->ops.metrics(l->ops.arg, &out);
    add_hook_metrics(l, &out);
    enum MHD_Result r = respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4", out.buf, out.len);
    strbuf_release(&out);
    return r;
}

static enum MHD_Result serve_health(struct listener *l, struct MHD_Connection *c)
{
    struct strbuf out = STRBUF_INIT;
    int status = l->ops.health(l->ops.arg, &out);
    enum MHD_Result r =
        respond(c, (unsigned int)status, "text/plain; charset=utf-8", out.buf, out.len);
    strbuf_release(&out);
    return r;
}

/* Verifies a delivery under the routes lock; returns the outcome and fills what. */
static enum outcome check_delivery(struct listener *l, struct route *rt, struct MHD_Connection *c,
                                   const struct request *rq, struct strbuf *what)
{
    if (rq->too_big)
        return OUT_TOO_LARGE;
    const char *hdr = hooks_signature_header(rt->kind);
    struct hook_delivery d = {
        .signature = hdr ? MHD_lookup_connection_value(c, MHD_HEADER_KIND, hdr) : NULL,
        .body = rq->body.buf,
        .body_len = rq->body.len,
        .callback_url = rt->callback_url,
    };
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = hooks_verify(rt->kind, &d, rt->secret, &err);
    hooks_describe(rt->kind, rq->body.buf, rq->body.len, what);
    if (st != CB_OK) {
        log_warn("refused a webhook for '%s': %s", rt->endpoint, err.buf);
        strbuf_release(&err);
        return OUT_UNAUTHORIZED;
    }
    strbuf_release(&err);
    const char *id =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Atlassian-Webhook-Identifier");
    if (rt->kind == HOOK_JIRA && id) {
        struct strbuf key = STRBUF_INIT;
        (void)strbuf_addf(&key, "%s:%s", rt->endpoint, id);
        int dup = hooks_dedup_seen(l->seen, key.buf);
        strbuf_release(&key);
        if (dup)
            return OUT_DUPLICATE;
    }
    return OUT_ACCEPTED;
}

static enum MHD_Result serve_hook(struct listener *l, struct MHD_Connection *c,
                                  const char *endpoint, const char *method,
                                  const struct request *rq)
{
    pthread_mutex_lock(&l->lock);
    struct route *rt = find_route(l, endpoint);
    if (!rt) {
        pthread_mutex_unlock(&l->lock);
        return respond_text(c, MHD_HTTP_NOT_FOUND, "no such webhook endpoint\n");
    }
    if (!strcmp(method, "HEAD") || !strcmp(method, "GET")) {
        /* Trello checks the callback with HEAD before it creates a webhook */
        pthread_mutex_unlock(&l->lock);
        return respond_text(c, MHD_HTTP_OK, "ok\n");
    }
    struct strbuf what = STRBUF_INIT;
    enum outcome o = check_delivery(l, rt, c, rq, &what);
    rt->count[o]++;
    pthread_mutex_unlock(&l->lock);
    if (o == OUT_ACCEPTED)
        l->ops.hint(l->ops.arg, endpoint, what.buf);
    strbuf_release(&what);
    static const unsigned int codes[OUT_COUNT] = {MHD_HTTP_OK, MHD_HTTP_OK, MHD_HTTP_UNAUTHORIZED,
                                                  MHD_HTTP_CONTENT_TOO_LARGE};
    static const char *const texts[OUT_COUNT] = {"accepted\n", "duplicate\n", "unauthorized\n",
                                                 "body too large\n"};
    return respond_text(c, codes[o], texts[o]);
}

/* First call: set up the request; then collect the body (up to the cap); last call: answer. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **ctx)
{
    struct listener *l = cls;
    struct request *rq = *ctx;
    if (!rq) {
        *ctx = rq = xcalloc(1, sizeof(*rq));
        strbuf_init(&rq->body, l->max_body);
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (strbuf_add(&rq->body, upload_data, *upload_data_size) != CB_OK)
            rq->too_big = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!strncmp(url, "/hooks/", 7))
        return serve_hook(l, c, url + 7, method, rq);
    if (!strcmp(url, "/metrics"))
        return serve_metrics(l, c);
    if (!strcmp(url, "/healthz"))
        return serve_health(l, c);
    return respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
    struct request *rq = *ctx;
    if (!rq)
        return;
    strbuf_release(&rq->body);
    free(rq);
    *ctx = NULL;
}

/* "HOST:PORT" with a numeric IPv4 host ("0.0.0.0" for every interface). */
static int parse_listen(const char *listen, struct sockaddr_in *sa)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || colon - listen > 63)
        return -1;
    char host[64];
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (!*(colon + 1) || *end || port < 0 || port > 65535 ||
        inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -1;
    return 0;
}

enum cb_status listener_start(const char *listen, size_t max_body, const struct listener_ops *ops,
                              struct listener **out, struct strbuf *err)
{
    struct sockaddr_in sa;
    if (parse_listen(listen, &sa) != 0) {
        strbuf_setf(err, "cannot listen on '%s': want IPV4:PORT, e.g. 127.0.0.1:8787", listen);
        return CB_ERR_CONFIG;
    }
    struct listener *l = xcalloc(1, sizeof(*l));
    l->ops = *ops;
    l->max_body = max_body;
    l->seen = hooks_dedup_new(4096);
    pthread_mutex_init(&l->lock, NULL);
    l->mhd =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, l,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, l, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64, MHD_OPTION_END);
    if (!l->mhd) {
        strbuf_setf(err, "cannot listen on '%s': address in use or not available", listen);
        listener_stop(l);
        return CB_ERR_CONFIG;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_BIND_PORT);
    l->port = info ? (int)info->port : ntohs(sa.sin_port);
    *out = l;
    return CB_OK;
}

int listener_port(const struct listener *l)
{
    return l->port;
}

void listener_stop(struct listener *l)
{
    if (!l)
        return;
    if (l->mhd)
        MHD_stop_daemon(l->mhd);
    free_routes(l->routes, l->n_routes);
    hooks_dedup_free(l->seen);
    pthread_mutex_destroy(&l->lock);
    free(l);
}
