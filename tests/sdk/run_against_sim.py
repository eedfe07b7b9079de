"""Starts the Manager simulator and runs the SDK scenarios (scenarios.py) against it.

    python tests/sdk/run_against_sim.py [--through-gateway [--prefix /east]] [TestClass[.test_method] ...]

With --through-gateway it starts `ovirt-gateway demo` instead (a simulator with a gateway in front
of it, HTTPS with a generated CA) and runs the same scenarios through the gateway: same scenario,
same result, is what drop-in means. OVIRT_SIM_URL then names the demo's simulator, whose counters
the scenarios read, and OVIRT_CA_FILE the demo's CA file. With --prefix the demo publishes the
simulator under that path (links rewritten), and OVIRT_URL carries it.

The simulator is `${OVIRT_GATEWAY_BIN:-target/debug/ovirt-gateway} sim --listen 127.0.0.1:0
--seed 7` (a relative OVIRT_GATEWAY_BIN is taken from the repository root). Its first line on
stdout must be `ovirt-gateway sim listening on <API URL>`. The scenarios get OVIRT_URL (the API
URL) and OVIRT_SIM_URL (scheme://host:port of the simulator). The simulator is stopped at the
end, also on failure; its stderr is shown when something failed. The exit status is 0 only when
every scenario passed.
"""

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))

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


class Simulator:
    """The `ovirt-gateway sim` subprocess, its URLs and its captured output."""

    def __init__(self, through_gateway=False, prefix=None, sim_args=('--seed', '7')):
        self.log = tempfile.TemporaryFile(mode='w+', encoding='utf-8', errors='replace')
        self.through_gateway = through_gateway
        self.demo_dir = tempfile.TemporaryDirectory() if through_gateway else None
        if through_gateway:
            command = [simulator_binary(), 'demo', '--listen', '127.0.0.1:0', '--admin',
                       '127.0.0.1:0', '--dir', self.demo_dir.name]
            if prefix:
                command += ['--prefix', prefix]
        else:
            command = [simulator_binary(), 'sim', '--listen', '127.0.0.1:0', *sim_args]
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
        """Reads the demo's instructions up to its API, CA file and simulator lines."""
        labels = {'API': None, 'CA file': None, 'simulator': None}
        while None in labels.values():
            line = self.next_line().strip()
            for label in labels:
                if line.startswith(label + ' '):
                    labels[label] = line[len(label):].split()[0]
        self.api_url = labels['API']
        self.ca_file = labels['CA file']
        sim = urllib.parse.urlsplit(labels['simulator'])
        self.sim_url = '%s://%s' % (sim.scheme, sim.netloc)

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


def run_scenarios(names):
    """Runs the scenarios (all, or the given TestClass[.test_method] names); True if all pass."""
    sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
    sys.path.insert(0, HERE)
    import scenarios  # reads OVIRT_URL and OVIRT_SIM_URL at import

    loader = unittest.TestLoader()
    if names:
        names = [name[len('scenarios.'):] if name.startswith('scenarios.') else name
                 for name in names]
        suite = loader.loadTestsFromNames(names, scenarios)
    else:
        suite = loader.loadTestsFromModule(scenarios)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if result.testsRun == 0:
        print('no scenario ran', file=sys.stderr)
        return False
    if result.skipped:
        print('%d scenarios were skipped: that counts as a failure' % len(result.skipped),
              file=sys.stderr)
        return False
    return result.wasSuccessful()


def main(argv):
    simulator = None
    ok = False
    through_gateway = '--through-gateway' in argv
    argv = [arg for arg in argv if arg != '--through-gateway']
    prefix = None
    if '--prefix' in argv:
        at = argv.index('--prefix')
        prefix = argv[at + 1]
        del argv[at:at + 2]
        through_gateway = True
    try:
        simulator = Simulator(through_gateway, prefix)
        simulator.wait_until_listening()
        print('API at %s, simulator test endpoints at %s' % (simulator.api_url,
                                                          simulator.sim_url), flush=True)
        os.environ['OVIRT_URL'] = simulator.api_url
        os.environ['OVIRT_SIM_URL'] = simulator.sim_url
        if simulator.ca_file:
            os.environ['OVIRT_CA_FILE'] = simulator.ca_file
        if through_gateway:
            os.environ['OVIRT_THROUGH_GATEWAY'] = '1'
        ok = run_scenarios(argv)
        if simulator.process.poll() is not None:
            print('the simulator exited during the scenarios with status %s' %
                  simulator.process.returncode, file=sys.stderr)
            ok = False
    except SimulatorError as error:
        print('error: %s' % error, file=sys.stderr)
    finally:
        if simulator is not None:
            status = simulator.stop()
            if not ok:
                simulator.show_log()
                print('simulator exit status: %s' % status, file=sys.stderr)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
