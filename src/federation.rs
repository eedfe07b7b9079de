//! The merged view (docs/federation.md, "The merged view"): one API over several Managers, with
//! the engines' own ids and hrefs under the merged base. This module holds what the view knows
//! between requests: its members, the id→Manager index, and which ids every engine shares; the
//! `merged` stage of the pipeline decides where each request goes, and `merge.rs` joins answers.
//!
//! The index maps (top-level collection, id) to the members known to hold it, as a bit set. It is
//! learned only from what members answer (a probe's 200, a 201's Location, a listing's items),
//! never from what clients send, so a client cannot steer another's requests; it forgets what a
//! member no longer has (a DELETE's 2xx, a 404) and anything unused for a week. It is a cache:
//! losing it costs probes, never a wrong answer.

pub(crate) mod anchor;
pub(crate) mod events;
pub(crate) mod merge;
pub(crate) mod root;
pub(crate) mod search;
pub(crate) mod sorted;

use std::sync::Arc;
use std::time::Duration;

use moka::ops::compute::Op;
use moka::sync::Cache;

use crate::config::FederationConfig;
use crate::upstream::Upstream;

/// The `manager` of the merged view's own answers in metrics and the access log.
pub(crate) const LABEL: &str = "federation";

/// Ids in the index at most; about 100 bytes each.
const INDEX_CAPACITY: u64 = 1 << 20;
/// An id unused this long is forgotten (and probed for again).
const INDEX_IDLE: Duration = Duration::from_secs(7 * 24 * 3600);

pub(crate) struct Federation {
    pub config: FederationConfig,
    /// In member order.
    pub members: Vec<Arc<Upstream>>,
    /// The index in `members` of `config.home`.
    pub home: usize,
    pub index: Index,
    /// Where each member's events stood when an event was delivered (events.rs).
    pub cursors: events::Cursors,
}

/// Which members hold an id of a top-level collection; a cache (module docs).
pub(crate) struct Index {
    /// Keyed by `collection/id`.
    cache: Cache<String, u64>,
}

/// A set of members, by their index in `Federation::members`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Members(pub u64);

impl Members {
    /// This set and `member`.
    pub(crate) fn with(self, member: usize) -> Members {
        Members(self.0 | 1 << member)
    }

    pub(crate) fn contains(self, member: usize) -> bool {
        self.0 & (1 << member) != 0
    }

    pub(crate) fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// The members in member order.
    pub(crate) fn iter(self) -> impl Iterator<Item = usize> {
        (0..64).filter(move |&m| self.contains(m))
    }
}

impl Federation {
    /// `upstreams` are all of the gateway's Managers; the configuration names the members.
    pub(crate) fn new(config: FederationConfig, upstreams: &[Arc<Upstream>]) -> Federation {
        let members: Vec<Arc<Upstream>> = config
            .members
            .iter()
            .map(|name| {
                upstreams
                    .iter()
                    .find(|u| u.name() == name)
                    .expect("validated: members are Managers")
                    .clone()
            })
            .collect();
        let home = config
            .members
            .iter()
            .position(|name| *name == config.home)
            .expect("validated: home is a member");
        Federation {
            config,
            members,
            home,
            index: Index::new(INDEX_CAPACITY),
            cursors: events::Cursors::new(),
        }
    }

    /// Every member.
    pub(crate) fn all(&self) -> Members {
        Members(u64::MAX >> (64 - self.members.len()))
    }

    /// The member named `name`.
    pub(crate) fn member(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name() == name)
    }
}

impl Index {
    fn new(capacity: u64) -> Index {
        Index {
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(INDEX_IDLE)
                .build(),
        }
    }

    /// The members known to hold `id` in `collection`; empty when unknown.
    pub(crate) fn owners(&self, collection: &str, id: &str) -> Members {
        Members(self.cache.get(&key(collection, id)).unwrap_or(0))
    }

    /// `member` holds `id` in `collection` (it answered with it). Changes are made under the
    /// key's lock, so that concurrent answers of two members both count.
    pub(crate) fn learn(&self, collection: &str, id: &str, member: usize) {
        let key = key(collection, id);
        if self
            .cache
            .get(&key)
            .is_some_and(|known| Members(known).contains(member))
        {
            return;
        }
        self.cache
            .entry(key)
            .and_compute_with(|known| Op::Put(known.map_or(0, |e| e.into_value()) | 1 << member));
    }

    /// `member` no longer holds `id` in `collection` (it deleted it, or answered 404).
    pub(crate) fn forget(&self, collection: &str, id: &str, member: usize) {
        self.cache.entry(key(collection, id)).and_compute_with(|known| {
            match known.map(|e| e.into_value() & !(1 << member)) {
                None => Op::Nop,
                Some(0) => Op::Remove,
                Some(rest) => Op::Put(rest),
            }
        });
    }
}

/// The index's key of `id` in `collection` (an id is one path segment: no `/`).
fn key(collection: &str, id: &str) -> String {
    let mut key = String::with_capacity(collection.len() + 1 + id.len());
    key.push_str(collection);
    key.push('/');
    key.push_str(id);
    key
}

/// Whether `id` in `collection` is one that every engine has under the same id (docs/federation.md,
/// "Well-known ids"; the engine's install data): the Blank template and the root tag, the
/// built-in roles, instance types, the Everyone group, the ovirtmgmt network and its vNIC
/// profile, the Default MAC pool and CPU profile, and ids the engine derives from a name or a
/// number (operating systems, cluster levels, authentication domains). Reads of them go to the
/// home member; writes need a member named.
pub(crate) fn well_known(collection: &str, id: &str) -> bool {
    const BLANK: &str = "00000000-0000-0000-0000-000000000000";
    match collection {
        "templates" | "tags" => id == BLANK,
        // Built-in roles: 00000000-0000-0000-000N-0000000000NN and def000NN-0000-0000-0000-def0000000NN.
        "roles" => id.starts_with("00000000-0000-0000-000") || id.starts_with("def000"),
        "instancetypes" => [
            "00000003-0003-0003-0003-0000000000be",
            "00000005-0005-0005-0005-0000000002e6",
            "00000007-0007-0007-0007-00000000010a",
            "00000009-0009-0009-0009-0000000000f1",
            "0000000b-000b-000b-000b-00000000021f",
        ]
        .contains(&id),
        "groups" => id == "eee00000-0000-0000-0000-123456789eee",
        "networks" => id == "00000000-0000-0000-0000-000000000009",
        "vnicprofiles" => id == "0000000a-000a-000a-000a-000000000398",
        "macpools" => id == "58ca604b-017d-0374-0220-00000000014e",
        "cpuprofiles" => id == "58ca604e-01a7-003f-01de-000000000250",
        "operatingsystems" | "clusterlevels" | "domains" => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Member sets iterate in member order and count their members.
    #[test]
    fn member_sets() {
        let set = Members(0b1010);
        assert_eq!(set.iter().collect::<Vec<_>>(), [1, 3]);
        assert_eq!(set.len(), 2);
        assert!(set.contains(3) && !set.contains(0));
        assert_eq!(Members(1).with(2), Members(5));
    }

    proptest::proptest! {
        /// Against a model (a map of sets): whatever members answer with or lose, in any order,
        /// the index names exactly the members that last answered with an id and did not lose
        /// it since.
        #[test]
        fn the_index_follows_a_model(
            ops in proptest::collection::vec((0u8..2, 0usize..3, 0usize..4, 0usize..3), 0..200),
        ) {
            let index = Index::new(1000);
            let mut model: std::collections::HashMap<(usize, usize), u64> = Default::default();
            let collections = ["vms", "hosts", "clusters"];
            for (op, collection, id, member) in ops {
                let (c, i) = (collections[collection], format!("id-{id}"));
                let known = model.entry((collection, id)).or_default();
                if op == 0 {
                    index.learn(c, &i, member);
                    *known |= 1 << member;
                } else {
                    index.forget(c, &i, member);
                    *known &= !(1 << member);
                }
            }
            for ((collection, id), members) in model {
                let owners = index.owners(collections[collection], &format!("id-{id}"));
                proptest::prop_assert_eq!(owners, Members(members));
            }
        }
    }

    /// The engine's fixed ids are well known; a random one is not.
    #[test]
    fn well_known_ids() {
        assert!(well_known("templates", "00000000-0000-0000-0000-000000000000"));
        assert!(well_known("roles", "00000000-0000-0000-0001-000000000001"));
        assert!(well_known("roles", "def00001-0000-0000-0000-def000000001"));
        assert!(well_known("networks", "00000000-0000-0000-0000-000000000009"));
        assert!(!well_known("vms", "00000000-0000-0000-0000-000000000000"));
        assert!(!well_known("roles", "6c8f9d3a-2b4e-4c1d-9a7f-0e5b3c2d1a00"));
    }
}
