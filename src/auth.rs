//! Authentication: Basic credentials exchanged for a Manager's SSO token, once per user, not once
//! per request (a Basic request to the engine costs a full SSO login and logout: docs/engine.md,
//! section 1.1).
//!
//! Sessions live in a bounded cache keyed by HMAC-SHA256(server secret, Manager, user, password):
//! the password is held only while its request is in flight, never in a key, a log or a metric.
//! Concurrent first requests of one user share one upstream login. A refused login is remembered
//! for `auth.failure_cache`, so the same wrong password does not reach the Manager at full rate.
//!
//! SDK logins at the gateway's own SSO endpoint (`sso_endpoint.rs`) log in at every Manager the
//! host covers and get a gateway token (`tokens.rs`, a signed JWT naming the login); the upstream
//! tokens stay here, in `logins`, and are revoked at the Managers when the login ends (logout,
//! expiry, eviction). A Bearer token the gateway did not sign is refused with 401, unless
//! `auth.bearer_passthrough` forwards it as the Manager's own.
//!
//! Every upstream token is revoked at its Manager when its session or login ends otherwise than
//! by the Manager's own 401 (expiry, eviction by `max_sessions`, logout), and all at shutdown.
//!
//! `Prefer: persistent-auth` gets the gateway's own cookie (`persistent.rs`) for a login; the
//! Manager's JSESSIONID never reaches a client. A request without any credentials is a 401.
//!
//! A user holds at most `auth.max_logins_per_user` logins; the oldest makes room. Each session
//! and login learns the user's id at its Manager once (`authenticated_user` of the API root): the
//! request's [`Principal`] carries it for the later stages and the access log. Groups join it with
//! the policy work.
//!
//! - `basic.rs`: Basic credentials and sessions;
//! - `logins.rs`: logins at the gateway's SSO endpoint and their gateway tokens;
//! - this file: what both share (the caches, leases, expiry, revocation, the failure counts).

mod basic;
mod logins;
pub(crate) mod persistent;
mod replicas;
pub(crate) mod sso_client;
pub(crate) mod sso_endpoint;
pub(crate) mod tokens;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use moka::future::Cache;
use moka::policy::EvictionPolicy;
use ring::hmac;
use tokio::time::Instant;

use crate::config::AuthConfig;
use crate::metrics::Metrics;
use crate::shared::Shared;
use crate::upstream::Upstream;
pub(crate) use basic::{BasicCredentials, Session, SessionKey};
pub(crate) use logins::Login;
use logins::revoke_all;
use sso_client::{LoginError, UpstreamToken};
use tokens::{Claims, TokenKeys};

/// When a session or login ends by time: `session_idle` after its last use, or
/// `session_lifetime` after it began, on tokio's clock (which tests pause). The caches hold
/// entries by size only; [`Authenticator::expire_on_timer`] ends what is due, and a use of an
/// entry past its time ends it too.
struct Lease {
    began: Instant,
    used: Mutex<Instant>,
    /// When this replica last told the shared store of a use (replicas.rs).
    told: Mutex<Instant>,
}

impl Lease {
    fn new() -> Lease {
        Lease::at(Instant::now())
    }

    /// A lease that began at `began`, used now.
    fn at(began: Instant) -> Lease {
        let now = Instant::now();
        Lease {
            began,
            used: Mutex::new(now),
            told: Mutex::new(now),
        }
    }

    fn touch(&self) {
        *self.used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn expired(&self, config: &AuthConfig, now: Instant) -> bool {
        let used = *self.used.lock().unwrap_or_else(|p| p.into_inner());
        self.lived(config, now) || now >= used + config.session_idle
    }

    /// Whether its lifetime is up (not only its idle time).
    fn lived(&self, config: &AuthConfig, now: Instant) -> bool {
        now >= self.began + config.session_lifetime
    }

    /// Whether the shared store should hear of a use now: at most once per `every`.
    fn shared_touch_due(&self, every: Duration) -> bool {
        let now = Instant::now();
        let mut told = self.told.lock().unwrap_or_else(|p| p.into_inner());
        if now >= *told + every {
            *told = now;
            true
        } else {
            false
        }
    }
}

/// How often expired sessions and logins are looked for: a token is revoked at most this long
/// after its session's time is up.
pub(crate) const EXPIRY_SWEEP: Duration = Duration::from_secs(1);

/// Who a request is from, for the later stages and the access log: `user@profile` and, when the
/// Manager said, the user's id there (learned once per session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    pub user: String,
    pub upstream_user_id: Option<String>,
}

/// Why a client could not be authenticated or logged in (pipeline/rescue.rs makes it a 401, or a
/// 503 when no Manager could be asked: docs/invariants.md, invariant 6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    /// The Authorization value is not valid Basic credentials.
    #[error("The Authorization header is not valid Basic credentials (base64 of user@profile:password)")]
    Malformed,
    /// The user name has no `@profile`.
    #[error("The user name '{user}' has no profile: write it as user@profile, e.g. admin@internal")]
    NoProfile { user: String },
    /// A Manager refused the credentials (its message, which names the user, never the password).
    #[error("{0}")]
    Refused(String),
    /// A login that other Managers accepted was refused by this one: it is not part of the
    /// login (a 403: logging in again would not change it).
    #[error(
        "Manager '{manager}' did not accept the credentials of this login ({message}); the login serves the other Managers it covers"
    )]
    RefusedAt { manager: String, message: String },
    /// A Manager's SSO could not be asked, or did not answer as SSO answers; come back after
    /// `retry_after` (its health-check interval).
    #[error("{cause}")]
    Unavailable {
        manager: String,
        cause: String,
        retry_after: Duration,
    },
    /// A gateway token whose login this replica does not hold, with the shared store out of
    /// reach: come back after `retry_after` (`shared.check_interval`).
    #[error("the shared store cannot be reached")]
    StoreUnavailable { retry_after: Duration },
}

/// Why an authentication failed, as `gateway_auth_failures_total` counts it (docs/authentication.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No credentials where the API needs them.
    Missing,
    /// An Authorization value that cannot be read.
    Malformed,
    /// A Basic user name without `@profile`.
    NoProfile,
    /// A Bearer token that is neither the gateway's nor passed through.
    UnknownToken,
    /// The Manager refused the credentials.
    Refused,
    /// The same credentials were refused a moment ago: the Manager was not asked again.
    RefusedCached,
    /// The Manager's SSO could not be asked.
    SsoUnavailable,
}

impl Failure {
    /// The metric's `reason` label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Failure::Missing => "missing",
            Failure::Malformed => "malformed",
            Failure::NoProfile => "no_profile",
            Failure::UnknownToken => "unknown_token",
            Failure::Refused => "refused",
            Failure::RefusedCached => "refused_cached",
            Failure::SsoUnavailable => "sso_unavailable",
        }
    }
}

impl AuthError {
    fn unavailable(upstream: &Upstream, cause: String) -> AuthError {
        AuthError::Unavailable {
            manager: upstream.name().to_owned(),
            cause,
            retry_after: upstream.config.health_interval,
        }
    }
}

pub(crate) struct Authenticator {
    secret: hmac::Key,
    sessions: Cache<SessionKey, Arc<Session>>,
    /// Refused logins: the Manager's message, by session key.
    refusals: Cache<SessionKey, Arc<str>>,
    /// Logins at the gateway's SSO endpoint, by the session id their tokens carry.
    logins: Cache<String, Arc<Login>>,
    /// Claims of gateway tokens already verified, by HMAC of the token: an Ed25519 verification
    /// costs more than the rest of the request path, and clients send the same token for hours.
    verified: Cache<SessionKey, Arc<Claims>>,
    /// The open logins of each user, oldest first, for `auth.max_logins_per_user`.
    logins_by_user: Arc<Mutex<HashMap<String, VecDeque<String>>>>,
    keys: TokenKeys,
    config: AuthConfig,
    metrics: Arc<Metrics>,
    /// `[shared]`: sessions and logins shared with the other replicas (replicas.rs).
    shared: Option<Arc<Shared>>,
    /// Every Manager, for logins fetched from the shared store.
    upstreams: Vec<Arc<Upstream>>,
    /// What waits for the shared store to come back.
    unsent: Mutex<replicas::Unsent>,
}

impl Authenticator {
    /// A fresh server secret each start (sessions do not outlive the process), or with
    /// `[shared]` the one every replica derives from `shared.key`. The token key is
    /// `auth.token_key`, or a fresh one (with a warning) when none is configured.
    pub(crate) fn new(
        config: &AuthConfig,
        metrics: Arc<Metrics>,
        shared: Option<Arc<Shared>>,
        upstreams: Vec<Arc<Upstream>>,
    ) -> Result<Authenticator, String> {
        let keys = match &config.token_key {
            Some(secret) => {
                TokenKeys::from_pem(&secret.read()?).map_err(|e| format!("auth.token_key: {e}"))?
            }
            None => {
                tracing::warn!(
                    "no auth.token_key: the gateway signs its tokens with a key generated now; they will not survive a restart"
                );
                TokenKeys::generate()
            }
        };
        let secret = match &shared {
            Some(shared) => shared.session_secret().clone(),
            None => hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
                .expect("the system random source works"),
        };
        // With [shared], a session pushed out here may be in use on another replica: only the
        // local copy goes (replicas.rs).
        let alone = shared.is_none();
        let (gauge, revoking) = (metrics.sessions.clone(), metrics.clone());
        // LRU, not moka's default TinyLFU: at capacity, a new login must push out the least
        // recently used session, never be refused admission itself (its token would be revoked
        // at once and the user would log in again on every request).
        let sessions = Cache::builder()
            .eviction_policy(EvictionPolicy::lru())
            .max_capacity(config.max_sessions)
            .eviction_listener(move |_key, session: Arc<Session>, cause| {
                gauge.dec();
                // Explicit removals revoke (or not: after the Manager's 401) on their own.
                if alone && cause != moka::notification::RemovalCause::Explicit {
                    ended(&revoking, Ended::Evicted);
                    let metrics = revoking.clone();
                    spawn_revocation(async move {
                        sso_client::revoke(&session.upstream, &metrics, &session.token).await;
                    });
                }
            })
            .build();
        let refusals = Cache::builder()
            .max_capacity(config.max_sessions)
            .time_to_live(config.failure_cache)
            .build();
        let (gauge, revoking) = (metrics.sessions.clone(), metrics.clone());
        let logins_by_user: Arc<Mutex<HashMap<String, VecDeque<String>>>> = Arc::default();
        let by_user = logins_by_user.clone();
        let logins = Cache::builder()
            .eviction_policy(EvictionPolicy::lru())
            .max_capacity(config.max_sessions)
            .eviction_listener(move |sid: Arc<String>, login: Arc<Login>, cause| {
                gauge.dec();
                let mut by_user = by_user.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(open) = by_user.get_mut(&login.user) {
                    open.retain(|s| *s != *sid);
                    if open.is_empty() {
                        by_user.remove(&login.user);
                    }
                }
                drop(by_user);
                // An explicit logout revokes on its own request; everything else here.
                if alone && cause != moka::notification::RemovalCause::Explicit {
                    ended(&revoking, Ended::Evicted);
                    let metrics = revoking.clone();
                    spawn_revocation(async move { revoke_all(&login, &metrics).await });
                }
            })
            .build();
        let verified = Cache::builder()
            .max_capacity(config.max_sessions)
            .time_to_live(config.session_lifetime)
            .build();
        Ok(Authenticator {
            secret,
            sessions,
            refusals,
            logins,
            verified,
            logins_by_user,
            keys,
            config: config.clone(),
            metrics,
            shared,
            upstreams,
            unsent: Mutex::default(),
        })
    }

    fn key_of(&self, manager: &str, user: &str, password: &str) -> SessionKey {
        let mut context = hmac::Context::with_key(&self.secret);
        for part in [manager, user, password] {
            // Length-prefixed, so that no two different triples hash alike.
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part.as_bytes());
        }
        let tag = context.sign();
        let mut key = [0; 32];
        key.copy_from_slice(tag.as_ref());
        key
    }

    /// Ends every session and login whose time is up, and revokes their tokens.
    pub(crate) async fn expire(&self) {
        let now = Instant::now();
        let sessions: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, session)| session.lease.expired(&self.config, now))
            .map(|(key, _)| *key)
            .collect();
        for key in sessions {
            self.expire_session(&key, now).await;
        }
        let logins: Vec<Arc<String>> = self
            .logins
            .iter()
            .filter(|(_, login)| login.lease.expired(&self.config, now))
            .map(|(sid, _)| sid)
            .collect();
        for sid in logins {
            self.expire_login(&sid, now).await;
        }
    }

    /// Runs [`expire`](Self::expire) every [`EXPIRY_SWEEP`], for as long as the gateway runs:
    /// sessions end on time whether or not anything else happens.
    pub(crate) async fn expire_on_timer(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(EXPIRY_SWEEP);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.expire().await;
        }
    }

    /// The largest body kept for a resend after a fresh login (`auth.resend_body_bytes`).
    pub(crate) fn resend_body_bytes(&self) -> u64 {
        self.config.resend_body_bytes
    }

    /// Whether Bearer tokens the gateway did not sign go to the Manager as they are.
    pub(crate) fn bearer_passthrough(&self) -> bool {
        self.config.bearer_passthrough
    }

    fn count_login<T>(&self, upstream: &Upstream, outcome: &Result<T, LoginError>) {
        let result = match outcome {
            Ok(_) => "ok",
            Err(LoginError::Refused(_)) => "refused",
            Err(LoginError::Unavailable(_)) => "error",
        };
        self.metrics
            .sso_logins_total
            .with_label_values(&[upstream.name(), result])
            .inc();
    }

    /// Revokes every upstream token the gateway holds, concurrently, within
    /// [`sso_client::REVOKE_TIMEOUT`]: at shutdown, so that no token outlives the gateway at the
    /// Managers. Returns how many tokens it revoked or tried to.
    /// With `[shared]`, nothing: the other replicas serve those sessions on.
    pub(crate) async fn revoke_everything(&self) -> usize {
        if self.shared.is_some() {
            return 0;
        }
        let mut tokens: Vec<(Arc<Upstream>, UpstreamToken)> = self
            .sessions
            .iter()
            .map(|(_, session)| (session.upstream.clone(), session.token.clone()))
            .collect();
        for (_, login) in self.logins.iter() {
            tokens.extend(
                login
                    .tokens()
                    .map(|(upstream, token)| (upstream.clone(), token.clone())),
            );
        }
        let count = tokens.len();
        let revocations = tokens
            .iter()
            .map(|(upstream, token)| sso_client::revoke(upstream, &self.metrics, token));
        let _ = tokio::time::timeout(
            sso_client::REVOKE_TIMEOUT,
            futures_util::future::join_all(revocations),
        )
        .await;
        count
    }

    /// Counts a refused authentication; `reason` is a bounded label.
    pub(crate) fn failed(&self, reason: Failure) {
        self.metrics
            .auth_failures_total
            .with_label_values(&[reason.as_str()])
            .inc();
    }
}

impl Authenticator {
    /// What becomes of console descriptors (`auth.console_files`; token_guard/console.rs).
    pub(crate) fn console_files(&self) -> crate::config::ConsoleFiles {
        self.config.console_files
    }
}

/// Why a session or login ended, as `gateway_sessions_ended_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Pushed out by `auth.max_sessions`.
    Evicted,
    /// Its idle time or lifetime was up.
    Expired,
    /// The Manager no longer accepted its token.
    Refused,
    Logout,
    /// The user's oldest login, making room under `auth.max_logins_per_user`.
    Replaced,
}

impl Ended {
    /// The metric's `reason` label.
    fn as_str(self) -> &'static str {
        match self {
            Ended::Evicted => "evicted",
            Ended::Expired => "expired",
            Ended::Refused => "refused",
            Ended::Logout => "logout",
            Ended::Replaced => "replaced",
        }
    }
}

/// Counts a session or login that ended.
fn ended(metrics: &Metrics, reason: Ended) {
    metrics
        .sessions_ended_total
        .with_label_values(&[reason.as_str()])
        .inc();
}

/// Runs a revocation in the background, when there is a runtime to run it (eviction listeners
/// may run outside one).
fn spawn_revocation(revocation: impl Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(revocation);
    }
}

#[cfg(test)]
mod tests;
