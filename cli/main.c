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
    "  daemon [--pair NAME] [--shard I/N] [--log-json]\n"
    "                                 run every pair on its interval until SIGTERM (SIGHUP reloads)\n"
    "  webhooks list|register [--pair NAME]\n"
    "                                 callback URLs; register the webhooks where the API allows\n"
    "  conflicts list [--pair NAME] [--json]\n"
    "                                 the field conflicts waiting for a person\n"
    "  conflicts show ID              base, CRM and tracker value side by side\n"
    "  conflicts resolve ID --take crm|tracker|base | --value TEXT [--apply]\n"
    "  status [--pair NAME] [--json]  links, cursors, last cycle, open conflicts per pair\n"
    "  links list|show|unlink         the record pairs kept in step\n"
    "  migrate --pair NAME --from crm|tracker [--filter EXPR] [--dry-run] [--limit N] [--json]\n"
    "                                 copy every matching record to the other side (resumable)\n"
    "\n"
    "  crmbridge <command> --help     details of one command\n"
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
    const char *usage;
};

static const struct cmd cmds[] = {
    {"check", cmd_check,
     "usage: crmbridge [-c FILE] check [--pair NAME]\n\n"
     "Validates the configuration (every problem at once, with file and line), then reaches and\n"
     "authenticates every endpoint of every pair and reads what the sync needs (fields,\n"
     "workflow). Exit 0 when all is well, 2 for a config error, 3 when an endpoint fails.\n"},
    {"sync", cmd_sync,
     "usage: crmbridge [-c FILE] sync --once [--pair NAME]\n\n"
     "Runs one sync cycle of every pair (or of NAME) and prints what it created, updated,\n"
     "held as a conflict, skipped or failed. Exit 0 ok, 1 when a record failed or was skipped,\n"
     "3 when a pair could not run.\n"},
    {"daemon", cmd_daemon,
     "usage: crmbridge [-c FILE] daemon [--pair NAME] [--shard I/N] [--log-json]\n\n"
     "Runs every pair on its own interval, each in its own thread, until SIGTERM or SIGINT\n"
     "(in-flight writes finish, exit 0). SIGHUP reloads the configuration (a broken one is\n"
     "logged and the running one kept). A failing pair backs off, up to an hour. With a\n"
     "'webhooks' group it listens for webhooks on /hooks/ENDPOINT (a valid one runs the pair's\n"
     "cycle at once) and serves /metrics (Prometheus) and /healthz. --shard I/N runs only the\n"
     "pairs whose name hashes to I of N. One daemon per state_dir (daemon.lock): a second one\n"
     "exits 3. See docs/operations.md.\n"},
    {"webhooks", cmd_webhooks,
     "usage: crmbridge [-c FILE] webhooks list\n"
     "       crmbridge [-c FILE] webhooks register [--pair NAME]\n\n"
     "list prints, per endpoint whose service sends webhooks, the callback URL the daemon\n"
     "listens on (webhooks.public_url + /hooks/ENDPOINT). register creates the Jira admin\n"
     "webhook (signed with webhooks.secret, filtered on the pairs' projects) and one Trello\n"
     "webhook per board (the daemon must run: Trello checks the URL); again is a no-op. For\n"
     "Zoho and Fxiaoke it prints what to set up by hand. Exit 3 when a registration fails.\n"},
    {"status", cmd_status,
     "usage: crmbridge [-c FILE] status [--pair NAME] [--json]\n\n"
     "Per pair: links, cursors and their age, the last cycle's outcome (with the reason for each\n"
     "skipped or failed record), open conflicts and pending creates. The state is 'ok' only when\n"
     "the last cycle ran and nothing was skipped or failed. Exit 1 when a pair is not ok.\n"},
    {"conflicts", cmd_conflicts,
     "usage: crmbridge [-c FILE] conflicts list [--pair NAME] [--json]\n"
     "       crmbridge [-c FILE] conflicts show ID [--json]\n"
     "       crmbridge [-c FILE] conflicts resolve ID (--take crm|tracker|base | --value TEXT) [--apply]\n"
     "       crmbridge [-c FILE] conflicts resolve --all --field FIELD --take crm|tracker|base [--pair NAME] [--apply]\n\n"
     "A conflict is a field changed differently on both sides since they last agreed; that field\n"
     "is held (not synced) until a person chooses. A resolution is kept in the cache and written\n"
     "to both sides by the next cycle, or at once with --apply.\n"},
    {"links", cmd_links,
     "usage: crmbridge [-c FILE] links list [--pair NAME] [--json]\n"
     "       crmbridge [-c FILE] links show ID [--pair NAME] [--json]\n"
     "       crmbridge [-c FILE] links unlink ID [--pair NAME]\n\n"
     "Inspects the pairs of records crmbridge keeps in step. unlink cuts a link and keeps both\n"
     "records; neither is synced or re-created afterwards.\n"},
    {"migrate", cmd_migrate,
     "usage: crmbridge [-c FILE] migrate --pair NAME --from crm|tracker [--filter EXPR]\n"
     "                 [--match FIELD] [--dry-run] [--limit N] [--workers N] [--no-comments]\n"
     "                 [--json]\n\n"
     "Copies every record of one side that matches EXPR (\"field=value,field!=value\" on the\n"
     "mapping's item fields, e.g. \"status!=done\") to the other side, with its comments (unless\n"
     "--no-comments), in the largest batches the target allows, and links each copy as the\n"
     "daemon would, so the daemon carries on from there.\n"
     "Progress is checkpointed in the cache: after Ctrl-C, a crash or a kill the same command\n"
     "continues where it stopped and creates no duplicate; a finished migration writes nothing.\n"
     "--match FIELD links a record to the one on the other side whose item FIELD has the same\n"
     "value (e.g. an external id: --match tracker_ref) instead of copying it; a record found by\n"
     "crmbridge's own marker is always linked.\n"
     "--dry-run reads and prints the plan (creates, links, skips, requests, time) and writes\n"
     "nothing. --limit copies at most N records in this run. --workers N writes over N\n"
     "connections at once (default 8; 1 writes page after page): pages overlap, and the\n"
     "connections share each service's limits, so more of them never means more 429s.\n"
     "A progress line is shown on a terminal, one JSON line per second with --json. The report\n"
     "(stdout and state_dir/reports/) lists what was read, created, linked, skipped and failed,\n"
     "with reasons, and a verification of the copies on the target. Exit 0 when every record\n"
     "was copied and verified, 1 when one was skipped, failed or is still missing (stopped),\n"
     "2 usage, 3 when an endpoint failed.\n"},
    {NULL, NULL, NULL},
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
        fputs(c->usage, stdout);
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
