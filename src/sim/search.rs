//! The simulator's `?search=` query language: parsing, matching entities, and ordering values for `sortby`.
//!
//! This is a subset of the oVirt Engine search language. It accepts an optional leading `Type:` prefix
//! (ignored), conditions `field OP value` with `=`, `!=`, `<`, `>`, `<=`, `>=`, `*` wildcards in `=` and
//! `!=` values (quoted or not), double-quoted values (which may contain spaces), `and` (or plain
//! whitespace) binding tighter than `or`, and a trailing `sortby FIELD [asc|desc]` and `page N` in either
//! order. Keywords and field names are case-insensitive; values compare case-insensitively unless the
//! caller asks otherwise. The caller URL-decodes the text and decides which field names an entity type
//! knows ([`Search::fields`]).
//!
//! Dotted fields (`Templates: vm.name=x`) are names like any other, which the caller knows or
//! refuses; not supported: cross-entity fields in general (`Vms: cluster.name=x`),
//! parentheses, dates and relative times (`Events: time > yesterday`), unit suffixes (`memory > 1GB`),
//! escapes inside quoted values, and keywords as bare values (quote them: `name="page"`).

use std::cmp::Ordering;
use std::fmt;

/// A search that failed to parse; the message names the offending token and suits a 400 fault detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SearchError(pub String);

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid search: {}", self.0)
    }
}

impl std::error::Error for SearchError {}

fn fail<T>(message: String) -> Result<T, SearchError> {
    Err(SearchError(message))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// Operator spellings, two-character ones first so that `<=` is not read as `<` then `=`.
const OPERATORS: [(&str, Op); 6] = [
    ("!=", Op::Ne),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("=", Op::Eq),
    ("<", Op::Lt),
    (">", Op::Gt),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(&'static str, Op),
}

/// How an error message shows a token, or the end of the text when there is none.
fn describe(token: Option<&Token>) -> String {
    match token {
        Some(Token::Word(word)) => format!("`{word}`"),
        Some(Token::Quoted(value)) => format!("`\"{value}\"`"),
        Some(Token::Op(symbol, _)) => format!("`{symbol}`"),
        None => "the end of the search".to_owned(),
    }
}

/// One `field OP value` condition; `field` is lower-cased.
#[derive(Debug, Clone)]
struct Condition {
    field: String,
    op: Op,
    value: String,
}

impl Condition {
    /// A field may have several values (the data centers a template is in): `!=` holds when
    /// none is equal, the other operators when one compares so.
    fn matches(&self, field: &dyn Fn(&str) -> Vec<String>, case_sensitive: bool) -> bool {
        let values = field(&self.field);
        if self.op == Op::Ne {
            return !values.is_empty()
                && !values
                    .iter()
                    .any(|actual| text_matches(actual, &self.value, case_sensitive));
        }
        values.iter().any(|actual| {
            let ordering = || compare_values(actual, &self.value, case_sensitive);
            match self.op {
                Op::Eq => text_matches(actual, &self.value, case_sensitive),
                Op::Ne => unreachable!("answered above"),
                Op::Lt => ordering().is_lt(),
                Op::Gt => ordering().is_gt(),
                Op::Le => ordering().is_le(),
                Op::Ge => ordering().is_ge(),
            }
        })
    }
}

/// A parsed search: conditions as an `or` of `and` groups, plus the optional sort and page.
#[derive(Debug, Clone, Default)]
pub(super) struct Search {
    any_of: Vec<Vec<Condition>>,
    sort: Option<(String, bool)>,
    page: Option<usize>,
}

impl Search {
    /// Parses URL-decoded search text; an empty or whitespace-only text matches everything.
    pub(super) fn parse(text: &str) -> Result<Search, SearchError> {
        let mut parser = Parser {
            tokens: tokenize(strip_type_prefix(text))?,
            pos: 0,
        };
        let mut search = Search::default();
        if !parser.at_tail() {
            search.any_of.push(parser.conjunction()?);
            while parser.at_keyword("or") {
                parser.pos += 1;
                parser.expect_condition_after("or")?;
                search.any_of.push(parser.conjunction()?);
            }
        }
        parser.tail(&mut search)?;
        Ok(search)
    }

    /// The field names the conditions and sortby refer to, lower-cased, so the caller can reject unknown
    /// ones. Each name appears once, in order of first appearance.
    pub(super) fn fields(&self) -> Vec<&str> {
        let conditions = self
            .any_of
            .iter()
            .flatten()
            .map(|condition| condition.field.as_str());
        let mut names: Vec<&str> = Vec::new();
        for name in conditions.chain(self.sort.as_ref().map(|(field, _)| field.as_str())) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// Whether an entity matches. `field` returns the entity's values for a (lower-case) field name, none
    /// when the entity has no such value (a condition on a missing value is false, for `!=` too).
    pub(super) fn matches(&self, field: &dyn Fn(&str) -> Vec<String>, case_sensitive: bool) -> bool {
        self.any_of.is_empty()
            || self
                .any_of
                .iter()
                .any(|all| all.iter().all(|c| c.matches(field, case_sensitive)))
    }

    /// `sortby` field (lower-case) and whether descending.
    pub(super) fn sort(&self) -> Option<(&str, bool)> {
        self.sort
            .as_ref()
            .map(|(field, descending)| (field.as_str(), *descending))
    }

    /// `page N`, 1-based.
    pub(super) fn page(&self) -> Option<usize> {
        self.page
    }
}

/// Compares two field values for sorting: numerically when both parse as integers, otherwise as strings
/// (case-insensitively unless case_sensitive).
pub(super) fn compare_values(a: &str, b: &str, case_sensitive: bool) -> Ordering {
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ if case_sensitive => a.cmp(b),
        _ => a.to_lowercase().cmp(&b.to_lowercase()),
    }
}

/// `=` semantics: a full-string glob match when `pattern` has a `*`, plain equality otherwise.
fn text_matches(text: &str, pattern: &str, case_sensitive: bool) -> bool {
    let (text, pattern) = match case_sensitive {
        true => (text.to_owned(), pattern.to_owned()),
        false => (text.to_lowercase(), pattern.to_lowercase()),
    };
    if pattern.contains('*') {
        glob_matches(&text, &pattern)
    } else {
        text == pattern
    }
}

/// Glob match where `*` is any run of characters; backtracks only to the last `*`, so O(text × pattern).
fn glob_matches(text: &str, pattern: &str) -> bool {
    let (text, pattern): (Vec<char>, Vec<char>) = (text.chars().collect(), pattern.chars().collect());
    let (mut t, mut p) = (0, 0);
    // Pattern position just after the last `*` seen, and the text position that `*` currently stops at.
    let mut last_star: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        match pattern.get(p) {
            Some('*') => {
                p += 1;
                last_star = Some((p, t));
            }
            Some(&want) if want == c => (p, t) = (p + 1, t + 1),
            _ => match last_star {
                Some((star_p, star_t)) => {
                    (p, t) = (star_p, star_t + 1);
                    last_star = Some((star_p, t));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Drops a leading `Word:` entity-type prefix such as `Vms:`.
fn strip_type_prefix(text: &str) -> &str {
    let trimmed = text.trim_start();
    let end = trimmed
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(trimmed.len());
    match trimmed[end..].strip_prefix(':') {
        Some(rest) if end > 0 => rest,
        _ => text,
    }
}

/// Splits text into words, double-quoted values and operators; whitespace only separates tokens.
fn tokenize(mut rest: &str) -> Result<Vec<Token>, SearchError> {
    let op_at = |s: &str| OPERATORS.into_iter().find(|(symbol, _)| s.starts_with(symbol));
    let mut tokens = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(tokens);
        } else if let Some(quoted) = rest.strip_prefix('"') {
            let Some(end) = quoted.find('"') else {
                return fail(format!("unterminated quote at `{rest}`"));
            };
            tokens.push(Token::Quoted(quoted[..end].to_owned()));
            rest = &quoted[end + 1..];
        } else if let Some((symbol, op)) = op_at(rest) {
            tokens.push(Token::Op(symbol, op));
            rest = &rest[symbol.len()..];
        } else {
            let is_end =
                |(i, c): &(usize, char)| c.is_whitespace() || *c == '"' || op_at(&rest[*i..]).is_some();
            let end = rest.char_indices().find(is_end).map_or(rest.len(), |(i, _)| i);
            tokens.push(Token::Word(rest[..end].to_owned()));
            rest = &rest[end..];
        }
    }
}

/// Field names: letters, digits, `_` and `-`, or two such joined by a dot (`vm.name`); which
/// ones an entity type knows is the caller's to say.
fn is_field_name(word: &str) -> bool {
    let plain =
        |part: &str| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    match word.split_once('.') {
        Some((entity, field)) => plain(entity) && plain(field),
        None => plain(word),
    }
}

/// Recursive-descent parser over the tokens: `or` of `and` groups of conditions, then the tail.
struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        self.pos += 1;
        self.tokens.get(self.pos - 1).cloned()
    }

    /// Whether the next token is `keyword`; a word followed by an operator is a field name, not a keyword.
    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
            && !matches!(self.tokens.get(self.pos + 1), Some(Token::Op(..)))
    }

    fn at_tail(&self) -> bool {
        self.pos >= self.tokens.len() || self.at_keyword("sortby") || self.at_keyword("page")
    }

    fn expect_condition_after(&self, keyword: &str) -> Result<(), SearchError> {
        if self.at_tail() || self.at_keyword("and") || self.at_keyword("or") {
            let found = describe(self.tokens.get(self.pos));
            return fail(format!(
                "dangling `{keyword}`: expected a condition, found {found}"
            ));
        }
        Ok(())
    }

    /// Conditions joined by `and` or whitespace, up to an `or`, `sortby`, `page` or the end.
    fn conjunction(&mut self) -> Result<Vec<Condition>, SearchError> {
        let mut conditions = vec![self.condition()?];
        loop {
            if self.at_keyword("and") {
                self.pos += 1;
                self.expect_condition_after("and")?;
            } else if self.at_tail() || self.at_keyword("or") {
                return Ok(conditions);
            }
            conditions.push(self.condition()?);
        }
    }

    fn condition(&mut self) -> Result<Condition, SearchError> {
        if let Some(keyword) = ["and", "or"].into_iter().find(|keyword| self.at_keyword(keyword)) {
            return fail(format!("dangling `{keyword}`: expected a condition before it"));
        }
        let field = match self.next() {
            Some(Token::Word(word)) if is_field_name(&word) => word.to_lowercase(),
            Some(Token::Word(word)) => {
                return fail(format!("unsupported field `{word}`: a name or entity.name"));
            }
            other => {
                return fail(format!(
                    "expected a field name, found {}",
                    describe(other.as_ref())
                ));
            }
        };
        let (symbol, op) = match self.next() {
            Some(Token::Op(symbol, op)) => (symbol, op),
            other => {
                let found = describe(other.as_ref());
                return fail(format!(
                    "condition `{field}` has no operator (= != < > <= >=), found {found}"
                ));
            }
        };
        match self.next() {
            Some(Token::Word(value) | Token::Quoted(value)) => Ok(Condition { field, op, value }),
            other => {
                let found = describe(other.as_ref());
                fail(format!(
                    "operator `{symbol}` after `{field}` has no value, found {found}"
                ))
            }
        }
    }

    /// `sortby FIELD [asc|desc]` and `page N`, each at most once, in either order, then the end.
    fn tail(&mut self, search: &mut Search) -> Result<(), SearchError> {
        while let Some(token) = self.next() {
            let keyword = match &token {
                Token::Word(word) => word.to_ascii_lowercase(),
                _ => String::new(),
            };
            let argument = self.next();
            let found = describe(argument.as_ref());
            match (keyword.as_str(), argument) {
                ("sortby", Some(Token::Word(field))) if search.sort.is_none() && is_field_name(&field) => {
                    let descending = self.at_keyword("desc");
                    if descending || self.at_keyword("asc") {
                        self.pos += 1;
                    }
                    search.sort = Some((field.to_lowercase(), descending));
                }
                ("sortby", _) if search.sort.is_none() => {
                    return fail(format!("`sortby` needs a field name, found {found}"));
                }
                ("page", argument) if search.page.is_none() => {
                    let page = match argument {
                        Some(Token::Word(number)) => number.parse::<usize>().ok().filter(|&n| n >= 1),
                        _ => None,
                    };
                    let Some(page) = page else {
                        return fail(format!("`page` needs a positive integer, found {found}"));
                    };
                    search.page = Some(page);
                }
                _ => return fail(format!("unexpected {}", describe(Some(&token)))),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: &[(&str, &str)] = &[("name", "vm-0001"), ("status", "up"), ("memory", "2048")];

    fn parse(text: &str) -> Search {
        Search::parse(text).expect("search parses")
    }

    /// Whether `search` matches the entity whose field values are `pairs`.
    fn hit(search: &str, pairs: &[(&str, &str)], case_sensitive: bool) -> bool {
        let lookup = |name: &str| {
            pairs
                .iter()
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
                .collect()
        };
        parse(search).matches(&lookup, case_sensitive)
    }

    fn sort_and_page(text: &str) -> (Option<(String, bool)>, Option<usize>) {
        let search = parse(text);
        (
            search
                .sort()
                .map(|(field, descending)| (field.to_owned(), descending)),
            search.page(),
        )
    }

    fn error(search: &str) -> String {
        Search::parse(search).expect_err("search is rejected").to_string()
    }

    /// An empty search matches everything and has no fields, sort or page.
    #[test]
    fn empty_search_matches_everything() {
        assert!(parse("").matches(&|_| Vec::new(), false) && parse("").fields().is_empty());
        assert_eq!(sort_and_page(""), (None, None));
    }

    /// A whitespace-only search matches everything.
    #[test]
    fn whitespace_only_search_matches_everything() {
        assert!(hit("  \t ", VM, false));
    }

    /// Equality ignores case unless case-sensitive; field names fold too.
    #[test]
    fn equality_case_insensitive_by_default() {
        assert!(hit("NAME=VM-0001", VM, false) && hit("name=vm-0001", VM, true));
        assert!(!hit("name=VM-0001", VM, true));
    }

    /// A value without a wildcard must equal the whole field, not a prefix of it.
    #[test]
    fn equality_without_wildcard_is_whole_value() {
        assert!(!hit("name=vm-000", VM, false));
    }

    /// A trailing wildcard matches a prefix, including an empty remainder.
    #[test]
    fn wildcard_at_end() {
        assert!(hit("name=vm-0000*", &[("name", "vm-00001")], false) && hit("name=vm-0001*", VM, false));
        assert!(!hit("name=vm-0000*", VM, false));
    }

    /// A leading wildcard matches a suffix.
    #[test]
    fn wildcard_at_start() {
        assert!(hit("name=*0001", VM, false) && !hit("name=*0002", VM, false));
    }

    /// A middle wildcard matches any run between fixed ends; the match spans the whole string.
    #[test]
    fn wildcard_in_middle() {
        assert!(hit("name=v*1", VM, false));
        assert!(!hit("name=v*0", VM, false) && !hit("name=m*1", VM, false));
    }

    /// Wildcards honour the case-sensitive flag.
    #[test]
    fn wildcard_case_sensitivity() {
        assert!(hit("name=VM*", VM, false) && !hit("name=VM*", VM, true));
    }

    /// Many stars against a long text finish quickly (no exponential backtracking).
    #[test]
    fn wildcard_pathological_pattern() {
        let (text, pattern) = ("a".repeat(5000), format!("{}b", "a*".repeat(30)));
        assert!(!glob_matches(&text, &pattern) && glob_matches(&format!("{text}b"), &pattern));
    }

    /// `!=` negates equality and glob matching.
    #[test]
    fn not_equal() {
        assert!(hit("status!=down", VM, false));
        assert!(!hit("status!=UP", VM, false) && !hit("name!=vm*", VM, false));
    }

    /// A field with several values matches `=` when one does, `!=` when none does.
    #[test]
    fn several_values_match_any() {
        let blank = &[("datacenter", "dc-1"), ("datacenter", "dc-2")];
        assert!(hit("datacenter=dc-2", blank, false) && !hit("datacenter=dc-3", blank, false));
        assert!(!hit("datacenter!=dc-2", blank, false) && hit("datacenter!=dc-3", blank, false));
    }

    /// A condition on a missing field is false, for `!=` too.
    #[test]
    fn missing_field_never_matches() {
        assert!(!hit("host=h1", VM, false) && !hit("host!=h1", VM, false));
    }

    /// Ordering operators compare integers numerically, on both sides of each boundary.
    #[test]
    fn numeric_ordering_boundaries() {
        assert!(hit("memory>2047", VM, false) && !hit("memory>2048", VM, false));
        assert!(hit("memory>=2048", VM, false) && !hit("memory>=2049", VM, false));
        assert!(hit("memory<2049", VM, false) && !hit("memory<2048", VM, false));
        assert!(hit("memory<=2048", VM, false) && !hit("memory<=2047", VM, false));
        assert!(hit("memory>999", VM, false));
    }

    /// Ordering operators fall back to case-folded string comparison for non-integers.
    #[test]
    fn string_ordering() {
        assert!(hit("name>VM-0000", VM, false) && hit("name<z", VM, false));
        assert!(!hit("name>VM-0000", &[("name", "vm-0000")], false));
    }

    /// Whitespace between conditions means `and`.
    #[test]
    fn whitespace_means_and() {
        assert!(hit("name=vm* status=up", VM, false) && !hit("name=vm* status=down", VM, false));
    }

    /// `and` requires every condition.
    #[test]
    fn and_requires_all() {
        assert!(hit(
            "name=vm-0000* and status=down",
            &[("name", "vm-00007"), ("status", "down")],
            false
        ));
        assert!(!hit(
            "name=vm-0000* and status=down",
            &[("name", "vm-00007"), ("status", "up")],
            false
        ));
    }

    /// `or` requires any condition.
    #[test]
    fn or_requires_any() {
        assert!(
            hit("status=up or status=suspended", VM, false)
                && hit("status=suspended or status=up", VM, false)
        );
        assert!(!hit("status=down or status=suspended", VM, false));
    }

    /// `and` binds tighter than `or`: `a or b and c` is `a or (b and c)`.
    #[test]
    fn and_binds_tighter_than_or() {
        assert!(hit("status=up or name=x and memory=1", VM, false));
        assert!(!hit("status=down or name=vm* and memory=1", VM, false));
        assert!(hit("status=down or name=vm* and memory=2048", VM, false));
    }

    /// Double-quoted values may contain spaces and keywords, and keep wildcards.
    #[test]
    fn quoted_value_with_spaces() {
        let entity = &[("name", "my vm or page")];
        assert!(
            hit("name=\"my vm or page\"", entity, false) && hit("name = \"my*\" sortby name", entity, false)
        );
    }

    /// Spaces around operators are allowed.
    #[test]
    fn spaces_around_operator() {
        assert!(hit("status = up", VM, false));
    }

    /// Keywords are case-insensitive.
    #[test]
    fn keywords_case_insensitive() {
        let parsed = sort_and_page("name=a AND status=up OR status=down SORTBY Name DESC PAGE 2");
        assert_eq!(parsed, (Some(("name".into(), true)), Some(2)));
    }

    /// `sortby` alone sorts ascending; `asc` is accepted.
    #[test]
    fn sortby_defaults_to_ascending() {
        assert_eq!(sort_and_page("sortby name"), (Some(("name".into(), false)), None));
        assert_eq!(
            sort_and_page("sortby name asc"),
            (Some(("name".into(), false)), None)
        );
    }

    /// `sortby name desc` sorts descending and, with no conditions, matches everything.
    #[test]
    fn sortby_descending() {
        assert_eq!(
            sort_and_page("sortby name desc"),
            (Some(("name".into(), true)), None)
        );
        assert!(parse("sortby name desc").matches(&|_| Vec::new(), false));
    }

    /// `sortby` and `page` may come in either order after the conditions.
    #[test]
    fn sortby_and_page_in_either_order() {
        for text in ["name=vm* sortby name page 2", "name=vm* page 2 sortby name"] {
            assert_eq!(sort_and_page(text), (Some(("name".into(), false)), Some(2)));
        }
    }

    /// `page 1` is the smallest page accepted.
    #[test]
    fn page_one_accepted() {
        assert_eq!(parse("page 1").page(), Some(1));
    }

    /// `page 0` is rejected, naming the token.
    #[test]
    fn page_zero_rejected() {
        assert!(error("page 0").contains("`page` needs a positive integer, found `0`"));
    }

    /// `page` needs a number.
    #[test]
    fn page_without_number_rejected() {
        assert!(
            error("name=x page").contains("the end of the search") && error("page two").contains("`two`")
        );
    }

    /// `page` or `sortby` given twice is rejected.
    #[test]
    fn duplicate_page_or_sortby_rejected() {
        assert!(error("page 1 page 2").contains("unexpected `page`"));
        assert!(error("sortby name sortby id").contains("unexpected `sortby`"));
    }

    /// `sortby` needs a field.
    #[test]
    fn sortby_without_field_rejected() {
        assert!(error("name=x sortby").contains("`sortby` needs a field"));
    }

    /// A leading `Vms:` type prefix is ignored, with or without a space after it.
    #[test]
    fn type_prefix_ignored() {
        assert!(hit("Vms: name=vm-0001", VM, false) && hit("Vms:status=up", VM, false));
    }

    /// A value with a colon is not mistaken for a type prefix.
    #[test]
    fn colon_in_value_kept() {
        assert!(hit("name=a:b", &[("name", "a:b")], false));
    }

    /// An unterminated quote is rejected.
    #[test]
    fn unterminated_quote_rejected() {
        assert!(error("name=\"my vm").contains("unterminated quote at `\"my vm`"));
    }

    /// An operator without a value is rejected.
    #[test]
    fn operator_without_value_rejected() {
        assert!(error("name=").contains("`=` after `name` has no value") && error("name=<x").contains("`<`"));
    }

    /// A condition without an operator is rejected.
    #[test]
    fn condition_without_operator_rejected() {
        assert!(error("name").contains("`name` has no operator"));
        assert!(error("name=x status").contains("`status` has no operator"));
    }

    /// Tokens after `sortby`/`page` that are not part of them are rejected.
    #[test]
    fn unknown_trailing_tokens_rejected() {
        assert!(error("sortby name desc foo").contains("unexpected `foo`"));
        assert!(error("page 2 name=x").contains("unexpected `name`"));
    }

    /// A leading, trailing or doubled `and`/`or` is rejected.
    #[test]
    fn dangling_and_or_rejected() {
        assert!(
            error("name=x and").contains("dangling `and`") && error("or name=x").contains("dangling `or`")
        );
        assert!(error("name=x or and status=up").contains("dangling `or`"));
        assert!(error("name=x and sortby name").contains("dangling `and`"));
    }

    /// One dot joins an entity and its field; the caller decides whether the type knows it.
    #[test]
    fn dotted_field_names() {
        assert_eq!(parse("Templates: vm.name=x").fields(), ["vm.name"]);
        assert!(error("Vms: cluster.dc.name=x").contains("`cluster.dc.name`"));
        assert!(error("Vms: .name=x").contains("`.name`"));
    }

    /// `fields` lists condition and sortby fields lower-cased, once each, in order of appearance.
    #[test]
    fn fields_lowercased_and_deduplicated() {
        assert_eq!(
            parse("Name=a or NAME=b and Status=up sortby Memory").fields(),
            ["name", "status", "memory"]
        );
    }

    /// A keyword followed by an operator is a field name.
    #[test]
    fn keyword_as_field_name() {
        assert_eq!(parse("page=3").fields(), ["page"]);
    }

    /// `compare_values` is numeric for integers, else string, case-folded unless case-sensitive.
    #[test]
    fn compare_values_numeric_then_string() {
        assert_eq!(compare_values("9", "10", false), Ordering::Less);
        assert_eq!(compare_values("-5", "3", false), Ordering::Less);
        assert_eq!(compare_values("9a", "10a", false), Ordering::Greater);
        assert_eq!(compare_values("B", "a", false), Ordering::Greater);
        assert_eq!(compare_values("B", "a", true), Ordering::Less);
        assert_eq!(compare_values("ABC", "abc", false), Ordering::Equal);
    }
}
