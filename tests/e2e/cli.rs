//! The binary: `check` on every shipped configuration and on broken ones; `serve` with signals.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_ovirt-gateway");

fn check(config: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(["check", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

/// Every configuration shipped in config/ passes `check`. The files are checked in a copy of
/// config/ whose tls/ folder holds material made now (private keys are never committed), next to
/// a copy of the shipped policies.
#[test]
fn shipped_configs_pass_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let pki = TestPki::new();
    pki.issue_server_cert("gateway");
    let tls = pki.path("tls");
    std::fs::create_dir(&tls).unwrap();
    std::fs::copy(pki.path("cert.pem"), tls.join("gateway.crt")).unwrap();
    std::fs::copy(pki.path("key.pem"), tls.join("gateway.key")).unwrap();
    std::fs::copy(pki.path("ca.pem"), tls.join("engine-ca.pem")).unwrap();
    let policies = pki.path("policies");
    std::fs::create_dir(&policies).unwrap();
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap() {
        let shipped = entry.unwrap().path();
        std::fs::copy(&shipped, policies.join(shipped.file_name().unwrap())).unwrap();
    }
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let shipped = entry.unwrap().path();
        if shipped.extension().is_some_and(|e| e == "toml") {
            let path = pki.path(shipped.file_name().unwrap().to_str().unwrap());
            std::fs::copy(&shipped, &path).unwrap();
            let output = check(&path);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(stdout.starts_with("OK: "), "{stdout}");
            assert!(stdout.contains(", 7 policies (enforce)"), "{stdout}");
            checked += 1;
        }
    }
    assert!(checked > 0, "no configuration in config/");
}

/// An unknown key fails `check` with exit 1, its key path and the nearest valid key; every
/// problem is listed.
#[test]
fn check_names_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    let text = "[listen]\naddress = \"127.0.0.1:0\"\nplain_http = true\nmax_body_byte = 5\n\n\
                [[manager]]\nname = \"m\"\nurl = \"engine/ovirt-engine/api\"\n";
    std::fs::write(&path, text).unwrap();
    let output = check(&path);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("listen.max_body_byte: unknown key; did you mean `max_body_bytes`?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("manager[0].url: relative URL without scheme"),
        "{stderr}"
    );
}

/// `check` loads the TLS material: a missing certificate file is reported with its key.
#[test]
fn check_loads_tls_material() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    let text = "[listen]\naddress = \"127.0.0.1:0\"\ntls_cert = \"missing.pem\"\ntls_key = \"missing-key.pem\"\n\n\
                [[manager]]\nname = \"m\"\nurl = \"https://e/ovirt-engine/api\"\nca_file = \"no-ca.pem\"\n";
    std::fs::write(&path, text).unwrap();
    let output = check(&path);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listen.tls_cert: cannot read"), "{stderr}");
    assert!(stderr.contains("manager[0].ca_file: cannot read"), "{stderr}");
}

/// `check` loads the token key: a key that is not Ed25519 PKCS#8 is reported with its key path,
/// without its content.
#[test]
fn check_loads_the_token_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(dir.path().join("token.key"), {
        // Not a key: a PEM block of junk, labelled at run time.
        let label = ["PRIVATE", "KEY"].join(" ");
        format!("-----BEGIN {label}-----\nU0VDUkVUS0VZ\n-----END {label}-----\n")
    })
    .unwrap();
    let text = "[listen]\naddress = \"127.0.0.1:0\"\nplain_http = true\n\n[auth]\ntoken_key = \"token.key\"\n\n\
                [[manager]]\nname = \"m\"\nurl = \"http://e/ovirt-engine/api\"\n";
    std::fs::write(&path, text).unwrap();
    let output = check(&path);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("auth.token_key: not an Ed25519 private key"),
        "{stderr}"
    );
    assert!(!stderr.contains("U0VDUkVUS0VZ"), "{stderr}");
}

/// `check` reads `[shared]`'s key without connecting to the store, and refuses one too short,
/// without quoting it.
#[test]
fn check_reads_the_shared_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(dir.path().join("shared.key"), "tooShortSecret\n").unwrap();
    std::fs::write(dir.path().join("token.pem"), token_key_pem()).unwrap();
    // Nobody listens at port 1: check must not try.
    let text = "[listen]\naddress = \"127.0.0.1:0\"\nplain_http = true\n\n[auth]\ntoken_key = \"token.pem\"\n\n\
                [shared]\nurl = \"redis://127.0.0.1:1/\"\nkey = \"shared.key\"\nreplicas = 2\n\n\
                [[manager]]\nname = \"m\"\nurl = \"http://e/ovirt-engine/api\"\n";
    std::fs::write(&path, text).unwrap();
    let output = check(&path);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("shared.key: holds 14 bytes, at least 32"),
        "{stderr}"
    );
    assert!(!stderr.contains("tooShortSecret"), "{stderr}");
    std::fs::write(
        dir.path().join("shared.key"),
        "a long enough key, shared by the replicas\n",
    )
    .unwrap();
    let output = check(&path);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `--help` explains each command.
#[test]
fn help_explains_commands() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("serve") && stdout.contains("check"), "{stdout}");
    let version = Command::new(BIN).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("ovirt-gateway "));
}

fn kill(signal: &str, pid: &str) {
    assert!(
        Command::new("kill")
            .args([signal, pid])
            .status()
            .unwrap()
            .success()
    );
}

/// `serve` logs JSON lines when asked, reloads the certificate, the policies and the rate limits
/// on SIGHUP and stops cleanly on SIGTERM.
#[tokio::test]
async fn serve_handles_sighup_and_sigterm() {
    let upstream = TestUpstream::start("engine").await;
    let pki = TestPki::new();
    pki.issue_server_cert("first");
    let path = pki.path("gw.toml");
    std::fs::create_dir(pki.path("policies")).unwrap();
    std::fs::write(
        pki.path("policies/all.cedar"),
        "permit (principal, action, resource);\n",
    )
    .unwrap();
    let config = GatewayConfig::new()
        .no_admin()
        .passthrough(false)
        .tls(Path::new("cert.pem"), Path::new("key.pem"))
        .listen("tls_key = { file = \"key.pem\" }")
        .set("log", "format = \"json\"")
        .policies(Path::new("policies"))
        .set("policy", "watch_interval = \"1h\"")
        .manager("engine", &upstream.url());
    std::fs::write(&path, config.text()).unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut wait_for = async |needle: &str| {
        tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains(needle) {
                    return line;
                }
            }
            panic!("the gateway exited before logging `{needle}`");
        })
        .await
        .unwrap_or_else(|_| panic!("no `{needle}` in the log"))
    };
    let listening: serde_json::Value = serde_json::from_str(&wait_for("gateway listening").await).unwrap();
    assert_eq!(listening["message"], "gateway listening");
    assert_eq!(listening["tls"], true);
    let pid = child.id().unwrap().to_string();
    kill("-HUP", &pid);
    wait_for("TLS certificate reloaded").await;
    let reloaded: serde_json::Value = serde_json::from_str(&wait_for("policies reloaded").await).unwrap();
    assert_eq!(reloaded["policies"], 1);
    wait_for("SIGHUP: rate limits reloaded").await;
    // A changed bound on the buckets waits for the next start, and says so.
    std::fs::write(&path, config.rate_limit("max_keys = 3").text()).unwrap();
    kill("-HUP", &pid);
    let later: serde_json::Value =
        serde_json::from_str(&wait_for("take effect at the next start").await).unwrap();
    assert_eq!(later["keys"], "[\"rate_limit.max_keys\"]");
    kill("-TERM", &pid);
    wait_for("stopped").await;
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

/// Text logs written to a pipe or a file carry no terminal colour codes, so that `key=value`
/// fields can be read by tools.
#[tokio::test]
async fn text_logs_are_plain_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    let config = GatewayConfig::new()
        .no_admin()
        .passthrough(false)
        .manager("engine", "http://127.0.0.1:9/ovirt-engine/api");
    std::fs::write(&path, config.text()).unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            assert!(!line.contains('\x1b'), "colour codes in {line:?}");
            if line.contains("gateway listening") {
                return line;
            }
        }
        panic!("the gateway exited before listening");
    })
    .await
    .unwrap();
    assert!(listening.contains(" address=127.0.0.1:"), "{listening}");
}

/// A configuration with `[policy]` on `policies` (written as given), two Managers (`/east`,
/// `/west`) and both merged at `/all`.
fn policy_config(dir: &Path, policies: &[(&str, &str)]) -> std::path::PathBuf {
    let policy_dir = dir.join("policies");
    std::fs::create_dir_all(&policy_dir).unwrap();
    for (name, text) in policies {
        std::fs::write(policy_dir.join(name), text).unwrap();
    }
    let path = dir.join("gw.toml");
    let config = GatewayConfig::new()
        .no_admin()
        .passthrough(false)
        .policies(Path::new("policies"))
        .manager_with(
            "east",
            "http://127.0.0.1:9/ovirt-engine/api",
            "prefix = \"/east\"",
        )
        .manager_with(
            "west",
            "http://127.0.0.1:9/ovirt-engine/api",
            "prefix = \"/west\"",
        )
        .section("[federation]\nprefix = \"/all\"\nmembers = [\"east\", \"west\"]\nhome = \"east\"");
    std::fs::write(&path, config.text()).unwrap();
    path
}

/// `check` validates every policy file and reports each error with its file and line, and
/// exits 1.
#[test]
fn check_reports_policy_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = policy_config(
        dir.path(),
        &[
            (
                "good.cedar",
                "permit (principal, action in Action::\"read\", resource);\n",
            ),
            (
                "typo.cedar",
                "// line 1\npermit (principal, action == Action::\"strat\", resource);\n",
            ),
            ("syntax.cedar", "\n\npermit (principal, action resource);\n"),
        ],
    );
    let output = check(&path);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("syntax.cedar:3: "), "{stderr}");
    assert!(stderr.contains("strat"), "{stderr}");
    assert!(!stderr.contains("good.cedar"), "{stderr}");
    // The typo is found once the syntax error is fixed (validation needs every file parsed).
    std::fs::write(dir.path().join("policies/syntax.cedar"), "").unwrap();
    let stderr = String::from_utf8_lossy(&check(&path).stderr).into_owned();
    assert!(stderr.contains("typo.cedar:2: "), "{stderr}");
}

/// `policy explain` prints the decision and the policies behind it, and exits 0 when allowed,
/// 1 when denied.
#[test]
fn policy_explain_names_the_deciding_policies() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let files: Vec<(String, String)> = std::fs::read_dir(&shipped)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let path = policy_config(dir.path(), &files);
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(["policy", "explain", "--config"])
            .arg(&path)
            .args(args)
            .output()
            .unwrap()
    };
    let explain = |args: &[&str]| {
        let output = run(args);
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let vm = "/east/ovirt-engine/api/vms/0b1c";
    let (code, out) = explain(&["--user", "alice@internal", "--method", "DELETE", "--path", vm]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("decision: DENY (mode enforce)\n"), "{out}");
    assert!(
        out.contains("principal: Gateway::User::\"alice@internal\" (in users)"),
        "{out}"
    );
    assert!(out.contains("action:    Action::\"remove\" (in write)"), "{out}");
    assert!(
        out.contains("resource:  Api::Vm::\"0b1c\" in Api::Collection::\"vms\""),
        "{out}"
    );
    assert!(out.contains("no policy permits it (default deny)"), "{out}");
    let (code, out) = explain(&[
        "--user",
        "admin@internal",
        "--method",
        "DELETE",
        "--path",
        "/east/ovirt-engine/api/storagedomains/1",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("forbidden by\n  nobody-removes-storage-domains ("),
        "{out}"
    );
    assert!(out.contains("storage.cedar:3)"), "{out}");
    // Detaching a storage domain from its data center acts on the storage domain; the chain shows.
    let (code, out) = explain(&[
        "--user",
        "admin@internal",
        "--method",
        "DELETE",
        "--path",
        "/east/ovirt-engine/api/datacenters/5/storagedomains/1",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("resource:  Api::StorageDomain::\"1\" in Api::Collection::\"storagedomains\"\n  below:   Api::DataCenter::\"5\"\n"),
        "{out}"
    );
    assert!(
        out.contains("forbidden by\n  nobody-removes-storage-domains ("),
        "{out}"
    );
    let start = format!("{vm}/start");
    let (code, out) = explain(&[
        "--user",
        "carol@internal",
        "--method",
        "POST",
        "--path",
        &start,
        "--attribute",
        "cluster=cluster-1",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("permitted by\n  ops-operate-cluster-1 ("), "{out}");
    assert!(out.contains("resource.cluster == \"cluster-1\""), "{out}");
    let (code, _) = explain(&["--user", "carol@internal", "--method", "POST", "--path", &start]);
    assert_eq!(code, Some(1));
    let (code, _) = explain(&["--user", "a@b", "--path", "/east/ovirt-engine/api/vms/%2e%2e"]);
    assert_eq!(code, Some(2));
    // In the merged view a request is decided for the member it reaches, named by --member.
    let merged = [
        "--user",
        "alice@internal",
        "--method",
        "DELETE",
        "--path",
        "/all/ovirt-engine/api/vms/0b1c",
    ];
    let (code, out) = explain(&[&merged[..], &["--member", "west"]].concat());
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("request:  alice@internal DELETE /all/ovirt-engine/api/vms/0b1c at Manager `west`"),
        "{out}"
    );
    let stderr = |args: &[&str]| {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let err = stderr(&merged);
    assert!(err.contains("name it with --member (one of east, west)"), "{err}");
    let err = stderr(&[&merged[..], &["--member", "north"]].concat());
    assert!(
        err.contains("`north` is not a member of the merged view"),
        "{err}"
    );
    let err = stderr(&["--user", "a@b", "--path", vm, "--member", "east"]);
    assert!(err.contains("--member is for paths of the merged view"), "{err}");
}
