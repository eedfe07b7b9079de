//! The admin listener, on its own address: `/metrics` (Prometheus text), `/healthz` (the process
//! is alive) and `/readyz` (the gateway can serve: any Manager up, or every one, as
//! `admin.ready_when` says; each Manager's state in the body, and with `[shared]` whether the
//! store answers: a gateway without it is degraded, still ready). Plain HTTP, loopback by default;
//! bind it to a private address. It serves no API traffic and never sees credentials.

use std::convert::Infallible;
use std::sync::Arc;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::body::GatewayBody;
use crate::config::{AdminConfig, ReadyWhen};
use crate::metrics::Metrics;
use crate::shared::Shared;
use crate::upstream::Upstream;

pub(crate) struct AdminState {
    pub metrics: Arc<Metrics>,
    pub upstreams: Vec<Arc<Upstream>>,
    pub ready_when: ReadyWhen,
    pub shared: Option<Arc<Shared>>,
}

/// Serves until `shutdown`: at most `config.max_connections` at once (more wait in the accept
/// queue), each closed when its head takes longer than `config.header_read_timeout` or it has
/// been idle that long.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    config: AdminConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let timeout = config.header_read_timeout;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout);
    let builder = Arc::new(builder);
    let mut connections = JoinSet::new();
    loop {
        let accept = crate::connection::accept_within(&listener, &permits);
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            ((stream, _), permit) = accept => {
                let (state, builder) = (state.clone(), builder.clone());
                connections.spawn(async move {
                    let _permit = permit;
                    let service = service_fn(move |request| {
                        let response = answer(&state, &request);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    // Answers are made at once: a connection with nothing in flight for the
                    // header timeout is done (hyper's header timer covers the wait between
                    // requests of a kept-alive connection).
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
    connections.shutdown().await;
}

fn answer(state: &AdminState, request: &Request<Incoming>) -> Response<GatewayBody> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".to_owned(),
        );
    }
    match request.uri().path() {
        "/metrics" => {
            // Per-Manager state is read when scraped, so it is never stale.
            for upstream in &state.upstreams {
                let name = [upstream.name()];
                let metrics = &state.metrics;
                metrics
                    .manager_up
                    .with_label_values(&name)
                    .set(i64::from(upstream.is_up()));
                metrics
                    .breaker_state
                    .with_label_values(&name)
                    .set(upstream.breaker_state().as_gauge());
            }
            text(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                state.metrics.render(),
            )
        }
        "/healthz" => text(
            StatusCode::OK,
            "application/json",
            "{\"status\":\"ok\"}\n".to_owned(),
        ),
        "/readyz" => {
            let managers: serde_json::Map<String, serde_json::Value> = state
                .upstreams
                .iter()
                .map(|u| {
                    let state = serde_json::json!({
                        "up": u.is_up(),
                        "health": u.health_problem().unwrap_or_else(|| "ok".to_owned()),
                        "breaker": u.breaker_state().as_str(),
                    });
                    (u.name().to_owned(), state)
                })
                .collect();
            let mut up = state.upstreams.iter().map(|u| u.is_up());
            let ready = match state.ready_when {
                ReadyWhen::Any => up.any(|up| up),
                ReadyWhen::All => up.all(|up| up),
            };
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let mut body = serde_json::json!({
                "ready": ready,
                "ready_when": state.ready_when.as_str(),
                "managers": managers,
            });
            if let Some(shared) = &state.shared {
                body["shared_store"] = serde_json::json!(if shared.is_up() {
                    "up"
                } else {
                    "unreachable: degraded to local state (docs/replicas.md)"
                });
            }
            text(status, "application/json", format!("{body}\n"))
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found; try /metrics, /healthz or /readyz\n".to_owned(),
        ),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
