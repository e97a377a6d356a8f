#!/bin/bash
# Installs client/python as a user would (pip, in a fresh virtualenv that sees Debian's
# python3-grpcio and python3-protobuf), offline: --no-index proves nothing is downloaded.
#   tests/client/install_python_client.sh VENV_DIR SOURCE_DIR
set -euo pipefail
venv=$1 source=$2
rm -rf "$venv"
/usr/bin/python3 -m venv --system-site-packages "$venv"
PIP_FIND_LINKS= "$venv/bin/pip" install --no-index --no-cache-dir --quiet "$source/client/python"
"$venv/bin/python" -c 'import quantd, quantd.v1.quantization_service_pb2_grpc; print("installed", quantd.__file__)'
