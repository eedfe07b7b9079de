//! Stage `route`: find the Manager and parse the path, once, into an [`ApiPath`].
//!
//! Reads the Host and the raw path; writes the Manager's name into the context. Short-circuits
//! with 400 for an ambiguous path (checked before routing, so no prefix can hide one) and 404 when
//! no Manager is published at this host and path. Everything after this stage reads the `ApiPath`,
//! never the raw URL again (DESIGN.md invariant 2).

use std::sync::Arc;

use http::Request;

use super::context::RequestContext;
use crate::api_path::{self, ApiPath};
use crate::body::GatewayBody;
use crate::fault::Fault;
use crate::upstream::Upstream;
use crate::upstream::router::Router;

pub fn route(
    router: &Router,
    upstreams: &[Arc<Upstream>],
    ctx: &mut RequestContext,
    request: &Request<GatewayBody>,
) -> Result<(Arc<Upstream>, ApiPath), Fault> {
    let path = request.uri().path();
    api_path::validate(path).map_err(|e| Fault::AmbiguousPath {
        detail: e.to_string(),
    })?;
    let found = router.find(ctx.host.as_deref(), path).ok_or(Fault::NoRoute)?;
    let upstream = upstreams[found.manager].clone();
    ctx.manager = Some(upstream.name().to_owned());
    let api_path =
        ApiPath::parse(found.prefix, found.engine_path, request.uri().query()).ok_or(Fault::NoRoute)?;
    Ok((upstream, api_path))
}
