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

pub mod persistent;
pub mod sso_client;
pub mod sso_endpoint;
pub mod sso_wire;
pub mod tokens;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use ring::hmac;
use tokio::time::Instant;

use crate::config::AuthConfig;
use crate::metrics::Metrics;
use crate::ratelimit::logins::Logins;
use crate::upstream::Upstream;
use sso_client::{LoginError, UpstreamToken, authenticated_user, password_grant};
use tokens::{Claims, TokenKeys};

/// A session's cache key: HMAC-SHA256 of the Manager, the user and the password.
pub type SessionKey = [u8; 32];

/// A user's login at one Manager.
pub struct Session {
    /// `user@profile`, the user as the Manager reports it (`ManagerUser::name`).
    pub user: String,
    pub token: UpstreamToken,
    /// The user's id at the Manager.
    pub user_id: Option<String>,
    /// The Manager that issued the token, to revoke it there when the session ends.
    upstream: Arc<Upstream>,
    lease: Lease,
}

/// When a session or login ends by time: `session_idle` after its last use, or
/// `session_lifetime` after it began, on tokio's clock (which tests pause). The caches hold
/// entries by size only; [`Authenticator::expire_on_timer`] ends what is due, and a use of an
/// entry past its time ends it too.
struct Lease {
    began: Instant,
    used: Mutex<Instant>,
}

impl Lease {
    fn new() -> Lease {
        let now = Instant::now();
        Lease {
            began: now,
            used: Mutex::new(now),
        }
    }

    fn touch(&self) {
        *self.used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn expired(&self, config: &AuthConfig, now: Instant) -> bool {
        let used = *self.used.lock().unwrap_or_else(|p| p.into_inner());
        now >= self.began + config.session_lifetime || now >= used + config.session_idle
    }
}

/// How often expired sessions and logins are looked for: a token is revoked at most this long
/// after its session's time is up.
pub const EXPIRY_SWEEP: Duration = Duration::from_secs(1);

/// Who a request is from, for the later stages and the access log: `user@profile` and, when the
/// Manager said, the user's id there (learned once per session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub upstream_user_id: Option<String>,
}

/// A Manager's token of a login, and the user's id there.
#[derive(Clone)]
pub struct ManagerToken {
    upstream: Arc<Upstream>,
    pub token: UpstreamToken,
    pub user_id: Option<String>,
    /// The user's name as this Manager reports it (`ManagerUser::name`).
    name: String,
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

/// A login at the gateway's SSO endpoint: the user and their token at each Manager it covers.
pub struct Login {
    pub user: String,
    tokens: Vec<ManagerToken>,
    lease: Lease,
}

impl Login {
    pub fn token_for(&self, manager: &str) -> Option<&ManagerToken> {
        self.tokens.iter().find(|t| t.upstream.name() == manager)
    }
}

/// Why a client could not be authenticated or logged in (pipeline/rescue.rs makes it a 401, or a
/// 503 when no Manager could be asked: docs/invariants.md, invariant 6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The Authorization value is not valid Basic credentials.
    #[error("The Authorization header is not valid Basic credentials (base64 of user@profile:password)")]
    Malformed,
    /// The user name has no `@profile`.
    #[error("The user name '{user}' has no profile: write it as user@profile, e.g. admin@internal")]
    NoProfile { user: String },
    /// A Manager refused the credentials (its message, which names the user, never the password).
    #[error("{0}")]
    Refused(String),
    /// A Manager's SSO could not be asked, or did not answer as SSO answers; come back after
    /// `retry_after` (its health-check interval).
    #[error("{cause}")]
    Unavailable {
        manager: String,
        cause: String,
        retry_after: Duration,
    },
}

/// Why an authentication failed, as `gateway_auth_failures_total` counts it (docs/authentication.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
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
    pub fn as_str(self) -> &'static str {
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

pub struct Authenticator {
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
}

impl Authenticator {
    /// A fresh server secret each start: sessions do not outlive the process anyway. The token
    /// key is `auth.token_key`, or a fresh one (with a warning) when none is configured.
    pub fn new(config: &AuthConfig, metrics: Arc<Metrics>) -> Result<Authenticator, String> {
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
        let rng = ring::rand::SystemRandom::new();
        let secret = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system random source works");
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
                if cause != moka::notification::RemovalCause::Explicit {
                    ended(&revoking, "evicted");
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
                if cause != moka::notification::RemovalCause::Explicit {
                    ended(&revoking, "evicted");
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
        })
    }

    /// The credentials of an `Authorization` value when it is Basic (`None` for another scheme);
    /// a malformed one, or a user name without `@profile`, is a 401 (and counted). The engine
    /// checks the scheme with a prefix test (`startsWith("Basic")`), and so does this.
    pub fn basic_credentials(&self, value: &HeaderValue) -> Result<Option<BasicCredentials>, AuthError> {
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

    fn key(&self, manager: &str, credentials: &BasicCredentials) -> SessionKey {
        self.key_of(manager, &credentials.user, &credentials.password)
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

    /// The user's session at this Manager, logging in when there is none. Concurrent callers
    /// with the same credentials wait for one login.
    ///
    /// `logins` (and the client's address) count the outcome for the login lockouts, telling
    /// them whether the Manager (and its directory) was asked.
    pub async fn session(
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
                if let Some((logins, client)) = logins {
                    logins.succeeded(&credentials.user, client);
                }
                return Ok(session);
            }
            self.end_session(&key, "expired").await;
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
        match self.sessions.try_get_with(key, login).await {
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

    /// Drops a session whose token the Manager no longer accepts.
    pub async fn forget(&self, upstream: &Upstream, credentials: &BasicCredentials) {
        let key = self.key(upstream.name(), credentials);
        if self.sessions.remove(&key).await.is_some() {
            ended(&self.metrics, "refused");
        }
    }

    /// Ends a session by the gateway's choice (`reason`: a bounded label) and revokes its token.
    async fn end_session(&self, key: &SessionKey, reason: &'static str) {
        // Whoever removes it revokes it: once.
        if let Some(session) = self.sessions.remove(key).await {
            ended(&self.metrics, reason);
            let metrics = self.metrics.clone();
            spawn_revocation(async move {
                sso_client::revoke(&session.upstream, &metrics, &session.token).await;
            });
        }
    }

    /// Ends a login by the gateway's choice and revokes its tokens in the background.
    async fn end_login_and_revoke(&self, sid: &str, reason: &'static str) {
        if let Some(login) = self.logins.remove(sid).await {
            ended(&self.metrics, reason);
            let metrics = self.metrics.clone();
            spawn_revocation(async move { revoke_all(&login, &metrics).await });
        }
    }

    /// Ends every session and login whose time is up, and revokes their tokens.
    pub async fn expire(&self) {
        let now = Instant::now();
        let sessions: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, session)| session.lease.expired(&self.config, now))
            .map(|(key, _)| *key)
            .collect();
        for key in sessions {
            self.end_session(&key, "expired").await;
        }
        let logins: Vec<Arc<String>> = self
            .logins
            .iter()
            .filter(|(_, login)| login.lease.expired(&self.config, now))
            .map(|(sid, _)| sid)
            .collect();
        for sid in logins {
            self.end_login_and_revoke(&sid, "expired").await;
        }
    }

    /// Runs [`expire`](Self::expire) every [`EXPIRY_SWEEP`], for as long as the gateway runs:
    /// sessions end on time whether or not anything else happens.
    pub async fn expire_on_timer(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(EXPIRY_SWEEP);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.expire().await;
        }
    }

    /// Logs in at every Manager in `upstreams` (concurrently) and, when all accept, opens a login and
    /// returns the gateway's token for it and its expiry in milliseconds.
    pub async fn log_in(
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
            ended(&self.metrics, "replaced");
            revoke_all(&login, &self.metrics).await;
        }
        Ok((self.keys.issue(&claims), (claims.exp * 1000) as i64))
    }

    /// A login of its own for a persistent session opened with Basic credentials (as on the
    /// engine, where each persistent session is a login); the gateway token for its cookie.
    pub async fn persistent_login(
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
    pub async fn login_of(&self, token: &str) -> Option<(Arc<Claims>, Arc<Login>)> {
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
            self.end_login_and_revoke(&claims.sid, "expired").await;
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
    pub async fn log_out(&self, token: &str) -> bool {
        let Some(claims) = self.keys.verify(token) else {
            return false;
        };
        match self.logins.remove(&claims.sid).await {
            Some(login) => {
                ended(&self.metrics, "logout");
                revoke_all(&login, &self.metrics).await;
                true
            }
            None => false,
        }
    }

    /// Ends a login whose upstream token a Manager refused; the client logs in again.
    pub async fn end_login(&self, sid: &str) {
        if self.logins.remove(sid).await.is_some() {
            ended(&self.metrics, "refused");
        }
    }

    /// The largest body kept for a resend after a fresh login (`auth.resend_body_bytes`).
    pub fn resend_body_bytes(&self) -> u64 {
        self.config.resend_body_bytes
    }

    /// Whether Bearer tokens the gateway did not sign go to the Manager as they are.
    pub fn bearer_passthrough(&self) -> bool {
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
    pub async fn revoke_everything(&self) -> usize {
        let mut tokens: Vec<(Arc<Upstream>, UpstreamToken)> = self
            .sessions
            .iter()
            .map(|(_, session)| (session.upstream.clone(), session.token.clone()))
            .collect();
        for (_, login) in self.logins.iter() {
            tokens.extend(login.tokens.iter().map(|t| (t.upstream.clone(), t.token.clone())));
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
    pub fn failed(&self, reason: Failure) {
        self.metrics
            .auth_failures_total
            .with_label_values(&[reason.as_str()])
            .inc();
    }
}

impl Authenticator {
    /// What becomes of console descriptors (`auth.console_files`; token_guard/console.rs).
    pub fn console_files(&self) -> crate::config::ConsoleFiles {
        self.config.console_files
    }
}

/// Counts a session or login that ended; `reason` is a bounded label.
fn ended(metrics: &Metrics, reason: &'static str) {
    metrics.sessions_ended_total.with_label_values(&[reason]).inc();
}

/// Runs a revocation in the background, when there is a runtime to run it (eviction listeners
/// may run outside one).
fn spawn_revocation(revocation: impl Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(revocation);
    }
}

/// Revokes every upstream token of a login, concurrently.
async fn revoke_all(login: &Login, metrics: &Metrics) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator() -> Authenticator {
        authenticator_idle_for(Duration::from_secs(60))
    }

    fn authenticator_idle_for(idle: Duration) -> Authenticator {
        Authenticator::new(
            &AuthConfig {
                session_idle: idle,
                session_lifetime: Duration::from_secs(60),
                max_sessions: 10,
                max_logins_per_user: 10,
                failure_cache: Duration::from_secs(1),
                token_key: None,
                bearer_passthrough: false,
                console_files: crate::config::ConsoleFiles::Refuse,
                resend_body_bytes: 0,
            },
            Arc::new(Metrics::new()),
        )
        .unwrap()
    }

    fn basic(raw: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(raw))).unwrap()
    }

    /// `user@profile:password` is Basic credentials; the password may contain colons.
    #[test]
    fn basic_credentials() {
        let credentials = authenticator()
            .basic_credentials(&basic("alice@internal:pa:ss"))
            .unwrap()
            .unwrap();
        assert_eq!(credentials.user, "alice@internal");
        assert_eq!(credentials.password, "pa:ss");
    }

    /// Another scheme is not Basic and not an error here.
    #[test]
    fn bearer_is_not_basic() {
        let value = HeaderValue::from_static("Bearer abc");
        assert!(authenticator().basic_credentials(&value).unwrap().is_none());
    }

    /// Bad base64 and a missing colon are malformed credentials (401).
    #[test]
    fn malformed_basic() {
        for value in [HeaderValue::from_static("Basic !!!"), basic("no-colon")] {
            let error = authenticator().basic_credentials(&value).err().unwrap();
            assert_eq!(error, AuthError::Malformed);
        }
    }

    /// A user name without `@profile` is refused before any login, naming the problem.
    #[test]
    fn user_without_profile() {
        let error = authenticator()
            .basic_credentials(&basic("admin:secret"))
            .err()
            .unwrap();
        assert!(error.to_string().contains("user@profile"), "{error}");
        assert!(!error.to_string().contains("secret"));
    }

    /// The password never shows in Debug output.
    #[test]
    fn credentials_debug_hides_the_password() {
        let credentials = authenticator()
            .basic_credentials(&basic("a@b:hunter2"))
            .unwrap()
            .unwrap();
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }

    /// Session keys differ by Manager, user and password, and do not depend on where one part
    /// ends and the next begins.
    #[test]
    fn session_keys_separate_their_parts() {
        let auth = authenticator();
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

    /// Sessions and logins end on the timer, with nothing else happening: a login idle past
    /// `session_idle`, a session in use past `session_lifetime`; each counted and (in the
    /// background) revoked.
    #[tokio::test(start_paused = true)]
    async fn sessions_and_logins_expire_on_the_timer() {
        let auth = Arc::new(authenticator_idle_for(Duration::from_secs(30)));
        let config = crate::config::Config::from_toml(
            "[listen]\naddress = \"127.0.0.1:0\"\nplain_http = true\n\
             [[manager]]\nname = \"m\"\nurl = \"http://127.0.0.1:9/ovirt-engine/api\"\n",
            std::path::Path::new("."),
        )
        .unwrap();
        let upstream = Arc::new(Upstream::new(config.managers[0].clone()).unwrap());
        let credentials = BasicCredentials {
            user: "alice@internal".into(),
            password: "secret".into(),
        };
        let key = auth.key(upstream.name(), &credentials);
        let session = Session {
            user: credentials.user.clone(),
            token: UpstreamToken("upstream-session".into()),
            user_id: None,
            upstream: upstream.clone(),
            lease: Lease::new(),
        };
        auth.sessions.insert(key, Arc::new(session)).await;
        let login = Login {
            user: credentials.user.clone(),
            tokens: Vec::new(),
            lease: Lease::new(),
        };
        auth.logins.insert("sid".into(), Arc::new(login)).await;
        let expired = auth.metrics.sessions_ended_total.with_label_values(&["expired"]);
        let sweeper = tokio::spawn(auth.clone().expire_on_timer());
        // At 20 s the session is used, the login is not.
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(auth.session(&upstream, &credentials, None).await.is_ok());
        // Idle since 0 s, the login ends at 30 s; the session, used at 20 s, lives on.
        tokio::time::sleep(Duration::from_millis(11_500)).await;
        assert_eq!(expired.get(), 1);
        assert!(auth.logins.get("sid").await.is_none());
        assert!(auth.sessions.get(&key).await.is_some());
        // Used every 20 s, the session still ends at its lifetime, 60 s.
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert!(auth.session(&upstream, &credentials, None).await.is_ok());
        tokio::time::sleep(Duration::from_secs(21)).await;
        assert_eq!(expired.get(), 2);
        assert!(auth.sessions.get(&key).await.is_none());
        sweeper.abort();
    }
}
