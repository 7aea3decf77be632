/*
 * Record filters evaluated on a record's wire JSON (see filter_expr.h): a small and/or tree of
 * conditions, Zoho's criteria parser, and the matcher. It does no network and knows no service's
 * field types beyond the JSON shapes values come in; server-side filters (JQL, Fxiaoke query
 * filters) are built by their connectors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/filter_expr.h"

enum fkind { FK_COND, FK_AND, FK_OR };

struct filter {
    enum fkind kind;
    char *field; /* FK_COND */
    enum filter_op op;
    char **vals;
    size_t n_vals;
    struct filter **kids; /* FK_AND / FK_OR */
    size_t n_kids;
};

static struct filter *node_new(enum fkind kind)
{
    struct filter *f = xcalloc(1, sizeof(*f));
    f->kind = kind;
    return f;
}

static void kid_add(struct filter *f, struct filter *kid)
{
    f->kids = xrealloc(f->kids, (f->n_kids + 1) * sizeof(*f->kids));
    f->kids[f->n_kids++] = kid;
}

static void val_add(struct filter *f, char *v)
{
    f->vals = xrealloc(f->vals, (f->n_vals + 1) * sizeof(*f->vals));
    f->vals[f->n_vals++] = v;
}

void filter_free(struct filter *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_kids; i++)
        filter_free(f->kids[i]);
    for (size_t i = 0; i < f->n_vals; i++)
        free(f->vals[i]);
    free(f->kids);
    free(f->vals);
    free(f->field);
    free(f);
}

struct filter *filter_new_all(void)
{
    return node_new(FK_AND);
}

void filter_add(struct filter *f, const char *field, enum filter_op op, const char *const *values,
                size_t n_values)
{
    struct filter *c = node_new(FK_COND);
    c->field = xstrdup(field);
    c->op = op;
    for (size_t i = 0; i < n_values; i++)
        val_add(c, xstrdup(values[i]));
    kid_add(f, c);
}

void filter_each_field(const struct filter *f, void (*fn)(void *arg, const char *field), void *arg)
{
    if (f->field)
        fn(arg, f->field);
    for (size_t i = 0; i < f->n_kids; i++)
        filter_each_field(f->kids[i], fn, arg);
}

/* ---- Zoho criteria ----------------------------------------------------------------------- */

struct zparse {
    const char *s, *p; /* whole text, position */
    struct strbuf *err;
};

static int zfail(struct zparse *z, const char *what)
{
    if (!z->err->len)
        strbuf_setf(z->err, "bad zoho criteria at character %d: %s", (int)(z->p - z->s) + 1, what);
    return -1;
}

static void skip_space(struct zparse *z)
{
    while (*z->p == ' ' || *z->p == '\t')
        z->p++;
}

static const struct {
    const char *name;
    enum filter_op op;
} zoho_ops[] = {{"equals", FILTER_EQ},
                {"not_equal", FILTER_NE},
                {"starts_with", FILTER_STARTS},
                {"in", FILTER_IN},
                {NULL, FILTER_EQ}};

/* Reads "<name>:" up to the colon into *out (owned). */
static int read_name(struct zparse *z, const char *what, char **out)
{
    size_t n = strspn(z->p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    if (!n || z->p[n] != ':')
        return zfail(z, what);
    *out = xstrndup(z->p, n);
    z->p += n + 1;
    return 0;
}

/* Reads the value part up to the unescaped ')', split on unescaped ',' when list is set. */
static int read_values(struct zparse *z, struct filter *c, int list)
{
    struct strbuf v = STRBUF_INIT;
    for (;; z->p++) {
        char ch = *z->p;
        if (!ch) {
            strbuf_release(&v);
            return zfail(z, "missing ')' after the value");
        }
        if (ch == '\\' && z->p[1]) {
            (void)strbuf_addch(&v, *++z->p);
            continue;
        }
        if (ch == '(') {
            strbuf_release(&v);
            return zfail(z, "a '(' in a value must be escaped as '\\('");
        }
        if (ch == ')' || (ch == ',' && list)) {
            val_add(c, strbuf_detach(&v));
            if (ch == ')')
                break;
            continue;
        }
        (void)strbuf_addch(&v, ch);
    }
    strbuf_release(&v);
    z->p++;
    return 0;
}

/* After '(': "Field:operator:value)". */
static int parse_cond(struct zparse *z, struct filter **out)
{
    struct filter *c = node_new(FK_COND);
    char *op = NULL;
    int rc = read_name(z, "expected 'Field_API_name:operator:value'", &c->field);
    if (!rc)
        rc = read_name(z, "expected an operator after the field name", &op);
    int k = 0;
    while (!rc && zoho_ops[k].name && strcmp(zoho_ops[k].name, op))
        k++;
    if (!rc && !zoho_ops[k].name) {
        z->p -= strlen(op) + 1;
        rc = zfail(z, "the operator must be equals, not_equal, starts_with or in");
    }
    if (!rc) {
        c->op = zoho_ops[k].op;
        rc = read_values(z, c, c->op == FILTER_IN);
    }
    free(op);
    if (rc)
        filter_free(c);
    else
        *out = c;
    return rc;
}

static int parse_group(struct zparse *z, struct filter **out);

/* A run of groups joined by one connective: "(..)and(..)and(..)". */
static int parse_chain(struct zparse *z, struct filter **out)
{
    struct filter *first = NULL, *chain = NULL;
    if (parse_group(z, &first))
        return -1;
    for (;;) {
        skip_space(z);
        enum fkind k = strncasecmp(z->p, "and", 3) == 0  ? FK_AND
                       : strncasecmp(z->p, "or", 2) == 0 ? FK_OR
                                                         : FK_COND;
        if (k == FK_COND)
            break;
        if (chain && chain->kind != k) {
            filter_free(chain);
            return zfail(z, "group 'and' and 'or' in parentheses: ((A)and(B))or(C)");
        }
        z->p += k == FK_AND ? 3 : 2;
        if (!chain) {
            chain = node_new(k);
            kid_add(chain, first);
        }
        struct filter *next = NULL;
        if (parse_group(z, &next)) {
            filter_free(chain);
            return -1;
        }
        kid_add(chain, next);
    }
    *out = chain ? chain : first;
    return 0;
}

/* "(" then a condition or a nested chain, then ")". */
static int parse_group(struct zparse *z, struct filter **out)
{
    skip_space(z);
    if (*z->p != '(')
        return zfail(z, "expected '('");
    z->p++;
    skip_space(z);
    if (*z->p != '(')
        return parse_cond(z, out);
    if (parse_chain(z, out))
        return -1;
    skip_space(z);
    if (*z->p != ')') {
        filter_free(*out);
        *out = NULL;
        return zfail(z, "expected ')'");
    }
    z->p++;
    return 0;
}

enum cb_status filter_parse_zoho(const char *text, struct filter **out, struct strbuf *err)
{
    *out = NULL;
    strbuf_reset(err);
    struct zparse z = {text, text, err};
    struct filter *f = NULL;
    if (parse_chain(&z, &f))
        return CB_ERR_CONFIG;
    skip_space(&z);
    if (*z.p) {
        filter_free(f);
        zfail(&z, "unexpected text after the criteria");
        return CB_ERR_CONFIG;
    }
    *out = f;
    return CB_OK;
}

/* ---- matching ---------------------------------------------------------------------------- */

/* The text a wire value compares as (borrowed, or in buf); NULL when it has none. */
static const char *value_text(const cJSON *v, char *buf, size_t cap)
{
    if (cJSON_IsString(v))
        return v->valuestring[0] ? v->valuestring : NULL;
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v) ? "true" : "false";
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == (double)(long long)d)
            snprintf(buf, cap, "%lld", (long long)d);
        else
            snprintf(buf, cap, "%.17g", d);
        return buf;
    }
    if (cJSON_IsObject(v)) {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "name"));
        return s ? s : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "id"));
    }
    return NULL;
}

static int contains_ci(const char *t, const char *v)
{
    size_t vn = strlen(v);
    for (; *t; t++)
        if (!strncasecmp(t, v, vn))
            return 1;
    return vn == 0;
}

static int one_matches(const struct filter *c, const char *t)
{
    size_t tn = strlen(t);
    for (size_t i = 0; i < c->n_vals; i++) {
        const char *v = c->vals[i];
        size_t vn = strlen(v);
        if (c->op == FILTER_STARTS ? tn >= vn && !strncasecmp(t, v, vn)
            : c->op == FILTER_LIKE ? contains_ci(t, v)
                                   : !strcasecmp(t, v))
            return 1;
    }
    return 0;
}

/* How many texts the field has (an array counts its elements) and whether any matches. */
static int field_hits(const struct filter *c, const cJSON *v, int *n_texts)
{
    char buf[48];
    const cJSON *e;
    int hit = 0;
    *n_texts = 0;
    if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach(e, v)
        {
            const char *t = value_text(e, buf, sizeof(buf));
            *n_texts += t != NULL;
            hit = hit || (t && one_matches(c, t));
        }
        return hit;
    }
    const char *t = value_text(v, buf, sizeof(buf));
    *n_texts = t != NULL;
    return t && one_matches(c, t);
}

static int cond_match(const struct filter *c, const cJSON *rec)
{
    int n = 0;
    int hit = field_hits(c, cJSON_GetObjectItemCaseSensitive(rec, c->field), &n);
    switch (c->op) {
    case FILTER_NE:
    case FILTER_NIN:
        return !hit;
    case FILTER_EMPTY:
        return n == 0;
    case FILTER_NEMPTY:
        return n > 0;
    default:
        return hit;
    }
}

int filter_match(const struct filter *f, const cJSON *rec)
{
    if (f->kind == FK_COND)
        return cond_match(f, rec);
    for (size_t i = 0; i < f->n_kids; i++) {
        int m = filter_match(f->kids[i], rec);
        if (f->kind == FK_OR ? m : !m)
            return m;
    }
    return f->kind == FK_AND;
}
