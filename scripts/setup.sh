#!/usr/bin/env bash
# Installs what crmbridge needs on Debian/Ubuntu and builds it.
#   scripts/setup.sh [BUILD_DIR] [extra cmake args...]
# Run as root or with sudo available. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true

pkgs=(build-essential cmake pkg-config python3 libcurl4-openssl-dev libcjson-dev liblmdb-dev
      libconfig-dev libssl-dev libcmocka-dev libmicrohttpd-dev openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
log="$build/build.log"
if ! cmake --build "$build" -j"$(nproc)" >"$log" 2>&1; then
  cat "$log"
  echo "build failed (log: $log)" >&2
  exit 1
fi
echo "built $build/cli/crmbridge"
