#!/usr/bin/env bash
# Rehearse the rotation runbook on a development daemon (`make run`): writes the next master key
# into the development state directory's keys/ and has the daemon reload it. Then try
# `coffre admin keys rotate` and `coffre admin keys retire 1`. Never for production keys.
#
# Usage: keys/dev-key.sh [STATE_DIR]   (default: .coffre, as `make run` uses)
set -euo pipefail
state="${1:-$(cd "$(dirname "$0")/.." && pwd)/.coffre}"
bin="$(cd "$(dirname "$0")/.." && swift build --show-bin-path)"
socket="$state/coffred.sock"
[ -S "$socket" ] || { echo "no development daemon at $socket: run 'make run' first" >&2; exit 69; }
"$bin/coffre" --socket "$socket" admin keys new --dir "$state/keys"
"$bin/coffre" --socket "$socket" admin keys reload
