//! Proxy overhead: requests/s and latency for a small GET, straight to an upstream and through
//! the gateway, measured in the same run by `wrk` (a separate process).
//!
//!     apt-get install -y wrk
//!     cargo bench --bench proxy -- [seconds] [connections]
//!
//! The upstream answers every request with the same 1 KiB XML body, so the difference between
//! the two runs is the gateway's cost. Then 1 GiB is downloaded and 1 GiB uploaded through the
//! gateway, and the process's peak resident memory (upstream, gateway and client together) is
//! printed before and after: streaming means it must not grow with the body size.
//! Results go into docs/performance.md by hand.

mod support;
#[path = "support/upstream.rs"]
mod upstream;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use hyper_util::rt::TokioExecutor;
use ovirt_gateway::GatewayBody;
use ovirt_gateway::{Config, Gateway};
use support::{runtime, seconds_and_connections, wrk};
use upstream::{CHUNK, GIB, peak_rss_kib, start_upstream};

const BEARER: &str = "Authorization: Bearer bench-token";

fn main() {
    let (seconds, connections) = seconds_and_connections();
    let runtime = runtime();
    let (upstream, gateway) = runtime.block_on(async {
        let upstream = start_upstream().await;
        let text = format!(
            "[listen]\naddress = \"127.0.0.1:0\"\nplain_http = true\nmax_body_bytes = 2147483648\n\n[rate_limit]\nenabled = false\n\n[auth]\nbearer_passthrough = true\n\n[[manager]]\nname = \"bench\"\nurl = \"http://{upstream}/ovirt-engine/api\"\n"
        );
        let gateway = Gateway::start(Config::from_toml(&text, Path::new(".")).unwrap()).await.unwrap();
        (upstream, gateway)
    });
    let path = "/ovirt-engine/api/vms/123";
    println!(
        "small GET ({path}, 1 KiB body), {connections} connections, {seconds} s each, wrk with 2 threads"
    );
    // A token the fixed upstream ignores, passed through: this measures the proxy itself
    // (benches/auth.rs measures authentication).
    let direct = wrk(upstream, path, &[BEARER], seconds, connections);
    let proxied = wrk(gateway.public_addr(), path, &[BEARER], seconds, connections);
    println!(
        "{:<10} {:>12} {:>10} {:>10} {:>8}",
        "target", "requests/s", "p50", "p99", "MB/s"
    );
    for (name, result) in [("direct", &direct), ("gateway", &proxied)] {
        println!(
            "{name:<10} {:>12.0} {:>10} {:>10} {:>8.1}",
            result.rps,
            result.p50,
            result.p99,
            result.bytes_per_second / 1e6
        );
    }
    println!("gateway/direct throughput: {:.2}", proxied.rps / direct.rps);

    let before = peak_rss_kib();
    let moved = runtime.block_on(stream_gib(gateway.public_addr()));
    println!(
        "peak RSS before 1 GiB download + 1 GiB upload: {} MiB, after: {} MiB ({} MiB moved)",
        before / 1024,
        peak_rss_kib() / 1024,
        moved >> 20
    );
    runtime.block_on(gateway.shutdown());
}

/// Downloads then uploads 1 GiB through the gateway; returns the bytes moved.
async fn stream_gib(gateway: SocketAddr) -> u64 {
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::Frame;
    let client: hyper_util::client::legacy::Client<_, GatewayBody> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let download = http::Request::get(format!("http://{gateway}/ovirt-engine/api/download"))
        .header("authorization", &BEARER["Authorization: ".len()..])
        .body(GatewayBody::empty())
        .unwrap();
    let mut body = client.request(download).await.unwrap().into_body();
    let mut moved = 0u64;
    while let Some(frame) = body.frame().await {
        moved += frame.unwrap().data_ref().map_or(0, |d| d.len() as u64);
    }
    assert_eq!(moved, GIB);
    let chunk = Bytes::from(vec![b'u'; CHUNK]);
    let frames = (0..GIB / CHUNK as u64).map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone())));
    let upload = http::Request::post(format!("http://{gateway}/ovirt-engine/api/upload"))
        .header("authorization", &BEARER["Authorization: ".len()..])
        .body(GatewayBody::new(StreamBody::new(futures_util::stream::iter(
            frames,
        ))))
        .unwrap();
    let response = client.request(upload).await.unwrap();
    assert_eq!(response.status(), 200);
    let counted: u64 = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(counted, GIB);
    moved + counted
}
