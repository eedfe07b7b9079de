//! The XML href rewriter on arbitrary bytes: see common.rs for the checks on every input; for
//! inputs quick-xml reads as well-formed, the rewritten places are exactly the starts of its
//! `href` attribute values that carry the API path.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use ovirt_gateway::XmlRewriter;
use quick_xml::events::Event;

fuzz_target!(|data: &[u8]| {
    let Some((body, _, Some(inserted))) = common::rewrite(data, || XmlRewriter::new(common::rule())) else {
        return;
    };
    if let Some(expected) = hrefs(body) {
        assert_eq!(
            inserted, expected,
            "rewritten places differ from quick-xml's href values"
        );
    }
});

/// Offsets of the href values quick-xml finds that the rule rewrites; `None` when it does not read
/// the input as XML, meets an element name that is not an XML name (quick-xml accepts them), or a
/// DTD (API bodies never carry one and the rewriter does not parse it).
fn hrefs(body: &[u8]) -> Option<Vec<usize>> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut found = Vec::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(tag) | Event::Empty(tag) => {
                // quick-xml does not check names; a conforming parser refuses `<href="x"/>`.
                if !tag
                    .name()
                    .as_ref()
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b) || b >= 0x80)
                {
                    return None;
                }
                for attribute in tag.attributes().with_checks(true) {
                    let attribute = attribute.ok()?;
                    if attribute.key.as_ref() == b"href" && common::matches(&attribute.value) {
                        found.push(attribute.value.as_ptr() as usize - body.as_ptr() as usize);
                    }
                }
            }
            Event::DocType(_) => return None,
            Event::Eof => return Some(found),
            _ => {}
        }
    }
}
