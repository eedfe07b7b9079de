//! `/ovirt-engine/api`: authentication, parameters, routing, the API root, collections (search,
//! max, page, follow, filtering) and objects, with the engine's status codes and bodies
//! (docs/engine.md, sections 3 and 4). Writes on VMs (add, update, remove, actions) are in `api/vm.rs`.
//!
//! Departures (also in docs/simulator.md): only VMs can be added, updated, removed and acted on;
//! other kinds are read-only; collections the simulator does not model are served empty; actions
//! complete synchronously (200, never 202) and status changes are immediate (`start` goes straight
//! to `up`, without `wait_for_launch` and `powering_up`).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use super::model::{BLANK_ID, Entity, Id, Inventory, Kind, Prop, derive, derived_members};
use super::render::{Listing, View, document};
use super::repr::{Value, Writer};
use super::search::{Search, compare_values};
use super::sso::{add_cookie, authenticate, unauthorized};
use super::users::User;
use super::{Sim, query_params};
use crate::api::path::{ApiPath, EngineArea, Segment};
use crate::body::GatewayBody;
use crate::wire::Representation;

mod console;
mod vm;

/// The collections of the API root: URL segment, collection element, and whether it is searchable.
/// Those without a [`Kind`] are served empty.
const ROOT_COLLECTIONS: &[(&str, &str, bool)] = &[
    ("affinitylabels", "affinity_labels", false),
    ("bookmarks", "bookmarks", false),
    ("clusterlevels", "cluster_levels", false),
    ("clusters", "clusters", true),
    ("cpuprofiles", "cpu_profiles", false),
    ("datacenters", "data_centers", true),
    ("diskprofiles", "disk_profiles", false),
    ("disks", "disks", true),
    ("domains", "domains", false),
    ("events", "events", true),
    ("externalhostproviders", "external_host_providers", false),
    ("groups", "groups", true),
    ("hosts", "hosts", true),
    ("icons", "icons", false),
    ("imagetransfers", "image_transfers", false),
    ("instancetypes", "instance_types", true),
    ("jobs", "jobs", false),
    ("katelloerrata", "katello_errata", false),
    ("macpools", "mac_pools", false),
    ("networkfilters", "network_filters", false),
    ("networks", "networks", true),
    ("openstackimageproviders", "openstack_image_providers", false),
    ("openstacknetworkproviders", "openstack_network_providers", false),
    ("openstackvolumeproviders", "openstack_volume_providers", false),
    ("operatingsystems", "operating_systems", false),
    ("permissions", "permissions", false),
    ("roles", "roles", false),
    ("schedulingpolicies", "scheduling_policies", false),
    ("schedulingpolicyunits", "scheduling_policy_units", false),
    ("storageconnections", "storage_connections", false),
    ("storagedomains", "storage_domains", true),
    ("tags", "tags", false),
    ("templates", "templates", true),
    ("users", "users", true),
    ("vmpools", "vm_pools", true),
    ("vms", "vms", true),
    ("vnicprofiles", "vnic_profiles", false),
];

/// Jobs and events kept before the oldest are dropped.
const HISTORY: usize = 1000;

/// The engine's page size for `page N` without `max` (SearchResultsLimit).
const DEFAULT_PAGE_SIZE: usize = 100;

/// Why a request fails, as the engine answers it.
enum Failure {
    /// 404 with an empty body: no such object, or one the user may not see.
    NotFound,
    Fault {
        status: StatusCode,
        reason: &'static str,
        detail: String,
    },
    /// A failed action: `<action><status>failed</status><fault>..</fault></action>`.
    Action { status: StatusCode, detail: String },
}

fn fault(status: StatusCode, reason: &'static str, detail: impl Into<String>) -> Failure {
    Failure::Fault {
        status,
        reason,
        detail: detail.into(),
    }
}

fn bad_request(detail: impl Into<String>) -> Failure {
    fault(StatusCode::BAD_REQUEST, "Operation Failed", detail)
}

/// A backend CONFLICT on add, update or remove: a plain `<fault>` (only actions wrap their fault in
/// an `<action>`; BackendResource.performAction and performCreate throw, docs/engine.md, section 4.4).
fn conflict(detail: &str) -> Failure {
    fault(StatusCode::CONFLICT, "Operation Failed", format!("[{detail}]"))
}

fn forbidden() -> Failure {
    fault(
        StatusCode::FORBIDDEN,
        "Operation Failed",
        "[User is not authorized to perform this action.]",
    )
}

type Answer = Result<Response<GatewayBody>, Failure>;

/// One authenticated API request.
struct Call<'a> {
    sim: &'a Sim,
    user: &'a User,
    method: &'a Method,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    repr: Representation,
    /// Query parameters, then the matrix parameters of the last segment (the engine's lookup order).
    params: Vec<(String, String)>,
    view: View,
    /// `scheme://host[:port]` from the Host header, for absolute URLs (Link, Location).
    origin: String,
    filtered: bool,
    /// The bearer token the request came with, if it came with one.
    bearer: Option<String>,
    /// The user's index, for tokens issued for the session.
    user_index: usize,
}

pub(super) fn handle(sim: &Sim, request: &Request<Bytes>, tls: bool) -> Response<GatewayBody> {
    let headers = request.headers();
    let query = request.uri().query();
    let repr = Representation::of_request(headers, query);
    let Some(ApiPath {
        area: EngineArea::Api(resource),
        ..
    }) = ApiPath::parse("", request.uri().path(), query)
    else {
        return empty(StatusCode::NOT_FOUND);
    };
    let Some(auth) = authenticate(sim, headers, tls) else {
        return unauthorized();
    };
    // VersionFilter: only version 4 exists on 4.4; anything else is a 400 from sendError.
    if let Some(version) = headers.get("version")
        && version.as_bytes() != b"4"
    {
        return super::text(
            StatusCode::BAD_REQUEST,
            "text/html",
            "<html><head><title>Error</title></head><body>Bad Request</body></html>",
        );
    }

    let user = sim.user(auth.user);
    let mut params = query_params(query);
    if let Some(last) = resource.segments.last() {
        params.extend(last.matrix.iter().cloned());
    }
    let scheme = if tls { "https" } else { "http" };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let base = match resource.version {
        Some(4) => "/ovirt-engine/api/v4",
        _ => "/ovirt-engine/api",
    };
    let mut call = Call {
        sim,
        user,
        method: request.method(),
        headers,
        body: request.body(),
        repr,
        params,
        view: View {
            base: base.to_owned(),
            follow: Vec::new(),
            all_content: false,
        },
        origin: format!("{scheme}://{host}"),
        filtered: !user.admin,
        bearer: auth.bearer,
        user_index: auth.user,
    };
    let answer = call.prepare().and_then(|()| call.route(&resource.segments));
    let mut response = match answer {
        Ok(response) => response,
        Err(failure) => call.failure(failure),
    };
    response
        .headers_mut()
        .insert("correlation-id", correlation_id(headers, &call.params, sim));
    add_cookie(&mut response, auth.set_cookie);
    response
}

/// The request's Correlation-Id, sanitised as the engine does (`[0-9a-zA-Z_-]`, at most 36), or a
/// new UUID (CurrentFilter).
fn correlation_id(headers: &HeaderMap, params: &[(String, String)], sim: &Sim) -> HeaderValue {
    let given = headers
        .get("correlation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            params
                .iter()
                .find(|(k, _)| k == "correlation_id")
                .map(|(_, v)| v.clone())
        });
    let clean: String = given
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(36)
        .collect();
    let id = if clean.is_empty() {
        Kind::Job.format_id(sim.rng().uuid())
    } else {
        clean
    };
    HeaderValue::from_str(&id).expect("alphanumerics, '-' and '_' are a valid header value")
}

impl Call<'_> {
    /// The SSO token of the caller's session: its bearer token, or (Basic, cookie) one the engine
    /// would have made for the session.
    fn session_token(&self) -> String {
        self.bearer.clone().unwrap_or_else(|| {
            let token = self.sim.new_secret();
            self.sim.sso.issue(token.clone(), self.user_index);
            token
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter; `header` is also consulted for `filter` and `All-Content`. As the
    /// engine's getBooleanParameter: an empty value is true, text that is no boolean is ignored.
    fn flag(&self, name: &str, header: Option<&str>) -> Option<bool> {
        let value = self.param(name).map(str::to_owned).or_else(|| {
            header
                .and_then(|h| self.headers.get(h))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        value.and_then(|value| crate::api::params::boolean(&value, true))
    }

    fn prepare(&mut self) -> Result<(), Failure> {
        // Non-admins are filtered by default (ENGINE_API_FILTER_BY_DEFAULT); one that asks for an
        // unfiltered view fails permission validation.
        match self.flag("filter", Some("filter")) {
            Some(true) => self.filtered = true,
            Some(false) if !self.user.admin => return Err(forbidden()),
            _ => {}
        }
        self.view.all_content = self.flag("all_content", Some("all-content")).unwrap_or(false);
        if let Some(follow) = self.param("follow") {
            self.view.follow = follow
                .split(',')
                .map(|path| path.trim().split('.').map(str::to_owned).collect())
                .collect();
        }
        Ok(())
    }

    fn route(&self, segments: &[Segment]) -> Answer {
        let names: Vec<&str> = segments.iter().map(|s| s.name.as_str()).collect();
        match (self.method, names.as_slice()) {
            (&Method::GET | &Method::HEAD, []) => Ok(self.root()),
            (_, []) => Err(not_allowed()),
            (method, [collection]) => match Kind::of_collection(collection) {
                Some(kind) if *method == Method::GET => self.list(kind, None),
                Some(Kind::Vm) if *method == Method::POST => self.add_vm(),
                Some(Kind::Tag) if *method == Method::POST => self.add_tag(),
                Some(_) => Err(not_allowed()),
                None => match ROOT_COLLECTIONS
                    .iter()
                    .find(|(segment, ..)| segment == collection)
                {
                    Some((_, element, _)) if *method == Method::GET => Ok(self.empty_collection(element)),
                    Some(_) => Err(not_allowed()),
                    None => Err(Failure::NotFound),
                },
            },
            (method, [collection, id, rest @ ..]) => {
                let kind = Kind::of_collection(collection).ok_or(Failure::NotFound)?;
                let entity = self.find(kind, id)?;
                match (method, rest) {
                    (&Method::GET, []) => {
                        let answer = self.object(&entity, StatusCode::OK);
                        if kind == Kind::Vm {
                            self.settle(&entity);
                        }
                        Ok(answer)
                    }
                    (&Method::PUT, []) if kind == Kind::Vm => self.update_vm(&entity),
                    (&Method::DELETE, []) if kind == Kind::Vm => self.remove_vm(&entity),
                    (&Method::POST, [verb]) if kind.info().actions.contains(verb) => self.act(&entity, verb),
                    (_, ["graphicsconsoles", more @ ..]) if kind == Kind::Vm => self.console(&entity, more),
                    (_, [sub, more @ ..]) => {
                        let sub = kind
                            .subcollections()
                            .iter()
                            .find(|s| s.segment == *sub)
                            .ok_or(Failure::NotFound)?;
                        match (method, more) {
                            (&Method::GET, []) => self.list(sub.kind, Some(&entity)),
                            (&Method::POST, []) if sub.kind == Kind::Tag => self.attach_tag(&entity),
                            (&Method::DELETE, [tag]) if sub.kind == Kind::Tag => {
                                self.detach_tag(&entity, self.find(Kind::Tag, tag)?.id)
                            }
                            (&Method::GET, [child]) => {
                                let id = sub
                                    .kind
                                    .parse_id(child)
                                    .ok_or_else(|| bad_request(format!("Invalid UUID string: {child}")))?;
                                let inventory = self.sim.inventory();
                                let child = members(&inventory, sub.kind, &entity)
                                    .into_iter()
                                    .find(|member| member.id == id)
                                    .ok_or(Failure::NotFound)?;
                                drop(inventory);
                                Ok(self.object(&child, StatusCode::OK))
                            }
                            _ => Err(not_allowed()),
                        }
                    }
                    _ => Err(not_allowed()),
                }
            }
        }
    }

    /// The object `kind`/`id` if it exists and the user may see it; a malformed id is a 400.
    fn find(&self, kind: Kind, id: &str) -> Result<Arc<Entity>, Failure> {
        let id = kind
            .parse_id(id)
            .ok_or_else(|| bad_request(format!("Invalid UUID string: {id}")))?;
        let inventory = self.sim.inventory();
        let entity = inventory.get(kind, id).ok_or(Failure::NotFound)?;
        if self.visible(&inventory, &entity) {
            Ok(entity)
        } else {
            Err(Failure::NotFound)
        }
    }

    fn visible(&self, inventory: &Inventory, entity: &Entity) -> bool {
        !self.filtered || self.user.sees(inventory, entity)
    }

    fn object(&self, entity: &Entity, status: StatusCode) -> Response<GatewayBody> {
        let body = document(self.repr, &self.view, entity);
        let mut response = self.bytes(status, body);
        if *self.method == Method::HEAD {
            *response.body_mut() = GatewayBody::empty();
        }
        response
    }

    fn bytes(&self, status: StatusCode, body: Bytes) -> Response<GatewayBody> {
        let length = body.len();
        let mut response = Response::new(GatewayBody::full(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.repr.content_type()));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        response
    }

    fn failure(&self, failure: Failure) -> Response<GatewayBody> {
        match failure {
            Failure::NotFound => empty(StatusCode::NOT_FOUND),
            Failure::Fault {
                status,
                reason,
                detail,
            } => {
                let mut w = Writer::new(self.repr);
                w.document_start();
                w.start("fault", &[]);
                w.value("reason", Value::Text(reason));
                w.value("detail", Value::Text(&detail));
                w.end();
                w.document_end();
                self.bytes(status, Bytes::from(w.out))
            }
            Failure::Action { status, detail } => {
                let mut w = Writer::new(self.repr);
                w.document_start();
                w.start("action", &[]);
                w.value("status", Value::Text("failed"));
                w.start("fault", &[]);
                w.value("reason", Value::Text("Operation Failed"));
                w.value("detail", Value::Text(&format!("[{detail}]")));
                w.end();
                w.end();
                w.document_end();
                self.bytes(status, Bytes::from(w.out))
            }
        }
    }

    /// `GET /ovirt-engine/api`: links to every collection, product info, special objects, the
    /// summary (unfiltered users only, BZ 1612124), the time and the authenticated user; and the
    /// `Link` header of absolute URLs built from the Host header.
    fn root(&self) -> Response<GatewayBody> {
        let base = &self.view.base;
        let mut links: Vec<(String, String)> = Vec::new();
        for (segment, _, searchable) in ROOT_COLLECTIONS {
            links.push((format!("{base}/{segment}"), (*segment).to_owned()));
            if *searchable {
                let template = if *segment == "events" {
                    format!("{base}/events;from={{event_id}}?search={{query}}")
                } else {
                    format!("{base}/{segment}?search={{query}}")
                };
                links.push((template, format!("{segment}/search")));
            }
        }
        let mut w = Writer::new(self.repr);
        w.document_start();
        w.start("api", &[]);
        w.start_array("link");
        for (href, rel) in &links {
            w.stub("link", &[("href", href), ("rel", rel)]);
        }
        w.end_array();
        w.start("product_info", &[]);
        w.value("instance_id", Value::Text("5b4f6a9e-8f0a-4b8e-9d7c-0123456789ab"));
        w.value("name", Value::Text("oVirt Engine"));
        w.value("vendor", Value::Text("ovirt.org"));
        w.start("version", &[]);
        w.value("build", Value::Int(7));
        w.value("full_version", Value::Text("4.4.10.7-1.el8"));
        w.value("major", Value::Int(4));
        w.value("minor", Value::Int(4));
        w.value("revision", Value::Int(0));
        w.end();
        w.end();
        w.start("special_objects", &[]);
        let blank = Kind::Template.format_id(BLANK_ID);
        w.stub(
            "blank_template",
            &[("href", &format!("{base}/templates/{blank}")), ("id", &blank)],
        );
        w.stub(
            "root_tag",
            &[("href", &format!("{base}/tags/{blank}")), ("id", &blank)],
        );
        w.end();
        if !self.filtered {
            let inventory = self.sim.inventory();
            let count = |kind: Kind, active: &dyn Fn(&Entity) -> bool| {
                (
                    inventory.all(kind).filter(|e| active(e)).count(),
                    inventory.count(kind),
                )
            };
            w.start("summary", &[]);
            for (name, (active, total)) in [
                ("hosts", count(Kind::Host, &|e| e.status == Some("up"))),
                ("storage_domains", count(Kind::StorageDomain, &|_| true)),
                ("users", count(Kind::User, &|_| true)),
                ("vms", count(Kind::Vm, &|e| e.status == Some("up"))),
            ] {
                w.start(name, &[]);
                w.value("active", Value::Int(active as i64));
                w.value("total", Value::Int(total as i64));
                w.end();
            }
            w.end();
        }
        w.value("time", Value::Date(now_ms()));
        let user = Kind::User.format_id(self.user.id);
        let user_href = format!("{base}/users/{user}");
        w.stub("authenticated_user", &[("href", &user_href), ("id", &user)]);
        w.stub("effective_user", &[("href", &user_href), ("id", &user)]);
        w.end();
        w.document_end();
        let mut absolute: Vec<String> = links
            .iter()
            .map(|(href, rel)| format!("<{}{href}>; rel={rel}", self.origin))
            .collect();
        absolute.sort();
        let mut response = self.bytes(StatusCode::OK, Bytes::from(w.out));
        if let Ok(value) = HeaderValue::from_str(&absolute.join(",")) {
            response.headers_mut().insert("link", value);
        }
        if *self.method == Method::HEAD {
            *response.body_mut() = GatewayBody::empty();
        }
        response
    }

    fn empty_collection(&self, element: &'static str) -> Response<GatewayBody> {
        let mut w = Writer::new(self.repr);
        w.document_start();
        w.start(element, &[]);
        w.end();
        w.document_end();
        self.bytes(StatusCode::OK, Bytes::from(w.out))
    }

    /// A collection, top-level or under `parent`, filtered by visibility, `search`, `from` (events),
    /// sorted, paged, cut at `max`, and streamed.
    fn list(&self, kind: Kind, parent: Option<&Entity>) -> Answer {
        let search = match self.param("search") {
            Some(text) => Some(Search::parse(text).map_err(|e| bad_request(e.to_string()))?),
            None => None,
        };
        if let Some(search) = &search {
            let known = kind.info().search_fields;
            if let Some(unknown) = search
                .fields()
                .into_iter()
                .find(|f| !["name", "id", "description", "status"].contains(f) && !known.contains(f))
            {
                return Err(bad_request(format!(
                    "Invalid search: '{unknown}' is not a searchable field of {}",
                    kind.info().collection
                )));
            }
        }
        let case_sensitive = self.flag("case_sensitive", None).unwrap_or(false);
        let max = match self.param("max") {
            None => None,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if n < 0 => None,
                Ok(n) => Some(n as usize),
                Err(_) => return Err(bad_request(format!("Invalid value '{text}' for parameter 'max'"))),
            },
        };
        let from = match (kind, self.param("from")) {
            (Kind::Event, Some(text)) => Some(
                text.parse::<u128>()
                    .map_err(|_| bad_request(format!("Invalid value '{text}' for parameter 'from'")))?,
            ),
            _ => None,
        };
        let mut items: Vec<Arc<Entity>> = {
            let inventory = self.sim.inventory();
            let candidates: Vec<Arc<Entity>> = match (kind, parent) {
                (Kind::Disk, None) => inventory
                    .all(Kind::Vm)
                    .map(|vm| Arc::new(derive(Kind::Disk, vm)))
                    .collect(),
                (kind, Some(parent)) => members(&inventory, kind, parent),
                (kind, None) => inventory.all(kind).cloned().collect(),
            };
            candidates
                .into_iter()
                .filter(|e| parent.is_some() || self.visible(&inventory, e))
                .filter(|e| from.is_none_or(|from| e.id > from))
                .filter(|e| {
                    search.as_ref().is_none_or(|s| {
                        s.matches(&|field| field_values(&inventory, e, field), case_sensitive)
                    })
                })
                .collect()
        };
        match search.as_ref().and_then(Search::sort) {
            Some((field, descending)) => {
                let inventory = self.sim.inventory();
                let mut keyed: Vec<(Option<String>, Arc<Entity>)> = items
                    .into_iter()
                    .map(|e| (field_values(&inventory, &e, field).into_iter().next(), e))
                    .collect();
                keyed.sort_by(|(a, _), (b, _)| match (a, b) {
                    (Some(a), Some(b)) => compare_values(a, b, case_sensitive),
                    (a, b) => a.is_some().cmp(&b.is_some()),
                });
                if descending {
                    keyed.reverse();
                }
                items = keyed.into_iter().map(|(_, e)| e).collect();
            }
            // Events newest first, as the engine lists them; everything else by name.
            None if kind == Kind::Event => items.reverse(),
            None => items.sort_by(|a, b| a.name.cmp(&b.name)),
        }
        if let Some(page) = search.as_ref().and_then(Search::page) {
            let size = max.unwrap_or(DEFAULT_PAGE_SIZE);
            items = items.into_iter().skip((page - 1).saturating_mul(size)).collect();
        }
        if let Some(max) = max {
            items.truncate(max);
        }
        let owner = parent.map(|vm| Arc::new(vm.clone()));
        let listing = Listing::new(self.repr, Arc::new(self.view_copy()), kind, items, owner);
        let mut response = Response::new(if *self.method == Method::HEAD {
            GatewayBody::empty()
        } else {
            GatewayBody::new(listing)
        });
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(self.repr.content_type()));
        Ok(response)
    }

    fn view_copy(&self) -> View {
        View {
            base: self.view.base.clone(),
            follow: self.view.follow.clone(),
            all_content: self.view.all_content,
        }
    }
}

/// The members of a sub-collection (`/vms/ID/tags`, `/users/ID/permissions`,
/// `/storagedomains/ID/templates`), shown to whoever may see the parent, as the engine does.
fn members(inventory: &Inventory, kind: Kind, parent: &Entity) -> Vec<Arc<Entity>> {
    if let Some(derived) = derived_members(kind, parent) {
        return derived.into_iter().map(Arc::new).collect();
    }
    match (kind, parent.kind) {
        (Kind::Permission, holder_or_object) => {
            let reference = match holder_or_object {
                Kind::User => "user",
                Kind::Group => "group",
                Kind::Vm => "vm",
                Kind::Cluster => "cluster",
                Kind::DataCenter => "data_center",
                _ => return Vec::new(),
            };
            inventory
                .all(Kind::Permission)
                .filter(|p| p.reference(reference) == Some(parent.id))
                .cloned()
                .collect()
        }
        (Kind::Tag, _) => parent
            .related
            .iter()
            .filter(|(kind, _)| *kind == Kind::Tag)
            .filter_map(|&(_, tag)| inventory.get(Kind::Tag, tag))
            .collect(),
        // A storage domain holds the disks of the templates and VMs of its data center (one data
        // domain per data center here); the Blank template has no disk.
        (Kind::Template, Kind::StorageDomain) => {
            let data_center = parent.reference("data_center");
            inventory
                .all(Kind::Template)
                .filter(|t| t.id != BLANK_ID)
                .filter(|t| {
                    t.reference("cluster")
                        .and_then(|c| inventory.get(Kind::Cluster, c))
                        .and_then(|c| c.reference("data_center"))
                        == data_center
                })
                .cloned()
                .collect()
        }
        (Kind::Vm, Kind::StorageDomain) => inventory
            .all(Kind::Vm)
            .filter(|vm| vm.related(Kind::StorageDomain) == Some(parent.id))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

/// The values `?search=` compares for a field of an object: none when it has no such value,
/// several where the engine's search joins several rows (the data centers a template is in).
fn field_values(inventory: &Inventory, e: &Entity, field: &str) -> Vec<String> {
    let name_of =
        |kind: Kind, id: Option<Id>| id.and_then(|id| inventory.get(kind, id)).map(|r| r.name.clone());
    let one = |value: Option<String>| value.into_iter().collect();
    match field {
        "name" => vec![e.name.clone()],
        "id" => vec![e.kind.format_id(e.id)],
        "description" => vec![e.description.clone()],
        "status" => one(e.status.map(str::to_owned)),
        "cluster" => one(name_of(Kind::Cluster, e.reference("cluster"))),
        "host" => one(name_of(Kind::Host, e.reference("host"))),
        "template" => one(name_of(Kind::Template, e.reference("template"))),
        "storage" => one(name_of(Kind::StorageDomain, e.reference("storage_domain"))),
        // The Blank template belongs to no data center and is found in every one: ovirt_vm looks
        // it up as `name=Blank and datacenter=DC` before creating a VM from it.
        "datacenter" if e.kind == Kind::Template && e.id == BLANK_ID => inventory
            .all(Kind::DataCenter)
            .map(|dc| dc.name.clone())
            .collect(),
        "datacenter" => {
            let direct = e.reference("data_center");
            let via_cluster = || {
                e.reference("cluster")
                    .and_then(|c| inventory.get(Kind::Cluster, c))
                    .and_then(|c| c.reference("data_center"))
            };
            one(name_of(Kind::DataCenter, direct.or_else(via_cluster)))
        }
        // Templates: those the named VM was made from (`Templates: vm.name=X`).
        "vm.name" => inventory
            .all(Kind::Vm)
            .filter(|vm| vm.reference("template") == Some(e.id))
            .map(|vm| vm.name.clone())
            .collect(),
        // Events: the VM an event is about, and its code as `type`.
        "vm.id" => one(e.reference("vm").map(|vm| Kind::Vm.format_id(vm))),
        "type" if e.kind == Kind::Event => field_values(inventory, e, "code"),
        // VMs: the names of the tags attached to them.
        "tag" => e
            .related
            .iter()
            .filter(|(kind, _)| *kind == Kind::Tag)
            .filter_map(|&(_, tag)| name_of(Kind::Tag, Some(tag)))
            .collect(),
        "usrname" => match e.prop("user_name") {
            Some(Prop::Text(name)) => vec![name.clone()],
            _ => Vec::new(),
        },
        other => one(match e.prop(other) {
            Some(Prop::Text(text)) => Some(text.clone()),
            Some(Prop::Static(text)) => Some((*text).to_owned()),
            Some(Prop::Int(n)) => Some(n.to_string()),
            Some(Prop::Bool(b)) => Some(b.to_string()),
            Some(Prop::Date(ms)) => Some(ms.to_string()),
            Some(Prop::Group(_)) | None => None,
        }),
    }
}

fn not_allowed() -> Failure {
    fault(
        StatusCode::METHOD_NOT_ALLOWED,
        "Operation Failed",
        "The simulator does not support this method on this resource",
    )
}

fn empty(status: StatusCode) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::empty());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
