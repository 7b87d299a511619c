#!/usr/bin/env bash
# ctest entry for the end-to-end mail test (tests/e2e/e2e_test.sh): bash e2e_mail_test.sh BINARY SOURCE_DIR.
# Skips (exit 0) only when AUTHWALL_SKIP_E2E=1.
set -euo pipefail
exec bash "${2:?usage: e2e_mail_test.sh BINARY SOURCE_DIR}/tests/e2e/e2e_test.sh" "$@"
