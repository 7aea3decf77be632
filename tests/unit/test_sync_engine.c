/*
 * Engine scenarios against the in-file fake connector on both sides. Each scenario checks the
 * result a user would see, that a second cycle writes nothing, and (for creates and edits) that a
 * crash at every cache commit followed by a restart converges with no duplicate.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/cache.h"
#include "core/config.h"
#include "core/log.h"
#include "sync/engine.h"
#include "tests/unit/fake_connector.h"
#include "tests/unit/testutil.h"

struct env {
    char *dir;
    char crm[512], trk[512], conf[2048];
};

static const char mapping_text[] =
    "fields = (\n"
    "  { item = \"title\"; crm = \"Subject\"; tracker = \"summary\"; },\n"
    "  { item = \"description\"; crm = \"Description\"; tracker = \"description\"; },\n"
    "  { item = \"status\"; crm = \"Status\"; tracker = \"status\";\n"
    "    crm_values = { new = [\"New\"]; in_progress = [\"Escalated\"]; waiting = [\"On Hold\"];\n"
    "                   done = [\"Closed\"]; rejected = [\"Closed\"]; };\n"
    "    tracker_values = { new = [\"To Do\"]; in_progress = [\"In Progress\"];\n"
    "                       waiting = [\"Waiting\"]; done = [\"Done\"]; rejected = [\"Won't Do\"]; }; },\n"
    "  { item = \"priority\"; crm = \"Priority\"; tracker = \"priority\"; },\n"
    "  { item = \"labels\"; tracker = \"labels\"; },\n"
    "  { item = \"tracker_ref\"; crm = \"Tracker_Key\"; tracker = \"$key\"; direction = \"to_crm\"; }\n"
    ");\n";

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->dir = tu_tmpdir();
    snprintf(e->crm, sizeof(e->crm), "%s/crm.json", e->dir);
    snprintf(e->trk, sizeof(e->trk), "%s/trk.json", e->dir);
    fake_init(e->crm, "CRM");
    fake_init(e->trk, "TRK");
    char map[600];
    snprintf(map, sizeof(map), "%s/map.conf", e->dir);
    assert_int_equal(tu_write_file(map, mapping_text), 0);
    snprintf(e->conf, sizeof(e->conf),
             "state_dir = \"%s/state\";\n"
             "endpoints = { c = { type = \"fake\"; store = \"%s\"; };\n"
             "              t = { type = \"fake\"; store = \"%s\"; }; };\n"
             "pairs = ( { name = \"p\"; crm = { endpoint = \"c\"; }; tracker = { endpoint = \"t\"; };\n"
             "            mapping = \"%s\"; overlap = 0; } );\n",
             e->dir, e->crm, e->trk, map);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    tu_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

/* Runs one cycle in this process; returns the cycle status and fills rep when given. */
static enum cb_status cycle(struct env *e, struct sync_report *out)
{
    struct config *cfg = NULL;
    struct cache *cache = NULL;
    struct sync_pair *p = NULL;
    struct strbuf err = STRBUF_INIT;
    assert_int_equal(config_load_string(e->conf, "test.conf", &cfg, &err), CB_OK);
    char state[600];
    snprintf(state, sizeof(state), "%s/state", e->dir);
    assert_int_equal(cache_open(state, &cache, &err), CB_OK);
    assert_int_equal(sync_pair_open(cfg, &cfg->pairs[0], cache, &p, &err), CB_OK);
    struct sync_report rep;
    sync_report_init(&rep);
    enum cb_status st = sync_pair_cycle(p, &rep, &err);
    if (st != CB_OK)
        fprintf(stderr, "cycle: %s\n", err.buf);
    if (out) {
        sync_report_init(out);
        sync_report_add(out, &rep);
    }
    sync_report_release(&rep);
    sync_pair_close(p);
    cache_close(cache);
    config_free(cfg);
    strbuf_release(&err);
    return st;
}

static int writes(struct env *e)
{
    return fake_writes(e->crm) + fake_writes(e->trk);
}

static const char *str_field(cJSON *f, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, name));
}

/* Asserts that a second cycle changes nothing on either side. */
static void assert_quiet(struct env *e)
{
    int w = writes(e);
    struct sync_report rep;
    assert_int_equal(cycle(e, &rep), CB_OK);
    assert_int_equal(writes(e), w);
    assert_int_equal(rep.failed, 0);
    sync_report_release(&rep);
}

static size_t count_in_cache(struct env *e, int what)
{
    char state[600];
    snprintf(state, sizeof(state), "%s/state", e->dir);
    struct cache *cache;
    struct cache_txn *t;
    struct strbuf err = STRBUF_INIT;
    assert_int_equal(cache_open(state, &cache, &err), CB_OK);
    assert_int_equal(cache_txn_begin(cache, 1, &t, &err), CB_OK);
    size_t n = 0;
    if (what == 0) {
        n = cache_link_count(t, "p");
    } else if (what == 1) {
        struct intent *in = NULL;
        assert_int_equal(cache_intent_list(t, "p", &in, &n), CB_OK);
        for (size_t i = 0; i < n; i++)
            intent_release(&in[i]);
        free(in);
    } else {
        struct conflict *cs = NULL;
        assert_int_equal(cache_conflict_list(t, "p", 1, &cs, &n), CB_OK);
        for (size_t i = 0; i < n; i++)
            conflict_release(&cs[i]);
        free(cs);
    }
    cache_txn_abort(t);
    cache_close(cache);
    strbuf_release(&err);
    return n;
}

static char *linked_tracker_id(struct env *e, const char *crm_id)
{
    cJSON *f = fake_fields(e->crm, crm_id);
    const char *key = str_field(f, "Tracker_Key");
    char *id = NULL;
    if (key) {
        /* the fake's keys are PREFIX-N and its ids PREFIX000N */
        int n = (int)strtol(key + 4, NULL, 10);
        id = malloc(16);
        snprintf(id, 16, "TRK%04d", n);
    }
    cJSON_Delete(f);
    return id;
}

static void test_new_case_becomes_issue(void **state)
{
    struct env *e = *state;
    char *id = fake_human_create(e->crm, "{\"Subject\":\"Export is slow\",\"Status\":\"New\","
                                         "\"Priority\":\"High\",\"Description\":\"* CSV\\n* XLSX\"}");
    struct sync_report rep;
    assert_int_equal(cycle(e, &rep), CB_OK);
    assert_int_equal(rep.created[1], 1);
    assert_int_equal(rep.failed, 0);
    sync_report_release(&rep);
    assert_int_equal(fake_count(e->trk), 1);
    char *tid = linked_tracker_id(e, id);
    assert_non_null(tid);
    cJSON *t = fake_fields(e->trk, tid);
    assert_string_equal(str_field(t, "summary"), "Export is slow");
    assert_string_equal(str_field(t, "status"), "To Do");
    assert_string_equal(str_field(t, "priority"), "High");
    assert_string_equal(str_field(t, "description"), "* CSV\n* XLSX");
    cJSON_Delete(t);
    assert_int_equal(count_in_cache(e, 0), 1);
    assert_int_equal(count_in_cache(e, 1), 0);
    assert_quiet(e);
    assert_quiet(e);
    free(tid);
    free(id);
}

static void test_status_flows_back_without_echo(void **state)
{
    struct env *e = *state;
    char *id = fake_human_create(e->crm, "{\"Subject\":\"Add SSO\",\"Status\":\"New\"}");
    assert_int_equal(cycle(e, NULL), CB_OK);
    char *tid = linked_tracker_id(e, id);
    fake_human_edit(e->trk, tid, "{\"status\":\"Done\"}");
    int w = writes(e);
    assert_int_equal(cycle(e, NULL), CB_OK);
    assert_int_equal(writes(e), w + 1); /* exactly one write: the CRM status */
    cJSON *c = fake_fields(e->crm, id);
    assert_string_equal(str_field(c, "Status"), "Closed");
    cJSON_Delete(c);
    assert_quiet(e);
    free(tid);
    free(id);
}

static void test_different_fields_both_survive(void **state)
{
    struct env *e = *state;
    char *id = fake_human_create(e->crm, "{\"Subject\":\"Dark mode\",\"Priority\":\"Low\"}");
    assert_int_equal(cycle(e, NULL), CB_OK);
    char *tid = linked_tracker_id(e, id);
    fake_human_edit(e->crm, id, "{\"Priority\":\"High\"}");
    fake_human_edit(e->trk, tid, "{\"summary\":\"Dark mode for the web app\"}");
    assert_int_equal(cycle(e, NULL), CB_OK);
    cJSON *c = fake_fields(e->crm, id), *t = fake_fields(e->trk, tid);
    assert_string_equal(str_field(c, "Subject"), "Dark mode for the web app");
    assert_string_equal(str_field(c, "Priority"), "High");
    assert_string_equal(str_field(t, "summary"), "Dark mode for the web app");
    assert_string_equal(str_field(t, "priority"), "High");
    cJSON_Delete(c);
    cJSON_Delete(t);
    assert_int_equal(count_in_cache(e, 2), 0);
    assert_quiet(e);
    free(tid);
    free(id);
}

static void test_same_field_conflict_is_held(void **state)
{
    struct env *e = *state;
    char *id = fake_human_create(e->crm, "{\"Subject\":\"Report\",\"Priority\":\"Low\"}");
    assert_int_equal(cycle(e, NULL), CB_OK);
    char *tid = linked_tracker_id(e, id);
    fake_human_edit(e->crm, id, "{\"Subject\":\"Monthly report\",\"Priority\":\"High\"}");
    fake_human_edit(e->trk, tid, "{\"summary\":\"Weekly report\"}");
    struct sync_report rep;
    assert_int_equal(cycle(e, &rep), CB_OK);
    assert_int_equal(rep.conflicts, 1);
    sync_report_release(&rep);
    cJSON *c = fake_fields(e->crm, id), *t = fake_fields(e->trk, tid);
    assert_string_equal(str_field(c, "Subject"), "Monthly report");
    assert_string_equal(str_field(t, "summary"), "Weekly report");
    assert_string_equal(str_field(t, "priority"), "High"); /* the other field still synced */
    cJSON_Delete(c);
    cJSON_Delete(t);
    assert_int_equal(count_in_cache(e, 2), 1);
    assert_quiet(e);
    assert_int_equal(count_in_cache(e, 2), 1); /* no second copy of the same conflict */
    free(tid);
    free(id);
}

static void test_lost_create_response_no_duplicate(void **state)
{
    struct env *e = *state;
    char *id = fake_human_create(e->crm, "{\"Subject\":\"Invoice PDF\",\"Status\":\"New\"}");
    fake_set(e->trk, "drop_creates", 1);
    struct sync_report rep;
    assert_int_equal(cycle(e, &rep), CB_OK);
    assert_int_equal(rep.created[1], 0);
    assert_int_equal(rep.postponed, 1);
    sync_report_release(&rep);
    assert_int_equal(fake_count(e->trk), 1); /* the create did land */
    assert_int_equal(count_in_cache(e, 1), 1);
    assert_int_equal(cycle(e, &rep), CB_OK);
    assert_int_equal(rep.linked, 1);
    sync_report_release(&rep);
    assert_int_equal(fake_count(e->trk), 1);
    assert_int_equal(count_in_cache(e, 0), 1);
    assert_int_equal(count_in_cache(e, 1), 0);
    char *tid = linked_tracker_id(e, id);
    assert_non_null(tid);
    assert_quiet(e);
    free(tid);
    free(id);
}

static void test_temporary_update_failure_retried(void **state)
{
    struct env *e = *state;
    char *id = fake_human_create(e->crm, "{\"Subject\":\"Audit log\"}");
    assert_int_equal(cycle(e, NULL), CB_OK);
    char *tid = linked_tracker_id(e, id);
    fake_human_edit(e->trk, tid, "{\"status\":\"In Progress\"}");
    fake_set(e->crm, "fail_updates_temp", 1);
    struct sync_report rep;
    assert_int_equal(cycle(e, &rep), CB_OK);
    assert_int_equal(rep.postponed, 1);
    sync_report_release(&rep);
    assert_int_equal(cycle(e, NULL), CB_OK); /* the cursor did not pass the change */
    cJSON *c = fake_fields(e->crm, id);
    assert_string_equal(str_field(c, "Status"), "Escalated");
    cJSON_Delete(c);
    assert_quiet(e);
    free(tid);
    free(id);
}

static void test_final_failure_reported(void **state)
{
    struct env *e = *state;
    char *id = fake_human_create(e->crm, "{\"Subject\":\"Bulk edit\"}");
    assert_int_equal(cycle(e, NULL), CB_OK);
    fake_human_edit(e->crm, id, "{\"Subject\":\"Bulk edit v2\"}");
    fake_set(e->trk, "fail_updates_final", 1);
    struct sync_report rep;
    assert_int_equal(cycle(e, &rep), CB_OK);
    assert_int_equal(rep.failed, 1);
    assert_non_null(strstr(rep.problems.buf, "cannot update tracker"));
    sync_report_release(&rep);
    free(id);
}

/* A later case (and its issue) moves the CRM cursor past every earlier case: the fake lists
 * what changed at or after it. */
static void move_crm_cursor(struct env *e)
{
    free(fake_human_create(e->crm, "{\"Subject\":\"Later case\"}"));
    assert_int_equal(cycle(e, NULL), CB_OK);
    assert_quiet(e);
}

/* A case whose issue changes, while the CRM's listing (complete, no search lag) does not show the
 * case, is taken as the base says and written without a read. The CRM refusing that write
 * sends it back to a read by id and one more merge, which here succeeds; refused twice, it is
 * reported as a refused update always was, and the next cycle brings the change. */
static void test_unlisted_case_refusing_the_write_is_read(void **state)
{
    struct env *e = *state;
    char *id = fake_human_create(e->crm, "{\"Subject\":\"Audit log\",\"Status\":\"New\"}");
    assert_int_equal(cycle(e, NULL), CB_OK);
    char *tid = linked_tracker_id(e, id);
    move_crm_cursor(e);
    fake_human_edit(e->trk, tid, "{\"status\":\"In Progress\"}");
    fake_set(e->crm, "fail_updates_final", 1);
    struct sync_report rep;
    assert_int_equal(cycle(e, &rep), CB_OK);
    assert_int_equal(rep.failed, 0);
    assert_int_equal(rep.updated[SIDE_CRM], 1);
    sync_report_release(&rep);
    cJSON *c = fake_fields(e->crm, id);
    assert_string_equal(str_field(c, "Status"), "Escalated");
    assert_string_equal(str_field(c, "Subject"), "Audit log");
    cJSON_Delete(c);
    move_crm_cursor(e);
    fake_human_edit(e->trk, tid, "{\"status\":\"Done\"}");
    fake_set(e->crm, "fail_updates_final", 2);
    assert_int_equal(cycle(e, &rep), CB_OK);
    assert_int_equal(rep.failed, 1);
    assert_non_null(strstr(rep.problems.buf, "cannot update crm"));
    sync_report_release(&rep);
    assert_int_equal(cycle(e, NULL), CB_OK); /* the cursor did not pass the change */
    c = fake_fields(e->crm, id);
    assert_string_equal(str_field(c, "Status"), "Closed");
    cJSON_Delete(c);
    assert_quiet(e);
    free(tid);
    free(id);
}

/* A side whose writer starts from the record as read (write_reads_current: Jira, Trello) is
 * always read: a refused write to it is reported at once, as before. */
static void test_unlisted_issue_is_read(void **state)
{
    struct env *e = *state;
    fake_reads_current(1);
    char *id = fake_human_create(e->crm, "{\"Subject\":\"Audit log\"}");
    assert_int_equal(cycle(e, NULL), CB_OK);
    char *other = fake_human_create(e->trk, "{\"summary\":\"Later issue\"}");
    assert_int_equal(cycle(e, NULL), CB_OK);
    assert_quiet(e);
    fake_human_edit(e->crm, id, "{\"Subject\":\"Audit log v2\"}");
    fake_set(e->trk, "fail_updates_final", 1);
    struct sync_report rep;
    assert_int_equal(cycle(e, &rep), CB_OK);
    assert_int_equal(rep.failed, 1);
    assert_non_null(strstr(rep.problems.buf, "cannot update tracker"));
    sync_report_release(&rep);
    fake_reads_current(0);
    free(other);
    free(id);
}

/* Runs a cycle in a child that SIGKILLs itself before its (k+1)-th cache commit. Returns 1
 * when the child was killed, 0 when it finished first. */
static int crash_cycle(struct env *e, long k)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        log_set_level(LOG_ERROR);
        cache_crash_after_commits(k);
        enum cb_status st = cycle(e, NULL);
        _exit(st == CB_OK ? 0 : 1);
    }
    int ws;
    waitpid(pid, &ws, 0);
    if (WIFSIGNALED(ws)) {
        assert_int_equal(WTERMSIG(ws), SIGKILL);
        return 1;
    }
    assert_true(WIFEXITED(ws));
    return 0;
}

static void crash_scenario(struct env *e, void (*prepare)(struct env *), void (*verify)(struct env *))
{
    for (long k = 0;; k++) {
        setup((void **)&e);
        prepare(e);
        int killed = crash_cycle(e, k);
        for (int i = 0; i < 3; i++)
            assert_int_equal(cycle(e, NULL), CB_OK);
        verify(e);
        assert_quiet(e);
        teardown((void **)&e);
        if (!killed)
            break;
        assert_true(k < 200);
    }
}

static void prep_three_new(struct env *e)
{
    for (int i = 0; i < 3; i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "{\"Subject\":\"Case %d\",\"Status\":\"New\"}", i);
        free(fake_human_create(e->crm, buf));
    }
}

static void verify_three_linked(struct env *e)
{
    assert_int_equal(fake_count(e->trk), 3);
    assert_int_equal(count_in_cache(e, 0), 3);
    assert_int_equal(count_in_cache(e, 1), 0);
    for (int i = 0; i < 3; i++) {
        char subj[32], id[16];
        snprintf(subj, sizeof(subj), "Case %d", i);
        char *tid = fake_find(e->trk, "summary", subj);
        assert_non_null(tid);
        free(tid);
        snprintf(id, sizeof(id), "CRM%04d", i + 1);
        char *linked = linked_tracker_id(e, id);
        assert_non_null(linked);
        free(linked);
    }
}

static void test_crash_at_every_commit_creates(void **state)
{
    (void)state;
    crash_scenario(NULL, prep_three_new, verify_three_linked);
}

static void prep_edits(struct env *e)
{
    prep_three_new(e);
    assert_int_equal(cycle(e, NULL), CB_OK);
    fake_human_edit(e->crm, "CRM0001", "{\"Priority\":\"High\"}");
    fake_human_edit(e->trk, "TRK0002", "{\"status\":\"Done\"}");
    fake_human_edit(e->crm, "CRM0003", "{\"Subject\":\"Case 3 renamed\"}");
    fake_human_edit(e->trk, "TRK0003", "{\"priority\":\"Low\"}");
}

static void verify_edits(struct env *e)
{
    cJSON *t1 = fake_fields(e->trk, "TRK0001"), *c2 = fake_fields(e->crm, "CRM0002"),
          *t3 = fake_fields(e->trk, "TRK0003"), *c3 = fake_fields(e->crm, "CRM0003");
    assert_string_equal(str_field(t1, "priority"), "High");
    assert_string_equal(str_field(c2, "Status"), "Closed");
    assert_string_equal(str_field(t3, "summary"), "Case 3 renamed");
    assert_string_equal(str_field(c3, "Priority"), "Low");
    cJSON_Delete(t1);
    cJSON_Delete(c2);
    cJSON_Delete(t3);
    cJSON_Delete(c3);
    assert_int_equal(fake_count(e->trk), 3);
    assert_int_equal(fake_count(e->crm), 3);
    assert_int_equal(count_in_cache(e, 2), 0);
}

static void test_crash_at_every_commit_edits(void **state)
{
    (void)state;
    crash_scenario(NULL, prep_edits, verify_edits);
}

int main(void)
{
    fake_register();
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_case_becomes_issue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlisted_case_refusing_the_write_is_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unlisted_issue_is_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_flows_back_without_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_different_fields_both_survive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_field_conflict_is_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_create_response_no_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_temporary_update_failure_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_final_failure_reported, setup, teardown),
        cmocka_unit_test(test_crash_at_every_commit_creates),
        cmocka_unit_test(test_crash_at_every_commit_edits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
