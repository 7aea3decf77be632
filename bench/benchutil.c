/*
 * Benchmark plumbing (see benchutil.h): simulators, the config and the open pair, request
 * counting from the simulators' logs, peak RSS and JSON output. It measures nothing itself and
 * decides no figure; each bench_*.c program does that.
 */
#include "bench/benchutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/strbuf.h"

/* The Zoho org's edition: Enterprise, 20 API calls in flight at once (the simulator refuses
 * more with 429, as Zoho does; the client keeps to it through its endpoint's concurrency). */
#define ZOHO_CONCURRENCY 20

static const char conf_fmt[] =
    "state_dir = \"%s\";\n"
    "endpoints = {\n"
    "  zoho = { type = \"zoho\"; accounts_url = \"%s\"; api_url = \"%s\";\n"
    "    client_id = \"1000.SIMCLIENT\"; client_secret = \"env:CB_BENCH_ZOHO_SECRET\";\n"
    "    refresh_token = \"file:%s/zoho.token\"; concurrency = %d; };\n"
    "  %s\n"
    "};\n"
    "pairs = ( { name = \"" BENCH_PAIR "\";\n"
    "  crm = { endpoint = \"zoho\"; module = \"Cases\"; };\n"
    "  tracker = %s;\n"
    "  interval = %d; } );\n";

/* The tracker's endpoint and pair side in the config (Jira project SUP, or a fresh board). */
static void tracker_conf(struct bench_env *e, struct strbuf *ep, struct strbuf *side)
{
    if (!e->trello) {
        (void)strbuf_addf(ep,
                          "jira = { type = \"jira\"; api_url = \"%s\"; email = \"bot@acme.test\";\n"
                          "    api_token = \"env:CB_BENCH_JIRA_TOKEN\"; search_lag = 0; };",
                          e->sim[1].base);
        (void)strbuf_adds(side,
                          "{ endpoint = \"jira\"; project = \"SUP\"; issue_type = \"Task\"; }");
        return;
    }
    cJSON *c = sim_ctl(&e->sim[1], "GET", "/_sim/config", NULL);
    (void)strbuf_addf(ep,
                      "board = { type = \"trello\"; api_url = \"%s\"; key = \"%s\";%s\n"
                      "    token = \"env:CB_BENCH_TRELLO_TOKEN\"; };",
                      e->sim[1].base, cJSON_GetStringValue(cJSON_GetObjectItem(c, "key")),
                      e->raised ? " token_rate = 100000; key_rate = 100000;" : "");
    setenv("CB_BENCH_TRELLO_TOKEN", cJSON_GetStringValue(cJSON_GetObjectItem(c, "token")), 1);
    cJSON_Delete(c);
    if (!e->board[0]) {
        c = sim_ctl(&e->sim[1], "POST", "/_sim/seed",
                    "{\"new_board\":{\"name\":\"Bench board\",\"lists\":[\"Inbox\",\"Done\"]}}");
        snprintf(e->board, sizeof(e->board), "%s",
                 cJSON_GetStringValue(cJSON_GetObjectItem(c, "board")));
        cJSON_Delete(c);
    }
    (void)strbuf_addf(side, "{ endpoint = \"board\"; board = \"%s\"; list = \"Inbox\"; }",
                      e->board);
}

static int write_conf(struct bench_env *e)
{
    char path[700], text[4096];
    snprintf(path, sizeof(path), "%s/zoho.token", e->dir);
    if (tu_write_file(path, "1000.sim-refresh-token\n") != 0)
        return -1;
    snprintf(e->state_dir, sizeof(e->state_dir), "%s/state", e->dir);
    snprintf(e->conf_path, sizeof(e->conf_path), "%s/crmbridge.conf", e->dir);
    struct strbuf ep = STRBUF_INIT, side = STRBUF_INIT;
    tracker_conf(e, &ep, &side);
    snprintf(text, sizeof(text), conf_fmt, e->state_dir, e->sim[0].base, e->sim[0].base, e->dir,
             ZOHO_CONCURRENCY, ep.buf, side.buf, e->interval_s);
    strbuf_release(&ep);
    strbuf_release(&side);
    return tu_write_file(e->conf_path, text);
}

#define TRELLO_WINDOW_MS 10000 /* the Trello simulator's rate-limit window */

/* The tracker simulator's request limits: far above what the benchmarks need while e->raised,
 * else the simulator's defaults (the real service's). */
static void set_limits(struct bench_env *e)
{
    int up = e->raised;
    if (e->trello)
        cJSON_Delete(sim_ctl(&e->sim[1], "POST", "/_sim/config",
                             "{\"token_limit\":%d,\"key_limit\":%d}", up ? 100000 : 100,
                             up ? 100000 : 300));
    else
        cJSON_Delete(sim_ctl(&e->sim[1], "POST", "/_sim/config",
                             "{\"rate\":{\"GET\":%d,\"POST\":%d,\"PUT\":%d}}", up ? 100000 : 100,
                             up ? 100000 : 100, up ? 100000 : 50));
}

int bench_env_start(struct bench_env *e, int interval_s)
{
    return bench_env_start_tracker(e, interval_s, "jira");
}

int bench_env_start_tracker(struct bench_env *e, int interval_s, const char *tracker)
{
    memset(e, 0, sizeof(*e));
    e->trello = !strcmp(tracker, "trello");
    e->interval_s = interval_s;
    e->raised = 1;
    e->dir = tu_tmpdir();
    if (!e->dir) {
        fprintf(stderr, "bench: cannot make a scratch directory under /tmp\n");
        return -1;
    }
    setenv("CB_BENCH_ZOHO_SECRET", "sim-client-secret", 1);
    setenv("CB_BENCH_JIRA_TOKEN", "sim-jira-token", 1);
    if (sim_start(&e->sim[0], "zoho", NULL) != 0 || sim_start(&e->sim[1], tracker, NULL) != 0 ||
        write_conf(e) != 0) {
        fprintf(stderr, "bench: cannot start the simulators in '%s'\n", e->dir);
        bench_env_stop(e);
        return -1;
    }
    cJSON_Delete(
        sim_ctl(&e->sim[0], "POST", "/_sim/config", "{\"concurrency\":%d}", ZOHO_CONCURRENCY));
    set_limits(e);
    return 0;
}

int bench_real_limits(struct bench_env *e)
{
    e->raised = 0;
    set_limits(e);
    if (e->trello) /* the setup's requests leave the simulator's rolling window */
        usleep(TRELLO_WINDOW_MS * 1000);
    return write_conf(e);
}

int bench_env_open(struct bench_env *e)
{
    struct strbuf err = STRBUF_INIT;
    int rc = -1;
    if (config_load(e->conf_path, &e->cfg, &err) != CB_OK)
        fprintf(stderr, "bench: cannot load '%s': %s\n", e->conf_path, err.buf);
    else if (cache_open(e->state_dir, &e->cache, &err) != CB_OK)
        fprintf(stderr, "bench: cannot open the cache '%s': %s\n", e->state_dir, err.buf);
    else if (sync_pair_open(e->cfg, &e->cfg->pairs[0], e->cache, &e->pair, &err) != CB_OK)
        fprintf(stderr, "bench: cannot open pair '%s': %s\n", BENCH_PAIR, err.buf);
    else
        rc = 0;
    strbuf_release(&err);
    if (rc != 0)
        bench_env_close(e);
    return rc;
}

void bench_env_close(struct bench_env *e)
{
    sync_pair_close(e->pair);
    e->pair = NULL;
    if (e->cache)
        cache_close(e->cache);
    e->cache = NULL;
    config_free(e->cfg);
    e->cfg = NULL;
}

void bench_env_stop(struct bench_env *e)
{
    bench_env_close(e);
    for (int s = 0; s < 2; s++)
        sim_stop(&e->sim[s]);
    if (e->dir)
        tu_rmrf(e->dir);
    free(e->dir);
    e->dir = NULL;
}

int bench_cycle(struct bench_env *e, struct sync_report *rep)
{
    struct strbuf err = STRBUF_INIT;
    sync_report_init(rep);
    enum cb_status st = sync_pair_cycle(e->pair, rep, &err);
    if (st != CB_OK)
        fprintf(stderr, "bench: cannot run a cycle: %s\n", err.len ? err.buf : cb_status_str(st));
    if (rep->failed || rep->postponed)
        fprintf(stderr, "bench: records left for a later cycle:\n%s", rep->problems.buf);
    strbuf_release(&err);
    return st == CB_OK ? 0 : -1;
}

void bench_advance_clocks(struct bench_env *e, int64_t ms)
{
    for (int s = 0; s < 2; s++)
        cJSON_Delete(
            sim_ctl(&e->sim[s], "POST", "/_sim/clock", "{\"advance_ms\":%lld}", (long long)ms));
}

void bench_clear_logs(struct bench_env *e)
{
    for (int s = 0; s < 2; s++)
        sim_clear_log(&e->sim[s]);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static const char *zoho_kind(const char *m, const char *path, const char *query)
{
    if (!strncmp(path, "/oauth/", 7))
        return "auth";
    if (strstr(path, "/settings/"))
        return "meta";
    if (ends_with(path, "/coql"))
        return "search";
    if (ends_with(path, "/upsert") || !strcmp(m, "POST"))
        return "create";
    if (strcmp(m, "GET"))
        return "write";
    int slashes = 0; /* "/crm/v8/Cases" lists, "/crm/v8/Cases/ID" reads one */
    for (const char *c = path; *c; c++)
        slashes += *c == '/';
    return strstr(query, "ids=") || slashes > 3 ? "read" : "list";
}

static const char *trello_kind(const char *m, const char *path)
{
    if (!strncmp(path, "/1/boards/", 10))
        return "list";
    if (!strcmp(path, "/1/cards"))
        return "create";
    if (!strncmp(path, "/1/cards/", 9))
        return strcmp(m, "GET") ? "write" : "readback";
    return "meta";
}

static const char *jira_kind(const char *m, const char *path)
{
    static const char issue[] = "/rest/api/3/issue";
    if (!strncmp(path, "/rest/api/3/search", 18))
        return "list";
    if (!strcmp(path, "/rest/api/3/issue/bulkfetch"))
        return "read";
    if (!strcmp(path, issue) || !strcmp(path, "/rest/api/3/issue/bulk"))
        return "create";
    if (ends_with(path, "/remotelink"))
        return "link";
    if (ends_with(path, "/transitions"))
        return strcmp(m, "GET") ? "transition" : "transition_get";
    if (!strncmp(path, issue, sizeof(issue) - 1) && path[sizeof(issue) - 1] == '/')
        return strcmp(m, "GET") ? "write" : "readback";
    return "meta";
}

static void bump(cJSON *o, const char *name)
{
    cJSON *n = cJSON_GetObjectItemCaseSensitive(o, name);
    if (n)
        cJSON_SetNumberValue(n, n->valuedouble + 1);
    else
        cJSON_AddNumberToObject(o, name, 1);
}

cJSON *bench_count_requests(const struct sim *s, enum side side)
{
    int trello = !strcmp(s->name, "trello");
    cJSON *log = sim_ctl(s, "GET", "/_sim/log", NULL);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "total", 0);
    const cJSON *en;
    cJSON_ArrayForEach(en, log)
    {
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(en, "method"));
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(en, "path"));
        const char *q = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(en, "query"));
        if (!m || !p)
            continue;
        bump(out, "total");
        if (side == SIDE_CRM)
            bump(out, zoho_kind(m, p, q ? q : ""));
        else
            bump(out, trello ? trello_kind(m, p) : jira_kind(m, p));
    }
    cJSON_Delete(log);
    return out;
}

int bench_num(const cJSON *o, const char *name)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(n) ? (int)n->valuedouble : 0;
}

long bench_status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n) && line[n] == ':')
            kib = atol(line + n + 1);
    if (f)
        fclose(f);
    return kib;
}

int64_t bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double bench_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

int bench_write_json(const char *path, const cJSON *o)
{
    char *text = cJSON_Print(o);
    FILE *f = fopen(path, "w");
    int rc = -1;
    if (f && text) {
        fputs(text, f);
        fputc('\n', f);
        rc = fclose(f) == 0 ? 0 : -1;
    } else if (f) {
        fclose(f);
    }
    if (rc != 0)
        fprintf(stderr, "bench: cannot write '%s'\n", path);
    cJSON_free(text);
    return rc;
}
