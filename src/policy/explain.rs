//! `ovirt-gateway policy explain`: how the gateway would decide one request, and why, from a
//! configuration file and without a Manager (resource attributes come from the command line).

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use http::Method;

use super::{Decision, Facts, Found, Mapped, Policies, mapping, model};
use crate::api::{self, path::ApiPath};
use crate::config::Config;
use crate::upstream::router::{Router, Target};

/// One request to explain.
pub(crate) struct Question {
    pub user: String,
    pub method: Method,
    /// The public path, with the query if any (`/east/ovirt-engine/api/vms?search=x`).
    pub path: String,
    /// The Host the client would send, for Managers routed by host.
    pub host: Option<String>,
    pub client_ip: IpAddr,
    /// The member a request to the merged view reaches (what `Federation-Manager` or the id
    /// index decides at run time).
    pub member: Option<String>,
    /// What a lookup at the Manager would find.
    pub found: Found,
}

pub(crate) struct Explanation {
    pub decision: Decision,
    text: String,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

pub(crate) fn explain(config: &Config, question: &Question) -> Result<Explanation, String> {
    let Some(policy) = &config.policy else {
        return Err("the configuration has no [policy] table: the gateway does not narrow access".into());
    };
    let policies = Policies::load(&policy.dir).map_err(|problems| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let (path, query) = question
        .path
        .split_once('?')
        .map_or((question.path.as_str(), None), |(p, q)| (p, Some(q)));
    api::path::validate(path).map_err(|e| format!("the gateway refuses this path with 400: {e}"))?;
    let router = Router::new(&config.managers, config.federation.as_ref());
    let found = router
        .find(question.host.as_deref(), path)
        .ok_or("no Manager is published at this host and path (404)")?;
    let manager = match (found.target, &question.member, &config.federation) {
        (Target::Manager(manager), None, _) => &config.managers[manager].name,
        (Target::Merged, Some(member), Some(federation)) => {
            federation.members.iter().find(|m| *m == member).ok_or_else(|| {
                format!(
                    "`{member}` is not a member of the merged view (members: {})",
                    federation.members.join(", ")
                )
            })?
        }
        (Target::Merged, None, Some(federation)) => {
            return Err(format!(
                "this path is the merged view ([federation]): a request there is decided for the member it reaches; name it with --member (one of {})",
                federation.members.join(", ")
            ));
        }
        _ => {
            return Err(
                "--member is for paths of the merged view ([federation]); this path reaches one Manager"
                    .into(),
            );
        }
    };
    let api_path = ApiPath::parse(found.prefix, found.engine_path, query)
        .ok_or("no Manager is published at this host and path (404)")?;
    let mapped = mapping::map(&question.method, &api_path);
    let facts = Facts {
        user: &question.user,
        manager,
        method: &question.method,
        params: super::ContextParams::of(&api::params::EngineParams::new(
            &api_path,
            &http::HeaderMap::new(),
        )),
        client_ip: question.client_ip,
        time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let decision = policies.decide(&mapped, &facts, question.found.clone());
    let text = describe(
        &policies,
        question,
        manager,
        &mapped,
        &decision,
        policy.mode.label(),
    );
    Ok(Explanation { decision, text })
}

fn describe(
    policies: &Policies,
    question: &Question,
    manager: &str,
    mapped: &Mapped,
    decision: &Decision,
    mode: &str,
) -> String {
    let mut out = String::new();
    let verdict = if decision.allowed { "ALLOW" } else { "DENY" };
    let _ = writeln!(out, "decision: {verdict} (mode {mode})");
    let _ = writeln!(
        out,
        "request:  {} {} {} at Manager `{manager}`",
        question.user, question.method, question.path
    );
    let groups = policies.groups(&question.user);
    let groups = if groups.is_empty() {
        "in no group".to_owned()
    } else {
        format!("in {}", groups.join(", "))
    };
    let _ = writeln!(out, "principal: Gateway::User::\"{}\" ({groups})", question.user);
    let action_groups: Vec<String> = model::action_entities(&mapped.action)
        .iter()
        .skip(1)
        .map(|g| g.uid().id().unescaped().to_owned())
        .collect();
    let _ = writeln!(
        out,
        "action:    Action::\"{}\"{}",
        mapped.action,
        if action_groups.is_empty() {
            String::new()
        } else {
            format!(" (in {})", action_groups.join(", "))
        }
    );
    let _ = writeln!(
        out,
        "resource:  Api::{}::\"{}\"{}{}",
        mapped.kind,
        mapped.id,
        mapped
            .collection
            .as_deref()
            .map_or_else(String::new, |c| format!(" in Api::Collection::\"{c}\"")),
        if mapped.subcollections.is_empty() {
            String::new()
        } else {
            format!(", sub-collections {:?}", mapped.subcollections)
        }
    );
    // The parent chain, innermost first: what the resource was reached below.
    for (kind, id) in mapped.parents.iter().rev() {
        let _ = writeln!(out, "  below:   Api::{kind}::\"{id}\"");
    }
    if !mapped.verb.is_empty() {
        let _ = writeln!(out, "verb:      {}", mapped.verb);
    }
    if decision.policies.is_empty() {
        let because = if decision.allowed {
            "allowed"
        } else {
            "no policy permits it (default deny)"
        };
        let _ = writeln!(out, "because:   {because}");
    } else {
        let what = if decision.allowed {
            "permitted by"
        } else {
            "forbidden by"
        };
        let _ = writeln!(out, "because:   {what}");
        for id in &decision.policies {
            let _ = writeln!(out, "  {id} ({})", policies.location(id).unwrap_or("?"));
            for line in policies.text(id).unwrap_or_default().lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    for error in &decision.errors {
        let _ = writeln!(out, "error:     {error}");
    }
    out
}
