#!/usr/bin/env python3
"""Jira Cloud (REST v3) simulator for crmbridge tests.

Implements the endpoints crmbridge uses, as strictly as the real service: Basic auth with an API
token, issues with ADF validation, a workflow that only moves through transitions, entity
properties, remote links, comments, changelog, /search/jql with a JQL subset, cursor paging,
eventual consistency, rate limits, admin webhooks (signed deliveries) and the project's
assignable users (/user/assignable/search: startAt/maxResults, pages capped at
user_page_cap; unknown user ids refused on write with Jira's ErrorCollection). It does not
implement dynamic (JWT) webhooks, attachments, worklogs or sprints.

Data Center mode (POST /_sim/config {"flavor":"datacenter"}; drops all issues): only /rest/api/2
answers (v3 is 404), only a personal access token as "Authorization: Bearer" signs in (Basic
is refused, as on Jira 11), /rest/api/2/search pages by startAt/maxResults/total, there is no
search/jql, approximate-count or bulkfetch, rich text (description, textarea fields, comment
bodies) is a wiki-markup string, and users are {"name": ...}. The seeded site, error texts and ADF checks live
in jira_data.py, the JQL subset in jira_jql.py.

Control interface (besides simbase's):
  POST   /_sim/seed        {"issues":[{"summary":..,"status":"Done","priority":"High",
                            "description":"text or ADF","labels":[..],"Customer":"Acme",
                            "assignee":"Li Wei","created_ms":..,"updated_ms":..,"properties":{}}]}
  POST   /_sim/edit        {"key","fields":{same shape as seed, "status" set directly,
                            "comment":"text" adds one},"user":"Mia Krystof"}
  POST   /_sim/transition  {"key","to":"Done","user"}   follows the workflow, one hop at a time
  POST   /_sim/comment_edit {"key","id","text","user"}  a person edits a comment
  GET    /_sim/issues      every live issue: fields as the API renders them (ADF included),
                            created_ms/updated_ms, properties, remotelinks, comments, changelog
  POST   /_sim/config      {"search_lag_ms","time_zone","rate":{"GET":n,..},"per_issue":bool,
                            "api_token","search_page_cap","flavor":"cloud|datacenter","pat"}
  DELETE /_sim/issue/KEY   delete as a human
  POST   /_sim/users       {"displayName","emailAddress","name","accountId","hideEmail"} adds an
                            assignable user (ids made up when absent); a reset restores the seed
  GET    /_sim/webhooks    {"registered":[admin webhooks], "sent":[{"url","status","event"}]}
Admin webhooks (/rest/webhooks/1.0/webhook) get signed jira:issue_* deliveries (hooksend.py).
"""

import base64
import copy
import datetime
import hashlib
import json
import math
import re
import time
from collections import deque

from jira_data import (API2, API3, BAD_ADF, DC_PAT, BOT_EMAIL, BOT_ID, BOT_TOKEN, CANNOT_SET, CATEGORIES,
                       DEFAULT_PRIORITY, FIELD_DEFS, FIELD_KIND, FIELD_NAME, INITIAL_STATUS,
                       ISSUE_TYPES, NOT_ADF, NOT_NAVIGABLE, PRIORITIES, PROJECT, RATE_LIMITED,
                       REF_KINDS, REMOVED_API, RESOLUTIONS, STATUSES, TIER_OPTIONS, TRANSITIONS,
                       UNBOUNDED, USERS, adf_problem, adf_text, bad, by_id, by_name_or_id, errors,
                       fmt_jira_time, iso_utc, plain_to_adf, user_by, zone)
from jira_data import SEED_USERS
from jira_jql import FIELD_ALIASES, JqlError, JqlQuery
from hooksend import Outbox
from simbase import Reply, Sim, serve


# --- rate limiting -------------------------------------------------------------------------

class Bucket:
    def __init__(self, rate):
        self.rate = float(rate)
        self.cap = max(1.0, self.rate)  # one second of burst
        self.tokens = self.cap
        self.t = time.monotonic()

    def take(self):
        now = time.monotonic()
        self.tokens = min(self.cap, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Window:
    def __init__(self, limit, seconds):
        self.limit, self.seconds, self.hits = limit, seconds, deque()

    def take(self):
        now = time.monotonic()
        while self.hits and self.hits[0] <= now - self.seconds:
            self.hits.popleft()
        if len(self.hits) >= self.limit:
            return self.hits[0] + self.seconds - now
        self.hits.append(now)
        return 0.0


# --- the simulator -----------------------------------------------------------------------------

def with_issue(fn):
    """Route decorator: resolves the {key} path part to a live issue, or answers 404."""

    def wrapped(self, req):
        iss = self.lookup(req.match.group(1))
        if iss is None:
            return self.missing()
        return fn(self, req, iss)

    return wrapped


# Comments embedded in an issue's "comment" field (search, bulkfetch, GET), with the true total.
# Jira caps them but neither the API digest nor the v3 spec says where: 20 is our assumption.
EMBEDDED_COMMENTS = 20


class JiraSim(Sim):
    name = "jira"

    def reset(self):
        self.issues = {}  # id -> issue
        self.keys = {}  # key -> id (including moved/deleted keys)
        self.index = {}  # id -> [(visible_at_ms, snapshot or None)]
        self.next_num = 1
        self.next_id = 10001
        self.next_seq = 20000  # comments, changelog, remote links
        self.search_lag_ms = 0
        self.tz_name = "Asia/Shanghai"
        self.api_token = BOT_TOKEN
        self.rate = {"GET": 100, "POST": 100, "PUT": 50, "DELETE": 50}
        self.per_issue = True
        self.page_cap = 100
        self.buckets = {}
        self.issue_windows = {}
        self.token_secret = hashlib.sha1(str(time.time()).encode()).hexdigest()[:16]
        self.flavor = "cloud"
        self.pat = DC_PAT
        self.webhooks = {}  # id -> admin webhook (name, url, events, filters, secret)
        self.outbox = Outbox()
        USERS[:] = [dict(u) for u in SEED_USERS]
        self.user_page_cap = 1000  # users per assignable-search page, as on the real sites

    def dc(self):
        return self.flavor == "datacenter"

    def rich(self, text):
        """A person's plain text as this flavor stores rich text."""
        if self.dc():
            return text or None
        return plain_to_adf(text) if text else None

    def dispatch(self, req):
        """Data Center serves the same resources under v2, and its own search."""
        if not self.dc() or not req.path.startswith(API2 + "/"):
            return super().dispatch(req)
        rest = req.path[len(API2):]
        if rest in ("/search/jql", "/search/approximate-count", "/issue/bulkfetch"):
            return self.not_found(req, 404)
        if rest == "/search":
            return self.r_search_dc(req) if req.method in ("GET", "POST") else \
                self.not_found(req, 405)
        orig, req.path = req.path, API3 + rest
        try:
            return super().dispatch(req)
        finally:
            req.path = orig

    def base(self):
        return getattr(self, "base_url", "http://127.0.0.1")

    # --- plumbing ------------------------------------------------------------------------------
    def api(self, method, template, fn):
        rx = re.sub(r"\{[^}]+\}", "([^/]+)", template)
        self.route(method, rx, fn)
        self.templates = getattr(self, "templates", [])
        self.templates.append((method, re.compile(rx), template))

    def setup_routes(self):
        a = self.api
        a("GET", API3 + "/myself", self.r_myself)
        a("GET", "/rest/api/2/serverInfo", self.r_server_info)
        a("GET", API3 + "/serverInfo", self.r_server_info)
        a("GET", API3 + "/field", self.r_fields)
        a("GET", API3 + "/project/{key}", self.r_project)
        a("GET", API3 + "/project/{key}/statuses", self.r_project_statuses)
        a("GET", API3 + "/priority", lambda r: Reply(200, [self.priority_obj(p["id"])
                                                             for p in PRIORITIES]))
        a("GET", API3 + "/priority/search", self.r_priority_search)
        a("GET", API3 + "/status", lambda r: Reply(200, [self.status_obj(s["id"])
                                                           for s in STATUSES]))
        a("GET", API3 + "/search/jql", self.r_search)
        a("POST", API3 + "/search/jql", self.r_search)
        a("POST", API3 + "/search/approximate-count", self.r_count)
        for v in ("2", "3"):
            a("GET", "/rest/api/%s/search" % v, self.r_removed)
            a("POST", "/rest/api/%s/search" % v, self.r_removed)
        a("POST", API3 + "/issue/bulkfetch", self.r_bulkfetch)
        a("POST", API3 + "/issue/bulk", self.r_bulk_create)
        a("POST", API3 + "/issue", self.r_create)
        a("GET", API3 + "/issue/{key}", self.r_get_issue)
        a("PUT", API3 + "/issue/{key}", self.r_edit)
        a("DELETE", API3 + "/issue/{key}", self.r_delete)
        a("GET", API3 + "/issue/{key}/transitions", self.r_transitions)
        a("POST", API3 + "/issue/{key}/transitions", self.r_do_transition)
        a("GET", API3 + "/issue/{key}/properties", self.r_prop_list)
        a("GET", API3 + "/issue/{key}/properties/{prop}", self.r_prop_get)
        a("PUT", API3 + "/issue/{key}/properties/{prop}", self.r_prop_put)
        a("DELETE", API3 + "/issue/{key}/properties/{prop}", self.r_prop_del)
        a("GET", API3 + "/issue/{key}/remotelink", self.r_links)
        a("POST", API3 + "/issue/{key}/remotelink", self.r_link_post)
        a("GET", API3 + "/issue/{key}/comment", self.r_comments)
        a("POST", API3 + "/issue/{key}/comment", self.r_comment_post)
        a("PUT", API3 + "/issue/{key}/comment/{cid}", self.r_comment_put)
        a("GET", API3 + "/issue/{key}/changelog", self.r_changelog)
        a("GET", API3 + "/user/assignable/search", self.r_assignable)
        a("GET", "/rest/webhooks/1.0/webhook", self.r_hooks)
        a("POST", "/rest/webhooks/1.0/webhook", self.r_hook_create)
        a("DELETE", "/rest/webhooks/1.0/webhook/{id}", self.r_hook_delete)
        c = self.control
        c("POST", r"/_sim/seed", self.c_seed)
        c("POST", r"/_sim/edit", self.c_edit)
        c("POST", r"/_sim/transition", self.c_transition)
        c("POST", r"/_sim/comment_edit", self.c_comment_edit)
        c("GET", r"/_sim/issues", self.c_issues)
        c("GET", r"/_sim/webhooks", lambda r: Reply(200, {"registered": [
            self.hook_obj(h) for h in sorted(self.webhooks)], "sent": self.outbox.log()}))
        c("POST", r"/_sim/config", self.c_config)
        c("DELETE", r"/_sim/issue/([^/]+)", self.c_delete)
        c("POST", r"/_sim/users", self.c_users)

    def error_body(self, status, req):
        msgs = {400: "Bad request", 401: "Client must be authenticated to access this resource.",
                403: "You do not have permission to perform this operation.",
                404: "Issue does not exist or you do not have permission to see it.",
                409: "The issue was updated by another user. Please try again.",
                429: RATE_LIMITED, 500: "Internal server error",
                502: "Bad gateway", 503: "Service unavailable"}
        rep = Reply(status, errors([msgs.get(status, "Error %d" % status)], {},
                                   status if status == 429 else None))
        if status == 429:
            rep.headers.update(self.rate_headers(1, 100, 0, "jira-burst-based"))
        return rep

    def bad_json(self, req, detail):
        return bad("Unexpected character in JSON body: %s" % detail)

    def not_found(self, req, status):
        if status == 405:
            return Reply(405, errors(["Method Not Allowed"]))
        return Reply(404, errors(["No API found for the request path '%s'." % req.path]))

    def tz(self):
        return zone(self.tz_name)

    # --- auth and rate limits ------------------------------------------------------------------
    def before_route(self, req):
        if not req.path.startswith("/rest/"):
            return None
        if self.dc() and req.path.startswith(API3 + "/"):
            return self.not_found(req, 404)
        with self.lock:
            if not self.authorized(req.header("Authorization") or ""):
                return Reply(401, errors(["Client must be authenticated to access this "
                                          "resource."]),
                             headers={"WWW-Authenticate": 'Basic realm="protected-area"',
                                      "X-Seraph-LoginReason": "AUTHENTICATED_FAILED"})
            return self.rate_check(req)

    def authorized(self, header):
        if self.dc():  # a personal access token, never a password or Cloud API token
            return header == "Bearer " + self.pat
        if not header.startswith("Basic "):
            return False
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        return raw == "%s:%s" % (BOT_EMAIL, self.api_token)

    def template_of(self, req):
        for method, rx, template in getattr(self, "templates", []):
            m = rx.fullmatch(req.path)
            if method == req.method and m:
                return template, m
        return None, None

    def rate_headers(self, wait_s, limit, remaining, reason):
        reset = self.now_ms() + int(math.ceil(wait_s)) * 1000
        return {"Retry-After": str(max(1, int(math.ceil(wait_s)))),
                "X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": iso_utc(reset), "RateLimit-Reason": reason}

    def limited(self, wait_s, limit, reason):
        return Reply(429, errors([RATE_LIMITED], {}, 429),
                     headers=self.rate_headers(wait_s, limit, 0, reason))

    def rate_check(self, req):
        template, m = self.template_of(req)
        if template is None:
            return None
        limit = self.rate.get("%s %s" % (req.method, template), self.rate.get(req.method, 100))
        b = self.buckets.get((req.method, template))
        if b is None or b.rate != float(limit):
            b = self.buckets[(req.method, template)] = Bucket(limit)
        wait = b.take()
        if wait > 0:
            return self.limited(wait, limit, "jira-burst-based")
        if self.per_issue and req.method != "GET" and "{key}" in template:
            iss = self.lookup(m.group(1))
            if iss is not None:
                wins = self.issue_windows.setdefault(iss["id"], (Window(20, 2), Window(100, 30)))
                for w in wins:
                    wait = w.take()
                    if wait > 0:
                        return self.limited(wait, w.limit, "jira-per-issue-on-write")
        return None

    # --- representations -----------------------------------------------------------------------
    def user_obj(self, account_id, full=False):
        u = user_by(account_id)
        if u is None:
            return None
        if self.dc():
            o = {"self": "%s%s/user?username=%s" % (self.base(), API2, u["name"]),
                 "name": u["name"], "key": u["name"], "displayName": u["displayName"],
                 "emailAddress": u["emailAddress"], "active": True, "timeZone": self.tz_name,
                 "avatarUrls": {"48x48": "%s/avatar/%s.png" % (self.base(), u["name"])}}
            return o
        o = {"self": "%s%s/user?accountId=%s" % (self.base(), API3, u["accountId"]),
             "accountId": u["accountId"], "displayName": u["displayName"], "active": True,
             "accountType": "atlassian", "timeZone": self.tz_name,
             "avatarUrls": {"48x48": "%s/avatar/%s.png" % (self.base(), u["accountId"])}}
        if full or not u.get("hideEmail"):  # profile visibility: a hidden e-mail is left out
            o["emailAddress"] = u["emailAddress"]
        return o

    def status_obj(self, sid):
        s = by_id(STATUSES, sid)
        cat = CATEGORIES[s["cat"]]
        return {"self": "%s%s/status/%s" % (self.base(), API3, sid), "description": "",
                "iconUrl": "%s/images/icons/statuses/generic.png" % self.base(),
                "name": s["name"], "id": sid,
                "statusCategory": dict(cat, self="%s%s/statuscategory/%d"
                                       % (self.base(), API3, cat["id"]))}

    def priority_obj(self, pid):
        p = by_id(PRIORITIES, pid)
        return {"self": "%s%s/priority/%s" % (self.base(), API3, pid),
                "iconUrl": "%s/images/icons/priorities/%s.svg" % (self.base(), p["name"].lower()),
                "name": p["name"], "id": pid}

    def issuetype_obj(self, tid):
        t = by_id(ISSUE_TYPES, tid)
        return {"self": "%s%s/issuetype/%s" % (self.base(), API3, tid), "id": tid,
                "description": t["description"], "name": t["name"], "subtask": False,
                "hierarchyLevel": 0,
                "iconUrl": "%s/images/icons/issuetypes/%s.svg" % (self.base(), t["name"].lower())}

    def project_obj(self):
        return {"self": "%s%s/project/%s" % (self.base(), API3, PROJECT["id"]),
                "id": PROJECT["id"], "key": PROJECT["key"], "name": PROJECT["name"],
                "projectTypeKey": "software", "simplified": False}

    def render_field(self, iss, fid, tz):
        fs = iss["f"]
        kind = FIELD_KIND[fid]
        if fid in ("created", "updated"):
            return fmt_jira_time(iss[fid], tz)
        if fid in ("resolutiondate", "statuscategorychangedate"):
            return fmt_jira_time(fs.get(fid), tz)
        if fid == "creator":
            return self.user_obj(fs.get("creator"))
        if kind in ("string", "text", "date", "adf"):
            return copy.deepcopy(fs.get(fid))
        if kind == "labels":
            return list(fs.get("labels") or [])
        if kind == "user":
            return self.user_obj(fs.get(fid))
        if kind == "project":
            return self.project_obj()
        if kind == "issuetype":
            return self.issuetype_obj(fs["issuetype"])
        if kind == "status":
            return self.status_obj(fs["status"])
        if kind == "priority":
            return self.priority_obj(fs["priority"]) if fs.get("priority") else None
        if kind == "resolution":
            r = by_id(RESOLUTIONS, fs.get("resolution"))
            return dict(r, self="%s%s/resolution/%s" % (self.base(), API3, r["id"])) if r else None
        if kind == "select":
            o = by_id(TIER_OPTIONS, fs.get(fid))
            return dict(o, self="%s%s/customFieldOption/%s" % (self.base(), API3, o["id"])) \
                if o else None
        if kind == "comment":  # only when asked for: not navigable; the first page, oldest first
            all_cs = iss.get("comments", [])
            cs = [self.comment_obj(iss, c) for c in all_cs[:EMBEDDED_COMMENTS]]
            return {"comments": cs, "self": "%s%s/issue/%s/comment" % (self.base(), API3,
                                                                       iss["id"]),
                    "maxResults": len(cs), "total": len(all_cs), "startAt": 0}
        return None

    def wanted_fields(self, spec, default):
        """Field ids for a fields parameter (list of comma lists); None for 'id only'."""
        items = []
        for s in spec if spec else [default]:
            items += [x.strip() for x in str(s).split(",") if x.strip()]
        out, excl = [], set()
        for x in items:
            if x.startswith("-"):
                excl.add(x[1:])
            elif x == "*all":
                out += [f[0] for f in FIELD_DEFS]
            elif x == "*navigable":
                out += [f[0] for f in FIELD_DEFS if f[0] not in NOT_NAVIGABLE]
            elif x in FIELD_KIND:
                out.append(x)
            else:
                # field names are accepted as well as ids; unknown ones are ignored like Jira
                fid = next((f[0] for f in FIELD_DEFS if f[1].lower() == x.lower()), None)
                if fid:
                    out.append(fid)
        seen, result = set(), []
        for f in out:
            if f not in seen and f not in excl:
                seen.add(f)
                result.append(f)
        return result

    def issue_obj(self, iss, fields, expand="", props=()):
        tz = self.tz()
        o = {"expand": "renderedFields,names,schema,operations,editmeta,changelog,"
                       "versionedRepresentations", "id": iss["id"],
             "self": "%s%s/issue/%s" % (self.base(), API3, iss["id"]), "key": iss["key"],
             "fields": {f: self.render_field(iss, f, tz) for f in fields}}
        ex = [e.strip() for e in (expand or "").split(",")]
        if "names" in ex:
            o["names"] = {f: FIELD_NAME[f] for f in fields}
        if "schema" in ex:
            o["schema"] = {d[0]: d[3] for d in FIELD_DEFS if d[0] in fields}
        if "changelog" in ex:
            hist = self.current(iss)["changelog"] if iss["id"] in self.issues else []
            o["changelog"] = {"startAt": 0, "maxResults": min(len(hist), 40),
                              "total": len(hist),
                              "histories": [self.history_obj(h) for h in hist[-40:]][::-1]}
        if "transitions" in ex:
            o["transitions"] = [self.transition_obj(t) for t in self.available(iss)]
        if props:
            o["properties"] = {k: copy.deepcopy(iss["props"][k]) for k in props
                               if k in iss["props"]}
        return o

    def current(self, iss):
        return self.issues.get(iss["id"], iss)

    # --- issue lookup and index ---------------------------------------------------------------
    def lookup(self, key_or_id):
        ident = key_or_id if key_or_id.isdigit() else self.keys.get(key_or_id.upper())
        iss = self.issues.get(ident) if ident else None
        return iss

    def missing(self):
        return Reply(404, errors(["Issue does not exist or you do not have permission to see "
                                  "it."]))

    def reindex(self, iss, deleted=False):
        now = self.now_ms()
        # comments are in the snapshot: a search renders one state of the issue (its updated
        # and its comment field agree)
        snap = None if deleted else {k: copy.deepcopy(v) for k, v in iss.items()
                                     if k not in ("changelog", "links")}
        entries = self.index.setdefault(iss["id"], [])
        entries.append((now + self.search_lag_ms, snap))
        visible = [i for i, e in enumerate(entries) if e[0] <= now]
        if len(visible) > 1:
            del entries[:visible[-1]]
        self.fire_hooks(iss, deleted, created=iss["created"] == iss["updated"])

    # --- admin webhooks (/rest/webhooks/1.0/webhook) -------------------------------------------
    def fire_hooks(self, iss, deleted, created):
        """Delivers jira:issue_* to every enabled webhook whose events and JQL filter match."""
        event = "jira:issue_deleted" if deleted else \
            "jira:issue_created" if created else "jira:issue_updated"
        for hook in list(self.webhooks.values()):
            jql = (hook.get("filters") or {}).get("issue-related-events-section")
            if event not in hook["events"] or not hook.get("enabled", True):
                continue
            try:
                if jql and not self.compile_jql(jql).match(iss):
                    continue
            except JqlError:
                continue
            fields = [f[0] for f in FIELD_DEFS if f[0] in ("summary", "status", "updated")]
            self.outbox.jira(hook, {"timestamp": self.now_ms(), "webhookEvent": event,
                                    "issue_event_type_name": "issue_generic",
                                    "user": self.user_obj(BOT_ID),
                                    "issue": self.issue_obj(iss, fields)})

    def hook_obj(self, hid):
        h = self.webhooks[hid]
        return {"self": "%s/rest/webhooks/1.0/webhook/%s" % (self.base(), hid), "name": h["name"],
                "url": h["url"], "events": h["events"], "filters": h.get("filters") or {},
                "excludeBody": h.get("excludeBody", False), "enabled": True,
                "lastUpdatedUser": BOT_ID}

    def r_hooks(self, req):
        return Reply(200, [self.hook_obj(h) for h in sorted(self.webhooks)])

    def r_hook_create(self, req):
        body = req.json()
        if not isinstance(body, dict):
            return self.bad_json(req, "a webhook object")
        problems = [m for k, m in (("name", "Name is required."), ("url", "URL is required."))
                    if not isinstance(body.get(k), str) or not body.get(k)]
        events = body.get("events")
        if not isinstance(events, list) or not events:
            problems.append("At least one event is required.")
        if problems:
            return Reply(400, errors(problems))
        self.next_seq += 1
        hid = str(self.next_seq)
        self.webhooks[hid] = {k: body.get(k) for k in ("name", "url", "events", "filters",
                                                       "secret", "excludeBody")}
        return Reply(201, self.hook_obj(hid))

    def r_hook_delete(self, req):
        if req.match.group(1) not in self.webhooks:
            return Reply(404, errors(["Webhook not found."]))
        del self.webhooks[req.match.group(1)]
        return Reply(204)

    def searchable(self, reconcile):
        now = self.now_ms()
        out = []
        for ident, entries in self.index.items():
            if ident in reconcile:
                snap = self.issues.get(ident)
            else:
                vis = [e[1] for e in entries if e[0] <= now]
                snap = vis[-1] if vis else None
            if snap is not None and ident in self.issues:
                out.append(snap)
        return out

    def touch(self, iss, author, items):
        """Records a change (changelog entry when items) and bumps updated."""
        iss["updated"] = max(self.now_ms(), iss["updated"] + 1)
        if items:
            self.next_seq += 1
            iss["changelog"].append({"id": str(self.next_seq), "author": author,
                                     "created": iss["updated"], "items": items})

    # --- field validation ----------------------------------------------------------------------
    def check_field(self, fid, value, creating):
        """Returns (stored value, None) or (None, error message)."""
        kind = FIELD_KIND.get(fid)
        if kind is None or kind in ("status", "resolution", "readonly", "comment") or \
                (kind == "project" and not creating):
            return None, CANNOT_SET % fid
        if kind == "project":
            ok = isinstance(value, dict) and (value.get("key") == PROJECT["key"] or
                                              str(value.get("id")) == PROJECT["id"])
            return (PROJECT["id"], None) if ok else (None, "Specify a valid project ID or key")
        if kind == "issuetype":
            t = None
            if isinstance(value, dict):
                t = by_id(ISSUE_TYPES, str(value.get("id"))) if "id" in value else \
                    by_name_or_id(ISSUE_TYPES, value.get("name"))
            return (t["id"], None) if t else (None, "The issue type selected is invalid.")
        if kind == "string":
            return self.check_summary(value)
        if kind == "adf" and self.dc():  # wiki markup
            if value is not None and not isinstance(value, str):
                return None, "Operation value must be a string"
            return (value or None), None
        if kind == "user" and self.dc():
            return self.check_user_dc(value)
        if kind == "adf":
            if value is None:
                return None, None
            if not isinstance(value, dict):
                return None, NOT_ADF
            return (copy.deepcopy(value), None) if adf_problem(value) is None else (None, BAD_ADF)
        if kind == "text":
            if value is None:
                return None, None
            if not isinstance(value, str):
                return None, "Operation value must be a string"
            if len(value) > 255:
                return None, ("The entered text is too long. It exceeds the allowed limit of "
                              "255 characters.")
            return (value if value != "" else None), None
        if kind == "select":
            return self.check_select(value)
        if kind == "priority":
            return self.check_priority(value)
        if kind == "labels":
            return self.check_labels(value)
        if kind == "date":
            return self.check_date(value)
        if kind == "user":
            return self.check_user(value)
        return None, CANNOT_SET % fid

    @staticmethod
    def check_summary(value):
        if not isinstance(value, str) or not value.strip():
            return None, "You must specify a summary of the issue."
        if len(value) > 255:
            return None, "Summary must be less than 255 characters."
        if "\n" in value or "\r" in value:
            return None, "Summary can't contain newline characters."
        return value, None

    @staticmethod
    def check_select(value):
        if value is None:
            return None, None
        o = None
        if isinstance(value, dict):
            o = by_id(TIER_OPTIONS, str(value.get("id"))) if "id" in value else \
                by_name_or_id(TIER_OPTIONS, value.get("value"), "value")
        if o is None:
            return None, "Option value '%s' is not valid" % (
                value.get("value", value.get("id")) if isinstance(value, dict) else value)
        return o["id"], None

    @staticmethod
    def check_priority(value):
        if value is None:
            return DEFAULT_PRIORITY, None
        if not isinstance(value, dict) or not ("id" in value or "name" in value):
            return None, "Specify the Priority (id or name) in the string format"
        p = by_id(PRIORITIES, str(value["id"])) if "id" in value else \
            by_name_or_id(PRIORITIES, value["name"])
        return (p["id"], None) if p else (None, "The priority selected is invalid.")

    @staticmethod
    def check_labels(value):
        if value is None:
            return [], None
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            return None, "The label value must be an array of strings."
        for x in value:
            if not x or re.search(r"\s", x):
                return None, "The label '%s' contains spaces which is invalid." % x
            if len(x) > 255:
                return None, "The label '%s' is longer than 255 characters." % x
        return sorted(set(value)), None

    @staticmethod
    def check_date(value):
        if value is None:
            return None, None
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return None, "Error parsing date string: %s" % value
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            return None, "Error parsing date string: %s" % value
        return value, None

    @staticmethod
    def check_user(value):
        if value is None:
            return None, None
        if not isinstance(value, dict):
            return None, "Specify the user by accountId in the object format"
        if "name" in value or "key" in value:
            return None, ("'accountId' must be the only user identifying query parameter in "
                          "GDPR strict mode.")
        ident = value.get("id", value.get("accountId"))
        u = next((u for u in USERS if u["accountId"] == ident), None)
        return (u["accountId"], None) if u else (None, "User '%s' does not exist." % ident)

    @staticmethod
    def check_user_dc(value):
        if value is None:
            return None, None
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            return None, "Specify the user by name in the object format"
        u = next((u for u in USERS if u["name"] == value["name"]), None)
        return (u["accountId"], None) if u else (None, "User '%s' does not exist." % value["name"])

    def stage(self, body, creating):
        """Validates fields and update ops. Returns (staged dict, errors dict)."""
        fields = body.get("fields") or {}
        update = body.get("update") or {}
        staged, errs = {}, {}
        if not isinstance(fields, dict) or not isinstance(update, dict):
            return {}, {"fields": "fields and update must be objects"}
        for fid, value in fields.items():
            if fid in update:
                errs[fid] = "Field '%s' cannot be set in both 'fields' and 'update'." % fid
                continue
            v, e = self.check_field(fid, value, creating)
            if e:
                errs[fid] = e
            else:
                staged[fid] = v
        for fid, ops in update.items():
            self.stage_update(fid, ops, staged, errs, creating)
        return staged, errs

    def stage_update(self, fid, ops, staged, errs, creating):
        if not isinstance(ops, list):
            errs[fid] = "Update operations must be an array"
            return
        kind = FIELD_KIND.get(fid)
        for op in ops:
            if not isinstance(op, dict) or len(op) != 1:
                errs[fid] = "Each update operation must be an object with one verb"
                return
            verb, value = next(iter(op.items()))
            if kind == "labels" and verb in ("add", "remove"):
                if not isinstance(value, str) or not value or re.search(r"\s", value):
                    errs[fid] = "The label '%s' contains spaces which is invalid." % value
                    return
                staged.setdefault("_labels_ops", []).append((verb, value))
            elif verb == "set":
                v, e = self.check_field(fid, value, creating)
                if e:
                    errs[fid] = e
                    return
                staged[fid] = v
            else:
                errs[fid] = "Operation '%s' is not supported for field '%s'." % (verb, fid)
                return

    def check_props(self, props):
        if props is None:
            return None
        if not isinstance(props, list):
            return "properties must be an array"
        for p in props:
            if not isinstance(p, dict) or not isinstance(p.get("key"), str) or "value" not in p:
                return "Each property needs a key and a value"
            e = self.prop_problem(p["key"], p["value"])
            if e:
                return e
        return None

    @staticmethod
    def prop_problem(key, value):
        if not key or len(key) > 255:
            return "The property key cannot be longer than 255 characters."
        if len(json.dumps(value, ensure_ascii=False, separators=(",", ":"))) > 32768:
            return "The property value cannot be longer than 32768 characters."
        return None

    def apply(self, iss, staged, author):
        """Applies staged values, returns changelog items."""
        fs, items = iss["f"], []
        ops = staged.pop("_labels_ops", [])
        if ops:
            labels = set(staged.get("labels", fs.get("labels") or []))
            for verb, v in ops:
                (labels.add if verb == "add" else labels.discard)(v)
            staged["labels"] = sorted(labels)
        for fid, v in staged.items():
            old = fs.get(fid)
            if old == v:
                continue
            fs[fid] = v
            items.append(self.change_item(fid, old, v))
        return items

    def change_item(self, fid, old, new):
        def text(v):
            if v is None:
                return None
            kind = FIELD_KIND[fid]
            if kind == "adf":
                return adf_text(v)
            if kind == "labels":
                return " ".join(v)
            if kind in REF_KINDS:
                t = by_id(REF_KINDS[kind], v)
                return t["value" if kind == "select" else "name"] if t else v
            if kind == "user":
                u = user_by(v)
                return u["displayName"] if u else v
            if kind == "date":
                return v + " 00:00:00.0"
            return v

        ref = FIELD_KIND[fid] in REF_KINDS or FIELD_KIND[fid] in ("user", "date")
        custom = fid.startswith("customfield_")
        return {"field": FIELD_NAME[fid] if custom else fid,
                "fieldtype": "custom" if custom else "jira", "fieldId": fid,
                "from": old if ref else None, "fromString": text(old),
                "to": new if ref else None, "toString": text(new)}

    def history_obj(self, h):
        return {"id": h["id"], "author": self.user_obj(h["author"]),
                "created": fmt_jira_time(h["created"], self.tz()), "items": h["items"]}

    # --- workflow -----------------------------------------------------------------------------
    def available(self, iss):
        return [t for t in TRANSITIONS if iss["f"]["status"] in t[2]]

    def transition_obj(self, t):
        return {"id": t[0], "name": t[1], "to": self.status_obj(t[3]), "hasScreen": False,
                "isGlobal": False, "isInitial": False, "isAvailable": True,
                "isConditional": False, "isLooped": False}

    def move(self, iss, to_sid, author):
        fs = iss["f"]
        old = fs["status"]
        items = [{"field": "status", "fieldtype": "jira", "fieldId": "status", "from": old,
                  "fromString": by_id(STATUSES, old)["name"], "to": to_sid,
                  "toString": by_id(STATUSES, to_sid)["name"]}]
        fs["status"] = to_sid
        now = self.now_ms()
        old_cat, new_cat = by_id(STATUSES, old)["cat"], by_id(STATUSES, to_sid)["cat"]
        if old_cat != new_cat:
            fs["statuscategorychangedate"] = now
        res = None
        if new_cat == "done":
            res = "10001" if to_sid == "10003" else "10000"
        if res != fs.get("resolution"):
            items.append(self.change_item("resolution", fs.get("resolution"), res))
            fs["resolution"] = res
            fs["resolutiondate"] = now if res else None
        self.touch(iss, author, items)
        self.reindex(iss)

    def path_to(self, iss, to_sid):
        start = iss["f"]["status"]
        prev, queue = {start: None}, deque([start])
        while queue:
            s = queue.popleft()
            if s == to_sid:
                break
            for t in TRANSITIONS:
                if s in t[2] and t[3] not in prev:
                    prev[t[3]] = s
                    queue.append(t[3])
        if to_sid not in prev:
            return None
        path, s = [], to_sid
        while s != start:
            path.append(s)
            s = prev[s]
        return path[::-1]

    # --- routes: metadata -----------------------------------------------------------------------
    def r_myself(self, req):
        o = self.user_obj(BOT_ID, full=True)
        o.update({"locale": "en_US", "groups": {"size": 1, "items": []},
                  "applicationRoles": {"size": 1, "items": []}})
        return Reply(200, o)

    def r_server_info(self, req):
        return Reply(200, {"baseUrl": self.base(), "displayUrl": self.base(),
                           "version": "1001.0.0-SNAPSHOT", "versionNumbers": [1001, 0, 0],
                           "deploymentType": "DataCenter" if self.dc() else "Cloud",
                           "buildNumber": 100250,
                           "serverTime": fmt_jira_time(self.now_ms(), self.tz()),
                           "scmInfo": "sim", "serverTitle": "Jira (crmbridge sim)",
                           "defaultLocale": {"locale": "en_US"}})

    def r_fields(self, req):
        out = []
        for fid, name, kind, schema in FIELD_DEFS:
            custom = fid.startswith("customfield_")
            f = {"id": fid, "key": fid, "name": name, "custom": custom,
                 "orderable": kind not in ("readonly", "status"),
                 "navigable": fid not in NOT_NAVIGABLE, "searchable": True,
                 "clauseNames": ([fid.replace("customfield_", "cf[") + "]", name]
                                 if custom else [fid]),
                 "schema": schema}
            if custom:
                f["untranslatedName"] = name
            out.append(f)
        return Reply(200, out)

    def check_project(self, ident):
        return ident.upper() in (PROJECT["key"], PROJECT["id"])

    def r_project(self, req):
        if not self.check_project(req.match.group(1)):
            return Reply(404, errors(["No project could be found with key '%s'."
                                      % req.match.group(1)]))
        o = self.project_obj()
        o.update({"description": "", "lead": self.user_obj(USERS[2]["accountId"]),
                  "issueTypes": [self.issuetype_obj(t["id"]) for t in ISSUE_TYPES],
                  "assigneeType": "UNASSIGNED", "isPrivate": False, "style": "classic"})
        return Reply(200, o)

    def r_project_statuses(self, req):
        if not self.check_project(req.match.group(1)):
            return Reply(404, errors(["No project could be found with key '%s'."
                                      % req.match.group(1)]))
        return Reply(200, [{"id": t["id"], "name": t["name"], "subtask": False,
                            "self": "%s%s/issuetype/%s" % (self.base(), API3, t["id"]),
                            "statuses": [self.status_obj(s["id"]) for s in STATUSES]}
                           for t in ISSUE_TYPES])

    def r_priority_search(self, req):
        vals = [dict(self.priority_obj(p["id"]), isDefault=p["id"] == DEFAULT_PRIORITY)
                for p in PRIORITIES]
        return Reply(200, {"startAt": 0, "maxResults": 50, "total": len(vals), "isLast": True,
                           "values": vals})

    # --- routes: search ---------------------------------------------------------------------------
    def r_removed(self, req):
        return Reply(410, errors([REMOVED_API]))

    def search_params(self, req):
        """Normalises GET query / POST body into one dict, or returns a Reply on error."""
        if req.method == "GET":
            q = req.query_multi

            def lst(name):
                out = []
                for v in q.get(name, []):
                    out += [x for x in v.split(",") if x]
                return out

            p = {"jql": req.query.get("jql"), "nextPageToken": req.query.get("nextPageToken"),
                 "maxResults": req.query.get("maxResults"), "fields": lst("fields"),
                 "expand": req.query.get("expand", ""), "properties": lst("properties"),
                 "reconcileIssues": lst("reconcileIssues")}
            return p
        body = req.json()
        if not isinstance(body, dict):
            return bad("Request body must be a JSON object.")
        allowed = {"jql", "nextPageToken", "maxResults", "fields", "expand", "properties",
                   "fieldsByKeys", "failFast", "reconcileIssues"}
        for k in body:
            if k not in allowed:
                return bad("Unrecognized field \"%s\" (class SearchAndReconcileRequestBean), "
                           "not marked as ignorable." % k)
        for k in ("fields", "properties", "reconcileIssues"):
            if k in body and not isinstance(body[k], list):
                return bad("Cannot deserialize value of type `java.util.ArrayList` from '%s'"
                           % k)
        if "expand" in body and not isinstance(body["expand"], str):
            return bad("Cannot deserialize 'expand': it must be a comma-separated string.")
        return {"jql": body.get("jql"), "nextPageToken": body.get("nextPageToken"),
                "maxResults": body.get("maxResults"), "fields": body.get("fields") or [],
                "expand": body.get("expand") or "", "properties": body.get("properties") or [],
                "reconcileIssues": body.get("reconcileIssues") or []}

    def compile_jql(self, jql):
        if not jql or not str(jql).strip():
            raise JqlError(UNBOUNDED)
        q = JqlQuery(str(jql), self.now_ms(), self.tz(), BOT_ID)
        if q.where is None:
            raise JqlError(UNBOUNDED)
        return q

    def run_query(self, q, reconcile):
        hits = [s for s in self.searchable(reconcile) if q.match(s)]
        hits.sort(key=lambda s: -int(s["id"]))  # Jira's default order: newest key first
        if q.order:
            hits.sort(key=q.sort_key)
        return hits

    def page_token(self, jql, offset):
        payload = json.dumps({"q": hashlib.sha1(jql.encode()).hexdigest()[:16], "o": offset,
                              "t": self.now_ms()}, separators=(",", ":"))
        sig = hashlib.sha1((self.token_secret + payload).encode()).hexdigest()[:12]
        return base64.urlsafe_b64encode((payload + "|" + sig).encode()).decode().rstrip("=")

    def read_token(self, token, jql):
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            payload, sig = raw.rsplit("|", 1)
            d = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return None
        if hashlib.sha1((self.token_secret + payload).encode()).hexdigest()[:12] != sig:
            return None
        if d.get("q") != hashlib.sha1(jql.encode()).hexdigest()[:16]:
            return None
        if self.now_ms() - d.get("t", 0) > 7 * 86400000:
            return None
        return d.get("o")

    def r_search(self, req):
        p = self.search_params(req)
        if isinstance(p, Reply):
            return p
        try:
            max_results = int(p["maxResults"]) if p["maxResults"] not in (None, "") else 50
        except (TypeError, ValueError):
            return bad("The value '%s' is invalid for 'maxResults'." % p["maxResults"])
        if not 1 <= max_results <= 5000:
            return bad("The 'maxResults' parameter must be between 1 and 5000.")
        if len(p["properties"]) > 5:
            return bad("The number of properties requested exceeds the maximum of 5.")
        try:
            reconcile = {str(int(x)) for x in p["reconcileIssues"]}
        except (TypeError, ValueError):
            return bad("reconcileIssues must contain issue ids (numbers).")
        if len(reconcile) > 50:
            return bad("The number of issues to reconcile exceeds the maximum of 50.")
        try:
            q = self.compile_jql(p["jql"])
        except JqlError as e:
            return Reply(400, {"errorMessages": str(e).split("\n"), "errors": {},
                               "warningMessages": []})
        offset = 0
        if p["nextPageToken"]:
            offset = self.read_token(p["nextPageToken"], str(p["jql"]))
            if offset is None:
                return bad("The provided next page token is invalid or expired.")
        fields = self.wanted_fields(p["fields"], "id")
        requested = [x.strip() for x in ",".join(p["fields"] or ["id"]).split(",")]
        id_only = all(x in ("id", "key") for x in requested)
        size = min(max_results, 5000 if id_only else self.page_cap)
        hits = self.run_query(q, reconcile)
        page = hits[offset:offset + size]
        body = {"issues": [self.search_issue(s, fields, id_only, p) for s in page],
                "isLast": offset + size >= len(hits)}
        if not body["isLast"]:
            body["nextPageToken"] = self.page_token(str(p["jql"]), offset + size)
        ex = p["expand"].split(",")
        if "names" in ex:
            body["names"] = {f: FIELD_NAME[f] for f in fields}
        if "schema" in ex:
            body["schema"] = {d[0]: d[3] for d in FIELD_DEFS if d[0] in fields}
        return Reply(200, body)

    def r_search_dc(self, req):
        """Data Center's /rest/api/2/search: startAt/maxResults/total, no tokens."""
        if req.method == "GET":
            q = req.query_multi
            p = {k: req.query.get(k) for k in ("jql", "startAt", "maxResults", "validateQuery")}
            for k in ("fields", "properties"):
                p[k] = [x for v in q.get(k, []) for x in v.split(",") if x]
            p["expand"] = req.query.get("expand", "")
        else:
            body = req.json()
            if not isinstance(body, dict):
                return bad("Request body must be a JSON object.")
            allowed = {"jql", "startAt", "maxResults", "fields", "expand", "properties",
                       "fieldsByKeys", "validateQuery"}
            for k in body:
                if k not in allowed:
                    return bad("Unrecognized field \"%s\" (Class com.atlassian.jira.rest.v2."
                               "search.SearchRequestBean), not marked as ignorable" % k)
            p = {k: body.get(k) for k in allowed}
            p["fields"], p["properties"] = p["fields"] or [], p["properties"] or []
            p["expand"] = ",".join(p["expand"] or [])
        try:
            start = int(p["startAt"] or 0)
            max_results = int(p["maxResults"]) if p["maxResults"] not in (None, "") else 50
        except (TypeError, ValueError):
            return bad("startAt and maxResults must be integers.")
        if start < 0:
            return bad("startAt must not be negative.")
        max_results = max(0, min(max_results, self.page_cap))  # DC caps and says so
        try:  # DC runs unbounded JQL too; an empty query lists everything
            q = JqlQuery(str(p["jql"] or "order by key"), self.now_ms(), self.tz(), BOT_ID)
        except JqlError as e:
            return Reply(400, {"errorMessages": str(e).split("\n"), "errors": {}})
        if str(p.get("validateQuery", "true")).lower() != "false":
            gone = self.missing_refs(str(p["jql"] or ""))
            if gone:
                return bad("An issue with key '%s' does not exist for field '%s'." % gone)
        fields = self.wanted_fields(p["fields"], "*navigable")
        hits = self.run_query(q, set())
        page = hits[start:start + max_results]
        return Reply(200, {"expand": "schema,names", "startAt": start, "maxResults": max_results,
                           "total": len(hits),
                           "issues": [self.issue_obj(s, fields, p["expand"], p["properties"])
                                      for s in page]})

    def missing_refs(self, jql):
        """(value, field) of the first issue named in an id/key clause that does not exist: Data
        Center refuses such a query unless validateQuery=false."""
        for m in re.finditer(r"\b(id|key|issuekey|issue)\s*(?:=|in\s*\(([^)]*)\))\s*"
                             r"(\"?[\w-]+\"?)?", jql, re.I):
            values = m.group(2).split(",") if m.group(2) is not None else [m.group(3) or ""]
            for v in values:
                v = v.strip().strip('"')
                if v and self.lookup(v) is None:
                    return v, m.group(1)
        return None

    def search_issue(self, snap, fields, id_only, p):
        if id_only and not p["properties"] and not p["expand"]:
            o = {"id": snap["id"]}
            if "key" in ",".join(p["fields"]):
                o["key"] = snap["key"]
            return o
        return self.issue_obj(snap, fields, p["expand"], p["properties"])

    def r_count(self, req):
        body = req.json()
        if not isinstance(body, dict) or set(body) - {"jql"}:
            return bad("The request body must be {\"jql\": \"...\"}.")
        try:
            q = self.compile_jql(body.get("jql"))
        except JqlError as e:
            return Reply(400, {"errorMessages": str(e).split("\n"), "errors": {}})
        return Reply(200, {"count": len(self.run_query(q, set()))})

    # --- routes: issues ---------------------------------------------------------------------------
    def new_issue(self, staged, author, created_ms=None):
        now = self.now_ms() if created_ms is None else created_ms
        ident = str(self.next_id)
        self.next_id += 1
        num = self.next_num
        self.next_num += 1
        f = {"summary": None, "description": None, "issuetype": "10001", "project": PROJECT["id"],
             "priority": DEFAULT_PRIORITY, "status": INITIAL_STATUS, "resolution": None,
             "resolutiondate": None, "labels": [], "duedate": None, "assignee": None,
             "reporter": author, "creator": author, "statuscategorychangedate": now,
             "customfield_10050": None, "customfield_10051": None, "customfield_10052": None}
        ops = staged.pop("_labels_ops", [])
        f.update(staged)
        for verb, v in ops:
            f["labels"] = sorted(set(f["labels"]) | {v}) if verb == "add" else \
                [x for x in f["labels"] if x != v]
        iss = {"id": ident, "key": "%s-%d" % (PROJECT["key"], num), "num": num, "f": f,
               "created": now, "updated": now, "props": {}, "links": [], "comments": [],
               "changelog": []}
        self.issues[ident] = iss
        self.keys[iss["key"]] = ident
        return iss

    def validate_create(self, body):
        if not isinstance(body, dict):
            return None, errors(["Request body must be a JSON object."])
        for k in body:
            if k not in ("fields", "update", "properties", "transition", "historyMetadata"):
                return None, errors(["Unrecognized field \"%s\"" % k])
        fields = body.get("fields")
        if not isinstance(fields, dict):
            return None, errors(["Can not instantiate issue without 'fields'"])
        staged, errs = self.stage(body, True)
        if "project" not in fields:
            errs["project"] = "Specify a valid project ID or key"
        if "issuetype" not in fields:
            errs["issuetype"] = "Specify an issue type"
        if "summary" not in fields and "summary" not in (body.get("update") or {}) \
                and "summary" not in errs:
            errs["summary"] = "You must specify a summary of the issue."
        pe = self.check_props(body.get("properties"))
        if pe:
            return None, errors([pe])
        tr = body.get("transition")
        if tr is not None:
            t = next((t for t in TRANSITIONS if isinstance(tr, dict) and
                      str(tr.get("id")) == t[0] and INITIAL_STATUS in t[2]), None)
            if t is None:
                errs["transition"] = "Transition id '%s' is not valid for this issue." % (
                    tr.get("id") if isinstance(tr, dict) else tr)
        if errs:
            return None, errors([], errs)
        return staged, None

    def create_one(self, body):
        staged, err = self.validate_create(body)
        if err:
            return None, err
        staged.pop("project", None)
        iss = self.new_issue(staged, BOT_ID)
        for p in body.get("properties") or []:
            iss["props"][p["key"]] = copy.deepcopy(p["value"])
        tr = body.get("transition")
        if tr is not None:
            t = next(t for t in TRANSITIONS if str(tr.get("id")) == t[0])
            self.move(iss, t[3], BOT_ID)
        self.reindex(iss)
        return iss, None

    def created_ref(self, iss):
        return {"id": iss["id"], "key": iss["key"],
                "self": "%s%s/issue/%s" % (self.base(), API3, iss["id"])}

    def r_create(self, req):
        iss, err = self.create_one(req.json())
        if err:
            return Reply(400, err)
        return Reply(201, self.created_ref(iss))

    def r_bulk_create(self, req):
        body = req.json()
        ups = body.get("issueUpdates") if isinstance(body, dict) else None
        if not isinstance(ups, list) or not ups:
            return bad("issueUpdates must be a non-empty array.")
        if len(ups) > 50:
            return bad("The number of issues to create exceeds the maximum of 50.")
        out = {"issues": [], "errors": []}
        for n, u in enumerate(ups):
            iss, err = self.create_one(u)
            if err:
                out["errors"].append({"status": 400, "elementErrors": err,
                                      "failedElementNumber": n})
            else:
                out["issues"].append(self.created_ref(iss))
        return Reply(201 if out["issues"] else 400, out)

    @with_issue
    def r_get_issue(self, req, iss):
        fields = self.wanted_fields(req.query_multi.get("fields"), "*all")
        props = []
        for v in req.query_multi.get("properties", []):
            props += [x for x in v.split(",") if x]
        return Reply(200, self.issue_obj(iss, fields, req.query.get("expand", ""), props))

    @with_issue
    def r_edit(self, req, iss):
        body = req.json()
        if not isinstance(body, dict) or not body:
            return bad("Can not deserialize an empty request body: 'fields' or 'update' is "
                       "required.")
        for k in body:
            if k not in ("fields", "update", "properties", "historyMetadata", "transition"):
                return bad("Unrecognized field \"%s\"" % k)
        staged, errs = self.stage(body, False)
        pe = self.check_props(body.get("properties"))
        if errs or pe:
            return Reply(400, errors([pe] if pe else [], errs))
        items = self.apply(iss, staged, BOT_ID)
        for p in body.get("properties") or []:
            iss["props"][p["key"]] = copy.deepcopy(p["value"])
        if items:
            self.touch(iss, BOT_ID, items)
        self.reindex(iss)
        if req.query.get("returnIssue") == "true":
            fields = self.wanted_fields(None, "*all")
            return Reply(200, self.issue_obj(iss, fields, req.query.get("expand", "")))
        return Reply(204)

    @with_issue
    def r_delete(self, req, iss):
        self.delete_issue(iss)
        return Reply(204)

    def delete_issue(self, iss):
        del self.issues[iss["id"]]
        self.reindex(iss, deleted=True)

    def r_bulkfetch(self, req):
        body = req.json()
        if not isinstance(body, dict):
            return bad("Request body must be a JSON object.")
        for k in body:
            if k not in ("issueIdsOrKeys", "fields", "expand", "properties", "fieldsByKeys"):
                return bad("Unrecognized field \"%s\" (class BulkFetchIssueRequestBean), not "
                           "marked as ignorable." % k)
        ids = body.get("issueIdsOrKeys")
        if not isinstance(ids, list) or not ids:
            return bad("No issue IDs or keys were provided.")
        if len(ids) > 100:
            return bad("The number of issues requested exceeds the maximum of 100.")
        fields = self.wanted_fields(body.get("fields"), "*navigable")
        expand = body.get("expand") or []
        found = {}
        for i in ids:
            iss = self.lookup(str(i))
            if iss is not None:
                found[iss["id"]] = iss
        issues = [self.issue_obj(found[k], fields, ",".join(expand), body.get("properties") or [])
                  for k in sorted(found, key=int)]
        return Reply(200, {"expand": "schema,names", "issues": issues, "issueErrors": []})

    # --- routes: transitions ----------------------------------------------------------------------
    @with_issue
    def r_transitions(self, req, iss):
        ts = self.available(iss)
        if req.query.get("transitionId"):
            ts = [t for t in ts if t[0] == req.query["transitionId"]]
        return Reply(200, {"expand": "transitions", "transitions":
                           [self.transition_obj(t) for t in ts]})

    @with_issue
    def r_do_transition(self, req, iss):
        body = req.json()
        tr = body.get("transition") if isinstance(body, dict) else None
        if not isinstance(tr, dict) or ("id" not in tr and "name" not in tr):
            return bad("Missing 'transition' identifier")
        t = next((t for t in self.available(iss) if t[0] == str(tr.get("id"))), None)
        if t is None:
            return bad("Transition id '%s' is not valid for this issue." % tr.get("id"))
        extra = list(body.get("fields") or {}) + list(body.get("update") or {})
        if extra:  # no transition here has a screen
            return Reply(400, errors([], {extra[0]: CANNOT_SET % extra[0]}))
        self.move(iss, t[3], BOT_ID)
        return Reply(204)

    # --- routes: properties, links, comments, changelog ----------------------------------------
    @with_issue
    def r_prop_list(self, req, iss):
        return Reply(200, {"keys": [{"key": k, "self": "%s%s/issue/%s/properties/%s"
                                     % (self.base(), API3, iss["id"], k)} for k in iss["props"]]})

    @with_issue
    def r_prop_get(self, req, iss):
        k = req.match.group(2)
        if k not in iss["props"]:
            return Reply(404, errors(["The property with key '%s' does not exist." % k]))
        return Reply(200, {"key": k, "value": copy.deepcopy(iss["props"][k])})

    @with_issue
    def r_prop_put(self, req, iss):
        if not req.raw:
            return bad("The property value must be valid JSON.")
        value = req.json()
        k = req.match.group(2)
        e = self.prop_problem(k, value)
        if e:
            return bad(e)
        existed = k in iss["props"]
        iss["props"][k] = value
        self.reindex(iss)  # property writes do not bump "updated"
        return Reply(200 if existed else 201)

    @with_issue
    def r_prop_del(self, req, iss):
        k = req.match.group(2)
        if k not in iss["props"]:
            return Reply(404, errors(["The property with key '%s' does not exist." % k]))
        del iss["props"][k]
        self.reindex(iss)
        return Reply(204)

    def link_obj(self, iss, link):
        return dict(copy.deepcopy(link["body"]), id=link["id"],
                    self="%s/rest/api/issue/%s/remotelink/%d" % (self.base(), iss["key"],
                                                                 link["id"]))

    @with_issue
    def r_links(self, req, iss):
        links = iss["links"]
        gid = req.query.get("globalId")
        if gid is not None:
            hit = [lk for lk in links if lk["body"].get("globalId") == gid]
            if not hit:
                return Reply(404, errors(["No remote issue link with globalId '%s'." % gid]))
            return Reply(200, self.link_obj(iss, hit[0]))
        return Reply(200, [self.link_obj(iss, lk) for lk in links])

    @with_issue
    def r_link_post(self, req, iss):
        body = req.json()
        if not isinstance(body, dict):
            return bad("Request body must be a JSON object.")
        obj = body.get("object")
        errs = {}
        if not isinstance(obj, dict) or not isinstance(obj.get("url"), str) or not obj["url"]:
            errs["url"] = "'url' is required."
        if not isinstance(obj, dict) or not isinstance(obj.get("title"), str) or not obj["title"]:
            errs["title"] = "'title' is required."
        if errs:
            return Reply(400, errors([], errs))
        gid = body.get("globalId")
        for lk in iss["links"]:
            if gid and lk["body"].get("globalId") == gid:
                lk["body"] = copy.deepcopy(body)
                return Reply(200, {"id": lk["id"], "self": self.link_obj(iss, lk)["self"]})
        self.next_seq += 1
        lk = {"id": self.next_seq, "body": copy.deepcopy(body)}
        iss["links"].append(lk)
        return Reply(201, {"id": lk["id"], "self": self.link_obj(iss, lk)["self"]})

    def comment_obj(self, iss, c, expand=""):
        tz = self.tz()
        o = {"self": "%s%s/issue/%s/comment/%s" % (self.base(), API3, iss["id"], c["id"]),
             "id": c["id"], "author": self.user_obj(c["author"]), "body": c["body"],
             "updateAuthor": self.user_obj(c.get("editor", c["author"])),
             "created": fmt_jira_time(c["created"], tz),
             "updated": fmt_jira_time(c.get("updated", c["created"]), tz), "jsdPublic": True}
        if "properties" in expand.split(","):
            o["properties"] = [{"key": k, "value": copy.deepcopy(v)}
                               for k, v in sorted(c.get("props", {}).items())]
        return o

    def paging(self, req, default_max):
        try:
            start = int(req.query.get("startAt", 0))
            mx = int(req.query.get("maxResults", default_max))
        except ValueError:
            return None, None
        return max(0, start), max(1, min(mx, 5000))

    @with_issue
    def r_comments(self, req, iss):
        start, mx = self.paging(req, 100)
        if start is None:
            return bad("startAt and maxResults must be integers.")
        order = req.query.get("orderBy", "created")
        if order not in ("created", "-created", "+created"):
            return bad("orderBy must be 'created', '+created' or '-created'.")
        cs = iss["comments"][::-1] if order == "-created" else iss["comments"]
        page = cs[start:start + mx]
        ex = req.query.get("expand", "")
        return Reply(200, {"startAt": start, "maxResults": mx, "total": len(cs),
                           "comments": [self.comment_obj(iss, c, ex) for c in page]})

    def add_comment(self, iss, body, author):
        self.next_seq += 1
        c = {"id": str(self.next_seq), "author": author, "body": copy.deepcopy(body),
             "created": self.now_ms()}
        iss["comments"].append(c)
        self.touch(iss, author, [])
        self.reindex(iss)
        return c

    def comment_body_problem(self, body):
        if not isinstance(body, dict) or "body" not in body:
            return Reply(400, errors([], {"comment": "Comment body can not be empty!"}))
        if self.dc() and not isinstance(body["body"], str):
            return Reply(400, errors([], {"comment": "Comment body must be a string."}))
        if self.dc() and not body["body"].strip():
            return Reply(400, errors([], {"comment": "Comment body can not be empty!"}))
        if not self.dc() and not isinstance(body["body"], dict):
            return Reply(400, errors([], {"comment": NOT_ADF}))
        if not self.dc() and adf_problem(body["body"]) is not None:
            return Reply(400, errors(["INVALID_INPUT"]))
        props = body.get("properties", [])
        if not isinstance(props, list) or any(not isinstance(p, dict) or not p.get("key")
                                              or "value" not in p for p in props):
            return Reply(400, errors(["The property key can not be empty."]))
        return None

    @with_issue
    def r_comment_post(self, req, iss):
        body = req.json()
        bad_body = self.comment_body_problem(body)
        if bad_body:
            return bad_body
        c = self.add_comment(iss, body["body"], BOT_ID)
        c["props"] = {p["key"]: copy.deepcopy(p["value"]) for p in body.get("properties", [])}
        return Reply(201, self.comment_obj(iss, c, req.query.get("expand", "")))

    def edit_comment(self, iss, c, body, who):
        c["body"] = copy.deepcopy(body)
        c["updated"] = max(self.now_ms(), c["created"] + 1)
        c["editor"] = who
        self.touch(iss, who, [])
        self.reindex(iss)

    @with_issue
    def r_comment_put(self, req, iss):
        c = next((c for c in iss["comments"] if c["id"] == req.match.group(2)), None)
        if c is None:
            return Reply(404, errors(["Can not find a comment for the id: %s."
                                      % req.match.group(2)]))
        if c["author"] != BOT_ID:
            return Reply(403, errors(["You do not have the permission to edit this comment."]))
        body = req.json()
        bad_body = self.comment_body_problem(body)
        if bad_body:
            return bad_body
        self.edit_comment(iss, c, body["body"], BOT_ID)
        for p in body.get("properties", []):
            c.setdefault("props", {})[p["key"]] = copy.deepcopy(p["value"])
        return Reply(200, self.comment_obj(iss, c, req.query.get("expand", "")))

    def c_comment_edit(self, req):
        """{"key","id","text","user"}: a person edits a comment."""
        body = req.json() or {}
        iss = self.lookup(str(body.get("key", "")))
        c = next((c for c in iss["comments"] if c["id"] == str(body.get("id"))), None) \
            if iss else None
        user = user_by(body.get("user", "Mia Krystof"))
        if c is None or user is None:
            return Reply(404, {"error": "no such issue, comment or user"})
        self.edit_comment(iss, c, self.rich(str(body.get("text", ""))), user["accountId"])
        return Reply(200, self.sim_issue(iss))

    @with_issue
    def r_changelog(self, req, iss):
        start, mx = self.paging(req, 100)
        if start is None:
            return bad("startAt and maxResults must be integers.")
        mx = min(mx, 100)
        hist = iss["changelog"]
        page = hist[start:start + mx]
        last = start + mx >= len(hist)
        base = "%s%s/issue/%s/changelog" % (self.base(), API3, iss["key"])
        o = {"self": "%s?startAt=%d&maxResults=%d" % (base, start, mx), "maxResults": mx,
             "startAt": start, "total": len(hist), "isLast": last,
             "values": [self.history_obj(h) for h in page]}
        if not last:
            o["nextPage"] = "%s?startAt=%d&maxResults=%d" % (base, start + mx, mx)
        return Reply(200, o)

    # --- control ----------------------------------------------------------------------------------
    def human_fields(self, spec):
        """Seed/edit shape (names, plain strings) -> staged values. Raises ValueError."""
        out = {}
        for name, v in spec.items():
            fid = FIELD_ALIASES.get(name.lower(), name)
            kind = FIELD_KIND.get(fid)
            if kind == "adf" and isinstance(v, str):
                v = self.rich(v)
            elif kind in REF_KINDS and isinstance(v, str):
                nk = "value" if kind == "select" else "name"
                t = by_name_or_id(REF_KINDS[kind], v, nk)
                if t is None:
                    raise ValueError("unknown %s '%s'" % (fid, v))
                out[fid] = t["id"]
                continue
            elif kind == "user" and isinstance(v, str):
                u = user_by(v)
                if u is None:
                    raise ValueError("unknown user '%s'" % v)
                out[fid] = u["accountId"]
                continue
            elif kind in (None, "readonly", "comment", "project"):
                raise ValueError("field '%s' cannot be seeded" % name)
            if kind == "labels":
                v = sorted(set(v or []))
            out[fid] = v
        return out

    def c_seed(self, req):
        body = req.json() or {}
        out = []
        for spec in body.get("issues", []):
            spec = dict(spec)
            created = spec.pop("created_ms", None)
            updated = spec.pop("updated_ms", None)
            props = spec.pop("properties", {})
            user = user_by(spec.pop("user", "Mia Krystof")) or USERS[2]
            spec.setdefault("summary", "Seeded issue")
            try:
                staged = self.human_fields(spec)
            except ValueError as e:
                return Reply(400, {"error": str(e)})
            status = staged.pop("status", None)
            iss = self.new_issue(staged, user["accountId"], created)
            if status:
                iss["f"]["status"] = status
                if by_id(STATUSES, status)["cat"] == "done":
                    iss["f"]["resolution"] = "10001" if status == "10003" else "10000"
                    iss["f"]["resolutiondate"] = iss["created"]
            iss["updated"] = updated if updated is not None else iss["created"]
            iss["props"].update(props)
            # seeded data is old: searchable at once regardless of the lag knob
            self.index[iss["id"]] = [(0, {k: copy.deepcopy(v) for k, v in iss.items()
                                          if k not in ("changelog", "links")})]
            out.append({"id": iss["id"], "key": iss["key"]})
        return Reply(200, {"issues": out})

    def c_edit(self, req):
        body = req.json() or {}
        iss = self.lookup(str(body.get("key", "")))
        if iss is None:
            return Reply(404, {"error": "no issue '%s'" % body.get("key")})
        user = user_by(body.get("user", "Mia Krystof"))
        if user is None:
            return Reply(400, {"error": "unknown user"})
        spec = dict(body.get("fields") or {})
        comment = spec.pop("comment", None)
        try:
            staged = self.human_fields(spec)
        except ValueError as e:
            return Reply(400, {"error": str(e)})
        status = staged.pop("status", None)
        items = self.apply(iss, staged, user["accountId"])
        if items:
            self.touch(iss, user["accountId"], items)
        if status and status != iss["f"]["status"]:
            self.move(iss, status, user["accountId"])
        if comment:
            self.add_comment(iss, self.rich(comment), user["accountId"])
        self.reindex(iss)
        return Reply(200, self.sim_issue(iss))

    def c_transition(self, req):
        body = req.json() or {}
        iss = self.lookup(str(body.get("key", "")))
        if iss is None:
            return Reply(404, {"error": "no issue '%s'" % body.get("key")})
        user = user_by(body.get("user", "Mia Krystof"))
        target = by_name_or_id(STATUSES, body.get("to"))
        if user is None or target is None:
            return Reply(400, {"error": "unknown user or status"})
        path = self.path_to(iss, target["id"])
        if path is None:
            return Reply(400, {"error": "no workflow path"})
        for sid in path:
            self.move(iss, sid, user["accountId"])
        return Reply(200, self.sim_issue(iss))

    def sim_issue(self, iss):
        """An issue as the API renders it (all fields but comments), plus what only the
        simulator knows: raw times, properties, remote links, comments and changelog."""
        fields = [f[0] for f in FIELD_DEFS if f[0] != "comment"]
        return {"id": iss["id"], "key": iss["key"],
                "fields": self.issue_obj(iss, fields)["fields"],
                "created_ms": iss["created"], "updated_ms": iss["updated"],
                "properties": copy.deepcopy(iss["props"]),
                "remotelinks": [lk["body"] for lk in iss["links"]],
                "comments": [{"id": c["id"], "author": user_by(c["author"])["displayName"],
                              "body": c["body"], "created_ms": c["created"],
                              "text": adf_text(c["body"]), "properties": c.get("props", {})}
                             for c in iss["comments"]],
                "changelog": [{"author": user_by(h["author"])["displayName"],
                               "created_ms": h["created"], "items": h["items"]}
                              for h in iss["changelog"]]}

    def c_issues(self, req):
        return Reply(200, [self.sim_issue(self.issues[k]) for k in sorted(self.issues, key=int)])

    def c_config(self, req):
        body = req.json() or {}
        if "flavor" in body:  # the data's shape depends on it: start afresh
            if body["flavor"] not in ("cloud", "datacenter"):
                return Reply(400, {"error": "flavor must be cloud or datacenter"})
            self.reset()
            self.flavor = body["flavor"]
        if "pat" in body:
            self.pat = str(body["pat"])
        if "search_lag_ms" in body:
            self.search_lag_ms = int(body["search_lag_ms"])
        if "time_zone" in body:
            self.tz_name = str(body["time_zone"])
        if "rate" in body:
            self.rate.update({k: float(v) for k, v in body["rate"].items()})
            self.buckets = {}
        if "per_issue" in body:
            self.per_issue = bool(body["per_issue"])
            self.issue_windows = {}
        if "api_token" in body:
            self.api_token = str(body["api_token"])
        if "search_page_cap" in body:
            self.page_cap = max(1, int(body["search_page_cap"]))
        if "user_page_cap" in body:
            self.user_page_cap = max(1, int(body["user_page_cap"]))
        return Reply(200, {"flavor": self.flavor, "search_lag_ms": self.search_lag_ms,
                           "time_zone": self.tz_name,
                           "rate": self.rate, "per_issue": self.per_issue,
                           "search_page_cap": self.page_cap})

    def c_delete(self, req):
        iss = self.lookup(req.match.group(1))
        if iss is None:
            return Reply(404, {"error": "no issue"})
        self.delete_issue(iss)
        return Reply(200, {"ok": True})

    # --- users ----------------------------------------------------------------------------------
    def assignable_scope(self, q):
        """None when the request names a project or issue the caller can see, else a Reply."""
        if not any(q.get(k) for k in ("project", "issueKey", "issueId")):
            return bad("The project or issue must be specified (project, issueKey or issueId).")
        if q.get("project") and not self.check_project(q["project"]):
            return Reply(404, errors(["No project could be found with key '%s'."
                                      % q["project"]]))
        ident = q.get("issueKey") or q.get("issueId")
        if ident and self.lookup(ident) is None:
            return self.missing()
        return None

    def assignable_filter(self, q):
        """(predicate over users, None) or (None, Reply) for the query parameters."""
        if self.dc():  # Data Center: `username` matches the start of name, display name, e-mail
            v = (q.get("username") or "").lower()
            return (lambda u: not v or any(str(x or "").lower().startswith(v) for x in (
                u["name"], u["displayName"], u.get("emailAddress")))), None
        if "username" in q:
            return None, bad("The query parameter 'username' is not supported in GDPR strict "
                             "mode.")
        if q.get("query") and q.get("accountId"):
            return None, bad("The parameters 'query' and 'accountId' cannot both be specified.")
        text, acc = (q.get("query") or "").lower(), q.get("accountId")
        return (lambda u: (not acc or u["accountId"] == acc) and (not text or any(
            w.startswith(text) for w in u["displayName"].lower().split() +
            ([] if u.get("hideEmail") else [u["emailAddress"].lower()])))), None

    def r_assignable(self, req):
        """GET /user/assignable/search: the project's assignable users by display name, one
        page of startAt/maxResults (capped at user_page_cap), a bare array."""
        q = req.query
        try:
            start, mx = int(q.get("startAt", 0)), int(q.get("maxResults", 50))
        except ValueError:
            return bad("startAt and maxResults must be integers.")
        if start < 0 or mx < 0:
            return bad("startAt and maxResults must not be negative.")
        refused = self.assignable_scope(q)
        keep, refused = (None, refused) if refused else self.assignable_filter(q)
        if refused:
            return refused
        people = sorted((u for u in USERS if keep(u)),
                        key=lambda u: (u["displayName"].lower(), u["accountId"]))
        page = people[start:start + min(mx, self.user_page_cap)]
        return Reply(200, [self.user_obj(u["accountId"]) for u in page])

    def c_users(self, req):
        body = req.json() or {}
        name = body.get("displayName")
        if not isinstance(name, str) or not name:
            return Reply(400, {"error": "displayName is required"})
        self.next_seq += 1
        u = {"accountId": str(body.get("accountId") or "5e0f%020x" % self.next_seq),
             "displayName": name, "name": str(body.get("name") or "user%d" % self.next_seq),
             "emailAddress": str(body.get("emailAddress") or "user%d@acme.test" % self.next_seq),
             "hideEmail": bool(body.get("hideEmail"))}
        if any(x["accountId"] == u["accountId"] or x["name"] == u["name"] for x in USERS):
            return Reply(400, {"error": "a user with that accountId or name exists"})
        USERS.append(u)
        return Reply(200, u)


if __name__ == "__main__":
    serve(JiraSim())
