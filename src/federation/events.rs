//! Events in the merged view (docs/federation.md, "Events"). Each engine numbers its events
//! with its own counter (ovirt-engine `audit_log.audit_log_id`), so the same number names other
//! events on other members. The merged view gives every event the id `local × 100 + slot`, where
//! the slot is the member's position in `members` counted from 1: it stays an integer (clients
//! call `int(event.id)`), names one event, decodes without state, and grows with each member's
//! own counter. It is written into the event's `id`, its `index` and its href's last segment;
//! nothing else in an event changes.

//!
//! `from=N` asks for the events after N. On a member's own stream that is its own id; on the
//! others it is where their streams stood when N was delivered, which the gateway records per
//! user as it delivers events ([`Cursors`]).

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use quick_xml::events::Event;
use serde_json::Value;

use super::merge::NotAListing;
use crate::wire::Representation;

/// The merged id of `member`'s event `local`.
pub(crate) fn merged_id(local: u64, member: usize) -> Option<u64> {
    local.checked_mul(100)?.checked_add(member as u64 + 1)
}

/// The member and its own id a merged id names, among `members` members.
pub(crate) fn decode(merged: u64, members: usize) -> Option<(usize, u64)> {
    let slot = (merged % 100) as usize;
    (1..=members).contains(&slot).then(|| (slot - 1, merged / 100))
}

/// One member's event, renumbered.
pub(crate) struct Item {
    pub bytes: Vec<u8>,
    pub local: u64,
    pub merged: u64,
    /// Milliseconds since the epoch; the oldest possible when the event has no time.
    pub time: i64,
}

/// A member's events listing: its root element name (XML) or item key (JSON), and its events.
pub(crate) struct Listing {
    pub name: Option<Vec<u8>>,
    pub items: Vec<Item>,
}

/// A member's events listing, each event renumbered as `member`'s.
pub(crate) fn listing(repr: Representation, body: &[u8], member: usize) -> Result<Listing, NotAListing> {
    match repr {
        Representation::Xml => {
            let (name, found) = xml_events(body, 1)?;
            let items = found
                .into_iter()
                .map(|event| event.renumbered(body, member))
                .collect::<Result<_, _>>()?;
            Ok(Listing { name, items })
        }
        Representation::Json => {
            let value: Value = serde_json::from_slice(body).map_err(|_| NotAListing("not JSON"))?;
            let Value::Object(object) = value else {
                return Err(NotAListing("not a JSON object"));
            };
            let mut listing = Listing {
                name: None,
                items: Vec::new(),
            };
            for (key, items) in object {
                let Value::Array(items) = items else {
                    return Err(NotAListing("the item key does not hold an array"));
                };
                listing.name = Some(key.into_bytes());
                for item in items {
                    listing.items.push(json_event(item, member)?);
                }
            }
            Ok(listing)
        }
    }
}

/// One event (`GET /events/<id>`, a create's answer), renumbered as `member`'s: the item's
/// bytes are the whole body.
pub(crate) fn single(repr: Representation, body: &[u8], member: usize) -> Result<Item, NotAListing> {
    match repr {
        Representation::Xml => {
            let (_, found) = xml_events(body, 0)?;
            let [event] = found.as_slice() else {
                return Err(NotAListing("not one event"));
            };
            let mut item = event.renumbered(body, member)?;
            let mut out = body[..event.range.start].to_vec();
            out.extend_from_slice(&item.bytes);
            out.extend_from_slice(&body[event.range.end..]);
            item.bytes = out;
            Ok(item)
        }
        Representation::Json => {
            let value: Value = serde_json::from_slice(body).map_err(|_| NotAListing("not JSON"))?;
            json_event(value, member)
        }
    }
}

/// The members' events in one order: newest first (the engine's own order, `audit_log_id
/// DESC`, made one across members by time), or oldest first; ties by merged id. Then `skip`
/// of them dropped and at most `take` kept: what the answer delivers.
pub(crate) fn order(
    listings: &mut [Listing],
    ascending: bool,
    (skip, take): (usize, Option<usize>),
) -> Vec<Item> {
    let mut all: Vec<Item> = listings
        .iter_mut()
        .flat_map(|l| std::mem::take(&mut l.items))
        .collect();
    all.sort_by_key(|item| (item.time, item.merged));
    if !ascending {
        all.reverse();
    }
    all.into_iter()
        .skip(skip)
        .take(take.unwrap_or(usize::MAX))
        .collect()
}

/// The listing of the events delivered, under the members' root element name (XML) or item
/// key (JSON).
pub(crate) fn write(repr: Representation, name: Option<&[u8]>, delivered: &[Item]) -> Vec<u8> {
    let items: Vec<&[u8]> = delivered.iter().map(|i| i.bytes.as_slice()).collect();
    super::sorted::write(repr, Some(name.unwrap_or(b"events")), &items)
}

/// Where one member's stream stands for a resumption: events after this own id are new.
pub(crate) type Marks = Arc<[u64]>;

/// Where every member's stream stood when an event was delivered, per user (visibility is per
/// user: another's marks could hide or show other events), for `from=` on that event.
pub(crate) struct Cursors {
    cache: Cache<(String, u64), Marks>,
}

/// Events whose marks are kept, of one answer; a client resumes from one it was given, mostly
/// the first or the last of a short answer.
const MARKED_PER_ANSWER: usize = 1_000;

impl Cursors {
    pub(crate) fn new() -> Cursors {
        Cursors {
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(24 * 3600))
                .build(),
        }
    }

    pub(crate) fn get(&self, user: &str, merged: u64) -> Option<Marks> {
        self.cache.get(&(user.to_owned(), merged))
    }

    /// Records, for each event `delivered` to `user`, where every member's stream stood at its
    /// time: on member m, the newest of m's events `returned` (own id and time) no newer than
    /// it, else the `from` m was asked from (`froms[m]`, 0 for none). An answer delivers the
    /// first events of one time order, so a member whose events are all newer than a delivered
    /// one returned all it had after its `from`.
    pub(crate) fn record(&self, user: &str, returned: &[Vec<(i64, u64)>], froms: &[u64], delivered: &[Item]) {
        // Per member, by time: the newest own id up to each time.
        let runs: Vec<Vec<(i64, u64)>> = returned
            .iter()
            .map(|events| {
                let mut by_time = events.clone();
                by_time.sort_unstable();
                let mut newest = 0;
                for (_, local) in &mut by_time {
                    newest = newest.max(*local);
                    *local = newest;
                }
                by_time
            })
            .collect();
        for item in delivered.iter().take(MARKED_PER_ANSWER) {
            let marks: Marks = runs
                .iter()
                .zip(froms)
                .map(|(run, &from)| {
                    let upto = run.partition_point(|&(time, _)| time <= item.time);
                    if upto == 0 {
                        from
                    } else {
                        run[upto - 1].1.max(from)
                    }
                })
                .collect();
            self.cache.insert((user.to_owned(), item.merged), marks);
        }
    }
}

/// An event found in an XML body, by byte ranges.
struct XmlEvent {
    range: Range<usize>,
    start_tag: Range<usize>,
    local: u64,
    index: Option<Range<usize>>,
    time: Option<i64>,
}

impl XmlEvent {
    fn renumbered(&self, body: &[u8], member: usize) -> Result<Item, NotAListing> {
        let merged = merged_id(self.local, member).ok_or(NotAListing("an event id out of range"))?;
        let (local, new) = (self.local.to_string(), merged.to_string());
        let mut bytes = patch_tag(&body[self.start_tag.clone()], &local, &new);
        match &self.index {
            Some(index) => {
                bytes.extend_from_slice(&body[self.start_tag.end..index.start]);
                bytes.extend_from_slice(new.as_bytes());
                bytes.extend_from_slice(&body[index.end..self.range.end]);
            }
            None => bytes.extend_from_slice(&body[self.start_tag.end..self.range.end]),
        }
        Ok(Item {
            bytes,
            local: self.local,
            merged,
            time: self.time.unwrap_or(i64::MIN),
        })
    }
}

/// The events at `depth` of an XML body (1 in a listing, 0 for one event), and the root's name.
fn xml_events(body: &[u8], depth: usize) -> Result<(Option<Vec<u8>>, Vec<XmlEvent>), NotAListing> {
    let unreadable = |_| NotAListing("an XML answer could not be read");
    let mut reader = quick_xml::Reader::from_reader(body);
    let (mut at, mut root, mut found) = (0usize, None, Vec::new());
    let mut current: Option<XmlEvent> = None;
    let mut child: Option<Vec<u8>> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(unreadable)?;
        let after = reader.buffer_position() as usize;
        match event {
            Event::Start(start) => {
                if at == 0 {
                    root = Some(start.local_name().as_ref().to_vec());
                }
                if at == depth {
                    let local = attribute(&start, b"id")
                        .and_then(|id| id.parse().ok())
                        .ok_or(NotAListing("an event without an integer id"))?;
                    current = Some(XmlEvent {
                        range: before..after,
                        start_tag: before..after,
                        local,
                        index: None,
                        time: None,
                    });
                } else if at == depth + 1 {
                    child = Some(start.local_name().as_ref().to_vec());
                }
                at += 1;
            }
            Event::Empty(_) if at == depth => return Err(NotAListing("an event without content")),
            Event::Empty(start) if at == 0 => root = Some(start.local_name().as_ref().to_vec()),
            Event::Text(text) if at == depth + 2 => {
                if let (Some(event), Some(name)) = (&mut current, &child) {
                    match name.as_slice() {
                        b"index" => event.index = Some(before..after),
                        b"time" => {
                            event.time = std::str::from_utf8(text.as_ref())
                                .ok()
                                .and_then(crate::time::parse_iso8601);
                        }
                        _ => {}
                    }
                }
            }
            Event::End(_) => {
                at = at.saturating_sub(1);
                if at == depth + 1 {
                    child = None;
                } else if at == depth
                    && let Some(mut event) = current.take()
                {
                    event.range.end = after;
                    found.push(event);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok((root, found))
}

/// An attribute's value, unescaped.
fn attribute(start: &quick_xml::events::BytesStart, name: &[u8]) -> Option<String> {
    start
        .attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// An event's start tag with its `id` attribute and its href's last segment renumbered.
fn patch_tag(tag: &[u8], local: &str, merged: &str) -> Vec<u8> {
    let mut out = tag.to_vec();
    for quote in ["\"", "'"] {
        for (old, new) in [
            (
                format!("id={quote}{local}{quote}"),
                format!("id={quote}{merged}{quote}"),
            ),
            (
                format!("/events/{local}{quote}"),
                format!("/events/{merged}{quote}"),
            ),
        ] {
            out = replace_attribute_value(&out, old.as_bytes(), new.as_bytes());
        }
    }
    out
}

/// `tag` with the first `old` that starts an attribute (after whitespace) or ends an href
/// replaced by `new`.
fn replace_attribute_value(tag: &[u8], old: &[u8], new: &[u8]) -> Vec<u8> {
    let is_href_tail = old.starts_with(b"/");
    let found = tag.windows(old.len()).enumerate().position(|(at, window)| {
        window == old && (is_href_tail || at > 0 && tag[at - 1].is_ascii_whitespace())
    });
    match found {
        Some(at) => [&tag[..at], new, &tag[at + old.len()..]].concat(),
        None => tag.to_vec(),
    }
}

/// A JSON event renumbered as `member`'s.
fn json_event(mut item: Value, member: usize) -> Result<Item, NotAListing> {
    let local = item
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse::<u64>().ok())
        .ok_or(NotAListing("an event without an integer id"))?;
    let merged = merged_id(local, member).ok_or(NotAListing("an event id out of range"))?;
    let time = match item.get("time") {
        Some(Value::Number(ms)) => ms.as_i64(),
        Some(Value::String(text)) => crate::time::parse_iso8601(text),
        _ => None,
    };
    item["id"] = Value::String(merged.to_string());
    if item.get("index").is_some() {
        item["index"] = Value::from(merged);
    }
    if let Some(Value::String(href)) = item.get_mut("href")
        && let Some(head) = href.strip_suffix(&format!("/events/{local}"))
    {
        *href = format!("{head}/events/{merged}");
    }
    Ok(Item {
        bytes: serde_json::to_vec(&item).expect("a JSON value serialises"),
        local,
        merged,
        time: time.unwrap_or(i64::MIN),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = "<?xml version=\"1.0\"?>\n<events>\n    \
        <event href=\"/all/ovirt-engine/api/events/12\" id=\"12\"><description>VM x</description>\
        <index>12</index><time>2026-12-03T10:00:00.000+01:00</time>\
        <vm href=\"/all/ovirt-engine/api/vms/5\" id=\"5\"/></event>\n    \
        <event id='7' href='/all/ovirt-engine/api/events/7'><index>7</index></event>\n</events>\n";

    /// Ids decode to their member and own id; a slot past the members names none.
    #[test]
    fn ids_decode() {
        assert_eq!(merged_id(12, 0), Some(1201));
        assert_eq!(merged_id(12, 2), Some(1203));
        assert_eq!(decode(1203, 3), Some((2, 12)));
        assert_eq!(decode(1204, 3), None);
        assert_eq!(decode(1200, 3), None);
        assert_eq!(merged_id(u64::MAX / 10, 0), None);
    }

    /// An XML event's id, index and href are renumbered, nothing else: not the ids of what it
    /// refers to, not its text.
    #[test]
    fn xml_events_renumbered() {
        let listing = listing(Representation::Xml, XML.as_bytes(), 1).unwrap();
        assert_eq!(listing.name.as_deref(), Some(&b"events"[..]));
        let [first, second] = listing.items.as_slice() else {
            panic!("two events")
        };
        let text = String::from_utf8(first.bytes.clone()).unwrap();
        assert_eq!(
            text,
            "<event href=\"/all/ovirt-engine/api/events/1202\" id=\"1202\"><description>VM x</description>\
             <index>1202</index><time>2026-12-03T10:00:00.000+01:00</time>\
             <vm href=\"/all/ovirt-engine/api/vms/5\" id=\"5\"/></event>"
        );
        assert_eq!((first.local, first.merged), (12, 1202));
        assert_eq!(
            first.time,
            crate::time::parse_iso8601("2026-12-03T09:00:00Z").unwrap()
        );
        let text = String::from_utf8(second.bytes.clone()).unwrap();
        assert_eq!(
            text,
            "<event id='702' href='/all/ovirt-engine/api/events/702'><index>702</index></event>"
        );
        assert_eq!(second.time, i64::MIN);
        let one = "<?xml version=\"1.0\"?>\n<event href=\"/a/events/3\" id=\"3\"><index>3</index></event>\n";
        let renumbered = single(Representation::Xml, one.as_bytes(), 0).unwrap();
        assert_eq!(
            String::from_utf8(renumbered.bytes).unwrap(),
            "<?xml version=\"1.0\"?>\n<event href=\"/a/events/301\" id=\"301\"><index>301</index></event>\n"
        );
        assert!(listing_fails("<events><event><index>1</index></event></events>"));
        assert!(listing_fails("<events><event id=\"x\"/></events>"));
    }

    fn listing_fails(xml: &str) -> bool {
        listing(Representation::Xml, xml.as_bytes(), 0).is_err()
    }

    /// A JSON event's id (a string), index (a number) and href are renumbered.
    #[test]
    fn json_events_renumbered() {
        let body = r#"{"event":[{"href":"/all/ovirt-engine/api/events/12","id":"12","index":12,"time":1000,"vm":{"id":"5"}}]}"#;
        let listing = listing(Representation::Json, body.as_bytes(), 0).unwrap();
        let item: Value = serde_json::from_slice(&listing.items[0].bytes).unwrap();
        assert_eq!(item["id"], "1201");
        assert_eq!(item["index"], 1201);
        assert_eq!(item["href"], "/all/ovirt-engine/api/events/1201");
        assert_eq!(item["vm"]["id"], "5");
        assert_eq!(listing.items[0].time, 1000);
        let empty = super::listing(Representation::Json, b"{}", 0).unwrap();
        assert!(empty.items.is_empty());
    }

    fn item(member: usize, local: u64, time: i64) -> Item {
        Item {
            bytes: Vec::new(),
            local,
            merged: merged_id(local, member).unwrap(),
            time,
        }
    }

    /// Newest first across members by time, ties by merged id; oldest first when asked; then
    /// the page cut.
    #[test]
    fn events_ordered_by_time() {
        let listing = |items| Listing { name: None, items };
        let mut listings = [
            listing(vec![item(0, 9, 300), item(0, 8, 100)]),
            listing(vec![item(1, 50, 300), item(1, 40, 200)]),
        ];
        let merged = |items: Vec<Item>| items.iter().map(|i| i.merged).collect::<Vec<_>>();
        assert_eq!(
            merged(order(&mut listings, false, (0, None))),
            [5002, 901, 4002, 801]
        );
        let mut listings = [
            listing(vec![item(0, 9, 300), item(0, 8, 100)]),
            listing(vec![item(1, 50, 300), item(1, 40, 200)]),
        ];
        assert_eq!(merged(order(&mut listings, true, (1, Some(2)))), [4002, 901]);
    }

    /// A snapshot (`max=1`) marks each member at its newest event no newer than the one
    /// delivered; a member with nothing that old keeps the `from` it was asked from.
    #[test]
    fn cursors_mark_each_member_at_the_delivered_time() {
        let cursors = Cursors::new();
        let returned = vec![vec![(300, 9), (100, 8)], vec![(200, 40)], vec![(400, 7)]];
        let delivered = [item(0, 9, 300), item(1, 40, 200)];
        cursors.record("admin", &returned, &[0, 0, 5], &delivered);
        assert_eq!(&*cursors.get("admin", 901).unwrap(), [9, 40, 5]);
        assert_eq!(&*cursors.get("admin", 4002).unwrap(), [8, 40, 5]);
        assert!(cursors.get("alice", 901).is_none());
    }
}
