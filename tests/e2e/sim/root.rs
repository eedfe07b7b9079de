//! The API root: the Link header, the summary for admins, the authenticated user, the special
//! objects and HEAD.

use super::*;

/// The id of the Blank template and of the root tag.
const BLANK: &str = "00000000-0000-0000-0000-000000000000";

/// The root's `Link` header: absolute URLs from the Host header, sorted, with `{query}` templates.
#[tokio::test]
async fn root_link_header_is_absolute_from_host() {
    let sim = simulator().await;
    let reply = api(&sim, "")
        .header("host", "engine.example.com:8443")
        .send()
        .await;
    let links: Vec<&str> = reply.header("link").split(',').collect();
    let api = "http://engine.example.com:8443/ovirt-engine/api";
    for link in &links {
        assert!(link.starts_with(&format!("<{api}/")), "{link}");
    }
    for expected in [
        format!("<{api}/clusters>; rel=clusters"),
        format!("<{api}/vms?search={{query}}>; rel=vms/search"),
        format!("<{api}/events;from={{event_id}}?search={{query}}>; rel=events/search"),
    ] {
        assert!(links.contains(&expected.as_str()), "{expected} not in {links:?}");
    }
    assert!(links.is_sorted(), "{links:?}");
}

/// The root's summary is there for admin and not for alice (a filtered user).
#[tokio::test]
async fn root_summary_is_for_admins_only() {
    let sim = simulator().await;
    let admin = api(&sim, "").xml().await;
    assert_eq!(admin.child("summary").child("vms").text_of("total"), "50");
    let alice = api(&sim, "").by("alice").xml().await;
    assert!(alice.find("summary").is_none());
}

/// The root's authenticated_user is the caller.
#[tokio::test]
async fn root_names_the_authenticated_user() {
    let sim = simulator().await;
    let users = api(&sim, "/users").xml().await;
    let alice = users
        .all("user")
        .find(|u| u.text_of("name") == "alice")
        .unwrap()
        .attr("id");
    let root = api(&sim, "").by("alice").xml().await;
    let user = root.child("authenticated_user");
    assert_eq!(user.attr("id"), alice);
    assert_eq!(user.attr("href"), format!("/ovirt-engine/api/users/{alice}"));
}

/// special_objects names the Blank template by the all-zero id, and that href resolves.
#[tokio::test]
async fn root_special_objects_name_the_blank_template() {
    let sim = simulator().await;
    let root = api(&sim, "").xml().await;
    let blank = root.child("special_objects").child("blank_template");
    assert_eq!(blank.attr("id"), BLANK);
    let href = blank.attr("href").strip_prefix("/ovirt-engine/api").unwrap();
    assert_eq!(api(&sim, href).xml().await.text_of("name"), "Blank");
}

/// HEAD on the root answers 200 with the Link header and no body.
#[tokio::test]
async fn root_head_has_headers_and_no_body() {
    let sim = simulator().await;
    let reply = api(&sim, "").head().send().await.expect(200, "application/xml");
    assert!(reply.header("link").contains("; rel=vms"));
    assert!(reply.body.is_empty());
}
