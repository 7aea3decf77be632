"""Fault scenarios for the crash harness (crash.py --faults): each injects one kind of failure
through the simulators' fault rules, clocks and knobs (tests/sim/simbase.py), makes a round of
human changes, and runs `crmbridge sync --once` until the world checks out (at most MAX_RUNS
runs). Then the faults are cleared and the harness's invariants must hold: no duplicate, no
lost edit, no spurious conflict, and a further cycle writes nothing.

Each scenario runs in a world of its own (fresh simulators and state, a few linked records), so
that one scenario's failure cannot spill into the next. A scenario that does not apply to a pair kind (search lag on Trello, which has no search
index; token expiry on a tracker with static credentials) is skipped for that kind only.
"""

import time

MAX_RUNS = 10


def rule(kind, path=".*", **kw):
    r = {"kind": kind, "path": path}
    r.update(kw)
    return r


# (name, crm rules, tracker rules, knobs). Knobs: "http_timeout" (s), "clock" ({crm,tracker}
# skew in ms), "lag" (Jira search lag in ms; the connector is told lag + 1 s), "trackers" (kinds
# the scenario applies to), "expire" (the CRM's tokens die mid-cycle).
SCENARIOS = [
    ("429 storm", [rule("status", status=429, retry_after=1, count=6, skip=2)],
     [rule("status", status=429, count=12, skip=3)], {}),
    ("5xx burst", [rule("status", status=500, count=3, skip=1), rule("status", status=502, count=2)],
     [rule("status", status=503, count=4, skip=2), rule("status", status=500, count=3)], {}),
    ("timeouts", [rule("latency", method="POST", delay_ms=2500, count=1, skip=1)],
     [rule("latency", method="POST", delay_ms=2500, count=2)], {"http_timeout": 1}),
    ("reset mid-body", [rule("truncate", count=2, skip=3)],
     [rule("truncate", count=2, skip=1), rule("drop_response", method="POST", count=1, skip=1)],
     {}),
    ("truncated json", [rule("garble", count=2, skip=2)], [rule("garble", count=3, skip=1)], {}),
    ("malformed json", [rule("junk", count=2, skip=2)], [rule("junk", count=2, skip=2)], {}),
    ("html 200", [rule("html", count=2, skip=1)], [rule("html", count=2, skip=2)], {}),
    ("token expiry", [rule("expire", count=1, skip=4)], [], {}),
    ("search lag", [], [rule("drop_response", path=r"/rest/api/3/issue(/bulk)?", method="POST", count=1)],
     {"lag": 2500, "trackers": ("jira",)}),
    # clocks skewed from the start (a service's clock does not jump back): CRM 3 min ahead of
    # us, tracker 4 min behind, and a create's answer lost
    ("skewed clocks", [], [rule("drop_response", path=r"/rest/api/3/issue(/bulk)?|/1/cards",
                                method="POST", count=1)],
     {"clock": {"crm": 180000, "tracker": -240000}}),
]


def set_faults(sim, rules):
    sim.call("DELETE", "/_sim/faults")
    if rules:
        sim.call("POST", "/_sim/faults", {"rules": rules})


def applies(w, knobs):
    trackers = knobs.get("trackers")
    return not trackers or w.trk.sim_name in trackers


def configure(w, knobs):
    top = "http_timeout = %d;\n" % knobs["http_timeout"] if "http_timeout" in knobs else ""
    if "lag" in knobs:
        w.sims[1].call("POST", "/_sim/config", {"search_lag_ms": knobs["lag"]})
        w.trk.search_lag_s = knobs["lag"] // 1000 + 1
    w.write_conf(extra_top=top)
    for i, side in enumerate(("crm", "tracker")):
        skew = knobs.get("clock", {}).get(side)
        if skew:
            w.sims[i].call("POST", "/_sim/clock", {"advance_ms": skew})


def restore(w, knobs):
    for s in w.sims:
        set_faults(s, [])
    if "lag" in knobs:
        w.sims[1].call("POST", "/_sim/config", {"search_lag_ms": 0})
        w.trk.search_lag_s = 0
    w.write_conf()


def run_one(w, name, crm_rules, trk_rules, knobs):
    configure(w, knobs)
    from crash import round_changes
    w.new_records(3, 1)
    w.converge(name + " (initial sync)")
    round_changes(w, name.replace(" ", "-"))
    set_faults(w.sims[0], crm_rules)
    set_faults(w.sims[1], trk_rules)
    runs, ok = 0, False
    while runs < MAX_RUNS and not ok:
        rc, out = w.run(["sync", "--once"])
        runs += 1
        ok = rc == 0 and not w.problems()
        if not ok and "lag" in knobs:
            time.sleep(knobs["lag"] / 1000.0)
    restore(w, knobs)
    # a request held by a latency rule may still be on its way in (and may be a write the
    # service applies after our timeout): let it land, then look again
    delay = max([r.get("delay_ms", 0) for r in crm_rules + trk_rules] or [0])
    if delay:
        time.sleep(delay / 1000.0 + 0.5)
        ok = ok and not w.problems()
    if not ok:
        w.converge(name)
    good = w.check("fault '%s'" % name) and w.check_quiet("fault '%s'" % name)
    w.fig.faults += 1
    return good, runs


def run_all(w):
    results = []
    for name, crm_rules, trk_rules, knobs in SCENARIOS:
        if not applies(w, knobs):
            results.append("%s n/a" % name)
            continue
        import crash
        fw = crash.World(w.kind, w.bin, w.fig, w.rng)
        try:
            good, runs = run_one(fw, name, crm_rules, trk_rules, knobs)
        finally:
            fw.close()
        results.append("%s %s/%d" % (name, "ok" if good else "FAILED", runs))
    print("  %s faults: %s" % (w.kind, "; ".join(results)), flush=True)
