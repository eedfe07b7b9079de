//! Rate limits (docs/rate-limiting.md): a bucket per client address, taken before authentication
//! (cheap, protects the SSO endpoints from floods), and a bucket per user after it, taken by
//! cost (a listing or search costs more than an entity GET; writes and actions more still).
//!
//! Each bucket is GCRA (the generic cell rate algorithm): a quota of `burst` units refilled at
//! `rate` units per second, kept as one instant per key, the "theoretical arrival time". A bucket
//! whose instant has passed is full, the same as no bucket at all, so such keys are dropped
//! whenever the store is over its size: memory stays bounded whatever the number of addresses.
//! The state lives behind [`Buckets`]: local ([`LocalBuckets`]), or with `[shared]` local and
//! synchronised with the other replicas' (shared.rs), without touching the stages.
//!
//! A request over its bucket is first delayed, as nginx's `limit_req` without `nodelay` does: its
//! units are reserved at once (the theoretical arrival time moves past now) and it waits until
//! they are due, when that is at most `rate_limit.max_delay` away; only a longer wait is
//! refused, at once, without taking anything. Sequential clients (the SDK, Ansible) are thereby
//! slowed to the rate and never refused.
//!
//! GCRA is written here rather than taken from governor (docs/rate-limiting.md, "Why not
//! governor"): its `until_ready` sleeps on a timer of its own (futures-timer, not tokio's, so it
//! can neither be bounded nor tested under paused time) and reserves nothing, so waiters race
//! and a wait cannot be known, and refused, up front; and its limiters hold one quota each, its
//! stores are synchronous, where quotas here differ by user and change on reload, and the state
//! is to move to a store shared between replicas.

pub(crate) mod logins;
mod shared;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use http::Method;
use tokio::time::Instant;

use crate::api::path::{ApiPath, EngineArea};
use crate::config::{RateLimitConfig, RateQuota};
use crate::metrics::Metrics;
use crate::shared::{Event, Shared};
pub(crate) use shared::SharedBuckets;
use tokio::sync::broadcast;

/// What a bucket said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Taken; `remaining` units are left, and the bucket is full again after `full_in`. The
    /// units are due after `delay` (zero within the burst): the request waits that long.
    Allowed {
        remaining: u32,
        full_in: Duration,
        delay: Duration,
    },
    /// Not taken: the units are there after `retry_after` (or never, when the cost is larger than
    /// the burst: `retry_after` is then the time to fill the whole bucket).
    Limited { retry_after: Duration },
}

/// Rate-limit state, one bucket per key.
pub(crate) trait Buckets: Send + Sync {
    /// Takes `cost` units from `key`'s bucket under `quota` at `now`, if they are there, or will
    /// be within `max_delay`.
    fn take(&self, key: &str, cost: u32, quota: RateQuota, max_delay: Duration, now: Instant) -> Taken;
}

/// Buckets in this process: sharded maps of key → theoretical arrival time.
pub(crate) struct LocalBuckets {
    shards: Vec<Mutex<HashMap<String, Instant>>>,
    hasher: RandomState,
    /// Keys held at most per shard.
    per_shard: usize,
}

const SHARDS: usize = 16;

impl LocalBuckets {
    pub(crate) fn new(max_keys: usize) -> LocalBuckets {
        LocalBuckets {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// Keys held (full buckets not yet swept included): the tests' view of the bound.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

impl LocalBuckets {
    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.shards[self.hasher.hash_one(key) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Sets `key`'s arrival time, keeping the shard within its bound.
    fn hold(&self, buckets: &mut HashMap<String, Instant>, key: &str, arrival: Instant, now: Instant) {
        match buckets.get_mut(key) {
            Some(held) => *held = arrival,
            None => {
                if buckets.len() >= self.per_shard {
                    // Full buckets are the same as none; if every bucket is in use, the
                    // emptiest-looking half goes (their next request finds a full bucket).
                    buckets.retain(|_, arrival| *arrival > now);
                    if buckets.len() >= self.per_shard {
                        let mut arrivals: Vec<Instant> = buckets.values().copied().collect();
                        arrivals.sort_unstable();
                        let median = arrivals[arrivals.len() / 2];
                        buckets.retain(|_, arrival| *arrival > median);
                    }
                }
                buckets.insert(key.to_owned(), arrival);
            }
        }
    }

    /// Moves `key`'s arrival time to `arrival` if that is later: units taken elsewhere
    /// (ratelimit/shared.rs).
    pub(crate) fn raise(&self, key: &str, arrival: Instant, now: Instant) {
        let mut buckets = self.shard(key);
        if buckets.get(key).is_none_or(|held| *held < arrival) {
            self.hold(&mut buckets, key, arrival, now);
        }
    }
}

impl Buckets for LocalBuckets {
    fn take(&self, key: &str, cost: u32, quota: RateQuota, max_delay: Duration, now: Instant) -> Taken {
        let mut buckets = self.shard(key);
        let taken = gcra(buckets.get(key).copied(), cost, quota, max_delay, now);
        if let (Taken::Allowed { .. }, Some(arrival)) = taken {
            self.hold(&mut buckets, key, arrival, now);
        }
        taken.0
    }
}

/// GCRA: with `arrival` the bucket's theoretical arrival time (none: a full bucket), takes
/// `cost` units, due now or within `max_delay`; returns the answer and the new arrival time
/// when taken.
fn gcra(
    arrival: Option<Instant>,
    cost: u32,
    quota: RateQuota,
    max_delay: Duration,
    now: Instant,
) -> (Taken, Option<Instant>) {
    let interval = quota.interval();
    let tolerance = interval * quota.burst;
    if cost > quota.burst {
        return (
            Taken::Limited {
                retry_after: tolerance,
            },
            None,
        );
    }
    let start = arrival.map_or(now, |a| a.max(now));
    let next = start + interval * cost;
    let due = next.checked_sub(tolerance).unwrap_or(now).max(now);
    let delay = due - now;
    if delay > max_delay {
        // A request sent after this long would be let through with the longest delay.
        return (
            Taken::Limited {
                retry_after: delay - max_delay,
            },
            None,
        );
    }
    let used = next - now;
    let remaining = (tolerance.saturating_sub(used).as_nanos() / interval.as_nanos().max(1)) as u32;
    (
        Taken::Allowed {
            remaining,
            full_in: used,
            delay,
        },
        Some(next),
    )
}

/// What a request costs the user's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A GET of a collection (a listing or a search) or of the root, or of anything with
    /// `follow`, which inlines collections.
    Collection,
    /// A GET of an entity or anything below one.
    Entity,
    /// add, update, remove.
    Write,
    /// An action verb (POST .../start).
    Action,
}

impl Class {
    pub fn of(method: &Method, path: &ApiPath) -> Class {
        let segments = match &path.area {
            EngineArea::Api(api) => api.segments.len(),
            _ => 0,
        };
        // `follow` as the engine reads it (query, then the last segment's matrix parameters).
        let follows = || {
            !crate::api::params::EngineParams::new(path, &http::HeaderMap::new())
                .follow()
                .is_empty()
        };
        match *method {
            Method::GET | Method::HEAD | Method::OPTIONS if segments <= 1 || follows() => Class::Collection,
            Method::GET | Method::HEAD | Method::OPTIONS => Class::Entity,
            Method::POST if is_action(path) => Class::Action,
            _ => Class::Write,
        }
    }
}

fn is_action(path: &ApiPath) -> bool {
    match &path.area {
        EngineArea::Api(api) => api
            .segments
            .last()
            .is_some_and(|last| crate::api::is_verb(&last.name)),
        _ => false,
    }
}

/// Whose bucket a request is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The client's address (`rate_limit.per_ip`).
    Address,
    /// The authenticated user (`rate_limit.per_user` and its overrides).
    User,
}

impl Scope {
    /// The name in metric labels and RateLimit headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Address => "ip",
            Scope::User => "user",
        }
    }
}

/// Whose bucket a request was refused by, for the answer and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub scope: Scope,
    pub quota: RateQuota,
    pub retry_after: Duration,
}

/// What an allowed request was let through under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub quota: RateQuota,
    /// How long the request waits before it goes on (zero within the burst).
    pub delay: Duration,
}

pub struct RateLimiter {
    /// Swapped whole on reload; the buckets stay.
    config: RwLock<Arc<RateLimitConfig>>,
    buckets: Arc<dyn Buckets>,
    logins: logins::Logins,
    metrics: Arc<Metrics>,
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig, metrics: Arc<Metrics>) -> RateLimiter {
        let buckets = Arc::new(LocalBuckets::new(config.max_keys));
        RateLimiter::with_buckets(config, metrics, buckets, None)
    }

    fn with_buckets(
        config: RateLimitConfig,
        metrics: Arc<Metrics>,
        buckets: Arc<dyn Buckets>,
        shared: Option<Arc<Shared>>,
    ) -> RateLimiter {
        RateLimiter {
            logins: logins::Logins::new(config.logins, config.max_keys, metrics.clone(), shared),
            config: RwLock::new(Arc::new(config)),
            buckets,
            metrics,
        }
    }

    /// With `[shared]`: buckets synchronised with the other replicas' by [`SharedBuckets::sync`]
    /// (docs/replicas.md, "Rate limits").
    pub(crate) fn shared(
        config: RateLimitConfig,
        metrics: Arc<Metrics>,
        store: Arc<Shared>,
    ) -> (RateLimiter, Arc<SharedBuckets>) {
        let buckets = Arc::new(SharedBuckets::new(
            LocalBuckets::new(config.max_keys),
            store.clone(),
        ));
        (
            RateLimiter::with_buckets(config, metrics, buckets.clone(), Some(store)),
            buckets,
        )
    }

    /// Counts the other replicas' failed and succeeded logins here, for as long as the gateway
    /// runs (docs/replicas.md, "Login lockouts").
    pub(crate) async fn follow(self: Arc<Self>, store: Arc<Shared>) {
        let mut events = store.subscribe();
        loop {
            match events.recv().await {
                Ok(Event::Message(message)) => self.logins.heard(message),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn config(&self) -> Arc<RateLimitConfig> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies a new configuration to the requests that follow: quotas, costs, overrides and
    /// login lockouts (the Managers' gates are resized by their upstreams); buckets and records
    /// keep their state. Returns the keys that changed but only take effect at the next start
    /// (`max_keys`).
    pub fn reload(&self, config: RateLimitConfig) -> Vec<&'static str> {
        let mut config = config;
        let current = self.config();
        let mut later = Vec::new();
        if config.max_keys != current.max_keys {
            later.push("rate_limit.max_keys");
            config.max_keys = current.max_keys;
        }
        self.logins.set_config(config.logins);
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        later
    }

    /// Failed-login lockouts.
    pub fn logins(&self) -> &logins::Logins {
        &self.logins
    }

    /// One unit from the bucket of the client address (`ip`, as text).
    pub fn by_address(&self, ip: &str) -> Result<Allowance, Limited> {
        let config = self.config();
        self.take(
            Scope::Address,
            &["ip ", ip].concat(),
            1,
            config.per_ip,
            config.max_delay,
        )
    }

    /// The request's cost from the user's bucket, under their own override, else their first
    /// group's listed (`groups` is asked only when there are group overrides), else `per_user`.
    pub fn by_user(
        &self,
        user: &str,
        groups: impl FnOnce() -> Vec<String>,
        class: Class,
    ) -> Result<Allowance, Limited> {
        let config = self.config();
        let own = config.users.iter().find(|(name, _)| name == user);
        let quota = match own {
            Some((_, quota)) => *quota,
            None if config.groups.is_empty() => config.per_user,
            None => {
                let groups = groups();
                config
                    .groups
                    .iter()
                    .find(|(name, _)| groups.contains(name))
                    .map_or(config.per_user, |(_, quota)| *quota)
            }
        };
        let cost = match class {
            Class::Collection => config.costs.collection,
            Class::Entity => config.costs.entity,
            Class::Write => config.costs.write,
            Class::Action => config.costs.action,
        };
        self.take(
            Scope::User,
            &["user ", user].concat(),
            cost,
            quota,
            config.max_delay,
        )
    }

    fn take(
        &self,
        scope: Scope,
        key: &str,
        cost: u32,
        quota: RateQuota,
        max_delay: Duration,
    ) -> Result<Allowance, Limited> {
        let taken = self.buckets.take(key, cost, quota, max_delay, Instant::now());
        let result = match taken {
            Taken::Allowed { delay, .. } if delay.is_zero() => "allowed",
            Taken::Allowed { .. } => "delayed",
            Taken::Limited { .. } => "limited",
        };
        self.metrics
            .ratelimit_decisions_total
            .with_label_values(&[scope.as_str(), result])
            .inc();
        match taken {
            Taken::Allowed { delay, .. } => {
                if !delay.is_zero() {
                    self.metrics
                        .ratelimit_delay_seconds
                        .with_label_values(&[scope.as_str()])
                        .observe(delay.as_secs_f64());
                }
                Ok(Allowance { quota, delay })
            }
            Taken::Limited { retry_after } => Err(Limited {
                scope,
                quota,
                retry_after,
            }),
        }
    }
}

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): the quota and its window, the
/// time the burst takes to refill.
pub(crate) fn policy_header(scope: Scope, quota: RateQuota) -> String {
    let scope = scope.as_str();
    let window = (quota.interval() * quota.burst).as_secs_f64().ceil() as u64;
    format!("\"{scope}\";q={};w={}", quota.burst, window.max(1))
}

/// `RateLimit`: what is left and in how many seconds the bucket is full again.
pub(crate) fn state_header(scope: Scope, remaining: u32, full_in: Duration) -> String {
    let scope = scope.as_str();
    format!(
        "\"{scope}\";r={remaining};t={}",
        full_in.as_secs_f64().ceil() as u64
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(rate: u32, burst: u32) -> RateQuota {
        RateQuota { rate, burst }
    }

    fn allowed(taken: Taken) -> bool {
        matches!(taken, Taken::Allowed { .. })
    }

    /// A full bucket gives `burst` units at once, then one per `1/rate` seconds, exactly.
    #[tokio::test(start_paused = true)]
    async fn burst_then_refill_at_the_rate() {
        let buckets = LocalBuckets::new(100);
        let q = quota(10, 5);
        for i in 0..5 {
            let taken = buckets.take("k", 1, q, Duration::ZERO, Instant::now());
            assert_eq!(
                taken,
                Taken::Allowed {
                    remaining: 4 - i,
                    full_in: Duration::from_millis(100 * u64::from(i + 1)),
                    delay: Duration::ZERO,
                }
            );
        }
        assert_eq!(
            buckets.take("k", 1, q, Duration::ZERO, Instant::now()),
            Taken::Limited {
                retry_after: Duration::from_millis(100)
            }
        );
        tokio::time::advance(Duration::from_millis(99)).await;
        assert!(!allowed(buckets.take("k", 1, q, Duration::ZERO, Instant::now())));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(allowed(buckets.take("k", 1, q, Duration::ZERO, Instant::now())));
        assert!(!allowed(buckets.take("k", 1, q, Duration::ZERO, Instant::now())));
        // Another key has its own bucket.
        assert!(allowed(buckets.take(
            "other",
            5,
            q,
            Duration::ZERO,
            Instant::now()
        )));
        // After burst/rate seconds the bucket is full again.
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(allowed(buckets.take("k", 5, q, Duration::ZERO, Instant::now())));
    }

    /// Past the burst a request is let through late, its units reserved at once: each next one
    /// waits one interval more, until the wait would pass `max_delay`, which is refused without
    /// taking anything.
    #[tokio::test(start_paused = true)]
    async fn over_the_burst_requests_wait_then_are_refused() {
        let buckets = LocalBuckets::new(100);
        let q = quota(10, 2);
        let max_delay = Duration::from_millis(300);
        let delay = |taken: Taken| match taken {
            Taken::Allowed { delay, .. } => Some(delay),
            Taken::Limited { .. } => None,
        };
        let take = || delay(buckets.take("k", 1, q, max_delay, Instant::now()));
        assert_eq!(take(), Some(Duration::ZERO));
        assert_eq!(take(), Some(Duration::ZERO));
        assert_eq!(take(), Some(Duration::from_millis(100)));
        assert_eq!(take(), Some(Duration::from_millis(200)));
        assert_eq!(take(), Some(Duration::from_millis(300)));
        assert_eq!(
            buckets.take("k", 1, q, max_delay, Instant::now()),
            Taken::Limited {
                retry_after: Duration::from_millis(100)
            }
        );
        // The refusal took nothing: 100 ms later, the next waits the longest again.
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(take(), Some(Duration::from_millis(300)));
        // A sequential client waiting out each delay goes at the rate, never refused.
        tokio::time::advance(Duration::from_millis(300)).await;
        for _ in 0..20 {
            let wait = take().expect("never refused");
            tokio::time::advance(wait.max(Duration::from_millis(100))).await;
        }
    }

    /// Costs take several units; a cost above the burst is never allowed.
    #[tokio::test(start_paused = true)]
    async fn costs_take_several_units() {
        let buckets = LocalBuckets::new(100);
        let q = quota(10, 10);
        assert!(allowed(buckets.take("k", 7, q, Duration::ZERO, Instant::now())));
        assert_eq!(
            buckets.take("k", 4, q, Duration::ZERO, Instant::now()),
            Taken::Limited {
                retry_after: Duration::from_millis(100)
            }
        );
        assert!(allowed(buckets.take("k", 3, q, Duration::ZERO, Instant::now())));
        assert_eq!(
            buckets.take("fresh", 11, q, Duration::ZERO, Instant::now()),
            Taken::Limited {
                retry_after: Duration::from_secs(1)
            }
        );
    }

    /// However many keys arrive, at most `max_keys` are held; full buckets go first.
    #[tokio::test(start_paused = true)]
    async fn keys_are_bounded() {
        let buckets = LocalBuckets::new(1_000);
        let q = quota(1, 2);
        for i in 0..100_000 {
            buckets.take(&format!("ip {i}"), 1, q, Duration::ZERO, Instant::now());
        }
        assert!(buckets.len() <= 1_000 + SHARDS, "{}", buckets.len());
        tokio::time::advance(Duration::from_secs(2)).await;
        for i in 0..1_000 {
            assert!(allowed(buckets.take(
                &format!("new {i}"),
                2,
                q,
                Duration::ZERO,
                Instant::now()
            )));
        }
        assert!(buckets.len() <= 1_000 + SHARDS);
    }

    /// A user's own override first, then their first group listed, then `per_user`; groups are
    /// looked up only when there are group overrides.
    #[tokio::test(start_paused = true)]
    async fn overrides_by_user_then_group() {
        let config = |groups: Vec<(String, RateQuota)>| RateLimitConfig {
            per_ip: quota(100, 100),
            per_user: quota(1, 1),
            costs: crate::config::RateCosts {
                collection: 1,
                entity: 1,
                write: 1,
                action: 1,
            },
            users: vec![("robot@p".into(), quota(1, 5))],
            groups,
            max_keys: 100,
            max_delay: Duration::ZERO,
            manager: crate::config::Concurrency {
                inflight: 1,
                per_user: 1,
                logins: 0,
                queue: 1,
                wait: Duration::from_secs(1),
            },
            logins: crate::config::LoginThrottle {
                failures: 1,
                address_failures: 1,
                window: Duration::from_secs(1),
                lockout: Duration::from_secs(1),
                max_lockout: Duration::from_secs(1),
                directory_threshold: 5,
                directory_window: Duration::from_secs(1),
            },
        };
        let groups = vec![("ops".into(), quota(1, 3)), ("staff".into(), quota(1, 4))];
        let limiter = RateLimiter::new(config(groups), Arc::new(Metrics::new()));
        let burst = |user: &str, groups: &[&str]| {
            let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
            limiter
                .by_user(user, || groups.clone(), Class::Entity)
                .map(|allowance| allowance.quota.burst)
        };
        assert_eq!(burst("robot@p", &["ops"]), Ok(5));
        assert_eq!(burst("carol@p", &["staff", "ops"]), Ok(3));
        assert_eq!(burst("dave@p", &["staff"]), Ok(4));
        assert_eq!(burst("alice@p", &["users"]), Ok(1));
        let limiter = RateLimiter::new(config(Vec::new()), Arc::new(Metrics::new()));
        let asked = limiter.by_user("alice@p", || panic!("groups are not needed"), Class::Entity);
        assert!(asked.is_ok());
    }

    #[test]
    fn classes_of_requests() {
        let class = |method: Method, target: &str| {
            let (path, query) = target
                .split_once('?')
                .map_or((target, None), |(p, q)| (p, Some(q)));
            Class::of(
                &method,
                &ApiPath::parse("", &format!("/ovirt-engine/api{path}"), query).unwrap(),
            )
        };
        assert_eq!(class(Method::GET, ""), Class::Collection);
        assert_eq!(class(Method::GET, "/vms"), Class::Collection);
        assert_eq!(class(Method::GET, "/vms/1"), Class::Entity);
        assert_eq!(class(Method::GET, "/vms/1/nics"), Class::Entity);
        assert_eq!(class(Method::GET, "/vms/1?follow=nics"), Class::Collection);
        assert_eq!(
            class(Method::GET, "/vms/1;follow=disk_attachments.disk"),
            Class::Collection
        );
        assert_eq!(class(Method::POST, "/vms"), Class::Write);
        assert_eq!(class(Method::PUT, "/vms/1"), Class::Write);
        assert_eq!(class(Method::DELETE, "/vms/1"), Class::Write);
        assert_eq!(class(Method::POST, "/vms/1/start"), Class::Action);
        assert_eq!(class(Method::POST, "/vms/1/nics/2/deactivate"), Class::Action);
    }

    #[test]
    fn headers() {
        let q = quota(10, 50);
        assert_eq!(policy_header(Scope::User, q), "\"user\";q=50;w=5");
        assert_eq!(
            state_header(Scope::User, 7, Duration::from_millis(4300)),
            "\"user\";r=7;t=5"
        );
    }
}
