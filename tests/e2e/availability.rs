//! Several Managers that fail one at a time (docs/federation.md, "Availability"): a login stands
//! when one Manager accepts it and reaches the others when they come back, readiness means "can
//! serve", and a failing Manager's circuit breaker opens and closes again.

use std::time::Duration;

use http::StatusCode;
use ovirt_gateway::Running;
use ovirt_gateway::sim::RunningSim;
use serde_json::{Value, json};

use crate::support::*;

/// `east` and `west` under their prefixes, health-checked every 100 ms, no pass-through.
fn east_and_west(east: &RunningSim, west: &RunningSim) -> GatewayConfig {
    let checked = "health_interval = \"100ms\"";
    GatewayConfig::new()
        .manager_with("east", &east.api_url(), &format!("prefix = \"/east\"\n{checked}"))
        .manager_with("west", &west.api_url(), &format!("prefix = \"/west\"\n{checked}"))
        .passthrough(false)
}

async fn readyz(gateway: &Running) -> (StatusCode, Value) {
    let reply = Call::to(gateway.admin_addr().unwrap(), "/readyz").send().await;
    (reply.status, reply.json())
}

/// Waits until /readyz reports `manager` up (or down).
async fn until_up(gateway: &Running, manager: &str, up: bool) {
    eventually(Duration::from_secs(10), async || {
        readyz(gateway).await.1["managers"][manager]["up"] == up
    })
    .await;
}

async fn token(gateway: &Running, user: &str, password: &str) -> String {
    let reply = gateway_login(gateway, user, password).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// With west down, a login at the root succeeds on east alone; east is served, west's requests
/// are 503 faults that name it; the gateway stays ready. When west is back at its address, the
/// login is made there on first use, once.
#[tokio::test]
async fn one_manager_down_leaves_the_others_served() {
    let (east, west) = (simulator().await, simulator().await);
    let west_addr = west.addr();
    let gateway = east_and_west(&east, &west).start().await;
    until_up(&gateway, "west", true).await;
    west.shutdown().await;
    until_up(&gateway, "west", false).await;
    let (status, body) = readyz(&gateway).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready_when"], "any");
    assert_eq!(body["managers"]["east"]["up"], true, "{body}");
    assert_ne!(body["managers"]["west"]["health"], "ok", "{body}");
    let metrics = metrics(&gateway).await;
    assert_eq!(counter(&metrics, "gateway_manager_up{manager=\"east\"}"), 1);
    assert_eq!(counter(&metrics, "gateway_manager_up{manager=\"west\"}"), 0);

    let token = token(&gateway, "admin@internal", "admin").await;
    let east_vms = Call::to(&gateway, "/east/ovirt-engine/api/vms").bearer(&token);
    assert_eq!(east_vms.send().await.status, 200);
    let west_vms = || Call::to(&gateway, "/west/ovirt-engine/api/vms").bearer(&token);
    let reply = west_vms().send().await;
    assert!(reply.headers.contains_key("retry-after"), "{:?}", reply.headers);
    let detail = reply.fault(503, "Manager SSO unavailable");
    assert_contains(&detail, "'west'");

    let west = simulator_with(|o| o.listen = west_addr).await;
    until_up(&gateway, "west", true).await;
    for _ in 0..3 {
        assert_eq!(west_vms().send().await.status, 200);
    }
    assert_eq!(sim_stats(&west).await["sso_logins"], 1);
}

/// With `ready_when = "all"`, one Manager down makes the gateway unready, and the body says which.
#[tokio::test]
async fn ready_when_all_needs_every_manager() {
    let (east, west) = (simulator().await, simulator().await);
    let gateway = east_and_west(&east, &west)
        .admin("ready_when = \"all\"")
        .start()
        .await;
    until_up(&gateway, "west", true).await;
    until_up(&gateway, "east", true).await;
    assert_eq!(readyz(&gateway).await.0, 200);
    west.shutdown().await;
    until_up(&gateway, "west", false).await;
    let (status, body) = readyz(&gateway).await;
    assert_eq!(status, 503);
    assert_eq!(body["ready"], false);
    assert_eq!(body["ready_when"], "all");
    assert_eq!(body["managers"]["east"]["up"], true, "{body}");
}

/// A user only east knows logs in; west, which refused the credentials, is left out of the
/// login with a 403 that says so (logging in again would not change it, so never a 401). Wrong
/// credentials everywhere are still refused.
#[tokio::test]
async fn a_manager_that_refuses_is_left_out() {
    let users = UsersFile::new(
        "[[user]]\nname = \"user0@internal\"\npassword = \"password0\"\ngrants = [{ role = \"UserRole\", on = \"vm:vm-00001\" }]\n",
    );
    let east = simulator_with(|o| o.users = Some(users.path.clone())).await;
    let west = simulator().await;
    let gateway = east_and_west(&east, &west).start().await;
    let token = token(&gateway, "user0@internal", "password0").await;
    let east_vms = Call::to(&gateway, "/east/ovirt-engine/api/vms").bearer(&token);
    assert_eq!(east_vms.send().await.status, 200);
    let detail = Call::to(&gateway, "/west/ovirt-engine/api/vms")
        .bearer(&token)
        .fails(403, "Forbidden")
        .await;
    assert_contains(
        &detail,
        "Manager 'west' did not accept the credentials of this login",
    );
    let refused = gateway_login(&gateway, "user0@internal", "wrong").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["error_code"], "access_denied");
}

/// Every Manager down: a login is a 503, never a 401 or the engine's 400 (docs/invariants.md,
/// invariant 6).
#[tokio::test]
async fn every_manager_down_is_a_503_login() {
    let (east, west) = (simulator().await, simulator().await);
    let gateway = east_and_west(&east, &west).start().await;
    east.shutdown().await;
    west.shutdown().await;
    let reply = gateway_login(&gateway, "admin@internal", "admin").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text());
    assert_eq!(reply.json()["error_code"], "server_error");
    assert_eq!(readyz(&gateway).await.0, 503);
}

/// `breaker_failures` failed exchanges in a row open the breaker: requests then fail at once
/// with a 503 and Retry-After, never reaching the Manager; after `breaker_open`, one request
/// probes, and its answer closes the breaker.
#[tokio::test]
async fn breaker_opens_and_a_probe_closes_it() {
    let sim = simulator().await;
    let gateway = GatewayConfig::new()
        .manager_with(
            "engine",
            &sim.api_url(),
            "breaker_failures = 3\nbreaker_open = \"300ms\"",
        )
        .passthrough(false)
        .start()
        .await;
    let vms = || {
        Call::to(&gateway, "/ovirt-engine/api/vms")
            .basic("admin@internal", "admin")
            .header("cache-control", "no-cache")
    };
    assert_eq!(vms().send().await.status, 200);
    let faults = json!({"error_rate": 1.0, "error_status": 503});
    raw(&sim, "/sim/faults").post_json(&faults).send().await;
    for _ in 0..3 {
        // The Manager's own 503 (its front end's HTML page), passed on.
        let reply = vms().send().await;
        assert_eq!(reply.status, 503);
        assert_contains(reply.text(), "<html>");
    }
    let asked = sim_stats(&sim).await["api_requests"].clone();
    let reply = vms().send().await;
    assert!(reply.headers.contains_key("retry-after"), "{:?}", reply.headers);
    let detail = reply.fault(503, "Manager unavailable");
    assert_contains(&detail, "Manager 'engine' failed 3 exchanges in a row");
    assert_eq!(sim_stats(&sim).await["api_requests"], asked, "sent while open");
    let (_, body) = readyz(&gateway).await;
    assert_eq!(body["managers"]["engine"]["breaker"], "open", "{body}");
    assert_eq!(body["managers"]["engine"]["up"], false, "{body}");

    raw(&sim, "/sim/faults").post_json(&json!({})).send().await;
    eventually(Duration::from_secs(10), async || vms().send().await.status == 200).await;
    let metrics = metrics(&gateway).await;
    assert_eq!(
        counter(
            &metrics,
            "gateway_manager_breaker_opened_total{manager=\"engine\"}"
        ),
        1
    );
    assert_eq!(
        counter(&metrics, "gateway_manager_breaker_state{manager=\"engine\"}"),
        0
    );
}
