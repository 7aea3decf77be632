/*
 * Secrets never leak: the crmbridge binary runs against the Zoho CRM and Jira simulators with
 * known credentials and debug logging, through a good cycle, a cycle whose endpoints reject it
 * (401, a refused refresh token), a crash and every read-only command; then every byte it
 * printed and every file it left in its state directory (the LMDB files included) is searched
 * for each secret, as is and base64-encoded (HTTP Basic auth). The OAuth access tokens the
 * simulator minted are searched too: the cache keeps them only sealed (AES-256-GCM).
 */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/strbuf.h"
#include "tests/unit/e2e.h"

#define JIRA_BASIC "Ym90QGFjbWUudGVzdDpzaW0tamlyYS10b2tlbg==" /* bot@acme.test:sim-jira-token */

struct haystack {
    struct strbuf all; /* every output and file, concatenated (binary) */
    int files;
};

static void add_output(struct haystack *h, char *out)
{
    (void)strbuf_adds(&h->all, out ? out : "");
    free(out);
}

static void add_file(struct haystack *h, const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        (void)strbuf_add(&h->all, buf, n);
    fclose(f);
    h->files++;
}

static void add_tree(struct haystack *h, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        if (S_ISDIR(st.st_mode))
            add_tree(h, path);
        else if (strcmp(de->d_name, "secret.key")) /* the sealing key itself: checked apart */
            add_file(h, path);
    }
    closedir(d);
}

static void assert_absent(const struct haystack *h, const char *secret)
{
    const void *hit = memmem(h->all.buf, h->all.len, secret, strlen(secret));
    if (hit) {
        size_t at = (size_t)((const char *)hit - h->all.buf);
        fprintf(stderr, "secret '%.6s...' found at byte %zu: ...%.80s...\n", secret, at,
                h->all.buf + (at > 40 ? at - 40 : 0));
    }
    assert_null(hit);
}

static int run(struct e2e *e, struct haystack *h, const char *a1, const char *a2, const char *a3)
{
    char *out = NULL;
    int rc = tu_run_crmbridge(&out, "-c", e->conf, "-v", a1, a2, a3, (char *)NULL);
    add_output(h, out);
    return rc;
}

/* Every access token the simulator handed out (so that we can look for them). */
static cJSON *minted_tokens(struct e2e *e)
{
    cJSON *r = sim_call(&e->zoho, "GET", "/_sim/tokens", NULL, NULL);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(r, "access_tokens")) > 0);
    return r;
}

static void test_no_secret_in_output_logs_or_cache(void **state)
{
    struct e2e *e = *state;
    struct haystack h = {STRBUF_INIT, 0};
    strbuf_init(&h.all, 256u << 20);
    free(e2e_seed_case(e, "{\"Subject\":\"Export to PDF fails\",\"Description\":\"since 2.3\"}"));
    free(e2e_seed_case(e, "{\"Subject\":\"Login loops\",\"Priority\":\"High\"}"));
    assert_int_equal(run(e, &h, "sync", "--once", NULL), 0);
    assert_int_equal(run(e, &h, "check", NULL, NULL), 0);
    run(e, &h, "status", NULL, NULL);
    run(e, &h, "status", "--json", NULL);
    run(e, &h, "links", "list", NULL);
    run(e, &h, "conflicts", "list", NULL);

    /* rejected: Jira answers 401 to everything, then Zoho refuses the refresh token */
    cJSON_Delete(sim_ctl(&e->jira, "POST", "/_sim/faults",
                         "{\"rules\":[{\"kind\":\"status\",\"status\":401,\"count\":-1}]}"));
    free(e2e_seed_case(e, "{\"Subject\":\"Third case\"}"));
    assert_int_not_equal(run(e, &h, "sync", "--once", NULL), 0);
    assert_int_not_equal(run(e, &h, "check", NULL, NULL), 0);
    cJSON_Delete(sim_ctl(&e->jira, "DELETE", "/_sim/faults", NULL));
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/expire_tokens", "{}"));
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/config", "{\"refresh_token\":\"1000.other\"}"));
    assert_int_not_equal(run(e, &h, "sync", "--once", NULL), 0);
    run(e, &h, "status", "--json", NULL);
    cJSON_Delete(sim_ctl(&e->zoho, "POST", "/_sim/config",
                         "{\"refresh_token\":\"1000.sim-refresh-token\"}"));

    /* a crash in the middle of a cycle */
    setenv("CRMBRIDGE_CRASH_AFTER_COMMITS", "1", 1);
    free(e2e_seed_case(e, "{\"Subject\":\"Fourth case\"}"));
    run(e, &h, "sync", "--once", NULL);
    unsetenv("CRMBRIDGE_CRASH_AFTER_COMMITS");
    assert_int_equal(run(e, &h, "sync", "--once", NULL), 0);

    char dir[700];
    snprintf(dir, sizeof(dir), "%s/state", e->dir);
    add_tree(&h, dir);
    assert_true(h.files >= 2); /* the LMDB data and lock files at least */
    assert_true(h.all.len > 1000);
    /* the search does see what the cache keeps in clear: the records' base items */
    assert_non_null(memmem(h.all.buf, h.all.len, "Export to PDF fails", 19));

    assert_absent(&h, "sim-client-secret");
    assert_absent(&h, "1000.sim-refresh-token");
    assert_absent(&h, "sim-jira-token");
    assert_absent(&h, JIRA_BASIC);
    cJSON *toks = minted_tokens(e);
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(toks, "access_tokens"))
    {
        const char *tok = cJSON_GetStringValue(t);
        assert_absent(&h, tok);
        /* the part after "1000." alone must not show either */
        assert_absent(&h, strchr(tok, '.') + 1);
    }
    cJSON_Delete(toks);
    strbuf_release(&h.all);
}

/* The sealing key is private to the service user. */
static void test_secret_key_is_private(void **state)
{
    struct e2e *e = *state;
    free(e2e_seed_case(e, "{\"Subject\":\"Key check\"}"));
    assert_int_equal(e2e_sync_once(e), 0);
    char path[700];
    snprintf(path, sizeof(path), "%s/state/secret.key", e->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_secret_in_output_logs_or_cache, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_is_private, e2e_setup, e2e_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
