/*
 * `crmbridge links list|show|unlink`: the pairs of records kept in step. unlink cuts a link and
 * keeps both records; both ids are remembered as unlinked so that neither is synced or created
 * again on the other side.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/timeutil.h"

static cJSON *link_json(const struct link *l)
{
    cJSON *o = cJSON_CreateObject();
    char iso[CBTIME_BUFSZ];
    cJSON_AddNumberToObject(o, "id", (double)l->id);
    static const char *const names[2] = {"crm", "tracker"};
    for (int s = 0; s < 2; s++) {
        cJSON *side = cJSON_AddObjectToObject(o, names[s]);
        cJSON_AddStringToObject(side, "id", l->remote[s] ? l->remote[s] : "");
        if (l->key[s])
            cJSON_AddStringToObject(side, "key", l->key[s]);
        if (l->url[s])
            cJSON_AddStringToObject(side, "url", l->url[s]);
    }
    if (l->created_ms)
        cJSON_AddStringToObject(o, "linked_at", cbtime_format_iso(l->created_ms, 0, iso));
    return o;
}

static const char *which_pair(struct app *a, int argc, char **argv)
{
    const char *p = cli_opt(argc, argv, "--pair");
    if (p && !config_pair(a->cfg, p)) {
        cli_error("no pair named '%s' in '%s'", p, a->config_path);
        return NULL;
    }
    if (!p && a->cfg->n_pairs == 1)
        p = a->cfg->pairs[0].name;
    if (!p)
        cli_error("several pairs are configured: name one with --pair NAME");
    return p;
}

static const char *label(const cJSON *o, const char *side)
{
    const cJSON *s = cJSON_GetObjectItem(o, side);
    const char *k = cJSON_GetStringValue(cJSON_GetObjectItem(s, "key"));
    return k ? k : cJSON_GetStringValue(cJSON_GetObjectItem(s, "id"));
}

struct list_out {
    int json;
    size_t n;
};

/* Prints each link as the walk reaches it: the list is never held in memory, so listing any
 * number of links takes the same memory. */
static int print_link(void *arg, const struct link *l)
{
    struct list_out *lo = arg;
    cJSON *o = link_json(l);
    if (lo->json) {
        char *txt = cJSON_Print(o);
        printf("%s%s", lo->n ? ",\n" : "[\n", txt);
        cJSON_free(txt);
    } else {
        const char *at = cJSON_GetStringValue(cJSON_GetObjectItem(o, "linked_at"));
        printf("%-8.0f %-24s %-24s %s\n", cJSON_GetNumberValue(cJSON_GetObjectItem(o, "id")),
               label(o, "crm"), label(o, "tracker"), at ? at : "");
    }
    lo->n++;
    cJSON_Delete(o);
    return 0;
}

static int list(struct cache_txn *t, const char *pair, int json)
{
    struct list_out lo = {json, 0};
    if (!json)
        printf("%-8s %-24s %-24s %s\n", "LINK", "CRM", "TRACKER", "LINKED AT");
    enum cb_status st = cache_link_foreach(t, pair, print_link, &lo);
    if (st != CB_OK) {
        fflush(stdout);
        cli_error("cannot read links: %s", cb_status_str(st));
        return EXIT_FATAL;
    }
    if (json)
        puts(lo.n ? "\n]" : "[]");
    return EXIT_OK;
}

static int show(struct cache_txn *t, const char *pair, uint64_t id, int json)
{
    struct link l = {0};
    enum cb_status st = cache_link_get(t, pair, id, &l);
    if (st != CB_OK) {
        link_release(&l);
        cli_error("no link %" PRIu64 " in pair '%s'", id, pair);
        return EXIT_USAGE;
    }
    cJSON *o = link_json(&l), *base = NULL;
    if (cache_base_get(t, pair, id, &base) == CB_OK && base)
        cJSON_AddItemToObject(o, "agreed", cJSON_Duplicate(cJSON_GetObjectItem(base, "item"), 1));
    cJSON_Delete(base);
    if (json) {
        cli_print_json(o);
    } else {
        printf("link %" PRIu64 " in pair '%s'\n", id, pair);
        printf("  crm      %s  %s\n", label(o, "crm"), l.url[0] ? l.url[0] : "");
        printf("  tracker  %s  %s\n", label(o, "tracker"), l.url[1] ? l.url[1] : "");
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItem(o, "agreed"))
        {
            char *v = cJSON_IsString(f) ? NULL : cJSON_PrintUnformatted(f);
            printf("  %-12s %s\n", f->string, v ? v : f->valuestring);
            cJSON_free(v);
        }
    }
    cJSON_Delete(o);
    link_release(&l);
    return EXIT_OK;
}

int cmd_links(struct app *a, int argc, char **argv)
{
    const char *sub = cli_positional(argc, argv, 0);
    if (!sub || (strcmp(sub, "list") && strcmp(sub, "show") && strcmp(sub, "unlink"))) {
        cli_error("usage: crmbridge links list|show|unlink ... (see crmbridge links --help)");
        return EXIT_USAGE;
    }
    int rc = app_load(a, 1);
    if (rc != EXIT_OK)
        return rc;
    const char *pair = which_pair(a, argc, argv);
    if (!pair)
        return EXIT_USAGE;
    uint64_t id = 0;
    if (strcmp(sub, "list") != 0) {
        const char *ids = cli_positional(argc, argv, 1);
        char *end = NULL;
        id = ids ? strtoull(ids, &end, 10) : 0;
        if (!ids || *end || id == 0) {
            cli_error("usage: crmbridge links %s ID [--pair NAME]", sub);
            return EXIT_USAGE;
        }
    }
    int json = cli_flag(argc, argv, "--json");
    struct cache_txn *t;
    struct strbuf err = STRBUF_INIT;
    int write = !strcmp(sub, "unlink");
    if (cache_txn_begin(a->cache, !write, &t, &err) != CB_OK) {
        cli_error("cannot read the cache: %s", err.buf);
        strbuf_release(&err);
        return EXIT_FATAL;
    }
    if (!write) {
        rc = !strcmp(sub, "list") ? list(t, pair, json) : show(t, pair, id, json);
        cache_txn_abort(t);
    } else {
        enum cb_status st = cache_link_unlink(t, pair, id);
        if (st == CB_OK)
            st = cache_txn_commit(t, &err);
        else
            cache_txn_abort(t);
        if (st == CB_ERR_NOTFOUND) {
            cli_error("no link %" PRIu64 " in pair '%s'; nothing changed", id, pair);
            rc = EXIT_USAGE;
        } else if (st != CB_OK) {
            cli_error("cannot unlink: %s", err.len ? err.buf : cb_status_str(st));
            rc = EXIT_FATAL;
        } else {
            printf("unlinked %" PRIu64 " in pair '%s'; both records stay, and neither is synced "
                   "again\n", id, pair);
        }
    }
    strbuf_release(&err);
    return rc;
}
