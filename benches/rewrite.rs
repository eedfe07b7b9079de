//! Rewriting speed (docs/rewriting.md): the XML and JSON href rewriters on a 10,000-VM listing from the
//! simulator, fed in 64 KiB chunks as the gateway receives them, against a plain copy of the same
//! chunks (the ceiling) in the same run.
//!
//!     cargo bench --bench rewrite
//!
//! Goal: 300 MB/s or more for each representation on one core. Results go into
//! docs/performance.md by hand.
//!
//! The `merge` group measures the merged view's joiner (docs/federation.md, "Listings") on the
//! same listings: one member's items passed on, counted and their ids read.
//!
//! The `guard` group measures the token guard (docs/security.md) on the XML listing: the
//! chunks streamed through a body as the gateway relays them, without and with the scan for an
//! upstream token. Goal: the scan costs under 5% of the throughput.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ovirt_gateway::JsonRewriter;
use ovirt_gateway::Rule;
use ovirt_gateway::XmlRewriter;
use ovirt_gateway::sim::{self, SimOptions, Sizes};
use ovirt_gateway::{Join, Representation};

const CHUNK: usize = 64 * 1024;

/// The simulator's 10,000-VM listing as admin sees it, in the representation `accept` names.
fn listings() -> (Vec<u8>, Vec<u8>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let running = sim::start(SimOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            sizes: Sizes {
                vms: 10_000,
                ..Sizes::default()
            },
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
        let fetch = async |accept: &str| {
            let request = http::Request::get(format!("http://{}/ovirt-engine/api/vms", running.addr()))
                .header("authorization", "Basic YWRtaW5AaW50ZXJuYWw6YWRtaW4=")
                .header("accept", accept)
                .body(Empty::new())
                .unwrap();
            let response = client.request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            response.into_body().collect().await.unwrap().to_bytes().to_vec()
        };
        (fetch("application/xml").await, fetch("application/json").await)
    })
}

fn rule() -> Rule {
    Rule {
        from: b"/ovirt-engine/api".to_vec(),
        to: b"/east/ovirt-engine/api".to_vec(),
    }
}

/// Each chunk becomes its own output buffer, as in the gateway's response body.
fn run(body: &[u8], mut feed: impl FnMut(&[u8], &mut Vec<u8>)) {
    for chunk in body.chunks(CHUNK) {
        let mut out = Vec::with_capacity(chunk.len() + 256);
        feed(chunk, &mut out);
        black_box(out);
    }
}

fn rewriting(c: &mut Criterion) {
    let (xml, json) = listings();
    assert!(xml.starts_with(b"<?xml") && json.starts_with(b"{"));
    let mut group = c.benchmark_group("xml");
    group.throughput(Throughput::Bytes(xml.len() as u64));
    group.bench_function("memcpy", |b| {
        b.iter(|| run(&xml, |chunk, out| out.extend_from_slice(chunk)))
    });
    group.bench_function("rewrite", |b| {
        b.iter(|| {
            let mut rewriter = XmlRewriter::new(rule());
            run(&xml, |chunk, out| rewriter.feed(chunk, out));
        })
    });
    group.finish();
    let mut group = c.benchmark_group("json");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("memcpy", |b| {
        b.iter(|| run(&json, |chunk, out| out.extend_from_slice(chunk)))
    });
    group.bench_function("rewrite", |b| {
        b.iter(|| {
            let mut rewriter = JsonRewriter::new(rule());
            run(&json, |chunk, out| rewriter.feed(chunk, out));
        })
    });
    group.finish();
    println!(
        "listing sizes: XML {} bytes, JSON {} bytes (10,000 VMs, {CHUNK}-byte chunks)",
        xml.len(),
        json.len()
    );
}

/// The listing's chunks through a response body, scanned for a token or not, drained.
async fn relay(chunks: &[bytes::Bytes], scanned: bool) {
    use ovirt_gateway::GatewayBody;
    use ovirt_gateway::{Alarm, TokenForms, guard_answer};
    let frames: Vec<_> = chunks
        .iter()
        .cloned()
        .map(|c| Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(c)))
        .collect();
    let body = GatewayBody::new(http_body_util::StreamBody::new(futures_util::stream::iter(
        frames,
    )));
    let response = http::Response::new(body);
    let mut body = if scanned {
        let alarm = Alarm {
            request_id: "bench".into(),
            manager: "sim".into(),
            counter: prometheus::IntCounterVec::new(prometheus::Opts::new("bench", "bench"), &["manager"])
                .unwrap(),
        };
        guard_answer(response, TokenForms::of(b"fqbR1ftzh8wBCviLxJcYuV5oSDI="), alarm).into_body()
    } else {
        response.into_body()
    };
    while let Some(frame) = body.frame().await {
        black_box(frame.unwrap());
    }
}

fn guarding(c: &mut Criterion) {
    let (xml, _) = listings();
    let chunks: Vec<bytes::Bytes> = xml.chunks(CHUNK).map(bytes::Bytes::copy_from_slice).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut group = c.benchmark_group("guard");
    group.throughput(Throughput::Bytes(xml.len() as u64));
    group.bench_function("relay", |b| b.iter(|| runtime.block_on(relay(&chunks, false))));
    group.bench_function("relay_scanned", |b| {
        b.iter(|| runtime.block_on(relay(&chunks, true)))
    });
    group.finish();
}

/// One member's listing through the joiner, chunk by chunk; the ids it reads are dropped.
fn join_one(body: &[u8], repr: Representation) {
    let mut join = Join::new(repr, None);
    let mut splitter = join.member();
    let mut ids = Vec::new();
    run(body, |chunk, out| {
        splitter.feed(&mut join, chunk, out, &mut ids).unwrap();
        ids.clear();
    });
    black_box(join.finish());
}

fn merging(c: &mut Criterion) {
    let (xml, json) = listings();
    let mut group = c.benchmark_group("merge");
    group.throughput(Throughput::Bytes(xml.len() as u64));
    group.bench_function("xml", |b| b.iter(|| join_one(&xml, Representation::Xml)));
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("json", |b| b.iter(|| join_one(&json, Representation::Json)));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = rewriting, merging, guarding
}
criterion_main!(benches);
