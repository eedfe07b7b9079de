//! Actions on VMs: start, stop, migrate, what users may do to their own VMs, and the events
//! actions add.

use super::*;

/// Starting a down VM completes with a job; the VM is then powering up on a host, and up once
/// it has been read so (as a client polling the engine sees it).
#[tokio::test]
async fn start_completes_with_a_job() {
    let sim = simulator().await;
    let id = vm_where(&sim, "status=down").await.attr("id").to_owned();
    let action = completed(act(&sim, "admin", &id, "start").await);
    let job = action.child("job");
    assert_eq!(
        job.attr("href"),
        format!("/ovirt-engine/api/jobs/{}", job.attr("id"))
    );
    let listed = vm_where(&sim, &format!("id={id}")).await;
    assert_eq!(listed.text_of("status"), "powering_up");
    let starting = vm(&sim, &id).await;
    assert_eq!(
        starting.text_of("status"),
        "powering_up",
        "a listing does not move it on"
    );
    let started = vm(&sim, &id).await;
    assert_eq!(started.text_of("status"), "up");
    assert!(
        started
            .child("host")
            .attr("href")
            .starts_with("/ovirt-engine/api/hosts/")
    );
}

/// Starting a running VM is a 409 `<action>` holding the fault.
#[tokio::test]
async fn start_of_a_running_vm_is_409_action_fault() {
    let sim = simulator().await;
    let id = vm_where(&sim, "status=up").await.attr("id").to_owned();
    let reply = act(&sim, "admin", &id, "start").await;
    let action = reply.expect(409, "application/xml").xml();
    assert_eq!(action.name, "action");
    assert_eq!(action.text_of("status"), "failed");
    assert_eq!(
        action.child("fault").text_of("detail"),
        "[Cannot run VM. VM is running.]"
    );
}

/// Stopping a running VM leaves it down without a host.
#[tokio::test]
async fn stop_powers_a_vm_off() {
    let sim = simulator().await;
    let id = vm_where(&sim, "status=up").await.attr("id").to_owned();
    completed(act(&sim, "admin", &id, "stop").await);
    let stopped = vm(&sim, &id).await;
    assert_eq!(stopped.text_of("status"), "down");
    assert!(stopped.find("host").is_none());
}

/// A shutdown goes through powering_down; stop powers off at once.
#[tokio::test]
async fn shutdown_powers_down_then_off() {
    let sim = simulator().await;
    let id = vm_where(&sim, "status=up").await.attr("id").to_owned();
    completed(act(&sim, "admin", &id, "shutdown").await);
    let going = vm(&sim, &id).await;
    assert_eq!(going.text_of("status"), "powering_down");
    assert!(going.find("host").is_some());
    let gone = vm(&sim, &id).await;
    assert_eq!(gone.text_of("status"), "down");
    assert!(gone.find("host").is_none());
}

/// alice (UserRole on her VM) may power it on or off.
#[tokio::test]
async fn user_acts_on_her_own_vm() {
    let sim = simulator().await;
    let mine = vm_where(&sim, "name=vm-00001").await;
    let verb = if mine.text_of("status") == "up" {
        "stop"
    } else {
        "start"
    };
    completed(act(&sim, "alice", mine.attr("id"), verb).await);
}

/// alice may not remove her own VM: 403 fault.
#[tokio::test]
async fn user_may_not_remove_her_vm() {
    let sim = simulator().await;
    let mine = vm_where(&sim, "name=vm-00001").await;
    let call = api(&sim, &format!("/vms/{}", mine.attr("id"))).by("alice");
    call.delete().fails(403, "Operation Failed").await;
}

/// Migrating a running VM moves it to another host of its cluster.
#[tokio::test]
async fn migrate_moves_to_another_host() {
    let sim = simulator().await;
    let running = vm_where(&sim, "status=up").await;
    let id = running.attr("id");
    completed(act(&sim, "admin", id, "migrate").await);
    let moved = vm(&sim, id).await;
    assert_eq!(moved.text_of("status"), "up");
    assert_ne!(moved.child("host").attr("id"), running.child("host").attr("id"));
}

/// An action adds an event; `from=N` lists only the events after N.
#[tokio::test]
async fn events_grow_and_from_filters() {
    let sim = simulator().await;
    let ids =
        |events: Node| -> Vec<String> { events.all("event").map(|e| e.attr("id").to_owned()).collect() };
    let before = ids(api(&sim, "/events").xml().await);
    assert_eq!(before.len(), 20);
    assert_eq!(before[0], "20");
    let down = vm_where(&sim, "status=down").await;
    completed(act(&sim, "admin", down.attr("id"), "start").await);
    assert_eq!(ids(api(&sim, "/events").xml().await).len(), 21);
    let newer = api(&sim, "/events;from=20").xml().await;
    assert_eq!(ids(newer.clone()), ["21"]);
    let text = newer.child("event").text_of("description").to_owned();
    assert_contains(&text, "was started by admin@internal");
}
