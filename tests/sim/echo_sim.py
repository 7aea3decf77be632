#!/usr/bin/env python3
"""A service-free simulator for testing the HTTP layer (connectors/http.c).

Routes (all faults of simbase apply to them):
  ANY  /echo              the request as seen by the server: method, path, query, headers,
                          body, and the connection it arrived on (client_port, conn)
  GET  /big?bytes=N       a JSON body of exactly N bytes (N >= 10)
  GET  /gzip              a JSON body, gzip-encoded with Content-Encoding when accepted
  GET  /chunked?cut=1     a chunked JSON body; with cut=1 the connection closes before the end
  ANY  /redirect?n=K&to=P 302 to /redirect?n=K-1 ..., the last one to P (default /echo)
It models no real service: error_body is a generic JSON error.
"""

import contextlib
import gzip
import itertools
import json
import socket
import threading
from urllib.parse import parse_qs, quote, urlsplit

import simbase
from simbase import Reply, Sim, serve

# One thread serves one connection (ThreadingHTTPServer), so the peer of the current request is
# kept per thread. conn numbers are never reused, unlike ports.
_peer = threading.local()
_conn_numbers = itertools.count(1)


class EchoSim(Sim):
    name = "echo"

    def setup_routes(self):
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
            self.route(method, r"/echo", self.echo)
            self.route(method, r"/redirect", self.redirect)
        self.route("GET", r"/big", self.big)
        self.route("GET", r"/gzip", self.gzip)

    def error_body(self, status, req):
        return Reply(status, {"error": {"code": status, "message": "injected failure"}})

    def echo(self, req):
        return Reply(200, {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "headers": {k.lower(): v for k, v in req.headers.items()},
            "body": req.raw.decode("utf-8", "replace"),
            "client_port": getattr(_peer, "port", 0),
            "conn": getattr(_peer, "conn", 0),
        })

    def big(self, req):
        try:
            n = int(req.query.get("bytes", ""))
        except ValueError:
            n = -1
        if n < 10:
            return Reply(400, {"error": {"code": 400, "message": "bytes must be >= 10"}})
        return Reply(200, raw='{"pad":"' + "x" * (n - 10) + '"}',
                     content_type="application/json;charset=UTF-8")

    def gzip(self, req):
        accepted = "gzip" in (req.header("Accept-Encoding") or "")
        doc = {"gzip": accepted, "items": [{"n": i, "text": "compressible " * 4} for i in range(50)]}
        data = json.dumps(doc).encode("utf-8")
        if not accepted:
            return Reply(200, raw=data, content_type="application/json;charset=UTF-8")
        return Reply(200, raw=gzip.compress(data), content_type="application/json;charset=UTF-8",
                     headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})

    def redirect(self, req):
        n = int(req.query.get("n", "1") or 1)
        to = req.query.get("to", "/echo")
        loc = to if n <= 1 else f"/redirect?n={n - 1}&to={quote(to, safe='')}"
        return Reply(302, {"redirect": loc}, headers={"Location": loc})


def send_chunked(handler, sim):
    """GET /chunked: written by hand because simbase always sends Content-Length."""
    parts = urlsplit(handler.path)
    cut = parse_qs(parts.query).get("cut", ["0"])[-1] == "1"
    with sim.lock:
        sim.log.append({"method": "GET", "path": parts.path, "query": parts.query,
                        "status": 200, "ms": sim.now_ms()})
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json;charset=UTF-8")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunks = [b'{"items":[', b'"a","b",', b'"c"]}']
    for c in chunks[:2] if cut else chunks:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
    if not cut:
        handler.wfile.write(b"0\r\n\r\n")
        return
    handler.wfile.flush()
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)


def with_peer(base, sim):
    class PeerHandler(base):
        def setup(self):
            super().setup()
            self.conn_number = next(_conn_numbers)

        def _handle(self, method):
            _peer.port = self.client_address[1]
            _peer.conn = self.conn_number
            if method == "GET" and urlsplit(self.path).path == "/chunked":
                send_chunked(self, sim)
                return
            super()._handle(method)

    return PeerHandler


def main():
    sim = EchoSim()
    plain = simbase.make_handler
    simbase.make_handler = lambda s: with_peer(plain(s), s)
    serve(sim)


if __name__ == "__main__":
    main()
