#!/usr/bin/env python3
"""Prints a port that is free for both TCP and UDP on 127.0.0.1 (syslog listens on both).

Shared by the daemon's script tests (tests/scripts/daemon_lib.sh) and the benchmarks."""
import socket

while True:
    t = socket.socket()
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
        print(port)
        break
    except OSError:
        pass
    finally:
        t.close()
        u.close()
