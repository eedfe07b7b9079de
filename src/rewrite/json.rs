//! Streaming href rewriting for JSON bodies: string values of members named `href`, in objects at
//! any depth, get the public prefix (`prefix.rs`); every other byte is written exactly as it came,
//! escapes inside other strings included.
//!
//! A tokenizer that keeps its place across chunks (a chunk may end inside a key, a value or an
//! escape). Only literal prefixes are rewritten: the engine's JSON never escapes `/`, so an href
//! written `\/ovirt-engine\/api` (legal JSON, never seen) would be left alone.

use super::prefix::{PrefixMatch, Rule};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    /// `expect_key`: the next string is a member name.
    Object {
        expect_key: bool,
    },
    Array,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Str {
    /// A member name: how much of `href` it matched (`None`: another name).
    Key(Option<u8>),
    HrefValue,
    Other,
}

/// Nesting kept track of: the engine's documents nest a dozen levels at most. Deeper containers
/// are only counted, so a hostile body cannot grow memory; their hrefs are left alone.
const MAX_DEPTH: usize = 256;

pub struct JsonRewriter {
    rule: Rule,
    /// The open containers, innermost last, up to `MAX_DEPTH`.
    containers: Vec<Container>,
    /// Containers open beyond `MAX_DEPTH`.
    too_deep: usize,
    in_string: bool,
    /// In a string, right after a backslash.
    escaped: bool,
    /// What the current string is.
    kind: Str,
    /// Whether the member name just read is `href`.
    key_is_href: bool,
    value: PrefixMatch,
}

impl JsonRewriter {
    pub fn new(rule: Rule) -> JsonRewriter {
        JsonRewriter {
            rule,
            containers: Vec::new(),
            too_deep: 0,
            in_string: false,
            escaped: false,
            kind: Str::Other,
            key_is_href: false,
            value: PrefixMatch::new(),
        }
    }

    /// Rewrites one chunk into `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len());
        let mut i = 0;
        while i < chunk.len() {
            if !self.in_string {
                let b = chunk[i];
                out.push(b);
                self.structural(b);
                i += 1;
            } else if self.escaped {
                // The escaped byte never ends the string (`\"`); `\uXXXX` digits are plain.
                self.string_bytes(&chunk[i..=i], out);
                self.escaped = false;
                i += 1;
            } else {
                // The run up to the closing quote or an escape.
                let run = chunk[i..]
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\')
                    .unwrap_or(chunk.len() - i);
                self.string_bytes(&chunk[i..i + run], out);
                i += run;
                let Some(&b) = chunk.get(i) else { return };
                i += 1;
                if b == b'\\' {
                    self.string_bytes(&[b], out);
                    self.escaped = true;
                } else {
                    self.end_string(out);
                }
            }
        }
    }

    /// The body ended: writes what an unfinished href value held back (a truncated document).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.in_string && self.kind == Str::HrefValue {
            self.value.finish(&self.rule, out);
        }
    }

    fn structural(&mut self, b: u8) {
        match b {
            b'{' => self.open(Container::Object { expect_key: true }),
            b'[' => self.open(Container::Array),
            b'}' | b']' => {
                if self.too_deep > 0 {
                    self.too_deep -= 1;
                } else {
                    self.containers.pop();
                }
            }
            b':' => self.set_expect_key(false),
            b',' => self.set_expect_key(true),
            b'"' => {
                self.kind = match self.containers.last() {
                    _ if self.too_deep > 0 => Str::Other,
                    Some(Container::Object { expect_key: true }) => Str::Key(Some(0)),
                    Some(Container::Object { expect_key: false }) if self.key_is_href => Str::HrefValue,
                    _ => Str::Other,
                };
                self.in_string = true;
            }
            _ => {}
        }
    }

    fn open(&mut self, container: Container) {
        if self.containers.len() < MAX_DEPTH {
            self.containers.push(container);
        } else {
            self.too_deep += 1;
        }
    }

    fn set_expect_key(&mut self, expect: bool) {
        if self.too_deep > 0 {
            return;
        }
        if let Some(Container::Object { expect_key }) = self.containers.last_mut() {
            *expect_key = expect;
        }
    }

    fn string_bytes(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        match self.kind {
            Str::HrefValue => self.value.feed(&self.rule, bytes, out),
            Str::Key(mut matched) => {
                out.extend_from_slice(bytes);
                for &b in bytes {
                    matched = matched
                        .filter(|&n| usize::from(n) < 4 && b"href"[usize::from(n)] == b)
                        .map(|n| n + 1);
                }
                self.kind = Str::Key(matched);
            }
            Str::Other => out.extend_from_slice(bytes),
        }
    }

    fn end_string(&mut self, out: &mut Vec<u8>) {
        match self.kind {
            Str::HrefValue => self.value.finish(&self.rule, out),
            Str::Key(matched) => self.key_is_href = matched == Some(4),
            Str::Other => {}
        }
        out.push(b'"');
        self.in_string = false;
    }
}

#[cfg(test)]
mod tests {
    use super::super::prefix::tests::east;
    use super::*;

    fn rewrite_in_pieces(input: &str, piece: usize) -> String {
        let mut rewriter = JsonRewriter::new(east());
        let mut out = Vec::new();
        for chunk in input.as_bytes().chunks(piece.max(1)) {
            rewriter.feed(chunk, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    const LISTING: &str = r#"{
  "vm" : [ {
    "href" : "/ovirt-engine/api/vms/1",
    "id" : "1",
    "actions" : { "link" : [ { "href" : "/ovirt-engine/api/vms/1/start", "rel" : "start" } ] },
    "description" : "see \"href\" : \"/ovirt-engine/api/x\" été \\",
    "hrefs" : "/ovirt-engine/api/no",
    "name" : "href",
    "comment" : "/ovirt-engine/api/not-an-href",
    "memory" : "1024",
    "stateless" : false,
    "cluster" : { "href" : "/ovirt-engine/api/clusters/2", "id" : "2" },
    "tags" : [ "href", "/ovirt-engine/api/no" ]
  } ]
}"#;

    const EXPECTED: &str = r#"{
  "vm" : [ {
    "href" : "/east/ovirt-engine/api/vms/1",
    "id" : "1",
    "actions" : { "link" : [ { "href" : "/east/ovirt-engine/api/vms/1/start", "rel" : "start" } ] },
    "description" : "see \"href\" : \"/ovirt-engine/api/x\" été \\",
    "hrefs" : "/ovirt-engine/api/no",
    "name" : "href",
    "comment" : "/ovirt-engine/api/not-an-href",
    "memory" : "1024",
    "stateless" : false,
    "cluster" : { "href" : "/east/ovirt-engine/api/clusters/2", "id" : "2" },
    "tags" : [ "href", "/ovirt-engine/api/no" ]
  } ]
}"#;

    /// Only string values of `href` members are rewritten, at any depth; escaped quotes, other
    /// members, array items and non-string values pass.
    #[test]
    fn href_members_only() {
        assert_eq!(rewrite_in_pieces(LISTING, LISTING.len()), EXPECTED);
    }

    /// Nesting beyond `MAX_DEPTH` is counted, not stored: hrefs down there pass unchanged, and
    /// the document's shallower hrefs are rewritten again once it climbs back.
    #[test]
    fn deep_nesting_is_bounded() {
        let deep = MAX_DEPTH + 10;
        let input = format!(
            "{{\"a\":{}{{\"href\":\"/ovirt-engine/api/deep\"}}{},\"href\":\"/ovirt-engine/api\"}}",
            "[".repeat(deep),
            "]".repeat(deep)
        );
        let expected = input.replacen(
            "\"href\":\"/ovirt-engine/api\"}",
            "\"href\":\"/east/ovirt-engine/api\"}",
            1,
        );
        let mut rewriter = JsonRewriter::new(east());
        let mut out = Vec::new();
        rewriter.feed(input.as_bytes(), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        assert_eq!((rewriter.containers.len(), rewriter.too_deep), (0, 0));
        assert!(rewriter.containers.capacity() <= MAX_DEPTH);
    }

    /// Any chunking gives the same output, down to one byte at a time.
    #[test]
    fn chunk_boundaries_anywhere() {
        for piece in 1..40 {
            assert_eq!(rewrite_in_pieces(LISTING, piece), EXPECTED, "pieces of {piece}");
        }
    }
}
