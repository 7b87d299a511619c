#!/usr/bin/env python3
"""Small raw-socket mail client for the end-to-end rig.

Speaks just enough IMAP (LOGIN), POP3 (USER/PASS), ManageSieve (AUTHENTICATE "PLAIN") and SMTP
(EHLO, AUTH PLAIN/LOGIN, optionally behind a PROXY protocol v1 header) to make the servers log a
login attempt, from an explicit source address. It runs inside the attacker namespace
(`ip netns exec ...`), so it must not depend on anything but the standard library.

Every attempt prints one JSON object on stdout:
  {"proto": ..., "user": ..., "ok": true|false, "reply": "<last server line>", "seconds": ...}
Exit status: 0 if every attempt succeeded, 3 if at least one login was refused (the normal result
of an attack), 1 on a connection or protocol error.

`probe` mode answers "can SRC connect to DST:PORT within the timeout?" for several ports at once
and prints {"<port>": true|false, ...}; it never sends a byte, so the servers only log a
connect/disconnect (or nothing, when the packets are dropped).
"""

import argparse
import base64
import json
import socket
import ssl
import sys
import threading
import time


class ProtocolError(Exception):
    pass


def _tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the rig's certificates are self-signed
    return ctx


class Conn:
    def __init__(self, src, dst, port, timeout, tls_on_connect=False, proxy_header=None):
        family = socket.AF_INET6 if ":" in dst else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if src:
            self.sock.bind((src, 0))
        self.sock.connect((dst, port))
        if proxy_header:
            self.sock.sendall(proxy_header.encode() + b"\r\n")
        if tls_on_connect:
            self.starttls()
        self.buf = b""
        self.reply_at = None

    def login_reply(self, line):
        """Marks the login's final reply: its arrival time is what latency is measured from.
        Afterwards the client only logs out; a banned client's packets are dropped, so waiting
        for the logout reply is capped at 2 s."""
        self.reply_at = time.monotonic()
        self.sock.settimeout(2.0)
        return line

    def starttls(self):
        self.sock = _tls_context().wrap_socket(self.sock)
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ProtocolError("connection closed by server")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def imap_login(c, user, password, args):
    greeting = c.line()
    if not greeting.startswith("* OK"):
        raise ProtocolError("bad IMAP greeting: " + greeting)
    if args.starttls:
        c.send("s STARTTLS")
        while True:
            l = c.line()
            if l.startswith("s "):
                break
        if not l.startswith("s OK"):
            raise ProtocolError("STARTTLS refused: " + l)
        c.starttls()
    c.send("a LOGIN %s %s" % (_quote(user), _quote(password)))
    while True:
        l = c.line()
        if l.startswith("a "):
            break
    c.login_reply(l)
    ok = l.startswith("a OK")
    if not args.abrupt:
        c.send("z LOGOUT")
        try:
            while not c.line().startswith("z "):
                pass
        except (ProtocolError, OSError):
            pass
    return ok, l


def pop3_login(c, user, password, args):
    greeting = c.line()
    if not greeting.startswith("+OK"):
        raise ProtocolError("bad POP3 greeting: " + greeting)
    if args.starttls:
        c.send("STLS")
        l = c.line()
        if not l.startswith("+OK"):
            raise ProtocolError("STLS refused: " + l)
        c.starttls()
    c.send("USER " + user)
    l = c.line()
    if l.startswith("+OK"):
        c.send("PASS " + password)
        l = c.line()
    c.login_reply(l)
    ok = l.startswith("+OK")
    if not args.abrupt:
        c.send("QUIT")
        try:
            c.line()
        except (ProtocolError, OSError):
            pass
    return ok, l


def _sieve_response(c):
    """Reads until the OK/NO/BYE line ending a ManageSieve response."""
    while True:
        l = c.line()
        if l.startswith(("OK", "NO", "BYE")):
            return l


def sieve_login(c, user, password, args):
    _sieve_response(c)  # capability list ending in OK
    if args.starttls:
        c.send("STARTTLS")
        l = _sieve_response(c)
        if not l.startswith("OK"):
            raise ProtocolError("STARTTLS refused: " + l)
        c.starttls()
        _sieve_response(c)  # capabilities are re-sent after TLS
    token = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
    c.send('AUTHENTICATE "PLAIN" "%s"' % token)
    l = c.login_reply(_sieve_response(c))
    ok = l.startswith("OK")
    if not args.abrupt:
        c.send("LOGOUT")
        try:
            _sieve_response(c)
        except (ProtocolError, OSError):
            pass
    return ok, l


def _smtp_reply(c):
    while True:
        l = c.line()
        if len(l) < 4 or l[3] != "-":
            return l


def smtp_login(c, user, password, args):
    l = _smtp_reply(c)
    if not l.startswith("220"):
        raise ProtocolError("bad SMTP greeting: " + l)
    c.send("EHLO " + args.ehlo)
    _smtp_reply(c)
    if args.starttls:
        c.send("STARTTLS")
        l = _smtp_reply(c)
        if not l.startswith("220"):
            raise ProtocolError("STARTTLS refused: " + l)
        c.starttls()
        c.send("EHLO " + args.ehlo)
        _smtp_reply(c)
    mech = args.mech.upper()
    if mech == "PLAIN":
        token = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
        c.send("AUTH PLAIN " + token)
        l = _smtp_reply(c)
    else:
        c.send("AUTH LOGIN")
        l = _smtp_reply(c)
        if l.startswith("334"):
            c.send(base64.b64encode(user.encode()).decode())
            l = _smtp_reply(c)
        if l.startswith("334"):
            c.send(base64.b64encode(password.encode()).decode())
            l = _smtp_reply(c)
    c.login_reply(l)
    ok = l.startswith("235")
    if not args.abrupt:
        c.send("QUIT")
        try:
            _smtp_reply(c)
        except (ProtocolError, OSError):
            pass
    return ok, l


def smtp_raw(c, user, password, args):
    """Sends --send lines to an SMTP server (all at once with --pipeline, as spambots that do
    not wait for replies do; otherwise one reply per line) and reports the last reply."""
    l = _smtp_reply(c)
    if not l.startswith("220"):
        raise ProtocolError("bad SMTP greeting: " + l)
    if args.pipeline:
        c.sock.sendall("".join(x + "\r\n" for x in args.send).encode())
        for _ in args.send:
            try:
                l = _smtp_reply(c)
            except (ProtocolError, OSError):
                break
    else:
        for x in args.send:
            c.send(x)
            try:
                l = _smtp_reply(c)
            except (ProtocolError, OSError):
                break
    return l.startswith(("2", "3")), l


PROTOCOLS = {"imap": imap_login, "pop3": pop3_login, "sieve": sieve_login, "smtp": smtp_login,
             "smtp-raw": smtp_raw}


def attempt(args, user, password):
    start = time.monotonic()
    proxy = None
    if args.proxy_client:
        fam = "TCP6" if ":" in args.proxy_client else "TCP4"
        proxy = "PROXY %s %s %s %d %d" % (fam, args.proxy_client, args.proxy_server or args.dst,
                                          args.proxy_client_port, args.port)
    c = Conn(args.src, args.dst, args.port, args.timeout, args.tls, proxy)
    try:
        ok, reply = PROTOCOLS[args.proto](c, user, password, args)
    finally:
        c.close()
    return {"proto": args.proto, "src": args.src, "port": args.port, "user": user, "ok": ok,
            "reply": reply, "seconds": round(time.monotonic() - start, 3),
            "reply_monotonic": c.reply_at or time.monotonic(), "end_monotonic": time.monotonic()}


def run_login(args):
    pairs = []
    for u in args.user:
        for p in args.password:
            pairs.append((u, p))
    results = [None] * len(pairs)

    def one(i, u, p):
        try:
            results[i] = attempt(args, u, p)
        except (OSError, ProtocolError) as e:
            results[i] = {"proto": args.proto, "src": args.src, "port": args.port, "user": u,
                          "ok": None, "error": str(e), "end_monotonic": time.monotonic()}

    if args.parallel:
        threads = [threading.Thread(target=one, args=(i, u, p)) for i, (u, p) in enumerate(pairs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for i, (u, p) in enumerate(pairs):
            one(i, u, p)
            if args.interval and i + 1 < len(pairs):
                time.sleep(args.interval)
    for r in results:
        print(json.dumps(r), flush=True)
    if any(r.get("ok") is None for r in results):
        return 1
    return 0 if all(r["ok"] for r in results) else 3


def run_probe(args):
    result = {}

    def one(port):
        family = socket.AF_INET6 if ":" in args.dst else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(args.timeout)
        try:
            if args.src:
                s.bind((args.src, 0))
            s.connect((args.dst, port))
            result[str(port)] = True
        except OSError:
            result[str(port)] = False
        finally:
            s.close()

    threads = [threading.Thread(target=one, args=(p,)) for p in args.ports]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(result), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("login", help="one login attempt per (user, password) pair")
    lg.add_argument("proto", choices=sorted(PROTOCOLS))
    lg.add_argument("--src", help="source address to bind")
    lg.add_argument("--dst", required=True)
    lg.add_argument("--port", type=int, required=True)
    lg.add_argument("--user", action="append", required=True)
    lg.add_argument("--password", action="append", required=True)
    lg.add_argument("--tls", action="store_true", help="TLS on connect (993, 995, 465)")
    lg.add_argument("--starttls", action="store_true")
    lg.add_argument("--mech", default="PLAIN", help="SMTP AUTH mechanism: PLAIN or LOGIN")
    lg.add_argument("--ehlo", default="client.example")
    lg.add_argument("--abrupt", action="store_true", help="drop the connection without logging out")
    lg.add_argument("--parallel", action="store_true", help="all attempts at once, one connection each")
    lg.add_argument("--interval", type=float, default=0.0, help="seconds between sequential attempts")
    lg.add_argument("--timeout", type=float, default=30.0)
    lg.add_argument("--proxy-client", help="send a PROXY v1 header naming this client address first")
    lg.add_argument("--proxy-server", help="server address in the PROXY header (default: --dst)")
    lg.add_argument("--proxy-client-port", type=int, default=40000)
    lg.add_argument("--send", action="append", default=[], help="smtp-raw: a command line to send")
    lg.add_argument("--pipeline", action="store_true", help="smtp-raw: send all lines at once")
    pr = sub.add_parser("probe", help="can SRC connect to DST:PORT within the timeout?")
    pr.add_argument("--src")
    pr.add_argument("--dst", required=True)
    pr.add_argument("--timeout", type=float, default=2.0)
    pr.add_argument("ports", type=int, nargs="+")
    args = ap.parse_args()
    return run_login(args) if args.cmd == "login" else run_probe(args)


if __name__ == "__main__":
    sys.exit(main())
