/*
 * The rich-text corpus (tests/data/richtext/): samples shaped like what Jira Cloud (ADF), Jira
 * Data Center (wiki markup), Trello (markdown), Zoho (editor HTML and textareas) and Fxiaoke
 * (long text) really send. Each sample is read into markdown (checked against
 * <name>.expect.md), then sent through every format and every pair of formats as the wire carries
 * them (ADF printed and parsed as JSON): a format that can say everything gives the markdown back
 * unchanged, one that cannot gives <name>.via-<format>.md, and no word of the text is ever lost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "mapping/richtext.h"
#include "tests/unit/testutil.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

enum fmt { F_MD, F_ADF, F_HTML, F_WIKI, F_PLAIN, F_COUNT };
static const char *const fmt_name[] = {"md", "adf", "html", "wiki", "plain"};

static const struct {
    const char *file;
    enum fmt fmt;
} samples[] = {
    {"jira_cloud_bug.adf.json", F_ADF}, {"jira_cloud_comment.adf.json", F_ADF},
    {"jira_dc_bug.wiki", F_WIKI},       {"jira_dc_comment.wiki", F_WIKI},
    {"trello_card.trello.md", F_MD},    {"mixed_zh_en.trello.md", F_MD},
    {"zoho_case.html", F_HTML},         {"zoho_textarea.txt", F_PLAIN},
    {"fxiaoke_followup.txt", F_PLAIN},
};

static char *from_fmt(enum fmt f, const char *s)
{
    if (f == F_ADF) {
        cJSON *doc = cJSON_ParseWithLengthOpts(s, strlen(s), NULL, 0);
        assert_non_null(doc);
        char *md = richtext_adf_to_md(doc);
        cJSON_Delete(doc);
        return md;
    }
    return f == F_WIKI    ? richtext_wiki_to_md(s)
           : f == F_HTML  ? richtext_html_to_md(s)
           : f == F_PLAIN ? richtext_plain_to_md(s)
                          : richtext_md_normalize(s);
}

static char *to_fmt(enum fmt f, const char *md)
{
    if (f == F_ADF) {
        cJSON *doc = richtext_md_to_adf(md);
        char *json = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
        return json;
    }
    return f == F_WIKI    ? richtext_md_to_wiki(md)
           : f == F_HTML  ? richtext_md_to_html(md)
           : f == F_PLAIN ? richtext_md_to_plain(md)
                          : richtext_md_normalize(md);
}

static char *trip(enum fmt f, const char *md)
{
    char *wire = to_fmt(f, md), *back = from_fmt(f, wire);
    free(wire);
    return back;
}

static char *read_data(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "tests/data/richtext/%s", name);
    return tu_read_source(path);
}

/* <base>.expect.md, or <base>.via-<fmt>.md when that format degrades the sample (NULL when it
 * does not). */
static char *expected(const char *file, const char *via)
{
    char name[256];
    const char *dot = strchr(file, '.');
    int n = (int)(dot ? (size_t)(dot - file) : strlen(file));
    if (via)
        snprintf(name, sizeof name, "%.*s.via-%s.md", n, file, via);
    else
        snprintf(name, sizeof name, "%.*s.expect.md", n, file);
    char *s = read_data(name);
    if (s) {
        size_t len = strlen(s);
        while (len && s[len - 1] == '\n')
            s[--len] = '\0'; /* the files end in a newline, normal form does not */
    }
    return s;
}

/* The words of md's text (letters, digits and any non-ASCII character), list numbers left out:
 * what a reader must find again whatever the format did to the markup. */
static char **words(const char *md, size_t *n)
{
    char *plain = richtext_md_to_plain(md), *p = plain;
    char **w = NULL;
    size_t alloc = 0;
    *n = 0;
    while (*p) {
        const char *line = p;
        while (*p == ' ')
            p++;
        const char *d = p;
        while (*d >= '0' && *d <= '9')
            d++;
        if (d > p && (*d == '.' || *d == ')') && d[1] == ' ' && p >= line)
            p = (char *)d + 1;
        while (*p && *p != '\n') {
            char *a = p;
            while (*p && ((*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') ||
                          (unsigned char)*p >= 0x80))
                p++;
            if (p > a) {
                if (*n == alloc)
                    w = realloc(w, (alloc = alloc ? 2 * alloc : 64) * sizeof *w);
                w[(*n)++] = strndup(a, (size_t)(p - a));
            } else {
                p++;
            }
        }
        if (*p)
            p++;
    }
    free(plain);
    return w;
}

static void free_words(char **w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(w[i]);
    free(w);
}

/* Every word of want appears in got, in order. */
static void check_words_kept(const char *want, const char *got, const char *what)
{
    size_t nw, ng, j = 0;
    char **w = words(want, &nw), **g = words(got, &ng);
    for (size_t i = 0; i < nw; i++) {
        while (j < ng && strcmp(w[i], g[j]))
            j++;
        if (j == ng)
            fail_msg("%s lost the word '%s':\n%s", what, w[i], got);
        j++;
    }
    free_words(w, nw);
    free_words(g, ng);
}

static void check_eq(const char *got, const char *want, const char *what)
{
    if (strcmp(got, want))
        fail_msg("%s:\n--- got\n%s\n--- want\n%s", what, got, want);
}

static void test_samples_read_as_expected(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(samples); i++) {
        char *src = read_data(samples[i].file), *want = expected(samples[i].file, NULL);
        assert_non_null(src);
        assert_non_null(want);
        char *md = from_fmt(samples[i].fmt, src);
        check_eq(md, want, samples[i].file);
        /* reading is already the normal form */
        char *again = richtext_md_normalize(md);
        check_eq(again, md, samples[i].file);
        free(src), free(want), free(md), free(again);
    }
}

/* md -> X -> md for every format X: unchanged, or the documented degradation, which is a fixed
 * point of X and keeps every word. */
static void test_every_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(samples); i++) {
        char *src = read_data(samples[i].file), *md = from_fmt(samples[i].fmt, src);
        for (int f = 0; f < F_COUNT; f++) {
            char what[160], *via = expected(samples[i].file, fmt_name[f]), *got = trip(f, md);
            snprintf(what, sizeof what, "%s via %s", samples[i].file, fmt_name[f]);
            check_eq(got, via ? via : md, what);
            check_words_kept(md, got, what);
            char *again = trip(f, got);
            check_eq(again, got, what);
            free(via), free(got), free(again);
        }
        free(src), free(md);
    }
}

/* The sample as its own service wrote it -> md -> another service's format -> md -> back in the
 * sample's format -> md: lossless when both formats are, never a lost word. */
static void test_every_pair(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(samples); i++) {
        char *src = read_data(samples[i].file), *md = from_fmt(samples[i].fmt, src);
        for (int f = 0; f < F_COUNT; f++) {
            for (int g = 0; g < F_COUNT; g++) {
                char what[160], *vf = expected(samples[i].file, fmt_name[f]),
                                *vg = expected(samples[i].file, fmt_name[g]);
                char *one = trip(f, md), *two = trip(g, one);
                char *home = to_fmt(samples[i].fmt, two), *back = from_fmt(samples[i].fmt, home);
                snprintf(what, sizeof what, "%s via %s then %s", samples[i].file, fmt_name[f],
                         fmt_name[g]);
                check_words_kept(md, back, what);
                if (!vf && !vg)
                    check_eq(back, md, what);
                free(vf), free(vg), free(one), free(two), free(home), free(back);
            }
        }
        free(src), free(md);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples_read_as_expected),
        cmocka_unit_test(test_every_format),
        cmocka_unit_test(test_every_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
