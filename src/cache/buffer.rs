//! An answer read whole when it is small enough to store, or passed on as it streams.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http_body::Frame;
use http_body_util::{BodyExt, BodyStream, StreamBody};

use crate::body::{BoxError, GatewayBody};

pub(super) enum Read {
    Whole(Bytes),
    /// Longer than the limit, or with trailers: what was read, then the rest, still streaming.
    Over(GatewayBody),
}

/// Reads a body whole if it ends within `limit` bytes.
pub(super) async fn read_up_to(mut body: GatewayBody, limit: u64) -> Result<Read, BoxError> {
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
    let mut whole = BytesMut::with_capacity(usize::try_from(length).unwrap_or(0));
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
