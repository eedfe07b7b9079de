//! Nothing secret is ever logged.

use http::StatusCode;

use crate::support::*;

/// Requests with credentials in headers and a password in the query, succeeding and failing in
/// every way, leave no secret in anything the suite logged.
#[tokio::test]
async fn no_secret_in_logs() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("max_body_bytes = 10")
        .start()
        .await;
    let addr = gateway.public_addr();
    let password = "pA55w0rd-in-query";
    let basic = "Basic YWRtaW5AaW50ZXJuYWw6c2VjcmV0UGFzc3dvcmQ=";
    for path in [
        format!("/ovirt-engine/api/vms?password={password}"),
        "/ovirt-engine/api/../x".to_owned(),
        "/nowhere".to_owned(),
    ] {
        Call::to(addr, &path).secrets().send().await;
        Call::to(addr, &path)
            .header("authorization", basic)
            .cookie(SECRET_COOKIE)
            .send()
            .await;
    }
    Call::to(addr, "/ovirt-engine/api/vms")
        .secrets()
        .method("POST")
        .body(vec![0u8; 100])
        .send()
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
#[tokio::test]
async fn client_fields_cannot_forge_log_lines() {
    let sim = simulator().await;
    let gateway = GatewayConfig::new()
        .manager("sim", &sim.api_url())
        .passthrough(false)
        .start()
        .await;
    let name = "mallory\nFORGED-LINE level=INFO \u{1b}[31mred";
    Call::to(&gateway, "/ovirt-engine/api/vms")
        .basic(name, "pw")
        .send()
        .await;
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

/// An answer sent whole is logged `complete=true`, whether its body said it had ended or the
/// client connection stopped reading it at its declared length: the Manager's entity, its
/// listing, its faults, and the gateway's own fault.
#[tokio::test]
async fn answers_sent_whole_are_logged_complete() {
    let sim = simulator().await;
    let gateway = GatewayConfig::new()
        .manager("logged-whole", &sim.api_url())
        .passthrough(false)
        .start()
        .await;
    let listing = api(&sim, "/vms?max=1").send().await.text().to_owned();
    let vm = &listing[listing.find(" id=\"").unwrap() + 5..][..36];
    let unknown = "0bad0bad-0000-4000-8000-00000000c0de";
    // The gateway's own fault comes before routing: it names no Manager (its id is this test's).
    for (path, status, manager) in [
        (
            format!("/ovirt-engine/api/vms/{vm}"),
            StatusCode::OK,
            "logged-whole",
        ),
        (
            "/ovirt-engine/api/clusters?max=1".to_owned(),
            StatusCode::OK,
            "logged-whole",
        ),
        (
            format!("/ovirt-engine/api/vms/{unknown}"),
            StatusCode::NOT_FOUND,
            "logged-whole",
        ),
        (
            "/ovirt-engine/api/vms?search=x&max=1".to_owned(),
            StatusCode::BAD_REQUEST,
            "logged-whole",
        ),
        (
            "/ovirt-engine/api/vms/1-1-1-1-c0de".to_owned(),
            StatusCode::BAD_REQUEST,
            "-",
        ),
    ] {
        let reply = Call::to(&gateway, &path)
            .basic("admin@internal", "admin")
            .send()
            .await;
        assert_eq!(reply.status, status, "{path}: {:?}", reply.body);
        let target = path.split('?').next().unwrap();
        let logs = captured_logs();
        let line = logs
            .lines()
            .find(|l| {
                l.contains(" access: ")
                    && l.contains(&format!("path={target} "))
                    && l.contains(&format!(" manager={manager} "))
            })
            .unwrap_or_else(|| panic!("no access-log line for {path}:\n{logs}"));
        assert!(
            line.contains(&format!("status={} ", status.as_u16()))
                && line.contains(&format!("bytes_out={} ", reply.body.len()))
                && line.contains(" complete=true "),
            "{line}"
        );
    }
}
