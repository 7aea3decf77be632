/*
 * A remote record as a connector hands it to the engine: identity, change time, the crmbridge
 * marker if one is stored on it, and its fields already decoded from the wire format into
 * canonical values (rich text as markdown, named objects as their names, dates as YYYY-MM-DD,
 * multi-values as arrays of strings). Which remote field feeds which item field is the mapping's
 * business, not the connector's.
 */
#ifndef CB_RECORD_H
#define CB_RECORD_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

struct record {
    char *id;            /* remote id, a string (never a double) */
    char *key;           /* human key (SUP-12, case number); may be NULL */
    char *url;           /* where a person opens it; may be NULL */
    int64_t modified_ms; /* remote modified time, ms since epoch UTC */
    char *modified_by;   /* display name or id of the last editor; may be NULL */
    int64_t created_ms;  /* when it was created, ms since epoch UTC; 0 = unknown */
    char *created_by;    /* display name of its creator; may be NULL */
    char *marker;        /* crmbridge marker stored on the record; NULL if none */
    int gone;            /* 1: archived on its side (closed card, invalidated record) but
                          * still readable; deleted records are simply not returned */
    int out_of_scope;    /* 1: does not match the side's `filter` (returned by get_many or a
                          * listing that cannot filter on the server): the engine leaves it */
    cJSON *fields;       /* owned object: remote field name -> canonical value */
};

struct record_list {
    struct record *v;
    size_t n, alloc;
};

/* Frees what r owns and zeroes it. */
void record_release(struct record *r);
/* Moves r into the list (r is zeroed). */
void record_list_push(struct record_list *l, struct record *r);
void record_list_release(struct record_list *l);
/* Deep copy. */
void record_copy(struct record *dst, const struct record *src);

#endif
