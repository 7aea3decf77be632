/*
 * A side's user directory (people.h): a growable list of users, and lookups by id, e-mail or
 * display name. The resolution of a person between two sides (table, e-mail, name, fallback)
 * is mapping.c's; this file knows nothing of mappings or connectors.
 */
#include "mapping/people.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/strbuf.h"

void person_list_add(struct person_list *l, const char *id, const char *name, const char *email)
{
    if (l->n == l->alloc) {
        l->alloc = l->alloc ? l->alloc * 2 : 16;
        l->v = xrealloc(l->v, l->alloc * sizeof(*l->v));
    }
    struct person *p = &l->v[l->n++];
    p->id = xstrdup(id ? id : "");
    p->name = xstrdup(name && name[0] ? name : p->id);
    p->email = email && email[0] ? xstrdup(email) : NULL;
}

void person_list_release(struct person_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].id);
        free(l->v[i].name);
        free(l->v[i].email);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

const struct person *person_list_find(const struct person_list *l, const char *who)
{
    if (!l || !who || !who[0])
        return NULL;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].id, who) == 0)
            return &l->v[i];
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].email && strcasecmp(l->v[i].email, who) == 0)
            return &l->v[i];
    const struct person *found = NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].name, who) != 0)
            continue;
        if (found)
            return NULL; /* two users share the name: guessing would pick the wrong one */
        found = &l->v[i];
    }
    return found;
}

cJSON *person_to_json(const char *id, const char *name, const char *email)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id ? id : "");
    cJSON_AddStringToObject(o, "name", name && name[0] ? name : (id ? id : ""));
    if (email && email[0])
        cJSON_AddStringToObject(o, "email", email);
    return o;
}

/* ---------------------------------------------------------------- the mapping's people rules */

#include <libconfig.h>

#include "core/config.h"
#include "mapping/people_p.h"

struct people_entry {
    char *name;   /* the canonical string of this person */
    char *who[2]; /* per side: user id, e-mail or display name; NULL = no user there */
};

struct people_map {
    int match_email;
    struct people_entry *table;
    size_t n_table;
    char *fallback[2];
    struct person_list dir[2];
    char **fields[2]; /* remote fields holding users, NULL-terminated */
    cJSON *unmapped;  /* [{"side","field","name","fallback"}], de-duplicated */
};

static const char *const side_keys[2] = {"crm", "tracker"};

static char *opt_string(const config_setting_t *g, const char *name)
{
    const char *v = NULL;
    return g && config_setting_lookup_string(g, name, &v) && v[0] ? xstrdup(v) : NULL;
}

static void load_entry(struct people_map *pm, const config_setting_t *e, const char *file,
                       struct strbuf *err)
{
    struct people_entry *pe = &pm->table[pm->n_table];
    pe->name = opt_string(e, "name");
    for (int s = 0; s < 2; s++)
        pe->who[s] = opt_string(e, side_keys[s]);
    int line = (int)config_setting_source_line(e);
    if (!pe->name || (!pe->who[0] && !pe->who[1])) {
        conf_add_error(err, file, line,
                       "each people table entry needs a name and a crm or tracker user: "
                       "{ name = \"Li Wei\"; crm = \"li.wei@acme.cn\"; tracker = \"liwei\"; }");
        free(pe->name);
        free(pe->who[0]);
        free(pe->who[1]);
        return;
    }
    pm->n_table++;
}

struct people_map *people_map_load(const config_setting_t *g, const char *file, struct strbuf *err)
{
    struct people_map *pm = xcalloc(1, sizeof(*pm));
    pm->match_email = 1;
    pm->unmapped = cJSON_CreateArray();
    if (!g)
        return pm;
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        conf_add_error(err, file, (int)config_setting_source_line(g),
                       "'people' must be a group: people = { table = (...); fallback = {...}; };");
        return pm;
    }
    int b;
    if (config_setting_lookup_bool(g, "match_email", &b))
        pm->match_email = b;
    const config_setting_t *t = config_setting_get_member(g, "table");
    if (t && config_setting_type(t) != CONFIG_TYPE_LIST) {
        conf_add_error(err, file, (int)config_setting_source_line(t),
                       "'people.table' must be a list: table = ( { name = ...; }, ... );");
        t = NULL;
    }
    pm->table = xcalloc((size_t)(t ? config_setting_length(t) : 0) + 1, sizeof(*pm->table));
    for (int i = 0; t && i < config_setting_length(t); i++)
        load_entry(pm, config_setting_get_elem(t, (unsigned)i), file, err);
    const config_setting_t *fb = config_setting_get_member(g, "fallback");
    for (int s = 0; s < 2; s++)
        pm->fallback[s] = opt_string(fb, side_keys[s]);
    for (int i = 0; i < config_setting_length(g); i++) {
        const char *n = config_setting_name(config_setting_get_elem(g, (unsigned)i));
        if (strcmp(n, "match_email") && strcmp(n, "table") && strcmp(n, "fallback"))
            conf_add_error(err, file, (int)config_setting_source_line(g),
                           "unknown people setting '%s' (match_email, table, fallback)", n);
    }
    return pm;
}

static void free_fields(char **f)
{
    for (size_t i = 0; f && f[i]; i++)
        free(f[i]);
    free(f);
}

void people_map_free(struct people_map *pm)
{
    if (!pm)
        return;
    for (size_t i = 0; i < pm->n_table; i++) {
        free(pm->table[i].name);
        free(pm->table[i].who[0]);
        free(pm->table[i].who[1]);
    }
    free(pm->table);
    for (int s = 0; s < 2; s++) {
        free(pm->fallback[s]);
        person_list_release(&pm->dir[s]);
        free_fields(pm->fields[s]);
    }
    cJSON_Delete(pm->unmapped);
    free(pm);
}

void people_map_set_side(struct people_map *pm, enum side s, struct person_list *users,
                         const char *const *person_fields)
{
    person_list_release(&pm->dir[s]);
    pm->dir[s] = *users;
    memset(users, 0, sizeof(*users));
    free_fields(pm->fields[s]);
    size_t n = 0;
    while (person_fields && person_fields[n])
        n++;
    pm->fields[s] = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        pm->fields[s][i] = xstrdup(person_fields[i]);
}

int people_map_is_person_field(const struct people_map *pm, enum side s, const char *remote)
{
    for (size_t i = 0; pm->fields[s] && pm->fields[s][i]; i++)
        if (strcmp(pm->fields[s][i], remote) == 0)
            return 1;
    return 0;
}

/* Does table value `who` (id, e-mail or name) name user u? */
static int names_user(const char *who, const struct person *u)
{
    return who && (strcmp(who, u->id) == 0 || strcmp(who, u->name) == 0 ||
                   (u->email && strcasecmp(who, u->email) == 0));
}

static cJSON *mailbox(const char *name, const char *email)
{
    if (!email)
        return cJSON_CreateString(name);
    struct strbuf b = STRBUF_INIT;
    (void)strbuf_addf(&b, "%s <%s>", name, email);
    cJSON *v = cJSON_CreateString(b.buf);
    strbuf_release(&b);
    return v;
}

static cJSON *canon_of(const struct people_map *pm, enum side s, const struct person *u)
{
    for (size_t i = 0; i < pm->n_table; i++)
        if (names_user(pm->table[i].who[s], u))
            return cJSON_CreateString(pm->table[i].name);
    const struct person *d = person_list_find(&pm->dir[s], u->id);
    const char *email = u->email ? u->email : d ? d->email : NULL;
    return mailbox(u->name, email);
}

cJSON *people_map_canon(const struct people_map *pm, enum side s, const cJSON *p)
{
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "id"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "name"));
    const char *email = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "email"));
    if (!cJSON_IsObject(p) || !id || !name)
        return NULL;
    struct person u = {(char *)id, (char *)name, email && email[0] ? (char *)email : NULL};
    return canon_of(pm, s, &u);
}

/* "Li Wei <li@x.cn>" -> name "Li Wei", email "li@x.cn" (in buffers owned by the caller). */
static void split_mailbox(const char *v, struct strbuf *name, struct strbuf *email)
{
    const char *lt = strrchr(v, '<');
    size_t len = strlen(v);
    if (lt && len > 2 && v[len - 1] == '>' && lt > v) {
        (void)strbuf_add(name, v, (size_t)(lt - v));
        strbuf_trim_end(name);
        (void)strbuf_add(email, lt + 1, (size_t)(v + len - 1 - (lt + 1)));
    } else {
        (void)strbuf_add(name, v, len);
    }
}

/* The user of side s a table value names: found in the directory, or taken as an id when the
 * side has no directory. */
static const char *table_user(const struct people_map *pm, enum side s, const char *who)
{
    if (!who)
        return NULL;
    const struct person *u = person_list_find(&pm->dir[s], who);
    return u ? u->id : pm->dir[s].n == 0 ? who : NULL;
}

/* Table, e-mail, name: the user id on s, or NULL. */
static const char *match_user(const struct people_map *pm, enum side s, const char *v)
{
    struct strbuf name = STRBUF_INIT, email = STRBUF_INIT;
    split_mailbox(v, &name, &email);
    const char *id = NULL;
    for (size_t i = 0; i < pm->n_table && !id; i++) {
        const struct people_entry *e = &pm->table[i];
        if (strcmp(e->name, v) == 0 || strcmp(e->name, name.buf) == 0)
            id = table_user(pm, s, e->who[s]);
    }
    if (!id && pm->match_email && email.len) {
        const struct person *u = person_list_find(&pm->dir[s], email.buf);
        id = u && u->email && strcasecmp(u->email, email.buf) == 0 ? u->id : NULL;
    }
    if (!id && name.len) { /* a display name only one user has, or a user id typed as text */
        const struct person *u = person_list_find(&pm->dir[s], name.buf);
        id = u && (strcmp(u->name, name.buf) == 0 || strcmp(u->id, name.buf) == 0) ? u->id : NULL;
    }
    strbuf_release(&name);
    strbuf_release(&email);
    return id;
}

const char *people_map_user(const struct people_map *pm, enum side s, const char *name)
{
    return match_user(pm, s, name);
}

int people_map_known(const struct people_map *pm, enum side s, const char *name)
{
    return match_user(pm, s, name) != NULL;
}

static void note_unmapped(struct people_map *pm, enum side s, const char *field, const char *v,
                          int fallback)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, pm->unmapped)
    {
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "name")), v) &&
            !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "side")), side_name(s)) &&
            !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "field")), field))
            return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "side", side_name(s));
    cJSON_AddStringToObject(o, "field", field);
    cJSON_AddStringToObject(o, "name", v);
    cJSON_AddBoolToObject(o, "fallback", fallback);
    cJSON_AddItemToArray(pm->unmapped, o);
}

/* The user id of side s for person v: its match, else the fallback (*fallback set), else NULL. */
static const char *user_or_fallback(const struct people_map *pm, enum side s, const char *v,
                                    int *fallback)
{
    const char *id = match_user(pm, s, v);
    *fallback = !id;
    return id ? id : table_user(pm, s, pm->fallback[s]);
}

cJSON *people_map_resolve(struct people_map *pm, enum side s, const char *item_field,
                          const cJSON *v)
{
    if (!cJSON_IsString(v))
        return cJSON_IsNull(v) ? cJSON_CreateNull() : NULL;
    int fallback;
    const char *id = user_or_fallback(pm, s, v->valuestring, &fallback);
    if (fallback)
        note_unmapped(pm, s, item_field, v->valuestring, id != NULL);
    return id ? cJSON_CreateString(id) : NULL;
}

cJSON *people_map_roundtrip(const struct people_map *pm, enum side s, const cJSON *v)
{
    if (!cJSON_IsString(v))
        return cJSON_IsNull(v) ? cJSON_CreateNull() : NULL; /* null stays null */
    int fallback;
    const char *id = user_or_fallback(pm, s, v->valuestring, &fallback);
    if (!id)
        return NULL; /* s cannot hold this person */
    const struct person *u = person_list_find(&pm->dir[s], id);
    return u ? canon_of(pm, s, u) : cJSON_Duplicate(v, 1);
}

cJSON *people_map_take_unmapped(struct people_map *pm)
{
    cJSON *out = pm->unmapped;
    pm->unmapped = cJSON_CreateArray();
    return out;
}
