//! A decision: the request in Cedar's terms (the user with its groups, the resource in its
//! Manager, collection and the entities above it, the context the conditions read), evaluated on
//! the policies that can apply; default deny. The resource's attributes are looked up only when
//! they can change the outcome.

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityUid, PolicySet, Request,
    RestrictedExpression,
};

use super::attributes::Reads;
use super::entities::{uid, user_entity};
use super::extension_values::ExtensionValues;
use super::index::Placed;
use super::uses::{self, CONTEXT, ContextKeys};
use super::{Decision, Facts, Found, Mapped, Policies, model};

impl Policies {
    /// Decides a mapped request, with what is known of the resource's attributes; default deny.
    pub fn decide(&self, mapped: &Mapped, facts: &Facts<'_>, found: Found) -> Decision {
        match self.judge(mapped, facts, Some(found)) {
            Outcome::Decided(decision) => decision,
            Outcome::NeedsAttributes(_) => unreachable!("the attributes were given"),
        }
    }

    /// Decides a mapped request without asking the Manager anything when the resource's
    /// attributes cannot change the outcome: when no policy that can apply reads one, when a
    /// forbid that reads none applies (a forbid wins), or when a permit that reads none applies
    /// and no forbid reads one. Otherwise says which attributes to look up.
    pub fn decide_before_lookup(&self, mapped: &Mapped, facts: &Facts<'_>) -> Outcome {
        self.judge(mapped, facts, None)
    }

    fn judge(&self, mapped: &Mapped, facts: &Facts<'_>, found: Option<Found>) -> Outcome {
        let manager = uid("Api::Manager", facts.manager);
        let resource = uid(&format!("Api::{}", mapped.kind), &mapped.id);
        let unknown;
        let chain = match self.users.get(facts.user) {
            Some(known) => known.as_slice(),
            None => {
                unknown = [user_entity(facts.user, Vec::new())];
                &unknown[..]
            }
        };
        let principal = chain[0].uid();
        let groups: Vec<EntityUid> = chain[1..].iter().map(Entity::uid).collect();
        let collection = mapped.collection.as_ref().map(|c| uid("Api::Collection", c));
        // The resource is in its Manager, its type's collection and every entity it was reached
        // below (`Api::DataCenter::"DC"` for `/datacenters/DC/storagedomains/SD`).
        let enclosing: Vec<EntityUid> = mapped
            .parents
            .iter()
            .map(|(kind, id)| uid(&format!("Api::{kind}"), id))
            .collect();
        let parents: Vec<EntityUid> = [Some(manager.clone()), collection.clone()]
            .into_iter()
            .flatten()
            .chain(enclosing.iter().cloned())
            .collect();
        let candidates = self.index.candidates(
            &mapped.action,
            &Placed {
                uid: &principal,
                ancestors: &groups,
            },
            &Placed {
                uid: &resource,
                ancestors: &parents,
            },
        );
        let actions = model::action_entities(&mapped.action);
        if candidates.set.is_empty() || actions.is_empty() {
            // Nothing can apply: default deny, without building the request.
            return Outcome::Decided(Decision {
                allowed: false,
                policies: Vec::new(),
                errors: Vec::new(),
            });
        }
        let request = Asked {
            mapped,
            facts,
            principal: &principal,
            chain,
            resource: &resource,
            parents: &parents,
            actions,
            manager: &manager,
            collection: collection.as_ref(),
        };
        let reads = candidates.uses.attributes.for_kind(mapped.kind.as_str());
        match (found, &candidates.without_attributes) {
            (Some(found), _) => {
                Outcome::Decided(self.evaluate(&request, &candidates.set, candidates.uses, found))
            }
            (None, Some((plain, plain_uses))) if reads.any() => {
                let decision = self.evaluate(&request, plain, *plain_uses, Found::default());
                let forbidden = !decision.allowed && !decision.policies.is_empty();
                let permitted = decision.allowed && !candidates.forbid_reads_attributes;
                if forbidden || permitted {
                    Outcome::Decided(decision)
                } else {
                    Outcome::NeedsAttributes(reads)
                }
            }
            (None, _) => {
                Outcome::Decided(self.evaluate(&request, &candidates.set, candidates.uses, Found::default()))
            }
        }
    }

    /// Cedar's decision on `set` (policies without their scopes) for a request.
    fn evaluate(&self, asked: &Asked<'_>, set: &PolicySet, uses: uses::Uses, found: Found) -> Decision {
        let deny = |error: String| Decision {
            allowed: false,
            policies: Vec::new(),
            errors: vec![error],
        };
        let Asked {
            mapped,
            facts,
            principal,
            chain,
            resource,
            parents,
            actions,
            manager,
            collection,
        } = *asked;
        // Cedar evaluates the candidates' conditions only (their scopes matched), with the
        // entities whose data those conditions read (uses.rs); often none. The user, the action and the resource carry
        // all their ancestors, which answers every `principal in`, `action in` and
        // `resource in`; the ancestors themselves are built only for a condition that tests
        // another membership.
        let mut entities = Vec::new();
        if uses.principal || uses.hierarchy {
            entities.push(chain[0].clone());
        }
        if uses.action || uses.hierarchy {
            entities.push(actions[0].clone());
        }
        if uses.resource || uses.hierarchy {
            let attrs = found.into_attrs().into_iter().collect();
            match Entity::new(resource.clone(), attrs, parents.iter().cloned().collect()) {
                Ok(entity) => entities.push(entity),
                Err(e) => return deny(e.to_string()),
            }
        }
        if uses.hierarchy {
            entities.extend(chain[1..].iter().cloned());
            entities.extend(actions[1..].iter().cloned());
            entities.push(Entity::new_no_attrs(manager.clone(), Default::default()));
            if let Some(collection) = collection {
                entities.push(Entity::new_no_attrs(collection.clone(), [manager.clone()].into()));
            }
            // Each enclosing entity is in its Manager, its collection and those above it.
            for (i, (kind, _)) in mapped.parents.iter().enumerate() {
                let mut above: std::collections::HashSet<EntityUid> = [manager.clone()].into();
                if let Some(name) = crate::api::collection_of(kind) {
                    let collection = uid("Api::Collection", name);
                    entities.push(Entity::new_no_attrs(collection.clone(), [manager.clone()].into()));
                    above.insert(collection);
                }
                above.extend(
                    parents[parents.len() - mapped.parents.len()..][..i]
                        .iter()
                        .cloned(),
                );
                entities.push(Entity::new_no_attrs(
                    parents[parents.len() - mapped.parents.len() + i].clone(),
                    above,
                ));
            }
        }
        // An entity named twice (a collection above two levels) is given once.
        let mut seen = std::collections::HashSet::new();
        entities.retain(|entity| seen.insert(entity.uid()));
        let entities = if entities.is_empty() {
            Entities::empty()
        } else {
            match Entities::from_entities(entities, None) {
                Ok(entities) => entities,
                Err(e) => return deny(e.to_string()),
            }
        };
        let context = match context(mapped, facts, uses.context, &self.extension_values) {
            Ok(context) => context,
            Err(e) => return deny(e),
        };
        let action = actions[0].uid();
        // Built as the schema says (`context` and the tests check it), so not validated again
        // per request.
        let request = match Request::new(principal.clone(), action, resource.clone(), context, None) {
            Ok(request) => request,
            Err(e) => return deny(e.to_string()),
        };
        let response = authorizer().is_authorized(&request, set, &entities);
        Decision {
            allowed: response.decision() == CedarDecision::Allow,
            policies: response.diagnostics().reason().map(ToString::to_string).collect(),
            errors: response.diagnostics().errors().map(ToString::to_string).collect(),
        }
    }
}

/// A decision that could be made, or the attributes it needs looked up first.
pub enum Outcome {
    Decided(Decision),
    NeedsAttributes(Reads),
}

/// A request in Cedar's terms, built once for one or two evaluations.
#[derive(Clone, Copy)]
struct Asked<'a> {
    mapped: &'a Mapped,
    facts: &'a Facts<'a>,
    principal: &'a EntityUid,
    chain: &'a [Entity],
    resource: &'a EntityUid,
    parents: &'a [EntityUid],
    actions: &'a [Entity],
    manager: &'a EntityUid,
    collection: Option<&'a EntityUid>,
}

fn authorizer() -> &'static Authorizer {
    static AUTHORIZER: std::sync::OnceLock<Authorizer> = std::sync::OnceLock::new();
    AUTHORIZER.get_or_init(Authorizer::new)
}

/// The request's context record (RequestContext in the schema), with the attributes `keys`
/// names: those the policies that can apply read.
pub(super) fn context(
    mapped: &Mapped,
    facts: &Facts<'_>,
    keys: ContextKeys,
    extension_values: &ExtensionValues,
) -> Result<Context, String> {
    let params = &facts.params;
    let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
    let value = |key: &str| match key {
        "method" => string(facts.method.as_str()),
        "manager" => string(facts.manager),
        "subcollections" => RestrictedExpression::new_set(mapped.subcollections.iter().map(|s| string(s))),
        "verb" => string(&mapped.verb),
        "search" => string(&params.search),
        "follow" => RestrictedExpression::new_set(params.follow.iter().map(|s| string(s))),
        "filter" => RestrictedExpression::new_bool(params.filter),
        "all_content" => RestrictedExpression::new_bool(params.all_content),
        "client_ip" => extension_values.ip(facts.client_ip),
        "time" => extension_values.time(facts.time),
        _ => unreachable!("CONTEXT names the schema's context attributes"),
    };
    Context::from_pairs(
        CONTEXT
            .iter()
            .filter(|key| keys.contains(key))
            .map(|key| ((*key).to_owned(), value(key))),
    )
    .map_err(|e| e.to_string())
}
