/*
 * End to end, comments both ways: the crmbridge binary against the simulators. A comment written
 * on either side of a linked pair appears exactly once on the other side with its author and
 * time, a second run writes nothing, an edit updates the copy, and neither a lost answer nor a
 * crash at any commit duplicates a comment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "tests/unit/e2e.h"

/* ---------------------------------------------------------------- zoho <-> jira */

static char *linked_case(struct e2e *e, char **key)
{
    char *id = e2e_seed_case(e, "{\"Subject\":\"Report export fails\",\"Status\":\"New\"}");
    assert_int_equal(e2e_sync_once(e), 0);
    *key = e2e_linked_key(e, id);
    assert_non_null(*key);
    return id;
}

static void add_jira_comment(struct e2e *e, const char *key, const char *text)
{
    cJSON_Delete(sim_ctl(
        &e->jira, "POST", "/_sim/edit",
        "{\"key\":\"%s\",\"fields\":{\"comment\":\"%s\"},\"user\":\"Mia Krystof\"}", key, text));
}

/* Asserts arr (deleted here) holds n items and exactly one whose string field f contains text. */
static void assert_once_in(cJSON *arr, int n, const char *f, const char *text)
{
    assert_int_equal(cJSON_GetArraySize(arr), n);
    assert_int_equal(e2e_count_with(arr, f, text, NULL), 1);
    cJSON_Delete(arr);
}

static const char *first_id_with(const cJSON *arr, const char *f, const char *needle)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(it, f));
        const cJSON *id = cJSON_GetObjectItem(it, "id") ? cJSON_GetObjectItem(it, "id")
                                                        : cJSON_GetObjectItem(it, "_id");
        if (s && strstr(s, needle))
            return cJSON_GetStringValue(id); /* Fxiaoke rows name it _id */
    }
    return NULL;
}

static void test_zoho_jira_both_ways_edit_quiet(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = linked_case(e, &key);
    e2e_add_note(e, id, "Customer says it fails on Safari too");
    add_jira_comment(e, key, "Reproduced, looking at the CSV writer");
    assert_int_equal(e2e_sync_once(e), 0);

    cJSON *jc = e2e_jira_comments(e, key), *zn = e2e_zoho_notes(e, id);
    assert_int_equal(cJSON_GetArraySize(jc), 2);
    assert_int_equal(e2e_count_with(jc, "text", "Comment by Li Wei on ", " UTC (Zoho CRM):",
                                    "Customer says it fails on Safari too", NULL),
                     1);
    assert_int_equal(cJSON_GetArraySize(zn), 2);
    assert_int_equal(e2e_count_with(zn, "Note_Content", "Comment by Mia Krystof on ",
                                    "(Jira):", "Reproduced, looking at the CSV writer", NULL),
                     1);
    /* the Zoho copy carries its marker as a short trailer; the Jira copy as a property */
    assert_int_equal(e2e_count_with(zn, "Note_Content", "[cb:", NULL), 1);
    assert_int_equal(e2e_count_with(jc, "text", "[cb:", NULL), 0);
    cJSON_Delete(jc);
    cJSON_Delete(zn);
    e2e_assert_quiet(e);

    /* edits on both sides update the copies, and nothing is added */
    zn = e2e_zoho_notes(e, id);
    jc = e2e_jira_comments(e, key);
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/note_edit",
                         "{\"id\":\"%s\",\"text\":\"Fails on Safari 17 and Firefox\"}",
                         first_id_with(zn, "Note_Content", "Customer says")));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/comment_edit",
                         "{\"key\":\"%s\",\"id\":\"%s\",\"text\":\"Fixed in the CSV writer\"}", key,
                         first_id_with(jc, "text", "Reproduced")));
    cJSON_Delete(jc);
    cJSON_Delete(zn);
    assert_int_equal(e2e_sync_once(e), 0);
    jc = e2e_jira_comments(e, key);
    zn = e2e_zoho_notes(e, id);
    assert_int_equal(cJSON_GetArraySize(jc), 2);
    assert_int_equal(cJSON_GetArraySize(zn), 2);
    assert_int_equal(
        e2e_count_with(jc, "text", "Comment by Li Wei", "Fails on Safari 17 and Firefox", NULL), 1);
    assert_int_equal(e2e_count_with(zn, "Note_Content", "Comment by Mia Krystof",
                                    "Fixed in the CSV writer", NULL),
                     1);
    cJSON_Delete(jc);
    cJSON_Delete(zn);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

/* The answer to a comment create is lost: the next run finds the copy by its marker. */
static void test_zoho_jira_lost_comment_answer(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = linked_case(e, &key);
    e2e_add_note(e, id, "Please call the customer back");
    cJSON_Delete(
        sim_ctl(&e->jira, "POST", "/_sim/faults",
                "{\"rules\":[{\"method\":\"POST\",\"path\":\"/rest/api/3/issue/[^/]+/comment\","
                "\"kind\":\"drop_response\",\"count\":1}]}"));
    char *out = NULL;
    e2e_run(e, &out, "sync", "--once");
    assert_non_null(strstr(out, "postponed copy of comment"));
    free(out);
    cJSON *jc = e2e_jira_comments(e, key);
    assert_int_equal(cJSON_GetArraySize(jc), 1); /* it landed; its answer did not */
    cJSON_Delete(jc);
    assert_int_equal(e2e_sync_once(e), 0);
    assert_once_in(e2e_jira_comments(e, key), 1, "text", "Please call the customer back");
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

/* A crash at every commit of the run that copies comments: never a duplicate. */
static void test_zoho_jira_crash_at_every_commit(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = linked_case(e, &key);
    e2e_add_note(e, id, "First note from the CRM");
    add_jira_comment(e, key, "First comment from Jira");
    int done = 0, crashed = 0;
    for (int n = 0; n < 40 && !done; n++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", n);
        setenv("CRMBRIDGE_CRASH_AFTER_COMMITS", v, 1);
        char *out = NULL;
        int rc = tu_run_crmbridge(&out, "-c", e->conf, "sync", "--once", (char *)NULL);
        free(out);
        done = rc == 0;
        crashed += rc == 137;
        cJSON *jc = e2e_jira_comments(e, key), *zn = e2e_zoho_notes(e, id);
        assert_true(cJSON_GetArraySize(jc) <= 2);
        assert_true(cJSON_GetArraySize(zn) <= 2);
        cJSON_Delete(jc);
        cJSON_Delete(zn);
    }
    unsetenv("CRMBRIDGE_CRASH_AFTER_COMMITS");
    assert_true(done);
    fprintf(stderr, "comment copies survived %d crashes\n", crashed);
    assert_true(crashed >= 4); /* intent, link, and both directions: every step was hit */
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *jc = e2e_jira_comments(e, key), *zn = e2e_zoho_notes(e, id);
    assert_int_equal(e2e_count_with(jc, "text", "First note from the CRM", NULL), 1);
    assert_int_equal(e2e_count_with(zn, "Note_Content", "First comment from Jira", NULL), 1);
    assert_int_equal(cJSON_GetArraySize(jc), 2);
    assert_int_equal(cJSON_GetArraySize(zn), 2);
    cJSON_Delete(jc);
    cJSON_Delete(zn);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

/* A title edit on a Jira issue with comments reads no comments (the issue comes with their count
 * and newest time); a comment written later is still read and copied. */
static void test_zoho_jira_title_edit_reads_no_comments(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = linked_case(e, &key);
    add_jira_comment(e, key, "Asked the customer for a screenshot");
    assert_int_equal(e2e_sync_once(e), 0);
    assert_once_in(e2e_zoho_notes(e, id), 1, "Note_Content", "Asked the customer for a screenshot");

    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"summary\":\"Report export fails on "
                         "Safari\"},\"user\":\"Mia Krystof\"}",
                         key));
    sim_clear_log(&e->jira);
    assert_int_equal(e2e_sync_once(e), 0);
    cJSON *c = e2e_zoho_case(e, id); /* the cycle did read the edited issue */
    assert_string_equal(e2e_zfield(c, "Subject"), "Report export fails on Safari");
    cJSON_Delete(c);
    assert_int_equal(e2e_jira_comment_reads(e), 0);

    add_jira_comment(e, key, "Screenshot received");
    sim_clear_log(&e->jira);
    assert_int_equal(e2e_sync_once(e), 0);
    assert_int_equal(e2e_jira_comment_reads(e), 1);
    assert_once_in(e2e_zoho_notes(e, id), 2, "Note_Content", "Screenshot received");
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

/* ---------------------------------------------------------------- the other pairs */

/* Any CRM (Fxiaoke or Zoho) with any tracker (Trello or Jira): the pairs besides zoho <-> jira,
 * through the same few verbs: link a record, comment, edit a comment, read the comments. */
#define FX_USER "FSUID_00000000000000000000000000000001"

struct gp {
    struct sim crm, trk;
    int fx, jira; /* which services */
    char *dir;
    char conf[600];
    char board[32];
};

static void gp_endpoints(struct gp *t, char *out, size_t size)
{
    int n =
        t->fx ? snprintf(
                    out, size,
                    "  crm = { type = \"fxiaoke\"; api_url = \"%s\"; app_id = \"FSAID_SIMAPP01\";\n"
                    "    app_secret = \"env:CB_TEST_FX_SECRET\"; permanent_code = "
                    "\"file:%s/fx.code\";\n"
                    "    user_id = \"" FX_USER "\"; rate_limit = 5000; };\n",
                    t->crm.base, t->dir)
              : snprintf(out, size,
                         "  crm = { type = \"zoho\"; accounts_url = \"%s\"; api_url = \"%s\";\n"
                         "    client_id = \"1000.SIMCLIENT\"; client_secret = "
                         "\"env:CB_TEST_ZOHO_SECRET\";\n"
                         "    refresh_token = \"file:%s/zoho.token\"; };\n",
                         t->crm.base, t->crm.base, t->dir);
    if (t->jira)
        snprintf(out + n, size - (size_t)n,
                 "  trk = { type = \"jira\"; api_url = \"%s\"; email = \"bot@acme.test\";\n"
                 "    api_token = \"env:CB_TEST_JIRA_TOKEN\"; search_lag = 0; };\n",
                 t->trk.base);
    else
        snprintf(out + n, size - (size_t)n,
                 "  trk = { type = \"trello\"; api_url = \"%s\";\n"
                 "    key = \"env:CB_TEST_TRELLO_KEY\"; token = \"env:CB_TEST_TRELLO_TOKEN\"; };\n",
                 t->trk.base);
}

static void gp_secrets(struct gp *t)
{
    char path[700];
    snprintf(path, sizeof(path), t->fx ? "%s/fx.code" : "%s/zoho.token", t->dir);
    assert_int_equal(
        tu_write_file(path, t->fx ? "sim-permanent-code\n" : "1000.sim-refresh-token\n"), 0);
    setenv("CB_TEST_FX_SECRET", "sim-app-secret", 1);
    setenv("CB_TEST_ZOHO_SECRET", "sim-client-secret", 1);
    setenv("CB_TEST_JIRA_TOKEN", "sim-jira-token", 1);
    if (t->fx)
        cJSON_Delete(sim_ctl(&t->crm, "POST", "/_sim/config", "{\"rate_calls\":5000}"));
    if (t->jira) {
        cJSON_Delete(sim_ctl(&t->trk, "POST", "/_sim/config",
                             "{\"rate\":{\"GET\":3000,\"POST\":3000,\"PUT\":3000}}"));
        return;
    }
    cJSON *cfg = sim_ctl(&t->trk, "GET", "/_sim/config", NULL);
    setenv("CB_TEST_TRELLO_KEY", cJSON_GetStringValue(cJSON_GetObjectItem(cfg, "key")), 1);
    setenv("CB_TEST_TRELLO_TOKEN", cJSON_GetStringValue(cJSON_GetObjectItem(cfg, "token")), 1);
    cJSON_Delete(cfg);
    cJSON *b =
        sim_ctl(&t->trk, "POST", "/_sim/seed",
                "{\"new_board\":{\"name\":\"交付看板\",\"lists\":[\"Inbox\",\"Doing\",\"Done\"]}}");
    snprintf(t->board, sizeof(t->board), "%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(b, "board")));
    cJSON_Delete(b);
}

static int gp_setup(void **state, int fx, int jira)
{
    struct gp *t = calloc(1, sizeof(*t));
    t->fx = fx;
    t->jira = jira;
    t->dir = tu_tmpdir();
    assert_int_equal(sim_start(&t->crm, fx ? "fxiaoke" : "zoho", NULL), 0);
    assert_int_equal(sim_start(&t->trk, jira ? "jira" : "trello", NULL), 0);
    gp_secrets(t);
    char eps[2048], side[256], text[4096];
    gp_endpoints(t, eps, sizeof(eps));
    if (jira)
        snprintf(side, sizeof(side), "project = \"SUP\"; issue_type = \"Task\";");
    else
        snprintf(side, sizeof(side), "board = \"%s\"; list = \"Inbox\";", t->board);
    snprintf(t->conf, sizeof(t->conf), "%s/crmbridge.conf", t->dir);
    snprintf(text, sizeof(text),
             "state_dir = \"%s/state\";\nendpoints = {\n%s};\n"
             "pairs = ( { name = \"cases\";\n  crm = { endpoint = \"crm\"; %s = \"%s\"; };\n"
             "  tracker = { endpoint = \"trk\"; %s };\n  overlap = 5; } );\n",
             t->dir, eps, fx ? "object" : "module", fx ? "CasesObj" : "Cases", side);
    assert_int_equal(tu_write_file(t->conf, text), 0);
    *state = t;
    return 0;
}

static int setup_fx_trello(void **state)
{
    return gp_setup(state, 1, 0);
}

static int setup_zoho_trello(void **state)
{
    return gp_setup(state, 0, 0);
}

static int setup_fx_jira(void **state)
{
    return gp_setup(state, 1, 1);
}

static int gp_teardown(void **state)
{
    struct gp *t = *state;
    sim_stop(&t->crm);
    sim_stop(&t->trk);
    tu_rmrf(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

static int gp_sync(struct gp *t)
{
    char *out = NULL;
    int rc = tu_run_crmbridge(&out, "-c", t->conf, "sync", "--once", (char *)NULL);
    if (rc != 0)
        fprintf(stderr, "crmbridge sync --once -> %d:\n%s\n", rc, out);
    free(out);
    return rc;
}

/* Requests that wrote something since the last call (Fxiaoke: creates and updates, as every call
 * is a POST; the others as e2e_writes counts them), clearing the logs. */
static int gp_writes(struct gp *t)
{
    int n = e2e_writes(&t->trk);
    if (!t->fx) {
        n += e2e_writes(&t->crm);
    } else {
        cJSON *log = sim_call(&t->crm, "GET", "/_sim/log", NULL, NULL);
        const cJSON *en;
        cJSON_ArrayForEach(en, log)
        {
            const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(en, "path"));
            n += strstr(p, "/create") || strstr(p, "/update");
        }
        cJSON_Delete(log);
    }
    sim_clear_log(&t->crm);
    sim_clear_log(&t->trk);
    return n;
}

static void gp_assert_quiet(struct gp *t)
{
    (void)gp_writes(t);
    assert_int_equal(gp_sync(t), 0);
    assert_int_equal(gp_writes(t), 0);
}

/* A CRM record linked to a tracker record; returns the CRM id, *trk gets the tracker's id. */
static char *gp_linked(struct gp *t, char **trk)
{
    cJSON *r = t->fx ? sim_ctl(&t->crm, "POST", "/_sim/seed",
                               "{\"object\":\"CasesObj\",\"records\":[{\"name\":\"导出报表太慢\","
                               "\"status\":\"新建\"}]}")
                     : sim_ctl(&t->crm, "POST", "/_sim/seed",
                               "{\"module\":\"Cases\",\"records\":[{\"Subject\":\"Export is slow\","
                               "\"Status\":\"New\"}]}");
    char *id = strdup(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "ids"), 0)));
    cJSON_Delete(r);
    assert_int_equal(gp_sync(t), 0);
    char path[96];
    snprintf(path, sizeof(path), t->jira ? "/_sim/issues" : "/_sim/cards?board=%s", t->board);
    cJSON *all = sim_ctl(&t->trk, "GET", path, NULL);
    assert_int_equal(cJSON_GetArraySize(all), 1);
    *trk = strdup(cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetArrayItem(all, 0), t->jira ? "key" : "id")));
    cJSON_Delete(all);
    return id;
}

static const char *crm_text_field(const struct gp *t)
{
    return t->fx ? "active_record_content" : "Note_Content";
}

static void crm_comment(struct gp *t, const char *id, const char *text)
{
    if (t->fx)
        cJSON_Delete(sim_ctl(&t->crm, "POST", "/_sim/seed",
                             "{\"object\":\"ActiveRecordObj\",\"user\":\"李伟\",\"records\":[{"
                             "\"active_record_content\":\"%s\",\"related_object_data\":"
                             "[{\"describe_api_name\":\"CasesObj\",\"id\":\"%s\"}]}]}",
                             text, id));
    else
        cJSON_Delete(sim_ctl(
            &t->crm, "POST", "/_sim/note",
            "{\"module\":\"Cases\",\"id\":\"%s\",\"text\":\"%s\",\"user\":\"李伟\"}", id, text));
}

static void crm_comment_edit(struct gp *t, const char *comment_id, const char *text)
{
    if (t->fx)
        cJSON_Delete(sim_ctl(&t->crm, "POST", "/_sim/edit",
                             "{\"object\":\"ActiveRecordObj\",\"id\":\"%s\",\"fields\":"
                             "{\"active_record_content\":\"%s\"},\"user\":\"李伟\"}",
                             comment_id, text));
    else
        cJSON_Delete(sim_ctl(&t->crm, "POST", "/_sim/note_edit",
                             "{\"id\":\"%s\",\"text\":\"%s\",\"user\":\"李伟\"}", comment_id,
                             text));
}

/* The CRM record's comments as the simulator keeps them (their text in crm_text_field). */
static cJSON *crm_comments(struct gp *t, const char *id)
{
    char path[200];
    if (!t->fx) {
        snprintf(path, sizeof(path), "/_sim/notes?module=Cases&id=%s", id);
        return sim_ctl(&t->crm, "GET", path, NULL);
    }
    cJSON *r = sim_ctl(&t->crm, "GET", "/_sim/records?object=ActiveRecordObj", NULL);
    cJSON *d = cJSON_DetachItemFromObject(r, "data");
    cJSON_Delete(r);
    return d;
}

static void trk_comment(struct gp *t, const char *rec, const char *text)
{
    if (t->jira)
        cJSON_Delete(sim_ctl(&t->trk, "POST", "/_sim/edit",
                             "{\"key\":\"%s\",\"fields\":{\"comment\":\"%s\"},"
                             "\"user\":\"Mia Krystof\"}",
                             rec, text));
    else
        cJSON_Delete(sim_ctl(&t->trk, "POST", "/_sim/edit",
                             "{\"card\":\"%s\",\"comment\":\"%s\",\"user\":\"Mia Krystof\"}", rec,
                             text));
}

static void trk_comment_edit(struct gp *t, const char *rec, const char *comment_id,
                             const char *text)
{
    if (t->jira)
        cJSON_Delete(sim_ctl(&t->trk, "POST", "/_sim/comment_edit",
                             "{\"key\":\"%s\",\"id\":\"%s\",\"text\":\"%s\"}", rec, comment_id,
                             text));
    else
        cJSON_Delete(sim_ctl(&t->trk, "POST", "/_sim/comment_edit",
                             "{\"action\":\"%s\",\"text\":\"%s\"}", comment_id, text));
}

/* The tracker record's comments ({id, author, text}). */
static cJSON *trk_comments(struct gp *t, const char *rec)
{
    char path[96];
    if (!t->jira) {
        snprintf(path, sizeof(path), "/_sim/comments?card=%s", rec);
        return sim_ctl(&t->trk, "GET", path, NULL);
    }
    cJSON *all = sim_ctl(&t->trk, "GET", "/_sim/issues", NULL);
    cJSON *c = cJSON_DetachItemFromObject(cJSON_GetArrayItem(all, 0), "comments");
    cJSON_Delete(all);
    return c;
}

static void test_pair_both_ways_edit_quiet(void **state)
{
    struct gp *t = *state;
    const char *crm_label = t->fx ? " UTC (Fxiaoke):" : " UTC (Zoho CRM):";
    const char *trk_label = t->jira ? " UTC (Jira):" : " UTC (Trello):";
    char *trk = NULL, *id = gp_linked(t, &trk);
    crm_comment(t, id, "客户电话回访：导出仍然很慢");
    trk_comment(t, trk, "Profiling the export **now**");
    assert_int_equal(gp_sync(t), 0);

    cJSON *tc = trk_comments(t, trk), *cc = crm_comments(t, id);
    assert_int_equal(cJSON_GetArraySize(tc), 2);
    assert_int_equal(e2e_count_with(tc, "text", "Comment by 李伟 on ", crm_label,
                                    "客户电话回访：导出仍然很慢", NULL),
                     1);
    assert_int_equal(cJSON_GetArraySize(cc), 2);
    /* plain-text CRMs keep the words of the markdown and a short marker trailer */
    assert_int_equal(
        e2e_count_with(cc, crm_text_field(t), "Comment by Mia Krystof on ", trk_label,
                       /* Trello's markdown, Jira's literal asterisks */
                       t->jira ? "Profiling the export **now**" : "Profiling the export now",
                       "[cb:", NULL),
        1);
    if (!t->jira) /* Trello hides its marker in a markdown line that renders as nothing */
        assert_int_equal(e2e_count_with(tc, "text", "[//]: # (crmbridge:", NULL), 1);
    gp_assert_quiet(t);

    crm_comment_edit(t, first_id_with(cc, crm_text_field(t), "客户电话回访"),
                     "客户说周五前必须解决");
    trk_comment_edit(t, trk, first_id_with(tc, "text", "Profiling"), "Export fixed, 3x faster");
    cJSON_Delete(tc);
    cJSON_Delete(cc);
    assert_int_equal(gp_sync(t), 0);
    tc = trk_comments(t, trk);
    cc = crm_comments(t, id);
    assert_int_equal(cJSON_GetArraySize(tc), 2);
    assert_int_equal(cJSON_GetArraySize(cc), 2);
    assert_int_equal(e2e_count_with(tc, "text", "Comment by 李伟", "客户说周五前必须解决", NULL),
                     1);
    assert_int_equal(e2e_count_with(cc, crm_text_field(t), "Comment by Mia Krystof",
                                    "Export fixed, 3x faster", NULL),
                     1);
    cJSON_Delete(tc);
    cJSON_Delete(cc);
    gp_assert_quiet(t);
    free(trk);
    free(id);
}

/* Both comment creates lose their answers: the next run links the copies by their markers. */
static void test_pair_lost_answers(void **state)
{
    struct gp *t = *state;
    char *trk = NULL, *id = gp_linked(t, &trk);
    crm_comment(t, id, "请优先处理");
    trk_comment(t, trk, "On it");
    cJSON_Delete(
        sim_ctl(&t->trk, "POST", "/_sim/faults",
                "{\"rules\":[{\"method\":\"POST\",\"path\":\"%s\","
                "\"kind\":\"drop_response\",\"count\":1}]}",
                t->jira ? "/rest/api/3/issue/[^/]+/comment" : "/1/cards/[^/]+/actions/comments"));
    cJSON_Delete(sim_ctl(&t->crm, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"POST\",\"path\":\"%s\","
                         "\"kind\":\"drop_response\",\"count\":1}]}",
                         t->fx ? "/cgi/crm/v2/data/create" : "/crm/v8/Cases/[^/]+/Notes"));
    char *out = NULL;
    (void)tu_run_crmbridge(&out, "-c", t->conf, "sync", "--once", (char *)NULL);
    const char *first = strstr(out, "postponed copy of comment");
    assert_non_null(first);
    assert_non_null(strstr(first + 1, "postponed copy of comment")); /* one per side */
    free(out);
    assert_int_equal(gp_sync(t), 0);
    cJSON *tc = trk_comments(t, trk), *cc = crm_comments(t, id);
    assert_int_equal(cJSON_GetArraySize(tc), 2);
    assert_int_equal(cJSON_GetArraySize(cc), 2);
    assert_int_equal(e2e_count_with(tc, "text", "请优先处理", NULL), 1);
    assert_int_equal(e2e_count_with(cc, crm_text_field(t), "On it", NULL), 1);
    cJSON_Delete(tc);
    cJSON_Delete(cc);
    gp_assert_quiet(t);
    free(trk);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_zoho_jira_both_ways_edit_quiet, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_zoho_jira_lost_comment_answer, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_zoho_jira_crash_at_every_commit, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_zoho_jira_title_edit_reads_no_comments, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_pair_both_ways_edit_quiet, setup_fx_trello,
                                        gp_teardown),
        cmocka_unit_test_setup_teardown(test_pair_lost_answers, setup_fx_trello, gp_teardown),
        cmocka_unit_test_setup_teardown(test_pair_both_ways_edit_quiet, setup_zoho_trello,
                                        gp_teardown),
        cmocka_unit_test_setup_teardown(test_pair_lost_answers, setup_zoho_trello, gp_teardown),
        cmocka_unit_test_setup_teardown(test_pair_both_ways_edit_quiet, setup_fx_jira, gp_teardown),
        cmocka_unit_test_setup_teardown(test_pair_lost_answers, setup_fx_jira, gp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
