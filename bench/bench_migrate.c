/*
 * Migration throughput and memory: seeds N Zoho Cases, injects a fixed latency on every API
 * request of both simulators (inside the request: a Zoho call is in flight for all of it),
 * keeps Jira's simulated rate limits (GET 100/s, POST 100/s, PUT 50/s per endpoint) and Zoho's
 * concurrency (Enterprise: 20 calls in flight, 10 of them complex; set in benchutil.c), runs
 * migrate_run() in this process and reports records per second, the ceiling those limits allow
 * for the requests the run actually needed (the busiest endpoint's count over its rate), the
 * ratio of the two and the peak resident set size. Writes JSON; judges no target.
 *
 *   bench_migrate [--records N] [--latency-ms MS] [--workers N] [--no-comments] [--out FILE]
 *   (defaults 10000 records, 100 ms, 60 connections, comments copied as migrate does)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "bench/benchutil.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "sync/migrate.h"

/* The simulated Jira limits: one bucket per method and endpoint, as Jira Cloud's burst limits. */
static double jira_rate(const char *method)
{
    return !strcmp(method, "PUT") || !strcmp(method, "DELETE") ? 50 : 100;
}

static void seed(struct bench_env *e, int n)
{
    for (int left = n; left > 0; left -= 2000)
        cJSON_Delete(sim_ctl(&e->sim[SIDE_CRM], "POST", "/_sim/seed",
                             "{\"module\":\"Cases\",\"count\":%d}", left < 2000 ? left : 2000));
}

/* "/rest/api/3/issue/10001/transitions" -> "/rest/api/3/issue/{key}/transitions" */
static void template_of(const char *path, struct strbuf *out)
{
    strbuf_reset(out);
    for (const char *p = path; *p;) {
        const char *e = strchr(p + 1, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int id = n > 2 && strspn(p + 1, "0123456789") == n - 1; /* not the API version */
        const char *dash = memchr(p + 1, '-', n - 1);
        if (dash && strspn(dash + 1, "0123456789") == (size_t)(p + n - dash - 1))
            id = 1; /* SUP-12 */
        if (id)
            (void)strbuf_adds(out, "/{key}");
        else
            (void)strbuf_add(out, p, n);
        p += n;
    }
}

/* Counts a simulator's logged requests by "METHOD /path/{key}" into buckets (an object); with
 * worst, the busiest bucket's count over its Jira rate goes there. Returns the 429 answers. */
static int count_buckets(const struct sim *s, cJSON *buckets, double *worst, int *total)
{
    cJSON *log = sim_call(s, "GET", "/_sim/log", NULL, NULL);
    struct strbuf key = STRBUF_INIT, tpl = STRBUF_INIT;
    int throttled = 0;
    const cJSON *en;
    cJSON_ArrayForEach(en, log)
    {
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(en, "method"));
        template_of(cJSON_GetStringValue(cJSON_GetObjectItem(en, "path")), &tpl);
        strbuf_reset(&key);
        (void)strbuf_addf(&key, "%s %s", m, tpl.buf);
        cJSON *n = cJSON_GetObjectItem(buckets, key.buf);
        if (!n)
            n = cJSON_AddNumberToObject(buckets, key.buf, 0);
        cJSON_SetNumberValue(n, n->valuedouble + 1);
        throttled += (int)cJSON_GetNumberValue(cJSON_GetObjectItem(en, "status")) == 429;
        if (worst && n->valuedouble / jira_rate(m) > *worst)
            *worst = n->valuedouble / jira_rate(m);
    }
    *total = cJSON_GetArraySize(log);
    cJSON_Delete(log);
    strbuf_release(&key);
    strbuf_release(&tpl);
    return throttled;
}

/* The shortest time Jira's limits allow for the requests in its log (the busiest bucket's
 * count over its rate), in seconds; both sides' requests by endpoint go into out. */
static double ceiling_seconds(const struct bench_env *e, cJSON *out)
{
    double worst = 0;
    int total = 0;
    cJSON *buckets = cJSON_AddObjectToObject(out, "tracker_requests");
    int throttled = count_buckets(&e->sim[SIDE_TRACKER], buckets, &worst, &total);
    cJSON_AddNumberToObject(out, "tracker_total", total);
    cJSON_AddNumberToObject(out, "tracker_429", throttled);
    buckets = cJSON_AddObjectToObject(out, "crm_by_endpoint");
    throttled = count_buckets(&e->sim[SIDE_CRM], buckets, NULL, &total);
    cJSON_AddNumberToObject(out, "crm_requests", total);
    cJSON_AddNumberToObject(out, "crm_429", throttled);
    cJSON *st = sim_ctl(&e->sim[SIDE_CRM], "GET", "/_sim/stats", NULL);
    cJSON_AddNumberToObject(out, "crm_inflight_max",
                            cJSON_GetNumberValue(cJSON_GetObjectItem(st, "inflight_max")));
    cJSON_Delete(st);
    return worst;
}

/* With CB_BENCH_LOGS=DIR, both simulators' request logs go to DIR/crm.json and tracker.json
 * (a timeline of the run, for finding where it waits). */
static void dump_logs(const struct bench_env *e)
{
    const char *dir = getenv("CB_BENCH_LOGS");
    for (int s = 0; dir && s < 2; s++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s.json", dir, s == SIDE_CRM ? "crm" : "tracker");
        cJSON *log = sim_call(&e->sim[s], "GET", "/_sim/log", NULL, NULL);
        if (bench_write_json(path, log) != 0)
            fprintf(stderr, "bench: cannot write '%s'\n", path);
        cJSON_Delete(log);
    }
}

static int no_comments; /* --no-comments: the records only (migrate --no-comments) */

static int run(struct bench_env *e, int n, int latency_ms, int workers, cJSON *out)
{
    seed(e, n);
    cJSON_Delete(sim_ctl(&e->sim[SIDE_TRACKER], "POST", "/_sim/config",
                         "{\"rate\":{\"GET\":100,\"POST\":100,\"PUT\":50}}"));
    for (int s = 0; s < 2 && latency_ms > 0; s++)
        cJSON_Delete(sim_ctl(&e->sim[s], "POST", "/_sim/faults",
                             "{\"rules\":[{\"path\":\".*\",\"kind\":\"latency\",\"delay_ms\":%d,"
                             "\"count\":-1}]}",
                             latency_ms));
    if (bench_env_open(e) != 0)
        return -1;
    bench_clear_logs(e);
    struct migrate_opts o = {
        .from = SIDE_CRM, .workers = workers, .cfg = e->cfg, .no_comments = no_comments};
    struct migrate_report r;
    migrate_report_init(&r);
    struct strbuf err = STRBUF_INIT;
    int64_t t0 = cbtime_now_ms();
    enum cb_status st = migrate_run(e->pair, &o, NULL, NULL, &r, &err);
    double secs = (double)(cbtime_now_ms() - t0) / 1000.0;
    /* the migration's peak, before this process reads the simulators' logs (tens of MB of JSON
     * for the ceiling), and at its end: the heap, and the cache's mapped file pages (LMDB) */
    long peak_kib = bench_status_kib("VmHWM"), anon_kib = bench_status_kib("RssAnon"),
         file_kib = bench_status_kib("RssFile");
    int rc = 0;
    if (st != CB_OK || r.n.created != n) {
        fprintf(stderr, "bench: migration failed (%s): created %ld of %d: %s\n", cb_status_str(st),
                r.n.created, n, err.buf);
        rc = -1;
    }
    double ceiling = ceiling_seconds(e, out);
    dump_logs(e);
    cJSON_AddNumberToObject(out, "records", n);
    cJSON_AddNumberToObject(out, "latency_ms", latency_ms);
    cJSON_AddNumberToObject(out, "workers", workers);
    cJSON_AddBoolToObject(out, "comments", !no_comments);
    cJSON_AddNumberToObject(out, "created", (double)r.n.created);
    cJSON_AddNumberToObject(out, "seconds", secs);
    cJSON_AddNumberToObject(out, "records_per_s", secs > 0 ? n / secs : 0);
    cJSON_AddNumberToObject(out, "ceiling_records_per_s", ceiling > 0 ? n / ceiling : 0);
    cJSON_AddNumberToObject(out, "ratio_of_ceiling", secs > 0 ? ceiling / secs : 0);
    cJSON_AddNumberToObject(out, "requests", (double)r.requests);
    cJSON_AddNumberToObject(out, "peak_rss_kib", (double)peak_kib);
    cJSON_AddNumberToObject(out, "rss_anon_kib", (double)anon_kib);
    cJSON_AddNumberToObject(out, "rss_file_kib", (double)file_kib);
    migrate_report_release(&r);
    strbuf_release(&err);
    return rc;
}

int main(int argc, char **argv)
{
    int n = 10000, latency_ms = 100, workers = 60;
    const char *out_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--records") && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--latency-ms") && i + 1 < argc)
            latency_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
            workers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-comments"))
            no_comments = 1;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out_path = argv[++i];
        else {
            fprintf(stderr, "usage: bench_migrate [--records N] [--latency-ms MS] [--workers N] "
                            "[--no-comments] [--out FILE]\n");
            return 2;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_set_level(LOG_ERROR);
    struct bench_env e;
    if (bench_env_start(&e, 60) != 0)
        return 3;
    cJSON *out = cJSON_CreateObject();
    int rc = run(&e, n, latency_ms, workers, out) == 0 ? 0 : 3;
    bench_env_stop(&e);
    char *txt = cJSON_Print(out);
    printf("%s\n", txt);
    if (out_path) {
        FILE *f = fopen(out_path, "w");
        if (!f || fputs(txt, f) < 0 || fclose(f) != 0)
            rc = 3;
    }
    cJSON_free(txt);
    cJSON_Delete(out);
    curl_global_cleanup();
    return rc;
}
