//! `[shared]`: the store replicas share state through (docs/replicas.md).

use std::path::Path;
use std::time::Duration;

use super::values::{Problems, secret};
use crate::config::file::FileShared;
use crate::config::{SharedConfig, Store};

// Defaults, documented in config/gateway.toml.
const DEFAULT_KEY_PREFIX: &str = "ovirt-gateway:";
/// A store on the same network answers in a millisecond or two; this bounds a stalled one.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_DEGRADED_TTL: Duration = Duration::from_secs(5);
const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(200);
const MAX_REPLICAS: u64 = 1024;

pub(super) fn validate_shared(
    problems: &mut Problems,
    shared: FileShared,
    base: &Path,
) -> Option<SharedConfig> {
    let before = problems.0.len();
    let (store, tls) = match (shared.url, shared.sentinels.is_empty()) {
        (Some(url), true) => {
            if shared.service.is_some() || shared.database.is_some() {
                problems.push(
                    "shared.service",
                    "service and database are for shared.sentinels; the url names the database",
                );
            }
            let tls = validate_url(problems, &url);
            (Store::Url(url), tls)
        }
        (None, false) => {
            for (i, sentinel) in shared.sentinels.iter().enumerate() {
                let port = sentinel.rsplit_once(':').and_then(|(host, port)| {
                    (!host.is_empty()).then_some(())?;
                    port.parse::<u16>().ok()
                });
                if port.is_none() {
                    problems.push(
                        format!("shared.sentinels[{i}]"),
                        format!("`{sentinel}` is not host:port, e.g. 10.0.0.1:26379"),
                    );
                }
            }
            let service = shared.service.unwrap_or_else(|| {
                problems.push(
                    "shared.service",
                    "required with shared.sentinels: the name Sentinel monitors the store as",
                );
                String::new()
            });
            let database = shared.database.unwrap_or(0);
            if database < 0 {
                problems.push("shared.database", "must be 0 or more");
            }
            (
                Store::Sentinel {
                    sentinels: shared.sentinels,
                    service,
                    database,
                },
                false,
            )
        }
        (Some(_), false) => {
            problems.push("shared.url", "give either url or sentinels, not both");
            (Store::Url(String::new()), false)
        }
        (None, true) => {
            problems.push(
                "shared.url",
                "required: the store's redis:// or rediss:// URL (or shared.sentinels)",
            );
            (Store::Url(String::new()), false)
        }
    };
    if shared.ca_file.is_some() && !tls {
        problems.push(
            "shared.ca_file",
            "only used with a rediss:// URL (not with sentinels)",
        );
    }
    let key_prefix = shared.key_prefix.unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
    if key_prefix.is_empty() || !key_prefix.bytes().all(|b| b.is_ascii_graphic()) {
        problems.push(
            "shared.key_prefix",
            "must be printable ASCII without spaces, e.g. ovirt-gateway:",
        );
    }
    let password = shared
        .password
        .and_then(|password| secret(problems, "shared.password", password, base));
    let key = secret(problems, "shared.key", shared.key, base);
    let timeout = problems.duration("shared.timeout", shared.timeout.as_deref(), DEFAULT_TIMEOUT);
    let check_interval = problems.duration(
        "shared.check_interval",
        shared.check_interval.as_deref(),
        DEFAULT_CHECK_INTERVAL,
    );
    let degraded_ttl = problems.duration(
        "shared.degraded_ttl",
        shared.degraded_ttl.as_deref(),
        DEFAULT_DEGRADED_TTL,
    );
    let replicas = problems.count("shared.replicas", Some(shared.replicas), 1, MAX_REPLICAS) as u32;
    let sync_interval = problems.duration(
        "shared.sync_interval",
        shared.sync_interval.as_deref(),
        DEFAULT_SYNC_INTERVAL,
    );
    let config = SharedConfig {
        store,
        ca_file: shared.ca_file.map(|file| base.join(file)),
        username: shared.username,
        password,
        key: key?,
        key_prefix,
        timeout,
        check_interval,
        degraded_ttl,
        replicas,
        sync_interval,
    };
    (problems.0.len() == before).then_some(config)
}

/// Checks a `redis://` or `rediss://` URL; whether it is TLS.
fn validate_url(problems: &mut Problems, url: &str) -> bool {
    let before = problems.0.len();
    let tls = if url.starts_with("rediss://") {
        true
    } else if url.starts_with("redis://") {
        false
    } else {
        problems.push(
            "shared.url",
            format!("`{url}` is not a redis:// or rediss:// URL"),
        );
        false
    };
    if let Some(authority) = url.split_once("://").map(|(_, rest)| rest)
        && authority.split('/').next().is_some_and(|a| a.contains('@'))
    {
        // Never echo the URL here: it may hold a password.
        problems.push(
            "shared.url",
            "holds credentials: give the user in shared.username and the password in shared.password (a file or an environment variable)",
        );
    } else if problems.0.len() == before
        && let Err(e) = redis::Client::open(url)
    {
        problems.push("shared.url", format!("`{url}`: {e}"));
    }
    tls
}
