#!/bin/bash
# Runs on the device machine (with a bundle from make-bundle.sh carried): times every kernel of a
# short AWQ benchmark run under Nsight Compute (duration only, clocks left alone) and prints the
# kernels that take the most GPU time, summed by name.
#   .device-bundle/profile-kernels.sh [bench args...]   (default: 0.5B geometry, 128 x 512, 1 layer)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/quantd-out}
mkdir -p "$out"
b=/tmp/quantd-bundle
rm -rf "$b" && mkdir -p "$b" && tar -C "$b" -xJf "$here/bundle.tar.xz" || exit 1
export LD_LIBRARY_PATH="$b/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--config "$b/configs/qwen2.5-0.5b-instruct.config.json" --blocks 128 --len 512 --layers 1)
"$ncu" --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
  "$b/bin/quantd-awq-cuda-bench" "${args[@]}" > "$out/ncu.csv" 2> "$out/ncu.log"
echo "ncu rc=$?"
python3 - "$out/ncu.csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; name_i = head.index("Kernel Name"); val_i = head.index("Metric Value")
tot = collections.Counter(); cnt = collections.Counter()
for r in rows[1:]:
    try: v = float(r[val_i].replace(",", ""))
    except ValueError: continue
    n = r[name_i][:90]; tot[n] += v; cnt[n] += 1
all_ns = sum(tot.values())
print(f"kernels: {sum(cnt.values())}, GPU time {all_ns/1e6:.1f} ms")
print("| ms | % | launches | kernel |\n|---|---|---|---|")
for n, v in tot.most_common(30):
    print(f"| {v/1e6:.2f} | {100*v/all_ns:.1f} | {cnt[n]} | {n} |")
PY
