#!/usr/bin/env bash
# Runs every libFuzzer target of a QUANTD_FUZZ build for a bounded time and prints a table.
#   scripts/run-fuzzers.sh BUILD_DIR SECONDS_PER_TARGET
# Each target starts from its seed corpus (tests/fuzz/corpus/<target>, plus the golden chat
# templates for chat_template) and grows a working corpus under BUILD_DIR/fuzz/corpus/<target>, so
# the repository's seeds stay as committed. A crash, leak, sanitizer report or timeout (10 s per
# input) stops that target and fails the run; the reproducer is left as BUILD_DIR/fuzz/<target>/
# crash-* (or leak-*, timeout-*, oom-*), to be added to the seed corpus with its fix.
set -uo pipefail
build=${1:?usage: run-fuzzers.sh BUILD_DIR SECONDS_PER_TARGET}
seconds=${2:?usage: run-fuzzers.sh BUILD_DIR SECONDS_PER_TARGET}
root=$(cd "$(dirname "$0")/.." && pwd)
targets=(safetensors_header model_config tokenizer_json chat_template calibration_jsonl)
failed=0
rows=()
for t in "${targets[@]}"; do
  exe="$build/fuzz/${t}_fuzzer"
  work="$build/fuzz/corpus/$t"
  artifacts="$build/fuzz/$t"
  mkdir -p "$work" "$artifacts"
  seeds=("$root/tests/fuzz/corpus/$t")
  [[ $t == chat_template ]] && seeds+=("$root/tests/golden/chat_template/templates")
  log="$artifacts/run.log"
  start=$(date +%s)
  "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "${seeds[@]}" >"$log" 2>&1
  status=$?
  elapsed=$(( $(date +%s) - start ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  corpus=$(find "$work" -type f | wc -l)
  result=ok
  if [[ $status -ne 0 ]]; then
    result="FINDING (exit $status): $(ls "$artifacts" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | head -n 1)"
    failed=1
    tail -n 40 "$log" >&2
  fi
  rows+=("$(printf '%-20s %8s %12s %8s %8s  %s' "$t" "${elapsed}s" "${runs:-?}" "${cov:-?}" "$corpus" "$result")")
done
printf '%-20s %8s %12s %8s %8s  %s\n' target time executions coverage corpus result
printf '%s\n' "${rows[@]}"
exit $failed
