/*
 * Tests for core/log: redaction of registered secrets, credential query parameters, JSON members
 * and Authorization headers; the line format "TIMESTAMP level module: message"; level filtering.
 * Word boundaries: "key=" counts as a parameter only at the start or after ? & space " , so
 * "monkey=1" or "postcode=9" stay readable (a parameter never follows a letter in a URL or a log
 * line of ours, and redacting such words would hide useful data for no gain).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/strbuf.h"
#include "tests/unit/testutil.h"

static void assert_redacts(const char *in, const char *want)
{
    char *got = log_redact(in);
    if (strcmp(got, want) != 0)
        fail_msg("redact '%s':\n got '%s'\nwant '%s'", in, got, want);
    free(got);
}

static int reset_log(void **state)
{
    (void)state;
    log_clear_secrets();
    log_set_level(LOG_INFO);
    log_set_stream(NULL);
    unsetenv("CRMBRIDGE_FAKE_NOW_MS");
    return 0;
}

static void test_registered_secrets_anywhere(void **state)
{
    (void)state;
    log_add_secret("s3cr3t-VALUE");
    assert_redacts("s3cr3t-VALUE", "***");
    assert_redacts("token is s3cr3t-VALUE.", "token is ***.");
    assert_redacts("/path/s3cr3t-VALUEs3cr3t-VALUE/x", "/path/******/x");
    assert_redacts("xs3cr3t-VALUEx and s3cr3t-VALUE", "x***x and ***");
    assert_redacts("almost s3cr3t-VALU here", "almost s3cr3t-VALU here");
    /* several secrets, one a prefix of another: the longer one must not leak its tail */
    log_add_secret("abcd1234");
    log_add_secret("abcd1234-and-more");
    assert_redacts("[abcd1234-and-more] [abcd1234]", "[***] [***]");
    log_add_secret("abcd1234"); /* registering twice changes nothing */
    assert_redacts("abcd1234", "***");
    log_clear_secrets();
    assert_redacts("s3cr3t-VALUE", "s3cr3t-VALUE");
}

static void test_short_secrets_ignored(void **state)
{
    (void)state;
    log_add_secret(NULL);
    log_add_secret("");
    log_add_secret("abc"); /* would blank every "abc" in every line */
    assert_redacts("abc abcabc", "abc abcabc");
    log_add_secret("abcd");
    assert_redacts("abc abcd", "abc ***");
}

static void test_query_parameters(void **state)
{
    (void)state;
    assert_redacts("GET /1/cards?key=K1&token=T2&fields=name",
                   "GET /1/cards?key=***&token=***&fields=name");
    assert_redacts("POST /oauth/v2/token?refresh_token=1000.abc&client_id=1000.X"
                   "&client_secret=xyz&grant_type=refresh_token",
                   "POST /oauth/v2/token?refresh_token=***&client_id=1000.X"
                   "&client_secret=***&grant_type=refresh_token");
    assert_redacts("access_token=AT1 next", "access_token=*** next");
    assert_redacts("url \"https://x/?access_token=AT1\" done",
                   "url \"https://x/?access_token=***\" done");
    assert_redacts("a,token=T1,b", "a,token=***");
    assert_redacts("one token=T1\nnext line", "one token=***\nnext line");
    assert_redacts("?code=xyz&state=1", "?code=***&state=1");
    assert_redacts("token=", "token=***");
}

static void test_parameter_lookalikes_kept(void **state)
{
    (void)state;
    assert_redacts("monkey=1", "monkey=1");
    assert_redacts("?monkey=1&donkey=2", "?monkey=1&donkey=2");
    assert_redacts("postcode=10115", "postcode=10115");
    assert_redacts("retoken=abc my_key=def", "retoken=abc my_key=def");
    assert_redacts("the key is shown", "the key is shown");
    assert_redacts("status=200 key: SUP-12", "status=200 key: SUP-12");
}

static void test_authorization_header(void **state)
{
    (void)state;
    assert_redacts("Authorization: Bearer eyJ.abc.def", "Authorization: ***");
    assert_redacts("authorization: Zoho-oauthtoken 1000.abc", "authorization: ***");
    assert_redacts("AUTHORIZATION: Basic Ym90OnB3", "AUTHORIZATION: ***");
    assert_redacts("> GET /x\r\nAuthorization: Basic Ym90OnB3\r\nAccept: */*\r\n",
                   "> GET /x\r\nAuthorization: ***\r\nAccept: */*\r\n");
    assert_redacts("Proxy-Authorization: Basic eA==", "Proxy-Authorization: ***");
}

static void test_json_members(void **state)
{
    (void)state;
    assert_redacts("{\"access_token\":\"1000.aa\",\"expires_in\":3600,\"api_domain\":\"x\"}",
                   "{\"access_token\":\"***\",\"expires_in\":3600,\"api_domain\":\"x\"}");
    assert_redacts("{\"refresh_token\" : \"1000.r\\\"q\", \"key\": \"SUP-12\"}",
                   "{\"refresh_token\" : \"***\", \"key\": \"SUP-12\"}");
    /* issue keys and error codes are not credentials */
    assert_redacts("{\"key\":\"SUP-12\",\"code\":\"INVALID_DATA\"}",
                   "{\"key\":\"SUP-12\",\"code\":\"INVALID_DATA\"}");
    /* a member name without a string value is left as it is */
    assert_redacts("{\"access_token\":null}", "{\"access_token\":null}");
    assert_redacts("{\"password\":\"unterminated", "{\"password\":\"***\"");
}

static void test_redact_edge_cases(void **state)
{
    (void)state;
    char *p = log_redact(NULL);
    assert_string_equal(p, "");
    free(p);
    assert_redacts("", "");
    assert_redacts("需求 'SUP-12' 已同步", "需求 'SUP-12' 已同步");
}

/* Runs fn with the log stream pointed at memory and returns what was written (caller frees). */
static char *capture(void (*fn)(void))
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    log_set_stream(f);
    fn();
    log_set_stream(NULL);
    fclose(f);
    return text;
}

static void write_each_level(void)
{
    log_write(LOG_ERROR, "sync", "cannot update issue '%s': http %d", "SUP-12", 429);
    log_write(LOG_WARN, "zoho", "slow answer");
    log_write(LOG_INFO, "cli", "pair '%s' done", "feedback");
    log_write(LOG_DEBUG, "http", "GET /x -> 200");
}

static void test_write_format_and_levels(void **state)
{
    (void)state;
    setenv("CRMBRIDGE_FAKE_NOW_MS", "1767348672345", 1); /* 2026-01-02T10:11:12.345Z */
    char *text = capture(write_each_level);
    assert_string_equal(text,
                        "2026-01-02T10:11:12Z error sync: cannot update issue 'SUP-12': http 429\n"
                        "2026-01-02T10:11:12Z warn zoho: slow answer\n"
                        "2026-01-02T10:11:12Z info cli: pair 'feedback' done\n");
    free(text);

    log_set_level(LOG_DEBUG);
    assert_int_equal(log_get_level(), LOG_DEBUG);
    text = capture(write_each_level);
    assert_non_null(strstr(text, "2026-01-02T10:11:12Z debug http: GET /x -> 200\n"));
    free(text);

    log_set_level(LOG_ERROR);
    text = capture(write_each_level);
    assert_string_equal(
        text, "2026-01-02T10:11:12Z error sync: cannot update issue 'SUP-12': http 429\n");
    free(text);
}

static void write_json_lines(void)
{
    log_set_format(LOG_FORMAT_JSON);
    log_write(LOG_WARN, "daemon", "pair \"%s\" failed:\n%s", "a", "GET /x?token=abcdef");
    log_set_format(LOG_FORMAT_TEXT);
}

static void test_json_lines(void **state)
{
    (void)state;
    setenv("CRMBRIDGE_FAKE_NOW_MS", "1767348672345", 1);
    char *text = capture(write_json_lines);
    assert_string_equal(text, "{\"ts\":\"2026-01-02T10:11:12Z\",\"level\":\"warn\",\"module\":"
                              "\"daemon\",\"msg\":\"pair \\\"a\\\" failed:\\u000aGET /x?token=***\"}\n");
    free(text);
}

static void write_with_secret(void)
{
    log_write(LOG_ERROR, "jira", "GET https://acme/x?token=%s with %s", "tok-987654", "pw-SECRET");
    log_write(LOG_INFO, "http", "Authorization: Basic %s", "Ym90OnB3");
}

static void test_write_redacts(void **state)
{
    (void)state;
    setenv("CRMBRIDGE_FAKE_NOW_MS", "0", 1);
    log_add_secret("pw-SECRET");
    char *text = capture(write_with_secret);
    assert_string_equal(text,
                        "1970-01-01T00:00:00Z error jira: GET https://acme/x?token=*** with ***\n"
                        "1970-01-01T00:00:00Z info http: Authorization: ***\n");
    free(text);
}

static void write_with_macros(void)
{
    log_info("via %s", "macro");
    log_debug("hidden at info");
}

static void test_write_real_clock_and_macros(void **state)
{
    (void)state;
    char *text = capture(write_with_macros);
    /* "YYYY-MM-DDTHH:MM:SSZ info crmbridge: via macro\n" with today's date */
    assert_int_equal(strlen(text), 20 + strlen(" info crmbridge: via macro\n"));
    assert_int_equal(text[4], '-');
    assert_int_equal(text[10], 'T');
    assert_int_equal(text[19], 'Z');
    assert_string_equal(text + 20, " info crmbridge: via macro\n");
    free(text);
}

static void test_level_parse(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("error"), LOG_ERROR);
    assert_int_equal(log_level_parse("warn"), LOG_WARN);
    assert_int_equal(log_level_parse("INFO"), LOG_INFO);
    assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
    assert_int_equal(log_level_parse("verbose"), -1);
    assert_int_equal(log_level_parse(""), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registered_secrets_anywhere, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_short_secrets_ignored, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_query_parameters, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_parameter_lookalikes_kept, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_authorization_header, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_json_members, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_redact_edge_cases, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_write_format_and_levels, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_write_redacts, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_write_real_clock_and_macros, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_level_parse, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_json_lines, reset_log, reset_log),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
