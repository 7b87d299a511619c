#!/usr/bin/env bash
# End-to-end: real rsyslogd instances forward Postfix/Dovecot lines to `authwall serve --dry-run`
# on loopback, in each form rsyslog users configure; the attackers must end up in
# `authwall bans --json`, the legitimate client must not, /metrics must count it all and pass
# `promtool check metrics`.
#   rsyslog_omfwd_tcp_octet_counted       RSYSLOG_SyslogProtocol23Format, APP-NAME "postfix"
#   rsyslog_omfwd_tcp_octet_counted_slash the same with parser.permitSlashInProgramName="on"
#   rsyslog_omfwd_tcp_lf                  RSYSLOG_ForwardFormat, LF framing
#   rsyslog_omfwd_udp_default             the default template (TAG cut to 32 characters)
source "$(dirname "$0")/daemon_lib.sh"

aw_write_config
aw_start_daemon

submission_sasl() {  # submission_sasl TAG ADDR N
  for i in $(seq "$3"); do
    aw_log "$1" $((4000 + i)) "warning: unknown[$2]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=user$i@example.org"
  done
}
legit_traffic() {
  aw_log postfix/smtpd 3001 "connect from mail.example.net[203.0.113.5]"
  aw_log postfix/smtpd 3001 "disconnect from mail.example.net[203.0.113.5] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
  aw_log dovecot 3002 "imap-login: Login: user=<alice@example.org>, method=PLAIN, rip=203.0.113.5, lip=10.0.0.1, mpid=3003, TLS, session=<Qm9iTG9naW4xMjM0>"
}

# --- TCP, octet-counted RFC 5424 (APP-NAME is only "postfix" without permitSlashInProgramName)
aw_start_rsyslog octet "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$AW_PORT\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\")"
legit_traffic
submission_sasl postfix/submission/smtpd 192.0.2.10 5
# IPv6 attackers rotate inside their /64: one ban for the prefix.
for i in 1 2 3 4 5; do
  aw_log postfix/smtpd $((5000 + i)) "warning: unknown[2001:db8:77::$i]: SASL PLAIN authentication failed: (reason unavailable), sasl_username=admin"
done
aw_wait_banned 192.0.2.10 mail-auth-bruteforce
aw_wait_banned 2001:db8:77::/64 mail-auth-bruteforce
pass "rsyslog_omfwd_tcp_octet_counted: IPv4 and IPv6 /64 banned"

# --- the same with permitSlashInProgramName (APP-NAME postfix/submission/smtpd)
aw_start_rsyslog slash "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$AW_PORT\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\")" 'parser.permitSlashInProgramName="on"'
submission_sasl postfix/submission/smtpd 192.0.2.11 5
aw_wait_banned 192.0.2.11 mail-auth-bruteforce
pass "rsyslog_omfwd_tcp_octet_counted_slash: banned"

# --- TCP with LF framing, Dovecot login failures (each line one attempt, its own session)
aw_start_rsyslog lf "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$AW_PORT\" protocol=\"tcp\" template=\"RSYSLOG_ForwardFormat\")"
for i in 1 2 3 4 5; do
  aw_log dovecot $((6000 + i)) "imap-login: Disconnected: Connection closed (auth failed, 1 attempts in 2 secs): user=<bob$i>, method=PLAIN, rip=192.0.2.12, lip=10.0.0.1, TLS, session=<U2Vzc2lvbk5yMDAw$i>"
done
aw_wait_banned 192.0.2.12 mail-auth-bruteforce
pass "rsyslog_omfwd_tcp_lf: banned"

# --- UDP with the default template: the PROXY-protocol service's TAG arrives cut to
# "postfix/submissions-proxyprotoco" without [pid]:, and must still be recognised.
aw_start_rsyslog udp "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$AW_PORT\" protocol=\"udp\")"
submission_sasl postfix/submissions-proxyprotocol/smtpd 192.0.2.13 5
aw_wait_banned 192.0.2.13 mail-auth-bruteforce
pass "rsyslog_omfwd_udp_default: banned"

aw_not_banned 203.0.113.5
pass "the legitimate client is not banned"

# --- what /metrics says about it
scrape=$AW_TMP/scrape.txt
aw_scrape > "$scrape"
promtool check metrics < "$scrape" || fail "promtool check metrics found problems"
pass "promtool check metrics: clean"
m() { awk -v m="$1" '$1 == m {v = $2} END {print (v == "" ? 0 : v)}' "$scrape"; }
[ "$(m 'authwall_messages_received_total{transport="tcp"}')" -ge 23 ] || fail "tcp messages: $(m 'authwall_messages_received_total{transport="tcp"}')"
[ "$(m 'authwall_messages_received_total{transport="udp"}')" -ge 5 ] || fail "udp messages: $(m 'authwall_messages_received_total{transport="udp"}')"
[ "$(m 'authwall_events_total{kind="auth_failure",source="postfix"}')" -ge 20 ] || fail "postfix failures: $(m 'authwall_events_total{kind="auth_failure",source="postfix"}')"
[ "$(m 'authwall_events_total{kind="auth_failure",source="dovecot"}')" -ge 5 ] || fail "dovecot failures"
[ "$(m 'authwall_events_total{kind="auth_success",source="dovecot"}')" -ge 1 ] || fail "dovecot success not seen"
[ "$(m 'authwall_bans_total{rule="mail-auth-bruteforce"}')" = 5 ] || fail "bans_total: $(m 'authwall_bans_total{rule="mail-auth-bruteforce"}')"
[ "$(m authwall_bans_active)" = 5 ] || fail "bans_active: $(m authwall_bans_active)"
[ "$(m authwall_ban_latency_seconds_count)" = 5 ] || fail "latency histogram count: $(m authwall_ban_latency_seconds_count)"
[ "$(m 'authwall_parse_errors_total{reason="bad_header"}')" = 0 ] || fail "rsyslog's output produced parse errors"
[ "$(m 'authwall_unrecognized_lines_total{source="postfix"}')" = 0 ] || fail "unrecognized postfix lines"
[ "$(m authwall_firewall_errors_total)" = 0 ] || fail "firewall errors"
# Never an address or a user name as a label value.
if grep -v '^#' "$scrape" | grep -E '192\.0\.2\.|2001:db8|203\.0\.113|user[0-9]|bob|alice'; then
  fail "an address or user name appears in /metrics"
fi
pass "metrics count messages, events and bans; no address or user in labels"

# /api/v1/bans serves the same list as the control socket.
curl -sf "http://127.0.0.1:$AW_METRICS_PORT/api/v1/bans" | python3 -c '
import json, sys
bans = json.load(sys.stdin)
assert len(bans) == 5, bans
assert all({"target", "rule", "expires"} <= set(b) for b in bans), bans' || fail "/api/v1/bans"
pass "/api/v1/bans lists the bans"

aw_stop_daemon
[ "$AW_EXIT" = 0 ] || fail "authwall exited with $AW_EXIT after SIGTERM"
out=$("$AW_BIN" bans -c "$AW_CONFIG" 2>&1) && fail "bans succeeded without a daemon"
echo "$out" | grep -q "authwall is not running (no control socket at $AW_SOCKET)" || fail "unexpected error: $out"
pass "bans without a daemon: clear error"
echo "all rsyslog end-to-end checks passed"
