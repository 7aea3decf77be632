/*
 * The HTTP layer against tests/sim/echo_sim.py: echo of method, headers and body, keep-alive,
 * retry and no-retry rules, Retry-After, body cap, truncated bodies, gzip, timeouts, stopping a
 * backoff from a signal handler, redirects, and that no query-string secret leaks into a message
 * or a log line. Keep-alive is checked through the simulator's per-connection number ("conn").
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "connectors/http.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "tests/unit/testutil.h"

static struct sim S;

struct fx {
    struct http *h;
    struct http_resp resp;
    struct strbuf err;
    long ms; /* duration of the last fx_run */
    char url[512];
};

static const struct http_opts fast_opts = {
    .timeout_s = 5, .max_retries = 3, .backoff_ms = 20, .max_wait_s = 10};

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fx_reopen(struct fx *f, const struct http_opts *o)
{
    http_free(f->h);
    f->h = http_new(o);
}

static const char *U(struct fx *f, const char *path)
{
    snprintf(f->url, sizeof(f->url), "%s%s", S.base, path);
    return f->url;
}

static enum cb_status fx_run(struct fx *f, const struct http_req *req)
{
    strbuf_reset(&f->err);
    long t0 = now_ms();
    enum cb_status st = http_request(f->h, req, &f->resp, &f->err);
    f->ms = now_ms() - t0;
    return st;
}

static enum cb_status fx_send(struct fx *f, const char *method, const char *path, const char *body,
                              int no_retry)
{
    struct http_req req = {.method = method,
                           .url = U(f, path),
                           .body = body,
                           .body_len = body ? strlen(body) : 0,
                           .no_retry = no_retry};
    return fx_run(f, &req);
}

static cJSON *fx_json(const struct fx *f)
{
    cJSON *j = cJSON_ParseWithLengthOpts(f->resp.body.buf, f->resp.body.len, NULL, 0);
    assert_non_null(j);
    return j;
}

/* j[k1][k2] as a string (k2 may be NULL), or NULL. */
static const char *jstr(const cJSON *j, const char *k1, const char *k2)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k1);
    if (k2)
        v = cJSON_GetObjectItemCaseSensitive(v, k2);
    return cJSON_GetStringValue(v);
}

static int jint(const cJSON *j, const char *k)
{
    return (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, k));
}

static void fault(const char *rule)
{
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/faults", "{\"rules\":[%s]}", rule));
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return sim_start(&S, "echo", NULL);
}

static int group_teardown(void **state)
{
    sim_stop(&S);
    curl_global_cleanup();
    return 0;
}

static int setup(void **state)
{
    cJSON_Delete(sim_ctl(&S, "POST", "/_sim/reset", NULL));
    http_stop_reset();
    struct fx *f = xcalloc(1, sizeof(*f));
    f->h = http_new(&fast_opts);
    http_resp_init(&f->resp);
    strbuf_init(&f->err, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    http_free(f->h);
    http_resp_release(&f->resp);
    strbuf_release(&f->err);
    free(f);
    http_stop_reset();
    return 0;
}

static void test_get_echo(void **state)
{
    struct fx *f = *state;
    fx_reopen(f, NULL); /* all defaults */
    const char *hdrs[] = {"X-Probe: one", "Authorization: Bearer t0k3n", NULL};
    struct http_req req = {.method = "GET", .url = U(f, "/echo?x=1&y=two"), .headers = hdrs};
    assert_int_equal(fx_run(f, &req), CB_OK);
    assert_int_equal(f->resp.status, 200);
    assert_int_equal(f->resp.attempts, 1);
    cJSON *j = fx_json(f);
    assert_string_equal(jstr(j, "method", NULL), "GET");
    assert_string_equal(jstr(j, "query", "x"), "1");
    assert_string_equal(jstr(j, "query", "y"), "two");
    assert_string_equal(jstr(j, "headers", "x-probe"), "one");
    assert_string_equal(jstr(j, "headers", "authorization"), "Bearer t0k3n");
    assert_string_equal(jstr(j, "headers", "user-agent"), "crmbridge/" CRMBRIDGE_VERSION);
    assert_non_null(strstr(jstr(j, "headers", "accept-encoding"), "gzip"));
    assert_null(jstr(j, "headers", "content-type"));
    cJSON_Delete(j);

    struct strbuf v = STRBUF_INIT;
    assert_int_equal(http_resp_header(&f->resp, "CONTENT-type", &v), 1);
    assert_string_equal(v.buf, "application/json;charset=UTF-8");
    assert_int_equal(http_resp_header(&f->resp, "Content", &v), 0);
    assert_int_equal(http_resp_header(&f->resp, "X-Absent", NULL), 0);
    assert_int_equal(http_resp_header(&f->resp, "server", NULL), 1);
    strbuf_release(&v);
}

static void test_bodies_and_methods(void **state)
{
    struct fx *f = *state;
    const char *methods[] = {"POST", "PUT", "PATCH"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx_send(f, methods[i], "/echo", "{\"a\":1}", 1), CB_OK);
        cJSON *j = fx_json(f);
        assert_string_equal(jstr(j, "method", NULL), methods[i]);
        assert_string_equal(jstr(j, "body", NULL), "{\"a\":1}");
        assert_string_equal(jstr(j, "headers", "content-type"), "application/json");
        assert_string_equal(jstr(j, "headers", "content-length"), "7");
        assert_null(jstr(j, "headers", "expect"));
        cJSON_Delete(j);
    }
    assert_int_equal(fx_send(f, "DELETE", "/echo", NULL, 0), CB_OK);
    cJSON *j = fx_json(f);
    assert_string_equal(jstr(j, "method", NULL), "DELETE");
    assert_string_equal(jstr(j, "body", NULL), "");
    assert_null(jstr(j, "headers", "content-type"));
    cJSON_Delete(j);

    /* A POST without body sends no form content type; a given content type is used. */
    assert_int_equal(fx_send(f, "POST", "/echo", NULL, 0), CB_OK);
    j = fx_json(f);
    assert_null(jstr(j, "headers", "content-type"));
    cJSON_Delete(j);
    struct http_req req = {.method = "POST",
                           .url = U(f, "/echo"),
                           .body = "a=b&c",
                           .body_len = 3,
                           .content_type = "text/plain"};
    assert_int_equal(fx_run(f, &req), CB_OK);
    j = fx_json(f);
    assert_string_equal(jstr(j, "body", NULL), "a=b");
    assert_string_equal(jstr(j, "headers", "content-type"), "text/plain");
    cJSON_Delete(j);

    assert_int_equal(fx_send(f, "HEAD", "/echo", NULL, 0), CB_OK);
    assert_int_equal(f->resp.status, 200);
    assert_int_equal(f->resp.body.len, 0);
    assert_int_equal(sim_count(&S, "HEAD", "/echo"), 1);
}

static void test_keepalive(void **state)
{
    struct fx *f = *state;
    unsigned long before = http_total_requests();
    int conn = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fx_send(f, i % 2 ? "PUT" : "GET", "/echo", i % 2 ? "{}" : NULL, 0), CB_OK);
        cJSON *j = fx_json(f);
        if (i == 0)
            conn = jint(j, "conn");
        assert_int_equal(jint(j, "conn"), conn);
        cJSON_Delete(j);
    }
    assert_int_equal(http_total_requests() - before, 5);
    assert_int_equal(sim_count(&S, NULL, "/echo"), 5);

    /* A no_retry request goes out on a connection of its own (see http.h). */
    assert_int_equal(fx_send(f, "POST", "/echo", "{}", 1), CB_OK);
    cJSON *j = fx_json(f);
    assert_int_not_equal(jint(j, "conn"), conn);
    cJSON_Delete(j);
}

static void test_500_twice_then_ok(void **state)
{
    struct fx *f = *state;
    fault("{\"method\":\"GET\",\"path\":\"/echo\",\"kind\":\"status\",\"status\":500,\"count\":2}");
    unsigned long before = http_total_requests();
    assert_int_equal(fx_send(f, "GET", "/echo", NULL, 0), CB_OK);
    assert_int_equal(f->resp.status, 200);
    assert_int_equal(f->resp.attempts, 3);
    assert_int_equal(sim_count(&S, "GET", "/echo"), 3);
    assert_int_equal(http_total_requests() - before, 3);
}

static void test_final_5xx_returned_after_retries(void **state)
{
    struct fx *f = *state;
    struct http_opts o = fast_opts;
    o.max_retries = 2;
    fx_reopen(f, &o);
    fault("{\"path\":\"/echo\",\"kind\":\"status\",\"status\":502,\"count\":-1}");
    assert_int_equal(fx_send(f, "PUT", "/echo", "{}", 0), CB_OK);
    assert_int_equal(f->resp.status, 502);
    assert_int_equal(f->resp.attempts, 3);
    assert_int_equal(http_classify(f->resp.status), CB_ERR_TEMP);
    cJSON *j = fx_json(f);
    assert_int_equal(jint(cJSON_GetObjectItem(j, "error"), "code"), 502);
    cJSON_Delete(j);
    assert_int_equal(sim_count(&S, "PUT", "/echo"), 3);
}

static void test_post_no_retry_500(void **state)
{
    struct fx *f = *state;
    fault(
        "{\"method\":\"POST\",\"path\":\"/echo\",\"kind\":\"status\",\"status\":500,\"count\":2}");
    assert_int_equal(fx_send(f, "POST", "/echo", "{\"create\":1}", 1), CB_OK);
    assert_int_equal(f->resp.status, 500);
    assert_int_equal(f->resp.attempts, 1);
    assert_int_equal(sim_count(&S, "POST", "/echo"), 1);

    /* Without no_retry a POST (a search, say) is retried like a GET. */
    assert_int_equal(fx_send(f, "POST", "/echo", "{\"search\":1}", 0), CB_OK);
    assert_int_equal(f->resp.status, 200);
    assert_int_equal(f->resp.attempts, 2);
    assert_int_equal(sim_count(&S, "POST", "/echo"), 3);
}

static void test_drop_post_no_retry(void **state)
{
    struct fx *f = *state;
    /* A kept-alive connection first: curl would resend on it by itself if allowed to. */
    assert_int_equal(fx_send(f, "GET", "/echo", NULL, 0), CB_OK);
    fault("{\"method\":\"POST\",\"path\":\"/echo\",\"kind\":\"drop_response\"}");
    assert_int_equal(fx_send(f, "POST", "/echo", "{\"create\":1}", 1), CB_ERR_TEMP);
    assert_int_equal(f->resp.status, 0);
    assert_int_equal(f->resp.attempts, 1);
    assert_int_equal(sim_count(&S, "POST", "/echo"), 1);
    assert_non_null(strstr(f->err.buf, "cannot reach '"));
    assert_non_null(strstr(f->err.buf, "/echo'"));
}

static void test_drop_get_retried(void **state)
{
    struct fx *f = *state;
    fault("{\"method\":\"GET\",\"path\":\"/echo\",\"kind\":\"drop_response\"}");
    assert_int_equal(fx_send(f, "GET", "/echo", NULL, 0), CB_OK);
    assert_int_equal(f->resp.status, 200);
    assert_int_equal(f->resp.attempts, 2);
    assert_int_equal(sim_count(&S, "GET", "/echo"), 2);
}

static void test_429_retry_after_then_ok(void **state)
{
    struct fx *f = *state;
    fault("{\"path\":\"/echo\",\"kind\":\"status\",\"status\":429,\"retry_after\":1}");
    /* 429 is retried even for a no_retry create: the server did not act. */
    assert_int_equal(fx_send(f, "POST", "/echo", "{}", 1), CB_OK);
    assert_int_equal(f->resp.status, 200);
    assert_int_equal(f->resp.attempts, 2);
    assert_int_equal(f->resp.retry_after_s, 1);
    assert_true(f->ms >= 950);
    assert_true(f->ms < 3000);
    assert_int_equal(sim_count(&S, "POST", "/echo"), 2);
}

static void test_429_long_retry_after_waits(void **state)
{
    struct fx *f = *state;
    fault("{\"path\":\"/echo\",\"kind\":\"status\",\"status\":429,\"retry_after\":3600}");
    assert_int_equal(fx_send(f, "GET", "/echo", NULL, 0), CB_ERR_WAIT);
    assert_int_equal(f->resp.status, 429);
    assert_int_equal(f->resp.retry_after_s, 3600);
    assert_true(f->ms < 1000);
    assert_int_equal(sim_count(&S, "GET", "/echo"), 1);
    assert_non_null(strstr(f->err.buf, "retry after 3600 s"));
}

static void test_retry_after_http_date(void **state)
{
    struct fx *f = *state;
    char past[CBTIME_BUFSZ], future[CBTIME_BUFSZ], rule[256];
    cbtime_format_rfc1123(cbtime_now_ms() - 5000, past);
    cbtime_format_rfc1123(cbtime_now_ms() + 3600 * 1000, future);
    snprintf(rule, sizeof(rule),
             "{\"path\":\"/echo\",\"kind\":\"status\",\"status\":503,\"retry_after\":\"%s\"}",
             past);
    fault(rule);
    /* 503 with Retry-After: retried even for no_retry; a date in the past means now. */
    assert_int_equal(fx_send(f, "POST", "/echo", "{}", 1), CB_OK);
    assert_int_equal(f->resp.status, 200);
    assert_int_equal(f->resp.attempts, 2);
    assert_int_equal(f->resp.retry_after_s, 0);

    snprintf(rule, sizeof(rule),
             "{\"path\":\"/echo\",\"kind\":\"status\",\"status\":429,\"retry_after\":\"%s\"}",
             future);
    fault(rule);
    assert_int_equal(fx_send(f, "GET", "/echo", NULL, 0), CB_ERR_WAIT);
    assert_true(f->resp.retry_after_s >= 3590 && f->resp.retry_after_s <= 3601);
}

static void test_429_without_retry_after_backs_off(void **state)
{
    struct fx *f = *state;
    fault("{\"path\":\"/echo\",\"kind\":\"status\",\"status\":429,\"count\":2}");
    assert_int_equal(fx_send(f, "POST", "/echo", "{}", 1), CB_OK);
    assert_int_equal(f->resp.status, 200);
    assert_int_equal(f->resp.attempts, 3);
    assert_int_equal(f->resp.retry_after_s, -1);
    /* 20 ms then 40 ms, each -30% at least */
    assert_true(f->ms >= 42);

    /* A 503 without Retry-After is a plain 5xx: not retried for no_retry, even right after
     * a 503 that carried one. */
    fault("{\"path\":\"/echo\",\"kind\":\"status\",\"status\":503,\"retry_after\":0},"
          "{\"path\":\"/echo\",\"kind\":\"status\",\"status\":503}");
    assert_int_equal(fx_send(f, "POST", "/echo", "{}", 1), CB_OK);
    assert_int_equal(f->resp.status, 503);
    assert_int_equal(f->resp.attempts, 2);
    assert_int_equal(f->resp.retry_after_s, 0);
}

static void test_backoff_doubles(void **state)
{
    struct fx *f = *state;
    struct http_opts o = fast_opts;
    o.backoff_ms = 100;
    fx_reopen(f, &o);
    fault("{\"path\":\"/echo\",\"kind\":\"status\",\"status\":500,\"count\":3}");
    assert_int_equal(fx_send(f, "GET", "/echo", NULL, 0), CB_OK);
    assert_int_equal(f->resp.attempts, 4);
    /* 100 + 200 + 400 ms, +-30% each */
    assert_true(f->ms >= 490);
    assert_true(f->ms < 2500);
    cJSON *log = sim_call(&S, "GET", "/_sim/log", NULL, NULL);
    assert_int_equal(cJSON_GetArraySize(log), 4);
    double t[4];
    for (int i = 0; i < 4; i++)
        t[i] = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(log, i), "ms"));
    assert_true(t[3] - t[2] > t[1] - t[0]);
    cJSON_Delete(log);
}

static void test_body_cap(void **state)
{
    struct fx *f = *state;
    struct http_opts o = fast_opts;
    o.max_body = 1000;
    fx_reopen(f, &o);
    assert_int_equal(fx_send(f, "GET", "/big?bytes=1000", NULL, 0), CB_OK);
    assert_int_equal(f->resp.body.len, 1000);
    assert_int_equal(fx_send(f, "GET", "/big?bytes=1001", NULL, 0), CB_ERR_TOOBIG);
    assert_non_null(strstr(f->err.buf, "too big"));
    assert_int_equal(f->resp.attempts, 1);
    assert_int_equal(sim_count(&S, "GET", "/big"), 2);
    /* The cap applies to the decoded body: 221 gzip bytes that inflate past it. */
    assert_int_equal(fx_send(f, "GET", "/gzip", NULL, 0), CB_ERR_TOOBIG);
}

static void test_truncated_body_is_error(void **state)
{
    struct fx *f = *state;
    struct http_opts o = fast_opts;
    o.max_retries = 2;
    fx_reopen(f, &o);
    fault("{\"path\":\"/big\",\"kind\":\"truncate\",\"count\":-1}");
    assert_int_equal(fx_send(f, "GET", "/big?bytes=5000", NULL, 0), CB_ERR_TEMP);
    assert_int_equal(f->resp.status, 0);
    assert_int_equal(f->resp.body.len, 0);
    assert_int_equal(f->resp.attempts, 3);
    assert_int_equal(sim_count(&S, "GET", "/big"), 3);

    /* The same once only: the retry gets the whole body. */
    cJSON_Delete(sim_ctl(&S, "DELETE", "/_sim/faults", NULL));
    fault("{\"path\":\"/big\",\"kind\":\"truncate\"}");
    assert_int_equal(fx_send(f, "GET", "/big?bytes=5000", NULL, 0), CB_OK);
    assert_int_equal(f->resp.body.len, 5000);
    assert_int_equal(f->resp.attempts, 2);
}

static void test_chunked_cut_is_error(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_send(f, "GET", "/chunked", NULL, 0), CB_OK);
    assert_string_equal(f->resp.body.buf, "{\"items\":[\"a\",\"b\",\"c\"]}");
    assert_int_equal(fx_send(f, "GET", "/chunked?cut=1", NULL, 0), CB_ERR_TEMP);
    assert_int_equal(f->resp.body.len, 0);
    assert_int_equal(f->resp.attempts, 4);
}

static void test_gzip_decoded(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_send(f, "GET", "/gzip", NULL, 0), CB_OK);
    struct strbuf v = STRBUF_INIT;
    assert_int_equal(http_resp_header(&f->resp, "content-encoding", &v), 1);
    assert_string_equal(v.buf, "gzip");
    strbuf_release(&v);
    cJSON *j = fx_json(f);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "gzip")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "items")), 50);
    cJSON_Delete(j);
    assert_true(f->resp.body.len > 1000);
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    struct http_opts o = fast_opts;
    o.timeout_s = 1;
    o.max_retries = 1;
    fx_reopen(f, &o);
    fault("{\"path\":\"/echo\",\"kind\":\"latency\",\"delay_ms\":1500,\"count\":2}");
    assert_int_equal(fx_send(f, "GET", "/echo", NULL, 0), CB_ERR_TEMP);
    assert_int_equal(f->resp.attempts, 2);
    assert_true(f->ms >= 1900);
    assert_true(f->ms < 4000);
    assert_non_null(strstr(f->err.buf, "timed out"));
    assert_non_null(strstr(f->err.buf, "(2 attempts)"));
    /* Let the simulator finish the slow requests so that they land in no later test's log. */
    for (int i = 0; i < 50 && sim_count(&S, "GET", "/echo") < 2; i++)
        usleep(100 * 1000);
}

static void on_alarm(int sig)
{
    (void)sig;
    http_request_stop();
}

static void test_stop_during_backoff(void **state)
{
    struct fx *f = *state;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    struct itimerval it = {{0, 0}, {0, 200 * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);

    fault("{\"path\":\"/echo\",\"kind\":\"status\",\"status\":429,\"retry_after\":8}");
    assert_int_equal(fx_send(f, "GET", "/echo", NULL, 0), CB_ERR_STOPPED);
    assert_true(f->ms < 1000);
    assert_true(http_stopped());
    assert_non_null(strstr(f->err.buf, "stopped"));
    sigaction(SIGALRM, &old, NULL);

    /* A later backoff stops at once; the attempt before it still goes out. */
    fault("{\"path\":\"/echo\",\"kind\":\"status\",\"status\":500}");
    assert_int_equal(fx_send(f, "GET", "/echo", NULL, 0), CB_ERR_STOPPED);
    assert_int_equal(f->resp.attempts, 1);

    http_stop_reset();
    assert_false(http_stopped());
    assert_int_equal(fx_send(f, "GET", "/echo", NULL, 0), CB_OK);
}

static void test_html_200_returned(void **state)
{
    struct fx *f = *state;
    fault("{\"path\":\"/echo\",\"kind\":\"html\"}");
    assert_int_equal(fx_send(f, "GET", "/echo", NULL, 0), CB_OK);
    assert_int_equal(f->resp.status, 200);
    assert_int_equal(http_classify(f->resp.status), CB_OK);
    assert_non_null(strstr(f->resp.body.buf, "<title>Service Unavailable</title>"));
    assert_null(cJSON_ParseWithLengthOpts(f->resp.body.buf, f->resp.body.len, NULL, 0));
    struct strbuf v = STRBUF_INIT;
    assert_int_equal(http_resp_header(&f->resp, "Content-Type", &v), 1);
    assert_string_equal(v.buf, "text/html; charset=utf-8");
    strbuf_release(&v);
}

static void test_redirects(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_send(f, "GET", "/redirect?n=2&to=/echo", NULL, 0), CB_OK);
    assert_int_equal(f->resp.status, 200);
    assert_int_equal(http_resp_header(&f->resp, "Location", NULL), 0);
    cJSON *j = fx_json(f);
    assert_string_equal(jstr(j, "path", NULL), "/echo");
    cJSON_Delete(j);

    assert_int_equal(fx_send(f, "POST", "/redirect?to=/echo", "{}", 0), CB_OK);
    assert_int_equal(f->resp.status, 302);
    struct strbuf v = STRBUF_INIT;
    assert_int_equal(http_resp_header(&f->resp, "location", &v), 1);
    assert_string_equal(v.buf, "/echo");
    strbuf_release(&v);
    assert_int_equal(sim_count(&S, "POST", "/echo"), 0);

    sim_clear_log(&S);
    assert_int_equal(fx_send(f, "GET", "/redirect?n=4&to=/gzip", NULL, 0), CB_ERR_FINAL);
    assert_int_equal(f->resp.attempts, 1);
    assert_int_equal(sim_count(&S, "GET", "/redirect"), 4);
    assert_int_equal(sim_count(&S, "GET", "/gzip"), 0);
    assert_non_null(strstr(f->err.buf, "redirects"));
}

static void test_bad_url_is_final(void **state)
{
    struct fx *f = *state;
    struct http_req req = {.method = "GET", .url = "ftp://127.0.0.1/x?key=SECRET123"};
    assert_int_equal(fx_run(f, &req), CB_ERR_FINAL);
    assert_int_equal(f->resp.attempts, 1);
    assert_null(strstr(f->err.buf, "SECRET123"));
    assert_non_null(strstr(f->err.buf, "cannot request 'ftp://127.0.0.1/x'"));
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_no_secret_in_messages(void **state)
{
    struct fx *f = *state;
    char url[256];
    snprintf(url, sizeof(url),
             "http://bot:pw-SECRET123@127.0.0.1:%d/rest/x?token=SECRET123&q=SECRET123#SECRET123",
             closed_port());
    FILE *logf = tmpfile();
    assert_non_null(logf);
    log_set_stream(logf);
    log_set_level(LOG_DEBUG);
    const char *hdrs[] = {"Authorization: Zoho-oauthtoken SECRET123", NULL};
    struct http_req req = {.method = "GET", .url = url, .headers = hdrs};
    assert_int_equal(fx_send(f, "GET", "/echo", NULL, 0), CB_OK); /* the handle sent before */
    unsigned long before = http_total_requests();
    assert_int_equal(fx_run(f, &req), CB_ERR_TEMP);
    log_set_level(LOG_INFO);
    log_set_stream(NULL);

    assert_int_equal(f->resp.attempts, 4);
    assert_int_equal(http_total_requests(), before); /* nothing was sent */
    assert_null(strstr(f->err.buf, "SECRET123"));
    assert_null(strstr(f->err.buf, "bot"));
    assert_non_null(strstr(f->err.buf, "cannot reach 'http://127.0.0.1:"));
    assert_non_null(strstr(f->err.buf, "/rest/x'"));

    char text[8192];
    rewind(logf);
    size_t n = fread(text, 1, sizeof(text) - 1, logf);
    text[n] = '\0';
    fclose(logf);
    assert_non_null(strstr(text, "GET http://127.0.0.1:"));
    assert_null(strstr(text, "SECRET123"));
}

static void test_classify(void **state)
{
    static const struct {
        long status;
        enum cb_status st;
    } cases[] = {{200, CB_OK},           {201, CB_OK},           {204, CB_OK},
                 {304, CB_OK},           {0, CB_ERR_TEMP},       {500, CB_ERR_TEMP},
                 {503, CB_ERR_TEMP},     {408, CB_ERR_TEMP},     {401, CB_ERR_AUTH},
                 {403, CB_ERR_FINAL},    {400, CB_ERR_FINAL},    {422, CB_ERR_FINAL},
                 {404, CB_ERR_NOTFOUND}, {410, CB_ERR_NOTFOUND}, {409, CB_ERR_CONFLICT},
                 {412, CB_ERR_CONFLICT}, {429, CB_ERR_WAIT},     {302, CB_ERR_FINAL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (http_classify(cases[i].status) != cases[i].st)
            fail_msg("http_classify(%ld) = %d, want %d", cases[i].status,
                     http_classify(cases[i].status), cases[i].st);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bodies_and_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_500_twice_then_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_final_5xx_returned_after_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_no_retry_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_post_no_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_get_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_retry_after_then_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_long_retry_after_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_http_date, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_without_retry_after_backs_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_doubles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_body_is_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_cut_is_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gzip_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_during_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html_200_returned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_url_is_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_secret_in_messages, setup, teardown),
        cmocka_unit_test(test_classify),
    };
    return cmocka_run_group_tests_name("conn_http", tests, group_setup, group_teardown);
}
