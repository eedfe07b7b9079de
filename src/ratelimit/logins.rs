//! Login throttling (docs/rate-limiting.md, "Failed logins"): failed logins are counted per
//! (user, client address) and per client address; `failures` (or `address_failures`) within
//! `window` lock that key out for `lockout`, doubled at each further lockout up to
//! `max_lockout`. While locked, a login is refused before the Manager is asked, so guessing
//! passwords through the gateway cannot lock the account in the directory behind the Manager.
//! A successful login clears its (user, address) record.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::LoginThrottle;
use crate::metrics::Metrics;

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
    records: Mutex<HashMap<String, Record>>,
    max_keys: usize,
    metrics: Arc<Metrics>,
}

impl Logins {
    pub fn new(config: LoginThrottle, max_keys: usize, metrics: Arc<Metrics>) -> Logins {
        Logins {
            config: Mutex::new(config),
            records: Mutex::default(),
            max_keys,
            metrics,
        }
    }

    /// `Err(wait)` while `user` from `address`, or anyone from `address`, is locked out.
    pub fn check(&self, user: &str, address: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let wait = [pair(user, address), alone(address)]
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

    /// Counts a refused login.
    pub fn failed(&self, user: &str, address: IpAddr) {
        let now = Instant::now();
        let config = self.config();
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
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
                self.metrics.login_lockouts_total.inc();
            }
        }
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

    /// A successful login: its (user, address) starts afresh.
    pub fn succeeded(&self, user: &str, address: IpAddr) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        // Called for every Basic request: nothing to build while nobody has failed.
        if !records.is_empty() {
            records.remove(&pair(user, address));
        }
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
            },
            1000,
            Arc::new(Metrics::new()),
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
            logins.failed("a@p", ip(1));
        }
        assert_eq!(logins.check("a@p", ip(1)), Ok(()));
        logins.failed("a@p", ip(1));
        assert_eq!(logins.check("a@p", ip(1)), Err(Duration::from_secs(10)));
        assert_eq!(logins.check("a@p", ip(2)), Ok(()));
        assert_eq!(logins.check("b@p", ip(1)), Ok(()));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(logins.check("a@p", ip(1)), Ok(()));
        // Each further lockout lasts twice as long, up to max_lockout.
        for expected in [20, 30, 30] {
            for _ in 0..3 {
                logins.failed("a@p", ip(1));
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
            logins.failed("a@p", ip(1));
        }
        logins.succeeded("a@p", ip(1));
        for _ in 0..2 {
            logins.failed("a@p", ip(1));
        }
        assert_eq!(logins.check("a@p", ip(1)), Ok(()));
        logins.failed("a@p", ip(1));
        assert!(logins.check("a@p", ip(1)).is_err());
    }

    /// Failures spread over more than the window do not add up.
    #[tokio::test(start_paused = true)]
    async fn the_window_forgets() {
        let logins = logins();
        for _ in 0..2 {
            logins.failed("a@p", ip(1));
        }
        tokio::time::advance(Duration::from_secs(60)).await;
        logins.failed("a@p", ip(1));
        assert_eq!(logins.check("a@p", ip(1)), Ok(()));
    }

    /// However many addresses fail, at most `max_keys` records are held, lockouts kept first.
    #[tokio::test(start_paused = true)]
    async fn records_are_bounded() {
        let logins = Logins::new(logins().config(), 100, Arc::new(Metrics::new()));
        for _ in 0..3 {
            logins.failed("a@p", ip(1));
        }
        for i in 0..10_000u32 {
            logins.failed("b@p", IpAddr::from((0x0b00_0000 + i).to_be_bytes()));
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
            logins.failed(user, ip(1));
        }
        logins.succeeded("a@p", ip(1));
        assert_eq!(logins.check("e@p", ip(1)), Ok(()));
        logins.failed("e@p", ip(1));
        assert_eq!(logins.check("z@p", ip(1)), Err(Duration::from_secs(10)));
        assert_eq!(logins.check("z@p", ip(2)), Ok(()));
    }
}
