/*
 * `crmbridge migrate`: options, the progress line (stderr, only on a terminal; one JSON line per
 * interval with --json), Ctrl-C handling (stop after in-flight writes, say how to resume) and the
 * final report on stdout and as a JSON file under state_dir/reports/. The work itself is
 * sync/migrate.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "connectors/http.h"
#include "core/timeutil.h"
#include "sync/migrate.h"

/* Connections a migration writes over unless --workers says otherwise: every service's limits
 * are shared by all of them (and Zoho's Standard edition allows 10 calls in flight). */
#define DEFAULT_WORKERS 8

#define JSON_INTERVAL_MS 1000
#define TTY_INTERVAL_MS 200

struct display {
    const char *pair;
    int tty, json;
    int64_t last_ms;
    int drawn;
};

static void fmt_duration(double s, char *buf, size_t n)
{
    long t = (long)(s + 0.5);
    if (t < 120)
        snprintf(buf, n, "%lds", t);
    else if (t < 7200)
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, n, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
}

static void show_json(const struct migrate_progress *p, double secs, double rate)
{
    cJSON *o = cJSON_CreateObject(), *pr = cJSON_AddObjectToObject(o, "progress");
    cJSON_AddStringToObject(pr, "phase", p->phase);
    cJSON_AddNumberToObject(pr, "done", (double)p->done);
    if (p->total > 0) /* not known yet: the source is being counted */
        cJSON_AddNumberToObject(pr, "total", (double)p->total);
    cJSON_AddNumberToObject(pr, "read", (double)p->n.read);
    cJSON_AddNumberToObject(pr, "created", (double)p->n.created);
    cJSON_AddNumberToObject(pr, "failed", (double)p->n.failed);
    cJSON_AddNumberToObject(pr, "requests", (double)p->requests);
    cJSON_AddNumberToObject(pr, "elapsed_s", secs);
    cJSON_AddNumberToObject(pr, "rate", rate);
    if (rate > 0 && p->total > 0 && p->total >= p->done)
        cJSON_AddNumberToObject(pr, "eta_s", (double)(p->total - p->done) / rate);
    char *txt = cJSON_PrintUnformatted(o);
    printf("%s\n", txt);
    fflush(stdout);
    cJSON_free(txt);
    cJSON_Delete(o);
}

static void show_tty(struct display *d, const struct migrate_progress *p, double rate)
{
    char eta[32] = "?";
    if (rate > 0 && p->total > 0 && p->total >= p->done)
        fmt_duration((double)(p->total - p->done) / rate, eta, sizeof(eta));
    int pct = p->total > 0 ? (int)(100 * p->done / p->total) : 0;
    if (!strcmp(p->phase, "copy") && p->total <= 0) /* the source is being counted */
        fprintf(stderr, "\rmigrate '%s': %ld done  %.1f records/s  %lu requests\033[K", d->pair,
                p->done, rate, p->requests);
    else if (!strcmp(p->phase, "copy"))
        fprintf(stderr,
                "\rmigrate '%s': %ld/%ld (%d%%)  %.1f records/s  ETA %s  %lu requests\033[K",
                d->pair, p->done, p->total, pct, rate, eta, p->requests);
    else
        fprintf(stderr, "\rmigrate '%s': %s: %ld records read  %lu requests\033[K", d->pair,
                p->phase, p->n.read, p->requests);
    fflush(stderr);
    d->drawn = 1;
}

static void on_progress(void *arg, const struct migrate_progress *p)
{
    struct display *d = arg;
    int64_t now = cbtime_now_ms();
    if (!d->tty && !d->json)
        return;
    if (now - d->last_ms < (d->json ? JSON_INTERVAL_MS : TTY_INTERVAL_MS))
        return;
    d->last_ms = now;
    double secs = (double)(now - p->started_ms) / 1000.0;
    double rate = secs > 0 ? (double)p->done / secs : 0;
    if (d->json)
        show_json(p, secs, rate);
    else
        show_tty(d, p, rate);
}

/* ---------------------------------------------------------------- report */

static void print_problems(const struct strbuf *lines, int all)
{
    const char *q = lines->buf;
    int shown = 0, hidden = 0;
    while (q && *q) {
        const char *nl = strchr(q, '\n');
        int len = nl ? (int)(nl - q) : (int)strlen(q);
        if (all || shown < 20) {
            printf("  ! %.*s\n", len, q);
            shown++;
        } else {
            hidden++;
        }
        q += len + (nl ? 1 : 0);
    }
    if (hidden)
        printf("  ! ... and %d more (all in the report file, or run with -v)\n", hidden);
}

static void print_plan(const char *pair, const struct migrate_opts *o,
                       const struct migrate_report *r)
{
    enum side t = SIDE_OTHER(o->from);
    char dur[32];
    fmt_duration(r->plan_seconds, dur, sizeof(dur));
    printf("migrate '%s' %s -> %s (dry run: nothing written)\n", pair, side_name(o->from),
           side_name(t));
    printf("  would create %ld, link %ld to existing, finish %ld interrupted, skip %ld; already "
           "linked %ld; filtered out %ld; read %ld\n",
           r->to_copy, r->to_link, r->to_settle, r->n.skipped, r->n.already, r->n.filtered,
           r->n.read);
    printf("  at least %ld requests (%s %ld, %s %ld: one per batch; a connector may need more, "
           "e.g. jira status transitions), at least %s at the measured request time\n",
           r->plan_calls[0] + r->plan_calls[1], side_name(SIDE_CRM), r->plan_calls[0],
           side_name(SIDE_TRACKER), r->plan_calls[1], dur);
    if (r->resumed)
        printf("  continues the migration begun %s (checkpoint found)\n",
               r->was_finished ? "earlier and finished" : "earlier");
}

static void print_counts(const char *what, const struct migrate_counts *n)
{
    printf("  %s: read %ld, created %ld, linked to existing %ld, already linked %ld, "
           "filtered out %ld, skipped %ld, failed %ld, postponed %ld, updated after copy %ld, "
           "comments copied %ld\n",
           what, n->read, n->created, n->linked, n->already, n->filtered, n->skipped, n->failed,
           n->postponed, n->updated, n->comments);
}

static void print_report(const char *pair, const struct migrate_opts *o,
                         const struct migrate_report *r, const char *file, int all)
{
    enum side t = SIDE_OTHER(o->from);
    double secs = (double)(r->finished_ms - r->started_ms) / 1000.0;
    char dur[32];
    fmt_duration(secs, dur, sizeof(dur));
    const char *state = r->finished ? "finished" : r->stopped ? "stopped" : "incomplete";
    printf("migrate '%s' %s -> %s: %s\n", pair, side_name(o->from), side_name(t), state);
    if (r->was_finished && r->n.created == 0 && r->n.linked == 0 && r->n.updated == 0)
        printf("  nothing to copy: this migration had already finished; no record was written\n");
    print_counts("this run", &r->n);
    if (r->resumed)
        print_counts("whole migration", &r->total);
    printf("  %lu requests in %s (%.1f records/s)\n", r->requests, dur,
           secs > 0 ? (double)(r->n.created + r->n.linked) / secs : 0.0);
    if (r->verified)
        printf("  verification: %ld linked copies, %ld found on %s, %ld missing, %ld changed\n",
               r->verify_links, r->verify_found, side_name(t), r->verify_links - r->verify_found,
               r->verify_differ);
    print_problems(&r->problems, all);
    if (file)
        printf("  report: %s\n", file);
}

/* Writes the JSON report under state_dir/reports/; returns its path (owned) or NULL. */
static char *save_file(const char *state_dir, const char *pair, enum side from, const cJSON *j)
{
    char dir[1024], stamp[32];
    snprintf(dir, sizeof(dir), "%s/reports", state_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        cli_error("cannot create '%s': %s", dir, strerror(errno));
        return NULL;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_addf(&path, "%s/migrate-%s-%s-%s.json", dir, pair, side_name(from), stamp);
    FILE *f = fopen(path.buf, "w");
    char *txt = cJSON_Print(j);
    int ok = f && fputs(txt, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = 0;
    cJSON_free(txt);
    if (!ok) {
        cli_error("cannot write the report '%s': %s", path.buf, strerror(errno));
        strbuf_release(&path);
        return NULL;
    }
    return strbuf_detach(&path);
}

/* ---------------------------------------------------------------- the command */

static int parse_opts(int argc, char **argv, struct migrate_opts *o, const char **pair)
{
    memset(o, 0, sizeof(*o));
    *pair = cli_opt(argc, argv, "--pair");
    const char *from = cli_opt(argc, argv, "--from");
    const char *limit = cli_opt(argc, argv, "--limit");
    o->filter = cli_opt(argc, argv, "--filter");
    o->dry_run = cli_flag(argc, argv, "--dry-run");
    o->no_comments = cli_flag(argc, argv, "--no-comments");
    o->match = cli_opt(argc, argv, "--match");
    if (!from || (strcmp(from, "crm") && strcmp(from, "tracker"))) {
        cli_error("'migrate' needs --from crm or --from tracker");
        return EXIT_USAGE;
    }
    o->from = !strcmp(from, "crm") ? SIDE_CRM : SIDE_TRACKER;
    const char *workers = cli_opt(argc, argv, "--workers");
    o->workers = DEFAULT_WORKERS;
    if (workers) {
        char *end;
        o->workers = (int)strtol(workers, &end, 10);
        if (*end || o->workers < 1 || o->workers > 64) {
            cli_error("invalid --workers '%s': expected 1..64 connections", workers);
            return EXIT_USAGE;
        }
    }
    if (limit) {
        char *end;
        o->limit = strtol(limit, &end, 10);
        if (*end || o->limit <= 0) {
            cli_error("invalid --limit '%s': expected a positive number of records", limit);
            return EXIT_USAGE;
        }
    }
    return EXIT_OK;
}

static const struct pair_conf *pick_pair(struct app *a, const char *name)
{
    if (!name && a->cfg->n_pairs == 1)
        return &a->cfg->pairs[0];
    if (!name) {
        cli_error("'migrate' needs --pair NAME (the config has %zu pairs)", a->cfg->n_pairs);
        return NULL;
    }
    const struct pair_conf *pc = config_pair(a->cfg, name);
    if (!pc)
        cli_error("no pair named '%s' in '%s'", name, a->config_path);
    return pc;
}

static int exit_code(enum cb_status st, const struct migrate_report *r, int dry_run)
{
    if (st != CB_OK && st != CB_ERR_STOPPED)
        return EXIT_FATAL;
    if (st == CB_ERR_STOPPED)
        return EXIT_RECORDS; /* records are missing until it is resumed */
    long missing = r->verified ? r->verify_links - r->verify_found : 0;
    if (!dry_run && (r->n.skipped || r->n.failed || r->n.postponed || missing || r->verify_differ))
        return EXIT_RECORDS;
    return EXIT_OK;
}

static void finish_output(struct app *a, const struct pair_conf *pc, const struct migrate_opts *o,
                          const struct migrate_report *r, int json)
{
    cJSON *j = migrate_report_json(r, pc->name, o->from);
    if (o->dry_run) {
        cJSON *plan = cJSON_AddObjectToObject(j, "plan");
        cJSON_AddNumberToObject(plan, "create", (double)r->to_copy);
        cJSON_AddNumberToObject(plan, "link", (double)r->to_link);
        cJSON_AddNumberToObject(plan, "finish_interrupted", (double)r->to_settle);
        cJSON_AddNumberToObject(plan, "requests_crm", (double)r->plan_calls[0]);
        cJSON_AddNumberToObject(plan, "requests_tracker", (double)r->plan_calls[1]);
        cJSON_AddNumberToObject(plan, "seconds", r->plan_seconds);
    }
    char *file = o->dry_run ? NULL : save_file(a->cfg->state_dir, pc->name, o->from, j);
    if (json) {
        if (file)
            cJSON_AddStringToObject(j, "report_file", file);
        char *txt = cJSON_PrintUnformatted(j);
        printf("%s\n", txt);
        cJSON_free(txt);
    } else if (o->dry_run) {
        print_plan(pc->name, o, r);
    } else {
        print_report(pc->name, o, r, file, a->verbose > 0);
    }
    free(file);
    cJSON_Delete(j);
}

int cmd_migrate(struct app *a, int argc, char **argv)
{
    struct migrate_opts o;
    const char *name;
    int rc = parse_opts(argc, argv, &o, &name);
    if (rc == EXIT_OK)
        rc = app_load(a, 1);
    if (rc != EXIT_OK)
        return rc;
    const struct pair_conf *pc = pick_pair(a, name);
    if (!pc)
        return EXIT_USAGE;
    struct sync_pair *p = NULL;
    struct strbuf err = STRBUF_INIT;
    if (sync_pair_open(a->cfg, pc, a->cache, &p, &err) != CB_OK ||
        migrate_check_opts(p, &o, &err) != CB_OK) {
        cli_error("pair '%s': %s", pc->name, err.buf);
        strbuf_release(&err);
        sync_pair_close(p);
        return EXIT_USAGE;
    }
    o.cfg = a->cfg;
    cli_install_signals();
    int json = cli_flag(argc, argv, "--json");
    struct display d = {
        .pair = pc->name, .tty = isatty(STDERR_FILENO) && a->verbose >= 0, .json = json};
    struct migrate_report r;
    migrate_report_init(&r);
    enum cb_status st = migrate_run(p, &o, on_progress, &d, &r, &err);
    if (d.drawn)
        fputs("\r\033[K", stderr);
    finish_output(a, pc, &o, &r, json);
    if (st == CB_ERR_STOPPED)
        fprintf(stderr,
                "migrate '%s': stopped after the writes in flight; %ld copied in this run. "
                "Run the same command again to continue.\n",
                pc->name, r.n.created + r.n.linked);
    else if (st != CB_OK)
        cli_error("pair '%s': %s (run the same command again to continue)", pc->name, err.buf);
    rc = exit_code(st, &r, o.dry_run);
    migrate_report_release(&r);
    strbuf_release(&err);
    sync_pair_close(p);
    return rc;
}
