//! Configuration: the validated runtime model and how it is loaded.
//!
//! `config.toml -> FileConfig (file.rs, strict serde) -> validate.rs -> Config`. Only [`Config`] crosses
//! module boundaries. Loading reports every problem it finds, each with its key path
//! (`manager[1].url: ...`), instead of stopping at the first (docs/invariants.md, invariant 10).

mod file;
mod strict;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::uri::{Authority, Scheme};

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: ListenConfig,
    pub admin: Option<AdminConfig>,
    pub log: LogConfig,
    pub auth: AuthConfig,
    /// `None`: the gateway does not narrow what the Manager allows.
    pub policy: Option<PolicyConfig>,
    /// `None`: every GET goes to the Manager.
    pub cache: Option<CacheConfig>,
    /// `None` only with `rate_limit.enabled = false`.
    pub rate_limit: Option<RateLimitConfig>,
    pub managers: Vec<ManagerConfig>,
    /// `[federation]`: one merged API over several Managers; `None` when not configured.
    pub federation: Option<FederationConfig>,
    /// `[shared]`: state shared with the other replicas; `None` when this gateway is alone.
    pub shared: Option<SharedConfig>,
}

/// Where the shared store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// `shared.url`: `redis://` or `rediss://` (TLS), with host, port and database.
    Url(String),
    /// `shared.sentinels` and `shared.service`: the master Redis Sentinel names for the
    /// service, asked again when it stops answering as a master (docs/replicas.md, "High
    /// availability").
    Sentinel {
        /// `host:port` of each Sentinel.
        sentinels: Vec<String>,
        service: String,
        database: i64,
    },
}

/// `[shared]` (docs/replicas.md): the Redis (or Valkey) store replicas share sessions, logins,
/// revocations and cache invalidations through.
#[derive(Debug, Clone)]
pub struct SharedConfig {
    /// Where the store is: one address, or the master the Sentinels name.
    pub store: Store,
    /// For `rediss://`: the CA that signed the store's certificate; the system's roots if `None`.
    pub ca_file: Option<PathBuf>,
    /// ACL user name (Redis 6 and later); `None`: the default user.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// At least 32 bytes every replica shares: keys the sessions alike everywhere and encrypts
    /// the Managers' tokens held in the store.
    pub key: Secret,
    /// Prepended to every key and channel name, so that several deployments share one store.
    pub key_prefix: String,
    /// The longest any one exchange with the store may take (docs/invariants.md, invariant 12).
    pub timeout: Duration,
    /// How often the store is checked when nothing else talks to it.
    pub check_interval: Duration,
    /// While the store cannot be reached, answers are cached no longer than this (other
    /// replicas' writes cannot be heard of).
    pub degraded_ttl: Duration,
    /// How many replicas share the store: while it cannot be reached, each takes this share of
    /// every rate limit.
    pub replicas: u32,
    /// How often each replica adds the rate-limit units it took to the store's buckets.
    pub sync_interval: Duration,
}

/// `[federation]` (docs/federation.md, "The merged view"): a route, like a Manager's, that
/// publishes one API over its members.
#[derive(Debug, Clone)]
pub struct FederationConfig {
    /// Route requests whose Host (without port) is this name, lower case.
    pub host: Option<String>,
    /// The public path in front of `/ovirt-engine`; `""` for none.
    pub prefix: String,
    /// Manager names, in member order (the order listings are merged in).
    pub members: Vec<String>,
    /// The member that answers for the objects every Manager has under the same id.
    pub home: String,
    /// What a listing gets when a member cannot answer it.
    pub partial: Partial,
}

/// `federation.partial`, and the `handling` a client may prefer (RFC 7240).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partial {
    /// A listing some member cannot answer is that member's fault.
    Strict,
    /// The members that answered, the others named in `Federation-Incomplete`.
    Lenient,
}

/// `[cache]`: the GET response cache (docs/caching.md).
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Bytes held at most (bodies, headers and keys).
    pub max_bytes: u64,
    /// Larger responses stream through, neither stored nor buffered beyond this.
    pub max_entry_bytes: u64,
    pub ttl: CacheTtl,
    /// Top-level collections whose answers are the same for every user: shared between them.
    pub shared_collections: Vec<String>,
}

/// `[rate_limit]`: request rates (docs/rate-limiting.md).
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// Every request, by client address, before authentication.
    pub per_ip: RateQuota,
    /// Authenticated API requests, by user, in cost units.
    pub per_user: RateQuota,
    pub costs: RateCosts,
    /// Users with their own quota instead of `per_user`.
    pub users: Vec<(String, RateQuota)>,
    /// Groups (of the policies' entities) whose members have this quota instead of `per_user`,
    /// in configuration order: a user's first group listed applies.
    pub groups: Vec<(String, RateQuota)>,
    /// Buckets held at most (addresses and users); full ones are dropped first.
    pub max_keys: usize,
    /// The longest a request over its bucket is delayed before it goes on; a longer wait is
    /// refused with 429.
    pub max_delay: Duration,
    /// Each Manager's concurrency gate.
    pub manager: Concurrency,
    pub logins: LoginThrottle,
}

/// Lockouts after failed logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Failed logins of one user from one address within `window` that lock them out.
    pub failures: u32,
    /// Failed logins from one address, whichever users, within `window` that lock it out.
    pub address_failures: u32,
    pub window: Duration,
    /// The first lockout; each further one doubles, up to `max_lockout`.
    pub lockout: Duration,
    pub max_lockout: Duration,
    /// Failed logins at which the directory behind the Managers locks an account: the gateway
    /// lets fewer than this many of one user reach it within `directory_window`, from all
    /// addresses together.
    pub directory_threshold: u32,
    /// How long the directory counts failures (Active Directory's "reset account lockout
    /// counter after").
    pub directory_window: Duration,
}

/// Requests at one Manager at once, and how many may wait, how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    pub inflight: usize,
    /// The most places one user (or one address, for tokens passed through) holds at once.
    pub per_user: usize,
    /// Places only logins (and revocations) may take: a Manager full of one user's requests
    /// still logs others in.
    pub logins: usize,
    pub queue: usize,
    pub wait: Duration,
}

/// A bucket: `burst` units at once, refilled at `rate` units per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    pub rate: u32,
    pub burst: u32,
}

impl RateQuota {
    /// The time one unit takes to refill.
    pub fn interval(self) -> Duration {
        Duration::from_secs(1) / self.rate.max(1)
    }
}

/// Units a request takes from its user's bucket, by class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateCosts {
    pub collection: u32,
    pub entity: u32,
    pub write: u32,
    pub action: u32,
}

/// How long a response is reused, by route class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheTtl {
    /// `/ovirt-engine/api`.
    pub root: Duration,
    /// `/vms`, `/vms?search=...`.
    pub collection: Duration,
    /// `/vms/ID`.
    pub entity: Duration,
    /// `/vms/ID/nics`, `/vms/ID/nics/NID`, ...
    pub below: Duration,
}

/// `[policy]`: Cedar policies (docs/policies.md).
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// The directory of `*.cedar` files and `entities.json`.
    pub dir: PathBuf,
    pub mode: PolicyMode,
    /// How often the directory is checked for changes.
    pub watch_interval: Duration,
    /// How long a resource's attributes looked up at the Manager are reused.
    pub attribute_ttl: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyMode {
    /// Denials are 403.
    Enforce,
    /// Every decision is evaluated, logged and counted, and every request is allowed.
    Shadow,
}

impl PolicyMode {
    pub fn label(self) -> &'static str {
        match self {
            PolicyMode::Enforce => "enforce",
            PolicyMode::Shadow => "shadow",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ListenConfig {
    pub address: SocketAddr,
    /// `None` only when `plain_http = true`.
    pub tls: Option<TlsFiles>,
    pub limits: Limits,
}

/// The certificate chain and private key of the public listener, both PEM.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: Secret,
}

/// Limits of the public listener; defaults in `validate.rs`, documented in config/gateway.toml.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// How fast a request body must come (`listen.body_timeout`, `listen.min_body_rate`).
    pub body_pace: crate::body::BodyPace,
    /// The longest a write toward a client may make no progress (`listen.send_timeout`).
    pub send_timeout: Duration,
    pub max_connections: usize,
    /// Connections none of whose requests has authenticated yet: at most this many in all, and
    /// per client address (docs/security.md, "Connection budgets").
    pub anonymous: AnonymousBudget,
    /// Serve HTTP/2 (ALPN `h2`, and prior knowledge on plain HTTP). Off by default: the Python
    /// SDK's libcurl stalls up to a second per request over HTTP/2 (docs/architecture.md).
    pub http2: bool,
    pub http2_max_concurrent_streams: u32,
    /// gzip level (1 to 9) for bodies the gateway rewrote, toward clients that accept gzip; 0: off.
    pub compression_level: u32,
    pub shutdown_grace: Duration,
    /// Peers whose X-Forwarded-For is believed (`listen.trusted_proxies`): the client is the
    /// address they name.
    pub trusted_proxies: Vec<Cidr>,
    /// Peers that open every connection with a PROXY protocol header (`listen.proxy_protocol`):
    /// the client is the address it names.
    pub proxy_protocol: Vec<Cidr>,
}

/// How many connections may be open before one of their requests authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnonymousBudget {
    pub total: usize,
    pub per_address: usize,
}

/// An address block (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: std::net::IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (address, bits) = match text.split_once('/') {
            Some((address, bits)) => (address, Some(bits.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let network: std::net::IpAddr = address.parse().ok()?;
        let most = if network.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(most);
        (bits <= most).then_some(Cidr { network, bits })
    }

    /// Whether `address` is in the block (IPv4-mapped IPv6 addresses as IPv4).
    pub fn contains(&self, address: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let mask = |bits: u8, width: u32| {
            if bits == 0 {
                0
            } else {
                u128::MAX << (width - u32::from(bits))
            }
        };
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let m = mask(self.bits, 32) as u32;
                u32::from(net) & m == u32::from(ip) & m
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let m = mask(self.bits, 128);
                u128::from(net) & m == u128::from(ip) & m
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub address: SocketAddr,
    /// Most admin connections open at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// How long a scraper may take to send its request head, and how long an admin connection
    /// may stay idle.
    pub header_read_timeout: Duration,
    /// When /readyz answers 200.
    pub ready_when: ReadyWhen,
}

/// `admin.ready_when`: which Managers must be up for the gateway to be ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyWhen {
    /// At least one: the gateway can serve someone (the default).
    Any,
    /// Every Manager.
    All,
}

impl ReadyWhen {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadyWhen::Any => "any",
            ReadyWhen::All => "all",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `auth.console_files`: what the gateway does with requests for console descriptors (.vv
/// files), which the engine writes the Manager's SSO token into (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleFiles {
    /// 403 fault before the request reaches the Manager.
    Refuse,
    /// Forwarded; the answer's `sso-token=` line is removed.
    StripToken,
    /// Forwarded as they are: the client gets the Manager's token.
    Pass,
}

/// Sessions made from Basic credentials (`auth.rs`); defaults in `validate.rs`.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// A session unused for this long is dropped.
    pub session_idle: Duration,
    /// A session is dropped this long after its login, used or not.
    pub session_lifetime: Duration,
    /// Most sessions held at once; the least recently used go first.
    pub max_sessions: u64,
    /// Most logins (SSO endpoint, persistent sessions) one user holds; the oldest goes first.
    pub max_logins_per_user: usize,
    /// How long a refused login is remembered, so that the same wrong password is refused
    /// without asking the Manager again.
    pub failure_cache: Duration,
    /// The Ed25519 key (PKCS#8 PEM) that signs the gateway's tokens; generated at start if `None`.
    pub token_key: Option<Secret>,
    /// Forward Bearer tokens the gateway did not issue as they are (the Manager's own tokens).
    pub bearer_passthrough: bool,
    /// What becomes of console descriptors, whose answer embeds the Manager's token.
    pub console_files: ConsoleFiles,
    /// Bodies up to this size, of requests made with Basic credentials, are kept so that the
    /// request can be resent after a fresh login when the Manager refused the session's token.
    pub resend_body_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive, e.g. `info` or `info,ovirt_gateway=debug`.
    pub level: String,
}

/// One Manager behind the gateway and where it is published.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    pub name: String,
    pub scheme: Scheme,
    pub authority: Authority,
    /// The path in front of `/ovirt-engine` on the Manager's side; `""` for a standard engine.
    pub upstream_prefix: String,
    pub tls: UpstreamTls,
    /// Route requests whose Host (without port) is this name, lower case.
    pub host: Option<String>,
    /// The public path in front of `/ovirt-engine`; `""` when not published under a prefix.
    pub prefix: String,
    pub timeouts: UpstreamTimeouts,
    pub health_interval: Duration,
    /// `None` when `breaker_failures = 0`.
    pub breaker: Option<BreakerConfig>,
    /// Engine paths outside the API, SSO and services forwarded to this Manager as they are
    /// (`/ovirt-engine/apidoc`); none by default.
    pub forward_paths: Vec<String>,
    /// `[rate_limit.manager]`; `None` when rate limits are off.
    pub concurrency: Option<Concurrency>,
}

/// How the gateway verifies a Manager's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTls {
    /// `http://` Manager URL: no TLS at all.
    Plain,
    /// Verify against the operating system's trusted roots.
    SystemRoots,
    /// Verify against this CA bundle (the engine's CA, PEM).
    CaFile(PathBuf),
    /// `insecure = true`: no verification.
    Insecure,
}

/// `[[manager]] breaker_failures` and `breaker_open` (upstream/breaker.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed exchanges that open the breaker.
    pub failures: u32,
    /// How long it stays open before a probe is let through.
    pub open_for: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct UpstreamTimeouts {
    pub connect: Duration,
    pub response_headers: Duration,
    pub body_idle: Duration,
}

/// A secret read at start: from a file, or from an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    File(PathBuf),
    Env(String),
}

impl Secret {
    /// The secret's bytes. The error names where it was looked for, never its content.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Secret::File(path) => {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
            Secret::Env(name) => std::env::var_os(name)
                .map(|v| v.into_encoded_bytes())
                .ok_or_else(|| format!("environment variable {name} is not set")),
        }
    }
}

/// One configuration problem, with the key path it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one configuration file.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads, parses and validates a configuration file. Relative paths in it resolve against the
    /// folder the file is in.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                path.display().to_string(),
                format!("cannot read: {e}"),
            )])
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_toml(&text, base)
    }

    /// Parses and validates configuration text; relative paths resolve against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Config, ConfigErrors> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigErrors(vec![ConfigError::new("(syntax)", e.to_string().trim_end())])
        })?;
        let (file, mut errors) = strict::deserialize_strict(table);
        match file.map(|file| validate::validate(file, base)) {
            Some(Ok(config)) if errors.is_empty() => Ok(config),
            Some(Err(more)) => {
                errors.extend(more);
                Err(ConfigErrors(errors))
            }
            _ => Err(ConfigErrors(errors)),
        }
    }
}
