/*
 * Tests for Jira wiki markup <-> markdown (mapping/richtext_wiki.c): each construct read and
 * written, literal text that looks like wiki syntax surviving a round trip, what wiki cannot say
 * degrading to readable text, and hostile input (invalid UTF-8, NULL, unclosed blocks, deep
 * nesting, megabytes of delimiters). Generated documents go through wiki, with every other
 * format, in test_mapping_richtext.c.
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
    if (strcmp(got, want))
        fail_msg("got:\n%s\nwant:\n%s", got, want);
    free(got);
}

static char *wiki_trip(const char *md)
{
    char *wiki = richtext_md_to_wiki(md), *back = richtext_wiki_to_md(wiki);
    free(wiki);
    return back;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_wiki_blocks_read(void **state)
{
    (void)state;
    check_str(richtext_wiki_to_md("h1. Title\nh3. Sub *bold*\n\nfirst line\nsecond line\\\\third"
                                  "\n\n----\nbq. a quote\n{quote}\nlong quote\n\n* in it\n{quote}"),
              "# Title\n\n### Sub **bold**\n\nfirst line\\\nsecond line\\\nthird\n\n---\n\n"
              "> a quote\n\n> long quote\n>\n> * in it");
    check_str(richtext_wiki_to_md("* a\n** a1\n**# a1x\n* b\n# one\n# two\n#* two-b\n- dash"),
              "* a\n  * a1\n    1. a1x\n* b\n\n1. one\n2. two\n   * two-b\n\n* dash");
    check_str(richtext_wiki_to_md("{code:sql}\nSELECT *\n  FROM t; -- {quote} stays\n{code}\n"
                                  "{code:title=Job.java|borderStyle=solid}\nrun();\n{code}\n"
                                  "{noformat}\n*not bold*\n{noformat}\n{code}one line{code}"),
              "```sql\nSELECT *\n  FROM t; -- {quote} stays\n```\n\n```\nrun();\n```\n\n"
              "```\n*not bold*\n```\n\n```\none line\n```");
    check_str(richtext_wiki_to_md("||Name||Qty||\n|A|[x|http://x.example/a|b]|\n| B | 2 |"),
              "Name | Qty\n\nA | [x](http://x.example/a)\n\nB | 2");
    check_str(richtext_wiki_to_md("{panel:title=Heads up|bgColor=#eee}\ninside\n{panel}\n"
                                  "{info}note{info}\n{expand:Logs}\nERROR{expand}"),
              "**Heads up**\n\ninside\n\nnote\n\n**Logs**\n\nERROR");
}

static void test_wiki_inline_read(void **state)
{
    (void)state;
    check_str(richtext_wiki_to_md("*strong* _em_ ??cite?? {{code *x*}} -strike- +under+ ^sup^ "
                                  "~sub~ *_both_*"),
              "**strong** *em* *cite* `code *x*` strike under sup sub ***both***");
    check_str(richtext_wiki_to_md("[Jira|https://jira.example/browse/SUP-1] [https://x.example] "
                                  "[~li.wei] [~accountid:5b10ac8d] [^log.txt] [#anchor] [not a "
                                  "link] [mailto:ops@example.com]"),
              "[Jira](https://jira.example/browse/SUP-1) <https://x.example> @li.wei @5b10ac8d "
              "log.txt anchor not a link <mailto:ops@example.com>");
    check_str(richtext_wiki_to_md("see https://x.example/a_b?c=1. and !shot.png|thumbnail! "
                                  "{color:red}red{color} {anchor:top}&amp; &copy;"),
              "see <https://x.example/a_b?c=1>. and shot.png red & ©");
    /* effects inside words need braces; a lone delimiter is text */
    check_str(richtext_wiki_to_md("mid{*}word{*}s snake_case 5 * 3 a-b-c x*y H~2~O"),
              "mid**word**s snake_case 5 * 3 a-b-c x\\*y H~2~O");
    check_str(richtext_wiki_to_md("\\*not bold\\* \\{code} \\[x] C:\\Users\\x"),
              "\\*not bold\\* {code} [x] C:\\Users\\x");
}

static void test_wiki_write(void **state)
{
    (void)state;
    check_str(richtext_md_to_wiki("# T\n\nSome **bold**, *em*, `code`, [link](https://x.example)"
                                  " and <https://y.example>\\\nnext\n\n* a\n  1. b\n* c\n\n"
                                  "> q\n\n```js\nlet a = 1;\n```\n\n---"),
              "h1. T\n\nSome *bold*, _em_, {{code}}, [link|https://x.example] and "
              "[https://y.example]\nnext\n\n* a\n*# b\n* c\n\n{quote}\nq\n{quote}\n\n"
              "{code:js}\nlet a = 1;\n{code}\n\n----");
    /* literal text that would read as wiki gets the escapes it needs and no others */
    check_str(richtext_md_to_wiki("\\*stars\\* snake_case 5 * 3 {json} [x] a|b C:\\\\dir "
                                  "see http\\://x.example/p https://y.example path\\\\*.txt"),
              "\\*stars* snake_case 5 * 3 \\{json} \\[x] a|b C:\\dir see "
              "http\\://x.example/p [https://y.example] path&#92;*.txt");
    check_str(richtext_md_to_wiki("h1. text\\\n\\- dash\\\n\\# hash\\\n\\---- rule"),
              "h1\\. text\n\\- dash\n\\# hash\n\\---- rule");
    check_str(richtext_md_to_wiki("a**b**c and **注意：**请"), "a{*}b{*}c and *注意：*请");
}

/* Markdown wiki can say, which must come back unchanged. */
static const char *const lossless[] = {
    "Plain paragraph.",
    "# Heading one\n\n## Heading *two*\n\n###### Six",
    "Export must be **fast** and *safe*; see [CRM-42](https://crm.example/r/42)\\\n"
    "cc @Mia Krystof flag `--fast`",
    "* CSV\n* Excel\n  * xlsx\n  * xls\n* PDF",
    "1. step one\n2. step two\n   1. sub a\n   2. sub b\n3. step three",
    "* bullets\n  1. numbered\n     * bullets again",
    "```bash\nexport --all\n```",
    "```\nno language\n  indented\n\n```",
    "> quoted feedback\\\n> second line",
    "> * a list\n> * in a quote",
    "before\n\n---\n\nafter",
    "客户反馈：导出功能太慢\\\n请尽快处理 **紧急**",
    "Links: <https://example.com/a?b=1&c=2>, [docs](https://d.example/x_(y)) and <ops@example.com>",
    "Escapes: \\*not em\\*, snake_case, 5 * 3, a_b_c, \\[not a link\\](x), 1. no list",
    "***both*** and **strong *nested em* inside**",
    "Line one\\\nLine two\\\n\\\nafter an empty line",
    "* a\n\n- b",
    "1. a\n\n1) b",
    "**Note**: a [**bold link**](https://x.example/p) and [`code link`](https://x.example/c)",
    "\\# not a heading\\\n\\> not a quote\\\n\\- not a bullet\\\n2\\. not a list",
    "AT&T, \\&amp; stays literal, a < b > c, {curly} and |pipes|",
    "Back\\slash, C:\\Users\\x and \\\\\\* star",
    "a**b**c, x*y*z, 中**文**字 and **注意：**请",
    "`a}}b` and `{{x}}` and `[not|link]`",
    "* \\\n  * only a nested list",
    "[a|b] text\\\n\\* not a bullet\\\n\\| not a table\\\nh2. not a heading\\\n{quote} not a "
    "quote",
};

static void test_wiki_round_trips(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(lossless); i++) {
        char *md = richtext_md_normalize(lossless[i]);
        check_str(wiki_trip(md), md);
        free(md);
    }
}

static void test_wiki_degrades_to_text(void **state)
{
    (void)state;
    /* a soft break is a line break in Jira */
    check_str(wiki_trip("one\ntwo"), "one\\\ntwo");
    /* ordered lists restart at 1 */
    check_str(wiki_trip("3. three\n4. four"), "1. three\n2. four");
    /* blocks in an item join the item's line; code lines stay monospace */
    check_str(wiki_trip("* item\n\n  more\n\n  ```\n  x = 1\n  y\n  ```\n  * sub\n* next"),
              "* item\\\n  more\\\n  `x = 1`\\\n  `y`\n  * sub\n* next");
    /* quotes do not nest */
    check_str(wiki_trip("> outer\n>\n> > inner"), "> outer\n>\n> inner");
    /* a language wiki cannot carry is dropped, the code stays */
    check_str(wiki_trip("```c}{x\ncode\n```"), "```\ncode\n```");
    /* code containing {code} is written as {noformat} */
    check_str(wiki_trip("```\nuse {code} here\n```"), "```\nuse {code} here\n```");
}

static void test_wiki_hostile_input(void **state)
{
    (void)state;
    check_str(richtext_wiki_to_md(NULL), "");
    check_str(richtext_md_to_wiki(NULL), "");
    check_str(richtext_wiki_to_md("bad \xff\xfe *utf8 \xe4\xb8*"),
              "bad \xEF\xBF\xBD\xEF\xBF\xBD **utf8 \xEF\xBF\xBD\xEF\xBF\xBD**");
    check_str(richtext_md_to_wiki("bad \xc0\xaf"), "bad \xEF\xBF\xBD\xEF\xBF\xBD");
    /* unclosed blocks end with the text */
    check_str(richtext_wiki_to_md("{code:js}\nlet a;\n"), "```js\nlet a;\n```");
    check_str(richtext_wiki_to_md("{quote}\nopen quote\n{panel:title=x"),
              "> open quote\\\n> {panel:title=x");
    check_str(richtext_wiki_to_md("[unclosed|http://x {{code *bold _em"),
              "\\[unclosed|<http://x> {{code \\*bold \\_em");
    check_str(richtext_wiki_to_md("a\r\nb\r\n\r\n* x\r\n* y"), "a\\\nb\n\n* x\n* y");

    /* a line of endless block tags, brackets and braces */
    struct strbuf line = STRBUF_INIT;
    for (int i = 0; i < 20000; i++)
        strbuf_adds(&line, i % 3 ? "{quote}[{color" : "{code}x{{");
    char *md = richtext_wiki_to_md(line.buf);
    assert_true(strlen(md) > 100000);
    check_str(wiki_trip(md), md);
    free(md);
    strbuf_release(&line);

    /* list markers 10,000 deep, effects nested without end */
    struct strbuf sb = STRBUF_INIT;
    for (int i = 0; i < 10000; i++)
        strbuf_addch(&sb, i % 2 ? '*' : '#');
    strbuf_adds(&sb, " deep\n");
    for (int i = 0; i < 5000; i++)
        strbuf_adds(&sb, "*_-+");
    strbuf_adds(&sb, "x");
    md = richtext_wiki_to_md(sb.buf);
    assert_non_null(strstr(md, "deep"));
    check_str(wiki_trip(md), md);
    free(md);
    strbuf_release(&sb);
}

/* Megabytes of openers without closers, links without ends and list markers: a quadratic
 * reader would stall here. */
static void test_wiki_huge_input_is_linear(void **state)
{
    (void)state;
    static const char openers[] = "*_-+^~[{!&|";
    struct strbuf sb = STRBUF_INIT;
    for (int k = 0; sb.len < 2000000; k++) {
        strbuf_addf(&sb, "%c%s%d ", openers[k % 11], k % 5 ? "x" : "{{", k);
        if (k % 997 == 0)
            strbuf_adds(&sb, k % 2 ? "\n* 中\n# " : "\\\\h1. {code:x} ");
    }
    double t0 = now_s();
    char *md = richtext_wiki_to_md(sb.buf), *wiki = richtext_md_to_wiki(md);
    char *back = richtext_wiki_to_md(wiki);
    assert_true(now_s() - t0 < 60.0);
    assert_true(strlen(md) > 1000000);
    assert_string_equal(back, md);
    free(md), free(wiki), free(back);
    strbuf_release(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wiki_blocks_read),
        cmocka_unit_test(test_wiki_inline_read),
        cmocka_unit_test(test_wiki_write),
        cmocka_unit_test(test_wiki_round_trips),
        cmocka_unit_test(test_wiki_degrades_to_text),
        cmocka_unit_test(test_wiki_hostile_input),
        cmocka_unit_test(test_wiki_huge_input_is_linear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
