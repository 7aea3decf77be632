"""Jira simulator, part 2: the JQL subset /search/jql understands (tokenizer, parser,
validation with Jira's error texts, evaluation on issue snapshots, ORDER BY keys)."""

import datetime
import re

from jira_data import (CATEGORIES, DATE_FORMATS, ISSUE_TYPES, PRIORITIES, PROJECT,
                       RESOLUTIONS, STATUSES, TIER_OPTIONS, adf_text, by_id, by_name_or_id,
                       user_by)

# --- JQL ---------------------------------------------------------------------------------------

class JqlError(Exception):
    pass


RESERVED = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc",
            "was", "changed"}
OPERATORS = ["<=", ">=", "!=", "!~", "=", "<", ">", "~"]
WORD_RE = re.compile(r"[A-Za-z0-9_.\-\[\]/:@+*]+")
PERIOD_RE = re.compile(r"^([-+]?)\s*((?:\d+\s*[wdhm]\s*)+)$")
DATE_RES = [
    (re.compile(r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})\s+(\d{1,2}):(\d{2})$"), True),
    (re.compile(r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})$"), False),
]


def syntax(msg, pos):
    raise JqlError("Error in the JQL Query: %s (line 1, character %d)" % (msg, pos + 1))


def tokenize(q):
    toks, i = [], 0
    while i < len(q):
        c = q[i]
        if c.isspace():
            i += 1
            continue
        if c in "(),":
            toks.append((c, c, i, False))
            i += 1
            continue
        op = next((o for o in OPERATORS if q.startswith(o, i)), None)
        if op:
            toks.append(("op", op, i, False))
            i += len(op)
            continue
        if c in "\"'":
            j, buf = i + 1, []
            while j < len(q) and q[j] != c:
                if q[j] == "\\" and j + 1 < len(q):
                    j += 1
                buf.append(q[j])
                j += 1
            if j >= len(q):
                syntax("The quoted string '%s' has not been completed." % "".join(buf), i)
            toks.append(("word", "".join(buf), i, True))
            i = j + 1
            continue
        m = WORD_RE.match(q, i)
        if not m:
            syntax("The character '%s' is a reserved JQL character. You must enclose it in a "
                   "string or use the escape '\\u%04x' instead." % (c, ord(c)), i)
        toks.append(("word", m.group(0), i, False))
        i = m.end()
    toks.append(("end", "end of query", len(q), False))
    return toks


class Parser:
    """Recursive descent over the token list: query := [or] [ORDER BY sort {, sort}]."""

    def __init__(self, q):
        self.toks = tokenize(q)
        self.i = 0

    def peek(self):
        return self.toks[self.i]

    def take(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def kw(self, word, offset=0):
        t = self.toks[min(self.i + offset, len(self.toks) - 1)]
        return t[0] == "word" and not t[3] and t[1].lower() == word

    def parse(self):
        where = None
        if not self.kw("order") and self.peek()[0] != "end":
            where = self.parse_or()
        order = self.parse_order() if self.kw("order") else []
        t = self.peek()
        if t[0] != "end":
            syntax("Expecting either 'OR' or 'AND' but got '%s'." % t[1], t[2])
        return where, order

    def parse_chain(self, word, sub):
        parts = [sub()]
        while self.kw(word):
            self.take()
            parts.append(sub())
        return (word, parts) if len(parts) > 1 else parts[0]

    def parse_or(self):
        return self.parse_chain("or", self.parse_and)

    def parse_and(self):
        return self.parse_chain("and", self.parse_not)

    def parse_not(self):
        if self.kw("not"):
            self.take()
            return ("not", self.parse_not())
        if self.peek()[0] == "(":
            self.take()
            e = self.parse_or()
            t = self.take()
            if t[0] != ")":
                syntax("Expecting ')' but got '%s'." % t[1], t[2])
            return e
        return self.parse_clause()

    def field_name(self, what):
        t = self.take()
        if t[0] != "word":
            syntax("Expecting a field name but got '%s'." % t[1], t[2])
        if not t[3] and t[1].lower() in RESERVED:
            syntax("'%s' is a reserved JQL word. You must surround it in quotation marks to use "
                   "it in a query." % t[1], t[2])
        return t[1], t[2]

    def parse_clause(self):
        field, pos = self.field_name("clause")
        t = self.peek()
        if t[0] == "op":
            self.take()
            return ("clause", field, t[1], self.parse_value(), pos)
        if self.kw("in") or (self.kw("not") and self.kw("in", 1)):
            neg = self.kw("not")
            self.take()
            if neg:
                self.take()
            return ("clause", field, "not in" if neg else "in", self.parse_list(), pos)
        if self.kw("is"):
            self.take()
            neg = self.kw("not")
            if neg:
                self.take()
            v = self.take()
            if not (v[0] == "word" and v[1].lower() in ("empty", "null")):
                syntax("Expecting 'EMPTY' or 'NULL' but got '%s'." % v[1], v[2])
            return ("clause", field, "is not" if neg else "is", None, pos)
        syntax("Expecting operator but got '%s'. The valid operators are '=', '!=', '<', '>', "
               "'<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'." % t[1], t[2])

    def parse_value(self):
        t = self.take()
        if t[0] != "word":
            syntax("Expecting either a value, list or function but got '%s'." % t[1], t[2])
        if not t[3] and t[1].lower() in ("empty", "null"):
            return ("empty",)
        if not t[3] and t[1].lower() in RESERVED:
            syntax("'%s' is a reserved JQL word. You must surround it in quotation marks to use "
                   "it in a query." % t[1], t[2])
        if not t[3] and self.peek()[0] == "(":
            self.take()
            args = []
            while self.peek()[0] not in (")", "end"):
                a = self.take()
                if a[0] == "word":
                    args.append(a[1])
            if self.take()[0] != ")":
                syntax("Expecting ')' before the end of the query.", t[2])
            return ("func", t[1].lower(), args, t[2])
        return ("lit", t[1], t[2], t[3])

    def parse_list(self):
        if self.peek()[0] == "word" and self.toks[self.i + 1][0] == "(":
            return [self.parse_value()]  # a function giving a list: openSprints(), membersOf()
        t = self.take()
        if t[0] != "(":
            syntax("Expecting '(' but got '%s'." % t[1], t[2])
        vals = [self.parse_value()]
        while self.peek()[0] == ",":
            self.take()
            vals.append(self.parse_value())
        t = self.take()
        if t[0] != ")":
            syntax("Expecting ')' but got '%s'." % t[1], t[2])
        return vals

    def parse_order(self):
        self.take()
        t = self.take()
        if not (t[0] == "word" and t[1].lower() == "by"):
            syntax("Expecting 'by' but got '%s'." % t[1], t[2])
        out = []
        while True:
            name, pos = self.field_name("order")
            direction = None
            if self.kw("asc") or self.kw("desc"):
                direction = self.take()[1].lower()
            out.append((name, direction, pos))
            if self.peek()[0] != ",":
                break
            self.take()
        return out


FIELD_ALIASES = {
    "project": "project", "key": "key", "issuekey": "key", "issue": "key", "id": "key",
    "issuetype": "issuetype", "type": "issuetype", "status": "status",
    "statuscategory": "statusCategory", "category": "statusCategory", "labels": "labels",
    "label": "labels", "assignee": "assignee", "reporter": "reporter", "creator": "creator",
    "updated": "updated", "updateddate": "updated", "created": "created",
    "createddate": "created", "resolved": "resolutiondate", "resolutiondate": "resolutiondate",
    "priority": "priority", "resolution": "resolution", "summary": "summary",
    "description": "description", "text": "text", "duedate": "duedate", "due": "duedate",
    "customer": "customfield_10050", "cf[10050]": "customfield_10050",
    "customer tier": "customfield_10051", "cf[10051]": "customfield_10051",
    "customer notes": "customfield_10052", "cf[10052]": "customfield_10052",
}
SORTABLE = {"key", "issuetype", "status", "statusCategory", "assignee", "reporter", "creator",
            "updated", "created", "resolutiondate", "priority", "resolution", "summary",
            "duedate", "customfield_10050", "customfield_10051", "project"}
REF_TABLES = {
    "issuetype": ISSUE_TYPES, "status": STATUSES, "priority": PRIORITIES,
    "resolution": RESOLUTIONS, "customfield_10051": TIER_OPTIONS,
}
DATE_FIELDS = {"updated", "created", "resolutiondate", "duedate"}
TEXT_FIELDS = {"summary", "description", "text", "customfield_10050", "customfield_10052"}
USER_FIELDS = {"assignee", "reporter", "creator"}


class JqlQuery:
    """A parsed and validated query; match() and sort_key() work on issue snapshots."""

    def __init__(self, q, now_ms, tz, me):
        self.now_ms, self.tz, self.me = now_ms, tz, me
        self.where, order = Parser(q or "").parse()
        self.problems = []
        if self.where is not None:
            self.where = self.resolve(self.where)
        if len(order) > 7:
            self.problems.append("The ORDER BY clause cannot contain more than 7 fields.")
        self.order = []
        for name, direction, _ in order:
            f = FIELD_ALIASES.get(name.lower())
            if f is None:
                self.problems.append("Field '%s' does not exist or you do not have permission "
                                     "to view it." % name)
            elif f not in SORTABLE:
                self.problems.append("Field '%s' does not support sorting." % name)
            else:
                self.order.append((f, direction or "asc"))
        if self.problems:
            raise JqlError("\n".join(self.problems))

    # validation: turn literals into comparable values once
    def resolve(self, node):
        kind = node[0]
        if kind in ("and", "or"):
            return (kind, [self.resolve(n) for n in node[1]])
        if kind == "not":
            return ("not", self.resolve(node[1]))
        _, name, op, value, _pos = node
        f = FIELD_ALIASES.get(name.lower())
        if f is None:
            self.problems.append("Field '%s' does not exist or you do not have permission to "
                                 "view it." % name)
            return ("true",)
        if not self.op_ok(f, op):
            self.problems.append("The operator '%s' is not supported by the '%s' field."
                                 % (op.upper() if op.isalpha() or " " in op else op, name))
            return ("true",)
        if op in ("is", "is not"):
            return ("clause", f, op, None)
        vals = value if isinstance(value, list) else [value]
        return ("clause", f, op, [self.literal(f, name, v) for v in vals])

    @staticmethod
    def op_ok(f, op):
        if op in ("is", "is not"):
            return f not in ("key", "project", "status", "statusCategory", "issuetype",
                             "created", "updated")
        if f in TEXT_FIELDS:
            return op in ("~", "!~")
        if op in ("~", "!~"):
            return False
        if op in ("<", ">", "<=", ">="):
            return f in DATE_FIELDS or f in ("key", "priority")
        return True

    def literal(self, f, name, v):
        if v[0] == "empty":
            return None
        if v[0] == "func":
            return self.function(f, name, v)
        text = v[1]
        if f in DATE_FIELDS:
            return self.date_literal(name, text)
        if f == "key":
            return self.key_literal(name, text)
        if f == "project":
            if text.lower() not in (PROJECT["key"].lower(), PROJECT["id"], PROJECT["name"].lower()):
                self.problems.append("The value '%s' does not exist for the field 'project'."
                                     % text)
            return PROJECT["id"]
        if f in REF_TABLES:
            nk = "value" if f == "customfield_10051" else "name"
            t = by_name_or_id(REF_TABLES[f], text, nk)
            if t is None:
                self.problems.append("The value '%s' does not exist for the field '%s'."
                                     % (text, name))
                return None
            return t["id"]
        if f == "statusCategory":
            for k, c in CATEGORIES.items():
                if text.lower() in (k, c["name"].lower(), str(c["id"])):
                    return k
            self.problems.append("The value '%s' does not exist for the field '%s'."
                                 % (text, name))
            return None
        if f in USER_FIELDS:
            u = user_by(text)
            if u is None:
                self.problems.append("The value '%s' does not exist for the field '%s'."
                                     % (text, name))
                return None
            return u["accountId"]
        return text if f != "text" else text.lower()

    def key_literal(self, name, text):
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9_]*)-(\d+)", text)
        if m:
            if m.group(1).upper() != PROJECT["key"]:
                self.problems.append("An issue with key '%s' does not exist for field '%s'."
                                     % (text, name))
            return ("num", int(m.group(2)))
        if text.isdigit():
            return ("id", int(text))
        self.problems.append("The issue key '%s' for field '%s' is invalid." % (text, name))
        return ("num", -1)

    def function(self, f, name, v):
        fn = v[1]
        if fn == "currentuser" and f in USER_FIELDS:
            return self.me
        if fn == "now" and f in DATE_FIELDS:
            return ("exact", self.now_ms)
        if fn in ("startofday", "endofday") and f in DATE_FIELDS:
            d = datetime.datetime.fromtimestamp(self.now_ms / 1000.0, self.tz)
            d = d.replace(hour=0, minute=0, second=0, microsecond=0)
            if fn == "endofday":
                d = d + datetime.timedelta(days=1)
            return ("exact", int(d.timestamp() * 1000))
        self.problems.append("Unable to find JQL function '%s(%s)'." % (v[1], ",".join(v[2])))
        return None

    def date_literal(self, name, text):
        s = text.strip()
        if re.fullmatch(r"\d+", s) and len(s) > 8:
            return ("exact", int(s))
        m = PERIOD_RE.match(s)
        if m:
            units = {"w": 604800000, "d": 86400000, "h": 3600000, "m": 60000}
            total = sum(int(n) * units[u] for n, u in re.findall(r"(\d+)\s*([wdhm])", m.group(2)))
            sign = -1 if m.group(1) == "-" else 1
            # Jira rounds relative periods to the minute as well.
            return ("exact", (self.now_ms + sign * total) // 60000 * 60000)
        for rx, has_time in DATE_RES:
            m = rx.match(s)
            if not m:
                continue
            try:
                parts = [int(x) for x in m.groups()]
                d = datetime.datetime(parts[0], parts[1], parts[2],
                                      parts[3] if has_time else 0, parts[4] if has_time else 0,
                                      tzinfo=self.tz)
            except ValueError:
                break
            start = int(d.timestamp() * 1000)
            return ("range", start, start + (60000 if has_time else 86400000))
        self.problems.append("Date value '%s' for field '%s' is invalid. %s"
                             % (text, name, DATE_FORMATS))
        return None

    # evaluation
    def match(self, iss):
        return self.where is None or self.eval(self.where, iss)

    def eval(self, node, iss):
        kind = node[0]
        if kind == "true":
            return True
        if kind == "and":
            return all(self.eval(n, iss) for n in node[1])
        if kind == "or":
            return any(self.eval(n, iss) for n in node[1])
        if kind == "not":
            return not self.eval(node[1], iss)
        _, f, op, vals = node
        cur = field_value(iss, f)
        if op in ("is", "is not"):
            empty = cur is None or cur == [] or cur == ""
            return empty if op == "is" else not empty
        if f in DATE_FIELDS:
            return any(date_cmp(cur, op, v, self.tz, f) for v in vals if v is not None)
        if f == "key":
            return key_cmp(iss, op, vals)
        if op in ("~", "!~"):
            hit = any(v and cur and v.lower() in str(cur).lower() for v in vals)
            return hit if op == "~" else (cur is not None and not hit)
        if f == "priority" and op in ("<", ">", "<=", ">="):
            return any(v and prio_cmp(cur, op, v) for v in vals)
        cur_list = cur if isinstance(cur, list) else ([] if cur is None else [cur])
        hit = any(v in cur_list for v in vals)
        if op in ("=", "in"):
            return hit
        # != and NOT IN never match empty values in Jira
        return bool(cur_list) and not hit

    def sort_key(self, iss):
        keys = []
        for f, direction in self.order:
            v = sort_value(iss, f)
            k = (v is None, v if v is not None else 0)
            keys.append(Rev(k) if direction == "desc" else k)
        return keys


class Rev:
    """Reverses ordering for DESC sort keys (nulls still last)."""

    def __init__(self, k):
        self.k = k

    def __lt__(self, other):
        if self.k[0] != other.k[0]:
            return self.k[0] < other.k[0]
        return other.k[1] < self.k[1]

    def __eq__(self, other):
        return self.k == other.k


def field_value(iss, f):
    fs = iss["f"]
    if f in ("updated", "created"):
        return iss[f]
    if f == "statusCategory":
        return by_id(STATUSES, fs["status"])["cat"]
    if f == "project":
        return PROJECT["id"]
    if f in ("description", "customfield_10052"):
        return adf_text(fs.get(f)) or None
    if f == "text":
        return " ".join([fs.get("summary") or "", adf_text(fs.get("description")),
                         fs.get("customfield_10050") or ""])
    return fs.get(f)


def date_cmp(cur, op, v, tz, f):
    if cur is None:
        return False
    if f == "duedate":
        cur = int(datetime.datetime.strptime(cur, "%Y-%m-%d").replace(tzinfo=tz).timestamp()
                  * 1000)
    lo, hi = (v[1], v[1] + 1) if v[0] == "exact" else (v[1], v[2])
    return {"=": lo <= cur < hi, "!=": not lo <= cur < hi, "in": lo <= cur < hi,
            "not in": not lo <= cur < hi, ">=": cur >= lo, ">": cur > lo, "<": cur < lo,
            "<=": cur <= lo}[op]


def key_cmp(iss, op, vals):
    def one(v):
        return iss["num"] == v[1] if v[0] == "num" else int(iss["id"]) == v[1]

    if op in ("=", "in"):
        return any(one(v) for v in vals)
    if op in ("!=", "not in"):
        return not any(one(v) for v in vals)
    v = vals[0]
    mine = iss["num"] if v[0] == "num" else int(iss["id"])
    return {"<": mine < v[1], ">": mine > v[1], "<=": mine <= v[1], ">=": mine >= v[1]}[op]


def prio_rank(pid):
    return [p["id"] for p in PRIORITIES].index(pid) if pid else 99


def prio_cmp(cur, op, v):
    # "priority > Medium" means more urgent, i.e. a lower rank.
    a, b = prio_rank(cur), prio_rank(v)
    return {"<": a > b, ">": a < b, "<=": a >= b, ">=": a <= b}[op]


def sort_value(iss, f):
    if f == "key":
        return iss["num"]
    if f == "priority":  # DESC puts Highest first
        return len(PRIORITIES) - prio_rank(iss["f"].get("priority"))
    if f == "status":
        return by_id(STATUSES, iss["f"]["status"])["name"]
    if f == "issuetype":
        return by_id(ISSUE_TYPES, iss["f"]["issuetype"])["name"]
    if f in USER_FIELDS:
        u = user_by(iss["f"].get(f))
        return u["displayName"] if u else None
    v = field_value(iss, f)
    return v if v != [] else None
