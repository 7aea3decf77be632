/*
 * `crmbridge status`: per pair, what the cache knows — links, cursors and their age, the last
 * cycle's outcome with the reason for every skipped or failed record, open conflicts, pending
 * creates and the people with no user on one side. A pair is "ok" only when its last cycle ran
 * and left nothing skipped or failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/timeutil.h"

static size_t count_open_conflicts(struct cache_txn *t, const char *pair)
{
    struct conflict *cs = NULL;
    size_t n = 0;
    if (cache_conflict_list(t, pair, 1, &cs, &n) != CB_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        conflict_release(&cs[i]);
    free(cs);
    return n;
}

static size_t count_intents(struct cache_txn *t, const char *pair)
{
    struct intent *in = NULL;
    size_t n = 0;
    if (cache_intent_list(t, pair, &in, &n) != CB_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        intent_release(&in[i]);
    free(in);
    return n;
}

static cJSON *pair_status(struct cache_txn *t, const char *pair)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "pair", pair);
    cJSON_AddNumberToObject(o, "links", (double)cache_link_count(t, pair));
    cJSON *cur = cJSON_AddObjectToObject(o, "cursors");
    static const char *const names[2] = {"crm", "tracker"};
    for (int s = 0; s < 2; s++) {
        struct cursor cu;
        (void)cache_cursor_get(t, pair, s, &cu);
        int64_t ms = cu.ms;
        char iso[CBTIME_BUFSZ];
        cJSON *c = cJSON_AddObjectToObject(cur, names[s]);
        if (ms > 0)
            cJSON_AddStringToObject(c, "at", cbtime_format_iso(ms, 0, iso));
        cJSON_AddNumberToObject(c, "age_s", ms > 0 ? (double)((cbtime_now_ms() - ms) / 1000) : -1);
    }
    cJSON_AddNumberToObject(o, "open_conflicts", (double)count_open_conflicts(t, pair));
    cJSON_AddNumberToObject(o, "pending_creates", (double)count_intents(t, pair));
    struct strbuf key = STRBUF_INIT;
    (void)strbuf_addf(&key, "report:%s", pair);
    cJSON *rep = NULL;
    const char *state = "never synced";
    if (cache_meta_get(t, key.buf, &rep) == CB_OK && rep) {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(rep, "state"));
        state = s ? s : "unknown";
        cJSON_AddItemToObject(o, "last_cycle", rep);
    }
    cJSON_AddStringToObject(o, "state", state);
    strbuf_reset(&key);
    (void)strbuf_addf(&key, "people:%s", pair);
    cJSON *people = NULL;
    if (cache_meta_get(t, key.buf, &people) != CB_OK || !cJSON_IsArray(people)) {
        cJSON_Delete(people);
        people = cJSON_CreateArray();
    }
    cJSON_AddItemToObject(o, "unmapped_people", people);
    strbuf_release(&key);
    return o;
}

static double num(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItem(o, a);
    if (b)
        v = cJSON_GetObjectItem(v, b);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* "rate limit crm  4980 of 5000 left; 2 throttled, waited 3.1 s, paced 0 times" */
static void print_budget(const char *side, const cJSON *b)
{
    if (!b)
        return;
    printf("  rate limit %-7s", side);
    const cJSON *left = cJSON_GetObjectItem(b, "remaining"), *lim = cJSON_GetObjectItem(b, "limit");
    if (cJSON_IsNumber(left) && cJSON_IsNumber(lim))
        printf("%.0f of %.0f left", left->valuedouble, lim->valuedouble);
    else if (cJSON_IsNumber(left))
        printf("%.0f left", left->valuedouble);
    else
        printf("allowance not published");
    printf("; %.0f request(s), %.0f throttled, waited %.1f s, paced %.0f time(s)\n",
           num(b, "requests", NULL), num(b, "throttled", NULL), num(b, "waited_ms", NULL) / 1000.0,
           num(b, "paced_waits", NULL));
}

/* "  unmapped people  1" and one line each: who, where, which field, since when */
static void print_people(const cJSON *people)
{
    printf("  unmapped people  %d\n", cJSON_GetArraySize(people));
    const cJSON *u;
    cJSON_ArrayForEach(u, people)
    {
        char age[16];
        cli_age((int64_t)num(u, "last_ms", NULL), age, sizeof(age));
        printf("    %s: no user on the %s side for '%s' (%s), last seen %s ago\n",
               cJSON_GetStringValue(cJSON_GetObjectItem(u, "name")),
               cJSON_GetStringValue(cJSON_GetObjectItem(u, "side")),
               cJSON_GetStringValue(cJSON_GetObjectItem(u, "field")),
               cJSON_IsTrue(cJSON_GetObjectItem(u, "fallback")) ? "set to the fallback"
                                                                : "left as it was",
               age);
    }
}

static void print_pair(const cJSON *o, int color)
{
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(o, "state"));
    int ok = !strcmp(state, "ok");
    printf("pair '%s': %s%s%s\n", cJSON_GetStringValue(cJSON_GetObjectItem(o, "pair")),
           color ? (ok ? "\033[32m" : "\033[31m") : "", state, color ? "\033[0m" : "");
    printf("  links            %.0f\n", num(o, "links", NULL));
    const cJSON *cur = cJSON_GetObjectItem(o, "cursors");
    static const char *const names[2] = {"crm", "tracker"};
    for (int s = 0; s < 2; s++) {
        const cJSON *c = cJSON_GetObjectItem(cur, names[s]);
        const char *at = cJSON_GetStringValue(cJSON_GetObjectItem(c, "at"));
        printf("  cursor %-9s %s%s", names[s], at ? at : "none (first cycle reads everything)",
               at ? "" : "\n");
        if (at)
            printf(" (%.0fs ago)\n", num(c, "age_s", NULL));
    }
    printf("  open conflicts   %.0f\n", num(o, "open_conflicts", NULL));
    printf("  pending creates  %.0f\n", num(o, "pending_creates", NULL));
    print_people(cJSON_GetObjectItem(o, "unmapped_people"));
    const cJSON *r = cJSON_GetObjectItem(o, "last_cycle");
    if (!r)
        return;
    char age[16];
    cli_age((int64_t)num(r, "finished_ms", NULL), age, sizeof(age));
    printf("  last cycle       %s ago: read %.0f/%.0f, created %.0f/%.0f, updated %.0f/%.0f "
           "(crm/tracker), %.0f conflict(s), %.0f skipped, %.0f failed, %.0f postponed\n",
           age, num(r, "crm", "read"), num(r, "tracker", "read"), num(r, "crm", "created"),
           num(r, "tracker", "created"), num(r, "crm", "updated"), num(r, "tracker", "updated"),
           num(r, "conflicts", NULL), num(r, "skipped", NULL), num(r, "failed", NULL),
           num(r, "postponed", NULL));
    for (int s = 0; s < 2; s++)
        print_budget(names[s], cJSON_GetObjectItem(cJSON_GetObjectItem(r, names[s]), "budget"));
    const char *e = cJSON_GetStringValue(cJSON_GetObjectItem(r, "error"));
    if (e)
        printf("  error            %s\n", e);
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(r, "problems"))
        printf("  ! %s\n", cJSON_GetStringValue(p));
}

int cmd_status(struct app *a, int argc, char **argv)
{
    int rc = app_load(a, 1);
    if (rc != EXIT_OK)
        return rc;
    const char *only = cli_opt(argc, argv, "--pair");
    if (only && !config_pair(a->cfg, only)) {
        cli_error("no pair named '%s' in '%s'", only, a->config_path);
        return EXIT_USAGE;
    }
    struct cache_txn *t;
    struct strbuf err = STRBUF_INIT;
    if (cache_txn_begin(a->cache, 1, &t, &err) != CB_OK) {
        cli_error("cannot read the cache: %s", err.buf);
        strbuf_release(&err);
        return EXIT_FATAL;
    }
    strbuf_release(&err);
    cJSON *all = cJSON_CreateArray();
    for (size_t i = 0; i < a->cfg->n_pairs; i++)
        if (!only || str_eq(only, a->cfg->pairs[i].name))
            cJSON_AddItemToArray(all, pair_status(t, a->cfg->pairs[i].name));
    cache_txn_abort(t);
    const cJSON *o;
    cJSON_ArrayForEach(o, all)
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(o, "state")), "ok") != 0)
            rc = EXIT_RECORDS;
    }
    if (cli_flag(argc, argv, "--json")) {
        cli_print_json(all);
    } else {
        int color = cli_use_color(stdout);
        cJSON_ArrayForEach(o, all)
            print_pair(o, color);
    }
    cJSON_Delete(all);
    return rc;
}
