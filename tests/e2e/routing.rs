//! Routing to several Managers by host and by path prefix.

use crate::support::*;
use ovirt_gateway::GatewayBody;

/// Prefix and host routes each reach their own Manager, with the prefix removed upstream.
#[tokio::test]
async fn routes_by_prefix_and_host() {
    let east = TestUpstream::start("east").await;
    let west = TestUpstream::start("west").await;
    let managers = format!(
        "{}{}",
        manager("east", &east.url(), "prefix = \"/east\""),
        manager("west", &west.url(), "host = \"west.example.com\"")
    );
    let gateway = start_gateway(&config_text("", &managers)).await;
    let addr = gateway.public_addr();

    let (status, headers, _) = get(addr, "/east/ovirt-engine/api/vms?max=1").await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-upstream"], "east");
    assert_eq!(east.last_seen().path_and_query, "/ovirt-engine/api/vms?max=1");

    let by_host = request("GET", addr, "/ovirt-engine/api/hosts").header("host", "west.example.com:8443");
    let (status, headers, _) = send(by_host.body(GatewayBody::empty()).unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-upstream"], "west");
    assert_eq!(west.last_seen().path_and_query, "/ovirt-engine/api/hosts");

    // Neither the bare path (west needs its host) nor a look-alike prefix routes anywhere.
    assert_eq!(get(addr, "/ovirt-engine/api/vms").await.0, 404);
    assert_eq!(get(addr, "/eastern/ovirt-engine/api/vms").await.0, 404);
}

/// A Manager published under a path on its own side gets that path in front of /ovirt-engine.
#[tokio::test]
async fn upstream_prefix_is_added() {
    let upstream = TestUpstream::start("engine").await;
    let url = format!("http://{}/rhv/ovirt-engine/api", upstream.addr);
    let gateway = start_gateway(&config_text("", &manager("rhv", &url, "prefix = \"/lab\""))).await;
    let (status, _, _) = get(gateway.public_addr(), "/lab/ovirt-engine/api/vms").await;
    assert_eq!(status, 200);
    assert_eq!(upstream.last_seen().path_and_query, "/rhv/ovirt-engine/api/vms");
}
