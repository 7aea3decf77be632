/*
 * crmbridge's entry point: global options, the subcommand table (git.c style), logging set-up and
 * the exit-code policy. Subcommands live one per file (cmd_*.c).
 */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"

static const char usage[] =
    "usage: crmbridge [-c FILE] [-v | -q] <command> [<args>]\n"
    "\n"
    "Keeps CRM records (Zoho CRM) and tracker issues (Jira) in step, both ways.\n"
    "\n"
    "commands:\n"
    "  check                          validate the config, reach and authenticate every endpoint\n"
    "  sync --once [--pair NAME]      run one sync cycle of every pair (or of one)\n"
    "  daemon [--pair NAME]           run every pair on its interval until SIGTERM (SIGHUP reloads)\n"
    "  conflicts list [--pair NAME] [--json]\n"
    "                                 the field conflicts waiting for a person\n"
    "  conflicts show ID              base, CRM and tracker value side by side\n"
    "\n"
    "options:\n"
    "  -c FILE        configuration file (default " CONFIG_DEFAULT_PATH ")\n"
    "  -v, --verbose  log debug detail to stderr\n"
    "  -q, --quiet    log errors only\n"
    "  -h, --help     this help\n"
    "  --version      print the version\n"
    "\n"
    "exit codes: 0 ok, 1 some records failed or were skipped, 2 usage or configuration error,\n"
    "            3 fatal (an endpoint or the cache cannot be used)\n";

struct cmd {
    const char *name;
    int (*fn)(struct app *, int, char **);
};

static const struct cmd cmds[] = {
    {"check", cmd_check},
    {"sync", cmd_sync},
    {"daemon", cmd_daemon},
    {"conflicts", cmd_conflicts},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    struct app a = {.config_path = CONFIG_DEFAULT_PATH};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(usage, stdout);
            return EXIT_OK;
        } else if (!strcmp(o, "--version")) {
            printf("crmbridge %s\n", CRMBRIDGE_VERSION);
            return EXIT_OK;
        } else if (!strcmp(o, "-v") || !strcmp(o, "--verbose")) {
            a.verbose = 1;
        } else if (!strcmp(o, "-q") || !strcmp(o, "--quiet")) {
            a.verbose = -1;
        } else if (!strcmp(o, "-c") && i + 1 < argc) {
            a.config_path = argv[++i];
        } else if (!strncmp(o, "--config=", 9)) {
            a.config_path = o + 9;
        } else {
            cli_error("unknown option '%s'", o);
            fputs(usage, stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const struct cmd *c = NULL;
    for (int k = 0; cmds[k].name; k++)
        if (!strcmp(cmds[k].name, argv[i]))
            c = &cmds[k];
    if (!c) {
        cli_error("unknown command '%s' (see crmbridge --help)", argv[i]);
        return EXIT_USAGE;
    }
    if (cli_flag(argc - i, argv + i, "--help") || cli_flag(argc - i, argv + i, "-h")) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    /* -c may also follow the command */
    const char *cfg = cli_opt(argc - i, argv + i, "-c");
    if (cfg)
        a.config_path = cfg;
    log_set_level(a.verbose > 0 ? LOG_DEBUG : a.verbose < 0 ? LOG_ERROR : LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = c->fn(&a, argc - i, argv + i);
    app_release(&a);
    curl_global_cleanup();
    return rc;
}
