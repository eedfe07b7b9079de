//! A policy directory read and validated: every `*.cedar` file parsed, each policy given its id
//! and line, the set validated against the schema, and the groups read; every problem reported
//! with its file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{PolicyId, PolicySet, ValidationMode, Validator};

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
        let validation = Validator::new(model::schema().clone()).validate(&set, ValidationMode::Strict);
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
