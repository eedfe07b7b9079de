//! Cedar policies through the gateway, against the simulator: denials are 403 faults that never
//! reach the Manager, shadow mode lets everything through and counts, reloads swap valid sets and
//! keep the old one on errors, attributes are looked up as the user, and tricky paths are either
//! refused or decided on exactly the resource the simulator serves.

use std::net::SocketAddr;
use std::path::Path;

use http::StatusCode;
use ovirt_gateway::Running;
use ovirt_gateway::sim::RunningSim;
use tempfile::TempDir;

use crate::support::*;

/// A policy directory holding `files`.
fn policy_dir(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// A gateway in front of `sim` with `[policy]` on `dir` in `mode`.
async fn gateway(sim: &RunningSim, dir: &Path, mode: &str) -> Running {
    GatewayConfig::new()
        .manager("sim", &sim.api_url())
        .passthrough(false)
        .policies(dir)
        .set("policy", &format!("mode = \"{mode}\""))
        .start()
        .await
}

/// One request as `user` (Basic) accepting `accept`; a POST carries an empty `<action/>`.
async fn call(addr: SocketAddr, user: &str, method: &str, path: &str, accept: &str) -> Reply {
    let call = Call::to(addr, path).method(method).by(user).accept(accept);
    if method == "POST" {
        call.post("<action/>").send().await
    } else {
        call.send().await
    }
}

/// The id of the first VM `user` sees that is down (so that it can be started).
async fn first_vm(addr: SocketAddr, user: &str) -> String {
    let path = "/ovirt-engine/api/vms?search=status%3Ddown&max=1";
    let reply = call(addr, user, "GET", path, "application/xml").await;
    let body = reply.text();
    assert_eq!(reply.status, StatusCode::OK, "{body}");
    let start = body.find(" id=\"").unwrap() + 5;
    body[start..start + 36].to_owned()
}

/// A denial is a 403 fault naming the action and the kind of resource, in the client's
/// representation; the Manager never sees the request; the decision is counted.
#[tokio::test]
async fn denial_is_a_403_fault_that_never_reaches_the_manager() {
    let sim = simulator().await;
    let policies = shipped_policies();
    let gateway = gateway(&sim, policies.path(), "enforce").await;
    let addr = gateway.public_addr();
    let vm = first_vm(addr, "alice@internal").await;
    let path = format!("/ovirt-engine/api/vms/{vm}");
    let reply = call(addr, "alice@internal", "DELETE", &path, "application/xml").await;
    let body = reply.text();
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(reply.reason(), "Forbidden");
    assert!(
        body.contains("<detail>The gateway's policies do not allow `remove` on a Vm</detail>"),
        "{body}"
    );
    assert!(!body.contains("permit") && !body.contains("users-"), "{body}");
    let before = sim_stats(&sim).await["api_requests"].clone();
    let reply = call(addr, "alice@internal", "DELETE", &path, "application/json").await;
    let body = reply.text();
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let fault: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        fault["detail"],
        "The gateway's policies do not allow `remove` on a Vm"
    );
    let reply = call(
        addr,
        "alice@internal",
        "GET",
        "/ovirt-engine/api/hosts",
        "application/xml",
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        sim_stats(&sim).await["api_requests"],
        before,
        "a denied request reached the Manager"
    );
    // Allowed: her VM, and starting it.
    let reply = call(addr, "alice@internal", "GET", &path, "application/xml").await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = call(
        addr,
        "alice@internal",
        "POST",
        &format!("{path}/start"),
        "application/xml",
    )
    .await;
    let body = reply.text();
    assert_eq!(reply.status, StatusCode::OK, "{body}");
    let metrics = metrics(&gateway).await;
    assert_eq!(
        counter(
            &metrics,
            "gateway_policy_decisions_total{decision=\"deny\",mode=\"enforce\"}"
        ),
        3
    );
    assert!(
        counter(
            &metrics,
            "gateway_policy_decisions_total{decision=\"allow\",mode=\"enforce\"}"
        ) >= 3
    );
}

/// A policy that reads the VM's cluster gets it from the Manager, asked with the user's own
/// token: carol (ops) may start the VMs of cluster-1; the lookup is cached.
#[tokio::test]
async fn attributes_are_looked_up_as_the_user() {
    let sim = simulator().await;
    let policies = shipped_policies();
    let gateway = gateway(&sim, policies.path(), "enforce").await;
    let addr = gateway.public_addr();
    let vm = first_vm(addr, "carol@internal").await;
    let start = format!("/ovirt-engine/api/vms/{vm}/start");
    let stop = format!("/ovirt-engine/api/vms/{vm}/stop");
    let before = sim_stats(&sim).await["api_requests"].as_u64().unwrap();
    let reply = call(addr, "carol@internal", "POST", &start, "application/xml").await;
    let body = reply.text();
    assert_eq!(reply.status, StatusCode::OK, "{body}");
    // The VM, then its cluster: two lookups, then the action itself.
    let after_first = sim_stats(&sim).await["api_requests"].as_u64().unwrap();
    assert_eq!(after_first - before, 3);
    let reply = call(addr, "carol@internal", "POST", &stop, "application/xml").await;
    let body = reply.text();
    assert_eq!(reply.status, StatusCode::OK, "{body}");
    assert_eq!(
        sim_stats(&sim).await["api_requests"].as_u64().unwrap() - after_first,
        1
    );
    // Not an operate action: no policy permits it, whatever the cluster.
    let reply = call(
        addr,
        "carol@internal",
        "DELETE",
        &format!("/ovirt-engine/api/vms/{vm}"),
        "application/xml",
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

/// Shadow mode: the same denial is evaluated and counted, and the request goes to the Manager,
/// whose own answer the client gets.
#[tokio::test]
async fn shadow_mode_allows_and_counts() {
    let sim = simulator().await;
    let policies = shipped_policies();
    let gateway = gateway(&sim, policies.path(), "shadow").await;
    let addr = gateway.public_addr();
    let reply = call(
        addr,
        "alice@internal",
        "GET",
        "/ovirt-engine/api/hosts",
        "application/xml",
    )
    .await;
    let body = reply.text();
    assert_eq!(reply.status, StatusCode::OK, "{body}");
    assert!(body.contains("<hosts"), "{body}");
    let metrics = metrics(&gateway).await;
    assert_eq!(
        counter(
            &metrics,
            "gateway_policy_decisions_total{decision=\"deny\",mode=\"shadow\"}"
        ),
        1
    );
    assert_eq!(
        counter(
            &metrics,
            "gateway_policy_decisions_total{decision=\"deny\",mode=\"enforce\"}"
        ),
        0
    );
}

/// A valid change replaces the policies at once; an invalid one is refused with its file and
/// line and the previous policies stay in force.
#[tokio::test]
async fn reload_swaps_valid_sets_and_keeps_the_old_on_errors() {
    let sim = simulator().await;
    let dir = policy_dir(&[(
        "vms.cedar",
        "permit (principal, action == Action::\"list\", resource == Api::Collection::\"vms\");\n",
    )]);
    let gateway = gateway(&sim, dir.path(), "enforce").await;
    let addr = gateway.public_addr();
    let hosts = "/ovirt-engine/api/hosts";
    assert_eq!(
        call(addr, "admin@internal", "GET", hosts, "").await.status,
        StatusCode::FORBIDDEN
    );
    std::fs::write(
        dir.path().join("hosts.cedar"),
        "permit (principal, action == Action::\"list\", resource == Api::Collection::\"hosts\");\n",
    )
    .unwrap();
    assert_eq!(gateway.reload_policies().unwrap(), Some(2));
    assert_eq!(
        call(addr, "admin@internal", "GET", hosts, "").await.status,
        StatusCode::OK
    );
    std::fs::write(
        dir.path().join("broken.cedar"),
        "// a typo on line 2\npermit (principal, action, resource is Api::Vmm);\n",
    )
    .unwrap();
    let problems = gateway.reload_policies().unwrap_err();
    assert!(
        problems[0].to_string().contains("broken.cedar:2: "),
        "{problems:?}"
    );
    assert_eq!(
        call(addr, "admin@internal", "GET", hosts, "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(addr, "admin@internal", "GET", "/ovirt-engine/api/vms", "")
            .await
            .status,
        StatusCode::OK
    );
    let metrics = metrics(&gateway).await;
    assert_eq!(
        counter(&metrics, "gateway_policy_reloads_total{result=\"ok\"}"),
        1
    );
    assert_eq!(
        counter(&metrics, "gateway_policy_reloads_total{result=\"error\"}"),
        1
    );
}

/// At least 40 ways of writing a path to one VM that a policy forbids. Each is refused by the
/// gateway (400), denied by the policy (403, the gateway read it as that VM), or read by the
/// simulator as something else than that VM (its own answer, not 200, is what the client gets).
#[tokio::test]
async fn path_tricks_are_refused_or_decided_on_what_the_simulator_serves() {
    let sim = simulator().await;
    let admin = first_vm(sim.addr(), "admin@internal").await;
    let dir = policy_dir(&[(
        "all-but-one.cedar",
        &format!(
            "permit (principal, action, resource);\n\
             forbid (principal, action, resource == Api::Vm::\"{admin}\");\n"
        ),
    )]);
    let gateway = gateway(&sim, dir.path(), "enforce").await;
    let x = admin.as_str();
    let upper = x.to_ascii_uppercase();
    let first_escaped = format!("%{:02X}{}", x.as_bytes()[0], &x[1..]);
    let tricks: Vec<(&str, String)> = vec![
        ("GET", format!("/ovirt-engine/api/vms/{x}")),
        ("HEAD", format!("/ovirt-engine/api/vms/{x}")),
        ("PUT", format!("/ovirt-engine/api/vms/{x}")),
        ("DELETE", format!("/ovirt-engine/api/vms/{x}")),
        ("POST", format!("/ovirt-engine/api/vms/{x}/start")),
        ("GET", format!("/ovirt-engine/api/vms/{x}/")),
        ("GET", format!("/ovirt-engine/api/vms/{x}/nics")),
        ("GET", format!("/ovirt-engine/api/vms/{x}/disk_attachments")),
        ("GET", format!("/ovirt-engine/api/vms/{x}?follow=nics")),
        ("GET", format!("/ovirt-engine/api/vms/{x};detail=nics")),
        ("GET", format!("/ovirt-engine/api/vms;max=1/{x}")),
        ("GET", format!("/ovirt-engine/api/v4/vms/{x}")),
        ("GET", format!("/ovirt-engine/api/v4;x=1/vms/{x}")),
        ("GET", format!("/ovirt-engine/api;x=1/vms/{x}")),
        ("GET", format!("/ovirt-engine/api/vms/{upper}")),
        ("POST", format!("/ovirt-engine/api/vms/{upper}/start")),
        ("GET", format!("/ovirt-engine/api/vms/{first_escaped}")),
        ("GET", format!("/ovirt-engine/api/vm%73/{x}")),
        ("GET", format!("/ovirt-engine/api/vms%2F{x}")),
        ("GET", format!("/ovirt-engine/api/vms%2f{x}")),
        ("GET", format!("/ovirt-engine/api/vms%5C{x}")),
        ("GET", format!("/ovirt-engine/api/vms\\{x}")),
        ("GET", format!("/ovirt-engine/api//vms/{x}")),
        ("GET", format!("/ovirt-engine/api/vms//{x}")),
        ("GET", format!("//ovirt-engine/api/vms/{x}")),
        ("GET", format!("/ovirt-engine//api/vms/{x}")),
        ("GET", format!("/ovirt-engine/api/./vms/{x}")),
        ("GET", format!("/ovirt-engine/api/vms/./{x}")),
        ("GET", format!("/ovirt-engine/api/vms/x/../{x}")),
        ("GET", format!("/ovirt-engine/api/../api/vms/{x}")),
        ("GET", format!("/ovirt-engine/api/vms/{x}/..")),
        ("GET", format!("/ovirt-engine/api/vms/%2e/{x}")),
        ("GET", format!("/ovirt-engine/api/vms/%2E%2E/vms/{x}")),
        ("GET", format!("/ovirt-engine/api/vms/{x}%00")),
        ("GET", format!("/ovirt-engine/api/vms/{x}%2F")),
        ("GET", format!("/ovirt-engine/api/vms/{x}%C0%AE")),
        ("GET", format!("/ovirt-engine/api/vms/{x}%E0%80%AE")),
        ("GET", format!("/ovirt-engine/api/vms/{x}%ZZ")),
        ("GET", format!("/ovirt-engine/api/vms/{x}%3B")),
        ("GET", format!("/ovirt-engine/api/vms/{x}%20")),
        ("GET", format!("/ovirt-engine/api/vms/{x}.")),
        ("GET", format!("/ovirt-engine/api/VMS/{x}")),
        ("GET", format!("/ovirt-engine/api/Vms/{x}")),
        ("GET", format!("/ovirt-engine/API/vms/{x}")),
        ("GET", format!("/OVIRT-ENGINE/api/vms/{x}")),
        ("GET", format!("/ovirt-engine/api/v4/v4/vms/{x}")),
        ("GET", format!("/ovirt-engine/api/v3/vms/{x}")),
    ];
    assert!(tricks.len() >= 40);
    for (method, path) in &tricks {
        let through = raw_status(gateway.public_addr(), method, path).await;
        if through == 400 || through == 403 {
            continue;
        }
        let direct = raw_status(sim.addr(), method, path).await;
        assert_eq!(
            through, direct,
            "{method} {path}: the gateway and the simulator disagree"
        );
        assert!(
            !(200..300).contains(&direct),
            "{method} {path}: the simulator served the forbidden VM ({direct}) and the gateway let it through"
        );
    }
}

/// The status of one request written byte for byte (no client normalises the path).
async fn raw_status(addr: SocketAddr, method: &str, path: &str) -> u16 {
    let credentials = credentials("admin@internal", "admin");
    let body = if method == "POST" || method == "PUT" {
        "<vm/>"
    } else {
        ""
    };
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {credentials}\r\n\
         Content-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let response = raw_exchange(addr, raw.as_bytes()).await;
    response[9..12]
        .parse()
        .unwrap_or_else(|_| panic!("{method} {path}: {response}"))
}
