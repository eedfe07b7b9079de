//! Cache-hit throughput (docs/caching.md), in one run, for a 20 KB answer of the simulator (nine VMs,
//! `/vms?max=9`: no single entity of the simulator is that large) and a small entity:
//!
//! 1. direct to the simulator with its own token: the baseline;
//! 2. through a gateway without `[cache]` (every request reaches the simulator);
//! 3. through a gateway with `[cache]` (a 10-minute TTL, so every request after the first is a
//!    hit), at 32 connections and at 1 (the hit path's own latency).
//!
//! Goal: hits at least 3x the direct throughput. Results go into docs/performance.md.
//!
//!     apt-get install -y wrk
//!     cargo bench --bench cache -- [seconds] [connections]

#[path = "support/client.rs"]
mod client;
mod support;

use std::net::SocketAddr;
use std::path::Path;

use client::{first_vm_id, token};
use ovirt_gateway::sim::{self, SimOptions};
use ovirt_gateway::{Config, Gateway};
use support::{runtime, seconds_and_connections, wrk};

fn main() {
    let (seconds, connections) = seconds_and_connections();
    let runtime = runtime();
    let (sim, plain, cached) = runtime.block_on(async {
        let sim = sim::start(SimOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let text = format!(
            "[listen]\naddress = \"127.0.0.1:0\"\nplain_http = true\n\n[rate_limit]\nenabled = false\n\n[admin]\naddress = \"127.0.0.1:0\"\n\n\
             [log]\nlevel = \"warn\"\n\n[[manager]]\nname = \"sim\"\nurl = \"{}\"\n",
            sim.api_url()
        );
        let with_cache = format!("{text}\n[cache]\n[cache.ttl]\ncollection = \"10m\"\nentity = \"10m\"\n");
        let start = |text: String| async move {
            Gateway::start(Config::from_toml(&text, Path::new(".")).unwrap())
                .await
                .unwrap()
        };
        (sim, start(text).await, start(with_cache).await)
    });
    let direct_auth = format!("Authorization: Bearer {}", token(sim.addr()));
    let id = first_vm_id(sim.addr(), &direct_auth);
    for (name, path) in [
        ("20 KB listing", "/ovirt-engine/api/vms?max=9".to_owned()),
        ("small entity", format!("/ovirt-engine/api/vms/{id}")),
    ] {
        println!("{name} ({path}), {connections} connections, {seconds} s each, wrk");
        let mut rates = Vec::new();
        for (label, addr, auth, clients) in [
            (
                "direct to the simulator",
                sim.addr(),
                direct_auth.clone(),
                connections,
            ),
            (
                "gateway, no [cache]",
                plain.public_addr(),
                format!("Authorization: Bearer {}", token(plain.public_addr())),
                connections,
            ),
            (
                "gateway, cache hits",
                cached.public_addr(),
                format!("Authorization: Bearer {}", token(cached.public_addr())),
                connections,
            ),
            (
                "gateway, cache hits, 1 connection",
                cached.public_addr(),
                format!("Authorization: Bearer {}", token(cached.public_addr())),
                1,
            ),
        ] {
            let result = wrk(addr, &path, &[&auth, "Version: 4"], seconds, clients);
            println!(
                "{label:<36} {:>10.0} requests/s, p50 {}, p99 {}, {:.1} MB/s",
                result.rps,
                result.p50,
                result.p99,
                result.bytes_per_second / 1e6
            );
            rates.push(result.rps);
        }
        println!("cache hits / direct: {:.2}x\n", rates[2] / rates[0]);
    }
    let metrics = runtime.block_on(async {
        let admin = cached.admin_addr().unwrap();
        let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(
                format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        text
    });
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("gateway_cache_requests_total"))
    {
        println!("{line}");
    }
}
