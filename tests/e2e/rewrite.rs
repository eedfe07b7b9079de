//! Links in bodies and headers point at the gateway, against the simulator published under a
//! prefix (`/east`).

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use ovirt_gateway::GatewayBody;
use ovirt_gateway::Running;
use ovirt_gateway::sim::{self, RunningSim, SimOptions};

use crate::support::*;

async fn east() -> (RunningSim, Running) {
    east_with(false).await
}

/// The simulator (gzip-compressing when asked, if `gzip`) published under `/east`.
async fn east_with(gzip: bool) -> (RunningSim, Running) {
    let sim = sim::start(SimOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        gzip,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let text =
        config_text("", &manager("east", &sim.api_url(), "prefix = \"/east\"")).replace(PASSTHROUGH, "");
    let gateway = start_gateway(&text).await;
    (sim, gateway)
}

fn admin() -> String {
    format!("Basic {}", STANDARD.encode("admin@internal:admin"))
}

async fn call(
    gateway: &Running,
    method: &str,
    path: &str,
    accept: &str,
    body: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", gateway.public_addr()))
        .header("authorization", admin())
        .header("accept", accept)
        .header("content-type", "application/xml")
        .body(if body.is_empty() {
            GatewayBody::empty()
        } else {
            full(body.to_owned())
        })
        .unwrap();
    let (status, headers, body) = send(request).await;
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

/// Every href of an XML listing carries the public prefix; markup-like text in a description
/// stays exactly as the Manager wrote it.
#[tokio::test]
async fn xml_hrefs_get_the_prefix() {
    let (_sim, gateway) = east().await;
    let (status, headers, body) = call(
        &gateway,
        "GET",
        "/east/ovirt-engine/api/vms?max=3",
        "application/xml",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("content-length").is_none());
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
    let (status, _, body) = call(
        &gateway,
        "GET",
        "/east/ovirt-engine/api/vms?max=2",
        "application/json",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
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
    let (status, headers, _) = call(
        &gateway,
        "POST",
        "/east/ovirt-engine/api/vms",
        "application/xml",
        add,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let location = headers["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{origin}/east/ovirt-engine/api/vms/")),
        "{location}"
    );
    let (_, headers, _) = call(&gateway, "GET", "/east/ovirt-engine/api", "application/xml", "").await;
    let link = headers["link"].to_str().unwrap();
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
    let request = http::Request::get(format!(
        "http://{}/east/ovirt-engine/api/vms?max=1",
        gateway.public_addr()
    ))
    .header("authorization", admin())
    .header("accept-encoding", "gzip")
    .body(GatewayBody::empty())
    .unwrap();
    let (status, headers, body) = send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-encoding"], "gzip");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("href=\"/east/ovirt-engine/api/vms/"), "{text}");
}
