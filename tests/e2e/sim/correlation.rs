//! The Correlation-Id header: echoed, sanitised as the engine does, generated when absent.

use super::*;

/// A Correlation-Id is echoed as sent.
#[tokio::test]
async fn correlation_id_is_echoed() {
    let sim = simulator().await;
    let reply = api(&sim, "").header("correlation-id", "run-42_a").send().await;
    assert_eq!(reply.header("correlation-id"), "run-42_a");
}

/// Characters outside `[0-9a-zA-Z_-]` are dropped and the id is cut at 36 characters.
#[tokio::test]
async fn correlation_id_is_sanitised() {
    let sim = simulator().await;
    let echo = async |sent: &str| {
        let reply = api(&sim, "").header("correlation-id", sent).send().await;
        reply.header("correlation-id").to_owned()
    };
    assert_eq!(echo("a.b:c/d e-f_g").await, "abcde-f_g");
    let at_limit = "x".repeat(36);
    assert_eq!(echo(&at_limit).await, at_limit);
    assert_eq!(echo(&format!("{at_limit}y")).await, at_limit);
}

/// Without a Correlation-Id each answer carries a new UUID.
#[tokio::test]
async fn correlation_id_is_generated_when_absent() {
    let sim = simulator().await;
    let first = api(&sim, "").send().await.header("correlation-id").to_owned();
    let second = api(&sim, "").send().await.header("correlation-id").to_owned();
    let lengths: Vec<usize> = first.split('-').map(str::len).collect();
    assert_eq!(lengths, [8, 4, 4, 4, 12], "{first}");
    assert_ne!(first, second);
}
