#!/usr/bin/env bash
# The gateway against nginx, its peer, in front of the same simulator and in one run
# (docs/performance.md, "Against nginx"). For each path: requests per second, the proxy's CPU
# time per request (user + system of all its processes, from /proc/PID/stat, divided by the
# requests wrk counted; also split into user and system time), p50 and p99 latency, and the
# gateway's ratio to nginx. Each path runs nginx, gateway, gateway, nginx (A B B A) after a
# warm-up of each, so that a drift of the machine weighs on both alike; the figures are the sums
# of the two runs.
#
#     cargo build --release && bash benches/peer.sh [SECONDS] [PATH...]
#
# Paths (all by default):
#   pass     a 2 KB VM entity, the Manager's token passed through; no policies, no cache, no
#            limits; nginx proxies with a keepalive pool
#   basic    the same with Basic credentials (the gateway's sessions), no policies
#   full     Basic, the shipped policies enforced, the cache on and bypassed (no-cache), the
#            limits on with quotas no client reaches
#   hit      as full, answered from the cache; nginx's proxy_cache keyed by credentials and URI
#   listing  the 10,000-VM listing (22 MB of XML) under /east: nginx's sub_filter on the hrefs
#            against the gateway's rewrite
#   tls      pass over HTTPS, both with the same certificate (ECDSA P-256)
#   shared   not against nginx: the full path through a gateway alone against the same through
#            a gateway with [shared] (a redis-server on loopback; docs/replicas.md), A B B A
#
# wrk: 1 thread, 32 connections (4 for the listing). nginx 1.22: one worker, access log on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
shift || true
paths=("$@")
[[ ${#paths[@]} -gt 0 ]] || paths=(pass basic full hit listing tls shared)

apt_install() {
    echo "installing: $*" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || apt_install nginx-light
command -v wrk >/dev/null || apt_install wrk
command -v redis-server >/dev/null || apt_install redis-server
nginx=$(command -v nginx || echo /usr/sbin/nginx)

bin=target/release/ovirt-gateway
[[ -x $bin ]] || { echo "build first: cargo build --release" >&2; exit 1; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [[ -f $dir/nginx.pid ]] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null; rm -rf "$dir"' EXIT
redis-server --bind 127.0.0.1 --port 18379 --save '' --appendonly no >"$dir/redis.log" 2>&1 &

# --- the simulator, a certificate, nginx and three gateways ----------------------------------
"$bin" sim --listen 127.0.0.1:18080 --vms 10000 >"$dir/sim.log" 2>&1 &
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null

mkdir -p "$dir/nginx-cache"
# The worker runs as this user, so that it can write its cache and temporary files in $dir.
cat >"$dir/nginx.conf" <<NGINX
user $(id -un);
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log $dir/nginx-access.log;
    client_body_temp_path $dir/nginx-cache/body;
    proxy_temp_path $dir/nginx-cache/proxy;
    proxy_cache_path $dir/nginx-cache/api keys_zone=api:10m;
    upstream sim { server 127.0.0.1:18080; keepalive 32; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {
        listen 127.0.0.1:18480;
        listen 127.0.0.1:18481 ssl;
        ssl_certificate $dir/tls.crt;
        ssl_certificate_key $dir/tls.key;
        location / { proxy_pass http://sim; }
    }
    # The gateway's cache for comparison: per credentials and URI, 2 s as its entity TTL.
    server {
        listen 127.0.0.1:18482;
        location / {
            proxy_pass http://sim;
            proxy_cache api;
            proxy_cache_key "\$http_authorization \$request_uri";
            proxy_cache_valid 200 2s;
            proxy_ignore_headers Cache-Control Expires Set-Cookie;
        }
    }
    # Links under /east, byte for byte.
    server {
        listen 127.0.0.1:18483;
        location /east/ {
            proxy_pass http://sim/;
            proxy_set_header Accept-Encoding "";
            sub_filter_types application/xml application/json;
            sub_filter_once off;
            sub_filter 'href="/ovirt-engine/' 'href="/east/ovirt-engine/';
        }
    }
}
NGINX
"$nginx" -c "$dir/nginx.conf" -g 'daemon off;' 2>>"$dir/nginx-error.log" &

# gateway NAME PORT TOML: a gateway on 127.0.0.1:PORT (admin PORT+1) in front of the simulator,
# both at the root and under /east.
gateway() {
    cat >"$dir/$1.toml" <<TOML
[listen]
address = "127.0.0.1:$2"
$3
[admin]
address = "127.0.0.1:$(($2 + 1))"
[[manager]]
name = "sim"
url = "http://127.0.0.1:18080/ovirt-engine/api"
[[manager]]
name = "east"
url = "http://127.0.0.1:18080/ovirt-engine/api"
prefix = "/east"
TOML
    "$bin" serve --config "$dir/$1.toml" >"$dir/$1.log" 2>&1 &
    printf -v "pid_$1" '%d' $!
}
plain='plain_http = true'
no_limits='[rate_limit]
enabled = false'
gateway pass 18443 "$plain
[auth]
bearer_passthrough = true
$no_limits"
full="$plain
[policy]
dir = \"$PWD/policies\"
[cache]
[rate_limit.per_ip]
rate = 1000000
burst = 1000000
[rate_limit.per_user]
rate = 1000000
burst = 1000000
[rate_limit.manager]
inflight = 256
per_user_inflight = 128"
gateway full 18445 "$full"
# The same with [shared]: a token key and a store key of its own.
openssl genpkey -algorithm ed25519 -out "$dir/token.pem" 2>/dev/null
openssl rand -base64 48 >"$dir/shared.key"
gateway shared 18449 "$full
[auth]
token_key = \"$dir/token.pem\"
[shared]
url = \"redis://127.0.0.1:18379/\"
key = \"$dir/shared.key\"
replicas = 2"
gateway tls 18447 "tls_cert = \"$dir/tls.crt\"
tls_key = { file = \"$dir/tls.key\" }
[auth]
bearer_passthrough = true
$no_limits"
for port in 18444 18446 18448 18450; do
    for _ in $(seq 200); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break
        sleep 0.1
    done
    curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" || {
        echo "a gateway did not become ready:"; for f in "$dir"/*.log; do echo "$f:"; tail -n 5 "$f"; done; exit 1; } >&2
done
for _ in $(seq 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18480/) != 000 ]] && break
    sleep 0.1
done
[[ -f $dir/nginx.pid ]] || { echo "nginx did not start:" >&2; cat "$dir/nginx-error.log" >&2; exit 1; }

token=$(curl -sf -H 'Accept: application/json' \
    -d 'grant_type=password&scope=ovirt-app-api&username=admin%40internal&password=admin' \
    http://127.0.0.1:18080/ovirt-engine/sso/oauth/token |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
bearer="Authorization: Bearer $token"
basic="Authorization: Basic $(printf admin@internal:admin | base64)"
vm=$(curl -sf -H "$bearer" -H 'Accept: application/json' \
    'http://127.0.0.1:18080/ovirt-engine/api/vms?max=1' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["vm"][0]["id"])')
entity=/ovirt-engine/api/vms/$vm
echo "entity: $(curl -sf -H "$bearer" "http://127.0.0.1:18080$entity" | wc -c) bytes; listing:" \
    "$(curl -sf -H "$bearer" http://127.0.0.1:18080/ovirt-engine/api/vms | wc -c) bytes"

# --- measuring ---------------------------------------------------------------------------------
hz=$(getconf CLK_TCK)
# nginx's master and worker (not its cache loader, which exits once it has read the cache).
nginx_pids() {
    local master
    master=$(cat "$dir/nginx.pid")
    echo "$master $(pgrep -P "$master" -f 'worker process' | tr '\n' ' ')"
}
# The user and the system ticks of the processes given: "USER SYSTEM".
ticks() {
    local u=0 s=0 pid
    for pid in "$@"; do
        read -r pu ps < <(awk '{print $14, $15}' "/proc/$pid/stat")
        u=$((u + pu)) s=$((s + ps))
    done
    echo "$u $s"
}
# wrk's latency in microseconds ("812.00us", "1.23ms", "1.01s").
micros() { awk -v t="$1" 'BEGIN { n = t + 0; if (t ~ /us$/) print n; else if (t ~ /ms$/) print n * 1000; else print n * 1000000 }'; }

# Memory: each gateway's RSS and the requests it has served (its own counter), before and after.
memory() {
    local name port pid pid_var served
    for name in pass full tls shared; do
        case $name in pass) port=18444 ;; full) port=18446 ;; tls) port=18448 ;; shared) port=18450 ;; esac
        pid_var="pid_$name"
        pid=${!pid_var}
        served=$(curl -sf "http://127.0.0.1:$port/metrics" |
            awk '/^gateway_requests_total/ {n += $2} END {printf "%d", n}')
        printf '  gateway %-4s RSS %3d MiB after %d requests\n' "$name" \
            "$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status")" "$served"
    done
    printf '  nginx worker RSS %d MiB\n' \
        "$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$(pgrep -P "$(cat "$dir/nginx.pid")" -f 'worker process')/status")"
}

# run PIDS -- WRK-ARGS: one measured wrk run; prints "requests user-ticks system-ticks p50us p99us".
run() {
    local pids=() before after out bu bs au as
    while [[ $1 != -- ]]; do pids+=("$1"); shift; done
    shift
    read -r bu bs <<<"$(ticks "${pids[@]}")"
    out=$(wrk -t1 --latency -d"${seconds}s" "$@")
    read -r au as <<<"$(ticks "${pids[@]}")"
    if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then
        echo "errors in the run ($*):" >&2; echo "$out" >&2; exit 1
    fi
    echo "$(awk '/requests in/ {print $1}' <<<"$out") $((au - bu)) $((as - bs))" \
        "$(micros "$(awk '$1 == "50%" {print $2}' <<<"$out")")" \
        "$(micros "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
}

# measure NAME CONNECTIONS NGINX-URL GATEWAY-URL GATEWAY-PID [HEADER...]: A B B A, one table row.
echo "memory at the start:"
memory
printf '%-8s %-8s %10s %11s %9s %9s %8s %8s\n' path proxy 'req/s' 'CPU us/req' 'user us' 'sys us' \
    'p50 ms' 'p99 ms'
# compare NAME CONNECTIONS A-LABEL A-URL "A-PIDS" B-LABEL B-URL "B-PIDS" [HEADER...]: A B B A,
# one table row each and the ratio of B to A.
compare() {
    local name=$1 connections=$2 a_label=$3 a_url=$4 b_label=$6 b_url=$7
    local a_pids b_pids
    read -ra a_pids <<<"$5"
    read -ra b_pids <<<"$8"
    shift 8
    local headers=() h
    for h in "$@"; do headers+=(-H "$h"); done
    local args=(-c"$connections" "${headers[@]}")
    wrk -t1 -d2s "${args[@]}" "$a_url" >/dev/null
    wrk -t1 -d2s "${args[@]}" "$b_url" >/dev/null
    local a1 b1 b2 a2
    a1=$(run "${a_pids[@]}" -- "${args[@]}" "$a_url")
    b1=$(run "${b_pids[@]}" -- "${args[@]}" "$b_url")
    b2=$(run "${b_pids[@]}" -- "${args[@]}" "$b_url")
    a2=$(run "${a_pids[@]}" -- "${args[@]}" "$a_url")
    python3 - "$name" "$seconds" "$hz" "$a1" "$a2" "$b1" "$b2" "$a_label" "$b_label" <<'PY'
import sys
name, seconds, hz = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
def total(a, b):
    a, b = [list(map(float, x.split())) for x in (a, b)]
    requests, user, system = a[0] + b[0], a[1] + b[1], a[2] + b[2]
    per = 1e6 / hz / requests
    return (requests / (2 * seconds), (user + system) * per, user * per, system * per,
            (a[3] + b[3]) / 2000, (a[4] + b[4]) / 2000)
first, second = total(sys.argv[4], sys.argv[5]), total(sys.argv[6], sys.argv[7])
row = '%-8s %-8s %10.0f %11.1f %9.1f %9.1f %8.2f %8.2f'
for proxy, figures in ((sys.argv[8], first), (sys.argv[9], second)):
    print(row % ((name, proxy) + figures))
print(row.replace('.0f', '.2f').replace('.1f', '.2f') %
      ((name, 'ratio') + tuple(s / f for s, f in zip(second, first))))
PY
}

# measure NAME CONNECTIONS NGINX-URL GATEWAY-URL GATEWAY-PID [HEADER...]: against nginx.
measure() {
    local name=$1 connections=$2 nginx_url=$3 gateway_url=$4 gpid=$5
    shift 5
    compare "$name" "$connections" nginx "$nginx_url" "$(nginx_pids)" gateway "$gateway_url" "$gpid" "$@"
}

for path in "${paths[@]}"; do
    case $path in
    pass) measure pass 32 "http://127.0.0.1:18480$entity" "http://127.0.0.1:18443$entity" \
        "$pid_pass" "$bearer" ;;
    basic) measure basic 32 "http://127.0.0.1:18480$entity" "http://127.0.0.1:18443$entity" \
        "$pid_pass" "$basic" ;;
    full) measure full 32 "http://127.0.0.1:18480$entity" "http://127.0.0.1:18445$entity" \
        "$pid_full" "$basic" 'Cache-Control: no-cache' ;;
    hit) measure hit 32 "http://127.0.0.1:18482$entity" "http://127.0.0.1:18445$entity" \
        "$pid_full" "$basic" ;;
    listing) measure listing 4 http://127.0.0.1:18483/east/ovirt-engine/api/vms \
        http://127.0.0.1:18443/east/ovirt-engine/api/vms "$pid_pass" "$bearer" ;;
    tls) measure tls 32 "https://127.0.0.1:18481$entity" "https://127.0.0.1:18447$entity" \
        "$pid_tls" "$bearer" ;;
    shared) compare shared 32 alone "http://127.0.0.1:18445$entity" "$pid_full" \
        shared "http://127.0.0.1:18449$entity" "$pid_shared" "$basic" 'Cache-Control: no-cache' ;;
    *) echo "unknown path: $path" >&2; exit 2 ;;
    esac
done
echo "memory at the end:"
memory
