//! TLS on the public listener: ALPN, protocol versions, certificate reload.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ovirt_gateway::GatewayBody;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::support::*;

/// The configuration of a gateway serving TLS with a first certificate issued by `pki`, in front
/// of `upstream`.
fn tls_gateway(pki: &TestPki, upstream: &TestUpstream) -> GatewayConfig {
    pki.issue_server_cert("first");
    GatewayConfig::new()
        .tls(&pki.path("cert.pem"), &pki.path("key.pem"))
        .manager("engine", &upstream.url())
}

/// A TLS connection and the certificate the gateway presented on it.
struct Handshake {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    cert: CertificateDer<'static>,
}

/// Status and HTTP version of a GET over TLS, offering h2 and http/1.1 or http/1.1 only.
async fn status_and_version(tls: rustls::ClientConfig, port: u16, offer_h2: bool) -> (u16, http::Version) {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only();
    let connector = if offer_h2 {
        builder.enable_all_versions().build()
    } else {
        builder.enable_http1().build()
    };
    let client: Client<_, GatewayBody> = Client::builder(TokioExecutor::new()).build(connector);
    let request = http::Request::get(format!("https://localhost:{port}/ovirt-engine/api/vms"))
        .header("authorization", SECRET_BEARER)
        .body(GatewayBody::empty())
        .unwrap();
    let response = client.request(request).await.unwrap();
    (response.status().as_u16(), response.version())
}

/// With `http2 = true`, HTTP/2 is negotiated by ALPN; HTTP/1.1 clients are served too.
#[tokio::test]
async fn http2_by_alpn_and_http1() {
    let upstream = TestUpstream::start("engine").await;
    let pki = TestPki::new();
    let gateway = tls_gateway(&pki, &upstream).listen("http2 = true").start().await;
    let port = gateway.public_addr().port();
    assert_eq!(
        status_and_version(pki.client_config(), port, true).await,
        (200, http::Version::HTTP_2)
    );
    assert_eq!(
        status_and_version(pki.client_config(), port, false).await,
        (200, http::Version::HTTP_11)
    );
    assert_eq!(upstream.last_seen().headers["x-forwarded-proto"], ["https"]);
}

/// By default ALPN offers only HTTP/1.1: a client offering h2 too gets HTTP/1.1 (the SDK stalls
/// over HTTP/2).
#[tokio::test]
async fn http1_only_by_default() {
    let upstream = TestUpstream::start("engine").await;
    let pki = TestPki::new();
    let gateway = tls_gateway(&pki, &upstream).start().await;
    assert_eq!(
        status_and_version(pki.client_config(), gateway.public_addr().port(), true).await,
        (200, http::Version::HTTP_11)
    );
}

/// TLS 1.2 and TLS 1.3 are both accepted.
#[tokio::test]
async fn tls12_and_tls13() {
    let upstream = TestUpstream::start("engine").await;
    let pki = TestPki::new();
    let gateway = tls_gateway(&pki, &upstream).start().await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[version])
                .unwrap()
                .with_root_certificates(pki.roots())
                .with_no_client_auth();
        let Handshake { stream, .. } = handshake(config, gateway.public_addr().port()).await;
        let (_, connection) = stream.get_ref();
        assert_eq!(connection.protocol_version(), Some(version.version));
    }
}

async fn handshake(config: rustls::ClientConfig, port: u16) -> Handshake {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let stream = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (_, connection) = stream.get_ref();
    let cert = connection.peer_certificates().unwrap()[0].clone().into_owned();
    Handshake { stream, cert }
}

fn file_cert(pki: &TestPki) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(pki.path("cert.pem")).unwrap()
}

/// A reload serves the new certificate to new connections while an open connection keeps
/// working; a broken key file is refused and the previous certificate stays.
#[tokio::test]
async fn certificate_reload_keeps_open_connections() {
    let upstream = TestUpstream::start("engine").await;
    let pki = TestPki::new();
    let gateway = tls_gateway(&pki, &upstream).start().await;
    let port = gateway.public_addr().port();
    let first = file_cert(&pki);

    let mut http1 = pki.client_config();
    http1.alpn_protocols = vec![b"http/1.1".to_vec()];
    let Handshake { stream, cert } = handshake(http1.clone(), port).await;
    assert_eq!(cert, first);
    let (mut open, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);

    pki.issue_server_cert("second");
    gateway.reload_tls().unwrap();
    let second = file_cert(&pki);
    assert_ne!(first, second);
    assert_eq!(handshake(http1.clone(), port).await.cert, second);

    let request = http::Request::get("/ovirt-engine/api")
        .header("host", "localhost")
        .header("authorization", SECRET_BEARER)
        .body(GatewayBody::empty())
        .unwrap();
    let response = open.send_request(request).await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "the connection opened before the reload still works"
    );
    response.into_body().collect().await.unwrap();

    std::fs::write(pki.path("key.pem"), "not a key").unwrap();
    assert!(gateway.reload_tls().unwrap_err().contains("tls_key"));
    assert_eq!(handshake(http1, port).await.cert, second);
}
