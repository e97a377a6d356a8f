#!/bin/bash
# Runs on the device machine (from the repository root, with .device-bundle-e2e carried): unpacks
# the bundles made by make-e2e-bundle.sh and runs quantize-awq end to end through quantd-e2e-bench
# on random checkpoints (docs/perf.md, "end to end"); prints the table last and leaves it, with
# every log and quant_report.json in e2e-logs.tar.gz, under $OUT (at most 8 files come back).
#   .device-bundle-e2e/run-e2e-bench.sh STEP...
# Steps: engine-small (run-gpu-checks.sh bench-small: the engine-only benchmark, for comparison),
#        gpu-tests (run-gpu-checks.sh tests), gpu-families (run-gpu-checks.sh attention-checks families),
#        small (0.5B 128x512, all layers), small-events (the
#        same with --events=jsonl, the daemon's mode, which also hashes the output),
#        large[:K] (0.5B 256x2048, K layers, default all), 7b[:K] (7B 128x512, K layers),
#        7b-large[:K] (7B 256x2048: token chunks, K layers), llama8b[:K] (Llama-3.1-8B 128x512,
#        K layers, default all), qwen3moe[:K] (Qwen3-30B-A3B 256x512), mixtral[:K] (Mixtral-8x7B
#        128x512), gpu-moe (run-gpu-checks.sh moe),
#        resume-small[:K:N] (0.5B 256x2048, K layers (4): killed once N layers (2) are kept and
#        resumed, then uninterrupted; the two model.safetensors must be byte-identical),
#        resume-7b[:K:N] (7B 256x2048, K layers (4), killed with N (3) kept and resumed: check,
#        replay and quantize seconds per layer, the whole model extrapolated),
#        seed-small[:K] / seed-7b[:K] (the seed's full calibration from the bundle's
#        calib_8192.jsonl, chat-wrapped with the Qwen2.5 tokenizer, 2048-token blocks, K layers).
# Without bundle.tar.xz (make-e2e-bundle.sh with QUANTD_BUNDLE_E2E_ONLY=1) only e2e.tar.xz is
# unpacked and the gpu-test steps are not available.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
final=${OUT:-/tmp/quantd-out}
out=/tmp/quantd-e2e-logs
rm -rf "$out" && mkdir -p "$out" "$final" && rm -f "$final/e2e-table.md"
b=/tmp/quantd-bundle
gpu_steps=(unpack-only)
for step in "$@"; do
  case "$step" in
    engine-small) gpu_steps+=(bench-small) ;;
    gpu-tests) gpu_steps+=(tests) ;;
    gpu-families) gpu_steps+=(attention-checks families) ;;
    gpu-moe) gpu_steps+=(moe) ;;
  esac
done
# The gpu tests' logs go straight to $OUT, written as the tests run: what a call cut short by its
# time limit has done still comes back.
if [ -f "$here/bundle.tar.xz" ]; then
  OUT=$final bash "$here/run-gpu-checks.sh" "${gpu_steps[@]}" | tee "$final/gpu-checks.txt"
else
  rm -rf "$b" && mkdir -p "$b"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
tar -C "$b" -xJf "$here/e2e.tar.xz" || exit 1
export LD_LIBRARY_PATH="$b/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
nproc; free -g | head -2; df -h /tmp | tail -1
rows=()
header=--header
e2e() {  # name, config, blocks, len, layers, extra flags...
  local name=$1 config=$2 blocks=$3 len=$4 layers=${5:-0}
  shift 5
  local start=$(date +%s)
  "$b/bin/quantd-e2e-bench" --quantize_awq "$b/bin/quantize-awq" --config "$b/data/configs/$config" \
    --blocks "$blocks" --len "$len" --layers "$layers" --name "$name" --work_dir /tmp/quantd-e2e \
    --log "$final/$name.log" --keep $header "$@" > "$out/$name.md" 2> "$final/$name.err"
  local rc=$?
  header=
  cp /tmp/quantd-e2e/out/quant_report.json "$out/$name.report.json" 2>/dev/null
  for f in /tmp/quantd-e2e/out/*.safetensors; do  # what hashing the output costs here
    [ -f "$f" ] || continue
    local TIMEFORMAT="sha256sum $(du -m "$f" | cut -f1) MiB: %R s"
    { time sha256sum "$f" >/dev/null; } 2>&1
  done
  rm -rf /tmp/quantd-e2e
  cat "$final/$name.err"
  grep -E "memory|exported|GPU" "$final/$name.log"
  rows+=("$(cat "$out/$name.md")")
  cat "$out/$name.md" >> "$final/e2e-table.md"  # kept even if a later step runs out of time
  echo "$name rc=$rc wall=$(( $(date +%s) - start ))s"
  tar -C "$out" -czf "$final/e2e-logs.tar.gz" .
}
layers_of() { [[ "$1" == *:* ]] && echo "${1#*:}" || echo 0; }
field() {  # step, index (1-based after the name), default
  local v
  v=$(cut -s -d: -f$(( $2 + 1 )) <<<"$1")
  echo "${v:-$3}"
}
shas=()
resume() {  # name, config, layers, kept, compare: killed and resumed (and uninterrupted: sha)
  local name=$1 config=$2 layers=$3 kept=$4 compare=$5 sha=
  [ "$compare" = 1 ] && sha=--sha
  header=--header
  e2e "${name}_resumed" "$config" 256 2048 "$layers" $sha --kill_after_layers "$kept"
  header=--header
  [ "$compare" = 1 ] || return
  e2e "$name" "$config" 256 2048 "$layers" --sha
  local a b
  a=$(grep -h "\[e2e\] sha256 $name " "$final/$name.err" | awk '{print $NF}')
  b=$(grep -h "\[e2e\] sha256 ${name}_resumed " "$final/${name}_resumed.err" | awk '{print $NF}')
  shas+=("$name: uninterrupted $a, killed and resumed $b: $([ -n "$a" ] && [ "$a" = "$b" ] && echo byte-identical || echo DIFFERENT)")
  echo "${shas[-1]}" | tee -a "$final/e2e-table.md"
  header=--header
}
seed_calib=("--calib" "$b/seed/calib_8192.jsonl" "--tokenizer_dir" "$b/seed/tokenizer")
for step in "$@"; do
  case "$step" in
    small) e2e qwen05b_128x512 qwen2.5-0.5b-instruct.config.json 128 512 0 ;;
    small-events) e2e qwen05b_128x512_events qwen2.5-0.5b-instruct.config.json 128 512 0 --events ;;
    large*) e2e qwen05b_256x2048 qwen2.5-0.5b-instruct.config.json 256 2048 "$(layers_of "$step")" ;;
    llama8b*) e2e llama31_8b_128x512 llama-3.1-8b.config.json 128 512 "$(layers_of "$step")" ;;
    7b-large*) e2e qwen7b_256x2048 qwen2.5-7b-instruct.config.json 256 2048 "$(layers_of "$step")" ;;
    resume-small*) resume qwen05b_256x2048 qwen2.5-0.5b-instruct.config.json "$(field "$step" 1 4)" "$(field "$step" 2 2)" 1 ;;
    resume-7b*) resume qwen7b_256x2048 qwen2.5-7b-instruct.config.json "$(field "$step" 1 4)" "$(field "$step" 2 3)" 0 ;;
    seed-small*) header=--header; e2e qwen05b_seed qwen2.5-0.5b-instruct.config.json 8192 2048 "$(field "$step" 1 2)" "${seed_calib[@]}" ;;
    seed-7b*) header=--header; e2e qwen7b_seed qwen2.5-7b-instruct.config.json 8192 2048 "$(field "$step" 1 1)" "${seed_calib[@]}" ;;
    7b*) e2e qwen7b_128x512 qwen2.5-7b-instruct.config.json 128 512 "$(layers_of "$step")" ;;
    qwen3moe*) e2e qwen3_30b_a3b_256x512 qwen3-30b-a3b.config.json 256 512 "$(layers_of "$step")" ;;
    mixtral*) e2e mixtral_8x7b_128x512 mixtral-8x7b-v0.1.config.json 128 512 "$(layers_of "$step")" ;;
  esac
done
echo "== end to end"
printf '%s\n' "${rows[@]}"
printf '%s\n' "${shas[@]}"
tar -C "$out" -czf "$final/e2e-logs.tar.gz" .
