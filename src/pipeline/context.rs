//! What the stages of one request share: identity of the request and of its connection, the
//! client's representation for faults, and what later stages learned (the Manager, the principal).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{Method, Request};
use tokio::time::Instant;

use crate::auth::Principal;
use crate::fault::Representation;
use crate::server::ConnInfo;

pub struct RequestContext {
    /// Unique per request; sent to the Manager as Correlation-Id when the client sent none.
    pub id: String,
    pub client: SocketAddr,
    /// Whether the client connection is TLS (decides X-Forwarded-Proto).
    pub tls: bool,
    pub started: Instant,
    pub method: Method,
    /// The raw request path, without the query string, for the access log.
    pub path: String,
    /// The names of the query parameters, never their values (a search can hold names).
    pub query_keys: String,
    pub repr: Representation,
    /// The Host the client addressed (Host header, or :authority on HTTP/2).
    pub host: Option<String>,
    /// The name of the Manager, once routed.
    pub manager: Option<String>,
    /// Who the request is from, once authenticated (never a password or token).
    pub principal: Option<Principal>,
    /// Request body bytes received so far; updated while the body streams.
    pub bytes_in: Arc<AtomicU64>,
}

impl RequestContext {
    pub fn new<B>(conn: &ConnInfo, request: &Request<B>) -> RequestContext {
        let uri = request.uri();
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .map(str::to_owned);
        RequestContext {
            id: next_request_id(),
            client: conn.client,
            tls: conn.tls,
            started: Instant::now(),
            method: request.method().clone(),
            path: uri.path().to_owned(),
            query_keys: uri.query().map(query_keys).unwrap_or_default(),
            repr: Representation::of_request(request.headers(), uri.query()),
            host,
            manager: None,
            principal: None,
            bytes_in: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// `max,search` from `max=10&search=name%3Dx`.
fn query_keys(query: &str) -> String {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split('=').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(",")
}

/// A process-unique id: a random per-process prefix and a counter, 16 hex digits, valid as an
/// engine Correlation-Id (`[0-9a-zA-Z_-]`, at most 36 characters: OVIRT-API.md section 3).
fn next_request_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| RandomState::new().hash_one(std::process::id()) as u32);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix:08x}{:08x}", n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the names of query parameters are kept.
    #[test]
    fn query_keys_drop_values() {
        assert_eq!(
            query_keys("max=10&search=name%3Dsecret&follow"),
            "max,search,follow"
        );
    }

    /// Request ids are unique and fit the engine's Correlation-Id rules.
    #[test]
    fn request_ids_are_unique_and_valid() {
        let a = next_request_id();
        let b = next_request_id();
        assert_ne!(a, b);
        assert!(a.len() <= 36 && a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
