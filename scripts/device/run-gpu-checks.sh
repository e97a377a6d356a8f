#!/bin/bash
# Runs on the device machine (from the repository root, with the bundle's directory carried):
# unpacks the bundle that make-bundle.sh put beside this script, runs the CUDA gpu tests (attention
# kernel, kernels, CPU parity and token chunks, both backends' checkpoints through the numpy
# reader) and the AWQ benchmark, writes logs under $OUT, prints a short table last.
#   bash .device-bundle*/run-gpu-checks.sh [attention] [kernels] [parity] [checkpoint] [tests]
#                                          [attention-checks] [families] [moe] [moe-real] [bench-small] [bench-large]
#                                          [bench-7b] [bench-7b-large] [bench-7b-quality] [profile-small] [profile-large]
# (no argument: tests and bench-small; `tests` = attention, kernels, parity (every family's
# real geometry included) and checkpoint (every family's miniature included); `families` = only
# the family cases of parity and checkpoint; `moe` = the MoE cases of parity and checkpoint
# (miniatures), `moe-real` = the MoE families at real geometry;
# profile-*: one layer under Nsight Compute, GPU time per kernel summed by name, as a table)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/quantd-out}
mkdir -p "$out"
b=/tmp/quantd-bundle
rm -rf "$b" && mkdir -p "$b" && tar -C "$b" -xJf "$here/bundle.tar.xz" || exit 1
export LD_LIBRARY_PATH="$b/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
# The gpu tests' data (tests/testing/test_data.h): the bundle's copy, plus the demo model of the
# checkout the device tool sent (this script runs from its root).
mkdir -p "$b/data/models" && ln -s "$PWD/demo/models/tiny-qwen2-wp" "$b/data/models/tiny-qwen2-wp"
# The checkout's test data (models, fixtures) travels with it: linked in, not packed (the call's
# working tree and carried bundle share one size limit).
# Extracted as cmake/QuantdTestData.cmake does: tests/data/<dir>/<name>.tar.xz into <dir>/.
(cd tests/data && find . -name '*.tar.xz') | while read -r f; do
  mkdir -p "$b/data/$(dirname "$f")" && tar -C "$b/data/$(dirname "$f")" -xJf "tests/data/$f"
done
[ -f "$b/data/models/tiny-qwen2-wp/model/config.json" ] || { echo "no demo model under $PWD" >&2; exit 1; }
export QUANTD_TEST_DATA_DIR="$b/data"
# The checkpoint test's reader needs numpy: the python3 on PATH has it there, /usr/bin's may not.
export QUANTD_TEST_PYTHON=$(command -v python3) QUANTD_TEST_READER="$b/tools/awq_reader.py"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(tests bench-small)
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader
summary=()
bench() {  # name, args...
  local name=$1; shift
  local start=$(date +%s)
  "$b/bin/quantd-awq-cuda-bench" "$@" > "$out/$name.md" 2> "$out/$name.log"
  local rc=$?
  tail -n 3 "$out/$name.log"
  summary+=("$name rc=$rc wall=$(( $(date +%s) - start ))s")
  summary+=("$(tail -n 1 "$out/$name.md")")
  # steady layers (all but the first): median and minimum of the per-layer 'quantize' seconds
  summary+=("$name steady-layer quantize s: $(grep -o 'quantize [0-9.]* s' "$out/$name.log" |
    awk 'NR > 1 {print $2}' | sort -n |
    awk '{v[NR] = $1} END {if (NR) printf "median %.4f min %.4f (%d layers)", v[int((NR + 1) / 2)], v[1], NR}')")
  rm -rf /tmp/quantd-bench-model
}
gtest() {  # which (attention | backend | checkpoint), the summary lines' pattern, [gtest filter],
  # [log name suffix]
  local start=$(date +%s)
  local log="$out/$1${4:+_$4}_test.log"
  "$b/bin/cuda_$1_gpu_test" --gtest_filter="${3:-*}" > "$log" 2>&1
  local rc=$?
  grep -E "^\[(attention|parity|chunked|kernel|reader)|^\[  (FAILED|PASSED|SKIPPED)|Failure|Expected|Which is|first:" \
    "$log" | head -40
  summary+=("$1${4:+ $4} gpu test rc=$rc wall=$(( $(date +%s) - start ))s")
  while IFS= read -r line; do summary+=("$line"); done < <(grep -E "$2|^\[  FAILED" "$log")
}
profile() {  # name, bench args...: every kernel's duration (clocks left alone), top 25 by time
  local name=$1; shift
  local ncu
  ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
  "$ncu" --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
    "$b/bin/quantd-awq-cuda-bench" "$@" --layers 1 > "$out/$name.csv" 2> "$out/$name.log"
  summary+=("$name rc=$?")
  summary+=("$(python3 - "$out/$name.csv" <<'PY'
import collections, csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]
name_i, val_i = head.index("Kernel Name"), head.index("Metric Value")
total, count = collections.Counter(), collections.Counter()
for r in rows[1:]:
    try:
        v = float(r[val_i].replace(",", ""))
    except ValueError:
        continue
    total[r[name_i][:90]] += v
    count[r[name_i][:90]] += 1
all_ns = sum(total.values())
print(f"{sum(count.values())} kernels, GPU time {all_ns / 1e6:.1f} ms")
print("| ms | % | launches | kernel |\n|---|---|---|---|")
for n, v in total.most_common(25):
    print(f"| {v / 1e6:.2f} | {100 * v / all_ns:.1f} | {count[n]} | {n} |")
PY
)")
  rm -rf /tmp/quantd-bench-model
}
for step in "${steps[@]}"; do
  case "$step" in
    attention|tests)
      gtest attention "^\[attention-timing\]"
      if [ "$step" = tests ]; then
        gtest kernels "^\[kernel-"
        gtest backend "^\[(parity|chunked)\]"
      fi
      ;;&
    kernels) gtest kernels "^\[kernel-" ;;
    parity) gtest backend "^\[(parity|chunked)\]" ;;
    checkpoint|tests)
      gtest checkpoint "^\[(reader|quality)\]" ;;
    attention-checks)  # the kernel against float64 without the timings
      gtest attention "^\[attention\] .*(d96|d256|softcap [1-9])" "-*Timing*" ;;
    families)  # one process per family and test, 5 at a time with 3 BLAS threads each (the CPU
      # reference is most of the time), the miniatures' checkpoints (seconds) before the real
      # geometries' parity (Qwen2.5-0.5B 34 s, Qwen3-0.6B 20 s on the H200; the 7B/8B layers take
      # minutes); every process's log is appended to families.log as it ends.
      # QUANTD_FAMILIES_SECONDS (if set) stops what is still running after that many seconds;
      # QUANTD_FAMILIES (if set, e.g. "llama mistral") runs only those families;
      # QUANTD_FAMILIES_JOBS (default 5) processes at a time share 15 BLAS threads.
      fam_start=$(date +%s)
      fam_jobs=${QUANTD_FAMILIES_JOBS:-5}
      deadline=$(( fam_start + ${QUANTD_FAMILIES_SECONDS:-100000} ))
      : > "$out/families.log"
      export b out deadline
      {
        "$b/bin/cuda_checkpoint_gpu_test" --gtest_list_tests --gtest_filter='*Family*' |
          awk '/^[^ ]/ {suite = $1} /^  / {print "checkpoint " suite $1}'
        "$b/bin/cuda_backend_gpu_test" --gtest_list_tests --gtest_filter='*Families*' |
          awk '/^[^ ]/ {suite = $1} /^  / {print "backend " suite $1}'
      } | awk -v only="${QUANTD_FAMILIES:-}" 'BEGIN {n = split(only, f, " "); for (i = 1; i <= n; ++i) keep[f[i]] = 1}
              {family = $2; sub(/.*\//, "", family)} n == 0 || family in keep' |
        OPENBLAS_NUM_THREADS=$(( 15 / fam_jobs > 0 ? 15 / fam_jobs : 1 )) xargs -P "$fam_jobs" -L 1 bash -c '
        log=$(mktemp) start=$(date +%s)
        timeout $(( deadline > start ? deadline - start : 1 )) \
          "$b/bin/cuda_$0_gpu_test" --gtest_filter="$1" > "$log" 2>&1
        rc=$?
        sed -i "1i == $1 rc=$rc wall=$(( $(date +%s) - start ))s" "$log"
        flock "$out/families.log" cat "$log" >> "$out/families.log"
        grep -E "^== |^\[(parity|reader)\]|Failure|Expected|Which is" "$log"
        rm -f "$log"'
      summary+=("families wall=$(( $(date +%s) - fam_start ))s")
      while IFS= read -r line; do summary+=("$line"); done < <(
        grep -E "^== |^\[(parity|reader)\]|^\[  FAILED" "$out/families.log") ;;
    moe)  # the MoE cases: the trained tiny-qwen3-moe-wp and small random models of each MoE
      # family against the CPU, their checkpoints through the reader
      gtest backend "^\[parity\]" '*Moe*' moe
      gtest checkpoint "^\[reader\]" '*Moe*:*Family*qwen3_moe:*Family*qwen2_moe:*Family*mixtral' moe ;;
    moe-real)  # the MoE families at real geometry (the CPU reference takes minutes a layer)
      gtest backend "^\[parity\]" '*Families*qwen3_moe:*Families*qwen2_moe:*Families*mixtral' \
        moe_real_geometry ;;
    bench-small)
      bench qwen05b_128x512 --config "$b/data/configs/qwen2.5-0.5b-instruct.config.json" --blocks 128 --len 512 ;;
    bench-large)
      bench qwen05b_256x2048_4layers --config "$b/data/configs/qwen2.5-0.5b-instruct.config.json" --blocks 256 --len 2048 --layers 4 ;;
    profile-small)
      profile profile_qwen05b_128x512 --config "$b/data/configs/qwen2.5-0.5b-instruct.config.json" --blocks 128 --len 512 ;;
    profile-large)
      profile profile_qwen05b_256x2048 --config "$b/data/configs/qwen2.5-0.5b-instruct.config.json" --blocks 256 --len 2048 ;;
    bench-7b)
      bench qwen7b_128x512_2layers --config "$b/data/configs/qwen2.5-7b-instruct.config.json" --blocks 128 --len 512 --layers 2 ;;
    bench-7b-quality)  # what the quality report adds (docs/perf.md, "Quality report")
      bench qwen7b_128x512_quality --config "$b/data/configs/qwen2.5-7b-instruct.config.json" --blocks 128 --len 512 --layers 4 --quality_blocks 7
      summary+=("$(grep '^|' "$out/qwen7b_128x512_quality.md")")
      summary+=("$(grep -E '^quality:' "$out/qwen7b_128x512_quality.log")") ;;
    bench-7b-large)  # the seed's scale on 7B: activations do not fit, token chunks
      bench qwen7b_256x2048_2layers --config "$b/data/configs/qwen2.5-7b-instruct.config.json" --blocks 256 --len 2048 --layers 2 ;;
  esac
done
echo "== summary"
printf '%s\n' "${summary[@]}"
