//! gzip toward clients: the simulator compresses as the engine's Apache does, and the gateway
//! compresses the bodies it rewrote (it asks Managers for them uncompressed). Streaming: each
//! chunk is compressed as it passes, the length is then unknown.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, HeaderValue, VARY};
use http::{HeaderMap, Response};
use http_body::{Body, Frame};

use crate::body::{BoxError, GatewayBody};

/// Whether a request's Accept-Encoding takes gzip (and not with `q=0`).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            parts
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("gzip"))
                && !parts.any(|p| p.trim().replace(' ', "") == "q=0")
        })
}

/// The response with its body gzip-compressed at `level` (1 to 9) as it streams.
pub fn gzip(response: Response<GatewayBody>, level: u32) -> Response<GatewayBody> {
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .append(VARY, HeaderValue::from_static("Accept-Encoding"));
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    Response::from_parts(
        parts,
        GatewayBody::new(GzipBody {
            inner: body,
            encoder: Some(encoder),
        }),
    )
}

struct GzipBody {
    inner: GatewayBody,
    encoder: Option<flate2::write::GzEncoder<Vec<u8>>>,
}

impl Body for GzipBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        use std::io::Write;
        let this = self.get_mut();
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(None);
            };
            match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    encoder.write_all(&data)?;
                    let out = std::mem::take(encoder.get_mut());
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => {
                    let encoder = this.encoder.take().expect("checked above");
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(encoder.finish()?)))));
                }
            }
        }
    }
}
