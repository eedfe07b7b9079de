# Sourced by the benchmark scripts: `start_sim_and_gateway VMS [TOML]` starts the release
# build's simulator with VMS VMs on 127.0.0.1:18080 and a gateway in front of it on
# 127.0.0.1:18443 (plain HTTP; admin on 18444) with TOML added to its configuration, and
# returns once the gateway is ready. Sets `bin`, `dir` (logs, configuration) and `gateway`
# (its pid); both are stopped when the script exits.
bin=target/release/ovirt-gateway
[[ -x $bin ]] || { echo "build first: cargo build --release" >&2; exit 1; }

start_sim_and_gateway() {
    dir=$(mktemp -d)
    trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
    "$bin" sim --listen 127.0.0.1:18080 --vms "$1" >"$dir/sim.log" 2>&1 &
    cat >"$dir/gateway.toml" <<TOML
[listen]
address = "127.0.0.1:18443"
plain_http = true
[admin]
address = "127.0.0.1:18444"
${2:-}
[[manager]]
name = "sim"
url = "http://127.0.0.1:18080/ovirt-engine/api"
TOML
    "$bin" serve --config "$dir/gateway.toml" >"$dir/gateway.log" 2>&1 &
    gateway=$!
    for _ in $(seq 100); do
        curl -sf -o /dev/null http://127.0.0.1:18444/readyz && return
        sleep 0.1
    done
    echo "the gateway did not become ready: $dir/gateway.log" >&2
    exit 1
}
