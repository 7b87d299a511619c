#!/usr/bin/env bash
# Ban latency under load, with the real nftables backend, inside a private network namespace:
#   authwall serve (nftables backend, own table, rule: 5 auth failures in 10m per address) gets
#   ~100k msg/s of ordinary mail traffic over one TCP connection (bench/daemon_load_sender.py
#   --abuse-fraction 0: no line in it causes a ban) while a second TCP connection brings N
#   attackers (every 5th IPv6, each in its own /64), each sending 5 SASL failures, staggered so
#   that bans arrive at a steady rate and the kernel set grows to N elements.
# Reports p50/p90/p99 of authwall_ban_latency_seconds (message that crossed the threshold
# received -> kernel acknowledged the batch) from the histogram's buckets, checks that the
# kernel sets hold exactly the bans made, and the background rate achieved.
# Usage (root): bench/ban_latency.sh [BUILD_DIR]   (default: build)
# Knobs: AUTHWALL_LAT_CASES ("ATTACKERS:BANS_PER_S ..."; default "2000:75 10000:375": all attackers done in ~27 s),
#        AUTHWALL_LAT_SECONDS (background duration per case, default 30),
#        AUTHWALL_LAT_RATE (background msg/s, default 100000),
#        AUTHWALL_LAT_WRAP (command prefix for the daemon, e.g. "chrt -f 10": is the tail the
#        scheduler's on a busy machine?),
#        AUTHWALL_LAT_STATE_DIR (where the SQLite state goes, default the temp dir on disk; e.g.
#        /dev/shm to take the WAL checkpoints' fsync out of the path).
# Bounded: every sender stops after its --seconds; the namespace dies with the script.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
build=$(cd "$build" && pwd)

# Re-run inside a fresh network namespace: the table, the sockets and the ports are private,
# and the kernel discards them when the last process in the namespace exits.
if [ -z "${AUTHWALL_LAT_IN_NETNS:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "needs root (network namespace, nftables)" >&2; exit 1; }
  AUTHWALL_LAT_IN_NETNS=1 exec unshare -n bash "$0" "$build"
fi

bin=$build/authwall
sender="$root/bench/daemon_load_sender.py"
cases=${AUTHWALL_LAT_CASES:-"2000:75 10000:375"}
seconds=${AUTHWALL_LAT_SECONDS:-30}
rate=${AUTHWALL_LAT_RATE:-100000}
table=authwall_lat
port=5514
metrics_port=9464
[ -x "$bin" ] || { echo "no $bin: build first" >&2; exit 1; }

source "$root/bench/bench_lib.sh"

ip link set lo up

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "== date: $(date -u +%Y-%m-%dT%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg), $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"

run_case() {  # run_case ATTACKERS BANS_PER_SECOND
  local attackers=$1 ban_rate=$2 dir="$tmp/case-$1"
  local state_dir=${AUTHWALL_LAT_STATE_DIR:-$dir}
  mkdir -p "$dir/rules.d"
  cat > "$dir/authwall.yaml" <<YAML
listen:
  tcp: ["127.0.0.1:$port"]
  allowed_senders: ["127.0.0.0/8"]
metrics: { listen: "127.0.0.1:$metrics_port" }
control: { socket: "var/authwall.sock" }
state: { path: "$state_dir/authwall-lat-$$-$1.db" }
firewall:
  backend: nftables
  table: $table
  ports: [25, 465, 587, 110, 995, 143, 993, 4190]
  hooks: [input, forward]
never_ban: ["127.0.0.0/8"]
rule_files: ["rules.d/*.yaml"]
YAML
  cat > "$dir/rules.d/mail.yaml" <<'YAML'
rules:
  - name: mail-auth-bruteforce
    match: { kind: [auth_failure] }
    key: ip
    prefix: { ipv4: 32, ipv6: 64 }
    window: 10m
    threshold: 5
    ban: { duration: 1h }
YAML
  echo
  # shellcheck disable=SC2016  # false positive: the quotes are inside a double-quoted string
  echo "== $attackers attackers at $ban_rate bans/s, background $rate msg/s for ${seconds}s${AUTHWALL_LAT_WRAP:+, daemon under '$AUTHWALL_LAT_WRAP'}, load $(cut -d' ' -f1-3 /proc/loadavg)"
  # shellcheck disable=SC2086  # the wrapper is a word list on purpose
  ${AUTHWALL_LAT_WRAP:-} "$bin" serve -c "$dir/authwall.yaml" 2> "$dir/authwall.log" &
  local daemon=$!
  pids+=("$daemon")
  for _ in $(seq 100); do metrics >/dev/null 2>&1 && break; sleep 0.1; done
  metrics >/dev/null || { echo "authwall did not start" >&2; cat "$dir/authwall.log" >&2; exit 1; }
  nft list set inet "$table" banned_ipv4 >/dev/null || { echo "no table $table" >&2; exit 1; }

  local t0 t1 r0 r1
  r0=$(metric 'authwall_messages_received_total{transport="tcp"}')
  t0=$(date +%s.%N)
  python3 "$sender" --transport tcp --port "$port" --abuse-fraction 0 --rate "$rate" \
    --count $((rate * seconds)) --seconds "$seconds" > "$dir/background.out" &
  local bg=$!
  pids+=("$bg")
  # The attackers start a second into the background flow and finish before it ends.
  sleep 1
  python3 "$sender" --transport tcp --port "$port" --attackers "$attackers" \
    --attack-rate "$ban_rate" --seconds "$((seconds - 1))" > "$dir/attackers.out"
  wait "$bg"
  t1=$(date +%s.%N)
  r1=$(metric 'authwall_messages_received_total{transport="tcp"}')
  cat "$dir/background.out" "$dir/attackers.out" | grep -v '^start='
  # The rate runs from the background sender's first byte (building its block is not load).
  t0=$(sed -n 's/^start=//p' "$dir/background.out")
  local attack_frames done4 done6
  attack_frames=$(sed -n 's/.*: sent \([0-9]*\) failures.*/\1/p' "$dir/attackers.out")
  done4=$(sed -n 's/.*(ipv4 \([0-9]*\), .*/\1/p' "$dir/attackers.out")
  done6=$(sed -n 's/.*, ipv6 \([0-9]*\)).*/\1/p' "$dir/attackers.out")
  # Let the last bans settle (bounded), then read everything.
  local deadline=$(( $(date +%s) + 10 ))
  while [ "$(date +%s)" -le "$deadline" ] && [ "$(metric authwall_ban_latency_seconds_count)" != "$((done4 + done6))" ]; do
    sleep 0.2
  done
  metrics > "$dir/metrics.txt"
  local load; load=$(cut -d' ' -f1-3 /proc/loadavg)
  nft -j list set inet "$table" banned_ipv4 > "$dir/v4.json"
  nft -j list set inet "$table" banned_ipv6 > "$dir/v6.json"
  python3 - "$dir" "$attackers" "$r0" "$r1" "$t0" "$t1" "$load" "$attack_frames" "$done4" "$done6" <<'PY' || status=1
import json, math, re, sys
d, attackers, r0, r1, t0, t1, load, attack_frames, done4, done6 = sys.argv[1:]
done4, done6 = int(done4), int(done6)
attackers = int(attackers)
buckets, total, ssum, bans, errors = [], 0, 0.0, 0, 0
for line in open(d + "/metrics.txt"):
    m = re.match(r'authwall_ban_latency_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
    if m:
        buckets.append((math.inf if m.group(1) == "+Inf" else float(m.group(1)), int(float(m.group(2)))))
    elif line.startswith("authwall_ban_latency_seconds_count "):
        total = int(float(line.split()[1]))
    elif line.startswith("authwall_ban_latency_seconds_sum "):
        ssum = float(line.split()[1])
    elif line.startswith("authwall_bans_total"):
        bans += int(float(line.split()[1]))
    elif line.startswith("authwall_firewall_errors_total"):
        errors += int(float(line.split()[1]))
buckets.sort()
def elems(path):
    for o in json.load(open(path))["nftables"]:
        if "set" in o:
            return len(o["set"].get("elem", []))
    return -1
v4, v6 = elems(d + "/v4.json"), elems(d + "/v6.json")
def quantile(q):
    # Cumulative buckets: the quantile lies in the first bucket whose count reaches q * total;
    # all the histogram can say is "at most that bucket's upper bound, above the previous one".
    need = q * total
    lower = 0.0
    for le, c in buckets:
        if c >= need:
            return lower, le
        lower = le
    return lower, math.inf
def ms(x):
    return "+Inf" if x == math.inf else ("%g ms" % (x * 1000))
dur = float(t1) - float(t0)
bg = int(r1) - int(r0) - int(attack_frames)
print("background: %d frames received in %.2f s (sender's first byte to its end) = %.0f msg/s, plus %s attacker frames" %
      (bg, dur, bg / dur, attack_frames))
# Every attacker that sent its fifth failure must be banned, each exactly once, and the kernel
# sets must hold exactly those bans (IPv6 ones as /64 prefixes).
ok = v4 == done4 and v6 == done6 and bans == done4 + done6 and total == bans
print("bans: %d (latency samples %d), firewall errors %d; kernel sets: banned_ipv4 %d elements (attackers done %d), banned_ipv6 %d (done %d) -> %s" %
      (bans, total, errors, v4, done4, v6, done6, "OK" if ok else "MISMATCH"))
print("ban latency: mean %.3f ms; " % (1000 * ssum / total if total else float("nan")) +
      "; ".join("p%d in (%s, %s]" % (q * 100, ms(lo), ms(hi)) for q in (0.5, 0.9, 0.99) for lo, hi in [quantile(q)]))
print("buckets (le: cumulative): " + ", ".join("%s: %d" % (ms(le), c) for le, c in buckets if c > 0 or le <= 0.001))
print("load after: %s" % load)
sys.exit(0 if ok else 1)
PY
  kill -TERM "$daemon"
  wait "$daemon" || true
  # The next case starts from an empty table: the daemon would otherwise restore these bans.
  nft delete table inet "$table" 2>/dev/null || true
  rm -f "$state_dir/authwall-lat-$$-$1.db"*
}

status=0
for c in $cases; do
  run_case "${c%%:*}" "${c##*:}"
done
exit "$status"
