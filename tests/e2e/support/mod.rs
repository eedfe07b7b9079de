//! Test support: a small scriptable upstream that stands in for a Manager, simulators and
//! gateways started in-process on ephemeral ports (gateways configured by [`GatewayConfig`]), the
//! suite's client ([`Call`], [`Reply`]), XML bodies ([`Node`]), TLS material made at test time,
//! and a log capture.

mod client;
mod config;
mod store;
mod xml;

pub use client::*;
pub use config::*;
pub use store::*;
pub use xml::*;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ovirt_gateway::sim::{RunningSim, SimOptions};
use ovirt_gateway::{GatewayBody, Running};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// Secrets every request of the suite carries; the log scan looks for them.
pub const SECRET_BEARER: &str = "Bearer sUpErSeCrEtToKeN-0123456789";
pub const SECRET_COOKIE: &str = "JSESSIONID=cOoKiEsEcReT-9876543210";

/// What the test upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: BTreeMap<String, Vec<String>>,
    pub body_len: u64,
}

/// A stand-in Manager. Paths (after any prefix before /ovirt-engine):
/// - `/ovirt-engine/services/health`: 200, as the engine's health servlet
/// - `/ovirt-engine/api/download/N`: streams N bytes of `x` in 64 KiB chunks
/// - `/ovirt-engine/api/stall`: never answers
/// - `/ovirt-engine/api/hold`: answers once `release()` is called (arrivals are counted)
/// - `/ovirt-engine/api/trickle/N`: sends N bytes of `x`, then N more once `release()` is called
/// - `/ovirt-engine/api/no-store`: as anything else, with `Cache-Control: no-store`
/// - anything else: reads the whole body (counting, not keeping it) and answers with a JSON
///   description of the request
pub struct TestUpstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    release: Arc<Notify>,
    held: Arc<Notify>,
    holds: Arc<AtomicUsize>,
    _stop: watch::Sender<()>,
}

impl TestUpstream {
    pub async fn start(name: &str) -> TestUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(Notify::new());
        let held = Arc::new(Notify::new());
        let holds = Arc::new(AtomicUsize::new(0));
        let (stop, mut stopped) = watch::channel(());
        let shared = Upstream {
            name: name.to_owned(),
            seen: seen.clone(),
            release: release.clone(),
            held: held.clone(),
            holds: holds.clone(),
        };
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = stopped.changed() => return,
                    accepted = listener.accept() => accepted.unwrap(),
                };
                let shared = shared.clone();
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(shared.answer(request).await) }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    // Stopping the upstream drops its open connections too, as a crashed Manager would.
                    tokio::select! {
                        _ = builder.serve_connection(TokioIo::new(stream), service) => {}
                        _ = stopped.changed() => {}
                    }
                });
            }
        });
        TestUpstream {
            addr,
            seen,
            release,
            held,
            holds,
            _stop: stop,
        }
    }

    /// The API URL of this upstream, for a `[[manager]]` url.
    pub fn url(&self) -> String {
        format!("http://{}/ovirt-engine/api", self.addr)
    }

    /// Stops listening and closes every open connection, as a Manager that went down.
    pub fn stop(self) {}

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last_seen(&self) -> Seen {
        self.seen().pop().expect("the upstream saw a request")
    }

    /// Resolves once a request to `/hold` has arrived.
    pub async fn wait_held(&self) {
        self.held.notified().await;
    }

    /// Lets every waiting `/hold` request answer.
    pub fn release(&self) {
        self.release.notify_waiters();
    }

    /// How many requests to `/hold` arrived.
    pub fn holds(&self) -> usize {
        self.holds.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Upstream {
    name: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    release: Arc<Notify>,
    held: Arc<Notify>,
    holds: Arc<AtomicUsize>,
}

impl Upstream {
    async fn answer(&self, request: Request<Incoming>) -> Response<GatewayBody> {
        let (parts, mut body) = request.into_parts();
        let path = parts.uri.path().to_owned();
        let mut headers = BTreeMap::<String, Vec<String>>::new();
        for (name, value) in &parts.headers {
            headers
                .entry(name.to_string())
                .or_default()
                .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
        let engine_path = path.find("/ovirt-engine").map_or(path.as_str(), |i| &path[i..]);
        if engine_path == "/ovirt-engine/services/health" {
            return self.reply(StatusCode::OK, "text/html", "DB Up!Welcome to Health Status!");
        }
        if engine_path == "/ovirt-engine/api/stall" {
            std::future::pending::<()>().await;
        }
        if engine_path == "/ovirt-engine/api/hold" {
            let released = self.release.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            self.holds.fetch_add(1, Ordering::SeqCst);
            self.held.notify_one();
            released.await;
            return self.reply(StatusCode::OK, "text/plain", "released");
        }
        if let Some(size) = engine_path.strip_prefix("/ovirt-engine/api/trickle/") {
            let size: usize = size.parse().unwrap();
            let half = Bytes::from(vec![b'x'; size]);
            // Registered before the first half leaves, so a release() right after it is seen.
            let mut released = Box::pin(self.release.clone().notified_owned());
            released.as_mut().enable();
            let first = futures_util::stream::iter([Ok::<_, Infallible>(Frame::data(half.clone()))]);
            let second = futures_util::stream::once(async move {
                released.await;
                Ok::<_, Infallible>(Frame::data(half))
            });
            let frames = futures_util::StreamExt::chain(first, second);
            return Response::new(GatewayBody::new(StreamBody::new(frames)));
        }
        if let Some(size) = engine_path.strip_prefix("/ovirt-engine/api/gzip-zeros/") {
            use std::io::Write;
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            encoder.write_all(&vec![0; size.parse().unwrap()]).unwrap();
            let mut response = Response::new(GatewayBody::full(encoder.finish().unwrap()));
            let headers = response.headers_mut();
            headers.insert("content-type", "application/xml".parse().unwrap());
            headers.insert("content-encoding", "gzip".parse().unwrap());
            return response;
        }
        if let Some(size) = engine_path.strip_prefix("/ovirt-engine/api/download/") {
            let size: usize = size.parse().unwrap();
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let frames = (0..size.div_ceil(chunk.len())).map(move |i| {
                let len = chunk.len().min(size - i * chunk.len());
                Ok::<_, Infallible>(Frame::data(chunk.slice(..len)))
            });
            let mut response = Response::new(GatewayBody::new(StreamBody::new(futures_util::stream::iter(
                frames,
            ))));
            response
                .headers_mut()
                .insert("x-upstream", self.name.parse().unwrap());
            return response;
        }
        let mut body_len = 0u64;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => body_len += frame.data_ref().map_or(0, |d| d.len() as u64),
                Err(_) => break,
            }
        }
        let seen = Seen {
            method: parts.method.to_string(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map(ToString::to_string)
                .unwrap_or_default(),
            headers,
            body_len,
        };
        self.seen.lock().unwrap().push(seen.clone());
        let json = serde_json::json!({
            "method": seen.method,
            "path_and_query": seen.path_and_query,
            "body_len": seen.body_len,
        });
        let mut response = self.reply(StatusCode::OK, "application/json", &json.to_string());
        if engine_path == "/ovirt-engine/api/no-store" {
            response
                .headers_mut()
                .insert("cache-control", "no-store".parse().unwrap());
        }
        response
            .headers_mut()
            .insert("connection", "x-upstream-private".parse().unwrap());
        response
            .headers_mut()
            .insert("x-upstream-private", "hop".parse().unwrap());
        response
    }

    fn reply(&self, status: StatusCode, content_type: &str, body: &str) -> Response<GatewayBody> {
        let mut response = Response::new(GatewayBody::full(Bytes::from(body.to_owned())));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert("content-type", content_type.parse().unwrap());
        response
            .headers_mut()
            .insert("x-upstream", self.name.parse().unwrap());
        response
    }
}

/// The API URL of a port nothing listens on: a Manager that is down.
pub async fn down_manager_url() -> String {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("http://{}/ovirt-engine/api", closed.local_addr().unwrap())
}

/// Writes `raw` to a fresh connection and reads until the server closes it.
pub async fn raw_exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// The body of a raw HTTP/1.1 response (after the blank line).
pub fn raw_body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// Everything the suite logged, captured by one global subscriber at debug level.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

/// The access-log line of the request with this id.
pub fn access_log_line(request_id: &str) -> String {
    let needle = format!("request_id={request_id}");
    captured_logs()
        .lines()
        .find(|l| l.contains(&needle) && l.contains("access"))
        .expect("an access-log line")
        .to_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .fmt_fields(ovirt_gateway::escaped_fields())
            .with_writer(|| Capture)
            .init();
    });
}

/// A CA and a server certificate for 127.0.0.1/localhost, written as PEM files into a temp dir.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestPki {
    pub fn new() -> TestPki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ovirt-gateway test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let ca_pem = cert.pem();
        let ca = rcgen::Issuer::new(params, key);
        let pki = TestPki {
            dir: tempfile::tempdir().unwrap(),
            ca_pem,
            ca,
        };
        std::fs::write(pki.path("ca.pem"), &pki.ca_pem).unwrap();
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Issues a fresh server certificate with common name `cn` into cert.pem and key.pem.
    pub fn issue_server_cert(&self, cn: &str) {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        std::fs::write(self.path("cert.pem"), cert.pem()).unwrap();
        std::fs::write(self.path("key.pem"), key.serialize_pem()).unwrap();
    }

    /// A root store holding only this CA.
    pub fn roots(&self) -> rustls::RootCertStore {
        roots_of(&self.ca_pem)
    }

    /// A client TLS configuration trusting only this CA (see [`client_config_trusting`]).
    pub fn client_config(&self) -> rustls::ClientConfig {
        client_config_trusting(&self.ca_pem)
    }
}

/// A root store holding only the CA in `ca_pem`.
pub fn roots_of(ca_pem: &str) -> rustls::RootCertStore {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    roots
}

/// A client TLS configuration trusting only the CA in `ca_pem`, without session resumption (so
/// every handshake shows the certificate in use) and without ALPN (the caller sets it).
pub fn client_config_trusting(ca_pem: &str) -> rustls::ClientConfig {
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots_of(ca_pem))
            .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config
}

/// Polls `condition` until it holds, yielding between tries; panics after `limit`.
pub async fn eventually(limit: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::task::yield_now().await;
    }
}

/// A password grant at a gateway's SSO endpoint, as the SDK sends it.
pub async fn gateway_login(gateway: &Running, user: &str, password: &str) -> Reply {
    let form = format!(
        "grant_type=password&scope=ovirt-app-api&username={}&password={password}",
        encode(user)
    );
    Call::to(gateway, "/ovirt-engine/sso/oauth/token")
        .form(&form)
        .accept_json()
        .send()
        .await
}

/// A token of `user` at the simulator, by its SSO endpoint.
pub async fn sim_token(sim: &RunningSim, user: &str) -> String {
    let password = user.split('@').next().unwrap();
    let form = format!(
        "grant_type=password&scope=ovirt-app-api&username={}&password={password}",
        encode(user)
    );
    let reply = raw(sim, "/ovirt-engine/sso/oauth/token")
        .accept_json()
        .form(&form)
        .send()
        .await;
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// The simulator's counters (`/sim/stats`).
pub async fn sim_stats(sim: &RunningSim) -> serde_json::Value {
    raw(sim, "/sim/stats").send().await.json()
}

/// A simulator on an ephemeral port with its defaults (4 clusters, 8 hosts, 50 VMs, the
/// built-in users).
pub async fn simulator() -> RunningSim {
    simulator_with(|_| {}).await
}

/// A simulator with options changed: `simulator_with(|o| o.gzip = true)`.
pub async fn simulator_with(change: impl FnOnce(&mut SimOptions)) -> RunningSim {
    try_simulator_with(change)
        .await
        .unwrap_or_else(|e| panic!("simulator: {e}"))
}

/// A simulator with options changed, or why it did not start.
pub async fn try_simulator_with(change: impl FnOnce(&mut SimOptions)) -> Result<RunningSim, String> {
    let mut options = SimOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..SimOptions::default()
    };
    change(&mut options);
    ovirt_gateway::sim::start(options).await
}

/// A users file for the simulator holding `toml`, in a directory of its own.
pub struct UsersFile {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl UsersFile {
    pub fn new(toml: &str) -> UsersFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(&path, toml).unwrap();
        UsersFile { path, _dir: dir }
    }
}

/// The gateway's metrics, from its admin listener.
pub async fn metrics(gateway: &Running) -> String {
    let reply = Call::to(gateway.admin_addr().unwrap(), "/metrics").send().await;
    reply.text().to_owned()
}

#[track_caller]
pub fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} not in {text}");
}

/// Form-encodes a value as the SDK's urlencode does (space as `+`).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of one series (`name{labels}`) in a metrics text, 0 when absent.
pub fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series))
        .map_or(0, |value| value.trim().parse().unwrap())
}

/// The shipped policies (policies/) in a directory of their own.
pub fn shipped_policies() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}
