/*
 * A record filter evaluated locally on a record's wire JSON: an and/or tree of conditions
 * "field op values". Zoho's criteria text parses into one (filter_parse_zoho); Fxiaoke builds
 * one condition at a time from its config (filter_add). Connectors that can filter on the
 * server (Jira's JQL) do not use it.
 */
#ifndef CB_FILTER_EXPR_H
#define CB_FILTER_EXPR_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/status.h"
#include "core/strbuf.h"

struct filter;

enum filter_op {
    FILTER_EQ,     /* any value equals (case-insensitive) */
    FILTER_NE,     /* no value equals */
    FILTER_STARTS, /* starts with any value (case-insensitive) */
    FILTER_IN,     /* same as FILTER_EQ over a list */
    FILTER_NIN,    /* same as FILTER_NE over a list */
    FILTER_LIKE,   /* contains any value (case-insensitive) */
    FILTER_EMPTY,  /* the field is empty (no values) */
    FILTER_NEMPTY  /* the field is not empty (no values) */
};

/* Parses a Zoho criteria ("(Status:equals:New)", "((A:equals:x)and(B:in:y,z))") with the
 * operators equals, not_equal, starts_with and in; values escape '(', ')', ',' with '\'.
 * A level mixing "and" and "or" must be grouped in parentheses. On failure returns
 * CB_ERR_CONFIG with one message in err and *out stays NULL; free with filter_free(). */
enum cb_status filter_parse_zoho(const char *text, struct filter **out, struct strbuf *err) CB_WUR;

/* An empty filter whose conditions (filter_add) must all hold. Never fails. */
struct filter *filter_new_all(void);
/* Adds a condition to an all-of filter; values are copied. */
void filter_add(struct filter *f, const char *field, enum filter_op op, const char *const *values,
                size_t n_values);
void filter_free(struct filter *f);

/* 1 when rec (an object: field name -> wire value) matches. A wire value compares as its text:
 * strings as they are, numbers and booleans as JSON text, an object by its "name" (else "id"),
 * an array value by any element; null, "" and a missing field have no values. */
int filter_match(const struct filter *f, const cJSON *rec);

/* Calls fn for each field the filter reads (a field may repeat). */
void filter_each_field(const struct filter *f, void (*fn)(void *arg, const char *field), void *arg);

#endif
