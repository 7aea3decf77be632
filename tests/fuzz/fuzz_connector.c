/*
 * libFuzzer target for one connector's response parsing (built once per connector with
 * -DFUZZ_CONNECTOR="zoho" etc.). The input is a sequence of HTTP response bodies separated by
 * the line "\n--8<--\n"; a loopback server thread answers the connector's requests with them in
 * order (status 200, then 404 "{}" once they run out), so the bodies go through the real HTTP
 * layer and the connector's own parsers: ping (token, metadata), list_changed, get_many, write
 * (an update and a create) and find_marker. It checks nothing but memory safety and that no
 * call crashes or hangs; no product code knows about it.
 *
 * Recording seeds: with CB_FUZZ_UPSTREAM=http://127.0.0.1:PORT (a simulator) and
 * CB_FUZZ_RECORD=FILE, the server forwards each request upstream and writes the bodies it got
 * to FILE in the input format (tests/fuzz/record.sh); CB_FUZZ_PORT fixes the server's port.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connectors/connector.h"
#include "core/config.h"
#include "core/log.h"
#include "mapping/mapping.h"

#ifndef FUZZ_CONNECTOR
#define FUZZ_CONNECTOR "zoho"
#endif
#define SEP "\n--8<--\n"
#define MAX_REQ (1 << 20)

struct feed {
    pthread_mutex_t mu;
    const uint8_t *data;
    size_t len, pos;
};

static struct feed feed = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};
static int port;
static const char *upstream;
static FILE *record;

/* A copy of the next body of the input (caller frees), or NULL when none is left. The input
 * is libFuzzer's and may be freed as soon as the run ends, so nothing borrowed leaves here. */
static uint8_t *next_body(size_t *n)
{
    pthread_mutex_lock(&feed.mu);
    uint8_t *out = NULL;
    if (feed.data && feed.pos <= feed.len && feed.len) {
        const uint8_t *p = feed.data + feed.pos;
        size_t left = feed.len - feed.pos;
        const uint8_t *s = memmem(p, left, SEP, strlen(SEP));
        *n = s ? (size_t)(s - p) : left;
        feed.pos += *n + (s ? strlen(SEP) : 1);
        out = malloc(*n + 1);
        memcpy(out, p, *n);
    }
    pthread_mutex_unlock(&feed.mu);
    return out;
}

static size_t collect(char *p, size_t sz, size_t nm, void *arg)
{
    struct strbuf *b = arg;
    (void)strbuf_add(b, p, sz * nm);
    return sz * nm;
}

/* Record mode: replays the raw request upstream with curl and keeps the body. */
static long forward(const char *method, const char *path, const char *hdrs, const char *body,
                    size_t blen, struct strbuf *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    char url[4096];
    snprintf(url, sizeof(url), "%s%s", upstream, path);
    for (const char *l = hdrs; *l;) {
        const char *e = strstr(l, "\r\n");
        if (!e || e == l)
            break;
        char line[2048];
        snprintf(line, sizeof(line), "%.*s", (int)(e - l), l);
        if (strncasecmp(line, "host:", 5) && strncasecmp(line, "content-length:", 15))
            hl = curl_slist_append(hl, line);
        l = e + 2;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (blen) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    long st = 502;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return st;
}

static void reply(int fd, long st, const char *body, size_t n)
{
    char head[256];
    int h = snprintf(
        head, sizeof(head),
        "HTTP/1.1 %ld X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n", st, n);
    /* the client may have hung up already: no SIGPIPE */
    if (send(fd, head, (size_t)h, MSG_NOSIGNAL) < 0 || (n && send(fd, body, n, MSG_NOSIGNAL) < 0))
        return;
}

/* Reads one request (headers and Content-Length body) into buf; returns its length or -1. */
static long read_request(int fd, char *buf, size_t cap, size_t *hdr_end)
{
    size_t got = 0;
    for (;;) {
        char *e = got ? memmem(buf, got, "\r\n\r\n", 4) : NULL;
        if (e) {
            *hdr_end = (size_t)(e - buf) + 4;
            const char *cl = strcasestr(buf, "\r\ncontent-length:");
            size_t need = *hdr_end + (cl && cl < e ? strtoul(cl + 17, NULL, 10) : 0);
            if (need >= cap)
                return -1;
            const char *ex = strcasestr(buf, "\r\nexpect: 100-continue");
            if (ex && ex < e && got < need) /* curl waits a second for this before a big body */
                (void)send(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL);
            while (got < need) {
                ssize_t r = read(fd, buf + got, need - got);
                if (r <= 0)
                    return -1;
                got += (size_t)r;
            }
            buf[got] = '\0';
            return (long)got;
        }
        if (got + 1 >= cap)
            return -1;
        ssize_t r = read(fd, buf + got, cap - got - 1);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        buf[got] = '\0';
    }
}

static void serve_conn(int fd, char *buf)
{
    size_t he;
    while (read_request(fd, buf, MAX_REQ, &he) >= 0) {
        char method[16] = "", path[4096] = "";
        if (sscanf(buf, "%15s %4095s", method, path) != 2)
            return;
        if (upstream) {
            struct strbuf b = STRBUF_INIT;
            const char *hdrs = strstr(buf, "\r\n") + 2;
            long st = forward(method, path, hdrs, buf + he, strlen(buf + he), &b);
            pthread_mutex_lock(&feed.mu);
            fprintf(record, "%s%s", ftell(record) ? SEP : "", b.buf ? b.buf : "");
            fflush(record);
            pthread_mutex_unlock(&feed.mu);
            reply(fd, st, b.buf, b.len);
            strbuf_release(&b);
            continue;
        }
        size_t n = 0;
        uint8_t *body = next_body(&n);
        if (body)
            reply(fd, 200, (const char *)body, n);
        else
            reply(fd, 404, "{}", 2);
        free(body);
    }
}

/* One thread per connection: a create goes out on a fresh connection while the kept-alive
 * one stays open. */
static void *conn_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(MAX_REQ);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    serve_conn(fd, buf);
    close(fd);
    free(buf);
    return NULL;
}

static void *server(void *arg)
{
    int ls = *(int *)arg;
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        if (pthread_create(&t, NULL, conn_thread, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
    return NULL;
}

static void start_server(void)
{
    static int ls;
    ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (getenv("CB_FUZZ_PORT")) /* record mode: a port the simulator can name (Zoho api_domain) */
        a.sin_port = htons((uint16_t)atoi(getenv("CB_FUZZ_PORT")));
    socklen_t al = sizeof(a);
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 16) ||
        getsockname(ls, (struct sockaddr *)&a, &al))
        abort();
    port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, server, &ls);
    pthread_detach(t);
}

static const char *endpoint_text(void)
{
    static char text[2048];
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
    const char *t = FUZZ_CONNECTOR;
    if (!strcmp(t, "zoho"))
        snprintf(text, sizeof(text),
                 "x = { type = \"zoho\"; accounts_url = \"%s\"; api_url = \"%s\"; client_id = "
                 "\"1000.SIMCLIENT\"; client_secret = \"sim-client-secret\"; refresh_token = "
                 "\"1000.sim-refresh-token\"; };",
                 base, base);
    else if (!strcmp(t, "jira"))
        snprintf(text, sizeof(text),
                 "x = { type = \"jira\"; api_url = \"%s\"; email = \"bot@acme.test\"; "
                 "api_token = \"sim-jira-token\"; search_lag = 0; };",
                 base);
    else if (!strcmp(t, "fxiaoke"))
        snprintf(text, sizeof(text),
                 "x = { type = \"fxiaoke\"; api_url = \"%s\"; app_id = \"FSAID_SIMAPP01\"; "
                 "app_secret = \"sim-app-secret\"; permanent_code = \"sim-permanent-code\"; "
                 "user_id = \"FSUID_00000000000000000000000000000001\"; rate_limit = 5000; };",
                 base);
    else
        snprintf(text, sizeof(text),
                 "x = { type = \"trello\"; api_url = \"%s\"; key = "
                 "\"d1f7b2c9e4a8f3b6c0d5e9a2f4b7c1e8\"; token = \"ATTA9c4e1b7d2f8a3c6e0b5d9f1a4c7e2"
                 "b8d3f6a0c5e9b1d4f7a2c8e3b6d0f5a9c1e4b7\"; token_rate = 100000; "
                 "key_rate = 100000; };",
                 base);
    return text;
}

static const char *side_text(void)
{
    const char *t = FUZZ_CONNECTOR;
    if (!strcmp(t, "zoho"))
        return "module = \"Cases\";";
    if (!strcmp(t, "jira"))
        return "project = \"SUP\"; issue_type = \"Task\";";
    if (!strcmp(t, "fxiaoke"))
        return "object = \"CasesObj\";";
    static char b[128];
    const char *board = getenv("CB_FUZZ_BOARD");
    snprintf(b, sizeof(b), "board = \"%s\"; list = \"Inbox\";",
             board ? board : "5f0c1a2b3c4d5e6f7a8b9c0d");
    return b;
}

static int is_tracker(void)
{
    return !strcmp(FUZZ_CONNECTOR, "jira") || !strcmp(FUZZ_CONNECTOR, "trello");
}

static struct config *cfg;
static struct mapping *map;

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_set_level(getenv("CB_FUZZ_DEBUG") ? LOG_DEBUG : LOG_ERROR);
    upstream = getenv("CB_FUZZ_UPSTREAM");
    if (upstream)
        record = fopen(getenv("CB_FUZZ_RECORD") ? getenv("CB_FUZZ_RECORD") : "seed.txt", "w");
    start_server();
    char text[4096];
    const char *other = is_tracker() ? "zoho" : "jira";
    snprintf(
        text, sizeof(text),
        "state_dir = \"/tmp\";\nhttp_timeout = 2;\nendpoints = { %s y = { type = \"%s\"; }; };\n"
        "pairs = ( { name = \"p\"; %s = { endpoint = \"x\"; %s }; %s = { endpoint = \"y\"; "
        "}; } );\n",
        endpoint_text(), other, is_tracker() ? "tracker" : "crm", side_text(),
        is_tracker() ? "crm" : "tracker");
    struct strbuf err = STRBUF_INIT;
    if (config_load_string(text, "fuzz.conf", &cfg, &err) != CB_OK) {
        fprintf(stderr, "fuzz config: %s\n", err.buf);
        abort();
    }
    const char *crm = is_tracker() ? "zoho" : FUZZ_CONNECTOR;
    const char *trk = is_tracker() ? FUZZ_CONNECTOR : "jira";
    if (mapping_load(NULL, crm, trk, &map, &err) != CB_OK) {
        fprintf(stderr, "fuzz mapping: %s\n", err.buf);
        abort();
    }
    strbuf_release(&err);
}

static enum cb_status on_page(void *arg, struct record *recs, size_t n)
{
    struct record_list *l = arg;
    for (size_t i = 0; i < n && l->n < 8; i++) {
        struct record r;
        record_copy(&r, &recs[i]);
        record_list_push(l, &r);
    }
    return CB_OK;
}

static void exercise(const struct connector_ops *ops, struct connector *c)
{
    struct strbuf info = STRBUF_INIT, err = STRBUF_INIT;
    (void)ops->ping(c, &info, &err);
    struct record_list got = {0}, again = {0};
    (void)ops->list_changed(c, 0, on_page, &got, &err);
    const char *ids[8];
    size_t n = 0;
    for (size_t i = 0; i < got.n && n < 8 && (int)n < ops->max_batch_read; i++)
        if (got.v[i].id)
            ids[n++] = got.v[i].id;
    if (n)
        (void)ops->get_many(c, ids, n, &again, &err);
    cJSON *fields = cJSON_Parse("{}");
    const char *const *rf = mapping_remote_fields(map, is_tracker() ? SIDE_TRACKER : SIDE_CRM);
    for (size_t i = 0; rf && rf[i] && i < 2; i++)
        if (rf[i][0] != '$')
            cJSON_AddStringToObject(fields, rf[i], "fuzzed value");
    struct write_op op;
    write_op_init(&op);
    op.id = n ? ids[0] : "1";
    op.fields = fields;
    (void)ops->write(c, &op, 1, &err);
    write_op_release(&op);
    write_op_init(&op);
    op.fields = fields;
    op.marker = "0123456789abcdef0123456789abcdef";
    (void)ops->write(c, &op, 1, &err);
    write_op_release(&op);
    struct record found = {0};
    (void)ops->find_marker(c, "0123456789abcdef0123456789abcdef", 0, &found, &err);
    record_release(&found);
    cJSON_Delete(fields);
    record_list_release(&got);
    record_list_release(&again);
    strbuf_release(&info);
    strbuf_release(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    pthread_mutex_lock(&feed.mu);
    feed.data = data;
    feed.len = size;
    feed.pos = 0;
    pthread_mutex_unlock(&feed.mu);
    const struct endpoint_conf *ep = config_endpoint(cfg, "x");
    const struct pair_conf *pc = config_pair(cfg, "p");
    const struct connector_ops *ops = connector_find(FUZZ_CONNECTOR);
    struct connector_params cp = {
        .ep = ep,
        .side = &pc->side[is_tracker() ? SIDE_TRACKER : SIDE_CRM],
        .http = {.timeout_s = 2, .max_retries = -1, .max_body = 1 << 20},
        .fields = mapping_remote_fields(map, is_tracker() ? SIDE_TRACKER : SIDE_CRM),
    };
    struct connector *c = NULL;
    struct strbuf err = STRBUF_INIT;
    if (ops->open(&cp, &c, &err) == CB_OK) {
        exercise(ops, c);
        ops->close(c);
    }
    strbuf_release(&err);
    pthread_mutex_lock(&feed.mu);
    feed.data = NULL;
    pthread_mutex_unlock(&feed.mu);
    return 0;
}
