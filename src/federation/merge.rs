//! Joins the members' answers to a listing into one (docs/federation.md, "Listings"), as they
//! stream: each member's body goes through a [`Splitter`] that drops its framing (the XML prolog
//! and root element, the JSON object and array around the items), passes its items on byte for
//! byte and counts them, so that `max` holds for the merged result, and reports each item's id for
//! the id index. Memory stays bounded whatever the sizes: a splitter holds at most a few bytes of
//! markup and the start of one item's id.
//!
//! The framing the merged body gets is written here once: the first member's root element name
//! (XML) or item key (JSON), around the items of every member in member order.

use bytes::Bytes;

use crate::wire::Representation;

/// Longest id kept for the index; longer ones are not learned.
const MAX_ID: usize = 128;
/// The bytes of an XML start tag searched for `id="…"`; attributes after these are not read.
const MAX_TAG: usize = 1024;

/// A member's listing did not have the shape of one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a member's answer is not an API listing: {0}")]
pub struct NotAListing(pub &'static str);

/// The merged body's framing and item budget, across members.
pub struct Join {
    repr: Representation,
    /// The root element name (XML) or item key (JSON), from the first member that named it.
    name: Option<Vec<u8>>,
    /// Items still to pass (`max`); `None` for no limit.
    remaining: Option<u64>,
    /// Whether the opening framing has been written.
    opened: bool,
    /// Items passed so far.
    items: u64,
    /// Items still to drop before the first that passes (a later `page`).
    skip: u64,
}

/// What becomes of an item that starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Take,
    Skip,
    /// `max` items have passed.
    Full,
}

impl Join {
    pub fn new(repr: Representation, max: Option<u64>) -> Join {
        Join {
            repr,
            name: None,
            remaining: max,
            opened: false,
            items: 0,
            skip: 0,
        }
    }

    /// The same join, dropping the first `skip` items of the merged order.
    pub fn skipping(mut self, skip: u64) -> Join {
        self.skip = skip;
        self
    }

    /// Whether `max` items have passed: the rest of the members need not be read.
    pub fn full(&self) -> bool {
        self.remaining == Some(0)
    }

    /// A splitter for the next member's body.
    pub fn member(&self) -> Splitter {
        Splitter {
            state: match self.repr {
                Representation::Xml => State::XmlProlog { markup: false },
                Representation::Json => State::JsonOpen,
            },
            depth: 0,
            name: Vec::new(),
            tag: Vec::new(),
            id: None,
            json: JsonItem::default(),
            skipping: false,
        }
    }

    /// The closing framing (and the opening, when no member had an item or a name).
    pub fn finish(&mut self) -> Bytes {
        let mut out = Vec::new();
        match self.repr {
            Representation::Xml => {
                let name = self.name.clone().unwrap_or_else(|| b"listing".to_vec());
                self.open(&mut out);
                out.extend_from_slice(b"\n</");
                out.extend_from_slice(&name);
                out.extend_from_slice(b">\n");
            }
            Representation::Json if self.opened => out.extend_from_slice(b"\n]\n}\n"),
            Representation::Json => out.extend_from_slice(b"{ }\n"),
        }
        Bytes::from(out)
    }

    fn open(&mut self, out: &mut Vec<u8>) {
        if self.opened {
            return;
        }
        self.opened = true;
        let name = self.name.as_deref().unwrap_or(b"listing");
        match self.repr {
            Representation::Xml => {
                out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<");
                out.extend_from_slice(name);
                out.push(b'>');
            }
            Representation::Json => {
                out.extend_from_slice(b"{\n\"");
                out.extend_from_slice(name);
                out.extend_from_slice(b"\" : [ ");
            }
        }
    }

    /// Starts an item: skipped, taken (its framing or separator written), or refused because
    /// the budget is spent.
    fn start_item(&mut self, out: &mut Vec<u8>) -> Start {
        if self.full() {
            return Start::Full;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return Start::Skip;
        }
        if let Some(remaining) = &mut self.remaining {
            *remaining -= 1;
        }
        self.open(out);
        if self.repr == Representation::Json && self.items > 0 {
            out.extend_from_slice(b", ");
        }
        self.items += 1;
        Start::Take
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the root element; `markup` inside `<?…?>` or `<!…>`.
    XmlProlog { markup: bool },
    /// In the root element's start tag; `slash` after a `/`.
    XmlRoot { slash: bool },
    /// Between the root's children or inside one (`depth` > 0).
    XmlText,
    /// After `<` in the content.
    XmlOpen,
    /// In a start tag; `quote` inside an attribute value, `slash` after a `/`.
    XmlStart { quote: Option<u8>, slash: bool },
    /// In an end tag.
    XmlEnd,
    /// In a comment, CDATA section or processing instruction, up to its terminator.
    XmlMarkup { end: &'static [u8], matched: usize },
    /// After `<!` or `<!-`/`<![…`: which markup it opens is not known yet.
    XmlBang { seen: usize },
    /// Before the JSON object's `{`.
    JsonOpen,
    /// In the object, before the item key.
    JsonKey,
    /// In the item key.
    JsonKeyName { escape: bool },
    /// After the item key, before `:` and `[`.
    JsonColon,
    /// In the array, between items.
    JsonBetween,
    /// Inside an item (`depth` > 0).
    JsonItem,
    /// In a string inside an item.
    JsonString { escape: bool },
    /// The listing ended, or the budget was spent: the rest is not passed.
    Done,
}

/// What a JSON item's top-level keys are, for its id.
#[derive(Debug, Default)]
struct JsonItem {
    /// The next top-level string is a key.
    expect_key: bool,
    /// The last top-level key was `id`.
    after_id_key: bool,
    /// The top-level string being read, when it may be the key `id` or its value.
    text: Option<Vec<u8>>,
}

/// One member's body, split into its items.
pub struct Splitter {
    state: State,
    /// Element (XML) or bracket (JSON) depth inside the items.
    depth: usize,
    /// The root element's name being read (XML) or the item key (JSON).
    name: Vec<u8>,
    /// The start of the current top-level item's start tag (XML), for its id.
    tag: Vec<u8>,
    /// The id of the item just started, for the caller to learn.
    id: Option<String>,
    json: JsonItem,
    /// The current item is one the join skips: its bytes are not passed.
    skipping: bool,
}

const CDATA: &[u8] = b"[CDATA[";

/// What becomes of the byte a step read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Passed on.
    Pass,
    /// Not passed on (framing, separators, the `<` held between items).
    Drop,
    /// Passed on after the held `<` (markup between items).
    Lt,
    /// The first byte of an item: the join's framing or separator, then the held `<` (XML),
    /// then this byte; unless `max` items have passed.
    Item { lt: bool },
    /// The listing ended here (or the root's end tag began): neither it nor the rest is passed.
    Done,
}

impl Splitter {
    /// Feeds one chunk: appends what is to be passed to `out` and the ids of the items that
    /// started to `ids`. Returns whether this member is done (its listing ended, or `max` items
    /// have passed).
    pub fn feed(
        &mut self,
        join: &mut Join,
        chunk: &[u8],
        out: &mut Vec<u8>,
        ids: &mut Vec<String>,
    ) -> Result<bool, NotAListing> {
        // What is passed on is copied lazily, from `from` up to where a byte is dropped or
        // something is inserted (at the items' boundaries), and at the chunk's end: inside an
        // item nothing is copied byte by byte.
        let (mut from, mut at) = (0, 0);
        while at < chunk.len() {
            let run = self.run(join, &chunk[at..]);
            if run > 0 {
                at += run;
                continue;
            }
            let effect = self.step(join, chunk[at])?;
            if let Some(id) = self.id.take() {
                ids.push(id);
            }
            match effect {
                Effect::Pass => {}
                Effect::Drop => {
                    self.pass(out, &chunk[from..at]);
                    from = at + 1;
                }
                Effect::Lt => {
                    self.pass(out, &chunk[from..at]);
                    self.pass(out, b"<");
                    from = at;
                }
                Effect::Item { lt } => {
                    self.pass(out, &chunk[from..at]);
                    match join.start_item(out) {
                        Start::Full => {
                            self.state = State::Done;
                            return Ok(true);
                        }
                        Start::Skip => self.skipping = true,
                        Start::Take => {
                            self.skipping = false;
                            if lt {
                                out.push(b'<');
                            }
                        }
                    }
                    from = at;
                }
                Effect::Done => {
                    self.pass(out, &chunk[from..at]);
                    return Ok(true);
                }
            }
            at += 1;
        }
        self.pass(out, &chunk[from..]);
        Ok(false)
    }

    /// Passes `bytes` on, unless they belong to a skipped item (or follow one, up to the next
    /// item: whitespace and markup between items).
    fn pass(&self, out: &mut Vec<u8>, bytes: &[u8]) {
        if !self.skipping {
            out.extend_from_slice(bytes);
        }
    }

    /// How many bytes at the start of `rest` are passed on as they are: inside an XML item, up
    /// to where it ends (its depth back to 0) or markup begins (`<!`, `<?`), tracking the depth
    /// in one tight loop; in JSON, runs that change nothing.
    fn run(&mut self, join: &Join, rest: &[u8]) -> usize {
        let until = |found: Option<usize>| found.unwrap_or(rest.len());
        match self.state {
            State::XmlText | State::XmlOpen | State::XmlEnd | State::XmlStart { .. } if self.depth > 0 => {
                self.inside(rest)
            }
            State::XmlText if join.opened => until(memchr::memchr(b'<', rest)),
            State::XmlMarkup { end, matched: 0 } => until(memchr::memchr(end[0], rest)),
            State::JsonString { .. } if self.depth > 1 || self.json.text.is_none() => {
                if matches!(self.state, State::JsonString { escape: true }) {
                    0
                } else {
                    until(memchr::memchr2(b'"', b'\\', rest))
                }
            }
            State::JsonItem => rest
                .iter()
                .position(|b| matches!(b, b'{' | b'}' | b'[' | b']' | b'"' | b','))
                .unwrap_or(rest.len()),
            _ => 0,
        }
    }

    /// The bytes of an XML item's content, while the depth stays above 0: the same states as
    /// `step`, without its generality.
    fn inside(&mut self, rest: &[u8]) -> usize {
        let mut at = 0;
        while at < rest.len() {
            match self.state {
                State::XmlText => match memchr::memchr(b'<', &rest[at..]) {
                    Some(n) => {
                        at += n + 1;
                        self.state = State::XmlOpen;
                    }
                    None => return rest.len(),
                },
                State::XmlOpen => match rest[at] {
                    b'!' | b'?' => return at,
                    b'/' => {
                        at += 1;
                        self.state = State::XmlEnd;
                    }
                    _ => {
                        at += 1;
                        self.state = State::XmlStart {
                            quote: None,
                            slash: false,
                        };
                    }
                },
                State::XmlEnd => match memchr::memchr(b'>', &rest[at..]) {
                    Some(n) => {
                        at += n + 1;
                        self.depth -= 1;
                        self.state = State::XmlText;
                        if self.depth == 0 {
                            return at;
                        }
                    }
                    None => return rest.len(),
                },
                State::XmlStart { quote: Some(q), .. } => match memchr::memchr(q, &rest[at..]) {
                    Some(n) => {
                        at += n + 1;
                        self.state = State::XmlStart {
                            quote: None,
                            slash: false,
                        };
                    }
                    None => return rest.len(),
                },
                State::XmlStart { quote: None, slash } => {
                    let tag = &rest[at..];
                    match memchr::memchr3(b'"', b'\'', b'>', tag) {
                        Some(n) => {
                            // A `/` counts only right before the `>`.
                            let slash = if n > 0 { tag[n - 1] == b'/' } else { slash };
                            at += n + 1;
                            self.state = match tag[n] {
                                b'>' => {
                                    if !slash {
                                        self.depth += 1;
                                    }
                                    State::XmlText
                                }
                                q => State::XmlStart {
                                    quote: Some(q),
                                    slash: false,
                                },
                            };
                        }
                        None => {
                            let slash = tag.last().map_or(slash, |&b| b == b'/');
                            self.state = State::XmlStart { quote: None, slash };
                            return rest.len();
                        }
                    }
                }
                _ => return at,
            }
        }
        at
    }

    /// Whether the member's body ended where a listing may end.
    pub fn ended(&self) -> Result<(), NotAListing> {
        match self.state {
            State::Done => Ok(()),
            _ => Err(NotAListing("it ended before the listing did")),
        }
    }

    /// One byte that changes the state; what becomes of it in the output.
    fn step(&mut self, join: &mut Join, byte: u8) -> Result<Effect, NotAListing> {
        // Before the items, bytes are the framing's: dropped.
        let mut effect = match self.state {
            State::XmlProlog { .. } | State::XmlRoot { .. } | State::JsonOpen | State::JsonKey => {
                Effect::Drop
            }
            State::JsonKeyName { .. } | State::JsonColon => Effect::Drop,
            _ => Effect::Pass,
        };
        self.state = match self.state {
            State::XmlProlog { markup: true } => State::XmlProlog { markup: byte != b'>' },
            State::XmlProlog { markup: false } => match byte {
                b'<' => State::XmlRoot { slash: false },
                b if b.is_ascii_whitespace() => self.state,
                _ => return Err(NotAListing("text before the root element")),
            },
            State::XmlRoot { .. } if self.name.is_empty() && (byte == b'?' || byte == b'!') => {
                State::XmlProlog { markup: true }
            }
            State::XmlRoot { slash } => match byte {
                b'>' => {
                    self.named(join);
                    if slash { State::Done } else { State::XmlText }
                }
                b'/' => State::XmlRoot { slash: true },
                b if b.is_ascii_whitespace() => {
                    self.name.push(0);
                    State::XmlRoot { slash: false }
                }
                b => {
                    if !self.name.contains(&0) {
                        self.name.push(b);
                    }
                    State::XmlRoot { slash: false }
                }
            },
            State::XmlText => {
                // Between the items, a `<` is held until it is known what it opens: the root's
                // end tag and an item over `max` are not passed.
                if self.depth == 0 && (byte == b'<' || !join.opened) {
                    effect = Effect::Drop;
                }
                if byte == b'<' {
                    State::XmlOpen
                } else {
                    State::XmlText
                }
            }
            State::XmlOpen => {
                let top = self.depth == 0;
                if top {
                    effect = Effect::Lt;
                }
                match byte {
                    b'/' if top => {
                        effect = Effect::Done;
                        State::Done
                    }
                    b'/' => State::XmlEnd,
                    b'?' => State::XmlMarkup {
                        end: b"?>",
                        matched: 0,
                    },
                    b'!' => State::XmlBang { seen: 0 },
                    b => {
                        if top {
                            effect = Effect::Item { lt: true };
                            self.tag.clear();
                            self.tag.push(b);
                        }
                        State::XmlStart {
                            quote: None,
                            slash: false,
                        }
                    }
                }
            }
            State::XmlStart { quote, slash } => {
                if self.depth == 0 && self.tag.len() < MAX_TAG {
                    self.tag.push(byte);
                }
                match (quote, byte) {
                    (Some(q), b) if b == q => State::XmlStart {
                        quote: None,
                        slash: false,
                    },
                    (Some(_), _) => self.state,
                    (None, b'"' | b'\'') => State::XmlStart {
                        quote: Some(byte),
                        slash: false,
                    },
                    (None, b'/') => State::XmlStart {
                        quote: None,
                        slash: true,
                    },
                    (None, b'>') => {
                        if self.depth == 0 {
                            self.id = xml_id(&self.tag);
                        }
                        if !slash {
                            self.depth += 1;
                        }
                        State::XmlText
                    }
                    (None, _) => State::XmlStart {
                        quote: None,
                        slash: false,
                    },
                }
            }
            State::XmlEnd => {
                if byte == b'>' {
                    self.depth -= 1;
                    State::XmlText
                } else {
                    State::XmlEnd
                }
            }
            State::XmlBang { seen } => match (seen, byte) {
                (0, b'-') => State::XmlBang { seen: 1 },
                (1, b'-') => State::XmlMarkup {
                    end: b"-->",
                    matched: 0,
                },
                (s, b) if s < CDATA.len() && CDATA[s] == b => {
                    if s + 1 == CDATA.len() {
                        State::XmlMarkup {
                            end: b"]]>",
                            matched: 0,
                        }
                    } else {
                        State::XmlBang { seen: s + 1 }
                    }
                }
                _ => return Err(NotAListing("a declaration inside the listing")),
            },
            State::XmlMarkup { end, matched } => {
                let matched = if byte == end[matched] {
                    matched + 1
                } else if byte == end[0] && end[..matched].iter().all(|&b| b == end[0]) {
                    // `]]]>`: the extra bracket is content, the last two may still end it.
                    matched
                } else {
                    usize::from(byte == end[0])
                };
                if matched == end.len() {
                    State::XmlText
                } else {
                    State::XmlMarkup { end, matched }
                }
            }
            State::JsonOpen => match byte {
                b'{' => State::JsonKey,
                b if b.is_ascii_whitespace() => self.state,
                _ => return Err(NotAListing("not a JSON object")),
            },
            State::JsonKey => match byte {
                b'"' => State::JsonKeyName { escape: false },
                b'}' => {
                    effect = Effect::Done;
                    State::Done
                }
                b if b.is_ascii_whitespace() => self.state,
                _ => return Err(NotAListing("no item key")),
            },
            State::JsonKeyName { escape } => match (escape, byte) {
                (false, b'"') => State::JsonColon,
                (false, b'\\') => {
                    self.name.push(byte);
                    State::JsonKeyName { escape: true }
                }
                (_, b) => {
                    self.name.push(b);
                    State::JsonKeyName { escape: false }
                }
            },
            State::JsonColon => match byte {
                b':' => self.state,
                b'[' => {
                    self.named(join);
                    State::JsonBetween
                }
                b if b.is_ascii_whitespace() => self.state,
                _ => return Err(NotAListing("the item key does not hold an array")),
            },
            State::JsonBetween => match byte {
                b']' => {
                    effect = Effect::Done;
                    State::Done
                }
                b',' => {
                    effect = Effect::Drop;
                    self.state
                }
                b if b.is_ascii_whitespace() => {
                    effect = Effect::Drop;
                    self.state
                }
                b'{' => {
                    effect = Effect::Item { lt: false };
                    self.json = JsonItem::default();
                    self.json_item(byte)
                }
                _ => return Err(NotAListing("an item that is not an object")),
            },
            State::JsonItem => self.json_item(byte),
            State::JsonString { escape } => {
                let top = self.depth == 1;
                match (escape, byte) {
                    (false, b'"') => {
                        if top {
                            self.top_string_ended();
                        }
                        self.after_value()
                    }
                    (false, b'\\') => {
                        self.json.text = None;
                        State::JsonString { escape: true }
                    }
                    (_, b) => {
                        if top && let Some(text) = &mut self.json.text {
                            if text.len() < MAX_ID {
                                text.push(b);
                            } else {
                                self.json.text = None;
                            }
                        }
                        State::JsonString { escape: false }
                    }
                }
            }
            State::Done => {
                effect = Effect::Done;
                State::Done
            }
        };
        if self.state == State::Done {
            effect = Effect::Done;
        }
        Ok(effect)
    }

    /// The root element's name or the item key is known: the first one names the merged body.
    fn named(&mut self, join: &mut Join) {
        if let Some(end) = self.name.iter().position(|&b| b == 0) {
            self.name.truncate(end);
        }
        if join.name.is_none() {
            join.name = Some(std::mem::take(&mut self.name));
        }
    }

    /// One byte of an item outside its strings.
    fn json_item(&mut self, byte: u8) -> State {
        match byte {
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth == 1 {
                    self.json.expect_key = byte == b'{';
                }
                State::JsonItem
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                self.after_value()
            }
            b'"' => {
                self.json.text = (self.depth == 1).then(Vec::new);
                State::JsonString { escape: false }
            }
            b',' if self.depth == 1 => {
                self.json.expect_key = true;
                State::JsonItem
            }
            _ => State::JsonItem,
        }
    }

    /// After a string or a closing bracket: at depth 0, the item has ended.
    fn after_value(&self) -> State {
        if self.depth == 0 {
            State::JsonBetween
        } else {
            State::JsonItem
        }
    }

    /// A string directly inside the item ended: it was a key, or the value of the key `id`.
    fn top_string_ended(&mut self) {
        let text = self.json.text.take();
        if self.json.expect_key {
            self.json.expect_key = false;
            self.json.after_id_key = text.as_deref() == Some(b"id");
        } else if std::mem::take(&mut self.json.after_id_key) {
            self.id = text.and_then(|t| String::from_utf8(t).ok());
        }
    }
}

/// The value of the `id` attribute of a start tag (`vm href="…" id="…"`), when it is plain.
fn xml_id(tag: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(tag).ok()?;
    let mut rest = text;
    while let Some(at) = rest.find("id=") {
        let before = rest[..at].chars().next_back();
        let value = &rest[at + 3..];
        if before.is_some_and(char::is_whitespace)
            && let Some(quote) = value.chars().next().filter(|q| *q == '"' || *q == '\'')
        {
            let value = &value[1..];
            let end = value.find(quote)?;
            let id = &value[..end];
            return (id.len() <= MAX_ID && !id.contains('&')).then(|| id.to_owned());
        }
        rest = &rest[at + 3..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Joins `bodies` fed in chunks of `chunk` bytes; the merged text and the ids seen.
    fn join(repr: Representation, bodies: &[&str], max: Option<u64>, chunk: usize) -> (String, Vec<String>) {
        join_skipping(repr, bodies, (0, max), chunk)
    }

    /// As `join`, skipping the first `skip` items of the merged order.
    fn join_skipping(
        repr: Representation,
        bodies: &[&str],
        (skip, max): (u64, Option<u64>),
        chunk: usize,
    ) -> (String, Vec<String>) {
        let mut join = Join::new(repr, max).skipping(skip);
        let (mut out, mut ids) = (Vec::new(), Vec::new());
        for body in bodies {
            if join.full() {
                break;
            }
            let mut splitter = join.member();
            let mut done = false;
            for piece in body.as_bytes().chunks(chunk.max(1)) {
                done = splitter.feed(&mut join, piece, &mut out, &mut ids).unwrap();
                if done {
                    break;
                }
            }
            if !done {
                splitter.ended().unwrap();
            }
        }
        out.extend_from_slice(&join.finish());
        (String::from_utf8(out).unwrap(), ids)
    }

    const EAST: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<vms>\n    \
        <vm href=\"/f/ovirt-engine/api/vms/1\" id=\"1\"><name>a</name><cdrom/></vm>\n    \
        <vm href=\"/f/ovirt-engine/api/vms/2\" id=\"2\"><description>x &lt; y</description></vm>\n</vms>\n";
    const WEST: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<vms>\n    \
        <vm id='3' href=\"/f/ovirt-engine/api/vms/3\"><!-- note --><name><![CDATA[</vm>]]></name></vm>\n</vms>\n";

    fn parses_as_xml(text: &str) -> usize {
        let mut reader = quick_xml::Reader::from_str(text);
        let mut depth = 0usize;
        let mut items = 0;
        loop {
            match reader.read_event().unwrap() {
                quick_xml::events::Event::Start(_) => {
                    depth += 1;
                    if depth == 2 {
                        items += 1;
                    }
                }
                quick_xml::events::Event::Empty(_) if depth == 1 => items += 1,
                quick_xml::events::Event::End(_) => depth -= 1,
                quick_xml::events::Event::Eof => return items,
                _ => {}
            }
        }
    }

    /// XML listings join into one document with every item, in member order, whatever the
    /// chunking; markup that looks like an end tag inside CDATA does not end an item.
    #[test]
    fn xml_listings_join() {
        for chunk in [1, 2, 7, 4096] {
            let (text, ids) = join(Representation::Xml, &[EAST, "<vms/>", WEST], None, chunk);
            assert_eq!(ids, ["1", "2", "3"], "chunk {chunk}");
            assert_eq!(parses_as_xml(&text), 3, "{text}");
            assert!(text.starts_with("<?xml"), "{text}");
            assert!(text.contains("<![CDATA[</vm>]]>"), "{text}");
            assert!(text.trim_end().ends_with("</vms>"), "{text}");
        }
    }

    /// `max` holds for the merged result: the members after it are not needed.
    #[test]
    fn max_cuts_the_merged_result() {
        let (text, ids) = join(Representation::Xml, &[EAST, WEST], Some(2), 3);
        assert_eq!(ids, ["1", "2"]);
        assert_eq!(parses_as_xml(&text), 2, "{text}");
        let (text, _) = join(Representation::Xml, &[EAST, WEST], Some(0), 3);
        assert_eq!(parses_as_xml(&text), 0, "{text}");
    }

    /// Empty listings join into an empty one named as the members name theirs.
    #[test]
    fn empty_listings() {
        let (text, ids) = join(Representation::Xml, &["<vms/>", "<vms></vms>"], None, 1);
        assert!(ids.is_empty());
        assert_eq!(parses_as_xml(&text), 0);
        assert!(text.contains("<vms>"), "{text}");
        let (text, _) = join(Representation::Json, &["{ }", "{\"vm\":[]}"], None, 1);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            value
                .as_object()
                .unwrap()
                .values()
                .all(|v| v.as_array().is_none_or(Vec::is_empty)),
            "{text}"
        );
    }

    const JSON_EAST: &str = "{\n  \"vm\" : [ {\n    \"name\" : \"a,]}\\\"\",\n    \"id\" : \"1\",\n    \"nics\" : { \"id\" : \"no\" }\n  }, {\n    \"href\" : \"/x\", \"id\" : \"2\"\n  } ]\n}";
    const JSON_WEST: &str = "{ \"vm\" : [ { \"id\" : \"3\", \"tags\" : [ \"t\" ] } ] }";

    /// JSON listings join into one object whose array holds every item; strings holding
    /// brackets and commas do not split items, and only an item's own `id` is learned.
    #[test]
    fn json_listings_join() {
        for chunk in [1, 5, 4096] {
            let (text, ids) = join(Representation::Json, &[JSON_EAST, "{ }", JSON_WEST], None, chunk);
            assert_eq!(ids, ["1", "2", "3"], "chunk {chunk}");
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            let items = value["vm"].as_array().unwrap();
            assert_eq!(items.len(), 3, "{text}");
            assert_eq!(items[0]["name"], "a,]}\"");
            assert_eq!(items[2]["tags"][0], "t");
        }
        let (text, _) = join(Representation::Json, &[JSON_EAST, JSON_WEST], Some(1), 2);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["vm"].as_array().unwrap().len(), 1, "{text}");
    }

    /// What is not a listing is an error, never passed on as one.
    #[test]
    fn not_listings() {
        let mut join = Join::new(Representation::Json, None);
        let mut splitter = join.member();
        let (mut out, mut ids) = (Vec::new(), Vec::new());
        assert!(splitter.feed(&mut join, b"[1]", &mut out, &mut ids).is_err());
        let mut join = Join::new(Representation::Xml, None);
        let mut splitter = join.member();
        assert!(
            !splitter
                .feed(&mut join, b"<vms><vm>", &mut out, &mut ids)
                .unwrap()
        );
        assert!(splitter.ended().is_err());
    }

    fn xml_listing(ids: &[u32]) -> String {
        let items: String = ids
            .iter()
            .map(|id| format!("<vm href=\"/ovirt-engine/api/vms/{id}\" id=\"{id}\"><name>n{id}</name></vm>"))
            .collect();
        format!("<?xml version=\"1.0\"?>\n<vms>{items}</vms>")
    }

    fn json_listing(ids: &[u32]) -> String {
        let items: Vec<String> = ids
            .iter()
            .map(|id| format!("{{\"id\":\"{id}\",\"name\":\"n{id}\",\"x\":[1,{{\"id\":\"0\"}}]}}"))
            .collect();
        if ids.is_empty() {
            "{}".to_owned()
        } else {
            format!("{{\"vm\":[{}]}}", items.join(","))
        }
    }

    /// The ids of the items of an XML listing as `xml_listing` writes them.
    fn xml_ids(text: &str) -> Vec<String> {
        text.split(" id=\"")
            .skip(1)
            .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
            .collect()
    }

    /// A later page: the items before it are dropped, with the whitespace and markup between
    /// them, and the page's items pass whole.
    #[test]
    fn skipped_items_do_not_pass() {
        for chunk in [1, 5, 4096] {
            let (text, ids) = join_skipping(Representation::Xml, &[EAST, WEST], (1, Some(1)), chunk);
            assert_eq!(ids, ["1", "2"], "chunk {chunk}");
            assert_eq!(parses_as_xml(&text), 1, "{text}");
            assert!(
                text.contains("<vm href=\"/f/ovirt-engine/api/vms/2\" id=\"2\"><description>"),
                "{text}"
            );
            let (text, _) = join_skipping(Representation::Xml, &[EAST, WEST], (2, None), chunk);
            assert!(
                text.contains("<!-- note -->") && !text.contains("vms/2"),
                "{text}"
            );
            assert_eq!(parses_as_xml(&text), 1, "{text}");
        }
    }

    proptest! {
        /// Whatever the members hold, the chunking, `max` and the items skipped: the merged
        /// listing holds the items of the members in member order after the first `skip`, at
        /// most `max` of them, and the ids learned are those of every item that started.
        #[test]
        fn merged_is_the_concatenation(
            members in proptest::collection::vec(proptest::collection::vec(1u32..1000, 0..6), 1..4),
            max in proptest::option::of(0u64..12),
            skip in 0u64..8,
            chunk in 1usize..40,
        ) {
            let all: Vec<String> = members.iter().flatten().map(u32::to_string).collect();
            let limit = max.map_or(usize::MAX, |m| m as usize);
            let want: Vec<String> = all.iter().skip(skip as usize).take(limit).cloned().collect();
            // With nothing to take (`max=0`), no member is read.
            let read = if limit == 0 { 0 } else { (skip as usize).saturating_add(limit) };
            let learned: Vec<String> = all.iter().take(read).cloned().collect();
            let xml: Vec<String> = members.iter().map(|ids| xml_listing(ids)).collect();
            let refs: Vec<&str> = xml.iter().map(String::as_str).collect();
            let (text, ids) = join_skipping(Representation::Xml, &refs, (skip, max), chunk);
            prop_assert_eq!(&ids, &learned);
            prop_assert_eq!(parses_as_xml(&text), want.len());
            prop_assert_eq!(&xml_ids(&text), &want);
            let json: Vec<String> = members.iter().map(|ids| json_listing(ids)).collect();
            let refs: Vec<&str> = json.iter().map(String::as_str).collect();
            let (text, ids) = join_skipping(Representation::Json, &refs, (skip, max), chunk);
            prop_assert_eq!(&ids, &learned);
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            let got: Vec<String> = value.get("vm").and_then(|v| v.as_array()).map_or_else(Vec::new, |items| {
                items.iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
            });
            prop_assert_eq!(got, want);
        }
    }
}
