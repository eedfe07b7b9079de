//! The simulator's users, groups and permissions, and what each user may see and do.
//!
//! As on the engine (docs/engine.md, section 6): a permission is (role, user or group, object), inherited
//! down system → data center → cluster → VM; a user holding any administrative role is unfiltered,
//! every other user is filtered by default and sees only what their permissions cover (other VMs
//! are 404 for them). Write actions are checked against the permits of the roles that cover the VM.
//!
//! Departures, also in docs/simulator.md: a filtered user sees the VMs their permissions cover, the
//! disks of those VMs, the clusters and data centers they are in, and the Blank template; other
//! collections are empty for them (the engine's filtered views are finer).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use super::generate::ROLES;
use super::model::{BLANK_ID, Entity, Id, Inventory, Kind, Prop, Rng};

/// A group of rights a role grants (the engine's permits, reduced to what the simulator checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Permit {
    /// start, stop, shutdown, suspend, reboot.
    VmBasicOperations,
    MigrateVm,
    CreateVm,
    EditVmProperties,
    DeleteVm,
}

fn role_grants(role: &str, permit: Permit) -> bool {
    use Permit::*;
    match role {
        "SuperUser" | "ClusterAdmin" | "DataCenterAdmin" => true,
        "PowerUserRole" => permit != MigrateVm,
        "UserVmManager" => matches!(permit, VmBasicOperations | EditVmProperties | DeleteVm),
        "UserRole" => permit == VmBasicOperations,
        _ => false,
    }
}

fn role_is_admin(role: &str) -> bool {
    ROLES.iter().any(|(name, _, admin)| *name == role && *admin)
}

/// The object a permission is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    System,
    DataCenter(Id),
    Cluster(Id),
    Vm(Id),
}

#[derive(Debug, Clone)]
pub(super) struct Grant {
    pub role: String,
    pub target: Target,
}

/// What a filtered user can see, computed once from their permissions.
#[derive(Debug, Default)]
pub(super) struct Scope {
    system: bool,
    vms: HashSet<Id>,
    /// Clusters whose VMs are all covered (a permission on the cluster or its data center).
    covering_clusters: HashSet<Id>,
    clusters: HashSet<Id>,
    data_centers: HashSet<Id>,
}

#[derive(Debug)]
pub(super) struct User {
    /// `name@profile`, as typed at login.
    pub login: String,
    pub password: String,
    pub id: Id,
    /// Own permissions and those of the user's groups.
    pub grants: Vec<Grant>,
    pub admin: bool,
    pub scope: Scope,
}

impl User {
    /// Whether a filtered view of this user includes the object.
    pub(super) fn sees(&self, inventory: &Inventory, entity: &Entity) -> bool {
        let s = &self.scope;
        if s.system {
            return true;
        }
        match entity.kind {
            Kind::Vm => {
                s.vms.contains(&entity.id)
                    || entity
                        .reference("cluster")
                        .is_some_and(|c| s.covering_clusters.contains(&c))
            }
            // A VM's derived objects: visible with their VM, whose id their own leads back to.
            Kind::Disk | Kind::Nic | Kind::DiskAttachment | Kind::Snapshot => inventory
                .get(Kind::Vm, super::model::derived_id(entity.kind, entity.id))
                .is_some_and(|vm| self.sees(inventory, &vm)),
            Kind::Cluster => s.clusters.contains(&entity.id),
            Kind::DataCenter => s.data_centers.contains(&entity.id),
            Kind::Template => entity.id == BLANK_ID,
            // [inferred] A user sees their own user entity (the engine's user portal reads it).
            Kind::User => entity.id == self.id,
            _ => false,
        }
    }

    /// Whether the user's permissions on the VM (or what contains it) grant `permit`.
    pub(super) fn may(
        &self,
        inventory: &Inventory,
        permit: Permit,
        cluster: Option<Id>,
        vm: Option<Id>,
    ) -> bool {
        let data_center = cluster
            .and_then(|c| inventory.get(Kind::Cluster, c))
            .and_then(|c| c.reference("data_center"));
        self.grants.iter().any(|grant| {
            role_grants(&grant.role, permit)
                && match grant.target {
                    Target::System => true,
                    Target::DataCenter(id) => Some(id) == data_center,
                    Target::Cluster(id) => Some(id) == cluster,
                    Target::Vm(id) => Some(id) == vm,
                }
        })
    }
}

/// A users file (`--users FILE`): users and groups with their permissions.
///
/// ```toml
/// [[user]]
/// name = "dave@internal"
/// password = "dave"
/// groups = ["ops"]
/// grants = [{ role = "UserRole", on = "vm:vm-00007" }]
///
/// [[group]]
/// name = "ops"
/// grants = [{ role = "PowerUserRole", on = "cluster:cluster-1" }]
/// ```
///
/// `on` is `system`, `datacenter:NAME`, `cluster:NAME` or `vm:NAME`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UsersFile {
    #[serde(default)]
    user: Vec<FileUser>,
    #[serde(default)]
    group: Vec<FileGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    name: String,
    password: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    grants: Vec<FileGrant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    name: String,
    #[serde(default)]
    grants: Vec<FileGrant>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGrant {
    role: String,
    on: String,
}

impl UsersFile {
    pub(super) fn load(path: &Path) -> Result<UsersFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// admin (SuperUser on the system), alice and bob (UserRole on every fifth VM, disjoint sets),
    /// carol (in group `ops`, which has PowerUserRole on cluster-1); names carry the inventory's
    /// `prefix`.
    pub(super) fn built_in(inventory: &Inventory, prefix: &str) -> UsersFile {
        let vm_prefix = format!("{prefix}vm-");
        let vm_grants = |remainder: usize| {
            inventory
                .all(Kind::Vm)
                .filter(|vm| {
                    vm.name
                        .strip_prefix(vm_prefix.as_str())
                        .and_then(|n| n.parse::<usize>().ok())
                        .is_some_and(|n| n % 5 == remainder)
                })
                .map(|vm| FileGrant {
                    role: "UserRole".into(),
                    on: format!("vm:{}", vm.name),
                })
                .collect()
        };
        let user = |name: &str, groups: Vec<String>, grants: Vec<FileGrant>| FileUser {
            name: format!("{name}@internal"),
            password: name.into(),
            groups,
            grants,
        };
        UsersFile {
            user: vec![
                user(
                    "admin",
                    vec![],
                    vec![FileGrant {
                        role: "SuperUser".into(),
                        on: "system".into(),
                    }],
                ),
                user("alice", vec![], vm_grants(1)),
                user("bob", vec![], vm_grants(2)),
                user("carol", vec!["ops".into()], vec![]),
            ],
            group: vec![FileGroup {
                name: "ops".into(),
                grants: vec![FileGrant {
                    role: "PowerUserRole".into(),
                    on: format!("cluster:{prefix}cluster-1"),
                }],
            }],
        }
    }

    /// Resolves names against the inventory, adds User, Group and Permission objects to it and
    /// returns the users. Every unknown role, object or group is reported.
    pub(super) fn install(self, inventory: &mut Inventory, rng: &mut Rng) -> Result<Vec<User>, String> {
        let mut problems = Vec::new();
        let mut groups = Vec::new();
        let names = Names::of(inventory);
        for group in &self.group {
            let entity = Entity::new(Kind::Group, rng.uuid(), group.name.clone());
            let grants = resolve(
                &names,
                &group.grants,
                &mut problems,
                &format!("group {}", group.name),
            );
            groups.push((group.name.clone(), entity.id, grants));
            inventory.insert(with_namespace(entity));
        }
        let mut users = Vec::new();
        for file_user in self.user {
            let Some((principal, profile)) = file_user.name.split_once('@') else {
                problems.push(format!("user {}: the name must be user@profile", file_user.name));
                continue;
            };
            let mut entity = Entity::new(Kind::User, rng.uuid(), principal);
            entity.props = vec![
                ("principal", Prop::Text(principal.into())),
                ("user_name", Prop::Text(format!("{principal}@{profile}-authz"))),
            ];
            let id = entity.id;
            inventory.insert(with_namespace(entity));
            let mut grants = resolve(
                &names,
                &file_user.grants,
                &mut problems,
                &format!("user {}", file_user.name),
            );
            for grant in &grants {
                add_permission(inventory, rng, grant, ("user", Kind::User, id));
            }
            for name in &file_user.groups {
                match groups.iter().find(|(n, ..)| n == name) {
                    Some((_, _, group_grants)) => grants.extend(group_grants.iter().cloned()),
                    None => problems.push(format!("user {}: unknown group `{name}`", file_user.name)),
                }
            }
            let admin = grants.iter().any(|g| role_is_admin(&g.role));
            let scope = scope(inventory, &grants);
            users.push(User {
                login: file_user.name,
                password: file_user.password,
                id,
                grants,
                admin,
                scope,
            });
        }
        for (_, group_id, grants) in &groups {
            for grant in grants {
                add_permission(inventory, rng, grant, ("group", Kind::Group, *group_id));
            }
        }
        if problems.is_empty() {
            Ok(users)
        } else {
            Err(problems.join("; "))
        }
    }
}

fn with_namespace(mut entity: Entity) -> Entity {
    entity.props.push(("namespace", Prop::Static("*")));
    entity
}

/// The objects a grant may name, by kind and name. Built once: looking each name up with a scan
/// of the inventory made the built-in users (a grant on every fifth VM) quadratic in `--vms`.
struct Names(HashMap<(Kind, String), Id>);

impl Names {
    fn of(inventory: &Inventory) -> Names {
        let mut names = HashMap::new();
        for kind in [Kind::DataCenter, Kind::Cluster, Kind::Vm] {
            for entity in inventory.all(kind) {
                // The first in id order, as `Inventory::by_name` finds it.
                names.entry((kind, entity.name.clone())).or_insert(entity.id);
            }
        }
        Names(names)
    }

    fn get(&self, kind: Kind, name: &str) -> Option<Id> {
        self.0.get(&(kind, name.to_owned())).copied()
    }
}

fn resolve(names: &Names, grants: &[FileGrant], problems: &mut Vec<String>, owner: &str) -> Vec<Grant> {
    let mut resolved = Vec::new();
    for grant in grants {
        if !ROLES.iter().any(|(name, ..)| *name == grant.role) {
            let known: Vec<&str> = ROLES.iter().map(|(name, ..)| *name).collect();
            problems.push(format!(
                "{owner}: unknown role `{}` (known: {})",
                grant.role,
                known.join(", ")
            ));
            continue;
        }
        let target = match grant.on.split_once(':') {
            None if grant.on == "system" => Some(Target::System),
            Some(("datacenter", name)) => names.get(Kind::DataCenter, name).map(Target::DataCenter),
            Some(("cluster", name)) => names.get(Kind::Cluster, name).map(Target::Cluster),
            Some(("vm", name)) => names.get(Kind::Vm, name).map(Target::Vm),
            _ => None,
        };
        match target {
            Some(target) => resolved.push(Grant {
                role: grant.role.clone(),
                target,
            }),
            None => problems.push(format!(
                "{owner}: `{}` names no object (system, datacenter:NAME, cluster:NAME or vm:NAME)",
                grant.on
            )),
        }
    }
    resolved
}

fn add_permission(inventory: &mut Inventory, rng: &mut Rng, grant: &Grant, holder: (&'static str, Kind, Id)) {
    let Some(role) = inventory.by_name(Kind::Role, &grant.role) else {
        return;
    };
    let mut permission = Entity::new(Kind::Permission, rng.uuid(), "");
    permission.refs = vec![("role", Kind::Role, role.id), holder];
    match grant.target {
        Target::System => {}
        Target::DataCenter(id) => permission.refs.push(("data_center", Kind::DataCenter, id)),
        Target::Cluster(id) => permission.refs.push(("cluster", Kind::Cluster, id)),
        Target::Vm(id) => permission.refs.push(("vm", Kind::Vm, id)),
    }
    inventory.insert(permission);
}

fn scope(inventory: &Inventory, grants: &[Grant]) -> Scope {
    let mut s = Scope::default();
    let data_center_of = |cluster: Id| {
        inventory
            .get(Kind::Cluster, cluster)
            .and_then(|c| c.reference("data_center"))
    };
    for grant in grants {
        match grant.target {
            Target::System => s.system = true,
            Target::DataCenter(dc) => {
                s.data_centers.insert(dc);
                for cluster in inventory.all(Kind::Cluster) {
                    if cluster.reference("data_center") == Some(dc) {
                        s.covering_clusters.insert(cluster.id);
                        s.clusters.insert(cluster.id);
                    }
                }
            }
            Target::Cluster(cluster) => {
                s.covering_clusters.insert(cluster);
                s.clusters.insert(cluster);
                s.data_centers.extend(data_center_of(cluster));
            }
            Target::Vm(vm) => {
                s.vms.insert(vm);
                if let Some(cluster) = inventory.get(Kind::Vm, vm).and_then(|vm| vm.reference("cluster")) {
                    s.clusters.insert(cluster);
                    s.data_centers.extend(data_center_of(cluster));
                }
            }
        }
    }
    s
}
