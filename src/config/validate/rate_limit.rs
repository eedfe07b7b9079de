//! `[rate_limit]`: the buckets per address and per user, the costs, the Managers' concurrency
//! gates, the login lockouts and groups' quotas.

use std::time::Duration;

use super::values::{Problems, parse_duration};
use crate::config::file::{FileRateLimit, FileRateQuota};
use crate::config::{Concurrency, LoginThrottle, RateCosts, RateLimitConfig, RateQuota};

/// Per client address, every request: the heavy workloads of a user or two behind one address
/// pass at full speed, a flood is slowed, then refused (docs/performance.md, "Shaping").
pub(super) const DEFAULT_PER_IP: RateQuota = RateQuota {
    rate: 1000,
    burst: 20_000,
};
/// Per user, in cost units: a burst that holds the heaviest common workloads (ovirt_vm_info
/// with fetch_nested over 500 VMs, the inventory plugin over 1,000: 5,000 to 8,000 units) at
/// full speed, and a runaway loop slowed to what a Manager serves one user without hurting
/// the others (docs/performance.md, "Shaping").
pub(super) const DEFAULT_PER_USER: RateQuota = RateQuota {
    rate: 200,
    burst: 10_000,
};
pub(super) const DEFAULT_COSTS: RateCosts = RateCosts {
    collection: 2,
    entity: 1,
    write: 5,
    action: 5,
};
const DEFAULT_RATE_MAX_KEYS: u64 = 100_000;
/// A request over its bucket waits up to this long before it is refused: sequential clients
/// are slowed to the rate, never refused (docs/rate-limiting.md, "Shaping before refusing").
const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(5);
/// A Manager serves this many API requests at once well; more wait a little, then are refused.
const DEFAULT_CONCURRENCY: Concurrency = Concurrency {
    inflight: 64,
    per_user: 16,
    logins: 4,
    queue: 512,
    wait: Duration::from_secs(10),
};
/// Five wrong passwords in five minutes lock a user out from that address for 30 s, then 1 min,
/// 2 min, ... up to 1 h; twenty from one address, whichever users, lock the address out.
const DEFAULT_LOGINS: LoginThrottle = LoginThrottle {
    failures: 5,
    address_failures: 20,
    window: Duration::from_secs(300),
    lockout: Duration::from_secs(30),
    max_lockout: Duration::from_secs(3600),
    // Directories commonly lock an account at 3 to 10 failures, counted over 30 minutes.
    directory_threshold: 5,
    directory_window: Duration::from_secs(1800),
};

pub(super) fn validate_rate_limit(problems: &mut Problems, limits: FileRateLimit) -> Option<RateLimitConfig> {
    const MAX: u64 = 1_000_000;
    let quota = |problems: &mut Problems, path: &str, file: FileRateQuota, default: RateQuota| {
        let rate = problems.count(&format!("{path}.rate"), file.rate, default.rate.into(), MAX);
        let burst = problems.count(&format!("{path}.burst"), file.burst, default.burst.into(), MAX);
        RateQuota {
            rate: rate as u32,
            burst: burst as u32,
        }
    };
    let per_ip = quota(problems, "rate_limit.per_ip", limits.per_ip, DEFAULT_PER_IP);
    let per_user = quota(problems, "rate_limit.per_user", limits.per_user, DEFAULT_PER_USER);
    let mut users = Vec::new();
    for (i, user) in limits.user.into_iter().enumerate() {
        let path = format!("rate_limit.user[{i}]");
        if !user.name.contains('@') {
            problems.push(format!("{path}.name"), "must be user@profile, as clients log in");
        }
        let own = FileRateQuota {
            rate: Some(user.rate),
            burst: Some(user.burst),
        };
        users.push((user.name, quota(problems, &path, own, per_user)));
    }
    let mut groups = Vec::new();
    for (i, group) in limits.group.into_iter().enumerate() {
        let path = format!("rate_limit.group[{i}]");
        let own = FileRateQuota {
            rate: Some(group.rate),
            burst: Some(group.burst),
        };
        groups.push((group.name, quota(problems, &path, own, per_user)));
    }
    let mut cost = |name: &str, value: Option<u64>, default: u32| {
        problems.count(&format!("rate_limit.costs.{name}"), value, default.into(), MAX) as u32
    };
    let costs = RateCosts {
        collection: cost("collection", limits.costs.collection, DEFAULT_COSTS.collection),
        entity: cost("entity", limits.costs.entity, DEFAULT_COSTS.entity),
        write: cost("write", limits.costs.write, DEFAULT_COSTS.write),
        action: cost("action", limits.costs.action, DEFAULT_COSTS.action),
    };
    let max_keys = problems.count(
        "rate_limit.max_keys",
        limits.max_keys,
        DEFAULT_RATE_MAX_KEYS,
        100_000_000,
    );
    let inflight = problems.count(
        "rate_limit.manager.inflight",
        limits.manager.inflight,
        DEFAULT_CONCURRENCY.inflight as u64,
        100_000,
    ) as usize;
    // By default a sixteenth of the places for logins and a quarter for any one user, as the
    // defaults are (4 and 16 of 64).
    let login_places = match limits.manager.login_inflight {
        Some(logins) if logins as usize >= inflight => {
            problems.push(
                "rate_limit.manager.login_inflight",
                format!("must be less than inflight ({inflight})"),
            );
            0
        }
        Some(logins) => logins as usize,
        None => (inflight / 16).max(1).min(inflight - 1),
    };
    let per_user_places = problems.count(
        "rate_limit.manager.per_user_inflight",
        limits.manager.per_user_inflight,
        ((inflight - login_places) / 4).max(1) as u64,
        (inflight - login_places).max(1) as u64,
    ) as usize;
    let manager = Concurrency {
        inflight,
        per_user: per_user_places,
        logins: login_places,
        queue: match limits.manager.queue {
            Some(queue) if queue > 1_000_000 => {
                problems.push("rate_limit.manager.queue", "must be at most 1000000");
                DEFAULT_CONCURRENCY.queue
            }
            Some(queue) => queue as usize,
            None => DEFAULT_CONCURRENCY.queue,
        },
        wait: problems.duration(
            "rate_limit.manager.wait",
            limits.manager.wait.as_deref(),
            DEFAULT_CONCURRENCY.wait,
        ),
    };
    let file = limits.logins;
    let logins = LoginThrottle {
        failures: problems.count(
            "rate_limit.logins.failures",
            file.failures,
            DEFAULT_LOGINS.failures.into(),
            MAX,
        ) as u32,
        address_failures: problems.count(
            "rate_limit.logins.address_failures",
            file.address_failures,
            DEFAULT_LOGINS.address_failures.into(),
            MAX,
        ) as u32,
        window: problems.duration(
            "rate_limit.logins.window",
            file.window.as_deref(),
            DEFAULT_LOGINS.window,
        ),
        lockout: problems.duration(
            "rate_limit.logins.lockout",
            file.lockout.as_deref(),
            DEFAULT_LOGINS.lockout,
        ),
        max_lockout: problems.duration(
            "rate_limit.logins.max_lockout",
            file.max_lockout.as_deref(),
            DEFAULT_LOGINS.max_lockout,
        ),
        directory_threshold: match file.directory_threshold {
            None => DEFAULT_LOGINS.directory_threshold,
            Some(threshold @ 3..=1000) => threshold as u32,
            Some(_) => {
                problems.push(
                    "rate_limit.logins.directory_threshold",
                    "must be 3 to 1000: the failures at which the directory locks an account",
                );
                DEFAULT_LOGINS.directory_threshold
            }
        },
        directory_window: problems.duration(
            "rate_limit.logins.directory_window",
            file.directory_window.as_deref(),
            DEFAULT_LOGINS.directory_window,
        ),
    };
    if logins.max_lockout < logins.lockout {
        problems.push(
            "rate_limit.logins.max_lockout",
            "must be at least rate_limit.logins.lockout",
        );
    }
    (limits.enabled != Some(false)).then_some(RateLimitConfig {
        per_ip,
        per_user,
        costs,
        users,
        groups,
        max_keys: max_keys as usize,
        // Zero is allowed: refused at once over the bucket (nginx's `nodelay`).
        max_delay: match limits.max_delay.as_deref().map(parse_duration) {
            None => DEFAULT_MAX_DELAY,
            Some(Ok(delay)) => delay,
            Some(Err(message)) => {
                problems.push("rate_limit.max_delay", message);
                DEFAULT_MAX_DELAY
            }
        },
        manager,
        logins,
    })
}
