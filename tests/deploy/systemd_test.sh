#!/usr/bin/env bash
# deploy/systemd/donagated.service: systemd accepts it (systemd-analyze verify, no warnings)
# and it keeps the hardening and restart policy docs/operations.md promises.
set -euo pipefail
SRC="${DONAGATE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
UNIT="$SRC/deploy/systemd/donagated.service"
fail=0

for directive in 'User=donagate' 'Group=donagate' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
                 'ProtectHome=yes' 'PrivateTmp=yes' 'PrivateDevices=yes' 'CapabilityBoundingSet=' \
                 'Restart=always' 'RestartSec=' 'KillSignal=SIGTERM' 'TimeoutStopSec=' \
                 'LoadCredential=smsc_password:' 'LoadCredential=database_url:' 'LoadCredential=admin_token:' \
                 'ExecReload=/bin/kill -HUP $MAINPID' 'RestrictAddressFamilies=' 'SystemCallFilter=@system-service'; do
  if ! grep -qxF -- "$directive" "$UNIT" && ! grep -q -- "^${directive//\$/\\\$}" "$UNIT"; then
    echo "missing in donagated.service: $directive" >&2
    fail=1
  fi
done
# No secret may be written into the unit itself.
if grep -Eqi '^(Environment=.*(PASSWORD|TOKEN|SECRET)|.*password=)' "$UNIT"; then
  echo "donagated.service carries a secret inline; use LoadCredential= or EnvironmentFile=" >&2
  fail=1
fi

if command -v systemd-analyze >/dev/null 2>&1; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # verify insists that ExecStart binaries exist; stand in for the not-yet-installed daemon.
  sed 's|/usr/local/bin/donagated|/bin/true|g' "$UNIT" > "$work/donagated.service"
  out="$(systemd-analyze verify "$work/donagated.service" 2>&1 || true)"
  if [[ -n "$out" ]]; then
    echo "systemd-analyze verify complains:" >&2
    echo "$out" >&2
    fail=1
  fi
else
  echo "systemd-analyze not installed: only the directive checks ran"
fi

# The finance console's unit: the same hardening, loopback listen, secrets from credentials.
CONSOLE_UNIT="$SRC/deploy/systemd/donagate-console.service"
for directive in 'User=donagate' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'PrivateTmp=yes' 'CapabilityBoundingSet=' \
                 'Restart=always' 'LoadCredential=database_url:' 'LoadCredential=admin_token:' 'SystemCallFilter=@system-service'; do
  grep -q -- "^${directive}" "$CONSOLE_UNIT" || { echo "missing in donagate-console.service: $directive" >&2; fail=1; }
done
grep -q -- '--listen 127.0.0.1:' "$CONSOLE_UNIT" || { echo "donagate-console.service does not listen on loopback" >&2; fail=1; }
if grep -Eqi '^(Environment=.*(PASSWORD|TOKEN|SECRET)|.*password=[^.])' "$CONSOLE_UNIT"; then
  echo "donagate-console.service carries a secret inline" >&2
  fail=1
fi
if command -v systemd-analyze >/dev/null 2>&1; then
  cwork="$(mktemp -d)"
  out="$(systemd-analyze verify "$CONSOLE_UNIT" 2>&1 | grep -v 'donagated.service' || true)"
  rm -rf "$cwork"
  if [[ -n "$out" ]]; then
    echo "systemd-analyze verify complains about donagate-console.service:" >&2
    echo "$out" >&2
    fail=1
  fi
fi

exit "$fail"
