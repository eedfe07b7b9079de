//! Logins at the gateway's SSO endpoint: one token at each Manager the host covers, the gateway's
//! signed token naming the login, at most `auth.max_logins_per_user` per user, and every upstream
//! token revoked when the login ends.

use std::net::IpAddr;
use std::sync::Arc;

use ring::hmac;
use tokio::time::Instant;

use super::basic::{BasicCredentials, SessionKey};
use super::sso_client::{self, LoginError, UpstreamToken, authenticated_user, password_grant};
use super::tokens::Claims;
use super::{AuthError, Authenticator, Ended, Failure, Lease, ended, spawn_revocation};
use crate::metrics::Metrics;
use crate::ratelimit::logins::Logins;
use crate::upstream::Upstream;

/// A Manager's token of a login, and the user's id there.
#[derive(Clone)]
pub(crate) struct ManagerToken {
    pub(super) upstream: Arc<Upstream>,
    pub token: UpstreamToken,
    pub user_id: Option<String>,
    /// The user's name as this Manager reports it (`ManagerUser::name`).
    pub(super) name: String,
}

/// A login at the gateway's SSO endpoint: the user and their token at each Manager it covers.
pub(crate) struct Login {
    pub user: String,
    pub(super) tokens: Vec<ManagerToken>,
    pub(super) lease: Lease,
}

impl Login {
    pub(crate) fn token_for(&self, manager: &str) -> Option<&ManagerToken> {
        self.tokens.iter().find(|t| t.upstream.name() == manager)
    }
}

impl Authenticator {
    /// Logs in at every Manager in `upstreams` (concurrently) and, when all accept, opens a login and
    /// returns the gateway's token for it and its expiry in milliseconds.
    pub(crate) async fn log_in(
        &self,
        upstreams: &[Arc<Upstream>],
        user: &str,
        password: &str,
        logins: Option<(&Logins, IpAddr)>,
    ) -> Result<(String, i64), AuthError> {
        let outcomes = futures_util::future::join_all(upstreams.iter().map(|upstream| async move {
            // The same refusal cache as Basic sessions: a repeated wrong password at the SSO
            // endpoint does not reach the Manager either.
            let key = self.key_of(upstream.name(), user, password);
            if let Some(message) = self.refusals.get(&key).await {
                self.failed(Failure::RefusedCached);
                if let Some((logins, client)) = logins {
                    logins.failed(user, client, false);
                }
                return Err(LoginError::Refused(message.to_string()));
            }
            let outcome = password_grant(upstream, &self.metrics, user, password).await;
            self.count_login(upstream, &outcome);
            match &outcome {
                Err(LoginError::Refused(message)) => {
                    self.failed(Failure::Refused);
                    if let Some((logins, client)) = logins {
                        logins.failed(user, client, true);
                    }
                    self.refusals.insert(key, Arc::from(message.as_str())).await;
                }
                Err(LoginError::Unavailable(_)) => self.failed(Failure::SsoUnavailable),
                Ok(_) => {}
            }
            let token = outcome?;
            let reported = authenticated_user(upstream, &self.metrics, &token).await;
            Ok::<_, LoginError>(ManagerToken {
                upstream: upstream.clone(),
                token,
                user_id: reported.id.clone(),
                name: reported.name(user),
            })
        }))
        .await;
        let mut tokens = Vec::new();
        let mut failure = None;
        for (upstream, outcome) in upstreams.iter().zip(outcomes) {
            match outcome {
                Ok(token) => tokens.push(token),
                Err(LoginError::Refused(message)) => failure = Some(AuthError::Refused(message)),
                Err(LoginError::Unavailable(cause)) if failure.is_none() => {
                    failure = Some(AuthError::unavailable(upstream, cause));
                }
                Err(LoginError::Unavailable(_)) => {}
            }
        }
        // One principal per person: the name the (first) Manager reports, not the spelling typed.
        let user = tokens.first().map_or(user, |t| t.name.as_str()).to_owned();
        let user = user.as_str();
        let login = Arc::new(Login {
            user: user.to_owned(),
            tokens,
            lease: Lease::new(),
        });
        if let Some(failure) = failure {
            // Tokens some Managers gave are of no use without the others'.
            revoke_all(&login, &self.metrics).await;
            return Err(failure);
        }
        let sid = session_id();
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user.to_owned(),
            sid: sid.clone(),
            iat: now,
            exp: now + self.config.session_lifetime.as_secs(),
        };
        self.metrics.sessions.inc();
        self.logins.insert(sid.clone(), login).await;
        self.logins.run_pending_tasks().await;
        let oldest = {
            let mut by_user = self.logins_by_user.lock().unwrap_or_else(|p| p.into_inner());
            let open = by_user.entry(user.to_owned()).or_default();
            open.push_back(sid);
            if open.len() > self.config.max_logins_per_user {
                open.pop_front()
            } else {
                None
            }
        };
        // The user's oldest login makes room: ended and revoked as a logout would be.
        if let Some(oldest) = oldest
            && let Some(login) = self.logins.remove(&oldest).await
        {
            ended(&self.metrics, Ended::Replaced);
            revoke_all(&login, &self.metrics).await;
        }
        Ok((self.keys.issue(&claims), (claims.exp * 1000) as i64))
    }

    /// A login of its own for a persistent session opened with Basic credentials (as on the
    /// engine, where each persistent session is a login); the gateway token for its cookie.
    pub(crate) async fn persistent_login(
        &self,
        upstream: &Arc<Upstream>,
        credentials: &BasicCredentials,
    ) -> Result<String, AuthError> {
        // The credentials were just accepted for the request's session: nothing to count.
        self.log_in(
            std::slice::from_ref(upstream),
            &credentials.user,
            &credentials.password,
            None,
        )
        .await
        .map(|(token, _)| token)
    }

    /// The login a gateway token stands for, if the token is valid and the login still open.
    pub(crate) async fn login_of(&self, token: &str) -> Option<(Arc<Claims>, Arc<Login>)> {
        let key = self.token_key(token);
        let claims = match self.verified.get(&key).await {
            Some(claims) if claims.exp > jsonwebtoken::get_current_timestamp() => claims,
            Some(_) => return None,
            None => {
                let claims = Arc::new(self.keys.verify(token)?);
                self.verified.insert(key, claims.clone()).await;
                claims
            }
        };
        let login = self.logins.get(&claims.sid).await?;
        if login.lease.expired(&self.config, Instant::now()) {
            self.end_login_and_revoke(&claims.sid, Ended::Expired).await;
            return None;
        }
        login.lease.touch();
        Some((claims, login))
    }

    fn token_key(&self, token: &str) -> SessionKey {
        let tag = hmac::sign(&self.secret, token.as_bytes());
        let mut key = [0; 32];
        key.copy_from_slice(tag.as_ref());
        key
    }

    /// Ends the login of a gateway token and revokes its upstream tokens; false when the token is
    /// not valid or its login already ended.
    pub(crate) async fn log_out(&self, token: &str) -> bool {
        let Some(claims) = self.keys.verify(token) else {
            return false;
        };
        match self.logins.remove(&claims.sid).await {
            Some(login) => {
                ended(&self.metrics, Ended::Logout);
                revoke_all(&login, &self.metrics).await;
                true
            }
            None => false,
        }
    }

    /// Ends a login whose upstream token a Manager refused; the client logs in again.
    pub(crate) async fn end_login(&self, sid: &str) {
        if self.logins.remove(sid).await.is_some() {
            ended(&self.metrics, Ended::Refused);
        }
    }

    /// Ends a login by the gateway's choice and revokes its tokens in the background.
    pub(super) async fn end_login_and_revoke(&self, sid: &str, reason: Ended) {
        if let Some(login) = self.logins.remove(sid).await {
            ended(&self.metrics, reason);
            let metrics = self.metrics.clone();
            spawn_revocation(async move { revoke_all(&login, &metrics).await });
        }
    }
}

/// Revokes every upstream token of a login, concurrently.
pub(super) async fn revoke_all(login: &Login, metrics: &Metrics) {
    futures_util::future::join_all(
        login
            .tokens
            .iter()
            .map(|t| sso_client::revoke(&t.upstream, metrics, &t.token)),
    )
    .await;
}

/// A random session id (128 bits, hex).
fn session_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
