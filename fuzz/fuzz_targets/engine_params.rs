//! The path and parameter reader against a small model of how the engine reads them
//! (ovirt-engine `ParametersHelper.getParameter`/`getBooleanParameter`, JAX-RS query and matrix
//! parameters, Java's `UUID.fromString`), on arbitrary requests. Input: the request target on the
//! first line, the Filter and All-Content header values on the next two.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use ovirt_gateway::EngineParams;
use ovirt_gateway::{ApiPath, EngineArea, check_ids, validate_path};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let target = lines.next().unwrap_or("");
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    if validate_path(path).is_err() {
        return;
    }
    let Some(parsed) = ApiPath::parse("", path, query) else {
        return;
    };
    let EngineArea::Api(resource) = &parsed.area else {
        return;
    };
    let mut headers = HeaderMap::new();
    for name in ["filter", "all-content"] {
        if let Some(value) = lines.next().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, value);
        }
    }
    let params = EngineParams::new(&parsed, &headers);
    let model = Model::new(path, query, &headers);
    for name in ["filter", "all_content", "follow", "search", "accept", "max"] {
        assert_eq!(
            params.get(name).map(|v| v.into_owned()),
            model.get(name),
            "parameter {name} of {target:?}"
        );
    }
    assert_eq!(
        params.filter(),
        model.get("filter").and_then(|v| model_boolean(&v)),
        "filter"
    );
    let all_content = match model.get("all_content") {
        Some(value) => model_boolean(&value) == Some(true),
        None => model.header("all-content").and_then(|v| model_boolean(&v)) == Some(true),
    };
    assert_eq!(params.all_content(), all_content, "all_content of {target:?}");
    // Ids: whatever the gateway lets through is either no UUID to Java, or the same UUID Java
    // reads, written canonically.
    if check_ids(resource).is_ok() {
        for segment in &resource.segments {
            if let Some(value) = java_uuid(&segment.name) {
                assert_eq!(
                    segment.name.to_ascii_lowercase(),
                    canonical(value),
                    "{} passes but Java reads it as another UUID",
                    segment.name
                );
            }
        }
    }
});

/// The engine's reading, written from its rules without the gateway's code.
struct Model {
    query: Vec<(String, String)>,
    matrix: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

impl Model {
    fn new(path: &str, query: Option<&str>, headers: &HeaderMap) -> Model {
        let mut pairs = Vec::new();
        for pair in query.unwrap_or("").split('&') {
            if pair.is_empty() {
                continue;
            }
            let at = pair.find('=').unwrap_or(pair.len());
            let value = pair.get(at + 1..).unwrap_or("");
            pairs.push((
                decode(&pair[..at].replace('+', " ")),
                decode(&value.replace('+', " ")),
            ));
        }
        // The resource path: after the API servlet's own segment (and its path parameters),
        // without /v4; Java's split drops trailing empty segments.
        let after = path.strip_prefix("/ovirt-engine/api").unwrap_or("");
        let after = match after.strip_prefix(';') {
            Some(rest) => rest.find('/').map_or("", |i| &rest[i..]),
            None => after,
        };
        let segments: Vec<&str> = after.split('/').filter(|s| !s.is_empty()).collect();
        let segments = match segments.first() {
            Some(first) if first.split(';').next() == Some("v4") => &segments[1..],
            _ => &segments[..],
        };
        let mut matrix = Vec::new();
        if let Some(last) = segments.last() {
            for parameter in last.split(';').skip(1).filter(|p| !p.is_empty()) {
                let (k, v) = parameter.split_once('=').unwrap_or((parameter, ""));
                matrix.push((decode(k), decode(v)));
            }
        }
        let headers = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Model {
            query: pairs,
            matrix,
            headers,
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        let first =
            |pairs: &[(String, String)]| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        first(&self.query).or_else(|| first(&self.matrix)).or_else(|| {
            if name == "filter" {
                self.header("filter")
            } else {
                None
            }
        })
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// `^(t(rue)?|y(es)?|1)$` and `^(f(alse)?|n(o)?|0)$`, case-insensitive; empty is true here.
fn model_boolean(text: &str) -> Option<bool> {
    let lower = text.to_lowercase();
    if text.is_empty() {
        Some(true)
    } else if ["t", "true", "y", "yes", "1"]
        .iter()
        .any(|t| lower == *t && text.is_ascii())
    {
        Some(true)
    } else if ["f", "false", "n", "no", "0"]
        .iter()
        .any(|t| lower == *t && text.is_ascii())
    {
        Some(false)
    } else {
        None
    }
}

/// %XX decoding; a `%` not followed by two hex digits stays; invalid UTF-8 becomes U+FFFD.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Java 11's `UUID.fromString`: the 128-bit value, or `None` where it throws.
fn java_uuid(name: &str) -> Option<u128> {
    if name.len() > 36 {
        return None;
    }
    let dashes: Vec<usize> = name.match_indices('-').map(|(i, _)| i).collect();
    if dashes.len() != 4 {
        return None;
    }
    let mut value: u128 = 0;
    let mut from = 0;
    for (i, width) in [32u32, 16, 16, 16, 48].into_iter().enumerate() {
        let to = dashes.get(i).copied().unwrap_or(name.len());
        let group = &name[from..to];
        let digits = group.strip_prefix('+').unwrap_or(group);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let parsed = i64::from_str_radix(digits, 16).ok()? as u64;
        value = (value << width) | u128::from(parsed & ((1u64 << width) - 1));
        from = to + 1;
    }
    Some(value)
}

fn canonical(value: u128) -> String {
    let hex = format!("{value:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
