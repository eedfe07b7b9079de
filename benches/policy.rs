//! Policy decision cost (docs/policies.md, "Cost"), in one run:
//!
//! 1. criterion: mapping and deciding a request with the shipped policies plus 1,000 generated
//!    ones loaded (1,007), and with the shipped policies alone: carol starting a VM of cluster-1,
//!    with its looked-up cluster (the permit that applies reads a resource attribute), and
//!    robot-1 updating a VM (the forbid that applies reads the client's address and the time,
//!    the dearest context attributes to build);
//! 2. the p50 and p99 of 100,000 of each decision, timed one by one;
//! 3. whole requests with wrk: a small entity GET through a gateway without `[policy]` and
//!    through one with the 1,007 policies (admin, the gateway's token), and the policy stage's
//!    share of the machine time per request: 1 - rate with / rate without.
//!
//! Goal: p99 under 50 microseconds with 1,000 policies. Results go into docs/performance.md.
//!
//!     apt-get install -y wrk
//!     cargo bench --bench policy -- [seconds] [connections]

#[path = "support/client.rs"]
mod client;
mod support;

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use tokio::time::Instant;

use client::{first_vm_id, token};
use criterion::Criterion;
use http::Method;
use ovirt_gateway::ApiPath;
use ovirt_gateway::sim::{self, SimOptions};
use ovirt_gateway::{Config, Gateway};
use ovirt_gateway::{ContextParams, Facts, Found, Policies, map_request};
use support::{runtime, seconds_and_connections, wrk};

const GENERATED: usize = 1000;

/// The shipped policies and entities, plus `extra` generated policies in the style of real
/// ones: per-group operate rights on the VMs of a cluster, per-user forbids, per-Manager reads.
fn policy_dir(extra: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let mut text = String::new();
    for i in 0..extra {
        text += &match i % 3 {
            0 => format!(
                "permit (principal in Gateway::Group::\"team-{i}\", action in Action::\"operate\", resource is Api::Vm)\n\
                 when {{ resource has cluster && resource.cluster == \"cluster-{i}\" }};\n"
            ),
            1 => format!(
                "forbid (principal == Gateway::User::\"robot-{i}@internal\", action in Action::\"write\", resource)\n\
                 unless {{ context.client_ip.isInRange(ip(\"10.{}.0.0/16\")) && context.time < datetime(\"2030-01-01\") }};\n",
                i % 256
            ),
            _ => format!(
                "permit (principal in Gateway::Group::\"readers-{i}\", action in Action::\"read\", resource in Api::Manager::\"m-{i}\");\n"
            ),
        };
    }
    std::fs::write(dir.path().join("generated.cedar"), text).unwrap();
    dir
}

/// Who asks what, for the decisions timed.
struct Asked {
    name: &'static str,
    user: &'static str,
    method: Method,
    path: ApiPath,
    found: Found,
    allowed: bool,
}

fn asked() -> [Asked; 2] {
    let vm = "/ovirt-engine/api/vms/23fac239-59b7-4a08-a4cd-054ae0d45513";
    [
        Asked {
            name: "carol starts a VM (reads resource.cluster)",
            user: "carol@internal",
            method: Method::POST,
            path: ApiPath::parse("", &format!("{vm}/start"), None).unwrap(),
            found: Found {
                cluster: Some("cluster-1".into()),
                ..Found::default()
            },
            allowed: true,
        },
        Asked {
            name: "robot-1 updates a VM (reads context.client_ip, context.time)",
            user: "robot-1@internal",
            method: Method::PUT,
            path: ApiPath::parse("", vm, None).unwrap(),
            found: Found::default(),
            allowed: false,
        },
    ]
}

fn decide(policies: &Policies, asked: &Asked) -> bool {
    let mapped = map_request(&asked.method, &asked.path);
    let facts = Facts {
        user: asked.user,
        manager: "sim",
        method: &asked.method,
        params: ContextParams::default(),
        client_ip: IpAddr::from([127, 0, 0, 1]),
        time: 1_800_000_000,
    };
    policies.decide(&mapped, &facts, asked.found.clone()).allowed
}

fn main() {
    let (seconds, connections) = seconds_and_connections();
    let large_dir = policy_dir(GENERATED);
    let started = Instant::now();
    let large = Policies::load(large_dir.path()).unwrap();
    println!(
        "loading and validating {} policies: {:.2} s",
        large.len(),
        started.elapsed().as_secs_f64()
    );
    let small = Policies::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap();
    let asked = asked();
    for asked in &asked {
        assert_eq!(decide(&large, asked), asked.allowed, "{}", asked.name);
    }
    assert!(decide(&small, &asked[0]));

    let mut criterion = Criterion::default().sample_size(50);
    let mut group = criterion.benchmark_group("decision");
    for asked in &asked {
        group.bench_function(format!("{} policies, {}", large.len(), asked.name), |b| {
            b.iter(|| black_box(decide(&large, asked)))
        });
    }
    group.bench_function(format!("{} policies, {}", small.len(), asked[0].name), |b| {
        b.iter(|| black_box(decide(&small, &asked[0])))
    });
    group.finish();

    for asked in &asked {
        let mut times: Vec<u128> = (0..100_000)
            .map(|_| {
                let start = Instant::now();
                black_box(decide(&large, asked));
                start.elapsed().as_nanos()
            })
            .collect();
        times.sort_unstable();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)] as f64 / 1000.0;
        println!(
            "{} policies, {}, 100,000 decisions: p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
            large.len(),
            asked.name,
            at(0.50),
            at(0.99),
            at(0.999),
            at(1.0)
        );
    }

    let runtime = runtime();
    let (sim, plain, guarded) = runtime.block_on(async {
        let sim = sim::start(SimOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let text = format!(
            "[listen]\naddress = \"127.0.0.1:0\"\nplain_http = true\n\n[rate_limit]\nenabled = false\n\n[log]\nlevel = \"warn\"\n\n\
             [[manager]]\nname = \"sim\"\nurl = \"{}\"\n",
            sim.api_url()
        );
        let with_policy = format!("{text}\n[policy]\ndir = \"{}\"\n", large_dir.path().display());
        let start = |text: String| async move {
            Gateway::start(Config::from_toml(&text, Path::new(".")).unwrap())
                .await
                .unwrap()
        };
        (sim, start(text).await, start(with_policy).await)
    });
    let id = first_vm_id(
        sim.addr(),
        &format!("Authorization: Bearer {}", token(sim.addr())),
    );
    let path = format!("/ovirt-engine/api/vms/{id}");
    println!("small entity GET ({path}) as admin, {connections} connections, {seconds} s each, wrk");
    let mut rates = Vec::new();
    for (name, gateway) in [
        ("gateway, no [policy]", &plain),
        ("gateway, 1,007 policies", &guarded),
    ] {
        let auth = format!("Authorization: Bearer {}", token(gateway.public_addr()));
        let result = wrk(
            gateway.public_addr(),
            &path,
            &[&auth, "Version: 4"],
            seconds,
            connections,
        );
        println!(
            "{name:<26} {:>10.0} requests/s, p50 {}, p99 {}, {:.1} MB/s",
            result.rps,
            result.p50,
            result.p99,
            result.bytes_per_second / 1e6
        );
        rates.push(result.rps);
    }
    println!(
        "policy stage: {:+.1} us of the saturated machine per request, {:.1}% of a whole request",
        1e6 * (1.0 / rates[1] - 1.0 / rates[0]),
        100.0 * (1.0 - rates[1] / rates[0])
    );
}
