# Throwaway PostgreSQL 15 cluster for tests, the demo and benchmarks. Source this file.
#
#   pg_start [extra postgresql.conf lines...]   -> exports PGTMP, PGPORT_TEST, DONAGATE_TEST_PG
#   pg_stop                                     -> stops the cluster and removes its directory
#   pg_restart_stop / pg_restart_start          -> stop and start the same cluster (fault tests)
#
# PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user.
# The socket lives in the cluster's temp dir; clients use TCP on 127.0.0.1 with trust auth
# (loopback only, throwaway data).

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

_pg_as() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# 20000..32767: below Linux's ephemeral port range, so an outgoing connection of a parallel
# test cannot take the port between this check and the server's bind.
_pg_free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12768))
    if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return 0; fi
  done
  return 1
}

pg_start() {
  PGTMP=$(mktemp -d /tmp/donagate-pg.XXXXXX)
  chmod 755 "$PGTMP"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGTMP"
  PGPORT_TEST=$(_pg_free_port)
  _pg_as "$PG_BIN/initdb" -D "$PGTMP/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$PGTMP/initdb.log" 2>&1 \
    || { cat "$PGTMP/initdb.log"; return 1; }
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $PGPORT_TEST"
    echo "unix_socket_directories = '$PGTMP'"
    echo "max_connections = 300"
    echo "fsync = on"
    echo "synchronous_commit = on"
    echo "shared_buffers = 256MB"
    echo "log_min_messages = warning"
    for line in "$@"; do echo "$line"; done
  } | _pg_as tee -a "$PGTMP/data/postgresql.conf" >/dev/null
  pg_restart_start || return 1
  export PGTMP PGPORT_TEST
  export DONAGATE_TEST_PG="host=127.0.0.1 port=$PGPORT_TEST user=postgres dbname=postgres"
  echo "pg: throwaway PostgreSQL on 127.0.0.1:$PGPORT_TEST ($PGTMP)"
}

pg_restart_start() {
  _pg_as "$PG_BIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 60 start >/dev/null \
    || { cat "$PGTMP/server.log"; return 1; }
}

pg_restart_stop() {
  local mode=${1:-fast}
  _pg_as "$PG_BIN/pg_ctl" -D "$PGTMP/data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
}

pg_stop() {
  [ -n "${PGTMP:-}" ] && [ -d "$PGTMP" ] || return 0
  pg_restart_stop fast
  rm -rf "$PGTMP"
  PGTMP=
}
