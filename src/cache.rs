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

mod buffer;
mod coalesce;
mod directives;
mod index;
mod key;
mod status;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    AGE, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, DATE, HeaderMap, HeaderName, HeaderValue, IF_MATCH,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, PRAGMA, RANGE, SET_COOKIE,
};
use http::{Method, Response, StatusCode};
use moka::Expiry;
use moka::notification::RemovalCause;
use ring::hmac;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use self::buffer::{Read, read_up_to};
use self::coalesce::{Inflight, Join, Leading};
use self::directives::directives;
use self::index::{Index, Place};
use self::key::{Key, token_identity};
pub(crate) use self::status::{CacheStatus, Forwarded, NotStored, Outcome};
use crate::api::canonical_id;
use crate::api::path::{ApiPath, EngineArea};
use crate::body::{BoxError, GatewayBody};
use crate::config::CacheConfig;
use crate::metrics::Metrics;
use crate::shared::{Event, Message, Shared};

pub(crate) const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
const CORRELATION_ID: HeaderName = HeaderName::from_static("correlation-id");

struct Entry {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    stored: Instant,
    ttl: Duration,
    place: Option<Place>,
    weight: u32,
}

pub(crate) struct Cache {
    config: CacheConfig,
    entries: moka::future::Cache<Arc<Key>, Arc<Entry>>,
    index: Arc<Index>,
    inflight: Arc<Inflight>,
    /// Keys the identity of a passed-through token.
    secret: hmac::Key,
    metrics: Arc<Metrics>,
    /// `[shared]`: writes through other replicas evict here too (docs/replicas.md).
    shared: Option<Arc<Shared>>,
}

/// The request, as the cache sees it.
pub(crate) struct Asked<'a> {
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

pub(crate) enum Lookup {
    Hit(Response<GatewayBody>),
    Forward(Pending),
}

/// What to do with the Manager's answer.
pub(crate) enum Pending {
    /// Store it when it can be; waiters are released when this is dropped.
    Store(Ticket),
    /// A write: on success, evict what it touched.
    Invalidate(Place),
    /// Pass it on, saying why it was not looked up, or nothing (not an API GET).
    Pass(Option<Forwarded>),
}

pub(crate) struct Ticket {
    key: Arc<Key>,
    place: Option<Place>,
    ttl: Duration,
    /// The collection's write count when the request left.
    writes: u64,
    /// A miss, or `request` when the client asked for a fresh answer.
    fwd: Forwarded,
    /// Present when this request leads identical ones.
    _leading: Option<Leading>,
}

impl Cache {
    pub(crate) fn new(config: CacheConfig, metrics: Arc<Metrics>, shared: Option<Arc<Shared>>) -> Arc<Cache> {
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
                if cause != RemovalCause::Replaced
                    && let Some(place) = &entry.place
                {
                    listener_index.forget(&key, place);
                }
            })
            .build();
        let rng = ring::rand::SystemRandom::new();
        Arc::new(Cache {
            config,
            entries,
            index,
            inflight: Arc::default(),
            secret: hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system random source works"),
            metrics,
            shared,
        })
    }

    /// Follows the other replicas' writes, for as long as the gateway runs: each evicts here
    /// what it touched. When the store is lost or back, writes may have gone unheard: the whole
    /// cache goes (and while it is lost, answers are kept `shared.degraded_ttl` at most).
    pub(crate) async fn follow(self: Arc<Self>) {
        let Some(shared) = self.shared.clone() else { return };
        let mut events = shared.subscribe();
        loop {
            match events.recv().await {
                Ok(Event::Message(Message::Written {
                    manager,
                    collection,
                    id,
                })) => {
                    self.evict(&Place {
                        manager,
                        collection,
                        id,
                    })
                    .await;
                }
                Ok(Event::Down | Event::Up) | Err(RecvError::Lagged(_)) => self.entries.invalidate_all(),
                Ok(Event::Message(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Evicts what a write on `place` touched.
    async fn evict(&self, place: &Place) {
        for key in self.index.written(place) {
            self.entries.invalidate(&key).await;
        }
    }

    /// Answers from the cache, or says what to do with the Manager's answer.
    pub(crate) async fn lookup(self: &Arc<Cache>, asked: &Asked<'_>) -> Lookup {
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
                (&Method::HEAD, _) => self.bypass(Forwarded::Method),
                _ => Pending::Pass(None),
            });
        }
        let cache_control = directives(asked.headers, &CACHE_CONTROL);
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
        if conditional || cache_control.iter().any(|d| d.is("no-store")) {
            return Lookup::Forward(self.bypass(Forwarded::Request));
        }
        let refresh = cache_control
            .iter()
            .any(|d| d.is("no-cache") || (d.is("max-age") && d.argument.as_deref() == Some("0")))
            || directives(asked.headers, &PRAGMA)
                .iter()
                .any(|d| d.is("no-cache"));
        let shared = place
            .as_ref()
            .is_some_and(|p| self.config.shared_collections.contains(&p.collection));
        let identity = match (shared, asked.user, asked.headers.get(AUTHORIZATION)) {
            (true, _, _) => String::new(),
            (false, Some(user), _) => user.to_owned(),
            (false, None, Some(authorization)) => token_identity(&self.secret, authorization.as_bytes()),
            (false, None, None) => return Lookup::Forward(self.bypass(Forwarded::Bypass)),
        };
        let key = Arc::new(Key::new(
            asked.manager,
            identity,
            asked.target.clone(),
            asked.headers,
            asked.tls,
            &asked.path.public_prefix,
        ));
        let mut ttl = match api.segments.len() {
            0 => self.config.ttl.root,
            1 => self.config.ttl.collection,
            2 => self.config.ttl.entity,
            _ => self.config.ttl.below,
        };
        // Other replicas' writes cannot be heard of now.
        if let Some(shared) = &self.shared
            && !shared.is_up()
        {
            ttl = ttl.min(shared.degraded_ttl());
        }
        let ticket = |cache: &Cache, leading| Ticket {
            writes: place.as_ref().map_or(0, |p| cache.index.writes(p)),
            key: key.clone(),
            place: place.clone(),
            ttl,
            fwd: if refresh {
                Forwarded::Request
            } else {
                Forwarded::Miss
            },
            _leading: leading,
        };
        if refresh {
            self.count(Outcome::Bypass);
            return Lookup::Forward(Pending::Store(ticket(self, None)));
        }
        if let Some(entry) = self.fresh(&key).await {
            self.count(Outcome::Hit);
            return Lookup::Hit(entry.respond(asked));
        }
        let mut waiting = match self.inflight.join(&key) {
            Join::Lead(leading) => {
                self.count(Outcome::Miss);
                return Lookup::Forward(Pending::Store(ticket(self, Some(leading))));
            }
            Join::Wait(receiver) => receiver,
        };
        self.metrics.cache_coalesced_total.inc();
        // Err once the leader is done, whatever became of its answer.
        let _ = waiting.changed().await;
        if let Some(entry) = self.fresh(&key).await {
            self.count(Outcome::Hit);
            return Lookup::Hit(entry.respond(asked));
        }
        // The leader's answer was not stored (an error, a 404, too large): nothing is shared, and
        // the waiters ask the Manager at once rather than one after another.
        self.count(Outcome::Miss);
        Lookup::Forward(Pending::Store(ticket(self, None)))
    }

    /// The Manager's answer, stored when it can be, with its Cache-Status.
    pub(crate) async fn finish(
        &self,
        pending: Pending,
        response: Response<GatewayBody>,
    ) -> Result<Response<GatewayBody>, BoxError> {
        match pending {
            Pending::Pass(None) => Ok(response),
            Pending::Pass(Some(fwd)) => Ok(with_status(response, CacheStatus::Passed(fwd))),
            Pending::Invalidate(place) => {
                if response.status().is_success() {
                    self.evict(&place).await;
                    // The other replicas hear of it before the write's answer returns (they
                    // evict as soon as the message arrives: docs/replicas.md).
                    if let Some(shared) = &self.shared {
                        let _ = shared
                            .publish(&Message::Written {
                                manager: place.manager,
                                collection: place.collection,
                                id: place.id,
                            })
                            .await;
                    }
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
        let refused = |why, response| Ok(with_status(response, CacheStatus::NotStored(fwd, why)));
        if response.status() != StatusCode::OK {
            return refused(NotStored::Status, response);
        }
        if response.headers().contains_key(SET_COOKIE) {
            return refused(NotStored::SetCookie, response);
        }
        let private = directives(response.headers(), &CACHE_CONTROL)
            .iter()
            .any(|d| d.is("no-store") || d.is("private") || d.is("no-cache"));
        if private {
            return refused(NotStored::NoStore, response);
        }
        let limit = self.config.max_entry_bytes;
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit) {
            return refused(NotStored::TooLarge, response);
        }
        let (parts, body) = response.into_parts();
        let body = match read_up_to(body, limit).await? {
            Read::Whole(body) => body,
            Read::Over(body) => return refused(NotStored::TooLarge, Response::from_parts(parts, body)),
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
            return refused(NotStored::Written, response);
        }
        Ok(with_status(response, CacheStatus::Stored(fwd)))
    }

    /// Stores an entry unless a write to its collection completed since its request left.
    async fn enter(&self, ticket: &Ticket, entry: Arc<Entry>) -> bool {
        if let Some(place) = &ticket.place
            && !self.index.record(place, &ticket.key, ticket.writes)
        {
            return false;
        }
        self.metrics.cache_bytes.add(i64::from(entry.weight));
        self.metrics.cache_entries.inc();
        self.entries.insert(ticket.key.clone(), entry).await;
        // A write that completed meanwhile evicted what the index held, maybe before this
        // insert: evict it again.
        if let Some(place) = &ticket.place
            && self.index.writes(place) != ticket.writes
        {
            self.entries.invalidate(&ticket.key).await;
            return false;
        }
        true
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

    fn bypass(&self, fwd: Forwarded) -> Pending {
        self.count(Outcome::Bypass);
        Pending::Pass(Some(fwd))
    }

    fn count(&self, outcome: Outcome) {
        self.metrics
            .cache_requests_total
            .with_label_values(&[outcome.as_str()])
            .inc();
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
        headers.insert(CACHE_STATUS, CacheStatus::Hit { ttl }.header_value());
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

fn with_status(mut response: Response<GatewayBody>, status: CacheStatus) -> Response<GatewayBody> {
    response.headers_mut().insert(CACHE_STATUS, status.header_value());
    response
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
mod tests;
