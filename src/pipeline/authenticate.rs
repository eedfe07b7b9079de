//! Stage `authenticate`: the client's credentials on an API request become the Manager's bearer
//! token. Basic credentials find the user's session (one SSO login per user, not per request); a
//! gateway token, from the gateway's SSO endpoint or its session cookie, finds its login.
//!
//! Reads the Authorization header, the gateway's cookie and `Prefer` of requests under
//! `/ovirt-engine/api`; sets `Authorization: Bearer <upstream token>`, removes the session
//! elements of `Prefer` and the gateway's cookie, records the user in the context, and returns the
//! cookie to set when the client asked for a persistent session. Short-circuits with 401 for
//! missing, malformed, refused or unknown credentials and 503 when the Manager's SSO cannot log
//! the user in. Bearer tokens the gateway did not sign pass only with `auth.bearer_passthrough`.

use std::sync::Arc;

use http::Request;
use http::header::{AUTHORIZATION, HeaderValue};

use super::context::RequestContext;
use crate::api::path::{ApiPath, EngineArea};
use crate::auth::persistent::{self, Prefer};
use crate::auth::{Authenticator, BasicCredentials, Failure, Principal};
use crate::body::GatewayBody;
use crate::fault::Fault;
use crate::ratelimit::logins::Logins;
use crate::upstream::Upstream;

/// Who the request was authenticated as, for what `pipeline::run` does when the Manager refuses
/// the upstream token.
pub(super) enum Identity {
    /// Nothing the gateway handles: the request went as the client sent it.
    Untouched,
    /// Basic credentials: a refused token is replaced by a fresh login.
    Basic(BasicCredentials),
    /// A gateway token: a refused upstream token ends its login (the client logs in again).
    Token { sid: String },
}

pub(super) async fn authenticate(
    auth: &Authenticator,
    logins: Option<&Logins>,
    upstream: &Arc<Upstream>,
    api_path: &ApiPath,
    ctx: &mut RequestContext,
    request: &mut Request<GatewayBody>,
) -> Result<(Identity, Option<HeaderValue>), Fault> {
    if !matches!(api_path.area, EngineArea::Api(_)) {
        return Ok((Identity::Untouched, None));
    }
    let prefer = Prefer::take(request.headers_mut());
    if let Some(cookie) = persistent::take_cookie(request.headers_mut()) {
        if prefer.persistent && !prefer.new_auth {
            if let Some(identity) = by_token(auth, upstream, ctx, request, &cookie).await? {
                return Ok((identity, None));
            }
        } else {
            // As the engine: a request without persistent-auth ends the session.
            auth.log_out(&cookie).await?;
        }
    }
    // Which of several the Manager or a front end would read is theirs to choose: refused.
    if request.headers().get_all(AUTHORIZATION).iter().nth(1).is_some() {
        auth.failed(Failure::Malformed);
        return Err(Fault::BadRequest {
            detail: "The request carries more than one Authorization header".into(),
        });
    }
    let Some(value) = request.headers().get(AUTHORIZATION) else {
        auth.failed(Failure::Missing);
        return Err(Fault::Unauthorized {
            detail: "Credentials are required: Basic user@profile:password, or a token from /ovirt-engine/sso/oauth/token".into(),
        });
    };
    let cookie_path = format!("{}/ovirt-engine/api", api_path.public_prefix);
    if let Some(token) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer")) {
        let token = token.trim().to_owned();
        return match by_token(auth, upstream, ctx, request, &token).await? {
            Some(identity) => {
                let cookie = prefer
                    .persistent
                    .then(|| persistent::set_cookie(&token, &cookie_path, ctx.tls))
                    .flatten();
                Ok((identity, cookie))
            }
            None if auth.bearer_passthrough() => Ok((Identity::Untouched, None)),
            None => {
                auth.failed(Failure::UnknownToken);
                Err(Fault::Unauthorized {
                    detail: "The token was not issued by this gateway, has expired or was logged out; log in again"
                        .into(),
                })
            }
        };
    }
    let Some(credentials) = auth.basic_credentials(value)? else {
        auth.failed(Failure::Malformed);
        return Err(Fault::Unauthorized {
            detail: "Unsupported authorization scheme: use Basic or Bearer".into(),
        });
    };
    // Named before the login, so that a refused one is logged with the user it was for.
    ctx.principal = Some(Principal {
        user: credentials.user.clone(),
        upstream_user_id: None,
    });
    // A locked-out user (or address) is refused before the Manager could be asked.
    if let Some(logins) = logins
        && let Err(retry_after) = logins.check(&credentials.user, ctx.client.ip())
    {
        return Err(Fault::LoginLocked { retry_after });
    }
    let session = auth
        .session(upstream, &credentials, logins.map(|l| (l, ctx.client.ip())))
        .await?;
    ctx.principal = Some(Principal {
        user: session.user.clone(),
        upstream_user_id: session.user_id.clone(),
    });
    session.token.apply(request);
    let cookie = if prefer.persistent {
        let token = auth.persistent_login(upstream, &credentials).await?;
        persistent::set_cookie(&token, &cookie_path, ctx.tls)
    } else {
        None
    };
    Ok((Identity::Basic(credentials), cookie))
}

/// The identity of a gateway token, with the request set up for its Manager; `None` when the
/// token is not one of this gateway's live logins.
async fn by_token(
    auth: &Authenticator,
    upstream: &Upstream,
    ctx: &mut RequestContext,
    request: &mut Request<GatewayBody>,
    token: &str,
) -> Result<Option<Identity>, Fault> {
    let Some((claims, login)) = auth.login_of(token).await? else {
        return Ok(None);
    };
    let Some(upstream_token) = auth.member_token(&claims.sid, &login, upstream).await? else {
        auth.failed(Failure::UnknownToken);
        return Err(Fault::Unauthorized {
            detail: format!(
                "This login does not cover Manager '{}'; log in again at this host",
                upstream.name()
            ),
        });
    };
    upstream_token.token.apply(request);
    ctx.principal = Some(Principal {
        user: claims.sub.clone(),
        upstream_user_id: upstream_token.user_id.clone(),
    });
    Ok(Some(Identity::Token {
        sid: claims.sid.clone(),
    }))
}
