/*
 * CPU per record: the engine's map, merge and cache work for one linked record against a
 * baseline of cJSON parsing and printing the same record's payloads (the Zoho record and the
 * Jira issue exactly as the simulators answered the connectors' listing requests).
 *   --prepare FILE       syncs one case for real and saves both decoded records and payloads
 *   --loop MODE FILE N   runs MODE (baseline | changed | unchanged) N times in bench_loop(), the
 *                        function callgrind counts (--toggle-collect=bench_loop)
 *   --time FILE N        user and system CPU time (getrusage) of each mode over N iterations
 * It does not decide targets; bench/report.py divides the counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>

#include "bench/benchutil.h"
#include "connectors/connector.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "mapping/mapping.h"
#include "sync/merge.h"

static const char case_json[] =
    "{\"Subject\":\"Export to Excel garbles Chinese characters\",\"Status\":\"Escalated\","
    "\"Priority\":\"High\",\"Due_Date\":\"2026-12-24\",\"Description\":\"Customer reports this "
    "since the last update.\\n\\nSteps:\\n1. Open the order list\\n2. Click Export\\n3. Open the "
    "file in Excel\\n\\nExpected: every character readable.\\n* must keep the audit trail\\n* "
    "needed before the quarter closes\\n\\nSee https://example.com/spec/42\"}";

/* ---------------------------------------------------------------- prepare */

static size_t collect(char *p, size_t sz, size_t n, void *arg)
{
    (void)strbuf_add(arg, p, sz * n);
    return sz * n;
}

/* GET or POST url with one extra header; the parsed JSON answer or NULL. */
static cJSON *fetch(const char *url, const char *header, const char *form)
{
    CURL *c = curl_easy_init();
    struct strbuf out = STRBUF_INIT;
    struct curl_slist *h = header ? curl_slist_append(NULL, header) : NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (form)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    CURLcode rc = curl_easy_perform(c);
    cJSON *j = rc == CURLE_OK ? cJSON_ParseWithLengthOpts(out.buf, out.len, NULL, 0) : NULL;
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    strbuf_release(&out);
    return j;
}

/* The query of the last logged GET whose path is path (owned), or NULL. */
static char *logged_query(const struct sim *s, const char *path)
{
    cJSON *log = sim_ctl(s, "GET", "/_sim/log", NULL);
    char *q = NULL;
    const cJSON *en;
    cJSON_ArrayForEach(en, log)
    {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(en, "path"));
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(en, "method"));
        if (p && m && !strcmp(p, path) && !strcmp(m, "GET")) {
            free(q);
            q = xstrdup(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(en, "query")));
        }
    }
    cJSON_Delete(log);
    return q;
}

/* Repeats the connector's own listing request of side s and keeps the first record. */
static cJSON *wire_payload(struct bench_env *e, enum side s)
{
    static const char *const paths[2] = {"/crm/v8/Cases", "/rest/api/3/search/jql"};
    char *q = logged_query(&e->sim[s], paths[s]);
    if (!q)
        return NULL;
    struct strbuf url = STRBUF_INIT, auth = STRBUF_INIT;
    if (s == SIDE_CRM) {
        struct strbuf tok = STRBUF_INIT;
        (void)strbuf_addf(&tok, "%s/oauth/v2/token", e->sim[s].base);
        cJSON *t = fetch(tok.buf, NULL,
                         "grant_type=refresh_token&client_id=1000.SIMCLIENT&client_secret=sim-"
                         "client-secret&refresh_token=1000.sim-refresh-token");
        (void)strbuf_addf(
            &auth, "Authorization: Zoho-oauthtoken %s",
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "access_token")));
        cJSON_Delete(t);
        strbuf_release(&tok);
    } else {
        /* base64("bot@acme.test:sim-jira-token") */
        (void)strbuf_adds(&auth, "Authorization: Basic Ym90QGFjbWUudGVzdDpzaW0tamlyYS10b2tlbg==");
    }
    (void)strbuf_addf(&url, "%s%s?%s", e->sim[s].base, paths[s], q);
    cJSON *page = fetch(url.buf, auth.buf, NULL);
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(page, s == SIDE_CRM ? "data" : "issues");
    cJSON *first = cJSON_GetArraySize(arr) > 0 ? cJSON_DetachItemFromArray(arr, 0) : NULL;
    cJSON_Delete(page);
    strbuf_release(&url);
    strbuf_release(&auth);
    free(q);
    return first;
}

static cJSON *record_to_json(const struct record *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    if (r->key)
        cJSON_AddStringToObject(o, "key", r->key);
    if (r->url)
        cJSON_AddStringToObject(o, "url", r->url);
    if (r->modified_by)
        cJSON_AddStringToObject(o, "modified_by", r->modified_by);
    if (r->marker)
        cJSON_AddStringToObject(o, "marker", r->marker);
    cJSON_AddNumberToObject(o, "modified_ms", (double)r->modified_ms);
    cJSON_AddItemToObject(o, "fields", cJSON_Duplicate(r->fields, 1));
    return o;
}

/* Reads the record id of side s through its connector, decoded as the engine sees it. */
static cJSON *decoded_record(struct bench_env *e, struct mapping *map, enum side s, const char *id)
{
    const struct pair_conf *pc = &e->cfg->pairs[0];
    const struct endpoint_conf *ep = config_endpoint(e->cfg, pc->side[s].endpoint);
    const struct connector_ops *ops = connector_find(ep->type);
    struct connector_params cp = {
        .ep = ep, .side = &pc->side[s], .cache = e->cache, .fields = mapping_remote_fields(map, s)};
    struct connector *conn = NULL;
    struct strbuf err = STRBUF_INIT, info = STRBUF_INIT;
    struct record_list got = {0};
    cJSON *out = NULL;
    if (ops->open(&cp, &conn, &err) == CB_OK && ops->ping(conn, &info, &err) == CB_OK &&
        ops->get_many(conn, &id, 1, &got, &err) == CB_OK && got.n == 1)
        out = record_to_json(&got.v[0]);
    else
        fprintf(stderr, "bench: cannot read %s record '%s': %s\n", side_name(s), id, err.buf);
    record_list_release(&got);
    if (conn)
        ops->close(conn);
    strbuf_release(&err);
    strbuf_release(&info);
    return out;
}

static int prepare(const char *file)
{
    struct bench_env e;
    if (bench_env_start(&e, 60) != 0 || bench_env_open(&e) != 0)
        return 1;
    cJSON *r = sim_ctl(&e.sim[SIDE_CRM], "POST", "/_sim/seed",
                       "{\"module\":\"Cases\",\"records\":[%s]}", case_json);
    char *ids[2] = {xstrdup(cJSON_GetStringValue(
                        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "ids"), 0))),
                    NULL};
    cJSON_Delete(r);
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        /* the second cycle lists both records again (overlap): the requests to replay */
        struct sync_report rep;
        rc = bench_cycle(&e, &rep) || (i == 0 && rep.created[SIDE_TRACKER] != 1);
        sync_report_release(&rep);
    }
    struct cache_txn *t = NULL;
    struct link l = {0};
    struct strbuf err = STRBUF_INIT;
    if (!rc && cache_txn_begin(e.cache, 1, &t, &err) == CB_OK &&
        cache_link_find(t, BENCH_PAIR, SIDE_CRM, ids[0], &l) == CB_OK)
        ids[1] = xstrdup(l.remote[SIDE_TRACKER]);
    if (t)
        cache_txn_abort(t);
    link_release(&l);
    strbuf_release(&err);
    struct mapping *map = NULL;
    rc = rc || !ids[1] || mapping_load(NULL, "zoho", "jira", &map, &err) != CB_OK;
    cJSON *o = cJSON_CreateObject();
    cJSON *recs = cJSON_AddArrayToObject(o, "records"),
          *pays = cJSON_AddArrayToObject(o, "payloads");
    for (int s = 0; s < 2 && !rc; s++) {
        cJSON *rj = decoded_record(&e, map, (enum side)s, ids[s]);
        cJSON *pj = wire_payload(&e, (enum side)s);
        rc = !rj || !pj;
        cJSON_AddItemToArray(recs, rj ? rj : cJSON_CreateNull());
        cJSON_AddItemToArray(pays, pj ? pj : cJSON_CreateNull());
    }
    rc = rc || bench_write_json(file, o) != 0;
    cJSON_Delete(o);
    mapping_free(map);
    free(ids[0]);
    free(ids[1]);
    bench_env_stop(&e);
    return rc ? 1 : 0;
}

/* ---------------------------------------------------------------- the measured loops */

struct work {
    struct mapping *map;
    struct cache *cache;
    char *dir;
    struct record rec[2];
    char *payload[2]; /* the wire JSON text of each side's record */
    struct link link;
    int flip;
};

static void record_from_json(const cJSON *o, struct record *r)
{
    memset(r, 0, sizeof(*r));
    const char *s;
    r->id = xstrdup(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "id")));
    if ((s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "key"))))
        r->key = xstrdup(s);
    if ((s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "url"))))
        r->url = xstrdup(s);
    if ((s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "modified_by"))))
        r->modified_by = xstrdup(s);
    if ((s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "marker"))))
        r->marker = xstrdup(s);
    r->modified_ms =
        (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "modified_ms"));
    r->fields = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(o, "fields"), 1);
}

static cJSON *view_of(const struct work *w, enum side s)
{
    struct remote_view rv = {w->rec[s].id, w->rec[s].key, w->rec[s].url, w->rec[s].fields};
    return mapping_to_item(w->map, s, &rv, NULL);
}

/* Stores the link and the base both sides agree on now, as a finished sync leaves them. */
static int store_link(struct work *w)
{
    cJSON *views[2] = {view_of(w, SIDE_CRM), view_of(w, SIDE_TRACKER)};
    const int64_t mod[2] = {w->rec[0].modified_ms, w->rec[1].modified_ms};
    struct merge_result mr;
    merge_run(w->map, NULL, (const cJSON *const *)views, mod, NULL, NULL, &mr);
    for (int s = 0; s < 2; s++) {
        w->link.remote[s] = xstrdup(w->rec[s].id);
        w->link.key[s] = w->rec[s].key ? xstrdup(w->rec[s].key) : NULL;
        w->link.url[s] = w->rec[s].url ? xstrdup(w->rec[s].url) : NULL;
    }
    struct cache_txn *t = NULL;
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = cache_txn_begin(w->cache, 0, &t, &err);
    if (st == CB_OK) {
        (void)cache_link_put(t, BENCH_PAIR, &w->link);
        (void)cache_base_put(t, BENCH_PAIR, w->link.id, mr.new_base);
        st = cache_txn_commit(t, &err);
    }
    merge_result_release(&mr);
    cJSON_Delete(views[0]);
    cJSON_Delete(views[1]);
    strbuf_release(&err);
    return st == CB_OK ? 0 : -1;
}

static int work_open(struct work *w, const char *file)
{
    memset(w, 0, sizeof(*w));
    char *text = NULL;
    FILE *f = fopen(file, "r");
    struct strbuf sb = STRBUF_INIT, err = STRBUF_INIT;
    char buf[4096];
    size_t n;
    while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        (void)strbuf_add(&sb, buf, n);
    if (f)
        fclose(f);
    text = strbuf_detach(&sb);
    cJSON *o = cJSON_ParseWithLengthOpts(text, strlen(text), NULL, 0);
    free(text);
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(o, "records");
    const cJSON *pays = cJSON_GetObjectItemCaseSensitive(o, "payloads");
    if (cJSON_GetArraySize(recs) != 2 || cJSON_GetArraySize(pays) != 2) {
        fprintf(stderr, "bench: cannot use '%s': it holds no prepared records\n", file);
        cJSON_Delete(o);
        return -1;
    }
    for (int s = 0; s < 2; s++) {
        record_from_json(cJSON_GetArrayItem(recs, s), &w->rec[s]);
        w->payload[s] = cJSON_PrintUnformatted(cJSON_GetArrayItem(pays, s));
    }
    cJSON_Delete(o);
    w->dir = tu_tmpdir();
    int rc = -1;
    if (mapping_load(NULL, "zoho", "jira", &w->map, &err) == CB_OK &&
        cache_open(w->dir, &w->cache, &err) == CB_OK)
        rc = store_link(w);
    if (rc != 0)
        fprintf(stderr, "bench: cannot set up the cpu harness: %s\n", err.buf);
    strbuf_release(&err);
    return rc;
}

/* Releases what work_open made, also after a failed work_open. */
static void work_close(struct work *w)
{
    for (int s = 0; s < 2; s++) {
        record_release(&w->rec[s]);
        cJSON_free(w->payload[s]);
    }
    link_release(&w->link);
    mapping_free(w->map);
    if (w->cache)
        cache_close(w->cache);
    tu_rmrf(w->dir);
    free(w->dir);
}

/* The baseline: parse and print each side's payload once. */
static void one_baseline(struct work *w)
{
    for (int s = 0; s < 2; s++) {
        cJSON *j = cJSON_ParseWithLengthOpts(w->payload[s], strlen(w->payload[s]), NULL, 0);
        char *out = cJSON_PrintUnformatted(j);
        cJSON_free(out);
        cJSON_Delete(j);
    }
}

/* What the engine reads from the cache for one listed record: its link, its base and, when it
 * merges, the open conflicts of each field (held fields). */
static cJSON *read_cache(struct work *w, int merging)
{
    struct cache_txn *t = NULL;
    struct strbuf err = STRBUF_INIT;
    struct link l = {0};
    cJSON *base = NULL;
    if (cache_txn_begin(w->cache, 1, &t, &err) == CB_OK &&
        cache_link_find(t, BENCH_PAIR, SIDE_CRM, w->rec[SIDE_CRM].id, &l) == CB_OK)
        (void)cache_base_get(t, BENCH_PAIR, l.id, &base);
    for (const char *const *f = mapping_item_fields(w->map); merging && t && *f; f++) {
        struct conflict k = {0};
        (void)cache_conflict_find_open(t, BENCH_PAIR, l.id, *f, &k);
        conflict_release(&k);
    }
    if (t)
        cache_txn_abort(t);
    link_release(&l);
    strbuf_release(&err);
    return base;
}

static void write_cache(struct work *w, const cJSON *base)
{
    struct cache_txn *t = NULL;
    struct strbuf err = STRBUF_INIT;
    if (cache_txn_begin(w->cache, 0, &t, &err) == CB_OK) {
        (void)cache_link_put(t, BENCH_PAIR, &w->link);
        (void)cache_base_put(t, BENCH_PAIR, w->link.id, base);
        if (cache_txn_commit(t, &err) != CB_OK)
            fprintf(stderr, "bench: cannot commit link and base: %s\n", err.buf);
    }
    strbuf_release(&err);
}

/* One record whose CRM title changed: map both sides, read the cache, merge, translate the
 * patch for the tracker, commit link and base. */
static void one_changed(struct work *w)
{
    w->flip = !w->flip;
    cJSON_DeleteItemFromObjectCaseSensitive(w->rec[SIDE_CRM].fields, "Subject");
    cJSON_AddStringToObject(w->rec[SIDE_CRM].fields, "Subject",
                            w->flip ? "Export to Excel garbles Chinese text"
                                    : "Export to Excel garbles Chinese characters");
    cJSON *views[2] = {view_of(w, SIDE_CRM), view_of(w, SIDE_TRACKER)};
    cJSON *base = read_cache(w, 1);
    int changed = merge_side_changed(w->map, base, SIDE_CRM, views[0]) |
                  merge_side_changed(w->map, base, SIDE_TRACKER, views[1]);
    const int64_t mod[2] = {w->rec[0].modified_ms, w->rec[1].modified_ms};
    struct merge_result mr;
    merge_run(w->map, base, (const cJSON *const *)views, mod, NULL, NULL, &mr);
    cJSON *remote = mapping_to_remote(w->map, SIDE_TRACKER, mr.patch[SIDE_TRACKER], NULL);
    if (changed && mr.changed)
        write_cache(w, mr.new_base);
    /* the write lands: the tracker shows the new title from now on (not part of the work) */
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(remote, "summary");
    if (cJSON_IsString(v)) {
        cJSON_DeleteItemFromObjectCaseSensitive(w->rec[SIDE_TRACKER].fields, "summary");
        cJSON_AddStringToObject(w->rec[SIDE_TRACKER].fields, "summary", v->valuestring);
    } else {
        fprintf(stderr, "bench: wrong outcome: the merge wrote no title to the tracker\n");
    }
    cJSON_Delete(remote);
    merge_result_release(&mr);
    cJSON_Delete(base);
    cJSON_Delete(views[0]);
    cJSON_Delete(views[1]);
}

/* One listed record that is our own echo: map, read link and base, find no change. */
static void one_unchanged(struct work *w)
{
    cJSON *views[2] = {view_of(w, SIDE_CRM), view_of(w, SIDE_TRACKER)};
    cJSON *base = read_cache(w, 0);
    if (merge_side_changed(w->map, base, SIDE_CRM, views[0]) ||
        merge_side_changed(w->map, base, SIDE_TRACKER, views[1]))
        fprintf(stderr, "bench: wrong outcome: the echo looks like a change\n");
    cJSON_Delete(base);
    cJSON_Delete(views[0]);
    cJSON_Delete(views[1]);
}

typedef void (*one_fn)(struct work *w);

/* The only function callgrind counts (--toggle-collect=bench_loop). */
__attribute__((noinline)) void bench_loop(struct work *w, one_fn fn, long n);
__attribute__((noinline)) void bench_loop(struct work *w, one_fn fn, long n)
{
    for (long i = 0; i < n; i++)
        fn(w);
}

static one_fn mode_fn(const char *mode)
{
    if (!strcmp(mode, "baseline"))
        return one_baseline;
    if (!strcmp(mode, "changed"))
        return one_changed;
    if (!strcmp(mode, "unchanged"))
        return one_unchanged;
    return NULL;
}

/* User and system CPU time of this process so far, in ns. */
static void cpu_ns(double out[2])
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    out[0] = (double)ru.ru_utime.tv_sec * 1e9 + (double)ru.ru_utime.tv_usec * 1e3;
    out[1] = (double)ru.ru_stime.tv_sec * 1e9 + (double)ru.ru_stime.tv_usec * 1e3;
}

static int timed(const char *file, long n)
{
    static const char *const modes[] = {"baseline", "changed", "unchanged"};
    struct work w;
    if (work_open(&w, file) != 0) {
        work_close(&w);
        return 1;
    }
    printf("{\"iterations\":%ld,\"payload_bytes\":%zu", n,
           strlen(w.payload[0]) + strlen(w.payload[1]));
    for (int m = 0; m < 3; m++) {
        double t0[2], t1[2];
        bench_loop(&w, mode_fn(modes[m]), n / 10 + 1); /* warm up */
        cpu_ns(t0);
        bench_loop(&w, mode_fn(modes[m]), n);
        cpu_ns(t1);
        printf(",\"%s_user_ns\":%.1f,\"%s_sys_ns\":%.1f", modes[m], (t1[0] - t0[0]) / (double)n,
               modes[m], (t1[1] - t0[1]) / (double)n);
    }
    printf("}\n");
    work_close(&w);
    return 0;
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_set_level(LOG_WARN);
    int rc = 2;
    if (argc == 3 && !strcmp(argv[1], "--prepare")) {
        rc = prepare(argv[2]);
    } else if (argc == 4 && !strcmp(argv[1], "--time")) {
        rc = timed(argv[2], atol(argv[3]));
    } else if (argc == 5 && !strcmp(argv[1], "--loop") && mode_fn(argv[2])) {
        struct work w;
        rc = work_open(&w, argv[3]) != 0;
        if (!rc)
            bench_loop(&w, mode_fn(argv[2]), atol(argv[4]));
        work_close(&w);
    } else {
        fprintf(stderr, "usage: bench_cpu --prepare FILE | --loop baseline|changed|unchanged "
                        "FILE N | --time FILE N\n");
    }
    curl_global_cleanup();
    return rc;
}
