//! The two representations of the engine's API, written the way the engine writes them
//! (docs/engine.md, section 4): XML from JAXB (UTF-8, indented by four spaces, identified elements with
//! `href` and `id` attributes) and JSON from Jackson (no root wrapper, repeated elements as an array
//! under their singular name, booleans and integers as strings, dates as epoch milliseconds, empty
//! values left out).
//!
//! One [`Writer`] produces both from the same calls, so an entity is described once. It writes
//! straight into a byte buffer, which a listing drains chunk by chunk (see `listing.rs`).

use crate::wire::{Representation, xml_escape};

/// A leaf value of an element.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value<'a> {
    Text(&'a str),
    Int(i64),
    Bool(bool),
    /// Milliseconds since the epoch: ISO 8601 in XML, a number in JSON.
    Date(i64),
}

/// What a container is, for JSON: an object's members are keyed, an array's items are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Object,
    Array,
}

pub(super) struct Writer {
    repr: Representation,
    pub out: Vec<u8>,
    /// Open containers (JSON) or elements (XML), innermost last.
    frames: Vec<Frame>,
    /// XML: the name of each open element, for its end tag.
    names: Vec<&'static str>,
    /// JSON: whether the innermost container already has a member (a comma is due).
    /// XML: whether the innermost start tag is still open (`<x a="1"` without `>`).
    pending: bool,
    /// XML: whether anything was written yet (every element after the first starts a new line).
    started: bool,
}

impl Writer {
    pub(super) fn new(repr: Representation) -> Writer {
        Writer {
            repr,
            out: Vec::with_capacity(8 * 1024),
            frames: Vec::new(),
            names: Vec::new(),
            pending: false,
            started: false,
        }
    }

    /// The XML declaration; JSON documents have none.
    pub(super) fn document_start(&mut self) {
        if self.repr == Representation::Xml {
            self.out
                .extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>");
            self.started = true;
        }
    }

    /// Ends the document with a newline, as both marshallers do.
    pub(super) fn document_end(&mut self) {
        self.out.push(b'\n');
    }

    /// Opens an element with attributes (`href`, `id`, `rel`). At the top level or inside an array
    /// (see [`Writer::start_array`]) a JSON object has no key.
    pub(super) fn start(&mut self, name: &'static str, attrs: &[(&str, &str)]) {
        match self.repr {
            Representation::Xml => {
                self.xml_open_tag(name, attrs);
                self.names.push(name);
                self.pending = true;
            }
            Representation::Json => {
                self.json_key(name);
                self.out.push(b'{');
                self.frames.push(Frame::Object);
                self.pending = false;
                for (key, value) in attrs {
                    self.json_key(key);
                    json_string(&mut self.out, value);
                    self.pending = true;
                }
                return;
            }
        }
        self.frames.push(Frame::Object);
    }

    pub(super) fn end(&mut self) {
        let frame = self.frames.pop();
        match self.repr {
            Representation::Xml => {
                let name = self.names.pop().unwrap_or("");
                if self.pending {
                    self.out.extend_from_slice(b"/>");
                } else {
                    self.newline();
                    self.out.extend_from_slice(b"</");
                    self.out.extend_from_slice(name.as_bytes());
                    self.out.push(b'>');
                }
                self.pending = false;
            }
            Representation::Json => {
                if self.pending {
                    self.newline();
                }
                self.out
                    .push(if frame == Some(Frame::Array) { b']' } else { b'}' });
                self.pending = true;
            }
        }
    }

    /// An element with attributes only: a reference stub (`<cluster href=".." id=".."/>`) or a link.
    pub(super) fn stub(&mut self, name: &'static str, attrs: &[(&str, &str)]) {
        self.start(name, attrs);
        self.end();
    }

    /// A leaf element. Empty text is left out, as JAXB leaves out null and Jackson empty values.
    pub(super) fn value(&mut self, name: &str, value: Value<'_>) {
        if let Value::Text("") = value {
            return;
        }
        match self.repr {
            Representation::Xml => {
                self.xml_close_pending();
                self.newline();
                self.out.push(b'<');
                self.out.extend_from_slice(name.as_bytes());
                self.out.push(b'>');
                match value {
                    Value::Text(text) => xml_escape(&mut self.out, text, false),
                    Value::Int(n) => self.out.extend_from_slice(n.to_string().as_bytes()),
                    Value::Bool(b) => self.out.extend_from_slice(if b { b"true" } else { b"false" }),
                    Value::Date(ms) => self.out.extend_from_slice(crate::time::iso8601(ms).as_bytes()),
                }
                self.out.extend_from_slice(b"</");
                self.out.extend_from_slice(name.as_bytes());
                self.out.push(b'>');
            }
            Representation::Json => {
                self.json_key(name);
                match value {
                    Value::Text(text) => json_string(&mut self.out, text),
                    Value::Int(n) => json_string(&mut self.out, &n.to_string()),
                    Value::Bool(b) => self
                        .out
                        .extend_from_slice(if b { b"\"true\"" } else { b"\"false\"" }),
                    Value::Date(ms) => self.out.extend_from_slice(ms.to_string().as_bytes()),
                }
                self.pending = true;
            }
        }
    }

    /// Opens a run of repeated elements named `item`: nothing in XML (the items follow one another),
    /// `"item": [` in JSON. Items are then written with [`Writer::start`] or [`Writer::stub`].
    pub(super) fn start_array(&mut self, item: &'static str) {
        if self.repr == Representation::Json {
            self.json_key(item);
            self.out.push(b'[');
            self.pending = false;
        }
        self.frames.push(Frame::Array);
    }

    pub(super) fn end_array(&mut self) {
        match self.repr {
            Representation::Xml => {
                self.frames.pop();
            }
            Representation::Json => self.end(),
        }
    }

    fn depth(&self) -> usize {
        self.frames.len()
    }

    fn newline(&mut self) {
        self.out.push(b'\n');
        let width = match self.repr {
            Representation::Xml => 4 * self.names.len(),
            Representation::Json => 2 * self.depth(),
        };
        self.out.resize(self.out.len() + width, b' ');
    }

    fn xml_close_pending(&mut self) {
        if self.pending {
            self.out.push(b'>');
            self.pending = false;
        }
    }

    fn xml_open_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.xml_close_pending();
        if self.started {
            self.newline();
        }
        self.started = true;
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        for (key, value) in attrs {
            self.out.push(b' ');
            self.out.extend_from_slice(key.as_bytes());
            self.out.extend_from_slice(b"=\"");
            xml_escape(&mut self.out, value, true);
            self.out.push(b'"');
        }
    }

    /// JSON: the comma and the key before a member; no key inside an array or at the top level.
    fn json_key(&mut self, key: &str) {
        if self.pending {
            self.out.push(b',');
        }
        let in_array = self.frames.last() == Some(&Frame::Array);
        if !self.frames.is_empty() {
            self.newline();
        }
        if !in_array && !self.frames.is_empty() {
            json_string(&mut self.out, key);
            self.out.extend_from_slice(b" : ");
        }
    }
}

fn json_string(out: &mut Vec<u8>, text: &str) {
    // serde_json's escaping of a &str cannot fail.
    serde_json::to_writer(&mut *out, text).expect("writing a JSON string into a Vec");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(repr: Representation) -> String {
        let mut w = Writer::new(repr);
        w.document_start();
        w.start("vm", &[("href", "/ovirt-engine/api/vms/1"), ("id", "1")]);
        w.start("actions", &[]);
        w.start_array("link");
        w.stub(
            "link",
            &[("href", "/ovirt-engine/api/vms/1/start"), ("rel", "start")],
        );
        w.end_array();
        w.end();
        w.value("name", Value::Text("a<b"));
        w.value("description", Value::Text(""));
        w.value("memory", Value::Int(1024));
        w.value("stateless", Value::Bool(false));
        w.value("creation_time", Value::Date(0));
        w.stub(
            "cluster",
            &[("href", "/ovirt-engine/api/clusters/2"), ("id", "2")],
        );
        w.end();
        w.document_end();
        String::from_utf8(w.out).unwrap()
    }

    /// XML is indented by four spaces, leaves out empty text and writes stubs as empty elements.
    #[test]
    fn xml_entity() {
        assert_eq!(
            sample(Representation::Xml),
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
             <vm href=\"/ovirt-engine/api/vms/1\" id=\"1\">\n    \
             <actions>\n        <link href=\"/ovirt-engine/api/vms/1/start\" rel=\"start\"/>\n    </actions>\n    \
             <name>a&lt;b</name>\n    <memory>1024</memory>\n    <stateless>false</stateless>\n    \
             <creation_time>1970-01-01T00:00:00.000Z</creation_time>\n    \
             <cluster href=\"/ovirt-engine/api/clusters/2\" id=\"2\"/>\n</vm>\n"
        );
    }

    /// JSON has no root wrapper, strings for integers and booleans, a number for dates.
    #[test]
    fn json_entity() {
        let text = sample(Representation::Json);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "href": "/ovirt-engine/api/vms/1", "id": "1",
                "actions": {"link": [{"href": "/ovirt-engine/api/vms/1/start", "rel": "start"}]},
                "name": "a<b", "memory": "1024", "stateless": "false", "creation_time": 0,
                "cluster": {"href": "/ovirt-engine/api/clusters/2", "id": "2"}
            })
        );
    }

    /// A JSON collection is an object holding one array under the singular name.
    #[test]
    fn json_collection() {
        let mut w = Writer::new(Representation::Json);
        w.start("vms", &[]);
        w.start_array("vm");
        w.start("vm", &[("id", "1")]);
        w.end();
        w.start("vm", &[("id", "2")]);
        w.end();
        w.end_array();
        w.end();
        let value: serde_json::Value = serde_json::from_slice(&w.out).unwrap();
        assert_eq!(value, serde_json::json!({"vm": [{"id": "1"}, {"id": "2"}]}));
    }
}
