#!/usr/bin/env python3
"""The end-to-end mail rig: real rsyslog, Postfix, Dovecot and HAProxy in a network namespace,
attackers in a second one.

Topology (nothing is created in the caller's namespaces):

  awatk-<tag>  va ──veth── vm  awmail-<tag>
  attackers: 10.77.0.x/24,         mail host: 10.77.0.1/24, fd00:77::1/64,
  2001:db8:<n>::x/64                          10.77.1.2/32 on lo (HAProxy's own address)

The mail host also gets a private mount + UTS namespace, held by one long-lived anchor process:
a tmpfs over /dev (so its rsyslogd owns /dev/log and never sees the machine's own syslog), a
resolv.conf pointing at 127.0.0.1 (reverse lookups fail fast, clients log as unknown[IP]) and
the host name "mail". Every mail-host daemon is started with `nsenter -t ANCHOR -n -m -u`.

Teardown (Rig.down, always called from a finally/atexit/signal handler): daemons by PID in
reverse start order, then every process still inside either namespace (by PID, from
`ip netns pids`), then the namespaces, which removes the veth pair and any nftables table in them.

Use as a library (see rig_validate.py, e2e_test.py) or by hand:
  python3 tests/e2e/rig.py shell [--auth-verbose no] [--syslog-port 5514]
brings the rig up with a syslog receiver writing RUN/received.log and waits for Ctrl-C.
"""

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "templates")
MAILCLIENT = os.path.join(HERE, "mailclient.py")
RECEIVER = os.path.join(HERE, "syslog_receiver.py")

MAIL_V4 = "10.77.0.1"
MAIL_V6 = "fd00:77::1"
PROXY_ADDR = "10.77.1.2"        # HAProxy's source address towards Postfix's PROXY service
HAPROXY_PORT = 8465
# Every port a client can reach on the mail host and authwall must close for a banned address.
PROTECTED_PORTS = [25, 110, 143, 465, 587, 993, 995, 4190, HAPROXY_PORT]

USERS = {  # passwd-file users; everyone else is an unknown user
    "alice": "correct-horse-battery",
    "bob": "tr0ub4dor&3",
    "carol": "carol-s3cret",
}

CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "LANG": "C.UTF-8", "HOME": "/root"}


def log(msg):
    print("[rig %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def run(argv, check=True, capture=True, timeout=60, **kw):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
                       text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s%s" % (p.returncode, " ".join(argv),
                                                               p.stdout or "", p.stderr or ""))
    return p


def render(name, dest, values):
    with open(os.path.join(TEMPLATES, name)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("@%s@" % k, str(v))
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise RuntimeError("unreplaced placeholders %s in %s" % (left, name))
    with open(dest, "w") as f:
        f.write(text)


def missing_tools():
    need = ["ip", "nsenter", "unshare", "rsyslogd", "postfix", "postconf", "dovecot", "doveconf",
            "haproxy", "swaks", "openssl", "nft"]
    miss = [t for t in need if shutil.which(t, path=CLEAN_ENV["PATH"]) is None]
    try:
        if run(["perl", "-MNet::SSLeay", "-e", "1"], check=False).returncode != 0:
            miss.append("perl Net::SSLeay (libnet-ssleay-perl)")
    except FileNotFoundError:
        miss.append("perl")
    return miss


class Rig:
    def __init__(self, syslog_port=5514, auth_verbose="yes", run_dir=None, tag=None):
        self.tag = str(tag or os.getpid())
        self.mail_ns = "awmail-" + self.tag
        self.atk_ns = "awatk-" + self.tag
        self.syslog_port = syslog_port
        self.auth_verbose = auth_verbose
        self.run_dir = run_dir or tempfile.mkdtemp(prefix="authwall-e2e-")
        self.anchor = None
        self.procs = {}             # name -> Popen, started in this order
        self.sources = set()        # attacker addresses configured
        self.v6_routes = set()
        self.up_done = False
        self._down_lock = threading.Lock()
        self._down_done = False

    # ---------- helpers to run things in the namespaces ----------
    def mail_argv(self, argv):
        return ["nsenter", "-t", str(self.anchor.pid), "-n", "-m", "-u", "--"] + list(argv)

    def mail(self, argv, **kw):
        """Runs a command on the mail host (network + mount + UTS namespace)."""
        return run(self.mail_argv(argv), env=CLEAN_ENV, **kw)

    def atk_argv(self, argv):
        return ["ip", "netns", "exec", self.atk_ns] + list(argv)

    def atk(self, argv, **kw):
        """Runs a command in the attacker namespace."""
        return run(self.atk_argv(argv), env=CLEAN_ENV, **kw)

    def path(self, *parts):
        return os.path.join(self.run_dir, *parts)

    def mail_popen(self, name, argv):
        """Starts a long-running mail-host process with stdio redirected to RUN/log/NAME.out
        (daemons inherit descriptors: an inherited pipe would keep a caller waiting for EOF)."""
        out = open(self.path("log", name + ".out"), "ab")
        p = subprocess.Popen(self.mail_argv(argv), stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, env=CLEAN_ENV, close_fds=True,
                             start_new_session=True)
        out.close()
        self.procs[name] = p
        return p

    def stop_proc(self, name, timeout=10):
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)

    def listening(self):
        out = self.mail(["ss", "-Hltn"]).stdout
        ports = set()
        for line in out.splitlines():
            fields = line.split()
            if len(fields) >= 4:
                ports.add(int(fields[3].rsplit(":", 1)[1]))
        return ports

    def wait_listening(self, ports, timeout=20, what="daemons"):
        deadline = time.monotonic() + timeout
        while True:
            have = self.listening()
            if set(ports) <= have:
                return
            for name, p in self.procs.items():
                if p.poll() is not None and name not in ("postfix",):
                    raise RuntimeError("%s exited with %s; see %s" % (name, p.returncode,
                                                                      self.path("log", name + ".out")))
            if time.monotonic() > deadline:
                raise RuntimeError("%s not listening on %s after %ds (listening: %s); logs in %s" % (
                    what, sorted(set(ports) - have), timeout, sorted(have), self.path("log")))
            time.sleep(0.1)

    # ---------- bring up ----------
    def up(self, receiver_output=None):
        """Starts everything. With receiver_output, the validation receiver is started before
        rsyslog so that no forwarded line waits in rsyslog's retry queue."""
        atexit.register(self.down)
        os.chmod(self.run_dir, 0o755)  # Postfix and Dovecot users traverse it
        for d in ("log", "tls", "rsyslog", "postfix", "postfix-data", "postfix-spool", "dovecot",
                  "dovecot-run", "dovecot-state", "home", "haproxy", "authwall"):
            os.makedirs(self.path(d), exist_ok=True)
        log("run directory %s, namespaces %s / %s" % (self.run_dir, self.mail_ns, self.atk_ns))
        self._network()
        self._anchor()
        self._certs()
        if receiver_output:
            self.start_receiver(receiver_output)
            self.wait_listening([self.syslog_port], what="receiver")
        self.start_rsyslog()
        self._postfix()
        self.start_dovecot()
        self._haproxy()
        self.wait_listening([25, 587, 465, 10465, 143, 993, 110, 995, 4190, HAPROXY_PORT])
        self.up_done = True
        log("mail host up: Postfix, Dovecot (auth_verbose=%s), HAProxy, rsyslog -> 127.0.0.1:%d"
            % (self.auth_verbose, self.syslog_port))
        return self

    def _network(self):
        run(["ip", "netns", "add", self.mail_ns])
        run(["ip", "netns", "add", self.atk_ns])
        # The veth pair is created inside the mail namespace, its peer moved straight into the
        # attacker namespace: the caller's namespace never sees either end.
        run(["ip", "-n", self.mail_ns, "link", "add", "vm", "type", "veth", "peer", "name", "va",
             "netns", self.atk_ns])
        for ns, dev in ((self.mail_ns, "vm"), (self.atk_ns, "va")):
            # No duplicate address detection: addresses are usable at once, not "tentative".
            for key in ("all", "default", dev):
                run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.%s.accept_dad=0" % key])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        run(["ip", "-n", self.mail_ns, "addr", "add", MAIL_V4 + "/24", "dev", "vm"])
        run(["ip", "-n", self.mail_ns, "addr", "add", MAIL_V6 + "/64", "dev", "vm", "nodad"])
        run(["ip", "-n", self.mail_ns, "addr", "add", PROXY_ADDR + "/32", "dev", "lo"])
        # Attackers' IPv6 networks are 2001:db8::/32, on-link from the mail host's side.
        run(["ip", "-n", self.mail_ns, "-6", "route", "add", "2001:db8::/32", "dev", "vm"])
        run(["ip", "-n", self.atk_ns, "-6", "route", "add", "fd00:77::/64", "dev", "va"])

    def add_source(self, addr):
        """Adds an attacker source address (IPv4 in 10.77.0.0/24, or IPv6 in 2001:db8::/32)."""
        if addr in self.sources:
            return addr
        if ":" in addr:
            run(["ip", "-n", self.atk_ns, "addr", "add", addr + "/64", "dev", "va", "nodad"])
        else:
            run(["ip", "-n", self.atk_ns, "addr", "add", addr + "/24", "dev", "va"])
        self.sources.add(addr)
        return addr

    def _anchor(self):
        self.anchor = subprocess.Popen(
            ["ip", "netns", "exec", self.mail_ns, "unshare", "--mount", "--uts",
             "--propagation", "private", "sleep", "infinity"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=True, start_new_session=True)
        # `ip netns exec` and `unshare` exec (no fork), so the Popen pid is the anchor itself once
        # it has entered its own mount namespace.
        own = os.readlink("/proc/self/ns/mnt")
        deadline = time.monotonic() + 5
        while True:
            try:
                if os.readlink("/proc/%d/ns/mnt" % self.anchor.pid) != own and \
                        os.readlink("/proc/%d/exe" % self.anchor.pid).endswith("/sleep"):
                    break
            except OSError:
                pass
            if self.anchor.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mail host anchor process did not start")
            time.sleep(0.02)
        with open(self.path("resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        setup = """
set -e
mount -t tmpfs -o mode=0755,nosuid authwall-e2e-dev /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/zero c 1 5
mknod -m 666 /dev/full c 1 7
mknod -m 666 /dev/random c 1 8
mknod -m 666 /dev/urandom c 1 9
mknod -m 666 /dev/tty c 5 0
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
mkdir -m 1777 /dev/shm
mount --bind {resolv} /etc/resolv.conf
hostname mail
""".format(resolv=self.path("resolv.conf"))
        self.mail(["sh", "-c", setup])

    def _certs(self):
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", "/CN=mail.authwall-e2e.test",
             "-keyout", self.path("tls", "key.pem"), "-out", self.path("tls", "cert.pem")])
        os.chmod(self.path("tls", "key.pem"), 0o644)  # throwaway key; read by postfix + dovecot

    def values(self):
        return {"RUN": self.run_dir, "SYSLOG_PORT": self.syslog_port,
                "AUTH_VERBOSE": self.auth_verbose, "PROXY_ADDR": PROXY_ADDR}

    def start_rsyslog(self):
        render("rsyslog.conf.in", self.path("rsyslog.conf"), self.values())
        self.mail(["rsyslogd", "-N1", "-f", self.path("rsyslog.conf")])
        self.mail_popen("rsyslog", ["rsyslogd", "-n", "-f", self.path("rsyslog.conf"),
                                    "-i", self.path("rsyslog", "rsyslogd.pid")])
        deadline = time.monotonic() + 10
        while self.mail(["test", "-S", "/dev/log"], check=False).returncode != 0:
            if self.procs["rsyslog"].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rsyslogd did not create /dev/log; see " + self.path("log", "rsyslog.out"))
            time.sleep(0.05)

    def stop_rsyslog(self):
        self.stop_proc("rsyslog")

    def _postfix(self):
        v = self.values()
        render("main.cf.in", self.path("postfix", "main.cf"), v)
        render("master.cf.in", self.path("postfix", "master.cf"), v)
        os.chmod(self.path("postfix-spool"), 0o755)
        run(["chown", "postfix:postfix", self.path("postfix-data")])
        cfg = self.path("postfix")
        self.mail(["postfix", "-c", cfg, "check"])
        self.mail(["postfix", "-c", cfg, "start"], timeout=60)
        # The master daemonizes; remember it by its pid file.
        pidfile = self.path("postfix-spool", "pid", "master.pid")
        deadline = time.monotonic() + 10
        while not os.path.exists(pidfile):
            if time.monotonic() > deadline:
                raise RuntimeError("postfix master did not start; see " + self.path("log", "all.log"))
            time.sleep(0.05)
        self.postfix_pid = int(open(pidfile).read().strip())

    def start_dovecot(self):
        render("dovecot.conf.in", self.path("dovecot", "dovecot.conf"), self.values())
        users = self.path("dovecot", "users")
        with open(users, "w") as f:
            for u, p in USERS.items():
                f.write("%s:{PLAIN}%s::::::\n" % (u, p))
        run(["chgrp", "dovecot", users])
        os.chmod(users, 0o640)
        for u in USERS:
            os.makedirs(self.path("home", u), exist_ok=True)
            os.chown(self.path("home", u), 65534, 65534)
        conf = self.path("dovecot", "dovecot.conf")
        self.mail(["doveconf", "-c", conf, "-n"])
        self.mail_popen("dovecot", ["dovecot", "-F", "-c", conf])

    def stop_dovecot(self):
        self.stop_proc("dovecot")
        # The auth process outlives its master while clients stay connected, and Postfix's smtpd
        # processes keep their SASL connection open: left alone, the old auth process (with the
        # old settings) would go on answering them. End every Dovecot process of this mail host.
        self.kill_ns_processes(lambda exe: exe.startswith("/usr/lib/dovecot/") or
                               exe.endswith("/dovecot"))
        # Login and auth processes end with their master; wait until the ports are free again.
        deadline = time.monotonic() + 10
        while {143, 110, 4190} & self.listening():
            if time.monotonic() > deadline:
                raise RuntimeError("dovecot did not stop")
            time.sleep(0.05)

    def kill_ns_processes(self, match, timeout=5):
        """SIGTERM (then SIGKILL) to the mail host's processes whose executable path matches."""
        def victims():
            out = []
            for pid in self._ns_pids(self.mail_ns):
                try:
                    if match(os.readlink("/proc/%d/exe" % pid)):
                        out.append(pid)
                except OSError:
                    pass
            return out
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = victims()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
            while pids and victims() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not victims():
                return

    def set_auth_verbose(self, value):
        """Restarts Dovecot with auth_verbose = value ("yes" or "no")."""
        self.stop_dovecot()
        self.auth_verbose = value
        self.start_dovecot()
        self.wait_listening([143, 993, 110, 995, 4190], what="dovecot")
        # Postfix's smtpd processes reconnect to the new auth socket on their next AUTH.
        log("dovecot restarted with auth_verbose=%s" % value)

    def _haproxy(self):
        render("haproxy.cfg.in", self.path("haproxy", "haproxy.cfg"), self.values())
        self.mail(["haproxy", "-c", "-q", "-f", self.path("haproxy", "haproxy.cfg")])
        self.mail_popen("haproxy", ["haproxy", "-db", "-f", self.path("haproxy", "haproxy.cfg")])

    def start_receiver(self, output, port=None):
        """Starts the validation receiver (octet-counted TCP -> file) on the mail host."""
        return self.mail_popen("receiver", ["python3", RECEIVER, "--port", str(port or self.syslog_port),
                                            "--output", output])

    # ---------- teardown ----------
    def _ns_pids(self, ns):
        p = run(["ip", "netns", "pids", ns], check=False)
        return [int(x) for x in p.stdout.split()] if p.returncode == 0 else []

    def down(self, keep=False):
        with self._down_lock:
            if self._down_done:
                return
            self._down_done = True
        try:
            self.stop_proc("haproxy")
            self.stop_proc("dovecot")
            if self.anchor is not None and getattr(self, "postfix_pid", None):
                self.mail(["postfix", "-c", self.path("postfix"), "stop"], check=False, timeout=30)
            for name in [n for n in reversed(list(self.procs)) if n != "rsyslog"]:
                self.stop_proc(name)
            self.stop_proc("rsyslog")  # last, so its queue can flush what the others logged
        except Exception as e:  # teardown must go on whatever failed above
            log("teardown: %s" % e)
        # Whatever is still inside the namespaces was started by this rig: end it by PID.
        for ns in (self.mail_ns, self.atk_ns):
            for pid in self._ns_pids(ns):
                if self.anchor is not None and pid == self.anchor.pid:
                    continue
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.anchor is not None and self.anchor.poll() is None:
            self.anchor.kill()
            self.anchor.wait(5)
        for ns in (self.mail_ns, self.atk_ns):
            run(["ip", "netns", "del", ns], check=False)
        if keep or os.environ.get("AUTHWALL_E2E_KEEP") == "1":
            log("kept run directory %s" % self.run_dir)
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # ---------- inspection ----------
    def nft_json(self, table="authwall"):
        """`nft -j list table inet TABLE` on the mail host, or None if the table does not exist."""
        p = self.mail(["nft", "-j", "list", "table", "inet", table], check=False)
        if p.returncode != 0:
            return None
        return json.loads(p.stdout)


def install_signal_teardown():
    """SIGTERM/SIGINT/SIGHUP -> SystemExit, so `finally` blocks and atexit tear the rig down."""
    def handler(signum, _frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, handler)


def cleanup_stale():
    """Removes namespaces left by rigs whose driver died without teardown (SIGKILL, power loss)."""
    p = run(["ip", "netns", "list"], check=False)
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        for prefix in ("awmail-", "awatk-"):
            if name.startswith(prefix) and name[len(prefix):].isdigit():
                owner = int(name[len(prefix):])
                if os.path.exists("/proc/%d" % owner):
                    continue
                q = run(["ip", "netns", "pids", name], check=False)
                for pid in q.stdout.split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
                run(["ip", "netns", "del", name], check=False)
                log("removed stale namespace %s" % name)


def main():
    ap = argparse.ArgumentParser(description="bring the e2e mail rig up by hand")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sh = sub.add_parser("shell", help="rig + syslog receiver, until Ctrl-C")
    sh.add_argument("--auth-verbose", default="yes", choices=["yes", "no"])
    sh.add_argument("--syslog-port", type=int, default=5514)
    sub.add_parser("cleanup", help="remove namespaces of dead rigs")
    args = ap.parse_args()
    if args.cmd == "cleanup":
        cleanup_stale()
        return 0
    install_signal_teardown()
    rig = Rig(syslog_port=args.syslog_port, auth_verbose=args.auth_verbose)
    try:
        rig.up(receiver_output=rig.path("received.log"))
        print("mail namespace:  nsenter -t %d -n -m -u" % rig.anchor.pid)
        print("attacker netns:  ip netns exec %s" % rig.atk_ns)
        print("received lines:  %s" % rig.path("received.log"))
        print("Ctrl-C tears everything down.")
        while True:
            time.sleep(3600)
    finally:
        rig.down(keep=True)


if __name__ == "__main__":
    sys.exit(main())
