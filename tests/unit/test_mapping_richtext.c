/*
 * Tests for mapping/richtext: canonical markdown (normal form, escaping, idempotence), Jira ADF
 * and Zoho HTML in both directions, plain text as light markup, round trips on many samples,
 * hostile input (invalid UTF-8, NULL, Windows line endings, 10,000-deep nesting, megabytes of
 * delimiters) and that every ADF we emit keeps the schema rules Jira enforces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/strbuf.h"
#include "mapping/richtext.h"
#include "tests/unit/testutil.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void check_str(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static char *adf_round_trip(const char *md)
{
    cJSON *doc = richtext_md_to_adf(md);
    char *back = richtext_adf_to_md(doc);
    cJSON_Delete(doc);
    return back;
}

static char *html_round_trip(const char *md)
{
    char *html = richtext_md_to_html(md);
    char *back = richtext_html_to_md(html);
    free(html);
    return back;
}

static char *plain_round_trip(const char *md)
{
    char *plain = richtext_md_to_plain(md);
    char *back = richtext_plain_to_md(plain);
    free(plain);
    return back;
}

/* Every sample must come back unchanged from conv. */
static void check_fixed_points(char *(*conv)(const char *), const char *const *md, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_str(conv(md[i]), md[i]);
}

static char *adf_text_to_md(const char *json)
{
    cJSON *doc = cJSON_ParseWithLengthOpts(json, strlen(json), NULL, 0);
    assert_non_null(doc);
    char *md = richtext_adf_to_md(doc);
    cJSON_Delete(doc);
    return md;
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 0
                : (*p & 0xE0) == 0xC0 ? 1
                : (*p & 0xF0) == 0xE0 ? 2
                : (*p & 0xF8) == 0xF0 ? 3
                                      : -1;
        if (n < 0)
            return 0;
        for (p++; n > 0; n--, p++)
            if ((*p & 0xC0) != 0x80)
                return 0;
    }
    return 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- samples ----------------------------------------------------------------------------- */

/* Normalised markdown that ADF and HTML can both express: each must survive md -> X -> md. */
static const char *const common_md[] = {
    "Plain paragraph.",
    "# Heading one\n\n## Heading *two*\n\n###### Six",
    "Export must be **fast** and *safe*; see [CRM-42](https://crm.example/r/42)\\\n"
    "cc @Mia Krystof flag `--fast`",
    "* CSV\n* Excel\n  * xlsx\n  * xls\n* PDF",
    "1. step one\n2. step two\n   1. sub a\n   2. sub b\n3. step three",
    "3. starts at three\n4. four",
    "```bash\nexport --all\n```",
    "```\nno language\n  indented\n\n```",
    "> quoted feedback\n> second line",
    "> * a list\n> * in a quote",
    "> ```js\n> quoted(code);\n> ```",
    "---",
    "before\n\n---\n\nafter",
    "客户反馈：导出功能太慢\\\n请尽快处理 **紧急**",
    "Links: <https://example.com/a?b=1&c=2>, [docs](https://d.example/x_(y)) and <ops@example.com>",
    "Code with backtick: ``a`b`` and `` `tick` `` and `x*y*z`",
    "Escapes: \\*not em\\*, snake_case, 5 * 3, a_b_c, [not a link\\](x), 1. no list",
    "* item with paragraphs\n\n  second paragraph\n* next",
    "* item\n  ```sql\n  SELECT 1;\n  ```\n* next",
    "***both*** and **strong *nested em* inside**",
    "Line one\\\nLine two\\\n\\\nafter an empty line",
    "* a\n\n- b",
    "1. a\n\n1) b",
    "Soft\nbreak kept",
    "Tab\there and two  spaces",
    "**Note**: a [**bold link**](https://x.example/p) and [`code link`](https://x.example/c)",
    "* \\[ ] not a task box\n* \\# not a heading",
    "\\# not a heading\n\\> not a quote\n\\- not a bullet\n2\\. not a list",
    "AT&T, \\&amp; stays literal, a < b > c, \\<not-html>",
    "Back\\slash, C:\\Users\\x and \\\\\\* star",
    "* level 1\n  * level 2\n    * level 3\n      1. level 4",
    "## Release 2.1\n\n1. open **Reports**\n   * choose `CSV`\n2. click export\n\n> works in "
    "2.0\n\n"
    "```python\ndef f():\n    return 1\n```",
};

/* Normalised markdown HTML can carry and ADF cannot (headings and quotes inside containers). */
static const char *const html_only_md[] = {
    "> > nested quote",
    "* # heading in an item",
    "> # heading in a quote\n>\n> ---",
    "* > quote in an item",
};

/* Normalised markdown plain text can express: plain_to_md(md_to_plain(md)) == md. */
static const char *const plain_md[] = {
    "Just text.",
    "Line one\\\nline two",
    "Customer says:\n\n* export slow\n* CSV only\n  1. open\n  2. click\n\nSee <https://x.com/a>, "
    "thanks",
    "2. second\n3. third",
    "snake_case, 5 * 3, #42, a_b and \\*stars\\* \\<tag> \\&amp;",
    "* a\n\n  b continues a\n* c",
    "中文段落\\\n见<https://example.cn/path>，谢谢",
};

/* ---- markdown ---------------------------------------------------------------------------- */

static void test_md_normal_form(void **state)
{
    (void)state;
    check_str(richtext_md_normalize("Setext Title\n============\n- dash item   \n- second\n"
                                    "+ plus item\n\n1) first\n1) second\n\n__strong__ and _em_ "
                                    "and ***both***    \nnext line\n\n    indented code\n\n"
                                    "~~~js\nlet a = 1;\n~~~\n***\n"),
              "# Setext Title\n\n* dash item\n* second\n\n- plus item\n\n1. first\n2. second\n\n"
              "**strong** and *em* and ***both***\\\nnext line\n\n```\nindented code\n```\n\n"
              "```js\nlet a = 1;\n```\n\n---");
    /* lazy continuation, loose lists made tight, ATX closing sequences */
    check_str(richtext_md_normalize("> quote\ncontinued lazily\n\n* a\n\n* b\n\n## Title ##"),
              "> quote\n> continued lazily\n\n* a\n* b\n\n## Title");
    /* entities decode, unknown ones stay literal (escaped so they stay so) */
    check_str(richtext_md_normalize("&amp; &copy; &#x4E2D;&#25991; &bogus; AT&T"),
              "& © 中文 \\&bogus; AT&T");
    /* a ">" beyond a quote marker, a "#" inside a line and list-like text mid-paragraph */
    check_str(richtext_md_normalize("text\n2. not a list\n#not heading"),
              "text\n2\\. not a list\n\\#not heading");
}

/* Bare URLs are links, as Trello shows them; text that only looks like a URL stays text. */
static void test_md_bare_urls(void **state)
{
    (void)state;
    check_str(richtext_md_normalize("see https://x.example/a_b?c=1. and **http://y.example/p**"),
              "see <https://x.example/a_b?c=1>. and **<http://y.example/p>**");
    /* explicit links, code and brackets come first */
    check_str(richtext_md_normalize("[http://a.example](http://b.example) `http://c.example` "
                                    "[see http://d.example/x]"),
              "[http://a.example](http://b.example) `http://c.example` [see "
              "<http://d.example/x>\\]");
    /* a URL that is text in HTML or ADF is escaped in markdown and comes back as text */
    check_str(richtext_html_to_md("<p>logs at http://logs.example/q?id=1</p>"),
              "logs at http\\://logs.example/q?id=1");
    check_str(html_round_trip("logs at http\\://logs.example/q?id=1"),
              "logs at http\\://logs.example/q?id=1");
    check_str(adf_round_trip("logs at http\\://logs.example/q?id=1"),
              "logs at http\\://logs.example/q?id=1");
    check_str(adf_text_to_md("{\"type\":\"doc\",\"content\":[{\"type\":\"paragraph\",\"content\""
                             ":[{\"type\":\"text\",\"text\":\"see https://z.example\"}]}]}"),
              "see https\\://z.example");
}

static void test_md_escapes_only_what_reads_as_syntax(void **state)
{
    (void)state;
    /* ordinary prose keeps its characters */
    check_str(richtext_plain_to_md("use snake_case, 5 * 3 = 15, issue #42, C# and 2*x"),
              "use snake_case, 5 * 3 = 15, issue #42, C# and 2\\*x");
    /* what would become markup is escaped, once */
    check_str(richtext_plain_to_md("# not a title\n> not a quote\n*stars* _under_ `tick`"),
              "\\# not a title\\\n\\> not a quote\\\n\\*stars\\* \\_under\\_ \\`tick\\`");
    check_str(richtext_plain_to_md("[label](http://x) and <b> and &amp; and 1986. A year"),
              "\\[label\\](<http://x>) and \\<b> and \\&amp; and 1986. A year");
    check_str(richtext_plain_to_md("1986. A year\n+ plus\n---\n==="),
              "1986. A year\n\n\\+ plus\\\n\\---\\\n\\===");
}

static void test_md_normalize_is_idempotent(void **state)
{
    (void)state;
    static const char *const messy[] = {
        "*a **b** c*",
        "**a *b* c**",
        "*a*b*c*",
        "**foo.**bar",
        "a**(b)**c",
        "* * *",
        "- - x",
        "+ a\n+ b\n\n\n+ c",
        "1. a\n   - b\n     > c\n     > d",
        "` `` `",
        "```\n```",
        "[a](<b c>)",
        "[a](u \"title\")",
        "![img](x.png)",
        "<div>html</div>",
        "\\",
        "a\\\n",
        "a  \n",
        "#",
        "#\n=\n-",
        "> ",
        "*\n\nfoo",
        "1.\n2.",
        "[link [inner](x)](y)",
        "***",
        "_a_b_",
        "__init__",
        "http://bare.example/url",
        "<mailto:x@y.z>",
        "&#0; &#xD800; &#1114112;",
        "\t\tcode\n\ttab",
        "* a\n\t* b\n\t\t* c",
        "> a\n>\n> b",
        "    \n    code\n\n\n    more",
        "```x\n\n```",
        "~~~\n~~~ not closed\n",
        "text *em\n# heading interrupts*",
        "[x](y)[z](w)",
        "**a**_b_",
    };
    for (size_t i = 0; i < N(messy); i++) {
        char *once = richtext_md_normalize(messy[i]);
        char *twice = richtext_md_normalize(once);
        assert_string_equal(twice, once);
        free(once);
        free(twice);
    }
    check_fixed_points(richtext_md_normalize, common_md, N(common_md));
    check_fixed_points(richtext_md_normalize, html_only_md, N(html_only_md));
    check_fixed_points(richtext_md_normalize, plain_md, N(plain_md));
}

static char *wiki_round_trip(const char *md)
{
    char *wiki = richtext_md_to_wiki(md);
    char *back = richtext_wiki_to_md(wiki);
    free(wiki);
    return back;
}

/* Thousands of small documents cut from the sharp edges of markdown and wiki markup, each
 * normalised, then sent through every format: normal form is a fixed point, HTML carries it
 * exactly, ADF, wiki and plain text settle after one trip (they drop what they cannot say,
 * once). Read as wiki, each gives markdown in normal form. */
static void test_random_documents(void **state)
{
    (void)state;
    static const char *const tok[] = {
        "word",      "foo",         "*",          "_",
        "**",        "__",          "[",          "](http://x.example)",
        "]",         "(",           ")",          "`",
        "``",        "<",           ">",          "&amp;",
        "&",         "\n",          "\n",         "\n\n",
        "  \n",      "# ",          "* ",         "- ",
        "+ ",        "1. ",         "2) ",        "> ",
        "\\",        "\\*",         "http://x.y", "<http://a.b>",
        "中文",      "：",          "!",          "#",
        "    ",      "\t",          "~~~",        "```",
        "---",       "***",         "===",        "snake_case",
        "<a@b.co>",  " ",           ".",          "{",
        "}",         "{{",          "}}",         "|",
        "h1. ",      "bq. ",        "----",       "~",
        "^",         "+",           "-",          "??",
        "x.png!",    "{code}",      "{quote}",    "[a|http://b.c]",
        "[~li.wei]", "{color:red}",
    };
    unsigned long seed = 12345;
    for (int doc = 0; doc < 3000; doc++) {
        struct strbuf sb = STRBUF_INIT;
        seed = seed * 6364136223846793005UL + 1442695040888963407UL;
        for (int k = (int)(seed >> 60) + 1; k > 0; k--) {
            seed = seed * 6364136223846793005UL + 1442695040888963407UL;
            strbuf_adds(&sb, tok[(seed >> 33) % N(tok)]);
            strbuf_adds(&sb, (seed >> 20) & 1 ? " " : "");
        }
        char *md = richtext_md_normalize(sb.buf), *again = richtext_md_normalize(md);
        assert_string_equal(again, md);
        check_str(html_round_trip(md), md);
        char *adf1 = adf_round_trip(md), *plain1 = plain_round_trip(md);
        char *wiki1 = wiki_round_trip(md), *raw = richtext_wiki_to_md(sb.buf);
        check_str(adf_round_trip(adf1), adf1);
        check_str(plain_round_trip(plain1), plain1);
        check_str(wiki_round_trip(wiki1), wiki1);
        check_str(richtext_md_normalize(raw), raw);
        free(md), free(again), free(adf1), free(plain1), free(wiki1), free(raw);
        strbuf_release(&sb);
    }
}

static void test_null_and_empty(void **state)
{
    (void)state;
    check_str(richtext_md_normalize(NULL), "");
    check_str(richtext_md_normalize(""), "");
    check_str(richtext_md_normalize(" \n\t\n"), "");
    check_str(richtext_plain_to_md(NULL), "");
    check_str(richtext_md_to_plain(NULL), "");
    check_str(richtext_html_to_md(NULL), "");
    check_str(richtext_html_to_md("<p></p><div><br></div>"), "");
    check_str(richtext_md_to_html(NULL), "");
    check_str(richtext_adf_to_md(NULL), "");
    cJSON *not_doc = cJSON_CreateString("doc");
    check_str(richtext_adf_to_md(not_doc), "");
    cJSON_Delete(not_doc);
    cJSON *doc = richtext_md_to_adf(NULL);
    char *json = cJSON_PrintUnformatted(doc);
    assert_string_equal(json, "{\"version\":1,\"type\":\"doc\",\"content\":[]}");
    free(json);
    cJSON_Delete(doc);
}

static void test_invalid_utf8_and_line_endings(void **state)
{
    (void)state;
    const char *bad = "bad \xff\xfe utf8 \xe4\xb8 end\xc0\xaf";
    const char *fixed = "bad \xEF\xBF\xBD\xEF\xBF\xBD utf8 \xEF\xBF\xBD\xEF\xBF\xBD end"
                        "\xEF\xBF\xBD\xEF\xBF\xBD";
    check_str(richtext_md_normalize(bad), fixed);
    check_str(richtext_plain_to_md(bad), fixed);
    check_str(richtext_md_to_plain(bad), fixed);
    check_str(richtext_html_to_md(bad), fixed);
    char *html = richtext_md_to_html(bad);
    assert_true(utf8_valid(html));
    free(html);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "type", "doc");
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "paragraph");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "text");
    cJSON_AddStringToObject(t, "text", bad);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "content"), t);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(doc, "content"), p);
    check_str(richtext_adf_to_md(doc), fixed);
    cJSON_Delete(doc);

    check_str(richtext_md_normalize("a\r\nb\r\n\r\n* x\r\n* y\r\n\r\n```\r\ncode\r\n```\r\n"),
              "a\nb\n\n* x\n* y\n\n```\ncode\n```");
    check_str(richtext_plain_to_md("Windows\r\nline endings\r\n\r\nold\rmac"),
              "Windows\\\nline endings\n\nold\\\nmac");
    check_str(richtext_html_to_md("<p>a\r\nb</p><pre>x\r\ny</pre>"), "a\nb\n\n```\nx\ny\n```");
}

static void test_chinese_passes_through(void **state)
{
    (void)state;
    const char *zh = "客户反馈：导出功能太慢";
    check_str(richtext_md_normalize(zh), zh);
    check_str(richtext_plain_to_md(zh), zh);
    check_str(richtext_md_to_plain(zh), zh);
    check_str(richtext_html_to_md("<div>客户反馈：导出功能太慢</div>"), zh);
    check_str(richtext_md_to_html(zh), "<p>客户反馈：导出功能太慢</p>");
    check_str(adf_round_trip(zh), zh);
    /* full-width punctuation does not stop emphasis from closing */
    check_str(richtext_md_normalize("**注意：**请在周五前回复"), "**注意：**请在周五前回复");
    check_str(adf_round_trip("**注意：**请在周五前回复"), "**注意：**请在周五前回复");
}

static void test_deep_nesting_is_capped(void **state)
{
    (void)state;
    struct strbuf sb = STRBUF_INIT;
    for (int i = 0; i < 10000; i++)
        strbuf_addch(&sb, '>');
    strbuf_adds(&sb, " deep");
    char *md = richtext_md_normalize(sb.buf);
    for (int i = 0; i < 32; i++)
        assert_memory_equal(md + 2 * i, "> ", 2);
    assert_memory_equal(md + 64, "\\>", 2); /* the rest stays text, escaped */
    check_str(richtext_md_normalize(md), md);
    free(md);

    /* lists and quotes opened on one line, then lines indented ever deeper */
    strbuf_reset(&sb);
    for (int i = 0; i < 10000; i++)
        strbuf_adds(&sb, i % 3 ? "* " : "> 1. ");
    strbuf_adds(&sb, "deep\n");
    for (int i = 0; i < 2000; i++)
        strbuf_addf(&sb, "%*s* item %d\n", 2 * i, "", i);
    md = richtext_md_normalize(sb.buf);
    assert_non_null(strstr(md, "deep"));
    assert_non_null(strstr(md, "item 1999"));
    check_str(richtext_md_normalize(md), md);
    free(md);

    strbuf_reset(&sb);
    for (int i = 0; i < 10000; i++)
        strbuf_adds(&sb, "<blockquote><ul><li><div><b>");
    strbuf_adds(&sb, "deep html");
    md = richtext_html_to_md(sb.buf);
    assert_non_null(strstr(md, "**deep html**"));
    assert_null(strstr(md, "> > > > > > > > > > > > > > > > > > > > > > > > > > > > > > > > >"));
    free(md);
    strbuf_release(&sb);

    /* ADF nested far deeper than the tree keeps: text kept, no stack overflow */
    cJSON *doc = cJSON_CreateObject(), *node = cJSON_CreateObject();
    cJSON_AddStringToObject(node, "type", "text");
    cJSON_AddStringToObject(node, "text", "leaf");
    for (int i = 0; i < 5000; i++) {
        cJSON *outer = cJSON_CreateObject();
        cJSON_AddStringToObject(outer, "type", i % 2 ? "blockquote" : "panel");
        cJSON_AddItemToArray(cJSON_AddArrayToObject(outer, "content"), node);
        node = outer;
    }
    cJSON_AddStringToObject(doc, "type", "doc");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(doc, "content"), node);
    md = richtext_adf_to_md(doc);
    assert_non_null(strstr(md, "leaf"));
    cJSON_Delete(doc);
    free(md);
}

static void test_huge_input_is_linear(void **state)
{
    (void)state;
    /* unmatched delimiters, brackets, backticks and links: quadratic parsers stall here */
    static const char *const chunks[] = {"*a ",  "_b ", "[c ",  "`d ", "<e ", "&f ", "](g ",
                                         "**h ", "\\",  "``` ", "中 ", "\n",  "> ",  "1. "};
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; sb.len < 2000000; i++)
        strbuf_adds(&sb, chunks[(i * 7 + i / 13) % N(chunks)]);
    double t0 = now_s();
    char *md = richtext_md_normalize(sb.buf);
    char *html = richtext_md_to_html(md);
    char *back = richtext_html_to_md(html);
    cJSON *adf = richtext_md_to_adf(md);
    char *plain = richtext_md_to_plain(md);
    assert_true(now_s() - t0 < 60.0);
    assert_true(strlen(md) > 1000000);
    assert_string_equal(back, md);
    free(md), free(html), free(back), free(plain);
    cJSON_Delete(adf);
    strbuf_release(&sb);
}

/* ---- ADF --------------------------------------------------------------------------------- */

/* The example of /work/shared/api/jira-trello.md section 1.6. */
static const char adf_example[] =
    "{\"version\":1,\"type\":\"doc\",\"content\":["
    "{\"type\":\"heading\",\"attrs\":{\"level\":2},"
    "\"content\":[{\"type\":\"text\",\"text\":\"Customer request\"}]},"
    "{\"type\":\"paragraph\",\"content\":["
    "{\"type\":\"text\",\"text\":\"Export must be \"},"
    "{\"type\":\"text\",\"text\":\"fast\",\"marks\":[{\"type\":\"strong\"}]},"
    "{\"type\":\"text\",\"text\":\" and \"},"
    "{\"type\":\"text\",\"text\":\"safe\",\"marks\":[{\"type\":\"em\"}]},"
    "{\"type\":\"text\",\"text\":\"; see \"},"
    "{\"type\":\"text\",\"text\":\"CRM-42\","
    "\"marks\":[{\"type\":\"link\",\"attrs\":{\"href\":\"https://crm.example/r/42\"}}]},"
    "{\"type\":\"hardBreak\"},"
    "{\"type\":\"text\",\"text\":\"cc \"},"
    "{\"type\":\"mention\",\"attrs\":{\"id\":\"5b10a2844c20165700ede21g\",\"text\":\"@Mia "
    "Krystof\"}},"
    "{\"type\":\"text\",\"text\":\" flag \"},"
    "{\"type\":\"text\",\"text\":\"--fast\",\"marks\":[{\"type\":\"code\"}]}]},"
    "{\"type\":\"bulletList\",\"content\":[{\"type\":\"listItem\",\"content\":["
    "{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"CSV\"}]}]}]},"
    "{\"type\":\"orderedList\",\"attrs\":{\"order\":1},\"content\":[{\"type\":\"listItem\","
    "\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"step "
    "one\"}]}]}]},"
    "{\"type\":\"codeBlock\",\"attrs\":{\"language\":\"bash\"},"
    "\"content\":[{\"type\":\"text\",\"text\":\"export --all\"}]},"
    "{\"type\":\"blockquote\",\"content\":["
    "{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"quoted feedback\"}]}]},"
    "{\"type\":\"rule\"}]}";

static const char adf_example_md[] =
    "## Customer request\n\n"
    "Export must be **fast** and *safe*; see [CRM-42](https://crm.example/r/42)\\\n"
    "cc @Mia Krystof flag `--fast`\n\n"
    "* CSV\n\n"
    "1. step one\n\n"
    "```bash\nexport --all\n```\n\n"
    "> quoted feedback\n\n"
    "---";

static void test_adf_example_to_md(void **state)
{
    (void)state;
    check_str(adf_text_to_md(adf_example), adf_example_md);
}

static void test_md_to_adf_example(void **state)
{
    (void)state;
    /* everything but the mention comes back node for node; the mention is its text */
    cJSON *want = cJSON_ParseWithLengthOpts(adf_example, sizeof adf_example - 1, NULL, 0);
    cJSON *para = cJSON_GetArrayItem(cJSON_GetObjectItem(want, "content"), 1);
    cJSON *inl = cJSON_GetObjectItem(para, "content");
    cJSON_DeleteItemFromArray(inl, 9);
    cJSON_DeleteItemFromArray(inl, 8);
    cJSON_SetValuestring(cJSON_GetObjectItem(cJSON_GetArrayItem(inl, 7), "text"),
                         "cc @Mia Krystof flag ");
    cJSON *got = richtext_md_to_adf(adf_example_md);
    if (!cJSON_Compare(got, want, 1)) {
        char *g = cJSON_Print(got);
        fail_msg("unexpected ADF:\n%s", g);
    }
    cJSON_Delete(got);
    cJSON_Delete(want);
}

static void test_adf_jira_description(void **state)
{
    (void)state;
    const char *json =
        "{\"version\":1,\"type\":\"doc\",\"content\":["
        "{\"type\":\"panel\",\"attrs\":{\"panelType\":\"info\"},\"content\":[{\"type\":"
        "\"paragraph\","
        "\"content\":[{\"type\":\"text\",\"text\":\"Reported by "
        "\"},{\"type\":\"mention\",\"attrs\":"
        "{\"id\":\"557058:abc\",\"text\":\"@Li Wei\"}},{\"type\":\"text\",\"text\":\" via \"},"
        "{\"type\":\"inlineCard\",\"attrs\":{\"url\":\"https://crm.example/r/42\"}}]}]},"
        "{\"type\":\"heading\",\"attrs\":{\"level\":3},\"content\":[{\"type\":\"text\",\"text\":"
        "\"Steps \"},{\"type\":\"emoji\",\"attrs\":{\"shortName\":\":bug:\",\"id\":\"1f41b\","
        "\"text\":\"\xF0\x9F\x90\x9B\"}},{\"type\":\"emoji\",\"attrs\":{\"shortName\":\":fire:\"}}]"
        "},"
        "{\"type\":\"orderedList\",\"attrs\":{\"order\":1},\"content\":["
        "{\"type\":\"listItem\",\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":"
        "\"text\","
        "\"text\":\"Open "
        "\"},{\"type\":\"text\",\"text\":\"Reports\",\"marks\":[{\"type\":\"strong\"}]}]},"
        "{\"type\":\"bulletList\",\"content\":[{\"type\":\"listItem\",\"content\":[{\"type\":"
        "\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"choose \"},{\"type\":\"text\","
        "\"text\":\"CSV\",\"marks\":[{\"type\":\"code\"}]}]}]},{\"type\":\"listItem\",\"content\":"
        "[{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"struck\",\"marks\":"
        "[{\"type\":\"strike\"}]},{\"type\":\"text\",\"text\":\" and "
        "\"},{\"type\":\"text\",\"text\":"
        "\"under\",\"marks\":[{\"type\":\"underline\"},{\"type\":\"textColor\",\"attrs\":{"
        "\"color\":"
        "\"#ff0000\"}}]}]}]}]}]},"
        "{\"type\":\"listItem\",\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":"
        "\"text\","
        "\"text\":\"Click export on "
        "\"},{\"type\":\"date\",\"attrs\":{\"timestamp\":\"1582152559000\"}},"
        "{\"type\":\"text\",\"text\":\" status \"},{\"type\":\"status\",\"attrs\":{\"text\":"
        "\"IN PROGRESS\",\"color\":\"blue\"}}]}]}]},"
        "{\"type\":\"codeBlock\",\"attrs\":{\"language\":\"python\"},\"content\":[{\"type\":"
        "\"text\","
        "\"text\":\"def f():\\n    return 1\"}]},"
        "{\"type\":\"table\",\"content\":[{\"type\":\"tableRow\",\"content\":[{\"type\":"
        "\"tableHeader\","
        "\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"Field\"}]}"
        "]},"
        "{\"type\":\"tableHeader\",\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":"
        "\"text\","
        "\"text\":\"Value\"}]}]}]},{\"type\":\"tableRow\",\"content\":[{\"type\":\"tableCell\","
        "\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"Rows\"}]}]"
        "},"
        "{\"type\":\"tableCell\",\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":"
        "\"text\","
        "\"text\":\"10,000\"}]},{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"approx\"}]}]}]}]},"
        "{\"type\":\"mediaSingle\",\"content\":[{\"type\":\"media\",\"attrs\":{\"id\":\"abc\","
        "\"type\":"
        "\"file\",\"collection\":\"c\",\"alt\":\"screenshot.png\"}}]},"
        "{\"type\":\"expand\",\"attrs\":{\"title\":\"Logs\"},\"content\":[{\"type\":\"paragraph\","
        "\"content\":[{\"type\":\"text\",\"text\":\"ERROR timeout\"}]}]},"
        "{\"type\":\"taskList\",\"content\":[{\"type\":\"taskItem\",\"attrs\":{\"state\":\"DONE\"},"
        "\"content\":[{\"type\":\"text\",\"text\":\"call customer\"}]}]},"
        "{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"\"},{\"type\":"
        "\"unknownThing\",\"attrs\":{\"text\":\"mystery\"}},{\"type\":\"text\",\"text\":\" and \"},"
        "{\"type\":\"text\",\"text\":\"x\","
        "\"marks\":[{\"type\":\"code\"},{\"type\":\"strong\"}]}]},"
        "{\"type\":\"paragraph\"},"
        "{\"type\":\"blockCard\",\"attrs\":{\"url\":\"https://docs.example/spec\"}}]}";
    check_str(adf_text_to_md(json), "Reported by @Li Wei via <https://crm.example/r/42>\n\n"
                                    "### Steps \xF0\x9F\x90\x9B:fire:\n\n"
                                    "1. Open **Reports**\n"
                                    "   * choose `CSV`\n"
                                    "   * struck and under\n"
                                    "2. Click export on 2020-02-19 status IN PROGRESS\n\n"
                                    "```python\ndef f():\n    return 1\n```\n\n"
                                    "Field | Value\n\n"
                                    "Rows | 10,000 approx\n\n"
                                    "screenshot.png\n\n"
                                    "**Logs**\n\n"
                                    "ERROR timeout\n\n"
                                    "* \u2611 call customer\n\n"
                                    "mystery and **`x`**\n\n"
                                    "<https://docs.example/spec>");
}

static void test_adf_garbage_never_crashes(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{\"type\":\"doc\"}",
        "{\"type\":\"doc\",\"content\":{}}",
        "{\"type\":\"doc\",\"content\":[1,\"x\",null,[],{}]}",
        "{\"type\":\"doc\",\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\","
        "\"text\":5,\"marks\":\"bold\"},{\"type\":\"text\",\"text\":\"ok\",\"marks\":[{\"type\":"
        "\"link\"},{\"type\":\"link\",\"attrs\":{\"href\":7}}]}]}]}",
        "{\"type\":\"doc\",\"content\":[{\"type\":\"heading\",\"attrs\":{\"level\":99},\"content\":"
        "[{\"type\":\"text\",\"text\":\"big\"}]},{\"type\":\"orderedList\",\"attrs\":{\"order\":-5}"
        ","
        "\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"loose\"}]}"
        "]},"
        "{\"type\":\"listItem\",\"content\":[{\"type\":\"text\",\"text\":\"orphan\"}]},"
        "{\"type\":\"date\",\"attrs\":{\"timestamp\":\"soon\"}},{\"type\":\"mention\",\"attrs\":{}}"
        ","
        "{\"type\":\"text\",\"text\":\"bad "
        "link\",\"marks\":[{\"type\":\"link\",\"attrs\":{\"href\":"
        "\"javascript:alert(1)\"}}]}]}",
    };
    static const char *const want[] = {
        "", "", "", "ok", "###### big\n\n0. loose\n\n* orphan\n\n@someonebad link",
    };
    for (size_t i = 0; i < N(docs); i++)
        check_str(adf_text_to_md(docs[i]), want[i]);
}

static void check_adf_inline(const cJSON *content)
{
    const cJSON *n, *m;
    cJSON_ArrayForEach(n, content)
    {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(n, "type"));
        assert_non_null(type);
        if (!strcmp(type, "hardBreak"))
            continue;
        assert_string_equal(type, "text");
        assert_true(strlen(cJSON_GetStringValue(cJSON_GetObjectItem(n, "text"))) > 0);
        int code = 0, other = 0;
        cJSON_ArrayForEach(m, cJSON_GetObjectItem(n, "marks"))
        {
            const char *mt = cJSON_GetStringValue(cJSON_GetObjectItem(m, "type"));
            if (!strcmp(mt, "code"))
                code = 1;
            else if (strcmp(mt, "link"))
                other = 1;
            else
                assert_non_null(cJSON_GetStringValue(
                    cJSON_GetObjectItem(cJSON_GetObjectItem(m, "attrs"), "href")));
        }
        assert_false(code && other); /* code goes with link only */
    }
}

/* The ADF schema rules Jira enforces on the nodes we emit. */
static void check_adf_block(const cJSON *n, const char *parent, int first)
{
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(n, "type"));
    const cJSON *content = cJSON_GetObjectItem(n, "content"), *c;
    static const char *const allowed[][2] = {
        {"doc", "paragraph heading bulletList orderedList codeBlock blockquote rule"},
        {"blockquote", "paragraph bulletList orderedList codeBlock"},
        {"listItem", "paragraph bulletList orderedList codeBlock"},
        {"bulletList", "listItem"},
        {"orderedList", "listItem"},
    };
    int ok = 0;
    for (size_t i = 0; i < N(allowed); i++)
        if (!strcmp(allowed[i][0], parent) && strstr(allowed[i][1], type))
            ok = 1;
    assert_true(ok);
    if (!strcmp(parent, "listItem") && first)
        assert_string_equal(type, "paragraph");
    if (!strcmp(type, "paragraph") || !strcmp(type, "heading"))
        check_adf_inline(content);
    if (!strcmp(type, "heading")) {
        int level = cJSON_GetObjectItem(cJSON_GetObjectItem(n, "attrs"), "level")->valueint;
        assert_true(level >= 1 && level <= 6);
    }
    if (!strcmp(type, "codeBlock")) {
        cJSON_ArrayForEach(c, content)
        {
            assert_null(cJSON_GetObjectItem(c, "marks"));
            assert_true(strlen(cJSON_GetStringValue(cJSON_GetObjectItem(c, "text"))) > 0);
        }
    }
    if (!strcmp(type, "blockquote") || !strcmp(type, "listItem") || !strcmp(type, "bulletList") ||
        !strcmp(type, "orderedList")) {
        assert_true(cJSON_GetArraySize(content) > 0);
        for (c = content->child; c; c = c->next)
            check_adf_block(c, type, c == content->child);
    }
}

static void check_adf_doc(const cJSON *doc)
{
    assert_int_equal(cJSON_GetObjectItem(doc, "version")->valueint, 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "type")), "doc");
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, "content")) check_adf_block(c, "doc", 0);
}

static void test_md_to_adf_keeps_schema_rules(void **state)
{
    (void)state;
    static const char *const extra[] = {
        "* # heading in item\n  ---\n  > quote in item",
        "> # heading\n>\n> ---\n>\n> > nested",
        "* ```\n  code first\n  ```",
        "*",
        "* * x",
        "> ",
        "**`strong code`** *[`em link code`](u)*",
        "```\n\n```",
        "1. \n2. x",
    };
    for (size_t i = 0; i < N(common_md) + N(html_only_md) + N(extra); i++) {
        const char *md = i < N(common_md) ? common_md[i]
                         : i < N(common_md) + N(html_only_md)
                             ? html_only_md[i - N(common_md)]
                             : extra[i - N(common_md) - N(html_only_md)];
        cJSON *doc = richtext_md_to_adf(md);
        check_adf_doc(doc);
        cJSON_Delete(doc);
    }
    /* what ADF cannot hold keeps its text */
    check_str(adf_round_trip("* # heading in item\n  ---\n  > quote in item"),
              "* heading in item\n\n  quote in item");
    check_str(adf_round_trip("> # heading\n>\n> > nested"), "> heading\n>\n> nested");
    check_str(adf_round_trip("**`strong code`**"), "`strong code`");
}

static void test_adf_round_trips(void **state)
{
    (void)state;
    check_fixed_points(adf_round_trip, common_md, N(common_md));
    check_fixed_points(adf_round_trip, plain_md, N(plain_md));
}

/* ---- HTML -------------------------------------------------------------------------------- */

static void test_html_zoho_soup(void **state)
{
    (void)state;
    check_str(
        richtext_html_to_md(
            "<div style=\"font-family: Arial; font-size: 13px;\">Hi team,</div><div><br></div>"
            "<div>客户反馈：<span style=\"font-weight: bold;\">导出功能太慢</span>&nbsp;&nbsp;"
            "(about <span style=\"FONT-STYLE:italic\">30s</span>)</div>"
            "<div>Please check&nbsp;</div><div><br></div><div><br></div>"
            "<div><ol><li>open report</li><li>click <b>Export</b></li></ol></div>"
            "<div>Thanks<br></div>\n<div>&nbsp;</div>\n<div>-- <br>Mia</div>"),
        "Hi team,\n\n"
        "客户反馈：**导出功能太慢**  (about *30s*)\\\n"
        "Please check\n\n"
        "1. open report\n"
        "2. click **Export**\n\n"
        "Thanks\n\n"
        "\\--\\\n"
        "Mia");
}

static void test_html_tags_and_entities(void **state)
{
    (void)state;
    check_str(
        richtext_html_to_md(
            "<h2>Head</h2><p>Visit <a href=\"https://x.com/?a=1&amp;b=2\">site</a><br>"
            "next line &amp; &lt;tag&gt; &quot;q&quot; &#39;s&#39; &#x4E2D;&#25991; &copy; "
            "&unknown;</p><ul><li>a<ul><li>b</li></ul></li><li>c</ul>"
            "<pre><code class=\"language-sql\">SELECT *\n  FROM t WHERE a &lt; 3;</code></pre>"
            "<blockquote><p>quoted</p></blockquote><hr>"
            "<table><tr><th>Name</th><th>Qty</th></tr><tr><td>A</td><td><p>1</p><p>2</p></td>"
            "</tr></table><ol start=\"4\"><li>four<li>five</ol>"),
        "## Head\n\n"
        "Visit [site](https://x.com/?a=1&b=2)\\\n"
        "next line & \\<tag> \"q\" 's' 中文 © \\&unknown;\n\n"
        "* a\n  * b\n* c\n\n"
        "```sql\nSELECT *\n  FROM t WHERE a < 3;\n```\n\n"
        "> quoted\n\n"
        "---\n\n"
        "Name | Qty\n\n"
        "A | 1 2\n\n"
        "4. four\n5. five");
}

static void test_html_forgiving(void **state)
{
    (void)state;
    check_str(richtext_html_to_md("<script>alert('x')</script><style>p{color:red}</style>"
                                  "<custom-tag data-x=\"1\">kept</custom-tag> <!-- note --> "
                                  "<b>bold <i>both</b> italic</i> a < b <b"),
              "kept **bold *both*** italic a < b \\<b");
    check_str(richtext_html_to_md("<p>unclosed <b>bold<p>next</i></div></span>"),
              "unclosed **bold**\n\nnext");
    check_str(richtext_html_to_md("<a href=javascript:alert(1)>click</a> <a>no href</a>"
                                  "<img src=\"x.png\" alt=\"diagram\"><img src=y.png><br/>"
                                  "<P CLASS='x'>UPPER</P>"),
              "click no hrefdiagram\n\nUPPER");
    check_str(richtext_html_to_md("<p>  spaced \n  out  </p><code>  a  b </code>"),
              "spaced\nout\n\n`a b`");
}

static void test_md_to_html(void **state)
{
    (void)state;
    check_str(
        richtext_md_to_html("# T <1>\n\nHello *w* & **s** `c<d>` [l](http://x.com?a=1&b=\"2\")"
                            "  two\\\nnext\n\n* a\n  1. b\n\n3. c\n\n> q\n\n```c\nx < 3 && y\n```"
                            "\n\n---"),
        "<h1>T &lt;1&gt;</h1>"
        "<p>Hello <em>w</em> &amp; <strong>s</strong> <code>c&lt;d&gt;</code> "
        "<a href=\"http://x.com?a=1&amp;b=&quot;2&quot;\">l</a>&nbsp;&nbsp;two<br>next</p>"
        "<ul><li>a<ol><li>b</li></ol></li></ul><ol start=\"3\"><li>c</li></ol>"
        "<blockquote><p>q</p></blockquote>"
        "<pre><code class=\"language-c\">x &lt; 3 &amp;&amp; y\n</code></pre><hr>");
}

static void test_html_round_trips(void **state)
{
    (void)state;
    check_fixed_points(html_round_trip, common_md, N(common_md));
    check_fixed_points(html_round_trip, html_only_md, N(html_only_md));
    check_fixed_points(html_round_trip, plain_md, N(plain_md));
}

/* ---- plain text -------------------------------------------------------------------------- */

static void test_plain_to_md(void **state)
{
    (void)state;
    check_str(
        richtext_plain_to_md("Hi,\n* export slow\n* CSV only\n1. open\n2) click\n"
                             "snake_case 5 * 3 #42 *not em* <b>&amp;\n"
                             "see https://x.com/a?b=(1). Thanks!\n  - indented bullet\n\n\nBye"),
        "Hi,\n\n"
        "* export slow\n* CSV only\n\n"
        "1. open\n\n"
        "2) click\n\n"
        "snake_case 5 * 3 #42 \\*not em\\* \\<b>\\&amp;\\\n"
        "see <https://x.com/a?b=(1)>. Thanks!\n\n"
        "* indented bullet\n\n"
        "Bye");
    /* a lone marker is text, bullets nest by indentation */
    check_str(richtext_plain_to_md("-\n* a\n    * b\n        * c\n* d"),
              "\\-\n\n* a\n  * b\n    * c\n* d");
}

static void test_md_to_plain(void **state)
{
    (void)state;
    check_str(richtext_md_to_plain(
                  "# Title\n\nExport **fast** and *safe*, `run` [docs](https://d.example) "
                  "or <https://x.com> <a@b.co>\\\nnext line\n\n* a\n  1. b\n\n"
                  "> quoted\n\n```sh\nrun --all\n```\n\n---\n\n\\# escaped \\*"),
              "Title\n\n"
              "Export fast and safe, run docs (https://d.example) or https://x.com a@b.co\n"
              "next line\n\n"
              "* a\n  1. b\n\n"
              "> quoted\n\n"
              "run --all\n\n"
              "---\n\n"
              "# escaped *");
}

static void test_plain_round_trips(void **state)
{
    (void)state;
    check_fixed_points(plain_round_trip, plain_md, N(plain_md));
    /* what people type survives plain -> md -> plain unchanged */
    static const char *const typed[] = {
        "snake_case and __init__ and 5 * 3 and a*b*c and *word*",
        "issue #42: C# vs F#, 100% [draft] (v2) <tag> &amp; \\path\\to",
        "* one\n* two\n  * nested\n\n1. first\n2. second",
        "See https://x.example/a_b?c=*d* now",
        "客户反馈：导出功能太慢\n请尽快处理",
        "# not a heading\n> not a quote\n--- not a rule\n`not code`",
    };
    for (size_t i = 0; i < N(typed); i++) {
        char *md = richtext_plain_to_md(typed[i]);
        check_str(richtext_md_to_plain(md), typed[i]);
        free(md);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_md_normal_form),
        cmocka_unit_test(test_md_bare_urls),
        cmocka_unit_test(test_md_escapes_only_what_reads_as_syntax),
        cmocka_unit_test(test_md_normalize_is_idempotent),
        cmocka_unit_test(test_random_documents),
        cmocka_unit_test(test_null_and_empty),
        cmocka_unit_test(test_invalid_utf8_and_line_endings),
        cmocka_unit_test(test_chinese_passes_through),
        cmocka_unit_test(test_deep_nesting_is_capped),
        cmocka_unit_test(test_huge_input_is_linear),
        cmocka_unit_test(test_adf_example_to_md),
        cmocka_unit_test(test_md_to_adf_example),
        cmocka_unit_test(test_adf_jira_description),
        cmocka_unit_test(test_adf_garbage_never_crashes),
        cmocka_unit_test(test_md_to_adf_keeps_schema_rules),
        cmocka_unit_test(test_adf_round_trips),
        cmocka_unit_test(test_html_zoho_soup),
        cmocka_unit_test(test_html_tags_and_entities),
        cmocka_unit_test(test_html_forgiving),
        cmocka_unit_test(test_md_to_html),
        cmocka_unit_test(test_html_round_trips),
        cmocka_unit_test(test_plain_to_md),
        cmocka_unit_test(test_md_to_plain),
        cmocka_unit_test(test_plain_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
