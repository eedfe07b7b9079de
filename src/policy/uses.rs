//! What a policy's conditions use, found once at load in its JSON form, so that a request pays
//! only for what the policies that can apply to it read (their scopes are decided by the index,
//! so Cedar evaluates conditions only): resource attributes are looked up at the Manager only
//! when read; context attributes are built only when read (an address or a time costs Cedar
//! several microseconds to parse); the request's user, action and resource entities only when a
//! condition reads their data, their attributes, tags or ancestors (Cedar computes the ancestors
//! of every entity it is given, which is most of a decision's cost; `resource is Api::Vm` and
//! `principal == Gateway::User::"u"` read the entity's name only, which the request carries);
//! and the entities above them (groups, collection, Manager) only when a condition tests
//! membership of anything but `principal`, `action` or `resource`, whose ancestors the request's
//! entities carry.

use serde_json::{Value, json};

use super::attributes::Reads;

/// The context's attributes, in the schema's order (RequestContext).
pub(super) const CONTEXT: [&str; 10] = [
    "method",
    "manager",
    "subcollections",
    "verb",
    "search",
    "follow",
    "filter",
    "all_content",
    "client_ip",
    "time",
];

/// A set of context attributes, by their index in [`CONTEXT`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ContextKeys(u16);

impl ContextKeys {
    pub(super) const ALL: ContextKeys = ContextKeys((1 << CONTEXT.len()) - 1);

    pub(super) fn contains(self, key: &str) -> bool {
        CONTEXT
            .iter()
            .position(|k| *k == key)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    fn insert(&mut self, key: &str) {
        if let Some(i) = CONTEXT.iter().position(|k| *k == key) {
            self.0 |= 1 << i;
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Uses {
    pub attributes: Reads,
    pub context: ContextKeys,
    /// A condition tests `in` on something other than the request's principal, action or
    /// resource (`Gateway::Group::"a" in Gateway::Group::"b"`).
    pub hierarchy: bool,
    /// Conditions read the data (attributes, tags, ancestors) of `principal`, `action`,
    /// `resource`: they are the left side of `.`, `has`, `in`, `is ... in`, `getTag` or
    /// `hasTag`. Data read of anything else (`(if c then resource else resource).name`) counts
    /// as reading all three, so that no condition meets an entity it needs missing.
    pub principal: bool,
    pub action: bool,
    pub resource: bool,
}

impl Uses {
    /// What the conditions of a policy (its JSON form) use.
    pub(super) fn of(policy: &Value) -> Uses {
        let mut uses = Uses::default();
        let mut context_vars = 0;
        let mut context_reads = 0;
        visit(&policy["conditions"], &mut |key, value| {
            let left = &value["left"];
            match key {
                "." | "has" if *left == json!({ "Var": "resource" }) => {
                    if let Some(attr) = value["attr"].as_str() {
                        uses.attributes.insert(attr);
                    }
                }
                "." | "has" if *left == json!({ "Var": "context" }) => {
                    context_reads += 1;
                    if let Some(attr) = value["attr"].as_str() {
                        uses.context.insert(attr);
                    }
                }
                "Var" if *value == "context" => context_vars += 1,
                _ => {}
            }
            // `is` takes an entity type and, optionally, `in`.
            let membership = key == "in" || (key == "is" && value.get("in").is_some());
            if !(membership || matches!(key, "." | "has" | "getTag" | "hasTag")) {
                return;
            }
            let Some(left) = value.get("left") else { return };
            match left.get("Var").and_then(Value::as_str) {
                Some("principal") => uses.principal = true,
                Some("action") => uses.action = true,
                Some("resource") => uses.resource = true,
                Some("context") => {}
                _ => {
                    uses.principal = true;
                    uses.action = true;
                    uses.resource = true;
                    uses.hierarchy |= membership;
                }
            }
        });
        // `context` used whole (`context == {...}`): every attribute.
        if context_vars > context_reads {
            uses.context = ContextKeys::ALL;
        }
        uses
    }

    pub(super) fn union(self, other: Uses) -> Uses {
        Uses {
            attributes: self.attributes.union(other.attributes),
            context: ContextKeys(self.context.0 | other.context.0),
            hierarchy: self.hierarchy || other.hierarchy,
            principal: self.principal || other.principal,
            action: self.action || other.action,
            resource: self.resource || other.resource,
        }
    }
}

/// Calls `f` with every member of every object in `value`, outermost first.
fn visit(value: &Value, f: &mut impl FnMut(&str, &Value)) {
    match value {
        Value::Object(members) => {
            for (key, member) in members {
                f(key, member);
                visit(member, f);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| visit(item, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(text: &str) -> Uses {
        let policy: cedar_policy::Policy = text.parse().unwrap();
        Uses::of(&policy.to_json().unwrap())
    }

    fn keys(names: &[&str]) -> ContextKeys {
        let mut keys = ContextKeys::default();
        names.iter().for_each(|name| keys.insert(name));
        keys
    }

    /// Attributes of `resource` and `context` are found in conditions, `has` tests and nested
    /// expressions; attributes of other variables are not.
    #[test]
    fn attributes_read() {
        let found = uses(
            r#"permit(principal, action, resource)
            when { resource has cluster && (resource.cluster == "a" || principal.name == "x") }
            unless { context.verb == "start" || context has time && context.time > datetime("2026-01-01") };"#,
        );
        assert_eq!(
            found.attributes,
            Reads {
                cluster: true,
                ..Reads::default()
            }
        );
        assert_eq!(found.context, keys(&["verb", "time"]));
        assert!(found.principal && found.resource && !found.action);
        assert!(found.context.contains("time") && !found.context.contains("client_ip"));
        assert!(!found.hierarchy);
        // The scope is the index's: it uses nothing.
        assert_eq!(
            uses(
                r#"permit(principal in Gateway::Group::"g", action in Action::"read", resource is Api::Vm in Api::Manager::"m");"#
            ),
            Uses::default()
        );
    }

    #[test]
    fn context_used_whole_reads_everything() {
        let found =
            uses(r#"permit(principal, action, resource) when { context.verb == "" && context == context };"#);
        assert_eq!(found.context, ContextKeys::ALL);
        assert!(CONTEXT.iter().all(|key| found.context.contains(key)));
    }

    /// A request entity is given to Cedar only when a condition reads its data; a type test or a
    /// comparison reads its name, which the request carries. Data read through anything but
    /// the variable itself gives all three.
    #[test]
    fn entities_only_for_their_data() {
        let entities = |text: &str| {
            let found = uses(text);
            (found.principal, found.action, found.resource)
        };
        for text in [
            r#"permit(principal, action, resource) unless { resource is Api::Unknown };"#,
            r#"permit(principal, action, resource) when { principal == Gateway::User::"u" && action != Action::"get" && [resource].contains(Api::Vm::"x") };"#,
            r#"permit(principal, action, resource) when { context.verb == "start" };"#,
        ] {
            assert_eq!(entities(text), (false, false, false), "{text}");
        }
        assert_eq!(
            entities(r#"permit(principal, action, resource) when { resource has cluster };"#),
            (false, false, true)
        );
        assert_eq!(
            entities(r#"permit(principal, action, resource) when { principal in Gateway::Group::"g" };"#),
            (true, false, false)
        );
        assert_eq!(
            entities(r#"permit(principal, action, resource) when { action is Action in Action::"read" };"#),
            (false, true, false)
        );
        assert_eq!(
            entities(r#"permit(principal, action, resource) when { principal.hasTag("t") };"#),
            (true, false, false)
        );
        for text in [
            r#"permit(principal, action, resource) when { (if context.filter then resource else resource) has name };"#,
            r#"forbid(principal, action, resource) when { Api::Vm::"x".cluster == "c" };"#,
        ] {
            assert_eq!(entities(text), (true, true, true), "{text}");
        }
    }

    /// Membership tests of the request's own entities are answered by their ancestors; any
    /// other needs the whole hierarchy.
    #[test]
    fn hierarchy_beyond_the_request() {
        for text in [
            r#"permit(principal in Gateway::Group::"ops", action in Action::"read", resource in Api::Manager::"m");"#,
            r#"permit(principal, action, resource) when { principal in Gateway::Group::"ops" && resource is Api::Vm in Api::Collection::"vms" && action in [Action::"get"] };"#,
            r#"permit(principal, action, resource) when { Api::Vm::"x" is Api::Vm };"#,
        ] {
            assert!(!uses(text).hierarchy, "{text}");
        }
        for text in [
            r#"permit(principal, action, resource) when { Gateway::Group::"a" in Gateway::Group::"b" };"#,
            r#"permit(principal, action, resource) when { Api::Collection::"vms" is Api::Collection in Api::Manager::"m" };"#,
        ] {
            assert!(uses(text).hierarchy, "{text}");
        }
    }
}
