/*
 * End to end with Trello: the crmbridge binary against the Zoho CRM and Trello simulators with
 * the built-in zoho-trello mapping. Each test checks what a person sees on both sides, that the
 * next run writes nothing, and that a lost create answer leaves no duplicate card; the large
 * board test syncs 1,500 cards through the actions feed without a single 429.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "tests/unit/e2e.h"

#define TRELLO_KEY "d1f7b2c9e4a8f3b6c0d5e9a2f4b7c1e8"
#define TRELLO_TOKEN "ATTA9c4e1b7d2f8a3c6e0b5d9f1a4c7e2b8d3f6a0c5e9b1d4f7a2c8e3b6d0f5a9c1e4b7"

struct tt {
    struct e2e e; /* zoho, dir and conf (its jira member is not used) */
    struct sim trello;
    char board[32];
};

static void write_conf(struct tt *t, const char *extra_pair)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "state_dir = \"%s/state\";\n"
             "endpoints = {\n"
             "  zoho = { type = \"zoho\"; accounts_url = \"%s\"; api_url = \"%s\";\n"
             "    client_id = \"1000.SIMCLIENT\"; client_secret = \"env:CB_TEST_ZOHO_SECRET\";\n"
             "    refresh_token = \"file:%s/zoho.token\"; };\n"
             "  team_board = { type = \"trello\"; api_url = \"%s\";\n"
             "    key = \"env:CB_TEST_TRELLO_KEY\"; token = \"env:CB_TEST_TRELLO_TOKEN\"; };\n"
             "};\n"
             "pairs = ( { name = \"delivery\";\n"
             "  crm = { endpoint = \"zoho\"; module = \"Cases\"; };\n"
             "  tracker = { endpoint = \"team_board\"; board = \"%s\"; list = \"Inbox\"; };\n"
             "  overlap = 5; %s } );\n",
             t->e.dir, t->e.zoho.base, t->e.zoho.base, t->e.dir, t->trello.base, t->board,
             extra_pair ? extra_pair : "");
    assert_int_equal(tu_write_file(t->e.conf, text), 0);
}

static int setup(void **state)
{
    struct tt *t = calloc(1, sizeof(*t));
    t->e.dir = tu_tmpdir();
    assert_int_equal(sim_start(&t->e.zoho, "zoho", NULL), 0);
    assert_int_equal(sim_start(&t->trello, "trello", NULL), 0);
    char tok[600];
    snprintf(tok, sizeof(tok), "%s/zoho.token", t->e.dir);
    assert_int_equal(tu_write_file(tok, "1000.sim-refresh-token\n"), 0);
    setenv("CB_TEST_ZOHO_SECRET", "sim-client-secret", 1);
    setenv("CB_TEST_TRELLO_KEY", TRELLO_KEY, 1);
    setenv("CB_TEST_TRELLO_TOKEN", TRELLO_TOKEN, 1);
    /* the team's own board, as in the issue: new work lands in "Inbox" */
    cJSON *b = sim_ctl(&t->trello, "POST", "/_sim/seed",
                       "{\"new_board\":{\"name\":\"Team board\",\"lists\":[\"Inbox\",\"Doing\","
                       "\"Done\"],\"labels\":[{\"name\":\"bug\",\"color\":\"red\"}]}}");
    snprintf(t->board, sizeof(t->board), "%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(b, "board")));
    cJSON_Delete(b);
    snprintf(t->e.conf, sizeof(t->e.conf), "%s/crmbridge.conf", t->e.dir);
    write_conf(t, NULL);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct tt *t = *state;
    sim_stop(&t->e.zoho);
    sim_stop(&t->trello);
    tu_rmrf(t->e.dir);
    free(t->e.dir);
    free(t);
    return 0;
}

static int sync_once(struct tt *t)
{
    return e2e_run(&t->e, NULL, "sync", "--once");
}

static void assert_quiet(struct tt *t)
{
    sim_clear_log(&t->e.zoho);
    sim_clear_log(&t->trello);
    assert_int_equal(sync_once(t), 0);
    assert_int_equal(e2e_writes(&t->e.zoho), 0);
    assert_int_equal(e2e_writes(&t->trello), 0);
}

static cJSON *cards(struct tt *t)
{
    char path[96];
    snprintf(path, sizeof(path), "/_sim/cards?board=%s", t->board);
    return sim_ctl(&t->trello, "GET", path, NULL);
}

static int count_cards(struct tt *t)
{
    cJSON *all = cards(t);
    int n = cJSON_GetArraySize(all);
    cJSON_Delete(all);
    return n;
}

/* The card whose short URL the case holds in Tracker_Ref (owned by the caller), or NULL. */
static cJSON *linked_card(struct tt *t, const char *case_id)
{
    cJSON *c = e2e_zoho_case(&t->e, case_id), *all = cards(t), *hit = NULL;
    const char *ref = e2e_zfield(c, "Tracker_Ref");
    const cJSON *card;
    cJSON_ArrayForEach(card, all) if (ref && !strcmp(e2e_zfield(card, "shortUrl"), ref)) hit =
        cJSON_Duplicate(card, 1);
    cJSON_Delete(all);
    cJSON_Delete(c);
    return hit;
}

static void edit_card(struct tt *t, const cJSON *card, const char *change_json)
{
    cJSON_Delete(sim_ctl(&t->trello, "POST", "/_sim/edit", "{\"card\":\"%s\",%s}",
                         e2e_zfield(card, "id"), change_json));
}

static void edit_case(struct tt *t, const char *id, const char *fields_json)
{
    cJSON_Delete(sim_ctl(&t->e.zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":%s,\"user\":\"Li Wei\"}",
                         id, fields_json));
}

static int log_429s(const struct sim *s)
{
    cJSON *log = sim_ctl(s, "GET", "/_sim/log", NULL);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, log) n +=
        (int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "status")) == 429;
    cJSON_Delete(log);
    return n;
}

/* --- tests ------------------------------------------------------------------------------- */

static void test_case_becomes_card_then_done_reaches_zoho(void **state)
{
    struct tt *t = *state;
    char *id = e2e_seed_case(&t->e, "{\"Subject\":\"Export to Excel is too slow\","
                                    "\"Status\":\"New\",\"Due_Date\":\"2026-12-24\","
                                    "\"Description\":\"Takes minutes:\\n* CSV\\n* XLSX\"}");
    char *out = NULL;
    assert_int_equal(e2e_run(&t->e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "created 0 in crm, 1 in tracker"));
    free(out);
    cJSON *card = linked_card(t, id);
    assert_non_null(card);
    assert_string_equal(e2e_zfield(card, "name"), "Export to Excel is too slow");
    /* "New" is written as "To Do", which this board lacks: the card lands in the side's list */
    assert_string_equal(e2e_zfield(card, "listName"), "Inbox");
    assert_string_equal(e2e_zfield(card, "due"), "2026-12-24T12:00:00.000Z");
    assert_non_null(strstr(e2e_zfield(card, "desc"), "* CSV\n* XLSX"));
    assert_non_null(strstr(e2e_zfield(card, "desc"), "[//]: # (crmbridge:"));
    assert_quiet(t);
    /* the team finishes the work: the case closes */
    edit_card(t, card, "\"list\":\"Done\"");
    assert_int_equal(sync_once(t), 0);
    cJSON *c = e2e_zoho_case(&t->e, id);
    assert_string_equal(e2e_zfield(c, "Status"), "Closed");
    cJSON_Delete(c);
    assert_quiet(t);
    /* debug output shows the requests, never the key or the token */
    char *out2 = NULL;
    assert_int_equal(tu_run_crmbridge(&out2, "-v", "-c", t->e.conf, "sync", "--once", (char *)NULL),
                     0);
    assert_non_null(strstr(out2, "/1/boards/"));
    assert_null(strstr(out2, TRELLO_TOKEN));
    assert_null(strstr(out2, TRELLO_KEY));
    free(out2);
    assert_int_equal(count_cards(t), 1);
    cJSON_Delete(card);
    free(id);
}

static void test_merge_and_conflict(void **state)
{
    struct tt *t = *state;
    char *id = e2e_seed_case(&t->e, "{\"Subject\":\"Invoice PDF\",\"Status\":\"New\"}");
    assert_int_equal(sync_once(t), 0);
    cJSON *card = linked_card(t, id);
    assert_non_null(card);
    /* different fields on each side: both survive */
    edit_case(t, id, "{\"Due_Date\":\"2026-07-01\"}");
    edit_card(t, card, "\"fields\":{\"name\":\"Invoice PDF tax rate\"}");
    assert_int_equal(sync_once(t), 0);
    cJSON *c = e2e_zoho_case(&t->e, id), *now = linked_card(t, id);
    assert_string_equal(e2e_zfield(c, "Subject"), "Invoice PDF tax rate");
    assert_string_equal(e2e_zfield(now, "due"), "2026-07-01T12:00:00.000Z");
    cJSON_Delete(c);
    cJSON_Delete(now);
    assert_quiet(t);
    /* the same field differently on both sides: one conflict, neither side overwritten */
    edit_case(t, id, "{\"Subject\":\"VAT wrong\"}");
    edit_card(t, card, "\"fields\":{\"name\":\"Rounding bug\"}");
    char *out = NULL;
    assert_int_equal(e2e_run(&t->e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "1 conflict(s) held"));
    free(out);
    c = e2e_zoho_case(&t->e, id);
    now = linked_card(t, id);
    assert_string_equal(e2e_zfield(c, "Subject"), "VAT wrong");
    assert_string_equal(e2e_zfield(now, "name"), "Rounding bug");
    cJSON_Delete(c);
    cJSON_Delete(now);
    assert_quiet(t);
    cJSON_Delete(card);
    free(id);
}

static void test_lost_create_response(void **state)
{
    struct tt *t = *state;
    char *id = e2e_seed_case(&t->e, "{\"Subject\":\"Audit trail export\",\"Status\":\"New\"}");
    cJSON_Delete(sim_ctl(&t->trello, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"POST\",\"path\":\"/1/cards\","
                         "\"kind\":\"drop_response\",\"count\":1}]}"));
    char *out = NULL;
    e2e_run(&t->e, &out, "sync", "--once");
    assert_non_null(strstr(out, "postponed"));
    free(out);
    assert_int_equal(count_cards(t), 1); /* the create landed, its answer was lost */
    cJSON *card = linked_card(t, id);
    assert_null(card);
    assert_int_equal(e2e_run(&t->e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "1 linked after recovery"));
    free(out);
    assert_int_equal(count_cards(t), 1);
    card = linked_card(t, id);
    assert_non_null(card);
    assert_string_equal(e2e_zfield(card, "name"), "Audit trail export");
    assert_quiet(t);
    cJSON_Delete(card);
    free(id);
}

/* A card's Markdown reaches the plain-text case as readable text; reading that poorer copy
 * back is not an edit: the card keeps its markup and nothing is written again. */
static const cJSON *named(const cJSON *arr, const char *field, const char *value)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, arr)
    {
        const char *v = e2e_zfield(x, field);
        if (v && !strcmp(v, value))
            return x;
    }
    fail_msg("no record with %s '%s'", field, value);
    return NULL;
}

static void test_markdown_card_survives_plain_text_crm(void **state)
{
    struct tt *t = *state;
    write_conf(t, "create = \"both\";");
    cJSON_Delete(sim_ctl(&t->trello, "POST", "/_sim/seed",
                         "{\"board\":\"%s\",\"list\":\"Inbox\",\"cards\":[{\"name\":\"Slow export\","
                         "\"desc\":\"Steps:\\n\\n1. Open **Reports**\\n2. Click _Export_\\n\\nSee "
                         "[the log](https://example.com/log).\"}]}",
                         t->board));
    char *out = NULL;
    int rc = e2e_run(&t->e, &out, "sync", "--once");
    if (rc != 0 || !strstr(out, "created 1 in crm"))
        fail_msg("sync: %d\n%s", rc, out);
    free(out);
    cJSON *all = cards(t);
    const char *desc = e2e_zfield(named(all, "name", "Slow export"), "desc");
    assert_non_null(strstr(desc, "1. Open **Reports**\n2. Click _Export_"));
    cJSON *recs = sim_ctl(&t->e.zoho, "GET", "/_sim/records?module=Cases", NULL);
    const char *plain =
        e2e_zfield(named(cJSON_GetObjectItem(recs, "data"), "Subject", "Slow export"), "Description");
    assert_non_null(plain);
    if (!strstr(plain, "1. Open Reports"))
        fail_msg("case description: %s", plain);
    assert_null(strstr(plain, "**"));
    cJSON_Delete(recs);
    cJSON_Delete(all);
    assert_quiet(t);
    all = cards(t);
    assert_non_null(strstr(e2e_zfield(named(all, "name", "Slow export"), "desc"), "**Reports**"));
    cJSON_Delete(all);
}

static void test_archive_deletes_nothing_in_crm(void **state)
{
    struct tt *t = *state;
    char *id = e2e_seed_case(&t->e, "{\"Subject\":\"Old request\",\"Status\":\"New\"}");
    assert_int_equal(sync_once(t), 0);
    cJSON *card = linked_card(t, id);
    assert_non_null(card);
    edit_card(t, card, "\"fields\":{\"closed\":true}");
    sim_clear_log(&t->e.zoho);
    assert_int_equal(sync_once(t), 0);
    assert_int_equal(e2e_writes(&t->e.zoho), 0);
    assert_int_equal(sim_count(&t->e.zoho, "DELETE", NULL), 0);
    cJSON *c = e2e_zoho_case(&t->e, id);
    assert_string_equal(e2e_zfield(c, "Subject"), "Old request");
    assert_string_equal(e2e_zfield(c, "Status"), "New");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(c, "$in_recycle_bin")));
    cJSON_Delete(c);
    /* even a card deleted outright leaves the case alone */
    edit_card(t, card, "\"delete\":true");
    assert_int_equal(sync_once(t), 0);
    c = e2e_zoho_case(&t->e, id);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(c, "$in_recycle_bin")));
    cJSON_Delete(c);
    assert_quiet(t);
    cJSON_Delete(card);
    free(id);
}

/* Zoho cases with a Tracker_Ref that points at a card. */
/* Under deletes = "archive", archiving the card closes the case; the link is then cut. */
static void test_archive_policy_closes_the_case(void **state)
{
    struct tt *t = *state;
    write_conf(t, "deletes = \"archive\";");
    char *id = e2e_seed_case(&t->e, "{\"Subject\":\"Cancelled request\",\"Status\":\"New\"}");
    char *id2 = e2e_seed_case(&t->e, "{\"Subject\":\"Kept request\",\"Status\":\"New\"}");
    assert_int_equal(sync_once(t), 0);
    cJSON *card = linked_card(t, id);
    assert_non_null(card);
    edit_card(t, card, "\"fields\":{\"closed\":true}");
    char *out = NULL;
    assert_int_equal(e2e_run(&t->e, &out, "sync", "--once"), 0);
    if (!strstr(out, "1 archived and 0 deleted in crm"))
        fail_msg("sync said:\n%s", out);
    free(out);
    cJSON *c = e2e_zoho_case(&t->e, id);
    assert_string_equal(e2e_zfield(c, "Status"), "Closed");
    cJSON_Delete(c);
    c = e2e_zoho_case(&t->e, id2);
    assert_string_equal(e2e_zfield(c, "Status"), "New");
    cJSON_Delete(c);
    assert_quiet(t);
    cJSON_Delete(card);
    free(id);
    free(id2);
}

static int linked_cases(struct tt *t)
{
    cJSON *all = sim_ctl(&t->e.zoho, "GET", "/_sim/records?module=Cases", NULL);
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data"))
    {
        const char *ref = e2e_zfield(r, "Tracker_Ref");
        n += ref && !strncmp(ref, "https://trello.com/c/", 21);
    }
    cJSON_Delete(all);
    return n;
}

/* A busy board: 1,500 new cards arrive between two runs (the feed runs past one page of
 * 1,000 actions). Every card becomes a case, at Trello's real limits, without one 429. */
static void test_1500_cards_sync_without_429(void **state)
{
    struct tt *t = *state;
    write_conf(t, "create = \"both\";");
    cJSON_Delete(sim_ctl(&t->trello, "POST", "/_sim/seed",
                         "{\"board\":\"%s\",\"cards\":[{\"name\":\"First card\"}]}", t->board));
    assert_int_equal(sync_once(t), 0);
    assert_int_equal(linked_cases(t), 1);
    cJSON_Delete(sim_ctl(&t->trello, "POST", "/_sim/seed",
                         "{\"board\":\"%s\",\"count\":1500,\"list\":\"Doing\"}", t->board));
    sim_clear_log(&t->trello);
    char *out = NULL;
    assert_int_equal(e2e_run(&t->e, &out, "sync", "--once"), 0);
    assert_non_null(strstr(out, "created 1500 in crm, 0 in tracker"));
    free(out);
    assert_int_equal(linked_cases(t), 1501);
    char path[96];
    snprintf(path, sizeof(path), "/1/boards/%s/actions", t->board);
    assert_int_equal(sim_count(&t->trello, "GET", path), 2);
    assert_int_equal(log_429s(&t->trello), 0);
    cJSON *all = sim_ctl(&t->e.zoho, "GET", "/_sim/records?module=Cases", NULL);
    const cJSON *r;
    int in_progress = 0;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data")) in_progress +=
        e2e_zfield(r, "Status") && !strcmp(e2e_zfield(r, "Status"), "Escalated");
    cJSON_Delete(all);
    assert_int_equal(in_progress, 1500);
    assert_quiet(t);
    assert_int_equal(count_cards(t), 1501);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_case_becomes_card_then_done_reaches_zoho, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_merge_and_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_markdown_card_survives_plain_text_crm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_create_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_deletes_nothing_in_crm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_policy_closes_the_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_1500_cards_sync_without_429, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
