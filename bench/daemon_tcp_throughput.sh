#!/usr/bin/env bash
# Daemon throughput on loopback, bounded (a few minutes at most):
#   1. TCP: one connection of octet-counted RFC 5424 frames of realistic mail traffic
#      (bench/daemon_load_sender.py) through `authwall serve --dry-run`: parse + normalize +
#      rules (+ the dry-run ban bookkeeping for the bans it decides);
#   2. the same stream into rsyslog's imtcp writing a file, side by side;
#   3. UDP: one sender as fast as it goes (and at fixed rates), loss and the kernel's
#      receive-buffer drop count (SO_RXQ_OVFL) as the daemon reports them.
# Usage: bench/daemon_tcp_throughput.sh [BUILD_DIR]   (default: build)
# Knobs: AUTHWALL_BENCH_MESSAGES (TCP, default 3000000), AUTHWALL_BENCH_UDP_MESSAGES (1000000).
# Prints wall-clock rates (first byte sent -> last message counted by the receiver, polled every
# 50 ms) and rates per CPU-second of the receiver: on a shared 2-core machine the latter is what
# the code costs, the former what the machine gave it at that moment.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
bin=$build/authwall
messages=${AUTHWALL_BENCH_MESSAGES:-3000000}
udp_messages=${AUTHWALL_BENCH_UDP_MESSAGES:-1000000}
sender="$root/bench/daemon_load_sender.py"
[ -x "$bin" ] || { echo "no $bin: build first" >&2; exit 1; }

source "$root/bench/bench_lib.sh"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
now() { date +%s.%N; }
wait_metric() {  # wait_metric NAME VALUE SECONDS
  local deadline=$(( $(date +%s) + $3 ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    local v; v=$(metric "$1" || echo 0)
    [ "${v:-0}" = "$2" ] && return 0
    sleep 0.05
  done
  return 1
}

port=$(free_port)
metrics_port=$(free_port)
mkdir -p "$tmp/rules.d"
cat > "$tmp/authwall.yaml" <<YAML
listen:
  udp: ["127.0.0.1:$port"]
  tcp: ["127.0.0.1:$port"]
  allowed_senders: ["127.0.0.0/8"]
metrics: { listen: "127.0.0.1:$metrics_port" }
control: { socket: "var/authwall.sock" }
state: { path: "var/authwall.db" }
firewall: { backend: dry-run }
never_ban: ["127.0.0.0/8"]
rule_files: ["rules.d/*.yaml"]
YAML
cat > "$tmp/rules.d/mail.yaml" <<'YAML'
rules:
  - name: mail-auth-bruteforce
    match: { kind: [auth_failure] }
    key: ip
    prefix: { ipv4: 32, ipv6: 64 }
    window: 10m
    threshold: 5
    ban: { duration: 1h, factor: 2, max: 7d }
  - name: password-spray
    match: { kind: [auth_failure] }
    key: ip
    distinct: user
    window: 1h
    threshold: 10
    ban: { duration: 24h }
  - name: smtp-abuse
    match: { kind: [protocol_abuse, rejected] }
    key: ip
    window: 10m
    threshold: 20
    ban: { duration: 30m }
YAML

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== date: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"

"$bin" serve -c "$tmp/authwall.yaml" --dry-run 2> "$tmp/authwall.log" &
daemon=$!
pids+=("$daemon")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$metrics_port/healthz" >/dev/null && break; sleep 0.1; done

echo
echo "== TCP, one connection, $messages octet-counted RFC 5424 frames -> authwall (3 rules)"
c0=$(cpu_ticks "$daemon")
out=$(python3 "$sender" --transport tcp --port "$port" --count "$messages" --seconds 120)
echo "$out" | grep -v '^start='
t0=$(echo "$out" | sed -n 's/^start=//p')
wait_metric 'authwall_messages_received_total{transport="tcp"}' "$messages" 120 || {
  echo "authwall did not receive all messages" >&2; tail "$tmp/authwall.log" >&2; exit 1; }
t1=$(now); c1=$(cpu_ticks "$daemon")
awk -v n="$messages" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" 'BEGIN {
  w = t1 - t0; cpu = c / hz;
  printf "authwall: %.2f s wall, %.0f msg/s; %.2f CPU-s, %.0f msg per CPU-second\n", w, n / w, cpu, n / cpu }'
echo "events: $(curl -sf "http://127.0.0.1:$metrics_port/metrics" | awk '/^authwall_events_total/ {s += $2} END {print s}'), bans: $(metric authwall_bans_active), ban latency mean: $(awk -v s="$(metric authwall_ban_latency_seconds_sum)" -v c="$(metric authwall_ban_latency_seconds_count)" 'BEGIN { if (c > 0) printf "%.1f ms", 1000 * s / c; else print "n/a" }')"

echo
echo "== UDP, one sender, RFC 3164 datagrams (rsyslog's default forward form)"
c++ -O2 -std=c++20 -o "$tmp/udp_sender" "$root/bench/daemon_udp_sender.cpp"
python3 "$sender" --transport udp --port "$port" --write-block "$tmp/datagrams"
for rate in 0 200000 350000; do
  before=$(metric 'authwall_messages_received_total{transport="udp"}')
  drops_before=$(metric 'authwall_messages_dropped_total{reason="receive_buffer_full"}')
  label=$([ "$rate" = 0 ] && echo "as fast as one core sends" || echo "$rate/s")
  c0=$(cpu_ticks "$daemon")
  out=$("$tmp/udp_sender" "$tmp/datagrams" "$port" "$udp_messages" "$rate" 60)
  sent=$(echo "$out" | awk '{print $2}')
  sleep 1
  after=$(metric 'authwall_messages_received_total{transport="udp"}')
  drops=$(metric 'authwall_messages_dropped_total{reason="receive_buffer_full"}')
  c1=$(cpu_ticks "$daemon")
  echo "$label: $out; received $((after - before)), lost $((sent - (after - before))), kernel receive-buffer drops reported $((drops - drops_before)); authwall CPU $(awk -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f s", c / hz }')"
done
echo "receive buffer granted: $(metric authwall_udp_receive_buffer_bytes) bytes"
kill -TERM "$daemon"; wait "$daemon" || true

echo
echo "== TCP, the same stream -> rsyslog $(rsyslogd -v | head -1 | awk '{print $2}') imtcp -> file"
rport=$(free_port)
mkdir -p "$tmp/rsyslog"
cat > "$tmp/rsyslog/rsyslog.conf" <<CONF
global(workDirectory="$tmp/rsyslog")
module(load="imtcp")
input(type="imtcp" port="$rport" address="127.0.0.1")
action(type="omfile" file="$tmp/rsyslog/out.log" template="RSYSLOG_FileFormat")
CONF
rsyslogd -n -f "$tmp/rsyslog/rsyslog.conf" -i "$tmp/rsyslog/rsyslogd.pid" 2> "$tmp/rsyslog/stderr" &
rsys=$!
pids+=("$rsys")
for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $rport)).close()" 2>/dev/null && break; sleep 0.1; done
c0=$(cpu_ticks "$rsys")
out=$(python3 "$sender" --transport tcp --port "$rport" --count "$messages" --seconds 120)
echo "$out" | grep -v '^start='
t0=$(echo "$out" | sed -n 's/^start=//p')
deadline=$(( $(date +%s) + 180 ))
while [ "$(date +%s)" -le "$deadline" ]; do
  [ "$(wc -l < "$tmp/rsyslog/out.log" 2>/dev/null || echo 0)" -ge "$messages" ] && break
  sleep 0.2
done
t1=$(now); c1=$(cpu_ticks "$rsys")
lines=$(wc -l < "$tmp/rsyslog/out.log")
awk -v n="$lines" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" 'BEGIN {
  w = t1 - t0; cpu = c / hz;
  printf "rsyslog: %d lines, %.2f s wall, %.0f msg/s; %.2f CPU-s, %.0f msg per CPU-second\n", n, w, n / w, cpu, n / cpu }'
