#!/usr/bin/env bash
# Runs every libFuzzer target of coffre-fuzz for a fixed time, starting from the committed seed
# corpus (fuzz/corpus/TARGET, read only; new inputs go to a scratch directory), and prints one
# line per target: executions, corpus size, and whether it crashed. Crash inputs are written to
# fuzz/crashes/ (ignored by git); replay one with `coffre-fuzz replay TARGET FILE`.
#
# Usage: scripts/fuzz.sh FUZZ_BINARY SECONDS_PER_TARGET
set -euo pipefail
binary="$1"
seconds="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$root/fuzz/crashes"
status=0
printf '%-12s %12s %10s %8s  %s\n' target executions exec/s corpus result
for target in assertion identifiers json blob metadata; do
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  # Swift's backtracer would hang on a crash instead of letting libFuzzer write the input.
  if SWIFT_BACKTRACE=enable=no COFFRE_FUZZ_TARGET="$target" "$binary" \
      -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$root/fuzz/crashes/$target-" "$scratch/$target" "$root/fuzz/corpus/$target" >"$log" 2>&1; then
    result=ok
  else
    result="CRASH (see $root/fuzz/crashes/ and the log below)"
    status=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(find "$scratch/$target" "$root/fuzz/corpus/$target" -type f | wc -l)
  printf '%-12s %12s %10s %8s  %s\n' "$target" "${runs:-?}" "${rate:-?}" "$corpus" "$result"
  if [ "$result" != ok ]; then tail -40 "$log"; fi
done
exit $status
