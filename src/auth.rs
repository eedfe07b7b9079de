//! Authentication: Basic credentials exchanged for a Manager's SSO token, once per user, not once
//! per request (a Basic request to the engine costs a full SSO login and logout: OVIRT-API.md
//! section 1.1).
//!
//! Sessions live in a bounded cache keyed by HMAC-SHA256(server secret, Manager, user, password):
//! the password is held only while its request is in flight, never in a key, a log or a metric.
//! Concurrent first requests of one user share one upstream login. A refused login is remembered
//! for `auth.failure_cache`, so the same wrong password does not reach the Manager at full rate.
//!
//! Not yet here (issue 4): the gateway's own SSO endpoints and tokens, session cookies, per-user
//! caps, revocation of upstream tokens on eviction. Until then Bearer tokens, cookies and requests
//! without credentials pass to the Manager untouched, which answers them as before.

pub mod sso_client;
pub mod sso_wire;

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use moka::future::Cache;
use ring::hmac;

use crate::config::AuthConfig;
use crate::fault::Fault;
use crate::metrics::Metrics;
use crate::upstream::Upstream;
use sso_client::{LoginError, UpstreamToken, password_grant};

/// A session's cache key: HMAC-SHA256 of the Manager, the user and the password.
pub type SessionKey = [u8; 32];

/// A user's login at one Manager.
pub struct Session {
    /// `user@profile`, as the client sent it.
    pub user: String,
    pub token: UpstreamToken,
}

/// Credentials from an `Authorization: Basic` header, for the life of one request.
pub struct BasicCredentials {
    pub user: String,
    password: String,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl BasicCredentials {
    /// The credentials of an `Authorization` value when it is Basic (`None` for another scheme).
    /// The engine checks the scheme with a prefix test (`startsWith("Basic")`), and so does this.
    pub fn of_header(value: &HeaderValue) -> Result<Option<BasicCredentials>, Fault> {
        let Some(encoded) = value.as_bytes().strip_prefix(b"Basic") else {
            return Ok(None);
        };
        let malformed = || Fault::Unauthorized {
            detail:
                "The Authorization header is not valid Basic credentials (base64 of user@profile:password)"
                    .into(),
        };
        let decoded = STANDARD
            .decode(encoded.trim_ascii())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(malformed)?;
        let (user, password) = decoded.split_once(':').ok_or_else(malformed)?;
        if !user.contains('@') {
            return Err(Fault::Unauthorized {
                detail: format!(
                    "The user name '{user}' has no profile: write it as user@profile, e.g. admin@internal"
                ),
            });
        }
        Ok(Some(BasicCredentials {
            user: user.to_owned(),
            password: password.to_owned(),
        }))
    }
}

pub struct Authenticator {
    secret: hmac::Key,
    sessions: Cache<SessionKey, Arc<Session>>,
    /// Refused logins: the Manager's message, by session key.
    refusals: Cache<SessionKey, Arc<str>>,
    metrics: Arc<Metrics>,
}

impl Authenticator {
    /// A fresh server secret each start: sessions do not outlive the process anyway.
    pub fn new(config: &AuthConfig, metrics: Arc<Metrics>) -> Authenticator {
        let rng = ring::rand::SystemRandom::new();
        let secret = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system random source works");
        let gauge = metrics.sessions.clone();
        let sessions = Cache::builder()
            .max_capacity(config.max_sessions)
            .time_to_idle(config.session_idle)
            .time_to_live(config.session_lifetime)
            .eviction_listener(move |_key, _session, _cause| gauge.dec())
            .build();
        let refusals = Cache::builder()
            .max_capacity(config.max_sessions)
            .time_to_live(config.failure_cache)
            .build();
        Authenticator {
            secret,
            sessions,
            refusals,
            metrics,
        }
    }

    fn key(&self, manager: &str, credentials: &BasicCredentials) -> SessionKey {
        let mut context = hmac::Context::with_key(&self.secret);
        for part in [manager, &credentials.user, &credentials.password] {
            // Length-prefixed, so that no two different triples hash alike.
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part.as_bytes());
        }
        let tag = context.sign();
        let mut key = [0; 32];
        key.copy_from_slice(tag.as_ref());
        key
    }

    /// The user's session at this Manager, logging in when there is none. Concurrent callers
    /// with the same credentials wait for one login.
    pub async fn session(
        &self,
        upstream: &Upstream,
        credentials: &BasicCredentials,
    ) -> Result<Arc<Session>, Fault> {
        let key = self.key(upstream.name(), credentials);
        if let Some(message) = self.refusals.get(&key).await {
            self.failed("refused_cached");
            return Err(Fault::Unauthorized {
                detail: message.to_string(),
            });
        }
        let login = async {
            let outcome =
                password_grant(upstream, &self.metrics, &credentials.user, &credentials.password).await;
            let result = match &outcome {
                Ok(_) => "ok",
                Err(LoginError::Refused(_)) => "refused",
                Err(LoginError::Unavailable(_)) => "error",
            };
            self.metrics
                .sso_logins_total
                .with_label_values(&[upstream.name(), result])
                .inc();
            let token = outcome?;
            self.metrics.sessions.inc();
            Ok::<_, LoginError>(Arc::new(Session {
                user: credentials.user.clone(),
                token,
            }))
        };
        match self.sessions.try_get_with(key, login).await {
            Ok(session) => Ok(session),
            Err(error) => match error.as_ref() {
                LoginError::Refused(message) => {
                    self.failed("refused");
                    self.refusals.insert(key, Arc::from(message.as_str())).await;
                    Err(Fault::Unauthorized {
                        detail: message.clone(),
                    })
                }
                LoginError::Unavailable(cause) => {
                    self.failed("sso_unavailable");
                    Err(Fault::SsoUnavailable {
                        manager: upstream.name().to_owned(),
                        cause: cause.clone(),
                        retry_after: upstream.config.health_interval,
                    })
                }
            },
        }
    }

    /// Drops a session whose token the Manager no longer accepts.
    pub async fn forget(&self, upstream: &Upstream, credentials: &BasicCredentials) {
        self.sessions
            .invalidate(&self.key(upstream.name(), credentials))
            .await;
    }

    /// Counts a refused authentication; `reason` is a bounded label.
    pub fn failed(&self, reason: &'static str) {
        self.metrics
            .auth_failures_total
            .with_label_values(&[reason])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(raw))).unwrap()
    }

    /// `user@profile:password` is Basic credentials; the password may contain colons.
    #[test]
    fn basic_credentials() {
        let credentials = BasicCredentials::of_header(&basic("alice@internal:pa:ss"))
            .unwrap()
            .unwrap();
        assert_eq!(credentials.user, "alice@internal");
        assert_eq!(credentials.password, "pa:ss");
    }

    /// Another scheme is not Basic and not an error here.
    #[test]
    fn bearer_is_not_basic() {
        let value = HeaderValue::from_static("Bearer abc");
        assert!(BasicCredentials::of_header(&value).unwrap().is_none());
    }

    /// Bad base64 and a missing colon are malformed credentials (401).
    #[test]
    fn malformed_basic() {
        for value in [HeaderValue::from_static("Basic !!!"), basic("no-colon")] {
            let fault = BasicCredentials::of_header(&value).err().unwrap();
            assert_eq!(fault.status(), http::StatusCode::UNAUTHORIZED);
        }
    }

    /// A user name without `@profile` is refused before any login, naming the problem.
    #[test]
    fn user_without_profile() {
        let fault = BasicCredentials::of_header(&basic("admin:secret")).err().unwrap();
        assert!(fault.to_string().contains("user@profile"), "{fault}");
        assert!(!fault.to_string().contains("secret"));
    }

    /// The password never shows in Debug output.
    #[test]
    fn credentials_debug_hides_the_password() {
        let credentials = BasicCredentials::of_header(&basic("a@b:hunter2"))
            .unwrap()
            .unwrap();
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }

    /// Session keys differ by Manager, user and password, and do not depend on where one part
    /// ends and the next begins.
    #[test]
    fn session_keys_separate_their_parts() {
        let auth = Authenticator::new(
            &AuthConfig {
                session_idle: std::time::Duration::from_secs(60),
                session_lifetime: std::time::Duration::from_secs(60),
                max_sessions: 10,
                failure_cache: std::time::Duration::from_secs(1),
            },
            Arc::new(Metrics::new()),
        );
        let credentials = |user: &str, password: &str| BasicCredentials {
            user: user.into(),
            password: password.into(),
        };
        let key = auth.key("m", &credentials("a@i", "p"));
        assert_eq!(key, auth.key("m", &credentials("a@i", "p")));
        assert_ne!(key, auth.key("n", &credentials("a@i", "p")));
        assert_ne!(key, auth.key("m", &credentials("a@i", "q")));
        assert_ne!(
            auth.key("m", &credentials("a@i", "bc")),
            auth.key("m", &credentials("a@ib", "c"))
        );
    }
}
