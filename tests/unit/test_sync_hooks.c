/*
 * Webhook authenticity (sync/hooks.c) against the services' published test vectors: Atlassian's
 * X-Hub-Signature example, a Trello X-Trello-Webhook vector, Zoho's echoed channel token, and the
 * signed Fxiaoke callback; plus de-duplication of redelivered Jira webhooks.
 */
#include <stdlib.h>
#include <string.h>

#include "sync/hooks.h"
#include "tests/unit/testutil.h"

static enum cb_status verify(enum hook_kind k, const char *sig, const char *body,
                             const char *secret, const char *url, struct strbuf *err)
{
    struct hook_delivery d = {sig, body, strlen(body), url};
    return hooks_verify(k, &d, secret, err);
}

static void test_jira_vector(void **state)
{
    (void)state;
    struct strbuf sig = STRBUF_INIT, err = STRBUF_INIT;
    hooks_sign_sha256("It's a Secret to Everybody", "Hello World!", 12, &sig);
    assert_string_equal(sig.buf,
                        "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9");
    assert_int_equal(
        verify(HOOK_JIRA, sig.buf, "Hello World!", "It's a Secret to Everybody", NULL, &err),
        CB_OK);
    /* one byte of body changed, another secret, no header: all refused, secret never shown */
    assert_int_equal(
        verify(HOOK_JIRA, sig.buf, "Hello World?", "It's a Secret to Everybody", NULL, &err),
        CB_ERR_AUTH);
    assert_int_equal(verify(HOOK_JIRA, sig.buf, "Hello World!", "another secret", NULL, &err),
                     CB_ERR_AUTH);
    assert_null(strstr(err.buf, "another secret"));
    assert_int_equal(
        verify(HOOK_JIRA, NULL, "Hello World!", "It's a Secret to Everybody", NULL, &err),
        CB_ERR_AUTH);
    assert_non_null(strstr(err.buf, "X-Hub-Signature"));
    strbuf_release(&sig);
    strbuf_release(&err);
}

static void test_trello_vector(void **state)
{
    (void)state;
    const char *body = "{\"action\":{\"type\":\"updateCard\"}}";
    const char *url = "https://sync.example.com/trello/hook";
    struct strbuf sig = STRBUF_INIT, err = STRBUF_INIT;
    hooks_sign_trello("test-app-secret", body, strlen(body), url, &sig);
    assert_string_equal(sig.buf, "SnI44Ex+ZOaMwucWR5/Etz5Wd6E=");
    assert_int_equal(verify(HOOK_TRELLO, sig.buf, body, "test-app-secret", url, &err), CB_OK);
    /* the callback URL is part of what is signed: a proxy's rewritten URL does not verify */
    assert_int_equal(verify(HOOK_TRELLO, sig.buf, body, "test-app-secret",
                            "http://sync.example.com/trello/hook", &err),
                     CB_ERR_AUTH);
    strbuf_release(&sig);
    strbuf_release(&err);
}

static void test_zoho_token_and_fxiaoke(void **state)
{
    (void)state;
    struct strbuf err = STRBUF_INIT, sig = STRBUF_INIT;
    const char *ok = "{\"channel_id\":\"1000\",\"token\":\"tok-123456\",\"module\":\"Cases\"}";
    const char *bad = "{\"channel_id\":\"1000\",\"token\":\"tok-654321\",\"module\":\"Cases\"}";
    assert_int_equal(verify(HOOK_ZOHO, NULL, ok, "tok-123456", NULL, &err), CB_OK);
    assert_int_equal(verify(HOOK_ZOHO, NULL, bad, "tok-123456", NULL, &err), CB_ERR_AUTH);
    assert_int_equal(verify(HOOK_ZOHO, NULL, "not json", "tok-123456", NULL, &err), CB_ERR_AUTH);
    const char *body = "{\"event\":\"update\",\"dataId\":\"65a1\"}";
    hooks_sign_sha256("fx-secret", body, strlen(body), &sig);
    assert_int_equal(verify(HOOK_FXIAOKE, sig.buf, body, "fx-secret", NULL, &err), CB_OK);
    assert_int_equal(verify(HOOK_FXIAOKE, sig.buf, body, "", NULL, &err), CB_ERR_AUTH);
    hooks_describe(HOOK_FXIAOKE, body, strlen(body), &sig);
    assert_string_equal(sig.buf, "update 65a1");
    strbuf_release(&sig);
    strbuf_release(&err);
}

static void test_kinds_and_dedup(void **state)
{
    (void)state;
    assert_int_equal(hooks_kind("jira"), HOOK_JIRA);
    assert_int_equal(hooks_kind("trello"), HOOK_TRELLO);
    assert_int_equal(hooks_kind("fake"), HOOK_NONE);
    struct hooks_dedup *d = hooks_dedup_new(2);
    assert_int_equal(hooks_dedup_seen(d, "a"), 0);
    assert_int_equal(hooks_dedup_seen(d, "a"), 1);
    assert_int_equal(hooks_dedup_seen(d, "b"), 0);
    assert_int_equal(hooks_dedup_seen(d, "c"), 0); /* "a" falls out of a ring of two */
    assert_int_equal(hooks_dedup_seen(d, "a"), 0);
    hooks_dedup_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jira_vector),
        cmocka_unit_test(test_trello_vector),
        cmocka_unit_test(test_zoho_token_and_fxiaoke),
        cmocka_unit_test(test_kinds_and_dedup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
