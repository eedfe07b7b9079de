//! Every request as Cedar sees it: (action, resource, sub-collections, verb), from the one parse of
//! its path (`ApiPath`). The table with an example of each kind is in docs/policies.md.
//!
//! - `/ovirt-engine/api` → `get` on `Api::Root`.
//! - `/vms` → `list` (GET, HEAD) or `add` (POST) on `Api::Collection::"vms"`.
//! - `/vms/ID` → `get`, `update` (PUT), `remove` (DELETE) on `Api::Vm::"ID"`.
//! - `/vms/ID/nics[/NID...]` → the same actions on `Api::Vm::"ID"`, sub-collections `["nics"]`
//!   (a POST to a sub-collection is `add`).
//! - `/datacenters/DC/storagedomains/SD` (an entity of a schema type below another,
//!   `api::SUB_ENTITIES`) → the action on `Api::StorageDomain::"SD"`, whose parents are
//!   `Api::DataCenter::"DC"` (and what that one is below); sub-collections below it are its own.
//! - a POST whose last segment is an action verb of the API (`/vms/ID/start`,
//!   `/vms/ID/nics/NID/activate`, `/events/undelete`) → that verb on the entity (or on the
//!   collection, or on the root).
//! - anything else (another collection, a path outside the API) → the method's action on
//!   `Api::Unknown`, which no shipped policy permits; a method the API does not use (PATCH) is
//!   `other`.

use http::Method;

use crate::api;
use crate::api::path::{ApiPath, EngineArea};

/// What a request does to what, in the schema's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// `list`, `get`, `add`, `update`, `remove` or a verb.
    pub action: String,
    /// The resource's type in the `Api` namespace.
    pub kind: Kind,
    /// The entity's id, the collection's name, `""` for the root, the engine path for `Unknown`.
    pub id: String,
    /// The top-level collection of an entity's type, `None` for the root and `Unknown`.
    pub collection: Option<String>,
    /// The entities the resource was reached below, outermost first: (type, id), e.g.
    /// `("DataCenter", "DC")` for `/datacenters/DC/storagedomains/SD`.
    pub parents: Vec<(&'static str, String)>,
    /// Sub-collections below the entity, in path order (`["nics"]`).
    pub subcollections: Vec<String>,
    /// The action verb of the request, `""` when it is not one.
    pub verb: String,
}

/// What a request acts on, as the schema types it (`Api::...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The API root.
    Root,
    /// A top-level collection, which [`Mapped::id`] names.
    Collection,
    /// A path the policies do not know.
    Unknown,
    /// An entity of a schema type such as `Vm`.
    Entity(&'static str),
}

impl Kind {
    /// The type's name in the `Api` namespace.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Root => "Root",
            Kind::Collection => "Collection",
            Kind::Unknown => "Unknown",
            Kind::Entity(kind) => kind,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Mapped {
    fn unknown(method: &Method, path: &ApiPath) -> Mapped {
        Mapped {
            action: crud(method, false).unwrap_or("other").to_owned(),
            kind: Kind::Unknown,
            id: path.engine_path.clone(),
            collection: None,
            parents: Vec::new(),
            subcollections: Vec::new(),
            verb: String::new(),
        }
    }
}

/// The CRUD action of a method on a collection (`list`, `add`) or on anything else.
fn crud(method: &Method, collection: bool) -> Option<&'static str> {
    Some(match *method {
        Method::GET | Method::HEAD | Method::OPTIONS if collection => "list",
        Method::GET | Method::HEAD | Method::OPTIONS => "get",
        Method::POST => "add",
        Method::PUT => "update",
        Method::DELETE => "remove",
        _ => return None,
    })
}

pub fn map(method: &Method, path: &ApiPath) -> Mapped {
    let EngineArea::Api(api) = &path.area else {
        return Mapped::unknown(method, path);
    };
    let Some(action) = crud(method, false) else {
        return Mapped::unknown(method, path);
    };
    let names: Vec<&str> = api.segments.iter().map(|s| s.name.as_str()).collect();
    // A POST to .../VERB is that action; what comes before it is what it acts on.
    let (names, verb) = match names.split_last() {
        Some((last, before)) if *method == Method::POST && api::is_verb(last) => (before, (*last).to_owned()),
        _ => (names.as_slice(), String::new()),
    };
    let action = if verb.is_empty() {
        action.to_owned()
    } else {
        verb.clone()
    };
    let mapped = |kind, id: &str, collection: Option<&str>, subcollections: Vec<String>| Mapped {
        action: action.clone(),
        kind,
        id: id.to_owned(),
        collection: collection.map(str::to_owned),
        parents: Vec::new(),
        subcollections,
        verb: verb.clone(),
    };
    match names {
        [] => mapped(Kind::Root, "", None, Vec::new()),
        [collection, rest @ ..] => {
            let Some(kind) = api::entity_type(collection) else {
                return Mapped::unknown(method, path);
            };
            match rest {
                [] => {
                    let mut m = mapped(Kind::Collection, collection, None, Vec::new());
                    if verb.is_empty() {
                        m.action = crud(method, true).unwrap_or("get").to_owned();
                    }
                    m
                }
                [id, below @ ..] => {
                    // Below the entity, names and ids alternate: nics/NID/statistics. A pair
                    // whose entities have a schema type of their own is the entity acted on,
                    // below the one before it.
                    let (mut kind, mut id, mut collection) = (kind, api::canonical_id(id), *collection);
                    let mut parents = Vec::new();
                    let mut rest = below;
                    while let [segment, child, more @ ..] = rest {
                        let Some(child_kind) = api::sub_entity(kind, segment) else {
                            break;
                        };
                        parents.push((kind, std::mem::replace(&mut id, api::canonical_id(child))));
                        (kind, collection, rest) = (child_kind, *segment, more);
                    }
                    let subcollections = rest.iter().step_by(2).map(|s| (*s).to_owned()).collect();
                    let mut m = mapped(Kind::Entity(kind), &id, Some(collection), subcollections);
                    m.parents = parents;
                    m
                }
            }
        }
    }
}

/// A read that `follow` makes: the link path as written and what it reaches, as a `get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowedRead {
    pub link: String,
    pub mapped: Mapped,
}

/// A `follow` path naming a link the API model does not have where it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLink {
    pub link: String,
    /// The model type whose links were searched.
    pub owner: String,
}

/// What each `follow` link path of a request reaches, as reads to authorize (docs/policies.md,
/// "Follow"): an entity of a schema type reached by a link is `get` on that type, with the id
/// `""` (not known before the answer), below the entity it was reached from when the API model
/// nests it there (`SUB_ENTITIES`); anything else is `get` on the nearest schema-typed entity
/// with the link as a sub-collection (`disk_attachments` is the sub-collection `diskattachments`).
/// Links are looked up in the API model (src/api/model.rs), never guessed.
pub fn followed(mapped: &Mapped, follow: &[Vec<String>]) -> Result<Vec<FollowedRead>, UnknownLink> {
    use crate::api::model::{LINKS, link, model_type, schema_type};
    if follow.is_empty() {
        return Ok(Vec::new());
    }
    let unknown = |link: &[String], owner: &str| UnknownLink {
        link: link.join("."),
        owner: owner.to_owned(),
    };
    // What the request's answer is: a listing of a collection's entities, or an entity, or what
    // its sub-collections lead to.
    let mut start = match mapped.kind {
        Kind::Collection => Mapped {
            kind: Kind::Entity(api::entity_type(&mapped.id).ok_or_else(|| unknown(&follow[0], &mapped.id))?),
            id: String::new(),
            collection: Some(mapped.id.clone()),
            parents: Vec::new(),
            subcollections: Vec::new(),
            ..mapped.clone()
        },
        Kind::Root | Kind::Unknown => return Err(unknown(&follow[0], mapped.kind.as_str())),
        Kind::Entity(_) => mapped.clone(),
    };
    start.action = "get".to_owned();
    start.verb = String::new();
    let mut start_type: &str = model_type(start.kind.as_str());
    for segment in &mapped.subcollections {
        start_type = LINKS
            .iter()
            .find(|(owner, name, _)| *owner == start_type && name.replace('_', "") == *segment)
            .map(|(_, _, target)| *target)
            .ok_or_else(|| unknown(&follow[0], start_type))?;
    }
    let mut reads: Vec<FollowedRead> = Vec::new();
    for path in follow {
        let mut owner = start.clone();
        let mut current = start_type;
        for name in path {
            let target = link(current, name).ok_or_else(|| unknown(path, current))?;
            let segment = name.replace('_', "");
            match schema_type(target) {
                Some(kind) => {
                    let nested = owner.subcollections.is_empty()
                        && api::sub_entity(owner.kind.as_str(), &segment) == Some(kind);
                    let parents = if nested {
                        let mut parents = owner.parents.clone();
                        parents.push((owner.kind.as_str(), owner.id.clone()));
                        parents
                    } else {
                        Vec::new()
                    };
                    owner = Mapped {
                        kind: Kind::Entity(kind),
                        id: String::new(),
                        collection: api::collection_of(kind).map(str::to_owned),
                        parents,
                        subcollections: Vec::new(),
                        ..owner
                    };
                }
                None => owner.subcollections.push(segment),
            }
            let read = FollowedRead {
                link: path.join("."),
                mapped: owner.clone(),
            };
            if !reads.iter().any(|r| r.mapped == read.mapped) {
                reads.push(read);
            }
            current = target;
        }
    }
    Ok(reads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(method: Method, path: &str, follow: &[&str]) -> Result<Vec<String>, UnknownLink> {
        let mapped = map_path(method, path);
        let follow: Vec<Vec<String>> = follow
            .iter()
            .map(|f| f.split('.').map(str::to_owned).collect())
            .collect();
        Ok(followed(&mapped, &follow)?
            .iter()
            .map(|r| format!("{}: {}", r.link, summary(&r.mapped)))
            .collect())
    }

    /// Each followed link is a read of what it reaches, typed by the API model.
    #[test]
    fn followed_links_are_reads_of_what_they_reach() {
        assert_eq!(
            reads(
                Method::GET,
                "/ovirt-engine/api/vms/1",
                &["disk_attachments.disk", "nics"]
            )
            .unwrap(),
            [
                "disk_attachments.disk: get Vm::1 [\"diskattachments\"] vms",
                "disk_attachments.disk: get Disk:: [] disks",
                "nics: get Vm::1 [\"nics\"] vms",
            ]
        );
        assert_eq!(
            reads(Method::GET, "/ovirt-engine/api/vms", &["tags"]).unwrap(),
            ["tags: get Tag:: [] tags in Vm::"]
        );
        assert_eq!(
            reads(Method::GET, "/ovirt-engine/api/vms/1/nics/2", &["vnic_profile"]).unwrap(),
            ["vnic_profile: get VnicProfile:: [] vnicprofiles"]
        );
        assert_eq!(
            reads(
                Method::GET,
                "/ovirt-engine/api/datacenters/1/storagedomains/2",
                &["disks"]
            )
            .unwrap(),
            ["disks: get Disk:: [] disks in DataCenter::1 in StorageDomain::2"]
        );
        assert_eq!(
            reads(Method::GET, "/ovirt-engine/api/vms/1", &["frobs"]),
            Err(UnknownLink {
                link: "frobs".into(),
                owner: "Vm".into()
            })
        );
        assert!(reads(Method::GET, "/ovirt-engine/api", &["vms"]).is_err());
        assert_eq!(
            reads(Method::GET, "/ovirt-engine/api/vms/1", &[]).unwrap(),
            Vec::<String>::new()
        );
    }

    fn map_path(method: Method, path: &str) -> Mapped {
        api::path::validate(path).unwrap();
        let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
        map(&method, &ApiPath::parse("", path, query).unwrap())
    }

    fn summary(m: &Mapped) -> String {
        let mut text = format!(
            "{} {}::{} {:?} {}",
            m.action,
            m.kind,
            m.id,
            m.subcollections,
            m.collection.as_deref().unwrap_or("-")
        );
        for (kind, id) in &m.parents {
            text.push_str(&format!(" in {kind}::{id}"));
        }
        text
    }

    /// One case per kind of request, as in docs/policies.md.
    #[test]
    fn every_kind_of_request() {
        let cases = [
            (Method::GET, "/ovirt-engine/api", "get Root:: [] -"),
            (Method::HEAD, "/ovirt-engine/api/v4", "get Root:: [] -"),
            (Method::GET, "/ovirt-engine/api/vms", "list Collection::vms [] -"),
            (
                Method::GET,
                "/ovirt-engine/api/vms;max=1?search=name%3Da",
                "list Collection::vms [] -",
            ),
            (Method::POST, "/ovirt-engine/api/vms", "add Collection::vms [] -"),
            (Method::GET, "/ovirt-engine/api/vms/1", "get Vm::1 [] vms"),
            (Method::PUT, "/ovirt-engine/api/vms/1", "update Vm::1 [] vms"),
            (Method::DELETE, "/ovirt-engine/api/vms/1", "remove Vm::1 [] vms"),
            (
                Method::POST,
                "/ovirt-engine/api/vms/1/start",
                "start Vm::1 [] vms",
            ),
            (
                Method::GET,
                "/ovirt-engine/api/vms/1/start",
                "get Vm::1 [\"start\"] vms",
            ),
            (
                Method::GET,
                "/ovirt-engine/api/vms/1/nics",
                "get Vm::1 [\"nics\"] vms",
            ),
            (
                Method::POST,
                "/ovirt-engine/api/vms/1/nics",
                "add Vm::1 [\"nics\"] vms",
            ),
            (
                Method::GET,
                "/ovirt-engine/api/v4/vms/1/nics/2/statistics",
                "get Vm::1 [\"nics\", \"statistics\"] vms",
            ),
            (
                Method::DELETE,
                "/ovirt-engine/api/vms/1/nics/2",
                "remove Vm::1 [\"nics\"] vms",
            ),
            (
                Method::POST,
                "/ovirt-engine/api/vms/1/nics/2/deactivate",
                "deactivate Vm::1 [\"nics\"] vms",
            ),
            (
                Method::POST,
                "/ovirt-engine/api/hosts/1/deactivate",
                "deactivate Host::1 [] hosts",
            ),
            (
                Method::DELETE,
                "/ovirt-engine/api/storagedomains/1",
                "remove StorageDomain::1 [] storagedomains",
            ),
            (
                Method::DELETE,
                "/ovirt-engine/api/datacenters/1/storagedomains/2",
                "remove StorageDomain::2 [] storagedomains in DataCenter::1",
            ),
            (
                Method::DELETE,
                "/ovirt-engine/api/storagedomains/2/disks/3",
                "remove Disk::3 [] disks in StorageDomain::2",
            ),
            (
                Method::GET,
                "/ovirt-engine/api/storagedomains/2/vms/4/disks/5/permissions/6",
                "get Permission::6 [] permissions in StorageDomain::2 in Vm::4 in Disk::5",
            ),
            (
                Method::POST,
                "/ovirt-engine/api/storagedomains/2/disks/3/move",
                "move Disk::3 [] disks in StorageDomain::2",
            ),
            (
                Method::GET,
                "/ovirt-engine/api/datacenters/1/storagedomains",
                "get DataCenter::1 [\"storagedomains\"] datacenters",
            ),
            (
                Method::GET,
                "/ovirt-engine/api/vms/1/nics/2/statistics",
                "get Vm::1 [\"nics\", \"statistics\"] vms",
            ),
            (
                Method::POST,
                "/ovirt-engine/api/events/undelete",
                "undelete Collection::events [] -",
            ),
            (
                Method::POST,
                "/ovirt-engine/api/reloadconfigurations",
                "reloadconfigurations Root:: [] -",
            ),
            (
                Method::GET,
                "/ovirt-engine/api/options/MaxVmsInPool",
                "get SystemOption::MaxVmsInPool [] options",
            ),
            (
                Method::GET,
                "/ovirt-engine/api/frobs",
                "get Unknown::/ovirt-engine/api/frobs [] -",
            ),
            (
                Method::GET,
                "/ovirt-engine/api/VMS",
                "get Unknown::/ovirt-engine/api/VMS [] -",
            ),
            (
                Method::PATCH,
                "/ovirt-engine/api/vms/1",
                "other Unknown::/ovirt-engine/api/vms/1 [] -",
            ),
            (
                Method::GET,
                "/ovirt-engine/services/health",
                "get Unknown::/ovirt-engine/services/health [] -",
            ),
            (
                Method::POST,
                "/ovirt-engine/webadmin",
                "add Unknown::/ovirt-engine/webadmin [] -",
            ),
        ];
        for (method, path, expected) in cases {
            assert_eq!(
                summary(&map_path(method.clone(), path)),
                expected,
                "{method} {path}"
            );
        }
    }
}
