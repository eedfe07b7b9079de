//! Builds an inventory from a seed and the size flags: the same flags give the same objects, ids and
//! names on every run, so tests and benchmarks can rely on them.
//!
//! Names: data centers `dc-N`, clusters `cluster-N` (two per data center), hosts `host-NN`, VMs
//! `vm-NNNNN`, storage domains `dc-N-data`, networks `ovirtmgmt` (one per data center) with a vnic
//! profile each, templates `Blank` plus one `tpl-N` per cluster.

use super::model::{BLANK_ID, Entity, Id, Inventory, Kind, Prop, Rng};

/// How many objects to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub clusters: usize,
    pub hosts: usize,
    pub vms: usize,
}

impl Default for Sizes {
    fn default() -> Sizes {
        Sizes {
            clusters: 4,
            hosts: 8,
            vms: 50,
        }
    }
}

/// 2026-01-01T00:00:00Z: generated objects were created in the days before it.
pub(super) const EPOCH_MS: i64 = 1_767_225_600_000;

/// A VM description with text that looks like markup, to prove it is escaped (and, later, never
/// rewritten): every tenth VM carries it.
pub(super) const TRICKY_DESCRIPTION: &str =
    "Owner <ops@example.com> & \"team\"; see href=\"/ovirt-engine/api/x\" and {query} \u{e9}t\u{e9}";

/// Roles as predefined on the engine (a subset), with whether they are administrative.
/// The predefined roles the simulator knows, with the ids every engine gives them and whether
/// they are administrative (ovirt-engine: packaging/dbscripts/data/00500_insert_roles.sql).
pub(super) const ROLES: &[(&str, Id, bool)] = &[
    ("SuperUser", 0x00000000_0000_0000_0000_000000000001, true),
    ("ClusterAdmin", 0xdef00001_0000_0000_0000_def000000001, true),
    ("DataCenterAdmin", 0xdef00002_0000_0000_0000_def000000002, true),
    ("ReadOnlyAdmin", 0xdef0000c_0000_0000_0000_def00000000c, true),
    ("UserRole", 0x00000000_0000_0000_0001_000000000001, false),
    ("PowerUserRole", 0x00000000_0000_0000_0001_000000000002, false),
    ("UserVmManager", 0xdef00006_0000_0000_0000_def000000006, false),
];

/// Ids that are the same on every engine, because its installation data sets them
/// (ovirt-engine: packaging/dbscripts/data/): the group Everyone (00200_insert_ad_groups.sql),
/// the ovirtmgmt network of the first data center and its vNIC profile (00900_insert_network.sql,
/// 01900_insert_vnic_profiles.sql), the five instance types (01100_insert_vm_static.sql, with
/// their memory and virtual CPUs), the Default MAC pool (00210_insert_mac_pools.sql) and the
/// first cluster's Default CPU profile (02100_insert_cpu_profiles.sql), the last two on
/// engines installed since 4.2.
const EVERYONE_ID: Id = 0xeee00000_0000_0000_0000_123456789eee;
const OVIRTMGMT_ID: Id = 0x00000000_0000_0000_0000_000000000009;
const OVIRTMGMT_PROFILE_ID: Id = 0x0000000a_000a_000a_000a_000000000398;
const MAC_POOL_ID: Id = 0x58ca604b_017d_0374_0220_00000000014e;
const CPU_PROFILE_ID: Id = 0x58ca604e_01a7_003f_01de_000000000250;
const INSTANCE_TYPES: &[(&str, Id, i64, i64)] = &[
    ("Tiny", 0x00000003_0003_0003_0003_0000000000be, 512 << 20, 1),
    ("Small", 0x00000005_0005_0005_0005_0000000002e6, 2 << 30, 1),
    ("Medium", 0x00000007_0007_0007_0007_00000000010a, 4 << 30, 2),
    ("Large", 0x00000009_0009_0009_0009_0000000000f1, 8 << 30, 2),
    ("XLarge", 0x0000000b_000b_000b_000b_00000000021f, 16 << 30, 4),
];

pub(super) fn generate(seed: u64, sizes: Sizes, prefix: &str) -> Inventory {
    let mut rng = Rng::new(seed);
    let mut inventory = Inventory::new();
    let clusters = sizes.clusters.max(1);
    let data_centers = clusters.div_ceil(2);

    let mut dcs = Vec::new();
    let mut storage = Vec::new();
    let mut profiles = Vec::new();
    for n in 1..=data_centers {
        let mut dc = Entity::new(Kind::DataCenter, rng.uuid(), format!("{prefix}dc-{n}"));
        dc.status = Some("up");
        dc.props = vec![
            ("local", Prop::Bool(false)),
            ("storage_format", Prop::Static("v5")),
            ("version", version()),
        ];
        let mut sd = Entity::new(Kind::StorageDomain, rng.uuid(), format!("{prefix}dc-{n}-data"));
        sd.props = vec![
            ("available", Prop::Int((500 + rng.below(500) as i64) << 30)),
            ("committed", Prop::Int(200 << 30)),
            ("master", Prop::Bool(true)),
            (
                "storage",
                Prop::Group(vec![
                    ("address", Prop::Text(format!("nfs-{n}.sim.example"))),
                    ("path", Prop::Text(format!("/exports/dc-{n}"))),
                    ("type", Prop::Static("nfs")),
                ]),
            ),
            ("storage_format", Prop::Static("v5")),
            ("type", Prop::Static("data")),
            ("used", Prop::Int(100 << 30)),
        ];
        sd.refs.push(("data_center", Kind::DataCenter, dc.id));
        // The random ids are drawn for the first data center too, so that every other id of a
        // seed's inventory is what it was before these ids were fixed.
        let (network_id, profile_id) = (rng.uuid(), rng.uuid());
        let (network_id, profile_id) = if n == 1 {
            (OVIRTMGMT_ID, OVIRTMGMT_PROFILE_ID)
        } else {
            (network_id, profile_id)
        };
        let mut network = Entity::new(Kind::Network, network_id, "ovirtmgmt");
        network.description = "Management Network".into();
        network.props = vec![("mtu", Prop::Int(0)), ("stp", Prop::Bool(false))];
        network.refs.push(("data_center", Kind::DataCenter, dc.id));
        let mut profile = Entity::new(Kind::VnicProfile, profile_id, "ovirtmgmt");
        profile.props = vec![(
            "pass_through",
            Prop::Group(vec![("mode", Prop::Static("disabled"))]),
        )];
        profile.refs.push(("network", Kind::Network, network.id));
        dcs.push(dc.id);
        storage.push(sd.id);
        profiles.push(profile.id);
        inventory.insert(dc);
        inventory.insert(sd);
        inventory.insert(network);
        inventory.insert(profile);
    }

    let mut blank = Entity::new(Kind::Template, BLANK_ID, "Blank");
    blank.description = "Blank template".into();
    blank.status = Some("ok");
    blank.props = template_props(1 << 30, EPOCH_MS - 400 * 86_400_000);
    inventory.insert(blank);

    let mut cluster_ids = Vec::new();
    let mut templates = Vec::new();
    for n in 1..=clusters {
        let dc = (n - 1) / 2;
        let mut cluster = Entity::new(Kind::Cluster, rng.uuid(), format!("{prefix}cluster-{n}"));
        cluster.props = vec![
            (
                "cpu",
                Prop::Group(vec![
                    ("architecture", Prop::Static("x86_64")),
                    ("type", Prop::Static("Intel Cascadelake Server Family")),
                ]),
            ),
            ("ha_reservation", Prop::Bool(false)),
            (
                "memory_policy",
                Prop::Group(vec![(
                    "over_commit",
                    Prop::Group(vec![("percent", Prop::Int(100))]),
                )]),
            ),
            ("version", version()),
        ];
        cluster.refs.push(("data_center", Kind::DataCenter, dcs[dc]));
        let mut template = Entity::new(Kind::Template, rng.uuid(), format!("{prefix}tpl-{n}"));
        template.status = Some("ok");
        template.props = template_props(2 << 30, EPOCH_MS - 300 * 86_400_000);
        template.refs.push(("cluster", Kind::Cluster, cluster.id));
        cluster_ids.push((cluster.id, dc));
        templates.push(template.id);
        inventory.insert(cluster);
        inventory.insert(template);
    }

    let mut hosts: Vec<Vec<Id>> = vec![Vec::new(); clusters];
    for n in 1..=sizes.hosts {
        let c = (n - 1) % clusters;
        let mut host = Entity::new(Kind::Host, rng.uuid(), format!("{prefix}host-{n:02}"));
        host.status = Some("up");
        host.props = vec![
            ("address", Prop::Text(format!("host-{n:02}.sim.example"))),
            (
                "cpu",
                Prop::Group(vec![(
                    "topology",
                    Prop::Group(vec![
                        ("cores", Prop::Int(16)),
                        ("sockets", Prop::Int(2)),
                        ("threads", Prop::Int(2)),
                    ]),
                )]),
            ),
            ("memory", Prop::Int(256 << 30)),
            ("port", Prop::Int(54321)),
            ("type", Prop::Static("rhel")),
        ];
        host.refs.push(("cluster", Kind::Cluster, cluster_ids[c].0));
        hosts[c].push(host.id);
        inventory.insert(host);
    }

    for n in 1..=sizes.vms {
        let c = (n - 1) % clusters;
        let (cluster, dc) = cluster_ids[c];
        let up = rng.below(2) == 0;
        let created = EPOCH_MS - (rng.below(200 * 86_400) as i64) * 1000;
        let mut vm = Entity::new(Kind::Vm, rng.uuid(), format!("{prefix}vm-{n:05}"));
        if n % 10 == 3 {
            vm.description = TRICKY_DESCRIPTION.into();
        }
        vm.status = Some(if up { "up" } else { "down" });
        let template = if n % 3 == 0 { templates[c] } else { BLANK_ID };
        vm.refs = vec![
            ("cluster", Kind::Cluster, cluster),
            ("template", Kind::Template, template),
        ];
        let host = (!hosts[c].is_empty()).then(|| hosts[c][rng.below(hosts[c].len() as u64) as usize]);
        if up {
            vm.refs.push(("host", Kind::Host, host.unwrap_or(BLANK_ID)));
        }
        vm.props = vm_props(
            1 << (30 + rng.below(3)),
            created,
            up.then_some(created + 3_600_000),
        );
        vm.related = vec![
            (Kind::StorageDomain, storage[dc]),
            (Kind::VnicProfile, profiles[dc]),
        ];
        if host.is_none() {
            // No host in this cluster: a VM cannot run.
            vm.status = Some("down");
            vm.refs.retain(|(name, ..)| *name != "host");
        }
        inventory.insert(vm);
    }

    let mut root = Entity::new(Kind::Tag, BLANK_ID, "root");
    root.description = "root".into();
    inventory.insert(root);
    for name in ["production", "lab"] {
        let mut tag = Entity::new(Kind::Tag, rng.uuid(), name);
        tag.refs.push(("parent", Kind::Tag, BLANK_ID));
        inventory.insert(tag);
    }
    for &(name, id, administrative) in ROLES {
        let mut role = Entity::new(Kind::Role, id, name);
        role.props = vec![
            ("administrative", Prop::Bool(administrative)),
            ("mutable", Prop::Bool(false)),
        ];
        inventory.insert(role);
    }
    let mut everyone = Entity::new(Kind::Group, EVERYONE_ID, "Everyone");
    everyone.props = vec![("namespace", Prop::Static("*"))];
    inventory.insert(everyone);
    for &(name, id, memory, cpus) in INSTANCE_TYPES {
        let mut instance_type = Entity::new(Kind::InstanceType, id, name);
        instance_type.description = format!("{name} instance type");
        instance_type.props = vec![
            (
                "cpu",
                Prop::Group(vec![(
                    "topology",
                    Prop::Group(vec![
                        ("cores", Prop::Int(1)),
                        ("sockets", Prop::Int(cpus)),
                        ("threads", Prop::Int(1)),
                    ]),
                )]),
            ),
            ("memory", Prop::Int(memory)),
        ];
        inventory.insert(instance_type);
    }
    let mut mac_pool = Entity::new(Kind::MacPool, MAC_POOL_ID, "Default");
    mac_pool.description = "Default MAC pool".into();
    mac_pool.props = vec![
        ("allow_duplicates", Prop::Bool(false)),
        ("default_pool", Prop::Bool(true)),
        (
            "ranges",
            Prop::Group(vec![(
                "range",
                Prop::Group(vec![
                    ("from", Prop::Static("56:6f:00:00:00:00")),
                    ("to", Prop::Static("56:6f:ff:ff:ff:ff")),
                ]),
            )]),
        ),
    ];
    inventory.insert(mac_pool);
    // Every cluster has a CPU profile named after it, as the engine makes them; cluster-1's is
    // the one the engine installs with its first cluster: `Default`, with its fixed id.
    let mut clusters: Vec<(Id, String)> = inventory
        .all(Kind::Cluster)
        .map(|c| (c.id, c.name.clone()))
        .collect();
    clusters.sort_by_key(|(_, name)| (name.len(), name.clone()));
    for (i, (cluster, name)) in clusters.into_iter().enumerate() {
        let random = rng.uuid();
        let (id, name) = if i == 0 {
            (CPU_PROFILE_ID, "Default".to_owned())
        } else {
            (random, name)
        };
        let mut profile = Entity::new(Kind::CpuProfile, id, name);
        profile.refs.push(("cluster", Kind::Cluster, cluster));
        inventory.insert(profile);
    }
    for n in 1..=20_u128 {
        let mut event = Entity::new(Kind::Event, n, "");
        event.description = format!("Event {n}: VDSM host-01 command GetStatsAsyncVDS succeeded.");
        event.props = vec![
            ("code", Prop::Int(10_000 + n as i64)),
            ("custom_id", Prop::Int(-1)),
            ("flood_rate", Prop::Int(30)),
            ("index", Prop::Int(n as i64)),
            ("origin", Prop::Static("oVirt")),
            ("severity", Prop::Static("normal")),
            ("time", Prop::Date(EPOCH_MS - (21 - n as i64) * 60_000)),
        ];
        inventory.insert(event);
    }
    inventory
}

fn version() -> Prop {
    Prop::Group(vec![("major", Prop::Int(4)), ("minor", Prop::Int(6))])
}

fn template_props(memory: i64, created: i64) -> Vec<(&'static str, Prop)> {
    vec![
        ("creation_time", Prop::Date(created)),
        ("memory", Prop::Int(memory)),
        ("os", Prop::Group(vec![("type", Prop::Static("other"))])),
        ("stateless", Prop::Bool(false)),
        ("type", Prop::Static("server")),
        // Every template is the base version of itself (ovirt_vm sorts templates by it).
        (
            "version",
            Prop::Group(vec![
                ("version_name", Prop::Static("base version")),
                ("version_number", Prop::Int(1)),
            ]),
        ),
    ]
}

pub(super) fn vm_props(memory: i64, created: i64, started: Option<i64>) -> Vec<(&'static str, Prop)> {
    let mut props = vec![
        (
            "cpu",
            Prop::Group(vec![(
                "topology",
                Prop::Group(vec![
                    ("cores", Prop::Int(1)),
                    ("sockets", Prop::Int(2)),
                    ("threads", Prop::Int(1)),
                ]),
            )]),
        ),
        ("creation_time", Prop::Date(created)),
        (
            "high_availability",
            Prop::Group(vec![("enabled", Prop::Bool(false)), ("priority", Prop::Int(0))]),
        ),
        ("memory", Prop::Int(memory)),
        ("origin", Prop::Static("ovirt")),
        ("os", Prop::Group(vec![("type", Prop::Static("rhel_8x64"))])),
        ("stateless", Prop::Bool(false)),
        ("type", Prop::Static("server")),
    ];
    if let Some(started) = started {
        props.push(("start_time", Prop::Date(started)));
    }
    props
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same seed gives the same inventory; another seed other ids.
    #[test]
    fn generation_is_deterministic() {
        let ids = |seed| {
            generate(seed, Sizes::default(), "")
                .all(Kind::Vm)
                .map(|vm| (vm.id, vm.name.clone(), vm.status))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(7), ids(7));
        assert_ne!(ids(7), ids(8));
    }

    /// The default sizes are those of the issue: 2 data centers, 4 clusters, 8 hosts, 50 VMs.
    #[test]
    fn default_sizes() {
        let inventory = generate(1, Sizes::default(), "");
        assert_eq!(inventory.count(Kind::DataCenter), 2);
        assert_eq!(inventory.count(Kind::Cluster), 4);
        assert_eq!(inventory.count(Kind::Host), 8);
        assert_eq!(inventory.count(Kind::Vm), 50);
        assert!(inventory.get(Kind::Template, BLANK_ID).is_some());
    }

    /// A running VM names its host; a stopped one has none.
    #[test]
    fn only_running_vms_have_a_host() {
        let inventory = generate(3, Sizes::default(), "");
        for vm in inventory.all(Kind::Vm) {
            assert_eq!(
                vm.status == Some("up"),
                vm.reference("host").is_some(),
                "{}",
                vm.name
            );
        }
    }
}
