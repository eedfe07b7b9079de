//! `[cache]`: the size bounds and the time to live by route class.

use std::time::Duration;

use super::values::Problems;
use crate::config::file::FileCache;
use crate::config::{CacheConfig, CacheTtl};

const DEFAULT_CACHE_MAX_BYTES: u64 = 64 * 1024 * 1024;
const DEFAULT_CACHE_MAX_ENTRY_BYTES: u64 = 1024 * 1024;
/// Short: statuses change in the engine without a write through the gateway (a VM comes up).
pub(super) const DEFAULT_CACHE_TTL: CacheTtl = CacheTtl {
    root: Duration::from_secs(10),
    collection: Duration::from_secs(2),
    entity: Duration::from_secs(2),
    below: Duration::from_secs(2),
};

pub(super) fn validate_cache(problems: &mut Problems, cache: FileCache) -> CacheConfig {
    let max_bytes = problems.count(
        "cache.max_bytes",
        cache.max_bytes,
        DEFAULT_CACHE_MAX_BYTES,
        1 << 40,
    );
    let max_entry_bytes = problems.count(
        "cache.max_entry_bytes",
        cache.max_entry_bytes,
        DEFAULT_CACHE_MAX_ENTRY_BYTES.min(max_bytes),
        max_bytes,
    );
    let mut ttl = |name: &str, value: Option<String>, default| {
        problems.duration(&format!("cache.ttl.{name}"), value.as_deref(), default)
    };
    let ttl = CacheTtl {
        root: ttl("root", cache.ttl.root, DEFAULT_CACHE_TTL.root),
        collection: ttl("collection", cache.ttl.collection, DEFAULT_CACHE_TTL.collection),
        entity: ttl("entity", cache.ttl.entity, DEFAULT_CACHE_TTL.entity),
        below: ttl("below", cache.ttl.below, DEFAULT_CACHE_TTL.below),
    };
    for (i, name) in cache.shared_collections.iter().enumerate() {
        if crate::api::entity_type(name).is_none() {
            problems.push(
                format!("cache.shared_collections[{i}]"),
                format!("`{name}` is not a collection of the API root"),
            );
        }
    }
    CacheConfig {
        max_bytes,
        max_entry_bytes,
        ttl,
        shared_collections: cache.shared_collections,
    }
}
