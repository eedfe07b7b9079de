//! Where each stored answer is, so that a write evicts what it touched (proportional to what is
//! evicted, not to what is stored), and how many writes each collection has seen, so that an
//! answer overtaken by a write is not stored.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::key::Key;

/// Where an answer is: a Manager's collection, and the entity's id (`None` for the collection's
/// listings).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Place {
    pub manager: String,
    pub collection: String,
    pub id: Option<String>,
}

impl Place {
    fn collection(&self) -> (String, String) {
        (self.manager.clone(), self.collection.clone())
    }
}

/// A Manager's collection: its entries, and how many writes to it completed.
#[derive(Default)]
struct Collection {
    writes: u64,
    listings: HashSet<Arc<Key>>,
    entities: HashMap<String, HashSet<Arc<Key>>>,
}

#[derive(Default)]
pub(super) struct Index(Mutex<HashMap<(String, String), Collection>>);

impl Index {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Collection>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many writes to `place`'s collection completed.
    pub(super) fn writes(&self, place: &Place) -> u64 {
        self.lock().get(&place.collection()).map_or(0, |c| c.writes)
    }

    /// Records `key` at `place`, unless a write to its collection completed since it counted
    /// `writes`: then false, and nothing is recorded.
    pub(super) fn record(&self, place: &Place, key: &Arc<Key>, writes: u64) -> bool {
        let mut index = self.lock();
        let collection = index.entry(place.collection()).or_default();
        if collection.writes != writes {
            return false;
        }
        match &place.id {
            None => collection.listings.insert(key.clone()),
            Some(id) => collection
                .entities
                .entry(id.clone())
                .or_default()
                .insert(key.clone()),
        };
        true
    }

    /// Counts a write on `place` and takes what it touched out of the index: the entity and
    /// everything below it, and the collection's listings.
    pub(super) fn written(&self, place: &Place) -> Vec<Arc<Key>> {
        let mut index = self.lock();
        let collection = index.entry(place.collection()).or_default();
        collection.writes += 1;
        let mut keys: Vec<Arc<Key>> = collection.listings.drain().collect();
        if let Some(id) = &place.id {
            keys.extend(collection.entities.remove(id).into_iter().flatten());
        }
        keys
    }

    /// Forgets an evicted key.
    pub(super) fn forget(&self, key: &Arc<Key>, place: &Place) {
        let mut index = self.lock();
        let Some(collection) = index.get_mut(&place.collection()) else {
            return;
        };
        match &place.id {
            None => {
                collection.listings.remove(key);
            }
            Some(id) => {
                if let Some(keys) = collection.entities.get_mut(id) {
                    keys.remove(key);
                    if keys.is_empty() {
                        collection.entities.remove(id);
                    }
                }
            }
        }
    }
}
