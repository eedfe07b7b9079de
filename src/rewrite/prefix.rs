//! The one rewriting rule both representations share: an href value that starts with the
//! Manager's API path (`/ovirt-engine/api`, followed by `/`, `?`, `;`, `#` or the end) gets the
//! public API path instead (`/east/ovirt-engine/api`); anything else passes unchanged.
//!
//! Values arrive in pieces (chunk boundaries fall anywhere), so the rule is applied byte by byte:
//! at most `from.len()` bytes are held back while they still match.

/// What to replace with what: the Manager's API path and the public one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub from: Vec<u8>,
    pub to: Vec<u8>,
}

/// The rewriting of one href value in progress, fed in pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PrefixMatch {
    /// Bytes of the value seen so far that match `from` (not yet written).
    held: usize,
    state: Match,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// Still comparing with `from`.
    Prefix,
    /// `from` matched whole; the next byte decides.
    Boundary,
    /// Decided: the rest passes unchanged.
    Done,
}

impl Default for PrefixMatch {
    fn default() -> PrefixMatch {
        PrefixMatch::new()
    }
}

impl PrefixMatch {
    /// The start of a value.
    pub(crate) const fn new() -> PrefixMatch {
        PrefixMatch {
            held: 0,
            state: Match::Prefix,
        }
    }

    /// Feeds bytes of the value (never its closing delimiter).
    pub(crate) fn feed(&mut self, rule: &Rule, bytes: &[u8], out: &mut Vec<u8>) {
        let mut rest = bytes;
        while let Some((&b, tail)) = rest.split_first() {
            match self.state {
                Match::Done => {
                    out.extend_from_slice(rest);
                    return;
                }
                Match::Prefix => {
                    if b == rule.from[self.held] {
                        self.held += 1;
                        if self.held == rule.from.len() {
                            self.state = Match::Boundary;
                        }
                    } else {
                        out.extend_from_slice(&rule.from[..self.held]);
                        out.push(b);
                        self.state = Match::Done;
                    }
                }
                Match::Boundary => {
                    let prefix = if matches!(b, b'/' | b'?' | b';' | b'#') {
                        &rule.to
                    } else {
                        &rule.from
                    };
                    out.extend_from_slice(prefix);
                    out.push(b);
                    self.state = Match::Done;
                }
            }
            rest = tail;
        }
    }

    /// The value ended: writes what is held.
    pub(crate) fn finish(&mut self, rule: &Rule, out: &mut Vec<u8>) {
        match self.state {
            Match::Prefix => out.extend_from_slice(&rule.from[..self.held]),
            // The whole value is the API path itself.
            Match::Boundary => out.extend_from_slice(&rule.to),
            Match::Done => {}
        }
        *self = PrefixMatch::new();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn east() -> Rule {
        Rule {
            from: b"/ovirt-engine/api".to_vec(),
            to: b"/east/ovirt-engine/api".to_vec(),
        }
    }

    fn rewrite(value: &str) -> String {
        let rule = east();
        let mut out = Vec::new();
        let mut value_match = PrefixMatch::new();
        for b in value.as_bytes() {
            value_match.feed(&rule, std::slice::from_ref(b), &mut out);
        }
        value_match.finish(&rule, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// The API path followed by a boundary, or alone, gets the public path.
    #[test]
    fn api_paths_are_rewritten() {
        assert_eq!(rewrite("/ovirt-engine/api/vms/1"), "/east/ovirt-engine/api/vms/1");
        assert_eq!(
            rewrite("/ovirt-engine/api/v4/vms"),
            "/east/ovirt-engine/api/v4/vms"
        );
        assert_eq!(rewrite("/ovirt-engine/api"), "/east/ovirt-engine/api");
        assert_eq!(
            rewrite("/ovirt-engine/api/events;from={event_id}?search={query}"),
            "/east/ovirt-engine/api/events;from={event_id}?search={query}"
        );
    }

    /// Lookalikes and other values are left exactly as they were.
    #[test]
    fn other_values_pass() {
        for value in [
            "/ovirt-engine/apis",
            "/ovirt-engine/ap",
            "https://engine/ovirt-engine/api/vms",
            "",
            "/ovirt-engine/apidoc#x",
            "vms/1",
        ] {
            assert_eq!(rewrite(value), value);
        }
    }
}
