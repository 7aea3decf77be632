/*
 * End to end: `crmbridge daemon` as a service, against the Zoho CRM and Jira simulators. A
 * signed Jira webhook makes a change reach the CRM within a second although polling is hourly;
 * a bad signature is refused and changes nothing; polling catches a missed webhook; a failing
 * pair does not slow the others; SIGHUP with a broken config keeps the daemon on the old one; a
 * second daemon on the same state dir is refused; /metrics and /healthz answer.
 */
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/strbuf.h"
#include "sync/hooks.h"
#include "tests/unit/e2e.h"

#define SECRET "It's a Secret to Everybody"

struct daemon_run {
    pid_t pid;
    int port;
    char log[700];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    close(s);
    return ntohs(sa.sin_port);
}

/* Appends the webhooks group (listening on a free port) to the e2e config. */
static int add_webhooks(struct e2e *e)
{
    int port = free_port();
    char *text = tu_read_file(e->conf);
    struct strbuf b = STRBUF_INIT;
    (void)strbuf_addf(&b,
                      "%swebhooks = { listen = \"127.0.0.1:%d\"; secret = \"env:CB_TEST_HOOK\"; "
                      "max_body_bytes = 65536; };\n",
                      text, port);
    assert_int_equal(tu_write_file(e->conf, b.buf), 0);
    setenv("CB_TEST_HOOK", SECRET, 1);
    strbuf_release(&b);
    free(text);
    return port;
}

struct http_answer {
    long status;
    struct strbuf body;
};

static size_t collect(char *p, size_t sz, size_t n, void *arg)
{
    (void)strbuf_add(arg, p, sz * n);
    return sz * n;
}

/* A request to the daemon's listener; body NULL means GET. */
static void daemon_http(int port, const char *path, const char *body, struct curl_slist *hdrs,
                        struct http_answer *a)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    strbuf_init(&a->body, 0);
    a->status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a->body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (hdrs)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    curl_easy_cleanup(c);
}

/* Sends a Jira-style delivery about key, signed with secret; returns the HTTP status. */
static long send_jira_hook(int port, const char *key, const char *secret, const char *delivery)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"timestamp\":1,\"webhookEvent\":\"jira:issue_updated\",\"issue\":{\"id\":\"1\","
             "\"key\":\"%s\"}}",
             key);
    struct strbuf sig = STRBUF_INIT, h1 = STRBUF_INIT, h2 = STRBUF_INIT;
    hooks_sign_sha256(secret, body, strlen(body), &sig);
    (void)strbuf_addf(&h1, "X-Hub-Signature: %s", sig.buf);
    (void)strbuf_addf(&h2, "X-Atlassian-Webhook-Identifier: %s", delivery);
    struct curl_slist *hdrs = curl_slist_append(NULL, h1.buf);
    hdrs = curl_slist_append(hdrs, h2.buf);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    struct http_answer a;
    daemon_http(port, "/hooks/jira", body, hdrs, &a);
    curl_slist_free_all(hdrs);
    strbuf_release(&a.body);
    strbuf_release(&sig);
    strbuf_release(&h1);
    strbuf_release(&h2);
    return a.status;
}

/* Stopped by the teardown, also when a test fails half-way. */
static pid_t running = -1;
static struct sim extra[3];
static int n_extra;

static int daemon_teardown(void **state)
{
    if (running > 0) {
        kill(running, SIGKILL);
        waitpid(running, NULL, 0);
    }
    running = -1;
    while (n_extra > 0)
        sim_stop(&extra[--n_extra]);
    return e2e_teardown(state);
}

/* Extra daemon arguments for the next daemon_start (NULL-terminated). */
static const char *extra_args[4];

static void daemon_start(struct e2e *e, struct daemon_run *d, int port)
{
    snprintf(d->log, sizeof(d->log), "%s/daemon.log", e->dir);
    d->port = port;
    d->pid = fork();
    assert_true(d->pid >= 0);
    if (d->pid == 0) {
        FILE *f = freopen(d->log, "a", stderr);
        (void)f;
        dup2(2, 1);
        const char *bin = tu_crmbridge_bin();
        execl(bin, bin, "-c", e->conf, "daemon", extra_args[0], extra_args[1], extra_args[2],
              (char *)NULL);
        _exit(127);
    }
    running = d->pid;
    if (port <= 0)
        return;
    struct http_answer a = {0};
    for (int i = 0; i < 100 && a.status != 200; i++) {
        usleep(50 * 1000);
        daemon_http(port, "/healthz", NULL, NULL, &a);
        strbuf_release(&a.body);
    }
    assert_int_equal(a.status, 200);
}

/* SIGTERM, then the exit status (-1 when it did not exit within 10 s). */
static int daemon_stop(struct daemon_run *d)
{
    kill(d->pid, SIGTERM);
    int ws = 0;
    for (int i = 0; i < 100; i++) {
        if (waitpid(d->pid, &ws, WNOHANG) == d->pid) {
            running = -1;
            return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
        }
        usleep(100 * 1000);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &ws, 0);
    return -1;
}

static char *wait_linked(struct e2e *e, const char *id)
{
    char *key = NULL;
    for (int i = 0; i < 100 && !key; i++) {
        key = e2e_linked_key(e, id);
        if (!key)
            usleep(100 * 1000);
    }
    assert_non_null(key);
    return key;
}

static int zoho_status_is(struct e2e *e, const char *id, const char *want)
{
    cJSON *c = e2e_zoho_case(e, id);
    const char *s = e2e_zfield(c, "Status");
    int ok = s && !strcmp(s, want);
    cJSON_Delete(c);
    return ok;
}

/* Milliseconds until the case's status is want (polling every 20 ms), or -1 after limit_ms. */
static int64_t wait_status(struct e2e *e, const char *id, const char *want, int64_t limit_ms)
{
    int64_t t0 = now_ms();
    while (now_ms() - t0 < limit_ms) {
        if (zoho_status_is(e, id, want))
            return now_ms() - t0;
        usleep(20 * 1000);
    }
    return -1;
}

static void transition(struct e2e *e, const char *key, const char *to)
{
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/transition",
                         "{\"key\":\"%s\",\"to\":\"%s\",\"user\":\"Mia Krystof\"}", key, to));
}

static void test_signed_webhook_syncs_within_a_second(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "interval = 3600;");
    int port = add_webhooks(e);
    char *id = e2e_seed_case(e, "{\"Subject\":\"SSO with WeCom\",\"Status\":\"New\"}");
    struct daemon_run d;
    daemon_start(e, &d, port);
    char *key = wait_linked(e, id);
    usleep(300 * 1000); /* let the first cycle end */

    /* a bad signature is refused and wakes nothing: the hourly poll is far away */
    transition(e, key, "In Progress");
    assert_int_equal(send_jira_hook(port, key, "not the secret", "delivery-1"), 401);
    assert_int_equal(wait_status(e, id, "Escalated", 1500), -1);

    /* the signed delivery makes the change visible within a second */
    assert_int_equal(send_jira_hook(port, key, SECRET, "delivery-2"), 200);
    int64_t ms = wait_status(e, id, "Escalated", 1000);
    assert_true(ms >= 0);

    /* Jira redelivers with the same identifier: accepted, counted once */
    assert_int_equal(send_jira_hook(port, key, SECRET, "delivery-2"), 200);
    struct http_answer a;
    daemon_http(port, "/metrics", NULL, NULL, &a);
    assert_non_null(strstr(a.body.buf, "crmbridge_webhooks_total{endpoint=\"jira\","
                                       "outcome=\"duplicate\"} 1"));
    assert_non_null(strstr(a.body.buf, "crmbridge_webhooks_total{endpoint=\"jira\","
                                       "outcome=\"unauthorized\"} 1"));
    assert_non_null(strstr(a.body.buf, "crmbridge_webhook_hints_total{pair=\"feedback\"} 1"));
    strbuf_release(&a.body);
    assert_int_equal(daemon_stop(&d), 0);
    free(key);
    free(id);
}

/* The real path: `webhooks register` creates the Jira admin webhook, the simulator delivers a
 * signed jira:issue_updated when a person moves the issue, and the CRM follows within a second. */
static void test_registered_jira_webhook_reaches_crm(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "interval = 3600;");
    int port = add_webhooks(e);
    char *out = NULL;
    assert_int_equal(e2e_run(e, &out, "webhooks", "register"), 0);
    assert_non_null(strstr(out, "endpoint 'jira': registered a webhook (project in (SUP))"));
    free(out);
    assert_int_equal(e2e_run(e, &out, "webhooks", "register"), 0);
    assert_non_null(strstr(out, "already delivers to"));
    free(out);
    cJSON *hooks = sim_call(&e->jira, "GET", "/_sim/webhooks", NULL, NULL);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(hooks, "registered")), 1);
    cJSON_Delete(hooks);

    char *id = e2e_seed_case(e, "{\"Subject\":\"Webhook path\",\"Status\":\"New\"}");
    struct daemon_run d;
    daemon_start(e, &d, port);
    char *key = wait_linked(e, id);
    usleep(500 * 1000); /* the echo of our own create is a hint too: let that cycle pass */
    transition(e, key, "In Progress");
    assert_true(wait_status(e, id, "Escalated", 1000) >= 0);
    hooks = sim_call(&e->jira, "GET", "/_sim/webhooks", NULL, NULL);
    const cJSON *sent;
    int updated = 0;
    cJSON_ArrayForEach(sent, cJSON_GetObjectItem(hooks, "sent"))
    {
        const char *ev = cJSON_GetStringValue(cJSON_GetObjectItem(sent, "event"));
        if (ev && !strcmp(ev, "jira:issue_updated"))
            updated += cJSON_GetNumberValue(cJSON_GetObjectItem(sent, "status")) == 200;
    }
    assert_true(updated >= 1);
    cJSON_Delete(hooks);
    assert_int_equal(daemon_stop(&d), 0);
    free(key);
    free(id);
}

/* A deletion never shows in Jira's search: its webhook makes the woken cycle read the linked
 * ids, so under deletes = "archive" the case closes within a second, not at the next sweep. */
static void test_delete_webhook_archives_at_once(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "interval = 3600; deletes = \"archive\"; delete_sweep = 86400;");
    int port = add_webhooks(e);
    assert_int_equal(e2e_run(e, NULL, "webhooks", "register"), 0);
    char *id = e2e_seed_case(e, "{\"Subject\":\"Dropped by the customer\",\"Status\":\"New\"}");
    char *id2 = e2e_seed_case(e, "{\"Subject\":\"Still wanted\",\"Status\":\"New\"}");
    struct daemon_run d;
    daemon_start(e, &d, port);
    char *key = wait_linked(e, id), *key2 = wait_linked(e, id2);
    usleep(800 * 1000); /* the echoes of our own creates are hints too: let those cycles pass */
    char path[128];
    snprintf(path, sizeof(path), "/_sim/issue/%s", key);
    cJSON_Delete(sim_call(&e->jira, "DELETE", path, NULL, NULL));
    int64_t ms = wait_status(e, id, "Closed", 1500);
    if (ms < 0)
        fail_msg("the case did not close within 1.5 s of the delete webhook");
    assert_true(zoho_status_is(e, id2, "New"));
    assert_int_equal(daemon_stop(&d), 0);
    free(key);
    free(key2);
    free(id);
    free(id2);
}

static void test_missed_webhook_caught_by_poll(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "interval = 2;");
    char *id = e2e_seed_case(e, "{\"Subject\":\"Invoice rounding\",\"Status\":\"New\"}");
    struct daemon_run d;
    daemon_start(e, &d, 0);
    char *key = wait_linked(e, id);
    transition(e, key, "In Progress"); /* no webhook is sent */
    assert_true(wait_status(e, id, "Escalated", 6000) >= 0);
    assert_int_equal(daemon_stop(&d), 0);
    free(key);
    free(id);
}

static void test_metrics_healthz_and_lock(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "interval = 3600;");
    int port = add_webhooks(e);
    struct daemon_run d;
    daemon_start(e, &d, port);
    struct http_answer a;
    daemon_http(port, "/healthz", NULL, NULL, &a);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.body.buf, "pair 'feedback'"));
    strbuf_release(&a.body);
    int cycled = 0;
    for (int i = 0; i < 50 && !cycled; i++) {
        daemon_http(port, "/metrics", NULL, NULL, &a);
        cycled = strstr(a.body.buf, "crmbridge_cycles_total{pair=\"feedback\"} 1") != NULL;
        if (cycled) {
            assert_non_null(strstr(a.body.buf, "# TYPE crmbridge_records_read_total counter"));
            assert_non_null(strstr(a.body.buf, "crmbridge_last_success_timestamp_seconds{pair="));
        }
        strbuf_release(&a.body);
        usleep(100 * 1000);
    }
    assert_true(cycled);
    daemon_http(port, "/nowhere", NULL, NULL, &a);
    assert_int_equal(a.status, 404);
    strbuf_release(&a.body);
    daemon_http(port, "/hooks/no-such-endpoint", "{}", NULL, &a);
    assert_int_equal(a.status, 404);
    strbuf_release(&a.body);
    /* a body over webhooks.max_body_bytes (64 KiB here) is refused, not buffered */
    char *big = malloc(70000);
    memset(big, 'x', 69999);
    big[69999] = '\0';
    daemon_http(port, "/hooks/jira", big, NULL, &a);
    assert_int_equal(a.status, 413);
    strbuf_release(&a.body);
    free(big);

    /* a second daemon on the same state dir says who holds it and exits 3 */
    char *out = NULL;
    assert_int_equal(tu_run_crmbridge(&out, "-c", e->conf, "daemon", (char *)NULL), 3);
    assert_non_null(strstr(out, "another crmbridge daemon"));
    free(out);
    assert_int_equal(daemon_stop(&d), 0);
}

/* SIGTERM while creates are in flight: exit 0, and the next run neither loses nor repeats one. */
static void test_sigterm_during_cycle(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "interval = 3600;");
    /* 120 cases: three bulk creates of at most 50, each slowed down */
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/seed", "{\"module\":\"Cases\",\"count\":120}"));
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"method\":\"POST\",\"path\":\"/rest/api/3/issue/bulk\","
                         "\"kind\":\"latency\",\"delay_ms\":700,\"count\":-1}]}"));
    struct daemon_run d;
    daemon_start(e, &d, 0);
    for (int i = 0; i < 100 && e2e_count_issues(e) < 1; i++)
        usleep(50 * 1000);
    assert_true(e2e_count_issues(e) >= 1);
    assert_true(e2e_count_issues(e) < 120); /* stopped in the middle of the cycle */
    assert_int_equal(daemon_stop(&d), 0);
    char *log = tu_read_file(d.log);
    assert_non_null(strstr(log, "stopped"));
    free(log);
    cJSON_Delete(sim_ctl(&e->jira, "DELETE", "/_sim/faults", "{}"));
    assert_int_equal(e2e_sync_once(e), 0);
    assert_int_equal(e2e_count_issues(e), 120);
    e2e_assert_quiet(e);
}

/* --shard I/N: the one pair runs in exactly one of two shards; --log-json writes JSON lines. */
static void test_shards_and_json_logs(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "interval = 3600;");
    int ran = 0;
    for (int i = 0; i < 2; i++) {
        extra_args[0] = "--shard";
        extra_args[1] = i ? "1/2" : "0/2";
        extra_args[2] = "--log-json";
        struct daemon_run d;
        daemon_start(e, &d, 0);
        usleep(600 * 1000);
        assert_int_equal(daemon_stop(&d), 0);
        char *log = tu_read_file(d.log);
        ran += strstr(log, "started with 1 of 1 pair(s)") != NULL;
        assert_true(!strncmp(log, "{\"ts\":\"", 7));
        assert_non_null(
            strstr(log, "\"level\":\"info\",\"module\":\"daemon\",\"msg\":\"stopped\"}"));
        free(log);
        unlink(d.log);
    }
    memset(extra_args, 0, sizeof(extra_args));
    assert_int_equal(ran, 1);
    char *out = NULL;
    assert_int_equal(
        tu_run_crmbridge(&out, "-c", e->conf, "daemon", "--shard", "2/2", (char *)NULL), 2);
    assert_non_null(strstr(out, "bad --shard '2/2'"));
    free(out);
}

static int daemon_alive(const struct daemon_run *d)
{
    return waitpid(d->pid, NULL, WNOHANG) == 0;
}

static void test_sighup_with_broken_config_keeps_running(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "interval = 1;");
    int port = add_webhooks(e);
    char *good = tu_read_file(e->conf);
    struct daemon_run d;
    daemon_start(e, &d, port);
    assert_int_equal(tu_write_file(e->conf, "state_dir = ;\n"), 0);
    kill(d.pid, SIGHUP);
    usleep(800 * 1000);
    assert_true(daemon_alive(&d));
    char *log = tu_read_file(d.log);
    assert_non_null(strstr(log, "keeping the running config"));
    free(log);
    /* still syncing on the old config */
    char *id = e2e_seed_case(e, "{\"Subject\":\"Still here\",\"Status\":\"New\"}");
    char *key = wait_linked(e, id);
    /* a good config reloads */
    assert_int_equal(tu_write_file(e->conf, good), 0);
    kill(d.pid, SIGHUP);
    usleep(800 * 1000);
    log = tu_read_file(d.log);
    assert_non_null(strstr(log, "reloaded"));
    free(log);
    assert_int_equal(daemon_stop(&d), 0);
    free(good);
    free(key);
    free(id);
}

/* Three pairs; the third one's CRM answers 500 to everything (the HTTP layer retries with
 * backoff first, so its cycles are slow as well as failing). The other two keep their 1 s pace. */
static void test_failing_pair_does_not_delay_others(void **state)
{
    struct e2e *e = *state;
    static const char *const kinds[3] = {"zoho", "jira", "zoho"};
    for (n_extra = 0; n_extra < 3; n_extra++)
        assert_int_equal(sim_start(&extra[n_extra], kinds[n_extra], NULL), 0);
    const struct sim *z2 = &extra[0], *j2 = &extra[1], *bad = &extra[2];
    /* one rule matches at a time: every CRM call of the broken pair answers 500 */
    cJSON_Delete(sim_ctl(bad, "POST", "/_sim/faults",
                         "{\"rules\":[{\"path\":\"/crm/.*\",\"kind\":\"status\",\"status\":500,"
                         "\"count\":-1}]}"));
    int port = free_port();
    char text[4096];
    char zfmt[256];
    snprintf(zfmt, sizeof(zfmt),
             "type = \"zoho\"; client_id = \"1000.SIMCLIENT\"; "
             "client_secret = \"env:CB_TEST_ZOHO_SECRET\"; refresh_token = \"file:%s/zoho.token\";",
             e->dir);
    snprintf(text, sizeof(text),
             "state_dir = \"%s/state\"; interval = 1;\n"
             "webhooks = { listen = \"127.0.0.1:%d\"; secret = \"env:CB_TEST_HOOK\"; };\n"
             "endpoints = {\n"
             "  z1 = { %s accounts_url = \"%s\"; api_url = \"%s\"; };\n"
             "  z2 = { %s accounts_url = \"%s\"; api_url = \"%s\"; };\n"
             "  zbad = { %s accounts_url = \"%s\"; api_url = \"%s\"; };\n"
             "  j1 = { type = \"jira\"; api_url = \"%s\"; email = \"bot@acme.test\";\n"
             "    api_token = \"env:CB_TEST_JIRA_TOKEN\"; search_lag = 0; };\n"
             "  j2 = { type = \"jira\"; api_url = \"%s\"; email = \"bot@acme.test\";\n"
             "    api_token = \"env:CB_TEST_JIRA_TOKEN\"; search_lag = 0; };\n"
             "};\n"
             "pairs = (\n"
             "  { name = \"a\"; crm = { endpoint = \"z1\"; module = \"Cases\"; };\n"
             "    tracker = { endpoint = \"j1\"; project = \"SUP\"; issue_type = \"Task\"; }; },\n"
             "  { name = \"b\"; crm = { endpoint = \"z2\"; module = \"Cases\"; };\n"
             "    tracker = { endpoint = \"j2\"; project = \"SUP\"; issue_type = \"Task\"; }; },\n"
             "  { name = \"broken\"; crm = { endpoint = \"zbad\"; module = \"Cases\"; };\n"
             "    tracker = { endpoint = \"j2\"; project = \"SUP\"; issue_type = \"Task\"; };\n"
             "    create = \"none\"; } );\n",
             e->dir, port, zfmt, e->zoho.base, e->zoho.base, zfmt, z2->base, z2->base, zfmt,
             bad->base, bad->base, e->jira.base, j2->base);
    assert_int_equal(tu_write_file(e->conf, text), 0);
    setenv("CB_TEST_HOOK", SECRET, 1);
    struct daemon_run d;
    daemon_start(e, &d, port);
    usleep(4000 * 1000);
    struct http_answer a;
    daemon_http(port, "/metrics", NULL, NULL, &a);
    for (int i = 0; i < 2; i++) {
        const char *name = i ? "b" : "a";
        char pat[96];
        snprintf(pat, sizeof(pat), "crmbridge_cycles_total{pair=\"%s\"} ", name);
        const char *at = strstr(a.body.buf, pat);
        assert_non_null(at);
        assert_true(atoi(at + strlen(pat)) >= 3);
    }
    strbuf_release(&a.body);
    /* the broken pair's first cycle ends in a failure, and it backs off saying why */
    int backing_off = 0;
    for (int i = 0; i < 300 && !backing_off; i++) {
        daemon_http(port, "/healthz", NULL, NULL, &a);
        backing_off = strstr(a.body.buf, "pair 'broken': backing off after") != NULL;
        strbuf_release(&a.body);
        usleep(100 * 1000);
    }
    assert_true(backing_off);
    assert_int_equal(daemon_stop(&d), 0);
}

/* ------------------------------------------------------------------ Zoho channels */

/* The simulator's channels and deliveries (caller deletes). */
static cJSON *zoho_watch(struct e2e *e)
{
    return sim_call(&e->zoho, "GET", "/_sim/watch", NULL, NULL);
}

static const cJSON *only_channel(const cJSON *w)
{
    const cJSON *chans = cJSON_GetObjectItem(w, "channels");
    assert_int_equal(cJSON_GetArraySize(chans), 1);
    return cJSON_GetArrayItem(chans, 0);
}

static double channel_expiry(struct e2e *e)
{
    cJSON *w = zoho_watch(e);
    double ms = cJSON_GetNumberValue(cJSON_GetObjectItem(only_channel(w), "expiry_ms"));
    cJSON_Delete(w);
    return ms;
}

static int register_hooks(struct e2e *e, char **out, const char *hours)
{
    return tu_run_crmbridge(out, "-c", e->conf, "webhooks", "register",
                            hours ? "--channel-hours" : NULL, hours, (char *)NULL);
}

/* `webhooks register` enables one channel per pair side (token derived, never the secret);
 * running it again renews that channel instead of adding one. */
static void test_zoho_channel_registered_then_renewed(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "interval = 3600;");
    add_webhooks(e);
    char *out = NULL;
    assert_int_equal(register_hooks(e, &out, "24"), 0);
    assert_non_null(strstr(out, "endpoint 'zoho': pair 'feedback': zoho Cases channel "));
    assert_non_null(strstr(out, " enabled until "));
    assert_null(strstr(out, SECRET));
    free(out);
    cJSON *w = zoho_watch(e);
    const cJSON *ch = only_channel(w);
    const char *tok = cJSON_GetStringValue(cJSON_GetObjectItem(ch, "token"));
    assert_int_equal(strlen(tok), 40);
    assert_null(strstr(tok, SECRET));
    const char *url = cJSON_GetStringValue(cJSON_GetObjectItem(ch, "notify_url"));
    assert_non_null(strstr(url, "/hooks/zoho"));
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(ch, "events"), 0)),
        "Cases.all");
    double first = cJSON_GetNumberValue(cJSON_GetObjectItem(ch, "expiry_ms"));
    cJSON_Delete(w);

    assert_int_equal(register_hooks(e, &out, NULL), 0);
    assert_non_null(strstr(out, " renewed until "));
    free(out);
    assert_true(channel_expiry(e) >= first + 6 * 86400000.0); /* a week instead of a day */
}

/* Sends a Zoho notification about case id with token; returns the HTTP status. */
static long send_zoho_hook(int port, const char *id, const char *token)
{
    char body[320];
    snprintf(body, sizeof(body),
             "{\"server_time\":1,\"module\":\"Cases\",\"ids\":[\"%s\"],\"operation\":\"update\","
             "\"channel_id\":\"100000000000001\",\"token\":\"%s\"}",
             id, token);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    struct http_answer a;
    daemon_http(port, "/hooks/zoho", body, hdrs, &a);
    curl_slist_free_all(hdrs);
    strbuf_release(&a.body);
    return a.status;
}

static int jira_summary_is(struct e2e *e, const char *key, const char *want)
{
    cJSON *issue = e2e_jira_issue(e, key);
    const char *s = e2e_jfield(issue, "summary");
    int ok = s && !strcmp(s, want);
    cJSON_Delete(issue);
    return ok;
}

static int64_t wait_summary(struct e2e *e, const char *key, const char *want, int64_t limit_ms)
{
    int64_t t0 = now_ms();
    while (now_ms() - t0 < limit_ms) {
        if (jira_summary_is(e, key, want))
            return now_ms() - t0;
        usleep(20 * 1000);
    }
    return -1;
}

static void edit_subject(struct e2e *e, const char *id, const char *subject)
{
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/edit",
                         "{\"module\":\"Cases\",\"id\":\"%s\",\"fields\":{\"Subject\":\"%s\"}}", id,
                         subject));
}

/* Hourly polling; the registered channel carries a person's Zoho edit to Jira within a second.
 * A notification with a wrong token (or the bare secret) gets 401 and wakes nothing. */
static void test_zoho_channel_edit_reaches_jira(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "interval = 3600;");
    int port = add_webhooks(e);
    char *out = NULL;
    assert_int_equal(register_hooks(e, &out, NULL), 0);
    free(out);
    char *id = e2e_seed_case(e, "{\"Subject\":\"Channel path\",\"Status\":\"New\"}");
    struct daemon_run d;
    daemon_start(e, &d, port);
    char *key = wait_linked(e, id);
    usleep(600 * 1000); /* our own writes notify too: let those cycles pass */

    edit_subject(e, id, "Edited while nobody polls");
    assert_true(wait_summary(e, key, "Edited while nobody polls", 1000) >= 0);
    cJSON *w = zoho_watch(e);
    int delivered = 0;
    const cJSON *sent;
    cJSON_ArrayForEach(sent, cJSON_GetObjectItem(w, "sent")) delivered +=
        cJSON_GetNumberValue(cJSON_GetObjectItem(sent, "status")) == 200;
    assert_true(delivered >= 1);
    cJSON_Delete(w);

    /* a week later the channel has expired and sends nothing; forged deliveries are refused
     * and the change waits for the hourly poll */
    usleep(600 * 1000);
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/clock", "{\"advance_ms\":%lld}", 8LL * 86400000));
    w = zoho_watch(e);
    int n_sent = cJSON_GetArraySize(cJSON_GetObjectItem(w, "sent"));
    cJSON_Delete(w);
    edit_subject(e, id, "Only a forged hint");
    assert_int_equal(send_zoho_hook(port, id, "not-the-token"), 401);
    assert_int_equal(send_zoho_hook(port, id, SECRET), 401);
    assert_int_equal(wait_summary(e, key, "Only a forged hint", 1500), -1);
    w = zoho_watch(e);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(w, "sent")), n_sent);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(only_channel(w), "active")));
    cJSON_Delete(w);
    struct http_answer a;
    daemon_http(port, "/metrics", NULL, NULL, &a);
    assert_non_null(strstr(a.body.buf, "crmbridge_webhooks_total{endpoint=\"zoho\","
                                       "outcome=\"unauthorized\"} 2"));
    strbuf_release(&a.body);
    assert_int_equal(daemon_stop(&d), 0);
    free(key);
    free(id);
}

/* A channel with less than a day left is renewed by the daemon after the pair's cycle. */
static void test_daemon_renews_expiring_channel(void **state)
{
    struct e2e *e = *state;
    e2e_write_conf(e, "interval = 3600;");
    int port = add_webhooks(e);
    char *out = NULL;
    assert_int_equal(register_hooks(e, &out, "12"), 0);
    free(out);
    double first = channel_expiry(e);
    struct daemon_run d;
    daemon_start(e, &d, port);
    int renewed = 0;
    for (int i = 0; i < 100 && !renewed; i++) {
        usleep(100 * 1000);
        char *log = tu_read_file(d.log);
        renewed =
            strstr(log, "pair 'feedback': renewed its crm channel: zoho Cases channel") != NULL;
        free(log);
    }
    assert_true(renewed);
    assert_true(channel_expiry(e) >= first + 6 * 86400000.0);
    assert_int_equal(daemon_stop(&d), 0);
    /* renewed once: a week is left now, the next cycles leave it alone */
    char *log = tu_read_file(d.log);
    const char *at = strstr(log, "renewed its crm channel");
    assert_null(strstr(at + 1, "renewed its crm channel"));
    free(log);
}

/* ------------------------------------------------------------------ Trello webhooks */

#define TRELLO_APP_SECRET "sim-trello-app-secret" /* the simulator's app secret */

/* A Zoho + Trello config with webhooks on port (polling hourly); returns the board's id. */
static void trello_conf(struct e2e *e, const struct sim *tr, int port, char *board, size_t n)
{
    cJSON *b = sim_ctl(tr, "POST", "/_sim/seed",
                       "{\"new_board\":{\"name\":\"Team board\",\"lists\":[\"Inbox\",\"Done\"]}}");
    snprintf(board, n, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(b, "board")));
    cJSON_Delete(b);
    char text[4096];
    snprintf(
        text, sizeof(text),
        "state_dir = \"%s/state\"; interval = 3600;\n"
        "webhooks = { listen = \"127.0.0.1:%d\"; secret = \"env:CB_TEST_HOOK\";\n"
        "  trello_secret = \"%s\"; };\n"
        "endpoints = {\n"
        "  zoho = { type = \"zoho\"; accounts_url = \"%s\"; api_url = \"%s\";\n"
        "    client_id = \"1000.SIMCLIENT\"; client_secret = \"env:CB_TEST_ZOHO_SECRET\";\n"
        "    refresh_token = \"file:%s/zoho.token\"; };\n"
        "  board = { type = \"trello\"; api_url = \"%s\";\n"
        "    key = \"d1f7b2c9e4a8f3b6c0d5e9a2f4b7c1e8\"; token = \"env:CB_TEST_TRELLO_TOKEN\"; };\n"
        "};\n"
        "pairs = ( { name = \"delivery\"; crm = { endpoint = \"zoho\"; module = \"Cases\"; };\n"
        "  tracker = { endpoint = \"board\"; board = \"%s\"; list = \"Inbox\"; }; } );\n",
        e->dir, port, TRELLO_APP_SECRET, e->zoho.base, e->zoho.base, e->dir, tr->base, board);
    assert_int_equal(tu_write_file(e->conf, text), 0);
    setenv("CB_TEST_HOOK", SECRET, 1);
    setenv("CB_TEST_TRELLO_TOKEN",
           "ATTA9c4e1b7d2f8a3c6e0b5d9f1a4c7e2b8d3f6a0c5e9b1d4f7a2c8e3b6d0f5a9c1e4b7", 1);
}

/* The id of the board's only card, waiting for the daemon to create it (caller frees). */
static char *wait_card(const struct sim *tr, const char *board)
{
    char path[96], *id = NULL;
    snprintf(path, sizeof(path), "/_sim/cards?board=%s", board);
    for (int i = 0; i < 100 && !id; i++) {
        cJSON *all = sim_ctl(tr, "GET", path, NULL);
        const char *cid =
            cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(all, 0), "id"));
        id = cid ? strdup(cid) : NULL;
        cJSON_Delete(all);
        if (!id)
            usleep(100 * 1000);
    }
    assert_non_null(id);
    return id;
}

/* `webhooks register` (while the daemon answers Trello's HEAD check) creates the board's webhook;
 * a person renaming the card reaches Zoho within a second although polling is hourly. */
static void test_trello_webhook_reaches_zoho(void **state)
{
    struct e2e *e = *state;
    assert_int_equal(sim_start(&extra[n_extra], "trello", NULL), 0);
    const struct sim *tr = &extra[n_extra++];
    int port = free_port();
    char board[32];
    trello_conf(e, tr, port, board, sizeof(board));
    char *id = e2e_seed_case(e, "{\"Subject\":\"Card path\",\"Status\":\"New\"}");
    struct daemon_run d;
    daemon_start(e, &d, port);
    char *card = wait_card(tr, board);
    char *out = NULL;
    assert_int_equal(register_hooks(e, &out, NULL), 0);
    assert_non_null(strstr(out, "registered a webhook for board"));
    free(out);
    usleep(600 * 1000); /* let the cycles our own writes started pass */
    cJSON_Delete(sim_ctl(tr, "POST", "/_sim/edit",
                         "{\"card\":\"%s\",\"fields\":{\"name\":\"Renamed on the board\"}}", card));
    int64_t t0 = now_ms(), took = -1;
    while (took < 0 && now_ms() - t0 < 1000) {
        cJSON *c = e2e_zoho_case(e, id);
        const char *subj = e2e_zfield(c, "Subject");
        if (subj && !strcmp(subj, "Renamed on the board"))
            took = now_ms() - t0;
        cJSON_Delete(c);
        usleep(20 * 1000);
    }
    assert_true(took >= 0);
    assert_int_equal(daemon_stop(&d), 0);
    free(card);
    free(id);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signed_webhook_syncs_within_a_second, e2e_setup,
                                        daemon_teardown),
        cmocka_unit_test_setup_teardown(test_registered_jira_webhook_reaches_crm, e2e_setup,
                                        daemon_teardown),
        cmocka_unit_test_setup_teardown(test_delete_webhook_archives_at_once, e2e_setup,
                                        daemon_teardown),
        cmocka_unit_test_setup_teardown(test_missed_webhook_caught_by_poll, e2e_setup,
                                        daemon_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_healthz_and_lock, e2e_setup, daemon_teardown),
        cmocka_unit_test_setup_teardown(test_sighup_with_broken_config_keeps_running, e2e_setup,
                                        daemon_teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_during_cycle, e2e_setup, daemon_teardown),
        cmocka_unit_test_setup_teardown(test_shards_and_json_logs, e2e_setup, daemon_teardown),
        cmocka_unit_test_setup_teardown(test_failing_pair_does_not_delay_others, e2e_setup,
                                        daemon_teardown),
        cmocka_unit_test_setup_teardown(test_zoho_channel_registered_then_renewed, e2e_setup,
                                        daemon_teardown),
        cmocka_unit_test_setup_teardown(test_zoho_channel_edit_reaches_jira, e2e_setup,
                                        daemon_teardown),
        cmocka_unit_test_setup_teardown(test_daemon_renews_expiring_channel, e2e_setup,
                                        daemon_teardown),
        cmocka_unit_test_setup_teardown(test_trello_webhook_reaches_zoho, e2e_setup,
                                        daemon_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
