//! Rate limits through the gateway, against the simulator: a refused request is a 429 fault with
//! Retry-After and the RateLimit headers that never reaches the Manager; users pay by request
//! class; overrides apply; logins are limited by address before the Manager is asked.
//! (Burst and refill timing are unit-tested with paused time in src/ratelimit.rs.)

use http::StatusCode;
use ovirt_gateway::sim::RunningSim;

use crate::support::*;

/// A gateway in front of `sim`, users logging in with Basic, refusing at once over a bucket
/// (`max_delay = "0s"`) unless a test sets it.
fn limited(sim: &RunningSim) -> GatewayConfig {
    GatewayConfig::new()
        .manager("sim", &sim.api_url())
        .passthrough(false)
        .rate_limit("max_delay = \"0s\"")
}

/// A GET of an API path as `user` (Basic) in XML.
fn as_user(addr: std::net::SocketAddr, user: &str, path: &str) -> Call {
    Call::to(addr, &format!("/ovirt-engine/api{path}"))
        .by(user)
        .accept("application/xml")
}

/// Past the address's burst: 429 with Retry-After, RateLimit-Policy and RateLimit, and an oVirt
/// fault in the client's representation; the Manager never sees the request.
#[tokio::test]
async fn refusals_are_429_faults_with_the_ratelimit_headers() {
    let sim = simulator().await;
    let gateway = limited(&sim)
        .section("[rate_limit.per_ip]\nrate = 1\nburst = 3\n")
        .start()
        .await;
    let addr = gateway.public_addr();
    for _ in 0..3 {
        assert_eq!(
            as_user(addr, "admin@internal", "/clusters").send().await.status,
            StatusCode::OK
        );
    }
    let before = sim_stats(&sim).await["api_requests"].clone();
    let refused = as_user(addr, "admin@internal", "/clusters").send().await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(refused.headers["ratelimit-policy"], "\"ip\";q=3;w=3");
    assert_eq!(refused.headers["ratelimit"], "\"ip\";r=0;t=1");
    assert_eq!(refused.reason(), "Too many requests");
    assert_contains(
        refused.text(),
        "The gateway allows this address 3 requests at once and 1 per second",
    );
    let refused = as_user(addr, "admin@internal", "/clusters")
        .accept_json()
        .send()
        .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers["content-type"], "application/json");
    let fault = refused.json();
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
    let gateway = limited(&sim).section(limits).start().await;
    let addr = gateway.public_addr();
    let listing = as_user(addr, "alice@internal", "/vms?max=1").send().await;
    let listing = listing.text();
    let start = listing.find(" id=\"").unwrap() + 5;
    let vm = format!("/vms/{}", &listing[start..start + 36]);
    // 6 taken by the listing above: another listing (6) is over the burst of 10, an entity (4) is not.
    let refused = as_user(addr, "alice@internal", "/vms").send().await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers["ratelimit-policy"], "\"user\";q=10;w=10");
    assert_eq!(
        as_user(addr, "alice@internal", &vm).send().await.status,
        StatusCode::OK
    );
    assert_eq!(
        as_user(addr, "alice@internal", &vm).send().await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // bob has his own bucket; admin has an override.
    assert_eq!(
        as_user(addr, "bob@internal", "/vms").send().await.status,
        StatusCode::OK
    );
    for _ in 0..10 {
        assert_eq!(
            as_user(addr, "admin@internal", "/vms").send().await.status,
            StatusCode::OK
        );
    }
}

/// Logins at the gateway's SSO endpoint are limited by address before the Manager is asked.
#[tokio::test]
async fn logins_are_limited_by_address() {
    let sim = simulator().await;
    let gateway = limited(&sim)
        .section("[rate_limit.per_ip]\nrate = 1\nburst = 2\n")
        .start()
        .await;
    let addr = gateway.public_addr();
    let login = || {
        Call::to(addr, "/ovirt-engine/sso/oauth/token")
            .form("grant_type=password&scope=ovirt-app-api&username=admin%40internal&password=admin")
            .accept_json()
            .send()
    };
    for _ in 0..2 {
        assert_eq!(login().await.status, StatusCode::OK);
    }
    let before = sim_stats(&sim).await["sso_logins"].clone();
    let refused = login().await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(sim_stats(&sim).await["sso_logins"], before);
}

/// `enabled = false` turns every limit off.
#[tokio::test]
async fn limits_can_be_turned_off() {
    let sim = simulator().await;
    let gateway = limited(&sim)
        .rate_limit("enabled = false")
        .section("[rate_limit.per_ip]\nrate = 1\nburst = 1")
        .start()
        .await;
    let addr = gateway.public_addr();
    for _ in 0..5 {
        assert_eq!(
            as_user(addr, "admin@internal", "/clusters").send().await.status,
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
    let gateway = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .section("[rate_limit.manager]\ninflight = 1\nqueue = 1\nwait = \"1s\"")
        .start()
        .await;
    let addr = gateway.public_addr();
    let series = |name: &str| format!("gateway_manager_{name}{{manager=\"engine\"}}");
    let get = |path: &str| Call::to(addr, path).secrets().send();
    let held = tokio::spawn(get("/ovirt-engine/api/hold"));
    upstream.wait_held().await;
    assert_eq!(counter(&metrics(&gateway).await, &series("inflight")), 1);
    let seen = upstream.seen().len();
    let waiting = tokio::spawn(get("/ovirt-engine/api/vms"));
    eventually(std::time::Duration::from_secs(10), async || {
        counter(&metrics(&gateway).await, &series("queued")) == 1
    })
    .await;
    let busy = get("/ovirt-engine/api/vms").await;
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.headers["retry-after"], "1");
    assert_eq!(busy.reason(), "Manager busy");
    assert!(busy.text().contains("too many requests are waiting"));
    // The waiter's second runs out while the first request is still held.
    let waited = waiting.await.unwrap();
    assert_eq!(waited.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(waited.text().contains("no place came free in time"));
    assert_eq!(upstream.seen().len(), seen);
    upstream.release();
    assert_eq!(held.await.unwrap().status, StatusCode::OK);
    assert_eq!(get("/ovirt-engine/api/vms").await.status, StatusCode::OK);
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
    let gateway = limited(&sim)
        .section("[rate_limit.logins]\nfailures = 3\nlockout = \"1h\"\nmax_lockout = \"1h\"")
        .start()
        .await;
    let addr = gateway.public_addr();
    let root = || Call::to(addr, "/ovirt-engine/api");
    for _ in 0..3 {
        assert_eq!(
            root().basic("alice@internal", "wrong").send().await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let before = sim_stats(&sim).await["sso_logins"].clone();
    let locked = root().by("alice@internal").send().await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.headers["retry-after"], "3600");
    assert_eq!(locked.reason(), "Too many failed logins");
    assert_eq!(sim_stats(&sim).await["sso_logins"], before);
    // bob is not affected.
    assert_eq!(root().by("bob@internal").send().await.status, StatusCode::OK);

    let login = |password: &str| {
        Call::to(addr, "/ovirt-engine/sso/oauth/token")
            .form(&format!(
                "grant_type=password&scope=ovirt-app-api&username=carol%40internal&password={password}"
            ))
            .accept_json()
            .send()
    };
    for _ in 0..3 {
        assert_eq!(login("wrong").await.status, StatusCode::BAD_REQUEST);
    }
    let before = sim_stats(&sim).await["sso_logins"].clone();
    let locked = login("carol").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.headers["retry-after"], "3600");
    let answer = locked.json();
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
    let gateway = limited(&sim)
        .policies(policies.path())
        .section(
            "[rate_limit.per_user]\nrate = 1\nburst = 4\n\
             [rate_limit.costs]\ncollection = 2\n\
             [[rate_limit.group]]\nname = \"ops\"\nrate = 1\nburst = 40",
        )
        .start()
        .await;
    let addr = gateway.public_addr();
    for _ in 0..10 {
        assert_eq!(
            as_user(addr, "carol@internal", "/vms").send().await.status,
            StatusCode::OK
        );
    }
    for expected in [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
        assert_eq!(
            as_user(addr, "alice@internal", "/vms").send().await.status,
            expected
        );
    }
}

/// New limits apply to the requests that follow a reload; the buckets keep their state; turning
/// limits off needs a restart.
#[tokio::test]
async fn reloaded_limits_apply_at_once() {
    let sim = simulator().await;
    let gateway = limited(&sim)
        .section("[rate_limit.per_ip]\nrate = 1\nburst = 2")
        .start()
        .await;
    let addr = gateway.public_addr();
    for expected in [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
        assert_eq!(
            as_user(addr, "admin@internal", "/clusters").send().await.status,
            expected
        );
    }
    let later = gateway
        .reload_rate_limits(
            &limited(&sim)
                .rate_limit("max_keys = 10")
                .section("[rate_limit.per_ip]\nrate = 1\nburst = 20\n[rate_limit.manager]\ninflight = 2")
                .config(),
        )
        .unwrap();
    // The gate is resized at once; the bound on the buckets waits for the next start.
    assert_eq!(later, ["rate_limit.max_keys"]);
    // The bucket kept its two units used: 18 more.
    for _ in 0..18 {
        assert_eq!(
            as_user(addr, "admin@internal", "/clusters").send().await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        as_user(addr, "admin@internal", "/clusters").send().await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let off = gateway.reload_rate_limits(&limited(&sim).rate_limit("enabled = false").config());
    assert!(off.unwrap_err().contains("needs a restart"));
}

/// One user flooding a Manager holds at most its share of the gate: another user's requests
/// all succeed and never wait behind the flood. The bound: every one of them answers within
/// 1 s, where the Manager takes 200 ms each; first come, first served behind the flood's 80
/// requests on 8 places, each would wait about 2 s.
#[tokio::test]
async fn one_user_cannot_fill_a_manager() {
    let sim = simulator().await;
    let gateway = limited(&sim)
        .section(
            "[rate_limit.manager]\ninflight = 8\nper_user_inflight = 3\nlogin_inflight = 1\n\
             [rate_limit.per_user]\nrate = 1000\nburst = 1000",
        )
        .start()
        .await;
    let addr = gateway.public_addr();
    // Both users logged in first, then every answer slowed to 200 ms.
    assert_eq!(
        as_user(addr, "admin@internal", "/vms?max=1").send().await.status,
        200
    );
    assert_eq!(
        as_user(addr, "alice@internal", "/vms?max=1").send().await.status,
        200
    );
    raw(&sim, "/sim/faults")
        .method("POST")
        .body(r#"{"latency_ms": 200}"#)
        .send()
        .await;
    let flood: Vec<_> = (0..80)
        .map(|_| tokio::spawn(as_user(addr, "admin@internal", "/vms?max=1").send()))
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
        let reply = as_user(addr, "alice@internal", "/vms?max=1").send().await;
        assert_eq!(reply.status, 200);
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "alice waited {slowest:?}"
    );
    for request in flood {
        assert_eq!(request.await.unwrap().status, 200);
    }
}

/// Over its bucket, a sequential client is slowed to the rate and never refused; many requests
/// at once beyond what `max_delay` can absorb are refused with 429.
#[tokio::test]
async fn requests_over_the_rate_wait_before_they_are_refused() {
    let sim = simulator().await;
    let gateway = limited(&sim)
        .rate_limit("max_delay = \"1s\"")
        .section("[rate_limit.per_user]\nrate = 20\nburst = 5\n[rate_limit.costs]\ncollection = 1")
        .start()
        .await;
    let addr = gateway.public_addr();
    let started = tokio::time::Instant::now();
    for _ in 0..30 {
        let reply = as_user(addr, "admin@internal", "/clusters").send().await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
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
        .map(|_| tokio::spawn(as_user(addr, "admin@internal", "/clusters").send()))
        .collect();
    let mut refused = 0;
    for request in at_once {
        let reply = request.await.unwrap();
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
            assert!(reply.headers.contains_key("retry-after"));
        } else {
            assert_eq!(reply.status, StatusCode::OK);
        }
    }
    assert!((20..=55).contains(&refused), "{refused} refused");
}
