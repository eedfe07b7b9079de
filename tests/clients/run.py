"""Runs the real clients' scenarios against the Manager simulator directly and through a
gateway: the Python SDK's (tests/sdk/scenarios.py, one row per test class) and Ansible's
ovirt.ovirt playbooks (tests/ansible/*.yml, one row per playbook). Same scenario, same result,
is what drop-in means.

    python tests/clients/run.py [sdk | ansible | TestClass | PLAYBOOK.yml ...]

Modes, each with a fresh environment per client family, so that every family starts from the
same inventory (tests/clients/environment.py):

- direct:  `ovirt-gateway sim --self-signed --seed 1`, HTTPS with the simulator's CA
- gateway: `ovirt-gateway demo` (the same simulator behind a gateway: HTTPS, the shipped
           policies enforced, the cache on, the default rate limits on)
- east:    `ovirt-gateway demo --prefix /east` (links rewritten under /east)
- merged:  `ovirt-gateway demo --merged` (two simulators in one merged API, docs/federation.md):
           the SDK scenarios (the few that differ by design read OVIRT_MERGED), the playbooks
           (compared with the direct run; they name one Manager where they must, from
           `member_headers`, and leave the other's objects, `foreign_names`, out of their
           result), and the merged view's own
           (tests/sdk/merged.py, tests/ansible/merged/*.yml, which run only there); `-` in the
           table where a row does not run
- replicas: `ovirt-gateway demo --replicas 3 --shared URL --proxy-protocol`: three gateways
           sharing a real redis-server (docs/replicas.md), behind a real HAProxy in TCP mode
           spreading connections over them round-robin with the PROXY protocol; the same
           scenarios and playbooks, the same results as direct

An SDK scenario asserts its own expectations (the few that differ by design read
OVIRT_THROUGH_GATEWAY) and passes when every test of its class passes; a skipped test fails. A
playbook writes its observable result (changed flags, what the info modules found, the
Manager's state read back) as JSON to the file `result_file` names, and passes in a mode when
ansible-playbook succeeds and its result equals the direct one; the playbooks get
`through_gateway` for what differs by design. The table of scenario x mode ends with a line
`N passed, M failed`; the exit status is 0 only when nothing failed.
"""

import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, HERE)

from environment import Simulator, SimulatorError, download_ca  # noqa: E402

SCENARIOS = os.path.join(TESTS, 'sdk', 'scenarios.py')
MERGED_SCENARIOS = os.path.join(TESTS, 'sdk', 'merged.py')
PLAYBOOKS = os.path.join(TESTS, 'ansible')
MERGED_PLAYBOOKS = os.path.join(PLAYBOOKS, 'merged')
PLAYBOOK_TIMEOUT = 300  # seconds one playbook may take
MODES = [
    ('direct', dict()),
    ('gateway', dict(through_gateway=True)),
    ('east', dict(through_gateway=True, prefix='/east')),
    ('merged', dict(through_gateway=True, merged=True)),
    ('replicas', dict(through_gateway=True, replicas=3)),
]
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


def sdk_scenarios(environment, names, path=SCENARIOS):
    """Runs the SDK scenario classes of `path` (all, or those named); {class name: error text
    or None}."""
    os.environ['OVIRT_URL'] = environment.api_url
    os.environ['OVIRT_SIM_URL'] = environment.sim_url
    os.environ['OVIRT_CA_FILE'] = environment.ca_file
    os.environ['OVIRT_THROUGH_GATEWAY'] = '1' if environment.through_gateway else '0'
    os.environ['OVIRT_MERGED'] = '1' if environment.merged else '0'
    # A fresh module per environment: the scenarios read their URLs at import.
    spec = importlib.util.spec_from_file_location('scenarios', path)
    scenarios = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scenarios)
    classes = [value for value in vars(scenarios).values()
               if isinstance(value, type) and issubclass(value, unittest.TestCase)
               and value.__module__ == 'scenarios' and (not names or value.__name__ in names)]
    outcomes = {}
    for case in classes:
        suite = unittest.TestLoader().loadTestsFromTestCase(case)
        log = io.StringIO()
        result = unittest.TextTestRunner(stream=log, verbosity=2).run(suite)
        if result.testsRun and result.wasSuccessful() and not result.skipped:
            outcomes[case.__name__] = None
        else:
            outcomes[case.__name__] = log.getvalue()[-6000:] or 'no test ran'
    return outcomes


def run_playbook(playbook, environment, work, mode, folder=PLAYBOOKS):
    """Runs one playbook of `folder`; returns (result or None, error text or None)."""
    result_file = os.path.join(work, '%s-%s.json' % (mode, os.path.splitext(playbook)[0]))
    extra = {
        'ovirt_url': environment.api_url,
        'ovirt_ca_file': environment.ca_file,
        'sim_url': environment.sim_url,
        'result_file': result_file,
        'through_gateway': environment.through_gateway,
        # What a playbook sends where it must name one Manager of the merged view, and the
        # names of the other Manager's objects, which a direct run does not have.
        'member_headers': {'Federation-Manager': 'east'} if environment.merged else {},
        'foreign_names': '^west-' if environment.merged else '^$',
        'ansible_python_interpreter': sys.executable,
    }
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING='false',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='false', ANSIBLE_NOCOLOR='1',
               ANSIBLE_RETRY_FILES_ENABLED='false')
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
               '-i', 'localhost,', '-c', 'local', os.path.join(folder, playbook),
               '-e', json.dumps(extra)]
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


def ansible_playbooks(environment, playbooks, work, mode, folder=PLAYBOOKS):
    """Runs the playbooks; {playbook: (result or None, error text or None)}."""
    return {playbook: run_playbook(playbook, environment, work, mode, folder)
            for playbook in playbooks}


def in_environment(options, work, run):
    """Starts an environment, runs `run(environment)` in it, stops it; (outcome, error)."""
    environment = Simulator(**options)
    try:
        environment.wait_until_listening()
        if environment.ca_file is None:
            environment.ca_file = download_ca(environment.sim_url, work)
        outcome = run(environment)
        if environment.process.poll() is not None:
            return outcome, 'the environment exited with status %s' % environment.process.returncode
        return outcome, None
    except SimulatorError as error:
        return None, str(error)
    finally:
        environment.stop()


def main(argv):
    # No argument: everything. `sdk` or `ansible`: that family; PLAYBOOK.yml or TestClass: those.
    playbook_names = [a for a in argv if a.endswith('.yml')]
    class_names = [a for a in argv if not a.endswith('.yml') and a not in ('sdk', 'ansible')]
    families = {a for a in argv if a in ('sdk', 'ansible')}
    families |= {'ansible'} if playbook_names else set()
    families |= {'sdk'} if class_names else set()
    families = families or {'sdk', 'ansible'}
    playbooks = playbook_names or sorted(n for n in os.listdir(PLAYBOOKS) if n.endswith('.yml'))
    merged_playbooks = sorted(n for n in os.listdir(MERGED_PLAYBOOKS) if n.endswith('.yml'))
    if playbook_names:
        merged_playbooks = [p for p in merged_playbooks if 'merged/' + p in playbook_names]
        playbooks = [p for p in playbooks if not p.startswith('merged/')]
    rows = []  # (row name, mode, 'ok' | 'FAILED' | 'DIFFERS', detail)
    merged_only = set()  # rows of the merged view's own scenarios
    with tempfile.TemporaryDirectory() as work:
        direct = {}
        for mode, options in MODES:
            merged = options.get('merged', False)
            if 'sdk' in families:
                def scenarios(environment):
                    outcomes = sdk_scenarios(environment, class_names)
                    if merged:
                        own = sdk_scenarios(environment, class_names, MERGED_SCENARIOS)
                        merged_only.update('sdk ' + name for name in own)
                        outcomes.update(own)
                    return outcomes
                outcomes, error = in_environment(options, work, scenarios)
                for name, failure in (outcomes or {}).items():
                    rows.append(('sdk ' + name, mode, 'FAILED' if failure or error else 'ok',
                                 failure or error))
                if outcomes is None:
                    rows.append(('sdk', mode, 'FAILED', error))
            if 'ansible' in families and merged and merged_playbooks:
                # The merged view's playbooks assert what they expect; no direct run to match.
                results, error = in_environment(options, work, lambda e: ansible_playbooks(
                    e, merged_playbooks, work, mode, MERGED_PLAYBOOKS))
                for playbook in merged_playbooks:
                    _, failure = (results or {}).get(playbook, (None, error))
                    merged_only.add('ansible merged/' + playbook)
                    rows.append(('ansible merged/' + playbook, mode,
                                 'FAILED' if failure or error else 'ok', failure or error))
            if 'ansible' in families and playbooks:
                results, error = in_environment(
                    options, work, lambda e: ansible_playbooks(e, playbooks, work, mode))
                for playbook in playbooks:
                    result, failure = (results or {}).get(playbook, (None, error))
                    name = 'ansible ' + playbook
                    if failure or error:
                        rows.append((name, mode, 'FAILED', failure or error))
                    elif mode == 'direct':
                        direct[playbook] = result
                        rows.append((name, mode, 'ok', None))
                    elif playbook not in direct:
                        rows.append((name, mode, 'FAILED', 'nothing to compare with'))
                    elif result != direct[playbook]:
                        rows.append((name, mode, 'DIFFERS', 'direct:  %s\n%s: %s' % (
                            json.dumps(direct[playbook], sort_keys=True), mode,
                            json.dumps(result, sort_keys=True))))
                    else:
                        rows.append((name, mode, 'ok', None))
    for name, mode, cell, detail in rows:
        if cell != 'ok':
            print('\n----- %s, %s: %s\n%s' % (name, mode, cell, detail), file=sys.stderr)
    names = list(dict.fromkeys(name for name, *_ in rows))
    cells = {(name, mode): cell for name, mode, cell, _ in rows}
    # The merged view's own rows run in its mode only, every other row in every mode: `-` where
    # a row does not run.
    def runs(name, options):
        return name not in merged_only or options.get('merged', False)
    expected = [(name, m) for name in names for m, options in MODES if runs(name, options)]
    width = max(len(n) for n in names + ['scenario'])
    print('\n%-*s  %s' % (width, 'scenario', '  '.join('%-8s' % m for m, _ in MODES)))
    for name in names:
        print('%-*s  %s' % (width, name, '  '.join(
            '%-8s' % (cells.get((name, m), 'FAILED') if (name, m) in expected else '-')
            for m, _ in MODES)))
    passed = sum(1 for key in expected if cells.get(key) == 'ok')
    failed = len(expected) - passed
    print('%d passed, %d failed' % (passed, failed))
    return 0 if failed == 0 and names else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
