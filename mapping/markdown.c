/*
 * The canonical markdown: the CommonMark-subset parser (into the tree of markdown_p.h), the
 * renderer of its normal form, plain text read and written as light markup, and the marked text,
 * tree and builder the ADF and HTML converters share; it knows nothing of ADF or HTML. Unlike
 * CommonMark: no raw HTML, reference links, images or link titles (their text stays text), and
 * only ASCII punctuation counts for emphasis, so "**注意：**请" keeps its strong text.
 */
#include "mapping/markdown_p.h"
#include "mapping/richtext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- characters -------------------------------------------------------------------------- */

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

static int is_apunct(unsigned c)
{
    return c > 0 && c < 128 && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", (int)c) != NULL;
}

static int is_blank_char(int c)
{
    return c == ' ' || c == '\t';
}

static int cp_is_ws(unsigned cp)
{
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

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
static unsigned cp_at(const char *s, size_t n, size_t i)
{
    unsigned cp = '\n';
    if (i < n && !utf8_decode((const unsigned char *)s + i, n - i, &cp))
        cp = 0xFFFD;
    return cp;
}

static unsigned cp_before(const char *s, size_t i)
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

/* Something that looks like an entity, known or not: a strict reader would decode it. */
static int entity_like(const char *s)
{
    size_t i = 1;
    if (s[1] == '#')
        i += (s[2] == 'x' || s[2] == 'X') ? 2 : 1;
    size_t start = i;
    while (i - start < 32 && is_alnum(s[i]))
        i++;
    return i > start && s[i] == ';';
}

static void *vec_grow(void *p, size_t *alloc, size_t need, size_t size)
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
    t->hrefs = vec_grow(t->hrefs, &t->ahrefs, t->nhrefs + 1, sizeof *t->hrefs);
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
static void text_copy(struct md_text *dst, const struct md_text *src, size_t a, size_t b,
                      unsigned mask)
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

static int text_eq(const struct md_text *a, const struct md_text *b)
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
static void text_unmark_edges(struct md_text *t, unsigned mark)
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
static void text_tidy(struct md_text *t, int heading)
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
            text_copy(&o, t, a, b, ~0u);
        }
        if (e < t->len && (t->m[e] & MD_HARD))
            hard++;
        else if (e < t->len)
            soft = 1;
        i = e + 1;
    }
    text_unmark_edges(&o, MD_EM);
    text_unmark_edges(&o, MD_STRONG);
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

static int is_list(const struct md_node *n)
{
    return n->type == MD_BULLETS || n->type == MD_ORDERED;
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
        text_tidy(&n->text, n->type == MD_HEADING);
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

/* ---- inline parser (CommonMark's delimiter algorithm, marks recorded as byte ranges) ----- */

#define IP_DELETED 0x80
#define LINK_DEST_MAX 2048

struct delim {
    size_t pos; /* first remaining character of the run in out */
    int count, orig, prev, next;
    char ch;
    unsigned char can_open, can_close;
};

struct bracket {
    size_t pos;
    int dlast;
};

struct range {
    size_t a, b;
    unsigned mark;
    char *href;
};

struct ip {
    const char *s; /* NUL-terminated at s[n] */
    size_t n, i;
    int plain;
    struct strbuf out;
    unsigned char *f; /* per byte of out: MD_CODESPAN, MD_HARD, IP_DELETED */
    size_t af;
    struct delim *d;
    size_t nd, ad;
    int dfirst, dlast;
    struct bracket *br;
    size_t nbr, abr, bfloor; /* brackets below bfloor cannot open a link any more */
    struct range *r;
    size_t nr, ar;
    unsigned char nocode[33]; /* no closing backtick string of that length ahead */
};

static void ip_emit(struct ip *p, const char *s, size_t len, unsigned flags)
{
    p->f = vec_grow(p->f, &p->af, p->out.len + len, 1);
    memset(p->f + p->out.len, (int)flags, len);
    strbuf_add(&p->out, s, len);
}

static void ip_range(struct ip *p, size_t a, size_t b, unsigned mark, char *href)
{
    p->r = vec_grow(p->r, &p->ar, p->nr + 1, sizeof *p->r);
    p->r[p->nr++] = (struct range){a, b, mark, href};
}

static void ip_link_text(struct ip *p, const char *s, size_t len, char *href)
{
    size_t start = p->out.len;
    ip_emit(p, s, len, 0);
    ip_range(p, start, p->out.len, MD_LINK, href);
}

static void flanking(unsigned before, unsigned after, int *left, int *right)
{
    int bws = cp_is_ws(before), aws = cp_is_ws(after);
    int bp = is_apunct(before), ap = is_apunct(after);
    *left = !aws && (!ap || bws || bp);
    *right = !bws && (!bp || aws || ap);
}

/* Whether a run of c between the characters before and after can open or close emphasis. */
static void delim_can(char c, unsigned before, unsigned after, int *open, int *close)
{
    int left, right;
    flanking(before, after, &left, &right);
    *open = c == '*' ? left : left && (!right || is_apunct(before));
    *close = c == '*' ? right : right && (!left || is_apunct(after));
}

static void ip_delims(struct ip *p)
{
    char c = p->s[p->i];
    size_t j = p->i;
    int open, close;
    while (j < p->n && p->s[j] == c)
        j++;
    delim_can(c, cp_before(p->s, p->i), cp_at(p->s, p->n, j), &open, &close);
    if (open || close) {
        p->d = vec_grow(p->d, &p->ad, p->nd + 1, sizeof *p->d);
        p->d[p->nd] =
            (struct delim){p->out.len, (int)(j - p->i),     (int)(j - p->i),     p->dlast, -1,
                           c,          (unsigned char)open, (unsigned char)close};
        if (p->dlast >= 0)
            p->d[p->dlast].next = (int)p->nd;
        else
            p->dfirst = (int)p->nd;
        p->dlast = (int)p->nd++;
    }
    ip_emit(p, p->s + p->i, j - p->i, 0);
    p->i = j;
}

static void ip_unlink(struct ip *p, int k)
{
    struct delim *d = &p->d[k];
    if (d->prev >= 0)
        p->d[d->prev].next = d->next;
    else
        p->dfirst = d->next;
    if (d->next >= 0)
        p->d[d->next].prev = d->prev;
    else
        p->dlast = d->prev;
}

static int ip_pair(const struct delim *o, const struct delim *c)
{
    /* the "rule of 3" keeps *foo**bar* from closing across a strong run */
    return o->ch == c->ch && o->can_open &&
           !((o->can_close || c->can_open) && (o->orig + c->orig) % 3 == 0 &&
             (o->orig % 3 || c->orig % 3));
}

/* Uses characters of opener o and closer c for one emphasis; returns the next closer. */
static int ip_match(struct ip *p, int o, int cur)
{
    struct delim *od = &p->d[o], *c = &p->d[cur];
    int use = c->count >= 2 && od->count >= 2 ? 2 : 1;
    size_t start = od->pos + (size_t)od->count;
    memset(p->f + start - use, IP_DELETED, (size_t)use);
    memset(p->f + c->pos, IP_DELETED, (size_t)use);
    ip_range(p, start, c->pos, use == 2 ? MD_STRONG : MD_EM, NULL);
    od->count -= use;
    c->count -= use;
    c->pos += (size_t)use;
    od->next = cur;
    c->prev = o;
    if (!od->count)
        ip_unlink(p, o);
    if (!c->count) {
        int next = c->next;
        ip_unlink(p, cur);
        return next;
    }
    return cur;
}

static void ip_emphasis(struct ip *p, int bottom)
{
    int ob[2][3][2];
    for (int *q = &ob[0][0][0]; q < &ob[0][0][0] + 12; q++)
        *q = bottom;
    int cur = bottom >= 0 ? p->d[bottom].next : p->dfirst;
    while (cur >= 0) {
        struct delim *c = &p->d[cur];
        if (!c->can_close) {
            cur = c->next;
            continue;
        }
        int *obp = &ob[c->ch == '_'][c->orig % 3][c->can_open];
        int o = c->prev;
        while (o >= 0 && o != bottom && o != *obp && !ip_pair(&p->d[o], c))
            o = p->d[o].prev;
        if (o >= 0 && o != bottom && o != *obp) {
            cur = ip_match(p, o, cur);
        } else {
            int next = c->next;
            *obp = c->prev;
            if (!c->can_open)
                ip_unlink(p, cur);
            cur = next;
        }
    }
    if (bottom >= 0) {
        p->d[bottom].next = -1;
        p->dlast = bottom;
    } else {
        p->dfirst = p->dlast = -1;
    }
}

/* Spaces, tabs and at most one line ending. */
static size_t skip_space(const char *s, size_t n, size_t i)
{
    int nl = 0;
    while (i < n && (is_blank_char(s[i]) || (s[i] == '\n' && !nl++)))
        i++;
    return i;
}

/* Backslash escapes and entities resolved (s must be NUL-terminated somewhere after n). */
static void unescape(const char *s, size_t n, struct strbuf *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned cp;
        size_t k;
        if (s[i] == '\\' && i + 1 < n && is_apunct((unsigned char)s[i + 1])) {
            strbuf_addch(out, s[++i]);
        } else if (s[i] == '&' && (k = md_entity(s + i, &cp)) && i + k <= n) {
            md_utf8_put(out, cp);
            i += k - 1;
        } else {
            strbuf_addch(out, s[i]);
        }
    }
}

/* "(dest "title")" after a ']' at s[i]: the destination into href and the end, or 0. */
static size_t link_tail(const char *s, size_t n, size_t i, struct strbuf *href)
{
    size_t a, b, j;
    if (i >= n || s[i] != '(')
        return 0;
    i = a = skip_space(s, n, i + 1);
    if (i < n && s[i] == '<') {
        for (a = ++i; i < n && s[i] != '>' && s[i] != '<' && s[i] != '\n'; i++)
            if (i - a > LINK_DEST_MAX || (s[i] == '\\' && ++i >= n))
                return 0;
        if (i >= n || s[i] != '>')
            return 0;
        b = i++;
    } else {
        int depth = 0;
        for (; i < n && (unsigned char)s[i] > ' ' && s[i] != 0x7F; i++) {
            if (i - a > LINK_DEST_MAX || (s[i] == '(' && ++depth > 32))
                return 0;
            if (s[i] == '\\' && i + 1 < n && is_apunct((unsigned char)s[i + 1]))
                i++;
            else if (s[i] == ')' && depth-- == 0)
                break;
        }
        if (depth > 0)
            return 0;
        b = i;
    }
    j = skip_space(s, n, i);
    if (j > i && j < n && (s[j] == '"' || s[j] == '\'' || s[j] == '(')) {
        char close = s[j] == '(' ? ')' : s[j];
        size_t t = j + 1;
        for (; t < n && s[t] != close; t++)
            if (t - j > LINK_DEST_MAX || (s[t] == '\\' && ++t >= n))
                return 0;
        if (t >= n)
            return 0;
        j = skip_space(s, n, t + 1);
    }
    if (j >= n || s[j] != ')')
        return 0;
    unescape(s + a, b - a, href);
    return j + 1;
}

static void ip_close_bracket(struct ip *p)
{
    struct strbuf href = STRBUF_INIT;
    size_t end;
    p->i++;
    if (p->nbr > p->bfloor && (end = link_tail(p->s, p->n, p->i, &href))) {
        struct bracket *b = &p->br[--p->nbr];
        ip_emphasis(p, b->dlast);
        p->f[b->pos] = IP_DELETED;
        ip_range(p, b->pos + 1, p->out.len, MD_LINK, strbuf_detach(&href));
        p->bfloor = p->nbr; /* no link inside a link */
        p->i = end;
        return;
    }
    strbuf_release(&href);
    if (p->nbr)
        p->nbr--;
    if (p->bfloor > p->nbr)
        p->bfloor = p->nbr;
    ip_emit(p, "]", 1, 0);
}

static size_t scheme_autolink(const char *s, size_t n)
{
    size_t j = 1;
    if (!n || !is_alpha(s[0]))
        return 0;
    while (j < n && j <= 32 && (is_alnum(s[j]) || s[j] == '+' || s[j] == '.' || s[j] == '-'))
        j++;
    if (j < 2 || j > 32 || j >= n || s[j] != ':')
        return 0;
    while (j < n && s[j] != '>' && s[j] != '<' && (unsigned char)s[j] > ' ')
        j++;
    return j < n && s[j] == '>' ? j : 0;
}

static size_t email_autolink(const char *s, size_t n)
{
    size_t j = 0, label = 0, start;
    while (j < n && s[j] && (is_alnum(s[j]) || strchr(".!#$%&'*+/=?^_`{|}~-", s[j])))
        j++;
    if (!j || j >= n || s[j] != '@')
        return 0;
    for (start = ++j; j < n && s[j] != '>'; j++) {
        if (is_alnum(s[j]) || (s[j] == '-' && label))
            label++;
        else if (s[j] == '.' && label && s[j - 1] != '-')
            label = 0;
        else
            return 0;
        if (label > 63)
            return 0;
    }
    return j < n && j > start && label && s[j - 1] != '-' ? j : 0;
}

static int ip_autolink(struct ip *p)
{
    const char *s = p->s + p->i + 1;
    size_t n = p->n - p->i - 1, len = scheme_autolink(s, n);
    struct strbuf href = STRBUF_INIT;
    if (!len && (len = email_autolink(s, n)))
        strbuf_adds(&href, "mailto:");
    if (!len)
        return 0;
    strbuf_add(&href, s, len);
    ip_link_text(p, s, len, strbuf_detach(&href));
    p->i += len + 2;
    return 1;
}

/* A bare http(s) URL at s[i] in plain text, without the sentence's trailing punctuation. */
static size_t bare_url(const char *s, size_t n, size_t i)
{
    size_t j = i, host;
    if (i && is_alnum(s[i - 1]))
        return 0;
    if (!strncasecmp(s + i, "https://", 8))
        j += 8;
    else if (!strncasecmp(s + i, "http://", 7))
        j += 7;
    else
        return 0;
    for (host = j; j < n && (unsigned char)s[j] > ' ' && (unsigned char)s[j] < 0x7F; j++)
        if (s[j] == '<' || s[j] == '>' || s[j] == '"')
            break;
    while (j > host) {
        size_t open = 0, close = 0;
        if (strchr("?!.,:;*_~'", s[j - 1])) {
            j--;
            continue;
        }
        for (size_t k = host; k < j; k++)
            open += s[k] == '(', close += s[k] == ')';
        if (s[j - 1] != ')' || close <= open)
            break;
        j--;
    }
    return j > host ? j - i : 0;
}

static void ip_code(struct ip *p)
{
    size_t k = 0, j, e;
    while (p->i + k < p->n && p->s[p->i + k] == '`')
        k++;
    if (k <= 32 && !p->nocode[k]) {
        for (j = p->i + k; j < p->n; j = e) {
            for (e = j; e < p->n && p->s[e] == '`'; e++)
                ;
            if (e == j) {
                e++;
                continue;
            }
            if (e - j != k)
                continue;
            size_t a = p->i + k, b = j, all = 1, start = p->out.len;
            for (size_t q = a; q < b; q++)
                all &= p->s[q] == ' ' || p->s[q] == '\n';
            if (b - a >= 2 && !all && (p->s[a] == ' ' || p->s[a] == '\n') &&
                (p->s[b - 1] == ' ' || p->s[b - 1] == '\n'))
                a++, b--;
            ip_emit(p, p->s + a, b - a, MD_CODESPAN);
            for (size_t q = start; q < p->out.len; q++)
                if (p->out.buf[q] == '\n')
                    p->out.buf[q] = ' ';
            p->i = e;
            return;
        }
        p->nocode[k] = 1;
    }
    ip_emit(p, p->s + p->i, k, 0);
    p->i += k;
}

static void ip_special(struct ip *p)
{
    unsigned cp;
    size_t k, i = p->i;
    char c = p->s[i];
    struct strbuf sb = STRBUF_INIT;
    if (c == '\\' && i + 1 < p->n && p->s[i + 1] == '\n') {
        ip_emit(p, "\n", 1, MD_HARD);
        p->i += 2;
    } else if (c == '\\' && i + 1 < p->n && is_apunct((unsigned char)p->s[i + 1])) {
        ip_emit(p, p->s + i + 1, 1, 0);
        p->i += 2;
    } else if (c == '&' && (k = md_entity(p->s + i, &cp)) && i + k <= p->n) {
        md_utf8_put(&sb, cp);
        ip_emit(p, sb.buf, sb.len, 0);
        p->i += k;
    } else if (c == '\n') {
        for (k = i; k > 0 && p->s[k - 1] == ' '; k--)
            ;
        ip_emit(p, "\n", 1, p->plain || i - k >= 2 ? MD_HARD : 0);
        p->i++;
    } else if (c == '[') {
        p->br = vec_grow(p->br, &p->abr, p->nbr + 1, sizeof *p->br);
        p->br[p->nbr++] = (struct bracket){p->out.len, p->dlast};
        ip_emit(p, "[", 1, 0);
        p->i++;
    } else if (c == ']') {
        ip_close_bracket(p);
    } else if (c == '`') {
        ip_code(p);
    } else if (c == '*' || c == '_') {
        ip_delims(p);
    } else if (c != '<' || !ip_autolink(p)) {
        ip_emit(p, &p->s[i], 1, 0);
        p->i++;
    }
    strbuf_release(&sb);
}

static void ip_run(struct ip *p)
{
    const char *special = p->plain ? "\nhH" : "\\`*_[]<&\n";
    while (p->i < p->n) {
        size_t len, j = p->i + strcspn(p->s + p->i, special);
        if (j > p->i) {
            ip_emit(p, p->s + p->i, (j < p->n ? j : p->n) - p->i, 0);
            p->i = j;
        } else if (p->plain && p->s[j] != '\n' && (len = bare_url(p->s, p->n, j))) {
            ip_link_text(p, p->s + j, len, xstrndup(p->s + j, len));
            p->i += len;
        } else if (p->plain && p->s[j] != '\n') {
            ip_emit(p, p->s + j, 1, 0);
            p->i++;
        } else {
            ip_special(p);
        }
    }
}

static void ip_finish(struct ip *p, struct md_text *t)
{
    size_t n = p->out.len;
    int *em = xcalloc(n + 1, sizeof *em), *st = xcalloc(n + 1, sizeof *st), ce = 0, cs = 0;
    size_t *lk = xcalloc(n + 1, sizeof *lk);
    unsigned char *mk = xcalloc(n + 1, 1);
    ip_emphasis(p, -1);
    for (size_t k = 0; k < p->nr; k++) {
        struct range *r = &p->r[k];
        int *depth = r->mark == MD_EM ? em : st;
        if (r->mark == MD_LINK)
            for (size_t j = r->a; j < r->b; j++)
                lk[j] = lk[j] ? lk[j] : k + 1; /* the inner link wins */
        else
            depth[r->a]++, depth[r->b]--;
    }
    for (size_t k = 0; k < n; k++) {
        ce += em[k], cs += st[k];
        mk[k] = (unsigned char)((p->f[k] & MD_CODESPAN) | (ce > 0 ? MD_EM : 0) |
                                (cs > 0 ? MD_STRONG : 0) | (lk[k] ? MD_LINK : 0));
    }
    for (size_t k = 0, e; k < n; k = e) {
        e = k + 1;
        if (p->f[k] & IP_DELETED)
            continue;
        if (p->out.buf[k] == '\n' && !(p->f[k] & MD_CODESPAN)) {
            md_text_break(t, p->f[k] & MD_HARD);
            continue;
        }
        while (e < n && !(p->f[e] & IP_DELETED) && p->out.buf[e] != '\n' && mk[e] == mk[k] &&
               lk[e] == lk[k])
            e++;
        md_text_add(t, p->out.buf + k, e - k, mk[k], lk[k] ? p->r[lk[k] - 1].href : NULL);
    }
    free(em), free(st), free(lk), free(mk);
}

/* Parses inline markdown s[0, n) (s[n] must be '\0') into t; plain reads only bare URLs and
 * takes every line ending as a hard break. */
static void md_inline(const char *s, size_t n, int plain, struct md_text *t)
{
    struct ip p = {.s = s, .n = n, .plain = plain, .dfirst = -1, .dlast = -1};
    strbuf_init(&p.out, 0);
    ip_run(&p);
    ip_finish(&p, t);
    for (size_t k = 0; k < p.nr; k++)
        free(p.r[k].href);
    free(p.r), free(p.d), free(p.br), free(p.f);
    strbuf_release(&p.out);
}

/* ---- block parser ------------------------------------------------------------------------ */

struct line {
    const char *s;
    size_t len, pos;
    int col;     /* column of pos, tabs stopping at multiples of 4 */
    int partial; /* the tab at pos is partly consumed */
};

static int line_indent(const struct line *l)
{
    int col = l->col;
    for (size_t i = l->pos; i < l->len && is_blank_char(l->s[i]); i++)
        col += l->s[i] == '\t' ? 4 - col % 4 : 1;
    return col - l->col;
}

/* Consumes n columns of leading whitespace (a tab may be split). */
static void line_skip(struct line *l, int n)
{
    while (n > 0 && l->pos < l->len && is_blank_char(l->s[l->pos])) {
        int w = l->s[l->pos] == '\t' ? 4 - l->col % 4 : 1;
        if (w > n) {
            l->col += n;
            l->partial = 1;
            return;
        }
        l->col += w, n -= w, l->pos++, l->partial = 0;
    }
}

static void line_advance(struct line *l, size_t bytes)
{
    l->pos += bytes, l->col += (int)bytes, l->partial = 0;
}

static size_t line_first(const struct line *l)
{
    size_t i = l->pos;
    while (i < l->len && is_blank_char(l->s[i]))
        i++;
    return i;
}

static int line_blank(const struct line *l)
{
    return line_first(l) == l->len;
}

static void line_rest(const struct line *l, struct strbuf *sb)
{
    size_t i = l->pos;
    if (l->partial) {
        for (int k = 4 - l->col % 4; k > 0; k--)
            strbuf_addch(sb, ' ');
        i++;
    }
    strbuf_add(sb, l->s + i, l->len - i);
}

/* Strips blanks and an ATX closing sequence from s[*a, *b). */
static void atx_trim(const char *s, size_t *a, size_t *b)
{
    while (*a < *b && is_blank_char(s[*a]))
        (*a)++;
    while (*b > *a && is_blank_char(s[*b - 1]))
        (*b)--;
    size_t j = *b;
    while (j > *a && s[j - 1] == '#')
        j--;
    if (j < *b && (j == *a || is_blank_char(s[j - 1]))) {
        *b = j;
        while (*b > *a && is_blank_char(s[*b - 1]))
            (*b)--;
    }
}

/* The level of an ATX heading at s[*a] with its content in s[*a, *b), or 0. */
static int atx_level(const char *s, size_t n, size_t *a, size_t *b)
{
    size_t i = *a, k = 0;
    while (i < n && s[i] == '#' && k < 7)
        i++, k++;
    if (!k || k > 6 || (i < n && !is_blank_char(s[i])))
        return 0;
    *a = i, *b = n;
    atx_trim(s, a, b);
    return (int)k;
}

static size_t fence_len(const char *s, size_t i, size_t n)
{
    size_t k = i;
    if (s[i] != '`' && s[i] != '~')
        return 0;
    while (k < n && s[k] == s[i])
        k++;
    if (k - i < 3 || (s[i] == '`' && memchr(s + k, '`', n - k)))
        return 0;
    return k - i;
}

static int is_rule(const char *s, size_t i, size_t n)
{
    char c = s[i];
    int k = 0;
    if (c != '*' && c != '-' && c != '_')
        return 0;
    for (; i < n; i++) {
        if (s[i] == c)
            k++;
        else if (!is_blank_char(s[i]))
            return 0;
    }
    return k >= 3;
}

struct bp {
    struct md_node *stk[MD_MAX_DEPTH + 1]; /* open containers, stk[0] the document */
    int n;
    struct md_node *leaf; /* open paragraph or code block */
    struct strbuf para;   /* raw lines of the open paragraph */
    int fence, findent;   /* open code block: fence length (0: indented) and indent */
    char fch;
    int plain;
};

struct item_marker {
    enum md_type type;
    char ch;
    int start, width, pad;
};

static struct md_node *bp_top(const struct bp *p)
{
    return p->stk[p->n - 1];
}

static void bp_close_leaf(struct bp *p)
{
    struct md_node *n = p->leaf;
    p->leaf = NULL;
    if (n && n->type == MD_PARA) {
        strbuf_trim_end(&p->para);
        md_inline(p->para.buf, p->para.len, p->plain, &n->text);
        strbuf_reset(&p->para);
    } else if (n && n->type == MD_CODE && !p->fence) {
        struct strbuf *c = &n->code; /* trailing blank lines are not part of indented code */
        while (c->len) {
            size_t k = c->len - 1;
            while (k > 0 && is_blank_char(c->buf[k - 1]))
                k--;
            if (k && c->buf[k - 1] != '\n')
                break;
            c->len = k;
            c->buf[k] = '\0';
        }
    }
    p->fence = 0;
}

static void bp_close_to(struct bp *p, int k)
{
    if (k < p->n) {
        bp_close_leaf(p);
        p->n = k;
    }
}

static int bp_match(struct bp *p, struct line *l)
{
    int i;
    for (i = 1; i < p->n; i++) {
        struct md_node *c = p->stk[i];
        int ind = line_indent(l);
        size_t f = line_first(l);
        if (c->type == MD_QUOTE) {
            if (ind > 3 || f >= l->len || l->s[f] != '>')
                break;
            line_skip(l, ind);
            line_advance(l, 1);
            line_skip(l, line_indent(l) ? 1 : 0);
        } else if (f == l->len) {
            if (!c->first) /* an item starts with at most one blank line */
                break;
            line_skip(l, ind);
        } else if (ind >= c->num) {
            line_skip(l, c->num);
        } else {
            break;
        }
    }
    return i;
}

static int bp_code_line(struct bp *p, struct line *l)
{
    int ind = line_indent(l);
    if (p->fence) {
        size_t i = line_first(l), k = i, r;
        while (k < l->len && l->s[k] == p->fch)
            k++;
        for (r = k; r < l->len && is_blank_char(l->s[r]); r++)
            ;
        if (ind <= 3 && (int)(k - i) >= p->fence && r == l->len) {
            bp_close_leaf(p);
            return 1;
        }
        line_skip(l, ind < p->findent ? ind : p->findent);
    } else if (ind >= 4 || line_blank(l)) {
        line_skip(l, ind < 4 ? ind : 4);
    } else {
        bp_close_leaf(p);
        return 0;
    }
    line_rest(l, &p->leaf->code);
    strbuf_addch(&p->leaf->code, '\n');
    return 1;
}

static int bp_continues_list(const struct bp *p, int matched, const struct item_marker *im)
{
    const struct md_node *last = p->stk[matched - 1]->last;
    return last && last->type == im->type && last->marker == im->ch;
}

static int bp_item_marker(const struct bp *p, const struct line *l, int ind, int matched,
                          struct item_marker *im)
{
    const char *s = l->s;
    size_t f = line_first(l), i = f, j;
    int v = 0, rest_blank = 1;
    if (s[i] && strchr(p->plain ? "*-" : "*-+", s[i])) {
        im->type = MD_BULLETS, im->ch = s[i++], im->start = 0;
    } else {
        while (i < l->len && is_digit(s[i]) && i - f < 9)
            v = v * 10 + (s[i++] - '0');
        if (i == f || i >= l->len || (s[i] != '.' && s[i] != ')'))
            return 0;
        im->type = MD_ORDERED, im->ch = s[i++], im->start = v;
    }
    if (i < l->len && !is_blank_char(s[i]))
        return 0;
    if (!p->plain && im->type == MD_BULLETS && is_rule(s, f, l->len))
        return 0;
    for (j = i; j < l->len; j++)
        rest_blank &= is_blank_char(s[j]);
    /* a new list interrupts a paragraph only with content, and (markdown) only from 1; in
     * plain text a lone "-" or "2)" is text */
    if ((p->plain && rest_blank) ||
        (p->leaf && p->leaf->type == MD_PARA && !bp_continues_list(p, matched, im) &&
         (rest_blank || (!p->plain && im->type == MD_ORDERED && im->start != 1))))
        return 0;
    im->width = (int)(i - f);
    int col0 = l->col + ind + im->width, col = col0;
    for (j = i; j < l->len && is_blank_char(s[j]); j++)
        col += s[j] == '\t' ? 4 - col % 4 : 1;
    im->pad = rest_blank || col - col0 >= 5 ? 1 : col - col0;
    return 1;
}

static void bp_push(struct bp *p, struct md_node *n)
{
    p->stk[p->n++] = n;
}

static void bp_push_item(struct bp *p, struct line *l, int ind, const struct item_marker *im)
{
    struct md_node *list = bp_top(p)->last;
    if (!list || list->type != im->type || list->marker != im->ch) {
        list = md_node_new(im->type, bp_top(p));
        list->marker = im->ch;
        list->num = im->start;
    }
    struct md_node *item = md_node_new(MD_ITEM, list);
    item->num = ind + im->width + im->pad;
    line_skip(l, ind);
    line_advance(l, (size_t)im->width);
    line_skip(l, im->pad);
    bp_push(p, item);
}

/* Opens the block quotes and list items that start this line; returns whether any did. */
static int bp_open(struct bp *p, struct line *l, int *matched)
{
    int opened = 0;
    struct item_marker im;
    while (p->n <= MD_MAX_DEPTH) {
        int ind = line_indent(l);
        size_t f = line_first(l);
        if ((ind > 3 && !p->plain) || f >= l->len)
            break;
        if (!p->plain && l->s[f] == '>') {
            bp_close_leaf(p);
            bp_close_to(p, *matched);
            line_skip(l, ind);
            line_advance(l, 1);
            line_skip(l, line_indent(l) ? 1 : 0);
            bp_push(p, md_node_new(MD_QUOTE, bp_top(p)));
        } else if (bp_item_marker(p, l, ind, *matched, &im)) {
            bp_close_leaf(p);
            bp_close_to(p, *matched);
            bp_push_item(p, l, ind, &im);
        } else {
            break;
        }
        *matched = p->n;
        opened = 1;
    }
    return opened;
}

static int bp_leaf_start(const struct line *l)
{
    size_t f = line_first(l), a = f, b;
    return line_indent(l) <= 3 && f < l->len &&
           (atx_level(l->s, l->len, &a, &b) || fence_len(l->s, f, l->len) ||
            is_rule(l->s, f, l->len));
}

static void bp_para_line(struct bp *p, struct line *l)
{
    if (p->leaf && p->leaf->type == MD_PARA) {
        strbuf_addch(&p->para, '\n');
    } else {
        bp_close_leaf(p);
        p->leaf = md_node_new(MD_PARA, bp_top(p));
    }
    line_skip(l, line_indent(l));
    line_rest(l, &p->para);
}

/* Headings, fences, setext underlines and rules, with l at the first non-blank byte. */
static int bp_leaf_block(struct bp *p, struct line *l, int ind, int para)
{
    const char *s = l->s;
    size_t i = l->pos, a = i, b, k = fence_len(s, i, l->len);
    int level = atx_level(s, l->len, &a, &b);
    struct strbuf sb = STRBUF_INIT;
    if (para && (s[i] == '=' || s[i] == '-')) {
        size_t e = i;
        while (e < l->len && s[e] == s[i])
            e++;
        while (e < l->len && is_blank_char(s[e]))
            e++;
        if (e == l->len) {
            struct md_node *n = p->leaf;
            bp_close_leaf(p);
            n->type = MD_HEADING;
            n->num = s[i] == '=' ? 1 : 2;
            return 1;
        }
    }
    if (level || k || is_rule(s, i, l->len)) {
        bp_close_leaf(p);
        struct md_node *n = md_node_new(level ? MD_HEADING : k ? MD_CODE : MD_RULE, bp_top(p));
        if (level) {
            n->num = level;
            strbuf_add(&sb, s + a, b - a);
            md_inline(sb.buf, sb.len, 0, &n->text);
        } else if (k) {
            for (a = i + k, b = l->len; a < b && is_blank_char(s[a]); a++)
                ;
            unescape(s + a, b - a, &sb);
            n->info = strbuf_detach(&sb);
            p->leaf = n, p->fence = (int)k, p->fch = s[i], p->findent = ind;
        }
        strbuf_release(&sb);
        return 1;
    }
    return 0;
}

static void bp_line(struct bp *p, const char *s, size_t len)
{
    struct line l = {s, len, 0, 0, 0};
    int matched = bp_match(p, &l), opened, ind;
    if (p->leaf && p->leaf->type == MD_CODE && matched == p->n && bp_code_line(p, &l))
        return;
    opened = bp_open(p, &l, &matched);
    if (!opened && matched < p->n && !p->plain && p->leaf && p->leaf->type == MD_PARA &&
        !line_blank(&l) && !bp_leaf_start(&l)) {
        bp_para_line(p, &l); /* lazy continuation */
        return;
    }
    bp_close_to(p, matched);
    int para = p->leaf && p->leaf->type == MD_PARA;
    ind = line_indent(&l);
    if (line_blank(&l)) {
        bp_close_leaf(p);
    } else if (!p->plain && ind >= 4 && !para) {
        bp_close_leaf(p);
        p->leaf = md_node_new(MD_CODE, bp_top(p));
        line_skip(&l, 4);
        line_rest(&l, &p->leaf->code);
        strbuf_addch(&p->leaf->code, '\n');
    } else {
        if (!p->plain && ind < 4) {
            line_skip(&l, ind);
            if (bp_leaf_block(p, &l, ind, para))
                return;
        }
        bp_para_line(p, &l);
    }
}

struct md_node *md_parse(const char *md, int plain)
{
    char *clean = md_utf8_clean(md);
    struct bp p = {.n = 1, .plain = plain};
    p.stk[0] = md_node_new(MD_DOC, NULL);
    strbuf_init(&p.para, 0);
    for (const char *s = clean; *s;) {
        size_t len = strcspn(s, "\r\n");
        bp_line(&p, s, len);
        s += len;
        s += s[0] == '\r' && s[1] == '\n' ? 2 : s[0] ? 1 : 0;
    }
    bp_close_leaf(&p);
    strbuf_release(&p.para);
    free(clean);
    md_tidy(p.stk[0]);
    return p.stk[0];
}

/* ---- renderer ---------------------------------------------------------------------------- */

static size_t ordered_prefix(const char *s, size_t n)
{
    size_t j = 0;
    while (j < n && j < 9 && is_digit(s[j]))
        j++;
    return j && j < n && (s[j] == '.' || s[j] == ')') ? j : 0;
}

/* Literal text with the escapes a reader needs, and no others: snake_case and "a * b" stay. */
static void write_text(struct strbuf *o, const char *s, size_t n, int heading, int in_link,
                       int before_link)
{
    for (size_t i = 0, k; i < n; i++) {
        char c = s[i];
        int start = !heading && (!o->len || o->buf[o->len - 1] == '\n'), esc, open, close;
        if (start && (k = ordered_prefix(s + i, n - i))) {
            strbuf_add(o, s + i, k);
            c = s[i += k];
            esc = 1;
        } else if (c == '*' || c == '_') {
            for (k = i; k < n && s[k] == c; k++)
                ;
            delim_can(c, o->len ? cp_before(o->buf, o->len) : '\n', cp_at(s, n, k), &open, &close);
            esc = start || k == n || open || close;
            for (; i + 1 < k; i++)
                strbuf_adds(o, esc ? (c == '*' ? "\\*" : "\\_") : (c == '*' ? "*" : "_"));
        } else {
            esc = (start && strchr("#>+-=~[", c)) || c == '`' ||
                  (c == '\\' && (i + 1 == n || is_apunct((unsigned char)s[i + 1]))) ||
                  ((c == '[' || c == ']') && in_link) ||
                  (c == ']' && (i + 1 == n || s[i + 1] == '(')) ||
                  (c == '<' && i + 1 < n && (is_alpha(s[i + 1]) || strchr("/!?", s[i + 1]))) ||
                  (c == '&' && entity_like(s + i)) || (c == '!' && i + 1 == n && before_link);
        }
        if (esc)
            strbuf_addch(o, '\\');
        strbuf_addch(o, c);
    }
}

static void write_code(struct strbuf *o, const char *s, size_t n)
{
    size_t k = 1, i, j;
    int again = 1, all = 1;
    while (again) { /* the shortest backtick string that does not occur in the content */
        again = 0;
        for (i = 0; i < n && !again; i = j) {
            for (j = i; j < n && s[j] == '`'; j++)
                ;
            if (j == i)
                j++;
            else if (j - i == k)
                k++, again = 1;
        }
    }
    for (i = 0; i < n; i++)
        all &= s[i] == ' ';
    int pad = s[0] == '`' || s[n - 1] == '`' || (s[0] == ' ' && s[n - 1] == ' ' && !all);
    for (i = 0; i < k; i++)
        strbuf_addch(o, '`');
    strbuf_add(o, " ", (size_t)pad);
    strbuf_add(o, s, n);
    strbuf_add(o, " ", (size_t)pad);
    for (i = 0; i < k; i++)
        strbuf_addch(o, '`');
}

/* A link destination or info string: escaped so that reading it back resolves to s. */
static void write_raw(struct strbuf *o, const char *s, const char *special)
{
    for (; *s; s++) {
        if ((*s == '\\' && (!s[1] || is_apunct((unsigned char)s[1]))) ||
            (*s == '&' && entity_like(s)) || strchr(special, *s))
            strbuf_addch(o, '\\');
        strbuf_addch(o, *s);
    }
}

static void write_dest(struct strbuf *o, const char *h)
{
    int depth = 0, max = 0, angle = !*h;
    for (const char *p = h; *p; p++) {
        depth += (*p == '(') - (*p == ')');
        max = depth > max ? depth : max;
        angle |= *p == '<' || *p == '>' || depth < 0;
    }
    angle |= depth != 0 || max > 32;
    strbuf_adds(o, angle ? "](<" : "](");
    write_raw(o, h, angle ? "<>" : "");
    strbuf_adds(o, angle ? ">)" : ")");
}

/* Whether a link whose whole text is s[0, n) can be written as <s>. */
static int autolinkable(const char *s, size_t n, const char *href)
{
    struct strbuf sb = STRBUF_INIT;
    int ok = 0;
    strbuf_add(&sb, s, n);
    strbuf_addch(&sb, '>');
    if (strlen(href) == n && !memcmp(s, href, n))
        ok = scheme_autolink(sb.buf, sb.len) == n;
    else if (!strncmp(href, "mailto:", 7) && strlen(href + 7) == n && !memcmp(s, href + 7, n))
        ok = email_autolink(sb.buf, sb.len) == n;
    strbuf_release(&sb);
    return ok;
}

/* The delimiter for emphasis opened now: a '*' right after a closing '*' would merge with it. */
static char delim_char(const struct strbuf *o, int strat, int after_opener)
{
    char prev = o->len ? o->buf[o->len - 1] : ' ';
    if (!strat)
        return prev == '*' && !after_opener ? '_' : '*';
    return prev == '_' || is_alnum(prev) || (unsigned char)prev >= 0x80 ? '*' : '_';
}

int md_marks_has(const struct md_open *st, int n, unsigned mark)
{
    for (int i = 0; i < n; i++)
        if (st[i].mark == mark)
            return 1;
    return 0;
}

int md_marks_keep(const struct md_open *st, int n, const struct md_span *sp)
{
    unsigned want = sp->s[0] == '\n' ? 0 : sp->marks;
    int keep = 0;
    while (keep < n && (want & st[keep].mark) &&
           (st[keep].mark != MD_LINK || str_eq(st[keep].href, sp->href)))
        keep++;
    return keep;
}

static void add_delim(struct strbuf *o, const struct md_open *m)
{
    strbuf_addch(o, m->ch);
    if (m->mark == MD_STRONG)
        strbuf_addch(o, m->ch);
}

static void close_mark(struct strbuf *o, const struct md_open *m)
{
    if (m->mark == MD_LINK)
        write_dest(o, m->href);
    else
        add_delim(o, m);
}

/* Opens the marks the span needs: a link outermost, then strong, then emphasis. */
static void open_marks(struct strbuf *o, struct md_open *st, int *n, const struct md_span *sp,
                       int strat)
{
    static const unsigned order[] = {MD_LINK, MD_STRONG, MD_EM};
    int opened = 0;
    for (size_t i = 0; i < 3; i++) {
        unsigned m = order[i];
        if (!(sp->marks & m) || md_marks_has(st, *n, m))
            continue;
        st[*n] = (struct md_open){m, m == MD_LINK ? '[' : delim_char(o, strat, opened), sp->href};
        add_delim(o, &st[(*n)++]);
        opened = m != MD_LINK;
    }
}

static void write_inline(const struct md_text *t, struct strbuf *o, int heading, int strat)
{
    struct md_open st[3];
    int n = 0, keep, more;
    size_t pos = 0, npos;
    struct md_span sp, nx;
    for (int have = md_text_next(t, &pos, &sp); have; sp = nx, have = more, pos = npos) {
        npos = pos;
        more = md_text_next(t, &npos, &nx);
        unsigned want = sp.s[0] == '\n' ? 0 : sp.marks;
        int link_goes_on = more && (nx.marks & MD_LINK) && str_eq(nx.href, sp.href);
        for (keep = md_marks_keep(st, n, &sp); n > keep;)
            close_mark(o, &st[--n]);
        if (want == MD_LINK && !md_marks_has(st, n, MD_LINK) && !link_goes_on &&
            autolinkable(sp.s, sp.len, sp.href)) {
            strbuf_addch(o, '<');
            strbuf_add(o, sp.s, sp.len);
            strbuf_addch(o, '>');
            continue;
        }
        open_marks(o, st, &n, &sp, strat);
        if (sp.s[0] == '\n')
            strbuf_adds(o, sp.marks & MD_HARD ? "\\\n" : "\n");
        else if (want & MD_CODESPAN)
            write_code(o, sp.s, sp.len);
        else
            write_text(o, sp.s, sp.len, heading, md_marks_has(st, n, MD_LINK),
                       more && (nx.marks & MD_LINK) && !link_goes_on);
    }
    while (n)
        close_mark(o, &st[--n]);
    if (heading) { /* a trailing run of '#' after a space would read as a closing sequence */
        size_t j = o->len;
        while (j && o->buf[j - 1] == '#')
            j--;
        if (j < o->len && (!j || is_blank_char(o->buf[j - 1]))) {
            strbuf_addch(o, '#');
            memmove(o->buf + j + 1, o->buf + j, o->len - j - 2);
            o->buf[j] = '\\';
        }
    }
}

static void reparse(const struct strbuf *o, int heading, struct md_text *t)
{
    size_t a = 0, b = o->len;
    struct strbuf sb = STRBUF_INIT;
    if (heading)
        atx_trim(o->buf, &a, &b);
    strbuf_add(&sb, o->buf + a, b - a);
    md_inline(sb.buf, sb.len, 0, t);
    text_tidy(t, heading);
    strbuf_release(&sb);
}

static int try_write(const struct md_text *t, struct strbuf *o, int heading, int strat)
{
    struct md_text back = {0};
    strbuf_reset(o);
    write_inline(t, o, heading, strat);
    reparse(o, heading, &back);
    int ok = text_eq(t, &back);
    md_text_free(&back);
    return ok;
}

/* Emphasis cannot close after punctuation that a letter follows ("**Note:**then"), nor open
 * before punctuation that a letter precedes: such edge punctuation leaves the span. */
static int text_shift_punct(struct md_text *t, unsigned mark)
{
    int changed = 0;
    for (size_t i = 0, a, b; i < t->len; i = b) {
        if (!(t->m[i] & mark)) {
            b = i + 1;
            continue;
        }
        for (a = b = i; b < t->len && (t->m[b] & mark); b++)
            ;
        for (size_t e = b; e > a && is_apunct((unsigned char)t->s[e - 1]) && e < t->len &&
                           !cp_is_ws(cp_at(t->s, t->len, e)) && !is_apunct((unsigned char)t->s[e]);
             e--)
            t->m[e - 1] &= ~mark, changed = 1;
        for (; a < b && (t->m[a] & mark) && is_apunct((unsigned char)t->s[a]) && a > 0 &&
               !cp_is_ws(cp_before(t->s, a)) && !is_apunct((unsigned char)t->s[a - 1]);
             a++)
            t->m[a] &= ~mark, changed = 1;
    }
    text_unmark_edges(t, mark);
    return changed;
}

/* Writes t so that reading it back gives t. What markdown cannot say as it stands loses, in
 * turn, the punctuation at emphasis edges, then strong and emphasis, then every mark. */
static void render_inline(const struct md_text *t, struct strbuf *out, int heading)
{
    struct strbuf o = STRBUF_INIT;
    struct md_text alt = {0};
    if (!try_write(t, &o, heading, 0) && !try_write(t, &o, heading, 1)) {
        text_copy(&alt, t, 0, t->len, ~0u);
        while (text_shift_punct(&alt, MD_STRONG) | text_shift_punct(&alt, MD_EM))
            ; /* each pass may expose new edges */
        for (unsigned keep = MD_CODESPAN | MD_LINK;
             !try_write(&alt, &o, heading, 0) && !try_write(&alt, &o, heading, 1) && keep;
             keep = keep == MD_LINK ? 0 : MD_LINK) {
            struct md_text fewer = {0};
            text_copy(&fewer, t, 0, t->len, keep);
            md_text_free(&alt);
            alt = fewer;
        }
    }
    strbuf_add(out, o.buf, o.len);
    strbuf_release(&o);
    md_text_free(&alt);
}

/* Plain text: marks dropped, a link as "text (url)", or the url alone when that is its text. */
static void plain_link_end(struct strbuf *o, size_t start, const char *href)
{
    size_t n = o->len - start;
    const char *text = o->buf + start;
    if ((strlen(href) == n && !memcmp(text, href, n)) ||
        (!strncmp(href, "mailto:", 7) && strlen(href + 7) == n && !memcmp(text, href + 7, n)))
        return;
    strbuf_addf(o, " (%s)", href);
}

static void plain_inline(const struct md_text *t, struct strbuf *o)
{
    size_t pos = 0, start = 0;
    const char *link = NULL;
    struct md_span sp;
    while (md_text_next(t, &pos, &sp)) {
        const char *h = sp.marks & MD_LINK ? sp.href : NULL;
        if (link && !str_eq(h, link))
            plain_link_end(o, start, link);
        if (h && !str_eq(h, link))
            start = o->len;
        link = h;
        strbuf_add(o, sp.s, sp.len);
    }
    if (link)
        plain_link_end(o, start, link);
}

/* Every line of body behind a prefix; the prefix's trailing space is dropped on empty lines. */
static void prefix_lines(struct strbuf *o, const struct strbuf *body, const char *first,
                         const char *rest)
{
    const char *s = body->buf, *end = s + body->len;
    for (int line = 0; s <= end; line++) {
        const char *e = memchr(s, '\n', (size_t)(end - s)), *pre = line ? rest : first;
        size_t pl = strlen(pre);
        e = e ? e : end;
        while (e == s && pl && pre[pl - 1] == ' ')
            pl--;
        if (line)
            strbuf_addch(o, '\n');
        strbuf_add(o, pre, pl);
        strbuf_add(o, s, (size_t)(e - s));
        s = e + 1;
    }
}

static void render_children(const struct md_node *parent, struct strbuf *o, int plain,
                            char item_marker);

static void render_code(const struct md_node *n, struct strbuf *o, int plain)
{
    const struct strbuf *c = &n->code;
    size_t run = 0, k = 0, fl;
    if (plain) {
        strbuf_add(o, c->buf, c->len ? c->len - 1 : 0);
        return;
    }
    for (size_t i = 0; i < c->len; i++) {
        k = c->buf[i] == '`' ? k + 1 : 0;
        run = k > run ? k : run;
    }
    fl = run >= 3 ? run + 1 : 3;
    for (k = 0; k < fl; k++)
        strbuf_addch(o, '`');
    write_raw(o, n->info ? n->info : "", "");
    strbuf_addch(o, '\n');
    strbuf_add(o, c->buf, c->len);
    for (k = 0; k < fl; k++)
        strbuf_addch(o, '`');
}

static void render_list(const struct md_node *n, struct strbuf *o, int plain, char marker)
{
    struct strbuf body = STRBUF_INIT;
    char first[24], rest[24];
    long num = n->num;
    for (const struct md_node *it = n->first; it; it = it->next, num++) {
        if (n->type == MD_BULLETS)
            snprintf(first, sizeof first, "%c ", marker);
        else
            snprintf(first, sizeof first, "%ld%c ", num < 999999999 ? num : 999999999L, marker);
        memset(rest, ' ', strlen(first));
        rest[strlen(first)] = '\0';
        strbuf_reset(&body);
        render_children(it, &body, plain, marker);
        if (it != n->first)
            strbuf_addch(o, '\n');
        prefix_lines(o, &body, first, rest);
    }
    strbuf_release(&body);
}

static void render_node(const struct md_node *n, struct strbuf *o, int plain, char marker,
                        int dash_first)
{
    struct strbuf body = STRBUF_INIT;
    if (n->type == MD_HEADING && !plain) {
        for (int i = 0; i < n->num; i++)
            strbuf_addch(o, '#');
        strbuf_add(o, " ", n->text.len ? 1 : 0);
    }
    if ((n->type == MD_PARA || n->type == MD_HEADING) && plain)
        plain_inline(&n->text, o);
    else if (n->type == MD_PARA || n->type == MD_HEADING)
        render_inline(&n->text, o, n->type == MD_HEADING);
    else if (n->type == MD_CODE)
        render_code(n, o, plain);
    else if (is_list(n))
        render_list(n, o, plain, marker);
    else if (n->type == MD_RULE)
        strbuf_adds(o, dash_first ? "***" : "---"); /* "- ---" would be a rule, not an item */
    if (n->type == MD_QUOTE) {
        render_children(n, &body, plain, 0);
        prefix_lines(o, &body, "> ", "> ");
    }
    strbuf_release(&body);
}

/* Inside a list item blocks stay tight unless the next one would merge into the previous. */
static int needs_blank(const struct md_node *prev, const struct md_node *next)
{
    if (prev->type == MD_PARA)
        return !(next->type == MD_CODE || next->type == MD_HEADING || next->type == MD_QUOTE ||
                 ((next->type == MD_BULLETS || (next->type == MD_ORDERED && next->num == 1)) &&
                  next->first->first));
    return prev->type == MD_QUOTE || is_list(prev);
}

static void render_children(const struct md_node *parent, struct strbuf *o, int plain,
                            char item_marker)
{
    char prev_marker = 0, marker;
    for (const struct md_node *c = parent->first, *prev = NULL; c; prev = c, c = c->next) {
        /* two lists in a row stay two lists only with different markers */
        int again = prev && prev->type == c->type;
        if (!prev && c->type == MD_BULLETS) /* "* * *" would be a rule */
            again = item_marker == '*', prev_marker = '*';
        marker = c->type == MD_BULLETS   ? (again && prev_marker == '*' ? '-' : '*')
                 : c->type == MD_ORDERED ? (again && prev_marker == '.' ? ')' : '.')
                                         : 0;
        if (prev)
            strbuf_adds(o, parent->type == MD_ITEM && !needs_blank(prev, c) ? "\n" : "\n\n");
        render_node(c, o, plain, marker, !prev && item_marker == '-');
        prev_marker = marker;
    }
}

char *md_render(const struct md_node *doc, int plain)
{
    struct strbuf o = STRBUF_INIT;
    render_children(doc, &o, plain, 0);
    return strbuf_detach(&o);
}

/* ---- public ------------------------------------------------------------------------------ */

static char *convert(const char *in, int plain_in, int plain_out)
{
    struct md_node *doc = md_parse(in, plain_in);
    char *s = md_render(doc, plain_out);
    md_node_free(doc);
    return s;
}

char *richtext_md_normalize(const char *md)
{
    return convert(md, 0, 0);
}

char *richtext_plain_to_md(const char *text)
{
    return convert(text, 1, 0);
}

char *richtext_md_to_plain(const char *md)
{
    return convert(md, 0, 1);
}
