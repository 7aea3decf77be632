/* Helpers shared by the subcommands: loading config and cache, option lookup, error output. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "sync/engine.h"

void cli_error(const char *fmt, ...)
{
    struct strbuf sb = STRBUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    (void)strbuf_vaddf(&sb, fmt, ap);
    va_end(ap);
    char *clean = log_redact(sb.buf);
    for (char *line = clean, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        fprintf(stderr, "error: %s\n", line);
    }
    free(clean);
    strbuf_release(&sb);
}

int cli_use_color(FILE *f)
{
    const char *nc = getenv("NO_COLOR");
    return isatty(fileno(f)) && !(nc && *nc);
}

const char *cli_opt(int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], name) && i + 1 < argc)
            return argv[i + 1];
        if (!strncmp(argv[i], name, n) && argv[i][n] == '=')
            return argv[i] + n + 1;
    }
    return NULL;
}

int cli_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name))
            return 1;
    return 0;
}

static int takes_value(const char *opt)
{
    static const char *const with_value[] = {"-c", "--pair", "--take", "--value", "--field", NULL};
    for (int i = 0; with_value[i]; i++)
        if (!strcmp(opt, with_value[i]))
            return 1;
    return 0;
}

const char *cli_positional(int argc, char **argv, int n)
{
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            if (takes_value(argv[i]))
                i++;
            continue;
        }
        if (n-- == 0)
            return argv[i];
    }
    return NULL;
}

int app_load(struct app *a, int need_cache)
{
    struct strbuf err = STRBUF_INIT;
    if (config_load(a->config_path, &a->cfg, &err) != CB_OK) {
        cli_error("%s", err.buf);
        strbuf_release(&err);
        return EXIT_USAGE;
    }
    int bad = 0;
    for (size_t i = 0; i < a->cfg->n_pairs; i++)
        if (sync_check_pair_config(a->cfg, &a->cfg->pairs[i], &err) != CB_OK)
            bad = 1;
    if (bad) {
        strbuf_trim_end(&err);
        cli_error("%s", err.buf);
        strbuf_release(&err);
        return EXIT_USAGE;
    }
    if (a->cfg->log_level && a->verbose == 0) {
        int lvl = log_level_parse(a->cfg->log_level);
        if (lvl >= 0)
            log_set_level((enum log_level)lvl);
    }
    if (need_cache && cache_open(a->cfg->state_dir, &a->cache, &err) != CB_OK) {
        cli_error("cannot open the cache in '%s': %s", a->cfg->state_dir, err.buf);
        strbuf_release(&err);
        return EXIT_FATAL;
    }
    strbuf_release(&err);
    return EXIT_OK;
}

void app_release(struct app *a)
{
    if (a->cache)
        cache_close(a->cache);
    config_free(a->cfg);
    a->cache = NULL;
    a->cfg = NULL;
}

void cli_print_json(const cJSON *j)
{
    char *txt = cJSON_Print(j);
    puts(txt);
    cJSON_free(txt);
}

void cli_age(int64_t ms, char *buf, size_t n)
{
    if (ms <= 0) {
        snprintf(buf, n, "never");
        return;
    }
    int64_t s = (cbtime_now_ms() - ms) / 1000;
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(buf, n, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(buf, n, "%lldm", (long long)(s / 60));
    else if (s < 172800)
        snprintf(buf, n, "%lldh", (long long)(s / 3600));
    else
        snprintf(buf, n, "%lldd", (long long)(s / 86400));
}
