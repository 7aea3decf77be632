/*
 * The growable list of owned strings (strlist.h): a linear list, meant for the dozens to
 * thousands of ids a page or a cycle holds, not for lookups in large sets.
 */
#include "core/strlist.h"

#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"

void strlist_push(struct strlist *l, const char *s)
{
    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = xstrdup(s);
}

int strlist_has(const struct strlist *l, const char *s)
{
    for (size_t i = 0; s && i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

void strlist_clear(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}
