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

/* Comments of a Jira issue as the simulator keeps them ({id, author, text, properties}). */
static cJSON *jira_comments(struct e2e *e, const char *key)
{
    cJSON *i = e2e_jira_issue(e, key);
    cJSON *c = cJSON_DetachItemFromObject(i, "comments");
    cJSON_Delete(i);
    return c;
}

static cJSON *zoho_notes(struct e2e *e, const char *case_id)
{
    char path[200];
    snprintf(path, sizeof(path), "/_sim/notes?module=Cases&id=%s", case_id);
    return sim_call(&e->zoho, "GET", path, NULL, NULL);
}

/* How many items of arr have a string field f containing every needle (NULL-terminated). */
static int count_with(const cJSON *arr, const char *f, ...)
{
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(it, f));
        va_list ap;
        va_start(ap, f);
        int all = s != NULL;
        for (const char *needle; all && (needle = va_arg(ap, const char *)) != NULL;)
            all = strstr(s, needle) != NULL;
        va_end(ap);
        n += all;
    }
    return n;
}

static char *linked_case(struct e2e *e, char **key)
{
    char *id = e2e_seed_case(e, "{\"Subject\":\"Report export fails\",\"Status\":\"New\"}");
    assert_int_equal(e2e_sync_once(e), 0);
    *key = e2e_linked_key(e, id);
    assert_non_null(*key);
    return id;
}

static void add_note(struct e2e *e, const char *case_id, const char *text)
{
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/note",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"text\":\"%s\",\"user\":\"Li Wei\"}",
                         case_id, text));
}

static void add_jira_comment(struct e2e *e, const char *key, const char *text)
{
    cJSON_Delete(sim_ctl(
        &e->jira, "POST", "/_sim/edit",
        "{\"key\":\"%s\",\"fields\":{\"comment\":\"%s\"},\"user\":\"Mia Krystof\"}", key, text));
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
    add_note(e, id, "Customer says it fails on Safari too");
    add_jira_comment(e, key, "Reproduced, looking at the CSV writer");
    assert_int_equal(e2e_sync_once(e), 0);

    cJSON *jc = jira_comments(e, key), *zn = zoho_notes(e, id);
    assert_int_equal(cJSON_GetArraySize(jc), 2);
    assert_int_equal(count_with(jc, "text", "Comment by Li Wei on ",
                                " UTC (Zoho CRM):", "Customer says it fails on Safari too", NULL),
                     1);
    assert_int_equal(cJSON_GetArraySize(zn), 2);
    assert_int_equal(count_with(zn, "Note_Content", "Comment by Mia Krystof on ",
                                "(Jira):", "Reproduced, looking at the CSV writer", NULL),
                     1);
    /* the Zoho copy carries its marker as a short trailer; the Jira copy as a property */
    assert_int_equal(count_with(zn, "Note_Content", "[cb:", NULL), 1);
    assert_int_equal(count_with(jc, "text", "[cb:", NULL), 0);
    cJSON_Delete(jc);
    cJSON_Delete(zn);
    e2e_assert_quiet(e);

    /* edits on both sides update the copies, and nothing is added */
    zn = zoho_notes(e, id);
    jc = jira_comments(e, key);
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/note_edit",
                         "{\"id\":\"%s\",\"text\":\"Fails on Safari 17 and Firefox\"}",
                         first_id_with(zn, "Note_Content", "Customer says")));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/comment_edit",
                         "{\"key\":\"%s\",\"id\":\"%s\",\"text\":\"Fixed in the CSV writer\"}", key,
                         first_id_with(jc, "text", "Reproduced")));
    cJSON_Delete(jc);
    cJSON_Delete(zn);
    assert_int_equal(e2e_sync_once(e), 0);
    jc = jira_comments(e, key);
    zn = zoho_notes(e, id);
    assert_int_equal(cJSON_GetArraySize(jc), 2);
    assert_int_equal(cJSON_GetArraySize(zn), 2);
    assert_int_equal(
        count_with(jc, "text", "Comment by Li Wei", "Fails on Safari 17 and Firefox", NULL), 1);
    assert_int_equal(
        count_with(zn, "Note_Content", "Comment by Mia Krystof", "Fixed in the CSV writer", NULL),
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
    add_note(e, id, "Please call the customer back");
    cJSON_Delete(
        sim_ctl(&e->jira, "POST", "/_sim/faults",
                "{\"rules\":[{\"method\":\"POST\",\"path\":\"/rest/api/3/issue/[^/]+/comment\","
                "\"kind\":\"drop_response\",\"count\":1}]}"));
    char *out = NULL;
    e2e_run(e, &out, "sync", "--once");
    assert_non_null(strstr(out, "postponed copy of comment"));
    free(out);
    cJSON *jc = jira_comments(e, key);
    assert_int_equal(cJSON_GetArraySize(jc), 1); /* it landed; its answer did not */
    cJSON_Delete(jc);
    assert_int_equal(e2e_sync_once(e), 0);
    jc = jira_comments(e, key);
    assert_int_equal(cJSON_GetArraySize(jc), 1);
    assert_int_equal(count_with(jc, "text", "Please call the customer back", NULL), 1);
    cJSON_Delete(jc);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

/* A crash at every commit of the run that copies comments: never a duplicate. */
static void test_zoho_jira_crash_at_every_commit(void **state)
{
    struct e2e *e = *state;
    char *key = NULL, *id = linked_case(e, &key);
    add_note(e, id, "First note from the CRM");
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
        cJSON *jc = jira_comments(e, key), *zn = zoho_notes(e, id);
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
    cJSON *jc = jira_comments(e, key), *zn = zoho_notes(e, id);
    assert_int_equal(count_with(jc, "text", "First note from the CRM", NULL), 1);
    assert_int_equal(count_with(zn, "Note_Content", "First comment from Jira", NULL), 1);
    assert_int_equal(cJSON_GetArraySize(jc), 2);
    assert_int_equal(cJSON_GetArraySize(zn), 2);
    cJSON_Delete(jc);
    cJSON_Delete(zn);
    e2e_assert_quiet(e);
    free(key);
    free(id);
}

/* ---------------------------------------------------------------- fxiaoke <-> trello */

#define FX_USER "FSUID_00000000000000000000000000000001"

struct ft {
    struct sim fx, trello;
    char *dir;
    char conf[600];
    char board[32];
};

static int ft_setup(void **state)
{
    struct ft *t = calloc(1, sizeof(*t));
    t->dir = tu_tmpdir();
    assert_int_equal(sim_start(&t->fx, "fxiaoke", NULL), 0);
    assert_int_equal(sim_start(&t->trello, "trello", NULL), 0);
    char path[700], text[4096];
    snprintf(path, sizeof(path), "%s/fx.code", t->dir);
    assert_int_equal(tu_write_file(path, "sim-permanent-code\n"), 0);
    setenv("CB_TEST_FX_SECRET", "sim-app-secret", 1);
    cJSON *cfg = sim_ctl(&t->trello, "GET", "/_sim/config", NULL);
    setenv("CB_TEST_TRELLO_KEY", cJSON_GetStringValue(cJSON_GetObjectItem(cfg, "key")), 1);
    setenv("CB_TEST_TRELLO_TOKEN", cJSON_GetStringValue(cJSON_GetObjectItem(cfg, "token")), 1);
    cJSON_Delete(cfg);
    cJSON *b =
        sim_ctl(&t->trello, "POST", "/_sim/seed",
                "{\"new_board\":{\"name\":\"交付看板\",\"lists\":[\"Inbox\",\"Doing\",\"Done\"]}}");
    snprintf(t->board, sizeof(t->board), "%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(b, "board")));
    cJSON_Delete(b);
    cJSON_Delete(sim_ctl(&t->fx, "POST", "/_sim/config", "{\"rate_calls\":5000}"));
    snprintf(t->conf, sizeof(t->conf), "%s/crmbridge.conf", t->dir);
    snprintf(text, sizeof(text),
             "state_dir = \"%s/state\";\n"
             "endpoints = {\n"
             "  fx = { type = \"fxiaoke\"; api_url = \"%s\"; app_id = \"FSAID_SIMAPP01\";\n"
             "    app_secret = \"env:CB_TEST_FX_SECRET\"; permanent_code = \"file:%s/fx.code\";\n"
             "    user_id = \"" FX_USER "\"; rate_limit = 5000; };\n"
             "  board = { type = \"trello\"; api_url = \"%s\";\n"
             "    key = \"env:CB_TEST_TRELLO_KEY\"; token = \"env:CB_TEST_TRELLO_TOKEN\"; };\n"
             "};\n"
             "pairs = ( { name = \"cases\";\n"
             "  crm = { endpoint = \"fx\"; object = \"CasesObj\"; };\n"
             "  tracker = { endpoint = \"board\"; board = \"%s\"; list = \"Inbox\"; };\n"
             "  overlap = 5; } );\n",
             t->dir, t->fx.base, t->dir, t->trello.base, t->board);
    assert_int_equal(tu_write_file(t->conf, text), 0);
    *state = t;
    return 0;
}

static int ft_teardown(void **state)
{
    struct ft *t = *state;
    sim_stop(&t->fx);
    sim_stop(&t->trello);
    tu_rmrf(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

static int ft_sync(struct ft *t)
{
    char *out = NULL;
    int rc = tu_run_crmbridge(&out, "-c", t->conf, "sync", "--once", (char *)NULL);
    if (rc != 0)
        fprintf(stderr, "crmbridge sync --once -> %d:\n%s\n", rc, out);
    free(out);
    return rc;
}

/* Requests that wrote something: Fxiaoke creates and updates (every call is a POST), Trello
 * anything but GET. */
static int ft_writes(struct ft *t)
{
    int n = 0;
    for (int i = 0; i < 2; i++) {
        cJSON *log = sim_call(i ? &t->trello : &t->fx, "GET", "/_sim/log", NULL, NULL);
        const cJSON *en;
        cJSON_ArrayForEach(en, log)
        {
            const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(en, "path"));
            const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(en, "method"));
            n += i ? strcmp(m, "GET") != 0 : strstr(p, "/create") || strstr(p, "/update");
        }
        cJSON_Delete(log);
        sim_clear_log(i ? &t->trello : &t->fx);
    }
    return n;
}

static void ft_assert_quiet(struct ft *t)
{
    (void)ft_writes(t);
    assert_int_equal(ft_sync(t), 0);
    assert_int_equal(ft_writes(t), 0);
}

/* A case linked to a card; returns the case id, *card gets the card id (both owned). */
static char *ft_linked(struct ft *t, char **card)
{
    cJSON *r = sim_ctl(&t->fx, "POST", "/_sim/seed",
                       "{\"object\":\"CasesObj\",\"records\":[{\"name\":\"导出报表太慢\","
                       "\"status\":\"新建\"}]}");
    char *id = strdup(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "ids"), 0)));
    cJSON_Delete(r);
    assert_int_equal(ft_sync(t), 0);
    char path[96];
    snprintf(path, sizeof(path), "/_sim/cards?board=%s", t->board);
    cJSON *cards = sim_ctl(&t->trello, "GET", path, NULL);
    assert_int_equal(cJSON_GetArraySize(cards), 1);
    *card = strdup(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cards, 0), "id")));
    cJSON_Delete(cards);
    return id;
}

static cJSON *card_comments(struct ft *t, const char *card)
{
    char path[96];
    snprintf(path, sizeof(path), "/_sim/comments?card=%s", card);
    return sim_ctl(&t->trello, "GET", path, NULL);
}

static cJSON *followups(struct ft *t)
{
    cJSON *r = sim_ctl(&t->fx, "GET", "/_sim/records?object=ActiveRecordObj", NULL);
    cJSON *d = cJSON_DetachItemFromObject(r, "data");
    cJSON_Delete(r);
    return d;
}

static void add_followup(struct ft *t, const char *case_id, const char *text)
{
    cJSON_Delete(sim_ctl(&t->fx, "POST", "/_sim/seed",
                         "{\"object\":\"ActiveRecordObj\",\"user\":\"李伟\",\"records\":[{"
                         "\"active_record_content\":\"%s\",\"related_object_data\":"
                         "[{\"describe_api_name\":\"CasesObj\",\"id\":\"%s\"}]}]}",
                         text, case_id));
}

static void add_card_comment(struct ft *t, const char *card, const char *text)
{
    cJSON_Delete(sim_ctl(&t->trello, "POST", "/_sim/edit",
                         "{\"card\":\"%s\",\"comment\":\"%s\",\"user\":\"Mia Krystof\"}", card,
                         text));
}

static void test_fxiaoke_trello_both_ways_edit_quiet(void **state)
{
    struct ft *t = *state;
    char *card = NULL, *id = ft_linked(t, &card);
    add_followup(t, id, "客户电话回访：导出仍然很慢");
    add_card_comment(t, card, "Profiling the export **now**");
    assert_int_equal(ft_sync(t), 0);

    cJSON *cc = card_comments(t, card), *fu = followups(t);
    assert_int_equal(cJSON_GetArraySize(cc), 2);
    assert_int_equal(count_with(cc, "text", "Comment by 李伟 on ",
                                " UTC (Fxiaoke):", "客户电话回访：导出仍然很慢", NULL),
                     1);
    /* Trello hides the marker in a markdown line that renders as nothing */
    assert_int_equal(count_with(cc, "text", "[//]: # (crmbridge:", NULL), 1);
    assert_int_equal(cJSON_GetArraySize(fu), 2);
    assert_int_equal(count_with(fu, "active_record_content", "Comment by Mia Krystof on ",
                                "(Trello):", "Profiling the export now", "[cb:", NULL),
                     1);
    cJSON_Delete(cc);
    cJSON_Delete(fu);
    ft_assert_quiet(t);

    cc = card_comments(t, card);
    fu = followups(t);
    cJSON_Delete(sim_ctl(&t->fx, "POST", "/_sim/edit",
                         "{\"object\":\"ActiveRecordObj\",\"id\":\"%s\",\"fields\":"
                         "{\"active_record_content\":\"客户说周五前必须解决\"},\"user\":\"李伟\"}",
                         first_id_with(fu, "active_record_content", "客户电话回访")));
    cJSON_Delete(sim_ctl(&t->trello, "POST", "/_sim/comment_edit",
                         "{\"action\":\"%s\",\"text\":\"Export fixed, 3x faster\"}",
                         first_id_with(cc, "text", "Profiling")));
    cJSON_Delete(cc);
    cJSON_Delete(fu);
    assert_int_equal(ft_sync(t), 0);
    cc = card_comments(t, card);
    fu = followups(t);
    assert_int_equal(cJSON_GetArraySize(cc), 2);
    assert_int_equal(cJSON_GetArraySize(fu), 2);
    assert_int_equal(count_with(cc, "text", "Comment by 李伟", "客户说周五前必须解决", NULL), 1);
    assert_int_equal(count_with(fu, "active_record_content", "Comment by Mia Krystof",
                                "Export fixed, 3x faster", NULL),
                     1);
    cJSON_Delete(cc);
    cJSON_Delete(fu);
    ft_assert_quiet(t);
    free(card);
    free(id);
}

/* Both comment creates lose their answers: the next run links the copies by their markers. */
static void test_fxiaoke_trello_lost_answers(void **state)
{
    struct ft *t = *state;
    char *card = NULL, *id = ft_linked(t, &card);
    add_followup(t, id, "请优先处理");
    add_card_comment(t, card, "On it");
    cJSON_Delete(
        sim_ctl(&t->trello, "POST", "/_sim/faults",
                "{\"rules\":[{\"method\":\"POST\",\"path\":\"/1/cards/[^/]+/actions/comments\","
                "\"kind\":\"drop_response\",\"count\":1}]}"));
    cJSON_Delete(sim_ctl(&t->fx, "POST", "/_sim/faults",
                         "{\"rules\":[{\"path\":\"/cgi/crm/v2/data/create\","
                         "\"kind\":\"drop_response\",\"count\":1}]}"));
    char *out = NULL;
    (void)tu_run_crmbridge(&out, "-c", t->conf, "sync", "--once", (char *)NULL);
    assert_non_null(strstr(out, "postponed copy of comment"));
    assert_non_null(strstr(out + (strstr(out, "postponed copy of comment") - out) + 1,
                           "postponed copy of comment")); /* one per side */
    free(out);
    assert_int_equal(ft_sync(t), 0);
    cJSON *cc = card_comments(t, card), *fu = followups(t);
    assert_int_equal(cJSON_GetArraySize(cc), 2);
    assert_int_equal(cJSON_GetArraySize(fu), 2);
    assert_int_equal(count_with(cc, "text", "请优先处理", NULL), 1);
    assert_int_equal(count_with(fu, "active_record_content", "On it", NULL), 1);
    cJSON_Delete(cc);
    cJSON_Delete(fu);
    ft_assert_quiet(t);
    free(card);
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
        cmocka_unit_test_setup_teardown(test_fxiaoke_trello_both_ways_edit_quiet, ft_setup,
                                        ft_teardown),
        cmocka_unit_test_setup_teardown(test_fxiaoke_trello_lost_answers, ft_setup, ft_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
