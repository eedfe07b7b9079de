//! Errors of the request path and the one place where they become HTTP responses.
//!
//! Every response the gateway makes itself (not relayed from a Manager) comes from [`Fault::respond`]:
//! an oVirt fault body in the client's representation (docs/engine.md, section 4.4; docs/invariants.md, invariant 7),
//! `application/xml` by default and JSON when the client asked for it, with a correct Content-Length
//! and ASCII-only header values. This module never sees credentials, so a fault can never echo one.

use std::fmt;

use bytes::Bytes;
use std::time::Duration;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};

use crate::body::GatewayBody;

/// Who is to blame for a fault; decides its log level and is recorded in the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The client sent something we refuse; nothing is wrong with the gateway or the Manager.
    Client,
    /// The client's credentials are missing, malformed or refused.
    Credentials,
    /// The Manager could not be reached or did not answer in time.
    Upstream,
}

/// Which phase of an upstream exchange ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    Connect,
    ResponseHeaders,
}

/// Everything that makes the gateway answer a request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The request is malformed in a way that is not about the path (bad header, bad Host).
    BadRequest { detail: String },
    /// A method the API does not use (docs/invariants.md, invariant 13); `allow` lists those it does.
    MethodNotAllowed { allow: &'static str },
    /// The Manager's answer carried the request's upstream token in a header: withheld
    /// (docs/security.md). A token in a body cuts the answer instead.
    TokenWithheld { manager: String },
    /// A path the Manager could read differently from us (docs/invariants.md, invariant 2).
    AmbiguousPath { detail: String },
    /// No Manager is published at this host and path.
    NoRoute,
    /// A path outside the API that the gateway neither answers nor forwards
    /// (docs/invariants.md, invariant 13): the detail says which.
    NotForwarded { detail: String },
    /// The request head is larger than `listen.max_header_bytes`.
    HeadersTooLarge { limit: usize },
    /// The request body is larger than `listen.max_body_bytes`.
    BodyTooLarge { limit: u64 },
    /// The request body stalled or came too slowly (`listen.body_timeout`,
    /// `listen.min_body_rate`); the connection is closed with the answer.
    RequestTimeout { detail: String },
    /// The Manager's answer was refused before any of it was sent (a compressed answer that
    /// inflates past the limit, docs/security.md).
    UpstreamAnswer { manager: String, detail: String },
    /// The Manager could not be connected to, or broke the exchange.
    UpstreamUnreachable { manager: String, cause: String },
    /// The Manager did not answer within the configured time.
    UpstreamTimeout { manager: String, phase: TimeoutPhase },
    /// The Manager is failing its health checks and refused this request's connection too.
    UpstreamNotReady { manager: String, retry_after: Duration },
    /// Credentials are malformed or were refused (docs/invariants.md, invariant 6: the only 401).
    Unauthorized { detail: String },
    /// The gateway refuses this request whoever sends it (docs/invariants.md, invariant 6: 403, never 401).
    Forbidden { detail: String },
    /// The Manager's concurrency gate refused the request: too many were waiting, or none of
    /// its places came free in time. Never sent.
    ManagerBusy {
        manager: String,
        refused: crate::upstream::gate::Refused,
        retry_after: Duration,
    },
    /// Too many failed logins of this user from this address, or from this address: the login is
    /// refused before the Manager is asked (429, not 401: the credentials were not even tried).
    LoginLocked { retry_after: Duration },
    /// A rate limit refused the request (docs/rate-limiting.md): 429, never 401 or 403.
    TooManyRequests(crate::ratelimit::Limited),
    /// The Manager's SSO could not log the user in for another reason than the credentials: never
    /// a 401, which would make the SDK log in again in a loop.
    SsoUnavailable {
        manager: String,
        cause: String,
        retry_after: Duration,
    },
}

impl Fault {
    pub fn status(&self) -> StatusCode {
        match self {
            Fault::BadRequest { .. } | Fault::AmbiguousPath { .. } => StatusCode::BAD_REQUEST,
            Fault::NoRoute | Fault::NotForwarded { .. } => StatusCode::NOT_FOUND,
            Fault::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Fault::TokenWithheld { .. } | Fault::UpstreamAnswer { .. } => StatusCode::BAD_GATEWAY,
            Fault::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Fault::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Fault::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Fault::UpstreamUnreachable { .. } => StatusCode::BAD_GATEWAY,
            Fault::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Fault::UpstreamNotReady { .. } | Fault::SsoUnavailable { .. } | Fault::ManagerBusy { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Fault::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Fault::TooManyRequests(_) | Fault::LoginLocked { .. } => StatusCode::TOO_MANY_REQUESTS,
            Fault::Forbidden { .. } => StatusCode::FORBIDDEN,
        }
    }

    pub fn blame(&self) -> Blame {
        match self {
            Fault::BadRequest { .. }
            | Fault::AmbiguousPath { .. }
            | Fault::NoRoute
            | Fault::NotForwarded { .. }
            | Fault::MethodNotAllowed { .. }
            | Fault::HeadersTooLarge { .. }
            | Fault::BodyTooLarge { .. }
            | Fault::RequestTimeout { .. }
            | Fault::Forbidden { .. }
            | Fault::TooManyRequests(_)
            | Fault::LoginLocked { .. } => Blame::Client,
            Fault::Unauthorized { .. } => Blame::Credentials,
            Fault::UpstreamUnreachable { .. }
            | Fault::UpstreamTimeout { .. }
            | Fault::UpstreamNotReady { .. }
            | Fault::TokenWithheld { .. }
            | Fault::UpstreamAnswer { .. }
            | Fault::ManagerBusy { .. }
            | Fault::SsoUnavailable { .. } => Blame::Upstream,
        }
    }

    /// The short `<reason>` of the fault body.
    fn reason(&self) -> &'static str {
        match self {
            Fault::BadRequest { .. } => "Bad request",
            Fault::AmbiguousPath { .. } => "Ambiguous request path",
            Fault::NoRoute | Fault::NotForwarded { .. } => "Not found",
            Fault::MethodNotAllowed { .. } => "Method not allowed",
            Fault::TokenWithheld { .. } => "Answer withheld",
            Fault::UpstreamAnswer { .. } => "Manager answer refused",
            Fault::HeadersTooLarge { .. } => "Request headers too large",
            Fault::BodyTooLarge { .. } => "Request body too large",
            Fault::RequestTimeout { .. } => "Request timeout",
            Fault::UpstreamUnreachable { .. } => "Manager unreachable",
            Fault::UpstreamTimeout { .. } => "Manager timeout",
            Fault::UpstreamNotReady { .. } => "Manager not ready",
            Fault::ManagerBusy { .. } => "Manager busy",
            Fault::Unauthorized { .. } => "Unauthorized",
            Fault::Forbidden { .. } => "Forbidden",
            Fault::TooManyRequests(_) => "Too many requests",
            Fault::LoginLocked { .. } => "Too many failed logins",
            Fault::SsoUnavailable { .. } => "Manager SSO unavailable",
        }
    }

    /// The `<detail>` of the fault body: what happened and what the client can do about it.
    fn detail(&self) -> String {
        match self {
            Fault::BadRequest { detail }
            | Fault::AmbiguousPath { detail }
            | Fault::NotForwarded { detail }
            | Fault::RequestTimeout { detail }
            | Fault::Unauthorized { detail }
            | Fault::Forbidden { detail } => detail.clone(),
            Fault::NoRoute => "No Manager is published at this host and path".to_owned(),
            Fault::MethodNotAllowed { allow } => {
                format!("The gateway forwards only the methods the oVirt API uses: {allow}")
            }
            Fault::TokenWithheld { manager } => format!(
                "Manager '{manager}' answered with the session's SSO token, which never leaves the gateway"
            ),
            Fault::ManagerBusy {
                manager,
                refused,
                retry_after,
            } => {
                let why = match refused {
                    crate::upstream::gate::Refused::QueueFull => "too many requests are waiting for it",
                    crate::upstream::gate::Refused::TimedOut => "no place came free in time",
                };
                format!(
                    "Manager '{manager}' is serving as many requests as the gateway lets through and {why}; retry in {} s",
                    retry_seconds(*retry_after)
                )
            }
            Fault::LoginLocked { retry_after } => format!(
                "Too many failed logins of this user from this address, or from this address; retry in {} s",
                retry_seconds(*retry_after)
            ),
            Fault::TooManyRequests(limited) => {
                let whose = match limited.scope {
                    "ip" => "this address",
                    _ => "this user",
                };
                format!(
                    "The gateway allows {whose} {} requests at once and {} per second (in cost units); retry in {} s",
                    limited.quota.burst,
                    limited.quota.rate,
                    retry_seconds(limited.retry_after)
                )
            }
            Fault::HeadersTooLarge { limit } => {
                format!("The request line and headers exceed the gateway's limit of {limit} bytes")
            }
            Fault::BodyTooLarge { limit } => {
                format!("The request body exceeds the gateway's limit of {limit} bytes")
            }
            Fault::UpstreamAnswer { manager, detail } => {
                format!("The gateway refused the answer of Manager '{manager}': {detail}")
            }
            Fault::UpstreamUnreachable { manager, cause } => {
                format!("The gateway could not reach Manager '{manager}': {cause}")
            }
            Fault::UpstreamTimeout { manager, phase } => match phase {
                TimeoutPhase::Connect => format!("Connecting to Manager '{manager}' timed out"),
                TimeoutPhase::ResponseHeaders => {
                    format!("Manager '{manager}' did not answer within the gateway's time limit")
                }
            },
            Fault::UpstreamNotReady { manager, retry_after } => format!(
                "Manager '{manager}' is failing its health checks and refused the connection; retry in {} s",
                retry_after.as_secs().max(1)
            ),
            Fault::SsoUnavailable { manager, cause, .. } => {
                format!("The gateway could not log in at Manager '{manager}': {cause}")
            }
        }
    }

    /// The fault as a response in the representation the client asked for.
    pub fn respond(&self, repr: Representation) -> Response<GatewayBody> {
        let body = match repr {
            Representation::Xml => xml_fault(self.reason(), &self.detail()),
            Representation::Json => json_fault(self.reason(), &self.detail()),
        };
        let mut response = Response::new(GatewayBody::full(Bytes::from(body.clone())));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(repr.content_type()));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        match self {
            Fault::UpstreamNotReady { retry_after, .. }
            | Fault::SsoUnavailable { retry_after, .. }
            | Fault::ManagerBusy { retry_after, .. }
            | Fault::LoginLocked { retry_after } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(retry_seconds(*retry_after).max(1)));
            }
            Fault::TooManyRequests(limited) => {
                let header = |text: String| HeaderValue::try_from(text).expect("ASCII");
                headers.insert(RETRY_AFTER, HeaderValue::from(retry_seconds(limited.retry_after)));
                headers.insert(
                    "ratelimit-policy",
                    header(crate::ratelimit::policy_header(limited.scope, limited.quota)),
                );
                headers.insert(
                    "ratelimit",
                    header(crate::ratelimit::state_header(
                        limited.scope,
                        0,
                        limited.retry_after,
                    )),
                );
            }
            Fault::MethodNotAllowed { allow } => {
                headers.insert(http::header::ALLOW, HeaderValue::from_static(allow));
            }
            // The rest of the body may still come, or never: the connection cannot be reused.
            Fault::RequestTimeout { .. } => {
                headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            // The engine's challenge (docs/engine.md, section 1.7); the body is a fault, not HTML.
            Fault::Unauthorized { .. } => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"RESTAPI\""),
                );
            }
            _ => {}
        }
        response
    }
}

/// Whole seconds to wait, rounded up: a client that waits that long is let through.
pub fn retry_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason(), self.detail())
    }
}

/// The two representations of the oVirt API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    Xml,
    Json,
}

impl Representation {
    /// What the client asked for: `?accept=` wins over the Accept header, as RESTEasy's media type
    /// parameter mapping does on the engine (docs/engine.md, section 3). XML when nothing says JSON,
    /// because the engine lists XML first in `@Produces`.
    pub fn of_request(headers: &HeaderMap, query: Option<&str>) -> Self {
        if let Some(accept) = query.and_then(query_accept) {
            return Self::from_media_types(&accept);
        }
        headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map_or(Representation::Xml, Self::from_media_types)
    }

    /// The first of the listed media types the API can produce, by quality then order.
    fn from_media_types(accept: &str) -> Self {
        let mut best: Option<(f32, Representation)> = None;
        for range in accept.split(',') {
            let mut params = range.split(';');
            let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let repr = match media.as_str() {
                "application/json" | "text/json" => Representation::Json,
                "application/xml" | "text/xml" | "*/*" | "application/*" => Representation::Xml,
                _ => continue,
            };
            let q = params
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if best.is_none_or(|(best_q, _)| q > best_q) {
                best = Some((q, repr));
            }
        }
        best.map_or(Representation::Xml, |(_, repr)| repr)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Representation::Xml => "application/xml",
            Representation::Json => "application/json",
        }
    }
}

/// The value of an `accept` query parameter, percent-decoded (`application%2Fjson` is common).
fn query_accept(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "accept").then(|| crate::api_path::percent_decode_lossy(value))
    })
}

fn xml_fault(reason: &str, detail: &str) -> String {
    let mut body = Vec::new();
    body.extend_from_slice(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<fault>\n    <reason>",
    );
    xml_escape(&mut body, reason, false);
    body.extend_from_slice(b"</reason>\n    <detail>");
    xml_escape(&mut body, detail, false);
    body.extend_from_slice(b"</detail>\n</fault>\n");
    String::from_utf8(body).expect("escaping keeps UTF-8 intact")
}

fn json_fault(reason: &str, detail: &str) -> String {
    let mut body = serde_json::json!({ "reason": reason, "detail": detail }).to_string();
    body.push('\n');
    body
}

/// Escapes XML text into `out`; in attribute values quotes too. Control characters XML 1.0
/// forbids are dropped. The one XML escaper of the crate (fault bodies, the simulator).
pub fn xml_escape(out: &mut Vec<u8>, text: &str, attribute: bool) {
    for &b in text.as_bytes() {
        match b {
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'"' if attribute => out.extend_from_slice(b"&quot;"),
            // Control characters other than tab and newline are not allowed in XML 1.0.
            b if b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r' => {}
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attribute values escape quotes; element text keeps them.
    #[test]
    fn xml_escapes_quotes_only_in_attributes() {
        let mut out = Vec::new();
        xml_escape(&mut out, "say \"hi\" & <bye>", true);
        assert_eq!(out, b"say &quot;hi&quot; &amp; &lt;bye&gt;");
        out.clear();
        xml_escape(&mut out, "href=\"/x\"", false);
        assert_eq!(out, b"href=\"/x\"");
    }
    use http_body_util::BodyExt;

    async fn body_text(response: Response<GatewayBody>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn all_faults() -> Vec<(Fault, StatusCode)> {
        vec![
            (Fault::BadRequest { detail: "x".into() }, StatusCode::BAD_REQUEST),
            (
                Fault::AmbiguousPath { detail: "x".into() },
                StatusCode::BAD_REQUEST,
            ),
            (Fault::NoRoute, StatusCode::NOT_FOUND),
            (
                Fault::HeadersTooLarge { limit: 1 },
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ),
            (Fault::BodyTooLarge { limit: 1 }, StatusCode::PAYLOAD_TOO_LARGE),
            (
                Fault::RequestTimeout { detail: "d".into() },
                StatusCode::REQUEST_TIMEOUT,
            ),
            (
                Fault::UpstreamUnreachable {
                    manager: "m".into(),
                    cause: "refused".into(),
                },
                StatusCode::BAD_GATEWAY,
            ),
            (
                Fault::UpstreamTimeout {
                    manager: "m".into(),
                    phase: TimeoutPhase::Connect,
                },
                StatusCode::GATEWAY_TIMEOUT,
            ),
            (
                Fault::UpstreamTimeout {
                    manager: "m".into(),
                    phase: TimeoutPhase::ResponseHeaders,
                },
                StatusCode::GATEWAY_TIMEOUT,
            ),
            (
                Fault::UpstreamNotReady {
                    manager: "m".into(),
                    retry_after: Duration::from_secs(10),
                },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                Fault::Unauthorized { detail: "x".into() },
                StatusCode::UNAUTHORIZED,
            ),
            (Fault::Forbidden { detail: "x".into() }, StatusCode::FORBIDDEN),
            (
                Fault::SsoUnavailable {
                    manager: "m".into(),
                    cause: "down".into(),
                    retry_after: Duration::from_secs(10),
                },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ]
    }

    /// A 401 carries the engine's Basic challenge; no other fault does.
    #[test]
    fn challenge_only_on_401() {
        for (fault, status) in all_faults() {
            let response = fault.respond(Representation::Xml);
            let challenge = response.headers().get(WWW_AUTHENTICATE);
            match status {
                StatusCode::UNAUTHORIZED => assert_eq!(challenge.unwrap(), "Basic realm=\"RESTAPI\""),
                _ => assert!(challenge.is_none(), "{fault:?}"),
            }
        }
    }

    /// A 503 tells the client when to come back; no other fault does.
    #[test]
    fn retry_after_only_on_503() {
        for (fault, status) in all_faults() {
            let response = fault.respond(Representation::Xml);
            let retry_after = response.headers().get(RETRY_AFTER);
            match status {
                StatusCode::SERVICE_UNAVAILABLE => assert_eq!(retry_after.unwrap(), "10"),
                _ => assert!(retry_after.is_none(), "{fault:?}"),
            }
        }
    }

    /// Each fault maps to its documented status code.
    #[test]
    fn each_fault_maps_to_its_status() {
        for (fault, status) in all_faults() {
            assert_eq!(fault.status(), status, "{fault:?}");
        }
    }

    /// Every fault renders as a parseable XML fault with reason and detail and a matching length.
    #[tokio::test]
    async fn every_fault_renders_xml_with_length() {
        for (fault, _) in all_faults() {
            let response = fault.respond(Representation::Xml);
            assert_eq!(response.headers()[CONTENT_TYPE], "application/xml");
            let length: usize = response.headers()[CONTENT_LENGTH]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let text = body_text(response).await;
            assert_eq!(text.len(), length);
            assert!(
                text.contains(&format!("<reason>{}</reason>", fault.reason())),
                "{text}"
            );
            assert!(text.contains("<detail>"), "{text}");
        }
    }

    /// The JSON form is `{"reason","detail"}`.
    #[tokio::test]
    async fn json_fault_has_reason_and_detail() {
        let text = body_text(Fault::NoRoute.respond(Representation::Json)).await;
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["reason"], "Not found");
        assert_eq!(value["detail"], "No Manager is published at this host and path");
    }

    /// Markup in a detail is escaped, so the fault stays well-formed.
    #[tokio::test]
    async fn xml_detail_is_escaped() {
        let fault = Fault::BadRequest {
            detail: "<a href=\"x\">&'".into(),
        };
        let text = body_text(fault.respond(Representation::Xml)).await;
        assert!(
            text.contains("<detail>&lt;a href=\"x\"&gt;&amp;'</detail>"),
            "{text}"
        );
    }

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    /// No Accept at all means XML, as on the engine.
    #[test]
    fn no_accept_is_xml() {
        assert_eq!(
            Representation::of_request(&HeaderMap::new(), None),
            Representation::Xml
        );
    }

    /// `Accept: application/json` means JSON.
    #[test]
    fn accept_json_is_json() {
        assert_eq!(
            Representation::of_request(&accept("application/json"), None),
            Representation::Json
        );
    }

    /// A wildcard means XML, the engine's first producible type.
    #[test]
    fn accept_wildcard_is_xml() {
        assert_eq!(
            Representation::of_request(&accept("*/*"), None),
            Representation::Xml
        );
    }

    /// Quality values decide between XML and JSON.
    #[test]
    fn accept_quality_decides() {
        let headers = accept("application/xml;q=0.5, application/json");
        assert_eq!(Representation::of_request(&headers, None), Representation::Json);
        let headers = accept("application/json;q=0.1, application/xml");
        assert_eq!(Representation::of_request(&headers, None), Representation::Xml);
    }

    /// The `accept` query parameter overrides the header, encoded or not.
    #[test]
    fn accept_query_parameter_wins() {
        let headers = accept("application/xml");
        assert_eq!(
            Representation::of_request(&headers, Some("max=1&accept=application%2Fjson")),
            Representation::Json
        );
        assert_eq!(
            Representation::of_request(&HeaderMap::new(), Some("accept=application/json")),
            Representation::Json
        );
    }
}
