/* Shared helpers of the end-to-end tests (see e2e.h). */
#include "tests/unit/e2e.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"

void e2e_write_conf(struct e2e *e, const char *extra_pair)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "state_dir = \"%s/state\";\n"
             "endpoints = {\n"
             "  zoho = { type = \"zoho\"; accounts_url = \"%s\"; api_url = \"%s\";\n"
             "    client_id = \"1000.SIMCLIENT\"; client_secret = \"env:CB_TEST_ZOHO_SECRET\";\n"
             "    refresh_token = \"file:%s/zoho.token\"; };\n"
             "  jira = { type = \"jira\"; api_url = \"%s\"; email = \"bot@acme.test\";\n"
             "    api_token = \"env:CB_TEST_JIRA_TOKEN\"; search_lag = 0;\n"
             /* correctness, not pacing (test_conn_jira paces against the real limits); tests
              * that keep the simulator's limits see its 429s and retry */
             "    burst_limit = 2000; };\n"
             "};\n"
             "pairs = ( { name = \"feedback\";\n"
             "  crm = { endpoint = \"zoho\"; module = \"Cases\"; };\n"
             "  tracker = { endpoint = \"jira\"; project = \"SUP\"; issue_type = \"Task\"; };\n"
             "  overlap = 5; %s } );\n",
             e->dir, e->zoho.base, e->zoho.base, e->dir, e->jira.base,
             extra_pair ? extra_pair : "");
    assert_int_equal(tu_write_file(e->conf, text), 0);
}

int e2e_setup(void **state)
{
    struct e2e *e = calloc(1, sizeof(*e));
    e->dir = tu_tmpdir();
    assert_int_equal(sim_start(&e->zoho, "zoho", NULL), 0);
    assert_int_equal(sim_start(&e->jira, "jira", NULL), 0);
    char tok[600];
    snprintf(tok, sizeof(tok), "%s/zoho.token", e->dir);
    assert_int_equal(tu_write_file(tok, "1000.sim-refresh-token\n"), 0);
    setenv("CB_TEST_ZOHO_SECRET", "sim-client-secret", 1);
    setenv("CB_TEST_JIRA_TOKEN", "sim-jira-token", 1);
    snprintf(e->conf, sizeof(e->conf), "%s/crmbridge.conf", e->dir);
    e2e_write_conf(e, NULL);
    *state = e;
    return 0;
}

int e2e_teardown(void **state)
{
    struct e2e *e = *state;
    sim_stop(&e->zoho);
    sim_stop(&e->jira);
    tu_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

int e2e_run(struct e2e *e, char **out, const char *a1, const char *a2)
{
    char *o = NULL;
    int rc = tu_run_crmbridge(&o, "-c", e->conf, a1, a2, (char *)NULL);
    if (rc != 0 && rc != 1)
        fprintf(stderr, "crmbridge %s %s -> %d:\n%s\n", a1, a2 ? a2 : "", rc, o);
    if (out)
        *out = o;
    else
        free(o);
    return rc;
}

int e2e_sync_once(struct e2e *e)
{
    return e2e_run(e, NULL, "sync", "--once");
}

/* Requests that change data (reads over POST excluded). */
int e2e_writes(const struct sim *s)
{
    const char *const reads[] = {"/rest/api/3/search", "/rest/api/3/issue/bulkfetch",
                                 "/crm/v8/coql", "/oauth/v2/token", NULL};
    cJSON *log = sim_call(s, "GET", "/_sim/log", NULL, NULL);
    int n = 0;
    const cJSON *en;
    cJSON_ArrayForEach(en, log)
    {
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(en, "method"));
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(en, "path"));
        if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
            continue;
        int read = 0;
        for (int i = 0; reads[i]; i++)
            if (!strncmp(p, reads[i], strlen(reads[i])))
                read = 1;
        n += !read;
    }
    cJSON_Delete(log);
    return n;
}

void e2e_assert_quiet(struct e2e *e)
{
    sim_clear_log(&e->zoho);
    sim_clear_log(&e->jira);
    assert_int_equal(e2e_sync_once(e), 0);
    assert_int_equal(e2e_writes(&e->zoho), 0);
    assert_int_equal(e2e_writes(&e->jira), 0);
}

void e2e_assert_one_linked_issue(struct e2e *e, const char *case_id)
{
    assert_int_equal(e2e_count_issues(e), 1);
    char *key = e2e_linked_key(e, case_id);
    assert_non_null(key);
    e2e_assert_quiet(e);
    free(key);
}

void e2e_advance_clocks(struct e2e *e, long long ms)
{
    const struct sim *both[2] = {&e->zoho, &e->jira};
    for (int i = 0; i < 2; i++)
        cJSON_Delete(sim_ctl(both[i], "POST", "/_sim/clock", "{\"advance_ms\":%lld}", ms));
}

cJSON *e2e_jira_issues(struct e2e *e)
{
    return sim_call(&e->jira, "GET", "/_sim/issues", NULL, NULL);
}

cJSON *e2e_jira_issue(struct e2e *e, const char *key)
{
    cJSON *all = e2e_jira_issues(e), *found = NULL;
    const cJSON *i;
    cJSON_ArrayForEach(i, all)
    {
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(i, "key")), key))
            found = cJSON_Duplicate(i, 1);
    }
    cJSON_Delete(all);
    assert_non_null(found);
    return found;
}

const char *e2e_jfield(const cJSON *issue, const char *f)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(issue, "fields"), f);
    if (cJSON_IsObject(v)) {
        const cJSON *n = cJSON_GetObjectItem(v, "name");
        return n ? cJSON_GetStringValue(n) : cJSON_GetStringValue(cJSON_GetObjectItem(v, "value"));
    }
    return cJSON_GetStringValue(v);
}

cJSON *e2e_zoho_case(struct e2e *e, const char *id)
{
    cJSON *all = sim_call(&e->zoho, "GET", "/_sim/records?module=Cases", NULL, NULL);
    cJSON *found = NULL;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data"))
    {
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r, "id")), id))
            found = cJSON_Duplicate(r, 1);
    }
    cJSON_Delete(all);
    assert_non_null(found);
    return found;
}

const char *e2e_zfield(const cJSON *c, const char *f)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(c, f));
}

/* Seeds one case; returns its id (caller frees). */
char *e2e_seed_case(struct e2e *e, const char *fields_json)
{
    struct strbuf b = STRBUF_INIT;
    (void)strbuf_addf(&b, "{\"module\":\"Cases\",\"records\":[%s]}", fields_json);
    cJSON *r = sim_ctl(&e->zoho, "POST", "/_sim/seed", "%s", b.buf);
    strbuf_release(&b);
    const cJSON *ids = cJSON_GetObjectItem(r, "ids");
    char *id = strdup(cJSON_GetStringValue(cJSON_GetArrayItem(ids, 0)));
    cJSON_Delete(r);
    return id;
}

char *e2e_linked_key(struct e2e *e, const char *case_id)
{
    cJSON *c = e2e_zoho_case(e, case_id);
    const char *k = e2e_zfield(c, "Jira_Issue");
    char *key = k ? strdup(k) : NULL;
    cJSON_Delete(c);
    return key;
}

int e2e_count_issues(struct e2e *e)
{
    cJSON *all = e2e_jira_issues(e);
    int n = cJSON_GetArraySize(all);
    cJSON_Delete(all);
    return n;
}

char *e2e_mapping_with(struct e2e *e, const char *extra_fields, const char *extra_top)
{
    char *map = tu_read_source("etc/mappings/zoho-jira.conf");
    const char *anchor = "  { item = \"tracker_ref\";";
    char *at = strstr(map, anchor);
    assert_non_null(at);
    struct strbuf sb = STRBUF_INIT, pair = STRBUF_INIT;
    (void)strbuf_add(&sb, map, (size_t)(at - map));
    (void)strbuf_adds(&sb, extra_fields);
    (void)strbuf_adds(&sb, at);
    (void)strbuf_addf(&sb, "\n%s\n", extra_top ? extra_top : "");
    (void)strbuf_addf(&pair, "%s/zoho-jira.conf", e->dir);
    assert_int_equal(tu_write_file(pair.buf, sb.buf), 0);
    strbuf_setf(&pair, "mapping = \"%s/zoho-jira.conf\";", e->dir);
    strbuf_release(&sb);
    free(map);
    return strbuf_detach(&pair);
}

/* GETs of a Jira issue's comment list since the log was last cleared. */
int e2e_jira_comment_reads(struct e2e *e)
{
    cJSON *log = sim_call(&e->jira, "GET", "/_sim/log", NULL, NULL);
    int n = 0;
    const cJSON *en;
    cJSON_ArrayForEach(en, log)
    {
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(en, "method"));
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(en, "path"));
        size_t len = p ? strlen(p) : 0;
        n += m && !strcmp(m, "GET") && len > 8 && !strcmp(p + len - 8, "/comment");
    }
    cJSON_Delete(log);
    return n;
}

cJSON *e2e_jira_comments(struct e2e *e, const char *key)
{
    cJSON *i = e2e_jira_issue(e, key);
    cJSON *c = cJSON_DetachItemFromObject(i, "comments");
    cJSON_Delete(i);
    return c;
}

cJSON *e2e_zoho_notes(struct e2e *e, const char *case_id)
{
    char path[200];
    snprintf(path, sizeof(path), "/_sim/notes?module=Cases&id=%s", case_id);
    return sim_call(&e->zoho, "GET", path, NULL, NULL);
}

int e2e_count_with(const cJSON *arr, const char *f, ...)
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

void e2e_add_note(struct e2e *e, const char *case_id, const char *text)
{
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/note",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"text\":\"%s\",\"user\":\"Li Wei\"}",
                         case_id, text));
}
