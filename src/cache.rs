//! The GET response cache (docs/caching.md): answers as the client would get them from the
//! Manager through the gateway (after rewriting), reused for the same question from the same
//! user, and forgotten when a write through the gateway touches them.
//!
//! - Key: the Manager, the upstream identity (the user, or a keyed hash of a passed-through
//!   token; nobody only on collections configured as shared), the path and query as forwarded
//!   byte for byte (matrix parameters, `/v4`, `?accept=`), every request header that changes the
//!   body (Accept with `detail`, Accept-Encoding, Accept-Language, Version, Filter, All-Content,
//!   Prefer) and where links point (scheme and host).
//! - Only GET 200 answers without Set-Cookie or `Cache-Control: no-store`/`private`, and no larger
//!   than `max_entry_bytes`: larger answers stream through, buffered no further than that.
//! - A successful write on `/X/ID[/...]` evicts `/X/ID`, everything below it and the `/X`
//!   listings of that Manager, for every user, through an index by place (proportional to what is
//!   evicted). Answers fetched while a write to their collection completed are not stored.
//! - Identical misses wait for the first one's answer instead of asking the Manager again; a
//!   failure or an answer that is not stored is not shared: each waiter then asks for itself.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{
    AGE, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, DATE, HOST, HeaderMap, HeaderName, HeaderValue,
    IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, PRAGMA, RANGE, SET_COOKIE,
};
use http::{Method, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, BodyStream, StreamBody};
use moka::Expiry;
use moka::notification::RemovalCause;
use ring::hmac;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::canonical_id;
use crate::api::path::{ApiPath, EngineArea};
use crate::body::{BoxError, GatewayBody};
use crate::config::CacheConfig;
use crate::metrics::Metrics;

pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
const CORRELATION_ID: HeaderName = HeaderName::from_static("correlation-id");
/// The cache's name in Cache-Status (RFC 9211).
const NAME: &str = "ovirt-gateway";
/// Request headers that change the answer's body.
const VARYING: [&str; 7] = [
    "accept",
    "accept-encoding",
    "accept-language",
    "version",
    "filter",
    "all-content",
    "prefer",
];

/// What a GET is cached as.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Key {
    manager: String,
    /// `user@profile`; a keyed hash of a passed-through Authorization; empty on shared collections.
    identity: String,
    /// The path and query as forwarded.
    target: String,
    /// The varying request headers, and the scheme and host links are rewritten to.
    variant: String,
}

/// Where an answer is in the invalidation index: a Manager's collection, and the entity's id
/// (`None` for the collection's listings).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Place {
    manager: String,
    collection: String,
    id: Option<String>,
}

struct Entry {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    stored: Instant,
    ttl: Duration,
    place: Option<Place>,
    weight: u32,
}

/// A Manager's collection: its entries, and how many writes to it completed.
#[derive(Default)]
struct Collection {
    writes: u64,
    listings: HashSet<Arc<Key>>,
    entities: HashMap<String, HashSet<Arc<Key>>>,
}

impl Collection {
    fn keys(&mut self, id: &Option<String>) -> Option<&mut HashSet<Arc<Key>>> {
        match id {
            None => Some(&mut self.listings),
            Some(id) => self.entities.get_mut(id),
        }
    }
}

type Index = Mutex<HashMap<(String, String), Collection>>;

pub struct Cache {
    config: CacheConfig,
    entries: moka::future::Cache<Arc<Key>, Arc<Entry>>,
    index: Arc<Index>,
    /// Misses on their way to the Manager; waiters watch until the sender is dropped.
    inflight: Mutex<HashMap<Arc<Key>, watch::Receiver<()>>>,
    /// Keys the identity of a passed-through token.
    secret: hmac::Key,
    metrics: Arc<Metrics>,
}

/// The request, as the cache sees it.
pub struct Asked<'a> {
    pub method: &'a Method,
    pub manager: &'a str,
    pub path: &'a ApiPath,
    /// The path and query as forwarded.
    pub target: String,
    pub headers: &'a HeaderMap,
    /// The authenticated user, when the gateway knows one.
    pub user: Option<&'a str>,
    pub tls: bool,
    /// Sent as Correlation-Id on a hit when the client sent none (the Manager echoes one).
    pub request_id: &'a str,
}

pub enum Lookup {
    Hit(Response<GatewayBody>),
    Forward(Pending),
}

/// What to do with the Manager's answer.
pub enum Pending {
    /// Store it when it can be; waiters are released when this is dropped.
    Store(Ticket),
    /// A write: on success, evict what it touched.
    Invalidate(Place),
    /// Pass it on, saying why it was not looked up (RFC 9211 `fwd`), or nothing (not an API GET).
    Pass(Option<&'static str>),
}

pub struct Ticket {
    key: Arc<Key>,
    place: Option<Place>,
    ttl: Duration,
    /// The collection's write count when the request left.
    writes: u64,
    /// `fwd` for Cache-Status: `miss`, or `request` when the client asked for a fresh answer.
    fwd: &'static str,
    /// Present when this request leads identical ones; dropping it releases them.
    _leading: Option<Leading>,
}

struct Leading {
    cache: Arc<Cache>,
    key: Arc<Key>,
    _sender: watch::Sender<()>,
}

impl Drop for Leading {
    fn drop(&mut self) {
        // Out of the map before the sender goes (fields drop after this), so a released waiter
        // never finds it again.
        let mut inflight = self.cache.inflight.lock().unwrap_or_else(|p| p.into_inner());
        inflight.remove(&self.key);
    }
}

impl Cache {
    pub fn new(config: CacheConfig, metrics: Arc<Metrics>) -> Arc<Cache> {
        let index: Arc<Index> = Arc::default();
        let listener_index = index.clone();
        let listener_metrics = metrics.clone();
        let entries = moka::future::Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(|_, entry: &Arc<Entry>| entry.weight)
            .expire_after(ByEntry)
            .eviction_listener(move |key: Arc<Arc<Key>>, entry: Arc<Entry>, cause| {
                let reason = match cause {
                    RemovalCause::Expired => "expired",
                    RemovalCause::Explicit => "invalidated",
                    RemovalCause::Replaced => "replaced",
                    RemovalCause::Size => "size",
                };
                listener_metrics
                    .cache_evictions_total
                    .with_label_values(&[reason])
                    .inc();
                listener_metrics.cache_bytes.sub(i64::from(entry.weight));
                listener_metrics.cache_entries.dec();
                if cause != RemovalCause::Replaced {
                    forget(&listener_index, &key, entry.place.as_ref());
                }
            })
            .build();
        let rng = ring::rand::SystemRandom::new();
        Arc::new(Cache {
            config,
            entries,
            index,
            inflight: Mutex::default(),
            secret: hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system random source works"),
            metrics,
        })
    }

    /// Answers from the cache, or says what to do with the Manager's answer.
    pub async fn lookup(self: &Arc<Cache>, asked: &Asked<'_>) -> Lookup {
        let EngineArea::Api(api) = &asked.path.area else {
            return Lookup::Forward(Pending::Pass(None));
        };
        let place = api.segments.first().map(|collection| Place {
            manager: asked.manager.to_owned(),
            collection: collection.name.clone(),
            id: api.segments.get(1).map(|id| canonical_id(&id.name)),
        });
        if *asked.method != Method::GET {
            return Lookup::Forward(match (asked.method, place) {
                (&Method::POST | &Method::PUT | &Method::DELETE | &Method::PATCH, Some(place)) => {
                    Pending::Invalidate(place)
                }
                (&Method::HEAD, _) => self.bypass("method"),
                _ => Pending::Pass(None),
            });
        }
        let directives = |name| {
            asked
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|d| d.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        };
        let cache_control = directives(CACHE_CONTROL);
        let conditional = [
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            IF_MATCH,
            IF_UNMODIFIED_SINCE,
            IF_RANGE,
            RANGE,
        ]
        .iter()
        .any(|name| asked.headers.contains_key(name));
        // The SDK only accepts 200 for a GET: never a 304 or 206 from here.
        if conditional || cache_control.iter().any(|d| d == "no-store") {
            return Lookup::Forward(self.bypass("request"));
        }
        let refresh = cache_control.iter().any(|d| d == "no-cache" || d == "max-age=0")
            || directives(PRAGMA).iter().any(|d| d == "no-cache");
        let shared = place
            .as_ref()
            .is_some_and(|p| self.config.shared_collections.contains(&p.collection));
        let identity = match (shared, asked.user, asked.headers.get(AUTHORIZATION)) {
            (true, _, _) => String::new(),
            (false, Some(user), _) => user.to_owned(),
            (false, None, Some(authorization)) => {
                let tag = hmac::sign(&self.secret, authorization.as_bytes());
                format!("token:{}", hex(tag.as_ref()))
            }
            (false, None, None) => return Lookup::Forward(self.bypass("bypass")),
        };
        let key = Arc::new(Key {
            manager: asked.manager.to_owned(),
            identity,
            target: asked.target.clone(),
            variant: variant(asked.headers, asked.tls),
        });
        let ttl = match api.segments.len() {
            0 => self.config.ttl.root,
            1 => self.config.ttl.collection,
            2 => self.config.ttl.entity,
            _ => self.config.ttl.below,
        };
        let ticket = |cache: &Cache, leading| Ticket {
            writes: place.as_ref().map_or(0, |p| cache.writes(p)),
            key: key.clone(),
            place: place.clone(),
            ttl,
            fwd: if refresh { "request" } else { "miss" },
            _leading: leading,
        };
        if refresh {
            self.count("bypass");
            return Lookup::Forward(Pending::Store(ticket(self, None)));
        }
        if let Some(entry) = self.fresh(&key).await {
            self.count("hit");
            return Lookup::Hit(entry.respond(asked));
        }
        let waiting = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match inflight.get(&key) {
                Some(receiver) => receiver.clone(),
                None => {
                    let (sender, receiver) = watch::channel(());
                    inflight.insert(key.clone(), receiver);
                    drop(inflight);
                    self.count("miss");
                    let leading = Leading {
                        cache: self.clone(),
                        key: key.clone(),
                        _sender: sender,
                    };
                    return Lookup::Forward(Pending::Store(ticket(self, Some(leading))));
                }
            }
        };
        self.metrics.cache_coalesced_total.inc();
        let mut waiting = waiting;
        // Err once the leader is done, whatever became of its answer.
        let _ = waiting.changed().await;
        if let Some(entry) = self.fresh(&key).await {
            self.count("hit");
            return Lookup::Hit(entry.respond(asked));
        }
        // The leader's answer was not stored (an error, a 404, too large): nothing is shared, and
        // the waiters ask the Manager at once rather than one after another.
        self.count("miss");
        Lookup::Forward(Pending::Store(ticket(self, None)))
    }

    /// The Manager's answer, stored when it can be, with its Cache-Status.
    pub async fn finish(
        &self,
        pending: Pending,
        response: Response<GatewayBody>,
    ) -> Result<Response<GatewayBody>, BoxError> {
        match pending {
            Pending::Pass(None) => Ok(response),
            Pending::Pass(Some(fwd)) => Ok(with_status(response, &format!("{NAME}; fwd={fwd}"))),
            Pending::Invalidate(place) => {
                if response.status().is_success() {
                    self.invalidate(&place).await;
                }
                Ok(response)
            }
            Pending::Store(ticket) => self.store(ticket, response).await,
        }
    }

    async fn store(
        &self,
        ticket: Ticket,
        response: Response<GatewayBody>,
    ) -> Result<Response<GatewayBody>, BoxError> {
        let fwd = ticket.fwd;
        let refused = |detail: &str, response| {
            Ok(with_status(
                response,
                &format!("{NAME}; fwd={fwd}; detail={detail}"),
            ))
        };
        if response.status() != StatusCode::OK {
            return refused("status", response);
        }
        if response.headers().contains_key(SET_COOKIE) {
            return refused("set-cookie", response);
        }
        let private = response
            .headers()
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|d| {
                matches!(
                    d.trim().to_ascii_lowercase().as_str(),
                    "no-store" | "private" | "no-cache"
                )
            });
        if private {
            return refused("no-store", response);
        }
        let limit = self.config.max_entry_bytes;
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit) {
            return refused("too-large", response);
        }
        let (parts, body) = response.into_parts();
        let body = match read_up_to(body, limit).await? {
            Read::Whole(body) => body,
            Read::Over(body) => return refused("too-large", Response::from_parts(parts, body)),
        };
        let response = Response::from_parts(parts, GatewayBody::full(body.clone()));
        let mut headers = response.headers().clone();
        for name in [CORRELATION_ID, DATE, AGE, CACHE_STATUS] {
            headers.remove(name);
        }
        let weight = body.len()
            + headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len())
                .sum::<usize>()
            + ticket.key.target.len()
            + ticket.key.variant.len()
            + 256;
        let entry = Arc::new(Entry {
            status: response.status(),
            headers,
            body,
            stored: Instant::now(),
            ttl: ticket.ttl,
            place: ticket.place.clone(),
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
        });
        if !self.enter(&ticket, entry).await {
            return refused("written", response);
        }
        Ok(with_status(response, &format!("{NAME}; fwd={fwd}; stored")))
    }

    /// Stores an entry unless a write to its collection completed since its request left.
    async fn enter(&self, ticket: &Ticket, entry: Arc<Entry>) -> bool {
        let unchanged = |cache: &Cache| {
            ticket
                .place
                .as_ref()
                .is_none_or(|p| cache.writes(p) == ticket.writes)
        };
        if let Some(place) = &ticket.place {
            let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
            let collection = index
                .entry((place.manager.clone(), place.collection.clone()))
                .or_default();
            if collection.writes != ticket.writes {
                return false;
            }
            match &place.id {
                None => collection.listings.insert(ticket.key.clone()),
                Some(id) => collection
                    .entities
                    .entry(id.clone())
                    .or_default()
                    .insert(ticket.key.clone()),
            };
        }
        self.metrics.cache_bytes.add(i64::from(entry.weight));
        self.metrics.cache_entries.inc();
        self.entries.insert(ticket.key.clone(), entry).await;
        // A write that completed meanwhile evicted what the index held, maybe before this
        // insert: evict it again.
        if !unchanged(self) {
            self.entries.invalidate(&ticket.key).await;
            return false;
        }
        true
    }

    /// Evicts what a write on `place` touched: the entity and everything below it, and the
    /// collection's listings.
    async fn invalidate(&self, place: &Place) {
        let keys: Vec<Arc<Key>> = {
            let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
            let collection = index
                .entry((place.manager.clone(), place.collection.clone()))
                .or_default();
            collection.writes += 1;
            let mut keys: Vec<Arc<Key>> = collection.listings.drain().collect();
            if let Some(id) = &place.id {
                keys.extend(collection.entities.remove(id).into_iter().flatten());
            }
            keys
        };
        for key in keys {
            self.entries.invalidate(&key).await;
        }
    }

    fn writes(&self, place: &Place) -> u64 {
        let index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        index
            .get(&(place.manager.clone(), place.collection.clone()))
            .map_or(0, |c| c.writes)
    }

    /// The entry for `key` if it is still fresh (checked here too, on the gateway's clock).
    async fn fresh(&self, key: &Arc<Key>) -> Option<Arc<Entry>> {
        let entry = self.entries.get(key).await?;
        if entry.stored.elapsed() < entry.ttl {
            Some(entry)
        } else {
            self.entries.invalidate(key).await;
            None
        }
    }

    fn bypass(&self, fwd: &'static str) -> Pending {
        self.count("bypass");
        Pending::Pass(Some(fwd))
    }

    fn count(&self, result: &str) {
        self.metrics
            .cache_requests_total
            .with_label_values(&[result])
            .inc();
    }

    /// Runs moka's pending housekeeping (expiry, size evictions, listener calls): tests only.
    #[cfg(test)]
    pub async fn settle(&self) {
        self.entries.run_pending_tasks().await;
    }
}

/// Removes a key from the invalidation index.
fn forget(index: &Index, key: &Arc<Key>, place: Option<&Place>) {
    let Some(place) = place else { return };
    let mut index = index.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(collection) = index.get_mut(&(place.manager.clone(), place.collection.clone()))
        && let Some(keys) = collection.keys(&place.id)
    {
        keys.remove(key);
        if keys.is_empty()
            && let Some(id) = &place.id
        {
            collection.entities.remove(id);
        }
    }
}

impl Entry {
    fn respond(&self, asked: &Asked<'_>) -> Response<GatewayBody> {
        let mut response = Response::new(GatewayBody::full(self.body.clone()));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        let age = self.stored.elapsed();
        let headers = response.headers_mut();
        headers.insert(AGE, HeaderValue::from(age.as_secs()));
        headers.insert(CORRELATION_ID, correlation_id(asked));
        let ttl = self.ttl.saturating_sub(age).as_secs();
        headers.insert(
            CACHE_STATUS,
            HeaderValue::try_from(format!("{NAME}; hit; ttl={ttl}")).expect("ASCII"),
        );
        response
    }
}

/// The Correlation-Id the Manager would echo: the client's, sanitised as the engine does
/// (`[0-9a-zA-Z_-]`, at most 36 characters), or this request's id.
fn correlation_id(asked: &Asked<'_>) -> HeaderValue {
    let sent: String = asked
        .headers
        .get(CORRELATION_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(36)
        .collect();
    let id = if sent.is_empty() { asked.request_id } else { &sent };
    HeaderValue::try_from(id).expect("ASCII")
}

/// The request headers that change the body, and where links will point.
fn variant(headers: &HeaderMap, tls: bool) -> String {
    let mut variant = String::from(if tls { "https" } else { "http" });
    for name in [HOST.as_str()].into_iter().chain(VARYING) {
        variant.push('\0');
        for value in headers.get_all(name) {
            variant.push_str(&String::from_utf8_lossy(value.as_bytes()));
            variant.push('\n');
        }
    }
    variant
}

fn with_status(mut response: Response<GatewayBody>, status: &str) -> Response<GatewayBody> {
    response
        .headers_mut()
        .insert(CACHE_STATUS, HeaderValue::try_from(status).expect("ASCII"));
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

enum Read {
    Whole(Bytes),
    /// Longer than the limit: what was read, then the rest, still streaming.
    Over(GatewayBody),
}

/// Reads a body whole if it ends within `limit` bytes.
async fn read_up_to(mut body: GatewayBody, limit: u64) -> Result<Read, BoxError> {
    let mut frames: Vec<Frame<Bytes>> = Vec::new();
    let mut length = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Some(data) = frame.data_ref() else {
            // Trailers: not for the cache.
            frames.push(frame);
            return Ok(Read::Over(chain(frames, body)));
        };
        length += data.len() as u64;
        frames.push(frame);
        if length > limit {
            return Ok(Read::Over(chain(frames, body)));
        }
    }
    let mut whole = bytes::BytesMut::with_capacity(usize::try_from(length).unwrap_or(0));
    for frame in frames {
        if let Ok(data) = frame.into_data() {
            whole.extend_from_slice(&data);
        }
    }
    Ok(Read::Whole(whole.freeze()))
}

fn chain(read: Vec<Frame<Bytes>>, rest: GatewayBody) -> GatewayBody {
    let read = futures_util::stream::iter(read.into_iter().map(Ok));
    GatewayBody::new(StreamBody::new(read.chain(BodyStream::new(rest))))
}

/// Entries expire after their route class's time to live.
struct ByEntry;

impl Expiry<Arc<Key>, Arc<Entry>> for ByEntry {
    #[allow(clippy::disallowed_types, reason = "moka's clock, not the gateway's")]
    fn expire_after_create(
        &self,
        _key: &Arc<Key>,
        entry: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

#[cfg(test)]
mod tests {
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
        )
    }

    /// Looks `path` up as `user` (`method`), and when the cache says to forward, finishes with
    /// `status` and `body`; returns the Cache-Status and the body the client gets.
    async fn ask(
        cache: &Arc<Cache>,
        user: &str,
        method: Method,
        path: &str,
        status: u16,
    ) -> (String, String) {
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

    /// Only answers that may be reused are kept: 200s, without Set-Cookie or no-store.
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
}
