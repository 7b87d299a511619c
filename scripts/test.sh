#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script):
#   1. installs what is missing,
#   2. Release build with -Werror (the binary, tests, benchmarks) and ctest,
#   3. a second build with clang + ASan/UBSan that runs the tests again and builds the fuzzers,
#   4. every libFuzzer target for a bounded time on its seed corpus.
# Knobs: AUTHWALL_FUZZ_SECONDS (default 30 per target), AUTHWALL_SKIP_SANITIZE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${AUTHWALL_JOBS:-2}
fuzz_seconds=${AUTHWALL_FUZZ_SECONDS:-30}

bash scripts/install-deps.sh --e2e   # incl. real Postfix, Dovecot, HAProxy for tests/e2e

step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

step "Release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DAUTHWALL_WERROR=ON
cmake --build build -j"$jobs"

step "Tests (Release)"
(cd build && ctest --output-on-failure -j"$jobs")

if [ "${AUTHWALL_SKIP_SANITIZE:-0}" != 1 ]; then
  step "Sanitizer build (clang, ASan+UBSan, libFuzzer targets)"
  CC=clang CXX=clang++ cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DAUTHWALL_WERROR=ON -DAUTHWALL_SANITIZE=ON -DAUTHWALL_FUZZ=ON -DAUTHWALL_BENCH=OFF
  cmake --build build-sanitize -j"$jobs"

  step "Tests (ASan+UBSan)"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd build-sanitize && ctest --output-on-failure -j"$jobs")

  step "Fuzzers (${fuzz_seconds}s each)"
  shopt -s nullglob
  for fuzzer in build-sanitize/fuzz/*_fuzz; do
    name=$(basename "$fuzzer" _fuzz)
    corpus=$(mktemp -d)
    cp -r "$root/tests/fuzz/corpus/$name/." "$corpus/" 2>/dev/null || true
    echo "--- $name"
    "$fuzzer" -max_total_time="$fuzz_seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
      "$corpus" 2>&1 | tail -n 12
    rm -rf "$corpus"
  done
fi
step "All tests passed"
