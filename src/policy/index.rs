//! Only the policies whose scope can match a request are evaluated. Cedar evaluates every policy
//! of the set it is given, so with a thousand policies a decision would cost a millisecond;
//! scopes (`principal in Gateway::Group::"ops", action in Action::"operate", resource is Api::Vm`)
//! are decided here from the request's entities, which are known in full: the user and its
//! groups, the action and its group, the resource, its collection and its Manager. A policy whose
//! scope does not match cannot apply and cannot err, so the decision and the policies it names
//! are the same as with the whole set.
//!
//! Policies are found by action, then by the entity their principal constraint names (a user or
//! a group: looked up for the user and each of its groups), so a request touches only the
//! policies for its action that name its user, its groups or no one in particular.
//!
//! Requests alike match the same policies, and building Cedar's policy set for them costs more
//! than evaluating it: the sets are kept by the policies they hold, up to [`MAX_BUILT`] of them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cedar_policy::{ActionConstraint, EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint};

use super::model;
use super::uses::Uses;

struct Scoped {
    /// The policy with its scope left out (`permit (principal, action, resource) when {...}`):
    /// the index decides scopes, Cedar evaluates conditions, with only the entities they use.
    conditions: Policy,
    principal: PrincipalConstraint,
    resource: ResourceConstraint,
    uses: Uses,
}

/// The policies that can apply to a request, and what their conditions use.
pub(super) struct Candidates {
    pub set: PolicySet,
    pub uses: Uses,
    /// The candidates that read no resource attribute, and what they use; `None` when none
    /// reads one (then they are `set`).
    pub without_attributes: Option<(PolicySet, Uses)>,
    /// Whether a candidate that reads a resource attribute is a forbid.
    pub forbid_reads_attributes: bool,
}

/// The policies, by the actions their scope admits.
pub(super) struct Index {
    policies: Vec<Scoped>,
    by_action: HashMap<String, ByPrincipal>,
    /// The candidates built so far, by their policies' places in `policies` (in the order they
    /// were found, which is the same for the same request alike).
    built: RwLock<HashMap<Vec<usize>, Arc<Candidates>>>,
}

/// The most candidate sets kept. Past it (id-specific policies over many entities, say), sets
/// are built for their request and dropped, as they all were before the first was kept.
const MAX_BUILT: usize = 4096;

/// The policies of one action: by the entity their principal constraint names, and the others
/// (`principal`, `principal is Gateway::User`).
#[derive(Default)]
struct ByPrincipal {
    named: HashMap<EntityUid, Vec<usize>>,
    any: Vec<usize>,
}

/// An entity of a request and everything it is in.
pub(super) struct Placed<'a> {
    pub uid: &'a EntityUid,
    pub ancestors: &'a [EntityUid],
}

impl Placed<'_> {
    fn is_in(&self, uid: &EntityUid) -> bool {
        self.uid == uid || self.ancestors.contains(uid)
    }
}

impl Index {
    pub(super) fn new(set: &PolicySet) -> Index {
        let mut policies = Vec::new();
        let mut by_action: HashMap<String, ByPrincipal> = HashMap::new();
        for policy in set.policies() {
            let index = policies.len();
            let named = match policy.principal_constraint() {
                PrincipalConstraint::Eq(uid)
                | PrincipalConstraint::In(uid)
                | PrincipalConstraint::IsIn(_, uid) => Some(uid),
                PrincipalConstraint::Any | PrincipalConstraint::Is(_) => None,
            };
            let json = policy.to_json().expect("static policies have a JSON form");
            let mut unscoped = json.clone();
            for part in ["principal", "action", "resource"] {
                unscoped[part] = serde_json::json!({ "op": "All" });
            }
            let actions = policy.action_constraint();
            for action in model::actions() {
                let chain = model::action_entities(action);
                let admits = match &actions {
                    ActionConstraint::Any => true,
                    ActionConstraint::Eq(uid) => chain.first().is_some_and(|a| a.uid() == *uid),
                    ActionConstraint::In(uids) => chain.iter().any(|a| uids.contains(&a.uid())),
                };
                if admits {
                    let entry = by_action.entry(action.to_owned()).or_default();
                    match &named {
                        Some(uid) => entry.named.entry(uid.clone()).or_default().push(index),
                        None => entry.any.push(index),
                    }
                }
            }
            policies.push(Scoped {
                principal: policy.principal_constraint(),
                resource: policy.resource_constraint(),
                uses: Uses::of(&json),
                conditions: Policy::from_json(Some(policy.id().clone()), unscoped)
                    .expect("a policy without its scope is a policy"),
            });
        }
        Index {
            policies,
            by_action,
            built: RwLock::default(),
        }
    }

    /// The policies whose scope matches the request.
    pub(super) fn candidates(
        &self,
        action: &str,
        principal: &Placed<'_>,
        resource: &Placed<'_>,
    ) -> Arc<Candidates> {
        let Some(by_principal) = self.by_action.get(action) else {
            return self.built(Vec::new());
        };
        // Each policy is in one list, and the user and its groups are distinct: no repeats.
        let named = std::iter::once(principal.uid)
            .chain(principal.ancestors)
            .filter_map(|uid| by_principal.named.get(uid))
            .flatten();
        let matching: Vec<usize> = by_principal
            .any
            .iter()
            .chain(named)
            .copied()
            .filter(|&i| principal_matches(&self.policies[i].principal, principal))
            .filter(|&i| resource_matches(&self.policies[i].resource, resource))
            .collect();
        self.built(matching)
    }

    /// The candidates made of `matching`, built once.
    fn built(&self, matching: Vec<usize>) -> Arc<Candidates> {
        let read = self.built.read().unwrap_or_else(|p| p.into_inner());
        if let Some(candidates) = read.get(&matching) {
            return candidates.clone();
        }
        drop(read);
        let candidates = Arc::new(self.build(&matching));
        let mut built = self.built.write().unwrap_or_else(|p| p.into_inner());
        if built.len() < MAX_BUILT {
            built.insert(matching, candidates.clone());
        }
        candidates
    }

    fn build(&self, matching: &[usize]) -> Candidates {
        let matching: Vec<&Scoped> = matching.iter().map(|&i| &self.policies[i]).collect();
        let mut uses = Uses::default();
        let reads = |scoped: &Scoped| scoped.uses.attributes.any();
        let mut without_attributes = None;
        let mut forbid_reads_attributes = false;
        if matching.iter().any(|s| reads(s)) {
            let mut plain_uses = Uses::default();
            let plain = matching.iter().filter(|s| !reads(s)).map(|scoped| {
                plain_uses = plain_uses.union(scoped.uses);
                scoped.conditions.clone()
            });
            let plain = PolicySet::from_policies(plain).expect("ids are unique in the loaded set");
            without_attributes = Some((plain, plain_uses));
            forbid_reads_attributes = matching
                .iter()
                .any(|scoped| reads(scoped) && scoped.conditions.effect() == cedar_policy::Effect::Forbid);
        }
        let set = PolicySet::from_policies(matching.iter().map(|scoped| {
            uses = uses.union(scoped.uses);
            scoped.conditions.clone()
        }))
        .expect("ids are unique in the loaded set");
        Candidates {
            set,
            uses,
            without_attributes,
            forbid_reads_attributes,
        }
    }
}

fn principal_matches(constraint: &PrincipalConstraint, entity: &Placed<'_>) -> bool {
    match constraint {
        PrincipalConstraint::Any => true,
        PrincipalConstraint::Eq(uid) => entity.uid == uid,
        PrincipalConstraint::In(uid) => entity.is_in(uid),
        PrincipalConstraint::Is(kind) => entity.uid.type_name() == kind,
        PrincipalConstraint::IsIn(kind, uid) => entity.uid.type_name() == kind && entity.is_in(uid),
    }
}

fn resource_matches(constraint: &ResourceConstraint, entity: &Placed<'_>) -> bool {
    match constraint {
        ResourceConstraint::Any => true,
        ResourceConstraint::Eq(uid) => entity.uid == uid,
        ResourceConstraint::In(uid) => entity.is_in(uid),
        ResourceConstraint::Is(kind) => entity.uid.type_name() == kind,
        ResourceConstraint::IsIn(kind, uid) => entity.uid.type_name() == kind && entity.is_in(uid),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cedar_policy::{EntityUid, PolicySet};

    use super::{Index, MAX_BUILT, Placed};

    fn uid(text: &str) -> EntityUid {
        text.parse().unwrap()
    }

    /// Requests alike get the one set built for the first; another user's differs; past
    /// `MAX_BUILT` sets are built for their request and not kept.
    #[test]
    fn candidate_sets_built_once_and_bounded() {
        let set: PolicySet = r#"
            permit (principal == Gateway::User::"alice@internal", action, resource is Api::Vm);
            permit (principal, action, resource is Api::Vm) when { context.method == "GET" };
        "#
        .parse()
        .unwrap();
        let index = Index::new(&set);
        let asked = |user: &str, vm: &str| {
            let (principal, resource) = (uid(user), uid(vm));
            let manager = uid(r#"Api::Manager::"m""#);
            index.candidates(
                "list",
                &Placed {
                    uid: &principal,
                    ancestors: &[],
                },
                &Placed {
                    uid: &resource,
                    ancestors: std::slice::from_ref(&manager),
                },
            )
        };
        let alice = asked(r#"Gateway::User::"alice@internal""#, r#"Api::Vm::"a""#);
        let again = asked(r#"Gateway::User::"alice@internal""#, r#"Api::Vm::"b""#);
        let bob = asked(r#"Gateway::User::"bob@internal""#, r#"Api::Vm::"a""#);
        assert!(Arc::ptr_eq(&alice, &again));
        assert_eq!((alice.set.policies().count(), bob.set.policies().count()), (2, 1));
        assert!(bob.uses.context.contains("method"));
        let kept = index.built.read().unwrap().len();
        assert_eq!(kept, 2);
        for filler in 0..MAX_BUILT {
            index
                .built
                .write()
                .unwrap()
                .entry(vec![usize::MAX, filler])
                .or_insert_with(|| alice.clone());
        }
        let built = index.built.read().unwrap().len();
        // No policy is about clusters: a set not built before.
        let cluster = asked(r#"Gateway::User::"alice@internal""#, r#"Api::Cluster::"c""#);
        let cluster_again = asked(r#"Gateway::User::"alice@internal""#, r#"Api::Cluster::"c""#);
        assert_eq!(
            index.built.read().unwrap().len(),
            built,
            "nothing kept past the bound"
        );
        assert!(!Arc::ptr_eq(&cluster, &cluster_again));
        assert_eq!(cluster.set.policies().count(), 0);
    }
}
