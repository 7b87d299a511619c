#!/usr/bin/env bash
# Every example configuration under config/examples/ must pass `authwall validate`, with the
# shipped rules next to it (as the examples' READMEs tell users to install them).
# Usage: bash config_examples_test.sh BINARY SOURCE_DIR
set -euo pipefail
binary=${1:?usage: config_examples_test.sh BINARY SOURCE_DIR}
source_dir=${2:?usage: config_examples_test.sh BINARY SOURCE_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
count=0
for cfg in "$source_dir"/config/examples/*/authwall.yaml; do
  name=$(basename "$(dirname "$cfg")")
  mkdir -p "$work/$name/rules.d"
  cp "$cfg" "$work/$name/authwall.yaml"
  cp "$source_dir"/config/rules.d/*.yaml "$work/$name/rules.d/"
  if out=$("$binary" validate -c "$work/$name/authwall.yaml" 2>&1); then
    echo "ok: config/examples/$name/authwall.yaml"
  else
    echo "FAIL: config/examples/$name/authwall.yaml does not validate:"
    echo "$out"
    status=1
  fi
  count=$((count + 1))
done
if [ "$count" -lt 2 ]; then
  echo "FAIL: expected at least 2 example configurations, found $count"
  status=1
fi
# The unit must grant exactly CAP_NET_ADMIN (the contract: only the capabilities it needs).
unit="$source_dir/config/examples/authwall.service"
for key in CapabilityBoundingSet AmbientCapabilities; do
  if [ "$(grep -E "^$key=" "$unit")" != "$key=CAP_NET_ADMIN" ]; then
    echo "FAIL: $unit: $key must be exactly CAP_NET_ADMIN"
    status=1
  fi
done
if command -v systemd-analyze > /dev/null; then
  # Only the binary's install path may be missing on a build machine.
  if problems=$(systemd-analyze verify "$unit" 2>&1 | grep -v "/usr/local/bin/authwall is not executable"); then
    echo "FAIL: systemd-analyze verify $unit:"
    echo "$problems"
    status=1
  fi
fi
exit $status
