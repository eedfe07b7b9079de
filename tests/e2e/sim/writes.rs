//! Adding, updating and removing VMs: answers, Location, and the faults of bad or conflicting
//! requests.

use super::*;

/// A VM to add, by name, in cluster-1.
fn new_vm(name: &str) -> String {
    format!("<vm><name>{name}</name><cluster><name>cluster-1</name></cluster></vm>")
}

/// Adding a VM answers 201 with the VM and an absolute Location built from the Host header.
#[tokio::test]
async fn add_vm_is_201_with_absolute_location() {
    let sim = simulator().await;
    let reply = api(&sim, "/vms")
        .post(&new_vm("added"))
        .send()
        .await
        .expect(201, "application/xml");
    let vm = reply.xml();
    assert_eq!(vm.text_of("name"), "added");
    assert_eq!(vm.text_of("status"), "down");
    let id = vm.attr("id");
    let expected = format!("http://{}/ovirt-engine/api/vms/{id}", sim.addr());
    assert_eq!(reply.header("location"), expected);
}

/// Adding a VM without a name is a 400 "Incomplete parameters" fault.
#[tokio::test]
async fn add_vm_without_name_is_400() {
    let sim = simulator().await;
    let body = "<vm><cluster><name>cluster-1</name></cluster></vm>";
    api(&sim, "/vms")
        .post(body)
        .fails(400, "Incomplete parameters")
        .await;
}

/// Adding a VM under a name in use is a 409 fault.
#[tokio::test]
async fn add_vm_with_a_taken_name_is_409() {
    let sim = simulator().await;
    let body = new_vm("vm-00001");
    let detail = api(&sim, "/vms").post(&body).fails(409, "Operation Failed").await;
    assert_contains(&detail, "name is already in use");
}

/// A malformed XML body is a 400 "Request syntactically incorrect." fault.
#[tokio::test]
async fn malformed_body_is_400() {
    let sim = simulator().await;
    let call = api(&sim, "/vms").post("<vm><name>x</name>");
    let detail = call.fails(400, "Request syntactically incorrect.").await;
    assert!(
        detail.starts_with("For correct usage, see: http://127.0.0.1:"),
        "{detail}"
    );
}

/// A JSON body adds a VM and gets a JSON answer.
#[tokio::test]
async fn add_vm_from_json() {
    let sim = simulator().await;
    let body = json!({"name": "from-json", "cluster": {"name": "cluster-2"}});
    let reply = api(&sim, "/vms").post_json(&body).accept_json().send().await;
    let reply = reply.expect(201, "application/json");
    let vm = reply.json();
    assert_eq!(vm["name"], "from-json");
    assert!(reply.header("location").ends_with(vm["id"].as_str().unwrap()));
}

/// Updating a VM answers 200 with the change, which a later GET shows.
#[tokio::test]
async fn update_vm_is_200() {
    let sim = simulator().await;
    let id = vm_where(&sim, "name=vm-00001").await.attr("id").to_owned();
    let change = "<vm><description>changed</description><memory>2147483648</memory></vm>";
    let answer = api(&sim, &format!("/vms/{id}")).put(change).xml().await;
    assert_eq!(answer.text_of("description"), "changed");
    let now = vm(&sim, &id).await;
    assert_eq!(
        (now.text_of("description"), now.text_of("memory")),
        ("changed", "2147483648")
    );
}

/// Removing a running VM is a 409 fault.
#[tokio::test]
async fn remove_of_a_running_vm_is_409() {
    let sim = simulator().await;
    let id = vm_where(&sim, "status=up").await.attr("id").to_owned();
    let detail = api(&sim, &format!("/vms/{id}"))
        .delete()
        .fails(409, "Operation Failed")
        .await;
    assert_eq!(detail, "[Cannot remove VM. VM is running.]");
}

/// Removing a down VM answers 200 with an `<action>`; the VM is then a 404 with an empty body.
#[tokio::test]
async fn remove_of_a_down_vm_is_200_then_404() {
    let sim = simulator().await;
    let path = format!("/vms/{}", vm_where(&sim, "status=down").await.attr("id"));
    let action = completed(api(&sim, &path).delete().send().await);
    assert!(
        action
            .child("job")
            .attr("href")
            .starts_with("/ovirt-engine/api/jobs/")
    );
    api(&sim, &path).send().await.not_found();
}
