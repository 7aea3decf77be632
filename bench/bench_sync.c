/*
 * Calls per change and propagation latency, against the Zoho CRM and Jira simulators. One pair
 * is opened in this process and kept open across cycles, as the daemon keeps it. N cases are
 * linked by a real initial sync; then each measured cycle's requests per side (from the
 * simulators' logs, checked against http_total_requests()) are divided by the fewest the APIs
 * allow. Latency runs the real `crmbridge daemon` binary with interval = 1 s. With --hooks it
 * skips the calls phases and measures the daemon woken by webhooks instead ("hooks" in the
 * JSON): interval = 1 h, the service limits back at their defaults, the Zoho channel and the
 * Jira (or, with --tracker trello, the Trello board) webhook registered by `crmbridge webhooks
 * register`. Writes JSON. It changes no product code and judges no target: bench/report.py does.
 */
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bench/benchutil.h"
#include "core/log.h"
#include "core/strbuf.h"

#define ZOHO_PAGE 200   /* records per Zoho list page */
#define ZOHO_BATCH 100  /* records per Zoho write */
#define JIRA_PAGE 100   /* issues per Jira search page */
#define FIXED 260       /* cases seeded with known values, used by the phases */
#define PACER 0         /* fixed case edited between phases to move both cursors */
#define CRM_SET 1       /* fixed cases 1..100 are edited on the CRM side */
#define TRACKER_SET 101 /* fixed cases 101..200 are edited on the tracker side */
#define STATUS_SET 201  /* fixed cases 201..210 change status on the CRM side */
#define LATENCY_SET 211 /* fixed cases 211.. take the latency edits */
#define MAX_EDITS (FIXED - LATENCY_SET)
#define INTERVAL_S 1          /* the daemon's interval in the latency run */
#define AFTER_LOAD_PAUSE_MS 3000 /* past the listing margin (2 s), as a daemon's interval is */
#define HOOKS_INTERVAL_S 3600 /* with --hooks: only a webhook explains a fast propagation */
#define HOOKS_SECRET "bench-webhook-secret"
#define HOOKS_SPREAD_MS 500 /* with --hooks: edits come 0 to 500 ms after the last arrived */
#define TRELLO_APP_SECRET "sim-trello-app-secret" /* the Trello simulator's app secret */

struct fixed {
    char *zoho_id, *jira_id, *jira_key; /* with a Trello tracker: the card's id and shortLink */
};

struct bench {
    struct bench_env env;
    struct fixed fx[FIXED];
    int n;
    int edits;
    int phase;
    int hooks;           /* --hooks: the webhook run, not calls per change and polling latency */
    int port;            /* the daemon's listener (webhook run) */
    int requests[2];     /* API requests per side during the latency run */
    int spread_ms;       /* an edit comes 0 to spread_ms after the last one arrived */
    const char *tracker; /* "jira", or "trello" (webhook run only) */
    cJSON *out;
};

/* ---------------------------------------------------------------- seeding and initial sync */

static void seed(struct bench *b)
{
    struct strbuf body = STRBUF_INIT;
    (void)strbuf_adds(&body, "{\"module\":\"Cases\",\"records\":[");
    for (int i = 0; i < FIXED; i++)
        (void)strbuf_addf(&body,
                          "%s{\"Subject\":\"Bench case %d\",\"Status\":\"New\",\"Priority\":"
                          "\"Medium\",\"Description\":\"Customer asks for this since the last "
                          "update.\\n\\n* keep the audit trail\\n* before the quarter closes\"}",
                          i ? "," : "", i);
    (void)strbuf_adds(&body, "]}");
    cJSON *r = sim_ctl(&b->env.sim[SIDE_CRM], "POST", "/_sim/seed", "%s", body.buf);
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(r, "ids");
    for (int i = 0; i < FIXED; i++)
        b->fx[i].zoho_id = xstrdup(cJSON_GetStringValue(cJSON_GetArrayItem(ids, i)));
    cJSON_Delete(r);
    strbuf_release(&body);
    for (int left = b->n - FIXED; left > 0; left -= 2000)
        cJSON_Delete(sim_ctl(&b->env.sim[SIDE_CRM], "POST", "/_sim/seed",
                             "{\"module\":\"Cases\",\"count\":%d}", left < 2000 ? left : 2000));
}

static cJSON *side_counts(struct bench *b)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "crm", bench_count_requests(&b->env.sim[SIDE_CRM], SIDE_CRM));
    cJSON_AddItemToObject(o, "tracker",
                          bench_count_requests(&b->env.sim[SIDE_TRACKER], SIDE_TRACKER));
    return o;
}

static int initial_sync(struct bench *b)
{
    bench_clear_logs(&b->env);
    double t0 = bench_mono_ms();
    int created = 0, cycles = 0;
    unsigned long http = 0;
    /* one cycle creates everything unless a create had to wait (rate limit, search lag) */
    for (int again = 1; again && cycles < 5; cycles++) {
        struct sync_report rep;
        int rc = bench_cycle(&b->env, &rep);
        created += rep.created[SIDE_TRACKER];
        http += rep.requests;
        again = rep.postponed > 0;
        sync_report_release(&rep);
        if (rc != 0)
            return -1;
    }
    cJSON *o = cJSON_AddObjectToObject(b->out, "initial_sync");
    cJSON_AddNumberToObject(o, "records", b->n);
    cJSON_AddNumberToObject(o, "created", created);
    cJSON_AddNumberToObject(o, "cycles", cycles);
    cJSON_AddNumberToObject(o, "seconds", (bench_mono_ms() - t0) / 1000.0);
    cJSON_AddNumberToObject(o, "http_total", (double)http);
    cJSON_AddItemToObject(o, "requests", side_counts(b));
    cJSON_AddNumberToObject(o, "peak_rss_kib", (double)bench_status_kib("VmHWM"));
    if (created != b->n) {
        fprintf(stderr, "bench: cannot link every case: the initial sync created %d of %d issues\n",
                created, b->n);
        return -1;
    }
    return 0;
}

static int load_links(struct bench *b)
{
    struct cache_txn *t;
    struct strbuf err = STRBUF_INIT;
    if (cache_txn_begin(b->env.cache, 1, &t, &err) != CB_OK) {
        fprintf(stderr, "bench: cannot read the cache: %s\n", err.buf);
        strbuf_release(&err);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < FIXED && rc == 0; i++) {
        struct link l = {0};
        if (cache_link_find(t, BENCH_PAIR, SIDE_CRM, b->fx[i].zoho_id, &l) != CB_OK ||
            !l.remote[SIDE_TRACKER] || !l.key[SIDE_TRACKER]) {
            fprintf(stderr, "bench: cannot find the link of case '%s'\n", b->fx[i].zoho_id);
            rc = -1;
        } else {
            b->fx[i].jira_id = xstrdup(l.remote[SIDE_TRACKER]);
            b->fx[i].jira_key = xstrdup(l.key[SIDE_TRACKER]);
        }
        link_release(&l);
    }
    cache_txn_abort(t);
    strbuf_release(&err);
    return rc;
}

/* ---------------------------------------------------------------- edits as a person makes them */

static void edit_crm(struct bench *b, int i, const char *field, const char *value)
{
    cJSON_Delete(sim_ctl(&b->env.sim[SIDE_CRM], "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"%s\":\"%s\"},"
                         "\"user\":\"Li Wei\"}",
                         b->fx[i].zoho_id, field, value));
}

static void edit_tracker(struct bench *b, int i, const char *value)
{
    if (b->env.trello) {
        cJSON_Delete(sim_ctl(&b->env.sim[SIDE_TRACKER], "POST", "/_sim/edit",
                             "{\"card\":\"%s\",\"fields\":{\"name\":\"%s\"},"
                             "\"user\":\"Mia Krystof\"}",
                             b->fx[i].jira_id, value));
        return;
    }
    cJSON_Delete(sim_ctl(&b->env.sim[SIDE_TRACKER], "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"summary\":\"%s\"},"
                         "\"user\":\"Mia Krystof\"}",
                         b->fx[i].jira_key, value));
}

static void title(char *buf, size_t n, int phase, int i, const char *side)
{
    snprintf(buf, n, "Bench case %d, %s edit in phase %d", i, side, phase);
}

/* ---------------------------------------------------------------- calls per change */

/* One measured situation: kz cases edited on the CRM side, kt issues on the tracker side;
 * status: the CRM edits change Status (one Jira transition each) instead of the title. */
struct phase {
    const char *name;
    int kz, kt, status;
};

static int pages(int n, int per)
{
    return n <= 0 ? 1 : (n + per - 1) / per;
}

static int batches(int n, int per)
{
    return (n + per - 1) / per;
}

/* The fewest requests the two APIs allow for ph: list pages for what changed on each side,
 * plus the writes (Zoho: 100 records per request; Jira: one PUT per issue, or the transition
 * POSTs a status change needs: 1 here, To Do -> In Progress). The pair syncs comments: Zoho
 * lists notes apart from their records (a new note leaves the case's Modified_Time alone), so
 * each cycle also needs one page of the notes modified since its cursor; Jira's comments come
 * with the issues. */
static cJSON *minimum(const struct phase *ph)
{
    int crm = pages(ph->kz, ZOHO_PAGE) + 1 + batches(ph->kt, ZOHO_BATCH);
    int trk = pages(ph->kt, JIRA_PAGE) + ph->kz;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "crm", crm);
    cJSON_AddNumberToObject(o, "tracker", trk);
    cJSON_AddNumberToObject(o, "total", crm + trk);
    return o;
}

/* Moves both cursors past everything earlier phases touched, as a daemon stands when its last
 * change is a while back: time passes beyond the overlap window (and Jira's whole-minute JQL
 * times), one CRM edit is synced (its echo on the tracker the newest record), time passes
 * again, a cycle reads that echo back and one more finds nothing. The simulators' clocks jump
 * where a real one runs: the client keeps each service's clock as its last Date header less
 * the time since, so a listing's start is only known to be past the jump once a cycle has
 * spoken with the service after it (the second quiet cycle). */
static int separate(struct bench *b)
{
    char t[128];
    int64_t overlap_s = b->env.cfg->pairs[0].overlap_s > 0 ? b->env.cfg->pairs[0].overlap_s : 0;
    title(t, sizeof(t), b->phase, PACER, "pacer");
    for (int i = 0; i < 3; i++) {
        if (i < 2)
            bench_advance_clocks(&b->env, (overlap_s + 125) * 1000);
        if (i == 0)
            edit_crm(b, PACER, "Subject", t);
        struct sync_report rep;
        int rc = bench_cycle(&b->env, &rep);
        sync_report_release(&rep);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static void make_edits(struct bench *b, const struct phase *ph)
{
    char t[128];
    for (int i = 0; i < ph->kz; i++) {
        if (ph->status) {
            edit_crm(b, STATUS_SET + i, "Status", "Escalated");
            continue;
        }
        title(t, sizeof(t), b->phase, CRM_SET + i, "crm");
        edit_crm(b, CRM_SET + i, "Subject", t);
    }
    for (int i = 0; i < ph->kt; i++) {
        title(t, sizeof(t), b->phase, TRACKER_SET + i, "tracker");
        edit_tracker(b, TRACKER_SET + i, t);
    }
}

static cJSON *measured(const cJSON *counts, unsigned long http)
{
    cJSON *o = cJSON_CreateObject();
    int crm = bench_num(cJSON_GetObjectItemCaseSensitive(counts, "crm"), "total");
    int trk = bench_num(cJSON_GetObjectItemCaseSensitive(counts, "tracker"), "total");
    cJSON_AddNumberToObject(o, "crm", crm);
    cJSON_AddNumberToObject(o, "tracker", trk);
    cJSON_AddNumberToObject(o, "total", crm + trk);
    cJSON_AddNumberToObject(o, "http_total", (double)http);
    return o;
}

/* Runs one cycle with clean logs and returns {"measured","breakdown","cycle_ms"}; *rep keeps
 * the report (caller releases). */
static cJSON *measured_cycle(struct bench *b, struct sync_report *rep, int *rc)
{
    double t0 = bench_mono_ms();
    *rc = bench_cycle(&b->env, rep);
    double ms = bench_mono_ms() - t0;
    cJSON *counts = side_counts(b);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "measured", measured(counts, rep->requests));
    cJSON_AddItemToObject(o, "breakdown", counts);
    cJSON_AddNumberToObject(o, "cycle_ms", ms);
    bench_clear_logs(&b->env);
    return o;
}

static int check_outcome(const struct phase *ph, const struct sync_report *rep, cJSON *row)
{
    int ok = rep->updated[SIDE_TRACKER] == ph->kz && rep->updated[SIDE_CRM] == ph->kt &&
             !rep->failed && !rep->conflicts && !rep->created[0] && !rep->created[1];
    cJSON_AddBoolToObject(row, "ok", ok);
    if (!ok)
        fprintf(stderr, "bench: wrong outcome in '%s': updated %d crm / %d tracker, not %d / %d\n",
                ph->name, rep->updated[SIDE_CRM], rep->updated[SIDE_TRACKER], ph->kt, ph->kz);
    return ok ? 0 : -1;
}

static int run_phase(struct bench *b, const struct phase *ph, cJSON *rows)
{
    b->phase++;
    if (separate(b) != 0)
        return -1;
    bench_clear_logs(&b->env);
    make_edits(b, ph);
    struct sync_report rep;
    int rc;
    cJSON *row = measured_cycle(b, &rep, &rc);
    cJSON_AddItemToArray(rows, row);
    cJSON_AddStringToObject(row, "name", ph->name);
    cJSON_AddNumberToObject(row, "k_crm", ph->kz);
    cJSON_AddNumberToObject(row, "k_tracker", ph->kt);
    cJSON_AddItemToObject(row, "minimum", minimum(ph));
    if (rc == 0)
        rc = check_outcome(ph, &rep, row);
    sync_report_release(&rep);
    /* the cycle after a change reads our own writes back once (echo): shown, not in the ratio */
    int next_rc;
    cJSON *next = measured_cycle(b, &rep, &next_rc);
    sync_report_release(&rep);
    cJSON_AddItemToObject(row, "next_cycle", cJSON_DetachItemFromObject(next, "measured"));
    cJSON_Delete(next);
    return rc != 0 ? rc : next_rc;
}

/* No change at all: `cycles` cycles, each measured on its own. */
static int run_quiet(struct bench *b, const char *name, int cycles, cJSON *rows)
{
    static const struct phase none = {NULL, 0, 0, 0};
    bench_clear_logs(&b->env);
    int rc = 0;
    fprintf(stderr, "bench: calls per change, %s\n", name);
    for (int i = 0; i < cycles && rc == 0; i++) {
        struct sync_report rep;
        cJSON *row = measured_cycle(b, &rep, &rc);
        cJSON_AddStringToObject(row, "name", name);
        cJSON_AddNumberToObject(row, "k_crm", 0);
        cJSON_AddNumberToObject(row, "k_tracker", 0);
        cJSON_AddNumberToObject(row, "listed", rep.read[0] + rep.read[1]);
        cJSON_AddItemToObject(row, "minimum", minimum(&none));
        cJSON_AddBoolToObject(row, "ok", rc == 0 && !rep.updated[0] && !rep.updated[1]);
        cJSON_AddItemToArray(rows, row);
        sync_report_release(&rep);
    }
    return rc;
}

static int run_calls(struct bench *b)
{
    static const struct phase phases[] = {
        {"k=1 crm", 1, 0, 0},          {"k=1 tracker", 0, 1, 0},     {"k=1 both", 1, 1, 0},
        {"k=10 crm", 10, 0, 0},        {"k=10 tracker", 0, 10, 0},   {"k=10 both", 10, 10, 0},
        {"k=100 crm", 100, 0, 0},      {"k=100 tracker", 0, 100, 0}, {"k=100 both", 100, 100, 0},
        {"k=10 crm status", 10, 0, 1},
    };
    cJSON *rows = cJSON_AddArrayToObject(b->out, "calls");
    /* after the initial load, cycles a daemon interval apart (a few seconds, past the 2 s
     * margin of a listing's start): the first reads the load's own writes back once (as the
     * cycle after any change does), the next ones must not */
    usleep(AFTER_LOAD_PAUSE_MS * 1000);
    struct sync_report rep;
    int rc = bench_cycle(&b->env, &rep);
    cJSON_AddNumberToObject(b->out, "read_back_after_load", rep.read[0] + rep.read[1]);
    sync_report_release(&rep);
    if (rc != 0)
        return -1;
    usleep(AFTER_LOAD_PAUSE_MS * 1000);
    if (run_quiet(b, "no change, after initial load", 2, rows) != 0)
        return -1;
    b->phase++;
    if (separate(b) != 0 || run_quiet(b, "no change, steady", 3, rows) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
        fprintf(stderr, "bench: calls per change, %s\n", phases[i].name);
        if (run_phase(b, &phases[i], rows) != 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- latency with polling */

static pid_t start_daemon(struct bench *b)
{
    char log[700];
    snprintf(log, sizeof(log), "%s/daemon.log", b->env.dir);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "w", stderr))
            _exit(127);
        dup2(2, 1);
        const char *bin = tu_crmbridge_bin();
        execl(bin, bin, "-c", b->env.conf_path, "daemon", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_daemon(pid_t pid)
{
    int ws;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, &ws, WNOHANG) == pid)
            return;
        usleep(100 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &ws, 0);
}

/* How far the simulator's clock is ahead of ours (the phases moved it), in ms: the reading
 * with the shortest round trip of five; *error_ms grows to half that round trip (+1 for the
 * simulator's whole milliseconds). */
static int64_t clock_offset(const struct sim *s, int64_t *error_ms)
{
    int64_t best = 0, rtt = INT64_MAX;
    for (int i = 0; i < 5; i++) {
        int64_t before = bench_now_ms();
        cJSON *c = sim_ctl(s, "GET", "/_sim/clock", NULL);
        int64_t after = bench_now_ms();
        int64_t now = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "now_ms"));
        cJSON_Delete(c);
        if (after - before < rtt) {
            rtt = after - before;
            best = now - (before + after) / 2;
        }
    }
    if (rtt / 2 + 1 > *error_ms)
        *error_ms = rtt / 2 + 1;
    return best;
}

/* Simulator time of the first write to the edited record in s's log, or -1. */
static int64_t write_seen(const struct sim *s, enum side target, const char *jira_id)
{
    char path[128];
    if (target == SIDE_TRACKER && !strcmp(s->name, "trello"))
        snprintf(path, sizeof(path), "/1/cards/%s", jira_id);
    else if (target == SIDE_TRACKER)
        snprintf(path, sizeof(path), "/rest/api/3/issue/%s", jira_id);
    else
        snprintf(path, sizeof(path), "/crm/v8/Cases");
    cJSON *log = sim_ctl(s, "GET", "/_sim/log", NULL);
    int64_t at = -1;
    const cJSON *en;
    cJSON_ArrayForEach(en, log)
    {
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(en, "method"));
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(en, "path"));
        if (m && p && !strcmp(m, "PUT") && !strcmp(p, path)) {
            at = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(en, "ms"));
            break;
        }
    }
    cJSON_Delete(log);
    return at;
}

/* Edit number i on one side; returns the ms until the daemon wrote it on the other, or -1. */
static double one_edit(struct bench *b, int i, const int64_t offset[2])
{
    int idx = LATENCY_SET + i % MAX_EDITS; /* the webhook run edits each case more than once */
    enum side src = i % 2 ? SIDE_TRACKER : SIDE_CRM, dst = SIDE_OTHER(src);
    char t[128];
    title(t, sizeof(t), 1000 + i, idx, side_name(src));
    b->requests[dst] += sim_count(&b->env.sim[dst], NULL, NULL);
    sim_clear_log(&b->env.sim[dst]);
    int64_t t0 = bench_now_ms();
    if (src == SIDE_CRM)
        edit_crm(b, idx, "Subject", t);
    else
        edit_tracker(b, idx, t);
    for (int waited = 0; waited < 15000; waited += 20) {
        usleep(20 * 1000);
        int64_t at = write_seen(&b->env.sim[dst], dst, b->fx[idx].jira_id);
        if (at >= 0) /* never before the edit: a negative is the clock offset's error */
            return at - offset[dst] - t0 > 0 ? (double)(at - offset[dst] - t0) : 0.0;
    }
    return -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const double *v, int n, double p)
{
    int r = (int)ceil(p * n);
    return v[r < 1 ? 0 : r - 1];
}

/* Sorts v[0..n) and stores edits, missed, p50_ms, p99_ms and max_ms in o; returns missed. */
static int add_stats(cJSON *o, double *v, int n)
{
    int missed = 0;
    for (int i = 0; i < n; i++)
        missed += v[i] < 0;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    cJSON_AddNumberToObject(o, "edits", n);
    cJSON_AddNumberToObject(o, "missed", missed);
    cJSON_AddNumberToObject(o, "p50_ms", percentile(v, n, 0.50));
    cJSON_AddNumberToObject(o, "p99_ms", percentile(v, n, 0.99));
    cJSON_AddNumberToObject(o, "max_ms", v[n - 1]);
    return missed;
}

/* Webhook run: the figures per direction too (even edits start on the CRM, odd on the
 * tracker). */
static void add_directions(cJSON *o, const double *lat, int n)
{
    static const char *const names[2] = {"crm_to_tracker", "tracker_to_crm"};
    double *v = xcalloc((size_t)n, sizeof(double));
    for (int d = 0; d < 2; d++) {
        int k = 0;
        for (int i = d; i < n; i += 2)
            v[k++] = lat[i];
        if (k)
            add_stats(cJSON_AddObjectToObject(o, names[d]), v, k);
    }
    free(v);
}

/* The daemon's API requests per edit on each side (an edit's cycle and its echo's). */
static void add_request_rates(struct bench *b, cJSON *o)
{
    cJSON *r = cJSON_AddObjectToObject(o, "requests_per_edit");
    for (int s = 0; s < 2; s++) {
        b->requests[s] += sim_count(&b->env.sim[s], NULL, NULL);
        cJSON_AddNumberToObject(r, side_name((enum side)s), (double)b->requests[s] / b->edits);
    }
}

/* ---------------------------------------------------------------- the daemon's listener */

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int s = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (s >= 0 && !bind(s, (struct sockaddr *)&sa, sizeof(sa)) &&
        !getsockname(s, (struct sockaddr *)&sa, &len))
        port = ntohs(sa.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

static size_t collect(char *p, size_t sz, size_t n, void *arg)
{
    (void)strbuf_add(arg, p, sz * n);
    return sz * n;
}

/* GET of path on the daemon's listener into body; returns the HTTP status (0: no answer). */
static long daemon_get(int port, const char *path, struct strbuf *body)
{
    char url[128];
    long status = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

/* Waits (up to 20 s) until /healthz says the pair's first cycle ran. 0 = ready. */
static int wait_ready(struct bench *b)
{
    for (int i = 0; i < 200; i++) {
        struct strbuf body = STRBUF_INIT;
        int ok = daemon_get(b->port, "/healthz", &body) == 200 &&
                 strstr(body.buf, "pair '" BENCH_PAIR "': ok");
        strbuf_release(&body);
        if (ok)
            return 0;
        usleep(100 * 1000);
    }
    fprintf(stderr, "bench: the daemon did not finish its first cycle within 20 s\n");
    return -1;
}

/* The daemon's counters that explain a slow propagation, from its /metrics, into o. */
static void add_daemon_metrics(struct bench *b, cJSON *o)
{
    static const char *const names[] = {"cycles_total", "webhook_hints_total",
                                        "rate_limit_waits_total", "rate_limit_wait_seconds_total"};
    struct strbuf body = STRBUF_INIT;
    if (daemon_get(b->port, "/metrics", &body) != 200) {
        strbuf_release(&body);
        return;
    }
    cJSON *m = cJSON_AddObjectToObject(o, "daemon_metrics");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char pat[96];
        snprintf(pat, sizeof(pat), "crmbridge_%s{pair=\"" BENCH_PAIR "\"} ", names[i]);
        const char *at = strstr(body.buf, pat);
        if (at)
            cJSON_AddNumberToObject(m, names[i], atof(at + strlen(pat)));
    }
    strbuf_release(&body);
}

/* Adds the webhooks group (a free port on the loopback) to the config. 0 = ok. */
static int setup_hooks(struct bench *b)
{
    b->port = free_port();
    char *text = tu_read_file(b->env.conf_path);
    struct strbuf conf = STRBUF_INIT;
    (void)strbuf_addf(&conf,
                      "%swebhooks = { listen = \"127.0.0.1:%d\"; secret = \"env:CB_BENCH_HOOK\";%s "
                      "};\n",
                      text ? text : "", b->port,
                      b->env.trello ? " trello_secret = \"" TRELLO_APP_SECRET "\";" : "");
    setenv("CB_BENCH_HOOK", HOOKS_SECRET, 1);
    int rc = text && b->port > 0 ? tu_write_file(b->env.conf_path, conf.buf) : -1;
    free(text);
    strbuf_release(&conf);
    return rc;
}

/* `crmbridge webhooks register`, once the daemon answers (Trello checks the callback URL with
 * HEAD before it creates a webhook). 0 = ok. */
static int register_hooks(struct bench *b)
{
    char *out = NULL;
    int rc = tu_run_crmbridge(&out, "-c", b->env.conf_path, "webhooks", "register", (char *)NULL);
    if (rc != 0)
        fprintf(stderr, "bench: cannot register the webhooks:\n%s", out ? out : "");
    free(out);
    return rc == 0 ? 0 : -1;
}

/* Keeps the daemon's log next to the JSON output (the scratch directory goes away). */
static void keep_daemon_log(struct bench *b, const char *out)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/daemon.log", b->env.dir);
    char *text = tu_read_file(path);
    struct strbuf dst = STRBUF_INIT;
    (void)strbuf_addf(&dst, "%s.daemon.log", out);
    if (text && tu_write_file(dst.buf, text) != 0)
        fprintf(stderr, "bench: cannot write '%s'\n", dst.buf);
    free(text);
    strbuf_release(&dst);
}

/* ---------------------------------------------------------------- latency */

static int run_latency(struct bench *b)
{
    bench_env_close(&b->env); /* the daemon owns the cache from here */
    if (b->hooks && (bench_real_limits(&b->env) != 0 || setup_hooks(b) != 0))
        return -1;
    int64_t clock_error = 0;
    int64_t offset[2] = {clock_offset(&b->env.sim[0], &clock_error),
                         clock_offset(&b->env.sim[1], &clock_error)};
    pid_t pid = start_daemon(b);
    if (pid < 0)
        return -1;
    if (!b->hooks)
        usleep(2500 * 1000); /* its first cycles: pings, token from the cache, the pacer's tail */
    else if (wait_ready(b) != 0 || register_hooks(b) != 0) {
        stop_daemon(pid);
        return -1;
    }
    double *lat = xcalloc((size_t)b->edits, sizeof(double));
    unsigned seed = 12345;
    bench_clear_logs(&b->env);
    double t0 = bench_mono_ms();
    cJSON *o = cJSON_AddObjectToObject(b->out, b->hooks ? "hooks" : "latency");
    cJSON *samples = cJSON_AddArrayToObject(o, "samples_ms");
    for (int i = 0; i < b->edits; i++) {
        seed = seed * 1103515245u + 12345u;
        /* land at any point of the loop (polling), or of the cycles a change and its echo
         * start (webhooks: the next edit may come while the last one's echo runs) */
        usleep((useconds_t)((seed >> 8) % (unsigned)b->spread_ms) * 1000);
        lat[i] = one_edit(b, i, offset);
        cJSON_AddItemToArray(samples, cJSON_CreateNumber(lat[i]));
    }
    cJSON_AddNumberToObject(o, "seconds", (bench_mono_ms() - t0) / 1000.0);
    add_request_rates(b, o);
    if (b->hooks)
        add_daemon_metrics(b, o);
    stop_daemon(pid);
    cJSON_AddNumberToObject(o, "interval_s", b->hooks ? HOOKS_INTERVAL_S : INTERVAL_S);
    cJSON_AddNumberToObject(o, "spread_ms", b->spread_ms);
    cJSON_AddNumberToObject(o, "clock_error_ms", (double)clock_error);
    if (b->hooks)
        add_directions(o, lat, b->edits);
    int missed = add_stats(o, lat, b->edits);
    free(lat);
    return missed ? -1 : 0;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(stderr, "usage: bench_sync [--quick] [--hooks [--tracker jira|trello]] [--records N] "
                    "[--edits E] [--spread-ms MS] --out FILE\n");
    exit(2);
}

static int run(struct bench *b)
{
    int interval = b->hooks ? HOOKS_INTERVAL_S : INTERVAL_S;
    if (bench_env_start_tracker(&b->env, interval, b->tracker) != 0 || bench_env_open(&b->env) != 0)
        return -1;
    cJSON_AddStringToObject(b->out, "tracker", b->tracker);
    cJSON_AddNumberToObject(b->out, "records", b->n);
    cJSON_AddNumberToObject(b->out, "overlap_s", b->env.cfg->pairs[0].overlap_s);
    fprintf(stderr, "bench: seeding %d cases and running the initial sync\n", b->n);
    seed(b);
    if (initial_sync(b) != 0 || load_links(b) != 0)
        return -1;
    /* the webhook run only moves the cursors past the initial load (where a long-running
     * daemon has them) instead of measuring calls */
    b->phase++;
    if ((b->hooks ? separate(b) : run_calls(b)) != 0)
        return -1;
    fprintf(stderr, "bench: propagation latency, %d edits, daemon interval %d s%s\n", b->edits,
            interval, b->hooks ? ", woken by webhooks" : "");
    return run_latency(b);
}

int main(int argc, char **argv)
{
    struct bench b;
    memset(&b, 0, sizeof(b));
    b.n = 10000;
    b.edits = 0; /* default: 20 (polling), 100 (--hooks) */
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            b.n = 1000;
        else if (!strcmp(argv[i], "--hooks"))
            b.hooks = 1;
        else if (!strcmp(argv[i], "--tracker") && i + 1 < argc)
            b.tracker = argv[++i];
        else if (!strcmp(argv[i], "--records") && i + 1 < argc)
            b.n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--edits") && i + 1 < argc)
            b.edits = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--spread-ms") && i + 1 < argc)
            b.spread_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else
            usage();
    }
    if (!b.edits)
        b.edits = b.hooks ? 100 : 20;
    if (!b.spread_ms)
        b.spread_ms = b.hooks ? HOOKS_SPREAD_MS : 1200;
    if (!b.tracker)
        b.tracker = "jira";
    if (strcmp(b.tracker, "jira") && (strcmp(b.tracker, "trello") || !b.hooks))
        usage(); /* the calls phases count Jira's requests */
    if (!out || b.n < FIXED || b.edits < 1 || b.spread_ms < 1 || (!b.hooks && b.edits > MAX_EDITS))
        usage();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_set_level(LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    b.out = cJSON_CreateObject();
    int rc = run(&b);
    cJSON_AddBoolToObject(b.out, "complete", rc == 0);
    if (b.hooks && b.env.dir)
        keep_daemon_log(&b, out);
    if (bench_write_json(out, b.out) != 0)
        rc = -1;
    cJSON_Delete(b.out);
    bench_env_stop(&b.env);
    for (int i = 0; i < FIXED; i++) {
        free(b.fx[i].zoho_id);
        free(b.fx[i].jira_id);
        free(b.fx[i].jira_key);
    }
    curl_global_cleanup();
    return rc == 0 ? 0 : 1;
}
