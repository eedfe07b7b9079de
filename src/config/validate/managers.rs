//! `[[manager]]`: names, URLs, routes (host and prefix), TLS toward the Manager, timeouts, the
//! circuit breaker and the paths forwarded outside the API.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use http::Uri;
use http::uri::Scheme;

use super::values::Problems;
use crate::config::file::FileManager;
use crate::config::{BreakerConfig, ManagerConfig, UpstreamTimeouts, UpstreamTls};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
// Synchronous engine actions (adding a VM from a cloned template) can take minutes.
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_BREAKER_FAILURES: u64 = 5;
const DEFAULT_BREAKER_OPEN: Duration = Duration::from_secs(10);

/// The engine's API path, which every Manager URL must end with.
const API_SUFFIX: &str = "/ovirt-engine/api";

pub(super) fn validate_managers(
    problems: &mut Problems,
    managers: Vec<FileManager>,
    base: &Path,
) -> Vec<ManagerConfig> {
    if managers.is_empty() {
        problems.push("manager", "at least one [[manager]] is required");
    }
    let mut names = HashSet::new();
    let mut routes = HashSet::new();
    let mut out = Vec::new();
    for (i, manager) in managers.into_iter().enumerate() {
        let at = |key: &str| format!("manager[{i}].{key}");
        if !valid_name(&manager.name) {
            problems.push(at("name"), "use 1 to 64 characters of a-z, 0-9, '-' and '_'");
        } else if !names.insert(manager.name.clone()) {
            problems.push(
                at("name"),
                format!("`{}` is already used by another manager", manager.name),
            );
        }
        let host = manager.host.as_deref().map(str::to_ascii_lowercase);
        if let Some(message) = host.as_deref().and_then(host_problem) {
            problems.push(at("host"), message);
        }
        let prefix = manager.prefix.clone().unwrap_or_default();
        if let Some(message) = prefix_problem(&prefix) {
            problems.push(at("prefix"), message);
        }
        if !routes.insert((host.clone(), prefix.clone())) {
            let message = if host.is_none() && prefix.is_empty() {
                "with several managers, at most one may be published without host or prefix"
            } else {
                "another manager is already published at the same host and prefix"
            };
            problems.push(at("prefix"), message);
        }
        let timeouts = UpstreamTimeouts {
            connect: problems.duration(
                &at("connect_timeout"),
                manager.connect_timeout.as_deref(),
                DEFAULT_CONNECT_TIMEOUT,
            ),
            response_headers: problems.duration(
                &at("response_timeout"),
                manager.response_timeout.as_deref(),
                DEFAULT_RESPONSE_TIMEOUT,
            ),
            body_idle: problems.duration(
                &at("body_idle_timeout"),
                manager.body_idle_timeout.as_deref(),
                DEFAULT_BODY_IDLE_TIMEOUT,
            ),
        };
        let health_interval = problems.duration(
            &at("health_interval"),
            manager.health_interval.as_deref(),
            DEFAULT_HEALTH_INTERVAL,
        );
        // 0 turns the breaker off.
        let breaker_failures = match manager.breaker_failures {
            Some(0) => 0,
            value => problems.count(&at("breaker_failures"), value, DEFAULT_BREAKER_FAILURES, 1000),
        };
        let breaker_open = problems.duration(
            &at("breaker_open"),
            manager.breaker_open.as_deref(),
            DEFAULT_BREAKER_OPEN,
        );
        let breaker = (breaker_failures > 0).then_some(BreakerConfig {
            failures: breaker_failures as u32,
            open_for: breaker_open,
        });
        for (j, path) in manager.forward_paths.iter().enumerate() {
            if let Some(message) = forward_path_problem(path) {
                problems.push(format!("manager[{i}].forward_paths[{j}]"), message);
            }
        }
        let Some((scheme, authority, upstream_prefix)) =
            parse_manager_url(problems, &at("url"), &manager.url)
        else {
            continue;
        };
        let tls = match (scheme == Scheme::HTTPS, manager.ca_file, manager.insecure) {
            (false, None, false) => UpstreamTls::Plain,
            (false, _, _) => {
                problems.push(
                    at("url"),
                    "ca_file and insecure apply only to https:// Manager URLs",
                );
                continue;
            }
            (true, Some(_), true) => {
                problems.push(at("insecure"), "insecure = true and ca_file exclude each other");
                continue;
            }
            (true, Some(ca), false) => UpstreamTls::CaFile(base.join(ca)),
            (true, None, true) => UpstreamTls::Insecure,
            (true, None, false) => UpstreamTls::SystemRoots,
        };
        out.push(ManagerConfig {
            name: manager.name,
            scheme,
            authority,
            upstream_prefix,
            tls,
            host,
            prefix,
            timeouts,
            health_interval,
            breaker,
            forward_paths: manager.forward_paths,
            concurrency: None,
        });
    }
    out
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Why a public prefix is unusable, if it is.
/// What is wrong with a route's `host`, if anything.
pub(super) fn host_problem(host: &str) -> Option<&'static str> {
    (host.is_empty() || host.contains([':', '/', ' ']))
        .then_some("give a host name without scheme, port or path, e.g. rhv.example.com")
}

pub(super) fn prefix_problem(prefix: &str) -> Option<&'static str> {
    if prefix.is_empty() {
        return None;
    }
    if !prefix.starts_with('/') || prefix.ends_with('/') {
        return Some("must start with '/' and not end with '/', e.g. \"/east\"");
    }
    if prefix
        .split('/')
        .skip(1)
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Some("must not contain empty, '.' or '..' segments");
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
    {
        return Some("may contain only letters, digits, '/', '-', '_', '.' and '~'");
    }
    if prefix.split('/').any(|s| s == "ovirt-engine") {
        return Some("must not contain an `ovirt-engine` segment; it is the part in front of /ovirt-engine");
    }
    None
}

/// Scheme, authority and the path in front of `/ovirt-engine` of a Manager's API URL.
fn parse_manager_url(
    problems: &mut Problems,
    path: &str,
    url: &str,
) -> Option<(Scheme, http::uri::Authority, String)> {
    const RELATIVE: &str =
        "relative URL without scheme; give e.g. https://engine.example.com/ovirt-engine/api";
    if !url.contains("://") {
        problems.push(path, RELATIVE);
        return None;
    }
    let uri: Uri = match url.parse() {
        Ok(uri) => uri,
        Err(e) => {
            problems.push(path, format!("`{url}` is not a URL: {e}"));
            return None;
        }
    };
    let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned()) else {
        problems.push(path, RELATIVE);
        return None;
    };
    if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
        problems.push(path, format!("scheme `{scheme}` is not http or https"));
        return None;
    }
    if uri.query().is_some() || authority.as_str().contains('@') {
        problems.push(path, "must not contain a query or user information");
        return None;
    }
    let api_path = uri.path().trim_end_matches('/');
    let Some(upstream_prefix) = api_path.strip_suffix(API_SUFFIX) else {
        problems.push(
            path,
            format!("the path must end with {API_SUFFIX}, e.g. https://engine.example.com{API_SUFFIX}"),
        );
        return None;
    };
    Some((scheme, authority, upstream_prefix.to_owned()))
}

/// What is wrong with a `forward_paths` entry, if anything: it must name a place under
/// `/ovirt-engine` outside the API, SSO and services (which the gateway answers or guards itself),
/// unambiguously.
fn forward_path_problem(path: &str) -> Option<String> {
    let Some(rest) = path.strip_prefix("/ovirt-engine/") else {
        return Some("must start with /ovirt-engine/ (e.g. \"/ovirt-engine/apidoc\")".into());
    };
    if crate::api::path::validate(path).is_err()
        || path.contains(';')
        || path.ends_with('/')
        || rest.is_empty()
    {
        return Some(
            "must be a plain path: no empty, dot or encoded segments, no ';', no trailing '/'".into(),
        );
    }
    let area = rest.split('/').next().unwrap_or("");
    ["api", "sso", "services"]
        .contains(&area)
        .then(|| format!("/ovirt-engine/{area} is served by the gateway's own rules and cannot be forwarded"))
}
