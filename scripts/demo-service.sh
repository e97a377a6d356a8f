#!/usr/bin/env bash
# make demo through the service: starts quantd (which starts its local quantd-worker) on a free
# port with a throwaway state directory, prints where both serve Prometheus metrics, submits the
# demo job with `quantctl submit --follow`, prints where the checkpoint was written, and shuts the
# server down cleanly.
#   scripts/demo-service.sh [build-dir]
# QUANTD_DEMO_ENGINE overrides the engine (default: the build's quantize-awq).
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/$build/bin"
model="$root/demo/models/tiny-qwen2-wp/model"
calib="$root/demo/models/tiny-qwen2-wp/calib.jsonl"
heldout="$root/demo/models/tiny-qwen2-wp/heldout.txt"
out="$root/demo-output/tiny-qwen2-wp-awq"
engine=${QUANTD_DEMO_ENGINE:-$bin/quantize-awq}

state=$(mktemp -d "${TMPDIR:-/tmp}/quantd-demo.XXXXXX")
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  rm -rf "$state"
}
trap cleanup EXIT

# Jobs may only read and write beneath the allowed roots: the demo model and its output directory.
mkdir -p "$(dirname "$out")"
"$bin/quantd" --listen=127.0.0.1:0 --port-file="$state/port" --state-dir="$state/state" \
  --allowed-roots="$root/demo,$(dirname "$out")" \
  --engine="$engine" --metrics-address=127.0.0.1:0 2>"$state/quantd.log" &
server_pid=$!
for _ in $(seq 300); do
  [[ -s "$state/port" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$state/quantd.log" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$state/port" ]] || { echo "quantd did not start" >&2; cat "$state/quantd.log" >&2; exit 1; }
export QUANTD_ADDRESS="127.0.0.1:$(cat "$state/port")"
echo "quantd serving on $QUANTD_ADDRESS (state in $state)"

# Both processes log where they serve /metrics (the local worker a moment after the server).
metrics_url() {  # $1: the component, quantd or quantd-worker
  sed -n "s|.* $1: metrics at \(http://[^ ]*/metrics\).*|\1|p" "$state/quantd.log" | head -n 1
}
for _ in $(seq 100); do
  [[ -n "$(metrics_url quantd-worker)" ]] && break
  sleep 0.1
done
echo "Prometheus metrics while the demo runs (health: /healthz, /readyz beside them):"
echo "  quantd         $(metrics_url quantd)"
echo "  quantd-worker  $(metrics_url quantd-worker)"

status=0
"$bin/quantctl" submit --model-dir "$model" --output-dir "$out" --calib-jsonl "$calib" \
  --num-calib 16 --max-seq-len 2048 --eval-text "$heldout" --follow || status=$?
echo
if [[ $status -eq 0 ]]; then
  echo "Quantized checkpoint written to: $out"
else
  echo "The demo job did not succeed (quantctl exit code $status); server log:" >&2
  cat "$state/quantd.log" >&2
fi
exit $status
