//! Request bodies (`<vm>...</vm>`, `<action/>`, or their JSON forms) read into one small tree, so
//! the handlers read a VM's name or an action's host the same way whatever the representation.

use quick_xml::XmlVersion;
use quick_xml::events::Event;

/// An element: its attributes, text (exactly as sent, whitespace included) and children. JSON members
/// become children.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub(super) fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of a child element (`<name>x</name>` → `x`).
    pub(super) fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// An `id` given as an attribute (`<cluster id="..."/>`) or as a child (`<cluster><id>..`).
    pub(super) fn id(&self) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == "id")
            .map(|(_, v)| v.as_str())
            .or_else(|| self.text_of("id"))
    }
}

/// Parses an XML document into its root element.
pub(super) fn parse_xml(body: &[u8]) -> Result<Node, String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<Node> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let mut node = Node {
                    name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
                    ..Node::default()
                };
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| e.to_string())?;
                    let value = attr
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|e| e.to_string())?;
                    node.attrs.push((
                        String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned(),
                        value.into_owned(),
                    ));
                }
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, node)?;
                } else {
                    stack.push(node);
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or("unbalanced end tag")?;
                close(&mut stack, node)?;
            }
            Event::Text(text) => {
                let content = text
                    .xml_content(XmlVersion::Implicit1_0)
                    .map_err(|e| e.to_string())?;
                append_text(&mut stack, &content)?;
            }
            Event::CData(data) => {
                append_text(&mut stack, &String::from_utf8_lossy(&data))?;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => match reference.decode().map_err(|e| e.to_string())?.as_ref() {
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "amp" => "&".into(),
                        "apos" => "'".into(),
                        "quot" => "\"".into(),
                        other => return Err(format!("unknown entity &{other};")),
                    },
                };
                append_text(&mut stack, &resolved)?;
            }
            Event::Eof if stack.is_empty() => return Err("no root element".into()),
            Event::Eof => return Err("unexpected end of document".into()),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        if let Some(root) = finished(&stack) {
            return Ok(root);
        }
    }
}

/// A finished root is kept as the only stack entry under a sentinel name until returned.
fn finished(stack: &[Node]) -> Option<Node> {
    match stack {
        [sentinel] if sentinel.name == "\0done" => sentinel.children.first().cloned(),
        _ => None,
    }
}

fn close(stack: &mut Vec<Node>, node: Node) -> Result<(), String> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => stack.push(Node {
            name: "\0done".into(),
            children: vec![node],
            ..Node::default()
        }),
    }
    Ok(())
}

fn append_text(stack: &mut [Node], text: &str) -> Result<(), String> {
    match stack.last_mut() {
        Some(node) => {
            node.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err("text outside the root element".into()),
    }
}

/// Parses a JSON object into a node named `root_name` (JSON bodies have no root wrapper).
pub(super) fn parse_json(body: &[u8], root_name: &str) -> Result<Node, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if !value.is_object() {
        return Err("the body must be a JSON object".into());
    }
    Ok(json_node(root_name, &value))
}

fn json_node(name: &str, value: &serde_json::Value) -> Node {
    let mut node = Node {
        name: name.to_owned(),
        ..Node::default()
    };
    match value {
        serde_json::Value::Object(members) => {
            for (key, member) in members {
                match member {
                    serde_json::Value::Array(items) => {
                        node.children
                            .extend(items.iter().map(|item| json_node(key, item)));
                    }
                    // `id` and `href` are attributes in XML; keep them where `Node::id` looks.
                    serde_json::Value::String(s) if key == "id" || key == "href" => {
                        node.attrs.push((key.clone(), s.clone()));
                    }
                    _ => node.children.push(json_node(key, member)),
                }
            }
        }
        serde_json::Value::String(s) => node.text = s.clone(),
        serde_json::Value::Null => {}
        other => node.text = other.to_string(),
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SDK's add body: references by name, text with entities.
    #[test]
    fn xml_vm_with_references() {
        let node = parse_xml(
            b"<?xml version='1.0'?>\n<vm>\n  <name>a &amp; b</name>\n  <cluster id=\"c1\"/>\n  <template><name>Blank</name></template>\n</vm>",
        )
        .unwrap();
        assert_eq!(node.name, "vm");
        assert_eq!(node.text_of("name"), Some("a & b"));
        assert_eq!(node.child("cluster").and_then(Node::id), Some("c1"));
        assert_eq!(
            node.child("template").and_then(|t| t.text_of("name")),
            Some("Blank")
        );
    }

    /// An empty action element is a document.
    #[test]
    fn empty_root() {
        assert_eq!(parse_xml(b"<action/>").unwrap().name, "action");
    }

    /// Truncated and unbalanced documents are errors, not partial trees.
    #[test]
    fn malformed_xml_is_an_error() {
        assert!(parse_xml(b"<vm><name>x</name>").is_err());
        assert!(parse_xml(b"<vm></cluster>").is_err());
        assert!(parse_xml(b"").is_err());
    }

    /// JSON members become children, `id` an attribute.
    #[test]
    fn json_vm() {
        let node = parse_json(br#"{"name":"x","cluster":{"id":"c1"},"memory":"1024"}"#, "vm").unwrap();
        assert_eq!(node.text_of("name"), Some("x"));
        assert_eq!(node.child("cluster").and_then(Node::id), Some("c1"));
        assert_eq!(node.text_of("memory"), Some("1024"));
    }
}
