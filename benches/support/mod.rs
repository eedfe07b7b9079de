//! Shared by the benchmarks: arguments, the runtime, and `wrk` runs (a separate process, so load
//! generation does not share the async runtime with the server under test).

use std::net::SocketAddr;
use std::process::Command;

/// `cargo bench --bench X -- [seconds] [connections]`, defaults 10 and 32 (cargo's own `--bench`
/// flag is skipped).
pub fn seconds_and_connections() -> (u32, u32) {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let seconds = args.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let connections = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(32);
    (seconds, connections)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub struct WrkResult {
    pub rps: f64,
    /// Bytes per second received, from wrk's Transfer/sec.
    pub bytes_per_second: f64,
    pub p50: String,
    pub p99: String,
}

/// Runs wrk against `http://{addr}{path}` with the given request headers.
pub fn wrk(addr: SocketAddr, path: &str, headers: &[&str], seconds: u32, connections: u32) -> WrkResult {
    let threads = connections.min(2);
    let mut command = Command::new("wrk");
    command.args([
        "--latency",
        "-t",
        &threads.to_string(),
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{seconds}s"),
    ]);
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("wrk is installed (apt-get install -y wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
            .unwrap_or_else(|| panic!("no `{prefix}` in wrk output:\n{text}"))
    };
    assert!(!text.contains("Non-2xx"), "errors during the run:\n{text}");
    WrkResult {
        rps: field("Requests/sec:").parse().unwrap(),
        bytes_per_second: parse_size(&field("Transfer/sec:")),
        p50: field("50%"),
        p99: field("99%"),
    }
}

/// `105.23MB` → bytes (wrk's units are powers of 1024).
fn parse_size(text: &str) -> f64 {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => 1.0,
    };
    number.parse::<f64>().unwrap() * scale
}
