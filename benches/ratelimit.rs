//! Rate-limit state under a flood of distinct client addresses (docs/rate-limiting.md): a million addresses,
//! each sending one request, then a million failed logins from a million addresses, through the
//! gateway's limiter with its default configuration (`max_keys` 100,000). Prints the process's
//! resident memory as the flood goes on, the keys held, and the cost of one decision, against
//! the same flood into an unbounded map of the same entries (the baseline: what memory would be
//! without the bound). Results go into docs/performance.md.
//!
//!     cargo bench --bench ratelimit

use std::collections::HashMap;
use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use ovirt_gateway::Config;
use ovirt_gateway::Metrics;
use ovirt_gateway::RateLimiter;
use tokio::time::Instant;

const FLOOD: u32 = 1_000_000;

/// Resident memory of this process, MiB (Linux).
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn address(i: u32) -> IpAddr {
    IpAddr::from((0x0a00_0000 + i).to_be_bytes())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let text = "[listen]\naddress = \"127.0.0.1:0\"\nplain_http = true\n\n\
                    [[manager]]\nname = \"m\"\nurl = \"http://127.0.0.1:1/ovirt-engine/api\"\n";
        let config = Config::from_toml(text, Path::new(".")).unwrap();
        let limits = config.rate_limit.expect("limits are on by default");
        let max_keys = limits.max_keys;
        let limiter = RateLimiter::new(limits, Arc::new(Metrics::new()));
        println!(
            "max_keys {max_keys}; resident memory at start {:.1} MiB",
            rss_mib()
        );

        let started = Instant::now();
        for i in 0..FLOOD {
            black_box(limiter.by_address(&address(i).to_string()).is_ok());
            if (i + 1) % 200_000 == 0 {
                println!("{:>9} addresses: {:.1} MiB resident", i + 1, rss_mib());
            }
        }
        let elapsed = started.elapsed();
        println!(
            "one decision: {:.0} ns mean over {FLOOD} distinct addresses",
            elapsed.as_nanos() as f64 / f64::from(FLOOD)
        );

        for i in 0..FLOOD {
            limiter.logins().failed("robot@internal", address(i), true);
            if (i + 1) % 200_000 == 0 {
                println!("{:>9} failed logins: {:.1} MiB resident", i + 1, rss_mib());
            }
        }

        // The baseline: the same entries (key text and an instant) in a map without a bound.
        let before = rss_mib();
        let mut unbounded: HashMap<String, Instant> = HashMap::new();
        let now = Instant::now();
        for i in 0..FLOOD {
            unbounded.insert(format!("ip {}", address(i)), now);
        }
        println!(
            "unbounded map of {} addresses: +{:.1} MiB resident",
            unbounded.len(),
            rss_mib() - before
        );
    });
}
