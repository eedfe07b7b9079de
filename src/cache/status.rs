//! What the cache did with a request: the Cache-Status header it sends (RFC 9211) and the result
//! `gateway_cache_requests_total` counts it under.

use http::HeaderValue;

/// The cache's name in Cache-Status.
const NAME: &str = "ovirt-gateway";

/// How a request is counted in `gateway_cache_requests_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Hit,
    Miss,
    /// Not looked up: the request cannot be answered from the cache, or asked for a fresh answer.
    Bypass,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Bypass => "bypass",
        }
    }
}

/// Why the Manager was asked (Cache-Status `fwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forwarded {
    /// The cache held no fresh answer.
    Miss,
    /// The request asked for a fresh answer, or for one the cache never gives (a conditional or
    /// range request, `no-store`).
    Request,
    /// A method the cache does not answer (HEAD).
    Method,
    /// Nobody to key the answer by: no user and no credentials.
    Bypass,
}

impl Forwarded {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Forwarded::Miss => "miss",
            Forwarded::Request => "request",
            Forwarded::Method => "method",
            Forwarded::Bypass => "bypass",
        }
    }
}

/// Why the Manager's answer was not stored (Cache-Status `detail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotStored {
    /// Not a 200.
    Status,
    SetCookie,
    /// `Cache-Control: no-store`, `private` or `no-cache`.
    NoStore,
    /// Larger than `cache.max_entry_bytes`.
    TooLarge,
    /// A write to its collection completed while it was on its way: it may predate the write.
    Written,
}

impl NotStored {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            NotStored::Status => "status",
            NotStored::SetCookie => "set-cookie",
            NotStored::NoStore => "no-store",
            NotStored::TooLarge => "too-large",
            NotStored::Written => "written",
        }
    }
}

/// The Cache-Status of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheStatus {
    /// Answered from the cache, fresh for `ttl` more seconds.
    Hit {
        ttl: u64,
    },
    /// Forwarded, and the answer not meant to be stored.
    Passed(Forwarded),
    Stored(Forwarded),
    NotStored(Forwarded, NotStored),
}

impl CacheStatus {
    pub(crate) fn header_value(self) -> HeaderValue {
        let ttl;
        let parts: &[&str] = match self {
            CacheStatus::Hit { ttl: seconds } => {
                ttl = seconds.to_string();
                &[NAME, "; hit; ttl=", &ttl]
            }
            CacheStatus::Passed(fwd) => &[NAME, "; fwd=", fwd.as_str()],
            CacheStatus::Stored(fwd) => &[NAME, "; fwd=", fwd.as_str(), "; stored"],
            CacheStatus::NotStored(fwd, why) => &[NAME, "; fwd=", fwd.as_str(), "; detail=", why.as_str()],
        };
        HeaderValue::try_from(parts.concat()).expect("ASCII")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each status reads as RFC 9211 writes it.
    #[test]
    fn header_values() {
        for (status, text) in [
            (CacheStatus::Hit { ttl: 3 }, "ovirt-gateway; hit; ttl=3"),
            (
                CacheStatus::Passed(Forwarded::Method),
                "ovirt-gateway; fwd=method",
            ),
            (
                CacheStatus::Stored(Forwarded::Request),
                "ovirt-gateway; fwd=request; stored",
            ),
            (
                CacheStatus::NotStored(Forwarded::Miss, NotStored::SetCookie),
                "ovirt-gateway; fwd=miss; detail=set-cookie",
            ),
        ] {
            assert_eq!(status.header_value(), text);
        }
    }
}
