#!/usr/bin/env python3
"""Trello REST v1 simulator for crmbridge tests.

Serves boards (with nested lists, labels and custom fields), lists, cards, labels, custom field
definitions and card items, comments, and the activity log: every mutation appends an action
(createCard, updateCard with data.old and listBefore/listAfter, deleteCard, commentCard,
updateComment, deleteComment, addLabelToCard, removeLabelFromCard, updateCustomFieldItem)
readable through GET /1/boards/{id}/actions and /1/cards/{id}/actions, newest first, with filter
(sub-types like updateCard:idList), since/before (ISO date or id), limit <= 1000 and page.
Auth: key and token in the query, in the body, or as `Authorization: OAuth oauth_consumer_key=
"..", oauth_token=".."`; a token works only with the key that authorised it.
Ids are 24-hex ObjectIds whose first 8 digits are the creation second of the simulator clock.
Webhooks: POST /1/webhooks checks the callback with HEAD (200 or no webhook), GET
/1/tokens/{token}/webhooks, DELETE /1/webhooks/{id}; every action on a watched board is POSTed
with X-Trello-Webhook signed with the app secret APP_SECRET (hooksend.py).
Board members: GET /1/boards/{id}/members (fields= of id, fullName, username, initials; no
e-mail, as for any member but oneself); a card's idMembers only take members of its board.
It does not serve members' boards, checklists, attachments, search or OAuth 2.0.

Where the public record is silent, these are the choices made (tests rely on them):
- 401 bodies are plain text: "invalid key" (no or unknown key), "invalid token" (no, unknown or
  other key's token). Malformed path ids: 400 plain "invalid id"; unknown objects: 404 plain
  "The requested resource was not found."; bad parameters: 400 plain "invalid value for X";
  malformed ObjectIds inside a body: 400 JSON {"message":"Invalid objectId","error":"ERROR"},
  but any idMembers entry that is not a member of the card's board (malformed or not): 400 plain
  "invalid value for idMembers".
- rate limits are rolling windows of real time: 100 requests per token and 300 per key per
  10 s, 100 per token per 900 s on /1/members/; a refused request does not count; more than 200
  429s for one key in a window lock the key out until the window has passed. 429 bodies are
  JSON {"error":"API_TOKEN_LIMIT_EXCEEDED"|"API_KEY_LIMIT_EXCEEDED","message":...} and no
  response carries rate-limit headers.
- action `since` is inclusive for dates and exclusive for ids; `before` is exclusive for both.
  page * limit must stay below 1000 (walk further back with before=).
- GET /1/boards/{id}/cards returns every card of the filter unless `limit` (<= 1000) is given;
  asking for nested actions of more than too_many_cards cards answers 400
  API_TOO_MANY_CARDS_REQUESTED.
- due dates are stored as given (ISO, normalised to milliseconds Z).

Control (besides simbase's):
  POST /_sim/seed   {"board": name or id (default: the first board), "new_board": {"name",
                     "lists": [..], "labels": [{"name","color"}]}, "cards": [{"name","desc",
                     "list","labels":[names],"due","closed","user"}], "count": N, "list": name}
                    -> {"board": id, "cards": [{"id","shortLink"}...]}
  POST /_sim/edit   {"card": id or shortLink, "fields": {"name","desc","due","dueComplete",
                     "closed","labels":[names]}, "list": name, "comment": text, "delete": true,
                     "user": "Mia Krystof"}  (as a person in the web UI)
  GET  /_sim/cards?board=id|name  every card of that board (default: of every board), closed
                    ones included, with "listName", "labelNames" and "attachments" (URLs)
  GET  /_sim/boards  boards with their lists and labels
  GET  /_sim/comments?card=id|shortLink  its comments, oldest first: [{"id","author","text"}]
  POST /_sim/comment_edit {"action": comment action id, "text", "user"}  a person edits one
  GET  /_sim/webhooks  {"registered": [webhooks], "sent": [{"url","status","event"}]}
  POST /_sim/users  {"fullName", "username", "board": id or name (default: the first board;
                     null: none)} adds a person (a member of that board) -> the member
  cards in seed and edit may carry "members": [full names] (idMembers, as set in the web UI)
  GET|POST /_sim/config  limits (token_limit, key_limit, window_ms, lockout_429s,
                     members_limit, members_window_ms, too_many_cards); GET also shows the
                     seeded credentials (key, token, key2, token2)
"""

import json
import random
import re
import time
from collections import deque
from datetime import datetime, timezone
from urllib.parse import parse_qs

import urllib.error
import urllib.request

from hooksend import Outbox
from simbase import BadJson, Reply, Sim, serve

KEY = "d1f7b2c9e4a8f3b6c0d5e9a2f4b7c1e8"
TOKEN = "ATTA9c4e1b7d2f8a3c6e0b5d9f1a4c7e2b8d3f6a0c5e9b1d4f7a2c8e3b6d0f5a9c1e4b7"
KEY2 = "0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"
TOKEN2 = "ATTA1f2e3d4c5b6a79808f7e6d5c4b3a2918f7e6d5c4b3a29180f1e2d3c4b5a6978"
APP_SECRET = "sim-trello-app-secret"  # the OAuth secret of the app that owns KEY
OID = re.compile(r"[0-9a-f]{24}")
SHORT = re.compile(r"[A-Za-z0-9]{8}")
DESC_MAX = 16384
ACTION_TYPES = ("createCard", "updateCard", "deleteCard", "commentCard", "updateComment",
                "deleteComment", "addLabelToCard", "removeLabelFromCard", "copyCard",
                "moveCardToBoard", "moveCardFromBoard", "updateCustomFieldItem", "createList",
                "convertToCardFromCheckItem", "emailCard",
                "updateList", "createBoard", "addMemberToCard", "removeMemberFromCard")
CARD_FIELDS = ("id", "badges", "closed", "dateLastActivity", "desc", "due", "dueComplete", "idBoard",
               "idLabels", "idList", "idMembers", "idShort", "labels", "name", "pos",
               "shortLink", "shortUrl", "start", "url", "subscribed")
DEFAULT_CONFIG = {"token_limit": 100, "key_limit": 300, "window_ms": 10000, "lockout_429s": 200,
                  "members_limit": 100, "members_window_ms": 900000, "too_many_cards": 5000}
MEMBERS = {"bot": ("5f0a0a0a0a0a0a0a0a0a0a01", "crmbridge bot", "crmbridgebot"),
           "Mia Krystof": ("5f0a0a0a0a0a0a0a0a0a0a02", "Mia Krystof", "miakrystof"),
           "Wang Fang": ("5f0a0a0a0a0a0a0a0a0a0a03", "Wang Fang", "wangfang"),
           "李伟": ("5f0a0a0a0a0a0a0a0a0a0a04", "李伟", "liwei"),
           "alexchen": ("5f0a0a0a0a0a0a0a0a0a0a05", "Alex Chen", "alexchen"),
           "alexchen2": ("5f0a0a0a0a0a0a0a0a0a0a06", "Alex Chen", "alexchen2"),
           "Olga Petrova": ("5f0a0a0a0a0a0a0a0a0a0a07", "Olga Petrova", "olgapetrova")}
# who is on which seeded board (by MEMBERS key); Olga is not on "Delivery"
BOARD_MEMBERS = {"Delivery": ("bot", "Mia Krystof", "Wang Fang", "李伟", "alexchen", "alexchen2"),
                 "交付看板": ("bot", "Wang Fang", "李伟", "Olga Petrova")}
MEMBER_FIELDS = ("id", "fullName", "username", "initials")
LABEL_COLORS = ("green", "yellow", "orange", "red", "purple", "blue", "sky", "lime", "pink",
                "black")


class ApiError(Exception):
    def __init__(self, status, text=None, body=None):
        super().__init__(text)
        self.status, self.text, self.body = status, text, body

    def reply(self):
        if self.body is not None:
            return Reply(self.status, self.body)
        return Reply(self.status, raw=self.text, content_type="text/plain; charset=utf-8")


def bad_value(name):
    return ApiError(400, f"invalid value for {name}")


def not_found():
    return ApiError(404, "The requested resource was not found.")


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{ms % 1000:03d}Z"


def parse_iso(s):
    if not isinstance(s, str) or not re.match(r"\d{4}-\d\d-\d\d", s):
        return None
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def as_bool(v, name):
    if isinstance(v, bool):
        return v
    if v in ("true", "false"):
        return v == "true"
    raise bad_value(name)


def wrap(fn):
    """Turns ApiError into its reply."""
    def run(req):
        try:
            return fn(req)
        except ApiError as e:
            return e.reply()
    return run


class Window:
    """Rolling window of admitted request times (real time, seconds)."""

    def __init__(self):
        self.hits = deque()

    def count(self, now, span):
        while self.hits and self.hits[0] <= now - span:
            self.hits.popleft()
        return len(self.hits)


class TrelloSim(Sim):
    name = "trello"

    # --- state -----------------------------------------------------------------------------------
    def reset(self):
        self.cfg = dict(DEFAULT_CONFIG)
        self.keys = {KEY: {TOKEN: "bot"}, KEY2: {TOKEN2: "Wang Fang"}}
        self.windows = {}
        self.lockouts = {}
        self.rng = random.Random(7)
        self.counter = 0
        self.boards, self.lists, self.cards, self.labels, self.actions = {}, {}, {}, {}, []
        self.fields, self.items = {}, {}
        self.short_links = {}
        self.webhooks, self.outbox = {}, Outbox()
        self.people = dict(MEMBERS)
        b = self.make_board("Delivery", ["To Do", "Doing", "Done"],
                            [("bug", "red"), ("feature", "green"), ("urgent", "orange"),
                             ("", "yellow"), ("", "purple"), ("", "blue")])
        self.make_field(b, "Customer tier", "list", ["Gold", "Silver"])
        self.make_board("交付看板", ["待办", "进行中", "已完成"], [("缺陷", "red"), ("", "green")])

    def oid(self, ms=None):
        self.counter += 1
        secs = (self.now_ms() if ms is None else ms) // 1000
        return f"{secs:08x}5e1f0a7b3c{self.counter & 0xffffff:06x}"

    def short_link(self):
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        while True:
            s = "".join(self.rng.choice(alphabet) for _ in range(8))
            if s not in self.short_links:
                return s

    def member(self, who):
        mid, full, user = self.people.get(who or "Mia Krystof", self.people["Mia Krystof"])
        return {"id": mid, "fullName": full, "username": user,
                "initials": "".join(p[0] for p in full.split()).upper()}

    def make_board(self, name, lists, labels):
        bid, sl = self.oid(), self.short_link()
        self.short_links[sl] = bid
        b = {"id": bid, "name": name, "desc": "", "closed": False, "shortLink": sl,
             "url": f"https://trello.com/b/{sl}/{slug(name)}", "shortUrl":
             f"https://trello.com/b/{sl}", "idShort": 0, "lists": [], "labels": [], "fields": [],
             "members": [self.people[k][0] for k in BOARD_MEMBERS.get(name, ("bot",))]}
        self.boards[bid] = b
        self.add_action(b, "createBoard", {"board": self.ref_board(b)}, "Mia Krystof")
        for n in lists:
            self.make_list(b, n)
        for n, color in labels:
            self.make_label(b, n, color)
        return b

    def make_list(self, b, name):
        lid = self.oid()
        lst = {"id": lid, "name": name, "closed": False, "pos": 16384 * (len(b["lists"]) + 1),
               "idBoard": b["id"], "subscribed": False}
        self.lists[lid] = lst
        b["lists"].append(lid)
        self.add_action(b, "createList", {"board": self.ref_board(b), "list": self.ref_list(lst)},
                        "Mia Krystof")
        return lst

    def make_label(self, b, name, color):
        lab = {"id": self.oid(), "idBoard": b["id"], "name": name, "color": color, "uses": 0}
        self.labels[lab["id"]] = lab
        b["labels"].append(lab["id"])
        return lab

    def make_field(self, b, name, ftype, options=()):
        fid = self.oid()
        f = {"id": fid, "idModel": b["id"], "modelType": "board", "fieldGroup": fid[::-1],
             "name": name, "pos": 16384 * (len(b["fields"]) + 1), "type": ftype,
             "display": {"cardFront": True}, "limits": {},
             "isSuggestedField": False}
        if ftype == "list":
            f["options"] = [{"id": self.oid(), "idCustomField": fid, "value": {"text": o},
                             "color": "none", "pos": 16384 * (i + 1)}
                            for i, o in enumerate(options)]
        self.fields[fid] = f
        b["fields"].append(fid)
        return f

    # --- references inside action data -------------------------------------------------------
    @staticmethod
    def ref_board(b):
        return {"id": b["id"], "name": b["name"], "shortLink": b["shortLink"]}

    @staticmethod
    def ref_list(lst):
        return {"id": lst["id"], "name": lst["name"]}

    @staticmethod
    def ref_card(c):
        return {"id": c["id"], "name": c["name"], "idShort": c["idShort"],
                "shortLink": c["shortLink"]}

    def add_action(self, b, atype, data, who, card=None):
        now = self.now_ms()
        m = self.member(who)
        a = {"id": self.oid(), "idMemberCreator": m["id"], "type": atype, "date": iso(now),
             "data": data, "appCreator": None, "limits": {}, "memberCreator": m,
             "_board": b["id"], "_card": card["id"] if card else None, "_ms": now}
        self.actions.append(a)
        if card is not None:
            card["dateLastActivity"] = now
        for h in list(getattr(self, "webhooks", {}).values()):
            if h["active"] and h["idModel"] in (b["id"], a["_card"]):
                self.outbox.trello(h, {"action": self.render_action(a), "model":
                                       self.ref_board(b), "webhook": dict(h)}, APP_SECRET)
        return a

    # --- webhooks ------------------------------------------------------------------------------
    def r_webhook_new(self, req):
        p = self.params(req)
        url, model = p.get("callbackURL"), p.get("idModel")
        if not url or not str(url).startswith(("http://", "https://")):
            raise bad_value("callbackURL")
        if not OID.fullmatch(str(model or "")) or model not in self.boards and \
                model not in self.cards:
            raise bad_value("idModel")
        for h in self.webhooks.values():
            if h["callbackURL"] == url and h["idModel"] == model and h["_token"] == p["token"]:
                raise ApiError(400, "A webhook with that callback, model, and token already "
                                    "exists")
        status = 0
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"),
                                        timeout=5) as r:
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError:
            status = 0
        if status != 200:
            raise ApiError(400, f"URL ({url}) did not return 200 status code, got {status}")
        hid = self.oid()
        self.webhooks[hid] = {"id": hid, "description": str(p.get("description", "")),
                              "idModel": model, "callbackURL": url, "active": True,
                              "consecutiveFailures": 0, "_token": p["token"]}
        return Reply(200, self.render_hook(hid))

    def render_hook(self, hid):
        return {k: v for k, v in self.webhooks[hid].items() if not k.startswith("_")}

    def r_token_webhooks(self, req):
        token = req.match.group(1)
        return Reply(200, [self.render_hook(h) for h, w in self.webhooks.items()
                           if w["_token"] == token])

    def r_webhook_delete(self, req):
        if self.webhooks.pop(req.match.group(1), None) is None:
            raise not_found()
        return Reply(200, {"_value": None})

    def card_data(self, c, extra=None):
        d = {"card": self.ref_card(c), "board": self.ref_board(self.boards[c["idBoard"]]),
             "list": self.ref_list(self.lists[c["idList"]])}
        d.update(extra or {})
        return d

    # --- auth and limits ----------------------------------------------------------------------
    def credentials(self, req):
        h = req.header("Authorization") or ""
        if h.startswith("OAuth "):
            pairs = dict(re.findall(r'(\w+)="([^"]*)"', h))
            return pairs.get("oauth_consumer_key"), pairs.get("oauth_token")
        body = self.params(req, query=False)
        key = req.query.get("key", body.get("key"))
        return key, req.query.get("token", body.get("token"))

    def before_route(self, req):
        if not req.path.startswith("/1/"):
            return None
        with self.lock:
            try:
                key, token = self.credentials(req)
            except ApiError as e:
                return e.reply()
            if not key or key not in self.keys:
                return ApiError(401, "invalid key").reply()
            if not token or token not in self.keys[key]:
                return ApiError(401, "invalid token").reply()
            req.member = self.keys[key][token]
            return self.rate_check(req, key, token)

    def window(self, name):
        return self.windows.setdefault(name, Window())

    def rate_check(self, req, key, token):
        now, span = time.monotonic(), self.cfg["window_ms"] / 1000.0
        until = self.lockouts.get(key, 0)
        if until > now:
            return self.limited(key, "API_KEY_LIMIT_EXCEEDED")
        checks = [(("t", token), self.cfg["token_limit"], span, "API_TOKEN_LIMIT_EXCEEDED"),
                  (("k", key), self.cfg["key_limit"], span, "API_KEY_LIMIT_EXCEEDED")]
        if req.path.startswith("/1/members/"):
            checks.append((("m", token), self.cfg["members_limit"],
                           self.cfg["members_window_ms"] / 1000.0, "RATE_LIMIT_EXCEEDED"))
        for name, limit, s, code in checks:
            if self.window(name).count(now, s) >= limit:
                return self.limited(key, code)
        for name, _, _, _ in checks:
            self.window(name).hits.append(now)
        return None

    def limited(self, key, code):
        now, span = time.monotonic(), self.cfg["window_ms"] / 1000.0
        w = self.window(("429", key))
        if w.count(now, span) >= self.cfg["lockout_429s"]:
            self.lockouts[key] = now + span
        w.hits.append(now)
        if code == "RATE_LIMIT_EXCEEDED":
            return Reply(429, {"message": "Exceeded rate limit to /1/member", "error": code})
        return Reply(429, {"error": code, "message": "Rate limit exceeded"})

    def error_body(self, status, req):
        if status == 429:
            return Reply(429, {"error": "API_TOKEN_LIMIT_EXCEEDED",
                               "message": "Rate limit exceeded"})
        texts = {401: "invalid token", 404: "The requested resource was not found.",
                 400: "invalid id"}
        return ApiError(status, texts.get(status, "Internal Server Error")).reply()

    def not_found(self, req, status):
        return ApiError(404, f"Cannot {req.method} {req.path}").reply()

    def bad_json(self, req, detail):
        return Reply(400, {"message": "Invalid JSON", "error": "ERROR"})

    # --- request helpers ------------------------------------------------------------------------
    def params(self, req, query=True):
        """Query parameters overlaid by a JSON or form body (Trello takes either)."""
        out = dict(req.query) if query else {}
        ctype = (req.header("Content-Type") or "").split(";")[0].strip()
        if not req.raw:
            return out
        if ctype == "application/x-www-form-urlencoded":
            out.update({k: v[-1] for k, v in
                        parse_qs(req.raw.decode("utf-8"), keep_blank_values=True).items()})
            return out
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, body={"message": "Invalid JSON", "error": "ERROR"})
        out.update(body)
        return out

    def route(self, method, pattern, fn):
        super().route(method, pattern, wrap(fn))

    def board_of(self, ref):
        if OID.fullmatch(ref or ""):
            b = self.boards.get(ref)
        elif SHORT.fullmatch(ref or ""):
            b = self.boards.get(self.short_links.get(ref, ""))
        else:
            raise ApiError(400, "invalid id")
        if not b:
            raise not_found()
        return b

    def card_of(self, ref):
        if OID.fullmatch(ref or ""):
            c = self.cards.get(ref)
        elif SHORT.fullmatch(ref or ""):
            c = self.cards.get(self.short_links.get(ref, ""))
        else:
            raise ApiError(400, "invalid id")
        if not c or c.get("_deleted"):
            raise not_found()
        return c

    @staticmethod
    def field_list(p, valid, name="fields"):
        raw = p.get(name)
        if raw is None or raw == "all":
            return None
        names = [f for f in str(raw).split(",") if f]
        if any(f not in valid for f in names):
            raise bad_value(name)
        return names

    @staticmethod
    def pick(obj, names):
        if names is None:
            return obj
        out = {"id": obj["id"]}
        out.update({k: obj[k] for k in names if k in obj})
        return out

    # --- rendering -----------------------------------------------------------------------------
    def render_card(self, c, names=None, items=False):
        full = {k: v for k, v in c.items() if not k.startswith("_")}
        full["dateLastActivity"] = iso(c["dateLastActivity"])
        full["labels"] = [dict(self.labels[i]) for i in c["idLabels"]]
        full["badges"] = {"comments": c.get("_comments", 0), "attachments": len(c.get("_attachments", [])),
                          "description": bool(c["desc"]), "due": c["due"],
                          "dueComplete": c["dueComplete"]}
        out = self.pick(full, names)
        if items:
            out["customFieldItems"] = [dict(v) for v in self.items.get(c["id"], {}).values()]
        return out

    def render_action(self, a, names=None, creator=True):
        full = {k: v for k, v in a.items() if not k.startswith("_")}
        out = self.pick(full, names)
        if creator:
            out["memberCreator"] = full["memberCreator"]
        else:
            out.pop("memberCreator", None)
        return out

    # --- routes --------------------------------------------------------------------------------
    def setup_routes(self):
        r = self.route
        r("GET", r"/1/members/me", self.r_me)
        r("GET", r"/1/boards/([^/]+)", self.r_board)
        r("GET", r"/1/boards/([^/]+)/lists(?:/(\w+))?", self.r_board_lists)
        r("GET", r"/1/boards/([^/]+)/labels", self.r_board_labels)
        r("POST", r"/1/boards/([^/]+)/labels", self.r_board_label_new)
        r("GET", r"/1/boards/([^/]+)/customFields", self.r_board_fields)
        r("GET", r"/1/boards/([^/]+)/cards(?:/(\w+))?", self.r_board_cards)
        r("GET", r"/1/boards/([^/]+)/actions", self.r_board_actions)
        r("GET", r"/1/boards/([^/]+)/members", self.r_board_members)
        r("GET", r"/1/lists/([^/]+)/cards", self.r_list_cards)
        r("POST", r"/1/cards", self.r_card_new)
        r("GET", r"/1/cards/([^/]+)", self.r_card)
        r("PUT", r"/1/cards/([^/]+)", self.r_card_put)
        r("DELETE", r"/1/cards/([^/]+)", self.r_card_delete)
        r("GET", r"/1/cards/([^/]+)/actions", self.r_card_actions)
        r("POST", r"/1/cards/([^/]+)/actions/comments", self.r_comment_new)
        r("POST", r"/1/cards/([^/]+)/idLabels", self.r_card_label_add)
        r("DELETE", r"/1/cards/([^/]+)/idLabels/([^/]+)", self.r_card_label_del)
        r("GET", r"/1/cards/([^/]+)/customFieldItems", self.r_card_items)
        r("PUT", r"/1/cards/([^/]+)/customField/([^/]+)/item", self.r_card_item_put)
        r("POST", r"/1/customFields", self.r_field_new)
        r("PUT", r"/1/actions/([^/]+)", self.r_comment_put)
        r("POST", r"/1/webhooks/?", self.r_webhook_new)
        r("GET", r"/1/tokens/([^/]+)/webhooks", self.r_token_webhooks)
        r("DELETE", r"/1/webhooks/([^/]+)", self.r_webhook_delete)
        r("DELETE", r"/1/actions/([^/]+)", self.r_comment_delete)
        self.control("POST", r"/_sim/seed", wrap(self.c_seed))
        self.control("POST", r"/_sim/edit", wrap(self.c_edit))
        self.control("GET", r"/_sim/cards", wrap(self.c_cards))
        self.control("GET", r"/_sim/comments", wrap(self.c_comments))
        self.control("POST", r"/_sim/comment_edit", wrap(self.c_comment_edit))
        self.control("GET", r"/_sim/boards", wrap(self.c_boards))
        self.control("POST", r"/_sim/users", wrap(self.c_users))
        self.control("GET", r"/_sim/webhooks", lambda req: Reply(200, {"registered": [
            self.render_hook(h) for h in self.webhooks], "sent": self.outbox.log()}))
        self.control("GET", r"/_sim/config", lambda req: Reply(200, self.public_config()))
        self.control("POST", r"/_sim/config", wrap(self.c_config))

    def r_me(self, req):
        m = self.member(req.member)
        return Reply(200, self.pick(m, self.field_list(req.query, m.keys())))

    def r_board(self, req):
        b = self.board_of(req.match.group(1))
        p = req.query
        full = {k: v for k, v in b.items() if k not in ("lists", "labels", "fields", "members")}
        out = self.pick(full, self.field_list(p, full.keys()))
        if p.get("lists", "none") != "none":
            out["lists"] = self.lists_of(b, p["lists"], p.get("list_fields"))
        if p.get("labels", "none") != "none":
            names = self.field_list(p, ("name", "color", "idBoard", "uses"), "label_fields")
            out["labels"] = [self.pick(self.labels[i], names) for i in b["labels"]]
        if p.get("customFields") == "true":
            out["customFields"] = [self.fields[i] for i in b["fields"]]
        return Reply(200, out)

    def lists_of(self, b, flt, fields):
        if flt not in ("all", "open", "closed"):
            raise bad_value("filter")
        names = self.field_list({"fields": fields}, ("name", "closed", "pos", "idBoard",
                                                     "subscribed"))
        rows = [self.lists[i] for i in b["lists"]]
        rows = [x for x in rows if flt == "all" or x["closed"] == (flt == "closed")]
        return [self.pick(x, names) for x in sorted(rows, key=lambda x: x["pos"])]

    def r_board_lists(self, req):
        b = self.board_of(req.match.group(1))
        flt = req.match.group(2) or req.query.get("filter", "open")
        return Reply(200, self.lists_of(b, flt, req.query.get("fields")))

    def r_board_labels(self, req):
        b = self.board_of(req.match.group(1))
        names = self.field_list(req.query, ("name", "color", "idBoard", "uses"))
        limit = self.int_param(req.query, "limit", 50, 0, 1000)
        return Reply(200, [self.pick(self.labels[i], names) for i in b["labels"][:limit]])

    def r_board_label_new(self, req):
        b = self.board_of(req.match.group(1))
        p = self.params(req)
        name, color = p.get("name"), p.get("color")
        if not isinstance(name, str) or len(name) > 16384:
            raise bad_value("name")
        if color not in LABEL_COLORS and color not in (None, "null", ""):
            raise bad_value("color")
        return Reply(200, self.make_label(b, name, color if color in LABEL_COLORS else None))

    def r_board_fields(self, req):
        b = self.board_of(req.match.group(1))
        return Reply(200, [self.fields[i] for i in b["fields"]])

    @staticmethod
    def int_param(p, name, default, lo, hi):
        raw = p.get(name)
        if raw is None:
            return default
        try:
            v = int(raw)
        except (TypeError, ValueError):
            raise bad_value(name)
        if not lo <= v <= hi:
            raise bad_value(name)
        return v

    def card_filter(self, flt):
        tests = {"all": lambda c: True, "open": lambda c: not c["closed"],
                 "visible": lambda c: not c["closed"], "closed": lambda c: c["closed"]}
        if flt not in tests:
            raise bad_value("filter")
        return tests[flt]

    def cards_reply(self, req, rows):
        p = req.query
        names = self.field_list(p, CARD_FIELDS)
        keep = self.card_filter(req.match.group(2) if req.match.lastindex and
                                req.match.group(2) else p.get("filter", "visible"))
        rows = [c for c in rows if keep(c)]
        for name, cmp in (("before", lambda a, b: a < b), ("since", lambda a, b: a > b)):
            if p.get(name):
                if not OID.fullmatch(p[name]):
                    raise bad_value(name)
                rows = [c for c in rows if cmp(c["id"], p[name])]
        if "limit" in p:
            rows = sorted(rows, key=lambda c: c["id"], reverse=True)
            rows = rows[:self.int_param(p, "limit", 1000, 1, 1000)]
        if p.get("actions") and len(rows) > self.cfg["too_many_cards"]:
            raise ApiError(400, body={"message": "API_TOO_MANY_CARDS_REQUESTED",
                                      "error": "API_TOO_MANY_CARDS_REQUESTED"})
        items = p.get("customFieldItems") == "true"
        return Reply(200, [self.render_card(c, names, items) for c in rows])

    def r_board_cards(self, req):
        b = self.board_of(req.match.group(1))
        rows = [c for c in self.cards.values()
                if c["idBoard"] == b["id"] and not c.get("_deleted")]
        rows.sort(key=lambda c: (self.lists[c["idList"]]["pos"], c["pos"]))
        return self.cards_reply(req, rows)

    def r_list_cards(self, req):
        ref = req.match.group(1)
        if not OID.fullmatch(ref):
            raise ApiError(400, "invalid id")
        if ref not in self.lists:
            raise not_found()
        rows = [c for c in self.cards.values() if c["idList"] == ref and not c.get("_deleted")]
        rows.sort(key=lambda c: c["pos"])
        return self.cards_reply(req, rows)

    # --- actions feed --------------------------------------------------------------------------
    @staticmethod
    def action_filter(raw):
        if raw in (None, "", "all"):
            return lambda a: True
        wanted = []
        for part in str(raw).split(","):
            t, _, sub = part.partition(":")
            if t not in ACTION_TYPES:
                raise bad_value("filter")
            wanted.append((t, sub))

        def ok(a):
            return any(a["type"] == t and (not sub or sub in a["data"].get("old", {}))
                       for t, sub in wanted)
        return ok

    @staticmethod
    def bound(p, name):
        """(kind, value) of a since/before parameter: ("id", oid) or ("ms", epoch ms)."""
        raw = p.get(name)
        if raw in (None, "", "null"):
            return None
        if OID.fullmatch(raw):
            return ("id", raw)
        ms = parse_iso(raw)
        if ms is None:
            raise bad_value(name)
        return ("ms", ms)

    def actions_reply(self, req, rows, default_filter=None, per_card=False):
        p = dict(req.query)
        if per_card:  # a card's feed only pages: 50 a page, pages 0..19 (limit, since ignored)
            for k in ("limit", "since", "before"):
                p.pop(k, None)
            if self.int_param(p, "page", 0, 0, 1000) > 19:
                raise bad_value("page")
        keep = self.action_filter(p.get("filter", default_filter))
        since, before = self.bound(p, "since"), self.bound(p, "before")
        limit = self.int_param(p, "limit", 50, 0, 1000)
        page = self.int_param(p, "page", 0, 0, 1000)
        if page * limit >= 1000:
            raise bad_value("page")
        names = self.field_list(p, ("id", "type", "date", "data", "idMemberCreator",
                                    "appCreator", "limits"))

        def inside(a):
            if since and not (a["id"] > since[1] if since[0] == "id" else a["_ms"] >= since[1]):
                return False
            if before and not (a["id"] < before[1] if before[0] == "id" else
                               a["_ms"] < before[1]):
                return False
            return keep(a)
        hits = [a for a in reversed(rows) if inside(a)]
        window = hits[page * limit:(page + 1) * limit]
        creator = p.get("memberCreator", "true") != "false"
        return Reply(200, [self.render_action(a, names, creator) for a in window])

    def r_board_actions(self, req):
        b = self.board_of(req.match.group(1))
        return self.actions_reply(req, [a for a in self.actions if a["_board"] == b["id"]])

    def r_card_actions(self, req):
        c = self.card_of(req.match.group(1))
        return self.actions_reply(req, [a for a in self.actions if a["_card"] == c["id"]],
                                  "commentCard,updateCard:idList", per_card=True)

    # --- cards ---------------------------------------------------------------------------------
    def r_card(self, req):
        c = self.card_of(req.match.group(1))
        names = self.field_list(req.query, CARD_FIELDS)
        return Reply(200, self.render_card(c, names, req.query.get("customFieldItems") == "true"))

    def check_oid(self, v, name):
        if not isinstance(v, str) or not OID.fullmatch(v):
            raise ApiError(400, body={"message": "Invalid objectId", "error": "ERROR"})
        return v

    def label_ids(self, raw, board_id):
        if raw in (None, "", []):
            return []
        ids = raw if isinstance(raw, list) else str(raw).split(",")
        for i in ids:
            self.check_oid(i, "idLabels")
            if i not in self.labels or self.labels[i]["idBoard"] != board_id:
                raise bad_value("idLabels")
        return list(dict.fromkeys(ids))

    @staticmethod
    def due_value(v):
        if v in (None, "", "null"):
            return None
        ms = parse_iso(v)
        if ms is None:
            raise bad_value("due")
        return iso(ms)

    def text_value(self, v, name):
        if not isinstance(v, str) or len(v) > DESC_MAX:
            raise bad_value(name)
        return v

    def changes(self, p, c, board_id):
        """Validated field changes of a create or update: {field: new value}."""
        out = {}
        for name in ("name", "desc"):
            if name in p:
                out[name] = self.text_value(p[name], name)
        if "due" in p:
            out["due"] = self.due_value(p["due"])
        for name in ("closed", "dueComplete"):
            if name in p:
                out[name] = as_bool(p[name], name)
        if "idList" in p:
            lst = self.lists.get(self.check_oid(p["idList"], "idList"))
            if not lst or lst["idBoard"] != board_id:
                raise bad_value("idList")
            out["idList"] = lst["id"]
        if "idLabels" in p:
            out["idLabels"] = self.label_ids(p["idLabels"], board_id)
        if "idMembers" in p:
            out["idMembers"] = self.member_ids(p["idMembers"], board_id)
        if "pos" in p:
            out["pos"] = self.pos_value(p["pos"], c)
        return out

    def pos_value(self, v, c):
        in_list = [x["pos"] for x in self.cards.values()
                   if c and x["idList"] == c.get("idList") and not x.get("_deleted")]
        if v == "top":
            return min(in_list, default=65536) / 2
        if v == "bottom":
            return max(in_list, default=0) + 65536
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise bad_value("pos")
        if f < 0:
            raise bad_value("pos")
        return f

    def r_card_new(self, req):
        p = self.params(req)
        if "idList" not in p:
            raise bad_value("idList")
        lst = self.lists.get(self.check_oid(p["idList"], "idList"))
        if not lst:
            raise bad_value("idList")
        src = p.get("urlSource")
        if src is not None and not re.match(r"https?://", str(src)):
            raise bad_value("urlSource")
        # POST /1/cards has no `closed`: a new card is never archived
        c = self.new_card(self.boards[lst["idBoard"]], lst,
                          {k: v for k, v in p.items() if k != "closed"}, req.member)
        if src:
            c["_attachments"] = [src]
        return Reply(200, self.render_card(c))

    def new_card(self, b, lst, p, who):
        stub = {"idList": lst["id"]}
        ch = self.changes(dict(p, pos=p.get("pos", "bottom")), stub, b["id"])
        b["idShort"] += 1
        cid, sl = self.oid(), self.short_link()
        self.short_links[sl] = cid
        name = ch.get("name", "")
        c = {"id": cid, "name": name, "desc": ch.get("desc", ""), "closed": False,
             "idList": lst["id"], "idBoard": b["id"], "idShort": b["idShort"], "shortLink": sl,
             "shortUrl": f"https://trello.com/c/{sl}",
             "url": f"https://trello.com/c/{sl}/{b['idShort']}-{slug(name)}",
             "pos": ch["pos"], "due": ch.get("due"), "start": None,
             "dueComplete": ch.get("dueComplete", False), "idLabels": ch.get("idLabels", []),
             "idMembers": ch.get("idMembers", []), "subscribed": False,
             "dateLastActivity": self.now_ms()}
        self.cards[cid] = c
        self.add_action(b, "createCard", self.card_data(c), who, c)
        if ch.get("closed"):
            self.apply(c, {"closed": True}, who)
        return c

    def apply(self, c, ch, who):
        """Applies validated changes, one action per changed field like the web UI."""
        b = self.boards[c["idBoard"]]
        for name, v in ch.items():
            old = c[name]
            if old == v:
                continue
            if name == "idLabels":
                self.apply_labels(c, v, who)
                continue
            if name == "idMembers":
                self.apply_members(c, v, who)
                continue
            c[name] = v
            if name == "name":
                c["url"] = f"https://trello.com/c/{c['shortLink']}/{c['idShort']}-{slug(v)}"
            extra = {"old": {name: old}}
            if name == "idList":
                extra["listBefore"] = self.ref_list(self.lists[old])
                extra["listAfter"] = self.ref_list(self.lists[v])
            data = self.card_data(c, extra)
            data["card"][name] = v
            if name == "idList":
                data.pop("list")
            self.add_action(b, "updateCard", data, who, c)

    def apply_labels(self, c, new, who):
        b = self.boards[c["idBoard"]]
        for lid in [x for x in c["idLabels"] if x not in new]:
            c["idLabels"].remove(lid)
            self.add_action(b, "removeLabelFromCard", self.card_data(
                c, {"label": self.labels[lid]}), who, c)
        for lid in [x for x in new if x not in c["idLabels"]]:
            c["idLabels"].append(lid)
            self.add_action(b, "addLabelToCard", self.card_data(
                c, {"label": self.labels[lid]}), who, c)

    def r_card_put(self, req):
        c = self.card_of(req.match.group(1))
        self.apply(c, self.changes(self.params(req), c, c["idBoard"]), req.member)
        return Reply(200, self.render_card(c))

    def r_card_delete(self, req):
        c = self.card_of(req.match.group(1))
        self.delete_card(c, req.member)
        return Reply(200, {"limits": {}})

    def delete_card(self, c, who):
        c["_deleted"] = True
        data = self.card_data(c)
        data["card"] = {"id": c["id"], "idShort": c["idShort"], "shortLink": c["shortLink"]}
        self.add_action(self.boards[c["idBoard"]], "deleteCard", data, who)

    def r_card_label_add(self, req):
        c = self.card_of(req.match.group(1))
        lid = self.params(req).get("value")
        ids = self.label_ids(lid, c["idBoard"])
        if not ids or ids[0] in c["idLabels"]:
            raise ApiError(400, "that label is already on the card")
        self.apply_labels(c, c["idLabels"] + ids, req.member)
        return Reply(200, c["idLabels"])

    def r_card_label_del(self, req):
        c = self.card_of(req.match.group(1))
        lid = self.check_oid(req.match.group(2), "idLabel")
        if lid not in c["idLabels"]:
            raise not_found()
        self.apply_labels(c, [x for x in c["idLabels"] if x != lid], req.member)
        return Reply(200, {"limits": {}})

    # --- comments ------------------------------------------------------------------------------
    def r_comment_new(self, req):
        c = self.card_of(req.match.group(1))
        text = self.params(req).get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > DESC_MAX:
            raise bad_value("text")
        a = self.comment(c, text, req.member)
        return Reply(200, self.render_action(a))

    def comment(self, c, text, who):
        c["_comments"] = c.get("_comments", 0) + 1
        return self.add_action(self.boards[c["idBoard"]], "commentCard",
                               self.card_data(c, {"text": text}), who, c)

    def comment_of(self, req):
        ref = req.match.group(1)
        if not OID.fullmatch(ref):
            raise ApiError(400, "invalid id")
        a = next((x for x in self.actions if x["id"] == ref and not x.get("_deleted")), None)
        if not a:
            raise not_found()
        if a["type"] != "commentCard" or a["idMemberCreator"] != self.member(req.member)["id"]:
            raise ApiError(401, "unauthorized action permission requested")
        return a, self.cards[a["_card"]]

    def r_comment_put(self, req):
        a, c = self.comment_of(req)
        text = self.params(req).get("text")
        if not isinstance(text, str) or not text.strip():
            raise bad_value("text")
        self.edit_comment(a, c, text, req.member)
        return Reply(200, self.render_action(a))

    def edit_comment(self, a, c, text, who):
        old = a["data"]["text"]
        a["data"]["text"] = text
        a["data"]["dateLastEdited"] = iso(self.now_ms())
        self.add_action(self.boards[c["idBoard"]], "updateComment", self.card_data(
            c, {"action": {"id": a["id"], "text": text}, "old": {"text": old}}), who, c)

    def c_comments(self, req):
        """?card=id or shortLink: the card's comments, oldest first ({id, author, text})."""
        c = self.card_of(req.query.get("card"))
        return Reply(200, [{"id": a["id"], "author": a["memberCreator"].get("fullName"),
                            "text": a["data"]["text"]} for a in self.actions
                           if a["_card"] == c["id"] and a["type"] == "commentCard"])

    def c_comment_edit(self, req):
        """{"action": id, "text", "user"}: a person edits a comment in the web UI."""
        body = req.json() or {}
        a = next((x for x in self.actions if x["id"] == body.get("action")
                  and x["type"] == "commentCard"), None)
        if a is None:
            raise not_found()
        self.edit_comment(a, self.cards[a["_card"]], str(body.get("text", "")),
                          body.get("user", "Mia Krystof"))
        return Reply(200, self.render_action(a))

    def r_comment_delete(self, req):
        a, c = self.comment_of(req)
        a["_deleted"] = True
        c["_comments"] -= 1
        self.actions.remove(a)
        self.add_action(self.boards[c["idBoard"]], "deleteComment", self.card_data(
            c, {"action": {"id": a["id"]}}), req.member, c)
        return Reply(200, {"limits": {}})

    # --- custom fields -------------------------------------------------------------------------
    def r_field_new(self, req):
        p = self.params(req)
        b = self.board_of(self.check_oid(p.get("idModel"), "idModel"))
        if p.get("modelType") != "board":
            raise bad_value("modelType")
        if p.get("type") not in ("checkbox", "list", "number", "text", "date"):
            raise bad_value("type")
        if not isinstance(p.get("name"), str) or not p["name"]:
            raise bad_value("name")
        if len(b["fields"]) >= 50:
            raise ApiError(403, body={"message": "Board custom fields limit exceeded",
                                      "error": "CUSTOM_FIELDS_PER_BOARD_LIMIT"})
        opts = [o.get("value", {}).get("text", "") for o in p.get("options", [])
                if isinstance(o, dict)]
        return Reply(200, self.make_field(b, p["name"], p["type"], opts))

    def r_card_items(self, req):
        c = self.card_of(req.match.group(1))
        return Reply(200, list(self.items.get(c["id"], {}).values()))

    def item_value(self, f, body):
        if f["type"] == "list":
            oid = body.get("idValue")
            if oid in (None, ""):
                return None
            if oid not in [o["id"] for o in f["options"]]:
                raise bad_value("idValue")
            return {"idValue": oid}
        v = body.get("value")
        if v in (None, "", {}):
            return None
        kind = {"text": "text", "number": "number", "date": "date", "checkbox": "checked"}
        k = kind[f["type"]]
        if not isinstance(v, dict) or set(v) != {k}:
            raise bad_value("value")
        x = v[k]
        if k == "number":
            try:
                float(x)
            except (TypeError, ValueError):
                raise bad_value("value")
        if k == "checked":
            x = str(as_bool(x, "value")).lower()
        if k == "date" and parse_iso(x) is None:
            raise bad_value("value")
        return {"value": {k: str(x)}}

    def r_card_item_put(self, req):
        c = self.card_of(req.match.group(1))
        fid = self.check_oid(req.match.group(2), "idCustomField")
        f = self.fields.get(fid)
        if not f or f["idModel"] != c["idBoard"]:
            raise not_found()
        body = req.json()
        if not isinstance(body, dict):
            raise bad_value("value")
        val = self.item_value(f, body)
        items = self.items.setdefault(c["id"], {})
        old = items.get(fid)
        if val is None:
            items.pop(fid, None)
        else:
            item = {"id": old["id"] if old else self.oid(), "idCustomField": fid,
                    "idModel": c["id"], "modelType": "card"}
            item.update(val)
            items[fid] = item
        data = self.card_data(c, {"customField": {"id": fid, "name": f["name"],
                                                  "type": f["type"]},
                                  "customFieldItem": items.get(fid),
                                  "old": {"value": (old or {}).get("value")}})
        self.add_action(self.boards[c["idBoard"]], "updateCustomFieldItem", data, req.member, c)
        return Reply(200, items.get(fid) or {})

    # --- control -------------------------------------------------------------------------------
    def control_board(self, ref):
        if ref is None:
            return next(iter(self.boards.values()))
        for b in self.boards.values():
            if ref in (b["id"], b["name"], b["shortLink"]):
                return b
        raise ApiError(400, f"no board {ref!r}")

    def list_named(self, b, name):
        if name is None:
            return self.lists[b["lists"][0]]
        for i in b["lists"]:
            if self.lists[i]["name"].casefold() == str(name).casefold():
                return self.lists[i]
        raise ApiError(400, f"no list {name!r} on board {b['name']!r}")

    def label_named(self, b, names):
        out = []
        for n in names or []:
            hit = [i for i in b["labels"] if self.labels[i]["name"] == n]
            out.append(hit[0] if hit else self.make_label(b, n, "sky")["id"])
        return out

    def human_fields(self, b, fields):
        p = {k: v for k, v in fields.items() if k not in ("labels", "members")}
        if "labels" in fields:
            p["idLabels"] = self.label_named(b, fields["labels"])
        if "members" in fields:
            ids = {full: mid for mid, full, _ in self.people.values()}
            if any(n not in ids for n in fields["members"] or []):
                raise ApiError(400, f"no member among {fields['members']!r}")
            p["idMembers"] = [ids[n] for n in fields["members"] or []]
        return p

    def c_seed(self, req):
        body = req.json() or {}
        if body.get("new_board"):
            nb = body["new_board"]
            b = self.make_board(nb.get("name", "Board"), nb.get("lists", ["To Do"]),
                                [(x.get("name", ""), x.get("color")) for x in
                                 nb.get("labels", [])])
        else:
            b = self.control_board(body.get("board"))
        made = []
        for spec in body.get("cards", []):
            lst = self.list_named(b, spec.get("list", body.get("list")))
            p = self.human_fields(b, {k: v for k, v in spec.items()
                                      if k not in ("list", "user")})
            made.append(self.new_card(b, lst, p, spec.get("user", body.get("user"))))
        lst = self.list_named(b, body.get("list"))
        for k in range(int(body.get("count", 0))):
            made.append(self.new_card(b, lst, {"name": f"Seeded card {k + 1}",
                                               "desc": f"Card number {k + 1}, seeded."},
                                      body.get("user")))
        return Reply(200, {"board": b["id"], "cards": [{"id": c["id"], "shortLink":
                                                        c["shortLink"]} for c in made]})

    def c_edit(self, req):
        body = req.json() or {}
        c = self.card_of(body.get("card"))
        b, who = self.boards[c["idBoard"]], body.get("user", "Mia Krystof")
        p = self.human_fields(b, body.get("fields") or {})
        if body.get("list") is not None:
            p["idList"] = self.list_named(b, body["list"])["id"]
        self.apply(c, self.changes(p, c, b["id"]), who)
        if body.get("comment"):
            self.comment(c, body["comment"], who)
        if body.get("delete"):
            self.delete_card(c, who)
        return Reply(200, self.render_card(c))

    def c_cards(self, req):
        ref = req.query.get("board")
        b = self.control_board(ref) if ref else None
        out = []
        for c in self.cards.values():
            if (b and c["idBoard"] != b["id"]) or c.get("_deleted"):
                continue
            r = self.render_card(c, None, True)
            r["listName"] = self.lists[c["idList"]]["name"]
            r["labelNames"] = [self.labels[i]["name"] for i in c["idLabels"]]
            r["attachments"] = c.get("_attachments", [])
            out.append(r)
        return Reply(200, out)

    def c_boards(self, req):
        return Reply(200, [{"id": b["id"], "name": b["name"], "shortLink": b["shortLink"],
                            "lists": [self.ref_list(self.lists[i]) for i in b["lists"]],
                            "labels": [self.labels[i] for i in b["labels"]]}
                           for b in self.boards.values()])

    def public_config(self):
        return dict(self.cfg, key=KEY, token=TOKEN, key2=KEY2, token2=TOKEN2)

    # --- members -------------------------------------------------------------------------------
    def r_board_members(self, req):
        b = self.board_of(req.match.group(1))
        names = self.field_list(req.query, MEMBER_FIELDS) or ["fullName", "username"]
        by_id = {m[0]: who for who, m in self.people.items()}
        return Reply(200, [self.pick(self.member(by_id[i]), names) for i in b["members"]])

    def member_ids(self, raw, board_id):
        if raw in (None, "", []):
            return []
        ids = raw if isinstance(raw, list) else str(raw).split(",")
        for i in ids:
            if not isinstance(i, str) or i not in self.boards[board_id]["members"]:
                raise bad_value("idMembers")
        return list(dict.fromkeys(ids))

    def apply_members(self, c, new, who):
        b = self.boards[c["idBoard"]]
        names = {m[0]: m[1] for m in self.people.values()}
        gone = [x for x in c["idMembers"] if x not in new]
        added = [x for x in new if x not in c["idMembers"]]
        c["idMembers"] = list(new)
        for atype, mids in (("removeMemberFromCard", gone), ("addMemberToCard", added)):
            for mid in mids:
                self.add_action(b, atype, self.card_data(
                    c, {"idMember": mid, "member": {"id": mid, "name": names[mid]}}), who, c)

    def c_users(self, req):
        body = req.json() or {}
        full = body.get("fullName")
        if not isinstance(full, str) or not full:
            raise ApiError(400, "fullName is required")
        mid = self.oid()
        user = str(body.get("username") or re.sub(r"[^a-z0-9]", "", full.lower()) or
                   "member" + mid[-6:])
        self.people[f"{user}:{mid}"] = (mid, full, user)
        if body.get("board", "") is not None:
            self.control_board(body.get("board") or None)["members"].append(mid)
        return Reply(200, {"id": mid, "fullName": full, "username": user})

    def c_config(self, req):
        body = req.json() or {}
        for k, v in body.items():
            if k not in self.cfg:
                raise ApiError(400, f"unknown config key {k!r}")
            self.cfg[k] = int(v)
        return Reply(200, self.public_config())


def slug(name):
    s = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return s[:64] or "card"


if __name__ == "__main__":
    serve(TrelloSim())
