#!/usr/bin/env python3
"""Turns the parts bench/run.sh collected into bench/results.json and a table on stdout.

Usage: report.py PARTS_DIR RESULTS_JSON [--markdown]

Reads PARTS_DIR/sync.json (bench_sync), hooks.json and hooks-trello.json (bench_sync --hooks),
mem.json (bench_mem), callgrind.<mode>.out and cpu-time.json (bench_cpu), migrate.json
(bench_migrate). Every figure is a
ratio of two numbers measured in this run; the targets are the ones of the benchmark issue. A part that is missing or incomplete shows as
"failed" rather than being left out. Standard library only.
"""

import datetime
import json
import os
import platform
import subprocess
import sys

CALLGRIND_ITERATIONS = 200
MIB = 1024.0


def load(parts, name):
    try:
        with open(os.path.join(parts, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def callgrind_total(parts, mode):
    try:
        with open(os.path.join(parts, "callgrind.%s.out" % mode)) as f:
            for line in f:
                if line.startswith("totals:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def row(figure, case, measured, reference, ratio, target, ok, note=""):
    return {"figure": figure, "case": case, "measured": measured, "reference": reference,
            "ratio": ratio, "target": target, "ok": ok, "note": note}


# --- 1. calls per change -----------------------------------------------------------------------

def pair_str(d):
    return "%d / %d" % (d["crm"], d["tracker"])


def calls_rows(sync):
    if not sync or "calls" not in sync:
        return [row("calls per change", "all cases", "failed", "", None, "", False,
                    "bench_sync did not finish; see parts/sync.log")]
    rows = []
    n = sync.get("records", 0)
    quiet = {"no change, steady": "no change, steady",
             "no change, after initial load": "no change, 3 s after linking %d and reading "
                                              "it back" % n}
    for name, case in quiet.items():
        runs = [r for r in sync["calls"] if r["name"] == name]
        if runs:
            worst = max(runs, key=lambda r: r["measured"]["total"])
            rows.append(calls_row(worst, "%s (worst of %d cycles)" % (case, len(runs)), 1.0))
    for r in sync["calls"]:
        if r["name"] not in quiet:
            rows.append(calls_row(r, r["name"].replace("crm status", "crm, status changes"),
                                  1.2))
    return rows


def calls_row(r, case, target):
    m, mi = r["measured"], r["minimum"]
    ratio = m["total"] / float(mi["total"])
    ok = r.get("ok", False) and ratio <= target + 1e-9
    note = "req crm / tracker; next cycle %s" % pair_str(r["next_cycle"]) \
        if "next_cycle" in r else "req crm / tracker"
    if m.get("http_total") != m["total"]:
        note += "; http_total_requests %s != logs %d" % (m.get("http_total"), m["total"])
        ok = False
    return row("calls per change", case, pair_str(m), pair_str(mi), ratio,
               ("= %.1f" % target) if target == 1.0 else ("<= %.1f" % target), ok, note)


# --- 2. CPU per record -------------------------------------------------------------------------

def cpu_rows(parts):
    rows = []
    base = callgrind_total(parts, "baseline")
    for mode, case in (("changed", "changed record: map + merge + cache (instructions)"),
                       ("unchanged", "listed echo: map + fingerprints + cache (instructions)")):
        work = callgrind_total(parts, mode)
        if base is None or work is None:
            rows.append(row("cpu per record", case, "not measured", "", None, "<= 3", False,
                            "callgrind missing or failed"))
            continue
        b, w = base / CALLGRIND_ITERATIONS, work / CALLGRIND_ITERATIONS
        rows.append(row("cpu per record", case, "%.0f Ir" % w, "%.0f Ir cJSON" % b, w / b,
                        "<= 3", w / b <= 3.0, "baseline: parse + print both payloads"))
    t = load(parts, "cpu-time.json")
    if t:
        b = t["baseline_user_ns"] + t["baseline_sys_ns"]
        w = t["changed_user_ns"] + t["changed_sys_ns"]
        rows.append(row("cpu per record", "changed record, CPU time user + sys (info)",
                        "%.1f us" % (w / 1000), "%.1f us cJSON" % (b / 1000), w / b, "-", None,
                        "user %.1f + sys %.1f us (split tick-sampled); the commit's fdatasync" %
                        (t["changed_user_ns"] / 1000, t["changed_sys_ns"] / 1000)))
    return rows


# --- 3. memory and disk ------------------------------------------------------------------------

def mem_rows(mem, sync):
    if not mem or not mem.get("complete"):
        return [row("memory and disk", "all cases", "failed", "", None, "", False,
                    "bench_mem did not finish; see parts/mem.log")]
    rss = mem["rss"]
    links = mem["disk"]["links"]
    small, big, walk = rss[0], rss[1], rss[2]
    rows = [
        row("memory and disk", "daemon: no-change cycles holding %d links" % links,
            "%.1f MiB" % (big["peak_rss_kib"] / MIB), "64 MiB", big["peak_rss_kib"] / MIB / 64,
            "< 64 MiB", big["peak_rss_kib"] / MIB < 64,
            "same process with 100 links: %.1f MiB" % (small["peak_rss_kib"] / MIB)),
        row("memory and disk", "cache open + full walk of %d links" % links,
            "%.1f MiB" % (walk["peak_rss_kib"] / MIB), "64 MiB", walk["peak_rss_kib"] / MIB / 64,
            "< 64 MiB", walk["peak_rss_kib"] / MIB < 64,
            "anonymous %.1f MiB; the rest is data.mdb mapped by LMDB (clean, shared)" %
            (walk["rss_anon_kib"] / MIB)),
    ]
    d = mem["disk"]
    rows.append(row("memory and disk", "cache bytes per link beyond the base",
                    "%.0f B" % d["beyond_base_per_link"], "1024 B",
                    d["beyond_base_per_link"] / 1024, "< 1 KiB",
                    d["beyond_base_per_link"] < 1024,
                    "data.mdb %.1f MiB = %.0f B/link, of which base %.0f B" %
                    (d["data_mdb_bytes"] / MIB / MIB, d["bytes_per_link"],
                     d["base_bytes_per_link"])))
    init = (sync or {}).get("initial_sync")
    if init:
        rows.append(row("memory and disk",
                        "initial sync of %d cases in one cycle (info)" % init["records"],
                        "%.1f MiB" % (init["peak_rss_kib"] / MIB), "64 MiB",
                        init["peak_rss_kib"] / MIB / 64, "-", None,
                        "the daemon's first cycle; a bulk load is crmbridge migrate (below)"))
    return rows


# --- 4. latency, 5. migration ------------------------------------------------------------------

def latency_rows(sync):
    lat = (sync or {}).get("latency")
    rows = []
    if not lat:
        rows.append(row("propagation latency", "polling", "failed", "", None, "", False,
                        "bench_sync did not reach the latency run"))
    else:
        iv = lat["interval_s"] * 1000.0
        rows.append(row("propagation latency",
                        "polling, interval %d s, %d edits (p50 / p99)" %
                        (lat["interval_s"], lat["edits"]),
                        "%.0f / %.0f ms" % (lat["p50_ms"], lat["p99_ms"]), "%.0f ms interval" % iv,
                        lat["p99_ms"] / iv, "-", None if not lat["missed"] else False,
                        "ratio: p99 / interval; %d edit(s) never arrived" % lat["missed"]
                        if lat["missed"] else "ratio: p99 / interval"))
    return rows


HOOK_TARGET_MS = 1000.0
HOOK_RUNS = (("hooks.json", "Jira", "Jira admin webhook"),
             ("hooks-trello.json", "Trello", "Trello board webhook"))


def hook_rows(parts):
    """Webhook propagation: one judged row per tracker (every edit), one info row per direction."""
    rows = []
    for name, tracker, channel in HOOK_RUNS:
        h = (load(parts, name) or {}).get("hooks")
        if not h:
            rows.append(row("propagation latency", "webhooks, Zoho <-> %s" % tracker, "failed", "",
                            None, "p99 < 1 s", False, "see parts/%s.log" % name[:-5]))
            continue
        d = h.get("daemon_metrics", {})
        rq = h.get("requests_per_edit", {})
        note = ("daemon interval %d s; %.0f edits/min; %d webhook hints woke %d cycles; "
                "requests per edit crm %.1f / tracker %.1f; %d answer(s) 429" %
                (h["interval_s"], 60.0 * h["edits"] / max(h.get("seconds", 0), 1e-9),
                 d.get("webhook_hints_total", 0), d.get("cycles_total", 0), rq.get("crm", 0),
                 rq.get("tracker", 0), d.get("rate_limit_waits_total", 0)))
        if h["missed"]:
            note += "; %d edit(s) never arrived" % h["missed"]
        records = (load(parts, name) or {}).get("records", 0)
        rows.append(hook_row("webhooks, Zoho <-> %s, %d links, %d edits" %
                             (tracker, records, h["edits"]), h, True, note))
        for key, case, via in (("crm_to_tracker", "Zoho -> %s" % tracker, "Zoho channel"),
                               ("tracker_to_crm", "%s -> Zoho" % tracker, channel)):
            if key in h:
                rows.append(hook_row("  %s, %d edits" % (case, h[key]["edits"]), h[key], False,
                                     "woken by the %s" % via))
    return rows


def hook_row(case, h, judged, note):
    ok = h["p99_ms"] < HOOK_TARGET_MS and not h["missed"]
    return row("propagation latency", case + (" (p50 / p99 / max)" if judged else
                                              " (p50 / p99 / max; info)"),
               "%.0f / %.0f / %.0f ms" % (h["p50_ms"], h["p99_ms"], h["max_ms"]),
               "%.0f ms target" % HOOK_TARGET_MS, h["p99_ms"] / HOOK_TARGET_MS,
               "p99 < 1 s" if judged else "-", ok if judged else None, note)


def migration_rows(m):
    """bench_migrate: records/s against the ceiling the Jira limits allow, and peak RSS."""
    if not m or not m.get("records_per_s"):
        return [row("migration throughput", "100 ms injected latency", "failed", "", None,
                    ">= 0.9", False, "bench_migrate did not complete")]
    case = "%d cases into Jira, %d ms latency, %d connections%s" % (
        m["records"], m["latency_ms"], m["workers"], ", with comments" if m.get("comments") else "")
    busiest = max((m.get("tracker_requests") or {"?": 0}).items(), key=lambda kv: kv[1])[0]
    ratio = m["ratio_of_ceiling"]
    rss = m["peak_rss_kib"] / MIB
    return [row("migration throughput", case, "%.1f records/s" % m["records_per_s"],
                "%.1f records/s ceiling" % m["ceiling_records_per_s"], ratio, ">= 0.9",
                ratio >= 0.9, "busiest endpoint %s; %d answer(s) 429; %.0f s" % (
                    busiest, m.get("tracker_429", 0), m["seconds"])),
            row("memory and disk", "migration peak RSS (" + case + ")", "%.1f MiB" % rss,
                "64 MiB", rss / 64, "< 64 MiB", rss < 64,
                "anonymous %.1f MiB, mapped files %.1f MiB" % (
                    m.get("rss_anon_kib", 0) / MIB, m.get("rss_file_kib", 0) / MIB))]


# --- output ------------------------------------------------------------------------------------

def verdict(ok):
    return {True: "ok", False: "MISS", None: "-"}[ok]


def ratio_str(r):
    return "-" if r is None else "%.2f" % r


def print_table(rows, markdown):
    head = ["figure", "case", "measured", "reference", "ratio", "target", "ok", "note"]
    cells = [[r["figure"], r["case"], r["measured"], r["reference"], ratio_str(r["ratio"]),
              r["target"], verdict(r["ok"]), r["note"]] for r in rows]
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for c in cells:
            print("| " + " | ".join(c) + " |")
        return
    width = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head[:-1])]
    fmt = "  ".join("%%-%ds" % w for w in width) + "  %s"
    print(fmt % tuple(head))
    for c in cells:
        print(fmt % tuple(c))


def meta():
    def git(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True,
                                  cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
        except OSError:
            return ""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": git("rev-parse", "--short", "HEAD"),
            "tree_dirty": bool(git("status", "--porcelain")), "cpu": cpu,
            "cores": os.cpu_count(), "python": platform.python_version()}


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    parts, out = argv[1], argv[2]
    sync, mem = load(parts, "sync.json"), load(parts, "mem.json")
    rows = calls_rows(sync) + cpu_rows(parts) + mem_rows(mem, sync) + latency_rows(sync) + \
        hook_rows(parts) + migration_rows(load(parts, "migrate.json"))
    result = {"meta": meta(), "figures": rows,
              "raw": {"sync": sync, "mem": mem, "hooks": load(parts, "hooks.json"),
                      "hooks_trello": load(parts, "hooks-trello.json"),
                      "cpu_time": load(parts, "cpu-time.json"),
                      "migrate": load(parts, "migrate.json"),
                      "callgrind_iterations": CALLGRIND_ITERATIONS,
                      "callgrind_totals": {m: callgrind_total(parts, m)
                                           for m in ("baseline", "changed", "unchanged")}}}
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print_table(rows, "--markdown" in argv)
    return 1 if any(r["ok"] is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
