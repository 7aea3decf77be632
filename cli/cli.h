/*
 * What the subcommands share: the parsed global options, the loaded configuration and the open
 * cache. Only cli/ prints to the terminal and chooses exit codes.
 */
#ifndef CB_CLI_H
#define CB_CLI_H

#include <stdio.h>

#include "cache/cache.h"
#include "core/config.h"
#include "sync/engine.h"

enum exit_code { EXIT_OK = 0, EXIT_RECORDS = 1, EXIT_USAGE = 2, EXIT_FATAL = 3 };

struct app {
    const char *config_path;
    struct config *cfg;
    struct cache *cache;
    int verbose; /* -1 quiet, 0 normal, 1 verbose */
};

/* Loads the configuration (reporting every error) and opens the cache. Returns an exit code. */
int app_load(struct app *a, int need_cache);
void app_release(struct app *a);

/* Prints "error: <msg>" (each line of a multi-line message on its own line) to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Colour is used only on a terminal and never when NO_COLOR is set. */
int cli_use_color(FILE *f);

/* Finds "--name VALUE" or "--name=VALUE" in argv; returns VALUE or NULL. */
const char *cli_opt(int argc, char **argv, const char *name);
int cli_flag(int argc, char **argv, const char *name);
/* Returns the first argument not starting with '-' (and not an option's value) after index 0. */
const char *cli_positional(int argc, char **argv, int n);

int cmd_check(struct app *a, int argc, char **argv);
int cmd_sync(struct app *a, int argc, char **argv);
int cmd_daemon(struct app *a, int argc, char **argv);
int cmd_conflicts(struct app *a, int argc, char **argv);
int cmd_status(struct app *a, int argc, char **argv);
int cmd_links(struct app *a, int argc, char **argv);
int cmd_migrate(struct app *a, int argc, char **argv);
int cmd_webhooks(struct app *a, int argc, char **argv);
/* Prints a JSON value (pretty) on stdout. */
void cli_print_json(const cJSON *j);
/* "3s", "12m", "5h", "2d" for the time since ms (epoch ms). */
void cli_age(int64_t ms, char *buf, size_t n);
/* app_load, then "--pair NAME" into *only (NULL when absent); an unknown pair is a usage error
 * (printed). Returns an exit code. */
int cli_load_pair_opt(struct app *a, int argc, char **argv, int need_cache, const char **only);
/* Runs one cycle of pair NAME now (conflicts --apply); returns an exit code. */
int cli_sync_pair(struct app *a, const char *name);
/* Appends the one-line summary of a cycle ("pair 'x': read 3 crm / 1 tracker; ...") to out. */
void cli_format_report(const char *pair, const struct sync_report *r, struct strbuf *out);
/* SIGTERM/SIGINT ask running cycles to stop after in-flight writes; SIGHUP asks for a reload,
 * which cli_reload_requested() reports once (and clears). SIGPIPE is ignored. */
void cli_install_signals(void);
int cli_reload_requested(void);
/* The webhook callback URL of endpoint: webhooks.public_url (default http://LISTEN) +
 * "/hooks/" + endpoint; replaces out's contents. */
void cli_webhook_url(const struct config *cfg, const char *endpoint, struct strbuf *out);
/* The channel token given to services that echo one in their notifications (Zoho): 40 hex
 * characters of HMAC-SHA256(secret, "crmbridge channel " + endpoint), never the secret itself;
 * replaces out's contents. */
void cli_channel_token(const char *secret, const char *endpoint, struct strbuf *out);
/* Registers or renews (same id) the push channel of side s of pair pc, when its connector has a
 * watch slot, until now + hours, and keeps that expiry in the cache meta "watch:<pair>:<side>".
 * CB_ERR_NOTFOUND when the side's service has no such channel; info receives a line. */
enum cb_status cli_watch_side(struct app *a, const struct pair_conf *pc, enum side s,
                              const char *secret, int hours, struct strbuf *info,
                              struct strbuf *err);
/* The expiry (epoch ms) kept for that channel; 0 when none was registered. */
int64_t cli_watch_expiry(struct app *a, const char *pair, enum side s);

#endif
