"""The real oVirt Python SDK against the merged view (docs/federation.md, "The merged view"):
`ovirt-gateway demo --merged`, two simulators, `east` (names vm-00001...) and `west` (names
west-vm-00001...), merged at the root. Run by tests/clients/run.py in its `merged` mode.

Environment: OVIRT_URL (the merged API), OVIRT_CA_FILE, as for tests/sdk/scenarios.py.
"""

import os
import unittest

import ovirtsdk4 as sdk
import ovirtsdk4.types as types

OVIRT_URL = os.environ['OVIRT_URL'].rstrip('/')
OVIRT_CA_FILE = os.environ.get('OVIRT_CA_FILE') or None
ADMIN = ('admin@internal', 'admin')
MISSING_VM_ID = '00000000-0000-0000-0000-0000000000ff'
BLANK_TEMPLATE_ID = '00000000-0000-0000-0000-000000000000'


def connect(headers=None):
    return sdk.Connection(url=OVIRT_URL, username=ADMIN[0], password=ADMIN[1],
                          ca_file=OVIRT_CA_FILE, timeout=30, headers=headers)


def names(objects):
    return [o.name for o in objects]


class MergedViewTests(unittest.TestCase):

    def test_one_listing_holds_every_member(self):
        """list() holds east's VMs then west's; max cuts the merged result; a search spans both."""
        with connect() as connection:
            vms_service = connection.system_service().vms_service()
            everything = names(vms_service.list())
            east = [n for n in everything if not n.startswith('west-')]
            west = [n for n in everything if n.startswith('west-')]
            self.assertTrue(east and west, everything[:5])
            self.assertEqual(everything, east + west, 'members in member order')
            self.assertEqual(len(vms_service.list(max=3)), 3)
            found = names(vms_service.list(search='name=*vm-0001*'))
            self.assertIn('vm-00010', found)
            self.assertIn('west-vm-00010', found)

    def test_ids_and_links_reach_their_member(self):
        """A west VM by id, and follow_link to its cluster and nics: all answered by west."""
        with connect() as connection:
            vms_service = connection.system_service().vms_service()
            [listed] = vms_service.list(search='name=west-vm-00001')
            vm = vms_service.vm_service(listed.id).get()
            self.assertEqual(vm.name, 'west-vm-00001')
            cluster = connection.follow_link(vm.cluster)
            self.assertTrue(cluster.name.startswith('west-'), cluster.name)
            self.assertTrue(connection.follow_link(vm.nics))
            with self.assertRaises(sdk.NotFoundError):
                vms_service.vm_service(MISSING_VM_ID).get()

    def test_root_sums_the_members(self):
        """The API root: its summary counts both members' VMs; the Blank template is special."""
        with connect() as connection:
            api = connection.system_service().get()
            vms = len(connection.system_service().vms_service().list())
            self.assertEqual(api.summary.vms.total, vms)
            self.assertEqual(api.special_objects.blank_template.id, BLANK_TEMPLATE_ID)
            self.assertEqual(api.product_info.version.major, 4)

    def test_create_goes_where_its_cluster_is(self):
        """add() in west-cluster-1 creates at west; start, stop and remove reach it by id."""
        with connect() as connection:
            vms_service = connection.system_service().vms_service()
            vm = vms_service.add(types.Vm(
                name='merged-sdk-vm',
                cluster=types.Cluster(name='west-cluster-1'),
                template=types.Template(id=BLANK_TEMPLATE_ID),
            ))
            self.assertTrue(vm.id)
            with connect(headers={'Federation-Manager': 'west'}) as west:
                there = west.system_service().vms_service().list(search='name=merged-sdk-vm')
                self.assertEqual(names(there), ['merged-sdk-vm'])
            vm_service = vms_service.vm_service(vm.id)
            vm_service.start()
            vm_service.stop()
            vm_service.remove()
            self.assertEqual(vms_service.list(search='name=merged-sdk-vm'), [])

    def test_lookups_of_shared_names(self):
        """A lookup of the Blank template (the same object on every member) finds one, home's;
        a lookup of a name two members have for different objects is an error that says how to
        name one."""
        with connect() as connection:
            templates = connection.system_service().templates_service().list(search='name=Blank')
            self.assertEqual([t.id for t in templates], [BLANK_TEMPLATE_ID])
            users_service = connection.system_service().users_service()
            with self.assertRaises(sdk.Error) as raised:
                users_service.list(search='name=alice')
            self.assertIn('Federation-Manager', str(raised.exception))

    def test_federation_manager_header_targets_one_member(self):
        """headers={'Federation-Manager': 'west'} lists west's VMs only."""
        with connect(headers={'Federation-Manager': 'west'}) as connection:
            vms = names(connection.system_service().vms_service().list())
            self.assertTrue(vms)
            self.assertTrue(all(n.startswith('west-') for n in vms), vms[:5])
