//! What a user may see: filtered users see their own VMs only, a hidden VM is an empty 404,
//! the unfiltered view is forbidden to them, and `Filter: true` filters an admin.

use super::*;

/// alice and bob each see their own VMs (every fifth, offset 1 and 2), never the other's.
#[tokio::test]
async fn users_see_disjoint_vm_sets() {
    let sim = simulator().await;
    let alice = listed(api(&sim, "/vms").by("alice")).await;
    let bob = listed(api(&sim, "/vms").by("bob")).await;
    let every_fifth = |from: usize| (from..=50).step_by(5).map(vm_name).collect::<Vec<_>>();
    assert_eq!(alice, every_fifth(1));
    assert_eq!(bob, every_fifth(2));
}

/// One of bob's VMs is a 404 with an empty body for alice.
#[tokio::test]
async fn hidden_vm_is_404_with_empty_body() {
    let sim = simulator().await;
    let bobs = vm_where(&sim, "name=vm-00002").await;
    let path = format!("/vms/{}", bobs.attr("id"));
    api(&sim, &path).by("bob").xml().await;
    api(&sim, &path).by("alice").send().await.not_found();
}

/// A filtered user asking for `filter=false` gets a 403 fault.
#[tokio::test]
async fn unfiltered_view_is_forbidden_to_users() {
    let sim = simulator().await;
    let call = api(&sim, "/vms?filter=false").by("alice");
    let detail = call.fails(403, "Operation Failed").await;
    assert_contains(&detail, "not authorized");
}

/// `Filter: true` is accepted from admin and filters the view: the root loses its summary.
#[tokio::test]
async fn filter_header_filters_an_admin() {
    let sim = simulator().await;
    let root = api(&sim, "").header("filter", "true").send().await;
    assert!(
        root.expect(200, "application/xml")
            .xml()
            .find("summary")
            .is_none()
    );
}
