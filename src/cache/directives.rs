//! Cache-Control and Pragma directives, read one way for requests and answers (RFC 9111,
//! section 5.2): comma-separated, names without case, an argument as a token or a quoted string
//! (whose commas do not separate directives).

use http::header::{HeaderMap, HeaderName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Directive {
    /// Lower-cased.
    pub name: String,
    /// Unquoted; `None` for a directive without `=`.
    pub argument: Option<String>,
}

impl Directive {
    pub(super) fn is(&self, name: &str) -> bool {
        self.name == name
    }
}

/// The directives of every `name` header, in order; values that are not text are skipped.
pub(super) fn directives(headers: &HeaderMap, name: &HeaderName) -> Vec<Directive> {
    let mut all = Vec::new();
    for value in headers.get_all(name).iter().filter_map(|v| v.to_str().ok()) {
        parse(value, &mut all);
    }
    all
}

fn parse(value: &str, into: &mut Vec<Directive>) {
    let mut rest = value;
    while !rest.is_empty() {
        let end = rest.find([',', '=']).unwrap_or(rest.len());
        let name = rest[..end].trim().to_ascii_lowercase();
        rest = &rest[end..];
        let mut argument = None;
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (text, remainder) = match after.strip_prefix('"') {
                Some(quoted) => unquote(quoted),
                None => {
                    let end = after.find(',').unwrap_or(after.len());
                    (after[..end].trim_end().to_owned(), &after[end..])
                }
            };
            argument = Some(text);
            rest = remainder;
            // Anything between a closing quote and the next comma is not part of a directive.
            rest = &rest[rest.find(',').unwrap_or(rest.len())..];
        }
        rest = rest.strip_prefix(',').unwrap_or(rest);
        if !name.is_empty() {
            into.push(Directive { name, argument });
        }
    }
}

/// A quoted string's text (after its opening quote) and what follows its closing quote; an
/// unterminated string runs to the end.
fn unquote(quoted: &str) -> (String, &str) {
    let mut text = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return (text, &quoted[at + 1..]),
            '\\' => text.extend(chars.next().map(|(_, c)| c)),
            c => text.push(c),
        }
    }
    (text, "")
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use http::header::CACHE_CONTROL;

    use super::*;

    fn read(values: &[&str]) -> Vec<(String, Option<String>)> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        }
        directives(&headers, &CACHE_CONTROL)
            .into_iter()
            .map(|d| (d.name, d.argument))
            .collect()
    }

    fn d(name: &str, argument: Option<&str>) -> (String, Option<String>) {
        (name.to_owned(), argument.map(str::to_owned))
    }

    /// Names without case, arguments as tokens or quoted strings, over several headers.
    #[test]
    fn directives_are_read_as_rfc_9111_writes_them() {
        assert_eq!(
            read(&["max-age=5, No-Store", "private=\"set-cookie, x\" , no-cache"]),
            [
                d("max-age", Some("5")),
                d("no-store", None),
                d("private", Some("set-cookie, x")),
                d("no-cache", None),
            ]
        );
        assert_eq!(read(&[" , max-age = 0 ,,"]), [d("max-age", Some("0"))]);
        assert_eq!(read(&["a=\"q\\\"x"]), [d("a", Some("q\"x"))]);
    }
}
