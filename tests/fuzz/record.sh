#!/usr/bin/env bash
# Regenerates the connectors' seed corpora (tests/fuzz/corpus/<connector>/sim) by running each
# fuzz target once in record mode against its simulator with a few seeded records.
#   tests/fuzz/record.sh BUILD_DIR   (a -DCRMBRIDGE_FUZZ=ON build)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:?usage: record.sh BUILD_DIR}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
ctl() { python3 - "$@" <<'PY'
import json, sys, urllib.request
url, body = sys.argv[1], sys.argv[2]
r = urllib.request.urlopen(urllib.request.Request(url, data=body.encode(), method="POST",
                           headers={"Content-Type": "application/json"}))
print(r.read().decode())
PY
}
for conn in zoho jira fxiaoke trello; do
  python3 tests/sim/${conn}_sim.py --port 0 --port-file "$tmp/$conn.port" 2>/dev/null &
  for _ in $(seq 100); do [ -f "$tmp/$conn.port" ] && break; sleep 0.05; done
  base="http://127.0.0.1:$(cat "$tmp/$conn.port")"
  board=""
  port=$((20000 + RANDOM % 20000))
  case $conn in
    zoho) ctl "$base/_sim/config" "{\"api_domain\":\"http://127.0.0.1:$port\"}" >/dev/null
          ctl "$base/_sim/seed" '{"module":"Cases","records":[{"Subject":"Export fails","Description":"<b>PDF</b> export"},{"Subject":"导出失败","Status":"Escalated"}]}' >/dev/null ;;
    jira) ctl "$base/_sim/seed" '{"issues":[{"summary":"Export fails","description":"text","labels":["a"]},{"summary":"导出失败","status":"Done"}]}' >/dev/null ;;
    fxiaoke) ctl "$base/_sim/seed" '{"object":"CasesObj","records":[{"name":"导出失败","status":"新建"},{"name":"Export fails","status":"处理中","description":"long\ntext"}]}' >/dev/null ;;
    trello) board=$(ctl "$base/_sim/seed" '{"new_board":{"name":"B","lists":["Inbox","Done"]},"cards":[{"name":"Export fails","desc":"**md**","list":"Inbox"}]}' | python3 -c 'import json,sys;print(json.load(sys.stdin)["board"])') ;;
  esac
  echo x > "$tmp/in"
  CB_FUZZ_UPSTREAM="$base" CB_FUZZ_RECORD="tests/fuzz/corpus/$conn/sim" CB_FUZZ_BOARD="$board" CB_FUZZ_PORT=$port \
    "$build/tests/fuzz/fuzz_$conn" "$tmp/in" >/dev/null 2>&1 || true
  echo "$conn: $(grep -c -- '--8<--' "tests/fuzz/corpus/$conn/sim") bodies"
done
