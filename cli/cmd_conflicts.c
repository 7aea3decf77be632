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
    static const char *const states[] = {"open", "resolved", "applied"};
    cJSON_AddStringToObject(o, "state", states[c->resolved >= 0 && c->resolved <= 2 ? c->resolved : 0]);
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
        cli_print_json(arr);
        cJSON_Delete(arr);
    } else if (n == 0) {
        printf("no open conflicts\n");
    } else {
        printf("%-6s %-16s %-18s %-18s %-14s %s\n", "ID", "PAIR", "CRM", "TRACKER", "FIELD", "AGE");
        for (size_t i = 0; i < n; i++) {
            char age[16];
            cli_age(cs[i].created_ms, age, sizeof(age));
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

/* Splits text into lines (pointers into a copy the caller frees with the array). */
static char **split_lines(const char *text, size_t *n)
{
    char *copy = xstrdup(text);
    size_t cap = 16;
    char **v = xcalloc(cap, sizeof(char *));
    *n = 0;
    for (char *p = copy; p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (*n + 1 >= cap)
            v = xrealloc(v, (cap *= 2) * sizeof(char *));
        v[(*n)++] = p;
        p = nl ? nl + 1 : NULL;
    }
    v[*n] = copy; /* kept past the end so the caller can free it */
    return v;
}

/* Prints a line diff of one side's text against the base (longest common subsequence). */
static void print_diff(const char *label, const char *base, const char *text, int color)
{
    size_t nb, nt;
    char **b = split_lines(base, &nb), **t = split_lines(text, &nt);
    if (nb > 2000 || nt > 2000) { /* the table is quadratic: show the text whole instead */
        printf("  %s (too long to diff):\n%s\n", label, text);
    } else {
        size_t *l = xcalloc((nb + 1) * (nt + 1), sizeof(size_t));
#define L(i, j) l[(i) * (nt + 1) + (j)]
        for (size_t i = nb; i-- > 0;)
            for (size_t j = nt; j-- > 0;)
                L(i, j) = strcmp(b[i], t[j]) == 0 ? L(i + 1, j + 1) + 1
                                                   : (L(i + 1, j) > L(i, j + 1) ? L(i + 1, j)
                                                                                : L(i, j + 1));
        printf("  %s against the base:\n", label);
        size_t i = 0, j = 0;
        while (i < nb || j < nt) {
            if (i < nb && j < nt && strcmp(b[i], t[j]) == 0) {
                printf("      %s\n", b[i]);
                i++, j++;
            } else if (j < nt && (i == nb || L(i, j + 1) >= L(i + 1, j))) {
                printf("    %s+ %s%s\n", color ? "\033[32m" : "", t[j++], color ? "\033[0m" : "");
            } else {
                printf("    %s- %s%s\n", color ? "\033[31m" : "", b[i++], color ? "\033[0m" : "");
            }
        }
#undef L
        free(l);
    }
    free(b[nb]);
    free(b);
    free(t[nt]);
    free(t);
}

static int is_long(const cJSON *v)
{
    return cJSON_IsString(v) && (strchr(v->valuestring, '\n') || strlen(v->valuestring) > 80);
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
        cli_print_json(o);
        cJSON_Delete(o);
    } else {
        int color = cli_use_color(stdout);
        char tb[2][CBTIME_BUFSZ];
        char *bv = value_text(c.base), *cv = value_text(c.value[0]), *tv = value_text(c.value[1]);
        static const char *const states[] = {"open", "resolved, waiting for the next cycle",
                                             "resolved and written to both sides"};
        printf("conflict %" PRIu64 " in pair '%s', field '%s' (%s)\n", c.id, c.pair, c.field,
               states[c.resolved >= 0 && c.resolved <= 2 ? c.resolved : 0]);
        printf("  %sbase%s     %s\n", color ? "\033[2m" : "", color ? "\033[0m" : "", bv);
        printf("  %scrm%s      %s   [%s, changed by %s at %s]\n", color ? "\033[32m" : "",
               color ? "\033[0m" : "", cv, c.key[0] ? c.key[0] : "?", c.who[0] ? c.who[0] : "?",
               cbtime_format_iso(c.changed_ms[0], 0, tb[0]));
        printf("  %stracker%s  %s   [%s, changed by %s at %s]\n", color ? "\033[34m" : "",
               color ? "\033[0m" : "", tv, c.key[1] ? c.key[1] : "?", c.who[1] ? c.who[1] : "?",
               cbtime_format_iso(c.changed_ms[1], 0, tb[1]));
        if (is_long(c.base) || is_long(c.value[0]) || is_long(c.value[1])) {
            print_diff("crm", cJSON_IsString(c.base) ? c.base->valuestring : "", cv, color);
            print_diff("tracker", cJSON_IsString(c.base) ? c.base->valuestring : "", tv, color);
        }
        free(bv);
        free(cv);
        free(tv);
    }
    conflict_release(&c);
    return EXIT_OK;
}

/* The value a person chose: one side's, the base, or their own text. NULL on a bad choice. */
static cJSON *chosen_value(const struct conflict *c, const char *take, const char *value)
{
    if (value)
        return cJSON_CreateString(value);
    if (!strcmp(take, "crm"))
        return cJSON_Duplicate(c->value[0], 1);
    if (!strcmp(take, "tracker"))
        return cJSON_Duplicate(c->value[1], 1);
    if (!strcmp(take, "base"))
        return cJSON_Duplicate(c->base, 1);
    return NULL;
}

struct resolve_req {
    uint64_t id;      /* 0 with all */
    const char *field, *pair, *take, *value;
    int done, skipped;
    struct strbuf msg;
};

static int resolve_one(struct cache_txn *t, struct conflict *c, struct resolve_req *r)
{
    if (c->resolved) {
        (void)strbuf_addf(&r->msg, "conflict %" PRIu64 " is already resolved; nothing changed\n",
                          c->id);
        r->skipped++;
        return 0;
    }
    cJSON_Delete(c->resolution);
    c->resolution = chosen_value(c, r->take, r->value);
    c->resolved = 1;
    if (cache_conflict_put(t, c) != CB_OK)
        return -1;
    char *v = c->resolution ? cJSON_PrintUnformatted(c->resolution) : NULL;
    (void)strbuf_addf(&r->msg, "resolved conflict %" PRIu64 " (%s '%s'): %s\n", c->id, c->pair,
                      c->field, v ? v : "null");
    cJSON_free(v);
    r->done++;
    return 0;
}

static enum cb_status resolve_in_txn(struct cache_txn *t, struct resolve_req *r)
{
    if (r->id) {
        struct conflict c = {0};
        enum cb_status st = cache_conflict_get(t, r->id, &c);
        if (st == CB_OK && resolve_one(t, &c, r) < 0)
            st = cache_txn_status(t);
        if (st == CB_ERR_NOTFOUND)
            (void)strbuf_addf(&r->msg, "no conflict %" PRIu64 " (it may have been removed with "
                                       "its link); nothing changed\n", r->id);
        conflict_release(&c);
        return st;
    }
    struct conflict *cs = NULL;
    size_t n = 0;
    enum cb_status st = cache_conflict_list(t, r->pair, 1, &cs, &n);
    for (size_t i = 0; i < n; i++) {
        if (st == CB_OK && !strcmp(cs[i].field, r->field) && resolve_one(t, &cs[i], r) < 0)
            st = cache_txn_status(t);
        conflict_release(&cs[i]);
    }
    free(cs);
    return st;
}

static int resolve(struct app *a, int argc, char **argv)
{
    struct resolve_req r = {0};
    r.take = cli_opt(argc, argv, "--take");
    r.value = cli_opt(argc, argv, "--value");
    r.field = cli_opt(argc, argv, "--field");
    r.pair = cli_opt(argc, argv, "--pair");
    int all = cli_flag(argc, argv, "--all");
    const char *ids = cli_positional(argc, argv, 1);
    char *end = NULL;
    r.id = ids ? strtoull(ids, &end, 10) : 0;
    int ok_choice = (r.take && !r.value && (!strcmp(r.take, "crm") || !strcmp(r.take, "tracker") ||
                                            !strcmp(r.take, "base"))) ||
                    (r.value && !r.take && !all);
    if (!ok_choice || (all ? (ids || !r.field) : (!ids || *end || r.id == 0))) {
        cli_error("usage: crmbridge conflicts resolve ID (--take crm|tracker|base | --value TEXT) "
                  "[--apply]\n"
                  "   or: crmbridge conflicts resolve --all --field FIELD --take crm|tracker|base");
        return EXIT_USAGE;
    }
    strbuf_init(&r.msg, 0);
    struct cache_txn *t;
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = cache_txn_begin(a->cache, 0, &t, &err);
    if (st == CB_OK) {
        st = resolve_in_txn(t, &r);
        if (st == CB_OK)
            st = cache_txn_commit(t, &err);
        else
            cache_txn_abort(t);
    }
    fputs(r.msg.buf, stdout);
    int rc = EXIT_OK;
    if (st == CB_ERR_NOTFOUND) {
        rc = EXIT_USAGE;
    } else if (st != CB_OK) {
        cli_error("cannot record the resolution: %s", err.len ? err.buf : cb_status_str(st));
        rc = EXIT_FATAL;
    } else if (all && r.done == 0 && r.skipped == 0) {
        printf("no open conflict on field '%s'; nothing changed\n", r.field);
    }
    strbuf_release(&err);
    strbuf_release(&r.msg);
    if (rc == EXIT_OK && r.done && cli_flag(argc, argv, "--apply")) {
        for (size_t i = 0; i < a->cfg->n_pairs; i++) {
            if (r.pair && !str_eq(r.pair, a->cfg->pairs[i].name))
                continue;
            int prc = cli_sync_pair(a, a->cfg->pairs[i].name);
            rc = prc > rc ? prc : rc;
        }
    } else if (rc == EXIT_OK && r.done) {
        printf("the next sync cycle writes the chosen value to both sides\n");
    }
    return rc;
}

int cmd_conflicts(struct app *a, int argc, char **argv)
{
    const char *sub = cli_positional(argc, argv, 0);
    if (!sub || (strcmp(sub, "list") && strcmp(sub, "show") && strcmp(sub, "resolve"))) {
        cli_error("usage: crmbridge conflicts list|show|resolve ... (see crmbridge conflicts --help)");
        return EXIT_USAGE;
    }
    int rc = app_load(a, 1);
    if (rc != EXIT_OK)
        return rc;
    if (!strcmp(sub, "list"))
        return list(a, argc, argv);
    return !strcmp(sub, "show") ? show(a, argc, argv) : resolve(a, argc, argv);
}
