//! The Managers behind the gateway: one pooled HTTP client per Manager, its timeouts, the one safe
//! retry, the classification of failures ([`SendError`]), and the health checks behind /readyz.
//!
//! Never retries a request whose body could have been sent (docs/invariants.md, invariant 5): only GET, HEAD
//! and OPTIONS without a body are tried a second time, and only when the first connect failed.

pub(crate) mod breaker;
pub(crate) mod gate;
pub(crate) mod router;

use std::sync::Mutex;
use std::time::Duration;

use http::uri::PathAndQuery;
use http::{Method, Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

use crate::body::{GatewayBody, IdleTimeoutBody, ObservedBody, RequestBodyError, caused_by};
use crate::config::{ManagerConfig, UpstreamTls};
use crate::fault::TimeoutPhase;
use crate::metrics::Metrics;

type HttpClient = Client<HttpsConnector<HttpConnector>, GatewayBody>;

/// How long pooled connections to a Manager may stay idle.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Upper bound for one health check.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Upstream {
    pub config: ManagerConfig,
    client: HttpClient,
    health: Mutex<Health>,
    /// At most so many requests at the Manager at once (`[rate_limit.manager]`).
    gate: Option<gate::Gate>,
    /// `None` when `breaker_failures = 0`.
    breaker: Option<breaker::Breaker>,
}

/// Why a request got no answer from a Manager; pipeline/rescue.rs makes it a fault.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum SendError {
    /// The Manager's concurrency gate gave the request no place.
    #[error("Manager '{manager}' is serving as many requests as the gateway lets through and {why}")]
    Busy {
        manager: String,
        /// Too many waiting, or none came free in time.
        why: &'static str,
        retry_after: Duration,
    },
    /// No connection, or no response head, within the configured time.
    #[error("Manager '{manager}' ran out of time {}", .phase.during())]
    Timeout { manager: String, phase: TimeoutPhase },
    /// The Manager's circuit breaker is open: the request was not sent.
    #[error("Manager '{manager}' failed {failures} exchanges in a row; the gateway sends it nothing for now")]
    CircuitOpen {
        manager: String,
        failures: u32,
        retry_after: Duration,
    },
    /// The connect failed while the Manager is failing its health checks.
    #[error("Manager '{manager}' is failing its health checks and refused the connection")]
    NotReady { manager: String, retry_after: Duration },
    /// The connect failed, or the Manager broke the exchange.
    #[error("could not reach Manager '{manager}': {cause}")]
    Unreachable { manager: String, cause: String },
    /// The client's request body failed on the way: the client's doing, not the Manager's.
    #[error(transparent)]
    ClientBody(RequestBodyError),
}

/// The outcome of the latest health check.
#[derive(Debug, Clone, Default)]
struct Health {
    checked_at: Option<Instant>,
    error: Option<String>,
}

impl Upstream {
    /// Builds the client; fails when the Manager's TLS material cannot be loaded.
    pub(crate) fn new(config: ManagerConfig) -> Result<Upstream, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.timeouts.connect));
        let connector = match crate::tls::client_config(&config.tls)? {
            Some(tls) => hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_only()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http),
            None => hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(crate::tls::client_config(&UpstreamTls::Insecure)?.expect("a TLS config"))
                .https_or_http()
                .enable_http1()
                .wrap_connector(http),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Ok(Upstream {
            gate: config.concurrency.map(gate::Gate::new),
            breaker: config.breaker.map(breaker::Breaker::new),
            config,
            client,
            health: Mutex::new(Health::default()),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    /// New sizes for this Manager's concurrency gate (a reload); none when limits are off.
    pub(crate) fn resize_gate(&self, concurrency: crate::config::Concurrency) {
        if let Some(gate) = &self.gate {
            gate.reconfigure(concurrency);
        }
    }

    /// The absolute URI of `path_and_query` (already carrying the upstream prefix) at this Manager.
    pub(crate) fn uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme(self.config.scheme.clone())
            .authority(self.config.authority.clone())
            .path_and_query(PathAndQuery::try_from(path_and_query)?)
            .build()
    }

    /// `GET {upstream prefix}/ovirt-engine/api{path}` as JSON (Version 4) with `headers` (the
    /// caller's credentials): the status and the body, read whole (at most `limit` bytes, within
    /// the body idle timeout) and parsed. For the gateway's own questions to the Manager.
    pub(crate) async fn get_api_json(
        &self,
        path: &str,
        headers: http::HeaderMap,
        caller: gate::Caller<'_>,
        metrics: &Metrics,
        limit: usize,
    ) -> Result<(http::StatusCode, serde_json::Value), String> {
        use http_body_util::{BodyExt, Limited};
        let uri = self
            .uri(&format!("{}/ovirt-engine/api{path}", self.config.upstream_prefix))
            .map_err(|e| e.to_string())?;
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .header(http::header::ACCEPT, "application/json")
            .header("version", "4")
            .body(GatewayBody::empty())
            .expect("a valid request");
        request.headers_mut().extend(headers);
        let response = self
            .send(request, caller, metrics)
            .await
            .map_err(|f| f.to_string())?;
        let status = response.status();
        let body = tokio::time::timeout(
            self.config.timeouts.body_idle,
            Limited::new(response.into_body(), limit).collect(),
        )
        .await
        .map_err(|_| "the answer did not arrive in time".to_owned())?
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
        let value =
            serde_json::from_slice(&body).map_err(|_| format!("the Manager answered {status}, not JSON"))?;
        Ok((status, value))
    }

    /// Sends a request and returns the Manager's response head with its body still streaming.
    pub(crate) async fn send(
        &self,
        request: Request<GatewayBody>,
        caller: gate::Caller<'_>,
        metrics: &Metrics,
    ) -> Result<Response<GatewayBody>, SendError> {
        // A Manager that keeps failing is not asked at all until its breaker lets a probe through.
        let admitted = match &self.breaker {
            Some(breaker) => Some(breaker.admit().map_err(|open| SendError::CircuitOpen {
                manager: self.name().to_owned(),
                failures: open.failures,
                retry_after: open.retry_after,
            })?),
            None => None,
        };
        // A place at the Manager before anything is sent, held until the answer's body ends.
        let pass = match &self.gate {
            Some(gate) => {
                let inflight = metrics.manager_inflight.with_label_values(&[self.name()]);
                let queued = metrics.manager_queued.with_label_values(&[self.name()]);
                Some(
                    gate.enter(caller, inflight, queued)
                        .await
                        .map_err(|refused| SendError::Busy {
                            manager: self.name().to_owned(),
                            why: refused.describe(),
                            retry_after: gate.config().wait,
                        })?,
                )
            }
            None => None,
        };
        let retry = replay_copy(&request);
        let started = Instant::now();
        let mut outcome = self.send_once(request).await;
        if let (Err(error), Some(copy)) = (&outcome, retry)
            && error.is_connect()
        {
            tracing::debug!(manager = %self.name(), %error, "connect failed; retrying once");
            outcome = self.send_once(copy.map(|()| GatewayBody::empty())).await;
        }
        metrics
            .upstream_duration_seconds
            .with_label_values(&[self.name()])
            .observe(started.elapsed().as_secs_f64());
        if let Some(admitted) = admitted {
            // A client's failing body says nothing about the Manager.
            let verdict = match &outcome {
                Ok(response) => Some(!failing_front_end(response.status())),
                Err(Failure::Client(error)) if caused_by::<RequestBodyError>(error).is_some() => None,
                Err(_) => Some(false),
            };
            if let Some(success) = verdict {
                self.breaker_moved(admitted.settle(success), metrics);
            }
        }
        match outcome {
            Ok(response) => {
                let idle = self.config.timeouts.body_idle;
                Ok(response.map(|body| {
                    let body = GatewayBody::new(IdleTimeoutBody::new(body, idle));
                    match pass {
                        Some(pass) => GatewayBody::new(ObservedBody::new(body, None, move |_, _| drop(pass))),
                        None => body,
                    }
                }))
            }
            Err(failure) => {
                let error = self.classify(&failure);
                if !matches!(error, SendError::ClientBody(_)) {
                    metrics
                        .upstream_errors_total
                        .with_label_values(&[self.name(), failure.kind()])
                        .inc();
                }
                Err(error)
            }
        }
    }

    async fn send_once(
        &self,
        request: Request<GatewayBody>,
    ) -> Result<Response<hyper::body::Incoming>, Failure> {
        match tokio::time::timeout(
            self.config.timeouts.response_headers,
            self.client.request(request),
        )
        .await
        {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(Failure::Client(error)),
            Err(_) => Err(Failure::HeadersTimeout),
        }
    }

    fn classify(&self, failure: &Failure) -> SendError {
        let manager = self.name().to_owned();
        let error = match failure {
            Failure::HeadersTimeout => {
                return SendError::Timeout {
                    manager,
                    phase: TimeoutPhase::ResponseHeaders,
                };
            }
            Failure::Client(error) => error,
        };
        // The client's body failed on the way: the client's fault, not the Manager's.
        if let Some(why) = caused_by::<RequestBodyError>(error) {
            return SendError::ClientBody(why.clone());
        }
        let timed_out =
            caused_by::<std::io::Error>(error).is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
        if error.is_connect() && timed_out {
            return SendError::Timeout {
                manager,
                phase: TimeoutPhase::Connect,
            };
        }
        if error.is_connect() && self.failed_health_check() {
            return SendError::NotReady {
                manager,
                retry_after: self.config.health_interval,
            };
        }
        SendError::Unreachable {
            manager,
            cause: root_cause(error),
        }
    }

    /// Logs and counts what a breaker transition changed.
    fn breaker_moved(&self, transition: breaker::Transition, metrics: &Metrics) {
        match transition {
            breaker::Transition::None => {}
            breaker::Transition::Opened => {
                tracing::warn!(manager = %self.name(), "circuit breaker opened: requests to this Manager fail at once for now");
                metrics
                    .breaker_opened_total
                    .with_label_values(&[self.name()])
                    .inc();
            }
            breaker::Transition::Closed => {
                tracing::info!(manager = %self.name(), "circuit breaker closed: the Manager answers again");
            }
        }
    }

    /// The breaker's state; closed when there is none.
    pub(crate) fn breaker_state(&self) -> breaker::BreakerState {
        self.breaker
            .as_ref()
            .map_or(breaker::BreakerState::Closed, breaker::Breaker::state)
    }

    /// Whether the Manager can be served now: its health checks pass and its breaker is not
    /// open (docs/federation.md, "Readiness").
    pub(crate) fn is_up(&self) -> bool {
        self.is_ready() && self.breaker_state() != breaker::BreakerState::Open
    }

    /// Whether the latest health check, at most three intervals ago, succeeded.
    fn is_ready(&self) -> bool {
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        health.error.is_none()
            && health
                .checked_at
                .is_some_and(|at| at.elapsed() <= self.config.health_interval * 3 + HEALTH_TIMEOUT)
    }

    /// Whether the latest health check ran and failed (not merely: none ran yet).
    pub(crate) fn failed_health_check(&self) -> bool {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .error
            .is_some()
    }

    /// Why the Manager is not ready, for /readyz.
    pub(crate) fn health_problem(&self) -> Option<String> {
        if self.is_ready() {
            return None;
        }
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        Some(health.error.clone().unwrap_or_else(|| match health.checked_at {
            None => "not checked yet".to_owned(),
            Some(_) => "no recent health check".to_owned(),
        }))
    }

    /// One health check: `GET /ovirt-engine/services/health` must answer 200 in time.
    pub(crate) async fn check_health(&self, metrics: &Metrics) {
        let error = match self.uri(&format!(
            "{}/ovirt-engine/services/health",
            self.config.upstream_prefix
        )) {
            Err(e) => Some(e.to_string()),
            Ok(uri) => {
                let request = Request::get(uri)
                    .body(GatewayBody::empty())
                    .expect("a valid request");
                match tokio::time::timeout(HEALTH_TIMEOUT, self.client.request(request)).await {
                    Ok(Ok(response)) if response.status().is_success() => None,
                    Ok(Ok(response)) => Some(format!("health check answered {}", response.status())),
                    Ok(Err(e)) => Some(format!("health check failed: {}", root_cause(&e))),
                    Err(_) => Some(format!("health check timed out after {HEALTH_TIMEOUT:?}")),
                }
            }
        };
        match (&error, &self.breaker) {
            (Some(error), _) => tracing::warn!(manager = %self.name(), %error, "Manager is not healthy"),
            (None, Some(breaker)) => self.breaker_moved(breaker.health_passed(), metrics),
            (None, None) => {}
        }
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = Health {
            checked_at: Some(Instant::now()),
            error,
        };
    }

    /// Checks health every `health_interval` until the task is dropped.
    pub(crate) async fn watch_health(&self, metrics: &Metrics) {
        let mut ticker = tokio::time::interval(self.config.health_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.check_health(metrics).await;
        }
    }
}

enum Failure {
    Client(hyper_util::client::legacy::Error),
    HeadersTimeout,
}

impl Failure {
    fn is_connect(&self) -> bool {
        matches!(self, Failure::Client(error) if error.is_connect())
    }

    /// The metric label of this failure.
    fn kind(&self) -> &'static str {
        match self {
            Failure::HeadersTimeout => "timeout",
            Failure::Client(error) if error.is_connect() => "connect",
            Failure::Client(_) => "protocol",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Client(error) => write!(f, "{}", root_cause(error)),
            Failure::HeadersTimeout => write!(f, "no response headers in time"),
        }
    }
}

/// A status the engine's Apache front end answers when the engine behind it is down or stuck:
/// to the breaker, a failed exchange.
fn failing_front_end(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

/// A copy of a request's head for the one connect retry, when the request may be retried at all:
/// GET, HEAD or OPTIONS with no body.
fn replay_copy(request: &Request<GatewayBody>) -> Option<Request<()>> {
    use http_body::Body;
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe || !request.body().is_end_stream() {
        return None;
    }
    let mut copy = Request::new(());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

/// The innermost message of an error chain ("Connection refused (os error 111)").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
