#!/usr/bin/env bash
# Sets up crmbridge and runs a real sync between the built-in Zoho CRM and Jira simulators:
# seeded cases, a scripted person editing both sides, and a summary of what crmbridge did.
#   scripts/demo.sh            (state and config are kept in ./demo-state)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec python3 scripts/demo.py --bin build/cli/crmbridge --state demo-state
