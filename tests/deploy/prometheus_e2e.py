"""The alerts and the dashboard against a real Prometheus (deploy/README.md, "What is tested").

Starts the Manager simulator, Redis, a gateway in front of the simulator (HTTPS with a lab
certificate, the shipped policies, the cache, tight limits for one user, its state shared through
Redis) and Prometheus (Debian's package) scraping the gateway's admin listener every second,
with deploy/prometheus/ovirt-gateway.rules.yml loaded with every `for:` shortened to 1s. Drives
traffic that makes every series the dashboard reads, reloads the certificate with SIGHUP, kills
the simulator, then Redis, and checks through Prometheus's HTTP API that the series arrived, the
certificate's expiry followed the reload, the recording rules produce values,
GatewayManagerDown, GatewayManagerBreakerOpen and GatewaySharedStoreDegraded fire, and every
PromQL expression of deploy/grafana/ovirt-gateway.json parses and returns data.

Every wait polls a condition with a deadline; nothing sleeps to synchronise.
Usage: prometheus_e2e.py GATEWAY_BINARY WORK_DIR
"""

import base64
import json
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy/prometheus/ovirt-gateway.rules.yml"
DASHBOARD = REPO / "deploy/grafana/ovirt-gateway.json"


def log(message):
    print(f"  {message}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(what, condition, seconds=60, every=0.25):
    """Polls `condition` until it returns something truthy; fails naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError, KeyError) as error:
            last = error
        time.sleep(every)
    raise AssertionError(f"timed out after {seconds}s waiting for {what} (last error: {last})")


def certificate(work, name, days):
    """A self-signed certificate for 127.0.0.1 valid for `days`, and its notAfter in seconds."""
    cert, key = work / f"{name}.crt", work / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", str(days), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    end = subprocess.run(["openssl", "x509", "-enddate", "-noout", "-in", str(cert)],
                         check=True, capture_output=True, text=True).stdout.strip()
    not_after = datetime.strptime(end.removeprefix("notAfter="), "%b %d %H:%M:%S %Y %Z")
    return cert, key, int(not_after.replace(tzinfo=timezone.utc).timestamp())


class Process:
    """A child process whose output lines are collected, for reading its addresses and errors."""

    def __init__(self, name, args, work):
        self.name = name
        self.lines = []
        self.log = open(work / f"{name}.log", "w")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, cwd=work)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)
            self.log.write(line)
            self.log.flush()

    def alive(self):
        """True while running; fails with the end of its output once it has exited."""
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited ({self.process.returncode}):\n"
                                 + "".join(self.lines[-20:]))
        return True

    def find(self, pattern):
        self.alive()
        for line in self.lines:
            match = re.search(pattern, line)
            if match:
                return match
        return None

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Gateway:
    def __init__(self, port, ca):
        self.base = f"https://127.0.0.1:{port}"
        self.tls = ssl.create_default_context(cafile=str(ca))

    def request(self, path, user=None, password=None, method="GET", body=None, headers=()):
        request = urllib.request.Request(self.base + path, method=method, data=body)
        if user:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        for name, value in headers:
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, context=self.tls, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


class Prometheus:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path, **params):
        url = f"{self.base}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            return json.load(error)

    def query(self, expr):
        answer = self.get("/api/v1/query", query=expr)
        if answer["status"] != "success":
            raise AssertionError(f"{expr!r}: {answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]["result"]

    def firing(self, alertname):
        alerts = self.get("/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


def rules_with_short_for(target):
    """The shipped rules with every `for:` shortened to 1s: the expressions and windows as
    shipped, the waits fit for a test."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    target.write_text(yaml.safe_dump(rules, sort_keys=False))


def gateway_config(work, sim_port, redis_port, cert, key):
    shutil.copytree(REPO / "policies", work / "policies")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(work / "token.key")],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "rand", "-base64", "-out", str(work / "shared.key"), "48"],
                   check=True, capture_output=True)
    (work / "gateway.toml").write_text(f"""
[listen]
address = "127.0.0.1:0"
tls_cert = "{cert.name}"
tls_key = {{ file = "{key.name}" }}

[admin]
address = "127.0.0.1:0"

[log]
level = "info"

[auth]
token_key = {{ file = "token.key" }}

[shared]
url = "redis://127.0.0.1:{redis_port}/0"
key = {{ file = "shared.key" }}
replicas = 1

[policy]
dir = "policies"

[cache]

[rate_limit]
max_delay = "1s"

# alice is locked out after 3 wrong passwords; the address never is (the steady traffic tries a
# new user's wrong password at every round).
[rate_limit.logins]
failures = 3
address_failures = 100000

# bob: one listing (2 units) a second, after a burst of one; further ones wait up to max_delay,
# then 429.
[[rate_limit.user]]
name = "bob@internal"
rate = 2
burst = 2

[[manager]]
name = "sim"
url = "http://127.0.0.1:{sim_port}/ovirt-engine/api"
health_interval = "1s"
breaker_failures = 3
breaker_open = "10m"
""")


def drive_traffic(gateway):
    """Requests that make every series the dashboard reads, while the Manager is up."""
    for _ in range(5):  # the first a miss, the rest hits
        status, _ = gateway.request("/ovirt-engine/api/vms", "admin@internal", "admin")
        assert status == 200, status
    status, _ = gateway.request("/ovirt-engine/api/clusters", "carol@internal", "carol",
                                headers=[("Cache-Control", "no-cache")])
    assert status == 200, status
    # bob at once, six times: one passes, one waits a second, the others are refused.
    statuses = []
    threads = [threading.Thread(target=lambda: statuses.append(
        gateway.request("/ovirt-engine/api/vms", "bob@internal", "bob")[0])) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 429 in statuses and 200 in statuses, statuses
    # alice with a wrong password, until she is locked out (rate_limit.logins.failures = 3).
    statuses = [gateway.request("/ovirt-engine/api", "alice@internal", "wrong")[0] for _ in range(5)]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    # A method the API does not use is refused before anything else.
    status, _ = gateway.request("/ovirt-engine/api", "admin@internal", "admin", method="TRACE")
    assert status == 405, status
    # An SSO login and its logout (a session ended by logout).
    form = urllib.parse.urlencode({"grant_type": "password", "scope": "ovirt-app-api",
                                   "username": "carol@internal", "password": "carol"}).encode()
    status, body = gateway.request("/ovirt-engine/sso/oauth/token", method="POST", body=form,
                                   headers=[("Accept", "application/json"),
                                            ("Content-Type", "application/x-www-form-urlencoded")])
    assert status == 200, (status, body)
    token = json.loads(body)["access_token"]
    status, _ = gateway.request("/ovirt-engine/api", headers=[("Authorization", f"Bearer {token}")])
    assert status == 200, status
    status, _ = gateway.request("/ovirt-engine/services/sso-logout?" + urllib.parse.urlencode(
        {"scope": "", "token": token}))
    assert status == 200, status


class Steady:
    """Traffic repeated every quarter second in the background while Prometheus is polled, so
    that every counter it touches keeps growing across scrapes (a series that appears with all
    its increments in one scrape has a rate of 0)."""

    def __init__(self, round_):
        self.round = round_
        self.rounds = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.wait(0.25):
            try:
                self.round(self.rounds)
            except OSError as error:
                log(f"steady traffic: {error}")
            self.rounds += 1

    def stop(self):
        self.stopped.set()
        self.thread.join()
        return self.rounds


STEADY = []


def steady(round_):
    STEADY.append(Steady(round_))
    return STEADY[-1]


def up_round(gateway):
    def round_(n):
        gateway.request("/ovirt-engine/api/vms", "admin@internal", "admin")  # a cache hit
        gateway.request("/ovirt-engine/api/vms", "bob@internal", "bob")  # delayed to his rate
        gateway.request("/ovirt-engine/api", "alice@internal", "wrong")  # 429 while locked out
        gateway.request("/ovirt-engine/api", f"guest{n}@internal", "wrong")  # refused
    return round_


def down_round(gateway):
    def round_(_):
        gateway.request("/ovirt-engine/api/vms", "admin@internal", "admin",
                        headers=[("Cache-Control", "no-cache")])  # 503: the breaker is open
    return round_


def dashboard_queries():
    """Every PromQL expression of the dashboard, its variables replaced as Grafana would with
    every value selected, and the metric selectors of its variables' label_values queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = []

    def walk(panels):
        for panel in panels:
            walk(panel.get("panels", []))
            exprs.extend((panel["title"], t["expr"]) for t in panel.get("targets", []))

    walk(dashboard["panels"])
    variables = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["query"]["query"])
            assert match, variable["query"]
            variables.append((variable["name"], match.group(1), match.group(2)))
    substitute = {"$job": ".*", "$instance": ".*", "$manager": ".*", "$__rate_interval": "1m"}
    for name in substitute:
        assert any(name in e for _, e in exprs) or name == "$manager", name

    def concrete(expr):
        for name, value in substitute.items():
            expr = expr.replace(name, value)
        assert "$" not in expr, expr
        return expr

    return ([(title, concrete(e)) for title, e in exprs],
            [(name, concrete(selector), label) for name, selector, label in variables])


def main():
    binary, work = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    processes = []
    try:
        sim = Process("sim", [str(binary), "sim", "--listen", "127.0.0.1:0", "--vms", "20"], work)
        processes.append(sim)
        sim_port = int(until("the simulator's address",
                             lambda: sim.find(r"listening on http://127\.0\.0\.1:(\d+)")).group(1))

        redis_port = free_port()
        redis = Process("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port),
                                  "--save", "", "--appendonly", "no"], work)
        processes.append(redis)
        until("Redis ready", lambda: redis.find("Ready to accept connections"))

        cert, key, first_expiry = certificate(work, "gateway", 30)
        gateway_config(work, sim_port, redis_port, cert, key)
        gw = Process("gateway", [str(binary), "serve", "--config", str(work / "gateway.toml")], work)
        processes.append(gw)
        found = until("the gateway's addresses", lambda: gw.find(
            r"gateway listening address=127\.0\.0\.1:(\d+) .*admin=Some\(127\.0\.0\.1:(\d+)\)"))
        public, admin = int(found.group(1)), int(found.group(2))
        gateway = Gateway(public, cert)
        log(f"simulator :{sim_port}, redis :{redis_port}, gateway :{public}, admin :{admin}")

        rules_with_short_for(work / "rules.yml")
        prom_port = free_port()
        (work / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(work / "rules.yml")],
            "scrape_configs": [{"job_name": "ovirt-gateway",
                                "static_configs": [{"targets": [f"127.0.0.1:{admin}"]}]}],
        }))
        subprocess.run(["promtool", "check", "config", str(work / "prometheus.yml")],
                       check=True, capture_output=True)
        prom = Process("prometheus", [
            "prometheus", f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=warn"], work)
        processes.append(prom)
        prometheus = Prometheus(prom_port)
        until("Prometheus ready", lambda: prom.alive() and
              urllib.request.urlopen(f"{prometheus.base}/-/ready", timeout=2).status == 200)

        until("the gateway ready", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{admin}/readyz", timeout=2).status == 200)
        drive_traffic(gateway)
        traffic = steady(up_round(gateway))
        log("traffic sent while the Manager is up")

        # The series arrive: the scrape is up, requests and the build's version are there.
        until("the scrape target up", lambda: prometheus.query('up{job="ovirt-gateway"} == 1'))
        until("the requests of the traffic", lambda: prometheus.query(
            'gateway_requests_total{job="ovirt-gateway", manager="sim", status_class="2xx"} >= 8'))
        # The recording rules read the live series: rates, ratios and quantiles above 0.
        for record in ("manager:gateway_requests:rate5m",
                       "manager:gateway_request_duration_seconds:p99_5m",
                       "manager:gateway_upstream_duration_seconds:p99_5m",
                       "job:gateway_requests_429:ratio_rate5m",
                       "job:gateway_login_failures:rate5m",
                       "job:gateway_cache_hits:ratio_rate5m"):
            value = until(f"{record} above 0", lambda: prometheus.query(f"{record} > 0"))
            log(f"{record} = {value[0]['value'][1]}")
        log(f"{traffic.stop()} rounds of steady traffic")
        version = until("gateway_build_info", lambda: prometheus.query("gateway_build_info == 1"))
        log(f"gateway_build_info version={version[0]['metric']['version']}")
        until("the shared store up", lambda: prometheus.query("gateway_shared_store_up == 1"))
        expiry = 'gateway_tls_certificate_expiry_timestamp_seconds{job="ovirt-gateway"}'
        until("the certificate's expiry", lambda: prometheus.query(f"{expiry} == {first_expiry}"))

        # A renewed certificate, read on SIGHUP; Prometheus sees its expiry.
        renewed, renewed_key, second_expiry = certificate(work, "renewed", 90)
        renewed.replace(cert)
        renewed_key.replace(key)
        gw.process.send_signal(signal.SIGHUP)
        until("the reload", lambda: gw.find("SIGHUP: TLS certificate reloaded"))
        until("the renewed certificate's expiry",
              lambda: prometheus.query(f"{expiry} == {second_expiry}"))
        log(f"certificate expiry {first_expiry} -> {second_expiry} after SIGHUP")
        # New connections are served the renewed certificate (trusted alone from here on).
        gateway = Gateway(public, cert)
        status, _ = gateway.request("/ovirt-engine/api", "admin@internal", "admin")
        assert status == 200, status

        # The Manager fails: its requests fail, the breaker opens, health checks fail.
        sim.stop()
        statuses = [gateway.request("/ovirt-engine/api/vms", "admin@internal", "admin",
                                    headers=[("Cache-Control", "no-cache")])[0] for _ in range(6)]
        assert statuses[0] in (502, 503) and statuses[-1] == 503, statuses
        log(f"after the simulator stopped: {statuses}")
        traffic = steady(down_round(gateway))
        for alert in ("GatewayManagerDown", "GatewayManagerBreakerOpen"):
            firing = until(f"{alert} firing", lambda: prometheus.firing(alert), seconds=90)
            assert firing[0]["labels"]["manager"] == "sim", firing
            log(f"{alert} firing: {firing[0]['annotations']['summary']}")
        for record in ("manager:gateway_requests_errors:ratio_rate5m",
                       "job:gateway_requests_503:ratio_rate5m"):
            value = until(f"{record} above 0", lambda: prometheus.query(f"{record} > 0"))
            log(f"{record} = {value[0]['value'][1]}")

        # The shared store is lost: the gateway carries on, degraded, and says so.
        redis.stop()
        until("the shared store down", lambda: prometheus.query("gateway_shared_store_up == 0"))
        firing = until("GatewaySharedStoreDegraded firing",
                       lambda: prometheus.firing("GatewaySharedStoreDegraded"), seconds=90)
        log(f"GatewaySharedStoreDegraded firing: {firing[0]['annotations']['summary']}")

        # Every expression of the dashboard parses and returns data.
        exprs, variables = dashboard_queries()
        for title, expr in exprs:
            prometheus.query(expr)  # parses, or fails naming the error
            until(f"data for {expr!r} (panel {title!r})", lambda: prometheus.query(expr), 30)
        for name, selector, label in variables:
            values = until(f"values of ${name}", lambda: prometheus.get(
                f"/api/v1/label/{label}/values", **{"match[]": selector})["data"])
            log(f"${name}: {values}")
        log(f"dashboard: {len(exprs)} expressions parse and return data")
        log(f"{traffic.stop()} rounds of traffic while the Manager was down")
    finally:
        for traffic in STEADY:
            traffic.stop()
        for process in reversed(processes):
            process.stop()


if __name__ == "__main__":
    main()
