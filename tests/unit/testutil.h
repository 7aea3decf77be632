/*
 * Helpers shared by the tests: start and stop a simulator process on a free loopback port, call
 * its control interface, count requests in its log, and make scratch directories. Tests use the
 * simulators in tests/sim/ and nothing else on the network.
 */
#ifndef CB_TESTUTIL_H
#define CB_TESTUTIL_H

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>

struct sim {
    pid_t pid;
    int port;
    char name[32];
    char base[64]; /* "http://127.0.0.1:PORT" */
};

/* Starts tests/sim/<name>_sim.py on a free port and waits until it listens. Returns 0 on success.
 * Extra args (NULL-terminated) are passed to the simulator. */
int sim_start(struct sim *s, const char *name, ...);
void sim_stop(struct sim *s);

/* Sends method path (relative to the simulator) with an optional JSON body and returns the
 * parsed JSON answer (caller deletes; NULL when the body is empty or not JSON). *status gets the
 * HTTP status when status is not NULL. */
cJSON *sim_call(const struct sim *s, const char *method, const char *path, const char *body,
                long *status);
/* sim_call with a printf-formatted body; asserts a 2xx answer and returns it. */
cJSON *sim_ctl(const struct sim *s, const char *method, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Number of logged requests whose method equals method (NULL = any) and whose path starts with
 * path_prefix (NULL = any), excluding control calls. */
int sim_count(const struct sim *s, const char *method, const char *path_prefix);
/* Requests the simulator answered with status (429: rate limited). */
/* Requests in s's log with this method and exactly this path whose query holds needle (has 1)
 * or does not (has 0). */
int sim_count_query(const struct sim *s, const char *method, const char *path, const char *needle,
                    int has);
int sim_count_status(const struct sim *s, int status);
/* Clears the request log. */
void sim_clear_log(const struct sim *s);

/* A fresh directory under /tmp; caller frees the string; tu_rmrf removes it. */
char *tu_tmpdir(void);
void tu_rmrf(const char *dir);
/* Writes text to path; returns 0 on success. */
int tu_write_file(const char *path, const char *text);
/* Reads a whole file into a malloc'ed string, or NULL. */
char *tu_read_file(const char *path);
/* Reads a file under the source tree (relative path) into a malloc'ed string, or NULL. */
char *tu_read_source(const char *rel);
/* Path of the crmbridge binary under test (CB_CRMBRIDGE_BIN, else the build tree's). */
const char *tu_crmbridge_bin(void);
/* Runs the crmbridge binary with args (NULL-terminated), capturing stdout+stderr into *out
 * (caller frees). Returns the exit status, or -1. */
int tu_run_crmbridge(char **out, ...);
/* The same on a terminal (stdout and stderr a pseudo-terminal), as a person runs it. */
int tu_run_crmbridge_tty(char **out, ...);

#endif
