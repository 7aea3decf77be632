/*
 * `crmbridge sync --once` and `crmbridge daemon`: run pairs' cycles and report what they did.
 * The daemon runs each pair on its own interval, backs a failing pair off without stalling the
 * others, finishes in-flight writes on SIGTERM/SIGINT and exits 0, and reloads its config on
 * SIGHUP.
 */
#define LOG_MODULE "daemon"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "connectors/http.h"
#include "core/log.h"
#include "core/timeutil.h"
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

static void install_signals(void)
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

static void print_report(const char *pair, const struct sync_report *r, int details, int all)
{
    printf("pair '%s': read %d crm / %d tracker; created %d in crm, %d in tracker; "
           "updated %d in crm, %d in tracker; %d linked after recovery; %d conflict(s) held; "
           "%d skipped; %d failed; %d postponed; %lu requests\n",
           pair, r->read[0], r->read[1], r->created[0], r->created[1], r->updated[0],
           r->updated[1], r->linked, r->conflicts, r->skipped, r->failed, r->postponed,
           r->requests);
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

int cmd_sync(struct app *a, int argc, char **argv)
{
    if (!cli_flag(argc, argv, "--once")) {
        cli_error("'sync' needs --once (use 'crmbridge daemon' to keep syncing)");
        return EXIT_USAGE;
    }
    int rc = app_load(a, 1);
    if (rc != EXIT_OK)
        return rc;
    const char *only = cli_opt(argc, argv, "--pair");
    if (only && !config_pair(a->cfg, only)) {
        cli_error("no pair named '%s' in '%s'", only, a->config_path);
        return EXIT_USAGE;
    }
    install_signals();
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

/* ---------------------------------------------------------------- daemon */

struct schedule {
    struct sync_pair *p; /* kept open across cycles: tokens and metadata are reused */
    int64_t next_ms;
    int failures;
};

static void close_all(struct schedule *sched, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sync_pair_close(sched[i].p);
    free(sched);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int reload(struct app *a)
{
    struct config *fresh = NULL;
    struct strbuf err = STRBUF_INIT;
    if (config_load(a->config_path, &fresh, &err) != CB_OK) {
        log_error("cannot reload '%s', keeping the running config: %s", a->config_path, err.buf);
        strbuf_release(&err);
        return 0;
    }
    strbuf_release(&err);
    if (!str_eq(fresh->state_dir, a->cfg->state_dir))
        log_warn("state_dir changes take effect after a restart");
    config_free(a->cfg);
    a->cfg = fresh;
    log_info("reloaded '%s': %zu pair(s)", a->config_path, fresh->n_pairs);
    return 1;
}

int cmd_daemon(struct app *a, int argc, char **argv)
{
    int rc = app_load(a, 1);
    if (rc != EXIT_OK)
        return rc;
    if (a->verbose == 0)
        log_set_level(LOG_INFO);
    install_signals();
    const char *only = cli_opt(argc, argv, "--pair");
    struct schedule *sched = xcalloc(a->cfg->n_pairs + 1, sizeof(*sched));
    size_t n_sched = a->cfg->n_pairs;
    log_info("started with %zu pair(s), state in '%s'", a->cfg->n_pairs, a->cfg->state_dir);
    while (!sync_stop_requested()) {
        if (reload_flag) {
            reload_flag = 0;
            if (reload(a)) {
                close_all(sched, n_sched);
                sched = xcalloc(a->cfg->n_pairs + 1, sizeof(*sched));
                n_sched = a->cfg->n_pairs;
            }
        }
        int64_t now = cbtime_now_ms();
        for (size_t i = 0; i < n_sched && !sync_stop_requested(); i++) {
            const struct pair_conf *pc = &a->cfg->pairs[i];
            if ((only && !str_eq(only, pc->name)) || now < sched[i].next_ms)
                continue;
            if (!sched[i].p)
                sched[i].p = open_pair(a, pc);
            int prc = sched[i].p ? run_cycle(pc, sched[i].p, a->verbose) : EXIT_USAGE;
            fflush(stdout);
            int64_t wait = (int64_t)pc->interval_s * 1000;
            if (prc == EXIT_FATAL || prc == EXIT_USAGE) {
                /* back off a failing pair (up to an hour) so it cannot hammer its endpoints */
                sched[i].failures++;
                for (int k = 1; k < sched[i].failures && wait < 3600000; k++)
                    wait *= 2;
                if (wait > 3600000)
                    wait = 3600000;
                log_warn("pair '%s' failed; next attempt in %lld s", pc->name,
                         (long long)(wait / 1000));
            } else {
                sched[i].failures = 0;
            }
            sched[i].next_ms = cbtime_now_ms() + wait;
        }
        sleep_ms(200);
    }
    close_all(sched, n_sched);
    log_info("stopped");
    return EXIT_OK;
}
