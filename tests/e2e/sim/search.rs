//! Search, paging and `follow` on VM listings.

use super::*;

/// `name=vm-0001*` matches vm-00010 to vm-00019.
#[tokio::test]
async fn search_by_name_wildcard() {
    let sim = simulator().await;
    let names = listed(api(&sim, &vms_where("name=vm-0001*"))).await;
    assert_eq!(names, (10..=19).map(vm_name).collect::<Vec<_>>());
}

/// `status=up` returns exactly the running VMs.
#[tokio::test]
async fn search_by_status() {
    let sim = simulator().await;
    let all = api(&sim, "/vms").xml().await;
    let running: Vec<&str> = all
        .all("vm")
        .filter(|vm| vm.text_of("status") == "up")
        .map(|vm| vm.text_of("name"))
        .collect();
    assert!(!running.is_empty() && running.len() < 50, "{running:?}");
    assert_eq!(listed(api(&sim, &vms_where("status=up"))).await, running);
}

/// `cluster=cluster-2` returns the VMs placed there (every fourth, from vm-00002).
#[tokio::test]
async fn search_by_cluster_name() {
    let sim = simulator().await;
    let names = listed(api(&sim, &vms_where("cluster=cluster-2"))).await;
    assert_eq!(names, (2..=50).step_by(4).map(vm_name).collect::<Vec<_>>());
}

/// `sortby name desc` lists from vm-00050 down.
#[tokio::test]
async fn search_sorts_descending() {
    let sim = simulator().await;
    let names = listed(api(&sim, &vms_where("sortby name desc"))).await;
    assert_eq!(names, (1..=50).rev().map(vm_name).collect::<Vec<_>>());
}

/// `page 2` with `max=10` is the second ten.
#[tokio::test]
async fn search_pages_by_max() {
    let sim = simulator().await;
    let path = format!("{}&max=10", vms_where("page 2"));
    let names = listed(api(&sim, &path)).await;
    assert_eq!(names, (11..=20).map(vm_name).collect::<Vec<_>>());
}

/// Search ignores case unless `case_sensitive=true`.
#[tokio::test]
async fn case_sensitive_search() {
    let sim = simulator().await;
    let path = vms_where("name=VM-00001");
    assert_eq!(listed(api(&sim, &path)).await, [vm_name(1)]);
    let sensitive = api(&sim, &format!("{path}&case_sensitive=true")).send().await;
    assert!(vm_names(&sensitive).is_empty());
}

/// A search on a field VMs do not have is a 400 fault naming it.
#[tokio::test]
async fn unknown_search_field_is_400() {
    let sim = simulator().await;
    let detail = api(&sim, &vms_where("colour=red"))
        .fails(400, "Operation Failed")
        .await;
    assert_contains(&detail, "'colour'");
}

/// A `max` that is not a number is a 400 fault.
#[tokio::test]
async fn bad_max_is_400() {
    let sim = simulator().await;
    let detail = api(&sim, "/vms?max=ten").fails(400, "Operation Failed").await;
    assert_eq!(detail, "Invalid value 'ten' for parameter 'max'");
}

/// `follow=nics,disk_attachments.disk` inlines the nics, and the disk inside its attachment.
#[tokio::test]
async fn follow_inlines_nics_and_attached_disks() {
    let sim = simulator().await;
    let id = vm_where(&sim, "name=vm-00001").await.attr("id").to_owned();
    let path = format!("/vms/{id}?follow=nics,disk_attachments.disk");
    let vm = api(&sim, &path).xml().await;
    assert_eq!(vm.child("nics").child("nic").text_of("name"), "nic1");
    let disk = vm
        .child("disk_attachments")
        .child("disk_attachment")
        .child("disk");
    assert_eq!(disk.text_of("name"), "vm-00001_Disk1");
    assert!(disk.attr("href").starts_with("/ovirt-engine/api/disks/"));
    let rels: Vec<&str> = vm.all("link").map(|l| l.attr("rel")).collect();
    assert_eq!(
        rels,
        [
            "affinitylabels",
            "numanodes",
            "permissions",
            "reporteddevices",
            "snapshots",
            "statistics",
            "tags"
        ]
    );
}
