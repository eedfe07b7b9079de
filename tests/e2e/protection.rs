//! Every wait toward a client is bounded (docs/security.md, "Connection budgets" and "Slow
//! clients"): a request body that stalls gets a 408 and its connection closed, an answer the
//! client stops reading is cut, and connections that never authenticate cannot take every slot.

use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::*;

/// A gateway in front of `upstream` with `listen_extra` in `[listen]` and a gate of 4 places.
async fn gated(upstream: &TestUpstream, listen_extra: &[&str]) -> ovirt_gateway::Running {
    listen_extra
        .iter()
        .fold(GatewayConfig::new(), |config, line| config.listen(line))
        .manager("engine", &upstream.url())
        .section("[rate_limit.manager]\ninflight = 4")
        .start()
        .await
}

/// Reads what the gateway sends until it closes the connection (at most 10 s).
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("the gateway closed the connection")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

/// A connection to the gateway from the loopback address `from`.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

const INFLIGHT: &str = "gateway_manager_inflight{manager=\"engine\"}";

/// A declared body that never comes, at the SSO endpoint and toward a Manager: a 408 fault and
/// the connection closed, the Manager's place given back; counted as the client's.
#[tokio::test]
async fn stalled_request_bodies_get_408_and_close() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = gated(&upstream, &["body_timeout = \"300ms\""]).await;
    let addr = gateway.public_addr();
    let mut sso = TcpStream::connect(addr).await.unwrap();
    sso.write_all(
        b"POST /ovirt-engine/sso/oauth/token HTTP/1.1\r\nHost: gw\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\ngrant_type=pass",
    )
    .await
    .unwrap();
    let answer = until_closed(&mut sso).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        raw_body(&answer).contains("stopped waiting for the request body"),
        "{answer}"
    );
    // Streamed toward the Manager (a token passed through: nothing is kept to resend).
    let mut api = TcpStream::connect(addr).await.unwrap();
    api.write_all(
        b"POST /ovirt-engine/api/vms HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer t\r\n\
          Content-Type: application/xml\r\nContent-Length: 5000\r\n\r\n<vm><name>",
    )
    .await
    .unwrap();
    let answer = until_closed(&mut api).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(element(raw_body(&answer), "reason"), "Request timeout");
    eventually(Duration::from_secs(10), async || {
        counter(&metrics(&gateway).await, INFLIGHT) == 0
    })
    .await;
    let metrics = metrics(&gateway).await;
    assert_eq!(
        counter(&metrics, "gateway_client_timeouts_total{phase=\"body\"}"),
        2
    );
    assert_eq!(
        counter(
            &metrics,
            "gateway_upstream_errors_total{kind=\"protocol\",manager=\"engine\"}"
        ),
        0
    );
}

/// A body that keeps coming, however slowly, above the minimum rate, is not cut; one below it
/// is, even while it never pauses for the whole body timeout.
#[tokio::test]
async fn trickling_bodies_are_held_to_the_minimum_rate() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = gated(&upstream, &["body_timeout = \"1s\"", "min_body_rate = 1000"]).await;
    let mut stream = TcpStream::connect(gateway.public_addr()).await.unwrap();
    stream
        .write_all(
            b"POST /ovirt-engine/api/vms HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer t\r\n\
              Content-Length: 100000\r\n\r\n",
        )
        .await
        .unwrap();
    // Ten bytes every 200 ms, never a pause of a second: far below 1000 bytes per second.
    let started = tokio::time::Instant::now();
    let (mut reading, mut writing) = stream.into_split();
    let writer = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(200));
        loop {
            ticks.tick().await;
            if writing.write_all(b"0123456789").await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), reading.read_to_end(&mut answer))
        .await
        .expect("the trickle was cut")
        .ok();
    writer.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        raw_body(&answer).contains("slower than 1000 bytes per second"),
        "{answer}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
}

/// An answer the client stops reading is cut after the send timeout, and the Manager's place it
/// held is given back.
#[tokio::test]
async fn unread_answers_are_cut() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = gated(&upstream, &["send_timeout = \"300ms\""]).await;
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(gateway.public_addr()).await.unwrap();
        stream
            .write_all(
                b"GET /ovirt-engine/api/download/1000000000 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer t\r\n\r\n",
            )
            .await
            .unwrap();
        readers.push(stream);
    }
    eventually(Duration::from_secs(20), async || {
        let metrics = metrics(&gateway).await;
        counter(&metrics, "gateway_client_timeouts_total{phase=\"send\"}") == 3
            && counter(&metrics, INFLIGHT) == 0
    })
    .await;
    // The gate is free for a client that reads.
    let reply = Call::to(&gateway, "/ovirt-engine/api/vms").secrets().send().await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// Connections that have not authenticated have a budget per address and in all; with the
/// total reached, a new connection takes the place of the oldest, and one that authenticates
/// leaves the budget.
#[tokio::test]
async fn anonymous_connections_have_their_own_budget() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = gated(
        &upstream,
        &[
            "max_anonymous_connections = 3",
            "max_anonymous_connections_per_address = 2",
        ],
    )
    .await;
    let addr = gateway.public_addr();
    let anonymous = async || counter(&metrics(&gateway).await, "gateway_anonymous_connections");
    let mut first = connect_from([127, 0, 0, 1], addr).await;
    let _second = connect_from([127, 0, 0, 1], addr).await;
    eventually(Duration::from_secs(10), async || anonymous().await == 2).await;
    // A third from the same address is closed at once.
    let mut third = connect_from([127, 0, 0, 1], addr).await;
    assert_eq!(until_closed(&mut third).await, "");
    let _other = connect_from([127, 0, 0, 2], addr).await;
    eventually(Duration::from_secs(10), async || anonymous().await == 3).await;
    // The total is reached: a newcomer gets in, and the oldest is closed for it.
    let mut newcomer = connect_from([127, 0, 0, 3], addr).await;
    assert_eq!(until_closed(&mut first).await, "");
    newcomer
        .write_all(b"GET /ovirt-engine/api/vms HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer t\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0; 12];
    newcomer.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // It authenticated (a token the Manager accepts): it left the budget.
    eventually(Duration::from_secs(10), async || anonymous().await == 2).await;
    let metrics_text = metrics(&gateway).await;
    assert_eq!(
        counter(
            &metrics_text,
            "gateway_connections_refused_total{reason=\"anonymous_per_address\"}"
        ),
        1
    );
    assert_eq!(
        counter(
            &metrics_text,
            "gateway_connections_refused_total{reason=\"anonymous_evicted\"}"
        ),
        1
    );
}

/// A malformed chunked body is the client's fault: a 400, not counted against the Manager.
#[tokio::test]
async fn malformed_request_bodies_are_the_clients_fault() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = gated(&upstream, &[]).await;
    let mut stream = TcpStream::connect(gateway.public_addr()).await.unwrap();
    stream
        .write_all(
            b"POST /ovirt-engine/api/vms HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer t\r\n\
              Transfer-Encoding: chunked\r\n\r\n4\r\n<vm>\r\nzz\r\n",
        )
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        raw_body(&answer).contains("The request body could not be read"),
        "{answer}"
    );
    let metrics = metrics(&gateway).await;
    assert!(!metrics.contains("gateway_upstream_errors_total{"), "{metrics}");
}

/// A compressed answer that inflates a thousand times, under a rewritten prefix, is refused
/// with a 502 fault before any of it is sent; a plain one of the same size passes.
#[tokio::test]
async fn decompression_bombs_are_refused() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager_with("east", &upstream.url(), "prefix = \"/east\"")
        .start()
        .await;
    let get = |path: &str| Call::to(&gateway, path).secrets().send();
    let refused = get("/east/ovirt-engine/api/gzip-zeros/67108864").await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY);
    assert_eq!(refused.reason(), "Manager answer refused");
    assert!(refused.text().contains("inflates more than 200 times"));
    let plain = get("/east/ovirt-engine/api/download/67108864").await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(plain.body.len(), 67108864);
}

/// Wrong passwords for one user from ever new addresses reach the Manager (and its directory)
/// fewer times than the directory's own lockout threshold; the user, from an address they
/// logged in from before, still logs in.
#[tokio::test]
async fn guesses_from_many_addresses_never_lock_the_directory() {
    let sim = simulator().await;
    let gateway = GatewayConfig::new()
        .manager("sim", &sim.api_url())
        .passthrough(false)
        .section("[rate_limit.logins]\ndirectory_threshold = 5")
        .start()
        .await;
    let addr = gateway.public_addr();
    let login = |from: [u8; 4], password: String| async move {
        let credentials = credentials("alice@internal", &password);
        let mut stream = connect_from(from, addr).await;
        stream
            .write_all(
                format!(
                    "GET /ovirt-engine/api HTTP/1.1\r\nHost: gw\r\nAuthorization: {credentials}\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let answer = until_closed(&mut stream).await;
        answer[9..12].parse::<u16>().unwrap()
    };
    assert_eq!(login([127, 0, 0, 1], "alice".into()).await, 200);
    let before = sim_stats(&sim).await["failed_logins"].as_u64().unwrap();
    let mut statuses = Vec::new();
    for last in 10..20 {
        // A new guess each time: a repeated one is refused from the gateway's memory.
        statuses.push(login([127, 0, 5, last], format!("guess{last}")).await);
    }
    // Three guesses reach the directory (401), the others are refused before it (429).
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 3, "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(
        sim_stats(&sim).await["failed_logins"].as_u64().unwrap() - before,
        3
    );
    // From her own address, alice still logs in (her session was kept; a new login too).
    assert_eq!(login([127, 0, 0, 1], "alice".into()).await, 200);
}
