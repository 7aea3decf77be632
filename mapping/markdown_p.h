/*
 * Internals shared by the rich-text converters (md_tree.c, md_parse.c, md_render.c,
 * richtext_adf.c, richtext_html.c, richtext_wiki.c).
 * Every format goes through one block tree. Paragraphs and headings hold marked text: UTF-8
 * bytes with a set of marks per byte, so nesting never has to be represented, only which
 * characters are strong, emphasised, code or part of which link. Tolerant readers (ADF, HTML)
 * feed the tree through a builder that caps nesting; markdown has its own parser.
 */
#ifndef CB_MARKDOWN_P_H
#define CB_MARKDOWN_P_H

#include <stddef.h>
#include <string.h>
#include "core/strbuf.h"

/* Containers (block quotes, list items) nested deeper than this are flattened into their
 * ancestor, so no reader or renderer recurses deeper than about twice this. */
#define MD_MAX_DEPTH 32

enum md_type {
    MD_DOC,
    MD_PARA,
    MD_HEADING, /* num = level 1..6 */
    MD_CODE,    /* info = language or NULL; code = content, every line ending in '\n' */
    MD_QUOTE,
    MD_BULLETS, /* marker '*', '-' or '+' */
    MD_ORDERED, /* num = start; marker '.' or ')' */
    MD_ITEM,
    MD_RULE,
};

/* Marks of one byte of marked text. MD_HARD only ever sits on a '\n' (a hard line break);
 * a '\n' without it is a soft line break. Line breaks carry no other mark. */
enum md_mark {
    MD_STRONG = 1,
    MD_EM = 2,
    MD_CODESPAN = 4,
    MD_LINK = 8,
    MD_HARD = 16,
};

struct md_text {
    char *s;          /* bytes, NUL-terminated */
    unsigned char *m; /* marks per byte */
    unsigned *h;      /* per byte: 1 + index into hrefs when MD_LINK, else 0 */
    size_t len, alloc;
    char **hrefs;
    size_t nhrefs, ahrefs;
};

/* A maximal stretch of bytes with the same marks and link; a line break is a span of its own. */
struct md_span {
    const char *s;
    size_t len;
    unsigned marks;
    const char *href; /* set when marks has MD_LINK */
};

struct md_node {
    enum md_type type;
    int num;
    char marker;
    unsigned implicit : 1; /* opened by the builder, not by the input */
    char *info;
    struct strbuf code;
    struct md_text text; /* MD_PARA, MD_HEADING */
    struct md_node *parent, *first, *last, *next;
};

/* Marked text. md_text_add copies len bytes of s with marks; a link with an unsafe scheme
 * (javascript:, vbscript:, data:) loses MD_LINK and keeps its text. */
void md_text_add(struct md_text *t, const char *s, size_t len, unsigned marks, const char *href);
void md_text_break(struct md_text *t, int hard);
void md_text_free(struct md_text *t);
/* Iterates spans from *pos; returns 0 at the end. */
int md_text_next(const struct md_text *t, size_t *pos, struct md_span *sp);

/* A mark opened by a writer that nests them (markdown, HTML). md_marks_keep gives how many of
 * the open marks st[0, n) the span sp keeps; the others close, innermost first. */
struct md_open {
    unsigned mark;
    char ch;
    const char *href;
};
int md_marks_keep(const struct md_open *st, int n, const struct md_span *sp);
int md_marks_has(const struct md_open *st, int n, unsigned mark);

/* The tree. md_node_new appends the node to parent when parent is not NULL. md_tidy brings
 * every node into canonical form (line endings, whitespace at line ends and emphasis edges,
 * redundant breaks, empty paragraphs and lists removed); all readers call it. */
struct md_node *md_node_new(enum md_type type, struct md_node *parent);
void md_node_free(struct md_node *n);
void md_tidy(struct md_node *doc);

/* The builder used by the ADF and HTML readers. Containers opened beyond MD_MAX_DEPTH are
 * ignored (their content lands in the deepest open one); list items outside a list get an
 * implicit list, and anything but items inside a list an implicit item. */
struct md_builder {
    struct md_node *doc, *top, *leaf;
    int depth, ignored;
};
void mdb_init(struct md_builder *b);
void mdb_open(struct md_builder *b, enum md_type type, int num); /* QUOTE, lists, ITEM */
void mdb_close(struct md_builder *b);
void mdb_heading(struct md_builder *b, int level); /* text goes to a heading until mdb_end */
void mdb_end(struct md_builder *b);                /* ends the open paragraph or heading */
void mdb_text(struct md_builder *b, const char *s, size_t len, unsigned marks, const char *href);
void mdb_break(struct md_builder *b, int hard);
int mdb_line_empty(const struct md_builder *b); /* nothing written since the last break */
void mdb_code(struct md_builder *b, const char *lang, const char *code, size_t len);
/* mdb_code with code cleaned of invalid UTF-8, then *lang freed and NULL and code emptied. */
void mdb_code_take(struct md_builder *b, char **lang, struct strbuf *code);
void mdb_rule(struct md_builder *b);
struct md_node *mdb_finish(struct md_builder *b); /* tidied tree, owned by the caller */

/* Markdown in and out. md_parse never returns NULL; NULL input gives an empty document. With
 * plain set the input is read as plain text with light markup (richtext.h). */
struct md_node *md_parse(const char *md, int plain);
char *md_render(const struct md_node *doc, int plain);

/* Helpers. md_utf8_clean returns a malloc'ed copy of s ("" for NULL) with invalid UTF-8
 * replaced by U+FFFD. md_entity decodes the HTML entity at s (which starts with '&') into *cp
 * and returns the bytes it spans, or 0 when there is none. */
char *md_utf8_clean(const char *s);
/* The length of the line at s (without its ending) into *len; returns the next line's start. */
const char *md_line_next(const char *s, size_t *len);
void md_utf8_put(struct strbuf *sb, unsigned cp);
size_t md_entity(const char *s, unsigned *cp);

/* ---- internals of the markdown files (md_tree.c, md_parse.c, md_render.c) ---------------- */

/* Character classes; is_apunct is ASCII punctuation, cp_is_ws Unicode whitespace. */
static inline int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static inline int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

static inline int is_apunct(unsigned c)
{
    return c > 0 && c < 128 && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", (int)c) != NULL;
}

static inline int is_blank_char(int c)
{
    return c == ' ' || c == '\t';
}

static inline int cp_is_ws(unsigned cp)
{
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

static inline int is_list(const struct md_node *n)
{
    return n->type == MD_BULLETS || n->type == MD_ORDERED;
}

/* The code point at s[i] of s[0, n) ('\n' past the end, U+FFFD when invalid), and the one that
 * ends at s[i] ('\n' at the start, the byte s[i - 1] when invalid). */
unsigned md_cp_at(const char *s, size_t n, size_t i);
unsigned md_cp_before(const char *s, size_t i);
/* Grows array p of *alloc elements of size bytes to hold need of them; returns the array, never
 * NULL (xrealloc). */
void *md_vec_grow(void *p, size_t *alloc, size_t need, size_t size);

/* md_text_copy appends src[a, b) to dst keeping only the marks in mask. md_text_eq compares
 * bytes, marks and link targets. md_text_unmark_edges takes mark off Unicode whitespace at the
 * edges of its runs. md_text_tidy brings t into the canonical form md_tidy gives paragraphs
 * (heading set: headings', where every line ending becomes a space). */
void md_text_copy(struct md_text *dst, const struct md_text *src, size_t a, size_t b,
                  unsigned mask);
int md_text_eq(const struct md_text *a, const struct md_text *b);
void md_text_unmark_edges(struct md_text *t, unsigned mark);
void md_text_tidy(struct md_text *t, int heading);

/* Parser pieces the renderer checks its output with. md_delim_can: whether a run of c ('*' or
 * '_') between code points before and after can open or close emphasis. md_scheme_autolink and
 * md_email_autolink: the length of an autolink's URI or address at s (after its '<'), which a
 * '>' within s[0, n) ends, or 0. md_atx_trim strips blanks and an ATX closing sequence from
 * s[*a, *b). md_inline parses inline markdown s[0, n) (s[n] must be '\0') and appends it to t;
 * plain reads only bare URLs and takes every line ending as a hard break. */
void md_delim_can(char c, unsigned before, unsigned after, int *open, int *close);
size_t md_scheme_autolink(const char *s, size_t n);
size_t md_email_autolink(const char *s, size_t n);
void md_atx_trim(const char *s, size_t *a, size_t *b);
void md_inline(const char *s, size_t n, int plain, struct md_text *t);
/* The length of a bare http(s) URL at s[i] of s[0, n) not preceded by a letter or digit, without
 * the sentence's trailing punctuation, or 0. */
size_t md_bare_url(const char *s, size_t n, size_t i);

#endif
