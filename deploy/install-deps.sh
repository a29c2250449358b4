#!/usr/bin/env bash
# Installs donagate's build, test and demo dependencies from Debian packages.
# Idempotent: runs `apt-get update` at most once, and only when something is missing.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git ca-certificates
  libboost-dev libboost-system-dev
  libssl-dev
  libpq-dev postgresql-15 postgresql-contrib
  libspdlog-dev libfmt-dev
  prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  prometheus
  clang libclang-rt-14-dev
  curl procps iproute2 util-linux
  libsodium-dev libjs-chart.js   # finance console: Argon2id passwords, the overview chart
  chromium                       # finance console browser tests (puppeteer-core drives it)
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm run the independent SMPP peer (npm package `smpp`) in interop tests.
# The machine may already carry a Node.js build that bundles npm; only fall back to
# Debian's packages when the commands are absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm  >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all dependencies present"
fi
