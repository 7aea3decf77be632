/*
 * Webhook authenticity and de-duplication (see hooks.h). Signatures are computed with OpenSSL
 * over the raw body and compared with CRYPTO_memcmp so timing says nothing about the secret.
 * It does not decide what a hint triggers: the daemon wakes the pairs of the endpoint.
 */
#include "sync/hooks.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

enum hook_kind hooks_kind(const char *type)
{
    static const char *const names[] = {"jira", "trello", "zoho", "fxiaoke", NULL};
    for (int i = 0; type && names[i]; i++)
        if (!strcmp(type, names[i]))
            return (enum hook_kind)i;
    return HOOK_NONE;
}

const char *hooks_signature_header(enum hook_kind kind)
{
    switch (kind) {
    case HOOK_JIRA:
        return "X-Hub-Signature";
    case HOOK_TRELLO:
        return "X-Trello-Webhook";
    case HOOK_FXIAOKE:
        return "X-Crmbridge-Signature";
    default:
        return NULL;
    }
}

void hooks_sign_sha256(const char *secret, const char *body, size_t len, struct strbuf *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac, &n);
    strbuf_reset(out);
    (void)strbuf_adds(out, "sha256=");
    for (unsigned int i = 0; i < n; i++)
        (void)strbuf_addf(out, "%02x", mac[i]);
}

void hooks_sign_trello(const char *secret, const char *body, size_t len, const char *callback_url,
                       struct strbuf *out)
{
    struct strbuf msg = STRBUF_INIT;
    (void)strbuf_add(&msg, body, len);
    (void)strbuf_adds(&msg, callback_url);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)msg.buf, msg.len, mac, &n);
    strbuf_release(&msg);
    unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    int m = EVP_EncodeBlock(b64, mac, (int)n);
    strbuf_reset(out);
    (void)strbuf_add(out, (const char *)b64, (size_t)m);
}

/* Constant-time equality of two strings of possibly different lengths. */
static int same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

/* Zoho echoes the channel token it was given at registration in the body. */
static int zoho_token_matches(const struct hook_delivery *d, const char *secret)
{
    cJSON *j = cJSON_ParseWithLengthOpts(d->body, d->body_len, NULL, 0);
    const char *tok = cJSON_GetStringValue(cJSON_GetObjectItem(j, "token"));
    int ok = tok && same(tok, secret);
    cJSON_Delete(j);
    return ok;
}

enum cb_status hooks_verify(enum hook_kind kind, const struct hook_delivery *d, const char *secret,
                            struct strbuf *err)
{
    if (!secret || !*secret) {
        strbuf_setf(err, "no webhook secret is configured");
        return CB_ERR_AUTH;
    }
    if (kind == HOOK_ZOHO) {
        if (zoho_token_matches(d, secret))
            return CB_OK;
        strbuf_setf(err, "channel token missing or wrong");
        return CB_ERR_AUTH;
    }
    const char *hdr = hooks_signature_header(kind);
    if (!hdr) {
        strbuf_setf(err, "no webhook kind");
        return CB_ERR_AUTH;
    }
    if (!d->signature) {
        strbuf_setf(err, "missing '%s' header", hdr);
        return CB_ERR_AUTH;
    }
    struct strbuf want = STRBUF_INIT;
    if (kind == HOOK_TRELLO)
        hooks_sign_trello(secret, d->body, d->body_len, d->callback_url ? d->callback_url : "",
                          &want);
    else
        hooks_sign_sha256(secret, d->body, d->body_len, &want);
    int ok = same(d->signature, want.buf);
    strbuf_release(&want);
    if (ok)
        return CB_OK;
    strbuf_setf(err, "'%s' does not match the body", hdr);
    return CB_ERR_AUTH;
}

static const char *str_at(const cJSON *j, const char *a, const char *b, const char *c)
{
    const cJSON *v = cJSON_GetObjectItem(j, a);
    if (b)
        v = cJSON_GetObjectItem(v, b);
    if (c)
        v = cJSON_GetObjectItem(v, c);
    return cJSON_GetStringValue(v);
}

void hooks_describe(enum hook_kind kind, const char *body, size_t len, struct strbuf *out)
{
    strbuf_reset(out);
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, NULL, 0);
    if (!j)
        return;
    const char *what = NULL, *which = NULL;
    if (kind == HOOK_JIRA) {
        what = str_at(j, "webhookEvent", NULL, NULL);
        which = str_at(j, "issue", "key", NULL);
    } else if (kind == HOOK_TRELLO) {
        what = str_at(j, "action", "type", NULL);
        const cJSON *card = cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(j, "action"), "data"), "card");
        which = card ? str_at(card, "id", NULL, NULL) : str_at(j, "model", "id", NULL);
    } else if (kind == HOOK_ZOHO) {
        what = str_at(j, "operation", NULL, NULL);
        which = str_at(j, "module", NULL, NULL);
    } else if (kind == HOOK_FXIAOKE) {
        what = str_at(j, "event", NULL, NULL);
        which = str_at(j, "dataId", NULL, NULL);
    }
    (void)strbuf_addf(out, "%s%s%s", what ? what : "delivery", which ? " " : "",
                      which ? which : "");
    cJSON_Delete(j);
}

struct hooks_dedup {
    char **ids;
    size_t cap, next;
};

struct hooks_dedup *hooks_dedup_new(size_t capacity)
{
    struct hooks_dedup *d = xcalloc(1, sizeof(*d));
    d->cap = capacity ? capacity : 1;
    d->ids = xcalloc(d->cap, sizeof(*d->ids));
    return d;
}

void hooks_dedup_free(struct hooks_dedup *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->cap; i++)
        free(d->ids[i]);
    free(d->ids);
    free(d);
}

int hooks_dedup_seen(struct hooks_dedup *d, const char *id)
{
    for (size_t i = 0; i < d->cap; i++)
        if (d->ids[i] && !strcmp(d->ids[i], id))
            return 1;
    free(d->ids[d->next]);
    d->ids[d->next] = xstrdup(id);
    d->next = (d->next + 1) % d->cap;
    return 0;
}
