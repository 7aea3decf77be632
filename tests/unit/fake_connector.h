/*
 * An in-file fake connector for engine scenario tests (type "fake"). Its whole state lives in a
 * JSON file named by the endpoint's `store` key, so it survives a crashed (SIGKILLed) sync
 * process: exactly what crash-at-every-step tests need. Faults are switches in the same file.
 */
#ifndef CB_FAKE_CONNECTOR_H
#define CB_FAKE_CONNECTOR_H

#include <cjson/cJSON.h>

/* Whether the fake's writer says it builds updates from the record as read (both sides). */
void fake_reads_current(int yes);
void fake_register(void);

/* Creates an empty store with key prefix (e.g. "CRM"). */
void fake_init(const char *path, const char *prefix);
/* A person creates / edits a record; returns the new id (caller frees) / nothing. */
char *fake_human_create(const char *path, const char *fields_json);
void fake_human_edit(const char *path, const char *id, const char *fields_json);
/* Current fields of a record (owned by the caller), NULL when absent. */
cJSON *fake_fields(const char *path, const char *id);
int fake_count(const char *path);
/* Number of create/update requests the engine made so far. */
int fake_writes(const char *path);
/* Sets a fault switch: "drop_creates" (create applied, error returned), "fail_updates_final",
 * "fail_updates_temp", "lag_ms" (find_marker blind to records younger than this). */
void fake_set(const char *path, const char *name, double value);
/* Id of the only record whose field equals value, or NULL (caller frees). */
char *fake_find(const char *path, const char *field, const char *value);

#endif
