//! `[listen]`: the address, TLS, the limits on what clients send and how long they may take, the
//! anonymous connection budget and the trusted proxies.

use std::path::Path;
use std::time::Duration;

use super::values::{Problems, secret};
use crate::config::file::FileListen;
use crate::config::{AnonymousBudget, Cidr, Limits, ListenConfig, TlsFiles};

// Defaults, documented key by key in config/gateway.toml, as are those of the other sections.
const DEFAULT_MAX_HEADER_BYTES: u64 = 64 * 1024;
pub(super) const DEFAULT_MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;
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
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

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

pub(super) fn validate_listen(
    problems: &mut Problems,
    listen: FileListen,
    base: &Path,
) -> Option<ListenConfig> {
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
        trusted_proxies: blocks(problems, "listen.trusted_proxies", &listen.trusted_proxies),
        proxy_protocol: blocks(problems, "listen.proxy_protocol", &listen.proxy_protocol),
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

/// A list of address blocks, each problem with its index.
fn blocks(problems: &mut Problems, path: &str, texts: &[String]) -> Vec<Cidr> {
    texts
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            let cidr = Cidr::parse(text);
            if cidr.is_none() {
                problems.push(
                    format!("{path}[{i}]"),
                    format!("`{text}` is not an address or an address block such as 10.0.0.0/8"),
                );
            }
            cidr
        })
        .collect()
}
