//! Basic credentials: read from the Authorization header, exchanged for a session at a Manager
//! once per user (concurrent first requests share one login), a refusal remembered for
//! `auth.failure_cache`.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use tokio::time::Instant;

use super::sso_client::{self, LoginError, UpstreamToken, authenticated_user, password_grant};
use super::{AuthError, Authenticator, Ended, Failure, Lease, ended, spawn_revocation};
use crate::ratelimit::logins::Logins;
use crate::upstream::Upstream;

/// A session's cache key: HMAC-SHA256 of the Manager, the user and the password.
pub(crate) type SessionKey = [u8; 32];

/// A user's login at one Manager.
pub(crate) struct Session {
    /// `user@profile`, the user as the Manager reports it (`ManagerUser::name`).
    pub user: String,
    pub token: UpstreamToken,
    /// The user's id at the Manager.
    pub user_id: Option<String>,
    /// The Manager that issued the token, to revoke it there when the session ends.
    pub(super) upstream: Arc<Upstream>,
    pub(super) lease: Lease,
}

/// Credentials from an `Authorization: Basic` header, for the life of one request.
pub(crate) struct BasicCredentials {
    pub user: String,
    pub(super) password: String,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// The credentials of an `Authorization` value when it is Basic (`None` for another scheme);
    /// a malformed one, or a user name without `@profile`, is a 401 (and counted). The engine
    /// checks the scheme with a prefix test (`startsWith("Basic")`), and so does this.
    pub(crate) fn basic_credentials(
        &self,
        value: &HeaderValue,
    ) -> Result<Option<BasicCredentials>, AuthError> {
        let Some(encoded) = value.as_bytes().strip_prefix(b"Basic") else {
            return Ok(None);
        };
        let malformed = || {
            self.failed(Failure::Malformed);
            AuthError::Malformed
        };
        let decoded = STANDARD
            .decode(encoded.trim_ascii())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(malformed)?;
        let (user, password) = decoded.split_once(':').ok_or_else(malformed)?;
        if !user.contains('@') {
            self.failed(Failure::NoProfile);
            return Err(AuthError::NoProfile {
                user: user.to_owned(),
            });
        }
        Ok(Some(BasicCredentials {
            user: user.to_owned(),
            password: password.to_owned(),
        }))
    }

    pub(super) fn key(&self, manager: &str, credentials: &BasicCredentials) -> SessionKey {
        self.key_of(manager, &credentials.user, &credentials.password)
    }

    /// The user's session at this Manager, logging in when there is none. Concurrent callers
    /// with the same credentials wait for one login.
    ///
    /// `logins` (and the client's address) count the outcome for the login lockouts, telling
    /// them whether the Manager (and its directory) was asked.
    pub(crate) async fn session(
        &self,
        upstream: &Arc<Upstream>,
        credentials: &BasicCredentials,
        logins: Option<(&Logins, IpAddr)>,
    ) -> Result<Arc<Session>, AuthError> {
        let key = self.key(upstream.name(), credentials);
        if let Some(message) = self.refusals.get(&key).await {
            self.failed(Failure::RefusedCached);
            if let Some((logins, client)) = logins {
                logins.failed(&credentials.user, client, false);
            }
            return Err(AuthError::Refused(message.to_string()));
        }
        if let Some(session) = self.sessions.get(&key).await {
            if !session.lease.expired(&self.config, Instant::now()) {
                session.lease.touch();
                self.touch_shared(|shared| Self::session_record(shared, &key), &session.lease);
                if let Some((logins, client)) = logins {
                    logins.succeeded(&credentials.user, client);
                }
                return Ok(session);
            }
            self.end_session(&key, Ended::Expired).await;
        }
        let fresh = std::sync::atomic::AtomicBool::new(false);
        let login = async {
            let outcome =
                password_grant(upstream, &self.metrics, &credentials.user, &credentials.password).await;
            self.count_login(upstream, &outcome);
            let token = outcome?;
            let reported = authenticated_user(upstream, &self.metrics, &token).await;
            self.metrics.sessions.inc();
            fresh.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok::<_, LoginError>(Arc::new(Session {
                user: reported.name(&credentials.user),
                token,
                user_id: reported.id,
                upstream: upstream.clone(),
                lease: Lease::new(),
            }))
        };
        // With [shared], from the store, or one replica logs in while the others wait.
        let login = async {
            match &self.shared {
                Some(shared) => self.shared_session(shared, &key, upstream, login).await,
                None => login.await,
            }
        };
        // Boxed: the login's future is large and made once per session; unboxed it would be
        // moved with every request's future (docs/performance.md, "Against nginx").
        match self.sessions.try_get_with(key, Box::pin(login)).await {
            Ok(session) => {
                if fresh.load(std::sync::atomic::Ordering::Relaxed) {
                    // Apply max_sessions now, not at moka's next housekeeping, so that the
                    // tokens of the sessions it pushes out are revoked now.
                    self.sessions.run_pending_tasks().await;
                }
                if let Some((logins, client)) = logins {
                    logins.succeeded(&credentials.user, client);
                }
                Ok(session)
            }
            Err(error) => match error.as_ref() {
                LoginError::Refused(message) => {
                    self.failed(Failure::Refused);
                    if let Some((logins, client)) = logins {
                        logins.failed(&credentials.user, client, true);
                    }
                    self.refusals.insert(key, Arc::from(message.as_str())).await;
                    Err(AuthError::Refused(message.clone()))
                }
                LoginError::Unavailable(cause) => {
                    self.failed(Failure::SsoUnavailable);
                    Err(AuthError::unavailable(upstream, cause.clone()))
                }
            },
        }
    }

    /// Drops a session whose token the Manager no longer accepts (on every replica).
    pub(crate) async fn forget(&self, upstream: &Upstream, credentials: &BasicCredentials) {
        let key = self.key(upstream.name(), credentials);
        if self.sessions.remove(&key).await.is_some() {
            ended(&self.metrics, Ended::Refused);
        }
        self.end_everywhere(|shared| Self::session_record(shared, &key))
            .await;
    }

    /// Ends a session by the gateway's choice (`reason`: a bounded label) and revokes its token.
    pub(super) async fn end_session(&self, key: &SessionKey, reason: Ended) {
        // Whoever removes it revokes it: once, on one replica.
        if let Some(session) = self.sessions.remove(key).await {
            let removed = self
                .end_everywhere(|shared| Self::session_record(shared, key))
                .await;
            ended(&self.metrics, reason);
            if removed {
                revoke_later(&self.metrics, session);
            }
        }
    }

    /// The expiry sweep's end of a session: with `[shared]`, a session idle here but used on
    /// another replica only loses its local copy.
    pub(super) async fn expire_session(&self, key: &SessionKey, now: Instant) {
        let Some(shared) = &self.shared else {
            return self.end_session(key, Ended::Expired).await;
        };
        let Some(session) = self.sessions.get(key).await else {
            return;
        };
        if session.lease.lived(&self.config, now) {
            return self.end_session(key, Ended::Expired).await;
        }
        if let Some(ends) = self.idle_everywhere(Self::session_record(shared, key)).await {
            self.sessions.remove(key).await;
            if ends {
                ended(&self.metrics, Ended::Expired);
                revoke_later(&self.metrics, session);
            }
        }
    }
}

/// Revokes a session's token at its Manager, in the background.
fn revoke_later(metrics: &Arc<crate::metrics::Metrics>, session: Arc<Session>) {
    let metrics = metrics.clone();
    spawn_revocation(async move {
        sso_client::revoke(&session.upstream, &metrics, &session.token).await;
    });
}
