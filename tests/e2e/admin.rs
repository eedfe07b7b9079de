//! The admin listener: metrics, liveness and readiness.

use std::time::Duration;

use crate::support::*;

/// /metrics exposes the request, duration and connection metrics after traffic.
#[tokio::test]
async fn metrics_after_traffic() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .start()
        .await;
    Call::to(&gateway, "/ovirt-engine/api/vms").secrets().send().await;
    Call::to(&gateway, "/nowhere").secrets().send().await;
    let admin = gateway.admin_addr().unwrap();
    let reply = Call::to(admin, "/metrics").secrets().send().await;
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").starts_with("text/plain"));
    let text = reply.text();
    for expected in [
        "gateway_requests_total{manager=\"engine\",method=\"GET\",status_class=\"2xx\"} 1",
        "gateway_requests_total{manager=\"none\",method=\"GET\",status_class=\"4xx\"} 1",
        "gateway_request_duration_seconds_count{manager=\"engine\"} 1",
        "gateway_upstream_duration_seconds_count{manager=\"engine\"} 1",
        "gateway_open_connections",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
}

/// Upstream failures are counted by kind.
#[tokio::test]
async fn upstream_errors_are_counted() {
    let url = down_manager_url().await;
    let gateway = GatewayConfig::new().manager("down", &url).start().await;
    Call::to(&gateway, "/ovirt-engine/api/vms").secrets().send().await;
    let text = metrics(&gateway).await;
    assert!(
        text.contains("gateway_upstream_errors_total{kind=\"connect\",manager=\"down\"}"),
        "{text}"
    );
}

/// /healthz answers while the process runs; /readyz turns ready once the Manager's health
/// check passed, and reports each Manager's state: with one of two down, ready (`any`, the
/// default) and the other's problem named.
#[tokio::test]
async fn health_and_readiness() {
    let upstream = TestUpstream::start("engine").await;
    let down_url = down_manager_url().await;

    let ready = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .start()
        .await;
    let admin = ready.admin_addr().unwrap();
    let status = async |path: &str| Call::to(admin, path).send().await.status;
    assert_eq!(status("/healthz").await, 200);
    eventually(Duration::from_secs(10), async || status("/readyz").await == 200).await;

    let unready = GatewayConfig::new()
        .manager_with("up", &upstream.url(), "prefix = \"/up\"")
        .manager_with("down", &down_url, "prefix = \"/down\"")
        .start()
        .await;
    let admin = unready.admin_addr().unwrap();
    // Until their first health checks end, the Managers' states are not known yet.
    let readyz = async || Call::to(admin, "/readyz").send().await.json();
    eventually(Duration::from_secs(10), async || {
        let json = readyz().await;
        json["managers"]["up"]["up"] == true && json["managers"]["down"]["up"] == false
    })
    .await;
    assert_eq!(status("/readyz").await, 200);
    let json = readyz().await;
    assert_eq!(json["ready"], true);
    assert_eq!(json["managers"]["up"]["up"], true, "{json}");
    assert_eq!(json["managers"]["down"]["up"], false, "{json}");
    assert_eq!(json["managers"]["down"]["breaker"], "closed", "{json}");
    assert_eq!(Call::to(admin, "/other").send().await.status, 404);
}

/// The admin listener holds at most `max_connections`, and a connection that never finishes
/// its head is closed after `header_read_timeout`: partial heads cannot lock scrapers out.
#[tokio::test]
async fn admin_connections_are_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .admin("max_connections = 2")
        .admin("header_read_timeout = \"300ms\"")
        .start()
        .await;
    let admin = gateway.admin_addr().unwrap();
    let mut partial = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nX-Slow:")
            .await
            .unwrap();
        partial.push(stream);
    }
    // Both places are taken; a scraper is answered once the partial heads time out.
    let started = tokio::time::Instant::now();
    let scrape = Call::to(admin, "/healthz").secrets().send();
    let reply = tokio::time::timeout(Duration::from_secs(10), scrape)
        .await
        .expect("the scraper was answered");
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
    for mut stream in partial {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
            .await
            .expect("the partial head was closed")
            .ok();
    }
}
