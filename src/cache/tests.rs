//! The cache's behaviour, driven through lookup and finish.

use http::header::{CACHE_CONTROL, SET_COOKIE};
use http_body_util::BodyExt;

use super::*;
use crate::config::CacheTtl;

fn cache(shared: &[&str]) -> Arc<Cache> {
    let ttl = Duration::from_secs(5);
    Cache::new(
        CacheConfig {
            max_bytes: 1 << 20,
            max_entry_bytes: 1 << 16,
            ttl: CacheTtl {
                root: ttl,
                collection: ttl,
                entity: ttl,
                below: ttl,
            },
            shared_collections: shared.iter().map(|s| (*s).to_owned()).collect(),
        },
        Arc::new(Metrics::new()),
        None,
    )
}

/// Looks `path` up as `user` (`method`), and when the cache says to forward, finishes with
/// `status` and `body`; returns the Cache-Status and the body the client gets.
async fn ask(cache: &Arc<Cache>, user: &str, method: Method, path: &str, status: u16) -> (String, String) {
    let pending = match look(cache, user, method, path).await {
        Ok(hit) => return answer(hit).await,
        Err(pending) => pending,
    };
    let mut response = Response::new(GatewayBody::full(format!("{user} {path}")));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    answer(cache.finish(pending, response).await.unwrap()).await
}

async fn look(
    cache: &Arc<Cache>,
    user: &str,
    method: Method,
    path: &str,
) -> Result<Response<GatewayBody>, Pending> {
    let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
    let path = ApiPath::parse("", &format!("/ovirt-engine/api{path}"), query).unwrap();
    let asked = Asked {
        method: &method,
        manager: "m",
        target: path.upstream_path_and_query(""),
        path: &path,
        headers: &HeaderMap::new(),
        user: Some(user),
        tls: true,
        request_id: "id",
    };
    match cache.lookup(&asked).await {
        Lookup::Hit(response) => Ok(response),
        Lookup::Forward(pending) => Err(pending),
    }
}

async fn answer(response: Response<GatewayBody>) -> (String, String) {
    let status = response
        .headers()
        .get(CACHE_STATUS)
        .map_or("", |v| v.to_str().unwrap())
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn hit(status: &str) -> bool {
    status.starts_with("ovirt-gateway; hit")
}

/// Freshness is judged on the gateway's clock: an entry is reused for its time to live, then
/// asked for again.
#[tokio::test(start_paused = true)]
async fn entries_expire_after_their_ttl() {
    let cache = cache(&[]);
    assert_eq!(
        ask(&cache, "a@p", Method::GET, "/vms/1", 200).await.0,
        "ovirt-gateway; fwd=miss; stored"
    );
    tokio::time::advance(Duration::from_millis(4999)).await;
    assert_eq!(
        ask(&cache, "a@p", Method::GET, "/vms/1", 200).await.0,
        "ovirt-gateway; hit; ttl=0"
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(!hit(&ask(&cache, "a@p", Method::GET, "/vms/1", 200).await.0));
}

/// A write evicts its entity, what is below it and its collection's listings, for every user;
/// nothing else; and nothing when it failed.
#[tokio::test]
async fn writes_evict_their_place() {
    let cache = cache(&[]);
    let paths = [
        "/vms/1",
        "/vms/1/nics",
        "/vms",
        "/vms?search=x",
        "/vms/2",
        "/hosts/1",
        "",
    ];
    for user in ["a@p", "b@p"] {
        for path in paths {
            ask(&cache, user, Method::GET, path, 200).await;
        }
    }
    ask(&cache, "a@p", Method::POST, "/vms/1/start", 404).await;
    for path in paths {
        assert!(hit(&ask(&cache, "b@p", Method::GET, path, 200).await.0), "{path}");
    }
    ask(&cache, "a@p", Method::POST, "/vms/1/start", 200).await;
    for user in ["a@p", "b@p"] {
        for (path, kept) in paths.iter().zip([false, false, false, false, true, true, true]) {
            assert_eq!(
                hit(&ask(&cache, user, Method::GET, path, 200).await.0),
                kept,
                "{user} {path}"
            );
        }
    }
    // Ids are compared as the engine reads them.
    ask(
        &cache,
        "a@p",
        Method::GET,
        "/vms/0f1e2d3c-0000-4000-8000-00000000000a",
        200,
    )
    .await;
    ask(
        &cache,
        "a@p",
        Method::DELETE,
        "/vms/0F1E2D3C-0000-4000-8000-00000000000A",
        200,
    )
    .await;
    let (status, _) = ask(
        &cache,
        "a@p",
        Method::GET,
        "/vms/0f1e2d3c-0000-4000-8000-00000000000a",
        200,
    )
    .await;
    assert!(!hit(&status));
}

/// An answer fetched while a write to its collection completed is not stored: it may predate
/// the write.
#[tokio::test]
async fn answers_overtaken_by_a_write_are_not_stored() {
    let cache = cache(&[]);
    let Err(pending) = look(&cache, "a@p", Method::GET, "/vms/1").await else {
        panic!("a miss")
    };
    ask(&cache, "b@p", Method::PUT, "/vms/1", 200).await;
    let (status, body) = answer(
        cache
            .finish(pending, Response::new(GatewayBody::full("before the write")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("ovirt-gateway; fwd=miss; detail=written", "before the write")
    );
    assert!(!hit(&ask(&cache, "a@p", Method::GET, "/vms/1", 200).await.0));
}

/// Only answers that may be reused are kept: 200s, without Set-Cookie, no-store, private or
/// no-cache.
#[tokio::test]
async fn only_reusable_answers_are_stored() {
    let cache = cache(&[]);
    assert_eq!(
        ask(&cache, "a@p", Method::GET, "/vms/9", 404).await.0,
        "ovirt-gateway; fwd=miss; detail=status"
    );
    for (name, value, detail) in [
        (SET_COOKIE, "a=b", "set-cookie"),
        (CACHE_CONTROL, "private", "no-store"),
        (CACHE_CONTROL, "max-age=5, No-Store", "no-store"),
        // Read as the request's directives are: a directive with an argument is the directive.
        (CACHE_CONTROL, "private=\"set-cookie\"", "no-store"),
    ] {
        let Err(pending) = look(&cache, "a@p", Method::GET, "/vms/1").await else {
            panic!("a miss")
        };
        let mut response = Response::new(GatewayBody::full("x"));
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
        let (status, _) = answer(cache.finish(pending, response).await.unwrap()).await;
        assert_eq!(status, format!("ovirt-gateway; fwd=miss; detail={detail}"));
    }
}

/// Users share entries only on collections configured as shared.
#[tokio::test]
async fn shared_collections_are_shared() {
    let cache = cache(&["operatingsystems"]);
    ask(&cache, "a@p", Method::GET, "/operatingsystems", 200).await;
    ask(&cache, "a@p", Method::GET, "/vms", 200).await;
    let (status, body) = ask(&cache, "b@p", Method::GET, "/operatingsystems", 200).await;
    assert!(hit(&status) && body == "a@p /operatingsystems", "{status} {body}");
    let (status, body) = ask(&cache, "b@p", Method::GET, "/vms", 200).await;
    assert!(!hit(&status) && body == "b@p /vms", "{status} {body}");
}
