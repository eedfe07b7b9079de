//! XML bodies: a whole document parsed into its elements (`Node`), and the text of one element
//! of a raw answer.

use quick_xml::XmlVersion;
use quick_xml::events::Event;

/// An XML element: attributes, text (leaves only, exactly as decoded) and children in order.
#[derive(Debug, Default, Clone)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn attr(&self, name: &str) -> &str {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("<{}> has no {name}", self.name))
    }

    pub fn find(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn child(&self, name: &str) -> &Node {
        self.find(name)
            .unwrap_or_else(|| panic!("<{}> has no <{name}>", self.name))
    }

    pub fn text_of(&self, name: &str) -> &str {
        &self.child(name).text
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Every `href` attribute, at every depth.
    pub fn hrefs(&self) -> Vec<&str> {
        let own = self
            .attrs
            .iter()
            .filter(|(k, _)| k == "href")
            .map(|(_, v)| v.as_str());
        own.chain(self.children.iter().flat_map(Node::hrefs)).collect()
    }
}

/// Parses a whole XML document with quick-xml (end tags checked) into its root element.
pub fn parse_xml(body: &[u8]) -> Node {
    let text = String::from_utf8_lossy(body);
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack = vec![Node::default()];
    let close = |stack: &mut Vec<Node>| {
        let node = stack.pop().unwrap();
        stack.last_mut().expect("balanced").children.push(node);
    };
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("malformed XML ({e}): {text}"));
        match &event {
            Event::Start(tag) | Event::Empty(tag) => {
                let attrs = tag.attributes().map(|a| {
                    let a = a.unwrap();
                    let value = a.normalized_value(XmlVersion::Implicit1_0).unwrap();
                    (
                        String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                        value.into_owned(),
                    )
                });
                stack.push(Node {
                    name: String::from_utf8_lossy(tag.name().as_ref()).into_owned(),
                    attrs: attrs.collect(),
                    ..Node::default()
                });
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack);
                }
            }
            Event::End(_) => close(&mut stack),
            Event::Text(t) => {
                let decoded = t.xml_content(XmlVersion::Implicit1_0).unwrap();
                stack.last_mut().unwrap().text.push_str(&decoded);
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => match reference.decode().unwrap().as_ref() {
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "amp" => "&".into(),
                        "apos" => "'".into(),
                        "quot" => "\"".into(),
                        other => panic!("unknown entity &{other};"),
                    },
                };
                stack.last_mut().unwrap().text.push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().unwrap();
    assert!(
        stack.is_empty() && document.children.len() == 1,
        "one root: {text}"
    );
    document.children.pop().unwrap()
}

/// The text of an XML element, e.g. `element(xml, "reason")`.
pub fn element<'a>(xml: &'a str, name: &str) -> &'a str {
    let start = xml
        .find(&format!("<{name}>"))
        .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
        + name.len()
        + 2;
    let end = xml[start..].find(&format!("</{name}>")).unwrap() + start;
    &xml[start..end]
}
