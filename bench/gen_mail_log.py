#!/usr/bin/env python3
"""Deterministic, realistic Postfix + Dovecot mail log for benchmarks (`bench/check_throughput.sh`).

Same seed and line count -> byte-identical output. The mix imitates a small provider's
/var/log/mail.log (RFC 3164 file form, as rsyslog writes it): about 80% ordinary traffic
(connect/disconnect, cleanup/qmgr/smtp delivery, LMTP delivery, Dovecot logins and logouts,
authenticated submission) and about 20% failure lines (Postfix SASL failures in several
versions' forms, auth=0/N summaries, postscreen, NOQUEUE rejects, pipelining, lost connection
after AUTH, Dovecot login-process and auth-process failures, scanners). Clients are IPv4 and
IPv6; a minority of attacking addresses produce most failures, as in real attacks.

Usage: gen_mail_log.py [--lines N] [--seed S] [--out FILE]
"""
import argparse
import random
import sys

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
HEX = "0123456789ABCDEF"


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        r = self.r
        self.hosts = ["mx1", "mx2"]
        self.users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
                      "ivan", "judy", "mallory", "oscar", "peggy", "trent", "victor", "walter"]
        self.domains = ["example.org", "example.net", "example.com", "mail.example.de"]
        self.guess_users = ["admin", "info", "test", "sales", "support", "office", "contact",
                            "webmaster", "postmaster", "user", "root", "backup", "marketing"]
        # Legitimate clients and peers.
        self.good4 = ["198.51.100.%d" % i for i in range(1, 200)] + \
                     ["203.0.113.%d" % i for i in range(1, 120)]
        self.good6 = ["2001:db8:100::%x" % i for i in range(1, 80)]
        # Attackers: a few heavy hitters, many light ones, some rotating inside a /64.
        self.bad4 = ["192.0.2.%d" % i for i in range(1, 255)] + \
                    ["%d.%d.%d.%d" % (r.randint(11, 223), r.randint(0, 255), r.randint(0, 255),
                                      r.randint(1, 254)) for _ in range(3000)]
        self.bad6 = ["2001:db8:bad:%x::%x" % (r.randint(0, 15), r.randint(1, 0xffff))
                     for _ in range(600)]
        self.t = 0  # seconds since midnight Nov 28
        self.pid = {"smtpd": 4000, "postscreen": 900, "submission": 5000, "cleanup": 3000,
                    "qmgr": 812, "smtp": 6000, "lmtp": 7000, "dovecot": 1200}

    # --- helpers ----------------------------------------------------------------------------
    def stamp(self):
        self.t += self.r.choice((0, 0, 0, 0, 1)) if self.r.random() < 0.9 else self.r.randint(1, 3)
        s = self.t % 86400
        return "Nov 28 %02d:%02d:%02d %s" % (s // 3600, (s // 60) % 60, s % 60,
                                              self.r.choice(self.hosts))

    def qid(self):
        return "".join(self.r.choice(HEX) for _ in range(10))

    def session(self):
        return "".join(self.r.choice(B64) for _ in range(16))

    def p(self, name):
        self.pid[name] += self.r.randint(0, 2)
        if self.pid[name] > 65000:
            self.pid[name] = 1000
        return self.pid[name]

    def good_ip(self):
        return self.r.choice(self.good6) if self.r.random() < 0.25 else self.r.choice(self.good4)

    def bad_ip(self):
        r = self.r
        if r.random() < 0.3:
            return r.choice(self.bad6)
        # heavy hitters first
        return self.bad4[int(len(self.bad4) * (r.random() ** 3))]

    def addr(self):
        return "%s@%s" % (self.r.choice(self.users), self.r.choice(self.domains))

    def client(self, ip):
        if self.r.random() < 0.5:
            return "unknown[%s]" % ip
        return "host-%d.example.net[%s]" % (self.r.randint(1, 9999), ip)

    # --- ordinary traffic -------------------------------------------------------------------
    def ordinary(self):
        r = self.r
        x = r.random()
        ip = self.good_ip()
        if x < 0.12:
            return "%s postfix/smtpd[%d]: connect from %s" % (self.stamp(), self.p("smtpd"), self.client(ip))
        if x < 0.22:
            return "%s postfix/smtpd[%d]: disconnect from %s ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5" % (
                self.stamp(), self.p("smtpd"), self.client(ip))
        if x < 0.30:
            return "%s postfix/smtpd[%d]: %s: client=%s" % (self.stamp(), self.p("smtpd"), self.qid(), self.client(ip))
        if x < 0.38:
            return "%s postfix/cleanup[%d]: %s: message-id=<%s.%d@%s>" % (
                self.stamp(), self.p("cleanup"), self.qid(), self.session(), r.randint(1, 99999), r.choice(self.domains))
        if x < 0.47:
            return "%s postfix/qmgr[%d]: %s: from=<%s>, size=%d, nrcpt=1 (queue active)" % (
                self.stamp(), self.pid["qmgr"], self.qid(), self.addr(), r.randint(800, 90000))
        if x < 0.54:
            return "%s postfix/qmgr[%d]: %s: removed" % (self.stamp(), self.pid["qmgr"], self.qid())
        if x < 0.62:
            return ("%s postfix/smtp[%d]: %s: to=<%s>, relay=mx.%s[%s]:25, delay=%.1f, delays=0.1/0/0.3/0.2, "
                    "dsn=2.0.0, status=sent (250 2.0.0 OK  %d %s - gsmtp)") % (
                self.stamp(), self.p("smtp"), self.qid(), self.addr(), r.choice(self.domains), ip,
                r.random() * 3, r.randint(1000000, 9999999), self.session())
        if x < 0.69:
            return "%s postfix/lmtp[%d]: %s: to=<%s>, relay=mail.example.org[private/dovecot-lmtp], delay=0.2, delays=0.1/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <%s> %s Saved)" % (
                self.stamp(), self.p("lmtp"), self.qid(), self.addr(), self.addr(), self.session())
        if x < 0.75:
            u = self.addr()
            return "%s dovecot: lmtp(%s)<%d><%s>: msgid=<%s@%s>: saved mail to INBOX" % (
                self.stamp(), u, self.p("dovecot"), self.session(), self.session(), r.choice(self.domains))
        if x < 0.83:
            return ("%s dovecot: imap(%s)<%d><%s>: Logged out in=%d out=%d deleted=0 expunged=0 trashed=0 "
                    "hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0") % (
                self.stamp(), self.addr(), self.p("dovecot"), self.session(), r.randint(50, 9000), r.randint(300, 900000))
        if x < 0.90:
            svc = r.choice(("imap", "imap", "pop3", "submission"))
            return "%s dovecot: %s-login: Login: user=<%s>, method=PLAIN, rip=%s, lip=198.51.100.250, mpid=%d, TLS, session=<%s>" % (
                self.stamp(), svc, self.addr(), ip, self.p("dovecot"), self.session())
        if x < 0.95:
            return "%s postfix/submission/smtpd[%d]: %s: client=%s, sasl_method=PLAIN, sasl_username=%s" % (
                self.stamp(), self.p("submission"), self.qid(), self.client(ip), self.addr())
        if x < 0.98:
            return "%s postfix/postscreen[%d]: CONNECT from [%s]:%d to [198.51.100.250]:25" % (
                self.stamp(), self.pid["postscreen"], ip, r.randint(1024, 65535))
        return "%s postfix/postscreen[%d]: PASS OLD [%s]:%d" % (
            self.stamp(), self.pid["postscreen"], ip, r.randint(1024, 65535))

    # --- failures -----------------------------------------------------------------------------
    def failure(self):
        r = self.r
        x = r.random()
        ip = self.bad_ip()
        svc = r.choice(("smtpd", "smtpd", "submission/smtpd", "submissions/smtpd", "submissions-proxyprotocol/smtpd"))
        if x < 0.22:
            mech = r.choice(("LOGIN", "PLAIN", "login", "CRAM-MD5"))
            tail = r.choice(("UGFzc3dvcmQ6", "authentication failure", "", "(reason unavailable)"))
            user = ", sasl_username=%s" % r.choice(self.guess_users) if r.random() < 0.5 else ""
            port = ":%d" % r.randint(1024, 65535) if r.random() < 0.3 else ""
            return "%s postfix/%s[%d]: warning: %s%s: SASL %s authentication failed: %s%s" % (
                self.stamp(), svc, self.p("smtpd"), self.client(ip), port, mech, tail, user)
        if x < 0.34:
            return "%s postfix/%s[%d]: disconnect from %s ehlo=1 auth=0/1 rset=1 quit=1 commands=3/4" % (
                self.stamp(), svc, self.p("smtpd"), self.client(ip))
        if x < 0.40:
            return "%s postfix/smtpd[%d]: lost connection after AUTH from %s" % (
                self.stamp(), self.p("smtpd"), self.client(ip))
        if x < 0.46:
            return "%s postfix/postscreen[%d]: PREGREET 14 after 0.08 from [%s]:%d: EHLO ylmf-pc\\r\\n" % (
                self.stamp(), self.pid["postscreen"], ip, r.randint(1024, 65535))
        if x < 0.51:
            return "%s postfix/postscreen[%d]: DNSBL rank %d for [%s]:%d" % (
                self.stamp(), self.pid["postscreen"], r.randint(2, 8), ip, r.randint(1024, 65535))
        if x < 0.58:
            return ("%s postfix/smtpd[%d]: NOQUEUE: reject: RCPT from %s: 554 5.7.1 <%s>: Relay access denied; "
                    "from=<%s> to=<%s> proto=ESMTP helo=<%s>") % (
                self.stamp(), self.p("smtpd"), self.client(ip), "victim@example.com", "spam@example.biz",
                "victim@example.com", r.choice(("WIN-1234", "ylmf-pc", "[%s]" % ip)))
        if x < 0.62:
            return "%s postfix/smtpd[%d]: improper command pipelining after CONNECT from %s: EHLO x\\r\\nMAIL FROM:<>\\r\\n" % (
                self.stamp(), self.p("smtpd"), self.client(ip))
        if x < 0.80:
            svc = r.choice(("imap", "imap", "pop3", "submission", "managesieve"))
            n = r.choice((1, 1, 1, 2, 3))
            how = r.choice(("Disconnected", "Aborted login", "Disconnected: Inactivity", "Client has quit the connection"))
            return ("%s dovecot: %s-login: %s (auth failed, %d attempts in %d secs): user=<%s>, method=PLAIN, "
                    "rip=%s, lip=198.51.100.250, TLS, session=<%s>") % (
                self.stamp(), svc, how, n, r.randint(1, 30), r.choice(self.guess_users), ip, self.session())
        if x < 0.88:
            what = r.choice(("unknown user", "Password mismatch"))
            return "%s dovecot: auth: passwd-file(%s,%s): %s" % (self.stamp(), r.choice(self.guess_users), ip, what)
        if x < 0.92:
            return "%s dovecot: auth-worker(%d): pam(%s,%s): pam_authenticate() failed: Authentication failure (password mismatch?)" % (
                self.stamp(), self.p("dovecot"), r.choice(self.guess_users), ip)
        svc = r.choice(("imap", "pop3"))
        return "%s dovecot: %s-login: Disconnected (no auth attempts in %d secs): user=<>, rip=%s, lip=198.51.100.250, TLS handshaking: Connection closed, session=<%s>" % (
            self.stamp(), svc, r.randint(0, 10), ip, self.session())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_200_000)
    ap.add_argument("--seed", type=int, default=20261128)
    ap.add_argument("--failure-share", type=float, default=0.20)
    ap.add_argument("--out", default="-")
    a = ap.parse_args()
    g = Gen(a.seed)
    out = sys.stdout if a.out == "-" else open(a.out, "w", encoding="ascii")
    buf = []
    for i in range(a.lines):
        buf.append(g.failure() if g.r.random() < a.failure_share else g.ordinary())
        if len(buf) >= 10000:
            out.write("\n".join(buf) + "\n")
            buf.clear()
    if buf:
        out.write("\n".join(buf) + "\n")
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
