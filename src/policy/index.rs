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

use std::collections::HashMap;

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
}

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
        Index { policies, by_action }
    }

    /// The policies whose scope matches the request.
    pub(super) fn candidates(
        &self,
        action: &str,
        principal: &Placed<'_>,
        resource: &Placed<'_>,
    ) -> Candidates {
        let mut uses = Uses::default();
        let Some(by_principal) = self.by_action.get(action) else {
            return Candidates {
                set: PolicySet::new(),
                uses,
                without_attributes: None,
                forbid_reads_attributes: false,
            };
        };
        // Each policy is in one list, and the user and its groups are distinct: no repeats.
        let named = std::iter::once(principal.uid)
            .chain(principal.ancestors)
            .filter_map(|uid| by_principal.named.get(uid))
            .flatten();
        let matching: Vec<&Scoped> = by_principal
            .any
            .iter()
            .chain(named)
            .map(|&i| &self.policies[i])
            .filter(|scoped| principal_matches(&scoped.principal, principal))
            .filter(|scoped| resource_matches(&scoped.resource, resource))
            .collect();
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
