# Shared by the daemon benchmark scripts (sourced). Expects $root (the repository) to be set.
# Every process a benchmark starts is appended to `pids` and ended by PID on exit.
tmp=$(mktemp -d)
pids=()
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 "$root/tests/scripts/free_port.py"; }
metrics() { curl -sf "http://127.0.0.1:$metrics_port/metrics"; }
metric() {  # metric NAME_WITH_LABELS
  metrics | awk -v m="$1" '$1 == m {print $2}'
}
