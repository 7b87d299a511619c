#!/usr/bin/env bash
# Throughput of `authwall check` on a generated mail log, single core, side by side with
# fail2ban-regex (Debian's fail2ban) running the aggressive postfix and dovecot filters.
#
#   bench/check_throughput.sh [BUILD_DIR] [LINES]
#
# BUILD_DIR defaults to ./build (needs BUILD_DIR/authwall, a Release build); LINES to 1,200,000.
# fail2ban-regex is slow, so it reads the first 100,000 lines of the same log; rates are lines/s.
# fail2ban's rate uses the matching time it reports itself ("processed in"), which leaves out its
# start-up: the comparison is in fail2ban's favour. Both filters have to read every line, so
# fail2ban's rate "with both filters" is lines / (time postfix + time dovecot).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
lines=${2:-1200000}
bin=$build/authwall
[ -x "$bin" ] || { echo "no $bin: build first (cmake --build $build)"; exit 2; }
work=${TMPDIR:-/tmp}/authwall-bench
mkdir -p "$work"
log=$work/mail-$lines.log
sample=$work/mail-100k.log
if [ ! -s "$log" ]; then
  echo "generating $log ($lines lines)"
  python3 "$here/gen_mail_log.py" --lines "$lines" --out "$log"
fi
head -n 100000 "$log" > "$sample"
cat "$log" > /dev/null  # page cache: measure parsing, not the disk

pin=(taskset -c 0)
command -v taskset > /dev/null || pin=()

# best of N runs: prints "wall user sys"
best_of() {
  local n=$1; shift
  python3 - "$n" "$@" <<'P'
import resource, subprocess, sys, time
n = int(sys.argv[1]); cmd = sys.argv[2:]
best = None
for _ in range(n):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime)
    if best is None or wall < best[0]:
        best = (wall, cpu[0], cpu[1])
print("%.4f %.4f %.4f" % best)
P
}

rate() { python3 -c "print(int($1 / $2))"; }

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "log: $log ($(wc -l < "$log") lines, $(du -m "$log" | cut -f1) MB)"

read -r wall user sys < <(best_of 5 "${pin[@]}" "$bin" check "$log")
aw_rate=$(rate "$lines" "$wall")
aw_cpu_rate=$(python3 -c "print(int($lines / ($user + $sys)))")
echo "authwall check (summary):  ${wall}s wall, ${user}s user, ${sys}s sys -> $aw_rate lines/s wall, $aw_cpu_rate lines/s CPU"
read -r wall2 user2 sys2 < <(best_of 3 "${pin[@]}" "$bin" check --jsonl "$log")
echo "authwall check --jsonl:    ${wall2}s wall -> $(rate "$lines" "$wall2") lines/s"
read -r wall3 _ _ < <(best_of 3 "${pin[@]}" "$bin" check "$sample")
echo "authwall check (100k sample): ${wall3}s wall -> $(rate 100000 "$wall3") lines/s (includes start-up)"

if ! command -v fail2ban-regex > /dev/null; then
  echo "fail2ban-regex not installed: apt-get install fail2ban"
  exit 0
fi
f2b() {  # f2b FILTER -> "processed_seconds wall_seconds matched"
  local out t0 t1
  t0=$(date +%s.%N)
  out=$("${pin[@]}" fail2ban-regex "$sample" "/etc/fail2ban/filter.d/$1.conf[mode=aggressive]" 2>&1)
  t1=$(date +%s.%N)
  local processed matched
  processed=$(sed -n 's/^\[processed in \([0-9.]*\) sec\]/\1/p' <<<"$out")
  matched=$(sed -n 's/^Lines: .* \([0-9]*\) matched.*/\1/p' <<<"$out")
  echo "$processed $(python3 -c "print(round($t1 - $t0, 2))") $matched"
}
read -r p_proc p_wall p_match < <(f2b postfix)
read -r d_proc d_wall d_match < <(f2b dovecot)
echo "fail2ban-regex postfix[mode=aggressive]: processed in ${p_proc}s (${p_wall}s wall), $p_match matched -> $(rate 100000 "$p_proc") lines/s"
echo "fail2ban-regex dovecot[mode=aggressive]: processed in ${d_proc}s (${d_wall}s wall), $d_match matched -> $(rate 100000 "$d_proc") lines/s"
both=$(python3 -c "print(int(100000 / ($p_proc + $d_proc)))")
echo "fail2ban-regex, both filters: $both lines/s"
echo "authwall check / fail2ban-regex (both filters): $(python3 -c "print(round($aw_rate / $both, 1))")x"
