/*
 * Levelled logging to stderr (or a file). Every line passes through redaction: each secret
 * registered with log_add_secret() is replaced by "***", and so are the values of query
 * parameters, headers and JSON members that carry credentials (token=, key=, Authorization: ...,
 * "access_token": "..."). A parameter counts only at the start of the text or after one of
 * ? & space " , so "monkey=1" is left alone. Lines read "TIMESTAMP level module: message" with a
 * UTC timestamp from cbtime_now_ms() (so CRMBRIDGE_FAKE_NOW_MS applies).
 */
#ifndef CB_LOG_H
#define CB_LOG_H

#include <stdio.h>
#include "core/status.h"

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

void log_set_level(enum log_level lvl);
/* Text lines (default) or JSON lines {"ts","level","module","msg"} (already redacted). */
void log_set_format(enum log_format f);
enum log_level log_get_level(void);
/* Parses "error|warn|info|debug"; returns -1 when unknown. */
int log_level_parse(const char *s);
/* Sends log lines to f (default stderr). f stays owned by the caller. */
void log_set_stream(FILE *f);
/* Remembers a secret to redact from every later line. Secrets shorter than 4 bytes are ignored. */
void log_add_secret(const char *secret);
/* Removes every registered secret (tests). */
void log_clear_secrets(void);
/* Returns s with secrets redacted (allocated; caller frees). Never NULL; NULL s gives "". */
char *log_redact(const char *s);

void log_write(enum log_level lvl, const char *module, const char *fmt, ...) CB_PRINTF(3, 4);

#ifndef LOG_MODULE
#define LOG_MODULE "crmbridge"
#endif
#define log_error(...) log_write(LOG_ERROR, LOG_MODULE, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, LOG_MODULE, __VA_ARGS__)
#define log_info(...)                                                                             \
    do {                                                                                          \
        if (log_get_level() >= LOG_INFO)                                                          \
            log_write(LOG_INFO, LOG_MODULE, __VA_ARGS__);                                         \
    } while (0)
#define log_debug(...)                                                                            \
    do {                                                                                          \
        if (log_get_level() >= LOG_DEBUG)                                                         \
            log_write(LOG_DEBUG, LOG_MODULE, __VA_ARGS__);                                        \
    } while (0)

#endif
