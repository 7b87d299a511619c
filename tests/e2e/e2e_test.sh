#!/usr/bin/env bash
# End-to-end test of authwall against real Postfix, Dovecot, HAProxy and rsyslog (issue 7).
# Usage: bash tests/e2e/e2e_test.sh BINARY SOURCE_DIR
# Needs root (network namespaces, nftables) and the packages of tests/e2e/install-e2e-deps.sh.
# AUTHWALL_SKIP_E2E=1 skips it (exit 0); otherwise any failure, including a missing package,
# fails. AUTHWALL_E2E_KEEP=1 keeps the run directory (configs, logs) even on success.
# AUTHWALL_E2E_JSON=FILE writes the measurements (latencies, notes) as JSON.
set -euo pipefail
binary=${1:?usage: e2e_test.sh BINARY SOURCE_DIR}
source_dir=${2:?usage: e2e_test.sh BINARY SOURCE_DIR}
if [ "${AUTHWALL_SKIP_E2E:-0}" = 1 ]; then
  echo "e2e: SKIPPED because AUTHWALL_SKIP_E2E=1"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "e2e: FAIL: needs root (network namespaces, nftables); set AUTHWALL_SKIP_E2E=1 to skip" >&2
  exit 1
fi
args=(--binary "$binary")
if [ -n "${AUTHWALL_E2E_JSON:-}" ]; then
  args+=(--json-out "$AUTHWALL_E2E_JSON")
fi
exec python3 "$source_dir/tests/e2e/e2e_test.py" "${args[@]}"
