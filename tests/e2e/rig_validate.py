#!/usr/bin/env python3
"""Validates the e2e mail rig without authwall: rsyslog forwards to a small octet-counting TCP
receiver on the mail host, the rig runs a set of logins for auth_verbose = yes and then no, and
this checks that the log lines authwall depends on really arrive, in the form it receives them.

  python3 tests/e2e/rig_validate.py [--save-golden DIR]

--save-golden writes what was received (RFC 5424, one message per line) to
DIR/real-mail-rig.log and rsyslog's own file copy (RSYSLOG_FileFormat, the /var/log/mail.log
form) to DIR/real-mail-rig-file.log. Exit 0 when every expectation holds, 1 otherwise.
"""

import argparse
import os
import re
import shutil
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rig as R            # noqa: E402
import scenarios as S      # noqa: E402


INJECT_IP = "192.0.2.66"
INJECT_USER = "x rip=%s, lip=10.77.0.1 unknown[%s]" % (INJECT_IP, INJECT_IP)
# Closes Dovecot's user=<...> field early and forges the fields that follow it.
INJECT_USER2 = "a>, method=PLAIN, rip=%s, lip=10.77.0.1, session=<x" % INJECT_IP


def phase_addresses(phase):
    """Distinct attacker addresses per phase (Dovecot's penalty is per address, per /48 for v6)."""
    base = 30 if phase == "yes" else 60
    v4 = {name: "10.77.0.%d" % (base + i) for i, name in enumerate(
        ["smtp_bf", "smtps_login", "haproxy", "imap_bf", "imaps", "pop3", "pop3s", "sieve",
         "mistype_smtp", "mistype_imap", "smtp_abrupt", "scanner", "relay", "http_on_25",
         "pipelining", "inject_imap", "inject_smtp", "inject_imap2"])}
    n = 0x10 if phase == "yes" else 0x20
    v6 = {"smtp_v6": "2001:db8:%x::a" % n, "imap_v6": "2001:db8:%x::b" % (n + 1)}
    return v4, v6


def run_phase(rig, phase):
    v4, v6 = phase_addresses(phase)
    for a in list(v4.values()) + list(v6.values()):
        rig.add_source(a)
    out = {}

    def act(name, fn):
        try:
            out[name] = fn()
        except Exception as e:  # reported below as a failed expectation
            out[name] = e

    jobs = {
        "smtp_bf": lambda: S.smtp_bruteforce(rig, v4["smtp_bf"], attempts=3),
        "smtps_login": lambda: S.swaks_auth(rig, v4["smtps_login"], "alice", "wrong", port=465,
                                            mode="tls-on-connect", mech="LOGIN"),
        "haproxy": lambda: S.haproxy_bruteforce(rig, v4["haproxy"], attempts=2),
        "imap_bf": lambda: S.imap_bruteforce(rig, v4["imap_bf"], attempts=2),
        "imaps": lambda: S.client_login(rig, "imap", v4["imaps"], 993, ["nosuchuser"], ["x"],
                                        tls=True, abrupt=True),
        "pop3": lambda: S.client_login(rig, "pop3", v4["pop3"], 110, ["alice"], ["x"]),
        "pop3s": lambda: S.client_login(rig, "pop3", v4["pop3s"], 995, ["bob"], ["x"], tls=True,
                                        abrupt=True),
        "sieve": lambda: S.client_login(rig, "sieve", v4["sieve"], 4190, ["bob"], ["x"]),
        "mistype_smtp": lambda: S.mistype_then_login(rig, v4["mistype_smtp"], proto="smtp"),
        "mistype_imap": lambda: S.mistype_then_login(rig, v4["mistype_imap"], proto="imap"),
        "smtp_abrupt": lambda: S.client_login(rig, "smtp", v4["smtp_abrupt"], 587, ["alice"], ["x"],
                                              starttls=True, abrupt=True, mech="LOGIN"),
        "smtp_v6": lambda: S.swaks_auth(rig, v6["smtp_v6"], "alice", "wrong", dst=R.MAIL_V6),
        "imap_v6": lambda: S.client_login(rig, "imap", v6["imap_v6"], 143, ["admin"], ["x"],
                                          dst=R.MAIL_V6),
        "scanner": lambda: S.probe(rig, v4["scanner"], timeout=2),
        "relay": lambda: S.smtp_raw(rig, v4["relay"], ["EHLO relay.example", "MAIL FROM:<a@relay.example>",
                                                       "RCPT TO:<victim@example.net>", "QUIT"]),
        "http_on_25": lambda: S.smtp_raw(rig, v4["http_on_25"], ["GET / HTTP/1.1"]),
        "pipelining": lambda: S.smtp_raw(rig, v4["pipelining"], ["EHLO bot.example",
                                                                 "MAIL FROM:<spam@bot.example>",
                                                                 "RCPT TO:<x@example.net>", "QUIT"],
                                         pipeline=True),
        # Attacker-controlled text that imitates the client-address fields. authwall must take the
        # address only from where the format puts it.
        "inject_imap": lambda: S.client_login(rig, "imap", v4["inject_imap"], 143,
                                              [INJECT_USER], ["x"]),
        "inject_imap2": lambda: S.client_login(rig, "imap", v4["inject_imap2"], 143,
                                               [INJECT_USER2], ["x"]),
        "inject_smtp": lambda: S.client_login(rig, "smtp", v4["inject_smtp"], 587, [INJECT_USER],
                                              ["x"], starttls=True, ehlo="unknown[%s]" % INJECT_IP),
    }
    threads = [threading.Thread(target=act, args=(n, f), daemon=True) for n, f in jobs.items()]
    for t in threads:
        t.start()
    # A client that skips the PROXY header on the PROXY-protocol service (what a misconfigured
    # proxy does): Postfix then names the proxy's own address.
    rig.mail(["python3", R.MAILCLIENT, "login", "smtp", "--src", R.PROXY_ADDR, "--dst", R.PROXY_ADDR,
              "--port", "10465", "--tls", "--user", "x", "--password", "y", "--timeout", "10"],
             check=False)
    for t in threads:
        t.join()
    return v4, v6, out


def expectations(phase, v4, v6):
    """(description, regex over the received RFC 5424 lines, should_match)."""
    e = re.escape
    verbose = phase == "yes"
    x = [
        ("SASL failure on 587 under its full service name",
         r"^<20>1 \S+ mail postfix/submission/smtpd \d+ - -  warning: unknown\[%s\]: SASL PLAIN "
         r"authentication failed: \(reason unavailable\), sasl_username=alice$" % e(v4["smtp_bf"]), True),
        ("Postfix session summary with auth=0/1 on 587",
         r"postfix/submission/smtpd \d+ - -  disconnect from unknown\[%s\] ehlo=2 starttls=1 auth=0/1"
         % e(v4["smtp_bf"]), True),
        ("SASL LOGIN failure on 465 (with Dovecot SASL the reason is always unavailable)",
         r"postfix/smtps/smtpd \d+ - -  warning: unknown\[%s\]: SASL LOGIN authentication failed: "
         r"\(reason unavailable\), sasl_username=alice$" % e(v4["smtps_login"]), True),
        ("PROXY-protocol service names the real client from the PROXY header",
         r"postfix/submissions-proxyprotocol/smtpd \d+ - -  warning: unknown\[%s\]: SASL PLAIN "
         r"authentication failed" % e(v4["haproxy"]), True),
        ("PROXY-protocol service connect line shows the PROXY header's client",
         r"postfix/submissions-proxyprotocol/smtpd \d+ - -  connect from unknown\[%s\]"
         % e(v4["haproxy"]), True),
        ("missing PROXY header is reported",
         r"postfix/submissions-proxyprotocol/smtpd \d+ - -  warning: haproxy read: "
         r"unrecognized protocol header", True),
        ("missing PROXY header: Postfix then shows the proxy's own address",
         r"postfix/submissions-proxyprotocol/smtpd \d+ - -  connect from unknown\[%s\]"
         % e(R.PROXY_ADDR), True),
        ("IMAP login failure (imap-login) with rip",
         r"dovecot - - -  imap-login: Disconnected: Aborted login by logging out "
         r"\(auth failed, 1 attempts in \d+ secs\): user=<alice>, method=PLAIN, rip=%s, "
         % e(v4["imap_bf"]), True),
        ("IMAPS abrupt disconnect after a failure",
         r"dovecot - - -  imap-login: Disconnected: Connection closed \(auth failed, 1 attempts "
         r"in \d+ secs\): user=<nosuchuser>, method=PLAIN, rip=%s, lip=%s, TLS"
         % (e(v4["imaps"]), e(R.MAIL_V4)), True),
        ("POP3 login failure",
         r"dovecot - - -  pop3-login: Disconnected: .*\(auth failed, 1 attempts in \d+ secs\): "
         r"user=<alice>, method=PLAIN, rip=%s, " % e(v4["pop3"]), True),
        ("POP3S login failure",
         r"dovecot - - -  pop3-login: Disconnected: .*\(auth failed, 1 attempts in \d+ secs\): "
         r"user=<bob>, method=PLAIN, rip=%s, .*TLS" % e(v4["pop3s"]), True),
        ("ManageSieve login failure",
         r"dovecot - - -  managesieve-login: Disconnected: .*\(auth failed, 1 attempts in \d+ secs\): "
         r"user=<bob>, method=PLAIN, rip=%s, " % e(v4["sieve"]), True),
        ("IPv6 SASL failure",
         r"postfix/submission/smtpd \d+ - -  warning: unknown\[%s\]: SASL PLAIN authentication "
         r"failed" % e(v6["smtp_v6"]), True),
        ("IPv6 IMAP failure",
         r"imap-login: Disconnected: .*\(auth failed, 1 attempts in \d+ secs\): user=<admin>, "
         r"method=PLAIN, rip=%s, lip=%s" % (e(v6["imap_v6"]), e(R.MAIL_V6)), True),
        ("mistyping user: one SASL failure then a successful session",
         r"postfix/submission/smtpd \d+ - -  disconnect from unknown\[%s\] ehlo=2 starttls=1 auth=1 "
         % e(v4["mistype_smtp"]), True),
        ("mistyping user: successful IMAP login",
         r"imap-login: Login: user=<carol>, method=PLAIN, rip=%s, " % e(v4["mistype_imap"]), True),
        ("abrupt disconnect after a failed AUTH",
         r"postfix/submission/smtpd \d+ - -  lost connection after AUTH from unknown\[%s\]"
         % e(v4["smtp_abrupt"]), True),
        ("a port scanner leaves no-auth disconnects",
         r"imap-login: Disconnected: Connection closed \(.*\): user=<>, rip=%s, "
         % e(v4["scanner"]), True),
        ("relay attempt on 25 is rejected",
         r"postfix/smtpd \d+ - -  NOQUEUE: reject: RCPT from unknown\[%s\]: 554 5\.7\.1 "
         r"<victim@example\.net>: Relay access denied" % e(v4["relay"]), True),
        ("HTTP request on port 25",
         r"postfix/smtpd \d+ - -  warning: non-SMTP command from unknown\[%s\]: GET / HTTP/1\.1"
         % e(v4["http_on_25"]), True),
        ("pipelining before the greeting reply",
         r"postfix/smtpd \d+ - -  improper command pipelining after EHLO from unknown\[%s\]"
         % e(v4["pipelining"]), True),
        ("injected user name on IMAP: the real rip follows the user field",
         r"imap-login: Disconnected: .*\(auth failed, 1 attempts in \d+ secs\): user=<%s>, "
         r"method=PLAIN, rip=%s, " % (e(INJECT_USER), e(v4["inject_imap"])), True),
        ("Dovecot does not escape '>' in user=<...>: a forged rip= comes before the real one",
         r"imap-login: Disconnected: .*\(auth failed, 1 attempts in \d+ secs\): user=<%s>, "
         r"method=PLAIN, rip=%s, lip=%s, session=<[^>]+>$" % (e(INJECT_USER2), e(v4["inject_imap2"]),
                                                             e(R.MAIL_V4)), True),
        ("injected user name and HELO on SMTP: Postfix names the real client first",
         r"postfix/submission/smtpd \d+ - -  warning: unknown\[%s\]: SASL PLAIN authentication "
         r"failed: \(reason unavailable\), sasl_username=%s$" % (e(v4["inject_smtp"]),
                                                                 e(INJECT_USER)), True),
        # auth_verbose decides whether the auth process logs each attempt at all.
        ("Dovecot auth-process line for Postfix SASL (no session)",
         r"dovecot - - -  auth: passwd-file\(alice,%s\): Password mismatch$" % e(v4["smtp_bf"]), verbose),
        ("Dovecot auth-process line for IMAP (with session)",
         r"dovecot - - -  auth: passwd-file\(alice,%s,<[^>]+>\): Password mismatch$"
         % e(v4["imap_bf"]), verbose),
        ("Dovecot auth-process unknown user",
         r"dovecot - - -  auth: passwd-file\(nosuchuser,%s,<[^>]+>\): unknown user$" % e(v4["imaps"]),
         verbose),
        ("Dovecot auth-process line through the PROXY service carries the real client",
         r"dovecot - - -  auth: passwd-file\(bob,%s\): Password mismatch$" % e(v4["haproxy"]), verbose),
    ]
    return x


def check_lines(lines, phase, v4, v6):
    failures = []
    for desc, rx, want in expectations(phase, v4, v6):
        rxc = re.compile(rx)
        found = any(rxc.search(l) for l in lines)
        if found != want:
            failures.append("[auth_verbose=%s] %s: expected %s of /%s/" % (
                phase, desc, "a line" if want else "no line", rx))
    # SASL failures must never be attributed to the proxy (the header worked for every session).
    rx = re.compile(r"unknown\[%s\]: SASL" % re.escape(R.PROXY_ADDR))
    if any(rx.search(l) for l in lines):
        failures.append("[auth_verbose=%s] a SASL failure was attributed to HAProxy's address" % phase)
    return failures


def wait_for(path, predicate, timeout):
    deadline = time.monotonic() + timeout
    while True:
        lines = open(path, errors="replace").read().splitlines() if os.path.exists(path) else []
        if predicate(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--save-golden", metavar="DIR")
    ap.add_argument("--syslog-port", type=int, default=25514)
    args = ap.parse_args()
    miss = R.missing_tools()
    if miss:
        print("rig_validate: missing %s; run tests/e2e/install-e2e-deps.sh" % ", ".join(miss))
        return 1
    R.cleanup_stale()
    R.install_signal_teardown()
    started = time.monotonic()
    rig = R.Rig(syslog_port=args.syslog_port, auth_verbose="yes")
    failures = []
    ok = False
    try:
        received = rig.path("received.log")
        rig.up(receiver_output=received)
        for phase in ("yes", "no"):
            if phase == "no":
                rig.set_auth_verbose("no")
            t = time.monotonic()
            before = len(open(received).read().splitlines())
            v4, v6, out = run_phase(rig, phase)
            for name, res in out.items():
                if isinstance(res, Exception):
                    failures.append("[auth_verbose=%s] %s raised %r" % (phase, name, res))
            # Logs trail the clients by a little (rsyslog queue); wait until every expected line
            # is there, or give up after 15 s.
            lines = wait_for(received, lambda ls: not check_lines(ls[before:], phase, v4, v6), 15)
            failures += check_lines(lines[before:], phase, v4, v6)
            R.log("phase auth_verbose=%s: %d lines in %.1fs" % (phase, len(lines) - before,
                                                               time.monotonic() - t))
        lines = open(received).read().splitlines()
        file_copy = rig.path("log", "mail.log")
        if args.save_golden:
            os.makedirs(args.save_golden, exist_ok=True)
            shutil.copy(received, os.path.join(args.save_golden, "real-mail-rig.log"))
            shutil.copy(file_copy, os.path.join(args.save_golden, "real-mail-rig-file.log"))
            R.log("saved %d received lines to %s" % (len(lines), args.save_golden))
        ok = not failures
    finally:
        if failures:
            for f in failures:
                print("FAIL " + f)
            print("logs kept in %s" % rig.run_dir)
        rig.down(keep=not ok)
    R.log("%s in %.1fs" % ("PASS" if ok else "FAIL", time.monotonic() - started))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
