//! Pass-through: methods, streamed bodies, headers and the query string reach the Manager as sent.

use crate::support::*;
use bytes::Bytes;
use http_body_util::BodyExt;
use ovirt_gateway::GatewayBody;

const EIGHT_MIB: usize = 8 * 1024 * 1024;

/// GET, POST, PUT and DELETE reach the Manager with their method, path and whole body.
#[tokio::test]
async fn methods_and_bodies_pass_through() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("max_body_bytes = 16777216")
        .start()
        .await;
    let addr = gateway.public_addr();
    for method in ["GET", "POST", "PUT", "DELETE"] {
        let body = if method == "GET" {
            Bytes::new()
        } else {
            Bytes::from(vec![b'v'; EIGHT_MIB])
        };
        let expected = body.len() as u64;
        let reply = Call::to(addr, "/ovirt-engine/api/vms/1")
            .secrets()
            .method(method)
            .body(body)
            .send()
            .await;
        assert_eq!(reply.status, 200, "{method}");
        assert_eq!(reply.headers["x-upstream"], "engine");
        let reply = reply.json();
        assert_eq!(reply["method"], method);
        assert_eq!(reply["path_and_query"], "/ovirt-engine/api/vms/1");
        assert_eq!(reply["body_len"], expected, "{method}");
    }
}

/// A large request body streams to the Manager in chunks (chunked upload of 8 MiB).
#[tokio::test]
async fn chunked_upload_streams() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("max_body_bytes = 16777216")
        .start()
        .await;
    let chunks = (0..128)
        .map(|_| Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(vec![b'c'; 65536]))));
    let body = GatewayBody::new(http_body_util::StreamBody::new(futures_util::stream::iter(
        chunks,
    )));
    let reply = Call::to(&gateway, "/ovirt-engine/api/vms")
        .secrets()
        .method("POST")
        .stream(body)
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(upstream.last_seen().body_len, EIGHT_MIB as u64);
}

/// An 8 MiB download streams back whole.
#[tokio::test]
async fn download_streams_back() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .start()
        .await;
    let response = Call::to(&gateway, &format!("/ovirt-engine/api/download/{EIGHT_MIB}"))
        .secrets()
        .exchange()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut total = 0;
    let mut frames = 0;
    while let Some(frame) = body.frame().await {
        total += frame.unwrap().data_ref().map_or(0, |d| d.len());
        frames += 1;
    }
    assert_eq!(total, EIGHT_MIB);
    assert!(
        frames > 1,
        "the body arrived in {frames} frame(s), so it was not streamed"
    );
}

/// The query string arrives byte for byte: `+`, `%3D`, `%2A` and key order untouched.
#[tokio::test]
async fn query_string_is_byte_exact() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .start()
        .await;
    let query = "all_content=true&case_sensitive=false&follow=nics&max=10&search=name%3Dmy+vm%2A&z=%22q%22";
    let reply = Call::to(&gateway, &format!("/ovirt-engine/api/vms?{query}"))
        .secrets()
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        upstream.last_seen().path_and_query,
        format!("/ovirt-engine/api/vms?{query}")
    );
}

/// Matrix parameters and /v4 stay in the path as sent.
#[tokio::test]
async fn matrix_parameters_and_v4_pass() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .start()
        .await;
    Call::to(&gateway, "/ovirt-engine/api/v4/vms;max=1")
        .secrets()
        .send()
        .await;
    assert_eq!(
        upstream.last_seen().path_and_query,
        "/ovirt-engine/api/v4/vms;max=1"
    );
}

/// The oVirt headers pass untouched; hop-by-hop headers do not; X-Forwarded-* and a
/// Correlation-Id are added; Host names the Manager.
#[tokio::test]
async fn headers_are_forwarded_and_hop_by_hop_stripped() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .start()
        .await;
    let addr = gateway.public_addr();
    let passed = [
        ("version", "4"),
        ("filter", "true"),
        ("all-content", "true"),
        ("prefer", "return=minimal"),
        ("accept-language", "fr-FR"),
        ("session-ttl", "30"),
        ("expect", "201-created"),
        ("accept", "application/xml"),
    ];
    let reply = Call::to(addr, "/ovirt-engine/api/vms")
        .secrets()
        .header("connection", "x-private")
        .header("x-private", "1")
        .header("te", "trailers")
        .header("proxy-authorization", "Basic cHJveHk6cHJveHk=")
        .header("x-forwarded-for", "192.0.2.1")
        .headers(&passed)
        .send()
        .await;
    assert_eq!(
        reply.status, 200,
        "Expect: 201-created must not be answered with 417"
    );
    let seen = upstream.last_seen().headers;
    for (name, value) in passed {
        assert_eq!(seen[name], [value], "{name}");
    }
    for name in ["x-private", "te", "proxy-authorization"] {
        assert!(!seen.contains_key(name), "{name} was forwarded");
    }
    // The client's claim is dropped: 127.0.0.1 is not a trusted proxy (tests/e2e/hostile.rs
    // has the trusted case).
    assert_eq!(seen["x-forwarded-for"], ["127.0.0.1"]);
    assert_eq!(seen["x-forwarded-proto"], ["http"]);
    assert_eq!(seen["x-forwarded-host"], [addr.to_string()]);
    assert_eq!(seen["host"], [upstream.addr.to_string()]);
    assert_eq!(seen["correlation-id"].len(), 1);
    assert_eq!(
        seen["authorization"],
        [SECRET_BEARER],
        "credentials pass to the Manager"
    );
    assert!(
        !reply.headers.contains_key("x-upstream-private"),
        "a response header named in Connection leaked"
    );
}

/// A client's own Correlation-Id is kept.
#[tokio::test]
async fn client_correlation_id_is_kept() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .start()
        .await;
    Call::to(&gateway, "/ovirt-engine/api")
        .secrets()
        .header("correlation-id", "my-job-42")
        .send()
        .await;
    assert_eq!(upstream.last_seen().headers["correlation-id"], ["my-job-42"]);
}

/// `Expect: 100-continue` (libcurl, bodies over 1 MiB): the client gets 100 Continue, sends the
/// body, and the Manager receives all of it.
#[tokio::test]
async fn expect_100_continue() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .start()
        .await;
    let mut stream = tokio::net::TcpStream::connect(gateway.public_addr())
        .await
        .unwrap();
    let body = vec![b'b'; 2 * 1024 * 1024];
    let head = format!(
        "POST /ovirt-engine/api/vms HTTP/1.1\r\nHost: gw\r\nAuthorization: {SECRET_BEARER}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(&body).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(upstream.last_seen().body_len, body.len() as u64);
}
