/*
 * Tests of the LMDB cache through cache.h: links and their index, base, cursors, intents,
 * conflicts, meta, the sticky error, durability across reopen and a crash, read isolation,
 * trimming the mapped pages, tokens at rest, the link counter (through writes, aborts and the
 * upgrade of a schema 1 cache) and long walks trimmed as they go. Raw LMDB is used only to fake
 * what a user could meet on disk (a newer or an older schema, a tampered or copied token blob),
 * always with the cache closed.
 */
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/cache.h"
#include "tests/unit/testutil.h"

struct fx {
    char *dir;
    struct cache *c;
};

static struct cache *open_ok(const char *dir)
{
    struct cache *c = NULL;
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = cache_open(dir, &c, &err);
    if (st != CB_OK)
        fail_msg("cache_open: %s", err.buf);
    strbuf_release(&err);
    return c;
}

static struct cache_txn *begin(struct cache *c, int rdonly)
{
    struct cache_txn *t = NULL;
    struct strbuf err = STRBUF_INIT;
    assert_int_equal(cache_txn_begin(c, rdonly, &t, &err), CB_OK);
    strbuf_release(&err);
    return t;
}

static void commit_ok(struct cache_txn *t)
{
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = cache_txn_commit(t, &err);
    if (st != CB_OK)
        fail_msg("commit: %s", err.buf);
    strbuf_release(&err);
}

/* Commits and returns the status; the message goes to msg. */
static enum cb_status commit_msg(struct cache_txn *t, struct strbuf *msg)
{
    return cache_txn_commit(t, msg);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->c = open_ok(f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cache_close(f->c);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void reopen(struct fx *f)
{
    cache_close(f->c);
    f->c = open_ok(f->dir);
}

static uint64_t put_link(struct cache_txn *t, const char *pair, const char *crm, const char *trk)
{
    struct link l = {.remote = {(char *)crm, (char *)trk},
                     .key = {NULL, (char *)"SUP-1"},
                     .created_ms = 1700000000123};
    assert_int_equal(cache_link_put(t, pair, &l), CB_OK);
    assert_true(l.id > 0);
    return l.id;
}

/* ---- links ---- */

struct walk {
    uint64_t ids[8];
    size_t n;
    size_t stop_after;
};

static int walk_fn(void *arg, const struct link *l)
{
    struct walk *w = arg;
    w->ids[w->n++] = l->id;
    return w->n == w->stop_after;
}

static void test_links(void **state)
{
    struct fx *f = *state;
    struct cache_txn *t = begin(f->c, 0);
    uint64_t a = put_link(t, "p", "zoho-1", "SUP-1");
    uint64_t b = put_link(t, "p", "zoho-2", "SUP-2");
    put_link(t, "p2", "zoho-1", "T-9"); /* same remote id in another pair is independent */
    cJSON *item = cJSON_Parse("{\"title\":\"x\"}");
    assert_int_equal(cache_base_put(t, "p", a, item), CB_OK);
    cJSON_Delete(item);
    commit_ok(t);
    assert_true(b > a);

    t = begin(f->c, 1);
    struct link l;
    assert_int_equal(cache_link_find(t, "p", 0, "zoho-2", &l), CB_OK);
    assert_int_equal(l.id, b);
    assert_string_equal(l.remote[1], "SUP-2");
    assert_string_equal(l.key[1], "SUP-1");
    assert_null(l.key[0]);
    assert_null(l.url[0]);
    assert_int_equal(l.created_ms, 1700000000123);
    link_release(&l);
    assert_int_equal(cache_link_find(t, "p", 1, "SUP-1", &l), CB_OK);
    assert_int_equal(l.id, a);
    assert_string_equal(l.remote[0], "zoho-1");
    link_release(&l);
    assert_int_equal(cache_link_find(t, "p", 1, "zoho-1", &l), CB_ERR_NOTFOUND);
    assert_int_equal(cache_link_get(t, "p", b, &l), CB_OK);
    assert_string_equal(l.remote[0], "zoho-2");
    link_release(&l);
    assert_int_equal(cache_link_count(t, "p"), 2);
    assert_int_equal(cache_link_count(t, "p2"), 1);
    struct walk w = {.stop_after = 0};
    assert_int_equal(cache_link_foreach(t, "p", walk_fn, &w), CB_OK);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.ids[0], a);
    assert_int_equal(w.ids[1], b);
    struct walk w1 = {.stop_after = 1};
    assert_int_equal(cache_link_foreach(t, "p", walk_fn, &w1), CB_OK);
    assert_int_equal(w1.n, 1);
    commit_ok(t);

    t = begin(f->c, 0);
    assert_int_equal(cache_link_del(t, "p", a), CB_OK);
    assert_int_equal(cache_link_del(t, "p", a), CB_ERR_NOTFOUND);
    commit_ok(t);

    t = begin(f->c, 1);
    assert_int_equal(cache_link_find(t, "p", 0, "zoho-1", &l), CB_ERR_NOTFOUND);
    assert_int_equal(cache_link_find(t, "p", 1, "SUP-1", &l), CB_ERR_NOTFOUND);
    assert_int_equal(cache_link_get(t, "p", a, &l), CB_ERR_NOTFOUND);
    cJSON *base = NULL;
    assert_int_equal(cache_base_get(t, "p", a, &base), CB_ERR_NOTFOUND);
    assert_int_equal(cache_link_count(t, "p"), 1);
    assert_int_equal(cache_link_find(t, "p2", 0, "zoho-1", &l), CB_OK);
    link_release(&l);
    assert_int_equal(cache_txn_status(t), CB_OK);
    commit_ok(t);
}

static void test_link_update_and_duplicate(void **state)
{
    struct fx *f = *state;
    struct cache_txn *t = begin(f->c, 0);
    uint64_t a = put_link(t, "p", "z1", "J1");
    put_link(t, "p", "z2", "J2");
    /* The tracker record was moved: same link, new remote id; the old one is unindexed. */
    struct link l = {.id = a, .remote = {(char *)"z1", (char *)"J1-moved"}};
    assert_int_equal(cache_link_put(t, "p", &l), CB_OK);
    assert_int_equal(l.id, a);
    struct link got;
    assert_int_equal(cache_link_find(t, "p", 1, "J1", &got), CB_ERR_NOTFOUND);
    assert_int_equal(cache_link_find(t, "p", 1, "J1-moved", &got), CB_OK);
    assert_int_equal(got.id, a);
    link_release(&got);
    assert_int_equal(cache_link_count(t, "p"), 2);
    commit_ok(t);

    /* A second link for an already linked record is refused: that would be a duplicate. */
    t = begin(f->c, 0);
    struct link dup = {.remote = {(char *)"z3", (char *)"J2"}};
    assert_int_not_equal(cache_link_put(t, "p", &dup), CB_OK);
    assert_int_equal(dup.id, 0);
    struct strbuf msg = STRBUF_INIT;
    assert_int_not_equal(commit_msg(t, &msg), CB_OK);
    assert_non_null(strstr(msg.buf, "'J2'"));
    assert_non_null(strstr(msg.buf, "already in link"));
    strbuf_release(&msg);
    t = begin(f->c, 1);
    assert_int_equal(cache_link_find(t, "p", 0, "z3", &got), CB_ERR_NOTFOUND);
    commit_ok(t);
}

/* ---- base, cursors, meta ---- */

static void test_base_cursor_meta(void **state)
{
    struct fx *f = *state;
    const char *json = "{\"title\":\"Login fails\",\"labels\":[\"a\",\"b\"],"
                       "\"custom\":{\"n\":3,\"id\":\"12345678901234567890\"},\"due\":null}";
    struct cache_txn *t = begin(f->c, 0);
    struct cursor cu = {-1, -1};
    assert_int_equal(cache_cursor_get(t, "p", 0, &cu), CB_OK);
    assert_int_equal(cu.ms, 0);
    assert_int_equal(cu.listed_ms, 0);
    cJSON *item = cJSON_Parse(json);
    assert_int_equal(cache_base_put(t, "p", 7, item), CB_OK);
    assert_int_equal(cache_cursor_put(t, "p", 1, &(struct cursor){1700000000999, 1700000060000}),
                     CB_OK);
    cJSON *report = cJSON_Parse("{\"created\":2}");
    assert_int_equal(cache_meta_put(t, "p/last_cycle", report), CB_OK);
    commit_ok(t);

    t = begin(f->c, 1);
    cJSON *got = NULL;
    assert_int_equal(cache_base_get(t, "p", 7, &got), CB_OK);
    assert_true(cJSON_Compare(item, got, 1));
    cJSON_Delete(got);
    assert_int_equal(cache_base_get(t, "other", 7, &got), CB_ERR_NOTFOUND);
    assert_int_equal(cache_cursor_get(t, "p", 1, &cu), CB_OK);
    assert_int_equal(cu.ms, 1700000000999);
    assert_int_equal(cu.listed_ms, 1700000060000);
    assert_int_equal(cache_cursor_get(t, "p", 0, &cu), CB_OK);
    assert_int_equal(cu.ms, 0);
    assert_int_equal(cache_meta_get(t, "p/last_cycle", &got), CB_OK);
    assert_true(cJSON_Compare(report, got, 1));
    cJSON_Delete(got);
    assert_int_equal(cache_meta_get(t, "nothing", &got), CB_ERR_NOTFOUND);
    commit_ok(t);
    cJSON_Delete(item);

    /* The cache's own meta records cannot be overwritten by callers. */
    t = begin(f->c, 0);
    assert_int_not_equal(cache_meta_put(t, "schema_version", report), CB_OK);
    struct strbuf msg = STRBUF_INIT;
    assert_int_not_equal(commit_msg(t, &msg), CB_OK);
    assert_non_null(strstr(msg.buf, "reserved"));
    strbuf_release(&msg);
    cJSON_Delete(report);
}

/* ---- intents ---- */

static void test_intents(void **state)
{
    struct fx *f = *state;
    struct cache_txn *t = begin(f->c, 0);
    struct intent a = {.target = 1, .source_id = "z1", .marker = "cb:abc", .created_ms = 5};
    struct intent b = {.target = 0, .source_id = "J9", .marker = "cb:def", .created_ms = 6};
    struct intent other = {.target = 1, .source_id = "z1", .marker = "cb:x"};
    assert_int_equal(cache_intent_put(t, "p", &a), CB_OK);
    assert_int_equal(cache_intent_put(t, "p", &b), CB_OK);
    assert_int_equal(cache_intent_put(t, "q", &other), CB_OK);
    commit_ok(t);
    assert_true(a.id > 0 && b.id > a.id);

    t = begin(f->c, 1);
    struct intent *list = NULL;
    size_t n = 0;
    assert_int_equal(cache_intent_list(t, "p", &list, &n), CB_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, a.id);
    assert_int_equal(list[0].target, 1);
    assert_string_equal(list[0].source_id, "z1");
    assert_string_equal(list[0].marker, "cb:abc");
    assert_int_equal(list[0].created_ms, 5);
    assert_int_equal(list[1].id, b.id);
    assert_string_equal(list[1].marker, "cb:def");
    /* list appends */
    assert_int_equal(cache_intent_list(t, "q", &list, &n), CB_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[2].marker, "cb:x");
    for (size_t i = 0; i < n; i++)
        intent_release(&list[i]);
    free(list);
    commit_ok(t);

    t = begin(f->c, 0);
    assert_int_equal(cache_intent_del(t, "p", a.id), CB_OK);
    assert_int_equal(cache_intent_del(t, "p", a.id), CB_ERR_NOTFOUND);
    commit_ok(t);
    t = begin(f->c, 1);
    list = NULL;
    n = 0;
    assert_int_equal(cache_intent_list(t, "p", &list, &n), CB_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, b.id);
    intent_release(&list[0]);
    free(list);
    commit_ok(t);
}

/* ---- conflicts ---- */

static void test_conflicts(void **state)
{
    struct fx *f = *state;
    struct conflict s = {.pair = "p",
                         .link_id = 4,
                         .field = "status",
                         .base = cJSON_CreateString("new"),
                         .value = {cJSON_CreateString("waiting"), cJSON_CreateString("done")},
                         .who = {"alice", NULL},
                         .changed_ms = {10, 20},
                         .key = {"CASE-1", "SUP-4"},
                         .created_ms = 30};
    struct conflict d = {
        .pair = "p", .link_id = 4, .field = "due", .value = {cJSON_CreateNull(), NULL}};
    struct conflict o = {.pair = "other", .link_id = 4, .field = "status"};
    struct cache_txn *t = begin(f->c, 0);
    assert_int_equal(cache_conflict_put(t, &s), CB_OK);
    assert_int_equal(cache_conflict_put(t, &d), CB_OK);
    assert_int_equal(cache_conflict_put(t, &o), CB_OK);
    commit_ok(t);

    t = begin(f->c, 1);
    struct conflict g;
    assert_int_equal(cache_conflict_get(t, s.id, &g), CB_OK);
    assert_string_equal(g.pair, "p");
    assert_int_equal(g.link_id, 4);
    assert_string_equal(g.field, "status");
    assert_true(cJSON_Compare(g.base, s.base, 1));
    assert_true(cJSON_Compare(g.value[0], s.value[0], 1));
    assert_true(cJSON_Compare(g.value[1], s.value[1], 1));
    assert_string_equal(g.who[0], "alice");
    assert_null(g.who[1]);
    assert_int_equal(g.changed_ms[1], 20);
    assert_string_equal(g.key[1], "SUP-4");
    assert_int_equal(g.created_ms, 30);
    assert_int_equal(g.resolved, 0);
    assert_null(g.resolution);
    conflict_release(&g);
    /* a JSON null value and a missing value stay distinct */
    assert_int_equal(cache_conflict_get(t, d.id, &g), CB_OK);
    assert_true(cJSON_IsNull(g.value[0]));
    assert_null(g.value[1]);
    assert_null(g.base);
    conflict_release(&g);
    assert_int_equal(cache_conflict_find_open(t, "p", 4, "status", &g), CB_OK);
    assert_int_equal(g.id, s.id);
    conflict_release(&g);
    assert_int_equal(cache_conflict_find_open(t, "p", 5, "status", &g), CB_ERR_NOTFOUND);
    assert_int_equal(cache_conflict_find_open(t, "p", 4, "title", &g), CB_ERR_NOTFOUND);
    commit_ok(t);

    /* Resolve: the choice is stored and the conflict leaves the open queue. */
    t = begin(f->c, 0);
    s.resolved = 1;
    s.resolution = cJSON_CreateString("done");
    uint64_t id = s.id;
    assert_int_equal(cache_conflict_put(t, &s), CB_OK);
    assert_int_equal(s.id, id);
    commit_ok(t);

    t = begin(f->c, 1);
    assert_int_equal(cache_conflict_find_open(t, "p", 4, "status", &g), CB_ERR_NOTFOUND);
    struct conflict *list = NULL;
    size_t n = 0;
    assert_int_equal(cache_conflict_list(t, "p", 1, &list, &n), CB_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, d.id);
    assert_int_equal(cache_conflict_list(t, "p", 0, &list, &n), CB_OK);
    assert_int_equal(n, 3);
    assert_int_equal(list[1].id, s.id);
    assert_int_equal(list[1].resolved, 1);
    assert_string_equal(list[1].resolution->valuestring, "done");
    assert_int_equal(cache_conflict_list(t, NULL, 1, &list, &n), CB_OK);
    assert_int_equal(n, 5); /* d and o */
    assert_string_equal(list[4].pair, "other");
    for (size_t i = 0; i < n; i++)
        conflict_release(&list[i]);
    free(list);
    commit_ok(t);
    s.pair = d.pair = NULL;
    s.field = d.field = NULL;
    s.who[0] = NULL;
    s.key[0] = s.key[1] = NULL;
    conflict_release(&s);
    conflict_release(&d);
}

/* ---- sticky error ---- */

static void test_sticky_error(void **state)
{
    struct fx *f = *state;
    char longpair[600];
    memset(longpair, 'x', sizeof(longpair) - 1);
    longpair[sizeof(longpair) - 1] = '\0';
    struct cache_txn *t = begin(f->c, 0);
    put_link(t, "p", "before", "B"); /* written before the failure: must not survive */
    struct link l = {.remote = {(char *)"z", (char *)"J"}};
    assert_int_equal(cache_link_put(t, longpair, &l), CB_ERR_CACHE);
    assert_int_equal(cache_txn_status(t), CB_ERR_CACHE);
    struct link ok = {.remote = {(char *)"z2", (char *)"J2"}};
    assert_int_equal(cache_link_put(t, "p", &ok), CB_ERR_CACHE);
    assert_int_equal(ok.id, 0);
    assert_int_equal(cache_link_find(t, "p", 0, "before", &l), CB_ERR_CACHE);
    assert_int_equal(cache_cursor_put(t, "p", 0, &(struct cursor){5, 0}), CB_ERR_CACHE);
    struct strbuf msg = STRBUF_INIT;
    assert_int_equal(commit_msg(t, &msg), CB_ERR_CACHE);
    assert_non_null(strstr(msg.buf, "longer than 511 bytes"));
    strbuf_release(&msg);

    t = begin(f->c, 1);
    assert_int_equal(cache_link_count(t, "p"), 0);
    struct cursor cu;
    assert_int_equal(cache_cursor_get(t, "p", 0, &cu), CB_OK);
    assert_int_equal(cu.ms, 0);
    /* a write in a read transaction fails the transaction */
    assert_int_equal(cache_cursor_put(t, "p", 0, &(struct cursor){5, 0}), CB_ERR_INTERNAL);
    assert_int_equal(cache_cursor_get(t, "p", 0, &cu), CB_ERR_INTERNAL);
    assert_int_equal(commit_msg(t, &msg), CB_ERR_INTERNAL);
    assert_non_null(strstr(msg.buf, "read-only"));
    strbuf_release(&msg);

    /* abort drops the writes too */
    t = begin(f->c, 0);
    put_link(t, "p", "aborted", "A");
    cache_txn_abort(t);
    t = begin(f->c, 1);
    assert_int_equal(cache_link_count(t, "p"), 0);
    commit_ok(t);
}

/* ---- durability and isolation ---- */

static void test_survives_reopen(void **state)
{
    struct fx *f = *state;
    struct cache_txn *t = begin(f->c, 0);
    uint64_t a = put_link(t, "p", "z1", "J1");
    assert_int_equal(cache_cursor_put(t, "p", 0, &(struct cursor){42, 0}), CB_OK);
    assert_int_equal(cache_token_put(t, "jira", "tok-123456", 10), CB_OK);
    commit_ok(t);
    reopen(f);

    t = begin(f->c, 0);
    struct link l;
    assert_int_equal(cache_link_find(t, "p", 1, "J1", &l), CB_OK);
    assert_int_equal(l.id, a);
    link_release(&l);
    struct cursor cu;
    assert_int_equal(cache_cursor_get(t, "p", 0, &cu), CB_OK);
    assert_int_equal(cu.ms, 42);
    struct strbuf tok = STRBUF_INIT;
    assert_int_equal(cache_token_get(t, "jira", &tok), CB_OK);
    assert_string_equal(tok.buf, "tok-123456");
    strbuf_release(&tok);
    /* ids keep growing after a reopen */
    uint64_t b = put_link(t, "p", "z2", "J2");
    assert_true(b > a);
    commit_ok(t);
}

struct reader {
    struct cache *c;
    pthread_barrier_t *bar;
    enum cb_status before, after, end;
};

static enum cb_status reader_find(struct cache_txn *t)
{
    struct link l;
    enum cb_status st = cache_link_find(t, "p", 0, "z1", &l);
    if (st == CB_OK)
        link_release(&l);
    return st;
}

/* Begins a read txn, looks before and after the writer commits (two barriers). */
static void *reader_main(void *arg)
{
    struct reader *r = arg;
    struct cache_txn *t = NULL;
    struct strbuf err = STRBUF_INIT;
    if (cache_txn_begin(r->c, 1, &t, &err) != CB_OK)
        return NULL;
    r->before = reader_find(t);
    if (r->bar) {
        pthread_barrier_wait(r->bar);
        pthread_barrier_wait(r->bar);
    }
    r->after = reader_find(t);
    r->end = cache_txn_commit(t, &err);
    strbuf_release(&err);
    return NULL;
}

static void test_read_isolation(void **state)
{
    struct fx *f = *state;
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    struct reader r = {f->c, &bar, -1, -1, -1};
    struct cache_txn *t = begin(f->c, 0);
    put_link(t, "p", "z1", "J1");
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);
    pthread_barrier_wait(&bar); /* reader looked while the write was uncommitted */
    commit_ok(t);
    pthread_barrier_wait(&bar); /* reader looks again in its old snapshot */
    pthread_join(th, NULL);
    pthread_barrier_destroy(&bar);
    assert_int_equal(r.before, CB_ERR_NOTFOUND);
    assert_int_equal(r.after, CB_ERR_NOTFOUND);
    assert_int_equal(r.end, CB_OK);

    struct reader r2 = {f->c, NULL, -1, -1, -1};
    assert_int_equal(pthread_create(&th, NULL, reader_main, &r2), 0);
    pthread_join(th, NULL);
    assert_int_equal(r2.before, CB_OK);
    assert_int_equal(r2.end, CB_OK);
}

/* ---- trim ---- */

/* RssFile of this process in KiB (the file pages it maps), or -1. */
static long rss_file_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "RssFile:", 8))
            kib = strtol(line + 8, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

/* Reads every base back (touching their pages); returns how many matched what was written. */
static int read_bases(struct cache *c, const uint64_t *ids, int n)
{
    struct cache_txn *t = begin(c, 1);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        cJSON *b = NULL;
        if (cache_base_get(t, "p", ids[i], &b) == CB_OK &&
            cJSON_GetNumberValue(cJSON_GetObjectItem(b, "n")) == i)
            ok++;
        cJSON_Delete(b);
    }
    cache_txn_abort(t);
    return ok;
}

static void test_trim_drops_mapped_pages_only(void **state)
{
    struct fx *f = *state;
    enum { N = 3000 };
    static uint64_t ids[N];
    char pad[1024];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    struct cache_txn *t = begin(f->c, 0);
    for (int i = 0; i < N; i++) {
        char rid[16];
        snprintf(rid, sizeof(rid), "z%d", i);
        ids[i] = put_link(t, "p", rid, rid);
        cJSON *b = cJSON_CreateObject();
        cJSON_AddNumberToObject(b, "n", i);
        cJSON_AddStringToObject(b, "pad", pad);
        assert_int_equal(cache_base_put(t, "p", ids[i], b), CB_OK);
        cJSON_Delete(b);
    }
    commit_ok(t);
    assert_int_equal(read_bases(f->c, ids, N), N);
    long before = rss_file_kib();
    struct cache_txn *open_reader = begin(f->c, 1); /* a transaction open across the trim */
    cache_trim(f->c);
    long after = rss_file_kib();
    /* about 3 MiB of records left the resident set... */
    assert_true(before > 0 && after >= 0);
    assert_true(before - after >= 2048);
    /* ...and nothing else: every record reads back, also in the transaction begun before */
    cJSON *b = NULL;
    assert_int_equal(cache_base_get(open_reader, "p", ids[N - 1], &b), CB_OK);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(b, "n")), N - 1);
    cJSON_Delete(b);
    cache_txn_abort(open_reader);
    assert_int_equal(read_bases(f->c, ids, N), N);
    t = begin(f->c, 0);
    assert_int_equal(cache_link_count(t, "p"), N);
    put_link(t, "p", "after-trim", "after-trim");
    commit_ok(t);
    cache_trim(NULL); /* never fails */
}

/* ---- crash seam ---- */

/* Opens the cache in dir and commits links c1, c2, c3 in three transactions. */
static int commit_three(const char *dir)
{
    struct cache *c = NULL;
    struct strbuf err = STRBUF_INIT;
    if (cache_open(dir, &c, &err) != CB_OK)
        return 2;
    for (int i = 1; i <= 3; i++) {
        char rid[8];
        snprintf(rid, sizeof(rid), "c%d", i);
        struct link l = {.remote = {rid, rid}};
        struct cache_txn *t;
        if (cache_txn_begin(c, 0, &t, &err) != CB_OK)
            return 3;
        (void)cache_link_put(t, "crash", &l);
        if (cache_txn_commit(t, &err) != CB_OK)
            return 4;
    }
    cache_close(c);
    return 0;
}

static void wait_killed(pid_t pid)
{
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    if (!WIFSIGNALED(ws))
        fail_msg("child was not killed (exit %d)", WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    assert_int_equal(WTERMSIG(ws), SIGKILL);
}

static void check_committed(const char *dir, int n)
{
    struct cache *c = open_ok(dir);
    struct cache_txn *t = begin(c, 0);
    assert_int_equal(cache_link_count(t, "crash"), (size_t)n);
    for (int i = 1; i <= 3; i++) {
        char rid[8];
        snprintf(rid, sizeof(rid), "c%d", i);
        struct link l;
        enum cb_status st = cache_link_find(t, "crash", 0, rid, &l);
        assert_int_equal(st, i <= n ? CB_OK : CB_ERR_NOTFOUND);
        if (st == CB_OK)
            link_release(&l);
    }
    put_link(t, "crash", "after", "after"); /* the dead writer's lock was recovered */
    commit_ok(t);
    cache_close(c);
}

static void test_crash_seam(void **state)
{
    char *dir = tu_tmpdir();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cache_crash_after_commits(2);
        _exit(commit_three(dir));
    }
    wait_killed(pid);
    check_committed(dir, 2);
    tu_rmrf(dir);
    free(dir);
}

static const char *self_exe;

static void test_crash_seam_env(void **state)
{
    char *dir = tu_tmpdir();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("CRMBRIDGE_CRASH_AFTER_COMMITS", "1", 1);
        execl(self_exe, self_exe, "--commit-three", dir, (char *)NULL); /* argv[0]: valgrind-safe */
        _exit(127);
    }
    wait_killed(pid);
    check_committed(dir, 1);
    tu_rmrf(dir);
    free(dir);
}

/* ---- open errors and schema ---- */

/* Writes val under key in database db of the (closed) cache in dir, as another program would;
 * val NULL deletes key. */
static void raw_put(const char *dir, const char *db, const char *key, const void *val, size_t len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)val};
    assert_int_equal(val ? mdb_put(txn, dbi, &k, &v, 0) : mdb_del(txn, dbi, &k, NULL), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* Reads the value under key in db into buf; returns its length. */
static size_t raw_get(const char *dir, const char *db, const char *key, void *buf, size_t cap)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
    MDB_val k = {strlen(key), (void *)key}, v;
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    assert_true(v.mv_size <= cap);
    memcpy(buf, v.mv_data, v.mv_size);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return v.mv_size;
}

static void test_schema_newer(void **state)
{
    struct fx *f = *state;
    cache_close(f->c);
    f->c = NULL;
    raw_put(f->dir, "meta", "schema_version", "3", 1);
    struct strbuf err = STRBUF_INIT;
    assert_int_equal(cache_open(f->dir, &f->c, &err), CB_ERR_CACHE);
    assert_null(f->c);
    assert_non_null(strstr(err.buf, "cache schema 3 is newer than this crmbridge (2)"));
    strbuf_release(&err);
}

static void test_open_errors(void **state)
{
    struct fx *f = *state;
    char path[512];
    snprintf(path, sizeof(path), "%s/plain-file", f->dir);
    assert_int_equal(tu_write_file(path, "x"), 0);
    struct cache *c = NULL;
    struct strbuf err = STRBUF_INIT;
    assert_int_equal(cache_open(path, &c, &err), CB_ERR_CACHE);
    assert_null(c);
    assert_non_null(strstr(err.buf, "not a directory"));
    snprintf(path, sizeof(path), "%s/missing/state", f->dir);
    assert_int_equal(cache_open(path, &c, &err), CB_ERR_CACHE);
    assert_non_null(strstr(err.buf, "cannot create cache directory"));
    assert_non_null(strstr(err.buf, "No such file or directory"));
    /* a missing last component is created, private */
    snprintf(path, sizeof(path), "%s/state", f->dir);
    c = open_ok(path);
    cache_close(c);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    strbuf_release(&err);
}

/* ---- tokens ---- */

static const char secret_token[] = "ya29.SECRET-token-0123456789abcdef";

static void put_token(struct fx *f, const char *endpoint)
{
    struct cache_txn *t = begin(f->c, 0);
    assert_int_equal(cache_token_put(t, endpoint, secret_token, strlen(secret_token)), CB_OK);
    commit_ok(t);
}

/* Expects token_get on endpoint to fail with CB_ERR_CACHE and a message containing want. */
static void expect_token_error(struct fx *f, const char *endpoint, const char *want)
{
    struct cache_txn *t = begin(f->c, 1);
    struct strbuf tok = STRBUF_INIT, msg = STRBUF_INIT;
    assert_int_equal(cache_token_get(t, endpoint, &tok), CB_ERR_CACHE);
    assert_int_equal(tok.len, 0);
    assert_int_equal(commit_msg(t, &msg), CB_ERR_CACHE);
    if (!strstr(msg.buf, want))
        fail_msg("message '%s' lacks '%s'", msg.buf, want);
    assert_null(strstr(msg.buf, secret_token));
    strbuf_release(&msg);
}

static int file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    struct strbuf sb = STRBUF_INIT;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
        assert_int_equal(strbuf_add(&sb, buf, n), CB_OK);
    fclose(fp);
    size_t nl = strlen(needle);
    int found = 0;
    for (size_t i = 0; !found && i + nl <= sb.len; i++)
        found = memcmp(sb.buf + i, needle, nl) == 0;
    strbuf_release(&sb);
    return found;
}

static void test_token_roundtrip(void **state)
{
    struct fx *f = *state;
    char keypath[512], datapath[512];
    snprintf(keypath, sizeof(keypath), "%s/secret.key", f->dir);
    snprintf(datapath, sizeof(datapath), "%s/data.mdb", f->dir);
    struct stat st;
    assert_int_equal(stat(keypath, &st), -1); /* created on first use only */

    struct cache_txn *t = begin(f->c, 1);
    struct strbuf tok = STRBUF_INIT;
    assert_int_equal(cache_token_get(t, "jira", &tok), CB_ERR_NOTFOUND);
    commit_ok(t);
    put_token(f, "jira");
    assert_int_equal(stat(keypath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);

    t = begin(f->c, 1);
    assert_int_equal(cache_token_get(t, "jira", &tok), CB_OK);
    assert_int_equal(tok.len, strlen(secret_token));
    assert_string_equal(tok.buf, secret_token);
    commit_ok(t);
    strbuf_release(&tok);

    t = begin(f->c, 0);
    assert_int_equal(cache_token_del(t, "jira"), CB_OK);
    assert_int_equal(cache_token_del(t, "jira"), CB_ERR_NOTFOUND);
    assert_int_equal(cache_token_put(t, "zoho", secret_token, strlen(secret_token)), CB_OK);
    assert_int_equal(cache_token_get(t, "jira", &tok), CB_ERR_NOTFOUND);
    commit_ok(t);

    cache_close(f->c);
    f->c = NULL;
    /* the endpoint name (a key) is there in the clear; the token is not */
    assert_true(file_contains(datapath, "zoho"));
    assert_false(file_contains(datapath, secret_token));
    assert_false(file_contains(datapath, "SECRET-token"));
    f->c = open_ok(f->dir);
}

static void test_token_tampered(void **state)
{
    struct fx *f = *state;
    put_token(f, "jira");
    cache_close(f->c);
    f->c = NULL;
    unsigned char blob[256];
    size_t n = raw_get(f->dir, "tokens", "jira", blob, sizeof(blob));
    raw_put(f->dir, "tokens", "trello", blob, n); /* copied to another endpoint */
    blob[n / 2] ^= 0x01;
    raw_put(f->dir, "tokens", "jira", blob, n);  /* one bit flipped */
    raw_put(f->dir, "tokens", "zoho", blob, 5);  /* truncated */
    raw_put(f->dir, "tokens", "fxiaoke", "", 0); /* empty */
    f->c = open_ok(f->dir);
    expect_token_error(f, "jira", "cannot decrypt token for endpoint 'jira'");
    expect_token_error(f, "trello", "cannot decrypt token for endpoint 'trello'");
    expect_token_error(f, "zoho", "cannot decrypt token for endpoint 'zoho'");
    expect_token_error(f, "fxiaoke", "cannot decrypt token for endpoint 'fxiaoke'");
}

static void test_token_key_file(void **state)
{
    struct fx *f = *state;
    char keypath[512];
    snprintf(keypath, sizeof(keypath), "%s/secret.key", f->dir);
    put_token(f, "jira");
    cache_close(f->c);

    /* a key readable by others is refused, with the fix in the message */
    assert_int_equal(chmod(keypath, 0644), 0);
    f->c = open_ok(f->dir);
    expect_token_error(f, "jira", "run chmod 600");
    struct cache_txn *t = begin(f->c, 0);
    assert_int_equal(cache_token_put(t, "zoho", "abc", 3), CB_ERR_CACHE);
    cache_txn_abort(t);
    cache_close(f->c);

    /* after chmod 600 it works again */
    assert_int_equal(chmod(keypath, 0600), 0);
    f->c = open_ok(f->dir);
    t = begin(f->c, 1);
    struct strbuf tok = STRBUF_INIT;
    assert_int_equal(cache_token_get(t, "jira", &tok), CB_OK);
    assert_string_equal(tok.buf, secret_token);
    strbuf_release(&tok);
    commit_ok(t);
    cache_close(f->c);

    /* another key (say, the file was replaced) cannot open the old blobs */
    assert_int_equal(unlink(keypath), 0);
    f->c = open_ok(f->dir);
    expect_token_error(f, "jira", "cannot decrypt token for endpoint 'jira'");
}

/* ---- the link counter and long walks ---- */

static int count_fn(void *arg, const struct link *l)
{
    (void)l;
    ++*(size_t *)arg;
    return 0;
}

/* Asserts that the counter of pair says n, and that a walk finds as many. */
static void expect_links(struct cache_txn *t, const char *pair, size_t n)
{
    size_t walked = 0;
    assert_int_equal(cache_link_foreach(t, pair, count_fn, &walked), CB_OK);
    assert_int_equal(walked, n);
    assert_int_equal(cache_link_count(t, pair), n);
}

static void test_count_follows_writes(void **state)
{
    struct fx *f = *state;
    struct cache_txn *t = begin(f->c, 0);
    expect_links(t, "p", 0);
    uint64_t a = put_link(t, "p", "z1", "J1");
    uint64_t b = put_link(t, "p", "z2", "J2");
    put_link(t, "q", "z1", "T1");
    expect_links(t, "p", 2); /* seen in the writing transaction already */
    commit_ok(t);

    /* Re-putting an existing link (a moved record) is no new link; an unknown id is one. */
    t = begin(f->c, 0);
    struct link moved = {.id = a, .remote = {(char *)"z1", (char *)"J1-moved"}};
    assert_int_equal(cache_link_put(t, "p", &moved), CB_OK);
    expect_links(t, "p", 2);
    struct link given = {.id = 500, .remote = {(char *)"z5", (char *)"J5"}};
    assert_int_equal(cache_link_put(t, "p", &given), CB_OK);
    expect_links(t, "p", 3);
    assert_int_equal(cache_link_del(t, "p", 500), CB_OK);
    assert_int_equal(cache_link_del(t, "p", 500), CB_ERR_NOTFOUND);
    expect_links(t, "p", 2);
    expect_links(t, "q", 1);
    commit_ok(t);

    /* An aborted transaction takes its changes to the counter with it. */
    t = begin(f->c, 0);
    put_link(t, "p", "z3", "J3");
    put_link(t, "p", "z4", "J4");
    assert_int_equal(cache_link_del(t, "p", b), CB_OK);
    expect_links(t, "p", 3);
    cache_txn_abort(t);
    t = begin(f->c, 1);
    expect_links(t, "p", 2);
    cache_txn_abort(t);

    /* So does a failed one: a duplicate link fails the transaction at commit. */
    t = begin(f->c, 0);
    put_link(t, "p", "z6", "J6");
    struct link dup = {.remote = {(char *)"z7", (char *)"J2"}};
    assert_int_not_equal(cache_link_put(t, "p", &dup), CB_OK);
    struct strbuf err = STRBUF_INIT;
    assert_int_not_equal(cache_txn_commit(t, &err), CB_OK);
    strbuf_release(&err);

    t = begin(f->c, 0);
    assert_int_equal(cache_link_unlink(t, "p", a), CB_OK);
    expect_links(t, "p", 1);
    commit_ok(t);

    cache_close(f->c);
    f->c = open_ok(f->dir);
    t = begin(f->c, 1);
    expect_links(t, "p", 1);
    expect_links(t, "q", 1);
    expect_links(t, "none", 0);
    cache_txn_abort(t);
}

static void test_count_key_is_reserved(void **state)
{
    struct fx *f = *state;
    struct cache_txn *t = begin(f->c, 0);
    put_link(t, "p", "z1", "J1");
    commit_ok(t);
    cJSON *n = cJSON_CreateNumber(7);
    t = begin(f->c, 0);
    assert_int_not_equal(cache_meta_put(t, "linkcount:p", n), CB_OK);
    cache_txn_abort(t);
    t = begin(f->c, 0);
    assert_int_not_equal(cache_meta_del(t, "linkcount:p"), CB_OK);
    cache_txn_abort(t);
    cJSON_Delete(n);
    t = begin(f->c, 1);
    expect_links(t, "p", 1);
    cache_txn_abort(t);
}

/* ---- a cache written before the counters ---- */

static double meta_number(struct cache *c, const char *key)
{
    struct cache_txn *t = begin(c, 1);
    cJSON *v = NULL;
    assert_int_equal(cache_meta_get(t, key, &v), CB_OK);
    assert_true(cJSON_IsNumber(v));
    double d = v->valuedouble;
    cJSON_Delete(v);
    cache_txn_abort(t);
    return d;
}

static void test_old_cache_is_counted(void **state)
{
    struct fx *f = *state;
    struct cache_txn *t = begin(f->c, 0);
    for (int i = 0; i < 5; i++) {
        char rid[16];
        snprintf(rid, sizeof(rid), "z%d", i);
        uint64_t id = put_link(t, "p", rid, rid);
        if (i == 2)
            assert_int_equal(cache_link_del(t, "p", id), CB_OK);
    }
    put_link(t, "p2", "z1", "T1"); /* "p" is a prefix of this pair's name */
    put_link(t, "q", "z1", "T1");
    put_link(t, "q", "z2", "T2");
    commit_ok(t);
    cache_close(f->c);
    f->c = NULL;
    /* What schema 1 left: the same links, no counters. */
    raw_put(f->dir, "meta", "linkcount:p", NULL, 0);
    raw_put(f->dir, "meta", "linkcount:p2", NULL, 0);
    raw_put(f->dir, "meta", "linkcount:q", NULL, 0);
    raw_put(f->dir, "meta", "schema_version", "1", 1);

    f->c = open_ok(f->dir);
    t = begin(f->c, 1);
    expect_links(t, "p", 4);
    expect_links(t, "p2", 1);
    expect_links(t, "q", 2);
    cache_txn_abort(t);
    /* counted once and stored, with the version that says so */
    assert_true(meta_number(f->c, "linkcount:p") == 4);
    assert_true(meta_number(f->c, "linkcount:q") == 2);
    assert_true(meta_number(f->c, "schema_version") == 2);
    t = begin(f->c, 0);
    put_link(t, "q", "z3", "T3");
    expect_links(t, "q", 3);
    commit_ok(t);
}

/* ---- long walks ---- */

enum { WALK_N = 6000, URL_LEN = 1000 };

static void make_url(char *buf, int i)
{
    int n = snprintf(buf, URL_LEN + 1, "https://crm.example/cases/%d/", i);
    memset(buf + n, 'u', (size_t)(URL_LEN - n));
    buf[URL_LEN] = '\0';
}

struct check {
    struct cache *c;
    struct cache_txn *t; /* for the deleting walk */
    const uint64_t *ids;
    size_t n;
    long rss0, rss_max;
    int bad;
};

/* Checks that link number n of the walk is the next one written, with its values. */
static int check_fn(void *arg, const struct link *l)
{
    struct check *w = arg;
    size_t i = w->n++;
    char rid[16], url[URL_LEN + 1];
    snprintf(rid, sizeof(rid), "z%zu", i);
    make_url(url, (int)i);
    if (i >= WALK_N || l->id != w->ids[i] || !l->remote[0] || strcmp(l->remote[0], rid) ||
        !l->url[0] || strcmp(l->url[0], url))
        w->bad++;
    if (i == WALK_N / 2)
        cache_trim(w->c); /* a trim by the caller in the middle, too */
    if (i % 128 == 0) {
        long rss = rss_file_kib();
        w->rss_max = rss > w->rss_max ? rss : w->rss_max;
    }
    return 0;
}

/* Deletes every odd link while walking, in the walk's write transaction. */
static int delete_odd_fn(void *arg, const struct link *l)
{
    struct check *w = arg;
    if (w->n++ % 2 && cache_link_del(w->t, "p", l->id) != CB_OK)
        w->bad++;
    return 0;
}

static void put_walk_links(struct cache *c, uint64_t *ids)
{
    struct cache_txn *t = begin(c, 0);
    put_link(t, "o", "o1", "o1"); /* neighbours of the walked pair on both sides */
    char url[URL_LEN + 1];
    for (int i = 0; i < WALK_N; i++) {
        char rid[16];
        snprintf(rid, sizeof(rid), "z%d", i);
        make_url(url, i);
        struct link l = {.remote = {rid, rid}, .url = {url, NULL}};
        assert_int_equal(cache_link_put(t, "p", &l), CB_OK);
        ids[i] = l.id;
    }
    put_link(t, "q", "q1", "q1");
    commit_ok(t);
}

static void test_long_walk_trimmed(void **state)
{
    struct fx *f = *state;
    static uint64_t ids[WALK_N];
    put_walk_links(f->c, ids);
    char path[4096];
    snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);

    cache_trim(f->c);
    struct check w = {.c = f->c, .ids = ids, .rss0 = rss_file_kib()};
    w.rss_max = w.rss0;
    struct cache_txn *t = begin(f->c, 1);
    assert_int_equal(cache_link_foreach(t, "p", check_fn, &w), CB_OK);
    assert_int_equal(w.n, WALK_N);
    assert_int_equal(w.bad, 0);
    assert_int_equal(cache_link_count(t, "p"), WALK_N);
    cache_txn_abort(t);
    /* The links fill most of the file (6 MB of urls); an untrimmed walk maps all their pages. */
    long file_kib = (long)(sb.st_size / 1024);
    if (w.rss_max - w.rss0 >= file_kib / 3)
        fail_msg("the walk kept %ld KiB of a %ld KiB file resident", w.rss_max - w.rss0, file_kib);

    /* A walk that deletes as it goes, trimmed too, in a write transaction. */
    t = begin(f->c, 0);
    struct check d = {.t = t};
    assert_int_equal(cache_link_foreach(t, "p", delete_odd_fn, &d), CB_OK);
    assert_int_equal(d.bad, 0);
    assert_int_equal(d.n, WALK_N);
    commit_ok(t);
    t = begin(f->c, 1);
    expect_links(t, "p", WALK_N / 2);
    expect_links(t, "o", 1);
    expect_links(t, "q", 1);
    struct link l;
    assert_int_equal(cache_link_get(t, "p", ids[WALK_N - 2], &l), CB_OK);
    assert_string_equal(l.remote[1], "z5998");
    link_release(&l);
    assert_int_equal(cache_link_get(t, "p", ids[WALK_N - 1], &l), CB_ERR_NOTFOUND);
    cache_txn_abort(t);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--commit-three") == 0)
        return commit_three(argv[2]);
    self_exe = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_update_and_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_base_cursor_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sticky_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_drops_mapped_pages_only, setup, teardown),
        cmocka_unit_test(test_crash_seam),
        cmocka_unit_test(test_crash_seam_env),
        cmocka_unit_test_setup_teardown(test_schema_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_tampered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_follows_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_key_is_reserved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_cache_is_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_walk_trimmed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
