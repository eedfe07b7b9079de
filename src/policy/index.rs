//! Only the policies whose scope can match a request are evaluated. Cedar evaluates every policy
//! of the set it is given, so with a thousand policies a decision would cost a millisecond;
//! scopes (`principal in Gateway::Group::"ops", action in Action::"operate", resource is Api::Vm`)
//! are decided here from the request's entities, which are known in full: the user and its
//! groups, the action and its group, the resource, its collection and its Manager. A policy whose
//! scope does not match cannot apply and cannot err, so the decision and the policies it names
//! are the same as with the whole set.

use std::collections::HashMap;

use cedar_policy::{ActionConstraint, EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint};

use super::model;

struct Scoped {
    policy: Policy,
    principal: PrincipalConstraint,
    resource: ResourceConstraint,
}

/// The policies, by the actions their scope admits.
pub struct Index {
    policies: Vec<Scoped>,
    by_action: HashMap<String, Vec<usize>>,
}

/// An entity of a request and everything it is in.
pub struct Placed<'a> {
    pub uid: &'a EntityUid,
    pub ancestors: &'a [EntityUid],
}

impl Placed<'_> {
    fn is_in(&self, uid: &EntityUid) -> bool {
        self.uid == uid || self.ancestors.contains(uid)
    }
}

impl Index {
    pub fn new(set: &PolicySet) -> Index {
        let mut policies = Vec::new();
        let mut by_action: HashMap<String, Vec<usize>> = HashMap::new();
        for policy in set.policies() {
            let index = policies.len();
            let actions = policy.action_constraint();
            for action in model::actions() {
                let chain = model::action_entities(action);
                let admits = match &actions {
                    ActionConstraint::Any => true,
                    ActionConstraint::Eq(uid) => chain.first().is_some_and(|a| a.uid() == *uid),
                    ActionConstraint::In(uids) => chain.iter().any(|a| uids.contains(&a.uid())),
                };
                if admits {
                    by_action.entry(action.to_owned()).or_default().push(index);
                }
            }
            policies.push(Scoped {
                principal: policy.principal_constraint(),
                resource: policy.resource_constraint(),
                policy: policy.clone(),
            });
        }
        Index { policies, by_action }
    }

    /// The policies whose scope matches the request.
    pub fn candidates(&self, action: &str, principal: &Placed<'_>, resource: &Placed<'_>) -> PolicySet {
        let matching = self
            .by_action
            .get(action)
            .into_iter()
            .flatten()
            .map(|&i| &self.policies[i])
            .filter(|scoped| principal_matches(&scoped.principal, principal))
            .filter(|scoped| resource_matches(&scoped.resource, resource))
            .map(|scoped| scoped.policy.clone());
        PolicySet::from_policies(matching).expect("ids are unique in the loaded set")
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
