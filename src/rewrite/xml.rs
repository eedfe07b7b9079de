//! Streaming href rewriting for XML bodies: the values of `href` attributes, on any element at any
//! depth, get the public prefix (`prefix.rs`); every other byte is written exactly as it came.
//! Element text, CDATA, comments, processing instructions, attribute order and quoting, entities
//! and whitespace are never touched.
//!
//! A byte-level state machine that keeps its place across chunks: a chunk may end anywhere (in a
//! tag, an attribute name, a value, an entity, a multi-byte character) and memory stays bounded (at
//! most the length of the Manager's API path is held back).

use super::prefix::{PrefixMatch, Rule};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// After `<`.
    TagOpen,
    /// After `<!`.
    Bang,
    /// After `<!-`.
    BangDash,
    /// After `<!` and `seen` bytes of `[CDATA[`.
    CDataOpen {
        seen: u8,
    },
    Comment {
        dashes: u8,
    },
    CData {
        brackets: u8,
    },
    /// `<!DOCTYPE ...>` and the like, up to `>` (no nested markup in API bodies).
    Declaration,
    /// `<?...?>`.
    Instruction {
        question: bool,
    },
    /// In an end tag, up to `>`.
    EndTag,
    /// In the element name.
    TagName,
    /// Between attributes.
    InTag,
    /// In an attribute name; `href` says whether it is exactly `href` so far.
    AttrName {
        href: HrefSoFar,
    },
    /// After the name, before `=`.
    AfterName {
        href: bool,
    },
    /// After `=`, before the opening quote.
    BeforeValue {
        href: bool,
    },
    /// In a value delimited by `quote`; hrefs are fed to the prefix match.
    Value {
        quote: u8,
        href: bool,
    },
}

/// How much of `href` an attribute name has matched (`None`: it is another name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HrefSoFar {
    Matched(u8),
    Other,
}

const CDATA_OPEN: &[u8] = b"[CDATA[";

pub struct XmlRewriter {
    rule: Rule,
    state: State,
    value: PrefixMatch,
}

impl XmlRewriter {
    pub fn new(rule: Rule) -> XmlRewriter {
        XmlRewriter {
            rule,
            state: State::Text,
            value: PrefixMatch::new(),
        }
    }

    /// Rewrites one chunk into `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len());
        let mut i = 0;
        while i < chunk.len() {
            // Runs of plain text and of non-href values go out in one copy.
            match self.state {
                State::Text => {
                    let run = chunk[i..]
                        .iter()
                        .position(|&b| b == b'<')
                        .unwrap_or(chunk.len() - i);
                    out.extend_from_slice(&chunk[i..i + run]);
                    i += run;
                    if i == chunk.len() {
                        return;
                    }
                }
                State::Value { quote, href } => {
                    let run = chunk[i..]
                        .iter()
                        .position(|&b| b == quote)
                        .unwrap_or(chunk.len() - i);
                    if href {
                        self.value.feed(&self.rule, &chunk[i..i + run], out);
                    } else {
                        out.extend_from_slice(&chunk[i..i + run]);
                    }
                    i += run;
                    if i == chunk.len() {
                        return;
                    }
                    if href {
                        self.value.finish(&self.rule, out);
                    }
                    out.push(quote);
                    self.state = State::InTag;
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let b = chunk[i];
            out.push(b);
            self.state = next(self.state, b);
            i += 1;
        }
    }
}

impl XmlRewriter {
    /// The body ended: writes what an unfinished href value held back (a truncated document).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let State::Value { href: true, .. } = self.state {
            self.value.finish(&self.rule, out);
        }
    }
}

/// XML's whitespace (the `S` production): not form feed, unlike `u8::is_ascii_whitespace`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The state after byte `b` (every state but text and values, which `feed` handles in runs).
fn next(state: State, b: u8) -> State {
    match state {
        State::Text => State::TagOpen,
        State::TagOpen => match b {
            // `<>`: not a tag; what follows is text.
            b'>' => State::Text,
            b'!' => State::Bang,
            b'?' => State::Instruction { question: false },
            b'/' => State::EndTag,
            _ => State::TagName,
        },
        State::Bang => match b {
            b'-' => State::BangDash,
            b'[' => State::CDataOpen { seen: 1 },
            b'>' => State::Text,
            _ => State::Declaration,
        },
        State::BangDash => match b {
            b'-' => State::Comment { dashes: 0 },
            b'>' => State::Text,
            _ => State::Declaration,
        },
        State::CDataOpen { seen } => match b {
            b'>' => State::Text,
            b if CDATA_OPEN[usize::from(seen)] == b => {
                if usize::from(seen) + 1 == CDATA_OPEN.len() {
                    State::CData { brackets: 0 }
                } else {
                    State::CDataOpen { seen: seen + 1 }
                }
            }
            _ => State::Declaration,
        },
        State::Comment { dashes } => match (b, dashes) {
            (b'-', d) => State::Comment {
                dashes: (d + 1).min(2),
            },
            (b'>', 2) => State::Text,
            _ => State::Comment { dashes: 0 },
        },
        State::CData { brackets } => match (b, brackets) {
            (b']', d) => State::CData {
                brackets: (d + 1).min(2),
            },
            (b'>', 2) => State::Text,
            _ => State::CData { brackets: 0 },
        },
        State::Declaration => {
            if b == b'>' {
                State::Text
            } else {
                State::Declaration
            }
        }
        State::Instruction { question } => match b {
            b'>' if question => State::Text,
            b'?' => State::Instruction { question: true },
            _ => State::Instruction { question: false },
        },
        State::EndTag => {
            if b == b'>' {
                State::Text
            } else {
                State::EndTag
            }
        }
        State::TagName | State::InTag => match b {
            b'>' => State::Text,
            b'/' => State::InTag,
            b if is_space(b) => State::InTag,
            _ if state == State::TagName => State::TagName,
            b'h' => State::AttrName {
                href: HrefSoFar::Matched(1),
            },
            _ => State::AttrName {
                href: HrefSoFar::Other,
            },
        },
        State::AttrName { href } => match b {
            b'=' => State::BeforeValue {
                href: href == HrefSoFar::Matched(4),
            },
            b if is_space(b) => State::AfterName {
                href: href == HrefSoFar::Matched(4),
            },
            b'>' => State::Text,
            b'/' => State::InTag,
            _ => State::AttrName {
                href: match href {
                    HrefSoFar::Matched(n) if usize::from(n) < 4 && b"href"[usize::from(n)] == b => {
                        HrefSoFar::Matched(n + 1)
                    }
                    _ => HrefSoFar::Other,
                },
            },
        },
        State::AfterName { href } => match b {
            b'=' => State::BeforeValue { href },
            b if is_space(b) => State::AfterName { href },
            b'>' => State::Text,
            _ => next(State::InTag, b),
        },
        State::BeforeValue { href } => match b {
            b'"' | b'\'' => State::Value { quote: b, href },
            b'>' => State::Text,
            _ => State::BeforeValue { href },
        },
        State::Value { .. } => unreachable!("values are handled in runs by `feed`"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::prefix::tests::east;
    use super::*;

    fn rewrite_in_pieces(input: &str, piece: usize) -> String {
        let mut rewriter = XmlRewriter::new(east());
        let mut out = Vec::new();
        for chunk in input.as_bytes().chunks(piece.max(1)) {
            rewriter.feed(chunk, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    const ENTITY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- href=\"/ovirt-engine/api/c\" -->\n\
        <vm href=\"/ovirt-engine/api/vms/1\" id=\"1\">\n  <actions>\n    <link href='/ovirt-engine/api/vms/1/start' rel=\"start\"/>\n  </actions>\n\
        <description>see href=\"/ovirt-engine/api/x\" &amp; &lt;b&gt; été</description>\n\
        <comment><![CDATA[<a href=\"/ovirt-engine/api/y\">]]></comment>\n\
        <cluster xhref=\"/ovirt-engine/api/no\" hrefs=\"/ovirt-engine/api/no\" href = \"/ovirt-engine/api/clusters/2\" id=\"2\"/>\n\
        <link href=\"/ovirt-engine/api/clusters?search={query}\" rel=\"clusters/search\"/>\n</vm>\n";

    const EXPECTED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- href=\"/ovirt-engine/api/c\" -->\n\
        <vm href=\"/east/ovirt-engine/api/vms/1\" id=\"1\">\n  <actions>\n    <link href='/east/ovirt-engine/api/vms/1/start' rel=\"start\"/>\n  </actions>\n\
        <description>see href=\"/ovirt-engine/api/x\" &amp; &lt;b&gt; été</description>\n\
        <comment><![CDATA[<a href=\"/ovirt-engine/api/y\">]]></comment>\n\
        <cluster xhref=\"/ovirt-engine/api/no\" hrefs=\"/ovirt-engine/api/no\" href = \"/east/ovirt-engine/api/clusters/2\" id=\"2\"/>\n\
        <link href=\"/east/ovirt-engine/api/clusters?search={query}\" rel=\"clusters/search\"/>\n</vm>\n";

    /// href attributes at every depth and quoting are rewritten; text, comments, CDATA, other
    /// attributes and entities are not.
    #[test]
    fn hrefs_only() {
        assert_eq!(rewrite_in_pieces(ENTITY, ENTITY.len()), EXPECTED);
    }

    /// Any chunking gives the same output, down to one byte at a time.
    #[test]
    fn chunk_boundaries_anywhere() {
        for piece in 1..40 {
            assert_eq!(rewrite_in_pieces(ENTITY, piece), EXPECTED, "pieces of {piece}");
        }
    }

    /// `<>` is no tag: the text after it is text. Found by the fuzz target.
    #[test]
    fn empty_tag_is_not_a_tag() {
        let input = "<> href=\"/ovirt-engine/api\" <a href=\"/ovirt-engine/api\"/>";
        let expected = "<> href=\"/ovirt-engine/api\" <a href=\"/east/ovirt-engine/api\"/>";
        assert_eq!(rewrite_in_pieces(input, input.len()), expected);
    }

    /// Only XML's own whitespace separates names: a form feed (not whitespace in XML) leaves
    /// `i\x0chref` one name, as a conforming parser reads it. Found by the fuzz target.
    #[test]
    fn form_feed_is_not_whitespace() {
        let input = "<i\x0chref=\"/ovirt-engine/api\"><i\thref=\"/ovirt-engine/api\"/></i\x0chref>";
        let expected = "<i\x0chref=\"/ovirt-engine/api\"><i\thref=\"/east/ovirt-engine/api\"/></i\x0chref>";
        assert_eq!(rewrite_in_pieces(input, input.len()), expected);
    }
}
