#!/usr/bin/env bash
# `max_tracked_keys` bounds what one rule remembers: 3,000 distinct addresses fail once each
# against a cap of 1,024, so the daemon evicts (and counts) instead of growing, stays up, and
# still bans a real attacker arriving afterwards.
source "$(dirname "$0")/daemon_lib.sh"

aw_write_config
echo "max_tracked_keys: 1024" >> "$AW_CONFIG"
aw_start_daemon

python3 - "$AW_PORT" <<'PY' || fail "sender failed"
import socket, sys
port = int(sys.argv[1])
def sasl(ip, i):
    return ("<22>Nov 28 10:00:%02d mx1 postfix/submission/smtpd[%d]: warning: unknown[%s]: "
            "SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=u%d" % (i % 60, 100 + i, ip, i)).encode()
s = socket.create_connection(("127.0.0.1", port))
frames = []
for i in range(3000):
    m = sasl("198.18.%d.%d" % (i // 250, 1 + i % 250), i)
    frames.append(str(len(m)).encode() + b" " + m)
for i in range(5):  # the attacker, after the flood
    m = sasl("192.0.2.80", 5000 + i)
    frames.append(str(len(m)).encode() + b" " + m)
s.sendall(b"".join(frames))
s.close()
PY

aw_wait_banned 192.0.2.80 mail-auth-bruteforce
pass "attacker banned after 3,000 one-off addresses"
aw_wait_metric_ge 'authwall_rule_evictions_total' 1
tracked=$(aw_metric 'authwall_tracked_keys')
[ "${tracked%.*}" -le 1024 ] || fail "authwall_tracked_keys is $tracked, above max_tracked_keys 1024"
pass "tracked keys $tracked <= 1024, evictions $(aw_metric 'authwall_rule_evictions_total')"
aw_alive || fail "authwall died"
