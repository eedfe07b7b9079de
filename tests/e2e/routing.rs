//! Routing to several Managers by host and by path prefix.

use crate::support::*;

/// Prefix and host routes each reach their own Manager, with the prefix removed upstream.
#[tokio::test]
async fn routes_by_prefix_and_host() {
    let east = TestUpstream::start("east").await;
    let west = TestUpstream::start("west").await;
    let gateway = GatewayConfig::new()
        .manager_with("east", &east.url(), "prefix = \"/east\"")
        .manager_with("west", &west.url(), "host = \"west.example.com\"")
        .start()
        .await;
    let addr = gateway.public_addr();
    let get = |path: &str| Call::to(addr, path).secrets();

    let reply = get("/east/ovirt-engine/api/vms?max=1").send().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["x-upstream"], "east");
    assert_eq!(east.last_seen().path_and_query, "/ovirt-engine/api/vms?max=1");

    let by_host = get("/ovirt-engine/api/hosts")
        .header("host", "west.example.com:8443")
        .send()
        .await;
    assert_eq!(by_host.status, 200);
    assert_eq!(by_host.headers["x-upstream"], "west");
    assert_eq!(west.last_seen().path_and_query, "/ovirt-engine/api/hosts");

    // Neither the bare path (west needs its host) nor a look-alike prefix routes anywhere.
    assert_eq!(get("/ovirt-engine/api/vms").send().await.status, 404);
    assert_eq!(get("/eastern/ovirt-engine/api/vms").send().await.status, 404);
}

/// A Manager published under a path on its own side gets that path in front of /ovirt-engine.
#[tokio::test]
async fn upstream_prefix_is_added() {
    let upstream = TestUpstream::start("engine").await;
    let url = format!("http://{}/rhv/ovirt-engine/api", upstream.addr);
    let gateway = GatewayConfig::new()
        .manager_with("rhv", &url, "prefix = \"/lab\"")
        .start()
        .await;
    let reply = Call::to(&gateway, "/lab/ovirt-engine/api/vms")
        .secrets()
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(upstream.last_seen().path_and_query, "/rhv/ovirt-engine/api/vms");
}
