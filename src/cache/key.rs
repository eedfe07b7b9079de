//! What a GET is cached as: the Manager, whose answer it is, the path and query as forwarded, and
//! every request header that changes the body.

use http::header::{ACCEPT, ACCEPT_ENCODING, ACCEPT_LANGUAGE, HOST, HeaderMap, HeaderName};
use ring::hmac;

/// Request headers that change the answer's body.
const VARYING: [HeaderName; 7] = [
    ACCEPT,
    ACCEPT_ENCODING,
    ACCEPT_LANGUAGE,
    HeaderName::from_static("version"),
    HeaderName::from_static("filter"),
    HeaderName::from_static("all-content"),
    HeaderName::from_static("prefer"),
];

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Key {
    manager: String,
    /// `user@profile`; a keyed hash of a passed-through Authorization; empty on shared collections.
    identity: String,
    /// The path and query as forwarded.
    pub target: String,
    /// The varying request headers, and the scheme, host and public prefix links are rewritten
    /// to (a Manager's answer on its own route and in the merged view differ in their hrefs).
    pub variant: String,
}

impl Key {
    pub(super) fn new(
        manager: &str,
        identity: String,
        target: String,
        headers: &HeaderMap,
        tls: bool,
        public_prefix: &str,
    ) -> Key {
        Key {
            manager: manager.to_owned(),
            identity,
            target,
            variant: variant(headers, tls, public_prefix),
        }
    }
}

/// The identity of a passed-through token: a keyed hash, so the key never holds the token.
pub(super) fn token_identity(secret: &hmac::Key, authorization: &[u8]) -> String {
    let tag = hmac::sign(secret, authorization);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("token:{hex}")
}

/// The request headers that change the body, and where links will point.
fn variant(headers: &HeaderMap, tls: bool, public_prefix: &str) -> String {
    let mut variant = String::from(if tls { "https" } else { "http" });
    variant.push('\0');
    variant.push_str(public_prefix);
    for name in [HOST].iter().chain(&VARYING) {
        variant.push('\0');
        for value in headers.get_all(name) {
            variant.push_str(&String::from_utf8_lossy(value.as_bytes()));
            variant.push('\n');
        }
    }
    variant
}
