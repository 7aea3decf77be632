/*
 * Trello (REST v1) connector: one board is the tracker, a card is a record and the list a card
 * sits in is its status. Key and token travel in an OAuth header (or, if configured, the query);
 * lists and labels are resolved by name at ping; changes come from the board's actions feed with
 * a cards snapshot for first runs and gaps (a card is read again only when someone other than
 * this connector acted on it since the last listing); creates carry the crmbridge marker as a
 * hidden line at the end of the description; requests are paced for the per-token and per-key
 * limits.
 * Comments are commentCard actions (a new or edited one is card activity in the feed). The
 * pseudo field "member" is a card's first member, a person of the board's members (a write
 * replaces that one and keeps the others). It does not
 * sync checklists, custom fields or attachments (a create only attaches the link back), and it
 * does not use webhooks.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "connectors/connector.h"
#include "cache/cache.h"
#include "connectors/pace.h"
#include "core/strlist.h"
#include "core/timeutil.h"
#include "mapping/richtext.h"

#define LOG_MODULE "trello"
#include "core/log.h"

#define FEED_LIMIT 1000 /* actions per feed page: the API's maximum */
#define FEED_MAX_PAGES                                                                             \
    5                     /* a longer walk back costs more than one cards snapshot: treat as a gap \
                           */
#define CARD_FEED_PAGE 50 /* a card's actions come 50 a page... */
#define CARD_FEED_PAGES 20 /* ...in pages 0 to 19 */
#define PAGE_RECORDS 200
#define DESC_MAX 16384
#define WINDOW_MS 10000 /* Trello's limits are per 10 s */
#define TOKEN_LIMIT 100
#define KEY_LIMIT 300
#define MARKER_OPEN "[//]: # (crmbridge:"
#define MEMBERS_FIELD "$members" /* every member id of a card, in order (not a mapped field) */
#define MARKER_SLACK_MS                                                                            \
    3600000 /* find_marker accepts cards this much older than since_ms (the                        \
             * board's clock may be minutes behind ours) */
#define FEED_TYPES                                                                                 \
    "createCard,updateCard,commentCard,updateComment,addLabelToCard,removeLabelFromCard,copyCard," \
    "moveCardToBoard,convertToCardFromCheckItem,emailCard,updateCustomFieldItem,"                  \
    "addMemberToCard,removeMemberFromCard"
#define BASE_FIELDS "id,idShort,shortLink,shortUrl,dateLastActivity,desc,closed,badges"

enum { F_NAME = 1, F_DESC = 2, F_LIST = 4, F_DUE = 8, F_LABELS = 16, F_CLOSED = 32, F_MEMBER = 64 };

static const struct {
    const char *name;
    int bit;
    const char *wire; /* the card field read for it */
} card_fields[] = {{"name", F_NAME, "name"},          {"desc", F_DESC, "desc"},
                   {"list", F_LIST, "idList"},        {"due", F_DUE, "due"},
                   {"labels", F_LABELS, "labels"},    {"closed", F_CLOSED, "closed"},
                   {"member", F_MEMBER, "idMembers"}, {NULL, 0, NULL}};

struct named {
    char *id, *name;
    int closed;
};

struct named_list {
    struct named *v;
    size_t n;
};

/* What the listings so far know of one card of the feed's window: the newest action they saw on
 * it and the record that state gave (handed out again while no newer action comes). */
struct seen {
    char *card, *action; /* action NULL: no listing saw it yet */
    struct record rec;   /* rec.id NULL: nothing to hand out */
    int written;         /* this connector wrote the card since: rec is its state after that */
};

struct seen_list {
    struct seen *v;
    size_t n;
};

struct connector {
    struct http *http;
    char *api_url; /* ".../1" */
    char *key, *token, *auth;
    int query_auth;
    char *board_ref, *board_id, *board_name, *list_pref;
    char *new_list; /* id of the list new cards go to */
    struct named_list lists, labels;
    struct named_list members; /* the board's members: id -> full name (loaded when needed) */
    struct named_list markers; /* card id -> marker ("" = none), learnt from the cards read */
    struct seen_list seen;     /* the cards of the last feed window (see list_changed) */
    char *me;                  /* crmbridge's own member id (from ping; NULL = unknown) */
    struct cache *cache;       /* where the member id is kept between runs (may be NULL) */
    char *me_key;              /* its meta key: "trello-member:<endpoint>" */
    /* the side's scope filter: label and list names (ids unused) */
    struct named_list scope_labels, scope_lists;
    int need;                         /* F_* bits the mapping asked for */
    char *fields_param;               /* fields= for card reads */
    struct pace *per_token, *per_key; /* shared by every connection with the token, the key */
    int lists_reloaded;               /* once per public call: a list id we did not know */
    int members_reloaded;             /* the same for a member id */
    int ready;
};

/* --- small helpers ------------------------------------------------------------------------- */

static const char *jstr(const cJSON *obj, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, name));
}

static void named_push(struct named_list *l, const char *id, const char *name, int closed)
{
    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n].id = xstrdup(id);
    l->v[l->n].name = xstrdup(name ? name : "");
    l->v[l->n++].closed = closed;
}

static void named_clear(struct named_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].id);
        free(l->v[i].name);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static const struct named *named_by_id(const struct named_list *l, const char *id)
{
    for (size_t i = 0; id && i < l->n; i++)
        if (!strcmp(l->v[i].id, id))
            return &l->v[i];
    return NULL;
}

/* By name, case-insensitively; an open entry wins over an archived one. */
static const struct named *named_by_name(const struct named_list *l, const char *name)
{
    const struct named *hit = NULL;
    for (size_t i = 0; i < l->n; i++)
        if (!strcasecmp(l->v[i].name, name) && (!hit || hit->closed))
            hit = &l->v[i];
    return hit;
}

static void named_set(struct named_list *l, const char *id, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].id, id)) {
            free(l->v[i].name);
            l->v[i].name = xstrdup(name);
            return;
        }
    named_push(l, id, name, 0);
}

static void named_join(const struct named_list *l, struct strbuf *out)
{
    int k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (!l->v[i].closed)
            (void)strbuf_addf(out, "%s%s", k++ ? ", " : "", l->v[i].name);
}

static struct seen *seen_find(const struct seen_list *l, const char *card)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].card, card))
            return &l->v[i];
    return NULL;
}

/* The entry of card, added (knowing nothing) when there is none. */
static struct seen *seen_get(struct seen_list *l, const char *card)
{
    struct seen *s = seen_find(l, card);
    if (s)
        return s;
    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    s = &l->v[l->n++];
    memset(s, 0, sizeof(*s));
    s->card = xstrdup(card);
    return s;
}

/* Sets what the entry hands out: a copy of r, or nothing (r NULL). */
static void seen_keep(struct seen *s, const struct record *r, int written)
{
    record_release(&s->rec);
    memset(&s->rec, 0, sizeof(s->rec));
    if (r)
        record_copy(&s->rec, r);
    s->written = written;
}

static void seen_drop(struct seen_list *l, size_t i)
{
    free(l->v[i].card);
    free(l->v[i].action);
    record_release(&l->v[i].rec);
    l->v[i] = l->v[--l->n];
}

static void seen_clear(struct seen_list *l)
{
    while (l->n)
        seen_drop(l, l->n - 1);
    free(l->v);
    l->v = NULL;
}

static int is_hex_id(const char *s)
{
    return strlen(s) == 24 && strspn(s, "0123456789abcdef") == 24;
}

static int is_short_link(const char *s)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    return strlen(s) == 8 && strspn(s, alnum) == 8;
}

/* Creation time of an ObjectId (its first 8 hex digits are epoch seconds), or 0. */
static int64_t id_time_ms(const char *id)
{
    if (!id || !is_hex_id(id))
        return 0;
    char secs[9];
    memcpy(secs, id, 8);
    secs[8] = '\0';
    return (int64_t)strtoll(secs, NULL, 16) * 1000;
}

/* --- configuration ------------------------------------------------------------------------- */

static const char *const ep_keys[] = {"api_url",    "key",      "token", "auth",
                                      "token_rate", "key_rate", NULL};
static const char *const side_keys[] = {"board", "list", "labels", "lists", NULL};

/* A rate setting (requests per 10 s), or def when absent; -1 when invalid. */
static long rate_setting(const struct conf_group *g, const char *key, long def)
{
    const char *v = conf_get(g, key);
    char *end = NULL;
    long n = v ? strtol(v, &end, 10) : def;
    return v && (end == v || *end || n < 1 || n > 100000) ? -1 : n;
}

static int check_endpoint(const struct endpoint_conf *ep, struct strbuf *err)
{
    static const char *const required[] = {"api_url", "key", "token", NULL};
    const struct conf_group *g = &ep->g;
    int bad = conf_require(g, required, "trello endpoint", err) +
              conf_unknown_keys(g, ep_keys, NULL, "trello endpoint", err);
    const char *url = conf_get(g, "api_url");
    if (url && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        conf_error(g, "api_url", err, "trello 'api_url' must start with https:// (got '%s')", url);
        bad++;
    }
    const char *auth = conf_get(g, "auth");
    if (auth && strcmp(auth, "header") && strcmp(auth, "query")) {
        conf_error(g, "auth", err, "trello 'auth' must be \"header\" or \"query\" (got '%s')",
                   auth);
        bad++;
    }
    for (int i = 0; i < 2; i++) {
        const char *k = i ? "key_rate" : "token_rate";
        if (rate_setting(g, k, 1) < 0) {
            conf_error(g, k, err, "trello '%s' must be requests per 10 s, 1 to 100000", k);
            bad++;
        }
    }
    return bad;
}

static int check_side(const struct side_conf *side, struct strbuf *err)
{
    static const char *const required[] = {"board", NULL};
    const struct conf_group *g = &side->g;
    int bad = conf_require(g, required, "trello side", err) +
              conf_unknown_keys(g, side_keys, NULL, "trello side", err);
    const char *b = conf_get(g, "board");
    if (b && !is_hex_id(b) && !is_short_link(b)) {
        conf_error(g, "board", err,
                   "trello 'board' must be a board id (24 hex digits) or the 8-character short "
                   "link from the board's URL (got '%s')",
                   b);
        bad++;
    }
    const char *l = conf_get(g, "list");
    if (l && !l[0]) {
        conf_error(g, "list", err, "trello 'list' must name a list of the board");
        bad++;
    }
    for (int i = 0; i < 2; i++) {
        const char *k = i ? "lists" : "labels", *v = conf_get(g, k);
        if (v && (!v[0] || strstr(v, ",,") || v[0] == ',' || v[strlen(v) - 1] == ',')) {
            conf_error(g, k, err,
                       "trello '%s' (the pair's scope) must be a list of %s names "
                       "like [\"%s\"]",
                       k, i ? "list" : "label", i ? "Inbox" : "customer");
            bad++;
        }
    }
    return bad;
}

static enum cb_status trello_check_config(const struct endpoint_conf *ep,
                                          const struct side_conf *side, struct strbuf *err)
{
    int bad = check_endpoint(ep, err) + (side ? check_side(side, err) : 0);
    if (bad)
        strbuf_trim_end(err);
    return bad ? CB_ERR_CONFIG : CB_OK;
}

/* --- lifecycle ----------------------------------------------------------------------------- */

static void wipe(char *s)
{
    if (s)
        memset(s, 0, strlen(s));
    free(s);
}

static void clear_board(struct connector *c)
{
    named_clear(&c->lists);
    named_clear(&c->labels);
    named_clear(&c->members);
    free(c->board_id);
    free(c->board_name);
    free(c->new_list);
    c->board_id = c->board_name = c->new_list = NULL;
    c->ready = 0;
}

static void trello_close(struct connector *c)
{
    if (!c)
        return;
    clear_board(c);
    named_clear(&c->markers);
    seen_clear(&c->seen);
    free(c->me);
    free(c->me_key);
    named_clear(&c->scope_labels);
    named_clear(&c->scope_lists);
    http_free(c->http);
    free(c->api_url);
    wipe(c->key);
    wipe(c->token);
    wipe(c->auth);
    free(c->board_ref);
    free(c->list_pref);
    free(c->fields_param);
    free(c);
}

/* The fields the mapping asked for, as F_* bits; an unknown name is a config error. */
static enum cb_status wanted_fields(const char *const *fields, int *need, struct strbuf *err)
{
    *need = 0;
    for (const char *const *f = fields; f && *f; f++) {
        if ((*f)[0] == '$')
            continue;
        int bit = 0;
        for (int i = 0; card_fields[i].name && !bit; i++)
            if (!strcmp(card_fields[i].name, *f))
                bit = card_fields[i].bit;
        if (!bit) {
            strbuf_setf(err,
                        "trello cards have no field '%s' (they have: name, desc, list, due, "
                        "labels, closed, member)",
                        *f);
            return CB_ERR_CONFIG;
        }
        *need |= bit;
    }
    if (!fields) /* "member" only when asked: reading it may cost a members request */
        *need = F_NAME | F_DESC | F_LIST | F_DUE | F_LABELS | F_CLOSED;
    return CB_OK;
}

static char *fields_param(int need)
{
    struct strbuf b = STRBUF_INIT;
    (void)strbuf_adds(&b, BASE_FIELDS);
    for (int i = 0; card_fields[i].name; i++)
        if ((need & card_fields[i].bit) && !strstr(BASE_FIELDS, card_fields[i].wire))
            (void)strbuf_addf(&b, ",%s", card_fields[i].wire);
    return strbuf_detach(&b);
}

/* Paces at 85% of a limit with a small burst: at most limit/10 + 85% of limit requests fall
 * in any window, even across two runs back to back (each starts with a full burst). One bucket
 * per process for each token or key (and limit): parallel connections share it. */
static struct pace *pace_for(const char *what, const char *secret, long limit)
{
    long burst = limit / 20 > 0 ? limit / 20 : 1;
    long steady = limit * 85 / 100 > 0 ? limit * 85 / 100 : 1;
    struct strbuf k = STRBUF_INIT, l = STRBUF_INIT;
    (void)strbuf_addf(&l, "%ld per 10 s", limit);
    pace_key(&k, what, secret, l.buf);
    struct pace *p = pace_shared(k.buf, (int)burst, (int64_t)WINDOW_MS * burst / steady);
    strbuf_release(&k);
    strbuf_release(&l);
    return p;
}

static enum cb_status open_secrets(struct connector *c, const struct conf_group *g,
                                   struct strbuf *err)
{
    if (conf_secret(g, "key", &c->key, err) != CB_OK ||
        conf_secret(g, "token", &c->token, err) != CB_OK)
        return CB_ERR_CONFIG;
    const char *auth = conf_get(g, "auth");
    c->query_auth = auth && !strcmp(auth, "query");
    struct strbuf h = STRBUF_INIT;
    (void)strbuf_addf(&h, "Authorization: OAuth oauth_consumer_key=\"%s\", oauth_token=\"%s\"",
                      c->key, c->token);
    c->auth = strbuf_detach(&h);
    return CB_OK;
}

/* Names from a comma-joined config list into l. */
static void scope_load(struct named_list *l, const char *v)
{
    while (v && *v) {
        size_t n = strcspn(v, ",");
        char *name = xstrndup(v, n);
        named_push(l, "", name, 0);
        free(name);
        v += n + (v[n] == ',');
    }
}

static enum cb_status trello_open(const struct connector_params *p, struct connector **out,
                                  struct strbuf *err)
{
    *out = NULL;
    strbuf_reset(err);
    if (trello_check_config(p->ep, p->side, err) != CB_OK)
        return CB_ERR_CONFIG;
    int need;
    if (wanted_fields(p->fields, &need, err) != CB_OK)
        return CB_ERR_CONFIG;
    struct connector *c = xcalloc(1, sizeof(*c));
    if (open_secrets(c, &p->ep->g, err) != CB_OK) {
        trello_close(c);
        return CB_ERR_CONFIG;
    }
    const char *url = conf_get(&p->ep->g, "api_url");
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    struct strbuf u = STRBUF_INIT;
    (void)strbuf_addf(&u, "%.*s/1", (int)n, url);
    c->api_url = strbuf_detach(&u);
    c->board_ref = xstrdup(conf_get(&p->side->g, "board"));
    c->cache = p->cache;
    struct strbuf mk = STRBUF_INIT;
    (void)strbuf_addf(&mk, "trello-member:%s", p->ep->name ? p->ep->name : "");
    c->me_key = strbuf_detach(&mk);
    const char *list = conf_get(&p->side->g, "list");
    c->list_pref = list ? xstrdup(list) : NULL;
    c->need = need;
    scope_load(&c->scope_labels, conf_get(&p->side->g, "labels"));
    scope_load(&c->scope_lists, conf_get(&p->side->g, "lists"));
    /* the filter reads labels and lists even when the mapping does not */
    c->fields_param =
        fields_param(need | (c->scope_labels.n ? F_LABELS : 0) | (c->scope_lists.n ? F_LIST : 0));
    c->per_token =
        pace_for("trello token", c->token, rate_setting(&p->ep->g, "token_rate", TOKEN_LIMIT));
    c->per_key = pace_for("trello key", c->key, rate_setting(&p->ep->g, "key_rate", KEY_LIMIT));
    c->http = connector_http_new(p);
    *out = c;
    return CB_OK;
}

/* --- requests ------------------------------------------------------------------------------ */

/* Appends Trello's own words: JSON {"error","message"} or the first line of a plain text. */
static void error_text(const struct http_resp *r, struct strbuf *out)
{
    cJSON *j = cJSON_ParseWithLengthOpts(r->body.buf, r->body.len, NULL, 0);
    const char *code = jstr(j, "error"), *msg = jstr(j, "message");
    if (code || msg) {
        (void)strbuf_addf(out, ": %s", code ? code : msg);
        if (code && msg && strcmp(code, msg))
            (void)strbuf_addf(out, " (%s)", msg);
    } else if (r->body.len && r->body.buf[strspn(r->body.buf, " \t\r\n")] == '<') {
        (void)strbuf_adds(out, " with an HTML page");
    } else if (r->body.len) {
        size_t n = strcspn(r->body.buf, "\r\n");
        char *line = xstrndup(r->body.buf, n > 120 ? 120 : n);
        char *clean = log_redact(line);
        (void)strbuf_addf(out, " '%s'", clean);
        free(clean);
        free(line);
    }
    cJSON_Delete(j);
}

static enum cb_status read_response(struct connector *c, const struct http_resp *r, cJSON **out,
                                    const char *what, struct strbuf *err)
{
    enum cb_status st = http_classify(r->status);
    if (st != CB_OK) {
        if (st == CB_ERR_AUTH)
            strbuf_setf(err, "trello rejected the key or token (http 401");
        else
            strbuf_setf(err, "cannot %s: http %ld", what, r->status);
        error_text(r, err);
        if (st == CB_ERR_AUTH)
            (void)strbuf_addf(err, ") when trying to %s", what);
        if (st == CB_ERR_WAIT) {
            /* someone else shares the token or key: let the window pass before going on */
            pace_drain(c->per_token);
            pace_drain(c->per_key);
        }
        return st;
    }
    const char *end = NULL;
    cJSON *j = r->body.len ? cJSON_ParseWithLengthOpts(r->body.buf, r->body.len, &end, 0) : NULL;
    if (!j) {
        strbuf_setf(err, "cannot %s: %s from trello (http %ld, %zu bytes)", what,
                    r->body.len ? "malformed JSON" : "an empty answer", r->status, r->body.len);
        return CB_ERR_PARSE;
    }
    *out = j;
    return CB_OK;
}

static void add_auth_query(const struct connector *c, struct strbuf *url)
{
    (void)strbuf_adds(url, strchr(url->buf, '?') ? "&key=" : "?key=");
    (void)strbuf_add_urlencoded(url, c->key);
    (void)strbuf_adds(url, "&token=");
    (void)strbuf_add_urlencoded(url, c->token);
}

/* Sends method path (relative to /1) with an optional JSON body. On success *out holds the
 * parsed answer (owned by the caller). what_fmt names the action for messages. */
static enum cb_status trello_call(struct connector *c, const char *method, const char *path,
                                  const cJSON *body, int no_retry, cJSON **out, struct strbuf *err,
                                  const char *what_fmt, ...) CB_PRINTF(8, 9);
static enum cb_status trello_call(struct connector *c, const char *method, const char *path,
                                  const cJSON *body, int no_retry, cJSON **out, struct strbuf *err,
                                  const char *what_fmt, ...)
{
    *out = NULL;
    if (pace_wait(c->per_token) != CB_OK || pace_wait(c->per_key) != CB_OK) {
        strbuf_setf(err, "stopped while pacing trello requests");
        return CB_ERR_STOPPED;
    }
    struct strbuf url = STRBUF_INIT, what = STRBUF_INIT, why = STRBUF_INIT;
    va_list ap;
    va_start(ap, what_fmt);
    (void)strbuf_vaddf(&what, what_fmt, ap);
    va_end(ap);
    (void)strbuf_addf(&url, "%s%s", c->api_url, path);
    if (c->query_auth)
        add_auth_query(c, &url);
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    const char *headers[] = {"Accept: application/json", c->query_auth ? NULL : c->auth, NULL};
    struct http_req req = {.method = method,
                           .url = url.buf,
                           .headers = headers,
                           .body = text,
                           .body_len = text ? strlen(text) : 0,
                           .no_retry = no_retry};
    struct http_resp resp;
    http_resp_init(&resp);
    enum cb_status st = http_request(c->http, &req, &resp, &why);
    if (st != CB_OK)
        strbuf_setf(err, "cannot %s: %s", what.buf, why.buf);
    else
        st = read_response(c, &resp, out, what.buf, err);
    http_resp_release(&resp);
    free(text);
    memset(url.buf, 0, url.len); /* it may carry the token */
    strbuf_release(&url);
    strbuf_release(&what);
    strbuf_release(&why);
    return st;
}

/* --- the board: lists and labels ----------------------------------------------------------- */

static void load_named(struct named_list *l, const cJSON *arr)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) if (jstr(e, "id"))
        named_push(l, jstr(e, "id"), jstr(e, "name"),
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "closed")));
}

static enum cb_status load_lists(struct connector *c, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_addf(&path, "/boards/%s/lists?filter=all&fields=name,closed,pos", c->board_id);
    cJSON *arr;
    enum cb_status st = trello_call(c, "GET", path.buf, NULL, 0, &arr, err,
                                    "read the lists of trello board '%s'", c->board_name);
    strbuf_release(&path);
    if (st == CB_OK) {
        named_clear(&c->lists);
        load_named(&c->lists, arr);
    }
    cJSON_Delete(arr);
    return st;
}

/* The board's members (id -> full name; Trello shows no e-mail of other members). */
static enum cb_status load_members(struct connector *c, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_addf(&path, "/boards/%s/members?fields=fullName,username", c->board_id);
    cJSON *arr;
    enum cb_status st = trello_call(c, "GET", path.buf, NULL, 0, &arr, err,
                                    "read the members of trello board '%s'", c->board_name);
    strbuf_release(&path);
    if (st == CB_OK && !cJSON_IsArray(arr)) {
        strbuf_setf(err, "cannot read the members of trello board '%s': the answer is not a list",
                    c->board_name);
        st = CB_ERR_PARSE;
    }
    if (st == CB_OK) {
        named_clear(&c->members);
        const cJSON *m;
        cJSON_ArrayForEach(m, arr) if (jstr(m, "id"))
            named_push(&c->members, jstr(m, "id"),
                       jstr(m, "fullName") ? jstr(m, "fullName") : jstr(m, "username"), 0);
    }
    cJSON_Delete(arr);
    return st;
}

/* The member id kept in the cache by an earlier run (or NULL); store: keep c->me there. A
 * stale id (the token changed) only costs reads: our own writes then look like a person's. */
static void me_cached(struct connector *c, int store)
{
    struct cache_txn *t = NULL;
    struct strbuf e = STRBUF_INIT;
    if (!c->cache || cache_txn_begin(c->cache, !store, &t, &e) != CB_OK) {
        strbuf_release(&e);
        return;
    }
    cJSON *v = NULL;
    if (store) {
        v = cJSON_CreateString(c->me);
        if (cache_meta_put(t, c->me_key, v) == CB_OK) {
            if (cache_txn_commit(t, &e) != CB_OK)
                log_warn("cannot keep the trello member id: %s", e.buf);
            t = NULL; /* committed or not, the transaction is over */
        }
    } else if (cache_meta_get(t, c->me_key, &v) == CB_OK && cJSON_GetStringValue(v)) {
        c->me = xstrdup(cJSON_GetStringValue(v));
    }
    if (t)
        cache_txn_abort(t);
    cJSON_Delete(v);
    strbuf_release(&e);
}

/* crmbridge's own member (the token's), so that the feed tells the echoes of our writes from a
 * person's edits. Best effort, once per state dir (/1/members/ is limited to 100 requests per
 * 15 minutes): without it every card with activity is read. */
static void load_me(struct connector *c)
{
    cJSON *m = NULL;
    struct strbuf e = STRBUF_INIT;
    if (!c->me)
        me_cached(c, 0);
    if (c->me)
        return;
    if (trello_call(c, "GET", "/members/me?fields=id", NULL, 0, &m, &e,
                    "read the token's trello member") != CB_OK)
        log_warn("%s: cards crmbridge writes will be read back", e.buf);
    else if (jstr(m, "id"))
        c->me = xstrdup(jstr(m, "id"));
    if (c->me)
        me_cached(c, 1);
    cJSON_Delete(m);
    strbuf_release(&e);
}

/* Picks the list new cards go to: the side's `list`, else the first open list. */
static enum cb_status pick_new_list(struct connector *c, struct strbuf *err)
{
    const struct named *l = NULL;
    if (c->list_pref) {
        l = named_by_name(&c->lists, c->list_pref);
    } else {
        for (size_t i = 0; i < c->lists.n && !l; i++)
            if (!c->lists.v[i].closed)
                l = &c->lists.v[i];
    }
    if (!l) {
        strbuf_setf(err, "trello board '%s' has no %s%s%s (it has: ", c->board_name,
                    c->list_pref ? "list '" : "open list", c->list_pref ? c->list_pref : "",
                    c->list_pref ? "'" : "");
        named_join(&c->lists, err);
        (void)strbuf_addch(err, ')');
        return CB_ERR_CONFIG;
    }
    c->new_list = xstrdup(l->id);
    return CB_OK;
}

/* Every name of the side's scope filter must exist on the board (a typo would leave the pair
 * with nothing in scope). */
static enum cb_status scope_check(const struct connector *c, const struct named_list *want,
                                  const struct named_list *have, const char *what,
                                  struct strbuf *err)
{
    for (size_t i = 0; i < want->n; i++)
        if (!named_by_name(have, want->v[i].name)) {
            strbuf_setf(err, "trello board '%s' has no %s '%s' (the pair's scope; it has: ",
                        c->board_name, what, want->v[i].name);
            named_join(have, err);
            (void)strbuf_addch(err, ')');
            return CB_ERR_CONFIG;
        }
    return CB_OK;
}

static enum cb_status load_board(struct connector *c, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_adds(&path, "/boards/");
    (void)strbuf_add_urlencoded(&path, c->board_ref);
    (void)strbuf_adds(&path, "?fields=name,url&lists=all&list_fields=name,closed,pos"
                             "&labels=all&label_fields=name,color");
    cJSON *b;
    enum cb_status st =
        trello_call(c, "GET", path.buf, NULL, 0, &b, err, "read trello board '%s'", c->board_ref);
    strbuf_release(&path);
    if (st == CB_ERR_NOTFOUND || (st == CB_ERR_FINAL && strstr(err->buf, "invalid id"))) {
        strbuf_setf(err, "trello board '%s' does not exist or the token cannot see it",
                    c->board_ref);
        return CB_ERR_CONFIG;
    }
    if (st != CB_OK)
        return st;
    if (!jstr(b, "id")) {
        cJSON_Delete(b);
        strbuf_setf(err, "cannot read trello board '%s': no id in the answer", c->board_ref);
        return CB_ERR_PARSE;
    }
    c->board_id = xstrdup(jstr(b, "id"));
    c->board_name = xstrdup(jstr(b, "name") ? jstr(b, "name") : c->board_ref);
    load_named(&c->lists, cJSON_GetObjectItemCaseSensitive(b, "lists"));
    load_named(&c->labels, cJSON_GetObjectItemCaseSensitive(b, "labels"));
    cJSON_Delete(b);
    st = scope_check(c, &c->scope_lists, &c->lists, "list", err);
    if (st == CB_OK)
        st = scope_check(c, &c->scope_labels, &c->labels, "label", err);
    return st == CB_OK ? pick_new_list(c, err) : st;
}

static void scope_info(const struct named_list *l, const char *what, struct strbuf *info)
{
    if (!l->n)
        return;
    (void)strbuf_addf(info, "; filter %s: ", what);
    named_join(l, info);
}

static enum cb_status trello_ping(struct connector *c, struct strbuf *info, struct strbuf *err)
{
    clear_board(c);
    enum cb_status st = load_board(c, err);
    if (st != CB_OK) {
        clear_board(c);
        return st;
    }
    c->ready = 1;
    load_me(c);
    if (info) {
        strbuf_setf(info, "trello board '%s' (%s), lists: ", c->board_name, c->board_id);
        named_join(&c->lists, info);
        (void)strbuf_addf(info, "; new cards go to '%s'",
                          named_by_id(&c->lists, c->new_list)->name);
        scope_info(&c->scope_labels, "labels", info);
        scope_info(&c->scope_lists, "lists", info);
    }
    return CB_OK;
}

static enum cb_status ensure_ready(struct connector *c, struct strbuf *err)
{
    c->lists_reloaded = c->members_reloaded = 0;
    return c->ready ? CB_OK : trello_ping(c, NULL, err);
}

/* --- decoding cards ------------------------------------------------------------------------ */

/* Splits a description into what a person wrote and the marker on its last marker line. */
static char *desc_split(const char *desc, char **marker)
{
    const char *m = NULL;
    *marker = NULL;
    for (const char *p = desc; (p = strstr(p, MARKER_OPEN)) != NULL; p++)
        if (p == desc || p[-1] == '\n')
            m = p;
    if (m) {
        const char *v = m + strlen(MARKER_OPEN);
        size_t n = strcspn(v, ")\n");
        const char *rest = v + n + 1;
        if (v[n] == ')' && n > 0 && !rest[strspn(rest, " \t\r\n")]) {
            *marker = xstrndup(v, n);
            size_t keep = (size_t)(m - desc);
            while (keep > 0 && strchr(" \t\r\n", desc[keep - 1]))
                keep--;
            return xstrndup(desc, keep);
        }
    }
    return xstrdup(desc);
}

/* Appends the marker line to a description (which may be empty). */
static char *desc_join(const char *text, const char *marker)
{
    struct strbuf b = STRBUF_INIT;
    (void)strbuf_adds(&b, text ? text : "");
    if (marker)
        (void)strbuf_addf(&b, "%s%s%s)", b.len ? "\n\n" : "", MARKER_OPEN, marker);
    return strbuf_detach(&b);
}

static cJSON *text_or_null(const char *s)
{
    return s && s[0] ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *decode_due(const cJSON *v)
{
    int64_t ms;
    char buf[CBTIME_BUFSZ];
    if (!cJSON_IsString(v) || cbtime_parse(v->valuestring, &ms) != CB_OK)
        return cJSON_CreateNull();
    return cJSON_CreateString(cbtime_format_date(ms, 0, buf));
}

static cJSON *decode_labels(const cJSON *labels)
{
    cJSON *arr = cJSON_CreateArray();
    const cJSON *l;
    cJSON_ArrayForEach(l, labels) if (jstr(l, "name") && jstr(l, "name")[0])
        cJSON_AddItemToArray(arr, cJSON_CreateString(jstr(l, "name")));
    return arr;
}

/* The name of id in l; an unknown id reloads l (at most once per public call: *reloaded). */
static const char *name_of(struct connector *c, const struct named_list *l, int *reloaded,
                           enum cb_status (*load)(struct connector *, struct strbuf *),
                           const char *id)
{
    const struct named *hit = named_by_id(l, id);
    struct strbuf ignore = STRBUF_INIT;
    if (!hit && id && !*reloaded) {
        *reloaded = 1;
        if (load(c, &ignore) != CB_OK)
            log_warn("%s", ignore.buf);
        hit = named_by_id(l, id);
    }
    strbuf_release(&ignore);
    return hit ? hit->name : NULL;
}

/* The name of a list id (a list made after the ping is found by a reload). */
static const char *list_name(struct connector *c, const char *id)
{
    return name_of(c, &c->lists, &c->lists_reloaded, load_lists, id);
}

/* A card's first member as a person (JSON null when it has none). */
static cJSON *decode_member(struct connector *c, const cJSON *ids)
{
    const char *id = cJSON_GetStringValue(cJSON_GetArrayItem(ids, 0));
    if (!id)
        return cJSON_CreateNull();
    return person_to_json(id, name_of(c, &c->members, &c->members_reloaded, load_members, id),
                          NULL);
}

static cJSON *decode_desc(const char *text)
{
    char *md = richtext_md_normalize(text);
    cJSON *v = text_or_null(md);
    free(md);
    return v;
}

static void decode_fields(struct connector *c, const cJSON *card, const char *text, cJSON *out)
{
    const cJSON *closed = cJSON_GetObjectItemCaseSensitive(card, "closed");
    if (c->need & F_NAME)
        cJSON_AddItemToObject(out, "name", text_or_null(jstr(card, "name")));
    if (c->need & F_DESC)
        cJSON_AddItemToObject(out, "desc", decode_desc(text));
    if (c->need & F_LIST)
        cJSON_AddItemToObject(out, "list", text_or_null(list_name(c, jstr(card, "idList"))));
    if (c->need & F_DUE)
        cJSON_AddItemToObject(out, "due",
                              decode_due(cJSON_GetObjectItemCaseSensitive(card, "due")));
    if (c->need & F_LABELS)
        cJSON_AddItemToObject(out, "labels",
                              decode_labels(cJSON_GetObjectItemCaseSensitive(card, "labels")));
    if (c->need & F_CLOSED)
        cJSON_AddBoolToObject(out, "closed", cJSON_IsTrue(closed));
    if (c->need & F_MEMBER) {
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(card, "idMembers");
        cJSON_AddItemToObject(out, "member", decode_member(c, ids));
        if (cJSON_IsArray(ids)) /* all of them: a write of "member" keeps the others */
            cJSON_AddItemToObject(out, MEMBERS_FIELD, cJSON_Duplicate(ids, 1));
    }
}

/* 1 when a card has one of the scope's labels (if any) and sits in one of its lists (if any). */
static int card_in_scope(struct connector *c, const cJSON *card)
{
    int ok = !c->scope_labels.n;
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(card, "labels")) ok =
        ok || (jstr(l, "name") && named_by_name(&c->scope_labels, jstr(l, "name")));
    if (!ok || !c->scope_lists.n)
        return ok;
    const char *list = list_name(c, jstr(card, "idList"));
    return list && named_by_name(&c->scope_lists, list) != NULL;
}

/* Fills r from one card JSON; remembers its marker for later description writes. */
static enum cb_status card_to_record(struct connector *c, const cJSON *card, struct record *r,
                                     struct strbuf *err)
{
    const char *id = jstr(card, "id"), *sl = jstr(card, "shortLink");
    const char *act = jstr(card, "dateLastActivity");
    int64_t ms = 0;
    if (!id || !sl || (act && cbtime_parse(act, &ms) != CB_OK)) {
        strbuf_setf(err,
                    "cannot read trello card '%s': missing id, shortLink or a valid "
                    "dateLastActivity",
                    id ? id : "?");
        return CB_ERR_PARSE;
    }
    memset(r, 0, sizeof(*r));
    r->id = xstrdup(id);
    r->key = xstrdup(sl);
    r->url = jstr(card, "shortUrl") ? xstrdup(jstr(card, "shortUrl")) : NULL;
    r->modified_ms = act ? ms : id_time_ms(id);
    r->created_ms = id_time_ms(id); /* a card's id begins with its creation time; its creator is
                                     * only in the board's actions, not worth a request per card */
    r->gone = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(card, "closed"));
    r->out_of_scope = !card_in_scope(c, card);
    char *text = desc_split(jstr(card, "desc") ? jstr(card, "desc") : "", &r->marker);
    named_set(&c->markers, id, r->marker ? r->marker : ""); /* "": known to have none */
    r->fields = cJSON_CreateObject();
    decode_fields(c, card, text, r->fields);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(card, "badges"), "comments");
    if (cJSON_IsNumber(n)) /* spares the comment sync a request per card without comments */
        cJSON_AddNumberToObject(r->fields, COMMENT_COUNT_FIELD, n->valuedouble);
    free(text);
    return CB_OK;
}

/* --- reading cards ------------------------------------------------------------------------- */

/* Decodes the cards of arr (only those in only, when not NULL) into out. */
static enum cb_status cards_to_records(struct connector *c, const cJSON *arr,
                                       const struct strlist *only, struct record_list *out,
                                       struct strbuf *err)
{
    const cJSON *card;
    cJSON_ArrayForEach(card, arr)
    {
        if (only && (!jstr(card, "id") || !strlist_has(only, jstr(card, "id"))))
            continue;
        struct record r;
        enum cb_status st = card_to_record(c, card, &r, err);
        if (st != CB_OK)
            return st;
        record_list_push(out, &r);
    }
    return CB_OK;
}

/* Every card of the board, archived ones included (one request). */
static enum cb_status snapshot(struct connector *c, const char *fields, const struct strlist *only,
                               struct record_list *out, struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_addf(&path, "/boards/%s/cards/all?fields=%s", c->board_id, fields);
    cJSON *arr;
    enum cb_status st = trello_call(c, "GET", path.buf, NULL, 0, &arr, err,
                                    "read the cards of trello board '%s'", c->board_name);
    strbuf_release(&path);
    if (st == CB_OK && !cJSON_IsArray(arr)) {
        strbuf_setf(err, "cannot read the cards of trello board '%s': the answer is not a list",
                    c->board_name);
        st = CB_ERR_PARSE;
    }
    if (st == CB_OK)
        st = cards_to_records(c, arr, only, out, err);
    cJSON_Delete(arr);
    return st;
}

/* One card by id; a card that is gone is simply not added. */
static enum cb_status get_card(struct connector *c, const char *id, struct record_list *out,
                               struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_adds(&path, "/cards/");
    (void)strbuf_add_urlencoded(&path, id);
    (void)strbuf_addf(&path, "?fields=%s", c->fields_param);
    cJSON *card;
    enum cb_status st =
        trello_call(c, "GET", path.buf, NULL, 0, &card, err, "read trello card '%s'", id);
    strbuf_release(&path);
    if (st == CB_ERR_NOTFOUND)
        return CB_OK;
    if (st == CB_OK) {
        struct record r;
        st = card_to_record(c, card, &r, err);
        if (st == CB_OK)
            record_list_push(out, &r);
    }
    cJSON_Delete(card);
    return st;
}

/* The current state of the cards in ids: one by one while the pacers let each read through at
 * once, else from one snapshot (one request, however many cards). */
static enum cb_status fetch_cards(struct connector *c, const struct strlist *ids,
                                  struct record_list *out, struct strbuf *err)
{
    double token = pace_available(c->per_token), key = pace_available(c->per_key);
    if (ids->n > 1 && (double)ids->n > (token < key ? token : key))
        return snapshot(c, c->fields_param, ids, out, err);
    enum cb_status st = CB_OK;
    for (size_t i = 0; i < ids->n && st == CB_OK; i++)
        st = get_card(c, ids->v[i], out, err);
    return st;
}

static int cmp_modified(const void *a, const void *b)
{
    const struct record *x = a, *y = b;
    return (x->modified_ms > y->modified_ms) - (x->modified_ms < y->modified_ms);
}

/* Hands recs to fn oldest first, PAGE_RECORDS at a time. */
static enum cb_status deliver(struct record_list *recs, record_page_fn fn, void *arg)
{
    if (recs->n > 1)
        qsort(recs->v, recs->n, sizeof(*recs->v), cmp_modified);
    enum cb_status st = CB_OK;
    for (size_t i = 0; i < recs->n && st == CB_OK; i += PAGE_RECORDS)
        st = fn(arg, recs->v + i, recs->n - i < PAGE_RECORDS ? recs->n - i : PAGE_RECORDS);
    return st;
}

/* --- the actions feed ---------------------------------------------------------------------- */

static void feed_path(const struct connector *c, const char *since, const char *before,
                      struct strbuf *path)
{
    strbuf_reset(path);
    (void)strbuf_addf(path,
                      "/boards/%s/actions?filter=" FEED_TYPES
                      "&fields=date,data,idMemberCreator&memberCreator=false&limit=%d&since=%s",
                      c->board_id, FEED_LIMIT, since);
    if (before)
        (void)strbuf_addf(path, "&before=%s", before);
}

/* A card with activity in the feed's window, as the walk back (newest first) found it. */
struct touched {
    char *card, *newest; /* newest: its newest action in the window */
    int64_t newest_ms;   /* and that action's date */
    int known;           /* the walk reached the newest action an earlier listing saw */
    int fresh;           /* it has actions no earlier listing saw... */
    int by_others;       /* ...and one of them is not crmbridge's own (or its author unknown) */
};

struct touched_list {
    struct touched *v;
    size_t n;
};

static struct touched *touched_find(const struct touched_list *l, const char *card)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].card, card))
            return &l->v[i];
    return NULL;
}

static void touched_clear(struct touched_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].card);
        free(l->v[i].newest);
    }
    free(l->v);
}

/* Notes action a (on card id) in tl: new to the listings so far, or the one they saw last. */
static void touched_add(struct connector *c, struct touched_list *tl, const char *id,
                        const cJSON *a)
{
    const char *aid = jstr(a, "id");
    struct touched *t = touched_find(tl, id);
    if (!t) {
        tl->v = xrealloc(tl->v, (tl->n + 1) * sizeof(*tl->v));
        t = &tl->v[tl->n++];
        memset(t, 0, sizeof(*t));
        t->card = xstrdup(id);
        t->newest = aid ? xstrdup(aid) : NULL;
        if (!jstr(a, "date") || cbtime_parse(jstr(a, "date"), &t->newest_ms) != CB_OK)
            t->newest_ms = INT64_MAX; /* never taken for an echo */
    }
    if (t->known)
        return;
    const struct seen *s = seen_find(&c->seen, id);
    if (s && s->action && str_eq(aid, s->action)) {
        t->known = 1;
        return;
    }
    t->fresh = 1;
    t->by_others |= !c->me || !str_eq(jstr(a, "idMemberCreator"), c->me);
}

/* Notes the actions of one feed page in tl; *oldest gets the last (oldest) action id. */
static int feed_page_scan(struct connector *c, const cJSON *page, struct touched_list *tl,
                          char **oldest)
{
    const cJSON *a;
    int n = 0;
    cJSON_ArrayForEach(a, page)
    {
        const cJSON *card =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a, "data"), "card");
        if (jstr(card, "id"))
            touched_add(c, tl, jstr(card, "id"), a);
        if (jstr(a, "id")) {
            free(*oldest);
            *oldest = xstrdup(jstr(a, "id"));
        }
        n++;
    }
    return n;
}

/* Collects the cards with activity at or after since_ms, walking the feed back page by page;
 * *gap is set when the walk would take more than FEED_MAX_PAGES pages. */
static enum cb_status feed_cards(struct connector *c, int64_t since_ms, struct touched_list *tl,
                                 int *gap, struct strbuf *err)
{
    char since[CBTIME_BUFSZ], *oldest = NULL;
    cbtime_format_iso_ms(since_ms, 0, since);
    /* "2026-01-02T10:11:12.345+0000" -> Trello's "...12.345Z" */
    char *plus = strchr(since + 19, '+');
    if (plus)
        strcpy(plus, "Z");
    struct strbuf path = STRBUF_INIT;
    enum cb_status st = CB_OK;
    *gap = 1;
    for (int page = 0; page < FEED_MAX_PAGES && st == CB_OK; page++) {
        feed_path(c, since, oldest, &path);
        cJSON *arr;
        st = trello_call(c, "GET", path.buf, NULL, 0, &arr, err,
                         "read the activity of trello board '%s'", c->board_name);
        int n = st == CB_OK ? feed_page_scan(c, arr, tl, &oldest) : 0;
        cJSON_Delete(arr);
        if (st == CB_OK && n < FEED_LIMIT) {
            *gap = 0;
            break;
        }
    }
    free(oldest);
    strbuf_release(&path);
    return st;
}

static void seen_saw(struct seen *s, const char *action)
{
    free(s->action);
    s->action = action ? xstrdup(action) : NULL;
}

/* Hands out again what an earlier listing or this connector's write gave for t's card when
 * nothing since calls for a read: no new action, or only the echoes of those writes (actions of
 * our member, none newer than the write's answer; our member acting through another pair or
 * process is read). Returns 0 when the card must be read. */
static int reuse_seen(struct connector *c, const struct touched *t, struct record_list *recs)
{
    struct seen *s = seen_find(&c->seen, t->card);
    if (t->by_others || !s)
        return 0;
    if (t->fresh) {
        if (!s->written || (s->rec.id && t->newest_ms > s->rec.modified_ms))
            return 0;
        s->written = 0;
        seen_saw(s, t->newest);
    }
    if (s->rec.id) {
        struct record r;
        record_copy(&r, &s->rec);
        record_list_push(recs, &r);
    }
    return 1;
}

/* Forgets the cards that left the window (a write's answer waits for its echo). */
static void seen_prune(struct connector *c, const struct touched_list *tl)
{
    for (size_t i = c->seen.n; i-- > 0;)
        if (!c->seen.v[i].written && !touched_find(tl, c->seen.v[i].card))
            seen_drop(&c->seen, i);
}

static const struct record *find_rec(const struct record_list *l, size_t from, const char *id)
{
    for (size_t i = from; i < l->n; i++)
        if (str_eq(l->v[i].id, id))
            return &l->v[i];
    return NULL;
}

/* The cards of the window into recs: read when a person (or anyone but crmbridge) acted on them
 * since the last listing, else as that listing or our write left them. What is read is kept for
 * the next listing; a new process knows nothing and reads every card of the window. */
static enum cb_status read_touched(struct connector *c, const struct touched_list *tl,
                                   struct record_list *recs, struct strbuf *err)
{
    struct strlist ids = {0};
    for (size_t i = 0; i < tl->n; i++)
        if (!reuse_seen(c, &tl->v[i], recs))
            if (!strlist_has(&ids, tl->v[i].card))
                strlist_push(&ids, tl->v[i].card);
    seen_prune(c, tl);
    size_t from = recs->n;
    enum cb_status st = fetch_cards(c, &ids, recs, err);
    for (size_t i = 0; st == CB_OK && i < ids.n; i++) {
        struct seen *s = seen_get(&c->seen, ids.v[i]);
        seen_saw(s, touched_find(tl, ids.v[i])->newest);
        seen_keep(s, find_rec(recs, from, ids.v[i]), 0);
    }
    strlist_clear(&ids);
    return st;
}

static enum cb_status trello_list_changed(struct connector *c, int64_t since_ms, record_page_fn fn,
                                          void *arg, struct strbuf *err)
{
    enum cb_status st = ensure_ready(c, err);
    if (st != CB_OK)
        return st;
    struct touched_list tl = {0};
    struct record_list recs = {0};
    int gap = 1;
    if (since_ms > 0)
        st = feed_cards(c, since_ms, &tl, &gap, err);
    if (st == CB_OK && gap) {
        if (since_ms > 0)
            log_info("trello board '%s': more activity since the cursor than %d feed pages, "
                     "reading every card",
                     c->board_name, FEED_MAX_PAGES);
        seen_clear(&c->seen); /* the snapshot tells no action: the next listing reads */
        st = snapshot(c, c->fields_param, NULL, &recs, err);
    } else if (st == CB_OK) {
        st = read_touched(c, &tl, &recs, err);
    }
    if (st == CB_OK)
        st = deliver(&recs, fn, arg);
    record_list_release(&recs);
    touched_clear(&tl);
    return st;
}

static enum cb_status trello_get_many(struct connector *c, const char *const *ids, size_t n,
                                      struct record_list *out, struct strbuf *err)
{
    enum cb_status st = ensure_ready(c, err);
    struct strlist set = {0};
    for (size_t i = 0; i < n; i++)
        if (!strlist_has(&set, ids[i]))
            strlist_push(&set, ids[i]);
    if (st == CB_OK)
        st = fetch_cards(c, &set, out, err);
    strlist_clear(&set);
    return st;
}

static enum cb_status trello_find_marker(struct connector *c, const char *marker, int64_t since_ms,
                                         struct record *out, struct strbuf *err)
{
    enum cb_status st = ensure_ready(c, err);
    struct record_list all = {0};
    if (st == CB_OK)
        st = snapshot(c, c->fields_param, NULL, &all, err);
    int found = 0;
    for (size_t i = 0; st == CB_OK && i < all.n && !found; i++) {
        struct record *r = &all.v[i];
        if (!str_eq(r->marker, marker) || id_time_ms(r->id) + MARKER_SLACK_MS < since_ms)
            continue;
        *out = *r;
        memset(r, 0, sizeof(*r));
        found = 1;
    }
    record_list_release(&all);
    if (st == CB_OK && !found) {
        strbuf_setf(err, "no trello card on board '%s' carries marker '%s'", c->board_name, marker);
        st = CB_ERR_NOTFOUND;
    }
    return st;
}

/* --- encoding writes ----------------------------------------------------------------------- */

static enum cb_status add_label(struct connector *c, const char *name, const char **id,
                                struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_addf(&path, "/boards/%s/labels", c->board_id);
    cJSON *body = cJSON_CreateObject(), *lab;
    cJSON_AddStringToObject(body, "name", name);
    cJSON_AddNullToObject(body, "color");
    enum cb_status st = trello_call(c, "POST", path.buf, body, 1, &lab, err,
                                    "add label '%s' to trello board '%s'", name, c->board_name);
    if (st == CB_OK && jstr(lab, "id")) {
        named_push(&c->labels, jstr(lab, "id"), name, 0);
        *id = c->labels.v[c->labels.n - 1].id;
    } else if (st == CB_OK) {
        strbuf_setf(err, "cannot add label '%s' to trello board '%s': no id in the answer", name,
                    c->board_name);
        st = CB_ERR_PARSE;
    }
    cJSON_Delete(lab);
    cJSON_Delete(body);
    strbuf_release(&path);
    return st;
}

/* Label names -> "id1,id2"; names the board lacks are added to it as colourless labels. */
static enum cb_status encode_labels(struct connector *c, const cJSON *v, cJSON *body,
                                    struct strbuf *err)
{
    struct strbuf ids = STRBUF_INIT;
    const cJSON *n;
    enum cb_status st = CB_OK;
    cJSON_ArrayForEach(n, v)
    {
        if (!cJSON_IsString(n) || !n->valuestring[0])
            continue;
        const struct named *l = named_by_name(&c->labels, n->valuestring);
        const char *id = l ? l->id : NULL;
        if (!id && (st = add_label(c, n->valuestring, &id, err)) != CB_OK)
            break;
        (void)strbuf_addf(&ids, "%s%s", ids.len ? "," : "", id);
    }
    if (st == CB_OK)
        cJSON_AddStringToObject(body, "idLabels", ids.buf);
    strbuf_release(&ids);
    return st;
}

/* A status is a list name. A new card whose status names no list of the board goes to the
 * side's `list` (so a board with "Inbox" takes new cases mapped to "To Do"); a move to a list
 * the board lacks fails. */
static enum cb_status encode_list(struct connector *c, const cJSON *v, int creating, cJSON *body,
                                  struct strbuf *err)
{
    const struct named *l = cJSON_IsString(v) ? named_by_name(&c->lists, v->valuestring) : NULL;
    if (!v || cJSON_IsNull(v)) { /* no status: a new card goes to the side's list; one stays put */
        if (!creating)
            return CB_OK;
        l = named_by_id(&c->lists, c->new_list);
    }
    if (!l && creating && cJSON_IsString(v)) {
        l = named_by_id(&c->lists, c->new_list);
        log_info("trello board '%s' has no list '%s': the new card goes to '%s'", c->board_name,
                 v->valuestring, l->name);
    }
    if (!l) {
        strbuf_setf(err, "trello board '%s' has no list '%s' (it has: ", c->board_name,
                    cJSON_IsString(v) ? v->valuestring : "");
        named_join(&c->lists, err);
        (void)strbuf_addch(err, ')');
        return CB_ERR_FINAL;
    }
    cJSON_AddStringToObject(body, "idList", l->id);
    return CB_OK;
}

/* "YYYY-MM-DD" is due at noon UTC, which is the same calendar day in every zone from
 * UTC-11 to UTC+11; a full date-time is passed on. */
static enum cb_status encode_due(const cJSON *v, cJSON *body, struct strbuf *err)
{
    int64_t ms;
    char buf[CBTIME_BUFSZ + 16];
    if (cJSON_IsNull(v)) {
        cJSON_AddNullToObject(body, "due");
        return CB_OK;
    }
    if (!cJSON_IsString(v) || cbtime_parse(v->valuestring, &ms) != CB_OK) {
        strbuf_setf(err, "field 'due' must be a date (YYYY-MM-DD)");
        return CB_ERR_FINAL;
    }
    if (strlen(v->valuestring) == 10)
        snprintf(buf, sizeof(buf), "%sT12:00:00.000Z", v->valuestring);
    else
        cbtime_format_iso(ms, 0, buf);
    cJSON_AddStringToObject(body, "due", buf);
    return CB_OK;
}

static enum cb_status encode_text(const char *name, const cJSON *v, int may_be_empty, cJSON *body,
                                  struct strbuf *err)
{
    int empty = cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[0]);
    if ((!empty && !cJSON_IsString(v)) || (empty && !may_be_empty)) {
        strbuf_setf(err, "field '%s' must be %stext", name, may_be_empty ? "" : "non-empty ");
        return CB_ERR_FINAL;
    }
    cJSON_AddStringToObject(body, name, empty ? "" : v->valuestring);
    return CB_OK;
}

static enum cb_status encode_one(struct connector *c, const char *name, const cJSON *v,
                                 int creating, cJSON *body, struct strbuf *err)
{
    if (!strcmp(name, "name"))
        return encode_text("name", v, 0, body, err);
    if (!strcmp(name, "desc"))
        return encode_text("desc", v, 1, body, err);
    if (!strcmp(name, "list"))
        return encode_list(c, v, creating, body, err);
    if (!strcmp(name, "due"))
        return encode_due(v, body, err);
    if (!strcmp(name, "labels") && (cJSON_IsArray(v) || cJSON_IsNull(v)))
        return encode_labels(c, v, body, err);
    if (!strcmp(name, "closed") && cJSON_IsBool(v)) {
        cJSON_AddBoolToObject(body, "closed", cJSON_IsTrue(v));
        return CB_OK;
    }
    if (!strcmp(name, "member") && (cJSON_IsString(v) || cJSON_IsNull(v))) {
        /* that one member, or none ("" empties idMembers) */
        cJSON_AddStringToObject(body, "idMembers", cJSON_IsString(v) ? v->valuestring : "");
        return CB_OK;
    }
    int known = !strcmp(name, "labels") || !strcmp(name, "closed") || !strcmp(name, "member");
    strbuf_setf(err, "%s '%s' on trello cards",
                known ? "wrong type of value for field" : "there is no field", name);
    return CB_ERR_FINAL;
}

static enum cb_status encode_fields(struct connector *c, const cJSON *fields, int creating,
                                    cJSON *body, struct strbuf *err)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, fields)
    {
        if (v->string[0] == '$')
            continue;
        enum cb_status st = encode_one(c, v->string, v, creating, body, err);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

/* Puts the marker (if any) at the end of the description in body, checking Trello's limit. */
static enum cb_status seal_desc(cJSON *body, const char *marker, int always, struct strbuf *err)
{
    const char *text = jstr(body, "desc");
    if (!text && !always)
        return CB_OK;
    char *desc = desc_join(text, marker);
    size_t len = strlen(desc);
    cJSON_DeleteItemFromObjectCaseSensitive(body, "desc");
    cJSON_AddStringToObject(body, "desc", desc);
    free(desc);
    if (len > DESC_MAX) {
        strbuf_setf(err, "the description is %zu characters, over trello's %d", len, DESC_MAX);
        return CB_ERR_FINAL;
    }
    return CB_OK;
}

/* --- writing ------------------------------------------------------------------------------- */

/* The answer to our write is the card's state: its echo in the feed hands it out, unread. */
static enum cb_status fill_written(struct connector *c, struct write_op *op, const cJSON *card)
{
    struct record r;
    enum cb_status st = card_to_record(c, card, &r, &op->err);
    if (st != CB_OK)
        return st;
    record_release(&op->rec);
    op->rec = r;
    seen_keep(seen_get(&c->seen, r.id), &r, 1);
    return CB_OK;
}

/* After a write that may have half happened: the next listing reads the card. */
static void seen_forget(struct connector *c, const char *id)
{
    struct seen *s = id ? seen_find(&c->seen, id) : NULL;
    if (s)
        seen_keep(s, NULL, 0);
}

/* After our archive or delete of card id: its echo is ours, with no state to hand out. */
static void seen_wrote(struct connector *c, const char *id, enum cb_status st)
{
    if (st == CB_OK)
        seen_keep(seen_get(&c->seen, id), NULL, 1);
    else
        seen_forget(c, id);
}

/* After our new comment a on card id: what the card's record holds still stands, but for its
 * activity (now the comment's) and its comment count. */
static void seen_commented(struct connector *c, const char *id, const cJSON *a)
{
    struct seen *s = seen_get(&c->seen, id);
    int64_t ms = 0;
    s->written = 1;
    if (!s->rec.id)
        return;
    if (!jstr(a, "date") || cbtime_parse(jstr(a, "date"), &ms) != CB_OK) {
        seen_keep(s, NULL, 0);
        return;
    }
    if (ms > s->rec.modified_ms)
        s->rec.modified_ms = ms;
    cJSON_DeleteItemFromObjectCaseSensitive(s->rec.fields, COMMENT_COUNT_FIELD);
}

static enum cb_status put_card(struct connector *c, const char *id, const cJSON *body, cJSON **card,
                               struct strbuf *err)
{
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_adds(&path, "/cards/");
    (void)strbuf_add_urlencoded(&path, id);
    (void)strbuf_addf(&path, "?fields=%s", c->fields_param);
    enum cb_status st =
        trello_call(c, "PUT", path.buf, body, 0, card, err, "update trello card '%s'", id);
    strbuf_release(&path);
    return st;
}

static enum cb_status create_one(struct connector *c, struct write_op *op)
{
    cJSON *body = cJSON_CreateObject(), *card = NULL;
    enum cb_status st = encode_fields(c, op->fields, 1, body, &op->err);
    if (!cJSON_GetObjectItemCaseSensitive(body, "idList"))
        cJSON_AddStringToObject(body, "idList", c->new_list);
    cJSON_AddStringToObject(body, "pos", "bottom");
    if (op->link_url && !strncmp(op->link_url, "http", 4))
        cJSON_AddStringToObject(body, "urlSource", op->link_url);
    /* archiving is not part of a create: it follows in a second request */
    cJSON *closed = cJSON_DetachItemFromObjectCaseSensitive(body, "closed");
    if (st == CB_OK)
        st = seal_desc(body, op->marker, 1, &op->err);
    if (st == CB_OK)
        st = trello_call(c, "POST", "/cards", body, 1, &card, &op->err,
                         "create a card on trello board '%s'", c->board_name);
    if (st == CB_OK)
        st = fill_written(c, op, card);
    if (st == CB_OK && cJSON_IsTrue(closed)) {
        cJSON *arch = cJSON_CreateObject(), *after = NULL;
        cJSON_AddBoolToObject(arch, "closed", 1);
        st = put_card(c, op->rec.id, arch, &after, &op->err);
        if (st == CB_OK)
            st = fill_written(c, op, after);
        cJSON_Delete(after);
        cJSON_Delete(arch);
    }
    cJSON_Delete(closed);
    cJSON_Delete(card);
    cJSON_Delete(body);
    return st;
}

/* The marker of a card, from the cards read so far or else from the card itself. */
static enum cb_status marker_of(struct connector *c, const char *id, char **marker,
                                struct strbuf *err)
{
    const struct named *m = named_by_id(&c->markers, id);
    *marker = NULL;
    if (m) {
        *marker = m->name[0] ? xstrdup(m->name) : NULL;
        return CB_OK;
    }
    struct record_list got = {0};
    enum cb_status st = get_card(c, id, &got, err);
    if (st == CB_OK && got.n && got.v[0].marker)
        *marker = xstrdup(got.v[0].marker);
    record_list_release(&got);
    return st;
}

/* A new "member" replaces the card's first member only: the others the card had when this
 * cycle read it stay (Trello's idMembers replaces the whole list). */
static void keep_other_members(const struct write_op *op, cJSON *body)
{
    const char *now = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "idMembers"));
    const cJSON *had =
        op->current ? cJSON_GetObjectItemCaseSensitive(op->current->fields, MEMBERS_FIELD) : NULL;
    if (!now || !now[0] || cJSON_GetArraySize(had) < 2)
        return;
    struct strbuf ids = STRBUF_INIT;
    (void)strbuf_adds(&ids, now);
    const cJSON *m;
    int first = 1;
    cJSON_ArrayForEach(m, had)
    {
        if (!first && cJSON_IsString(m) && strcmp(m->valuestring, now) != 0)
            (void)strbuf_addf(&ids, ",%s", m->valuestring);
        first = 0;
    }
    cJSON_ReplaceItemInObjectCaseSensitive(body, "idMembers", cJSON_CreateString(ids.buf));
    strbuf_release(&ids);
}

static enum cb_status update_one(struct connector *c, struct write_op *op)
{
    cJSON *body = cJSON_CreateObject(), *card = NULL;
    char *marker = NULL;
    enum cb_status st = encode_fields(c, op->fields, 0, body, &op->err);
    if (st == CB_OK)
        keep_other_members(op, body);
    /* a new description keeps the card's marker, so find_marker still knows the card */
    if (st == CB_OK && cJSON_GetObjectItemCaseSensitive(body, "desc"))
        st = marker_of(c, op->id, &marker, &op->err);
    if (st == CB_OK)
        st = seal_desc(body, marker, 0, &op->err);
    if (st == CB_OK)
        st = put_card(c, op->id, body, &card, &op->err);
    if (st == CB_OK)
        st = fill_written(c, op, card);
    free(marker);
    cJSON_Delete(card);
    cJSON_Delete(body);
    return st;
}

/* Trello refused the member of a write ("invalid value for idMembers"): says who and where. */
static void name_refused_member(const struct connector *c, struct write_op *op)
{
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(op->fields, "member"));
    const char *sep = strstr(op->err.buf, ": http 400");
    if (!id || !sep || !strstr(sep, "idMembers"))
        return;
    size_t at = (size_t)(sep - op->err.buf);
    char *was = strbuf_detach(&op->err);
    strbuf_setf(&op->err, "%.*s: member '%s' is not a member of trello board '%s' (%s)", (int)at,
                was, id, c->board_name, was + at + 2);
    free(was);
}

static enum cb_status trello_write(struct connector *c, struct write_op *ops, size_t n,
                                   struct strbuf *err)
{
    enum cb_status st = ensure_ready(c, err);
    for (size_t i = 0; i < n; i++) {
        struct write_op *op = &ops[i];
        strbuf_reset(&op->err);
        if (st != CB_OK) {
            op->st = st;
            strbuf_setf(&op->err, "%s", err->buf);
            continue;
        }
        op->st = op->id ? update_one(c, op) : create_one(c, op);
        if (op->st != CB_OK) /* it may have happened all the same */
            seen_forget(c, op->id ? op->id : op->rec.id);
        if (op->st == CB_ERR_FINAL)
            name_refused_member(c, op);
    }
    return st;
}

/* --- people -------------------------------------------------------------------------------- */

/* The board's members, each once: Trello lists them all in one answer. */
static enum cb_status trello_list_users(struct connector *c, struct person_list *out,
                                        struct strbuf *err)
{
    enum cb_status st = ensure_ready(c, err);
    if (st == CB_OK)
        st = load_members(c, err);
    for (size_t i = 0; st == CB_OK && i < c->members.n; i++)
        person_list_add(out, c->members.v[i].id, c->members.v[i].name, NULL);
    return st;
}

static int trello_person_field(const struct connector *c, const char *field)
{
    (void)c;
    return !strcmp(field, "member");
}

/* --- comments ------------------------------------------------------------------------------ */

/* A commentCard action as a comment. The copies crmbridge writes end with the same hidden
 * markdown line as its descriptions ("[//]: # (crmbridge:...)"): Trello renders no trace of it. */
static enum cb_status action_to_comment(const cJSON *a, struct comment *out)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(a, "data");
    const char *id = jstr(a, "id"), *date = jstr(a, "date"), *edited = jstr(data, "dateLastEdited");
    memset(out, 0, sizeof(*out));
    if (!id || !date || cbtime_parse(date, &out->created_ms) != CB_OK)
        return CB_ERR_PARSE;
    if (!edited || cbtime_parse(edited, &out->updated_ms) != CB_OK)
        out->updated_ms = out->created_ms;
    out->id = xstrdup(id);
    const char *who = jstr(cJSON_GetObjectItemCaseSensitive(a, "memberCreator"), "fullName");
    out->author = who ? xstrdup(who) : NULL;
    out->body = desc_split(jstr(data, "text") ? jstr(data, "text") : "", &out->marker);
    out->by_us = out->marker != NULL;
    return CB_OK;
}

static int cmp_comment(const void *a, const void *b)
{
    const struct comment *x = a, *y = b;
    return (x->created_ms > y->created_ms) - (x->created_ms < y->created_ms);
}

/* A card's feed pages by 50, newest first, and ends after page 19: its last 1,000 comments. */
static enum cb_status trello_list_comments(struct connector *c, const char *record_id,
                                           struct comment_list *out, struct strbuf *err)
{
    enum cb_status st = CB_OK;
    for (int page = 0, more = 1; st == CB_OK && more && page < CARD_FEED_PAGES; page++) {
        struct strbuf path = STRBUF_INIT;
        (void)strbuf_adds(&path, "/cards/");
        (void)strbuf_add_urlencoded(&path, record_id);
        (void)strbuf_addf(&path, "/actions?filter=commentCard&page=%d", page);
        cJSON *arr = NULL;
        st = trello_call(c, "GET", path.buf, NULL, 0, &arr, err,
                         "list the comments of trello card '%s'", record_id);
        strbuf_release(&path);
        const cJSON *a;
        cJSON_ArrayForEach(a, arr)
        {
            struct comment x;
            if (action_to_comment(a, &x) == CB_OK)
                comment_list_push(out, &x);
        }
        more = cJSON_GetArraySize(arr) == CARD_FEED_PAGE;
        cJSON_Delete(arr);
    }
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), cmp_comment);
    return st;
}

static enum cb_status trello_write_comment(struct connector *c, const char *record_id,
                                           struct comment_op *op, struct strbuf *err)
{
    char *text = desc_join(op->body, op->marker);
    if (strlen(text) > DESC_MAX) {
        strbuf_setf(err, "cannot comment on trello card '%s': %zu characters, over trello's %d",
                    record_id, strlen(text), DESC_MAX);
        free(text);
        return CB_ERR_FINAL;
    }
    cJSON *body = cJSON_CreateObject(), *resp = NULL;
    cJSON_AddStringToObject(body, "text", text);
    struct strbuf path = STRBUF_INIT;
    enum cb_status st;
    if (op->id) {
        (void)strbuf_adds(&path, "/actions/");
        (void)strbuf_add_urlencoded(&path, op->id);
        st = trello_call(c, "PUT", path.buf, body, 0, &resp, err,
                         "update comment '%s' on trello card '%s'", op->id, record_id);
    } else {
        (void)strbuf_adds(&path, "/cards/");
        (void)strbuf_add_urlencoded(&path, record_id);
        (void)strbuf_adds(&path, "/actions/comments");
        st = trello_call(c, "POST", path.buf, body, 1, &resp, err, "comment on trello card '%s'",
                         record_id);
        if (st == CB_OK && jstr(resp, "id"))
            op->new_id = xstrdup(jstr(resp, "id"));
        if (st == CB_OK)
            seen_commented(c, record_id, resp);
    }
    cJSON_Delete(resp);
    cJSON_Delete(body);
    strbuf_release(&path);
    free(text);
    return st;
}

static int64_t trello_server_now(const struct connector *c)
{
    return http_server_now(c->http);
}

static void trello_budget(const struct connector *c, struct http_budget *out, unsigned long *paced)
{
    http_budget_get(c->http, out);
    *paced = c->per_token->waits + c->per_key->waits; /* of every connection sharing them */
}

/* A card's description reads back normalised (the hidden marker line taken out). */
static cJSON *trello_echo(const struct connector *c, const char *field, const cJSON *written)
{
    (void)c;
    if (strcmp(field, "desc") != 0 || !cJSON_IsString(written))
        return NULL;
    return decode_desc(written->valuestring);
}

/* Archiving a card is closing it: PUT closed=true, as the board's "Archive" button does. */
static enum cb_status trello_archive(struct connector *c, const char *id, struct strbuf *err)
{
    enum cb_status st = ensure_ready(c, err);
    cJSON *body = cJSON_CreateObject(), *out = NULL;
    cJSON_AddTrueToObject(body, "closed");
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_addf(&path, "/cards/%s", id);
    if (st == CB_OK)
        st = trello_call(c, "PUT", path.buf, body, 0, &out, err, "archive trello card '%s'", id);
    seen_wrote(c, id, st);
    cJSON_Delete(out);
    cJSON_Delete(body);
    strbuf_release(&path);
    return st;
}

static enum cb_status trello_remove(struct connector *c, const char *id, struct strbuf *err)
{
    enum cb_status st = ensure_ready(c, err);
    cJSON *out = NULL;
    struct strbuf path = STRBUF_INIT;
    (void)strbuf_addf(&path, "/cards/%s", id);
    if (st == CB_OK)
        st = trello_call(c, "DELETE", path.buf, NULL, 0, &out, err, "delete trello card '%s'", id);
    seen_wrote(c, id, st);
    cJSON_Delete(out);
    strbuf_release(&path);
    return st;
}

const struct connector_ops trello_ops = {
    .name = "trello",
    .check_config = trello_check_config,
    .open = trello_open,
    .close = trello_close,
    .ping = trello_ping,
    .list_changed = trello_list_changed,
    .get_many = trello_get_many,
    .write = trello_write,
    .find_marker = trello_find_marker,
    .list_comments = trello_list_comments,
    .write_comment = trello_write_comment,
    .max_batch_read = 1000, /* ids the pacers cannot let through at once cost one snapshot */
    .max_batch_write = 1,
    .write_reads_current = 1,
    .budget = trello_budget,
    .server_now = trello_server_now,
    .echo = trello_echo,
    .archive = trello_archive,
    .remove = trello_remove,
    .list_users = trello_list_users,
    .person_field = trello_person_field,
    .search_lag_ms = 0, /* find_marker reads the board, not a search index */
};
