//! Which Manager a request is for: by Host (`host`) and by public path prefix (`prefix`); the
//! merged view (`[federation]`) is a route too, whose target is its members.
//!
//! Routes with a host are tried before routes without one, longer prefixes before shorter ones,
//! so the most specific publication wins. A prefix matches only at a segment boundary and only
//! when `/ovirt-engine` follows it (`/east/ovirt-engine/...`, never `/eastern/...`).

use crate::api::path::ENGINE_ROOT;
use crate::config::{FederationConfig, ManagerConfig};

#[derive(Debug)]
pub(crate) struct Router {
    routes: Vec<Route>,
    /// The merged view's members, by index, in member order.
    members: Vec<usize>,
}

#[derive(Debug)]
struct Route {
    host: Option<String>,
    prefix: String,
    target: Target,
}

/// Where a route leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// One Manager, by its index.
    Manager(usize),
    /// The merged view over the federation's members.
    Merged,
}

/// A matched route: its target, the public prefix and the engine path behind it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RouteMatch<'a> {
    pub target: Target,
    pub prefix: &'a str,
    pub engine_path: &'a str,
}

impl Router {
    pub(crate) fn new(managers: &[ManagerConfig], federation: Option<&FederationConfig>) -> Router {
        let mut routes: Vec<Route> = managers
            .iter()
            .enumerate()
            .map(|(manager, m)| Route {
                host: m.host.clone(),
                prefix: m.prefix.clone(),
                target: Target::Manager(manager),
            })
            .collect();
        routes.extend(federation.map(|f| Route {
            host: f.host.clone(),
            prefix: f.prefix.clone(),
            target: Target::Merged,
        }));
        let members: Vec<usize> = federation.map_or_else(Vec::new, |f| {
            f.members
                .iter()
                .filter_map(|name| managers.iter().position(|m| &m.name == name))
                .collect()
        });
        routes.sort_by(|a, b| {
            b.host
                .is_some()
                .cmp(&a.host.is_some())
                .then(b.prefix.len().cmp(&a.prefix.len()))
        });
        Router { routes, members }
    }

    /// The route for a request to `host` (the Host header or :authority, port allowed) and `path`.
    pub(crate) fn find<'a>(&self, host: Option<&str>, path: &'a str) -> Option<RouteMatch<'a>> {
        let host = host.map(strip_port);
        self.routes.iter().find_map(|route| {
            if let Some(want) = &route.host
                && !host.is_some_and(|h| h.eq_ignore_ascii_case(want))
            {
                return None;
            }
            let engine_path = path.strip_prefix(route.prefix.as_str())?;
            let after_root = engine_path.strip_prefix(ENGINE_ROOT)?;
            if !(after_root.is_empty() || after_root.starts_with('/') || after_root.starts_with(';')) {
                return None;
            }
            Some(RouteMatch {
                target: route.target,
                prefix: &path[..route.prefix.len()],
                engine_path,
            })
        })
    }
}

impl Router {
    /// Every Manager some path on `host` leads to (its host routes and the routes without a host),
    /// in configuration order: the Managers the gateway's SSO endpoint on that host logs in at.
    pub(crate) fn reachable(&self, host: Option<&str>) -> Vec<usize> {
        let host = host.map(strip_port);
        let mut managers: Vec<usize> = self
            .routes
            .iter()
            .filter(|route| {
                route
                    .host
                    .as_ref()
                    .is_none_or(|want| host.is_some_and(|h| h.eq_ignore_ascii_case(want)))
            })
            .flat_map(|route| match route.target {
                Target::Manager(manager) => vec![manager],
                Target::Merged => self.members.clone(),
            })
            .collect();
        managers.sort_unstable();
        managers.dedup();
        managers
    }
}

/// `host` without its `:port`, IPv6 literals included (`[::1]:8443` -> `[::1]`).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn router(managers: &str) -> Router {
        let text = format!("[listen]\naddress = \"127.0.0.1:1\"\nplain_http = true\n{managers}");
        let config = Config::from_toml(&text, Path::new("/")).unwrap();
        Router::new(&config.managers, config.federation.as_ref())
    }

    const TWO: &str = r#"
[[manager]]
name = "default"
url = "http://a/ovirt-engine/api"
[[manager]]
name = "east"
url = "http://b/ovirt-engine/api"
prefix = "/east"
[[manager]]
name = "west"
url = "http://c/ovirt-engine/api"
host = "west.example.com"
"#;

    /// A host reaches its own Managers and those published on every host; another host only the
    /// latter.
    #[test]
    fn reachable_managers_by_host() {
        let r = router(TWO);
        assert_eq!(r.reachable(Some("west.example.com:8443")), vec![0, 1, 2]);
        assert_eq!(r.reachable(Some("other.example.com")), vec![0, 1]);
        assert_eq!(r.reachable(None), vec![0, 1]);
    }

    /// A lone Manager without host or prefix takes everything under /ovirt-engine.
    #[test]
    fn single_manager_takes_engine_paths() {
        let r = router("[[manager]]\nname = \"m\"\nurl = \"http://a/ovirt-engine/api\"\n");
        let found = r.find(Some("any:8443"), "/ovirt-engine/api/vms").unwrap();
        assert_eq!(
            found,
            RouteMatch {
                target: Target::Manager(0),
                prefix: "",
                engine_path: "/ovirt-engine/api/vms"
            }
        );
        assert!(r.find(None, "/other").is_none());
    }

    /// A prefix routes only at a segment boundary followed by /ovirt-engine.
    #[test]
    fn prefix_routes_at_boundary() {
        let r = router(TWO);
        let found = r.find(None, "/east/ovirt-engine/api").unwrap();
        assert_eq!(
            found,
            RouteMatch {
                target: Target::Manager(1),
                prefix: "/east",
                engine_path: "/ovirt-engine/api"
            }
        );
        assert!(r.find(None, "/eastern/ovirt-engine/api").is_none());
        assert!(r.find(None, "/east/ovirt-engineX").is_none());
    }

    /// A host route wins for its host, case-insensitively and with any port.
    #[test]
    fn host_route_wins_for_its_host() {
        let r = router(TWO);
        assert_eq!(
            r.find(Some("WEST.example.com:8443"), "/ovirt-engine/api")
                .unwrap()
                .target,
            Target::Manager(2)
        );
        assert_eq!(
            r.find(Some("other.example.com"), "/ovirt-engine/api")
                .unwrap()
                .target,
            Target::Manager(0)
        );
    }

    /// Ports are stripped from names and IPv6 literals alike.
    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("a.example:443"), "a.example");
        assert_eq!(strip_port("[::1]:8443"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("plain"), "plain");
    }
}
