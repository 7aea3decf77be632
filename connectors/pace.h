/*
 * Client-side pacing: a token bucket per limit a service publishes ("100 requests per 10 s per
 * token"), so that a connector runs at the limit instead of bouncing off it with 429s. A
 * connector keeps one struct pace per limit (pace_shared: one per process) and calls
 * pace_wait() before each request. A limit on requests in flight at once is a struct gate
 * instead: gate_enter() before sending, gate_leave() when the answer is in.
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
/* A counting gate for a limit on requests in flight at once (Zoho CRM's concurrency): at most
 * `limit` holders at a time across every thread of the process. Opaque. */
struct gate;
/* The process-wide gate for one limit (made on first use with `limit`; callers put the limit in
 * the key). NULL when limit <= 0: no gate, and gate_enter(NULL)/gate_leave(NULL) do nothing.
 * Never freed. Every gate function is thread-safe. */
struct gate *gate_shared(const char *key, int limit);
/* Takes a slot, blocking until one is free. Returns CB_ERR_STOPPED (holding nothing) when
 * http_request_stop() is called while waiting, else CB_OK: the caller then owes one
 * gate_leave(). */
enum cb_status gate_enter(struct gate *g) CB_WUR;
/* Gives back a slot taken by gate_enter and wakes one waiter. */
void gate_leave(struct gate *g);
/* How many times gate_enter had to wait for a slot (tests, benchmarks); 0 for NULL. */
unsigned long gate_waits(struct gate *g);

/* Writes a key naming a limit of `service` ("trello token", ...) held by `secret` (a token, an
 * API key) without the secret itself: a 64-bit hash of it, then `what` (an endpoint, a method
 * and path; may be NULL). */
void pace_key(struct strbuf *out, const char *service, const char *secret, const char *what);

#endif
