//! `Prefer: persistent-auth` terminated at the gateway (docs/engine.md, section 1.6): the gateway
//! keeps the session and hands the client its own cookie, never a Manager's JSESSIONID.
//!
//! The cookie holds a gateway token (`tokens.rs`) for a login; it is HttpOnly, Secure under TLS,
//! and its Path is the client's public API path. As on the engine, a request that sends the
//! cookie without `Prefer: persistent-auth` ends the session, and `new-auth` ignores it.

use http::HeaderMap;
use http::header::{COOKIE, HeaderValue, SET_COOKIE};

pub(crate) const COOKIE_NAME: &str = "OVIRT_GATEWAY_SESSION";

/// The session elements of a request's `Prefer` header.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefer {
    pub persistent: bool,
    pub new_auth: bool,
}

impl Prefer {
    /// Reads `persistent-auth` and `new-auth` and removes them from the headers: the gateway
    /// holds the session, so the Manager must not open one of its own. Other elements stay.
    pub(crate) fn take(headers: &mut HeaderMap) -> Prefer {
        let mut prefer = Prefer::default();
        let mut kept = Vec::new();
        for value in headers.get_all("prefer") {
            for element in value.to_str().unwrap_or("").split(',') {
                match element.trim().to_ascii_lowercase().as_str() {
                    "persistent-auth" => prefer.persistent = true,
                    "new-auth" => prefer.new_auth = true,
                    "" => {}
                    _ => kept.push(element.trim().to_owned()),
                }
            }
        }
        headers.remove("prefer");
        if !kept.is_empty()
            && let Ok(value) = HeaderValue::from_str(&kept.join(", "))
        {
            headers.insert("prefer", value);
        }
        prefer
    }
}

/// The gateway's session cookie, removed from the request (it is not the Manager's business).
pub(crate) fn take_cookie(headers: &mut HeaderMap) -> Option<String> {
    let mut found = None;
    let mut kept = Vec::new();
    for value in headers.get_all(COOKIE) {
        for pair in value.to_str().unwrap_or("").split(';') {
            match pair.trim().split_once('=') {
                Some((name, value)) if name == COOKIE_NAME => found = Some(value.to_owned()),
                _ if pair.trim().is_empty() => {}
                _ => kept.push(pair.trim().to_owned()),
            }
        }
    }
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(COOKIE, value);
    }
    found
}

/// The `Set-Cookie` value for a session.
pub(crate) fn set_cookie(token: &str, path: &str, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    let mut value =
        HeaderValue::from_str(&format!("{COOKIE_NAME}={token}; Path={path}{secure}; HttpOnly")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Removes the Manager's session cookies from a response: sessions are the gateway's.
pub(crate) fn drop_manager_cookies(headers: &mut HeaderMap) {
    let kept: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| !v.as_bytes().starts_with(b"JSESSIONID="))
        .cloned()
        .collect();
    headers.remove(SET_COOKIE);
    for value in kept {
        headers.append(SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Session elements are read and removed; other preferences pass on.
    #[test]
    fn prefer_elements() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "prefer",
            HeaderValue::from_static("Persistent-Auth, return=minimal"),
        );
        assert_eq!(
            Prefer::take(&mut headers),
            Prefer {
                persistent: true,
                new_auth: false
            }
        );
        assert_eq!(headers["prefer"], "return=minimal");
        headers.insert("prefer", HeaderValue::from_static("new-auth"));
        assert!(Prefer::take(&mut headers).new_auth);
        assert!(headers.get("prefer").is_none());
    }

    /// The gateway's cookie is taken out; other cookies stay.
    #[test]
    fn cookie_taken_out() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; OVIRT_GATEWAY_SESSION=tok; b=2"),
        );
        assert_eq!(take_cookie(&mut headers).as_deref(), Some("tok"));
        assert_eq!(headers[COOKIE], "a=1; b=2");
        assert_eq!(take_cookie(&mut headers), None);
    }

    /// The cookie is HttpOnly on the public API path, Secure under TLS only.
    #[test]
    fn cookie_attributes() {
        let cookie = set_cookie("t", "/east/ovirt-engine/api", true).unwrap();
        assert_eq!(
            cookie,
            "OVIRT_GATEWAY_SESSION=t; Path=/east/ovirt-engine/api; Secure; HttpOnly"
        );
        let plain = set_cookie("t", "/ovirt-engine/api", false).unwrap();
        assert_eq!(plain, "OVIRT_GATEWAY_SESSION=t; Path=/ovirt-engine/api; HttpOnly");
    }

    /// A Manager's JSESSIONID never reaches the client; other cookies do.
    #[test]
    fn manager_cookies_dropped() {
        let mut headers = HeaderMap::new();
        headers.append(
            SET_COOKIE,
            HeaderValue::from_static("JSESSIONID=x; Path=/ovirt-engine/api"),
        );
        headers.append(SET_COOKIE, HeaderValue::from_static("other=y"));
        drop_manager_cookies(&mut headers);
        let left: Vec<_> = headers.get_all(SET_COOKIE).iter().collect();
        assert_eq!(left, ["other=y"]);
    }
}
