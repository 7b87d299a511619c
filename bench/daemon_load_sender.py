#!/usr/bin/env python3
"""Load generator for bench/daemon_tcp_throughput.sh: realistic Postfix/Dovecot mail traffic.

Builds one block of distinct messages once (mostly ordinary traffic, with SASL and Dovecot
authentication failures from a pool of attacker addresses, policy rejects and postscreen lines),
then sends it repeatedly, so the sender costs little CPU and the receiver is what is measured.

  tcp:  one connection, RFC 5424 frames as rsyslog's RSYSLOG_SyslogProtocol23Format writes them,
        octet-counted (RFC 6587) -- the count includes the trailing LF, as rsyslog's does.
  udp:  one socket, RFC 3164 datagrams as rsyslog's default forward template sends them, at the
        highest rate this one sender core reaches (or --rate per second).

  --rate N (tcp too): at most N frames per second, sent in 1 ms ticks of whole frames.
  --abuse-fraction F: the share of abusive lines in the block (default 0.2; 0 gives ordinary
        traffic only, which triggers no bans -- background load for bench/ban_latency.sh).
  --attackers N: instead of the block, N distinct attacker addresses (every --ipv6-every-th one
        IPv6, each in its own /64) each send 5 SASL failures over TCP with current timestamps,
        staggered so that one attacker completes its fifth failure every 1/--attack-rate seconds:
        bans arrive at a steady --attack-rate per second (for bench/ban_latency.sh).

Bounded: --count messages in total, and --seconds of wall time at most.
"""
import argparse
import random
import resource
import socket
import sys
import time

PROGRAMS_ORDINARY = [
    ("postfix/smtpd", "connect from mail-{h}.example.net[{ip}]"),
    ("postfix/smtpd", "disconnect from mail-{h}.example.net[{ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"),
    ("postfix/smtpd", "{qid}: client=mail-{h}.example.net[{ip}]"),
    ("postfix/cleanup", "{qid}: message-id=<{h}.{qid}@example.net>"),
    ("postfix/qmgr", "{qid}: from=<newsletter-{h}@example.net>, size={size}, nrcpt=1 (queue active)"),
    ("postfix/lmtp", "{qid}: to=<user{u}@example.org>, relay=mail.example.org[private/dovecot-lmtp], delay=0.12, delays=0.05/0.01/0.02/0.04, dsn=2.0.0, status=sent (250 2.0.0 <user{u}@example.org> Saved)"),
    ("postfix/qmgr", "{qid}: removed"),
    ("dovecot", "imap-login: Login: user=<user{u}@example.org>, method=PLAIN, rip={ip}, lip=10.0.0.1, mpid={pid}, TLS, session=<{sess}>"),
    ("dovecot", "imap(user{u}@example.org)<{pid}><{sess}>: Disconnected: Logged out in=123 out=4567 deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0"),
    ("postfix/postscreen", "CONNECT from [{ip}]:{port} to [10.0.0.1]:25"),
    ("postfix/postscreen", "PASS OLD [{ip}]:{port}"),
]
PROGRAMS_ABUSE = [
    ("postfix/submission/smtpd", "warning: unknown[{aip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=user{u}@example.org"),
    ("postfix/smtpd", "warning: unknown[{aip}]: SASL PLAIN authentication failed: (reason unavailable), sasl_username=admin"),
    ("dovecot", "imap-login: Disconnected: Connection closed (auth failed, 1 attempts in 2 secs): user=<user{u}@example.org>, method=PLAIN, rip={aip}, lip=10.0.0.1, TLS, session=<{sess}>"),
    ("postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[{aip}]: 554 5.7.1 <spam{u}@example.org>: Relay access denied; from=<x@example.com> to=<spam{u}@example.org> proto=ESMTP helo=<ylmf-pc>"),
    ("postfix/smtpd", "lost connection after AUTH from unknown[{aip}]"),
]


def build_messages(n, seed, abuse_fraction=0.2):
    rng = random.Random(seed)
    msgs = []
    for i in range(n):
        ip = "203.0.%d.%d" % (rng.randrange(113, 114), rng.randrange(1, 255))
        aip = "198.18.%d.%d" % (rng.randrange(0, 256), rng.randrange(1, 255))
        fields = dict(ip=ip, aip=aip, h=rng.randrange(1000), u=rng.randrange(500),
                      qid="%010X" % rng.randrange(1 << 40), size=rng.randrange(1000, 90000),
                      pid=rng.randrange(1000, 60000), port=rng.randrange(1024, 65535),
                      sess="%016x" % rng.randrange(1 << 64))
        # About one line in five is abuse: a mail server under a steady password-guessing campaign.
        prog, text = rng.choice(PROGRAMS_ABUSE if rng.random() < abuse_fraction else PROGRAMS_ORDINARY)
        msgs.append((prog, fields["pid"], text.format(**fields), i))
    return msgs


def rfc5424_frame(prog, pid, text, i, slash):
    app = prog if slash else prog.split("/")[0]
    ts = "2026-11-28T10:%02d:%02d.%06d+00:00" % ((i // 60) % 60, i % 60, i % 1000000)
    msg = "<22>1 %s mx1.example.org %s %d - - %s\n" % (ts, app, pid, text)
    body = msg.encode()
    return str(len(body)).encode() + b" " + body


def rfc3164_datagram(prog, pid, text, i):
    tag = (prog + "[%d]:" % pid)
    return ("<22>Nov 28 10:%02d:%02d mx1 %s %s" % ((i // 60) % 60, i % 60, tag, text)).encode()


def send_paced(s, block, n, count, rate, deadline):
    """Sends frames of the block (cyclically) at `rate` per second in 1 ms ticks; returns frames sent."""
    # Frame boundaries, so every tick sends whole frames: the receiver counts frames, and a
    # half frame would sit in its buffer until the next tick.
    ends = []
    pos = 0
    while pos < len(block):
        sp = block.index(b" ", pos)
        pos = sp + 1 + int(block[pos:sp])
        ends.append(pos)
    starts = [0] + ends[:-1]
    sent = 0
    start = time.monotonic()
    tick = 0.001
    next_tick = start
    while sent < count:
        now = time.monotonic()
        if now >= deadline:
            break
        # Frames due by now (catches up after a late wake-up, so the mean rate holds).
        due = min(count, int((now - start) * rate) + 1)
        while sent < due:
            i = sent % n
            j = min(n, i + (due - sent))
            s.sendall(block[starts[i]:ends[j - 1]])
            sent += j - i
        next_tick += tick
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return sent


def attacker_address(i, ipv6_every):
    if ipv6_every > 0 and i % ipv6_every == ipv6_every - 1:
        return "2001:db8:%x:%x::%x" % (i >> 16, i & 0xFFFF, 1 + i % 250)  # its own /64
    return "198.%d.%d.%d" % (18 + (i >> 16), (i >> 8) & 0xFF, i & 0xFF)  # 198.18.0.0/15


def send_attackers(args):
    """Each attacker sends 5 SASL failures (distinct user names, so no deduplication ties two);
    at step k the attackers k, k-1, ..., k-4 send their 1st, 2nd, ..., 5th failure, so attacker
    k-4 crosses the threshold of 5 at step k, and steps run at --attack-rate per second."""
    n = args.attackers
    if n > (2 << 16):
        raise SystemExit("at most 131072 attackers")
    s = socket.create_connection((args.host, args.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start = time.monotonic()
    deadline = start + args.seconds
    sent = 0
    steps = 0
    for step in range(n + 4):
        if time.monotonic() >= deadline:
            break
        frames = []
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%06d+00:00" % (time.time_ns() // 1000 % 1000000)
        for attempt in range(5):
            a = step - attempt
            if 0 <= a < n:
                text = ("warning: unknown[%s]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, "
                        "sasl_username=guess%d-%d@example.org" % (attacker_address(a, args.ipv6_every), a, attempt))
                body = ("<20>1 %s mx1.example.org postfix %d - - %s\n" % (ts, 10000 + a % 50000, text)).encode()
                frames.append(str(len(body)).encode() + b" " + body)
        s.sendall(b"".join(frames))
        sent += len(frames)
        steps += 1
        delay = start + (step + 1) / args.attack_rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.monotonic() - start
    s.close()
    # Attacker a sent its fifth failure at step a + 4; a deadline may cut the run short.
    done = max(0, min(n, steps - 4))
    v6 = sum(1 for i in range(done) if args.ipv6_every > 0 and i % args.ipv6_every == args.ipv6_every - 1)
    print("attackers %d completed of %d (ipv4 %d, ipv6 %d): sent %d failures in %.3f s, %.1f completed/s" %
          (done, n, done - v6, v6, sent, elapsed, done / elapsed if elapsed > 0 else 0))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--transport", choices=["tcp", "udp"], default="tcp")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--distinct", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=int, default=0, help="messages per second (0 = as fast as possible)")
    ap.add_argument("--abuse-fraction", type=float, default=0.2, help="share of abusive lines in the block")
    ap.add_argument("--attackers", type=int, default=0, help="send staggered SASL failures from N attackers")
    ap.add_argument("--attack-rate", type=float, default=100.0, help="attackers completing 5 failures per second")
    ap.add_argument("--ipv6-every", type=int, default=5, help="every Nth attacker is IPv6 (0 = none)")
    ap.add_argument("--slash", action="store_true", help="APP-NAME with the postfix service path")
    ap.add_argument("--write-block", help="only write one block of frames to this file and exit")
    args = ap.parse_args()

    if args.attackers > 0:
        return send_attackers(args)
    msgs = build_messages(args.distinct, 42, args.abuse_fraction)
    deadline = time.monotonic() + args.seconds
    if args.transport == "tcp":
        block = b"".join(rfc5424_frame(p, pid, t, i, args.slash) for p, pid, t, i in msgs)
        if args.write_block:
            with open(args.write_block, "wb") as f:
                f.write(block)
            return 0
        s = socket.create_connection((args.host, args.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sent = 0
        start = time.monotonic()
        # The wall-clock start of the stream, for the receiver's rate (building the block
        # above is the sender's business, not the receiver's).
        print("start=%.6f" % time.time(), flush=True)
        if args.rate > 0:
            sent = send_paced(s, block, len(msgs), args.count, args.rate, deadline)
        while args.rate == 0 and sent + len(msgs) <= args.count and time.monotonic() < deadline:
            s.sendall(block)
            sent += len(msgs)
        rest = args.count - sent
        if args.rate == 0 and rest > 0 and time.monotonic() < deadline:
            s.sendall(b"".join(rfc5424_frame(p, pid, t, i, args.slash) for p, pid, t, i in msgs[:rest]))
            sent += rest
        s.close()
        elapsed = time.monotonic() - start
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        print("sent %d frames (%d bytes/block of %d) in %.3f s, sender CPU %.2f s" %
              (sent, len(block), len(msgs), elapsed, cpu.ru_utime + cpu.ru_stime))
    else:
        grams = [rfc3164_datagram(p, pid, t, i) for p, pid, t, i in msgs]
        if args.write_block:
            with open(args.write_block, "wb") as f:
                f.write(b"".join(g + b"\n" for g in grams))
            return 0
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((args.host, args.port))
        send = s.send
        sent = 0
        start = time.monotonic()
        n = len(grams)
        if args.rate > 0:
            per_tick = max(1, args.rate // 1000)
            next_tick = start
            while sent < args.count and time.monotonic() < deadline:
                for _ in range(per_tick):
                    send(grams[sent % n])
                    sent += 1
                next_tick += per_tick / args.rate
                delay = next_tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        else:
            while sent < args.count and time.monotonic() < deadline:
                for g in grams[: min(n, args.count - sent)]:
                    send(g)
                sent += min(n, args.count - sent)
        elapsed = time.monotonic() - start
        print("sent %d datagrams in %.3f s (%.0f/s)" % (sent, elapsed, sent / elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
