/*
 * End to end: per-pair scope filters (a side's `filter`, or Trello's `labels`/`lists`), with the
 * crmbridge binary against the Zoho, Jira and Trello simulators. A record outside its side's
 * filter is never created on the other side; one edited into scope is; a linked one that leaves
 * scope stops syncing both ways and keeps its link, and resumes when it comes back. A bad
 * filter is a config error naming file and line; JQL the server rejects fails the run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "tests/unit/e2e.h"

#define TRELLO_KEY "d1f7b2c9e4a8f3b6c0d5e9a2f4b7c1e8"
#define FX_USER "FSUID_00000000000000000000000000000001"
#define TRELLO_TOKEN "ATTA9c4e1b7d2f8a3c6e0b5d9f1a4c7e2b8d3f6a0c5e9b1d4f7a2c8e3b6d0f5a9c1e4b7"

struct st {
    struct e2e e;          /* zoho, jira, dir, conf */
    struct sim trello, fx; /* fx: started by the fxiaoke test only */
    char board[32];
};

/* One pair "scoped": zoho Cases (or with crm_extra "object = ...", the fxiaoke endpoint)
 * against the tracker endpoint `tracker` ("jira" or "board"), with extra keys in each side
 * block and in the pair. */
static void write_conf(struct st *t, const char *tracker, const char *crm_extra,
                       const char *tracker_extra, const char *pair_extra)
{
    char text[4096], side[512], fx[512] = "";
    int to_fx = !strncmp(crm_extra, "object", 6);
    if (t->fx.base[0])
        snprintf(fx, sizeof(fx),
                 "  fx = { type = \"fxiaoke\"; api_url = \"%s\"; app_id = \"FSAID_SIMAPP01\";\n"
                 "    app_secret = \"sim-app-secret\"; permanent_code = \"sim-permanent-code\";\n"
                 "    user_id = \"" FX_USER "\"; rate_limit = 5000; };\n",
                 t->fx.base);
    if (!strcmp(tracker, "jira"))
        snprintf(side, sizeof(side), "endpoint = \"jira\"; project = \"SUP\"; %s", tracker_extra);
    else
        snprintf(side, sizeof(side), "endpoint = \"board\"; board = \"%s\"; list = \"Inbox\"; %s",
                 t->board, tracker_extra);
    snprintf(text, sizeof(text),
             "state_dir = \"%s/state\";\n"
             "endpoints = {\n"
             "  zoho = { type = \"zoho\"; accounts_url = \"%s\"; api_url = \"%s\";\n"
             "    client_id = \"1000.SIMCLIENT\"; client_secret = \"env:CB_TEST_ZOHO_SECRET\";\n"
             "    refresh_token = \"file:%s/zoho.token\"; };\n"
             "  jira = { type = \"jira\"; api_url = \"%s\"; email = \"bot@acme.test\";\n"
             "    api_token = \"env:CB_TEST_JIRA_TOKEN\"; search_lag = 0; };\n"
             "  board = { type = \"trello\"; api_url = \"%s\";\n"
             "    key = \"env:CB_TEST_TRELLO_KEY\"; token = \"env:CB_TEST_TRELLO_TOKEN\"; };\n"
             "%s"
             "};\n"
             "pairs = ( { name = \"scoped\";\n"
             "  crm = { endpoint = \"%s\"; %s %s };\n"
             "  tracker = { %s };\n"
             "  overlap = 5; %s } );\n",
             t->e.dir, t->e.zoho.base, t->e.zoho.base, t->e.dir, t->e.jira.base, t->trello.base, fx,
             to_fx ? "fx" : "zoho", to_fx ? "" : "module = \"Cases\";", crm_extra, side,
             pair_extra);
    assert_int_equal(tu_write_file(t->e.conf, text), 0);
}

static int setup(void **state)
{
    struct st *t = calloc(1, sizeof(*t));
    t->e.dir = tu_tmpdir();
    assert_int_equal(sim_start(&t->e.zoho, "zoho", NULL), 0);
    assert_int_equal(sim_start(&t->e.jira, "jira", NULL), 0);
    assert_int_equal(sim_start(&t->trello, "trello", NULL), 0);
    char tok[600];
    snprintf(tok, sizeof(tok), "%s/zoho.token", t->e.dir);
    assert_int_equal(tu_write_file(tok, "1000.sim-refresh-token\n"), 0);
    setenv("CB_TEST_ZOHO_SECRET", "sim-client-secret", 1);
    setenv("CB_TEST_JIRA_TOKEN", "sim-jira-token", 1);
    setenv("CB_TEST_TRELLO_KEY", TRELLO_KEY, 1);
    setenv("CB_TEST_TRELLO_TOKEN", TRELLO_TOKEN, 1);
    cJSON *b = sim_ctl(&t->trello, "POST", "/_sim/seed",
                       "{\"new_board\":{\"name\":\"Support board\",\"lists\":[\"Inbox\",\"Doing\","
                       "\"Done\"],\"labels\":[{\"name\":\"customer\",\"color\":\"green\"},"
                       "{\"name\":\"bug\",\"color\":\"red\"}]}}");
    snprintf(t->board, sizeof(t->board), "%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(b, "board")));
    cJSON_Delete(b);
    snprintf(t->e.conf, sizeof(t->e.conf), "%s/crmbridge.conf", t->e.dir);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct st *t = *state;
    sim_stop(&t->e.zoho);
    sim_stop(&t->e.jira);
    sim_stop(&t->trello);
    if (t->fx.base[0])
        sim_stop(&t->fx);
    tu_rmrf(t->e.dir);
    free(t->e.dir);
    free(t);
    return 0;
}

/* A sync that writes nothing on any of the three services. */
static void assert_quiet(struct st *t)
{
    sim_clear_log(&t->trello);
    e2e_assert_quiet(&t->e);
    assert_int_equal(e2e_writes(&t->trello), 0);
}

static int count_links(struct st *t)
{
    char *out = NULL;
    assert_int_equal(
        tu_run_crmbridge(&out, "-c", t->e.conf, "links", "list", "--json", (char *)NULL), 0);
    cJSON *arr = cJSON_Parse(out);
    int n = cJSON_GetArraySize(arr);
    cJSON_Delete(arr);
    free(out);
    return n;
}

static cJSON *all_cases(struct st *t)
{
    return sim_ctl(&t->e.zoho, "GET", "/_sim/records?module=Cases", NULL);
}

static int count_cases(struct st *t)
{
    cJSON *all = all_cases(t);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(all, "data"));
    cJSON_Delete(all);
    return n;
}

/* The case whose field `f` holds `v` (owned by the caller), or NULL. */
static cJSON *case_where(struct st *t, const char *f, const char *v)
{
    cJSON *all = all_cases(t), *hit = NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(all, "data"))
    {
        const char *x = e2e_zfield(c, f);
        if (x && !strcmp(x, v) && !hit)
            hit = cJSON_Duplicate(c, 1);
    }
    cJSON_Delete(all);
    return hit;
}

static void edit_case(struct st *t, const char *id, const char *fields_json)
{
    cJSON_Delete(sim_ctl(&t->e.zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":%s,\"user\":\"Li Wei\"}",
                         id, fields_json));
}

static void edit_issue(struct st *t, const char *key, const char *fields_json)
{
    cJSON_Delete(sim_ctl(&t->e.jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":%s,\"user\":\"Mia Krystof\"}", key,
                         fields_json));
}

/* Jira searches whose JQL contains needle, in the simulator's log since the last clear. */
static int searches_with(const struct sim *s, const char *needle)
{
    cJSON *log = sim_ctl(s, "GET", "/_sim/log", NULL);
    struct strbuf enc = STRBUF_INIT;
    (void)strbuf_add_urlencoded(&enc, needle);
    int n = 0;
    const cJSON *en;
    cJSON_ArrayForEach(en, log)
    {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(en, "path"));
        const char *q = cJSON_GetStringValue(cJSON_GetObjectItem(en, "query"));
        n += p && q && strstr(p, "/search") && strstr(q, enc.buf);
    }
    strbuf_release(&enc);
    cJSON_Delete(log);
    return n;
}

static void test_zoho_criteria(void **state)
{
    struct st *t = *state;
    write_conf(t, "jira", "filter = \"(Case_Origin:equals:Web)\";", "", "");
    char *out = NULL;
    assert_int_equal(e2e_run(&t->e, &out, "check", NULL), 0);
    assert_non_null(strstr(out, "filter (Case_Origin:equals:Web)"));
    free(out);
    char *web = e2e_seed_case(&t->e, "{\"Subject\":\"Portal login fails\",\"Status\":\"New\","
                                     "\"Priority\":\"Low\",\"Case_Origin\":\"Web\"}");
    char *phone = e2e_seed_case(&t->e, "{\"Subject\":\"Called about invoice\",\"Status\":\"New\","
                                       "\"Case_Origin\":\"Phone\"}");
    sim_clear_log(&t->e.jira);
    assert_int_equal(e2e_sync_once(&t->e), 0);
    assert_int_equal(e2e_count_issues(&t->e), 1);
    /* no Jira filter: reading the new issue back costs no scope search */
    assert_int_equal(searches_with(&t->e.jira, "id in ("), 0);
    char *key = e2e_linked_key(&t->e, web), *none = e2e_linked_key(&t->e, phone);
    assert_non_null(key);
    assert_null(none);
    assert_quiet(t);

    /* the phone case moves into scope: its issue is created */
    edit_case(t, phone, "{\"Case_Origin\":\"Web\"}");
    assert_int_equal(e2e_sync_once(&t->e), 0);
    char *key2 = e2e_linked_key(&t->e, phone);
    assert_non_null(key2);
    assert_int_equal(e2e_count_issues(&t->e), 2);
    assert_quiet(t);

    /* the web case leaves scope: edits on either side stay where they were made */
    edit_case(t, web, "{\"Case_Origin\":\"Email\"}");
    assert_int_equal(e2e_sync_once(&t->e), 0);
    edit_case(t, web, "{\"Subject\":\"Portal login fails on Safari\"}");
    edit_issue(t, key, "{\"priority\":\"Highest\"}");
    assert_quiet(t);
    cJSON *issue = e2e_jira_issue(&t->e, key), *c = e2e_zoho_case(&t->e, web);
    assert_string_equal(e2e_jfield(issue, "summary"), "Portal login fails");
    assert_string_equal(e2e_zfield(c, "Priority"), "Low");
    cJSON_Delete(issue);
    cJSON_Delete(c);
    assert_int_equal(count_links(t), 2);
    assert_int_equal(e2e_count_issues(&t->e), 2);

    /* back in scope: the link resumes with both sides' changes */
    edit_case(t, web, "{\"Case_Origin\":\"Web\"}");
    assert_int_equal(e2e_sync_once(&t->e), 0);
    issue = e2e_jira_issue(&t->e, key);
    c = e2e_zoho_case(&t->e, web);
    assert_string_equal(e2e_jfield(issue, "summary"), "Portal login fails on Safari");
    assert_string_equal(e2e_zfield(c, "Priority"), "High");
    cJSON_Delete(issue);
    cJSON_Delete(c);
    assert_quiet(t);
    assert_int_equal(e2e_count_issues(&t->e), 2);
    free(key);
    free(key2);
    free(web);
    free(phone);
}

/* `crmbridge migrate` keeps to the pair's scope as the daemon does: a case outside the Zoho
 * filter is counted as filtered out, never copied. */
static void test_migrate_keeps_to_scope(void **state)
{
    struct st *t = *state;
    write_conf(t, "jira", "filter = \"(Case_Origin:equals:Web)\";", "", "");
    char *web = e2e_seed_case(&t->e, "{\"Subject\":\"Portal login fails\",\"Status\":\"New\","
                                     "\"Case_Origin\":\"Web\"}");
    char *phone = e2e_seed_case(&t->e, "{\"Subject\":\"Called about invoice\",\"Status\":\"New\","
                                       "\"Case_Origin\":\"Phone\"}");
    char *out = NULL;
    assert_int_equal(tu_run_crmbridge(&out, "-c", t->e.conf, "migrate", "--pair", "scoped",
                                      "--from", "crm", (char *)NULL),
                     0);
    assert_non_null(strstr(out, "created 1,"));
    assert_non_null(strstr(out, "filtered out 1,"));
    free(out);
    assert_int_equal(e2e_count_issues(&t->e), 1);
    char *key = e2e_linked_key(&t->e, web), *none = e2e_linked_key(&t->e, phone);
    assert_non_null(key);
    assert_null(none);
    assert_quiet(t);
    free(key);
    free(web);
    free(phone);
}

/* Seeds one issue; returns its key (caller frees). */
static char *seed_issue(struct st *t, const char *fields_json)
{
    cJSON *r = sim_ctl(&t->e.jira, "POST", "/_sim/seed", "{\"issues\":[%s]}", fields_json);
    char *key = strdup(cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "issues"), 0), "key")));
    cJSON_Delete(r);
    return key;
}

static char *case_id_for(struct st *t, const char *field, const char *ref)
{
    cJSON *c = case_where(t, field, ref);
    char *id = c ? strdup(e2e_zfield(c, "id")) : NULL;
    cJSON_Delete(c);
    return id;
}

static void test_jira_fragment(void **state)
{
    struct st *t = *state;
#define FRAGMENT                                                                                   \
    "labels in (customer, vip) AND (priority in (High, Highest) OR status = \"Waiting for "        \
    "customer\")"
    write_conf(t, "jira", "",
               "filter = \"labels in (customer, vip) AND (priority in (High, "
               "Highest) OR status = \\\"Waiting for customer\\\")\";",
               "create = \"to_crm\";");
    char *x = seed_issue(t, "{\"summary\":\"Checkout crashes\",\"priority\":\"High\","
                            "\"labels\":[\"customer\"]}");
    char *y = seed_issue(t, "{\"summary\":\"Typo on pricing page\",\"priority\":\"Low\","
                            "\"labels\":[\"customer\"]}");
    char *z = seed_issue(t, "{\"summary\":\"Refactor build\",\"priority\":\"Highest\"}");
    char *w = seed_issue(t, "{\"summary\":\"Export for auditor\",\"priority\":\"Low\","
                            "\"labels\":[\"vip\"]}");
    char *out = NULL;
    assert_int_equal(e2e_run(&t->e, &out, "check", NULL), 0);
    assert_non_null(strstr(out, ", filter " FRAGMENT "\n"));
    free(out);
    sim_clear_log(&t->e.jira);
    assert_int_equal(e2e_sync_once(&t->e), 0);
    assert_int_equal(count_cases(t), 1);
    char *cx = case_id_for(t, "Jira_Issue", x);
    assert_non_null(cx);
    assert_int_equal(searches_with(&t->e.jira, "AND (" FRAGMENT ")"), 1);
    assert_quiet(t);

    /* y becomes urgent, w waits for the customer: both enter scope and get their cases */
    edit_issue(t, y, "{\"priority\":\"High\"}");
    edit_issue(t, w, "{\"status\":\"Waiting for customer\"}");
    assert_int_equal(e2e_sync_once(&t->e), 0);
    assert_int_equal(count_cases(t), 3);
    char *cy = case_id_for(t, "Jira_Issue", y);
    assert_non_null(cy);
    assert_quiet(t);

    /* x loses its label: neither side's edits cross any more, the link stays */
    edit_issue(t, x, "{\"labels\":[]}");
    assert_int_equal(e2e_sync_once(&t->e), 0);
    edit_issue(t, x, "{\"summary\":\"Checkout crashes on iOS\"}");
    edit_case(t, cx, "{\"Status\":\"Escalated\"}");
    sim_clear_log(&t->e.jira);
    assert_quiet(t);
    /* the case's change made crmbridge read x back; the scope search told it to leave x */
    assert_int_equal(searches_with(&t->e.jira, "id in ("), 1);
    cJSON *issue = e2e_jira_issue(&t->e, x), *c = e2e_zoho_case(&t->e, cx);
    assert_string_equal(e2e_jfield(issue, "status"), "To Do");
    assert_string_equal(e2e_zfield(c, "Subject"), "Checkout crashes");
    cJSON_Delete(issue);
    cJSON_Delete(c);
    assert_int_equal(count_links(t), 3);
    assert_int_equal(count_cases(t), 3);
    free(w);
    free(x);
    free(y);
    free(z);
    free(cx);
    free(cy);
}

static void test_jira_rejects_unknown_jql(void **state)
{
    struct st *t = *state;
    write_conf(t, "jira", "", "filter = \"sprint in openSprints()\";", "create = \"to_crm\";");
    char *out = NULL;
    int rc = e2e_run(&t->e, &out, "sync", "--once");
    assert_true(rc != 0);
    /* Jira's own words reach the admin */
    if (!strstr(out, "http 400: Field 'sprint' does not exist"))
        fail_msg("unexpected output: %s", out);
    free(out);
    assert_int_equal(count_cases(t), 0);
}

static cJSON *cards(struct st *t)
{
    char path[96];
    snprintf(path, sizeof(path), "/_sim/cards?board=%s", t->board);
    return sim_ctl(&t->trello, "GET", path, NULL);
}

/* The short URL of the card named name (owned), or NULL. */
static char *card_url(struct st *t, const char *name)
{
    cJSON *all = cards(t);
    char *url = NULL;
    const cJSON *card;
    cJSON_ArrayForEach(card, all) if (!strcmp(e2e_zfield(card, "name"), name)) url =
        strdup(e2e_zfield(card, "shortUrl"));
    cJSON_Delete(all);
    return url;
}

static void edit_card(struct st *t, const char *name, const char *change_json)
{
    cJSON *all = cards(t);
    const cJSON *card;
    cJSON_ArrayForEach(card, all) if (!strcmp(e2e_zfield(card, "name"), name))
        cJSON_Delete(sim_ctl(&t->trello, "POST", "/_sim/edit", "{\"card\":\"%s\",%s}",
                             e2e_zfield(card, "id"), change_json));
    cJSON_Delete(all);
}

static void test_trello_labels_and_lists(void **state)
{
    struct st *t = *state;
    write_conf(t, "board", "", "labels = [\"Customer\"]; lists = [\"inbox\", \"Doing\"];",
               "create = \"to_crm\";");
    cJSON_Delete(sim_ctl(&t->trello, "POST", "/_sim/seed",
                         "{\"board\":\"%s\",\"cards\":["
                         "{\"name\":\"Refund stuck\",\"list\":\"Inbox\",\"labels\":[\"customer\"]},"
                         "{\"name\":\"Flaky CI\",\"list\":\"Inbox\",\"labels\":[\"bug\"]},"
                         "{\"name\":\"Old request\",\"list\":\"Done\",\"labels\":[\"customer\"]}]}",
                         t->board));
    char *out = NULL;
    assert_int_equal(e2e_run(&t->e, &out, "check", NULL), 0);
    assert_non_null(strstr(out, "filter labels: Customer; filter lists: inbox, Doing"));
    free(out);
    assert_int_equal(e2e_sync_once(&t->e), 0);
    assert_int_equal(count_cases(t), 1);
    char *refund = card_url(t, "Refund stuck");
    char *cid = case_id_for(t, "Tracker_Ref", refund);
    assert_non_null(cid);
    assert_quiet(t);

    /* a customer label brings the CI card into scope */
    edit_card(t, "Flaky CI", "\"fields\":{\"labels\":[\"bug\",\"customer\"]}");
    assert_int_equal(e2e_sync_once(&t->e), 0);
    assert_int_equal(count_cases(t), 2);
    assert_quiet(t);

    /* the refund card moves to Done, outside the lists: it stops syncing, the link stays */
    edit_card(t, "Refund stuck", "\"list\":\"Done\"");
    assert_int_equal(e2e_sync_once(&t->e), 0);
    cJSON *c = e2e_zoho_case(&t->e, cid);
    assert_string_equal(e2e_zfield(c, "Status"), "New");
    cJSON_Delete(c);
    edit_case(t, cid, "{\"Subject\":\"Refund stuck since May\"}");
    assert_quiet(t);
    char *still = card_url(t, "Refund stuck");
    assert_non_null(still);
    free(still);
    assert_int_equal(count_links(t), 2);
    free(refund);
    free(cid);
}

static void test_bad_filters_are_config_errors(void **state)
{
    struct st *t = *state;
    write_conf(t, "jira", "filter = \"(Case_Origin:like:Web)\";",
               "filter = \"labels = customer)\";", "");
    char *out = NULL;
    assert_int_equal(tu_run_crmbridge(&out, "-c", t->e.conf, "check", (char *)NULL), 2);
    /* both problems at once, each with its file and line */
    char where[700];
    snprintf(where, sizeof(where), "%s:12: zoho 'filter'", t->e.conf);
    if (!strstr(out, where) || !strstr(out, "operator must be equals, not_equal"))
        fail_msg("zoho problem missing from: %s", out);
    snprintf(where, sizeof(where), "%s:13: jira 'filter'", t->e.conf);
    if (!strstr(out, where) || !strstr(out, "closes a parenthesis it never opened"))
        fail_msg("jira problem missing from: %s", out);
    free(out);
    write_conf(t, "board", "", "labels = [];", "");
    assert_int_equal(tu_run_crmbridge(&out, "-c", t->e.conf, "sync", "--once", (char *)NULL), 2);
    if (!strstr(out, ":13: trello 'labels'"))
        fail_msg("trello problem missing from: %s", out);
    free(out);
    /* a list the board lacks: caught when the board is read */
    write_conf(t, "board", "", "lists = [\"Inbx\"];", "");
    assert_int_equal(tu_run_crmbridge(&out, "-c", t->e.conf, "check", (char *)NULL), 3);
    assert_non_null(strstr(out, "has no list 'Inbx'"));
    free(out);
}

static char *fx_seed(struct st *t, const char *record_json)
{
    cJSON *r = sim_ctl(&t->fx, "POST", "/_sim/seed", "{\"object\":\"CasesObj\",\"records\":[%s]}",
                       record_json);
    char *id = strdup(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "ids"), 0)));
    cJSON_Delete(r);
    return id;
}

static void fx_edit(struct st *t, const char *id, const char *fields_json)
{
    cJSON_Delete(sim_ctl(&t->fx, "POST", "/_sim/edit",
                         "{\"object\":\"CasesObj\",\"id\":\"%s\",\"fields\":%s}", id, fields_json));
}

/* Field f of record id as the simulator stores it (owned), or NULL. */
static char *fx_field(struct st *t, const char *id, const char *f)
{
    cJSON *all = sim_ctl(&t->fx, "GET", "/_sim/records?object=CasesObj", NULL);
    char *v = NULL;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data")) if (!strcmp(e2e_zfield(r, "_id"), id) &&
                                                                e2e_zfield(r, f)) v =
        strdup(e2e_zfield(r, f));
    cJSON_Delete(all);
    return v;
}

static void test_fxiaoke_filters(void **state)
{
    struct st *t = *state;
    assert_int_equal(sim_start(&t->fx, "fxiaoke", NULL), 0);
    cJSON_Delete(sim_ctl(&t->fx, "POST", "/_sim/config", "{\"rate_calls\":5000}"));
    /* urgent or high priority (option values 1 and 2), of the default record type */
    write_conf(
        t, "jira",
        "object = \"CasesObj\"; filter = \"[{\\\"field\\\":\\\"priority\\\",\\\"operator\\\":"
        "\\\"IN\\\",\\\"values\\\":[\\\"1\\\",\\\"2\\\"]},{\\\"field\\\":\\\"record_type\\\","
        "\\\"operator\\\":\\\"EQ\\\",\\\"values\\\":[\\\"default__c\\\"]}]\";",
        "", "");
    char *out = NULL;
    assert_int_equal(e2e_run(&t->e, &out, "check", NULL), 0);
    assert_non_null(strstr(out, "; filter [{\"field\":\"priority\""));
    free(out);
    char *urgent = fx_seed(t, "{\"name\":\"支付失败\",\"status\":\"新建\",\"priority\":\"紧急\"}");
    char *low = fx_seed(t, "{\"name\":\"界面错别字\",\"status\":\"新建\",\"priority\":\"低\"}");
    assert_int_equal(e2e_run(&t->e, &out, "sync", "--once"), 0);
    /* the query filtered on the server: the low one was never read */
    assert_non_null(strstr(out, "read 1 crm"));
    free(out);
    char *key = fx_field(t, urgent, "tracker_ref__c"), *none = fx_field(t, low, "tracker_ref__c");
    assert_non_null(key);
    assert_null(none);
    assert_int_equal(e2e_count_issues(&t->e), 1);

    /* the low one is raised to high: it enters scope */
    fx_edit(t, low, "{\"priority\":\"高\"}");
    assert_int_equal(e2e_sync_once(&t->e), 0);
    char *key2 = fx_field(t, low, "tracker_ref__c");
    assert_non_null(key2);
    assert_int_equal(e2e_count_issues(&t->e), 2);

    /* the urgent one drops to medium: the issue's edits no longer reach it (read by id, then
     * left as out of scope), and its own edits no longer reach the issue */
    fx_edit(t, urgent, "{\"priority\":\"中\"}");
    assert_int_equal(e2e_sync_once(&t->e), 0);
    edit_issue(t, key, "{\"summary\":\"支付失败（仅安卓）\"}");
    fx_edit(t, urgent, "{\"status\":\"处理中\"}");
    assert_int_equal(e2e_sync_once(&t->e), 0);
    char *name = fx_field(t, urgent, "name");
    assert_string_equal(name, "支付失败");
    cJSON *issue = e2e_jira_issue(&t->e, key);
    assert_string_equal(e2e_jfield(issue, "status"), "To Do");
    cJSON_Delete(issue);
    assert_int_equal(count_links(t), 2);
    assert_int_equal(e2e_count_issues(&t->e), 2);
    free(name);
    free(key);
    free(key2);
    free(urgent);
    free(low);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_zoho_criteria, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_keeps_to_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jira_fragment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jira_rejects_unknown_jql, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trello_labels_and_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_filters_are_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fxiaoke_filters, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
