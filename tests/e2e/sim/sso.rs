//! The simulator's SSO as the engine's: the password grant and its refusals in both error
//! shapes, token-info, sso-logout, token lifetimes and the login counters.

use super::*;

/// The scope the engine grants for `ovirt-app-api`.
const API_SCOPE: &str = "ovirt-app-api ovirt-ext=token-info:authz-search \
    ovirt-ext=token-info:public-authz-search ovirt-ext=token-info:validate ovirt-ext=token:password-access";

/// Asserts a 400 SSO error and returns its JSON.
async fn sso_error(call: Call) -> Value {
    call.send().await.expect(400, "application/json").json()
}

/// Asserts a 400 SSO error in the REST-API shape, exactly `{"error_code","error"}` in the engine's
/// order, with this code; returns its message.
async fn sso_refusal(call: Call, code: &str) -> String {
    let error = sso_error(call).await;
    let fields: Vec<&String> = error.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["error_code", "error"], "{error}");
    assert_eq!(error["error_code"], code);
    error["error"].as_str().unwrap().to_owned()
}

/// A token grant has the engine's JSON shape: `exp` a string of Long.MAX_VALUE, no `expires_in`.
#[tokio::test]
async fn token_grant_has_the_engine_shape() {
    let sim = simulator().await;
    let reply = grant(&sim, &password_form("admin@internal", "admin"))
        .send()
        .await
        .expect(200, "application/json");
    assert_eq!(reply.header("content-length"), reply.body.len().to_string());
    let body = reply.json();
    let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["access_token", "scope", "exp", "token_type"]);
    assert!(!body["access_token"].as_str().unwrap().is_empty());
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], API_SCOPE);
    assert_eq!(body["exp"], "9223372036854775807");
}

/// An Accept header other than exactly `application/json` is an invalid_request.
#[tokio::test]
async fn token_grant_needs_the_exact_accept_header() {
    let sim = simulator().await;
    let call = grant(&sim, &password_form("admin@internal", "admin"))
        .header("accept", "application/json; charset=utf-8");
    let message = sso_refusal(call, "invalid_request").await;
    assert_eq!(message, "Missing parameter: 'Accept Header'");
}

/// A grant without grant_type is an invalid_request naming the parameter.
#[tokio::test]
async fn token_grant_without_grant_type_is_refused() {
    let sim = simulator().await;
    let call = grant(
        &sim,
        "scope=ovirt-app-api&username=admin%40internal&password=admin",
    );
    let message = sso_refusal(call, "invalid_request").await;
    assert_eq!(message, "Missing parameter: 'grant_type'");
}

/// A grant without username is an invalid_request naming the parameter.
#[tokio::test]
async fn token_grant_without_username_is_refused() {
    let sim = simulator().await;
    let call = grant(&sim, "grant_type=password&scope=ovirt-app-api&password=admin");
    let message = sso_refusal(call, "invalid_request").await;
    assert_eq!(message, "Missing parameter: 'username'");
}

/// A username without `@profile` is access_denied: "No valid profile found in credentials".
#[tokio::test]
async fn username_without_profile_is_denied() {
    let sim = simulator().await;
    let message = sso_refusal(grant(&sim, &password_form("admin", "admin")), "access_denied").await;
    assert_contains(&message, "No valid profile found in credentials");
}

/// A wrong password in the API scope is `{"error_code":"access_denied","error":...}`.
#[tokio::test]
async fn wrong_password_is_denied_in_the_api_shape() {
    let sim = simulator().await;
    let call = grant(&sim, &password_form("admin@internal", "wrong"));
    assert_eq!(
        sso_refusal(call, "access_denied").await,
        "Cannot authenticate user 'admin@internal': The username or password is incorrect.."
    );
}

/// Outside the REST-API scope the error has the OAuth shape `{"error","error_description"}`.
#[tokio::test]
async fn other_scopes_get_the_oauth_error_shape() {
    let sim = simulator().await;
    let form = "grant_type=password&scope=ovirt-app-admin&username=admin%40internal&password=wrong";
    let error = sso_error(grant(&sim, form)).await;
    let fields: Vec<&String> = error.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["error", "error_description"]);
    assert_eq!(error["error"], "access_denied");
}

/// A grant type other than password is unsupported_grant_type.
#[tokio::test]
async fn other_grant_types_are_unsupported() {
    let sim = simulator().await;
    let form = "grant_type=authorization_code&scope=ovirt-app-api&username=admin%40internal&password=admin";
    sso_refusal(grant(&sim, form), "unsupported_grant_type").await;
}

/// A token-info request in validate mode.
fn token_info(sim: &RunningSim, token: &str) -> Call {
    let form = format!("scope=ovirt-ext%3Dtoken-info%3Avalidate&token={}", encode(token));
    raw(sim, "/ovirt-engine/sso/oauth/token-info")
        .form(&form)
        .accept_json()
}

/// token-info in validate mode answers `{}` for a live token.
#[tokio::test]
async fn token_info_validates_a_live_token() {
    let sim = simulator().await;
    let token = token(&sim, "admin").await;
    let reply = token_info(&sim, &token).send().await;
    assert_eq!(reply.expect(200, "application/json").json(), json!({}));
}

/// token-info in validate mode answers invalid_grant, OAuth shape, for an unknown token.
#[tokio::test]
async fn token_info_rejects_an_unknown_token() {
    let sim = simulator().await;
    let error = sso_error(token_info(&sim, "bm90IGEgdG9rZW4=")).await;
    assert_eq!(error["error"], "invalid_grant");
    assert!(error["error_description"].is_string(), "{error}");
}

/// sso-logout revokes the token (the API then answers 401) and moves the token counters.
#[tokio::test]
async fn sso_logout_revokes_the_token() {
    let sim = simulator().await;
    let token = token(&sim, "admin").await;
    assert_eq!(root_status(&sim, &token).await, 200);
    let before = sim_stats(&sim).await;
    let form = format!("scope=ovirt-app-api&token={}", encode(&token));
    let reply = raw(&sim, "/ovirt-engine/services/sso-logout")
        .form(&form)
        .accept_json()
        .send()
        .await;
    assert_eq!(reply.expect(200, "application/json").json(), json!({}));
    let after = sim_stats(&sim).await;
    let moved = |counter: &str| {
        (
            before[counter].as_u64().unwrap(),
            after[counter].as_u64().unwrap(),
        )
    };
    assert_eq!(moved("active_tokens"), (1, 0));
    assert_eq!(moved("revoked_tokens"), (0, 1));
    assert_eq!(root_status(&sim, &token).await, 401);
}

/// A token used within its TTL keeps living: the timeout is one of inactivity, not age.
#[tokio::test(start_paused = true)]
async fn token_lives_while_it_is_used() {
    let sim = simulator_with(|o| o.token_ttl = Duration::from_secs(60)).await;
    let token = token(&sim, "admin").await;
    for _ in 0..3 {
        tokio::time::advance(Duration::from_secs(45)).await;
        assert_eq!(root_status(&sim, &token).await, 200);
    }
}

/// A token idle for exactly its TTL still works; idle a millisecond longer, it is 401.
#[tokio::test(start_paused = true)]
async fn token_dies_after_its_ttl_idle() {
    let ttl = Duration::from_secs(60);
    let sim = simulator_with(|o| o.token_ttl = ttl).await;
    let token = token(&sim, "admin").await;
    tokio::time::advance(ttl).await;
    assert_eq!(root_status(&sim, &token).await, 200);
    tokio::time::advance(ttl + Duration::from_millis(1)).await;
    assert_eq!(root_status(&sim, &token).await, 401);
}

/// /sim/revoke-all ends every token and persistent session, as an engine restart does.
#[tokio::test]
async fn revoke_all_ends_tokens_and_sessions() {
    let sim = simulator().await;
    let token = token(&sim, "admin").await;
    let session = open_session(&sim).await;
    let revoked = raw(&sim, "/sim/revoke-all").form("").send().await;
    assert_eq!(revoked.json(), json!({"revoked": 1}));
    assert_eq!(root_status(&sim, &token).await, 401);
    let by_cookie = api(&sim, "").anonymous().persistent().cookie(&session);
    assert_eq!(by_cookie.send().await.status, 401);
}

/// Every Basic request is a login of its own; a Bearer request is not; both count as API requests.
#[tokio::test]
async fn basic_logins_are_counted_per_request() {
    let sim = simulator().await;
    for _ in 0..3 {
        api(&sim, "").send().await.expect(200, "application/xml");
    }
    let token = token(&sim, "admin").await;
    assert_eq!(root_status(&sim, &token).await, 200);
    let stats = sim_stats(&sim).await;
    assert_eq!(stats["basic_logins"], 3);
    assert_eq!(stats["sso_logins"], 1);
    assert_eq!(stats["api_requests"], 4);
}
