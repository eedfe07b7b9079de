//! Strict deserialization of the file as written: every unknown key reported with the nearest
//! valid one (and removed, so that one run reports them all), any other error with its key path.

use super::ConfigError;
use super::file::FileConfig;

/// Deserializes the file strictly. An unknown key is reported with the nearest valid key, removed,
/// and deserialization tried again, so that one run reports every unknown key (and the file,
/// without them, can still be validated for further problems). Any other error (a wrong type, a
/// missing key) is reported and ends the attempt.
pub(super) fn deserialize_strict(mut table: toml::Table) -> (Option<FileConfig>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    loop {
        let attempt = serde_path_to_error::deserialize::<_, FileConfig>(toml::Value::Table(table.clone()));
        let error = match attempt {
            Ok(file) => return (Some(file), errors),
            Err(error) => error,
        };
        let segments: Vec<String> = error.path().iter().map(ToString::to_string).collect();
        let message = error.into_inner().to_string();
        let Some((unknown, expected)) = parse_unknown_field(&message) else {
            let path = error_path(&segments);
            errors.push(ConfigError::new(path, message.trim_end()));
            return (None, errors);
        };
        // serde_path_to_error's path ends with the unknown key itself.
        let parent = segments.split_last().map_or(&segments[..], |(_, parent)| parent);
        let mut path = parent.to_vec();
        path.push(unknown.clone());
        let hint = nearest(&unknown, &expected).map_or(String::new(), |k| format!("; did you mean `{k}`?"));
        errors.push(ConfigError::new(error_path(&path), format!("unknown key{hint}")));
        if !remove_key(&mut table, parent, &unknown) {
            return (None, errors);
        }
    }
}

/// `manager[1].url` from `["manager", "[1]", "url"]`.
fn error_path(segments: &[String]) -> String {
    let mut out = String::new();
    for segment in segments {
        if !out.is_empty() && !segment.starts_with('[') {
            out.push('.');
        }
        out.push_str(segment);
    }
    if out.is_empty() {
        "(top level)".to_owned()
    } else {
        out
    }
}

/// The unknown key and the expected keys of serde's "unknown field `x`, expected one of `a`, `b`".
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    let expected = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((unknown.to_owned(), expected))
}

/// The valid key closest to `unknown`, if it is close enough to be a likely typo.
fn nearest<'a>(unknown: &str, expected: &'a [String]) -> Option<&'a str> {
    expected
        .iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), k.as_str()))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

fn remove_key(table: &mut toml::Table, parent: &[String], key: &str) -> bool {
    let mut root = toml::Value::Table(std::mem::take(table));
    let removed = descend(&mut root, parent)
        .and_then(toml::Value::as_table_mut)
        .is_some_and(|t| t.remove(key).is_some());
    if let toml::Value::Table(t) = root {
        *table = t;
    }
    removed
}

fn descend<'a>(mut current: &'a mut toml::Value, path: &[String]) -> Option<&'a mut toml::Value> {
    for segment in path {
        let index = segment.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
        current = match index {
            Some(index) => current.get_mut(index.parse::<usize>().ok()?)?,
            None => current.get_mut(segment.as_str())?,
        };
    }
    Some(current)
}
