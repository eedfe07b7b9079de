//! The clauses of a search that span the whole result, which the merged view applies itself
//! (docs/federation.md, "Listings"): the trailing `sortby FIELD [asc|desc]` and `page N` of the
//! engine's search language (ovirt-engine `searchbackend/SyntaxChecker.java`: keywords outside
//! quotes, in either order, after the conditions). The conditions are each member's to apply.

use std::ops::Range;

/// A search's text with its `sortby` and `page` clauses found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Clauses {
    text: String,
    /// The field (lower case) and whether descending.
    pub sortby: Option<(String, bool)>,
    /// Where the `sortby` clause is in the text.
    sortby_at: Option<Range<usize>>,
    /// `page N`, 1-based, and where the clause is in the text.
    pub page: Option<(u64, Range<usize>)>,
}

impl Clauses {
    /// The clauses of `text`; an error, for a 400, when one is malformed.
    pub(crate) fn parse(text: &str) -> Result<Clauses, String> {
        let tokens = tokens(text);
        let word = |i: usize| tokens.get(i).map(|r| text[r.clone()].to_ascii_lowercase());
        let mut clauses = Clauses {
            text: text.to_owned(),
            sortby: None,
            sortby_at: None,
            page: None,
        };
        let mut i = 0;
        while i < tokens.len() {
            match word(i).as_deref() {
                Some("sortby") => {
                    let Some(field) = word(i + 1) else {
                        return Err("`sortby` in the search names no field".into());
                    };
                    let direction = word(i + 2).filter(|w| w == "asc" || w == "desc");
                    let last = if direction.is_some() { i + 2 } else { i + 1 };
                    clauses.sortby = Some((field, direction.as_deref() == Some("desc")));
                    clauses.sortby_at = Some(tokens[i].start..tokens[last].end);
                    i = last + 1;
                }
                Some("page") => {
                    let number = word(i + 1).and_then(|n| n.parse::<u64>().ok()).filter(|&n| n > 0);
                    let Some(number) = number else {
                        return Err("`page` in the search needs a positive whole number".into());
                    };
                    clauses.page = Some((number, tokens[i].start..tokens[i + 1].end));
                    i += 2;
                }
                _ => i += 1,
            }
        }
        Ok(clauses)
    }

    /// The whole search.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The search without its `page` clause: what each member is asked for, from its first item.
    pub(crate) fn without_page(&self) -> String {
        self.without(&[self.page.as_ref().map(|(_, at)| at.clone())])
    }

    /// The conditions alone, without `sortby` and `page`.
    pub(crate) fn conditions(&self) -> String {
        self.without(&[
            self.page.as_ref().map(|(_, at)| at.clone()),
            self.sortby_at.clone(),
        ])
    }

    fn without(&self, clauses: &[Option<Range<usize>>]) -> String {
        let mut cut: Vec<&Range<usize>> = clauses.iter().flatten().collect();
        cut.sort_by_key(|r| r.start);
        let (mut kept, mut from) = (Vec::new(), 0);
        for range in cut {
            kept.push(self.text[from..range.start].trim());
            from = range.end;
        }
        kept.push(self.text[from..].trim());
        kept.retain(|part| !part.is_empty());
        kept.join(" ")
    }
}

/// The byte ranges of a search's words: runs without whitespace, where whitespace inside double
/// quotes belongs to the word (`name="my vm"` is one word).
fn tokens(text: &str) -> Vec<Range<usize>> {
    let mut tokens = Vec::new();
    let (mut start, mut quoted) = (None, false);
    for (at, c) in text.char_indices() {
        if c.is_whitespace() && !quoted {
            if let Some(s) = start.take() {
                tokens.push(s..at);
            }
            continue;
        }
        start.get_or_insert(at);
        if c == '"' {
            quoted = !quoted;
        }
    }
    if let Some(s) = start {
        tokens.push(s..text.len());
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clauses are keywords outside quotes, in either order, in any case.
    #[test]
    fn clauses() {
        let c = Clauses::parse("name=a* SortBy Name DESC page 3").unwrap();
        assert_eq!(c.sortby, Some(("name".into(), true)));
        assert_eq!(c.page.as_ref().map(|p| p.0), Some(3));
        assert_eq!(c.without_page(), "name=a* SortBy Name DESC");
        assert_eq!(c.conditions(), "name=a*");
        let c = Clauses::parse("page 2 sortby name").unwrap();
        assert_eq!(c.sortby, Some(("name".into(), false)));
        assert_eq!(c.without_page(), "sortby name");
        assert_eq!(c.conditions(), "");
        let c = Clauses::parse("type=842 sortby time asc and x").unwrap();
        assert_eq!(c.conditions(), "type=842 and x");
        let c = Clauses::parse("name=\"my page 2\" and status=up").unwrap();
        assert_eq!((c.sortby, c.page), (None, None));
        assert_eq!(Clauses::parse("page 2").unwrap().without_page(), "");
        assert!(Clauses::parse("page two").is_err());
        assert!(Clauses::parse("page 0").is_err());
        assert!(Clauses::parse("name=a sortby").is_err());
    }
}
