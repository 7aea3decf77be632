/*
 * The declarative mapping: parsed from libconfig (a file, or the built-in default text for a
 * combination of connector types) into field maps with value maps, directions and policies.
 * It translates between remote fields and item fields; it does not talk to any service and does
 * not decide merges (sync/ does).
 */
#include "mapping/mapping.h"

#include <libconfig.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "mapping/mapping_default.h"
#include "mapping/people_p.h"

struct valmap {
    char *canon;
    char **remote; /* remote[0] is what gets written */
    size_t n;
};

struct fieldmap {
    char *item;
    char *remote[2]; /* NULL when the side does not hold the field */
    enum field_dir dir;
    enum conflict_policy policy;
    struct valmap *vm[2];
    size_t nvm[2];
    int has_vm[2];
};

struct mapping {
    struct fieldmap *f;
    size_t n;
    const char **rfields[2];
    const char **items;
    cJSON *defaults[2];
    long skew_ms;
    struct people_map *people;
};

static const char *const side_key[2] = {"crm", "tracker"};
static const char *const values_key[2] = {"crm_values", "tracker_values"};

void mapping_free(struct mapping *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        struct fieldmap *f = &m->f[i];
        free(f->item);
        for (int s = 0; s < 2; s++) {
            free(f->remote[s]);
            for (size_t j = 0; j < f->nvm[s]; j++) {
                free(f->vm[s][j].canon);
                for (size_t k = 0; k < f->vm[s][j].n; k++)
                    free(f->vm[s][j].remote[k]);
                free(f->vm[s][j].remote);
            }
            free(f->vm[s]);
        }
    }
    free(m->f);
    for (int s = 0; s < 2; s++) {
        free(m->rfields[s]);
        cJSON_Delete(m->defaults[s]);
    }
    free(m->items);
    people_map_free(m->people);
    free(m);
}

static int line_of(const config_setting_t *s)
{
    return (int)config_setting_source_line(s);
}

static void load_values(const config_setting_t *vs, struct fieldmap *f, int s, const char *file,
                        struct strbuf *err)
{
    if (config_setting_type(vs) != CONFIG_TYPE_GROUP) {
        conf_add_error(err, file, line_of(vs), "'%s' must be a group: canonical = [\"remote\", ...];",
                values_key[s]);
        return;
    }
    int n = config_setting_length(vs);
    f->vm[s] = xcalloc((size_t)n + 1, sizeof(*f->vm[s]));
    f->has_vm[s] = 1;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(vs, (unsigned)i);
        struct valmap *v = &f->vm[s][f->nvm[s]];
        int t = config_setting_type(e);
        if (t == CONFIG_TYPE_STRING) {
            v->remote = xcalloc(1, sizeof(char *));
            v->remote[0] = xstrdup(config_setting_get_string(e));
            v->n = 1;
        } else if (t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST) {
            int k = config_setting_length(e);
            v->remote = xcalloc((size_t)k + 1, sizeof(char *));
            for (int j = 0; j < k; j++) {
                const char *str = config_setting_get_string_elem(e, j);
                if (!str) {
                    conf_add_error(err, file, line_of(e), "value map entry '%s' must list strings",
                            config_setting_name(e));
                    continue;
                }
                v->remote[v->n++] = xstrdup(str);
            }
        } else {
            conf_add_error(err, file, line_of(e), "value map entry '%s' must be a string or a list",
                    config_setting_name(e));
            continue;
        }
        if (v->n == 0) {
            conf_add_error(err, file, line_of(e), "value map entry '%s' is empty", config_setting_name(e));
            free(v->remote);
            continue;
        }
        v->canon = xstrdup(config_setting_name(e));
        f->nvm[s]++;
    }
}

static int parse_enum(const char *v, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

static void load_field(const config_setting_t *fs, struct mapping *m, const char *file,
                       struct strbuf *err)
{
    static const char *const dirs[] = {"both", "to_tracker", "to_crm", NULL};
    static const char *const policies[] = {"manual", "crm_wins", "tracker_wins", "newest_wins",
                                           NULL};
    static const char *const known[] = {"item", "crm", "tracker", "direction", "conflict",
                                        "crm_values", "tracker_values", NULL};
    if (config_setting_type(fs) != CONFIG_TYPE_GROUP) {
        conf_add_error(err, file, line_of(fs), "each entry of 'fields' must be a group { item = ...; }");
        return;
    }
    for (int i = 0; i < config_setting_length(fs); i++) {
        const config_setting_t *c = config_setting_get_elem(fs, (unsigned)i);
        if (parse_enum(config_setting_name(c), known) < 0)
            conf_add_error(err, file, line_of(c), "unknown field setting '%s'", config_setting_name(c));
    }
    const char *item = NULL, *dir = "both", *pol = "manual";
    if (!config_setting_lookup_string(fs, "item", &item)) {
        conf_add_error(err, file, line_of(fs), "field entry is missing 'item'");
        return;
    }
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->f[i].item, item) == 0)
            conf_add_error(err, file, line_of(fs), "item field '%s' is mapped twice", item);
    struct fieldmap *f = &m->f[m->n++];
    f->item = xstrdup(item);
    for (int s = 0; s < 2; s++) {
        const char *r = NULL;
        if (config_setting_lookup_string(fs, side_key[s], &r))
            f->remote[s] = xstrdup(r);
        const config_setting_t *vs = config_setting_get_member(fs, values_key[s]);
        if (vs)
            load_values(vs, f, s, file, err);
    }
    if (!f->remote[0] && !f->remote[1])
        conf_add_error(err, file, line_of(fs), "item field '%s' is mapped on neither side", item);
    (void)config_setting_lookup_string(fs, "direction", &dir);
    (void)config_setting_lookup_string(fs, "conflict", &pol);
    int d = parse_enum(dir, dirs), p = parse_enum(pol, policies);
    if (d < 0)
        conf_add_error(err, file, line_of(fs), "direction '%s' must be both, to_tracker or to_crm", dir);
    if (p < 0)
        conf_add_error(err, file, line_of(fs),
                "conflict '%s' must be manual, crm_wins, tracker_wins or newest_wins", pol);
    f->dir = d < 0 ? DIR_BOTH : (enum field_dir)d;
    f->policy = p < 0 ? POLICY_MANUAL : (enum conflict_policy)p;
}

static cJSON *group_to_json(const config_setting_t *g)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; g && i < config_setting_length(g); i++) {
        const config_setting_t *c = config_setting_get_elem(g, (unsigned)i);
        switch (config_setting_type(c)) {
        case CONFIG_TYPE_STRING:
            cJSON_AddStringToObject(o, config_setting_name(c), config_setting_get_string(c));
            break;
        case CONFIG_TYPE_INT:
            cJSON_AddNumberToObject(o, config_setting_name(c), config_setting_get_int(c));
            break;
        case CONFIG_TYPE_BOOL:
            cJSON_AddBoolToObject(o, config_setting_name(c), config_setting_get_bool(c));
            break;
        default:
            break;
        }
    }
    return o;
}

static void build_lists(struct mapping *m)
{
    m->items = xcalloc(m->n + 1, sizeof(char *));
    for (int s = 0; s < 2; s++) {
        m->rfields[s] = xcalloc(m->n + 1, sizeof(char *));
        size_t k = 0;
        for (size_t i = 0; i < m->n; i++)
            if (m->f[i].remote[s])
                m->rfields[s][k++] = m->f[i].remote[s];
    }
    for (size_t i = 0; i < m->n; i++)
        m->items[i] = m->f[i].item;
}

static enum cb_status load_config(config_t *lc, const char *file, struct mapping **out,
                                  struct strbuf *err)
{
    struct strbuf errs = STRBUF_INIT;
    struct mapping *m = xcalloc(1, sizeof(*m));
    const config_setting_t *fields = config_lookup(lc, "fields");
    if (!fields || (config_setting_type(fields) != CONFIG_TYPE_LIST &&
                    config_setting_type(fields) != CONFIG_TYPE_ARRAY)) {
        conf_add_error(&errs, file, fields ? line_of(fields) : 1,
                "'fields' must be a list: fields = ( { item = \"title\"; ... } );");
    } else {
        m->f = xcalloc((size_t)config_setting_length(fields) + 1, sizeof(*m->f));
        for (int i = 0; i < config_setting_length(fields); i++)
            load_field(config_setting_get_elem(fields, (unsigned)i), m, file, &errs);
    }
    const config_setting_t *defs = config_lookup(lc, "defaults");
    for (int s = 0; s < 2; s++)
        m->defaults[s] = group_to_json(defs ? config_setting_get_member(defs, side_key[s]) : NULL);
    m->people = people_map_load(config_lookup(lc, "people"), file, &errs);
    int skew = 120;
    (void)config_lookup_int(lc, "skew", &skew);
    m->skew_ms = (long)skew * 1000;
    if (errs.len) {
        strbuf_reset(err);
        (void)strbuf_add(err, errs.buf, errs.len);
        strbuf_trim_end(err);
        strbuf_release(&errs);
        mapping_free(m);
        return CB_ERR_CONFIG;
    }
    strbuf_release(&errs);
    build_lists(m);
    *out = m;
    return CB_OK;
}

enum cb_status mapping_load(const char *path, const char *crm_type, const char *tracker_type,
                            struct mapping **out, struct strbuf *err)
{
    config_t lc;
    config_init(&lc);
    const char *name = path;
    int ok;
    if (path) {
        ok = config_read_file(&lc, path);
    } else {
        const char *text = mapping_default_text(crm_type, tracker_type);
        if (!text) {
            strbuf_setf(err, "no built-in mapping for %s <-> %s: name a mapping file in the pair",
                        crm_type, tracker_type);
            config_destroy(&lc);
            return CB_ERR_CONFIG;
        }
        name = "built-in mapping";
        ok = config_read_string(&lc, text);
    }
    if (ok != CONFIG_TRUE) {
        const char *f = config_error_file(&lc);
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            strbuf_setf(err, "cannot read mapping file '%s'", name);
        else
            strbuf_setf(err, "%s:%d: %s", f ? f : name, config_error_line(&lc),
                        config_error_text(&lc));
        config_destroy(&lc);
        return CB_ERR_CONFIG;
    }
    enum cb_status st = load_config(&lc, name, out, err);
    config_destroy(&lc);
    return st;
}

static const struct fieldmap *find_field(const struct mapping *m, const char *item)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->f[i].item, item) == 0)
            return &m->f[i];
    return NULL;
}

const char *const *mapping_remote_fields(const struct mapping *m, enum side s)
{
    return m->rfields[s];
}

const char *const *mapping_item_fields(const struct mapping *m)
{
    return m->items;
}

/* Remote value -> canonical, NULL when the map has no entry for it. */
static const char *read_map(const struct fieldmap *f, int s, const char *remote)
{
    for (size_t i = 0; i < f->nvm[s]; i++)
        for (size_t k = 0; k < f->vm[s][i].n; k++)
            if (strcasecmp(f->vm[s][i].remote[k], remote) == 0)
                return f->vm[s][i].canon;
    return NULL;
}

/* Canonical -> remote value to write, NULL when the side cannot express it. */
static const char *write_map(const struct fieldmap *f, int s, const char *canon)
{
    for (size_t i = 0; i < f->nvm[s]; i++)
        if (strcmp(f->vm[s][i].canon, canon) == 0)
            return f->vm[s][i].remote[0];
    return NULL;
}

static const cJSON *pseudo_value(const struct remote_view *r, const char *name, cJSON **tmp)
{
    const char *v = NULL;
    if (strcmp(name, "$key") == 0)
        v = r->key;
    else if (strcmp(name, "$url") == 0)
        v = r->url;
    else if (strcmp(name, "$id") == 0)
        v = r->id;
    *tmp = v ? cJSON_CreateString(v) : cJSON_CreateNull();
    return *tmp;
}

cJSON *mapping_to_item(const struct mapping *m, enum side s, const struct remote_view *r,
                       struct strbuf *warn)
{
    cJSON *item = cJSON_CreateObject();
    for (size_t i = 0; i < m->n; i++) {
        const struct fieldmap *f = &m->f[i];
        if (!f->remote[s])
            continue;
        cJSON *tmp = NULL;
        const cJSON *v = f->remote[s][0] == '$'
                             ? pseudo_value(r, f->remote[s], &tmp)
                             : cJSON_GetObjectItemCaseSensitive(r->fields, f->remote[s]);
        if (!v)
            continue; /* not delivered: unknown, not empty */
        cJSON *person = people_map_canon(m->people, s, v);
        if (person) {
            cJSON_AddItemToObject(item, f->item, person);
        } else if (f->has_vm[s] && cJSON_IsString(v)) {
            const char *canon = read_map(f, s, v->valuestring);
            if (!canon && warn)
                (void)strbuf_addf(warn, "%s value '%s' of '%s' has no mapping; ", side_name(s),
                                  v->valuestring, f->remote[s]);
            cJSON_AddItemToObject(item, f->item, cJSON_CreateString(canon ? canon : v->valuestring));
        } else {
            cJSON_AddItemToObject(item, f->item, cJSON_Duplicate(v, 1));
        }
        cJSON_Delete(tmp);
    }
    item_normalize(item);
    return item;
}

int mapping_flows(const struct mapping *m, const char *field, enum side from)
{
    const struct fieldmap *f = find_field(m, field);
    if (!f)
        return 0;
    if (f->dir == DIR_BOTH)
        return 1;
    return f->dir == (from == SIDE_CRM ? DIR_TO_TRACKER : DIR_TO_CRM);
}

cJSON *mapping_to_remote(const struct mapping *m, enum side s, const cJSON *patch,
                         struct strbuf *warn)
{
    cJSON *out = cJSON_CreateObject();
    const cJSON *v;
    cJSON_ArrayForEach(v, patch)
    {
        const struct fieldmap *f = find_field(m, v->string);
        if (!f || !f->remote[s] || f->remote[s][0] == '$' || !mapping_flows(m, f->item, SIDE_OTHER(s)))
            continue;
        if (people_map_is_person_field(m->people, s, f->remote[s])) {
            cJSON *id = people_map_resolve(m->people, s, f->item, v);
            if (id)
                cJSON_AddItemToObject(out, f->remote[s], id);
            else if (warn)
                (void)strbuf_addf(warn, "'%s' person '%s' has no user on the %s side: left as it is; ",
                                  f->item, cJSON_IsString(v) ? v->valuestring : "?", side_name(s));
        } else if (f->has_vm[s] && cJSON_IsString(v)) {
            const char *w = write_map(f, s, v->valuestring);
            if (!w) {
                if (warn)
                    (void)strbuf_addf(warn, "'%s' value '%s' cannot be written to %s field '%s'; ",
                                      f->item, v->valuestring, side_name(s), f->remote[s]);
                continue;
            }
            cJSON_AddStringToObject(out, f->remote[s], w);
        } else {
            cJSON_AddItemToObject(out, f->remote[s], cJSON_Duplicate(v, 1));
        }
    }
    return out;
}

cJSON *mapping_roundtrip(const struct mapping *m, enum side s, const char *field, const cJSON *v)
{
    const struct fieldmap *f = find_field(m, field);
    if (!f || !f->remote[s])
        return NULL;
    if (people_map_is_person_field(m->people, s, f->remote[s]))
        return people_map_roundtrip(m->people, s, v);
    if (f->has_vm[s] && cJSON_IsString(v)) {
        const char *w = write_map(f, s, v->valuestring);
        const char *back = w ? read_map(f, s, w) : NULL;
        return back ? cJSON_CreateString(back) : NULL;
    }
    return cJSON_Duplicate(v, 1);
}

const cJSON *mapping_create_defaults(const struct mapping *m, enum side s)
{
    return m->defaults[s];
}

enum conflict_policy mapping_policy(const struct mapping *m, const char *field)
{
    const struct fieldmap *f = find_field(m, field);
    return f ? f->policy : POLICY_MANUAL;
}

long mapping_skew_ms(const struct mapping *m)
{
    return m->skew_ms;
}

void mapping_set_people(struct mapping *m, enum side s, struct person_list *users,
                        const char *const *person_fields)
{
    people_map_set_side(m->people, s, users, person_fields);
}

cJSON *mapping_take_unmapped(struct mapping *m)
{
    return people_map_take_unmapped(m->people);
}

char *mapping_person_id(const struct mapping *m, enum side s, const char *name)
{
    const char *id = name ? people_map_user(m->people, s, name) : NULL;
    return id ? xstrdup(id) : NULL;
}

int mapping_person_known(const struct mapping *m, enum side s, const char *name)
{
    return people_map_known(m->people, s, name);
}

int mapping_holds(const struct mapping *m, const char *field, enum side s)
{
    const struct fieldmap *f = find_field(m, field);
    return f && f->remote[s];
}
