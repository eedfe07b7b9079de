//! The Manager's SSO as a client: the password grant that turns `user@profile` and a password into
//! an upstream token (docs/engine.md, section 1.2).
//!
//! The password is sent once, in the form body, and never logged; the token comes back wrapped in
//! [`UpstreamToken`], whose `Debug` hides it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};

use crate::body::GatewayBody;
use crate::metrics::Metrics;
use crate::token_guard::TokenForms;
use crate::upstream::Upstream;
use crate::upstream::gate::Caller;

/// An SSO answer is a few hundred bytes; more is not an SSO answer.
const MAX_ANSWER: usize = 64 * 1024;

/// A Manager's access token. Sent upstream as `Authorization: Bearer`; never to a client, a log or
/// a metric.
#[derive(Clone)]
pub(crate) struct UpstreamToken {
    pub(super) token: String,
    forms: Arc<TokenForms>,
    /// `Bearer` and the token, made once (a sensitive value: HTTP/2 never indexes it).
    bearer: HeaderValue,
}

impl UpstreamToken {
    pub(super) fn new(token: String) -> UpstreamToken {
        let forms = Arc::new(TokenForms::of(token.as_bytes()));
        let mut bearer = HeaderValue::try_from(format!("Bearer {token}"))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
        bearer.set_sensitive(true);
        UpstreamToken { token, forms, bearer }
    }

    /// Sets `request` up to go with this token: its Authorization, and the forms the token guard
    /// searches its answer for (token_guard.rs).
    pub(crate) fn apply<B>(&self, request: &mut Request<B>) {
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, self.bearer());
        request.extensions_mut().insert(self.forms.clone());
    }

    pub(crate) fn bearer(&self) -> HeaderValue {
        self.bearer.clone()
    }
}

impl PartialEq for UpstreamToken {
    fn eq(&self, other: &UpstreamToken) -> bool {
        self.token == other.token
    }
}

impl Eq for UpstreamToken {}

impl fmt::Debug for UpstreamToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UpstreamToken(..)")
    }
}

/// Why a login did not give a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LoginError {
    /// The Manager refused the credentials; its message, which names the user, never the password.
    #[error("{0}")]
    Refused(String),
    /// The Manager's SSO could not be asked or did not answer as SSO answers.
    #[error("{0}")]
    Unavailable(String),
}

/// `POST {upstream prefix}/ovirt-engine/sso/oauth/token` with the password grant.
pub(crate) async fn password_grant(
    upstream: &Upstream,
    metrics: &Metrics,
    user: &str,
    password: &str,
) -> Result<UpstreamToken, LoginError> {
    let uri = upstream
        .uri(&format!(
            "{}/ovirt-engine/sso/oauth/token",
            upstream.config.upstream_prefix
        ))
        .map_err(|e| LoginError::Unavailable(format!("cannot build the SSO URL: {e}")))?;
    let form = format!(
        "grant_type=password&scope=ovirt-app-api&username={}&password={}",
        form_encode(user),
        form_encode(password)
    );
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        // The engine compares Accept with string equality (docs/engine.md, section 1.2).
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(GatewayBody::full(form))
        .expect("a valid request");
    let response = upstream
        .send(request, Caller::Login, metrics)
        .await
        .map_err(|error| LoginError::Unavailable(error.to_string()))?;
    let status = response.status();
    let body = read_answer(response.into_body(), upstream.config.timeouts.body_idle).await?;
    parse_answer(status, &body)
}

/// Who the Manager says a token's user is: its id, from the API root's `authenticated_user`
/// (docs/engine.md, section 4.1), and its `principal` (the user name as the directory holds it),
/// from `/users/ID`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ManagerUser {
    pub id: Option<String>,
    pub principal: Option<String>,
}

impl ManagerUser {
    /// The user's name for the gateway: `principal@profile`, the profile as the client typed it
    /// (the engine's `user_name` names the authz extension, not the profile); the typed name when
    /// the Manager did not say.
    pub(crate) fn name(&self, typed: &str) -> String {
        match (&self.principal, typed.rsplit_once('@')) {
            (Some(principal), Some((_, profile))) => format!("{principal}@{profile}"),
            _ => typed.to_owned(),
        }
    }
}

/// Asks the Manager who the token's user is, once per session (two GETs); what it does not say
/// stays `None`, with a warning.
pub(crate) async fn authenticated_user(
    upstream: &Upstream,
    metrics: &Metrics,
    token: &UpstreamToken,
) -> ManagerUser {
    let ask = |path: String| {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, token.bearer());
        async move {
            upstream
                .get_api_json(&path, headers, Caller::Login, metrics, MAX_ANSWER)
                .await
        }
    };
    let id = ask(String::new()).await.and_then(|(_, root)| {
        root["authenticated_user"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "the API root names no authenticated_user".to_owned())
    });
    let id = match id {
        Ok(id) => id,
        Err(error) => {
            tracing::warn!(manager = %upstream.name(), %error, "could not learn the user's id at the Manager");
            return ManagerUser::default();
        }
    };
    let principal = ask(format!("/users/{id}")).await.and_then(|(status, user)| {
        user["principal"]
            .as_str()
            .filter(|p| !p.is_empty() && !p.contains(['@', ' ']))
            .map(str::to_owned)
            .ok_or_else(|| format!("the user's entity ({status}) names no principal"))
    });
    match principal {
        Ok(principal) => ManagerUser {
            id: Some(id),
            principal: Some(principal),
        },
        Err(error) => {
            tracing::warn!(manager = %upstream.name(), %error, "could not learn the user's name at the Manager");
            ManagerUser {
                id: Some(id),
                principal: None,
            }
        }
    }
}

/// `POST {upstream prefix}/ovirt-engine/services/sso-logout` for a token (what the SDK's close()
/// does). Best effort, bounded by [`REVOKE_TIMEOUT`]; a failure is logged without the token.
pub(crate) async fn revoke(upstream: &Upstream, metrics: &Metrics, token: &UpstreamToken) {
    let Ok(uri) = upstream.uri(&format!(
        "{}/ovirt-engine/services/sso-logout",
        upstream.config.upstream_prefix
    )) else {
        return;
    };
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(GatewayBody::full(format!(
            "scope=ovirt-app-api&token={}",
            form_encode(&token.token)
        )))
        .expect("a valid request");
    let outcome = tokio::time::timeout(REVOKE_TIMEOUT, async {
        let response = upstream
            .send(request, Caller::Login, metrics)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        read_answer(response.into_body(), REVOKE_TIMEOUT)
            .await
            .map_err(|e| e.to_string())
            .and_then(|body| match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(json) if status.is_success() && json.get("error").is_none() => Ok(()),
                _ => Err(format!("sso-logout answered {status}")),
            })
    })
    .await;
    let error = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(error)) => error,
        Err(_) => format!("no answer within {REVOKE_TIMEOUT:?}"),
    };
    tracing::warn!(manager = %upstream.name(), %error, "could not revoke an upstream token");
}

/// Upper bound for one revocation (a client's logout waits for it; an evicted session's runs in
/// the background).
pub(crate) const REVOKE_TIMEOUT: Duration = Duration::from_secs(5);

async fn read_answer(body: GatewayBody, limit: Duration) -> Result<Bytes, LoginError> {
    match tokio::time::timeout(limit, Limited::new(body, MAX_ANSWER).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) => Err(LoginError::Unavailable(format!("reading the SSO answer: {e}"))),
        Err(_) => Err(LoginError::Unavailable(
            "the SSO answer did not arrive in time".into(),
        )),
    }
}

/// The token, a refusal (the engine's 400 with `access_denied` or `invalid_grant`), or anything
/// else as unavailable: a 5xx, a proxy's HTML page, a JSON without either.
fn parse_answer(status: StatusCode, body: &[u8]) -> Result<UpstreamToken, LoginError> {
    let unavailable = || {
        LoginError::Unavailable(format!(
            "the SSO endpoint answered {status} without a token or an error the gateway knows"
        ))
    };
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|_| unavailable())?;
    if status.is_success()
        && let Some(token) = json["access_token"].as_str()
    {
        return Ok(UpstreamToken::new(token.to_owned()));
    }
    // REST-API scope errors are {"error_code","error"}; OAuth-style ones {"error","error_description"}.
    let (code, message) = match (json["error_code"].as_str(), json["error_description"].as_str()) {
        (Some(code), _) => (code, json["error"].as_str().unwrap_or(code)),
        (None, Some(description)) => (json["error"].as_str().unwrap_or(""), description),
        (None, None) => return Err(unavailable()),
    };
    match code {
        "access_denied" | "invalid_grant" => Err(LoginError::Refused(message.to_owned())),
        _ => Err(LoginError::Unavailable(format!("SSO error {code}: {message}"))),
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token answer gives the token.
    #[test]
    fn token_answer() {
        let body = br#"{"access_token":"abc=","scope":"ovirt-app-api","exp":"1","token_type":"bearer"}"#;
        assert_eq!(
            parse_answer(StatusCode::OK, body),
            Ok(UpstreamToken::new("abc=".into()))
        );
    }

    /// The engine's refusal in the REST-API shape is a refusal with its message.
    #[test]
    fn refusal_in_api_shape() {
        let body = br#"{"error_code":"access_denied","error":"Cannot authenticate user 'a@internal'"}"#;
        assert_eq!(
            parse_answer(StatusCode::BAD_REQUEST, body),
            Err(LoginError::Refused(
                "Cannot authenticate user 'a@internal'".into()
            ))
        );
    }

    /// The OAuth shape is understood too.
    #[test]
    fn refusal_in_oauth_shape() {
        let body = br#"{"error":"invalid_grant","error_description":"expired"}"#;
        assert_eq!(
            parse_answer(StatusCode::BAD_REQUEST, body),
            Err(LoginError::Refused("expired".into()))
        );
    }

    /// A server error or an HTML page is unavailability, never a refusal (a 401 would make the
    /// SDK log in again in a loop).
    #[test]
    fn other_answers_are_unavailable() {
        let server_error = br#"{"error_code":"server_error","error":"db down"}"#;
        assert!(matches!(
            parse_answer(StatusCode::BAD_REQUEST, server_error),
            Err(LoginError::Unavailable(_))
        ));
        assert!(matches!(
            parse_answer(StatusCode::SERVICE_UNAVAILABLE, b"<html>busy</html>"),
            Err(LoginError::Unavailable(_))
        ));
    }

    /// Reserved characters of a password are percent-encoded, spaces become `+`.
    #[test]
    fn form_encoding() {
        assert_eq!(form_encode("p@ss w&rd=+%"), "p%40ss+w%26rd%3D%2B%25");
        assert_eq!(form_encode("é"), "%C3%A9");
    }

    /// A token never shows in Debug output.
    #[test]
    fn token_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", UpstreamToken::new("secret".into())),
            "UpstreamToken(..)"
        );
    }
}
