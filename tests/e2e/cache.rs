//! The GET response cache through the gateway: users never see each other's answers, writes evict
//! what they touched before their client sees the answer, identical misses make one upstream
//! request, large answers stream through uncached, and what changes a body changes the entry.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use ovirt_gateway::sim::RunningSim;
use proptest::prelude::*;

use crate::support::*;

/// `[cache]` on, rate limits off: these tests hammer the gateway on purpose
/// (tests/e2e/ratelimit.rs tests them).
fn cached(config: GatewayConfig) -> GatewayConfig {
    config.rate_limit("enabled = false").table("cache")
}

/// A gateway in front of the simulator with `[cache]`, users logging in with Basic.
fn sim_gateway(sim: &RunningSim) -> GatewayConfig {
    cached(GatewayConfig::new().manager("sim", &sim.api_url())).passthrough(false)
}

/// A gateway in front of a test upstream with `[cache]`, passing the suite's token through.
fn upstream_gateway(upstream: &TestUpstream) -> GatewayConfig {
    cached(GatewayConfig::new().manager("engine", &upstream.url()))
}

/// What a user got: the status and the body.
#[derive(Debug, PartialEq)]
struct Answer {
    status: StatusCode,
    body: String,
}

fn cache_status(headers: &HeaderMap) -> &str {
    headers.get("cache-status").map_or("", |v| v.to_str().unwrap())
}

/// The root carries the time of the answer; everything else must be the same.
fn without_time(body: &str) -> String {
    match (body.find("<time>"), body.find("</time>")) {
        (Some(start), Some(end)) => format!("{}{}", &body[..start], &body[end..]),
        _ => body.to_owned(),
    }
}

/// alice and bob see different, filtered views of the same URLs. In random interleavings of
/// concurrent requests through one cache, each always gets exactly what the simulator answers
/// them directly (the root without its time), and never the other's.
#[test]
fn users_never_see_each_others_answers() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_sim, gateway, urls, truth) = runtime.block_on(async {
        let sim = simulator().await;
        let gateway = sim_gateway(&sim).start().await;
        let direct = sim.addr();
        let alices_vm = {
            let reply = Call::to(direct, "/ovirt-engine/api/vms?max=1")
                .by("alice@internal")
                .send()
                .await;
            let body = reply.text();
            let start = body.find(" id=\"").unwrap() + 5;
            body[start..start + 36].to_owned()
        };
        let urls: Vec<(String, &str)> = vec![
            ("/ovirt-engine/api".into(), "application/xml"),
            ("/ovirt-engine/api/vms".into(), "application/xml"),
            ("/ovirt-engine/api/vms".into(), "application/json"),
            (
                "/ovirt-engine/api/vms?search=status%3Ddown".into(),
                "application/xml",
            ),
            (format!("/ovirt-engine/api/vms/{alices_vm}"), "application/xml"),
            ("/ovirt-engine/api/clusters".into(), "application/json"),
        ];
        let mut truth = Vec::new();
        for user in ["alice@internal", "bob@internal"] {
            let mut answers = Vec::new();
            for (url, accept) in &urls {
                let reply = Call::to(direct, url).by(user).accept(accept).send().await;
                answers.push(Answer {
                    status: reply.status,
                    body: without_time(reply.text()),
                });
            }
            truth.push(answers);
        }
        assert_ne!(truth[0][1], truth[1][1], "alice and bob see different VMs");
        assert_ne!(
            truth[0][4].status, truth[1][4].status,
            "bob may not see alice's VM"
        );
        (sim, gateway, urls, truth)
    });
    let addr = gateway.public_addr();
    let urls = Arc::new(urls);
    let truth = Arc::new(truth);
    let order = prop::collection::vec((0..2usize, 0..urls.len()), 20..60);
    proptest!(ProptestConfig::with_cases(16), |(order in order)| {
        runtime.block_on(async {
            let requests = order.into_iter().map(|(user, url)| {
                let (urls, truth) = (urls.clone(), truth.clone());
                tokio::spawn(async move {
                    let name = ["alice@internal", "bob@internal"][user];
                    let (path, accept) = &urls[url];
                    let reply = Call::to(addr, path).by(name).accept(accept).send().await;
                    assert_eq!(
                        Answer { status: reply.status, body: without_time(reply.text()) },
                        truth[user][url],
                        "{name} {path} {accept} ({})",
                        cache_status(&reply.headers)
                    );
                })
            });
            for request in futures_util::future::join_all(requests).await {
                request.unwrap();
            }
        });
    });
    let metrics = runtime.block_on(metrics(&gateway));
    assert!(
        counter(&metrics, "gateway_cache_requests_total{result=\"hit\"}") > 0,
        "{metrics}"
    );
}

/// An action through the gateway evicts the entity before its answer returns: the next GET
/// shows the new status, though the entity was cached a moment before.
#[tokio::test]
async fn a_write_evicts_before_its_answer_returns() {
    let sim = simulator().await;
    let gateway = sim_gateway(&sim)
        .section("[cache.ttl]\nentity = \"10m\"\ncollection = \"10m\"")
        .start()
        .await;
    let addr = gateway.public_addr();
    let alice = |path: &str| Call::to(addr, path).by("alice@internal");
    let down = alice("/ovirt-engine/api/vms?search=status%3Ddown&max=1")
        .send()
        .await;
    let body = down.text();
    let start = body.find(" id=\"").unwrap() + 5;
    let vm = format!("/ovirt-engine/api/vms/{}", &body[start..start + 36]);
    let listing = "/ovirt-engine/api/vms";
    for path in [vm.as_str(), listing, vm.as_str(), listing] {
        alice(path).send().await;
    }
    let cached = alice(&vm).send().await;
    assert!(
        cache_status(&cached.headers).contains("hit"),
        "{}",
        cache_status(&cached.headers)
    );
    assert_contains(cached.text(), "<status>down</status>");
    let started = alice(&format!("{vm}/start")).post("<action/>").send().await;
    assert_eq!(started.status, StatusCode::OK);
    let now = alice(&vm).send().await;
    assert!(
        !cache_status(&now.headers).contains("hit"),
        "{}",
        cache_status(&now.headers)
    );
    assert!(!now.text().contains("<status>down</status>"), "{}", now.text());
    let relisted = alice(listing).send().await;
    assert!(
        !cache_status(&relisted.headers).contains("hit"),
        "the listing was evicted too"
    );
    let metrics = metrics(&gateway).await;
    assert!(
        counter(&metrics, "gateway_cache_evictions_total{reason=\"invalidated\"}") >= 2,
        "{metrics}"
    );
}

/// 100 identical GETs at once make one request to the simulator; every client gets its answer.
#[tokio::test]
async fn identical_gets_at_once_make_one_upstream_request() {
    let sim = simulator().await;
    let gateway = sim_gateway(&sim).start().await;
    let addr = gateway.public_addr();
    // Log in first, so that only the GETs are counted.
    Call::to(addr, "/ovirt-engine/api/clusters")
        .by("admin@internal")
        .send()
        .await;
    // Slow answers: the GETs overlap.
    raw(&sim, "/sim/faults")
        .method("POST")
        .body(r#"{"latency_ms": 300}"#)
        .send()
        .await;
    let before = sim_stats(&sim).await["api_requests"].as_u64().unwrap();
    let requests = (0..100).map(|_| {
        let call = Call::to(addr, "/ovirt-engine/api/vms?max=5").by("admin@internal");
        tokio::spawn(call.send())
    });
    let answers = futures_util::future::join_all(requests).await;
    let first = &answers[0].as_ref().unwrap().body;
    for answer in &answers {
        let reply = answer.as_ref().unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(&reply.body, first);
    }
    let after = sim_stats(&sim).await["api_requests"].as_u64().unwrap();
    assert_eq!(after - before, 1);
    let metrics = metrics(&gateway).await;
    assert_eq!(
        counter(&metrics, "gateway_cache_requests_total{result=\"hit\"}")
            + counter(&metrics, "gateway_cache_requests_total{result=\"miss\"}"),
        101,
        "{metrics}"
    );
}

/// Waiters wait for the first request, which is at the Manager: exactly one arrives there.
#[tokio::test]
async fn waiters_share_the_first_answer() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = upstream_gateway(&upstream).start().await;
    let addr = gateway.public_addr();
    let requests: Vec<_> = (0..20)
        .map(|_| tokio::spawn(Call::to(addr, "/ovirt-engine/api/hold").secrets().send()))
        .collect();
    upstream.wait_held().await;
    // Every other request is waiting for the first before it is released.
    eventually(std::time::Duration::from_secs(10), async || {
        counter(&metrics(&gateway).await, "gateway_cache_coalesced_total") == 19
    })
    .await;
    upstream.release();
    for request in futures_util::future::join_all(requests).await {
        let reply = request.unwrap();
        assert_eq!((reply.status, reply.text()), (StatusCode::OK, "released"));
        assert!(
            cache_status(&reply.headers).contains("stored") || cache_status(&reply.headers).contains("hit")
        );
    }
    assert_eq!(upstream.holds(), 1);
    let metrics = metrics(&gateway).await;
    assert_eq!(
        counter(&metrics, "gateway_cache_requests_total{result=\"hit\"}"),
        19,
        "{metrics}"
    );
}

/// When the first answer is not stored, nothing is shared: every waiter asks the Manager itself,
/// all at once rather than one after another.
#[tokio::test]
async fn waiters_ask_for_themselves_when_nothing_was_stored() {
    let upstream = TestUpstream::start("engine").await;
    // "released" is 8 bytes: too large to store.
    let gateway = upstream_gateway(&upstream)
        .set("cache", "max_entry_bytes = 4")
        .start()
        .await;
    let addr = gateway.public_addr();
    let requests: Vec<_> = (0..5)
        .map(|_| tokio::spawn(Call::to(addr, "/ovirt-engine/api/hold").secrets().send()))
        .collect();
    upstream.wait_held().await;
    eventually(std::time::Duration::from_secs(10), async || {
        counter(&metrics(&gateway).await, "gateway_cache_coalesced_total") == 4
    })
    .await;
    upstream.release();
    // The four waiters are at the Manager together.
    eventually(std::time::Duration::from_secs(10), async || upstream.holds() == 5).await;
    upstream.release();
    for request in futures_util::future::join_all(requests).await {
        let reply = request.unwrap();
        assert_eq!((reply.status, reply.text()), (StatusCode::OK, "released"));
        assert_eq!(
            cache_status(&reply.headers),
            "ovirt-gateway; fwd=miss; detail=too-large"
        );
    }
}

/// An answer larger than `max_entry_bytes` streams to the client before the Manager has sent it
/// all, and is not stored.
#[tokio::test]
async fn an_oversize_answer_streams_through_uncached() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = upstream_gateway(&upstream)
        .set("cache", "max_entry_bytes = 4096")
        .start()
        .await;
    let addr = gateway.public_addr();
    let response = Call::to(addr, "/ovirt-engine/api/trickle/10000")
        .secrets()
        .exchange()
        .await
        .unwrap();
    assert_eq!(
        cache_status(response.headers()),
        "ovirt-gateway; fwd=miss; detail=too-large"
    );
    let mut body = response.into_body();
    let mut received = 0;
    // The first half arrives while the second is still held at the upstream.
    while received < 10_000 {
        let frame = body.frame().await.unwrap().unwrap();
        received += frame.data_ref().map_or(0, |d| d.len());
    }
    upstream.release();
    while let Some(frame) = body.frame().await {
        received += frame.unwrap().data_ref().map_or(0, |d| d.len());
    }
    assert_eq!(received, 20_000);
    let headers = Call::to(addr, "/ovirt-engine/api/download/8000")
        .secrets()
        .send()
        .await
        .headers;
    assert_eq!(
        cache_status(&headers),
        "ovirt-gateway; fwd=miss; detail=too-large"
    );
    let metrics = metrics(&gateway).await;
    assert_eq!(counter(&metrics, "gateway_cache_entries"), 0, "{metrics}");
}

/// `Cache-Control: no-store` from the Manager is not stored; from the client, the request is not
/// looked up; `no-cache` from the client refreshes the entry.
#[tokio::test]
async fn no_store_and_no_cache_are_honoured() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = upstream_gateway(&upstream).start().await;
    let addr = gateway.public_addr();
    let seen = |path: &str| {
        upstream
            .seen()
            .iter()
            .filter(|s| s.path_and_query.ends_with(path))
            .count()
    };
    for _ in 0..2 {
        let headers = Call::to(addr, "/ovirt-engine/api/no-store")
            .secrets()
            .send()
            .await
            .headers;
        assert_eq!(cache_status(&headers), "ovirt-gateway; fwd=miss; detail=no-store");
    }
    assert_eq!(seen("/no-store"), 2);
    let path = "/ovirt-engine/api/vms";
    let statuses = [
        (vec![], "ovirt-gateway; fwd=miss; stored", 1),
        (vec![], "ovirt-gateway; hit", 1),
        (
            vec![("cache-control", "no-store")],
            "ovirt-gateway; fwd=request",
            2,
        ),
        (
            vec![("cache-control", "no-cache")],
            "ovirt-gateway; fwd=request; stored",
            3,
        ),
        (
            vec![("pragma", "no-cache")],
            "ovirt-gateway; fwd=request; stored",
            4,
        ),
        (vec![("if-none-match", "\"x\"")], "ovirt-gateway; fwd=request", 5),
        (vec![], "ovirt-gateway; hit", 5),
    ];
    for (headers, expected, upstream_requests) in statuses {
        let reply = Call::to(addr, path).secrets().headers(&headers).send().await;
        assert_eq!(reply.status, StatusCode::OK, "never a 304");
        let answer = reply.headers;
        assert!(
            cache_status(&answer).starts_with(expected),
            "{headers:?}: {}",
            cache_status(&answer)
        );
        assert_eq!(seen("/vms"), upstream_requests, "{headers:?}");
    }
}

/// A hit never replays the Correlation-Id of the request that filled the entry: it carries the
/// one the Manager would echo (the client's, sanitised as the engine does, or a fresh one).
#[tokio::test]
async fn a_hit_carries_its_own_correlation_id() {
    let sim = simulator().await;
    let gateway = sim_gateway(&sim).start().await;
    let addr = gateway.public_addr();
    let path = "/ovirt-engine/api/clusters";
    let first = Call::to(addr, path)
        .by("admin@internal")
        .header("correlation-id", "first-request")
        .send()
        .await
        .headers;
    assert_eq!(first["correlation-id"], "first-request");
    let hit = Call::to(addr, path).by("admin@internal").send().await.headers;
    assert_eq!(cache_status(&hit).split(';').nth(1), Some(" hit"));
    assert_ne!(hit["correlation-id"], "first-request");
    let hit = Call::to(addr, path)
        .by("admin@internal")
        .header("correlation-id", "second!request")
        .send()
        .await
        .headers;
    assert_eq!(hit["correlation-id"], "secondrequest");
    assert!(!hit.contains_key("set-cookie"));
}

/// Every header that changes the body makes its own entry, and so do the `/v4` form, `?accept=`
/// and matrix parameters.
#[tokio::test]
async fn varying_headers_make_their_own_entries() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = upstream_gateway(&upstream).start().await;
    let addr = gateway.public_addr();
    let path = "/ovirt-engine/api/vms";
    Call::to(addr, path).secrets().send().await;
    let hit = Call::to(addr, path).secrets().send().await.headers;
    assert!(cache_status(&hit).contains("hit"));
    let before = upstream.seen().len();
    for (name, value) in [
        ("filter", "true"),
        ("all-content", "true"),
        ("accept", "application/json"),
        ("accept", "application/xml; detail=disks"),
        ("accept-language", "fr"),
        ("version", "4"),
    ] {
        let miss = Call::to(addr, path)
            .secrets()
            .header(name, value)
            .send()
            .await
            .headers;
        assert!(cache_status(&miss).contains("fwd=miss"), "{name}: {value}");
        let hit = Call::to(addr, path)
            .secrets()
            .header(name, value)
            .send()
            .await
            .headers;
        assert!(cache_status(&hit).contains("hit"), "{name}: {value}");
    }
    for other in [
        "/ovirt-engine/api/v4/vms",
        "/ovirt-engine/api/vms?accept=application/json",
        "/ovirt-engine/api/vms;max=1",
    ] {
        let miss = Call::to(addr, other).secrets().send().await.headers;
        assert!(cache_status(&miss).contains("fwd=miss"), "{other}");
    }
    assert_eq!(upstream.seen().len(), before + 9);
}

/// Entries leave when their answers may no longer be reused; the gauges follow.
#[tokio::test]
async fn metrics_follow_the_entries() {
    let upstream = TestUpstream::start("engine").await;
    let gateway = upstream_gateway(&upstream).start().await;
    let addr = gateway.public_addr();
    Call::to(addr, "/ovirt-engine/api/vms/1").secrets().send().await;
    Call::to(addr, "/ovirt-engine/api/vms/1/nics")
        .secrets()
        .send()
        .await;
    let metrics_now = metrics(&gateway).await;
    assert_eq!(counter(&metrics_now, "gateway_cache_entries"), 2, "{metrics_now}");
    assert!(counter(&metrics_now, "gateway_cache_bytes") > 0);
    Call::to(addr, "/ovirt-engine/api/vms/1/nics/2")
        .secrets()
        .delete()
        .send()
        .await;
    eventually(std::time::Duration::from_secs(10), async || {
        counter(&metrics(&gateway).await, "gateway_cache_entries") == 0
    })
    .await;
    let metrics_now = metrics(&gateway).await;
    assert_eq!(counter(&metrics_now, "gateway_cache_bytes"), 0, "{metrics_now}");
    assert_eq!(
        counter(
            &metrics_now,
            "gateway_cache_evictions_total{reason=\"invalidated\"}"
        ),
        2,
        "{metrics_now}"
    );
    let miss = Call::to(addr, "/ovirt-engine/api/vms/1")
        .secrets()
        .send()
        .await
        .headers;
    assert!(cache_status(&miss).contains("fwd=miss"));
    let hit = Call::to(addr, "/ovirt-engine/api/vms/1")
        .secrets()
        .send()
        .await
        .headers;
    assert!(cache_status(&hit).contains("hit"));
}
