"""Runs the Ansible playbooks of this directory (ovirt.ovirt, as bundled by the `ansible` package)
against the Manager simulator directly and through a gateway, and compares what they observed.

    python tests/ansible/run.py [PLAYBOOK.yml ...]

Each playbook writes its observable result (changed flags, what the info modules found, the
Manager's state read back) as JSON to the file `result_file` names. Modes, each with a fresh
simulator of the same seed, so that every playbook starts from the same inventory:

- direct:  `ovirt-gateway sim --self-signed --seed 1`, HTTPS with the simulator's CA
- gateway: `ovirt-gateway demo` (the same simulator behind a gateway: HTTPS, the shipped
           policies enforced, the cache on, the default rate limits on)
- east:    `ovirt-gateway demo --prefix /east` (links rewritten under /east)

A playbook passes in a mode when ansible-playbook succeeds and its result equals the direct
one. The table of playbook x mode ends with a line `N passed, M failed`; the exit status is 0
only when nothing failed. The playbooks get `through_gateway` (true or false) for the few
expectations that differ by design (a policy's refusal names the gateway).
"""

import json
import os
import ssl
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO_ROOT, 'tests', 'sdk'))
sys.dont_write_bytecode = True

from run_against_sim import Simulator, SimulatorError  # noqa: E402

PLAYBOOK_TIMEOUT = 300  # seconds one playbook may take
# Playbooks that read the ovirt.ovirt.ovirt inventory plugin's hosts, with the source it reads.
INVENTORY_PLAYBOOKS = {'inventory.yml'}
INVENTORY_SOURCE = {
    'plugin': 'ovirt.ovirt.ovirt',
    'ovirt_username': 'admin@internal',
    'ovirt_password': 'admin',
    'ovirt_query_filter': {'search': 'name=vm-0000*'},
    'keyed_groups': [{'key': 'cluster', 'prefix': 'cluster'},
                     {'key': 'status', 'prefix': 'status'}],
}
MODES = [
    ('direct', dict(sim_args=('--seed', '1', '--self-signed'))),
    ('gateway', dict(through_gateway=True)),
    ('east', dict(through_gateway=True, prefix='/east')),
]


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


def run_playbook(playbook, environment, work, mode):
    """Runs one playbook; returns (result or None, error text or None)."""
    result_file = os.path.join(work, '%s-%s.json' % (mode, os.path.splitext(playbook)[0]))
    venv_bin = os.path.dirname(sys.executable)
    extra = {
        'ovirt_url': environment.api_url,
        'ovirt_ca_file': environment.ca_file,
        'sim_url': environment.sim_url,
        'result_file': result_file,
        'through_gateway': environment.through_gateway,
        'ansible_python_interpreter': sys.executable,
    }
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING='false',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='false', ANSIBLE_NOCOLOR='1',
               ANSIBLE_RETRY_FILES_ENABLED='false')
    command = [os.path.join(venv_bin, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
               os.path.join(HERE, playbook), '-e', json.dumps(extra)]
    if playbook in INVENTORY_PLAYBOOKS:
        # The plugin takes files named *.ovirt.yml; JSON is YAML.
        source = os.path.join(work, '%s.ovirt.yml' % mode)
        with open(source, 'w', encoding='utf-8') as out:
            json.dump(dict(INVENTORY_SOURCE, ovirt_url=environment.api_url,
                           ovirt_cafile=environment.ca_file), out)
        command += ['-i', source]
    try:
        completed = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True,
                                   timeout=PLAYBOOK_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, 'did not finish within %d s' % PLAYBOOK_TIMEOUT
    if completed.returncode != 0:
        return None, 'ansible-playbook exited with %d:\n%s%s' % (
            completed.returncode, completed.stdout[-4000:], completed.stderr[-2000:])
    with open(result_file, encoding='utf-8') as f:
        return json.load(f), None


def main(argv):
    playbooks = argv or sorted(name for name in os.listdir(HERE) if name.endswith('.yml'))
    cells = {}  # (playbook, mode) -> 'ok' | 'FAILED' | 'DIFFERS'
    failures = []
    direct = {}
    with tempfile.TemporaryDirectory() as work:
        for mode, options in MODES:
            environment = Simulator(**options)
            try:
                environment.wait_until_listening()
                if environment.ca_file is None:
                    environment.ca_file = download_ca(environment.sim_url, work)
                for playbook in playbooks:
                    result, error = run_playbook(playbook, environment, work, mode)
                    if error is not None:
                        cells[playbook, mode] = 'FAILED'
                        failures.append('%s, %s: %s' % (playbook, mode, error))
                    elif mode == 'direct':
                        direct[playbook] = result
                        cells[playbook, mode] = 'ok'
                    elif playbook not in direct:
                        cells[playbook, mode] = 'FAILED'
                        failures.append('%s, %s: nothing to compare with (direct failed)' %
                                        (playbook, mode))
                    elif result != direct[playbook]:
                        cells[playbook, mode] = 'DIFFERS'
                        failures.append('%s, %s: differs from direct\n  direct:  %s\n  %s: %s' % (
                            playbook, mode, json.dumps(direct[playbook], sort_keys=True), mode,
                            json.dumps(result, sort_keys=True)))
                    else:
                        cells[playbook, mode] = 'ok'
            except SimulatorError as error:
                for playbook in playbooks:
                    cells.setdefault((playbook, mode), 'FAILED')
                failures.append('%s: %s' % (mode, error))
            finally:
                environment.stop()
                if any(cells.get((p, mode)) != 'ok' for p in playbooks):
                    environment.show_log()
    for failure in failures:
        print('\n' + failure, file=sys.stderr)
    width = max(len(p) for p in playbooks)
    print('\n%-*s  %s' % (width, 'playbook', '  '.join('%-8s' % m for m, _ in MODES)))
    for playbook in playbooks:
        print('%-*s  %s' % (width, playbook,
                            '  '.join('%-8s' % cells[playbook, m] for m, _ in MODES)))
    passed = sum(1 for cell in cells.values() if cell == 'ok')
    failed = len(cells) - passed
    print('%d passed, %d failed' % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
