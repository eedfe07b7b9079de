//! What both targets check, whatever the input: rewriting in random chunks gives the same output as
//! rewriting in one piece, and the output is the input with the public prefix inserted in front of
//! some occurrences of the Manager's API path and nothing else changed. Each target then checks,
//! against an independent parser, that those occurrences are exactly the href values.

use ovirt_gateway::Rule;

pub const FROM: &[u8] = b"/ovirt-engine/api";
/// The public prefix: bytes an input rarely contains, so that every insertion can be found again
/// (inputs that contain it are only checked for chunking).
const MARK: &[u8] = b"/zq";

pub fn rule() -> Rule {
    Rule {
        from: FROM.to_vec(),
        to: [MARK, FROM].concat(),
    }
}

/// Whether an href value gets the public prefix, by the rule written down independently.
pub fn matches(value: &[u8]) -> bool {
    value.strip_prefix(FROM).is_some_and(|rest| {
        rest.first()
            .is_none_or(|b| matches!(b, b'/' | b'?' | b';' | b'#'))
    })
}

/// A streaming rewriter, as the gateway drives it.
pub trait Rewriter {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>);
    fn finish(&mut self, out: &mut Vec<u8>);
}

impl Rewriter for ovirt_gateway::XmlRewriter {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.feed(chunk, out);
    }
    fn finish(&mut self, out: &mut Vec<u8>) {
        self.finish(out);
    }
}

impl Rewriter for ovirt_gateway::JsonRewriter {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.feed(chunk, out);
    }
    fn finish(&mut self, out: &mut Vec<u8>) {
        self.finish(out);
    }
}

/// The first byte of the fuzz input seeds the chunk sizes; the rest is the body. Returns the body,
/// the output, and the offsets in the body where the prefix was inserted (`None` when the body
/// contains the mark itself).
pub fn rewrite<R: Rewriter>(
    data: &[u8],
    new: impl Fn() -> R,
) -> Option<(&[u8], Vec<u8>, Option<Vec<usize>>)> {
    let (&seed, body) = data.split_first()?;
    let mut whole = Vec::new();
    let mut rewriter = new();
    rewriter.feed(body, &mut whole);
    rewriter.finish(&mut whole);

    let mut chunked = Vec::new();
    let mut rewriter = new();
    let mut state = u32::from(seed);
    let mut rest = body;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let size = ((state >> 16) as usize % 64 + 1).min(rest.len());
        rewriter.feed(&rest[..size], &mut chunked);
        rest = &rest[size..];
    }
    rewriter.finish(&mut chunked);
    assert!(whole == chunked, "chunking changed the output");

    if body.windows(MARK.len()).any(|w| w == MARK) {
        return Some((body, whole, None));
    }
    let insertions = insertions(body, &whole);
    Some((body, whole, Some(insertions)))
}

/// Walks input and output together: the output may differ only by `MARK` in front of `FROM`.
fn insertions(input: &[u8], output: &[u8]) -> Vec<usize> {
    let (mut i, mut j) = (0, 0);
    let mut found = Vec::new();
    while j < output.len() {
        if output[j..].starts_with(MARK) {
            assert!(
                input[i..].starts_with(FROM),
                "prefix inserted at {i} before something else"
            );
            found.push(i);
            j += MARK.len();
            continue;
        }
        assert!(
            i < input.len() && input[i] == output[j],
            "output differs from the input at input offset {i}"
        );
        i += 1;
        j += 1;
    }
    assert_eq!(i, input.len(), "output is shorter than the input");
    found
}
