//! One client connection as the request path sees it: who it is from, whether a request is in
//! flight on it (for the idle timeout), whether it has authenticated yet (for the anonymous
//! budget), and the send deadline on its writes (docs/security.md, "Connection budgets").

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::config::AnonymousBudget;

/// The next connection on `listener`: the one accept loop of the gateway's, the admin's and
/// the simulator's listeners. A failed accept (out of file descriptors, say) is logged and
/// retried after [`ACCEPT_BACKOFF`], never in a spin.
pub(crate) async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// How long a listener waits after a failed accept.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The next connection, once one of `permits` (a connection limit) is free: until then, new
/// connections wait in the kernel's accept queue.
pub(crate) async fn accept_within(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> ((TcpStream, SocketAddr), OwnedSemaphorePermit) {
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    (accept(listener).await, permit)
}

/// What the request path knows about the connection a request came on.
#[derive(Clone)]
pub(crate) struct ConnInfo {
    pub client: SocketAddr,
    pub client_text: AddressText,
    pub tls: bool,
    pub activity: Arc<ConnActivity>,
}

/// An address as the request path writes it (X-Forwarded-For, the fair-share key, the access
/// log): formatted once per connection, not per request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AddressText {
    /// The IP address.
    pub ip: Arc<str>,
    /// The IP address and the port.
    pub socket: Arc<str>,
}

impl AddressText {
    pub(crate) fn of(address: SocketAddr) -> AddressText {
        AddressText {
            ip: address.ip().to_string().into(),
            socket: address.to_string().into(),
        }
    }
}

/// Requests in flight on one connection and since when it has had none, for the idle timeout;
/// and its place in the anonymous budget until one of its requests authenticates.
pub(crate) struct ConnActivity {
    /// Shared with the connection's anonymous place: eviction spares connections at work.
    in_flight: Arc<AtomicUsize>,
    idle_since: Mutex<Instant>,
    anonymous: Mutex<Option<AnonymousPlace>>,
}

/// Held while a request is in flight; the connection counts as idle again when the last is dropped.
pub(crate) struct InFlight(Arc<ConnActivity>);

impl ConnActivity {
    pub(crate) fn new(anonymous: AnonymousPlace) -> Arc<ConnActivity> {
        Arc::new(ConnActivity {
            in_flight: anonymous.in_flight.clone(),
            idle_since: Mutex::new(Instant::now()),
            anonymous: Mutex::new(Some(anonymous)),
        })
    }

    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// A request on this connection authenticated: the connection leaves the anonymous budget.
    pub(crate) fn authenticated(&self) {
        self.anonymous.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Resolves when a newer connection took this one's anonymous place; never once it has
    /// authenticated.
    pub(crate) async fn evicted(&self) {
        let evict = self
            .anonymous
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|place| place.evict.clone());
        match evict {
            Some(evict) => evict.notified().await,
            None => std::future::pending().await,
        }
    }

    /// Resolves once the connection has had no request in flight for `idle`.
    pub(crate) async fn idle_for(&self, idle: Duration) {
        loop {
            let busy = self.in_flight.load(Ordering::SeqCst) > 0;
            let deadline = if busy {
                Instant::now() + idle
            } else {
                *self.idle_since.lock().unwrap_or_else(|p| p.into_inner()) + idle
            };
            if !busy && deadline <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Connections that have not authenticated yet, in all and per client address. With the total
/// reached, a new connection takes the place of the one that has been anonymous the longest
/// without a request in flight (or, when every one has one, the oldest): real clients send their
/// request at once and authenticate with it, so that one is the likeliest to be holding a slot
/// for nothing, and a new client always gets in.
pub(crate) struct Anonymous {
    budget: AnonymousBudget,
    open: Mutex<AnonymousCount>,
    /// `gateway_anonymous_connections`.
    gauge: IntGauge,
}

#[derive(Default)]
struct AnonymousCount {
    by_address: HashMap<IpAddr, usize>,
    /// Each anonymous connection by the order it came in, and how to close it.
    oldest_first: BTreeMap<u64, Place>,
    next: u64,
}

struct Place {
    address: Option<IpAddr>,
    evict: Arc<Notify>,
    in_flight: Arc<AtomicUsize>,
}

/// Why a connection was closed as soon as it was accepted, or before it authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OverBudget {
    /// `listen.max_anonymous_connections` were open: the oldest was closed for a new one.
    Evicted,
    /// `listen.max_anonymous_connections_per_address` are open from this address: the new one
    /// is closed.
    PerAddress,
}

impl OverBudget {
    pub(crate) fn label(self) -> &'static str {
        match self {
            OverBudget::Evicted => "anonymous_evicted",
            OverBudget::PerAddress => "anonymous_per_address",
        }
    }
}

/// A connection's place in the anonymous budget, given back when dropped.
pub(crate) struct AnonymousPlace {
    anonymous: Arc<Anonymous>,
    id: u64,
    evict: Arc<Notify>,
    in_flight: Arc<AtomicUsize>,
}

impl Anonymous {
    pub(crate) fn new(budget: AnonymousBudget, gauge: IntGauge) -> Arc<Anonymous> {
        Arc::new(Anonymous {
            budget,
            open: Mutex::default(),
            gauge,
        })
    }

    /// A place for a new connection from `peer`; `per_address` is false for a trusted proxy,
    /// whose connections carry many clients and count toward the total only. Returns whether
    /// an older connection was evicted for it.
    pub(crate) fn admit(
        self: &Arc<Self>,
        peer: IpAddr,
        per_address: bool,
    ) -> Result<(AnonymousPlace, bool), OverBudget> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let address = per_address.then_some(peer);
        if let Some(address) = address
            && open.by_address.get(&address).copied().unwrap_or(0) >= self.budget.per_address
        {
            return Err(OverBudget::PerAddress);
        }
        let evicted = open.oldest_first.len() >= self.budget.total;
        let idle = open
            .oldest_first
            .iter()
            .find(|(_, place)| place.in_flight.load(Ordering::SeqCst) == 0)
            .or_else(|| open.oldest_first.iter().next())
            .map(|(id, _)| *id);
        if evicted && let Some(oldest) = idle.and_then(|id| open.oldest_first.remove(&id)) {
            open.release(oldest.address);
            self.gauge.dec();
            oldest.evict.notify_one();
        }
        if let Some(address) = address {
            *open.by_address.entry(address).or_default() += 1;
        }
        let id = open.next;
        open.next += 1;
        let evict = Arc::new(Notify::new());
        let in_flight = Arc::new(AtomicUsize::new(0));
        open.oldest_first.insert(
            id,
            Place {
                address,
                evict: evict.clone(),
                in_flight: in_flight.clone(),
            },
        );
        self.gauge.inc();
        let place = AnonymousPlace {
            anonymous: self.clone(),
            id,
            evict,
            in_flight,
        };
        Ok((place, evicted))
    }

    /// Anonymous connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .oldest_first
            .len()
    }
}

impl AnonymousCount {
    fn release(&mut self, address: Option<IpAddr>) {
        if let Some(address) = address
            && let Some(from) = self.by_address.get_mut(&address)
        {
            *from -= 1;
            if *from == 0 {
                self.by_address.remove(&address);
            }
        }
    }
}

impl Drop for AnonymousPlace {
    fn drop(&mut self) {
        let mut open = self.anonymous.open.lock().unwrap_or_else(|p| p.into_inner());
        // An evicted place was given back when it was taken.
        if let Some(place) = open.oldest_first.remove(&self.id) {
            open.release(place.address);
            self.anonymous.gauge.dec();
        }
    }
}

/// The client's socket, whose writes fail once one has made no progress for `timeout`: a
/// client that stops reading its answer is cut off, and what the answer held (a place at the
/// Manager, the upstream connection) is released with it.
pub(crate) struct SendDeadline<I> {
    inner: I,
    timeout: Duration,
    /// `gateway_client_timeouts_total{phase="send"}`.
    cut: IntCounter,
    /// Armed while a write is waiting for the client to read.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<I> SendDeadline<I> {
    pub(crate) fn new(inner: I, timeout: Duration, cut: IntCounter) -> Self {
        SendDeadline {
            inner,
            timeout,
            cut,
            stalled: None,
        }
    }

    /// After a write or flush of the inner socket: disarms on progress; on none, arms the
    /// deadline (once) and fails when it has passed.
    fn progress<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.stalled = None;
            return result;
        }
        let timeout = self.timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.cut.inc();
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client read nothing for {timeout:?}"),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SendDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for SendDeadline<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.progress(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.progress(cx, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn budget(total: usize, per_address: usize) -> Arc<Anonymous> {
        Anonymous::new(
            AnonymousBudget { total, per_address },
            IntGauge::new("anonymous", "test").unwrap(),
        )
    }

    /// Places per address; with the total reached, the oldest place goes to the new
    /// connection and its own is told; a trusted proxy counts in all only.
    #[tokio::test(start_paused = true)]
    async fn anonymous_places_per_address_and_in_all() {
        let anonymous = budget(3, 2);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let first = ConnActivity::new(anonymous.admit(a, true).unwrap().0);
        let (second, _) = anonymous.admit(a, true).unwrap();
        assert_eq!(anonymous.admit(a, true).err(), Some(OverBudget::PerAddress));
        let (_third, evicted) = anonymous.admit(b, true).unwrap();
        assert!(!evicted);
        let (_fourth, evicted) = anonymous.admit(b, false).unwrap();
        assert!(evicted, "the total was reached");
        tokio::time::timeout(Duration::from_secs(1), first.evicted())
            .await
            .expect("the oldest was told");
        assert_eq!(anonymous.open(), 3);
        // The evicted place was given back when it was taken: dropping it changes nothing.
        drop(first);
        assert_eq!(anonymous.open(), 3);
        drop(second);
        assert_eq!(anonymous.open(), 2);
    }

    /// Eviction spares a connection with a request in flight while an idle one is older.
    #[tokio::test(start_paused = true)]
    async fn eviction_spares_connections_at_work() {
        let anonymous = budget(2, 2);
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let working = ConnActivity::new(anonymous.admit(peer, true).unwrap().0);
        let idle = ConnActivity::new(anonymous.admit(peer, false).unwrap().0);
        let _request = working.request_started();
        let (_newcomer, evicted) = anonymous.admit(peer, false).unwrap();
        assert!(evicted);
        tokio::time::timeout(Duration::from_secs(1), idle.evicted())
            .await
            .expect("the idle one went");
        assert!(
            tokio::time::timeout(Duration::from_secs(1), working.evicted())
                .await
                .is_err()
        );
    }

    /// An authenticated connection gives its place back at once, and is never evicted.
    #[tokio::test(start_paused = true)]
    async fn authenticating_leaves_the_budget() {
        let anonymous = budget(1, 1);
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let activity = ConnActivity::new(anonymous.admit(peer, true).unwrap().0);
        assert_eq!(anonymous.open(), 1);
        activity.authenticated();
        assert_eq!(anonymous.open(), 0);
        assert!(!anonymous.admit(peer, true).unwrap().1);
        assert!(
            tokio::time::timeout(Duration::from_secs(60), activity.evicted())
                .await
                .is_err()
        );
    }

    fn counter() -> IntCounter {
        IntCounter::new("cut", "test").unwrap()
    }

    /// A write the peer never reads fails after the send timeout; one it reads never does.
    #[tokio::test(start_paused = true)]
    async fn unread_writes_fail_after_the_send_timeout() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut socket = SendDeadline::new(ours, Duration::from_secs(5), counter());
        let started = Instant::now();
        let error = socket.write_all(&[0; 1024]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        // A reader that keeps up, however slowly within the timeout, never trips it.
        let (ours, theirs_too) = tokio::io::duplex(64);
        let mut socket = SendDeadline::new(ours, Duration::from_secs(5), counter());
        let reader = tokio::spawn(async move {
            let mut theirs = theirs_too;
            let mut got = 0;
            let mut buf = [0; 64];
            while got < 1024 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                got += theirs.read(&mut buf).await.unwrap();
            }
        });
        socket.write_all(&[0; 1024]).await.unwrap();
        reader.await.unwrap();
    }
}
