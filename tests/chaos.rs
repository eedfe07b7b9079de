//! Chaos, bounded (docs/security.md, "Every wait toward a client is bounded"): well-behaved
//! clients run while, at once, clients send bodies that never come, stop reading their answers,
//! flood the listener from many addresses, and one user saturates the Manager's gate; the
//! Manager slows down, fails, resets connections and restarts. Every well-behaved request gets
//! an answer (a success or a fault, never a hang), the gateway's memory stays flat, every place
//! and connection is given back, and the gateway counted exactly the answers its clients got.
//!
//! Its own test binary, so that the memory read is this test's alone. `CHAOS_SECONDS` sets how
//! long the chaos lasts (default 8); benches/soak.sh runs it for an hour.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ovirt_gateway::GatewayBody;
use ovirt_gateway::sim::{RunningSim, SimOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

// This binary's own few helpers: the e2e suite's support is made for that suite, and all of it
// would be compiled (and mostly unused) here.

fn client() -> Client<HttpConnector, GatewayBody> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// Basic credentials of a simulator user, whose password is its name.
fn basic(user: &str) -> String {
    use base64::Engine;
    let name = user.split('@').next().unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{name}"));
    format!("Basic {encoded}")
}

/// The gateway's metrics, from its admin listener.
async fn metrics(gateway: &ovirt_gateway::Running) -> String {
    let request = http::Request::get(format!("http://{}/metrics", gateway.admin_addr().unwrap()))
        .body(GatewayBody::empty())
        .unwrap();
    let body = client().request(request).await.unwrap().into_body();
    String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

/// The value of one series (`name{labels}`) in a metrics text, 0 when absent.
fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series))
        .map_or(0, |value| value.trim().parse().unwrap())
}

/// Polls `condition` until it holds, yielding between tries; panics after `limit`.
async fn eventually(limit: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(Instant::now() < deadline, "condition not met within {limit:?}");
        tokio::task::yield_now().await;
    }
}

/// Answer heads the clients got: what the gateway must have counted.
static HEADS: AtomicU64 = AtomicU64::new(0);

async fn start_sim(listen: SocketAddr) -> RunningSim {
    ovirt_gateway::sim::start(SimOptions {
        listen,
        sizes: ovirt_gateway::sim::Sizes {
            vms: 3000,
            ..Default::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap()
}

fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .map(|kib| kib.trim().parse::<u64>().unwrap() * 1024)
        .unwrap()
}

/// A raw request on its own connection from `from`; counts a head if one came back.
async fn raw(from: [u8; 4], to: SocketAddr, head: &[u8], read: bool) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut stream = socket.connect(to).await.ok()?;
    stream.write_all(head).await.ok()?;
    if !read {
        return Some(stream);
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    if answer.starts_with(b"HTTP/1.1 ") {
        HEADS.fetch_add(1, Ordering::SeqCst);
    }
    None
}

/// What a GET got: its status, and whether the answer explained itself (a success, or a body).
struct Answered {
    status: u16,
    explained: bool,
}

/// A GET as `user`, bounded.
async fn get_as(addr: SocketAddr, user: &str, path: &str) -> Result<Answered, String> {
    let request = http::Request::get(format!("http://{addr}/ovirt-engine/api{path}"))
        .header("authorization", basic(user))
        .body(GatewayBody::empty())
        .unwrap();
    let exchange = async {
        let response = client().request(request).await.map_err(|e| e.to_string())?;
        HEADS.fetch_add(1, Ordering::SeqCst);
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?;
        let body = body.to_bytes();
        Ok(Answered {
            status,
            explained: status < 300 || !body.is_empty(),
        })
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| format!("GET {path} as {user} hung"))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_behaved_clients_survive_chaos() {
    let seconds: u64 = std::env::var("CHAOS_SECONDS").map_or(8, |s| s.parse().unwrap());
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let mut sim = Some(start_sim(listen).await);
    let api = sim.as_ref().unwrap().api_url();
    let origin = api.trim_end_matches("/ovirt-engine/api").to_owned();
    // Started without the suite's log capture, which keeps every line in memory: logs go
    // nowhere here, so that the memory read is the gateway's.
    let text = format!(
        "[listen]\naddress = \"127.0.0.1:0\"\nplain_http = true\n\
         body_timeout = \"1s\"\nmin_body_rate = 1000\nsend_timeout = \"1s\"\n\
         max_connections = 512\nmax_anonymous_connections = 128\n\
         max_anonymous_connections_per_address = 64\n\n\
         [admin]\naddress = \"127.0.0.1:0\"\n\n\
         [rate_limit.manager]\ninflight = 16\nper_user_inflight = 4\nlogin_inflight = 2\nwait = \"3s\"\n\n\
         [[manager]]\nname = \"sim\"\nurl = \"{api}\"\n\
         response_timeout = \"5s\"\nbody_idle_timeout = \"2s\"\nhealth_interval = \"1s\"\n"
    );
    let config = ovirt_gateway::Config::from_toml(&text, std::path::Path::new(".")).unwrap();
    let gateway = ovirt_gateway::Gateway::start(config).await.unwrap();
    let addr = gateway.public_addr();
    // Everyone logged in once; the memory read after the warm-up.
    for user in [
        "admin@internal",
        "alice@internal",
        "bob@internal",
        "carol@internal",
    ] {
        assert_eq!(get_as(addr, user, "/vms?max=1").await.unwrap().status, 200);
    }
    let before = resident();
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut actors = tokio::task::JoinSet::new();

    // Well-behaved clients: sequential reads, every answer checked.
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let successes = Arc::new(AtomicU64::new(0));
    for user in ["admin@internal", "alice@internal", "carol@internal"] {
        let (failures, successes) = (failures.clone(), successes.clone());
        actors.spawn(async move {
            while Instant::now() < until {
                for path in ["/vms?max=5", "/clusters", "/hosts"] {
                    match get_as(addr, user, path).await {
                        Ok(answer) if answer.status < 300 => {
                            successes.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Answered { explained: true, .. }) => {}
                        Ok(Answered { status, .. }) => {
                            failures.lock().unwrap().push(format!("{status} without a body"))
                        }
                        Err(error) => failures.lock().unwrap().push(error),
                    }
                }
            }
        });
    }
    // bob saturates the gate: 40 at once, again and again.
    actors.spawn(async move {
        while Instant::now() < until {
            let burst: Vec<_> = (0..40)
                .map(|_| tokio::spawn(get_as(addr, "bob@internal", "/vms")))
                .collect();
            for request in burst {
                let _ = request.await;
            }
        }
    });
    // Bodies that never come.
    actors.spawn(async move {
        while Instant::now() < until {
            let slow: Vec<_> = (0..10)
                .map(|i| {
                    tokio::spawn(raw(
                        [127, 0, 1, i],
                        addr,
                        b"POST /ovirt-engine/api/vms HTTP/1.1\r\nHost: gw\r\nContent-Type: application/xml\r\n\
                          Authorization: Basic YWRtaW5AaW50ZXJuYWw6YWRtaW4=\r\nContent-Length: 10000\r\n\r\n<vm>",
                        true,
                    ))
                })
                .collect();
            for slow in slow {
                let _ = slow.await;
            }
        }
    });
    // Readers that stop reading a 6 MB listing.
    actors.spawn(async move {
        while Instant::now() < until {
            let mut held = Vec::new();
            for i in 0..5 {
                let head = b"GET /ovirt-engine/api/vms HTTP/1.1\r\nHost: gw\r\n\
                             Authorization: Basic YWxpY2VAaW50ZXJuYWw6YWxpY2U=\r\n\r\n";
                if let Some(mut stream) = raw([127, 0, 2, i], addr, head, false).await {
                    let mut first = [0; 12];
                    if stream.read_exact(&mut first).await.is_ok() && first.starts_with(b"HTTP/1.1 ") {
                        HEADS.fetch_add(1, Ordering::SeqCst);
                    }
                    held.push(stream);
                }
            }
            // Held unread past the send timeout, then dropped.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    // A flood of connections that say nothing, from twenty addresses.
    actors.spawn(async move {
        while Instant::now() < until {
            let mut held = Vec::new();
            for i in 0..400u32 {
                let from = [127, 0, 3, (i % 20) as u8];
                let socket = TcpSocket::new_v4().unwrap();
                socket.bind(SocketAddr::from((from, 0))).unwrap();
                if let Ok(stream) = socket.connect(addr).await {
                    held.push(stream);
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    // The Manager misbehaves, then restarts, then misbehaves again.
    let faults = |json: &'static str| {
        let origin = origin.clone();
        async move {
            let request = http::Request::post(format!("{origin}/sim/faults"))
                .body(GatewayBody::full(json))
                .unwrap();
            let _ = client().request(request).await;
        }
    };
    let third = Duration::from_secs(seconds) / 3;
    tokio::time::sleep(third).await;
    faults(r#"{"latency_ms": [5, 50], "error_rate": 0.05, "error_status": 503, "reset_rate": 0.05, "reset_phase": "before_body"}"#).await;
    tokio::time::sleep(third / 2).await;
    sim.take().unwrap().shutdown().await;
    sim = Some(start_sim(listen).await);
    tokio::time::sleep(third / 2).await;
    faults(r#"{"latency_ms": [5, 50], "error_rate": 0.05, "error_status": 500}"#).await;
    while actors.join_next().await.is_some() {}
    faults("{}").await;

    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "well-behaved requests failed: {failures:?}");
    assert!(successes.load(Ordering::SeqCst) > 0);
    // Everything given back: places, waiters, connections.
    eventually(Duration::from_secs(20), async || {
        let text = metrics(&gateway).await;
        [
            "gateway_manager_inflight{manager=\"sim\"}",
            "gateway_manager_queued{manager=\"sim\"}",
            "gateway_anonymous_connections",
        ]
        .iter()
        .all(|series| counter(&text, series) == 0)
    })
    .await;
    // Every answer a client got was counted once, and nothing else.
    let text = metrics(&gateway).await;
    let counted: u64 = text
        .lines()
        .filter(|line| line.starts_with("gateway_requests_total{"))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    // The metrics request itself went to the admin listener: not counted.
    let heads = HEADS.load(Ordering::SeqCst);
    assert_eq!(
        counted, heads,
        "the gateway counted {counted} answers, its clients got {heads}"
    );
    let grown = resident().saturating_sub(before);
    assert!(grown < 128 * 1024 * 1024, "resident memory grew by {grown} bytes");
    drop(sim);
}
