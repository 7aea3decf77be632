/*
 * libFuzzer target for the rich-text converters (mapping/richtext.h). The first byte picks the
 * converter, the rest is its input: markdown, HTML, wiki markup, plain text or ADF JSON. Each
 * result is fed back through the reverse converter, so both directions see hostile input.
 * It checks memory safety and the header's promise that no converter returns NULL.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/richtext.h"

static void check(char *s)
{
    if (!s)
        abort(); /* the contract: never NULL */
    free(s);
}

static void from_md(const char *md)
{
    cJSON *adf = richtext_md_to_adf(md);
    if (!adf)
        abort();
    check(richtext_adf_to_md(adf));
    cJSON_Delete(adf);
    char *html = richtext_md_to_html(md);
    check(richtext_html_to_md(html));
    free(html);
    char *wiki = richtext_md_to_wiki(md);
    check(richtext_wiki_to_md(wiki));
    free(wiki);
    char *plain = richtext_md_to_plain(md);
    check(richtext_plain_to_md(plain));
    free(plain);
    check(richtext_md_normalize(md));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 64 * 1024)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char *md = NULL;
    switch (data[0] % 5) {
    case 0:
        md = strdup(text);
        break;
    case 1:
        md = richtext_html_to_md(text);
        break;
    case 2:
        md = richtext_wiki_to_md(text);
        break;
    case 3:
        md = richtext_plain_to_md(text);
        break;
    default: {
        cJSON *doc = cJSON_ParseWithLengthOpts(text, size - 1, NULL, 0);
        md = richtext_adf_to_md(doc);
        cJSON_Delete(doc);
        break;
    }
    }
    if (!md)
        abort();
    from_md(md);
    free(md);
    free(text);
    return 0;
}
