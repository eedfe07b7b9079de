//! Identical misses wait for the first one's answer instead of asking the Manager again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::key::Key;

/// Misses on their way to the Manager; waiters watch until the leader's sender is dropped.
#[derive(Default)]
pub(super) struct Inflight(Mutex<HashMap<Arc<Key>, watch::Receiver<()>>>);

pub(super) enum Join {
    /// The first miss for its key: the others wait until this is dropped.
    Lead(Leading),
    /// Another miss for the same key is on its way; `changed()` errs once it is done.
    Wait(watch::Receiver<()>),
}

/// Held by the request that leads identical ones; dropping it releases them.
pub(super) struct Leading {
    inflight: Arc<Inflight>,
    key: Arc<Key>,
    _sender: watch::Sender<()>,
}

impl Inflight {
    pub(super) fn join(self: &Arc<Inflight>, key: &Arc<Key>) -> Join {
        let mut inflight = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(receiver) = inflight.get(key) {
            return Join::Wait(receiver.clone());
        }
        let (sender, receiver) = watch::channel(());
        inflight.insert(key.clone(), receiver);
        Join::Lead(Leading {
            inflight: self.clone(),
            key: key.clone(),
            _sender: sender,
        })
    }
}

impl Drop for Leading {
    fn drop(&mut self) {
        // Out of the map before the sender goes (fields drop after this), so a released waiter
        // never finds it again.
        let mut inflight = self.inflight.0.lock().unwrap_or_else(|p| p.into_inner());
        inflight.remove(&self.key);
    }
}
