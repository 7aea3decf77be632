/*
 * `crmbridge check`: the configuration is valid (all problems at once, exit 2), and every
 * endpoint of every pair answers and accepts our credentials (exit 3 when one does not).
 */
#include <stdio.h>

#include "cli/cli.h"
#include "sync/engine.h"

int cmd_check(struct app *a, int argc, char **argv)
{
    int rc = app_load(a, 1);
    if (rc != EXIT_OK)
        return rc;
    printf("config '%s' is valid: %zu endpoint(s), %zu pair(s)\n", a->config_path,
           a->cfg->n_endpoints, a->cfg->n_pairs);
    const char *only = cli_opt(argc, argv, "--pair");
    int failures = 0;
    for (size_t i = 0; i < a->cfg->n_pairs; i++) {
        const struct pair_conf *pc = &a->cfg->pairs[i];
        if (only && !str_eq(only, pc->name))
            continue;
        struct sync_pair *p = NULL;
        struct strbuf err = STRBUF_INIT;
        if (sync_pair_open(a->cfg, pc, a->cache, &p, &err) != CB_OK) {
            cli_error("pair '%s': %s", pc->name, err.buf);
            failures++;
            strbuf_release(&err);
            continue;
        }
        for (int s = 0; s < 2; s++) {
            struct strbuf info = STRBUF_INIT;
            strbuf_reset(&err);
            if (sync_pair_ping(p, (enum side)s, &info, &err) == CB_OK) {
                printf("ok    pair '%s' %-7s %s\n", pc->name, side_name((enum side)s), info.buf);
            } else {
                printf("FAIL  pair '%s' %-7s endpoint '%s'\n", pc->name, side_name((enum side)s),
                       pc->side[s].endpoint);
                cli_error("pair '%s': %s endpoint '%s': %s", pc->name, side_name((enum side)s),
                          pc->side[s].endpoint, err.buf);
                failures++;
            }
            strbuf_release(&info);
        }
        strbuf_release(&err);
        sync_pair_close(p);
    }
    return failures ? EXIT_FATAL : EXIT_OK;
}
