/*
 * The CommonMark-subset markdown parser into the tree of markdown_p.h (blocks line by line, then
 * inlines), and plain text read as light markup. Unlike CommonMark: no raw HTML, reference links,
 * images or link titles (their text stays text), only ASCII punctuation counts for emphasis, so
 * "**注意：**请" keeps its strong text, and a bare http(s) URL is a link (GFM's autolink
 * literal). It writes nothing (md_render.c) and knows nothing of ADF or HTML.
 */
#include "mapping/markdown_p.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- inline parser (CommonMark's delimiter algorithm, marks recorded as byte ranges) ----- */

#define IP_DELETED 0x80
#define IP_BARE 0x100 /* range of a bare URL: a link where no explicit link is */
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
    p->f = md_vec_grow(p->f, &p->af, p->out.len + len, 1);
    memset(p->f + p->out.len, (int)flags, len);
    strbuf_add(&p->out, s, len);
}

static void ip_range(struct ip *p, size_t a, size_t b, unsigned mark, char *href)
{
    p->r = md_vec_grow(p->r, &p->ar, p->nr + 1, sizeof *p->r);
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
void md_delim_can(char c, unsigned before, unsigned after, int *open, int *close)
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
    md_delim_can(c, md_cp_before(p->s, p->i), md_cp_at(p->s, p->n, j), &open, &close);
    if (open || close) {
        p->d = md_vec_grow(p->d, &p->ad, p->nd + 1, sizeof *p->d);
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

size_t md_scheme_autolink(const char *s, size_t n)
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

size_t md_email_autolink(const char *s, size_t n)
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
    size_t n = p->n - p->i - 1, len = md_scheme_autolink(s, n);
    struct strbuf href = STRBUF_INIT;
    if (!len && (len = md_email_autolink(s, n)))
        strbuf_adds(&href, "mailto:");
    if (!len)
        return 0;
    strbuf_add(&href, s, len);
    ip_link_text(p, s, len, strbuf_detach(&href));
    p->i += len + 2;
    return 1;
}

size_t md_bare_url(const char *s, size_t n, size_t i)
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
        p->br = md_vec_grow(p->br, &p->abr, p->nbr + 1, sizeof *p->br);
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

/* A bare http(s) URL at s[j] (GFM's autolink literal); in markdown it ends before a bracket,
 * backtick or backslash, which links, code and escapes claim first. */
static size_t ip_bare_url(const struct ip *p, size_t j)
{
    size_t lim = j;
    if (p->plain)
        return md_bare_url(p->s, p->n, j);
    while (lim < p->n && (unsigned char)p->s[lim] > ' ' && !strchr("[]`\\", p->s[lim]))
        lim++;
    return md_bare_url(p->s, lim, j);
}

static void ip_run(struct ip *p)
{
    const char *special = p->plain ? "\nhH" : "\\`*_[]<&\nhH";
    while (p->i < p->n) {
        size_t len, j = p->i + strcspn(p->s + p->i, special);
        if (j > p->i) {
            ip_emit(p, p->s + p->i, (j < p->n ? j : p->n) - p->i, 0);
            p->i = j;
        } else if (p->s[j] != '\n' && (len = ip_bare_url(p, j))) {
            size_t start = p->out.len;
            ip_emit(p, p->s + j, len, 0);
            ip_range(p, start, p->out.len, p->plain ? MD_LINK : IP_BARE, xstrndup(p->s + j, len));
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
        else if (r->mark != IP_BARE)
            depth[r->a]++, depth[r->b]--;
    }
    for (size_t k = 0; k < p->nr; k++) { /* a bare URL in a link's text stays text */
        struct range *r = &p->r[k];
        size_t j = r->a;
        while (r->mark == IP_BARE && j < r->b && !lk[j])
            j++;
        if (r->mark == IP_BARE && j == r->b)
            for (j = r->a; j < r->b; j++)
                lk[j] = k + 1;
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
void md_inline(const char *s, size_t n, int plain, struct md_text *t)
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
void md_atx_trim(const char *s, size_t *a, size_t *b)
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
    md_atx_trim(s, a, b);
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
    for (const char *s = clean, *next; *s; s = next) {
        size_t len;
        next = md_line_next(s, &len);
        bp_line(&p, s, len);
    }
    bp_close_leaf(&p);
    strbuf_release(&p.para);
    free(clean);
    md_tidy(p.stk[0]);
    return p.stk[0];
}
