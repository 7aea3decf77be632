/*
 * A growable list of owned strings (ids, names): push copies, has compares exactly, clear frees
 * and leaves an empty list. A zeroed struct is an empty list. Allocation failure aborts.
 */
#ifndef CB_STRLIST_H
#define CB_STRLIST_H

#include <stddef.h>

struct strlist {
    char **v;
    size_t n;
};

/* Appends a copy of s. */
void strlist_push(struct strlist *l, const char *s);
/* 1 when l holds a string equal to s (NULL matches nothing), else 0. */
int strlist_has(const struct strlist *l, const char *s);
void strlist_clear(struct strlist *l);

#endif
