/*
 * Loading the configuration with libconfig. Syntax errors come from libconfig with file and line;
 * semantic checks here collect every problem before failing, so an admin fixes a file in one go.
 * Service-specific keys are copied verbatim into key/value groups and checked by connectors.
 */
#include "core/config.h"

#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/secret.h"

static const char *const top_keys[] = {"state_dir", "log_level", "http_timeout", "max_body_bytes",
                                       "endpoints", "pairs", "interval", "log_format", "webhooks",
                                       NULL};
static const char *const pair_keys[] = {"name",    "crm",          "tracker",        "interval",
                                        "overlap", "mapping",      "create",         "deletes",
                                        "delete_guard", "archive_status", "delete_sweep", NULL};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

void conf_add_error(struct strbuf *err, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    (void)strbuf_addf(err, "%s:%d: ", file, line);
    va_start(ap, fmt);
    (void)strbuf_vaddf(err, fmt, ap);
    va_end(ap);
    (void)strbuf_addch(err, '\n');
}

/* Renders a scalar or a list of scalars as text; returns NULL for groups. */
static char *setting_text(const config_setting_t *s)
{
    char buf[64];
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_STRING:
        return xstrdup(config_setting_get_string(s));
    case CONFIG_TYPE_INT:
        snprintf(buf, sizeof(buf), "%d", config_setting_get_int(s));
        return xstrdup(buf);
    case CONFIG_TYPE_INT64:
        snprintf(buf, sizeof(buf), "%lld", config_setting_get_int64(s));
        return xstrdup(buf);
    case CONFIG_TYPE_FLOAT:
        snprintf(buf, sizeof(buf), "%g", config_setting_get_float(s));
        return xstrdup(buf);
    case CONFIG_TYPE_BOOL:
        return xstrdup(config_setting_get_bool(s) ? "true" : "false");
    case CONFIG_TYPE_ARRAY:
    case CONFIG_TYPE_LIST: {
        struct strbuf sb = STRBUF_INIT;
        for (int i = 0; i < config_setting_length(s); i++) {
            char *t = setting_text(config_setting_get_elem(s, (unsigned)i));
            if (!t) {
                strbuf_release(&sb);
                return NULL;
            }
            if (i)
                (void)strbuf_addch(&sb, ',');
            (void)strbuf_adds(&sb, t);
            free(t);
        }
        return strbuf_detach(&sb);
    }
    default:
        return NULL;
    }
}

static void load_group(const config_setting_t *s, const char *file, struct conf_group *g,
                       const char *const *skip, struct strbuf *err)
{
    g->file = file;
    g->line = (int)config_setting_source_line(s);
    int n = config_setting_length(s);
    g->kv = xcalloc((size_t)n + 1, sizeof(*g->kv));
    for (int i = 0; i < n; i++) {
        const config_setting_t *c = config_setting_get_elem(s, (unsigned)i);
        const char *name = config_setting_name(c);
        if (!name || (skip && in_list(skip, name)))
            continue;
        char *v = setting_text(c);
        if (!v) {
            conf_add_error(err, file, (int)config_setting_source_line(c), "'%s' must be a value, not a group",
                    name);
            continue;
        }
        g->kv[g->n_kv].key = xstrdup(name);
        g->kv[g->n_kv].value = v;
        g->kv[g->n_kv].line = (int)config_setting_source_line(c);
        g->n_kv++;
    }
}

static void free_group(struct conf_group *g)
{
    for (size_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].value);
    }
    free(g->kv);
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        free(cfg->endpoints[i].name);
        free(cfg->endpoints[i].type);
        free(cfg->endpoints[i].ca_file);
        free_group(&cfg->endpoints[i].g);
    }
    free(cfg->endpoints);
    for (size_t i = 0; i < cfg->n_pairs; i++) {
        struct pair_conf *p = &cfg->pairs[i];
        free(p->name);
        for (int s = 0; s < 2; s++) {
            free(p->side[s].endpoint);
            free_group(&p->side[s].g);
        }
        free(p->mapping);
        free(p->create);
        free(p->deletes);
        free(p->archive_status);
    }
    free(cfg->pairs);
    free(cfg->state_dir);
    free(cfg->log_level);
    free(cfg->log_format);
    free_group(&cfg->webhooks);
    free(cfg->path);
    free(cfg);
}

static char *get_str(const config_setting_t *parent, const char *name, const char *file,
                     struct strbuf *err, int required)
{
    const config_setting_t *s = config_setting_get_member(parent, name);
    if (!s) {
        if (required)
            conf_add_error(err, file, (int)config_setting_source_line(parent), "missing '%s'", name);
        return NULL;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        conf_add_error(err, file, (int)config_setting_source_line(s), "'%s' must be a string", name);
        return NULL;
    }
    return xstrdup(config_setting_get_string(s));
}

static int get_int(const config_setting_t *parent, const char *name, int def, int min, int max,
                   const char *file, struct strbuf *err)
{
    const config_setting_t *s = config_setting_get_member(parent, name);
    if (!s)
        return def;
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        conf_add_error(err, file, (int)config_setting_source_line(s), "'%s' must be an integer", name);
        return def;
    }
    long long v = config_setting_get_int64(s);
    if (t == CONFIG_TYPE_INT)
        v = config_setting_get_int(s);
    if (v < min || v > max) {
        conf_add_error(err, file, (int)config_setting_source_line(s), "'%s' must be between %d and %d",
                name, min, max);
        return def;
    }
    return (int)v;
}

static const char *const side_names[2] = {"crm", "tracker"};

/* Line of member name in parent, or of parent itself when the member is absent. */
static int line_of(const config_setting_t *parent, const char *name)
{
    const config_setting_t *s = config_setting_get_member(parent, name);
    return (int)config_setting_source_line(s ? s : parent);
}

static void load_pair(const config_setting_t *ps, struct config *cfg, struct pair_conf *p,
                      struct strbuf *err)
{
    const char *file = cfg->path;
    p->line = (int)config_setting_source_line(ps);
    if (config_setting_type(ps) != CONFIG_TYPE_GROUP) {
        conf_add_error(err, file, p->line, "each entry of 'pairs' must be a group { ... }");
        return;
    }
    for (int i = 0; i < config_setting_length(ps); i++) {
        const config_setting_t *c = config_setting_get_elem(ps, (unsigned)i);
        if (!in_list(pair_keys, config_setting_name(c)))
            conf_add_error(err, file, (int)config_setting_source_line(c), "unknown pair setting '%s'",
                    config_setting_name(c));
    }
    p->name = get_str(ps, "name", file, err, 1);
    p->interval_s = get_int(ps, "interval", cfg->interval_s, 1, 86400, file, err);
    p->overlap_s = get_int(ps, "overlap", -1, 0, 86400, file, err);
    p->mapping = get_str(ps, "mapping", file, err, 0);
    p->create = get_str(ps, "create", file, err, 0);
    if (!p->create)
        p->create = xstrdup("to_tracker");
    static const char *const creates[] = {"to_tracker", "to_crm", "both", "none", NULL};
    if (!in_list(creates, p->create))
        conf_add_error(err, file, line_of(ps, "create"),
                "pair '%s': 'create' must be one of to_tracker, to_crm, both, none",
                p->name ? p->name : "?");
    p->deletes = get_str(ps, "deletes", file, err, 0);
    if (!p->deletes)
        p->deletes = xstrdup("ignore");
    static const char *const deletes[] = {"ignore", "archive", "delete", NULL};
    if (!in_list(deletes, p->deletes))
        conf_add_error(err, file, line_of(ps, "deletes"),
                       "pair '%s': 'deletes' must be one of ignore, archive, delete",
                       p->name ? p->name : "?");
    p->delete_guard_pct = get_int(ps, "delete_guard", 50, 0, 100, file, err);
    p->delete_sweep_s = get_int(ps, "delete_sweep", 3600, 0, 30 * 86400, file, err);
    p->archive_status = get_str(ps, "archive_status", file, err, 0);
    if (!p->archive_status)
        p->archive_status = xstrdup("rejected");
    static const char *const side_skip[] = {"endpoint", NULL};
    for (int s = 0; s < 2; s++) {
        const config_setting_t *ss = config_setting_get_member(ps, side_names[s]);
        if (!ss || config_setting_type(ss) != CONFIG_TYPE_GROUP) {
            conf_add_error(err, file, ss ? (int)config_setting_source_line(ss) : p->line,
                    "pair '%s' needs a '%s = { endpoint = \"...\"; ... }' group",
                    p->name ? p->name : "?", side_names[s]);
            continue;
        }
        p->side[s].endpoint = get_str(ss, "endpoint", file, err, 1);
        load_group(ss, file, &p->side[s].g, side_skip, err);
        if (p->side[s].endpoint && !config_endpoint(cfg, p->side[s].endpoint))
            conf_add_error(err, file, line_of(ss, "endpoint"),
                    "pair '%s': %s endpoint '%s' is not defined in 'endpoints'",
                    p->name ? p->name : "?", side_names[s], p->side[s].endpoint);
    }
}

static enum cb_status load(config_t *lc, const char *name, struct config **out, struct strbuf *err)
{
    struct config *cfg = xcalloc(1, sizeof(*cfg));
    struct strbuf errs = STRBUF_INIT;
    cfg->path = xstrdup(name);
    const char *file = cfg->path; /* groups borrow it: it must live as long as cfg */
    config_setting_t *root = config_root_setting(lc);

    for (int i = 0; i < config_setting_length(root); i++) {
        const config_setting_t *c = config_setting_get_elem(root, (unsigned)i);
        if (!in_list(top_keys, config_setting_name(c)))
            conf_add_error(&errs, file, (int)config_setting_source_line(c), "unknown setting '%s'",
                    config_setting_name(c));
    }
    cfg->state_dir = get_str(root, "state_dir", file, &errs, 0);
    if (!cfg->state_dir)
        cfg->state_dir = xstrdup("/var/lib/crmbridge");
    cfg->log_level = get_str(root, "log_level", file, &errs, 0);
    if (cfg->log_level && log_level_parse(cfg->log_level) < 0)
        conf_add_error(&errs, file, line_of(root, "log_level"),
                "'log_level' must be one of error, warn, info, debug");
    cfg->http_timeout_s = get_int(root, "http_timeout", 30, 1, 3600, file, &errs);
    cfg->max_body_bytes = get_int(root, "max_body_bytes", 32 * 1024 * 1024, 1024, 1 << 30, file, &errs);
    cfg->interval_s = get_int(root, "interval", 60, 1, 86400, file, &errs);
    cfg->log_format = get_str(root, "log_format", file, &errs, 0);
    if (cfg->log_format && !str_eq(cfg->log_format, "text") && !str_eq(cfg->log_format, "json"))
        conf_add_error(&errs, file, line_of(root, "log_format"),
                "'log_format' must be \"text\" or \"json\"");
    const config_setting_t *wh = config_setting_get_member(root, "webhooks");
    if (wh && config_setting_type(wh) != CONFIG_TYPE_GROUP)
        conf_add_error(&errs, file, line_of(root, "webhooks"),
                "'webhooks' must be a group: webhooks = { listen = \"127.0.0.1:8787\"; ... }");
    else if (wh)
        load_group(wh, file, &cfg->webhooks, NULL, &errs);

    const config_setting_t *eps = config_setting_get_member(root, "endpoints");
    if (!eps || config_setting_type(eps) != CONFIG_TYPE_GROUP) {
        conf_add_error(&errs, file, eps ? (int)config_setting_source_line(eps) : 1,
                "'endpoints' must be a group: endpoints = { name = { type = \"...\"; ... }; }");
    } else {
        int n = config_setting_length(eps);
        cfg->endpoints = xcalloc((size_t)n + 1, sizeof(*cfg->endpoints));
        static const char *const ep_skip[] = {"type", "ca_file", NULL};
        for (int i = 0; i < n; i++) {
            const config_setting_t *es = config_setting_get_elem(eps, (unsigned)i);
            struct endpoint_conf *ep = &cfg->endpoints[cfg->n_endpoints];
            if (config_setting_type(es) != CONFIG_TYPE_GROUP) {
                conf_add_error(&errs, file, (int)config_setting_source_line(es),
                        "endpoint '%s' must be a group", config_setting_name(es));
                continue;
            }
            ep->name = xstrdup(config_setting_name(es));
            ep->type = get_str(es, "type", file, &errs, 1);
            ep->ca_file = get_str(es, "ca_file", file, &errs, 0);
            if (ep->ca_file && access(ep->ca_file, R_OK) != 0)
                conf_add_error(&errs, file, line_of(es, "ca_file"), "cannot read 'ca_file' '%s': %s",
                               ep->ca_file, strerror(errno));
            load_group(es, file, &ep->g, ep_skip, &errs);
            cfg->n_endpoints++;
        }
    }
    const config_setting_t *ps = config_setting_get_member(root, "pairs");
    if (!ps || (config_setting_type(ps) != CONFIG_TYPE_LIST &&
                config_setting_type(ps) != CONFIG_TYPE_ARRAY)) {
        conf_add_error(&errs, file, ps ? (int)config_setting_source_line(ps) : 1,
                "'pairs' must be a list: pairs = ( { name = \"...\"; ... } );");
    } else {
        int n = config_setting_length(ps);
        cfg->pairs = xcalloc((size_t)n + 1, sizeof(*cfg->pairs));
        for (int i = 0; i < n; i++) {
            load_pair(config_setting_get_elem(ps, (unsigned)i), cfg, &cfg->pairs[i], &errs);
            cfg->n_pairs++;
            for (int j = 0; j < i; j++)
                if (cfg->pairs[i].name && str_eq(cfg->pairs[i].name, cfg->pairs[j].name))
                    conf_add_error(&errs, file, cfg->pairs[i].line, "duplicate pair name '%s'",
                            cfg->pairs[i].name);
        }
    }
    if (errs.len) {
        strbuf_setf(err, "%s", errs.buf);
        if (err)
            strbuf_trim_end(err);
        strbuf_release(&errs);
        config_free(cfg);
        return CB_ERR_CONFIG;
    }
    strbuf_release(&errs);
    *out = cfg;
    return CB_OK;
}

static enum cb_status syntax_error(config_t *lc, const char *name, struct strbuf *err)
{
    const char *f = config_error_file(lc);
    strbuf_setf(err, "%s:%d: %s", f ? f : name, config_error_line(lc), config_error_text(lc));
    config_destroy(lc);
    return CB_ERR_CONFIG;
}

enum cb_status config_load(const char *path, struct config **out, struct strbuf *err)
{
    config_t lc;
    config_init(&lc);
    FILE *f = fopen(path, "r");
    if (!f) {
        strbuf_setf(err, "cannot open config file '%s': %s", path, strerror(errno));
        config_destroy(&lc);
        return CB_ERR_CONFIG;
    }
    fclose(f);
    if (config_read_file(&lc, path) != CONFIG_TRUE)
        return syntax_error(&lc, path, err);
    enum cb_status st = load(&lc, path, out, err);
    config_destroy(&lc);
    return st;
}

enum cb_status config_load_string(const char *text, const char *name, struct config **out,
                                  struct strbuf *err)
{
    config_t lc;
    config_init(&lc);
    if (config_read_string(&lc, text) != CONFIG_TRUE)
        return syntax_error(&lc, name, err);
    enum cb_status st = load(&lc, name, out, err);
    config_destroy(&lc);
    return st;
}

const struct endpoint_conf *config_endpoint(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_endpoints; i++)
        if (str_eq(cfg->endpoints[i].name, name))
            return &cfg->endpoints[i];
    return NULL;
}

const struct pair_conf *config_pair(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_pairs; i++)
        if (str_eq(cfg->pairs[i].name, name))
            return &cfg->pairs[i];
    return NULL;
}

const struct conf_kv *conf_find(const struct conf_group *g, const char *key)
{
    for (size_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0)
            return &g->kv[i];
    return NULL;
}

const char *conf_get(const struct conf_group *g, const char *key)
{
    const struct conf_kv *kv = conf_find(g, key);
    return kv ? kv->value : NULL;
}

void conf_error(const struct conf_group *g, const char *key, struct strbuf *err, const char *fmt,
                ...)
{
    const struct conf_kv *kv = key ? conf_find(g, key) : NULL;
    (void)strbuf_addf(err, "%s:%d: ", g->file ? g->file : "config", kv ? kv->line : g->line);
    va_list ap;
    va_start(ap, fmt);
    (void)strbuf_vaddf(err, fmt, ap);
    va_end(ap);
    (void)strbuf_addch(err, '\n');
}

int conf_require(const struct conf_group *g, const char *const *required, const char *what,
                 struct strbuf *err)
{
    int missing = 0;
    for (; *required; required++) {
        if (!conf_get(g, *required)) {
            conf_error(g, NULL, err, "%s is missing '%s'", what, *required);
            missing++;
        }
    }
    return missing;
}

static int listed(const char *const *list, const char *key)
{
    for (; list && *list; list++)
        if (strcmp(*list, key) == 0)
            return 1;
    return 0;
}

int conf_unknown_keys(const struct conf_group *g, const char *const *known,
                      const char *const *extra, const char *what, struct strbuf *err)
{
    int bad = 0;
    for (size_t i = 0; i < g->n_kv; i++) {
        if (!listed(known, g->kv[i].key) && !listed(extra, g->kv[i].key)) {
            conf_error(g, g->kv[i].key, err, "unknown %s setting '%s'", what, g->kv[i].key);
            bad++;
        }
    }
    return bad;
}

enum cb_status conf_secret(const struct conf_group *g, const char *key, char **out,
                           struct strbuf *err)
{
    const struct conf_kv *kv = conf_find(g, key);
    if (!kv) {
        conf_error(g, NULL, err, "missing '%s'", key);
        return CB_ERR_CONFIG;
    }
    struct strbuf why = STRBUF_INIT;
    enum cb_status st = secret_resolve(kv->value, out, &why);
    if (st != CB_OK)
        conf_error(g, key, err, "'%s': %s", key, why.buf);
    strbuf_release(&why);
    return st;
}
