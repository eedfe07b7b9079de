//! Representations as the engine writes them: XML layout and hrefs, JSON types and shapes,
//! escaping of a tricky description, gzip when accepted, and large listings streamed.

use super::*;

/// generate.rs `TRICKY_DESCRIPTION`, carried by vm-00003 (and every tenth VM after it).
const TRICKY: &str =
    "Owner <ops@example.com> & \"team\"; see href=\"/ovirt-engine/api/x\" and {query} \u{e9}t\u{e9}";

/// An XML VM: the declaration, 4-space indentation, `<actions>` as the first child.
#[tokio::test]
async fn xml_entity_layout() {
    let sim = simulator().await;
    let id = vm_where(&sim, "name=vm-00001").await.attr("id").to_owned();
    let reply = api(&sim, &format!("/vms/{id}"))
        .send()
        .await
        .expect(200, "application/xml");
    let head = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
         <vm href=\"/ovirt-engine/api/vms/{id}\" id=\"{id}\">\n    <actions>\n        <link href="
    );
    assert!(reply.text().starts_with(&head), "{}", reply.text());
    for line in reply.text().lines() {
        let indent = line.len() - line.trim_start().len();
        assert_eq!(indent % 4, 0, "{line:?}");
    }
    assert_eq!(reply.xml().children[0].name, "actions");
}

/// Asserts that the many hrefs of the root and of a followed listing under `base` all start with
/// `{base}/`.
async fn assert_every_href_under(base: &str) {
    let sim = simulator().await;
    for path in ["", "/vms?follow=nics,disk_attachments.disk"] {
        let path = format!("{}{path}", base.trim_start_matches("/ovirt-engine/api"));
        let hrefs: Vec<String> = api(&sim, &path)
            .xml()
            .await
            .hrefs()
            .into_iter()
            .map(String::from)
            .collect();
        assert!(hrefs.len() > 50, "{path}: {hrefs:?}");
        for href in hrefs {
            assert!(href.starts_with(&format!("{base}/")), "{path}: {href}");
        }
    }
}

/// Every href of the root and of a followed listing is path-absolute under /ovirt-engine/api/.
#[tokio::test]
async fn xml_hrefs_are_path_absolute() {
    assert_every_href_under("/ovirt-engine/api").await;
}

/// Under the /v4 path form every href carries /ovirt-engine/api/v4/.
#[tokio::test]
async fn v4_path_form_puts_v4_in_every_href() {
    assert_every_href_under("/ovirt-engine/api/v4").await;
}

/// A JSON entity has no wrapper; booleans and integers are strings, dates numbers.
#[tokio::test]
async fn json_entity_types() {
    let sim = simulator().await;
    let id = vm_where(&sim, "name=vm-00001").await.attr("id").to_owned();
    let reply = api(&sim, &format!("/vms/{id}")).accept_json().send().await;
    let vm = reply.expect(200, "application/json").json();
    assert_eq!(vm["id"], id.as_str());
    assert_eq!(vm["href"], format!("/ovirt-engine/api/vms/{id}"));
    assert_eq!(vm["name"], "vm-00001");
    assert!(vm.get("vm").is_none(), "{vm}");
    assert_eq!(vm["stateless"], "false");
    assert!(vm["memory"].as_str().unwrap().parse::<i64>().unwrap() > 0, "{vm}");
    assert!(vm["creation_time"].is_i64(), "{vm}");
    assert_eq!(vm["actions"]["link"][0]["rel"], "migrate");
}

/// A JSON collection is `{"vm": [...]}`.
#[tokio::test]
async fn json_collection_is_an_array_under_the_singular() {
    let sim = simulator().await;
    let reply = api(&sim, "/vms?max=3").accept_json().send().await;
    let vms = reply.expect(200, "application/json").json();
    let fields: Vec<&String> = vms.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["vm"]);
    assert_eq!(vms["vm"].as_array().unwrap().len(), 3);
}

/// An empty JSON collection is `{}`.
#[tokio::test]
async fn empty_json_collection_is_an_empty_object() {
    let sim = simulator().await;
    let reply = api(&sim, &vms_where("name=nomatch")).accept_json().send().await;
    assert_eq!(reply.expect(200, "application/json").json(), json!({}));
}

/// `?accept=application/json` selects JSON without an Accept header.
#[tokio::test]
async fn accept_parameter_selects_json() {
    let sim = simulator().await;
    let reply = api(&sim, "/vms?max=1&accept=application/json").send().await;
    assert_eq!(
        reply.expect(200, "application/json").json()["vm"][0]["name"],
        "vm-00001"
    );
}

/// The tricky description is escaped in XML and parses back to exactly the same text.
#[tokio::test]
async fn tricky_description_round_trips_in_xml() {
    let sim = simulator().await;
    let reply = api(&sim, &vms_where("name=vm-00003")).send().await;
    assert_contains(reply.text(), "Owner &lt;ops@example.com&gt; &amp; ");
    let listing = reply.xml();
    assert_eq!(listing.child("vm").text_of("description"), TRICKY);
}

/// The tricky description survives JSON escaping.
#[tokio::test]
async fn tricky_description_round_trips_in_json() {
    let sim = simulator().await;
    let reply = api(&sim, &vms_where("name=vm-00003")).accept_json().send().await;
    assert_eq!(reply.json()["vm"][0]["description"], TRICKY);
}

/// With `gzip` and `Accept-Encoding: gzip` the body is gzip, with `Vary: Accept-Encoding`.
#[tokio::test]
async fn gzip_when_accepted() {
    use std::io::Read;
    let sim = simulator_with(|o| o.gzip = true).await;
    let reply = api(&sim, "/vms").header("accept-encoding", "gzip").send().await;
    assert_eq!(reply.header("content-encoding"), "gzip");
    assert_eq!(reply.header("vary"), "Accept-Encoding");
    assert!(reply.headers.get("content-length").is_none());
    let mut xml = Vec::new();
    flate2::read::GzDecoder::new(&reply.body[..])
        .read_to_end(&mut xml)
        .unwrap();
    assert_eq!(parse_xml(&xml).all("vm").count(), 50);
}

/// With `gzip` but no Accept-Encoding the body is plain.
#[tokio::test]
async fn plain_without_accept_encoding() {
    let sim = simulator_with(|o| o.gzip = true).await;
    let reply = api(&sim, "/vms").send().await;
    assert!(reply.headers.get("content-encoding").is_none());
    assert_eq!(vm_names(&reply).len(), 50);
}

/// A listing of 20000 VMs is complete and streamed: no length, several body frames.
#[tokio::test]
async fn large_listing_is_streamed() {
    let sim = simulator_with(|o| o.sizes.vms = 20_000).await;
    let response = api(&sim, "/vms").exchange().await.unwrap();
    assert!(response.headers().get("content-length").is_none());
    let mut body = response.into_body();
    let (mut frames, mut xml) = (0, Vec::new());
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames += 1;
            xml.extend_from_slice(&data);
        }
    }
    assert!(frames > 1, "one frame");
    let text = String::from_utf8(xml).unwrap();
    assert_eq!(text.matches("<vm ").count(), 20_000);
    assert!(text.ends_with("</vms>\n"));
}
