//! The oVirt API's vocabulary, the one place the gateway learns what the engine's URLs and
//! parameters mean: the collections of the API root and the types of their entities, the
//! entities below other entities, the action verbs and the actions and groups a request maps
//! to, and how the engine reads an id. The parts: how a path is read ([`path`]), how parameters
//! are read ([`params`]), and the API model's links ([`model`]). Policy, cache, rate limiting and
//! configuration read the API through this module; policy::model checks that the Cedar schema
//! declares what is here.

pub(crate) mod model;
pub(crate) mod params;
pub(crate) mod path;

/// The top-level collections of the API root (ovirt-engine-sdk 4.6.3, `SystemService`) and the
/// type of their entities (the Cedar type in the `Api` namespace of policies/ovirt.cedarschema).
pub(crate) const COLLECTIONS: [(&str, &str); 40] = [
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
pub(crate) const SUB_ENTITIES: [(&str, &str, &str); 44] = [
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
pub(crate) fn collection_of(kind: &str) -> Option<&'static str> {
    COLLECTIONS
        .iter()
        .find(|(_, k)| *k == kind)
        .map(|(name, _)| *name)
}

/// The type of the entities of `segment` below an entity of type `parent`, when the schema has one.
pub(crate) fn sub_entity(parent: &str, segment: &str) -> Option<&'static str> {
    SUB_ENTITIES
        .iter()
        .find(|(p, s, _)| *p == parent && *s == segment)
        .map(|(_, _, kind)| *kind)
}

/// The actions a request maps to when it is not an action verb; `other` is any method the API does
/// not use.
pub(crate) const METHOD_ACTIONS: [&str; 6] = ["list", "get", "add", "update", "remove", "other"];
/// The action groups policies permit (the schema declares them; its test checks they are these).
#[cfg(test)]
pub(crate) const GROUPS: [&str; 4] = ["read", "write", "operate", "admin"];

/// The action verbs of the API (`POST /vms/ID/start`), the services' actions of the API model
/// (ovirt-engine-sdk 4.6.3) as the built-in Cedar schema declares them, sorted.
pub(crate) const VERBS: [&str; 85] = [
    "activate",
    "allocatevm",
    "approve",
    "autopincpuandnumanodes",
    "cancel",
    "cancelmigration",
    "cleanfinishedtasks",
    "clear",
    "clone",
    "commitnetconfig",
    "commitsnapshot",
    "convert",
    "copy",
    "copyhostnetworks",
    "deactivate",
    "detach",
    "disable",
    "discoveriscsi",
    "enable",
    "end",
    "enrollcertificate",
    "export",
    "extend",
    "fence",
    "finalize",
    "forceselectspm",
    "freezefilesystems",
    "getprofilestatistics",
    "import",
    "importcertificates",
    "install",
    "isattached",
    "iscsidiscover",
    "iscsilogin",
    "logon",
    "maintenance",
    "migrate",
    "move",
    "pause",
    "previewsnapshot",
    "proxyticket",
    "rebalance",
    "reboot",
    "reduce",
    "reduceluns",
    "refresh",
    "refreshglusterhealstatus",
    "refreshlun",
    "refreshluns",
    "register",
    "reloadconfigurations",
    "remoteviewerconnectionfile",
    "reordermacaddresses",
    "replace",
    "reset",
    "resetalloptions",
    "resetemulatedmachine",
    "resetoption",
    "resolve",
    "restore",
    "resume",
    "screenshot",
    "setmaster",
    "setoption",
    "setupnetworks",
    "shutdown",
    "sparsify",
    "start",
    "startprofile",
    "stop",
    "stopmigrate",
    "stopprofile",
    "stoprebalance",
    "suspend",
    "syncallnetworks",
    "testconnectivity",
    "thawfilesystems",
    "ticket",
    "undelete",
    "undosnapshot",
    "unregisteredstoragedomainsdiscover",
    "updateovfstore",
    "updatevirtualfunctionsconfiguration",
    "upgrade",
    "upgradecheck",
];

/// Whether `segment` is one of the API's action verbs.
pub(crate) fn is_verb(segment: &str) -> bool {
    VERBS.binary_search(&segment).is_ok()
}

/// The Cedar type of a top-level collection's entities.
pub(crate) fn entity_type(collection: &str) -> Option<&'static str> {
    COLLECTIONS
        .iter()
        .find(|(name, _)| *name == collection)
        .map(|(_, kind)| *kind)
}

/// An id as the Manager reads it: UUIDs case-insensitively (the engine parses them with
/// `UUID.fromString`), so `/vms/ABC...` is the same VM as `/vms/abc...`; written lowercase.
pub fn canonical_id(id: &str) -> String {
    if path::canonical_uuid(id) {
        id.to_ascii_lowercase()
    } else {
        id.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verbs are sorted (they are searched by bisection) and none is a method's action or a
    /// group.
    #[test]
    fn verbs_are_sorted_and_distinct_from_actions() {
        assert!(VERBS.windows(2).all(|w| w[0] < w[1]));
        assert!(
            VERBS
                .iter()
                .all(|v| !METHOD_ACTIONS.contains(v) && !GROUPS.contains(v))
        );
        assert!(is_verb("start") && is_verb("remoteviewerconnectionfile") && !is_verb("vms"));
    }
}
