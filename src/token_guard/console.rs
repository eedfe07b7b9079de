//! Console descriptors: the engine's `.vv` files, which carry the caller's SSO token.
//!
//! The engine hands one out two ways (docs/engine.md, section 5): the `remoteviewerconnectionfile`
//! action (POST `.../graphicsconsoles/ID/remoteviewerconnectionfile`), and a GET of a console,
//! `.../graphicsconsoles/ID`, that asks for `application/x-virt-viewer` (ovirt-engine
//! `BackendVmGraphicsConsoleResource.generateDescriptor`, a `@GET @Produces` of that type beside
//! the XML/JSON `get`; `ConfigureConsoleOptionsQuery` puts the session's token in the options and
//! `ConsoleDescriptorGenerator` writes it as `sso-token=` in the `[ovirt]` section). Either way the
//! file holds the token the request carried: the gateway's upstream token.
//!
//! One rule decides every spelling: a GET or HEAD of a console whose Accept header, `accept`
//! query parameter or `accept` matrix parameter asks for anything but XML or JSON is taken for a
//! descriptor request (RESTEasy chooses by media type, and `*/*` or a list could select the
//! descriptor), and so is the action. `auth.console_files` then refuses it (403), strips the
//! token line from the answer, or passes it.

use http::header::ACCEPT;
use http::{HeaderMap, Method};

use crate::api::params::EngineParams;
use crate::api::path::{ApiPath, EngineArea};
use crate::config::ConsoleFiles;

/// The console's sub-collection and the action that returns its descriptor.
const CONSOLES: &str = "graphicsconsoles";
const ACTION: &str = "remoteviewerconnectionfile";

/// Whether a request asks for a console descriptor, in any of its spellings.
pub(crate) fn is_descriptor_request(method: &Method, path: &ApiPath, headers: &HeaderMap) -> bool {
    let EngineArea::Api(api) = &path.area else {
        return false;
    };
    let names: Vec<&str> = api.segments.iter().map(|s| s.name.as_str()).collect();
    match names.as_slice() {
        [.., CONSOLES, _, ACTION] => true,
        [.., CONSOLES, _] if matches!(*method, Method::GET | Method::HEAD) => {
            let params = EngineParams::new(path, headers);
            let header = headers
                .get_all(ACCEPT)
                .iter()
                .any(|v| !only_api_types(&String::from_utf8_lossy(v.as_bytes())));
            // No Accept at all: the engine's choice between its producers is not ours to guess.
            header
                || headers.get(ACCEPT).is_none()
                || params.get("accept").is_some_and(|v| !only_api_types(&v))
        }
        _ => false,
    }
}

/// Whether every media range of an Accept value is XML or JSON (parameters such as `detail` and
/// `q` allowed).
fn only_api_types(accept: &str) -> bool {
    accept.split(',').all(|range| {
        let media = range.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        matches!(
            media.as_str(),
            "application/xml" | "text/xml" | "application/json" | "text/json"
        )
    })
}

/// The 403 detail for a refused descriptor.
pub(crate) fn refusal() -> String {
    "The gateway refuses console descriptors (remote-viewer .vv files): the engine writes the \
     Manager's SSO token into them, and that token never leaves the gateway \
     (auth.console_files = \"strip-token\" serves them without it)"
        .to_owned()
}

/// The descriptor with its `sso-token=` line removed, whether the file is sent as it is
/// (`application/x-virt-viewer`) or inside an action's XML or JSON (`\n` as a JSON escape, or an
/// XML character reference).
pub(crate) fn strip_token(body: &[u8]) -> Vec<u8> {
    const KEY: &[u8] = b"sso-token=";
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = find(rest, KEY) {
        out.extend_from_slice(&rest[..at]);
        let value = &rest[at + KEY.len()..];
        let end = line_end(value);
        rest = &value[end..];
        rest = skip_line_break(rest);
    }
    out.extend_from_slice(rest);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Where the token's line ends: a line break (raw, `\n`/`\r` escaped, or `&#10;`-like), or the
/// end of the text that holds it (`<` in XML, `"` in JSON).
fn line_end(value: &[u8]) -> usize {
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'\n' | b'\r' | b'<' | b'"' | b'&' => return i,
            b'\\' if matches!(value.get(i + 1), Some(b'n' | b'r')) => return i,
            _ => i += 1,
        }
    }
    value.len()
}

fn skip_line_break(rest: &[u8]) -> &[u8] {
    for ending in [
        &b"\r\n"[..],
        b"\n",
        b"\r",
        b"\\r\\n",
        b"\\n",
        b"&#13;&#10;",
        b"&#10;",
        b"&#xA;",
        b"&#xa;",
    ] {
        if let Some(after) = rest.strip_prefix(ending) {
            return after;
        }
    }
    rest
}

impl ConsoleFiles {
    pub fn label(self) -> &'static str {
        match self {
            ConsoleFiles::Refuse => "refuse",
            ConsoleFiles::StripToken => "strip-token",
            ConsoleFiles::Pass => "pass",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asks(method: Method, target: &str, accept: Option<&str>) -> bool {
        let (path, query) = target
            .split_once('?')
            .map_or((target, None), |(p, q)| (p, Some(q)));
        crate::api::path::validate(path).unwrap();
        let path = ApiPath::parse("", path, query).unwrap();
        let mut headers = HeaderMap::new();
        if let Some(accept) = accept {
            headers.insert(ACCEPT, accept.parse().unwrap());
        }
        is_descriptor_request(&method, &path, &headers)
    }

    const CONSOLE: &str = "/ovirt-engine/api/vms/1/graphicsconsoles/7370696365";

    /// Every spelling of a descriptor request is one; XML and JSON GETs of a console are not.
    #[test]
    fn every_spelling_is_a_descriptor_request() {
        let v4 = CONSOLE.replace("/api/", "/api/v4/");
        // A matrix value cannot hold the type's slash (an encoded one is refused as ambiguous).
        let matrix = format!("{CONSOLE};accept=text");
        let query = format!("{CONSOLE}?accept=application%2Fx-virt-viewer");
        let action = format!("{CONSOLE}/remoteviewerconnectionfile");
        let descriptor = [
            (Method::GET, CONSOLE, Some("application/x-virt-viewer")),
            (Method::GET, CONSOLE, Some("Application/X-Virt-Viewer")),
            (
                Method::GET,
                CONSOLE,
                Some("application/xml;q=0.1, application/x-virt-viewer"),
            ),
            (Method::GET, CONSOLE, Some("*/*")),
            (Method::GET, CONSOLE, None),
            (Method::HEAD, CONSOLE, Some("application/x-virt-viewer")),
            (Method::GET, &v4, Some("application/x-virt-viewer")),
            (Method::GET, &matrix, Some("application/xml")),
            (Method::GET, &query, Some("application/xml")),
            (Method::POST, &action, Some("application/xml")),
        ];
        for (method, target, accept) in descriptor {
            assert!(
                asks(method.clone(), target, accept),
                "{method} {target} {accept:?}"
            );
        }
        let plain = [
            (Method::GET, CONSOLE, Some("application/xml")),
            (Method::GET, CONSOLE, Some("application/json; detail=x")),
            (Method::GET, "/ovirt-engine/api/vms/1/graphicsconsoles", None),
            (Method::GET, "/ovirt-engine/api/vms/1", Some("*/*")),
            (Method::PUT, CONSOLE, None),
        ];
        for (method, target, accept) in plain {
            assert!(
                !asks(method.clone(), target, accept),
                "{method} {target} {accept:?}"
            );
        }
    }

    /// The token line goes, in the plain file, in XML and in JSON; the rest stays.
    #[test]
    fn token_line_is_stripped_in_every_form() {
        let plain = b"[ovirt]\nhost=e:443\nsso-token=abc+/=\nadmin=1\n";
        assert_eq!(strip_token(plain), b"[ovirt]\nhost=e:443\nadmin=1\n");
        let crlf = b"[ovirt]\r\nsso-token=abc\r\nadmin=1\r\n";
        assert_eq!(strip_token(crlf), b"[ovirt]\r\nadmin=1\r\n");
        let xml = b"<action><remote_viewer_connection_file>[ovirt]&#10;sso-token=abc&#10;admin=1</remote_viewer_connection_file></action>";
        assert_eq!(
            strip_token(xml),
            &b"<action><remote_viewer_connection_file>[ovirt]&#10;admin=1</remote_viewer_connection_file></action>"[..]
        );
        let json = br#"{"remote_viewer_connection_file":"[ovirt]\nsso-token=ab\/c\nadmin=1"}"#;
        assert_eq!(
            strip_token(json),
            &br#"{"remote_viewer_connection_file":"[ovirt]\nadmin=1"}"#[..]
        );
        let last = b"[ovirt]\nsso-token=abc";
        assert_eq!(strip_token(last), b"[ovirt]\n");
    }
}
