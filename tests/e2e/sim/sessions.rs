//! Sessions and authentication failures at the simulator: `Prefer: persistent-auth` cookies,
//! their lifetime and end, missing credentials and the `Version` header.

use super::*;

/// `Prefer: persistent-auth` with Basic sets `JSESSIONID=..; Path=/ovirt-engine/api; HttpOnly`.
#[tokio::test]
async fn persistent_auth_sets_the_session_cookie() {
    let sim = simulator().await;
    let reply = api(&sim, "").persistent().send().await;
    let cookie = reply.header("set-cookie");
    let (pair, attributes) = cookie.split_once(';').unwrap();
    assert!(
        pair.len() > "JSESSIONID=".len() && pair.starts_with("JSESSIONID="),
        "{cookie}"
    );
    assert_eq!(attributes, " Path=/ovirt-engine/api; HttpOnly");
}

/// Under TLS (`self_signed`) the session cookie is also `Secure`.
#[tokio::test]
async fn session_cookie_is_secure_under_tls() {
    let sim = simulator_with(|o| o.self_signed = true).await;
    let reply = api(&sim, "").persistent().send().await;
    let (_, attributes) = reply.header("set-cookie").split_once(';').unwrap();
    assert_eq!(attributes, " Path=/ovirt-engine/api; Secure; HttpOnly");
}

/// The cookie with `Prefer: persistent-auth` and no Authorization is served without a new login.
#[tokio::test]
async fn session_cookie_replaces_credentials() {
    let sim = simulator().await;
    let session = open_session(&sim).await;
    let logins = sim_stats(&sim).await["basic_logins"].clone();
    let reply = api(&sim, "/vms")
        .anonymous()
        .persistent()
        .cookie(&session)
        .send()
        .await;
    let reply = reply.expect(200, "application/xml");
    assert_eq!(vm_names(&reply).len(), 50);
    assert!(reply.headers.get("set-cookie").is_none());
    assert_eq!(sim_stats(&sim).await["basic_logins"], logins);
}

/// A request carrying the cookie without `Prefer: persistent-auth` ends the session.
#[tokio::test]
async fn cookie_without_prefer_ends_the_session() {
    let sim = simulator().await;
    let session = open_session(&sim).await;
    api(&sim, "").cookie(&session).xml().await;
    let reply = api(&sim, "")
        .anonymous()
        .persistent()
        .cookie(&session)
        .send()
        .await;
    assert_eq!(reply.status, 401);
}

/// `Session-TTL: 1` (minutes) on the login makes the session die after one idle minute, not 180.
#[tokio::test(start_paused = true)]
async fn session_ttl_sets_the_idle_lifetime() {
    let sim = simulator().await;
    let reply = api(&sim, "").persistent().header("session-ttl", "1").send().await;
    let session = reply.header("set-cookie").split(';').next().unwrap().to_owned();
    let by_cookie = || api(&sim, "").anonymous().persistent().cookie(&session);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(by_cookie().send().await.status, 200);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(by_cookie().send().await.status, 401);
}

/// `Prefer: persistent-auth, new-auth` ignores the session: without credentials it is a 401.
#[tokio::test]
async fn new_auth_ignores_the_session() {
    let sim = simulator().await;
    let session = open_session(&sim).await;
    let reply = api(&sim, "")
        .anonymous()
        .header("prefer", "persistent-auth, new-auth")
        .cookie(&session)
        .send()
        .await;
    assert_eq!(reply.status, 401);
}

/// No credentials: 401 with `WWW-Authenticate: Basic realm="RESTAPI"` and an HTML body.
#[tokio::test]
async fn missing_credentials_are_401_html() {
    let sim = simulator().await;
    let reply = api(&sim, "/vms")
        .anonymous()
        .send()
        .await
        .expect(401, "text/html");
    assert_eq!(reply.header("www-authenticate"), "Basic realm=\"RESTAPI\"");
    assert_contains(reply.text(), "Unauthorized");
}

/// `Version: 4` is served and `Version: 3` is a 400 (4.4 has no v3).
#[tokio::test]
async fn only_version_4_is_served() {
    let sim = simulator().await;
    api(&sim, "").header("version", "4").xml().await;
    let reply = api(&sim, "").header("version", "3").send().await;
    assert_eq!(reply.status, 400);
}
