//! Rewriting a Manager's response for the client: hrefs in XML and JSON bodies when the public API
//! path differs from the Manager's, and the absolute URLs of Location, Content-Location and the
//! root's Link header always (the Manager builds them from the Host it was sent: its own).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{
    CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_LOCATION, CONTENT_TYPE, ETAG, HeaderValue, LINK, LOCATION,
    SET_COOKIE,
};
use http::{HeaderMap, Response};
use http_body::{Body, Frame};

use super::json::JsonRewriter;
use super::prefix::Rule;
use super::xml::XmlRewriter;
use crate::body::{BoxError, GatewayBody};
use crate::compression::Decoder;

/// Where the client sees the API and where the Manager serves it.
pub struct Bases {
    /// `https://gateway.example.com:8443` as the client addressed it.
    pub public_origin: String,
    /// `/east/ovirt-engine/api`.
    pub public_api: String,
    /// `/ovirt-engine/api` (after the Manager's own prefix, if any).
    pub upstream_api: String,
    /// The gzip level for rewritten bodies, when the client accepts gzip and compression is on.
    pub gzip_level: Option<u32>,
}

impl Bases {
    /// Whether bodies need rewriting: the public API path is not the Manager's.
    pub fn rewrites_bodies(&self) -> bool {
        self.public_api != self.upstream_api
    }

    fn rule(&self) -> Rule {
        Rule {
            from: self.upstream_api.as_bytes().to_vec(),
            to: self.public_api.as_bytes().to_vec(),
        }
    }

    /// An absolute URL of the Manager's API (`https://engine/ovirt-engine/api/vms/1`) as the
    /// client must see it; other URLs unchanged.
    fn absolute(&self, url: &str) -> String {
        let Some(after_scheme) = url.split_once("://").map(|(_, rest)| rest) else {
            return url.to_owned();
        };
        let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
        match path.strip_prefix(self.upstream_api.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with(['/', '?', ';', '#']) => {
                format!("{}{}{rest}", self.public_origin, self.public_api)
            }
            _ => url.to_owned(),
        }
    }

    /// A passing cookie's `Path` under the Manager's engine path (`/ovirt-engine/api`,
    /// `/ovirt-engine`) names the same place under the public one; `None` when nothing changes.
    /// (The Manager's own session cookie never passes: docs/authentication.md.)
    fn cookie(&self, cookie: &str) -> Option<String> {
        let upstream_root = self.upstream_api.strip_suffix("/api")?;
        let public_root = self.public_api.strip_suffix("/api")?;
        if upstream_root == public_root {
            return None;
        }
        let mut changed = false;
        let attributes: Vec<String> = cookie
            .split(';')
            .map(|attribute| {
                let trimmed = attribute.trim_start();
                let name = trimmed.get(..5).filter(|n| n.eq_ignore_ascii_case("path="));
                let rest = trimmed.get(5..).and_then(|v| v.strip_prefix(upstream_root));
                match (name, rest) {
                    (Some(name), Some(rest)) if rest.is_empty() || rest.starts_with('/') => {
                        changed = true;
                        let space = &attribute[..attribute.len() - trimmed.len()];
                        format!("{space}{name}{public_root}{rest}")
                    }
                    _ => attribute.to_owned(),
                }
            })
            .collect();
        changed.then(|| attributes.join(";"))
    }

    fn headers(&self, headers: &mut HeaderMap) {
        let cookies: Vec<HeaderValue> = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|value| {
                value
                    .to_str()
                    .ok()
                    .and_then(|v| self.cookie(v))
                    .and_then(|v| HeaderValue::from_str(&v).ok())
                    .map(|mut rewritten| {
                        rewritten.set_sensitive(value.is_sensitive());
                        rewritten
                    })
                    .unwrap_or_else(|| value.clone())
            })
            .collect();
        if !cookies.is_empty() {
            headers.remove(SET_COOKIE);
            for cookie in cookies {
                headers.append(SET_COOKIE, cookie);
            }
        }
        for name in [LOCATION, CONTENT_LOCATION] {
            if let Some(value) = headers.get(&name).and_then(|v| v.to_str().ok())
                && let Ok(rewritten) = HeaderValue::from_str(&self.absolute(value))
            {
                headers.insert(name, rewritten);
            }
        }
        // `<url>; rel=x,<url>; rel=y`: every URL between angle brackets.
        if let Some(value) = headers.get(LINK).and_then(|v| v.to_str().ok()) {
            let mut out = String::with_capacity(value.len());
            let mut rest = value;
            while let Some(open) = rest.find('<') {
                let Some(close) = rest[open..].find('>') else {
                    break;
                };
                out.push_str(&rest[..=open]);
                out.push_str(&self.absolute(&rest[open + 1..open + close]));
                rest = &rest[open + close..];
            }
            out.push_str(rest);
            if let Ok(rewritten) = HeaderValue::from_str(&out) {
                headers.insert(LINK, rewritten);
            }
        }
    }
}

/// The response as the client must see it.
pub fn rewrite(response: Response<GatewayBody>, bases: &Bases) -> Response<GatewayBody> {
    let (mut parts, body) = response.into_parts();
    bases.headers(&mut parts.headers);
    if !bases.rewrites_bodies() {
        // Same paths: bodies pass untouched, unparsed.
        return Response::from_parts(parts, body);
    }
    // A Manager that compresses although it was not asked to: decoded before rewriting.
    let Ok(decoder) = Decoder::for_response(&parts.headers) else {
        return Response::from_parts(parts, body);
    };
    let media = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let rewriter = match media.as_deref() {
        Some("application/xml" | "text/xml") => Rewriter::Xml(XmlRewriter::new(bases.rule())),
        Some("application/json" | "text/json") => Rewriter::Json(JsonRewriter::new(bases.rule())),
        _ => return Response::from_parts(parts, body),
    };
    // The length changes; a strong validator no longer matches the bytes.
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(CONTENT_ENCODING);
    if parts
        .headers
        .get(ETAG)
        .is_some_and(|v| !v.as_bytes().starts_with(b"W/"))
    {
        parts.headers.remove(ETAG);
    }
    let response = Response::from_parts(
        parts,
        GatewayBody::new(RewrittenBody {
            inner: body,
            decoder,
            compressed: Bytes::new(),
            out: Vec::new(),
            trailers: None,
            rewriter,
            done: false,
        }),
    );
    // The Manager was asked for a plain body; the client may still get a compressed one.
    match bases.gzip_level {
        Some(level) => crate::compression::gzip(response, level),
        None => response,
    }
}

enum Rewriter {
    Xml(XmlRewriter),
    Json(JsonRewriter),
}

struct RewrittenBody {
    inner: GatewayBody,
    decoder: Option<Decoder>,
    /// Compressed bytes received and not yet decoded: decoded a step at a time, so a chunk
    /// that inflates a thousand times is never held whole.
    compressed: Bytes,
    /// Rewritten bytes of a compressed body not yet handed on: at most [`FRAME_BYTES`] and a
    /// step, and, at the start, until the decoder passed the ratio limit's floor, so that a
    /// bomb is refused before anything was sent (pipeline/forward.rs reads the first frame).
    out: Vec<u8>,
    /// A trailers frame, handed on after `out`.
    trailers: Option<Frame<Bytes>>,
    rewriter: Rewriter,
    done: bool,
}

/// The frames a decoded body is handed on in.
const FRAME_BYTES: usize = 64 * 1024;

impl RewrittenBody {
    fn rewrite(&mut self, plain: &[u8]) {
        match &mut self.rewriter {
            Rewriter::Xml(r) => r.feed(plain, &mut self.out),
            Rewriter::Json(r) => r.feed(plain, &mut self.out),
        }
    }

    /// Whether what was rewritten may be handed on now.
    fn may_send(&self) -> bool {
        self.decoder.as_ref().is_none_or(Decoder::past_floor)
    }

    fn take_out(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let out = std::mem::take(&mut self.out);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))))
    }
}

impl Body for RewrittenBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        use bytes::Buf;
        let this = self.get_mut();
        loop {
            if let Some(decoder) = this.decoder.as_mut()
                && !this.compressed.is_empty()
            {
                let (taken, plain) = decoder.step(&this.compressed)?;
                this.compressed.advance(taken);
                this.rewrite(&plain);
                if this.out.len() >= FRAME_BYTES && this.may_send() {
                    return this.take_out();
                }
                continue;
            }
            if this.done {
                if !this.out.is_empty() {
                    return this.take_out();
                }
                return Poll::Ready(this.trailers.take().map(Ok));
            }
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(frame) => frame,
                // Nothing more yet: hand on what is there, once allowed.
                Poll::Pending if !this.out.is_empty() && this.may_send() => return this.take_out(),
                Poll::Pending => return Poll::Pending,
            };
            match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if this.decoder.is_some() => this.compressed = data,
                    // Plain bodies are rewritten from the chunk itself, without a copy, and
                    // handed on chunk by chunk.
                    Ok(data) => {
                        this.rewrite(&data);
                        if !this.out.is_empty() {
                            return this.take_out();
                        }
                    }
                    Err(trailers) => {
                        this.trailers = Some(trailers);
                        this.done = true;
                    }
                },
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => this.done = true,
            }
            if this.done {
                if let Some(decoder) = this.decoder.take() {
                    let plain = decoder.finish()?;
                    this.rewrite(&plain);
                }
                let out = &mut this.out;
                match &mut this.rewriter {
                    Rewriter::Xml(r) => r.finish(out),
                    Rewriter::Json(r) => r.finish(out),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bases() -> Bases {
        Bases {
            public_origin: "https://gw:8443".into(),
            public_api: "/east/ovirt-engine/api".into(),
            upstream_api: "/ovirt-engine/api".into(),
            gzip_level: None,
        }
    }

    /// Location and Link name the gateway, its scheme, host and prefix; templates keep braces.
    #[test]
    fn absolute_urls_in_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LOCATION,
            HeaderValue::from_static("http://engine:80/ovirt-engine/api/vms/1"),
        );
        headers.insert(
            LINK,
            HeaderValue::from_static(
                "<http://engine/ovirt-engine/api/clusters>; rel=clusters,<http://engine/ovirt-engine/api/clusters?search={query}>; rel=clusters/search",
            ),
        );
        bases().headers(&mut headers);
        assert_eq!(headers[LOCATION], "https://gw:8443/east/ovirt-engine/api/vms/1");
        assert_eq!(
            headers[LINK],
            "<https://gw:8443/east/ovirt-engine/api/clusters>; rel=clusters,<https://gw:8443/east/ovirt-engine/api/clusters?search={query}>; rel=clusters/search"
        );
    }

    /// A gzip body from a Manager that compresses unasked is decoded, rewritten and sent plain
    /// (no client gzip here).
    #[tokio::test]
    async fn compressed_bodies_are_decoded_and_rewritten() {
        use http_body_util::BodyExt;
        use std::io::Write;
        let xml = b"<vm href=\"/ovirt-engine/api/vms/1\"><name>a</name></vm>";
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(xml).unwrap();
        let mut response = Response::new(GatewayBody::full(encoder.finish().unwrap()));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        response
            .headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let rewritten = rewrite(response, &bases());
        assert!(rewritten.headers().get(CONTENT_ENCODING).is_none());
        let body = rewritten.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &body[..],
            b"<vm href=\"/east/ovirt-engine/api/vms/1\"><name>a</name></vm>"
        );
    }

    /// A passing cookie's Path under the engine path moves under the public prefix; other
    /// attributes, other paths and `Path=/ovirt-engines` stay.
    #[test]
    fn cookie_paths() {
        let mut headers = HeaderMap::new();
        for cookie in [
            "a=1; Path=/ovirt-engine/api; HttpOnly",
            "b=2; path=/ovirt-engine",
            "c=3; Path=/",
            "d=4; Path=/ovirt-engines; Secure",
        ] {
            headers.append(SET_COOKIE, HeaderValue::from_static(cookie));
        }
        bases().headers(&mut headers);
        let cookies: Vec<&str> = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            cookies,
            [
                "a=1; Path=/east/ovirt-engine/api; HttpOnly",
                "b=2; path=/east/ovirt-engine",
                "c=3; Path=/",
                "d=4; Path=/ovirt-engines; Secure",
            ]
        );
    }

    /// URLs outside the Manager's API (the imageio proxy, another service) stay as they are.
    #[test]
    fn other_urls_stay() {
        assert_eq!(
            bases().absolute("https://engine:54323/images/t"),
            "https://engine:54323/images/t"
        );
        assert_eq!(bases().absolute("/relative"), "/relative");
    }
}
