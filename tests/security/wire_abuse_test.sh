#!/usr/bin/env bash
# Wire-level abuse against the real donagated in SERVER mode (the operator binds to us), with a
# healthy operator session delivering MOs at the same time. The link-level unit tests
# (tests/daemon/smpp_server_test.cc) cover each case against the server class; this checks the
# assembled daemon process: oversized command_length, garbage bytes, a truncated PDU, a PDU
# before bind, bind twice, a wrong password, an unknown command id, an idle connection and a
# slow-loris sender — each answered per spec or closed — while the healthy session's MOs are
# acknowledged and stored, the daemon stays up (/healthz) and exits 0 on SIGTERM.
set -euo pipefail
source "$(dirname "$0")/../faults/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 0; }

faults_setup wire_abuse
pick_port SERVER_PORT
faults_start_charging
MO_COUNT=200
cat >"$WORK/donagate.toml" <<TOML
[[smsc]]
name = "opa-server"
operator = "opa"
mode = "server"
host = "127.0.0.1"
port = $SERVER_PORT
system_id = "opa"
password_env = "FAULTS_SMSC_PASSWORD"
idle_timeout_s = 3
bind_timeout_s = 3
response_timeout_s = 2
max_pdu_size = 4096
max_failed_binds_per_ip = 100

[database]
conninfo_env = "FAULTS_DATABASE_URL"
run_migrations_on_start = true

[[campaign]]
name = "Vi mien Trung"

[[charging]]
operator = "opa"
backend = "http"
url = "http://127.0.0.1:$CHARGING_PORT"

[pipeline]
instance_id = "wire-abuse"
poll_interval_ms = 50

[http]
listen = "127.0.0.1:$HTTP_PORT"
TOML
faults_start_daemon
for _ in $(seq 1 100); do ss -Hltn "sport = :$SERVER_PORT" | grep -q . && break; sleep 0.1; done

cat >"$WORK/abuse.py" <<'PY'
import socket, struct, sys, threading, time
PORT, PASSWORD, N = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
results, failures = {}, []

def pdu(cmd, seq, body=b"", status=0):
    return struct.pack(">IIII", 16 + len(body), cmd, status, seq) + body

def cstr(s): return s.encode() + b"\0"

def bind_body(system_id, password):
    return cstr(system_id) + cstr(password) + cstr("") + bytes([0x34, 0, 0]) + cstr("")

def deliver_body(src, text):
    sm = text.encode()
    return (cstr("") + bytes([1, 1]) + cstr(src) + bytes([0, 0]) + cstr("1407") +
            bytes([0, 0, 0]) + cstr("") + cstr("") + bytes([0, 0, 0, 0, len(sm)]) + sm)

def read_pdu(s, timeout=5):
    s.settimeout(timeout)
    hdr = b""
    while len(hdr) < 16:
        chunk = s.recv(16 - len(hdr))
        if not chunk: return None
        hdr += chunk
    length, cmd, status, seq = struct.unpack(">IIII", hdr)
    body = b""
    while len(body) < length - 16:
        chunk = s.recv(length - 16 - len(body))
        if not chunk: return None
        body += chunk
    return cmd, status, seq

def closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        while True:
            if not s.recv(4096): return True
    except (socket.timeout, TimeoutError): return False
    except OSError: return True

def connect():
    return socket.create_connection(("127.0.0.1", PORT), timeout=5)

def check(name, ok, detail=""):
    results[name] = ok
    if not ok: failures.append(f"{name}: {detail}")

def healthy():
    # The operator's real session: bind transmitter, deliver N MOs, every one acked ESME_ROK.
    s = connect(); s.sendall(pdu(0x00000002, 1, bind_body("opa", PASSWORD)))
    r = read_pdu(s); check("healthy bind", r is not None and r[0] == 0x80000002 and r[1] == 0, r)
    acked = 0
    for i in range(N):
        s.sendall(pdu(0x00000005, 100 + i, deliver_body("849170%05d" % i, "CV 1")))
        while True:
            r = read_pdu(s, 20)
            if r is None: break
            if r[0] == 0x00000015: s.sendall(pdu(0x80000015, r[2])); continue   # enquire_link
            break
        if r is not None and r[0] == 0x80000005 and r[1] == 0 and r[2] == 100 + i: acked += 1
        time.sleep(0.02)
    results["healthy_acked"] = acked
    check("healthy session all acked", acked == N, f"{acked}/{N}")
    s.sendall(pdu(0x00000006, 9999)); read_pdu(s); s.close()

def abuse():
    # 1. oversized command_length: generic_nack ESME_RINVCMDLEN (0x02), then closed.
    s = connect(); s.sendall(struct.pack(">IIII", 0x7FFFFFF0, 0x00000005, 0, 7))
    r = read_pdu(s); check("oversized length nacked", r is not None and r[0] == 0x80000000 and r[1] == 0x02, r)
    check("oversized length closed", closed_within(s, 3), "still open"); s.close()
    # 2. garbage bytes: refused and closed.
    s = connect(); s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)))
    check("garbage closed", closed_within(s, 5), "still open"); s.close()
    # 3. PDU before bind: deliver_sm_resp ESME_RINVBNDSTS (0x04), connection kept.
    s = connect(); s.sendall(pdu(0x00000005, 11, deliver_body("84917099999", "CV 1")))
    r = read_pdu(s); check("pdu before bind", r is not None and r[0] == 0x80000005 and r[1] == 0x04, r)
    # 4. then bind, then bind twice: ESME_RALYBND (0x05); unknown command: generic_nack 0x03.
    s.sendall(pdu(0x00000002, 12, bind_body("opa", PASSWORD))); r = read_pdu(s)
    check("late bind ok", r is not None and r[1] == 0, r)
    s.sendall(pdu(0x00000002, 13, bind_body("opa", PASSWORD))); r = read_pdu(s)
    check("bind twice", r is not None and r[1] == 0x05, r)
    s.sendall(pdu(0x0000ABCD, 14)); r = read_pdu(s)
    check("unknown command", r is not None and r[0] == 0x80000000 and r[1] == 0x03, r)
    # 5. idle bound session: closed after idle_timeout_s (3 s; enquire_links from us are not answered).
    check("idle closed", closed_within(s, 12), "still open after 12 s"); s.close()
    # 6. wrong password: ESME_RINVPASWD (0x0E), closed.
    s = connect(); s.sendall(pdu(0x00000002, 21, bind_body("opa", "wrong")))
    r = read_pdu(s); check("wrong password", r is not None and r[1] == 0x0E, r)
    check("wrong password closed", closed_within(s, 3), "still open"); s.close()
    # 7. truncated PDU / slow-loris: half a header, then one byte per second — closed.
    s = connect(); s.sendall(pdu(0x00000015, 31)[:7])
    start = time.time(); closed = False
    for b in pdu(0x00000015, 31)[7:]:
        try: s.sendall(bytes([b]))
        except OSError: closed = True; break
        if closed_within(s, 1): closed = True; break
    check("slow-loris closed", closed or closed_within(s, 5), f"open after {time.time() - start:.0f} s"); s.close()
    # 8. never binds: closed after bind_timeout_s.
    s = connect(); check("never binds closed", closed_within(s, 10), "still open"); s.close()

t = threading.Thread(target=healthy); t.start()
time.sleep(0.3); abuse(); t.join()
print("results:", " ".join(f"{k}={v}" for k, v in results.items()))
if failures:
    print("FAILURES:", *failures, sep="\n  "); sys.exit(1)
PY
timeout 120 python3 "$WORK/abuse.py" "$SERVER_PORT" "$FAULTS_SMSC_PASSWORD" "$MO_COUNT" | tee "$WORK/abuse.out" \
  || fail "wire abuse checks failed"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/healthz")" = 200 ] || fail "daemon not healthy after the abuse"
for _ in $(seq 1 50); do [ "$(stored_count)" -ge "$MO_COUNT" ] && break; sleep 0.2; done
stored=$(q "SELECT count(*) FROM inbound_message WHERE outcome <> 'receipt' AND source_addr LIKE '849170%'")
[ "$stored" = "$MO_COUNT" ] || fail "$stored of the healthy session's $MO_COUNT MOs stored"
faults_stop_daemon
echo "wire_abuse: healthy session sent=$MO_COUNT acked=$MO_COUNT stored=$stored; 8 abusive connections answered per spec or closed; daemon up, clean exit"
echo "PASS: wire abuse refused, the healthy link unaffected"
