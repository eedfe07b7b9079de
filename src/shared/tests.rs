//! What needs no store: the key, sealing, the channel's messages, failing fast while the store
//! is down. The rest is tested against a real redis-server (tests/e2e/replicas.rs).

use std::io::Write;

use super::*;
use crate::config::{Secret, Store};

/// A client for a store nobody listens at, whose `shared.key` file holds `key`.
fn shared_with_key(key: &[u8]) -> Result<Arc<Shared>, String> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(key).unwrap();
    Shared::new(
        &SharedConfig {
            store: Store::Url("redis://127.0.0.1:1/".into()),
            ca_file: None,
            username: None,
            password: None,
            key: Secret::File(file.path().to_owned()),
            key_prefix: "test:".into(),
            timeout: Duration::from_millis(100),
            check_interval: Duration::from_secs(1),
            degraded_ttl: Duration::from_secs(5),
            replicas: 3,
            sync_interval: Duration::from_millis(200),
        },
        &Metrics::new(),
    )
}

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef\n";

/// A key of 32 bytes will do (a trailing newline does not count); 31 is refused, saying why.
#[tokio::test]
async fn key_of_at_least_32_bytes() {
    assert!(shared_with_key(KEY).is_ok());
    let error = shared_with_key(&KEY[..31]).err().unwrap();
    assert!(error.starts_with("shared.key: holds 31 bytes"), "{error}");
}

/// A sealed record opens under its own name with the same key, and not under another name
/// (a record copied elsewhere) or with another key (another deployment's replica).
#[tokio::test]
async fn sealed_records_open_only_as_sealed() {
    let (one, same) = (shared_with_key(KEY).unwrap(), shared_with_key(KEY).unwrap());
    let other = shared_with_key(b"another key of at least 32 bytes!").unwrap();
    let sealed = one.seal("test:session:a", b"the token");
    assert!(!sealed.windows(9).any(|w| w == b"the token"));
    assert_eq!(
        same.open("test:session:a", sealed.clone()).as_deref(),
        Some(&b"the token"[..])
    );
    assert_eq!(one.open("test:session:b", sealed.clone()), None);
    assert_eq!(other.open("test:session:a", sealed), None);
    assert_eq!(one.open("test:session:a", vec![1, 2, 3]), None);
}

/// Two seals of the same value differ (a fresh nonce each).
#[tokio::test]
async fn seals_differ() {
    let shared = shared_with_key(KEY).unwrap();
    assert_ne!(shared.seal("r", b"v"), shared.seal("r", b"v"));
}

/// Replicas derive the same session secret from the same key, and another from another.
#[tokio::test]
async fn session_secrets_follow_the_key() {
    let tag = |s: &Shared| hmac::sign(s.session_secret(), b"x").as_ref().to_vec();
    let (one, same) = (shared_with_key(KEY).unwrap(), shared_with_key(KEY).unwrap());
    let other = shared_with_key(b"another key of at least 32 bytes!").unwrap();
    assert_eq!(tag(&one), tag(&same));
    assert_ne!(tag(&one), tag(&other));
}

/// Other replicas' messages on our channel are read; our own, another channel's, one sealed
/// under another key, or what is not a message, ignored.
#[test]
fn other_replicas_messages_of_our_channel_only() {
    let key = |k: &[u8; 32]| LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k).unwrap());
    let (ours, theirs) = (key(&[1; 32]), key(&[2; 32]));
    let bulk = |bytes: Vec<u8>| Value::BulkString(bytes);
    let written = |from: &str, key: &LessSafeKey, channel: &str| {
        let text = format!(r#"{{"from":"{from}","written":{{"manager":"m","collection":"vms","id":"1"}}}}"#);
        vec![
            bulk(channel.as_bytes().to_vec()),
            bulk(seal(key, channel, text.as_bytes())),
        ]
    };
    assert_eq!(
        message_of(&written("b", &ours, "p:events"), "p:events", "a", &ours),
        Some(Message::Written {
            manager: "m".into(),
            collection: "vms".into(),
            id: Some("1".into()),
        })
    );
    assert_eq!(
        message_of(&written("a", &ours, "p:events"), "p:events", "a", &ours),
        None
    );
    assert_eq!(
        message_of(&written("b", &theirs, "p:events"), "p:events", "a", &ours),
        None
    );
    assert_eq!(
        message_of(&written("b", &ours, "other"), "p:events", "a", &ours),
        None
    );
    let not_a_message = vec![
        bulk(b"p:events".to_vec()),
        bulk(seal(&ours, "p:events", b"{\"from\":\"b\"}")),
    ];
    assert_eq!(message_of(&not_a_message, "p:events", "a", &ours), None);
    assert_eq!(
        message_of(&[bulk(b"p:events".to_vec())], "p:events", "a", &ours),
        None
    );
}

/// Until a check has reached the store, every operation fails at once instead of waiting.
#[tokio::test]
async fn operations_fail_at_once_while_the_store_is_down() {
    let shared = shared_with_key(KEY).unwrap();
    assert!(!shared.is_up());
    assert_eq!(shared.fetch("test:session:a").await, Err(Unreachable));
    assert_eq!(
        shared
            .create("test:session:a", b"v", Duration::from_secs(1))
            .await,
        Err(Unreachable)
    );
    assert_eq!(
        shared.lock("test:lock", Duration::from_secs(1)).await,
        Err(Unreachable)
    );
    // Not attempted, so not failed either.
    for operation in ["fetch", "create", "lock"] {
        assert_eq!(
            shared.metrics.errors_total.with_label_values(&[operation]).get(),
            0
        );
    }
}

/// A check against a port nobody listens at fails, within the timeout, and counts an error.
#[tokio::test]
async fn a_check_of_a_missing_store_fails() {
    let shared = shared_with_key(KEY).unwrap();
    assert!(shared.check().await.is_err());
    assert_eq!(shared.metrics.errors_total.with_label_values(&["check"]).get(), 1);
}
