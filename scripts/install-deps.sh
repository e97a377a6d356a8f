#!/usr/bin/env bash
# Installs everything quantd needs to build and test, from Debian 12 packages only.
# Idempotent: packages already present are skipped, and `apt-get update` runs at most once.
# Works as root or through sudo. The CUDA toolkit (/usr/local/cuda) is optional and not installed here.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  # RPC and API contract
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev
  # engine, store and utilities
  nlohmann-json3-dev libsqlite3-dev libcpp-httplib-dev libpcre2-dev libutf8proc-dev
  libsentencepiece-dev libcli11-dev libssl-dev libopenblas-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  # tools the tests drive: promtool, python client stubs
  prometheus python3 python3-grpcio python3-grpc-tools python3-protobuf python3-numpy python3-jinja2
  # the Python client: built and installed with pip into a virtualenv, tested with pytest
  python3-venv python3-setuptools python3-wheel python3-pytest
  # regenerating the tokenizer golden files (tests/golden/tokenizer): SentencePiece as a cross-check
  python3-sentencepiece
  clang-format
  # security: the openssl command line makes the tests' certificates (no private key is
  # committed); Debian's clang with libFuzzer and the sanitizers builds tests/fuzz (make fuzz)
  openssl clang libclang-rt-14-dev
)
# Node.js and npm run the deploy/ manifest checks (tests/ops/manifests). A Node.js installed from
# elsewhere (e.g. NodeSource, which bundles npm and conflicts with Debian's npm) is used as it is.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: run as root or install sudo" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
