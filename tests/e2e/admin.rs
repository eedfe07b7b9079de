//! The admin listener: metrics, liveness and readiness.

use std::time::Duration;

use crate::support::*;

/// /metrics exposes the request, duration and connection metrics after traffic.
#[tokio::test]
async fn metrics_after_traffic() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = gateway_for(&upstream, "").await;
    get(gateway.public_addr(), "/ovirt-engine/api/vms").await;
    get(gateway.public_addr(), "/nowhere").await;
    let admin = gateway.admin_addr().unwrap();
    let (status, headers, body) = get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
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
    let gateway = start_gateway(&config_text("", &manager("down", &url, ""))).await;
    get(gateway.public_addr(), "/ovirt-engine/api/vms").await;
    let (_, _, body) = get(gateway.admin_addr().unwrap(), "/metrics").await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.contains("gateway_upstream_errors_total{kind=\"connect\",manager=\"down\"}"),
        "{text}"
    );
}

/// /healthz answers while the process runs; /readyz turns ready once the Manager's health
/// check passed, and names an unready Manager with 503.
#[tokio::test]
async fn health_and_readiness() {
    let upstream = TestUpstream::start("engine").await;
    let down_url = down_manager_url().await;

    let ready = gateway_for(&upstream, "").await;
    let admin = ready.admin_addr().unwrap();
    assert_eq!(get(admin, "/healthz").await.0, 200);
    eventually(Duration::from_secs(10), async || {
        get(admin, "/readyz").await.0 == 200
    })
    .await;

    let unready = start_gateway(&config_text(
        "",
        &format!(
            "{}{}",
            manager("up", &upstream.url(), "prefix = \"/up\""),
            manager("down", &down_url, "prefix = \"/down\"")
        ),
    ))
    .await;
    let admin = unready.admin_addr().unwrap();
    let (status, _, body) = get(admin, "/readyz").await;
    assert_eq!(status, 503);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["ready"], false);
    assert!(json["unready_managers"].get("down").is_some(), "{json}");
    assert_eq!(get(admin, "/other").await.0, 404);
}

/// The admin listener holds at most `max_connections`, and a connection that never finishes
/// its head is closed after `header_read_timeout`: partial heads cannot lock scrapers out.
#[tokio::test]
async fn admin_connections_are_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = TestUpstream::start("engine").await;
    let text = config_text("", &manager("engine", &upstream.url(), "")).replace(
        "[admin]\naddress = \"127.0.0.1:0\"\n",
        "[admin]\naddress = \"127.0.0.1:0\"\nmax_connections = 2\nheader_read_timeout = \"300ms\"\n",
    );
    let gateway = start_gateway(&text).await;
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
    let (status, _, _) = tokio::time::timeout(Duration::from_secs(10), get(admin, "/healthz"))
        .await
        .expect("the scraper was answered");
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
    for mut stream in partial {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
            .await
            .expect("the partial head was closed")
            .ok();
    }
}
