//! The configuration file as written: serde structs that mirror the TOML exactly, with
//! `deny_unknown_fields` everywhere. Nothing here is used at run time; `validate` turns it into
//! the runtime model of `config.rs`. Values keep the types a person writes (strings for addresses,
//! durations and URLs) so that validation can report every problem with its key path.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub listen: FileListen,
    pub admin: Option<FileAdmin>,
    #[serde(default)]
    pub log: FileLog,
    #[serde(default)]
    pub auth: FileAuth,
    pub policy: Option<FilePolicy>,
    pub cache: Option<FileCache>,
    #[serde(default)]
    pub rate_limit: FileRateLimit,
    #[serde(default)]
    pub manager: Vec<FileManager>,
    pub federation: Option<FileFederation>,
    pub shared: Option<FileShared>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileShared {
    pub url: Option<String>,
    #[serde(default)]
    pub sentinels: Vec<String>,
    pub service: Option<String>,
    pub database: Option<i64>,
    pub ca_file: Option<String>,
    pub username: Option<String>,
    pub password: Option<FileSecret>,
    pub key: FileSecret,
    pub key_prefix: Option<String>,
    pub timeout: Option<String>,
    pub check_interval: Option<String>,
    pub degraded_ttl: Option<String>,
    pub replicas: u64,
    pub sync_interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileFederation {
    pub host: Option<String>,
    pub prefix: Option<String>,
    pub members: Vec<String>,
    pub home: Option<String>,
    pub partial: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRateLimit {
    pub enabled: Option<bool>,
    pub max_keys: Option<u64>,
    pub max_delay: Option<String>,
    #[serde(default)]
    pub per_ip: FileRateQuota,
    #[serde(default)]
    pub per_user: FileRateQuota,
    #[serde(default)]
    pub costs: FileRateCosts,
    #[serde(default)]
    pub user: Vec<FileRateUser>,
    #[serde(default)]
    pub group: Vec<FileRateUser>,
    #[serde(default)]
    pub manager: FileConcurrency,
    #[serde(default)]
    pub logins: FileLoginThrottle,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLoginThrottle {
    pub failures: Option<u64>,
    pub address_failures: Option<u64>,
    pub window: Option<String>,
    pub lockout: Option<String>,
    pub max_lockout: Option<String>,
    pub directory_threshold: Option<u64>,
    pub directory_window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConcurrency {
    pub inflight: Option<u64>,
    pub per_user_inflight: Option<u64>,
    pub login_inflight: Option<u64>,
    pub queue: Option<u64>,
    pub wait: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRateQuota {
    pub rate: Option<u64>,
    pub burst: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRateCosts {
    pub collection: Option<u64>,
    pub entity: Option<u64>,
    pub write: Option<u64>,
    pub action: Option<u64>,
}

/// `[[rate_limit.user]]` and `[[rate_limit.group]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRateUser {
    pub name: String,
    pub rate: u64,
    pub burst: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileCache {
    pub max_bytes: Option<u64>,
    pub max_entry_bytes: Option<u64>,
    #[serde(default)]
    pub ttl: FileCacheTtl,
    #[serde(default)]
    pub shared_collections: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileCacheTtl {
    pub root: Option<String>,
    pub collection: Option<String>,
    pub entity: Option<String>,
    pub below: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilePolicy {
    pub dir: String,
    pub mode: Option<String>,
    pub watch_interval: Option<String>,
    pub attribute_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAuth {
    pub session_idle: Option<String>,
    pub session_lifetime: Option<String>,
    pub max_sessions: Option<u64>,
    pub max_logins_per_user: Option<u64>,
    pub failure_cache: Option<String>,
    pub token_key: Option<FileSecret>,
    pub resend_body_bytes: Option<u64>,
    #[serde(default)]
    pub bearer_passthrough: bool,
    pub console_files: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileListen {
    pub address: String,
    pub tls_cert: Option<String>,
    pub tls_key: Option<FileSecret>,
    #[serde(default)]
    pub plain_http: bool,
    pub max_header_bytes: Option<u64>,
    pub max_body_bytes: Option<u64>,
    pub header_read_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub min_body_rate: Option<u64>,
    pub send_timeout: Option<String>,
    pub max_connections: Option<u64>,
    pub max_anonymous_connections: Option<u64>,
    pub max_anonymous_connections_per_address: Option<u64>,
    #[serde(default)]
    pub http2: bool,
    pub http2_max_concurrent_streams: Option<u64>,
    pub compression_level: Option<u32>,
    pub shutdown_grace: Option<String>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    #[serde(default)]
    pub proxy_protocol: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAdmin {
    pub address: Option<String>,
    pub max_connections: Option<u64>,
    pub header_read_timeout: Option<String>,
    pub ready_when: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLog {
    pub format: Option<String>,
    pub level: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileManager {
    pub name: String,
    pub url: String,
    pub ca_file: Option<String>,
    #[serde(default)]
    pub insecure: bool,
    pub host: Option<String>,
    pub prefix: Option<String>,
    pub connect_timeout: Option<String>,
    pub response_timeout: Option<String>,
    pub body_idle_timeout: Option<String>,
    pub health_interval: Option<String>,
    pub breaker_failures: Option<u64>,
    pub breaker_open: Option<String>,
    #[serde(default)]
    pub forward_paths: Vec<String>,
}

/// Where a secret comes from: a bare string is a file path; a table names a file or an
/// environment variable. Secrets are never written inline in the configuration.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum FileSecret {
    Path(String),
    Source(FileSecretSource),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSecretSource {
    pub file: Option<String>,
    pub env: Option<String>,
}
