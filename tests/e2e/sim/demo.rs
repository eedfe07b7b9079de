//! The demo: its CA and private key on disk, its instructions, and the API served through its
//! HTTPS gateway.

use super::*;
use ovirt_gateway::{Demo, DemoOptions};

async fn demo(dir: &tempfile::TempDir) -> Demo {
    demo_with(dir, false).await
}

async fn demo_with(dir: &tempfile::TempDir, merged: bool) -> Demo {
    let ephemeral = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    Demo::start(DemoOptions {
        listen: ephemeral,
        admin: ephemeral,
        dir: dir.path().to_owned(),
        prefix: None,
        merged,
        replicas: 1,
        shared: None,
        proxy_protocol: false,
    })
    .await
    .unwrap_or_else(|e| panic!("demo: {e}"))
}

/// The demo writes the CA it uses to ca.pem and the listener's key readable by its owner only.
#[tokio::test]
async fn demo_writes_its_ca_and_a_private_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(&dir).await;
    assert_eq!(demo.ca_file, dir.path().join("ca.pem"));
    assert_eq!(
        std::fs::read_to_string(&demo.ca_file).unwrap(),
        demo.sim.pki().ca_pem
    );
    let key = std::fs::metadata(dir.path().join("tls/gateway.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    demo.shutdown().await;
}

/// The demo's instructions name the gateway's API URL and the CA file.
#[tokio::test]
async fn demo_instructions_name_the_url_and_ca() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(&dir).await;
    let text = demo.instructions();
    let url = format!("https://{}/ovirt-engine/api", demo.gateway.public_addr());
    assert_contains(&text, &url);
    assert_contains(&text, &demo.ca_file.display().to_string());
    demo.shutdown().await;
}

/// Through the demo's gateway, HTTPS trusting ca.pem with Basic admin lists a VM; shutdown returns.
#[tokio::test]
async fn demo_serves_the_api_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(&dir).await;
    let ca = std::fs::read_to_string(&demo.ca_file).unwrap();
    let origin = format!("https://{}", demo.gateway.public_addr());
    let reply = Call::to(origin, "/ovirt-engine/api/vms?max=1")
        .trusting(&ca)
        .by("admin")
        .send()
        .await
        .expect(200, "application/xml");
    assert_eq!(vm_names(&reply), [vm_name(1)]);
    tokio::time::timeout(Duration::from_secs(30), demo.shutdown())
        .await
        .expect("the demo stops");
}

/// `demo --merged`: both simulators' VMs in one listing at the root, each simulator under its
/// own prefix too.
#[tokio::test]
async fn merged_demo_lists_both_simulators() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo_with(&dir, true).await;
    let ca = std::fs::read_to_string(&demo.ca_file).unwrap();
    let origin = format!("https://{}", demo.gateway.public_addr());
    let names = |path: &str| {
        let call = Call::to(origin.as_str(), path).trusting(&ca).by("admin");
        async move { vm_names(&call.send().await.expect(200, "application/xml")) }
    };
    let all = names("/ovirt-engine/api/vms").await;
    assert!(all.contains(&vm_name(1)), "{all:?}");
    assert!(all.contains(&format!("west-{}", vm_name(1))), "{all:?}");
    let west = names("/west/ovirt-engine/api/vms").await;
    assert!(west.iter().all(|n| n.starts_with("west-")), "{west:?}");
    assert_contains(&demo.instructions(), "Federation-Manager");
    demo.shutdown().await;
}

/// Through the demo's HTTPS gateway, `Prefer: persistent-auth` gets the gateway's cookie, marked
/// Secure (and never the simulator's JSESSIONID).
#[tokio::test]
async fn demo_session_cookie_is_secure() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(&dir).await;
    let ca = std::fs::read_to_string(&demo.ca_file).unwrap();
    let origin = format!("https://{}", demo.gateway.public_addr());
    let reply = Call::to(origin, "/ovirt-engine/api")
        .trusting(&ca)
        .by("admin")
        .persistent()
        .send()
        .await
        .expect(200, "application/xml");
    let cookie = reply.header("set-cookie");
    assert!(cookie.starts_with("OVIRT_GATEWAY_SESSION="), "{cookie}");
    assert!(
        cookie.ends_with("; Path=/ovirt-engine/api; Secure; HttpOnly"),
        "{cookie}"
    );
}

/// `demo --replicas 3 --shared URL`: three gateways sharing one store, named in the
/// instructions; a login at one serves at another.
#[tokio::test]
async fn demo_with_replicas_shares_logins() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedisServer::start().await;
    let ephemeral = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let demo = Demo::start(DemoOptions {
        listen: ephemeral,
        admin: ephemeral,
        dir: dir.path().to_owned(),
        prefix: None,
        merged: false,
        replicas: 3,
        shared: Some(store.url()),
        proxy_protocol: false,
    })
    .await
    .unwrap_or_else(|e| panic!("demo: {e}"));
    assert_eq!(demo.replicas.len(), 2);
    let instructions = demo.instructions();
    for gateway in std::iter::once(&demo.gateway).chain(&demo.replicas) {
        assert_contains(&instructions, &gateway.public_addr().to_string());
    }
    let ca = std::fs::read_to_string(&demo.ca_file).unwrap();
    let (first, other) = (
        format!("https://{}", demo.gateway.public_addr()),
        format!("https://{}", demo.replicas[1].public_addr()),
    );
    eventually(Duration::from_secs(10), async || {
        let reply = Call::to(first.as_str(), "/ovirt-engine/sso/oauth/token")
            .trusting(&ca)
            .form("grant_type=password&scope=ovirt-app-api&username=alice%40internal&password=alice")
            .accept_json()
            .send()
            .await;
        let Some(token) = reply.json()["access_token"].as_str().map(str::to_owned) else {
            return false;
        };
        Call::to(other.as_str(), "/ovirt-engine/api")
            .trusting(&ca)
            .bearer(&token)
            .send()
            .await
            .status
            == StatusCode::OK
    })
    .await;
}
