/*
 * `crmbridge daemon`: one thread per pair, each on its own interval, so a slow or failing
 * endpoint never stalls the others; a failing pair backs off (doubling, up to an hour) and says
 * why. Webhook hints from the listener wake a pair at once; polling stays the source of truth.
 * After a cycle it renews the pair's push channels (Zoho) that have less than a day left.
 * SIGTERM finishes in-flight writes and exits 0; SIGHUP reloads (a broken config keeps the old
 * one); a lock file keeps a second daemon off the state dir. It never touches the cache itself.
 */
#define LOG_MODULE "daemon"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/listener.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "sync/engine.h"

#define BACKOFF_MAX_MS 3600000
#define TICK_MS 250 /* how often an idle worker looks at the stop flag (set by a signal) */
#define RENEW_BEFORE_MS 86400000LL /* a push channel is renewed when less than a day is left */
#define CHANNEL_HOURS (7 * 24)     /* for this long (Zoho's maximum) */

/* What a pair has done since the daemon started (kept across reloads). */
struct pair_stats {
    unsigned long cycles;
    unsigned long read[2], created[2], updated[2];
    unsigned long conflicts, failed, skipped, postponed, hints;
    unsigned long errors[CB_ERR_INTERNAL + 1]; /* cycles that could not run, by class */
    unsigned long throttled;                   /* rate-limit answers (current session) */
    long waited_ms;                            /* time slept on rate limits (current session) */
    int64_t last_success_ms;                   /* wall clock */
    double last_duration_s;
};

struct daemon;

struct worker {
    struct daemon *d;
    const struct pair_conf *pc; /* in d->a->cfg, which outlives the thread */
    pthread_t th;
    /* guarded by d->lock */
    int hinted, quit, failures;
    int sweep; /* a delete webhook came: the next cycle sweeps linked ids */
    int64_t next_ms; /* monotonic */
    char last_error[256];
    struct pair_stats st;
};

struct daemon {
    struct app *a;
    const char *only;       /* --pair */
    unsigned shard, shards; /* --shard i/N; shards == 0: all */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct worker *w;
    size_t n;
    struct listener *lst;
    char **secrets; /* webhook secrets resolved for the routes */
    size_t n_secrets;
    int stopping;
    int64_t started_ms;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a: stable across runs and machines, so a pair keeps its shard. */
static uint32_t pair_hash(const char *name)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static int selected(const struct daemon *d, const struct pair_conf *pc)
{
    if (d->only && !str_eq(d->only, pc->name))
        return 0;
    return !d->shards || pair_hash(pc->name) % d->shards == d->shard;
}

/* ------------------------------------------------------------------ one pair's thread */

static void set_error(struct worker *w, enum cb_status st, const char *msg)
{
    snprintf(w->last_error, sizeof(w->last_error), "%s", msg && *msg ? msg : cb_status_str(st));
    w->st.errors[st]++;
}

/* Rate-limit figures the engine stored with the cycle report (both sides summed). */
static void read_budget(struct app *a, const char *pair, unsigned long *n_throttled,
                        long *waited_ms)
{
    struct cache_txn *t;
    struct strbuf key = STRBUF_INIT, err = STRBUF_INIT;
    cJSON *rep = NULL;
    (void)strbuf_addf(&key, "report:%s", pair);
    if (cache_txn_begin(a->cache, 1, &t, &err) == CB_OK) {
        (void)cache_meta_get(t, key.buf, &rep);
        cache_txn_abort(t);
    }
    static const char *const sides[2] = {"crm", "tracker"};
    unsigned long throttled = 0;
    double waited = 0;
    for (int s = 0; s < 2; s++) {
        const cJSON *b = cJSON_GetObjectItem(cJSON_GetObjectItem(rep, sides[s]), "budget");
        const cJSON *th = cJSON_GetObjectItem(b, "throttled"),
                    *wm = cJSON_GetObjectItem(b, "waited_ms");
        throttled += cJSON_IsNumber(th) ? (unsigned long)th->valuedouble : 0;
        waited += cJSON_IsNumber(wm) ? wm->valuedouble : 0;
    }
    *n_throttled = throttled;
    *waited_ms = (long)waited;
    cJSON_Delete(rep);
    strbuf_release(&key);
    strbuf_release(&err);
}

static void log_cycle(const struct pair_conf *pc, const struct sync_report *rep)
{
    struct strbuf line = STRBUF_INIT;
    cli_format_report(pc->name, rep, &line);
    int idle = !rep->created[0] && !rep->created[1] && !rep->updated[0] && !rep->updated[1] &&
               !rep->linked && !rep->conflicts && !rep->problems.len;
    if (idle)
        log_debug("%s", line.buf);
    else
        log_info("%s", line.buf);
    strbuf_release(&line);
    int shown = 0;
    for (const char *p = rep->problems.buf; *p && shown < 20; shown++) {
        size_t n = strcspn(p, "\n");
        log_warn("pair '%s': %.*s", pc->name, (int)n, p);
        p += n + (p[n] == '\n');
    }
}

/* Adds what a cycle did to the pair's counters (also one that failed half-way: its writes
 * happened). Called with d->lock held. */
static void count_cycle(struct pair_stats *st, const struct sync_report *rep)
{
    st->cycles++;
    for (int s = 0; s < 2; s++) {
        st->read[s] += (unsigned long)rep->read[s];
        st->created[s] += (unsigned long)rep->created[s];
        st->updated[s] += (unsigned long)rep->updated[s];
    }
    st->conflicts += (unsigned long)rep->conflicts;
    st->failed += (unsigned long)rep->failed;
    st->skipped += (unsigned long)rep->skipped;
    st->postponed += (unsigned long)rep->postponed;
}

/* Schedules the next cycle: the interval, doubled per consecutive failure up to an hour. */
static void schedule(struct worker *w, int failed)
{
    int64_t wait = (int64_t)w->pc->interval_s * 1000;
    w->failures = failed ? w->failures + 1 : 0;
    for (int k = 1; k < w->failures && wait < BACKOFF_MAX_MS; k++)
        wait *= 2;
    if (wait > BACKOFF_MAX_MS && w->failures)
        wait = BACKOFF_MAX_MS;
    w->next_ms = mono_ms() + wait;
    if (failed)
        log_warn("pair '%s' failed (%s); next attempt in %lld s", w->pc->name, w->last_error,
                 (long long)(wait / 1000));
}

/* Renews the pair's push channels (registered by `webhooks register`, expiry in the cache)
 * that expire within a day; a failure is logged and retried after the next cycle. */
static void renew_channels(const struct worker *w)
{
    struct app *a = w->d->a;
    for (int s = 0; s < 2; s++) {
        int64_t exp = cli_watch_expiry(a, w->pc->name, (enum side)s);
        if (!exp || exp - cbtime_now_ms() >= RENEW_BEFORE_MS)
            continue;
        char *secret = NULL;
        struct strbuf info = STRBUF_INIT, err = STRBUF_INIT;
        enum cb_status st = conf_secret(&a->cfg->webhooks, "secret", &secret, &err);
        if (st == CB_OK)
            st = cli_watch_side(a, w->pc, (enum side)s, secret, CHANNEL_HOURS, &info, &err);
        if (st == CB_OK)
            log_info("pair '%s': renewed its %s channel: %s", w->pc->name,
                     side_name((enum side)s), info.buf);
        else
            log_warn("pair '%s': cannot renew its %s channel: %s", w->pc->name,
                     side_name((enum side)s), err.buf);
        free(secret);
        strbuf_release(&info);
        strbuf_release(&err);
    }
}

/* Runs one cycle of w's pair (opening it first if needed) without holding the lock. */
static void run_one(struct worker *w, struct sync_pair **p, int sweep)
{
    struct daemon *d = w->d;
    struct strbuf err = STRBUF_INIT;
    struct sync_report rep;
    sync_report_init(&rep);
    enum cb_status st = CB_OK;
    int64_t t0 = mono_ms();
    if (!*p)
        st = sync_pair_open(d->a->cfg, w->pc, d->a->cache, p, &err);
    int ran = st == CB_OK;
    if (ran && sweep)
        sync_pair_sweep_soon(*p);
    if (ran)
        st = sync_pair_cycle(*p, &rep, &err);
    if (st == CB_OK || st == CB_ERR_STOPPED)
        log_cycle(w->pc, &rep);
    unsigned long throttled = 0;
    long waited_ms = 0;
    if (*p)
        read_budget(d->a, w->pc->name, &throttled, &waited_ms);
    if (st == CB_OK)
        renew_channels(w);
    pthread_mutex_lock(&d->lock);
    if (ran)
        count_cycle(&w->st, &rep);
    w->st.throttled = throttled;
    w->st.waited_ms = waited_ms;
    w->st.last_duration_s = (double)(mono_ms() - t0) / 1000.0;
    if (st == CB_OK) {
        w->st.last_success_ms = cbtime_now_ms();
        w->last_error[0] = '\0';
    } else if (st != CB_ERR_STOPPED) {
        set_error(w, st, err.buf);
    }
    schedule(w, st != CB_OK && st != CB_ERR_STOPPED);
    strbuf_release(&err);
    sync_report_release(&rep);
}

/* Due: the interval has passed, or a hint came and the pair is not backing off. */
static int due(const struct worker *w)
{
    return mono_ms() >= w->next_ms || (w->hinted && !w->failures);
}

static void wait_tick(struct daemon *d, const struct worker *w)
{
    int64_t until = mono_ms() + TICK_MS;
    if (w->next_ms < until)
        until = w->next_ms;
    struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000L};
    pthread_cond_timedwait(&d->wake, &d->lock, &ts);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct daemon *d = w->d;
    struct sync_pair *p = NULL;
    pthread_mutex_lock(&d->lock);
    while (!w->quit && !sync_stop_requested()) {
        if (!due(w)) {
            wait_tick(d, w);
            continue;
        }
        w->hinted = 0;
        int sweep = w->sweep;
        w->sweep = 0;
        pthread_mutex_unlock(&d->lock);
        run_one(w, &p, sweep); /* returns with the lock held */
    }
    pthread_mutex_unlock(&d->lock);
    sync_pair_close(p);
    return NULL;
}

/* ------------------------------------------------------------------ the set of workers */

static const struct pair_stats *old_stats(const struct worker *old, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (str_eq(old[i].pc->name, name))
            return &old[i].st;
    return NULL;
}

/* Starts a thread per selected pair of the current config; counters carry over by name. */
static void start_workers(struct daemon *d, const struct worker *old, size_t n_old)
{
    const struct config *cfg = d->a->cfg;
    struct worker *ws = xcalloc(cfg->n_pairs + 1, sizeof(*ws));
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_pairs; i++) {
        if (!selected(d, &cfg->pairs[i]))
            continue;
        struct worker *w = &ws[n++];
        w->d = d;
        w->pc = &cfg->pairs[i];
        w->next_ms = mono_ms();
        const struct pair_stats *st = old_stats(old, n_old, w->pc->name);
        if (st)
            w->st = *st;
    }
    pthread_mutex_lock(&d->lock); /* the listener's thread reads the set */
    d->w = ws;
    d->n = n;
    pthread_mutex_unlock(&d->lock);
    for (size_t i = 0; i < n; i++)
        pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
}

/* Asks every worker to quit after its cycle, waits for them; returns the old array. */
static struct worker *stop_workers(struct daemon *d, size_t *n)
{
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->n; i++)
        d->w[i].quit = 1;
    pthread_cond_broadcast(&d->wake);
    pthread_mutex_unlock(&d->lock);
    for (size_t i = 0; i < d->n; i++)
        pthread_join(d->w[i].th, NULL);
    pthread_mutex_lock(&d->lock);
    struct worker *old = d->w;
    *n = d->n;
    d->w = NULL;
    d->n = 0;
    pthread_mutex_unlock(&d->lock);
    return old;
}

/* ------------------------------------------------------------------ listener callbacks */

static int uses_endpoint(const struct pair_conf *pc, const char *endpoint)
{
    return str_eq(pc->side[0].endpoint, endpoint) || str_eq(pc->side[1].endpoint, endpoint);
}

static void on_hint(void *arg, const char *endpoint, const char *what)
{
    struct daemon *d = arg;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->n; i++) {
        if (!uses_endpoint(d->w[i].pc, endpoint))
            continue;
        d->w[i].hinted = 1;
        d->w[i].st.hints++;
        /* a deletion never shows in a listing: the woken cycle reads the linked ids */
        if (what && (strstr(what, "deleted") || !strncmp(what, "deleteCard", 10) ||
                     !strncmp(what, "delete", 6)))
            d->w[i].sweep = 1;
        log_info("webhook from '%s' (%s): pair '%s' runs now%s", endpoint, what, d->w[i].pc->name,
                 d->w[i].failures ? " (after its backoff)" : "");
    }
    pthread_cond_broadcast(&d->wake);
    pthread_mutex_unlock(&d->lock);
}

/* Pair names go into label values: escape what the text format needs escaped. */
static void add_label(struct strbuf *out, const char *name)
{
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\')
            (void)strbuf_addch(out, '\\');
        if (*p == '\n')
            (void)strbuf_adds(out, "\\n");
        else
            (void)strbuf_addch(out, *p);
    }
}

static void metric_head(struct strbuf *out, const char *name, const char *type, const char *help)
{
    (void)strbuf_addf(out, "# HELP crmbridge_%s %s\n# TYPE crmbridge_%s %s\n", name, help, name,
                      type);
}

/* One sample per pair: crmbridge_NAME{pair="p"EXTRA} VALUE. */
static void metric_pair(struct strbuf *out, const char *name, const char *pair, const char *extra,
                        double v)
{
    (void)strbuf_addf(out, "crmbridge_%s{pair=\"", name);
    add_label(out, pair);
    (void)strbuf_addf(out, "\"%s} %.15g\n", extra ? extra : "", v);
}

static const char *const side_label[2] = {",side=\"crm\"", ",side=\"tracker\""};

static void metrics_records(struct daemon *d, struct strbuf *out)
{
    metric_head(out, "records_read_total", "counter", "Records listed as changed, per side.");
    for (size_t i = 0; i < d->n; i++)
        for (int s = 0; s < 2; s++)
            metric_pair(out, "records_read_total", d->w[i].pc->name, side_label[s],
                        (double)d->w[i].st.read[s]);
    metric_head(out, "records_written_total", "counter", "Records created or updated, per side.");
    for (size_t i = 0; i < d->n; i++)
        for (int s = 0; s < 2; s++) {
            struct strbuf l = STRBUF_INIT;
            (void)strbuf_addf(&l, "%s,op=\"create\"", side_label[s]);
            metric_pair(out, "records_written_total", d->w[i].pc->name, l.buf,
                        (double)d->w[i].st.created[s]);
            strbuf_reset(&l);
            (void)strbuf_addf(&l, "%s,op=\"update\"", side_label[s]);
            metric_pair(out, "records_written_total", d->w[i].pc->name, l.buf,
                        (double)d->w[i].st.updated[s]);
            strbuf_release(&l);
        }
}

/* Label values for the failure classes of enum cb_status. */
static const char *const class_label[CB_ERR_INTERNAL + 1] = {
    "ok",      "temporary", "rate_limited", "auth",     "final",   "not_found", "parse",
    "too_big", "config",    "cache",        "conflict", "stopped", "internal"};

static void metrics_errors(struct daemon *d, struct strbuf *out)
{
    metric_head(out, "cycle_errors_total", "counter", "Cycles that could not run, by class.");
    for (size_t i = 0; i < d->n; i++)
        for (int c = 1; c <= CB_ERR_INTERNAL; c++) {
            if (!d->w[i].st.errors[c])
                continue;
            struct strbuf l = STRBUF_INIT;
            (void)strbuf_addf(&l, ",class=\"%s\"", class_label[c]);
            metric_pair(out, "cycle_errors_total", d->w[i].pc->name, l.buf,
                        (double)d->w[i].st.errors[c]);
            strbuf_release(&l);
        }
    metric_head(out, "record_errors_total", "counter",
                "Records failed, skipped or postponed by cycles.");
    for (size_t i = 0; i < d->n; i++) {
        const struct pair_stats *st = &d->w[i].st;
        metric_pair(out, "record_errors_total", d->w[i].pc->name, ",outcome=\"failed\"",
                    (double)st->failed);
        metric_pair(out, "record_errors_total", d->w[i].pc->name, ",outcome=\"skipped\"",
                    (double)st->skipped);
        metric_pair(out, "record_errors_total", d->w[i].pc->name, ",outcome=\"postponed\"",
                    (double)st->postponed);
    }
}

/* A gauge or counter with one sample per pair, taken from the pair's stats by get. */
static void metrics_simple(struct daemon *d, struct strbuf *out, const char *name, const char *type,
                           const char *help, double (*get)(const struct worker *w))
{
    metric_head(out, name, type, help);
    for (size_t i = 0; i < d->n; i++)
        metric_pair(out, name, d->w[i].pc->name, NULL, get(&d->w[i]));
}

static double get_cycles(const struct worker *w)
{
    return (double)w->st.cycles;
}
static double get_conflicts(const struct worker *w)
{
    return (double)w->st.conflicts;
}
static double get_hints(const struct worker *w)
{
    return (double)w->st.hints;
}
static double get_throttled(const struct worker *w)
{
    return (double)w->st.throttled;
}
static double get_waited(const struct worker *w)
{
    return (double)w->st.waited_ms / 1000.0;
}
static double get_failures(const struct worker *w)
{
    return (double)w->failures;
}
static double get_duration(const struct worker *w)
{
    return w->st.last_duration_s;
}
static double get_last_ok(const struct worker *w)
{
    return (double)w->st.last_success_ms / 1000.0;
}

static void on_metrics(void *arg, struct strbuf *out)
{
    struct daemon *d = arg;
    pthread_mutex_lock(&d->lock);
    metric_head(out, "up", "gauge", "1 while the daemon runs.");
    (void)strbuf_addf(out, "crmbridge_up 1\n");
    metrics_simple(d, out, "cycles_total", "counter", "Sync cycles run.", get_cycles);
    metrics_records(d, out);
    metrics_simple(d, out, "conflicts_total", "counter", "Field conflicts held for a person.",
                   get_conflicts);
    metrics_errors(d, out);
    metrics_simple(d, out, "rate_limit_waits_total", "counter",
                   "Rate-limit answers (429) received by the pair's clients since it was opened.",
                   get_throttled);
    metrics_simple(d, out, "rate_limit_wait_seconds_total", "counter",
                   "Time slept on rate limits by the pair's clients since it was opened.",
                   get_waited);
    metrics_simple(d, out, "webhook_hints_total", "counter", "Webhook hints that woke the pair.",
                   get_hints);
    metrics_simple(d, out, "last_success_timestamp_seconds", "gauge",
                   "End of the last cycle that ran to completion (0: none yet).", get_last_ok);
    metrics_simple(d, out, "last_cycle_duration_seconds", "gauge", "Length of the last cycle.",
                   get_duration);
    metrics_simple(d, out, "consecutive_failures", "gauge",
                   "Failed cycles in a row (the pair backs off while > 0).", get_failures);
    pthread_mutex_unlock(&d->lock);
}

static int on_health(void *arg, struct strbuf *out)
{
    struct daemon *d = arg;
    pthread_mutex_lock(&d->lock);
    int stopping = d->stopping || sync_stop_requested();
    (void)strbuf_adds(out, stopping ? "stopping\n" : "ok\n");
    for (size_t i = 0; i < d->n; i++) {
        const struct worker *w = &d->w[i];
        if (w->failures)
            (void)strbuf_addf(out, "pair '%s': backing off after %d failure(s): %s\n", w->pc->name,
                              w->failures, w->last_error);
        else
            (void)strbuf_addf(out, "pair '%s': %s\n", w->pc->name,
                              w->st.cycles ? "ok" : "starting");
    }
    pthread_mutex_unlock(&d->lock);
    return stopping ? 503 : 200;
}

/* ------------------------------------------------------------------ webhook settings */

static const char *const webhook_keys[] = {"listen",        "public_url",     "secret",
                                           "trello_secret", "max_body_bytes", NULL};

static void free_secrets(char **s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

/* The callback URL registered for endpoint: public_url (default http://LISTEN) + /hooks/NAME. */
void cli_webhook_url(const struct config *cfg, const char *endpoint, struct strbuf *out)
{
    const char *pub = conf_get(&cfg->webhooks, "public_url");
    strbuf_reset(out);
    if (pub)
        (void)strbuf_adds(out, pub);
    else
        (void)strbuf_addf(out, "http://%s", conf_get(&cfg->webhooks, "listen"));
    while (out->len && out->buf[out->len - 1] == '/')
        out->buf[--out->len] = '\0';
    (void)strbuf_addf(out, "/hooks/%s", endpoint);
}

/* Validates the webhooks group and resolves its secrets into routes (one per endpoint whose
 * service sends webhooks). Returns CB_ERR_CONFIG with every problem in err. */
static enum cb_status build_routes(const struct config *cfg, struct listener_route **routes,
                                   char ***secrets, size_t *n, struct strbuf *err)
{
    const struct conf_group *g = &cfg->webhooks;
    *routes = xcalloc(cfg->n_endpoints + 1, sizeof(**routes));
    *secrets = xcalloc(2 * cfg->n_endpoints + 2, sizeof(**secrets));
    *n = 0;
    int bad = conf_unknown_keys(g, webhook_keys, NULL, "webhooks", err) > 0;
    char *secret = NULL, *trello = NULL;
    if (conf_secret(g, "secret", &secret, err) != CB_OK)
        bad = 1;
    if (conf_get(g, "trello_secret") && conf_secret(g, "trello_secret", &trello, err) != CB_OK)
        bad = 1;
    (*secrets)[0] = secret;
    (*secrets)[1] = trello;
    struct strbuf url = STRBUF_INIT;
    for (size_t i = 0; i < cfg->n_endpoints && !bad; i++) {
        const struct endpoint_conf *ep = &cfg->endpoints[i];
        enum hook_kind k = hooks_kind(ep->type);
        if (k == HOOK_NONE)
            continue;
        cli_webhook_url(cfg, ep->name, &url);
        (*secrets)[2 + i] = strbuf_detach(&url);
        const char *check = k == HOOK_TRELLO && trello ? trello : secret;
        if (k == HOOK_ZOHO) { /* channels echo a token derived from the secret */
            cli_channel_token(secret, ep->name, &url);
            check = (*secrets)[2 + cfg->n_endpoints + i] = strbuf_detach(&url);
        }
        (*routes)[*n] = (struct listener_route){
            .endpoint = ep->name, .kind = k, .secret = check, .callback_url = (*secrets)[2 + i]};
        (*n)++;
    }
    strbuf_release(&url);
    return bad ? CB_ERR_CONFIG : CB_OK;
}

/* Points the listener at cfg's endpoints (starting it on first use). Returns CB_ERR_CONFIG
 * when the webhooks group is wrong; the running routes then stay. */
static enum cb_status setup_listener(struct daemon *d, const struct config *cfg, struct strbuf *err)
{
    if (!cfg->webhooks.n_kv)
        return CB_OK;
    struct listener_route *routes = NULL;
    char **secrets = NULL;
    size_t n = 0;
    enum cb_status st = build_routes(cfg, &routes, &secrets, &n, err);
    const char *listen = conf_get(&cfg->webhooks, "listen");
    if (st == CB_OK && !listen) {
        conf_error(&cfg->webhooks, "listen", err, "'webhooks' needs 'listen = \"HOST:PORT\"'");
        st = CB_ERR_CONFIG;
    }
    if (st == CB_OK && !d->lst) {
        const char *mb = conf_get(&cfg->webhooks, "max_body_bytes");
        size_t max_body = mb ? (size_t)strtoul(mb, NULL, 10) : 1024 * 1024;
        struct listener_ops ops = {on_hint, on_metrics, on_health, d};
        st = listener_start(listen, max_body, &ops, &d->lst, err);
        if (st == CB_OK)
            log_info("listening on %s (port %d): /hooks/<endpoint>, /metrics, /healthz", listen,
                     listener_port(d->lst));
    }
    if (st == CB_OK) {
        listener_set_routes(d->lst, routes, n);
        free_secrets(d->secrets, d->n_secrets);
        d->secrets = secrets;
        d->n_secrets = 2 * cfg->n_endpoints + 2;
    } else {
        free_secrets(secrets, 2 * cfg->n_endpoints + 2);
    }
    free(routes);
    return st;
}

/* ------------------------------------------------------------------ the main thread */

/* Takes state_dir/daemon.lock (flock, released by the kernel when the process ends). Returns the
 * descriptor, or -1 after printing why. */
static int take_lock(const char *state_dir)
{
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_addf(&path, "%s/daemon.lock", state_dir);
    int fd = open(path.buf, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        cli_error("cannot open lock file '%s': %s", path.buf, strerror(errno));
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t r = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[r > 0 ? r : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        cli_error("another crmbridge daemon%s%s%s already runs on state dir '%s' (lock '%s'); "
                  "stop it or give this one its own state_dir",
                  *pid ? " (pid " : "", pid, *pid ? ")" : "", state_dir, path.buf);
        close(fd);
        fd = -1;
    } else {
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
            log_warn("cannot write the pid into '%s'", path.buf);
    }
    strbuf_release(&path);
    return fd;
}

/* Loads and checks the config file again; NULL (and a log line) when it is broken. */
static struct config *load_fresh(struct app *a)
{
    struct config *fresh = NULL;
    struct strbuf err = STRBUF_INIT;
    int bad = 0;
    if (config_load(a->config_path, &fresh, &err) == CB_OK)
        for (size_t i = 0; i < fresh->n_pairs; i++)
            bad |= sync_check_pair_config(fresh, &fresh->pairs[i], &err) != CB_OK;
    if (fresh && bad) {
        config_free(fresh);
        fresh = NULL;
    }
    if (!fresh) {
        strbuf_trim_end(&err);
        log_error("cannot reload '%s', keeping the running config: %s", a->config_path, err.buf);
    }
    strbuf_release(&err);
    return fresh;
}

static void reload(struct daemon *d)
{
    struct config *fresh = load_fresh(d->a);
    if (!fresh)
        return;
    struct strbuf err = STRBUF_INIT;
    if (setup_listener(d, fresh, &err) != CB_OK) {
        strbuf_trim_end(&err);
        log_error("cannot reload '%s', keeping the running config: %s", d->a->config_path, err.buf);
        strbuf_release(&err);
        config_free(fresh);
        return;
    }
    strbuf_release(&err);
    if (!str_eq(fresh->state_dir, d->a->cfg->state_dir))
        log_warn("state_dir changes take effect after a restart");
    if (d->lst &&
        !str_eq(conf_get(&fresh->webhooks, "listen"), conf_get(&d->a->cfg->webhooks, "listen")))
        log_warn("webhooks.listen changes take effect after a restart");
    size_t n_old;
    struct worker *old = stop_workers(d, &n_old);
    struct config *stale = d->a->cfg; /* the old workers' names point into it */
    d->a->cfg = fresh;
    start_workers(d, old, n_old);
    free(old);
    config_free(stale);
    log_info("reloaded '%s': %zu pair(s) in this daemon", d->a->config_path, d->n);
}

static int parse_shard(const char *s, struct daemon *d)
{
    unsigned i, n;
    char extra;
    if (sscanf(s, "%u/%u%c", &i, &n, &extra) != 2 || n == 0 || i >= n) {
        cli_error("bad --shard '%s': want I/N with 0 <= I < N, e.g. 0/3", s);
        return -1;
    }
    d->shard = i;
    d->shards = n;
    return 0;
}

/* Options and the config's log settings; returns an exit code. */
static int setup(struct daemon *d, int argc, char **argv)
{
    struct app *a = d->a;
    const char *shard = cli_opt(argc, argv, "--shard");
    if (shard && parse_shard(shard, d) != 0)
        return EXIT_USAGE;
    int rc = cli_load_pair_opt(a, argc, argv, 1, &d->only);
    if (rc != EXIT_OK)
        return rc;
    if (cli_flag(argc, argv, "--log-json") || str_eq(a->cfg->log_format, "json"))
        log_set_format(LOG_FORMAT_JSON);
    if (a->verbose == 0 && !a->cfg->log_level)
        log_set_level(LOG_INFO);
    return EXIT_OK;
}

static void run(struct daemon *d)
{
    start_workers(d, NULL, 0);
    log_info("started with %zu of %zu pair(s), state in '%s'", d->n, d->a->cfg->n_pairs,
             d->a->cfg->state_dir);
    while (!sync_stop_requested()) {
        if (cli_reload_requested())
            reload(d);
        struct timespec ts = {0, TICK_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    log_info("stopping: in-flight writes finish first");
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    pthread_mutex_unlock(&d->lock);
    size_t n;
    free(stop_workers(d, &n));
}

int cmd_daemon(struct app *a, int argc, char **argv)
{
    struct daemon d = {.a = a, .started_ms = cbtime_now_ms()};
    int rc = setup(&d, argc, argv);
    if (rc != EXIT_OK)
        return rc;
    int lock = take_lock(a->cfg->state_dir);
    if (lock < 0)
        return EXIT_FATAL;
    pthread_mutex_init(&d.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d.wake, &ca);
    pthread_condattr_destroy(&ca);
    cli_install_signals();
    struct strbuf err = STRBUF_INIT;
    if (setup_listener(&d, a->cfg, &err) != CB_OK) {
        strbuf_trim_end(&err);
        cli_error("%s", err.buf);
        rc = EXIT_USAGE;
    } else {
        run(&d);
        log_info("stopped");
    }
    strbuf_release(&err);
    listener_stop(d.lst);
    free_secrets(d.secrets, d.n_secrets);
    pthread_cond_destroy(&d.wake);
    pthread_mutex_destroy(&d.lock);
    close(lock);
    return rc;
}
