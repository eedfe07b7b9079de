//! State shared by replicas (docs/replicas.md), in Redis or Valkey over RESP3: logins, Basic
//! sessions and their ends, and the cache's invalidations, so that any replica answers any
//! client.
//!
//! One multiplexed connection (redis-rs's connection manager: it reconnects on its own and
//! resubscribes), every exchange bounded by `shared.timeout`. The hot path never waits on the
//! store: the caches of `auth` and `cache` stay local, and what other replicas do reaches them
//! as [`Event`]s over one pub/sub channel. While the store cannot be reached, nothing waits on it
//! either: every operation fails at once, the gateway carries on with what it holds
//! (`gateway_shared_store_up` 0, /readyz says so), and each change of reachability is a
//! [`Event::Down`] or [`Event::Up`]: what was heard of may be incomplete.
//!
//! What the store holds is no use to whoever reads it alone: records and messages are sealed
//! (AES-256-GCM) under a key derived from `shared.key`, bound to the record's or channel's name,
//! and records are named by keyed hashes, never by a user name, address or password.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    AsyncCommands, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, RedisConnectionInfo, Value,
};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::config::{SharedConfig, Store};
use crate::metrics::{Metrics, SharedStoreMetrics};

/// The least `shared.key` holds: the keys derived from it are 256 bits.
pub(crate) const MIN_KEY_BYTES: usize = 32;

/// How many events a listener may fall behind before it counts as a gap.
const EVENT_BACKLOG: usize = 4096;

/// Record creation: the value, its last use on the store's clock, its time to live.
const CREATE: &str = r"
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'used', t[1] * 1000 + math.floor(t[2] / 1000))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1";

/// A use of a record, on the store's clock (replicas' clocks may differ).
const TOUCH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'used', t[1] * 1000 + math.floor(t[2] / 1000))
return 1";

/// Ends a record unused for ARGV[1] ms: 1 ended here, 0 used meanwhile, -1 gone already.
const CLAIM_IDLE: &str = r"
local used = tonumber(redis.call('HGET', KEYS[1], 'used'))
if not used then return -1 end
local t = redis.call('TIME')
if t[1] * 1000 + math.floor(t[2] / 1000) - used < tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1";

/// Adds units to buckets' arrival times (microseconds on the store's clock; a bucket behind now
/// starts from now) and returns how far ahead of now each is: KEYS the buckets, ARGV per bucket
/// its units and its interval in microseconds. A bucket is kept as long as it is ahead, and 1 s.
const ADVANCE: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local ahead = {}
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  tat = tat + tonumber(ARGV[2 * i - 1]) * tonumber(ARGV[2 * i])
  redis.call('SET', key, string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
  ahead[i] = tat - now
end
return ahead";

/// What another replica (or this one) made known, or a gap in hearing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Message(Message),
    /// The store can no longer be reached: nothing more will be heard until it is back.
    Down,
    /// The store answers again: messages may have been missed meanwhile.
    Up,
}

/// One message on the replicas' channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Message {
    /// A session or login ended: drop local copies (whoever ended it revoked its tokens).
    Ended { record: String },
    /// A login that others waited for is done (its record stored, or refused).
    Ready { record: String },
    /// A write through some replica succeeded: evict what it touched.
    Written {
        manager: String,
        collection: String,
        id: Option<String>,
    },
    /// A login refused at some replica: counted toward lockouts everywhere.
    LoginFailed {
        user: String,
        address: std::net::IpAddr,
        reached_directory: bool,
    },
    /// A login at some replica that clears failures or makes an address the user's.
    LoginSucceeded { user: String, address: std::net::IpAddr },
}

impl Message {
    /// The events metric's `kind` label.
    fn kind(&self) -> &'static str {
        match self {
            Message::Ended { .. } => "ended",
            Message::Ready { .. } => "ready",
            Message::Written { .. } => "written",
            Message::LoginFailed { .. } => "login_failed",
            Message::LoginSucceeded { .. } => "login_succeeded",
        }
    }
}

/// A message as it goes over the channel: who sent it, so that a replica skips its own (it
/// acted on it already).
#[derive(Serialize, Deserialize)]
struct Envelope {
    from: String,
    #[serde(flatten)]
    message: Message,
}

/// The store could not be asked (down, slow or refusing): the caller carries on without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unreachable;

/// What [`Shared::claim_idle`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Unused everywhere for the idle time: ended here, and this replica revokes its tokens.
    Ended,
    /// Used by some replica meanwhile.
    InUse,
    /// Ended by another replica, or expired in the store.
    Gone,
}

/// What `[shared]` names, read and checked: how to reach the store and the derived keys.
struct Material {
    settings: RedisConnectionInfo,
    /// The CA of a `rediss://` store.
    root: Option<Vec<u8>>,
    seal: LessSafeKey,
    session_secret: hmac::Key,
}

impl Material {
    fn load(config: &SharedConfig) -> Result<Material, String> {
        let key = config.key.read().map_err(|e| format!("shared.key: {e}"))?;
        let key = key.trim_ascii();
        if key.len() < MIN_KEY_BYTES {
            return Err(format!(
                "shared.key: holds {} bytes, at least {MIN_KEY_BYTES} are needed (e.g. openssl rand -base64 48)",
                key.len()
            ));
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"ovirt-gateway shared store").extract(key);
        let seal = prk
            .expand(&[b"seal"], &AES_256_GCM)
            .map(UnboundKey::from)
            .map(LessSafeKey::new)
            .expect("HKDF expands to an AES-256 key");
        let session_secret = prk
            .expand(&[b"session keys"], hmac::HMAC_SHA256)
            .map(hmac::Key::from)
            .expect("HKDF expands to an HMAC key");
        let mut settings = match &config.store {
            Store::Url(url) => url
                .as_str()
                .into_connection_info()
                .map_err(|e| format!("shared.url: {e}"))?
                .redis_settings()
                .clone(),
            Store::Sentinel { database, .. } => RedisConnectionInfo::default().set_db(*database),
        }
        .set_protocol(ProtocolVersion::RESP3);
        if let Some(user) = &config.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &config.password {
            let password = password.read().map_err(|e| format!("shared.password: {e}"))?;
            let password =
                String::from_utf8(password).map_err(|_| "shared.password: is not UTF-8 text".to_owned())?;
            settings = settings.set_password(password.trim_end_matches(['\r', '\n']));
        }
        let root = match &config.ca_file {
            Some(ca) => Some(
                std::fs::read(ca)
                    .map_err(|e| format!("shared.ca_file: cannot read {}: {e}", ca.display()))?,
            ),
            None => None,
        };
        let material = Material {
            settings,
            root,
            seal,
            session_secret,
        };
        if let Store::Url(url) = &config.store {
            material.client(url).map_err(|e| format!("shared.url: {e}"))?;
        }
        Ok(material)
    }

    /// A client (not connected) for the store at `url`, with the configured credentials.
    fn client(&self, url: &str) -> redis::RedisResult<redis::Client> {
        let info = url
            .into_connection_info()?
            .set_redis_settings(self.settings.clone());
        match &self.root {
            Some(root) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root.clone()),
                },
            ),
            None => redis::Client::open(info),
        }
    }
}

/// Checks what `[shared]` names (key, password, CA) without connecting, for `check`.
pub(crate) fn check_material(config: &SharedConfig) -> Result<(), String> {
    Material::load(config).map(drop)
}

pub(crate) struct Shared {
    /// To the store, or to the master the Sentinels named last; `None` before they named one.
    connection: RwLock<Option<ConnectionManager>>,
    manager_config: ConnectionManagerConfig,
    store: Store,
    /// The master's URL the connection goes to (with Sentinels).
    master: Mutex<Option<String>>,
    material: Material,
    /// Where the store is, for the log (no credentials).
    url: String,
    prefix: String,
    channel: String,
    timeout: Duration,
    check_interval: Duration,
    degraded_ttl: Duration,
    /// This process, among the replicas (random, made at start).
    replica: String,
    /// Set by the checks and by failed exchanges; cleared by the connection's loss too.
    up: Arc<AtomicBool>,
    events: broadcast::Sender<Event>,
    create: redis::Script,
    touch: redis::Script,
    claim_idle: redis::Script,
    advance: redis::Script,
    replicas: u32,
    sync_interval: Duration,
    metrics: SharedStoreMetrics,
}

impl Shared {
    /// The client for `[shared]`, without connecting: the gateway starts whether or not the
    /// store answers, and [`watch`](Self::watch) connects. Errors are the configuration's
    /// (key material, CA file), with their key paths.
    pub(crate) fn new(config: &SharedConfig, metrics: &Metrics) -> Result<Arc<Shared>, String> {
        let material = Material::load(config)?;
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let heard = events.clone();
        let channel = format!("{}events", config.key_prefix);
        let pushes = channel.clone();
        let replica = replica_id();
        let me = replica.clone();
        let opener = material.seal.clone();
        let metrics = metrics.shared_store();
        let lost = metrics.up.clone();
        let counted = metrics.events_total.clone();
        let up = Arc::new(AtomicBool::new(false));
        let down = up.clone();
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            // Reconnection is the connection manager's; the health check notices it.
            .set_number_of_retries(1)
            .set_max_delay(config.check_interval)
            .set_automatic_resubscription()
            .set_push_sender(move |push: PushInfo| -> Result<(), ()> {
                match push.kind {
                    PushKind::Disconnection if down.swap(false, Ordering::Relaxed) => {
                        lost.set(0);
                        counted.with_label_values(&["down"]).inc();
                        let _ = heard.send(Event::Down);
                    }
                    PushKind::Message => {
                        if let Some(message) = message_of(&push.data, &pushes, &me, &opener) {
                            counted.with_label_values(&[message.kind()]).inc();
                            let _ = heard.send(Event::Message(message));
                        }
                    }
                    _ => {}
                }
                Ok(())
            });
        let (connection, url) = match &config.store {
            Store::Url(url) => {
                let client = material.client(url).map_err(|e| format!("shared.url: {e}"))?;
                let connection = ConnectionManager::new_lazy_with_config(client, manager_config.clone())
                    .map_err(|e| format!("shared.url: {e}"))?;
                (Some(connection), url.clone())
            }
            Store::Sentinel {
                sentinels, service, ..
            } => (
                None,
                format!("the master of `{service}` by Sentinel {}", sentinels.join(", ")),
            ),
        };
        metrics.up.set(0);
        Ok(Arc::new(Shared {
            connection: RwLock::new(connection),
            manager_config,
            store: config.store.clone(),
            master: Mutex::new(None),
            url,
            prefix: config.key_prefix.clone(),
            replica,
            channel,
            timeout: config.timeout,
            check_interval: config.check_interval,
            degraded_ttl: config.degraded_ttl,
            material,
            up,
            events,
            create: redis::Script::new(CREATE),
            touch: redis::Script::new(TOUCH),
            claim_idle: redis::Script::new(CLAIM_IDLE),
            advance: redis::Script::new(ADVANCE),
            replicas: config.replicas,
            sync_interval: config.sync_interval,
            metrics,
        }))
    }

    /// Keys the sessions of Basic credentials alike on every replica.
    pub(crate) fn session_secret(&self) -> &hmac::Key {
        &self.material.session_secret
    }

    /// Whether the store answered its last exchange.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// How long a client should wait before retrying what needed the store.
    pub(crate) fn retry_after(&self) -> Duration {
        self.check_interval
    }

    /// How many replicas share the store (`shared.replicas`): while it cannot be reached, each
    /// takes that share of a rate limit.
    pub(crate) fn replicas(&self) -> u32 {
        self.replicas
    }

    /// How often rate-limit buckets are synchronised.
    pub(crate) fn sync_interval(&self) -> Duration {
        self.sync_interval
    }

    /// The store's name for a rate-limit bucket: a keyed hash, so that the store holds no user
    /// name or address.
    pub(crate) fn bucket(&self, key: &str) -> String {
        let tag = hmac::sign(&self.material.session_secret, key.as_bytes());
        let hex: String = tag.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.record("bucket", &hex)
    }

    /// Adds `units` (each `interval` long) to buckets; how far ahead of now each is then.
    pub(crate) async fn advance(
        &self,
        buckets: &[(String, u64, Duration)],
    ) -> Result<Vec<Duration>, Unreachable> {
        let mut invocation = self.advance.prepare_invoke();
        for (bucket, units, interval) in buckets {
            invocation
                .key(bucket)
                .arg(*units)
                .arg(interval.as_micros() as u64);
        }
        let mut connection = self.connection().ok_or(Unreachable)?;
        let ahead: Vec<i64> = self
            .run("advance", async {
                invocation.invoke_async(&mut connection).await
            })
            .await?;
        Ok(ahead
            .into_iter()
            .map(|us| Duration::from_micros(us.max(0) as u64))
            .collect())
    }

    /// While the store cannot be reached, the longest an answer may be cached.
    pub(crate) fn degraded_ttl(&self) -> Duration {
        self.degraded_ttl
    }

    /// Events from now on (subscribe before asking the store about what an event would
    /// announce, so that one in between is not missed).
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The store's name for a record of `kind` (`session`, `login`, ...).
    pub(crate) fn record(&self, kind: &str, id: &str) -> String {
        [self.prefix.as_str(), kind, ":", id].concat()
    }

    /// Checks the store every `shared.check_interval`, for as long as the gateway runs:
    /// subscribes when it comes (back), and makes each change of reachability known.
    pub(crate) async fn watch(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.check_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            ticks.tick().await;
            let outcome = self.check().await;
            let reached = outcome.is_ok();
            let was = self.up.swap(reached, Ordering::Relaxed);
            self.metrics.up.set(i64::from(reached));
            match &outcome {
                Ok(()) if !was => tracing::info!(
                    url = %self.url,
                    "the shared store answers: what was made and ended without it is written to it, and the cache starts afresh"
                ),
                Err(error) if was || first => tracing::warn!(
                    url = %self.url,
                    %error,
                    "the shared store cannot be reached: sessions, logins and the cache carry on locally (docs/replicas.md)"
                ),
                _ => {}
            }
            first = false;
            if reached != was {
                self.changed(if reached { Event::Up } else { Event::Down });
            }
        }
    }

    fn changed(&self, event: Event) {
        let kind = if event == Event::Up { "up" } else { "down" };
        self.metrics.events_total.with_label_values(&[kind]).inc();
        let _ = self.events.send(event);
    }

    /// A PING, and the subscription to the replicas' channel (again: the store may have
    /// restarted, and subscribing twice changes nothing).
    async fn check(&self) -> Result<(), String> {
        let outcome = match (self.exchange_check().await, &self.store) {
            (Ok(()), _) => return Ok(()),
            (Err(error), Store::Url(_)) => Err(error),
            // Where the Sentinels say the master is now (after a failover, another replica).
            (
                Err(error),
                Store::Sentinel {
                    sentinels, service, ..
                },
            ) => match self.ask(sentinels, service).await {
                Ok(master) => {
                    let known = self.master.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    if known.as_deref() != Some(master.as_str()) {
                        tracing::info!(%master, service, "the Sentinels name a master: connecting to it");
                        self.connect(&master)?;
                    }
                    self.exchange_check().await
                }
                Err(sentinels) => Err(format!("{error}; {sentinels}")),
            },
        };
        if outcome.is_err() {
            self.failed("check");
        }
        outcome
    }

    /// A ROLE (a store that is not its master, such as a demoted one after a failover, cannot
    /// take writes) and the subscription to the replicas' channel (again: the store may have
    /// restarted, and subscribing twice changes nothing).
    async fn exchange_check(&self) -> Result<(), String> {
        let mut connection = self
            .connection()
            .ok_or_else(|| "no master named yet".to_owned())?;
        let exchange = async {
            let role: Vec<Value> = redis::cmd("ROLE")
                .query_async(&mut connection)
                .await
                .map_err(|e| e.to_string())?;
            if !matches!(role.first(), Some(Value::BulkString(kind)) if kind == b"master") {
                return Err("it is not a master (a replica takes no writes)".to_owned());
            }
            connection
                .subscribe(&self.channel)
                .await
                .map_err(|e| e.to_string())
        };
        tokio::time::timeout(self.timeout * 2, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.timeout * 2)))
    }

    /// The master's URL, from the first Sentinel that names one.
    async fn ask(&self, sentinels: &[String], service: &str) -> Result<String, String> {
        let mut problems = Vec::new();
        for sentinel in sentinels {
            let exchange = async {
                let client = redis::Client::open(format!("redis://{sentinel}/"))?;
                let mut connection = client.get_multiplexed_async_connection().await?;
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(service)
                    .query_async::<Option<(String, u16)>>(&mut connection)
                    .await
            };
            match tokio::time::timeout(self.timeout, exchange).await {
                Ok(Ok(Some((host, port)))) => return Ok(format!("redis://{host}:{port}/")),
                Ok(Ok(None)) => problems.push(format!("{sentinel} knows no `{service}`")),
                Ok(Err(error)) => problems.push(format!("{sentinel}: {error}")),
                Err(_) => problems.push(format!("{sentinel}: no answer within {:?}", self.timeout)),
            }
        }
        Err(format!("no Sentinel named a master ({})", problems.join("; ")))
    }

    /// Replaces the connection with one to `master`.
    fn connect(&self, master: &str) -> Result<(), String> {
        let client = self.material.client(master).map_err(|e| e.to_string())?;
        let connection = ConnectionManager::new_lazy_with_config(client, self.manager_config.clone())
            .map_err(|e| e.to_string())?;
        *self.connection.write().unwrap_or_else(|p| p.into_inner()) = Some(connection);
        *self.master.lock().unwrap_or_else(|p| p.into_inner()) = Some(master.to_owned());
        Ok(())
    }

    fn connection(&self) -> Option<ConnectionManager> {
        self.connection.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn failed(&self, operation: &'static str) {
        self.metrics.errors_total.with_label_values(&[operation]).inc();
    }

    /// Runs one exchange within `shared.timeout`; at once `Unreachable` while the store is
    /// known to be down. A failure marks it down until the next check finds it again.
    async fn run<T, F>(&self, operation: &'static str, exchange: F) -> Result<T, Unreachable>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        if !self.is_up() {
            return Err(Unreachable);
        }
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(value)) => Ok(value),
            outcome => {
                if let Ok(Err(error)) = &outcome {
                    tracing::warn!(operation, %error, "shared store exchange failed");
                } else {
                    tracing::warn!(operation, timeout = ?self.timeout, "shared store exchange timed out");
                }
                self.failed(operation);
                if self.up.swap(false, Ordering::Relaxed) {
                    self.metrics.up.set(0);
                    self.changed(Event::Down);
                }
                Err(Unreachable)
            }
        }
    }

    /// Stores a record sealed, used now, kept `ttl` at most.
    pub(crate) async fn create(&self, record: &str, value: &[u8], ttl: Duration) -> Result<(), Unreachable> {
        let sealed = self.seal(record, value);
        let mut connection = self.connection().ok_or(Unreachable)?;
        let ttl = ttl.as_millis().max(1) as u64;
        self.run("create", async {
            self.create
                .key(record)
                .arg(sealed)
                .arg(ttl)
                .invoke_async::<i64>(&mut connection)
                .await
        })
        .await
        .map(drop)
    }

    /// A record's value, opened; `None` when there is none, or it does not open under this
    /// gateway's key (then it is not trusted: logged, never used).
    pub(crate) async fn fetch(&self, record: &str) -> Result<Option<Vec<u8>>, Unreachable> {
        let mut connection = self.connection().ok_or(Unreachable)?;
        let sealed: Option<Vec<u8>> = self
            .run("fetch", async { connection.hget(record, "v").await })
            .await?;
        Ok(sealed.and_then(|sealed| {
            let opened = self.open(record, sealed);
            if opened.is_none() {
                tracing::warn!(
                    record,
                    "a shared record does not open with shared.key: do all replicas have the same key?"
                );
            }
            opened
        }))
    }

    /// Records a use of a record (its idle time starts again on every replica).
    pub(crate) async fn touch(&self, record: &str) -> Result<(), Unreachable> {
        let mut connection = self.connection().ok_or(Unreachable)?;
        self.run("touch", async {
            self.touch.key(record).invoke_async::<i64>(&mut connection).await
        })
        .await
        .map(drop)
    }

    /// Ends a record if no replica used it for `idle`.
    pub(crate) async fn claim_idle(&self, record: &str, idle: Duration) -> Result<Claim, Unreachable> {
        let mut connection = self.connection().ok_or(Unreachable)?;
        let idle = idle.as_millis() as u64;
        let found = self
            .run("claim", async {
                self.claim_idle
                    .key(record)
                    .arg(idle)
                    .invoke_async::<i64>(&mut connection)
                    .await
            })
            .await?;
        Ok(match found {
            1 => Claim::Ended,
            0 => Claim::InUse,
            _ => Claim::Gone,
        })
    }

    /// Removes a record; true when it was there (whoever removes it revokes its tokens).
    pub(crate) async fn remove(&self, record: &str) -> Result<bool, Unreachable> {
        let mut connection = self.connection().ok_or(Unreachable)?;
        let removed: i64 = self.run("remove", async { connection.del(record).await }).await?;
        Ok(removed > 0)
    }

    /// Tells the other replicas.
    pub(crate) async fn publish(&self, message: &Message) -> Result<(), Unreachable> {
        let envelope = Envelope {
            from: self.replica.clone(),
            message: message.clone(),
        };
        let text = serde_json::to_vec(&envelope).expect("messages serialize");
        let sealed = self.seal(&self.channel, &text);
        let mut connection = self.connection().ok_or(Unreachable)?;
        self.run("publish", async {
            connection.publish::<_, _, i64>(&self.channel, sealed).await
        })
        .await
        .map(drop)
    }

    /// Takes the lock named `name` for `ttl` unless another replica holds it.
    pub(crate) async fn lock(&self, name: &str, ttl: Duration) -> Result<bool, Unreachable> {
        let mut connection = self.connection().ok_or(Unreachable)?;
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::PX(ttl.as_millis().max(1) as u64));
        let taken: Option<String> = self
            .run("lock", async { connection.set_options(name, 1, options).await })
            .await?;
        Ok(taken.is_some())
    }

    pub(crate) async fn unlock(&self, name: &str) {
        let Some(mut connection) = self.connection() else {
            return;
        };
        let _ = self
            .run("unlock", async { connection.del::<_, i64>(name).await })
            .await;
    }

    fn seal(&self, record: &str, plain: &[u8]) -> Vec<u8> {
        seal(&self.material.seal, record, plain)
    }

    fn open(&self, record: &str, sealed: Vec<u8>) -> Option<Vec<u8>> {
        open(&self.material.seal, record, &sealed)
    }
}

/// `nonce || ciphertext || tag`, the record's (or channel's) name bound in as associated data:
/// a record copied under another name does not open.
fn seal(key: &LessSafeKey, name: &str, plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .expect("the system random source works");
    let mut sealed = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(name.as_bytes()),
        &mut sealed,
    )
    .expect("AES-GCM seals any length a record has");
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

fn open(key: &LessSafeKey, name: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut rest = rest.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(name.as_bytes()), &mut rest)
        .ok()?;
    Some(plain.to_vec())
}

/// A random replica id (64 bits, hex).
fn replica_id() -> String {
    let mut bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The message of a pub/sub push on `channel`, if it is one of ours (sealed under `key`) and
/// another replica's (`me` is this one).
fn message_of(data: &[Value], channel: &str, me: &str, key: &LessSafeKey) -> Option<Message> {
    match data {
        [Value::BulkString(from), Value::BulkString(payload)] if from == channel.as_bytes() => {
            let envelope: Envelope = serde_json::from_slice(&open(key, channel, payload)?).ok()?;
            (envelope.from != me).then_some(envelope.message)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
