//! Stage `authenticate`: Basic credentials on an API request become the Manager's bearer token,
//! from the user's session (one SSO login per user, not per request).
//!
//! Reads the Authorization header of requests under `/ovirt-engine/api`; replaces Basic with
//! `Bearer <upstream token>` and records the user in the context. Short-circuits with 401 for
//! malformed or refused credentials and 503 when the Manager's SSO cannot log the user in. Other
//! schemes, cookies and requests without credentials pass untouched (see `auth.rs`).

use http::Request;
use http::header::AUTHORIZATION;

use super::context::RequestContext;
use crate::api_path::{ApiPath, EngineArea};
use crate::auth::{Authenticator, BasicCredentials};
use crate::body::GatewayBody;
use crate::fault::Fault;
use crate::upstream::Upstream;

/// Returns the Basic credentials the request carried, so that a token the Manager refuses can be
/// replaced once (see `pipeline::run`).
pub async fn authenticate(
    auth: &Authenticator,
    upstream: &Upstream,
    api_path: &ApiPath,
    ctx: &mut RequestContext,
    request: &mut Request<GatewayBody>,
) -> Result<Option<BasicCredentials>, Fault> {
    if !matches!(api_path.area, EngineArea::Api(_)) {
        return Ok(None);
    }
    let Some(value) = request.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let credentials = match BasicCredentials::of_header(value) {
        Ok(Some(credentials)) => credentials,
        Ok(None) => return Ok(None),
        Err(fault) => {
            auth.failed("malformed");
            return Err(fault);
        }
    };
    ctx.user = Some(credentials.user.clone());
    let session = auth.session(upstream, &credentials).await?;
    request
        .headers_mut()
        .insert(AUTHORIZATION, session.token.bearer());
    Ok(Some(credentials))
}
