#!/usr/bin/env bash
# Runs every check and test of ovirt-gateway: formatting, lints, unit and end-to-end tests, the
# Python SDK scenarios against the Manager simulator (tests/sdk/), and the packaging for operators
# (tests/deploy/).
# On a fresh Debian machine it first installs what is missing; it fails, never skips, when
# something it needs cannot be had.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v cc >/dev/null || missing+=(gcc)          # ring (rustls' crypto) builds C code
command -v kill >/dev/null || missing+=(procps)     # the CLI test sends SIGHUP/SIGTERM
command -v redis-server >/dev/null || missing+=(redis-server)  # the replicas' shared store (tests/e2e/replicas.rs)
command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)  # its failover, by Sentinel
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
if ! command -v cargo >/dev/null; then
    echo "cargo is required: install Rust with rustup (https://rustup.rs)" >&2
    exit 1
fi
for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        rustup component add "$component"
    fi
done

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# The gateway without the simulator (feature `sim` off) must build cleanly too.
cargo clippy --locked --no-default-features -- -D warnings
cargo test --locked
# The real Python SDK and Ansible's ovirt.ovirt against the simulator, directly and through a
# gateway (installs libxml2-dev, the SDK and ansible in a venv if missing).
cargo build --locked
tests/clients/run.sh
# The packaging for operators (deploy/): the systemd unit, the Debian package, the container file,
# the Kubernetes manifests, the Prometheus rules against a real Prometheus scraping a gateway, the
# Grafana dashboard's queries (installs prometheus, dpkg-dev, cargo-deb and a venv if missing).
tests/deploy/run.sh
