/*
 * Internals shared by the rich-text converters (markdown.c, richtext_adf.c, richtext_html.c).
 * Every format goes through one block tree. Paragraphs and headings hold marked text: UTF-8
 * bytes with a set of marks per byte, so nesting never has to be represented, only which
 * characters are strong, emphasised, code or part of which link. Tolerant readers (ADF, HTML)
 * feed the tree through a builder that caps nesting; markdown has its own parser.
 */
#ifndef CB_MARKDOWN_P_H
#define CB_MARKDOWN_P_H

#include <stddef.h>
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
void md_utf8_put(struct strbuf *sb, unsigned cp);
size_t md_entity(const char *s, unsigned *cp);

#endif
