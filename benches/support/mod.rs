//! Shared by the benchmarks: `wrk` runs (a separate process, so load generation does not share
//! the async runtime with the server under test) and a fixed-body upstream, the fastest server
//! possible, used as the baseline.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;

use bytes::Bytes;
use http::Response;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ovirt_gateway::body::GatewayBody;

pub const GIB: u64 = 1 << 30;
pub const CHUNK: usize = 256 * 1024;

/// `cargo bench --bench X -- [seconds] [connections]`, defaults 10 and 32 (cargo's own `--bench`
/// flag is skipped).
pub fn seconds_and_connections() -> (u32, u32) {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let seconds = args.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let connections = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(32);
    (seconds, connections)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub struct WrkResult {
    pub rps: f64,
    /// Bytes per second received, from wrk's Transfer/sec.
    pub bytes_per_second: f64,
    pub p50: String,
    pub p99: String,
}

/// Runs wrk against `http://{addr}{path}` with the given request headers.
pub fn wrk(addr: SocketAddr, path: &str, headers: &[&str], seconds: u32, connections: u32) -> WrkResult {
    let threads = connections.min(2);
    let mut command = Command::new("wrk");
    command.args([
        "--latency",
        "-t",
        &threads.to_string(),
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{seconds}s"),
    ]);
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("wrk is installed (apt-get install -y wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
            .unwrap_or_else(|| panic!("no `{prefix}` in wrk output:\n{text}"))
    };
    assert!(!text.contains("Non-2xx"), "errors during the run:\n{text}");
    WrkResult {
        rps: field("Requests/sec:").parse().unwrap(),
        bytes_per_second: parse_size(&field("Transfer/sec:")),
        p50: field("50%"),
        p99: field("99%"),
    }
}

/// `105.23MB` → bytes (wrk's units are powers of 1024).
fn parse_size(text: &str) -> f64 {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => 1.0,
    };
    number.parse::<f64>().unwrap() * scale
}

/// VmHWM: the peak resident set size of this process so far.
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// An HTTP server answering the same 1 KiB XML body to every request (plus /download and
/// /upload for the streaming run).
pub async fn start_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Bytes::from(format!(
        "<vm href=\"/ovirt-engine/api/vms/123\" id=\"123\">{}</vm>\n",
        "x".repeat(970)
    ));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move { Ok::<_, Infallible>(answer(request, body).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// `/download`: 1 GiB of zeros, streamed; `/upload`: counts the body and answers the count;
/// anything else: the fixed small body.
async fn answer(request: http::Request<hyper::body::Incoming>, small: Bytes) -> Response<GatewayBody> {
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::Frame;
    match request.uri().path() {
        "/ovirt-engine/api/download" => {
            let chunk = Bytes::from(vec![0u8; CHUNK]);
            let frames =
                (0..GIB / CHUNK as u64).map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone())));
            Response::new(GatewayBody::new(StreamBody::new(futures_util::stream::iter(
                frames,
            ))))
        }
        "/ovirt-engine/api/upload" => {
            let mut body = request.into_body();
            let mut counted = 0u64;
            while let Some(frame) = body.frame().await {
                counted += frame.unwrap().data_ref().map_or(0, |d| d.len() as u64);
            }
            Response::new(GatewayBody::full(counted.to_string()))
        }
        _ => {
            let mut response = Response::new(GatewayBody::full(small));
            response
                .headers_mut()
                .insert("content-type", "application/xml".parse().unwrap());
            response
        }
    }
}
