//! Credentials, session keys and the expiry timer.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;

use super::*;

fn authenticator() -> Authenticator {
    authenticator_idle_for(Duration::from_secs(60))
}

fn authenticator_idle_for(idle: Duration) -> Authenticator {
    Authenticator::new(
        &AuthConfig {
            session_idle: idle,
            session_lifetime: Duration::from_secs(60),
            max_sessions: 10,
            max_logins_per_user: 10,
            failure_cache: Duration::from_secs(1),
            token_key: None,
            bearer_passthrough: false,
            console_files: crate::config::ConsoleFiles::Refuse,
            resend_body_bytes: 0,
        },
        Arc::new(Metrics::new()),
        None,
        Vec::new(),
    )
    .unwrap()
}

fn basic(raw: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(raw))).unwrap()
}

/// `user@profile:password` is Basic credentials; the password may contain colons.
#[test]
fn basic_credentials() {
    let credentials = authenticator()
        .basic_credentials(&basic("alice@internal:pa:ss"))
        .unwrap()
        .unwrap();
    assert_eq!(credentials.user, "alice@internal");
    assert_eq!(credentials.password, "pa:ss");
}

/// Another scheme is not Basic and not an error here.
#[test]
fn bearer_is_not_basic() {
    let value = HeaderValue::from_static("Bearer abc");
    assert!(authenticator().basic_credentials(&value).unwrap().is_none());
}

/// Bad base64 and a missing colon are malformed credentials (401).
#[test]
fn malformed_basic() {
    for value in [HeaderValue::from_static("Basic !!!"), basic("no-colon")] {
        let error = authenticator().basic_credentials(&value).err().unwrap();
        assert_eq!(error, AuthError::Malformed);
    }
}

/// A user name without `@profile` is refused before any login, naming the problem.
#[test]
fn user_without_profile() {
    let error = authenticator()
        .basic_credentials(&basic("admin:secret"))
        .err()
        .unwrap();
    assert!(error.to_string().contains("user@profile"), "{error}");
    assert!(!error.to_string().contains("secret"));
}

/// The password never shows in Debug output.
#[test]
fn credentials_debug_hides_the_password() {
    let credentials = authenticator()
        .basic_credentials(&basic("a@b:hunter2"))
        .unwrap()
        .unwrap();
    assert!(!format!("{credentials:?}").contains("hunter2"));
}

/// Session keys differ by Manager, user and password, and do not depend on where one part
/// ends and the next begins.
#[test]
fn session_keys_separate_their_parts() {
    let auth = authenticator();
    let credentials = |user: &str, password: &str| BasicCredentials {
        user: user.into(),
        password: password.into(),
    };
    let key = auth.key("m", &credentials("a@i", "p"));
    assert_eq!(key, auth.key("m", &credentials("a@i", "p")));
    assert_ne!(key, auth.key("n", &credentials("a@i", "p")));
    assert_ne!(key, auth.key("m", &credentials("a@i", "q")));
    assert_ne!(
        auth.key("m", &credentials("a@i", "bc")),
        auth.key("m", &credentials("a@ib", "c"))
    );
}

/// Sessions and logins end on the timer, with nothing else happening: a login idle past
/// `session_idle`, a session in use past `session_lifetime`; each counted and (in the
/// background) revoked.
#[tokio::test(start_paused = true)]
async fn sessions_and_logins_expire_on_the_timer() {
    let auth = Arc::new(authenticator_idle_for(Duration::from_secs(30)));
    let config = crate::config::Config::from_toml(
        "[listen]\naddress = \"127.0.0.1:0\"\nplain_http = true\n\
         [[manager]]\nname = \"m\"\nurl = \"http://127.0.0.1:9/ovirt-engine/api\"\n",
        std::path::Path::new("."),
    )
    .unwrap();
    let upstream = Arc::new(Upstream::new(config.managers[0].clone()).unwrap());
    let credentials = BasicCredentials {
        user: "alice@internal".into(),
        password: "secret".into(),
    };
    let key = auth.key(upstream.name(), &credentials);
    let session = Session {
        user: credentials.user.clone(),
        token: UpstreamToken::new("upstream-session".into()),
        user_id: None,
        upstream: upstream.clone(),
        lease: Lease::new(),
    };
    auth.sessions.insert(key, Arc::new(session)).await;
    let login = Login::empty(&credentials.user);
    auth.logins.insert("sid".into(), Arc::new(login)).await;
    let expired = auth.metrics.sessions_ended_total.with_label_values(&["expired"]);
    let sweeper = tokio::spawn(auth.clone().expire_on_timer());
    // At 20 s the session is used, the login is not.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(auth.session(&upstream, &credentials, None).await.is_ok());
    // Idle since 0 s, the login ends at 30 s; the session, used at 20 s, lives on.
    tokio::time::sleep(Duration::from_millis(11_500)).await;
    assert_eq!(expired.get(), 1);
    assert!(auth.logins.get("sid").await.is_none());
    assert!(auth.sessions.get(&key).await.is_some());
    // Used every 20 s, the session still ends at its lifetime, 60 s.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(auth.session(&upstream, &credentials, None).await.is_ok());
    tokio::time::sleep(Duration::from_secs(21)).await;
    assert_eq!(expired.get(), 2);
    assert!(auth.sessions.get(&key).await.is_none());
    sweeper.abort();
}
