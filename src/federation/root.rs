//! The merged view's API root (docs/federation.md, "The API root"): the home member's answer,
//! with the summary's counters summed over the members that answered and the product info of the
//! member with the lowest version (what a client may rely on is what every member has). The
//! links, special objects, time and authenticated user stay the home member's.
//!
//! XML is changed in place, byte ranges of the home document replaced, so that everything else
//! stays as the Manager wrote it; JSON is read and written again.

use std::collections::BTreeMap;

use quick_xml::events::Event;
use serde_json::Value;

use crate::wire::Representation;

/// A member's root could not be read as one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a member's API root could not be read: {0}")]
pub(crate) struct NotARoot(String);

/// `bodies[home]` with the others merged in; `bodies` are the members' answers, in any order.
pub(crate) fn merge(repr: Representation, bodies: &[&[u8]], home: usize) -> Result<Vec<u8>, NotARoot> {
    match repr {
        Representation::Xml => merge_xml(bodies, home),
        Representation::Json => merge_json(bodies, home),
    }
}

/// (major, minor, build, revision); missing parts count as 0.
type Version = [u64; 4];

const VERSION_PARTS: [&str; 4] = ["major", "minor", "build", "revision"];

/// What the merge reads of an XML root, with where it is.
#[derive(Default)]
struct XmlRoot {
    /// `hosts/active` → (value, byte range of its text).
    counters: BTreeMap<String, (u64, std::ops::Range<usize>)>,
    /// The `<product_info>` element's byte range, and its version.
    product_info: Option<(std::ops::Range<usize>, Version)>,
}

fn read_xml(body: &[u8]) -> Result<XmlRoot, NotARoot> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut path: Vec<String> = Vec::new();
    let mut root = XmlRoot::default();
    let mut version: Version = [0; 4];
    let mut product_start = None;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| NotARoot(e.to_string()))?;
        let after = reader.buffer_position() as usize;
        match event {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if path.len() == 1 && name == "product_info" {
                    product_start = Some(before);
                }
                path.push(name);
            }
            Event::End(_) => {
                if path.len() == 2 && path[1] == "product_info" {
                    root.product_info = product_start.map(|start| (start..after, version));
                }
                path.pop();
            }
            Event::Text(text) => {
                let value = || {
                    std::str::from_utf8(text.as_ref())
                        .ok()
                        .and_then(|t| t.trim().parse::<u64>().ok())
                };
                match path.as_slice() {
                    [_, summary, kind, counter] if summary == "summary" => {
                        if let Some(value) = value() {
                            root.counters
                                .insert(format!("{kind}/{counter}"), (value, before..after));
                        }
                    }
                    [_, product, v, part] if product == "product_info" && v == "version" => {
                        if let Some(i) = VERSION_PARTS.iter().position(|p| p == part) {
                            version[i] = value().unwrap_or(0);
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => return Ok(root),
            _ => {}
        }
    }
}

fn merge_xml(bodies: &[&[u8]], home: usize) -> Result<Vec<u8>, NotARoot> {
    let roots: Vec<XmlRoot> = bodies.iter().map(|b| read_xml(b)).collect::<Result<_, _>>()?;
    let mut replacements: Vec<(std::ops::Range<usize>, Vec<u8>)> = Vec::new();
    for (key, (_, range)) in &roots[home].counters {
        let sum: u64 = roots
            .iter()
            .filter_map(|r| r.counters.get(key).map(|(v, _)| *v))
            .sum();
        replacements.push((range.clone(), sum.to_string().into_bytes()));
    }
    let lowest = (0..roots.len())
        .filter(|&i| roots[i].product_info.is_some())
        .min_by_key(|&i| roots[i].product_info.as_ref().map(|(_, v)| *v));
    if let (Some((range, _)), Some(lowest)) = (&roots[home].product_info, lowest)
        && lowest != home
    {
        let (theirs, _) = roots[lowest].product_info.clone().expect("filtered");
        replacements.push((range.clone(), bodies[lowest][theirs].to_vec()));
    }
    replacements.sort_by_key(|(range, _)| range.start);
    let body = bodies[home];
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    for (range, with) in replacements {
        out.extend_from_slice(&body[at..range.start]);
        out.extend_from_slice(&with);
        at = range.end;
    }
    out.extend_from_slice(&body[at..]);
    Ok(out)
}

fn merge_json(bodies: &[&[u8]], home: usize) -> Result<Vec<u8>, NotARoot> {
    let roots: Vec<Value> = bodies
        .iter()
        .map(|b| serde_json::from_slice(b).map_err(|e| NotARoot(e.to_string())))
        .collect::<Result<_, _>>()?;
    let number = |v: &Value| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    };
    let version = |root: &Value| -> Version {
        let v = &root["product_info"]["version"];
        VERSION_PARTS.map(|part| number(&v[part]).unwrap_or(0))
    };
    let mut merged = roots[home].clone();
    if let Some(summary) = merged.get_mut("summary").and_then(Value::as_object_mut) {
        for (kind, counters) in summary.iter_mut() {
            let Some(counters) = counters.as_object_mut() else {
                continue;
            };
            for (counter, value) in counters.iter_mut() {
                let sum: u64 = roots
                    .iter()
                    .filter_map(|r| number(&r["summary"][kind][counter]))
                    .sum();
                // As the member wrote it: the engine writes numbers as strings.
                *value = if value.is_string() {
                    Value::String(sum.to_string())
                } else {
                    Value::from(sum)
                };
            }
        }
    }
    if let Some(lowest) = (0..roots.len())
        .filter(|&i| roots[i].get("product_info").is_some())
        .min_by_key(|&i| version(&roots[i]))
        && merged.get("product_info").is_some()
    {
        merged["product_info"] = roots[lowest]["product_info"].clone();
    }
    let mut out = serde_json::to_vec_pretty(&merged).map_err(|e| NotARoot(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml_root(version: (u64, u64), hosts: (u64, u64), user: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?>\n<api>\n    <link href=\"/all/ovirt-engine/api/vms\" rel=\"vms\"/>\n    \
             <product_info><name>oVirt Engine</name><version><build>1</build><full_version>{0}.{1}</full_version>\
             <major>{0}</major><minor>{1}</minor><revision>0</revision></version></product_info>\n    \
             <summary><hosts><active>{2}</active><total>{3}</total></hosts><vms><active>1</active><total>5</total></vms></summary>\n    \
             <authenticated_user id=\"{user}\"/>\n</api>\n",
            version.0, version.1, hosts.0, hosts.1
        )
    }

    /// The summary is summed, the product info is the lowest version's, the rest is home's.
    #[test]
    fn xml_roots_merge() {
        let home = xml_root((4, 5), (2, 3), "home-user");
        let old = xml_root((4, 4), (1, 1), "other");
        let newer = xml_root((4, 6), (0, 4), "other");
        let merged = merge(
            Representation::Xml,
            &[newer.as_bytes(), home.as_bytes(), old.as_bytes()],
            1,
        )
        .unwrap();
        let merged = String::from_utf8(merged).unwrap();
        assert!(
            merged.contains("<hosts><active>3</active><total>8</total></hosts>"),
            "{merged}"
        );
        assert!(
            merged.contains("<vms><active>3</active><total>15</total></vms>"),
            "{merged}"
        );
        assert!(merged.contains("<full_version>4.4</full_version>"), "{merged}");
        assert!(merged.contains("id=\"home-user\""), "{merged}");
        assert!(merged.contains("rel=\"vms\""), "{merged}");
        // Alone, home's root is its own.
        assert_eq!(
            merge(Representation::Xml, &[home.as_bytes()], 0).unwrap(),
            home.as_bytes()
        );
    }

    /// A member's root without a summary (a filtered user's) adds nothing to it.
    #[test]
    fn json_roots_merge() {
        let home = r#"{"product_info":{"version":{"major":"4","minor":"5"}},"summary":{"hosts":{"active":"2","total":"3"}},"authenticated_user":{"id":"h"}}"#;
        let old = r#"{"product_info":{"version":{"major":"4","minor":"4"}},"summary":{"hosts":{"active":"1","total":"1"}},"authenticated_user":{"id":"o"}}"#;
        let filtered =
            r#"{"product_info":{"version":{"major":"4","minor":"6"}},"authenticated_user":{"id":"f"}}"#;
        let merged = merge(
            Representation::Json,
            &[home.as_bytes(), old.as_bytes(), filtered.as_bytes()],
            0,
        )
        .unwrap();
        let merged: Value = serde_json::from_slice(&merged).unwrap();
        assert_eq!(merged["summary"]["hosts"]["active"], "3");
        assert_eq!(merged["summary"]["hosts"]["total"], "4");
        assert_eq!(merged["product_info"]["version"]["minor"], "4");
        assert_eq!(merged["authenticated_user"]["id"], "h");
    }

    #[test]
    fn unreadable_roots_are_errors() {
        assert!(merge(Representation::Json, &[b"{".as_slice()], 0).is_err());
        assert!(merge(Representation::Xml, &[b"<api><a></b></api>".as_slice()], 0).is_err());
    }
}
