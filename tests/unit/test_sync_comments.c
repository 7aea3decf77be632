/*
 * sync_comments against two in-memory comment stores (a fake connector that has only the comment
 * slots) and a real cache: copies go both ways once with author and time, a second run writes
 * nothing, edits update the copy, copies are never copied back, and lost answers, rejected
 * writes, temporary failures and crashes between the steps never duplicate a comment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "sync/comments.h"
#include "tests/unit/testutil.h"

#define MAXC 32

struct fc {
    char id[16], rec[16], author[32], body[512], marker[16];
    int64_t ms;
};

/* One side's comments. Faults: drop the answer of the next create (the comment is made), fail
 * the next write with a status, or pretend the record is gone. */
struct connector {
    const char *prefix;
    struct fc v[MAXC];
    int n, seq, writes, lists;
    char listed[256]; /* the records listed, each followed by a space */
    int drop_next_create;
    enum cb_status fail_next;
    int gone;
    const char *changed; /* comments_changed answers this record id */
};

static enum cb_status f_list(struct connector *c, const char *rec, struct comment_list *out,
                             struct strbuf *err)
{
    c->lists++;
    size_t used = strlen(c->listed);
    snprintf(c->listed + used, sizeof(c->listed) - used, "%s ", rec);
    if (c->gone) {
        strbuf_setf(err, "no record '%s'", rec);
        return CB_ERR_NOTFOUND;
    }
    for (int i = 0; i < c->n; i++) {
        if (strcmp(c->v[i].rec, rec))
            continue;
        struct comment x = {xstrdup(c->v[i].id),
                            xstrdup(c->v[i].author),
                            c->v[i].ms,
                            c->v[i].ms,
                            xstrdup(c->v[i].body),
                            c->v[i].marker[0] ? xstrdup(c->v[i].marker) : NULL,
                            c->v[i].marker[0] != 0};
        comment_list_push(out, &x);
    }
    return CB_OK;
}

static struct fc *f_add(struct connector *c, const char *rec, const char *author, const char *body)
{
    struct fc *x = &c->v[c->n++];
    memset(x, 0, sizeof(*x));
    snprintf(x->id, sizeof(x->id), "%s%d", c->prefix, ++c->seq);
    snprintf(x->rec, sizeof(x->rec), "%s", rec);
    snprintf(x->author, sizeof(x->author), "%s", author);
    snprintf(x->body, sizeof(x->body), "%s", body);
    x->ms = 1795759320000 + c->seq * 60000; /* 2026-11-27 06:02 UTC and on */
    return x;
}

static struct fc *f_get(struct connector *c, const char *id)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].id, id))
            return &c->v[i];
    return NULL;
}

static enum cb_status f_write(struct connector *c, const char *rec, struct comment_op *op,
                              struct strbuf *err)
{
    if (c->fail_next != CB_OK) {
        enum cb_status st = c->fail_next;
        c->fail_next = CB_OK;
        strbuf_setf(err, "injected %s", cb_status_str(st));
        return st;
    }
    c->writes++;
    if (op->id) {
        struct fc *x = f_get(c, op->id);
        if (!x)
            return CB_ERR_NOTFOUND;
        snprintf(x->body, sizeof(x->body), "%s", op->body);
        return CB_OK;
    }
    struct fc *x = f_add(c, rec, "crmbridge bot", op->body);
    snprintf(x->marker, sizeof(x->marker), "%s", op->marker);
    if (c->drop_next_create) {
        c->drop_next_create = 0;
        strbuf_setf(err, "connection reset");
        return CB_ERR_TEMP;
    }
    op->new_id = xstrdup(x->id);
    return CB_OK;
}

static enum cb_status f_changed(struct connector *c, int64_t since, char ***ids, size_t *n,
                                struct strbuf *err)
{
    (void)since;
    (void)err;
    if (c->changed) {
        *ids = xrealloc(*ids, sizeof(char *));
        (*ids)[(*n)++] = xstrdup(c->changed);
    }
    return CB_OK;
}

static const struct connector_ops crm_ops = {
    .name = "zoho", .list_comments = f_list, .write_comment = f_write};
/* A CRM that names the records whose comments changed: listed only for those. */
static const struct connector_ops crm_changed_ops = {.name = "zoho",
                                                     .list_comments = f_list,
                                                     .write_comment = f_write,
                                                     .comments_changed = f_changed};
static const struct connector_ops trk_ops = {
    .name = "jira", .list_comments = f_list, .write_comment = f_write};
static const struct connector_ops bare_ops = {.name = "plain"};

struct env {
    char *dir;
    struct cache *cache;
    struct connector side[2];
    struct link link;
    struct sync_report rep;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->dir = tu_tmpdir();
    struct strbuf err = STRBUF_INIT;
    assert_int_equal(cache_open(e->dir, &e->cache, &err), CB_OK);
    strbuf_release(&err);
    e->side[0].prefix = "N";
    e->side[1].prefix = "C";
    e->link.remote[0] = xstrdup("case1");
    e->link.remote[1] = xstrdup("SUP-1");
    struct cache_txn *t;
    assert_int_equal(cache_txn_begin(e->cache, 0, &t, &err), CB_OK);
    assert_int_equal(cache_link_put(t, "p", &e->link), CB_OK);
    assert_int_equal(cache_txn_commit(t, &err), CB_OK);
    sync_report_init(&e->rep);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    link_release(&e->link);
    sync_report_release(&e->rep);
    cache_close(e->cache);
    tu_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

/* One run over the link (links_passed 0: only what the cache and comments_changed name). */
static enum cb_status run_with(struct env *e, int links_passed, const struct connector_ops *crm)
{
    struct comment_sync cs = {
        "p", e->cache, {crm, &trk_ops}, {&e->side[0], &e->side[1]}, {1, 1}, &e->rep, 0, 0};
    struct strbuf err = STRBUF_INIT;
    enum cb_status st =
        sync_comments(&cs, &e->link, NULL, links_passed ? 1 : 0, sizeof(e->link), &err);
    strbuf_release(&err);
    return st;
}

static enum cb_status run(struct env *e)
{
    return run_with(e, 1, &crm_ops);
}

static int writes(struct env *e)
{
    return e->side[0].writes + e->side[1].writes;
}

static int count_body(const struct connector *c, const char *needle)
{
    int n = 0;
    for (int i = 0; i < c->n; i++)
        n += strstr(c->v[i].body, needle) != NULL;
    return n;
}

static void test_both_ways_once_then_quiet_then_edit(void **state)
{
    struct env *e = *state;
    f_add(&e->side[0], "case1", "Li Wei", "Customer called again");
    f_add(&e->side[1], "SUP-1", "Mia Krystof", "Looking into it");
    assert_int_equal(run(e), CB_OK);
    assert_int_equal(e->side[0].n, 2);
    assert_int_equal(e->side[1].n, 2);
    assert_int_equal(count_body(&e->side[1], "Comment by Li Wei on 2026-11-27 06:03 UTC (Zoho CRM):"
                                             "\n\nCustomer called again"),
                     1);
    assert_int_equal(count_body(&e->side[0], "Comment by Mia Krystof on 2026-11-27 06:03 UTC "
                                             "(Jira):\n\nLooking into it"),
                     1);
    int w = writes(e);
    assert_int_equal(w, 2);
    assert_int_equal(run(e), CB_OK); /* the copies carry markers: never copied back */
    assert_int_equal(writes(e), w);
    assert_int_equal(e->side[0].n + e->side[1].n, 4);
    snprintf(f_get(&e->side[0], "N1")->body, 512, "Customer called twice");
    assert_int_equal(run(e), CB_OK);
    assert_int_equal(writes(e), w + 1);
    assert_int_equal(e->side[1].n, 2);
    assert_int_equal(count_body(&e->side[1], "Customer called twice"), 1);
    assert_int_equal(run(e), CB_OK);
    assert_int_equal(writes(e), w + 1);
    /* a person edits the copies and drops their markers: still ours, never copied back */
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < e->side[s].n; i++)
            e->side[s].v[i].marker[0] = '\0';
    assert_int_equal(run(e), CB_OK);
    assert_int_equal(writes(e), w + 1);
    assert_int_equal(e->side[0].n + e->side[1].n, 4);
}

static void test_lost_answer_links_by_marker(void **state)
{
    struct env *e = *state;
    f_add(&e->side[0], "case1", "Li Wei", "Please hurry");
    e->side[1].drop_next_create = 1;
    assert_int_equal(run(e), CB_OK);
    assert_int_equal(e->rep.postponed, 1);
    assert_int_equal(e->side[1].n, 1);
    /* the next run needs no help from the engine: the link stayed pending */
    assert_int_equal(run_with(e, 0, &crm_ops), CB_OK);
    assert_int_equal(e->side[1].n, 1);
    assert_int_equal(e->side[1].writes, 1);
    assert_non_null(strstr(e->rep.notes.buf, "before an interruption"));
    /* linked: an edit now updates that copy */
    snprintf(f_get(&e->side[0], "N1")->body, 512, "Please hurry, it is urgent");
    assert_int_equal(run(e), CB_OK);
    assert_int_equal(e->side[1].n, 1);
    assert_int_equal(count_body(&e->side[1], "it is urgent"), 1);
}

/* Runs in parallel (a migration's connections) over other links neither pick up nor drop a link
 * left pending: picking it up while its journaled create is in flight elsewhere would make a
 * second copy, dropping it would leave the lost answer unsettled. */
static void test_parallel_run_keeps_others_pending(void **state)
{
    struct env *e = *state;
    f_add(&e->side[0], "case1", "Li Wei", "Please hurry");
    e->side[1].drop_next_create = 1;
    assert_int_equal(run(e), CB_OK);
    assert_int_equal(e->side[1].n, 1);

    struct link other = {.remote = {xstrdup("case2"), xstrdup("SUP-2")}};
    struct strbuf err = STRBUF_INIT;
    struct cache_txn *t;
    assert_int_equal(cache_txn_begin(e->cache, 0, &t, &err), CB_OK);
    assert_int_equal(cache_link_put(t, "p", &other), CB_OK);
    assert_int_equal(cache_txn_commit(t, &err), CB_OK);
    f_add(&e->side[0], "case2", "Li Wei", "Second case");
    e->side[0].listed[0] = e->side[1].listed[0] = 0;
    struct comment_sync cs = {
        "p", e->cache, {&crm_ops, &trk_ops}, {&e->side[0], &e->side[1]}, {1, 1}, &e->rep, 0, 1};
    assert_int_equal(sync_comments(&cs, &other, NULL, 1, sizeof(other), &err), CB_OK);
    assert_int_equal(e->side[1].n, 2);                /* case2's note, once */
    assert_string_equal(e->side[0].listed, "case2 "); /* case1 and SUP-1 were not looked at */
    assert_string_equal(e->side[1].listed, "SUP-2 ");
    assert_null(strstr(e->rep.notes.buf, "before an interruption"));

    /* the caller's own pass afterwards still finds case1 pending and links its copy */
    assert_int_equal(run_with(e, 0, &crm_ops), CB_OK);
    assert_non_null(strstr(e->rep.notes.buf, "before an interruption"));
    assert_int_equal(e->side[1].n, 2);
    assert_int_equal(count_body(&e->side[1], "Please hurry"), 1);
    link_release(&other);
    strbuf_release(&err);
}

static void test_failures_final_temp_gone(void **state)
{
    struct env *e = *state;
    f_add(&e->side[0], "case1", "Li Wei", "Rejected text");
    e->side[1].fail_next = CB_ERR_FINAL;
    assert_int_equal(run(e), CB_OK);
    assert_int_equal(e->rep.failed, 1);
    assert_non_null(strstr(e->rep.problems.buf, "cannot copy comment 'N1'"));
    assert_int_equal(e->side[1].n, 0);
    /* a rejected create leaves no intent: the next run tries afresh, once */
    e->side[1].fail_next = CB_ERR_WAIT;
    assert_int_equal(run(e), CB_OK);
    assert_int_equal(e->rep.postponed, 1);
    assert_int_equal(run_with(e, 0, &crm_ops), CB_OK); /* pending: retried without a change */
    assert_int_equal(e->side[1].n, 1);
    assert_int_equal(run_with(e, 0, &crm_ops), CB_OK);
    assert_int_equal(e->side[1].writes, 1);
    /* a record that is gone is left alone, quietly */
    e->side[0].gone = 1;
    f_add(&e->side[1], "SUP-1", "Mia Krystof", "Anyone?");
    int problems = (int)e->rep.problems.len;
    assert_int_equal(run(e), CB_OK);
    assert_int_equal((int)e->rep.problems.len, problems);
    assert_int_equal(e->side[0].writes, 0);
}

static void test_changed_comments_and_sides_without_comments(void **state)
{
    struct env *e = *state;
    /* a connector without comment slots: nothing happens */
    f_add(&e->side[0], "case1", "Li Wei", "Written before the first sync");
    assert_int_equal(run_with(e, 1, &bare_ops), CB_OK);
    assert_int_equal(e->side[0].lists + e->side[1].lists, 0);
    /* the first sync of a link reads both sides: the old note is copied */
    assert_int_equal(run_with(e, 1, &crm_changed_ops), CB_OK);
    assert_int_equal(count_body(&e->side[1], "Written before the first sync"), 1);
    /* later, a CRM that reports changed comments is not read for a record it does not name... */
    f_add(&e->side[0], "case1", "Li Wei", "Only a note changed");
    int lists = e->side[0].lists;
    assert_int_equal(run_with(e, 1, &crm_changed_ops), CB_OK);
    assert_int_equal(e->side[0].lists, lists);
    assert_int_equal(e->side[1].n, 1);
    /* ...and is for one it names, even when the engine did not list that record */
    e->side[0].changed = "case1";
    assert_int_equal(run_with(e, 0, &crm_changed_ops), CB_OK);
    assert_int_equal(e->side[1].n, 2);
    assert_int_equal(count_body(&e->side[1], "Only a note changed"), 1);
}

/* A link made in this cycle: the record crmbridge created (it carries a marker) is not read. */
static void test_new_link_skips_the_record_we_created(void **state)
{
    struct env *e = *state;
    f_add(&e->side[0], "case1", "Li Wei", "Old note");
    struct record recs[2] = {{.id = "case1"}, {.id = "SUP-1", .marker = "0123abcd"}};
    struct comment_sync cs = {
        "p", e->cache, {&crm_changed_ops, &trk_ops}, {&e->side[0], &e->side[1]}, {1, 1}, &e->rep,
        0,   0};
    struct strbuf err = STRBUF_INIT;
    assert_int_equal(sync_comments(&cs, &e->link, recs, 1, sizeof(e->link), &err), CB_OK);
    assert_int_equal(e->side[0].lists, 1);
    assert_int_equal(e->side[1].lists, 0);
    assert_int_equal(count_body(&e->side[1], "Old note"), 1);
    /* later: a record read again with the same modified time is not listed again, nor one
     * whose connector counts no comments on it (Trello's badges) */
    recs[0].modified_ms = recs[1].modified_ms = 5;
    assert_int_equal(sync_comments(&cs, &e->link, recs, 1, sizeof(e->link), &err), CB_OK);
    assert_int_equal(e->side[1].lists, 1);
    assert_int_equal(sync_comments(&cs, &e->link, recs, 1, sizeof(e->link), &err), CB_OK);
    assert_int_equal(e->side[1].lists, 1);
    recs[1].modified_ms = 6;
    recs[1].fields = cJSON_CreateObject();
    cJSON_AddNumberToObject(recs[1].fields, COMMENT_COUNT_FIELD, 0);
    assert_int_equal(sync_comments(&cs, &e->link, recs, 1, sizeof(e->link), &err), CB_OK);
    assert_int_equal(e->side[1].lists, 1);
    cJSON_Delete(recs[1].fields);
    assert_int_equal(e->side[0].lists, 1); /* the CRM names its changes itself */
    strbuf_release(&err);
}

/* A record that came with all its comments (Jira's comment field) is listed only when its newest
 * comment is past the mark of the last listing, however far its modified time moved: a title
 * edit costs no listing, a new or edited comment is still copied. */
static void test_newest_comment_time_spares_a_listing(void **state)
{
    struct env *e = *state;
    struct fc *x = f_add(&e->side[1], "SUP-1", "Mia Krystof", "Looking into it");
    struct record recs[2] = {{.id = "case1", .modified_ms = x->ms},
                             {.id = "SUP-1", .modified_ms = x->ms}};
    recs[1].fields = cJSON_CreateObject();
    cJSON *count = cJSON_AddNumberToObject(recs[1].fields, COMMENT_COUNT_FIELD, 1);
    cJSON *newest = cJSON_AddNumberToObject(recs[1].fields, COMMENT_NEWEST_FIELD, (double)x->ms);
    struct comment_sync cs = {.pair = "p",
                              .cache = e->cache,
                              .ops = {&crm_ops, &trk_ops},
                              .conn = {&e->side[0], &e->side[1]},
                              .rep = &e->rep};
    struct strbuf err = STRBUF_INIT;
    assert_int_equal(sync_comments(&cs, &e->link, recs, 1, sizeof(e->link), &err), CB_OK);
    assert_string_equal(e->side[1].listed, "SUP-1 "); /* never synced: read whatever it says */
    assert_int_equal(count_body(&e->side[0], "Looking into it"), 1);

    /* a person edits the title: its modified time moves, its comments did not */
    e->side[0].listed[0] = e->side[1].listed[0] = 0;
    recs[1].modified_ms = x->ms + 1000;
    assert_int_equal(sync_comments(&cs, &e->link, recs, 1, sizeof(e->link), &err), CB_OK);
    assert_string_equal(e->side[1].listed, "");
    /* without the time (not every comment came with the record): listed as before */
    cJSON_DeleteItemFromObject(recs[1].fields, COMMENT_NEWEST_FIELD);
    recs[1].modified_ms = x->ms + 2000;
    assert_int_equal(sync_comments(&cs, &e->link, recs, 1, sizeof(e->link), &err), CB_OK);
    assert_string_equal(e->side[1].listed, "SUP-1 ");

    /* a new comment: its time is past the mark, so it is listed and copied */
    struct fc *y = f_add(&e->side[1], "SUP-1", "Mia Krystof", "Found the cause");
    recs[1].modified_ms = y->ms;
    cJSON_SetNumberValue(count, 2);
    newest = cJSON_AddNumberToObject(recs[1].fields, COMMENT_NEWEST_FIELD, (double)y->ms);
    e->side[1].listed[0] = 0;
    assert_int_equal(sync_comments(&cs, &e->link, recs, 1, sizeof(e->link), &err), CB_OK);
    assert_string_equal(e->side[1].listed, "SUP-1 ");
    assert_int_equal(count_body(&e->side[0], "Found the cause"), 1);
    /* ... and an edit of it too; the CRM record, whose time did not move, is never listed */
    y->ms += 60000;
    snprintf(y->body, sizeof(y->body), "Found the cause: a full disk");
    recs[1].modified_ms = y->ms;
    cJSON_SetNumberValue(newest, (double)y->ms);
    e->side[1].listed[0] = 0;
    assert_int_equal(sync_comments(&cs, &e->link, recs, 1, sizeof(e->link), &err), CB_OK);
    assert_string_equal(e->side[1].listed, "SUP-1 ");
    assert_int_equal(count_body(&e->side[0], "a full disk"), 1);
    assert_string_equal(e->side[0].listed, "");
    cJSON_Delete(recs[1].fields);
    strbuf_release(&err);
}

static void test_copy_text(void **state)
{
    (void)state;
    struct comment x = {.author = "李伟", .created_ms = 1795759320000, .body = "客户*很急*"};
    char *t = sync_comment_copy_text(&x, "fxiaoke");
    assert_string_equal(t, "Comment by 李伟 on 2026-11-27 06:02 UTC (Fxiaoke):\n\n客户*很急*");
    free(t);
    x.author = NULL;
    t = sync_comment_copy_text(&x, "trello");
    assert_string_equal(t, "Comment on 2026-11-27 06:02 UTC (Trello):\n\n客户*很急*");
    free(t);
}

static void test_trailer(void **state)
{
    (void)state;
    struct strbuf b = STRBUF_INIT;
    comment_trailer_add(&b, "Hello\nworld", "0a1b2c3d");
    assert_string_equal(b.buf, "Hello\nworld\n\n[cb:0a1b2c3d]");
    char *m = comment_trailer_split(b.buf);
    assert_string_equal(m, "0a1b2c3d");
    assert_string_equal(b.buf, "Hello\nworld");
    free(m);
    char quoted[] = "see [cb:0a1b2c3d] above";
    assert_null(comment_trailer_split(quoted)); /* only a line of its own at the end counts */
    assert_string_equal(quoted, "see [cb:0a1b2c3d] above");
    strbuf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_both_ways_once_then_quiet_then_edit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_answer_links_by_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_final_temp_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_comments_and_sides_without_comments, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_new_link_skips_the_record_we_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_run_keeps_others_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newest_comment_time_spares_a_listing, setup, teardown),
        cmocka_unit_test(test_copy_text),
        cmocka_unit_test(test_trailer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
