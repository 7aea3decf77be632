/*
 * People: the users of one side (a connector's directory) and how a person is carried between
 * systems. A connector reads a person field as a JSON object {"id", "name", "email"?} and writes
 * one from a remote user id (a JSON string; null empties the field). In the item a person is a
 * string: "Name <email>" when the e-mail is known, else "Name", or the name an explicit table in
 * the mapping gives. mapping.h resolves that string to a user of the other side: by the table,
 * by e-mail, by unique display name, else the side's fallback; an unmapped person never blocks a
 * record (the field is left alone there and the person is reported).
 */
#ifndef CB_PEOPLE_H
#define CB_PEOPLE_H

#include <cjson/cJSON.h>
#include <stddef.h>

struct person {
    char *id;    /* remote user id: Jira Cloud accountId, Data Center user name, Zoho user id,
                  * Trello member id, Fxiaoke openUserId */
    char *name;  /* display name */
    char *email; /* NULL when the service hides it */
};

struct person_list {
    struct person *v;
    size_t n, alloc;
};

/* Appends a copy of id, name and email (email may be NULL or ""). */
void person_list_add(struct person_list *l, const char *id, const char *name, const char *email);
void person_list_release(struct person_list *l);
/* The user with this id, e-mail (case-insensitive) or display name (exact, and only one user
 * has it), in that order; NULL when none. Borrowed from l. */
const struct person *person_list_find(const struct person_list *l, const char *who);
/* The canonical JSON object a connector returns for a person field (owned by the caller). */
cJSON *person_to_json(const char *id, const char *name, const char *email);

#endif
