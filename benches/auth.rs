//! Authentication cost: whole-request throughput for a small entity GET to the simulator,
//! direct with the Manager's bearer token, and through the gateway three ways, in one run:
//!
//! 1. the Manager's token passed through (`auth.bearer_passthrough`): the proxy without auth;
//! 2. Basic credentials, exchanged for the user's warm session;
//! 3. the gateway's own token (from its SSO endpoint), verified and mapped to the login.
//!
//! The difference between 1 and 2 or 3 is what authentication costs per request, printed as the
//! machine time (both cores saturated, wrk included) it adds: 1/rate - 1/rate of run 1.
//!
//!     apt-get install -y wrk
//!     cargo bench --bench auth -- [seconds] [connections]

#[path = "support/client.rs"]
mod client;
mod support;

use std::net::SocketAddr;
use std::path::Path;

use base64::Engine;
use client::{first_vm_id, token};
use ovirt_gateway::sim::{self, SimOptions};
use ovirt_gateway::{Config, Gateway};
use support::{runtime, seconds_and_connections, wrk};

fn main() {
    let (seconds, connections) = seconds_and_connections();
    let runtime = runtime();
    let (sim, gateway) = runtime.block_on(async {
        let sim = sim::start(SimOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let text = format!(
            "[listen]\naddress = \"127.0.0.1:0\"\nplain_http = true\n\n[rate_limit]\nenabled = false\n\n[log]\nlevel = \"warn\"\n\n\
             [auth]\nbearer_passthrough = true\n\n[[manager]]\nname = \"sim\"\nurl = \"{}\"\n",
            sim.api_url()
        );
        let gateway = Gateway::start(Config::from_toml(&text, Path::new(".")).unwrap())
            .await
            .unwrap();
        (sim, gateway)
    });
    let manager_token = format!("Authorization: Bearer {}", token(sim.addr()));
    let gateway_token = format!("Authorization: Bearer {}", token(gateway.public_addr()));
    let basic = format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin@internal:admin")
    );
    let id = first_vm_id(sim.addr(), &manager_token);
    let path = format!("/ovirt-engine/api/vms/{id}");
    println!("small entity GET ({path}), {connections} connections, {seconds} s each, wrk");
    let runs = [
        ("direct, Manager token", sim.addr(), &manager_token),
        ("gateway, passthrough", gateway.public_addr(), &manager_token),
        ("gateway, Basic", gateway.public_addr(), &basic),
        ("gateway, gateway token", gateway.public_addr(), &gateway_token),
    ];
    println!(
        "{:<24} {:>12} {:>10} {:>10} {:>8}",
        "target", "requests/s", "p50", "p99", "MB/s"
    );
    let mut passthrough = 0.0;
    for (name, addr, auth) in runs {
        let result = wrk(addr, &path, &[auth.as_str(), "Version: 4"], seconds, connections);
        println!(
            "{name:<24} {:>12.0} {:>10} {:>10} {:>8.1}",
            result.rps,
            result.p50,
            result.p99,
            result.bytes_per_second / 1e6
        );
        if name == "gateway, passthrough" {
            passthrough = result.rps;
        } else if name.starts_with("gateway") {
            println!(
                "{:<24} authentication: {:+.1} us of the saturated machine per request",
                "",
                1e6 * (1.0 / result.rps - 1.0 / passthrough)
            );
        }
    }
}
