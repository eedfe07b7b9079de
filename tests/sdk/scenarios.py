"""Scenarios that drive an oVirt Manager API with the real oVirt Python SDK (ovirtsdk4).

They run against the simulator (`ovirt-gateway sim`, started by tests/clients/run.py) and are
written so that they can later run unchanged through the gateway: only the URLs change.

Environment:
  OVIRT_URL      API base URL, e.g. http://127.0.0.1:PORT/ovirt-engine/api (required)
  OVIRT_SIM_URL  where the simulator's test endpoints (/sim/stats, /sim/revoke-all) live,
                 e.g. http://127.0.0.1:PORT (required)
  OVIRT_CA_FILE  PEM file with the CA that signed the server certificate (optional, https only)

Only ovirtsdk4 and the Python standard library are used.
"""

import base64
import http.client
import json
import os
import re
import ssl
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ElementTree

import ovirtsdk4 as sdk
import ovirtsdk4.types as types


def _required_env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError('%s must be set; see tests/sdk/README.md' % name)
    return value


OVIRT_URL = _required_env('OVIRT_URL').rstrip('/')
OVIRT_SIM_URL = _required_env('OVIRT_SIM_URL').rstrip('/')
OVIRT_CA_FILE = os.environ.get('OVIRT_CA_FILE') or None
# Set by tests/clients/run.py through a gateway: the gateway exchanges Basic for SSO tokens.
THROUGH_GATEWAY = os.environ.get('OVIRT_THROUGH_GATEWAY') == '1'
# Set by tests/clients/run.py in its merged mode (`demo --merged`, docs/federation.md): a second
# Manager, `west`, whose objects are named west-..., is merged with the first, `east`.
MERGED = os.environ.get('OVIRT_MERGED') == '1'
# What a client that polls a VM's status sends so that no cache answers for the Manager.
FRESH = {'Cache-Control': 'no-cache'}

# The path of the API (normally /ovirt-engine/api). The SDK builds request URLs from it and
# follow_link() requires every href to start with it.
API_PATH = urllib.parse.urlsplit(OVIRT_URL).path
# The SDK asks for tokens on the same scheme://host:port as the API, whatever the API path is.
SSO_TOKEN_PATH = '/ovirt-engine/sso/oauth/token'
SSO_LOGOUT_PATH = '/ovirt-engine/services/sso-logout'

ADMIN = ('admin@internal', 'admin')
ALICE = ('alice@internal', 'alice')
BOB = ('bob@internal', 'bob')
CAROL = ('carol@internal', 'carol')

BLANK_TEMPLATE_ID = '00000000-0000-0000-0000-000000000000'
MISSING_VM_ID = '00000000-0000-0000-0000-0000000000ff'
TEST_VM_NAME = 'sdk-test-vm'

HTTP_TIMEOUT = 30


# ----------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------

def connect(user, password):
    """An SDK connection to OVIRT_URL as the given user. Nothing is sent until the first call."""
    return sdk.Connection(
        url=OVIRT_URL,
        username=user,
        password=password,
        ca_file=OVIRT_CA_FILE,
        insecure=False,
        timeout=HTTP_TIMEOUT,
    )


class HttpResponse:
    """Status, headers (an http.client.HTTPMessage) and raw body of one plain HTTP exchange."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode('utf-8'))

    def __repr__(self):
        return 'HttpResponse(%d, %r)' % (self.status, self.body[:300])


def http_request(method, path, headers=None, body=None, base_url=None):
    """Sends one request with http.client to the host of base_url (default OVIRT_URL).

    path is path-absolute (it may carry a query string); http or https is chosen by the
    scheme of base_url, and OVIRT_CA_FILE, when set, is the trusted CA for https.
    """
    url = urllib.parse.urlsplit(base_url or OVIRT_URL)
    if url.scheme == 'https':
        context = ssl.create_default_context(cafile=OVIRT_CA_FILE)
        conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=HTTP_TIMEOUT,
                                           context=context)
    elif url.scheme == 'http':
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=HTTP_TIMEOUT)
    else:
        raise ValueError('unsupported URL scheme in %r' % base_url)
    if isinstance(body, str):
        body = body.encode('utf-8')
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return HttpResponse(response.status, response.headers, response.read())
    finally:
        conn.close()


def sim_stats():
    """The simulator's counters from GET {OVIRT_SIM_URL}/sim/stats, as a dict of ints."""
    response = http_request('GET', '/sim/stats', base_url=OVIRT_SIM_URL)
    if response.status != 200:
        raise AssertionError('GET /sim/stats: %r' % response)
    stats = response.json()
    for field in ('sso_logins', 'basic_logins', 'api_requests', 'active_tokens',
                  'revoked_tokens'):
        if not isinstance(stats.get(field), int):
            raise AssertionError('/sim/stats has no integer %r: %r' % (field, stats))
    return stats


def sim_revoke_all():
    """POST {OVIRT_SIM_URL}/sim/revoke-all: every token dies, as on an engine restart."""
    response = http_request('POST', '/sim/revoke-all', base_url=OVIRT_SIM_URL)
    if not 200 <= response.status < 300:
        raise AssertionError('POST /sim/revoke-all: %r' % response)


def sso_token_request(user, password):
    """POST the password grant to the SSO token endpoint exactly like the SDK does."""
    form = urllib.parse.urlencode({
        'grant_type': 'password',
        'scope': 'ovirt-app-api',
        'username': user,
        'password': password,
    })
    return http_request('POST', SSO_TOKEN_PATH, {
        'Accept': 'application/json',
        'Content-Type': 'application/x-www-form-urlencoded',
    }, form)


def sso_logout(token):
    """Revokes a token through the SSO logout service, as the SDK's close() does."""
    form = urllib.parse.urlencode({'scope': 'ovirt-app-api', 'token': token})
    return http_request('POST', SSO_LOGOUT_PATH, {
        'Accept': 'application/json',
        'Content-Type': 'application/x-www-form-urlencoded',
    }, form)


def basic_auth(user, password):
    credentials = ('%s:%s' % (user, password)).encode('utf-8')
    return 'Basic ' + base64.b64encode(credentials).decode('ascii')


def json_booleans(value, where='$'):
    """Paths of every real JSON boolean (true/false literal) inside a decoded JSON value."""
    found = []
    if isinstance(value, bool):
        found.append(where)
    elif isinstance(value, dict):
        for key, item in value.items():
            found.extend(json_booleans(item, '%s.%s' % (where, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(json_booleans(item, '%s[%d]' % (where, index)))
    return found


def names(vms):
    return [vm.name for vm in vms]


def ids(objects):
    return {obj.id for obj in objects}


# ----------------------------------------------------------------------------------------
# Scenarios with the SDK
# ----------------------------------------------------------------------------------------

class AuthenticationTests(unittest.TestCase):

    def test_connection_test_succeeds_for_admin(self):
        """connection.test() is True for admin@internal: SSO login and GET of the API root work."""
        with connect(*ADMIN) as connection:
            self.assertTrue(connection.test())

    def test_wrong_password_is_auth_error(self):
        """With a wrong password connection.test() is False and a call raises AuthError."""
        connection = connect(ADMIN[0], 'wrong-password')
        try:
            self.assertFalse(connection.test())
            with self.assertRaises(sdk.AuthError):
                connection.system_service().get()
        finally:
            connection.close()


class SystemTests(unittest.TestCase):

    def test_system_get(self):
        """GET of the API root: product_info.version is 4.4 and the Blank template is special."""
        with connect(*ADMIN) as connection:
            api = connection.system_service().get()
            self.assertIsInstance(api, types.Api)
            self.assertIsNotNone(api.product_info, 'no product_info in the API root')
            self.assertEqual(api.product_info.version.major, 4)
            self.assertEqual(api.product_info.version.minor, 4)
            self.assertIsNotNone(api.special_objects, 'no special_objects in the API root')
            self.assertEqual(api.special_objects.blank_template.id, BLANK_TEMPLATE_ID)


class VmListTests(unittest.TestCase):

    def test_search_by_name_prefix_and_max(self):
        """search='name=vm-0001*' is exactly vm-00010..19, case-insensitive; max=3 cuts to 3."""
        expected = ['vm-%05d' % n for n in range(10, 20)]
        with connect(*ADMIN) as connection:
            vms_service = connection.system_service().vms_service()

            vms = vms_service.list(search='name=vm-0001*')
            self.assertEqual(sorted(names(vms)), expected)
            for vm in vms:
                self.assertIsInstance(vm, types.Vm)
                self.assertTrue(vm.id)

            # The engine searches case-insensitively unless case_sensitive=true.
            vms = vms_service.list(search='name=VM-0001*', case_sensitive=False)
            self.assertEqual(sorted(names(vms)), expected)

            vms = vms_service.list(search='name=vm-0001*', max=3)
            self.assertEqual(len(vms), 3, names(vms))
            for name in names(vms):
                self.assertIn(name, expected)

    def test_search_by_status(self):
        """search='status=up' returns exactly the VMs that are up, and only those."""
        with connect(*ADMIN) as connection:
            vms_service = connection.system_service().vms_service()
            all_vms = vms_service.list()
            self.assertGreaterEqual(len(all_vms), 50)
            up_ids = {vm.id for vm in all_vms if vm.status == types.VmStatus.UP}
            self.assertTrue(up_ids, 'no VM is up in the default inventory')

            up_vms = vms_service.list(search='status=up')
            for vm in up_vms:
                self.assertEqual(vm.status, types.VmStatus.UP, vm.name)
            self.assertEqual(ids(up_vms), up_ids)

    def test_search_sortby_name_desc(self):
        """search='sortby name desc' with max=5 returns the 5 greatest names in descending order
        (merged: of every Manager's; without max the merged view refuses, naming max)."""
        if MERGED:
            with connect(*ADMIN) as connection:
                with self.assertRaises(sdk.Error) as refused:
                    connection.system_service().vms_service().list(search='sortby name desc')
                self.assertIn('max', str(refused.exception))
        with connect(*ADMIN) as connection:
            vms_service = connection.system_service().vms_service()
            all_names = names(vms_service.list())

            vms = vms_service.list(search='sortby name desc', max=5)
            self.assertEqual(names(vms), sorted(all_names, reverse=True)[:5])

    def test_paging_walks_every_vm_once(self):
        """list(search='page N', max=size) until an empty page, as the SDK's page_vms.py example
        pages, yields every VM once in the listing's order (merged: pages of the merged order)."""
        with connect(*ADMIN) as connection:
            vms_service = connection.system_service().vms_service()
            everything = [vm.id for vm in vms_service.list()]
            walked = []
            for page in range(1, 1000):
                vms = vms_service.list(search='page %d' % page, max=7)
                self.assertLessEqual(len(vms), 7)
                if not vms:
                    break
                walked.extend(vm.id for vm in vms)
            self.assertEqual(walked, everything)

    def test_follow_link(self):
        """follow_link() resolves a VM's cluster reference, its nics and disk attachments links."""
        with connect(*ADMIN) as connection:
            vms = connection.system_service().vms_service().list(search='name=vm-00001')
            self.assertEqual(names(vms), ['vm-00001'])
            vm = vms[0]

            self.assertIsNotNone(vm.cluster, 'the VM has no cluster reference')
            self.assertTrue(connection.is_link(vm.cluster), 'the cluster reference has no href')
            cluster = connection.follow_link(vm.cluster)
            self.assertIsInstance(cluster, types.Cluster)
            self.assertEqual(cluster.id, vm.cluster.id)
            self.assertTrue(cluster.name)

            self.assertIsNotNone(vm.nics, 'the VM has no <link rel="nics">')
            nics = connection.follow_link(vm.nics)
            self.assertTrue(nics, 'following the nics link gave no nics')
            for nic in nics:
                self.assertIsInstance(nic, types.Nic)
                self.assertTrue(nic.id)

            self.assertIsNotNone(vm.disk_attachments, 'the VM has no <link rel="diskattachments">')
            attachments = connection.follow_link(vm.disk_attachments)
            self.assertTrue(attachments, 'following the diskattachments link gave none')
            for attachment in attachments:
                self.assertIsInstance(attachment, types.DiskAttachment)
                self.assertTrue(attachment.id)

    def test_follow_parameter_inlines_nics_and_disk_attachments(self):
        """list(follow='nics,disk_attachments') embeds the VM's nics and disk attachments."""
        with connect(*ADMIN) as connection:
            vms = connection.system_service().vms_service().list(
                search='name=vm-00001', follow='nics,disk_attachments')
            self.assertEqual(names(vms), ['vm-00001'])
            vm = vms[0]
            self.assertTrue(vm.nics, 'follow=nics embedded no nics')
            for nic in vm.nics:
                self.assertIsInstance(nic, types.Nic)
                self.assertTrue(nic.id)
            self.assertTrue(vm.disk_attachments, 'follow=disk_attachments embedded none')
            for attachment in vm.disk_attachments:
                self.assertIsInstance(attachment, types.DiskAttachment)
                self.assertTrue(attachment.id)

    def test_missing_vm_is_not_found(self):
        """GET of a VM id that does not exist raises NotFoundError."""
        with connect(*ADMIN) as connection:
            vm_service = connection.system_service().vms_service().vm_service(MISSING_VM_ID)
            with self.assertRaises(sdk.NotFoundError):
                vm_service.get()


class VmLifecycleTests(unittest.TestCase):

    def test_start_and_stop(self):
        """start() brings a down VM up, stop() brings it down; starting an up VM is an Error."""
        with connect(*ADMIN) as connection:
            vms_service = connection.system_service().vms_service()
            down_vms = vms_service.list(search='status=down')
            self.assertTrue(down_vms, 'no VM is down in the default inventory')
            vm_service = vms_service.vm_service(down_vms[0].id)

            vm_service.start()
            # As on the engine: powering up first, then up (a poll asks for a fresh answer, past
            # the gateway's cache).
            self.assertEqual(vm_service.get().status, types.VmStatus.POWERING_UP)
            self.assertEqual(vm_service.get(headers=FRESH).status, types.VmStatus.UP)
            try:
                with self.assertRaises(sdk.Error) as raised:
                    vm_service.start()
                self.assertNotIsInstance(raised.exception, sdk.AuthError)
                self.assertNotIsInstance(raised.exception, sdk.NotFoundError)
            finally:
                vm_service.stop()
            self.assertEqual(vm_service.get().status, types.VmStatus.DOWN)

    def test_add_update_remove(self):
        """add() from the Blank template, get(), update() of the description, remove(), then 404."""
        with connect(*ADMIN) as connection:
            vms_service = connection.system_service().vms_service()
            vm = vms_service.add(types.Vm(
                name=TEST_VM_NAME,
                cluster=types.Cluster(name='cluster-1'),
                template=types.Template(name='Blank'),
            ))
            self.assertIsInstance(vm, types.Vm)
            self.assertTrue(vm.id, 'the added VM has no id')
            vm_service = vms_service.vm_service(vm.id)
            removed = False
            try:
                got = vm_service.get()
                self.assertEqual(got.id, vm.id)
                self.assertEqual(got.name, TEST_VM_NAME)
                self.assertEqual(got.template.id, BLANK_TEMPLATE_ID)
                self.assertEqual(connection.follow_link(got.cluster).name, 'cluster-1')
                self.assertEqual(ids(vms_service.list(search='name=%s' % TEST_VM_NAME)), {vm.id})

                updated = vm_service.update(types.Vm(description='changed'))
                self.assertEqual(updated.description, 'changed')
                self.assertEqual(vm_service.get().description, 'changed')

                vm_service.remove()
                removed = True
                with self.assertRaises(sdk.NotFoundError):
                    vm_service.get()
                self.assertEqual(vms_service.list(search='name=%s' % TEST_VM_NAME), [])
            finally:
                if not removed:
                    try:
                        vm_service.remove()
                    except sdk.Error:
                        pass


class EventTests(unittest.TestCase):

    def test_events_after_the_latest(self):
        """events.list(max=1)[0], then list(from_=int(id)) after a VM is started and stopped, as
        Ansible waits on a host upgrade: exactly those two events, with integer ids and index
        (merged: every Manager's events, each resumed where it stood)."""
        with connect(*ADMIN) as connection:
            system = connection.system_service()
            events_service = system.events_service()
            latest = events_service.list(max=1)
            self.assertEqual(len(latest), 1)
            since = int(latest[0].id)
            vms_service = system.vms_service()
            vm = vms_service.list(search='status=down')[-1]
            vm_service = vms_service.vm_service(vm.id)
            vm_service.start()
            vm_service.get()
            self.assertEqual(vm_service.get(headers=FRESH).status, types.VmStatus.UP)
            vm_service.stop()
            after = events_service.list(from_=since)
            descriptions = sorted(event.description for event in after)
            self.assertEqual(len(after), 2, descriptions)
            for event in after:
                self.assertIn(vm.name, event.description)
                self.assertEqual(int(event.index), int(event.id))
                self.assertGreater(int(event.id), 0)
            self.assertNotIn(since, [int(event.id) for event in after])


class VisibilityTests(unittest.TestCase):

    def test_alice_and_bob_see_disjoint_vms(self):
        """Non-admins see disjoint, non-empty VM sets; another user's VM is 404; admin sees both."""
        with connect(*ALICE) as alice, connect(*BOB) as bob, connect(*ADMIN) as admin:
            alice_vms = alice.system_service().vms_service()
            alice_ids = ids(alice_vms.list())
            bob_ids = ids(bob.system_service().vms_service().list())
            admin_ids = ids(admin.system_service().vms_service().list())

            self.assertTrue(alice_ids, 'alice sees no VM')
            self.assertTrue(bob_ids, 'bob sees no VM')
            self.assertEqual(alice_ids & bob_ids, set())
            self.assertLessEqual(alice_ids | bob_ids, admin_ids)

            with self.assertRaises(sdk.NotFoundError):
                alice_vms.vm_service(sorted(bob_ids)[0]).get()

    def test_carol_sees_cluster_1_vms(self):
        """carol (group ops, PowerUserRole on cluster-1) sees exactly the VMs of cluster-1
        (merged: of each Manager's cluster-1, where she has the same role)."""
        wanted = {'cluster-1', 'west-cluster-1'} if MERGED else {'cluster-1'}
        with connect(*CAROL) as carol, connect(*ADMIN) as admin:
            clusters = admin.system_service().clusters_service().list()
            cluster_1_ids = {cluster.id for cluster in clusters if cluster.name in wanted}
            self.assertEqual(len(cluster_1_ids), len(wanted), names(clusters))
            admin_vms = {vm.id: vm for vm in admin.system_service().vms_service().list()}

            carol_vms = carol.system_service().vms_service().list()
            self.assertTrue(carol_vms, 'carol sees no VM')
            for vm in carol_vms:
                self.assertIn(vm.id, admin_vms)
                self.assertIn(admin_vms[vm.id].cluster.id, cluster_1_ids,
                              '%s is not in cluster-1' % vm.name)
            in_cluster_1 = {vm_id for vm_id, vm in admin_vms.items()
                            if vm.cluster.id in cluster_1_ids}
            self.assertEqual(ids(carol_vms), in_cluster_1)


class PolicyTests(unittest.TestCase):
    """Through the gateway, the shipped Cedar policies narrow what the Manager allows: carol
    (group ops) may operate the VMs of cluster-1 but not remove them, although her
    PowerUserRole lets her at the Manager."""

    def test_ops_operate_but_never_remove(self):
        """carol starts and stops a cluster-1 VM; removing it is refused by the gateway with
        AuthError and the fault's text, while directly the Manager lets her remove it."""
        with connect(*ADMIN) as admin, connect(*CAROL) as carol:
            vm = admin.system_service().vms_service().add(types.Vm(
                name=TEST_VM_NAME + '-ops',
                cluster=types.Cluster(name='cluster-1'),
                template=types.Template(name='Blank'),
            ))
            carol_vm = carol.system_service().vms_service().vm_service(vm.id)
            try:
                carol_vm.start()
                self.assertEqual(carol_vm.get().status, types.VmStatus.POWERING_UP)
                self.assertEqual(carol_vm.get(headers=FRESH).status, types.VmStatus.UP)
                carol_vm.stop()
                if THROUGH_GATEWAY:
                    with self.assertRaises(sdk.AuthError) as raised:
                        carol_vm.remove()
                    self.assertIn("The gateway's policies do not allow `remove` on a Vm",
                                  str(raised.exception))
                    self.assertEqual(carol_vm.get().id, vm.id)
                else:
                    carol_vm.remove()
                    with self.assertRaises(sdk.NotFoundError):
                        carol_vm.get()
            finally:
                try:
                    admin.system_service().vms_service().vm_service(vm.id).remove()
                except sdk.NotFoundError:
                    pass


class RateLimitTests(unittest.TestCase):
    """Through the gateway, a user who asks too much too fast is slowed to his rate, not
    refused: the SDK does not retry a 429, so a refusal would fail the script."""

    def test_runaway_listing_is_slowed_not_refused(self):
        """bob lists VMs in a tight loop, 150 times. Through the gateway (the demo holds bob to
        100 units a second after a burst of 20; a listing costs 2) every call succeeds, and the
        loop takes at least the 2.8 s its 280 units over the burst are due in. Directly, every
        call succeeds too."""
        with connect(*BOB) as bob:
            vms = bob.system_service().vms_service()
            started = time.monotonic()
            for _ in range(150):
                self.assertEqual(len(vms.list(max=1)), 1)
            elapsed = time.monotonic() - started
            if THROUGH_GATEWAY:
                self.assertGreaterEqual(elapsed, 2.7)


class TokenTests(unittest.TestCase):

    def test_relogin_after_tokens_revoked(self):
        """After every token is revoked, the next call succeeds through one new SSO login."""
        with connect(*ADMIN) as connection:
            self.assertTrue(connection.test())
            old_token = connection.authenticate()
            before = sim_stats()

            sim_revoke_all()
            # A call that reaches the Manager: through a gateway with a cache, the root that
            # test() fetched may be answered from the cache, without asking the Manager.
            api = connection.system_service().get(headers={'Cache-Control': 'no-cache'})
            self.assertEqual(api.product_info.version.major, 4)

            after = sim_stats()
            self.assertEqual(after['sso_logins'] - before['sso_logins'], 1)
            self.assertNotEqual(connection.authenticate(), old_token)

    def test_close_revokes_token(self):
        """close() logs out: one token fewer is active and one more is revoked."""
        connection = connect(*ADMIN)
        closed = False
        try:
            self.assertTrue(connection.authenticate())
            before = sim_stats()
            connection.close()
            closed = True
            after = sim_stats()
            self.assertEqual(after['active_tokens'], before['active_tokens'] - 1)
            self.assertEqual(after['revoked_tokens'], before['revoked_tokens'] + 1)
        finally:
            if not closed:
                connection.close()

    def test_token_only_connection(self):
        """The Ansible pattern: ovirt_auth takes a token from authenticate() and closes without
        logging out; modules then connect with token= only; state=absent closes with logout,
        which revokes the token at the Manager."""
        login = connect(*ADMIN)
        token = login.authenticate()
        self.assertTrue(token)
        login.close(logout=False)
        before = sim_stats()
        connection = sdk.Connection(url=OVIRT_URL, token=token, ca_file=OVIRT_CA_FILE,
                                    insecure=False, timeout=HTTP_TIMEOUT)
        closed = False
        try:
            vms = connection.system_service().vms_service().list(max=2)
            self.assertEqual(len(vms), 2)
            self.assertEqual(sim_stats()['sso_logins'], before['sso_logins'])
            connection.close(logout=True)
            closed = True
            after = sim_stats()
            self.assertEqual(after['active_tokens'], before['active_tokens'] - 1)
        finally:
            if not closed:
                connection.close()


# ----------------------------------------------------------------------------------------
# Wire checks with plain HTTP (no SDK)
# ----------------------------------------------------------------------------------------

class RawHttpTests(unittest.TestCase):

    def setUp(self):
        response = sso_token_request(*ADMIN)
        self.assertEqual(response.status, 200, response)
        self.token = response.json()['access_token']

    def tearDown(self):
        sso_logout(self.token)

    def bearer(self, extra=None):
        headers = {'Authorization': 'Bearer %s' % self.token}
        headers.update(extra or {})
        return headers

    def test_sso_token_json(self):
        """SSO password grant: 200 JSON with access_token, token_type bearer, exp a digit string."""
        response = sso_token_request(*ADMIN)
        self.assertEqual(response.status, 200, response)
        self.assertRegex(response.headers.get('Content-Type', ''), r'^\s*application/json')
        body = response.json()
        try:
            self.assertIsInstance(body.get('access_token'), str)
            self.assertTrue(body['access_token'])
            self.assertEqual(body.get('token_type'), 'bearer')
            self.assertIsInstance(body.get('exp'), str)
            self.assertRegex(body['exp'], r'^[0-9]+$')
            self.assertNotIn('expires_in', body)
        finally:
            if body.get('access_token'):
                sso_logout(body['access_token'])

    def test_sso_token_wrong_password(self):
        """SSO password grant with a wrong password: 400 JSON with error_code and error."""
        response = sso_token_request(ADMIN[0], 'wrong-password')
        self.assertEqual(response.status, 400, response)
        self.assertRegex(response.headers.get('Content-Type', ''), r'^\s*application/json')
        body = response.json()
        self.assertIn('error_code', body)
        self.assertIn('error', body)
        self.assertNotIn('access_token', body)

    def test_sso_logout_json(self):
        """The SSO logout service answers 200 JSON without an error for a live token."""
        token = sso_token_request(*ADMIN).json()['access_token']
        response = sso_logout(token)
        self.assertEqual(response.status, 200, response)
        self.assertRegex(response.headers.get('Content-Type', ''), r'^\s*application/json')
        self.assertNotIn('error', response.json())
        # The revoked token no longer opens the API.
        response = http_request('GET', API_PATH + '/vms?max=1',
                                {'Authorization': 'Bearer %s' % token})
        self.assertEqual(response.status, 401, response)

    def test_json_collection(self):
        """GET /vms as JSON: {"vm": [...]}, max=2 honoured, API hrefs, booleans as strings."""
        response = http_request('GET', API_PATH + '/vms?accept=application/json&max=2',
                                self.bearer())
        self.assertEqual(response.status, 200, response)
        self.assertRegex(response.headers.get('Content-Type', ''), r'^\s*application/json')
        body = response.json()
        self.assertEqual(list(body), ['vm'])
        self.assertEqual(len(body['vm']), 2)
        for vm in body['vm']:
            self.assertTrue(vm['href'].startswith(API_PATH + '/vms/'), vm['href'])
            self.assertEqual(vm['href'], API_PATH + '/vms/' + vm['id'])
        self.assertEqual(json_booleans(body), [],
                         'JSON booleans must be the strings "true"/"false"')

    def test_json_entity(self):
        """GET /vms/<id> with Accept: application/json is the bare object: id, href, name on top."""
        listed = http_request('GET', API_PATH + '/vms?accept=application/json&max=1',
                              self.bearer()).json()['vm'][0]
        response = http_request('GET', API_PATH + '/vms/' + listed['id'],
                                self.bearer({'Accept': 'application/json'}))
        self.assertEqual(response.status, 200, response)
        self.assertRegex(response.headers.get('Content-Type', ''), r'^\s*application/json')
        vm = response.json()
        self.assertEqual(vm.get('id'), listed['id'])
        self.assertEqual(vm.get('href'), API_PATH + '/vms/' + listed['id'])
        self.assertEqual(vm.get('name'), listed['name'])
        self.assertNotIn('vm', vm)
        self.assertEqual(json_booleans(vm), [],
                         'JSON booleans must be the strings "true"/"false"')

    def test_no_credentials_is_401_basic_challenge(self):
        """A request without credentials gets 401 with WWW-Authenticate: Basic realm="RESTAPI"."""
        response = http_request('GET', API_PATH + '/vms')
        self.assertEqual(response.status, 401, response)
        self.assertEqual(response.headers.get('WWW-Authenticate'), 'Basic realm="RESTAPI"')

    def test_basic_auth(self):
        """Basic credentials work on the API. Directly each such request is one Basic login on the
        Manager; through the gateway they are exchanged for one SSO login, at most, in all."""
        before = sim_stats()
        for _ in range(3):
            response = http_request('GET', API_PATH + '/vms?max=1',
                                    {'Authorization': basic_auth(*ADMIN)})
            self.assertEqual(response.status, 200, response)
            self.assertEqual(ElementTree.fromstring(response.body).tag, 'vms')
        after = sim_stats()
        if THROUGH_GATEWAY:
            self.assertEqual(after['basic_logins'] - before['basic_logins'], 0)
            self.assertLessEqual(after['sso_logins'] - before['sso_logins'], 1)
        else:
            self.assertEqual(after['basic_logins'] - before['basic_logins'], 3)

    def test_basic_auth_wrong_password(self):
        """Basic credentials with a wrong password get 401."""
        response = http_request('GET', API_PATH + '/vms?max=1',
                                {'Authorization': basic_auth(ADMIN[0], 'wrong-password')})
        self.assertEqual(response.status, 401, response)

    def test_correlation_id_echoed(self):
        """A Correlation-Id request header comes back as the Correlation-Id response header."""
        response = http_request('GET', API_PATH + '/vms?max=1',
                                self.bearer({'Correlation-Id': 'abc-123'}))
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.headers.get('Correlation-Id'), 'abc-123')

    def test_v4_path_prefix(self):
        """GET /v4/vms answers XML (the default) whose hrefs all carry the /v4 prefix."""
        response = http_request('GET', API_PATH + '/v4/vms?max=1', self.bearer())
        self.assertEqual(response.status, 200, response)
        self.assertRegex(response.headers.get('Content-Type', ''), r'^\s*application/xml')
        root = ElementTree.fromstring(response.body)
        self.assertEqual(root.tag, 'vms')
        self.assertEqual([child.tag for child in root], ['vm'])
        hrefs = [element.get('href') for element in root.iter() if element.get('href')]
        self.assertTrue(hrefs, 'no href in the response')
        for href in hrefs:
            self.assertTrue(href.startswith(API_PATH + '/v4/'), href)


if __name__ == '__main__':
    unittest.main(verbosity=2)
