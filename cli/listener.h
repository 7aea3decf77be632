/*
 * The daemon's embedded HTTP listener (libmicrohttpd, one internal thread): webhook deliveries
 * on /hooks/<endpoint>, Prometheus text on /metrics and a health check on /healthz. It verifies
 * deliveries with sync/hooks.h and hands valid ones to the daemon as hints; it never syncs.
 */
#ifndef CB_LISTENER_H
#define CB_LISTENER_H

#include <stddef.h>

#include "core/status.h"
#include "core/strbuf.h"
#include "sync/hooks.h"

/* Where deliveries for one endpoint are accepted and how they are checked. */
struct listener_route {
    const char *endpoint; /* endpoint name: the path is /hooks/<endpoint> */
    enum hook_kind kind;
    const char *secret;       /* signing secret or channel token */
    const char *callback_url; /* the URL registered with the service (Trello signs it) */
};

/* What the listener asks of the daemon. Called on the listener's thread. */
struct listener_ops {
    /* A verified, new delivery for endpoint; what describes it for the log. */
    void (*hint)(void *arg, const char *endpoint, const char *what);
    /* Appends the daemon's metrics (Prometheus text) to out. */
    void (*metrics)(void *arg, struct strbuf *out);
    /* Appends a short health text to out; returns the HTTP status to answer (200 or 503). */
    int (*health)(void *arg, struct strbuf *out);
    void *arg;
};

struct listener;

/* Listens on listen ("HOST:PORT", port 0 picks a free one); bodies over max_body bytes are
 * refused with 413. ops is copied. On failure *out stays NULL and err says why. */
enum cb_status listener_start(const char *listen, size_t max_body, const struct listener_ops *ops,
                              struct listener **out, struct strbuf *err) CB_WUR;
/* Replaces the routes (copied; safe while requests are being served). */
void listener_set_routes(struct listener *l, const struct listener_route *routes, size_t n);
/* The port actually listened on. */
int listener_port(const struct listener *l);
/* Stops serving (waits for the request in progress) and frees l. NULL is a no-op. */
void listener_stop(struct listener *l);

#endif
