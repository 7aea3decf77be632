/*
 * End to end: `crmbridge migrate` against the simulators, as an admin would run it. Each test
 * checks both sides (every record copied exactly once, each linked), the report and exit code,
 * that a rerun and the daemon's next cycle write nothing, and that a run killed at random journal
 * points (SIGKILL) or stopped with Ctrl-C continues to the same result with no duplicate.
 * CB_MIGRATE_CASES sets the size of the large Zoho -> Jira test (default below; the normal test
 * pass, tests/CMakeLists.txt, sets 10,000 as the migration issue asks, as bench_migrate runs).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/strbuf.h"
#include "tests/unit/e2e.h"

#define DEFAULT_CASES 1000

static int migrate(struct e2e *e, char **out, const char *extra1, const char *extra2)
{
    char *mine = NULL, **dst = out ? out : &mine; /* the output goes to *out, or is freed */
    int rc = tu_run_crmbridge(dst, "-c", e->conf, "migrate", "--pair", "feedback", "--from", "crm",
                              extra1, extra2, (char *)NULL);
    if (rc != 0)
        fprintf(stderr, "crmbridge migrate -> %d:\n%s\n", rc, *dst);
    free(mine);
    return rc;
}

static void fast_jira(struct e2e *e)
{
    /* the tests measure correctness, not the limiter (the benchmark keeps the real limits) */
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/config",
                         "{\"rate\":{\"GET\":5000,\"POST\":5000,\"PUT\":5000}}"));
}

/* Every case carries the key of one Jira issue, and no two cases share one. */
static void assert_one_issue_per_case(struct e2e *e, int n)
{
    assert_int_equal(e2e_count_issues(e), n);
    cJSON *all = sim_call(&e->zoho, "GET", "/_sim/records?module=Cases", NULL, NULL);
    int linked = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data")) linked +=
        e2e_zfield(r, "Jira_Issue") != NULL;
    cJSON_Delete(all);
    assert_int_equal(linked, n);
}

static void test_cases_into_jira(void **state)
{
    struct e2e *e = *state;
    const char *env = getenv("CB_MIGRATE_CASES");
    int n = env ? atoi(env) : DEFAULT_CASES;
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"count\":%d}", n));
    fast_jira(e);
    char *out = NULL;
    assert_int_equal(migrate(e, &out, "--workers", "8"), 0);
    char want[128];
    snprintf(want, sizeof(want), "read %d, created %d,", n, n);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof(want), "verification: %d linked copies, %d found on tracker, 0 missing",
             n, n);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "report: "));
    /* the report file says the same */
    char *file = strstr(out, "report: ") + 8;
    *strchr(file, '\n') = '\0';
    char *text = tu_read_file(file);
    cJSON *rep = cJSON_Parse(text);
    const cJSON *run = cJSON_GetObjectItem(rep, "run");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(run, "created")), n);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(run, "failed")), 0);
    cJSON_Delete(rep);
    free(text);
    free(out);
    assert_one_issue_per_case(e, n);
    /* the source is listed once: the cases our writes moved to the end of its listing are
     * checked from their ids (COQL, 2,000 a request), as is the count for the progress */
    assert_true(sim_count_query(&e->zoho, "GET", "/crm/v8/Cases", "ids=", 0) < 2 * (n / 200));
    assert_true(sim_count(&e->zoho, "POST", "/crm/v8/coql") >= 2);
    /* the keys go back to Zoho in batches (one per connection and page), never one per case */
    assert_true(sim_count(&e->zoho, "PUT", "/crm/v8/Cases") <= n / 20 + 5);
    /* a rerun writes nothing and says so; so does the daemon's next cycle */
    sim_clear_log(&e->zoho);
    sim_clear_log(&e->jira);
    assert_int_equal(migrate(e, &out, NULL, NULL), 0);
    assert_non_null(strstr(out, "nothing to copy"));
    free(out);
    assert_int_equal(e2e_writes(&e->zoho), 0);
    assert_int_equal(e2e_writes(&e->jira), 0);
    e2e_assert_quiet(e);
}

/* The verification reads every copy back by id: a copy deleted or changed on the target since is
 * a problem in the report (and exit 1), whichever connection read it. */
static void test_verification_finds_missing_and_changed_copies(void **state)
{
    struct e2e *e = *state;
    int n = 250; /* two pages, read back in several batches */
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"count\":%d}", n));
    fast_jira(e);
    assert_int_equal(migrate(e, NULL, "--workers", "4"), 0);
    cJSON *issues = e2e_jira_issues(e);
    const char *gone =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(issues, 3), "key"));
    const char *edited =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(issues, 200), "key"));
    char path[64];
    snprintf(path, sizeof(path), "/_sim/issue/%s", gone);
    cJSON_Delete(sim_call(&e->jira, "DELETE", path, NULL, NULL));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/edit",
                         "{\"key\":\"%s\",\"fields\":{\"summary\":\"Renamed by hand\"},"
                         "\"user\":\"Mia Krystof\"}",
                         edited));
    sim_clear_log(&e->jira);
    char *out = NULL;
    assert_int_equal(migrate(e, &out, "--workers", "4"), 1);
    char want[160];
    snprintf(want, sizeof(want),
             "verification: %d linked copies, %d found on tracker, 1 missing, "
             "1 changed",
             n, n - 1);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof(want), "tracker record '%s' differs from the copy agreed", edited);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "1 linked tracker record(s) not found on tracker"));
    free(out);
    cJSON_Delete(issues);
    /* read back by id in batches of up to 100, never listed */
    assert_int_equal(sim_count(&e->jira, "POST", "/rest/api/3/issue/bulkfetch"), 3);
    assert_int_equal(sim_count(&e->jira, "GET", "/rest/api/3/search/jql"), 0);
}

/* A case a person edits between two runs moves to the end of Zoho's listing, among the cases
 * the first run wrote to: the check by ids meets it, and the listing reads on to copy it. */
static void test_case_edited_meanwhile_is_copied(void **state)
{
    struct e2e *e = *state;
    int n = 600;
    cJSON *seeded =
        sim_ctl(&e->zoho, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"count\":%d}", n);
    const char *late =
        cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(seeded, "ids"), 500));
    fast_jira(e);
    assert_int_equal(migrate(e, NULL, "--limit", "250"), 0);
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"user\":\"Li Wei\","
                         "\"fields\":{\"Subject\":\"Edited meanwhile\"}}",
                         late));
    sim_clear_log(&e->zoho);
    assert_int_equal(migrate(e, NULL, "--workers", "4"), 0);
    assert_true(sim_count(&e->zoho, "POST", "/crm/v8/coql") >= 2); /* counted, then checked */
    assert_one_issue_per_case(e, n);
    char *key = e2e_linked_key(e, late);
    cJSON *issue = e2e_jira_issue(e, key);
    assert_string_equal(e2e_jfield(issue, "summary"), "Edited meanwhile");
    cJSON_Delete(issue);
    free(key);
    cJSON_Delete(seeded);
}

/* Every request of both simulators waits ms (a slow network: the run lasts seconds). */
static void slow_sims(struct e2e *e, int ms)
{
    const struct sim *sims[] = {&e->zoho, &e->jira};
    for (int i = 0; i < 2; i++)
        cJSON_Delete(sim_ctl(sims[i], "POST", "/_sim/faults",
                             "{\"rules\":[{\"path\":\".*\",\"kind\":\"latency\","
                             "\"delay_ms\":%d,\"count\":-1}]}",
                             ms));
}

/* With --json, one progress line a second: the phase, done of the total the source's count
 * gave, the rate and the time left; then the report. Piped without --json: no progress. On a
 * terminal: a bar redrawn in place with the rate and ETA. */
static void test_progress_json_and_terminal(void **state)
{
    struct e2e *e = *state;
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"count\":300}"));
    fast_jira(e);
    slow_sims(e, 30);
    char *out = NULL;
    assert_int_equal(tu_run_crmbridge(&out, "-c", e->conf, "migrate", "--pair", "feedback",
                                      "--from", "crm", "--limit", "100", "--workers", "2",
                                      (char *)NULL),
                     0);
    assert_null(strstr(out, "ETA"));
    assert_null(strchr(out, '\r'));
    free(out);
    /* a terminal: the bar, redrawn in place */
    assert_int_equal(tu_run_crmbridge_tty(&out, "-c", e->conf, "migrate", "--pair", "feedback",
                                          "--from", "crm", "--limit", "100", "--workers", "2",
                                          (char *)NULL),
                     0);
    assert_non_null(strstr(out, "\rmigrate 'feedback': "));
    assert_non_null(strstr(out, "/100 ("));
    assert_non_null(strstr(out, " records/s  ETA "));
    free(out);
    assert_int_equal(tu_run_crmbridge(&out, "-c", e->conf, "migrate", "--pair", "feedback",
                                      "--from", "crm", "--json", "--workers", "2", (char *)NULL),
                     0);
    int lines = 0, last_done = -1, reports = 0, totals = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j); /* every line is JSON */
        const cJSON *pr = cJSON_GetObjectItem(j, "progress");
        reports += cJSON_GetObjectItem(j, "run") != NULL;
        if (pr && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(pr, "phase")), "copy")) {
            int done = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(pr, "done"));
            /* counted from where the last run stopped, without the cases it moved (not known
             * for the first moments: the source is counted while the first page is written) */
            const cJSON *total = cJSON_GetObjectItem(pr, "total");
            assert_true(!total || (int)cJSON_GetNumberValue(total) == 100);
            totals += total != NULL;
            assert_true(done >= last_done && done <= 100);
            assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(pr, "rate")) >= 0);
            if (done > 0 && total)
                assert_non_null(cJSON_GetObjectItem(pr, "eta_s"));
            last_done = done;
            lines++;
        }
        cJSON_Delete(j);
    }
    assert_true(lines >= 2 && totals >= 1);
    assert_int_equal(reports, 1);
    free(out);
    assert_one_issue_per_case(e, 300);
}

static void test_dry_run_writes_nothing(void **state)
{
    struct e2e *e = *state;
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"count\":120}"));
    sim_clear_log(&e->zoho);
    char *out = NULL;
    assert_int_equal(migrate(e, &out, "--dry-run", NULL), 0);
    assert_non_null(strstr(out, "would create 120,"));
    assert_non_null(strstr(out, "requests"));
    free(out);
    assert_int_equal(e2e_writes(&e->zoho), 0);
    assert_int_equal(e2e_writes(&e->jira), 0);
    assert_int_equal(e2e_count_issues(e), 0);
    /* and the real run afterwards starts from the beginning */
    assert_int_equal(migrate(e, NULL, NULL, NULL), 0);
    assert_one_issue_per_case(e, 120);
}

static void test_filter_limit_and_json(void **state)
{
    struct e2e *e = *state;
    fast_jira(e);
    for (int i = 0; i < 30; i++)
        free(e2e_seed_case(e, i % 3 ? "{\"Subject\":\"Open one\",\"Status\":\"New\"}"
                                    : "{\"Subject\":\"Closed one\",\"Status\":\"Closed\"}"));
    char *out = NULL;
    assert_int_equal(migrate(e, &out, "--filter", "status=nowhere,title="), 0);
    free(out);
    assert_int_equal(e2e_count_issues(e), 0);
    assert_int_equal(migrate(e, &out, "--filter", "nosuchfield=1"), 2);
    assert_non_null(strstr(out, "nosuchfield"));
    free(out);
    /* a slice of 7, then the rest of the open ones */
    char *json = NULL;
    assert_int_equal(tu_run_crmbridge(&json, "-c", e->conf, "migrate", "--pair", "feedback",
                                      "--from", "crm", "--filter", "status!=done", "--limit", "7",
                                      "--json", (char *)NULL),
                     0);
    cJSON *rep = NULL;
    for (const char *line = json; line && *line;) { /* the report is the last JSON line */
        const char *nl = strchr(line, '\n');
        cJSON *j = cJSON_ParseWithLength(line, nl ? (size_t)(nl - line) : strlen(line));
        if (j && cJSON_GetObjectItem(j, "run")) {
            cJSON_Delete(rep);
            rep = j;
        } else {
            cJSON_Delete(j);
        }
        line = nl ? nl + 1 : NULL;
    }
    assert_non_null(rep);
    assert_int_equal(
        (int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "run"), "created")),
        7);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(rep, "stopped")));
    cJSON_Delete(rep);
    free(json);
    assert_int_equal(e2e_count_issues(e), 7);
    assert_int_equal(migrate(e, &out, "--filter", "status!=done"), 0);
    assert_non_null(strstr(out, "whole migration: read 30, created 20,"));
    assert_non_null(strstr(out, "filtered out 10"));
    free(out);
    assert_int_equal(e2e_count_issues(e), 20);
}

/* A run killed at random journal points three times, then resumed: each case copied once. */
static void test_killed_three_times_then_resumed(void **state)
{
    struct e2e *e = *state;
    int n = 400;
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"count\":%d}", n));
    fast_jira(e);
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    for (int k = 0; k < 3; k++) {
        char after[16];
        snprintf(after, sizeof(after), "%d", 5 + rand() % 300);
        fprintf(stderr, "kill %d after %s commits (seed %u)\n", k + 1, after, seed);
        setenv("CRMBRIDGE_CRASH_AFTER_COMMITS", after, 1);
        char *out = NULL;
        int rc = migrate(e, &out, k > 0 ? "--workers" : NULL, "6"); /* two killed in parallel */
        unsetenv("CRMBRIDGE_CRASH_AFTER_COMMITS");
        free(out);
        assert_true(rc == 137 || rc == 0); /* killed (or finished before the point) */
    }
    char *out = NULL;
    assert_int_equal(migrate(e, &out, NULL, NULL), 0);
    assert_non_null(strstr(out, "whole migration"));
    free(out);
    assert_one_issue_per_case(e, n);
    /* Jira has no duplicate: every issue is linked from exactly one case */
    cJSON *issues = e2e_jira_issues(e);
    assert_int_equal(cJSON_GetArraySize(issues), n);
    cJSON_Delete(issues);
    sim_clear_log(&e->zoho);
    sim_clear_log(&e->jira);
    assert_int_equal(migrate(e, NULL, NULL, NULL), 0);
    assert_int_equal(e2e_writes(&e->zoho), 0);
    assert_int_equal(e2e_writes(&e->jira), 0);
    e2e_assert_quiet(e);
}

/* Ctrl-C stops after the writes in flight and says how to continue; the rerun finishes. With
 * workers, pages queued behind the running ones are dropped, not written. */
static void sigint_then_resume(struct e2e *e, const char *workers)
{
    int n = 600;
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"count\":%d}", n));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/config", "{\"rate\":{\"POST\":100}}"));
    char outpath[700];
    snprintf(outpath, sizeof(outpath), "%s/sigint.out", e->dir);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(outpath, "w", stdout);
        (void)f;
        dup2(STDOUT_FILENO, STDERR_FILENO);
        execl(tu_crmbridge_bin(), "crmbridge", "-c", e->conf, "migrate", "--pair", "feedback",
              "--from", "crm", "--workers", workers, (char *)NULL);
        _exit(127);
    }
    /* wait until some issues exist, then interrupt */
    for (int i = 0; i < 200 && e2e_count_issues(e) < 50; i++)
        usleep(50000);
    kill(pid, SIGINT);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    char *out = tu_read_file(outpath);
    assert_non_null(strstr(out, "Run the same command again to continue"));
    free(out);
    int made = e2e_count_issues(e);
    assert_true(made > 0 && made < n);
    fast_jira(e);
    assert_int_equal(migrate(e, NULL, NULL, NULL), 0);
    assert_one_issue_per_case(e, n);
    e2e_assert_quiet(e);
}

static void test_sigint_stops_cleanly(void **state)
{
    sigint_then_resume(*state, "1");
}

static void test_sigint_stops_workers_cleanly(void **state)
{
    sigint_then_resume(*state, "4");
}

/* Creates whose answer was lost are found by their markers and linked, never made twice: one
 * bulk create of n cases, its answer dropped, over `workers` connections (one chunk each). */
static void lost_answer_links_existing(struct e2e *e, const char *workers, int n, int lost)
{
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"count\":%d}", n));
    fast_jira(e);
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"POST\",\"path\":\"/rest/api/3/issue/bulk\","
                         "\"kind\":\"drop_response\",\"count\":1}]}"));
    char *out = NULL, want[64];
    assert_int_equal(migrate(e, &out, "--workers", workers), 1); /* postponed: never green */
    snprintf(want, sizeof(want), "postponed %d", lost);
    assert_non_null(strstr(out, want));
    free(out);
    assert_int_equal(e2e_count_issues(e), n);
    assert_int_equal(migrate(e, &out, "--workers", workers), 0);
    snprintf(want, sizeof(want), "linked to existing %d", lost);
    assert_non_null(strstr(out, want));
    free(out);
    assert_one_issue_per_case(e, n);
    e2e_assert_quiet(e);
}

static void test_lost_answer_links_existing(void **state)
{
    lost_answer_links_existing(*state, "1", 30, 30); /* one bulk create of all 30 */
}

static void test_lost_answer_with_workers(void **state)
{
    lost_answer_links_existing(*state, "8", 32, 4); /* one chunk of 4 of the 8 */
}

/* A target that already holds some of the records (keys typed into the CRM by hand): --match
 * links those instead of copying them, the CRM's values then win on the linked pair, a value
 * two target records share is skipped with its reason, and a rerun writes nothing. */
static void test_match_links_existing_records(void **state)
{
    struct e2e *e = *state;
    cJSON *seeded = sim_ctl(&e->jira, "POST", "/_sim/seed",
                            "{\"issues\":[{\"summary\":\"Old summary A\"},{\"summary\":\"Old B\"},"
                            "{\"summary\":\"Same title\"},{\"summary\":\"Same title\"}]}");
    const char *ka = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(seeded, "issues"), 0), "key"));
    const char *kb = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(seeded, "issues"), 1), "key"));
    char fields[200];
    snprintf(fields, sizeof(fields), "{\"Subject\":\"Export A\",\"Jira_Issue\":\" %s \"}", ka);
    char *ida = e2e_seed_case(e, fields);
    snprintf(fields, sizeof(fields), "{\"Subject\":\"Export B\",\"Jira_Issue\":\"%s\"}", kb);
    char *idb = e2e_seed_case(e, fields);
    char *idc = e2e_seed_case(e, "{\"Subject\":\"Brand new\"}");
    fast_jira(e);
    char *out = NULL;
    assert_int_equal(migrate(e, &out, "--match", "tracker_ref"), 0);
    assert_non_null(strstr(out, "created 1, linked to existing 2,"));
    free(out);
    assert_int_equal(e2e_count_issues(e), 5); /* 4 seeded + the brand new one */
    char *key = e2e_linked_key(e, ida);
    assert_string_equal(key, ka);
    cJSON *iss = e2e_jira_issue(e, ka);
    assert_string_equal(e2e_jfield(iss, "summary"), "Export A"); /* the CRM's value won */
    cJSON_Delete(iss);
    free(key);
    key = e2e_linked_key(e, idb);
    assert_string_equal(key, kb);
    free(key);
    sim_clear_log(&e->jira);
    assert_int_equal(migrate(e, NULL, "--match", "tracker_ref"), 0);
    assert_int_equal(e2e_writes(&e->jira), 0);
    e2e_assert_quiet(e);

    /* two Jira issues are titled "Same title": neither is guessed, nothing is copied */
    char *idd = e2e_seed_case(e, "{\"Subject\":\"Same title\"}");
    assert_int_equal(migrate(e, &out, "--match", "title"), 1);
    assert_non_null(strstr(out, "skipped 1"));
    assert_non_null(strstr(out, "several tracker records have its 'title'; link it by hand"));
    free(out);
    assert_int_equal(e2e_count_issues(e), 5);
    assert_int_equal(migrate(e, &out, "--match", "no_such_field"), 2);
    free(out);
    free(idd);
    free(ida);
    free(idb);
    free(idc);
    cJSON_Delete(seeded);
}

/* ---------------------------------------------------------------- a Trello board into Fxiaoke */

#define TRELLO_KEY "d1f7b2c9e4a8f3b6c0d5e9a2f4b7c1e8"
#define TRELLO_TOKEN "ATTA9c4e1b7d2f8a3c6e0b5d9f1a4c7e2b8d3f6a0c5e9b1d4f7a2c8e3b6d0f5a9c1e4b7"
#define FX_USER "FSUID_00000000000000000000000000000001"

struct tf {
    struct sim fx, trello;
    char *dir;
    char conf[600];
};

/* Comments travel with their records (author and time in the copy), once, after a first note
 * saying who created the original and when: a rerun and the daemon's next cycle copy nothing
 * again; --no-comments leaves them behind. */
static void test_comments_travel_with_records(void **state)
{
    struct e2e *e = *state;
    char *ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = e2e_seed_case(e, "{\"Subject\":\"Export to PDF cuts tables\",\"Status\":\"New\"}");
    e2e_add_note(e, ids[0], "Customer uses Safari 17");
    e2e_add_note(e, ids[0], "Also fails on the mobile app");
    e2e_add_note(e, ids[1], "客户要求本周内修复");
    fast_jira(e);
    char *out = NULL;
    assert_int_equal(migrate(e, &out, "--workers", "2"), 0);
    if (!strstr(out, "comments copied 3"))
        fprintf(stderr, "migrate printed:\n%s\n", out);
    assert_non_null(strstr(out, "comments copied 3"));
    free(out);
    /* the copies' comment lists come with their read back, never one request per copy */
    assert_int_equal(e2e_jira_comment_reads(e), 0);
    const int want[3] = {2, 1, 0};
    for (int i = 0; i < 3; i++) {
        char *key = e2e_linked_key(e, ids[i]);
        assert_non_null(key);
        cJSON *jc = e2e_jira_comments(e, key);
        assert_int_equal(cJSON_GetArraySize(jc), want[i] + 1);
        const char *first =
            cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(jc, 0), "text"));
        assert_non_null(strstr(first, "Created by "));
        assert_non_null(strstr(first, " UTC in Zoho CRM; copied here by crmbridge."));
        assert_int_equal(e2e_count_with(jc, "text", "Comment by Li Wei on ", "(Zoho CRM)", NULL),
                         want[i]);
        if (i == 1)
            assert_int_equal(e2e_count_with(jc, "text", "客户要求本周内修复", NULL), 1);
        cJSON_Delete(jc);
        free(key);
    }
    sim_clear_log(&e->zoho);
    sim_clear_log(&e->jira);
    assert_int_equal(migrate(e, NULL, NULL, NULL), 0);
    assert_int_equal(e2e_writes(&e->jira), 0);
    e2e_assert_quiet(e); /* the daemon's next cycle copies no comment back or again */

    /* a fourth case with a note, migrated without comments */
    char *id = e2e_seed_case(e, "{\"Subject\":\"Login loops\",\"Status\":\"New\"}");
    e2e_add_note(e, id, "Stays behind");
    assert_int_equal(migrate(e, &out, "--no-comments", NULL), 0);
    assert_non_null(strstr(out, "created 1,"));
    assert_non_null(strstr(out, "comments copied 0"));
    free(out);
    char *key = e2e_linked_key(e, id);
    cJSON *jc = e2e_jira_comments(e, key);
    assert_int_equal(cJSON_GetArraySize(jc), 0);
    cJSON_Delete(jc);
    free(key);
    free(id);
    for (int i = 0; i < 3; i++)
        free(ids[i]);
}

static int tf_setup(void **state)
{
    struct tf *t = calloc(1, sizeof(*t));
    t->dir = tu_tmpdir();
    assert_int_equal(sim_start(&t->fx, "fxiaoke", NULL), 0);
    assert_int_equal(sim_start(&t->trello, "trello", NULL), 0);
    char path[700], text[4096];
    snprintf(path, sizeof(path), "%s/fx.code", t->dir);
    assert_int_equal(tu_write_file(path, "sim-permanent-code\n"), 0);
    setenv("CB_TEST_FX_SECRET", "sim-app-secret", 1);
    setenv("CB_TEST_TRELLO_KEY", TRELLO_KEY, 1);
    setenv("CB_TEST_TRELLO_TOKEN", TRELLO_TOKEN, 1);
    cJSON_Delete(sim_ctl(&t->fx, "POST", "/_sim/config", "{\"rate_calls\":5000}"));
    cJSON *b = sim_ctl(&t->trello, "POST", "/_sim/seed",
                       "{\"new_board\":{\"name\":\"Old team board\",\"lists\":[\"Inbox\","
                       "\"Doing\",\"Done\"]}}");
    snprintf(t->conf, sizeof(t->conf), "%s/crmbridge.conf", t->dir);
    snprintf(text, sizeof(text),
             "state_dir = \"%s/state\";\n"
             "endpoints = {\n"
             "  fx = { type = \"fxiaoke\"; api_url = \"%s\"; app_id = \"FSAID_SIMAPP01\";\n"
             "    app_secret = \"env:CB_TEST_FX_SECRET\"; permanent_code = \"file:%s\";\n"
             "    user_id = \"" FX_USER "\"; rate_limit = 5000; };\n"
             "  board = { type = \"trello\"; api_url = \"%s\";\n"
             "    key = \"env:CB_TEST_TRELLO_KEY\"; token = \"env:CB_TEST_TRELLO_TOKEN\"; };\n"
             "};\n"
             "pairs = ( { name = \"handover\";\n"
             "  crm = { endpoint = \"fx\"; object = \"CasesObj\"; };\n"
             "  tracker = { endpoint = \"board\"; board = \"%s\"; list = \"Inbox\"; };\n"
             "  create = \"to_crm\"; overlap = 5; } );\n",
             t->dir, t->fx.base, path, t->trello.base,
             cJSON_GetStringValue(cJSON_GetObjectItem(b, "board")));
    cJSON_Delete(b);
    assert_int_equal(tu_write_file(t->conf, text), 0);
    *state = t;
    return 0;
}

static int tf_teardown(void **state)
{
    struct tf *t = *state;
    sim_stop(&t->fx);
    sim_stop(&t->trello);
    tu_rmrf(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

/* Requests that change data: Fxiaoke's create/update/invalid calls, Trello's non-GETs. */
static int tf_writes(struct tf *t)
{
    static const char *const verbs[] = {"/create", "/update", "/invalid", "/delete", NULL};
    cJSON *log = sim_call(&t->fx, "GET", "/_sim/log", NULL, NULL);
    int n = 0;
    const cJSON *en;
    cJSON_ArrayForEach(en, log) for (int i = 0; verbs[i]; i++) n +=
        strstr(cJSON_GetStringValue(cJSON_GetObjectItem(en, "path")), verbs[i]) != NULL;
    cJSON_Delete(log);
    return n + sim_count(&t->trello, "POST", NULL) + sim_count(&t->trello, "PUT", NULL) +
           sim_count(&t->trello, "DELETE", NULL);
}

static void test_trello_board_into_fxiaoke(void **state)
{
    struct tf *t = *state;
    int n = 300;
    cJSON_Delete(sim_ctl(&t->trello, "POST", "/_sim/seed",
                         "{\"board\":\"Old team board\",\"list\":\"Doing\",\"count\":%d}", n));
    char *out = NULL;
    int rc = tu_run_crmbridge(&out, "-c", t->conf, "migrate", "--pair", "handover", "--from",
                              "tracker", (char *)NULL);
    if (rc)
        fprintf(stderr, "%s", out);
    assert_int_equal(rc, 0);
    char want[128];
    snprintf(want, sizeof(want), "created %d,", n);
    assert_non_null(strstr(out, want));
    free(out);
    /* every card once in Fxiaoke, in the status of its list, pointing back at its card */
    cJSON *all = sim_call(&t->fx, "GET", "/_sim/records?object=CasesObj", NULL, NULL);
    int copies = 0, with_ref = 0, doing = 0, card_time = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(all, "data"))
    {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(r, "name"));
        /* created when its card was (a card id holds its creation second: hasSpecifyTime),
         * not when the copy was made (Fxiaoke's own stamp has milliseconds) */
        card_time +=
            (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(r, "create_time")) % 1000 == 0;
        copies += name && !strncmp(name, "Seeded card ", 12);
        with_ref += cJSON_GetStringValue(cJSON_GetObjectItem(r, "tracker_ref__c")) != NULL;
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(r, "status__label"));
        doing += st && !strcmp(st, "处理中");
    }
    cJSON_Delete(all);
    assert_int_equal(copies, n);
    assert_int_equal(with_ref, n);
    assert_int_equal(doing, n);
    assert_int_equal(card_time, n);
    /* a rerun and the daemon's next cycle write nothing */
    sim_clear_log(&t->fx);
    sim_clear_log(&t->trello);
    assert_int_equal(tu_run_crmbridge(&out, "-c", t->conf, "migrate", "--pair", "handover",
                                      "--from", "tracker", (char *)NULL),
                     0);
    assert_non_null(strstr(out, "nothing to copy"));
    free(out);
    assert_int_equal(tu_run_crmbridge(&out, "-c", t->conf, "sync", "--once", (char *)NULL), 0);
    free(out);
    assert_int_equal(tf_writes(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cases_into_jira, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_verification_finds_missing_and_changed_copies,
                                        e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_case_edited_meanwhile_is_copied, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_progress_json_and_terminal, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_writes_nothing, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_filter_limit_and_json, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_killed_three_times_then_resumed, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_sigint_stops_workers_cleanly, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_sigint_stops_cleanly, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_lost_answer_links_existing, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_lost_answer_with_workers, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_comments_travel_with_records, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_match_links_existing_records, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_trello_board_into_fxiaoke, tf_setup, tf_teardown),
    };
    if (getenv("CB_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CB_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
