/*
 * The Trello connector against tests/sim/trello_sim.py: configuration checks, key and token in
 * the header or the query (and never in a message), lists resolved by name (also Chinese ones),
 * the cards snapshot on a first run, the actions feed paged past 1,000 actions, later listings
 * that read only the cards someone else acted on (our writes' echoes cost no read, more cards
 * than the pacer lets through cost one snapshot), creates that carry a marker (also when the
 * response is lost), moves between lists, archiving, labels, pacing that keeps a burst of 250
 * requests under Trello's limits, and people: the board's members as the directory and the
 * pseudo field "member" read, written, refused and cleared.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/connector.h"
#include "core/config.h"
#include "core/timeutil.h"
#include "mapping/item.h"
#include "tests/unit/testutil.h"

#define KEY "d1f7b2c9e4a8f3b6c0d5e9a2f4b7c1e8"
#define TOKEN "ATTA9c4e1b7d2f8a3c6e0b5d9f1a4c7e2b8d3f6a0c5e9b1d4f7a2c8e3b6d0f5a9c1e4b7"
#define TOKEN2 "ATTA1f2e3d4c5b6a79808f7e6d5c4b3a2918f7e6d5c4b3a29180f1e2d3c4b5a6978"
/* tests not about pacing raise the limits on both ends so that they run at full speed */
#define FAST "token_rate = 10000; key_rate = 30000;\n"

static struct sim S;

static const char *const want_fields[] = {"name",   "desc",   "list", "due",
                                          "labels", "closed", "$url", NULL};
static const char *const member_fields[] = {"name", "member", NULL};
static const char *const *open_fields = want_fields; /* what fx_open_with asks for */

struct fx {
    struct config *cfg;
    struct connector *c;
    const struct connector_ops *ops;
    struct strbuf err;
    char board[32], board_cn[32], board_cn_short[16];
};

/* The simulator's boards: the default one and the Chinese-named one. */
static void load_boards(struct fx *f)
{
    cJSON *all = sim_ctl(&S, "GET", "/_sim/boards", NULL);
    const cJSON *b = cJSON_GetArrayItem(all, 0), *cn = cJSON_GetArrayItem(all, 1);
    snprintf(f->board, sizeof(f->board), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(b, "id")));
    snprintf(f->board_cn, sizeof(f->board_cn), "%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(cn, "id")));
    snprintf(f->board_cn_short, sizeof(f->board_cn_short), "%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(cn, "shortLink")));
    cJSON_Delete(all);
}

static char *config_text(const char *token, const char *extra_ep, const char *board,
                         const char *extra_side)
{
    static char buf[2048];
    snprintf(buf, sizeof(buf),
             "endpoints = {\n"
             "  crm = { type = \"zoho\"; };\n"
             "  tracker = {\n"
             "    type = \"trello\";\n"
             "    api_url = \"%s/\";\n"
             "    key = \"" KEY "\";\n"
             "    token = \"%s\";\n"
             "%s"
             "  };\n"
             "};\n"
             "pairs = ( { name = \"p\"; crm = { endpoint = \"crm\"; };\n"
             "  tracker = { endpoint = \"tracker\"; board = \"%s\";\n%s  }; } );\n",
             S.base, token, extra_ep ? extra_ep : "", board, extra_side ? extra_side : "");
    return buf;
}

static void fx_open_with(struct fx *f, const char *text)
{
    strbuf_init(&f->err, 0);
    assert_int_equal(config_load_string(text, "test.conf", &f->cfg, &f->err), CB_OK);
    f->ops = connector_find("trello");
    assert_non_null(f->ops);
    const struct pair_conf *p = config_pair(f->cfg, "p");
    struct connector_params params = {
        .ep = config_endpoint(f->cfg, "tracker"),
        .side = &p->side[SIDE_TRACKER],
        .http = {.timeout_s = 5, .max_retries = 3, .backoff_ms = 20, .max_wait_s = 10},
        .fields = open_fields,
    };
    assert_int_equal(f->ops->open(&params, &f->c, &f->err), CB_OK);
}

static void fx_close(struct fx *f)
{
    if (f->c)
        f->ops->close(f->c);
    config_free(f->cfg);
    strbuf_release(&f->err);
    f->c = NULL;
    f->cfg = NULL;
}

static void fx_reopen(struct fx *f, const char *text)
{
    fx_close(f);
    fx_open_with(f, text);
}

static int setup(void **state)
{
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/reset", NULL));
    cJSON_Delete(
        sim_ctl(&S, "POST", "/_sim/config", "{\"token_limit\":10000,\"key_limit\":30000}"));
    struct fx *f = calloc(1, sizeof(*f));
    load_boards(f);
    open_fields = want_fields;
    fx_open_with(f, config_text(TOKEN, FAST, f->board, NULL));
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
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return sim_start(&S, "trello", NULL);
}

static int group_teardown(void **state)
{
    (void)state;
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

static void advance(int ms)
{
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/clock", "{\"advance_ms\":%d}", ms));
}

/* The simulator's stored card with that id or short link (owned by the caller), or NULL. */
static cJSON *sim_card(const char *ref)
{
    cJSON *all = sim_ctl(&S, "GET", "/_sim/cards", NULL), *hit = NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, all)
    {
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c, "id")), ref) ||
            !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c, "shortLink")), ref))
            hit = cJSON_Duplicate(c, 1);
    }
    cJSON_Delete(all);
    return hit;
}

static const char *cstr(const cJSON *o, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(o, name));
}

static int sim_card_count(void)
{
    cJSON *all = sim_ctl(&S, "GET", "/_sim/cards", NULL);
    int n = cJSON_GetArraySize(all);
    cJSON_Delete(all);
    return n;
}

/* Seeds cards given as a JSON array; returns the seed answer (owned by the caller). */
static cJSON *seed(const char *cards_json)
{
    return sim_ctl(&S, "POST", "/_sim/seed", "{\"cards\":%s}", cards_json);
}

static const char *seeded_id(const cJSON *answer, int i)
{
    return cstr(cJSON_GetArrayItem(cJSON_GetObjectItem(answer, "cards"), i), "id");
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

static const struct record *find_id(const struct record_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (str_eq(l->v[i].id, id))
            return &l->v[i];
    return NULL;
}

static const char *field_str(const struct record *r, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(r->fields, name));
}

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
    assert_int_equal(f->ops->write(f->c, op, 1, &f->err), CB_OK);
    op->fields = NULL;
    cJSON_Delete(fields);
    return op->st;
}

/* Creates a card through the connector; returns its id (static buffer). */
static const char *create_card(struct fx *f, const char *fields_json, const char *marker)
{
    static char id[32];
    struct write_op op;
    enum cb_status st = write_one(f, &op, NULL, fields_json, marker);
    if (st != CB_OK)
        fprintf(stderr, "create failed: %s\n", op.err.buf);
    assert_int_equal(st, CB_OK);
    snprintf(id, sizeof(id), "%s", op.rec.id);
    write_op_release(&op);
    return id;
}

/* Log entries for path (exact) whose query contains needle (NULL = any). */
static int log_count(const char *method, const char *path, const char *needle)
{
    cJSON *log = sim_ctl(&S, "GET", "/_sim/log", NULL);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, log)
    {
        const char *q = cstr(e, "query");
        n += (!method || !strcmp(cstr(e, "method"), method)) && !strcmp(cstr(e, "path"), path) &&
             (!needle || (q && strstr(q, needle)));
    }
    cJSON_Delete(log);
    return n;
}

/* "/1/boards/<board><suffix>" into buf. */
static void board_path(char *buf, size_t n, const char *board, const char *suffix)
{
    snprintf(buf, n, "/1/boards/%s%s", board, suffix);
}

/* --- tests ------------------------------------------------------------------------------- */

static void test_check_config_reports_every_problem(void **state)
{
    (void)state;
    const char *text = "endpoints = {\n"
                       "  crm = { type = \"zoho\"; };\n"
                       "  tracker = {\n"
                       "    type = \"trello\";\n"
                       "    api_url = \"ftp://api.trello.com\";\n"
                       "    tokn = \"x\";\n"
                       "    auth = \"cookie\";\n"
                       "  };\n"
                       "};\n"
                       "pairs = ( { name = \"p\"; crm = { endpoint = \"crm\"; };\n"
                       "  tracker = { endpoint = \"tracker\";\n"
                       "    board = \"My Board\"; list = \"\"; }; } );\n";
    struct config *cfg = NULL;
    struct strbuf err = STRBUF_INIT;
    assert_int_equal(config_load_string(text, "bad.conf", &cfg, &err), CB_OK);
    const struct connector_ops *ops = connector_find("trello");
    const struct pair_conf *p = config_pair(cfg, "p");
    assert_int_equal(
        ops->check_config(config_endpoint(cfg, "tracker"), &p->side[SIDE_TRACKER], &err),
        CB_ERR_CONFIG);
    assert_non_null(strstr(err.buf, "bad.conf:3: trello endpoint is missing 'key'"));
    assert_non_null(strstr(err.buf, "bad.conf:3: trello endpoint is missing 'token'"));
    assert_non_null(strstr(err.buf, "bad.conf:6: unknown trello endpoint setting 'tokn'"));
    assert_non_null(strstr(err.buf, "bad.conf:5: trello 'api_url' must start with https://"));
    assert_non_null(strstr(err.buf, "bad.conf:7: trello 'auth' must be"));
    assert_non_null(strstr(err.buf, "bad.conf:12: trello 'board' must be a board id"));
    assert_non_null(strstr(err.buf, "bad.conf:12: trello 'list' must name a list"));
    config_free(cfg);
    strbuf_release(&err);
}

static void test_auth_header_and_query(void **state)
{
    struct fx *f = *state;
    struct strbuf info = STRBUF_INIT;
    /* default: the OAuth header, so the token never sits in a URL */
    sim_clear_log(&S);
    assert_int_equal(f->ops->ping(f->c, &info, &f->err), CB_OK);
    assert_non_null(strstr(info.buf, "'Delivery'"));
    assert_non_null(strstr(info.buf, "To Do, Doing, Done"));
    assert_non_null(strstr(info.buf, "new cards go to 'To Do'"));
    char path[128];
    board_path(path, sizeof(path), f->board, "");
    assert_int_equal(log_count("GET", path, NULL), 1);
    assert_int_equal(log_count("GET", path, "token="), 0);
    /* the query form works too */
    fx_reopen(f, config_text(TOKEN, FAST "auth = \"query\";\n", f->board, NULL));
    sim_clear_log(&S);
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    assert_int_equal(log_count("GET", path, "token=" TOKEN), 1);
    strbuf_release(&info);
}

static void test_bad_token_is_auth_error_without_secrets(void **state)
{
    struct fx *f = *state;
    static const char *const modes[] = {"", "auth = \"query\";\n"};
    for (int i = 0; i < 2; i++) {
        char ep[128];
        snprintf(ep, sizeof(ep), FAST "%s", modes[i]);
        fx_reopen(f, config_text("ATTAnot-the-token-1234567890", ep, f->board, NULL));
        assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_ERR_AUTH);
        assert_non_null(strstr(f->err.buf, "trello rejected the key or token"));
        assert_non_null(strstr(f->err.buf, "'invalid token'"));
        assert_null(strstr(f->err.buf, "not-the-token"));
        assert_null(strstr(f->err.buf, KEY));
    }
    /* a token only works with the key that authorised it */
    fx_reopen(f, config_text(TOKEN2, FAST, f->board, NULL));
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_ERR_AUTH);
    assert_null(strstr(f->err.buf, TOKEN2));
    /* a failing transport names the host, never the credentials in the query */
    fx_reopen(f, config_text(TOKEN, FAST "auth = \"query\";\n", f->board, NULL));
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/faults",
                         "{\"rules\":[{\"path\":\"/1/.*\",\"kind\":\"reset\",\"count\":-1}]}"));
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_ERR_TEMP);
    assert_non_null(strstr(f->err.buf, "cannot read trello board"));
    assert_null(strstr(f->err.buf, TOKEN));
    assert_null(strstr(f->err.buf, KEY));
    cJSON_Delete(sim_call(&S, "DELETE", "/_sim/faults", NULL, NULL));
}

static void test_lists_by_name(void **state)
{
    struct fx *f = *state;
    /* the Chinese board by its short link, new cards into a named list (any case) */
    fx_reopen(f, config_text(TOKEN, FAST, f->board_cn_short, "list = \"进行中\";\n"));
    struct strbuf info = STRBUF_INIT;
    assert_int_equal(f->ops->ping(f->c, &info, &f->err), CB_OK);
    assert_non_null(strstr(info.buf, "待办, 进行中, 已完成"));
    const char *id = create_card(f, "{\"name\":\"导出乱码\"}", "m-cn");
    cJSON *card = sim_card(id);
    assert_string_equal(cstr(card, "listName"), "进行中");
    cJSON_Delete(card);
    struct write_op op;
    assert_int_equal(write_one(f, &op, id, "{\"list\":\"已完成\"}", NULL), CB_OK);
    assert_string_equal(field_str(&op.rec, "list"), "已完成");
    write_op_release(&op);
    /* a list the board lacks is a config error at ping, naming the lists it has */
    fx_reopen(f, config_text(TOKEN, FAST, f->board, "list = \"inbox\";\n"));
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_ERR_CONFIG);
    assert_non_null(strstr(f->err.buf, "has no list 'inbox' (it has: To Do, Doing, Done)"));
    fx_reopen(f, config_text(TOKEN, FAST, f->board, "list = \"doing\";\n"));
    assert_int_equal(f->ops->ping(f->c, &info, &f->err), CB_OK);
    assert_non_null(strstr(info.buf, "new cards go to 'Doing'"));
    /* a board that is not there */
    fx_reopen(f, config_text(TOKEN, FAST, "0123456789abcdef01234567", NULL));
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_ERR_CONFIG);
    assert_non_null(strstr(f->err.buf, "does not exist"));
    strbuf_release(&info);
}

static void test_first_run_reads_snapshot(void **state)
{
    struct fx *f = *state;
    cJSON *s = seed("[{\"name\":\"Export\",\"desc\":\"Steps:\\n\\n+ one\\n+ two\\n\","
                    "\"list\":\"Doing\",\"labels\":[\"bug\",\"urgent\"],\"due\":\"2026-12-24\"},"
                    "{\"name\":\"Old one\",\"list\":\"Done\",\"closed\":true},"
                    "{\"name\":\"Plain\"}]");
    sim_clear_log(&S);
    struct collected got = {0};
    assert_int_equal(f->ops->list_changed(f->c, 0, collect, &got, &f->err), CB_OK);
    assert_int_equal(got.recs.n, 3);
    char path[128];
    board_path(path, sizeof(path), f->board, "/cards/all");
    assert_int_equal(log_count("GET", path, NULL), 1);
    board_path(path, sizeof(path), f->board, "/actions");
    assert_int_equal(log_count("GET", path, NULL), 0);
    const struct record *r = find_id(&got.recs, seeded_id(s, 0));
    assert_non_null(r);
    assert_string_equal(field_str(r, "name"), "Export");
    assert_string_equal(field_str(r, "list"), "Doing");
    assert_string_equal(field_str(r, "due"), "2026-12-24");
    assert_string_equal(field_str(r, "desc"), "Steps:\n\n* one\n* two");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r->fields, "labels")), 2);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(r->fields, "closed")));
    assert_null(r->marker);
    assert_int_equal(strlen(r->key), 8);
    assert_non_null(strstr(r->url, "https://trello.com/c/"));
    assert_true(r->modified_ms > 0);
    r = find_id(&got.recs, seeded_id(s, 1));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r->fields, "closed")));
    r = find_id(&got.recs, seeded_id(s, 2));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(r->fields, "desc")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(r->fields, "due")));
    for (size_t i = 1; i < got.recs.n; i++)
        assert_true(got.recs.v[i - 1].modified_ms <= got.recs.v[i].modified_ms);
    record_list_release(&got.recs);
    cJSON_Delete(s);
}

static void test_feed_pages_past_one_page(void **state)
{
    struct fx *f = *state;
    cJSON_Delete(seed("[{\"name\":\"before the cursor\"}]"));
    advance(5000);
    int64_t since = sim_now();
    advance(1000);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/seed", "{\"count\":1200,\"list\":\"To Do\"}"));
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    sim_clear_log(&S);
    struct collected got = {0};
    assert_int_equal(f->ops->list_changed(f->c, since, collect, &got, &f->err), CB_OK);
    assert_int_equal(got.recs.n, 1200);
    char path[128];
    board_path(path, sizeof(path), f->board, "/actions");
    /* 1,200 createCard actions: a full page of 1,000, then one walking back with before= */
    assert_int_equal(log_count("GET", path, "limit=1000"), 2);
    assert_int_equal(log_count("GET", path, "before="), 1);
    assert_int_equal(log_count("GET", path, "since=20"), 2);
    /* many changed cards come from one snapshot rather than 1,200 reads */
    board_path(path, sizeof(path), f->board, "/cards/all");
    assert_int_equal(log_count("GET", path, NULL), 1);
    assert_int_equal(sim_count(&S, NULL, NULL), 3);
    record_list_release(&got.recs);

    /* a person moves one card and comments on another: one feed page, two card reads */
    cJSON *all = sim_ctl(&S, "GET", "/_sim/cards", NULL);
    const char *a = cstr(cJSON_GetArrayItem(all, 10), "id");
    const char *b = cstr(cJSON_GetArrayItem(all, 20), "id");
    advance(3000);
    since = sim_now();
    advance(1000);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/edit", "{\"card\":\"%s\",\"list\":\"Done\"}", a));
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/edit", "{\"card\":\"%s\",\"comment\":\"ok\"}", b));
    sim_clear_log(&S);
    memset(&got, 0, sizeof(got));
    assert_int_equal(f->ops->list_changed(f->c, since, collect, &got, &f->err), CB_OK);
    assert_int_equal(got.recs.n, 2);
    assert_string_equal(field_str(find_id(&got.recs, a), "list"), "Done");
    assert_non_null(find_id(&got.recs, b));
    assert_int_equal(sim_count(&S, "GET", "/1/cards/"), 2);
    assert_int_equal(sim_count(&S, NULL, NULL), 3);
    record_list_release(&got.recs);
    cJSON_Delete(all);
}

/* A listing over the window into collected (cleared first) after clearing the request log. */
static void list_since(struct fx *f, int64_t since, struct collected *got)
{
    record_list_release(&got->recs);
    memset(got, 0, sizeof(*got));
    sim_clear_log(&S);
    assert_int_equal(f->ops->list_changed(f->c, since, collect, got, &f->err), CB_OK);
}

static int card_reads(const char *id)
{
    char path[64];
    snprintf(path, sizeof(path), "/1/cards/%s", id);
    return log_count("GET", path, NULL);
}

/* A woken cycle reads only the cards someone acted on since the last listing; the others of the
 * window come again as that listing read them (the engine may need them again). */
static void test_second_listing_reads_only_what_is_new(void **state)
{
    struct fx *f = *state;
    advance(1000);
    int64_t since = sim_now();
    cJSON *s = seed("[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}]");
    const char *a = seeded_id(s, 0), *b = seeded_id(s, 1), *c = seeded_id(s, 2);
    struct collected got = {0};
    list_since(f, since, &got);
    assert_int_equal(got.recs.n, 3);
    assert_int_equal(sim_count(&S, "GET", "/1/cards/"), 3);

    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/edit",
                         "{\"card\":\"%s\",\"fields\":{\"name\":\"b by Mia\"}}", b));
    list_since(f, since, &got);
    assert_int_equal(got.recs.n, 3);
    assert_string_equal(field_str(find_id(&got.recs, b), "name"), "b by Mia");
    assert_string_equal(field_str(find_id(&got.recs, a), "name"), "a");
    assert_int_equal(card_reads(b), 1);
    assert_int_equal(card_reads(a) + card_reads(c), 0);
    assert_int_equal(sim_count(&S, NULL, NULL), 2); /* the feed and b */

    list_since(f, since, &got); /* nothing new: the feed alone */
    assert_int_equal(got.recs.n, 3);
    assert_int_equal(sim_count(&S, NULL, NULL), 1);
    record_list_release(&got.recs);
    cJSON_Delete(s);
}

/* The echo of this connector's own write costs no read (the write's answer stands for it); a
 * person's edit after it is read, and so is a card our member changed through another pair or
 * process (the feed cannot tell it from a write this listing has not seen). */
static void test_own_echo_reads_no_card(void **state)
{
    struct fx *f = *state;
    advance(1000);
    int64_t since = sim_now();
    cJSON *s = seed("[{\"name\":\"a\"},{\"name\":\"b\"}]");
    const char *a = seeded_id(s, 0), *b = seeded_id(s, 1);
    struct collected got = {0};
    list_since(f, since, &got);
    struct write_op op;
    assert_int_equal(write_one(f, &op, a, "{\"name\":\"a by crmbridge\"}", NULL), CB_OK);
    write_op_release(&op);
    list_since(f, since, &got);
    assert_int_equal(sim_count(&S, "GET", "/1/cards/"), 0);
    assert_string_equal(field_str(find_id(&got.recs, a), "name"), "a by crmbridge");
    assert_int_equal(got.recs.n, 2);

    struct comment_op cop = {.body = "copied from the CRM", .marker = "m-1"};
    assert_int_equal(f->ops->write_comment(f->c, a, &cop, &f->err), CB_OK);
    comment_op_release(&cop);
    list_since(f, since, &got);
    assert_int_equal(sim_count(&S, "GET", "/1/cards/"), 0);
    assert_non_null(find_id(&got.recs, a));

    /* an echo never hides a person's edit of the same card */
    assert_int_equal(write_one(f, &op, b, "{\"name\":\"b by crmbridge\"}", NULL), CB_OK);
    write_op_release(&op);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/edit",
                         "{\"card\":\"%s\",\"fields\":{\"desc\":\"Mia's note\"}}", b));
    list_since(f, since, &got);
    assert_int_equal(card_reads(b), 1);
    assert_int_equal(card_reads(a), 0);
    assert_string_equal(field_str(find_id(&got.recs, b), "desc"), "Mia's note");
    assert_string_equal(field_str(find_id(&got.recs, b), "name"), "b by crmbridge");

    /* our member, but not this connector: read */
    cJSON *other = seed("[{\"name\":\"another pair's\",\"user\":\"bot\"}]");
    list_since(f, since, &got);
    assert_int_equal(card_reads(seeded_id(other, 0)), 1);
    assert_int_equal(card_reads(a) + card_reads(b), 0);
    assert_int_equal(got.recs.n, 3);
    record_list_release(&got.recs);
    cJSON_Delete(other);
    cJSON_Delete(s);
}

/* Cards the pacer cannot let through at once come from one snapshot instead of waiting. */
static void test_reads_past_the_burst_take_a_snapshot(void **state)
{
    struct fx *f = *state;
    fx_reopen(f, config_text(TOKEN, NULL, f->board, NULL)); /* burst of 5 */
    advance(1000);
    int64_t since = sim_now();
    cJSON *s = seed("[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"},"
                    "{\"name\":\"d\"},{\"name\":\"e\"},{\"name\":\"f\"}]");
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    struct collected got = {0};
    list_since(f, since, &got);
    assert_int_equal(got.recs.n, 6);
    char path[128];
    board_path(path, sizeof(path), f->board, "/cards/all");
    assert_int_equal(log_count("GET", path, NULL), 1);
    assert_int_equal(sim_count(&S, "GET", "/1/cards/"), 0);
    record_list_release(&got.recs);
    cJSON_Delete(s);
}

static void test_create_with_marker_and_lost_response(void **state)
{
    struct fx *f = *state;
    int64_t t0 = cbtime_now_ms();
    struct write_op op;
    assert_int_equal(write_one(f, &op, NULL,
                               "{\"name\":\"Export to CSV\",\"desc\":\"Please add it.\","
                               "\"list\":\"doing\",\"due\":\"2026-03-01\","
                               "\"labels\":[\"bug\",\"customer-x\"]}",
                               "m-123"),
                     CB_OK);
    assert_int_equal(strlen(op.rec.key), 8);
    assert_non_null(strstr(op.rec.url, op.rec.key));
    assert_string_equal(op.rec.marker, "m-123");
    cJSON *card = sim_card(op.rec.id);
    assert_string_equal(cstr(card, "listName"), "Doing");
    assert_string_equal(cstr(card, "desc"), "Please add it.\n\n[//]: # (crmbridge:m-123)");
    assert_string_equal(cstr(card, "due"), "2026-03-01T12:00:00.000Z");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(card, "labelNames")), 2);
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItem(card, "attachments"), 0)->valuestring,
        "https://crm.example/cases/42");
    cJSON_Delete(card);
    /* the marker never shows in the description field the mapping sees */
    struct record r;
    assert_int_equal(f->ops->find_marker(f->c, "m-123", t0, &r, &f->err), CB_OK);
    assert_string_equal(r.id, op.rec.id);
    assert_string_equal(field_str(&r, "desc"), "Please add it.");
    assert_string_equal(field_str(&r, "list"), "Doing");
    record_release(&r);
    write_op_release(&op);
    assert_int_equal(f->ops->find_marker(f->c, "m-999", t0, &r, &f->err), CB_ERR_NOTFOUND);
    assert_non_null(strstr(f->err.buf, "'m-999'"));

    /* the create lands but its answer is lost: not retried, found by its marker */
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"POST\",\"path\":\"/1/cards\","
                         "\"kind\":\"drop_response\"}]}"));
    sim_clear_log(&S);
    assert_int_not_equal(write_one(f, &op, NULL, "{\"name\":\"once only\"}", "m-drop"), CB_OK);
    assert_true(op.err.len > 0);
    write_op_release(&op);
    assert_int_equal(sim_count(&S, "POST", "/1/cards"), 1);
    assert_int_equal(sim_card_count(), 2);
    assert_int_equal(f->ops->find_marker(f->c, "m-drop", t0, &r, &f->err), CB_OK);
    assert_string_equal(field_str(&r, "name"), "once only");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(r.fields, "desc")));
    record_release(&r);
    /* a marker older than the intent (beyond the hour allowed for clock skew) does not count */
    assert_int_equal(f->ops->find_marker(f->c, "m-drop", t0 + 2 * 3600 * 1000, &r, &f->err),
                     CB_ERR_NOTFOUND);
}

static void test_update_move_archive(void **state)
{
    struct fx *f = *state;
    char id[32];
    snprintf(id, sizeof(id), "%s",
             create_card(f, "{\"name\":\"first\",\"desc\":\"keep\"}", "m-up"));
    /* a new description keeps the marker; only the given fields change */
    sim_clear_log(&S);
    struct write_op op;
    assert_int_equal(write_one(f, &op, id, "{\"desc\":\"*new* text\",\"list\":\"Done\"}", NULL),
                     CB_OK);
    assert_int_equal(sim_count(&S, NULL, NULL), 1);
    assert_string_equal(field_str(&op.rec, "desc"), "*new* text");
    assert_string_equal(op.rec.marker, "m-up");
    assert_true(op.rec.modified_ms > 0);
    write_op_release(&op);
    cJSON *card = sim_card(id);
    assert_string_equal(cstr(card, "desc"), "*new* text\n\n[//]: # (crmbridge:m-up)");
    assert_string_equal(cstr(card, "listName"), "Done");
    assert_string_equal(cstr(card, "name"), "first");
    cJSON_Delete(card);
    /* a list the board lacks fails that op, naming the lists */
    assert_int_equal(write_one(f, &op, id, "{\"list\":\"Waiting\"}", NULL), CB_ERR_FINAL);
    assert_non_null(strstr(op.err.buf, "has no list 'Waiting' (it has: To Do, Doing, Done)"));
    write_op_release(&op);
    assert_int_equal(write_one(f, &op, id, "{\"colour\":\"red\"}", NULL), CB_ERR_FINAL);
    assert_non_null(strstr(op.err.buf, "'colour'"));
    write_op_release(&op);
    /* archive: still listed (closed) rather than gone */
    assert_int_equal(write_one(f, &op, id, "{\"closed\":true,\"due\":null}", NULL), CB_OK);
    write_op_release(&op);
    struct collected got = {0};
    assert_int_equal(f->ops->list_changed(f->c, 0, collect, &got, &f->err), CB_OK);
    assert_int_equal(got.recs.n, 1);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(got.recs.v[0].fields, "closed")));
    record_list_release(&got.recs);
    /* reads: a malformed id is Trello's plain-text 400; a deleted card is simply missing */
    const char *ids[] = {id, "not-an-id"};
    struct record_list out = {0};
    assert_int_equal(f->ops->get_many(f->c, ids, 2, &out, &f->err), CB_ERR_FINAL);
    assert_non_null(strstr(f->err.buf, "'invalid id'"));
    record_list_release(&out);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/edit", "{\"card\":\"%s\",\"delete\":true}", id));
    memset(&out, 0, sizeof(out));
    assert_int_equal(f->ops->get_many(f->c, ids, 1, &out, &f->err), CB_OK);
    assert_int_equal(out.n, 0);
    record_list_release(&out);
}

/* --- people ------------------------------------------------------------------------------- */

/* The member of a directory with that full name (the first when several share it). */
static const struct person *member_named(const struct person_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].name, name))
            return &l->v[i];
    return NULL;
}

/* The connector reopened asking for the pseudo field "member". */
static void reopen_with_member(struct fx *f)
{
    open_fields = member_fields;
    fx_reopen(f, config_text(TOKEN, FAST, f->board, NULL));
}

static void test_list_users_is_the_board_members(void **state)
{
    struct fx *f = *state;
    cJSON *added = sim_ctl(&S, "POST", "/_sim/users", "{\"fullName\":\"王芳\"}");
    cJSON *outsider = sim_ctl(&S, "POST", "/_sim/users",
                              "{\"fullName\":\"Elsewhere Only\",\"board\":\"%s\"}", f->board_cn);
    assert_true(f->ops->person_field(f->c, "member"));
    assert_false(f->ops->person_field(f->c, "name"));
    sim_clear_log(&S);
    struct person_list dir = {0};
    assert_int_equal(f->ops->list_users(f->c, &dir, &f->err), CB_OK);
    char path[128];
    board_path(path, sizeof(path), f->board, "/members");
    assert_int_equal(log_count("GET", path, "fields=fullName"), 1);
    const struct person *wang = member_named(&dir, "王芳");
    assert_non_null(wang);
    assert_string_equal(wang->id, cstr(added, "id"));
    assert_non_null(member_named(&dir, "李伟"));
    assert_null(member_named(&dir, "Elsewhere Only")); /* a member of another board only */
    int alex = 0;
    for (size_t i = 0; i < dir.n; i++) {
        assert_null(dir.v[i].email); /* Trello shows no other member's e-mail */
        alex += !strcmp(dir.v[i].name, "Alex Chen");
        for (size_t j = i + 1; j < dir.n; j++)
            assert_string_not_equal(dir.v[i].id, dir.v[j].id);
    }
    assert_int_equal(alex, 2);
    person_list_release(&dir);
    cJSON_Delete(outsider);
    cJSON_Delete(added);
}

static void test_member_reads_as_person(void **state)
{
    struct fx *f = *state;
    reopen_with_member(f);
    cJSON *s = seed("[{\"name\":\"with\",\"members\":[\"李伟\",\"Mia Krystof\"]},"
                    "{\"name\":\"without\"}]");
    struct collected got = {0};
    assert_int_equal(f->ops->list_changed(f->c, 0, collect, &got, &f->err), CB_OK);
    cJSON *card = sim_card(seeded_id(s, 0));
    const cJSON *m = cJSON_GetObjectItem(find_id(&got.recs, seeded_id(s, 0))->fields, "member");
    assert_string_equal(cstr(m, "id"),
                        cJSON_GetArrayItem(cJSON_GetObjectItem(card, "idMembers"), 0)->valuestring);
    assert_string_equal(cstr(m, "name"), "李伟");
    assert_null(cJSON_GetObjectItem(m, "email"));
    m = cJSON_GetObjectItem(find_id(&got.recs, seeded_id(s, 1))->fields, "member");
    assert_true(cJSON_IsNull(m));
    record_list_release(&got.recs);
    cJSON_Delete(card);
    cJSON_Delete(s);
}

static void test_member_write_sets_refuses_and_clears(void **state)
{
    struct fx *f = *state;
    reopen_with_member(f);
    struct person_list dir = {0};
    assert_int_equal(f->ops->list_users(f->c, &dir, &f->err), CB_OK);
    const char *mia = member_named(&dir, "Mia Krystof")->id;
    cJSON *other = sim_ctl(&S, "POST", "/_sim/users",
                           "{\"fullName\":\"Not Here\",\"board\":\"%s\"}", f->board_cn);
    char a[32], b[32], fields[160];
    snprintf(fields, sizeof(fields), "{\"name\":\"assigned\",\"member\":\"%s\"}", mia);
    snprintf(a, sizeof(a), "%s", create_card(f, fields, "m-a"));
    snprintf(b, sizeof(b), "%s", create_card(f, "{\"name\":\"other\"}", "m-b"));
    cJSON *card = sim_card(a);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(card, "idMembers"), 0)->valuestring,
                        mia);
    cJSON_Delete(card);
    /* a batch: the board's stranger fails its own op only, naming the member and the board */
    struct write_op ops[2];
    cJSON *bad = cJSON_CreateObject(), *good = cJSON_CreateObject();
    cJSON_AddStringToObject(bad, "member", cstr(other, "id"));
    cJSON_AddStringToObject(good, "member", member_named(&dir, "李伟")->id);
    write_op_init(&ops[0]);
    write_op_init(&ops[1]);
    ops[0].id = a;
    ops[0].fields = bad;
    ops[1].id = b;
    ops[1].fields = good;
    assert_int_equal(f->ops->write(f->c, ops, 2, &f->err), CB_OK);
    assert_int_equal(ops[0].st, CB_ERR_FINAL);
    snprintf(fields, sizeof(fields), "member '%s' is not a member of trello board 'Delivery'",
             cstr(other, "id"));
    assert_non_null(strstr(ops[0].err.buf, fields));
    assert_int_equal(ops[1].st, CB_OK);
    const cJSON *m = cJSON_GetObjectItem(ops[1].rec.fields, "member");
    assert_string_equal(cstr(m, "name"), "李伟");
    /* null takes every member off the card; the read-back says so */
    struct write_op op;
    assert_int_equal(write_one(f, &op, a, "{\"member\":null}", NULL), CB_OK);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(op.rec.fields, "member")));
    write_op_release(&op);
    card = sim_card(a);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(card, "idMembers")), 0);
    cJSON_Delete(card);
    for (int i = 0; i < 2; i++)
        write_op_release(&ops[i]);
    cJSON_Delete(bad);
    cJSON_Delete(good);
    cJSON_Delete(other);
    person_list_release(&dir);
}

/* A card with several members: a new "member" (the CRM's owner) replaces the first one only,
 * the others the card had when the cycle read it stay. */
static void test_member_write_keeps_the_other_members(void **state)
{
    struct fx *f = *state;
    reopen_with_member(f);
    struct person_list dir = {0};
    assert_int_equal(f->ops->list_users(f->c, &dir, &f->err), CB_OK);
    cJSON *s = seed("[{\"name\":\"team\",\"members\":[\"李伟\",\"Mia Krystof\"]}]");
    struct collected got = {0};
    assert_int_equal(f->ops->list_changed(f->c, 0, collect, &got, &f->err), CB_OK);
    const struct record *read = find_id(&got.recs, seeded_id(s, 0));
    assert_non_null(read);
    const char *wang = member_named(&dir, "Wang Fang")->id;
    cJSON *fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "member", wang);
    struct write_op op;
    write_op_init(&op);
    op.id = seeded_id(s, 0);
    op.fields = fields;
    op.current = read;
    assert_int_equal(f->ops->write(f->c, &op, 1, &f->err), CB_OK);
    assert_int_equal(op.st, CB_OK);
    assert_string_equal(cstr(cJSON_GetObjectItem(op.rec.fields, "member"), "name"), "Wang Fang");
    cJSON *card = sim_card(seeded_id(s, 0));
    const cJSON *ids = cJSON_GetObjectItem(card, "idMembers");
    assert_int_equal(cJSON_GetArraySize(ids), 2);
    assert_string_equal(cJSON_GetArrayItem(ids, 0)->valuestring, wang);
    assert_string_equal(cJSON_GetArrayItem(ids, 1)->valuestring,
                        member_named(&dir, "Mia Krystof")->id);
    cJSON_Delete(card);
    write_op_release(&op);
    cJSON_Delete(fields);
    record_list_release(&got.recs);
    person_list_release(&dir);
    cJSON_Delete(s);
}

/* A person adding a member in the web UI is a change the feed reports. */
static void test_member_change_is_in_the_feed(void **state)
{
    struct fx *f = *state;
    reopen_with_member(f);
    cJSON *s = seed("[{\"name\":\"quiet\"}]");
    struct collected got = {0};
    assert_int_equal(f->ops->list_changed(f->c, 0, collect, &got, &f->err), CB_OK);
    record_list_release(&got.recs);
    advance(60000);
    int64_t since = sim_now();
    advance(1000);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/edit",
                         "{\"card\":\"%s\",\"fields\":{\"members\":[\"Wang Fang\"]}}",
                         seeded_id(s, 0)));
    memset(&got, 0, sizeof(got));
    assert_int_equal(f->ops->list_changed(f->c, since, collect, &got, &f->err), CB_OK);
    const struct record *r = find_id(&got.recs, seeded_id(s, 0));
    assert_non_null(r);
    assert_string_equal(cstr(cJSON_GetObjectItem(r->fields, "member"), "name"), "Wang Fang");
    record_list_release(&got.recs);
    cJSON_Delete(s);
}

/* Real limits on both ends: 250 requests in a burst must not meet a single 429. */
static void test_pacing_keeps_a_burst_clear_of_429(void **state)
{
    struct fx *f = *state;
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/config", "{\"token_limit\":100,\"key_limit\":300}"));
    fx_reopen(f, config_text(TOKEN, NULL, f->board, NULL));
    cJSON *s = seed("[{\"name\":\"a\"},{\"name\":\"b\"}]");
    const char *ids[] = {seeded_id(s, 0), seeded_id(s, 1)};
    sim_clear_log(&S);
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    for (int i = 0; i < 250; i++) { /* one id a call: more would be one snapshot */
        struct record_list out = {0};
        assert_int_equal(f->ops->get_many(f->c, ids + i % 2, 1, &out, &f->err), CB_OK);
        assert_int_equal(out.n, 1);
        record_list_release(&out);
    }
    assert_int_equal(sim_count(&S, NULL, NULL), 252); /* the ping: the board and "me" */
    assert_int_equal(sim_count_status(&S, 429), 0);
    cJSON_Delete(s);
}

/* Two connections with one token (a migration's) share its allowance: 40 reads between them
 * take as long as 40 through one connection (85 per 10 s after a burst of 5), not half. */
static void test_connections_share_the_token_pace(void **state)
{
    struct fx *f = *state, g = {0};
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/config", "{\"token_limit\":100,\"key_limit\":300}"));
    fx_reopen(f, config_text(TOKEN, NULL, f->board, NULL));
    fx_open_with(&g, config_text(TOKEN, NULL, f->board, NULL));
    cJSON *s = seed("[{\"name\":\"a\"}]");
    const char *ids[] = {seeded_id(s, 0)};
    struct fx *both[2] = {f, &g};
    for (int i = 0; i < 2; i++)
        assert_int_equal(both[i]->ops->ping(both[i]->c, NULL, &both[i]->err), CB_OK);
    int64_t t0 = cbtime_now_ms();
    for (int i = 0; i < 40; i++) {
        struct record_list out = {0};
        assert_int_equal(both[i % 2]->ops->get_many(both[i % 2]->c, ids, 1, &out, &f->err), CB_OK);
        record_list_release(&out);
    }
    assert_true(cbtime_now_ms() - t0 >= 3500); /* alone each would take under 2 s */
    assert_int_equal(sim_count_status(&S, 429), 0);
    fx_close(&g);
    cJSON_Delete(s);
}

/* Someone else spends the token's budget: the 429 (JSON, no headers) is waited out. */
static void test_shared_token_429_is_retried(void **state)
{
    struct fx *f = *state;
    assert_int_equal(f->ops->ping(f->c, NULL, &f->err), CB_OK);
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/config", "{\"token_limit\":5,\"window_ms\":100}"));
    char path[160];
    snprintf(path, sizeof(path), "/1/members/me?key=" KEY "&token=" TOKEN);
    for (int i = 0; i < 5; i++)
        cJSON_Delete(sim_call(&S, "GET", path, NULL, NULL));
    sim_clear_log(&S);
    struct collected got = {0};
    assert_int_equal(f->ops->list_changed(f->c, 0, collect, &got, &f->err), CB_OK);
    assert_true(sim_count_status(&S, 429) >= 1);
    record_list_release(&got.recs);
    /* a limit that outlasts the retries is "wait", in Trello's words */
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/config", "{\"window_ms\":60000}"));
    for (int i = 0; i < 5; i++)
        cJSON_Delete(sim_call(&S, "GET", path, NULL, NULL));
    assert_int_equal(f->ops->list_changed(f->c, 0, collect, &got, &f->err), CB_ERR_WAIT);
    assert_non_null(strstr(f->err.buf, "API_TOKEN_LIMIT_EXCEEDED"));
    assert_null(strstr(f->err.buf, TOKEN));
    record_list_release(&got.recs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_config_reports_every_problem),
        cmocka_unit_test_setup_teardown(test_auth_header_and_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_token_is_auth_error_without_secrets, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lists_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_run_reads_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feed_pages_past_one_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_listing_reads_only_what_is_new, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_own_echo_reads_no_card, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_past_the_burst_take_a_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_with_marker_and_lost_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_move_archive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_users_is_the_board_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_reads_as_person, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_write_sets_refuses_and_clears, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_write_keeps_the_other_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_change_is_in_the_feed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_token_429_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pacing_keeps_a_burst_clear_of_429, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_share_the_token_pace, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
