#!/usr/bin/env python3
"""Zoho CRM v8 simulator for crmbridge tests: the accounts server and the CRM REST API in one
process (the token response's api_domain points back here).

Serves: POST /oauth/v2/token (refresh_token and authorization_code grants) and .../revoke;
/crm/v8/users (type, page, per_page); /crm/v8/settings/modules and /settings/fields; records
of Cases, Accounts and the custom module Feedback (list with fields/sort/page/page_token/ids/
If-Modified-Since, get one, insert, update, upsert, delete to the recycle bin, the
deleted-records feed); search with an indexing
delay; COQL (a real parser for the select subset). Field metadata drives validation.
Limits: a rolling 24 h credit counter and a concurrency cap, both answering 429
TOO_MANY_REQUESTS without Retry-After. Errors use Zoho's {code,details,message,status} envelope.
Notes live in zoho_notes.py, notification channels (watch) in zoho_watch.py. It does not serve
attachments or bulk read.

Where the public record is silent, these are the choices made (tests rely on them):
- token throttle: an 11th access token from one refresh token within 10 minutes gets HTTP 400
  {"error":"Access Denied","error_description":"You have made too many requests continuously.
  Please try again after some time.","status":"failure"} until the oldest mint of the window
  is 10 minutes old. Other token errors are HTTP 200 {"error": "..."} as documented.
- a malformed JSON body: 400 {"code":"INVALID_DATA","details":{},"message":"body"}.
- unknown field names in a write or in fields=: INVALID_DATA (fails loudly rather than
  ignoring them); writing a read-only field: INVALID_DATA with details.reason "read only".
- page: page * per_page must stay within the first 2,000 rows (with per_page 200: page <= 10).
  page_token pages by offset and is bound to fields, sort_by, sort_order, per_page, ids and the
  If-Modified-Since header; page and page_token together: 400 INVALID_DATA.
- If-Modified-Since: rows strictly newer at second precision; ISO-8601 with offset or RFC 1123.
- a write in which every record failed: 400 with data[] (412 if all were ALREADY_MODIFIED).
- users: a seeded directory (two active users share the name "Chen Jing", one is 李伟, one is
  deactivated). Owner and user lookups (Support_Engineer on Cases) take an active user's id;
  another id is INVALID_DATA with details.api_name, an emptied Owner MANDATORY_NOT_FOUND.
  GET /users: type defaults to AllUsers, an unknown type is INVALID_DATA (param_name "type");
  no users on the page: 204.
- COQL: lookups and owners come back as {"id"} (a dotted column gives the looked-up value);
  three or more conditions must be grouped in pairs with brackets; no rows: 204.
- search: rows written less than search_delay_s ago are invisible (not their old version).
- credits: 1 per call, writes 1 per 10 records, COQL 1/2/3 by LIMIT; charged on admission.
- concurrency: a request is in flight from admission to reply; config latency_ms, and a
  latency fault (the real service's latency is inside the request), make each admitted request
  linger so that parallel clients overlap.
- config garble_next=N: the next N API JSON answers are cut in half with a matching
  Content-Length (malformed JSON over a healthy connection; simbase's "truncate" fault breaks
  the framing instead, which clients see as a network error).

Control (besides simbase's): POST /_sim/seed, /_sim/edit ({"delete": true} deletes), /_sim/config, /_sim/expire_tokens,
/_sim/purge, /_sim/grant_code; GET /_sim/records?module=, /_sim/stats, /_sim/config,
/_sim/tokens (every access token minted, for tests that grep output for secrets);
POST /_sim/users {"full_name", "email", "status"} or {"count": N} adds users.
"""

import json
import random
import re
import secrets
import time
from collections import deque
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs

from simbase import Reply, Sim, serve
from zoho_notes import ZohoNotes
from zoho_watch import ZohoWatch

API = "/crm/v8"
ID_PREFIX = "5725767"
DAY_MS = 86400 * 1000
MINT_WINDOW_MS = 600 * 1000
MINTS_PER_WINDOW = 10
MAX_DISCRETE_ROWS = 2000
MAX_TOKEN_ROWS = 100000
TOO_MANY = ("Number of API requests for the 24 hour period is exceeded or the concurrency limit "
            "of the user for the app is exceeded")
TRIGGERS = ("workflow", "approval", "blueprint", "pathfinder", "orchestration")
SORTABLE = ("id", "Created_Time", "Modified_Time")
JSON_TYPES = {"text": "string", "textarea": "string", "email": "string", "phone": "string",
              "website": "string", "picklist": "string", "multiselectpicklist": "jsonarray",
              "lookup": "jsonobject", "ownerlookup": "jsonobject", "userlookup": "jsonobject",
              "date": "string",
              "datetime": "string", "autonumber": "string", "integer": "integer",
              "boolean": "boolean"}
TEXTUAL = ("text", "textarea", "email", "phone", "website", "picklist", "autonumber")
SCOPE = "ZohoCRM.modules.ALL ZohoCRM.settings.ALL ZohoCRM.coql.READ"

DEFAULT_CONFIG = {"org_offset_min": 480, "credits": 100000, "concurrency": 10,
                  "sub_concurrency": 10, "search_delay_s": 0, "token_ttl_s": 3600,
                  "page_token_ttl_s": 86400, "latency_ms": 0, "api_domain": None,
                  "garble_next": 0}
SEED_CLIENT = {"client_id": "1000.SIMCLIENT", "client_secret": "sim-client-secret",
               "refresh_token": "1000.sim-refresh-token"}
SEED_GRANT_CODE = "1000.sim-grant-code"

USERS = [("Sim Integration", "crm-integration@example.com"), ("Li Wei", "li.wei@example.com"),
         ("Patricia Boyle", "patricia.boyle@example.com"), ("Chen Jing", "chen.jing@example.com"),
         ("李伟", "liwei@example.cn"), ("Chen Jing", "jing.chen@example.org")]
# deactivated users: still named on old records, never active, refused as a new owner
FORMER_USERS = [("Ex Agent", "ex.agent@example.com")]
USER_TYPES = ("ownerlookup", "userlookup")
USER_LISTS = {"AllUsers": lambda u, me: True, "ActiveUsers": lambda u, me: u["status"] == "active",
              "DeactiveUsers": lambda u, me: u["status"] != "active",
              "ConfirmedUsers": lambda u, me: True,
              "ActiveConfirmedUsers": lambda u, me: u["status"] == "active",
              "NotConfirmedUsers": lambda u, me: False,
              "AdminUsers": lambda u, me: u["id"] == me,
              "ActiveConfirmedAdmins": lambda u, me: u["id"] == me,
              "CurrentUser": lambda u, me: u["id"] == me}
ACCOUNT_NAMES = ["Acme Trading Co.", "Zylker Corp", "Northwind Logistics",
                 "上海星辰科技有限公司", "Globex Pte Ltd"]
CASE_SUBJECTS = [
    "Export to Excel garbles Chinese characters", "Invoice PDF shows the wrong tax rate",
    "Login page times out on Safari", "Need bulk edit for order lines",
    "Mobile app crashes when uploading photos", "Add single sign-on with Azure AD",
    "Report totals differ from the dashboard", "Email notifications arrive twice",
    "API access for the warehouse system", "Customer search is slow",
    "Cannot attach files larger than 10 MB", "Dashboard widget shows stale data"]
CASE_DESCRIPTIONS = [
    "Customer reports this since the last update.\n\nSteps:\n1. Open the order list\n"
    "2. Click Export\n3. Open the file in Excel\n\nExpected: every character readable.",
    "Requested by the operations lead.\n\n* must keep the audit trail\n* needed before "
    "the quarter closes\n\nSee https://example.com/spec/42",
    "Happens for about a third of the users, only in the afternoon.",
    "客户反馈：导出的报表中文乱码，请尽快处理。"]
FEEDBACK_TITLES = ["Onboarding was smooth", "Wants a dark mode", "Support answered fast",
                   "Pricing page is confusing", "Asks for a Chinese UI"]
PEOPLE = ["Wang Fang", "John Smith", "Maria Garcia", "Zhang Wei", "Aiko Tanaka"]


class ApiError(Exception):
    """A whole-request failure, answered as Zoho's top-level error object."""

    def __init__(self, status, code, message, details=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}

    def reply(self):
        return Reply(self.status, err_item(self.code, self.message, self.details))


class FieldError(Exception):
    def __init__(self, message, **details):
        super().__init__(message)
        self.message, self.details = message, details


def err_item(code, message, details):
    return {"code": code, "details": details, "message": message, "status": "error"}


# --- time ----------------------------------------------------------------------------------------
def offset_str(off_min):
    sign = "+" if off_min >= 0 else "-"
    a = abs(off_min)
    return f"{sign}{a // 60:02d}:{a % 60:02d}"


def fmt_time(ms, off_min):
    tz = timezone(timedelta(minutes=off_min))
    return datetime.fromtimestamp(ms // 1000, tz).strftime("%Y-%m-%dT%H:%M:%S") + \
        offset_str(off_min)


def parse_time(s):
    """ISO-8601 date-time with an offset, or RFC 1123, into ms; None when unreadable."""
    if not isinstance(s, str) or not s.strip():
        return None
    s = s.strip()
    dt = None
    if re.match(r"\d{4}-\d\d-\d\dT", s):
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        try:
            dt = parsedate_to_datetime(s)
        except (TypeError, ValueError, IndexError):
            return None
    if dt is None or dt.tzinfo is None:
        return None
    return int(dt.timestamp() * 1000)


def parse_offset(s):
    m = re.fullmatch(r"([+-])(\d\d):?(\d\d)", str(s).strip())
    if not m:
        raise ValueError(f"bad offset {s!r}")
    v = int(m.group(2)) * 60 + int(m.group(3))
    return -v if m.group(1) == "-" else v


def valid_date(s):
    if not isinstance(s, str) or not re.fullmatch(r"\d{4}-\d\d-\d\d", s):
        return False
    try:
        date.fromisoformat(s)
        return True
    except ValueError:
        return False


# --- modules and field metadata ------------------------------------------------------------------
def fld(api, label, dtype, length=None, mandatory=False, read_only=False, custom=False,
        unique=False, values=None, lookup=None, default=None):
    f = {"api_name": api, "field_label": label, "display_label": label, "data_type": dtype,
         "json_type": JSON_TYPES[dtype], "system_mandatory": mandatory, "read_only": read_only,
         "field_read_only": read_only, "custom_field": custom, "visible": True,
         "filterable": True, "searchable": dtype in TEXTUAL, "sortable": dtype != "textarea",
         "unique": {"casesensitive": "false"} if unique else None, "default_value": default,
         "length": length if length is not None else {"text": 255, "textarea": 32000,
                                                      "email": 100, "phone": 30}.get(dtype, 0),
         "pick_list_values": [], "lookup": {}, "auto_number": None, "textarea": None}
    if values:
        f["pick_list_values"] = [{"display_value": v, "actual_value": v, "sequence_number": i + 1,
                                  "type": "used", "colour_code": None, "id": None}
                                 for i, v in enumerate(values)]
    if lookup:
        f["lookup"] = {"module": {"api_name": lookup, "id": None}, "display_label": label,
                       "api_name": None, "id": None}
    if dtype == "autonumber":
        f["auto_number"] = {"prefix": "", "suffix": "", "start_number": 1000,
                            "starting_number_length": 0}
    if dtype == "textarea":
        f["textarea"] = {"type": "large"}
    return f


def system_fields(singular):
    return [fld("Owner", f"{singular} Owner", "ownerlookup"),
            fld("Created_By", "Created By", "ownerlookup", read_only=True),
            fld("Modified_By", "Modified By", "ownerlookup", read_only=True),
            fld("Created_Time", "Created Time", "datetime", read_only=True),
            fld("Modified_Time", "Modified Time", "datetime", read_only=True)]


def cases_fields():
    return [
        fld("Case_Number", "Case Number", "autonumber", length=32, read_only=True),
        fld("Subject", "Subject", "text", length=255, mandatory=True),
        fld("Description", "Description", "textarea", length=32000),
        fld("Status", "Status", "picklist", values=["New", "Escalated", "On Hold", "Closed"],
            default="New"),
        fld("Priority", "Priority", "picklist", values=["High", "Medium", "Low"]),
        fld("Type", "Type", "picklist", values=["Problem", "Feature Request", "Question"]),
        fld("Case_Origin", "Case Origin", "picklist", values=["Email", "Phone", "Web"]),
        fld("Case_Reason", "Case Reason", "picklist",
            values=["User did not attend any training", "Complex functionality",
                    "Existing problem", "Instructions not understood", "New problem"]),
        fld("Due_Date", "Due Date", "date"),
        fld("Account_Name", "Account Name", "lookup", lookup="Accounts"),
        fld("Email", "Email", "email"),
        fld("Phone", "Phone", "phone"),
        fld("Reported_By", "Reported By", "text", length=120),
        fld("Solution", "Solution", "textarea"),
        fld("Internal_Comments", "Internal Comments", "textarea"),
        fld("No_of_comments", "No of comments", "integer", read_only=True),
        fld("Jira_Issue", "Jira Issue", "text", length=255, custom=True),
        fld("Tracker_Ref", "Tracker Ref", "text", length=255, custom=True),
        fld("Support_Engineer", "Support Engineer", "userlookup", custom=True),
        fld("crmbridge_id", "crmbridge id", "text", length=255, custom=True, unique=True),
    ] + system_fields("Case")


def accounts_fields():
    return [
        fld("Account_Name", "Account Name", "text", length=200, mandatory=True),
        fld("Account_Number", "Account Number", "text", length=40),
        fld("Phone", "Phone", "phone"),
        fld("Website", "Website", "website", length=255),
        fld("Industry", "Industry", "picklist",
            values=["Manufacturing", "Retail", "Technology", "Logistics", "Finance"]),
        fld("Description", "Description", "textarea"),
    ] + system_fields("Account")


def feedback_fields():
    return [
        fld("Name", "Feedback Name", "text", length=120, mandatory=True),
        fld("Description", "Description", "textarea"),
        fld("Rating", "Rating", "integer", custom=True),
        fld("Feedback_Status", "Feedback Status", "picklist", custom=True,
            values=["Open", "Reviewed", "Done"], default="Open"),
        fld("Customer", "Customer", "lookup", custom=True, lookup="Accounts"),
        fld("Tags", "Tags", "multiselectpicklist", custom=True,
            values=["ui", "pricing", "support", "i18n"]),
        fld("Jira_Issue", "Jira Issue", "text", length=255, custom=True),
        fld("crmbridge_id", "crmbridge id", "text", length=255, custom=True, unique=True),
    ] + system_fields("Feedback")


class Module:
    def __init__(self, api_name, singular, plural, mid, fields, display_field, custom=False):
        self.api_name, self.singular, self.plural, self.id = api_name, singular, plural, mid
        self.fields, self.display_field, self.custom = fields, display_field, custom
        self.by_name = {f["api_name"]: f for f in fields}
        self.rows = {}
        self.purged = []  # permanent tombstones: {"id", "deleted_ms"}
        self.autonum = 1000

    def live_rows(self):
        return [r for r in self.rows.values() if not r["deleted"]]

    def live(self, rid):
        r = self.rows.get(rid) if isinstance(rid, str) else None
        return r if r and not r["deleted"] else None

    def meta(self, seq):
        return {"api_name": self.api_name, "module_name": self.api_name, "id": self.id,
                "singular_label": self.singular, "plural_label": self.plural,
                "generated_type": "custom" if self.custom else "default", "api_supported": True,
                "creatable": True, "editable": True, "deletable": True, "viewable": True,
                "visible": True, "status": "visible", "sequence_number": seq}


def same_value(f, a, b):
    if isinstance(a, str) and isinstance(b, str) and f["data_type"] in TEXTUAL:
        return a.casefold() == b.casefold()
    return a == b


# --- search criteria -----------------------------------------------------------------------------
SEARCH_OPS = ("equals", "not_equal", "starts_with", "in", "greater_than", "greater_equal",
              "less_than", "less_equal", "between")


def criteria_error(reason):
    return ApiError(400, "INVALID_QUERY", "invalid query formed", {"reason": reason})


class CriteriaParser:
    """((Field:op:value)and(Field:op:value)), with \\( \\) \\, escapes; at most 10 conditions."""

    def __init__(self, s):
        self.s, self.i, self.n = s, 0, 0

    def parse(self):
        node = self.expr()
        if self.i != len(self.s):
            raise criteria_error(f"unexpected text at {self.i}")
        return node

    def expr(self):
        node = self.group()
        while True:
            m = re.match(r"(and|or)(?=\()", self.s[self.i:], re.I)
            if not m:
                return node
            self.i += len(m.group(1))
            node = (m.group(1).lower(), node, self.group())

    def group(self):
        if self.s[self.i:self.i + 1] != "(":
            raise criteria_error(f"'(' expected at {self.i}")
        self.i += 1
        node = self.expr() if self.s[self.i:self.i + 1] == "(" else self.cond()
        if self.s[self.i:self.i + 1] != ")":
            raise criteria_error(f"')' expected at {self.i}")
        self.i += 1
        return node

    def cond(self):
        j, raw = self.i, []
        while j < len(self.s) and self.s[j] != ")":
            step = 2 if self.s[j] == "\\" else 1
            raw.append(self.s[j:j + step])
            j += step
        self.i = j
        parts = "".join(raw).split(":", 2)
        if len(parts) != 3 or parts[1] not in SEARCH_OPS:
            raise criteria_error(f"bad condition '{''.join(raw)}'")
        self.n += 1
        if self.n > 10:
            raise criteria_error("more than 10 conditions")
        values = [re.sub(r"\\(.)", r"\1", v) for v in re.split(r"(?<!\\),", parts[2])]
        return ("cond", parts[0], parts[1], values)


# --- COQL ----------------------------------------------------------------------------------------
COQL_TOKEN = re.compile(r"""\s*(?:(?P<str>'(?:[^'\\]|\\.|'')*')
    |(?P<num>-?\d+(?:\.\d+)?)(?![A-Za-z_])
    |(?P<op>!=|<>|>=|<=|=|>|<|\(|\)|,|\*)
    |(?P<word>[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*))""", re.X)
COQL_CMP = ("=", "!=", "<>", ">", ">=", "<", "<=")


def coql_syntax(near, pos):
    return ApiError(400, "SYNTAX_ERROR", "invalid query formed",
                    {"near": near, "line": 1, "column": pos + 1})


def coql_tokens(q):
    toks, pos = [], 0
    while True:
        while pos < len(q) and q[pos].isspace():
            pos += 1
        if pos >= len(q):
            return toks
        m = COQL_TOKEN.match(q, pos)
        if not m or m.end() == pos:
            raise coql_syntax(q[pos:pos + 10], pos)
        kind = m.lastgroup
        toks.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()


class CoqlParser:
    """select cols from Module [where cond] [order by col [asc|desc], ...] [limit N [offset M]]"""

    def __init__(self, q):
        self.toks, self.i = coql_tokens(q), 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else ("end", "", -1)

    def at(self, value):
        k, v, _ = self.peek()
        return (k == "word" and v.lower() == value) or (k == "op" and v == value)

    def take(self, value=None, kind=None):
        k, v, p = self.peek()
        if (value is not None and not self.at(value)) or (kind and k != kind) or k == "end":
            raise coql_syntax(v or "end of query", p if p >= 0 else 0)
        self.i += 1
        return v

    def parse(self):
        self.take("select")
        cols = [self.take(kind="word")]
        while self.at(","):
            self.take(",")
            cols.append(self.take(kind="word"))
        self.take("from")
        q = {"cols": cols, "module": self.take(kind="word"), "where": None, "order": [],
             "limit": 200, "offset": 0}
        if self.at("where"):
            self.take("where")
            q["where"] = self.expr()
        if self.at("order"):
            self.take("order")
            self.take("by")
            q["order"] = self.order_list()
        if self.at("limit"):
            self.limit_clause(q)
        if self.peek()[0] != "end":
            k, v, p = self.peek()
            raise coql_syntax(v, p)
        return q

    def limit_clause(self, q):
        self.take("limit")
        first = int(self.take(kind="num"))
        if self.at(","):
            self.take(",")
            q["offset"], q["limit"] = first, int(self.take(kind="num"))
        else:
            q["limit"] = first
        if self.at("offset"):
            self.take("offset")
            q["offset"] = int(self.take(kind="num"))

    def order_list(self):
        out = []
        while True:
            col = self.take(kind="word")
            desc = False
            if self.at("asc") or self.at("desc"):
                desc = self.take().lower() == "desc"
            out.append((col, desc))
            if not self.at(","):
                return out
            self.take(",")

    def expr(self):
        left = self.factor()
        if not (self.at("and") or self.at("or")):
            return left
        op = self.take().lower()
        right = self.factor()
        if self.at("and") or self.at("or"):
            k, v, p = self.peek()
            raise coql_syntax(v, p)  # more than two criteria need brackets: ((A and B) and C)
        return (op, left, right)

    def factor(self):
        if self.at("("):
            self.take("(")
            e = self.expr()
            self.take(")")
            return e
        return self.cond()

    def cond(self):
        col = self.take(kind="word")
        if self.at("is"):
            self.take("is")
            neg = self.at("not")
            if neg:
                self.take("not")
            self.take("null")
            return ("isnull", col, neg)
        neg = self.at("not")
        if neg:
            self.take("not")
        if self.at("in"):
            self.take("in")
            self.take("(")
            vals = [self.literal()]
            while self.at(","):
                self.take(",")
                vals.append(self.literal())
            self.take(")")
            return ("in", col, vals, neg)
        if self.at("like"):
            self.take("like")
            return ("like", col, self.literal(), neg)
        if self.at("between"):
            self.take("between")
            lo = self.literal()
            self.take("and")
            return ("between", col, (lo, self.literal()), neg)
        k, v, p = self.peek()
        if neg or k != "op" or v not in COQL_CMP:
            raise coql_syntax(v, p)
        self.take()
        return ("cmp", col, v, self.literal())

    def literal(self):
        k, v, p = self.peek()
        if k == "str":
            self.i += 1
            return re.sub(r"\\(.)|''", lambda m: m.group(1) or "'", v[1:-1])
        if k == "num":
            self.i += 1
            return float(v) if "." in v else int(v)
        if k == "word" and v.lower() in ("true", "false"):
            self.i += 1
            return v.lower() == "true"
        raise coql_syntax(v or "end of query", max(p, 0))


def like_regex(pattern):
    parts = [".*" if c == "%" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.I | re.S)


# --- the simulator -------------------------------------------------------------------------------
class ZohoSim(ZohoNotes, ZohoWatch, Sim):
    name = "zoho"
    base_url = "http://127.0.0.1"

    # --- state ---------------------------------------------------------------------------------
    def reset(self):
        self.cfg = dict(DEFAULT_CONFIG)
        self.watch_reset()  # zoho_watch.py
        self.seq = 524157
        self.users = {}
        self.user_order = []
        for name, email in USERS:
            self.add_user(name, email)
        for name, email in FORMER_USERS:
            self.add_user(name, email, "disabled")
        self.api_user = self.user_order[0]
        self.client = dict(SEED_CLIENT)
        self.extra_refresh = set()
        self.revoked_refresh = set()
        self.grant_codes = {SEED_GRANT_CODE: None}
        self.tokens = {}
        self.mints = {}
        self.page_tokens = {}
        self.credit_log = deque()  # (ms, credits) of admitted calls, oldest first
        self.credits_spent = 0  # their sum
        self.inflight = 0
        self.inflight_heavy = 0
        self.seed_round = 0
        self.stats = {"tokens_minted": 0, "automations_triggered": 0, "credits_used_total": 0,
                      "api_requests": 0, "rejected_concurrency": 0, "rejected_credits": 0,
                      "inflight_max": 0, "records_inserted": 0, "records_updated": 0,
                      "records_deleted": 0, "triggers_seen": []}
        self.modules = {}
        self.notes = {}  # zoho_notes.py
        for args in (("Cases", "Case", "Cases", cases_fields(), "Subject"),
                     ("Accounts", "Account", "Accounts", accounts_fields(), "Account_Name"),
                     ("Feedback", "Feedback", "Feedback", feedback_fields(), "Name", True)):
            mod = Module(args[0], args[1], args[2], self.new_id(), args[3], args[4],
                         *args[5:])
            for f in mod.fields:
                f["id"] = self.new_id()
            self.modules[mod.api_name] = mod
        for mod in self.modules.values():
            for f in mod.fields:
                if f["lookup"]:
                    f["lookup"]["module"]["id"] = self.modules[f["lookup"]["module"]["api_name"]].id
        for name in ACCOUNT_NAMES:
            self.insert_row(self.modules["Accounts"], {"Account_Name": name}, self.api_user)

    def new_id(self):
        self.seq += 1
        return f"{ID_PREFIX}{self.seq:012d}"

    def add_user(self, name, email=None, status="active"):
        uid = self.new_id()
        email = email or re.sub(r"[^a-z.]", "", name.lower().replace(" ", ".")) + "@example.com"
        self.users[uid] = {"id": uid, "name": name, "email": email, "status": status}
        self.user_order.append(uid)
        return uid

    def user_by_name(self, name):
        for uid, u in self.users.items():
            if u["name"] == name or uid == name:
                return uid
        return self.add_user(name)

    def org_time(self, ms):
        return fmt_time(ms, self.cfg["org_offset_min"])

    def now_s_ms(self):
        n = self.now_ms()
        return n - n % 1000

    # --- rendering -------------------------------------------------------------------------------
    def user_ref(self, uid, email=True):
        u = self.users.get(uid)
        if not u:
            return None
        return {"name": u["name"], "id": uid, "email": u["email"]} if email else \
            {"name": u["name"], "id": uid}

    def render_value(self, f, v, coql=False):
        if v is None:
            return None
        t = f["data_type"]
        if t == "datetime":
            return self.org_time(v)
        if t in ("lookup",) + USER_TYPES and coql:
            return {"id": v}
        if t == "lookup":
            target = self.modules[f["lookup"]["module"]["api_name"]]
            row = target.rows.get(v)
            return {"name": row["v"].get(target.display_field) if row else None, "id": v}
        if t in USER_TYPES:
            return self.user_ref(v)
        return list(v) if isinstance(v, list) else v

    def render_row(self, mod, row, fields=None):
        out = {"id": row["id"]}
        for f in mod.fields:
            if fields is None or f["api_name"] in fields:
                out[f["api_name"]] = self.render_value(f, row["v"].get(f["api_name"]))
        out.update({"$approval_state": "approved", "$editable": True, "$state": "save",
                    "$process_flow": False, "$locked_for_me": False})
        return out

    def write_details(self, row):
        v = row["v"]
        return {"Modified_Time": self.org_time(v["Modified_Time"]),
                "Modified_By": self.user_ref(v["Modified_By"], email=False),
                "Created_Time": self.org_time(v["Created_Time"]), "id": row["id"],
                "Created_By": self.user_ref(v["Created_By"], email=False),
                "$approval_state": "approved"}

    # --- admission: auth, credits, concurrency ---------------------------------------------------
    def fault_latency(self, req, delay_ms):
        req.zoho_delay_ms = delay_ms  # slept in before_route, once the request is in flight

    def before_route(self, req):
        delay_ms = getattr(req, "zoho_delay_ms", 0)
        if not req.path.startswith("/crm/"):
            time.sleep(delay_ms / 1000.0)
            return None
        try:
            with self.lock:
                self.authenticate(req)
            cost = self.cost(req)  # a malformed body raises BadJson here: 400, not admitted
            with self.lock:
                self.admit(req, cost)
        except ApiError as e:
            time.sleep(delay_ms / 1000.0)  # refused: slow, but not in flight
            return e.reply()
        delay_ms += self.cfg["latency_ms"]
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)
        return None

    def authenticate(self, req):
        m = re.fullmatch(r"Zoho-oauthtoken\s+(\S+)", (req.header("Authorization") or "").strip())
        tok = self.tokens.get(m.group(1)) if m else None
        if not tok or tok["revoked"] or tok["expires_ms"] <= self.now_ms():
            raise ApiError(401, "INVALID_TOKEN", "invalid oauth token")

    def cost(self, req):
        if req.method in ("POST", "PUT") and req.path.endswith("/coql"):
            q = (req.json() or {}).get("select_query", "") if isinstance(req.json(), dict) else ""
            m = re.search(r"\blimit\s+(\d+)(?:\s*,\s*(\d+))?", str(q), re.I)
            limit = int(m.group(2) or m.group(1)) if m else 200
            return 1 if limit <= 200 else 2 if limit <= 1000 else 3
        if req.method in ("POST", "PUT"):
            body = req.json()
            data = body.get("data") if isinstance(body, dict) else None
            return max(1, (len(data) + 9) // 10) if isinstance(data, list) else 1
        return 1

    def is_heavy(self, req):
        if req.path.endswith("/coql"):
            return True
        if req.method == "GET" and ("sort_by" in req.query or "cvid" in req.query):
            return True
        if req.method in ("POST", "PUT"):
            body = req.json()
            return isinstance(body, dict) and len(body.get("data") or []) > 10
        return False

    def credits_used(self, now):
        """Credits of the rolling 24 h before now: the log is pruned from its old end, not
        rescanned per call (after the clock is set back it is recounted once)."""
        log = self.credit_log
        if log and log[-1][0] > now:
            self.credit_log = log = deque(sorted(e for e in log if e[0] > now - DAY_MS))
            self.credits_spent = sum(c for _, c in log)
        while log and log[0][0] <= now - DAY_MS:
            self.credits_spent -= log.popleft()[1]
        return self.credits_spent

    def admit(self, req, cost):
        now = self.now_ms()
        heavy = self.is_heavy(req)
        if self.credits_used(now) + cost > self.cfg["credits"]:
            self.stats["rejected_credits"] += 1
            raise ApiError(429, "TOO_MANY_REQUESTS", TOO_MANY)
        if self.inflight >= self.cfg["concurrency"] or \
                (heavy and self.inflight_heavy >= self.cfg["sub_concurrency"]):
            self.stats["rejected_concurrency"] += 1
            raise ApiError(429, "TOO_MANY_REQUESTS", TOO_MANY)
        self.credit_log.append((now, cost))
        self.credits_spent += cost
        self.stats["credits_used_total"] += cost
        self.stats["api_requests"] += 1
        self.inflight += 1
        self.inflight_heavy += 1 if heavy else 0
        req.zoho_admitted = (True, heavy)
        self.stats["inflight_max"] = max(self.stats["inflight_max"], self.inflight)

    def dispatch(self, req):
        admitted = None
        try:
            rep = self.garble(req, super().dispatch(req))
        except ApiError as e:
            rep = e.reply()
        finally:
            admitted = getattr(req, "zoho_admitted", None)
            if admitted:
                self.inflight -= 1
                self.inflight_heavy -= 1 if admitted[1] else 0
                req.zoho_admitted = None
        if admitted:
            # the secondary credit source the digest names: what is left of the rolling 24 h
            used = self.credits_used(self.now_ms())
            rep.headers["X-API-CREDITS-REMAINING"] = str(max(0, self.cfg["credits"] - used))
        return rep

    def garble(self, req, rep):
        """config garble_next: the next N API answers with a JSON body are cut in half but keep a
        matching Content-Length (a broken proxy, not a broken connection)."""
        if self.cfg["garble_next"] > 0 and req.path.startswith("/crm/") and rep.body is not None:
            self.cfg["garble_next"] -= 1
            data = rep.payload()
            rep.raw = data[:len(data) // 2]
        return rep

    # --- error bodies ----------------------------------------------------------------------------
    def error_body(self, status, req):
        if req.path.startswith("/oauth/"):
            return Reply(status, {"error": "internal_error"} if status >= 500 else
                         {"error": "Access Denied", "status": "failure"})
        known = {401: ("INVALID_TOKEN", "invalid oauth token"),
                 403: ("NO_PERMISSION", "permission denied"),
                 404: ("INVALID_URL_PATTERN",
                       "Please check if the URL trying to access is a correct one"),
                 429: ("TOO_MANY_REQUESTS", TOO_MANY)}
        code, msg = known.get(status, ("INTERNAL_ERROR", "Internal server error occurred.")
                              if status >= 500 else ("INVALID_DATA", "invalid data"))
        return Reply(status, err_item(code, msg, {}))

    def not_found(self, req, status):
        if req.path.startswith("/_sim/"):
            return Reply(status, {"error": "no such control route", "path": req.path})
        if status == 405:
            return ApiError(405, "INVALID_REQUEST_METHOD",
                            "The http request method type is not a valid one").reply()
        return ApiError(404, "INVALID_URL_PATTERN",
                        "Please check if the URL trying to access is a correct one").reply()

    def bad_json(self, req, detail):
        if req.path.startswith("/_sim/"):
            return Reply(400, {"error": "malformed json", "detail": detail})
        return ApiError(400, "INVALID_DATA", "body").reply()

    # --- routes ----------------------------------------------------------------------------------
    def setup_routes(self):
        self.notes_routes(ApiError)  # before the generic /{module}/{id} routes
        self.watch_routes(ApiError, parse_time)  # zoho_watch.py
        r = self.route
        r("POST", r"/oauth/v2/token", self.r_token)
        r("POST", r"/oauth/v2/token/revoke", self.r_revoke)
        r("GET", API + r"/users", self.r_users)
        r("GET", API + r"/settings/modules", self.r_modules)
        r("GET", API + r"/settings/fields", self.r_fields)
        r("POST", API + r"/coql", self.r_coql)
        r("GET", API + r"/([^/]+)/search", self.r_search)
        r("GET", API + r"/([^/]+)/deleted", self.r_deleted)
        r("POST", API + r"/([^/]+)/upsert", lambda q: self.write_request(q, "upsert"))
        r("GET", API + r"/([^/]+)", self.r_list)
        r("POST", API + r"/([^/]+)", lambda q: self.write_request(q, "insert"))
        r("PUT", API + r"/([^/]+)", lambda q: self.write_request(q, "update"))
        r("DELETE", API + r"/([^/]+)", self.r_delete)
        r("GET", API + r"/([^/]+)/([^/]+)", self.r_get_one)
        r("PUT", API + r"/([^/]+)/([^/]+)",
          lambda q: self.write_request(q, "update", q.match.group(2)))
        r("DELETE", API + r"/([^/]+)/([^/]+)",
          lambda q: self.delete_ids(self.module_of(q), [q.match.group(2)], q))
        c = self.control
        c("POST", r"/_sim/seed", self.c_seed)
        c("POST", r"/_sim/edit", self.c_edit)
        c("GET", r"/_sim/records", self.c_records)
        c("POST", r"/_sim/config", self.c_config)
        c("GET", r"/_sim/config", lambda q: Reply(200, self.public_config()))
        c("POST", r"/_sim/expire_tokens", self.c_expire_tokens)
        c("GET", r"/_sim/stats", self.c_stats)
        c("GET", r"/_sim/tokens", lambda q: Reply(200, {"access_tokens": sorted(self.tokens)}))
        c("POST", r"/_sim/purge", self.c_purge)
        c("POST", r"/_sim/grant_code", self.c_grant_code)
        c("POST", r"/_sim/users", self.c_users)

    # --- accounts server -------------------------------------------------------------------------
    def token_params(self, req):
        p = dict(req.query)
        if req.raw and "json" not in (req.header("Content-Type") or ""):
            form = parse_qs(req.raw.decode("utf-8", "replace"), keep_blank_values=True)
            p.update({k: v[-1] for k, v in form.items()})
        return p

    def refresh_tokens(self):
        return ({self.client["refresh_token"]} | self.extra_refresh) - self.revoked_refresh

    def r_token(self, req):
        p = self.token_params(req)
        grant = p.get("grant_type")
        if grant not in ("refresh_token", "authorization_code"):
            return Reply(200, {"error": "unsupported_grant_type"})
        if p.get("client_id") != self.client["client_id"]:
            return Reply(200, {"error": "invalid_client"})
        if p.get("client_secret") != self.client["client_secret"]:
            return Reply(200, {"error": "invalid_client_secret"})
        if grant == "authorization_code":
            return self.grant_from_code(p.get("code"))
        rt = p.get("refresh_token")
        if rt not in self.refresh_tokens():
            return Reply(200, {"error": "invalid_code"})
        now = self.now_ms()
        window = [t for t in self.mints.get(rt, []) if t > now - MINT_WINDOW_MS]
        self.mints[rt] = window
        if len(window) >= MINTS_PER_WINDOW:
            return Reply(400, {"error": "Access Denied", "status": "failure",
                               "error_description": "You have made too many requests "
                               "continuously. Please try again after some time."})
        window.append(now)
        return Reply(200, self.mint(rt))

    def mint(self, rt):
        tok = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        ttl = self.cfg["token_ttl_s"]
        self.tokens[tok] = {"rt": rt, "expires_ms": self.now_ms() + ttl * 1000, "revoked": False}
        self.stats["tokens_minted"] += 1
        return {"access_token": tok, "scope": SCOPE, "token_type": "Bearer", "expires_in": ttl,
                "api_domain": self.cfg["api_domain"] or self.base_url}

    def grant_from_code(self, code):
        if code not in self.grant_codes:
            return Reply(200, {"error": "invalid_code"})
        expiry = self.grant_codes.pop(code)
        if expiry is not None and expiry <= self.now_ms():
            return Reply(200, {"error": "invalid_code"})
        rt = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        self.extra_refresh.add(rt)
        body = self.mint(rt)
        body["refresh_token"] = rt
        return Reply(200, body)

    def r_revoke(self, req):
        tok = self.token_params(req).get("token")
        if tok in self.refresh_tokens():
            self.revoked_refresh.add(tok)
            for t in self.tokens.values():
                t["revoked"] = t["revoked"] or t["rt"] == tok
        elif tok in self.tokens:
            self.tokens[tok]["revoked"] = True
        else:
            return Reply(200, {"error": "invalid_token"})
        return Reply(200, {"status": "success"})

    # --- parameters ------------------------------------------------------------------------------
    def module_of(self, req, name=None):
        name = name if name is not None else req.match.group(1)
        mod = self.modules.get(name)
        if not mod:
            raise ApiError(400, "INVALID_MODULE", "the module name given seems to be invalid",
                           {"resource_path_index": 0})
        return mod

    def int_param(self, q, name, default, lo, hi=None):
        raw = q.get(name)
        if raw is None:
            return default
        if not re.fullmatch(r"-?\d+", raw):
            raise ApiError(400, "INVALID_DATA", "invalid data",
                           {"param_name": name, "expected_data_type": "integer"})
        v = int(raw)
        if v < lo or (hi is not None and v > hi):
            raise ApiError(400, "INVALID_DATA", "invalid data",
                           {"param_name": name, "minimum": lo, "maximum": hi})
        return v

    def fields_param(self, mod, raw, required):
        if raw is None or not raw.strip():
            if required:
                raise ApiError(400, "REQUIRED_PARAM_MISSING",
                               "One of the expected parameter is missing",
                               {"param_name": "fields"})
            return None
        names = [n.strip() for n in raw.split(",") if n.strip()]
        if len(names) > 50:
            raise ApiError(400, "LIMIT_EXCEEDED", "Max field limit exceeded",
                           {"limit": 50, "param_name": "fields"})
        for n in names:
            if n != "id" and n not in mod.by_name:
                raise ApiError(400, "INVALID_DATA", "invalid data",
                               {"param_name": "fields", "api_name": n})
        return set(names)

    def ids_param(self, raw, required=False):
        if raw is None or not raw.strip():
            if required:
                raise ApiError(400, "REQUIRED_PARAM_MISSING",
                               "One of the expected parameter is missing", {"param_name": "ids"})
            return None
        ids = [x.strip() for x in raw.split(",") if x.strip()]
        if len(ids) > 100:
            raise ApiError(400, "LIMIT_EXCEEDED", "Record count exceeded",
                           {"limit": 100, "param_name": "ids"})
        return ids

    def time_header(self, req, name):
        raw = req.header(name)
        if raw is None:
            return None
        ms = parse_time(raw)
        if ms is None:
            raise ApiError(400, "INVALID_DATA", "invalid data",
                           {"param_name": name, "expected_data_type": "datetime"})
        return ms - ms % 1000

    # --- users -----------------------------------------------------------------------------------
    def user_json(self, u):
        first, _, last = u["name"].rpartition(" ")
        return {"id": u["id"], "full_name": u["name"], "first_name": first or None,
                "last_name": last, "email": u["email"], "status": u["status"], "confirm": True,
                "zuid": str(int(u["id"]) % 100000000), "role": {"name": "CEO" if u["id"] ==
                self.api_user else "Standard", "id": f"{ID_PREFIX}000000026005"},
                "profile": {"name": "Administrator" if u["id"] == self.api_user else "Standard",
                            "id": f"{ID_PREFIX}000000026011"}, "time_zone": "Asia/Shanghai"}

    def r_users(self, req):
        q = req.query
        typ = q.get("type", "AllUsers")
        if typ not in USER_LISTS:
            raise ApiError(400, "INVALID_DATA", "invalid data",
                           {"param_name": "type", "supported_values": sorted(USER_LISTS)})
        page = self.int_param(q, "page", 1, 1)
        per_page = self.int_param(q, "per_page", 200, 1, 200)
        users = [self.users[uid] for uid in self.user_order
                 if USER_LISTS[typ](self.users[uid], self.api_user)]
        window = users[(page - 1) * per_page:page * per_page]
        if not window:
            return Reply(204)
        return Reply(200, {"users": [self.user_json(u) for u in window],
                           "info": {"per_page": per_page, "count": len(window), "page": page,
                                    "more_records": page * per_page < len(users)}})

    def c_users(self, req):
        """{"full_name", "email", "status"} adds one user; {"count": N} adds N generated ones."""
        body = req.json() or {}
        if body.get("count"):
            ids = [self.add_user(f"Agent {len(self.users) + 1}") for _ in range(int(body["count"]))]
        else:
            ids = [self.add_user(body.get("full_name") or body.get("name") or "New User",
                                 body.get("email"), body.get("status", "active"))]
        return Reply(200, {"ids": ids, "users": [self.user_json(self.users[i]) for i in ids]})

    # --- metadata --------------------------------------------------------------------------------
    def r_modules(self, req):
        return Reply(200, {"modules": [m.meta(i + 1) for i, m in enumerate(self.modules.values())]})

    def r_fields(self, req):
        name = req.query.get("module")
        if not name:
            raise ApiError(400, "REQUIRED_PARAM_MISSING",
                           "One of the expected parameter is missing", {"param_name": "module"})
        mod = self.module_of(req, name)
        return Reply(200, {"fields": [dict(f) for f in mod.fields]})

    # --- reading ---------------------------------------------------------------------------------
    def r_list(self, req):
        mod = self.module_of(req)
        q = req.query
        fields = self.fields_param(mod, q.get("fields"), required=True)
        ids = self.ids_param(q.get("ids"))
        sort_by = q.get("sort_by", "id")
        sort_order = q.get("sort_order", "desc")
        if sort_by not in SORTABLE:
            raise ApiError(400, "INVALID_DATA", "invalid data",
                           {"param_name": "sort_by", "supported_values": list(SORTABLE)})
        if sort_order not in ("asc", "desc"):
            raise ApiError(400, "INVALID_DATA", "invalid data",
                           {"param_name": "sort_order", "supported_values": ["asc", "desc"]})
        per_page = self.int_param(q, "per_page", 200, 1, 200)
        ims = self.time_header(req, "If-Modified-Since")
        bind = json.dumps([mod.api_name, sorted(fields), sort_by, sort_order, per_page, ids,
                           req.header("If-Modified-Since")])
        offset = self.page_offset(q, per_page, bind)
        rows = mod.live_rows()
        if ids is not None:
            rows = [r for r in rows if r["id"] in ids]
        if not rows:
            return Reply(204)
        if ims is not None:
            rows = [r for r in rows if r["v"]["Modified_Time"] > ims]
            if not rows:
                return Reply(304)
        rows.sort(key=lambda r: (int(r["id"]) if sort_by == "id" else (r["v"][sort_by],
                                                                       int(r["id"]))),
                  reverse=sort_order == "desc")
        window = rows[offset:offset + per_page]
        if not window:
            return Reply(204)
        more = offset + len(window) < len(rows)
        info = {"per_page": per_page, "count": len(window), "page": offset // per_page + 1,
                "sort_by": sort_by, "sort_order": sort_order, "more_records": more,
                "next_page_token": self.new_page_token(bind, offset + per_page) if more else None,
                "previous_page_token": self.new_page_token(bind, offset - per_page)
                if offset > 0 else None,
                "page_token_expiry": self.org_time(self.now_ms() +
                                                   self.cfg["page_token_ttl_s"] * 1000),
                "call": False, "email": False}
        return Reply(200, {"data": [self.render_row(mod, r, fields) for r in window],
                           "info": info})

    def page_offset(self, q, per_page, bind):
        tok = q.get("page_token")
        if tok is None:
            page = self.int_param(q, "page", 1, 1)
            if page * per_page > MAX_DISCRETE_ROWS:
                raise ApiError(400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                               "the maximum number of records that can be fetched with the page "
                               "param is exceeded; use page_token", {"limit": MAX_DISCRETE_ROWS})
            return (page - 1) * per_page
        if "page" in q:
            raise ApiError(400, "INVALID_DATA", "page_token cannot be given with page",
                           {"param_name": "page"})
        ent = self.page_tokens.get(tok)
        if not ent:
            raise ApiError(400, "INVALID_DATA", "invalid data", {"param_name": "page_token"})
        if ent["expires_ms"] <= self.now_ms():
            raise ApiError(400, "EXPIRED_VALUE", "the page token has expired",
                           {"param_name": "page_token"})
        if ent["bind"] != bind:
            raise ApiError(400, "TOKEN_BOUND_DATA_MISMATCH",
                           "the parameters given do not match the page token",
                           {"param_name": "page_token"})
        if ent["offset"] >= MAX_TOKEN_ROWS:
            raise ApiError(400, "PAGINATION_LIMIT_EXCEEDED",
                           "the maximum number of records that can be fetched is exceeded",
                           {"param_name": "page_token", "limit": MAX_TOKEN_ROWS})
        return ent["offset"]

    def new_page_token(self, bind, offset):
        tok = secrets.token_hex(12)
        self.page_tokens[tok] = {"bind": bind, "offset": max(0, offset),
                                 "expires_ms": self.now_ms() + self.cfg["page_token_ttl_s"] * 1000}
        return tok

    def r_get_one(self, req):
        mod = self.module_of(req)
        rid = req.match.group(2)
        row = mod.live(rid)
        if not row:
            raise ApiError(400, "INVALID_DATA", "the id given seems to be invalid", {"id": rid})
        fields = self.fields_param(mod, req.query.get("fields"), required=False)
        ims = self.time_header(req, "If-Modified-Since")
        if ims is not None and row["v"]["Modified_Time"] <= ims:
            return Reply(304)
        return Reply(200, {"data": [self.render_row(mod, row, fields)]})

    # --- writing ---------------------------------------------------------------------------------
    def write_request(self, req, mode, path_id=None):
        mod = self.module_of(req)
        body = req.json()
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not data:
            raise ApiError(400, "MANDATORY_NOT_FOUND", "required field not found",
                           {"api_name": "data", "json_path": "$.data"})
        limit = 1 if path_id else 100
        if len(data) > limit:
            raise ApiError(400, "LIMIT_EXCEEDED", "Record count exceeded",
                           {"limit": limit, "api_name": "data"})
        trigger = self.trigger_param(body)
        dup = self.dup_fields(mod, body) if mode == "upsert" else None
        ius = self.time_header(req, "If-Unmodified-Since")
        results, kinds = [], []
        for i, item in enumerate(data):
            res, kind = self.write_item(mod, i, item, mode, path_id, dup, ius)
            if kind in ("insert", "update"):
                self.note_automation(trigger)
            results.append(res)
            kinds.append(kind)
        return Reply(self.write_status(mode, kinds), {"data": results})

    def write_status(self, mode, kinds):
        ok = [k for k in kinds if k in ("insert", "update")]
        if len(ok) == len(kinds):
            return 201 if mode != "update" and all(k == "insert" for k in ok) else 200
        if not ok:
            return 412 if all(k == "conflict" for k in kinds) else 400
        return 207

    def trigger_param(self, body):
        trig = body.get("trigger")
        if trig is None:
            return None
        if not isinstance(trig, list) or any(t not in TRIGGERS for t in trig):
            raise ApiError(400, "INVALID_DATA", "invalid data",
                           {"api_name": "trigger", "supported_values": list(TRIGGERS)})
        return trig

    def note_automation(self, trigger):
        self.stats["triggers_seen"].append(trigger)
        del self.stats["triggers_seen"][:-100]
        if trigger is None or trigger:
            self.stats["automations_triggered"] += 1

    def dup_fields(self, mod, body):
        dcf = body.get("duplicate_check_fields")
        if dcf is None:
            return [f["api_name"] for f in mod.fields if f["unique"]]
        if not isinstance(dcf, list) or any(n not in mod.by_name for n in dcf):
            raise ApiError(400, "INVALID_DATA", "invalid data",
                           {"api_name": "duplicate_check_fields"})
        return dcf

    def write_item(self, mod, i, item, mode, path_id, dup, ius):
        if not isinstance(item, dict):
            return err_item("INVALID_DATA", "invalid data",
                            {"json_path": f"$.data[{i}]", "expected_data_type": "jsonobject"}), \
                "error"
        target, dup_field = None, None
        if mode == "update":
            target, e = self.update_target(mod, i, path_id or item.get("id"))
            if e:
                return e, "error"
        elif mode == "upsert":
            target, dup_field = self.find_duplicate(mod, item, dup)
        if target and ius is not None and target["v"]["Modified_Time"] > ius:
            return err_item("ALREADY_MODIFIED", "record updated time has already passed "
                            "if-unmodified-since time",
                            {"Modified_Time": self.org_time(target["v"]["Modified_Time"]),
                             "id": target["id"]}), "conflict"
        vals, e = self.validate(mod, i, item, creating=target is None)
        if e is None:
            e = self.check_unique(mod, i, vals, target)
        if e:
            return e, "error"
        if target:
            self.update_row(mod, target, vals, self.api_user)
        else:
            target = self.insert_row(mod, vals, self.api_user)
        kind = "insert" if dup_field is None and mode != "update" else "update"
        res = {"code": "SUCCESS", "details": self.write_details(target),
               "message": "record added" if kind == "insert" else "record updated",
               "status": "success"}
        if mode == "upsert":
            res["action"] = kind
            res["duplicate_field"] = dup_field
        return res, kind

    def update_target(self, mod, i, rid):
        if not rid:
            return None, err_item("MANDATORY_NOT_FOUND", "required field not found",
                                  {"api_name": "id", "json_path": f"$.data[{i}].id"})
        row = mod.live(rid)
        if not row:
            return None, err_item("INVALID_DATA", "the id given seems to be invalid",
                                  {"api_name": "id", "json_path": f"$.data[{i}].id", "id": rid})
        return row, None

    def find_duplicate(self, mod, item, dup):
        for name in dup:
            v = item.get(name)
            if v is None or v == "":
                continue
            f = mod.by_name[name]
            for row in mod.live_rows():
                if same_value(f, row["v"].get(name), v):
                    return row, name
        return None, None

    def validate(self, mod, i, item, creating, allow_system=False):
        vals = {}
        for k, v in item.items():
            if k == "id" or k.startswith("$"):
                continue
            f = mod.by_name.get(k)
            path = {"api_name": k, "json_path": f"$.data[{i}].{k}"}
            if f is None:
                return None, err_item("INVALID_DATA", "the field api name given seems to be "
                                      "invalid", path)
            if f["read_only"] and not allow_system:
                return None, err_item("INVALID_DATA", "invalid data",
                                      dict(path, reason="read only"))
            try:
                vals[k] = self.coerce(f, v)
            except FieldError as fe:
                return None, err_item("INVALID_DATA", fe.message, dict(path, **fe.details))
        for f in mod.fields:
            name = f["api_name"]
            owner_emptied = f["data_type"] == "ownerlookup" and name in vals and vals[name] is None
            if owner_emptied or f["system_mandatory"] and ((creating and vals.get(name) is None) or
                                                           (name in vals and vals[name] is None)):
                return None, err_item("MANDATORY_NOT_FOUND", "required field not found",
                                      {"api_name": name, "json_path": f"$.data[{i}].{name}"})
        return vals, None

    def coerce(self, f, v):
        t = f["data_type"]
        if v is None or (v == "" and t not in ("integer", "boolean")):
            return None
        if t in TEXTUAL:
            return self.coerce_text(f, v)
        if t == "multiselectpicklist":
            allowed = [p["actual_value"] for p in f["pick_list_values"]]
            if not isinstance(v, list) or any(x not in allowed for x in v):
                raise FieldError("invalid data", expected_data_type="jsonarray")
            return list(v)
        if t == "integer":
            if isinstance(v, bool) or not isinstance(v, int):
                raise FieldError("invalid data", expected_data_type="integer")
            return v
        if t == "boolean":
            if not isinstance(v, bool):
                raise FieldError("invalid data", expected_data_type="boolean")
            return v
        if t == "date":
            if not valid_date(v):
                raise FieldError("invalid data", expected_data_type="date")
            return v
        if t == "datetime":
            ms = parse_time(v)
            if ms is None:
                raise FieldError("invalid data", expected_data_type="datetime")
            return ms - ms % 1000
        return self.coerce_ref(f, v)

    def coerce_text(self, f, v):
        if not isinstance(v, str):
            raise FieldError("invalid data", expected_data_type=f["data_type"])
        if f["length"] and len(v) > f["length"]:
            raise FieldError("invalid data", maximum_length=f["length"])
        if f["data_type"] == "picklist" and \
                v not in [p["actual_value"] for p in f["pick_list_values"]]:
            raise FieldError("invalid data", expected_data_type="picklist",
                             supported_values=[p["actual_value"] for p in f["pick_list_values"]])
        if f["data_type"] == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v):
            raise FieldError("invalid data", expected_data_type="email")
        return v

    def coerce_ref(self, f, v):
        rid = v.get("id") if isinstance(v, dict) else v
        if not isinstance(rid, str) or not rid:
            raise FieldError("invalid data", expected_data_type="jsonobject")
        if f["data_type"] in USER_TYPES:
            if self.users.get(rid, {}).get("status") != "active":
                raise FieldError("the id given seems to be invalid",
                                 expected_data_type="jsonobject")
            return rid
        if not self.modules[f["lookup"]["module"]["api_name"]].live(rid):
            raise FieldError("the id given seems to be invalid", expected_data_type="jsonobject")
        return rid

    def check_unique(self, mod, i, vals, target):
        for f in mod.fields:
            v = vals.get(f["api_name"]) if f["unique"] else None
            if v is None:
                continue
            for row in mod.live_rows():
                if row is not target and same_value(f, row["v"].get(f["api_name"]), v):
                    return err_item("DUPLICATE_DATA", "duplicate data", {
                        "api_name": f["api_name"], "json_path": f"$.data[{i}].{f['api_name']}",
                        "id": row["id"], "more_records": False,
                        "duplicate_record": {"id": row["id"],
                                             "Owner": self.user_ref(row["v"].get("Owner"), False),
                                             "module": {"api_name": mod.api_name, "id": mod.id}}})
        return None

    def insert_row(self, mod, vals, user):
        now = self.now_s_ms()
        v = {"Owner": user, "Created_By": user, "Modified_By": user, "Created_Time": now,
             "Modified_Time": now}
        for f in mod.fields:
            if f["default_value"] is not None:
                v[f["api_name"]] = f["default_value"]
            if f["data_type"] == "autonumber":
                v[f["api_name"]] = str(mod.autonum)
                mod.autonum += 1
        v.update({k: x for k, x in vals.items() if x is not None or k not in v})
        row = {"id": self.new_id(), "v": v, "deleted": None,
               "visible_ms": now + self.cfg["search_delay_s"] * 1000}
        mod.rows[row["id"]] = row
        self.stats["records_inserted"] += 1
        self.watch_fire(mod, "create", [row["id"]])
        return row

    def update_row(self, mod, row, vals, user):
        now = self.now_s_ms()
        row["v"].update(vals)
        row["v"]["Modified_By"] = user
        row["v"]["Modified_Time"] = max(now, row["v"]["Modified_Time"])
        row["visible_ms"] = now + self.cfg["search_delay_s"] * 1000
        self.stats["records_updated"] += 1
        self.watch_fire(mod, "edit", [row["id"]])

    # --- deleting --------------------------------------------------------------------------------
    def r_delete(self, req):
        mod = self.module_of(req)
        return self.delete_ids(mod, self.ids_param(req.query.get("ids"), required=True), req)

    def delete_ids(self, mod, ids, req):
        wf = req.query.get("wf_trigger", "true") != "false"
        results, ok = [], 0
        for rid in ids:
            row = mod.live(rid)
            if not row:
                results.append(err_item("INVALID_DATA", "the id given seems to be invalid",
                                        {"id": rid}))
                continue
            row["deleted"] = {"ms": self.now_s_ms(), "by": self.api_user}
            results.append({"code": "SUCCESS", "details": {"id": rid},
                            "message": "record deleted", "status": "success"})
            ok += 1
            self.stats["records_deleted"] += 1
            self.watch_fire(mod, "delete", [rid])
            self.note_automation(None if wf else [])
        status = 200 if ok == len(ids) else 400 if ok == 0 else 207
        return Reply(status, {"data": results})

    def r_deleted(self, req):
        mod = self.module_of(req)
        q = req.query
        typ = q.get("type", "all")
        if typ not in ("all", "recycle", "permanent"):
            raise ApiError(400, "INVALID_DATA", "invalid data",
                           {"param_name": "type",
                            "supported_values": ["all", "recycle", "permanent"]})
        page = self.int_param(q, "page", 1, 1)
        per_page = self.int_param(q, "per_page", 200, 1, 200)
        ims = self.time_header(req, "If-Modified-Since")
        items = []
        if typ in ("all", "recycle"):
            items += [self.tombstone(mod, r["id"], r["deleted"]["ms"], r)
                      for r in mod.rows.values() if r["deleted"]]
        if typ in ("all", "permanent"):
            items += [self.tombstone(mod, p["id"], p["deleted_ms"], None) for p in mod.purged]
        items = [t for t in items if ims is None or t["_ms"] > ims]
        items.sort(key=lambda t: (t["_ms"], t["id"]), reverse=True)
        window = items[(page - 1) * per_page:page * per_page]
        if not window:
            return Reply(204)
        for t in window:
            del t["_ms"]
        return Reply(200, {"data": window, "info": {
            "per_page": per_page, "count": len(window), "page": page,
            "more_records": page * per_page < len(items)}})

    def tombstone(self, mod, rid, ms, row):
        t = {"id": rid, "type": "recycle" if row else "permanent",
             "deleted_time": self.org_time(ms), "display_name": None, "deleted_by": None,
             "created_by": None, "_ms": ms}
        if row:
            t["display_name"] = row["v"].get(mod.display_field)
            t["deleted_by"] = self.user_ref(row["deleted"]["by"], False)
            t["created_by"] = self.user_ref(row["v"].get("Created_By"), False)
        return t

    # --- search ----------------------------------------------------------------------------------
    def r_search(self, req):
        mod = self.module_of(req)
        q = req.query
        fields = self.fields_param(mod, q.get("fields"), required=False)
        page = self.int_param(q, "page", 1, 1)
        per_page = self.int_param(q, "per_page", 200, 1, 200)
        if page * per_page > MAX_DISCRETE_ROWS:
            raise ApiError(400, "LIMIT_REACHED", "search results beyond 2000 records",
                           {"limit": MAX_DISCRETE_ROWS})
        pred = self.search_predicate(mod, q)
        now = self.now_ms()
        rows = [r for r in mod.live_rows() if r["visible_ms"] <= now and pred(r)]
        rows.sort(key=lambda r: int(r["id"]), reverse=True)
        window = rows[(page - 1) * per_page:page * per_page]
        if not window:
            return Reply(204)
        return Reply(200, {"data": [self.render_row(mod, r, fields) for r in window],
                           "info": {"per_page": per_page, "count": len(window), "page": page,
                                    "more_records": page * per_page < len(rows)}})

    def search_predicate(self, mod, q):
        if "criteria" in q:
            tree = CriteriaParser(q["criteria"]).parse()
            return lambda r: self.search_eval(mod, tree, r)
        for key, field in (("email", "Email"), ("phone", "Phone")):
            if key in q:
                return lambda r, f=field, v=q[key]: str(r["v"].get(f) or "").casefold() == \
                    v.casefold()
        if "word" in q:
            w = q["word"].casefold()
            return lambda r: any(isinstance(r["v"].get(f["api_name"]), str) and
                                 w in r["v"][f["api_name"]].casefold()
                                 for f in mod.fields if f["data_type"] in TEXTUAL)
        raise ApiError(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                       {"param_name": "criteria"})

    def search_eval(self, mod, node, row):
        if node[0] in ("and", "or"):
            a = self.search_eval(mod, node[1], row)
            b = self.search_eval(mod, node[2], row)
            return (a and b) if node[0] == "and" else (a or b)
        _, name, op, values = node
        f = mod.by_name.get(name)
        if f is None and name != "id":
            raise criteria_error(f"unknown field '{name}'")
        have = self.comparable(f, row["id"] if name == "id" else row["v"].get(name), True)
        want = [self.comparable(f, self.search_literal(f, v), False) for v in values]
        if have is None:
            return op == "not_equal"
        return self.search_op(f, op, have, want)

    def search_literal(self, f, v):
        if f is not None and f["data_type"] == "datetime":
            ms = parse_time(v)
            if ms is None:
                raise criteria_error(f"bad date-time '{v}'")
            return ms
        if f is not None and f["data_type"] == "integer":
            try:
                return int(v)
            except ValueError:
                raise criteria_error(f"bad number '{v}'")
        return v

    def comparable(self, f, v, stored):
        """A value made comparable: text folded; lookups/owners by id (stored) or as given."""
        if v is None:
            return None
        t = f["data_type"] if f else "id"
        if stored and t == "lookup":
            target = self.modules[f["lookup"]["module"]["api_name"]]
            row = target.rows.get(v)
            return (v, (row["v"].get(target.display_field) or "").casefold() if row else "")
        if stored and t in USER_TYPES:
            u = self.users.get(v, {})
            return (v, u.get("name", "").casefold(), u.get("email", "").casefold())
        return v.casefold() if isinstance(v, str) else v

    def search_op(self, f, op, have, want):
        if isinstance(have, tuple):
            if op not in ("equals", "not_equal", "in"):
                raise criteria_error(f"operator {op} not supported for lookups")
            hit = any(w in have for w in want)
            return not hit if op == "not_equal" else hit
        textual = f is not None and f["data_type"] in TEXTUAL
        try:
            if op == "equals":
                return want[0] in have if textual and isinstance(have, str) else have == want[0]
            if op == "not_equal":
                return have != want[0]
            if op == "starts_with":
                return isinstance(have, str) and have.startswith(want[0])
            if op == "in":
                return have in want
            if op == "between":
                return want[0] <= have <= want[1]
            return {"greater_than": have > want[0], "greater_equal": have >= want[0],
                    "less_than": have < want[0], "less_equal": have <= want[0]}[op]
        except (TypeError, IndexError):
            raise criteria_error(f"operator {op} does not fit field '{f and f['api_name']}'")

    # --- COQL -----------------------------------------------------------------------------------
    def r_coql(self, req):
        body = req.json()
        text = body.get("select_query") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "REQUIRED_PARAM_MISSING",
                           "One of the expected parameter is missing",
                           {"param_name": "select_query"})
        q = CoqlParser(text).parse()
        mod = self.modules.get(q["module"])
        if not mod:
            raise ApiError(400, "INVALID_MODULE", "the module name given seems to be invalid",
                           {"module": q["module"]})
        self.coql_limits(q)
        cols = [(c, self.coql_column(mod, c, "select")) for c in q["cols"]]
        pred = self.coql_compile(mod, q["where"]) if q["where"] else (lambda r: True)
        rows = [r for r in mod.live_rows() if pred(r)]
        rows.sort(key=lambda r: int(r["id"]))
        for col, desc in reversed(q["order"]):
            get = self.coql_column(mod, col, "order by")[1]
            rows.sort(key=lambda r, g=get: (g(r) is not None, self.sort_value(g(r))),
                      reverse=desc)
        window = rows[q["offset"]:q["offset"] + q["limit"]]
        if not window:
            return Reply(204)
        data = []
        for r in window:
            out = {"id": r["id"]}
            for name, (f, get) in cols:
                if name != "id":
                    out[name] = self.render_value(f, get(r), coql=True) if f else get(r)
            data.append(out)
        return Reply(200, {"data": data, "info": {
            "count": len(data), "more_records": q["offset"] + len(window) < len(rows)}})

    @staticmethod
    def sort_value(v):
        if v is None:
            return ""
        return v.casefold() if isinstance(v, str) else v

    def coql_limits(self, q):
        if len(q["cols"]) > 500:
            raise ApiError(400, "LIMIT_EXCEEDED", "select column limit exceeded", {"limit": 500})
        if not 1 <= q["limit"] <= 2000:
            raise ApiError(400, "INVALID_QUERY", "limit given seems to be invalid",
                           {"limit": q["limit"]})
        if q["offset"] < 0 or q["offset"] + q["limit"] > MAX_TOKEN_ROWS:
            raise ApiError(400, "INVALID_QUERY", "offset given seems to be invalid",
                           {"offset": q["offset"], "limit": MAX_TOKEN_ROWS})

    def coql_column(self, mod, name, clause):
        """(field metadata or None, getter row -> stored value) for a column, or INVALID_QUERY."""
        if name == "id":
            return None, lambda r: r["id"]
        head, _, tail = name.partition(".")
        f = mod.by_name.get(head)
        if f and not tail:
            return f, lambda r: r["v"].get(head)
        if f and f["data_type"] == "lookup":
            target = self.modules[f["lookup"]["module"]["api_name"]]
            sub = target.by_name.get(tail)
            if tail == "id" or (sub and "." not in tail):
                def get(r):
                    ref = target.rows.get(r["v"].get(head) or "")
                    return None if not ref else ref["id"] if tail == "id" else ref["v"].get(tail)
                return sub, get
        if f and f["data_type"] in USER_TYPES and tail in ("id", "email", "full_name"):
            key = {"full_name": "name"}.get(tail, tail)
            return None, lambda r: self.users.get(r["v"].get(head), {}).get(key)
        raise ApiError(400, "INVALID_QUERY", "column given seems to be invalid",
                       {"column_name": name, "clause": clause})

    def coql_compile(self, mod, node):
        if node[0] in ("and", "or"):
            a, b = self.coql_compile(mod, node[1]), self.coql_compile(mod, node[2])
            return (lambda r: a(r) and b(r)) if node[0] == "and" else (lambda r: a(r) or b(r))
        f, get = self.coql_column(mod, node[1], "where")
        if node[0] == "isnull":
            neg = node[2]
            return lambda r: (get(r) is None) != neg
        t = f["data_type"] if f else "id"
        if node[0] == "like":
            if t not in TEXTUAL:
                raise self.coql_operator(node[1], "like")
            rx, neg = like_regex(str(node[2])), node[3]
            return lambda r: get(r) is not None and bool(rx.fullmatch(get(r))) != neg
        if node[0] == "in":
            vals, neg = [self.coql_value(f, node[1], v) for v in node[2]], node[3]
            return lambda r: get(r) is not None and (self.sort_value(get(r)) in vals) != neg
        if node[0] == "between":
            if t in TEXTUAL:
                raise self.coql_operator(node[1], "between")
            lo, hi = (self.coql_value(f, node[1], v) for v in node[2])
            neg = node[3]
            return lambda r: get(r) is not None and (lo <= get(r) <= hi) != neg
        return self.coql_cmp(f, t, node[1], node[2], node[3], get)

    def coql_cmp(self, f, t, col, op, lit, get):
        if t in TEXTUAL + ("lookup", "id") + USER_TYPES and op not in ("=", "!=", "<>"):
            raise self.coql_operator(col, op)
        want = self.coql_value(f, col, lit)
        ops = {"=": lambda a: a == want, "!=": lambda a: a != want, "<>": lambda a: a != want,
               ">": lambda a: a > want, ">=": lambda a: a >= want, "<": lambda a: a < want,
               "<=": lambda a: a <= want}[op]
        return lambda r: get(r) is not None and ops(self.sort_value(get(r)))

    @staticmethod
    def coql_operator(col, op):
        return ApiError(400, "INVALID_QUERY", "invalid operator found",
                        {"column_name": col, "operator": op})

    def coql_value(self, f, col, lit):
        t = f["data_type"] if f else "id"
        bad = ApiError(400, "INVALID_QUERY", "value given seems to be invalid for the column",
                       {"column_name": col})
        if t == "datetime":
            ms = parse_time(lit) if isinstance(lit, str) else None
            if ms is None:
                raise bad
            return ms
        if t in ("integer",):
            if isinstance(lit, bool) or not isinstance(lit, (int, float)):
                raise bad
            return lit
        if t == "boolean":
            if not isinstance(lit, bool):
                raise bad
            return lit
        if t == "date" and not valid_date(lit):
            raise bad
        if t in ("id", "lookup") + USER_TYPES and isinstance(lit, int):
            return str(lit)
        if not isinstance(lit, str):
            raise bad
        return lit.casefold()

    # --- control ---------------------------------------------------------------------------------
    def control_module(self, body):
        name = body.get("module", "Cases")
        if name not in self.modules:
            raise ApiError(400, "INVALID_MODULE", f"no module '{name}'")
        return self.modules[name]

    def seed_values(self, mod, rec):
        """Convenience forms for seeding and human edits: lookups and users by name."""
        out = {}
        for k, v in rec.items():
            f = mod.by_name.get(k)
            if f and isinstance(v, str) and not v.isdigit():
                if f["data_type"] == "lookup":
                    v = {"id": self.find_or_make(f["lookup"]["module"]["api_name"], v)}
                elif f["data_type"] in USER_TYPES:
                    v = {"id": self.user_by_name(v)}
            out[k] = v
        return out

    def find_or_make(self, module, name):
        target = self.modules[module]
        for row in target.live_rows():
            if row["v"].get(target.display_field) == name:
                return row["id"]
        return self.insert_row(target, {target.display_field: name}, self.api_user)["id"]

    def seed_record(self, mod, rec, user):
        vals, e = self.validate(mod, 0, self.seed_values(mod, rec), creating=True,
                                allow_system=True)
        if e is None:
            e = self.check_unique(mod, 0, vals, None)
        if e:
            raise ApiError(400, e["code"], e["message"], e["details"])
        vals.setdefault("Modified_Time", vals.get("Created_Time"))
        vals.setdefault("Modified_By", vals.get("Created_By"))
        return self.insert_row(mod, {k: v for k, v in vals.items() if v is not None}, user)["id"]

    def generated(self, mod, rng, i, created_ms):
        active = [u for u in self.user_order[1:] if self.users[u]["status"] == "active"]
        rec = {"Created_Time": self.org_time(created_ms), "Owner": rng.choice(active)}
        rec["Created_By"] = rec["Owner"]
        for f in mod.fields:
            v = self.generated_value(mod, f, rng, i, created_ms)
            if v is not None:
                rec[f["api_name"]] = v
        return rec

    def generated_value(self, mod, f, rng, i, created_ms):
        name, t = f["api_name"], f["data_type"]
        special = {"Subject": lambda: rng.choice(CASE_SUBJECTS),
                   "Name": lambda: rng.choice(FEEDBACK_TITLES),
                   "Description": lambda: rng.choice(CASE_DESCRIPTIONS),
                   "Reported_By": lambda: rng.choice(PEOPLE),
                   "Email": lambda: f"customer{i + 1}@example.com",
                   "Due_Date": lambda: fmt_time(created_ms + rng.randint(3, 30) * DAY_MS,
                                                self.cfg["org_offset_min"])[:10]
                   if rng.random() < 0.5 else None}
        if mod.api_name == "Accounts" and name == "Account_Name":
            return f"{ACCOUNT_NAMES[i % len(ACCOUNT_NAMES)]} #{i + 1}"
        if name in special:
            return special[name]()
        if f["read_only"]:
            return None
        if t == "picklist" and name not in ("Case_Reason",):
            return rng.choice([p["actual_value"] for p in f["pick_list_values"]])
        if t == "lookup":
            rows = self.modules[f["lookup"]["module"]["api_name"]].live_rows()
            return {"id": rng.choice(rows)["id"]} if rows else None
        if t == "integer":
            return rng.randint(1, 5)
        return None

    def c_seed(self, req):
        body = req.json() or {}
        mod = self.control_module(body)
        user = self.user_by_name(body["user"]) if body.get("user") else self.api_user
        ids = [self.seed_record(mod, rec, user) for rec in body.get("records", [])]
        n = int(body.get("count", 0))
        if n:
            self.seed_round += 1
            rng = random.Random(1000 + self.seed_round)
            step = int(body.get("step_s", 1)) * 1000
            start = int(body.get("start_ms", self.now_s_ms() - (n + 60) * step))
            start -= start % 1000
            ids += [self.seed_record(mod, self.generated(mod, rng, k, start + k * step), user)
                    for k in range(n)]
        return Reply(200, {"ids": ids, "count": len(ids)})

    def c_edit(self, req):
        body = req.json() or {}
        mod = self.control_module(body)
        row = mod.live(body.get("id"))
        if not row:
            raise ApiError(400, "INVALID_DATA", "the id given seems to be invalid",
                           {"id": body.get("id")})
        if body.get("delete"):  # a person deletes it in the web UI: into the recycle bin
            row["deleted"] = {"ms": self.now_s_ms(),
                              "by": self.user_by_name(body.get("user") or "Li Wei")}
            self.watch_fire(mod, "delete", [row["id"]])
            return Reply(200, {"data": [{"id": row["id"], "status": "deleted"}]})
        vals, e = self.validate(mod, 0, self.seed_values(mod, body.get("fields") or {}),
                                creating=False)
        if e is None:
            e = self.check_unique(mod, 0, vals, row)
        if e:
            raise ApiError(400, e["code"], e["message"], e["details"])
        self.update_row(mod, row, vals, self.user_by_name(body.get("user") or "Li Wei"))
        return Reply(200, {"data": [self.render_row(mod, row)]})

    def c_records(self, req):
        mod = self.control_module(req.query)
        out = []
        for row in mod.rows.values():
            r = self.render_row(mod, row)
            r["$in_recycle_bin"] = bool(row["deleted"])
            out.append(r)
        return Reply(200, {"data": out, "count": len(out),
                           "purged": [p["id"] for p in mod.purged]})

    def public_config(self):
        c = dict(self.cfg)
        c["org_offset"] = offset_str(c.pop("org_offset_min"))
        c.update({"client_id": self.client["client_id"],
                  "refresh_token": self.client["refresh_token"]})
        return c

    def c_config(self, req):
        body = req.json() or {}
        for k, v in body.items():
            if k == "org_offset":
                try:
                    self.cfg["org_offset_min"] = parse_offset(v)
                except ValueError as e:
                    raise ApiError(400, "INVALID_DATA", str(e))
            elif k == "api_domain":
                self.cfg[k] = v or None
            elif k in self.cfg:
                self.cfg[k] = int(v)
            elif k in self.client:
                self.client[k] = str(v)
            else:
                raise ApiError(400, "INVALID_DATA", f"unknown config key '{k}'")
        return Reply(200, self.public_config())

    def c_expire_tokens(self, req):
        n = 0
        for t in self.tokens.values():
            n += 0 if t["revoked"] else 1
            t["revoked"] = True
        return Reply(200, {"expired": n})

    def c_stats(self, req):
        now = self.now_ms()
        s = dict(self.stats)
        s["credits_used"] = self.credits_used(now)
        s["credits_limit"] = self.cfg["credits"]
        s["inflight"] = self.inflight
        s["live_tokens"] = sum(1 for t in self.tokens.values()
                               if not t["revoked"] and t["expires_ms"] > now)
        return Reply(200, s)

    def c_purge(self, req):
        mod = self.control_module(req.json() or {})
        gone = [r for r in mod.rows.values() if r["deleted"]]
        for r in gone:
            mod.purged.append({"id": r["id"], "deleted_ms": r["deleted"]["ms"]})
            del mod.rows[r["id"]]
        return Reply(200, {"purged": len(gone)})

    def c_grant_code(self, req):
        code = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        self.grant_codes[code] = self.now_ms() + 120 * 1000
        return Reply(200, {"code": code})


if __name__ == "__main__":
    serve(ZohoSim())
