#!/usr/bin/env bash
# Makes the TLS material and credentials docker-compose.yml mounts as secrets, under
# deploy/compose/secrets/ (ignored by git): a CA, the server's certificate (names quantd and
# localhost), a worker token, a Prometheus token, an admin token for you, and the identities file
# holding only their SHA-256 (docs/security.md). Existing files are kept; delete one to remake it.
#   deploy/compose/make-secrets.sh [TENANT]     (the admin's tenant; default "default")
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
tenant=${1:-default}
key="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
if [[ ! -f ca.crt ]]; then
  openssl req -x509 $key -days 825 -subj /CN=quantd-compose-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout ca.key -out ca.crt 2>/dev/null
fi
if [[ ! -f tls.crt ]]; then
  openssl req $key -subj /CN=quantd -keyout tls.key -out tls.csr 2>/dev/null
  printf 'subjectAltName=DNS:quantd,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > tls.ext
  openssl x509 -req -days 825 -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
    -extfile tls.ext -out tls.crt 2>/dev/null
  rm -f tls.csr tls.ext
fi
for token in worker-token metrics-token admin-token; do
  [[ -f $token ]] || openssl rand -hex 32 > "$token"
done
hash() { printf %s "$(cat "$1")" | sha256sum | cut -d' ' -f1; }
cat > identities.json <<JSON
{"principals": [
  {"name": "admin", "tenant": "$tenant", "roles": ["admin"], "token_sha256": ["$(hash admin-token)"]},
  {"name": "gpu-workers", "roles": ["worker"], "token_sha256": ["$(hash worker-token)"]},
  {"name": "prometheus", "roles": ["viewer"], "token_sha256": ["$(hash metrics-token)"]}
]}
JSON
# The containers run as uid 10001 and read these through bind mounts; the directory stays 0700.
chmod 644 ca.crt tls.crt tls.key identities.json worker-token metrics-token
chmod 600 ca.key admin-token
echo "make-secrets: $dir (quantctl --tls-ca $dir/ca.crt --token-file $dir/admin-token)"
