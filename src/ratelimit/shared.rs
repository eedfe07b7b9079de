//! Rate-limit buckets shared by replicas (docs/replicas.md, "Rate limits"). Each replica takes
//! from its own local buckets, so that no request waits on the store; every
//! `shared.sync_interval` it adds the units it took to each bucket's arrival time in the store
//! (one script for the whole batch, on the store's clock) and moves its local bucket to the
//! store's, which holds every replica's units. A user's requests across N replicas thereby
//! exceed their quota by at most (N - 1) x (burst + rate x sync_interval) units, and only until
//! the next synchronisation, after which the excess is owed: over any longer time they are held
//! to the rate.
//!
//! While the store cannot be reached, each replica takes from its local buckets under the
//! quota divided by `shared.replicas`, so that together they stay within it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{Buckets, LocalBuckets, Taken};
use crate::config::RateQuota;
use crate::shared::Shared;

/// Buckets synchronised per call: one script call each.
const BATCH: usize = 256;

pub(crate) struct SharedBuckets {
    local: LocalBuckets,
    store: Arc<Shared>,
    /// Units taken here since the last synchronisation, by key, with their quota's interval.
    taken: Mutex<HashMap<String, (u64, Duration)>>,
}

impl SharedBuckets {
    pub(super) fn new(local: LocalBuckets, store: Arc<Shared>) -> SharedBuckets {
        SharedBuckets {
            local,
            store,
            taken: Mutex::default(),
        }
    }

    /// Synchronises every `shared.sync_interval`, for as long as the gateway runs.
    pub(crate) async fn sync(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.store.sync_interval());
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.sync_once().await;
        }
    }

    async fn sync_once(&self) {
        let taken: Vec<(String, (u64, Duration))> =
            std::mem::take(&mut *self.taken.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .collect();
        for batch in taken.chunks(BATCH) {
            let units: Vec<(String, u64, Duration)> = batch
                .iter()
                .map(|(key, (units, interval))| (self.store.bucket(key), *units, *interval))
                .collect();
            // Lost with the store: the units were taken under the local quota.
            let Ok(ahead) = self.store.advance(&units).await else {
                return;
            };
            let now = Instant::now();
            for ((key, _), ahead) in batch.iter().zip(ahead) {
                self.local.raise(key, now + ahead, now);
            }
        }
    }
}

impl Buckets for SharedBuckets {
    fn take(&self, key: &str, cost: u32, quota: RateQuota, max_delay: Duration, now: Instant) -> Taken {
        if !self.store.is_up() {
            let replicas = self.store.replicas();
            let share = RateQuota {
                rate: (quota.rate / replicas).max(1),
                burst: (quota.burst / replicas).max(1),
            };
            return self.local.take(key, cost, share, max_delay, now);
        }
        let taken = self.local.take(key, cost, quota, max_delay, now);
        if let Taken::Allowed { .. } = taken {
            let mut pending = self.taken.lock().unwrap_or_else(|p| p.into_inner());
            // The key is copied once per synchronisation, not once per request.
            match pending.get_mut(key) {
                Some(entry) => *entry = (entry.0 + u64::from(cost), quota.interval()),
                None => {
                    pending.insert(key.to_owned(), (u64::from(cost), quota.interval()));
                }
            }
        }
        taken
    }
}
