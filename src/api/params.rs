//! Request parameters as the engine reads them: the one reader of `filter`, `all_content`,
//! `follow`, `search`, `accept` and the rest wherever the gateway decides on one (the policy
//! context, the cache key, the rate-limit class, console descriptors). docs/security.md,
//! "Parameters".
//!
//! The engine's rules (ovirt-engine `restapi/util/ParametersHelper.java`, `getParameter` and
//! `getBooleanParameter`):
//!
//! 1. the query string first (JAX-RS `getQueryParameters()`: names and values percent-decoded,
//!    `+` a space; the first of repeated names wins; a name without `=` has the empty value);
//! 2. then the matrix parameters of the last path segment (`/vms;all_content=true`);
//! 3. then, for `filter` only (its HEADER_PARAMETERS), the request header of that name, matched
//!    case-insensitively; the `All-Content` header is read beside the `all_content` parameter
//!    (`BackendResource.ALL_CONTENT_HEADER`);
//! 4. a boolean is true for `t`, `true`, `y`, `yes`, `1` and false for `f`, `false`, `n`, `no`,
//!    `0`, in any case; the empty value is the caller's `empty` (true for the flags here); any
//!    other text counts as missing.

use std::borrow::Cow;

use http::HeaderMap;

use crate::api::path::{ApiPath, EngineArea, percent_decode_lossy};

/// The parameters of one request, read in the engine's order.
pub struct EngineParams<'a> {
    query: Vec<(String, String)>,
    matrix: &'a [(String, String)],
    headers: &'a HeaderMap,
}

impl<'a> EngineParams<'a> {
    pub fn new(path: &'a ApiPath, headers: &'a HeaderMap) -> EngineParams<'a> {
        let matrix = match &path.area {
            EngineArea::Api(api) => api.segments.last().map_or(&[][..], |s| s.matrix.as_slice()),
            _ => &[],
        };
        EngineParams {
            query: path.query.as_deref().map(decode_query).unwrap_or_default(),
            matrix,
            headers,
        }
    }

    /// A parameter's value, as `getParameter` finds it; `None` when the request has none.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        let first = |pairs: &'a [(String, String)]| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if let Some(value) = self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v) {
            return Some(Cow::Borrowed(value));
        }
        if let Some(value) = first(self.matrix) {
            return Some(Cow::Borrowed(value));
        }
        if name == "filter" {
            return self.header("filter");
        }
        None
    }

    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
    }

    /// `filter`: `Some(true)`/`Some(false)` when the request says, `None` when the engine's
    /// default applies (filtered for non-admins, ENGINE_API_FILTER_BY_DEFAULT).
    pub fn filter(&self) -> Option<bool> {
        self.get("filter").and_then(|v| boolean(&v, true))
    }

    /// `all_content`, as the parameter or the All-Content header; false when neither says true.
    pub fn all_content(&self) -> bool {
        match self.get("all_content") {
            Some(value) => boolean(&value, true).unwrap_or(false),
            None => self
                .header("all-content")
                .and_then(|v| boolean(&v, true))
                .unwrap_or(false),
        }
    }

    /// The link paths of `follow` (`disk_attachments.disk,nics`), each split at its dots;
    /// empty names dropped, as the engine's `follow` splitting skips them.
    pub fn follow(&self) -> Vec<Vec<String>> {
        let Some(value) = self.get("follow") else {
            return Vec::new();
        };
        value
            .split(',')
            .map(|link| {
                link.split('.')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|path| !path.is_empty())
            .collect()
    }
}

/// A boolean as `getBooleanParameter` reads it; `None` for text that is neither.
pub(crate) fn boolean(text: &str, empty: bool) -> Option<bool> {
    if text.is_empty() {
        return Some(empty);
    }
    match text.to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// A query string as JAX-RS decodes it: `&`-separated pairs, names and values percent-decoded
/// and `+` read as a space, in order.
pub(crate) fn decode_query(query: &str) -> Vec<(String, String)> {
    let decode = |text: &str| percent_decode_lossy(&text.replace('+', " "));
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (decode(name), decode(value)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params_of<'a>(path: &'a ApiPath, headers: &'a HeaderMap) -> EngineParams<'a> {
        EngineParams::new(path, headers)
    }

    fn path(target: &str) -> ApiPath {
        let (path, query) = target
            .split_once('?')
            .map_or((target, None), |(p, q)| (p, Some(q)));
        crate::api::path::validate(path).unwrap();
        ApiPath::parse("", path, query).unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    /// getBooleanParameter's patterns: t/true/y/yes/1 and f/false/n/no/0 in any case; empty is
    /// the caller's; anything else is missing.
    #[test]
    fn booleans_as_the_engine_reads_them() {
        for text in ["t", "TRUE", "True", "y", "Yes", "YES", "1"] {
            assert_eq!(boolean(text, false), Some(true), "{text}");
        }
        for text in ["f", "FALSE", "n", "No", "0"] {
            assert_eq!(boolean(text, true), Some(false), "{text}");
        }
        assert_eq!(boolean("", true), Some(true));
        assert_eq!(boolean("", false), Some(false));
        for text in ["maybe", "tru", "2", " true", "yess"] {
            assert_eq!(boolean(text, true), None, "{text}");
        }
    }

    /// Every spelling the engine honours turns all_content on.
    #[test]
    fn all_content_in_every_spelling() {
        let none = HeaderMap::new();
        for target in [
            "/ovirt-engine/api/vms?all_content=true",
            "/ovirt-engine/api/vms?all_content=1",
            "/ovirt-engine/api/vms?all_content=yes",
            "/ovirt-engine/api/vms?all_content",
            "/ovirt-engine/api/vms?all_content=",
            "/ovirt-engine/api/vms?all%5Fcontent=T",
            "/ovirt-engine/api/vms;all_content=true",
            "/ovirt-engine/api/v4/vms/1;all_content=y",
        ] {
            let p = path(target);
            assert!(params_of(&p, &none).all_content(), "{target}");
        }
        let p = path("/ovirt-engine/api/vms");
        for value in ["yes", "Y", "1", "true", ""] {
            let h = headers(&[("all-content", value)]);
            assert!(params_of(&p, &h).all_content(), "All-Content: {value}");
        }
        let h = headers(&[("all-content", "maybe")]);
        assert!(!params_of(&p, &h).all_content());
    }

    /// The query wins over the matrix parameters, which win over the header.
    #[test]
    fn query_then_matrix_then_header() {
        let h = headers(&[("filter", "true")]);
        let p = path("/ovirt-engine/api/vms;filter=true?filter=false");
        assert_eq!(params_of(&p, &h).filter(), Some(false));
        let p = path("/ovirt-engine/api/vms;filter=false");
        assert_eq!(params_of(&p, &h).filter(), Some(false));
        let p = path("/ovirt-engine/api/vms");
        assert_eq!(params_of(&p, &h).filter(), Some(true));
        assert_eq!(params_of(&p, &HeaderMap::new()).filter(), None);
        let p = path("/ovirt-engine/api/vms?all_content=false");
        let h = headers(&[("all-content", "true")]);
        assert!(!params_of(&p, &h).all_content());
    }

    /// Only the last segment's matrix parameters count.
    #[test]
    fn matrix_of_the_last_segment_only() {
        let p = path("/ovirt-engine/api/vms;follow=nics/1");
        assert!(params_of(&p, &HeaderMap::new()).get("follow").is_none());
    }

    /// The first of repeated names wins; `+` is a space.
    #[test]
    fn first_value_and_plus_as_space() {
        let p = path("/ovirt-engine/api/vms?search=name%3Da+b&search=x");
        assert_eq!(
            params_of(&p, &HeaderMap::new()).get("search").unwrap(),
            "name=a b"
        );
    }

    /// follow splits into link paths, however spelled.
    #[test]
    fn follow_paths() {
        let p = path("/ovirt-engine/api/vms/1?follow=disk_attachments.disk,,nics,");
        assert_eq!(
            params_of(&p, &HeaderMap::new()).follow(),
            vec![vec!["disk_attachments", "disk"], vec!["nics"]]
        );
        let p = path("/ovirt-engine/api/vms/1;follow=tags");
        assert_eq!(params_of(&p, &HeaderMap::new()).follow(), vec![vec!["tags"]]);
    }
}
