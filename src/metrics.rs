//! Every metric of the gateway, defined in one place, in one registry per gateway instance.
//!
//! Names start with `gateway_` and use base units; labels are bounded (manager name, method,
//! status class, error kind): never a user name, path or id, so that every series stays bounded.

use http::{Method, StatusCode};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The label used for requests that matched no Manager.
pub(crate) const NO_MANAGER: &str = "none";

pub struct Metrics {
    registry: Registry,
    pub requests_total: IntCounterVec,
    pub retry_later_responses_total: IntCounterVec,
    pub request_duration_seconds: HistogramVec,
    pub upstream_duration_seconds: HistogramVec,
    pub open_connections: IntGauge,
    pub upstream_errors_total: IntCounterVec,
    pub sso_logins_total: IntCounterVec,
    pub sessions: IntGauge,
    pub sessions_ended_total: IntCounterVec,
    pub auth_failures_total: IntCounterVec,
    pub policy_decisions_total: IntCounterVec,
    pub policy_reloads_total: IntCounterVec,
    pub cache_requests_total: IntCounterVec,
    pub cache_bytes: IntGauge,
    pub cache_entries: IntGauge,
    pub cache_evictions_total: IntCounterVec,
    pub cache_coalesced_total: IntCounter,
    pub ratelimit_decisions_total: IntCounterVec,
    pub ratelimit_delay_seconds: HistogramVec,
    pub manager_inflight: IntGaugeVec,
    pub manager_queued: IntGaugeVec,
    pub manager_up: IntGaugeVec,
    pub breaker_state: IntGaugeVec,
    pub breaker_opened_total: IntCounterVec,
    pub federation_probes_total: IntCounterVec,
    pub login_lockouts_total: IntCounter,
    pub tokens_withheld_total: IntCounterVec,
    pub requests_refused_total: IntCounterVec,
    pub connections_refused_total: IntCounterVec,
    pub anonymous_connections: IntGauge,
    pub client_timeouts_total: IntCounterVec,
    /// The listener certificate's notAfter; one series without labels, present only while a
    /// certificate whose validity could be read is in use (absent with `plain_http`).
    pub tls_certificate_expiry: IntGaugeVec,
}

/// Latency buckets from 1 ms to 2 minutes (the default response timeout).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests_total = IntCounterVec::new(
            Opts::new(
                "gateway_requests_total",
                "Requests answered, by Manager, method and status class",
            ),
            &["manager", "method", "status_class"],
        )
        .expect("valid metric");
        // The status class hides which 4xx and 5xx a client got; these two are the ones that
        // ask it to come back (rate limits and lockouts; a Manager down, open, busy or not
        // ready), whose shares the alerts watch (deploy/README.md, "Metrics").
        let retry_later_responses_total = IntCounterVec::new(
            Opts::new(
                "gateway_retry_later_responses_total",
                "Requests answered 429 (too many requests) or 503 (unavailable), by Manager and code",
            ),
            &["manager", "code"],
        )
        .expect("valid metric");
        let request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "gateway_request_duration_seconds",
                "Time from request head received to response body sent, by Manager",
            )
            .buckets(BUCKETS.to_vec()),
            &["manager"],
        )
        .expect("valid metric");
        let upstream_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "gateway_upstream_duration_seconds",
                "Time from sending a request to a Manager to receiving its response head",
            )
            .buckets(BUCKETS.to_vec()),
            &["manager"],
        )
        .expect("valid metric");
        let open_connections = IntGauge::new("gateway_open_connections", "Client connections currently open")
            .expect("valid metric");
        let upstream_errors_total = IntCounterVec::new(
            Opts::new(
                "gateway_upstream_errors_total",
                "Failed exchanges with a Manager, by kind",
            ),
            &["manager", "kind"],
        )
        .expect("valid metric");
        let sso_logins_total = IntCounterVec::new(
            Opts::new(
                "gateway_sso_logins_total",
                "Logins at a Manager's SSO made by the gateway, by Manager and result (ok, refused, error)",
            ),
            &["manager", "result"],
        )
        .expect("valid metric");
        let sessions = IntGauge::new("gateway_sessions", "Sessions (users logged in at a Manager) held")
            .expect("valid metric");
        let sessions_ended_total = IntCounterVec::new(
            Opts::new(
                "gateway_sessions_ended_total",
                "Sessions and logins ended, by reason (expired, evicted, logout, replaced, refused: \
                 the Manager no longer accepted the token); all but refused revoke their tokens",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let auth_failures_total = IntCounterVec::new(
            Opts::new(
                "gateway_auth_failures_total",
                "Requests refused for their credentials, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let policy_decisions_total = IntCounterVec::new(
            Opts::new(
                "gateway_policy_decisions_total",
                "Authorization decisions, by decision (allow, deny) and mode (enforce, shadow)",
            ),
            &["decision", "mode"],
        )
        .expect("valid metric");
        let policy_reloads_total = IntCounterVec::new(
            Opts::new(
                "gateway_policy_reloads_total",
                "Policy directory reloads, by result (ok, error: the previous policies stay)",
            ),
            &["result"],
        )
        .expect("valid metric");
        let cache_requests_total = IntCounterVec::new(
            Opts::new(
                "gateway_cache_requests_total",
                "API GETs seen by the response cache, by result (hit, miss, bypass)",
            ),
            &["result"],
        )
        .expect("valid metric");
        let cache_bytes = IntGauge::new(
            "gateway_cache_bytes",
            "Bytes held by the response cache (bodies, headers and keys)",
        )
        .expect("valid metric");
        let cache_entries = IntGauge::new("gateway_cache_entries", "Responses held by the response cache")
            .expect("valid metric");
        let cache_evictions_total = IntCounterVec::new(
            Opts::new(
                "gateway_cache_evictions_total",
                "Responses removed from the cache, by reason (expired, size, invalidated, replaced)",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let cache_coalesced_total = IntCounter::new(
            "gateway_cache_coalesced_total",
            "GETs that waited for an identical one already on its way to the Manager instead of asking it",
        )
        .expect("valid metric");
        let ratelimit_decisions_total = IntCounterVec::new(
            Opts::new(
                "gateway_ratelimit_decisions_total",
                "Rate-limit decisions, by scope (ip, user) and result (allowed; delayed: let through \
                 after a wait; limited: refused with 429)",
            ),
            &["scope", "result"],
        )
        .expect("valid metric");
        let ratelimit_delay_seconds = HistogramVec::new(
            HistogramOpts::new(
                "gateway_ratelimit_delay_seconds",
                "How long requests over their bucket were delayed before going on, by scope",
            )
            .buckets(BUCKETS.to_vec()),
            &["scope"],
        )
        .expect("valid metric");
        let tokens_withheld_total = IntCounterVec::new(
            Opts::new(
                "gateway_tokens_withheld_total",
                "Manager answers cut because they carried the request's upstream token, by manager",
            ),
            &["manager"],
        )
        .expect("valid metric");
        let requests_refused_total = IntCounterVec::new(
            Opts::new(
                "gateway_requests_refused_total",
                "Requests refused as not recognised, by reason (method, method_override, path, \
                 engine_path, console_file)",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let connections_refused_total = IntCounterVec::new(
            Opts::new(
                "gateway_connections_refused_total",
                "Client connections closed before they authenticated, by reason (anonymous_per_address: \
                 at once; anonymous_evicted: the oldest, for a newer one)",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let anonymous_connections = IntGauge::new(
            "gateway_anonymous_connections",
            "Client connections open none of whose requests has authenticated yet",
        )
        .expect("valid metric");
        let client_timeouts_total = IntCounterVec::new(
            Opts::new(
                "gateway_client_timeouts_total",
                "Clients cut off for being too slow, by phase (body: sending a request body; \
                 send: reading an answer)",
            ),
            &["phase"],
        )
        .expect("valid metric");
        let manager_inflight = IntGaugeVec::new(
            Opts::new(
                "gateway_manager_inflight",
                "Requests at each Manager (sent, answer not yet ended), by manager",
            ),
            &["manager"],
        )
        .expect("valid metric");
        let manager_queued = IntGaugeVec::new(
            Opts::new(
                "gateway_manager_queued",
                "Requests waiting for a place at each Manager (its concurrency gate), by manager",
            ),
            &["manager"],
        )
        .expect("valid metric");
        let manager_up = IntGaugeVec::new(
            Opts::new(
                "gateway_manager_up",
                "1 when the Manager can be served (its health checks pass and its circuit breaker \
                 is not open), 0 otherwise, by manager; set at each scrape",
            ),
            &["manager"],
        )
        .expect("valid metric");
        let breaker_state = IntGaugeVec::new(
            Opts::new(
                "gateway_manager_breaker_state",
                "Each Manager's circuit breaker: 0 closed, 1 open, 2 half-open (a probe in \
                 flight), by manager; set at each scrape",
            ),
            &["manager"],
        )
        .expect("valid metric");
        let breaker_opened_total = IntCounterVec::new(
            Opts::new(
                "gateway_manager_breaker_opened_total",
                "Times each Manager's circuit breaker opened, by manager",
            ),
            &["manager"],
        )
        .expect("valid metric");
        let federation_probes_total = IntCounterVec::new(
            Opts::new(
                "gateway_federation_probes_total",
                "Probes of the merged view (a GET to every member for what the id index does not \
                 know), by outcome: found, several, absent, unknown (a member could not answer), \
                 refused",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let login_lockouts_total = IntCounter::new(
            "gateway_login_lockouts_total",
            "Lockouts after failed logins (of a user from an address, or of an address)",
        )
        .expect("valid metric");
        // The version as a label of a constant 1, the usual form of build information, so that
        // dashboards and alerts can join it or count the versions running (deploy/README.md,
        // "Metrics").
        let build_info = IntGaugeVec::new(
            Opts::new(
                "gateway_build_info",
                "Always 1; the gateway's version as the label `version`",
            ),
            &["version"],
        )
        .expect("valid metric");
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let tls_certificate_expiry = IntGaugeVec::new(
            Opts::new(
                "gateway_tls_certificate_expiry_timestamp_seconds",
                "When the public listener's certificate (the chain's first) expires, in seconds \
                 since the epoch; set at start and on each reload, absent without TLS",
            ),
            &[],
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests_total.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(retry_later_responses_total.clone()),
            Box::new(request_duration_seconds.clone()),
            Box::new(upstream_duration_seconds.clone()),
            Box::new(open_connections.clone()),
            Box::new(upstream_errors_total.clone()),
            Box::new(sso_logins_total.clone()),
            Box::new(sessions.clone()),
            Box::new(sessions_ended_total.clone()),
            Box::new(auth_failures_total.clone()),
            Box::new(policy_decisions_total.clone()),
            Box::new(policy_reloads_total.clone()),
            Box::new(cache_requests_total.clone()),
            Box::new(cache_bytes.clone()),
            Box::new(cache_entries.clone()),
            Box::new(cache_evictions_total.clone()),
            Box::new(cache_coalesced_total.clone()),
            Box::new(ratelimit_decisions_total.clone()),
            Box::new(ratelimit_delay_seconds.clone()),
            Box::new(manager_inflight.clone()),
            Box::new(manager_queued.clone()),
            Box::new(manager_up.clone()),
            Box::new(breaker_state.clone()),
            Box::new(breaker_opened_total.clone()),
            Box::new(federation_probes_total.clone()),
            Box::new(login_lockouts_total.clone()),
            Box::new(tokens_withheld_total.clone()),
            Box::new(requests_refused_total.clone()),
            Box::new(connections_refused_total.clone()),
            Box::new(anonymous_connections.clone()),
            Box::new(client_timeouts_total.clone()),
            Box::new(build_info),
            Box::new(tls_certificate_expiry.clone()),
        ] {
            registry.register(collector).expect("metric names are unique");
        }
        Metrics {
            registry,
            requests_total,
            retry_later_responses_total,
            request_duration_seconds,
            upstream_duration_seconds,
            open_connections,
            upstream_errors_total,
            sso_logins_total,
            sessions,
            sessions_ended_total,
            auth_failures_total,
            policy_decisions_total,
            policy_reloads_total,
            cache_requests_total,
            cache_bytes,
            cache_entries,
            cache_evictions_total,
            cache_coalesced_total,
            ratelimit_decisions_total,
            ratelimit_delay_seconds,
            manager_inflight,
            manager_queued,
            manager_up,
            breaker_state,
            breaker_opened_total,
            federation_probes_total,
            login_lockouts_total,
            tokens_withheld_total,
            requests_refused_total,
            connections_refused_total,
            anonymous_connections,
            client_timeouts_total,
            tls_certificate_expiry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// The shared store's metrics (docs/replicas.md), registered only with `[shared]`: a gateway
/// alone has no store to be degraded from.
pub(crate) struct SharedStoreMetrics {
    /// 1 while the store answers, 0 while the gateway carries on without it.
    pub up: IntGauge,
    pub errors_total: IntCounterVec,
    /// Events the replicas' channel delivered, by kind.
    pub events_total: IntCounterVec,
}

impl Metrics {
    pub(crate) fn shared_store(&self) -> SharedStoreMetrics {
        let up = IntGauge::new(
            "gateway_shared_store_up",
            "1 while the shared store (Redis) answers; 0 while the gateway is degraded to local state",
        )
        .expect("valid metric");
        let errors_total = IntCounterVec::new(
            Opts::new(
                "gateway_shared_store_errors_total",
                "Exchanges with the shared store that failed or timed out, by operation",
            ),
            &["operation"],
        )
        .expect("valid metric");
        let events_total = IntCounterVec::new(
            Opts::new(
                "gateway_shared_store_events_total",
                "Events of the shared store, by kind: ended, ready, written, login_failed, login_succeeded (heard from the other replicas), down, up",
            ),
            &["kind"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(up.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors_total.clone()),
            Box::new(events_total.clone()),
        ] {
            self.registry
                .register(collector)
                .expect("the shared store's metrics are registered once");
        }
        SharedStoreMetrics {
            up,
            errors_total,
            events_total,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A bounded method label: the methods the API uses, everything else as `other`.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

pub(crate) fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The `code` label of `gateway_retry_later_responses_total`: 429 and 503, nothing else.
pub(crate) fn retry_later_code(status: StatusCode) -> Option<&'static str> {
    match status {
        StatusCode::TOO_MANY_REQUESTS => Some("429"),
        StatusCode::SERVICE_UNAVAILABLE => Some("503"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unusual methods share one label, so a client cannot grow the label set.
    #[test]
    fn unknown_methods_share_a_label() {
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::GET), "GET");
    }

    /// Status codes collapse to their class.
    #[test]
    fn status_classes() {
        assert_eq!(status_class(StatusCode::OK), "2xx");
        assert_eq!(status_class(StatusCode::NOT_FOUND), "4xx");
        assert_eq!(status_class(StatusCode::BAD_GATEWAY), "5xx");
    }

    /// Only 429 and 503 are counted as answers asking to retry later.
    #[test]
    fn retry_later_codes() {
        assert_eq!(retry_later_code(StatusCode::TOO_MANY_REQUESTS), Some("429"));
        assert_eq!(retry_later_code(StatusCode::SERVICE_UNAVAILABLE), Some("503"));
        for other in [StatusCode::OK, StatusCode::BAD_GATEWAY, StatusCode::FORBIDDEN] {
            assert_eq!(retry_later_code(other), None);
        }
    }

    /// The build's version is exposed from the start; the certificate's expiry only once set.
    #[test]
    fn build_info_and_certificate_expiry() {
        let metrics = Metrics::new();
        let text = metrics.render();
        let build = format!(
            "gateway_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&build), "{build} missing in\n{text}");
        assert!(
            !text.contains("gateway_tls_certificate_expiry_timestamp_seconds"),
            "{text}"
        );
        metrics
            .tls_certificate_expiry
            .with_label_values::<&str>(&[])
            .set(2_524_608_000);
        let text = metrics.render();
        assert!(
            text.contains("\ngateway_tls_certificate_expiry_timestamp_seconds 2524608000\n"),
            "{text}"
        );
    }

    /// Every metric appears in the exposition once it has a value.
    #[test]
    fn render_lists_metrics() {
        let metrics = Metrics::new();
        metrics
            .requests_total
            .with_label_values(&["m", "GET", "2xx"])
            .inc();
        metrics
            .upstream_errors_total
            .with_label_values(&["m", "connect"])
            .inc();
        metrics
            .request_duration_seconds
            .with_label_values(&["m"])
            .observe(0.1);
        metrics
            .upstream_duration_seconds
            .with_label_values(&["m"])
            .observe(0.1);
        let text = metrics.render();
        for name in [
            "gateway_requests_total{manager=\"m\",method=\"GET\",status_class=\"2xx\"} 1",
            "gateway_open_connections 0",
            "gateway_upstream_errors_total{kind=\"connect\",manager=\"m\"} 1",
            "gateway_request_duration_seconds_bucket",
            "gateway_upstream_duration_seconds_bucket",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
    }
}
