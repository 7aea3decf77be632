"""Notification channels of the Zoho CRM simulator (a mixin of ZohoSim): POST/GET/PUT/PATCH/DELETE
/crm/v8/actions/watch, and while a channel is active an outbound POST to its notify_url for
every record create, edit and delete of a watched module (also the integration's own writes),
sent through hooksend.Outbox. Expired channels send nothing and count as absent.

Where the public record is silent, these are the choices made (tests rely on them):
- channel_id: a numeric string (or number); events: {Module}.{create|edit|delete|all} of a known
  module; notify_url: http(s); token: at most 50 characters; channel_expiry: ISO-8601 with
  offset, in the future and at most one week away (default: one hour).
- POST of a channel_id that is still active: 400 DUPLICATE_DATA (renew with PATCH or PUT);
  PATCH/PUT/DELETE of a channel that is absent or expired: 400 NOT_SUBSCRIBED.
- PATCH merges events (or removes the given ones with "_delete_events": true) and replaces
  notify_url, token and channel_expiry when given; PUT replaces the whole channel.
- the callback body: {"server_time", "query_params", "module", "resource_uri", "ids",
  "affected_fields", "operation" (insert|update|delete), "channel_id", "token"}.

Control: GET /_sim/watch lists every channel (with "active") and the deliveries sent.
"""

import re

from hooksend import Outbox
from simbase import Reply

API = "/crm/v8"
WEEK_MS = 7 * 86400 * 1000
HOUR_MS = 3600 * 1000
OPS = {"create": "insert", "edit": "update", "delete": "delete"}


class ZohoWatch:
    """Needs the host's modules, now_ms, parse_time (module level in zoho_sim) and base_url."""

    def watch_routes(self, api_error, parse_time):
        self.WatchError, self.watch_parse_time = api_error, parse_time
        r = self.route
        r("GET", API + r"/actions/watch", self.r_watch_list)
        r("POST", API + r"/actions/watch", lambda q: self.r_watch_write(q, "post"))
        r("PUT", API + r"/actions/watch", lambda q: self.r_watch_write(q, "put"))
        r("PATCH", API + r"/actions/watch", lambda q: self.r_watch_write(q, "patch"))
        r("DELETE", API + r"/actions/watch", self.r_watch_delete)
        self.control("GET", r"/_sim/watch", self.c_watch)

    def watch_reset(self):
        """Called by reset() before any record is written."""
        self.channels = {}
        self.outbox = Outbox()

    def active_channel(self, cid):
        ch = self.channels.get(cid)
        return ch if ch and ch["expiry_ms"] > self.now_ms() else None

    # --- validation ------------------------------------------------------------------------------
    def watch_bad(self, message, **details):
        return self.WatchError(400, "INVALID_DATA", message, details)

    def watch_events(self, events):
        if not isinstance(events, list) or not events:
            raise self.watch_bad("events must be a non-empty array", api_name="events")
        for ev in events:
            m = re.fullmatch(r"([A-Za-z_]+)\.(create|edit|delete|all)", ev if isinstance(ev, str)
                             else "")
            if not m or m.group(1) not in self.modules:
                raise self.watch_bad("invalid event", api_name="events", value=ev)
        return list(dict.fromkeys(events))

    def watch_expiry(self, raw):
        now = self.now_ms()
        if raw is None:
            return now + HOUR_MS
        ms = self.watch_parse_time(raw) if isinstance(raw, str) else None
        if ms is None:
            raise self.watch_bad("invalid channel_expiry", api_name="channel_expiry")
        if ms <= now or ms > now + WEEK_MS:
            raise self.watch_bad("channel_expiry must be within one week from now",
                                 api_name="channel_expiry")
        return ms

    def watch_item(self, item, old):
        """The channel described by item (merged onto old for PATCH)."""
        if not isinstance(item, dict):
            raise self.watch_bad("watch items must be objects")
        cid = item.get("channel_id")
        cid = str(cid) if isinstance(cid, (int, str)) and not isinstance(cid, bool) else ""
        if not cid.isdigit():
            raise self.watch_bad("channel_id must be numeric", api_name="channel_id")
        ch = dict(old) if old else {"channel_id": cid, "events": [], "token": None}
        if "events" in item or not old:
            evs = self.watch_events(item.get("events"))
            if old and item.get("_delete_events"):
                evs = [e for e in ch["events"] if e not in evs]
            elif old:
                evs = list(dict.fromkeys(ch["events"] + evs))
            ch["events"] = evs
        url = item.get("notify_url", ch.get("notify_url"))
        if not isinstance(url, str) or not re.match(r"https?://", url):
            raise self.watch_bad("invalid notify_url", api_name="notify_url")
        ch["notify_url"] = url
        tok = item.get("token", ch["token"])
        if tok is not None and (not isinstance(tok, str) or len(tok) > 50):
            raise self.watch_bad("token must be at most 50 characters", api_name="token")
        ch["token"] = tok
        if "channel_expiry" in item or not old:
            ch["expiry_ms"] = self.watch_expiry(item.get("channel_expiry"))
        return cid, ch

    # --- routes ----------------------------------------------------------------------------------
    def r_watch_write(self, req, mode):
        body = req.json()
        items = body.get("watch") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise self.watch_bad("the watch array is missing", api_name="watch")
        out = []
        with self.lock:
            for item in items:
                cid = str(item.get("channel_id")) if isinstance(item, dict) else ""
                old = self.active_channel(cid)
                if mode == "post" and old:
                    raise self.WatchError(400, "DUPLICATE_DATA", "the channel already exists",
                                          {"channel_id": cid})
                if mode != "post" and not old:
                    raise self.WatchError(400, "NOT_SUBSCRIBED", "not subscribed for actions-watch",
                                          {"channel_id": cid})
                cid, ch = self.watch_item(item, old if mode == "patch" else None)
                self.channels[cid] = ch
                out.append(self.watch_result(ch))
        return Reply(201 if mode == "post" else 200, {"watch": out})

    def watch_result(self, ch):
        events = [{"channel_expiry": self.org_time(ch["expiry_ms"]),
                   "resource_uri": f"{self.base_url}{API}/{ev.split('.')[0]}",
                   "resource_id": self.modules[ev.split(".")[0]].id,
                   "resource_name": ev.split(".")[0], "channel_id": ch["channel_id"]}
                  for ev in ch["events"]]
        return {"code": "SUCCESS", "status": "success",
                "message": "Successfully subscribed for actions-watch of the given module",
                "details": {"events": events}}

    def watch_render(self, ch):
        return {"channel_id": ch["channel_id"], "events": ch["events"],
                "notify_url": ch["notify_url"], "token": ch["token"],
                "channel_expiry": self.org_time(ch["expiry_ms"])}

    def r_watch_list(self, req):
        q = req.query
        with self.lock:
            chans = [self.watch_render(c) for cid, c in sorted(self.channels.items())
                     if self.active_channel(cid)
                     and q.get("channel_id", cid) == cid
                     and (not q.get("module") or any(e.startswith(q["module"] + ".")
                                                     for e in c["events"]))]
        if not chans:
            return Reply(204)
        return Reply(200, {"watch": chans})

    def r_watch_delete(self, req):
        ids = [i for i in (req.query.get("channel_ids") or "").split(",") if i]
        if not ids:
            raise self.watch_bad("channel_ids is missing", param_name="channel_ids")
        out = []
        with self.lock:
            for cid in ids:
                if not self.active_channel(cid):
                    raise self.WatchError(400, "NOT_SUBSCRIBED",
                                          "not subscribed for actions-watch", {"channel_id": cid})
                del self.channels[cid]
                out.append({"code": "SUCCESS", "status": "success",
                            "message": "Successfully unsubscribed from actions-watch",
                            "details": {"channel_id": cid}})
        return Reply(200, {"watch": out})

    def c_watch(self, req):
        with self.lock:
            chans = [dict(self.watch_render(c), active=self.active_channel(cid) is not None,
                          expiry_ms=c["expiry_ms"])
                     for cid, c in sorted(self.channels.items())]
        return Reply(200, {"channels": chans, "sent": self.outbox.log()})

    # --- deliveries ------------------------------------------------------------------------------
    def watch_fire(self, mod, event, ids):
        """Called (under the lock) after a record of mod was created, edited or deleted."""
        now = self.now_ms()
        for cid in list(self.channels):
            ch = self.active_channel(cid)
            if not ch or not ({f"{mod.api_name}.{event}", f"{mod.api_name}.all"}
                              & set(ch["events"])):
                continue
            payload = {"server_time": now, "query_params": {}, "module": mod.api_name,
                       "resource_uri": f"{self.base_url}{API}/{mod.api_name}", "ids": list(ids),
                       "affected_fields": [], "operation": OPS[event],
                       "channel_id": cid, "token": ch["token"]}
            self.outbox.deliver(ch["notify_url"], payload, lambda body: {}, OPS[event])
