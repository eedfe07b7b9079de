//! Nothing secret is ever logged.

use crate::support::*;
use ovirt_gateway::body::GatewayBody;

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
        let request = request("GET", addr, &path).header("authorization", basic);
        send(request.body(GatewayBody::empty()).unwrap()).await;
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
