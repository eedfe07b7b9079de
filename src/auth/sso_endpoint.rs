//! The gateway's own SSO endpoints, answered on every public host:port because the SDK derives
//! them from scheme://host:port alone (docs/engine.md, section 2): the password grant, validate-mode
//! token info, and sso-logout, in the engine's exact shapes (`wire/sso.rs`).
//!
//! A password grant logs in at every Manager the host covers; the answer's `access_token` is the
//! gateway's token (a JWT naming the login), never a Manager's.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};

use super::{AuthError, Authenticator, Failure};
use crate::body::{BoxError, GatewayBody, RequestBodyError, caused_by};
use crate::ratelimit::logins::Logins;
use crate::upstream::Upstream;
use crate::wire::sso::{
    PasswordGrant, SsoError, invalid_grant, json_response, logout_response, token_body, token_to_revoke,
    token_to_validate,
};

/// SSO requests are small forms; larger bodies are not SSO requests.
const MAX_FORM: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Token,
    TokenInfo,
    Logout,
}

impl Endpoint {
    /// The endpoint at this path (no public prefix: the SDK never adds one), in every spelling
    /// the engine's servlet container maps to it (path parameters, a trailing slash).
    pub(crate) fn of_path(path: &str) -> Option<Endpoint> {
        // Every spelling of these names `/sso` or `/services` literally: most paths do not.
        if !(path.contains("/sso") || path.contains("/services")) {
            return None;
        }
        match crate::api::path::servlet_path(path).as_str() {
            "/ovirt-engine/sso/oauth/token" => Some(Endpoint::Token),
            "/ovirt-engine/sso/oauth/token-info" => Some(Endpoint::TokenInfo),
            "/ovirt-engine/services/sso-logout" => Some(Endpoint::Logout),
            _ => None,
        }
    }
}

/// Answers an SSO request; `upstreams` are the Managers the request's host covers. Returns the
/// user who logged in, for the access log.
pub(crate) async fn answer(
    endpoint: Endpoint,
    auth: &Authenticator,
    logins: Option<&Logins>,
    client: IpAddr,
    upstreams: &[Arc<Upstream>],
    request: Request<GatewayBody>,
) -> (Response<GatewayBody>, Option<String>) {
    let (parts, body) = request.into_parts();
    let body = match read_form(body).await {
        Ok(body) => body,
        Err(error) => return (unread_form(&*error), None),
    };
    let (query, headers) = (parts.uri.query(), &parts.headers);
    match endpoint {
        Endpoint::Token => token(auth, logins, client, upstreams, query, headers, &body).await,
        Endpoint::TokenInfo => {
            let response = match token_to_validate(query, headers, &body) {
                Ok(token) => match auth.login_of(&token).await {
                    Ok(Some(_)) => json_response(StatusCode::OK, &serde_json::json!({})),
                    Ok(None) => invalid_grant(query, headers, &body).response(),
                    Err(error) => unavailable(query, headers, &body, &error),
                },
                Err(error) => error.response(),
            };
            (response, None)
        }
        Endpoint::Logout => {
            // Like the engine's, the answer is `{}` also for a token already ended.
            let token = token_to_revoke(query, headers, &body);
            if let Some(token) = &token
                && let Err(error) = auth.log_out(token).await
            {
                return (unavailable(query, headers, &body, &error), None);
            }
            (logout_response(token.is_some()), None)
        }
    }
}

async fn token(
    auth: &Authenticator,
    logins: Option<&Logins>,
    client: IpAddr,
    upstreams: &[Arc<Upstream>],
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> (Response<GatewayBody>, Option<String>) {
    let grant = match PasswordGrant::parse(query, headers, body) {
        Ok(grant) => grant,
        Err(error) => return (error.response(), None),
    };
    let user = Some(grant.username.clone());
    if !grant.username.contains('@') {
        auth.failed(Failure::NoProfile);
        let message = format!(
            "Cannot authenticate user '{}': No valid profile found in credentials..",
            grant.username
        );
        return (
            SsoError::new(&grant.scope, "access_denied", message).response(),
            user,
        );
    }
    if upstreams.is_empty() {
        let error = SsoError::new(
            &grant.scope,
            "server_error",
            "No Manager is published at this host",
        );
        return (error.response(), user);
    }
    // A locked-out user (or address) is refused before any Manager is asked.
    if let Some(logins) = logins
        && let Err(retry_after) = logins.check(&grant.username, client)
    {
        let message = format!(
            "Too many failed logins of this user from this address, or from this address; retry in {} s",
            crate::fault::retry_seconds(retry_after)
        );
        let mut response = SsoError::new(&grant.scope, "access_denied", message).response();
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(crate::fault::retry_seconds(retry_after)),
        );
        return (response, user);
    }
    let outcome = auth
        .log_in(
            upstreams,
            &grant.username,
            &grant.password,
            logins.map(|l| (l, client)),
        )
        .await;
    match outcome {
        Ok((token, exp_millis)) => (
            json_response(StatusCode::OK, &token_body(&token, &grant.scope, exp_millis)),
            user,
        ),
        Err(AuthError::Refused(message)) => (
            SsoError::new(&grant.scope, "access_denied", message).response(),
            user,
        ),
        // log_in asks the Managers only: what fails is their SSO.
        Err(unavailable) => (server_error(&grant.scope, &unavailable), user),
    }
}

/// 503, not the engine's 400: nothing is wrong with the credentials. The SDK reads only the
/// body's `error`, which it reports.
fn server_error(scope: &str, error: &AuthError) -> Response<GatewayBody> {
    let mut response = SsoError::new(scope, "server_error", error.to_string()).response();
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
}

/// A token the gateway cannot look up now (docs/replicas.md), in the request's scope.
fn unavailable(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    error: &AuthError,
) -> Response<GatewayBody> {
    let scope = invalid_grant(query, headers, body).scope;
    server_error(&scope, error)
}

async fn read_form(body: GatewayBody) -> Result<Bytes, BoxError> {
    Limited::new(body, MAX_FORM)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
}

/// The answer to a form that could not be read: a body that stalled gets a 408 and the
/// connection closed (the rest of it may still come), anything else a 400, as OAuth errors.
fn unread_form(error: &(dyn std::error::Error + 'static)) -> Response<GatewayBody> {
    let stalled = matches!(
        caused_by::<RequestBodyError>(error),
        Some(RequestBodyError::Stalled(_) | RequestBodyError::TooSlow(_))
    );
    if !stalled {
        let error = SsoError::new(
            "",
            "invalid_request",
            "The request body is not a form of at most 64 KiB",
        );
        return error.response();
    }
    let mut response = SsoError::new(
        "",
        "invalid_request",
        format!("The gateway stopped waiting for the request body: {error}"),
    )
    .response();
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    response
        .headers_mut()
        .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    response
}
