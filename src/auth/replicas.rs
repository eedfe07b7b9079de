//! Sessions and logins shared with the other replicas through the store (docs/replicas.md).
//!
//! Each replica keeps its local caches (the hot path never waits on the store); the store holds
//! one record per session and per login, sealed (the Managers' tokens are encrypted there), under
//! the session's keyed hash or the login's id. A replica that does not hold a record fetches it
//! on first use; one replica logs a user in while the others wait for it (a lock in the store,
//! bounded by [`SINGLE_FLIGHT`]); whoever removes a record revokes its tokens and tells the
//! others, who drop their copies. Uses are recorded in the store now and then
//! ([`TOUCH_EVERY`]), so that a session idle on one replica but used on another is not ended.
//!
//! While the store cannot be reached each replica carries on with what it holds: new sessions
//! and logins are kept locally and written to the store when it is back, ends are told then.
//! Revoked tokens stay refused meanwhile because the Managers refuse them.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::basic::{Session, SessionKey};
use super::logins::{Login, ManagerToken, Member, Outcome};
use super::sso_client::{LoginError, UpstreamToken};
use super::{Authenticator, Lease};
use crate::shared::{Claim, Event, Message, Shared, Unreachable};

/// The longest one replica waits for another's login of the same user before it logs in itself.
pub(super) const SINGLE_FLIGHT: Duration = Duration::from_secs(10);

/// How often, at most, a replica records in the store that it used a session or login.
const TOUCH_EVERY: Duration = Duration::from_secs(5);

/// The most writes kept for the store while it cannot be reached.
const MAX_UNSENT: usize = 10_000;

#[derive(Serialize, Deserialize)]
struct SessionRecord {
    user: String,
    token: String,
    user_id: Option<String>,
    /// When the login was made, in milliseconds since the epoch.
    began: u64,
}

#[derive(Serialize, Deserialize)]
struct LoginRecord {
    user: String,
    began: u64,
    members: Vec<MemberRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum MemberRecord {
    Token {
        manager: String,
        token: String,
        user_id: Option<String>,
        name: String,
    },
    Refused {
        manager: String,
        message: String,
    },
    /// Not logged in yet; only the replica that holds the credentials can.
    Pending {
        manager: String,
    },
}

/// What waits for the store to come back.
#[derive(Default)]
pub(super) struct Unsent {
    /// Records made while it could not be reached.
    records: Vec<(String, Vec<u8>, Duration)>,
    /// Records ended meanwhile, to remove and tell.
    ended: Vec<String>,
}

/// Milliseconds since the epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn hex(key: &SessionKey) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<SessionKey> {
    let mut key = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

impl Lease {
    /// A lease on a record made elsewhere `began` (ms since the epoch), used now.
    fn since(began: u64) -> Lease {
        let now = Instant::now();
        let age = Duration::from_millis(now_ms().saturating_sub(began));
        Lease::at(now.checked_sub(age).unwrap_or(now))
    }
}

impl Authenticator {
    pub(super) fn session_record(shared: &Shared, key: &SessionKey) -> String {
        shared.record("session", &hex(key))
    }

    /// The session of `key` from the store, if another replica made it.
    pub(super) async fn fetch_session(
        &self,
        shared: &Shared,
        key: &SessionKey,
        upstream: &Arc<crate::upstream::Upstream>,
    ) -> Option<Arc<Session>> {
        let record = Self::session_record(shared, key);
        let bytes = shared.fetch(&record).await.ok()??;
        let record: SessionRecord = serde_json::from_slice(&bytes).ok()?;
        self.metrics.sessions.inc();
        Some(Arc::new(Session {
            user: record.user,
            token: UpstreamToken::new(record.token),
            user_id: record.user_id,
            upstream: upstream.clone(),
            lease: Lease::since(record.began),
        }))
    }

    /// A session at `key`: from the store, or logged in by `login` here while the other
    /// replicas wait for it (or, when the store cannot be reached, here alone).
    pub(super) async fn shared_session<F>(
        &self,
        shared: &Shared,
        key: &SessionKey,
        upstream: &Arc<crate::upstream::Upstream>,
        login: F,
    ) -> Result<Arc<Session>, LoginError>
    where
        F: Future<Output = Result<Arc<Session>, LoginError>>,
    {
        let record = Self::session_record(shared, key);
        let mut events = shared.subscribe();
        if let Some(session) = self.fetch_session(shared, key, upstream).await {
            return Ok(session);
        }
        let lock = shared.record("lock:session", &hex(key));
        let locked = match shared.lock(&lock, SINGLE_FLIGHT).await {
            Ok(true) => true,
            Ok(false) => {
                // Another replica is logging this user in: its record, once it says so.
                let heard = tokio::time::timeout(SINGLE_FLIGHT, async {
                    loop {
                        match events.recv().await {
                            Ok(Event::Message(Message::Ready { record: r })) if r == record => break,
                            Ok(Event::Down) | Err(RecvError::Closed) => break,
                            _ => {}
                        }
                    }
                })
                .await;
                if heard.is_ok()
                    && let Some(session) = self.fetch_session(shared, key, upstream).await
                {
                    return Ok(session);
                }
                false
            }
            Err(Unreachable) => false,
        };
        let outcome = login.await;
        if let Ok(session) = &outcome {
            let value = SessionRecord {
                user: session.user.clone(),
                token: session.token.token.clone(),
                user_id: session.user_id.clone(),
                began: now_ms(),
            };
            let value = serde_json::to_vec(&value).expect("records serialize");
            self.store(shared, record.clone(), value).await;
        }
        if locked {
            shared.unlock(&lock).await;
            let _ = shared.publish(&Message::Ready { record }).await;
        }
        outcome
    }

    pub(super) fn login_record(shared: &Shared, sid: &str) -> String {
        shared.record("login", sid)
    }

    /// Writes a login's record (when it is made, and when a pending member is settled).
    pub(super) async fn store_login(&self, sid: &str, login: &Login) {
        let Some(shared) = &self.shared else { return };
        let members = login
            .members
            .iter()
            .map(|member| {
                let manager = member.upstream.name().to_owned();
                match member.outcome.get() {
                    Some(Outcome::Token(t)) => MemberRecord::Token {
                        manager,
                        token: t.token.token.clone(),
                        user_id: t.user_id.clone(),
                        name: t.name.clone(),
                    },
                    Some(Outcome::Refused(message)) => MemberRecord::Refused {
                        manager,
                        message: message.clone(),
                    },
                    None => MemberRecord::Pending { manager },
                }
            })
            .collect();
        let value = LoginRecord {
            user: login.user.clone(),
            began: login.began,
            members,
        };
        let value = serde_json::to_vec(&value).expect("records serialize");
        let record = Self::login_record(shared, sid);
        self.store(shared, record.clone(), value).await;
        // Replicas holding an older copy drop it.
        let _ = shared.publish(&Message::Ready { record }).await;
    }

    /// The login `sid` from the store, if another replica made it. `Err` when the store
    /// cannot be asked: the login may exist (a 503, never a 401).
    pub(super) async fn fetch_login(&self, sid: &str) -> Result<Option<Arc<Login>>, Unreachable> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        let Some(bytes) = shared.fetch(&Self::login_record(shared, sid)).await? else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<LoginRecord>(&bytes) else {
            return Ok(None);
        };
        let members = record
            .members
            .into_iter()
            .filter_map(|member| {
                let (manager, outcome) = match member {
                    MemberRecord::Token {
                        manager,
                        token,
                        user_id,
                        name,
                    } => (
                        manager,
                        Some(Outcome::Token(ManagerToken {
                            token: UpstreamToken::new(token),
                            user_id,
                            name,
                        })),
                    ),
                    MemberRecord::Refused { manager, message } => (manager, Some(Outcome::Refused(message))),
                    MemberRecord::Pending { manager } => (manager, None),
                };
                // A Manager this replica does not know (configurations differ) is left out.
                let upstream = self.upstreams.iter().find(|u| u.name() == manager)?.clone();
                Some(Member::new(upstream, outcome))
            })
            .collect();
        let login = Arc::new(Login::fetched(
            record.user,
            members,
            Lease::since(record.began),
            record.began,
        ));
        self.metrics.sessions.inc();
        self.logins.insert(sid.to_owned(), login.clone()).await;
        Ok(Some(login))
    }

    async fn store(&self, shared: &Shared, record: String, value: Vec<u8>) {
        let ttl = self.config.session_lifetime;
        if shared.create(&record, &value, ttl).await.is_err() {
            let mut unsent = self.unsent.lock().unwrap_or_else(|p| p.into_inner());
            if unsent.records.len() < MAX_UNSENT {
                unsent.records.push((record, value, ttl));
            }
        }
    }

    /// Removes the record `name` names and tells the other replicas; true when this replica
    /// removed it (and so revokes its tokens), and without `[shared]`. With the store out of
    /// reach, true: the end is told when it is back.
    pub(super) async fn end_everywhere(&self, name: impl FnOnce(&Shared) -> String) -> bool {
        let Some(shared) = &self.shared else { return true };
        let record = name(shared);
        match shared.remove(&record).await {
            Ok(removed) => {
                let _ = shared.publish(&Message::Ended { record }).await;
                removed
            }
            Err(Unreachable) => {
                let mut unsent = self.unsent.lock().unwrap_or_else(|p| p.into_inner());
                if unsent.ended.len() < MAX_UNSENT {
                    unsent.ended.push(record);
                }
                true
            }
        }
    }

    /// Whether a session or login this replica finds idle is idle everywhere: then it ends
    /// here (`Some(true)`: revoke), or it was ended elsewhere or is in use (`Some(false)`: drop
    /// the local copy only). `None`: the store cannot say; keep it for the next sweep.
    pub(super) async fn idle_everywhere(&self, record: String) -> Option<bool> {
        let Some(shared) = &self.shared else {
            return Some(true);
        };
        match shared.claim_idle(&record, self.config.session_idle).await {
            Ok(Claim::Ended) => {
                let _ = shared.publish(&Message::Ended { record }).await;
                Some(true)
            }
            Ok(Claim::InUse | Claim::Gone) => Some(false),
            Err(Unreachable) => None,
        }
    }

    /// Records a use in the store now and then, in the background.
    pub(super) fn touch_shared(&self, record: impl FnOnce(&Shared) -> String, lease: &Lease) {
        // Often enough that no replica finds it idle while another uses it.
        if let Some(shared) = &self.shared
            && lease.shared_touch_due(TOUCH_EVERY.min(self.config.session_idle / 4))
        {
            let (shared, record) = (shared.clone(), record(shared));
            tokio::spawn(async move {
                let _ = shared.touch(&record).await;
            });
        }
    }

    /// Follows what the other replicas do, for as long as the gateway runs: drops local copies
    /// of ended or changed sessions and logins, and, when the store is back, writes what was
    /// made and ended without it.
    pub(crate) async fn follow(self: Arc<Self>) {
        let Some(shared) = self.shared.clone() else { return };
        let mut events = shared.subscribe();
        let (sessions, logins) = (shared.record("session", ""), shared.record("login", ""));
        loop {
            match events.recv().await {
                Ok(Event::Message(Message::Ended { record } | Message::Ready { record })) => {
                    if let Some(key) = record.strip_prefix(&sessions).and_then(unhex) {
                        self.sessions.invalidate(&key).await;
                    } else if let Some(sid) = record.strip_prefix(&logins) {
                        self.logins.invalidate(sid).await;
                    }
                }
                Ok(Event::Up) => self.send_unsent(&shared).await,
                // Missed messages: every copy is fetched anew.
                Err(RecvError::Lagged(_)) => {
                    self.sessions.invalidate_all();
                    self.logins.invalidate_all();
                }
                Ok(_) => {}
                Err(RecvError::Closed) => return,
            }
        }
    }

    async fn send_unsent(&self, shared: &Shared) {
        let unsent = std::mem::take(&mut *self.unsent.lock().unwrap_or_else(|p| p.into_inner()));
        for (record, value, ttl) in unsent.records {
            let _ = shared.create(&record, &value, ttl).await;
        }
        for record in unsent.ended {
            let _ = shared.remove(&record).await;
            let _ = shared.publish(&Message::Ended { record }).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Session keys go to the store as hex and come back the same.
    #[test]
    fn session_keys_round_trip_as_hex() {
        let key: SessionKey = std::array::from_fn(|i| (i * 7) as u8);
        assert_eq!(unhex(&hex(&key)), Some(key));
        assert_eq!(unhex("00"), None);
        assert_eq!(unhex(&"zz".repeat(32)), None);
    }
}
