/* The Fxiaoke / 纷享销客 connector against tests/sim/fxiaoke_sim.py: config checks, both auth
 * styles, token reuse and renewal, the 20016 retry, the class of every kind of errorCode,
 * paging within limit/offset rules over a set that moves while we page, select labels <-> values,
 * creates with a marker found again after a lost answer, preset vs custom paths, Chinese text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/connector.h"
#include "core/config.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "tests/unit/testutil.h"

static struct sim sim;

static const char *const case_fields[] = {"name",     "description", "status", "priority",
                                          "deadline", "account_id",  "tags",   "tracker_ref__c",
                                          "$key",     NULL};

struct fx {
    struct config *cfg;
    struct connector *c;
    struct strbuf err;
};

static const struct connector_ops *ops(void)
{
    const struct connector_ops *o = connector_find("fxiaoke");
    assert_non_null(o);
    return o;
}

/* A config for object with extra endpoint settings (e.g. "auth = \"bearer\";"). */
static struct config *conf_for(const char *object, const char *extra, const char *user)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "endpoints = {\n"
             "  fx = {\n"
             "    type = \"fxiaoke\";\n"
             "    api_url = \"%s\";\n"
             "    app_id = \"FSAID_SIMAPP01\";\n"
             "    app_secret = \"env:CB_TEST_FX_SECRET\";\n"
             "    permanent_code = \"sim-permanent-code\";\n"
             "    user_id = \"%s\";\n"
             "    %s\n"
             "  };\n"
             "  jira = { type = \"jira\"; };\n"
             "};\n"
             "pairs = ( { name = \"p\"; crm = { endpoint = \"fx\"; object = \"%s\"; };\n"
             "            tracker = { endpoint = \"jira\"; }; } );\n",
             sim.base, user ? user : "FSUID_00000000000000000000000000000001", extra ? extra : "",
             object ? object : "CasesObj");
    struct config *cfg = NULL;
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = config_load_string(text, "fx.conf", &cfg, &err);
    if (st != CB_OK)
        fprintf(stderr, "%s\n", err.buf);
    assert_int_equal(st, CB_OK);
    strbuf_release(&err);
    return cfg;
}

static struct connector *conn_open(struct config *cfg, const char *const *fields)
{
    struct connector_params p = {0};
    p.ep = config_endpoint(cfg, "fx");
    p.side = &config_pair(cfg, "p")->side[0];
    p.http.timeout_s = 20;
    p.http.backoff_ms = 10;
    p.fields = fields ? fields : case_fields;
    struct connector *c = NULL;
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = ops()->open(&p, &c, &err);
    if (st != CB_OK)
        fprintf(stderr, "%s\n", err.buf);
    assert_int_equal(st, CB_OK);
    strbuf_release(&err);
    return c;
}

static void fx_init(struct fx *f, const char *object, const char *extra, const char *user,
                    const char *const *fields)
{
    strbuf_init(&f->err, 0);
    f->cfg = conf_for(object, extra, user);
    f->c = conn_open(f->cfg, fields);
}

static void fx_fini(struct fx *f)
{
    ops()->close(f->c);
    config_free(f->cfg);
    strbuf_release(&f->err);
}

static int setup(void **state)
{
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/reset", NULL));
    unsetenv("CRMBRIDGE_FAKE_NOW_MS");
    struct fx *f = calloc(1, sizeof(*f));
    fx_init(f, NULL, NULL, NULL, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fx_fini(f);
    free(f);
    unsetenv("CRMBRIDGE_FAKE_NOW_MS");
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    setenv("CB_TEST_FX_SECRET", "sim-app-secret", 1);
    return sim_start(&sim, "fxiaoke", NULL);
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

/* Seeds records (JSON array text) or n generated ones into object; returns the ids array. */
static cJSON *seed(const char *object, int n, const char *records_json)
{
    cJSON *j = records_json ? sim_ctl(&sim, "POST", "/_sim/seed",
                                      "{\"object\":\"%s\",\"records\":%s}", object, records_json)
                            : sim_ctl(&sim, "POST", "/_sim/seed",
                                      "{\"object\":\"%s\",\"count\":%d}", object, n);
    cJSON *ids = cJSON_DetachItemFromObject(j, "ids");
    cJSON_Delete(j);
    return ids;
}

static const char *id_at(const cJSON *ids, int i)
{
    return cJSON_GetStringValue(cJSON_GetArrayItem(ids, i));
}

/* The stored row with this id (from /_sim/records); *all is to be deleted by the caller. */
static const cJSON *stored(cJSON **all, const char *object, const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/_sim/records?object=%s", object);
    *all = sim_ctl(&sim, "GET", path, NULL);
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(*all, "data"))
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r, "_id")), id) == 0)
            return r;
    }
    return NULL;
}

static int rows_with_marker(const char *marker)
{
    cJSON *all = sim_ctl(&sim, "GET", "/_sim/records?object=CasesObj", NULL);
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data"))
    {
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(r, "crmbridge_id__c"));
        n += m && strcmp(m, marker) == 0;
    }
    cJSON_Delete(all);
    return n;
}

/* Logged API requests whose path starts with prefix. */
static int log_count(const char *prefix)
{
    return sim_count(&sim, "POST", prefix);
}

static void fault(const char *path, const char *kind, int status, int count)
{
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/faults",
                         "{\"rules\":[{\"path\":\"%s\",\"kind\":\"%s\",\"status\":%d,"
                         "\"count\":%d}]}",
                         path, kind, status, count));
}

static void sim_config(const char *json)
{
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/config", "%s", json));
}

/* Moves both clocks (the simulator's and ours) forward by ms. */
static void clocks_advance(int64_t ms)
{
    cJSON *j = sim_ctl(&sim, "POST", "/_sim/clock", "{\"advance_ms\":%lld}", (long long)ms);
    char now[32];
    snprintf(now, sizeof(now), "%lld",
             (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "now_ms")));
    setenv("CRMBRIDGE_FAKE_NOW_MS", now, 1);
    cJSON_Delete(j);
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

static enum cb_status list_all(struct fx *f, int64_t since, struct collect *col)
{
    memset(col, 0, sizeof(*col));
    strbuf_reset(&f->err);
    return ops()->list_changed(f->c, since, collect_page, col, &f->err);
}

static int cmp_rec(const void *a, const void *b)
{
    const struct record *x = a, *y = b;
    int d = strcmp(x->id, y->id);
    return d ? d : (x->modified_ms > y->modified_ms) - (x->modified_ms < y->modified_ms);
}

/* Distinct ids among the records; *twice counts (id, modified time) pairs handed out twice. */
static size_t distinct_ids(struct record_list *l, int *twice)
{
    qsort(l->v, l->n, sizeof(*l->v), cmp_rec);
    size_t n = l->n ? 1 : 0;
    *twice = 0;
    for (size_t i = 1; i < l->n; i++) {
        int same_id = strcmp(l->v[i - 1].id, l->v[i].id) == 0;
        n += !same_id;
        *twice += same_id && l->v[i - 1].modified_ms == l->v[i].modified_ms;
    }
    return n;
}

static const char *field_str(const struct record *r, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(r->fields, name));
}

/* One write op from JSON fields; id NULL creates with marker. */
static enum cb_status write_one(struct fx *f, struct write_op *w, const char *id,
                                const char *fields_json, const char *marker, cJSON **keep)
{
    write_op_init(w);
    *keep = cJSON_Parse(fields_json);
    assert_non_null(*keep);
    w->id = id;
    w->fields = *keep;
    w->marker = marker;
    strbuf_reset(&f->err);
    return ops()->write(f->c, w, 1, &f->err);
}

static void get_one(struct fx *f, const char *id, struct record_list *out)
{
    memset(out, 0, sizeof(*out));
    assert_int_equal(ops()->get_many(f->c, &id, 1, out, &f->err), CB_OK);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void expect_config_error(const char *text, const char *needle)
{
    struct config *cfg = NULL;
    struct strbuf err = STRBUF_INIT;
    assert_int_equal(config_load_string(text, "bad.conf", &cfg, &err), CB_OK);
    const struct pair_conf *pc = config_pair(cfg, "p");
    assert_int_equal(ops()->check_config(config_endpoint(cfg, "fx"), &pc->side[0], &err),
                     CB_ERR_CONFIG);
    if (!strstr(err.buf, needle))
        fprintf(stderr, "missing '%s' in:\n%s\n", needle, err.buf);
    assert_non_null(strstr(err.buf, needle));
    assert_non_null(strstr(err.buf, "bad.conf:"));
    strbuf_release(&err);
    config_free(cfg);
}

static void bad_conf(char *text, size_t size, const char *extra, const char *object)
{
    snprintf(text, size,
             "endpoints = { fx = { type = \"fxiaoke\"; api_url = \"https://open.fxiaoke.com\";"
             " app_id = \"FSAID_1\"; app_secret = \"s\"; permanent_code = \"p\";"
             " user_id = \"FSUID_1\"; %s }; j = { type = \"jira\"; }; };\n"
             "pairs = ( { name = \"p\"; crm = { endpoint = \"fx\"; object = \"%s\"; };"
             " tracker = { endpoint = \"j\"; }; } );\n",
             extra, object);
}

static void test_check_config(void **state)
{
    (void)state;
    char text[1024];
    bad_conf(text, sizeof(text), "auth = \"oauth\";", "CasesObj");
    expect_config_error(text, "'auth' must be \"corp\" or \"bearer\"");
    bad_conf(text, sizeof(text), "", "Cases");
    expect_config_error(text, "'object' must be an object api name");
    bad_conf(text, sizeof(text), "appsecret = \"x\";", "object_feedback__c");
    expect_config_error(text, "unknown fxiaoke endpoint setting 'appsecret'");
    bad_conf(text, sizeof(text), "utc_offset = \"Beijing\";", "CasesObj");
    expect_config_error(text, "'utc_offset' must look like");
    snprintf(
        text, sizeof(text),
        "endpoints = { fx = { type = \"fxiaoke\"; app_id = \"a\"; }; j = { type = \"jira\"; }; };\n"
        "pairs = ( { name = \"p\"; crm = { endpoint = \"fx\"; object = \"CasesObj\"; };"
        " tracker = { endpoint = \"j\"; }; } );\n");
    expect_config_error(text, "permanent_code");
}

static void test_corp_token_reused_then_renewed(void **state)
{
    struct fx *f = *state;
    struct strbuf info = STRBUF_INIT;
    assert_int_equal(ops()->ping(f->c, &info, &f->err), CB_OK);
    assert_non_null(strstr(info.buf, "object CasesObj (工单)"));
    assert_non_null(strstr(info.buf, "corp auth"));
    assert_int_equal(ops()->ping(f->c, &info, &f->err), CB_OK);
    assert_int_equal(stat_of("corp_tokens"), 1);
    assert_true(stat_of("body_auth") >= 2);
    assert_int_equal(stat_of("without_trace_id"), 0);
    /* inside the reuse window the token is kept */
    clocks_advance(6000LL * 1000);
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_OK);
    assert_int_equal(stat_of("tokens_minted"), 1);
    /* in the last 600 s it is renewed, and the gateway hands out a new one */
    clocks_advance(700LL * 1000);
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_OK);
    assert_int_equal(stat_of("tokens_minted"), 2);
    strbuf_release(&info);
}

static void test_bearer_auth(void **state)
{
    (void)state;
    struct fx b;
    fx_init(&b, NULL, "auth = \"bearer\";", "1000", NULL);
    struct strbuf info = STRBUF_INIT;
    assert_int_equal(ops()->ping(b.c, &info, &b.err), CB_OK);
    assert_non_null(strstr(info.buf, "bearer auth"));
    cJSON_Delete(seed("CasesObj", 3, NULL));
    struct collect col;
    assert_int_equal(list_all(&b, 0, &col), CB_OK);
    assert_int_equal(col.all.n, 3);
    record_list_release(&col.all);
    assert_int_equal(stat_of("bearer_tokens"), 1);
    assert_int_equal(stat_of("corp_tokens"), 0);
    assert_int_equal(stat_of("body_auth"), 0);
    assert_true(stat_of("header_auth") >= 2);
    /* an unknown employee id is an endpoint problem, not a record problem */
    fx_fini(&b);
    fx_init(&b, NULL, "auth = \"bearer\";", "9999", NULL);
    assert_int_equal(ops()->ping(b.c, NULL, &b.err), CB_ERR_AUTH);
    assert_non_null(strstr(b.err.buf, "30027"));
    fx_fini(&b);
    strbuf_release(&info);
}

static void test_token_expired_renewed_once(void **state)
{
    struct fx *f = *state;
    cJSON_Delete(seed("CasesObj", 2, NULL));
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_OK);
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/expire_tokens", NULL));
    struct collect col;
    assert_int_equal(list_all(f, 0, &col), CB_OK); /* 20016 -> new token -> same call again */
    assert_int_equal(col.all.n, 2);
    record_list_release(&col.all);
    assert_int_equal(stat_of("tokens_minted"), 2);
    /* a token refused twice in a row is not renewed in a loop */
    fault("/cgi/crm/v2/data/query", "status", 20016, 2);
    assert_int_equal(list_all(f, 0, &col), CB_ERR_AUTH);
    assert_non_null(strstr(f->err.buf, "20016"));
    record_list_release(&col.all);
    assert_int_equal(stat_of("tokens_minted"), 2); /* the same token comes back in the window */
    assert_int_equal(log_count("/cgi/corpAccessToken/get/V2"), 3);
}

static void test_error_classes(void **state)
{
    struct fx *f = *state;
    cJSON_Delete(seed("CasesObj", 2, NULL));
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_OK);
    struct collect col;
    static const struct {
        int code, count;
        enum cb_status want;
    } cases[] = {
        {-1, 1, CB_OK},           /* busy: retried at once */
        {50009, 1, CB_OK},        /* timeout inside the service: retried */
        {-1, 5, CB_ERR_TEMP},     /* busy for longer: retry now, later */
        {30004, 1, CB_OK},        /* frequency: bucket drained, retried */
        {30004, 5, CB_ERR_WAIT},  /* frequency for longer: retry later */
        {30002, 1, CB_ERR_WAIT},  /* daily quota: retry later */
        {15002, 1, CB_ERR_FINAL}, /* illegal parameter: this request is wrong */
        {20021, 1, CB_ERR_AUTH},  /* app disabled: the endpoint is unusable */
        {502, 5, CB_ERR_TEMP},    /* the gateway itself failing */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON_Delete(sim_call(&sim, "DELETE", "/_sim/faults", NULL, NULL));
        fault("/cgi/crm/v2/data/query", "status", cases[i].code, cases[i].count);
        enum cb_status st = list_all(f, 0, &col);
        if (st != cases[i].want)
            fprintf(stderr, "code %d: %s (%s)\n", cases[i].code, cb_status_str(st), f->err.buf);
        assert_int_equal(st, cases[i].want);
        if (st == CB_OK)
            assert_int_equal(col.all.n, 2);
        record_list_release(&col.all);
    }
    cJSON_Delete(sim_call(&sim, "DELETE", "/_sim/faults", NULL, NULL));
    sim_config("{\"no_quota\":1}");
    assert_int_equal(list_all(f, 0, &col), CB_ERR_AUTH);
    assert_non_null(strstr(f->err.buf, "30003"));
    record_list_release(&col.all);
    sim_config("{\"no_quota\":0}");
    /* wrong credentials: final for the endpoint, and the secret stays out of the message */
    struct fx bad;
    setenv("CB_TEST_FX_SECRET", "wrong-secret", 1);
    fx_init(&bad, NULL, NULL, NULL, NULL);
    setenv("CB_TEST_FX_SECRET", "sim-app-secret", 1);
    assert_int_equal(ops()->ping(bad.c, NULL, &bad.err), CB_ERR_AUTH);
    assert_non_null(strstr(bad.err.buf, "10006"));
    assert_null(strstr(bad.err.buf, "wrong-secret"));
    fx_fini(&bad);
}

static void test_paging_limit_offset(void **state)
{
    struct fx *f = *state;
    cJSON *ids = seed("CasesObj", 250, NULL);
    struct collect col;
    assert_int_equal(list_all(f, 0, &col), CB_OK);
    int twice = 0;
    assert_int_equal(distinct_ids(&col.all, &twice), 250);
    assert_int_equal(col.all.n, 250);
    assert_true(col.pages >= 3);
    /* incremental: only what changed at or after since */
    int64_t mid = col.all.v[0].modified_ms;
    for (size_t i = 0; i < col.all.n; i++)
        if (col.all.v[i].modified_ms > mid)
            mid = col.all.v[i].modified_ms;
    record_list_release(&col.all);
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/edit",
                         "{\"object\":\"CasesObj\",\"id\":\"%s\",\"fields\":{\"priority\":\"高\"}}",
                         id_at(ids, 7)));
    assert_int_equal(list_all(f, mid + 1, &col), CB_OK);
    assert_int_equal(col.all.n, 1);
    assert_string_equal(col.all.v[0].id, id_at(ids, 7));
    assert_string_equal(field_str(&col.all.v[0], "priority"), "高");
    record_list_release(&col.all);
    cJSON_Delete(ids);
    /* more than a page sharing one millisecond is walked with offsets */
    struct strbuf recs = STRBUF_INIT;
    (void)strbuf_adds(&recs, "[");
    for (int i = 0; i < 230; i++)
        (void)strbuf_addf(&recs, "%s{\"name\":\"同一时刻 %d\",\"last_modified_time\":%lld}",
                          i ? "," : "", i, (long long)(mid + 5000));
    (void)strbuf_adds(&recs, "]");
    cJSON_Delete(seed("CasesObj", 0, recs.buf));
    assert_int_equal(list_all(f, mid + 1, &col), CB_OK);
    assert_int_equal(distinct_ids(&col.all, &twice), 231);
    assert_int_equal(twice, 0);
    record_list_release(&col.all);
    strbuf_release(&recs);
}

static void test_edit_while_paging(void **state)
{
    struct fx *f = *state;
    cJSON_Delete(seed("CasesObj", 600, NULL));
    sim_config("{\"edit_while_paging\":200,\"edit_per_page\":20}");
    struct collect col;
    assert_int_equal(list_all(f, 0, &col), CB_OK);
    assert_true(stat_of("edits_while_paging") >= 100);
    int twice = 0;
    assert_int_equal(distinct_ids(&col.all, &twice), 600); /* nothing skipped */
    assert_int_equal(twice, 0);                            /* no version handed out twice */
    record_list_release(&col.all);
}

static void test_select_labels_and_values(void **state)
{
    struct fx *f = *state;
    cJSON *ids = seed("CasesObj", 0,
                      "[{\"name\":\"发票抬头无法修改\",\"status\":\"处理中\",\"priority\":\"紧急\","
                      "\"tags\":[\"报表\",\"集成\"],\"deadline\":\"2026-12-24\","
                      "\"account_id\":\"华为技术有限公司\"}]");
    struct record_list got;
    get_one(f, id_at(ids, 0), &got);
    assert_int_equal(got.n, 1);
    const struct record *r = &got.v[0];
    assert_string_equal(field_str(r, "status"), "处理中"); /* the label, not "2" */
    assert_string_equal(field_str(r, "priority"), "紧急");
    assert_string_equal(field_str(r, "deadline"), "2026-12-24");
    assert_string_equal(field_str(r, "account_id"), "华为技术有限公司");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(r->fields, "tags"), 1)->valuestring,
                        "集成");
    assert_non_null(r->key);
    assert_string_equal(r->modified_by, "李伟");
    record_list_release(&got);

    struct write_op w;
    cJSON *keep = NULL;
    assert_int_equal(write_one(f, &w, id_at(ids, 0),
                               "{\"status\":\"已解决\",\"tags\":[\"移动端\"],"
                               "\"deadline\":\"2027-01-05\"}",
                               NULL, &keep),
                     CB_OK);
    assert_int_equal(w.st, CB_OK);
    write_op_release(&w);
    cJSON_Delete(keep);
    cJSON *all = NULL;
    const cJSON *row = stored(&all, "CasesObj", id_at(ids, 0));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(row, "status")), "4");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(row, "tags"), 0)->valuestring, "t2");
    /* midnight in China: 2027-01-04T16:00:00Z */
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(row, "deadline")) == 1799078400000.0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(row, "priority")), "1");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(row, "version")), "2");
    cJSON_Delete(all);
    assert_int_equal(stat_of("workflow_writes"), 0);
    assert_int_equal(stat_of("approval_writes"), 0);

    /* a label the object does not know, and a lookup by name: that op fails, saying why */
    assert_int_equal(write_one(f, &w, id_at(ids, 0), "{\"status\":\"Done\"}", NULL, &keep), CB_OK);
    assert_int_equal(w.st, CB_ERR_FINAL);
    assert_non_null(strstr(w.err.buf, "'Done' is not an option"));
    assert_non_null(strstr(w.err.buf, "已解决"));
    write_op_release(&w);
    cJSON_Delete(keep);
    assert_int_equal(write_one(f, &w, id_at(ids, 0), "{\"account_id\":\"Acme\"}", NULL, &keep),
                     CB_OK);
    assert_int_equal(w.st, CB_ERR_FINAL);
    assert_non_null(strstr(w.err.buf, "lookup"));
    write_op_release(&w);
    cJSON_Delete(keep);
    cJSON_Delete(ids);
}

static void test_create_marker_lost_answer(void **state)
{
    struct fx *f = *state;
    struct write_op w;
    cJSON *keep = NULL;
    fault("/cgi/crm/v2/data/create", "drop_response", 0, 1);
    assert_int_equal(
        write_one(
            f, &w, NULL,
            "{\"name\":\"SSO 对接企业微信\",\"description\":\"第一行\\n\\n* 要点一\\n* 要点二\","
            "\"status\":\"新建\",\"$key\":null}",
            "cb-marker-1", &keep),
        CB_OK);
    assert_int_not_equal(w.st, CB_OK); /* the create landed, its answer was lost */
    write_op_release(&w);
    cJSON_Delete(keep);
    assert_int_equal(log_count("/cgi/crm/v2/data/create"), 1); /* and it was not sent again */
    assert_int_equal(rows_with_marker("cb-marker-1"), 1);
    struct record r;
    assert_int_equal(ops()->find_marker(f->c, "cb-marker-1", 0, &r, &f->err), CB_OK);
    assert_string_equal(r.marker, "cb-marker-1");
    assert_string_equal(field_str(&r, "name"), "SSO 对接企业微信");
    assert_string_equal(field_str(&r, "description"), "第一行\n\n* 要点一\n* 要点二");
    assert_string_equal(field_str(&r, "status"), "新建");
    cJSON *all = NULL;
    const cJSON *row = stored(&all, "CasesObj", r.id);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(row, "status")), "1");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(row, "life_status")), "normal");
    assert_int_equal(strlen(r.id), 24);
    cJSON_Delete(all);
    record_release(&r);
    /* a create that gets its answer carries the new id */
    assert_int_equal(write_one(f, &w, NULL, "{\"name\":\"批量导入\"}", "cb-marker-2", &keep),
                     CB_OK);
    assert_int_equal(w.st, CB_OK);
    assert_int_equal(strlen(w.rec.id), 24);
    assert_non_null(strstr(w.rec.url, w.rec.id));
    write_op_release(&w);
    cJSON_Delete(keep);
    assert_int_equal(ops()->find_marker(f->c, "cb-nobody", 0, &r, &f->err), CB_ERR_NOTFOUND);
    assert_int_equal(stat_of("workflow_writes"), 0);
}

static void test_invalidated_is_gone(void **state)
{
    struct fx *f = *state;
    cJSON *ids = seed("CasesObj", 0, "[{\"name\":\"作废测试\"},{\"name\":\"保留\"}]");
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/edit",
                         "{\"object\":\"CasesObj\",\"id\":\"%s\",\"invalid\":true}",
                         id_at(ids, 0)));
    struct record_list got = {0};
    const char *both[] = {id_at(ids, 0), id_at(ids, 1)};
    assert_int_equal(ops()->get_many(f->c, both, 2, &got, &f->err), CB_OK);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.v[0].id, id_at(ids, 1));
    record_list_release(&got);
    struct collect col;
    assert_int_equal(list_all(f, 0, &col), CB_OK);
    assert_int_equal(col.all.n, 1);
    record_list_release(&col.all);
    cJSON_Delete(ids);
}

static void test_custom_object_path(void **state)
{
    (void)state;
    static const char *const fields[] = {"name", "field_state__c", "description", "status", NULL};
    struct fx c;
    fx_init(&c, "object_feedback__c", NULL, NULL, fields);
    struct strbuf info = STRBUF_INIT;
    assert_int_equal(ops()->ping(c.c, &info, &c.err), CB_OK);
    assert_non_null(strstr(info.buf, "left unmapped (not on the object): description, status"));
    cJSON *ids = seed("object_feedback__c", 0,
                      "[{\"name\":\"希望支持深色模式\",\"field_state__c\":\"待处理\"}]");
    struct collect col;
    memset(&col, 0, sizeof(col));
    assert_int_equal(ops()->list_changed(c.c, 0, collect_page, &col, &c.err), CB_OK);
    assert_int_equal(col.all.n, 1);
    const struct record *r = &col.all.v[0];
    assert_string_equal(field_str(r, "name"), "希望支持深色模式");
    assert_string_equal(field_str(r, "field_state__c"), "待处理");
    assert_null(cJSON_GetObjectItem(r->fields, "description")); /* not on the object */
    record_list_release(&col.all);
    struct write_op w;
    write_op_init(&w);
    cJSON *upd = cJSON_Parse("{\"field_state__c\":\"已完成\",\"status\":\"已解决\"}");
    w.id = id_at(ids, 0);
    w.fields = upd;
    assert_int_equal(ops()->write(c.c, &w, 1, &c.err), CB_OK);
    assert_int_equal(w.st, CB_OK);
    write_op_release(&w);
    cJSON_Delete(upd);
    cJSON *all = NULL;
    const cJSON *row = stored(&all, "object_feedback__c", id_at(ids, 0));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(row, "field_state__c")),
                        "option3");
    cJSON_Delete(all);
    /* every data call went to the custom path, none to the preset one */
    assert_true(log_count("/cgi/crm/custom/v2/data/") >= 2);
    assert_int_equal(log_count("/cgi/crm/v2/data/"), 0);
    fx_fini(&c);
    cJSON_Delete(ids);
    strbuf_release(&info);
}

static void test_preset_path_and_pacing(void **state)
{
    struct fx *f = *state;
    cJSON_Delete(seed("CasesObj", 1, NULL));
    struct collect col;
    assert_int_equal(list_all(f, 0, &col), CB_OK);
    record_list_release(&col.all);
    assert_true(log_count("/cgi/crm/v2/data/query") >= 1);
    assert_int_equal(log_count("/cgi/crm/custom/"), 0);
    /* reads are paced below the published 100 per 20 s: a burst of 20, then under 4 a second */
    cJSON *ids = seed("CasesObj", 0, "[{\"name\":\"节流\"}]");
    int64_t t0 = cbtime_now_ms();
    for (int i = 0; i < 40; i++) {
        struct record_list got;
        get_one(f, id_at(ids, 0), &got);
        assert_int_equal(got.n, 1);
        record_list_release(&got);
    }
    assert_true(cbtime_now_ms() - t0 >= 4000);
    assert_int_equal(stat_of("rate_limited"), 0);
    assert_true(log_count("/cgi/crm/v2/data/query") >= 41);
    cJSON_Delete(ids);
}

/* ---- people ----------------------------------------------------------------------------- */

static const char *const person_fields[] = {"name", "owner", "field_engineer__c", NULL};

/* Reopens f's connector on person_fields, pinged, with the employees in *dir. */
static void people_open(struct fx *f, struct person_list *dir)
{
    ops()->close(f->c);
    f->c = conn_open(f->cfg, person_fields);
    assert_int_equal(ops()->ping(f->c, NULL, &f->err), CB_OK);
    memset(dir, 0, sizeof(*dir));
    assert_int_equal(ops()->list_users(f->c, dir, &f->err), CB_OK);
}

static const char *user_id(const struct person_list *dir, const char *name)
{
    const struct person *p = person_list_find(dir, name);
    assert_non_null(p);
    return p->id;
}

/* Field `field` of record id as get_many reads it (caller deletes). */
static cJSON *read_field(struct fx *f, const char *id, const char *field)
{
    struct record_list got;
    get_one(f, id, &got);
    assert_int_equal(got.n, 1);
    cJSON *v = cJSON_DetachItemFromObject(got.v[0].fields, field);
    assert_non_null(v);
    record_list_release(&got);
    return v;
}

/* The first id stored in employee field `field` of case id (NULL when empty). */
static char *stored_employee(const char *id, const char *field)
{
    cJSON *all;
    const cJSON *row = stored(&all, "CasesObj", id);
    assert_non_null(row);
    const char *v = cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(row, field), 0));
    char *out = v ? strdup(v) : NULL;
    cJSON_Delete(all);
    return out;
}

static void test_list_users(void **state)
{
    struct fx *f = *state;
    struct person_list dir;
    people_open(f, &dir);
    size_t before = dir.n;
    assert_true(before >= 5);
    const struct person *li = person_list_find(&dir, "李伟");
    assert_non_null(li);
    assert_non_null(li->email);
    const struct person *wang = person_list_find(&dir, "王芳");
    assert_non_null(wang);
    assert_null(wang->email); /* no e-mail on file */
    int zhang = 0;
    for (size_t i = 0; i < dir.n; i++)
        zhang += strcmp(dir.v[i].name, "张伟") == 0;
    assert_int_equal(zhang, 2);
    assert_null(person_list_find(&dir, "张伟")); /* two share the name: no guess */
    cJSON *added = sim_ctl(&sim, "POST", "/_sim/users", "{\"count\":150,\"department\":1001}");
    person_list_release(&dir);
    sim_clear_log(&sim);
    assert_int_equal(ops()->list_users(f->c, &dir, &f->err), CB_OK);
    assert_int_equal(dir.n, before + 150); /* sub-departments included, all in one answer */
    assert_int_equal(log_count("/cgi/user/list"), 1);
    const cJSON *u;
    cJSON_ArrayForEach(u, cJSON_GetObjectItem(added, "users"))
    {
        assert_non_null(
            person_list_find(&dir, cJSON_GetStringValue(cJSON_GetObjectItem(u, "openUserId"))));
    }
    for (size_t i = 0; i < dir.n; i++)
        for (size_t k = i + 1; k < dir.n; k++)
            assert_true(strcmp(dir.v[i].id, dir.v[k].id) != 0);
    person_list_release(&dir);
    cJSON_Delete(added);

    struct fx bearer; /* the same list with header auth */
    fx_init(&bearer, NULL, "auth = \"bearer\";", NULL, person_fields);
    assert_int_equal(ops()->list_users(bearer.c, &dir, &bearer.err), CB_OK);
    assert_int_equal(dir.n, before + 150);
    person_list_release(&dir);
    fx_fini(&bearer);
}

static void test_employee_fields_read(void **state)
{
    struct fx *f = *state;
    struct person_list dir;
    people_open(f, &dir);
    assert_int_equal(ops()->person_field(f->c, "owner"), 1);
    assert_int_equal(ops()->person_field(f->c, "last_modified_by"), 1);
    assert_int_equal(ops()->person_field(f->c, "field_engineer__c"), 1);
    assert_int_equal(ops()->person_field(f->c, "account_id"), 0); /* a record lookup */
    assert_int_equal(ops()->person_field(f->c, "name"), 0);
    cJSON *ids =
        seed("CasesObj", 0,
             "[{\"name\":\"谁负责\",\"owner\":[\"李伟\"],\"field_engineer__c\":[\"王芳\"]}]");
    cJSON *owner = read_field(f, id_at(ids, 0), "owner");
    const struct person *li = person_list_find(&dir, "李伟");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "id")), li->id);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "name")), "李伟");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "email")), li->email);
    cJSON *eng = read_field(f, id_at(ids, 0), "field_engineer__c");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(eng, "name")), "王芳");
    assert_null(cJSON_GetObjectItem(eng, "email"));
    cJSON_Delete(eng);
    cJSON_Delete(owner);

    /* someone who joined after the list was read: the record's __r name, no e-mail */
    cJSON *added = sim_ctl(&sim, "POST", "/_sim/users", "{\"name\":\"新同事\"}");
    const char *nid = cJSON_GetStringValue(cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(added, "users"), 0), "openUserId"));
    cJSON_Delete(sim_ctl(&sim, "POST", "/_sim/edit",
                         "{\"object\":\"CasesObj\",\"id\":\"%s\",\"fields\":{\"owner\":[\"%s\"]}}",
                         id_at(ids, 0), nid));
    owner = read_field(f, id_at(ids, 0), "owner");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "id")), nid);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "name")), "新同事");
    cJSON_Delete(owner);
    cJSON_Delete(added);
    cJSON_Delete(ids);
    person_list_release(&dir);
}

/* Writes fields to record id (NULL: creates with marker), expects success, returns the id. */
static char *write_ok(struct fx *f, const char *id, const char *fields, const char *marker)
{
    struct write_op w;
    cJSON *keep;
    assert_int_equal(write_one(f, &w, id, fields, marker, &keep), CB_OK);
    assert_int_equal(w.st, CB_OK);
    char *rid = strdup(w.rec.id);
    write_op_release(&w);
    cJSON_Delete(keep);
    return rid;
}

static void test_employee_fields_write(void **state)
{
    struct fx *f = *state;
    struct person_list dir;
    people_open(f, &dir);
    cJSON *ids = seed("CasesObj", 0, "[{\"name\":\"A\",\"field_engineer__c\":[\"陈静\"]}]");
    const char *id = id_at(ids, 0), *li = user_id(&dir, "李伟"), *wang = user_id(&dir, "王芳");
    char fields[256];
    snprintf(fields, sizeof(fields), "{\"owner\":\"%s\"}", li);
    sim_clear_log(&sim);
    free(write_ok(f, id, fields, NULL));
    assert_int_equal(log_count("/cgi/crm/v2/data/changeOwner"), 1);
    assert_int_equal(log_count("/cgi/crm/v2/data/update"), 0); /* nothing else to write */
    char *got = stored_employee(id, "owner");
    assert_string_equal(got, li);
    free(got);

    snprintf(fields, sizeof(fields), "{\"name\":\"A2\",\"field_engineer__c\":\"%s\"}", wang);
    free(write_ok(f, id, fields, NULL));
    cJSON *eng = read_field(f, id, "field_engineer__c");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(eng, "id")), wang);
    cJSON_Delete(eng);

    free(write_ok(f, id, "{\"field_engineer__c\":null}", NULL));
    eng = read_field(f, id, "field_engineer__c");
    assert_true(cJSON_IsNull(eng));
    cJSON_Delete(eng);

    snprintf(fields, sizeof(fields), "{\"name\":\"新工单\",\"owner\":\"%s\"}", wang);
    char *created = write_ok(f, NULL, fields, "cb-fx-person-1");
    got = stored_employee(created, "owner"); /* a create takes its owner directly */
    assert_string_equal(got, wang);
    free(got);
    free(created);
    cJSON_Delete(ids);
    person_list_release(&dir);
}

/* A migrated create keeps the original's creation time and creator (hasSpecifyTime,
 * hasSpecifyCreatedBy); without them the service stamps its own. */
static void test_create_keeps_origin(void **state)
{
    struct fx *f = *state;
    struct person_list dir;
    people_open(f, &dir);
    const char *li = user_id(&dir, "李伟");
    struct write_op w;
    cJSON *keep;
    write_op_init(&w);
    keep = cJSON_Parse("{\"name\":\"迁移的工单\"}");
    w.fields = keep;
    w.marker = "cb-fx-origin-1";
    w.created_ms = 1577934245000LL; /* 2020-01-02T03:04:05Z */
    w.created_by = li;
    assert_int_equal(ops()->write(f->c, &w, 1, &f->err), CB_OK);
    assert_int_equal(w.st, CB_OK);
    cJSON *all;
    const cJSON *row = stored(&all, "CasesObj", w.rec.id);
    assert_non_null(row);
    assert_int_equal((long long)cJSON_GetNumberValue(cJSON_GetObjectItem(row, "create_time")),
                     1577934245000LL);
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(row, "created_by"), 0)), li);
    cJSON_Delete(all);
    write_op_release(&w);
    cJSON_Delete(keep);

    /* an ordinary create: the service's own time, the integration user */
    char *id = write_ok(f, NULL, "{\"name\":\"新工单\"}", "cb-fx-origin-2");
    row = stored(&all, "CasesObj", id);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(row, "create_time")) > 1.7e12);
    assert_string_not_equal(
        cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(row, "created_by"), 0)), li);
    cJSON_Delete(all);
    free(id);
    person_list_release(&dir);
}

static void test_employee_refused(void **state)
{
    struct fx *f = *state;
    struct person_list dir;
    people_open(f, &dir);
    cJSON *ids = seed("CasesObj", 0,
                      "[{\"name\":\"A\"},{\"name\":\"B\"},{\"name\":\"C\"},"
                      "{\"name\":\"D\"}]");
    const char *nobody = "FSUID_FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF";
    char bad_eng[128], bad_owner[160];
    snprintf(bad_eng, sizeof(bad_eng), "{\"field_engineer__c\":\"%s\"}", nobody);
    snprintf(bad_owner, sizeof(bad_owner), "{\"name\":\"C2\",\"owner\":\"%s\"}", nobody);
    const char *fl[] = {bad_eng, "{\"name\":\"B2\"}", bad_owner, "{\"owner\":null}"};
    struct write_op w[4];
    cJSON *keep[4];
    for (int i = 0; i < 4; i++) {
        write_op_init(&w[i]);
        keep[i] = cJSON_Parse(fl[i]);
        w[i].id = id_at(ids, i);
        w[i].fields = keep[i];
    }
    char *owner_before = stored_employee(id_at(ids, 2), "owner");
    assert_int_equal(ops()->write(f->c, w, 4, &f->err), CB_OK);
    assert_int_equal(w[0].st, CB_ERR_FINAL);
    assert_non_null(strstr(w[0].err.buf, id_at(ids, 0)));
    assert_non_null(strstr(w[0].err.buf,
                           "field 'field_engineer__c' 'FSUID_FFFFFFFFFFFFFFFFFFFFFFFFF"
                           "FFFFFFF' is not a fxiaoke employee"));
    assert_int_equal(w[1].st, CB_OK); /* the batch goes on */
    assert_int_equal(w[2].st, CB_ERR_FINAL);
    assert_non_null(strstr(w[2].err.buf, "field 'owner'"));
    assert_int_equal(w[3].st, CB_ERR_FINAL);
    assert_non_null(strstr(w[3].err.buf, "field 'owner' is mandatory in fxiaoke"));
    char *owner_after = stored_employee(id_at(ids, 2), "owner");
    assert_string_equal(owner_after, owner_before); /* refused owner: record left alone */
    cJSON *all;
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(stored(&all, "CasesObj", id_at(ids, 2)), "name")),
        "C");
    cJSON_Delete(all);
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(stored(&all, "CasesObj", id_at(ids, 1)), "name")),
        "B2");
    cJSON_Delete(all);
    for (int i = 0; i < 4; i++) {
        write_op_release(&w[i]);
        cJSON_Delete(keep[i]);
    }
    free(owner_before);
    free(owner_after);
    cJSON_Delete(ids);
    person_list_release(&dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_config),
        cmocka_unit_test_setup_teardown(test_corp_token_reused_then_renewed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_expired_renewed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_classes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_limit_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edit_while_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_select_labels_and_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_marker_lost_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalidated_is_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_custom_object_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preset_path_and_pacing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_employee_fields_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_employee_fields_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_keeps_origin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_employee_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
