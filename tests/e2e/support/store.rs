//! A real redis-server on a loopback port, for the replicas' tests (tests/run.sh installs it),
//! and what replicas share: the store's key and the token signing key.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::eventually;

/// A redis-server of its own, without persistence, stopped when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// On a free loopback port.
    pub async fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        RedisServer::start_at(port).await
    }

    /// On `port` (again, after [`stop`](Self::stop): the replicas reconnect to the same address).
    pub async fn start_at(port: u16) -> RedisServer {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (tests/run.sh installs it)");
        let server = RedisServer {
            port,
            child: Some(child),
        };
        eventually(Duration::from_secs(10), async || server.answers().await).await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// A connection of the test's own, to look at what the replicas keep and to script them.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// The keys under `pattern` (`KEYS`: fine for a test's few).
    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut self.connection().await)
            .await
            .unwrap();
        keys.sort();
        keys
    }

    async fn answers(&self) -> bool {
        match redis::Client::open(self.url()) {
            Ok(client) => match client.get_multiplexed_async_connection().await {
                Ok(mut connection) => redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .is_ok(),
                Err(_) => false,
            },
            Err(_) => false,
        }
    }
}

/// Files every replica of a test shares: `shared.key` and the token signing key.
pub struct ReplicaKeys {
    pub dir: tempfile::TempDir,
}

impl ReplicaKeys {
    pub fn new() -> ReplicaKeys {
        let dir = tempfile::tempdir().unwrap();
        std::fs::File::create(dir.path().join("shared.key"))
            .unwrap()
            .write_all(b"a key every replica of this test shares, 32+ bytes\n")
            .unwrap();
        let pkcs8 =
            ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        std::fs::write(dir.path().join("token.pem"), pem_of(pkcs8.as_ref())).unwrap();
        ReplicaKeys { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A PKCS#8 key in PEM.
pub fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}
