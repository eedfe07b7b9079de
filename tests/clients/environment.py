"""The environments the client tests run in (tests/clients/run.py): the Manager simulator alone,
or `ovirt-gateway demo` (a simulator with a gateway in front of it, HTTPS with a generated CA,
optionally publishing it under a prefix), or the demo's gateways as replicas sharing a real
redis-server, behind a real HAProxy in TCP mode that spreads connections over them round-robin
and tells each the client with the PROXY protocol (docs/replicas.md).

The binary is `${OVIRT_GATEWAY_BIN:-target/debug/ovirt-gateway}` (a relative OVIRT_GATEWAY_BIN
is taken from the repository root). The simulator's first line on stdout must be
`ovirt-gateway sim listening on <API URL>`; the demo's instructions name its API, CA file and
simulator. An environment knows its API URL, the simulator's origin (for /sim/stats) and the CA
file to trust; it is stopped with SIGTERM, and its output can be shown when something failed.
"""

import os
import queue
import signal
import socket
import subprocess
import sys
import ssl
import tempfile
import threading
import time
import urllib.parse
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

READY_PREFIX = 'ovirt-gateway sim listening on '
START_TIMEOUT = 30  # seconds to wait for the "listening on" line
STOP_TIMEOUT = 10  # seconds to wait for the simulator to exit after SIGTERM
LOG_TAIL_LINES = 200


class SimulatorError(Exception):
    pass


def simulator_binary():
    binary = os.environ.get('OVIRT_GATEWAY_BIN') or os.path.join('target', 'debug',
                                                                   'ovirt-gateway')
    binary = os.path.join(REPO_ROOT, binary)  # no-op when already absolute
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise SimulatorError('simulator binary %s not found or not executable: build it with '
                             '`cargo build` or set OVIRT_GATEWAY_BIN' % binary)
    return binary


def read_lines(stream, lines):
    """Puts every line of stream into the queue `lines`, then None at end of file."""
    for line in iter(stream.readline, ''):
        lines.put(line)
    lines.put(None)


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def wait_for_port(port, process, what):
    """Until something accepts on 127.0.0.1:port, or `process` exits, or START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SimulatorError('%s exited with status %s' % (what, process.returncode))
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # polling a port another process opens: no event to wait on
    raise SimulatorError('%s not listening on port %d within %d s' % (what, port, START_TIMEOUT))


HAPROXY_CONFIG = """global
    maxconn 512
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend gateways
    bind 127.0.0.1:%(port)d
    default_backend replicas
backend replicas
    balance roundrobin
%(servers)s
"""


class Simulator:
    """The `ovirt-gateway sim` subprocess, its URLs and its captured output."""

    def __init__(self, through_gateway=False, prefix=None, merged=False, replicas=0):
        self.log = tempfile.TemporaryFile(mode='w+', encoding='utf-8', errors='replace')
        self.through_gateway = through_gateway
        self.merged = merged
        self.replicas = replicas
        self.helpers = []  # redis-server and haproxy of a replicas environment
        self.demo_dir = tempfile.TemporaryDirectory() if through_gateway else None
        if through_gateway:
            command = [simulator_binary(), 'demo', '--listen', '127.0.0.1:0', '--admin',
                       '127.0.0.1:0', '--dir', self.demo_dir.name]
            if prefix:
                command += ['--prefix', prefix]
            if merged:
                command += ['--merged']
            if replicas:
                self.redis_port = free_port()
                redis = subprocess.Popen(
                    ['redis-server', '--bind', '127.0.0.1', '--port', str(self.redis_port),
                     '--save', '', '--appendonly', 'no', '--dir', self.demo_dir.name],
                    stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
                self.helpers.append(redis)
                wait_for_port(self.redis_port, redis, 'redis-server')
                command += ['--replicas', str(replicas), '--proxy-protocol',
                            '--shared', 'redis://127.0.0.1:%d/' % self.redis_port]
        else:
            # HTTPS, with the seed the demo's simulator has: the same inventory in every mode.
            command = [simulator_binary(), 'sim', '--listen', '127.0.0.1:0', '--seed', '1',
                       '--self-signed']
        print('starting:', ' '.join(command), flush=True)
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            encoding='utf-8',
            errors='replace',
        )
        # A thread keeps draining stdout so that the simulator never blocks on a full pipe.
        self.stdout_lines = queue.Queue()
        threading.Thread(target=read_lines, args=(self.process.stdout, self.stdout_lines),
                         daemon=True).start()
        self.api_url = None
        self.sim_url = None
        self.ca_file = None

    def wait_until_listening(self):
        if self.through_gateway:
            self.wait_for_demo()
        else:
            self.wait_for_simulator()

    def next_line(self):
        try:
            line = self.stdout_lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            raise SimulatorError('nothing more on stdout within %d s' % START_TIMEOUT) from None
        if line is None:
            self.process.wait()
            raise SimulatorError('exited with status %s before listening' %
                                 self.process.returncode)
        return line.rstrip('\r\n')

    def wait_for_demo(self):
        """Reads the demo's instructions up to its API, CA file and simulator lines (and its
        replicas, when it has some, which get HAProxy in front)."""
        labels = {'API': None, 'CA file': None, 'simulator': None}
        if self.replicas:
            labels['replicas'] = None
        while None in labels.values():
            line = self.next_line().strip()
            for label in labels:
                if line.startswith(label + ' '):
                    labels[label] = line[len(label):].split('(')[0].split()
        self.api_url = labels['API'][0]
        self.ca_file = labels['CA file'][0]
        sim = urllib.parse.urlsplit(labels['simulator'][0])
        self.sim_url = '%s://%s' % (sim.scheme, sim.netloc)
        if self.replicas:
            self.start_balancer(labels['replicas'])

    def start_balancer(self, replicas):
        """HAProxy in front of the replicas; the API URL becomes the balancer's."""
        port = free_port()
        servers = '\n'.join('    server r%d %s send-proxy-v2' % (i, address)
                            for i, address in enumerate(replicas))
        config = os.path.join(self.demo_dir.name, 'haproxy.cfg')
        with open(config, 'w') as out:
            out.write(HAPROXY_CONFIG % dict(port=port, servers=servers))
        haproxy = subprocess.Popen(['haproxy', '-db', '-f', config], stdin=subprocess.DEVNULL,
                                   stdout=self.log, stderr=self.log)
        self.helpers.append(haproxy)
        wait_for_port(port, haproxy, 'haproxy')
        api = urllib.parse.urlsplit(self.api_url)
        self.api_url = urllib.parse.urlunsplit(
            (api.scheme, '127.0.0.1:%d' % port, api.path, '', ''))

    def wait_for_simulator(self):
        """Reads the first stdout line and sets api_url and sim_url from it."""
        line = self.next_line()
        if not line.startswith(READY_PREFIX):
            raise SimulatorError('unexpected first line on the simulator stdout: %r '
                                 '(expected %r followed by the API URL)' % (line, READY_PREFIX))
        api_url = line[len(READY_PREFIX):].strip()
        url = urllib.parse.urlsplit(api_url)
        if url.scheme not in ('http', 'https') or not url.netloc or not url.path:
            raise SimulatorError('no API URL in the simulator line %r' % line)
        self.api_url = api_url
        self.sim_url = '%s://%s' % (url.scheme, url.netloc)

    def stop(self):
        """SIGTERM, wait, SIGKILL if it does not exit. Returns the exit status."""
        for helper in self.helpers:
            if helper.poll() is None:
                helper.kill()
                helper.wait()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print('the simulator did not exit %d s after SIGTERM: killing it' % STOP_TIMEOUT,
                      file=sys.stderr)
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def show_log(self):
        self.log.seek(0)
        lines = self.log.read().splitlines()
        stdout_rest = []
        while True:
            try:
                line = self.stdout_lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                stdout_rest.append(line.rstrip('\r\n'))
        print('----- simulator stderr (last %d lines) -----' % LOG_TAIL_LINES, file=sys.stderr)
        for line in lines[-LOG_TAIL_LINES:]:
            print(line, file=sys.stderr)
        if stdout_rest:
            print('----- simulator stdout after the first line -----', file=sys.stderr)
            for line in stdout_rest[-LOG_TAIL_LINES:]:
                print(line, file=sys.stderr)
        print('----- end of simulator output -----', file=sys.stderr)


def download_ca(sim_url, into):
    """The simulator's CA, fetched as an admin fetches the engine's (its pki-resource URL)."""
    url = sim_url + '/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA'
    unverified = ssl._create_unverified_context()  # what is being fetched is the trust anchor
    with urllib.request.urlopen(url, context=unverified, timeout=10) as response:
        pem = response.read()
    path = os.path.join(into, 'sim-ca.pem')
    with open(path, 'wb') as out:
        out.write(pem)
    return path
