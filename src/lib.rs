//! ovirt-gateway: an API gateway in front of oVirt / Red Hat Virtualization Managers.
//!
//! [`Gateway::start`] runs a gateway from a validated [`Config`] and returns a [`Running`] handle
//! with the bound addresses; tests and the CLI both start it this way. See docs/architecture.md
//! for the request path and the module map.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod admin;
mod api;
mod auth;
mod body;
mod cache;
mod cli;
mod compression;
mod config;
mod connection;
#[cfg(feature = "sim")]
mod demo;
mod fault;
mod federation;
mod metrics;
mod pipeline;
mod policy;
mod proxy_protocol;
mod ratelimit;
mod rewrite;
mod server;
mod shared;
/// The Manager simulator (docs/simulator.md), started as a library by the tests and benchmarks.
#[cfg(feature = "sim")]
pub mod sim;
mod time;
mod tls;
mod token_guard;
mod upstream;
mod wire;

// The crate's surface: what the binary, the tests, the benchmarks and the fuzz targets use.
// Everything else is private to the crate, so rustc reports what nobody uses.
pub use body::GatewayBody;
pub use cli::{escaped_fields, run};
pub use config::Config;
#[cfg(feature = "sim")]
pub use demo::{Demo, DemoOptions};
pub use metrics::Metrics;
// The readers, rewriters and decisions that benches/ and fuzz/ drive directly.
pub use api::canonical_id;
pub use api::params::EngineParams;
pub use api::path::{ApiPath, EngineArea, check_ids, validate as validate_path};
pub use federation::merge::{Join, NotAListing, Splitter};
pub use policy::mapping::{Kind, followed as followed_links, map as map_request};
pub use policy::{ContextParams, Facts, Found, Policies, Problem};
pub use ratelimit::RateLimiter;
pub use rewrite::json::JsonRewriter;
pub use rewrite::prefix::Rule;
pub use rewrite::response::{Bases, rewrite as rewrite_response};
pub use rewrite::xml::XmlRewriter;
pub use token_guard::{Alarm, TokenForms, guard as guard_answer};
pub use wire::Representation;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::auth::Authenticator;
use crate::config::UpstreamTls;
use crate::pipeline::GatewayState;
use crate::policy::Enforcer;
use crate::tls::ReloadableCert;
use crate::upstream::Upstream;
use crate::upstream::router::Router;

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listen: {0}")]
    Tls(String),
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    Shared(String),
    #[error("policy: {0}")]
    Policy(String),
    #[error("manager `{name}`: {message}")]
    Manager { name: String, message: String },
    #[error("cannot listen on {address} ({what}): {source}")]
    Bind {
        what: &'static str,
        address: SocketAddr,
        source: std::io::Error,
    },
}

pub struct Gateway;

impl Gateway {
    /// Loads TLS material, binds the listeners and starts serving. Returns once both listeners
    /// are bound, so a client may connect as soon as this returns.
    pub async fn start(config: Config) -> Result<Running, StartError> {
        let metrics = Arc::new(Metrics::new());
        let cert = match &config.listen.tls {
            Some(files) => Some(Arc::new(
                ReloadableCert::load(files.clone(), metrics.tls_certificate_expiry.clone())
                    .map_err(StartError::Tls)?,
            )),
            None => {
                tracing::warn!(
                    "plain_http = true: the listener serves unencrypted HTTP; credentials cross the network in clear text"
                );
                None
            }
        };
        let mut upstreams = Vec::new();
        for manager in &config.managers {
            match manager.tls {
                UpstreamTls::Insecure => tracing::warn!(
                    manager = %manager.name,
                    "insecure = true: the Manager's certificate is not verified; anyone on the path can read tokens"
                ),
                UpstreamTls::Plain => tracing::warn!(
                    manager = %manager.name,
                    "the Manager is reached over plain http://; credentials and tokens cross the network in clear text"
                ),
                UpstreamTls::SystemRoots | UpstreamTls::CaFile(_) => {}
            }
            let upstream = Upstream::new(manager.clone()).map_err(|message| StartError::Manager {
                name: manager.name.clone(),
                message,
            })?;
            upstreams.push(Arc::new(upstream));
        }
        let shared = config
            .shared
            .as_ref()
            .map(|shared| shared::Shared::new(shared, &metrics))
            .transpose()
            .map_err(StartError::Shared)?;
        let auth = Arc::new(
            Authenticator::new(&config.auth, metrics.clone(), shared.clone(), upstreams.clone())
                .map_err(StartError::Auth)?,
        );
        let policy = match &config.policy {
            Some(policy) => Some(Arc::new(Enforcer::load(policy, metrics.clone()).map_err(
                |problems| {
                    StartError::Policy(
                        problems
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("\n"),
                    )
                },
            )?)),
            None => {
                tracing::warn!(
                    "no [policy] table: the gateway does not narrow access; the Manager's own permissions apply"
                );
                None
            }
        };
        let (shutdown, shutdown_rx) = watch::channel(false);

        let public = bind("public listener", config.listen.address).await?;
        let public_addr = public.local_addr().expect("a bound socket has an address");
        let admin = match &config.admin {
            Some(admin) => {
                if !admin.address.ip().is_loopback() {
                    tracing::warn!(
                        address = %admin.address,
                        "the admin listener is reachable beyond this host: /metrics names Managers and users; keep it on a private network"
                    );
                }
                Some((bind("admin listener", admin.address).await?, admin.clone()))
            }
            None => None,
        };
        let admin_addr = admin
            .as_ref()
            .map(|(l, _)| l.local_addr().expect("a bound socket has an address"));

        let mut background = JoinSet::new();
        background.spawn(auth.clone().expire_on_timer());
        if let Some(shared) = &shared {
            background.spawn(shared.clone().watch());
            background.spawn(auth.clone().follow());
        }
        if let Some(policy) = &policy {
            background.spawn(policy.clone().watch());
        }
        for upstream in &upstreams {
            let (upstream, metrics) = (upstream.clone(), metrics.clone());
            background.spawn(async move { upstream.watch_health(&metrics).await });
        }
        if let Some((listener, admin_config)) = admin {
            let state = Arc::new(admin::AdminState {
                metrics: metrics.clone(),
                upstreams: upstreams.clone(),
                ready_when: admin_config.ready_when,
                shared: shared.clone(),
            });
            background.spawn(admin::serve(listener, state, admin_config, shutdown_rx.clone()));
        }
        let rate_limit = config.rate_limit.clone().map(|limits| match &shared {
            Some(store) => {
                let (limiter, buckets) = RateLimiter::shared(limits, metrics.clone(), store.clone());
                background.spawn(buckets.sync());
                let limiter = Arc::new(limiter);
                background.spawn(limiter.clone().follow(store.clone()));
                limiter
            }
            None => Arc::new(RateLimiter::new(limits, metrics.clone())),
        });
        let cache = config
            .cache
            .clone()
            .map(|cache| cache::Cache::new(cache, metrics.clone(), shared.clone()));
        if let Some(cache) = &cache
            && shared.is_some()
        {
            background.spawn(cache.clone().follow());
        }
        let state_upstreams = upstreams.clone();
        let state = Arc::new(GatewayState {
            limits: config.listen.limits.clone(),
            router: Router::new(&config.managers, config.federation.as_ref()),
            federation: config
                .federation
                .clone()
                .map(|f| Arc::new(federation::Federation::new(f, &upstreams))),
            upstreams,
            auth: auth.clone(),
            policy: policy.clone(),
            cache: cache.clone(),
            rate_limit: rate_limit.clone(),
            metrics,
        });
        let acceptor = cert
            .clone()
            .map(|cert| TlsAcceptor::from(tls::server_config(cert, config.listen.limits.http2)));
        let server = tokio::spawn(server::serve(public, acceptor, state, shutdown_rx));
        tracing::info!(address = %public_addr, tls = cert.is_some(), admin = ?admin_addr, "gateway listening");
        Ok(Running {
            public_addr,
            admin_addr,
            cert,
            auth,
            policy,
            rate_limit,
            upstreams: state_upstreams,
            shutdown,
            server,
            background,
        })
    }
}

async fn bind(what: &'static str, address: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Bind {
            what,
            address,
            source,
        })
}

/// A running gateway. Dropping it stops it as [`Running::shutdown`] does, without waiting.
pub struct Running {
    public_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    cert: Option<Arc<ReloadableCert>>,
    auth: Arc<Authenticator>,
    policy: Option<Arc<Enforcer>>,
    rate_limit: Option<Arc<RateLimiter>>,
    upstreams: Vec<Arc<Upstream>>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    background: JoinSet<()>,
}

impl Running {
    /// The address the public listener is bound to (useful with port 0).
    pub fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Reads the listener's certificate and key again. New handshakes use the new pair; open
    /// connections keep theirs. On error the old pair stays in use.
    pub fn reload_tls(&self) -> Result<(), String> {
        match &self.cert {
            Some(cert) => cert.reload(),
            None => Ok(()),
        }
    }

    /// Reads the policy directory again (as its watcher does on a change). A valid set replaces
    /// the current one; on error the current one stays. `Ok(None)` without `[policy]`.
    pub fn reload_policies(&self) -> Result<Option<usize>, Vec<Problem>> {
        self.policy.as_ref().map(|policy| policy.reload()).transpose()
    }

    /// Applies the rate limits of a newly read configuration (SIGHUP): quotas, costs, overrides,
    /// login lockouts and the Managers' gates, for the requests that follow. Returns the changed keys that wait for
    /// the next start; an error when limits would be turned on or off, which also needs one.
    pub fn reload_rate_limits(&self, config: &Config) -> Result<Vec<&'static str>, String> {
        match (&self.rate_limit, &config.rate_limit) {
            (Some(limiter), Some(limits)) => {
                for upstream in &self.upstreams {
                    upstream.resize_gate(limits.manager);
                }
                Ok(limiter.reload(limits.clone()))
            }
            (None, None) => Ok(Vec::new()),
            _ => Err("rate_limit.enabled changed: turning limits on or off needs a restart".into()),
        }
    }

    /// Stops accepting, lets requests in flight finish within `listen.shutdown_grace`, then closes
    /// what is left and revokes the Managers' tokens of open sessions. Returns when all is done.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Err(error) = (&mut self.server).await {
            tracing::error!(%error, "listener task failed");
        }
        // After the drain, while the Managers are still reachable: no upstream token outlives
        // the gateway (bounded in time).
        let revoked = self.auth.revoke_everything().await;
        if revoked > 0 {
            tracing::info!(revoked, "revoked the Managers' tokens of open sessions");
        }
        self.background.shutdown().await;
    }
}

/// Loads everything a configuration points at (listener certificate and key, Manager CA files)
/// without binding anything; the problems, each prefixed with its key path.
pub fn check_material(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(files) = &config.listen.tls
        && let Err(e) = tls::load_certified_key(files)
    {
        problems.push(format!("listen.tls_cert: {e}"));
    }
    if let Some(key) = &config.auth.token_key
        && let Err(e) = key
            .read()
            .and_then(|pem| auth::tokens::TokenKeys::from_pem(&pem).map(drop))
    {
        problems.push(format!("auth.token_key: {e}"));
    }
    // The store's key material and CA, without connecting (`serve` reports what it cannot reach).
    if let Some(shared) = &config.shared
        && let Err(e) = shared::check_material(shared)
    {
        problems.push(e);
    }
    for (i, manager) in config.managers.iter().enumerate() {
        if let Err(e) = tls::client_config(&manager.tls) {
            let key = if matches!(manager.tls, UpstreamTls::CaFile(_)) {
                "ca_file"
            } else {
                "url"
            };
            problems.push(format!("manager[{i}].{key}: {e}"));
        }
    }
    problems
}
