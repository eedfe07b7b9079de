//! The oVirt API's wire forms, shared by the gateway and the simulator: the two representations
//! and how a request picks one (docs/engine.md, section 3), the XML escaper, and the fault body
//! (docs/engine.md, section 4.4); and the SSO's (`sso.rs`).

pub(crate) mod sso;

use http::HeaderMap;

/// The two representations of the oVirt API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    Xml,
    Json,
}

impl Representation {
    /// What the client asked for: `?accept=` wins over the Accept header, as RESTEasy's media type
    /// parameter mapping does on the engine (docs/engine.md, section 3). XML when nothing says JSON,
    /// because the engine lists XML first in `@Produces`.
    pub(crate) fn of_request(headers: &HeaderMap, query: Option<&str>) -> Self {
        if let Some(accept) = query.and_then(query_accept) {
            return Self::from_media_types(&accept);
        }
        headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map_or(Representation::Xml, Self::from_media_types)
    }

    /// The first of the listed media types the API can produce, by quality then order (an
    /// Accept header; a Content-Type is a list of one).
    pub(crate) fn from_media_types(accept: &str) -> Self {
        let mut best: Option<(f32, Representation)> = None;
        for range in accept.split(',') {
            let mut params = range.split(';');
            let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let repr = match media.as_str() {
                "application/json" | "text/json" => Representation::Json,
                "application/xml" | "text/xml" | "*/*" | "application/*" => Representation::Xml,
                _ => continue,
            };
            let q = params
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if best.is_none_or(|(best_q, _)| q > best_q) {
                best = Some((q, repr));
            }
        }
        best.map_or(Representation::Xml, |(_, repr)| repr)
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Representation::Xml => "application/xml",
            Representation::Json => "application/json",
        }
    }
}

/// The value of an `accept` query parameter, percent-decoded (`application%2Fjson` is common).
fn query_accept(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "accept").then(|| crate::api::path::percent_decode_lossy(value))
    })
}

/// The body of a fault with `reason` and `detail`, in `repr`.
pub(crate) fn fault_body(repr: Representation, reason: &str, detail: &str) -> String {
    match repr {
        Representation::Xml => xml_fault(reason, detail),
        Representation::Json => json_fault(reason, detail),
    }
}

fn xml_fault(reason: &str, detail: &str) -> String {
    let mut body = Vec::new();
    body.extend_from_slice(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<fault>\n    <reason>",
    );
    xml_escape(&mut body, reason, false);
    body.extend_from_slice(b"</reason>\n    <detail>");
    xml_escape(&mut body, detail, false);
    body.extend_from_slice(b"</detail>\n</fault>\n");
    String::from_utf8(body).expect("escaping keeps UTF-8 intact")
}

fn json_fault(reason: &str, detail: &str) -> String {
    let mut body = serde_json::json!({ "reason": reason, "detail": detail }).to_string();
    body.push('\n');
    body
}

/// Escapes XML text into `out`; in attribute values quotes too. Control characters XML 1.0
/// forbids are dropped. The one XML escaper of the crate (fault bodies, the simulator).
pub(crate) fn xml_escape(out: &mut Vec<u8>, text: &str, attribute: bool) {
    for &b in text.as_bytes() {
        match b {
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'"' if attribute => out.extend_from_slice(b"&quot;"),
            // Control characters other than tab and newline are not allowed in XML 1.0.
            b if b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r' => {}
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    /// Attribute values escape quotes; element text keeps them.
    #[test]
    fn xml_escapes_quotes_only_in_attributes() {
        let mut out = Vec::new();
        xml_escape(&mut out, "say \"hi\" & <bye>", true);
        assert_eq!(out, b"say &quot;hi&quot; &amp; &lt;bye&gt;");
        out.clear();
        xml_escape(&mut out, "href=\"/x\"", false);
        assert_eq!(out, b"href=\"/x\"");
    }

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    /// No Accept at all means XML, as on the engine.
    #[test]
    fn no_accept_is_xml() {
        assert_eq!(
            Representation::of_request(&HeaderMap::new(), None),
            Representation::Xml
        );
    }

    /// `Accept: application/json` means JSON.
    #[test]
    fn accept_json_is_json() {
        assert_eq!(
            Representation::of_request(&accept("application/json"), None),
            Representation::Json
        );
    }

    /// A wildcard means XML, the engine's first producible type.
    #[test]
    fn accept_wildcard_is_xml() {
        assert_eq!(
            Representation::of_request(&accept("*/*"), None),
            Representation::Xml
        );
    }

    /// Quality values decide between XML and JSON.
    #[test]
    fn accept_quality_decides() {
        let headers = accept("application/xml;q=0.5, application/json");
        assert_eq!(Representation::of_request(&headers, None), Representation::Json);
        let headers = accept("application/json;q=0.1, application/xml");
        assert_eq!(Representation::of_request(&headers, None), Representation::Xml);
    }

    /// The `accept` query parameter overrides the header, encoded or not.
    #[test]
    fn accept_query_parameter_wins() {
        let headers = accept("application/xml");
        assert_eq!(
            Representation::of_request(&headers, Some("max=1&accept=application%2Fjson")),
            Representation::Json
        );
        assert_eq!(
            Representation::of_request(&HeaderMap::new(), Some("accept=application/json")),
            Representation::Json
        );
    }
}
