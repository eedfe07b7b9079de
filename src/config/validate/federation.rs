//! `[federation]`: the merged view's route, its members and its home (docs/federation.md, "The
//! merged view").

use super::managers::{host_problem, prefix_problem};
use super::values::Problems;
use crate::config::file::FileFederation;
use crate::config::{FederationConfig, ManagerConfig, Partial};

/// Members are named by a bit each in the id index.
const MAX_MEMBERS: usize = 64;

pub(super) fn validate_federation(
    problems: &mut Problems,
    federation: FileFederation,
    managers: &[ManagerConfig],
) -> Option<FederationConfig> {
    let before = problems.0.len();
    let host = federation.host.as_deref().map(str::to_ascii_lowercase);
    if let Some(message) = host.as_deref().and_then(host_problem) {
        problems.push("federation.host", message);
    }
    let prefix = federation.prefix.unwrap_or_default();
    if let Some(message) = prefix_problem(&prefix) {
        problems.push("federation.prefix", message);
    }
    if let Some(manager) = managers.iter().find(|m| m.host == host && m.prefix == prefix) {
        problems.push(
            "federation.prefix",
            format!(
                "manager `{}` is already published at the same host and prefix",
                manager.name
            ),
        );
    }
    if !(2..=MAX_MEMBERS).contains(&federation.members.len()) {
        problems.push("federation.members", format!("name 2 to {MAX_MEMBERS} managers"));
    }
    for (i, member) in federation.members.iter().enumerate() {
        if !managers.iter().any(|m| &m.name == member) {
            problems.push(
                format!("federation.members[{i}]"),
                format!("`{member}` is not the name of a [[manager]]"),
            );
        } else if federation.members[..i].contains(member) {
            problems.push(
                format!("federation.members[{i}]"),
                format!("`{member}` is named twice"),
            );
        }
    }
    let home = federation
        .home
        .or_else(|| federation.members.first().cloned())
        .unwrap_or_default();
    if !federation.members.contains(&home) {
        problems.push(
            "federation.home",
            format!("`{home}` is not one of federation.members"),
        );
    }
    let partial = match federation.partial.as_deref() {
        None | Some("strict") => Partial::Strict,
        Some("lenient") => Partial::Lenient,
        Some(other) => {
            problems.push(
                "federation.partial",
                format!("`{other}` is not one of `strict`, `lenient`"),
            );
            Partial::Strict
        }
    };
    (problems.0.len() == before).then_some(FederationConfig {
        host,
        prefix,
        members: federation.members,
        home,
        partial,
    })
}
