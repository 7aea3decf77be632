/*
 * Jira wiki markup (Data Center, REST v2) <-> canonical markdown through the tree of
 * markdown_p.h. The reader forgives anything: unknown macros keep their text, {color} and panels
 * are unwrapped, tables become " | " rows, images their file name, mentions "@name". The writer
 * emits what Jira renders back into the same tree, checked by reading each paragraph back; what
 * wiki cannot say degrades as docs/richtext.md lists. No ADF or HTML here.
 */
#include "mapping/markdown_p.h"
#include "mapping/richtext.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WIKI_MAX_NEST 16 /* inline effects nested deeper than this stay literal */
#define WIKI_MAX_TAGS 64 /* block tags ({quote}, {code}) in one line beyond this are text */

/* Per run of inline text: which searches already failed from an earlier position (so later ones
 * fail too), keeping the reader linear: a closer of each effect, then ']' and '}}'. */
enum { NO_RBRACKET = 7, NO_CODE_END, NO_COUNT };
#define MACRO_TAG_MAX 256 /* a {macro:...} tag not closed within this is text */

/* ---- reading: inline --------------------------------------------------------------------- */

struct wi {
    const char *s; /* one line, s[0, n) */
    size_t n;
    struct md_text *t;
};

static int wi_ws(const struct wi *w, size_t i)
{
    return i >= w->n || cp_is_ws(md_cp_at(w->s, w->n, i));
}

static unsigned effect_mark(char c)
{
    return c == '*' ? MD_STRONG : c == '_' || c == '?' ? MD_EM : 0;
}

static int is_effect(char c)
{
    return c && strchr("*_-+^~?", c) != NULL;
}

/* Length of the effect delimiter for c at i: "{c}" (braced, 3 or 4 bytes) or c itself (1 or 2
 * for "??"), or 0. */
static size_t effect_len(const struct wi *w, size_t i, char c, int *braced)
{
    size_t d = c == '?' ? 2 : 1;
    const char *s = w->s;
    *braced = 0;
    if (s[i] == '{' && i + d + 1 < w->n && !strncmp(s + i + 1, c == '?' ? "??" : &c, d) &&
        s[i + d + 1] == '}') {
        *braced = 1;
        return d + 2;
    }
    if (s[i] != c || (d == 2 && (i + 1 >= w->n || s[i + 1] != '?')))
        return 0;
    return d;
}

static int effect_opens(const struct wi *w, size_t i, size_t d)
{
    return (i == 0 || !is_alnum(w->s[i - 1])) && !wi_ws(w, i + d) && w->s[i + d] != w->s[i];
}

/* The closer of effect c for content starting at from, before end: its start, or end. */
static size_t effect_closer(const struct wi *w, char c, size_t from, size_t end, size_t *clen)
{
    for (size_t k = from + 1; k < end; k++) {
        int braced;
        size_t d;
        if (w->s[k] == '\\') {
            k++;
            continue;
        }
        if (!(d = effect_len(w, k, c, &braced)) || k + d > end)
            continue;
        if (braced || (!wi_ws(w, k - 1) && (k + d >= w->n || !is_alnum(w->s[k + d])))) {
            *clen = d;
            return k;
        }
    }
    return end;
}

static void wi_add(struct wi *w, const char *s, size_t len, unsigned marks, const char *href)
{
    md_text_add(w->t, s, len, marks, href);
}

/* Backslash escapes and entities resolved; a "\\" pair stays one backslash. */
static void wiki_unescape(const char *s, size_t n, struct strbuf *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned cp;
        size_t k;
        if (s[i] == '\\' && i + 1 < n && is_apunct((unsigned char)s[i + 1]))
            strbuf_addch(out, s[++i]);
        else if (s[i] == '&' && (k = md_entity(s + i, &cp)) && i + k <= n)
            md_utf8_put(out, cp), i += k - 1;
        else
            strbuf_addch(out, s[i]);
    }
}

/* The first unescaped c in s[from, end), or end. */
static size_t find_unescaped(const char *s, size_t from, size_t end, char c)
{
    for (size_t k = from; k < end; k++) {
        if (s[k] == '\\')
            k++;
        else if (s[k] == c)
            return k;
    }
    return end;
}

static int url_like(const char *u)
{
    return strstr(u, "://") || !strncasecmp(u, "mailto:", 7) || !strncasecmp(u, "file:", 5);
}

static void wi_parse(struct wi *w, size_t a, size_t b, unsigned marks, const char *href, int depth);

/* [text|url], [url], [~user], [^attachment], [#anchor]; returns the bytes used or 0. */
static size_t wi_link(struct wi *w, size_t i, size_t b, unsigned marks, const char *href, int depth,
                      unsigned char *nocl)
{
    size_t k = nocl[NO_RBRACKET] ? b : find_unescaped(w->s, i + 1, b, ']'), bar;
    struct strbuf url = STRBUF_INIT;
    nocl[NO_RBRACKET] = k >= b;
    if (k >= b || k == i + 1 || (marks & MD_LINK))
        return 0;
    const char *s = w->s;
    if (s[i + 1] == '~' || s[i + 1] == '^' || s[i + 1] == '#') {
        size_t a = i + 2;
        if (s[i + 1] == '~' && k - a > 10 && !strncasecmp(s + a, "accountid:", 10))
            a += 10;
        if (s[i + 1] == '~')
            wi_add(w, "@", 1, marks, href);
        wiki_unescape(s + a, k - a, &url);
        wi_add(w, url.buf, url.len, marks, href);
        strbuf_release(&url);
        return k + 1 - i;
    }
    bar = find_unescaped(s, i + 1, k, '|');
    size_t ue = find_unescaped(s, bar < k ? bar + 1 : i + 1, k, '|');
    wiki_unescape(s + (bar < k ? bar + 1 : i + 1), ue - (bar < k ? bar + 1 : i + 1), &url);
    if (!url_like(url.buf)) {
        wi_parse(w, i + 1, bar, marks, href, depth + 1);
    } else if (bar < k) {
        wi_parse(w, i + 1, bar, marks | MD_LINK, url.buf, depth + 1);
    } else {
        wi_add(w, url.buf, url.len, marks | MD_LINK, url.buf);
    }
    strbuf_release(&url);
    return k + 1 - i;
}

/* !image.png|thumbnail! as its file name; returns the bytes used or 0. */
static size_t wi_image(struct wi *w, size_t i, size_t b, unsigned marks, const char *href)
{
    size_t k = find_unescaped(w->s, i + 1, b, '!'), e;
    if (k >= b || k == i + 1 || wi_ws(w, i + 1))
        return 0;
    e = find_unescaped(w->s, i + 1, k, '|');
    for (size_t j = i + 1; j < e; j++)
        if (is_blank_char(w->s[j]))
            return 0;
    if (!memchr(w->s + i + 1, '.', e - i - 1))
        return 0;
    wi_add(w, w->s + i + 1, e - i - 1, marks, href);
    return k + 1 - i;
}

static const char *const panel_macros[] = {"panel",  "info",    "note",   "tip", "warning",
                                           "expand", "section", "column", NULL};

/* The length of a {macro} or {macro:params} tag at s naming one of names, or 0. */
static size_t macro_tag(const char *s, size_t n, const char *const *names, const char **params,
                        size_t *plen)
{
    if (!n || s[0] != '{')
        return 0;
    for (; *names; names++) {
        size_t k = strlen(*names);
        if (n > k + 1 && !strncmp(s + 1, *names, k) && (s[k + 1] == '}' || s[k + 1] == ':')) {
            const char *e = memchr(s, '}', n < MACRO_TAG_MAX ? n : MACRO_TAG_MAX);
            if (!e)
                return 0;
            *params = s[k + 1] == ':' ? s + k + 2 : e;
            *plen = (size_t)(e - *params);
            return (size_t)(e - s) + 1;
        }
    }
    return 0;
}

/* {{monospace}}, {color:x}...{color}, {anchor:x} and panel tags within a line (their text
 * stays); returns the bytes used or 0. */
static size_t wi_brace(struct wi *w, size_t i, size_t b, unsigned marks, const char *href,
                       unsigned char *nocl)
{
    const char *s = w->s;
    if (i + 1 < b && s[i + 1] == '{' && !nocl[NO_CODE_END]) {
        size_t k = i + 2;
        while (k + 1 < b && !(s[k] == '}' && s[k + 1] == '}'))
            k += s[k] == '\\' ? 2 : 1;
        nocl[NO_CODE_END] = k + 1 >= b;
        if (k + 1 >= b || k == i + 2)
            return 0;
        struct strbuf sb = STRBUF_INIT;
        wiki_unescape(s + i + 2, k - i - 2, &sb);
        wi_add(w, sb.buf, sb.len, marks | MD_CODESPAN, href);
        strbuf_release(&sb);
        return k + 2 - i;
    }
    static const char *const inline_macros[] = {"color", "anchor", NULL};
    const char *p;
    size_t plen, k;
    if ((k = macro_tag(s + i, b - i, inline_macros, &p, &plen)) ||
        (k = macro_tag(s + i, b - i, panel_macros, &p, &plen)))
        return k;
    return 0;
}

/* An effect (*strong*, _em_, ??cite??, -strike-, +under+, ^sup^, ~sub~, or braced) at i. */
static size_t wi_effect(struct wi *w, size_t i, size_t b, unsigned marks, const char *href,
                        int depth, unsigned char *nocl)
{
    char c = w->s[i] == '{' ? w->s[i + 1] : w->s[i];
    int braced, ci;
    size_t d, clen = 0, k;
    if (!is_effect(c) || !(d = effect_len(w, i, c, &braced)) || depth >= WIKI_MAX_NEST)
        return 0;
    ci = (int)(strchr("*_-+^~?", c) - "*_-+^~?");
    if (nocl[ci] || (!braced && !effect_opens(w, i, d)))
        return 0;
    k = effect_closer(w, c, i + d, b, &clen);
    if (k >= b) {
        nocl[ci] = 1; /* no closer from here on: a later opener finds none either */
        return 0;
    }
    wi_parse(w, i + d, k, marks | effect_mark(c), href, depth + 1);
    return k + clen - i;
}

static size_t wi_special(struct wi *w, size_t i, size_t b, unsigned marks, const char *href,
                         int depth, unsigned char *nocl)
{
    const char *s = w->s;
    unsigned cp;
    size_t k;
    struct strbuf sb = STRBUF_INIT;
    if (s[i] == '\\' && i + 1 < b && s[i + 1] == '\\') {
        md_text_break(w->t, 1);
        return 2;
    }
    if (s[i] == '\\' && i + 1 < b && is_apunct((unsigned char)s[i + 1])) {
        wi_add(w, s + i + 1, 1, marks, href);
        return 2;
    }
    if (s[i] == '&' && (k = md_entity(s + i, &cp)) && i + k <= b) {
        md_utf8_put(&sb, cp);
        wi_add(w, sb.buf, sb.len, marks, href);
        strbuf_release(&sb);
        return k;
    }
    if ((k = wi_effect(w, i, b, marks, href, depth, nocl)))
        return k;
    if (s[i] == '{' && (k = wi_brace(w, i, b, marks, href, nocl)))
        return k;
    if (s[i] == '[' && depth < WIKI_MAX_NEST && (k = wi_link(w, i, b, marks, href, depth, nocl)))
        return k;
    if (s[i] == '!' && (k = wi_image(w, i, b, marks, href)))
        return k;
    if ((s[i] == 'h' || s[i] == 'H') && !(marks & MD_LINK) && (k = md_bare_url(s, b, i))) {
        char *url = xstrndup(s + i, k);
        wi_add(w, url, k, marks | MD_LINK, url);
        free(url);
        return k;
    }
    wi_add(w, s + i, 1, marks, href);
    return 1;
}

static void wi_parse(struct wi *w, size_t a, size_t b, unsigned marks, const char *href, int depth)
{
    unsigned char nocl[NO_COUNT] = {0};
    for (size_t i = a; i < b;) {
        size_t j = i + strcspn(w->s + i, "\\&{[!hH*_-+^~?");
        if (j > b)
            j = b;
        if (j > i) {
            wi_add(w, w->s + i, j - i, marks, href);
            i = j;
        } else {
            i += wi_special(w, i, b, marks, href, depth, nocl);
        }
    }
}

/* Inline wiki s[0, n) into t: every line ending and every "\\" is a hard break. */
static void wiki_inline(const char *s, size_t n, struct md_text *t)
{
    for (size_t i = 0; i <= n;) {
        size_t e = i;
        while (e < n && s[e] != '\n')
            e++;
        struct wi w = {s + i, e - i, t};
        wi_parse(&w, 0, e - i, 0, NULL, 0);
        if (e < n)
            md_text_break(t, 1);
        i = e + 1;
    }
}

/* ---- reading: blocks --------------------------------------------------------------------- */

struct wr {
    struct md_builder b;
    char lists[MD_MAX_DEPTH]; /* open list levels: '*' bullets, '#' ordered */
    int nlists;
    int quote; /* inside {quote} */
    int code;  /* inside {code} (1) or {noformat} (2) */
    int tags;  /* block tags met in this line */
    struct strbuf codebuf;
    char *lang;
};

static void feed_text(struct md_builder *b, const struct md_text *t)
{
    size_t pos = 0;
    struct md_span sp;
    while (md_text_next(t, &pos, &sp)) {
        if (sp.s[0] == '\n')
            mdb_break(b, sp.marks & MD_HARD);
        else
            mdb_text(b, sp.s, sp.len, sp.marks, sp.href);
    }
}

static void wr_inline(struct wr *r, const char *s, size_t n)
{
    struct md_text t = {0};
    wiki_inline(s, n, &t);
    feed_text(&r->b, &t);
    md_text_free(&t);
}

static void wr_close_lists(struct wr *r, int keep)
{
    mdb_end(&r->b);
    while (r->nlists > keep) {
        mdb_close(&r->b); /* the item */
        mdb_close(&r->b); /* the list */
        r->nlists--;
    }
}

static void wr_item(struct wr *r, const char *prefix, size_t len, const char *s, size_t n)
{
    int common = 0, want = len > MD_MAX_DEPTH ? MD_MAX_DEPTH : (int)len;
    while (common < r->nlists && common < want &&
           r->lists[common] == (prefix[common] == '#' ? '#' : '*'))
        common++;
    if (common == want) { /* a sibling item, maybe after deeper ones */
        wr_close_lists(r, common);
        mdb_close(&r->b);
        mdb_open(&r->b, MD_ITEM, 0);
    } else {
        wr_close_lists(r, common);
        for (int k = common; k < want; k++) {
            r->lists[k] = prefix[k] == '#' ? '#' : '*';
            mdb_open(&r->b, r->lists[k] == '#' ? MD_ORDERED : MD_BULLETS, 1);
            mdb_open(&r->b, MD_ITEM, 0);
            r->nlists++;
        }
    }
    wr_inline(r, s, n);
    mdb_end(&r->b);
}

/* A list marker ("*", "##", "#*", or a single "-") and its blank at the line start; returns
 * the marker length or 0. */
static size_t list_marker(const char *s, size_t n)
{
    size_t k = 0;
    if (n >= 2 && s[0] == '-' && is_blank_char(s[1]))
        return 1;
    while (k < n && (s[k] == '*' || s[k] == '#'))
        k++;
    /* a lone "*" or "#" is an empty item (our writer escapes such a paragraph) */
    return k && (k == n || is_blank_char(s[k])) ? k : 0;
}

static int is_rule_line(const char *s, size_t n)
{
    size_t k = 0;
    while (k < n && s[k] == '-')
        k++;
    while (k < n && is_blank_char(s[k]))
        k++;
    return k == n && n >= 4 && s[3] == '-';
}

/* A table row: cells split at unescaped '|' outside [links], joined with " | ". */
static void wr_table_row(struct wr *r, const char *s, size_t n)
{
    size_t i = 0, start = 0;
    int cells = 0, bracket = 0;
    wr_close_lists(r, 0);
    for (i = 0; i <= n; i++) {
        if (i < n && s[i] == '\\') {
            i++;
            continue;
        }
        if (i < n && (s[i] == '[' || s[i] == ']'))
            bracket = s[i] == '[';
        if (i < n && (s[i] != '|' || bracket))
            continue;
        size_t a = start, e = i;
        while (a < e && is_blank_char(s[a]))
            a++;
        while (e > a && is_blank_char(s[e - 1]))
            e--;
        if (e > a) {
            if (cells++)
                mdb_text(&r->b, " | ", 3, 0, NULL);
            wr_inline(r, s + a, e - a);
        }
        start = i + 1;
    }
    mdb_end(&r->b);
}

/* The value of key=value, or a lone first parameter when key is NULL, from "a|k=v". */
static char *macro_param(const char *p, size_t n, const char *key)
{
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && p[e] != '|')
            e++;
        const char *eq = memchr(p + i, '=', e - i);
        if (!key && !eq && e > i)
            return xstrndup(p + i, e - i);
        if (key && eq && (size_t)(eq - (p + i)) == strlen(key) && !strncmp(p + i, key, strlen(key)))
            return xstrndup(eq + 1, (size_t)(p + e - eq - 1));
        i = e + 1;
    }
    return NULL;
}

static void wr_line(struct wr *r, const char *s, size_t n);

/* The first tag in s[0, n), or NULL. */
static const char *find_tag(const char *s, size_t n, const char *tag)
{
    size_t k = strlen(tag);
    for (size_t i = 0; i + k <= n; i++)
        if (s[i] == tag[0] && !memcmp(s + i, tag, k))
            return s + i;
    return NULL;
}

static void wr_end_code(struct wr *r)
{
    mdb_code_take(&r->b, &r->lang, &r->codebuf);
    r->code = 0;
}

/* A line inside {code} or {noformat}: content up to the closing tag; the rest is a line. */
static void wr_code_line(struct wr *r, const char *s, size_t n)
{
    const char *tag = r->code == 1 ? "{code}" : "{noformat}";
    const char *end = find_tag(s, n, tag);
    if (!end) {
        strbuf_add(&r->codebuf, s, n);
        strbuf_addch(&r->codebuf, '\n');
    } else {
        size_t before = (size_t)(end - s), after = before + strlen(tag);
        if (before) {
            strbuf_add(&r->codebuf, s, before);
            strbuf_addch(&r->codebuf, '\n');
        }
        wr_end_code(r);
        wr_line(r, s + after, n - after);
    }
}

/* {code:lang}, {noformat}, panels and {quote} at the line start; returns the bytes used. */
static size_t wr_macro(struct wr *r, const char *s, size_t n)
{
    static const char *const code[] = {"code", NULL}, *const nof[] = {"noformat", NULL};
    const char *p;
    size_t plen, k;
    if ((k = macro_tag(s, n, code, &p, &plen)) || (k = macro_tag(s, n, nof, &p, &plen))) {
        wr_close_lists(r, 0);
        r->code = s[1] == 'c' ? 1 : 2;
        free(r->lang);
        r->lang = r->code == 1 ? macro_param(p, plen, NULL) : NULL;
        return k;
    }
    if (n >= 7 && !strncmp(s, "{quote}", 7)) {
        wr_close_lists(r, 0);
        if (r->quote)
            mdb_close(&r->b);
        else
            mdb_open(&r->b, MD_QUOTE, 0);
        r->quote = !r->quote;
        return 7;
    }
    if ((k = macro_tag(s, n, panel_macros, &p, &plen))) {
        char *title = macro_param(p, plen, "title");
        wr_close_lists(r, 0);
        if (!title && s[1] == 'e') /* {expand:Title} */
            title = macro_param(p, plen, NULL);
        if (title && *title) {
            mdb_text(&r->b, title, strlen(title), MD_STRONG, NULL);
            mdb_end(&r->b);
        }
        free(title);
        return k;
    }
    return 0;
}

static int heading_level(const char *s, size_t n)
{
    if (n >= 4 && (s[0] == 'h' || s[0] == 'H') && s[1] >= '1' && s[1] <= '6' && s[2] == '.' &&
        is_blank_char(s[3]))
        return s[1] - '0';
    return 0;
}

/* A line outside code: blocks first, else a paragraph line. */
static void wr_line(struct wr *r, const char *s, size_t n)
{
    size_t a = 0, k;
    if (++r->tags > WIKI_MAX_TAGS && r->code) { /* a line of endless tags: the rest is text */
        strbuf_add(&r->codebuf, s, n);
        strbuf_addch(&r->codebuf, '\n');
        return;
    }
    if (r->tags > WIKI_MAX_TAGS) {
        wr_inline(r, s, n);
        return;
    }
    if (r->code) {
        wr_code_line(r, s, n); /* code keeps its blanks */
        return;
    }
    while (a < n && is_blank_char(s[a]))
        a++;
    s += a, n -= a;
    while (n && is_blank_char(s[n - 1]))
        n--;
    const char *q = find_tag(s, n, "{quote}");
    int level;
    if (!n) {
        wr_close_lists(r, 0);
    } else if (q && q > s && q[-1] != '\\') { /* text before a {quote} in the line */
        wr_line(r, s, (size_t)(q - s));
        wr_line(r, q, n - (size_t)(q - s));
    } else if ((k = wr_macro(r, s, n))) {
        if (n > k || !r->code) /* an opening tag alone adds no code line */
            wr_line(r, s + k, n - k);
    } else if ((level = heading_level(s, n))) {
        wr_close_lists(r, 0);
        mdb_heading(&r->b, level);
        wr_inline(r, s + 4, n - 4);
        mdb_end(&r->b);
    } else if (n >= 4 && !strncmp(s, "bq.", 3) && is_blank_char(s[3])) {
        wr_close_lists(r, 0);
        mdb_open(&r->b, MD_QUOTE, 0);
        wr_inline(r, s + 4, n - 4);
        mdb_close(&r->b);
    } else if (is_rule_line(s, n)) {
        wr_close_lists(r, 0);
        mdb_rule(&r->b);
    } else if ((k = list_marker(s, n))) {
        wr_item(r, s, k, s + k + (k < n), n - k - (k < n));
    } else if (s[0] == '|') {
        wr_table_row(r, s, n);
    } else {
        if (r->nlists)
            wr_close_lists(r, 0);
        if (r->b.leaf)
            mdb_break(&r->b, 1);
        wr_inline(r, s, n);
    }
}

char *richtext_wiki_to_md(const char *wiki)
{
    char *clean = md_utf8_clean(wiki);
    struct wr r;
    memset(&r, 0, sizeof r);
    mdb_init(&r.b);
    strbuf_init(&r.codebuf, 0);
    for (const char *s = clean, *next; *s; s = next) {
        size_t len;
        next = md_line_next(s, &len);
        r.tags = 0;
        wr_line(&r, s, len);
    }
    if (r.code)
        wr_end_code(&r);
    wr_close_lists(&r, 0);
    if (r.quote)
        mdb_close(&r.b);
    struct md_node *tree = mdb_finish(&r.b);
    char *md = md_render(tree, 0);
    md_node_free(tree);
    strbuf_release(&r.codebuf);
    free(r.lang);
    free(clean);
    return md;
}

/* ---- writing ----------------------------------------------------------------------------- */

enum wmode { W_PARA, W_ITEM, W_HEADING };

struct ww {
    struct strbuf *o;
    enum wmode mode;
    int full; /* escape every character that could open or close an effect */
};

static char out_last(const struct strbuf *o)
{
    return o->len ? o->buf[o->len - 1] : '\n';
}

/* Escapes for what would read as block syntax at a line start; returns the bytes used. */
static size_t ww_line_start(struct ww *w, const char *s, size_t n)
{
    if (w->mode != W_PARA || out_last(w->o) != '\n')
        return 0;
    if (heading_level(s, n) || (n >= 4 && !strncmp(s, "bq.", 3) && is_blank_char(s[3]))) {
        strbuf_add(w->o, s, 2); /* "h1\. " and "bq\. " read as text */
        strbuf_adds(w->o, "\\.");
        return 3;
    }
    if (strchr("#*-|", s[0])) {
        strbuf_addch(w->o, '\\');
        strbuf_addch(w->o, s[0]);
        return 1;
    }
    return 0;
}

static int could_delimit(const struct ww *w, char c, char next)
{
    char prev = out_last(w->o);
    if (c == '?')
        return next == '?' || prev == '?';
    return (!is_alnum(prev) && next && !cp_is_ws((unsigned char)next)) ||
           (!cp_is_ws((unsigned char)prev) && !is_alnum(next));
}

/* Literal text: escaped so that reading it back gives s (next: the byte after it, 0 when not
 * known). */
static void ww_text(struct ww *w, const char *s, size_t n, int in_link, int in_code, char next)
{
    struct strbuf *o = w->o;
    for (size_t i = 0, k; i < n; i++) {
        char c = s[i], nx = i + 1 < n ? s[i + 1] : next;
        unsigned cp;
        if (!in_code && (k = ww_line_start(w, s + i, n - i))) {
            i += k - 1;
            continue;
        }
        if (c == '\\' && (!nx || is_apunct((unsigned char)nx)))
            strbuf_adds(o, "&#92;");
        else if (c == '&' && md_entity(s + i, &cp))
            strbuf_adds(o, "&amp;");
        else if (c == '{' || c == '[' || ((c == ']' || c == '|') && in_link) ||
                 (c == '}' && (w->full || (in_code && (nx == '}' || !nx)))) ||
                 (c == '!' && w->full && nx && !cp_is_ws((unsigned char)nx)) ||
                 (c == ':' && !in_link && i + 2 < n && s[i + 1] == '/' && s[i + 2] == '/') ||
                 (is_effect(c) && w->full && could_delimit(w, c, nx)))
            strbuf_addch(o, '\\'), strbuf_addch(o, c);
        else
            strbuf_addch(o, c);
    }
}

static void ww_effect(struct ww *w, char c, int braced)
{
    if (braced)
        strbuf_addch(w->o, '{');
    strbuf_addch(w->o, c);
    if (braced)
        strbuf_addch(w->o, '}');
}

static void ww_close(struct ww *w, const struct md_open *m, char next)
{
    if (m->mark == MD_LINK && m->ch == 'u') {
        strbuf_addch(w->o, ']');
    } else if (m->mark == MD_LINK) {
        strbuf_addch(w->o, '|');
        ww_text(w, m->href, strlen(m->href), 1, 1, 0);
        strbuf_addch(w->o, ']');
    } else if (m->mark == MD_CODESPAN) {
        strbuf_adds(w->o, "}}");
    } else {
        ww_effect(w, m->ch, cp_is_ws((unsigned char)out_last(w->o)) || is_alnum(next));
    }
}

static void ww_open(struct ww *w, struct md_open *st, int *n, const struct md_span *sp)
{
    static const unsigned order[] = {MD_LINK, MD_STRONG, MD_EM, MD_CODESPAN};
    for (size_t i = 0; i < 4; i++) {
        unsigned m = order[i];
        if (!(sp->marks & m) || md_marks_has(st, *n, m))
            continue;
        st[*n] = (struct md_open){m, m == MD_STRONG ? '*' : '_', sp->href};
        if (m == MD_LINK)
            strbuf_addch(w->o, '[');
        else if (m == MD_CODESPAN)
            strbuf_adds(w->o, "{{");
        else
            ww_effect(w, st[*n].ch, is_alnum(out_last(w->o)) || cp_is_ws((unsigned char)sp->s[0]));
        (*n)++;
    }
}

static void ww_break(struct ww *w)
{
    if (w->mode == W_PARA && out_last(w->o) != '\n')
        strbuf_addch(w->o, '\n');
    else
        strbuf_adds(w->o, "\\\\ ");
}

static void ww_inline(struct ww *w, const struct md_text *t)
{
    struct md_open st[4];
    int n = 0, more;
    size_t pos = 0, npos;
    struct md_span sp, nx;
    for (int have = md_text_next(t, &pos, &sp); have; sp = nx, have = more, pos = npos) {
        npos = pos;
        more = md_text_next(t, &npos, &nx);
        int link_goes_on = more && (nx.marks & MD_LINK) && str_eq(nx.href, sp.href);
        for (int keep = md_marks_keep(st, n, &sp); n > keep;)
            ww_close(w, &st[--n], sp.s[0]);
        if (sp.s[0] == '\n') {
            ww_break(w);
            continue;
        }
        if (sp.marks == MD_LINK && !n && !link_goes_on && strlen(sp.href) == sp.len &&
            !memcmp(sp.href, sp.s, sp.len)) {
            st[n++] = (struct md_open){MD_LINK, 'u', sp.href}; /* [url] */
            strbuf_addch(w->o, '[');
        } else {
            ww_open(w, st, &n, &sp);
        }
        ww_text(w, sp.s, sp.len, md_marks_has(st, n, MD_LINK), (sp.marks & MD_CODESPAN) != 0, 0);
    }
    while (n)
        ww_close(w, &st[--n], 0);
}

/* t as wiki reads it back: every line break hard. */
static void text_hardened(struct md_text *dst, const struct md_text *t, int heading)
{
    md_text_copy(dst, t, 0, t->len, ~0u);
    for (size_t i = 0; i < dst->len; i++)
        if (dst->s[i] == '\n')
            dst->m[i] = MD_HARD;
    md_text_tidy(dst, heading);
}

static int ww_try(const struct md_text *t, struct strbuf *o, enum wmode mode, int full)
{
    struct ww w = {o, mode, full};
    struct md_text want = {0}, back = {0};
    strbuf_reset(o);
    ww_inline(&w, t);
    text_hardened(&want, t, mode == W_HEADING);
    wiki_inline(o->buf, o->len, &back);
    md_text_tidy(&back, mode == W_HEADING);
    int ok = md_text_eq(&want, &back);
    md_text_free(&want);
    md_text_free(&back);
    return ok;
}

/* The last resort: no marks, a link as "text (url)" unless its text is its url. */
static void ww_unmarked(const struct md_text *t, struct strbuf *o, enum wmode mode)
{
    struct ww w = {o, mode, 1};
    struct strbuf text = STRBUF_INIT;
    const char *link = NULL;
    size_t pos = 0;
    struct md_span sp;
    strbuf_reset(o);
    for (int more = 1; more;) {
        more = md_text_next(t, &pos, &sp);
        const char *h = more && sp.s[0] != '\n' && (sp.marks & MD_LINK) ? sp.href : NULL;
        if (link && !str_eq(h, link) && strcmp(text.buf, link))
            strbuf_addf(o, " (%s)", link);
        if (!str_eq(h, link))
            strbuf_reset(&text);
        link = h;
        if (more && sp.s[0] == '\n')
            ww_break(&w);
        else if (more)
            ww_text(&w, sp.s, sp.len, 0, 0, 0), strbuf_add(&text, sp.s, sp.len);
    }
    strbuf_release(&text);
}

/* Inline text written so that wiki reads it back the same; what it cannot say loses, in turn,
 * strong and emphasis, then every mark. */
static void ww_para(struct strbuf *out, const struct md_text *t, enum wmode mode)
{
    struct strbuf o = STRBUF_INIT;
    struct md_text fewer = {0};
    md_text_copy(&fewer, t, 0, t->len, MD_CODESPAN | MD_LINK);
    if (!ww_try(t, &o, mode, 0) && !ww_try(t, &o, mode, 1) && !ww_try(&fewer, &o, mode, 1))
        ww_unmarked(t, &o, mode);
    strbuf_add(out, o.buf, o.len);
    strbuf_release(&o);
    md_text_free(&fewer);
}

static void ww_code(struct strbuf *o, const struct md_node *n)
{
    const char *tag = strstr(n->code.buf, "{code}") ? "noformat" : "code";
    int lang_ok = n->info && *tag == 'c';
    for (const char *p = n->info; lang_ok && *p; p++)
        lang_ok = is_alnum(*p) || strchr("+#._-", *p);
    strbuf_addf(o, "{%s%s%s}\n", tag, lang_ok ? ":" : "", lang_ok ? n->info : "");
    strbuf_add(o, n->code.buf, n->code.len);
    strbuf_addf(o, "{%s}", tag);
}

/* Everything of n but its direct lists, flattened into one text with hard breaks: a list item
 * line cannot hold blocks. */
static void flatten(struct md_text *t, const struct md_node *n, int lists_too)
{
    for (const struct md_node *c = n->first; c; c = c->next) {
        if (is_list(c) && !lists_too)
            continue;
        if ((c->type == MD_PARA || c->type == MD_HEADING) && c->text.len) {
            if (t->len)
                md_text_break(t, 1);
            md_text_copy(t, &c->text, 0, c->text.len, ~0u);
        } else if (c->type == MD_CODE) {
            for (const char *s = c->code.buf, *e; *s; s = e + 1) {
                e = strchr(s, '\n');
                if (t->len)
                    md_text_break(t, 1);
                md_text_add(t, s, (size_t)(e - s), MD_CODESPAN, NULL);
            }
        } else if (c->type != MD_RULE) {
            flatten(t, c, 1);
        }
    }
}

static void ww_list(struct strbuf *o, const struct md_node *list, struct strbuf *prefix)
{
    strbuf_addch(prefix, list->type == MD_ORDERED ? '#' : '*');
    for (const struct md_node *it = list->first; it; it = it->next) {
        struct md_text t = {0};
        if (o->len && out_last(o) != '\n')
            strbuf_addch(o, '\n');
        strbuf_add(o, prefix->buf, prefix->len);
        flatten(&t, it, 0);
        md_text_tidy(&t, 0);
        if (t.len) {
            strbuf_addch(o, ' ');
            ww_para(o, &t, W_ITEM);
        }
        md_text_free(&t);
        for (const struct md_node *c = it->first; c; c = c->next)
            if (is_list(c))
                ww_list(o, c, prefix);
    }
    prefix->len--;
    prefix->buf[prefix->len] = '\0';
}

static void ww_blocks(struct strbuf *o, const struct md_node *parent, int in_quote)
{
    for (const struct md_node *c = parent->first; c; c = c->next) {
        struct strbuf prefix = STRBUF_INIT;
        if (c != parent->first)
            strbuf_adds(o, "\n\n");
        if (c->type == MD_PARA) {
            ww_para(o, &c->text, W_PARA);
        } else if (c->type == MD_HEADING) {
            strbuf_addf(o, "h%d. ", c->num);
            ww_para(o, &c->text, W_HEADING);
        } else if (c->type == MD_CODE) {
            ww_code(o, c);
        } else if (c->type == MD_RULE) {
            strbuf_adds(o, "----");
        } else if (c->type == MD_QUOTE && in_quote) {
            ww_blocks(o, c, 1); /* {quote} does not nest */
        } else if (c->type == MD_QUOTE) {
            strbuf_adds(o, "{quote}\n");
            ww_blocks(o, c, 1);
            strbuf_adds(o, "\n{quote}");
        } else if (is_list(c)) {
            ww_list(o, c, &prefix);
        }
        strbuf_release(&prefix);
    }
}

char *richtext_md_to_wiki(const char *md)
{
    struct md_node *tree = md_parse(md, 0);
    struct strbuf o = STRBUF_INIT;
    ww_blocks(&o, tree, 0);
    md_node_free(tree);
    return strbuf_detach(&o);
}
