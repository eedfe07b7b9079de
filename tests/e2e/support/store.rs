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
    /// Its working directory: a replica's full synchronisation writes an RDB file there, which
    /// any server started in the same directory would load.
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// On a free loopback port.
    pub async fn start() -> RedisServer {
        RedisServer::start_at(free_port()).await
    }

    /// On `port` (again, after [`stop`](Self::stop): the replicas reconnect to the same address).
    pub async fn start_at(port: u16) -> RedisServer {
        RedisServer::start_with(port, &[]).await
    }

    /// A replica of `master`, on a free port.
    pub async fn replica_of(master: &RedisServer) -> RedisServer {
        let port = free_port();
        let master = master.port.to_string();
        RedisServer::start_with(port, &["--replicaof", "127.0.0.1", &master]).await
    }

    async fn start_with(port: u16, more: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path())
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "yes"])
            .args(more)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (tests/run.sh installs it)");
        let mut server = RedisServer {
            port,
            child: Some(child),
            _dir: dir,
        };
        // Ours, not another test's that took the port first (then ours exited: the test fails
        // here rather than share a store).
        eventually(Duration::from_secs(10), async || {
            let exited = server
                .child
                .as_mut()
                .is_none_or(|child| !matches!(child.try_wait(), Ok(None)));
            assert!(!exited, "redis-server could not listen on port {port}");
            server.answers().await
        })
        .await;
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

    /// Whether this server's process answers at its port.
    async fn answers(&self) -> bool {
        let Some(pid) = self.child.as_ref().and_then(Child::id) else {
            return false;
        };
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
            return false;
        };
        let Ok(info) = redis::cmd("INFO")
            .arg("server")
            .query_async::<String>(&mut connection)
            .await
        else {
            return false;
        };
        info.lines().any(|line| line == format!("process_id:{pid}"))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real redis-sentinel monitoring `master` as `service` (quorum 1, a master down after
/// 500 ms, so that a test's failover takes a second or two), stopped when dropped.
pub struct RedisSentinel {
    pub port: u16,
    _dir: tempfile::TempDir,
    _child: Child,
}

impl RedisSentinel {
    pub async fn start(master: &RedisServer, service: &str) -> RedisSentinel {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        // Sentinel rewrites its configuration file as it learns: a file of its own.
        let config = dir.path().join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "bind 127.0.0.1\nport {port}\nsentinel monitor {service} 127.0.0.1 {} 1\n\
                 sentinel down-after-milliseconds {service} 500\nsentinel failover-timeout {service} 5000\n",
                master.port
            ),
        )
        .unwrap();
        let child = Command::new("redis-sentinel")
            .arg(&config)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-sentinel is installed (tests/run.sh installs it)");
        let sentinel = RedisSentinel {
            port,
            _dir: dir,
            _child: child,
        };
        eventually(Duration::from_secs(10), async || {
            sentinel.master(service).await.is_some()
        })
        .await;
        sentinel
    }

    /// The master's port the Sentinel names for `service`.
    pub async fn master(&self, service: &str) -> Option<u16> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).ok()?;
        let mut connection = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(service)
            .query_async::<Option<(String, u16)>>(&mut connection)
            .await
            .ok()?
            .map(|(_, port)| port)
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
        std::fs::write(dir.path().join("token.pem"), token_key_pem()).unwrap();
        ReplicaKeys { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A token signing key (Ed25519, PKCS#8 PEM), made now.
pub fn token_key_pem() -> String {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
        .unwrap()
        .serialize_pem()
}
