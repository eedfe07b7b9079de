//! Links in bodies and headers point at the gateway, against the simulator published under a
//! prefix (`/east`).

use http::StatusCode;
use ovirt_gateway::Running;
use ovirt_gateway::sim::RunningSim;

use crate::support::*;

async fn east() -> (RunningSim, Running) {
    east_with(false).await
}

/// The simulator (gzip-compressing when asked, if `gzip`) published under `/east`.
async fn east_with(gzip: bool) -> (RunningSim, Running) {
    let sim = simulator_with(|o| o.gzip = gzip).await;
    let gateway = GatewayConfig::new()
        .manager_with("east", &sim.api_url(), "prefix = \"/east\"")
        .passthrough(false)
        .start()
        .await;
    (sim, gateway)
}

/// A request as admin accepting `accept`.
fn as_admin(gateway: &Running, path: &str, accept: &str) -> Call {
    Call::to(gateway, path).by("admin").accept(accept)
}

/// Every href of an XML listing carries the public prefix; markup-like text in a description
/// stays exactly as the Manager wrote it.
#[tokio::test]
async fn xml_hrefs_get_the_prefix() {
    let (_sim, gateway) = east().await;
    let reply = as_admin(&gateway, "/east/ovirt-engine/api/vms?max=3", "application/xml")
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers.get("content-length").is_none());
    let body = reply.text();
    let hrefs: Vec<&str> = body
        .split("href=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert!(!hrefs.is_empty());
    for href in &hrefs {
        assert!(
            href.starts_with("/east/ovirt-engine/api/") || href.starts_with("/ovirt-engine/api/x"),
            "{href}"
        );
    }
    assert!(
        body.contains("see href=\"/ovirt-engine/api/x\""),
        "the description changed:\n{body}"
    );
}

/// JSON hrefs too, at every depth.
#[tokio::test]
async fn json_hrefs_get_the_prefix() {
    let (_sim, gateway) = east().await;
    let reply = as_admin(&gateway, "/east/ovirt-engine/api/vms?max=2", "application/json")
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let value = reply.json();
    let vm = &value["vm"][0];
    assert!(
        vm["href"]
            .as_str()
            .unwrap()
            .starts_with("/east/ovirt-engine/api/vms/")
    );
    assert!(
        vm["cluster"]["href"]
            .as_str()
            .unwrap()
            .starts_with("/east/ovirt-engine/api/clusters/")
    );
    assert!(
        vm["actions"]["link"][0]["href"]
            .as_str()
            .unwrap()
            .starts_with("/east/ovirt-engine/api/vms/")
    );
}

/// The Location of an added VM and the root's Link header name the gateway.
#[tokio::test]
async fn location_and_link_name_the_gateway() {
    let (_sim, gateway) = east().await;
    let origin = format!("http://{}", gateway.public_addr());
    let add = "<vm><name>placed</name><cluster><name>cluster-1</name></cluster></vm>";
    let added = as_admin(&gateway, "/east/ovirt-engine/api/vms", "application/xml")
        .post(add)
        .send()
        .await;
    assert_eq!(added.status, StatusCode::CREATED);
    let location = added.header("location");
    assert!(
        location.starts_with(&format!("{origin}/east/ovirt-engine/api/vms/")),
        "{location}"
    );
    let root = as_admin(&gateway, "/east/ovirt-engine/api", "application/xml")
        .send()
        .await;
    let link = root.header("link");
    assert!(
        link.starts_with(&format!("<{origin}/east/ovirt-engine/api/")),
        "{link}"
    );
    assert!(link.contains("?search={query}>"), "{link}");
}

/// A Manager that compresses when asked still gets its hrefs rewritten: the gateway asks it for a
/// plain body, rewrites it, and compresses it toward the client that accepts gzip.
#[tokio::test]
async fn compressing_manager_is_rewritten_too() {
    use std::io::Read;
    let (_sim, gateway) = east_with(true).await;
    let reply = Call::to(&gateway, "/east/ovirt-engine/api/vms?max=1")
        .by("admin")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-encoding"], "gzip");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&reply.body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("href=\"/east/ovirt-engine/api/vms/"), "{text}");
}
