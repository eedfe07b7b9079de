#!/usr/bin/env bash
# Shaping before refusing (docs/performance.md, "Shaping"): heavy workloads of real clients
# (benches/shaping.py, with the oVirt Python SDK) against a simulator of 1,000 VMs, directly and
# through the gateway with its default rate limits, then a runaway loop. Prints, per workload,
# what the client saw (requests, statuses, wall time) and what the gateway did (requests
# delayed, the delay added, requests refused with 429).
#
#     cargo build --release && bash benches/shaping.sh [WORKLOAD...]
#
# Workloads: fetch_nested inventory nics_and_disks runaway (default: all). tests/clients/run.sh
# installs the SDK into target/sdk-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
python=target/sdk-venv/bin/python
[[ -x $python ]] || { echo "install the SDK first: tests/clients/run.sh" >&2; exit 1; }
source benches/sim_gateway.sh
start_sim_and_gateway 1000
metric() {
    curl -s http://127.0.0.1:18444/metrics | awk -v series="$1" '$1 == series { print $2; found = 1 } END { if (!found) print 0 }'
}
workloads=("$@")
((${#workloads[@]})) || workloads=(fetch_nested inventory nics_and_disks runaway)
for workload in "${workloads[@]}"; do
    direct=$("$python" benches/shaping.py http://127.0.0.1:18080/ovirt-engine/api admin@internal admin "$workload")
    delayed0=$(metric 'gateway_ratelimit_decisions_total{result="delayed",scope="user"}')
    limited0=$(metric 'gateway_ratelimit_decisions_total{result="limited",scope="user"}')
    delay0=$(metric 'gateway_ratelimit_delay_seconds_sum{scope="user"}')
    through=$("$python" benches/shaping.py http://127.0.0.1:18443/ovirt-engine/api admin@internal admin "$workload")
    delayed=$(($(metric 'gateway_ratelimit_decisions_total{result="delayed",scope="user"}') - delayed0))
    limited=$(($(metric 'gateway_ratelimit_decisions_total{result="limited",scope="user"}') - limited0))
    delay=$(echo "$(metric 'gateway_ratelimit_delay_seconds_sum{scope="user"}') - $delay0" | bc -l)
    echo "direct:  $direct"
    echo "gateway: $through"
    printf '%s through the gateway: %d delayed, %.2f s of delay added, %d refused (429)\n' \
        "$workload" "$delayed" "$delay" "$limited"
done
