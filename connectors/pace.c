/*
 * Token buckets for client-side pacing. Time comes from CLOCK_MONOTONIC, so a wall-clock step
 * never releases a burst; sleeps are sliced so a stop request ends them promptly. Gates count
 * requests in flight (one lock, a condition variable each). It does not know any service's
 * limits: connectors configure one bucket or gate per limit.
 */
#include "connectors/pace.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/http.h"
#include "core/strbuf.h"

/* One lock for every bucket: the arithmetic under it takes nanoseconds, sleeps happen outside. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

struct shared {
    char *key;
    struct pace p;
    struct shared *next;
};
static struct shared *shared_list;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void init_locked(struct pace *p, int n, int64_t window_ms)
{
    p->capacity = n > 0 ? n : 0;
    p->per_ms = n > 0 && window_ms > 0 ? (double)n / (double)window_ms : 0;
    p->tokens = p->capacity;
    p->last_ms = mono_ms();
    p->waits = 0;
}

void pace_init(struct pace *p, int n, int64_t window_ms)
{
    pthread_mutex_lock(&lock);
    init_locked(p, n, window_ms);
    pthread_mutex_unlock(&lock);
}

static void refill(struct pace *p)
{
    int64_t now = mono_ms();
    p->tokens += (double)(now - p->last_ms) * p->per_ms;
    if (p->tokens > p->capacity)
        p->tokens = p->capacity;
    p->last_ms = now;
}

/* Takes a token if one is there; else returns how long to sleep before asking again. */
static long take_or_wait(struct pace *p, int *counted)
{
    pthread_mutex_lock(&lock);
    refill(p);
    long slice = 0;
    if (p->tokens >= 1) {
        p->tokens -= 1;
    } else {
        if (!*counted)
            p->waits++;
        *counted = 1;
        double need_ms = (1 - p->tokens) / p->per_ms;
        slice = need_ms > 100 ? 100 : (long)need_ms + 1;
    }
    pthread_mutex_unlock(&lock);
    return slice;
}

enum cb_status pace_wait(struct pace *p)
{
    if (p->capacity <= 0)
        return CB_OK;
    int counted = 0;
    for (long slice; (slice = take_or_wait(p, &counted)) > 0;) {
        if (http_stopped())
            return CB_ERR_STOPPED;
        struct timespec ts = {0, slice * 1000000L};
        nanosleep(&ts, NULL);
    }
    return CB_OK;
}

double pace_available(struct pace *p)
{
    if (p->capacity <= 0)
        return 1e9;
    pthread_mutex_lock(&lock);
    refill(p);
    double t = p->tokens;
    pthread_mutex_unlock(&lock);
    return t;
}

void pace_drain(struct pace *p)
{
    pthread_mutex_lock(&lock);
    refill(p);
    p->tokens = 0;
    pthread_mutex_unlock(&lock);
}

struct pace *pace_shared(const char *key, int n, int64_t window_ms)
{
    pthread_mutex_lock(&lock);
    struct shared *s = shared_list;
    while (s && strcmp(s->key, key) != 0)
        s = s->next;
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->key = xstrdup(key);
        init_locked(&s->p, n, window_ms);
        s->next = shared_list;
        shared_list = s;
    }
    pthread_mutex_unlock(&lock);
    return &s->p;
}

/* Gates have their own lock: a waiter sleeps on its gate's condition variable under it. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;

struct gate {
    char *key;
    int limit, used;
    unsigned long waits;
    pthread_cond_t freed;
    struct gate *next;
};
static struct gate *gate_list;

struct gate *gate_shared(const char *key, int limit)
{
    if (limit <= 0)
        return NULL;
    pthread_mutex_lock(&gate_lock);
    struct gate *g = gate_list;
    while (g && strcmp(g->key, key) != 0)
        g = g->next;
    if (!g) {
        g = xcalloc(1, sizeof(*g));
        g->key = xstrdup(key);
        g->limit = limit;
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&g->freed, &ca);
        pthread_condattr_destroy(&ca);
        g->next = gate_list;
        gate_list = g;
    }
    pthread_mutex_unlock(&gate_lock);
    return g;
}

enum cb_status gate_enter(struct gate *g)
{
    if (!g)
        return CB_OK;
    enum cb_status st = CB_OK;
    pthread_mutex_lock(&gate_lock);
    if (g->used >= g->limit)
        g->waits++;
    while (g->used >= g->limit) {
        if (http_stopped()) {
            st = CB_ERR_STOPPED;
            break;
        }
        /* in slices, so that a stop request is seen within 100 ms */
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 100 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->freed, &gate_lock, &until);
    }
    if (st == CB_OK)
        g->used++;
    pthread_mutex_unlock(&gate_lock);
    return st;
}

void gate_leave(struct gate *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&gate_lock);
    if (g->used > 0)
        g->used--;
    pthread_cond_signal(&g->freed);
    pthread_mutex_unlock(&gate_lock);
}

unsigned long gate_waits(struct gate *g)
{
    if (!g)
        return 0;
    pthread_mutex_lock(&gate_lock);
    unsigned long n = g->waits;
    pthread_mutex_unlock(&gate_lock);
    return n;
}

void pace_key(struct strbuf *out, const char *service, const char *secret, const char *what)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (const unsigned char *q = (const unsigned char *)(secret ? secret : ""); *q; q++)
        h = (h ^ *q) * 0x100000001b3ULL;
    strbuf_setf(out, "%s %016llx %s", service, (unsigned long long)h, what ? what : "");
}
