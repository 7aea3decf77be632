/*
 * Token buckets for client-side pacing. Time comes from CLOCK_MONOTONIC, so a wall-clock step
 * never releases a burst; sleeps are sliced so a stop request ends them promptly. It does not
 * know any service's limits: connectors configure one bucket per limit.
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

void pace_key(struct strbuf *out, const char *service, const char *secret, const char *what)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (const unsigned char *q = (const unsigned char *)(secret ? secret : ""); *q; q++)
        h = (h ^ *q) * 0x100000001b3ULL;
    strbuf_setf(out, "%s %016llx %s", service, (unsigned long long)h, what ? what : "");
}
