//! The engine's SSO on the wire (docs/engine.md, sections 1.2 to 1.4), shared by the gateway's own
//! SSO endpoints and the simulator's: parameters from the query and a form body, the exact
//! `Accept: application/json` check, the two error shapes, and the token answer.

use std::collections::HashMap;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Response, StatusCode};

use crate::body::GatewayBody;

/// The scope the engine grants for `ovirt-app-api`, with its dependencies expanded.
pub(crate) const API_SCOPE: &str = "ovirt-app-api ovirt-ext=token-info:authz-search ovirt-ext=token-info:public-authz-search ovirt-ext=token-info:validate ovirt-ext=token:password-access";

/// `application/x-www-form-urlencoded` pairs, decoded (`+` is a space), in order.
pub(crate) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| crate::api::path::percent_decode_lossy(&s.replace('+', " "));
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// An SSO request's parameters: the query string first, then a form body (`request.getParameter`).
pub(crate) fn sso_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let mut params: HashMap<String, String> =
        form_pairs(query.unwrap_or("").as_bytes()).into_iter().collect();
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        for (key, value) in form_pairs(body) {
            params.entry(key).or_insert(value);
        }
    }
    params
}

/// The exact string comparison the engine makes (docs/engine.md, section 1.2).
pub(crate) fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .is_some_and(|v| v.as_bytes() == b"application/json")
}

/// Whether a scope is the REST API's (`ovirt-app-api` without the admin or portal apps): errors
/// for it are `{"error_code","error"}`, for any other `{"error","error_description"}`.
fn is_rest_api_scope(scope: &str) -> bool {
    scope.split(' ').any(|s| s == "ovirt-app-api")
        && !scope
            .split(' ')
            .any(|s| s == "ovirt-app-admin" || s == "ovirt-app-portal")
}

/// An SSO error in the shape the request's scope calls for.
pub(crate) fn error_body(scope: &str, code: &str, message: &str) -> serde_json::Value {
    if is_rest_api_scope(scope) {
        serde_json::json!({ "error_code": code, "error": message })
    } else {
        serde_json::json!({ "error": code, "error_description": message })
    }
}

/// The engine's answer to a password grant: no `expires_in`; `exp` is a string of milliseconds.
pub(crate) fn token_body(access_token: &str, requested_scope: &str, exp_millis: i64) -> serde_json::Value {
    let scope = if requested_scope.split(' ').any(|s| s == "ovirt-app-api") {
        API_SCOPE
    } else {
        requested_scope
    };
    serde_json::json!({
        "access_token": access_token,
        "scope": scope,
        "exp": exp_millis.to_string(),
        "token_type": "bearer",
    })
}

/// An SSO error: the request's scope (which decides the shape), a code and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SsoError {
    pub scope: String,
    pub code: &'static str,
    pub message: String,
}

impl SsoError {
    pub(crate) fn new(scope: &str, code: &'static str, message: impl Into<String>) -> SsoError {
        SsoError {
            scope: scope.to_owned(),
            code,
            message: message.into(),
        }
    }

    /// The engine answers every SSO error with HTTP 400.
    pub(crate) fn response(&self) -> Response<GatewayBody> {
        json_response(
            StatusCode::BAD_REQUEST,
            &error_body(&self.scope, self.code, &self.message),
        )
    }
}

/// An SSO request's parameters and scope, once the exact Accept check passed.
fn checked_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(HashMap<String, String>, String), SsoError> {
    let params = sso_params(query, headers, body);
    let scope = params.get("scope").cloned().unwrap_or_default();
    if !accepts_json(headers) {
        return Err(SsoError::new(
            &scope,
            "invalid_request",
            "Missing parameter: 'Accept Header'",
        ));
    }
    Ok((params, scope))
}

/// A password grant, checked as the engine checks it: exact Accept, `grant_type=password`,
/// `scope`, `username` and `password` present.
pub(crate) struct PasswordGrant {
    pub scope: String,
    pub username: String,
    pub password: String,
}

impl PasswordGrant {
    pub(crate) fn parse(
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PasswordGrant, SsoError> {
        let (mut params, scope) = checked_params(query, headers, body)?;
        match params.get("grant_type").map(String::as_str) {
            None => {
                return Err(SsoError::new(
                    &scope,
                    "invalid_request",
                    "Missing parameter: 'grant_type'",
                ));
            }
            Some("password") => {}
            Some(other) => {
                return Err(SsoError::new(
                    &scope,
                    "unsupported_grant_type",
                    format!("The grant type '{other}' is not supported here; use password."),
                ));
            }
        }
        let mut take = |key: &str| {
            params.remove(key).ok_or_else(|| {
                SsoError::new(&scope, "invalid_request", format!("Missing parameter: '{key}'"))
            })
        };
        Ok(PasswordGrant {
            scope: take("scope")?,
            username: take("username")?,
            password: take("password")?,
        })
    }
}

/// The token of a validate-mode token-info request (`scope=ovirt-ext=token-info:validate`).
pub(crate) fn token_to_validate(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, SsoError> {
    let (mut params, scope) = checked_params(query, headers, body)?;
    if !scope.split(' ').any(|s| s == "ovirt-ext=token-info:validate") {
        return Err(SsoError::new(
            &scope,
            "unauthorized_client",
            "Only validate mode is answered here (scope ovirt-ext=token-info:validate).",
        ));
    }
    params
        .remove("token")
        .ok_or_else(|| SsoError::new(&scope, "invalid_request", "Missing parameter: 'token'"))
}

/// The answer to a validate-mode token-info request for a token that is not live.
pub(crate) fn invalid_grant(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> SsoError {
    let scope = sso_params(query, headers, body)
        .remove("scope")
        .unwrap_or_default();
    SsoError::new(
        &scope,
        "invalid_grant",
        "The provided authorization grant for the auth code has expired.",
    )
}

/// The token of an sso-logout request.
pub(crate) fn token_to_revoke(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    sso_params(query, headers, body).remove("token")
}

/// sso-logout always answers 200 JSON (the SDK raises on `error`): `{}` on success, the error map
/// for a request without a token.
pub(crate) fn logout_response(revoked: bool) -> Response<GatewayBody> {
    let body = if revoked {
        serde_json::json!({})
    } else {
        serde_json::json!({ "error_code": "invalid_request", "error": "Missing parameter: 'token'" })
    };
    json_response(StatusCode::OK, &body)
}

/// A JSON response with its length.
pub(crate) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<GatewayBody> {
    let body = Bytes::from(value.to_string());
    let length = body.len();
    let mut response = Response::new(GatewayBody::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The REST API scope gets `error_code`/`error`; another scope the OAuth shape.
    #[test]
    fn error_shapes_follow_the_scope() {
        assert_eq!(
            error_body("ovirt-app-api", "access_denied", "m"),
            serde_json::json!({"error_code": "access_denied", "error": "m"})
        );
        assert_eq!(
            error_body("ovirt-app-api ovirt-app-admin", "access_denied", "m"),
            serde_json::json!({"error": "access_denied", "error_description": "m"})
        );
    }

    /// Query parameters win over the form body; `+` and escapes are decoded.
    #[test]
    fn parameters_from_query_and_form() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let params = sso_params(
            Some("scope=a"),
            &headers,
            b"scope=b&username=admin%40internal&password=p+w",
        );
        assert_eq!(params["scope"], "a");
        assert_eq!(params["username"], "admin@internal");
        assert_eq!(params["password"], "p w");
    }

    /// Only `application/json` exactly is accepted.
    #[test]
    fn accept_must_match_exactly() {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(!accepts_json(&headers));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        assert!(accepts_json(&headers));
    }
}
