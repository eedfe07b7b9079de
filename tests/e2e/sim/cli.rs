//! The `sim` command: it prints its URL first, and refuses bad options with a usage error.

use super::*;

const BIN: &str = env!("CARGO_BIN_EXE_ovirt-gateway");

/// `ovirt-gateway sim --listen 127.0.0.1:0` prints its API URL first, and serves there.
#[tokio::test]
async fn sim_command_prints_its_url_first() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(BIN)
        .args(["sim", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("a first line")
        .unwrap()
        .unwrap();
    let port = first
        .strip_prefix("ovirt-gateway sim listening on http://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix("/ovirt-engine/api"))
        .and_then(|port| port.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("{first}"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let health = Call::to(addr, "/ovirt-engine/services/health").send().await;
    assert_eq!(health.status, 200);
    child.kill().await.unwrap();
}

/// `--latency-ms 5-1` is refused with a usage error saying the range must be LOW-HIGH.
#[test]
fn sim_command_rejects_an_inverted_latency_range() {
    let output = std::process::Command::new(BIN)
        .args(["sim", "--latency-ms", "5-1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_contains(&stderr, "--latency-ms");
    assert_contains(&stderr, "`5-1`: the range must be LOW-HIGH");
}
