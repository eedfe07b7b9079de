//! Stage `authenticate`: the client's credentials on an API request become the Manager's bearer
//! token. Basic credentials find the user's session (one SSO login per user, not per request);
//! a gateway token (from the gateway's SSO endpoint) finds its login.
//!
//! Reads the Authorization header of requests under `/ovirt-engine/api`; replaces it with
//! `Bearer <upstream token>` and records the user in the context. Short-circuits with 401 for
//! malformed, refused or unknown credentials and 503 when the Manager's SSO cannot log the user
//! in. Bearer tokens the gateway did not sign pass only with `auth.bearer_passthrough`; cookies and
//! requests without credentials pass untouched (see `auth.rs`).

use http::Request;
use http::header::AUTHORIZATION;

use super::context::RequestContext;
use crate::api_path::{ApiPath, EngineArea};
use crate::auth::{Authenticator, BasicCredentials};
use crate::body::GatewayBody;
use crate::fault::Fault;
use std::sync::Arc;

use crate::upstream::Upstream;

/// Who the request was authenticated as, for what `pipeline::run` does when the Manager refuses
/// the upstream token.
pub enum Identity {
    /// Nothing the gateway handles: the request went as the client sent it.
    Untouched,
    /// Basic credentials: a refused token is replaced by a fresh login.
    Basic(BasicCredentials),
    /// A gateway token: a refused upstream token ends its login (the client logs in again).
    Token { sid: String },
}

pub async fn authenticate(
    auth: &Authenticator,
    upstream: &Arc<Upstream>,
    api_path: &ApiPath,
    ctx: &mut RequestContext,
    request: &mut Request<GatewayBody>,
) -> Result<Identity, Fault> {
    if !matches!(api_path.area, EngineArea::Api(_)) {
        return Ok(Identity::Untouched);
    }
    let Some(value) = request.headers().get(AUTHORIZATION) else {
        return Ok(Identity::Untouched);
    };
    if let Some(token) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer")) {
        return bearer(auth, upstream, ctx, request, token.trim().to_owned()).await;
    }
    let credentials = match BasicCredentials::of_header(value) {
        Ok(Some(credentials)) => credentials,
        Ok(None) => return Ok(Identity::Untouched),
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
    Ok(Identity::Basic(credentials))
}

async fn bearer(
    auth: &Authenticator,
    upstream: &Upstream,
    ctx: &mut RequestContext,
    request: &mut Request<GatewayBody>,
    token: String,
) -> Result<Identity, Fault> {
    let Some((claims, login)) = auth.login_of(&token).await else {
        if auth.bearer_passthrough() {
            return Ok(Identity::Untouched);
        }
        auth.failed("unknown_token");
        return Err(Fault::Unauthorized {
            detail: "The token was not issued by this gateway, has expired or was logged out; log in again"
                .into(),
        });
    };
    ctx.user = Some(claims.sub.clone());
    let Some(upstream_token) = login.token_for(upstream.name()) else {
        auth.failed("unknown_token");
        return Err(Fault::Unauthorized {
            detail: format!(
                "This login does not cover Manager '{}'; log in again at this host",
                upstream.name()
            ),
        });
    };
    request
        .headers_mut()
        .insert(AUTHORIZATION, upstream_token.bearer());
    Ok(Identity::Token {
        sid: claims.sid.clone(),
    })
}
