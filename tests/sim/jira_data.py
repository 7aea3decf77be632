"""Jira simulator, part 1: the seeded site (project, workflow, fields, users), Jira's error
texts, Atlassian Document Format validation and time formatting. Shared by jira_jql.py and
jira_sim.py; no HTTP here."""

import datetime
from zoneinfo import ZoneInfo

from simbase import Reply

API3 = "/rest/api/3"
API2 = "/rest/api/2"  # Data Center
DC_PAT = "sim-jira-dc-pat"  # Data Center personal access token
BOT_EMAIL = "bot@acme.test"
BOT_TOKEN = "sim-jira-token"
BOT_ID = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"

# The site's people, all assignable in the project. "hideEmail": the user's profile hides the
# e-mail, so Cloud leaves emailAddress out of every user object (Data Center shows it). Two
# people share the display name "Alex Chen". POST /_sim/users adds more; a reset restores these.
SEED_USERS = [
    {"accountId": BOT_ID, "displayName": "crmbridge bot", "emailAddress": BOT_EMAIL,
     "name": "crmbridge"},
    {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Li Wei",
     "emailAddress": "li.wei@acme.test", "name": "li.wei"},
    {"accountId": "5b10a2844c20165700ede21g", "displayName": "Mia Krystof",
     "emailAddress": "mia@acme.test", "name": "mia.krystof"},
    {"accountId": "712020:3f1c9a5e-8d2b-4e6f-a7c0-5b9d1e2f4a68", "displayName": "李伟",
     "emailAddress": "liwei@acme.cn", "name": "liwei"},
    {"accountId": "5c8e2b7a1d4f6e0012a3b4c5", "displayName": "Alex Chen",
     "emailAddress": "alex.chen@acme.test", "name": "alex.chen"},
    {"accountId": "5c8e2b7a1d4f6e0012a3b4c6", "displayName": "Alex Chen",
     "emailAddress": "achen@partner.test", "name": "achen"},
    {"accountId": "712020:9e8d7c6b-5a49-4382-9170-a1b2c3d4e5f6", "displayName": "Sam Quinn",
     "emailAddress": "sam.quinn@acme.test", "name": "sam.quinn", "hideEmail": True},
]
USERS = [dict(u) for u in SEED_USERS]

PROJECT = {"id": "10000", "key": "SUP", "name": "Support"}
ISSUE_TYPES = [
    {"id": "10001", "name": "Task", "description": "A small, distinct piece of work."},
    {"id": "10002", "name": "Bug", "description": "A problem or error."},
    {"id": "10003", "name": "Story", "description": "A user story."},
]
PRIORITIES = [
    {"id": "1", "name": "Highest"}, {"id": "2", "name": "High"}, {"id": "3", "name": "Medium"},
    {"id": "4", "name": "Low"}, {"id": "5", "name": "Lowest"},
]
DEFAULT_PRIORITY = "3"
CATEGORIES = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {"id": 4, "key": "indeterminate", "colorName": "yellow",
                      "name": "In Progress"},
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
STATUSES = [
    {"id": "10000", "name": "To Do", "cat": "new"},
    {"id": "3", "name": "In Progress", "cat": "indeterminate"},
    {"id": "10001", "name": "Waiting for customer", "cat": "indeterminate"},
    {"id": "10002", "name": "Done", "cat": "done"},
    {"id": "10003", "name": "Won't Do", "cat": "done"},
]
INITIAL_STATUS = "10000"
# Transition id, name, from status ids, to status id. Not every status is one hop away.
TRANSITIONS = [
    ("11", "Start progress", ["10000"], "3"),
    ("21", "Done", ["3"], "10002"),
    ("31", "Wait for customer", ["3"], "10001"),
    ("41", "Customer replied", ["10001"], "3"),
    ("51", "Won't do", ["10000"], "10003"),
    ("61", "Reopen", ["10002"], "3"),
]
RESOLUTIONS = [
    {"id": "10000", "name": "Done", "description": "Work has been completed on this issue."},
    {"id": "10001", "name": "Won't Do", "description": "This issue won't be actioned."},
]
TIER_OPTIONS = [{"id": "10100", "value": "Gold"}, {"id": "10101", "value": "Silver"},
                {"id": "10102", "value": "Bronze"}]

# id, name, kind, schema. kind drives validation and rendering.
FIELD_DEFS = [
    ("summary", "Summary", "string", {"type": "string", "system": "summary"}),
    ("description", "Description", "adf", {"type": "string", "system": "description"}),
    ("issuetype", "Issue Type", "issuetype", {"type": "issuetype", "system": "issuetype"}),
    ("project", "Project", "project", {"type": "project", "system": "project"}),
    ("priority", "Priority", "priority", {"type": "priority", "system": "priority"}),
    ("status", "Status", "status", {"type": "status", "system": "status"}),
    ("resolution", "Resolution", "resolution", {"type": "resolution", "system": "resolution"}),
    ("labels", "Labels", "labels", {"type": "array", "items": "string", "system": "labels"}),
    ("duedate", "Due date", "date", {"type": "date", "system": "duedate"}),
    ("assignee", "Assignee", "user", {"type": "user", "system": "assignee"}),
    ("reporter", "Reporter", "user", {"type": "user", "system": "reporter"}),
    ("creator", "Creator", "readonly", {"type": "user", "system": "creator"}),
    ("created", "Created", "readonly", {"type": "datetime", "system": "created"}),
    ("updated", "Updated", "readonly", {"type": "datetime", "system": "updated"}),
    ("resolutiondate", "Resolved", "readonly", {"type": "datetime", "system": "resolutiondate"}),
    ("statuscategorychangedate", "Status Category Changed", "readonly",
     {"type": "datetime", "system": "statuscategorychangedate"}),
    ("comment", "Comment", "comment", {"type": "comments-page", "system": "comment"}),
    ("customfield_10050", "Customer", "text",
     {"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
      "customId": 10050}),
    ("customfield_10051", "Customer Tier", "select",
     {"type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select",
      "customId": 10051}),
    ("customfield_10052", "Customer Notes", "adf",
     {"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textarea",
      "customId": 10052}),
]
FIELD_KIND = {f[0]: f[2] for f in FIELD_DEFS}
FIELD_NAME = {f[0]: f[1] for f in FIELD_DEFS}
NOT_NAVIGABLE = {"comment"}
CANNOT_SET = "Field '%s' cannot be set. It is not on the appropriate screen, or unknown."
NOT_ADF = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
BAD_ADF = "The field value is not valid Atlassian Document Format (ADF) content."
RATE_LIMITED = "The request has been rate-limited. Please try again later."
REMOVED_API = ("The requested API has been removed. Please migrate to the /rest/api/3/search/jql "
               "API. A full migration guideline is available at "
               "https://developer.atlassian.com/changelog/#CHANGE-2046")
UNBOUNDED = ("Unbounded JQL queries are not allowed here. Please add a search restriction to "
             "your query.")
DATE_FORMATS = ("Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', "
                "'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.")


def errors(messages=None, errs=None, status=None):
    body = {"errorMessages": list(messages or []), "errors": dict(errs or {})}
    if status is not None:
        body["status"] = status
    return body


def bad(msg=None, errs=None):
    return Reply(400, errors([msg] if msg else [], errs))


def by_id(table, ident):
    for t in table:
        if t["id"] == ident:
            return t
    return None


def by_name_or_id(table, value, name_key="name"):
    if not isinstance(value, str):
        return None
    for t in table:
        if t["id"] == value or t[name_key].lower() == value.lower():
            return t
    return None


def user_by(value):
    if not isinstance(value, str):
        return None
    v = value.lower()
    for u in USERS:
        if v in (u["accountId"].lower(), u["displayName"].lower(),
                 (u.get("emailAddress") or "").lower(), u["name"]):
            return u
    return None


# --- Atlassian Document Format ---------------------------------------------------------------

INLINE = {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status"}
BLOCK_CHILDREN = {
    "doc": {"paragraph", "heading", "bulletList", "orderedList", "codeBlock", "blockquote",
            "rule", "panel", "table", "mediaSingle", "expand"},
    "paragraph": INLINE,
    "heading": INLINE,
    "bulletList": {"listItem"},
    "orderedList": {"listItem"},
    "listItem": {"paragraph", "bulletList", "orderedList", "codeBlock"},
    "blockquote": {"paragraph", "bulletList", "orderedList", "codeBlock"},
    "codeBlock": {"text"},
    "panel": {"paragraph", "heading", "bulletList", "orderedList", "codeBlock"},
    "expand": {"paragraph", "heading", "bulletList", "orderedList", "codeBlock", "rule"},
    "table": {"tableRow"},
    "tableRow": {"tableHeader", "tableCell"},
    "tableHeader": {"paragraph", "bulletList", "orderedList", "codeBlock", "heading"},
    "tableCell": {"paragraph", "bulletList", "orderedList", "codeBlock", "heading"},
    "mediaSingle": {"media"},
}
LEAVES = {"rule", "hardBreak", "mention", "emoji", "inlineCard", "date", "status", "media", "text"}
MARKS = {"strong", "em", "code", "link", "strike", "underline", "textColor", "subsup",
         "backgroundColor"}


def adf_problem(node, parent="doc", top=True):
    """Returns None when node is a valid ADF node (or doc when top), else a reason."""
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        return "node is not an object with a type"
    t = node["type"]
    if top:
        if t != "doc" or node.get("version") != 1:
            return "root must be a doc with version 1"
        if not isinstance(node.get("content"), list):
            return "doc needs content"
    elif t not in BLOCK_CHILDREN.get(parent, set()):
        return "%s is not allowed inside %s" % (t, parent)
    if t == "text":
        return text_problem(node, parent)
    if t == "heading":
        lvl = (node.get("attrs") or {}).get("level")
        if not isinstance(lvl, int) or isinstance(lvl, bool) or not 1 <= lvl <= 6:
            return "heading level must be 1-6"
    if t == "mention" and not isinstance((node.get("attrs") or {}).get("id"), str):
        return "mention needs attrs.id"
    if "marks" in node and t != "text":
        return "marks only on text"
    content = node.get("content")
    if t in LEAVES:
        return "%s cannot have content" % t if content else None
    if content is None:
        content = []
    if not isinstance(content, list):
        return "content must be an array"
    if t in ("bulletList", "orderedList", "listItem", "table", "tableRow") and not content:
        return "%s cannot be empty" % t
    if t == "listItem" and (not isinstance(content[0], dict) or
                            content[0].get("type") not in ("paragraph", "codeBlock")):
        return "listItem must start with a paragraph"
    for child in content:
        p = adf_problem(child, t, False)
        if p:
            return p
    return None


def text_problem(node, parent):
    if not isinstance(node.get("text"), str) or node["text"] == "":
        return "text nodes must be non-empty"
    marks = node.get("marks")
    if marks is None:
        return None
    if not isinstance(marks, list):
        return "marks must be an array"
    if parent == "codeBlock" and marks:
        return "codeBlock text cannot have marks"
    seen = set()
    for m in marks:
        mt = m.get("type") if isinstance(m, dict) else None
        if mt not in MARKS or mt in seen:
            return "invalid or repeated mark"
        seen.add(mt)
        if mt == "link" and not isinstance((m.get("attrs") or {}).get("href"), str):
            return "link mark needs attrs.href"
    if "code" in seen and seen - {"code", "link"}:
        return "code mark can only be combined with link"
    return None


def adf_text(node):
    """Plain text of an ADF tree (for changelog strings and ~ searches); Data Center's wiki
    strings are their own text."""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return node.get("text", "")
    if node.get("type") == "hardBreak":
        return "\n"
    if node.get("type") == "mention":
        return (node.get("attrs") or {}).get("text", "")
    parts = [adf_text(c) for c in node.get("content") or []]
    sep = "\n" if node.get("type") in ("doc", "bulletList", "orderedList", "blockquote") else ""
    return sep.join(parts)


def plain_to_adf(text):
    paras = [p for p in str(text).split("\n\n") if p]
    return {"version": 1, "type": "doc", "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paras]}


# --- time ------------------------------------------------------------------------------------

def zone(name):
    try:
        return ZoneInfo(name)
    except Exception:  # noqa: BLE001 - unknown zone names fall back to UTC like Jira does
        return datetime.timezone.utc


def fmt_jira_time(ms, tz):
    if ms is None:
        return None
    d = datetime.datetime.fromtimestamp(ms / 1000.0, tz)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03d" % (ms % 1000) + d.strftime("%z")


def iso_utc(ms):
    return datetime.datetime.fromtimestamp(ms / 1000.0, datetime.timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")


REF_KINDS = {"status": STATUSES, "priority": PRIORITIES, "issuetype": ISSUE_TYPES,
             "resolution": RESOLUTIONS, "select": TIER_OPTIONS}
