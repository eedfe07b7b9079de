//! Stage `forward`: send the request to its Manager and relay the response head.
//!
//! Rewrites only what the hop requires: the target URI (upstream scheme, host and prefix; the path
//! after the prefix and the query string byte for byte), Host, X-Forwarded-*, and a Correlation-Id
//! when the client sent none. Every other end-to-end header (Version, Filter, All-Content, Prefer,
//! Accept-Language, Session-TTL, Expect, ...) passes untouched. Bodies stream in both directions.

use std::sync::Arc;

use http::header::{ACCEPT_ENCODING, HOST, HeaderName, HeaderValue};
use http::{Request, Response, Version};

use super::context::RequestContext;
use super::prepare::strip_hop_by_hop;
use crate::api::path::ApiPath;
use crate::body::{self, GatewayBody};
use crate::compression;
use crate::fault::Fault;
use crate::metrics::Metrics;
use crate::rewrite;
use crate::rewrite::response::Bases;
use crate::token_guard::{self, Alarm, Shield, TokenForms};
use crate::upstream::Upstream;
use crate::upstream::gate::Caller;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const CORRELATION_ID: HeaderName = HeaderName::from_static("correlation-id");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// `shield` says how the answer is kept from handing the request's upstream token to the client
/// (token_guard.rs).
pub(super) async fn forward(
    upstream: &Upstream,
    api_path: &ApiPath,
    ctx: &RequestContext,
    metrics: &Metrics,
    compression_level: u32,
    shield: Shield,
    request: Request<GatewayBody>,
) -> Result<Response<GatewayBody>, Fault> {
    // Links point at the gateway: the client's scheme, host and public API path.
    let bases = Bases {
        public_origin: match ctx.host.as_deref() {
            Some(host) => [if ctx.tls { "https://" } else { "http://" }, host].concat(),
            None => String::new(),
        },
        public_api: [api_path.public_prefix.as_str(), "/ovirt-engine/api"].concat(),
        upstream_api: [upstream.config.upstream_prefix.as_str(), "/ovirt-engine/api"].concat(),
        gzip_level: (compression_level > 0 && compression::accepts_gzip(request.headers()))
            .then_some(compression_level),
    };
    let (mut parts, body) = request.into_parts();
    if bases.rewrites_bodies() {
        // Bodies are rewritten as they stream, so ask the Manager for them uncompressed (the
        // engine's Apache compresses when asked: docs/engine.md, section 9).
        parts.headers.remove(ACCEPT_ENCODING);
    }
    parts.uri = upstream
        .uri(&api_path.upstream_path_and_query(&upstream.config.upstream_prefix))
        .map_err(|e| Fault::BadRequest {
            detail: format!("cannot build the Manager's URL: {e}"),
        })?;
    // The pooled client speaks whatever it negotiated with the Manager; the client's version
    // belongs to the client's hop.
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    headers.remove(HOST);
    // Forwarding headers are the gateway's: what a client claims is dropped, what trusted
    // proxies said is kept in the chain (RequestContext::forwarded_for).
    headers.remove(FORWARDED);
    headers.remove(X_REAL_IP);
    headers.insert(
        X_FORWARDED_FOR,
        HeaderValue::try_from(&*ctx.forwarded_for).expect("ASCII list of addresses"),
    );
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if ctx.tls { "https" } else { "http" }),
    );
    match ctx.host.as_deref().map(HeaderValue::from_str) {
        Some(Ok(host)) => headers.insert(X_FORWARDED_HOST, host),
        _ => headers.remove(X_FORWARDED_HOST),
    };
    // Only codings the token guard can decode, so that every answer can be scanned.
    if shield != Shield::Off
        && let Some(offered) = headers.get(ACCEPT_ENCODING).and_then(|v| v.to_str().ok())
    {
        match scannable_codings(offered) {
            Some(codings) => headers.insert(ACCEPT_ENCODING, codings),
            None => headers.remove(ACCEPT_ENCODING),
        };
    }
    // Set by authentication with the upstream token it put in Authorization
    // (`UpstreamToken::apply`, the only way the gateway sets one).
    let token = (shield != Shield::Off)
        .then(|| parts.extensions.remove::<Arc<TokenForms>>())
        .flatten();
    debug_assert!(
        shield == Shield::Off || token.is_some(),
        "a guarded request without its token's forms"
    );
    if !headers.contains_key(&CORRELATION_ID) {
        headers.insert(
            CORRELATION_ID,
            HeaderValue::try_from(ctx.id.as_str()).expect("hex request id"),
        );
    }
    // A fair share of the Manager per user; a token passed through is known by its address.
    let caller = Caller::User(
        ctx.principal
            .as_ref()
            .map_or(&*ctx.client_text.ip, |p| p.user.as_str()),
    );
    let mut response = upstream
        .send(Request::from_parts(parts, body), caller, metrics)
        .await?;
    // A compressed answer the gateway decodes (to scan or to rewrite it) has its first frame
    // read before the head leaves: a bomb or a token at its start is a fault, not a cut answer.
    let decoded =
        (token.is_some() || bases.rewrites_bodies()) && compression::Decoder::decodes(response.headers());
    strip_hop_by_hop(response.headers_mut());
    crate::auth::persistent::drop_manager_cookies(response.headers_mut());
    // Guarded only when the request carried one of the gateway's upstream tokens: nothing is
    // built for the others.
    let response = match token {
        Some(token) => {
            let alarm = Alarm {
                request_id: ctx.id.clone(),
                manager: upstream.name().to_owned(),
                counter: metrics.tokens_withheld_total.clone(),
            };
            token_guard::shield(response, shield, Some(&*token), alarm).await?
        }
        None => response,
    };
    let response = rewrite::response::rewrite(response, &bases);
    if !decoded {
        return Ok(response);
    }
    let manager = || upstream.name().to_owned();
    body::first_frame_read(response).await.map_err(|error| {
        if body::caused_by::<compression::InflationLimit>(&*error).is_some() {
            Fault::UpstreamAnswer {
                manager: manager(),
                detail: error.to_string(),
            }
        } else if body::caused_by::<token_guard::TokenWithheld>(&*error).is_some() {
            Fault::TokenWithheld { manager: manager() }
        } else {
            Fault::UpstreamUnreachable {
                manager: manager(),
                cause: error.to_string(),
            }
        }
    })
}

/// The client's Accept-Encoding narrowed to the codings the token guard decodes (gzip, deflate),
/// in the client's order with its parameters; `None` when none is left.
fn scannable_codings(offered: &str) -> Option<HeaderValue> {
    let kept: Vec<&str> = offered
        .split(',')
        .map(str::trim)
        .filter(|coding| {
            let name = coding.split(';').next().unwrap_or("").trim();
            ["gzip", "x-gzip", "deflate", "identity"]
                .iter()
                .any(|known| name.eq_ignore_ascii_case(known))
        })
        .collect();
    (!kept.is_empty())
        .then(|| HeaderValue::from_str(&kept.join(", ")).ok())
        .flatten()
}
