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
/// A streaming decoder of the codings Managers may use (gzip, deflate).
pub enum Decoder {
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
}

/// A Content-Encoding no decoder here knows.
#[derive(Debug)]
pub struct UnknownCoding;

impl Decoder {
    /// The decoder a response's Content-Encoding needs: `None` for a plain body.
    pub fn for_response(headers: &HeaderMap) -> Result<Option<Decoder>, UnknownCoding> {
        match headers
            .get(CONTENT_ENCODING)
            .map(|v| v.as_bytes().trim_ascii().to_ascii_lowercase())
        {
            None => Ok(None),
            Some(coding) if coding == b"identity" => Ok(None),
            Some(coding) if coding == b"gzip" || coding == b"x-gzip" => {
                Ok(Some(Decoder::Gzip(flate2::write::GzDecoder::new(Vec::new()))))
            }
            Some(coding) if coding == b"deflate" => Ok(Some(Decoder::Deflate(
                flate2::write::ZlibDecoder::new(Vec::new()),
            ))),
            Some(_) => Err(UnknownCoding),
        }
    }

    /// The plain bytes of a compressed chunk (possibly none yet).
    pub fn decode(&mut self, chunk: &[u8]) -> std::io::Result<Vec<u8>> {
        use std::io::Write;
        match self {
            Decoder::Gzip(d) => {
                d.write_all(chunk)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Decoder::Deflate(d) => {
                d.write_all(chunk)?;
                Ok(std::mem::take(d.get_mut()))
            }
        }
    }

    /// The last plain bytes, once the compressed stream ended.
    pub fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Decoder::Gzip(d) => d.finish(),
            Decoder::Deflate(d) => d.finish(),
        }
    }
}
