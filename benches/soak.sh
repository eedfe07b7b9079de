#!/usr/bin/env bash
# The chaos test (tests/chaos.rs) for a long time, sampling the process's resident memory and
# open file descriptors (docs/performance.md, "Soak"). Not in CI.
#
#     bash benches/soak.sh [SECONDS]        # default 3600
#
# Prints one line per 30 s sample (elapsed s, RSS in MiB, open fds), then the test's verdict and
# the lowest and highest of each.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3600}
cargo test --release --test chaos --no-run 2>&1 | tail -1
binary=$(cargo test --release --test chaos --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "chaos":
        print(m["executable"])')
log=$(mktemp)
trap 'rm -f "$log"; kill $(jobs -p) 2>/dev/null || true' EXIT
CHAOS_SECONDS=$seconds "$binary" >"$log" 2>&1 &
pid=$!
start=$(date +%s)
samples=()
while kill -0 "$pid" 2>/dev/null; do
    if [[ -r /proc/$pid/status ]]; then
        rss=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
        fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
        line="$(($(date +%s) - start)) $rss $fds"
        echo "$line"
        samples+=("$line")
    fi
    sleep 30
done
wait "$pid" && verdict=passed || verdict=failed
grep -E "test result|panicked" "$log" || true
printf '%s\n' "${samples[@]}" | awk -v verdict="$verdict" '
    NR == 1 { rmin = rmax = $2; fmin = fmax = $3 }
    { if ($2 < rmin) rmin = $2; if ($2 > rmax) rmax = $2; if ($3 < fmin) fmin = $3; if ($3 > fmax) fmax = $3 }
    END { printf "chaos %s after %d s: RSS %.1f to %.1f MiB, open fds %d to %d, %d samples\n", verdict, $1, rmin, rmax, fmin, fmax, NR }'
[[ $verdict == passed ]]
