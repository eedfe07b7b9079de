//! Basic credentials exchanged for the Manager's SSO tokens, against the simulator: one login per
//! user, refusals and outages answered correctly, nothing secret logged.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use ovirt_gateway::GatewayBody;
use ovirt_gateway::Running;
use ovirt_gateway::sim::{self, RunningSim, SimOptions};
use serde_json::Value;

use crate::support::*;

/// A simulator whose only users are `user0@internal`/`password0`, `user1@internal`/`password1`, ...
/// (UserRole on vm-00001; any user may read the API).
async fn simulator_with_users(users: usize) -> (RunningSim, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for n in 0..users {
        text.push_str(&format!(
            "[[user]]\nname = \"user{n}@internal\"\npassword = \"password{n}\"\ngrants = [{{ role = \"UserRole\", on = \"vm:vm-00001\" }}]\n\n"
        ));
    }
    let path = dir.path().join("users.toml");
    std::fs::write(&path, text).unwrap();
    let sim = sim::start(SimOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        users: Some(path),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    (sim, dir)
}

/// A gateway in front of `sim` with the default `[auth]` (no Bearer pass-through).
async fn gateway_before(sim: &RunningSim) -> Running {
    start_gateway(&gateway_text(&manager("sim", &sim.api_url(), ""))).await
}

fn gateway_text(managers: &str) -> String {
    config_text("", managers).replace(PASSTHROUGH, "")
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// A GET of an API path through the gateway with an Authorization value.
async fn get_as(gateway: &Running, path: &str, authorization: &str) -> (StatusCode, http::HeaderMap, String) {
    let request = http::Request::get(format!("http://{}/ovirt-engine/api{path}", gateway.public_addr()))
        .header("authorization", authorization)
        .body(GatewayBody::empty())
        .unwrap();
    let (status, headers, body) = send(request).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// Every token at the simulator dies, as on an engine restart.
async fn revoke_all(sim: &RunningSim) {
    let origin = sim.api_url().replace("/ovirt-engine/api", "");
    let request = http::Request::post(format!("{origin}/sim/revoke-all"))
        .body(GatewayBody::empty())
        .unwrap();
    send(request).await;
}

/// 200 concurrent Basic requests from 10 users make exactly 10 logins at the Manager, and none of
/// them reaches it as a Basic login.
#[tokio::test]
async fn one_login_per_user() {
    let (sim, _dir) = simulator_with_users(10).await;
    let gateway = gateway_before(&sim).await;
    let requests = (0..200).map(|i| {
        let user = i % 10;
        let gateway = &gateway;
        async move {
            let credentials = basic(&format!("user{user}@internal"), &format!("password{user}"));
            get_as(gateway, "", &credentials).await.0
        }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    let stats = sim_stats(&sim).await;
    assert_eq!(stats["sso_logins"], 10);
    assert_eq!(stats["basic_logins"], 0);
    let metrics = metrics(&gateway).await;
    assert!(
        metrics.contains("gateway_sso_logins_total{manager=\"sim\",result=\"ok\"} 10"),
        "{metrics}"
    );
    assert!(metrics.contains("gateway_sessions 10"), "{metrics}");
}

/// After the Manager forgets every token (a restart), the next Basic request still succeeds,
/// through exactly one new login.
#[tokio::test]
async fn relogin_after_the_manager_forgets_tokens() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let credentials = basic("user0@internal", "password0");
    assert_eq!(get_as(&gateway, "/vms", &credentials).await.0, StatusCode::OK);
    revoke_all(&sim).await;
    assert_eq!(get_as(&gateway, "/vms", &credentials).await.0, StatusCode::OK);
    assert_eq!(sim_stats(&sim).await["sso_logins"], 2);
}

/// A wrong password is a 401 with the engine's challenge and a fault naming the user; repeating
/// it within the failure cache does not reach the Manager again.
#[tokio::test]
async fn wrong_password_is_remembered() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let credentials = basic("user0@internal", "wrong");
    for _ in 0..5 {
        let (status, headers, body) = get_as(&gateway, "/vms", &credentials).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers["www-authenticate"], "Basic realm=\"RESTAPI\"");
        assert_eq!(fault_reason(body.as_bytes()), "Unauthorized");
        assert!(body.contains("user0@internal"), "{body}");
    }
    assert_eq!(sim_stats(&sim).await["failed_logins"], 1);
    let metrics = metrics(&gateway).await;
    assert!(
        metrics.contains("gateway_auth_failures_total{reason=\"refused_cached\"} 4"),
        "{metrics}"
    );
}

/// A user name without `@profile` is refused by the gateway itself, saying why.
#[tokio::test]
async fn user_without_profile_is_refused_here() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let (status, _, body) = get_as(&gateway, "/vms", &basic("user0", "password0")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("user@profile"), "{body}");
    assert_eq!(sim_stats(&sim).await["failed_logins"], 0);
}

/// Basic credentials that are not base64 of `user:password` are a 401 fault.
#[tokio::test]
async fn malformed_basic_is_401() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let (status, headers, body) = get_as(&gateway, "/vms", "Basic %%%").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Basic realm=\"RESTAPI\"");
    assert!(body.contains("not valid Basic credentials"), "{body}");
}

/// When the Manager cannot be reached to log in, the answer is 503, never 401 (the SDK would log
/// in again in a loop).
#[tokio::test]
async fn manager_down_during_login_is_503() {
    let gateway = start_gateway(&gateway_text(&manager("down", &down_manager_url().await, ""))).await;
    let (status, headers, body) = get_as(&gateway, "/vms", &basic("user0@internal", "password0")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(fault_reason(body.as_bytes()), "Manager SSO unavailable");
}

/// A Bearer token the gateway did not issue is a 401 fault from the gateway; the Manager never
/// sees it.
#[tokio::test]
async fn foreign_bearer_is_refused() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let (status, headers, body) = get_as(&gateway, "/vms", SECRET_BEARER).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Basic realm=\"RESTAPI\"");
    assert!(body.contains("not issued by this gateway"), "{body}");
    assert_eq!(sim_stats(&sim).await["api_requests"], 0);
}

/// The passwords of logins through the gateway and the gateway's tokens never reach its logs (the
/// Managers' tokens are sent as sensitive header values and never formatted).
#[tokio::test]
async fn no_password_or_token_in_logs() {
    let (sim, _dir) = simulator_with_users(2).await;
    let gateway = gateway_before(&sim).await;
    get_as(&gateway, "/vms", &basic("user1@internal", "password1")).await;
    get_as(&gateway, "/vms", &basic("user1@internal", "not-the-password-1")).await;
    let (_, answer) = gateway_grant(&gateway, "user0@internal", "password0").await;
    let token = answer["access_token"].as_str().unwrap().to_owned();
    get_as(&gateway, "/vms", &format!("Bearer {token}")).await;
    let form = format!("scope=ovirt-app-api&token={token}");
    gateway_form(&gateway, "/ovirt-engine/services/sso-logout", &form).await;
    let logs = captured_logs();
    assert!(
        logs.contains("user1@internal"),
        "the access log names the user:\n{logs}"
    );
    let basic_value = STANDARD.encode("user1@internal:password1");
    let signature = token.rsplit('.').next().unwrap().to_owned();
    for secret in [
        "password0",
        "password1",
        "not-the-password-1",
        &basic_value,
        &token,
        &signature,
    ] {
        assert!(!logs.contains(secret), "`{secret}` was logged");
    }
}

/// A password grant at the gateway, as the SDK sends it; the answer.
async fn gateway_grant(gateway: &Running, user: &str, password: &str) -> (StatusCode, Value) {
    let body = format!(
        "grant_type=password&scope=ovirt-app-api&username={}&password={password}",
        user.replace('@', "%40")
    );
    let request = http::Request::post(format!(
        "http://{}/ovirt-engine/sso/oauth/token",
        gateway.public_addr()
    ))
    .header("accept", "application/json")
    .header("content-type", "application/x-www-form-urlencoded")
    .body(full(body))
    .unwrap();
    let (status, headers, body) = send(request).await;
    assert_eq!(headers["content-type"], "application/json");
    (status, serde_json::from_slice(&body).unwrap())
}

/// A form POST to one of the gateway's SSO services.
async fn gateway_form(gateway: &Running, path: &str, form: &str) -> (StatusCode, Value) {
    let request = http::Request::post(format!("http://{}{path}", gateway.public_addr()))
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(full(form.to_owned()))
        .unwrap();
    let (status, _, body) = send(request).await;
    (status, serde_json::from_slice(&body).unwrap())
}

/// The gateway answers the SDK's login itself, in the engine's shape, with its own token: a JWT
/// whose claims are subject, session, issue and expiry times, and nothing of the Manager's.
#[tokio::test]
async fn gateway_answers_the_password_grant() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let (status, answer) = gateway_grant(&gateway, "user0@internal", "password0").await;
    assert_eq!(status, StatusCode::OK);
    let fields: Vec<&String> = answer.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["access_token", "scope", "exp", "token_type"]);
    assert_eq!(answer["token_type"], "bearer");
    assert!(
        answer["exp"]
            .as_str()
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
    let token = answer["access_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let names: Vec<&String> = claims.as_object().unwrap().keys().collect();
    assert_eq!(names, ["sub", "sid", "iat", "exp"]);
    assert_eq!(claims["sub"], "user0@internal");
    assert_eq!(sim_stats(&sim).await["sso_logins"], 1);
    let (status, _, _) = get_as(&gateway, "/vms", &format!("Bearer {token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim_stats(&sim).await["sso_logins"], 1);
}

/// A refused login at the gateway's endpoint is the engine's 400 JSON with the Manager's message.
#[tokio::test]
async fn gateway_grant_refusal_has_the_engine_shape() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let (status, answer) = gateway_grant(&gateway, "user0@internal", "wrong").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error_code"], "access_denied");
    assert!(
        answer["error"].as_str().unwrap().contains("user0@internal"),
        "{answer}"
    );
    let (status, answer) = gateway_grant(&gateway, "user0", "password0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"].as_str().unwrap().contains("No valid profile"),
        "{answer}"
    );
}

/// When the Manager's SSO cannot be reached, the gateway's endpoint answers 503 with an SSO
/// error (the SDK raises it), never an access denial.
#[tokio::test]
async fn gateway_grant_with_the_manager_down_is_503() {
    let gateway = start_gateway(&gateway_text(&manager("down", &down_manager_url().await, ""))).await;
    let (status, answer) = gateway_grant(&gateway, "user0@internal", "password0").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer["error_code"], "server_error");
}

/// token-info in validate mode: `{}` for a live gateway token, invalid_grant for anything else.
#[tokio::test]
async fn gateway_token_info_validates() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let (_, answer) = gateway_grant(&gateway, "user0@internal", "password0").await;
    let token = answer["access_token"].as_str().unwrap();
    let path = "/ovirt-engine/sso/oauth/token-info";
    let form = |token: &str| format!("scope=ovirt-ext%3Dtoken-info%3Avalidate&token={token}");
    assert_eq!(
        gateway_form(&gateway, path, &form(token)).await,
        (StatusCode::OK, serde_json::json!({}))
    );
    let (status, answer) = gateway_form(&gateway, path, &form("forged")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"], "invalid_grant");
}

/// sso-logout ends the login and revokes its token at the Manager; the gateway token is then
/// refused by the gateway itself.
#[tokio::test]
async fn gateway_logout_revokes_upstream() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let (_, answer) = gateway_grant(&gateway, "user0@internal", "password0").await;
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(sim_stats(&sim).await["active_tokens"], 1);
    let form = format!("scope=ovirt-app-api&token={token}");
    let answer = gateway_form(&gateway, "/ovirt-engine/services/sso-logout", &form).await;
    assert_eq!(answer, (StatusCode::OK, serde_json::json!({})));
    let stats = sim_stats(&sim).await;
    assert_eq!(
        (stats["active_tokens"].clone(), stats["revoked_tokens"].clone()),
        (0.into(), 1.into())
    );
    let (status, _, body) = get_as(&gateway, "/vms", &format!("Bearer {token}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("log in again"), "{body}");
}

/// When the Manager forgets the upstream token, a gateway-token client gets the 401 (it holds no
/// password: the SDK logs in again itself) and its login ends.
#[tokio::test]
async fn forgotten_upstream_token_ends_the_login() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let (_, answer) = gateway_grant(&gateway, "user0@internal", "password0").await;
    let bearer = format!("Bearer {}", answer["access_token"].as_str().unwrap());
    revoke_all(&sim).await;
    assert_eq!(
        get_as(&gateway, "/vms", &bearer).await.0,
        StatusCode::UNAUTHORIZED
    );
    let requests = sim_stats(&sim).await["api_requests"].clone();
    let (status, _, body) = get_as(&gateway, "/vms", &bearer).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("log in again"), "{body}");
    assert_eq!(sim_stats(&sim).await["api_requests"], requests);
}

/// Shutdown revokes the Managers' tokens of every open session and login.
#[tokio::test]
async fn shutdown_revokes_upstream_tokens() {
    let (sim, _dir) = simulator_with_users(2).await;
    let gateway = gateway_before(&sim).await;
    get_as(&gateway, "/vms", &basic("user0@internal", "password0")).await;
    gateway_grant(&gateway, "user1@internal", "password1").await;
    assert_eq!(sim_stats(&sim).await["active_tokens"], 2);
    gateway.shutdown().await;
    let stats = sim_stats(&sim).await;
    assert_eq!(
        (stats["active_tokens"].clone(), stats["revoked_tokens"].clone()),
        (0.into(), 2.into())
    );
}

/// Beyond `max_sessions`, the least recently used session makes room and its token is revoked
/// at the Manager; the newest is kept and needs no new login.
#[tokio::test]
async fn evicted_session_is_revoked() {
    let (sim, _dir) = simulator_with_users(3).await;
    let text = gateway_text(&manager("sim", &sim.api_url(), "")) + "\n[auth]\nmax_sessions = 1\n";
    let gateway = start_gateway(&text).await;
    for user in 0..3 {
        let credentials = basic(&format!("user{user}@internal"), &format!("password{user}"));
        assert_eq!(get_as(&gateway, "/vms", &credentials).await.0, StatusCode::OK);
    }
    eventually(Duration::from_secs(10), async || {
        sim_stats(&sim).await["revoked_tokens"].as_u64().unwrap() == 2
    })
    .await;
    let logins = sim_stats(&sim).await["sso_logins"].clone();
    let newest = basic("user2@internal", "password2");
    assert_eq!(get_as(&gateway, "/vms", &newest).await.0, StatusCode::OK);
    assert_eq!(sim_stats(&sim).await["sso_logins"], logins);
}

/// A GET through the gateway with the given headers.
async fn get_with(gateway: &Running, path: &str, headers: &[(&str, &str)]) -> (StatusCode, http::HeaderMap) {
    let mut request = http::Request::get(format!("http://{}/ovirt-engine/api{path}", gateway.public_addr()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (status, headers, _) = send(request.body(GatewayBody::empty()).unwrap()).await;
    (status, headers)
}

/// `Prefer: persistent-auth` gets the gateway's own HttpOnly cookie on the API path, never the
/// Manager's JSESSIONID; the cookie then stands for the credentials.
#[tokio::test]
async fn persistent_auth_gets_the_gateway_cookie() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let credentials = basic("user0@internal", "password0");
    let (status, headers) = get_with(
        &gateway,
        "",
        &[("authorization", &credentials), ("prefer", "persistent-auth")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let cookies: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let (pair, attributes) = cookies[0].split_once(';').unwrap();
    assert!(pair.starts_with("OVIRT_GATEWAY_SESSION="), "{pair}");
    assert_eq!(attributes, " Path=/ovirt-engine/api; HttpOnly");
    let logins = sim_stats(&sim).await["sso_logins"].clone();
    let (status, _) = get_with(
        &gateway,
        "/vms",
        &[("cookie", pair), ("prefer", "persistent-auth")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim_stats(&sim).await["sso_logins"], logins);
    assert_eq!(sim_stats(&sim).await["active_sessions"], 0);
}

/// The cookie without `Prefer: persistent-auth` ends the session, as on the engine.
#[tokio::test]
async fn cookie_without_prefer_ends_the_session() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let credentials = basic("user0@internal", "password0");
    let (_, headers) = get_with(
        &gateway,
        "",
        &[("authorization", &credentials), ("prefer", "persistent-auth")],
    )
    .await;
    let cookie = headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    get_with(
        &gateway,
        "",
        &[("cookie", &cookie), ("authorization", &credentials)],
    )
    .await;
    let (status, _) = get_with(
        &gateway,
        "",
        &[("cookie", &cookie), ("prefer", "persistent-auth")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// No credentials at all: 401 with the engine's challenge, from the gateway.
#[tokio::test]
async fn no_credentials_is_401() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let (status, headers) = get_with(&gateway, "/vms", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Basic realm=\"RESTAPI\"");
    assert_eq!(sim_stats(&sim).await["api_requests"], 0);
}

/// After the Manager forgets every token, a Basic POST with a small body (adding a VM) is resent
/// after one fresh login and succeeds.
#[tokio::test]
async fn small_post_is_resent_after_a_fresh_login() {
    let sim = sim::start(SimOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let gateway = gateway_before(&sim).await;
    let credentials = basic("admin@internal", "admin");
    assert_eq!(get_as(&gateway, "", &credentials).await.0, StatusCode::OK);
    revoke_all(&sim).await;
    let add = http::Request::post(format!("http://{}/ovirt-engine/api/vms", gateway.public_addr()))
        .header("authorization", &credentials)
        .header("content-type", "application/xml")
        .body(full(
            "<vm><name>resent</name><cluster><name>cluster-1</name></cluster></vm>",
        ))
        .unwrap();
    let (status, _, body) = send(add).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    assert_eq!(sim_stats(&sim).await["sso_logins"], 2);
}

/// Beyond `max_logins_per_user`, a user's oldest login ends: its gateway token stops working and
/// its Manager token is revoked; the newer logins keep working.
#[tokio::test]
async fn oldest_login_of_a_user_makes_room() {
    let (sim, _dir) = simulator_with_users(1).await;
    let text = gateway_text(&manager("sim", &sim.api_url(), "")) + "\n[auth]\nmax_logins_per_user = 2\n";
    let gateway = start_gateway(&text).await;
    let mut bearers = Vec::new();
    for _ in 0..3 {
        let (_, answer) = gateway_grant(&gateway, "user0@internal", "password0").await;
        bearers.push(format!("Bearer {}", answer["access_token"].as_str().unwrap()));
    }
    let stats = sim_stats(&sim).await;
    assert_eq!(
        (stats["active_tokens"].clone(), stats["revoked_tokens"].clone()),
        (2.into(), 1.into())
    );
    assert_eq!(
        get_as(&gateway, "/vms", &bearers[0]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get_as(&gateway, "/vms", &bearers[1]).await.0, StatusCode::OK);
    assert_eq!(get_as(&gateway, "/vms", &bearers[2]).await.0, StatusCode::OK);
}

/// The principal carries the user's id at the Manager, learned once per session from the API
/// root (and its name from the user's entity), and the access log names it.
#[tokio::test]
async fn principal_knows_the_upstream_user_id() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let credentials = basic("user0@internal", "password0");
    let (_, _, root) = get_as(&gateway, "?accept=application/json", &credentials).await;
    let root: Value = serde_json::from_str(&root).unwrap();
    let id = root["authenticated_user"]["id"].as_str().unwrap();
    get_as(&gateway, "/vms", &credentials).await;
    let logs = captured_logs();
    assert!(
        logs.contains(&format!("upstream_user_id=\"{id}\"")),
        "no access-log line names {id}:\n{logs}"
    );
    // For the session one root and one user lookup, then the two requests.
    assert_eq!(sim_stats(&sim).await["api_requests"], 4);
}

/// Under a Manager's public prefix, the SSO endpoint is the gateway's too, for that Manager: the
/// client gets a gateway token, never the Manager's own.
#[tokio::test]
async fn prefixed_sso_endpoint_is_the_gateways() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = start_gateway(&gateway_text(&manager(
        "east",
        &sim.api_url(),
        "prefix = \"/east\"",
    )))
    .await;
    let request = http::Request::post(format!(
        "http://{}/east/ovirt-engine/sso/oauth/token",
        gateway.public_addr()
    ))
    .header("accept", "application/json")
    .header("content-type", "application/x-www-form-urlencoded")
    .body(full(
        "grant_type=password&scope=ovirt-app-api&username=user0%40internal&password=password0",
    ))
    .unwrap();
    let (status, _, body) = send(request).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "not a gateway JWT: {token}");
    let request = http::Request::get(format!(
        "http://{}/east/ovirt-engine/api/vms",
        gateway.public_addr()
    ))
    .header("authorization", format!("Bearer {token}"))
    .body(GatewayBody::empty())
    .unwrap();
    assert_eq!(send(request).await.0, StatusCode::OK);
}

/// Repeating a wrong password at the gateway's SSO endpoint reaches the Manager once.
#[tokio::test]
async fn wrong_password_at_the_sso_endpoint_is_remembered() {
    let (sim, _dir) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    for _ in 0..3 {
        let (status, answer) = gateway_grant(&gateway, "user0@internal", "wrong").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["error_code"], "access_denied");
    }
    assert_eq!(sim_stats(&sim).await["failed_logins"], 1);
}
