//! Keeps the Managers' tokens away from clients (docs/security.md, "Manager tokens").
//!
//! The upstream token a request carried must never reach its client: whoever holds it can call
//! the Manager directly, where no policy, limit or audit of the gateway applies. Two layers:
//!
//! - console descriptors, the one answer of the engine known to embed the token (`console.rs`),
//!   are handled by one rule before the request leaves: refused, stripped or passed knowingly;
//! - every other answer body is scanned as it streams ([`guard`]) for the exact bytes of that
//!   token, percent-encoded and JSON-escaped too. A match is never forwarded: the bytes that could
//!   be the start of a token are held back until the next chunk shows they are not, and a match
//!   cuts the answer (the connection is reset, or the HTTP/2 stream), with a WARN naming the
//!   request and a metric. Compressed answers are decoded into a shadow copy that is scanned and
//!   dropped; the compressed bytes pass as they came.
//!
//! This module never logs or returns the token, only the fact that it was found.

pub(crate) mod console;

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use aho_corasick::AhoCorasick;
use bytes::{Bytes, BytesMut};
use http::Response;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, ETAG, HeaderValue};
use http_body::{Body, Frame};
use prometheus::IntCounterVec;

use crate::body::{BoxError, GatewayBody};
use crate::compression::Decoder;

/// How the answer of a forwarded request is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shield {
    /// No upstream token of the gateway's went with the request (a passed-through token, which
    /// the client holds already), or a console descriptor with `auth.console_files = "pass"`.
    Off,
    /// Scanned for the token as it streams.
    Scan,
    /// A console descriptor with `auth.console_files = "strip-token"`: read whole (at most
    /// [`DESCRIPTOR_BYTES`]), its token line removed, then scanned like any answer.
    StripConsole,
}

/// The most a console descriptor's answer may hold when its token line is stripped; the
/// engine's are a few kilobytes.
pub(crate) const DESCRIPTOR_BYTES: usize = 1024 * 1024;

/// Why an answer was not forwarded at all (a token in a body cuts the answer instead);
/// pipeline/rescue.rs makes it a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Withheld {
    /// The answer's headers carried the request's upstream token.
    TokenInHeaders { manager: String },
    /// A console descriptor whose token line was to be stripped could not be read.
    UnreadableDescriptor { manager: String, cause: String },
}

/// The answer to a request that carried `token`, guarded as `shield` says.
pub(crate) async fn shield(
    response: Response<GatewayBody>,
    shield: Shield,
    token: Option<&TokenForms>,
    alarm: Alarm,
) -> Result<Response<GatewayBody>, Withheld> {
    let Some(token) = token.filter(|_| shield != Shield::Off) else {
        return Ok(response);
    };
    let mut forms = token.clone();
    let response = match shield {
        Shield::StripConsole => strip_console(response, &alarm).await?,
        _ => response,
    };
    if in_headers(&mut forms, response.headers(), &alarm) {
        return Err(Withheld::TokenInHeaders {
            manager: alarm.manager,
        });
    }
    Ok(guard(response, forms, alarm))
}

/// A console descriptor's answer without its token line.
async fn strip_console(
    response: Response<GatewayBody>,
    alarm: &Alarm,
) -> Result<Response<GatewayBody>, Withheld> {
    use http_body_util::BodyExt;
    let (mut parts, body) = response.into_parts();
    let unreadable = |cause: String| Withheld::UnreadableDescriptor {
        manager: alarm.manager.clone(),
        cause,
    };
    let mut plain = match Decoder::for_response(&parts.headers) {
        Ok(decoder) => decoder,
        Err(_) => {
            return Err(unreadable(
                "the console descriptor came in an unknown encoding".into(),
            ));
        }
    };
    let bytes = http_body_util::Limited::new(body, DESCRIPTOR_BYTES)
        .collect()
        .await
        .map_err(|e| unreadable(format!("reading the console descriptor: {e}")))?
        .to_bytes();
    let text = match plain.take() {
        Some(mut decoder) => {
            let decoding = |e: std::io::Error| unreadable(format!("decoding the console descriptor: {e}"));
            let mut text = Vec::new();
            decoder
                .steps(&bytes, |plain| {
                    if text.len() <= DESCRIPTOR_BYTES {
                        text.extend_from_slice(plain);
                    }
                })
                .map_err(decoding)?;
            text.extend(decoder.finish().map_err(decoding)?);
            if text.len() > DESCRIPTOR_BYTES {
                return Err(unreadable(format!(
                    "the console descriptor inflates to more than {DESCRIPTOR_BYTES} bytes"
                )));
            }
            text
        }
        None => bytes.to_vec(),
    };
    let stripped = console::strip_token(&text);
    parts.headers.remove(CONTENT_ENCODING);
    parts.headers.remove(ETAG);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(stripped.len()));
    Ok(Response::from_parts(parts, GatewayBody::full(stripped)))
}

/// The forms in which a token could appear in an answer, ready to search for. Made once per
/// upstream token (building the search is dearer than a whole request: docs/performance.md,
/// "Against nginx") and cloned for each answer, which keeps its own search state.
#[derive(Clone)]
pub struct TokenForms {
    forms: Vec<Vec<u8>>,
    /// How the forms are looked for.
    search: Search,
    /// The longest form's length: how far back a match can start before a chunk.
    longest: usize,
}

/// How a token's forms are found in an answer, cheapest first.
#[derive(Clone)]
enum Search {
    /// The rarest byte of the start the forms share, found with memchr (the fastest SIMD
    /// search: one byte, one compare per vector), each hit checked against the forms. An answer
    /// in which that byte is not rare after all (more than one false hit per
    /// [`BYTES_PER_MISS`] scanned) is searched as `Shared` from then on.
    Rare {
        byte: u8,
        /// Where `byte` sits in every form.
        at: usize,
        shared: memchr::memmem::Finder<'static>,
        misses: usize,
        scanned: usize,
    },
    /// The start every form shares (a base64 token's forms differ only from its first `/`, `+`
    /// or `=`): one SIMD substring search, each hit checked against the forms.
    Shared(memchr::memmem::Finder<'static>),
    /// Forms that share less than [`MIN_COMMON`] bytes, searched for together.
    Any(AhoCorasick),
}

impl TokenForms {
    /// The token as it is, percent-encoded (upper- and lower-case hex) and JSON-escaped.
    pub fn of(token: &[u8]) -> TokenForms {
        let mut forms = vec![
            token.to_vec(),
            percent_encoded(token, b"0123456789ABCDEF"),
            percent_encoded(token, b"0123456789abcdef"),
            json_escaped(token),
        ];
        forms.sort();
        forms.dedup();
        let longest = forms.iter().map(Vec::len).max().unwrap_or(0);
        let shared = &forms[0][..(0..forms[0].len())
            .take_while(|&i| forms.iter().all(|form| form.get(i) == forms[0].get(i)))
            .count()];
        let rarest = (0..shared.len()).min_by_key(|&at| rarity(shared[at]));
        let search = match rarest {
            _ if shared.len() < MIN_COMMON => {
                Search::Any(AhoCorasick::new(&forms).expect("a handful of short patterns"))
            }
            Some(at) if rarity(shared[at]) < usize::MAX => Search::Rare {
                byte: shared[at],
                at,
                shared: memchr::memmem::Finder::new(shared).into_owned(),
                misses: 0,
                scanned: 0,
            },
            _ => Search::Shared(memchr::memmem::Finder::new(shared).into_owned()),
        };
        TokenForms {
            forms,
            search,
            longest,
        }
    }

    fn found_in(&mut self, haystack: &[u8]) -> bool {
        let forms = &self.forms;
        let starts_here = |start: usize| forms.iter().any(|form| haystack[start..].starts_with(form));
        match &mut self.search {
            Search::Rare {
                byte,
                at,
                shared,
                misses,
                scanned,
            } => {
                // A hit before `at` belongs to a token that starts before this haystack: the
                // seam between chunks is searched for those (`across`).
                let found = memchr::memchr_iter(*byte, haystack)
                    .filter(|&hit| hit >= *at)
                    .any(|hit| {
                        let here = starts_here(hit - *at);
                        *misses += usize::from(!here);
                        here
                    });
                *scanned += haystack.len();
                if !found && *misses > MISSES_BEFORE_FALLBACK && *misses * BYTES_PER_MISS > *scanned {
                    self.search = Search::Shared(shared.clone());
                }
                found
            }
            Search::Shared(shared) => shared.find_iter(haystack).any(starts_here),
            Search::Any(any) => any.is_match(haystack),
        }
    }

    /// The length of the longest end of `data` that is the start of some form (and not a whole
    /// one): bytes that may only be forwarded once what follows shows they are not a token.
    fn partial_at_end(&self, data: &[u8]) -> usize {
        let end = &data[data.len() - data.len().min(self.longest.saturating_sub(1))..];
        self.starts(end)
            .find(|&at| {
                let tail = &end[at..];
                self.forms
                    .iter()
                    .any(|form| form.len() > tail.len() && form.starts_with(tail))
            })
            .map_or(0, |at| end.len() - at)
    }

    /// Whether a form starts in `before` and ends in `after`, which follows it: a token split
    /// between two chunks.
    fn across(&self, before: &[u8], after: &[u8]) -> bool {
        self.starts(before).any(|at| {
            let head = &before[at..];
            self.forms.iter().any(|form| {
                form.len() > head.len() && form.starts_with(head) && after.starts_with(&form[head.len()..])
            })
        })
    }

    /// Where in `data` a form could start, first to last: its first byte is there.
    fn starts<'a>(&'a self, data: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        (0..data.len()).filter(|&at| self.forms.iter().any(|form| form.first() == Some(&data[at])))
    }
}

/// How rare a byte of a token is in the engine's answers, rarest first; `usize::MAX` for bytes
/// too common to search for alone. A shared start holds only letters, digits and `-._~` (the
/// bytes every form writes alike): tags, enum values and ids (lower-case hex) are lower case,
/// so upper-case letters are the rare ones, `T` and `Z` least so (dates in xs:dateTime).
fn rarity(byte: u8) -> usize {
    const RAREST_FIRST: &[u8] = b"QJXKVWYFBGHMPUDCLONRIEASZT";
    RAREST_FIRST
        .iter()
        .position(|&rare| rare == byte)
        .unwrap_or(usize::MAX)
}

/// The rare byte's search gives way to the shared start's once it has missed more than this
/// many times and more than once per [`BYTES_PER_MISS`] bytes.
const MISSES_BEFORE_FALLBACK: usize = 64;
const BYTES_PER_MISS: usize = 4096;

/// The shortest shared start searched for alone; shorter ones (a token starting with `/`) make
/// too many candidates, and the forms are searched together instead.
const MIN_COMMON: usize = 8;

/// `%XX` for every byte but the unreserved ones (RFC 3986 section 2.3).
fn percent_encoded(token: &[u8], hex: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(token.len() * 3);
    for &b in token {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', hex[usize::from(b >> 4)], hex[usize::from(b & 15)]]);
        }
    }
    out
}

/// As a JSON string writer may escape it: `/` as `\/`, `"` and `\` with a backslash.
fn json_escaped(token: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(token.len() * 2);
    for &b in token {
        if matches!(b, b'/' | b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// The answer was cut because it carried the upstream token of its request.
#[derive(Debug, thiserror::Error)]
#[error("the Manager's answer carried the request's upstream token; the gateway cut it")]
pub(crate) struct TokenWithheld;

/// The answer came in a coding the gateway cannot decode, so it cannot be scanned: cut.
#[derive(Debug, thiserror::Error)]
#[error("the Manager's answer came in a content coding the gateway cannot scan; the gateway cut it")]
pub(crate) struct Unscannable;

/// Who to tell when a token is found.
pub struct Alarm {
    pub request_id: String,
    pub manager: String,
    /// `gateway_tokens_withheld_total`, by manager (looked up only when raised).
    pub counter: IntCounterVec,
}

impl Alarm {
    fn raise(&self, place: &str) {
        self.counter.with_label_values(&[&self.manager]).inc();
        tracing::warn!(
            request_id = %self.request_id,
            manager = %self.manager,
            place,
            "the Manager's answer carried the request's upstream token: withheld, answer cut"
        );
    }
}

/// Whether any header value of the answer holds the token; raises the alarm when one does.
pub(crate) fn in_headers(forms: &mut TokenForms, headers: &http::HeaderMap, alarm: &Alarm) -> bool {
    let found = headers.values().any(|value| forms.found_in(value.as_bytes()));
    if found {
        alarm.raise("headers");
    }
    found
}

/// The answer with its body scanned as it streams.
pub fn guard(response: Response<GatewayBody>, forms: TokenForms, alarm: Alarm) -> Response<GatewayBody> {
    let (parts, body) = response.into_parts();
    // A coding no decoder here reads cannot be scanned: it is refused at its first byte.
    let decoder = Decoder::for_response(&parts.headers).map_err(|_| ());
    let body = GuardedBody {
        inner: body,
        forms,
        alarm,
        decoder,
        window: Vec::new(),
        held: Held::Nothing,
        after: None,
        done: false,
    };
    Response::from_parts(parts, GatewayBody::new(body))
}

/// Bytes received and not yet forwarded.
enum Held {
    Nothing,
    /// A plain body's last bytes, which could be the start of a token.
    Plain(Bytes),
    /// A compressed body's chunks, whose decoded end could be the start of a token.
    Compressed(Vec<Bytes>),
}

struct GuardedBody {
    inner: GatewayBody,
    forms: TokenForms,
    alarm: Alarm,
    /// `Err` for a coding that cannot be decoded.
    decoder: Result<Option<Decoder>, ()>,
    /// The last plain bytes scanned (fewer than the longest form): where a token split across
    /// chunks is found.
    window: Vec<u8>,
    held: Held,
    /// A trailers frame, sent after what is held.
    after: Option<Frame<Bytes>>,
    done: bool,
}

/// Scans the next plain bytes of an answer, `window` holding the last ones scanned before;
/// returns how many bytes at the end of the plain stream so far could start a token.
fn scan(forms: &mut TokenForms, window: &mut Vec<u8>, plain: &[u8]) -> Result<usize, TokenWithheld> {
    let keep = forms.longest.saturating_sub(1);
    if forms.across(window, plain) || forms.found_in(plain) {
        return Err(TokenWithheld);
    }
    window.extend_from_slice(&plain[plain.len().saturating_sub(keep)..]);
    let excess = window.len().saturating_sub(keep);
    window.drain(..excess);
    Ok(forms.partial_at_end(window))
}

impl GuardedBody {
    fn scan(&mut self, plain: &[u8]) -> Result<usize, TokenWithheld> {
        scan(&mut self.forms, &mut self.window, plain)
    }

    /// Takes a chunk as received; returns what may be forwarded now.
    fn take(&mut self, data: Bytes) -> Result<Option<Bytes>, BoxError> {
        let decoder = match &mut self.decoder {
            Ok(decoder) => decoder,
            Err(()) => {
                tracing::warn!(
                    request_id = %self.alarm.request_id,
                    manager = %self.alarm.manager,
                    "the Manager's answer came in a content coding the gateway cannot scan for its token: cut"
                );
                return Err(Unscannable.into());
            }
        };
        match decoder {
            None => {
                let pending = self.scan(&data)?;
                let all = match std::mem::replace(&mut self.held, Held::Nothing) {
                    Held::Plain(before) => {
                        let mut joined = BytesMut::with_capacity(before.len() + data.len());
                        joined.extend_from_slice(&before);
                        joined.extend_from_slice(&data);
                        joined.freeze()
                    }
                    _ => data,
                };
                let cut = all.len() - pending.min(all.len());
                if cut < all.len() {
                    self.held = Held::Plain(all.slice(cut..));
                }
                Ok((cut > 0).then(|| all.slice(..cut)))
            }
            Some(decoder) => {
                // Decoded a step at a time, each scanned and dropped: a chunk that inflates a
                // thousand times is never held whole.
                let (mut pending, mut found) = (0, Ok(()));
                decoder.steps(&data, |plain| {
                    if found.is_ok() {
                        match scan(&mut self.forms, &mut self.window, plain) {
                            Ok(partial) => pending = partial,
                            Err(withheld) => found = Err(withheld),
                        }
                    }
                })?;
                found?;
                let mut chunks = match std::mem::replace(&mut self.held, Held::Nothing) {
                    Held::Compressed(chunks) => chunks,
                    _ => Vec::new(),
                };
                chunks.push(data);
                if pending > 0 {
                    self.held = Held::Compressed(chunks);
                    return Ok(None);
                }
                Ok(Some(concat(chunks)))
            }
        }
    }

    /// At the end of the answer: the decoder's last bytes are scanned, then everything held goes.
    fn finish(&mut self) -> Result<Option<Bytes>, BoxError> {
        if let Ok(decoder) = &mut self.decoder
            && let Some(decoder) = decoder.take()
        {
            let plain = decoder.finish()?;
            self.scan(&plain)?;
        }
        Ok(match std::mem::replace(&mut self.held, Held::Nothing) {
            Held::Nothing => None,
            Held::Plain(bytes) => Some(bytes),
            Held::Compressed(chunks) => Some(concat(chunks)),
        })
    }
}

fn concat(chunks: Vec<Bytes>) -> Bytes {
    if chunks.len() == 1 {
        return chunks.into_iter().next().expect("one chunk");
    }
    let mut joined = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
    for chunk in chunks {
        joined.extend_from_slice(&chunk);
    }
    joined.freeze()
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if let Some(frame) = this.after.take() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let step = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.take(data),
                    Err(trailers) => {
                        this.after = Some(trailers);
                        this.finish()
                    }
                },
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => {
                    this.done = true;
                    this.finish()
                }
            };
            match step {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(None) => {}
                Err(error) => {
                    this.done = true;
                    this.after = None;
                    if error.is::<TokenWithheld>() {
                        this.alarm.raise("body");
                    }
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    const TOKEN: &str = "fqbR1ftzh8wBCviLxJcYuV5o/SD+I=";

    fn alarm() -> Alarm {
        Alarm {
            request_id: "r1".into(),
            manager: "m".into(),
            counter: IntCounterVec::new(prometheus::Opts::new("t", "t"), &["manager"]).unwrap(),
        }
    }

    /// Streams `chunks` through the guard; what the client gets, or `None` when it was cut.
    async fn through(chunks: Vec<Vec<u8>>, encoding: Option<&str>) -> (Option<Vec<u8>>, u64) {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(c))));
        let body = GatewayBody::new(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames,
        )));
        let mut response = Response::new(body);
        if let Some(encoding) = encoding {
            response
                .headers_mut()
                .insert("content-encoding", encoding.parse().unwrap());
        }
        let alarm = alarm();
        let counter = alarm.counter.with_label_values(&["m"]);
        let guarded = guard(response, TokenForms::of(TOKEN.as_bytes()), alarm);
        let mut body = guarded.into_body();
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => out.extend_from_slice(frame.data_ref().unwrap()),
                Err(_) => return (None, counter.get()),
            }
        }
        (Some(out), counter.get())
    }

    fn split(text: &[u8], size: usize) -> Vec<Vec<u8>> {
        text.chunks(size).map(<[u8]>::to_vec).collect()
    }

    /// An answer without the token passes whole, whatever its chunking, and raises nothing.
    #[tokio::test]
    async fn clean_answers_pass_whole() {
        let text = b"<vm><name>fqbR1ftzh8 almost the token fqbR1ftzh8wBCviLxJcYuV5o/SD+</name></vm>";
        for size in 1..text.len() {
            let (out, raised) = through(split(text, size), None).await;
            assert_eq!(out.as_deref(), Some(&text[..]), "chunks of {size}");
            assert_eq!(raised, 0);
        }
    }

    /// The token in every form, split at every place, is cut and counted; what was forwarded
    /// before the cut never holds the whole token.
    #[tokio::test]
    async fn every_form_is_cut_wherever_it_is_split() {
        let forms = [
            TOKEN.to_owned(),
            TOKEN.replace('/', "%2F").replace('+', "%2B").replace('=', "%3D"),
            TOKEN.replace('/', "%2f").replace('+', "%2b").replace('=', "%3d"),
            TOKEN.replace('/', "\\/"),
        ];
        for form in forms {
            let text = format!("[ovirt]\nhost=engine\nsso-token={form}\nadmin=1\n");
            for size in 1..text.len() {
                let (out, raised) = through(split(text.as_bytes(), size), None).await;
                assert_eq!(out, None, "{form} in chunks of {size}");
                assert_eq!(raised, 1);
            }
        }
    }

    /// Bytes that could start the token are held, then forwarded with what shows they are not.
    #[tokio::test]
    async fn partial_token_is_held_until_known() {
        let forms = TokenForms::of(TOKEN.as_bytes());
        assert_eq!(forms.partial_at_end(b"xx fqbR1"), 5);
        assert_eq!(forms.partial_at_end(b"xx fqbR1x"), 0);
        assert_eq!(forms.partial_at_end(TOKEN.as_bytes()), 0);
        let (out, _) = through(vec![b"a fqbR1".to_vec(), b"x b".to_vec()], None).await;
        assert_eq!(out.unwrap(), b"a fqbR1x b");
    }

    /// A gzip answer is scanned through its decoded copy and forwarded as it came.
    #[tokio::test]
    async fn compressed_answers_are_scanned_decoded() {
        use std::io::Write;
        let gzip = |text: &[u8]| {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(text).unwrap();
            encoder.finish().unwrap()
        };
        let clean = gzip(b"<vms><vm id=\"1\"/></vms>");
        let (out, _) = through(split(&clean, 3), Some("gzip")).await;
        assert_eq!(out.unwrap(), clean);
        let leaking = gzip(format!("<vms><vm><description>{TOKEN}</description></vm></vms>").as_bytes());
        for size in [1, 3, 7, leaking.len()] {
            let (out, raised) = through(split(&leaking, size), Some("gzip")).await;
            assert_eq!(out, None, "chunks of {size}");
            assert_eq!(raised, 1);
        }
    }

    /// A coding that cannot be decoded cannot be scanned: cut at its first byte.
    #[tokio::test]
    async fn unknown_coding_is_cut() {
        let (out, _) = through(vec![b"....".to_vec()], Some("br")).await;
        assert_eq!(out, None);
    }

    /// A token whose forms share no start (it begins with a character that is escaped) is found
    /// in every form too.
    #[test]
    fn forms_without_a_common_start() {
        let mut forms = TokenForms::of(b"/abc+def=");
        assert!(matches!(forms.search, Search::Any(_)));
        for text in [
            "x /abc+def= y",
            "x %2Fabc%2Bdef%3D y",
            "x %2fabc%2bdef%3d y",
            "x \\/abc+def= y",
        ] {
            assert!(forms.found_in(text.as_bytes()), "{text}");
        }
        assert!(!forms.found_in(b"x /abc+de y"));
        let forms = TokenForms::of(TOKEN.as_bytes());
        assert!(matches!(forms.search, Search::Rare { byte: b'J', .. }));
    }

    /// The rare byte is searched for alone while it stays rare; an answer full of it is searched
    /// for the shared start instead, and the token is found either way.
    #[test]
    fn rare_byte_search_gives_way_when_the_byte_is_common() {
        let mut forms = TokenForms::of(TOKEN.as_bytes());
        let mut answer = b"<description>JJ".repeat(1000);
        assert!(!forms.found_in(&answer));
        assert!(matches!(forms.search, Search::Shared(_)));
        answer.extend_from_slice(TOKEN.as_bytes());
        assert!(forms.found_in(&answer));
        // A token with no upper-case letter in its shared start has no rare byte.
        let forms = TokenForms::of(b"abcdefgh123456789/x");
        assert!(matches!(forms.search, Search::Shared(_)));
        // The rare byte's offset is kept: a token at the very start of a haystack, or with its
        // rare byte before `at` belonging to an earlier token, is found.
        let mut forms = TokenForms::of(TOKEN.as_bytes());
        assert!(forms.found_in(TOKEN.as_bytes()));
        assert!(forms.found_in(format!("J{TOKEN}").as_bytes()));
    }

    /// A header holding the token is found.
    #[test]
    fn token_in_a_header_is_found() {
        let mut forms = TokenForms::of(TOKEN.as_bytes());
        let mut headers = http::HeaderMap::new();
        headers.insert("x-a", "harmless".parse().unwrap());
        assert!(!in_headers(&mut forms, &headers, &alarm()));
        headers.insert("set-cookie", format!("t={TOKEN}").parse().unwrap());
        assert!(in_headers(&mut forms, &headers, &alarm()));
    }
}
