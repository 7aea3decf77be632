/*
 * Rich-text converters through the canonical markdown (a CommonMark subset: paragraphs,
 * headings, emphasis, strong, inline code, fenced code blocks with language, bullet and ordered
 * lists with nesting, links, block quotes, hard breaks, thematic breaks). As in GFM (and as
 * Trello shows it) a bare http(s) URL is a link; text that only looks like one is written with
 * its ':' escaped.
 *
 * Contracts shared by every function here:
 *  - input is never trusted: malformed input yields best-effort readable text, never a crash,
 *    never NULL; invalid UTF-8 is replaced by U+FFFD.
 *  - what a target cannot express degrades to readable text, never to nothing.
 *  - a round trip md -> X -> md is lossless for what X can express.
 * Returned strings are malloc'ed (caller frees); returned cJSON trees are owned by the caller.
 */
#ifndef CB_RICHTEXT_H
#define CB_RICHTEXT_H

#include <cjson/cJSON.h>

/* Jira Cloud v3: Atlassian Document Format. doc may be NULL or not a doc (gives ""). Unknown
 * nodes keep their text content. Mentions become "@Name". */
char *richtext_adf_to_md(const cJSON *doc);
/* Builds a valid ADF doc ({"version":1,"type":"doc","content":[...]}); never emits empty text
 * nodes or marks on code-block text. */
cJSON *richtext_md_to_adf(const char *md);

/* Zoho rich text (HTML subset) <-> markdown. */
char *richtext_html_to_md(const char *html);
char *richtext_md_to_html(const char *md);

/* Jira wiki markup (Data Center and REST v2 bodies) <-> markdown. Reading: h1.-h6., *strong*,
 * _em_, ??cite?? (em), {{code}}, [text|url], [url], bare URLs, * # nested lists (also mixed and
 * "- "), {code:lang} and {noformat} blocks, {quote} and bq., "\\" breaks, ----; tables become
 * " | " rows, [~user] "@user", !image.png! its name, {color} and panels their text, strike,
 * underline, sup and sub their text. Every newline inside a paragraph is a hard break (as Jira
 * shows it), so soft breaks come back hard. Writing cannot say: an ordered list's start (it
 * restarts at 1), blocks inside list items other than nested lists (joined into the item's
 * line with breaks, code as monospace), quotes in quotes (flattened), code-block languages with
 * characters other than [A-Za-z0-9+#._-]. Bare URLs in text become links. */
char *richtext_wiki_to_md(const char *wiki);
char *richtext_md_to_wiki(const char *md);

/* Plain-text fields (Zoho textarea, Fxiaoke long text) read as light markup: '* ' and '- '
 * bullets, '1. ' steps, bare URLs. md_to_plain writes text a person reads comfortably that
 * plain_to_md turns back into the same markdown.
 * What plain text can say, and so what comes back unchanged: paragraphs, line breaks (every
 * newline of plain text is a hard break), nested bullet and ordered lists, and http(s) links
 * whose text is their URL. md_to_plain drops the markers of emphasis, strong and code (their
 * text stays), writes other links as "text (url)", headings as their text, code blocks as their
 * lines, quotes behind "> " and rules as "---"; those come back as plain paragraphs.
 * plain_to_md escapes whatever would read as markdown, so "snake_case", "5 * 3", "#42" and
 * "*word*" survive plain -> md -> plain unchanged. */
char *richtext_plain_to_md(const char *text);
char *richtext_md_to_plain(const char *md);

/* Normalises markdown (line endings, trailing spaces, bullet markers) so that two texts that
 * mean the same compare equal. */
char *richtext_md_normalize(const char *md);

#endif
