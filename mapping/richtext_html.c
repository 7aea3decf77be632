/*
 * Zoho rich text (forgiving HTML) <-> canonical markdown through the tree of markdown_p.h. The
 * reader is a tokenizer with an element stack on the heap: unknown tags go and their text stays,
 * script and style go whole, bold and italic inline styles count, and the editor's soup (<div>
 * per line, <div><br></div> per empty line) reads as lines and paragraphs; &nbsp; is a space
 * that does not collapse. The writer escapes everything; it is no sanitiser for showing HTML.
 */
#include "mapping/markdown_p.h"
#include "mapping/richtext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum kind {
    K_OTHER,
    K_P,
    K_DIV,
    K_BR,
    K_B,
    K_I,
    K_CODE,
    K_PRE,
    K_A,
    K_UL,
    K_OL,
    K_LI,
    K_H,
    K_QUOTE,
    K_HR,
    K_TABLE,
    K_TR,
    K_CELL,
    K_SKIP,
    K_IMG,
    K_VOID,
};

static const struct {
    const char *name;
    enum kind kind;
} tags[] = {
    {"p", K_P},           {"div", K_DIV},     {"br", K_BR},
    {"b", K_B},           {"strong", K_B},    {"i", K_I},
    {"em", K_I},          {"cite", K_I},      {"code", K_CODE},
    {"tt", K_CODE},       {"kbd", K_CODE},    {"samp", K_CODE},
    {"pre", K_PRE},       {"a", K_A},         {"ul", K_UL},
    {"ol", K_OL},         {"li", K_LI},       {"h1", K_H},
    {"h2", K_H},          {"h3", K_H},        {"h4", K_H},
    {"h5", K_H},          {"h6", K_H},        {"blockquote", K_QUOTE},
    {"hr", K_HR},         {"table", K_TABLE}, {"tr", K_TR},
    {"td", K_CELL},       {"th", K_CELL},     {"script", K_SKIP},
    {"style", K_SKIP},    {"title", K_SKIP},  {"template", K_SKIP},
    {"noscript", K_SKIP}, {"img", K_IMG},     {"section", K_DIV},
    {"article", K_DIV},   {"header", K_DIV},  {"footer", K_DIV},
    {"address", K_DIV},   {"center", K_DIV},  {"dt", K_DIV},
    {"dd", K_DIV},        {"figure", K_DIV},  {"figcaption", K_DIV},
    {"caption", K_DIV},   {"main", K_DIV},    {"nav", K_DIV},
    {"aside", K_DIV},     {"input", K_VOID},  {"meta", K_VOID},
    {"link", K_VOID},     {"wbr", K_VOID},    {"area", K_VOID},
    {"base", K_VOID},     {"col", K_VOID},    {"embed", K_VOID},
    {"param", K_VOID},    {"source", K_VOID}, {"track", K_VOID},
};

#define CLOSE_SEARCH 256 /* a close tag matches only this near the top of the stack */
#define TAG_MAX 8192     /* a '<' not closed by '>' within this is text */

struct attrs {
    char *href, *cls, *style, *alt;
    int start;
};

struct elem {
    enum kind kind;
    char name[16];
    unsigned saved_marks;
    const char *saved_href;
    char *href;          /* owned, for <a> */
    unsigned long texts; /* text events before it opened */
    int opened, cells;
};

struct hp {
    struct md_builder b;
    struct elem *stk;
    size_t n, alloc;
    unsigned marks;
    const char *href;
    int pending_br; /* line ends since the last text */
    int para_break; /* an empty <div> line: the next text starts a paragraph */
    int space;      /* collapsed whitespace waiting for the next text */
    int space_nl;   /* ... containing a line ending: a soft break */
    unsigned space_marks;
    unsigned long texts; /* text events with a visible character */
    int cell;            /* inside a table cell: blocks are mere spaces */
    int cell_sep;        /* a " | " before the next cell's text */
    int pre, pre_start;
    struct strbuf code;
    char *lang;
};

/* ---- reading ----------------------------------------------------------------------------- */

static void hp_boundary(struct hp *h)
{
    mdb_end(&h->b);
    h->pending_br = h->para_break = h->space = h->cell_sep = 0;
}

/* What has to come before visible text: the pending breaks, paragraph end or space. */
static void hp_flush(struct hp *h)
{
    if (h->para_break)
        mdb_end(&h->b);
    for (; h->pending_br > 0 && !h->para_break; h->pending_br--)
        mdb_break(&h->b, 1);
    h->para_break = h->pending_br = 0;
    if (h->cell_sep) {
        mdb_text(&h->b, " | ", 3, 0, NULL);
        h->space = h->cell_sep = 0;
    }
    if (h->space && !mdb_line_empty(&h->b)) {
        unsigned m = h->space_marks & h->marks;
        if (h->space_nl && !(m & MD_CODESPAN))
            mdb_break(&h->b, 0);
        else
            mdb_text(&h->b, " ", 1, m, h->href);
    }
    h->space = 0;
}

static void hp_emit(struct hp *h, const char *s, size_t len)
{
    if (h->pre) {
        strbuf_add(&h->code, s, len);
        return;
    }
    size_t k = 0;
    hp_flush(h);
    mdb_text(&h->b, s, len, h->marks, h->href);
    while (k < len && s[k] == ' ')
        k++;
    h->texts += k < len; /* a no-break space alone does not make a <div> line non-empty */
}

/* Text between tags: entities decoded, raw whitespace collapsed (except in <pre>), no-break
 * spaces kept as spaces. */
static void hp_text(struct hp *h, const char *s, size_t n)
{
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0, k; i < n; i++) {
        unsigned cp;
        char c = s[i];
        if (h->pre_start && (c == '\n' || (c == '\r' && s[i + 1] == '\n'))) {
            i += c == '\r';
            h->pre_start = 0;
            continue;
        }
        h->pre_start = 0;
        if (!h->pre && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f')) {
            if (sb.len)
                hp_emit(h, sb.buf, sb.len);
            strbuf_reset(&sb);
            if (!h->space)
                h->space_nl = 0, h->space_marks = h->marks;
            h->space = 1;
            h->space_nl |= c == '\n';
            continue;
        }
        if (c == '&' && (k = md_entity(s + i, &cp)) && i + k <= n)
            i += k - 1;
        else if ((unsigned char)c == 0xC2 && (unsigned char)s[i + 1] == 0xA0)
            cp = 0xA0, i++;
        else
            cp = 0; /* a raw byte, copied as it is */
        if (cp == 0xA0)
            strbuf_addch(&sb, ' ');
        else if (cp)
            md_utf8_put(&sb, cp);
        else
            strbuf_addch(&sb, c);
    }
    if (sb.len)
        hp_emit(h, sb.buf, sb.len);
    strbuf_release(&sb);
}

static char *attr_value(const char *s, size_t *i, size_t lim)
{
    size_t a, b;
    char q = s[*i];
    if (q == '"' || q == '\'') {
        for (a = b = *i + 1; s[b] && s[b] != q && b < lim; b++)
            ;
        *i = s[b] == q ? b + 1 : b;
    } else {
        for (a = b = *i; s[b] && !strchr(" \t\r\n>", s[b]) && b < lim; b++)
            ;
        *i = b;
    }
    /* entities in attribute values are decoded like text */
    struct strbuf sb = STRBUF_INIT;
    for (size_t k = a, len; k < b; k++) {
        unsigned cp;
        if (s[k] == '&' && (len = md_entity(s + k, &cp)) && k + len <= b)
            md_utf8_put(&sb, cp), k += len - 1;
        else
            strbuf_addch(&sb, s[k]);
    }
    return strbuf_detach(&sb);
}

/* Reads attributes up to '>'; returns the index after it, or 0 when the tag does not end
 * within TAG_MAX bytes (then it is text). */
static size_t tag_attrs(const char *s, size_t i, struct attrs *at)
{
    size_t lim = i + TAG_MAX;
    while (s[i] && s[i] != '>' && i < lim) {
        size_t a = i;
        while (s[i] && !strchr(" \t\r\n/>=", s[i]))
            i++;
        size_t nlen = i - a;
        while (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')
            i++;
        if (s[i] == '=') {
            for (i++; s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'; i++)
                ;
            char *v = attr_value(s, &i, lim), **slot = NULL;
            if (nlen == 4 && !strncasecmp(s + a, "href", 4))
                slot = &at->href;
            else if (nlen == 5 && !strncasecmp(s + a, "class", 5))
                slot = &at->cls;
            else if (nlen == 5 && !strncasecmp(s + a, "style", 5))
                slot = &at->style;
            else if (nlen == 3 && !strncasecmp(s + a, "alt", 3))
                slot = &at->alt;
            else if (nlen == 5 && !strncasecmp(s + a, "start", 5))
                at->start = atoi(v);
            if (slot) {
                free(*slot);
                *slot = v;
            } else {
                free(v);
            }
        } else if (i == a) {
            i++; /* '/' or stray characters */
        }
    }
    return s[i] == '>' && i < lim ? i + 1 : 0;
}

/* Bold and italic written as inline styles (Zoho's editor does). */
static unsigned style_marks(const char *style)
{
    unsigned m = 0;
    char *low = xstrdup(style ? style : ""), *p, *q;
    for (p = low; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    for (p = low; (p = strstr(p, "font-")); p++) {
        q = strchr(p, ':');
        if (!q)
            break;
        while (*++q == ' ')
            ;
        if (!strncmp(p, "font-weight", 11) &&
            (!strncmp(q, "bold", 4) || (q[0] >= '6' && q[0] <= '9' && q[1] == '0')))
            m |= MD_STRONG;
        if (!strncmp(p, "font-style", 10) &&
            (!strncmp(q, "italic", 6) || !strncmp(q, "oblique", 7)))
            m |= MD_EM;
    }
    free(low);
    return m;
}

/* "language-x" or "lang-x" in a class attribute. */
static char *class_lang(const char *cls)
{
    const char *p = cls ? strstr(cls, "lang") : NULL;
    if (!p)
        return NULL;
    p += strncmp(p, "language-", 9) ? strncmp(p, "lang-", 5) ? 0 : 5 : 9;
    size_t n = strcspn(p, " \t\r\n");
    return n && p != cls ? xstrndup(p, n) : NULL;
}

static enum kind tag_kind(const char *name)
{
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
        if (!strcmp(tags[i].name, name))
            return tags[i].kind;
    return K_OTHER;
}

static int is_block(enum kind k)
{
    return k == K_P || k == K_DIV || k == K_UL || k == K_OL || k == K_LI || k == K_H ||
           k == K_QUOTE || k == K_HR || k == K_PRE || k == K_TABLE || k == K_TR || k == K_BR;
}

static void hp_end_pre(struct hp *h)
{
    mdb_code_take(&h->b, &h->lang, &h->code);
    h->pre = 0;
}

/* A line ends at a <div> edge, and an empty <div> line ends the paragraph. */
static void hp_div_edge(struct hp *h, const struct elem *closing)
{
    if (closing && h->texts == closing->texts && !mdb_line_empty(&h->b))
        h->para_break = 1;
    else if (!h->pending_br && !mdb_line_empty(&h->b))
        h->pending_br = 1;
}

static void hp_close_elem(struct hp *h, struct elem *e)
{
    h->marks = e->saved_marks;
    h->href = e->saved_href;
    h->space_marks &= h->marks;
    if (h->cell && is_block(e->kind))
        h->space = 1;
    else if (e->kind == K_DIV)
        hp_div_edge(h, e);
    else if (e->kind == K_PRE && h->pre)
        hp_end_pre(h), hp_boundary(h);
    else if (is_block(e->kind))
        hp_boundary(h);
    if (e->opened)
        mdb_close(&h->b);
    if (e->kind == K_CELL)
        h->cell--;
    free(e->href);
}

static void hp_pop_to(struct hp *h, size_t k)
{
    while (h->n > k)
        hp_close_elem(h, &h->stk[--h->n]);
}

/* Index of the nearest open element named name, not looking past an element whose kind is in
 * the stop set (bits 1 << kind), or -1. */
static long hp_find(const struct hp *h, const char *name, unsigned stop)
{
    for (size_t i = h->n, k = 0; i > 0 && k < CLOSE_SEARCH; i--, k++) {
        if (!strcmp(h->stk[i - 1].name, name))
            return (long)(i - 1);
        if (stop & (1u << h->stk[i - 1].kind))
            break;
    }
    return -1;
}

static void hp_open_block(struct hp *h, struct elem *e, const struct attrs *at)
{
    int level = e->name[1] - '0';
    if (e->kind == K_DIV) {
        hp_div_edge(h, NULL);
        return;
    }
    hp_boundary(h);
    if (e->kind == K_H) {
        mdb_heading(&h->b, level);
    } else if (e->kind == K_UL || e->kind == K_OL || e->kind == K_LI || e->kind == K_QUOTE) {
        mdb_open(&h->b,
                 e->kind == K_UL   ? MD_BULLETS
                 : e->kind == K_OL ? MD_ORDERED
                 : e->kind == K_LI ? MD_ITEM
                                   : MD_QUOTE,
                 e->kind == K_OL ? (at->start > 0 ? at->start : 1) : 0);
        e->opened = 1;
    } else if (e->kind == K_PRE) {
        h->pre = h->pre_start = 1;
        free(h->lang);
        h->lang = class_lang(at->cls);
    }
}

static void hp_open(struct hp *h, const char *name, const struct attrs *at, int self_closing)
{
    enum kind k = tag_kind(name);
    long prev;
    h->pre_start = 0; /* only a line ending right after <pre> is dropped */
    if ((k == K_LI && (prev = hp_find(h, "li", 1u << K_UL | 1u << K_OL)) >= 0) ||
        (k == K_P &&
         (prev = hp_find(h, "p", 1u << K_DIV | 1u << K_LI | 1u << K_QUOTE | 1u << K_CELL)) >= 0))
        hp_pop_to(h, (size_t)prev); /* an open <li> or <p> ends at the next one */
    if (k == K_BR || k == K_HR || k == K_IMG || k == K_VOID) {
        if (k == K_BR && h->pre)
            strbuf_addch(&h->code, '\n');
        else if (h->cell && (k == K_BR || k == K_HR))
            h->space = 1;
        else if (k == K_BR && !mdb_line_empty(&h->b))
            h->pending_br++;
        else if (k == K_HR)
            hp_boundary(h), mdb_rule(&h->b);
        else if (k == K_IMG && at->alt)
            hp_text(h, at->alt, strlen(at->alt));
        return;
    }
    if (self_closing)
        return;
    if (h->n == h->alloc)
        h->stk = xrealloc(h->stk, (h->alloc = h->alloc ? 2 * h->alloc : 16) * sizeof *h->stk);
    struct elem *e = &h->stk[h->n++];
    memset(e, 0, sizeof *e);
    e->kind = k;
    snprintf(e->name, sizeof e->name, "%s", name);
    e->saved_marks = h->marks, e->saved_href = h->href, e->texts = h->texts;
    h->marks |= style_marks(at->style) |
                (k == K_B   ? MD_STRONG
                 : k == K_I ? MD_EM
                            : 0) |
                (k == K_CODE && !h->pre ? MD_CODESPAN : 0);
    if (k == K_A && at->href) {
        e->href = xstrdup(at->href);
        h->href = e->href;
        h->marks |= MD_LINK;
    }
    if (k == K_CODE && h->pre && !h->lang)
        h->lang = class_lang(at->cls);
    if (h->cell && is_block(k)) {
        h->space = 1;
    } else if (k == K_CELL) {
        long tr = hp_find(h, "tr", 1u << K_TABLE);
        if (tr >= 0 && h->stk[tr].cells++)
            h->cell_sep = 1;
        h->cell++;
    } else if (is_block(k)) {
        hp_open_block(h, e, at);
    }
}

static void attrs_free(struct attrs *at)
{
    free(at->href), free(at->cls), free(at->style), free(at->alt);
}

/* Skips script or style content up to its end tag; returns the index after it. */
static size_t skip_raw(const char *s, size_t i, const char *name)
{
    size_t n = strlen(name);
    for (; s[i]; i++)
        if (s[i] == '<' && s[i + 1] == '/' && !strncasecmp(s + i + 2, name, n)) {
            const char *gt = strchr(s + i, '>');
            return gt ? (size_t)(gt - s) + 1 : strlen(s);
        }
    return i;
}

/* A tag, comment or declaration at s[i] == '<': handled, returns its length; 0 for text. */
static size_t hp_tag(struct hp *h, const char *s, size_t i)
{
    char name[16];
    size_t a = i + 1, k = 0, end;
    int close = s[a] == '/';
    struct attrs at = {0};
    if (!strncmp(s + i, "<!--", 4)) {
        const char *e = strstr(s + i + 4, "-->");
        return e ? (size_t)(e - s) + 3 - i : strlen(s + i);
    }
    if (s[a] == '!' || s[a] == '?') {
        const char *e = strchr(s + a, '>');
        return e ? (size_t)(e - s) + 1 - i : strlen(s + i);
    }
    a += (size_t)close;
    if (!((s[a] >= 'a' && s[a] <= 'z') || (s[a] >= 'A' && s[a] <= 'Z')))
        return 0;
    for (; (s[a] >= 'a' && s[a] <= 'z') || (s[a] >= 'A' && s[a] <= 'Z') ||
           (s[a] >= '0' && s[a] <= '9');
         a++)
        if (k + 1 < sizeof name)
            name[k++] = (char)(s[a] >= 'A' && s[a] <= 'Z' ? s[a] + 32 : s[a]);
    name[k] = '\0';
    if (!(end = tag_attrs(s, a, &at))) {
        attrs_free(&at);
        return 0;
    }
    if (close) {
        long e = hp_find(h, name, 0);
        if (e >= 0)
            hp_pop_to(h, (size_t)e);
        else if (!strcmp(name, "p") || !strcmp(name, "br"))
            hp_open(h, name, &at, 1); /* a stray </p> or </br> still breaks the line */
    } else if (tag_kind(name) == K_SKIP) {
        end = skip_raw(s, end, name);
    } else {
        hp_open(h, name, &at, end >= 2 && s[end - 2] == '/');
    }
    attrs_free(&at);
    return end - i;
}

char *richtext_html_to_md(const char *html)
{
    char *s = md_utf8_clean(html);
    struct hp h;
    memset(&h, 0, sizeof h);
    mdb_init(&h.b);
    strbuf_init(&h.code, 0);
    for (size_t i = 0, k; s[i]; i += k) {
        k = s[i] == '<' ? hp_tag(&h, s, i) : 0;
        if (!k) {
            k = 1 + strcspn(s + i + 1, "<");
            hp_text(&h, s + i, k);
        }
    }
    hp_pop_to(&h, 0);
    if (h.pre)
        hp_end_pre(&h);
    struct md_node *tree = mdb_finish(&h.b);
    char *md = md_render(tree, 0);
    md_node_free(tree);
    free(h.stk);
    free(h.lang);
    strbuf_release(&h.code);
    free(s);
    return md;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* Text escaped. With blank (the state "the last character written was a space, or the line
 * just began") it is body text: a space HTML would collapse or drop is written as &nbsp;, a tab
 * as &#9;. A space ending the text stays a space only if tail_ok (visible text with the same
 * marks follows); in code and link text (edges) a space at either end is always kept.
 * Without blank it is an attribute value or <pre> content, where only markup is escaped. */
static void html_text(struct strbuf *o, const char *s, size_t n, int *blank, int tail_ok, int edges)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '&')
            strbuf_adds(o, "&amp;");
        else if (c == '<')
            strbuf_adds(o, "&lt;");
        else if (c == '>')
            strbuf_adds(o, "&gt;");
        else if (c == '"' && !blank)
            strbuf_adds(o, "&quot;");
        else if (c == '\t' && blank)
            strbuf_adds(o, "&#9;");
        else if (c == ' ' && blank &&
                 (*blank || (i + 1 < n ? s[i + 1] == ' ' : !tail_ok) || (edges && !i)))
            strbuf_adds(o, "&nbsp;");
        else
            strbuf_addch(o, c);
        if (blank)
            *blank = c == ' ';
    }
}

static const char *html_tag_of(unsigned mark)
{
    return mark == MD_LINK ? "a" : mark == MD_STRONG ? "strong" : mark == MD_EM ? "em" : "code";
}

static void html_inline(struct strbuf *o, const struct md_text *t)
{
    static const unsigned order[] = {MD_LINK, MD_STRONG, MD_EM, MD_CODESPAN};
    struct md_open st[4];
    int n = 0, more, blank = 1;
    size_t pos = 0, npos;
    struct md_span sp, nx;
    for (int have = md_text_next(t, &pos, &sp); have; sp = nx, have = more, pos = npos) {
        npos = pos;
        more = md_text_next(t, &npos, &nx);
        for (int keep = md_marks_keep(st, n, &sp); n > keep;)
            strbuf_addf(o, "</%s>", html_tag_of(st[--n].mark));
        for (size_t i = 0; i < 4 && sp.s[0] != '\n'; i++) {
            if (!(sp.marks & order[i]) || md_marks_has(st, n, order[i]))
                continue;
            st[n++] = (struct md_open){order[i], 0, sp.href};
            strbuf_addf(o, "<%s", html_tag_of(order[i]));
            if (order[i] == MD_LINK) {
                strbuf_adds(o, " href=\"");
                html_text(o, sp.href, strlen(sp.href), NULL, 0, 0);
                strbuf_addch(o, '"');
            }
            strbuf_addch(o, '>');
        }
        int edges = (sp.marks & (MD_CODESPAN | MD_LINK)) != 0;
        if (sp.s[0] == '\n')
            strbuf_adds(o, sp.marks & MD_HARD ? "<br>" : "\n"), blank = 1;
        else
            html_text(o, sp.s, sp.len, &blank, !edges && more && nx.s[0] != '\n', edges);
    }
    while (n)
        strbuf_addf(o, "</%s>", html_tag_of(st[--n].mark));
}

static void html_blocks(struct strbuf *o, const struct md_node *parent)
{
    for (const struct md_node *c = parent->first; c; c = c->next) {
        if (c->type == MD_PARA && parent->type == MD_ITEM && c == parent->first) {
            html_inline(o, &c->text); /* a list item's first paragraph needs no <p> */
        } else if (c->type == MD_PARA) {
            strbuf_adds(o, "<p>");
            html_inline(o, &c->text);
            strbuf_adds(o, "</p>");
        } else if (c->type == MD_HEADING) {
            strbuf_addf(o, "<h%d>", c->num);
            html_inline(o, &c->text);
            strbuf_addf(o, "</h%d>", c->num);
        } else if (c->type == MD_CODE) {
            strbuf_adds(o, "<pre><code");
            if (c->info) {
                strbuf_adds(o, " class=\"language-");
                html_text(o, c->info, strlen(c->info), NULL, 0, 0);
                strbuf_addch(o, '"');
            }
            strbuf_addch(o, '>');
            html_text(o, c->code.buf, c->code.len, NULL, 0, 0);
            strbuf_adds(o, "</code></pre>");
        } else if (c->type == MD_RULE) {
            strbuf_adds(o, "<hr>");
        } else {
            const char *tag = c->type == MD_QUOTE     ? "blockquote"
                              : c->type == MD_BULLETS ? "ul"
                              : c->type == MD_ORDERED ? "ol"
                                                      : "li";
            strbuf_addf(o, "<%s", tag);
            if (c->type == MD_ORDERED && c->num != 1)
                strbuf_addf(o, " start=\"%d\"", c->num);
            strbuf_addch(o, '>');
            html_blocks(o, c);
            strbuf_addf(o, "</%s>", tag);
        }
    }
}

char *richtext_md_to_html(const char *md)
{
    struct md_node *tree = md_parse(md, 0);
    struct strbuf o = STRBUF_INIT;
    html_blocks(&o, tree);
    md_node_free(tree);
    return strbuf_detach(&o);
}
