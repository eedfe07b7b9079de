//! The fixed-body upstream, the fastest server possible, used as the baseline by the proxy and
//! simulator benchmarks, and the process's peak memory.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::Response;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ovirt_gateway::GatewayBody;

pub const GIB: u64 = 1 << 30;
pub const CHUNK: usize = 256 * 1024;

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
