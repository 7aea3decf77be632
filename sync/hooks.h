/*
 * Webhook deliveries as hints: which kind of delivery an endpoint type sends, whether one is
 * authentic (HMAC signatures, channel tokens), and de-duplication of redelivered ones. No
 * sockets here: the daemon's listener (cli/listener.c) feeds raw bytes in and acts on the answer.
 */
#ifndef CB_HOOKS_H
#define CB_HOOKS_H

#include <stddef.h>

#include "core/status.h"
#include "core/strbuf.h"

enum hook_kind {
    HOOK_NONE = -1,
    HOOK_JIRA = 0, /* X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, body)> */
    HOOK_TRELLO,   /* X-Trello-Webhook: base64(HMAC-SHA1(app secret, body + callback URL)) */
    HOOK_ZOHO,     /* the channel token echoed in the JSON body's "token" member */
    HOOK_FXIAOKE,  /* X-Crmbridge-Signature: sha256=<hex HMAC-SHA256(secret, body)> */
};

/* The kind of delivery an endpoint of connector type `type` sends; HOOK_NONE when none. */
enum hook_kind hooks_kind(const char *type);
/* Name of the request header carrying kind's signature; NULL for Zoho (token in the body). */
const char *hooks_signature_header(enum hook_kind kind);

struct hook_delivery {
    const char *signature; /* the signature header's value; NULL when absent */
    const char *body;      /* raw bytes exactly as received */
    size_t body_len;
    const char *callback_url; /* Trello: the callback URL exactly as registered */
};

/* Checks that d is authentic for kind under secret (compared in constant time). CB_OK when it
 * is; CB_ERR_AUTH otherwise, with a reason in err that never contains the secret. */
enum cb_status hooks_verify(enum hook_kind kind, const struct hook_delivery *d, const char *secret,
                            struct strbuf *err) CB_WUR;

/* "sha256=<lower hex>" of HMAC-SHA256(secret, body), replacing out's contents. */
void hooks_sign_sha256(const char *secret, const char *body, size_t len, struct strbuf *out);
/* base64(HMAC-SHA1(secret, body + callback_url)), replacing out's contents. */
void hooks_sign_trello(const char *secret, const char *body, size_t len, const char *callback_url,
                       struct strbuf *out);

/* What a delivery is about, for log lines ("jira:issue_updated SUP-12"); best effort, replaces
 * out's contents, empty when the body cannot be read. */
void hooks_describe(enum hook_kind kind, const char *body, size_t len, struct strbuf *out);

/* The last `capacity` delivery ids seen (Jira's X-Atlassian-Webhook-Identifier is stable across
 * retries). Not thread-safe: one listener thread owns it. */
struct hooks_dedup;
struct hooks_dedup *hooks_dedup_new(size_t capacity);
void hooks_dedup_free(struct hooks_dedup *d);
/* Remembers id; returns 1 when it was already among the remembered ids, else 0. */
int hooks_dedup_seen(struct hooks_dedup *d, const char *id);

#endif
