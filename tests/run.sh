#!/usr/bin/env bash
# Installs dependencies, builds, starts a throwaway PostgreSQL, runs every test.
# Exits non-zero on any failure. Usage: tests/run.sh [extra ctest args]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

deploy/install-deps.sh

BUILD=${DONAGATE_BUILD_DIR:-$ROOT/build}
JOBS=${DONAGATE_JOBS:-$(nproc)}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=${DONAGATE_BUILD_TYPE:-RelWithDebInfo} -DDONAGATE_WERROR=ON >/dev/null
cmake --build "$BUILD" -j "$JOBS"

# Interop peers: the npm `smpp` package (an SMPP implementation we did not write).
if [ -f tests/interop/package.json ]; then
  (cd tests/interop && { [ -d node_modules/smpp ] || npm ci --no-audit --no-fund --loglevel=error; })
fi
# Test OCS for the Diameter backend: the npm `diameter` package (node-diameter).
if [ -f tools/ocs_sim/package.json ]; then
  (cd tools/ocs_sim && { [ -d node_modules/diameter ] || npm ci --no-audit --no-fund --loglevel=error; })
fi
# Console browser tests: puppeteer-core (drives Debian's chromium; downloads no browser).
if [ -f tests/console/browser/package.json ]; then
  (cd tests/console/browser && { [ -d node_modules/puppeteer-core ] || npm ci --no-audit --no-fund --loglevel=error; })
fi

source tests/lib/pg.sh
trap pg_stop EXIT
pg_start
export DONAGATE_REQUIRE_PG=1

cd "$BUILD"
ctest --output-on-failure -j "$JOBS" "$@"
