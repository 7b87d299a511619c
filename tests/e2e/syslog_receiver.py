#!/usr/bin/env python3
"""Minimal syslog-over-TCP receiver used to validate the mail rig without authwall.

Accepts RFC 6587 frames (octet counting `LEN SP MSG`, or LF-terminated when a frame does not
start with a digit), and appends each message to OUTPUT as one line (the message's own trailing
newline, which rsyslog's RFC 5424 template puts inside the octet count, is stripped; embedded
newlines are escaped as \\n so one line stays one message). Runs until SIGTERM.
"""

import argparse
import os
import signal
import socket
import sys
import threading


def frames(conn):
    buf = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return
        buf += chunk
        while buf:
            if buf[:1].isdigit():
                sp = buf.find(b" ")
                if sp < 0:
                    break
                n = int(buf[:sp])
                if len(buf) < sp + 1 + n:
                    break
                yield buf[sp + 1:sp + 1 + n]
                buf = buf[sp + 1 + n:]
            else:
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                yield buf[:nl]
                buf = buf[nl + 1:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--output", required=True)
    args = ap.parse_args()

    lock = threading.Lock()
    out = open(args.output, "ab", buffering=0)
    srv = socket.socket(socket.AF_INET6 if ":" in args.listen else socket.AF_INET)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.listen, args.port))
    srv.listen(16)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    def serve(conn):
        with conn:
            for msg in frames(conn):
                if msg.endswith(b"\n"):
                    msg = msg[:-1]
                with lock:
                    out.write(msg.replace(b"\n", b"\\n") + b"\n")

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
