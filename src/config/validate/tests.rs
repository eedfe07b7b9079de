//! Validation of whole files: defaults, every problem with its key path, and the shapes of values.

use std::path::Path;
use std::time::Duration;

use super::cache::DEFAULT_CACHE_TTL;
use super::listen::DEFAULT_MAX_BODY_BYTES;
use super::rate_limit::{DEFAULT_COSTS, DEFAULT_PER_IP, DEFAULT_PER_USER};
use super::values::parse_duration;
use crate::config::{Config, Secret, UpstreamTls};

const MINIMAL: &str = r#"
[listen]
address = "127.0.0.1:8443"
plain_http = true

[[manager]]
name = "engine"
url = "http://127.0.0.1:8080/ovirt-engine/api"
"#;

fn errors(text: &str) -> Vec<String> {
    Config::from_toml(text, Path::new("/etc/gw"))
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The minimal file is valid and gets the documented defaults.
#[test]
fn minimal_config_gets_defaults() {
    let config = Config::from_toml(MINIMAL, Path::new("/etc/gw")).unwrap();
    assert_eq!(config.listen.limits.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    assert_eq!(config.managers[0].upstream_prefix, "");
    assert_eq!(config.managers[0].tls, UpstreamTls::Plain);
    assert_eq!(config.managers[0].prefix, "");
}

/// An unknown key is named with its path and the nearest valid key.
#[test]
fn unknown_key_is_named_with_suggestion() {
    let text = MINIMAL.replace("plain_http", "plain_http = true\nadress = \"x\"\n#");
    assert_eq!(
        errors(&text),
        ["listen.adress: unknown key; did you mean `address`?"]
    );
}

/// Every unknown key is reported in one run, including inside the manager array.
#[test]
fn every_unknown_key_is_reported() {
    let text = format!("{MINIMAL}urll = 1\n[log]\nformatt = \"json\"\n[bogus]\nx = 1\n");
    let found = errors(&text);
    assert!(
        found.contains(&"manager[0].urll: unknown key; did you mean `url`?".to_owned()),
        "{found:?}"
    );
    assert!(
        found.contains(&"log.formatt: unknown key; did you mean `format`?".to_owned()),
        "{found:?}"
    );
    assert!(
        found.iter().any(|e| e.starts_with("bogus: unknown key")),
        "{found:?}"
    );
}

/// A relative manager URL is refused with the key path of the example in the issue.
#[test]
fn relative_manager_url_is_refused() {
    let text =
        format!("{MINIMAL}\n[[manager]]\nname = \"b\"\nurl = \"engine/ovirt-engine/api\"\nprefix = \"/b\"\n");
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("manager[1].url: relative URL without scheme"),
        "{found:?}"
    );
}

/// Several problems in different places are all reported.
#[test]
fn all_problems_reported_at_once() {
    let text = r#"
[listen]
address = "nowhere"
max_body_bytes = 0
header_read_timeout = "10"

[[manager]]
name = "East!"
url = "https://e/ovirt-engine/api"
ca_file = "ca.pem"
insecure = true
"#;
    let found = errors(text);
    for expected in [
        "listen.address:",
        "listen.tls_cert: required unless plain_http",
        "listen.max_body_bytes: must be greater than zero",
        "listen.header_read_timeout: `10` has no unit",
        "manager[0].name:",
        "manager[0].insecure: insecure = true and ca_file exclude each other",
    ] {
        assert!(
            found.iter().any(|e| e.starts_with(expected)),
            "missing {expected} in {found:?}"
        );
    }
}

/// Relative paths resolve against the configuration file's folder.
#[test]
fn relative_paths_resolve_against_config_folder() {
    let text = r#"
[listen]
address = "127.0.0.1:8443"
tls_cert = "tls/cert.pem"
tls_key = { file = "tls/key.pem" }

[[manager]]
name = "engine"
url = "https://engine.example.com/ovirt-engine/api"
ca_file = "engine-ca.pem"
"#;
    let config = Config::from_toml(text, Path::new("/etc/gw")).unwrap();
    let tls = config.listen.tls.unwrap();
    assert_eq!(tls.cert, Path::new("/etc/gw/tls/cert.pem"));
    assert_eq!(tls.key, Secret::File("/etc/gw/tls/key.pem".into()));
    assert_eq!(
        config.managers[0].tls,
        UpstreamTls::CaFile("/etc/gw/engine-ca.pem".into())
    );
}

/// The key may come from an environment variable instead of a file.
#[test]
fn key_from_environment() {
    let text = MINIMAL.replace(
        "plain_http = true",
        "tls_cert = \"c.pem\"\ntls_key = { env = \"GW_KEY\" }",
    );
    let config = Config::from_toml(&text, Path::new("/etc/gw")).unwrap();
    assert_eq!(config.listen.tls.unwrap().key, Secret::Env("GW_KEY".into()));
}

/// Two managers published at the same place are refused.
#[test]
fn duplicate_route_is_refused() {
    let text = format!("{MINIMAL}\n[[manager]]\nname = \"b\"\nurl = \"http://b/ovirt-engine/api\"\n");
    let found = errors(&text);
    assert!(
        found[0].starts_with("manager[1].prefix: with several managers"),
        "{found:?}"
    );
}

/// A Manager URL must point at the API, and a prefix must be a clean path.
#[test]
fn manager_url_and_prefix_shapes() {
    let text = MINIMAL.replace("/ovirt-engine/api\"", "/api\"\nprefix = \"/east/\"");
    let found = errors(&text);
    assert!(
        found
            .iter()
            .any(|e| e.starts_with("manager[0].url: the path must end with /ovirt-engine/api"))
    );
    assert!(
        found
            .iter()
            .any(|e| e.starts_with("manager[0].prefix: must start with '/'"))
    );
}

/// A Manager behind a path keeps that path as its upstream prefix.
#[test]
fn manager_under_a_path() {
    let text = MINIMAL.replace("8080/ovirt-engine", "8080/rhv/ovirt-engine");
    let config = Config::from_toml(&text, Path::new("/")).unwrap();
    assert_eq!(config.managers[0].upstream_prefix, "/rhv");
}

/// Durations take ms, s, m and h; both sides of the unit rule.
/// Rate limits are on without a `[rate_limit]` table; each bad key is named.
#[test]
fn rate_limit_defaults_and_errors() {
    let limits = Config::from_toml(MINIMAL, Path::new("/etc/gw"))
        .unwrap()
        .rate_limit
        .unwrap();
    assert_eq!(
        (limits.per_ip, limits.per_user, limits.costs),
        (DEFAULT_PER_IP, DEFAULT_PER_USER, DEFAULT_COSTS)
    );
    let off = format!("{MINIMAL}\n[rate_limit]\nenabled = false\n");
    assert!(
        Config::from_toml(&off, Path::new("/etc/gw"))
            .unwrap()
            .rate_limit
            .is_none()
    );
    let found = errors(&format!(
        "{MINIMAL}\n[rate_limit.per_user]\nrate = 0\n[rate_limit.costs]\naction = 2000000\n\
         [[rate_limit.user]]\nname = \"robot\"\nrate = 5\nburst = 0\n"
    ));
    let groups = errors(&format!(
        "{MINIMAL}\n[[rate_limit.group]]\nname = \"ops\"\nrate = 5\nburst = 10\n"
    ));
    assert_eq!(
        groups,
        ["rate_limit.group: groups come from the policy directory's entities: add a [policy] table"]
    );
    assert_eq!(
        found,
        [
            "rate_limit.per_user.rate: must be greater than zero",
            "rate_limit.user[0].name: must be user@profile, as clients log in",
            "rate_limit.user[0].burst: must be greater than zero",
            "rate_limit.costs.action: must be at most 1000000",
        ]
    );
}

/// `[cache]` alone turns the cache on with the documented defaults; each bad key is named.
#[test]
fn cache_defaults_and_errors() {
    let config = Config::from_toml(&format!("{MINIMAL}\n[cache]\n"), Path::new("/etc/gw")).unwrap();
    let cache = config.cache.unwrap();
    assert_eq!((cache.max_bytes, cache.max_entry_bytes), (64 << 20, 1 << 20));
    assert_eq!(cache.ttl, DEFAULT_CACHE_TTL);
    assert!(
        Config::from_toml(MINIMAL, Path::new("/etc/gw"))
            .unwrap()
            .cache
            .is_none()
    );
    let found = errors(&format!(
        "{MINIMAL}\n[cache]\nmax_bytes = 1000\nmax_entry_bytes = 2000\nshared_collections = [\"vms\", \"vm\"]\n[cache.ttl]\nentity = \"2\"\nroot = \"0s\"\n"
    ));
    assert_eq!(found.len(), 4, "{found:?}");
    for expected in [
        "cache.max_entry_bytes: must be at most 1000",
        "cache.ttl.root: must be greater than zero",
        "cache.shared_collections[1]: `vm` is not a collection of the API root",
    ] {
        assert!(found.iter().any(|e| e == expected), "{expected}: {found:?}");
    }
    assert!(
        found.iter().any(|e| e.starts_with("cache.ttl.entity: ")),
        "{found:?}"
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert!(parse_duration("30").is_err());
    assert!(parse_duration("30d").is_err());
    assert!(parse_duration("s").is_err());
}

/// A type error names its key path.
#[test]
fn wrong_type_names_path() {
    let text = MINIMAL.replace("plain_http = true", "plain_http = \"yes\"");
    let found = errors(&text);
    assert!(
        found[0].starts_with("listen.plain_http: invalid type"),
        "{found:?}"
    );
}

/// `[federation]`: its members and home are Managers, its route is not one of theirs, and
/// each problem names its key.
#[test]
fn federation_defaults_and_errors() {
    let two = format!(
        "{MINIMAL}prefix = \"/east\"\n[[manager]]\nname = \"west\"\nurl = \"http://127.0.0.1:8081/ovirt-engine/api\"\nprefix = \"/west\"\n"
    );
    let config = Config::from_toml(
        &format!("{two}[federation]\nprefix = \"/all\"\nmembers = [\"engine\", \"west\"]\n"),
        Path::new("/etc/gw"),
    )
    .unwrap();
    let federation = config.federation.unwrap();
    assert_eq!(federation.home, "engine", "home defaults to the first member");
    assert_eq!(federation.partial, crate::config::Partial::Strict);

    let problems = errors(&format!(
        "{two}[federation]\nprefix = \"/east\"\nmembers = [\"engine\", \"engine\", \"south\"]\nhome = \"north\"\npartial = \"sometimes\"\n"
    ));
    for expected in [
        "federation.prefix: manager `engine` is already published at the same host and prefix",
        "federation.members[1]: `engine` is named twice",
        "federation.members[2]: `south` is not the name of a [[manager]]",
        "federation.home: `north` is not one of federation.members",
        "federation.partial: `sometimes` is not one of `strict`, `lenient`",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected}: {problems:?}"
        );
    }
    let one = errors(&format!(
        "{two}[federation]\nprefix = \"/all\"\nmembers = [\"west\"]\n"
    ));
    assert!(
        one.iter()
            .any(|p| p.contains("federation.members: name 2 to 64 managers")),
        "{one:?}"
    );
}

/// `[shared]`: its defaults, the token key it needs, and each value's problems with its path.
#[test]
fn shared_defaults_and_errors() {
    let text = format!(
        "{MINIMAL}[auth]\ntoken_key = \"token.pem\"\n[shared]\nurl = \"redis://127.0.0.1:6379/2\"\nkey = \"shared.key\"\nreplicas = 3\n"
    );
    let config = Config::from_toml(&text, Path::new("/etc/gw")).unwrap();
    let shared = config.shared.unwrap();
    assert_eq!(shared.key, Secret::File("/etc/gw/shared.key".into()));
    assert_eq!(shared.key_prefix, "ovirt-gateway:");
    assert_eq!(shared.timeout, Duration::from_millis(500));
    assert_eq!(shared.check_interval, Duration::from_secs(1));
    assert_eq!(shared.degraded_ttl, Duration::from_secs(5));
    assert_eq!(shared.replicas, 3);
    assert_eq!(shared.sync_interval, Duration::from_millis(200));

    let without_token_key =
        format!("{MINIMAL}[shared]\nurl = \"redis://127.0.0.1\"\nkey = \"k\"\nreplicas = 2\n");
    assert_eq!(
        errors(&without_token_key),
        [
            "auth.token_key: required with [shared]: every replica must sign and verify the gateway's tokens with the same key"
        ]
    );
    let bad = format!(
        "{MINIMAL}[auth]\ntoken_key = \"t\"\n[shared]\nurl = \"http://x\"\nkey = {{ env = \"\" }}\nca_file = \"ca.pem\"\nkey_prefix = \"a b\"\ntimeout = \"0s\"\nreplicas = 0\n"
    );
    assert_eq!(
        errors(&bad),
        [
            "shared.url: `http://x` is not a redis:// or rediss:// URL",
            "shared.ca_file: only used with a rediss:// URL (not with sentinels)",
            "shared.key_prefix: must be printable ASCII without spaces, e.g. ovirt-gateway:",
            "shared.key.env: must name an environment variable",
            "shared.timeout: must be greater than zero",
            "shared.replicas: must be greater than zero",
        ]
    );
}

/// `shared.replicas` must be given: the fallback quotas depend on it.
#[test]
fn shared_replicas_are_required() {
    let text = format!("{MINIMAL}[auth]\ntoken_key = \"t\"\n[shared]\nurl = \"redis://x\"\nkey = \"k\"\n");
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("shared"), "{found:?}");
    assert!(found[0].contains("replicas"), "{found:?}");
}

/// With Sentinels: their addresses, the service and the database; not with a URL as well.
#[test]
fn shared_sentinels() {
    let sentinels = format!(
        "{MINIMAL}[auth]\ntoken_key = \"t\"\n[shared]\nsentinels = [\"10.0.0.1:26379\", \"s2:26379\"]\n\
         service = \"gateway\"\ndatabase = 2\nkey = \"k\"\nreplicas = 2\n"
    );
    let config = Config::from_toml(&sentinels, Path::new("/etc/gw")).unwrap();
    assert_eq!(
        config.shared.unwrap().store,
        crate::config::Store::Sentinel {
            sentinels: vec!["10.0.0.1:26379".into(), "s2:26379".into()],
            service: "gateway".into(),
            database: 2,
        }
    );
    let bad = format!(
        "{MINIMAL}[auth]\ntoken_key = \"t\"\n[shared]\nsentinels = [\"s1\", \":1\"]\nkey = \"k\"\nreplicas = 2\n"
    );
    assert_eq!(
        errors(&bad),
        [
            "shared.sentinels[0]: `s1` is not host:port, e.g. 10.0.0.1:26379",
            "shared.sentinels[1]: `:1` is not host:port, e.g. 10.0.0.1:26379",
            "shared.service: required with shared.sentinels: the name Sentinel monitors the store as",
        ]
    );
    let both = format!(
        "{MINIMAL}[auth]\ntoken_key = \"t\"\n[shared]\nurl = \"redis://x\"\nsentinels = [\"s:1\"]\nkey = \"k\"\nreplicas = 2\n"
    );
    assert_eq!(
        errors(&both),
        ["shared.url: give either url or sentinels, not both"]
    );
}

/// A password in `shared.url` is refused without echoing it: it belongs in `shared.password`.
#[test]
fn shared_url_with_credentials_is_refused_unechoed() {
    let text = format!(
        "{MINIMAL}[auth]\ntoken_key = \"t\"\n[shared]\nurl = \"rediss://gw:s3cret@store:6380\"\nkey = \"k\"\nreplicas = 2\n"
    );
    let found = errors(&text);
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("shared.url: holds credentials"), "{found:?}");
    assert!(!found[0].contains("s3cret"));
}
