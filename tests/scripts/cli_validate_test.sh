#!/usr/bin/env bash
# `authwall version` and `authwall validate`: exit codes and file:line:col error reports.
set -euo pipefail
bin=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$bin" version | grep -q '^authwall [0-9]' || fail "version output"

out=$("$bin" validate -c "$src/config/authwall.yaml") || fail "shipped config must validate"
echo "$out" | grep -q 'OK (1 rule file, 3 rules' || fail "validate summary: $out"

cat > "$tmp/authwall.yaml" <<'Y'
listen: {udp: ["1.2.3.4"]}
rule_files: ["rules.yaml"]
patterns:
  - program: foo
    regex: "(?P<x>bad"
Y
cat > "$tmp/rules.yaml" <<'Y'
rules:
  - name: x
    match: {kind: [auth_failure]}
    window: 10q
    threshold: 5
    ban: {duration: 1h}
    colour: red
Y
set +e
err=$("$bin" validate -c "$tmp/authwall.yaml" 2>&1 >/dev/null)
rc=$?
set -e
[ "$rc" = 2 ] || fail "invalid config must exit 2, got $rc"
for want in "$tmp/authwall.yaml:1:15: listen.udp" "$tmp/rules.yaml:7:5: unknown key 'colour'" \
            "$tmp/rules.yaml:4:13: window must be a duration" "$tmp/authwall.yaml:5:12: pattern: invalid regex"; do
  grep -qF "$want" <<<"$err" || fail "missing error '$want' in: $err"
done

set +e
"$bin" validate -c "$tmp/missing.yaml" 2>"$tmp/err"; rc=$?
"$bin" frobnicate 2>/dev/null; rc2=$?
set -e
[ "$rc" = 2 ] || fail "missing file must exit 2"
grep -q "missing.yaml: cannot read" "$tmp/err" || fail "missing file message: $(cat "$tmp/err")"
[ "$rc2" = 2 ] || fail "unknown subcommand must exit 2, got $rc2"
echo "1 passed, 0 failed"
