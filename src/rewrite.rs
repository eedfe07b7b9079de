//! Link rewriting: hrefs in XML and JSON bodies point at the gateway's public base when it differs
//! from the Manager's (docs/engine.md, section 5), by structure, never by byte substitution.
//!
//! `response.rs` decides what to rewrite in a Manager's response (run by the `forward` stage);
//! `xml.rs` and `json.rs` rewrite bodies as they stream, by the rule of `prefix.rs`. What is and is
//! not rewritten: docs/rewriting.md.

pub(crate) mod json;
pub(crate) mod prefix;
pub(crate) mod response;
pub(crate) mod xml;

#[cfg(test)]
mod properties {
    //! Random documents with hrefs in every position and hostile text, fed in random chunks: the
    //! output equals the input except inside href values, which are exactly rewritten.

    use proptest::prelude::*;

    use super::json::JsonRewriter;
    use super::prefix::Rule;
    use super::xml::XmlRewriter;

    const FROM: &str = "/ovirt-engine/api";
    const TO: &str = "/east/ovirt-engine/api";

    fn rule() -> Rule {
        Rule {
            from: FROM.as_bytes().to_vec(),
            to: TO.as_bytes().to_vec(),
        }
    }

    /// The rule, written independently of the rewriter: an href value gets the public path when
    /// it is the API path or starts with it and a boundary.
    fn expected_href(value: &str) -> String {
        match value.strip_prefix(FROM) {
            Some("") => TO.to_owned(),
            Some(rest) if rest.starts_with(['/', '?', ';', '#']) => format!("{TO}{rest}"),
            _ => value.to_owned(),
        }
    }

    /// Values that look like the API path, nearly do, or do not at all.
    fn value() -> impl Strategy<Value = String> {
        let start = prop_oneof![
            Just(FROM.to_owned()),
            Just("/ovirt-engine/ap".to_owned()),
            Just("/ovirt-engine/apis".to_owned()),
            Just("https://engine/ovirt-engine/api".to_owned()),
            Just(String::new()),
        ];
        (start, "[a-z0-9/?;#{}=é ]{0,12}").prop_map(|(s, rest)| s + &rest)
    }

    /// Text that contains markup-like content, escaped as a marshaller would.
    fn hostile_text() -> impl Strategy<Value = String> {
        "[a-z <>&\"'=/é{}]{0,30}".prop_map(|t| {
            format!("{t} href=\"{FROM}/x\"")
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        })
    }

    fn xml_piece() -> impl Strategy<Value = (String, String)> {
        let attr = (
            prop_oneof![
                Just("href"),
                Just("xhref"),
                Just("hrefs"),
                Just("id"),
                Just("rel")
            ],
            value(),
            prop_oneof![Just('"'), Just('\'')],
        );
        prop_oneof![
            (prop::collection::vec(attr, 0..4), any::<bool>()).prop_map(|(attrs, spaced)| {
                let (mut input, mut expected) = ("<link".to_owned(), "<link".to_owned());
                for (name, value, quote) in attrs {
                    let eq = if spaced { " = " } else { "=" };
                    let rewritten = if name == "href" {
                        expected_href(&value)
                    } else {
                        value.clone()
                    };
                    input += &format!(" {name}{eq}{quote}{value}{quote}");
                    expected += &format!(" {name}{eq}{quote}{rewritten}{quote}");
                }
                input += "/>";
                expected += "/>";
                (input, expected)
            }),
            hostile_text().prop_map(|t| (t.clone(), t)),
            hostile_text().prop_map(|t| {
                let c = format!("<![CDATA[<a href=\"{FROM}/c\">{}]]>", t.replace("]]>", ""));
                (c.clone(), c)
            }),
            hostile_text().prop_map(|t| {
                let c = format!("<!-- <a href=\"{FROM}/c\"> {} -->", t.replace("--", ""));
                (c.clone(), c)
            }),
            Just(("</vm>".to_owned(), "</vm>".to_owned())),
        ]
    }

    fn json_member() -> impl Strategy<Value = (String, String)> {
        let string_value = "[a-z/\"\\\\é ]{0,12}".prop_map(|s| s.replace('\\', "\\\\").replace('"', "\\\""));
        prop_oneof![
            value().prop_map(|v| (
                format!("\"href\" : \"{v}\""),
                format!("\"href\" : \"{}\"", expected_href(&v))
            )),
            (
                prop_oneof![Just("hrefs"), Just("name"), Just("description")],
                value(),
                string_value
            )
                .prop_map(|(k, v, s)| {
                    let m = format!("\"{k}\" : \"{v}{s}\"");
                    (m.clone(), m)
                }),
            value().prop_map(|v| {
                let m = format!("\"tags\" : [ \"href\", \"{v}\" ]");
                (m.clone(), m)
            }),
            value().prop_map(|v| (
                format!("\"cluster\" : {{ \"id\" : \"1\", \"href\" : \"{v}\" }}"),
                format!(
                    "\"cluster\" : {{ \"id\" : \"1\", \"href\" : \"{}\" }}",
                    expected_href(&v)
                )
            )),
            Just((
                "\"n\" : 12, \"b\" : false".to_owned(),
                "\"n\" : 12, \"b\" : false".to_owned()
            )),
        ]
    }

    /// `bytes` cut at the given sizes (cycled).
    fn chunks<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut rest = bytes;
        let mut i = 0;
        while !rest.is_empty() {
            let size = sizes[i % sizes.len()].clamp(1, rest.len());
            out.push(&rest[..size]);
            rest = &rest[size..];
            i += 1;
        }
        out
    }

    proptest! {
        /// XML: only href attribute values change, whatever the chunking.
        #[test]
        fn xml_rewrites_exactly_the_hrefs(
            pieces in prop::collection::vec(xml_piece(), 0..12),
            sizes in prop::collection::vec(1usize..20, 1..8),
        ) {
            let input = format!("<vm href=\"{FROM}/vms/1\">{}</vm>", pieces.iter().map(|p| p.0.as_str()).collect::<String>());
            let expected = format!("<vm href=\"{TO}/vms/1\">{}</vm>", pieces.iter().map(|p| p.1.as_str()).collect::<String>());
            let mut rewriter = XmlRewriter::new(rule());
            let mut out = Vec::new();
            for chunk in chunks(input.as_bytes(), &sizes) {
                rewriter.feed(chunk, &mut out);
            }
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }

        /// JSON: only string values of `href` members change, whatever the chunking.
        #[test]
        fn json_rewrites_exactly_the_hrefs(
            members in prop::collection::vec(json_member(), 0..10),
            sizes in prop::collection::vec(1usize..20, 1..8),
        ) {
            let join = |side: fn(&(String, String)) -> &str| {
                members.iter().map(side).collect::<Vec<_>>().join(", ")
            };
            let input = format!("{{ \"vm\" : [ {{ {} }} ] }}", join(|m| m.0.as_str()));
            let expected = format!("{{ \"vm\" : [ {{ {} }} ] }}", join(|m| m.1.as_str()));
            let mut rewriter = JsonRewriter::new(rule());
            let mut out = Vec::new();
            for chunk in chunks(input.as_bytes(), &sizes) {
                rewriter.feed(chunk, &mut out);
            }
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }
}
