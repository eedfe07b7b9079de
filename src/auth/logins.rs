//! Logins at the gateway's SSO endpoint: one token at each Manager the host covers, the gateway's
//! signed token naming the login, at most `auth.max_logins_per_user` per user, and every upstream
//! token revoked when the login ends.
//!
//! A login stands when at least one covered Manager accepts the credentials (docs/federation.md,
//! "Logins with several Managers"). A Manager that refused them is left out of the login (its
//! requests get a 403 that says so); one that could not be asked is logged in at when a request
//! first needs it, one login at a time, with the credentials the login was made with. Those are
//! held, in memory only and wiped when dropped, while some Manager of the login is still to be
//! logged in at, and no longer.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use ring::hmac;
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::basic::{BasicCredentials, SessionKey};
use super::sso_client::{self, LoginError, UpstreamToken, authenticated_user, password_grant};
use super::tokens::Claims;
use super::{AuthError, Authenticator, EXPIRY_SWEEP, Ended, Failure, Lease, ended, spawn_revocation};
use crate::metrics::Metrics;
use crate::ratelimit::logins::Logins;
use crate::shared::Unreachable;
use crate::upstream::Upstream;

/// A Manager's token of a login, and the user's id there.
#[derive(Clone)]
pub(crate) struct ManagerToken {
    pub token: UpstreamToken,
    pub user_id: Option<String>,
    /// The user's name as this Manager reports it (`ManagerUser::name`).
    pub(super) name: String,
}

/// A login at the gateway's SSO endpoint: the user and where it stands at each Manager it covers.
pub(crate) struct Login {
    pub user: String,
    pub(super) members: Vec<Member>,
    /// The credentials, while some member is still to be logged in at.
    pending: tokio::sync::Mutex<Option<Pending>>,
    pub(super) lease: Lease,
    /// When it was made, in milliseconds since the epoch (for the shared store).
    pub(super) began: u64,
}

/// One Manager of a login; its outcome unset while it is still to be logged in at.
pub(super) struct Member {
    pub(super) upstream: Arc<Upstream>,
    pub(super) outcome: OnceLock<Outcome>,
}

impl Member {
    pub(super) fn new(upstream: Arc<Upstream>, outcome: Option<Outcome>) -> Member {
        Member {
            upstream,
            outcome: outcome.map_or_else(OnceLock::new, OnceLock::from),
        }
    }
}

pub(super) enum Outcome {
    Token(ManagerToken),
    /// The Manager refused the credentials: its message.
    Refused(String),
}

/// The user name as typed and the password, for the members still to be logged in at.
struct Pending {
    user: String,
    password: Zeroizing<String>,
}

impl Login {
    /// A login of `user` with no Manager (tests of expiry).
    #[cfg(test)]
    pub(super) fn empty(user: &str) -> Login {
        Login::fetched(user.to_owned(), Vec::new(), Lease::new(), 0)
    }

    /// A login made by another replica: without credentials, so its pending members stay so here.
    pub(super) fn fetched(user: String, members: Vec<Member>, lease: Lease, began: u64) -> Login {
        Login {
            user,
            members,
            pending: tokio::sync::Mutex::new(None),
            lease,
            began,
        }
    }

    /// Every upstream token the login holds, with its Manager.
    pub(super) fn tokens(&self) -> impl Iterator<Item = (&Arc<Upstream>, &UpstreamToken)> {
        self.members.iter().filter_map(|m| match m.outcome.get() {
            Some(Outcome::Token(t)) => Some((&m.upstream, &t.token)),
            _ => None,
        })
    }
}

impl Authenticator {
    /// Logs in at every Manager in `upstreams` (concurrently) and, when at least one accepts,
    /// opens a login and returns the gateway's token for it and its expiry in milliseconds.
    /// Managers failing their health checks are not asked now but on first use; with none
    /// accepting, a Manager that could not be asked makes it a 503 (`Unavailable`), never a 401.
    pub(crate) async fn log_in(
        &self,
        upstreams: &[Arc<Upstream>],
        user: &str,
        password: &str,
        logins: Option<(&Logins, IpAddr)>,
    ) -> Result<(String, i64), AuthError> {
        let outcomes = futures_util::future::join_all(upstreams.iter().map(|upstream| async move {
            // Not kept waiting for a Manager known to be down: it is asked on first use.
            if upstream.failed_health_check() {
                return Err(Asked::Unavailable("it is failing its health checks".to_owned()));
            }
            self.log_in_at(upstream, user, password).await
        }))
        .await;
        let accepted = outcomes.iter().any(Result::is_ok);
        let mut failure = None;
        for (upstream, outcome) in upstreams.iter().zip(&outcomes) {
            match outcome {
                Ok(_) => {}
                Err(Asked::Refused { message, reached }) => {
                    // Wrong credentials count toward lockouts only when no Manager took them.
                    if !accepted && let Some((logins, client)) = logins {
                        logins.failed(user, client, *reached);
                    }
                    failure = Some(AuthError::Refused(message.clone()));
                }
                Err(Asked::Unavailable(cause)) => {
                    if !matches!(failure, Some(AuthError::Unavailable { .. })) {
                        failure = Some(AuthError::unavailable(upstream, cause.clone()));
                    }
                }
            }
        }
        if !accepted {
            return Err(failure.expect("no Manager accepted, so one failed"));
        }
        let members: Vec<Member> = upstreams
            .iter()
            .zip(outcomes)
            .map(|(upstream, outcome)| Member {
                upstream: upstream.clone(),
                outcome: match outcome {
                    Ok(token) => OnceLock::from(Outcome::Token(token)),
                    Err(Asked::Refused { message, .. }) => OnceLock::from(Outcome::Refused(message)),
                    Err(Asked::Unavailable(_)) => OnceLock::new(),
                },
            })
            .collect();
        let pending = members
            .iter()
            .any(|m| m.outcome.get().is_none())
            .then(|| Pending {
                user: user.to_owned(),
                password: Zeroizing::new(password.to_owned()),
            });
        // One principal per person: the name the first Manager that accepted reports, not the
        // spelling typed.
        let user = members
            .iter()
            .find_map(|m| match m.outcome.get() {
                Some(Outcome::Token(t)) => Some(t.name.clone()),
                _ => None,
            })
            .expect("one Manager accepted");
        let user = user.as_str();
        let login = Arc::new(Login {
            user: user.to_owned(),
            members,
            pending: tokio::sync::Mutex::new(pending),
            lease: Lease::new(),
            began: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        });
        let sid = session_id();
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user.to_owned(),
            sid: sid.clone(),
            iat: now,
            exp: now + self.config.session_lifetime.as_secs(),
        };
        self.metrics.sessions.inc();
        self.store_login(&sid, &login).await;
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
        if let Some(oldest) = oldest {
            self.end_login_and_revoke(&oldest, Ended::Replaced).await;
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

    /// The login a gateway token stands for, if the token is valid and the login still open
    /// (made here or, with `[shared]`, on another replica). `StoreUnavailable` when a valid
    /// token's login is not held here and the shared store cannot be asked.
    pub(crate) async fn login_of(&self, token: &str) -> Result<Option<(Arc<Claims>, Arc<Login>)>, AuthError> {
        // This gateway's tokens are JWTs, three parts joined by dots: anything else (a Manager's
        // own token passed through) needs neither the hash nor the lookups.
        if token.bytes().filter(|&b| b == b'.').count() != 2 {
            return Ok(None);
        }
        let key = self.token_key(token);
        let claims = match self.verified.get(&key).await {
            Some(claims) if claims.exp > jsonwebtoken::get_current_timestamp() => claims,
            Some(_) => return Ok(None),
            None => {
                let Some(claims) = self.keys.verify(token) else {
                    return Ok(None);
                };
                let claims = Arc::new(claims);
                self.verified.insert(key, claims.clone()).await;
                claims
            }
        };
        let login = match self.logins.get(&claims.sid).await {
            Some(login) => login,
            None => match self.fetch_login(&claims.sid).await {
                Ok(Some(login)) => login,
                Ok(None) => return Ok(None),
                Err(Unreachable) => return Err(self.store_unavailable()),
            },
        };
        if login.lease.expired(&self.config, Instant::now()) {
            self.end_login_and_revoke(&claims.sid, Ended::Expired).await;
            return Ok(None);
        }
        login.lease.touch();
        self.touch_shared(|shared| Self::login_record(shared, &claims.sid), &login.lease);
        Ok(Some((claims, login)))
    }

    /// The login's token at `upstream`: `Ok(None)` when the login does not cover it; logged in
    /// there now when the login could not be made there before (one login at a time, the others
    /// wait for it). A Manager that refused the login's credentials is `RefusedAt` (a 403); one
    /// still unavailable is `Unavailable` (a 503, never a 401: docs/invariants.md, invariant 6).
    pub(crate) async fn member_token<'a>(
        &self,
        sid: &str,
        login: &'a Login,
        upstream: &Upstream,
    ) -> Result<Option<&'a ManagerToken>, AuthError> {
        let Some(member) = login
            .members
            .iter()
            .find(|m| m.upstream.name() == upstream.name())
        else {
            return Ok(None);
        };
        if member.outcome.get().is_none() {
            let mut pending = login.pending.lock().await;
            if member.outcome.get().is_none() {
                // Boxed, as a login is rare (docs/performance.md, "Against nginx").
                Box::pin(self.log_in_later(sid, login, member, &mut pending)).await?;
            }
        }
        match member.outcome.get() {
            Some(Outcome::Token(token)) => Ok(Some(token)),
            Some(Outcome::Refused(message)) => Err(AuthError::RefusedAt {
                manager: upstream.name().to_owned(),
                message: message.clone(),
            }),
            None => unreachable!("log_in_later settles the member or fails"),
        }
    }

    /// Logs a pending member of a login in, with the credentials the login holds; drops them
    /// once no member is pending.
    async fn log_in_later(
        &self,
        sid: &str,
        login: &Login,
        member: &Member,
        pending: &mut Option<Pending>,
    ) -> Result<(), AuthError> {
        let upstream = &member.upstream;
        let Some(credentials) = pending.as_ref() else {
            return Err(AuthError::unavailable(
                upstream,
                "the login holds no credentials".into(),
            ));
        };
        if upstream.failed_health_check() {
            return Err(AuthError::unavailable(
                upstream,
                "it could not be asked when this login was made and is still failing its health checks"
                    .into(),
            ));
        }
        let outcome = match self
            .log_in_at(upstream, &credentials.user, &credentials.password)
            .await
        {
            Ok(token) => Outcome::Token(token),
            Err(Asked::Refused { message, .. }) => Outcome::Refused(message),
            Err(Asked::Unavailable(cause)) => return Err(AuthError::unavailable(upstream, cause)),
        };
        tracing::info!(manager = %upstream.name(), user = %login.user, "logged in at a Manager this login could not reach before");
        if member.outcome.set(outcome).is_err() {
            unreachable!("members are settled under the pending lock");
        }
        if login.members.iter().all(|m| m.outcome.get().is_some()) {
            *pending = None;
        }
        // The other replicas see this member settled too.
        self.store_login(sid, login).await;
        // A logout meanwhile revoked what the login held then: this token too.
        if !self.logins.contains_key(sid)
            && let Some(Outcome::Token(token)) = member.outcome.get()
        {
            sso_client::revoke(upstream, &self.metrics, &token.token).await;
        }
        Ok(())
    }

    /// One login at one Manager: its token and the user as it reports them. A refusal is
    /// remembered for `auth.failure_cache` (as for Basic sessions), so the same wrong password
    /// does not reach the Manager again meanwhile.
    async fn log_in_at(
        &self,
        upstream: &Upstream,
        user: &str,
        password: &str,
    ) -> Result<ManagerToken, Asked> {
        let key = self.key_of(upstream.name(), user, password);
        if let Some(message) = self.refusals.get(&key).await {
            self.failed(Failure::RefusedCached);
            return Err(Asked::Refused {
                message: message.to_string(),
                reached: false,
            });
        }
        let outcome = password_grant(upstream, &self.metrics, user, password).await;
        self.count_login(upstream, &outcome);
        let token = match outcome {
            Ok(token) => token,
            Err(LoginError::Refused(message)) => {
                self.failed(Failure::Refused);
                self.refusals.insert(key, Arc::from(message.as_str())).await;
                return Err(Asked::Refused {
                    message,
                    reached: true,
                });
            }
            Err(LoginError::Unavailable(cause)) => {
                self.failed(Failure::SsoUnavailable);
                return Err(Asked::Unavailable(cause));
            }
        };
        let reported = authenticated_user(upstream, &self.metrics, &token).await;
        Ok(ManagerToken {
            token,
            user_id: reported.id.clone(),
            name: reported.name(user),
        })
    }

    fn token_key(&self, token: &str) -> SessionKey {
        let tag = hmac::sign(&self.secret, token.as_bytes());
        let mut key = [0; 32];
        key.copy_from_slice(tag.as_ref());
        key
    }

    fn store_unavailable(&self) -> AuthError {
        AuthError::StoreUnavailable {
            retry_after: self.shared.as_ref().map_or(EXPIRY_SWEEP, |s| s.retry_after()),
        }
    }

    /// Ends the login of a gateway token and revokes its upstream tokens; false when the token is
    /// not valid or its login already ended. `StoreUnavailable` when the login is another
    /// replica's and the shared store cannot be asked: the logout did not happen.
    pub(crate) async fn log_out(&self, token: &str) -> Result<bool, AuthError> {
        let Some(claims) = self.keys.verify(token) else {
            return Ok(false);
        };
        // Another replica's login is fetched first, to revoke its tokens here.
        let login = match self.logins.remove(&claims.sid).await {
            Some(login) => Some(login),
            None => self
                .fetch_login(&claims.sid)
                .await
                .map_err(|Unreachable| self.store_unavailable())?,
        };
        let Some(login) = login else { return Ok(false) };
        self.logins.remove(&claims.sid).await;
        let removed = self
            .end_everywhere(|shared| Self::login_record(shared, &claims.sid))
            .await;
        if removed {
            ended(&self.metrics, Ended::Logout);
            revoke_all(&login, &self.metrics).await;
        }
        Ok(removed)
    }

    /// Ends a login whose upstream token a Manager refused (on every replica); the client logs
    /// in again.
    pub(crate) async fn end_login(&self, sid: &str) {
        if self.logins.remove(sid).await.is_some() {
            ended(&self.metrics, Ended::Refused);
        }
        self.end_everywhere(|shared| Self::login_record(shared, sid))
            .await;
    }

    /// Ends a login by the gateway's choice and revokes its tokens in the background.
    pub(super) async fn end_login_and_revoke(&self, sid: &str, reason: Ended) {
        if let Some(login) = self.logins.remove(sid).await {
            let removed = self
                .end_everywhere(|shared| Self::login_record(shared, sid))
                .await;
            ended(&self.metrics, reason);
            if removed {
                revoke_later(&self.metrics, login);
            }
        }
    }

    /// The expiry sweep's end of a login: with `[shared]`, a login idle here but used on
    /// another replica only loses its local copy.
    pub(super) async fn expire_login(&self, sid: &str, now: Instant) {
        let Some(shared) = &self.shared else {
            return self.end_login_and_revoke(sid, Ended::Expired).await;
        };
        let Some(login) = self.logins.get(sid).await else {
            return;
        };
        if login.lease.lived(&self.config, now) {
            return self.end_login_and_revoke(sid, Ended::Expired).await;
        }
        if let Some(ends) = self.idle_everywhere(Self::login_record(shared, sid)).await {
            self.logins.remove(sid).await;
            if ends {
                ended(&self.metrics, Ended::Expired);
                revoke_later(&self.metrics, login);
            }
        }
    }
}

/// What asking one Manager gave, short of a token.
enum Asked {
    /// `reached`: the Manager was asked (not a refusal remembered).
    Refused {
        message: String,
        reached: bool,
    },
    Unavailable(String),
}

/// Revokes every upstream token of a login, in the background.
fn revoke_later(metrics: &Arc<Metrics>, login: Arc<Login>) {
    let metrics = metrics.clone();
    spawn_revocation(async move { revoke_all(&login, &metrics).await });
}

/// Revokes every upstream token of a login, concurrently.
pub(super) async fn revoke_all(login: &Login, metrics: &Metrics) {
    futures_util::future::join_all(
        login
            .tokens()
            .map(|(upstream, token)| sso_client::revoke(upstream, metrics, token)),
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
