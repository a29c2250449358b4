#!/usr/bin/env bash
# ASan + UBSan run of the unit and integration test suites (issue 9: "the whole test suite also
# runs under ASan+UBSan"). Builds the whole tree with -DDONAGATE_SANITIZE=ON into build-asan/
# (Debug, -fno-sanitize-recover=undefined: any UB report fails the test), starts a throwaway
# PostgreSQL and runs every CTest test except the slow process-level scripts (label "script":
# tests/e2e, tests/faults, tests/interop, tests/security shell tests — they drive the daemon
# binary and are covered by the normal build's run).
#
#   tests/sanitize.sh [extra ctest args]      e.g. tests/sanitize.sh -R store
#
# Environment: DONAGATE_ASAN_BUILD_DIR (default build-asan), DONAGATE_JOBS (default nproc).
# Measured on the 2-core CI machine: see docs/reliability.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${DONAGATE_ASAN_BUILD_DIR:-$ROOT/build-asan}
JOBS=${DONAGATE_JOBS:-$(nproc)}
start=$SECONDS

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DDONAGATE_SANITIZE=ON -DDONAGATE_WERROR=ON \
      -DDONAGATE_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j "$JOBS"
built=$SECONDS
echo "sanitize: build took $((built - start)) s"

# halt_on_error: the first report fails the test; detect_leaks: LeakSanitizer on exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

source tests/lib/pg.sh
trap pg_stop EXIT
pg_start
export DONAGATE_REQUIRE_PG=1

rc=0
(cd "$BUILD" && ctest --output-on-failure -j "$JOBS" -LE script --timeout 900 "$@") || rc=$?
echo "sanitize: tests took $((SECONDS - built)) s, total $((SECONDS - start)) s, ctest exit $rc"
exit "$rc"
