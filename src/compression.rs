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
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
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
pub(crate) fn gzip(response: Response<GatewayBody>, level: u32) -> Response<GatewayBody> {
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
/// A streaming decoder of the codings Managers may use (gzip, deflate), in bounded steps: each
/// step takes at most [`STEP_INPUT`] compressed bytes, so it inflates to at most about 1 MiB
/// (deflate expands at most 1032 times), and the whole answer may not inflate more than
/// [`MAX_RATIO`] times its compressed size (docs/security.md, "Compressed answers").
pub(crate) struct Decoder {
    coding: Coding,
    compressed: u64,
    plain: u64,
}

enum Coding {
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
}

/// The codings decoded here.
enum Known {
    Gzip,
    Deflate,
}

/// Compressed bytes decoded per step.
pub(crate) const STEP_INPUT: usize = 1024;

/// How many times its compressed size an answer may inflate to: API answers inflate some 20
/// times (docs/performance.md), decompression bombs a thousand.
pub(crate) const MAX_RATIO: u64 = 200;

/// Plain bytes an answer may reach before its ratio is held to [`MAX_RATIO`].
const RATIO_FLOOR: u64 = 256 * 1024;

/// A Content-Encoding no decoder here knows.
#[derive(Debug)]
pub(crate) struct UnknownCoding;

/// The answer inflated more than [`MAX_RATIO`] times its compressed size.
#[derive(Debug, thiserror::Error)]
#[error(
    "the Manager's answer inflates more than {MAX_RATIO} times its compressed size: cut as a decompression bomb"
)]
pub(crate) struct InflationLimit;

impl Decoder {
    /// The decoder a response's Content-Encoding needs: `None` for a plain body.
    pub(crate) fn for_response(headers: &HeaderMap) -> Result<Option<Decoder>, UnknownCoding> {
        let coding = match Decoder::coding(headers)? {
            None => return Ok(None),
            Some(Known::Gzip) => Coding::Gzip(flate2::write::GzDecoder::new(Vec::new())),
            Some(Known::Deflate) => Coding::Deflate(flate2::write::ZlibDecoder::new(Vec::new())),
        };
        Ok(Some(Decoder {
            coding,
            compressed: 0,
            plain: 0,
        }))
    }

    /// Whether a response's body is in a coding a decoder here reads, without building one.
    pub(crate) fn decodes(headers: &HeaderMap) -> bool {
        matches!(Decoder::coding(headers), Ok(Some(_)))
    }

    fn coding(headers: &HeaderMap) -> Result<Option<Known>, UnknownCoding> {
        match headers
            .get(CONTENT_ENCODING)
            .map(|v| v.as_bytes().trim_ascii().to_ascii_lowercase())
        {
            None => Ok(None),
            Some(coding) if coding == b"identity" => Ok(None),
            Some(coding) if coding == b"gzip" || coding == b"x-gzip" => Ok(Some(Known::Gzip)),
            Some(coding) if coding == b"deflate" => Ok(Some(Known::Deflate)),
            Some(_) => Err(UnknownCoding),
        }
    }

    /// One step: decodes the start of `input` (at most [`STEP_INPUT`] bytes); returns how many
    /// bytes it took and the plain bytes they gave (possibly none).
    pub(crate) fn step(&mut self, input: &[u8]) -> std::io::Result<(usize, Vec<u8>)> {
        use std::io::Write;
        let input = &input[..input.len().min(STEP_INPUT)];
        let (taken, plain) = match &mut self.coding {
            Coding::Gzip(d) => (d.write(input)?, std::mem::take(d.get_mut())),
            Coding::Deflate(d) => (d.write(input)?, std::mem::take(d.get_mut())),
        };
        if taken == 0 && !input.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "bytes after the end of the compressed stream",
            ));
        }
        self.count(taken, plain.len())?;
        Ok((taken, plain))
    }

    /// Every step of `input` at once, each handed to `plain`: for callers that drop what they
    /// read (a scan), so that no more than one step is held.
    pub(crate) fn steps(&mut self, mut input: &[u8], mut plain: impl FnMut(&[u8])) -> std::io::Result<()> {
        while !input.is_empty() {
            let (taken, out) = self.step(input)?;
            plain(&out);
            input = &input[taken..];
        }
        Ok(())
    }

    fn count(&mut self, compressed: usize, plain: usize) -> std::io::Result<()> {
        self.compressed += compressed as u64;
        self.plain += plain as u64;
        if self.plain > RATIO_FLOOR && self.plain > self.compressed.saturating_mul(MAX_RATIO) {
            return Err(std::io::Error::other(InflationLimit));
        }
        Ok(())
    }

    /// Whether the answer has inflated past the floor from which its ratio is held: what it
    /// gave so far was checked.
    pub(crate) fn past_floor(&self) -> bool {
        self.plain > RATIO_FLOOR
    }

    /// The last plain bytes, once the compressed stream ended.
    pub(crate) fn finish(self) -> std::io::Result<Vec<u8>> {
        match self.coding {
            Coding::Gzip(d) => d.finish(),
            Coding::Deflate(d) => d.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(plain: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(plain).unwrap();
        encoder.finish().unwrap()
    }

    fn decoder() -> Decoder {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        Decoder::for_response(&headers).unwrap().unwrap()
    }

    /// Steps give at most about 1 MiB each and, together, the whole plain text.
    #[test]
    fn steps_are_bounded_and_complete() {
        // Text of letters from a xorshift: it compresses about 1.6 times.
        let mut state = 0x2545_f491_u32;
        let plain: Vec<u8> = (0..4_000_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                b'a' + (state % 26) as u8
            })
            .collect();
        let compressed = gzip(&plain);
        let mut decoder = decoder();
        let mut out = Vec::new();
        let mut largest = 0;
        decoder
            .steps(&compressed, |step| {
                largest = largest.max(step.len());
                out.extend_from_slice(step);
            })
            .unwrap();
        out.extend(decoder.finish().unwrap());
        assert_eq!(out, plain);
        assert!(largest <= 1032 * STEP_INPUT + 64 * 1024, "{largest}");
    }

    /// A bomb (zeros inflate a thousand times) is cut once it passes the floor.
    #[test]
    fn bombs_are_cut() {
        let compressed = gzip(&vec![0; 64 * 1024 * 1024]);
        let mut decoder = decoder();
        let mut seen = 0u64;
        let error = decoder
            .steps(&compressed, |step| seen += step.len() as u64)
            .unwrap_err();
        assert!(error.get_ref().is_some_and(|e| e.is::<InflationLimit>()));
        assert!(seen <= RATIO_FLOOR + 1032 * STEP_INPUT as u64, "{seen}");
    }
}
