/*
 * libFuzzer target for webhook deliveries (sync/hooks.h): the bytes a stranger can send to the
 * daemon's listener. The first byte picks the delivery kind; the rest is split at the first NUL
 * into a signature header value and the body. Each input is verified (it must be refused unless
 * the signature really matches), described for the log, and its signature id remembered.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sync/hooks.h"

static const char SECRET[] = "fuzz-secret";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum hook_kind kind = (enum hook_kind)(data[0] % 4);
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    const char *nul = memchr(rest, 0, n);
    char *sig = nul ? strndup(rest, (size_t)(nul - rest)) : NULL;
    const char *body = nul ? nul + 1 : rest;
    size_t body_len = nul ? n - (size_t)(nul + 1 - rest) : n;

    struct hook_delivery d = {sig, body, body_len, "https://hooks.example.com/hooks/board"};
    struct strbuf err = STRBUF_INIT, out = STRBUF_INIT;
    enum cb_status st = hooks_verify(kind, &d, SECRET, &err);
    if (st == CB_OK && kind != HOOK_ZOHO) {
        /* accepted: the signature must be the real one */
        if (kind == HOOK_TRELLO)
            hooks_sign_trello(SECRET, body, body_len, d.callback_url, &out);
        else
            hooks_sign_sha256(SECRET, body, body_len, &out);
        if (!sig || strcmp(sig, out.buf) != 0)
            abort();
    }
    if (err.len && strstr(err.buf, SECRET))
        abort(); /* never the secret in a message */
    hooks_describe(kind, body, body_len, &out);
    struct hooks_dedup *dd = hooks_dedup_new(4);
    if (sig) {
        (void)hooks_dedup_seen(dd, sig);
        if (!hooks_dedup_seen(dd, sig))
            abort(); /* the same id twice is a repeat */
    }
    hooks_dedup_free(dd);
    strbuf_release(&err);
    strbuf_release(&out);
    free(sig);
    return 0;
}
