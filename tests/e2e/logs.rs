//! Nothing secret is ever logged.

use crate::support::*;
use ovirt_gateway::GatewayBody;

/// Requests with credentials in headers and a password in the query, succeeding and failing in
/// every way, leave no secret in anything the suite logged.
#[tokio::test]
async fn no_secret_in_logs() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = gateway_for(&upstream, "max_body_bytes = 10").await;
    let addr = gateway.public_addr();
    let password = "pA55w0rd-in-query";
    let basic = "Basic YWRtaW5AaW50ZXJuYWw6c2VjcmV0UGFzc3dvcmQ=";
    for path in [
        format!("/ovirt-engine/api/vms?password={password}"),
        "/ovirt-engine/api/../x".to_owned(),
        "/nowhere".to_owned(),
    ] {
        send(request("GET", addr, &path).body(GatewayBody::empty()).unwrap()).await;
        let with_basic = http::Request::get(format!("http://{addr}{path}"))
            .header("authorization", basic)
            .header("cookie", SECRET_COOKIE);
        send(with_basic.body(GatewayBody::empty()).unwrap()).await;
    }
    send(
        request("POST", addr, "/ovirt-engine/api/vms")
            .body(full(vec![0u8; 100]))
            .unwrap(),
    )
    .await;
    let logs = captured_logs();
    assert!(
        logs.contains("access"),
        "the access log was not captured:\n{logs}"
    );
    for secret in [
        SECRET_BEARER,
        "sUpErSeCrEtToKeN",
        "cOoKiEsEcReT",
        password,
        "YWRtaW5AaW50ZXJuYWw6c2VjcmV0UGFzc3dvcmQ=",
    ] {
        assert!(!logs.contains(secret), "`{secret}` was logged");
    }
}

/// A user name with a newline and terminal escapes (quoted in the fault: it has no profile) is
/// logged escaped: it cannot start a line of
/// its own nor colour the terminal.
#[cfg(feature = "sim")]
#[tokio::test]
async fn client_fields_cannot_forge_log_lines() {
    use base64::Engine;
    let sim = simulator().await;
    let gateway =
        start_gateway(&config_text("", &manager("sim", &sim.api_url(), "")).replace(PASSTHROUGH, "")).await;
    let name = "mallory\nFORGED-LINE level=INFO \u{1b}[31mred";
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{name}:pw"))
    );
    let request = http::Request::get(format!("http://{}/ovirt-engine/api/vms", gateway.public_addr()))
        .header("authorization", basic)
        .body(GatewayBody::empty())
        .unwrap();
    send(request).await;
    let logs = captured_logs();
    assert!(
        logs.contains("mallory\\nFORGED-LINE"),
        "the name was not logged: {logs}"
    );
    assert!(
        !logs.lines().any(|line| line.starts_with("FORGED-LINE")),
        "{logs}"
    );
    assert!(!logs.contains('\u{1b}'), "{logs}");
}
