//! Stage `route`: find the Manager and parse the path, once, into an [`ApiPath`].
//!
//! Reads the Host and the raw path; writes the Manager's name into the context. Short-circuits
//! with 400 for an ambiguous path (checked before routing, so no prefix can hide one) and 404 when
//! no Manager is published at this host and path. Everything after this stage reads the `ApiPath`,
//! never the raw URL again (docs/invariants.md, invariant 2).

use std::sync::Arc;

use http::{Method, Request};

use super::context::RequestContext;
use crate::api::{
    self,
    path::{ApiPath, EngineArea},
};
use crate::body::GatewayBody;
use crate::fault::Fault;
use crate::upstream::Upstream;
use crate::upstream::router::{Router, Target};

/// Where a request goes, with its path parsed.
pub(super) enum Routed {
    Manager(Arc<Upstream>, ApiPath),
    /// The merged view (`[federation]`): its members are picked later.
    Merged(ApiPath),
}

pub(super) fn route(
    router: &Router,
    upstreams: &[Arc<Upstream>],
    ctx: &mut RequestContext,
    request: &Request<GatewayBody>,
) -> Result<Routed, Fault> {
    let path = request.uri().path();
    api::path::validate(path).map_err(|e| Fault::AmbiguousPath {
        detail: e.to_string(),
    })?;
    let found = router.find(ctx.host.as_deref(), path).ok_or(Fault::NoRoute)?;
    let api_path =
        ApiPath::parse(found.prefix, found.engine_path, request.uri().query()).ok_or(Fault::NoRoute)?;
    if let EngineArea::Api(resource) = &api_path.area {
        api::path::check_ids(resource).map_err(|e| Fault::AmbiguousPath {
            detail: e.to_string(),
        })?;
    }
    Ok(match found.target {
        Target::Manager(manager) => {
            let upstream = upstreams[manager].clone();
            ctx.manager = Some(upstream.name().to_owned());
            Routed::Manager(upstream, api_path)
        }
        Target::Merged => {
            ctx.manager = Some(crate::federation::LABEL.to_owned());
            Routed::Merged(api_path)
        }
    })
}

/// Refuses a path outside the API unless it is on the allow-list (`FORWARDED_SERVICES`, read
/// only, or the Manager's `forward_paths`), in the spelling the servlet container maps: 404 fault
/// (docs/invariants.md, invariant 13). The gateway's own SSO endpoints are answered before this.
pub(super) fn recognised(upstream: &Upstream, api_path: &ApiPath, method: &Method) -> Result<(), Fault> {
    // The API is; only what is outside it needs the servlet path worked out.
    if matches!(api_path.area, EngineArea::Api(_)) {
        return Ok(());
    }
    let servlet = api::path::servlet_path(&api_path.engine_path);
    let under = |prefix: &str| {
        servlet
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    let allowed = match api_path.area {
        EngineArea::Api(_) => true,
        EngineArea::Sso | EngineArea::Services => {
            api::path::FORWARDED_SERVICES.contains(&servlet.as_str())
                && matches!(*method, Method::GET | Method::HEAD)
        }
        EngineArea::Other => upstream.config.forward_paths.iter().any(|p| under(p)),
    };
    if allowed {
        return Ok(());
    }
    Err(Fault::NotForwarded {
        detail: format!(
            "The gateway does not forward {method} {servlet} to Manager '{}': only the API, its own \
             SSO endpoints, the health check and the CA download (and the Manager's forward_paths) \
             are served",
            upstream.name()
        ),
    })
}
