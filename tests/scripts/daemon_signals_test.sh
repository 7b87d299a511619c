#!/usr/bin/env bash
# SIGHUP and SIGTERM on `authwall serve --dry-run`:
#   - a valid reload adds a rule and keeps the window state of the unchanged one;
#   - an invalid reload is rejected with its errors logged, the old configuration keeps running;
#   - SIGTERM drains what was received (also on a connection not yet accepted), persists the
#     bans it led to and exits 0; the next start restores them; manual bans survive too.
source "$(dirname "$0")/daemon_lib.sh"

aw_write_config '["127.0.0.0/8", "::1/128"]' '["203.0.113.250"]'
aw_start_daemon

send_tcp() {  # send_tcp LINE... : one new TCP connection, LF framing
  python3 - "$AW_PORT" "$@" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"".join(l.encode() + b"\n" for l in sys.argv[2:]))
s.close()
PY
}
sasl() { echo "<22>Nov 28 10:00:0$2 mx1 postfix/smtpd[$((200 + $2))]: warning: unknown[$1]: SASL PLAIN authentication failed: x, sasl_username=u$2"; }
reject() { echo "<22>Nov 28 10:00:0$2 mx1 postfix/smtpd[$((300 + $2))]: NOQUEUE: reject: RCPT from unknown[$1]: 554 5.7.1 <x$2@example.org>: Relay access denied; from=<a@example.com> to=<x$2@example.org> proto=ESMTP helo=<h>"; }
failures() { aw_metric 'authwall_events_total{kind="auth_failure",source="postfix"}'; }

# --- valid reload: 3 attempts before, 2 after; the ban at 5 proves the window survived.
send_tcp "$(sasl 192.0.2.90 1)" "$(sasl 192.0.2.90 2)" "$(sasl 192.0.2.90 3)"
aw_wait_metric_ge 'authwall_events_total{kind="auth_failure",source="postfix"}' 3
cat > "$AW_TMP/rules.d/abuse.yaml" <<'YAML'
rules:
  - name: smtp-relay-probe
    match: { kind: [rejected] }
    key: ip
    window: 10m
    threshold: 2
    ban: { duration: 30m }
YAML
kill -HUP "$AW_DAEMON_PID"
aw_wait_metric_ge 'authwall_config_reloads_total{result="success"}' 1
[ "$(aw_metric authwall_rules)" = 2 ] || fail "rules after reload: $(aw_metric authwall_rules)"
grep -q "1 kept their window state, 1 started empty" "$AW_TMP/authwall.log" || fail "reload log line"
aw_not_banned 192.0.2.90
send_tcp "$(sasl 192.0.2.90 4)" "$(sasl 192.0.2.90 5)"
aw_wait_banned 192.0.2.90 mail-auth-bruteforce
send_tcp "$(reject 192.0.2.91 1)" "$(reject 192.0.2.91 2)"
aw_wait_banned 192.0.2.91 smtp-relay-probe
pass "SIGHUP reload: new rule active, unchanged rule kept its window"

# --- invalid reload: rejected, errors logged with file:line:col, the old rules keep working.
cat > "$AW_TMP/rules.d/broken.yaml" <<'YAML'
rules:
  - name: broken
    match: { kind: [auth_failure] }
    key: ip
    window: 10m
    threshold: 5
    bann: { duration: 1h }
YAML
kill -HUP "$AW_DAEMON_PID"
aw_wait_metric_ge 'authwall_config_reloads_total{result="failure"}' 1
aw_alive || fail "authwall died on an invalid reload"
grep -q "broken.yaml:[0-9]*:[0-9]*: " "$AW_TMP/authwall.log" || fail "the reload error does not name file:line:col"
grep -q "reload rejected" "$AW_TMP/authwall.log" || fail "no 'reload rejected' line"
[ "$(aw_metric authwall_rules)" = 2 ] || fail "rules after a rejected reload: $(aw_metric authwall_rules)"
send_tcp "$(sasl 192.0.2.92 1)" "$(sasl 192.0.2.92 2)" "$(sasl 192.0.2.92 3)" "$(sasl 192.0.2.92 4)" "$(sasl 192.0.2.92 5)"
aw_wait_banned 192.0.2.92 mail-auth-bruteforce
pass "invalid reload rejected with file:line:col; the previous configuration keeps banning"
rm "$AW_TMP/rules.d/broken.yaml"

# --- manual ban and unban through the control socket.
"$AW_BIN" ban 198.51.100.0/24 --for 2h -c "$AW_CONFIG" >/dev/null || fail "manual ban"
"$AW_BIN" ban 198.51.100.77 --for 30m --socket "$AW_SOCKET" >/dev/null || fail "ban inside a banned prefix"
"$AW_BIN" ban 203.0.113.9 -c "$AW_CONFIG" >/dev/null || fail "manual ban 2"
"$AW_BIN" unban 203.0.113.9 -c "$AW_CONFIG" >/dev/null || fail "manual unban"
aw_wait_banned 198.51.100.0/24 manual
# Inside the /24 but longer than it: held (not refused as an overlap), listed, counted.
out=$("$AW_BIN" ban 198.51.100.78 --for 3h -c "$AW_CONFIG") || fail "ban outliving the /24 around it: $out"
echo "$out" | grep -q "takes over" || fail "held ban reply: $out"
aw_wait_banned 198.51.100.78 manual
[ "$(aw_metric authwall_bans_held)" = 1 ] || fail "bans_held: $(aw_metric authwall_bans_held)"
[ "$(aw_metric authwall_firewall_errors_total)" = 0 ] || fail "firewall errors after a held ban"
aw_not_banned 203.0.113.9
out=$("$AW_BIN" ban 127.0.0.5 -c "$AW_CONFIG" 2>&1) && fail "banning a never_ban address succeeded"
echo "$out" | grep -q never_ban || fail "never_ban refusal: $out"
out=$("$AW_BIN" ban 203.0.113.0/24 -c "$AW_CONFIG" 2>&1) && fail "a ban covering a trusted proxy succeeded"
echo "$out" | grep -q "trusted_proxies entry 203.0.113.250" || fail "trusted proxy refusal: $out"
aw_not_banned 203.0.113.0/24
pass "manual ban/unban; never_ban and trusted_proxies refused"

# --- SIGTERM drain: the data is in the kernel when the signal arrives.
python3 - "$AW_PORT" "$AW_DAEMON_PID" <<'PY'
import os, signal, socket, sys
port, pid = int(sys.argv[1]), int(sys.argv[2])
lines = b"".join(("<22>Nov 28 10:00:0%d mx1 postfix/smtpd[40%d]: warning: unknown[192.0.2.93]: SASL PLAIN authentication failed: x, sasl_username=w%d\n" % (i, i, i)).encode() for i in range(5))
s = socket.create_connection(("127.0.0.1", port))
s.sendall(lines[:-1])  # the last line without its LF: delivered at end of stream
os.kill(pid, signal.SIGTERM)
PY
for _ in $(seq 300); do kill -0 "$AW_DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
AW_EXIT=0
wait "$AW_DAEMON_PID" || AW_EXIT=$?
[ "$AW_EXIT" = 0 ] || fail "exit status $AW_EXIT after SIGTERM"
grep -q "banned 192.0.2.93" "$AW_TMP/authwall.log" || fail "the drained messages did not lead to a ban"
pass "SIGTERM: drained, banned, exit 0"

aw_start_daemon
grep -q "bans restored" "$AW_TMP/authwall.log" || fail "no restore line"
for t in 192.0.2.90 192.0.2.91 192.0.2.92 192.0.2.93 198.51.100.0/24 198.51.100.78; do aw_wait_banned "$t" "" 5; done
aw_not_banned 203.0.113.9
[ "$(aw_metric authwall_bans_active)" = 6 ] || fail "bans_active after restart: $(aw_metric authwall_bans_active)"
[ "$(aw_metric authwall_bans_held)" = 1 ] || fail "bans_held after restart: $(aw_metric authwall_bans_held)"
grep -q "5 bans restored.*; 1 held inside wider bans" "$AW_TMP/authwall.log" || fail "restore line with the held ban"
pass "restart restores the persisted bans"
aw_stop_daemon
[ "$AW_EXIT" = 0 ] || fail "exit status $AW_EXIT"

# --- SIGHUP during start-up (logrotate does not wait for us): the state database is locked by
# another process, so the daemon waits in start-up (SQLite's busy timeout) with its sockets
# already open; the SIGHUP it gets there must wait for the handler, not kill the process.
python3 - "$AW_TMP/var/authwall.db" "$AW_METRICS_PORT" <<'PY' &
import socket, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
open(sys.argv[1] + ".locked", "w").close()
deadline = time.time() + 20
while time.time() < deadline:  # until the daemon's metrics socket exists
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=1).close()
        break
    except OSError:
        time.sleep(0.05)
time.sleep(1.5)  # the daemon is now waiting for the lock (busy timeout 5 s); SIGHUP comes at 0.5 s
db.execute("COMMIT")
PY
locker=$!
AW_PIDS+=("$locker")
for _ in $(seq 100); do [ -e "$AW_TMP/var/authwall.db.locked" ] && break; sleep 0.1; done
: > "$AW_TMP/authwall.log"
"$AW_BIN" serve -c "$AW_CONFIG" --dry-run >> "$AW_TMP/authwall.log" 2>&1 &
AW_DAEMON_PID=$!
AW_PIDS+=("$AW_DAEMON_PID")
for _ in $(seq 200); do
  python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()' \
    "$AW_METRICS_PORT" 2>/dev/null && break
  sleep 0.05
done
sleep 0.5
grep -q "serving:" "$AW_TMP/authwall.log" && fail "start-up did not wait for the locked database"
kill -HUP "$AW_DAEMON_PID"
wait "$locker" || fail "the database locker failed"
aw_wait_metric_ge 'authwall_config_reloads_total{result="success"}' 1
aw_alive || fail "authwall died of a SIGHUP during start-up"
grep -q "SIGHUP: reloading" "$AW_TMP/authwall.log" || fail "the start-up SIGHUP was not handled"
pass "SIGHUP during start-up waits for the handler (reload after start-up)"
aw_stop_daemon
[ "$AW_EXIT" = 0 ] || fail "exit status $AW_EXIT"
echo "all signal checks passed"
