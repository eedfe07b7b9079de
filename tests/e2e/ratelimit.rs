//! Rate limits through the gateway, against the simulator: a refused request is a 429 fault with
//! Retry-After and the RateLimit headers that never reaches the Manager; users pay by request
//! class; overrides apply; logins are limited by address before the Manager is asked.
//! (Burst and refill timing are unit-tested with paused time in src/ratelimit.rs.)

use http::StatusCode;
use ovirt_gateway::GatewayBody;
use ovirt_gateway::Running;
use ovirt_gateway::sim::RunningSim;

use crate::support::*;

/// A gateway in front of `sim` with `limits` (TOML keys of `[rate_limit]` and its tables),
/// refusing at once over a bucket (`max_delay = "0s"`) unless the limits say otherwise.
async fn gateway(sim: &RunningSim, limits: &str) -> Running {
    let text = config_text("", &manager("sim", &sim.api_url(), "")).replace(PASSTHROUGH, "");
    start_gateway(&format!("{text}\n{}\n", without_delay(limits))).await
}

fn without_delay(limits: &str) -> String {
    if limits.contains("max_delay") {
        return limits.to_owned();
    }
    match limits.strip_prefix("[rate_limit]\n") {
        Some(rest) => format!("[rate_limit]\nmax_delay = \"0s\"\n{rest}"),
        None => format!("[rate_limit]\nmax_delay = \"0s\"\n{limits}"),
    }
}

async fn get_as(
    addr: std::net::SocketAddr,
    user: &str,
    path: &str,
    accept: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let request = http::Request::get(format!("http://{addr}/ovirt-engine/api{path}"))
        .header("authorization", basic(user))
        .header("accept", accept)
        .body(GatewayBody::empty())
        .unwrap();
    let (status, headers, body) = send(request).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// Past the address's burst: 429 with Retry-After, RateLimit-Policy and RateLimit, and an oVirt
/// fault in the client's representation; the Manager never sees the request.
#[tokio::test]
async fn refusals_are_429_faults_with_the_ratelimit_headers() {
    let sim = simulator().await;
    let gateway = gateway(&sim, "[rate_limit.per_ip]\nrate = 1\nburst = 3\n").await;
    let addr = gateway.public_addr();
    for _ in 0..3 {
        assert_eq!(
            get_as(addr, "admin@internal", "/clusters", "application/xml")
                .await
                .0,
            StatusCode::OK
        );
    }
    let before = sim_stats(&sim).await["api_requests"].clone();
    let (status, headers, body) = get_as(addr, "admin@internal", "/clusters", "application/xml").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["ratelimit-policy"], "\"ip\";q=3;w=3");
    assert_eq!(headers["ratelimit"], "\"ip\";r=0;t=1");
    assert_eq!(fault_reason(body.as_bytes()), "Too many requests");
    assert!(
        body.contains("The gateway allows this address 3 requests at once and 1 per second"),
        "{body}"
    );
    let (status, headers, body) = get_as(addr, "admin@internal", "/clusters", "application/json").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["content-type"], "application/json");
    let fault: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(fault["reason"], "Too many requests");
    assert_eq!(sim_stats(&sim).await["api_requests"], before);
    let metrics = metrics(&gateway).await;
    assert_eq!(
        counter(
            &metrics,
            "gateway_ratelimit_decisions_total{result=\"limited\",scope=\"ip\"}"
        ),
        2,
        "{metrics}"
    );
}

/// Users pay by class from their own bucket: a listing costs more than an entity; an override
/// gives one user more; another user is not affected.
#[tokio::test]
async fn users_pay_by_class_and_overrides_apply() {
    let sim = simulator().await;
    let limits = "[rate_limit.per_user]\nrate = 1\nburst = 10\n\
                  [rate_limit.costs]\ncollection = 6\nentity = 4\n\
                  [[rate_limit.user]]\nname = \"admin@internal\"\nrate = 1\nburst = 100\n";
    let gateway = gateway(&sim, limits).await;
    let addr = gateway.public_addr();
    let (_, _, listing) = get_as(addr, "alice@internal", "/vms?max=1", "application/xml").await;
    let start = listing.find(" id=\"").unwrap() + 5;
    let vm = format!("/vms/{}", &listing[start..start + 36]);
    // 6 taken by the listing above: another listing (6) is over the burst of 10, an entity (4) is not.
    let (status, headers, _) = get_as(addr, "alice@internal", "/vms", "application/xml").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["ratelimit-policy"], "\"user\";q=10;w=10");
    assert_eq!(
        get_as(addr, "alice@internal", &vm, "application/xml").await.0,
        StatusCode::OK
    );
    assert_eq!(
        get_as(addr, "alice@internal", &vm, "application/xml").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // bob has his own bucket; admin has an override.
    assert_eq!(
        get_as(addr, "bob@internal", "/vms", "application/xml").await.0,
        StatusCode::OK
    );
    for _ in 0..10 {
        assert_eq!(
            get_as(addr, "admin@internal", "/vms", "application/xml").await.0,
            StatusCode::OK
        );
    }
}

/// Logins at the gateway's SSO endpoint are limited by address before the Manager is asked.
#[tokio::test]
async fn logins_are_limited_by_address() {
    let sim = simulator().await;
    let gateway = gateway(&sim, "[rate_limit.per_ip]\nrate = 1\nburst = 2\n").await;
    let addr = gateway.public_addr();
    let login = || {
        http::Request::post(format!("http://{addr}/ovirt-engine/sso/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(full(
                "grant_type=password&scope=ovirt-app-api&username=admin%40internal&password=admin",
            ))
            .unwrap()
    };
    for _ in 0..2 {
        assert_eq!(send(login()).await.0, StatusCode::OK);
    }
    let before = sim_stats(&sim).await["sso_logins"].clone();
    let (status, headers, _) = send(login()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(sim_stats(&sim).await["sso_logins"], before);
}

/// `enabled = false` turns every limit off.
#[tokio::test]
async fn limits_can_be_turned_off() {
    let sim = simulator().await;
    let gateway = gateway(
        &sim,
        "[rate_limit]\nenabled = false\n[rate_limit.per_ip]\nrate = 1\nburst = 1\n",
    )
    .await;
    let addr = gateway.public_addr();
    for _ in 0..5 {
        assert_eq!(
            get_as(addr, "admin@internal", "/clusters", "application/xml")
                .await
                .0,
            StatusCode::OK
        );
    }
}

/// A Manager gets at most `inflight` requests at once; the next ones wait in its queue; with the
/// queue full, or after waiting `wait`, a request is a 503 fault with Retry-After that is never
/// sent; the gauges follow.
#[tokio::test]
async fn a_busy_manager_refuses_with_503() {
    let upstream = TestUpstream::start("engine").await;
    let text = config_text("", &manager("engine", &upstream.url(), ""))
        + "\n[rate_limit.manager]\ninflight = 1\nqueue = 1\nwait = \"1s\"\n";
    let gateway = start_gateway(&text).await;
    let addr = gateway.public_addr();
    let series = |name: &str| format!("gateway_manager_{name}{{manager=\"engine\"}}");
    let held = tokio::spawn(get(addr, "/ovirt-engine/api/hold"));
    upstream.wait_held().await;
    assert_eq!(counter(&metrics(&gateway).await, &series("inflight")), 1);
    let seen = upstream.seen().len();
    let waiting = tokio::spawn(get(addr, "/ovirt-engine/api/vms"));
    eventually(std::time::Duration::from_secs(10), async || {
        counter(&metrics(&gateway).await, &series("queued")) == 1
    })
    .await;
    let (status, headers, body) = get(addr, "/ovirt-engine/api/vms").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(fault_reason(&body), "Manager busy");
    assert!(String::from_utf8_lossy(&body).contains("too many requests are waiting"));
    // The waiter's second runs out while the first request is still held.
    let (status, _, body) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(String::from_utf8_lossy(&body).contains("no place came free in time"));
    assert_eq!(upstream.seen().len(), seen);
    upstream.release();
    assert_eq!(held.await.unwrap().0, StatusCode::OK);
    assert_eq!(get(addr, "/ovirt-engine/api/vms").await.0, StatusCode::OK);
    eventually(std::time::Duration::from_secs(10), async || {
        let metrics = metrics(&gateway).await;
        counter(&metrics, &series("inflight")) == 0 && counter(&metrics, &series("queued")) == 0
    })
    .await;
}

/// Failed logins lock the user out from that address: with Basic and at the SSO endpoint, the
/// next login, even with the right password, is a 429 before the Manager is asked.
#[tokio::test]
async fn failed_logins_lock_out_before_the_manager_is_asked() {
    let sim = simulator().await;
    let gateway = gateway(
        &sim,
        "[rate_limit.logins]\nfailures = 3\nlockout = \"1h\"\nmax_lockout = \"1h\"\n",
    )
    .await;
    let addr = gateway.public_addr();
    let wrong = |user: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:wrong"))
        )
    };
    let basic_get = |authorization: String| {
        http::Request::get(format!("http://{addr}/ovirt-engine/api"))
            .header("authorization", authorization)
            .body(GatewayBody::empty())
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(
            send(basic_get(wrong("alice@internal"))).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let before = sim_stats(&sim).await["sso_logins"].clone();
    let (status, headers, body) = send(basic_get(basic("alice@internal"))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "3600");
    assert_eq!(fault_reason(&body), "Too many failed logins");
    assert_eq!(sim_stats(&sim).await["sso_logins"], before);
    // bob is not affected.
    assert_eq!(send(basic_get(basic("bob@internal"))).await.0, StatusCode::OK);

    let login = |password: &str| {
        http::Request::post(format!("http://{addr}/ovirt-engine/sso/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(full(format!(
                "grant_type=password&scope=ovirt-app-api&username=carol%40internal&password={password}"
            )))
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(send(login("wrong")).await.0, StatusCode::BAD_REQUEST);
    }
    let before = sim_stats(&sim).await["sso_logins"].clone();
    let (status, headers, body) = send(login("carol")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "3600");
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["error_code"], "access_denied");
    assert_eq!(sim_stats(&sim).await["sso_logins"], before);
    assert_eq!(
        counter(&metrics(&gateway).await, "gateway_login_lockouts_total"),
        2
    );
}

/// A group override applies to the members of that group in the policies' entities (carol is in
/// ops), not to others.
#[tokio::test]
async fn group_overrides_follow_the_policy_groups() {
    let sim = simulator().await;
    let policies = shipped_policies();
    let limits = format!(
        "[policy]\ndir = \"{}\"\n\n[rate_limit.per_user]\nrate = 1\nburst = 4\n\
         [rate_limit.costs]\ncollection = 2\n\
         [[rate_limit.group]]\nname = \"ops\"\nrate = 1\nburst = 40\n",
        policies.path().display()
    );
    let gateway = gateway(&sim, &limits).await;
    let addr = gateway.public_addr();
    for _ in 0..10 {
        assert_eq!(
            get_as(addr, "carol@internal", "/vms", "application/xml").await.0,
            StatusCode::OK
        );
    }
    for expected in [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
        assert_eq!(
            get_as(addr, "alice@internal", "/vms", "application/xml").await.0,
            expected
        );
    }
}

/// New limits apply to the requests that follow a reload; the buckets keep their state; turning
/// limits off needs a restart.
#[tokio::test]
async fn reloaded_limits_apply_at_once() {
    let sim = simulator().await;
    let base = config_text("", &manager("sim", &sim.api_url(), "")).replace(PASSTHROUGH, "");
    let with = |limits: &str| {
        ovirt_gateway::Config::from_toml(
            &format!("{base}\n{}\n", without_delay(limits)),
            std::path::Path::new("."),
        )
        .unwrap()
    };
    let gateway = start_gateway(&format!(
        "{base}\n{}\n",
        without_delay("[rate_limit.per_ip]\nrate = 1\nburst = 2\n")
    ))
    .await;
    let addr = gateway.public_addr();
    for expected in [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
        assert_eq!(
            get_as(addr, "admin@internal", "/clusters", "application/xml")
                .await
                .0,
            expected
        );
    }
    let later = gateway
        .reload_rate_limits(&with(
            "[rate_limit]\nmax_keys = 10\n[rate_limit.per_ip]\nrate = 1\nburst = 20\n[rate_limit.manager]\ninflight = 2\n",
        ))
        .unwrap();
    // The gate is resized at once; the bound on the buckets waits for the next start.
    assert_eq!(later, ["rate_limit.max_keys"]);
    // The bucket kept its two units used: 18 more.
    for _ in 0..18 {
        assert_eq!(
            get_as(addr, "admin@internal", "/clusters", "application/xml")
                .await
                .0,
            StatusCode::OK
        );
    }
    assert_eq!(
        get_as(addr, "admin@internal", "/clusters", "application/xml")
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let off = gateway.reload_rate_limits(&with("[rate_limit]\nenabled = false\n"));
    assert!(off.unwrap_err().contains("needs a restart"));
}

/// One user flooding a Manager holds at most its share of the gate: another user's requests
/// all succeed and never wait behind the flood. The bound: every one of them answers within
/// 1 s, where the Manager takes 200 ms each; first come, first served behind the flood's 80
/// requests on 8 places, each would wait about 2 s.
#[tokio::test]
async fn one_user_cannot_fill_a_manager() {
    let sim = simulator().await;
    let gateway = gateway(
        &sim,
        "[rate_limit.manager]\ninflight = 8\nper_user_inflight = 3\nlogin_inflight = 1\n\
         [rate_limit.per_user]\nrate = 1000\nburst = 1000\n",
    )
    .await;
    let addr = gateway.public_addr();
    // Both users logged in first, then every answer slowed to 200 ms.
    assert_eq!(
        get_as(addr, "admin@internal", "/vms?max=1", "application/xml")
            .await
            .0,
        200
    );
    assert_eq!(
        get_as(addr, "alice@internal", "/vms?max=1", "application/xml")
            .await
            .0,
        200
    );
    let origin = sim.api_url().replace("/ovirt-engine/api", "");
    let faults = http::Request::post(format!("{origin}/sim/faults"))
        .body(full(r#"{"latency_ms": 200}"#))
        .unwrap();
    send(faults).await;
    let flood: Vec<_> = (0..80)
        .map(|_| tokio::spawn(get_as(addr, "admin@internal", "/vms?max=1", "application/xml")))
        .collect();
    eventually(std::time::Duration::from_secs(10), async || {
        counter(
            &metrics(&gateway).await,
            "gateway_manager_queued{manager=\"sim\"}",
        ) > 0
    })
    .await;
    let mut slowest = std::time::Duration::ZERO;
    for _ in 0..10 {
        let started = tokio::time::Instant::now();
        let (status, _, _) = get_as(addr, "alice@internal", "/vms?max=1", "application/xml").await;
        assert_eq!(status, 200);
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "alice waited {slowest:?}"
    );
    for request in flood {
        assert_eq!(request.await.unwrap().0, 200);
    }
}

/// Over its bucket, a sequential client is slowed to the rate and never refused; many requests
/// at once beyond what `max_delay` can absorb are refused with 429.
#[tokio::test]
async fn requests_over_the_rate_wait_before_they_are_refused() {
    let sim = simulator().await;
    let gateway = gateway(
        &sim,
        "[rate_limit]\nmax_delay = \"1s\"\n[rate_limit.per_user]\nrate = 20\nburst = 5\n\
         [rate_limit.costs]\ncollection = 1\n",
    )
    .await;
    let addr = gateway.public_addr();
    let started = tokio::time::Instant::now();
    for _ in 0..30 {
        let (status, _, body) = get_as(addr, "admin@internal", "/clusters", "application/xml").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // 25 past the burst at 20 a second (the first one logs in, and costs nothing more).
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
    let text = metrics(&gateway).await;
    let series =
        |result: &str| format!("gateway_ratelimit_decisions_total{{result=\"{result}\",scope=\"user\"}}");
    assert!(counter(&text, &series("delayed")) >= 20, "{text}");
    assert_eq!(counter(&text, &series("limited")), 0);
    // Sixty at once: the burst, then what fits in a second of delay; the rest refused.
    let at_once: Vec<_> = (0..60)
        .map(|_| tokio::spawn(get_as(addr, "admin@internal", "/clusters", "application/xml")))
        .collect();
    let mut refused = 0;
    for request in at_once {
        let (status, headers, _) = request.await.unwrap();
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
            assert!(headers.contains_key("retry-after"));
        } else {
            assert_eq!(status, StatusCode::OK);
        }
    }
    assert!((20..=55).contains(&refused), "{refused} refused");
}
