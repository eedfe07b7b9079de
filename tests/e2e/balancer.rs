//! Behind a load balancer in TCP mode (docs/replicas.md, "Behind a load balancer"): the PROXY
//! protocol from the peers in `listen.proxy_protocol` gives the client's address to the access
//! log, the limits and X-Forwarded-For; those peers must send it, and nobody else may.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// A gateway in front of a test upstream that takes PROXY headers from loopback peers.
async fn behind_balancer(upstream: &TestUpstream) -> ovirt_gateway::Running {
    GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("proxy_protocol = [\"127.0.0.0/8\"]")
        .start()
        .await
}

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: {SECRET_BEARER}\r\nConnection: close\r\n\r\n")
}

/// A version 1 and a version 2 header name the client: the Manager sees it in X-Forwarded-For
/// and the access log writes it.
#[tokio::test]
async fn the_proxy_header_names_the_client() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = behind_balancer(&upstream).await;
    let v1 = format!(
        "PROXY TCP4 192.0.2.7 127.0.0.1 56324 443\r\n{}",
        request("/ovirt-engine/api/vms")
    );
    let answer = raw_exchange(gateway.public_addr(), v1.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = upstream.last_seen().headers;
    assert_eq!(seen["x-forwarded-for"], ["192.0.2.7"]);
    let id = seen["correlation-id"][0].clone();
    let line = access_log_line(&id);
    assert!(line.contains("client=192.0.2.7:56324"), "{line}");

    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24".to_vec();
    v2.extend("2001:db8::7".parse::<std::net::Ipv6Addr>().unwrap().octets());
    v2.extend([0u8; 16]);
    v2.extend([0x01, 0xbb, 0x01, 0xbb]);
    v2.extend(request("/ovirt-engine/api/hosts").as_bytes());
    let answer = raw_exchange(gateway.public_addr(), &v2).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(upstream.last_seen().headers["x-forwarded-for"], ["2001:db8::7"]);
}

/// A peer that must send the header and does not is closed without an answer, and counted; a
/// peer outside the list that sends one gets a 400, its header taken for a bad request line.
#[tokio::test]
async fn the_header_is_required_from_the_balancer_and_refused_from_others() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = behind_balancer(&upstream).await;
    let mut stream = tokio::net::TcpStream::connect(gateway.public_addr())
        .await
        .unwrap();
    stream
        .write_all(request("/ovirt-engine/api/vms").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    // Closed, or reset (the request it did not read was still there): no answer either way.
    match stream.read_to_end(&mut answer).await {
        Ok(_) => assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer)),
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
    }
    assert_eq!(
        counter(
            &metrics(&gateway).await,
            "gateway_connections_refused_total{reason=\"proxy_protocol\"}"
        ),
        1
    );
    assert!(upstream.seen().is_empty());

    let direct = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("proxy_protocol = [\"192.0.2.0/24\"]")
        .start()
        .await;
    let forged = format!(
        "PROXY TCP4 6.6.6.6 127.0.0.1 1 443\r\n{}",
        request("/ovirt-engine/api/vms")
    );
    let answer = raw_exchange(direct.public_addr(), forged.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(upstream.seen().is_empty());
}
