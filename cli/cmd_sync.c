/*
 * `crmbridge sync --once`: run one cycle of every pair (or of one) and print what it did;
 * SIGTERM/SIGINT stop it after in-flight writes. The long-running daemon is in cmd_daemon.c.
 */
#define LOG_MODULE "sync"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "connectors/http.h"
#include "core/log.h"
#include "sync/engine.h"

static volatile sig_atomic_t reload_flag;

static void on_stop(int sig)
{
    (void)sig;
    sync_request_stop();
    http_request_stop();
}

static void on_hup(int sig)
{
    (void)sig;
    reload_flag = 1;
}

int cli_reload_requested(void)
{
    int r = reload_flag != 0;
    reload_flag = 0;
    return r;
}

void cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Prints up to max lines of a report section (all with -v), then how many were left out. */
static void print_lines(FILE *f, const char *prefix, const struct strbuf *lines, int max)
{
    const char *p = lines->buf;
    int shown = 0, hidden = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        if (max < 0 || shown < max) {
            fprintf(f, "%s%.*s\n", prefix, n, p);
            shown++;
        } else {
            hidden++;
        }
        p += n + (nl ? 1 : 0);
    }
    if (hidden)
        fprintf(f, "%s... and %d more (run with -v to see all)\n", prefix, hidden);
}

void cli_format_report(const char *pair, const struct sync_report *r, struct strbuf *out)
{
    (void)strbuf_addf(out,
                      "pair '%s': read %d crm / %d tracker; created %d in crm, %d in tracker; "
                      "updated %d in crm, %d in tracker; %d linked after recovery; %d conflict(s) "
                      "held; %d skipped; %d failed; %d postponed; %lu requests",
                      pair, r->read[0], r->read[1], r->created[0], r->created[1], r->updated[0],
                      r->updated[1], r->linked, r->conflicts, r->skipped, r->failed, r->postponed,
                      r->requests);
    for (int s = 0; s < 2; s++) {
        if (r->archived[s] || r->deleted[s])
            (void)strbuf_addf(out, "; %d archived and %d deleted in %s", r->archived[s],
                              r->deleted[s], s ? "tracker" : "crm");
    }
}

static void print_report(const char *pair, const struct sync_report *r, int details, int all)
{
    struct strbuf line = STRBUF_INIT;
    cli_format_report(pair, r, &line);
    puts(line.buf);
    strbuf_release(&line);
    if (details)
        print_lines(stdout, "  ", &r->notes, all ? -1 : 20);
    if (r->problems.len)
        print_lines(stdout, "  ! ", &r->problems, all ? -1 : 20);
}

/* Runs one cycle of the open pair p; returns the exit code it deserves. */
static int run_cycle(const struct pair_conf *pc, struct sync_pair *p, int verbose)
{
    struct strbuf err = STRBUF_INIT;
    int rc = EXIT_OK;
    struct sync_report rep;
    sync_report_init(&rep);
    enum cb_status st = sync_pair_cycle(p, &rep, &err);
    print_report(pc->name, &rep, verbose >= 0, verbose > 0);
    if (st == CB_ERR_STOPPED) {
        printf("pair '%s': stopped before the end of the cycle; the next run continues\n",
               pc->name);
    } else if (st != CB_OK) {
        cli_error("pair '%s': %s", pc->name, err.buf);
        rc = EXIT_FATAL;
    } else if (rep.failed || rep.skipped) {
        rc = EXIT_RECORDS;
    }
    sync_report_release(&rep);
    strbuf_release(&err);
    return rc;
}

static struct sync_pair *open_pair(struct app *a, const struct pair_conf *pc)
{
    struct sync_pair *p = NULL;
    struct strbuf err = STRBUF_INIT;
    if (sync_pair_open(a->cfg, pc, a->cache, &p, &err) != CB_OK)
        cli_error("pair '%s': %s", pc->name, err.buf);
    strbuf_release(&err);
    return p;
}

int cli_sync_pair(struct app *a, const char *name)
{
    const struct pair_conf *pc = config_pair(a->cfg, name);
    struct sync_pair *p = pc ? open_pair(a, pc) : NULL;
    int rc = p ? run_cycle(pc, p, a->verbose) : EXIT_USAGE;
    sync_pair_close(p);
    return rc;
}

static int worse(int a, int b)
{
    return a > b ? a : b;
}

int cli_load_pair_opt(struct app *a, int argc, char **argv, int need_cache, const char **only)
{
    int rc = app_load(a, need_cache);
    if (rc != EXIT_OK)
        return rc;
    *only = cli_opt(argc, argv, "--pair");
    if (*only && !config_pair(a->cfg, *only)) {
        cli_error("no pair named '%s' in '%s'", *only, a->config_path);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int cmd_sync(struct app *a, int argc, char **argv)
{
    if (!cli_flag(argc, argv, "--once")) {
        cli_error("'sync' needs --once (use 'crmbridge daemon' to keep syncing)");
        return EXIT_USAGE;
    }
    const char *only = NULL;
    int rc = cli_load_pair_opt(a, argc, argv, 1, &only);
    if (rc != EXIT_OK)
        return rc;
    cli_install_signals();
    for (size_t i = 0; i < a->cfg->n_pairs && !sync_stop_requested(); i++) {
        const struct pair_conf *pc = &a->cfg->pairs[i];
        if (only && !str_eq(only, pc->name))
            continue;
        struct sync_pair *p = open_pair(a, pc);
        rc = worse(rc, p ? run_cycle(pc, p, a->verbose) : EXIT_USAGE);
        sync_pair_close(p);
    }
    return rc;
}
