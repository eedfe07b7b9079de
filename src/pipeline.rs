//! The request path: the stages of docs/architecture.md ("One request"), in order, in one function.
//!
//! Each stage is a thin file under `pipeline/` that calls a domain module and returns the value the
//! next stage needs, or a [`Fault`] that ends the request. Faults become responses here, through
//! `rescue::respond`, and every response, relayed or made here, is observed once when its body ends:
//! one access-log line and the request metrics.

mod authenticate;
mod authorize;
mod context;
mod forward;
mod limit;
mod lookup;
mod merged;
mod prepare;
mod rescue;
mod route;
mod store;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::header::SET_COOKIE;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

pub(crate) use context::RequestContext;

use crate::auth::sso_endpoint::{self, Endpoint};
use crate::auth::{Authenticator, Principal};
use bytes::Bytes;
use http_body_util::BodyExt;

use crate::api::path::ApiPath;
use crate::body::{BodyEnd, GatewayBody, ObservedBody, RequestBodyError, caused_by};
use crate::config::{ConsoleFiles, Limits};
use crate::connection::{ConnInfo, InFlight};
use crate::fault::{Blame, Fault};
use crate::metrics::{Metrics, NO_MANAGER, method_label, retry_later_code, status_class};
use crate::token_guard::{Shield, console};
use crate::upstream::Upstream;
use crate::upstream::router::Router;
use authenticate::Identity;

/// What every request of one gateway instance shares.
pub(crate) struct GatewayState {
    pub limits: Limits,
    pub router: Router,
    pub upstreams: Vec<Arc<Upstream>>,
    pub metrics: Arc<Metrics>,
    pub auth: Arc<Authenticator>,
    pub policy: Option<Arc<crate::policy::Enforcer>>,
    pub cache: Option<Arc<crate::cache::Cache>>,
    pub rate_limit: Option<Arc<crate::ratelimit::RateLimiter>>,
    /// `[federation]`: the merged view.
    pub federation: Option<Arc<crate::federation::Federation>>,
}

/// Answers one request. Never fails: every failure is a fault response.
pub(crate) async fn handle(
    state: Arc<GatewayState>,
    conn: ConnInfo,
    request: Request<Incoming>,
) -> Response<GatewayBody> {
    // Counted from the start, so that the idle timeout never cuts a request waiting on its Manager.
    let in_flight = conn.activity.request_started();
    let mut ctx = RequestContext::new(&conn, &request, &state.limits.trusted_proxies);
    let response = match run(&state, &mut ctx, request).await {
        Ok(response) => response,
        Err(fault) => {
            match fault.blame() {
                Blame::Client | Blame::Credentials => {
                    tracing::debug!(request_id = %ctx.id, %fault, "refused")
                }
                Blame::Upstream => {
                    tracing::warn!(request_id = %ctx.id, manager = ?ctx.manager, %fault, "upstream failure")
                }
            }
            rescue::respond(&fault, ctx.repr)
        }
    };
    // The client as the context knows it: behind a trusted proxy, the address it named.
    observe(state.metrics.clone(), ctx, in_flight, response)
}

/// The stages, in order.
async fn run(
    state: &GatewayState,
    ctx: &mut RequestContext,
    request: Request<Incoming>,
) -> Result<Response<GatewayBody>, Fault> {
    // prepare first: limits apply before any other stage looks at the request, and the body is
    // wrapped before anything could start reading it.
    let request = prepare::prepare(&state.limits, ctx, request)?;
    // Methods the API does not use and method overrides are refused before anything acts on
    // them, SSO endpoints included.
    prepare::recognised_method(&request).map_err(|(why, fault)| {
        let reason = match why {
            prepare::Unrecognised::Method => "method",
            prepare::Unrecognised::Override => "method_override",
        };
        refused(state, reason);
        fault
    })?;
    // limit(ip) before anything is done for the request: floods of logins or of anything else
    // from one address stop here.
    limit::by_address(state.rate_limit.as_deref(), ctx).await?;
    // The gateway's own SSO endpoints, on every host: the SDK derives them from scheme://host:port
    // alone, so they are answered before routing, which would need a Manager at that path.
    if let Some(endpoint) = Endpoint::of_path(request.uri().path()) {
        let covered: Vec<Arc<Upstream>> = state
            .router
            .reachable(ctx.host.as_deref())
            .into_iter()
            .map(|i| state.upstreams[i].clone())
            .collect();
        // The branches a warm request never takes are boxed, so that their futures do not
        // weigh on every request's (docs/performance.md, "Against nginx").
        return Ok(Box::pin(answer_sso(endpoint, state, ctx, &covered, request)).await);
    }
    // route before everything that needs to know the Manager or the resource; the path is parsed
    // here once, and rejected here if ambiguous, before any stage could act on it.
    let routed = route::route(&state.router, &state.upstreams, ctx, &request).inspect_err(|fault| {
        if matches!(fault, Fault::AmbiguousPath { .. }) {
            refused(state, "path");
        }
    })?;
    match routed {
        route::Routed::Manager(upstream, api_path) => {
            run_at(state, ctx, upstream, api_path, request, false).await
        }
        // The merged view picks its member(s), then runs the stages below for each.
        // Boxed as the SSO endpoints above.
        route::Routed::Merged(api_path) => Box::pin(merged::serve(state, ctx, api_path, request)).await,
    }
}

/// The stages after routing, for one Manager; `merged` when the request came on the merged
/// view's route.
async fn run_at(
    state: &GatewayState,
    ctx: &mut RequestContext,
    upstream: Arc<Upstream>,
    api_path: ApiPath,
    request: Request<GatewayBody>,
    merged: bool,
) -> Result<Response<GatewayBody>, Fault> {
    ctx.manager = Some(upstream.name().to_owned());
    // The same endpoints under a Manager's prefix (a client given an explicit sso_url): the
    // gateway answers them too, for that Manager; a Manager's own token would be refused anyway.
    if let Some(endpoint) = Endpoint::of_path(&api_path.engine_path) {
        // Boxed as in `run`.
        return Ok(Box::pin(answer_sso(endpoint, state, ctx, &[upstream], request)).await);
    }
    // Only what was recognised reaches a Manager: outside the API, an allow-list.
    route::recognised(&upstream, &api_path, request.method())
        .inspect_err(|_| refused(state, "engine_path"))?;
    let mut request = request;
    let logins = state.rate_limit.as_ref().map(|limits| limits.logins());
    // authenticate once the Manager is known: sessions and upstream tokens are per Manager.
    let (identity, set_cookie) =
        authenticate::authenticate(&state.auth, logins, &upstream, &api_path, ctx, &mut request).await?;
    if !matches!(identity, Identity::Untouched) {
        ctx.connection.authenticated();
    }
    // A Manager's own token is good at that Manager only: the merged view, which may send a
    // request to any member, never passes one on.
    if merged
        && matches!(identity, Identity::Untouched)
        && matches!(api_path.area, crate::api::path::EngineArea::Api(_))
    {
        return Err(Fault::Unauthorized {
            detail: "The merged view takes Basic credentials or a token from this gateway's SSO; a Manager's own token is good on that Manager's route only".into(),
        });
    }
    // limit(principal) once the user is known, before the policy decision and anything that
    // could reach the Manager (attribute lookups included).
    limit::by_user(
        state.rate_limit.as_deref(),
        state.policy.as_deref(),
        ctx,
        request.method(),
        &api_path,
    )
    .await?;
    // authorize once the user is known, before anything reaches the Manager.
    authorize::authorize(
        state.policy.as_deref(),
        &upstream,
        &state.metrics,
        &api_path,
        ctx,
        request.headers(),
    )
    .await?;
    // Before anything reaches the Manager: a console descriptor carries the token the request
    // goes with, so it is refused, stripped or passed by one rule; every other answer is scanned
    // for that token (token_guard.rs).
    let console = console::is_descriptor_request(request.method(), &api_path, request.headers());
    let shield = match (&identity, console.then(|| state.auth.console_files())) {
        (Identity::Untouched, _) => Shield::Off,
        (_, None) => Shield::Scan,
        (_, Some(ConsoleFiles::Refuse)) => {
            refused(state, "console_file");
            return Err(Fault::Forbidden {
                detail: console::refusal(),
            });
        }
        (_, Some(ConsoleFiles::StripToken)) => Shield::StripConsole,
        (_, Some(ConsoleFiles::Pass)) => Shield::Off,
    };
    // cache lookup once the request is authorized (invariant 1: a hit gets the decision a miss
    // would) and authenticated (entries are per user), before anything reaches the Manager.
    // Console descriptors are never cached: they are made for one session.
    let cache = state.cache.as_ref().filter(|_| !console);
    let pending = match cache {
        Some(cache) => match lookup::lookup(cache, &upstream, &api_path, ctx, &request).await {
            Ok(mut hit) => {
                if let Some(cookie) = set_cookie {
                    hit.headers_mut().append(SET_COOKIE, cookie);
                }
                return Ok(hit);
            }
            Err(pending) => Some((cache, pending)),
        },
        None => None,
    };
    // Basic requests keep what a resend after a fresh login needs: the head, and small bodies.
    let (request, replay) = match identity {
        Identity::Basic(_) => keep_for_resend(request, state.auth.resend_body_bytes()).await?,
        _ => (request, None),
    };
    // forward last: only what passed every stage above reaches the Manager.
    let response = forward::forward(
        &upstream,
        &api_path,
        ctx,
        &state.metrics,
        state.limits.compression_level,
        shield,
        request,
    )
    .await?;
    // A token passed through is the Manager's to accept.
    if matches!(identity, Identity::Untouched)
        && matches!(api_path.area, crate::api::path::EngineArea::Api(_))
        && response.status() != StatusCode::UNAUTHORIZED
    {
        ctx.connection.authenticated();
    }
    let response = if response.status() == StatusCode::UNAUTHORIZED {
        let refused = Refused {
            identity,
            replay,
            shield,
        };
        // Boxed as in `run`: a refused token is rare.
        Box::pin(after_refused_token(
            state, ctx, &upstream, &api_path, refused, response,
        ))
        .await?
    } else {
        response
    };
    // cache store on the answer the client gets (rewritten, after any re-login), before it
    // leaves: a write's evictions are done when its client can send the next GET.
    let mut response = match pending {
        Some((cache, pending)) => store::store(cache, &upstream, pending, response).await?,
        None => response,
    };
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Counts a request refused as not recognised; `reason` is a bounded label.
fn refused(state: &GatewayState, reason: &'static str) {
    state
        .metrics
        .requests_refused_total
        .with_label_values(&[reason])
        .inc();
}

async fn answer_sso(
    endpoint: Endpoint,
    state: &GatewayState,
    ctx: &mut RequestContext,
    covered: &[Arc<Upstream>],
    request: Request<GatewayBody>,
) -> Response<GatewayBody> {
    let logins = state.rate_limit.as_ref().map(|limits| limits.logins());
    let (response, user) =
        sso_endpoint::answer(endpoint, &state.auth, logins, ctx.client.ip(), covered, request).await;
    if user.is_some() {
        ctx.connection.authenticated();
    }
    ctx.principal = user.map(|user| Principal {
        user,
        upstream_user_id: None,
    });
    response
}

/// A request whose upstream token the Manager refused: who sent it, what was kept of it to
/// resend, and how its answer is guarded.
struct Refused {
    identity: Identity,
    replay: Option<(Request<()>, Bytes)>,
    shield: Shield,
}

/// After the Manager answered 401 to the upstream token of an authenticated request.
async fn after_refused_token(
    state: &GatewayState,
    ctx: &mut RequestContext,
    upstream: &Arc<Upstream>,
    api_path: &ApiPath,
    refused: Refused,
    response: Response<GatewayBody>,
) -> Result<Response<GatewayBody>, Fault> {
    let Refused {
        identity,
        replay,
        shield,
    } = refused;
    // The Manager forgot the token (restart, expiry).
    match identity {
        // Basic: drop the session, log in again and resend once, when the request was kept. The
        // Manager refused the token before acting, so even a POST is safe to resend.
        Identity::Basic(credentials) => {
            state.auth.forget(upstream, &credentials).await;
            let Some((head, body)) = replay else {
                return Ok(response);
            };
            let session = state.auth.session(upstream, &credentials, None).await?;
            let mut copy = head.map(|()| GatewayBody::full(body));
            session.token.apply(&mut copy);
            forward::forward(
                upstream,
                api_path,
                ctx,
                &state.metrics,
                state.limits.compression_level,
                shield,
                copy,
            )
            .await
        }
        // A gateway token: the client holds no password; end the login and let the 401 through,
        // so the SDK logs in again itself.
        Identity::Token { sid } => {
            state.auth.end_login(&sid).await;
            Ok(response)
        }
        Identity::Untouched => Ok(response),
    }
}

/// The request, and a copy of it to resend: its head and its body, read now when it has one of at
/// most `limit` bytes (declared by Content-Length). Larger or unsized bodies stream and are not kept.
async fn keep_for_resend(
    request: Request<GatewayBody>,
    limit: u64,
) -> Result<(Request<GatewayBody>, Option<(Request<()>, Bytes)>), Fault> {
    use http_body::Body;
    let size = request.body().size_hint();
    if !request.body().is_end_stream() && size.upper().is_none_or(|upper| upper > limit) {
        return Ok((request, None));
    }
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|error| request_body_fault(&*error))?;
    let bytes = bytes.to_bytes();
    let request = Request::from_parts(parts, GatewayBody::full(bytes.clone()));
    let head = bodiless(&request);
    Ok((request, Some((head, bytes))))
}

/// A copy of a request's head: method, target, version, headers.
fn bodiless<B>(request: &Request<B>) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = request.method().clone();
    *head.uri_mut() = request.uri().clone();
    *head.version_mut() = request.version();
    *head.headers_mut() = request.headers().clone();
    head
}

/// The fault for a request body that failed while the gateway read it.
pub(super) fn request_body_fault(error: &(dyn std::error::Error + 'static)) -> Fault {
    match caused_by::<RequestBodyError>(error) {
        Some(why) => Fault::from(why),
        None => Fault::BadRequest {
            detail: format!("The request body could not be read: {error}"),
        },
    }
}

/// Wraps the response body so that the access log and the request metrics are written when the
/// exchange really ends (last byte sent, or the client or Manager gave up), and the connection
/// learns that its request is done.
fn observe(
    metrics: Arc<Metrics>,
    ctx: RequestContext,
    in_flight: InFlight,
    response: Response<GatewayBody>,
) -> Response<GatewayBody> {
    let status = response.status();
    if status == StatusCode::REQUEST_TIMEOUT {
        metrics.client_timeouts_total.with_label_values(&["body"]).inc();
    }
    // What the client connection sends of the body: nothing after HEAD or with a 204 or 304, and
    // no more than the Content-Length.
    let length = if ctx.method == http::Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Some(0)
    } else {
        response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
    };
    let on_end = move |bytes_out: u64, end: BodyEnd| {
        drop(in_flight);
        let manager = ctx.manager.as_deref().unwrap_or(NO_MANAGER);
        let elapsed = ctx.started.elapsed();
        metrics
            .requests_total
            .with_label_values(&[manager, method_label(&ctx.method), status_class(status)])
            .inc();
        if let Some(code) = retry_later_code(status) {
            metrics
                .retry_later_responses_total
                .with_label_values(&[manager, code])
                .inc();
        }
        metrics
            .request_duration_seconds
            .with_label_values(&[manager])
            .observe(elapsed.as_secs_f64());
        access_log(&ctx, status.as_u16(), bytes_out, end, elapsed.as_micros());
    };
    response.map(|body| GatewayBody::new(ObservedBody::new(body, length, on_end)))
}

/// One line per request. Path and the names of query parameters only: no query values, and no
/// header at all, so credentials can never reach the log.
fn access_log(ctx: &RequestContext, status: u16, bytes_out: u64, end: BodyEnd, micros: u128) {
    tracing::info!(
        target: "access",
        request_id = ctx.id.as_str(),
        client = &*ctx.client_text.socket,
        method = ctx.method.as_str(),
        path = ctx.path.as_str(),
        query_keys = ctx.query_keys.as_str(),
        status,
        bytes_in = ctx.bytes_in.load(Ordering::Relaxed),
        bytes_out,
        complete = end == BodyEnd::Complete,
        // Milliseconds to the microsecond, without formatting a float.
        duration_ms = format_args!("{}.{:03}", micros / 1000, micros % 1000),
        manager = ctx.manager.as_deref().unwrap_or("-"),
        user = ctx.principal.as_ref().map_or("-", |p| p.user.as_str()),
        upstream_user_id = ctx
            .principal
            .as_ref()
            .and_then(|p| p.upstream_user_id.as_deref())
            .unwrap_or("-"),
    );
}
