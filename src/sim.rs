//! The Manager simulator: an oVirt Engine stand-in on one port, faithful on the wire to what
//! docs/engine.md describes (each departure is named where it is made and in docs/simulator.md).
//!
//! It serves the REST API (`api.rs`), the SSO endpoints and services the clients use (`sso.rs`), and
//! test endpoints outside `/ovirt-engine` that let tests observe and break it: `GET /sim/stats`,
//! `POST /sim/revoke-all` (an engine restart, for tokens), `GET|POST /sim/faults`.
//!
//! It never touches the gateway's code paths: the gateway sees it only through HTTP.

mod api;
mod faults;
mod generate;
mod input;
mod model;
mod pki;
mod render;
mod repr;
mod search;
mod sso;
mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::body::GatewayBody;
use crate::wire::sso::json_response;
pub use generate::Sizes;
use model::{Inventory, Rng};
pub use pki::Pki;
use users::{User, UsersFile};

/// How to run a simulator (the `ovirt-gateway sim` flags).
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub listen: SocketAddr,
    /// Serve HTTPS with a certificate from the simulator's own CA.
    pub self_signed: bool,
    pub sizes: Sizes,
    pub seed: u64,
    /// Extra latency before every API answer, drawn uniformly from this range.
    pub latency: Option<(Duration, Duration)>,
    /// Tokens and sessions die after this long without use (the engine's SSO_TOKEN_TIMEOUT).
    pub token_ttl: Duration,
    /// Compress API bodies with gzip when the client accepts it, as the engine's Apache does.
    pub gzip: bool,
    pub users: Option<PathBuf>,
    /// Put before every generated name (`east-vm-00001`), so that several simulators behind one
    /// gateway name their objects apart; letters, digits, `-` and `_`.
    pub name_prefix: String,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            self_signed: false,
            sizes: Sizes::default(),
            seed: 1,
            latency: None,
            token_ttl: Duration::from_secs(360_000),
            gzip: false,
            users: None,
            name_prefix: String::new(),
        }
    }
}

/// Counters served at `/sim/stats`.
#[derive(Default)]
struct Stats {
    sso_logins: AtomicU64,
    basic_logins: AtomicU64,
    failed_logins: AtomicU64,
    api_requests: AtomicU64,
    revoked_tokens: AtomicU64,
}

/// Everything a request handler reads or changes.
struct Sim {
    options: SimOptions,
    inventory: RwLock<Inventory>,
    users: Vec<User>,
    sso: sso::Tokens,
    stats: Stats,
    faults: Mutex<faults::Faults>,
    rng: Mutex<Rng>,
    pki: Arc<Pki>,
}

impl Sim {
    fn inventory(&self) -> std::sync::RwLockReadGuard<'_, Inventory> {
        self.inventory.read().unwrap_or_else(|p| p.into_inner())
    }

    fn inventory_mut(&self) -> std::sync::RwLockWriteGuard<'_, Inventory> {
        self.inventory.write().unwrap_or_else(|p| p.into_inner())
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, Rng> {
        self.rng.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running simulator. Dropping it stops it.
pub struct RunningSim {
    addr: SocketAddr,
    tls: bool,
    pki: Arc<Pki>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl RunningSim {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/ovirt-engine/api` (https with `--self-signed`).
    pub fn api_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/ovirt-engine/api", self.addr)
    }

    /// The simulator's CA, PEM (served at `/ovirt-engine/services/pki-resource`).
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// Stops accepting and closes every connection.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let _ = (&mut self.server).await;
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Generates the inventory, binds the port and starts serving; returns once it is listening.
pub async fn start(options: SimOptions) -> Result<RunningSim, String> {
    let prefix = &options.name_prefix;
    if let Some(bad) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "--name-prefix {prefix:?}: {bad:?} is not allowed (letters, digits, '-' and '_' only)"
        ));
    }
    let mut rng = Rng::new(options.seed);
    let mut inventory = generate::generate(rng.next_u64(), options.sizes, prefix);
    let users_file = match &options.users {
        Some(path) => UsersFile::load(path)?,
        None => UsersFile::built_in(&inventory, prefix),
    };
    let users = users_file.install(&mut inventory, &mut rng)?;
    let pki = Arc::new(Pki::generate()?);
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let acceptor = if options.self_signed {
        Some(TlsAcceptor::from(pki.server_config(addr.ip())?))
    } else {
        None
    };
    // Tokens must not be guessable from the seed: mix in the clock.
    let token_seed = rng.next_u64()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    let sim = Arc::new(Sim {
        inventory: RwLock::new(inventory),
        users,
        sso: sso::Tokens::new(options.token_ttl),
        stats: Stats::default(),
        faults: Mutex::new(faults::Faults::default()),
        rng: Mutex::new(Rng::new(token_seed)),
        pki: pki.clone(),
        options,
    });
    let (shutdown, shutdown_rx) = watch::channel(false);
    let tls = acceptor.is_some();
    let server = tokio::spawn(serve(listener, acceptor, sim, shutdown_rx));
    Ok(RunningSim {
        addr,
        tls,
        pki,
        shutdown,
        server,
    })
}

async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    sim: Arc<Sim>,
    mut shutdown: watch::Receiver<bool>,
) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            (stream, client) = crate::connection::accept(&listener) => {
                let _ = stream.set_nodelay(true);
                let (sim, builder, tls) = (sim.clone(), builder.clone(), tls.clone());
                connections.spawn(async move {
                    let secure = tls.is_some();
                    let service = service_fn(move |request| handle(sim.clone(), request, secure));
                    let result = match tls {
                        None => builder.serve_connection(TokioIo::new(stream), service).await,
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(stream) => builder.serve_connection(TokioIo::new(stream), service).await,
                            Err(error) => {
                                tracing::debug!(%client, %error, "sim: TLS handshake failed");
                                return;
                            }
                        },
                    };
                    if let Err(error) = result {
                        tracing::debug!(%client, %error, "sim: connection ended with an error");
                    }
                });
            }
        }
    }
    connections.shutdown().await;
}

/// The error a handler returns to make hyper drop the connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by the simulator's fault injection")]
struct ResetConnection;

/// The largest request body the simulator reads.
const MAX_BODY: usize = 16 << 20;

async fn handle(
    sim: Arc<Sim>,
    request: Request<Incoming>,
    tls: bool,
) -> Result<Response<GatewayBody>, ResetConnection> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let injected = if path.starts_with("/ovirt-engine/api") {
        let plan = sim
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .plan(&mut sim.rng());
        Some(plan)
    } else {
        None
    };
    if let Some(plan) = &injected {
        if let Some(delay) = plan.delay.or_else(|| sim.latency()) {
            tokio::time::sleep(delay).await;
        }
        if plan.reset_before_body {
            return Err(ResetConnection);
        }
        if let Some(status) = plan.error_status {
            return Ok(text(
                status,
                "text/html",
                "<html><head><title>Error</title></head><body>Error</body></html>",
            ));
        }
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain",
                "request body too large\n",
            ));
        }
    };
    let request = Request::from_parts(parts, body);
    let response = match (request.method(), path.as_str()) {
        (&Method::GET, "/sim/stats") => sim.stats_response(),
        (&Method::POST, "/sim/revoke-all") => {
            let revoked = sim.sso.revoke_all();
            sim.stats
                .revoked_tokens
                .fetch_add(revoked as u64, Ordering::Relaxed);
            json_response(StatusCode::OK, &serde_json::json!({ "revoked": revoked }))
        }
        (_, "/sim/faults") => faults::handle(&sim, &request),
        (_, "/ovirt-engine/services/health") => {
            text(StatusCode::OK, "text/html", "DB Up!Welcome to Health Status!")
        }
        (_, "/ovirt-engine/services/pki-resource") => sim.pki_resource(request.uri().query()),
        (_, "/ovirt-engine/services/sso-logout") => sso::logout(&sim, &request),
        (_, "/ovirt-engine/sso/oauth/token") => sso::token(&sim, &request),
        (_, "/ovirt-engine/sso/oauth/token-info") => sso::token_info(&sim, &request),
        _ if path == "/ovirt-engine/api"
            || path.starts_with("/ovirt-engine/api/")
            || path.starts_with("/ovirt-engine/api;") =>
        {
            sim.stats.api_requests.fetch_add(1, Ordering::Relaxed);
            api::handle(&sim, &request, tls)
        }
        _ => {
            let mut response = Response::new(GatewayBody::empty());
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    };
    let response = match injected {
        Some(plan) => {
            let token = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            plan.apply_to_body(plan.leak(response, token))
        }
        None => response,
    };
    Ok(if sim.options.gzip && path.starts_with("/ovirt-engine/api") {
        gzip_if_accepted(response, &request)
    } else {
        response
    })
}

impl Sim {
    fn latency(&self) -> Option<Duration> {
        let (low, high) = self.options.latency?;
        let span = high.saturating_sub(low).as_micros() as u64;
        Some(low + Duration::from_micros(self.rng().below(span + 1)))
    }

    fn stats_response(&self) -> Response<GatewayBody> {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        json_response(
            StatusCode::OK,
            &serde_json::json!({
                "sso_logins": load(&self.stats.sso_logins),
                "basic_logins": load(&self.stats.basic_logins),
                "failed_logins": load(&self.stats.failed_logins),
                "api_requests": load(&self.stats.api_requests),
                "active_tokens": self.sso.active_tokens(),
                "active_sessions": self.sso.active_sessions(),
                "revoked_tokens": load(&self.stats.revoked_tokens),
            }),
        )
    }

    /// `?resource=ca-certificate&format=X509-PEM-CA`, the form scripts and the docs use.
    fn pki_resource(&self, query: Option<&str>) -> Response<GatewayBody> {
        let params = query_params(query);
        let wants = |key: &str, value: &str| params.iter().any(|(k, v)| k == key && v == value);
        if wants("resource", "ca-certificate") && wants("format", "X509-PEM-CA") {
            text(StatusCode::OK, "application/x-x509-ca-cert", &self.pki.ca_pem)
        } else {
            text(
                StatusCode::NOT_FOUND,
                "text/plain",
                "unsupported resource or format\n",
            )
        }
    }
}

/// Compresses an API body with gzip when the client accepts it, as the engine's Apache front end
/// (mod_deflate) does.
fn gzip_if_accepted(response: Response<GatewayBody>, request: &Request<Bytes>) -> Response<GatewayBody> {
    let compressible = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/xml") || ct.starts_with("application/json"));
    if compressible && crate::compression::accepts_gzip(request.headers()) {
        crate::compression::gzip(response, 6)
    } else {
        response
    }
}

/// Query parameters, decoded as a form (`+` is a space), in order.
fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    crate::wire::sso::form_pairs(query.unwrap_or("").as_bytes())
}

fn text(status: StatusCode, content_type: &'static str, body: &str) -> Response<GatewayBody> {
    bytes_response(status, content_type, Bytes::copy_from_slice(body.as_bytes()))
}

fn bytes_response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<GatewayBody> {
    let length = body.len();
    let mut response = Response::new(GatewayBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}
