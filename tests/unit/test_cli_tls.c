/*
 * TLS is verified by default: `crmbridge check` against a Jira simulator serving HTTPS with a
 * self-signed certificate made at test time (openssl req) is refused, names the problem and
 * leaks no secret; it is accepted once the endpoint's ca_file names that certificate, and
 * refused again when ca_file names another CA. A ca_file that cannot be read is a config error
 * with its line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "tests/unit/testutil.h"

struct tls {
    struct sim zoho, jira;
    char *dir;
    char conf[600], cert[600], key[600], other[600];
    char https[64];
};

static int make_cert(const char *dir, const char *name, char *cert, char *key, size_t n)
{
    snprintf(cert, n, "%s/%s.pem", dir, name);
    snprintf(key, n, "%s/%s.key", dir, name);
    char cmd[2400];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=crmbridge test %s' "
             "-addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' "
             "-addext 'basicConstraints=critical,CA:TRUE' -keyout '%s' -out '%s' >/dev/null 2>&1",
             name, key, cert);
    return system(cmd);
}

static void write_conf(struct tls *t, const char *ca_line)
{
    char text[4096];
    snprintf(
        text, sizeof(text),
        "state_dir = \"%s/state\";\n"
        "http_timeout = 5;\n"
        "endpoints = {\n"
        "  zoho = { type = \"zoho\"; accounts_url = \"%s\"; api_url = \"%s\";\n"
        "    client_id = \"1000.SIMCLIENT\"; client_secret = \"env:CB_TEST_ZOHO_SECRET\";\n"
        "    refresh_token = \"file:%s/zoho.token\"; };\n"
        "  jira = { type = \"jira\"; api_url = \"%s\"; email = \"bot@acme.test\";\n"
        "    api_token = \"env:CB_TEST_JIRA_TOKEN\"; search_lag = 0;\n"
        "    %s };\n"
        "};\n"
        "pairs = ( { name = \"feedback\";\n"
        "  crm = { endpoint = \"zoho\"; module = \"Cases\"; };\n"
        "  tracker = { endpoint = \"jira\"; project = \"SUP\"; issue_type = \"Task\"; }; } );\n",
        t->dir, t->zoho.base, t->zoho.base, t->dir, t->https, ca_line ? ca_line : "");
    assert_int_equal(tu_write_file(t->conf, text), 0);
}

static int setup(void **state)
{
    struct tls *t = calloc(1, sizeof(*t));
    t->dir = tu_tmpdir();
    char other_key[600];
    if (make_cert(t->dir, "sim", t->cert, t->key, sizeof(t->cert)) != 0 ||
        make_cert(t->dir, "other", t->other, other_key, sizeof(t->other)) != 0) {
        fprintf(stderr, "cannot make certificates with openssl\n");
        return -1;
    }
    assert_int_equal(sim_start(&t->zoho, "zoho", NULL), 0);
    assert_int_equal(sim_start(&t->jira, "jira", "--tls-cert", t->cert, "--tls-key", t->key, NULL),
                     0);
    snprintf(t->https, sizeof(t->https), "https://127.0.0.1:%d", t->jira.port);
    char tok[700];
    snprintf(tok, sizeof(tok), "%s/zoho.token", t->dir);
    assert_int_equal(tu_write_file(tok, "1000.sim-refresh-token\n"), 0);
    setenv("CB_TEST_ZOHO_SECRET", "sim-client-secret", 1);
    setenv("CB_TEST_JIRA_TOKEN", "sim-jira-token", 1);
    snprintf(t->conf, sizeof(t->conf), "%s/crmbridge.conf", t->dir);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct tls *t = *state;
    sim_stop(&t->zoho);
    sim_stop(&t->jira);
    tu_rmrf(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

static int check(struct tls *t, char **out)
{
    return tu_run_crmbridge(out, "-c", t->conf, "check", (char *)NULL);
}

static void test_self_signed_refused_by_default(void **state)
{
    struct tls *t = *state;
    write_conf(t, NULL);
    char *out = NULL;
    int rc = check(t, &out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "jira"));
    /* the reason is the certificate, said as such */
    assert_true(strstr(out, "certificate") || strstr(out, "SSL") || strstr(out, "TLS"));
    assert_null(strstr(out, "sim-jira-token"));
    free(out);
}

static void test_accepted_when_ca_file_names_the_ca(void **state)
{
    struct tls *t = *state;
    char line[700];
    snprintf(line, sizeof(line), "ca_file = \"%s\";", t->cert);
    write_conf(t, line);
    char *out = NULL;
    int rc = check(t, &out);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    free(out);
}

static void test_other_ca_still_refused(void **state)
{
    struct tls *t = *state;
    char line[700];
    snprintf(line, sizeof(line), "ca_file = \"%s\";", t->other);
    write_conf(t, line);
    char *out = NULL;
    assert_int_not_equal(check(t, &out), 0);
    assert_true(strstr(out, "certificate") || strstr(out, "SSL") || strstr(out, "TLS"));
    free(out);
}

static void test_unreadable_ca_file_is_a_config_error(void **state)
{
    struct tls *t = *state;
    char line[700];
    snprintf(line, sizeof(line), "ca_file = \"%s/missing.pem\";", t->dir);
    write_conf(t, line);
    char *out = NULL;
    assert_int_equal(check(t, &out), 2);
    assert_non_null(strstr(out, "crmbridge.conf:9:"));
    assert_non_null(strstr(out, "ca_file"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_signed_refused_by_default),
        cmocka_unit_test(test_accepted_when_ca_file_names_the_ca),
        cmocka_unit_test(test_other_ca_still_refused),
        cmocka_unit_test(test_unreadable_ca_file_is_a_config_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
