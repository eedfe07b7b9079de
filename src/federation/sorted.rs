//! `sortby name` across members (docs/federation.md, "Listings"): each member answers its items
//! sorted, at most `max` of them; the merged answer takes the first `max` of their merge, one
//! item at a time from the member whose next item comes first, so that each member's own order
//! (its database's collation) is kept and ties go to the earlier member.

use std::cmp::Ordering;
use std::ops::Range;

use quick_xml::events::Event;
use serde_json::Value;

use super::merge::NotAListing;
use crate::wire::Representation;

/// One member's listing: its root element name (XML) or item key (JSON), and each item's bytes
/// and name.
struct Listing {
    name: Option<Vec<u8>>,
    items: Vec<(Vec<u8>, String)>,
}

/// The items of the members' sorted listings, merged, after the first `skip`, at most `max` of
/// them, in one listing.
pub(crate) fn merge(
    repr: Representation,
    bodies: &[&[u8]],
    descending: bool,
    (skip, max): (usize, usize),
) -> Result<Vec<u8>, NotAListing> {
    let listings = bodies
        .iter()
        .map(|body| match repr {
            Representation::Xml => xml_items(body),
            Representation::Json => json_items(body),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let name = listings.iter().find_map(|l| l.name.clone());
    let mut next = vec![0; listings.len()];
    let mut chosen: Vec<&[u8]> = Vec::new();
    while chosen.len() < skip.saturating_add(max) {
        let mut best: Option<usize> = None;
        for (member, listing) in listings.iter().enumerate() {
            let Some((_, key)) = listing.items.get(next[member]) else {
                continue;
            };
            let better = best.is_none_or(|b| {
                let (_, best_key) = &listings[b].items[next[b]];
                let order = compare(key, best_key);
                if descending {
                    order == Ordering::Greater
                } else {
                    order == Ordering::Less
                }
            });
            if better {
                best = Some(member);
            }
        }
        let Some(member) = best else { break };
        chosen.push(&listings[member].items[next[member]].0);
        next[member] += 1;
    }
    Ok(write(
        repr,
        name.as_deref(),
        chosen.get(skip..).unwrap_or_default(),
    ))
}

/// Names compared as the engine's `ORDER BY name` mostly does: without case first, then bytes.
fn compare(a: &str, b: &str) -> Ordering {
    a.to_lowercase().cmp(&b.to_lowercase()).then_with(|| a.cmp(b))
}

/// A listing of `items`, named `name` (the root element, or the item key), in the engine's framing.
pub(super) fn write(repr: Representation, name: Option<&[u8]>, items: &[&[u8]]) -> Vec<u8> {
    let name = name.unwrap_or(b"listing");
    let mut out = Vec::new();
    match repr {
        Representation::Xml => {
            out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<");
            out.extend_from_slice(name);
            out.push(b'>');
            for item in items {
                out.extend_from_slice(b"\n    ");
                out.extend_from_slice(item);
            }
            out.extend_from_slice(b"\n</");
            out.extend_from_slice(name);
            out.extend_from_slice(b">\n");
        }
        Representation::Json if items.is_empty() => out.extend_from_slice(b"{ }\n"),
        Representation::Json => {
            out.extend_from_slice(b"{\n\"");
            out.extend_from_slice(name);
            out.extend_from_slice(b"\" : [ ");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(item);
            }
            out.extend_from_slice(b" ]\n}\n");
        }
    }
    out
}

/// The items of an XML listing, as byte ranges of the body, with the text of their `name`.
fn xml_items(body: &[u8]) -> Result<Listing, NotAListing> {
    let unreadable = |_| NotAListing("an XML listing could not be read");
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut depth = 0usize;
    let (mut root, mut items) = (None, Vec::new());
    let mut item: Option<(usize, String)> = None;
    let mut in_name = false;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(unreadable)?;
        let after = reader.buffer_position() as usize;
        match event {
            Event::Start(start) => {
                match depth {
                    0 => root = Some(start.local_name().as_ref().to_vec()),
                    1 => item = Some((before, String::new())),
                    2 => in_name = start.local_name().as_ref() == b"name",
                    _ => {}
                }
                depth += 1;
            }
            Event::Empty(start) => match depth {
                0 => root = Some(start.local_name().as_ref().to_vec()),
                1 => items.push((range(body, before..after), String::new())),
                _ => {}
            },
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                match depth {
                    1 => {
                        if let Some((start, key)) = item.take() {
                            items.push((range(body, start..after), key));
                        }
                    }
                    2 => in_name = false,
                    _ => {}
                }
            }
            Event::Text(text) if in_name && depth == 3 => {
                if let Some((_, key)) = &mut item {
                    key.push_str(&String::from_utf8_lossy(text.as_ref()));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(Listing { name: root, items })
}

fn range(body: &[u8], range: Range<usize>) -> Vec<u8> {
    body[range].to_vec()
}

/// The items of a JSON listing (`{"vm": [...]}`, or `{}` when empty), written again, with
/// their `name`.
fn json_items(body: &[u8]) -> Result<Listing, NotAListing> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| NotAListing("a JSON listing could not be read"))?;
    let object = value.as_object().ok_or(NotAListing("not a JSON object"))?;
    let Some((key, items)) = object.iter().next() else {
        return Ok(Listing {
            name: None,
            items: Vec::new(),
        });
    };
    let items = items
        .as_array()
        .ok_or(NotAListing("the item key does not hold an array"))?
        .iter()
        .map(|item| {
            let name = item["name"].as_str().unwrap_or_default().to_owned();
            let bytes = serde_json::to_vec_pretty(item).expect("a value serializes");
            (bytes, name)
        })
        .collect();
    Ok(Listing {
        name: Some(key.as_bytes().to_vec()),
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml(names: &[&str]) -> String {
        let items: String = names
            .iter()
            .map(|n| format!("<vm id=\"{n}\"><name>{n}</name><cluster><name>zz</name></cluster></vm>"))
            .collect();
        format!("<?xml version=\"1.0\"?><vms>{items}</vms>")
    }

    fn names_of(text: &str) -> Vec<String> {
        let listing = xml_items(text.as_bytes()).unwrap();
        listing.items.into_iter().map(|(_, name)| name).collect()
    }

    proptest::proptest! {
        /// Whatever the members' sorted runs, `skip` and `max`: the merge is all their items
        /// ordered by name, ties to the earlier member, either way round, after the first
        /// `skip`, at most `max` of them.
        #[test]
        fn merge_is_the_sorted_union(
            runs in proptest::collection::vec(proptest::collection::vec("[a-e]{1,3}", 0..6), 1..4),
            max in 0usize..20,
            skip in 0usize..8,
            descending: bool,
        ) {
            let mut runs = runs;
            for run in &mut runs {
                run.sort();
                if descending {
                    run.reverse();
                }
            }
            let bodies: Vec<String> = runs.iter().map(|r| xml(&r.iter().map(String::as_str).collect::<Vec<_>>())).collect();
            let slices: Vec<&[u8]> = bodies.iter().map(|b| b.as_bytes()).collect();
            let merged = merge(Representation::Xml, &slices, descending, (skip, max)).unwrap();
            let mut want: Vec<(String, usize)> = runs
                .iter()
                .enumerate()
                .flat_map(|(m, r)| r.iter().map(move |n| (n.clone(), m)))
                .collect();
            want.sort_by(|a, b| {
                let by_name = if descending { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) };
                by_name.then(a.1.cmp(&b.1))
            });
            let want: Vec<String> = want.into_iter().skip(skip).take(max).map(|(n, _)| n).collect();
            proptest::prop_assert_eq!(names_of(&String::from_utf8(merged).unwrap()), want);
        }
    }

    /// The members' sorted runs merge into one sorted run cut at `max`; each member's own
    /// order stands, ties go to the earlier member, a cluster's name is not the item's.
    #[test]
    fn sorted_runs_merge() {
        let (a, b) = (xml(&["b", "d", "f"]), xml(&["a", "d", "e"]));
        let merged = merge(Representation::Xml, &[a.as_bytes(), b.as_bytes()], false, (0, 5)).unwrap();
        assert_eq!(
            names_of(&String::from_utf8(merged).unwrap()),
            ["a", "b", "d", "d", "e"]
        );
        let (a, b) = (xml(&["f", "d", "B"]), xml(&["e", "a"]));
        let merged = merge(Representation::Xml, &[a.as_bytes(), b.as_bytes()], true, (1, 10)).unwrap();
        assert_eq!(
            names_of(&String::from_utf8(merged).unwrap()),
            ["e", "d", "B", "a"]
        );
        let json = |names: &[&str]| {
            let items: Vec<String> = names.iter().map(|n| format!("{{\"name\":\"{n}\"}}")).collect();
            format!("{{\"vm\":[{}]}}", items.join(","))
        };
        let (a, b) = (json(&["x", "z"]), json(&["y"]));
        let merged = merge(
            Representation::Json,
            &[a.as_bytes(), b.as_bytes(), b"{}"],
            false,
            (0, 2),
        )
        .unwrap();
        let value: Value = serde_json::from_slice(&merged).unwrap();
        let names: Vec<&str> = value["vm"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["x", "y"]);
        assert!(merge(Representation::Json, &[b"[]".as_slice()], false, (0, 1)).is_err());
    }
}
