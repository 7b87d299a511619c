#!/usr/bin/env bash
# The packages the end-to-end mail rig needs (real Postfix, Dovecot, HAProxy, swaks) on top of
# the build's: one list, kept in scripts/install-deps.sh.
set -euo pipefail
exec bash "$(dirname "$0")/../../scripts/install-deps.sh" --e2e
