/*
 * Shared pieces of the benchmarks: a Zoho CRM and a Jira Cloud (or Trello) simulator started on
 * free ports, a config in a scratch directory pointing one pair at them, the pair opened in this
 * process and kept open across cycles (as the daemon does), per-side request counts read from
 * the simulators' logs, peak RSS, and small JSON output helpers. Control calls go through
 * tests/unit/testutil.h (sim_ctl ends the program when one fails). Benchmarks only; never linked
 * into crmbridge.
 */
#ifndef CB_BENCHUTIL_H
#define CB_BENCHUTIL_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "cache/cache.h"
#include "core/config.h"
#include "sync/engine.h"
#include "tests/unit/testutil.h"

#define BENCH_PAIR "bench"

struct bench_env {
    struct sim sim[2]; /* indexed by enum side: zoho, jira (or trello) */
    int trello;        /* the tracker is a Trello board instead of Jira project SUP */
    char board[32];    /* its id */
    int interval_s;    /* the daemon's interval in the config */
    int raised;        /* request limits lifted (simulator, and the Trello client's pacing) */
    char *dir;         /* scratch directory (removed by bench_env_stop) */
    char conf_path[600];
    char state_dir[600];
    struct config *cfg;
    struct cache *cache;
    struct sync_pair *pair;
};

/* Makes the scratch directory, starts both simulators (Jira with rate limits raised so that
 * the benchmarks measure calls, not the simulated limiter) and writes the config with the
 * daemon interval interval_s and the pair's default overlap. Returns 0 on success; on failure
 * prints why and leaves nothing running. */
int bench_env_start(struct bench_env *e, int interval_s);
/* The same with tracker "jira" or "trello" (a fresh board with lists Inbox and Done, the
 * simulator's seeded key and token, and the client's pacing lifted in the config as well). */
int bench_env_start_tracker(struct bench_env *e, int interval_s, const char *tracker);
/* From here the real service's limits: the tracker simulator's defaults, and the config
 * rewritten without the lifted pacing (Trello: waits until the setup's requests have left the
 * simulator's 10 s window). Call with the pair closed; returns 0 when the config is written. */
int bench_real_limits(struct bench_env *e);
/* Loads the config, opens the cache and the pair (kept open until bench_env_close). 0 = ok. */
int bench_env_open(struct bench_env *e);
void bench_env_close(struct bench_env *e);
/* Closes, stops the simulators and removes the scratch directory. */
void bench_env_stop(struct bench_env *e);

/* Runs one cycle of the open pair; prints the error and returns -1 when the cycle fails. rep is
 * initialised here (caller releases). */
int bench_cycle(struct bench_env *e, struct sync_report *rep);

/* Moves both simulators' clocks forward by ms (time passing for records, not for us). */
void bench_advance_clocks(struct bench_env *e, int64_t ms);
/* Clears both simulators' request logs. */
void bench_clear_logs(struct bench_env *e);

/* API requests in side s's simulator log (control calls excluded), as {"total": n, "<kind>": n}
 * where kind is list, read, write, create, link, transition_get, transition, readback, search,
 * auth or meta (a Trello simulator's: list, create, write, readback or meta). Caller deletes. */
cJSON *bench_count_requests(const struct sim *s, enum side side);
/* Number stored under name in o (0 when absent). */
int bench_num(const cJSON *o, const char *name);

/* A "kB" line of /proc/self/status ("VmHWM" is the peak resident set size), or -1. */
long bench_status_kib(const char *field);
/* Wall clock in ms (CLOCK_REALTIME) and monotonic ms. */
int64_t bench_now_ms(void);
double bench_mono_ms(void);

/* Writes o to path as formatted JSON; returns 0 on success. */
int bench_write_json(const char *path, const cJSON *o);

#endif
