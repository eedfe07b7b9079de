//! Basic credentials exchanged for the Manager's SSO tokens, against the simulator: one login per
//! user, refusals and outages answered correctly, nothing secret logged.

use std::time::Duration;

use base64::Engine;
use http::StatusCode;
use ovirt_gateway::Running;
use ovirt_gateway::sim::RunningSim;
use serde_json::Value;

use crate::support::*;

/// A simulator whose only users are `user0@internal`/`password0`, `user1@internal`/`password1`, ...
/// (UserRole on vm-00001; any user may read the API).
async fn simulator_with_users(users: usize) -> (RunningSim, UsersFile) {
    let mut text = String::new();
    for n in 0..users {
        text.push_str(&format!(
            "[[user]]\nname = \"user{n}@internal\"\npassword = \"password{n}\"\ngrants = [{{ role = \"UserRole\", on = \"vm:vm-00001\" }}]\n\n"
        ));
    }
    let file = UsersFile::new(&text);
    let sim = simulator_with(|o| o.users = Some(file.path.clone())).await;
    (sim, file)
}

/// The configuration of a gateway in front of `sim` with the default `[auth]` (no Bearer
/// pass-through).
fn before(sim: &RunningSim) -> GatewayConfig {
    GatewayConfig::new()
        .manager("sim", &sim.api_url())
        .passthrough(false)
}

/// A gateway in front of `sim` with the default `[auth]`.
async fn gateway_before(sim: &RunningSim) -> Running {
    before(sim).start().await
}

/// A gateway in front of a Manager that is down, with the default `[auth]`.
async fn gateway_before_down() -> Running {
    GatewayConfig::new()
        .manager("down", &down_manager_url().await)
        .passthrough(false)
        .start()
        .await
}

/// A GET of an API path through the gateway.
fn through(gateway: &Running, path: &str) -> Call {
    Call::to(gateway, &format!("/ovirt-engine/api{path}"))
}

/// Every token at the simulator dies, as on an engine restart.
async fn revoke_all(sim: &RunningSim) {
    raw(sim, "/sim/revoke-all").method("POST").send().await;
}

/// 200 concurrent Basic requests from 10 users make exactly 10 logins at the Manager, and none of
/// them reaches it as a Basic login.
#[tokio::test]
async fn one_login_per_user() {
    let (sim, _users) = simulator_with_users(10).await;
    let gateway = gateway_before(&sim).await;
    let requests = (0..200).map(|i| {
        let user = i % 10;
        let gateway = &gateway;
        async move {
            let call =
                through(gateway, "").basic(&format!("user{user}@internal"), &format!("password{user}"));
            call.send().await.status
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
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let vms = || through(&gateway, "/vms").basic("user0@internal", "password0");
    assert_eq!(vms().send().await.status, StatusCode::OK);
    revoke_all(&sim).await;
    assert_eq!(vms().send().await.status, StatusCode::OK);
    assert_eq!(sim_stats(&sim).await["sso_logins"], 2);
}

/// A wrong password is a 401 with the engine's challenge and a fault naming the user; repeating
/// it within the failure cache does not reach the Manager again.
#[tokio::test]
async fn wrong_password_is_remembered() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    for _ in 0..5 {
        let reply = through(&gateway, "/vms")
            .basic("user0@internal", "wrong")
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.headers["www-authenticate"], "Basic realm=\"RESTAPI\"");
        assert_eq!(reply.reason(), "Unauthorized");
        assert_contains(reply.text(), "user0@internal");
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
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let reply = through(&gateway, "/vms").basic("user0", "password0").send().await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_contains(reply.text(), "user@profile");
    assert_eq!(sim_stats(&sim).await["failed_logins"], 0);
}

/// Basic credentials that are not base64 of `user:password` are a 401 fault.
#[tokio::test]
async fn malformed_basic_is_401() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let reply = through(&gateway, "/vms")
        .header("authorization", "Basic %%%")
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.headers["www-authenticate"], "Basic realm=\"RESTAPI\"");
    assert_contains(reply.text(), "not valid Basic credentials");
}

/// When the Manager cannot be reached to log in, the answer is 503, never 401 (the SDK would log
/// in again in a loop).
#[tokio::test]
async fn manager_down_during_login_is_503() {
    let gateway = gateway_before_down().await;
    let reply = through(&gateway, "/vms")
        .basic("user0@internal", "password0")
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.headers.contains_key("retry-after"));
    assert_eq!(reply.reason(), "Manager SSO unavailable");
}

/// A Bearer token the gateway did not issue is a 401 fault from the gateway; the Manager never
/// sees it.
#[tokio::test]
async fn foreign_bearer_is_refused() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let reply = through(&gateway, "/vms")
        .header("authorization", SECRET_BEARER)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.headers["www-authenticate"], "Basic realm=\"RESTAPI\"");
    assert_contains(reply.text(), "not issued by this gateway");
    assert_eq!(sim_stats(&sim).await["api_requests"], 0);
}

/// The passwords of logins through the gateway and the gateway's tokens never reach its logs (the
/// Managers' tokens are sent as sensitive header values and never formatted).
#[tokio::test]
async fn no_password_or_token_in_logs() {
    let (sim, _users) = simulator_with_users(2).await;
    let gateway = gateway_before(&sim).await;
    through(&gateway, "/vms")
        .basic("user1@internal", "password1")
        .send()
        .await;
    through(&gateway, "/vms")
        .basic("user1@internal", "not-the-password-1")
        .send()
        .await;
    let answer = gateway_grant(&gateway, "user0@internal", "password0")
        .await
        .json();
    let token = answer["access_token"].as_str().unwrap().to_owned();
    through(&gateway, "/vms").bearer(&token).send().await;
    let form = format!("scope=ovirt-app-api&token={token}");
    gateway_form(&gateway, "/ovirt-engine/services/sso-logout", &form).await;
    let logs = captured_logs();
    assert!(
        logs.contains("user1@internal"),
        "the access log names the user:\n{logs}"
    );
    let basic = credentials("user1@internal", "password1");
    let basic_value = basic.trim_start_matches("Basic ");
    let signature = token.rsplit('.').next().unwrap().to_owned();
    for secret in [
        "password0",
        "password1",
        "not-the-password-1",
        basic_value,
        &token,
        &signature,
    ] {
        assert!(!logs.contains(secret), "`{secret}` was logged");
    }
}

/// A password grant at the gateway, as the SDK sends it; the answer, asserted to be JSON.
async fn gateway_grant(gateway: &Running, user: &str, password: &str) -> Reply {
    let reply = gateway_login(gateway, user, password).await;
    assert_eq!(reply.headers["content-type"], "application/json");
    reply
}

/// A form POST to one of the gateway's SSO services.
async fn gateway_form(gateway: &Running, path: &str, form: &str) -> Reply {
    Call::to(gateway, path).form(form).accept_json().send().await
}

/// The gateway answers the SDK's login itself, in the engine's shape, with its own token: a JWT
/// whose claims are subject, session, issue and expiry times, and nothing of the Manager's.
#[tokio::test]
async fn gateway_answers_the_password_grant() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let reply = gateway_grant(&gateway, "user0@internal", "password0").await;
    assert_eq!(reply.status, StatusCode::OK);
    let answer = reply.json();
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
    let reply = through(&gateway, "/vms").bearer(token).send().await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(sim_stats(&sim).await["sso_logins"], 1);
}

/// A refused login at the gateway's endpoint is the engine's 400 JSON with the Manager's message.
#[tokio::test]
async fn gateway_grant_refusal_has_the_engine_shape() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let reply = gateway_grant(&gateway, "user0@internal", "wrong").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let answer = reply.json();
    assert_eq!(answer["error_code"], "access_denied");
    assert!(
        answer["error"].as_str().unwrap().contains("user0@internal"),
        "{answer}"
    );
    let reply = gateway_grant(&gateway, "user0", "password0").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let answer = reply.json();
    assert!(
        answer["error"].as_str().unwrap().contains("No valid profile"),
        "{answer}"
    );
}

/// When the Manager's SSO cannot be reached, the gateway's endpoint answers 503 with an SSO
/// error (the SDK raises it), never an access denial.
#[tokio::test]
async fn gateway_grant_with_the_manager_down_is_503() {
    let gateway = gateway_before_down().await;
    let reply = gateway_grant(&gateway, "user0@internal", "password0").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["error_code"], "server_error");
}

/// token-info in validate mode: `{}` for a live gateway token, invalid_grant for anything else.
#[tokio::test]
async fn gateway_token_info_validates() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let answer = gateway_grant(&gateway, "user0@internal", "password0")
        .await
        .json();
    let token = answer["access_token"].as_str().unwrap();
    let path = "/ovirt-engine/sso/oauth/token-info";
    let form = |token: &str| format!("scope=ovirt-ext%3Dtoken-info%3Avalidate&token={token}");
    let valid = gateway_form(&gateway, path, &form(token)).await;
    assert_eq!(
        (valid.status, valid.json()),
        (StatusCode::OK, serde_json::json!({}))
    );
    let forged = gateway_form(&gateway, path, &form("forged")).await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    assert_eq!(forged.json()["error"], "invalid_grant");
}

/// sso-logout ends the login and revokes its token at the Manager; the gateway token is then
/// refused by the gateway itself.
#[tokio::test]
async fn gateway_logout_revokes_upstream() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let answer = gateway_grant(&gateway, "user0@internal", "password0")
        .await
        .json();
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(sim_stats(&sim).await["active_tokens"], 1);
    let form = format!("scope=ovirt-app-api&token={token}");
    let logout = gateway_form(&gateway, "/ovirt-engine/services/sso-logout", &form).await;
    assert_eq!(
        (logout.status, logout.json()),
        (StatusCode::OK, serde_json::json!({}))
    );
    let stats = sim_stats(&sim).await;
    assert_eq!(
        (stats["active_tokens"].clone(), stats["revoked_tokens"].clone()),
        (0.into(), 1.into())
    );
    let reply = through(&gateway, "/vms").bearer(token).send().await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_contains(reply.text(), "log in again");
}

/// When the Manager forgets the upstream token, a gateway-token client gets the 401 (it holds no
/// password: the SDK logs in again itself) and its login ends.
#[tokio::test]
async fn forgotten_upstream_token_ends_the_login() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let answer = gateway_grant(&gateway, "user0@internal", "password0")
        .await
        .json();
    let token = answer["access_token"].as_str().unwrap();
    revoke_all(&sim).await;
    assert_eq!(
        through(&gateway, "/vms").bearer(token).send().await.status,
        StatusCode::UNAUTHORIZED
    );
    let requests = sim_stats(&sim).await["api_requests"].clone();
    let reply = through(&gateway, "/vms").bearer(token).send().await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_contains(reply.text(), "log in again");
    assert_eq!(sim_stats(&sim).await["api_requests"], requests);
}

/// Shutdown revokes the Managers' tokens of every open session and login.
#[tokio::test]
async fn shutdown_revokes_upstream_tokens() {
    let (sim, _users) = simulator_with_users(2).await;
    let gateway = gateway_before(&sim).await;
    through(&gateway, "/vms")
        .basic("user0@internal", "password0")
        .send()
        .await;
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
    let (sim, _users) = simulator_with_users(3).await;
    let gateway = before(&sim).auth("max_sessions = 1").start().await;
    let vms_as = |user: usize| {
        through(&gateway, "/vms").basic(&format!("user{user}@internal"), &format!("password{user}"))
    };
    for user in 0..3 {
        assert_eq!(vms_as(user).send().await.status, StatusCode::OK);
    }
    eventually(Duration::from_secs(10), async || {
        sim_stats(&sim).await["revoked_tokens"].as_u64().unwrap() == 2
    })
    .await;
    let logins = sim_stats(&sim).await["sso_logins"].clone();
    assert_eq!(vms_as(2).send().await.status, StatusCode::OK);
    assert_eq!(sim_stats(&sim).await["sso_logins"], logins);
}

/// `Prefer: persistent-auth` gets the gateway's own HttpOnly cookie on the API path, never the
/// Manager's JSESSIONID; the cookie then stands for the credentials.
#[tokio::test]
async fn persistent_auth_gets_the_gateway_cookie() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let reply = through(&gateway, "")
        .basic("user0@internal", "password0")
        .persistent()
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let cookies: Vec<&str> = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let (pair, attributes) = cookies[0].split_once(';').unwrap();
    assert!(pair.starts_with("OVIRT_GATEWAY_SESSION="), "{pair}");
    assert_eq!(attributes, " Path=/ovirt-engine/api; HttpOnly");
    let logins = sim_stats(&sim).await["sso_logins"].clone();
    let by_cookie = through(&gateway, "/vms").cookie(pair).persistent().send().await;
    assert_eq!(by_cookie.status, StatusCode::OK);
    assert_eq!(sim_stats(&sim).await["sso_logins"], logins);
    assert_eq!(sim_stats(&sim).await["active_sessions"], 0);
}

/// The cookie without `Prefer: persistent-auth` ends the session, as on the engine.
#[tokio::test]
async fn cookie_without_prefer_ends_the_session() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let login = through(&gateway, "")
        .basic("user0@internal", "password0")
        .persistent()
        .send()
        .await;
    let cookie = login.header("set-cookie").split(';').next().unwrap();
    through(&gateway, "")
        .cookie(cookie)
        .basic("user0@internal", "password0")
        .send()
        .await;
    let reply = through(&gateway, "").cookie(cookie).persistent().send().await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

/// No credentials at all: 401 with the engine's challenge, from the gateway.
#[tokio::test]
async fn no_credentials_is_401() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let reply = through(&gateway, "/vms").send().await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.headers["www-authenticate"], "Basic realm=\"RESTAPI\"");
    assert_eq!(sim_stats(&sim).await["api_requests"], 0);
}

/// After the Manager forgets every token, a Basic POST with a small body (adding a VM) is resent
/// after one fresh login and succeeds.
#[tokio::test]
async fn small_post_is_resent_after_a_fresh_login() {
    let sim = simulator().await;
    let gateway = gateway_before(&sim).await;
    let root = through(&gateway, "").by("admin").send().await;
    assert_eq!(root.status, StatusCode::OK);
    revoke_all(&sim).await;
    let reply = through(&gateway, "/vms")
        .by("admin")
        .post("<vm><name>resent</name><cluster><name>cluster-1</name></cluster></vm>")
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(sim_stats(&sim).await["sso_logins"], 2);
}

/// Beyond `max_logins_per_user`, a user's oldest login ends: its gateway token stops working and
/// its Manager token is revoked; the newer logins keep working.
#[tokio::test]
async fn oldest_login_of_a_user_makes_room() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = before(&sim).auth("max_logins_per_user = 2").start().await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let answer = gateway_grant(&gateway, "user0@internal", "password0")
            .await
            .json();
        tokens.push(answer["access_token"].as_str().unwrap().to_owned());
    }
    let stats = sim_stats(&sim).await;
    assert_eq!(
        (stats["active_tokens"].clone(), stats["revoked_tokens"].clone()),
        (2.into(), 1.into())
    );
    let status = async |token: &str| through(&gateway, "/vms").bearer(token).send().await.status;
    assert_eq!(status(&tokens[0]).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&tokens[1]).await, StatusCode::OK);
    assert_eq!(status(&tokens[2]).await, StatusCode::OK);
}

/// The principal carries the user's id at the Manager, learned once per session from the API
/// root (and its name from the user's entity), and the access log names it.
#[tokio::test]
async fn principal_knows_the_upstream_user_id() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    let as_user0 = |path: &str| through(&gateway, path).basic("user0@internal", "password0");
    let root = as_user0("?accept=application/json").send().await.json();
    let id = root["authenticated_user"]["id"].as_str().unwrap();
    as_user0("/vms").send().await;
    let logs = captured_logs();
    assert!(
        logs.contains(&format!("upstream_user_id={id}")),
        "no access-log line names {id}:\n{logs}"
    );
    // For the session one root and one user lookup, then the two requests.
    assert_eq!(sim_stats(&sim).await["api_requests"], 4);
}

/// Under a Manager's public prefix, the SSO endpoint is the gateway's too, for that Manager: the
/// client gets a gateway token, never the Manager's own.
#[tokio::test]
async fn prefixed_sso_endpoint_is_the_gateways() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = GatewayConfig::new()
        .manager_with("east", &sim.api_url(), "prefix = \"/east\"")
        .passthrough(false)
        .start()
        .await;
    let reply = Call::to(&gateway, "/east/ovirt-engine/sso/oauth/token")
        .accept_json()
        .form("grant_type=password&scope=ovirt-app-api&username=user0%40internal&password=password0")
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let answer = reply.json();
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "not a gateway JWT: {token}");
    let vms = Call::to(&gateway, "/east/ovirt-engine/api/vms")
        .bearer(token)
        .send()
        .await;
    assert_eq!(vms.status, StatusCode::OK);
}

/// Repeating a wrong password at the gateway's SSO endpoint reaches the Manager once.
#[tokio::test]
async fn wrong_password_at_the_sso_endpoint_is_remembered() {
    let (sim, _users) = simulator_with_users(1).await;
    let gateway = gateway_before(&sim).await;
    for _ in 0..3 {
        let reply = gateway_grant(&gateway, "user0@internal", "wrong").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["error_code"], "access_denied");
    }
    assert_eq!(sim_stats(&sim).await["failed_logins"], 1);
}
