//! The oVirt URL grammar: the only parser of request paths in the gateway.
//!
//! A request path is parsed once, here, into an [`ApiPath`] that every later stage reads (docs/invariants.md,
//! invariant 2: what was authorized is what is forwarded). A path the Manager could read differently
//! from us is rejected, never cleaned up: dot segments, empty segments (`//`), backslashes, NUL and
//! other control bytes, invalid percent-encoding, percent-encoded `/`, `\` or `.`, percent-encoded
//! unreserved characters (`%61` for `a`: the engine decodes them, so `/vm%73` would be `/vms`), and
//! encoded bytes that do not decode to UTF-8 (overlong forms such as `%C0%AE`). The raw path and
//! query string are kept byte for byte for forwarding (invariant 3).

use std::fmt;

/// What part of the engine's URL space a request is for (docs/engine.md, section 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineArea {
    /// `/ovirt-engine/api[/v4][/...]`.
    Api(ApiResource),
    /// `/ovirt-engine/sso/...` (OAuth token, token-info, revoke).
    Sso,
    /// `/ovirt-engine/services/...` (sso-logout, health, pki-resource).
    Services,
    /// Anything else under `/ovirt-engine/` (web UI, docs).
    Other,
}

/// One path segment of the API, decoded, with its matrix parameters (`vms;max=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub matrix: Vec<(String, String)>,
}

/// A request inside `/ovirt-engine/api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResource {
    /// `Some(4)` when the path used the `/v4` form (the engine then puts `/v4` in every href).
    pub version: Option<u8>,
    /// The segments after the API root (and after `/v4`); empty for the root itself.
    pub segments: Vec<Segment>,
}

/// A parsed request target: the public prefix the route matched, the engine path behind it and the
/// raw query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPath {
    /// The public path prefix in front of `/ovirt-engine` (`""` or e.g. `"/east"`).
    pub public_prefix: String,
    /// The raw engine path after the prefix, starting with `/ovirt-engine`, exactly as received.
    pub engine_path: String,
    /// The raw query string, exactly as received (without the `?`).
    pub query: Option<String>,
    pub area: EngineArea,
}

/// Why a path was refused. Every variant is a 400 fault; the text goes into its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    EmptySegment,
    DotSegment,
    Backslash,
    ControlByte,
    BadPercentEncoding,
    EncodedSeparator(char),
    EncodedUnreserved(char),
    NotUtf8,
    /// An id the engine reads as a UUID (Java's `UUID.fromString`) written in another form than
    /// the canonical 8-4-4-4-12 hex digits.
    NonCanonicalId(String),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::NotAbsolute => write!(f, "the request path must start with '/'"),
            PathError::EmptySegment => write!(f, "the request path contains an empty segment ('//')"),
            PathError::DotSegment => write!(f, "the request path contains a '.' or '..' segment"),
            PathError::Backslash => write!(f, "the request path contains a backslash"),
            PathError::ControlByte => write!(f, "the request path contains a control character"),
            PathError::BadPercentEncoding => {
                write!(f, "the request path contains an invalid percent-encoding")
            }
            PathError::EncodedSeparator(c) => {
                write!(f, "the request path contains a percent-encoded '{c}'")
            }
            PathError::EncodedUnreserved(c) => write!(
                f,
                "the request path contains a percent-encoded '{c}', which must be sent unencoded"
            ),
            PathError::NotUtf8 => write!(f, "the request path does not decode to UTF-8"),
            PathError::NonCanonicalId(id) => write!(
                f,
                "the id `{id}` is a UUID the engine would read in another form; write it as 8-4-4-4-12 hex digits"
            ),
        }
    }
}

/// The engine's path, relative to the public prefix.
pub(crate) const ENGINE_ROOT: &str = "/ovirt-engine";
const API_ROOT: &str = "/ovirt-engine/api";

/// Checks that a raw path is unambiguous; see the module documentation for what is refused.
pub fn validate(raw_path: &str) -> Result<(), PathError> {
    if !raw_path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let bytes = raw_path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\\' => return Err(PathError::Backslash),
            0..=0x1f | 0x7f => return Err(PathError::ControlByte),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(PathError::BadPercentEncoding)?;
                let value = hex_value(hex[0])
                    .zip(hex_value(hex[1]))
                    .map(|(h, l)| h << 4 | l)
                    .ok_or(PathError::BadPercentEncoding)?;
                match value {
                    b'/' | b'\\' | b'.' => return Err(PathError::EncodedSeparator(value as char)),
                    0..=0x1f | 0x7f => return Err(PathError::ControlByte),
                    v if v.is_ascii_alphanumeric() || v == b'-' || v == b'_' || v == b'~' => {
                        return Err(PathError::EncodedUnreserved(v as char));
                    }
                    v => decoded.push(v),
                }
                i += 3;
                continue;
            }
            b => decoded.push(b),
        }
        i += 1;
    }
    if String::from_utf8(decoded).is_err() {
        return Err(PathError::NotUtf8);
    }
    // A single trailing slash is allowed (the engine's JAX-RS matching ignores it); any other empty
    // segment is not.
    let trimmed = raw_path.strip_suffix('/').unwrap_or(raw_path);
    for segment in trimmed.split('/').skip(1) {
        let name = segment.split(';').next().unwrap_or("");
        if name.is_empty() {
            return Err(PathError::EmptySegment);
        }
        if name == "." || name == ".." {
            return Err(PathError::DotSegment);
        }
    }
    Ok(())
}

impl ApiPath {
    /// Parses the engine part of a validated path. `engine_path` starts at `/ovirt-engine`; the caller
    /// (routing) has already split off the public prefix. Returns `None` when the path is not under
    /// `/ovirt-engine` at all.
    pub fn parse(public_prefix: &str, engine_path: &str, query: Option<&str>) -> Option<ApiPath> {
        let after_root = engine_path.strip_prefix(ENGINE_ROOT)?;
        if !(after_root.is_empty() || after_root.starts_with('/')) {
            return None;
        }
        let area = if let Some(rest) = strip_segment_prefix(engine_path, API_ROOT) {
            EngineArea::Api(parse_api(rest))
        } else if strip_segment_prefix(engine_path, "/ovirt-engine/sso").is_some() {
            EngineArea::Sso
        } else if strip_segment_prefix(engine_path, "/ovirt-engine/services").is_some() {
            EngineArea::Services
        } else {
            EngineArea::Other
        };
        Some(ApiPath {
            public_prefix: public_prefix.to_owned(),
            engine_path: engine_path.to_owned(),
            query: query.map(str::to_owned),
            area,
        })
    }

    /// The path and query to send to a Manager whose engine root sits under `upstream_prefix`.
    pub fn upstream_path_and_query(&self, upstream_prefix: &str) -> String {
        match &self.query {
            Some(query) => format!("{upstream_prefix}{}?{query}", self.engine_path),
            None => format!("{upstream_prefix}{}", self.engine_path),
        }
    }
}

/// A path as the engine's servlet container maps it to a servlet: every segment without its
/// path parameters (`;x=1`, which the container strips before mapping), and without a trailing
/// slash. Only for recognising endpoints outside the API; never forwarded.
pub(crate) fn servlet_path(raw: &str) -> String {
    let trimmed = raw.strip_suffix('/').unwrap_or(raw);
    let mut out = String::with_capacity(trimmed.len());
    for segment in trimmed.split('/').skip(1) {
        out.push('/');
        out.push_str(segment.split(';').next().unwrap_or(""));
    }
    out
}

/// The paths under `/ovirt-engine/sso` and `/ovirt-engine/services` that reach a Manager: its
/// health check and its CA download (docs/engine.md, section 0), read-only. The gateway answers
/// the token, token-info and sso-logout endpoints itself; every other path there (the password
/// login pages, token-http-auth, revoke, ...) would hand out or handle the Manager's tokens and
/// is refused.
pub(crate) const FORWARDED_SERVICES: [&str; 2] = [
    "/ovirt-engine/services/health",
    "/ovirt-engine/services/pki-resource",
];

/// Refuses ids the engine would read as a UUID other than as written: Java's `UUID.fromString`
/// takes five dash-separated groups of hex digits of any length, each with an optional `+`
/// (`1-1-1-1-1` is `00000001-0001-0001-0001-000000000001`), so a policy or a cache eviction keyed
/// on the canonical form would miss them. The canonical form, in either case, passes.
pub fn check_ids(resource: &ApiResource) -> Result<(), PathError> {
    match resource
        .segments
        .iter()
        .find(|s| java_uuid(&s.name) && !canonical_uuid(&s.name))
    {
        Some(segment) => Err(PathError::NonCanonicalId(segment.name.clone())),
        None => Ok(()),
    }
}

/// Whether Java's `UUID.fromString` accepts `text` (JDK 9 and later: at most 36 characters,
/// exactly four dashes, each group a `Long.parseLong(_, 16)`: an optional `+`, then hex digits).
fn java_uuid(text: &str) -> bool {
    text.len() <= 36
        && text.split('-').count() == 5
        && text.split('-').all(|group| {
            let digits = group.strip_prefix('+').unwrap_or(group);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// 8-4-4-4-12 hex digits.
pub(crate) fn canonical_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// `path` without `prefix`, when `prefix` ends at a segment boundary (`/`, `;` or the end).
fn strip_segment_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/') || rest.starts_with(';')).then_some(rest)
}

fn parse_api(rest: &str) -> ApiResource {
    // Matrix parameters of the `api` segment itself (`/ovirt-engine/api;x=1/vms`): the servlet
    // container strips them, so what follows is the API path as usual.
    let rest = match rest.strip_prefix(';') {
        Some(matrix) => matrix.find('/').map_or("", |slash| &matrix[slash..]),
        None => rest,
    };
    let mut segments: Vec<Segment> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(parse_segment)
        .collect();
    let version = match segments.first() {
        Some(first) if first.name == "v4" => {
            segments.remove(0);
            Some(4)
        }
        _ => None,
    };
    ApiResource { version, segments }
}

fn parse_segment(raw: &str) -> Segment {
    let mut parts = raw.split(';');
    let name = percent_decode_lossy(parts.next().unwrap_or(""));
    let matrix = parts
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode_lossy(k), percent_decode_lossy(v)),
            None => (percent_decode_lossy(p), String::new()),
        })
        .collect();
    Segment { name, matrix }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `text`; invalid escapes stay as they are and invalid UTF-8 becomes U+FFFD.
/// Only for values already validated or used for display, never for forwarding.
pub(crate) fn percent_decode_lossy(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(value) = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| hex_value(hex[0]).zip(hex_value(hex[1])))
                .map(|(h, l)| h << 4 | l)
        {
            out.push(value);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(path: &str) -> ApiResource {
        validate(path).unwrap();
        match ApiPath::parse("", path, None).unwrap().area {
            EngineArea::Api(resource) => resource,
            other => panic!("not an API path: {other:?}"),
        }
    }

    fn names(resource: &ApiResource) -> Vec<&str> {
        resource.segments.iter().map(|s| s.name.as_str()).collect()
    }

    /// The API root has no segments.
    #[test]
    fn api_root_has_no_segments() {
        assert_eq!(
            api("/ovirt-engine/api"),
            ApiResource {
                version: None,
                segments: vec![]
            }
        );
    }

    /// A single trailing slash on the root is the root.
    #[test]
    fn api_root_trailing_slash_is_root() {
        assert_eq!(
            api("/ovirt-engine/api/"),
            ApiResource {
                version: None,
                segments: vec![]
            }
        );
    }

    /// The /v4 form is recognised and removed from the segments.
    #[test]
    fn v4_prefix_sets_version() {
        let resource = api("/ovirt-engine/api/v4/vms/123");
        assert_eq!(resource.version, Some(4));
        assert_eq!(names(&resource), ["vms", "123"]);
    }

    /// Entity, sub-collection and action segments come out in order.
    #[test]
    fn segments_in_order() {
        assert_eq!(
            names(&api("/ovirt-engine/api/vms/123/nics/456")),
            ["vms", "123", "nics", "456"]
        );
        assert_eq!(
            names(&api("/ovirt-engine/api/vms/123/start")),
            ["vms", "123", "start"]
        );
    }

    /// Matrix parameters are split off the segment name.
    #[test]
    fn matrix_parameters_are_parsed() {
        let resource = api("/ovirt-engine/api/vms;max=1;detail=nics");
        assert_eq!(resource.segments[0].name, "vms");
        assert_eq!(
            resource.segments[0].matrix,
            vec![
                ("max".to_owned(), "1".to_owned()),
                ("detail".to_owned(), "nics".to_owned())
            ]
        );
    }

    /// Dots inside a segment (cluster levels are named "4.4") are not dot segments.
    #[test]
    fn dots_inside_segment_are_fine() {
        assert_eq!(
            names(&api("/ovirt-engine/api/clusterlevels/4.4")),
            ["clusterlevels", "4.4"]
        );
    }

    /// SSO, services and other engine paths are classified.
    #[test]
    fn engine_areas() {
        let area = |p: &str| ApiPath::parse("", p, None).unwrap().area;
        assert_eq!(area("/ovirt-engine/sso/oauth/token"), EngineArea::Sso);
        assert_eq!(area("/ovirt-engine/services/health"), EngineArea::Services);
        assert_eq!(area("/ovirt-engine/webadmin/"), EngineArea::Other);
        assert_eq!(area("/ovirt-engine/apidoc"), EngineArea::Other);
    }

    /// Paths outside /ovirt-engine are not engine paths.
    #[test]
    fn outside_engine_is_none() {
        assert!(ApiPath::parse("", "/other", None).is_none());
        assert!(ApiPath::parse("", "/ovirt-engineX/api", None).is_none());
    }

    /// The upstream target keeps the raw path and query byte for byte.
    #[test]
    fn upstream_target_is_byte_exact() {
        let query = "all_content=true&search=name%3Dmy+vm%2A";
        let path = ApiPath::parse("/east", "/ovirt-engine/api/vms", Some(query)).unwrap();
        assert_eq!(
            path.upstream_path_and_query("/rhv"),
            "/rhv/ovirt-engine/api/vms?all_content=true&search=name%3Dmy+vm%2A"
        );
    }

    /// Every ambiguous form is refused with its reason; the accepted neighbours pass.
    #[test]
    fn ambiguous_paths_are_refused() {
        let cases: &[(&str, PathError)] = &[
            ("ovirt-engine/api", PathError::NotAbsolute),
            ("/ovirt-engine//api", PathError::EmptySegment),
            ("/ovirt-engine/api/vms//1", PathError::EmptySegment),
            ("/ovirt-engine/api/../api/vms", PathError::DotSegment),
            ("/ovirt-engine/api/./vms", PathError::DotSegment),
            ("/ovirt-engine/api/vms/..", PathError::DotSegment),
            ("/ovirt-engine/api/vms/..;x=1", PathError::DotSegment),
            ("/ovirt-engine/api\\vms", PathError::Backslash),
            ("/ovirt-engine/api/vms%2F1", PathError::EncodedSeparator('/')),
            ("/ovirt-engine/api/vms%2f1", PathError::EncodedSeparator('/')),
            ("/ovirt-engine/api/%2E%2E/vms", PathError::EncodedSeparator('.')),
            ("/ovirt-engine/api/vms%5C1", PathError::EncodedSeparator('\\')),
            ("/ovirt-engine/api/vms%00", PathError::ControlByte),
            ("/ovirt-engine/api/vms\0", PathError::ControlByte),
            ("/ovirt-engine/api/vm%73", PathError::EncodedUnreserved('s')),
            ("/ovirt-engine/api/vms%2", PathError::BadPercentEncoding),
            ("/ovirt-engine/api/vms%zz", PathError::BadPercentEncoding),
            ("/ovirt-engine/api/%C0%AE%C0%AE/vms", PathError::NotUtf8),
        ];
        for (path, expected) in cases {
            assert_eq!(validate(path).as_ref(), Err(expected), "{path}");
        }
        for path in [
            "/ovirt-engine/api/vms/",
            "/ovirt-engine/api/vms%20x",
            "/ovirt-engine/api/tags/%C3%A9t%C3%A9",
        ] {
            assert_eq!(validate(path), Ok(()), "{path}");
        }
    }

    /// The servlet path drops every segment's path parameters and a trailing slash.
    #[test]
    fn servlet_path_as_the_container_maps_it() {
        assert_eq!(
            servlet_path("/ovirt-engine/sso/oauth/token;x=1"),
            "/ovirt-engine/sso/oauth/token"
        );
        assert_eq!(
            servlet_path("/ovirt-engine/sso/oauth/token/"),
            "/ovirt-engine/sso/oauth/token"
        );
        assert_eq!(
            servlet_path("/ovirt-engine;a=b/sso;c/oauth/token-info;d=e/"),
            "/ovirt-engine/sso/oauth/token-info"
        );
        assert_eq!(
            servlet_path("/ovirt-engine/services/health"),
            "/ovirt-engine/services/health"
        );
    }

    /// Forms Java's UUID.fromString reads as another UUID are refused; canonical ones in either
    /// case, and ids that are no UUID at all, pass.
    #[test]
    fn only_canonical_uuids_pass() {
        for id in [
            "1-1-1-1-1",
            "+1-1-1-1-1",
            "0000001-0001-0001-0001-000000000001",
            "+0000001-0001-0001-0001-000000000001",
            "00000001-0001-0001-0001-+00000000001",
            "1-2-3-4-5555555555555555",
        ] {
            let resource = api(&format!("/ovirt-engine/api/vms/{id}"));
            assert_eq!(
                check_ids(&resource),
                Err(PathError::NonCanonicalId(id.to_owned())),
                "{id}"
            );
        }
        for id in [
            "00000001-0001-0001-0001-000000000001",
            "ABCDEF01-0001-0001-0001-000000000001",
            "7370696365",
            "4.4",
            "1-1-1-1",
            "1-1-1-1-1-1",
            "g-1-1-1-1",
            "123",
        ] {
            let resource = api(&format!("/ovirt-engine/api/vms/{id}"));
            assert_eq!(check_ids(&resource), Ok(()), "{id}");
        }
    }

    /// Lossy decoding leaves invalid escapes alone.
    #[test]
    fn lossy_decode_keeps_invalid_escapes() {
        assert_eq!(percent_decode_lossy("a%2Fb%zz%"), "a/b%zz%");
    }
}
