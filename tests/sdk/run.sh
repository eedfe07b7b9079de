#!/usr/bin/env bash
# Runs the oVirt Python SDK scenarios (tests/sdk/scenarios.py) against the Manager simulator
# (`ovirt-gateway sim`). On a fresh Debian machine it first installs what the SDK needs to build;
# it fails, never skips, when something it needs cannot be had.
#
# Usage: tests/sdk/run.sh [unittest test names, e.g. scenarios.AuthTests]
# Environment: OVIRT_GATEWAY_BIN (default target/debug/ovirt-gateway), built beforehand.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/sdk-venv
SDK_VERSION=4.6.3

apt_install() {
    echo "installing: $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# The SDK ships as an sdist with a C extension (ovirtsdk4.xml) built against libxml2.
if [[ ! -f /usr/include/libxml2/libxml/parser.h ]] || ! command -v gcc >/dev/null; then
    apt_install libxml2-dev gcc python3-dev
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    if ! python3 -m venv "$VENV"; then
        rm -rf "$VENV"
        apt_install python3-venv
        python3 -m venv "$VENV"
    fi
fi

if ! "$VENV/bin/python" -c 'import ovirtsdk4' 2>/dev/null; then
    "$VENV/bin/python" -m pip install -q "ovirt-engine-sdk-python==$SDK_VERSION"
fi
# Fails here (set -e) if the SDK still cannot be imported.
"$VENV/bin/python" -c 'import ovirtsdk4, ovirtsdk4.version as v; print("ovirtsdk4", v.VERSION)'

# The scenarios against the simulator directly, then through a gateway (the demo: HTTPS, a
# generated CA): the same results both ways.
"$VENV/bin/python" tests/sdk/run_against_sim.py "$@"
"$VENV/bin/python" tests/sdk/run_against_sim.py --through-gateway "$@"
# And through a gateway that publishes the Manager under /east: links are rewritten.
"$VENV/bin/python" tests/sdk/run_against_sim.py --through-gateway --prefix /east "$@"
