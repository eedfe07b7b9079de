//! Where a create goes in the merged view (docs/federation.md, "Creating"): the object it is
//! made in, named in its body (a VM's cluster, a disk's storage domain, a cluster's data
//! center), decides the member. The table follows what the engine requires of each collection's
//! add (ovirt-engine `restapi/jaxrs/.../BackendVmsResource.java` `validateParameters(vm,
//! "cluster.id|name")`, `BackendDisksResource`, `BackendClustersResource`,
//! `BackendHostsResource`, `BackendStorageDomainsResource` and the profiles' resources).

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use serde_json::Value;

use crate::wire::Representation;

/// What a create names as its place: in `collection`, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub collection: &'static str,
    pub by: By,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum By {
    Id(String),
    Name(String),
}

/// For each collection, the references that anchor its creates, in the order they are tried:
/// the path to the reference in the body, and the collection it names.
fn anchors(collection: &str) -> &'static [(&'static [&'static str], &'static str)] {
    match collection {
        "vms" => &[(&["cluster"], "clusters"), (&["template"], "templates")],
        "vmpools" | "hosts" | "externalvmimports" | "cpuprofiles" => &[(&["cluster"], "clusters")],
        "templates" => &[(&["vm"], "vms")],
        "disks" => &[(&["storage_domains", "storage_domain"], "storagedomains")],
        "diskprofiles" => &[(&["storage_domain"], "storagedomains")],
        "clusters" | "networks" => &[(&["data_center"], "datacenters")],
        "storagedomains" => &[(&["host"], "hosts")],
        "vnicprofiles" => &[(&["network"], "networks")],
        "imagetransfers" => &[(&["disk"], "disks"), (&["host"], "hosts")],
        _ => &[],
    }
}

/// The anchor a create's body names; `None` when the collection has none or the body names
/// none. An unreadable body is an error, for the client.
pub(crate) fn anchor_of(
    collection: &str,
    repr: Representation,
    body: &[u8],
) -> Result<Option<Anchor>, String> {
    for (path, anchored) in anchors(collection) {
        let by = match repr {
            Representation::Xml => xml_reference(body, path)?,
            Representation::Json => json_reference(body, path)?,
        };
        if let Some(by) = by {
            return Ok(Some(Anchor {
                collection: anchored,
                by,
            }));
        }
    }
    Ok(None)
}

/// The id (attribute or child) or else the name of the element at `path` below the root.
fn xml_reference(body: &[u8], path: &[&str]) -> Result<Option<By>, String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<String> = Vec::new();
    let (mut id, mut name) = (None, None);
    // The text of the reference's `id` or `name` child being read.
    let mut text: Option<String> = None;
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        match &event {
            Event::Start(start) | Event::Empty(start) => {
                stack.push(String::from_utf8_lossy(start.local_name().as_ref()).into_owned());
                if at(&stack, path) && id.is_none() {
                    for attribute in start.attributes() {
                        let attribute = attribute.map_err(|e| e.to_string())?;
                        if attribute.key.local_name().as_ref() == b"id" {
                            let value = attribute
                                .normalized_value(XmlVersion::Implicit1_0)
                                .map_err(|e| e.to_string())?;
                            id = Some(value.into_owned());
                        }
                    }
                }
                let child = stack.len() == path.len() + 2 && at(&stack[..stack.len() - 1], path);
                if child && matches!(stack.last().map(String::as_str), Some("id" | "name")) {
                    text = Some(String::new());
                }
                if matches!(event, Event::Empty(_)) {
                    stack.pop();
                    text = None;
                }
            }
            Event::Text(part) => {
                if let Some(text) = &mut text {
                    text.push_str(
                        &part
                            .xml_content(XmlVersion::Implicit1_0)
                            .map_err(|e| e.to_string())?,
                    );
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(text) = &mut text {
                    let resolved = match reference.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(c) => c,
                        None => match reference.decode().map_err(|e| e.to_string())?.as_ref() {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            other => return Err(format!("unknown entity &{other};")),
                        },
                    };
                    text.push(resolved);
                }
            }
            Event::End(_) => {
                if let Some(value) = text.take() {
                    let value = value.trim().to_owned();
                    match stack.last().map(String::as_str) {
                        Some("id") if id.is_none() => id = Some(value),
                        Some("name") if name.is_none() => name = Some(value),
                        _ => {}
                    }
                }
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let id = id.filter(|s| !s.is_empty()).map(By::Id);
    Ok(id.or(name.filter(|s| !s.is_empty()).map(By::Name)))
}

/// Whether `stack` (root first) is the root and then `path`.
fn at(stack: &[String], path: &[&str]) -> bool {
    stack.len() == path.len() + 1 && stack[1..].iter().zip(path).all(|(a, b)| a == b)
}

/// The same in JSON: `{"cluster": {"id": …}}`; a list on the way takes its first item
/// (`"storage_domains": {"storage_domain": [{"id": …}]}`).
fn json_reference(body: &[u8], path: &[&str]) -> Result<Option<By>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut here = &value;
    for step in path {
        here = &here[*step];
        if let Some(first) = here.as_array().and_then(|a| a.first()) {
            here = first;
        }
    }
    let text = |key: &str| {
        here[key]
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(text("id").map(By::Id).or_else(|| text("name").map(By::Name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor(collection: &'static str, by: By) -> Option<Anchor> {
        Some(Anchor { collection, by })
    }

    /// A VM is anchored by its cluster, by id (attribute or child) before name; a template
    /// only when no cluster is named.
    #[test]
    fn xml_anchors() {
        let xml = |body: &str| anchor_of("vms", Representation::Xml, body.as_bytes()).unwrap();
        assert_eq!(
            xml("<vm><name>a</name><cluster id=\"c1\"/></vm>"),
            anchor("clusters", By::Id("c1".into()))
        );
        assert_eq!(
            xml(
                "<vm><name>a</name><template><name>Blank</name></template><cluster><name>prod</name></cluster></vm>"
            ),
            anchor("clusters", By::Name("prod".into()))
        );
        assert_eq!(
            xml("<vm><cluster><id>c2</id><name>prod</name></cluster></vm>"),
            anchor("clusters", By::Id("c2".into()))
        );
        assert_eq!(
            xml("<vm><template id=\"t1\"/><disk><cluster id=\"deep\"/></disk></vm>"),
            anchor("templates", By::Id("t1".into()))
        );
        assert_eq!(xml("<vm><name>a</name></vm>"), None);
        assert_eq!(
            anchor_of(
                "disks",
                Representation::Xml,
                b"<disk><storage_domains><storage_domain id=\"sd\"/></storage_domains></disk>"
            )
            .unwrap(),
            anchor("storagedomains", By::Id("sd".into()))
        );
        assert_eq!(
            anchor_of("datacenters", Representation::Xml, b"<data_center/>").unwrap(),
            None
        );
        assert!(anchor_of("vms", Representation::Xml, b"<vm><cluster></vm>").is_err());
    }

    #[test]
    fn json_anchors() {
        let json =
            |collection, body: &str| anchor_of(collection, Representation::Json, body.as_bytes()).unwrap();
        assert_eq!(
            json("vms", r#"{"name":"a","cluster":{"name":"prod"}}"#),
            anchor("clusters", By::Name("prod".into()))
        );
        assert_eq!(
            json("disks", r#"{"storage_domains":{"storage_domain":[{"id":"sd"}]}}"#),
            anchor("storagedomains", By::Id("sd".into()))
        );
        assert_eq!(json("clusters", r#"{"name":"c"}"#), None);
        assert!(anchor_of("vms", Representation::Json, b"{").is_err());
    }
}
