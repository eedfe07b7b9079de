//! What the Ansible collection (ovirt.ovirt) asks of a Manager beyond the SDK scenarios:
//! template searches by data center and by VM, VM sub-collections (statistics, tags, NUMA nodes,
//! reported devices, affinity labels), tags made and attached, the CPU topology of a new VM.

use super::*;

fn names(node: &Node, element: &str) -> Vec<String> {
    node.all(element).map(|e| e.text_of("name").to_owned()).collect()
}

/// The Blank template is found in every data center; a cluster's template in its own only.
#[tokio::test]
async fn templates_are_searched_by_data_center() {
    let sim = simulator().await;
    let path = |query: &str| format!("/templates?search={}", encode(query));
    let blank = api(&sim, &path("name=Blank and datacenter=dc-2")).xml().await;
    assert_eq!(names(&blank, "template"), ["Blank"]);
    let dc1 = api(&sim, &path("datacenter=dc-1")).xml().await;
    assert_eq!(names(&dc1, "template"), ["Blank", "tpl-1", "tpl-2"]);
    let versions: Vec<&str> = dc1
        .all("template")
        .map(|t| t.child("version").text_of("version_number"))
        .collect();
    assert_eq!(versions, ["1", "1", "1"]);
}

/// `Templates: vm.name=X` is the template X was made from.
#[tokio::test]
async fn templates_are_searched_by_the_vm_made_from_them() {
    let sim = simulator().await;
    let vm = vm_where(&sim, "name=vm-00003").await;
    let template = vm.child("template").attr("id").to_owned();
    let found = api(&sim, &format!("/templates?search={}", encode("vm.name=vm-00003")))
        .xml()
        .await;
    let ids: Vec<&str> = found.all("template").map(|t| t.attr("id")).collect();
    assert_eq!(ids, [template.as_str()]);
}

/// A VM's statistics: configured memory always, memory in use and CPU while it runs.
#[tokio::test]
async fn vm_statistics_follow_its_state() {
    let sim = simulator().await;
    let vm = vm_where(&sim, "name=vm-00001").await;
    let id = vm.attr("id").to_owned();
    let memory = vm.text_of("memory").to_owned();
    let statistics = api(&sim, &format!("/vms/{id}/statistics")).xml().await;
    assert_eq!(
        names(&statistics, "statistic"),
        ["cpu.current.guest", "memory.installed", "memory.used"]
    );
    let datum = |name: &str| {
        statistics
            .all("statistic")
            .find(|s| s.text_of("name") == name)
            .unwrap()
            .child("values")
            .child("value")
            .text_of("datum")
            .to_owned()
    };
    assert_eq!(datum("memory.installed"), memory);
    let running = vm.text_of("status") == "up";
    assert_eq!(datum("cpu.current.guest") != "0", running);
}

/// NUMA nodes, reported devices and affinity labels are served, empty; every link a VM lists
/// answers, also when followed inline (`follow=` of a stored relation stays a link).
#[tokio::test]
async fn every_vm_link_answers() {
    let sim = simulator().await;
    let vm = vm_where(&sim, "name=vm-00001").await;
    let id = vm.attr("id").to_owned();
    for (segment, element) in [
        ("numanodes", "vm_numa_nodes"),
        ("reporteddevices", "reported_devices"),
        ("affinitylabels", "affinity_labels"),
    ] {
        let listing = api(&sim, &format!("/vms/{id}/{segment}")).xml().await;
        assert_eq!(listing.name, element);
        assert!(listing.children.is_empty(), "{segment}");
    }
    let links: Vec<String> = vm.all("link").map(|l| l.attr("href").to_owned()).collect();
    assert_eq!(links.len(), 9, "{links:?}");
    for href in links {
        let reply = raw(&sim, &href).by("admin").send().await;
        assert_eq!(reply.status, 200, "{href}");
    }
    for follow in ["permissions", "tags", "statistics", "numa_nodes", "nics"] {
        let reply = api(&sim, &format!("/vms?max=2&follow={follow}")).send().await;
        assert_eq!(reply.status, 200, "follow={follow}: {}", reply.text());
    }
}

/// A tag made under the root, attached to a VM (found by `Vms: tag=`), then detached.
#[tokio::test]
async fn tags_are_made_attached_and_detached() {
    let sim = simulator().await;
    let made = api(&sim, "/tags")
        .post("<tag><name>web</name><description>web servers</description></tag>")
        .send()
        .await
        .expect(201, "application/xml")
        .xml();
    let tag = made.attr("id").to_owned();
    assert_eq!(
        made.child("parent").attr("id"),
        "00000000-0000-0000-0000-000000000000"
    );
    api(&sim, "/tags")
        .post("<tag><name>web</name></tag>")
        .fails(409, "Operation Failed")
        .await;
    let vm = vm_where(&sim, "name=vm-00002").await;
    let id = vm.attr("id").to_owned();
    api(&sim, &format!("/vms/{id}/tags"))
        .post("<tag><name>web</name></tag>")
        .send()
        .await
        .expect(201, "application/xml");
    let tagged = api(&sim, &format!("/vms/{id}/tags")).xml().await;
    assert_eq!(names(&tagged, "tag"), ["web"]);
    assert_eq!(listed(api(&sim, &vms_where("tag=web"))).await, ["vm-00002"]);
    let detached = api(&sim, &format!("/vms/{id}/tags/{tag}")).delete().send().await;
    assert_eq!(detached.status, 200);
    assert!(listed(api(&sim, &vms_where("tag=web"))).await.is_empty());
    let again = api(&sim, &format!("/vms/{id}/tags/{tag}")).delete().send().await;
    again.not_found();
    // Tags are an admin's to make and attach.
    api(&sim, "/tags")
        .by("carol")
        .post("<tag><name>mine</name></tag>")
        .fails(403, "Operation Failed")
        .await;
}

/// The CPU topology a new VM is given, and an update of it, are kept.
#[tokio::test]
async fn cpu_topology_is_kept() {
    let sim = simulator().await;
    let added = api(&sim, "/vms")
        .post(
            "<vm><name>four-cores</name><cluster><name>cluster-1</name></cluster>\
             <cpu><topology><cores>4</cores><sockets>1</sockets></topology></cpu></vm>",
        )
        .send()
        .await
        .expect(201, "application/xml")
        .xml();
    let topology = |vm: &Node, member: &str| vm.child("cpu").child("topology").text_of(member).to_owned();
    assert_eq!(
        [topology(&added, "cores"), topology(&added, "sockets")],
        ["4", "1"]
    );
    assert_eq!(topology(&added, "threads"), "1");
    let id = added.attr("id").to_owned();
    let updated = api(&sim, &format!("/vms/{id}"))
        .put("<vm><cpu><topology><cores>2</cores></topology></cpu></vm>")
        .send()
        .await
        .expect(200, "application/xml")
        .xml();
    assert_eq!(
        [topology(&updated, "cores"), topology(&updated, "sockets")],
        ["2", "1"]
    );
    api(&sim, "/vms")
        .post("<vm><name>none</name><cluster><name>cluster-1</name></cluster><cpu><topology><cores>0</cores></topology></cpu></vm>")
        .fails(400, "Operation Failed")
        .await;
}

/// Sub-collections beyond a VM's: a user's and a group's permissions, a storage domain's
/// templates and VMs (those of its data center), a host's statistics, a cluster's affinity
/// groups; a member is found under its parent and nowhere else.
#[tokio::test]
async fn other_objects_have_their_sub_collections() {
    let sim = simulator().await;
    let first_id = async |collection: &str, query: &str| {
        api(&sim, &format!("/{collection}?search={}", encode(query)))
            .xml()
            .await
            .children[0]
            .attr("id")
            .to_owned()
    };
    let alice = first_id("users", "usrname=alice*").await;
    let permissions = api(&sim, &format!("/users/{alice}/permissions")).xml().await;
    // alice has UserRole on vm-00001, vm-00006, ... vm-00046.
    assert_eq!(permissions.all("permission").count(), 10);
    let permission = permissions.children[0].attr("id").to_owned();
    let own = api(&sim, &format!("/users/{alice}/permissions/{permission}"))
        .xml()
        .await;
    assert_eq!(own.attr("id"), permission);
    let bob = first_id("users", "usrname=bob*").await;
    api(&sim, &format!("/users/{bob}/permissions/{permission}"))
        .send()
        .await
        .not_found();
    let ops = first_id("groups", "name=ops").await;
    let group = api(&sim, &format!("/groups/{ops}/permissions")).xml().await;
    assert_eq!(group.all("permission").count(), 1);

    let sd = first_id("storagedomains", "name=dc-1-data").await;
    let templates = api(&sim, &format!("/storagedomains/{sd}/templates")).xml().await;
    assert_eq!(names(&templates, "template"), ["tpl-1", "tpl-2"]);
    let vms = api(&sim, &format!("/storagedomains/{sd}/vms")).xml().await;
    let in_dc1 = listed(api(&sim, &vms_where("datacenter=dc-1"))).await;
    assert_eq!(names(&vms, "vm"), in_dc1);

    let host = first_id("hosts", "name=host-01").await;
    let statistics = api(&sim, &format!("/hosts/{host}/statistics")).xml().await;
    assert_eq!(
        names(&statistics, "statistic"),
        ["cpu.current.user", "memory.total", "memory.used"]
    );
    let href = statistics.children[0].attr("href");
    assert!(
        href.starts_with(&format!("/ovirt-engine/api/hosts/{host}/statistics/")),
        "{href}"
    );

    let cluster = first_id("clusters", "name=cluster-1").await;
    let groups = api(&sim, &format!("/clusters/{cluster}/affinitygroups"))
        .xml()
        .await;
    assert_eq!(groups.name, "affinity_groups");
    assert!(groups.children.is_empty());
}
