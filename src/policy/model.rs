//! The oVirt API in Cedar terms (policies/ovirt.cedarschema, built in): the schema, and the
//! action entities a request needs. What the schema declares is the API's vocabulary
//! (crate::api); the tests here check that the two agree.

use std::collections::HashMap;
use std::sync::OnceLock;

use cedar_policy::{Entity, Schema};

use crate::api::{METHOD_ACTIONS, VERBS};

/// The schema every policy is validated against; the copy in policies/ is the same file.
pub(crate) const SCHEMA_TEXT: &str = include_str!("../../policies/ovirt.cedarschema");

pub(crate) fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::from_cedarschema_str(SCHEMA_TEXT)
            .map(|(schema, _warnings)| schema)
            .unwrap_or_else(|e| panic!("the built-in schema does not parse: {}", super::load::message(&e)))
    })
}

/// Every action a request can map to (the groups are not requested).
pub(crate) fn actions() -> impl Iterator<Item = &'static str> {
    METHOD_ACTIONS.iter().chain(&VERBS).copied()
}

/// The resource types every request action applies to (the same for each: tested below).
pub(crate) fn resource_types() -> &'static [String] {
    static TYPES: OnceLock<Vec<String>> = OnceLock::new();
    TYPES.get_or_init(|| {
        let list: cedar_policy::EntityUid = r#"Action::"list""#.parse().expect("an action id");
        schema()
            .resources_for_action(&list)
            .map(|types| types.map(ToString::to_string).collect())
            .unwrap_or_default()
    })
}

/// The action policies are validated as when their conditions do not read `action` (load.rs).
pub(crate) const STAND_IN_ACTION: &str = "list";

/// The schema with one action, [`STAND_IN_ACTION`], applying to every resource type: what a
/// policy validated as a request of that action needs, without the others' request
/// environments, which Cedar's validator would go through for every policy.
pub(crate) fn one_action_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let entities = SCHEMA_TEXT
            .split_once(ACTIONS_START)
            .map_or(SCHEMA_TEXT, |(entities, _)| entities);
        let text = format!(
            "{entities}action \"{STAND_IN_ACTION}\" appliesTo {{\n  principal: [Gateway::User],\n  resource: [{}],\n  context: RequestContext,\n}};\n",
            resource_types().join(", ")
        );
        Schema::from_cedarschema_str(&text)
            .map(|(schema, _warnings)| schema)
            .unwrap_or_else(|e| panic!("the one-action schema does not parse: {}", super::load::message(&e)))
    })
}

/// Where the schema's actions start: everything before is entity and context types.
const ACTIONS_START: &str = "// Action groups:";

/// An action's entity and its group's, which a request needs for `action in Action::"read"`.
pub(crate) fn action_entities(action: &str) -> &'static [Entity] {
    static ACTIONS: OnceLock<HashMap<String, Vec<Entity>>> = OnceLock::new();
    let actions = ACTIONS.get_or_init(|| {
        let all = schema()
            .action_entities()
            .unwrap_or_else(|e| panic!("the built-in schema's actions: {e}"));
        all.iter()
            .map(|entity| {
                let uid = entity.uid();
                let mut chain = vec![entity.clone()];
                chain.extend(
                    all.ancestors(&uid)
                        .into_iter()
                        .flatten()
                        .filter_map(|group| all.get(group).cloned()),
                );
                (uid.id().unescaped().to_owned(), chain)
            })
            .collect()
    });
    actions.get(action).map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::api::{COLLECTIONS, GROUPS, SUB_ENTITIES, entity_type};

    /// The schema parses, declares a type per collection and the 85 verbs of the API model.
    #[test]
    fn schema_matches_the_model() {
        let types: HashSet<String> = schema().entity_types().map(|t| t.to_string()).collect();
        for (_, kind) in COLLECTIONS {
            assert!(types.contains(&format!("Api::{kind}")), "{kind}");
        }
        for kind in [
            "Gateway::User",
            "Gateway::Group",
            "Api::Manager",
            "Api::Collection",
            "Api::Root",
            "Api::Unknown",
        ] {
            assert!(types.contains(kind), "{kind}");
        }
        assert_eq!(types.len(), COLLECTIONS.len() + 6);
        // Every sub-entity's segment is its type's top-level collection, and the schema puts it
        // in the type above it (a policy's `resource in Api::DataCenter::"DC"` validates).
        for (parent, segment, kind) in SUB_ENTITIES {
            assert_eq!(entity_type(segment), Some(kind), "{parent}/{segment}");
            let api = &SCHEMA_TEXT[SCHEMA_TEXT.find("namespace Api").expect("the Api namespace")..];
            let line = api
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("entity {kind} in [")))
                .unwrap_or_else(|| panic!("no entity {kind}"));
            assert!(
                line.contains(&format!(", {parent}")),
                "{kind} is not in {parent}: {line}"
            );
        }
        // The schema's actions are the vocabulary's: the verbs, the methods' and the groups.
        let declared: HashSet<String> = schema()
            .actions()
            .map(|uid| uid.id().unescaped().to_owned())
            .collect();
        let known: HashSet<String> = VERBS
            .iter()
            .chain(&METHOD_ACTIONS)
            .chain(&GROUPS)
            .map(|name| (*name).to_owned())
            .collect();
        assert_eq!(declared, known);
    }

    /// Every request action applies to the same principal and resource types with the same
    /// context: what lets validation check a policy for one of its scope's actions (load.rs).
    #[test]
    fn every_action_applies_alike() {
        let schema = schema();
        let types = |action: &str| {
            let uid: cedar_policy::EntityUid = format!("Action::\"{action}\"").parse().unwrap();
            let mut principals: Vec<String> = schema
                .principals_for_action(&uid)
                .unwrap()
                .map(|t| t.to_string())
                .collect();
            let mut resources: Vec<String> = schema
                .resources_for_action(&uid)
                .unwrap()
                .map(|t| t.to_string())
                .collect();
            principals.sort();
            resources.sort();
            (principals, resources)
        };
        let first = types("list");
        assert!(first.1.len() > 40, "{first:?}");
        for action in actions() {
            assert_eq!(types(action), first, "{action}");
        }
        // The one-action schema's action applies alike.
        let list: cedar_policy::EntityUid = r#"Action::"list""#.parse().unwrap();
        let mut one: Vec<String> = one_action_schema()
            .resources_for_action(&list)
            .unwrap()
            .map(|t| t.to_string())
            .collect();
        one.sort();
        assert_eq!(one, first.1);
        assert_eq!(one_action_schema().actions().count(), 1);
        let applies = SCHEMA_TEXT.matches("appliesTo").count();
        assert_eq!(SCHEMA_TEXT.matches("context: RequestContext,").count(), applies);
    }
}
