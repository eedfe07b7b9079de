//! Objects to XML and JSON, the way the engine lays them out (docs/engine.md, section 4.2): `href` and
//! `id` attributes, `<actions>` first, then name, description, comment, the `<link rel>` of each
//! sub-collection, the object's own members, and references as `href`/`id` stubs. Also the streamed
//! body of a listing (bounded memory for `--vms 100000`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};

use super::model::{Entity, Kind, Prop, SubCollection, derive, derived_members};
use super::repr::{Value, Writer};
use crate::body::BoxError;
use crate::wire::Representation;

/// How objects are written for one request.
pub(super) struct View {
    /// `/ovirt-engine/api`, or `/ovirt-engine/api/v4` when the request used that form (every href
    /// then carries `/v4`).
    pub base: String,
    /// `follow=` paths (`disk_attachments.disk` is `["disk_attachments", "disk"]`).
    pub follow: Vec<Vec<String>>,
    /// `All-Content: true`: heavy members included.
    pub all_content: bool,
}

impl View {
    pub(super) fn href(&self, entity: &Entity) -> String {
        let id = entity.kind.format_id(entity.id);
        match entity.kind {
            Kind::Nic | Kind::DiskAttachment | Kind::Snapshot | Kind::Statistic => {
                let (owner, parent) = match entity.reference("host") {
                    Some(host) => (Kind::Host, host),
                    None => (Kind::Vm, entity.reference("vm").unwrap_or_default()),
                };
                format!(
                    "{}/{}/{}/{}/{id}",
                    self.base,
                    owner.info().collection,
                    owner.format_id(parent),
                    entity.kind.info().collection
                )
            }
            kind => format!("{}/{}/{id}", self.base, kind.info().collection),
        }
    }
}

/// The follow paths below one step (`disk_attachments.disk` below `disk_attachments` is `disk`).
fn below<'a>(follow: &'a [&'a [String]], step: &str) -> Vec<&'a [String]> {
    follow
        .iter()
        .filter(|path| path.first().is_some_and(|s| s == step))
        .map(|path| &path[1..])
        .filter(|rest| !rest.is_empty())
        .collect()
}

fn follows(follow: &[&[String]], step: &str) -> bool {
    follow.iter().any(|path| path.first().is_some_and(|s| s == step))
}

/// Writes one object. `owner` is the VM a derived object belongs to, when known: following
/// `disk_attachments.disk` inlines the VM's disk.
pub(super) fn entity(
    w: &mut Writer,
    view: &View,
    e: &Entity,
    element: &'static str,
    follow: &[&[String]],
    owner: Option<&Entity>,
) {
    let href = view.href(e);
    let id = e.kind.format_id(e.id);
    w.start(element, &[("href", &href), ("id", &id)]);
    let actions = e.kind.info().actions;
    if !actions.is_empty() {
        w.start("actions", &[]);
        w.start_array("link");
        for verb in actions {
            w.stub("link", &[("href", &format!("{href}/{verb}")), ("rel", verb)]);
        }
        w.end_array();
        w.end();
    }
    w.value("name", Value::Text(&e.name));
    w.value("description", Value::Text(&e.description));
    w.value("comment", Value::Text(&e.comment));
    // Followed sub-collections are inlined when the parent alone makes their members; the others
    // (permissions, tags) stay links.
    let subs = e.kind.subcollections();
    let inlined: Vec<(&SubCollection, Vec<Entity>)> = subs
        .iter()
        .filter(|s| follows(follow, s.follow))
        .filter_map(|s| derived_members(s.kind, e).map(|members| (s, members)))
        .collect();
    let linked: Vec<_> = subs
        .iter()
        .filter(|s| !inlined.iter().any(|(i, _)| i.segment == s.segment))
        .collect();
    if !linked.is_empty() {
        w.start_array("link");
        for sub in linked {
            w.stub(
                "link",
                &[("href", &format!("{href}/{}", sub.segment)), ("rel", sub.segment)],
            );
        }
        w.end_array();
    }
    if let Some(status) = e.status {
        w.value("status", Value::Text(status));
    }
    for (name, prop) in &e.props {
        write_prop(w, name, prop);
    }
    if view.all_content && e.kind == Kind::Vm {
        write_prop(w, "console", &Prop::Group(vec![("enabled", Prop::Bool(false))]));
        w.value("soundcard_enabled", Value::Bool(false));
        write_prop(
            w,
            "virtio_scsi",
            &Prop::Group(vec![("enabled", Prop::Bool(true))]),
        );
    }
    for &(name, kind, id) in &e.refs {
        if let Some(vm) = owner.filter(|_| follows(follow, name) && kind == Kind::Disk) {
            entity(w, view, &derive(Kind::Disk, vm), name, &below(follow, name), None);
        } else {
            let href = format!("{}/{}/{}", view.base, kind.info().collection, kind.format_id(id));
            w.stub(name, &[("href", &href), ("id", &kind.format_id(id))]);
        }
    }
    for (sub, members) in &inlined {
        let info = sub.kind.info();
        w.start(info.plural, &[]);
        w.start_array(info.singular);
        for child in members {
            entity(w, view, child, info.singular, &below(follow, sub.follow), Some(e));
        }
        w.end_array();
        w.end();
    }
    w.end();
}

fn write_prop(w: &mut Writer, name: &'static str, prop: &Prop) {
    match prop {
        Prop::Text(text) => w.value(name, Value::Text(text)),
        Prop::Static(text) => w.value(name, Value::Text(text)),
        Prop::Int(n) => w.value(name, Value::Int(*n)),
        Prop::Bool(b) => w.value(name, Value::Bool(*b)),
        Prop::Date(ms) => w.value(name, Value::Date(*ms)),
        Prop::Group(members) => {
            w.start(name, &[]);
            for (member, prop) in members {
                write_prop(w, member, prop);
            }
            w.end();
        }
    }
}

/// One object as a whole document.
pub(super) fn document(repr: Representation, view: &View, e: &Entity) -> Bytes {
    let mut w = Writer::new(repr);
    w.document_start();
    let follow: Vec<&[String]> = view.follow.iter().map(Vec::as_slice).collect();
    entity(&mut w, view, e, e.kind.info().singular, &follow, None);
    w.document_end();
    Bytes::from(w.out)
}

/// Bytes rendered before a listing hands a chunk to hyper.
const CHUNK: usize = 64 * 1024;

/// A collection, rendered lazily from a snapshot of its members, one chunk at a time.
pub(super) struct Listing {
    writer: Writer,
    view: Arc<View>,
    kind: Kind,
    items: std::vec::IntoIter<Arc<Entity>>,
    /// The VM a sub-collection belongs to.
    owner: Option<Arc<Entity>>,
    done: bool,
}

impl Listing {
    pub(super) fn new(
        repr: Representation,
        view: Arc<View>,
        kind: Kind,
        items: Vec<Arc<Entity>>,
        owner: Option<Arc<Entity>>,
    ) -> Listing {
        let info = kind.info();
        let mut writer = Writer::new(repr);
        writer.document_start();
        writer.start(info.plural, &[]);
        if !items.is_empty() {
            // Jackson leaves an empty list out: an empty JSON collection is `{}`.
            writer.start_array(info.singular);
        }
        let empty = items.is_empty();
        let mut listing = Listing {
            writer,
            view,
            kind,
            items: items.into_iter(),
            owner,
            done: false,
        };
        if empty {
            listing.finish(false);
        }
        listing
    }

    fn finish(&mut self, had_items: bool) {
        if had_items {
            self.writer.end_array();
        }
        self.writer.end();
        self.writer.document_end();
        self.done = true;
    }

    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.writer.out.is_empty() && self.done {
            return None;
        }
        let singular = self.kind.info().singular;
        let view = self.view.clone();
        let owner = self.owner.clone();
        let follow: Vec<&[String]> = view.follow.iter().map(Vec::as_slice).collect();
        while !self.done && self.writer.out.len() < CHUNK {
            match self.items.next() {
                Some(item) => entity(
                    &mut self.writer,
                    &view,
                    &item,
                    singular,
                    &follow,
                    owner.as_deref(),
                ),
                None => self.finish(true),
            }
        }
        let chunk = std::mem::replace(&mut self.writer.out, Vec::with_capacity(CHUNK + 8 * 1024));
        Some(Bytes::from(chunk))
    }
}

impl Body for Listing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.get_mut().next_chunk().map(|chunk| Ok(Frame::data(chunk))))
    }
}
