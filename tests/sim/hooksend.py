"""Outgoing webhooks for the simulators.

A simulator keeps its registered webhooks here and calls fire() when a record changes; each
delivery is a signed POST sent from a background thread (as the real services deliver after the
change is committed), and its outcome is kept for the tests. Signing follows the services:
Jira admin webhooks `X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, body)>`, Trello
`X-Trello-Webhook: base64(HMAC-SHA1(app secret, body + callbackURL))`. No retries.
"""

import base64
import hashlib
import hmac
import json
import threading
import urllib.error
import urllib.request
import uuid


def jira_signature(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def trello_signature(secret, body, url):
    mac = hmac.new(secret.encode(), body + url.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


class Outbox:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = []  # [{"url", "status", "event"}] in delivery order

    def deliver(self, url, payload, headers, event):
        """Sends payload to url in a background thread; never raises."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        hdrs = dict(headers(body))
        hdrs["Content-Type"] = "application/json"

        def run():
            status = 0
            try:
                rq = urllib.request.Request(url, data=body, headers=hdrs, method="POST")
                with urllib.request.urlopen(rq, timeout=5) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            except OSError:
                status = 0
            with self.lock:
                self.sent.append({"url": url, "status": status, "event": event})

        threading.Thread(target=run, daemon=True).start()

    def jira(self, hook, payload):
        """One Jira admin-webhook delivery (signed when the webhook has a secret)."""
        def headers(body):
            h = {"X-Atlassian-Webhook-Identifier": str(uuid.uuid4()),
                 "X-Atlassian-Webhook-Flow": "Primary",
                 "User-Agent": "Atlassian Webhook HTTP Client"}
            if hook.get("secret"):
                h["X-Hub-Signature"] = jira_signature(hook["secret"], body)
            return h
        self.deliver(hook["url"], payload, headers, payload.get("webhookEvent"))

    def trello(self, hook, payload, app_secret):
        """One Trello delivery, signed over the body and the callback URL as registered."""
        url = hook["callbackURL"]
        self.deliver(url, payload,
                     lambda body: {"X-Trello-Webhook": trello_signature(app_secret, body, url)},
                     payload["action"].get("type"))

    def log(self):
        with self.lock:
            return list(self.sent)
