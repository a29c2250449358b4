#!/usr/bin/env bash
# Interop: donagate's server mode against node-smpp playing the operator's ESME (tests/interop/server_mode.js).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export DONAGATE_BINARY_DIR=${DONAGATE_BINARY_DIR:-$HERE/../../build}
PROBE=$DONAGATE_BINARY_DIR/tools/link_probe/interop_link_peer
[ -x "$PROBE" ] || { echo "missing $PROBE (build the interop_link_peer target)"; exit 1; }
if [ ! -d "$HERE/node_modules/smpp" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi
cd "$HERE"
timeout 120 node server_mode.js
