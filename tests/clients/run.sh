#!/usr/bin/env bash
# Runs the real clients against the Manager simulator, directly and through a gateway
# (tests/clients/run.py): the oVirt Python SDK's scenarios (tests/sdk/scenarios.py) and Ansible's
# ovirt.ovirt playbooks (tests/ansible/*.yml). On a fresh Debian machine it first installs what
# the SDK needs to build, the SDK and the pinned ansible package in a venv; it fails, never skips,
# when something it needs cannot be had.
#
# Usage: tests/clients/run.sh [sdk | ansible | TestClass | PLAYBOOK.yml ...]
# Environment: OVIRT_GATEWAY_BIN (default target/debug/ovirt-gateway), built beforehand.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/sdk-venv
SDK_VERSION=4.6.3
# ansible 10.7.0 bundles ovirt.ovirt 3.2.0 and runs on Python 3.10 and later.
ANSIBLE_VERSION=10.7.0

apt_install() {
    echo "installing: $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# The replicas mode: a shared store and a balancer in front of the gateways.
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v haproxy >/dev/null || missing+=(haproxy)
if ((${#missing[@]})); then
    apt_install "${missing[@]}"
fi

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

if ! "$VENV/bin/ansible-playbook" --version 2>/dev/null | grep -q "core 2.17"; then
    "$VENV/bin/python" -m pip install -q "ansible==$ANSIBLE_VERSION"
fi
"$VENV/bin/ansible-galaxy" collection list ovirt.ovirt 2>/dev/null | grep -q "ovirt.ovirt *3.2.0"

"$VENV/bin/python" tests/clients/run.py "$@"
