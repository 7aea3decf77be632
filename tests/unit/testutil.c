/* Test helpers: simulator processes, control calls, scratch files. Not linked into crmbridge. */
#include "tests/unit/testutil.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/strbuf.h"

static size_t collect(char *p, size_t sz, size_t n, void *arg)
{
    (void)strbuf_add(arg, p, sz * n);
    return sz * n;
}

int sim_start(struct sim *s, const char *name, ...)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    char portfile[256];
    snprintf(portfile, sizeof(portfile), "/tmp/cbsim-%s-%d-%ld.port", name, (int)getpid(),
             (long)random());
    unlink(portfile);
    char script[512];
    snprintf(script, sizeof(script), "%s/tests/sim/%s_sim.py", CB_SOURCE_DIR, name);
    const char *argv[32];
    int ac = 0;
    argv[ac++] = CB_PYTHON;
    argv[ac++] = script;
    argv[ac++] = "--port";
    argv[ac++] = "0";
    argv[ac++] = "--port-file";
    argv[ac++] = portfile;
    va_list ap;
    va_start(ap, name);
    const char *a;
    while (ac < 30 && (a = va_arg(ap, const char *)) != NULL)
        argv[ac++] = a;
    va_end(ap);
    argv[ac] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execv(CB_PYTHON, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int port = 0;
            if (fscanf(f, "%d", &port) == 1 && port > 0) {
                fclose(f);
                unlink(portfile);
                s->port = port;
                snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", port);
                return 0;
            }
            fclose(f);
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = 0;
            return -1;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    sim_stop(s);
    return -1;
}

void sim_stop(struct sim *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int st;
        waitpid(s->pid, &st, 0);
    }
    s->pid = 0;
}

cJSON *sim_call(const struct sim *s, const char *method, const char *path, const char *body,
                long *status)
{
    CURL *c = curl_easy_init();
    struct strbuf url = STRBUF_INIT, out = STRBUF_INIT;
    (void)strbuf_addf(&url, "%s%s", s->base, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url.buf);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (status)
        *status = code;
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    cJSON *j = out.len ? cJSON_ParseWithLength(out.buf, out.len) : NULL;
    strbuf_release(&url);
    strbuf_release(&out);
    return j;
}

cJSON *sim_ctl(const struct sim *s, const char *method, const char *path, const char *fmt, ...)
{
    struct strbuf body = STRBUF_INIT;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        (void)strbuf_vaddf(&body, fmt, ap);
        va_end(ap);
    }
    long st = 0;
    cJSON *j = sim_call(s, method, path, fmt ? body.buf : NULL, &st);
    if (st < 200 || st > 299) {
        char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
        fprintf(stderr, "control call %s %s failed: http %ld %s\n", method, path, st,
                txt ? txt : "");
        free(txt);
    }
    assert_true(st >= 200 && st <= 299);
    strbuf_release(&body);
    return j;
}

/* What a log entry must be to count (NULL fields: any). */
struct log_match {
    const char *method, *prefix, *path, *needle;
    int has, status;
};

static const char *entry_str(const cJSON *e, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(e, name));
}

static int entry_matches(const cJSON *e, const struct log_match *k)
{
    const char *m = entry_str(e, "method"), *p = entry_str(e, "path"), *q = entry_str(e, "query");
    if (k->method && (!m || strcmp(m, k->method) != 0))
        return 0;
    if (k->prefix && (!p || strncmp(p, k->prefix, strlen(k->prefix)) != 0))
        return 0;
    if (k->path && (!p || strcmp(p, k->path) != 0))
        return 0;
    if (k->needle && (q && strstr(q, k->needle)) != (k->has != 0))
        return 0;
    return !k->status || (int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "status")) == k->status;
}

static int count_log(const struct sim *s, const struct log_match *k)
{
    cJSON *log = sim_call(s, "GET", "/_sim/log", NULL, NULL);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, log) n += entry_matches(e, k);
    cJSON_Delete(log);
    return n;
}

int sim_count(const struct sim *s, const char *method, const char *path_prefix)
{
    return count_log(s, &(struct log_match){.method = method, .prefix = path_prefix});
}

int sim_count_query(const struct sim *s, const char *method, const char *path, const char *needle,
                    int has)
{
    return count_log(
        s, &(struct log_match){.method = method, .path = path, .needle = needle, .has = has});
}

int sim_count_status(const struct sim *s, int status)
{
    return count_log(s, &(struct log_match){.status = status});
}

void sim_clear_log(const struct sim *s)
{
    cJSON_Delete(sim_call(s, "DELETE", "/_sim/log", NULL, NULL));
}

char *tu_tmpdir(void)
{
    char tmpl[] = "/tmp/crmbridge-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? xstrdup(d) : NULL;
}

void tu_rmrf(const char *dir)
{
    if (!dir || strncmp(dir, "/tmp/", 5) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", dir, (char *)NULL);
        _exit(127);
    }
    int st;
    if (pid > 0)
        waitpid(pid, &st, 0);
}

int tu_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

char *tu_read_source(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", CB_SOURCE_DIR, rel);
    return tu_read_file(path);
}

char *tu_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct strbuf sb = STRBUF_INIT;
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        (void)strbuf_add(&sb, buf, n);
    fclose(f);
    return strbuf_detach(&sb);
}

const char *tu_crmbridge_bin(void)
{
    static char fallback[512];
    const char *bin = getenv("CB_CRMBRIDGE_BIN");
    if (bin && *bin)
        return bin;
    snprintf(fallback, sizeof(fallback), "%s/cli/crmbridge", CB_BINARY_DIR);
    return fallback;
}

/* Runs bin with argv (NULL-terminated) with stdout and stderr on a pipe, or on a terminal (tty),
 * stdin on /dev/null; *out gets what it printed. Returns its exit code (128+N: signal N). */
static int run_bin(const char *const *argv, int tty, char **out)
{
    int rd, wr, pfd[2];
    if (tty ? openpty(&rd, &wr, NULL, NULL, NULL) != 0 : pipe(pfd) != 0)
        return -1;
    if (!tty) {
        rd = pfd[0];
        wr = pfd[1];
    }
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(rd);
        dup2(wr, 1);
        dup2(wr, 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(wr);
    struct strbuf sb = STRBUF_INIT;
    char buf[4096];
    ssize_t n;
    while ((n = read(rd, buf, sizeof(buf))) > 0) /* a terminal ends with EIO */
        (void)strbuf_add(&sb, buf, (size_t)n);
    close(rd);
    int st;
    waitpid(pid, &st, 0);
    if (out)
        *out = strbuf_detach(&sb);
    else
        strbuf_release(&sb);
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

static int run_crmbridge(int tty, char **out, va_list ap)
{
    const char *argv[64];
    int ac = 0;
    argv[ac++] = tu_crmbridge_bin();
    const char *a;
    while (ac < 62 && (a = va_arg(ap, const char *)) != NULL)
        argv[ac++] = a;
    argv[ac] = NULL;
    return run_bin(argv, tty, out);
}

int tu_run_crmbridge(char **out, ...)
{
    va_list ap;
    va_start(ap, out);
    int rc = run_crmbridge(0, out, ap);
    va_end(ap);
    return rc;
}

int tu_run_crmbridge_tty(char **out, ...)
{
    va_list ap;
    va_start(ap, out);
    int rc = run_crmbridge(1, out, ap);
    va_end(ap);
    return rc;
}
