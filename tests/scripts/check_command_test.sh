#!/usr/bin/env bash
# `authwall check`: --jsonl events with line numbers, the human summary, would-be bans with -c,
# long lines, lines across read-buffer boundaries, stdin, errors and exit codes, and memory that
# does not grow with the input.
set -euo pipefail
bin=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Dovecot event-exporter lines exercise only the JSON path, so this test does not depend on the
# Postfix/Dovecot text templates.
ev() {  # ev IP [REASON]
  printf 'Nov 28 10:00:%02d mx dovecot: stats: {"event":"login_aborted","hostname":"mx","end_time":%d,"fields":{"user":"u","service":"imap","remote_ip":"%s","reason":"%s","auth_attempts":1}}\n' \
    "$((n % 60))" "$((1795860000 + n))" "$1" "${2:-auth_failed}"
  n=$((n + 1))
}
n=0

# --- --jsonl: one object per recognised line, `line` is the 1-based line number -------------
{ echo "Nov 28 10:00:00 mx postfix/qmgr[1]: 4F2A81C0E3: removed"; ev 192.0.2.1; echo; ev 2001:db8::1; } > "$tmp/a.log"
"$bin" check --jsonl "$tmp/a.log" > "$tmp/a.jsonl"
python3 - "$tmp/a.jsonl" <<'P' || fail "jsonl output"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["line"] for r in rows] == [2, 4], rows
assert [r["ip"] for r in rows] == ["192.0.2.1", "2001:db8::1"], rows
assert list(rows[0].keys()) == ["time", "host", "program", "source", "service", "kind", "reason",
                                "ip", "port", "user", "mechanism", "attempts", "session", "line"], rows[0]
P

# stdin, with and without '-'
[ "$("$bin" check --jsonl < "$tmp/a.log" | wc -l)" = 2 ] || fail "stdin"
[ "$("$bin" check --jsonl - < "$tmp/a.log" | wc -l)" = 2 ] || fail "stdin as -"

# --- human summary ---------------------------------------------------------------------------
{ ev 192.0.2.7 quantum_flux; ev 192.0.2.8 quantum_flux; ev 192.0.2.9; printf 'garbage\0line\n'; } > "$tmp/b.log"
out=$("$bin" check "$tmp/b.log")
grep -q '^Lines read: *4 (1 input' <<<"$out" || fail "lines read: $out"
grep -q '^  dovecot  auth_failure  *1$' <<<"$out" || fail "events by source/kind: $out"
grep -q '^Unrecognized: *2 ' <<<"$out" || fail "unrecognized count: $out"
# the two unknown reasons differ only in addresses and times: one shape, counted twice, one example
grep -q '^  2  dovecot: stats: {"event":"login_aborted"' <<<"$out" || fail "shape grouping: $out"
grep -q "e.g. $tmp/b.log:1: " <<<"$out" || fail "shape example: $out"

# --- long lines are cut and counted; the next line is still read ----------------------------
python3 - "$tmp/c.log" <<'P'
import sys
with open(sys.argv[1], "w") as f:
    f.write("Nov 28 10:00:00 mx app: " + "x" * 200000 + "\n")
    f.write('Nov 28 10:00:01 mx dovecot: stats: {"event":"login_aborted","fields":{"remote_ip":"192.0.2.3","reason":"auth_failed"}}')  # no final newline
P
out=$("$bin" check "$tmp/c.log")
grep -q '^Truncated lines: *1 ' <<<"$out" || fail "truncated: $out"
[ "$("$bin" check --jsonl "$tmp/c.log" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["line"])')" = 2 ] \
  || fail "line after a long line / last line without newline"

# --- a line that straddles the 1 MiB read buffer --------------------------------------------
python3 - "$tmp/d.log" <<'P'
import sys
line = 'Nov 28 10:00:02 mx dovecot: stats: {"event":"login_aborted","fields":{"remote_ip":"192.0.2.4","reason":"auth_failed"}}\n'
with open(sys.argv[1], "w") as f:
    size = 0
    filler = "Nov 28 10:00:00 mx app: " + "y" * 75 + "\n"
    while size + len(filler) < (1 << 20) - len(line) // 2:
        f.write(filler); size += len(filler)
    f.write(line)
    f.write(filler)
P
[ "$("$bin" check --jsonl "$tmp/d.log" | grep -c '"ip":"192.0.2.4"')" = 1 ] || fail "line across the read buffer"

# --- -c: custom patterns from the configuration and would-be bans in the log's own time ------
cat > "$tmp/authwall.yaml" <<'Y'
listen: {udp: ["127.0.0.1:5514"]}
rule_files: ["rules.yaml"]
patterns:
  - name: gitea
    program: gitea
    regex: '^Failed authentication attempt for (?P<user>\S*) from (?P<ip>[0-9A-Fa-f.:]+):(?P<port>\d+):'
    reason: gitea_auth_failed
Y
cat > "$tmp/rules.yaml" <<'Y'
rules:
  - name: gitea-bruteforce
    match: { kind: [auth_failure] }
    key: ip
    window: 10m
    threshold: 3
    ban: { duration: 1h }
Y
for i in 0 1 2; do
  echo "Nov 28 10:0$i:00 git gitea[1]: Failed authentication attempt for u$i from 192.0.2.50:100$i: bad password"
done > "$tmp/g.log"
"$bin" check -c "$tmp/authwall.yaml" --jsonl "$tmp/g.log" > "$tmp/g.jsonl"
python3 - "$tmp/g.jsonl" <<'P' || fail "bans in jsonl: $(cat "$tmp/g.jsonl")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
events = [r for r in rows if "decision" not in r]
bans = [r for r in rows if "decision" in r]
assert len(events) == 3 and all(e["source"] == "custom" for e in events), rows
assert len(bans) == 1, rows
b = bans[0]
assert (b["decision"], b["rule"], b["target"], b["duration_seconds"]) == ("ban", "gitea-bruteforce", "192.0.2.50", 3600), b
assert b["time"].endswith("T10:02:00Z"), b   # the log's time, not the wall clock
P
out=$("$bin" check -c "$tmp/authwall.yaml" "$tmp/g.log")
grep -q '^Would-be bans: *1 ' <<<"$out" || fail "bans summary: $out"
grep -q 'ban 192.0.2.50 .* for 1h .*rule gitea-bruteforce' <<<"$out" || fail "ban line: $out"
# spread over more than the window: no ban
for i in 0 2 4; do
  echo "Nov 28 1$i:00:00 git gitea[1]: Failed authentication attempt for u from 192.0.2.51:1000: bad password"
done > "$tmp/h.log"
grep -q '^Would-be bans: *0 ' <<<"$("$bin" check -c "$tmp/authwall.yaml" "$tmp/h.log")" || fail "log time windows"

# --- errors and exit codes -------------------------------------------------------------------
set +e
err=$("$bin" check "$tmp/missing.log" 2>&1 >/dev/null); rc=$?
[ "$rc" = 1 ] || fail "missing file must exit 1, got $rc"
grep -q "cannot open $tmp/missing.log" <<<"$err" || fail "missing file message: $err"
echo "rule_files: []" > "$tmp/bad.yaml"
"$bin" check -c "$tmp/bad.yaml" "$tmp/a.log" >/dev/null 2>&1; rc=$?
[ "$rc" = 2 ] || fail "bad configuration must exit 2, got $rc"
"$bin" check --no-such-flag >/dev/null 2>&1; rc=$?
[ "$rc" = 2 ] || fail "usage error must exit 2, got $rc"
set -e

# --- memory does not grow with the input -----------------------------------------------------
python3 - "$bin" <<'P' || fail "memory grows with input"
import resource, subprocess, sys
line = (b'Nov 28 10:00:00 mx dovecot: stats: {"event":"login_aborted","fields":'
        b'{"remote_ip":"192.0.2.%d","reason":"odd_%s"}}\n')
def letters(i):  # a new word per line: digits would be folded into one shape
    s = b""
    while True:
        s += bytes([97 + i % 26]); i //= 26
        if i == 0: return s
def peak(lines):
    p = subprocess.Popen([sys.argv[1], "check", "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    chunk = b"".join(line % (i % 250, letters(i)) for i in range(10000))
    for _ in range(lines // 10000):
        p.stdin.write(chunk)
    p.stdin.close()
    assert p.wait() == 0
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, max over children so far
small = peak(20000)
large = peak(1000000)   # 50x more lines, each a new unrecognized shape candidate
print(f"peak RSS: {small} KiB for 20k lines, {large} KiB for 1M lines")
assert large - small < 8 * 1024, (small, large)
P

echo "check_command_test: OK"
