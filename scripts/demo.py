#!/usr/bin/env python3
"""crmbridge demo: Zoho CRM Cases <-> Jira issues between the built-in simulators.

Starts tests/sim/zoho_sim.py and tests/sim/jira_sim.py on free loopback ports, seeds customer
cases, writes a config that points crmbridge at them, and runs crmbridge the way an admin would
(`check`, `sync --once`), with a scripted person editing both sides in between. Prints what
crmbridge created, updated and flagged, and exits non-zero if anything did not converge.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Sim:
    def __init__(self, name):
        self.name = name
        fd, self.port_file = tempfile.mkstemp(prefix=f"crmbridge-{name}-", suffix=".port")
        os.close(fd)
        os.unlink(self.port_file)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "sim", f"{name}_sim.py"),
             "--port", "0", "--port-file", self.port_file],
            stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    txt = f.read().strip()
                if txt:
                    self.base = f"http://127.0.0.1:{int(txt)}"
                    os.unlink(self.port_file)
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit(f"demo: the {name} simulator did not start")

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def crmbridge(args, conf, *cmd, check=True):
    p = subprocess.run([args.bin, "-c", conf, *cmd], capture_output=True, text=True)
    out = (p.stdout + p.stderr).rstrip()
    if out:
        print("\n".join("    " + line for line in out.splitlines()))
    if check and p.returncode not in (0, 1):
        raise SystemExit(f"demo: crmbridge {' '.join(cmd)} exited {p.returncode}")
    return p


def step(text):
    print(f"\n== {text}")


FX_PAIR = """
  {{ name = "fx_cases";
    crm = {{ endpoint = "fx_sim"; object = "CasesObj"; }};
    tracker = {{ endpoint = "jira_team2"; project = "SUP"; issue_type = "Task"; }};
    interval = 60;
  }}"""


TRELLO_KEY = "d1f7b2c9e4a8f3b6c0d5e9a2f4b7c1e8"
TRELLO_TOKEN = "ATTA9c4e1b7d2f8a3c6e0b5d9f1a4c7e2b8d3f6a0c5e9b1d4f7a2c8e3b6d0f5a9c1e4b7"


def write_config(state, zoho, jira, fx=None, jira2=None, trello=None, board=None):
    fx_eps = fx_pair = ""
    if trello:
        fx_eps += f"""
  team_board = {{ type = "trello"; api_url = "{trello.base}";
    key = "{TRELLO_KEY}"; token = "{TRELLO_TOKEN}"; }};"""
        fx_pair += f""",
  {{ name = "delivery";
    crm = {{ endpoint = "zoho_sim"; module = "Cases"; }};
    tracker = {{ endpoint = "team_board"; board = "{board}"; list = "To Do"; }};
    interval = 60;
  }}"""
    if fx:
        fx_eps += f"""
  fx_sim = {{ type = "fxiaoke"; api_url = "{fx.base}"; app_id = "FSAID_SIMAPP01";
    app_secret = "sim-app-secret"; permanent_code = "sim-permanent-code";
    user_id = "FSUID_00000000000000000000000000000001"; }};
  jira_team2 = {{ type = "jira"; api_url = "{jira2.base}";
    email = "bot@acme.test"; api_token = "sim-jira-token"; search_lag = 0; }};"""
        fx_pair += "," + FX_PAIR.format()
    conf = os.path.join(state, "crmbridge.conf")
    with open(conf, "w") as f:
        f.write(f"""# written by scripts/demo.py: the simulators stand in for Zoho CRM, Jira Cloud, Fxiaoke
state_dir = "{state}/cache";
endpoints = {{
  zoho_sim = {{ type = "zoho";
    accounts_url = "{zoho.base}";
    api_url = "{zoho.base}";
    client_id = "1000.SIMCLIENT"; client_secret = "sim-client-secret";
    refresh_token = "1000.sim-refresh-token"; }};
  jira_sim = {{ type = "jira"; api_url = "{jira.base}";
    email = "bot@acme.test"; api_token = "sim-jira-token"; search_lag = 0; }};{fx_eps}
}};
pairs = ( {{ name = "feedback";
    crm = {{ endpoint = "zoho_sim"; module = "Cases"; }};
    tracker = {{ endpoint = "jira_sim"; project = "SUP"; issue_type = "Task"; }};
    interval = 60;
}}{fx_pair} );
""")
    return conf


def zoho_case(zoho, subject):
    for r in zoho.call("GET", "/_sim/records?module=Cases")["data"]:
        if r.get("Subject") == subject:
            return r
    raise SystemExit(f"demo: no Zoho case '{subject}'")


def jira_issue(jira, key):
    for i in jira.call("GET", "/_sim/issues"):
        if i["key"] == key:
            return i
    raise SystemExit(f"demo: no Jira issue '{key}'")


def fx_record(fx, name):
    for r in fx.call("GET", "/_sim/records?object=CasesObj")["data"]:
        if r.get("name") == name:
            return r
    raise SystemExit(f"demo: no Fxiaoke record '{name}'")


def fxiaoke_part(args, state, zoho, jira, problems):
    """Fxiaoke (纷享销客) CasesObj <-> a second Jira site: the same guarantees, in Chinese."""
    fx, jira2 = Sim("fxiaoke"), Sim("jira")
    try:
        step("Fxiaoke (纷享销客): seeding two 工单 (CasesObj) records")
        fx.call("POST", "/_sim/seed", {"object": "CasesObj", "records": [
            {"name": "报表导出超时", "description": "客户反馈：导出一万行需要五分钟。",
             "status": "新建", "priority": "高"},
            {"name": "希望支持钉钉通知", "description": "* 审批通过时通知\n* 工单关闭时通知",
             "status": "新建", "priority": "中"},
        ]})
        conf = write_config(state, zoho, jira, fx, jira2)
        step("crmbridge sync --once --pair fx_cases")
        crmbridge(args, conf, "sync", "--once", "--pair", "fx_cases")
        rec = fx_record(fx, "报表导出超时")
        key = rec.get("tracker_ref__c")
        print(f"    jira (team 2) has {len(jira2.call('GET', '/_sim/issues'))} issue(s); "
              f"'报表导出超时' is {key}")
        step(f"Jira: Mia moves {key} to Done; crmbridge syncs")
        jira2.call("POST", "/_sim/transition", {"key": key, "to": "Done", "user": "Mia Krystof"})
        crmbridge(args, conf, "sync", "--once", "--pair", "fx_cases")
        rec = fx_record(fx, "报表导出超时")
        ok = rec.get("status__label") == "已解决" and len(jira2.call("GET", "/_sim/issues")) == 2
        print(f"    {'updated':8} Fxiaoke status after Jira Done: {rec.get('status__label')}"
              f"{'' if ok else '   <-- NOT AS EXPECTED'}")
        if not ok:
            problems.append(f"fxiaoke status after Done: {rec.get('status__label')}")
    finally:
        fx.stop()
        jira2.stop()


def trello_part(args, state, zoho, jira, problems):
    """Zoho CRM Cases <-> a Trello board: cards in lists, the list is the status."""
    trello = Sim("trello")
    try:
        board = trello.call("GET", "/_sim/boards")[0]
        lists = ", ".join(l["name"] for l in board["lists"])
        step(f"Trello: board '{board['name']}' with lists {lists}; a 'delivery' pair sends the "
             "same Zoho cases there")
        conf = write_config(state, zoho, jira, trello=trello, board=board["id"])
        crmbridge(args, conf, "sync", "--once", "--pair", "delivery")
        cards = trello.call("GET", f"/_sim/cards?board={board['id']}")
        card = next(c for c in cards if c["name"] == "Support WeCom (企业微信) QR login")
        step(f"Trello: the team drags '{card['name']}' to Done; crmbridge syncs")
        trello.call("POST", "/_sim/edit", {"card": card["id"], "list": "Done"})
        crmbridge(args, conf, "sync", "--once", "--pair", "delivery")
        case = zoho_case(zoho, card["name"])
        ok = len(cards) == 3 and case.get("Status") == "Closed"
        print(f"    {'created':8} {len(cards)} Trello cards from 3 Zoho cases")
        print(f"    {'updated':8} Zoho case status after the card reached Done: "
              f"{case.get('Status')}{'' if ok else '   <-- NOT AS EXPECTED'}")
        if not ok:
            problems.append(f"trello: {len(cards)} cards, case status {case.get('Status')}")
    finally:
        trello.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "cli", "crmbridge"))
    ap.add_argument("--state", default=os.path.join(ROOT, "demo-state"))
    args = ap.parse_args()
    state = os.path.abspath(args.state)
    shutil.rmtree(state, ignore_errors=True)
    os.makedirs(state)
    zoho, jira = Sim("zoho"), Sim("jira")
    problems = []
    try:
        step("seeding Zoho CRM with three customer cases")
        zoho.call("POST", "/_sim/seed", {"module": "Cases", "records": [
            {"Subject": "Export to Excel is too slow", "Status": "New", "Priority": "High",
             "Description": "Customer reports exports of 10k rows take minutes.\n* CSV\n* XLSX",
             "Type": "Problem"},
            {"Subject": "需要支持企业微信登录", "Status": "New", "Priority": "Medium",
             "Description": "客户反馈：希望用企业微信扫码登录。", "Type": "Feature Request"},
            {"Subject": "Invoice PDF shows wrong tax rate", "Status": "Escalated",
             "Priority": "Low", "Description": "See https://example.com/ticket/42",
             "Type": "Problem"},
        ]})
        conf = write_config(state, zoho, jira)
        print(f"    config: {conf}")

        step("crmbridge check")
        if crmbridge(args, conf, "check").returncode != 0:
            raise SystemExit("demo: check failed")

        step("first sync: every case becomes a Jira issue")
        crmbridge(args, conf, "sync", "--once")
        issues = jira.call("GET", "/_sim/issues")
        print(f"    jira now has {len(issues)} issue(s): " + ", ".join(i["key"] for i in issues))
        if len(issues) != 3:
            problems.append(f"expected 3 issues, found {len(issues)}")

        slow = zoho_case(zoho, "Export to Excel is too slow")
        key_slow = slow.get("Jira_Issue")
        wx = zoho_case(zoho, "需要支持企业微信登录")
        key_wx = wx.get("Jira_Issue")
        inv = zoho_case(zoho, "Invoice PDF shows wrong tax rate")
        key_inv = inv.get("Jira_Issue")

        step("a person works on both sides")
        print(f"    Jira: Mia moves {key_slow} to Done")
        jira.call("POST", "/_sim/transition", {"key": key_slow, "to": "Done", "user": "Mia Krystof"})
        print(f"    Zoho: Li Wei raises the priority of '{wx['Subject']}' to High")
        zoho.call("POST", "/_sim/edit", {"module": "Cases", "id": wx["id"],
                                          "fields": {"Priority": "High"}, "user": "Li Wei"})
        print(f"    Jira: Mia rewrites the summary of {key_wx}")
        jira.call("POST", "/_sim/edit", {"key": key_wx, "user": "Mia Krystof",
                                         "fields": {"summary": "Support WeCom (企业微信) QR login"}})
        print(f"    both: the invoice case's title is changed differently on each side")
        zoho.call("POST", "/_sim/edit", {"module": "Cases", "id": inv["id"], "user": "Li Wei",
                                          "fields": {"Subject": "Invoice PDF: wrong VAT rate"}})
        jira.call("POST", "/_sim/edit", {"key": key_inv, "user": "Mia Krystof",
                                         "fields": {"summary": "Tax rate rounding in invoice PDF"}})

        step("second sync: changes flow both ways, the clash is held for a person")
        crmbridge(args, conf, "sync", "--once")

        step("third sync: nothing left to do (no echo)")
        jira.call("DELETE", "/_sim/log")
        zoho.call("DELETE", "/_sim/log")
        crmbridge(args, conf, "sync", "--once")
        writes = [e for e in jira.call("GET", "/_sim/log") + zoho.call("GET", "/_sim/log")
                  if e["method"] in ("POST", "PUT") and "search" not in e["path"]
                  and "coql" not in e["path"] and "oauth" not in e["path"]
                  and "bulkfetch" not in e["path"]]
        if writes:
            problems.append(f"third sync wrote {len(writes)} time(s): {writes}")

        step("crmbridge conflicts list")
        crmbridge(args, conf, "conflicts", "list")

        step("summary")
        slow = zoho_case(zoho, "Export to Excel is too slow")
        wx_issue = jira_issue(jira, key_wx)
        wx = zoho_case(zoho, "Support WeCom (企业微信) QR login")
        inv_issue = jira_issue(jira, key_inv)
        inv = zoho_case(zoho, "Invoice PDF: wrong VAT rate")
        checks = [
            ("created", f"3 Jira issues from 3 Zoho cases ({key_slow}, {key_wx}, {key_inv})",
             len(jira.call("GET", "/_sim/issues")) == 3),
            ("updated", f"Zoho case status after Jira Done: {slow.get('Status')}",
             slow.get("Status") == "Closed"),
            ("updated", f"{key_wx} priority after the Zoho edit: "
                        f"{wx_issue['fields'].get('priority', {}).get('name')}",
             wx_issue["fields"].get("priority", {}).get("name") == "High"),
            ("updated", f"Zoho subject after the Jira edit: {wx.get('Subject')}", True),
            ("flagged", f"title conflict held: Zoho keeps '{inv.get('Subject')}', Jira keeps "
                        f"'{inv_issue['fields'].get('summary')}'",
             inv_issue["fields"].get("summary") == "Tax rate rounding in invoice PDF"),
        ]
        for kind, text, ok in checks:
            print(f"    {kind:8} {text}{'' if ok else '   <-- NOT AS EXPECTED'}")
            if not ok:
                problems.append(text)
        trello_part(args, state, zoho, jira, problems)
        fxiaoke_part(args, state, zoho, jira, problems)
    finally:
        zoho.stop()
        jira.stop()
    if problems:
        print("\ndemo FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(f"\ndemo OK. State and config are in {state}; try:\n"
          f"    {args.bin} -c {state}/crmbridge.conf conflicts list")
    return 0


if __name__ == "__main__":
    sys.exit(main())
