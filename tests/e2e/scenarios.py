"""Attack scenarios and probes for the e2e rig, run from the attacker namespace.

Every driver returns a dict with at least:
  results      one entry per login attempt (ok: True/False, None on a connection error)
  last_return  time.monotonic() when the last attempt's reply had arrived (CLOCK_MONOTONIC is
               shared by all namespaces, so the mail-client's own timestamps are comparable)
Each scenario should use source addresses no other scenario uses: Dovecot delays repeated
failures per address (per /48 for IPv6), which would slow everything down and, past Postfix's
~10 s SASL timeout, turn attempts into "Connection lost to authentication server" outages.
"""

import json
import os
import pty
import re
import select
import subprocess
import threading
import time

import rig as R


def _client(rig, argv, timeout=120):
    p = subprocess.run(rig.atk_argv(["python3", R.MAILCLIENT] + argv), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                       env=R.CLEAN_ENV)
    results = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode not in (0, 3) and not results:
        raise RuntimeError("mailclient failed (%d): %s" % (p.returncode, p.stderr.strip()))
    return results


def client_login(rig, proto, src, port, users, passwords, dst=R.MAIL_V4, tls=False, starttls=False,
                 parallel=False, interval=0.0, mech="PLAIN", abrupt=False, proxy_client=None,
                 ehlo=None):
    """Raw-socket logins (IMAP, POP3, ManageSieve, SMTP with optional PROXY v1 header)."""
    argv = ["login", proto, "--src", src, "--dst", dst, "--port", str(port)]
    for u in users:
        argv += ["--user", u]
    for pw in passwords:
        argv += ["--password", pw]
    if tls:
        argv.append("--tls")
    if starttls:
        argv.append("--starttls")
    if parallel:
        argv.append("--parallel")
    if interval:
        argv += ["--interval", str(interval)]
    if abrupt:
        argv.append("--abrupt")
    if proxy_client:
        argv += ["--proxy-client", proxy_client]
    if ehlo:
        argv += ["--ehlo", ehlo]
    argv += ["--mech", mech]
    results = _client(rig, argv)
    return {"results": results,
            "last_return": _last_reply(results)}


def swaks_auth(rig, src, user, password, port=587, dst=R.MAIL_V4, mode="starttls", mech="PLAIN"):
    """One SMTP AUTH attempt with swaks. mode: starttls (587), tls-on-connect (465, 8465).

    swaks runs on a pseudo-terminal so that perl flushes every line as it happens: the arrival of
    the server's final AUTH reply is timestamped (reply_monotonic). After that reply swaks only
    says QUIT; a client banned in the meantime would wait for its timeout, so it gets 2 s."""
    argv = ["swaks", "--server", dst, "--port", str(port), "--local-interface", src,
            "--auth", mech, "--auth-user", user, "--auth-password", password,
            "--quit-after", "AUTH", "--timeout", "40", "--ehlo", "client.example",
            "--tls" if mode == "starttls" else "--tls-on-connect"]
    if ":" in dst:
        argv.append("-6")
    start = time.monotonic()
    master, slave = pty.openpty()
    p = subprocess.Popen(rig.atk_argv(argv), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                         env=R.CLEAN_ENV, close_fds=True)
    os.close(slave)
    transcript, buf, reply_at, auth_ok = [], b"", None, None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        wait = 2.0 if reply_at else deadline - time.monotonic()
        if reply_at and time.monotonic() > reply_at + 2.0:
            break
        ready, _, _ = select.select([master], [], [], max(0.0, min(wait, 1.0)))
        if not ready:
            if p.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child side is closed
            break
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = line.decode("utf-8", "replace").rstrip("\r")
            transcript.append(text)
            # swaks marks received lines "<-" (plain), "<~" (TLS), "<**"/"<~*" (error replies).
            m = _SWAKS_AUTH_REPLY.match(text)
            if m and reply_at is None and _after_auth(transcript):
                reply_at = time.monotonic()
                auth_ok = m.group(1) == "235"
    if p.poll() is None:
        p.kill()
    p.wait(10)
    os.close(master)
    end = time.monotonic()
    ok = auth_ok
    return {"proto": "smtp", "src": src, "port": port, "user": user, "ok": ok, "rc": p.returncode,
            "seconds": round(end - start, 3), "reply_monotonic": reply_at or end,
            "end_monotonic": end, "transcript": "\n".join(transcript[-30:]) if ok is None else ""}


_SWAKS_AUTH_REPLY = re.compile(r"^<(?:-|~|\*\*|~\*) +(235|5\d\d)[ -]")


def _after_auth(transcript):
    """True once swaks has sent its AUTH command (so a 5xx is the AUTH reply, not an earlier one)."""
    return any(re.match(r"^ ?[-~]> AUTH ", t) for t in transcript)


def _last_reply(results):
    """When the last login reply arrived (the end of the session if there was none)."""
    return max((r.get("reply_monotonic") or r["end_monotonic"] for r in results),
               default=time.monotonic())


def _parallel(fn, argsets):
    out = [None] * len(argsets)

    def one(i, a):
        out[i] = fn(*a)
    ts = [threading.Thread(target=one, args=(i, a), daemon=True) for i, a in enumerate(argsets)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def smtp_bruteforce(rig, src, attempts=6, user="alice", port=587, dst=R.MAIL_V4, mode="starttls"):
    """SMTP AUTH brute force with swaks: all attempts at once, one connection each (bots do the
    same; serial attempts would pile up Dovecot's per-address penalty)."""
    res = _parallel(swaks_auth, [(rig, src, user, "guess-%d" % i, port, dst, mode)
                                 for i in range(attempts)])
    return {"results": res, "last_return": _last_reply(res)}


def haproxy_bruteforce(rig, src, attempts=6, user="bob"):
    """Brute force through HAProxy (8465, TLS passed through to Postfix's PROXY service)."""
    return smtp_bruteforce(rig, src, attempts, user=user, port=R.HAPROXY_PORT, mode="tls-on-connect")


def imap_bruteforce(rig, src, attempts=6, user="alice", port=143, tls=False, dst=R.MAIL_V4):
    return client_login(rig, "imap", src, port, [user], ["guess-%d" % i for i in range(attempts)],
                        dst=dst, tls=tls, parallel=True)


def mistype_then_login(rig, src, user="carol", proto="smtp"):
    """One wrong password, then the right one, in two separate sessions (a mail client retrying)."""
    good = R.USERS[user]
    if proto == "smtp":
        first = swaks_auth(rig, src, user, good + "x")
        second = swaks_auth(rig, src, user, good)
        res = [first, second]
    else:
        res = client_login(rig, proto, src, {"imap": 143, "pop3": 110, "sieve": 4190}[proto],
                           [user], [good + "x"])["results"]
        res += client_login(rig, proto, src, {"imap": 143, "pop3": 110, "sieve": 4190}[proto],
                            [user], [good])["results"]
    return {"results": res, "last_return": _last_reply(res)}


def password_spray(rig, sources, users, interval=5.0, password="Winter2026!", proto="imap"):
    """Slow password spraying: one password across many user names, one attempt every
    `interval` seconds, rotating through `sources` (e.g. several addresses of one IPv6 /64)."""
    res = []
    start = time.monotonic()
    for i, user in enumerate(users):
        due = start + i * interval
        if time.monotonic() < due:
            time.sleep(due - time.monotonic())
        src = sources[i % len(sources)]
        dst = R.MAIL_V6 if ":" in src else R.MAIL_V4
        if proto == "imap":
            res += client_login(rig, "imap", src, 143, [user], [password], dst=dst)["results"]
        else:
            res.append(swaks_auth(rig, src, user, password, dst=dst))
    return {"results": res, "last_return": _last_reply(res)}


def smtp_raw(rig, src, lines, port=25, dst=R.MAIL_V4, pipeline=False):
    """Raw SMTP commands (relay attempts, HTTP on port 25, pipelining before replies)."""
    argv = ["login", "smtp-raw", "--src", src, "--dst", dst, "--port", str(port), "--user", "-",
            "--password", "-"]
    for l in lines:
        argv += ["--send", l]
    if pipeline:
        argv.append("--pipeline")
    return {"results": _client(rig, argv)}


def probe(rig, src, ports=None, dst=None, timeout=2.0):
    """Can SRC connect to DST:PORT within `timeout` seconds? -> {port: bool}, all ports at once."""
    ports = ports or R.PROTECTED_PORTS
    dst = dst or (R.MAIL_V6 if ":" in src else R.MAIL_V4)
    p = subprocess.run(rig.atk_argv(["python3", R.MAILCLIENT, "probe", "--src", src, "--dst", dst,
                                     "--timeout", str(timeout)] + [str(x) for x in ports]),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout + 30, env=R.CLEAN_ENV)
    if p.returncode != 0:
        raise RuntimeError("probe failed: " + p.stderr)
    return {int(k): v for k, v in json.loads(p.stdout).items()}
