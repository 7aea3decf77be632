/*
 * `crmbridge conflicts list|show`: the field conflicts the engine held for a person, read from
 * the cache. Tables on a terminal, JSON with --json; colour only on a terminal without NO_COLOR.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/timeutil.h"

static char *value_text(const cJSON *v)
{
    if (!v || cJSON_IsNull(v))
        return xstrdup("(empty)");
    if (cJSON_IsString(v))
        return xstrdup(v->valuestring);
    char *p = cJSON_PrintUnformatted(v);
    char *r = xstrdup(p);
    cJSON_free(p);
    return r;
}

static void age_text(int64_t created_ms, char *buf, size_t n)
{
    int64_t s = (cbtime_now_ms() - created_ms) / 1000;
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(buf, n, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(buf, n, "%lldm", (long long)(s / 60));
    else if (s < 172800)
        snprintf(buf, n, "%lldh", (long long)(s / 3600));
    else
        snprintf(buf, n, "%lldd", (long long)(s / 86400));
}

static cJSON *conflict_json(const struct conflict *c)
{
    cJSON *o = cJSON_CreateObject();
    char t[CBTIME_BUFSZ];
    cJSON_AddNumberToObject(o, "id", (double)c->id);
    cJSON_AddStringToObject(o, "pair", c->pair);
    cJSON_AddNumberToObject(o, "link", (double)c->link_id);
    cJSON_AddStringToObject(o, "field", c->field);
    cJSON_AddItemToObject(o, "base", cJSON_Duplicate(c->base, 1));
    static const char *const names[2] = {"crm", "tracker"};
    for (int s = 0; s < 2; s++) {
        cJSON *side = cJSON_AddObjectToObject(o, names[s]);
        cJSON_AddItemToObject(side, "value", cJSON_Duplicate(c->value[s], 1));
        if (c->key[s])
            cJSON_AddStringToObject(side, "key", c->key[s]);
        if (c->who[s])
            cJSON_AddStringToObject(side, "changed_by", c->who[s]);
        if (c->changed_ms[s])
            cJSON_AddStringToObject(side, "changed_at", cbtime_format_iso(c->changed_ms[s], 0, t));
    }
    cJSON_AddStringToObject(o, "created_at", cbtime_format_iso(c->created_ms, 0, t));
    cJSON_AddStringToObject(o, "state", c->resolved ? "resolved" : "open");
    if (c->resolution)
        cJSON_AddItemToObject(o, "resolution", cJSON_Duplicate(c->resolution, 1));
    return o;
}

static int load_conflicts(struct app *a, const char *pair, struct conflict **out, size_t *n)
{
    struct cache_txn *t;
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = cache_txn_begin(a->cache, 1, &t, &err);
    if (st == CB_OK) {
        st = cache_conflict_list(t, pair, 1, out, n);
        cache_txn_abort(t);
    }
    if (st != CB_OK)
        cli_error("cannot read conflicts: %s", err.len ? err.buf : cb_status_str(st));
    strbuf_release(&err);
    return st == CB_OK ? EXIT_OK : EXIT_FATAL;
}

static int list(struct app *a, int argc, char **argv)
{
    const char *pair = cli_opt(argc, argv, "--pair");
    struct conflict *cs = NULL;
    size_t n = 0;
    int rc = load_conflicts(a, pair, &cs, &n);
    if (rc != EXIT_OK)
        return rc;
    if (cli_flag(argc, argv, "--json")) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++)
            cJSON_AddItemToArray(arr, conflict_json(&cs[i]));
        char *txt = cJSON_Print(arr);
        puts(txt);
        cJSON_free(txt);
        cJSON_Delete(arr);
    } else if (n == 0) {
        printf("no open conflicts\n");
    } else {
        printf("%-6s %-16s %-18s %-18s %-14s %s\n", "ID", "PAIR", "CRM", "TRACKER", "FIELD", "AGE");
        for (size_t i = 0; i < n; i++) {
            char age[16];
            age_text(cs[i].created_ms, age, sizeof(age));
            printf("%-6" PRIu64 " %-16s %-18s %-18s %-14s %s\n", cs[i].id, cs[i].pair,
                   cs[i].key[0] ? cs[i].key[0] : "?", cs[i].key[1] ? cs[i].key[1] : "?",
                   cs[i].field, age);
        }
    }
    for (size_t i = 0; i < n; i++)
        conflict_release(&cs[i]);
    free(cs);
    return EXIT_OK;
}

static int show(struct app *a, int argc, char **argv)
{
    const char *ids = cli_positional(argc, argv, 1);
    char *end = NULL;
    unsigned long long id = ids ? strtoull(ids, &end, 10) : 0;
    if (!ids || *end || id == 0) {
        cli_error("usage: crmbridge conflicts show ID");
        return EXIT_USAGE;
    }
    struct cache_txn *t;
    struct strbuf err = STRBUF_INIT;
    struct conflict c = {0};
    enum cb_status st = cache_txn_begin(a->cache, 1, &t, &err);
    if (st == CB_OK) {
        st = cache_conflict_get(t, id, &c);
        cache_txn_abort(t);
    }
    strbuf_release(&err);
    if (st == CB_ERR_NOTFOUND) {
        cli_error("no conflict %llu", id);
        return EXIT_USAGE;
    }
    if (st != CB_OK) {
        cli_error("cannot read conflict %llu: %s", id, cb_status_str(st));
        return EXIT_FATAL;
    }
    if (cli_flag(argc, argv, "--json")) {
        cJSON *o = conflict_json(&c);
        char *txt = cJSON_Print(o);
        puts(txt);
        cJSON_free(txt);
        cJSON_Delete(o);
    } else {
        int color = cli_use_color(stdout);
        char tb[2][CBTIME_BUFSZ];
        char *bv = value_text(c.base), *cv = value_text(c.value[0]), *tv = value_text(c.value[1]);
        printf("conflict %" PRIu64 " in pair '%s', field '%s' (%s)\n", c.id, c.pair, c.field,
               c.resolved ? "resolved" : "open");
        printf("  %sbase%s     %s\n", color ? "\033[2m" : "", color ? "\033[0m" : "", bv);
        printf("  %scrm%s      %s   [%s, changed by %s at %s]\n", color ? "\033[32m" : "",
               color ? "\033[0m" : "", cv, c.key[0] ? c.key[0] : "?", c.who[0] ? c.who[0] : "?",
               cbtime_format_iso(c.changed_ms[0], 0, tb[0]));
        printf("  %stracker%s  %s   [%s, changed by %s at %s]\n", color ? "\033[34m" : "",
               color ? "\033[0m" : "", tv, c.key[1] ? c.key[1] : "?", c.who[1] ? c.who[1] : "?",
               cbtime_format_iso(c.changed_ms[1], 0, tb[1]));
        free(bv);
        free(cv);
        free(tv);
    }
    conflict_release(&c);
    return EXIT_OK;
}

int cmd_conflicts(struct app *a, int argc, char **argv)
{
    const char *sub = cli_positional(argc, argv, 0);
    if (!sub || (strcmp(sub, "list") && strcmp(sub, "show"))) {
        cli_error("usage: crmbridge conflicts list [--pair NAME] [--json] | show ID");
        return EXIT_USAGE;
    }
    int rc = app_load(a, 1);
    if (rc != EXIT_OK)
        return rc;
    return strcmp(sub, "list") == 0 ? list(a, argc, argv) : show(a, argc, argv);
}
