//! The oVirt API in Cedar terms (policies/ovirt.cedarschema, built in): the collections of the API
//! root with their entity types, and the actions, verbs and groups the schema declares.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use cedar_policy::{Entity, Schema};

/// The schema every policy is validated against; the copy in policies/ is the same file.
pub const SCHEMA_TEXT: &str = include_str!("../../policies/ovirt.cedarschema");

/// The top-level collections of the API root (ovirt-engine-sdk 4.6.3, `SystemService`) and the
/// Cedar type of their entities, in the `Api` namespace.
pub const COLLECTIONS: [(&str, &str); 40] = [
    ("affinitylabels", "AffinityLabel"),
    ("bookmarks", "Bookmark"),
    ("clusterlevels", "ClusterLevel"),
    ("clusters", "Cluster"),
    ("cpuprofiles", "CpuProfile"),
    ("datacenters", "DataCenter"),
    ("diskprofiles", "DiskProfile"),
    ("disks", "Disk"),
    ("domains", "Domain"),
    ("events", "Event"),
    ("externalhostproviders", "ExternalHostProvider"),
    ("externaltemplateimports", "ExternalTemplateImport"),
    ("externalvmimports", "ExternalVmImport"),
    ("groups", "Group"),
    ("hosts", "Host"),
    ("icons", "Icon"),
    ("imagetransfers", "ImageTransfer"),
    ("instancetypes", "InstanceType"),
    ("jobs", "Job"),
    ("katelloerrata", "KatelloErratum"),
    ("macpools", "MacPool"),
    ("networkfilters", "NetworkFilter"),
    ("networks", "Network"),
    ("openstackimageproviders", "OpenstackImageProvider"),
    ("openstacknetworkproviders", "OpenstackNetworkProvider"),
    ("openstackvolumeproviders", "OpenstackVolumeProvider"),
    ("operatingsystems", "OperatingSystem"),
    ("options", "SystemOption"),
    ("permissions", "Permission"),
    ("roles", "Role"),
    ("schedulingpolicies", "SchedulingPolicy"),
    ("schedulingpolicyunits", "SchedulingPolicyUnit"),
    ("storageconnections", "StorageConnection"),
    ("storagedomains", "StorageDomain"),
    ("tags", "Tag"),
    ("templates", "Template"),
    ("users", "User"),
    ("vmpools", "VmPool"),
    ("vms", "Vm"),
    ("vnicprofiles", "VnicProfile"),
];

/// Entities of the schema's types reached below another one: (the enclosing entity's type, the
/// sub-collection's URL segment, the type of its entities), from the API model's service tree
/// (ovirt-engine-sdk 4.6.3 services.py, each `*_service(id)` locator with the type its `get` or
/// its collection's `add` reads). `DELETE /datacenters/DC/storagedomains/SD` detaches a storage
/// domain: it acts on `Api::StorageDomain::"SD"`, in `Api::DataCenter::"DC"`. Every segment is
/// also the top-level collection of its type. Sub-collections of other types (a VM's nics,
/// snapshots, disk attachments) stay sub-collections of the entity above them.
pub const SUB_ENTITIES: [(&str, &str, &str); 44] = [
    ("AffinityLabel", "hosts", "Host"),
    ("AffinityLabel", "vms", "Vm"),
    ("Cluster", "cpuprofiles", "CpuProfile"),
    ("Cluster", "networkfilters", "NetworkFilter"),
    ("Cluster", "networks", "Network"),
    ("Cluster", "permissions", "Permission"),
    ("CpuProfile", "permissions", "Permission"),
    ("DataCenter", "clusters", "Cluster"),
    ("DataCenter", "networks", "Network"),
    ("DataCenter", "permissions", "Permission"),
    ("DataCenter", "storagedomains", "StorageDomain"),
    ("Disk", "permissions", "Permission"),
    ("DiskProfile", "permissions", "Permission"),
    ("Domain", "groups", "Group"),
    ("Domain", "users", "User"),
    ("Group", "permissions", "Permission"),
    ("Group", "roles", "Role"),
    ("Group", "tags", "Tag"),
    ("Host", "affinitylabels", "AffinityLabel"),
    ("Host", "katelloerrata", "KatelloErratum"),
    ("Host", "permissions", "Permission"),
    ("Host", "tags", "Tag"),
    ("MacPool", "permissions", "Permission"),
    ("Network", "permissions", "Permission"),
    ("Network", "vnicprofiles", "VnicProfile"),
    ("StorageDomain", "diskprofiles", "DiskProfile"),
    ("StorageDomain", "disks", "Disk"),
    ("StorageDomain", "permissions", "Permission"),
    ("StorageDomain", "storageconnections", "StorageConnection"),
    ("StorageDomain", "templates", "Template"),
    ("StorageDomain", "vms", "Vm"),
    ("Template", "disks", "Disk"),
    ("Template", "permissions", "Permission"),
    ("Template", "tags", "Tag"),
    ("User", "permissions", "Permission"),
    ("User", "roles", "Role"),
    ("User", "tags", "Tag"),
    ("Vm", "affinitylabels", "AffinityLabel"),
    ("Vm", "disks", "Disk"),
    ("Vm", "katelloerrata", "KatelloErratum"),
    ("Vm", "permissions", "Permission"),
    ("Vm", "tags", "Tag"),
    ("VmPool", "permissions", "Permission"),
    ("VnicProfile", "permissions", "Permission"),
];

/// The top-level collection of a type's entities.
pub fn collection_of(kind: &str) -> Option<&'static str> {
    COLLECTIONS
        .iter()
        .find(|(_, k)| *k == kind)
        .map(|(name, _)| *name)
}

/// The type of the entities of `segment` below an entity of type `parent`, when the schema has one.
pub fn sub_entity(parent: &str, segment: &str) -> Option<&'static str> {
    SUB_ENTITIES
        .iter()
        .find(|(p, s, _)| *p == parent && *s == segment)
        .map(|(_, _, kind)| *kind)
}

/// The actions a request maps to when it is not an action verb; `other` is any method the API does
/// not use.
pub const METHOD_ACTIONS: [&str; 6] = ["list", "get", "add", "update", "remove", "other"];
/// The action groups policies permit.
pub const GROUPS: [&str; 4] = ["read", "write", "operate", "admin"];

pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::from_cedarschema_str(SCHEMA_TEXT)
            .map(|(schema, _warnings)| schema)
            .unwrap_or_else(|e| panic!("the built-in schema does not parse: {}", super::message(&e)))
    })
}

/// The Cedar type of a top-level collection's entities.
pub fn entity_type(collection: &str) -> Option<&'static str> {
    COLLECTIONS
        .iter()
        .find(|(name, _)| *name == collection)
        .map(|(_, kind)| *kind)
}

/// The action verbs of the API (`start`, `migrate`, ...): every action of the schema that is
/// neither a method's action nor a group.
pub fn verbs() -> &'static HashSet<String> {
    static VERBS: OnceLock<HashSet<String>> = OnceLock::new();
    VERBS.get_or_init(|| {
        schema()
            .actions()
            .map(|uid| uid.id().unescaped().to_owned())
            .filter(|name| !METHOD_ACTIONS.contains(&name.as_str()) && !GROUPS.contains(&name.as_str()))
            .collect()
    })
}

/// Every action a request can map to (the groups are not requested).
pub fn actions() -> impl Iterator<Item = &'static str> {
    METHOD_ACTIONS
        .iter()
        .copied()
        .chain(verbs().iter().map(String::as_str))
}

/// An action's entity and its group's, which a request needs for `action in Action::"read"`.
pub fn action_entities(action: &str) -> &'static [Entity] {
    static ACTIONS: OnceLock<HashMap<String, Vec<Entity>>> = OnceLock::new();
    let actions = ACTIONS.get_or_init(|| {
        let all = schema()
            .action_entities()
            .unwrap_or_else(|e| panic!("the built-in schema's actions: {e}"));
        all.iter()
            .map(|entity| {
                let uid = entity.uid();
                let mut chain = vec![entity.clone()];
                chain.extend(
                    all.ancestors(&uid)
                        .into_iter()
                        .flatten()
                        .filter_map(|group| all.get(group).cloned()),
                );
                (uid.id().unescaped().to_owned(), chain)
            })
            .collect()
    });
    actions.get(action).map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema parses, declares a type per collection and the 85 verbs of the API model.
    #[test]
    fn schema_matches_the_model() {
        let types: HashSet<String> = schema().entity_types().map(|t| t.to_string()).collect();
        for (_, kind) in COLLECTIONS {
            assert!(types.contains(&format!("Api::{kind}")), "{kind}");
        }
        for kind in [
            "Gateway::User",
            "Gateway::Group",
            "Api::Manager",
            "Api::Collection",
            "Api::Root",
            "Api::Unknown",
        ] {
            assert!(types.contains(kind), "{kind}");
        }
        assert_eq!(types.len(), COLLECTIONS.len() + 6);
        // Every sub-entity's segment is its type's top-level collection, and the schema puts it
        // in the type above it (a policy's `resource in Api::DataCenter::"DC"` validates).
        for (parent, segment, kind) in SUB_ENTITIES {
            assert_eq!(entity_type(segment), Some(kind), "{parent}/{segment}");
            let api = &SCHEMA_TEXT[SCHEMA_TEXT.find("namespace Api").expect("the Api namespace")..];
            let line = api
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("entity {kind} in [")))
                .unwrap_or_else(|| panic!("no entity {kind}"));
            assert!(
                line.contains(&format!(", {parent}")),
                "{kind} is not in {parent}: {line}"
            );
        }
        assert_eq!(verbs().len(), 85);
        for verb in [
            "start",
            "stop",
            "shutdown",
            "suspend",
            "reboot",
            "migrate",
            "remoteviewerconnectionfile",
        ] {
            assert!(verbs().contains(verb), "{verb}");
        }
    }
}
