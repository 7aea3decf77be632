/*
 * Jira Cloud's ADF <-> canonical markdown through the tree of markdown_p.h. Reading forgives
 * anything: unknown nodes keep their readable text (tables as " | " rows, cards as their url,
 * emoji as their text, dates as ISO dates, panels unwrapped, task boxes as U+2611/U+2610);
 * strike and underline keep only their text. Writing emits only what the ADF schema accepts (no
 * empty text, code marked only with a link, no heading, rule or quote inside quotes and list
 * items). No wiki markup here.
 */
#include "mapping/markdown_p.h"
#include "mapping/richtext.h"
#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

/* ---- reading ----------------------------------------------------------------------------- */

static const char *adf_type(const cJSON *n)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(n, "type");
    return cJSON_IsString(t) && t->valuestring ? t->valuestring : "";
}

static const char *adf_attr(const cJSON *n, const char *name)
{
    const cJSON *a =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(n, "attrs"), name);
    return cJSON_IsString(a) && a->valuestring && *a->valuestring ? a->valuestring : NULL;
}

static const cJSON *adf_content(const cJSON *n)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(n, "content");
    return cJSON_IsArray(c) ? c->child : NULL;
}

static int type_in(const char *type, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(type, *set))
            return 1;
    return 0;
}

static const char *const inline_types[] = {"text",        "hardBreak", "mention",    "emoji",
                                           "date",        "status",    "inlineCard", "placeholder",
                                           "mediaInline", NULL};
static const char *const block_types[] = {"paragraph",    "heading",    "listItem",  "taskItem",
                                          "codeBlock",    "blockquote", "tableCell", "tableHeader",
                                          "decisionItem", "panel",      "media",     NULL};

/* Adds untrusted text (and href) with invalid UTF-8 replaced. */
static void add_text(struct md_builder *b, const char *s, unsigned marks, const char *href)
{
    char *t = md_utf8_clean(s), *h = href ? md_utf8_clean(href) : NULL;
    mdb_text(b, t, strlen(t), marks, h);
    free(t);
    free(h);
}

static void add_text_node(struct md_builder *b, const cJSON *n)
{
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(n, "text"), *m;
    const char *href = NULL;
    unsigned marks = 0;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(n, "marks"))
    {
        const char *t = adf_type(m);
        marks |= !strcmp(t, "strong") ? MD_STRONG
                 : !strcmp(t, "em")   ? MD_EM
                 : !strcmp(t, "code") ? MD_CODESPAN
                                      : 0;
        if (!strcmp(t, "link") && (href = adf_attr(m, "href")))
            marks |= MD_LINK;
    }
    if (cJSON_IsString(text) && text->valuestring)
        add_text(b, text->valuestring, marks, href);
}

static void add_date(struct md_builder *b, const cJSON *n)
{
    const cJSON *ts =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(n, "attrs"), "timestamp");
    int64_t ms = 0;
    char buf[CBTIME_BUFSZ];
    if (cJSON_IsNumber(ts) && ts->valuedouble > -1e15 && ts->valuedouble < 1e15)
        ms = (int64_t)ts->valuedouble;
    else if (!cJSON_IsString(ts) || cbtime_parse(ts->valuestring, &ms) != CB_OK)
        return;
    add_text(b, cbtime_format_date(ms, 0, buf), 0, NULL);
}

/* Text of a leaf node; returns 0 for nodes whose content has to be walked instead. */
static int add_leaf(struct md_builder *b, const cJSON *n)
{
    const char *type = adf_type(n), *s;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(n, "text");
    if (!strcmp(type, "text")) {
        add_text_node(b, n);
    } else if (!strcmp(type, "hardBreak")) {
        mdb_break(b, 1);
    } else if (!strcmp(type, "mention")) {
        s = adf_attr(n, "text") ? adf_attr(n, "text") : adf_attr(n, "id");
        if (s && *s != '@')
            add_text(b, "@", 0, NULL);
        add_text(b, s ? s : "@someone", 0, NULL);
    } else if (!strcmp(type, "date")) {
        add_date(b, n);
    } else if (!strcmp(type, "media")) {
        s = adf_attr(n, "alt");
        add_text(b, s ? s : adf_attr(n, "url") ? adf_attr(n, "url") : "(attachment)", 0, NULL);
    } else if (adf_content(n)) {
        return 0;
    } else if (adf_attr(n, "url")) { /* inlineCard, blockCard, embedCard */
        add_text(b, adf_attr(n, "url"), MD_LINK, adf_attr(n, "url"));
    } else if ((s = adf_attr(n, "text")) || (s = adf_attr(n, "shortName"))) {
        add_text(b, s, 0, NULL); /* emoji, status, placeholder, unknown */
    } else if (cJSON_IsString(text) && text->valuestring) {
        add_text(b, text->valuestring, 0, NULL);
    }
    return 1;
}

/* All text under n (and its siblings unless only) into the open paragraph, without recursion:
 * blocks met on the way are separated by a space. */
static void adf_inline(struct md_builder *b, const cJSON *n, int only)
{
    size_t sn = 0, sa = 16;
    const cJSON **stk = xmalloc(sa * sizeof *stk);
    stk[sn++] = n;
    while (sn) {
        const cJSON *c = stk[--sn];
        if (!c)
            continue;
        if (sn + 2 > sa)
            stk = xrealloc(stk, (sa *= 2) * sizeof *stk);
        stk[sn++] = c == n && only ? NULL : c->next;
        if (type_in(adf_type(c), block_types) && !mdb_line_empty(b) &&
            b->leaf->text.s[b->leaf->text.len - 1] != ' ')
            mdb_text(b, " ", 1, 0, NULL);
        if (!add_leaf(b, c))
            stk[sn++] = adf_content(c);
    }
    free(stk);
}

static void adf_code(struct md_builder *b, const cJSON *n)
{
    struct strbuf code = STRBUF_INIT;
    const cJSON *c, *t;
    for (c = adf_content(n); c; c = c->next) {
        t = cJSON_GetObjectItemCaseSensitive(c, "text");
        if (cJSON_IsString(t) && t->valuestring)
            strbuf_adds(&code, t->valuestring);
        else if (!strcmp(adf_type(c), "hardBreak"))
            strbuf_addch(&code, '\n');
    }
    if (code.len) /* every line of the tree's code ends in a line ending, ADF's last does not */
        strbuf_addch(&code, '\n');
    char *clean = md_utf8_clean(code.buf), *lang = md_utf8_clean(adf_attr(n, "language"));
    mdb_code(b, lang, clean, strlen(clean));
    free(clean);
    free(lang);
    strbuf_release(&code);
}

static void adf_table(struct md_builder *b, const cJSON *n)
{
    for (const cJSON *row = adf_content(n); row; row = row->next) {
        mdb_end(b);
        for (const cJSON *cell = adf_content(row); cell; cell = cell->next) {
            if (cell != adf_content(row))
                mdb_text(b, " | ", 3, 0, NULL);
            adf_inline(b, cell, 1);
        }
        mdb_end(b);
    }
}

static void adf_blocks(struct md_builder *b, const cJSON *n, int depth);

static void adf_container(struct md_builder *b, const cJSON *n, enum md_type type, int num,
                          int depth)
{
    mdb_open(b, type, num);
    adf_blocks(b, adf_content(n), depth + 1);
    mdb_close(b);
}

/* Block nodes from n on; nesting beyond what the tree keeps is read as text. */
static void adf_blocks(struct md_builder *b, const cJSON *n, int depth)
{
    for (; n; n = n->next) {
        const char *type = adf_type(n), *title;
        const cJSON *order =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(n, "attrs"), "order");
        if (type_in(type, inline_types)) {
            adf_inline(b, n, 1);
            continue;
        }
        mdb_end(b);
        if (depth > 3 * MD_MAX_DEPTH || !strcmp(type, "paragraph") || !strcmp(type, "media")) {
            adf_inline(b, n, 1);
        } else if (!strcmp(type, "heading")) {
            const cJSON *lv = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(n, "attrs"), "level");
            mdb_heading(b, cJSON_IsNumber(lv) ? lv->valueint : 1);
            adf_inline(b, adf_content(n), 0);
        } else if (!strcmp(type, "bulletList") || !strcmp(type, "taskList") ||
                   !strcmp(type, "decisionList")) {
            adf_container(b, n, MD_BULLETS, 0, depth);
        } else if (!strcmp(type, "orderedList")) {
            adf_container(b, n, MD_ORDERED, cJSON_IsNumber(order) ? order->valueint : 1, depth);
        } else if (!strcmp(type, "taskItem")) { /* the box as text: a checklist stays one */
            const char *state = adf_attr(n, "state");
            mdb_open(b, MD_ITEM, 0);
            add_text(b, state && !strcmp(state, "DONE") ? "\u2611 " : "\u2610 ", 0, NULL);
            adf_blocks(b, adf_content(n), depth + 1);
            mdb_close(b);
        } else if (!strcmp(type, "listItem") || !strcmp(type, "decisionItem")) {
            adf_container(b, n, MD_ITEM, 0, depth);
        } else if (!strcmp(type, "blockquote")) {
            adf_container(b, n, MD_QUOTE, 0, depth);
        } else if (!strcmp(type, "codeBlock")) {
            adf_code(b, n);
        } else if (!strcmp(type, "rule")) {
            mdb_rule(b);
        } else if (!strcmp(type, "table")) {
            adf_table(b, n);
        } else if (adf_content(n)) { /* panel, expand, layouts, extensions: their content */
            if ((title = adf_attr(n, "title")))
                add_text(b, title, MD_STRONG, NULL);
            mdb_end(b);
            adf_blocks(b, adf_content(n), depth + 1);
        } else {
            adf_inline(b, n, 1);
        }
        mdb_end(b);
    }
}

char *richtext_adf_to_md(const cJSON *doc)
{
    struct md_builder b;
    if (!cJSON_IsObject(doc) || strcmp(adf_type(doc), "doc"))
        return xstrdup("");
    mdb_init(&b);
    adf_blocks(&b, adf_content(doc), 0);
    struct md_node *tree = mdb_finish(&b);
    char *md = md_render(tree, 0);
    md_node_free(tree);
    return md;
}

/* ---- writing ----------------------------------------------------------------------------- */

enum adf_ctx { IN_DOC, IN_QUOTE, IN_ITEM };

static cJSON *adf_node(cJSON *arr, const char *type)
{
    cJSON *n = cJSON_CreateObject();
    cJSON_AddStringToObject(n, "type", type);
    cJSON_AddItemToArray(arr, n);
    return n;
}

static void adf_add_mark(cJSON *marks, const char *type, const char *href)
{
    cJSON *m = adf_node(marks, type);
    if (href)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(m, "attrs"), "href", href);
}

static void adf_flush_text(cJSON *arr, struct strbuf *acc, unsigned marks, const char *href)
{
    if (!acc->len)
        return;
    cJSON *n = adf_node(arr, "text");
    cJSON_AddStringToObject(n, "text", acc->buf);
    if (marks) {
        cJSON *m = cJSON_AddArrayToObject(n, "marks");
        if (marks & MD_CODESPAN) { /* code takes no mark but a link */
            adf_add_mark(m, "code", NULL);
        } else {
            if (marks & MD_STRONG)
                adf_add_mark(m, "strong", NULL);
            if (marks & MD_EM)
                adf_add_mark(m, "em", NULL);
        }
        if (marks & MD_LINK)
            adf_add_mark(m, "link", href);
    }
    strbuf_reset(acc);
}

/* Inline content: one text node per run of equal marks; a soft break is an unmarked "\n". */
static cJSON *adf_inline_out(const struct md_text *t)
{
    cJSON *arr = cJSON_CreateArray();
    struct strbuf acc = STRBUF_INIT;
    struct md_span sp;
    size_t pos = 0;
    unsigned am = 0;
    const char *ah = NULL;
    while (md_text_next(t, &pos, &sp)) {
        unsigned m = sp.s[0] == '\n' ? 0 : sp.marks & (MD_STRONG | MD_EM | MD_CODESPAN | MD_LINK);
        int hard = sp.s[0] == '\n' && (sp.marks & MD_HARD);
        if (hard || m != am || !str_eq(m & MD_LINK ? sp.href : NULL, ah))
            adf_flush_text(arr, &acc, am, ah);
        if (hard) {
            adf_node(arr, "hardBreak");
            continue;
        }
        strbuf_add(&acc, sp.s, sp.len);
        am = m, ah = m & MD_LINK ? sp.href : NULL;
    }
    adf_flush_text(arr, &acc, am, ah);
    strbuf_release(&acc);
    return arr;
}

static void adf_write_blocks(const struct md_node *parent, cJSON *arr, enum adf_ctx ctx);

static void adf_write_list(const struct md_node *n, cJSON *arr)
{
    cJSON *list = adf_node(arr, n->type == MD_BULLETS ? "bulletList" : "orderedList");
    if (n->type == MD_ORDERED)
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(list, "attrs"), "order", n->num);
    cJSON *items = cJSON_AddArrayToObject(list, "content");
    for (const struct md_node *it = n->first; it; it = it->next) {
        cJSON *content = cJSON_AddArrayToObject(adf_node(items, "listItem"), "content");
        adf_write_blocks(it, content, IN_ITEM);
        /* a list item opens with a paragraph */
        if (!content->child) {
            adf_node(content, "paragraph");
        } else if (strcmp(adf_type(content->child), "paragraph")) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "type", "paragraph");
            cJSON_InsertItemInArray(content, 0, p);
        }
    }
}

static void adf_write_block(const struct md_node *n, cJSON *arr, enum adf_ctx ctx)
{
    cJSON *node;
    if (n->type == MD_PARA || (n->type == MD_HEADING && ctx != IN_DOC)) {
        cJSON_AddItemToObject(adf_node(arr, "paragraph"), "content", adf_inline_out(&n->text));
    } else if (n->type == MD_HEADING) {
        node = adf_node(arr, "heading");
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(node, "attrs"), "level", n->num);
        cJSON_AddItemToObject(node, "content", adf_inline_out(&n->text));
    } else if (n->type == MD_CODE) {
        node = adf_node(arr, "codeBlock");
        if (n->info)
            cJSON_AddStringToObject(cJSON_AddObjectToObject(node, "attrs"), "language", n->info);
        if (n->code.len > 1) {
            char *text = xstrndup(n->code.buf, n->code.len - 1);
            cJSON_AddStringToObject(adf_node(cJSON_AddArrayToObject(node, "content"), "text"),
                                    "text", text);
            free(text);
        }
    } else if (n->type == MD_QUOTE && ctx == IN_DOC) {
        cJSON *content = cJSON_AddArrayToObject(adf_node(arr, "blockquote"), "content");
        adf_write_blocks(n, content, IN_QUOTE);
        if (!content->child)
            adf_node(content, "paragraph");
    } else if (n->type == MD_QUOTE) {
        adf_write_blocks(n, arr, ctx); /* ADF has no quote in a quote or list item */
    } else if (n->type == MD_BULLETS || n->type == MD_ORDERED) {
        adf_write_list(n, arr);
    } else if (n->type == MD_RULE && ctx == IN_DOC) {
        adf_node(arr, "rule");
    }
}

static void adf_write_blocks(const struct md_node *parent, cJSON *arr, enum adf_ctx ctx)
{
    for (const struct md_node *c = parent->first; c; c = c->next)
        adf_write_block(c, arr, ctx);
}

cJSON *richtext_md_to_adf(const char *md)
{
    struct md_node *tree = md_parse(md, 0);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "version", 1);
    cJSON_AddStringToObject(doc, "type", "doc");
    adf_write_blocks(tree, cJSON_AddArrayToObject(doc, "content"), IN_DOC);
    md_node_free(tree);
    return doc;
}
