/*
 * Memory and disk with many links. A real sync links a small set of cases (their links and
 * bases are the templates); the cache is then filled through cache/cache.h with copies of them
 * under fresh remote ids up to L links. Fresh processes (exec'ed, so their peak RSS is their own)
 * then open the pair and run no-change cycles against the simulators, or walk every link; the
 * cache's size on disk is divided by the links. Writes JSON. It judges no target.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bench/benchutil.h"
#include "core/log.h"
#include "core/strbuf.h"

#define REAL 100     /* cases linked by a real sync */
#define PER_TXN 1000 /* links written per fill transaction */

struct templ {
    struct link link[REAL];
    cJSON *base[REAL];
    size_t n;
};

static int collect(void *arg, const struct link *l)
{
    struct templ *t = arg;
    if (t->n == REAL)
        return 1;
    struct link *d = &t->link[t->n++];
    d->id = l->id;
    d->created_ms = l->created_ms;
    for (int s = 0; s < 2; s++) {
        d->remote[s] = l->remote[s] ? xstrdup(l->remote[s]) : NULL;
        d->key[s] = l->key[s] ? xstrdup(l->key[s]) : NULL;
        d->url[s] = l->url[s] ? xstrdup(l->url[s]) : NULL;
    }
    return 0;
}

static int load_templates(struct cache *c, struct templ *t)
{
    struct cache_txn *txn = NULL;
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = cache_txn_begin(c, 1, &txn, &err);
    if (st == CB_OK)
        st = cache_link_foreach(txn, BENCH_PAIR, collect, t);
    for (size_t i = 0; st == CB_OK && i < t->n; i++)
        st = cache_base_get(txn, BENCH_PAIR, t->link[i].id, &t->base[i]);
    if (txn)
        cache_txn_abort(txn);
    if (st != CB_OK || t->n != REAL)
        fprintf(stderr, "bench: cannot read the template links (%zu): %s\n", t->n,
                cb_status_str(st));
    strbuf_release(&err);
    return st == CB_OK && t->n == REAL ? 0 : -1;
}

/* A url of the template with its last path part replaced by id. */
static char *swap_tail(const char *url, const char *id)
{
    if (!url)
        return NULL;
    const char *slash = strrchr(url, '/');
    struct strbuf sb = STRBUF_INIT;
    (void)strbuf_add(&sb, url, slash ? (size_t)(slash - url + 1) : strlen(url));
    (void)strbuf_adds(&sb, id);
    return strbuf_detach(&sb);
}

/* Link number i (beyond the real ones) cloned from its template, with ids of the same shape. */
static void make_link(const struct link *tl, long i, struct link *l)
{
    char zid[32], jid[32], key[32];
    snprintf(zid, sizeof(zid), "5725767001%09ld", i);
    snprintf(jid, sizeof(jid), "%ld", 200000 + i);
    snprintf(key, sizeof(key), "SUP-%ld", 200000 + i);
    memset(l, 0, sizeof(*l));
    l->remote[SIDE_CRM] = xstrdup(zid);
    l->remote[SIDE_TRACKER] = xstrdup(jid);
    l->key[SIDE_CRM] = tl->key[SIDE_CRM] ? xstrdup(zid) : NULL;
    l->key[SIDE_TRACKER] = xstrdup(key);
    l->url[SIDE_CRM] = swap_tail(tl->url[SIDE_CRM], zid);
    l->url[SIDE_TRACKER] = swap_tail(tl->url[SIDE_TRACKER], key);
    l->created_ms = tl->created_ms;
}

static int fill(struct cache *c, const struct templ *t, long total, double *base_bytes)
{
    size_t tb[REAL];
    *base_bytes = 0;
    for (size_t j = 0; j < REAL; j++) {
        char *s = cJSON_PrintUnformatted(t->base[j]);
        tb[j] = strlen(s);
        *base_bytes += (double)tb[j];
        cJSON_free(s);
    }
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = CB_OK;
    for (long i = 0; st == CB_OK && i < total - REAL; i += PER_TXN) {
        struct cache_txn *txn = NULL;
        st = cache_txn_begin(c, 0, &txn, &err);
        for (long k = i; st == CB_OK && k < i + PER_TXN && k < total - REAL; k++) {
            struct link l;
            make_link(&t->link[k % REAL], k, &l);
            st = cache_link_put(txn, BENCH_PAIR, &l);
            if (st == CB_OK)
                st = cache_base_put(txn, BENCH_PAIR, l.id, t->base[k % REAL]);
            *base_bytes += (double)tb[k % REAL];
            link_release(&l);
        }
        if (txn && st == CB_OK)
            st = cache_txn_commit(txn, &err);
        else if (txn)
            cache_txn_abort(txn);
    }
    if (st != CB_OK)
        fprintf(stderr, "bench: cannot fill the cache: %s %s\n", cb_status_str(st), err.buf);
    strbuf_release(&err);
    return st == CB_OK ? 0 : -1;
}

static long file_size(const char *dir, const char *name)
{
    char path[700];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* ---------------------------------------------------------------- measuring children */

static void print_rss(const char *what, long links)
{
    printf("{\"what\":\"%s\",\"links\":%ld,\"peak_rss_kib\":%ld,\"rss_anon_kib\":%ld,"
           "\"rss_file_kib\":%ld}\n",
           what, links, bench_status_kib("VmHWM"), bench_status_kib("RssAnon"),
           bench_status_kib("RssFile"));
}

static int count_link(void *arg, const struct link *l)
{
    (void)l;
    ++*(long *)arg;
    return 0;
}

/* The daemon's view: open the pair once, run no-change cycles. */
static int measure_cycle(struct bench_env *e)
{
    if (bench_env_open(e) != 0)
        return 1;
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        struct sync_report rep;
        rc = bench_cycle(e, &rep);
        sync_report_release(&rep);
    }
    print_rss("cycle", -1); /* the parent knows how many links it filled */
    bench_env_close(e);
    return rc;
}

static int walk_bases(void *arg, const struct link *l)
{
    cJSON *b = NULL;
    if (cache_base_get(arg, BENCH_PAIR, l->id, &b) != CB_OK)
        return 1;
    cJSON_Delete(b);
    return 0;
}

/* Opening the cache and walking every link the way `crmbridge links list` does (through
 * cache_link_foreach, which decodes every link; cache_link_count reads a counter and would walk
 * nothing), then every base too. */
static int measure_walk(const char *state_dir)
{
    struct cache *c;
    struct cache_txn *t;
    struct strbuf err = STRBUF_INIT;
    long links = 0;
    int rc = 1;
    if (cache_open(state_dir, &c, &err) == CB_OK && cache_txn_begin(c, 1, &t, &err) == CB_OK) {
        rc = cache_link_foreach(t, BENCH_PAIR, count_link, &links) != CB_OK;
        print_rss("walk_links", links);
        rc |= cache_link_foreach(t, BENCH_PAIR, walk_bases, t) != CB_OK;
        print_rss("walk_bases", links);
        cache_txn_abort(t);
        cache_close(c);
    }
    if (rc)
        fprintf(stderr, "bench: cannot walk the cache: %s\n", err.buf);
    strbuf_release(&err);
    return rc;
}

/* Runs this program again as `--measure MODE CONF STATE` and appends its JSON lines to arr. */
static int run_child(const char *mode, const struct bench_env *e, cJSON *arr)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        execl("/proc/self/exe", "bench_mem", "--measure", mode, e->conf_path, e->state_dir,
              (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    FILE *f = fdopen(pfd[0], "r");
    char line[512];
    while (f && fgets(line, sizeof(line), f)) {
        cJSON *j = cJSON_Parse(line);
        if (j)
            cJSON_AddItemToArray(arr, j);
    }
    if (f)
        fclose(f);
    int ws = 0;
    waitpid(pid, &ws, 0);
    return WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? 0 : -1;
}

static int measured_child(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_set_level(LOG_WARN);
    if (strcmp(argv[2], "walk") == 0)
        return measure_walk(argv[4]);
    struct bench_env e;
    memset(&e, 0, sizeof(e));
    snprintf(e.conf_path, sizeof(e.conf_path), "%s", argv[3]);
    snprintf(e.state_dir, sizeof(e.state_dir), "%s", argv[4]);
    return measure_cycle(&e);
}

/* ---------------------------------------------------------------- driver */

static int real_sync(struct bench_env *e)
{
    cJSON_Delete(sim_ctl(&e->sim[SIDE_CRM], "POST", "/_sim/seed",
                         "{\"module\":\"Cases\",\"count\":%d}", REAL));
    struct sync_report rep;
    int rc = bench_cycle(e, &rep);
    if (rep.created[SIDE_TRACKER] != REAL)
        rc = -1;
    sync_report_release(&rep);
    return rc;
}

static void add_disk(cJSON *o, const char *state_dir, long links, double base_bytes)
{
    long size = file_size(state_dir, "data.mdb");
    cJSON_AddNumberToObject(o, "links", (double)links);
    cJSON_AddNumberToObject(o, "data_mdb_bytes", (double)size);
    cJSON_AddNumberToObject(o, "bytes_per_link", (double)size / (double)links);
    cJSON_AddNumberToObject(o, "base_bytes_per_link", base_bytes / (double)links);
    cJSON_AddNumberToObject(o, "beyond_base_per_link", ((double)size - base_bytes) / (double)links);
}

static int drive(long total, cJSON *out)
{
    struct bench_env e;
    struct templ t;
    memset(&t, 0, sizeof(t));
    double base_bytes = 0;
    cJSON *rss = cJSON_AddArrayToObject(out, "rss");
    int rc = bench_env_start(&e, 60);
    if (rc == 0)
        rc = bench_env_open(&e);
    if (rc == 0)
        rc = real_sync(&e);
    if (rc == 0)
        rc = load_templates(e.cache, &t);
    bench_env_close(&e);
    if (rc == 0) /* the same process with only the real links, for comparison */
        rc = run_child("cycle", &e, rss);
    if (rc == 0) {
        struct strbuf err = STRBUF_INIT;
        rc = cache_open(e.state_dir, &e.cache, &err) == CB_OK ? 0 : -1;
        strbuf_release(&err);
    }
    if (rc == 0)
        rc = fill(e.cache, &t, total, &base_bytes);
    bench_env_close(&e);
    if (rc == 0)
        add_disk(cJSON_AddObjectToObject(out, "disk"), e.state_dir, total, base_bytes);
    if (rc == 0)
        rc = run_child("cycle", &e, rss);
    if (rc == 0)
        rc = run_child("walk", &e, rss);
    for (size_t i = 0; i < t.n; i++) {
        link_release(&t.link[i]);
        cJSON_Delete(t.base[i]);
    }
    bench_env_stop(&e);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--measure") == 0)
        return measured_child(argc, argv);
    long links = 100000;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--links") && i + 1 < argc)
            links = atol(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else
            links = 0; /* unknown argument: usage */
    }
    if (!out || links <= REAL) {
        fprintf(stderr, "usage: bench_mem [--links L] --out FILE\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_set_level(LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    cJSON *o = cJSON_CreateObject();
    fprintf(stderr, "bench: memory and disk with %ld links\n", links);
    int rc = drive(links, o);
    cJSON_AddBoolToObject(o, "complete", rc == 0);
    if (bench_write_json(out, o) != 0)
        rc = -1;
    cJSON_Delete(o);
    curl_global_cleanup();
    return rc == 0 ? 0 : 1;
}
