//! Groups and memberships: Cedar's entity format (entities.json) or a TOML table of groups and
//! users (entities.toml), and the user entities built from a user's name.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};

use super::load::{line_of, message};
use super::model;

/// The files groups and memberships may come from: Cedar's entity format, or a TOML table of
/// groups and users (one of them).
pub(super) const ENTITIES_FILES: [&str; 2] = ["entities.json", "entities.toml"];

/// An entity's uid; the schema's type names are parsed once.
pub(super) fn uid(kind: &str, id: &str) -> EntityUid {
    static TYPES: std::sync::OnceLock<HashMap<String, EntityTypeName>> = std::sync::OnceLock::new();
    let types = TYPES.get_or_init(|| {
        model::schema()
            .entity_types()
            .map(|name| (name.to_string(), name.clone()))
            .collect()
    });
    let kind = match types.get(kind) {
        Some(name) => name.clone(),
        None => EntityTypeName::from_str(kind).expect("type names are the schema's"),
    };
    EntityUid::from_type_name_and_id(kind, EntityId::new(id))
}

/// A user entity with the attributes derived from its name (`alice@internal`: name `alice`,
/// profile `internal`).
pub(super) fn user_entity(user: &str, parents: Vec<EntityUid>) -> Entity {
    let (name, profile) = user.rsplit_once('@').unwrap_or((user, ""));
    Entity::new(
        uid("Gateway::User", user),
        [
            (
                "name".to_owned(),
                RestrictedExpression::new_string(name.to_owned()),
            ),
            (
                "profile".to_owned(),
                RestrictedExpression::new_string(profile.to_owned()),
            ),
        ]
        .into(),
        parents.into_iter().collect(),
    )
    .expect("string attributes are valid")
}

/// Groups and memberships, from entities.json in Cedar's entity format or entities.toml; users'
/// `name` and `profile` attributes are derived from their id when left out. Returns each user
/// with every group above it, or the line (when known) and what is wrong.
pub(super) fn load_entities(file: &Path) -> Result<HashMap<String, Vec<Entity>>, (Option<usize>, String)> {
    let text = std::fs::read_to_string(file).map_err(|e| (None, format!("cannot read: {e}")))?;
    let mut value = if file.extension().is_some_and(|x| x == "toml") {
        entities_from_toml(&text)?
    } else {
        serde_json::from_str(&text).map_err(|e| (Some(e.line()), e.to_string()))?
    };
    let Some(list) = value.as_array_mut() else {
        return Err((
            None,
            "expected a JSON array of entities (Cedar's entity format)".into(),
        ));
    };
    for entity in list.iter_mut() {
        let is_user = entity.pointer("/uid/type").and_then(|t| t.as_str()) == Some("Gateway::User");
        let id = entity
            .pointer("/uid/id")
            .and_then(|t| t.as_str())
            .map(str::to_owned);
        if let (true, Some(id), Some(object)) = (is_user, id, entity.as_object_mut()) {
            let (name, profile) = id.rsplit_once('@').unwrap_or((&id, ""));
            object.insert(
                "attrs".into(),
                serde_json::json!({ "name": name, "profile": profile }),
            );
        }
        if let Some(object) = entity.as_object_mut() {
            object.entry("parents").or_insert_with(|| serde_json::json!([]));
            object.entry("attrs").or_insert_with(|| serde_json::json!({}));
        }
    }
    let entities =
        Entities::from_json_value(value, Some(model::schema())).map_err(|e| (None, message(&e)))?;
    let mut users = HashMap::new();
    for entity in entities.iter() {
        let uid = entity.uid();
        if uid.type_name().to_string() != "Gateway::User" {
            continue;
        }
        let mut chain = vec![entity.clone()];
        for group in entities.ancestors(&uid).into_iter().flatten() {
            if let Some(group) = entities.get(group) {
                chain.push(group.clone());
            }
        }
        users.insert(uid.id().unescaped().to_owned(), chain);
    }
    Ok(users)
}

/// entities.toml: each group with the groups it is in, each user with its groups.
///
/// ```toml
/// [groups]
/// staff = []
/// ops = ["staff"]
///
/// [users]
/// "carol@internal" = ["ops"]
/// ```
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EntitiesToml {
    #[serde(default)]
    groups: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    users: std::collections::BTreeMap<String, Vec<String>>,
}

/// entities.toml in Cedar's entity format; a group used but not declared under `[groups]` is an
/// error (it is most likely misspelt).
fn entities_from_toml(text: &str) -> Result<serde_json::Value, (Option<usize>, String)> {
    let parsed: EntitiesToml = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|span| line_of(text, span.start));
        (line, e.message().to_owned())
    })?;
    let group = |id: &str| serde_json::json!({ "type": "Gateway::Group", "id": id });
    let mut entities = Vec::new();
    for (table, kind, members) in [
        ("groups", "Gateway::Group", &parsed.groups),
        ("users", "Gateway::User", &parsed.users),
    ] {
        for (id, parents) in members {
            if let Some(unknown) = parents.iter().find(|g| !parsed.groups.contains_key(*g)) {
                return Err((
                    None,
                    format!("{table}.\"{id}\": group `{unknown}` is not declared under [groups]"),
                ));
            }
            entities.push(serde_json::json!({
                "uid": { "type": kind, "id": id },
                "parents": parents.iter().map(|g| group(g)).collect::<Vec<_>>(),
            }));
        }
    }
    Ok(serde_json::Value::Array(entities))
}
