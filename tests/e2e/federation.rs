//! The merged view (docs/federation.md, "The merged view"): one API at `/all` over three
//! simulators, each also published under its own prefix.

use http::StatusCode;
use ovirt_gateway::Running;
use ovirt_gateway::sim::RunningSim;
use serde_json::Value;

use crate::support::*;

const MEMBERS: [&str; 3] = ["east", "west", "north"];

/// Three simulators whose objects are named apart (`east-vm-00001`) and have other ids.
async fn three() -> Vec<RunningSim> {
    let mut sims = Vec::new();
    for (seed, name) in MEMBERS.iter().enumerate() {
        sims.push(
            simulator_with(|o| {
                o.seed = 10 + seed as u64;
                o.name_prefix = format!("{name}-");
            })
            .await,
        );
    }
    sims
}

/// admin's sessions made at every member (a login asks the Manager's API who the user is), so
/// that what follows counts only the requests it makes.
async fn logged_in(gateway: &Running) {
    assert_eq!(all(gateway, "/vms?max=0").send().await.status, 200);
}

/// Each simulator under its own prefix, and all three merged at `/all`, home `east`.
fn merged(sims: &[RunningSim], federation: &str) -> GatewayConfig {
    let mut config = GatewayConfig::new().passthrough(false);
    for (name, sim) in MEMBERS.iter().zip(sims) {
        config = config.manager_with(name, &sim.api_url(), &format!("prefix = \"/{name}\""));
    }
    config.section(&format!(
        "[federation]\nprefix = \"/all\"\nmembers = [\"east\", \"west\", \"north\"]\nhome = \"east\"\n{federation}"
    ))
}

fn all(gateway: &Running, path: &str) -> Call {
    Call::to(gateway, &format!("/all/ovirt-engine/api{path}")).by("admin")
}

/// The items of a JSON listing.
fn items(reply: &Reply, key: &str) -> Vec<Value> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()[key].as_array().cloned().unwrap_or_default()
}

/// The ids of a simulator's VMs, asked directly.
async fn vm_ids(sim: &RunningSim) -> Vec<String> {
    let reply = api(sim, "/vms").accept_json().send().await;
    items(&reply, "vm")
        .iter()
        .map(|vm| vm["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The API requests each simulator served.
async fn api_requests(sims: &[RunningSim]) -> Vec<u64> {
    let mut counts = Vec::new();
    for sim in sims {
        counts.push(sim_stats(sim).await["api_requests"].as_u64().unwrap());
    }
    counts
}

/// A listing holds every member's items, in member order, with hrefs under the merged base;
/// in XML and in JSON; `max` holds for the merged result.
#[tokio::test]
async fn listings_join_every_member() {
    let sims = three().await;
    let gateway = merged(&sims, "").start().await;
    let mut want = Vec::new();
    for sim in &sims {
        want.extend(vm_ids(sim).await);
    }
    let listing = all(&gateway, "/vms")
        .accept_json()
        .header("correlation-id", "merged-1")
        .send()
        .await;
    assert_eq!(listing.header("correlation-id"), "merged-1");
    assert!(!listing.headers.contains_key("content-length"));
    let vms = items(&listing, "vm");
    let ids: Vec<&str> = vms.iter().map(|vm| vm["id"].as_str().unwrap()).collect();
    assert_eq!(ids, want);
    assert!(vms[0]["name"].as_str().unwrap().starts_with("east-"));
    assert!(
        vms.last().unwrap()["name"]
            .as_str()
            .unwrap()
            .starts_with("north-")
    );
    for vm in &vms {
        assert!(
            vm["href"]
                .as_str()
                .unwrap()
                .starts_with("/all/ovirt-engine/api/vms/"),
            "{vm}"
        );
    }

    let xml = all(&gateway, "/vms").xml().await;
    let vms: Vec<_> = xml.all("vm").collect();
    assert_eq!(vms.len(), want.len());
    assert!(
        xml.hrefs().iter().all(|h| h.starts_with("/all/")),
        "{:?}",
        xml.hrefs()
    );

    let five = items(&all(&gateway, "/vms?max=5").accept_json().send().await, "vm");
    assert_eq!(five.len(), 5);

    // `sortby name` is the members' sorted runs merged: the greatest names of all three.
    let mut names = Vec::new();
    for sim in &sims {
        let listing = api(sim, "/vms").accept_json().send().await;
        names.extend(
            items(&listing, "vm")
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_owned()),
        );
    }
    names.sort_unstable_by(|a, b| b.cmp(a));
    for accept in ["application/json", "application/xml"] {
        let sorted = all(&gateway, "/vms?search=sortby%20name%20desc&max=7")
            .accept(accept)
            .send()
            .await;
        assert_eq!(sorted.status, 200, "{}", sorted.text());
        let got: Vec<String> = if accept.ends_with("json") {
            items(&sorted, "vm")
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_owned())
                .collect()
        } else {
            sorted
                .xml()
                .all("vm")
                .map(|vm| vm.text_of("name").to_owned())
                .collect()
        };
        assert_eq!(got, names[..7], "{accept}");
    }
    let unbounded = all(&gateway, "/vms?search=sortby%20name").send().await;
    assert_contains(&unbounded.fault(409, "Ambiguous in the merged view"), "max");
    let hosts = items(&all(&gateway, "/hosts").accept_json().send().await, "host");
    assert!(
        hosts
            .iter()
            .any(|h| h["name"].as_str().unwrap().starts_with("west-"))
    );
}

/// `page` with `max` is a page of the merged result, joined or sorted: walking the pages
/// yields the whole listing once, in order; a page needs `max`, and a bounded window.
#[tokio::test]
async fn pages_are_pages_of_the_merged_result() {
    let sims = three().await;
    let gateway = merged(&sims, "").start().await;
    let ids_of = |reply: &Reply| -> Vec<String> {
        items(reply, "vm")
            .iter()
            .map(|vm| vm["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let whole = ids_of(&all(&gateway, "/vms").accept_json().send().await);
    let sorted = ids_of(
        &all(&gateway, "/vms?search=sortby%20name&max=1000")
            .accept_json()
            .send()
            .await,
    );
    assert_eq!(sorted.len(), whole.len());
    for (search, want) in [("page%20", &whole), ("sortby%20name%20page%20", &sorted)] {
        let mut walked = Vec::new();
        for page in 1.. {
            let reply = all(&gateway, &format!("/vms?search={search}{page}&max=7"))
                .accept_json()
                .send()
                .await;
            let ids = ids_of(&reply);
            assert!(ids.len() <= 7);
            if ids.is_empty() {
                break;
            }
            walked.extend(ids);
        }
        assert_eq!(&walked, want, "{search}");
    }
    // The clause is read outside quotes only; one in a name is a condition like any other.
    let quoted = all(&gateway, "/vms?search=name%3D%22page%202%22&max=3")
        .accept_json()
        .send()
        .await;
    assert!(items(&quoted, "vm").is_empty());
    let no_size = all(&gateway, "/vms?search=page%202").send().await;
    assert_contains(&no_size.fault(409, "Ambiguous in the merged view"), "`max`");
    let deep = all(&gateway, "/vms?search=page%20101&max=100").send().await;
    assert_contains(&deep.fault(409, "Ambiguous in the merged view"), "10000");
    let malformed = all(&gateway, "/vms?search=page%20two&max=1").send().await;
    assert_contains(&malformed.fault(400, "Bad request"), "positive whole number");
}

/// The events of a JSON listing: (merged id, time in ms, description).
fn events_of(reply: &Reply) -> Vec<(u64, i64, String)> {
    items(reply, "event")
        .iter()
        .map(|e| {
            let id: u64 = e["id"].as_str().unwrap().parse().unwrap();
            assert_eq!(e["index"].as_u64(), Some(id), "{e}");
            assert!(
                e["href"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("/all/ovirt-engine/api/events/{id}")),
                "{e}"
            );
            (
                id,
                e["time"].as_i64().unwrap(),
                e["description"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Events carry merged integer ids (the member in the last two digits), come newest first
/// across members, are read and paged by those ids, and `from=` resumes every member's stream:
/// exactly after the event through the gateway that delivered it, at least once within the
/// clock skew through one that did not (restarted, another replica).
#[tokio::test]
async fn events_are_numbered_and_resumed() {
    let sims = three().await;
    let config = merged(&sims, "");
    let gateway = config.clone().start().await;
    let listing = all(&gateway, "/events").accept_json().send().await;
    let events = events_of(&listing);
    let mut counts = [0; 3];
    for (id, _, _) in &events {
        counts[(id % 100) as usize - 1] += 1;
    }
    let mut direct = Vec::new();
    for sim in &sims {
        direct.push(items(&api(sim, "/events").accept_json().send().await, "event").len());
    }
    assert_eq!(counts.to_vec(), direct);
    assert!(
        events.windows(2).all(|w| (w[0].1, w[0].0) > (w[1].1, w[1].0)),
        "{events:?}"
    );

    // By id, in either representation; what no member numbered is not found.
    let (west_event, _, description) = events.iter().find(|(id, _, _)| id % 100 == 2).unwrap().clone();
    let one = all(&gateway, &format!("/events/{west_event}"))
        .accept_json()
        .send()
        .await;
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(one.json()["id"], west_event.to_string());
    assert_eq!(one.json()["description"], description.as_str());
    let xml = all(&gateway, &format!("/events/{west_event}")).xml().await;
    assert_eq!(xml.attr("id"), west_event.to_string());
    assert_eq!(xml.text_of("index"), west_event.to_string());
    all(&gateway, &format!("/events/{}", west_event / 100 * 100 + 9))
        .send()
        .await
        .not_found();
    let targeted = all(&gateway, "/events")
        .header("federation-manager", "west")
        .accept_json()
        .send()
        .await;
    assert!(events_of(&targeted).iter().all(|(id, _, _)| id % 100 == 2));
    let east_only = all(&gateway, &format!("/events/{west_event}"))
        .header("federation-manager", "east")
        .send()
        .await;
    east_only.not_found();

    // Pages of the merged order.
    let page = all(&gateway, "/events?search=page%202&max=5")
        .accept_json()
        .send()
        .await;
    let ids: Vec<u64> = events_of(&page).iter().map(|e| e.0).collect();
    let want: Vec<u64> = events[5..10].iter().map(|e| e.0).collect();
    assert_eq!(ids, want);
    let oldest = all(&gateway, "/events?search=sortby%20time%20asc&max=2")
        .accept_json()
        .send()
        .await;
    let ids: Vec<u64> = events_of(&oldest).iter().map(|e| e.0).collect();
    assert_eq!(ids, [events[events.len() - 1].0, events[events.len() - 2].0]);

    // Ansible's idiom: the latest event, then what came after it, with a VM started on west.
    let latest = events_of(&all(&gateway, "/events?max=1").accept_json().send().await);
    let (snapshot, snapshot_time, _) = latest[0].clone();
    let west_vm = &vm_ids(&sims[1]).await[0];
    let started = all(&gateway, &format!("/vms/{west_vm}/start"))
        .post("<action/>")
        .send()
        .await;
    assert_eq!(started.status, 200, "{}", started.text());
    let after = events_of(
        &all(&gateway, &format!("/events?from={snapshot}"))
            .accept_json()
            .send()
            .await,
    );
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].0 % 100, 2);
    assert!(after[0].2.contains("was started"), "{after:?}");
    // The same through a gateway that never delivered the snapshot: found from times.
    let other = config.start().await;
    let again = events_of(
        &all(&other, &format!("/events?from={snapshot}"))
            .accept_json()
            .send()
            .await,
    );
    assert!(again.iter().any(|e| e.0 == after[0].0), "{again:?}");
    assert!(
        again
            .iter()
            .all(|e| e.0 != snapshot && e.1 >= snapshot_time - 5_000),
        "{again:?}"
    );

    // What the merged view cannot apply, or names nothing, is said.
    let refused = all(&gateway, "/events?search=sortby%20severity&max=1")
        .send()
        .await;
    assert_contains(
        &refused.fault(409, "Ambiguous in the merged view"),
        "sortby severity",
    );
    let bad = all(&gateway, "/events?from=1209").send().await;
    assert_contains(&bad.fault(400, "Bad request"), "`from`");
    let added = all(&gateway, "/events")
        .post("<event><description>x</description><severity>normal</severity><origin>me</origin><custom_id>1</custom_id></event>")
        .send()
        .await;
    assert_contains(&added.fault(409, "Ambiguous in the merged view"), "one Manager");
}

/// An id goes to the member that holds it: found by a probe the first time, from the index
/// after; an id no member holds is a 404; a write goes to the owner only.
#[tokio::test]
async fn ids_reach_their_member() {
    let sims = three().await;
    let gateway = merged(&sims, "").start().await;
    let west_vm = vm_ids(&sims[1]).await.remove(0);
    logged_in(&gateway).await;
    let before = api_requests(&sims).await;
    let first = all(&gateway, &format!("/vms/{west_vm}"))
        .accept_json()
        .send()
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(first.json()["name"].as_str().unwrap().starts_with("west-"));
    assert_eq!(
        first.json()["href"],
        format!("/all/ovirt-engine/api/vms/{west_vm}")
    );
    let after = api_requests(&sims).await;
    assert_eq!(
        [after[0] - before[0], after[1] - before[1], after[2] - before[2]],
        [1, 1, 1],
        "unknown at first: every member is asked"
    );

    // Known now: only west is asked, for the entity and what is below it.
    let before = api_requests(&sims).await;
    let nics = all(&gateway, &format!("/vms/{west_vm}/nics")).send().await;
    assert_eq!(nics.status, 200, "{}", nics.text());
    let renamed = all(&gateway, &format!("/vms/{west_vm}"))
        .put("<vm><description>merged</description></vm>")
        .send()
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text());
    let after = api_requests(&sims).await;
    assert_eq!(
        [after[0] - before[0], after[1] - before[1], after[2] - before[2]],
        [0, 2, 0]
    );
    let direct = api(&sims[1], &format!("/vms/{west_vm}"))
        .accept_json()
        .send()
        .await;
    assert_eq!(direct.json()["description"], "merged");

    let missing = all(&gateway, "/vms/6c8f9d3a-2b4e-4c1d-9a7f-0e5b3c2d1a00")
        .send()
        .await;
    missing.not_found();
    let metrics = metrics(&gateway).await;
    assert_eq!(
        counter(&metrics, "gateway_federation_probes_total{outcome=\"found\"}"),
        1
    );
    assert_eq!(
        counter(&metrics, "gateway_federation_probes_total{outcome=\"absent\"}"),
        1
    );
}

/// A write to an id the index does not know is preceded by a GET to every member and sent to
/// the owner alone; a delete makes the index forget it.
#[tokio::test]
async fn writes_find_their_owner_first() {
    let sims = three().await;
    let gateway = merged(&sims, "").start().await;
    let north_vm = vm_ids(&sims[2]).await.remove(0);
    logged_in(&gateway).await;
    let before = api_requests(&sims).await;
    let stopped = all(&gateway, &format!("/vms/{north_vm}/stop"))
        .post("<action/>")
        .send()
        .await;
    assert_eq!(stopped.status, 200, "{}", stopped.text());
    let after = api_requests(&sims).await;
    // One probe GET each, then the action at north.
    assert_eq!(
        [after[0] - before[0], after[1] - before[1], after[2] - before[2]],
        [1, 1, 2]
    );
    let deleted = all(&gateway, &format!("/vms/{north_vm}")).delete().send().await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let before = api_requests(&sims).await;
    all(&gateway, &format!("/vms/{north_vm}"))
        .send()
        .await
        .not_found();
    let after = api_requests(&sims).await;
    assert_eq!(
        [after[0] - before[0], after[1] - before[1], after[2] - before[2]],
        [1, 1, 1],
        "the deleted id was forgotten: every member is asked again"
    );
}

/// `Federation-Manager` sends a request to the member it names, creates included; the created
/// object's id is known from its Location. An unknown name is a 400.
#[tokio::test]
async fn federation_manager_targets_a_member() {
    let sims = three().await;
    let gateway = merged(&sims, "").start().await;
    let create = "<vm><name>made-here</name><cluster><name>cluster-1</name></cluster></vm>";
    let created = all(&gateway, "/vms")
        .header("federation-manager", "west")
        .post(&create.replace("cluster-1", "west-cluster-1"))
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let location = created.header("location").to_owned();
    assert!(location.contains("/all/ovirt-engine/api/vms/"), "{location}");
    let id = location.rsplit('/').next().unwrap();
    logged_in(&gateway).await;
    let before = api_requests(&sims).await;
    let got = all(&gateway, &format!("/vms/{id}")).accept_json().send().await;
    assert_eq!(got.json()["name"], "made-here");
    let after = api_requests(&sims).await;
    assert_eq!(
        [after[0] - before[0], after[1] - before[1], after[2] - before[2]],
        [0, 1, 0]
    );

    let vms = all(&gateway, "/vms")
        .header("federation-manager", "north")
        .accept_json()
        .send()
        .await;
    assert!(
        items(&vms, "vm")
            .iter()
            .all(|v| v["name"].as_str().unwrap().starts_with("north-"))
    );
    let unknown = all(&gateway, "/vms")
        .header("federation-manager", "south")
        .send()
        .await;
    assert_contains(&unknown.fault(400, "Bad request"), "east, west, north");

    // An action on a whole collection would act on every member, or on one unnamed.
    let action = all(&gateway, "/vms/export").post("<action/>").send().await;
    assert_contains(&action.fault(409, "Ambiguous in the merged view"), "collection");
}

/// A create goes to the member that holds the cluster its body names, by name or by id; a
/// create that names no such place, or one on several members, is a 409 that says how to name
/// the member.
#[tokio::test]
async fn creates_go_where_their_cluster_is() {
    let sims = three().await;
    let gateway = merged(&sims, "").start().await;
    let by_name = all(&gateway, "/vms")
        .post("<vm><name>by-name</name><cluster><name>north-cluster-2</name></cluster></vm>")
        .send()
        .await;
    assert_eq!(by_name.status, 201, "{}", by_name.text());
    let made = api(&sims[2], "/vms?search=name%3Dby-name")
        .accept_json()
        .send()
        .await;
    assert_eq!(items(&made, "vm").len(), 1, "created at north");

    let cluster = items(&api(&sims[1], "/clusters").accept_json().send().await, "cluster")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_id = all(&gateway, "/vms")
        .accept_json()
        .post_json(&serde_json::json!({"name": "by-id", "cluster": {"id": cluster}}))
        .send()
        .await;
    assert_eq!(by_id.status, 201, "{}", by_id.text());
    let made = api(&sims[1], "/vms?search=name%3Dby-id")
        .accept_json()
        .send()
        .await;
    assert_eq!(items(&made, "vm").len(), 1, "created at west");

    let nowhere = all(&gateway, "/datacenters")
        .post("<data_center><name>dc</name></data_center>")
        .send()
        .await;
    let detail = nowhere.fault(409, "Ambiguous in the merged view");
    assert_contains(&detail, "Federation-Manager");
    assert_contains(&detail, "east, west, north");
    let blank = all(&gateway, "/vms")
        .post("<vm><name>x</name><template id=\"00000000-0000-0000-0000-000000000000\"/></vm>")
        .send()
        .await;
    assert_contains(&blank.fault(409, "Ambiguous in the merged view"), "every Manager");
}

/// With a member down, a listing is that member's fault by default; `Prefer:
/// handling=lenient` gets the others' items and names the missing member in a header. An id
/// no live member holds is a 503 naming the one that could not answer, never a 404.
#[tokio::test]
async fn a_member_down_is_never_silent() {
    let mut sims = three().await;
    let gateway = merged(&sims, "").start().await;
    let east_count = vm_ids(&sims[0]).await.len();
    let west_count = vm_ids(&sims[1]).await.len();
    let north_count = vm_ids(&sims[2]).await.len();
    logged_in(&gateway).await;
    let north_addr = sims[2].addr();
    sims.pop().unwrap().shutdown().await;

    let strict = all(&gateway, "/vms").send().await;
    assert_contains(&strict.fault(502, "Manager unreachable"), "'north'");

    let lenient = all(&gateway, "/vms")
        .header("prefer", "handling=lenient")
        .accept_json()
        .send()
        .await;
    assert_eq!(lenient.header("federation-incomplete"), "north");
    assert_eq!(lenient.header("preference-applied"), "handling=lenient");
    assert_eq!(items(&lenient, "vm").len(), east_count + west_count);

    let unknown = all(&gateway, "/vms/6c8f9d3a-2b4e-4c1d-9a7f-0e5b3c2d1a00")
        .send()
        .await;
    assert_contains(&unknown.fault(503, "Merged view incomplete"), "'north'");
    let metrics = metrics(&gateway).await;
    assert_eq!(
        counter(&metrics, "gateway_federation_probes_total{outcome=\"unknown\"}"),
        1
    );
    // The others are still served by id.
    let east_vm = vm_ids(&sims[0]).await.remove(0);
    assert_eq!(all(&gateway, &format!("/vms/{east_vm}")).send().await.status, 200);

    // North back at its address (a new engine process: its tokens are gone): the listing is
    // whole again, after one login there.
    let north = simulator_with(|o| {
        o.listen = north_addr;
        o.seed = 12;
        o.name_prefix = "north-".into();
    })
    .await;
    let whole = all(&gateway, "/vms").accept_json().send().await;
    assert_eq!(items(&whole, "vm").len(), east_count + west_count + north_count);
    assert_eq!(sim_stats(&north).await["sso_logins"], 1);
}

/// A search shaped like a lookup that matches on two members is a 409 naming them; the same
/// search matching on one member is that member's answer.
#[tokio::test]
async fn a_lookup_matching_twice_is_refused() {
    // Two simulators with the same names (no prefix), one with its own.
    let twins = [
        simulator_with(|o| o.seed = 1).await,
        simulator_with(|o| o.seed = 2).await,
        simulator_with(|o| o.name_prefix = "north-".into()).await,
    ];
    let gateway = merged(&twins, "").start().await;
    let name = items(&api(&twins[0], "/vms?max=1").accept_json().send().await, "vm")[0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let twice = all(&gateway, &format!("/vms?search=name%3D{name}")).send().await;
    let detail = twice.fault(409, "Ambiguous in the merged view");
    assert_contains(&detail, "east, west");
    let once = all(&gateway, "/vms?search=name%3Dnorth-vm-00001")
        .accept_json()
        .send()
        .await;
    assert_eq!(items(&once, "vm").len(), 1);
    let create = all(&gateway, "/vms")
        .post("<vm><name>x</name><cluster><name>cluster-1</name></cluster></vm>")
        .send()
        .await;
    assert_contains(&create.fault(409, "Ambiguous in the merged view"), "east, west");
    let sorted = all(&gateway, "/vms?search=name%3D*%20sortby%20status")
        .send()
        .await;
    assert_contains(&sorted.fault(409, "Ambiguous in the merged view"), "sortby");
}

/// The merged view takes the gateway's credentials only: a Manager's own token, good at one
/// member, is never sent to the others.
#[tokio::test]
async fn manager_tokens_are_not_passed_on() {
    let sims = three().await;
    let gateway = merged(&sims, "").passthrough(true).start().await;
    let token = sim_token(&sims[0], "admin@internal").await;
    let before = api_requests(&sims).await;
    let refused = Call::to(&gateway, "/all/ovirt-engine/api/vms")
        .bearer(&token)
        .send()
        .await;
    assert_contains(&refused.fault(401, "Unauthorized"), "merged view");
    assert_eq!(api_requests(&sims).await, before);
    // On east's own route the token passes.
    let own = Call::to(&gateway, "/east/ovirt-engine/api/vms")
        .bearer(&token)
        .send()
        .await;
    assert_eq!(own.status, 200);
}

/// Cached answers are per route (their hrefs differ), and a write through a member's own
/// route evicts what the merged view cached of it.
#[tokio::test]
async fn the_cache_keeps_routes_apart_and_evicts_across_them() {
    let sims = three().await;
    let gateway = merged(&sims, "").table("cache").start().await;
    let vm = vm_ids(&sims[0]).await.remove(0);
    let own = Call::to(&gateway, &format!("/east/ovirt-engine/api/vms/{vm}"))
        .by("admin")
        .accept_json();
    assert_eq!(
        own.send().await.json()["href"],
        format!("/east/ovirt-engine/api/vms/{vm}")
    );
    let in_all = || all(&gateway, &format!("/vms/{vm}")).accept_json();
    assert_eq!(
        in_all().send().await.json()["href"],
        format!("/all/ovirt-engine/api/vms/{vm}")
    );
    assert_contains(in_all().send().await.header("cache-status"), "hit");

    let changed = Call::to(&gateway, &format!("/east/ovirt-engine/api/vms/{vm}"))
        .by("admin")
        .put("<vm><description>changed</description></vm>")
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(in_all().send().await.json()["description"], "changed");
}

/// The API root is the home member's with every member's counters summed; its links are
/// under the merged base.
#[tokio::test]
async fn the_root_sums_the_members() {
    let sims = three().await;
    let gateway = merged(&sims, "").start().await;
    let mut hosts = 0;
    for sim in &sims {
        let root = api(sim, "").accept_json().send().await.json();
        hosts += root["summary"]["hosts"]["total"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }
    let root = all(&gateway, "").accept_json().send().await;
    assert_eq!(root.status, 200, "{}", root.text());
    let root = root.json();
    assert_eq!(root["summary"]["hosts"]["total"], hosts.to_string());
    assert_eq!(root["product_info"]["name"], "oVirt Engine");
    let links = root["link"].as_array().unwrap();
    assert!(
        links
            .iter()
            .all(|l| l["href"].as_str().unwrap().starts_with("/all/")),
        "{root}"
    );

    let xml = all(&gateway, "").xml().await;
    assert_eq!(
        xml.child("summary").child("hosts").text_of("total"),
        hosts.to_string()
    );
}

/// The schema and the RSDL describe one engine version: the home member answers them; the others
/// are not asked. A matrix parameter of the `api` segment never reaches the engine's resources
/// (the servlet container strips it), so `;rsdl` is the root, merged.
#[tokio::test]
async fn descriptions_come_from_home() {
    let sims = three().await;
    let gateway = merged(&sims, "").start().await;
    logged_in(&gateway).await;
    for (path, asked) in [
        ("?schema", [1, 0, 0]),
        ("?rsdl", [1, 0, 0]),
        ("/v4?rsdl", [1, 0, 0]),
        (";rsdl", [1, 1, 1]),
    ] {
        let before = api_requests(&sims).await;
        let reply = all(&gateway, path).send().await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        let after = api_requests(&sims).await;
        let counted: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        assert_eq!(counted, asked, "{path}");
    }
}
