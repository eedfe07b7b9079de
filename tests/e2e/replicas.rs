//! Replicas that behave as one (docs/replicas.md): three gateways in front of one simulator,
//! sharing a real redis-server. A login at one serves at all, a user logs in at the Manager
//! once, a logout at one is refused at the others, a write through one evicts at the others, and
//! when the store is lost they carry on with what they hold and converge when it is back.

use std::time::Duration;

use http::StatusCode;
use ovirt_gateway::Running;
use ovirt_gateway::sim::RunningSim;

use crate::support::*;

/// How long another replica may take to hear of an end or a write (docs/replicas.md: the
/// message's delivery; generous for a loaded machine).
const HEARD_WITHIN: Duration = Duration::from_secs(5);

/// A replica: the simulator, `[shared]` on `store` with checks every 100 ms, the cache on,
/// rate limits off (these tests send bursts on purpose).
fn replica(sim: &RunningSim, store: &RedisServer, keys: &ReplicaKeys) -> GatewayConfig {
    GatewayConfig::new()
        .manager("sim", &sim.api_url())
        .passthrough(false)
        .rate_limit("enabled = false")
        .table("cache")
        .section("[cache.ttl]\nentity = \"10m\"\ncollection = \"10m\"")
        .auth(&format!("token_key = \"{}\"", keys.path("token.pem").display()))
        .set("shared", &format!("url = \"{}\"", store.url()))
        .set(
            "shared",
            &format!("key = \"{}\"", keys.path("shared.key").display()),
        )
        .set("shared", "check_interval = \"100ms\"")
        .set("shared", "timeout = \"300ms\"")
        .set("shared", "replicas = 3")
}

/// Three replicas, each once it reaches the store.
async fn three(sim: &RunningSim, store: &RedisServer, keys: &ReplicaKeys) -> Vec<Running> {
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let gateway = replica(sim, store, keys).start().await;
        until_store(&gateway, true).await;
        replicas.push(gateway);
    }
    replicas
}

/// Waits until the replica's metric says the store is reachable (or not).
async fn until_store(gateway: &Running, up: bool) {
    let series = format!("gateway_shared_store_up {}", u8::from(up));
    eventually(Duration::from_secs(10), async || {
        metrics(gateway).await.lines().any(|line| line == series)
    })
    .await;
}

/// An SDK login at a replica's SSO endpoint: the gateway token.
async fn token(gateway: &Running, user: &str) -> String {
    let reply = gateway_login(gateway, user, user.split('@').next().unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

async fn status_with_token(gateway: &Running, token: &str, path: &str) -> StatusCode {
    Call::to(gateway, path).bearer(token).send().await.status
}

/// A login at one replica serves at every replica, with one login at the Manager; the store
/// holds its record sealed (neither the user nor the Manager's token readable).
#[tokio::test]
async fn a_login_at_one_replica_serves_at_every_replica() {
    let (sim, store, keys) = (simulator().await, RedisServer::start().await, ReplicaKeys::new());
    let replicas = three(&sim, &store, &keys).await;
    let token = token(&replicas[0], "alice@internal").await;
    for gateway in &replicas {
        assert_eq!(
            status_with_token(gateway, &token, "/ovirt-engine/api/vms").await,
            StatusCode::OK
        );
    }
    assert_eq!(sim_stats(&sim).await["sso_logins"], 1);
    let logins = store.keys("ovirt-gateway:login:*").await;
    assert_eq!(logins.len(), 1, "{logins:?}");
    let sealed: Vec<u8> = redis::cmd("HGET")
        .arg(&logins[0])
        .arg("v")
        .query_async(&mut store.connection().await)
        .await
        .unwrap();
    assert!(sealed.len() > 40);
    for plain in [&b"alice"[..], b"token", b"sim"] {
        assert!(
            !sealed.windows(plain.len()).any(|w| w == plain),
            "the record is sealed"
        );
    }
}

/// A logout at one replica is refused at the others as soon as they hear of it, and the
/// Manager's token is revoked once.
#[tokio::test]
async fn a_logout_at_one_replica_is_refused_at_the_others() {
    let (sim, store, keys) = (simulator().await, RedisServer::start().await, ReplicaKeys::new());
    let replicas = three(&sim, &store, &keys).await;
    let token = token(&replicas[0], "alice@internal").await;
    for gateway in &replicas {
        assert_eq!(
            status_with_token(gateway, &token, "/ovirt-engine/api").await,
            StatusCode::OK
        );
    }
    let revoked = sim_stats(&sim).await["revoked_tokens"].as_u64().unwrap();
    let logout = Call::to(
        &replicas[1],
        &format!("/ovirt-engine/services/sso-logout?token={token}"),
    )
    .send()
    .await;
    assert_eq!(logout.status, StatusCode::OK, "{}", logout.text());
    for gateway in [&replicas[0], &replicas[2]] {
        eventually(HEARD_WITHIN, async || {
            status_with_token(gateway, &token, "/ovirt-engine/api").await == StatusCode::UNAUTHORIZED
        })
        .await;
    }
    assert_eq!(
        sim_stats(&sim).await["revoked_tokens"].as_u64().unwrap(),
        revoked + 1
    );
    assert!(store.keys("ovirt-gateway:login:*").await.is_empty());
}

/// Basic clients spread over the replicas, the first requests at once: one login at the
/// Manager for the user (the others wait for it), and every request answered.
#[tokio::test]
async fn basic_clients_across_replicas_log_in_once() {
    let (sim, store, keys) = (simulator().await, RedisServer::start().await, ReplicaKeys::new());
    let replicas = three(&sim, &store, &keys).await;
    let requests = (0..9).map(|i| {
        Call::to(&replicas[i % 3], "/ovirt-engine/api/vms")
            .by("bob@internal")
            .send()
    });
    for reply in futures_util::future::join_all(requests).await {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    assert_eq!(sim_stats(&sim).await["sso_logins"], 1);
    assert_eq!(store.keys("ovirt-gateway:session:*").await.len(), 1);
    assert!(store.keys("ovirt-gateway:lock:*").await.is_empty());
}

/// A write through one replica evicts what it touched at the others: the entity cached at
/// replica 2 is fetched anew once the write's message arrives.
#[tokio::test]
async fn a_write_through_one_replica_evicts_at_the_others() {
    let (sim, store, keys) = (simulator().await, RedisServer::start().await, ReplicaKeys::new());
    let replicas = three(&sim, &store, &keys).await;
    let alice = |gateway: &Running, path: &str| Call::to(gateway, path).by("alice@internal");
    let down = alice(&replicas[0], "/ovirt-engine/api/vms?search=status%3Ddown&max=1")
        .send()
        .await;
    let body = down.text();
    let start = body.find(" id=\"").unwrap() + 5;
    let vm = format!("/ovirt-engine/api/vms/{}", &body[start..start + 36]);
    alice(&replicas[2], &vm).send().await;
    let cached = alice(&replicas[2], &vm).send().await;
    assert!(
        cached.header("cache-status").contains("hit"),
        "{}",
        cached.header("cache-status")
    );
    assert_contains(cached.text(), "<status>down</status>");
    let started = alice(&replicas[0], &format!("{vm}/start"))
        .post("<action/>")
        .send()
        .await;
    assert_eq!(started.status, StatusCode::OK);
    eventually(HEARD_WITHIN, async || {
        !alice(&replicas[2], &vm)
            .send()
            .await
            .text()
            .contains("<status>down</status>")
    })
    .await;
}

/// The store killed mid-run: every replica says it is degraded and carries on with what it
/// holds (a login used before is served; a new login is made and served locally; a login a
/// replica does not hold is a 503, never a 401); the store back at its address (restarted,
/// empty): they converge without a restart (the login made meanwhile serves everywhere).
#[tokio::test]
async fn replicas_carry_on_without_the_store_and_converge_when_it_is_back() {
    let (sim, mut store, keys) = (simulator().await, RedisServer::start().await, ReplicaKeys::new());
    let replicas = three(&sim, &store, &keys).await;
    let before = token(&replicas[0], "alice@internal").await;
    for gateway in &replicas {
        assert_eq!(
            status_with_token(gateway, &before, "/ovirt-engine/api").await,
            StatusCode::OK
        );
    }
    store.stop().await;
    for gateway in &replicas {
        until_store(gateway, false).await;
        let ready = Call::to(gateway.admin_addr().unwrap(), "/readyz").send().await;
        assert_eq!(ready.status, StatusCode::OK, "degraded is still ready");
        assert_contains(ready.json()["shared_store"].as_str().unwrap(), "unreachable");
        assert_eq!(
            status_with_token(gateway, &before, "/ovirt-engine/api").await,
            StatusCode::OK
        );
    }
    let during = token(&replicas[2], "bob@internal").await;
    assert_eq!(
        status_with_token(&replicas[2], &during, "/ovirt-engine/api").await,
        StatusCode::OK
    );
    let unknown = Call::to(&replicas[0], "/ovirt-engine/api")
        .bearer(&during)
        .send()
        .await;
    assert_eq!(unknown.header("retry-after"), "1");
    unknown.fault(503, "Gateway state unavailable");

    let store = RedisServer::start_at(store.port).await;
    for gateway in &replicas {
        until_store(gateway, true).await;
    }
    // A store restarted without persistence holds what was made while it was away, written
    // when it came back; the replicas still hold the logins made before.
    eventually(HEARD_WITHIN, async || {
        store.keys("ovirt-gateway:login:*").await.len() == 1
    })
    .await;
    for gateway in &replicas {
        for token in [&before, &during] {
            assert_eq!(
                status_with_token(gateway, token, "/ovirt-engine/api").await,
                StatusCode::OK
            );
        }
    }
}

/// A login idle at the replica that made it but used at another is not ended there; once no
/// replica uses it for `auth.session_idle`, one of them ends it and revokes its token, once.
#[tokio::test]
async fn a_login_ends_when_idle_everywhere_and_not_before() {
    let (sim, store, keys) = (simulator().await, RedisServer::start().await, ReplicaKeys::new());
    let idle = |gateway: GatewayConfig| gateway.auth("session_idle = \"1s\"");
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let gateway = idle(replica(&sim, &store, &keys)).start().await;
        until_store(&gateway, true).await;
        replicas.push(gateway);
    }
    let token = token(&replicas[0], "alice@internal").await;
    let revoked = sim_stats(&sim).await["revoked_tokens"].as_u64().unwrap();
    // Three idle times of use at the second replica only, a request every 100 ms.
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..30 {
        pace.tick().await;
        assert_eq!(
            status_with_token(&replicas[1], &token, "/ovirt-engine/api").await,
            StatusCode::OK
        );
    }
    assert_eq!(sim_stats(&sim).await["revoked_tokens"].as_u64().unwrap(), revoked);
    assert_eq!(
        status_with_token(&replicas[0], &token, "/ovirt-engine/api").await,
        StatusCode::OK,
        "the first replica fetches it again"
    );
    eventually(Duration::from_secs(10), async || {
        store.keys("ovirt-gateway:login:*").await.is_empty()
    })
    .await;
    eventually(HEARD_WITHIN, async || {
        sim_stats(&sim).await["revoked_tokens"].as_u64().unwrap() == revoked + 1
    })
    .await;
    for gateway in &replicas {
        assert_eq!(
            status_with_token(gateway, &token, "/ovirt-engine/api").await,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// `alice`'s quota, 30 units a second with a burst of 30, every request one unit, refused at
/// once over it; addresses unlimited.
fn limited(gateway: GatewayConfig) -> GatewayConfig {
    gateway
        .set("rate_limit", "enabled = true")
        .set("rate_limit", "max_delay = \"0s\"")
        .set("shared", "sync_interval = \"100ms\"")
        .section("[rate_limit.per_user]\nrate = 30\nburst = 30")
        .section("[rate_limit.per_ip]\nrate = 100000\nburst = 100000")
        .section("[rate_limit.costs]\ncollection = 1")
}

/// Requests through `gateways` in turn, as fast as they answer, for `during`: how many were
/// let through (the others were refused with 429) and how long it took.
async fn hammer(gateways: &[&Running], during: Duration) -> (u64, Duration) {
    let started = tokio::time::Instant::now();
    let (mut allowed, mut i) = (0, 0);
    while started.elapsed() < during {
        let reply = Call::to(gateways[i % gateways.len()], "/ovirt-engine/api")
            .by("alice@internal")
            .send()
            .await;
        match reply.status {
            StatusCode::OK => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("{other}: {}", reply.text()),
        }
        i += 1;
    }
    (allowed, started.elapsed())
}

/// A user's requests spread over three replicas are held to one user's quota, give or take the
/// stated bound, (replicas - 1) x (burst + rate x sync interval); three replicas on their own
/// would let three times the quota through.
#[tokio::test]
async fn a_users_rate_is_one_across_replicas() {
    let (sim, store, keys) = (simulator().await, RedisServer::start().await, ReplicaKeys::new());
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let gateway = limited(replica(&sim, &store, &keys)).start().await;
        until_store(&gateway, true).await;
        replicas.push(gateway);
    }
    let (rate, burst) = (30.0, 30.0);
    let (allowed, took) = hammer(&replicas.iter().collect::<Vec<_>>(), Duration::from_secs(3)).await;
    let own = burst + rate * took.as_secs_f64();
    // The bound with twice the configured sync interval: the sync task may run late on a
    // loaded machine.
    let bound = own + 2.0 * (burst + rate * 0.2);
    assert!(
        (allowed as f64) <= bound,
        "{allowed} let through in {took:?}; bound {bound}"
    );
    assert!(bound < 3.0 * own, "the test tells shared from separate buckets");
    assert!(allowed as f64 >= burst, "{allowed} let through in {took:?}");
}

/// Without the store, each of the three replicas takes a third of the quota: one replica lets
/// through a burst of 10 and 10 a second.
#[tokio::test]
async fn without_the_store_each_replica_takes_its_share() {
    let (sim, mut store, keys) = (simulator().await, RedisServer::start().await, ReplicaKeys::new());
    let gateway = limited(replica(&sim, &store, &keys)).start().await;
    until_store(&gateway, true).await;
    store.stop().await;
    until_store(&gateway, false).await;
    let (allowed, took) = hammer(&[&gateway], Duration::from_secs(1)).await;
    let share = 10.0 + 10.0 * took.as_secs_f64();
    assert!(
        (allowed as f64) <= share + 1.0,
        "{allowed} let through in {took:?}"
    );
    assert!(allowed >= 10, "{allowed} let through in {took:?}");
}

/// Failed logins count toward one lockout whichever replica they reach: three wrong passwords,
/// one at each replica, lock the user out from that address at all three.
#[tokio::test]
async fn failed_logins_lock_out_across_replicas() {
    let (sim, store, keys) = (simulator().await, RedisServer::start().await, ReplicaKeys::new());
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let gateway = replica(&sim, &store, &keys)
            .set("rate_limit", "enabled = true")
            .section("[rate_limit.logins]\nfailures = 3\nwindow = \"1m\"\nlockout = \"1m\"")
            .start()
            .await;
        until_store(&gateway, true).await;
        replicas.push(gateway);
    }
    let wrong = |gateway: &Running| {
        Call::to(gateway, "/ovirt-engine/api")
            .basic("carol@internal", "wrong")
            .send()
    };
    for gateway in &replicas {
        assert_eq!(wrong(gateway).await.status, StatusCode::UNAUTHORIZED);
    }
    for gateway in &replicas {
        eventually(HEARD_WITHIN, async || {
            counter(
                &metrics(gateway).await,
                "gateway_shared_store_events_total{kind=\"login_failed\"}",
            ) == 2
        })
        .await;
        wrong(gateway).await.fault(429, "Too many failed logins");
    }
}

/// With Redis Sentinel: the master killed, the Sentinel promotes its replica, and the gateways
/// follow it without a restart. A login made before the failover (replicated) serves at the
/// other gateway; one made after serves everywhere.
#[tokio::test]
async fn replicas_follow_a_sentinel_failover() {
    let sim = simulator().await;
    let keys = ReplicaKeys::new();
    let mut master = RedisServer::start().await;
    let replica = RedisServer::replica_of(&master).await;
    let sentinel = RedisSentinel::start(&master, "gateway").await;
    let mut gateways = Vec::new();
    for _ in 0..2 {
        let gateway = GatewayConfig::new()
            .manager("sim", &sim.api_url())
            .passthrough(false)
            .rate_limit("enabled = false")
            .auth(&format!("token_key = \"{}\"", keys.path("token.pem").display()))
            .set(
                "shared",
                &format!("sentinels = [\"127.0.0.1:{}\"]", sentinel.port),
            )
            .set("shared", "service = \"gateway\"")
            .set(
                "shared",
                &format!("key = \"{}\"", keys.path("shared.key").display()),
            )
            .set("shared", "check_interval = \"100ms\"")
            .set("shared", "timeout = \"300ms\"")
            .set("shared", "replicas = 2")
            .start()
            .await;
        until_store(&gateway, true).await;
        gateways.push(gateway);
    }
    let before = token(&gateways[0], "alice@internal").await;
    eventually(HEARD_WITHIN, async || {
        replica.keys("ovirt-gateway:login:*").await.len() == 1
    })
    .await;
    master.stop().await;
    eventually(Duration::from_secs(30), async || {
        sentinel.master("gateway").await == Some(replica.port)
    })
    .await;
    for gateway in &gateways {
        until_store(gateway, true).await;
    }
    assert_eq!(
        status_with_token(&gateways[1], &before, "/ovirt-engine/api").await,
        StatusCode::OK
    );
    let after = token(&gateways[1], "bob@internal").await;
    assert_eq!(
        status_with_token(&gateways[0], &after, "/ovirt-engine/api").await,
        StatusCode::OK
    );
    assert_eq!(replica.keys("ovirt-gateway:login:*").await.len(), 2);
}
