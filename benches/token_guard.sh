#!/usr/bin/env bash
# The token guard's cost end to end (docs/performance.md, "Token guard"): the simulator's
# 10,000-VM listing (22.4 MB of XML) fetched through the gateway ROUNDS x 50 times with the
# Manager's own token passed through (not scanned: the client holds that token) and with Basic
# credentials (the gateway's upstream token: every byte scanned), interleaved. Prints the
# gateway's CPU time (user + system, from /proc) and the wall time of each batch.
#
#     cargo build --release && bash benches/token_guard.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-4}
source benches/sim_gateway.sh
start_sim_and_gateway 10000 "[auth]
bearer_passthrough = true
[rate_limit]
enabled = false"
token=$(curl -s -H 'Accept: application/json' \
    -d 'grant_type=password&scope=ovirt-app-api&username=admin%40internal&password=admin' \
    http://127.0.0.1:18080/ovirt-engine/sso/oauth/token |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
ticks() { awk '{print $14 + $15}' "/proc/$gateway/stat"; }
batch() { for _ in $(seq 50); do curl -sf -o /dev/null "$@" http://127.0.0.1:18443/ovirt-engine/api/vms; done; }
batch -H "Authorization: Bearer $token"
batch -u admin@internal:admin
hz=$(getconf CLK_TCK)
plain=0 scanned=0
for round in $(seq "$rounds"); do
    a=$(ticks); t0=$(date +%s.%N)
    batch -H "Authorization: Bearer $token"
    b=$(ticks); t1=$(date +%s.%N)
    batch -u admin@internal:admin
    c=$(ticks); t2=$(date +%s.%N)
    printf 'round %d: not scanned %d ticks %.2f s, scanned %d ticks %.2f s\n' \
        "$round" $((b - a)) "$(echo "$t1 - $t0" | bc)" $((c - b)) "$(echo "$t2 - $t1" | bc)"
    plain=$((plain + b - a)); scanned=$((scanned + c - b))
done
listings=$((rounds * 50))
echo "gateway CPU per listing: not scanned $(echo "scale=2; $plain * 1000 / $hz / $listings" | bc) ms," \
    "scanned $(echo "scale=2; $scanned * 1000 / $hz / $listings" | bc) ms" \
    "(+$(echo "scale=1; ($scanned - $plain) * 100 / $plain" | bc)%)"
