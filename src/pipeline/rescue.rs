//! The one place where a request's [`Fault`] becomes its response (as linkerd2-proxy's
//! ServerRescue does): an oVirt fault body in the client's representation, `application/xml` by
//! default and JSON when the client asked for it (docs/engine.md, sections 3 and 4.4), a correct
//! Content-Length, ASCII-only header values, and the headers the fault calls for (the Basic
//! challenge on a 401, Retry-After on a 503 or 429, Allow on a 405). The domain modules' errors
//! become faults here too.

use bytes::Bytes;
use http::Response;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};

use crate::auth::AuthError;
use crate::body::{GatewayBody, RequestBodyError};
use crate::fault::{Fault, retry_seconds};
use crate::token_guard::Withheld;
use crate::upstream::SendError;
use crate::wire::{self, Representation};

impl From<AuthError> for Fault {
    fn from(error: AuthError) -> Fault {
        match error {
            AuthError::Malformed | AuthError::NoProfile { .. } | AuthError::Refused(_) => {
                Fault::Unauthorized {
                    detail: error.to_string(),
                }
            }
            AuthError::RefusedAt { .. } => Fault::Forbidden {
                detail: error.to_string(),
            },
            AuthError::Unavailable {
                manager,
                cause,
                retry_after,
            } => Fault::SsoUnavailable {
                manager,
                cause,
                retry_after,
            },
            AuthError::StoreUnavailable { retry_after } => Fault::SharedStoreUnavailable { retry_after },
        }
    }
}

impl From<SendError> for Fault {
    fn from(error: SendError) -> Fault {
        match error {
            SendError::Busy {
                manager,
                why,
                retry_after,
            } => Fault::ManagerBusy {
                manager,
                why,
                retry_after,
            },
            SendError::Timeout { manager, phase } => Fault::UpstreamTimeout { manager, phase },
            SendError::NotReady { manager, retry_after } => Fault::UpstreamNotReady { manager, retry_after },
            SendError::CircuitOpen {
                manager,
                failures,
                retry_after,
            } => Fault::CircuitOpen {
                manager,
                failures,
                retry_after,
            },
            SendError::Unreachable { manager, cause } => Fault::UpstreamUnreachable { manager, cause },
            SendError::ClientBody(why) => Fault::from(&why),
        }
    }
}

impl From<Withheld> for Fault {
    fn from(withheld: Withheld) -> Fault {
        match withheld {
            Withheld::TokenInHeaders { manager } => Fault::TokenWithheld { manager },
            Withheld::UnreadableDescriptor { manager, cause } => {
                Fault::UpstreamUnreachable { manager, cause }
            }
        }
    }
}

impl From<&RequestBodyError> for Fault {
    fn from(error: &RequestBodyError) -> Fault {
        match error {
            RequestBodyError::TooLarge { limit } => Fault::BodyTooLarge { limit: *limit },
            RequestBodyError::Stalled(_) | RequestBodyError::TooSlow(_) => Fault::RequestTimeout {
                detail: format!("The gateway stopped waiting for the request body: {error}"),
            },
            RequestBodyError::Malformed(_) => Fault::BadRequest {
                detail: format!("The request body could not be read: {error}"),
            },
        }
    }
}

/// The fault as a response in the representation the client asked for.
pub(super) fn respond(fault: &Fault, repr: Representation) -> Response<GatewayBody> {
    let body = wire::fault_body(repr, fault.reason(), &fault.detail());
    let mut response = Response::new(GatewayBody::full(Bytes::from(body.clone())));
    *response.status_mut() = fault.status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(repr.content_type()));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    match fault {
        Fault::UpstreamNotReady { retry_after, .. }
        | Fault::CircuitOpen { retry_after, .. }
        | Fault::SsoUnavailable { retry_after, .. }
        | Fault::ManagerBusy { retry_after, .. }
        | Fault::MergedIncomplete { retry_after, .. }
        | Fault::SharedStoreUnavailable { retry_after }
        | Fault::LoginLocked { retry_after } => {
            headers.insert(RETRY_AFTER, HeaderValue::from(retry_seconds(*retry_after).max(1)));
        }
        Fault::TooManyRequests {
            retry_after,
            policy,
            state,
            ..
        } => {
            let header = |text: &str| HeaderValue::try_from(text).expect("ASCII");
            headers.insert(RETRY_AFTER, HeaderValue::from(retry_seconds(*retry_after)));
            headers.insert("ratelimit-policy", header(policy));
            headers.insert("ratelimit", header(state));
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

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use http_body_util::BodyExt;

    use super::*;
    use crate::fault::tests::every_fault;

    async fn body_text(response: Response<GatewayBody>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// The domain errors become the faults that blame whom they should: the Manager for its own
    /// failures, the client for its body.
    #[test]
    fn domain_errors_become_their_faults() {
        use std::time::Duration;

        use crate::fault::{Blame, TimeoutPhase};
        let manager = || "m".to_owned();
        let wait = Duration::from_secs(3);
        let cases = [
            (
                Fault::from(SendError::Busy {
                    manager: manager(),
                    why: "too many are waiting",
                    retry_after: wait,
                }),
                503,
                Blame::Upstream,
            ),
            (
                Fault::from(SendError::Timeout {
                    manager: manager(),
                    phase: TimeoutPhase::Connect,
                }),
                504,
                Blame::Upstream,
            ),
            (
                Fault::from(SendError::NotReady {
                    manager: manager(),
                    retry_after: wait,
                }),
                503,
                Blame::Upstream,
            ),
            (
                Fault::from(SendError::Unreachable {
                    manager: manager(),
                    cause: "refused".into(),
                }),
                502,
                Blame::Upstream,
            ),
            (
                Fault::from(SendError::CircuitOpen {
                    manager: manager(),
                    failures: 5,
                    retry_after: wait,
                }),
                503,
                Blame::Upstream,
            ),
            (
                Fault::from(SendError::ClientBody(RequestBodyError::TooLarge { limit: 1 })),
                413,
                Blame::Client,
            ),
            (
                Fault::from(Withheld::TokenInHeaders { manager: manager() }),
                502,
                Blame::Upstream,
            ),
            (
                Fault::from(Withheld::UnreadableDescriptor {
                    manager: manager(),
                    cause: "x".into(),
                }),
                502,
                Blame::Upstream,
            ),
        ];
        for (fault, status, blame) in cases {
            assert_eq!(
                (fault.status().as_u16(), fault.blame()),
                (status, blame),
                "{fault:?}"
            );
        }
    }

    /// A 401 carries the engine's Basic challenge; no other fault does.
    #[test]
    fn challenge_only_on_401() {
        for fault in every_fault() {
            let response = respond(&fault, Representation::Xml);
            let challenge = response.headers().get(WWW_AUTHENTICATE);
            match fault.status() {
                StatusCode::UNAUTHORIZED => assert_eq!(challenge.unwrap(), "Basic realm=\"RESTAPI\""),
                _ => assert!(challenge.is_none(), "{fault:?}"),
            }
        }
    }

    /// A 503 or a 429 tells the client when to come back; no other fault does.
    #[test]
    fn retry_after_only_on_503_and_429() {
        for fault in every_fault() {
            let response = respond(&fault, Representation::Xml);
            let retry_after = response.headers().get(RETRY_AFTER);
            match fault.status() {
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                    assert_eq!(retry_after.unwrap(), "10", "{fault:?}")
                }
                _ => assert!(retry_after.is_none(), "{fault:?}"),
            }
        }
    }

    /// A rate limit's refusal says which limit in the RateLimit headers.
    #[test]
    fn rate_limit_headers_on_429() {
        for fault in every_fault() {
            let response = respond(&fault, Representation::Xml);
            let limited = matches!(fault, Fault::TooManyRequests { .. });
            assert_eq!(response.headers().contains_key("ratelimit-policy"), limited);
            assert_eq!(response.headers().contains_key("ratelimit"), limited);
        }
    }

    /// Every fault renders as an XML fault with its reason and a detail, and a matching length.
    #[tokio::test]
    async fn every_fault_renders_xml_with_length() {
        for fault in every_fault() {
            let response = respond(&fault, Representation::Xml);
            assert_eq!(response.status(), fault.status());
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
        let text = body_text(respond(&Fault::NoRoute, Representation::Json)).await;
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["reason"], "Not found");
        assert_eq!(value["detail"], "No Manager is published at this host and path");
    }

    /// Credentials that are malformed or refused are a 401 naming the problem; a Manager whose
    /// SSO cannot be asked is a 503 (docs/invariants.md, invariant 6).
    #[test]
    fn auth_errors_are_401_or_503() {
        for error in [
            AuthError::Malformed,
            AuthError::NoProfile { user: "admin".into() },
            AuthError::Refused("bad password".into()),
        ] {
            let text = error.to_string();
            let fault = Fault::from(error);
            assert_eq!(fault.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(fault.detail(), text);
        }
        let fault = Fault::from(AuthError::Unavailable {
            manager: "m".into(),
            cause: "down".into(),
            retry_after: std::time::Duration::from_secs(10),
        });
        assert_eq!(fault.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    /// Markup in a detail is escaped, so the fault stays well-formed.
    #[tokio::test]
    async fn xml_detail_is_escaped() {
        let fault = Fault::BadRequest {
            detail: "<a href=\"x\">&'".into(),
        };
        let text = body_text(respond(&fault, Representation::Xml)).await;
        assert!(
            text.contains("<detail>&lt;a href=\"x\"&gt;&amp;'</detail>"),
            "{text}"
        );
    }
}
