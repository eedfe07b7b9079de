//! Connection and process lifecycle: graceful shutdown, slow and idle clients.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use ovirt_gateway::GatewayBody;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::support::*;

/// Shutdown lets a request in flight finish, then stops accepting.
#[tokio::test]
async fn graceful_shutdown_completes_in_flight_request() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("shutdown_grace = \"30s\"")
        .start()
        .await;
    let addr = gateway.public_addr();
    let in_flight = tokio::spawn(Call::to(addr, "/ovirt-engine/api/hold").secrets().send());
    upstream.wait_held().await;
    let stopping = tokio::spawn(gateway.shutdown());
    upstream.release();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"released");
    stopping.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

/// A request that outlives the grace period is cut off and shutdown still completes.
#[tokio::test]
async fn shutdown_grace_period_bounds_the_wait() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("shutdown_grace = \"200ms\"")
        .start()
        .await;
    let addr = gateway.public_addr();
    let in_flight = tokio::spawn(Call::to(addr, "/ovirt-engine/api/hold").secrets().exchange());
    upstream.wait_held().await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), gateway.shutdown())
        .await
        .expect("shutdown finished");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(
        in_flight.await.unwrap().is_err(),
        "the held request should have been cut off"
    );
}

/// A client that starts a request head and never finishes it is disconnected.
#[tokio::test]
async fn slow_header_client_is_cut_off() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("header_read_timeout = \"300ms\"")
        .start()
        .await;
    let mut stream = tokio::net::TcpStream::connect(gateway.public_addr())
        .await
        .unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /ovirt-engine/api HTTP/1.1\r\nHost: gw\r\nX-Slow:")
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .expect("the gateway closed the connection")
        .ok();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(upstream.seen().is_empty());
}

/// A kept-alive connection with nothing in flight is closed after the idle timeout.
#[tokio::test]
async fn idle_connection_is_closed() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("idle_timeout = \"300ms\"")
        .start()
        .await;
    let stream = tokio::net::TcpStream::connect(gateway.public_addr())
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get("/ovirt-engine/api")
        .header("host", "gw")
        .body(GatewayBody::empty())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    response.into_body().collect().await.unwrap();
    let idle_from = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), connection)
        .await
        .expect("the gateway closed the idle connection")
        .unwrap()
        .unwrap();
    assert!(idle_from.elapsed() >= Duration::from_millis(250));
}

/// A request waiting long on its Manager is not cut by the idle timeout.
#[tokio::test]
async fn idle_timeout_spares_requests_in_flight() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("idle_timeout = \"200ms\"")
        .start()
        .await;
    let addr = gateway.public_addr();
    let in_flight = tokio::spawn(Call::to(addr, "/ovirt-engine/api/hold").secrets().send());
    upstream.wait_held().await;
    // The subject of this test is time passing: several idle periods while the request is held.
    tokio::time::sleep(Duration::from_millis(700)).await;
    upstream.release();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"released");
}
