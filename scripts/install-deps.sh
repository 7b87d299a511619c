#!/usr/bin/env bash
# Installs every Debian 12 package authwall's build, tests and benchmarks need. Idempotent:
# packages already present are skipped, and apt is not touched when nothing is missing.
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
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
