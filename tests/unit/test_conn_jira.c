/*
 * The Jira connector against tests/sim/jira_sim.py: configuration checks, authentication,
 * field-name resolution, paged incremental listing with epoch-millisecond JQL (also naming
 * issues, read through search lag with reconcileIssues), creates that carry a marker (also
 * when the response is lost or search lags), edits of only the given fields, multi-hop status
 * transitions, rich text round trips, the failure classes for 429, 503, 401 and HTML
 * answers, and people: the assignable-user directory paged through,
 * user fields read as person objects and written by accountId (Data Center: user name). Listed
 * and bulk-read issues carry their comment count and, when all came along, newest comment time.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/connector.h"
#include "core/config.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "mapping/item.h"
#include "mapping/richtext.h"
#include "tests/unit/testutil.h"

static struct sim S;

static const char *const want_fields[] = {"summary", "description", "status", "priority", "labels",
                                          "duedate", "Customer",    "$key",   NULL};

struct fx {
    struct config *cfg;
    struct connector *c;
    const struct connector_ops *ops;
    struct strbuf err;
};

static char *config_text(const char *token, const char *extra_ep, const char *extra_side)
{
    static char buf[2048];
    snprintf(buf, sizeof(buf),
             "endpoints = {\n"
             "  crm = { type = \"zoho\"; };\n"
             "  tracker = {\n"
             "    type = \"jira\";\n"
             "    api_url = \"%s/\";\n"
             "    email = \"bot@acme.test\";\n"
             "    api_token = \"%s\";\n"
             "%s"
             "  };\n"
             "};\n"
             "pairs = ( { name = \"p\"; crm = { endpoint = \"crm\"; };\n"
             "  tracker = { endpoint = \"tracker\"; project = \"SUP\";\n%s  }; } );\n",
             S.base, token, extra_ep ? extra_ep : "", extra_side ? extra_side : "");
    return buf;
}

static void fx_open_with(struct fx *f, const char *text, const char *const *fields)
{
    strbuf_init(&f->err, 0);
    assert_int_equal(config_load_string(text, "test.conf", &f->cfg, &f->err), CB_OK);
    f->ops = connector_find("jira");
    assert_non_null(f->ops);
    const struct pair_conf *p = config_pair(f->cfg, "p");
    struct connector_params params = {
        .ep = config_endpoint(f->cfg, "tracker"),
        .side = &p->side[SIDE_TRACKER],
        .http = {.timeout_s = 5, .max_retries = 3, .backoff_ms = 20, .max_wait_s = 10},
        .fields = fields,
    };
    assert_int_equal(f->ops->open(&params, &f->c, &f->err), CB_OK);
}

static void fx_close(struct fx *f)
{
    if (f->c)
        f->ops->close(f->c);
    config_free(f->cfg);
    strbuf_release(&f->err);
    memset(f, 0, sizeof(*f));
}

/* Reopens f on the simulator switched to Data Center (with the extra config members, JSON). */
static void fx_open_dc(struct fx *f, const char *sim_config, const char *const *fields)
{
    fx_close(f);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/config", "{\"flavor\":\"datacenter\"%s%s}",
                         sim_config ? "," : "", sim_config ? sim_config : ""));
    char text[2048];
    snprintf(text, sizeof(text),
             "endpoints = {\n  crm = { type = \"zoho\"; };\n  tracker = {\n"
             "    type = \"jira\"; flavor = \"datacenter\";\n    api_url = \"%s\";\n"
             "    api_token = \"sim-jira-dc-pat\";\n  };\n};\n"
             "pairs = ( { name = \"p\"; crm = { endpoint = \"crm\"; };\n"
             "  tracker = { endpoint = \"tracker\"; project = \"SUP\"; }; } );\n",
             S.base);
    fx_open_with(f, text, fields);
}

static int setup(void **state)
{
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/reset", NULL));
    struct fx *f = calloc(1, sizeof(*f));
    fx_open_with(f, config_text("sim-jira-token", NULL, NULL), want_fields);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_close(*state);
    free(*state);
    return 0;
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return sim_start(&S, "jira", NULL);
}

static int group_teardown(void **state)
{
    sim_stop(&S);
    curl_global_cleanup();
    return 0;
}

/* --- helpers -------------------------------------------------------------------------------- */

static int64_t sim_now(void)
{
    cJSON *j = sim_ctl(&S, "GET", "/_sim/clock", NULL);
    int64_t ms = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "now_ms"));
    cJSON_Delete(j);
    return ms;
}

/* The simulator's stored issue with that key (owned by the caller), or NULL. */
static cJSON *sim_issue(const char *key)
{
    cJSON *all = sim_ctl(&S, "GET", "/_sim/issues", NULL), *hit = NULL;
    cJSON *it;
    cJSON_ArrayForEach(it, all) if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(it, "key")),
                                            key)) hit = cJSON_Duplicate(it, 1);
    cJSON_Delete(all);
    return hit;
}

/* A stored issue's field as text: plain strings, or the name of a status, priority, ... */
static const char *sim_field(const cJSON *issue, const char *field)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(issue, "fields"), field);
    return cJSON_IsObject(v) ? cJSON_GetStringValue(cJSON_GetObjectItem(v, "name"))
                             : cJSON_GetStringValue(v);
}

static int sim_issue_count(void)
{
    cJSON *all = sim_ctl(&S, "GET", "/_sim/issues", NULL);
    int n = cJSON_GetArraySize(all);
    cJSON_Delete(all);
    return n;
}

/* Number of changelog items of a stored issue touching field. */
static int changes_of(const cJSON *issue, const char *field)
{
    int n = 0;
    const cJSON *h, *item;
    cJSON_ArrayForEach(h, cJSON_GetObjectItem(issue, "changelog"))
        cJSON_ArrayForEach(item, cJSON_GetObjectItem(h, "items")) n +=
        !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(item, "fieldId")), field);
    return n;
}

static void seed_issues(int n, int64_t base_ms, const char *status)
{
    struct strbuf b = STRBUF_INIT;
    (void)strbuf_adds(&b, "{\"issues\":[");
    for (int i = 0; i < n; i++)
        (void)strbuf_addf(&b,
                          "%s{\"summary\":\"issue %d\",\"Customer\":\"Customer %d\","
                          "\"status\":\"%s\",\"created_ms\":%lld,\"updated_ms\":%lld}",
                          i ? "," : "", i, i, status, (long long)(base_ms + i * 1000),
                          (long long)(base_ms + i * 1000));
    (void)strbuf_adds(&b, "]}");
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/seed", "%s", b.buf));
    strbuf_release(&b);
}

struct collected {
    struct record_list recs;
    int pages;
};

static enum cb_status collect(void *arg, struct record *recs, size_t n)
{
    struct collected *c = arg;
    c->pages++;
    for (size_t i = 0; i < n; i++) {
        struct record r;
        record_copy(&r, &recs[i]);
        record_list_push(&c->recs, &r);
    }
    return CB_OK;
}

static const struct record *find_key(const struct record_list *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (str_eq(l->v[i].key, key))
            return &l->v[i];
    return NULL;
}

/* Runs one write of the given fields; returns the op's status (op released by the caller). */
static enum cb_status write_one(struct fx *f, struct write_op *op, const char *id,
                                const char *fields_json, const char *marker)
{
    write_op_init(op);
    cJSON *fields = cJSON_Parse(fields_json);
    assert_non_null(fields);
    op->id = id;
    op->fields = fields;
    op->marker = marker;
    op->link_url = id ? NULL : "https://crm.example/cases/42";
    op->link_title = id ? NULL : "CRM case 42";
    enum cb_status st = f->ops->write(f->c, op, 1, &f->err);
    assert_int_equal(st, CB_OK);
    op->fields = NULL;
    cJSON_Delete(fields);
    return op->st;
}

/* Creates an issue through the connector and returns its key (static buffer). */
static const char *create_issue(struct fx *f, const char *fields_json, const char *marker)
{
    static char key[32];
    struct write_op op;
    enum cb_status st = write_one(f, &op, NULL, fields_json, marker);
    if (st != CB_OK)
        fprintf(stderr, "create failed: %s\n", op.err.buf);
    assert_int_equal(st, CB_OK);
    snprintf(key, sizeof(key), "%s", op.rec.key);
    write_op_release(&op);
    return key;
}

/* Log entries (method, path prefix) whose query contains needle. */
static int log_query_count(const char *path, const char *needle)
{
    cJSON *log = sim_ctl(&S, "GET", "/_sim/log", NULL);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, log)
    {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(e, "path"));
        const char *q = cJSON_GetStringValue(cJSON_GetObjectItem(e, "query"));
        n += p && q && !strcmp(p, path) && strstr(q, needle) != NULL;
    }
    cJSON_Delete(log);
    return n;
}

/* --- tests ------------------------------------------------------------------------------- */

static void test_check_config_reports_every_problem(void **state)
{
    (void)state;
    const char *text = "endpoints = {\n"
                       "  crm = { type = \"zoho\"; };\n"
                       "  tracker = {\n"
                       "    type = \"jira\";\n"
                       "    api_url = \"ftp://jira.example\";\n"
                       "    api_tokn = \"x\";\n"
                       "  };\n"
                       "};\n"
                       "pairs = ( { name = \"p\"; crm = { endpoint = \"crm\"; };\n"
                       "  tracker = { endpoint = \"tracker\"; project = \"sup desk\"; }; } );\n";
    struct config *cfg = NULL;
    struct strbuf err = STRBUF_INIT;
    assert_int_equal(config_load_string(text, "bad.conf", &cfg, &err), CB_OK);
    const struct connector_ops *ops = connector_find("jira");
    const struct pair_conf *p = config_pair(cfg, "p");
    assert_int_equal(
        ops->check_config(config_endpoint(cfg, "tracker"), &p->side[SIDE_TRACKER], &err),
        CB_ERR_CONFIG);
    assert_non_null(strstr(err.buf, "bad.conf:3: jira endpoint is missing 'email'"));
    assert_non_null(strstr(err.buf, "bad.conf:3: jira endpoint is missing 'api_token'"));
    assert_non_null(strstr(err.buf, "bad.conf:6: unknown jira endpoint setting 'api_tokn'"));
    assert_non_null(strstr(err.buf, "bad.conf:5: jira 'api_url' must start with https://"));
    assert_non_null(strstr(err.buf, "bad.conf:10: jira 'project' must be a project key"));
    config_free(cfg);
    strbuf_release(&err);
}

static void test_auth_failure_hides_token(void **state)
{
    struct fx *f = *state;
    fx_close(f);
    fx_open_with(f, config_text("not-the-token-1234", NULL, NULL), want_fields);
    struct strbuf info = STRBUF_INIT;
    assert_int_equal(f->ops->ping(f->c, &info, &f->err), CB_ERR_AUTH);
    assert_non_null(strstr(f->err.buf, "jira rejected the credentials for 'bot@acme.test'"));
    assert_null(strstr(f->err.buf, "not-the-token-1234"));
    /* the Basic credentials would be base64("bot@acme.test:not-the-token-1234") */
    assert_null(strstr(f->err.buf, "Ym90QGFjbWUudGVzd"));
    strbuf_release(&info);
}

static void test_ping_resolves_field_names(void **state)
{
    struct fx *f = *state;
    struct strbuf info = STRBUF_INIT;
    assert_int_equal(f->ops->ping(f->c, &info, &f->err), CB_OK);
    assert_non_null(strstr(info.buf, "project SUP"));
    assert_non_null(strstr(info.buf, "Asia/Shanghai"));
    /* "Customer" reaches the wire as its id and comes back under its display name */
    seed_issues(1, sim_now() - 60000, "To Do");
    struct collected got = {0};
    assert_int_equal(f->ops->list_changed(f->c, 0, collect, &got, &f->err), CB_OK);
    assert_int_equal(got.recs.n, 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(got.recs.v[0].fields, "Customer")),
                        "Customer 0");
    assert_int_equal(log_query_count("/rest/api/3/search/jql", "customfield_10050"), 1);
    record_list_release(&got.recs);

    static const char *const missing[] = {"summary", "Customer Segment", NULL};
    fx_close(f);
    fx_open_with(f, config_text("sim-jira-token", NULL, NULL), missing);
    assert_int_equal(f->ops->ping(f->c, &info, &f->err), CB_ERR_CONFIG);
    assert_non_null(strstr(f->err.buf, "'Customer Segment'"));
    assert_non_null(strstr(f->err.buf, "'SUP'"));
    strbuf_release(&info);
}

static void test_list_changed_pages_and_since(void **state)
{
    struct fx *f = *state;
    int64_t base = sim_now() - 3600 * 1000;
    seed_issues(250, base, "To Do");
    /* short pages must not end the listing */
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/config", "{\"search_page_cap\":37}"));
    struct collected all = {0};
    assert_int_equal(f->ops->list_changed(f->c, 0, collect, &all, &f->err), CB_OK);
    assert_int_equal(all.recs.n, 250);
    assert_int_equal(all.pages, 7);
    for (size_t i = 1; i < all.recs.n; i++)
        assert_true(all.recs.v[i - 1].modified_ms <= all.recs.v[i].modified_ms);
    assert_string_equal(all.recs.v[0].key, "SUP-1");
    char url[128];
    snprintf(url, sizeof(url), "%s/browse/SUP-1", S.base);
    assert_string_equal(all.recs.v[0].url, url);
    record_list_release(&all.recs);

    /* a person edits three issues; a listing since just before sees exactly those */
    int64_t before = sim_now() - 1000;
    static const char *const keys[] = {"SUP-7", "SUP-120", "SUP-250"};
    for (int i = 0; i < 3; i++)
        cJSON_Delete(sim_ctl(&S, "POST", "/_sim/edit",
                             "{\"key\":\"%s\",\"user\":\"Mia Krystof\","
                             "\"fields\":{\"summary\":\"edited %d\"}}",
                             keys[i], i));
    sim_clear_log(&S);
    /* the profile zone must not matter: the connector sends epoch milliseconds */
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/config", "{\"time_zone\":\"America/New_York\"}"));
    struct collected since = {0};
    assert_int_equal(f->ops->list_changed(f->c, before, collect, &since, &f->err), CB_OK);
    assert_int_equal(since.recs.n, 3);
    for (int i = 0; i < 3; i++)
        assert_non_null(find_key(&since.recs, keys[i]));
    char needle[64];
    snprintf(needle, sizeof(needle), "updated%%20%%3E%%3D%%20%lld%%20ORDER", (long long)before);
    assert_int_equal(log_query_count("/rest/api/3/search/jql", needle), 1);
    assert_int_equal(log_query_count("/rest/api/3/search/jql", "properties=crmbridge"), 1);
    record_list_release(&since.recs);
}

/* --- listing named issues too (list_changed_also) --------------------------------------------- */

static const char *summary_of(const struct record *r)
{
    assert_non_null(r);
    return cJSON_GetStringValue(cJSON_GetObjectItem(r->fields, "summary"));
}

static void sim_summary(const char *key, const char *summary)
{
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"user\":\"Mia Krystof\","
                         "\"fields\":{\"summary\":\"%s\"}}",
                         key, summary));
}

static void test_list_also_reads_named_issues_through_search_lag(void **state)
{
    struct fx *f = *state;
    seed_issues(5, sim_now() - 3600 * 1000, "To Do");
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/config", "{\"search_lag_ms\":60000}"));
    int64_t since = sim_now() - 1000;
    sim_summary("SUP-2", "fresh");
    /* the plain listing does not see the edit yet: search lags */
    struct collected plain = {0};
    assert_int_equal(f->ops->list_changed(f->c, since, collect, &plain, &f->err), CB_OK);
    assert_null(find_key(&plain.recs, "SUP-2"));
    record_list_release(&plain.recs);

    /* named, SUP-2 comes as it is now (its indexed copy says "issue 1": only reconcileIssues
     * gives the edit), and SUP-4 although it did not change since: one POSTed search */
    sim_clear_log(&S);
    const char *ids[] = {"10002", "10004"};
    struct collected got = {0};
    assert_int_equal(f->ops->list_changed_also(f->c, since, ids, 2, collect, &got, &f->err), CB_OK);
    assert_int_equal(got.recs.n, 2);
    assert_string_equal(summary_of(find_key(&got.recs, "SUP-2")), "fresh");
    assert_string_equal(summary_of(find_key(&got.recs, "SUP-4")), "issue 3");
    assert_int_equal(sim_count(&S, "POST", "/rest/api/3/search/jql"), 1);
    assert_int_equal(sim_count(&S, NULL, NULL), 1);
    record_list_release(&got.recs);

    /* pages keep the order and name the same issues on every page: both fresh edits come */
    sim_summary("SUP-4", "fresher");
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/config", "{\"search_page_cap\":1}"));
    sim_clear_log(&S);
    memset(&got, 0, sizeof(got));
    assert_int_equal(f->ops->list_changed_also(f->c, since, ids, 2, collect, &got, &f->err), CB_OK);
    assert_int_equal(got.pages, 2);
    assert_int_equal(got.recs.n, 2);
    assert_string_equal(got.recs.v[0].key, "SUP-2");
    assert_string_equal(summary_of(&got.recs.v[0]), "fresh");
    assert_string_equal(got.recs.v[1].key, "SUP-4");
    assert_string_equal(summary_of(&got.recs.v[1]), "fresher");
    assert_int_equal(sim_count(&S, "POST", "/rest/api/3/search/jql"), 2);
    record_list_release(&got.recs);
}

static void test_list_also_refuses_what_it_cannot_name(void **state)
{
    struct fx *f = *state;
    assert_int_equal(f->ops->max_list_also, 50);
    seed_issues(60, sim_now() - 3600 * 1000, "To Do");
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    char buf[51][8];
    const char *ids[51];
    for (int i = 0; i < 51; i++) {
        snprintf(buf[i], sizeof(buf[i]), "%d", 10001 + i);
        ids[i] = buf[i];
    }
    sim_clear_log(&S);
    struct collected got = {0};
    /* over reconcileIssues' 50, or a key where an id is needed: refused, nothing sent */
    assert_int_equal(f->ops->list_changed_also(f->c, 0, ids, 51, collect, &got, &f->err),
                     CB_ERR_FINAL);
    assert_non_null(strstr(f->err.buf, "at most 50"));
    const char *keys[] = {"10001", "SUP-2"};
    assert_int_equal(f->ops->list_changed_also(f->c, 0, keys, 2, collect, &got, &f->err),
                     CB_ERR_FINAL);
    assert_non_null(strstr(f->err.buf, "'SUP-2'"));
    assert_int_equal(sim_count(&S, NULL, NULL), 0);
    assert_int_equal(got.recs.n, 0);
    /* 50 named, none changed since: exactly those 50 */
    assert_int_equal(
        f->ops->list_changed_also(f->c, sim_now() - 1000, ids, 50, collect, &got, &f->err), CB_OK);
    assert_int_equal(got.recs.n, 50);
    assert_non_null(find_key(&got.recs, "SUP-50"));
    assert_null(find_key(&got.recs, "SUP-51"));
    record_list_release(&got.recs);
}

static void test_list_also_on_data_center(void **state)
{
    struct fx *f = *state;
    fx_open_dc(f, NULL, want_fields);
    seed_issues(3, sim_now() - 3600 * 1000, "To Do");
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    sim_clear_log(&S);
    /* no reconcileIssues there: the id clause of the one search names it */
    const char *ids[] = {"10002"};
    struct collected got = {0};
    assert_int_equal(
        f->ops->list_changed_also(f->c, sim_now() - 1000, ids, 1, collect, &got, &f->err), CB_OK);
    assert_int_equal(got.recs.n, 1);
    assert_string_equal(summary_of(find_key(&got.recs, "SUP-2")), "issue 1");
    assert_int_equal(sim_count(&S, "GET", "/rest/api/2/search"), 1);
    assert_int_equal(sim_count(&S, NULL, NULL), 1);
    record_list_release(&got.recs);
}

static void test_create_with_marker_then_find(void **state)
{
    struct fx *f = *state;
    int64_t t0 = cbtime_now_ms();
    struct write_op op;
    assert_int_equal(write_one(f, &op, NULL,
                               "{\"summary\":\"Export to CSV\",\"description\":\"Please add it.\","
                               "\"priority\":\"High\",\"Customer\":\"Acme\","
                               "\"labels\":[\"crm\",\"export\"]}",
                               "m-123"),
                     CB_OK);
    assert_string_equal(op.rec.key, "SUP-1");
    assert_non_null(op.rec.id);
    assert_non_null(strstr(op.rec.url, "/browse/SUP-1"));
    /* no status asked: no read-back request (the engine reads new records back in batches) */
    assert_int_equal(sim_count(&S, "GET", "/rest/api/3/issue/"), 0);
    (void)t0;
    cJSON *iss = sim_issue("SUP-1");
    assert_string_equal(sim_field(iss, "customfield_10050"), "Acme");
    assert_string_equal(sim_field(iss, "priority"), "High");
    const cJSON *props = cJSON_GetObjectItem(iss, "properties");
    assert_string_equal(cJSON_GetStringValue(
                            cJSON_GetObjectItem(cJSON_GetObjectItem(props, "crmbridge"), "marker")),
                        "m-123");
    const cJSON *link = cJSON_GetArrayItem(cJSON_GetObjectItem(iss, "remotelinks"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(link, "globalId")),
                        "crmbridge:m-123");
    cJSON_Delete(iss);

    struct record r;
    assert_int_equal(f->ops->find_marker(f->c, "m-123", t0, &r, &f->err), CB_OK);
    assert_string_equal(r.key, "SUP-1");
    assert_string_equal(r.id, op.rec.id);
    assert_string_equal(r.marker, "m-123");
    record_release(&r);
    assert_int_equal(f->ops->find_marker(f->c, "m-999", t0, &r, &f->err), CB_ERR_NOTFOUND);
    assert_non_null(strstr(f->err.buf, "'m-999'"));
    write_op_release(&op);
}

static void test_find_marker_waits_for_search_lag(void **state)
{
    struct fx *f = *state;
    assert_int_equal(f->ops->search_lag(f->c), 30000);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/config", "{\"search_lag_ms\":60000}"));
    int64_t t0 = sim_now();
    create_issue(f, "{\"summary\":\"lagging\"}", "m-lag");
    struct record r;
    assert_int_equal(f->ops->find_marker(f->c, "m-lag", t0, &r, &f->err), CB_ERR_NOTFOUND);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/clock", "{\"advance_ms\":61000}"));
    assert_int_equal(f->ops->find_marker(f->c, "m-lag", t0, &r, &f->err), CB_OK);
    assert_string_equal(r.key, "SUP-1");
    record_release(&r);
}

static void test_create_response_lost(void **state)
{
    struct fx *f = *state;
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"POST\",\"path\":\"/rest/api/3/issue/bulk\","
                         "\"kind\":\"drop_response\"}]}"));
    int64_t t0 = cbtime_now_ms();
    sim_clear_log(&S);
    struct write_op op;
    assert_int_not_equal(write_one(f, &op, NULL, "{\"summary\":\"once only\"}", "m-drop"), CB_OK);
    assert_true(op.err.len > 0);
    write_op_release(&op);
    assert_int_equal(sim_count(&S, "POST", "/rest/api/3/issue"), 1);
    assert_int_equal(sim_issue_count(), 1);
    struct record r;
    assert_int_equal(f->ops->find_marker(f->c, "m-drop", t0, &r, &f->err), CB_OK);
    assert_string_equal(r.key, "SUP-1");
    record_release(&r);
}

static void test_update_only_given_fields(void **state)
{
    struct fx *f = *state;
    const char *key = create_issue(f,
                                   "{\"summary\":\"first\",\"description\":\"keep me\","
                                   "\"Customer\":\"Acme\",\"labels\":[\"a\",\"b\"]}",
                                   "m-up");
    cJSON *iss = sim_issue(key);
    char id[32];
    snprintf(id, sizeof(id), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(iss, "id")));
    cJSON_Delete(iss);
    sim_clear_log(&S);
    struct write_op op;
    assert_int_equal(
        write_one(f, &op, id, "{\"summary\":\"second\",\"labels\":[\"b\",\"c\"]}", NULL), CB_OK);
    /* one request: the edit answers with the issue (returnIssue), so no read-back is needed */
    assert_int_equal(sim_count(&S, NULL, NULL), 1);
    assert_int_equal(sim_count(&S, "PUT", "/rest/api/3/issue/"), 1);
    iss = sim_issue(key);
    assert_string_equal(sim_field(iss, "summary"), "second");
    assert_string_equal(sim_field(iss, "customfield_10050"), "Acme");
    assert_int_equal(changes_of(iss, "summary"), 1);
    assert_int_equal(changes_of(iss, "labels"), 1);
    assert_int_equal(changes_of(iss, "description"), 0);
    assert_int_equal(changes_of(iss, "customfield_10050"), 0);
    const cJSON *labels = cJSON_GetObjectItem(cJSON_GetObjectItem(iss, "fields"), "labels");
    assert_int_equal(cJSON_GetArraySize(labels), 2);
    assert_string_equal(cJSON_GetArrayItem(labels, 1)->valuestring, "c");
    assert_int_equal((int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(iss, "updated_ms")),
                     op.rec.modified_ms);
    assert_string_equal(op.rec.key, key);
    cJSON_Delete(iss);
    write_op_release(&op);

    /* a user field takes a user id: a display name is refused by jira, and said so clearly */
    assert_int_equal(write_one(f, &op, id, "{\"assignee\":\"Li Wei\"}", NULL), CB_ERR_FINAL);
    assert_non_null(strstr(op.err.buf, "assignee 'Li Wei' is not an assignable user"));
    write_op_release(&op);
}

/* Creates n issues in one write (summary "bulk <i>", marker "m-b<i>"; bad_at gets a due date
 * Jira refuses, -1 for none). ops[] are released by the caller. */
static void write_creates(struct fx *f, struct write_op *ops, int n, int bad_at)
{
    cJSON **fields = calloc((size_t)n, sizeof(*fields));
    char(*markers)[16] = calloc((size_t)n, sizeof(*markers));
    for (int i = 0; i < n; i++) {
        write_op_init(&ops[i]);
        fields[i] = cJSON_CreateObject();
        char s[32];
        snprintf(s, sizeof(s), "bulk %d", i);
        cJSON_AddStringToObject(fields[i], "summary", s);
        if (i == bad_at)
            cJSON_AddStringToObject(fields[i], "duedate", "31/12/2026");
        snprintf(markers[i], sizeof(markers[i]), "m-b%d", i);
        ops[i].fields = fields[i];
        ops[i].marker = markers[i];
        ops[i].link_url = "https://crm.example/cases/42";
    }
    assert_int_equal(f->ops->write(f->c, ops, (size_t)n, &f->err), CB_OK);
    for (int i = 0; i < n; i++) {
        ops[i].fields = NULL;
        ops[i].marker = NULL;
        cJSON_Delete(fields[i]);
    }
    free(fields);
    free(markers);
}

/* The stored issue of a created op carries that op's summary and marker. */
static void assert_created_as(const struct write_op *op, int i)
{
    char want[32];
    cJSON *iss = sim_issue(op->rec.key);
    assert_non_null(iss);
    snprintf(want, sizeof(want), "bulk %d", i);
    assert_string_equal(sim_field(iss, "summary"), want);
    snprintf(want, sizeof(want), "m-b%d", i);
    const cJSON *props = cJSON_GetObjectItem(iss, "properties");
    assert_string_equal(cJSON_GetStringValue(
                            cJSON_GetObjectItem(cJSON_GetObjectItem(props, "crmbridge"), "marker")),
                        want);
    cJSON_Delete(iss);
}

static void test_bulk_create_fifty_in_one_request(void **state)
{
    struct fx *f = *state;
    assert_int_equal(f->ops->max_batch_write, 50);
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    sim_clear_log(&S);
    struct write_op ops[50];
    write_creates(f, ops, 50, -1);
    assert_int_equal(sim_count(&S, "POST", "/rest/api/3/issue/bulk"), 1);
    assert_int_equal(sim_count(&S, "POST", NULL), 51); /* the bulk create and 50 links */
    assert_int_equal(sim_count(&S, "GET", NULL), 0);
    assert_int_equal(sim_issue_count(), 50);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(ops[i].st, CB_OK);
        assert_non_null(strstr(ops[i].rec.url, ops[i].rec.key));
        if (i % 7 == 0)
            assert_created_as(&ops[i], i);
        write_op_release(&ops[i]);
    }
}

static void test_bulk_create_one_bad_element(void **state)
{
    struct fx *f = *state;
    struct write_op ops[5];
    write_creates(f, ops, 5, 2);
    assert_int_equal(ops[2].st, CB_ERR_FINAL);
    assert_non_null(strstr(ops[2].err.buf, "http 400"));
    assert_non_null(strstr(ops[2].err.buf, "duedate"));
    assert_null(ops[2].rec.id);
    for (int i = 0; i < 5; i++) {
        if (i != 2) {
            assert_int_equal(ops[i].st, CB_OK);
            assert_created_as(&ops[i], i); /* the answer's issues map to the right ops */
        }
        write_op_release(&ops[i]);
    }
    assert_int_equal(sim_issue_count(), 4);

    /* every element refused: Jira answers 400, and each op still gets its own reason */
    write_creates(f, ops, 1, 0);
    assert_int_equal(ops[0].st, CB_ERR_FINAL);
    assert_non_null(strstr(ops[0].err.buf, "duedate"));
    write_op_release(&ops[0]);
    assert_int_equal(sim_issue_count(), 4);
}

static void test_bulk_create_over_fifty_is_split(void **state)
{
    struct fx *f = *state;
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    sim_clear_log(&S);
    struct write_op ops[51];
    write_creates(f, ops, 51, -1);
    assert_int_equal(sim_count(&S, "POST", "/rest/api/3/issue/bulk"), 2);
    assert_int_equal(sim_issue_count(), 51);
    assert_created_as(&ops[50], 50);
    for (int i = 0; i < 51; i++) {
        assert_int_equal(ops[i].st, CB_OK);
        write_op_release(&ops[i]);
    }
}

/* Requests of one create with a status, once the connection has learnt the workflow. */
static void create_costs(struct fx *f, const char *status, int posts)
{
    char fields[96];
    snprintf(fields, sizeof(fields), "{\"summary\":\"to %s\",\"status\":\"%s\"}", status, status);
    sim_clear_log(&S);
    const char *key = create_issue(f, fields, "m-cost");
    /* the bulk create (carrying the first hop) and the link, then one POST per further hop */
    assert_int_equal(sim_count(&S, "GET", NULL), 0);
    assert_int_equal(sim_count(&S, "POST", "/rest/api/3/issue/bulk"), 1);
    assert_int_equal(sim_count(&S, "POST", NULL), 2 + posts);
    cJSON *iss = sim_issue(key);
    assert_string_equal(sim_field(iss, "status"), status);
    cJSON_Delete(iss);
}

static void test_status_goes_through_in_progress(void **state)
{
    struct fx *f = *state;
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    sim_clear_log(&S);
    struct write_op op;
    /* the first time, the workflow is learnt from the new issue (one read of it) */
    assert_int_equal(
        write_one(f, &op, NULL, "{\"summary\":\"ship it\",\"status\":\"Done\"}", "m-done"), CB_OK);
    cJSON *iss = sim_issue(op.rec.key);
    assert_string_equal(sim_field(iss, "status"), "Done");
    assert_int_equal(changes_of(iss, "status"), 2);
    assert_int_equal(sim_count(&S, "GET", "/rest/api/3/issue/"), 3);  /* issue + 2 listings */
    assert_int_equal(sim_count(&S, "POST", "/rest/api/3/issue/"), 4); /* bulk, link, 2 hops */
    assert_int_equal(op.rec.modified_ms, 0); /* the engine reads new issues back */
    cJSON_Delete(iss);
    write_op_release(&op);

    /* then it costs the create, the link and one POST per hop the create could not carry */
    create_costs(f, "Done", 1);
    create_costs(f, "Waiting for customer", 1);
    create_costs(f, "In Progress", 0);
    create_costs(f, "Won't Do", 0);
    create_costs(f, "To Do", 0);

    /* a learnt transition the issue refuses: the issue's own transitions are asked instead */
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"POST\",\"path\":"
                         "\"/rest/api/3/issue/[^/]+/transitions\",\"kind\":\"status\","
                         "\"status\":400}]}"));
    sim_clear_log(&S);
    assert_int_equal(
        write_one(f, &op, NULL, "{\"summary\":\"refused\",\"status\":\"Done\"}", "m-ref"), CB_OK);
    iss = sim_issue(op.rec.key);
    assert_string_equal(sim_field(iss, "status"), "Done");
    assert_int_equal(sim_count(&S, "GET", "/rest/api/3/issue/"), 1);  /* the listing */
    assert_int_equal(sim_count(&S, "POST", "/rest/api/3/issue/"), 4); /* bulk, link, 2 tries */
    cJSON_Delete(iss);
    write_op_release(&op);
}

/* Updates issue `key` to status `target`, telling the connector it was `seen` when read. */
static enum cb_status move_from(struct fx *f, const char *key, const char *seen, const char *target)
{
    cJSON *iss = sim_issue(key);
    char id[32], fields[64];
    snprintf(id, sizeof(id), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(iss, "id")));
    cJSON_Delete(iss);
    struct record cur = {.id = id, .key = (char *)key, .fields = cJSON_CreateObject()};
    cJSON_AddStringToObject(cur.fields, "status", seen);
    snprintf(fields, sizeof(fields), "{\"status\":\"%s\"}", target);
    struct write_op op;
    write_op_init(&op);
    op.current = &cur;
    cJSON *fj = cJSON_Parse(fields);
    op.id = id;
    op.fields = fj;
    assert_int_equal(f->ops->write(f->c, &op, 1, &f->err), CB_OK);
    enum cb_status st = op.st;
    if (st == CB_OK)
        assert_string_equal(op.rec.key, key);
    op.fields = NULL;
    cJSON_Delete(fj);
    write_op_release(&op);
    cJSON_Delete(cur.fields);
    return st;
}

/* A status change starts from the status the engine read in this cycle: once the workflow is
 * learnt it is one POST and no read; a status that changed since (a stale read) costs the
 * reads it needs, never a failure. */
static void test_status_change_from_the_status_read(void **state)
{
    struct fx *f = *state;
    seed_issues(2, sim_now() - 60000, "In Progress");
    seed_issues(1, sim_now() - 50000, "Waiting for customer");
    sim_clear_log(&S);
    assert_int_equal(move_from(f, "SUP-1", "In Progress", "Done"), CB_OK); /* learns */
    assert_true(sim_count(&S, "GET", NULL) > 0);

    sim_clear_log(&S);
    assert_int_equal(move_from(f, "SUP-2", "In Progress", "Done"), CB_OK);
    assert_int_equal(sim_count(&S, "GET", NULL), 0);
    assert_int_equal(sim_count(&S, "POST", NULL), 1);
    cJSON *iss = sim_issue("SUP-2");
    assert_string_equal(sim_field(iss, "status"), "Done");
    cJSON_Delete(iss);

    /* SUP-3 waits for the customer, not in progress as read: the learnt step is refused */
    assert_int_equal(move_from(f, "SUP-3", "In Progress", "Done"), CB_OK);
    iss = sim_issue("SUP-3");
    assert_string_equal(sim_field(iss, "status"), "Done");
    cJSON_Delete(iss);
}

static void test_status_unreachable_is_final(void **state)
{
    struct fx *f = *state;
    seed_issues(2, sim_now() - 60000, "In Progress");
    cJSON *iss = sim_issue("SUP-1");
    char id[32];
    snprintf(id, sizeof(id), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(iss, "id")));
    cJSON_Delete(iss);
    struct write_op op;
    assert_int_equal(write_one(f, &op, id, "{\"status\":\"Won't Do\"}", NULL), CB_ERR_FINAL);
    assert_string_equal(op.err.buf,
                        "no workflow path from 'In Progress' to 'Won't Do' for issue 'SUP-1'");
    write_op_release(&op);
    iss = sim_issue("SUP-1");
    assert_string_equal(sim_field(iss, "status"), "In Progress");
    cJSON_Delete(iss);

    /* the second time the learned workflow answers without touching the issue */
    iss = sim_issue("SUP-2");
    snprintf(id, sizeof(id), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(iss, "id")));
    cJSON_Delete(iss);
    sim_clear_log(&S);
    assert_int_equal(write_one(f, &op, id, "{\"status\":\"Won't Do\"}", NULL), CB_ERR_FINAL);
    assert_int_equal(sim_count(&S, "POST", NULL), 0);
    write_op_release(&op);

    assert_int_equal(write_one(f, &op, id, "{\"status\":\"Closed\"}", NULL), CB_ERR_FINAL);
    assert_non_null(strstr(op.err.buf, "no status 'Closed'"));
    write_op_release(&op);
}

static void test_description_round_trip(void **state)
{
    struct fx *f = *state;
    const char *md = "Customer asks for:\n\n"
                     "- CSV export\n"
                     "- a **fast** path\n\n"
                     "1. open the report\n"
                     "2. press export\n\n"
                     "```bash\nexport --all\n```\n\n"
                     "See [the case](https://crm.example/cases/42) and `--fast`.\n";
    cJSON *fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "summary", "rich text");
    cJSON_AddStringToObject(fields, "description", md);
    char *json = cJSON_PrintUnformatted(fields);
    struct write_op op;
    assert_int_equal(write_one(f, &op, NULL, json, "m-rt"), CB_OK);
    const char *ids[] = {op.rec.id};
    struct record_list got = {0};
    assert_int_equal(f->ops->get_many(f->c, ids, 1, &got, &f->err), CB_OK);
    assert_int_equal(got.n, 1);
    const char *back = cJSON_GetStringValue(cJSON_GetObjectItem(got.v[0].fields, "description"));
    assert_non_null(back);
    char *a = richtext_md_normalize(md), *b = richtext_md_normalize(back);
    assert_string_equal(a, b);
    free(a);
    free(b);
    assert_string_equal(got.v[0].marker, "m-rt");
    record_list_release(&got);
    write_op_release(&op);
    free(json);
    cJSON_Delete(fields);
}

/* Two connections of one process (a migration's) share Jira Cloud's burst limit of an
 * endpoint: 150 reads in a row, alternating connections, are paced under 100 a second instead
 * of being answered 429. */
static void test_connections_share_the_burst_limit(void **state)
{
    struct fx *f = *state, g;
    seed_issues(1, sim_now() - 60000, "To Do");
    cJSON *iss = sim_issue("SUP-1");
    char id[32];
    snprintf(id, sizeof(id), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(iss, "id")));
    cJSON_Delete(iss);
    fx_open_with(&g, config_text("sim-jira-token", NULL, NULL), want_fields);
    struct fx *both[2] = {f, &g};
    for (int i = 0; i < 2; i++)
        assert_int_equal(both[i]->ops->ping(both[i]->c, NULL, &both[i]->err), CB_OK);
    sim_clear_log(&S);
    const char *ids[] = {id};
    int64_t t0 = cbtime_now_ms();
    for (int i = 0; i < 150; i++) {
        struct fx *x = both[i % 2];
        struct record_list got = {0};
        assert_int_equal(x->ops->get_many(x->c, ids, 1, &got, &x->err), CB_OK);
        assert_int_equal(got.n, 1);
        record_list_release(&got);
    }
    assert_int_equal(sim_count_status(&S, 429), 0);
    assert_true(cbtime_now_ms() - t0 >= 1000);
    fx_close(&g);
}

static void test_get_many_skips_missing(void **state)
{
    struct fx *f = *state;
    seed_issues(3, sim_now() - 60000, "To Do");
    cJSON_Delete(sim_ctl(&S, "DELETE", "/_sim/issue/SUP-2", NULL));
    const char *ids[] = {"10001", "10002", "10003"};
    struct record_list got = {0};
    assert_int_equal(f->ops->get_many(f->c, ids, 3, &got, &f->err), CB_OK);
    assert_int_equal(got.n, 2);
    assert_non_null(find_key(&got, "SUP-1"));
    assert_non_null(find_key(&got, "SUP-3"));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(got.v[0].fields, "status")),
                        "To Do");
    record_list_release(&got);
}

/* --- comments carried by issues ------------------------------------------------------------ */

/* Adds a comment by Mia Krystof to issue key, a simulated second after the last change. */
static void sim_comment(const char *key, const char *text)
{
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/clock", "{\"advance_ms\":1000}"));
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"user\":\"Mia Krystof\","
                         "\"fields\":{\"comment\":\"%s\"}}",
                         key, text));
}

/* A pseudo field of a record as a number, or -1 when it is absent. */
static int64_t pseudo(const struct record *r, const char *name)
{
    const cJSON *v = cJSON_GetObjectItem(r->fields, name);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

/* SUP-1 without comments, SUP-2 with two (the older one edited last), SUP-3 with more than an
 * issue answer embeds. Returns the newest time among SUP-2's comments, as its comment list says. */
static int64_t seed_commented(struct fx *f)
{
    seed_issues(3, sim_now() - 3600 * 1000, "To Do");
    sim_comment("SUP-2", "first");
    sim_comment("SUP-2", "second");
    struct comment_list cl = {0};
    assert_int_equal(f->ops->list_comments(f->c, "10002", &cl, &f->err), CB_OK);
    assert_int_equal(cl.n, 2);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/clock", "{\"advance_ms\":1000}"));
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/comment_edit",
                         "{\"key\":\"SUP-2\",\"id\":\"%s\",\"text\":\"first, edited\"}",
                         cl.v[0].id));
    comment_list_release(&cl);
    for (int i = 0; i < 25; i++)
        sim_comment("SUP-3", "one of many");
    assert_int_equal(f->ops->list_comments(f->c, "10002", &cl, &f->err), CB_OK);
    assert_int_equal(cl.n, 2);
    int64_t newest =
        cl.v[0].updated_ms > cl.v[1].updated_ms ? cl.v[0].updated_ms : cl.v[1].updated_ms;
    assert_true(cl.v[0].updated_ms > cl.v[1].created_ms); /* the edit is the newest */
    comment_list_release(&cl);
    return newest;
}

/* The issues of seed_commented as read: the count always, the newest comment time only when the
 * answer held every comment, and never the comment field itself among the mapped fields. */
static void check_commented(const struct record_list *l, int64_t newest)
{
    static const char *const keys[] = {"SUP-1", "SUP-2", "SUP-3"};
    const int64_t count[] = {0, 2, 25}, ms[] = {-1, newest, -1};
    for (int i = 0; i < 3; i++) {
        const struct record *r = find_key(l, keys[i]);
        assert_non_null(r);
        assert_int_equal(pseudo(r, COMMENT_COUNT_FIELD), count[i]);
        assert_int_equal(pseudo(r, COMMENT_NEWEST_FIELD), ms[i]);
        assert_null(cJSON_GetObjectItem(r->fields, "comment"));
        assert_null(cJSON_GetObjectItem(r->fields, "Comment"));
    }
}

static void check_comment_fields(struct fx *f)
{
    int64_t newest = seed_commented(f);
    struct collected got = {0};
    assert_int_equal(f->ops->list_changed(f->c, 0, collect, &got, &f->err), CB_OK);
    assert_int_equal(got.recs.n, 3);
    check_commented(&got.recs, newest);
    record_list_release(&got.recs);
    const char *ids[] = {"10001", "10002", "10003"};
    struct record_list many = {0};
    assert_int_equal(f->ops->get_many(f->c, ids, 3, &many, &f->err), CB_OK);
    assert_int_equal(many.n, 3);
    check_commented(&many, newest);
    record_list_release(&many);
}

static void test_issues_carry_comment_count_and_time(void **state)
{
    check_comment_fields(*state);
}

static void test_issues_carry_comment_count_and_time_on_data_center(void **state)
{
    struct fx *f = *state;
    fx_open_dc(f, NULL, want_fields);
    check_comment_fields(f);
}

/* --- people ------------------------------------------------------------------------------- */

static const char *const people_fields[] = {"summary", "assignee", "Reporter", NULL};

/* The user of a directory with that display name and e-mail (NULL e-mail: hidden). */
static const struct person *person_named(const struct person_list *l, const char *name,
                                         const char *email)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].name, name) && str_eq(l->v[i].email, email))
            return &l->v[i];
    return NULL;
}

/* The accountId (Data Center: name) of a user field of a stored issue, or NULL. */
static const char *sim_user(const cJSON *issue, const char *field, const char *key)
{
    const cJSON *u = cJSON_GetObjectItem(cJSON_GetObjectItem(issue, "fields"), field);
    return cJSON_GetStringValue(cJSON_GetObjectItem(u, key));
}

static void test_list_users_pages_each_once(void **state)
{
    struct fx *f = *state;
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/config", "{\"user_page_cap\":2}"));
    cJSON *added = sim_ctl(&S, "POST", "/_sim/users",
                           "{\"displayName\":\"王芳\",\"emailAddress\":\"wang.fang@acme.cn\"}");
    sim_clear_log(&S);
    struct person_list dir = {0};
    assert_int_equal(f->ops->list_users(f->c, &dir, &f->err), CB_OK);
    /* two users a page: several pages, the last one empty */
    int pages = sim_count(&S, "GET", "/rest/api/3/user/assignable/search");
    assert_int_equal(pages, (int)(dir.n + 1) / 2 + 1);
    assert_true(log_query_count("/rest/api/3/user/assignable/search", "project=SUP") == pages);
    for (size_t i = 0; i < dir.n; i++)
        for (size_t j = i + 1; j < dir.n; j++)
            assert_string_not_equal(dir.v[i].id, dir.v[j].id);
    const struct person *wang = person_named(&dir, "王芳", "wang.fang@acme.cn");
    assert_non_null(wang);
    assert_string_equal(wang->id, cJSON_GetStringValue(cJSON_GetObjectItem(added, "accountId")));
    assert_non_null(person_named(&dir, "李伟", "liwei@acme.cn"));
    assert_non_null(person_named(&dir, "Sam Quinn", NULL)); /* the profile hides the e-mail */
    const struct person *a1 = person_named(&dir, "Alex Chen", "alex.chen@acme.test");
    const struct person *a2 = person_named(&dir, "Alex Chen", "achen@partner.test");
    assert_true(a1 && a2 && strcmp(a1->id, a2->id) != 0);
    assert_null(person_list_find(&dir, "Alex Chen")); /* two share the name */
    person_list_release(&dir);
    cJSON_Delete(added);
}

static void test_person_fields_read_as_objects(void **state)
{
    struct fx *f = *state;
    fx_close(f);
    fx_open_with(f, config_text("sim-jira-token", NULL, NULL), people_fields);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/seed",
                         "{\"issues\":[{\"summary\":\"a\",\"assignee\":\"李伟\","
                         "\"reporter\":\"Sam Quinn\"},{\"summary\":\"b\"}]}"));
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    assert_true(f->ops->person_field(f->c, "assignee"));
    assert_true(f->ops->person_field(f->c, "Reporter"));
    assert_false(f->ops->person_field(f->c, "summary"));
    assert_false(f->ops->person_field(f->c, "nonexistent"));
    cJSON *iss = sim_issue("SUP-1");
    const char *liwei = sim_user(iss, "assignee", "accountId");
    const char *ids[] = {"10001", "10002"};
    struct record_list got = {0};
    assert_int_equal(f->ops->get_many(f->c, ids, 2, &got, &f->err), CB_OK);
    const cJSON *a = cJSON_GetObjectItem(find_key(&got, "SUP-1")->fields, "assignee");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(a, "id")), liwei);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(a, "name")), "李伟");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(a, "email")), "liwei@acme.cn");
    const cJSON *r = cJSON_GetObjectItem(find_key(&got, "SUP-1")->fields, "Reporter");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "name")), "Sam Quinn");
    assert_null(cJSON_GetObjectItem(r, "email"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(find_key(&got, "SUP-2")->fields, "assignee")));
    record_list_release(&got);
    cJSON_Delete(iss);
}

static void test_person_write_sets_refuses_and_clears(void **state)
{
    struct fx *f = *state;
    fx_close(f);
    fx_open_with(f, config_text("sim-jira-token", NULL, NULL), people_fields);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/seed",
                         "{\"issues\":[{\"summary\":\"a\"},"
                         "{\"summary\":\"b\"}]}"));
    struct person_list dir = {0};
    assert_int_equal(f->ops->list_users(f->c, &dir, &f->err), CB_OK);
    const struct person *mia = person_list_find(&dir, "mia@acme.test");
    assert_non_null(mia);
    /* a batch: the unknown id fails its own op only */
    struct write_op ops[2];
    cJSON *bad = cJSON_Parse("{\"assignee\":\"no-such-account\"}"), *good = cJSON_CreateObject();
    cJSON_AddStringToObject(good, "assignee", mia->id);
    write_op_init(&ops[0]);
    write_op_init(&ops[1]);
    ops[0].id = "10001";
    ops[0].fields = bad;
    ops[1].id = "10002";
    ops[1].fields = good;
    assert_int_equal(f->ops->write(f->c, ops, 2, &f->err), CB_OK);
    assert_int_equal(ops[0].st, CB_ERR_FINAL);
    assert_non_null(strstr(ops[0].err.buf, "assignee 'no-such-account' is not an assignable user"));
    assert_int_equal(ops[1].st, CB_OK);
    cJSON *iss = sim_issue("SUP-2");
    assert_string_equal(sim_user(iss, "assignee", "accountId"), mia->id);
    cJSON_Delete(iss);
    iss = sim_issue("SUP-1");
    assert_null(sim_user(iss, "assignee", "accountId"));
    cJSON_Delete(iss);
    /* the read-back through the connector is the same person */
    struct record_list got = {0};
    const char *ids[] = {"10002"};
    assert_int_equal(f->ops->get_many(f->c, ids, 1, &got, &f->err), CB_OK);
    const cJSON *a = cJSON_GetObjectItem(got.v[0].fields, "assignee");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(a, "id")), mia->id);
    record_list_release(&got);
    /* null unassigns */
    struct write_op op;
    assert_int_equal(write_one(f, &op, "10002", "{\"assignee\":null}", NULL), CB_OK);
    write_op_release(&op);
    iss = sim_issue("SUP-2");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(iss, "fields"), "assignee")));
    cJSON_Delete(iss);
    for (int i = 0; i < 2; i++)
        write_op_release(&ops[i]);
    cJSON_Delete(bad);
    cJSON_Delete(good);
    person_list_release(&dir);
}

/* Data Center names users by `name`: the directory, the read and the write all use it. */
static void test_person_fields_on_data_center(void **state)
{
    struct fx *f = *state;
    fx_open_dc(f, "\"user_page_cap\":3", people_fields);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/seed", "{\"issues\":[{\"summary\":\"a\"}]}"));
    struct person_list dir = {0};
    sim_clear_log(&S);
    assert_int_equal(f->ops->list_users(f->c, &dir, &f->err), CB_OK);
    assert_true(log_query_count("/rest/api/2/user/assignable/search", "username=") > 1);
    const struct person *liwei = person_list_find(&dir, "liwei@acme.cn");
    assert_non_null(liwei);
    assert_string_equal(liwei->id, "liwei"); /* the user name is the id */
    struct write_op op;
    char fields[128];
    snprintf(fields, sizeof(fields), "{\"assignee\":\"%s\"}", liwei->id);
    assert_int_equal(write_one(f, &op, "10001", fields, NULL), CB_OK);
    write_op_release(&op);
    cJSON *iss = sim_issue("SUP-1");
    assert_string_equal(sim_user(iss, "assignee", "name"), "liwei");
    cJSON_Delete(iss);
    const char *ids[] = {"10001"};
    struct record_list got = {0};
    assert_int_equal(f->ops->get_many(f->c, ids, 1, &got, &f->err), CB_OK);
    const cJSON *a = cJSON_GetObjectItem(got.v[0].fields, "assignee");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(a, "id")), "liwei");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(a, "name")), "李伟");
    record_list_release(&got);
    assert_int_equal(write_one(f, &op, "10001", "{\"assignee\":\"ghost\"}", NULL), CB_ERR_FINAL);
    assert_non_null(strstr(op.err.buf, "assignee 'ghost' is not an assignable user"));
    write_op_release(&op);
    person_list_release(&dir);
}

/* Adds a fault rule (kind and its options, JSON members) for GET /search/jql. */
static void search_fault(const char *rule)
{
    cJSON_Delete(
        sim_ctl(&S, "POST", "/_sim/faults",
                "{\"rules\":[{\"method\":\"GET\",\"path\":\"/rest/api/3/search/jql\",%s}]}", rule));
}

static enum cb_status list_all(struct fx *f, struct collected *got)
{
    memset(got, 0, sizeof(*got));
    return f->ops->list_changed(f->c, 0, collect, got, &f->err);
}

static void test_429_then_success(void **state)
{
    struct fx *f = *state;
    seed_issues(2, sim_now() - 60000, "To Do");
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    search_fault("\"kind\":\"status\",\"status\":429,\"retry_after\":1");
    sim_clear_log(&S);
    int64_t t0 = cbtime_now_ms();
    struct collected got;
    assert_int_equal(list_all(f, &got), CB_OK);
    assert_true(cbtime_now_ms() - t0 >= 900);
    assert_int_equal(got.recs.n, 2);
    assert_int_equal(sim_count(&S, "GET", "/rest/api/3/search/jql"), 2);
    record_list_release(&got.recs);

    /* a limit that outlasts the retries is "wait", with Jira's own words */
    search_fault("\"kind\":\"status\",\"status\":429,\"retry_after\":0,\"count\":-1");
    assert_int_equal(list_all(f, &got), CB_ERR_WAIT);
    assert_non_null(strstr(f->err.buf, "rate-limited"));
    record_list_release(&got.recs);
}

static void test_burst_limit_is_honoured(void **state)
{
    struct fx *f = *state;
    seed_issues(100, sim_now() - 60000, "To Do");
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/config",
                         "{\"search_page_cap\":40,\"rate\":{\"GET /rest/api/3/search/jql\":1}}"));
    sim_clear_log(&S);
    struct collected got;
    assert_int_equal(list_all(f, &got), CB_OK);
    assert_int_equal(got.recs.n, 100);
    assert_int_equal(got.pages, 3);
    cJSON *log = sim_ctl(&S, "GET", "/_sim/log", NULL);
    int limited = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, log) limited +=
        cJSON_GetNumberValue(cJSON_GetObjectItem(e, "status")) == 429;
    cJSON_Delete(log);
    assert_true(limited >= 1);
    record_list_release(&got.recs);
}

static void test_503_burst_then_success(void **state)
{
    struct fx *f = *state;
    seed_issues(2, sim_now() - 60000, "To Do");
    search_fault("\"kind\":\"status\",\"status\":503,\"count\":3");
    struct collected got;
    assert_int_equal(list_all(f, &got), CB_OK);
    assert_int_equal(got.recs.n, 2);
    record_list_release(&got.recs);

    search_fault("\"kind\":\"status\",\"status\":503,\"count\":-1");
    assert_int_equal(list_all(f, &got), CB_ERR_TEMP);
    assert_non_null(strstr(f->err.buf, "http 503"));
    record_list_release(&got.recs);
}

static void test_401_mid_run(void **state)
{
    struct fx *f = *state;
    seed_issues(1, sim_now() - 60000, "To Do");
    struct collected got;
    assert_int_equal(list_all(f, &got), CB_OK);
    record_list_release(&got.recs);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/config", "{\"api_token\":\"rotated-token\"}"));
    assert_int_equal(list_all(f, &got), CB_ERR_AUTH);
    assert_non_null(strstr(f->err.buf, "'bot@acme.test'"));
    assert_null(strstr(f->err.buf, "sim-jira-token"));
    record_list_release(&got.recs);
}

static void test_html_page_is_a_clear_error(void **state)
{
    struct fx *f = *state;
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    search_fault("\"kind\":\"html\"");
    struct collected got;
    assert_int_equal(list_all(f, &got), CB_ERR_TEMP);
    assert_non_null(strstr(f->err.buf, "HTML page"));
    assert_non_null(strstr(f->err.buf, "Service Unavailable"));
    record_list_release(&got.recs);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_config_reports_every_problem),
        cmocka_unit_test_setup_teardown(test_auth_failure_hides_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping_resolves_field_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_changed_pages_and_since, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_also_reads_named_issues_through_search_lag, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_also_refuses_what_it_cannot_name, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_also_on_data_center, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_with_marker_then_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_marker_waits_for_search_lag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_response_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_only_given_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_goes_through_in_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_create_fifty_in_one_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_create_one_bad_element, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_create_over_fifty_is_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_unreachable_is_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_change_from_the_status_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_share_the_burst_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_description_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_many_skips_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issues_carry_comment_count_and_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issues_carry_comment_count_and_time_on_data_center,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_limit_is_honoured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_503_burst_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_mid_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html_page_is_a_clear_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_users_pages_each_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_person_fields_read_as_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_person_write_sets_refuses_and_clears, setup, teardown),
        cmocka_unit_test_setup_teardown(test_person_fields_on_data_center, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
