#!/usr/bin/env bash
# Installs every Debian 12 package authwall's build, tests and benchmarks need. Idempotent:
# packages already present are skipped, and apt is not touched when nothing is missing.
#   bash scripts/install-deps.sh          # build + unit/script tests + benchmarks
#   bash scripts/install-deps.sh --e2e    # also real Postfix, Dovecot, HAProxy, swaks (tests/e2e)
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev            # sanitizer + libFuzzer builds
  libcli11-dev libboost-dev libboost-system-dev libre2-dev libsimdjson-dev libyaml-cpp-dev
  libnftnl-dev libmnl-dev libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # tests: real rsyslog, nftables in network namespaces, promtool, fail2ban's test logs
  rsyslog nftables iproute2 util-linux procps prometheus fail2ban sqlite3 curl python3
)
if [ "${1:-}" = "--e2e" ]; then
  packages+=(
    postfix dovecot-core dovecot-imapd dovecot-pop3d dovecot-managesieved dovecot-submissiond
    haproxy openssl
    swaks libnet-ssleay-perl          # swaks needs Net::SSLeay for --tls (not pulled in without recommends)
    libio-socket-inet6-perl           # ... and IO::Socket::INET6 for IPv6 servers
  )
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: need root to install packages (run with sudo)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix asks two questions at install time; answer them so the install never prompts. The
# tests never use the system instance (Postfix is not started), so "Local only" is the least
# intrusive answer.
debconf-set-selections <<'PRESEED'
postfix postfix/main_mailer_type select Local only
postfix postfix/mailname string authwall-e2e.invalid
PRESEED
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
