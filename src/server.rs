//! The public listener: accepts connections (at most `max_connections`), reads the PROXY
//! protocol header of the peers that send one (`listen.proxy_protocol`), terminates TLS, serves
//! HTTP/1.1 and HTTP/2 through hyper, closes idle connections, and drains on shutdown.
//!
//! Shutdown: stop accepting, ask every connection to finish gracefully (HTTP/1.1 closes after the
//! response in flight, HTTP/2 sends GOAWAY), wait up to `shutdown_grace`, then abort what is left.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::Limits;
use crate::connection::{self, Anonymous, AnonymousPlace, ConnActivity, ConnInfo, OverBudget, SendDeadline};
use crate::pipeline::{self, GatewayState};
use crate::proxy_protocol;

/// hyper's own head limits sit above ours so that a moderately oversized head gets our 431 fault;
/// only a grossly oversized one meets hyper's bare 431 or a reset.
fn hyper_head_limit(limits: &Limits) -> usize {
    (limits.max_header_bytes * 2).max(16 * 1024)
}

fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if !limits.http2 {
        builder = builder.http1_only();
    }
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper's default of 100 header lines: above it, hyper would allocate and fill the
        // parser's arrays for every request rather than use them on the stack.
        .max_buf_size(hyper_head_limit(limits).max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(hyper_head_limit(limits)).unwrap_or(u32::MAX));
    builder
}

/// Accepts and serves connections until `shutdown` turns true, then drains.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<GatewayState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = state.limits.clone();
    let builder = Arc::new(http_builder(&limits));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let anonymous = Anonymous::new(limits.anonymous, state.metrics.anonymous_connections.clone());
    let mut connections = JoinSet::new();
    loop {
        let accept = connection::accept_within(&listener, &permits);
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            ((stream, peer), permit) = accept => {
                let (state, builder, tls, shutdown, anonymous) =
                    (state.clone(), builder.clone(), tls.clone(), shutdown.clone(), anonymous.clone());
                connections.spawn(async move {
                    let mut stream = stream;
                    let Some(client) = client_of(&state, &mut stream, peer).await else { return };
                    // Every connection starts anonymous; a trusted proxy's carry many clients,
                    // so only the total applies to them.
                    let limits = &state.limits;
                    let proxied = limits.trusted_proxies.iter().any(|cidr| cidr.contains(client.ip()));
                    let place = match anonymous.admit(client.ip(), !proxied) {
                        Ok((place, evicted)) => {
                            if evicted {
                                let label = OverBudget::Evicted.label();
                                state.metrics.connections_refused_total.with_label_values(&[label]).inc();
                            }
                            place
                        }
                        Err(over) => {
                            tracing::debug!(%client, reason = over.label(), "connection closed: over the anonymous budget");
                            state.metrics.connections_refused_total.with_label_values(&[over.label()]).inc();
                            return;
                        }
                    };
                    let connection = Connection {
                        tls,
                        builder,
                        state,
                        shutdown,
                        anonymous: place,
                        _permit: permit,
                    };
                    connection.serve(stream, client).await;
                });
            }
        }
    }
    drop(listener);
    let open = connections.len();
    if open > 0 {
        tracing::info!(open, grace = ?limits.shutdown_grace, "draining connections");
    }
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "shutdown grace period over; closing remaining connections"
        );
        connections.shutdown().await;
    }
}

/// The client a connection is from: its peer, or with the peer in `listen.proxy_protocol` the
/// client its PROXY header names, read within `listen.header_read_timeout`. `None`: the header
/// was missing, malformed or late, and the connection is closed (counted).
async fn client_of(state: &GatewayState, stream: &mut TcpStream, peer: SocketAddr) -> Option<SocketAddr> {
    let limits = &state.limits;
    if !limits.proxy_protocol.iter().any(|cidr| cidr.contains(peer.ip())) {
        return Some(peer);
    }
    let refused = || {
        state
            .metrics
            .connections_refused_total
            .with_label_values(&["proxy_protocol"])
            .inc();
    };
    match tokio::time::timeout(limits.header_read_timeout, proxy_protocol::read_header(stream)).await {
        Ok(Ok(client)) => Some(client.unwrap_or(peer)),
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "connection closed");
            refused();
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "connection closed: no PROXY protocol header in time");
            refused();
            None
        }
    }
}

struct Connection {
    tls: Option<TlsAcceptor>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    state: Arc<GatewayState>,
    shutdown: watch::Receiver<bool>,
    anonymous: AnonymousPlace,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(self, stream: TcpStream, client: SocketAddr) {
        let metrics = self.state.metrics.clone();
        metrics.open_connections.inc();
        let _ = stream.set_nodelay(true);
        // Beneath TLS: what stalls is the socket, whatever is written on it.
        let cut = metrics.client_timeouts_total.with_label_values(&["send"]);
        let stream = SendDeadline::new(stream, self.state.limits.send_timeout, cut);
        match self.tls.clone() {
            None => self.serve_io(stream, client, false).await,
            Some(acceptor) => {
                let timeout = self.state.limits.header_read_timeout;
                match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => self.serve_io(tls, client, true).await,
                    Ok(Err(error)) => tracing::debug!(%client, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%client, "TLS handshake timed out"),
                }
            }
        }
        metrics.open_connections.dec();
    }

    async fn serve_io<I>(self, io: I, client: SocketAddr, tls: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // The connection's place among all connections is held until it ends.
        let Connection {
            builder,
            state,
            mut shutdown,
            anonymous,
            _permit,
            ..
        } = self;
        let activity = ConnActivity::new(anonymous);
        let info = ConnInfo {
            client,
            client_text: connection::AddressText::of(client),
            tls,
            activity: activity.clone(),
        };
        let idle = state.limits.idle_timeout;
        let service = service_fn(move |request| {
            // Boxed once here, where hyper would move the request's future (several KiB) into
            // its own state (docs/performance.md, "Against nginx").
            let response = Box::pin(pipeline::handle(state.clone(), info.clone(), request));
            async move { Ok::<_, Infallible>(response.await) }
        });
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut closing = *shutdown.borrow();
        if closing {
            connection.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%client, %error, "connection ended with an error");
                    }
                    break;
                }
                _ = shutdown.changed(), if !closing => {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                // A newer connection took this one's place before it authenticated.
                _ = activity.evicted() => {
                    tracing::debug!(%client, "closing a connection that never authenticated, for a newer one");
                    break;
                }
                _ = activity.idle_for(idle), if !closing => {
                    tracing::debug!(%client, "closing idle connection");
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
