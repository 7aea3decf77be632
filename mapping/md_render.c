/*
 * The tree of markdown_p.h written as canonical markdown (checked by reading it back) or as plain
 * text, and richtext.h's markdown normalisation and plain-text conversions built on md_parse.c.
 * It holds no parser of its own and knows nothing of ADF or HTML.
 */
#include "mapping/markdown_p.h"
#include "mapping/richtext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- renderer ---------------------------------------------------------------------------- */

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

static size_t ordered_prefix(const char *s, size_t n)
{
    size_t j = 0;
    while (j < n && j < 9 && is_digit(s[j]))
        j++;
    return j && j < n && (s[j] == '.' || s[j] == ')') ? j : 0;
}

/* The ':' of "http://" or "https://" at s[i]: escaped, text stays text, not a bare URL. */
static int bare_url_colon(const char *s, size_t n, size_t i)
{
    return i + 2 < n && s[i + 1] == '/' && s[i + 2] == '/' &&
           ((i >= 4 && !strncasecmp(s + i - 4, "http", 4)) ||
            (i >= 5 && !strncasecmp(s + i - 5, "https", 5)));
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
            md_delim_can(c, o->len ? md_cp_before(o->buf, o->len) : '\n', md_cp_at(s, n, k), &open,
                         &close);
            esc = start || k == n || open || close;
            for (; i + 1 < k; i++)
                strbuf_adds(o, esc ? (c == '*' ? "\\*" : "\\_") : (c == '*' ? "*" : "_"));
        } else {
            esc = (start && strchr("#>+-=~[", c)) || c == '`' ||
                  (c == '\\' && (i + 1 == n || is_apunct((unsigned char)s[i + 1]))) ||
                  ((c == '[' || c == ']') && in_link) ||
                  (c == ']' && (i + 1 == n || s[i + 1] == '(')) ||
                  (c == '<' && i + 1 < n && (is_alpha(s[i + 1]) || strchr("/!?", s[i + 1]))) ||
                  (c == '&' && entity_like(s + i)) || (c == '!' && i + 1 == n && before_link) ||
                  (c == ':' && !in_link && bare_url_colon(s, n, i));
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
        ok = md_scheme_autolink(sb.buf, sb.len) == n;
    else if (!strncmp(href, "mailto:", 7) && strlen(href + 7) == n && !memcmp(s, href + 7, n))
        ok = md_email_autolink(sb.buf, sb.len) == n;
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
        if ((want & MD_LINK) && !(want & MD_CODESPAN) && !md_marks_has(st, n, MD_LINK) &&
            !link_goes_on && autolinkable(sp.s, sp.len, sp.href)) {
            struct md_span around = sp; /* strong or emphasis go around the <url> */
            around.marks &= ~(unsigned)MD_LINK;
            open_marks(o, st, &n, &around, strat);
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
        md_atx_trim(o->buf, &a, &b);
    strbuf_add(&sb, o->buf + a, b - a);
    md_inline(sb.buf, sb.len, 0, t);
    md_text_tidy(t, heading);
    strbuf_release(&sb);
}

static int try_write(const struct md_text *t, struct strbuf *o, int heading, int strat)
{
    struct md_text back = {0};
    strbuf_reset(o);
    write_inline(t, o, heading, strat);
    reparse(o, heading, &back);
    int ok = md_text_eq(t, &back);
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
        for (size_t e = b;
             e > a && is_apunct((unsigned char)t->s[e - 1]) && e < t->len &&
             !cp_is_ws(md_cp_at(t->s, t->len, e)) && !is_apunct((unsigned char)t->s[e]);
             e--)
            t->m[e - 1] &= ~mark, changed = 1;
        for (; a < b && (t->m[a] & mark) && is_apunct((unsigned char)t->s[a]) && a > 0 &&
               !cp_is_ws(md_cp_before(t->s, a)) && !is_apunct((unsigned char)t->s[a - 1]);
             a++)
            t->m[a] &= ~mark, changed = 1;
    }
    md_text_unmark_edges(t, mark);
    return changed;
}

/* Writes t so that reading it back gives t. What markdown cannot say as it stands loses, in
 * turn, the punctuation at emphasis edges, then strong and emphasis, then every mark. */
static void render_inline(const struct md_text *t, struct strbuf *out, int heading)
{
    struct strbuf o = STRBUF_INIT;
    struct md_text alt = {0};
    if (!try_write(t, &o, heading, 0) && !try_write(t, &o, heading, 1)) {
        md_text_copy(&alt, t, 0, t->len, ~0u);
        while (text_shift_punct(&alt, MD_STRONG) | text_shift_punct(&alt, MD_EM))
            ; /* each pass may expose new edges */
        for (unsigned keep = MD_CODESPAN | MD_LINK;
             !try_write(&alt, &o, heading, 0) && !try_write(&alt, &o, heading, 1) && keep;
             keep = keep == MD_LINK ? 0 : MD_LINK) {
            struct md_text fewer = {0};
            md_text_copy(&fewer, t, 0, t->len, keep);
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
