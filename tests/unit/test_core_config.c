/*
 * Tests for core/config: the shipped example etc/crmbridge.conf, syntax and semantic errors
 * (every problem reported at once with FILE:LINE), defaults, secrets (literal, env:, file:) and
 * their registration for log redaction, conf_require and conf_error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "tests/unit/testutil.h"

/* A valid skeleton that tests extend; its endpoint group "z" starts on line 2. */
#define SKELETON                                                                                   \
    "endpoints = {\n"                                                                              \
    "  z = { type = \"zoho\"; };\n"                                                                \
    "  j = { type = \"jira\"; };\n"                                                                \
    "};\n"                                                                                         \
    "pairs = ( { name = \"p\"; crm = { endpoint = \"z\"; }; tracker = { endpoint = \"j\"; }; } "   \
    ");\n"

struct fx {
    char *dir;
    struct strbuf err;
    struct config *cfg;
};

static int fx_setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    f->dir = tu_tmpdir();
    strbuf_init(&f->err, 0);
    log_clear_secrets();
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    config_free(f->cfg);
    strbuf_release(&f->err);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    log_clear_secrets();
    return 0;
}

/* 1-based number of the first line of text containing needle, 0 if none. */
static int line_containing(const char *text, const char *needle)
{
    const char *hit = strstr(text, needle);
    if (!hit)
        return 0;
    int line = 1;
    for (const char *p = text; p < hit; p++)
        line += *p == '\n';
    return line;
}

static void load_ok(struct fx *f, const char *text)
{
    if (config_load_string(text, "test.conf", &f->cfg, &f->err) != CB_OK)
        fail_msg("config rejected:\n%s", f->err.buf);
    assert_non_null(f->cfg);
}

static void load_fails(struct fx *f, const char *text)
{
    f->cfg = NULL;
    assert_int_equal(config_load_string(text, "test.conf", &f->cfg, &f->err), CB_ERR_CONFIG);
    assert_null(f->cfg);
    assert_true(f->err.len > 0);
}

struct want_err {
    const char *at; /* text on the offending line of the config, to find its number */
    const char *text;
};

/* err must hold exactly n lines, each "test.conf:LINE: ..." matching one entry of want. */
static void assert_errors(const struct strbuf *err, const char *conf, const struct want_err *want,
                          size_t n)
{
    size_t lines = 1;
    for (size_t i = 0; i < err->len; i++)
        lines += err->buf[i] == '\n';
    if (lines != n)
        fail_msg("want %zu error lines, got %zu:\n%s", n, lines, err->buf);
    for (size_t i = 0; i < n; i++) {
        int line = line_containing(conf, want[i].at);
        assert_true(line > 0);
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "test.conf:%d: ", line);
        int found = 0;
        for (const char *p = err->buf; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
            const char *eol = strchr(p, '\n');
            char *one = xstrndup(p, eol ? (size_t)(eol - p) : strlen(p));
            if (strncmp(one, prefix, strlen(prefix)) == 0 && strstr(one, want[i].text))
                found = 1;
            free(one);
        }
        if (!found)
            fail_msg("no error '%s...%s' in:\n%s", prefix, want[i].text, err->buf);
    }
}

/* ---- the shipped example ---- */

static void check_example(const struct config *cfg, const char *text, const char *file)
{
    assert_string_equal(cfg->state_dir, "/var/lib/crmbridge");
    assert_string_equal(cfg->log_level, "info");
    assert_int_equal(cfg->http_timeout_s, 30);
    assert_int_equal(cfg->n_endpoints, 2);

    const struct endpoint_conf *z = config_endpoint(cfg, "zoho_cn");
    assert_non_null(z);
    assert_string_equal(z->type, "zoho");
    assert_string_equal(conf_get(&z->g, "accounts_url"), "https://accounts.zoho.com.cn");
    assert_string_equal(conf_get(&z->g, "api_url"), "https://www.zohoapis.com.cn");
    assert_string_equal(conf_get(&z->g, "client_id"), "1000.X");
    assert_string_equal(conf_get(&z->g, "client_secret"), "env:ZOHO_CLIENT_SECRET");
    assert_string_equal(conf_get(&z->g, "refresh_token"), "file:/etc/crmbridge/zoho.token");
    assert_null(conf_get(&z->g, "type"));    /* held in ->type, not in the group */
    assert_null(conf_get(&z->g, "web_url")); /* optional keys are commented out */
    assert_null(conf_get(&z->g, "marker_field"));
    assert_string_equal(z->g.file, file);
    assert_int_equal(conf_find(&z->g, "accounts_url")->line,
                     line_containing(text, "accounts_url ="));

    const struct endpoint_conf *j = config_endpoint(cfg, "acme");
    assert_non_null(j);
    assert_string_equal(j->type, "jira");
    assert_string_equal(conf_get(&j->g, "api_url"), "https://acme.atlassian.net");
    assert_string_equal(conf_get(&j->g, "email"), "bot@acme.com");
    assert_string_equal(conf_get(&j->g, "api_token"), "env:JIRA_API_TOKEN");
    assert_null(conf_get(&j->g, "search_lag"));
    assert_null(config_endpoint(cfg, "nowhere"));

    assert_int_equal(cfg->n_pairs, 1);
    const struct pair_conf *p = config_pair(cfg, "feedback");
    assert_non_null(p);
    assert_null(config_pair(cfg, "other"));
    assert_string_equal(p->side[0].endpoint, "zoho_cn");
    assert_string_equal(conf_get(&p->side[0].g, "module"), "Cases");
    assert_null(conf_get(&p->side[0].g, "endpoint"));
    assert_string_equal(p->side[1].endpoint, "acme");
    assert_string_equal(conf_get(&p->side[1].g, "project"), "SUP");
    assert_string_equal(conf_get(&p->side[1].g, "issue_type"), "Task");
    assert_int_equal(p->interval_s, 60);
    assert_int_equal(p->overlap_s, -1); /* each side's own */
    assert_string_equal(p->create, "to_tracker");
    assert_null(p->mapping);
}

static void test_example_parses(void **state)
{
    struct fx *f = *state;
    char *text = tu_read_source("etc/crmbridge.conf");
    assert_non_null(text);
    load_ok(f, text);
    check_example(f->cfg, text, "test.conf");
    free(text);
}

static void test_example_file_and_borrowed_name(void **state)
{
    struct fx *f = *state;
    char *text = tu_read_source("etc/crmbridge.conf");
    assert_non_null(text);
    /* the caller's path string is gone before the config is used: groups must not borrow it */
    struct strbuf path = STRBUF_INIT;
    assert_int_equal(strbuf_addf(&path, "%s/crmbridge.conf", f->dir), CB_OK);
    assert_int_equal(tu_write_file(path.buf, text), 0);
    char *want_file = xstrdup(path.buf);
    assert_int_equal(config_load(path.buf, &f->cfg, &f->err), CB_OK);
    strbuf_release(&path);
    check_example(f->cfg, text, want_file);
    assert_string_equal(f->cfg->pairs[0].side[1].g.file, want_file);
    free(want_file);
    free(text);
}

/* ---- errors ---- */

static void test_syntax_error_has_file_and_line(void **state)
{
    struct fx *f = *state;
    load_fails(f, "state_dir = \"/tmp/x\";\n"
                  "endpoints = {\n"
                  "  z = { type = ; };\n"
                  "};\n");
    assert_int_equal(strncmp(f->err.buf, "test.conf:3: ", 13), 0);
    assert_true(strlen(f->err.buf) > 13); /* libconfig's reason follows */
    assert_null(strchr(f->err.buf, '\n'));

    /* a file reports its own path */
    strbuf_reset(&f->err);
    char path[512];
    snprintf(path, sizeof(path), "%s/bad.conf", f->dir);
    assert_int_equal(tu_write_file(path, "# comment\n\npairs = ( { name = ; } );\n"), 0);
    f->cfg = NULL;
    assert_int_equal(config_load(path, &f->cfg, &f->err), CB_ERR_CONFIG);
    assert_null(f->cfg);
    char prefix[600];
    snprintf(prefix, sizeof(prefix), "%s:3: ", path);
    if (strncmp(f->err.buf, prefix, strlen(prefix)) != 0)
        fail_msg("want '%s...', got '%s'", prefix, f->err.buf);
}

static void test_all_semantic_errors_at_once(void **state)
{
    struct fx *f = *state;
    static const char conf[] =
        "state_dir = \"/tmp/x\";\n"
        "colour = \"blue\";\n"
        "endpoints = {\n"
        "  z = { type = \"zoho\"; };\n"
        "  j = { type = \"jira\"; };\n"
        "};\n"
        "pairs = (\n"
        "  { crm = { endpoint = \"z\"; }; tracker = { endpoint = \"j\"; }; },\n"
        "  { name = \"a\";\n"
        "    crm = { endpoint = \"nowhere\"; };\n"
        "    tracker = { endpoint = \"j\"; };\n"
        "    interval = \"often\"; },\n"
        "  { name = \"b\"; crm = { endpoint = \"z\"; }; tracker = { endpoint = \"j\"; };\n"
        "    interval = 0; },\n"
        "  { name = \"a\"; crm = { endpoint = \"z\"; }; tracker = { endpoint = \"j\"; }; },\n"
        "  { name = \"c\";\n"
        "    tracker = { endpoint = \"j\"; }; }\n"
        ");\n";
    load_fails(f, conf);
    const struct want_err want[] = {
        {"colour", "unknown setting 'colour'"},
        {"{ crm =", "missing 'name'"},
        {"nowhere", "pair 'a': crm endpoint 'nowhere' is not defined in 'endpoints'"},
        {"often", "'interval' must be an integer"},
        {"interval = 0", "'interval' must be between 1 and 86400"},
        {"{ name = \"a\"; crm", "duplicate pair name 'a'"},
        {"{ name = \"c\"", "pair 'c' needs a 'crm = { endpoint"},
    };
    assert_errors(&f->err, conf, want, sizeof(want) / sizeof(want[0]));
}

static void test_more_semantic_errors(void **state)
{
    struct fx *f = *state;
    static const char conf[] =
        "log_level = \"verbose\";\n"
        "http_timeout = 0;\n"
        "endpoints = {\n"
        "  z = { api_url = \"https://x\"; };\n"
        "  j = { type = \"jira\"; extra = { nested = 1; }; };\n"
        "  s = \"not a group\";\n"
        "};\n"
        "pairs = (\n"
        "  { name = \"p\"; crm = { endpoint = \"z\"; }; tracker = { endpoint = \"j\"; };\n"
        "    overlap = -1;\n"
        "    create = \"sideways\";\n"
        "    colour = 1; },\n"
        "  \"not a group\",\n"
        "  { name = \"q\"; crm = \"z\"; tracker = { }; }\n"
        ");\n";
    load_fails(f, conf);
    const struct want_err want[] = {
        {"verbose", "'log_level' must be one of error, warn, info, debug"},
        {"http_timeout", "'http_timeout' must be between 1 and 3600"},
        {"api_url", "missing 'type'"},
        {"extra", "'extra' must be a value, not a group"},
        {"  s = ", "endpoint 's' must be a group"},
        {"overlap", "'overlap' must be between 0 and 86400"},
        {"sideways", "pair 'p': 'create' must be one of to_tracker, to_crm, both, none"},
        {"colour", "unknown pair setting 'colour'"},
        {"\"not a group\",", "each entry of 'pairs' must be a group"},
        {"name = \"q\"", "pair 'q' needs a 'crm"},
        {"tracker = { }", "missing 'endpoint'"},
    };
    assert_errors(&f->err, conf, want, sizeof(want) / sizeof(want[0]));
}

static void test_missing_sections(void **state)
{
    struct fx *f = *state;
    load_fails(f, "state_dir = \"/tmp/x\";\n");
    assert_non_null(strstr(f->err.buf, "'endpoints' must be a group"));
    assert_non_null(strstr(f->err.buf, "'pairs' must be a list"));
    strbuf_reset(&f->err);
    load_fails(f, "");
    assert_non_null(strstr(f->err.buf, "test.conf:"));
}

static void test_missing_file(void **state)
{
    struct fx *f = *state;
    char path[512];
    snprintf(path, sizeof(path), "%s/absent.conf", f->dir);
    f->cfg = NULL;
    assert_int_equal(config_load(path, &f->cfg, &f->err), CB_ERR_CONFIG);
    assert_null(f->cfg);
    assert_non_null(strstr(f->err.buf, "cannot open config file '"));
    assert_non_null(strstr(f->err.buf, path));
    assert_non_null(strstr(f->err.buf, "No such file"));
}

/* ---- defaults and values ---- */

static void test_defaults(void **state)
{
    struct fx *f = *state;
    load_ok(f, SKELETON);
    assert_string_equal(f->cfg->state_dir, "/var/lib/crmbridge");
    assert_null(f->cfg->log_level);
    assert_int_equal(f->cfg->http_timeout_s, 30);
    assert_int_equal(f->cfg->max_body_bytes, 32L * 1024 * 1024);
    assert_int_equal(f->cfg->n_pairs, 1);
    const struct pair_conf *p = &f->cfg->pairs[0];
    assert_int_equal(p->interval_s, 60);
    assert_int_equal(p->overlap_s, -1); /* each side's own */
    assert_string_equal(p->create, "to_tracker");
    assert_null(p->mapping);
    assert_int_equal(p->line, 5);
}

static void test_values_kept_as_text(void **state)
{
    struct fx *f = *state;
    load_ok(f, "state_dir = \"/srv/cb\"; http_timeout = 5; max_body_bytes = 2048;\n"
               "endpoints = { z = { type = \"zoho\"; n = 5; big = 5000000000L; on = true;\n"
               "  ratio = 0.5; labels = [\"a\", \"b c\"]; mixed = (\"x\", 2); }; };\n"
               "pairs = ( { name = \"p\"; crm = { endpoint = \"z\"; module = \"Cases\"; };\n"
               "  tracker = { endpoint = \"z\"; }; interval = 300; overlap = 0;\n"
               "  create = \"both\"; mapping = \"/etc/m.conf\"; } );\n");
    assert_string_equal(f->cfg->state_dir, "/srv/cb");
    assert_int_equal(f->cfg->http_timeout_s, 5);
    assert_int_equal(f->cfg->max_body_bytes, 2048);
    const struct conf_group *g = &f->cfg->endpoints[0].g;
    assert_string_equal(conf_get(g, "n"), "5");
    assert_string_equal(conf_get(g, "big"), "5000000000");
    assert_string_equal(conf_get(g, "on"), "true");
    assert_string_equal(conf_get(g, "ratio"), "0.5");
    assert_string_equal(conf_get(g, "labels"), "a,b c");
    assert_string_equal(conf_get(g, "mixed"), "x,2");
    assert_int_equal(conf_find(g, "labels")->line, 3);
    const struct pair_conf *p = config_pair(f->cfg, "p");
    assert_int_equal(p->interval_s, 300);
    assert_int_equal(p->overlap_s, 0);
    assert_string_equal(p->create, "both");
    assert_string_equal(p->mapping, "/etc/m.conf");
}

/* ---- secrets ---- */

#define SECRET_CONF_HEAD                                                                           \
    "endpoints = {\n"            /* 1 */                                                           \
    "  z = { type = \"zoho\";\n" /* 2 */

static void load_with_secret(struct fx *f, const char *value)
{
    char text[2048];
    snprintf(text, sizeof(text),
             SECRET_CONF_HEAD "    client_secret = \"%s\"; };\n" /* 3 */
                              "};\n"
                              "pairs = ( { name = \"p\"; crm = { endpoint = \"z\"; };\n"
                              "  tracker = { endpoint = \"z\"; }; } );\n",
             value);
    load_ok(f, text);
}

static void assert_redacted(const char *secret)
{
    char line[256];
    snprintf(line, sizeof(line), "GET /x?q=1 answered for %s.", secret);
    char *clean = log_redact(line);
    assert_null(strstr(clean, secret));
    assert_string_equal(clean, "GET /x?q=1 answered for ***.");
    free(clean);
}

static void test_secret_literal(void **state)
{
    struct fx *f = *state;
    load_with_secret(f, "literal-secret-42");
    char *s = NULL;
    assert_int_equal(conf_secret(&f->cfg->endpoints[0].g, "client_secret", &s, &f->err), CB_OK);
    assert_string_equal(s, "literal-secret-42");
    assert_int_equal(f->err.len, 0);
    assert_redacted(s);
    free(s);
}

static void test_secret_env(void **state)
{
    struct fx *f = *state;
    load_with_secret(f, "env:CB_TEST_SECRET_VAR");
    const struct conf_group *g = &f->cfg->endpoints[0].g;

    setenv("CB_TEST_SECRET_VAR", "from-env-7f3a9", 1);
    char *s = NULL;
    assert_int_equal(conf_secret(g, "client_secret", &s, &f->err), CB_OK);
    assert_string_equal(s, "from-env-7f3a9");
    assert_redacted(s);
    free(s);

    unsetenv("CB_TEST_SECRET_VAR");
    s = NULL;
    assert_int_equal(conf_secret(g, "client_secret", &s, &f->err), CB_ERR_CONFIG);
    assert_null(s);
    assert_int_equal(strncmp(f->err.buf, "test.conf:3: ", 13), 0);
    assert_non_null(strstr(f->err.buf, "'client_secret'"));
    assert_non_null(strstr(f->err.buf, "'CB_TEST_SECRET_VAR' is not set"));
    assert_null(strstr(f->err.buf, "from-env-7f3a9"));

    strbuf_reset(&f->err);
    setenv("CB_TEST_SECRET_VAR", "", 1); /* empty counts as unset */
    assert_int_equal(conf_secret(g, "client_secret", &s, &f->err), CB_ERR_CONFIG);
    assert_null(s);
    assert_non_null(strstr(f->err.buf, "CB_TEST_SECRET_VAR"));
    unsetenv("CB_TEST_SECRET_VAR");
}

static void test_secret_file(void **state)
{
    struct fx *f = *state;
    char path[512], spec[600];
    snprintf(path, sizeof(path), "%s/token", f->dir);
    snprintf(spec, sizeof(spec), "file:%s", path);
    load_with_secret(f, spec);
    const struct conf_group *g = &f->cfg->endpoints[0].g;

    assert_int_equal(tu_write_file(path, "1000.file-secret-5c1e\n"), 0);
    char *s = NULL;
    assert_int_equal(conf_secret(g, "client_secret", &s, &f->err), CB_OK);
    assert_string_equal(s, "1000.file-secret-5c1e"); /* trailing newline stripped */
    assert_redacted(s);
    free(s);

    assert_int_equal(tu_write_file(path, "with inner space\r\n\n"), 0);
    assert_int_equal(conf_secret(g, "client_secret", &s, &f->err), CB_OK);
    assert_string_equal(s, "with inner space");
    free(s);

    s = NULL;
    assert_int_equal(tu_write_file(path, "\n"), 0);
    assert_int_equal(conf_secret(g, "client_secret", &s, &f->err), CB_ERR_CONFIG);
    assert_null(s);
    assert_int_equal(strncmp(f->err.buf, "test.conf:3: ", 13), 0);
    assert_non_null(strstr(f->err.buf, "empty"));

    strbuf_reset(&f->err);
    remove(path);
    assert_int_equal(conf_secret(g, "client_secret", &s, &f->err), CB_ERR_CONFIG);
    assert_null(s);
    assert_int_equal(strncmp(f->err.buf, "test.conf:3: ", 13), 0);
    assert_non_null(strstr(f->err.buf, "cannot read secret file"));
    assert_non_null(strstr(f->err.buf, path));

    /* a directory is not a secret either */
    strbuf_reset(&f->err);
    config_free(f->cfg);
    f->cfg = NULL;
    snprintf(spec, sizeof(spec), "file:%s", f->dir);
    load_with_secret(f, spec);
    assert_int_equal(conf_secret(&f->cfg->endpoints[0].g, "client_secret", &s, &f->err),
                     CB_ERR_CONFIG);
    assert_null(s);
    assert_int_equal(strncmp(f->err.buf, "test.conf:3: ", 13), 0);
    assert_non_null(strstr(f->err.buf, "cannot read secret file"));
}

static void test_secret_missing_key(void **state)
{
    struct fx *f = *state;
    load_ok(f, SKELETON);
    char *s = NULL;
    assert_int_equal(conf_secret(&f->cfg->endpoints[0].g, "api_token", &s, &f->err), CB_ERR_CONFIG);
    assert_null(s);
    assert_string_equal(f->err.buf, "test.conf:2: missing 'api_token'\n");
}

/* ---- helpers for connectors ---- */

static void test_conf_require_and_error(void **state)
{
    struct fx *f = *state;
    load_ok(
        f,
        "endpoints = {\n"
        "  j = { type = \"jira\";\n"
        "    api_url = \"https://acme.atlassian.net\";\n"
        "    email = \"bot@acme.com\"; };\n"
        "};\n"
        "pairs = ( { name = \"p\"; crm = { endpoint = \"j\"; }; tracker = { endpoint = \"j\"; }; } "
        ");\n");
    const struct conf_group *g = &config_endpoint(f->cfg, "j")->g;
    static const char *const all_there[] = {"api_url", "email", NULL};
    assert_int_equal(conf_require(g, all_there, "endpoint 'j'", &f->err), 0);
    assert_int_equal(f->err.len, 0);

    static const char *const needed[] = {"api_url", "email", "api_token", "project", NULL};
    assert_int_equal(conf_require(g, needed, "endpoint 'j'", &f->err), 2);
    assert_string_equal(f->err.buf, "test.conf:2: endpoint 'j' is missing 'api_token'\n"
                                    "test.conf:2: endpoint 'j' is missing 'project'\n");

    strbuf_reset(&f->err);
    conf_error(g, "email", &f->err, "'%s' must be an address", "email");
    conf_error(g, "absent", &f->err, "falls back to the group");
    conf_error(g, NULL, &f->err, "group %d", 1);
    assert_string_equal(f->err.buf, "test.conf:4: 'email' must be an address\n"
                                    "test.conf:2: falls back to the group\n"
                                    "test.conf:2: group 1\n");
}

/* The daemon's keys: a top-level interval is every pair's default; webhooks is a key/value group. */
static void test_daemon_keys(void **state)
{
    struct fx *f = *state;
    load_ok(f, "interval = 300; log_format = \"json\";\n"
               "webhooks = { listen = \"127.0.0.1:8787\"; secret = \"env:HOOK\"; };\n" SKELETON);
    assert_int_equal(f->cfg->interval_s, 300);
    assert_int_equal(f->cfg->pairs[0].interval_s, 300);
    assert_string_equal(f->cfg->log_format, "json");
    assert_string_equal(conf_get(&f->cfg->webhooks, "listen"), "127.0.0.1:8787");
    config_free(f->cfg);
    f->cfg = NULL;
    load_fails(f, "log_format = \"xml\"; webhooks = 3;\n" SKELETON);
    assert_non_null(strstr(f->err.buf, "test.conf:1: 'log_format' must be \"text\" or \"json\""));
    assert_non_null(strstr(f->err.buf, "'webhooks' must be a group"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_example_parses),
        T(test_example_file_and_borrowed_name),
        T(test_syntax_error_has_file_and_line),
        T(test_all_semantic_errors_at_once),
        T(test_more_semantic_errors),
        T(test_missing_sections),
        T(test_missing_file),
        T(test_defaults),
        T(test_values_kept_as_text),
        T(test_secret_literal),
        T(test_secret_env),
        T(test_secret_file),
        T(test_secret_missing_key),
        T(test_conf_require_and_error),
        T(test_daemon_keys),
    };
#undef T
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
