#!/usr/bin/env bash
# Memory while rewriting (docs/rewriting.md): listings of more than 500 MB through a gateway that rewrites
# every href (the Manager is published under /east), and the gateway's peak resident set size
# (VmHWM), which must stay under 64 MiB. The simulator runs as its own process so that its
# inventory is not counted; the same listing fetched from it directly is the baseline.
#
#     bash benches/rewrite_rss.sh [VMS] [LEVEL]   # default 230000 VMs (a 515 MB XML listing),
#                                                 # listen.compression_level 6
#
# Exits 1 if the gateway's peak RSS reaches 64 MiB or a listing comes back short or unrewritten.
set -euo pipefail
cd "$(dirname "$0")/.."
vms=${1:-230000}
level=${2:-6}
limit_kib=$((64 * 1024))
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
cargo build --release --quiet
bin=target/release/ovirt-gateway
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "generating $vms VMs..."
exec 3< <(exec "$bin" sim --listen 127.0.0.1:0 --vms "$vms")
pids+=($!)
read -r line <&3
sim_url=${line##* }                       # http://127.0.0.1:PORT/ovirt-engine/api
sim_base=${sim_url%/ovirt-engine/api}

cat > "$work/gateway.toml" <<TOML
[listen]
address = "127.0.0.1:0"
plain_http = true
compression_level = $level
[log]
level = "warn,ovirt_gateway=info"
[[manager]]
name = "simulator"
url = "$sim_url"
prefix = "/east"
TOML
exec 4< <(exec "$bin" serve --config "$work/gateway.toml" 2>&1)
gateway_pid=$!
pids+=("$gateway_pid")
while read -r line <&4; do
    [[ $line == *"gateway listening"* ]] && break
done
address=$(grep -o ' address=[0-9.:]*' <<<"$line")
gateway=http://${address# address=}
# Keep draining the gateway's log so that it never blocks on a full pipe.
cat <&4 >"$work/gateway.log" &

hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$gateway_pid/status"; }
# Prints the bytes received (compressed, with gzip) and the seconds of one whole GET.
fetch() {
    curl -sS --fail -o /dev/null -u admin@internal:admin -w '%{size_download} %{time_total}\n' "$@"
}
report() {
    local name=$1; shift
    read -r bytes seconds < <(fetch "$@")
    printf '%-32s %8.1f MB received in %5.2f s   gateway peak RSS %5.1f MiB\n' \
        "$name" "$(bc -l <<<"$bytes / 1000000")" "$seconds" "$(bc -l <<<"$(hwm_kib) / 1024")"
    echo "$bytes" >"$work/last"
}

command -v bc >/dev/null || { apt-get update -qq && apt-get install -y -qq bc; }
rewritten=$(curl -sS --fail -u admin@internal:admin "$gateway/east/ovirt-engine/api/vms?max=1" |
    grep -c 'href="/east/ovirt-engine/api/vms/' || true)
[ "$rewritten" -gt 0 ] || { echo "FAIL: hrefs not rewritten" >&2; exit 1; }

printf 'gateway peak RSS at start: %.1f MiB\n' "$(bc -l <<<"$(hwm_kib) / 1024")"
report "direct, XML (baseline)" "$sim_base/ovirt-engine/api/vms"
direct=$(cat "$work/last")
report "through the gateway, XML" "$gateway/east/ovirt-engine/api/vms"
through=$(cat "$work/last")
# Every href gains "/east": the body grows by 5 bytes per href, never shrinks.
[ "$through" -gt "$direct" ] || { echo "FAIL: rewritten listing is $through bytes, direct $direct" >&2; exit 1; }
report "through the gateway, JSON" -H 'Accept: application/json' "$gateway/east/ovirt-engine/api/vms"
report "through the gateway, XML, gzip $level" --compressed "$gateway/east/ovirt-engine/api/vms"

peak=$(hwm_kib)
if [ "$peak" -ge "$limit_kib" ]; then
    echo "FAIL: gateway peak RSS $((peak / 1024)) MiB, limit 64 MiB" >&2
    exit 1
fi
echo "OK: gateway peak RSS $((peak / 1024)) MiB < 64 MiB"
