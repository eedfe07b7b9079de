//! The simulator's inventory: every kind of object it serves, the collections of the API root, and
//! the deterministic generation of an inventory from a seed and size flags.
//!
//! Objects are stored once, as [`Entity`] values shared by `Arc`, so a listing can render a snapshot
//! without holding the inventory lock. A VM's nic, disk attachment, snapshot and disk are not stored:
//! they are derived from the VM (ids included, see [`derived_id`]), which keeps `--vms 100000` small.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Ids are UUIDs, kept as numbers; events have plain integer ids, as on the engine.
pub(super) type Id = u128;

/// The Blank template and the root tag share the all-zero id (docs/engine.md, section 4.1).
pub(super) const BLANK_ID: Id = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Kind {
    DataCenter,
    Cluster,
    Host,
    StorageDomain,
    Network,
    VnicProfile,
    Template,
    Vm,
    Tag,
    User,
    Group,
    Role,
    Permission,
    Event,
    Job,
    InstanceType,
    MacPool,
    CpuProfile,
    // Derived from their VM, never stored.
    Disk,
    Nic,
    DiskAttachment,
    Snapshot,
    Statistic,
    // Served under a VM or a cluster, always empty here.
    NumaNode,
    AffinityLabel,
    ReportedDevice,
    AffinityGroup,
}

/// How a kind appears in URLs and bodies.
pub(super) struct KindInfo {
    /// The URL segment of its collection (`storagedomains`).
    pub collection: &'static str,
    /// The element of its collection (`storage_domains`) and of one object (`storage_domain`).
    pub plural: &'static str,
    pub singular: &'static str,
    /// Action verbs the simulator implements, in the order the `<actions>` element lists them.
    pub actions: &'static [&'static str],
    /// Fields `?search=` may name besides `name`, `id`, `description` and `status`.
    pub search_fields: &'static [&'static str],
}

/// A collection under an object: its URL segment, the kind of its members and the `follow=` name.
pub(super) struct SubCollection {
    pub segment: &'static str,
    pub kind: Kind,
    pub follow: &'static str,
}

pub(super) const VM_ACTIONS: &[&str] = &["migrate", "reboot", "shutdown", "start", "stop", "suspend"];

pub(super) const VM_SUBCOLLECTIONS: &[SubCollection] = &[
    SubCollection {
        segment: "affinitylabels",
        kind: Kind::AffinityLabel,
        follow: "affinity_labels",
    },
    SubCollection {
        segment: "diskattachments",
        kind: Kind::DiskAttachment,
        follow: "disk_attachments",
    },
    SubCollection {
        segment: "nics",
        kind: Kind::Nic,
        follow: "nics",
    },
    SubCollection {
        segment: "numanodes",
        kind: Kind::NumaNode,
        follow: "numa_nodes",
    },
    PERMISSIONS,
    SubCollection {
        segment: "reporteddevices",
        kind: Kind::ReportedDevice,
        follow: "reported_devices",
    },
    SubCollection {
        segment: "snapshots",
        kind: Kind::Snapshot,
        follow: "snapshots",
    },
    STATISTICS,
    SubCollection {
        segment: "tags",
        kind: Kind::Tag,
        follow: "tags",
    },
];

const PERMISSIONS: SubCollection = SubCollection {
    segment: "permissions",
    kind: Kind::Permission,
    follow: "permissions",
};

const STATISTICS: SubCollection = SubCollection {
    segment: "statistics",
    kind: Kind::Statistic,
    follow: "statistics",
};

const CLUSTER_SUBCOLLECTIONS: &[SubCollection] = &[
    SubCollection {
        segment: "affinitygroups",
        kind: Kind::AffinityGroup,
        follow: "affinity_groups",
    },
    PERMISSIONS,
];

const HOST_SUBCOLLECTIONS: &[SubCollection] = &[PERMISSIONS, STATISTICS];

const STORAGE_DOMAIN_SUBCOLLECTIONS: &[SubCollection] = &[
    SubCollection {
        segment: "templates",
        kind: Kind::Template,
        follow: "templates",
    },
    SubCollection {
        segment: "vms",
        kind: Kind::Vm,
        follow: "vms",
    },
];

/// Users, groups and data centers: the permissions they hold or are the object of.
const PERMISSIONS_ONLY: &[SubCollection] = &[PERMISSIONS];

impl Kind {
    pub(super) fn info(self) -> &'static KindInfo {
        macro_rules! info {
            ($collection:literal, $plural:literal, $singular:literal, $actions:expr, $search:expr) => {
                &KindInfo {
                    collection: $collection,
                    plural: $plural,
                    singular: $singular,
                    actions: $actions,
                    search_fields: $search,
                }
            };
        }
        match self {
            Kind::DataCenter => info!("datacenters", "data_centers", "data_center", &[], &[]),
            Kind::Cluster => info!("clusters", "clusters", "cluster", &[], &["datacenter"]),
            Kind::Host => info!(
                "hosts",
                "hosts",
                "host",
                &[],
                &["cluster", "datacenter", "address"]
            ),
            Kind::StorageDomain => info!(
                "storagedomains",
                "storage_domains",
                "storage_domain",
                &[],
                &["type"]
            ),
            Kind::Network => info!("networks", "networks", "network", &[], &["datacenter"]),
            Kind::VnicProfile => info!("vnicprofiles", "vnic_profiles", "vnic_profile", &[], &[]),
            Kind::Template => info!(
                "templates",
                "templates",
                "template",
                &[],
                &["cluster", "datacenter", "memory", "vm.name"]
            ),
            Kind::Vm => info!(
                "vms",
                "vms",
                "vm",
                VM_ACTIONS,
                &[
                    "cluster",
                    "datacenter",
                    "host",
                    "template",
                    "memory",
                    "type",
                    "tag"
                ]
            ),
            Kind::Tag => info!("tags", "tags", "tag", &[], &[]),
            Kind::User => info!("users", "users", "user", &[], &["usrname"]),
            Kind::Group => info!("groups", "groups", "group", &[], &[]),
            Kind::Role => info!("roles", "roles", "role", &[], &[]),
            Kind::Permission => info!("permissions", "permissions", "permission", &[], &[]),
            Kind::Event => info!(
                "events",
                "events",
                "event",
                &[],
                &["severity", "type", "time", "vm.id"]
            ),
            Kind::Job => info!("jobs", "jobs", "job", &[], &[]),
            Kind::InstanceType => info!(
                "instancetypes",
                "instance_types",
                "instance_type",
                &[],
                &["memory"]
            ),
            Kind::MacPool => info!("macpools", "mac_pools", "mac_pool", &[], &[]),
            Kind::CpuProfile => info!("cpuprofiles", "cpu_profiles", "cpu_profile", &[], &[]),
            Kind::Disk => info!("disks", "disks", "disk", &[], &["storage", "provisioned_size"]),
            Kind::Nic => info!("nics", "nics", "nic", &[], &[]),
            Kind::DiskAttachment => info!("diskattachments", "disk_attachments", "disk_attachment", &[], &[]),
            Kind::Snapshot => info!("snapshots", "snapshots", "snapshot", &[], &[]),
            Kind::Statistic => info!("statistics", "statistics", "statistic", &[], &[]),
            Kind::NumaNode => info!("numanodes", "vm_numa_nodes", "vm_numa_node", &[], &[]),
            Kind::AffinityLabel => info!("affinitylabels", "affinity_labels", "affinity_label", &[], &[]),
            Kind::ReportedDevice => info!("reporteddevices", "reported_devices", "reported_device", &[], &[]),
            Kind::AffinityGroup => info!("affinitygroups", "affinity_groups", "affinity_group", &[], &[]),
        }
    }

    pub(super) const STORED: [Kind; 18] = [
        Kind::DataCenter,
        Kind::Cluster,
        Kind::Host,
        Kind::StorageDomain,
        Kind::Network,
        Kind::VnicProfile,
        Kind::Template,
        Kind::Vm,
        Kind::Tag,
        Kind::User,
        Kind::Group,
        Kind::Role,
        Kind::Permission,
        Kind::Event,
        Kind::Job,
        Kind::InstanceType,
        Kind::MacPool,
        Kind::CpuProfile,
    ];

    /// The kind whose top-level collection has this URL segment.
    pub(super) fn of_collection(segment: &str) -> Option<Kind> {
        Kind::STORED
            .into_iter()
            .chain([Kind::Disk])
            .find(|kind| kind.info().collection == segment)
    }

    /// The collections under an object of this kind.
    pub(super) fn subcollections(self) -> &'static [SubCollection] {
        match self {
            Kind::Vm => VM_SUBCOLLECTIONS,
            Kind::Cluster => CLUSTER_SUBCOLLECTIONS,
            Kind::Host => HOST_SUBCOLLECTIONS,
            Kind::StorageDomain => STORAGE_DOMAIN_SUBCOLLECTIONS,
            Kind::User | Kind::Group | Kind::DataCenter => PERMISSIONS_ONLY,
            _ => &[],
        }
    }

    fn is_stored(self) -> bool {
        (self as usize) < Kind::STORED.len()
    }

    /// How an id of this kind is written in hrefs and bodies.
    pub(super) fn format_id(self, id: Id) -> String {
        if self == Kind::Event {
            return id.to_string();
        }
        let hex = format!("{id:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }

    /// The id written in a URL segment; `None` when it is not a well-formed id of this kind.
    pub(super) fn parse_id(self, text: &str) -> Option<Id> {
        if self == Kind::Event {
            return text
                .parse()
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()));
        }
        // As the engine reads ids, with Java's UUID.fromString (JDK 9 and later): at most 36
        // characters, five dash-separated groups of hex digits, each with an optional `+` and
        // of any length, masked to its field's width (`1-1-1-1-1` is
        // 00000001-0001-0001-0001-000000000001).
        let groups: Vec<&str> = text.split('-').collect();
        if text.len() > 36 || groups.len() != 5 {
            return None;
        }
        let mut id: Id = 0;
        for (group, bits) in groups.iter().zip([32u32, 16, 16, 16, 48]) {
            let digits = group.strip_prefix('+').unwrap_or(group);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let value = i64::from_str_radix(digits, 16).ok()? as u64;
            id = (id << bits) | Id::from(value & ((1u64 << bits) - 1));
        }
        Some(id)
    }
}

/// The ids of a VM's derived objects: the VM's id with a per-kind mask on bits that leave the UUID's
/// version and variant alone, so the VM is found from its disk's id and vice versa in O(1).
pub(super) fn derived_id(kind: Kind, vm: Id) -> Id {
    let mask: Id = match kind {
        Kind::Disk => 0x1111_1111_1111_0000_0000_0000_0000_0000,
        Kind::Nic => 0x2222_2222_2222_0000_0000_0000_0000_0000,
        Kind::DiskAttachment => 0x1111_1111_1111_0000_0000_0000_0000_0000,
        Kind::Snapshot => 0x3333_3333_3333_0000_0000_0000_0000_0000,
        _ => 0,
    };
    vm ^ mask
}

/// A leaf or a group of leaves of an object (`<cpu><architecture>..</architecture></cpu>`).
#[derive(Debug, Clone)]
pub(super) enum Prop {
    Text(String),
    Static(&'static str),
    Int(i64),
    Bool(bool),
    Date(i64),
    Group(Vec<(&'static str, Prop)>),
}

/// One stored object.
#[derive(Debug, Clone)]
pub(super) struct Entity {
    pub kind: Kind,
    pub id: Id,
    pub name: String,
    pub description: String,
    pub comment: String,
    pub status: Option<&'static str>,
    /// References written as `<cluster href=".." id=".."/>` stubs, in order.
    pub refs: Vec<(&'static str, Kind, Id)>,
    /// The object's own members, in model order, written after the references.
    pub props: Vec<(&'static str, Prop)>,
    /// Relations used by the simulator but not written (a VM's storage domain and vnic profile).
    pub related: Vec<(Kind, Id)>,
}

impl Entity {
    pub(super) fn new(kind: Kind, id: Id, name: impl Into<String>) -> Entity {
        Entity {
            kind,
            id,
            name: name.into(),
            description: String::new(),
            comment: String::new(),
            status: None,
            refs: Vec::new(),
            props: Vec::new(),
            related: Vec::new(),
        }
    }

    /// The id of the object this one references under `name` (`cluster`, `host`, ...).
    pub(super) fn reference(&self, name: &str) -> Option<Id> {
        self.refs.iter().find(|(n, ..)| *n == name).map(|&(_, _, id)| id)
    }

    pub(super) fn related(&self, kind: Kind) -> Option<Id> {
        self.related.iter().find(|(k, _)| *k == kind).map(|&(_, id)| id)
    }

    pub(super) fn prop(&self, name: &str) -> Option<&Prop> {
        self.props.iter().find(|(n, _)| *n == name).map(|(_, p)| p)
    }

    pub(super) fn set_prop(&mut self, name: &'static str, value: Prop) {
        match self.props.iter_mut().find(|(n, _)| *n == name) {
            Some((_, slot)) => *slot = value,
            None => self.props.push((name, value)),
        }
    }

    pub(super) fn set_ref(&mut self, name: &'static str, kind: Kind, id: Option<Id>) {
        self.refs.retain(|(n, ..)| *n != name);
        if let Some(id) = id {
            self.refs.push((name, kind, id));
        }
    }
}

/// Every stored object, by kind and id (ids in order, so listings are stable).
#[derive(Default)]
pub(super) struct Inventory {
    stored: Vec<BTreeMap<Id, Arc<Entity>>>,
}

impl Inventory {
    pub(super) fn new() -> Inventory {
        Inventory {
            stored: Kind::STORED.iter().map(|_| BTreeMap::new()).collect(),
        }
    }

    pub(super) fn insert(&mut self, entity: Entity) {
        debug_assert!(entity.kind.is_stored());
        self.stored[entity.kind as usize].insert(entity.id, Arc::new(entity));
    }

    pub(super) fn remove(&mut self, kind: Kind, id: Id) -> Option<Arc<Entity>> {
        self.stored.get_mut(kind as usize)?.remove(&id)
    }

    /// A stored object, or a VM's derived object.
    pub(super) fn get(&self, kind: Kind, id: Id) -> Option<Arc<Entity>> {
        if kind.is_stored() {
            return self.stored[kind as usize].get(&id).cloned();
        }
        let vm = self.stored[Kind::Vm as usize].get(&derived_id(kind, id))?;
        Some(Arc::new(derive(kind, vm)))
    }

    /// Every stored object of a kind, in id order.
    pub(super) fn all(&self, kind: Kind) -> impl DoubleEndedIterator<Item = &Arc<Entity>> {
        self.stored[kind as usize].values()
    }

    pub(super) fn count(&self, kind: Kind) -> usize {
        self.stored.get(kind as usize).map_or(0, BTreeMap::len)
    }

    pub(super) fn update(
        &mut self,
        kind: Kind,
        id: Id,
        change: impl FnOnce(&mut Entity),
    ) -> Option<Arc<Entity>> {
        let slot = self.stored.get_mut(kind as usize)?.get_mut(&id)?;
        change(Arc::make_mut(slot));
        Some(slot.clone())
    }

    /// The object named `name`, case-sensitively, as the engine's name lookups are.
    pub(super) fn by_name(&self, kind: Kind, name: &str) -> Option<Arc<Entity>> {
        self.all(kind).find(|e| e.name == name).cloned()
    }
}

/// The object of `kind` derived from a VM (its nic, disk, disk attachment or snapshot).
pub(super) fn derive(kind: Kind, vm: &Entity) -> Entity {
    let id = derived_id(kind, vm.id);
    let vm_ref = ("vm", Kind::Vm, vm.id);
    let created = match vm.prop("creation_time") {
        Some(Prop::Date(ms)) => *ms,
        _ => 0,
    };
    match kind {
        Kind::Disk => {
            let mut disk = Entity::new(Kind::Disk, id, format!("{}_Disk1", vm.name));
            disk.status = Some("ok");
            let size = 10_i64 << 30;
            if let Some(sd) = vm.related(Kind::StorageDomain) {
                disk.refs.push(("storage_domain", Kind::StorageDomain, sd));
            }
            disk.props = vec![
                ("actual_size", Prop::Int(size / 4)),
                ("bootable", Prop::Bool(true)),
                ("content_type", Prop::Static("data")),
                ("format", Prop::Static("cow")),
                ("provisioned_size", Prop::Int(size)),
                ("shareable", Prop::Bool(false)),
                ("sparse", Prop::Bool(true)),
                ("storage_type", Prop::Static("image")),
            ];
            disk
        }
        Kind::DiskAttachment => {
            let mut attachment = Entity::new(Kind::DiskAttachment, id, "");
            attachment.props = vec![
                ("active", Prop::Bool(true)),
                ("bootable", Prop::Bool(true)),
                ("interface", Prop::Static("virtio_scsi")),
                ("logical_name", Prop::Static("/dev/sda")),
                ("pass_discard", Prop::Bool(false)),
                ("read_only", Prop::Bool(false)),
                ("uses_scsi_reservation", Prop::Bool(false)),
            ];
            attachment.refs = vec![("disk", Kind::Disk, derived_id(Kind::Disk, vm.id)), vm_ref];
            attachment
        }
        Kind::Nic => {
            let mut nic = Entity::new(Kind::Nic, id, "nic1");
            let mac = (vm.id & 0xff_ffff) as u32;
            nic.props = vec![
                ("interface", Prop::Static("virtio")),
                ("linked", Prop::Bool(true)),
                (
                    "mac",
                    Prop::Group(vec![(
                        "address",
                        Prop::Text(format!(
                            "56:6f:{:02x}:{:02x}:{:02x}:{:02x}",
                            mac >> 24,
                            (mac >> 16) & 0xff,
                            (mac >> 8) & 0xff,
                            mac & 0xff
                        )),
                    )]),
                ),
                ("plugged", Prop::Bool(true)),
            ];
            nic.refs = vec![vm_ref];
            if let Some(profile) = vm.related(Kind::VnicProfile) {
                nic.refs.push(("vnic_profile", Kind::VnicProfile, profile));
            }
            nic
        }
        Kind::Snapshot => {
            let mut snapshot = Entity::new(Kind::Snapshot, id, "");
            snapshot.description = "Active VM".into();
            snapshot.props = vec![
                ("date", Prop::Date(created)),
                ("persist_memorystate", Prop::Bool(false)),
                ("snapshot_status", Prop::Static("ok")),
                ("snapshot_type", Prop::Static("active")),
            ];
            snapshot.refs = vec![vm_ref];
            snapshot
        }
        _ => unreachable!("{kind:?} is stored, not derived"),
    }
}

/// The members of a sub-collection that are made from their parent alone (a VM's nic, disk
/// attachment and snapshot, a VM's or a host's statistics; none for NUMA nodes, affinity labels
/// and groups, and reported devices); `None` for the stored ones (permissions, tags, a storage
/// domain's templates and VMs), which need the inventory.
pub(super) fn derived_members(kind: Kind, parent: &Entity) -> Option<Vec<Entity>> {
    match (kind, parent.kind) {
        (Kind::Disk | Kind::Nic | Kind::DiskAttachment | Kind::Snapshot, Kind::Vm) => {
            Some(vec![derive(kind, parent)])
        }
        (Kind::Statistic, Kind::Vm | Kind::Host) => Some(statistics(parent)),
        (Kind::NumaNode | Kind::AffinityLabel | Kind::ReportedDevice | Kind::AffinityGroup, _) => {
            Some(Vec::new())
        }
        _ => None,
    }
}

/// The common statistics of a VM or a host, as the engine's VmStatisticalQuery and
/// HostStatisticalQuery name them: memory (configured or total, and in use) and CPU load; a VM
/// that is down uses none.
fn statistics(of: &Entity) -> Vec<Entity> {
    let memory = match of.prop("memory") {
        Some(Prop::Int(bytes)) => *bytes,
        _ => 0,
    };
    let running = of.status == Some("up");
    let used = if running { memory / 4 } else { 0 };
    let load = if running { 5 } else { 0 };
    let gauges: [(&str, &str, &'static str, &'static str, i64); 3] = match of.kind {
        Kind::Host => [
            ("memory.total", "Total memory", "integer", "bytes", memory),
            ("memory.used", "Used memory", "integer", "bytes", used),
            ("cpu.current.user", "User CPU usage", "decimal", "percent", load),
        ],
        _ => [
            (
                "memory.installed",
                "Total memory configured",
                "integer",
                "bytes",
                memory,
            ),
            ("memory.used", "Memory used (agent)", "integer", "bytes", used),
            (
                "cpu.current.guest",
                "CPU used by guest",
                "decimal",
                "percent",
                load,
            ),
        ],
    };
    let owner = match of.kind {
        Kind::Host => "host",
        _ => "vm",
    };
    gauges
        .into_iter()
        .enumerate()
        .map(|(i, (name, description, value_type, unit, datum))| {
            let mut statistic = Entity::new(Kind::Statistic, of.id ^ ((0x4444 + i as Id) << 112), name);
            statistic.description = description.into();
            statistic.props = vec![
                ("kind", Prop::Static("gauge")),
                ("type", Prop::Static(value_type)),
                ("unit", Prop::Static(unit)),
                (
                    "values",
                    Prop::Group(vec![("value", Prop::Group(vec![("datum", Prop::Int(datum))]))]),
                ),
            ];
            statistic.refs = vec![(owner, of.kind, of.id)];
            statistic
        })
        .collect()
}

/// A small, fast, deterministic generator (SplitMix64): the same seed gives the same inventory.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A random (version 4, RFC 4122 variant) UUID.
    pub(super) fn uuid(&mut self) -> Id {
        let raw = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        (raw & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// UUIDs are formatted 8-4-4-4-12 and parse back.
    #[test]
    fn uuid_round_trip() {
        let id = Rng::new(1).uuid();
        let text = Kind::Vm.format_id(id);
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "4");
        assert_eq!(Kind::Vm.parse_id(&text), Some(id));
    }

    /// A malformed id is not an id (the engine answers 400 or 404, never a match).
    #[test]
    fn malformed_ids_are_refused() {
        assert_eq!(Kind::Vm.parse_id("123"), None);
        assert_eq!(Kind::Vm.parse_id("g0000000-0000-0000-0000-000000000000"), None);
        assert_eq!(Kind::Vm.parse_id("1-1-1-1"), None);
        assert_eq!(Kind::Vm.parse_id("1--1-1-1"), None);
        assert_eq!(Kind::Vm.parse_id("00000000-0000-0000-0000-0000000000000"), None);
        assert_eq!(Kind::Event.parse_id("12"), Some(12));
        assert_eq!(Kind::Event.parse_id("+12"), None);
    }

    /// Ids in the other forms Java's UUID.fromString reads, as the engine reads them.
    #[test]
    fn java_forms_of_an_id() {
        let one = Kind::Vm.parse_id("00000001-0001-0001-0001-000000000001");
        assert_eq!(Kind::Vm.parse_id("1-1-1-1-1"), one);
        assert_eq!(Kind::Vm.parse_id("+1-+1-1-1-+1"), one);
        assert_eq!(Kind::Vm.parse_id("0000000-00000-0000-0000-000000000000"), Some(0));
        assert_eq!(
            Kind::Vm.parse_id("10000000f-0-0-0-0"),
            Kind::Vm.parse_id("0000000f-0-0-0-0")
        );
        assert_eq!(Kind::Event.parse_id("12"), Some(12));
        assert_eq!(Kind::Event.parse_id("+12"), None);
    }

    /// Derived ids keep the UUID version and lead back to the VM.
    #[test]
    fn derived_ids_lead_back_to_the_vm() {
        let vm = Rng::new(9).uuid();
        for kind in [Kind::Disk, Kind::Nic, Kind::Snapshot] {
            let derived = derived_id(kind, vm);
            assert_ne!(derived, vm);
            assert_eq!(&Kind::Vm.format_id(derived)[14..15], "4");
            assert_eq!(derived_id(kind, derived), vm);
        }
    }
}
