/*
 * Client-side pacing: a token bucket per limit a service publishes ("100 requests per 10 s per
 * token"), so that a connector runs at the limit instead of bouncing off it with 429s. A
 * connector keeps one struct pace per limit (pace_shared: one per process) and calls
 * pace_wait() before each request.
 */
#ifndef CB_PACE_H
#define CB_PACE_H

#include <stdint.h>

#include "core/status.h"
#include "core/strbuf.h"

struct pace {
    double capacity; /* requests allowed per window */
    double per_ms;   /* refill rate: capacity / window */
    double tokens;
    int64_t last_ms;
    unsigned long waits; /* how many times pace_wait had to sleep (tests, benchmarks) */
};

/* Allows n requests per window_ms, starting full. n <= 0 disables pacing. */
void pace_init(struct pace *p, int n, int64_t window_ms);
/* Takes one request's token, sleeping until one is available. Returns CB_ERR_STOPPED when
 * http_request_stop() is called while waiting, else CB_OK. */
enum cb_status pace_wait(struct pace *p) CB_WUR;
/* How many requests p lets through right now without a wait (a large number when pacing is
 * off). Takes nothing. */
double pace_available(struct pace *p);
/* After a 429 despite pacing (another client shares the limit): empty the bucket. */
void pace_drain(struct pace *p);

/* The process-wide bucket for one limit, made by pace_init(n, window_ms) on first use: every
 * connection of the process that names the same limit shares it (a migration's parallel
 * connections then stay within one token's allowance together). Never freed. Every pace
 * function is thread-safe. */
struct pace *pace_shared(const char *key, int n, int64_t window_ms);
/* Writes a key naming a limit of `service` ("trello token", ...) held by `secret` (a token, an
 * API key) without the secret itself: a 64-bit hash of it, then `what` (an endpoint, a method
 * and path; may be NULL). */
void pace_key(struct strbuf *out, const char *service, const char *secret, const char *what);

#endif
