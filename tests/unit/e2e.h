/*
 * Shared pieces of the end-to-end tests: a Zoho CRM and a Jira Cloud simulator, a config that
 * points the crmbridge binary at them, and ways to read and edit both sides as a person would.
 */
#ifndef CB_E2E_H
#define CB_E2E_H

#include <cjson/cJSON.h>

#include "tests/unit/testutil.h"

struct e2e {
    struct sim zoho, jira;
    char *dir;
    char conf[600];
};

void e2e_write_conf(struct e2e *e, const char *extra_pair);
int e2e_setup(void **state);
int e2e_teardown(void **state);
int e2e_run(struct e2e *e, char **out, const char *a1, const char *a2);
int e2e_sync_once(struct e2e *e);
int e2e_writes(const struct sim *s);
void e2e_assert_quiet(struct e2e *e);
/* Jira holds exactly one issue, linked to case_id, and a next cycle writes nothing. */
void e2e_assert_one_linked_issue(struct e2e *e, const char *case_id);
/* Moves both simulators' clocks ms forward (time passing for the services). */
void e2e_advance_clocks(struct e2e *e, long long ms);
cJSON *e2e_jira_issues(struct e2e *e);
cJSON *e2e_jira_issue(struct e2e *e, const char *key);
const char *e2e_jfield(const cJSON *issue, const char *f);
cJSON *e2e_zoho_case(struct e2e *e, const char *id);
const char *e2e_zfield(const cJSON *c, const char *f);
char *e2e_seed_case(struct e2e *e, const char *fields_json);
char *e2e_linked_key(struct e2e *e, const char *case_id);
int e2e_count_issues(struct e2e *e);
/* Writes the built-in Zoho <-> Jira mapping plus the field entries extra_fields and the
 * top-level settings extra_top (people = {...}; may be NULL) into e->dir and returns the pair
 * setting naming it ("mapping = \"...\";", owned). */
char *e2e_mapping_with(struct e2e *e, const char *extra_fields, const char *extra_top);
/* Comments of Jira issue key as the simulator keeps them ({id, author, text, properties}). */
cJSON *e2e_jira_comments(struct e2e *e, const char *key);
/* GETs of a Jira issue's comment list since the log was last cleared. */
int e2e_jira_comment_reads(struct e2e *e);
/* Notes of Zoho case case_id as the simulator keeps them. */
cJSON *e2e_zoho_notes(struct e2e *e, const char *case_id);
/* How many items of arr have a string field f containing every needle (NULL-terminated). */
int e2e_count_with(const cJSON *arr, const char *f, ...);
/* A note on Zoho case case_id written by "Li Wei". */
void e2e_add_note(struct e2e *e, const char *case_id, const char *text);

#endif
