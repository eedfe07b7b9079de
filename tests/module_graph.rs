//! The crate's top-level modules depend on one another without cycles (docs/architecture.md,
//! "Module graph"): each file's `crate::` paths are read from its source, outside its unit tests,
//! and the graph they make between the modules directly under src/ is searched for a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every top-level module (a file directly under src/, or a directory's) with the top-level
/// modules its code names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap();
            let first = relative
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_str()
                .unwrap();
            let module = first.trim_end_matches(".rs").to_owned();
            // The crate roots name every module; they are not modules of the graph.
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let named = graph.entry(module.clone()).or_default();
            named.extend(named_modules(&text).into_iter().filter(|m| *m != module));
        }
    }
    graph
}

/// The top-level modules named by `crate::` paths in `text`, up to its unit tests.
fn named_modules(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
    let mut named = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::B, c, d::{E, F}}`: the first name of each item at the group's depth.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphabetic() || c == '_') => {
                        named.insert(identifier(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            named.insert(identifier(rest));
        }
    }
    named
}

fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(module) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|m| m == module).unwrap();
                let mut cycle = path[start..].to_vec();
                cycle.push(module.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(module.to_owned(), Mark::Open);
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(module.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|module| visit(module, graph, &mut marks, &mut Vec::new()))
}

#[test]
fn top_level_modules_have_no_cycle() {
    let graph = graph();
    assert!(
        graph.contains_key("pipeline") && graph.contains_key("fault"),
        "{graph:?}"
    );
    if let Some(cycle) = cycle(&graph) {
        panic!(
            "the modules depend on one another in a cycle: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn fault_is_a_leaf() {
    let graph = graph();
    assert_eq!(graph["fault"], BTreeSet::new(), "fault names other modules");
}

/// The reader and the search find what they should.
#[test]
fn the_reader_sees_grouped_paths_and_cycles() {
    let named = named_modules(
        "use crate::{a::B, c, d::{e::F, G}};\nfn f() { crate::h::i(); }\n#[cfg(test)]\nmod tests { use crate::z; }",
    );
    assert_eq!(
        named,
        ["a", "c", "d", "h"].map(String::from).into_iter().collect()
    );
    let graph: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(m, n)| (m.to_owned(), [n.to_owned()].into()))
        .collect();
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    let mut acyclic = graph;
    acyclic.insert("c".into(), BTreeSet::new());
    assert_eq!(cycle(&acyclic), None);
}

/// The simulator shares only generic pieces with the gateway (docs/architecture.md, "Modules"),
/// none of its stages or state: a simulator that answered through gateway code could hide the
/// gateway's mistakes from the tests.
#[test]
fn the_simulator_uses_only_shared_pieces() {
    let graph = graph();
    let shared: BTreeSet<String> = ["api", "body", "compression", "connection", "time", "wire"]
        .map(String::from)
        .into();
    assert!(
        graph["sim"].is_subset(&shared),
        "the simulator names {:?}",
        graph["sim"].difference(&shared).collect::<Vec<_>>()
    );
}
