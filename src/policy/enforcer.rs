//! The policies in force: loaded at start, swapped whole when the directory changes (an invalid
//! set is reported and the current one stays), and every decision counted and logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use super::attributes::Lookups;
use super::entities::ENTITIES_FILES;
use super::{Asker, Decision, Facts, Found, Mapped, Outcome, Policies, Problem};
use crate::config::{PolicyConfig, PolicyMode};
use crate::metrics::Metrics;

/// The policies in force, swapped whole when the directory changes, and the mode.
pub(crate) struct Enforcer {
    config: PolicyConfig,
    current: RwLock<Arc<Policies>>,
    /// The directory's files, their modification times and sizes when last loaded or tried.
    seen: RwLock<Vec<Stamp>>,
    lookups: Lookups,
    metrics: Arc<Metrics>,
}

impl Enforcer {
    pub(crate) fn load(config: &PolicyConfig, metrics: Arc<Metrics>) -> Result<Enforcer, Vec<Problem>> {
        let seen = snapshot(&config.dir);
        let policies = Policies::load(&config.dir)?;
        for warning in &policies.warnings {
            tracing::warn!(%warning, "policy warning");
        }
        Ok(Enforcer {
            config: config.clone(),
            current: RwLock::new(Arc::new(policies)),
            seen: RwLock::new(seen),
            lookups: Lookups::new(config.attribute_ttl),
            metrics,
        })
    }

    pub(crate) fn mode(&self) -> PolicyMode {
        self.config.mode
    }

    pub(crate) fn current(&self) -> Arc<Policies> {
        self.current.read().expect("not poisoned").clone()
    }

    /// Loads the directory again: a valid set replaces the current one at once, an invalid one
    /// is reported and the current one stays. Returns the number of policies now in force.
    pub(crate) fn reload(&self) -> Result<usize, Vec<Problem>> {
        *self.seen.write().expect("not poisoned") = snapshot(&self.config.dir);
        match Policies::load(&self.config.dir) {
            Ok(policies) => {
                let count = policies.len();
                for warning in &policies.warnings {
                    tracing::warn!(%warning, "policy warning");
                }
                *self.current.write().expect("not poisoned") = Arc::new(policies);
                self.metrics.policy_reloads_total.with_label_values(&["ok"]).inc();
                tracing::info!(policies = count, dir = %self.config.dir.display(), "policies reloaded");
                Ok(count)
            }
            Err(problems) => {
                self.metrics
                    .policy_reloads_total
                    .with_label_values(&["error"])
                    .inc();
                for problem in &problems {
                    tracing::error!(%problem, "policy reload refused; the previous policies stay in force");
                }
                Err(problems)
            }
        }
    }

    /// Reloads when a policy file or entities.json was added, removed or modified since the last
    /// load; returns whether it tried.
    pub(crate) fn reload_if_changed(&self) -> bool {
        if snapshot(&self.config.dir) == *self.seen.read().expect("not poisoned") {
            return false;
        }
        // Errors are logged and counted by reload.
        let _ = self.reload();
        true
    }

    /// Polls the directory every `policy.watch_interval` and reloads on a change.
    pub(crate) async fn watch(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.config.watch_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            // Validating a large set takes a while (a thousand policies: seconds); off the
            // runtime's workers.
            let this = self.clone();
            if tokio::task::spawn_blocking(move || this.reload_if_changed())
                .await
                .is_err()
            {
                tracing::error!("the policy reload task failed");
            }
        }
    }

    /// Decides a request with the policies in force (looking up the resource's attributes they
    /// read, when `asker` can), logs the decision at debug level with the policies that
    /// determined it, and counts it.
    pub(crate) async fn decide(
        &self,
        mapped: &Mapped,
        facts: &Facts<'_>,
        asker: Option<Asker<'_>>,
    ) -> Decision {
        let policies = self.current();
        let decision = match policies.decide_before_lookup(mapped, facts) {
            Outcome::Decided(decision) => decision,
            Outcome::NeedsAttributes(reads) => {
                let found = match asker {
                    // Boxed: the lookup's future is large and rarely needed; unboxed it would
                    // be moved with every request's future (docs/performance.md, "Against nginx").
                    Some(asker) => Box::pin(self.lookups.find(reads, mapped, &asker)).await,
                    None => Found::default(),
                };
                policies.decide(mapped, facts, found)
            }
        };
        let mode = self.config.mode.label();
        let label = if decision.allowed { "allow" } else { "deny" };
        self.metrics
            .policy_decisions_total
            .with_label_values(&[label, mode])
            .inc();
        tracing::debug!(
            user = facts.user,
            action = %mapped.action,
            resource = mapped.kind.as_str(),
            decision = label,
            mode,
            policies = ?decision.policies,
            errors = ?decision.errors,
            "policy decision"
        );
        if !decision.allowed && self.config.mode == PolicyMode::Shadow {
            tracing::info!(
                user = facts.user,
                action = %mapped.action,
                resource = mapped.kind.as_str(),
                policies = ?decision.policies,
                "shadow mode: the policies would deny this request"
            );
        }
        decision
    }
}

/// A policy file as the watcher compares it: path, modification time and size (the size catches
/// a rewrite within a coarse timestamp's resolution).
type Stamp = (PathBuf, Option<SystemTime>, u64);

/// The policy files of a directory, sorted.
fn snapshot(dir: &Path) -> Vec<Stamp> {
    let mut files: Vec<Stamp> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "cedar")
                || p.file_name()
                    .is_some_and(|n| ENTITIES_FILES.iter().any(|f| n == *f))
        })
        .map(|p| {
            let metadata = std::fs::metadata(&p).ok();
            let modified = metadata.as_ref().and_then(|m| m.modified().ok());
            let size = metadata.map_or(0, |m| m.len());
            (p, modified, size)
        })
        .collect();
    files.sort();
    files
}
