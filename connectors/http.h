/*
 * The one HTTP layer, over libcurl. Keep-alive (one easy handle reused per client), gzip,
 * connect and total timeouts, a capped response body, retries with exponential backoff and
 * jitter for 5xx and network errors on idempotent methods, Retry-After on 429 and 503 for every
 * method (the server did not act on the request), and no credential in any log line.
 *
 * It does not know any service: auth headers are passed in by connectors, and JSON is parsed by
 * them. Status classification (http_classify) is the single place that maps HTTP outcomes onto
 * enum cb_status.
 *
 * The program calls curl_global_init(CURL_GLOBAL_DEFAULT) once before the first http_new (main()
 * does, and so do the tests). A struct http is used by one thread at a time.
 */
#ifndef CB_HTTP_H
#define CB_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include "core/status.h"
#include "core/strbuf.h"

struct http;

/* Fields left 0 take their default. */
struct http_opts {
    int timeout_s;        /* total per attempt; default 30 */
    int connect_timeout_s;/* default 10 */
    long max_body;        /* response cap in bytes; default 32 MiB */
    int max_retries;      /* retries after the first attempt; default 4; -1 = none */
    int backoff_ms;       /* first backoff; doubles per retry with +-30% jitter; default 500 */
    int max_wait_s;       /* longest Retry-After we sleep through; longer -> CB_ERR_WAIT; default 60 */
    const char *ca_file;  /* extra CA bundle; NULL = system store. TLS is always verified */
    const char *user_agent;
};

struct http_req {
    const char *method; /* "GET", "POST", "PUT", "DELETE", "PATCH" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" lines; may be NULL */
    const char *body;           /* may be NULL */
    size_t body_len;
    const char *content_type;   /* default "application/json" when body is set */
    int no_retry;               /* 1: never retry (non-idempotent create) except on 429 and
                                 * 503 with Retry-After; also sent on a fresh connection, as
                                 * curl silently resends on a reused one that died */
    /* May be NULL. Called from the calling thread with waiting 1 before each wait between
     * attempts and with waiting 0 after a wait that ran its course (a connector that counts
     * requests in flight gives up its slot meanwhile); a status other than CB_OK ends the
     * request with it. */
    enum cb_status (*on_wait)(void *arg, int waiting);
    void *wait_arg;
};

struct http_resp {
    long status;          /* 0 when no response arrived */
    struct strbuf body;   /* capped by opts.max_body */
    struct strbuf headers;/* raw header block, "name: value\r\n" lines of the final response */
    int attempts;
    long retry_after_s;   /* from the last 429/503, -1 if none */
};

/* Creates a client; opts may be NULL (all defaults) and is copied. Never fails except on
 * allocation (aborts). */
struct http *http_new(const struct http_opts *opts);
void http_free(struct http *h);

void http_resp_init(struct http_resp *r);
void http_resp_release(struct http_resp *r);

/* Performs req, retrying as described above. resp must have been initialised; its previous
 * contents are replaced. Returns CB_OK when any HTTP response arrived (the caller inspects
 * resp->status, usually through http_classify); CB_ERR_TEMP for network errors and timeouts
 * after the retries, and at once for a server certificate that does not verify; CB_ERR_WAIT when rate limited beyond max_wait_s; CB_ERR_TOOBIG when the
 * body exceeds the cap; CB_ERR_STOPPED when http_request_stop() was called; CB_ERR_FINAL,
 * without retry, for a malformed URL, a scheme other than http(s) or more than 3 redirects.
 * err gets a message without secrets ("cannot reach 'https://host/path': timeout"). */
enum cb_status http_request(struct http *h, const struct http_req *req, struct http_resp *resp,
                            struct strbuf *err) CB_WUR;

/* Maps an HTTP status to a failure class: 2xx/304 -> CB_OK, 401 -> CB_ERR_AUTH, 404/410 ->
 * CB_ERR_NOTFOUND, 409/412 -> CB_ERR_CONFLICT, 429 -> CB_ERR_WAIT, 5xx/408 -> CB_ERR_TEMP,
 * other 4xx -> CB_ERR_FINAL; 0 (no response) -> CB_ERR_TEMP; anything else -> CB_ERR_FINAL. */
enum cb_status http_classify(long status);

/* Value of header name (case-insensitive) in resp, trimmed and copied into out (out may be NULL
 * to test presence); returns 1 if present, 0 if absent (out unchanged). */
int http_resp_header(const struct http_resp *resp, const char *name, struct strbuf *out);

/* Makes every later and current backoff sleep return CB_ERR_STOPPED (signal handlers may call
 * it: it only sets a flag). */
void http_request_stop(void);
int http_stopped(void);
/* Resets the stop flag (tests and daemon reloads). */
void http_stop_reset(void);

/* What one client has learnt about its rate limit, for `crmbridge status`. */
struct http_budget {
    long remaining;          /* requests or credits left, from the last response that said; -1 unknown */
    long limit;              /* the size of that allowance; -1 unknown */
    unsigned long throttled; /* answers 429 (or 503 with Retry-After) received */
    long waited_ms;          /* time slept for Retry-After and backoff */
    unsigned long requests;  /* attempts sent */
};
/* Copies the client's budget into out. The remaining/limit pair comes from the first of the
 * headers services publish: X-RateLimit-Remaining/-Limit (Jira Cloud and Data Center),
 * x-rate-limit-api-token-remaining/-max (Trello), X-API-CREDITS-REMAINING (Zoho CRM). */
void http_budget_get(const struct http *h, struct http_budget *out);

/* The server's clock now (epoch ms), from the Date header of the client's last answer that
 * had one; never later than the true time there (Date is rounded down and stamped before we
 * read it). 0 before any answer carried a Date. */
int64_t http_server_now(const struct http *h);

/* Total requests sent by all clients since start (benchmarks and tests). */
unsigned long http_total_requests(void);

#endif
