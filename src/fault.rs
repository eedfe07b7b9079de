//! Why the gateway answers a request itself: each [`Fault`] with its status, whom it blames, and
//! the reason and detail of its oVirt fault body (docs/engine.md, section 4.4; docs/invariants.md,
//! invariant 7). A leaf: it names no other module of the crate, so any module may return a fault
//! and none of them is needed to read one. pipeline/rescue.rs turns a fault into the response.
//! This module never sees credentials, so a fault can never echo one.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

/// Who is to blame for a fault; decides its log level and is recorded in the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blame {
    /// The client sent something we refuse; nothing is wrong with the gateway or the Manager.
    Client,
    /// The client's credentials are missing, malformed or refused.
    Credentials,
    /// The Manager (or the replicas' shared store) could not be reached or did not answer in
    /// time.
    Upstream,
}

/// Which phase of an upstream exchange ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeoutPhase {
    Connect,
    ResponseHeaders,
}

impl TimeoutPhase {
    /// The phase, as the end of "ran out of time ...".
    pub(crate) fn during(self) -> &'static str {
        match self {
            TimeoutPhase::Connect => "connecting",
            TimeoutPhase::ResponseHeaders => "waiting for the response headers",
        }
    }
}

/// Everything that makes the gateway answer a request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
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
    /// The merged view cannot tell which member a request is for (docs/federation.md, "The
    /// merged view"): the detail says how to name one.
    MergedConflict { detail: String },
    /// The merged view cannot tell whether what a request names exists: no member that
    /// answered has it, and `manager` could not answer (docs/federation.md, "Ids").
    MergedIncomplete {
        manager: String,
        detail: String,
        retry_after: Duration,
    },
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
    /// The Manager's circuit breaker is open: the request was not sent.
    CircuitOpen {
        manager: String,
        failures: u32,
        retry_after: Duration,
    },
    /// Credentials are malformed or were refused (docs/invariants.md, invariant 6: the only 401).
    Unauthorized { detail: String },
    /// The gateway refuses this request whoever sends it (docs/invariants.md, invariant 6: 403, never 401).
    Forbidden { detail: String },
    /// The Manager's concurrency gate refused the request: too many were waiting, or none of
    /// its places came free in time. Never sent.
    ManagerBusy {
        manager: String,
        /// Why no place was given: too many waiting, or none came free in time.
        why: &'static str,
        retry_after: Duration,
    },
    /// Too many failed logins of this user from this address, or from this address: the login is
    /// refused before the Manager is asked (429, not 401: the credentials were not even tried).
    LoginLocked { retry_after: Duration },
    /// A rate limit refused the request (docs/rate-limiting.md): 429, never 401 or 403. `policy`
    /// and `state` are the values of the RateLimit-Policy and RateLimit headers.
    TooManyRequests {
        detail: String,
        retry_after: Duration,
        policy: String,
        state: String,
    },
    /// The Manager's SSO could not log the user in for another reason than the credentials: never
    /// a 401, which would make the SDK log in again in a loop.
    SsoUnavailable {
        manager: String,
        cause: String,
        retry_after: Duration,
    },
    /// A gateway token this replica does not hold, while the shared store that would know it
    /// cannot be reached (docs/replicas.md): maybe valid, so not a 401.
    SharedStoreUnavailable { retry_after: Duration },
}

impl Fault {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Fault::BadRequest { .. } | Fault::AmbiguousPath { .. } => StatusCode::BAD_REQUEST,
            Fault::NoRoute | Fault::NotForwarded { .. } => StatusCode::NOT_FOUND,
            Fault::MergedConflict { .. } => StatusCode::CONFLICT,
            Fault::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Fault::TokenWithheld { .. } | Fault::UpstreamAnswer { .. } => StatusCode::BAD_GATEWAY,
            Fault::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Fault::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Fault::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Fault::UpstreamUnreachable { .. } => StatusCode::BAD_GATEWAY,
            Fault::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Fault::UpstreamNotReady { .. }
            | Fault::CircuitOpen { .. }
            | Fault::SsoUnavailable { .. }
            | Fault::SharedStoreUnavailable { .. }
            | Fault::MergedIncomplete { .. }
            | Fault::ManagerBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Fault::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Fault::TooManyRequests { .. } | Fault::LoginLocked { .. } => StatusCode::TOO_MANY_REQUESTS,
            Fault::Forbidden { .. } => StatusCode::FORBIDDEN,
        }
    }

    pub(crate) fn blame(&self) -> Blame {
        match self {
            Fault::BadRequest { .. }
            | Fault::AmbiguousPath { .. }
            | Fault::NoRoute
            | Fault::NotForwarded { .. }
            | Fault::MergedConflict { .. }
            | Fault::MethodNotAllowed { .. }
            | Fault::HeadersTooLarge { .. }
            | Fault::BodyTooLarge { .. }
            | Fault::RequestTimeout { .. }
            | Fault::Forbidden { .. }
            | Fault::TooManyRequests { .. }
            | Fault::LoginLocked { .. } => Blame::Client,
            Fault::Unauthorized { .. } => Blame::Credentials,
            Fault::UpstreamUnreachable { .. }
            | Fault::UpstreamTimeout { .. }
            | Fault::UpstreamNotReady { .. }
            | Fault::CircuitOpen { .. }
            | Fault::TokenWithheld { .. }
            | Fault::UpstreamAnswer { .. }
            | Fault::ManagerBusy { .. }
            | Fault::MergedIncomplete { .. }
            | Fault::SsoUnavailable { .. }
            | Fault::SharedStoreUnavailable { .. } => Blame::Upstream,
        }
    }

    /// The short `<reason>` of the fault body.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Fault::BadRequest { .. } => "Bad request",
            Fault::AmbiguousPath { .. } => "Ambiguous request path",
            Fault::NoRoute | Fault::NotForwarded { .. } => "Not found",
            Fault::MergedConflict { .. } => "Ambiguous in the merged view",
            Fault::MergedIncomplete { .. } => "Merged view incomplete",
            Fault::MethodNotAllowed { .. } => "Method not allowed",
            Fault::TokenWithheld { .. } => "Answer withheld",
            Fault::UpstreamAnswer { .. } => "Manager answer refused",
            Fault::HeadersTooLarge { .. } => "Request headers too large",
            Fault::BodyTooLarge { .. } => "Request body too large",
            Fault::RequestTimeout { .. } => "Request timeout",
            Fault::UpstreamUnreachable { .. } => "Manager unreachable",
            Fault::UpstreamTimeout { .. } => "Manager timeout",
            Fault::UpstreamNotReady { .. } => "Manager not ready",
            Fault::CircuitOpen { .. } => "Manager unavailable",
            Fault::ManagerBusy { .. } => "Manager busy",
            Fault::Unauthorized { .. } => "Unauthorized",
            Fault::Forbidden { .. } => "Forbidden",
            Fault::TooManyRequests { .. } => "Too many requests",
            Fault::LoginLocked { .. } => "Too many failed logins",
            Fault::SsoUnavailable { .. } => "Manager SSO unavailable",
            Fault::SharedStoreUnavailable { .. } => "Gateway state unavailable",
        }
    }

    /// The `<detail>` of the fault body: what happened and what the client can do about it.
    pub(crate) fn detail(&self) -> String {
        match self {
            Fault::BadRequest { detail }
            | Fault::AmbiguousPath { detail }
            | Fault::NotForwarded { detail }
            | Fault::MergedConflict { detail }
            | Fault::RequestTimeout { detail }
            | Fault::Unauthorized { detail }
            | Fault::Forbidden { detail }
            | Fault::TooManyRequests { detail, .. } => detail.clone(),
            Fault::NoRoute => "No Manager is published at this host and path".to_owned(),
            Fault::MethodNotAllowed { allow } => {
                format!("The gateway forwards only the methods the oVirt API uses: {allow}")
            }
            Fault::TokenWithheld { manager } => format!(
                "Manager '{manager}' answered with the session's SSO token, which never leaves the gateway"
            ),
            Fault::ManagerBusy {
                manager,
                why,
                retry_after,
            } => {
                format!(
                    "Manager '{manager}' is serving as many requests as the gateway lets through and {why}; retry in {} s",
                    retry_seconds(*retry_after)
                )
            }
            Fault::LoginLocked { retry_after } => format!(
                "Too many failed logins of this user from this address, or from this address; retry in {} s",
                retry_seconds(*retry_after)
            ),
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
            Fault::CircuitOpen {
                manager,
                failures,
                retry_after,
            } => format!(
                "Manager '{manager}' failed {failures} exchanges in a row; the gateway sends it nothing for {} s, then tries one request",
                retry_seconds(*retry_after)
            ),
            Fault::SsoUnavailable { manager, cause, .. } => {
                format!("The gateway could not log in at Manager '{manager}': {cause}")
            }
            Fault::MergedIncomplete { manager, detail, .. } => {
                format!("{detail} (Manager '{manager}')")
            }
            Fault::SharedStoreUnavailable { retry_after } => format!(
                "This gateway replica does not hold this token's login and cannot reach the store the replicas share to look it up; retry in {} s",
                retry_seconds(*retry_after)
            ),
        }
    }
}

/// Whole seconds to wait, rounded up: a client that waits that long is let through.
pub(crate) fn retry_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason(), self.detail())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One fault of every variant. Each arm names the next variant to build, and the match is
    /// exhaustive: a new variant does not compile until it has its arm, and `every_variant_once`
    /// fails until the chain reaches it.
    pub(crate) fn every_fault() -> Vec<Fault> {
        let secs = Duration::from_secs(10);
        let mut all = Vec::new();
        let mut next = Some(Fault::BadRequest { detail: "x".into() });
        while let Some(fault) = next.take() {
            next = match &fault {
                Fault::BadRequest { .. } => Some(Fault::MethodNotAllowed { allow: "GET" }),
                Fault::MethodNotAllowed { .. } => Some(Fault::TokenWithheld { manager: "m".into() }),
                Fault::TokenWithheld { .. } => Some(Fault::AmbiguousPath { detail: "x".into() }),
                Fault::AmbiguousPath { .. } => Some(Fault::NoRoute),
                Fault::NoRoute => Some(Fault::MergedConflict { detail: "x".into() }),
                Fault::MergedConflict { .. } => Some(Fault::NotForwarded { detail: "x".into() }),
                Fault::NotForwarded { .. } => Some(Fault::HeadersTooLarge { limit: 1 }),
                Fault::HeadersTooLarge { .. } => Some(Fault::BodyTooLarge { limit: 1 }),
                Fault::BodyTooLarge { .. } => Some(Fault::RequestTimeout { detail: "d".into() }),
                Fault::RequestTimeout { .. } => Some(Fault::UpstreamAnswer {
                    manager: "m".into(),
                    detail: "d".into(),
                }),
                Fault::UpstreamAnswer { .. } => Some(Fault::UpstreamUnreachable {
                    manager: "m".into(),
                    cause: "refused".into(),
                }),
                Fault::UpstreamUnreachable { .. } => Some(Fault::UpstreamTimeout {
                    manager: "m".into(),
                    phase: TimeoutPhase::Connect,
                }),
                Fault::UpstreamTimeout { .. } => Some(Fault::UpstreamNotReady {
                    manager: "m".into(),
                    retry_after: secs,
                }),
                Fault::UpstreamNotReady { .. } => Some(Fault::CircuitOpen {
                    manager: "m".into(),
                    failures: 5,
                    retry_after: secs,
                }),
                Fault::CircuitOpen { .. } => Some(Fault::Unauthorized { detail: "x".into() }),
                Fault::Unauthorized { .. } => Some(Fault::Forbidden { detail: "x".into() }),
                Fault::Forbidden { .. } => Some(Fault::ManagerBusy {
                    manager: "m".into(),
                    why: "no place came free in time",
                    retry_after: secs,
                }),
                Fault::ManagerBusy { .. } => Some(Fault::LoginLocked { retry_after: secs }),
                Fault::LoginLocked { .. } => Some(Fault::TooManyRequests {
                    detail: "x".into(),
                    retry_after: secs,
                    policy: "\"user\";q=10;w=1".into(),
                    state: "\"user\";r=0;t=10".into(),
                }),
                Fault::TooManyRequests { .. } => Some(Fault::SsoUnavailable {
                    manager: "m".into(),
                    cause: "down".into(),
                    retry_after: secs,
                }),
                Fault::SsoUnavailable { .. } => Some(Fault::MergedIncomplete {
                    manager: "m".into(),
                    detail: "d".into(),
                    retry_after: secs,
                }),
                Fault::MergedIncomplete { .. } => Some(Fault::SharedStoreUnavailable { retry_after: secs }),
                Fault::SharedStoreUnavailable { .. } => None,
            };
            all.push(fault);
        }
        all
    }

    /// The chain reaches every variant once.
    #[test]
    fn every_variant_once() {
        let all = every_fault();
        let kinds: std::collections::HashSet<_> = all.iter().map(std::mem::discriminant).collect();
        assert_eq!(kinds.len(), all.len());
        assert_eq!(all.len(), 23);
    }

    /// Each fault maps to its documented status code (docs/invariants.md, invariant 6: 401 only
    /// for credentials, 403 never for them) and blames whom it should.
    #[test]
    fn each_fault_maps_to_its_status_and_blame() {
        for fault in every_fault() {
            let (status, blame) = match &fault {
                Fault::BadRequest { .. } | Fault::AmbiguousPath { .. } => (400, Blame::Client),
                Fault::Unauthorized { .. } => (401, Blame::Credentials),
                Fault::Forbidden { .. } => (403, Blame::Client),
                Fault::NoRoute | Fault::NotForwarded { .. } => (404, Blame::Client),
                Fault::MethodNotAllowed { .. } => (405, Blame::Client),
                Fault::MergedConflict { .. } => (409, Blame::Client),
                Fault::RequestTimeout { .. } => (408, Blame::Client),
                Fault::BodyTooLarge { .. } => (413, Blame::Client),
                Fault::TooManyRequests { .. } | Fault::LoginLocked { .. } => (429, Blame::Client),
                Fault::HeadersTooLarge { .. } => (431, Blame::Client),
                Fault::TokenWithheld { .. }
                | Fault::UpstreamAnswer { .. }
                | Fault::UpstreamUnreachable { .. } => (502, Blame::Upstream),
                Fault::UpstreamNotReady { .. }
                | Fault::CircuitOpen { .. }
                | Fault::ManagerBusy { .. }
                | Fault::MergedIncomplete { .. }
                | Fault::SsoUnavailable { .. }
                | Fault::SharedStoreUnavailable { .. } => (503, Blame::Upstream),
                Fault::UpstreamTimeout { .. } => (504, Blame::Upstream),
            };
            assert_eq!(fault.status().as_u16(), status, "{fault:?}");
            assert_eq!(fault.blame(), blame, "{fault:?}");
        }
    }

    /// A wait is rounded up to whole seconds.
    #[test]
    fn retry_seconds_round_up() {
        assert_eq!(retry_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_seconds(Duration::from_secs(2)), 2);
        assert_eq!(retry_seconds(Duration::from_millis(2001)), 3);
    }
}
