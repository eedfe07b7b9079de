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

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

/// Why a client's request body failed. Always the client's doing (fault blame `Client`),
/// wherever the gateway was reading it: the SSO form, the copy kept to resend, or the stream
/// toward the Manager.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum RequestBodyError {
    /// More bytes than `listen.max_body_bytes`.
    #[error("request body exceeds {limit} bytes")]
    TooLarge { limit: u64 },
    /// No bytes for `listen.body_timeout`.
    #[error("no request body data for {0:?}")]
    Stalled(Duration),
    /// On average fewer than `listen.min_body_rate` bytes per second, past the first
    /// `listen.body_timeout`.
    #[error("request body arrived slower than {0} bytes per second")]
    TooSlow(u64),
    /// The body broke off or its framing was malformed (a bad chunk size, say).
    #[error("reading the request body: {0}")]
    Malformed(String),
}

/// How fast a request body must arrive (`listen.body_timeout`, `listen.min_body_rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    /// The longest pause between two pieces, and the grace before the rate applies.
    pub idle: Duration,
    /// Bytes per second on average since the body started, once `idle` has passed; 0: none.
    pub min_rate: u64,
}

/// A client's request body: counted (the count is shared so that the access log can read it
/// after the body was handed on), held to `listen.max_body_bytes`, and to its pace. The clock
/// runs from the request head, whether or not anyone is reading yet: a body that should have
/// arrived by the time it is read fails at once. Every failure is a [`RequestBodyError`].
pub(crate) struct RequestBody<B> {
    inner: B,
    limit: u64,
    seen: Arc<AtomicU64>,
    pace: BodyPace,
    started: Instant,
    last: Instant,
    /// Armed the first time the body has nothing to give: a body that is read as it arrives
    /// (or has none) never builds one.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> RequestBody<B> {
    pub(crate) fn new(inner: B, limit: u64, pace: BodyPace, seen: Arc<AtomicU64>) -> Self {
        let now = Instant::now();
        RequestBody {
            inner,
            limit,
            seen,
            pace,
            started: now,
            last: now,
            timer: None,
        }
    }

    /// When the body fails if nothing more arrives: a pause of `idle`, or falling below the
    /// rate for the bytes seen so far.
    fn deadline(&self) -> (Instant, RequestBodyError) {
        let pause = self.last + self.pace.idle;
        if self.pace.min_rate > 0 {
            let seen = self.seen.load(Ordering::Relaxed);
            let due = self.started
                + self.pace.idle
                + Duration::from_secs_f64(seen as f64 / self.pace.min_rate as f64);
            if due < pause {
                return (due, RequestBodyError::TooSlow(self.pace.min_rate));
            }
        }
        (pause, RequestBodyError::Stalled(self.pace.idle))
    }
}

impl<B> Body for RequestBody<B>
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
            let result = match frame {
                Some(Ok(frame)) => {
                    let len = frame.data_ref().map_or(0, |data| data.len() as u64);
                    let total = self.seen.fetch_add(len, Ordering::Relaxed) + len;
                    self.last = Instant::now();
                    let (deadline, _) = self.deadline();
                    if let Some(timer) = self.timer.as_mut() {
                        timer.as_mut().reset(deadline);
                    }
                    if total > self.limit {
                        Some(Err(RequestBodyError::TooLarge { limit: self.limit }.into()))
                    } else {
                        Some(Ok(frame))
                    }
                }
                Some(Err(error)) => Some(Err(RequestBodyError::Malformed(error.into().to_string()).into())),
                None => None,
            };
            return Poll::Ready(result);
        }
        let (deadline, why) = self.deadline();
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(why.into())))
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
pub(crate) struct BodyIdleTimeout(pub Duration);

/// A response body that fails when no frame arrives within `idle` of the previous one,
/// so a stalled Manager cannot hold a client connection forever.
pub(crate) struct IdleTimeoutBody<B> {
    inner: B,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<B> IdleTimeoutBody<B> {
    pub(crate) fn new(inner: B, idle: Duration) -> Self {
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
pub(crate) enum BodyEnd {
    /// Every byte was handed to the client connection.
    Complete,
    /// The body failed (e.g. the Manager broke off) or the client went away first.
    Aborted,
}

/// A response body that counts bytes out and calls `on_end` exactly once, when the body finished
/// or was dropped: the moment the exchange is really over, for the access log and metrics.
pub(crate) struct ObservedBody<F: FnOnce(u64, BodyEnd)> {
    inner: GatewayBody,
    sent: u64,
    /// How much of it the client connection sends, when that is known (a Content-Length; none
    /// after a HEAD): hyper stops reading a body once it has written that many bytes, and drops
    /// it without asking whether it ended.
    length: Option<u64>,
    on_end: Option<F>,
}

impl<F: FnOnce(u64, BodyEnd)> ObservedBody<F> {
    pub(crate) fn new(inner: GatewayBody, length: Option<u64>, on_end: F) -> Self {
        ObservedBody {
            length: length.or(inner.size_hint().exact()),
            inner,
            sent: 0,
            on_end: Some(on_end),
        }
    }

    fn ended(&self) -> bool {
        self.inner.is_end_stream() || self.length == Some(self.sent)
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
        if self.ended() {
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
        let end = if self.ended() {
            BodyEnd::Complete
        } else {
            BodyEnd::Aborted
        };
        self.finish(end);
    }
}

/// The response with its body's first frame read now: a body that fails at once (a
/// decompression bomb, a token in its first bytes) becomes a fault before any byte is sent.
pub(crate) async fn first_frame_read(
    response: http::Response<GatewayBody>,
) -> Result<http::Response<GatewayBody>, BoxError> {
    let (parts, mut body) = response.into_parts();
    let body = match body.frame().await {
        None => GatewayBody::empty(),
        Some(Err(error)) => return Err(error),
        Some(Ok(frame)) => GatewayBody::new(Prepended {
            first: Some(frame),
            rest: body,
        }),
    };
    Ok(http::Response::from_parts(parts, body))
}

/// A body whose first frame was read ahead.
struct Prepended {
    first: Option<Frame<Bytes>>,
    rest: GatewayBody,
}

impl Body for Prepended {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.first.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }
}

/// Whether `error` or anything in its source chain is a `T`.
pub(crate) fn caused_by<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        // An io::Error's source skips the error it wraps: look at that one too.
        current = match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
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

    const PACE: BodyPace = BodyPace {
        idle: Duration::from_secs(10),
        min_rate: 100,
    };

    /// A body of exactly the limit passes whole.
    #[tokio::test]
    async fn limited_body_at_limit_passes() {
        let seen = Arc::new(AtomicU64::new(0));
        let body = RequestBody::new(chunks(&[b"abc", b"de"]), 5, PACE, seen.clone());
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"abcde");
        assert_eq!(seen.load(Ordering::Relaxed), 5);
    }

    /// One byte over the limit fails with `TooLarge`.
    #[tokio::test]
    async fn limited_body_over_limit_fails() {
        let body = RequestBody::new(chunks(&[b"abc", b"def"]), 5, PACE, Arc::new(AtomicU64::new(0)));
        let error = body.collect().await.err().unwrap();
        assert!(matches!(
            caused_by::<RequestBodyError>(error.as_ref()),
            Some(RequestBodyError::TooLarge { limit: 5 })
        ));
    }

    /// A body sending pieces, `gap` apart, of `size` bytes each, for ever.
    fn trickle(gap: Duration, size: usize) -> impl Body<Data = Bytes, Error = BoxError> + Unpin + use<> {
        let pieces = futures_util::stream::unfold((), move |()| async move {
            tokio::time::sleep(gap).await;
            Some((Ok(Frame::data(Bytes::from(vec![b'x'; size]))), ()))
        });
        StreamBody::new(Box::pin(pieces))
    }

    /// What a request body failed with, and when, counted from its start.
    async fn failure(body: impl Body<Data = Bytes, Error = BoxError> + Unpin) -> (String, Duration) {
        let started = Instant::now();
        let body = RequestBody::new(body, u64::MAX, PACE, Arc::new(AtomicU64::new(0)));
        let error = body.collect().await.err().unwrap();
        let why = caused_by::<RequestBodyError>(error.as_ref()).unwrap();
        (why.to_string(), started.elapsed())
    }

    /// A body that stops fails after the pause allowed; a body that trickles, once it has fallen
    /// below the rate past the grace; a body that keeps the rate never fails.
    #[tokio::test(start_paused = true)]
    async fn request_body_is_held_to_its_pace() {
        let stalled = StreamBody::new(futures_util::stream::pending::<Result<Frame<Bytes>, BoxError>>());
        let (why, after) = failure(stalled).await;
        assert_eq!(why, "no request body data for 10s");
        assert_eq!(after, Duration::from_secs(10));
        // 9 bytes a second against 100 after a grace of 10 s: the 90 bytes seen at 10 s are due
        // by 10.9 s, and the next piece would come at 11 s.
        let (why, after) = failure(trickle(Duration::from_secs(1), 9)).await;
        assert_eq!(why, "request body arrived slower than 100 bytes per second");
        assert_eq!(after, Duration::from_millis(10_900));
        // 100 bytes every half second keeps well over the rate: still going after a minute.
        let keeping = RequestBody::new(
            trickle(Duration::from_millis(500), 100),
            u64::MAX,
            PACE,
            Arc::new(AtomicU64::new(0)),
        );
        let read = tokio::time::timeout(Duration::from_secs(60), keeping.collect()).await;
        assert!(read.is_err(), "a body keeping its pace was cut");
    }

    /// The clock runs from the head: a body read late fails at once when it is overdue.
    #[tokio::test(start_paused = true)]
    async fn request_body_clock_runs_unread() {
        let stalled = StreamBody::new(futures_util::stream::pending::<Result<Frame<Bytes>, BoxError>>());
        let body = RequestBody::new(stalled, u64::MAX, PACE, Arc::new(AtomicU64::new(0)));
        tokio::time::sleep(Duration::from_secs(20)).await;
        let started = Instant::now();
        assert!(body.collect().await.is_err());
        assert_eq!(started.elapsed(), Duration::ZERO);
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
        let body = ObservedBody::new(GatewayBody::new(chunks(&[b"ab", b"cde"])), None, move |n, end| {
            sink.lock().unwrap().push((n, end))
        });
        body.collect().await.unwrap();
        assert_eq!(*reports.lock().unwrap(), vec![(5, BodyEnd::Complete)]);
    }

    /// A body of known length that hyper drops once it has written that many bytes, without
    /// reading on to the body's end (as it does), is complete; one dropped short of its length
    /// is not.
    #[tokio::test]
    async fn observed_body_of_known_length_is_complete_when_all_is_sent() {
        /// Two bytes, of the length it says it has, and never says it ended.
        struct Known(Option<Bytes>, u64);
        impl Body for Known {
            type Data = Bytes;
            type Error = BoxError;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
                Poll::Ready(self.0.take().map(|data| Ok(Frame::data(data))))
            }
            fn size_hint(&self) -> SizeHint {
                SizeHint::with_exact(self.1)
            }
        }
        let reports = Arc::new(Mutex::new(Vec::new()));
        for length in [2, 3] {
            let sink = reports.clone();
            let known = Known(Some(Bytes::from_static(b"ab")), length);
            let mut body = ObservedBody::new(GatewayBody::new(known), None, move |n, end| {
                sink.lock().unwrap().push((n, end))
            });
            body.frame().await.unwrap().unwrap();
            drop(body);
        }
        assert_eq!(
            *reports.lock().unwrap(),
            vec![(2, BodyEnd::Complete), (2, BodyEnd::Aborted)]
        );
    }

    /// A body dropped before its end is reported as aborted.
    #[test]
    fn observed_body_dropped_early_is_aborted() {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = reports.clone();
        let body = ObservedBody::new(GatewayBody::new(chunks(&[b"ab"])), None, move |n, end| {
            sink.lock().unwrap().push((n, end))
        });
        drop(body);
        assert_eq!(*reports.lock().unwrap(), vec![(0, BodyEnd::Aborted)]);
    }
}
