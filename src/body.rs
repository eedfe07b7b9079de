//! Body types of the request path: one boxed body type for everything the gateway sends, and the
//! streaming wrappers that enforce limits and observe traffic without ever buffering a body whole.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use tokio::time::{Instant, Sleep};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every body the gateway hands to hyper, on either side.
pub struct GatewayBody(BoxBody<Bytes, BoxError>);

impl GatewayBody {
    pub fn new<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        GatewayBody(body.map_err(Into::into).boxed())
    }

    pub fn full(bytes: impl Into<Bytes>) -> Self {
        GatewayBody(Full::new(bytes.into()).map_err(|never| match never {}).boxed())
    }

    pub fn empty() -> Self {
        GatewayBody(Empty::new().map_err(|never| match never {}).boxed())
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// The client sent more body bytes than `listen.max_body_bytes` allows.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds {limit} bytes")]
pub struct BodyTooLarge {
    pub limit: u64,
}

/// A request body that counts what passes and fails once more than `limit` bytes arrived.
/// The count is shared so that the access log can read it after the body was handed on.
pub struct LimitedBody<B> {
    inner: B,
    limit: u64,
    seen: Arc<AtomicU64>,
}

impl<B> LimitedBody<B> {
    pub fn new(inner: B, limit: u64, seen: Arc<AtomicU64>) -> Self {
        LimitedBody { inner, limit, seen }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        Poll::Ready(match frame {
            Some(Ok(frame)) => {
                let len = frame.data_ref().map_or(0, |data| data.len() as u64);
                let total = self.seen.fetch_add(len, Ordering::Relaxed) + len;
                if total > self.limit {
                    Some(Err(Box::new(BodyTooLarge { limit: self.limit })))
                } else {
                    Some(Ok(frame))
                }
            }
            Some(Err(error)) => Some(Err(error.into())),
            None => None,
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The Manager sent no body bytes for longer than the configured idle time.
#[derive(Debug, thiserror::Error)]
#[error("no response body data from the Manager for {0:?}")]
pub struct BodyIdleTimeout(pub Duration);

/// A response body that fails when no frame arrives within `idle` of the previous one,
/// so a stalled Manager cannot hold a client connection forever.
pub struct IdleTimeoutBody<B> {
    inner: B,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<B> IdleTimeoutBody<B> {
    pub fn new(inner: B, idle: Duration) -> Self {
        IdleTimeoutBody {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl<B> Body for IdleTimeoutBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            let deadline = Instant::now() + self.idle;
            self.timer.as_mut().reset(deadline);
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        ready!(self.timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyIdleTimeout(self.idle)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How a response body ended, reported once to its observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// Every byte was handed to the client connection.
    Complete,
    /// The body failed (e.g. the Manager broke off) or the client went away first.
    Aborted,
}

/// A response body that counts bytes out and calls `on_end` exactly once, when the body finished
/// or was dropped: the moment the exchange is really over, for the access log and metrics.
pub struct ObservedBody<F: FnOnce(u64, BodyEnd)> {
    inner: GatewayBody,
    sent: u64,
    on_end: Option<F>,
}

impl<F: FnOnce(u64, BodyEnd)> ObservedBody<F> {
    pub fn new(inner: GatewayBody, on_end: F) -> Self {
        ObservedBody {
            inner,
            sent: 0,
            on_end: Some(on_end),
        }
    }

    fn finish(&mut self, end: BodyEnd) {
        if let Some(on_end) = self.on_end.take() {
            on_end(self.sent, end);
        }
    }
}

impl<F: FnOnce(u64, BodyEnd) + Unpin> Body for ObservedBody<F> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => self.sent += frame.data_ref().map_or(0, |data| data.len() as u64),
            Some(Err(_)) => self.finish(BodyEnd::Aborted),
            None => self.finish(BodyEnd::Complete),
        }
        if self.inner.is_end_stream() {
            self.finish(BodyEnd::Complete);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<F: FnOnce(u64, BodyEnd)> Drop for ObservedBody<F> {
    fn drop(&mut self) {
        let end = if self.inner.is_end_stream() {
            BodyEnd::Complete
        } else {
            BodyEnd::Aborted
        };
        self.finish(end);
    }
}

/// Whether `error` or anything in its source chain is a `T`.
pub fn caused_by<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;
    use std::sync::Mutex;

    fn chunks(parts: &[&'static [u8]]) -> impl Body<Data = Bytes, Error = BoxError> + Unpin + use<> {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    /// A body of exactly the limit passes whole.
    #[tokio::test]
    async fn limited_body_at_limit_passes() {
        let seen = Arc::new(AtomicU64::new(0));
        let body = LimitedBody::new(chunks(&[b"abc", b"de"]), 5, seen.clone());
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"abcde");
        assert_eq!(seen.load(Ordering::Relaxed), 5);
    }

    /// One byte over the limit fails with `BodyTooLarge`.
    #[tokio::test]
    async fn limited_body_over_limit_fails() {
        let body = LimitedBody::new(chunks(&[b"abc", b"def"]), 5, Arc::new(AtomicU64::new(0)));
        let error = body.collect().await.err().unwrap();
        assert_eq!(caused_by::<BodyTooLarge>(error.as_ref()).unwrap().limit, 5);
    }

    /// A body that stops sending fails after the idle time.
    #[tokio::test(start_paused = true)]
    async fn idle_timeout_body_fails_when_stalled() {
        let stalled = StreamBody::new(futures_util::stream::pending::<Result<Frame<Bytes>, BoxError>>());
        let error = IdleTimeoutBody::new(stalled, Duration::from_secs(3))
            .collect()
            .await
            .err()
            .unwrap();
        assert!(caused_by::<BodyIdleTimeout>(error.as_ref()).is_some());
    }

    /// The observer sees the byte count and a complete end exactly once.
    #[tokio::test]
    async fn observed_body_reports_once() {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = reports.clone();
        let body = ObservedBody::new(GatewayBody::new(chunks(&[b"ab", b"cde"])), move |n, end| {
            sink.lock().unwrap().push((n, end))
        });
        body.collect().await.unwrap();
        assert_eq!(*reports.lock().unwrap(), vec![(5, BodyEnd::Complete)]);
    }

    /// A body dropped before its end is reported as aborted.
    #[test]
    fn observed_body_dropped_early_is_aborted() {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = reports.clone();
        let body = ObservedBody::new(GatewayBody::new(chunks(&[b"ab"])), move |n, end| {
            sink.lock().unwrap().push((n, end))
        });
        drop(body);
        assert_eq!(*reports.lock().unwrap(), vec![(0, BodyEnd::Aborted)]);
    }
}
