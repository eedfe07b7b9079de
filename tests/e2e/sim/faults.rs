//! Fault injection at the simulator (`/sim/faults`): errors, resets before and during the body,
//! stalls, and the settings themselves.

use super::*;

/// POSTs fault settings to /sim/faults.
fn set_faults(sim: &RunningSim, faults: &Value) -> Call {
    raw(sim, "/sim/faults").post_json(faults)
}

/// Sets faults that every later API request suffers.
async fn inject(sim: &RunningSim, faults: Value) {
    set_faults(sim, &faults)
        .send()
        .await
        .expect(200, "application/json");
}

fn content_length(response: &http::Response<hyper::body::Incoming>) -> usize {
    response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `error_rate: 1` makes every API request a 503; the health check still answers 200.
#[tokio::test]
async fn error_rate_fails_the_api_but_not_health() {
    let sim = simulator().await;
    inject(&sim, json!({"error_rate": 1, "error_status": 503})).await;
    for path in ["", "/vms"] {
        assert_eq!(api(&sim, path).send().await.status, 503, "{path}");
    }
    let health = raw(&sim, "/ovirt-engine/services/health").send().await;
    assert_eq!(
        health.expect(200, "text/html").text(),
        "DB Up!Welcome to Health Status!"
    );
}

/// A reset before the body: the client gets no response at all.
#[tokio::test]
async fn reset_before_body_is_a_connection_error() {
    let sim = simulator().await;
    inject(&sim, json!({"reset_rate": 1, "reset_phase": "before_body"})).await;
    let error = api(&sim, "/vms").exchange().await.unwrap_err();
    assert!(!error.is_connect(), "{error}");
}

/// A reset during the body: the headers and half the body arrive, then the body fails.
#[tokio::test]
async fn reset_during_body_truncates_it() {
    let sim = simulator().await;
    inject(&sim, json!({"reset_rate": 1, "reset_phase": "during_body"})).await;
    let response = api(&sim, "").exchange().await.unwrap();
    assert_eq!(response.status(), 200);
    let length = content_length(&response);
    let mut body = response.into_body();
    let mut received = 0;
    let error = loop {
        match body.frame().await.expect("the body fails before its end") {
            Ok(frame) => received += frame.into_data().map_or(0, |d| d.len()),
            Err(error) => break error,
        }
    };
    assert_eq!(received, length / 2, "{error}");
}

/// A stall: half of the body arrives, then nothing more, ever.
#[tokio::test(start_paused = true)]
async fn stall_keeps_the_body_open() {
    let sim = simulator().await;
    inject(&sim, json!({"stall_rate": 1})).await;
    let response = api(&sim, "").exchange().await.unwrap();
    let length = content_length(&response);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first.len(), length / 2);
    // Time is paused: the timeout fires as soon as nothing else can happen.
    let next = tokio::time::timeout(Duration::from_secs(3600), body.frame()).await;
    assert!(next.is_err(), "the body went on: {next:?}");
}

/// Out-of-range or unknown fault settings are a 400 naming the field, and change nothing.
#[tokio::test]
async fn bad_fault_settings_are_refused() {
    let sim = simulator().await;
    for (faults, field) in [
        (json!({"error_rate": 2}), "error_rate"),
        (json!({"error_status": 404}), "error_status"),
        (json!({"latency_ms": [50, 10]}), "latency_ms"),
        (json!({"stall_ratio": 1}), "stall_ratio"),
    ] {
        let error = set_faults(&sim, &faults).send().await;
        let error = error.expect(400, "application/json").json();
        assert_contains(error["error"].as_str().unwrap(), field);
    }
    let current = raw(&sim, "/sim/faults").send().await.json();
    assert_eq!(current["error_rate"], 0.0);
    assert_eq!(current["error_status"], 503);
}

/// GET /sim/faults shows the settings last posted, defaults filled in.
#[tokio::test]
async fn fault_settings_are_shown() {
    let sim = simulator().await;
    inject(&sim, json!({"latency_ms": [10, 50], "error_rate": 0.25})).await;
    assert_eq!(
        raw(&sim, "/sim/faults")
            .send()
            .await
            .expect(200, "application/json")
            .json(),
        json!({
            "latency_ms": [10, 50], "error_rate": 0.25, "error_status": 503,
            "reset_rate": 0.0, "reset_phase": "before_body", "stall_rate": 0.0, "leak_token": null,
        })
    );
}
