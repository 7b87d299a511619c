# Shared helpers for the daemon's end-to-end tests (sourced, not run: ctest only runs *_test.sh).
# Every process a test starts is recorded and ended by PID on exit; every wait is bounded.
set -euo pipefail

AW_BIN=${1:?usage: bash TEST BINARY SOURCE_DIR}
AW_SRC=${2:?usage: bash TEST BINARY SOURCE_DIR}
AW_BIN=$(cd "$(dirname "$AW_BIN")" && pwd)/$(basename "$AW_BIN")
AW_TMP=$(mktemp -d /tmp/authwall-e2e.XXXXXX)
AW_PIDS=()
AW_DAEMON_PID=""

aw_cleanup() {
  local rc=$?
  for p in "${AW_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${AW_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$rc" != 0 ]; then
    echo "--- authwall log (last 40 lines)"
    tail -n 40 "$AW_TMP"/authwall*.log 2>/dev/null || true
    for f in "$AW_TMP"/rsyslog-*/stderr; do [ -s "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done
  fi
  rm -rf "$AW_TMP"
  exit "$rc"
}
trap aw_cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# A port free for both TCP and UDP on 127.0.0.1.
aw_free_port() { python3 "$AW_SRC/tests/scripts/free_port.py"; }

AW_PORT=$(aw_free_port)
AW_METRICS_PORT=$(aw_free_port)
AW_CONFIG=$AW_TMP/authwall.yaml
AW_SOCKET=$AW_TMP/var/authwall.sock

# aw_write_config [ALLOWED_SENDERS_YAML_LIST [TRUSTED_PROXIES_YAML_LIST]]
aw_write_config() {
  local allowed=${1:-'["127.0.0.0/8", "::1/128"]'}
  local proxies=${2:-'[]'}
  mkdir -p "$AW_TMP/rules.d"
  cat > "$AW_CONFIG" <<YAML
listen:
  udp: ["127.0.0.1:$AW_PORT"]
  tcp: ["127.0.0.1:$AW_PORT"]
  allowed_senders: $allowed
metrics:
  listen: "127.0.0.1:$AW_METRICS_PORT"
control:
  socket: "var/authwall.sock"
state:
  path: "var/authwall.db"
firewall:
  backend: nftables
never_ban: ["127.0.0.0/8", "::1/128"]
trusted_proxies: $proxies
rule_files: ["rules.d/*.yaml"]
YAML
  cat > "$AW_TMP/rules.d/mail.yaml" <<'YAML'
rules:
  - name: mail-auth-bruteforce
    match: { kind: [auth_failure] }
    key: ip
    prefix: { ipv4: 32, ipv6: 64 }
    window: 10m
    threshold: 5
    ban: { duration: 1h, factor: 2, max: 7d }
YAML
}

# Starts `authwall serve --dry-run` and waits until /healthz answers.
aw_start_daemon() {
  "$AW_BIN" serve -c "$AW_CONFIG" --dry-run "$@" >> "$AW_TMP/authwall.log" 2>&1 &
  AW_DAEMON_PID=$!
  AW_PIDS+=("$AW_DAEMON_PID")
  for _ in $(seq 150); do
    curl -sf "http://127.0.0.1:$AW_METRICS_PORT/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$AW_DAEMON_PID" 2>/dev/null || fail "authwall exited at start-up"
    sleep 0.1
  done
  fail "authwall did not answer /healthz within 15 s"
}

# Sends SIGTERM and waits (bounded) for the exit; returns the exit status in AW_EXIT.
aw_stop_daemon() {
  kill -TERM "$AW_DAEMON_PID"
  for _ in $(seq 300); do
    kill -0 "$AW_DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$AW_DAEMON_PID" 2>/dev/null && fail "authwall did not exit within 30 s of SIGTERM"
  AW_EXIT=0
  wait "$AW_DAEMON_PID" || AW_EXIT=$?
}

aw_alive() { kill -0 "$AW_DAEMON_PID" 2>/dev/null && curl -sf "http://127.0.0.1:$AW_METRICS_PORT/healthz" >/dev/null; }

aw_scrape() { curl -sf "http://127.0.0.1:$AW_METRICS_PORT/metrics"; }
# aw_metric 'name{labels}' -> value (0 when absent)
aw_metric() {
  aw_scrape | awk -v m="$1" '$1 == m {v = $2} END {print (v == "" ? 0 : v)}'
}
# aw_wait_metric_ge 'name{labels}' MIN [SECONDS]
aw_wait_metric_ge() {
  local deadline=$(( $(date +%s) + ${3:-20} ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    awk -v a="$(aw_metric "$1")" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }' && return 0
    sleep 0.1
  done
  fail "$1 stayed below $2 (is $(aw_metric "$1"))"
}

aw_bans_json() { "$AW_BIN" bans --json -c "$AW_CONFIG"; }
# aw_wait_banned TARGET [RULE] [SECONDS]: until `bans --json` lists TARGET (with RULE).
aw_wait_banned() {
  local deadline=$(( $(date +%s) + ${3:-20} ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    if aw_bans_json | python3 -c '
import json, sys
target, rule = sys.argv[1], sys.argv[2]
bans = json.load(sys.stdin)
sys.exit(0 if any(b["target"] == target and (not rule or b["rule"] == rule) and b["expires"].endswith("Z") for b in bans) else 1)
' "$1" "${2:-}"; then
      return 0
    fi
    sleep 0.1
  done
  aw_bans_json >&2 || true
  fail "$1 was not banned${2:+ by $2} within ${3:-20} s"
}
aw_not_banned() {
  aw_bans_json | python3 -c '
import json, sys
sys.exit(1 if any(b["target"] == sys.argv[1] for b in json.load(sys.stdin)) else 0)' "$1" ||
    fail "$1 is banned but must not be"
}

# Starts rsyslogd in the foreground with its own config, pid file and work directory. Input:
# a private Unix socket ($dir/log.sock) that `logger -u` writes to, as Postfix's syslog(3)
# writes to /dev/log. $2: the forwarding action(s); $3: extra global() parameters.
# Sets AW_RSYSLOG_SOCK.
aw_start_rsyslog() {
  local name=$1 action=$2 globals=${3:-}
  local dir=$AW_TMP/rsyslog-$name
  mkdir -p "$dir/work"
  cat > "$dir/rsyslog.conf" <<CONF
global(workDirectory="$dir/work" $globals)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$dir/log.sock" RateLimit.Interval="0" CreatePath="on")
$action
CONF
  rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" > "$dir/stderr" 2>&1 &
  local pid=$!
  AW_PIDS+=("$pid")
  AW_RSYSLOG_SOCK=$dir/log.sock
  for _ in $(seq 100); do
    [ -S "$AW_RSYSLOG_SOCK" ] && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$dir/stderr" >&2; fail "rsyslogd ($name) exited at start-up"; }
    sleep 0.1
  done
  fail "rsyslogd ($name) did not create its socket"
}

# aw_log TAG PID MESSAGE: one line through rsyslog's socket, exactly as glibc's syslog(3) sends
# it for Postfix and Dovecot ("<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG", no hostname).
aw_log() {
  python3 - "$AW_RSYSLOG_SOCK" "$1" "$2" "$3" <<'PY'
import socket, sys, time
sock, tag, pid, msg = sys.argv[1:5]
stamp = time.strftime("%b %e %H:%M:%S", time.localtime())
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(("<22>%s %s[%s]: %s" % (stamp, tag, pid, msg)).encode(), sock)
PY
}
