"""Shared plumbing for crmbridge's service simulators.

Each simulator (zoho_sim.py, jira_sim.py, ...) subclasses Sim and registers routes for the real
API paths. This module gives them: a threaded HTTP/1.1 server with keep-alive, a controllable
clock, a request log, fault injection, and the control interface under /_sim/ that tests use:

  POST   /_sim/reset                 drop all data, faults and the log (re-seed defaults)
  GET    /_sim/log                   [{"method","path","query","status","ms"}...]
  DELETE /_sim/log                   clear the log
  POST   /_sim/faults                {"rules":[rule...]} appends fault rules (see Fault)
  DELETE /_sim/faults                clear fault rules
  POST   /_sim/clock                 {"advance_ms":N} or {"now_ms":N}; GET returns {"now_ms"}
  plus whatever the simulator adds (seed, edit as a human, read records).

A fault rule: {"method":"POST","path":"/rest/api/3/issue" (regex, full match),
               "kind":"status"|"drop_response"|"latency"|"truncate"|"html"|"reset",
               "status":500, "retry_after":1, "delay_ms":200, "count":N (default 1, -1 = forever),
               "skip":M (let M matching requests through first)}
  status        answer with that status and the service's own error body (Sim.error_body)
  drop_response perform the request, then close the connection without answering
  latency       sleep delay_ms, then behave normally (Sim.fault_latency: a simulator whose
                service counts requests in flight sleeps inside the request instead)
  truncate      send only the first half of the real body (Content-Length of the whole)
  html          answer 200 with an HTML error page
  reset         close the connection without performing the request
  garble        perform the request, answer its status with the first half of the body and a
                matching Content-Length (truncated JSON over a healthy connection)
  junk          perform the request, answer its status with a malformed JSON body
  expire        expire every access token (the simulator's expire_tokens control), then serve
                the request: a token dying in the middle of a cycle
Control paths (/_sim/...) are never faulted, rate limited or authenticated.
"""

import argparse
import email.utils
import gc
import json
import re
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Reply:
    """What a route returns: status, JSON-able body (or raw bytes/str), extra headers."""

    def __init__(self, status=200, body=None, headers=None, raw=None, content_type=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.raw = raw
        self.content_type = content_type

    def payload(self):
        if self.raw is not None:
            return self.raw if isinstance(self.raw, bytes) else self.raw.encode("utf-8")
        if self.body is None:
            return b""
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


class Request:
    def __init__(self, handler, method, body_bytes):
        self.method = method
        parts = urlsplit(handler.path)
        self.path = parts.path
        self.query_string = parts.query
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.query_multi = parse_qs(parts.query, keep_blank_values=True)
        self.headers = handler.headers
        self.raw = body_bytes
        self.match = None
        self._json = None

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def json(self):
        """Parsed JSON body, or raises BadJson."""
        if self._json is None:
            try:
                self._json = json.loads(self.raw.decode("utf-8")) if self.raw else None
            except (ValueError, UnicodeDecodeError) as e:
                raise BadJson(str(e))
        return self._json


class BadJson(Exception):
    pass


class Sim:
    """Base simulator. Subclasses call self.route(method, regex, fn) in setup_routes()."""

    name = "sim"

    def __init__(self):
        self.lock = threading.RLock()
        self.routes = []
        self.control_routes = []
        self.clock_offset_ms = 0
        self.fixed_now_ms = None
        self.log = []
        self.faults = []
        self.control("POST", r"/_sim/reset", self._c_reset)
        self.control("GET", r"/_sim/log", lambda r: Reply(200, self.log))
        self.control("DELETE", r"/_sim/log", self._c_clear_log)
        self.control("POST", r"/_sim/faults", self._c_add_faults)
        self.control("DELETE", r"/_sim/faults", self._c_clear_faults)
        self.control("POST", r"/_sim/clock", self._c_clock)
        self.control("GET", r"/_sim/clock", lambda r: Reply(200, {"now_ms": self.now_ms()}))
        self.reset()
        self.setup_routes()

    # --- to override -------------------------------------------------------------------------
    def reset(self):
        """Drop all data and restore the default seed."""

    def setup_routes(self):
        pass

    def error_body(self, status, req):
        """The service's own error body for an injected status (Reply)."""
        return Reply(status, {"error": "injected", "status": status})

    def before_route(self, req):
        """Auth and rate limits for real API paths; return a Reply to short-circuit."""
        return None

    def fault_latency(self, req, delay_ms):
        """A latency fault: sleeps before the request is handled."""
        time.sleep(delay_ms / 1000.0)

    # --- helpers -------------------------------------------------------------------------------
    def route(self, method, pattern, fn):
        self.routes.append((method, re.compile(pattern), fn))

    def control(self, method, pattern, fn):
        self.control_routes.append((method, re.compile(pattern), fn))

    def now_ms(self):
        if self.fixed_now_ms is not None:
            return self.fixed_now_ms + self.clock_offset_ms
        return int(time.time() * 1000) + self.clock_offset_ms

    def _c_reset(self, req):
        with self.lock:
            self.log = []
            self.faults = []
            self.clock_offset_ms = 0
            self.fixed_now_ms = None
            self.reset()
        return Reply(200, {"ok": True})

    def _c_clear_log(self, req):
        with self.lock:
            self.log = []
        return Reply(200, {"ok": True})

    def _c_add_faults(self, req):
        rules = (req.json() or {}).get("rules", [])
        with self.lock:
            for r in rules:
                r = dict(r)
                r.setdefault("count", 1)
                r.setdefault("skip", 0)
                r["_re"] = re.compile(r.get("path", ".*"))
                self.faults.append(r)
        return Reply(200, {"ok": True, "rules": len(self.faults)})

    def _c_clear_faults(self, req):
        with self.lock:
            self.faults = []
        return Reply(200, {"ok": True})

    def _c_clock(self, req):
        body = req.json() or {}
        with self.lock:
            if "advance_ms" in body:
                self.clock_offset_ms += int(body["advance_ms"])
            if "now_ms" in body:
                self.fixed_now_ms = int(body["now_ms"])
                self.clock_offset_ms = 0
        return Reply(200, {"now_ms": self.now_ms()})

    def take_fault(self, method, path):
        with self.lock:
            for r in self.faults:
                if r.get("method") and r["method"] != method:
                    continue
                if not r["_re"].fullmatch(path):
                    continue
                if r["count"] == 0:
                    continue
                if r["skip"] > 0:
                    r["skip"] -= 1
                    continue
                if r["count"] > 0:
                    r["count"] -= 1
                return r
        return None

    def dispatch(self, req):
        table = self.control_routes if req.path.startswith("/_sim/") else self.routes
        allowed = []
        for method, rx, fn in table:
            m = rx.fullmatch(req.path)
            if not m:
                continue
            if method != req.method:
                allowed.append(method)
                continue
            req.match = m
            return fn(req)
        if allowed:
            return self.not_found(req, 405)
        return self.not_found(req, 404)

    def not_found(self, req, status):
        return Reply(status, {"error": "no such route", "path": req.path})


def make_handler(sim):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = sim.name

        def log_message(self, fmt, *args):
            pass

        def date_time_string(self, timestamp=None):
            # the Date header follows the simulated clock, as a real server's Date and its
            # records' modified times come from one clock
            return email.utils.formatdate(sim.now_ms() / 1000.0 if timestamp is None
                                          else timestamp, usegmt=True)

        def setup(self):
            super().setup()
            # Headers and body go out in two writes; without this, Nagle's algorithm holds the
            # body until the client's delayed ACK (40 ms) on every keep-alive request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _handle(self, method):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            req = Request(self, method, body)
            control = req.path.startswith("/_sim/")
            fault = None if control else sim.take_fault(method, req.path)
            if fault and fault["kind"] == "latency":
                sim.fault_latency(req, fault.get("delay_ms", 100))
                fault = None
            if fault and fault["kind"] == "expire":
                if hasattr(sim, "c_expire_tokens"):
                    with sim.lock:
                        sim.c_expire_tokens(req)
                fault = None
            if fault and fault["kind"] == "reset":
                self._log(req, 0)
                self.close_connection = True
                return
            if fault and fault["kind"] == "status":
                rep = sim.error_body(fault.get("status", 500), req)
                if fault.get("retry_after") is not None:
                    rep.headers["Retry-After"] = str(fault["retry_after"])
            elif fault and fault["kind"] == "html":
                rep = Reply(200, raw="<html><head><title>Service Unavailable</title></head>"
                                     "<body><h1>Maintenance</h1></body></html>",
                            content_type="text/html; charset=utf-8")
            else:
                try:
                    rep = None if control else sim.before_route(req)
                    if rep is None:
                        with sim.lock:
                            rep = sim.dispatch(req)
                            settle_heap()
                except BadJson as e:
                    rep = sim.bad_json(req, str(e)) if hasattr(sim, "bad_json") else \
                        Reply(400, {"error": "malformed json", "detail": str(e)})
                except Exception:
                    traceback.print_exc()
                    rep = sim.error_body(500, req)
            if fault and fault["kind"] == "drop_response":
                self._log(req, -1)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            data = rep.payload()
            if fault and fault["kind"] == "garble":
                data = data[: len(data) // 2]
            elif fault and fault["kind"] == "junk":
                data = b'{"data": [{"id": "1", "name": }], "info": {'
            self._log(req, rep.status)
            self.send_response(rep.status)
            ctype = rep.content_type or ("application/json;charset=UTF-8" if data else None)
            if ctype and rep.status not in (204, 304):
                self.send_header("Content-Type", ctype)
            for k, v in rep.headers.items():
                self.send_header(k, v)
            if rep.status in (204, 304):
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if method == "HEAD":
                return
            if fault and fault["kind"] == "truncate":
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            self.wfile.write(data)

        def _log(self, req, status):
            if req.path.startswith("/_sim/"):
                return
            with sim.lock:
                sim.log.append({"method": req.method, "path": req.path, "query": req.query_string,
                                "status": status, "ms": sim.now_ms()})

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

        def do_PUT(self):
            self._handle("PUT")

        def do_DELETE(self):
            self._handle("DELETE")

        def do_PATCH(self):
            self._handle("PATCH")

        def do_HEAD(self):
            self._handle("HEAD")

    return Handler


# A real service answers continuously. CPython's full collections of a simulator holding the
# objects of tens of thousands of records stop all its threads for hundreds of milliseconds
# every few seconds, which a benchmark would charge to the client. What has lived through a
# few thousand requests leaves the collector's sight (gc.freeze): the stores hold plain dicts
# and lists freed by reference counting, and a cycle among them would only leak until exit.
_served = 0


def settle_heap():
    global _served
    _served += 1
    if _served % 2000 == 0:
        gc.freeze()


def serve(sim, argv=None):
    """Command line: --port N (0 = any free port) --host H --port-file F (written when ready)
    --tls-cert PEM --tls-key PEM (serve HTTPS with that certificate instead of HTTP)."""
    ap = argparse.ArgumentParser(description=f"{sim.name} simulator for crmbridge tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args(argv)
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer((args.host, args.port), make_handler(sim))
    port = srv.server_address[1]
    scheme = "http"
    if args.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        # a client that refuses the certificate fails the handshake inside accept(): the
        # server loop drops that connection (ssl.SSLError is an OSError) and carries on
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        scheme = "https"
    sim.base_url = f"{scheme}://{args.host}:{port}"
    if hasattr(sim, "on_listen"):
        sim.on_listen(sim.base_url)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(port))
        import os
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"{sim.name} simulator listening on {sim.base_url}", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
