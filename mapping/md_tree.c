/*
 * The representation every rich-text format goes through (markdown_p.h): UTF-8 and entity
 * helpers, marked text and its canonical form, the block tree with md_tidy, and the builder the
 * ADF and HTML readers feed. It reads and writes no format: markdown is parsed in md_parse.c and
 * written in md_render.c, ADF and HTML in richtext_adf.c and richtext_html.c.
 */
#include "mapping/markdown_p.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- characters -------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes available) with its code point, or 0. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
    static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
    unsigned c = s[0];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xC2 && c <= 0xDF ? 2
                 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    if (len <= 1 || n < len) {
        *cp = c;
        return n < len ? 0 : len;
    }
    unsigned v = c & (0x7Fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3Fu);
    }
    if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* The character at s[i] (or before s[i]), as a code point; '\n' outside the string. */
unsigned md_cp_at(const char *s, size_t n, size_t i)
{
    unsigned cp = '\n';
    if (i < n && !utf8_decode((const unsigned char *)s + i, n - i, &cp))
        cp = 0xFFFD;
    return cp;
}

unsigned md_cp_before(const char *s, size_t i)
{
    size_t j = i;
    if (!i)
        return '\n';
    while (j > 0 && i - j < 4 && ((unsigned char)s[j - 1] & 0xC0) == 0x80)
        j--;
    if (j > 0 && i - j < 4)
        j--;
    unsigned cp;
    if (utf8_decode((const unsigned char *)s + j, i - j, &cp) == i - j)
        return cp;
    return (unsigned char)s[i - 1];
}

void md_utf8_put(struct strbuf *sb, unsigned cp)
{
    char b[4];
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        strbuf_addch(sb, (char)cp);
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3F));
        strbuf_add(sb, b, 2);
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12), b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        strbuf_add(sb, b, 3);
    } else {
        b[0] = (char)(0xF0 | cp >> 18), b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F));
        strbuf_add(sb, b, 4);
    }
}

char *md_utf8_clean(const char *s)
{
    struct strbuf sb = STRBUF_INIT;
    size_t n = s ? strlen(s) : 0, i = 0;
    while (i < n) {
        unsigned cp;
        size_t len = utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (len) {
            strbuf_add(&sb, s + i, len);
            i += len;
        } else {
            md_utf8_put(&sb, 0xFFFD);
            i++;
        }
    }
    return strbuf_detach(&sb);
}

static const struct {
    const char *name;
    unsigned cp;
} entities[] = {
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},        {"quot", '"'},     {"apos", '\''},
    {"nbsp", 0xA0},    {"copy", 0xA9},    {"reg", 0xAE},      {"trade", 0x2122}, {"hellip", 0x2026},
    {"mdash", 0x2014}, {"ndash", 0x2013}, {"lsquo", 0x2018},  {"rsquo", 0x2019}, {"ldquo", 0x201C},
    {"rdquo", 0x201D}, {"laquo", 0xAB},   {"raquo", 0xBB},    {"bull", 0x2022},  {"middot", 0xB7},
    {"euro", 0x20AC},  {"yen", 0xA5},     {"pound", 0xA3},    {"cent", 0xA2},    {"deg", 0xB0},
    {"times", 0xD7},   {"divide", 0xF7},  {"sect", 0xA7},     {"para", 0xB6},    {"shy", 0xAD},
    {"ensp", 0x2002},  {"emsp", 0x2003},  {"thinsp", 0x2009}, {"zwj", 0x200D},   {"zwnj", 0x200C},
    {"larr", 0x2190},  {"rarr", 0x2192},  {"uarr", 0x2191},   {"darr", 0x2193},  {"iexcl", 0xA1},
    {"iquest", 0xBF},  {"plusmn", 0xB1},  {"frac12", 0xBD},   {"micro", 0xB5},
};

static int hex_value(int c)
{
    return is_digit(c)                              ? c - '0'
           : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
                                                    : -1;
}

size_t md_entity(const char *s, unsigned *cp)
{
    size_t i = 1;
    if (s[1] == '#') {
        int hex = s[2] == 'x' || s[2] == 'X', base = hex ? 16 : 10;
        size_t start = i = hex ? 3 : 2;
        unsigned v = 0;
        while (i - start < (hex ? 6u : 7u) && hex_value(s[i]) >= 0 && hex_value(s[i]) < base)
            v = v * (unsigned)base + (unsigned)hex_value(s[i++]);
        if (i == start || s[i] != ';')
            return 0;
        *cp = v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) ? 0xFFFD : v;
        return i + 1;
    }
    while (i < 33 && is_alnum(s[i]))
        i++;
    if (i == 1 || s[i] != ';')
        return 0;
    for (size_t k = 0; k < sizeof entities / sizeof entities[0]; k++) {
        if (strlen(entities[k].name) == i - 1 && !memcmp(entities[k].name, s + 1, i - 1)) {
            *cp = entities[k].cp;
            return i + 1;
        }
    }
    return 0;
}

void *md_vec_grow(void *p, size_t *alloc, size_t need, size_t size)
{
    if (need <= *alloc)
        return p;
    size_t n = *alloc ? *alloc : 16;
    while (n < need)
        n *= 2;
    *alloc = n;
    return xrealloc(p, n * size);
}

/* ---- marked text ------------------------------------------------------------------------- */

static int href_unsafe(const char *h)
{
    static const char *const bad[] = {"javascript:", "vbscript:", "data:"};
    while (*h && (unsigned char)*h <= ' ')
        h++;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!strncasecmp(h, bad[i], strlen(bad[i])))
            return 1;
    return 0;
}

/* Interns href with spaces and control characters percent-encoded; returns 1 + its index. */
static unsigned text_href(struct md_text *t, const char *href)
{
    struct strbuf sb = STRBUF_INIT;
    for (const unsigned char *p = (const unsigned char *)href; *p; p++) {
        if (*p <= ' ' || *p == 0x7F)
            strbuf_addf(&sb, "%%%02X", *p);
        else
            strbuf_addch(&sb, (char)*p);
    }
    if (t->nhrefs && !strcmp(t->hrefs[t->nhrefs - 1], sb.buf)) {
        strbuf_release(&sb);
        return (unsigned)t->nhrefs;
    }
    t->hrefs = md_vec_grow(t->hrefs, &t->ahrefs, t->nhrefs + 1, sizeof *t->hrefs);
    t->hrefs[t->nhrefs++] = strbuf_detach(&sb);
    return (unsigned)t->nhrefs;
}

static void text_grow(struct md_text *t, size_t extra)
{
    if (t->len + extra + 1 <= t->alloc)
        return;
    size_t n = t->alloc ? t->alloc : 64;
    while (n < t->len + extra + 1)
        n *= 2;
    t->s = xrealloc(t->s, n);
    t->m = xrealloc(t->m, n);
    t->h = xrealloc(t->h, n * sizeof *t->h);
    t->alloc = n;
}

void md_text_add(struct md_text *t, const char *s, size_t len, unsigned marks, const char *href)
{
    unsigned h = 0;
    if (!len)
        return;
    if ((marks & MD_LINK) && href && !href_unsafe(href))
        h = text_href(t, href);
    else
        marks &= ~(unsigned)MD_LINK;
    text_grow(t, len);
    memcpy(t->s + t->len, s, len);
    memset(t->m + t->len, (int)(marks & ~(unsigned)MD_HARD), len);
    for (size_t i = 0; i < len; i++)
        t->h[t->len + i] = h;
    t->len += len;
    t->s[t->len] = '\0';
}

void md_text_break(struct md_text *t, int hard)
{
    text_grow(t, 1);
    t->s[t->len] = '\n';
    t->m[t->len] = hard ? MD_HARD : 0;
    t->h[t->len] = 0;
    t->s[++t->len] = '\0';
}

void md_text_free(struct md_text *t)
{
    for (size_t i = 0; i < t->nhrefs; i++)
        free(t->hrefs[i]);
    free(t->hrefs);
    free(t->s);
    free(t->m);
    free(t->h);
    memset(t, 0, sizeof *t);
}

static const char *text_link(const struct md_text *t, size_t i)
{
    return t->h[i] ? t->hrefs[t->h[i] - 1] : NULL;
}

static int same_link(const struct md_text *a, size_t i, const struct md_text *b, size_t j)
{
    return (a == b && a->h[i] == b->h[j]) || str_eq(text_link(a, i), text_link(b, j));
}

int md_text_next(const struct md_text *t, size_t *pos, struct md_span *sp)
{
    size_t i = *pos, j = i + 1;
    if (i >= t->len)
        return 0;
    if (t->s[i] != '\n')
        while (j < t->len && t->s[j] != '\n' && t->m[j] == t->m[i] && same_link(t, j, t, i))
            j++;
    sp->s = t->s + i;
    sp->len = j - i;
    sp->marks = t->m[i];
    sp->href = text_link(t, i);
    *pos = j;
    return 1;
}

/* Appends src[a, b) to dst keeping the marks in mask. */
void md_text_copy(struct md_text *dst, const struct md_text *src, size_t a, size_t b, unsigned mask)
{
    size_t pos = a;
    struct md_span sp;
    while (pos < b && md_text_next(src, &pos, &sp)) {
        size_t len = sp.len < b - (size_t)(sp.s - src->s) ? sp.len : b - (size_t)(sp.s - src->s);
        if (sp.s[0] == '\n')
            md_text_break(dst, sp.marks & MD_HARD);
        else
            md_text_add(dst, sp.s, len, sp.marks & mask, sp.href);
    }
}

int md_text_eq(const struct md_text *a, const struct md_text *b)
{
    if (a->len != b->len || (a->len && (memcmp(a->s, b->s, a->len) || memcmp(a->m, b->m, a->len))))
        return 0;
    for (size_t i = 0; i < a->len; i++)
        if ((i == 0 || a->h[i] != a->h[i - 1] || b->h[i] != b->h[i - 1]) && !same_link(a, i, b, i))
            return 0;
    return 1;
}

/* Line endings to '\n'; a '\n' in code becomes a space, and in a heading anything does. */
static void text_fold_lines(struct md_text *t, int heading)
{
    size_t o = 0;
    for (size_t i = 0; i < t->len; i++) {
        char c = t->s[i];
        if (c == '\r' && i + 1 < t->len && t->s[i + 1] == '\n')
            continue;
        t->s[o] = c == '\r' ? '\n' : c, t->m[o] = t->m[i], t->h[o] = t->h[i];
        if (t->s[o] == '\n' && (heading || (t->m[o] & MD_CODESPAN))) {
            t->s[o] = ' ';
            t->m[o] &= ~(unsigned)MD_HARD;
        } else if (t->s[o] == '\n') {
            t->m[o] &= MD_HARD;
            t->h[o] = 0;
        }
        o++;
    }
    t->len = o;
    if (t->s)
        t->s[o] = '\0';
}

static int trimmable(const struct md_text *t, size_t i)
{
    return is_blank_char(t->s[i]) && !(t->m[i] & MD_CODESPAN);
}

/* Unicode whitespace at an emphasis edge loses the mark (markdown cannot open or close there). */
void md_text_unmark_edges(struct md_text *t, unsigned mark)
{
    size_t i = 0;
    while (i < t->len) {
        if (!(t->m[i] & mark)) {
            i++;
            continue;
        }
        size_t a = i, b = i, end, len;
        unsigned cp;
        while (b < t->len && (t->m[b] & mark))
            b++;
        end = b;
        while (a < b && (len = utf8_decode((unsigned char *)t->s + a, b - a, &cp)) && cp_is_ws(cp))
            for (size_t k = 0; k < len; k++)
                t->m[a++] &= ~mark;
        while (b > a) {
            size_t k = b - 1;
            while (k > a && ((unsigned char)t->s[k] & 0xC0) == 0x80)
                k--;
            if (!utf8_decode((unsigned char *)t->s + k, b - k, &cp) || !cp_is_ws(cp))
                break;
            for (size_t j = k; j < b; j++)
                t->m[j] &= ~mark;
            b = k;
        }
        i = end;
    }
}

/* Canonical form: lines trimmed, no break at either end, a soft break next to another break
 * dropped, emphasis not starting or ending on whitespace. */
void md_text_tidy(struct md_text *t, int heading)
{
    struct md_text o = {0};
    int hard = 0, soft = 0;
    text_fold_lines(t, heading);
    for (size_t i = 0; i <= t->len;) {
        size_t e = i;
        while (e < t->len && t->s[e] != '\n')
            e++;
        size_t a = i, b = e;
        while (a < b && trimmable(t, a))
            a++;
        while (b > a && trimmable(t, b - 1))
            b--;
        if (a < b) {
            for (int k = 0; o.len && k < hard; k++)
                md_text_break(&o, 1);
            if (o.len && !hard && soft)
                md_text_break(&o, 0);
            hard = soft = 0;
            md_text_copy(&o, t, a, b, ~0u);
        }
        if (e < t->len && (t->m[e] & MD_HARD))
            hard++;
        else if (e < t->len)
            soft = 1;
        i = e + 1;
    }
    md_text_unmark_edges(&o, MD_EM);
    md_text_unmark_edges(&o, MD_STRONG);
    md_text_free(t);
    *t = o;
}

/* ---- tree and builder -------------------------------------------------------------------- */

struct md_node *md_node_new(enum md_type type, struct md_node *parent)
{
    struct md_node *n = xcalloc(1, sizeof *n);
    n->type = type;
    strbuf_init(&n->code, 0);
    if (parent) {
        n->parent = parent;
        if (parent->last)
            parent->last->next = n;
        else
            parent->first = n;
        parent->last = n;
    }
    return n;
}

void md_node_free(struct md_node *n)
{
    if (!n)
        return;
    for (struct md_node *c = n->first, *next; c; c = next) {
        next = c->next;
        md_node_free(c);
    }
    free(n->info);
    strbuf_release(&n->code);
    md_text_free(&n->text);
    free(n);
}

static void code_tidy(struct md_node *n)
{
    struct strbuf *c = &n->code;
    size_t o = 0;
    for (size_t i = 0; i < c->len; i++)
        if (c->buf[i] != '\r' || i + 1 == c->len || c->buf[i + 1] != '\n')
            c->buf[o++] = c->buf[i] == '\r' ? '\n' : c->buf[i];
    c->len = o;
    if (c->alloc)
        c->buf[o] = '\0';
    if (o && c->buf[o - 1] != '\n')
        strbuf_addch(c, '\n');
    if (n->info) {
        /* the first word, without backticks: what a fence's info string can carry */
        char *w = n->info, *p = n->info;
        while (*p && (unsigned char)*p <= ' ')
            p++;
        for (; *p && (unsigned char)*p > ' '; p++)
            if (*p != '`')
                *w++ = *p;
        *w = '\0';
        if (!*n->info) {
            free(n->info);
            n->info = NULL;
        }
    }
}

/* In a list item a line of blanks reads as an empty line, even inside code. */
static void code_blank_lines(struct strbuf *c)
{
    size_t o = 0, start = 0;
    for (size_t i = 0; i < c->len; i++) {
        c->buf[o++] = c->buf[i];
        if (c->buf[i] != '\n')
            continue;
        size_t k = start;
        while (k < o - 1 && is_blank_char(c->buf[k]))
            k++;
        if (k == o - 1)
            c->buf[start] = '\n', o = start + 1;
        start = o;
    }
    c->len = o;
    if (c->alloc)
        c->buf[o] = '\0';
}

static void tidy_node(struct md_node *n, int in_item)
{
    struct md_node *prev = NULL;
    if (n->type == MD_PARA || n->type == MD_HEADING)
        md_text_tidy(&n->text, n->type == MD_HEADING);
    if (n->type == MD_CODE)
        code_tidy(n);
    if (n->type == MD_CODE && in_item)
        code_blank_lines(&n->code);
    if (n->type == MD_HEADING)
        n->num = n->num < 1 ? 1 : n->num > 6 ? 6 : n->num;
    if (n->type == MD_ORDERED)
        n->num = n->num < 0 ? 0 : n->num > 999999999 ? 999999999 : n->num;
    for (struct md_node *c = n->first, *next; c; c = next) {
        next = c->next;
        tidy_node(c, in_item || n->type == MD_ITEM);
        if ((c->type == MD_PARA && !c->text.len) ||
            ((c->type == MD_QUOTE || is_list(c)) && !c->first)) {
            if (prev)
                prev->next = next;
            else
                n->first = next;
            if (n->last == c)
                n->last = prev;
            md_node_free(c);
        } else {
            prev = c;
        }
    }
}

void mdb_init(struct md_builder *b)
{
    memset(b, 0, sizeof *b);
    b->doc = b->top = md_node_new(MD_DOC, NULL);
}

static void mdb_push(struct md_builder *b, enum md_type type, int num, int implicit)
{
    b->top = md_node_new(type, b->top);
    b->top->num = num;
    b->top->implicit = (unsigned)implicit;
    if (type == MD_QUOTE || type == MD_ITEM)
        b->depth++;
}

static void mdb_pop(struct md_builder *b)
{
    if (b->top == b->doc)
        return;
    if (b->top->type == MD_QUOTE || b->top->type == MD_ITEM)
        b->depth--;
    b->top = b->top->parent;
}

/* Makes the top a container that takes blocks: an implicit list ends, a list gets an item. */
static void mdb_block_parent(struct md_builder *b)
{
    while (is_list(b->top)) {
        if (b->top->implicit)
            mdb_pop(b);
        else
            mdb_push(b, MD_ITEM, 0, 1);
    }
}

void mdb_open(struct md_builder *b, enum md_type type, int num)
{
    mdb_end(b);
    if (b->depth >= MD_MAX_DEPTH) {
        b->ignored++;
        return;
    }
    if (type == MD_ITEM) {
        while (b->top->implicit && !is_list(b->top))
            mdb_pop(b);
        if (!is_list(b->top))
            mdb_push(b, MD_BULLETS, 0, 1);
    } else {
        mdb_block_parent(b);
    }
    mdb_push(b, type, num, 0);
}

void mdb_close(struct md_builder *b)
{
    mdb_end(b);
    if (b->ignored) {
        b->ignored--;
        return;
    }
    while (b->top->implicit)
        mdb_pop(b);
    mdb_pop(b);
}

void mdb_end(struct md_builder *b)
{
    b->leaf = NULL;
}

static struct md_node *mdb_block(struct md_builder *b, enum md_type type)
{
    mdb_end(b);
    mdb_block_parent(b);
    return md_node_new(type, b->top);
}

void mdb_heading(struct md_builder *b, int level)
{
    b->leaf = mdb_block(b, MD_HEADING);
    b->leaf->num = level;
}

void mdb_text(struct md_builder *b, const char *s, size_t len, unsigned marks, const char *href)
{
    if (!len)
        return;
    if (!b->leaf)
        b->leaf = mdb_block(b, MD_PARA);
    md_text_add(&b->leaf->text, s, len, marks, href);
}

void mdb_break(struct md_builder *b, int hard)
{
    if (b->leaf)
        md_text_break(&b->leaf->text, hard);
}

int mdb_line_empty(const struct md_builder *b)
{
    return !b->leaf || !b->leaf->text.len || b->leaf->text.s[b->leaf->text.len - 1] == '\n';
}

void mdb_code(struct md_builder *b, const char *lang, const char *code, size_t len)
{
    struct md_node *n = mdb_block(b, MD_CODE);
    n->info = lang && *lang ? xstrdup(lang) : NULL;
    strbuf_add(&n->code, code, len);
}

void mdb_code_take(struct md_builder *b, char **lang, struct strbuf *code)
{
    char *clean = md_utf8_clean(code->buf);
    mdb_code(b, *lang, clean, strlen(clean));
    free(clean);
    free(*lang);
    *lang = NULL;
    strbuf_reset(code);
}

const char *md_line_next(const char *s, size_t *len)
{
    *len = strcspn(s, "\r\n");
    s += *len;
    return s + (s[0] == '\r' && s[1] == '\n' ? 2 : s[0] ? 1 : 0);
}

void mdb_rule(struct md_builder *b)
{
    (void)mdb_block(b, MD_RULE);
}

void md_tidy(struct md_node *doc)
{
    tidy_node(doc, 0);
}

struct md_node *mdb_finish(struct md_builder *b)
{
    struct md_node *doc = b->doc;
    md_tidy(doc);
    memset(b, 0, sizeof *b);
    return doc;
}
