/*
 * The HTTP client over one reused libcurl easy handle per struct http: every attempt resets
 * the handle's options (curl keeps its connection cache across resets), collects the final
 * response's headers and a capped body, and a small loop decides between returning and waiting
 * (backoff or Retry-After) before the next attempt. It knows no service and parses no JSON;
 * URLs in messages and logs lose their query string and user info.
 */
#include "connectors/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LOG_MODULE "http"
#include "core/log.h"
#include "core/timeutil.h"

#define DEFAULT_MAX_BODY (32L * 1024 * 1024)
#define HEADERS_CAP (256 * 1024)
#define BACKOFF_CAP_MS 30000L
#define SLEEP_SLICE_MS 100L
#define MAX_REDIRECTS 3L

struct http {
    CURL *curl;
    struct http_opts opts; /* defaults filled in; strings point at the copies below */
    char *ca_file;
    char *user_agent;
    uint64_t rng;
    struct http_budget budget;
    int64_t date_offset_ms; /* the server's Date minus our clock at receipt (a lower bound) */
    int has_date;
    char errbuf[CURL_ERROR_SIZE];
};

/* What one attempt produced. */
enum outcome {
    OUT_RESPONSE, /* a complete HTTP response (any status) */
    OUT_NETWORK,  /* no complete response: connect, timeout, reset, truncated body */
    OUT_TOOBIG,   /* headers or body over the cap */
    OUT_BADREQ,   /* retrying cannot help: malformed URL, bad scheme, redirect loop */
    OUT_TLS,      /* the certificate does not verify: no retry now, but temporary (a
                   * certificate can be fixed before the next cycle; no record is skipped) */
};

struct sink {
    struct http_resp *resp;
    int toobig;
};

/* atomic: set by signal handlers, read by every pair's thread (lock-free, so signal-safe) */
static atomic_int stop_flag;
static atomic_ulong total_requests;

static int pick(int v, int dflt)
{
    return v > 0 ? v : dflt;
}

struct http *http_new(const struct http_opts *opts)
{
    static const struct http_opts none;
    const struct http_opts *o = opts ? opts : &none;
    struct http *h = xcalloc(1, sizeof(*h));
    h->curl = curl_easy_init();
    if (!h->curl) {
        fputs("fatal: cannot create a curl handle\n", stderr);
        abort();
    }
    h->opts.timeout_s = pick(o->timeout_s, 30);
    h->opts.connect_timeout_s = pick(o->connect_timeout_s, 10);
    h->opts.max_body = o->max_body > 0 ? o->max_body : DEFAULT_MAX_BODY;
    h->opts.max_retries = o->max_retries < 0 ? 0 : pick(o->max_retries, 4);
    h->opts.backoff_ms = pick(o->backoff_ms, 500);
    h->opts.max_wait_s = pick(o->max_wait_s, 60);
    h->ca_file = o->ca_file ? xstrdup(o->ca_file) : NULL;
    h->user_agent = xstrdup(o->user_agent ? o->user_agent : "crmbridge/" CRMBRIDGE_VERSION);
    h->opts.ca_file = h->ca_file;
    h->opts.user_agent = h->user_agent;
    h->budget.remaining = h->budget.limit = -1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    h->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)h;
    if (!h->rng)
        h->rng = 0x9e3779b97f4a7c15ULL;
    return h;
}

/* Rate-limit headers as each service names them: remaining, then its limit (NULL: none). */
static const char *const budget_headers[][2] = {
    {"X-RateLimit-Remaining", "X-RateLimit-Limit"},
    {"x-rate-limit-api-token-remaining", "x-rate-limit-api-token-max"},
    {"X-API-CREDITS-REMAINING", NULL},
};

static long header_long(const struct http_resp *r, const char *name)
{
    struct strbuf v = STRBUF_INIT;
    long n = -1;
    if (name && http_resp_header(r, name, &v)) {
        char *end;
        long x = strtol(v.buf, &end, 10);
        if (end != v.buf && x >= 0)
            n = x;
    }
    strbuf_release(&v);
    return n;
}

static void budget_note(struct http *h, const struct http_resp *r, long ra)
{
    h->budget.requests++;
    if (r->status == 429 || (r->status == 503 && ra >= 0))
        h->budget.throttled++;
    for (size_t i = 0; i < sizeof(budget_headers) / sizeof(budget_headers[0]); i++) {
        long left = header_long(r, budget_headers[i][0]);
        if (left < 0)
            continue;
        h->budget.remaining = left;
        h->budget.limit = header_long(r, budget_headers[i][1]);
        return;
    }
}

void http_budget_get(const struct http *h, struct http_budget *out)
{
    *out = h->budget;
}

/* The Date of an answer was stamped (whole seconds, rounded down) before we received it, so
 * Date minus our clock at receipt never exceeds the true difference between the clocks. */
static void clock_note(struct http *h, const struct http_resp *r)
{
    struct strbuf v = STRBUF_INIT;
    int64_t when;
    if (r->status > 0 && http_resp_header(r, "Date", &v) && cbtime_parse(v.buf, &when) == CB_OK) {
        h->date_offset_ms = when - cbtime_now_ms();
        h->has_date = 1;
    }
    strbuf_release(&v);
}

int64_t http_server_now(const struct http *h)
{
    return h->has_date ? cbtime_now_ms() + h->date_offset_ms : 0;
}

void http_free(struct http *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    free(h->ca_file);
    free(h->user_agent);
    free(h);
}

void http_resp_init(struct http_resp *r)
{
    r->status = 0;
    strbuf_init(&r->body, 0);
    strbuf_init(&r->headers, HEADERS_CAP);
    r->attempts = 0;
    r->retry_after_s = -1;
}

void http_resp_release(struct http_resp *r)
{
    strbuf_release(&r->body);
    strbuf_release(&r->headers);
    r->status = 0;
}

void http_request_stop(void)
{
    stop_flag = 1;
}

int http_stopped(void)
{
    return stop_flag != 0;
}

void http_stop_reset(void)
{
    stop_flag = 0;
}

unsigned long http_total_requests(void)
{
    return atomic_load(&total_requests);
}

enum cb_status http_classify(long status)
{
    if ((status >= 200 && status <= 299) || status == 304)
        return CB_OK;
    if (status == 0 || status == 408 || (status >= 500 && status <= 599))
        return CB_ERR_TEMP;
    switch (status) {
    case 401:
        return CB_ERR_AUTH;
    case 404:
    case 410:
        return CB_ERR_NOTFOUND;
    case 409:
    case 412:
        return CB_ERR_CONFLICT;
    case 429:
        return CB_ERR_WAIT;
    default:
        return CB_ERR_FINAL;
    }
}

int http_resp_header(const struct http_resp *resp, const char *name, struct strbuf *out)
{
    size_t n = strlen(name);
    const char *line = resp->headers.buf;
    while (*line) {
        size_t len = strcspn(line, "\r\n");
        if (len > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            const char *v = line + n + 1;
            const char *end = line + len;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            if (out) {
                strbuf_reset(out);
                if (strbuf_add(out, v, (size_t)(end - v)) != CB_OK)
                    return 0;
            }
            return 1;
        }
        line += len;
        line += strspn(line, "\r\n");
    }
    return 0;
}

/* "scheme://host[:port]/path" of url: no user info, no query, no fragment. */
static void url_for_log(const char *url, struct strbuf *out)
{
    const char *sep = strstr(url, "://");
    const char *host = sep && (size_t)(sep - url) < strcspn(url, "?#") ? sep + 3 : url;
    const char *at = memchr(host, '@', strcspn(host, "/?#"));
    if (at) {
        (void)strbuf_add(out, url, (size_t)(host - url));
        url = at + 1;
    }
    (void)strbuf_add(out, url, strcspn(url, "?#"));
}

/* Every message passes through here once written: credential-looking parts are redacted. */
static void redact_err(struct strbuf *err)
{
    if (!err)
        return;
    char *clean = log_redact(err->buf);
    strbuf_setf(err, "%s", clean);
    free(clean);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    if (strbuf_add(&s->resp->body, p, size * n) != CB_OK) {
        s->toobig = 1;
        return 0;
    }
    return size * n;
}

/* curl hands over the headers of every response (100-continue, redirects): a status line
 * starts a new block, so only the final response's headers remain. */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        strbuf_reset(&s->resp->headers);
        return len;
    }
    if (len == 0 || p[0] == '\r' || p[0] == '\n')
        return len;
    if (strbuf_add(&s->resp->headers, p, len) != CB_OK) {
        s->toobig = 1;
        return 0;
    }
    return len;
}

static struct curl_slist *slist_add(struct curl_slist *l, const char *line)
{
    struct curl_slist *n = curl_slist_append(l, line);
    if (!n) {
        fputs("fatal: out of memory\n", stderr);
        abort();
    }
    return n;
}

static int has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);
    for (; headers && *headers; headers++)
        if (strncasecmp(*headers, name, n) == 0 && (*headers)[n] == ':')
            return 1;
    return 0;
}

static int sends_body(const struct http_req *req, const char *method)
{
    return req->body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

static struct curl_slist *build_headers(const struct http_req *req, const char *method)
{
    struct curl_slist *l = NULL;
    for (const char *const *p = req->headers; p && *p; p++)
        l = slist_add(l, *p);
    if (sends_body(req, method) && !has_header(req->headers, "Content-Type")) {
        /* With no body, "Content-Type:" stops curl from adding a form content type. */
        struct strbuf ct = STRBUF_INIT;
        if (req->body)
            (void)strbuf_addf(&ct, "Content-Type: %s",
                              req->content_type ? req->content_type : "application/json");
        else
            (void)strbuf_adds(&ct, "Content-Type:");
        l = slist_add(l, ct.buf);
        strbuf_release(&ct);
    }
    /* No 100-continue round trip for large bodies. */
    return slist_add(l, "Expect:");
}

static void set_method(CURL *c, const struct http_req *req, const char *method)
{
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
        return;
    }
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        return;
    }
    if (strcmp(method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (!sends_body(req, method))
        return;
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
}

static void set_options(struct http *h, const struct http_req *req, const char *method,
                        struct curl_slist *headers, struct sink *sink)
{
    CURL *c = h->curl;
    /* The reset keeps curl's connection cache, so keep-alive survives it. */
    curl_easy_reset(c);
    h->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR,
                     strncasecmp(req->url, "https:", 6) == 0 ? "https" : "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)h->opts.connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)h->opts.timeout_s);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->opts.max_body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, sink);
    /* curl silently resends a request whose reused connection died before any answer; for a
     * request that must not be repeated only a fresh connection rules that out. */
    if (req->no_retry)
        curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
    set_method(c, req, method);
}

static enum outcome outcome_of(CURLcode cc, const struct sink *sink)
{
    if (cc == CURLE_OK)
        return OUT_RESPONSE;
    if (sink->toobig || cc == CURLE_FILESIZE_EXCEEDED)
        return OUT_TOOBIG;
    switch (cc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_TOO_MANY_REDIRECTS:
        return OUT_BADREQ;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return OUT_TLS;
    default:
        /* Includes CURLE_PARTIAL_FILE: a body shorter than announced is not a response. */
        return OUT_NETWORK;
    }
}

/* One attempt. On anything but a complete response, status and body are cleared. */
static enum outcome attempt(struct http *h, const struct http_req *req, const char *method,
                            const char *where, struct http_resp *resp, CURLcode *cc)
{
    struct sink sink = {resp, 0};
    struct curl_slist *headers = build_headers(req, method);
    strbuf_reset(&resp->body);
    strbuf_reset(&resp->headers);
    resp->status = 0;
    set_options(h, req, method, headers, &sink);
    *cc = curl_easy_perform(h->curl);
    curl_slist_free_all(headers);
    resp->attempts++;
    long sent = 0;
    curl_off_t us = 0;
    curl_easy_getinfo(h->curl, CURLINFO_REQUEST_SIZE, &sent);
    curl_easy_getinfo(h->curl, CURLINFO_TOTAL_TIME_T, &us);
    if (sent > 0)
        atomic_fetch_add(&total_requests, 1);
    enum outcome out = outcome_of(*cc, &sink);
    if (out != OUT_RESPONSE) {
        strbuf_reset(&resp->body);
        log_debug("%s %s -> %s (%ld ms)", method, where, curl_easy_strerror(*cc),
                  (long)(us / 1000));
        return out;
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp->status);
    log_debug("%s %s -> %ld (%ld ms, %zu bytes)", method, where, resp->status, (long)(us / 1000),
              resp->body.len);
    return out;
}

/* Seconds from a Retry-After value (delta-seconds or an HTTP date), or -1. */
static long parse_retry_after(const char *v)
{
    if (!*v)
        return -1;
    if (strspn(v, "0123456789") == strlen(v)) {
        if (strlen(v) > 9)
            return 999999999L;
        return strtol(v, NULL, 10);
    }
    int64_t when;
    if (cbtime_parse(v, &when) != CB_OK)
        return -1;
    int64_t secs = (when - cbtime_now_ms() + 999) / 1000;
    return secs < 0 ? 0 : (long)(secs > 999999999 ? 999999999 : secs);
}

static long retry_after_of(const struct http_resp *resp)
{
    if (resp->status != 429 && resp->status != 503)
        return -1;
    struct strbuf v = STRBUF_INIT;
    long s = http_resp_header(resp, "Retry-After", &v) ? parse_retry_after(v.buf) : -1;
    strbuf_release(&v);
    return s;
}

static uint64_t next_rand(struct http *h)
{
    /* xorshift64*: jitter only, no need for more */
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return h->rng * 0x2545F4914F6CDD1DULL;
}

/* backoff_ms * 2^retry with +-30% jitter, capped. */
static long backoff_ms(struct http *h, int retry)
{
    long base = h->opts.backoff_ms;
    for (int i = 0; i < retry && base < BACKOFF_CAP_MS; i++)
        base *= 2;
    if (base > BACKOFF_CAP_MS)
        base = BACKOFF_CAP_MS;
    long ms = base * (700 + (long)(next_rand(h) % 601)) / 1000;
    return ms > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : ms;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms in short slices so that http_request_stop() ends the wait promptly. */
static enum cb_status sleep_ms(long ms)
{
    int64_t deadline = mono_ms() + ms;
    for (;;) {
        if (stop_flag)
            return CB_ERR_STOPPED;
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return CB_OK;
        if (left > SLEEP_SLICE_MS)
            left = SLEEP_SLICE_MS;
        struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* The wait before a retry, with the caller's hook around it (req->on_wait). */
static enum cb_status wait_between(const struct http_req *req, long ms)
{
    enum cb_status st = req->on_wait ? req->on_wait(req->wait_arg, 1) : CB_OK;
    if (st == CB_OK)
        st = sleep_ms(ms);
    if (st == CB_OK && req->on_wait)
        st = req->on_wait(req->wait_arg, 0);
    return st;
}

/* How long to wait before the next attempt, or -1 to stop with what we have. ra is this
 * attempt's Retry-After in seconds, or -1. */
static long next_wait(struct http *h, const struct http_req *req, long st, long ra,
                      enum outcome out, int retry)
{
    if (out == OUT_TOOBIG || out == OUT_BADREQ || out == OUT_TLS || retry >= h->opts.max_retries)
        return -1;
    /* The server did not act on the request: safe to repeat whatever the method. */
    if (st == 429 || (st == 503 && ra >= 0))
        return ra >= 0 ? ra * 1000 : backoff_ms(h, retry);
    int transient = out == OUT_NETWORK || st == 408 || (st >= 500 && st <= 599);
    if (!transient || req->no_retry)
        return -1;
    return backoff_ms(h, retry);
}

static enum cb_status finish(struct http *h, const struct http_req *req, struct http_resp *resp,
                             enum outcome out, CURLcode cc, const char *where, struct strbuf *err)
{
    if (out == OUT_RESPONSE)
        return CB_OK;
    if (out == OUT_TOOBIG) {
        strbuf_setf(err, "response too big from '%s': over %ld bytes", where, h->opts.max_body);
        return CB_ERR_TOOBIG;
    }
    /* curl's own text rarely quotes the URL; when it quotes the query, use the generic one. */
    const char *query = strchr(req->url, '?');
    const char *detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc);
    if (query && query[1] && strstr(detail, query + 1))
        detail = curl_easy_strerror(cc);
    /* Messages are lower-case, but "OpenSSL" stays as it is. */
    int first = isupper((unsigned char)detail[1]) ? detail[0] : tolower((unsigned char)detail[0]);
    if (out == OUT_BADREQ) {
        strbuf_setf(err, "cannot request '%s': %c%s", where, first, detail + 1);
        return CB_ERR_FINAL;
    }
    strbuf_setf(err, "cannot reach '%s': %c%s (%d attempt%s)", where, first, detail + 1,
                resp->attempts, resp->attempts == 1 ? "" : "s");
    return CB_ERR_TEMP;
}

/* Test seam for the crash harness (tests/crash/): CRMBRIDGE_CRASH_AFTER_WRITES=k kills the process
 * with SIGKILL right after the k-th successful (2xx) request whose method is not GET or HEAD, as
 * if it died between a remote write and the local commit that records it. */
static void crash_after_write(const char *method, long status)
{
    static long left = -2; /* -2: not read yet; -1: disabled */
    if (left == -2) {
        const char *s = getenv("CRMBRIDGE_CRASH_AFTER_WRITES");
        left = s && *s ? strtol(s, NULL, 10) : -1;
    }
    if (left <= 0 || status < 200 || status > 299 || !strcmp(method, "GET") ||
        !strcmp(method, "HEAD"))
        return;
    if (--left == 0)
        raise(SIGKILL);
}

enum cb_status http_request(struct http *h, const struct http_req *req, struct http_resp *resp,
                            struct strbuf *err)
{
    const char *method = req->method ? req->method : "GET";
    struct strbuf where = STRBUF_INIT;
    url_for_log(req->url, &where);
    strbuf_release(&resp->body);
    strbuf_init(&resp->body, (size_t)h->opts.max_body);
    resp->attempts = 0;
    resp->retry_after_s = -1;
    enum cb_status st;
    for (int retry = 0;; retry++) {
        CURLcode cc;
        enum outcome out = attempt(h, req, method, where.buf, resp, &cc);
        long ra = retry_after_of(resp);
        budget_note(h, resp, ra);
        clock_note(h, resp);
        if (ra >= 0)
            resp->retry_after_s = ra;
        if (ra > h->opts.max_wait_s) {
            strbuf_setf(err, "rate limited by '%s': http %ld, retry after %ld s", where.buf,
                        resp->status, ra);
            st = CB_ERR_WAIT;
            break;
        }
        long wait = next_wait(h, req, resp->status, ra, out, retry);
        if (wait < 0) {
            st = finish(h, req, resp, out, cc, where.buf, err);
            break;
        }
        log_debug("%s %s: retrying in %ld ms", method, where.buf, wait);
        h->budget.waited_ms += wait;
        if ((st = wait_between(req, wait)) != CB_OK) {
            strbuf_setf(err, "stopped while waiting to retry '%s'", where.buf);
            break;
        }
    }
    if (st == CB_OK)
        crash_after_write(method, resp->status);
    if (st != CB_OK)
        redact_err(err);
    strbuf_release(&where);
    return st;
}
