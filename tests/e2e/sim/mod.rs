//! The Manager simulator on the wire, each behaviour checked over loopback against what
//! docs/engine.md says the engine does; one file per behaviour. What they share: finding VMs,
//! acting on them, logging in.

mod actions;
mod cli;
mod clients;
mod correlation;
mod demo;
mod faults;
mod ids;
mod representation;
mod root;
mod search;
mod sessions;
mod sso;
mod tls;
mod users;
mod visibility;
mod writes;

use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;
use http_body_util::BodyExt;
use ovirt_gateway::sim::RunningSim;
use serde_json::{Value, json};

use crate::support::*;

/// `/vms?search=QUERY`, encoded.
fn vms_where(query: &str) -> String {
    format!("/vms?search={}", encode(query))
}

/// The names of the VMs of an XML listing, in order.
fn vm_names(reply: &Reply) -> Vec<String> {
    let vms = reply.xml();
    assert_eq!(vms.name, "vms");
    vms.all("vm").map(|vm| vm.text_of("name").to_owned()).collect()
}

/// The names of the VMs a request lists.
async fn listed(call: Call) -> Vec<String> {
    vm_names(&call.send().await)
}

/// `vm-00010`, the name of the Nth generated VM.
fn vm_name(n: usize) -> String {
    format!("vm-{n:05}")
}

/// The first VM (by name) matching a search, as admin sees it.
async fn vm_where(sim: &RunningSim, query: &str) -> Node {
    let listing = api(sim, &format!("{}&max=1", vms_where(query))).xml().await;
    listing
        .find("vm")
        .unwrap_or_else(|| panic!("no VM where {query}"))
        .clone()
}

/// A VM as admin sees it now.
async fn vm(sim: &RunningSim, id: &str) -> Node {
    api(sim, &format!("/vms/{id}")).xml().await
}

/// POSTs an action on a VM as `user`.
async fn act(sim: &RunningSim, user: &str, id: &str, verb: &str) -> Reply {
    api(sim, &format!("/vms/{id}/{verb}"))
        .by(user)
        .post("<action/>")
        .send()
        .await
}

/// Asserts a completed action: 200 `<action>` with `<status>complete</status>`; returns it.
fn completed(reply: Reply) -> Node {
    let action = reply.expect(200, "application/xml").xml();
    assert_eq!(action.name, "action");
    assert_eq!(action.text_of("status"), "complete");
    action
}

/// A password-grant request with the SDK's exact Accept header and this form.
fn grant(sim: &RunningSim, form: &str) -> Call {
    raw(sim, "/ovirt-engine/sso/oauth/token").form(form).accept_json()
}

fn password_form(username: &str, password: &str) -> String {
    format!(
        "grant_type=password&scope=ovirt-app-api&username={}&password={}",
        encode(username),
        encode(password)
    )
}

/// An SSO token of a built-in user.
async fn token(sim: &RunningSim, user: &str) -> String {
    let reply = grant(sim, &password_form(&format!("{user}@internal"), user))
        .send()
        .await
        .expect(200, "application/json");
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// The status of a GET of the API root with a Bearer token.
async fn root_status(sim: &RunningSim, token: &str) -> StatusCode {
    api(sim, "").bearer(token).send().await.status
}

/// Opens a persistent session with Basic; returns the `JSESSIONID=...` pair.
async fn open_session(sim: &RunningSim) -> String {
    let reply = api(sim, "")
        .persistent()
        .send()
        .await
        .expect(200, "application/xml");
    let cookie = reply.header("set-cookie");
    cookie.split(';').next().unwrap().to_owned()
}
