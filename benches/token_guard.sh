#!/usr/bin/env bash
# The token guard's cost end to end (docs/performance.md, "Token guard"): the simulator's
# 10,000-VM listing (22.4 MB of XML) fetched through the gateway ROUNDS x 100 times with the
# Manager's own token passed through (not scanned: the client holds that token) and with Basic
# credentials (the gateway's upstream token: every byte scanned), in batches of 50 interleaved
# A B B A, so that a drift of the machine weighs on both alike. Prints the gateway's CPU time
# (user + system, from /proc/PID/stat) and the wall time of each batch.
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
# The gateway's user and system ticks so far.
ticks() { awk '{print $14, $15}' "/proc/$gateway/stat"; }
hz=$(getconf CLK_TCK)
batch() { for _ in $(seq 50); do curl -sf -o /dev/null "$@" http://127.0.0.1:18443/ovirt-engine/api/vms; done; }
batch -H "Authorization: Bearer $token"
batch -u admin@internal:admin
plain_user=0 plain_system=0 scanned_user=0 scanned_system=0
# One batch: adds its user and system ticks to ${1}_user and ${1}_system, prints them and the
# batch's wall time.
measure() {
    local into=$1 user0 system0 user1 system1 t0 t1
    shift
    read -r user0 system0 < <(ticks); t0=$(date +%s.%N)
    batch "$@"
    read -r user1 system1 < <(ticks); t1=$(date +%s.%N)
    printf '  %s: %d user + %d system ticks, %.2f s\n' "$into" $((user1 - user0)) \
        $((system1 - system0)) "$(echo "$t1 - $t0" | bc)"
    printf -v "${into}_user" '%d' $(( ${into}_user + user1 - user0 ))
    printf -v "${into}_system" '%d' $(( ${into}_system + system1 - system0 ))
}
for round in $(seq "$rounds"); do
    echo "round $round"
    measure plain -H "Authorization: Bearer $token"
    measure scanned -u admin@internal:admin
    measure scanned -u admin@internal:admin
    measure plain -H "Authorization: Bearer $token"
done
listings=$((rounds * 100))
per_listing() { echo "scale=2; $1 * 1000 / $hz / $listings" | bc; }
growth() { echo "scale=1; ($2 - $1) * 100 / $1" | bc; }
plain=$((plain_user + plain_system)) scanned=$((scanned_user + scanned_system))
echo "gateway CPU per listing, not scanned / scanned:" \
    "user $(per_listing $plain_user) / $(per_listing $scanned_user) ms ($(growth $plain_user $scanned_user)%)," \
    "system $(per_listing $plain_system) / $(per_listing $scanned_system) ms ($(growth $plain_system $scanned_system)%)," \
    "total $(per_listing $plain) / $(per_listing $scanned) ms ($(growth $plain $scanned)%)"
