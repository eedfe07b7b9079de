//! Ids as on real engines: what every engine's installation data fixes is the same on two
//! simulators of different seeds, and nothing else is; `name_prefix` names the generated objects
//! apart while the built-in ones keep their names.

use std::collections::BTreeSet;

use super::*;

/// The collections whose members are compared (events have integer ids, counted per engine).
const COLLECTIONS: &[&str] = &[
    "datacenters",
    "clusters",
    "hosts",
    "storagedomains",
    "networks",
    "vnicprofiles",
    "templates",
    "instancetypes",
    "macpools",
    "cpuprofiles",
    "vms",
    "disks",
    "tags",
    "users",
    "groups",
    "roles",
    "permissions",
];

/// `(collection, id, name)` of every member of the compared collections.
async fn members(sim: &RunningSim) -> BTreeSet<(String, String, String)> {
    let mut found = BTreeSet::new();
    for collection in COLLECTIONS {
        let listing = api(sim, &format!("/{collection}")).xml().await;
        for member in &listing.children {
            let name = member.find("name").map_or("", |n| n.text.as_str());
            found.insert((
                collection.to_string(),
                member.attr("id").to_owned(),
                name.to_owned(),
            ));
        }
    }
    found
}

#[tokio::test]
async fn only_the_engines_fixed_ids_are_shared() {
    let east = simulator_with(|o| o.seed = 1).await;
    let west = simulator_with(|o| {
        o.seed = 2;
        o.name_prefix = "west-".into();
    })
    .await;
    let (east, west) = (members(&east).await, members(&west).await);
    let ids = |set: &BTreeSet<(String, String, String)>| -> BTreeSet<String> {
        set.iter().map(|(_, id, _)| id.clone()).collect()
    };
    let shared: BTreeSet<String> = ids(&east).intersection(&ids(&west)).cloned().collect();
    let expected: BTreeSet<String> = [
        // The Blank template and the root tag.
        "00000000-0000-0000-0000-000000000000",
        // SuperUser, UserRole, PowerUserRole, ClusterAdmin, DataCenterAdmin, UserVmManager,
        // ReadOnlyAdmin.
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0001-000000000001",
        "00000000-0000-0000-0001-000000000002",
        "def00001-0000-0000-0000-def000000001",
        "def00002-0000-0000-0000-def000000002",
        "def00006-0000-0000-0000-def000000006",
        "def0000c-0000-0000-0000-def00000000c",
        // Everyone.
        "eee00000-0000-0000-0000-123456789eee",
        // Tiny, Small, Medium, Large, XLarge.
        "00000003-0003-0003-0003-0000000000be",
        "00000005-0005-0005-0005-0000000002e6",
        "00000007-0007-0007-0007-00000000010a",
        "00000009-0009-0009-0009-0000000000f1",
        "0000000b-000b-000b-000b-00000000021f",
        // The first data center's ovirtmgmt network and its vNIC profile.
        "00000000-0000-0000-0000-000000000009",
        "0000000a-000a-000a-000a-000000000398",
        // The Default MAC pool and the first cluster's CPU profile.
        "58ca604b-017d-0374-0220-00000000014e",
        "58ca604e-01a7-003f-01de-000000000250",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(shared, expected);
    // The shared ids name the same objects on both.
    let named = |set: &BTreeSet<(String, String, String)>| -> BTreeSet<(String, String, String)> {
        set.iter()
            .filter(|(_, id, _)| expected.contains(id))
            .cloned()
            .collect()
    };
    assert_eq!(named(&east), named(&west));
    let vm_names = |set: &BTreeSet<(String, String, String)>| -> Vec<String> {
        set.iter()
            .filter(|(collection, ..)| collection == "vms")
            .map(|(_, _, name)| name.clone())
            .collect()
    };
    assert!(vm_names(&east).contains(&"vm-00001".to_owned()));
    assert!(
        vm_names(&west).iter().all(|name| name.starts_with("west-vm-")),
        "{:?}",
        vm_names(&west)
    );
}

/// The built-in users' rights follow the prefixed names: alice still sees every fifth VM.
#[tokio::test]
async fn a_prefix_keeps_the_built_in_rights() {
    let sim = simulator_with(|o| o.name_prefix = "west-".into()).await;
    let hers = listed(api(&sim, "/vms").by("alice")).await;
    assert_eq!(
        hers,
        (1..=50)
            .step_by(5)
            .map(|n| format!("west-vm-{n:05}"))
            .collect::<Vec<_>>()
    );
    let carols = listed(api(&sim, "/vms").by("carol")).await;
    assert!(!carols.is_empty());
    let refused = try_simulator_with(|o| o.name_prefix = "a b".into()).await;
    assert!(refused.is_err_and(|e| e.contains("--name-prefix")));
}
