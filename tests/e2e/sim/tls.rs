//! The simulator with `self_signed`: its CA served at the engine's pki-resource URL, and
//! HTTP/1.1 only by ALPN.

use super::*;

/// With `self_signed`, HTTPS serves the simulator's CA at the engine's pki-resource URL.
#[tokio::test]
async fn self_signed_serves_its_ca() {
    let sim = simulator_with(|o| o.self_signed = true).await;
    assert!(sim.api_url().starts_with("https://127.0.0.1:"));
    let path = "/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA";
    let reply = raw(&sim, path).send().await;
    assert_eq!(
        reply.expect(200, "application/x-x509-ca-cert").text(),
        sim.pki().ca_pem
    );
}

/// With `self_signed`, ALPN picks HTTP/1.1 even for a client offering h2, as the engine's Apache.
#[tokio::test]
async fn self_signed_speaks_http1_only() {
    let sim = simulator_with(|o| o.self_signed = true).await;
    let reply = api(&sim, "/vms?max=1")
        .send()
        .await
        .expect(200, "application/xml");
    assert_eq!(reply.version, http::Version::HTTP_11);
}
