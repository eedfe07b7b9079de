//! From the deserialized file to the runtime model: every value validated with its key path,
//! defaults applied, and every problem reported at once. `[listen]`, `[[manager]]`,
//! `[rate_limit]`, `[cache]`, `[federation]` and `[shared]` have a file each; `[admin]`, `[log]`, `[auth]` and `[policy]` are
//! short and checked here, with how the sections constrain each other.

mod cache;
mod federation;
mod listen;
mod managers;
mod rate_limit;
mod shared;
mod values;

use std::path::Path;
use std::time::Duration;

use crate::config::file::FileConfig;
use crate::config::{
    AdminConfig, AuthConfig, Config, ConfigError, ConsoleFiles, LogConfig, LogFormat, PolicyConfig,
    PolicyMode, ReadyWhen,
};
use cache::validate_cache;
use federation::validate_federation;
use listen::validate_listen;
use managers::validate_managers;
use rate_limit::validate_rate_limit;
use shared::validate_shared;
use values::{Problems, secret};

// Defaults, documented key by key in config/gateway.toml.
/// The admin listener serves scrapers and probes: loopback unless told otherwise.
const DEFAULT_ADMIN_ADDRESS: &str = "127.0.0.1:9090";
const DEFAULT_ADMIN_CONNECTIONS: u64 = 64;
const DEFAULT_ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
const DEFAULT_MAX_SESSIONS: u64 = 10_000;
const DEFAULT_MAX_LOGINS_PER_USER: u64 = 100;
const DEFAULT_FAILURE_CACHE: Duration = Duration::from_secs(10);
const DEFAULT_RESEND_BODY_BYTES: u64 = 1024 * 1024;
const DEFAULT_POLICY_WATCH_INTERVAL: Duration = Duration::from_secs(2);
const DEFAULT_POLICY_ATTRIBUTE_TTL: Duration = Duration::from_secs(10);

pub(super) fn validate(file: FileConfig, base: &Path) -> Result<Config, Vec<ConfigError>> {
    let mut problems = Problems(Vec::new());
    let listen = validate_listen(&mut problems, file.listen, base);
    let admin = file.admin.and_then(|admin| {
        let ready_when = match admin.ready_when.as_deref() {
            None | Some("any") => ReadyWhen::Any,
            Some("all") => ReadyWhen::All,
            Some(other) => {
                problems.push(
                    "admin.ready_when",
                    format!("`{other}` is not one of `any`, `all`"),
                );
                ReadyWhen::Any
            }
        };
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
            ready_when,
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
    let federation = file
        .federation
        .and_then(|federation| validate_federation(&mut problems, federation, &managers));
    let shared = file
        .shared
        .and_then(|shared| validate_shared(&mut problems, shared, base));
    if shared.is_some() && auth.token_key.is_none() {
        problems.push(
            "auth.token_key",
            "required with [shared]: every replica must sign and verify the gateway's tokens with the same key",
        );
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
            federation,
            shared,
        }),
        _ => Err(problems.0),
    }
}

#[cfg(test)]
mod tests;
