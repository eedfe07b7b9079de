//! Stage `cache lookup`: after authorization (docs/invariants.md, invariant 1: a hit is served only after
//! the decision a miss would get), a GET the cache holds for this user is answered here; the
//! others go on with what `store` is to do with the Manager's answer.

use std::sync::Arc;

use http::{Request, Response};

use super::context::RequestContext;
use crate::api::path::ApiPath;
use crate::body::GatewayBody;
use crate::cache::{Asked, Cache, Lookup, Pending};
use crate::upstream::Upstream;

pub(super) async fn lookup(
    cache: &Arc<Cache>,
    upstream: &Upstream,
    api_path: &ApiPath,
    ctx: &RequestContext,
    request: &Request<GatewayBody>,
) -> Result<Response<GatewayBody>, Pending> {
    let asked = Asked {
        method: request.method(),
        manager: upstream.name(),
        path: api_path,
        target: api_path.upstream_path_and_query(&upstream.config.upstream_prefix),
        headers: request.headers(),
        user: ctx.principal.as_ref().map(|p| p.user.as_str()),
        tls: ctx.tls,
        request_id: &ctx.id,
    };
    match cache.lookup(&asked).await {
        Lookup::Hit(response) => Ok(response),
        Lookup::Forward(pending) => Err(pending),
    }
}
