//! Simulator speed: it must never be the bottleneck of the gateway's benchmarks.
//!
//!     apt-get install -y wrk
//!     cargo bench --bench sim -- [seconds] [connections]
//!
//! Measured by `wrk` in the same run:
//! 1. a small entity GET (`/vms/ID`, Bearer token) on the simulator, against the fixed-body
//!    upstream of the proxy benchmark as the baseline (the fastest server possible);
//! 2. a 10,000-VM XML listing (`/vms`), in MB/s, with two connections;
//! 3. a 100,000-VM simulator: its resident memory after generation and after streaming the whole
//!    listing once (streaming means the listing does not add its own size).
//!
//! Goals (docs/simulator.md): 20,000 requests/s or more for 1, 100 MB/s or more for 2. Results go into
//! docs/performance.md by hand.

#[path = "support/client.rs"]
mod client;
mod support;
#[path = "support/upstream.rs"]
mod upstream;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use client::{first_vm_id, token};
use ovirt_gateway::sim::{self, SimOptions, Sizes};
use support::{runtime, seconds_and_connections, wrk};
use upstream::{peak_rss_kib, start_upstream};

fn main() {
    let (seconds, connections) = seconds_and_connections();
    let runtime = runtime();
    let start = |vms: usize| {
        runtime
            .block_on(sim::start(SimOptions {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                sizes: Sizes {
                    vms,
                    ..Sizes::default()
                },
                ..SimOptions::default()
            }))
            .unwrap()
    };
    let baseline = runtime.block_on(start_upstream());
    let small = start(50);
    let auth = format!("Authorization: Bearer {}", token(small.addr()));
    let id = first_vm_id(small.addr(), &auth);
    let path = format!("/ovirt-engine/api/vms/{id}");
    println!("small entity GET ({path}), {connections} connections, {seconds} s each, wrk");
    let fixed = wrk(baseline, &path, &[], seconds, connections);
    let simulated = wrk(small.addr(), &path, &[&auth, "Version: 4"], seconds, connections);
    println!(
        "{:<22} {:>12} {:>10} {:>10}",
        "target", "requests/s", "p50", "p99"
    );
    for (name, result) in [("fixed 1 KiB upstream", &fixed), ("simulator", &simulated)] {
        println!(
            "{name:<22} {:>12.0} {:>10} {:>10}",
            result.rps, result.p50, result.p99
        );
    }
    println!("simulator/fixed throughput: {:.2}", simulated.rps / fixed.rps);

    let large = start(10_000);
    let auth = format!("Authorization: Bearer {}", token(large.addr()));
    let listing = wrk(large.addr(), "/ovirt-engine/api/vms", &[&auth], seconds, 2);
    println!(
        "10,000-VM XML listing, 2 connections: {:.1} listings/s, {:.0} MB/s, p50 {}",
        listing.rps,
        listing.bytes_per_second / 1e6,
        listing.p50
    );
    let json = wrk(
        large.addr(),
        "/ovirt-engine/api/vms",
        &[&auth, "Accept: application/json"],
        seconds,
        2,
    );
    println!(
        "10,000-VM JSON listing, 2 connections: {:.1} listings/s, {:.0} MB/s",
        json.rps,
        json.bytes_per_second / 1e6
    );
    drop(large);
    drop(small);

    let before = peak_rss_kib();
    let huge = start(100_000);
    let generated = peak_rss_kib();
    let auth = format!("Authorization: Bearer {}", token(huge.addr()));
    let bytes = count_bytes(huge.addr(), "/ovirt-engine/api/vms", &auth);
    println!(
        "100,000 VMs: peak RSS {} MiB before, {} MiB after generation, {} MiB after streaming one {} MiB listing",
        before / 1024,
        generated / 1024,
        peak_rss_kib() / 1024,
        bytes >> 20
    );
}

/// The size of a whole response to a GET, read in small pieces so that the client keeps nothing.
fn count_bytes(addr: SocketAddr, path: &str, auth: &str) -> usize {
    let mut stream = TcpStream::connect(addr).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut buffer = vec![0; 64 * 1024];
    let mut total = 0;
    loop {
        match stream.read(&mut buffer).unwrap() {
            0 => return total,
            n => total += n,
        }
    }
}
