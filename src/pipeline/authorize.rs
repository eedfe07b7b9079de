//! The authorize stage: the Cedar decision on (principal, action, resource, context), before
//! anything reaches the Manager (docs/invariants.md, invariant 1). A denial is a 403 fault naming the action
//! and the kind of resource, never the policy text; shadow mode lets every request through.

use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::RequestContext;
use crate::api::params::EngineParams;
use crate::api::path::ApiPath;
use crate::config::PolicyMode;
use crate::fault::Fault;
use crate::metrics::Metrics;
use crate::policy::mapping::{self, Kind};
use crate::policy::{Asker, ContextParams, Enforcer, Facts, Mapped};
use crate::upstream::Upstream;

/// `headers` are the request's after authentication: their Authorization is the user's token at
/// this Manager, which attribute lookups use.
pub(super) async fn authorize(
    enforcer: Option<&Enforcer>,
    upstream: &Upstream,
    metrics: &Metrics,
    path: &ApiPath,
    ctx: &RequestContext,
    headers: &HeaderMap,
) -> Result<(), Fault> {
    let Some(enforcer) = enforcer else {
        return Ok(());
    };
    // Every request reaching this stage was authenticated (bearer pass-through, which carries no
    // identity, cannot be configured with policies).
    let Some(principal) = &ctx.principal else {
        return Err(Fault::Forbidden {
            detail: "The gateway's policies need a user, and this request has none".into(),
        });
    };
    let mapped = mapping::map(&ctx.method, path);
    let params = EngineParams::new(path, headers);
    let follow = params.follow();
    let facts = Facts {
        user: &principal.user,
        manager: upstream.name(),
        method: &ctx.method,
        params: ContextParams::of(&params),
        client_ip: ctx.client.ip(),
        time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let asker = || {
        headers.get(AUTHORIZATION).map(|authorization| Asker {
            upstream,
            metrics,
            user: &principal.user,
            authorization,
            filter: headers.get("filter"),
        })
    };
    let shadow = enforcer.mode() == PolicyMode::Shadow;
    let decision = enforcer.decide(&mapped, &facts, asker()).await;
    if !decision.allowed && !shadow {
        return Err(Fault::Forbidden {
            detail: denial(&mapped),
        });
    }
    // What `follow` inlines is read too: each link is authorized as a read of what it reaches.
    let reads = match mapping::followed(&mapped, &follow) {
        Ok(reads) => reads,
        Err(_) if shadow => Vec::new(),
        Err(unknown) => {
            return Err(Fault::Forbidden {
                detail: format!(
                    "`follow` names `{}`, which is no link of a {} the gateway knows, so its policies cannot decide it",
                    unknown.link, unknown.owner
                ),
            });
        }
    };
    for read in reads {
        let decision = enforcer.decide(&read.mapped, &facts, asker()).await;
        if !decision.allowed && !shadow {
            return Err(Fault::Forbidden {
                detail: format!("{}, which `follow={}` inlines", denial(&read.mapped), read.link),
            });
        }
    }
    Ok(())
}

/// What was refused, in the client's terms: the action and the kind of resource.
pub(super) fn denial(mapped: &Mapped) -> String {
    let what = match mapped.kind {
        Kind::Root => "the API root".to_owned(),
        Kind::Collection => format!("the {} collection", mapped.id),
        Kind::Unknown => "this path, which is not a resource the policies know".to_owned(),
        Kind::Entity(kind) => format!("a {kind}"),
    };
    format!(
        "The gateway's policies do not allow `{}` on {what}",
        mapped.action
    )
}
