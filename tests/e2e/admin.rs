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

/// A self-signed certificate for localhost valid until the first of January of `year`, written
/// with its key into `dir` as cert.pem and key.pem.
fn certificate_until(dir: &std::path::Path, year: i32) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_after = rcgen::date_time_ymd(year, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// The build's version is exported as `gateway_build_info`; the listener certificate's expiry is
/// exported at start, follows a reload to the new certificate, stays when a reload is refused,
/// and is absent from a gateway without TLS.
#[tokio::test]
async fn build_info_and_certificate_expiry() {
    const EXPIRY: &str = "gateway_tls_certificate_expiry_timestamp_seconds";
    let upstream = TestUpstream::start("engine").await;
    let dir = tempfile::tempdir().unwrap();
    certificate_until(dir.path(), 2030);
    let gateway = GatewayConfig::new()
        .tls(&dir.path().join("cert.pem"), &dir.path().join("key.pem"))
        .manager("engine", &upstream.url())
        .start()
        .await;
    let text = metrics(&gateway).await;
    let build = format!(
        "gateway_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert_contains(&text, &build);
    assert_eq!(counter(&text, EXPIRY), 1_893_456_000, "2030-01-01");

    certificate_until(dir.path(), 2055);
    gateway.reload_tls().unwrap();
    assert_eq!(
        counter(&metrics(&gateway).await, EXPIRY),
        2_682_374_400,
        "2055-01-01"
    );

    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    assert!(gateway.reload_tls().is_err());
    assert_eq!(counter(&metrics(&gateway).await, EXPIRY), 2_682_374_400);

    let plain = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .start()
        .await;
    let text = metrics(&plain).await;
    assert_contains(&text, &build);
    assert!(!text.contains(EXPIRY), "{text}");
}

/// Answers that ask the client to come back later are counted by Manager and code: the
/// Manager's own 503, the gateway's 503 while the breaker it opened is open, and the address's
/// rate limit's 429 (before routing, so under no Manager); a 200 is not.
#[tokio::test]
async fn retry_later_answers_are_counted() {
    let sim = simulator().await;
    let gateway = GatewayConfig::new()
        .manager_with(
            "engine",
            &sim.api_url(),
            "breaker_failures = 1\nbreaker_open = \"1m\"",
        )
        .passthrough(false)
        .rate_limit("max_delay = \"0s\"")
        .section("[rate_limit.per_ip]\nrate = 1\nburst = 3\n")
        .start()
        .await;
    let vms = async || {
        Call::to(&gateway, "/ovirt-engine/api/vms")
            .basic("admin@internal", "admin")
            .header("cache-control", "no-cache")
            .send()
            .await
            .status
    };
    assert_eq!(vms().await, 200);
    let faults = serde_json::json!({"error_rate": 1.0, "error_status": 503});
    raw(&sim, "/sim/faults").post_json(&faults).send().await;
    assert_eq!(vms().await, 503, "the Manager's own");
    assert_eq!(vms().await, 503, "the breaker's");
    assert_eq!(vms().await, 429);
    let text = metrics(&gateway).await;
    let series = |manager: &str, code: &str| {
        format!("gateway_retry_later_responses_total{{code=\"{code}\",manager=\"{manager}\"}}")
    };
    assert_eq!(counter(&text, &series("engine", "503")), 2, "{text}");
    assert_eq!(counter(&text, &series("none", "429")), 1, "{text}");
    assert!(!text.contains("code=\"200\""), "{text}");
}
