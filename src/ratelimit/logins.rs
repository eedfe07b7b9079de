//! Login throttling (docs/rate-limiting.md, "Failed logins"): failed logins are counted per
//! (user, client address) and per client address; `failures` (or `address_failures`) within
//! `window` lock that key out for `lockout`, doubled at each further lockout up to
//! `max_lockout`. While locked, a login is refused before the Manager is asked.
//!
//! Failures are also counted per user across addresses, over `directory_window`, so that fewer
//! than `directory_threshold` of them ever reach the directory behind the Managers, whose own
//! lockout would lock the real user out everywhere. Addresses the user logged in from before
//! keep the last attempt for themselves: from others, only `directory_threshold - 2` failures
//! reach the directory, after which they wait out the window. A successful login clears the
//! user's records (the directory's counter resets on success too).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::LoginThrottle;
use crate::metrics::Metrics;
use crate::shared::{Message, Shared};

#[derive(Debug, Default)]
struct Record {
    /// Failures since `since`.
    failures: u32,
    since: Option<Instant>,
    locked_until: Option<Instant>,
    /// Lockouts so far: each doubles the next.
    lockouts: u32,
}

pub struct Logins {
    config: Mutex<LoginThrottle>,
    /// `[shared]`: failures and successes are told to the other replicas, and theirs counted
    /// here (docs/replicas.md, "Login lockouts").
    shared: Option<Arc<Shared>>,
    records: Mutex<HashMap<String, Record>>,
    /// (user, address) pairs that logged in, by [`Logins::known_key`], and when last: these
    /// keep the last attempt.
    known: Mutex<HashMap<u64, Instant>>,
    hasher: std::hash::RandomState,
    max_keys: usize,
    metrics: Arc<Metrics>,
}

/// How long an address that logged in as a user is remembered as the user's.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often a pair's last login is renewed in `known` (and told to the other replicas).
const KNOWN_REFRESH: Duration = Duration::from_secs(24 * 3600);

impl Logins {
    pub(crate) fn new(
        config: LoginThrottle,
        max_keys: usize,
        metrics: Arc<Metrics>,
        shared: Option<Arc<Shared>>,
    ) -> Logins {
        Logins {
            config: Mutex::new(config),
            shared,
            records: Mutex::default(),
            known: Mutex::default(),
            hasher: std::hash::RandomState::new(),
            max_keys,
            metrics,
        }
    }

    /// `Err(wait)` while `user` from `address`, or anyone from `address`, is locked out, or the
    /// user is, from everywhere or from addresses it never logged in from.
    pub fn check(&self, user: &str, address: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        // Called for every Basic request: nothing to build while nobody has failed.
        if records.is_empty() {
            return Ok(());
        }
        let mut keys = vec![pair(user, address), alone(address), everywhere(user)];
        if !self.is_known(user, address, now) {
            keys.push(from_unknown(user));
        }
        let wait = keys
            .iter()
            .filter_map(|key| records.get(key)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Applies to the failures and lockouts that follow.
    pub fn set_config(&self, config: LoginThrottle) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
    }

    fn config(&self) -> LoginThrottle {
        *self.config.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_known(&self, user: &str, address: IpAddr, now: Instant) -> bool {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known
            .get(&self.known_key(user, address))
            .is_some_and(|at| now - *at < KNOWN_FOR)
    }

    /// The case-folded user and the address, hashed: built for every Basic request without
    /// allocating.
    fn known_key(&self, user: &str, address: IpAddr) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut hasher = self.hasher.build_hasher();
        for c in user.chars().flat_map(char::to_lowercase) {
            hasher.write_u32(u32::from(c));
        }
        address.hash(&mut hasher);
        hasher.finish()
    }

    /// Counts a refused login; `reached_directory` when the Manager was asked (not a refusal
    /// the gateway remembered).
    pub fn failed(&self, user: &str, address: IpAddr, reached_directory: bool) {
        if self.count_failure(user, address, reached_directory) {
            self.metrics.login_lockouts_total.inc();
        }
        self.tell(Message::LoginFailed {
            user: user.to_owned(),
            address,
            reached_directory,
        });
    }

    /// Counts what another replica told (its lockouts are counted in its metrics).
    pub(crate) fn heard(&self, message: Message) {
        match message {
            Message::LoginFailed {
                user,
                address,
                reached_directory,
            } => {
                self.count_failure(&user, address, reached_directory);
            }
            Message::LoginSucceeded { user, address } => {
                self.count_success(&user, address);
            }
            _ => {}
        }
    }

    /// Publishes `message` to the other replicas, in the background.
    fn tell(&self, message: Message) {
        if let Some(shared) = &self.shared
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let shared = shared.clone();
            runtime.spawn(async move {
                let _ = shared.publish(&message).await;
            });
        }
    }

    /// Counts a failure; true when it locked out some key.
    fn count_failure(&self, user: &str, address: IpAddr, reached_directory: bool) -> bool {
        let now = Instant::now();
        let config = self.config();
        let known = self.is_known(user, address, now);
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let mut locked = false;
        // What reaches the directory, counted as it counts: locked until its window is over.
        for (key, threshold) in [
            (
                reached_directory.then(|| everywhere(user)),
                config.directory_threshold - 1,
            ),
            (
                (reached_directory && !known).then(|| from_unknown(user)),
                config.directory_threshold - 2,
            ),
        ] {
            let Some(key) = key else { continue };
            if records.len() >= self.max_keys && !records.contains_key(&key) {
                self.make_room(&mut records, config.window, now);
            }
            let record = records.entry(key).or_default();
            let since = *record.since.get_or_insert(now);
            if now - since >= config.directory_window {
                record.failures = 0;
                record.since = Some(now);
            }
            record.failures += 1;
            if record.failures >= threshold {
                record.locked_until = Some(record.since.unwrap_or(now) + config.directory_window);
                locked = true;
            }
        }
        for (key, threshold) in [
            (pair(user, address), config.failures),
            (alone(address), config.address_failures),
        ] {
            if records.len() >= self.max_keys && !records.contains_key(&key) {
                self.make_room(&mut records, config.window, now);
            }
            let record = records.entry(key).or_default();
            if record.since.is_none_or(|since| now - since >= config.window) {
                record.failures = 0;
                record.since = Some(now);
            }
            record.failures += 1;
            if record.failures >= threshold {
                let lockout = config
                    .lockout
                    .saturating_mul(1 << record.lockouts.min(20))
                    .min(config.max_lockout);
                record.locked_until = Some(now + lockout);
                record.lockouts += 1;
                record.failures = 0;
                record.since = None;
                locked = true;
            }
        }
        // One refused login that locked out one key or several is one lockout.
        locked
    }

    /// Records with nothing left to remember go first; if that is not enough, half of the rest:
    /// failure counts before lockouts, those forgotten soonest first.
    fn make_room(&self, records: &mut HashMap<String, Record>, window: Duration, now: Instant) {
        let rank = |r: &Record| {
            let locked = r.locked_until.is_some_and(|until| until > now);
            let forgotten_at = r
                .locked_until
                .into_iter()
                .chain(r.since.map(|since| since + window))
                .max();
            (locked, forgotten_at)
        };
        records.retain(|_, r| rank(r).1.is_some_and(|at| at > now));
        if records.len() >= self.max_keys {
            let mut ranks: Vec<_> = records.values().map(rank).collect();
            ranks.sort_unstable();
            let median = ranks[ranks.len() / 2];
            records.retain(|_, r| rank(r) > median);
        }
    }

    /// A successful login: its (user, address) starts afresh, the user's failures are
    /// forgotten as the directory forgets them, and the address is the user's from now on.
    /// The other replicas are told only when that changed something here: this is called for
    /// every Basic request.
    pub fn succeeded(&self, user: &str, address: IpAddr) {
        if self.count_success(user, address) {
            self.tell(Message::LoginSucceeded {
                user: user.to_owned(),
                address,
            });
        }
    }

    /// Applies a success; true when it cleared a record or made the address newly the user's.
    fn count_success(&self, user: &str, address: IpAddr) -> bool {
        let mut changed = false;
        {
            let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
            // Called for every Basic request: nothing to build while nobody has failed.
            if !records.is_empty() {
                for key in [pair(user, address), everywhere(user), from_unknown(user)] {
                    changed |= records.remove(&key).is_some();
                }
            }
        }
        let now = Instant::now();
        let key = self.known_key(user, address);
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        // Refreshed at most once a day per pair: the other replicas need not hear of every one.
        if known.get(&key).is_some_and(|at| now - *at < KNOWN_REFRESH) {
            return changed;
        }
        if known.len() >= self.max_keys && !known.contains_key(&key) {
            // The longest unseen half goes.
            let mut seen: Vec<Instant> = known.values().copied().collect();
            seen.sort_unstable();
            let median = seen[seen.len() / 2];
            known.retain(|_, at| *at > median);
        }
        known.insert(key, now);
        true
    }
}

/// A user's record from an address. The name is case-folded: directories behind the engine
/// commonly match user names without case, so `Alice@Internal` must not be a second budget of
/// guesses for `alice@internal` (docs/security.md, "One principal per person").
fn pair(user: &str, address: IpAddr) -> String {
    format!("{} {address}", user.to_lowercase())
}

fn alone(address: IpAddr) -> String {
    address.to_string()
}

/// A user's failures from all addresses, as the directory counts them.
fn everywhere(user: &str) -> String {
    format!("{} everywhere", user.to_lowercase())
}

/// A user's failures from addresses it never logged in from.
fn from_unknown(user: &str) -> String {
    format!("{} elsewhere", user.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logins() -> Logins {
        Logins::new(
            LoginThrottle {
                failures: 3,
                address_failures: 5,
                window: Duration::from_secs(60),
                lockout: Duration::from_secs(10),
                max_lockout: Duration::from_secs(30),
                directory_threshold: 100,
                directory_window: Duration::from_secs(60),
            },
            1000,
            Arc::new(Metrics::new()),
            None,
        )
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    /// `failures` within the window lock the (user, address) out for `lockout`, then twice as
    /// long, up to `max_lockout`; other users and addresses are not affected.
    #[tokio::test(start_paused = true)]
    async fn failures_lock_out_with_exponential_backoff() {
        let logins = logins();
        for _ in 0..2 {
            logins.failed("a@p", ip(1), true);
        }
        assert_eq!(logins.check("a@p", ip(1)), Ok(()));
        logins.failed("a@p", ip(1), true);
        assert_eq!(logins.check("a@p", ip(1)), Err(Duration::from_secs(10)));
        assert_eq!(logins.check("a@p", ip(2)), Ok(()));
        assert_eq!(logins.check("b@p", ip(1)), Ok(()));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(logins.check("a@p", ip(1)), Ok(()));
        // Each further lockout lasts twice as long, up to max_lockout.
        for expected in [20, 30, 30] {
            for _ in 0..3 {
                logins.failed("a@p", ip(1), true);
            }
            assert_eq!(logins.check("a@p", ip(1)), Err(Duration::from_secs(expected)));
            tokio::time::advance(Duration::from_secs(expected)).await;
            assert_eq!(logins.check("a@p", ip(1)), Ok(()));
        }
        // Four of the user from the address, and two of the address (12 failures, 5 each).
        assert_eq!(logins.metrics.login_lockouts_total.get(), 6);
    }

    /// A successful login starts its (user, address) afresh.
    #[tokio::test(start_paused = true)]
    async fn a_success_clears_the_failures() {
        let logins = logins();
        for _ in 0..2 {
            logins.failed("a@p", ip(1), true);
        }
        logins.succeeded("a@p", ip(1));
        for _ in 0..2 {
            logins.failed("a@p", ip(1), true);
        }
        assert_eq!(logins.check("a@p", ip(1)), Ok(()));
        logins.failed("a@p", ip(1), true);
        assert!(logins.check("a@p", ip(1)).is_err());
    }

    /// Failures spread over more than the window do not add up.
    #[tokio::test(start_paused = true)]
    async fn the_window_forgets() {
        let logins = logins();
        for _ in 0..2 {
            logins.failed("a@p", ip(1), true);
        }
        tokio::time::advance(Duration::from_secs(60)).await;
        logins.failed("a@p", ip(1), true);
        assert_eq!(logins.check("a@p", ip(1)), Ok(()));
    }

    /// However many addresses fail, at most `max_keys` records are held, lockouts kept first.
    #[tokio::test(start_paused = true)]
    async fn records_are_bounded() {
        let logins = Logins::new(logins().config(), 100, Arc::new(Metrics::new()), None);
        for _ in 0..3 {
            logins.failed("a@p", ip(1), true);
        }
        for i in 0..10_000u32 {
            logins.failed("b@p", IpAddr::from((0x0b00_0000 + i).to_be_bytes()), true);
        }
        assert!(logins.records.lock().unwrap().len() <= 100);
        assert!(logins.check("a@p", ip(1)).is_err(), "the lockout was kept");
    }

    /// Failures for many users from one address lock the address out for everyone; a success
    /// clears only its own record.
    #[tokio::test(start_paused = true)]
    async fn an_address_guessing_many_users_is_locked_out() {
        let logins = logins();
        for user in ["a@p", "b@p", "c@p", "d@p"] {
            logins.failed(user, ip(1), true);
        }
        logins.succeeded("a@p", ip(1));
        assert_eq!(logins.check("e@p", ip(1)), Ok(()));
        logins.failed("e@p", ip(1), true);
        assert_eq!(logins.check("z@p", ip(1)), Err(Duration::from_secs(10)));
        assert_eq!(logins.check("z@p", ip(2)), Ok(()));
    }

    /// Guesses from ever new addresses reach the directory at most `directory_threshold - 2`
    /// times a window; an address the user logged in from keeps the last attempt; then the
    /// user waits out the window from everywhere, and the directory never saw its threshold.
    #[tokio::test(start_paused = true)]
    async fn the_directory_never_sees_its_threshold() {
        let logins = Logins::new(
            LoginThrottle {
                failures: 5,
                address_failures: 20,
                window: Duration::from_secs(300),
                lockout: Duration::from_secs(30),
                max_lockout: Duration::from_secs(3600),
                directory_threshold: 5,
                directory_window: Duration::from_secs(1800),
            },
            1000,
            Arc::new(Metrics::new()),
            None,
        );
        logins.succeeded("alice@p", ip(1));
        // The attacker, from a new address each time: three reach the directory.
        let mut reached = 0;
        for last in 10..40 {
            if logins.check("alice@p", ip(last)).is_ok() {
                logins.failed("alice@p", ip(last), true);
                reached += 1;
            }
        }
        assert_eq!(reached, 3);
        // Alice, from her own address, may still try: she mistypes once, the fourth.
        assert_eq!(logins.check("ALICE@p", ip(1)), Ok(()));
        logins.failed("alice@p", ip(1), true);
        // Four is one short of the directory's five: now everyone waits out the window.
        assert!(logins.check("alice@p", ip(1)).is_err());
        assert!(logins.check("alice@p", ip(50)).is_err());
        assert_eq!(logins.check("bob@p", ip(50)), Ok(()));
        tokio::time::advance(Duration::from_secs(1800)).await;
        assert_eq!(logins.check("alice@p", ip(1)), Ok(()));
        assert_eq!(logins.check("alice@p", ip(60)), Ok(()));
        // A success clears the user's count, as the directory's.
        logins.failed("alice@p", ip(61), true);
        logins.succeeded("alice@p", ip(1));
        for last in 70..73 {
            assert_eq!(logins.check("alice@p", ip(last)), Ok(()));
            logins.failed("alice@p", ip(last), true);
        }
        assert!(logins.check("alice@p", ip(80)).is_err());
    }
}
