//! Loading, deciding and explaining, on the shipped policies and on small directories.

use std::path::Path;
use std::sync::Arc;

use cedar_policy::{Entity, Request};
use http::Method;

use super::decide::context;
use super::entities::{ENTITIES_FILES, uid, user_entity};
use super::extension_values::ExtensionValues;
use super::uses::ContextKeys;
use super::*;
use crate::api::path::ApiPath;
use crate::config::{PolicyConfig, PolicyMode};
use crate::metrics::Metrics;

fn shipped() -> Policies {
    let mut policies = Policies::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap();
    // An auditor, who is not among the simulator's users.
    let auditors = Entity::new_no_attrs(uid("Gateway::Group", "auditors"), Default::default());
    let dave = user_entity("dave@internal", vec![auditors.uid()]);
    policies
        .users
        .insert("dave@internal".into(), vec![dave, auditors]);
    policies
}

fn facts<'a>(user: &'a str, method: &'a Method, path: &ApiPath) -> Facts<'a> {
    let headers = http::HeaderMap::new();
    Facts {
        user,
        manager: "east",
        method,
        params: ContextParams::of(&crate::api::params::EngineParams::new(path, &headers)),
        client_ip: IpAddr::from([10, 1, 2, 3]),
        time: 1_800_000_000,
    }
}

/// The decision and its policies for a request on `/ovirt-engine/api{path}`.
fn decide(policies: &Policies, user: &str, method: &str, path: &str, found: Found) -> (bool, Vec<String>) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let full = format!("/ovirt-engine/api{path}");
    let (path, query) = full
        .split_once('?')
        .map_or((full.as_str(), None), |(p, q)| (p, Some(q)));
    let path = ApiPath::parse("", path, query).unwrap();
    let mapped = mapping::map(&method, &path);
    let decision = policies.decide(&mapped, &facts(user, &method, &path), found);
    assert!(decision.errors.is_empty(), "{:?}", decision.errors);
    (decision.allowed, decision.policies)
}

fn in_cluster(name: &str) -> Found {
    Found {
        cluster: Some(name.into()),
        ..Found::default()
    }
}

/// Every action group against the shipped examples: who may do what, and which policy says so.
#[test]
fn shipped_decisions() {
    let policies = shipped();
    let none = Found::default;
    // (user, method, path, the resource's attributes, allowed, determining policies)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Found,
        bool,
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        // admins: everything but unknown paths; nobody removes storage domains.
        ("admin@internal", "GET", "/vms", none(), true, &["admins"]),
        ("admin@internal", "POST", "/vms", none(), true, &["admins"]),
        (
            "admin@internal",
            "POST",
            "/hosts/1/fence",
            none(),
            true,
            &["admins"],
        ),
        (
            "admin@internal",
            "POST",
            "/vms/1/start",
            none(),
            true,
            &["admins"],
        ),
        (
            "admin@internal",
            "DELETE",
            "/storagedomains/1",
            none(),
            false,
            &["nobody-removes-storage-domains"],
        ),
        ("admin@internal", "DELETE", "/disks/1", none(), true, &["admins"]),
        // Sub-resources are the entity acted on: detaching a storage domain is removing one
        // from its data center; removing a disk of a storage domain is no storage domain's.
        (
            "admin@internal",
            "DELETE",
            "/datacenters/1/storagedomains/2",
            none(),
            false,
            &["nobody-removes-storage-domains"],
        ),
        (
            "admin@internal",
            "DELETE",
            "/storagedomains/2/disks/3",
            none(),
            true,
            &["admins"],
        ),
        ("admin@internal", "GET", "/frobs", none(), false, &[]),
        ("admin@internal", "PATCH", "/vms/1", none(), false, &[]),
        // auditors: read only.
        ("dave@internal", "GET", "", none(), true, &["auditors-read"]),
        (
            "dave@internal",
            "GET",
            "/vms/1/nics/2",
            none(),
            true,
            &["auditors-read"],
        ),
        (
            "dave@internal",
            "GET",
            "/events?search=severity%3Derror",
            none(),
            true,
            &["auditors-read"],
        ),
        ("dave@internal", "POST", "/vms/1/start", none(), false, &[]),
        ("dave@internal", "PUT", "/vms/1", none(), false, &[]),
        (
            "dave@internal",
            "POST",
            "/reloadconfigurations",
            none(),
            false,
            &[],
        ),
        // ops: read; operate the VMs of cluster-1 only; no writes.
        ("carol@internal", "GET", "/hosts", none(), true, &["ops-read"]),
        (
            "carol@internal",
            "POST",
            "/vms/1/start",
            in_cluster("cluster-1"),
            true,
            &["ops-operate-cluster-1"],
        ),
        (
            "carol@internal",
            "POST",
            "/vms/1/migrate",
            in_cluster("cluster-1"),
            true,
            &["ops-operate-cluster-1"],
        ),
        (
            "carol@internal",
            "POST",
            "/vms/1/start",
            in_cluster("cluster-0"),
            false,
            &[],
        ),
        ("carol@internal", "POST", "/vms/1/start", none(), false, &[]),
        (
            "carol@internal",
            "POST",
            "/hosts/1/deactivate",
            none(),
            false,
            &[],
        ),
        (
            "carol@internal",
            "DELETE",
            "/vms/1",
            in_cluster("cluster-1"),
            false,
            &[],
        ),
        (
            "carol@internal",
            "POST",
            "/vms/1/clone",
            in_cluster("cluster-1"),
            false,
            &[],
        ),
        // users: the root and VMs; operate VMs; nothing else.
        ("alice@internal", "GET", "", none(), true, &["users-read-vms"]),
        ("alice@internal", "GET", "/vms", none(), true, &["users-read-vms"]),
        (
            "alice@internal",
            "GET",
            "/vms/1/disk_attachments",
            none(),
            true,
            &["users-read-vms"],
        ),
        (
            "alice@internal",
            "POST",
            "/vms/1/shutdown",
            none(),
            true,
            &["users-operate-vms"],
        ),
        (
            "bob@internal",
            "POST",
            "/vms/1/nics/2/deactivate",
            none(),
            true,
            &["users-operate-vms"],
        ),
        ("alice@internal", "GET", "/hosts", none(), false, &[]),
        ("alice@internal", "POST", "/vms", none(), false, &[]),
        ("alice@internal", "DELETE", "/vms/1", none(), false, &[]),
        (
            "alice@internal",
            "POST",
            "/hosts/1/deactivate",
            none(),
            false,
            &[],
        ),
        // Nobody else: default deny.
        ("zed@internal", "GET", "", none(), false, &[]),
    ];
    for (user, method, path, found, allowed, determined) in cases {
        let (decision, ids) = decide(&policies, user, method, path, found);
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(
            (decision, ids.as_slice()),
            (allowed, determined),
            "{user} {method} {path}"
        );
    }
}

/// Requests are built without validation per decision: every kind conforms to the schema.
#[test]
fn requests_conform_to_the_schema() {
    for (method, path) in [
        (Method::GET, "/ovirt-engine/api"),
        (
            Method::GET,
            "/ovirt-engine/api/vms?search=a&follow=nics&filter=true",
        ),
        (Method::POST, "/ovirt-engine/api/vms/1/nics/2/deactivate"),
        (Method::PATCH, "/ovirt-engine/webadmin"),
    ] {
        let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
        let path = ApiPath::parse("", path, query).unwrap();
        let mapped = mapping::map(&method, &path);
        let facts = facts("alice@internal", &method, &path);
        let request = Request::new(
            uid("Gateway::User", facts.user),
            uid("Action", &mapped.action),
            uid(&format!("Api::{}", mapped.kind), &mapped.id),
            context(&mapped, &facts, ContextKeys::ALL, &ExtensionValues::default()).unwrap(),
            Some(model::schema()),
        );
        assert!(request.is_ok(), "{method} {path:?}: {request:?}");
    }
}

/// Context attributes reach policies: method, manager, sub-collections, verb, search,
/// filter (header or parameter), client address and time.
#[test]
fn context_reaches_policies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("context.cedar"),
        r#"permit (principal, action, resource)
           when {
             context.method == "GET" && context.manager == "east" &&
             context.subcollections.contains("nics") && context.verb == "" &&
             context.search == "name=a b" && context.filter && !context.all_content &&
             context.client_ip.isInRange(ip("10.0.0.0/8")) &&
             context.time > datetime("2026-01-01")
           };"#,
    )
    .unwrap();
    let policies = Policies::load(dir.path()).unwrap();
    let query = "search=name%3Da+b&filter=true";
    let allowed = |path: &str| decide(&policies, "u@p", "GET", path, Found::default()).0;
    assert!(allowed(&format!("/vms/1/nics?{query}")));
    assert!(!allowed(&format!("/vms/1/disks?{query}")));
    assert!(!allowed("/vms/1/nics?search=name%3Da+b"));
    // filter as the engine reads it: any true spelling, the query over the matrix.
    assert!(allowed("/vms/1/nics;filter=yes?search=name%3Da+b"));
    assert!(allowed("/vms/1/nics?search=name%3Da+b&filter"));
    assert!(!allowed("/vms/1/nics;filter=true?search=name%3Da+b&filter=0"));
}

/// Kept extension values follow the clock and the client; the addresses kept are bounded.
#[test]
fn extension_values_are_current() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.cedar"),
        r#"permit (principal, action, resource)
           when { context.time >= datetime("2027-01-15T08:00:00Z") && context.client_ip == ip("10.1.2.3") };"#,
    )
    .unwrap();
    let policies = Policies::load(dir.path()).unwrap();
    let method = Method::GET;
    let path = ApiPath::parse("", "/ovirt-engine/api/vms", None).unwrap();
    let mapped = mapping::map(&method, &path);
    let allowed = |time: u64, client: [u8; 4]| {
        let facts = Facts {
            time,
            client_ip: IpAddr::from(client),
            ..facts("u@p", &method, &path)
        };
        policies.decide(&mapped, &facts, Found::default()).allowed
    };
    assert!(!allowed(1_799_999_999, [10, 1, 2, 3]));
    assert!(allowed(1_800_000_000, [10, 1, 2, 3]));
    assert!(!allowed(1_800_000_000, [10, 1, 2, 4]));
    assert!(!allowed(1_799_999_999, [10, 1, 2, 3]));
}

/// Memberships decide the same whether the request carries only its own entities (with
/// their ancestors) or, for a condition about other entities, the whole hierarchy.
/// entities.json and entities.toml say the same.
#[test]
fn memberships_in_scopes_and_conditions() {
    let json = r#"[
          { "uid": { "type": "Gateway::Group", "id": "staff" } },
          { "uid": { "type": "Gateway::Group", "id": "ops" }, "parents": [{ "type": "Gateway::Group", "id": "staff" }] },
          { "uid": { "type": "Gateway::User", "id": "carol@internal" }, "parents": [{ "type": "Gateway::Group", "id": "ops" }] }
        ]"#;
    let toml = "[groups]\nstaff = []\nops = [\"staff\"]\n\n[users]\n\"carol@internal\" = [\"ops\"]\n";
    for (file, text) in ENTITIES_FILES.into_iter().zip([json, toml]) {
        memberships(file, text);
    }
}

fn memberships(file: &str, entities: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(file), entities).unwrap();
    std::fs::write(
        dir.path().join("m.cedar"),
        r#"permit (principal in Gateway::Group::"staff", action == Action::"get", resource is Api::Vm in Api::Manager::"east");
           permit (principal, action, resource is Api::Host) when { principal in Gateway::Group::"staff" && action in Action::"read" };
           permit (principal, action == Action::"list", resource) when { Gateway::Group::"ops" in Gateway::Group::"staff" };
           permit (principal, action == Action::"start", resource) when { Api::Collection::"vms" in Api::Manager::"east" };
           forbid (principal, action == Action::"stop", resource) when { !(Api::Collection::"vms" in Api::Manager::"east") };"#,
    )
    .unwrap();
    let policies = Policies::load(dir.path()).unwrap();
    let decide =
        |user: &str, method: &str, path: &str| decide(&policies, user, method, path, Found::default());
    assert_eq!(
        decide("carol@internal", "GET", "/vms/1"),
        (true, vec!["m.cedar:1".to_owned()])
    );
    assert_eq!(
        decide("carol@internal", "GET", "/hosts/1"),
        (true, vec!["m.cedar:2".to_owned()])
    );
    assert_eq!(
        decide("carol@internal", "GET", "/vms"),
        (true, vec!["m.cedar:3".to_owned()])
    );
    assert_eq!(
        decide("carol@internal", "POST", "/vms/1/start"),
        (true, vec!["m.cedar:4".to_owned()])
    );
    assert!(!decide("carol@internal", "POST", "/vms/1/stop").0);
    assert!(!decide("dave@internal", "GET", "/vms/1").0);
    assert!(!decide("dave@internal", "GET", "/hosts/1").0);
}

/// Conditions that read no entity's data are decided without entities; a forbid that reads
/// one through an expression still gets them, so it applies rather than erring (an erring
/// forbid would not apply).
#[test]
fn entities_given_for_what_conditions_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("e.cedar"),
        r#"permit (principal, action, resource) unless { resource is Api::Unknown || principal == Gateway::User::"eve@internal" };
           forbid (principal, action == Action::"start", resource is Api::Vm) when { (if context.filter then resource else resource) in Api::Manager::"east" };
           forbid (principal, action == Action::"stop", resource is Api::Vm) when { (if context.filter then resource else resource) has cluster };"#,
    )
    .unwrap();
    let policies = Policies::load(dir.path()).unwrap();
    let decide = |user: &str, method: &str, path: &str, found| decide(&policies, user, method, path, found);
    assert_eq!(
        decide("carol@internal", "GET", "/vms/1", Found::default()),
        (true, vec!["e.cedar:1".to_owned()])
    );
    assert!(!decide("eve@internal", "GET", "/vms/1", Found::default()).0);
    assert!(!decide("carol@internal", "GET", "/unknown", Found::default()).0);
    // The resource is in its Manager.
    assert_eq!(
        decide("carol@internal", "POST", "/vms/1/start", Found::default()),
        (false, vec!["e.cedar:2".to_owned()])
    );
    assert_eq!(
        decide("carol@internal", "POST", "/vms/1/stop", in_cluster("c")),
        (false, vec!["e.cedar:3".to_owned()])
    );
}

fn problems(files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    Policies::load(dir.path())
        .err()
        .unwrap()
        .iter()
        .map(|p| {
            let file = p.file.file_name().unwrap().to_string_lossy().into_owned();
            format!("{file}:{}: {}", p.line.unwrap_or(0), p.message)
        })
        .collect()
}

/// Syntax and schema errors name the file and the line.
#[test]
fn errors_name_file_and_line() {
    let syntax = problems(&[(
        "a.cedar",
        "// one\npermit (principal, action, resource);\npermit (principal action, resource);\n",
    )]);
    assert_eq!(syntax.len(), 1, "{syntax:?}");
    assert!(syntax[0].starts_with("a.cedar:3: "), "{syntax:?}");
    let schema = problems(&[(
        "b.cedar",
        "permit (principal, action, resource);\n\npermit (principal, action, resource is Api::Vm)\n  when { resource.colour == \"red\" };\n",
    )]);
    assert_eq!(schema.len(), 1, "{schema:?}");
    assert!(schema[0].starts_with("b.cedar:4: "), "{schema:?}");
    assert!(schema[0].contains("colour"), "{schema:?}");
    let unknown_type = problems(&[(
        "c.cedar",
        "permit (principal in Group::\"x\", action, resource);\n",
    )]);
    assert!(unknown_type[0].starts_with("c.cedar:1: "), "{unknown_type:?}");
}

/// Policy ids are unique across files; entities.json is checked against the schema.
#[test]
fn duplicate_ids_and_bad_entities() {
    let duplicate = problems(&[
        ("a.cedar", "@id(\"x\")\npermit (principal, action, resource);\n"),
        ("b.cedar", "\n@id(\"x\")\npermit (principal, action, resource);\n"),
    ]);
    assert_eq!(duplicate.len(), 1, "{duplicate:?}");
    assert!(
        duplicate[0].starts_with("b.cedar:2: policy id `x` is already used at "),
        "{duplicate:?}"
    );
    let entities = problems(&[
        ("a.cedar", "permit (principal, action, resource);\n"),
        (
            "entities.json",
            r#"[{"uid": {"type": "Gateway::User", "id": "a@b"}, "parents": [{"type": "Gateway::Team", "id": "t"}]}]"#,
        ),
    ]);
    assert_eq!(entities.len(), 1, "{entities:?}");
    assert!(entities[0].starts_with("entities.json:0: "), "{entities:?}");
    let json = problems(&[("entities.json", "[\n{]")]);
    assert!(json[0].starts_with("entities.json:2: "), "{json:?}");
    let toml = problems(&[(
        "entities.toml",
        "[groups]\nops = []\n\n[users]\n\"a@b\" = [\"ops\"\n",
    )]);
    assert!(toml[0].starts_with("entities.toml:5: "), "{toml:?}");
    assert_eq!(
        problems(&[(
            "entities.toml",
            "[groups]\nops = []\n[users]\n\"a@b\" = [\"opz\"]\n"
        )]),
        ["entities.toml:0: users.\"a@b\": group `opz` is not declared under [groups]"]
    );
    let unknown = problems(&[("entities.toml", "[teams]\nops = []\n")]);
    assert!(
        unknown[0].starts_with("entities.toml:1: unknown field `teams`"),
        "{unknown:?}"
    );
    assert_eq!(
        problems(&[("entities.json", "[]"), ("entities.toml", "")]),
        ["entities.toml:0: groups come from one file: keep entities.json or this one"]
    );
}

/// The watcher reloads when a file is added, changed or removed, and only then.
#[test]
fn changes_are_noticed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.cedar"),
        "permit (principal, action, resource);\n",
    )
    .unwrap();
    let config = PolicyConfig {
        dir: dir.path().to_owned(),
        mode: PolicyMode::Enforce,
        watch_interval: std::time::Duration::from_secs(1),
        attribute_ttl: std::time::Duration::from_secs(1),
    };
    let enforcer = Enforcer::load(&config, Arc::new(Metrics::new())).unwrap();
    assert!(!enforcer.reload_if_changed());
    std::fs::write(
        dir.path().join("b.cedar"),
        "forbid (principal, action, resource);\n",
    )
    .unwrap();
    assert!(enforcer.reload_if_changed());
    assert_eq!(enforcer.current().len(), 2);
    assert!(!enforcer.reload_if_changed());
    std::fs::write(dir.path().join("notes.txt"), "not a policy").unwrap();
    assert!(!enforcer.reload_if_changed());
    std::fs::write(
        dir.path().join("b.cedar"),
        "forbid (principal, action, resource) oops",
    )
    .unwrap();
    assert!(enforcer.reload_if_changed());
    assert_eq!(
        enforcer.current().len(),
        2,
        "an invalid change keeps the previous policies"
    );
    std::fs::remove_file(dir.path().join("b.cedar")).unwrap();
    assert!(enforcer.reload_if_changed());
    assert_eq!(enforcer.current().len(), 1);
}

/// The shipped policies and entities validate against the schema.
#[test]
fn shipped_policies_validate() {
    let policies = shipped();
    assert_eq!(policies.len(), 7);
    assert!(policies.warnings.is_empty(), "{:?}", policies.warnings);
    assert!(
        policies
            .text("admins")
            .unwrap()
            .contains("Gateway::Group::\"admins\"")
    );
}
