#!/usr/bin/env bash
# Runs the Ansible playbooks (tests/ansible/*.yml) with the ovirt.ovirt collection against the
# Manager simulator, directly and through a gateway, and compares what they observed
# (tests/ansible/run.py). Uses the venv of tests/sdk/run.sh (which it runs first when the venv
# lacks the SDK) and installs the pinned `ansible` package into it; fails, never skips, when
# something it needs cannot be had.
#
# Usage: tests/ansible/run.sh [PLAYBOOK.yml ...]
# Environment: OVIRT_GATEWAY_BIN (default target/debug/ovirt-gateway), built beforehand.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/sdk-venv
# ansible 10.7.0 bundles ovirt.ovirt 3.2.0 and runs on Python 3.10 and later.
ANSIBLE_VERSION=10.7.0

if ! "$VENV/bin/python" -c 'import ovirtsdk4' 2>/dev/null; then
    echo "the SDK venv is missing: run tests/sdk/run.sh first" >&2
    exit 1
fi
if ! "$VENV/bin/ansible-playbook" --version 2>/dev/null | grep -q "core 2.17"; then
    "$VENV/bin/python" -m pip install -q "ansible==$ANSIBLE_VERSION"
fi
"$VENV/bin/ansible-galaxy" collection list ovirt.ovirt 2>/dev/null | grep -q "ovirt.ovirt *3.2.0"
"$VENV/bin/python" tests/ansible/run.py "$@"
