/*
 * Token buckets for client-side pacing. Time comes from CLOCK_MONOTONIC, so a wall-clock step
 * never releases a burst; sleeps are sliced so a stop request ends them promptly. It does not
 * know any service's limits: connectors configure one bucket per limit.
 */
#include "connectors/pace.h"

#include <time.h>

#include "connectors/http.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pace_init(struct pace *p, int n, int64_t window_ms)
{
    p->capacity = n > 0 ? n : 0;
    p->per_ms = n > 0 && window_ms > 0 ? (double)n / (double)window_ms : 0;
    p->tokens = p->capacity;
    p->last_ms = mono_ms();
    p->waits = 0;
}

static void refill(struct pace *p)
{
    int64_t now = mono_ms();
    p->tokens += (double)(now - p->last_ms) * p->per_ms;
    if (p->tokens > p->capacity)
        p->tokens = p->capacity;
    p->last_ms = now;
}

enum cb_status pace_wait(struct pace *p)
{
    if (p->capacity <= 0)
        return CB_OK;
    refill(p);
    if (p->tokens < 1)
        p->waits++;
    while (p->tokens < 1) {
        if (http_stopped())
            return CB_ERR_STOPPED;
        double need_ms = (1 - p->tokens) / p->per_ms;
        long slice = need_ms > 100 ? 100 : (long)need_ms + 1;
        struct timespec ts = {0, slice * 1000000L};
        nanosleep(&ts, NULL);
        refill(p);
    }
    p->tokens -= 1;
    return CB_OK;
}

double pace_available(struct pace *p)
{
    if (p->capacity <= 0)
        return 1e9;
    refill(p);
    return p->tokens;
}

void pace_drain(struct pace *p)
{
    refill(p);
    p->tokens = 0;
}
