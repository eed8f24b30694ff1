#!/usr/bin/env bash
# Runs the reliability and security drills against the binaries in BIN_DIR and prints one
# closing line, "drills: N passed, M failed". Every drill runs even if one before it failed.
#   drills/run.sh fast BIN_DIR   the short versions, part of `make test` (about 3 minutes)
#   drills/run.sh full BIN_DIR   the long versions, `make drills` (about an hour)
# One drill alone: drills/run.sh fast BIN_DIR crash
#   (names: crash crash-rotation-purge corruption attacks load faults api-fuzz)
set -uo pipefail
mode="${1:?usage: drills/run.sh fast|full BIN_DIR [DRILL...]}"
bin="${2:?usage: drills/run.sh fast|full BIN_DIR [DRILL...]}"
shift 2
here="$(cd "$(dirname "$0")" && pwd)"
case "$mode" in
  fast)
    crash=(--kills 5 --longest 1.5)
    crash_jobs=(--rotation-kills 2 --purge-kills 2)
    corruption=(--rounds 2 --documents 25 --damage 8)
    attacks=(--slow-connections 64 --slow-seconds 5 --idle-timeout 2 --fd-limit 256)
    load=(--seconds 15)
    faults=(--repeat 1)
    fuzz=(--max-examples 5 --seed 1)
    ;;
  full)
    crash=(--kills 200 --longest 0.6 --fetch-all-every 20)
    crash_jobs=(--rotation-kills 50 --purge-kills 50 --dossiers 60 --due 40 --rotation-pause-ms 30 --fetch-all-every 10)
    corruption=(--rounds 20 --documents 40 --damage 12 --cli-sample 6)
    attacks=(--slow-connections 512 --slow-seconds 30 --idle-timeout 5 --fd-limit 512)
    load=(--seconds 300)
    faults=(--repeat 10)
    fuzz=(--max-examples 400 --phases examples,coverage,fuzzing,stateful)
    ;;
  *) echo "mode is fast or full" >&2; exit 64 ;;
esac
wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(crash crash-rotation-purge corruption attacks load faults api-fuzz)
passed=0
failed=0
failures=""
for drill in "${wanted[@]}"; do
  case "$drill" in
    crash) args=("${crash[@]}") ;;
    crash-rotation-purge) args=("${crash_jobs[@]}") ;;
    corruption) args=("${corruption[@]}") ;;
    attacks) args=("${attacks[@]}") ;;
    load) args=("${load[@]}") ;;
    faults) args=("${faults[@]}") ;;
    api-fuzz) args=("${fuzz[@]}") ;;
    *) echo "unknown drill $drill" >&2; exit 64 ;;
  esac
  echo "==> drill $drill ($mode): drills/${drill//-/_}.py $bin ${args[*]}"
  if python3 "$here/${drill//-/_}.py" "$bin" "${args[@]}"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures="$failures $drill"
  fi
done
[ -n "$failures" ] && echo "failed drills:$failures"
echo "drills: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
