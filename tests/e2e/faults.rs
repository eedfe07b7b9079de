//! Faults the gateway makes itself: status, oVirt fault body in the client's representation.

use std::time::Duration;

use crate::support::*;
use ovirt_gateway::GatewayBody;

/// Every ambiguous path form is refused with a 400 fault and never reaches the Manager.
#[tokio::test]
async fn ambiguous_paths_are_400_and_not_forwarded() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .start()
        .await;
    let paths = [
        "/ovirt-engine/api/../api/vms",
        "/ovirt-engine/api/./vms",
        "/ovirt-engine//api/vms",
        "/ovirt-engine/api/vms%2F1",
        "/ovirt-engine/api/%2e%2e/vms",
        "/ovirt-engine/api/vms%00",
        "/ovirt-engine/api/vms\\1",
        "/ovirt-engine/api/vms%zz",
        "/ovirt-engine/api/vm%73",
        "/ovirt-engine/api/%C0%AE%C0%AE/vms",
    ];
    for path in paths {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
        let response = raw_exchange(gateway.public_addr(), raw.as_bytes()).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{path}: {response}");
        // hyper itself refuses a backslash (not a valid URI character) with a bare 400; every
        // other form reaches the gateway and gets the fault body.
        if !path.contains('\\') {
            assert_eq!(
                element(raw_body(&response), "reason"),
                "Ambiguous request path",
                "{path}"
            );
        }
    }
    assert!(
        upstream.seen().is_empty(),
        "an ambiguous path reached the Manager: {:?}",
        upstream.seen()
    );
}

/// No Manager at this path: 404 fault.
#[tokio::test]
async fn no_route_is_404_fault() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .start()
        .await;
    let reply = Call::to(&gateway, "/elsewhere").secrets().send().await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.headers["content-type"], "application/xml");
    assert_eq!(
        reply.headers["content-length"],
        reply.body.len().to_string().as_str()
    );
    assert_eq!(reply.reason(), "Not found");
}

/// A request head over the limit: 431 fault; one at the limit passes.
#[tokio::test]
async fn oversized_head_is_431_fault() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("max_header_bytes = 2048")
        .start()
        .await;
    let addr = gateway.public_addr();
    let padded = |pad: usize| {
        let pad = "p".repeat(pad);
        format!(
            "GET /ovirt-engine/api HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nAuthorization: {SECRET_BEARER}\r\nx-pad: {pad}\r\n\r\n"
        )
    };
    // The gateway counts the line as method + URI + 12 and each header as name + value + 4.
    let fixed = "GET".len()
        + "/ovirt-engine/api".len()
        + 12
        + ("host".len() + 2 + 4)
        + ("connection".len() + 5 + 4)
        + ("authorization".len() + SECRET_BEARER.len() + 4)
        + ("x-pad".len() + 4);
    let at_limit = padded(2048 - fixed);
    let response = raw_exchange(addr, at_limit.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let over = padded(2049 - fixed);
    let response = raw_exchange(addr, over.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    assert_eq!(
        element(raw_body(&response), "reason"),
        "Request headers too large"
    );
}

/// hyper parses at most 100 header lines (docs/architecture.md, "Decisions worth knowing"):
/// 101 are refused with 431 before anything reaches the Manager. (90 pass: the test Manager,
/// also hyper, takes 100 too, and the gateway adds its forwarding headers.)
#[tokio::test]
async fn header_lines_are_bounded() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .start()
        .await;
    let addr = gateway.public_addr();
    let with_lines = |lines: usize| {
        let extra: String = (3..lines).map(|i| format!("x-h{i}: v\r\n")).collect();
        format!(
            "GET /ovirt-engine/api HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nAuthorization: {SECRET_BEARER}\r\n{extra}\r\n"
        )
    };
    let response = raw_exchange(addr, with_lines(90).as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let response = raw_exchange(addr, with_lines(101).as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    assert_eq!(upstream.seen().len(), 1);
}

/// A declared body over the limit: 413 fault before anything is forwarded; at the limit passes.
#[tokio::test]
async fn declared_oversized_body_is_413_fault() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("max_body_bytes = 1000")
        .start()
        .await;
    let addr = gateway.public_addr();
    let post = |size: usize| {
        Call::to(addr, "/ovirt-engine/api/vms")
            .secrets()
            .method("POST")
            .body(vec![1u8; size])
            .send()
    };
    assert_eq!(post(1000).await.status, 200);
    let refused = post(1001).await;
    assert_eq!(refused.status, 413);
    assert_eq!(refused.reason(), "Request body too large");
    assert_eq!(upstream.seen().len(), 1, "the oversized body reached the Manager");
}

/// A chunked body that grows past the limit while streaming: 413 fault.
#[tokio::test]
async fn streamed_oversized_body_is_413_fault() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("max_body_bytes = 100000")
        .start()
        .await;
    let chunks = (0..10).map(|_| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(bytes::Bytes::from(vec![b'c'; 20000])))
    });
    let body = GatewayBody::new(http_body_util::StreamBody::new(futures_util::stream::iter(
        chunks,
    )));
    let reply = Call::to(&gateway, "/ovirt-engine/api/vms")
        .secrets()
        .method("POST")
        .stream(body)
        .send()
        .await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.reason(), "Request body too large");
}

/// A Manager that goes down while it passed its health checks: 502 fault, as XML by default and
/// as JSON when asked for.
#[tokio::test]
async fn upstream_down_is_502_in_xml_and_json() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("down", &upstream.url())
        .start()
        .await;
    let admin = gateway.admin_addr().unwrap();
    eventually(Duration::from_secs(10), async || {
        Call::to(admin, "/readyz").send().await.status == 200
    })
    .await;
    upstream.stop();
    let addr = gateway.public_addr();
    let get = |path: &str| Call::to(addr, path).secrets();
    let reply = get("/ovirt-engine/api/vms").send().await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.headers["content-type"], "application/xml");
    let xml = reply.text();
    assert_eq!(element(xml, "reason"), "Manager unreachable");
    assert!(element(xml, "detail").contains("'down'"), "{xml}");

    let reply = get("/ovirt-engine/api/vms").accept_json().send().await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.json()["reason"], "Manager unreachable");

    let reply = get("/ovirt-engine/api/vms?accept=application/json").send().await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.headers["content-type"], "application/json");
}

/// A Manager that is failing its health checks and refuses the connection: 503 fault with
/// Retry-After (the health interval).
#[tokio::test]
async fn unready_upstream_is_503_with_retry_after() {
    let url = down_manager_url().await;
    let gateway = GatewayConfig::new()
        .manager_with("down", &url, "health_interval = \"7s\"")
        .start()
        .await;
    let admin = gateway.admin_addr().unwrap();
    eventually(Duration::from_secs(10), async || {
        let reply = Call::to(admin, "/readyz").send().await;
        reply.text().contains("health check failed")
    })
    .await;
    let reply = Call::to(&gateway, "/ovirt-engine/api/vms").secrets().send().await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.headers["retry-after"], "7");
    assert_eq!(reply.reason(), "Manager not ready");
}

/// A Manager that never answers: 504 fault after the response timeout.
#[tokio::test]
async fn stalled_upstream_is_504_fault() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager_with("slow", &upstream.url(), "response_timeout = \"300ms\"")
        .start()
        .await;
    let reply = Call::to(&gateway, "/ovirt-engine/api/stall")
        .secrets()
        .send()
        .await;
    assert_eq!(reply.status, 504);
    assert_eq!(reply.reason(), "Manager timeout");
}
