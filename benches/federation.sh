#!/usr/bin/env bash
# The merged view's cost (docs/performance.md, "The merged view"): three simulators of VMS VMs
# each (other seeds and names), behind one gateway (plain HTTP, no cache, limits off). ROUTES
# `prefix`: each under its own prefix (/east, /west, /north) and all three merged at /all, so
# every href is rewritten; `host`: each by Host (east.example, ...) and merged by Host
# (all.example), nothing rewritten.
#
# 1. Listings: the merged listing of all 3 x VMS VMs, against the three members' listings fetched
#    straight from the simulators one after the other, ROUNDS times each, interleaved. Prints the
#    bytes and MB/s of each, and the gateway's CPU time (user + system, /proc) per merged listing.
# 2. By id: one VM by id through its member's own route and through the merged view (the id
#    known to the index), with wrk (1 thread, 8 connections, SECONDS each, interleaved A B B A). Prints
#    req/s, p50/p99 latency and the gateway's CPU per request of each.
# 3. The gateway's peak resident set size (VmHWM) after all of it.
#
#     cargo build --release && bash benches/federation.sh [ROUTES] [VMS] [ROUNDS] [SECONDS]
#
# Defaults: prefix, 10000 VMs per member, 5 rounds, 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
routes=${1:-prefix}
vms=${2:-10000}
rounds=${3:-5}
seconds=${4:-10}
case $routes in
    prefix) route() { echo "prefix = \"/$1\""; }; at() { echo "http://127.0.0.1:18443/$1/ovirt-engine/api$2"; } ;;
    host) route() { echo "host = \"$1.example\""; }; at() { echo "http://127.0.0.1:18443/ovirt-engine/api$2"; } ;;
    *) echo "ROUTES is prefix or host" >&2; exit 1 ;;
esac
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
bin=target/release/ovirt-gateway
[[ -x $bin ]] || { echo "build first: cargo build --release" >&2; exit 1; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT

members=(east west north)
managers=""
for i in 0 1 2; do
    name=${members[$i]}
    "$bin" sim --listen "127.0.0.1:$((18081 + i))" --vms "$vms" --seed $((10 + i)) \
        --name-prefix "$name-" >"$dir/sim-$name.log" 2>&1 &
    managers+="
[[manager]]
name = \"$name\"
url = \"http://127.0.0.1:$((18081 + i))/ovirt-engine/api\"
$(route "$name")"
done
cat >"$dir/gateway.toml" <<TOML
[listen]
address = "127.0.0.1:18443"
plain_http = true
[admin]
address = "127.0.0.1:18444"
[log]
level = "warn"
[rate_limit]
enabled = false
$managers
[federation]
$(route all)
members = ["east", "west", "north"]
TOML
"$bin" serve --config "$dir/gateway.toml" >"$dir/gateway.log" 2>&1 &
gateway=$!
ready() {
    for _ in $(seq 600); do
        [[ $(curl -s http://127.0.0.1:18444/readyz | grep -o '"up":true' | wc -l) == 3 ]] && return
        sleep 0.1
    done
    echo "the gateway did not see its three Managers up: $dir/gateway.log" >&2
    exit 1
}
ready
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$gateway/stat"; }
auth=(-u admin@internal:admin)
fetch() { curl -sS --fail -o /dev/null "${auth[@]}" -w '%{size_download} %{time_total}\n' "$@"; }
# A request on a route: `on NAME PATH` sets `url` and `header` (its Host header, by host).
on() {
    url=$(at "$1" "$2")
    case $routes in prefix) header=() ;; host) header=(-H "Host: $1.example") ;; esac
    return 0
}
on all /vms
# Warm: sessions at every member, the simulators' listings rendered once.
fetch "${header[@]}" "$url" >/dev/null

echo "routes by $routes; listings: $rounds rounds, ${vms} VMs per member"
merged_bytes=0 merged_seconds=0 merged_ticks=0 direct_bytes=0 direct_seconds=0
for round in $(seq "$rounds"); do
    t0=$(ticks)
    on all /vms
    read -r bytes secs < <(fetch "${header[@]}" "$url")
    t1=$(ticks)
    merged_bytes=$((merged_bytes + bytes)) merged_ticks=$((merged_ticks + t1 - t0))
    merged_seconds=$(echo "$merged_seconds + $secs" | bc)
    for i in 0 1 2; do
        read -r bytes secs < <(fetch "http://127.0.0.1:$((18081 + i))/ovirt-engine/api/vms")
        direct_bytes=$((direct_bytes + bytes))
        direct_seconds=$(echo "$direct_seconds + $secs" | bc)
    done
    echo "  round $round: merged $(echo "scale=2; $merged_seconds / $round" | bc) s per listing so far"
done
mbps() { echo "scale=1; $1 / $2 / 1000000" | bc; }
merged_rate=$(mbps "$merged_bytes" "$merged_seconds")
direct_rate=$(mbps "$direct_bytes" "$direct_seconds")
echo "merged listing: $((merged_bytes / rounds)) bytes, $(echo "scale=3; $merged_seconds / $rounds" | bc) s, $merged_rate MB/s;" \
    "gateway CPU $(echo "scale=1; $merged_ticks * 1000 / $hz / $rounds" | bc) ms per listing"
echo "direct, three listings one after the other: $((direct_bytes / rounds)) bytes," \
    "$(echo "scale=3; $direct_seconds / $rounds" | bc) s, $direct_rate MB/s"
echo "merged / direct throughput: $(echo "scale=2; $merged_rate / $direct_rate" | bc)"

id=$(curl -s "${auth[@]}" -H 'Accept: application/json' \
    "http://127.0.0.1:18082/ovirt-engine/api/vms?search=name%3Dwest-vm-00001" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["vm"][0]["id"])')
basic="Authorization: Basic $(printf admin@internal:admin | base64)"
on all "/vms/$id"
curl -sf -o /dev/null -H "$basic" "${header[@]}" "$url"   # the id is in the index from here on
declare -A requests=() cpu=()
# One wrk run on a route: adds its requests and the gateway's ticks to requests[$1] and cpu[$1].
run() {
    local name=$1 out t0 t1 n
    on "$2" "/vms/$id"
    t0=$(ticks)
    out=$(wrk -t1 -c8 -d"${seconds}s" --latency -H "$basic" "${header[@]}" "$url")
    t1=$(ticks)
    n=$(awk '/requests in/ { print $1 }' <<<"$out")
    requests[$name]=$(( ${requests[$name]:-0} + n ))
    cpu[$name]=$(( ${cpu[$name]:-0} + t1 - t0 ))
    printf '  %-7s %8s req/s  p50 %s  p99 %s\n' "$name" \
        "$(awk '/Requests\/sec/ { print $2 }' <<<"$out")" \
        "$(awk '$1 == "50%" { print $2 }' <<<"$out")" "$(awk '$1 == "99%" { print $2 }' <<<"$out")"
}
echo "one VM by id, ${seconds} s per run:"
run member west; run merged all; run merged all; run member west
per_request() { echo "scale=1; ${cpu[$1]} * 1000000 / $hz / ${requests[$1]}" | bc; }
echo "gateway CPU per request: west's own route $(per_request member) us, merged $(per_request merged) us" \
    "($(echo "scale=1; (${cpu[merged]} * ${requests[member]} - ${cpu[member]} * ${requests[merged]}) * 100 / (${cpu[member]} * ${requests[merged]})" | bc)%)"
echo "gateway peak RSS: $(awk '/^VmHWM/ { print $2, $3 }' "/proc/$gateway/status")"
