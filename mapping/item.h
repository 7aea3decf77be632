/*
 * The common model. An item is a cJSON object from canonical field names to canonical values;
 * both sides of a pair map into it, the base stored in the cache is one, and the three-way merge
 * works on it field by field.
 *
 * Canonical fields (all optional):
 *   "title"       string
 *   "description" string, canonical markdown (mapping/richtext.h)
 *   "status"      string: a canonical status (default set: new, in_progress, waiting, done, rejected)
 *   "priority"    string: lowest, low, medium, high, highest
 *   "kind"        string: requirement, feedback, bug, task
 *   "customer", "contact", "reporter", "assignee"   strings (display names)
 *   "due"         string "YYYY-MM-DD"
 *   "labels"      array of strings, kept sorted and unique (a set)
 *   "crm_ref", "tracker_ref"   string: key or URL of the record on the other side
 *   "custom.<name>"            any JSON scalar or array
 * A JSON null means "empty on that side". An absent field means "not known / not mapped".
 *
 * Ownership (cJSON rules, written once here): functions returning cJSON * give the caller an
 * owned tree to cJSON_Delete once; const cJSON * parameters are borrowed.
 */
#ifndef CB_ITEM_H
#define CB_ITEM_H

#include <cjson/cJSON.h>
#include <stdint.h>

enum side { SIDE_CRM = 0, SIDE_TRACKER = 1 };
#define SIDE_OTHER(s) ((enum side)(1 - (s)))
const char *side_name(enum side s); /* "crm" / "tracker" */

/* Field value equality: strings, numbers, null, arrays (order-insensitive for "labels"). Two
 * absent values are equal; absent and null are equal too (both mean empty). */
int item_value_equal(const char *field, const cJSON *a, const cJSON *b);
/* Normalises a value in place for comparison and storage: labels sorted and de-duplicated,
 * empty strings turned into null, text trimmed of trailing whitespace. */
void item_normalize(cJSON *item);
/* A stable 64-bit fingerprint of a value (FNV-1a over its canonical JSON). */
uint64_t item_value_hash(const cJSON *v);

#endif
