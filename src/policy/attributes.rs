//! Facts about a resource that its URL does not carry (a VM's name, cluster, data center and
//! tags), for policies that read them. They are looked up at the Manager with the requesting
//! user's own token (so a user learns nothing the Manager would not show them), only for the
//! attributes a loaded policy reads, and cached for `policy.attribute_ttl` per Manager, user and
//! resource. The cost, one to four GETs per uncached resource, is in docs/policies.md.

use std::sync::Arc;
use std::time::Duration;

use cedar_policy::RestrictedExpression;
use http::StatusCode;
use http::header::{AUTHORIZATION, HeaderValue};
use moka::future::Cache;

use super::Mapped;
use crate::metrics::Metrics;
use crate::upstream::Upstream;
use crate::upstream::gate::Caller;

/// Types whose entities have a cluster (and through it a data center); the schema declares
/// `cluster` and `data_center` on these.
const CLUSTERED: [&str; 4] = ["Vm", "Host", "Template", "VmPool"];
/// Types the schema declares `tags` on.
const TAGGED: [&str; 3] = ["Vm", "Host", "Template"];
/// The largest entity answer read.
const MAX_ANSWER: usize = 1024 * 1024;
/// Most resources remembered at once.
const CAPACITY: u64 = 100_000;

/// Which resource attributes policies read (`resource.cluster`, `resource has tags`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reads {
    pub name: bool,
    pub cluster: bool,
    pub data_center: bool,
    pub tags: bool,
}

impl Reads {
    /// Notes a read of `resource.attr`.
    pub fn insert(&mut self, attr: &str) {
        match attr {
            "name" => self.name = true,
            "cluster" => self.cluster = true,
            "data_center" => self.data_center = true,
            "tags" => self.tags = true,
            _ => {}
        }
    }

    pub fn union(self, other: Reads) -> Reads {
        Reads {
            name: self.name || other.name,
            cluster: self.cluster || other.cluster,
            data_center: self.data_center || other.data_center,
            tags: self.tags || other.tags,
        }
    }

    /// What to look up for a resource of this kind: only what its type declares.
    pub fn for_kind(self, kind: &str) -> Reads {
        let clustered = CLUSTERED.contains(&kind);
        Reads {
            name: self.name,
            cluster: self.cluster && clustered,
            data_center: self.data_center && (clustered || kind == "Cluster"),
            tags: self.tags && TAGGED.contains(&kind),
        }
    }

    pub fn any(self) -> bool {
        self.name || self.cluster || self.data_center || self.tags
    }
}

/// What was found; what could not be (the user may not see it) stays absent, so a policy's
/// `resource has cluster` is false.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub name: Option<String>,
    pub cluster: Option<String>,
    pub data_center: Option<String>,
    pub tags: Option<Vec<String>>,
}

impl Found {
    pub fn into_attrs(self) -> Vec<(String, RestrictedExpression)> {
        let mut attrs = Vec::new();
        for (key, value) in [
            ("name", self.name),
            ("cluster", self.cluster),
            ("data_center", self.data_center),
        ] {
            if let Some(value) = value {
                attrs.push((key.to_owned(), RestrictedExpression::new_string(value)));
            }
        }
        if let Some(tags) = self.tags {
            attrs.push((
                "tags".to_owned(),
                RestrictedExpression::new_set(tags.into_iter().map(RestrictedExpression::new_string)),
            ));
        }
        attrs
    }
}

/// Recently looked-up resources, per Manager, user and resource.
pub(crate) struct Lookups {
    cache: Cache<(String, String, String, String), Arc<Found>>,
}

/// How to ask the Manager: as the user, as the user asked (their Filter header).
pub(crate) struct Asker<'a> {
    pub upstream: &'a Upstream,
    pub metrics: &'a Metrics,
    pub user: &'a str,
    pub authorization: &'a HeaderValue,
    pub filter: Option<&'a HeaderValue>,
}

impl Lookups {
    pub(crate) fn new(ttl: Duration) -> Lookups {
        Lookups {
            cache: Cache::builder().max_capacity(CAPACITY).time_to_live(ttl).build(),
        }
    }

    /// The attributes `reads` names for a mapped entity; nothing for collections, the root and
    /// unknown paths, or when no policy reads any.
    pub(crate) async fn find(&self, reads: Reads, mapped: &Mapped, asker: &Asker<'_>) -> Found {
        let reads = reads.for_kind(mapped.kind.as_str());
        // Nothing to look up for a collection, the root, an unknown path, or an entity whose id
        // is not known before the answer (one a `follow` inlines).
        let Some(collection) = mapped.collection.as_deref().filter(|_| !mapped.id.is_empty()) else {
            return Found::default();
        };
        if !reads.any() {
            return Found::default();
        }
        let key = (
            asker.upstream.name().to_owned(),
            asker.user.to_owned(),
            format!("{collection}/{}", mapped.id),
            format!("{reads:?}"),
        );
        let found = self
            .cache
            .get_with(key, async {
                Arc::new(look_up(reads, collection, &mapped.id, asker).await)
            })
            .await;
        (*found).clone()
    }
}

async fn look_up(reads: Reads, collection: &str, id: &str, asker: &Asker<'_>) -> Found {
    let mut found = Found::default();
    let entity = get(asker, &format!("{collection}/{id}")).await;
    if let Some(entity) = &entity {
        if reads.name {
            found.name = entity["name"].as_str().map(str::to_owned);
        }
        let mut data_center = entity["data_center"]["id"].as_str().map(str::to_owned);
        if (reads.cluster || reads.data_center)
            && let Some(cluster_id) = entity["cluster"]["id"].as_str()
            && let Some(cluster) = get(asker, &format!("clusters/{cluster_id}")).await
        {
            if reads.cluster {
                found.cluster = cluster["name"].as_str().map(str::to_owned);
            }
            data_center = cluster["data_center"]["id"].as_str().map(str::to_owned);
        }
        if reads.data_center
            && let Some(data_center_id) = data_center
            && let Some(data_center) = get(asker, &format!("datacenters/{data_center_id}")).await
        {
            found.data_center = data_center["name"].as_str().map(str::to_owned);
        }
    }
    if reads.tags
        && entity.is_some()
        && let Some(tags) = get(asker, &format!("{collection}/{id}/tags")).await
    {
        found.tags = Some(
            tags["tag"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|tag| tag["name"].as_str().map(str::to_owned))
                .collect(),
        );
    }
    found
}

/// `GET /ovirt-engine/api/{path}` in JSON as the user; `None` unless the Manager answers 200.
async fn get(asker: &Asker<'_>, path: &str) -> Option<serde_json::Value> {
    let mut headers = http::HeaderMap::new();
    headers.insert(AUTHORIZATION, asker.authorization.clone());
    if let Some(filter) = asker.filter {
        headers.insert("filter", filter.clone());
    }
    let upstream = asker.upstream;
    match upstream
        .get_api_json(
            &format!("/{path}"),
            headers,
            Caller::User(asker.user),
            asker.metrics,
            MAX_ANSWER,
        )
        .await
    {
        Ok((StatusCode::OK, value)) => Some(value),
        Ok((status, _)) => {
            tracing::debug!(manager = %upstream.name(), %status, path, "policy attribute lookup refused");
            None
        }
        Err(error) => {
            tracing::warn!(manager = %upstream.name(), %error, "policy attribute lookup failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only what a resource's type declares is looked up.
    #[test]
    fn reads_for_a_kind() {
        let reads = Reads {
            cluster: true,
            tags: true,
            ..Reads::default()
        };
        assert_eq!(reads.for_kind("Disk"), Reads::default());
        assert_eq!(reads.for_kind("Vm"), reads);
        assert_eq!(
            reads.for_kind("Cluster"),
            Reads::default(),
            "a cluster has a data center, not a cluster"
        );
    }
}
