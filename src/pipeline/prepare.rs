//! Stage `prepare`: enforce the size limits of the request head and body, strip hop-by-hop headers.
//!
//! Reads the request head; replaces the body with a counting, limited one. Short-circuits with 431
//! (head too large) or 413 (declared body too large; a body that grows past the limit while
//! streaming fails the exchange, which the forward stage turns into 413). Never reads the body.
//! [`recognised_method`] refuses what the API does not use before anything else looks at it.

use http::header::{
    CONNECTION, CONTENT_LENGTH, HeaderName, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, Request};
use hyper::body::Incoming;

use super::context::RequestContext;
use crate::body::{GatewayBody, RequestBody};
use crate::config::Limits;
use crate::fault::Fault;

/// The methods of the oVirt API (and OPTIONS, which JAX-RS answers for every resource).
pub(super) const API_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";

/// Headers that ask a server to run the request as another method than the one sent: what the
/// gateway authorized would not be what the Manager (or a front end) did.
const METHOD_OVERRIDES: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// Why a method is refused, for the count of refusals.
pub(super) enum Unrecognised {
    Method,
    Override,
}

/// Refuses methods the API does not use (405 with Allow: TRACE, for one, would echo the
/// request, Manager token included, from a front end that answers it) and method overrides
/// (400), whatever the path (docs/invariants.md, invariant 13).
pub(super) fn recognised_method<B>(request: &Request<B>) -> Result<(), (Unrecognised, Fault)> {
    use http::Method;
    if !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::DELETE | Method::OPTIONS
    ) {
        return Err((
            Unrecognised::Method,
            Fault::MethodNotAllowed { allow: API_METHODS },
        ));
    }
    if let Some(name) = METHOD_OVERRIDES
        .iter()
        .find(|name| request.headers().contains_key(*name))
    {
        return Err((
            Unrecognised::Override,
            Fault::BadRequest {
                detail: format!("The gateway refuses {name}: a request runs as the method it was sent with"),
            },
        ));
    }
    Ok(())
}

pub(super) fn prepare(
    limits: &Limits,
    ctx: &RequestContext,
    request: Request<Incoming>,
) -> Result<Request<GatewayBody>, Fault> {
    if head_size(&request) > limits.max_header_bytes {
        return Err(Fault::HeadersTooLarge {
            limit: limits.max_header_bytes,
        });
    }
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limits.max_body_bytes) {
        return Err(Fault::BodyTooLarge {
            limit: limits.max_body_bytes,
        });
    }
    let (mut parts, body) = request.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let body = RequestBody::new(
        body,
        limits.max_body_bytes,
        limits.body_pace,
        ctx.bytes_in.clone(),
    );
    Ok(Request::from_parts(parts, GatewayBody::new(body)))
}

/// Bytes of the request line and headers, as they would be sent over HTTP/1.1 (an HTTP/2
/// request's scheme and authority count as an absolute-form target).
fn head_size<B>(request: &Request<B>) -> usize {
    let uri = request.uri();
    let target = uri.path_and_query().map_or(1, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len() + "https://".len());
    let line = request.method().as_str().len() + target + 12;
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    line + headers
}

/// Headers that belong to one connection only (RFC 9110 section 7.6.1), plus those named in
/// Connection. Removed from requests and responses alike.
const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages have none: one pass over the names tells, without hashing any.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// Fixed hop-by-hop headers and those named in Connection go; end-to-end headers stay.
    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "close, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic x"),
            ("version", "4"),
            ("prefer", "persistent-auth"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["version", "prefer"]);
    }

    /// The head size counts the request line and every header.
    #[test]
    fn head_size_counts_line_and_headers() {
        let request = Request::get("/ab").header("x", "yz").body(()).unwrap();
        assert_eq!(head_size(&request), 3 + 3 + 12 + (1 + 2 + 4));
    }
}
