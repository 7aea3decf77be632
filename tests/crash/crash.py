#!/usr/bin/env python3
"""Crash harness: kills `crmbridge sync --once` at every state-changing step and at random
moments, restarts it, and checks what a person would check on both services afterwards.

For each pair kind (zoho-jira, zoho-trello, fxiaoke-jira, fxiaoke-trello) it starts the two
simulators (tests/sim/) and runs rounds. A round makes the same shape of human changes (new
records on both sides, a title edited on each side), then runs one cycle that dies by SIGKILL:

  commits  CRMBRIDGE_CRASH_AFTER_COMMITS=k (cache/): k local commits pass, the next one dies
           before it commits
  writes   CRMBRIDGE_CRASH_AFTER_WRITES=k (connectors/http.c): dies right after the k-th
           successful request other than GET/HEAD (every remote write; also POST reads such as
           Jira bulkfetch and Fxiaoke queries, which only adds kill points)
  random   a SIGKILL at a random moment of a larger batch (load)

k runs 1, 2, ... until the cycle finishes before the seam fires. After each kill a human edits
a record (the world moves on while the service is down), then plain runs follow until one exits
0. Then the invariants are checked:

  - every record exists exactly once on each side (titles carry a unique token; a token seen
    twice on a side is a duplicate), and the CRM record's tracker reference names its copy;
  - every human edit survives: each token's title equals the last title a person gave it, on
    both sides; and no conflict is held (a person never edits one record on both sides between
    two clean cycles, so any conflict is one crmbridge made up), with one exception: killed
    between a write and its commit, crmbridge cannot tell whether its write landed before a
    person edited the written side (a write that never landed, followed by that edit, would be
    a real conflict), so it holds the field; such a conflict between two values people wrote
    is counted as held, resolved as that person would (--take the side of the later edit) and
    must then converge;
  - at the end of each sweep, one more cycle writes nothing to either service.

Scenario hooks: SCENARIOS lists the (name, command) pairs run under the kill sweeps; `migrate`
joins it when that command exists (add ("migrate", [...]); its rounds seed records to copy).
--faults also runs the fault scenarios of faults.py. Python 3 standard library only.

Usage: crash.py --bin build/cli/crmbridge [--kinds zoho-jira,...] [--random 200]
                [--faults] [--seed N] [-v]
Exit status 0 when every invariant held; prints the figures either way.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SIM_DIR = os.path.join(HERE, "..", "sim")

# Commands swept by the kill seams. A killed command other than sync is first run again (a
# migration resumes where it stopped), then sync cycles converge the pair.
SCENARIOS = [("sync", ["sync", "--once"]),
             ("migrate", ["migrate", "--pair", "crash", "--from", "crm", "--workers", "1"]),
             ("migrate-workers", ["migrate", "--pair", "crash", "--from", "crm", "--workers", "3"])]

SECRETS = {"CB_TEST_ZOHO_SECRET": "sim-client-secret", "CB_TEST_JIRA_TOKEN": "sim-jira-token",
           "CB_TEST_FX_SECRET": "sim-app-secret",
           "CB_TEST_TRELLO_KEY": "d1f7b2c9e4a8f3b6c0d5e9a2f4b7c1e8",
           "CB_TEST_TRELLO_TOKEN": "ATTA9c4e1b7d2f8a3c6e0b5d9f1a4c7e2b8d3f6a0c5e9b1d4f7a2c8e3b6"
                                   "d0f5a9c1e4b7"}

# Requests that read although they are not GETs.
READS = ("/rest/api/3/search", "/rest/api/3/issue/bulkfetch", "/crm/v8/coql", "/oauth/v2/token",
         "/cgi/crm/v2/data/query", "/cgi/crm/custom/v2/data/query", "/cgi/crm/v2/data/get",
         "/cgi/crm/custom/v2/data/get", "/cgi/crm/v2/object/", "/cgi/corpAccessToken/",
         "/oauth2.0/token")

VERBOSE = False


def say(*a):
    if VERBOSE:
        print(*a, file=sys.stderr, flush=True)


class Sim:
    """One simulator process and its control interface."""

    def __init__(self, name, workdir):
        self.name = name
        port_file = os.path.join(workdir, name + ".port")
        self.proc = subprocess.Popen([sys.executable, os.path.join(SIM_DIR, name + "_sim.py"),
                                      "--port", "0", "--port-file", port_file],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        with open(port_file) as f:
            self.url = "http://127.0.0.1:" + f.read().strip()

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError("%s %s %s -> %d %s" % (self.name, method, path, e.code,
                                                      e.read()[:300]))
        return json.loads(raw) if raw else None

    def writes(self):
        n = 0
        for en in self.call("GET", "/_sim/log"):
            if en["method"] in ("GET", "HEAD") or en["path"].startswith(READS):
                continue
            n += 1
        return n

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


# --- the two sides of each kind ----------------------------------------------------------------

class Zoho:
    sim_name, ep_type = "zoho", "zoho"

    def __init__(self, sim, ref_field):
        self.sim, self.ref_field = sim, ref_field

    def endpoint(self, d):
        return ('crm_ep = { type = "zoho"; accounts_url = "%s"; api_url = "%s";\n'
                '  client_id = "1000.SIMCLIENT"; client_secret = "env:CB_TEST_ZOHO_SECRET";\n'
                '  refresh_token = "file:%s/zoho.token"; };\n' % (self.sim.url, self.sim.url, d))

    def side(self):
        return 'crm = { endpoint = "crm_ep"; module = "Cases"; };'

    def prepare(self, d):
        with open(os.path.join(d, "zoho.token"), "w") as f:
            f.write("1000.sim-refresh-token\n")
        self.sim.call("POST", "/_sim/config", {"credits": 10000000})

    def seed(self, titles):
        r = self.sim.call("POST", "/_sim/seed", {"module": "Cases", "records": [
            {"Subject": t, "Description": "seeded by the crash harness"} for t in titles]})
        return r["ids"]

    def records(self):
        rows = self.sim.call("GET", "/_sim/records?module=Cases")["data"]
        return [{"id": r["id"], "title": r.get("Subject") or "", "ref": r.get(self.ref_field)}
                for r in rows if not r.get("$in_recycle_bin")]

    def edit(self, rec, title):
        self.sim.call("POST", "/_sim/edit", {"module": "Cases", "id": rec["id"],
                                             "fields": {"Subject": title}})


class Fxiaoke(Zoho):
    sim_name, ep_type = "fxiaoke", "fxiaoke"

    def endpoint(self, d):
        return ('crm_ep = { type = "fxiaoke"; api_url = "%s"; app_id = "FSAID_SIMAPP01";\n'
                '  app_secret = "env:CB_TEST_FX_SECRET"; permanent_code = "file:%s/fx.code";\n'
                '  user_id = "FSUID_00000000000000000000000000000001"; rate_limit = 5000; };\n'
                % (self.sim.url, d))

    def side(self):
        return 'crm = { endpoint = "crm_ep"; object = "CasesObj"; };'

    def prepare(self, d):
        with open(os.path.join(d, "fx.code"), "w") as f:
            f.write("sim-permanent-code\n")
        self.sim.call("POST", "/_sim/config", {"rate_calls": 100000, "daily_quota": 10000000})

    def seed(self, titles):
        r = self.sim.call("POST", "/_sim/seed", {"object": "CasesObj", "records": [
            {"name": t, "description": "seeded by the crash harness", "status": "新建"}
            for t in titles]})
        return r["ids"]

    def records(self):
        rows = self.sim.call("GET", "/_sim/records?object=CasesObj")["data"]
        return [{"id": r["_id"], "title": r.get("name") or "", "ref": r.get("tracker_ref__c")}
                for r in rows]

    def edit(self, rec, title):
        self.sim.call("POST", "/_sim/edit", {"object": "CasesObj", "id": rec["id"],
                                             "fields": {"name": title}})


class Jira:
    sim_name = "jira"

    def __init__(self, sim):
        self.sim = sim
        self.search_lag_s = 0

    def endpoint(self, d):
        return ('trk_ep = { type = "jira"; api_url = "%s"; email = "bot@acme.test";\n'
                '  api_token = "env:CB_TEST_JIRA_TOKEN"; search_lag = %d; };\n'
                % (self.sim.url, self.search_lag_s))

    def side(self):
        return 'tracker = { endpoint = "trk_ep"; project = "SUP"; issue_type = "Task"; };'

    def prepare(self, d):
        self.sim.call("POST", "/_sim/config", {"rate": {"GET": 5000, "POST": 5000, "PUT": 5000,
                                                        "DELETE": 5000}})

    def seed(self, titles):
        self.sim.call("POST", "/_sim/seed", {"issues": [{"summary": t} for t in titles]})

    def records(self):
        return [{"id": i["key"], "title": i["fields"].get("summary") or "", "ref": i["key"]}
                for i in self.sim.call("GET", "/_sim/issues")]

    def edit(self, rec, title):
        self.sim.call("POST", "/_sim/edit", {"key": rec["id"], "fields": {"summary": title}})


class Trello:
    sim_name = "trello"

    def __init__(self, sim):
        self.sim = sim
        self.search_lag_s = 0
        b = sim.call("POST", "/_sim/seed", {"new_board": {"name": "Team board", "lists": [
            "Inbox", "Doing", "Done"]}})
        self.board = b["board"]

    def endpoint(self, d):
        return ('trk_ep = { type = "trello"; api_url = "%s";\n'
                '  key = "env:CB_TEST_TRELLO_KEY"; token = "env:CB_TEST_TRELLO_TOKEN";\n'
                '  token_rate = 100000; key_rate = 100000; };\n' % self.sim.url)

    def side(self):
        return 'tracker = { endpoint = "trk_ep"; board = "%s"; list = "Inbox"; };' % self.board

    def prepare(self, d):
        self.sim.call("POST", "/_sim/config", {"token_limit": 100000, "key_limit": 100000})

    def seed(self, titles):
        self.sim.call("POST", "/_sim/seed", {"board": self.board, "cards": [
            {"name": t, "list": "Inbox"} for t in titles]})

    def records(self):
        cards = self.sim.call("GET", "/_sim/cards?board=" + self.board)
        return [{"id": c["id"], "title": c.get("name") or "", "ref": c.get("shortUrl")}
                for c in cards if not c.get("closed")]

    def edit(self, rec, title):
        self.sim.call("POST", "/_sim/edit", {"card": rec["id"], "fields": {"name": title}})


KINDS = {
    "zoho-jira": (Zoho, "Jira_Issue", Jira),
    "zoho-trello": (Zoho, "Tracker_Ref", Trello),
    "fxiaoke-jira": (Fxiaoke, None, Jira),
    "fxiaoke-trello": (Fxiaoke, None, Trello),
}


class Figures:
    def __init__(self):
        self.kills = self.restarts = self.runs = self.rounds = 0
        self.duplicates = self.lost_edits = self.missing = self.bad_refs = 0
        self.noisy_cycles = self.stuck = self.faults = self.conflicts = self.held = 0
        self.failures = []

    def ok(self):
        return not self.failures

    def line(self):
        return ("kills=%d restarts=%d runs=%d rounds=%d duplicates=%d lost_edits=%d missing=%d "
                "bad_refs=%d spurious_conflicts=%d held_ambiguous=%d noisy_final_cycles=%d "
                "stuck=%d fault_scenarios=%d" %
                (self.kills, self.restarts, self.runs, self.rounds, self.duplicates,
                 self.lost_edits, self.missing, self.bad_refs, self.conflicts, self.held,
                 self.noisy_cycles, self.stuck, self.faults))


class World:
    """One pair kind: its simulators, config, state and the model of what people did."""

    def __init__(self, kind, binary, fig, rng):
        self.kind, self.bin, self.fig, self.rng = kind, binary, fig, rng
        self.dir = tempfile.mkdtemp(prefix="cb-crash-")
        crm_cls, ref_field, trk_cls = KINDS[kind]
        self.sims = [Sim(crm_cls.sim_name, self.dir), Sim(trk_cls.sim_name, self.dir)]
        self.crm = crm_cls(self.sims[0], ref_field)
        self.trk = trk_cls(self.sims[1])
        self.crm.prepare(self.dir)
        self.trk.prepare(self.dir)
        self.conf = os.path.join(self.dir, "crmbridge.conf")
        self.write_conf()
        self.expected = {}  # token -> title a person last gave it
        self.quarantined = set()  # tokens already reported broken: not checked or edited again
        self.next_token = 0
        self.seen_conflicts = set()
        self.human_titles = set()  # every title a person typed
        self.env = dict(os.environ, **SECRETS)
        for k in ("CRMBRIDGE_CRASH_AFTER_COMMITS", "CRMBRIDGE_CRASH_AFTER_WRITES"):
            self.env.pop(k, None)

    def write_conf(self, extra_pair="", extra_top=""):
        text = ('state_dir = "%s/state";\n%sendpoints = {\n%s%s};\n'
                'pairs = ( { name = "crash";\n  %s\n  %s\n  overlap = 5; create = "both"; %s } );\n'
                % (self.dir, extra_top, self.crm.endpoint(self.dir), self.trk.endpoint(self.dir),
                   self.crm.side(), self.trk.side(), extra_pair))
        with open(self.conf, "w") as f:
            f.write(text)

    def close(self):
        for s in self.sims:
            s.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- people ------------------------------------------------------------------------------
    def token(self):
        self.next_token += 1
        return "T%04d" % self.next_token

    def new_records(self, n_crm, n_trk):
        titles = []  # tokens
        for side, n in ((self.crm, n_crm), (self.trk, n_trk)):
            batch = []
            for _ in range(n):
                t = self.token()
                title = "%s %s record" % (t, "crm" if side is self.crm else "tracker")
                self.expected[t] = title
                batch.append(title)
                titles.append(t)
            if batch:
                side.seed(batch)
        return titles

    def human_edit(self, label, among=None):
        """Edits the title of one record on each side, chosen among those present on both (and
        in among, the tokens a killed run was working on, when given). Returns the tokens."""
        present = {t: v for t, v in self.present_both().items() if t not in self.quarantined}
        picks = []
        for i in (0, 1):
            # A person edits what they see: only a record that shows the latest value on that
            # side (else both sides changed since they last agreed: a genuine conflict).
            fresh = [t for t in sorted(present) if t not in picks and
                     present[t][i]["title"] == self.expected[t]]
            pool = [t for t in fresh if among is None or t in among] or fresh
            if not pool:
                return picks
            picks.append(self.rng.choice(pool))
        for side, tok in ((self.crm, picks[0]), (self.trk, picks[1])):
            rec = present[tok][0 if side is self.crm else 1]
            title = "%s edited %s on %s" % (tok, label, "crm" if side is self.crm else "tracker")
            side.edit(rec, title)
            self.expected[tok] = title
            self.human_titles.add(title)
        return picks

    def present_both(self):
        by = [{}, {}]
        for i, side in enumerate((self.crm, self.trk)):
            for r in side.records():
                by[i].setdefault(r["title"].split(" ")[0], []).append(r)
        return {t: (by[0][t][0], by[1][t][0]) for t in by[0]
                if t in by[1] and len(by[0][t]) == 1 and len(by[1][t]) == 1}

    # --- crmbridge ---------------------------------------------------------------------------
    def run(self, args, env_extra=None, kill_after=None):
        """Runs crmbridge; returns (exit code, output). kill_after: seconds before a SIGKILL."""
        env = dict(self.env, **(env_extra or {}))
        p = subprocess.Popen([self.bin, "-c", self.conf] + args, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = p.communicate(timeout=kill_after if kill_after is not None else 120)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            out, _ = p.communicate()
        self.fig.runs += 1
        return p.returncode, out.decode("utf-8", "replace")

    def converge(self, what):
        """Plain runs until one exits 0 (at most 6)."""
        out = ""
        for _ in range(6):
            rc, out = self.run(["sync", "--once"])
            self.fig.restarts += 1
            if rc == 0:
                return True
            say("  restart after %s: exit %d: %s" % (what, rc, out.strip()[-400:]))
        self.fig.stuck += 1
        self.fail("%s: no clean run after 6 restarts: %s" % (what, out.strip()[-600:]))
        return False

    def fail(self, msg):
        self.fig.failures.append("%s: %s" % (self.kind, msg))
        print("FAIL %s: %s" % (self.kind, msg), flush=True)

    # --- checks ------------------------------------------------------------------------------
    def problems(self):
        """What breaks the invariants now: [(figure, token, message)], no side effects."""
        by = [{}, {}]
        for i, side in enumerate((self.crm, self.trk)):
            for r in side.records():
                by[i].setdefault(r["title"].split(" ")[0], []).append(r)
        out = []
        for tok, title in self.expected.items():
            if tok in self.quarantined:
                continue
            for i, name in ((0, "crm"), (1, "tracker")):
                recs = by[i].get(tok, [])
                if len(recs) > 1:
                    out.append(("duplicates", tok, "%s has %d copies on the %s" %
                                (tok, len(recs), name), len(recs) - 1))
                elif not recs:
                    out.append(("missing", tok, "%s is missing on the %s" % (tok, name), 1))
                elif recs[0]["title"] != title:
                    out.append(("lost_edits", tok, "%s on the %s reads '%s', a person wrote '%s'"
                                % (tok, name, recs[0]["title"], title), 1))
            c, t = by[0].get(tok, []), by[1].get(tok, [])
            if len(c) == 1 and len(t) == 1 and c[0]["ref"] != t[0]["ref"]:
                out.append(("bad_refs", tok, "%s: crm reference '%s' does not name its copy '%s'"
                            % (tok, c[0]["ref"], t[0]["ref"]), 1))
        for i, name in ((0, "crm"), (1, "tracker")):
            for tok in by[i]:
                if tok not in self.expected and tok not in self.quarantined:
                    out.append(("missing", tok, "unknown record '%s' on the %s" % (tok, name), 1))
        return out

    def settle_held(self, what):
        """Resolves the held conflicts a crash made ambiguous (see the module doc)."""
        rc, out = self.run(["conflicts", "list", "--json"])
        settled = 0
        for c in json.loads(out or "[]"):
            vals = [c["crm"].get("value"), c["tracker"].get("value")]
            tok = (vals[0] or "").split(" ")[0]
            if c["id"] in self.seen_conflicts or c["field"] != "title" or \
                    not all(v in self.human_titles for v in vals) or \
                    self.expected.get(tok) not in vals:
                continue
            take = "crm" if vals[0] == self.expected[tok] else "tracker"
            self.run(["conflicts", "resolve", str(c["id"]), "--take", take])
            self.seen_conflicts.add(c["id"])
            self.fig.held += 1
            settled += 1
        if settled:
            say("  %s: %d ambiguous conflict(s) resolved as their person would" % (what, settled))
            self.converge(what)

    def check(self, what):
        """Records every broken invariant in the figures; broken tokens are not checked again."""
        self.settle_held(what)
        found = self.problems()
        for fig_name, tok, msg, n in found:
            setattr(self.fig, fig_name, getattr(self.fig, fig_name) + n)
            self.quarantined.add(tok)
            self.fail("%s: %s" % (what, msg))
        return self.check_conflicts(what) == 0 and not found

    def check_conflicts(self, what):
        """People never edit one record on both sides in a round: every conflict is spurious."""
        rc, out = self.run(["conflicts", "list", "--json"])
        new = [c for c in json.loads(out or "[]") if c["id"] not in self.seen_conflicts]
        for c in new:
            self.seen_conflicts.add(c["id"])
            self.fig.conflicts += 1
            self.fail("%s: conflict %d on '%s': base %s, crm %s, tracker %s" %
                      (what, c["id"], c["field"], json.dumps(c.get("base")),
                       json.dumps(c["crm"].get("value")), json.dumps(c["tracker"].get("value"))))
        return len(new)

    def check_quiet(self, what):
        for s in self.sims:
            s.call("DELETE", "/_sim/log")
        rc, out = self.run(["sync", "--once"])
        w = [s.writes() for s in self.sims]
        if rc != 0 or any(w):
            self.fig.noisy_cycles += 1
            self.fail("%s: the cycle after convergence exited %d and wrote %d/%d: %s" %
                      (what, rc, w[0], w[1], out.strip()[-400:]))
            return False
        return True


# --- the sweeps ----------------------------------------------------------------------------------

def round_changes(w, label):
    """New records on both sides and an edit on each; returns the tokens touched."""
    return set(w.new_records(2, 1)) | set(w.human_edit(label))


def sweep(w, seam, name, cmd, max_k=400):
    """Kills cmd at step k of seam for k = 1.. until a run completes; converge and check."""
    env_name = {"commits": "CRMBRIDGE_CRASH_AFTER_COMMITS",
                "writes": "CRMBRIDGE_CRASH_AFTER_WRITES"}[seam]
    k = 0
    while k < max_k:
        k += 1
        label = "%s-%s-%d" % (name, seam, k)
        touched = round_changes(w, label)
        rc, out = w.run(cmd, {env_name: str(k)})
        w.fig.rounds += 1
        killed = rc == -signal.SIGKILL
        if killed:
            w.fig.kills += 1
            w.human_edit(label + "-down", touched)
            if cmd[0] != "sync":
                rc2, out = w.run(cmd)
                w.fig.restarts += 1
                say("  %s resumed: exit %d: %s" % (label, rc2, out.strip()[-300:]))
        say("  %s: exit %d" % (label, rc))
        if w.converge(label):
            w.check(label)
        if not killed:
            break
    w.check_quiet("%s %s sweep" % (name, seam))
    return k


def random_kills(w, n_kills, batch=6):
    """n_kills SIGKILLs at random moments of cycles that carry a larger batch of changes."""
    done = 0
    t_full = 1.0
    while done < n_kills:
        touched = set(w.new_records(batch, batch // 3)) | set(w.human_edit("load-%d" % done))
        # a few kills per batch, each at a random point of what the cycle still has to do
        for _ in range(3):
            if done >= n_kills:
                break
            t0 = time.monotonic()
            rc, _ = w.run(["sync", "--once"], kill_after=w.rng.uniform(0.02, t_full))
            w.fig.rounds += 1
            if rc == -signal.SIGKILL:
                done += 1
                w.fig.kills += 1
                w.human_edit("load-%d-down" % done, touched)
            else:
                t_full = max(0.2, time.monotonic() - t0)
        if w.converge("random kills"):
            w.check("random kills %d" % done)
    w.check_quiet("random kills")


def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--random", type=int, default=200, help="random kills in all")
    ap.add_argument("--seams", default="commits,writes")
    ap.add_argument("--faults", action="store_true", help="run the fault scenarios too")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    VERBOSE = a.verbose
    kinds = [k for k in a.kinds.split(",") if k]
    seams = [s for s in a.seams.split(",") if s]
    fig = Figures()
    t0 = time.monotonic()
    print("crash harness: seed %d, kinds %s" % (a.seed, ",".join(kinds)), flush=True)
    for i, kind in enumerate(kinds):
        rng = random.Random(a.seed + i)
        w = World(kind, os.path.abspath(a.bin), fig, rng)
        try:
            t1 = time.monotonic()
            w.new_records(3, 1)
            if w.converge("initial sync") and w.check("initial sync"):
                steps = []
                for name, cmd in SCENARIOS:
                    for seam in seams:
                        steps.append("%s/%s %d" % (name, seam, sweep(w, seam, name, cmd)))
                share = a.random // len(kinds) + (1 if i < a.random % len(kinds) else 0)
                if share:
                    random_kills(w, share)
                if a.faults:
                    import faults
                    faults.run_all(w)
                print("%-15s %s; random %d; %d records; %.1f s" %
                      (kind, ", ".join(steps), share, len(w.expected), time.monotonic() - t1),
                      flush=True)
        finally:
            w.close()
    print("figures: %s; %.0f s" % (fig.line(), time.monotonic() - t0), flush=True)
    if not fig.ok():
        print("%d failure(s)" % len(fig.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
