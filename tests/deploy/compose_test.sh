#!/usr/bin/env bash
# deploy/docker-compose.yml and deploy/Dockerfile cannot run here (no Docker), so this checks
# what can go wrong by reading them:
#  - the donagated configuration embedded in the compose file passes `donagated --check-config`
#    (with its /run/secrets files stood in by temporary files);
#  - every file the compose file mounts and the Dockerfile copies exists;
#  - Prometheus scrapes the service name and port donagated listens on;
#  - every secret the configuration reads is one the compose file mounts into donagated.
set -euo pipefail
SRC="${DONAGATE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
BIN="${DONAGATE_BINARY_DIR:-$SRC/build}"
COMPOSE="$SRC/deploy/docker-compose.yml"
DOCKERFILE="$SRC/deploy/Dockerfile"
DONAGATED="$BIN/daemon/donagated"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail=0
problem() { echo "compose_test: $*" >&2; fail=1; }

# The block under `donagate_toml: content: |`, dedented.
awk '
  /^  donagate_toml:$/ { in_block = 1; next }
  in_block && /^    content: \|$/ { in_text = 1; next }
  in_text && /^  [a-z_]+:$/ { exit }
  in_text { sub(/^      /, ""); print }
' "$COMPOSE" > "$work/donagate.toml"
[[ -s "$work/donagate.toml" ]] || problem "no donagate_toml config block found"

# Secrets the config reads must be mounted into the donagated service.
mounted="$(awk '/^  donagated:$/{s=1;next} s&&/^  [a-z-]+:$/{s=0} s&&/^    secrets:/{print}' "$COMPOSE")"
for secret in $(grep -o '/run/secrets/[a-z_]*' "$work/donagate.toml" | sed 's|/run/secrets/||' | sort -u); do
  [[ "$mounted" == *"$secret"* ]] || problem "config reads /run/secrets/$secret but donagated does not mount it"
  grep -q "^  $secret:$" "$COMPOSE" || problem "secret $secret is not declared"
done

# Validate the configuration with the daemon itself.
if [[ -x "$DONAGATED" ]]; then
  mkdir -p "$work/secrets"
  printf 'host=127.0.0.1 dbname=donagate user=donagate password=x' > "$work/secrets/database_url"
  printf 'pw123456' > "$work/secrets/smsc_password"
  printf 'token-0123456789abcdef' > "$work/secrets/admin_token"
  sed "s|/run/secrets/|$work/secrets/|g" "$work/donagate.toml" > "$work/check.toml"
  if ! out="$("$DONAGATED" --check-config "$work/check.toml" 2>&1)"; then
    problem "the compose configuration does not load:"
    echo "$out" >&2
  fi
else
  problem "$DONAGATED not built (build target donagated first)"
fi

# Files mounted by the compose file (relative to deploy/) and copied by the Dockerfile
# (relative to the repository root).
for path in $(grep -oE '\./[A-Za-z0-9_./-]+' "$COMPOSE" | grep -v '^\./secrets/' | sort -u); do
  [[ -e "$SRC/deploy/$path" ]] || problem "compose mounts $path, which does not exist"
done
for path in $(awk '/^COPY / && !/--from=/ { for (i = 2; i < NF; i++) print $i }' "$DOCKERFILE"); do
  [[ -e "$SRC/$path" ]] || problem "Dockerfile copies $path, which does not exist"
done
grep -q "dockerfile: deploy/Dockerfile" "$COMPOSE" || problem "compose does not build deploy/Dockerfile"

# Prometheus must scrape donagated where it listens.
port="$(sed -n 's/^listen = "0\.0\.0\.0:\([0-9]*\)"$/\1/p' "$work/donagate.toml" | head -1)"
[[ -n "$port" ]] || problem "[http] listen in the compose config is not 0.0.0.0:<port> (unreachable from Prometheus)"
grep -q "targets: \[\"donagated:$port\"\]" "$SRC/deploy/prometheus/prometheus.yml" \
  || problem "prometheus.yml does not scrape donagated:$port"
grep -q "EXPOSE $port" "$DOCKERFILE" || problem "Dockerfile does not EXPOSE $port"

# The finance console: a service of the compose file, published on the host's loopback only,
# built into the image (its sources copied, its target built and installed).
console_block="$(awk '/^  console:$/{s=1;next} s&&/^  [a-z-]+:$/{s=0} s{print}' "$COMPOSE")"
[[ -n "$console_block" ]] || problem "compose has no console service"
[[ "$console_block" == *'"127.0.0.1:9480:9480"'* ]] || problem "the console is not published on 127.0.0.1 only"
[[ "$console_block" == *'donagate-console'* ]] || problem "the console service does not run donagate-console"
grep -q '^COPY console/ console/' "$DOCKERFILE" || problem "Dockerfile does not copy console/"
grep -q -- '--target .*donagate-console' "$DOCKERFILE" || problem "Dockerfile does not build donagate-console"
grep -q 'COPY --from=build .*/out/donagate-console' "$DOCKERFILE" || problem "the image does not install donagate-console"

# The console's Operations page reaches donagated's admin API on the compose network: it
# points at donagated:<admin port>, holds the admin token, and the admin port is not published.
admin_port="$(awk '/^\[admin\]$/{a=1;next} /^\[/{a=0} a' "$work/donagate.toml" | sed -n 's/^listen = "0\.0\.0\.0:\([0-9]*\)"$/\1/p')"
if [[ -z "$admin_port" ]]; then
  problem "[admin] listen in the compose config is not 0.0.0.0:<port> (unreachable from the console)"
else
  [[ "$console_block" == *"--admin donagated:$admin_port"* ]] || problem "the console does not use donagated:$admin_port"
  [[ "$console_block" == *"admin_token"* ]] || problem "the console does not mount the admin token"
  daemon_ports="$(awk '/^  donagated:$/{s=1;next} s&&/^  [a-z-]+:$/{s=0} s' "$COMPOSE" | grep -E '^\s+- "' || true)"
  [[ "$daemon_ports" != *":$admin_port\""* ]] || problem "the admin port $admin_port is published on the host"
fi

exit "$fail"
