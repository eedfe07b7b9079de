//! A policy directory read and validated: every `*.cedar` file parsed, each policy given its id
//! and line, the set validated against the schema, and the groups read; every problem reported
//! with its file and line.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{Policy, PolicyId, PolicySet, ValidationMode, ValidationResult, Validator};
use serde_json::{Value, json};

use super::entities::{ENTITIES_FILES, load_entities};
use super::extension_values::ExtensionValues;
use super::index::Index;
use super::{Policies, Problem, model};

impl Policies {
    /// Reads and validates every `*.cedar` file and `entities.json` in `dir`; every problem is
    /// reported, with its file and line.
    pub fn load(dir: &Path) -> Result<Policies, Vec<Problem>> {
        let problem = |file: &Path, line, message: String| Problem {
            file: file.to_owned(),
            line,
            message,
        };
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
                .collect(),
            Err(e) => {
                return Err(vec![problem(
                    dir,
                    None,
                    format!("cannot read the directory: {e}"),
                )]);
            }
        };
        files.sort();
        let mut problems = Vec::new();
        let mut set = PolicySet::new();
        // Each file's text, by the file's index (validation errors point into it), and policy
        // id → (file index, line).
        let mut texts: Vec<String> = Vec::new();
        let mut places: HashMap<String, (usize, usize)> = HashMap::new();
        for (index, file) in files.iter().enumerate() {
            match std::fs::read_to_string(file) {
                Ok(text) => texts.push(text),
                Err(e) => {
                    texts.push(String::new());
                    problems.push(problem(file, None, format!("cannot read: {e}")));
                    continue;
                }
            }
            let text = &texts[index];
            let parsed = match PolicySet::from_str(text) {
                Ok(parsed) => parsed,
                Err(errors) => {
                    for error in errors.iter() {
                        problems.push(problem(file, error_line(error, text), message(error)));
                    }
                    continue;
                }
            };
            if parsed.templates().next().is_some() {
                problems.push(problem(
                    file,
                    None,
                    "templates (?principal, ?resource) are not supported".into(),
                ));
            }
            // In file order (ids are policy0, policy1, ...), to find each one's line.
            let mut policies: Vec<_> = parsed.policies().collect();
            policies.sort_by_key(|p| {
                let id = p.id().to_string();
                id.strip_prefix("policy")
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0)
            });
            let mut from = 0;
            let name = file
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            for policy in policies {
                let source = policy.to_string();
                let offset = text[from..].find(&source).map(|i| from + i);
                if let Some(offset) = offset {
                    from = offset + source.len();
                }
                let line = offset.map_or(1, |o| line_of(text, o));
                let id = policy
                    .annotation("id")
                    .map_or_else(|| format!("{name}:{line}"), str::to_owned);
                if let Some(&(other, other_line)) = places.get(&id) {
                    problems.push(problem(
                        file,
                        Some(line),
                        format!(
                            "policy id `{id}` is already used at {}:{other_line}",
                            files[other].display()
                        ),
                    ));
                    continue;
                }
                places.insert(id.clone(), (index, line));
                if let Err(e) = set.add(policy.new_id(PolicyId::new(&id))) {
                    problems.push(problem(file, Some(line), e.to_string()));
                }
            }
        }
        let mut warnings = Vec::new();
        let validation = validate(&set);
        let place = |id: &PolicyId, labels: Option<usize>| match places.get(&id.to_string()) {
            Some(&(file, line)) => (
                files[file].clone(),
                Some(labels.map_or(line, |o| line_of(&texts[file], o))),
            ),
            None => (dir.to_owned(), None),
        };
        for error in validation.validation_errors() {
            let (file, line) = place(error.policy_id(), first_offset(error));
            problems.push(problem(&file, line, message(error)));
        }
        for warning in validation.validation_warnings() {
            let (file, line) = place(warning.policy_id(), first_offset(warning));
            warnings.push(problem(&file, line, message(warning)));
        }
        let entity_files: Vec<PathBuf> = ENTITIES_FILES
            .iter()
            .map(|name| dir.join(name))
            .filter(|path| path.exists())
            .collect();
        let users = match entity_files.as_slice() {
            [] => HashMap::new(),
            [file] => load_entities(file).unwrap_or_else(|(line, message)| {
                problems.push(problem(file, line, message));
                HashMap::new()
            }),
            [_, second, ..] => {
                problems.push(problem(
                    second,
                    None,
                    format!(
                        "groups come from one file: keep {} or this one",
                        ENTITIES_FILES[0]
                    ),
                ));
                HashMap::new()
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let index = Index::new(&set);
        let locations = places
            .iter()
            .map(|(id, &(file, line))| (id.clone(), format!("{}:{line}", files[file].display())))
            .collect();
        Ok(Policies {
            index,
            set,
            locations,
            users,
            warnings,
            extension_values: ExtensionValues::default(),
        })
    }
}

/// The set validated against the schema (strict), as if each policy were validated for every
/// action and resource type its scope admits, at the cost of one of them where that is the
/// same.
///
/// Every request action of the schema applies to the same principal and resource types with the
/// same context (model.rs tests it), so a policy whose conditions never read `action` types the
/// same for every action, and one that never reads `resource` the same for every resource type
/// its scope admits. Cedar's validator would typecheck each policy once per action and resource
/// type of the schema's (91 actions by 43 types). Such a policy is validated instead as a
/// request of one action (`list`, in a schema of that action alone: `model::one_action_schema`)
/// and, where it can be, of one resource type; the others against the whole schema. A policy
/// either reports on is validated again as written, so that every error and warning is the
/// validator's own.
fn validate(set: &PolicySet) -> ValidationResult {
    let validator = Validator::new(model::schema().clone());
    let (mut narrowed, mut rest) = (PolicySet::new(), PolicySet::new());
    for policy in set.policies() {
        let added = match narrow(policy) {
            Some(policy) => narrowed.add(policy),
            None => rest.add(policy.clone()),
        };
        if added.is_err() {
            return validator.validate(set, ValidationMode::Strict);
        }
    }
    let quick =
        Validator::new(model::one_action_schema().clone()).validate(&narrowed, ValidationMode::Strict);
    let rest = validator.validate(&rest, ValidationMode::Strict);
    // The policies either reported on, validated again as written.
    let reported: HashSet<&PolicyId> = [&quick, &rest]
        .into_iter()
        .flat_map(|result| {
            result
                .validation_errors()
                .map(|e| e.policy_id())
                .chain(result.validation_warnings().map(|w| w.policy_id()))
        })
        .collect();
    if reported.is_empty() {
        return rest;
    }
    let mut again = PolicySet::new();
    for id in reported {
        if let Some(policy) = set.policy(id)
            && again.add(policy.clone()).is_err()
        {
            return validator.validate(set, ValidationMode::Strict);
        }
    }
    validator.validate(&again, ValidationMode::Strict)
}

/// `policy` as a request of the action `list`, and of one resource type unless its conditions
/// read `resource`; `None` when its conditions read `action` or its action scope names what is
/// no action of the schema.
fn narrow(policy: &Policy) -> Option<Policy> {
    let mut est = policy.to_json().ok()?;
    if reads(&est["conditions"], "action") || !admits_known_actions(&est["action"]) {
        return None;
    }
    est["action"] = json!({"op": "==", "entity": {"type": "Action", "id": model::STAND_IN_ACTION}});
    if !reads(&est["conditions"], "resource")
        && let Some(resource) = narrow_resource(&est["resource"])
    {
        est["resource"] = resource;
    }
    Policy::from_json(Some(policy.id().clone()), est).ok()
}

/// An entity reference of a policy's JSON form, as (type, id).
fn entity_of(value: &Value) -> Option<(&str, &str)> {
    let entity = value.get("__entity").unwrap_or(value);
    Some((entity["type"].as_str()?, entity["id"].as_str()?))
}

/// Whether an action scope admits request actions only, each a request action of the schema or
/// a group holding one.
fn admits_known_actions(scope: &Value) -> bool {
    let known = |entity: &Value| match entity_of(entity) {
        Some(("Action", id)) => model::actions().any(|action| {
            model::action_entities(action)
                .iter()
                .any(|entity| entity.uid().id().unescaped() == id)
        }),
        _ => false,
    };
    match scope["op"].as_str() {
        Some("All") => true,
        Some("==") => scope.get("entity").is_some_and(known),
        Some("in") => match (scope.get("entity"), scope.get("entities")) {
            (Some(entity), None) => known(entity),
            (None, Some(Value::Array(entities))) => entities.iter().all(known),
            _ => false,
        },
        _ => false,
    }
}

/// The resource scope `resource is T` (or `resource is T in E`) for one resource type T that
/// `scope` admits: any for an unconstrained scope, E's own type (an entity is in itself), or
/// the root for E a Manager, which every resource type is in.
fn narrow_resource(scope: &Value) -> Option<Value> {
    let resource_types = model::resource_types();
    match scope["op"].as_str()? {
        "All" => Some(json!({"op": "is", "entity_type": resource_types.first()?})),
        "in" => {
            let entity = scope.get("entity")?;
            let (kind, _) = entity_of(entity)?;
            let stand_in = if resource_types.iter().any(|t| t == kind) {
                kind
            } else if kind == "Api::Manager" {
                "Api::Root"
            } else {
                return None;
            };
            Some(json!({"op": "is", "entity_type": stand_in, "in": {"entity": entity}}))
        }
        _ => None,
    }
}

/// Whether a policy's conditions (as JSON) mention the variable `name`.
fn reads(value: &Value, name: &str) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(key, v)| (key == "Var" && v == name) || reads(v, name)),
        Value::Array(items) => items.iter().any(|v| reads(v, name)),
        _ => false,
    }
}

/// The line (from 1) of a byte offset.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Where a diagnostic points, as a byte offset into its source.
fn first_offset(diagnostic: &dyn miette::Diagnostic) -> Option<usize> {
    diagnostic.labels()?.next().map(|label| label.offset())
}

fn error_line(error: &dyn miette::Diagnostic, text: &str) -> Option<usize> {
    first_offset(error).map(|offset| line_of(text, offset))
}

/// A diagnostic's message and, when it has one, its help.
pub(super) fn message(diagnostic: &dyn miette::Diagnostic) -> String {
    match diagnostic.help() {
        Some(help) => format!("{diagnostic}; {help}"),
        None => diagnostic.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use cedar_policy::{Policy, PolicySet, ValidationMode, Validator};

    use super::{model, narrow, validate};

    fn policy(text: &str) -> Policy {
        Policy::parse(None, text).unwrap()
    }

    /// A policy is validated as a request of `list` unless its conditions read `action` or its
    /// scope names what is no action; of one resource type unless they read `resource`.
    #[test]
    fn scopes_narrow_to_one_request() {
        let narrowed = |text: &str| {
            narrow(&policy(text)).map(|p| {
                let json = p.to_json().unwrap();
                (json["action"].clone(), json["resource"].clone())
            })
        };
        let list = serde_json::json!({"op": "==", "entity": {"type": "Action", "id": "list"}});
        let any = serde_json::json!({"op": "is", "entity_type": model::resource_types()[0]});
        for text in [
            "permit (principal, action in Action::\"write\", resource);",
            "permit (principal, action, resource);",
            "permit (principal, action in [Action::\"start\", Action::\"add\"], resource);",
            "permit (principal, action == Action::\"start\", resource);",
        ] {
            assert_eq!(narrowed(text), Some((list.clone(), any.clone())), "{text}");
        }
        let (_, resource) = narrowed("permit (principal, action, resource is Api::Vm);").unwrap();
        assert_eq!(
            resource,
            serde_json::json!({"op": "is", "entity_type": "Api::Vm"})
        );
        // Under a Manager, the root stands for every type; under an entity, its own type.
        let (_, resource) = narrowed("permit (principal, action, resource in Api::Manager::\"m\");").unwrap();
        assert_eq!(resource["entity_type"], "Api::Root");
        let (_, resource) =
            narrowed("permit (principal, action, resource in Api::DataCenter::\"d\");").unwrap();
        assert_eq!(resource["entity_type"], "Api::DataCenter");
        // Reading `resource` keeps its scope as written.
        let (_, resource) =
            narrowed("permit (principal, action in Action::\"write\", resource) when { resource has name };")
                .unwrap();
        assert_eq!(resource["op"], "All");
        for kept in [
            "permit (principal, action in Action::\"write\", resource) when { action == Action::\"add\" };",
            "permit (principal, action in [Action::\"start\", Action::\"strat\"], resource);",
            "permit (principal, action in Action::\"writes\", resource);",
        ] {
            assert_eq!(narrowed(kept), None, "{kept}");
        }
    }

    /// Narrowed or not, validation comes to the validator's own verdict, with its own messages.
    #[test]
    fn validation_is_the_validators() {
        for (text, valid) in [
            (
                "permit (principal, action in Action::\"operate\", resource is Api::Vm) when { resource has cluster && resource.cluster == \"c\" };",
                true,
            ),
            (
                "permit (principal, action in Action::\"operate\", resource is Api::Vm) when { resource.cluster == \"c\" };",
                false,
            ),
            (
                "forbid (principal, action in Action::\"write\", resource) unless { context.client_ip.isInRange(ip(\"10.0.0.0/8\")) };",
                true,
            ),
            (
                "forbid (principal, action in Action::\"write\", resource) unless { context.clientip == 1 };",
                false,
            ),
            (
                "permit (principal, action in [Action::\"start\", Action::\"strat\"], resource);",
                false,
            ),
            (
                "permit (principal, action in Action::\"read\", resource) when { resource.nosuch };",
                false,
            ),
            (
                "permit (principal, action, resource) when { 1 + \"a\" == 2 };",
                false,
            ),
        ] {
            let mut set = PolicySet::new();
            set.add(policy(text)).unwrap();
            let ours = validate(&set);
            let theirs = Validator::new(model::schema().clone()).validate(&set, ValidationMode::Strict);
            let messages = |r: &cedar_policy::ValidationResult| {
                let mut all: Vec<String> = r.validation_errors().map(ToString::to_string).collect();
                all.sort();
                all
            };
            assert_eq!(theirs.validation_passed(), valid, "{text}");
            assert_eq!(ours.validation_passed(), valid, "{text}");
            assert_eq!(messages(&ours), messages(&theirs), "{text}");
        }
    }
}
