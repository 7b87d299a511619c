#!/usr/bin/env bash
# Installs the Debian 12 packages the end-to-end mail rig (tests/e2e/) needs on top of
# scripts/install-deps.sh: real Postfix, Dovecot, HAProxy and the SMTP client swaks.
# Idempotent: packages already present are skipped, apt is not touched when nothing is missing.
# Nothing is started: the rig runs private instances with its own configuration.
set -euo pipefail

packages=(
  postfix dovecot-core dovecot-imapd dovecot-pop3d dovecot-managesieved dovecot-submissiond
  haproxy rsyslog
  swaks libnet-ssleay-perl          # swaks needs Net::SSLeay for --tls, not pulled in without recommends
  libio-socket-inet6-perl           # ... and IO::Socket::INET6 for IPv6 servers
  openssl iproute2 nftables util-linux procps python3
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "install-e2e-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-e2e-deps: installing ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "install-e2e-deps: need root to install packages (run with sudo)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix asks two questions at install time; answer them so the install never prompts.
# The rig never uses the system instance, so "Local only" is the least intrusive answer.
debconf-set-selections <<'PRESEED'
postfix postfix/main_mailer_type select Local only
postfix postfix/mailname string authwall-e2e.invalid
PRESEED
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
