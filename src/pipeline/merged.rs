//! Stage `merged` (docs/federation.md, "The merged view"): which member, or members, a request
//! on the merged route goes to. One member's request runs the stages after routing as it would
//! on that member's own route (`run_at`), with hrefs rewritten under the merged base; a listing
//! runs them once per member and joins the answers (`federation::merge`).
//!
//! - `Federation-Manager: <member>` sends the request to that member, whatever it is.
//! - An id (`/vms/<id>/...`) goes to the member the id index names; on a miss, a GET is sent to
//!   every member and the one that has it answers (a write is preceded by such a GET, never
//!   fanned out). The engines' well-known ids are read from the home member.
//! - A listing (`GET /vms`) goes to every member; the answers are joined as they stream.
//! - The API root is the home member's, with the others' counters and versions merged in
//!   (`federation::root`); what is not the API goes to the home member.
//! - A create (`POST /vms`) goes to the member that holds the place its body names (the VM's
//!   cluster, by id or by name: `federation::anchor`); without one, or with one on several
//!   members, the client must name the member.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use http::header::{
    ACCEPT_ENCODING, AGE, CONTENT_LENGTH, CONTENT_TYPE, ETAG, EXPIRES, HeaderName, HeaderValue,
    LAST_MODIFIED, LOCATION,
};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};

use super::context::RequestContext;
use super::{GatewayState, rescue, run_at};
use crate::api::params::EngineParams;
use crate::api::path::{ApiPath, EngineArea, percent_decode_lossy};
use crate::auth::sso_endpoint::Endpoint;
use crate::body::{BoxError, GatewayBody};
use crate::config::Partial;
use crate::fault::{Blame, Fault};
use crate::federation::anchor::{Anchor, By, anchor_of};
use crate::federation::merge::{Join, NotAListing};
use crate::federation::search::Clauses;
use crate::federation::{Federation, Members, well_known};
use crate::wire::Representation;

mod events;

const PREFER: HeaderName = HeaderName::from_static("prefer");
/// The request header that names the member a request is for.
pub(crate) const TARGET: HeaderName = HeaderName::from_static("federation-manager");
/// The answer header that names the members a lenient listing lacks.
const INCOMPLETE: HeaderName = HeaderName::from_static("federation-incomplete");

pub(super) async fn serve(
    state: &GatewayState,
    ctx: &mut RequestContext,
    api_path: ApiPath,
    mut request: Request<GatewayBody>,
) -> Result<Response<GatewayBody>, Fault> {
    let federation = state
        .federation
        .clone()
        .expect("the merged route exists only with [federation]");
    // The SSO endpoints under the merged prefix: a login for every member.
    if let Some(endpoint) = Endpoint::of_path(&api_path.engine_path) {
        let members = federation.members.clone();
        return Ok(super::answer_sso(endpoint, state, ctx, &members, request).await);
    }
    let target = targeted(&federation, request.headers_mut())?;
    if let EngineArea::Api(resource) = &api_path.area
        && resource.segments.first().is_some_and(|s| s.name == "events")
    {
        return events::serve(state, ctx, &federation, target, api_path, request).await;
    }
    if let Some(member) = target {
        return at(state, ctx, &federation, (member, false), api_path, request).await;
    }
    let home = (federation.home, false);
    let EngineArea::Api(resource) = &api_path.area else {
        return at(state, ctx, &federation, home, api_path, request).await;
    };
    let method = request.method().clone();
    if let Some(first) = resource.segments.first()
        && let Some(why) = unmerged(&first.name, resource.segments.len(), &method)
    {
        return Err(Fault::MergedConflict {
            detail: format!("{why}; {}", how_to_target(&federation)),
        });
    }
    // The schema and the RSDL describe one engine version: the home member's.
    let params = EngineParams::new(&api_path, request.headers());
    let description = params.get("schema").is_some() || params.get("rsdl").is_some();
    match resource.segments.as_slice() {
        [] if method == Method::GET && !description => root(state, ctx, &federation, api_path, request).await,
        [collection] if method == Method::GET => {
            let collection = collection.name.clone();
            listing(state, ctx, &federation, &collection, api_path, request).await
        }
        [collection] if method == Method::POST => {
            let collection = collection.name.clone();
            create(state, ctx, &federation, &collection, api_path, request).await
        }
        // The rest of the root, and a HEAD of a listing (what a GET would get, without the
        // joining): the home member's.
        [] | [_] => at(state, ctx, &federation, home, api_path, request).await,
        [collection, id, ..] => {
            let (collection, id) = (collection.name.clone(), id.name.clone());
            by_id(state, ctx, &federation, (&collection, &id), api_path, request).await
        }
    }
}

/// Why a request to `collection` (with `segments` segments in all) is not one the merged view
/// can place, if it is not: `POST /vms/<verb>` acts on a whole collection of one member, or of
/// every member.
fn unmerged(collection: &str, segments: usize, method: &Method) -> Option<String> {
    (segments == 2 && method == Method::POST).then(|| {
        format!("An action on the collection `{collection}` would act on every Manager or on one unnamed")
    })
}

/// How a client names one member, for fault details.
fn how_to_target(federation: &Federation) -> String {
    let names: Vec<&str> = federation.members.iter().map(|m| m.name()).collect();
    format!(
        "send the header `Federation-Manager` with one of {}, or use that Manager's own route",
        names.join(", ")
    )
}

/// The member the request names in `Federation-Manager`, taken out of the request.
fn targeted(federation: &Federation, headers: &mut HeaderMap) -> Result<Option<usize>, Fault> {
    let mut values = headers.get_all(&TARGET).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Fault::BadRequest {
            detail: "The request carries more than one Federation-Manager header".into(),
        });
    }
    let member = value
        .to_str()
        .ok()
        .and_then(|name| federation.member(name.trim()));
    let Some(member) = member else {
        return Err(Fault::BadRequest {
            detail: format!(
                "Federation-Manager names no member of the merged view: {}",
                how_to_target(federation)
            ),
        });
    };
    headers.remove(&TARGET);
    Ok(Some(member))
}

/// The request at one member, keeping the id index fresh from its answer: a create's Location
/// is learned, a delete forgotten, an id answered learned unless `indexed` (the index named
/// this member for it already).
async fn at(
    state: &GatewayState,
    ctx: &mut RequestContext,
    federation: &Federation,
    (member, indexed): (usize, bool),
    api_path: ApiPath,
    request: Request<GatewayBody>,
) -> Result<Response<GatewayBody>, Fault> {
    let method = request.method().clone();
    let place = entity(&api_path).map(|(c, i, exact)| (c.to_owned(), i.to_owned(), exact));
    let upstream = federation.members[member].clone();
    let response = run_at(state, ctx, upstream, api_path, request, true).await?;
    let status = response.status();
    if status == StatusCode::CREATED
        && let Some((collection, id)) = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(location_entity)
    {
        federation.index.learn(collection, id, member);
    }
    if let Some((collection, id, exact)) = &place {
        // Only the entity's own 404 says the member lacks it, not one of what is below it.
        let gone = if method == Method::DELETE {
            status.is_success()
        } else {
            status == StatusCode::NOT_FOUND
        };
        if *exact && gone {
            federation.index.forget(collection, id, member);
        } else if !indexed && status.is_success() && method != Method::DELETE {
            federation.index.learn(collection, id, member);
        }
    }
    Ok(response)
}

/// The top-level collection and id a path is under (`/vms/<id>/nics` → `vms`, `<id>`), and
/// whether the path is the entity itself.
fn entity(api_path: &ApiPath) -> Option<(&str, &str, bool)> {
    match &api_path.area {
        EngineArea::Api(api) => match api.segments.as_slice() {
            [collection, id, rest @ ..] => Some((&collection.name, &id.name, rest.is_empty())),
            _ => None,
        },
        _ => None,
    }
}

/// The collection and id a Location names (`…/ovirt-engine/api[/v4]/vms/<id>`).
fn location_entity(location: &str) -> Option<(&str, &str)> {
    let (_, rest) = location.split_once("/ovirt-engine/api/")?;
    let rest = rest.strip_prefix("v4/").unwrap_or(rest);
    let mut segments = rest.split(['/', '?', ';']);
    let collection = segments.next().filter(|s| !s.is_empty())?;
    let id = segments.next().filter(|s| !s.is_empty())?;
    Some((collection, id))
}

/// One member's answer to a request sent to several.
struct Answer {
    member: usize,
    ctx: RequestContext,
    result: Result<Response<GatewayBody>, Fault>,
}

/// What an answer says about the member holding what was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Yes,
    No,
    /// The member could not answer (down, breaker open, busy, 5xx).
    Unknown,
    /// The member refused the request (a policy, the credentials): its answer stands.
    Refused,
}

impl Answer {
    fn held(&self) -> Held {
        match &self.result {
            Ok(response) if response.status().is_success() => Held::Yes,
            Ok(response) if response.status() == StatusCode::NOT_FOUND => Held::No,
            Ok(response) if response.status().is_server_error() => Held::Unknown,
            Ok(_) => Held::Refused,
            Err(fault) if fault.blame() == Blame::Upstream => Held::Unknown,
            Err(_) => Held::Refused,
        }
    }

    fn into_response(self, repr: Representation) -> Response<GatewayBody> {
        match self.result {
            Ok(response) => response,
            Err(fault) => rescue::respond(&fault, repr),
        }
    }
}

/// Which answer of a probe stands.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// The one member that has it.
    Found(usize),
    /// Several members have it: the client must name one.
    Several(Members),
    /// The first member that could not answer: whether the others lack it cannot be told.
    Unknown(usize),
    /// The first refusal.
    Refused(usize),
    /// No member has it.
    Absent,
}

/// Counts a probe's outcome (`gateway_federation_probes_total`).
fn count(state: &GatewayState, decision: &Decision) {
    let outcome = match decision {
        Decision::Found(_) => "found",
        Decision::Several(_) => "several",
        Decision::Unknown(_) => "unknown",
        Decision::Refused(_) => "refused",
        Decision::Absent => "absent",
    };
    state
        .metrics
        .federation_probes_total
        .with_label_values(&[outcome])
        .inc();
}

/// The decision over members' answers, by position in `held`.
fn decide(held: &[Held]) -> Decision {
    let yes: Vec<usize> = (0..held.len()).filter(|&i| held[i] == Held::Yes).collect();
    let first = |kind| held.iter().position(|h| *h == kind);
    match yes.as_slice() {
        [one] => Decision::Found(*one),
        [] => match (first(Held::Unknown), first(Held::Refused)) {
            (Some(i), _) => Decision::Unknown(i),
            (None, Some(i)) => Decision::Refused(i),
            (None, None) => Decision::Absent,
        },
        several => Decision::Several(several.iter().fold(Members::default(), |set, &i| set.with(i))),
    }
}

/// The request sent to each of `members`, at once; the answers in member order.
async fn fan_out(
    state: &GatewayState,
    ctx: &RequestContext,
    federation: &Federation,
    members: Members,
    api_path: &ApiPath,
    request: &Request<GatewayBody>,
) -> Vec<Answer> {
    let requests = members
        .iter()
        .map(|member| (member, api_path.clone(), head_copy(request)))
        .collect();
    fan_out_each(state, ctx, federation, requests).await
}

/// Each member's own request sent to it, at once; the answers in the requests' order.
async fn fan_out_each(
    state: &GatewayState,
    ctx: &RequestContext,
    federation: &Federation,
    requests: Vec<(usize, ApiPath, Request<GatewayBody>)>,
) -> Vec<Answer> {
    join_all(requests.into_iter().map(|(member, api_path, request)| {
        let mut ctx = ctx.clone();
        let upstream = federation.members[member].clone();
        async move {
            let result = run_at(state, &mut ctx, upstream, api_path, request, true).await;
            Answer { member, ctx, result }
        }
    }))
    .await
}

/// A bodiless copy of a request, to send again or to send to another member.
fn head_copy(request: &Request<GatewayBody>) -> Request<GatewayBody> {
    super::bodiless(request).map(|()| GatewayBody::empty())
}

/// A request for an id: to the member the index names, else to the one a probe finds.
async fn by_id(
    state: &GatewayState,
    ctx: &mut RequestContext,
    federation: &Federation,
    (collection, id): (&str, &str),
    api_path: ApiPath,
    request: Request<GatewayBody>,
) -> Result<Response<GatewayBody>, Fault> {
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    if well_known(collection, id) {
        if reads {
            return at(
                state,
                ctx,
                federation,
                (federation.home, false),
                api_path,
                request,
            )
            .await;
        }
        return Err(Fault::MergedConflict {
            detail: format!(
                "`{id}` in `{collection}` is the same object on every Manager; to change it on one, {}",
                how_to_target(federation)
            ),
        });
    }
    let owners = federation.index.owners(collection, id);
    if owners.len() > 1 {
        return Err(several(federation, collection, id, owners));
    }
    if let Some(owner) = owners.iter().next() {
        let copy = reads.then(|| head_copy(&request));
        let response = at(state, ctx, federation, (owner, true), api_path.clone(), request).await?;
        // The index was stale (the id was removed behind the gateway's back): a read asks again.
        match copy {
            Some(copy) if response.status() == StatusCode::NOT_FOUND => {
                return probe(state, ctx, federation, (collection, id), api_path, copy).await;
            }
            _ => return Ok(response),
        }
    }
    probe(state, ctx, federation, (collection, id), api_path, request).await
}

/// An id the index does not know: a GET to every member finds its owner. A read is itself that
/// GET; a write is sent to the owner after it.
async fn probe(
    state: &GatewayState,
    ctx: &mut RequestContext,
    federation: &Federation,
    (collection, id): (&str, &str),
    api_path: ApiPath,
    request: Request<GatewayBody>,
) -> Result<Response<GatewayBody>, Fault> {
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    let (probe_path, probe_request) = if reads {
        (api_path.clone(), head_copy(&request))
    } else {
        derived_get(&api_path, &request, &format!("{collection}/{id}"), None)?
    };
    let answers = fan_out(
        state,
        ctx,
        federation,
        federation.all(),
        &probe_path,
        &probe_request,
    )
    .await;
    let held: Vec<Held> = answers.iter().map(Answer::held).collect();
    let decision = decide(&held);
    count(state, &decision);
    if let Decision::Found(i) = decision {
        federation.index.learn(collection, id, answers[i].member);
    }
    if !reads && let Decision::Found(i) = decision {
        let member = answers[i].member;
        drop(answers);
        return at(state, ctx, federation, (member, true), api_path, request).await;
    }
    let standing = match decision {
        Decision::Several(found) => {
            let owners = found
                .iter()
                .fold(Members::default(), |set, i| set.with(answers[i].member));
            return Err(several(federation, collection, id, owners));
        }
        Decision::Unknown(i) => return Err(cannot_tell(federation, &answers[i], collection, id)),
        Decision::Found(i) | Decision::Refused(i) => i,
        Decision::Absent => 0,
    };
    let answer = answers.into_iter().nth(standing).expect("one answer per member");
    *ctx = answer.ctx.clone();
    let repr = ctx.repr;
    Ok(answer.into_response(repr))
}

/// `GET …/<tail>[?query]` with the request's headers: what the gateway asks the members to
/// find where a request belongs.
fn derived_get(
    api_path: &ApiPath,
    request: &Request<GatewayBody>,
    tail: &str,
    query: Option<&str>,
) -> Result<(ApiPath, Request<GatewayBody>), Fault> {
    let (path, mut get) = relocated(api_path, head_copy(request), tail, query)?;
    *get.method_mut() = Method::GET;
    get.headers_mut().remove(CONTENT_TYPE);
    get.headers_mut().remove(CONTENT_LENGTH);
    Ok((path, get))
}

/// The request at `…/<tail>[?query]` of the API instead, with the same version, method, headers
/// and body.
fn relocated(
    api_path: &ApiPath,
    mut request: Request<GatewayBody>,
    tail: &str,
    query: Option<&str>,
) -> Result<(ApiPath, Request<GatewayBody>), Fault> {
    let version = match &api_path.area {
        EngineArea::Api(api) if api.version.is_some() => "/v4",
        _ => "",
    };
    let engine_path = format!("/ovirt-engine/api{version}/{tail}");
    let unroutable = || Fault::BadRequest {
        detail: format!("`{tail}` is not a path the merged view can ask its members for"),
    };
    let path = ApiPath::parse(&api_path.public_prefix, &engine_path, query).ok_or_else(unroutable)?;
    let target = match query {
        Some(query) => format!("{}{engine_path}?{query}", api_path.public_prefix),
        None => format!("{}{engine_path}", api_path.public_prefix),
    };
    *request.uri_mut() = target.parse().map_err(|_| unroutable())?;
    Ok((path, request))
}

/// When to ask again after a member could not answer, when it did not say.
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// No member that answered holds `what`, and the member of `answer` could not answer: absence
/// cannot be proven, so the answer is a 503 that names it, never a 404.
fn cannot_tell(federation: &Federation, answer: &Answer, collection: &str, what: &str) -> Fault {
    let (cause, retry_after) = match &answer.result {
        Ok(response) => (format!("it answered {}", response.status().as_u16()), RETRY),
        Err(fault) => {
            let retry_after = match fault {
                Fault::UpstreamNotReady { retry_after, .. }
                | Fault::CircuitOpen { retry_after, .. }
                | Fault::SsoUnavailable { retry_after, .. }
                | Fault::ManagerBusy { retry_after, .. } => *retry_after,
                _ => RETRY,
            };
            (fault.detail(), retry_after)
        }
    };
    Fault::MergedIncomplete {
        manager: federation.members[answer.member].name().to_owned(),
        retry_after,
        detail: format!(
            "No Manager that answered has `{what}` in `{collection}`, and whether this one has it cannot be told: {cause}"
        ),
    }
}

fn several(federation: &Federation, collection: &str, id: &str, owners: Members) -> Fault {
    let names: Vec<&str> = owners.iter().map(|m| federation.members[m].name()).collect();
    Fault::MergedConflict {
        detail: format!(
            "`{id}` in `{collection}` is held by several Managers ({}); {}",
            names.join(", "),
            how_to_target(federation)
        ),
    }
}

/// Where a create's place is: the member, or the answer that says why none can be picked.
enum Place {
    Member(usize),
    Answered(Response<GatewayBody>),
}

/// A create: to the member holding the place its body names.
async fn create(
    state: &GatewayState,
    ctx: &mut RequestContext,
    federation: &Federation,
    collection: &str,
    api_path: ApiPath,
    request: Request<GatewayBody>,
) -> Result<Response<GatewayBody>, Fault> {
    let repr = content_representation(request.headers(), Representation::Xml);
    // Bounded: the body is limited by `listen.max_body_bytes` as it is read.
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|error| super::request_body_fault(&*error))?
        .to_bytes();
    let anchor = anchor_of(collection, repr, &bytes).map_err(|error| Fault::BadRequest {
        detail: format!("The request body could not be read: {error}"),
    })?;
    let Some(anchor) = anchor else {
        return Err(Fault::MergedConflict {
            detail: format!(
                "A create in `{collection}` names no object that decides its Manager (a cluster, data center, storage domain, host or network, as the collection needs); {}",
                how_to_target(federation)
            ),
        });
    };
    let request = Request::from_parts(parts, GatewayBody::full(bytes));
    match place(state, ctx, federation, &anchor, &api_path, &request).await? {
        Place::Member(member) => at(state, ctx, federation, (member, false), api_path, request).await,
        Place::Answered(response) => Ok(response),
    }
}

/// The member holding a create's anchor: by id, from the index or a probe; by name, from a
/// search on every member. Not found anywhere, the first member gets the create and answers
/// as the engine does for a place it does not have.
async fn place(
    state: &GatewayState,
    ctx: &mut RequestContext,
    federation: &Federation,
    anchor: &Anchor,
    api_path: &ApiPath,
    request: &Request<GatewayBody>,
) -> Result<Place, Fault> {
    let collection = anchor.collection;
    let (what, probe) = match &anchor.by {
        By::Id(id) => {
            if well_known(collection, id) {
                return Err(Fault::MergedConflict {
                    detail: format!(
                        "`{id}` in `{collection}` is the same object on every Manager, so it does not say where to create; {}",
                        how_to_target(federation)
                    ),
                });
            }
            let owners = federation.index.owners(collection, id);
            match owners.len() {
                0 => {}
                1 => return Ok(Place::Member(owners.iter().next().expect("one"))),
                _ => return Err(several(federation, collection, id, owners)),
            }
            (
                id,
                derived_get(api_path, request, &format!("{collection}/{id}"), None)?,
            )
        }
        By::Name(name) => {
            let search = format!("search=name%3D%22{}%22", percent_encode(name));
            (name, derived_get(api_path, request, collection, Some(&search))?)
        }
    };
    let (probe_path, mut probe_request) = probe;
    probe_request
        .headers_mut()
        .insert(http::header::ACCEPT, HeaderValue::from_static("application/json"));
    probe_request.headers_mut().remove(ACCEPT_ENCODING);
    let mut answers = fan_out(
        state,
        ctx,
        federation,
        federation.all(),
        &probe_path,
        &probe_request,
    )
    .await;
    let mut held = Vec::with_capacity(answers.len());
    for answer in &mut answers {
        let found = match (&anchor.by, answer.held()) {
            (By::Name(_), Held::Yes) => {
                let response = answer.result.as_mut().expect("held");
                let body = std::mem::replace(response.body_mut(), GatewayBody::empty());
                if any_item(body).await { Held::Yes } else { Held::No }
            }
            (_, held) => held,
        };
        held.push(found);
    }
    let decision = decide(&held);
    count(state, &decision);
    Ok(match decision {
        Decision::Found(i) => {
            let member = answers[i].member;
            if let By::Id(id) = &anchor.by {
                federation.index.learn(collection, id, member);
            }
            Place::Member(member)
        }
        Decision::Several(found) => {
            let owners = found
                .iter()
                .fold(Members::default(), |set, i| set.with(answers[i].member));
            return Err(several(federation, collection, what, owners));
        }
        Decision::Unknown(i) => return Err(cannot_tell(federation, &answers[i], collection, what)),
        Decision::Refused(i) => {
            let repr = ctx.repr;
            Place::Answered(
                answers
                    .into_iter()
                    .nth(i)
                    .expect("one per member")
                    .into_response(repr),
            )
        }
        Decision::Absent => Place::Member(0),
    })
}

/// Whether a JSON listing holds an item.
async fn any_item(body: GatewayBody) -> bool {
    let Ok(bytes) = http_body_util::Limited::new(body, MAX_LOOKUP).collect().await else {
        return false;
    };
    listed(Representation::Json, &bytes.to_bytes()).is_ok_and(|(any, _)| any)
}

/// Whether a whole listing holds an item, and the ids of its items.
fn listed(repr: Representation, listing: &[u8]) -> Result<(bool, Vec<String>), NotAListing> {
    let mut join = Join::new(repr, None);
    let mut splitter = join.member();
    let (mut out, mut ids) = (Vec::new(), Vec::new());
    splitter.feed(&mut join, listing, &mut out, &mut ids)?;
    Ok((!out.is_empty() || !ids.is_empty(), ids))
}

/// A query parameter value, percent-encoded: everything but the unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A listing or search: every member's, joined in member order (or merged by name, for
/// `sortby name`), `page` and `max` applied to the merged result.
async fn listing(
    state: &GatewayState,
    ctx: &mut RequestContext,
    federation: &Arc<Federation>,
    collection: &str,
    mut api_path: ApiPath,
    mut request: Request<GatewayBody>,
) -> Result<Response<GatewayBody>, Fault> {
    let params = EngineParams::new(&api_path, request.headers());
    let (clauses, window) = Window::asked(&params, federation)?;
    drop(params);
    let descending = match clauses.as_ref().and_then(|c| c.sortby.as_ref()) {
        None => None,
        Some((field, descending)) if field == "name" => Some(*descending),
        Some((field, _)) => {
            return Err(unapplied(
                federation,
                format!(
                    "`sortby {field}` is not applied across Managers by the merged view (`sortby name` is)"
                ),
            ));
        }
    };
    let sorted = match (descending, window.asked) {
        (None, _) => None,
        (Some(descending), Some(asked)) if asked <= MAX_SORTED => Some(descending),
        (Some(_), _) => {
            return Err(unapplied(
                federation,
                format!(
                    "`sortby` across Managers needs `max` (with `page`, `page × max`) of at most {MAX_SORTED}: the first items of every Manager are merged"
                ),
            ));
        }
    };
    let replaced = window.replaced(clauses.as_ref());
    if !replaced.is_empty() {
        requery(&mut api_path, &mut request, &replaced)?;
    }
    let lookup = clauses.as_ref().is_some_and(|c| is_lookup(c.text()));
    let (parts, incomplete) = match everyone(state, ctx, federation, &api_path, request).await {
        Ok(gathered) => gathered,
        Err(failure) => return Ok(failure),
    };
    let repr = representation(&parts[0], ctx.repr);
    let mut head = None;
    let bodies: Vec<(usize, GatewayBody)> = parts
        .into_iter()
        .filter_map(|a| {
            let (parts, body) = a.result.ok()?.into_parts();
            head.get_or_insert(parts);
            Some((a.member, body))
        })
        .collect();
    let bodies = if lookup {
        lookup_once(federation, collection, bodies, repr).await?
    } else {
        bodies
    };
    let mut head = head.expect("at least one member answered");
    joined_head(&mut head.headers, &incomplete);
    head.headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(repr.content_type()));
    let Window { skip, take, .. } = window;
    let body = match sorted {
        Some(descending) => {
            let window = (skip, take.unwrap_or(MAX_SORTED));
            sorted_merge(federation, repr, bodies, descending, window).await?
        }
        None => merge(
            federation.clone(),
            collection.to_owned(),
            repr,
            (skip, take),
            bodies,
        ),
    };
    Ok(Response::from_parts(head, body))
}

/// The most items a page of a merged listing may need of each member (`page × max`): each is
/// read to be counted, or skipped.
const MAX_WINDOW: u64 = 10_000;

/// What a merged listing delivers of the merged order: the items it skips and at most how many
/// it takes, and how many items it asks of each member (`page × max` for a page: a page of the
/// merged result lies within the first `page × max` items of every member's).
#[derive(Debug, Clone, Copy)]
struct Window {
    skip: u64,
    take: Option<u64>,
    asked: Option<u64>,
    paged: bool,
}

impl Window {
    /// The search's clauses and the window a listing request asks for.
    fn asked(params: &EngineParams, federation: &Federation) -> Result<(Option<Clauses>, Window), Fault> {
        let clauses = params
            .get("search")
            .map(|search| Clauses::parse(&search))
            .transpose()
            .map_err(|detail| Fault::BadRequest { detail })?;
        let window = Window::of(params, clauses.as_ref(), federation)?;
        Ok((clauses, window))
    }

    fn of(
        params: &EngineParams,
        clauses: Option<&Clauses>,
        federation: &Federation,
    ) -> Result<Window, Fault> {
        let max = match params.get("max") {
            None => None,
            Some(max) => Some(max.trim().parse::<u64>().map_err(|_| Fault::BadRequest {
                detail: format!("`max` must be a whole number, not `{max}`"),
            })?),
        };
        let page = clauses.and_then(|c| c.page.as_ref()).map(|(n, _)| *n);
        match (page, max) {
            (None, max) => Ok(Window {
                skip: 0,
                take: max,
                asked: max,
                paged: false,
            }),
            (Some(_), None) => Err(unapplied(
                federation,
                "`page` across Managers needs `max`, the page's size".to_owned(),
            )),
            (Some(page), Some(size)) => {
                let skip = (page - 1).saturating_mul(size);
                let asked = skip.saturating_add(size);
                if asked > MAX_WINDOW {
                    return Err(unapplied(
                        federation,
                        format!(
                            "A page of the merged view takes the first `page × max` items of every Manager, at most {MAX_WINDOW}; narrow the search"
                        ),
                    ));
                }
                Ok(Window {
                    skip,
                    take: Some(size),
                    asked: Some(asked),
                    paged: true,
                })
            }
        }
    }

    /// The parameters each member gets instead of the client's: for a page, the search without
    /// `page` and `max` the items asked.
    fn replaced(&self, clauses: Option<&Clauses>) -> Vec<(&'static str, Option<String>)> {
        match (self.paged, clauses, self.asked) {
            (true, Some(clauses), Some(asked)) => vec![
                ("search", Some(clauses.without_page()).filter(|s| !s.is_empty())),
                ("max", Some(asked.to_string())),
            ],
            _ => Vec::new(),
        }
    }
}

/// A 409 for what the merged view does not apply across members, saying how to target one.
fn unapplied(federation: &Federation, what: String) -> Fault {
    Fault::MergedConflict {
        detail: format!("{what}; {}", how_to_target(federation)),
    }
}

/// The request with these parameters of its query replaced (the query is read before the
/// matrix parameters, docs/security.md "Parameters"), or removed (`None`): a member's part of a
/// merged page, or of events resumed.
fn requery(
    api_path: &mut ApiPath,
    request: &mut Request<GatewayBody>,
    replaced: &[(&str, Option<String>)],
) -> Result<(), Fault> {
    let is_replaced = |pair: &&str| {
        let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
        let name = percent_decode_lossy(&name.replace('+', " "));
        replaced.iter().any(|(n, _)| *n == name)
    };
    let mut pairs: Vec<String> = api_path
        .query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && !is_replaced(pair))
        .map(str::to_owned)
        .collect();
    for (name, value) in replaced {
        if let Some(value) = value {
            pairs.push(format!("{name}={}", percent_encode(value)));
        }
    }
    let query = pairs.join("&");
    let target = format!("{}?{query}", request.uri().path());
    *request.uri_mut() = target.parse().map_err(|_| Fault::BadRequest {
        detail: "The request's path cannot carry the merged view's parameters".into(),
    })?;
    api_path.query = Some(query);
    Ok(())
}

/// A sorted listing: each member's items read whole, their sorted runs merged, `window` (items
/// skipped, items taken) applied to the merge.
async fn sorted_merge(
    federation: &Federation,
    repr: Representation,
    bodies: Vec<(usize, GatewayBody)>,
    descending: bool,
    (skip, max): (u64, u64),
) -> Result<GatewayBody, Fault> {
    let mut read = Vec::with_capacity(bodies.len());
    for (member, body) in bodies {
        let bytes = read_whole(federation, member, body, MAX_LOOKUP, "sorted listing").await?;
        read.push((member, bytes));
    }
    let slices: Vec<&[u8]> = read.iter().map(|(_, b)| b.as_ref()).collect();
    let merged = crate::federation::sorted::merge(repr, &slices, descending, (skip as usize, max as usize))
        .map_err(|error| {
        let member = read.first().map_or(federation.home, |(m, _)| *m);
        not_a_listing(federation, member, error)
    })?;
    Ok(GatewayBody::full(merged))
}

/// The first member's answer head made the joined answer's: what described that member's body
/// alone goes (its length, validators, cache status); the rest stays (Correlation-Id, ...); the
/// members a partial answer lacks are named.
fn joined_head(headers: &mut HeaderMap, incomplete: &[String]) {
    for name in [CONTENT_LENGTH, ETAG, LAST_MODIFIED, AGE, EXPIRES] {
        headers.remove(name);
    }
    headers.remove("cache-status");
    if !incomplete.is_empty() {
        let names = HeaderValue::from_str(&incomplete.join(", ")).expect("Manager names are tokens");
        headers.insert(INCOMPLETE, names);
    }
}

/// The request sent to every member, for an answer made of theirs: the members' answers (at
/// least one, in member order) and the names of those that could not answer, or, when the
/// client did not accept a partial answer (`Prefer: handling=lenient`, `federation.partial`),
/// the first failure as the answer. `ctx` becomes the first answering member's, still labelled
/// as the merged view's.
async fn everyone(
    state: &GatewayState,
    ctx: &mut RequestContext,
    federation: &Federation,
    api_path: &ApiPath,
    mut request: Request<GatewayBody>,
) -> Result<Gathered, Response<GatewayBody>> {
    let asked = take_handling(request.headers_mut());
    // The members' bodies are joined byte for byte: none of them may come compressed.
    request.headers_mut().remove(ACCEPT_ENCODING);
    let answers = fan_out(state, ctx, federation, federation.all(), api_path, &request).await;
    gather(ctx, federation, answers, asked).map_err(|failure| *failure)
}

/// The parts of a merged answer that can be joined (in member order), and the names of the
/// members that could not answer.
type Gathered = (Vec<Answer>, Vec<String>);

/// The members' answers to their parts of a merged answer, as `everyone` returns them: the
/// parts that can be joined and the names of the members that could not answer, or the answer
/// that stands for all when the client did not accept a partial one (`asked`, else the route's
/// `partial`).
fn gather(
    ctx: &mut RequestContext,
    federation: &Federation,
    answers: Vec<Answer>,
    asked: Option<Partial>,
) -> Result<Gathered, Box<Response<GatewayBody>>> {
    let partial = asked.unwrap_or(federation.config.partial);
    let (mut parts, failed): (Vec<Answer>, Vec<Answer>) =
        answers.into_iter().partition(|a| a.held() == Held::Yes);
    let repr = ctx.repr;
    if let Some(first) = parts.first() {
        *ctx = RequestContext {
            manager: ctx.manager.clone(),
            ..first.ctx.clone()
        };
    }
    // Partial failure is never silent: strict answers the first failure; lenient names them.
    if let Some(failure) = failed.first()
        && (partial == Partial::Strict || parts.is_empty())
    {
        let name = federation.members[failure.member].name().to_owned();
        let failure = failed.into_iter().next().expect("checked");
        return Err(Box::new(match failure.result {
            Ok(response) if response.status().is_server_error() => rescue::respond(
                &Fault::UpstreamAnswer {
                    manager: name,
                    detail: format!(
                        "it answered {} to its part of a merged answer; `Prefer: handling=lenient` accepts the other Managers' parts",
                        response.status().as_u16()
                    ),
                },
                repr,
            ),
            Ok(response) => response,
            Err(fault) => rescue::respond(&fault, repr),
        }));
    }
    let incomplete: Vec<String> = failed
        .iter()
        .map(|a| federation.members[a.member].name().to_owned())
        .collect();
    if asked == Some(Partial::Lenient) && !incomplete.is_empty() {
        // RFC 7240: the preference was honoured, the answer is partial.
        if let Some(Ok(first)) = parts.first_mut().map(|a| a.result.as_mut()) {
            first.headers_mut().insert(
                HeaderName::from_static("preference-applied"),
                HeaderValue::from_static("handling=lenient"),
            );
        }
    }
    Ok((parts, incomplete))
}

/// The representation a member answered in; `fallback` when it does not say.
fn representation(answer: &Answer, fallback: Representation) -> Representation {
    match &answer.result {
        Ok(response) => content_representation(response.headers(), fallback),
        Err(_) => fallback,
    }
}

/// What a message's Content-Type says it holds; `fallback` without one.
fn content_representation(headers: &HeaderMap, fallback: Representation) -> Representation {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map_or(fallback, Representation::from_media_types)
}

/// The API root: every member's, merged into the home member's (or, when it could not answer
/// and the client accepts a partial answer, the first that did).
async fn root(
    state: &GatewayState,
    ctx: &mut RequestContext,
    federation: &Federation,
    api_path: ApiPath,
    request: Request<GatewayBody>,
) -> Result<Response<GatewayBody>, Fault> {
    let (parts, incomplete) = match everyone(state, ctx, federation, &api_path, request).await {
        Ok(gathered) => gathered,
        Err(failure) => return Ok(failure),
    };
    let base = parts
        .iter()
        .position(|a| a.member == federation.home)
        .unwrap_or(0);
    let repr = representation(&parts[base], ctx.repr);
    let mut heads = Vec::with_capacity(parts.len());
    let mut bodies = Vec::with_capacity(parts.len());
    for answer in parts {
        let (head, body) = answer.result.expect("partitioned on success").into_parts();
        let bytes = read_whole(federation, answer.member, body, MAX_ROOT, "API root").await?;
        heads.push(head);
        bodies.push(bytes);
    }
    let slices: Vec<&[u8]> = bodies.iter().map(|b| b.as_ref()).collect();
    let merged =
        crate::federation::root::merge(repr, &slices, base).map_err(|error| Fault::UpstreamAnswer {
            manager: federation.members[federation.home].name().to_owned(),
            detail: error.to_string(),
        })?;
    let mut head = heads.swap_remove(base);
    joined_head(&mut head.headers, &incomplete);
    Ok(Response::from_parts(head, GatewayBody::full(merged)))
}

/// A member's answer read whole, up to `limit` bytes; `what` names it in the fault.
async fn read_whole(
    federation: &Federation,
    member: usize,
    body: GatewayBody,
    limit: usize,
    what: &str,
) -> Result<Bytes, Fault> {
    let collected = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|error| Fault::UpstreamAnswer {
            manager: federation.members[member].name().to_owned(),
            detail: format!("its {what} could not be read: {error}"),
        })?;
    Ok(collected.to_bytes())
}

/// An API root is a few kilobytes; more than this is not one.
const MAX_ROOT: usize = 1 << 20;

/// `handling=strict|lenient` of `Prefer` (RFC 7240), taken out of the request: it is the
/// gateway's to honour, not the members'.
fn take_handling(headers: &mut HeaderMap) -> Option<Partial> {
    let mut handling = None;
    let mut kept: Vec<String> = Vec::new();
    for value in headers.get_all(PREFER) {
        for preference in String::from_utf8_lossy(value.as_bytes()).split(',') {
            let preference = preference.trim();
            match preference.to_ascii_lowercase().as_str() {
                "handling=lenient" => handling = Some(Partial::Lenient),
                "handling=strict" => handling = Some(Partial::Strict),
                "" => {}
                _ => kept.push(preference.to_owned()),
            }
        }
    }
    if handling.is_some() {
        headers.remove(PREFER);
        if !kept.is_empty() {
            let kept = HeaderValue::from_str(&kept.join(", ")).expect("was a header value");
            headers.insert(PREFER, kept);
        }
    }
    handling
}

/// The most items a sorted merged listing may take from each member (`max`, or `page × max`):
/// they are read whole to be merged, a few MB each at most (and never more than `MAX_LOOKUP`).
const MAX_SORTED: u64 = 1_000;

/// A search shaped like a lookup: equalities joined by `and`, one of them on the name, no
/// pattern (`name=web1`, `name="web1" and cluster="prod"`: what Ansible's `search_by_name` and
/// `search_by_attributes` send). `status=up` is a filter, not a lookup.
fn is_lookup(search: &str) -> bool {
    let lower = search.to_ascii_lowercase();
    let clauses: Vec<&str> = lower.split(" and ").map(str::trim).collect();
    let named = clauses
        .iter()
        .any(|c| c.split_once('=').is_some_and(|(key, _)| key.trim() == "name"));
    named
        && clauses.iter().all(|clause| {
            let Some((key, value)) = clause.split_once('=') else {
                return false;
            };
            let (key, value) = (key.trim(), value.trim());
            let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
            let bare = if quoted { &value[1..value.len() - 1] } else { value };
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
                && !bare.is_empty()
                && !bare.contains(['*', '!', '<', '>', '"'])
                && (quoted || !bare.contains(char::is_whitespace))
        })
}

/// The largest lookup answer read whole; lookups find a few objects.
const MAX_LOOKUP: usize = 16 << 20;

/// Answers to a lookup, when at most one member found something: several would make a client
/// that takes the first act on the wrong one. When every member found the same well-known
/// object (`name=Blank`), the home member's answer (else the first's) is the one.
async fn lookup_once(
    federation: &Federation,
    collection: &str,
    bodies: Vec<(usize, GatewayBody)>,
    repr: Representation,
) -> Result<Vec<(usize, GatewayBody)>, Fault> {
    let mut read = Vec::with_capacity(bodies.len());
    let mut found = Members::default();
    let mut found_ids: Vec<Vec<String>> = Vec::new();
    for (member, body) in bodies {
        let bytes = read_whole(federation, member, body, MAX_LOOKUP, "answer to a lookup").await?;
        let (any, mut ids) = listed(repr, &bytes).map_err(|e| not_a_listing(federation, member, e))?;
        if any {
            found = found.with(member);
            ids.sort();
            found_ids.push(ids);
        }
        read.push((member, GatewayBody::full(bytes)));
    }
    if found.len() <= 1 {
        return Ok(read);
    }
    let same_well_known = found_ids.windows(2).all(|pair| pair[0] == pair[1])
        && found_ids[0].iter().all(|id| well_known(collection, id));
    if same_well_known && !found_ids[0].is_empty() {
        let chosen = if found.contains(federation.home) {
            federation.home
        } else {
            found.iter().next().expect("several")
        };
        return Ok(read.into_iter().filter(|(m, _)| *m == chosen).collect());
    }
    let names: Vec<&str> = found.iter().map(|m| federation.members[m].name()).collect();
    Err(Fault::MergedConflict {
        detail: format!(
            "The search matches in `{collection}` on several Managers ({}); {}",
            names.join(", "),
            how_to_target(federation)
        ),
    })
}

fn not_a_listing(federation: &Federation, member: usize, error: NotAListing) -> Fault {
    Fault::UpstreamAnswer {
        manager: federation.members[member].name().to_owned(),
        detail: error.to_string(),
    }
}

/// The joined body: each member's items in member order after the first `skip`, at most `max`,
/// learned into the id index as they pass (the skipped ones too). A member's body that fails, or is not a listing, cuts the merged body.
fn merge(
    federation: Arc<Federation>,
    collection: String,
    repr: Representation,
    (skip, max): (u64, Option<u64>),
    bodies: Vec<(usize, GatewayBody)>,
) -> GatewayBody {
    struct Merging {
        federation: Arc<Federation>,
        collection: String,
        join: Join,
        bodies: std::vec::IntoIter<(usize, GatewayBody)>,
        current: Option<(usize, GatewayBody, crate::federation::merge::Splitter)>,
        finished: bool,
    }
    let merging = Merging {
        federation,
        collection,
        join: Join::new(repr, max).skipping(skip),
        bodies: bodies.into_iter(),
        current: None,
        finished: false,
    };
    let stream = futures_util::stream::unfold(merging, |mut m| async move {
        loop {
            if m.finished {
                return None;
            }
            if m.current.is_none() {
                match m.bodies.next().filter(|_| !m.join.full()) {
                    Some((member, body)) => {
                        let splitter = m.join.member();
                        m.current = Some((member, body, splitter));
                    }
                    None => {
                        m.finished = true;
                        let tail = m.join.finish();
                        return Some((Ok(Frame::data(tail)), m));
                    }
                }
            }
            let (member, body, splitter) = m.current.as_mut().expect("set above");
            let member = *member;
            let (mut out, mut ids) = (Vec::new(), Vec::new());
            let fed = &m.federation;
            let done = match body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => splitter.feed(&mut m.join, &data, &mut out, &mut ids),
                    Err(_) => Ok(false),
                },
                Some(Err(error)) => {
                    m.finished = true;
                    return Some((Err(error), m));
                }
                None => splitter.ended().map(|()| true),
            };
            for id in &ids {
                fed.index.learn(&m.collection, id, member);
            }
            let done = match done {
                Ok(done) => done,
                Err(error) => {
                    m.finished = true;
                    let error: BoxError = not_a_listing(fed, member, error).to_string().into();
                    return Some((Err(error), m));
                }
            };
            if done {
                m.current = None;
            }
            if !out.is_empty() {
                return Some((Ok(Frame::data(Bytes::from(out))), m));
            }
        }
    });
    GatewayBody::new(StreamBody::new(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One member that has it wins, whatever the others say; several are a conflict; with
    /// none, a member that could not answer makes it unknown, never absent.
    #[test]
    fn probe_decisions() {
        use Held::*;
        assert_eq!(decide(&[No, Yes, Unknown]), Decision::Found(1));
        assert_eq!(decide(&[Yes, No, Yes]), Decision::Several(Members(0b101)));
        assert_eq!(decide(&[No, Refused, Unknown]), Decision::Unknown(2));
        assert_eq!(decide(&[No, Refused, No]), Decision::Refused(1));
        assert_eq!(decide(&[No, No]), Decision::Absent);
    }

    proptest::proptest! {
        /// Whatever the members answer: an answer found on one member is that member's; absence
        /// is only ever decided when every member said 404 (never while one could not answer);
        /// a member that could not answer outranks one that refused.
        #[test]
        fn probe_decisions_hold_their_rules(
            held in proptest::collection::vec(0u8..4, 1..6),
        ) {
            use Held::*;
            let held: Vec<Held> = held.iter().map(|h| [Yes, No, Unknown, Refused][*h as usize]).collect();
            let yes: Vec<usize> = (0..held.len()).filter(|&i| held[i] == Yes).collect();
            match decide(&held) {
                Decision::Found(i) => proptest::prop_assert_eq!(yes, vec![i]),
                Decision::Several(set) => {
                    proptest::prop_assert_eq!(set.iter().collect::<Vec<_>>(), yes)
                }
                Decision::Absent => proptest::prop_assert!(held.iter().all(|h| *h == No)),
                Decision::Unknown(i) => {
                    proptest::prop_assert!(yes.is_empty());
                    proptest::prop_assert_eq!(held.iter().position(|h| *h == Unknown), Some(i));
                }
                Decision::Refused(i) => {
                    proptest::prop_assert!(yes.is_empty() && !held.contains(&Unknown));
                    proptest::prop_assert_eq!(held.iter().position(|h| *h == Refused), Some(i));
                }
            }
        }
    }

    /// A create's Location names what was created, with or without /v4 and a query.
    #[test]
    fn locations() {
        assert_eq!(
            location_entity("https://gw/all/ovirt-engine/api/vms/123"),
            Some(("vms", "123"))
        );
        assert_eq!(
            location_entity("/ovirt-engine/api/v4/disks/9?x=1"),
            Some(("disks", "9"))
        );
        assert_eq!(location_entity("/ovirt-engine/api/vms"), None);
    }

    /// Only `handling` is taken out of Prefer; the rest goes on.
    #[test]
    fn handling_preference() {
        let mut headers = HeaderMap::new();
        headers.insert(
            PREFER,
            HeaderValue::from_static("persistent-auth, handling=lenient"),
        );
        assert_eq!(take_handling(&mut headers), Some(Partial::Lenient));
        assert_eq!(headers[PREFER], "persistent-auth");
        assert_eq!(take_handling(&mut headers), None);
    }

    /// Lookups are equalities on the name.
    #[test]
    fn search_shapes() {
        assert!(is_lookup("name=web1"));
        assert!(is_lookup(" Name = web1"));
        assert!(is_lookup("name=\"web 1\" and cluster=\"prod\""));
        assert!(!is_lookup("status=up"));
        assert!(!is_lookup("name=web*"));
        assert!(!is_lookup("name=web1 or name=web2"));
        assert!(!is_lookup("name!=web1"));
        assert!(!is_lookup("name=web1 sortby name"));
    }
}
