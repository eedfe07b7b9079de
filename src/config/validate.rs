//! From the file as written to the runtime model: strict deserialization that reports every unknown
//! key with the nearest valid one, then validation of every value with its key path, defaults applied.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::Uri;
use http::uri::Scheme;

use super::file::{FileCache, FileConfig, FileListen, FileManager, FileRateLimit, FileRateQuota, FileSecret};
use super::{
    AdminConfig, AnonymousBudget, AuthConfig, CacheConfig, CacheTtl, Cidr, Concurrency, Config, ConfigError,
    ConsoleFiles, Limits, ListenConfig, LogConfig, LogFormat, LoginThrottle, ManagerConfig, PolicyConfig,
    PolicyMode, RateCosts, RateLimitConfig, RateQuota, Secret, TlsFiles, UpstreamTimeouts, UpstreamTls,
};

// Defaults, documented key by key in config/gateway.toml.
const DEFAULT_MAX_HEADER_BYTES: u64 = 64 * 1024;
const DEFAULT_MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;
const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_CONNECTIONS: u64 = 4096;
// nginx's client_body_timeout and send_timeout are 60 s; an API body is a few kilobytes.
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MIN_BODY_RATE: u64 = 1024;
const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Per client address, before a request authenticates: a load test or a parallel script opens
/// a few hundred at once.
const DEFAULT_ANONYMOUS_PER_ADDRESS: u64 = 256;
const DEFAULT_H2_MAX_STREAMS: u64 = 100;
/// The admin listener serves scrapers and probes: loopback unless told otherwise.
const DEFAULT_ADMIN_ADDRESS: &str = "127.0.0.1:9090";
const DEFAULT_ADMIN_CONNECTIONS: u64 = 64;
const DEFAULT_ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
// Synchronous engine actions (adding a VM from a cloned template) can take minutes.
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
const DEFAULT_MAX_SESSIONS: u64 = 10_000;
const DEFAULT_MAX_LOGINS_PER_USER: u64 = 100;
const DEFAULT_FAILURE_CACHE: Duration = Duration::from_secs(10);
const DEFAULT_RESEND_BODY_BYTES: u64 = 1024 * 1024;
const DEFAULT_POLICY_WATCH_INTERVAL: Duration = Duration::from_secs(2);
const DEFAULT_POLICY_ATTRIBUTE_TTL: Duration = Duration::from_secs(10);
/// Per client address, every request: the heavy workloads of a user or two behind one address
/// pass at full speed, a flood is slowed, then refused (docs/performance.md, "Shaping").
const DEFAULT_PER_IP: RateQuota = RateQuota {
    rate: 1000,
    burst: 20_000,
};
/// Per user, in cost units: a burst that holds the heaviest common workloads (ovirt_vm_info
/// with fetch_nested over 500 VMs, the inventory plugin over 1,000: 5,000 to 8,000 units) at
/// full speed, and a runaway loop slowed to what a Manager serves one user without hurting
/// the others (docs/performance.md, "Shaping").
const DEFAULT_PER_USER: RateQuota = RateQuota {
    rate: 200,
    burst: 10_000,
};
const DEFAULT_COSTS: RateCosts = RateCosts {
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
const DEFAULT_CACHE_MAX_BYTES: u64 = 64 * 1024 * 1024;
const DEFAULT_CACHE_MAX_ENTRY_BYTES: u64 = 1024 * 1024;
/// Short: statuses change in the engine without a write through the gateway (a VM comes up).
const DEFAULT_CACHE_TTL: CacheTtl = CacheTtl {
    root: Duration::from_secs(10),
    collection: Duration::from_secs(2),
    entity: Duration::from_secs(2),
    below: Duration::from_secs(2),
};

/// The engine's API path, which every Manager URL must end with.
const API_SUFFIX: &str = "/ovirt-engine/api";

/// Deserializes the file strictly. An unknown key is reported with the nearest valid key, removed,
/// and deserialization tried again, so that one run reports every unknown key (and the file,
/// without them, can still be validated for further problems). Any other error (a wrong type, a
/// missing key) is reported and ends the attempt.
pub fn deserialize_strict(mut table: toml::Table) -> (Option<FileConfig>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    loop {
        let attempt = serde_path_to_error::deserialize::<_, FileConfig>(toml::Value::Table(table.clone()));
        let error = match attempt {
            Ok(file) => return (Some(file), errors),
            Err(error) => error,
        };
        let segments: Vec<String> = error.path().iter().map(ToString::to_string).collect();
        let message = error.into_inner().to_string();
        let Some((unknown, expected)) = parse_unknown_field(&message) else {
            let path = error_path(&segments);
            errors.push(ConfigError::new(path, message.trim_end()));
            return (None, errors);
        };
        // serde_path_to_error's path ends with the unknown key itself.
        let parent = segments.split_last().map_or(&segments[..], |(_, parent)| parent);
        let mut path = parent.to_vec();
        path.push(unknown.clone());
        let hint = nearest(&unknown, &expected).map_or(String::new(), |k| format!("; did you mean `{k}`?"));
        errors.push(ConfigError::new(error_path(&path), format!("unknown key{hint}")));
        if !remove_key(&mut table, parent, &unknown) {
            return (None, errors);
        }
    }
}

/// `manager[1].url` from `["manager", "[1]", "url"]`.
fn error_path(segments: &[String]) -> String {
    let mut out = String::new();
    for segment in segments {
        if !out.is_empty() && !segment.starts_with('[') {
            out.push('.');
        }
        out.push_str(segment);
    }
    if out.is_empty() {
        "(top level)".to_owned()
    } else {
        out
    }
}

/// The unknown key and the expected keys of serde's "unknown field `x`, expected one of `a`, `b`".
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    let expected = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((unknown.to_owned(), expected))
}

/// The valid key closest to `unknown`, if it is close enough to be a likely typo.
fn nearest<'a>(unknown: &str, expected: &'a [String]) -> Option<&'a str> {
    expected
        .iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), k.as_str()))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

fn remove_key(table: &mut toml::Table, parent: &[String], key: &str) -> bool {
    let mut root = toml::Value::Table(std::mem::take(table));
    let removed = descend(&mut root, parent)
        .and_then(toml::Value::as_table_mut)
        .is_some_and(|t| t.remove(key).is_some());
    if let toml::Value::Table(t) = root {
        *table = t;
    }
    removed
}

fn descend<'a>(mut current: &'a mut toml::Value, path: &[String]) -> Option<&'a mut toml::Value> {
    for segment in path {
        let index = segment.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
        current = match index {
            Some(index) => current.get_mut(index.parse::<usize>().ok()?)?,
            None => current.get_mut(segment.as_str())?,
        };
    }
    Some(current)
}

/// Collects problems while the whole file is checked.
struct Problems(Vec<ConfigError>);

impl Problems {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, message));
    }

    /// A duration such as `250ms`, `30s`, `5m` or `1h`; must be above zero.
    fn duration(&mut self, path: &str, value: Option<&str>, default: Duration) -> Duration {
        let Some(text) = value else { return default };
        match parse_duration(text) {
            Ok(d) if d.is_zero() => {
                self.push(path, "must be greater than zero");
                default
            }
            Ok(d) => d,
            Err(message) => {
                self.push(path, message);
                default
            }
        }
    }

    /// A count in `1..=max`.
    fn count(&mut self, path: &str, value: Option<u64>, default: u64, max: u64) -> u64 {
        match value {
            None => default,
            Some(0) => {
                self.push(path, "must be greater than zero");
                default
            }
            Some(v) if v > max => {
                self.push(path, format!("must be at most {max}"));
                default
            }
            Some(v) => v,
        }
    }

    fn address(&mut self, path: &str, text: &str) -> Option<SocketAddr> {
        text.parse()
            .map_err(|_| {
                self.push(
                    path,
                    format!("`{text}` is not an IP address with a port, e.g. 0.0.0.0:8443"),
                )
            })
            .ok()
    }
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30s"))?;
    let millis = match unit {
        "ms" => Some(number),
        "s" => number.checked_mul(1000),
        "m" => number.checked_mul(60_000),
        "h" => number.checked_mul(3_600_000),
        "" => {
            return Err(format!(
                "`{text}` has no unit; write e.g. {text}s (units: ms, s, m, h)"
            ));
        }
        _ => return Err(format!("`{text}` has an unknown unit; use ms, s, m or h")),
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long"))
}

pub fn validate(file: FileConfig, base: &Path) -> Result<Config, Vec<ConfigError>> {
    let mut problems = Problems(Vec::new());
    let listen = validate_listen(&mut problems, file.listen, base);
    let admin = file.admin.and_then(|admin| {
        let address = problems.address(
            "admin.address",
            admin.address.as_deref().unwrap_or(DEFAULT_ADMIN_ADDRESS),
        )?;
        Some(AdminConfig {
            address,
            max_connections: problems.count(
                "admin.max_connections",
                admin.max_connections,
                DEFAULT_ADMIN_CONNECTIONS,
                1 << 16,
            ) as usize,
            header_read_timeout: problems.duration(
                "admin.header_read_timeout",
                admin.header_read_timeout.as_deref(),
                DEFAULT_ADMIN_HEADER_TIMEOUT,
            ),
        })
    });
    let format = match file.log.format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            problems.push("log.format", format!("`{other}` is not one of `text`, `json`"));
            LogFormat::Text
        }
    };
    let level = file.log.level.unwrap_or_else(|| "info".to_owned());
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&level) {
        problems.push(
            "log.level",
            format!("`{level}` is not a valid level or filter: {e}"),
        );
    }
    let token_key = file
        .auth
        .token_key
        .and_then(|key| secret(&mut problems, "auth.token_key", key, base));
    let auth = AuthConfig {
        session_idle: problems.duration(
            "auth.session_idle",
            file.auth.session_idle.as_deref(),
            DEFAULT_SESSION_IDLE,
        ),
        session_lifetime: problems.duration(
            "auth.session_lifetime",
            file.auth.session_lifetime.as_deref(),
            DEFAULT_SESSION_LIFETIME,
        ),
        max_sessions: problems.count(
            "auth.max_sessions",
            file.auth.max_sessions,
            DEFAULT_MAX_SESSIONS,
            10_000_000,
        ),
        max_logins_per_user: problems.count(
            "auth.max_logins_per_user",
            file.auth.max_logins_per_user,
            DEFAULT_MAX_LOGINS_PER_USER,
            1_000_000,
        ) as usize,
        failure_cache: problems.duration(
            "auth.failure_cache",
            file.auth.failure_cache.as_deref(),
            DEFAULT_FAILURE_CACHE,
        ),
        token_key,
        bearer_passthrough: file.auth.bearer_passthrough,
        console_files: match file.auth.console_files.as_deref() {
            None | Some("refuse") => ConsoleFiles::Refuse,
            Some("strip-token") => ConsoleFiles::StripToken,
            Some("pass") => ConsoleFiles::Pass,
            Some(other) => {
                problems.push(
                    "auth.console_files",
                    format!("`{other}` is not one of `refuse`, `strip-token`, `pass`"),
                );
                ConsoleFiles::Refuse
            }
        },
        resend_body_bytes: file.auth.resend_body_bytes.unwrap_or(DEFAULT_RESEND_BODY_BYTES),
    };
    let policy = file.policy.map(|policy| {
        let mode = match policy.mode.as_deref() {
            None | Some("enforce") => PolicyMode::Enforce,
            Some("shadow") => PolicyMode::Shadow,
            Some(other) => {
                problems.push(
                    "policy.mode",
                    format!("`{other}` is not one of `enforce`, `shadow`"),
                );
                PolicyMode::Enforce
            }
        };
        if auth.bearer_passthrough {
            problems.push(
                "policy",
                "policies cannot be enforced with auth.bearer_passthrough = true: a passed-through token \
                 carries no gateway identity",
            );
        }
        PolicyConfig {
            dir: base.join(policy.dir),
            mode,
            watch_interval: problems.duration(
                "policy.watch_interval",
                policy.watch_interval.as_deref(),
                DEFAULT_POLICY_WATCH_INTERVAL,
            ),
            attribute_ttl: problems.duration(
                "policy.attribute_ttl",
                policy.attribute_ttl.as_deref(),
                DEFAULT_POLICY_ATTRIBUTE_TTL,
            ),
        }
    });
    let cache = file.cache.map(|cache| validate_cache(&mut problems, cache));
    let rate_limit = validate_rate_limit(&mut problems, file.rate_limit);
    if policy.is_none()
        && rate_limit
            .as_ref()
            .is_some_and(|limits| !limits.groups.is_empty())
    {
        problems.push(
            "rate_limit.group",
            "groups come from the policy directory's entities: add a [policy] table",
        );
    }
    let mut managers = validate_managers(&mut problems, file.manager, base);
    for manager in &mut managers {
        manager.concurrency = rate_limit.as_ref().map(|limits| limits.manager);
    }
    match listen {
        Some(listen) if problems.0.is_empty() => Ok(Config {
            listen,
            admin,
            log: LogConfig { format, level },
            auth,
            policy,
            cache,
            rate_limit,
            managers,
        }),
        _ => Err(problems.0),
    }
}

fn validate_rate_limit(problems: &mut Problems, limits: FileRateLimit) -> Option<RateLimitConfig> {
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

fn validate_cache(problems: &mut Problems, cache: FileCache) -> CacheConfig {
    let max_bytes = problems.count(
        "cache.max_bytes",
        cache.max_bytes,
        DEFAULT_CACHE_MAX_BYTES,
        1 << 40,
    );
    let max_entry_bytes = problems.count(
        "cache.max_entry_bytes",
        cache.max_entry_bytes,
        DEFAULT_CACHE_MAX_ENTRY_BYTES.min(max_bytes),
        max_bytes,
    );
    let mut ttl = |name: &str, value: Option<String>, default| {
        problems.duration(&format!("cache.ttl.{name}"), value.as_deref(), default)
    };
    let ttl = CacheTtl {
        root: ttl("root", cache.ttl.root, DEFAULT_CACHE_TTL.root),
        collection: ttl("collection", cache.ttl.collection, DEFAULT_CACHE_TTL.collection),
        entity: ttl("entity", cache.ttl.entity, DEFAULT_CACHE_TTL.entity),
        below: ttl("below", cache.ttl.below, DEFAULT_CACHE_TTL.below),
    };
    for (i, name) in cache.shared_collections.iter().enumerate() {
        if crate::api::entity_type(name).is_none() {
            problems.push(
                format!("cache.shared_collections[{i}]"),
                format!("`{name}` is not a collection of the API root"),
            );
        }
    }
    CacheConfig {
        max_bytes,
        max_entry_bytes,
        ttl,
        shared_collections: cache.shared_collections,
    }
}

/// By default half the connections, and [`DEFAULT_ANONYMOUS_PER_ADDRESS`] per address: the
/// other half is always there for clients that authenticated.
fn anonymous_budget(
    problems: &mut Problems,
    (total, per_address): (Option<u64>, Option<u64>),
    max_connections: usize,
) -> AnonymousBudget {
    let most = max_connections as u64;
    let total = problems.count("listen.max_anonymous_connections", total, (most / 2).max(1), most);
    let per_address = problems.count(
        "listen.max_anonymous_connections_per_address",
        per_address,
        DEFAULT_ANONYMOUS_PER_ADDRESS.min(total),
        total,
    );
    AnonymousBudget {
        total: total as usize,
        per_address: per_address as usize,
    }
}

fn validate_listen(problems: &mut Problems, listen: FileListen, base: &Path) -> Option<ListenConfig> {
    let address = problems.address("listen.address", &listen.address);
    let tls = match (listen.plain_http, listen.tls_cert, listen.tls_key) {
        (true, None, None) => None,
        (true, _, _) => {
            problems.push(
                "listen.plain_http",
                "plain_http = true cannot be combined with tls_cert or tls_key",
            );
            None
        }
        (false, Some(cert), Some(key)) => secret(problems, "listen.tls_key", key, base).map(|key| TlsFiles {
            cert: base.join(cert),
            key,
        }),
        (false, cert, _) => {
            let missing = if cert.is_none() {
                "listen.tls_cert"
            } else {
                "listen.tls_key"
            };
            problems.push(missing, "required unless plain_http = true (TLS is the default)");
            None
        }
    };
    let max_connections = problems.count(
        "listen.max_connections",
        listen.max_connections,
        DEFAULT_MAX_CONNECTIONS,
        1 << 20,
    ) as usize;
    let limits = Limits {
        max_header_bytes: problems.count(
            "listen.max_header_bytes",
            listen.max_header_bytes,
            DEFAULT_MAX_HEADER_BYTES,
            1024 * 1024,
        ) as usize,
        max_body_bytes: problems.count(
            "listen.max_body_bytes",
            listen.max_body_bytes,
            DEFAULT_MAX_BODY_BYTES,
            u64::MAX,
        ),
        header_read_timeout: problems.duration(
            "listen.header_read_timeout",
            listen.header_read_timeout.as_deref(),
            DEFAULT_HEADER_READ_TIMEOUT,
        ),
        idle_timeout: problems.duration(
            "listen.idle_timeout",
            listen.idle_timeout.as_deref(),
            DEFAULT_IDLE_TIMEOUT,
        ),
        body_pace: crate::body::BodyPace {
            idle: problems.duration(
                "listen.body_timeout",
                listen.body_timeout.as_deref(),
                DEFAULT_BODY_TIMEOUT,
            ),
            min_rate: listen.min_body_rate.unwrap_or(DEFAULT_MIN_BODY_RATE),
        },
        send_timeout: problems.duration(
            "listen.send_timeout",
            listen.send_timeout.as_deref(),
            DEFAULT_SEND_TIMEOUT,
        ),
        max_connections,
        anonymous: anonymous_budget(
            problems,
            (
                listen.max_anonymous_connections,
                listen.max_anonymous_connections_per_address,
            ),
            max_connections,
        ),
        http2: listen.http2,
        http2_max_concurrent_streams: problems.count(
            "listen.http2_max_concurrent_streams",
            listen.http2_max_concurrent_streams,
            DEFAULT_H2_MAX_STREAMS,
            u64::from(u32::MAX),
        ) as u32,
        compression_level: match listen.compression_level {
            None => 6,
            Some(level @ 0..=9) => level,
            Some(_) => {
                problems.push("listen.compression_level", "must be 0 (off) to 9");
                6
            }
        },
        shutdown_grace: problems.duration(
            "listen.shutdown_grace",
            listen.shutdown_grace.as_deref(),
            DEFAULT_SHUTDOWN_GRACE,
        ),
        trusted_proxies: listen
            .trusted_proxies
            .iter()
            .enumerate()
            .filter_map(|(i, text)| {
                let cidr = Cidr::parse(text);
                if cidr.is_none() {
                    problems.push(
                        format!("listen.trusted_proxies[{i}]"),
                        format!("`{text}` is not an address or an address block such as 10.0.0.0/8"),
                    );
                }
                cidr
            })
            .collect(),
    };
    if !listen.plain_http && tls.is_none() {
        return None;
    }
    Some(ListenConfig {
        address: address?,
        tls,
        limits,
    })
}

fn secret(problems: &mut Problems, path: &str, secret: FileSecret, base: &Path) -> Option<Secret> {
    match secret {
        FileSecret::Path(file)
        | FileSecret::Source(super::file::FileSecretSource {
            file: Some(file),
            env: None,
        }) => Some(Secret::File(base.join(file))),
        FileSecret::Source(super::file::FileSecretSource {
            file: None,
            env: Some(name),
        }) => {
            if name.is_empty() {
                problems.push(format!("{path}.env"), "must name an environment variable");
                return None;
            }
            Some(Secret::Env(name))
        }
        FileSecret::Source(_) => {
            problems.push(path, "give exactly one of `file` or `env`");
            None
        }
    }
}

/// What is wrong with a `forward_paths` entry, if anything: it must name a place under
/// `/ovirt-engine` outside the API, SSO and services (which the gateway answers or guards itself),
/// unambiguously.
fn forward_path_problem(path: &str) -> Option<String> {
    let Some(rest) = path.strip_prefix("/ovirt-engine/") else {
        return Some("must start with /ovirt-engine/ (e.g. \"/ovirt-engine/apidoc\")".into());
    };
    if crate::api::path::validate(path).is_err()
        || path.contains(';')
        || path.ends_with('/')
        || rest.is_empty()
    {
        return Some(
            "must be a plain path: no empty, dot or encoded segments, no ';', no trailing '/'".into(),
        );
    }
    let area = rest.split('/').next().unwrap_or("");
    ["api", "sso", "services"]
        .contains(&area)
        .then(|| format!("/ovirt-engine/{area} is served by the gateway's own rules and cannot be forwarded"))
}

fn validate_managers(problems: &mut Problems, managers: Vec<FileManager>, base: &Path) -> Vec<ManagerConfig> {
    if managers.is_empty() {
        problems.push("manager", "at least one [[manager]] is required");
    }
    let mut names = HashSet::new();
    let mut routes = HashSet::new();
    let mut out = Vec::new();
    for (i, manager) in managers.into_iter().enumerate() {
        let at = |key: &str| format!("manager[{i}].{key}");
        if !valid_name(&manager.name) {
            problems.push(at("name"), "use 1 to 64 characters of a-z, 0-9, '-' and '_'");
        } else if !names.insert(manager.name.clone()) {
            problems.push(
                at("name"),
                format!("`{}` is already used by another manager", manager.name),
            );
        }
        let host = manager.host.as_deref().map(str::to_ascii_lowercase);
        if let Some(host) = &host
            && (host.is_empty() || host.contains([':', '/', ' ']))
        {
            problems.push(
                at("host"),
                "give a host name without scheme, port or path, e.g. rhv.example.com",
            );
        }
        let prefix = manager.prefix.clone().unwrap_or_default();
        if let Some(message) = prefix_problem(&prefix) {
            problems.push(at("prefix"), message);
        }
        if !routes.insert((host.clone(), prefix.clone())) {
            let message = if host.is_none() && prefix.is_empty() {
                "with several managers, at most one may be published without host or prefix"
            } else {
                "another manager is already published at the same host and prefix"
            };
            problems.push(at("prefix"), message);
        }
        let timeouts = UpstreamTimeouts {
            connect: problems.duration(
                &at("connect_timeout"),
                manager.connect_timeout.as_deref(),
                DEFAULT_CONNECT_TIMEOUT,
            ),
            response_headers: problems.duration(
                &at("response_timeout"),
                manager.response_timeout.as_deref(),
                DEFAULT_RESPONSE_TIMEOUT,
            ),
            body_idle: problems.duration(
                &at("body_idle_timeout"),
                manager.body_idle_timeout.as_deref(),
                DEFAULT_BODY_IDLE_TIMEOUT,
            ),
        };
        let health_interval = problems.duration(
            &at("health_interval"),
            manager.health_interval.as_deref(),
            DEFAULT_HEALTH_INTERVAL,
        );
        for (j, path) in manager.forward_paths.iter().enumerate() {
            if let Some(message) = forward_path_problem(path) {
                problems.push(format!("manager[{i}].forward_paths[{j}]"), message);
            }
        }
        let Some((scheme, authority, upstream_prefix)) =
            parse_manager_url(problems, &at("url"), &manager.url)
        else {
            continue;
        };
        let tls = match (scheme == Scheme::HTTPS, manager.ca_file, manager.insecure) {
            (false, None, false) => UpstreamTls::Plain,
            (false, _, _) => {
                problems.push(
                    at("url"),
                    "ca_file and insecure apply only to https:// Manager URLs",
                );
                continue;
            }
            (true, Some(_), true) => {
                problems.push(at("insecure"), "insecure = true and ca_file exclude each other");
                continue;
            }
            (true, Some(ca), false) => UpstreamTls::CaFile(base.join(ca)),
            (true, None, true) => UpstreamTls::Insecure,
            (true, None, false) => UpstreamTls::SystemRoots,
        };
        out.push(ManagerConfig {
            name: manager.name,
            scheme,
            authority,
            upstream_prefix,
            tls,
            host,
            prefix,
            timeouts,
            health_interval,
            forward_paths: manager.forward_paths,
            concurrency: None,
        });
    }
    out
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Why a public prefix is unusable, if it is.
fn prefix_problem(prefix: &str) -> Option<&'static str> {
    if prefix.is_empty() {
        return None;
    }
    if !prefix.starts_with('/') || prefix.ends_with('/') {
        return Some("must start with '/' and not end with '/', e.g. \"/east\"");
    }
    if prefix
        .split('/')
        .skip(1)
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Some("must not contain empty, '.' or '..' segments");
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
    {
        return Some("may contain only letters, digits, '/', '-', '_', '.' and '~'");
    }
    if prefix.split('/').any(|s| s == "ovirt-engine") {
        return Some("must not contain an `ovirt-engine` segment; it is the part in front of /ovirt-engine");
    }
    None
}

/// Scheme, authority and the path in front of `/ovirt-engine` of a Manager's API URL.
fn parse_manager_url(
    problems: &mut Problems,
    path: &str,
    url: &str,
) -> Option<(Scheme, http::uri::Authority, String)> {
    const RELATIVE: &str =
        "relative URL without scheme; give e.g. https://engine.example.com/ovirt-engine/api";
    if !url.contains("://") {
        problems.push(path, RELATIVE);
        return None;
    }
    let uri: Uri = match url.parse() {
        Ok(uri) => uri,
        Err(e) => {
            problems.push(path, format!("`{url}` is not a URL: {e}"));
            return None;
        }
    };
    let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned()) else {
        problems.push(path, RELATIVE);
        return None;
    };
    if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
        problems.push(path, format!("scheme `{scheme}` is not http or https"));
        return None;
    }
    if uri.query().is_some() || authority.as_str().contains('@') {
        problems.push(path, "must not contain a query or user information");
        return None;
    }
    let api_path = uri.path().trim_end_matches('/');
    let Some(upstream_prefix) = api_path.strip_suffix(API_SUFFIX) else {
        problems.push(
            path,
            format!("the path must end with {API_SUFFIX}, e.g. https://engine.example.com{API_SUFFIX}"),
        );
        return None;
    };
    Some((scheme, authority, upstream_prefix.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const MINIMAL: &str = r#"
[listen]
address = "127.0.0.1:8443"
plain_http = true

[[manager]]
name = "engine"
url = "http://127.0.0.1:8080/ovirt-engine/api"
"#;

    fn errors(text: &str) -> Vec<String> {
        Config::from_toml(text, Path::new("/etc/gw"))
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The minimal file is valid and gets the documented defaults.
    #[test]
    fn minimal_config_gets_defaults() {
        let config = Config::from_toml(MINIMAL, Path::new("/etc/gw")).unwrap();
        assert_eq!(config.listen.limits.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config.managers[0].upstream_prefix, "");
        assert_eq!(config.managers[0].tls, UpstreamTls::Plain);
        assert_eq!(config.managers[0].prefix, "");
    }

    /// An unknown key is named with its path and the nearest valid key.
    #[test]
    fn unknown_key_is_named_with_suggestion() {
        let text = MINIMAL.replace("plain_http", "plain_http = true\nadress = \"x\"\n#");
        assert_eq!(
            errors(&text),
            ["listen.adress: unknown key; did you mean `address`?"]
        );
    }

    /// Every unknown key is reported in one run, including inside the manager array.
    #[test]
    fn every_unknown_key_is_reported() {
        let text = format!("{MINIMAL}urll = 1\n[log]\nformatt = \"json\"\n[bogus]\nx = 1\n");
        let found = errors(&text);
        assert!(
            found.contains(&"manager[0].urll: unknown key; did you mean `url`?".to_owned()),
            "{found:?}"
        );
        assert!(
            found.contains(&"log.formatt: unknown key; did you mean `format`?".to_owned()),
            "{found:?}"
        );
        assert!(
            found.iter().any(|e| e.starts_with("bogus: unknown key")),
            "{found:?}"
        );
    }

    /// A relative manager URL is refused with the key path of the example in the issue.
    #[test]
    fn relative_manager_url_is_refused() {
        let text = format!(
            "{MINIMAL}\n[[manager]]\nname = \"b\"\nurl = \"engine/ovirt-engine/api\"\nprefix = \"/b\"\n"
        );
        let found = errors(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("manager[1].url: relative URL without scheme"),
            "{found:?}"
        );
    }

    /// Several problems in different places are all reported.
    #[test]
    fn all_problems_reported_at_once() {
        let text = r#"
[listen]
address = "nowhere"
max_body_bytes = 0
header_read_timeout = "10"

[[manager]]
name = "East!"
url = "https://e/ovirt-engine/api"
ca_file = "ca.pem"
insecure = true
"#;
        let found = errors(text);
        for expected in [
            "listen.address:",
            "listen.tls_cert: required unless plain_http",
            "listen.max_body_bytes: must be greater than zero",
            "listen.header_read_timeout: `10` has no unit",
            "manager[0].name:",
            "manager[0].insecure: insecure = true and ca_file exclude each other",
        ] {
            assert!(
                found.iter().any(|e| e.starts_with(expected)),
                "missing {expected} in {found:?}"
            );
        }
    }

    /// Relative paths resolve against the configuration file's folder.
    #[test]
    fn relative_paths_resolve_against_config_folder() {
        let text = r#"
[listen]
address = "127.0.0.1:8443"
tls_cert = "tls/cert.pem"
tls_key = { file = "tls/key.pem" }

[[manager]]
name = "engine"
url = "https://engine.example.com/ovirt-engine/api"
ca_file = "engine-ca.pem"
"#;
        let config = Config::from_toml(text, Path::new("/etc/gw")).unwrap();
        let tls = config.listen.tls.unwrap();
        assert_eq!(tls.cert, Path::new("/etc/gw/tls/cert.pem"));
        assert_eq!(tls.key, Secret::File("/etc/gw/tls/key.pem".into()));
        assert_eq!(
            config.managers[0].tls,
            UpstreamTls::CaFile("/etc/gw/engine-ca.pem".into())
        );
    }

    /// The key may come from an environment variable instead of a file.
    #[test]
    fn key_from_environment() {
        let text = MINIMAL.replace(
            "plain_http = true",
            "tls_cert = \"c.pem\"\ntls_key = { env = \"GW_KEY\" }",
        );
        let config = Config::from_toml(&text, Path::new("/etc/gw")).unwrap();
        assert_eq!(config.listen.tls.unwrap().key, Secret::Env("GW_KEY".into()));
    }

    /// Two managers published at the same place are refused.
    #[test]
    fn duplicate_route_is_refused() {
        let text = format!("{MINIMAL}\n[[manager]]\nname = \"b\"\nurl = \"http://b/ovirt-engine/api\"\n");
        let found = errors(&text);
        assert!(
            found[0].starts_with("manager[1].prefix: with several managers"),
            "{found:?}"
        );
    }

    /// A Manager URL must point at the API, and a prefix must be a clean path.
    #[test]
    fn manager_url_and_prefix_shapes() {
        let text = MINIMAL.replace("/ovirt-engine/api\"", "/api\"\nprefix = \"/east/\"");
        let found = errors(&text);
        assert!(
            found
                .iter()
                .any(|e| e.starts_with("manager[0].url: the path must end with /ovirt-engine/api"))
        );
        assert!(
            found
                .iter()
                .any(|e| e.starts_with("manager[0].prefix: must start with '/'"))
        );
    }

    /// A Manager behind a path keeps that path as its upstream prefix.
    #[test]
    fn manager_under_a_path() {
        let text = MINIMAL.replace("8080/ovirt-engine", "8080/rhv/ovirt-engine");
        let config = Config::from_toml(&text, Path::new("/")).unwrap();
        assert_eq!(config.managers[0].upstream_prefix, "/rhv");
    }

    /// Durations take ms, s, m and h; both sides of the unit rule.
    /// Rate limits are on without a `[rate_limit]` table; each bad key is named.
    #[test]
    fn rate_limit_defaults_and_errors() {
        let limits = Config::from_toml(MINIMAL, Path::new("/etc/gw"))
            .unwrap()
            .rate_limit
            .unwrap();
        assert_eq!(
            (limits.per_ip, limits.per_user, limits.costs),
            (DEFAULT_PER_IP, DEFAULT_PER_USER, DEFAULT_COSTS)
        );
        let off = format!("{MINIMAL}\n[rate_limit]\nenabled = false\n");
        assert!(
            Config::from_toml(&off, Path::new("/etc/gw"))
                .unwrap()
                .rate_limit
                .is_none()
        );
        let found = errors(&format!(
            "{MINIMAL}\n[rate_limit.per_user]\nrate = 0\n[rate_limit.costs]\naction = 2000000\n\
             [[rate_limit.user]]\nname = \"robot\"\nrate = 5\nburst = 0\n"
        ));
        let groups = errors(&format!(
            "{MINIMAL}\n[[rate_limit.group]]\nname = \"ops\"\nrate = 5\nburst = 10\n"
        ));
        assert_eq!(
            groups,
            ["rate_limit.group: groups come from the policy directory's entities: add a [policy] table"]
        );
        assert_eq!(
            found,
            [
                "rate_limit.per_user.rate: must be greater than zero",
                "rate_limit.user[0].name: must be user@profile, as clients log in",
                "rate_limit.user[0].burst: must be greater than zero",
                "rate_limit.costs.action: must be at most 1000000",
            ]
        );
    }

    /// `[cache]` alone turns the cache on with the documented defaults; each bad key is named.
    #[test]
    fn cache_defaults_and_errors() {
        let config = Config::from_toml(&format!("{MINIMAL}\n[cache]\n"), Path::new("/etc/gw")).unwrap();
        let cache = config.cache.unwrap();
        assert_eq!((cache.max_bytes, cache.max_entry_bytes), (64 << 20, 1 << 20));
        assert_eq!(cache.ttl, DEFAULT_CACHE_TTL);
        assert!(
            Config::from_toml(MINIMAL, Path::new("/etc/gw"))
                .unwrap()
                .cache
                .is_none()
        );
        let found = errors(&format!(
            "{MINIMAL}\n[cache]\nmax_bytes = 1000\nmax_entry_bytes = 2000\nshared_collections = [\"vms\", \"vm\"]\n[cache.ttl]\nentity = \"2\"\nroot = \"0s\"\n"
        ));
        assert_eq!(found.len(), 4, "{found:?}");
        for expected in [
            "cache.max_entry_bytes: must be at most 1000",
            "cache.ttl.root: must be greater than zero",
            "cache.shared_collections[1]: `vm` is not a collection of the API root",
        ] {
            assert!(found.iter().any(|e| e == expected), "{expected}: {found:?}");
        }
        assert!(
            found.iter().any(|e| e.starts_with("cache.ttl.entity: ")),
            "{found:?}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("30d").is_err());
        assert!(parse_duration("s").is_err());
    }

    /// A type error names its key path.
    #[test]
    fn wrong_type_names_path() {
        let text = MINIMAL.replace("plain_http = true", "plain_http = \"yes\"");
        let found = errors(&text);
        assert!(
            found[0].starts_with("listen.plain_http: invalid type"),
            "{found:?}"
        );
    }
}
