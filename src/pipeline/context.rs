//! What the stages of one request share: identity of the request and of its connection, the
//! client's representation for faults, and what later stages learned (the Manager, the principal).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, Method, Request};
use tokio::time::Instant;

use crate::auth::Principal;
use crate::config::Cidr;
use crate::connection::{AddressText, ConnInfo};
use crate::wire::Representation;

#[derive(Clone)]
pub(crate) struct RequestContext {
    /// Unique per request; sent to the Manager as Correlation-Id when the client sent none.
    pub id: String,
    /// The client: the peer, or, when the peer is a trusted proxy, the address its
    /// X-Forwarded-For names (port 0). Limits, logs and `context.client_ip` use it.
    pub client: SocketAddr,
    /// `client` as text.
    pub client_text: AddressText,
    /// The X-Forwarded-For chain to send on: what trusted proxies said, then the peer. Without
    /// trusted proxies, the peer alone (whatever the client sent is dropped).
    pub forwarded_for: Arc<str>,
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
    /// The connection the request came on: it leaves the anonymous budget as soon as the
    /// gateway or the Manager accepts the request's credentials (docs/security.md, "Connection
    /// budgets").
    pub connection: Arc<crate::connection::ConnActivity>,
}

impl RequestContext {
    pub(crate) fn new<B>(conn: &ConnInfo, request: &Request<B>, trusted: &[Cidr]) -> RequestContext {
        let uri = request.uri();
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .map(str::to_owned);
        let (client, client_text, forwarded_for) =
            client_of(conn.client, &conn.client_text, request.headers(), trusted);
        RequestContext {
            id: next_request_id(),
            client,
            client_text,
            forwarded_for,
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
            connection: conn.activity.clone(),
        }
    }
}

/// The client and the X-Forwarded-For chain to send: the peer, unless it is a trusted proxy;
/// then, walking its X-Forwarded-For from the right, the first address that is not a trusted
/// proxy (an entry that is no address ends the walk at the proxy that wrote it).
fn client_of(
    peer: SocketAddr,
    peer_text: &AddressText,
    headers: &HeaderMap,
    trusted: &[Cidr],
) -> (SocketAddr, AddressText, Arc<str>) {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|cidr| cidr.contains(ip));
    if !is_trusted(peer.ip()) {
        return (peer, peer_text.clone(), peer_text.ip.clone());
    }
    let chain: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    let mut client = peer.ip();
    for entry in chain.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let forwarded_for = chain
        .iter()
        .copied()
        .chain(std::iter::once(&*peer_text.ip))
        .collect::<Vec<_>>()
        .join(", ");
    if client == peer.ip() {
        (peer, peer_text.clone(), forwarded_for.into())
    } else {
        let client = SocketAddr::new(client, 0);
        (client, AddressText::of(client), forwarded_for.into())
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

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// A process-unique id: a random per-process prefix and a counter, 16 hex digits, valid as an
/// engine Correlation-Id (`[0-9a-zA-Z_-]`, at most 36 characters: docs/engine.md, section 3).
fn next_request_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| RandomState::new().hash_one(std::process::id()) as u32);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let value = (u64::from(prefix) << 32) | (n & 0xffff_ffff);
    // Written digit by digit: `format!` costs ten times as much, on every request.
    (0..16)
        .rev()
        .map(|i| char::from(b"0123456789abcdef"[(value >> (4 * i)) as usize & 0xf]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids are 16 lowercase hex digits, the process's prefix then the counter.
    #[test]
    fn request_ids() {
        let (a, b) = (next_request_id(), next_request_id());
        assert_eq!(a.len(), 16);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{a}"
        );
        assert_eq!(a[..8], b[..8]);
        assert_ne!(a, b);
        // Other tests take ids meanwhile: later, not necessarily next.
        assert!(u32::from_str_radix(&b[8..], 16).unwrap() > u32::from_str_radix(&a[8..], 16).unwrap());
    }

    /// Only the names of query parameters are kept.
    #[test]
    fn query_keys_drop_values() {
        assert_eq!(
            query_keys("max=10&search=name%3Dsecret&follow"),
            "max,search,follow"
        );
    }

    fn xff(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(X_FORWARDED_FOR, value.parse().unwrap());
        headers
    }

    /// An untrusted peer is the client, whatever it claims; the chain it sent is dropped.
    #[test]
    fn untrusted_peer_is_the_client() {
        let peer: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let text = AddressText::of(peer);
        assert_eq!(&*text.socket, "192.0.2.7:4000");
        assert_eq!(
            client_of(peer, &text, &xff("6.6.6.6"), &trusted),
            (peer, text.clone(), "192.0.2.7".into())
        );
        assert_eq!(
            client_of(peer, &text, &xff("6.6.6.6"), &[]),
            (peer, text.clone(), "192.0.2.7".into())
        );
    }

    /// Behind trusted proxies the client is the first untrusted address from the right.
    #[test]
    fn trusted_chain_names_the_client() {
        let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let text = AddressText::of(peer);
        let (client, client_text, chain) =
            client_of(peer, &text, &xff("6.6.6.6, 198.51.100.9, 10.0.0.1"), &trusted);
        assert_eq!(client.ip(), "198.51.100.9".parse::<IpAddr>().unwrap());
        assert_eq!(&*client_text.socket, "198.51.100.9:0");
        assert_eq!(&*chain, "6.6.6.6, 198.51.100.9, 10.0.0.1, 10.0.0.2");
        let (client, _, _) = client_of(peer, &text, &xff("garbage, 10.0.0.1"), &trusted);
        assert_eq!(client.ip(), "10.0.0.1".parse::<IpAddr>().unwrap());
        let (client, client_text, _) = client_of(peer, &text, &HeaderMap::new(), &trusted);
        assert_eq!((client, client_text), (peer, text));
    }

    /// Blocks contain what they should, both sides of the boundary, IPv4-mapped included.
    #[test]
    fn cidr_blocks() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains("10.1.255.255".parse().unwrap()));
        assert!(!block.contains("10.2.0.0".parse().unwrap()));
        assert!(block.contains("::ffff:10.1.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("ten"), None);
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
