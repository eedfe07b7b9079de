"""The Kubernetes manifests (deploy/README.md, "What is tested").

Renders deploy/kubernetes/base and overlays/example with `kubectl kustomize` (the overlay in a
copy given lab TLS material made here), validates every object offline against the Kubernetes
JSON schemas that the kubernetes-validate package ships (strict: unknown fields fail), the
ServiceMonitor against tests/deploy/servicemonitor.schema.json, checks that the objects refer to
one another (selectors, ports, volumes), and runs `ovirt-gateway check` on the configuration as
the pod would see it mounted.

Usage: kubernetes.py GATEWAY_BINARY WORK_DIR
"""

import base64
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "deploy/kubernetes"
# The oldest Kubernetes release the manifests are meant for, and the newest the package knows.
VERSIONS = ["1.29.0", kubernetes_validate.utils.latest_version()]


def log(message):
    print(f"  {message}", flush=True)


def render(path):
    out = subprocess.run(["kubectl", "kustomize", str(path)], check=True, capture_output=True,
                         text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def lab_material(tls):
    tls.mkdir(parents=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
                    "-subj", "/CN=gateway.example.com",
                    "-addext", "subjectAltName=DNS:gateway.example.com",
                    "-keyout", str(tls / "gateway.key"), "-out", str(tls / "gateway.crt")],
                   check=True, capture_output=True)
    shutil.copy(tls / "gateway.crt", tls / "engine-ca.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(tls / "token.key")],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "rand", "-base64", "-out", str(tls / "shared.key"), "48"],
                   check=True, capture_output=True)


def validate(docs, where):
    monitor_schema = json.loads((REPO / "tests/deploy/servicemonitor.schema.json").read_text())
    for doc in docs:
        name = f"{where}: {doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "ServiceMonitor":
            jsonschema.validate(doc, monitor_schema)
        else:
            for version in VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)
        log(f"valid: {name}")


def selects(selector, labels, what):
    assert selector and all(labels.get(k) == v for k, v in selector.items()), \
        f"{what}: {selector} does not select {labels}"


def check_references(docs):
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    (deployment,) = by_kind["Deployment"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    selects(deployment["spec"]["selector"]["matchLabels"], labels, "Deployment selector")
    spec = pod["spec"]
    (container,) = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"https": 8443, "admin": 9090}, ports
    probes = {kind: (container[kind]["httpGet"]["path"], container[kind]["httpGet"]["port"])
              for kind in ("livenessProbe", "readinessProbe")}
    assert probes == {"livenessProbe": ("/healthz", "admin"),
                      "readinessProbe": ("/readyz", "admin")}, probes
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True, security
    assert security["allowPrivilegeEscalation"] is False, security
    assert security["capabilities"]["drop"] == ["ALL"], security
    assert spec["securityContext"]["runAsNonRoot"] is True, spec["securityContext"]
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"], resources
    assert resources["limits"]["memory"], resources
    for term in spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]:
        selects(term["podAffinityTerm"]["labelSelector"]["matchLabels"], labels, "anti-affinity")
    assert deployment["spec"]["replicas"] >= 2, deployment["spec"]["replicas"]
    # Every volume names an object rendered with it (kustomize appends the generators' hashes).
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    for volume in spec["volumes"]:
        source = ("ConfigMap", volume["configMap"]["name"]) if "configMap" in volume \
            else ("Secret", volume["secret"]["secretName"])
        assert source in names, f"volume {volume['name']}: {source} not rendered"
        assert volume["name"] in mounts, volume
    services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
    for service in services.values():
        selects(service["spec"]["selector"], labels, f"Service {service['metadata']['name']}")
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, port
    assert [p["targetPort"] for p in services["ovirt-gateway"]["spec"]["ports"]] == ["https"]
    (pdb,) = by_kind["PodDisruptionBudget"]
    selects(pdb["spec"]["selector"]["matchLabels"], labels, "PodDisruptionBudget")
    (policy,) = by_kind["NetworkPolicy"]
    selects(policy["spec"]["podSelector"]["matchLabels"], labels, "NetworkPolicy")
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress_ports == {"https", "admin"}, ingress_ports
    (monitor,) = by_kind["ServiceMonitor"]
    admin = services["ovirt-gateway-admin"]
    selects(monitor["spec"]["selector"]["matchLabels"], admin["metadata"]["labels"], "ServiceMonitor")
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == \
        [p["name"] for p in admin["spec"]["ports"]] == ["admin"]
    # The job label the rules select (deploy/prometheus/ovirt-gateway.rules.yml).
    assert admin["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "ovirt-gateway"
    # Each replica takes 1/shared.replicas of every rate limit while the store is lost.
    (config,) = [d for d in docs if d["kind"] == "ConfigMap" and "gateway.toml" in d["data"]]
    shared = tomllib.loads(config["data"]["gateway.toml"])["shared"]
    assert shared["replicas"] == deployment["spec"]["replicas"], (shared, deployment["spec"])
    log("selectors, ports, probes, volumes, the ServiceMonitor's job and shared.replicas agree")
    return mounts, spec["volumes"]


def check_mounted_config(binary, docs, mounts, volumes, root, config=None):
    """Writes the ConfigMaps and Secrets where the pod mounts them and runs `check` on them."""
    by_name = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("ConfigMap", "Secret")}
    shutil.rmtree(root, ignore_errors=True)
    for volume in volumes:
        name = volume["configMap"]["name"] if "configMap" in volume else volume["secret"]["secretName"]
        doc = by_name[name]
        target = root / mounts[volume["name"]].removeprefix("/")
        target.mkdir(parents=True, exist_ok=True)
        for key, value in doc.get("data", {}).items():
            data = base64.b64decode(value) if doc["kind"] == "Secret" else value.encode()
            (target / key).write_bytes(data)
    etc = root / "etc/ovirt-gateway"
    if config:
        shutil.copy(config, etc / "gateway.toml")
    result = subprocess.run([str(binary), "check", "--config", str(etc / "gateway.toml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    log(f"ovirt-gateway check on {config.relative_to(REPO) if config else 'the rendered'} "
        f"configuration as mounted: {result.stdout.strip()}")


def main():
    binary, work = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(SOURCE, work / "kubernetes")
    lab_material(work / "kubernetes/overlays/example/tls")

    # The base's policies are the shipped ones (policies/), byte for byte.
    base_policies = sorted(p.name for p in (SOURCE / "base/policies").iterdir())
    shipped = sorted(p.name for p in (REPO / "policies").iterdir()
                     if p.suffix == ".cedar" or p.name == "entities.json")
    assert base_policies == shipped, (base_policies, shipped)
    for name in shipped:
        assert (SOURCE / "base/policies" / name).read_bytes() == (REPO / "policies" / name).read_bytes(), \
            f"deploy/kubernetes/base/policies/{name} differs from policies/{name}"
    log(f"base policies equal policies/: {', '.join(shipped)}")

    base = render(work / "kubernetes/base")
    validate(base, "base")
    overlay = render(work / "kubernetes/overlays/example")
    validate(overlay, "overlay")
    kinds = sorted(d["kind"] for d in overlay)
    assert kinds == ["ConfigMap", "ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget",
                     "Secret", "Secret", "Service", "Service", "ServiceMonitor"], kinds
    assert all(d["metadata"].get("namespace") == "ovirt-gateway" for d in overlay)
    mounts, volumes = check_references(overlay)
    root = work / "mounted"
    check_mounted_config(binary, overlay, mounts, volumes, root)
    check_mounted_config(binary, overlay, mounts, volumes, root, SOURCE / "base/gateway.toml")


if __name__ == "__main__":
    main()
