#!/usr/bin/env bash
# Validates the end-to-end mail rig (tests/e2e/) without authwall: real rsyslog, Postfix, Dovecot
# and HAProxy in network namespaces, rsyslog forwarding to a small receiver; asserts that the
# Postfix/Dovecot lines authwall depends on arrive, for auth_verbose yes and no. ~30 s.
# Usage: bash e2e_rig_test.sh BINARY SOURCE_DIR (BINARY is unused: authwall is not involved).
# Needs root and tests/e2e/install-e2e-deps.sh. AUTHWALL_SKIP_E2E=1 skips it (exit 0).
set -euo pipefail
source_dir=${2:?usage: e2e_rig_test.sh BINARY SOURCE_DIR}
if [ "${AUTHWALL_SKIP_E2E:-0}" = 1 ]; then
  echo "e2e_rig_test: SKIPPED because AUTHWALL_SKIP_E2E=1"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "e2e_rig_test: FAIL: needs root (network namespaces); set AUTHWALL_SKIP_E2E=1 to skip" >&2
  exit 1
fi
exec python3 "$source_dir/tests/e2e/rig_validate.py"
