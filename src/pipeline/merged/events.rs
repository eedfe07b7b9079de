//! Events on the merged route (docs/federation.md, "Events"): every event carries its merged
//! id (`federation::events`); a listing is every member's events in one time order; `from=N`
//! resumes each member's stream where it stood when N was delivered; an event by id goes to the
//! member its id names.

use http::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LOCATION};
use http::{Method, Request, Response, StatusCode};

use super::{
    Answer, Held, MAX_LOOKUP, Window, cannot_tell, derived_get, fan_out_each, gather, head_copy, joined_head,
    not_a_listing, percent_encode, read_whole, relocated, representation, requery, take_handling, unapplied,
};
use crate::api::params::EngineParams;
use crate::api::path::{ApiPath, EngineArea};
use crate::body::GatewayBody;
use crate::config::Partial;
use crate::fault::Fault;
use crate::federation::Federation;
use crate::federation::events::{self as numbering, Listing, Marks};
use crate::federation::search::Clauses;
use crate::pipeline::context::RequestContext;
use crate::pipeline::{GatewayState, run_at};
use crate::wire::Representation;

/// How much older than the event resumed from an event may be and still be delivered again,
/// when where the other members stood must be found from times (the members' clocks differ).
const CLOCK_SKEW_MS: i64 = 5_000;
/// The newest events read of each member to find, from times, where it stood.
const SCAN: usize = 1_000;

pub(super) async fn serve(
    state: &GatewayState,
    ctx: &mut RequestContext,
    federation: &Federation,
    target: Option<usize>,
    api_path: ApiPath,
    request: Request<GatewayBody>,
) -> Result<Response<GatewayBody>, Fault> {
    let EngineArea::Api(resource) = &api_path.area else {
        unreachable!("events are under the API");
    };
    let below: Vec<String> = resource.segments[1..].iter().map(|s| s.name.clone()).collect();
    let method = request.method().clone();
    // An event added (it names no Manager of its own), or an action on them all (`undelete`):
    // at the member named only.
    let whole = below.len() <= 1 && below.first().is_none_or(|s| s.parse::<u64>().is_err());
    if method == Method::POST && whole {
        let Some(member) = target else {
            return Err(unapplied(
                federation,
                "Events are added, and acted on as a whole, at one Manager".to_owned(),
            ));
        };
        return one(state, ctx, federation, member, api_path, request).await;
    }
    match below.as_slice() {
        [] if method == Method::GET => listing(state, ctx, federation, target, api_path, request).await,
        [] => {
            let member = target.unwrap_or(federation.home);
            one(state, ctx, federation, member, api_path, request).await
        }
        [id, rest @ ..] => {
            let named = id
                .parse::<u64>()
                .ok()
                .and_then(|merged| numbering::decode(merged, federation.members.len()))
                .filter(|(member, _)| target.is_none_or(|t| t == *member));
            // What no member numbered is not found, as the engine answers for an event it
            // does not have.
            let Some((member, local)) = named else {
                return Ok(not_found());
            };
            let mut tail = format!("events/{local}");
            for segment in rest {
                tail.push('/');
                tail.push_str(segment);
            }
            let query = api_path.query.clone();
            let (path, request) = relocated(&api_path, request, &tail, query.as_deref())?;
            one(state, ctx, federation, member, path, request).await
        }
    }
}

fn not_found() -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::empty());
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// The request at one member; an event in its answer renumbered, and a created one's Location.
async fn one(
    state: &GatewayState,
    ctx: &mut RequestContext,
    federation: &Federation,
    member: usize,
    api_path: ApiPath,
    mut request: Request<GatewayBody>,
) -> Result<Response<GatewayBody>, Fault> {
    let is_event = match &api_path.area {
        EngineArea::Api(api) => match api.segments.as_slice() {
            [_, id] => id.name.parse::<u64>().is_ok(),
            [_] => request.method() == Method::POST,
            _ => false,
        },
        _ => false,
    };
    // The event is read whole to be renumbered: uncompressed.
    request.headers_mut().remove(ACCEPT_ENCODING);
    let upstream = federation.members[member].clone();
    let response = run_at(state, ctx, upstream, api_path, request, true).await?;
    if !is_event || !response.status().is_success() {
        return Ok(response);
    }
    let (mut head, body) = response.into_parts();
    let bytes = read_whole(federation, member, body, MAX_LOOKUP, "event").await?;
    if bytes.is_empty() {
        return Ok(Response::from_parts(head, GatewayBody::empty()));
    }
    let repr = head
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map_or(ctx.repr, Representation::from_media_types);
    let event = numbering::single(repr, &bytes, member).map_err(|e| not_a_listing(federation, member, e))?;
    if let Some(location) = head.headers.get(LOCATION).and_then(|l| l.to_str().ok()) {
        let suffix = format!("/events/{}", event.local);
        if let Some(base) = location.strip_suffix(&suffix) {
            let renumbered = format!("{base}/events/{}", event.merged);
            head.headers.insert(
                LOCATION,
                HeaderValue::from_str(&renumbered).expect("was a header value, with digits changed"),
            );
        }
    }
    head.headers.remove(CONTENT_LENGTH);
    Ok(Response::from_parts(head, GatewayBody::full(event.bytes)))
}

/// Every member's events (or the targeted member's), in one time order, renumbered; `from`
/// resumed per member.
async fn listing(
    state: &GatewayState,
    ctx: &mut RequestContext,
    federation: &Federation,
    target: Option<usize>,
    api_path: ApiPath,
    mut request: Request<GatewayBody>,
) -> Result<Response<GatewayBody>, Fault> {
    let params = EngineParams::new(&api_path, request.headers());
    let (clauses, window) = Window::asked(&params, federation)?;
    let from = match params.get("from") {
        None => None,
        Some(from) => {
            let decoded = from
                .trim()
                .parse::<u64>()
                .ok()
                .and_then(|merged| Some((merged, numbering::decode(merged, federation.members.len())?)));
            Some(decoded.ok_or_else(|| Fault::BadRequest {
                detail: format!("`from` names no event of the merged view: `{from}`"),
            })?)
        }
    };
    drop(params);
    let ascending = match clauses.as_ref().and_then(|c| c.sortby.as_ref()) {
        None => false,
        Some((field, descending)) if field == "time" => !descending,
        Some((field, _)) => {
            return Err(unapplied(
                federation,
                format!(
                    "`sortby {field}` of events is not applied across Managers by the merged view (`sortby time` is)"
                ),
            ));
        }
    };
    let members: Vec<usize> = match target {
        Some(member) => vec![member],
        None => (0..federation.members.len()).collect(),
    };
    let asked = take_handling(request.headers_mut());
    // The members' events are read whole to be renumbered and ordered: uncompressed.
    request.headers_mut().remove(ACCEPT_ENCODING);
    let replaced = window.replaced(clauses.as_ref());
    let part = |member: usize, from: Option<u64>| -> Result<(usize, ApiPath, Request<GatewayBody>), Fault> {
        let (mut path, mut request) = (api_path.clone(), head_copy(&request));
        let mut replaced = replaced.clone();
        if let Some(from) = from {
            replaced.push(("from", Some(from.to_string())));
        }
        if !replaced.is_empty() {
            requery(&mut path, &mut request, &replaced)?;
        }
        Ok((member, path, request))
    };
    let mut froms = vec![0; federation.members.len()];
    let answers = match from {
        None => {
            let parts = members.iter().map(|&m| part(m, None)).collect::<Result<_, _>>()?;
            fan_out_each(state, ctx, federation, parts).await
        }
        Some((merged, (owner, local))) => {
            if !members.contains(&owner) {
                return Err(Fault::BadRequest {
                    detail: format!(
                        "`from` names an event of Manager {}, not of the Manager this request is for",
                        federation.members[owner].name()
                    ),
                });
            }
            // The member whose event it is first: its answer says who asks, whose marks apply.
            froms[owner] = local;
            let mut answers = fan_out_each(state, ctx, federation, vec![part(owner, Some(local))?]).await;
            if answers[0].held() != Held::Yes {
                return match gather(ctx, federation, answers, Some(Partial::Strict)) {
                    Err(failure) => Ok(*failure),
                    Ok(_) => unreachable!("a failed part fails a strict answer"),
                };
            }
            let user = user_of(&answers[0]);
            let others: Vec<usize> = members.iter().copied().filter(|&m| m != owner).collect();
            if !others.is_empty() {
                let marks = match federation.cursors.get(&user, merged) {
                    Some(marks) => marks,
                    None => {
                        let conditions = clauses.as_ref().map(Clauses::conditions);
                        let at = Resumed {
                            owner,
                            local,
                            others: &others,
                        };
                        stood(state, ctx, federation, at, conditions, &api_path, &request).await?
                    }
                };
                let parts = others
                    .iter()
                    .map(|&m| {
                        froms[m] = marks[m];
                        part(m, Some(marks[m]))
                    })
                    .collect::<Result<_, _>>()?;
                answers.extend(fan_out_each(state, ctx, federation, parts).await);
                answers.sort_by_key(|a| a.member);
            }
            answers
        }
    };
    let (parts, incomplete) = match gather(ctx, federation, answers, asked) {
        Ok(gathered) => gathered,
        Err(failure) => return Ok(*failure),
    };
    let repr = representation(&parts[0], ctx.repr);
    let user = user_of(&parts[0]);
    let mut head = None;
    let mut listings: Vec<Listing> = Vec::with_capacity(parts.len());
    let mut returned = vec![Vec::new(); federation.members.len()];
    for answer in parts {
        let member = answer.member;
        let (parts, body) = answer.result.expect("gathered on success").into_parts();
        head.get_or_insert(parts);
        let bytes = read_whole(federation, member, body, MAX_LOOKUP, "events").await?;
        let listing =
            numbering::listing(repr, &bytes, member).map_err(|e| not_a_listing(federation, member, e))?;
        returned[member] = listing.items.iter().map(|i| (i.time, i.local)).collect();
        listings.push(listing);
    }
    let name = listings.iter().find_map(|l| l.name.clone());
    let take = window.take.map(|t| t as usize);
    let delivered = numbering::order(&mut listings, ascending, (window.skip as usize, take));
    federation.cursors.record(&user, &returned, &froms, &delivered);
    let body = numbering::write(repr, name.as_deref(), &delivered);
    let mut head = head.expect("at least one member answered");
    joined_head(&mut head.headers, &incomplete);
    head.headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(repr.content_type()));
    Ok(Response::from_parts(head, GatewayBody::full(body)))
}

/// Whose events an answer holds: marks are kept per user.
fn user_of(answer: &Answer) -> String {
    answer
        .ctx
        .principal
        .as_ref()
        .map(|p| p.user.clone())
        .unwrap_or_default()
}

/// An event resumed from, at its member, and the other members to resume.
struct Resumed<'a> {
    owner: usize,
    local: u64,
    others: &'a [usize],
}

/// Where every other member stood at the time of the event resumed from, when no answer of
/// this gateway's recorded it (delivered by another replica, or before a restart): the time of
/// that event, from its member; then each other member's newest events, down to the first that
/// is older than that time by more than the clock skew, whose own id is the mark. Events within
/// the skew may come again: at least once, never lost.
async fn stood(
    state: &GatewayState,
    ctx: &RequestContext,
    federation: &Federation,
    at: Resumed<'_>,
    conditions: Option<String>,
    api_path: &ApiPath,
    request: &Request<GatewayBody>,
) -> Result<Marks, Fault> {
    let as_json = |(path, mut request): (ApiPath, Request<GatewayBody>)| {
        request
            .headers_mut()
            .insert(ACCEPT, HeaderValue::from_static("application/json"));
        (path, request)
    };
    let (path, get) = as_json(derived_get(
        api_path,
        request,
        &format!("events/{}", at.local),
        None,
    )?);
    let mut answers = fan_out_each(state, ctx, federation, vec![(at.owner, path, get)]).await;
    let answer = answers.pop().expect("one request, one answer");
    let owner_name = federation.members[at.owner].name();
    let lost = || {
        unapplied(
            federation,
            format!(
                "Where the other Managers' events stood at event {} of {owner_name} is not known, and that event cannot be read there to find it; list the events again",
                at.local
            ),
        )
    };
    let time = match answer.held() {
        Held::Yes => {
            let body = answer.result.expect("held").into_body();
            let bytes = read_whole(federation, at.owner, body, MAX_LOOKUP, "event").await?;
            numbering::single(Representation::Json, &bytes, at.owner)
                .map_err(|e| not_a_listing(federation, at.owner, e))?
                .time
        }
        Held::Unknown => return Err(cannot_tell(federation, &answer, "events", &at.local.to_string())),
        Held::No | Held::Refused => return Err(lost()),
    };
    if time == i64::MIN {
        return Err(lost());
    }
    let cutoff = time.saturating_sub(CLOCK_SKEW_MS);
    let mut query = format!("max={SCAN}");
    if let Some(conditions) = conditions.filter(|c| !c.is_empty()) {
        query.push_str(&format!("&search={}", percent_encode(&conditions)));
    }
    let mut parts = Vec::with_capacity(at.others.len());
    for &member in at.others {
        let (path, get) = as_json(derived_get(api_path, request, "events", Some(&query))?);
        parts.push((member, path, get));
    }
    let mut marks = vec![0; federation.members.len()];
    for answer in fan_out_each(state, ctx, federation, parts).await {
        let member = answer.member;
        if answer.held() != Held::Yes {
            return Err(cannot_tell(
                federation,
                &answer,
                "events",
                &format!("event {}", at.local),
            ));
        }
        let body = answer.result.expect("held").into_body();
        let bytes = read_whole(federation, member, body, MAX_LOOKUP, "events").await?;
        let listing = numbering::listing(Representation::Json, &bytes, member)
            .map_err(|e| not_a_listing(federation, member, e))?;
        let older = listing.items.iter().find(|item| item.time < cutoff);
        marks[member] = match older {
            Some(item) => item.local,
            None if listing.items.len() < SCAN => 0,
            None => {
                return Err(unapplied(
                    federation,
                    format!(
                        "More than {SCAN} events of {} came after event {} of {owner_name}, too many to resume from it here; list the events again, or resume at one Manager",
                        federation.members[member].name(),
                        at.local,
                    ),
                ));
            }
        };
    }
    Ok(marks.into())
}
