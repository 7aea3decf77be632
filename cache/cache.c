/*
 * The LMDB cache behind cache.h: one environment, its named databases opened once in an init
 * transaction, keys packed with big-endian ids so cursor order is id order, values stored as
 * compact JSON (tokens as sealed blobs, see crypt.c). Every LMDB code is translated here into a
 * status and a message kept in the transaction (the sticky error). It knows nothing of items,
 * merges or connectors: callers hand it JSON and plain structs.
 */
#include "cache/cache.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "cache/crypt.h"

#define SCHEMA_VERSION 2 /* 2: meta holds a link counter per pair */
#define KEY_MAX 511      /* LMDB's default maximum key size */
#define MAP_SIZE ((size_t)1 << (sizeof(size_t) > 4 ? 32 : 30))
#define COUNT_PREFIX "linkcount:" /* meta key of a pair's link counter, reserved */
/* A whole-table walk drops what it mapped after this many records: with the links of a real
 * cache (about 300 bytes each, their pages interleaved with the bases') and the kernel mapping
 * the neighbours of each faulting page, that keeps a few MiB of the file mapped. */
#define SCAN_TRIM_EVERY 1024

enum db { DB_LINKS, DB_BASE, DB_CURSORS, DB_INTENTS, DB_CONFLICTS, DB_TOKENS, DB_META, DB_COUNT };

static const char *const db_names[DB_COUNT] = {"links",     "base",   "cursors", "intents",
                                               "conflicts", "tokens", "meta"};

struct cache {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    char *dir;
    pthread_mutex_t key_lock; /* guards the lazy load of key */
    int have_key;
    unsigned char key[CRYPT_KEY_LEN];
    /* The file's mapping, found by cache_trim on first use from an address inside it (probe).
     * It never moves: the map size is set once, before mdb_env_open, and LMDB only remaps in
     * mdb_env_set_mapsize (a map grown by another process gives MDB_MAP_RESIZED instead). */
    pthread_mutex_t map_lock;
    const void *map_probe; /* a value's address in the map, taken at open; NULL if none */
    uintptr_t map_lo, map_hi;
};

struct cache_txn {
    struct cache *c;
    MDB_txn *txn;
    int rdonly;
    enum cb_status st; /* sticky: the first failure */
    struct strbuf msg; /* its message, handed out by commit */
};

/* ---- crash seam ---- */

static long crash_after = -1;
static int crash_env_read;

void cache_crash_after_commits(long n)
{
    crash_after = n;
    crash_env_read = 1;
}

static void crash_seam_load(void)
{
    if (crash_env_read)
        return;
    crash_env_read = 1;
    const char *s = getenv("CRMBRIDGE_CRASH_AFTER_COMMITS");
    char *end;
    if (s && *s) {
        long n = strtol(s, &end, 10);
        if (*end == '\0')
            crash_after = n;
    }
}

/* Called under LMDB's writer lock, just before a write commit. */
static void crash_seam_step(void)
{
    if (crash_after == 0)
        raise(SIGKILL);
    if (crash_after > 0)
        crash_after--;
}

/* ---- keys ---- */

struct key {
    unsigned char b[KEY_MAX];
    size_t len;          /* KEY_MAX + 1 once it overflowed */
    const char *subject; /* the first string part, for messages */
};

static void key_add(struct key *k, const void *p, size_t n)
{
    if (k->len + n > KEY_MAX) {
        k->len = KEY_MAX + 1;
        return;
    }
    memcpy(k->b + k->len, p, n);
    k->len += n;
}

static void key_add_byte(struct key *k, unsigned char c)
{
    key_add(k, &c, 1);
}

/* Adds s and, when nul is set, its terminating NUL (so "a" never prefixes "ab"). */
static void key_add_str(struct key *k, const char *s, int nul)
{
    if (!k->subject)
        k->subject = s;
    key_add(k, s, strlen(s) + (nul ? 1 : 0));
}

static void be64_put(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint64_t be64_get(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void key_add_id(struct key *k, uint64_t v)
{
    unsigned char b[8];
    be64_put(b, v);
    key_add(k, b, 8);
}

/* The id in a key's last 8 bytes. */
static uint64_t key_id(const MDB_val *k)
{
    return k->mv_size >= 8 ? be64_get((const unsigned char *)k->mv_data + k->mv_size - 8) : 0;
}

/* pair \0 [side]: cursors (side >= 0), and the prefix of every base or intent of pair. */
static struct key key_pair(const char *pair, int side)
{
    struct key k = {.len = 0};
    key_add_str(&k, pair, 1);
    if (side >= 0)
        key_add_byte(&k, (unsigned char)side);
    return k;
}

/* pair \0 be64(id): base and intents. */
static struct key key_pair_id(const char *pair, uint64_t id)
{
    struct key k = key_pair(pair, -1);
    key_add_id(&k, id);
    return k;
}

/* "L" pair \0: the prefix of every link record of pair. */
static struct key key_links(const char *pair)
{
    struct key k = {.len = 0, .subject = pair};
    key_add_byte(&k, 'L');
    key_add_str(&k, pair, 1);
    return k;
}

/* "L" pair \0 be64(id): a link record. */
static struct key key_link(const char *pair, uint64_t id)
{
    struct key k = key_links(pair);
    key_add_id(&k, id);
    return k;
}

/* "R" pair \0 side remote_id: the reverse index. */
static struct key key_rev(const char *pair, int side, const char *remote)
{
    struct key k = {.len = 0, .subject = remote};
    key_add_byte(&k, 'R');
    key_add_str(&k, pair, 1);
    key_add_byte(&k, (unsigned char)side);
    key_add_str(&k, remote, 0);
    return k;
}

static struct key key_name(const char *name)
{
    struct key k = {.len = 0};
    key_add_str(&k, name, 0);
    return k;
}

/* COUNT_PREFIX pair, in meta: the number of links of pair. */
static struct key key_count(const char *pair)
{
    struct key k = {.len = 0, .subject = pair};
    key_add(&k, COUNT_PREFIX, strlen(COUNT_PREFIX));
    key_add_str(&k, pair, 0);
    return k;
}

static struct key key_conflict(uint64_t id)
{
    struct key k = {.len = 0, .subject = "conflict"};
    key_add_id(&k, id);
    return k;
}

/* ---- sticky errors ---- */

static enum cb_status txn_fail(struct cache_txn *t, enum cb_status st, const char *fmt, ...)
    CB_PRINTF(3, 4);

static enum cb_status txn_fail(struct cache_txn *t, enum cb_status st, const char *fmt, ...)
{
    if (t->st != CB_OK)
        return t->st;
    t->st = st;
    strbuf_reset(&t->msg);
    va_list ap;
    va_start(ap, fmt);
    (void)strbuf_vaddf(&t->msg, fmt, ap);
    va_end(ap);
    return st;
}

/* The one place LMDB codes become messages. */
static void mdb_describe(const struct cache *c, int rc, const char *verb, struct strbuf *sb)
{
    if (rc == MDB_MAP_FULL)
        strbuf_setf(sb, "cannot %s cache '%s': it is full (map size %zu MiB)", verb, c->dir,
                    MAP_SIZE >> 20);
    else
        strbuf_setf(sb, "cannot %s cache '%s': %s", verb, c->dir, mdb_strerror(rc));
}

static enum cb_status txn_mdb_fail(struct cache_txn *t, int rc)
{
    if (t->st == CB_OK) {
        t->st = CB_ERR_CACHE;
        mdb_describe(t->c, rc, t->rdonly ? "read" : "write", &t->msg);
    }
    return t->st;
}

static enum cb_status txn_corrupt(struct cache_txn *t, const char *what)
{
    return txn_fail(t, CB_ERR_CACHE, "cannot read cache '%s': corrupt %s record", t->c->dir, what);
}

static int txn_writable(struct cache_txn *t)
{
    if (t->st == CB_OK && t->rdonly)
        txn_fail(t, CB_ERR_INTERNAL, "cannot write cache '%s': the transaction is read-only",
                 t->c->dir);
    return t->st == CB_OK;
}

static int side_ok(struct cache_txn *t, int side)
{
    if (side != 0 && side != 1)
        txn_fail(t, CB_ERR_INTERNAL, "cannot use side %d: not 0 or 1", side);
    return t->st == CB_OK;
}

static int key_ok(struct cache_txn *t, const struct key *k)
{
    if (k->len > KEY_MAX)
        txn_fail(t, CB_ERR_CACHE, "cannot use '%.60s' in a cache key: longer than %d bytes",
                 k->subject ? k->subject : "", KEY_MAX);
    return t->st == CB_OK;
}

/* ---- raw database access: NOTFOUND is returned, never sticky ---- */

static enum cb_status db_get(struct cache_txn *t, enum db db, const struct key *k, MDB_val *v)
{
    if (!key_ok(t, k))
        return t->st;
    MDB_val mk = {k->len, (void *)k->b};
    int rc = mdb_get(t->txn, t->c->dbi[db], &mk, v);
    if (rc == MDB_NOTFOUND)
        return CB_ERR_NOTFOUND;
    return rc ? txn_mdb_fail(t, rc) : CB_OK;
}

static enum cb_status db_put(struct cache_txn *t, enum db db, const struct key *k, const void *data,
                             size_t len)
{
    if (!key_ok(t, k))
        return t->st;
    MDB_val mk = {k->len, (void *)k->b}, mv = {len, (void *)data};
    int rc = mdb_put(t->txn, t->c->dbi[db], &mk, &mv, 0);
    return rc ? txn_mdb_fail(t, rc) : CB_OK;
}

static enum cb_status db_del(struct cache_txn *t, enum db db, const struct key *k)
{
    if (!key_ok(t, k))
        return t->st;
    MDB_val mk = {k->len, (void *)k->b};
    int rc = mdb_del(t->txn, t->c->dbi[db], &mk, NULL);
    if (rc == MDB_NOTFOUND)
        return CB_ERR_NOTFOUND;
    return rc ? txn_mdb_fail(t, rc) : CB_OK;
}

static enum cb_status json_from_val(struct cache_txn *t, const MDB_val *v, const char *what,
                                    cJSON **out)
{
    cJSON *j = cJSON_ParseWithLengthOpts(v->mv_data, v->mv_size, NULL, 0);
    if (!j)
        return txn_corrupt(t, what);
    *out = j;
    return CB_OK;
}

static enum cb_status db_get_json(struct cache_txn *t, enum db db, const struct key *k,
                                  const char *what, cJSON **out)
{
    MDB_val v;
    enum cb_status st = db_get(t, db, k, &v);
    return st == CB_OK ? json_from_val(t, &v, what, out) : st;
}

static enum cb_status db_put_json(struct cache_txn *t, enum db db, const struct key *k,
                                  const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    if (!s)
        return txn_fail(t, CB_ERR_INTERNAL, "cannot write cache '%s': out of memory", t->c->dir);
    enum cb_status st = db_put(t, db, k, s, strlen(s));
    free(s);
    return st;
}

/* db_put_json, then deletes j. */
static enum cb_status db_put_owned(struct cache_txn *t, enum db db, const struct key *k, cJSON *j)
{
    enum cb_status st = db_put_json(t, db, k, j);
    cJSON_Delete(j);
    return st;
}

/* Walks the records whose key starts with prefix, in key order, calling fn with views valid
 * until fn writes. The cursor is re-positioned from the last key after every call, so fn may
 * write (even delete that record) in the same transaction. fn returns 0 to go on, non-zero to
 * stop; a failing fn sets the sticky status, which is returned. Every SCAN_TRIM_EVERY records,
 * between two calls (no view of the map is held then), the mapped pages are dropped, so that a
 * walk of any length keeps a bounded part of the file resident. */
typedef int (*scan_fn)(struct cache_txn *t, const MDB_val *k, const MDB_val *v, void *arg);

static int scan_next(MDB_cursor *cur, const unsigned char *last, size_t len, int first, MDB_val *k,
                     MDB_val *v)
{
    if (len == 0)
        return mdb_cursor_get(cur, k, v, MDB_FIRST);
    k->mv_size = len;
    k->mv_data = (void *)last;
    int rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == 0 && !first && k->mv_size == len && memcmp(k->mv_data, last, len) == 0)
        rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
    return rc;
}

static enum cb_status db_scan(struct cache_txn *t, enum db db, const struct key *prefix, scan_fn fn,
                              void *arg)
{
    if (t->st != CB_OK || !key_ok(t, prefix))
        return t->st;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(t->txn, t->c->dbi[db], &cur);
    if (rc)
        return txn_mdb_fail(t, rc);
    unsigned char last[KEY_MAX];
    size_t len = prefix->len;
    memcpy(last, prefix->b, len);
    for (size_t seen = 1;; seen++) {
        MDB_val k, v;
        rc = scan_next(cur, last, len, seen == 1, &k, &v);
        if (rc || k.mv_size < prefix->len || memcmp(k.mv_data, prefix->b, prefix->len) != 0)
            break;
        memcpy(last, k.mv_data, k.mv_size);
        len = k.mv_size;
        if (fn(t, &k, &v, arg) || t->st != CB_OK)
            break;
        if (seen % SCAN_TRIM_EVERY == 0)
            cache_trim(t->c);
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return txn_mdb_fail(t, rc);
    return t->st;
}

/* ---- JSON helpers ---- */

static void json_put_str(cJSON *o, const char *name, const char *s)
{
    if (s)
        cJSON_AddStringToObject(o, name, s);
}

static void json_put_item(cJSON *o, const char *name, const cJSON *v)
{
    if (v)
        cJSON_AddItemToObject(o, name, cJSON_Duplicate(v, 1));
}

static char *json_dup_str(const cJSON *o, const char *name)
{
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(i) ? xstrdup(i->valuestring) : NULL;
}

static cJSON *json_dup_item(const cJSON *o, const char *name)
{
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, name);
    return i ? cJSON_Duplicate(i, 1) : NULL;
}

/* A number member as int64; 0 when absent or out of range. */
static int64_t json_i64(const cJSON *o, const char *name)
{
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(i) || !(i->valuedouble > -9.2e18 && i->valuedouble < 9.2e18))
        return 0;
    return (int64_t)i->valuedouble;
}

static uint64_t json_id(const cJSON *o, const char *name)
{
    int64_t v = json_i64(o, name);
    return v > 0 ? (uint64_t)v : 0;
}

/* ---- lifecycle ---- */

static int env_txn_begin(MDB_env *env, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(env, NULL, flags, txn);
    if (rc == MDB_READERS_FULL) {
        int dead = 0;
        mdb_reader_check(env, &dead);
        rc = mdb_txn_begin(env, NULL, flags, txn);
    }
    return rc;
}

static enum cb_status dir_make(const char *dir, struct strbuf *err)
{
    struct stat st;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        strbuf_setf(err, "cannot create cache directory '%s': %s", dir, strerror(errno));
        return CB_ERR_CACHE;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        strbuf_setf(err, "cannot open cache '%s': not a directory", dir);
        return CB_ERR_CACHE;
    }
    return CB_OK;
}

static enum cb_status env_open(struct cache *c, struct strbuf *err)
{
    int rc = mdb_env_create(&c->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(c->env, DB_COUNT);
    if (rc == 0)
        rc = mdb_env_set_mapsize(c->env, MAP_SIZE);
    if (rc == 0)
        rc = mdb_env_open(c->env, c->dir, 0, 0600);
    if (rc) {
        mdb_describe(c, rc, "open", err);
        return CB_ERR_CACHE;
    }
    return CB_OK;
}

static void schema_set(struct cache_txn *t)
{
    struct key k = key_name("schema_version");
    db_put_owned(t, DB_META, &k, cJSON_CreateNumber(SCHEMA_VERSION));
}

/* A new cache gets the current schema; *old is set for one written before the link counters
 * (schema 1), which cache_open then counts once. */
static void schema_check(struct cache_txn *t, int *old)
{
    struct key k = key_name("schema_version");
    cJSON *v = NULL;
    enum cb_status st = db_get_json(t, DB_META, &k, "schema", &v);
    if (st == CB_ERR_NOTFOUND) {
        schema_set(t);
        return;
    }
    if (st != CB_OK)
        return;
    if (!cJSON_IsNumber(v))
        txn_corrupt(t, "schema version");
    else if (v->valuedouble > SCHEMA_VERSION)
        txn_fail(t, CB_ERR_CACHE, "cache schema %g is newer than this crmbridge (%d)",
                 v->valuedouble, SCHEMA_VERSION);
    else
        *old = v->valuedouble < SCHEMA_VERSION;
    cJSON_Delete(v);
}

static enum cb_status txn_end(struct cache_txn *t, int seam, struct strbuf *err);
static void links_count_all(struct cache_txn *t);

static enum cb_status dbs_open(struct cache *c, int *old, struct strbuf *err)
{
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(c, 0, &t, err);
    if (st != CB_OK)
        return st;
    for (int i = 0; i < DB_COUNT && t->st == CB_OK; i++) {
        int rc = mdb_dbi_open(t->txn, db_names[i], MDB_CREATE, &c->dbi[i]);
        if (rc)
            txn_mdb_fail(t, rc);
    }
    if (t->st == CB_OK)
        schema_check(t, old);
    return txn_end(t, 0, err);
}

/* Schema 1 to 2: counts the links of every pair once and stores the counters, in one
 * transaction with the new version (a crash before its commit leaves schema 1: counted again). */
static enum cb_status links_upgrade(struct cache *c, struct strbuf *err)
{
    struct cache_txn *t;
    enum cb_status st = cache_txn_begin(c, 0, &t, err);
    if (st != CB_OK)
        return st;
    links_count_all(t);
    schema_set(t);
    return txn_end(t, 0, err);
}

/* Remembers the address of a value in the map, from which cache_trim finds the mapping. */
static void map_probe_take(struct cache *c)
{
    MDB_txn *txn;
    struct key k = key_name("schema_version");
    MDB_val mk = {k.len, k.b}, v;
    if (env_txn_begin(c->env, MDB_RDONLY, &txn) != 0)
        return;
    if (mdb_get(txn, c->dbi[DB_META], &mk, &v) == 0)
        c->map_probe = v.mv_data;
    mdb_txn_abort(txn);
}

enum cb_status cache_open(const char *dir, struct cache **out, struct strbuf *err)
{
    enum cb_status st = dir_make(dir, err);
    if (st != CB_OK)
        return st;
    crash_seam_load();
    struct cache *c = xcalloc(1, sizeof(*c));
    c->dir = xstrdup(dir);
    pthread_mutex_init(&c->key_lock, NULL);
    pthread_mutex_init(&c->map_lock, NULL);
    int old = 0;
    st = env_open(c, err);
    if (st == CB_OK)
        st = dbs_open(c, &old, err);
    if (st == CB_OK)
        map_probe_take(c);
    if (st == CB_OK && old)
        st = links_upgrade(c, err);
    if (st != CB_OK) {
        cache_close(c);
        return st;
    }
    *out = c;
    return CB_OK;
}

void cache_close(struct cache *c)
{
    if (!c)
        return;
    if (c->env)
        mdb_env_close(c->env);
    OPENSSL_cleanse(c->key, sizeof(c->key));
    pthread_mutex_destroy(&c->key_lock);
    pthread_mutex_destroy(&c->map_lock);
    free(c->dir);
    free(c);
}

/* Sets map_lo/map_hi to the line of /proc/self/maps holding map_probe: the file is mapped once,
 * in one piece, and the probe lies inside it. Nothing is set unless that line maps a data.mdb. */
static void map_find(struct cache *c)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[PATH_MAX + 128];
    uintptr_t p = (uintptr_t)c->map_probe;
    for (int start = 1; maps && fgets(line, sizeof(line), maps);) {
        int at_start = start; /* a line longer than the buffer is read in pieces */
        start = strchr(line, '\n') != NULL;
        unsigned long lo, hi;
        const char *path = strchr(line, '/');
        if (at_start && sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= p && p < hi && path &&
            strstr(path, "/data.mdb")) {
            c->map_lo = lo;
            c->map_hi = hi;
        }
    }
    if (maps)
        fclose(maps);
    if (!c->map_hi)
        c->map_probe = NULL; /* not found: it will not appear later, do not look again */
}

void cache_trim(struct cache *c)
{
    /* LMDB does not tell where it mapped the file (me_mapaddr is only set for MDB_FIXEDMAP): the
     * first trim looks for the mapping holding a value read at open. LMDB writes with pwrite
     * (no MDB_WRITEMAP), so the map holds nothing of its own to lose: a dropped page is read
     * again from the page cache on the next touch. */
    if (!c)
        return;
    pthread_mutex_lock(&c->map_lock);
    if (!c->map_hi && c->map_probe)
        map_find(c);
    uintptr_t lo = c->map_lo, hi = c->map_hi;
    pthread_mutex_unlock(&c->map_lock);
    if (hi)
        (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

enum cb_status cache_txn_begin(struct cache *c, int rdonly, struct cache_txn **out,
                               struct strbuf *err)
{
    MDB_txn *txn;
    int rc = env_txn_begin(c->env, rdonly ? MDB_RDONLY : 0, &txn);
    if (rc) {
        mdb_describe(c, rc, rdonly ? "read" : "write", err);
        return CB_ERR_CACHE;
    }
    struct cache_txn *t = xcalloc(1, sizeof(*t));
    t->c = c;
    t->txn = txn;
    t->rdonly = rdonly;
    strbuf_init(&t->msg, 0);
    *out = t;
    return CB_OK;
}

static enum cb_status txn_end(struct cache_txn *t, int seam, struct strbuf *err)
{
    enum cb_status st = t->st;
    if (st != CB_OK || t->rdonly) {
        mdb_txn_abort(t->txn);
        if (st != CB_OK)
            strbuf_setf(err, "%s", t->msg.buf);
    } else {
        if (seam)
            crash_seam_step();
        int rc = mdb_txn_commit(t->txn);
        if (rc) {
            mdb_describe(t->c, rc, "write", err);
            st = CB_ERR_CACHE;
        }
    }
    strbuf_release(&t->msg);
    free(t);
    return st;
}

enum cb_status cache_txn_commit(struct cache_txn *txn, struct strbuf *err)
{
    return txn_end(txn, 1, err);
}

void cache_txn_abort(struct cache_txn *txn)
{
    if (!txn)
        return;
    mdb_txn_abort(txn->txn);
    strbuf_release(&txn->msg);
    free(txn);
}

enum cb_status cache_txn_status(const struct cache_txn *txn)
{
    return txn->st;
}

/* Next id of the named sequence in meta "seq", stored in this transaction; 0 on failure. */
static uint64_t seq_next(struct cache_txn *t, const char *name)
{
    struct key k = key_name("seq");
    cJSON *seq = NULL;
    enum cb_status st = db_get_json(t, DB_META, &k, "sequence", &seq);
    if (st == CB_ERR_NOTFOUND)
        seq = cJSON_CreateObject();
    else if (st != CB_OK)
        return 0;
    if (!cJSON_IsObject(seq)) {
        cJSON_Delete(seq);
        txn_corrupt(t, "sequence");
        return 0;
    }
    uint64_t next = json_id(seq, name) + 1;
    cJSON_DeleteItemFromObjectCaseSensitive(seq, name);
    cJSON_AddNumberToObject(seq, name, (double)next);
    return db_put_owned(t, DB_META, &k, seq) == CB_OK ? next : 0;
}

/* ---- links ---- */

void link_release(struct link *l)
{
    for (int s = 0; s < 2; s++) {
        free(l->remote[s]);
        free(l->key[s]);
        free(l->url[s]);
    }
    memset(l, 0, sizeof(*l));
}

static cJSON *link_encode(const struct link *l)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *sides = cJSON_AddArrayToObject(j, "side");
    for (int s = 0; s < 2; s++) {
        cJSON *o = cJSON_CreateObject();
        json_put_str(o, "remote", l->remote[s]);
        json_put_str(o, "key", l->key[s]);
        json_put_str(o, "url", l->url[s]);
        cJSON_AddItemToArray(sides, o);
    }
    cJSON_AddNumberToObject(j, "created_ms", (double)l->created_ms);
    return j;
}

static enum cb_status link_decode(struct cache_txn *t, const MDB_val *v, uint64_t id,
                                  struct link *out)
{
    cJSON *j = NULL;
    if (json_from_val(t, v, "link", &j) != CB_OK)
        return t->st;
    const cJSON *sides = cJSON_GetObjectItemCaseSensitive(j, "side");
    struct link l = {.id = id, .created_ms = json_i64(j, "created_ms")};
    for (int s = 0; s < 2; s++) {
        const cJSON *o = cJSON_GetArrayItem(sides, s);
        l.remote[s] = json_dup_str(o, "remote");
        l.key[s] = json_dup_str(o, "key");
        l.url[s] = json_dup_str(o, "url");
    }
    cJSON_Delete(j);
    *out = l;
    return CB_OK;
}

enum cb_status cache_link_get(struct cache_txn *t, const char *pair, uint64_t id, struct link *out)
{
    if (t->st != CB_OK)
        return t->st;
    struct key k = key_link(pair, id);
    MDB_val v;
    enum cb_status st = id ? db_get(t, DB_LINKS, &k, &v) : CB_ERR_NOTFOUND;
    return st == CB_OK ? link_decode(t, &v, id, out) : st;
}

/* The link id the reverse index holds for (side, remote); 0 when none or on failure. */
static uint64_t rev_get(struct cache_txn *t, const char *pair, int side, const char *remote)
{
    struct key k = key_rev(pair, side, remote);
    MDB_val v;
    if (db_get(t, DB_LINKS, &k, &v) != CB_OK)
        return 0;
    if (v.mv_size != 8) {
        txn_corrupt(t, "link index");
        return 0;
    }
    return be64_get(v.mv_data);
}

enum cb_status cache_link_find(struct cache_txn *t, const char *pair, int side,
                               const char *remote_id, struct link *out)
{
    if (t->st != CB_OK || !side_ok(t, side))
        return t->st;
    uint64_t id = rev_get(t, pair, side, remote_id);
    if (t->st != CB_OK)
        return t->st;
    if (!id)
        return CB_ERR_NOTFOUND;
    enum cb_status st = cache_link_get(t, pair, id, out);
    if (st == CB_ERR_NOTFOUND)
        return txn_fail(t, CB_ERR_CACHE, "cannot read cache '%s': '%s' points at missing link %llu",
                        t->c->dir, remote_id, (unsigned long long)id);
    return st;
}

/* Removes the reverse index entries of link id (those that still point at it). */
static enum cb_status link_unindex(struct cache_txn *t, const char *pair, uint64_t id)
{
    struct link old;
    enum cb_status st = cache_link_get(t, pair, id, &old);
    if (st != CB_OK)
        return st;
    for (int s = 0; s < 2 && t->st == CB_OK; s++) {
        if (!old.remote[s] || rev_get(t, pair, s, old.remote[s]) != id)
            continue;
        struct key k = key_rev(pair, s, old.remote[s]);
        db_del(t, DB_LINKS, &k);
    }
    link_release(&old);
    return t->st;
}

static enum cb_status link_index(struct cache_txn *t, const char *pair, int s, const char *remote,
                                 uint64_t id)
{
    uint64_t cur = rev_get(t, pair, s, remote);
    if (t->st != CB_OK)
        return t->st;
    if (cur && cur != id)
        return txn_fail(t, CB_ERR_INTERNAL,
                        "cannot link '%s' on side %d of pair '%s': already in link %llu", remote, s,
                        pair, (unsigned long long)cur);
    unsigned char v[8];
    be64_put(v, id);
    struct key k = key_rev(pair, s, remote);
    return db_put(t, DB_LINKS, &k, v, 8);
}

/* ---- link counters (meta COUNT_PREFIX pair), kept by put and del in their transaction ---- */

static size_t link_count_get(struct cache_txn *t, const char *pair)
{
    struct key k = key_count(pair);
    cJSON *j = NULL;
    size_t n = 0;
    enum cb_status st = db_get_json(t, DB_META, &k, "link count", &j);
    if (st == CB_OK && !(cJSON_IsNumber(j) && j->valuedouble >= 0 && j->valuedouble < 1e15))
        txn_corrupt(t, "link count");
    else if (st == CB_OK)
        n = (size_t)j->valuedouble;
    cJSON_Delete(j);
    return t->st == CB_OK ? n : 0;
}

static void count_put(struct cache_txn *t, const char *pair, size_t n)
{
    struct key k = key_count(pair);
    db_put_owned(t, DB_META, &k, cJSON_CreateNumber((double)n));
}

/* One link more (up) or less. */
static void link_count_add(struct cache_txn *t, const char *pair, int up)
{
    size_t n = link_count_get(t, pair);
    if (t->st == CB_OK)
        count_put(t, pair, up ? n + 1 : n ? n - 1 : 0);
}

enum cb_status cache_link_put(struct cache_txn *t, const char *pair, struct link *l)
{
    if (!txn_writable(t))
        return t->st;
    uint64_t id = l->id ? l->id : seq_next(t, "link");
    int fresh = !l->id || link_unindex(t, pair, id) == CB_ERR_NOTFOUND;
    for (int s = 0; s < 2 && t->st == CB_OK; s++)
        if (l->remote[s])
            link_index(t, pair, s, l->remote[s], id);
    if (t->st != CB_OK)
        return t->st;
    struct key k = key_link(pair, id);
    if (db_put_owned(t, DB_LINKS, &k, link_encode(l)) == CB_OK && fresh)
        link_count_add(t, pair, 1);
    if (t->st == CB_OK)
        l->id = id;
    return t->st;
}

enum cb_status cache_link_del(struct cache_txn *t, const char *pair, uint64_t id)
{
    if (!txn_writable(t))
        return t->st;
    enum cb_status st = link_unindex(t, pair, id);
    if (st != CB_OK)
        return st;
    struct key k = key_link(pair, id);
    struct key b = key_pair_id(pair, id);
    db_del(t, DB_LINKS, &k);
    db_del(t, DB_BASE, &b);
    if (t->st == CB_OK)
        link_count_add(t, pair, 0);
    return t->st;
}

struct link_walk {
    int (*fn)(void *arg, const struct link *l);
    void *arg;
};

static int link_walk_step(struct cache_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct link_walk *w = arg;
    struct link l;
    if (link_decode(t, v, key_id(k), &l) != CB_OK)
        return 1;
    int stop = w->fn(w->arg, &l);
    link_release(&l);
    return stop;
}

enum cb_status cache_link_foreach(struct cache_txn *t, const char *pair,
                                  int (*fn)(void *arg, const struct link *l), void *arg)
{
    struct key prefix = key_links(pair);
    struct link_walk w = {fn, arg};
    return db_scan(t, DB_LINKS, &prefix, link_walk_step, &w);
}

size_t cache_link_count(struct cache_txn *t, const char *pair)
{
    return t->st == CB_OK ? link_count_get(t, pair) : 0;
}

/* One pass over every link record of every pair (keys "L" pair \0 id, grouped by pair): the
 * counter of each pair is stored when its group ends. */
struct count_walk {
    char pair[KEY_MAX];
    size_t n;
};

static void count_walk_flush(struct cache_txn *t, const struct count_walk *w)
{
    if (w->n)
        count_put(t, w->pair, w->n);
}

static int count_walk_step(struct cache_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    (void)v;
    struct count_walk *w = arg;
    const char *pair = (const char *)k->mv_data + 1;
    size_t len = k->mv_size >= 10 ? strnlen(pair, k->mv_size - 9) : k->mv_size;
    if (len + 10 != k->mv_size) /* 'L' pair \0 be64(id) */
        return txn_corrupt(t, "link key") != CB_OK;
    if (w->n == 0 || strcmp(w->pair, pair) != 0) {
        count_walk_flush(t, w);
        memcpy(w->pair, pair, len + 1);
        w->n = 0;
    }
    w->n++;
    return t->st != CB_OK;
}

static void links_count_all(struct cache_txn *t)
{
    struct key prefix = {.len = 0};
    key_add_byte(&prefix, 'L');
    struct count_walk w = {.n = 0};
    if (db_scan(t, DB_LINKS, &prefix, count_walk_step, &w) == CB_OK)
        count_walk_flush(t, &w);
}

/* ---- base and cursors ---- */

enum cb_status cache_base_get(struct cache_txn *t, const char *pair, uint64_t link_id, cJSON **out)
{
    if (t->st != CB_OK)
        return t->st;
    struct key k = key_pair_id(pair, link_id);
    return db_get_json(t, DB_BASE, &k, "base", out);
}

enum cb_status cache_base_put(struct cache_txn *t, const char *pair, uint64_t link_id,
                              const cJSON *item)
{
    if (!txn_writable(t))
        return t->st;
    struct key k = key_pair_id(pair, link_id);
    return db_put_json(t, DB_BASE, &k, item);
}

enum cb_status cache_cursor_get(struct cache_txn *t, const char *pair, int side, struct cursor *out)
{
    memset(out, 0, sizeof(*out));
    if (t->st != CB_OK || !side_ok(t, side))
        return t->st;
    struct key k = key_pair(pair, side);
    cJSON *j = NULL;
    enum cb_status st = db_get_json(t, DB_CURSORS, &k, "cursor", &j);
    if (st == CB_ERR_NOTFOUND)
        return CB_OK;
    if (st == CB_OK) {
        out->ms = json_i64(j, "ms");
        out->listed_ms = json_i64(j, "listed");
    }
    cJSON_Delete(j);
    return st;
}

enum cb_status cache_cursor_put(struct cache_txn *t, const char *pair, int side,
                                const struct cursor *c)
{
    if (!txn_writable(t) || !side_ok(t, side))
        return t->st;
    struct key k = key_pair(pair, side);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "ms", (double)c->ms);
    if (c->listed_ms > 0)
        cJSON_AddNumberToObject(j, "listed", (double)c->listed_ms);
    return db_put_owned(t, DB_CURSORS, &k, j);
}

/* ---- intents ---- */

void intent_release(struct intent *i)
{
    free(i->source_id);
    free(i->marker);
    cJSON_Delete(i->base);
    memset(i, 0, sizeof(*i));
}

enum cb_status cache_intent_put(struct cache_txn *t, const char *pair, struct intent *i)
{
    if (!txn_writable(t) || !side_ok(t, i->target))
        return t->st;
    uint64_t id = i->id ? i->id : seq_next(t, "intent");
    if (t->st != CB_OK)
        return t->st;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "target", i->target);
    json_put_str(j, "source_id", i->source_id);
    json_put_str(j, "marker", i->marker);
    cJSON_AddNumberToObject(j, "created_ms", (double)i->created_ms);
    if (i->unsure_ms)
        cJSON_AddNumberToObject(j, "unsure_ms", (double)i->unsure_ms);
    if (i->base)
        cJSON_AddItemToObject(j, "base", cJSON_Duplicate(i->base, 1));
    struct key k = key_pair_id(pair, id);
    if (db_put_owned(t, DB_INTENTS, &k, j) == CB_OK)
        i->id = id;
    return t->st;
}

enum cb_status cache_intent_del(struct cache_txn *t, const char *pair, uint64_t id)
{
    if (!txn_writable(t))
        return t->st;
    struct key k = key_pair_id(pair, id);
    return id ? db_del(t, DB_INTENTS, &k) : CB_ERR_NOTFOUND;
}

struct intent_list {
    struct intent *items;
    size_t n;
};

static int intent_list_step(struct cache_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct intent_list *l = arg;
    cJSON *j = NULL;
    if (json_from_val(t, v, "intent", &j) != CB_OK)
        return 1;
    l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
    l->items[l->n++] = (struct intent){
        .id = key_id(k),
        .target = (int)json_i64(j, "target"),
        .source_id = json_dup_str(j, "source_id"),
        .marker = json_dup_str(j, "marker"),
        .created_ms = json_i64(j, "created_ms"),
        .unsure_ms = json_i64(j, "unsure_ms"),
        .base = cJSON_DetachItemFromObjectCaseSensitive(j, "base"),
    };
    cJSON_Delete(j);
    return 0;
}

/* Moves cnt items of size sz to the end of the caller's array arr of *n items, frees items and
 * returns the (possibly moved) array. */
static void *array_append(void *arr, size_t *n, void *items, size_t cnt, size_t sz)
{
    if (cnt) {
        arr = xrealloc(arr, (*n + cnt) * sz);
        memcpy((char *)arr + *n * sz, items, cnt * sz);
        *n += cnt;
    }
    free(items);
    return arr;
}

enum cb_status cache_intent_list(struct cache_txn *t, const char *pair, struct intent **out,
                                 size_t *n)
{
    struct key prefix = key_pair(pair, -1);
    struct intent_list l = {NULL, 0};
    enum cb_status st = db_scan(t, DB_INTENTS, &prefix, intent_list_step, &l);
    if (st != CB_OK) {
        for (size_t i = 0; i < l.n; i++)
            intent_release(&l.items[i]);
        l.n = 0;
    }
    *out = array_append(*out, n, l.items, l.n, sizeof(*l.items));
    return st;
}

/* ---- conflicts ---- */

void conflict_release(struct conflict *c)
{
    free(c->pair);
    free(c->field);
    cJSON_Delete(c->base);
    cJSON_Delete(c->resolution);
    for (int s = 0; s < 2; s++) {
        cJSON_Delete(c->value[s]);
        free(c->who[s]);
        free(c->key[s]);
    }
    memset(c, 0, sizeof(*c));
}

static cJSON *conflict_encode(const struct conflict *c)
{
    cJSON *j = cJSON_CreateObject();
    json_put_str(j, "pair", c->pair);
    cJSON_AddNumberToObject(j, "link_id", (double)c->link_id);
    json_put_str(j, "field", c->field);
    json_put_item(j, "base", c->base);
    cJSON *sides = cJSON_AddArrayToObject(j, "side");
    for (int s = 0; s < 2; s++) {
        cJSON *o = cJSON_CreateObject();
        json_put_item(o, "value", c->value[s]);
        json_put_str(o, "who", c->who[s]);
        cJSON_AddNumberToObject(o, "changed_ms", (double)c->changed_ms[s]);
        json_put_str(o, "key", c->key[s]);
        cJSON_AddItemToArray(sides, o);
    }
    cJSON_AddNumberToObject(j, "created_ms", (double)c->created_ms);
    cJSON_AddNumberToObject(j, "resolved", c->resolved);
    json_put_item(j, "resolution", c->resolution);
    return j;
}

/* 0 open, 1 resolved and waiting to be written, 2 applied (older caches stored a bool). */
static int conflict_state(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return v->valueint;
    return cJSON_IsTrue(v) ? 1 : 0;
}

static enum cb_status conflict_decode(struct cache_txn *t, const MDB_val *v, uint64_t id,
                                      struct conflict *out)
{
    cJSON *j = NULL;
    if (json_from_val(t, v, "conflict", &j) != CB_OK)
        return t->st;
    struct conflict c = {
        .id = id,
        .pair = json_dup_str(j, "pair"),
        .link_id = json_id(j, "link_id"),
        .field = json_dup_str(j, "field"),
        .base = json_dup_item(j, "base"),
        .created_ms = json_i64(j, "created_ms"),
        .resolved = conflict_state(cJSON_GetObjectItemCaseSensitive(j, "resolved")),
        .resolution = json_dup_item(j, "resolution"),
    };
    const cJSON *sides = cJSON_GetObjectItemCaseSensitive(j, "side");
    for (int s = 0; s < 2; s++) {
        const cJSON *o = cJSON_GetArrayItem(sides, s);
        c.value[s] = json_dup_item(o, "value");
        c.who[s] = json_dup_str(o, "who");
        c.changed_ms[s] = json_i64(o, "changed_ms");
        c.key[s] = json_dup_str(o, "key");
    }
    cJSON_Delete(j);
    *out = c;
    return CB_OK;
}

enum cb_status cache_conflict_put(struct cache_txn *t, struct conflict *c)
{
    if (!txn_writable(t))
        return t->st;
    uint64_t id = c->id ? c->id : seq_next(t, "conflict");
    if (t->st != CB_OK)
        return t->st;
    struct key k = key_conflict(id);
    if (db_put_owned(t, DB_CONFLICTS, &k, conflict_encode(c)) == CB_OK)
        c->id = id;
    return t->st;
}

enum cb_status cache_conflict_get(struct cache_txn *t, uint64_t id, struct conflict *out)
{
    if (t->st != CB_OK)
        return t->st;
    struct key k = key_conflict(id);
    MDB_val v;
    enum cb_status st = db_get(t, DB_CONFLICTS, &k, &v);
    return st == CB_OK ? conflict_decode(t, &v, id, out) : st;
}

/* One walk serves list and find_open: a filter, and either a collected array or one match. */
struct conflict_walk {
    const char *pair; /* NULL = any */
    int open_only;
    const char *field; /* find_open: stop at the first match of link_id and field */
    uint64_t link_id;
    struct conflict *items;
    size_t n;
};

static int conflict_walk_step(struct cache_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct conflict_walk *w = arg;
    struct conflict c;
    if (conflict_decode(t, v, key_id(k), &c) != CB_OK)
        return 1;
    int keep = (!w->pair || str_eq(w->pair, c.pair)) && !(w->open_only && c.resolved) &&
               (!w->field || (c.link_id == w->link_id && str_eq(w->field, c.field)));
    if (!keep) {
        conflict_release(&c);
        return 0;
    }
    w->items = xrealloc(w->items, (w->n + 1) * sizeof(*w->items));
    w->items[w->n++] = c;
    return w->field != NULL;
}

static enum cb_status conflict_walk(struct cache_txn *t, struct conflict_walk *w)
{
    struct key prefix = {.len = 0};
    enum cb_status st = db_scan(t, DB_CONFLICTS, &prefix, conflict_walk_step, w);
    if (st != CB_OK) {
        for (size_t i = 0; i < w->n; i++)
            conflict_release(&w->items[i]);
        w->n = 0;
    }
    return st;
}

enum cb_status cache_conflict_find_open(struct cache_txn *t, const char *pair, uint64_t link_id,
                                        const char *field, struct conflict *out)
{
    struct conflict_walk w = {.pair = pair, .open_only = 1, .field = field, .link_id = link_id};
    enum cb_status st = conflict_walk(t, &w);
    if (st == CB_OK && w.n == 0)
        st = CB_ERR_NOTFOUND;
    if (st == CB_OK)
        *out = w.items[0];
    free(w.items);
    return st;
}

enum cb_status cache_conflict_list(struct cache_txn *t, const char *pair, int open_only,
                                   struct conflict **out, size_t *n)
{
    struct conflict_walk w = {.pair = pair, .open_only = open_only};
    enum cb_status st = conflict_walk(t, &w);
    *out = array_append(*out, n, w.items, w.n, sizeof(*w.items));
    return st;
}

/* ---- tokens ---- */

static enum cb_status token_key(struct cache_txn *t)
{
    struct cache *c = t->c;
    struct strbuf err = STRBUF_INIT;
    enum cb_status st = CB_OK;
    pthread_mutex_lock(&c->key_lock);
    if (!c->have_key) {
        st = crypt_key_load(c->dir, c->key, &err);
        c->have_key = st == CB_OK;
    }
    pthread_mutex_unlock(&c->key_lock);
    if (st != CB_OK)
        txn_fail(t, st, "%s", err.buf);
    strbuf_release(&err);
    return st;
}

enum cb_status cache_token_get(struct cache_txn *t, const char *endpoint, struct strbuf *out)
{
    if (t->st != CB_OK)
        return t->st;
    struct key k = key_name(endpoint);
    MDB_val v;
    enum cb_status st = db_get(t, DB_TOKENS, &k, &v);
    if (st != CB_OK)
        return st;
    if (token_key(t) != CB_OK)
        return t->st;
    st = crypt_unseal(t->c->key, endpoint, v.mv_data, v.mv_size, out);
    if (st == CB_ERR_TOOBIG)
        return txn_fail(t, st, "cannot read token for endpoint '%s': larger than the buffer",
                        endpoint);
    if (st != CB_OK)
        return txn_fail(t, st, "cannot decrypt token for endpoint '%s'", endpoint);
    return CB_OK;
}

enum cb_status cache_token_put(struct cache_txn *t, const char *endpoint, const char *token,
                               size_t len)
{
    if (!txn_writable(t) || token_key(t) != CB_OK)
        return t->st;
    struct key k = key_name(endpoint);
    struct strbuf blob = STRBUF_INIT;
    if (crypt_seal(t->c->key, endpoint, token, len, &blob) != CB_OK)
        txn_fail(t, CB_ERR_CACHE, "cannot encrypt token for endpoint '%s'", endpoint);
    else
        db_put(t, DB_TOKENS, &k, blob.buf, blob.len);
    strbuf_release(&blob);
    return t->st;
}

enum cb_status cache_token_del(struct cache_txn *t, const char *endpoint)
{
    if (!txn_writable(t))
        return t->st;
    struct key k = key_name(endpoint);
    return db_del(t, DB_TOKENS, &k);
}

/* ---- meta ---- */

static int meta_reserved(const char *key)
{
    return strcmp(key, "schema_version") == 0 || strcmp(key, "seq") == 0 ||
           strncmp(key, COUNT_PREFIX, strlen(COUNT_PREFIX)) == 0;
}

enum cb_status cache_meta_get(struct cache_txn *t, const char *key, cJSON **out)
{
    if (t->st != CB_OK)
        return t->st;
    struct key k = key_name(key);
    return db_get_json(t, DB_META, &k, "meta", out);
}

enum cb_status cache_meta_put(struct cache_txn *t, const char *key, const cJSON *val)
{
    if (!txn_writable(t))
        return t->st;
    if (meta_reserved(key))
        return txn_fail(t, CB_ERR_INTERNAL, "cannot set meta key '%s': reserved by the cache", key);
    struct key k = key_name(key);
    return db_put_json(t, DB_META, &k, val);
}

enum cb_status cache_meta_del(struct cache_txn *t, const char *key)
{
    if (!txn_writable(t))
        return t->st;
    if (meta_reserved(key))
        return txn_fail(t, CB_ERR_INTERNAL, "cannot delete meta key '%s': reserved by the cache",
                        key);
    struct key k = key_name(key);
    enum cb_status st = db_del(t, DB_META, &k);
    return st == CB_ERR_NOTFOUND ? CB_OK : st;
}

static void unlinked_key(struct strbuf *key, const char *pair, int side, const char *id)
{
    (void)strbuf_addf(key, "unlinked:%s:%d:%s", pair, side, id);
}

enum cb_status cache_link_unlink(struct cache_txn *t, const char *pair, uint64_t id)
{
    struct link l = {0};
    enum cb_status st = cache_link_get(t, pair, id, &l);
    if (st == CB_OK)
        st = cache_link_del(t, pair, id);
    cJSON *yes = cJSON_CreateTrue();
    for (int s = 0; s < 2 && st == CB_OK; s++) {
        if (!l.remote[s])
            continue;
        struct strbuf key = STRBUF_INIT;
        unlinked_key(&key, pair, s, l.remote[s]);
        st = cache_meta_put(t, key.buf, yes);
        strbuf_release(&key);
    }
    cJSON_Delete(yes);
    link_release(&l);
    return st;
}

int cache_was_unlinked(struct cache_txn *t, const char *pair, int side, const char *id)
{
    struct strbuf key = STRBUF_INIT;
    unlinked_key(&key, pair, side, id);
    cJSON *v = NULL;
    int yes = cache_meta_get(t, key.buf, &v) == CB_OK && v;
    cJSON_Delete(v);
    strbuf_release(&key);
    return yes;
}
