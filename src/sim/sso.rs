//! The engine's SSO as the simulator plays it: the password grant at `/ovirt-engine/sso/oauth/token`,
//! validate-mode token info, `/ovirt-engine/services/sso-logout`, and the authentication of API
//! requests (Basic, Bearer, and the JSESSIONID session of `Prefer: persistent-auth`).
//!
//! Wire shapes from docs/engine.md, section 1: `Accept: application/json` must match exactly; errors are
//! HTTP 400 JSON, `{"error_code","error"}` for the REST-API scope and `{"error","error_description"}`
//! otherwise; `exp` is a string of milliseconds (Long.MAX_VALUE: the internal profile sets no
//! expiry) and there is no `expires_in`; an unauthenticated API request gets 401 with
//! `WWW-Authenticate: Basic realm="RESTAPI"` and an HTML body. Tokens and sessions expire after
//! `--token-ttl` without use (SSO_TOKEN_TIMEOUT); `/sim/revoke-all` kills them all.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE, HeaderValue, SET_COOKIE, WWW_AUTHENTICATE};
use http::{HeaderMap, Request, Response, StatusCode};
use tokio::time::Instant;

use super::users::User;
use super::{Sim, text};
use crate::body::GatewayBody;
use crate::wire::sso::{
    PasswordGrant, SsoError, invalid_grant, json_response, logout_response, token_body, token_to_revoke,
    token_to_validate,
};

/// The engine's default session timeout for persistent-auth sessions (web.xml: 180 minutes).
const SESSION_TTL: Duration = Duration::from_secs(180 * 60);

struct Live {
    user: usize,
    last_used: Instant,
    ttl: Duration,
}

impl Live {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.last_used) > self.ttl
    }
}

/// Live tokens and sessions.
pub(super) struct Tokens {
    ttl: Duration,
    state: Mutex<TokenState>,
}

#[derive(Default)]
struct TokenState {
    tokens: HashMap<String, Live>,
    sessions: HashMap<String, Live>,
}

impl Tokens {
    pub(super) fn new(ttl: Duration) -> Tokens {
        Tokens {
            ttl,
            state: Mutex::new(TokenState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TokenState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn issue(&self, token: String, user: usize) {
        let live = Live {
            user,
            last_used: Instant::now(),
            ttl: self.ttl,
        };
        self.state().tokens.insert(token, live);
    }

    /// The user of a live token; touching it restarts its inactivity timer.
    fn use_token(&self, token: &str) -> Option<usize> {
        touch(&mut self.state().tokens, token)
    }

    fn revoke(&self, token: &str) -> bool {
        self.state().tokens.remove(token).is_some()
    }

    /// Every token and session dies, as on an engine restart. Returns how many tokens died.
    pub(super) fn revoke_all(&self) -> usize {
        let mut state = self.state();
        state.sessions.clear();
        let now = Instant::now();
        state
            .tokens
            .drain()
            .filter(|(_, live)| !live.expired(now))
            .count()
    }

    pub(super) fn active_tokens(&self) -> usize {
        let now = Instant::now();
        let mut state = self.state();
        state.tokens.retain(|_, live| !live.expired(now));
        state.tokens.len()
    }

    pub(super) fn active_sessions(&self) -> usize {
        let now = Instant::now();
        let mut state = self.state();
        state.sessions.retain(|_, live| !live.expired(now));
        state.sessions.len()
    }

    fn open_session(&self, id: String, user: usize, ttl: Duration) {
        let live = Live {
            user,
            last_used: Instant::now(),
            ttl,
        };
        self.state().sessions.insert(id, live);
    }

    fn use_session(&self, id: &str) -> Option<usize> {
        touch(&mut self.state().sessions, id)
    }

    fn close_session(&self, id: &str) {
        self.state().sessions.remove(id);
    }
}

fn touch(map: &mut HashMap<String, Live>, key: &str) -> Option<usize> {
    let now = Instant::now();
    let live = map.get_mut(key)?;
    if live.expired(now) {
        map.remove(key);
        return None;
    }
    live.last_used = now;
    Some(live.user)
}

/// Why a login failed, in the engine's words.
enum LoginError {
    NoProfile,
    BadPassword,
}

impl LoginError {
    fn message(&self, username: &str) -> String {
        match self {
            LoginError::NoProfile => {
                format!("Cannot authenticate user '{username}': No valid profile found in credentials..")
            }
            LoginError::BadPassword => {
                format!("Cannot authenticate user '{username}': The username or password is incorrect..")
            }
        }
    }
}

impl Sim {
    fn login(&self, username: &str, password: &str) -> Result<usize, LoginError> {
        let outcome = if !username.contains('@') {
            Err(LoginError::NoProfile)
        } else {
            self.users
                .iter()
                .position(|u| same_login(&u.login, username) && u.password == password)
                .ok_or(LoginError::BadPassword)
        };
        if outcome.is_err() {
            self.stats.failed_logins.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    /// 20 random bytes in base64, the form of the engine's tokens.
    pub(super) fn new_secret(&self) -> String {
        let mut rng = self.rng();
        let bytes: Vec<u8> = (0..3)
            .flat_map(|_| rng.next_u64().to_le_bytes())
            .take(20)
            .collect();
        STANDARD.encode(bytes)
    }

    pub(super) fn user(&self, index: usize) -> &User {
        &self.users[index]
    }
}

/// `POST /ovirt-engine/sso/oauth/token`: the password grant.
pub(super) fn token(sim: &Sim, request: &Request<Bytes>) -> Response<GatewayBody> {
    let grant = match PasswordGrant::parse(request.uri().query(), request.headers(), request.body()) {
        Ok(grant) => grant,
        Err(error) => return error.response(),
    };
    match sim.login(&grant.username, &grant.password) {
        Ok(user) => {
            let token = sim.new_secret();
            sim.sso.issue(token.clone(), user);
            sim.stats.sso_logins.fetch_add(1, Ordering::Relaxed);
            // Long.MAX_VALUE: the internal profile sets no expiry.
            json_response(StatusCode::OK, &token_body(&token, &grant.scope, i64::MAX))
        }
        Err(error) => SsoError::new(&grant.scope, "access_denied", error.message(&grant.username)).response(),
    }
}

/// `POST /ovirt-engine/sso/oauth/token-info`, validate mode only (full mode needs a registered client).
pub(super) fn token_info(sim: &Sim, request: &Request<Bytes>) -> Response<GatewayBody> {
    let (query, headers, body) = (request.uri().query(), request.headers(), request.body());
    match token_to_validate(query, headers, body) {
        Ok(token) if sim.sso.use_token(&token).is_some() => {
            json_response(StatusCode::OK, &serde_json::json!({}))
        }
        Ok(_) => invalid_grant(query, headers, body).response(),
        Err(error) => error.response(),
    }
}

/// `/ovirt-engine/services/sso-logout`: always 200 JSON, `{}` on success (docs/engine.md, section 1.4).
/// [inferred] An unknown token (already revoked, or dead after a restart) also answers `{}`.
pub(super) fn logout(sim: &Sim, request: &Request<Bytes>) -> Response<GatewayBody> {
    let token = token_to_revoke(request.uri().query(), request.headers(), request.body());
    if let Some(token) = &token
        && sim.sso.revoke(token)
    {
        sim.stats.revoked_tokens.fetch_add(1, Ordering::Relaxed);
    }
    logout_response(token.is_some())
}

/// Whether a typed `user@profile` names this login: the user part without regard to case, as
/// the directories behind an engine (LDAP, Active Directory) match names; the profile exactly.
fn same_login(login: &str, typed: &str) -> bool {
    match (login.rsplit_once('@'), typed.rsplit_once('@')) {
        (Some((user, profile)), Some((typed_user, typed_profile))) => {
            user.eq_ignore_ascii_case(typed_user) && profile == typed_profile
        }
        _ => false,
    }
}

/// Who an API request is from, and the session cookie to set when one was opened.
pub(super) struct Authenticated {
    pub user: usize,
    /// The bearer token the request was authenticated with.
    pub bearer: Option<String>,
    pub set_cookie: Option<HeaderValue>,
}

/// Authenticates an API request as the engine's filter chain does (docs/engine.md, section 1.1, 1.6);
/// `None` when the credentials are missing or wrong (answer with [`unauthorized`]).
pub(super) fn authenticate(sim: &Sim, headers: &HeaderMap, tls: bool) -> Option<Authenticated> {
    let prefer: Vec<String> = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|e| e.trim().to_ascii_lowercase())
        .collect();
    let persistent = prefer.iter().any(|e| e == "persistent-auth");
    let new_auth = prefer.iter().any(|e| e == "new-auth");
    if let Some(session) = session_cookie(headers) {
        if persistent && !new_auth {
            if let Some(user) = sim.sso.use_session(&session) {
                return Some(Authenticated {
                    user,
                    bearer: None,
                    set_cookie: None,
                });
            }
        } else {
            // A request without persistent-auth ends the session (RestApiSessionValidationFilter).
            sim.sso.close_session(&session);
        }
    }
    let authorization = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut bearer = None;
    let user = if let Some(encoded) = authorization.strip_prefix("Basic") {
        let decoded = STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let (username, password) = decoded.as_deref().and_then(|d| d.split_once(':'))?;
        // Each Basic request is a full SSO login (and, without persistent-auth, a logout after it).
        let user = sim.login(username, password).ok()?;
        sim.stats.basic_logins.fetch_add(1, Ordering::Relaxed);
        user
    } else if let Some(token) = authorization.strip_prefix("Bearer") {
        let user = sim.sso.use_token(token.trim())?;
        bearer = Some(token.trim().to_owned());
        user
    } else {
        return None;
    };
    let set_cookie = persistent.then(|| {
        let ttl = headers
            .get("session-ttl")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(SESSION_TTL, |minutes| Duration::from_secs(minutes * 60));
        let id = sim.new_secret().replace(['+', '/', '='], "");
        sim.sso.open_session(id.clone(), user, ttl);
        let secure = if tls { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "JSESSIONID={id}; Path=/ovirt-engine/api{secure}; HttpOnly"
        ))
        .expect("a cookie of base64 characters is a valid header value")
    });
    Some(Authenticated {
        user,
        bearer,
        set_cookie,
    })
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("JSESSIONID=").map(str::to_owned))
}

/// The engine's 401: `WWW-Authenticate: Basic realm="RESTAPI"` and the container's HTML page.
pub(super) fn unauthorized() -> Response<GatewayBody> {
    let mut response = text(
        StatusCode::UNAUTHORIZED,
        "text/html",
        "<html><head><title>Error</title></head><body>Unauthorized</body></html>",
    );
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"RESTAPI\""),
    );
    response
}

/// A header a response carries when the request opened a session.
pub(super) fn add_cookie(response: &mut Response<GatewayBody>, cookie: Option<HeaderValue>) {
    if let Some(cookie) = cookie {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
}
