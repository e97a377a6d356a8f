#!/usr/bin/env bash
# `promtool check config` on deploy/base/monitoring/prometheus.yml. Its rule_files entry is the
# path inside the Prometheus container (/etc/prometheus/alerts.yml); the check runs on a copy that
# points at the repository's alerts.yml instead, so that the rules are checked with it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The CA and the bearer token are Secrets mounted under /etc/prometheus/secrets at run time; promtool
# only needs files there (it checks they exist), so the copy points at placeholders.
mkdir -p "$tmp/secrets/quantd-tls" "$tmp/secrets/quantd-metrics-token"
: > "$tmp/secrets/quantd-tls/ca.crt"
echo placeholder > "$tmp/secrets/quantd-metrics-token/token"
sed -e "s|/etc/prometheus/alerts.yml|$repo/deploy/base/monitoring/alerts.yml|" \
  -e "s|/etc/prometheus/secrets/|$tmp/secrets/|g" \
  "$repo/deploy/base/monitoring/prometheus.yml" > "$tmp/prometheus.yml"
if ! grep -q "$repo/deploy/base/monitoring/alerts.yml" "$tmp/prometheus.yml"; then
  echo "check-config: prometheus.yml no longer loads /etc/prometheus/alerts.yml" >&2
  exit 1
fi
promtool check config "$tmp/prometheus.yml"
