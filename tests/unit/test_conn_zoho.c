/* The Zoho CRM connector against tests/sim/zoho_sim.py: config checks, OAuth (reuse, refresh,
 * errors, the sealed token cache), paging, incremental reads, writes with per-record outcomes,
 * idempotent creates, marker lookup, the failure classes of 429, 5xx, HTML and bad JSON, and
 * the org's concurrency limit kept by connections in parallel threads. */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "connectors/connector.h"
#include "connectors/http.h"
#include "connectors/pace.h"
#include "core/config.h"
#include "core/strbuf.h"
#include "mapping/richtext.h"
#include "tests/unit/testutil.h"

static struct sim sim;

static const char *const want_fields[] = {"Subject", "Description", "Status",       "Priority",
                                          "Type",    "Due_Date",    "Account_Name", "Jira_Issue",
                                          "$key",    NULL};

struct fx {
    struct config *cfg;
    struct connector *c;
    struct strbuf err;
};

static const struct connector_ops *ops(void)
{
    const struct connector_ops *o = connector_find("zoho");
    assert_non_null(o);
    return o;
}

/* The test config; extra (may be empty) is one more line of the zoho endpoint. */
static struct config *conf_with(const char *api_url, const char *module, const char *extra)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "endpoints = {\n"
             "  zoho_cn = {\n"
             "    type = \"zoho\";\n"
             "    accounts_url = \"%s\";\n"
             "    api_url = \"%s\";\n"
             "    client_id = \"1000.SIMCLIENT\";\n"
             "    client_secret = \"sim-client-secret\";\n"
             "    refresh_token = \"env:CB_TEST_ZOHO_REFRESH\";\n"
             "    %s\n"
             "  };\n"
             "  jira = { type = \"jira\"; };\n"
             "};\n"
             "pairs = ( { name = \"p\"; crm = { endpoint = \"zoho_cn\"; module = \"%s\"; };\n"
             "            tracker = { endpoint = \"jira\"; }; } );\n",
             sim.base, api_url ? api_url : sim.base, extra, module ? module : "Cases");
    struct config *cfg = NULL;
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = config_load_string(text, "zoho.conf", &cfg, &err);
    if (st != CB_OK)
        fprintf(stderr, "%s\n", err.buf);
    assert_int_equal(st, CB_OK);
    strbuf_release(&err);
    return cfg;
}

static struct config *conf_for(const char *api_url, const char *module)
{
    return conf_with(api_url, module, "");
}

static struct connector *conn_open(struct config *cfg, struct cache *cache,
                                   const char *const *fields)
{
    struct connector_params p = {0};
    p.ep = config_endpoint(cfg, "zoho_cn");
    p.side = &config_pair(cfg, "p")->side[0];
    p.http.timeout_s = 20;
    p.http.backoff_ms = 10;
    p.http.max_retries = 4;
    p.cache = cache;
    p.fields = fields ? fields : want_fields;
    struct connector *c = NULL;
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = ops()->open(&p, &c, &err);
    if (st != CB_OK)
        fprintf(stderr, "%s\n", err.buf);
    assert_int_equal(st, CB_OK);
    strbuf_release(&err);
    return c;
}

static int setup(void **state)
{
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/reset", NULL));
    struct fx *f = calloc(1, sizeof(*f));
    strbuf_init(&f->err, 0);
    f->cfg = conf_for(NULL, NULL);
    f->c = conn_open(f->cfg, NULL, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    ops()->close(f->c);
    config_free(f->cfg);
    strbuf_release(&f->err);
    free(f);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    setenv("CB_TEST_ZOHO_REFRESH", "1000.sim-refresh-token", 1); /* an env: secret */
    return sim_start(&sim, "zoho", NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    sim_stop(&sim);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static double stat_of(const char *key)
{
    cJSON *j = sim_ctl(&sim, "GET", "/_sim/stats", NULL);
    const cJSON *v = cJSON_GetObjectItem(j, key);
    assert_true(cJSON_IsNumber(v));
    double d = v->valuedouble;
    cJSON_Delete(j);
    return d;
}

/* Seeds n generated cases (or explicit records when json is set); returns the ids. */
static cJSON *seed(int n, const char *records_json)
{
    cJSON *j = records_json
                   ? sim_ctl(&sim, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"records\":%s}",
                             records_json)
                   : sim_ctl(&sim, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"count\":%d}", n);
    cJSON *ids = cJSON_DetachItemFromObject(j, "ids");
    cJSON_Delete(j);
    return ids;
}

static const char *id_at(const cJSON *ids, int i)
{
    return cJSON_GetStringValue(cJSON_GetArrayItem(ids, i));
}

/* The stored row with this id, from /_sim/records (caller deletes the returned array). */
static const cJSON *stored(cJSON **all, const char *id)
{
    *all = sim_ctl(&sim, "GET", "/_sim/records?module=Cases", NULL);
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(*all, "data"))
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r, "id")), id) == 0)
            return r;
    }
    return NULL;
}

static int rows_with_marker(const char *marker)
{
    cJSON *all = sim_ctl(&sim, "GET", "/_sim/records?module=Cases", NULL);
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data"))
    {
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(r, "crmbridge_id"));
        n += m && strcmp(m, marker) == 0;
    }
    cJSON_Delete(all);
    return n;
}

/* Logged API requests whose query contains needle (and whose status equals status if > 0). */
static int64_t sim_now_ms(void)
{
    cJSON *clock = sim_ctl(&sim, "GET", "/_sim/clock", NULL);
    int64_t now = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(clock, "now_ms"));
    cJSON_Delete(clock);
    return now;
}

static int log_count(const char *needle, long status)
{
    cJSON *log = sim_call(&sim, "GET", "/_sim/log", NULL, NULL);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, log)
    {
        const char *q = cJSON_GetStringValue(cJSON_GetObjectItem(e, "query"));
        long st = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "status"));
        if ((!needle || (q && strstr(q, needle))) && (status <= 0 || st == status))
            n++;
    }
    cJSON_Delete(log);
    return n;
}

static void fault(const char *method, const char *path, const char *kind, int status, int count)
{
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"%s\",\"path\":\"%s\",\"kind\":\"%s\","
                         "\"status\":%d,\"count\":%d}]}",
                         method, path, kind, status, count));
}

static void sim_config(const char *json)
{
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/config", "%s", json));
}

struct collect {
    struct record_list all;
    int pages;
};

static enum cb_status collect_page(void *arg, struct record *recs, size_t n)
{
    struct collect *col = arg;
    col->pages++;
    for (size_t i = 0; i < n; i++) {
        struct record r;
        record_copy(&r, &recs[i]);
        record_list_push(&col->all, &r);
    }
    return CB_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Number of distinct ids among the records. */
static size_t distinct_ids(const struct record_list *l)
{
    char **ids = calloc(l->n + 1, sizeof(*ids));
    for (size_t i = 0; i < l->n; i++)
        ids[i] = l->v[i].id;
    qsort(ids, l->n, sizeof(*ids), cmp_str);
    size_t n = l->n ? 1 : 0;
    for (size_t i = 1; i < l->n; i++)
        n += strcmp(ids[i - 1], ids[i]) != 0;
    free(ids);
    return n;
}

static enum cb_status list_all(struct fx *f, int64_t since, struct collect *col)
{
    memset(col, 0, sizeof(*col));
    strbuf_reset(&f->err);
    return ops()->list_changed(f->c, since, collect_page, col, &f->err);
}

static const char *field_str(const struct record *r, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(r->fields, name));
}

/* Runs one write of n ops built from JSON field objects; ids[i] NULL means create. */
static enum cb_status write_n(struct fx *f, struct write_op *w, size_t n, const char *const *ids,
                              const char *const *fields_json, const char *const *markers,
                              cJSON **keep)
{
    for (size_t i = 0; i < n; i++) {
        write_op_init(&w[i]);
        keep[i] = cJSON_Parse(fields_json[i]);
        assert_non_null(keep[i]);
        w[i].id = ids ? ids[i] : NULL;
        w[i].fields = keep[i];
        w[i].marker = markers ? markers[i] : NULL;
    }
    strbuf_reset(&f->err);
    return ops()->write(f->c, w, n, &f->err);
}

static void write_done(struct write_op *w, size_t n, cJSON **keep)
{
    for (size_t i = 0; i < n; i++) {
        write_op_release(&w[i]);
        cJSON_Delete(keep[i]);
    }
}

static enum cb_status create_one(struct fx *f, const char *fields, const char *marker,
                                 struct write_op *w, cJSON **keep)
{
    const char *fl[] = {fields}, *mk[] = {marker};
    return write_n(f, w, 1, NULL, fl, mk, keep);
}

/* ---- configuration ---------------------------------------------------------------------- */

static void test_check_config(void **state)
{
    (void)state;
    const char *bad = "endpoints = {\n"                                           /* 1 */
                      "  zoho_cn = {\n"                                           /* 2 */
                      "    type = \"zoho\";\n"                                    /* 3 */
                      "    accounts_url = \"accounts.zoho.com.cn\";\n"            /* 4 */
                      "    client_id = \"1000.X\";\n"                             /* 5 */
                      "    client_secret = \"env:CB_TEST_ZOHO_UNSET\";\n"         /* 6 */
                      "    marker_field = \"crmbridge id\";\n"                    /* 7 */
                      "    colour = \"blue\";\n"                                  /* 8 */
                      "  };\n"                                                    /* 9 */
                      "  jira = { type = \"jira\"; };\n"                          /* 10 */
                      "};\n"                                                      /* 11 */
                      "pairs = ( { name = \"p\";\n"                               /* 12 */
                      "  crm = { endpoint = \"zoho_cn\"; modul = \"Cases\"; };\n" /* 13 */
                      "  tracker = { endpoint = \"jira\"; }; } );\n";             /* 14 */
    unsetenv("CB_TEST_ZOHO_UNSET");
    struct config *cfg = NULL;
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = config_load_string(bad, "bad.conf", &cfg, &err);
    if (st != CB_OK)
        fprintf(stderr, "%s\n", err.buf);
    assert_int_equal(st, CB_OK);
    const struct side_conf *side = &config_pair(cfg, "p")->side[0];
    assert_int_equal(ops()->check_config(config_endpoint(cfg, "zoho_cn"), side, &err),
                     CB_ERR_CONFIG);
    const char *expect[] = {
        "bad.conf:2: zoho endpoint 'zoho_cn' is missing 'api_url'",
        "bad.conf:2: zoho endpoint 'zoho_cn' is missing 'refresh_token'",
        "bad.conf:4: 'accounts_url' must be an http:// or https:// url",
        "bad.conf:6: 'client_secret': environment variable 'CB_TEST_ZOHO_UNSET' is not set",
        "bad.conf:7: 'marker_field' must be a field api name",
        "bad.conf:8: unknown zoho endpoint setting 'colour'",
        "bad.conf:13: the zoho side of the pair is missing 'module'",
        "bad.conf:13: unknown zoho side setting 'modul'",
    };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        if (!strstr(err.buf, expect[i]))
            fprintf(stderr, "missing '%s' in:\n%s\n", expect[i], err.buf);
        assert_non_null(strstr(err.buf, expect[i]));
    }
    /* open refuses the same block and leaves *out NULL */
    struct connector_params p = {.ep = config_endpoint(cfg, "zoho_cn"), .side = side};
    struct connector *c = (struct connector *)&p;
    strbuf_reset(&err);
    assert_int_equal(ops()->open(&p, &c, &err), CB_ERR_CONFIG);
    assert_null(c);
    config_free(cfg);

    cfg = conf_for(NULL, NULL);
    strbuf_reset(&err);
    assert_int_equal(
        ops()->check_config(config_endpoint(cfg, "zoho_cn"), &config_pair(cfg, "p")->side[0], &err),
        CB_OK);
    assert_int_equal(err.len, 0);
    config_free(cfg);
    strbuf_release(&err);
}

static void test_ping_checks_fields(void **state)
{
    struct fx *f = *state;
    struct strbuf info = STRBUF_INIT;
    assert_int_equal(ops()->ping(f->c, &info, &f->err), CB_OK);
    assert_non_null(strstr(info.buf, "zoho crm 'zoho_cn'"));
    const char *mod = strstr(info.buf, "module Cases, ");
    assert_non_null(mod);
    char *end = NULL;
    long nf = strtol(mod + strlen("module Cases, "), &end, 10);
    assert_true(nf >= 20); /* the simulator's Cases layout: 20-odd fields */
    assert_non_null(strstr(end, " fields"));

    const char *const bad_fields[] = {"Subject", "Nope", NULL};
    struct connector *c = conn_open(f->cfg, NULL, bad_fields);
    assert_int_equal(ops()->ping(c, &info, &f->err), CB_ERR_CONFIG);
    assert_non_null(strstr(f->err.buf, "field 'Nope' does not exist in zoho module 'Cases'"));
    ops()->close(c);

    struct config *cfg = conf_for(NULL, "Nope");
    c = conn_open(cfg, NULL, NULL);
    assert_int_equal(ops()->ping(c, &info, &f->err), CB_ERR_CONFIG);
    assert_non_null(strstr(f->err.buf, "zoho module 'Nope' does not exist"));
    ops()->close(c);
    config_free(cfg);
    strbuf_release(&info);
}

static void test_api_domain_wins(void **state)
{
    struct fx *f = *state;
    struct config *cfg = conf_for("http://127.0.0.1:9", NULL); /* nothing listens there */
    struct connector *c = conn_open(cfg, NULL, NULL);
    struct strbuf info = STRBUF_INIT;
    assert_int_equal(ops()->ping(c, &info, &f->err), CB_OK);
    assert_non_null(strstr(info.buf, sim.base));
    ops()->close(c);
    config_free(cfg);
    strbuf_release(&info);
}

/* ---- OAuth ------------------------------------------------------------------------------ */

static void test_token_reused(void **state)
{
    struct fx *f = *state;
    cJSON *ids = seed(5, NULL);
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_OK);
    struct collect col;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(list_all(f, 0, &col), CB_OK);
        assert_int_equal(col.all.n, 5);
        record_list_release(&col.all);
    }
    const char *one[] = {id_at(ids, 0)};
    struct record_list got = {0};
    assert_int_equal(ops()->get_many(f->c, one, 1, &got, &f->err), CB_OK);
    assert_int_equal(got.n, 1);
    record_list_release(&got);
    struct record r = {0};
    assert_int_equal(ops()->find_marker(f->c, "absent", 0, &r, &f->err), CB_ERR_NOTFOUND);
    assert_int_equal((int)stat_of("tokens_minted"), 1);
    assert_int_equal(sim_count(&sim, "POST", "/oauth/v2/token"), 1);
    cJSON_Delete(ids);
}

static void test_token_refreshed_once(void **state)
{
    struct fx *f = *state;
    cJSON_Delete(seed(3, NULL));
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_OK);
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/expire_tokens", NULL));
    struct collect col;
    assert_int_equal(list_all(f, 0, &col), CB_OK);
    assert_int_equal(col.all.n, 3);
    record_list_release(&col.all);
    assert_int_equal((int)stat_of("tokens_minted"), 2);
    assert_int_equal(log_count(NULL, 401), 1);

    /* the server's clock passes the hour while ours does not: one 401, one refresh */
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/clock", "{\"advance_ms\":3700000}"));
    assert_int_equal(list_all(f, 0, &col), CB_OK);
    record_list_release(&col.all);
    assert_int_equal(list_all(f, 0, &col), CB_OK);
    record_list_release(&col.all);
    assert_int_equal((int)stat_of("tokens_minted"), 3);
    assert_int_equal(log_count(NULL, 401), 2);

    /* a 401 that a new token does not cure: one refresh, then an auth failure, no loop */
    fault("GET", "/crm/v8/settings/fields", "status", 401, -1);
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_ERR_AUTH);
    assert_non_null(strstr(f->err.buf, "http 401 INVALID_TOKEN"));
    assert_int_equal((int)stat_of("tokens_minted"), 4);
}

static void test_token_errors(void **state)
{
    struct fx *f = *state;
    sim_config("{\"client_id\":\"1000.REGISTERED_ELSEWHERE\"}");
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_ERR_AUTH);
    assert_non_null(strstr(f->err.buf, "invalid_client"));
    assert_non_null(strstr(f->err.buf, "data centre"));
    assert_null(strstr(f->err.buf, "sim-client-secret"));
    assert_null(strstr(f->err.buf, "sim-refresh-token"));

    sim_config("{\"client_id\":\"1000.SIMCLIENT\",\"refresh_token\":\"1000.revoked\"}");
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_ERR_AUTH);
    assert_non_null(strstr(f->err.buf, "invalid_code"));
    assert_non_null(strstr(f->err.buf, "refresh_token"));
    assert_int_equal((int)stat_of("tokens_minted"), 0);
}

static void test_token_throttled(void **state)
{
    struct fx *f = *state;
    /* ten tokens in ten minutes per refresh token; the eleventh is refused for a while */
    for (int i = 0; i < 10; i++) {
        cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/expire_tokens", NULL));
        assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_OK);
    }
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/expire_tokens", NULL));
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_ERR_WAIT);
    assert_non_null(strstr(f->err.buf, "try again later"));
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/clock", "{\"advance_ms\":600000}"));
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_OK);
    assert_int_equal((int)stat_of("tokens_minted"), 11);
}

static int dir_contains(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d)) != NULL && !found) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *fp = fopen(path, "rb");
        if (!fp)
            continue;
        struct strbuf sb = STRBUF_INIT;
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
            (void)strbuf_add(&sb, buf, n);
        fclose(fp);
        found = sb.len && memmem(sb.buf, sb.len, needle, strlen(needle)) != NULL;
        strbuf_release(&sb);
    }
    if (d)
        closedir(d);
    return found;
}

static void test_token_cache(void **state)
{
    struct fx *f = *state;
    char *dir = tu_tmpdir();
    struct cache *cache = NULL;
    assert_int_equal(cache_open(dir, &cache, &f->err), CB_OK);
    for (int i = 0; i < 3; i++) { /* three runs of crmbridge share one state_dir */
        struct connector *c = conn_open(f->cfg, cache, NULL);
        assert_int_equal(ops()->ping(c, NULL, &f->err), CB_OK);
        ops()->close(c);
    }
    assert_int_equal((int)stat_of("tokens_minted"), 1);

    /* a cached token the server no longer accepts is replaced once */
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/expire_tokens", NULL));
    struct connector *c = conn_open(f->cfg, cache, NULL);
    assert_int_equal(ops()->ping(c, NULL, &f->err), CB_OK);
    ops()->close(c);
    assert_int_equal((int)stat_of("tokens_minted"), 2);
    cache_close(cache);
    assert_false(dir_contains(dir, "access_token")); /* sealed, not plain JSON */
    assert_false(dir_contains(dir, "1000."));
    tu_rmrf(dir);
    free(dir);
}

/* ---- reading ---------------------------------------------------------------------------- */

static void test_list_all_pages(void **state)
{
    struct fx *f = *state;
    cJSON_Delete(seed(2500, NULL));
    sim_clear_log(&sim);
    struct collect col;
    assert_int_equal(list_all(f, 0, &col), CB_OK);
    assert_int_equal(col.all.n, 2500);
    assert_int_equal(distinct_ids(&col.all), 2500);
    assert_int_equal(col.pages, 13);
    assert_int_equal(log_count("&page=", 200), 10);
    assert_int_equal(log_count("&page_token=", 200), 3);
    int64_t prev = 0;
    for (size_t i = 0; i < col.all.n; i++) { /* oldest first, decoded */
        const struct record *r = &col.all.v[i];
        assert_true(r->modified_ms >= prev);
        prev = r->modified_ms;
        assert_non_null(r->key);
        assert_non_null(r->url);
        assert_non_null(strstr(r->url, r->id));
        assert_non_null(field_str(r, "Subject"));
        assert_non_null(field_str(r, "Status"));
        assert_non_null(field_str(r, "Account_Name")); /* the lookup's name, not {name,id} */
        assert_null(cJSON_GetObjectItem(r->fields, "$key"));
    }
    record_list_release(&col.all);
}

static void test_list_since(void **state)
{
    struct fx *f = *state;
    cJSON *ids = seed(30, NULL);
    int64_t t0 = sim_now_ms();
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/clock", "{\"advance_ms\":10000}"));
    for (int i = 0; i < 3; i++)
        cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/edit",
                             "{\"module\":\"Cases\",\"id\":\"%s\",\"user\":\"Li Wei\","
                             "\"fields\":{\"Status\":\"Escalated\"}}",
                             id_at(ids, 7 * i)));
    struct collect col;
    assert_int_equal(list_all(f, t0 + 5000, &col), CB_OK);
    assert_int_equal(col.all.n, 3);
    for (size_t i = 0; i < col.all.n; i++) {
        assert_string_equal(col.all.v[i].modified_by, "Li Wei");
        assert_string_equal(field_str(&col.all.v[i], "Status"), "Escalated");
        assert_true(col.all.v[i].modified_ms >= t0 + 5000);
    }
    record_list_release(&col.all);

    /* nothing newer: 304, no page handed over */
    assert_int_equal(list_all(f, t0 + 20000, &col), CB_OK);
    assert_int_equal(col.pages, 0);
    assert_int_equal(log_count(NULL, 304), 1);
    cJSON_Delete(ids);
}

static enum cb_status list_ids(struct fx *f, int64_t since, struct collect *col)
{
    memset(col, 0, sizeof(*col));
    strbuf_reset(&f->err);
    return ops()->list_changed_ids(f->c, since, collect_page, col, &f->err);
}

static int64_t seed_at(int n, int64_t start_ms, int step_s)
{
    cJSON *j = sim_ctl(&sim, "POST", "/_sim/seed",
                       "{\"module\":\"Cases\",\"count\":%d,\"start_ms\":%lld,\"step_s\":%d}", n,
                       (long long)start_ms, step_s);
    cJSON_Delete(j);
    return start_ms - start_ms % 1000;
}

/* The ids listing pages through COQL 2,000 rows at a time, restarting at the newest second of
 * a page: a second that straddles two pages gives each of its records once. */
static void test_list_ids_pages_through_ties(void **state)
{
    struct fx *f = *state;
    int64_t now = sim_now_ms();
    int64_t s0 = seed_at(1900, now - 3600 * 1000, 1);
    seed_at(300, s0 + 1899 * 1000, 0); /* 301 records at one second, rows 1,899 to 2,199 */
    seed_at(500, s0 + 2000 * 1000, 1);
    sim_clear_log(&sim);
    struct collect col;
    assert_int_equal(list_ids(f, 0, &col), CB_OK);
    assert_int_equal(col.all.n, 2700);
    assert_int_equal(distinct_ids(&col.all), 2700);
    assert_int_equal(sim_count(&sim, "POST", "/crm/v8/coql"), 2);
    assert_int_equal(sim_count(&sim, "GET", "/crm/v8/Cases"), 0);
    int64_t prev = 0;
    for (size_t i = 0; i < col.all.n; i++) {
        assert_true(col.all.v[i].modified_ms >= prev);
        prev = col.all.v[i].modified_ms;
        assert_null(col.all.v[i].fields); /* ids and times only */
    }
    record_list_release(&col.all);

    /* from a time on: the records of that second and after */
    assert_int_equal(list_ids(f, s0 + 2000 * 1000 + 400, &col), CB_OK);
    assert_int_equal(col.all.n, 500);
    record_list_release(&col.all);
    assert_int_equal(list_ids(f, now + 3600 * 1000, &col), CB_OK); /* 204: none */
    assert_int_equal(col.all.n, 0);
}

/* More records in one second than a COQL page holds cannot be paged through exactly: the
 * caller is told so (CB_ERR_FINAL) rather than handed a listing with holes. */
static void test_list_ids_refuses_a_second_over_a_page(void **state)
{
    struct fx *f = *state;
    int64_t now = sim_now_ms();
    int64_t t = seed_at(2001, now - 600 * 1000, 0);
    struct collect col;
    assert_int_equal(list_ids(f, t, &col), CB_ERR_FINAL);
    assert_non_null(strstr(f->err.buf, "over 2000 records modified at"));
    record_list_release(&col.all);
}

static void test_get_many(void **state)
{
    struct fx *f = *state;
    cJSON *ids = seed(6, NULL);
    const char *want[] = {id_at(ids, 1), id_at(ids, 3), "5725767999999999999", id_at(ids, 5)};
    struct record_list got = {0};
    assert_int_equal(ops()->get_many(f->c, want, 4, &got, &f->err), CB_OK);
    assert_int_equal(got.n, 3);
    for (size_t i = 0; i < got.n; i++) {
        assert_true(strcmp(got.v[i].id, want[2]) != 0);
        assert_non_null(field_str(&got.v[i], "Account_Name"));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(got.v[i].fields, "Description")));
        assert_true(got.v[i].modified_ms > 0);
    }
    assert_int_equal(sim_count(&sim, "GET", "/crm/v8/Cases"), 1);
    record_list_release(&got);
    cJSON_Delete(ids);
}

/* ---- writing ---------------------------------------------------------------------------- */

static void test_batch_update_partial(void **state)
{
    struct fx *f = *state;
    cJSON *ids = seed(0, "[{\"Subject\":\"A\"},{\"Subject\":\"B\"},{\"Subject\":\"C\"}]");
    const char *id3[] = {id_at(ids, 0), id_at(ids, 1), id_at(ids, 2)};
    const char *fl[] = {"{\"Status\":\"Escalated\"}", "{\"Priority\":\"Urgent\"}",
                        "{\"Status\":\"On Hold\",\"Description\":\"Call back **today**\"}"};
    struct write_op w[3];
    cJSON *keep[3];
    assert_int_equal(write_n(f, w, 3, id3, fl, NULL, keep), CB_OK);
    assert_int_equal(w[0].st, CB_OK);
    assert_int_equal(w[1].st, CB_ERR_FINAL);
    assert_int_equal(w[2].st, CB_OK);
    assert_non_null(strstr(w[1].err.buf, "field 'Priority'"));
    assert_non_null(strstr(w[1].err.buf, "INVALID_DATA"));
    assert_non_null(strstr(w[1].err.buf, id3[1]));
    assert_string_equal(w[0].rec.id, id3[0]);
    assert_true(w[0].rec.modified_ms > 0);
    assert_non_null(w[2].rec.url);
    assert_int_equal(log_count(NULL, 207), 1);
    assert_int_equal(sim_count(&sim, "PUT", "/crm/v8/Cases"), 1);
    cJSON *all;
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(stored(&all, id3[0]), "Status")),
                        "Escalated");
    cJSON_Delete(all);
    const cJSON *row = stored(&all, id3[1]);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(row, "Priority")));
    cJSON_Delete(all);
    write_done(w, 3, keep);
    assert_int_equal((int)stat_of("automations_triggered"), 0);
    cJSON_Delete(ids);
}

static void test_unwritable_fields(void **state)
{
    struct fx *f = *state;
    cJSON *ids = seed(1, NULL);
    const char *id3[] = {id_at(ids, 0), id_at(ids, 0), id_at(ids, 0)};
    const char *fl[] = {"{\"Account_Name\":\"Acme Trading Co.\"}", "{\"Nope\":\"x\"}",
                        "{\"Case_Number\":\"77\"}"};
    const char *names[] = {"field 'Account_Name' is a lookup", "field 'Nope' does not exist",
                           "field 'Case_Number' is read-only"};
    struct write_op w[3];
    cJSON *keep[3];
    assert_int_equal(write_n(f, w, 3, id3, fl, NULL, keep), CB_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(w[i].st, CB_ERR_FINAL);
        assert_non_null(strstr(w[i].err.buf, names[i]));
    }
    assert_int_equal(sim_count(&sim, "PUT", NULL), 0); /* nothing left to send */
    write_done(w, 3, keep);
    cJSON_Delete(ids);
}

static void test_create_and_find_marker(void **state)
{
    struct fx *f = *state;
    const char *markers[] = {"cb-7f3a-0001", "it's \\ odd"};
    for (int i = 0; i < 2; i++) {
        struct write_op w[1];
        cJSON *keep[1];
        assert_int_equal(create_one(f,
                                    "{\"Subject\":\"From Jira SUP-1\",\"Priority\":\"High\","
                                    "\"Jira_Issue\":\"SUP-1\",\"Description\":\"- a\\n- b\"}",
                                    markers[i], w, keep),
                         CB_OK);
        assert_int_equal(w[0].st, CB_OK);
        assert_non_null(w[0].rec.id);
        assert_string_equal(w[0].rec.marker, markers[i]);
        assert_non_null(strstr(w[0].rec.url, w[0].rec.id));
        assert_true(w[0].rec.modified_ms > 0);

        struct record r = {0};
        assert_int_equal(ops()->find_marker(f->c, markers[i], 0, &r, &f->err), CB_OK);
        assert_string_equal(r.id, w[0].rec.id);
        assert_string_equal(r.marker, markers[i]);
        assert_non_null(r.key);
        assert_string_equal(field_str(&r, "Subject"), "From Jira SUP-1");
        assert_string_equal(field_str(&r, "Jira_Issue"), "SUP-1");
        char *sent = richtext_md_normalize("- a\n- b"),
             *back = richtext_md_normalize(
                 field_str(&r, "Description")); /* textarea: plain on the wire */
        assert_string_equal(back, sent);
        free(sent);
        free(back);
        record_release(&r);
        write_done(w, 1, keep);
        assert_int_equal(rows_with_marker(markers[i]), 1);
    }
    struct record r = {0};
    assert_int_equal(ops()->find_marker(f->c, "cb-none", 0, &r, &f->err), CB_ERR_NOTFOUND);
    assert_int_equal((int)stat_of("automations_triggered"), 0);
}

static void test_create_retry_no_duplicate(void **state)
{
    struct fx *f = *state;
    fault("POST", "/crm/v8/Cases/upsert", "drop_response", 0, 1);
    struct write_op w[1];
    cJSON *keep[1];
    assert_int_equal(create_one(f, "{\"Subject\":\"Lost answer\"}", "cb-drop-1", w, keep), CB_OK);
    assert_int_equal(w[0].st, CB_OK);
    char *id = strdup(w[0].rec.id);
    write_done(w, 1, keep);
    assert_int_equal(sim_count(&sim, "POST", "/crm/v8/Cases/upsert"), 2);
    assert_int_equal(rows_with_marker("cb-drop-1"), 1);

    /* the engine repeats the create after a crash: same record, still one row */
    assert_int_equal(create_one(f, "{\"Subject\":\"Lost answer\"}", "cb-drop-1", w, keep), CB_OK);
    assert_int_equal(w[0].st, CB_OK);
    assert_string_equal(w[0].rec.id, id);
    write_done(w, 1, keep);
    assert_int_equal(rows_with_marker("cb-drop-1"), 1);
    free(id);
}

/* ---- concurrency ------------------------------------------------------------------------ */

static void test_check_concurrency(void **state)
{
    (void)state;
    const char *bad[] = {"concurrency = -1;", "concurrency = \"ten\";", "concurrency = 5000;"};
    const char *good[] = {"concurrency = 0;", "concurrency = 20;", ""};
    struct strbuf err = STRBUF_INIT;
    for (size_t i = 0; i < 6; i++) {
        struct config *cfg = conf_with(NULL, NULL, i < 3 ? bad[i] : good[i - 3]);
        strbuf_reset(&err);
        enum cb_status st = ops()->check_config(config_endpoint(cfg, "zoho_cn"),
                                                &config_pair(cfg, "p")->side[0], &err);
        assert_int_equal(st, i < 3 ? CB_ERR_CONFIG : CB_OK);
        if (i < 3) /* the endpoint's extra line is line 9 */
            assert_non_null(strstr(err.buf, "zoho.conf:9: zoho 'concurrency' must be"));
        config_free(cfg);
    }
    strbuf_release(&err);
}

struct gate_try {
    struct gate *g;
    enum cb_status st;
    int done;
};

static void *gate_try_enter(void *arg)
{
    struct gate_try *t = arg;
    t->st = gate_enter(t->g);
    __atomic_store_n(&t->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* A third thread waits on a gate of 2 until a holder leaves; a waiter is let go by a stop. */
static void test_gate_blocks_and_wakes(void **state)
{
    (void)state;
    assert_null(gate_shared("test gate none", 0));
    assert_int_equal(gate_enter(NULL), CB_OK);
    struct gate_try t = {.g = gate_shared("test gate 2", 2)};
    assert_non_null(t.g);
    assert_int_equal(gate_enter(t.g), CB_OK);
    assert_int_equal(gate_enter(t.g), CB_OK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, gate_try_enter, &t), 0);
    usleep(150 * 1000);
    assert_int_equal(__atomic_load_n(&t.done, __ATOMIC_SEQ_CST), 0);
    gate_leave(t.g);
    pthread_join(th, NULL);
    assert_int_equal(t.st, CB_OK);
    assert_int_equal(gate_waits(t.g), 1);

    t.done = 0; /* full again: the stop request ends the wait, holding nothing */
    assert_int_equal(pthread_create(&th, NULL, gate_try_enter, &t), 0);
    usleep(50 * 1000);
    http_request_stop();
    pthread_join(th, NULL);
    http_stop_reset();
    assert_int_equal(t.st, CB_ERR_STOPPED);
    gate_leave(t.g);
    gate_leave(t.g);
    assert_int_equal(gate_enter(t.g), CB_OK);
    assert_int_equal(gate_enter(t.g), CB_OK);
    gate_leave(t.g);
    gate_leave(t.g);
}

struct reader {
    struct connector *c;
    const char *const *ids;
    int calls;
    enum cb_status st;
    struct strbuf err;
};

static void *reader_run(void *arg)
{
    struct reader *r = arg;
    for (int i = 0; i < r->calls && r->st == CB_OK; i++) {
        struct record_list got = {0};
        r->st = ops()->get_many(r->c, r->ids, 2, &got, &r->err);
        record_list_release(&got);
    }
    return NULL;
}

enum { READERS = 4 };

/* READERS connections of cfg (tokens and field metadata fetched one after the other). */
static void readers_open(struct reader *r, struct config *cfg, const char *const *ids, int calls)
{
    for (int i = 0; i < READERS; i++) {
        r[i] = (struct reader){.c = conn_open(cfg, NULL, NULL), .ids = ids, .calls = calls};
        strbuf_init(&r[i].err, 0);
        assert_int_equal(ops()->ping(r[i].c, NULL, &r[i].err), CB_OK);
    }
}

static void readers_close(struct reader *r)
{
    for (int i = 0; i < READERS; i++) {
        ops()->close(r[i].c);
        strbuf_release(&r[i].err);
    }
}

static void readers_run(struct reader *r, int n)
{
    pthread_t th[READERS];
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader_run, &r[i]), 0);
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        if (r[i].st != CB_OK)
            fprintf(stderr, "reader %d: %s\n", i, r[i].err.buf);
        assert_int_equal(r[i].st, CB_OK);
    }
}

static void latency_everywhere(int ms)
{
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/faults",
                         "{\"rules\":[{\"path\":\"/crm/.*\",\"kind\":\"latency\","
                         "\"delay_ms\":%d,\"count\":-1}]}",
                         ms));
}

/* Four connections of one org whose edition lets 2 calls be in flight, all reading at once while
 * each call takes 150 ms inside the service: together they keep to 2, so none is refused. */
static void test_concurrency_shared(void **state)
{
    (void)state;
    cJSON *ids = seed(4, NULL);
    const char *want[] = {id_at(ids, 0), id_at(ids, 1)};
    struct config *cfg = conf_with(NULL, NULL, "concurrency = 2;");
    struct reader r[READERS];
    readers_open(r, cfg, want, 3);
    sim_config("{\"concurrency\":2}");
    latency_everywhere(150);
    readers_run(r, READERS);
    assert_int_equal(stat_of("rejected_concurrency"), 0);
    assert_int_equal(stat_of("inflight_max"), 2); /* and the two slots were used */
    assert_int_equal(log_count("ids=", 200), READERS * 3);
    readers_close(r);
    config_free(cfg);
    cJSON_Delete(ids);
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

/* With one slot, a call waiting 1 s to be resent (503, Retry-After) holds none: another
 * connection's call goes through meanwhile. */
static void test_concurrency_free_while_retrying(void **state)
{
    (void)state;
    cJSON *ids = seed(2, NULL);
    const char *want[] = {id_at(ids, 0), id_at(ids, 1)};
    struct config *cfg = conf_with(NULL, NULL, "concurrency = 1;");
    struct reader r[READERS];
    readers_open(r, cfg, want, 1);
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/faults",
                         "{\"rules\":[{\"path\":\"/crm/v8/Cases\",\"kind\":\"status\","
                         "\"status\":503,\"retry_after\":1,\"count\":1}]}"));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_run, &r[0]), 0);
    for (int i = 0; i < 200 && log_count("ids=", 503) == 0; i++)
        usleep(10 * 1000);
    double t0 = mono_ms();
    readers_run(r + 1, 1);
    double took = mono_ms() - t0;
    pthread_join(th, NULL);
    assert_int_equal(r[0].st, CB_OK);
    assert_true(took < 700);
    readers_close(r);
    config_free(cfg);
    cJSON_Delete(ids);
}

/* ---- failures --------------------------------------------------------------------------- */

static void test_rate_limited(void **state)
{
    struct fx *f = *state;
    cJSON_Delete(seed(10, NULL));
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_OK);
    fault("GET", "/crm/v8/Cases", "status", 429, 3);
    struct collect col;
    assert_int_equal(list_all(f, 0, &col), CB_OK);
    assert_int_equal(col.all.n, 10);
    record_list_release(&col.all);
    assert_int_equal(log_count(NULL, 429), 3);

    /* credits spent for the day: the answer is 429 without Retry-After, every time */
    sim_config("{\"credits\":1}");
    assert_int_equal(list_all(f, 0, &col), CB_ERR_WAIT);
    assert_non_null(strstr(f->err.buf, "cannot list zoho module 'Cases': http 429"));
    assert_non_null(strstr(f->err.buf, "TOO_MANY_REQUESTS"));
    record_list_release(&col.all);
}

static void test_server_errors(void **state)
{
    struct fx *f = *state;
    cJSON *ids = seed(2, NULL);
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_OK);
    fault("GET", "/crm/v8/Cases", "status", 500, 2);
    const char *one[] = {id_at(ids, 0)};
    struct record_list got = {0};
    assert_int_equal(ops()->get_many(f->c, one, 1, &got, &f->err), CB_OK);
    assert_int_equal(got.n, 1);
    record_list_release(&got);

    fault("GET", "/crm/v8/Cases", "status", 500, -1);
    assert_int_equal(ops()->get_many(f->c, one, 1, &got, &f->err), CB_ERR_TEMP);
    assert_non_null(strstr(f->err.buf, "http 500 INTERNAL_ERROR"));
    assert_int_equal(got.n, 0);
    cJSON_Delete(ids);
}

static void test_bad_bodies(void **state)
{
    struct fx *f = *state;
    cJSON_Delete(seed(4, NULL));
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_OK);
    struct collect col;

    fault("GET", "/crm/v8/Cases", "html", 0, 1);
    assert_int_equal(list_all(f, 0, &col), CB_ERR_TEMP);
    assert_non_null(strstr(f->err.buf, "unexpected html from zoho"));
    record_list_release(&col.all);

    fault("GET", "/crm/v8/Cases", "truncate", 0, 1); /* a cut connection is retried */
    assert_int_equal(list_all(f, 0, &col), CB_OK);
    assert_int_equal(col.all.n, 4);
    record_list_release(&col.all);

    fault("GET", "/crm/v8/Cases", "truncate", 0, -1);
    assert_int_equal(list_all(f, 0, &col), CB_ERR_TEMP);
    record_list_release(&col.all);
    cJSON_Delete(sim_ctl(&sim, "DELETE", "/_sim/faults", NULL));

    sim_config("{\"garble_next\":1}"); /* well framed, but not JSON */
    assert_int_equal(list_all(f, 0, &col), CB_ERR_PARSE);
    assert_non_null(strstr(f->err.buf, "malformed json from zoho"));
    assert_int_equal(col.pages, 0);
    record_list_release(&col.all);
}

/* ---- people ----------------------------------------------------------------------------- */

static const char *const person_fields[] = {"Subject", "Owner", "Support_Engineer", NULL};

/* A connector reading person_fields, pinged, with the active users in *dir. */
static void people_open(struct fx *f, struct person_list *dir)
{
    ops()->close(f->c);
    f->c = conn_open(f->cfg, NULL, person_fields);
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_OK);
    memset(dir, 0, sizeof(*dir));
    assert_int_equal(ops()->list_users(f->c, dir, &f->err), CB_OK);
}

/* The id of the only user of dir with this name. */
static const char *user_id(const struct person_list *dir, const char *name)
{
    const struct person *p = person_list_find(dir, name);
    assert_non_null(p);
    return p->id;
}

/* The stored person field of a case read back through get_many (caller deletes). */
static cJSON *read_person(struct fx *f, const char *id, const char *field)
{
    struct record_list got = {0};
    assert_int_equal(ops()->get_many(f->c, &id, 1, &got, &f->err), CB_OK);
    assert_int_equal(got.n, 1);
    cJSON *v = cJSON_DetachItemFromObject(got.v[0].fields, field);
    assert_non_null(v);
    record_list_release(&got);
    return v;
}

static void test_list_users_pages(void **state)
{
    struct fx *f = *state;
    struct person_list dir;
    people_open(f, &dir);
    size_t before = dir.n;
    assert_true(before >= 5);
    const struct person *li = person_list_find(&dir, "李伟");
    assert_non_null(li);
    assert_non_null(li->email);
    int chen = 0; /* two active users share this display name: both listed */
    for (size_t i = 0; i < dir.n; i++)
        chen += strcmp(dir.v[i].name, "Chen Jing") == 0;
    assert_int_equal(chen, 2);
    assert_null(person_list_find(&dir, "Chen Jing"));
    cJSON *gone = sim_ctl(&sim, "POST", "/_sim/users",
                          "{\"full_name\":\"Gone Agent\",\"status\":\"disabled\"}");
    cJSON *added = sim_ctl(&sim, "POST", "/_sim/users", "{\"count\":%d}", 250);
    person_list_release(&dir);
    sim_clear_log(&sim);
    assert_int_equal(ops()->list_users(f->c, &dir, &f->err), CB_OK);
    assert_int_equal(dir.n, before + 250);
    assert_int_equal(sim_count(&sim, "GET", "/crm/v8/users"), 2);
    assert_int_equal(log_count("&page=2", 200), 1);
    const cJSON *id;
    cJSON_ArrayForEach(id, cJSON_GetObjectItem(added, "ids"))
    {
        assert_non_null(person_list_find(&dir, id->valuestring));
    }
    const char *gone_id =
        cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(gone, "ids"), 0));
    assert_null(person_list_find(&dir, gone_id)); /* only active users can be set */
    for (size_t i = 0; i < dir.n; i++)
        for (size_t k = i + 1; k < dir.n; k++)
            assert_true(strcmp(dir.v[i].id, dir.v[k].id) != 0);
    person_list_release(&dir);
    cJSON_Delete(added);
    cJSON_Delete(gone);
}

static void test_person_fields_read(void **state)
{
    struct fx *f = *state;
    struct person_list dir;
    people_open(f, &dir);
    assert_int_equal(ops()->person_field(f->c, "Owner"), 1);
    assert_int_equal(ops()->person_field(f->c, "Modified_By"), 1);
    assert_int_equal(ops()->person_field(f->c, "Support_Engineer"), 1);
    assert_int_equal(ops()->person_field(f->c, "Account_Name"), 0); /* a record lookup */
    assert_int_equal(ops()->person_field(f->c, "Subject"), 0);
    assert_int_equal(ops()->person_field(f->c, "No_Such_Field"), 0);
    cJSON *ids = seed(0, "[{\"Subject\":\"who\",\"Owner\":\"李伟\"}]");
    cJSON *owner = read_person(f, id_at(ids, 0), "Owner");
    const struct person *li = person_list_find(&dir, "李伟");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "id")), li->id);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "name")), "李伟");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "email")), li->email);
    cJSON *eng = read_person(f, id_at(ids, 0), "Support_Engineer");
    assert_true(cJSON_IsNull(eng)); /* never set */
    cJSON_Delete(eng);
    cJSON_Delete(owner);
    cJSON_Delete(ids);
    person_list_release(&dir);
}

/* Writes fields to record id (NULL: creates with marker), expects success, returns the id. */
static char *write_ok(struct fx *f, const char *id, const char *fields, const char *marker)
{
    const char *fl[] = {fields}, *ids[] = {id}, *mk[] = {marker};
    struct write_op w[1];
    cJSON *keep[1];
    assert_int_equal(write_n(f, w, 1, ids, fl, mk, keep), CB_OK);
    assert_int_equal(w[0].st, CB_OK);
    char *rid = strdup(w[0].rec.id);
    write_done(w, 1, keep);
    return rid;
}

static void test_person_fields_write(void **state)
{
    struct fx *f = *state;
    struct person_list dir;
    people_open(f, &dir);
    cJSON *ids = seed(0, "[{\"Subject\":\"A\",\"Support_Engineer\":\"Li Wei\"}]");
    const char *id = id_at(ids, 0);
    const char *pat = user_id(&dir, "Patricia Boyle"), *li = user_id(&dir, "李伟");
    char fields[256];
    snprintf(fields, sizeof(fields), "{\"Owner\":\"%s\",\"Support_Engineer\":\"%s\"}", pat, li);
    free(write_ok(f, id, fields, NULL));
    cJSON *owner = read_person(f, id, "Owner"), *eng = read_person(f, id, "Support_Engineer");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "id")), pat);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "name")), "Patricia Boyle");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(eng, "id")), li);
    cJSON_Delete(owner);
    cJSON_Delete(eng);

    free(write_ok(f, id, "{\"Support_Engineer\":null}", NULL)); /* a user lookup may be emptied */
    eng = read_person(f, id, "Support_Engineer");
    assert_true(cJSON_IsNull(eng));
    cJSON_Delete(eng);

    /* zoho gives a new record without an owner its default one */
    char *created = write_ok(f, NULL, "{\"Subject\":\"new\",\"Owner\":null}", "cb-person-1");
    owner = read_person(f, created, "Owner");
    assert_non_null(person_list_find(&dir, cJSON_GetStringValue(cJSON_GetObjectItem(owner, "id"))));
    cJSON_Delete(owner);
    free(created);
    cJSON_Delete(ids);
    person_list_release(&dir);
}

static void test_person_refused(void **state)
{
    struct fx *f = *state;
    struct person_list dir;
    people_open(f, &dir);
    cJSON *ids = seed(0, "[{\"Subject\":\"A\"},{\"Subject\":\"B\"},{\"Subject\":\"C\"},"
                         "{\"Subject\":\"D\"}]");
    cJSON *gone = sim_ctl(&sim, "POST", "/_sim/users",
                          "{\"full_name\":\"Gone Agent\",\"status\":\"disabled\"}");
    const char *gone_id =
        cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(gone, "ids"), 0));
    char unknown[64], former[96];
    snprintf(unknown, sizeof(unknown), "{\"Owner\":\"%s\"}", "5725767999999999999");
    snprintf(former, sizeof(former), "{\"Support_Engineer\":\"%s\"}", gone_id);
    const char *four[] = {id_at(ids, 0), id_at(ids, 1), id_at(ids, 2), id_at(ids, 3)};
    const char *fl[] = {unknown, "{\"Subject\":\"B2\"}", "{\"Owner\":null}", former};
    struct write_op w[4];
    cJSON *keep[4];
    assert_int_equal(write_n(f, w, 4, four, fl, NULL, keep), CB_OK);
    assert_int_equal(w[0].st, CB_ERR_FINAL);
    assert_non_null(strstr(w[0].err.buf, four[0]));
    assert_non_null(strstr(w[0].err.buf, "field 'Owner': '5725767999999999999' is not an active "
                                         "zoho user"));
    assert_int_equal(w[1].st, CB_OK);
    assert_int_equal(w[2].st, CB_ERR_FINAL);
    assert_non_null(strstr(w[2].err.buf, "field 'Owner' is mandatory in zoho"));
    assert_int_equal(w[3].st, CB_ERR_FINAL);
    assert_non_null(strstr(w[3].err.buf, gone_id));
    write_done(w, 4, keep);
    cJSON *all;
    const cJSON *row = stored(&all, four[2]);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(row, "Owner"), "id")); /* kept */
    cJSON_Delete(all);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(stored(&all, four[1]), "Subject")),
                        "B2");
    cJSON_Delete(all);
    cJSON_Delete(gone);
    cJSON_Delete(ids);
    person_list_release(&dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_config),
        cmocka_unit_test_setup_teardown(test_ping_checks_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_domain_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_refreshed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_throttled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_all_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_since, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_ids_pages_through_ties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_ids_refuses_a_second_over_a_page, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_get_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_update_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_and_find_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_retry_no_duplicate, setup, teardown),
        cmocka_unit_test(test_check_concurrency),
        cmocka_unit_test(test_gate_blocks_and_wakes),
        cmocka_unit_test_setup_teardown(test_concurrency_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_free_while_retrying, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_users_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_person_fields_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_person_fields_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_person_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
