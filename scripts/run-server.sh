#!/usr/bin/env bash
# Installs what is missing, builds authwall and runs the daemon on the shipped default
# configuration (config/authwall.yaml). Extra arguments go to `authwall serve`
# (e.g. --dry-run to leave the kernel alone).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"${AUTHWALL_JOBS:-2}" --target authwall
exec build/authwall serve -c config/authwall.yaml "$@"
