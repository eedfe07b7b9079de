//! `ovirt-gateway demo`: the simulator and a gateway in front of it, in one process, configured by
//! config/demo.toml, so a newcomer sees the gateway work without a Manager.
//!
//! The demo writes what a client needs into its directory: `ca.pem` (the CA of the gateway's
//! certificate, for curl `--cacert` and the SDK's `ca_file`), `tls/gateway.crt`, `tls/gateway.key`
//! a copy of `demo.toml`, and the shipped policies in `policies/` (enforced).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::{Cidr, Config, FederationConfig, Partial};
use crate::sim::{self, RunningSim, SimOptions};
use crate::{Gateway, Running};

/// config/demo.toml, built into the binary so the demo runs from anywhere.
pub(crate) const DEMO_TOML: &str = include_str!("../config/demo.toml");

/// The shipped policies (policies/), written into the demo's `policies` directory.
const POLICIES: [(&str, &str); 7] = [
    ("admins.cedar", include_str!("../policies/admins.cedar")),
    ("auditors.cedar", include_str!("../policies/auditors.cedar")),
    ("ops.cedar", include_str!("../policies/ops.cedar")),
    ("users.cedar", include_str!("../policies/users.cedar")),
    ("storage.cedar", include_str!("../policies/storage.cedar")),
    ("entities.json", include_str!("../policies/entities.json")),
    ("ovirt.cedarschema", crate::policy::model::SCHEMA_TEXT),
];

pub struct DemoOptions {
    /// The gateway's public address (`listen.address` of demo.toml unless given).
    pub listen: Option<SocketAddr>,
    /// The admin listener's address (`admin.address` of demo.toml unless given).
    pub admin: Option<SocketAddr>,
    /// Where ca.pem, the listener's certificate and key, and demo.toml are written.
    pub dir: PathBuf,
    /// Publish the simulator under this public path prefix (`/east`) instead of at the root.
    pub prefix: Option<String>,
    /// Run a second simulator (`west`, its objects named `west-...`) and publish both merged at
    /// the root (docs/federation.md, "The merged view"), each also under its own prefix.
    pub merged: bool,
    /// With `shared`: this many gateways sharing the store at that URL (docs/replicas.md), the
    /// first at `listen`, the others at free loopback ports, for a balancer to spread clients
    /// over.
    pub replicas: usize,
    pub shared: Option<String>,
    /// The gateways read a PROXY protocol header from loopback peers (a balancer in TCP mode).
    pub proxy_protocol: bool,
}

pub struct Demo {
    pub sim: RunningSim,
    /// The second simulator of a merged demo.
    pub west: Option<RunningSim>,
    pub gateway: Running,
    /// The other gateways of a demo with replicas.
    pub replicas: Vec<Running>,
    pub ca_file: PathBuf,
    /// The demo's directory.
    pub dir: PathBuf,
    /// The public path prefix of the simulator (`""` when published at the root).
    pub prefix: String,
}

impl Demo {
    pub async fn start(options: DemoOptions) -> Result<Demo, String> {
        let sim = sim::start(SimOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..SimOptions::default()
        })
        .await?;
        let tls = options.dir.join("tls");
        std::fs::create_dir_all(&tls).map_err(|e| format!("cannot create {}: {e}", tls.display()))?;
        let issued = sim.pki().issue(std::net::IpAddr::from([127, 0, 0, 1]))?;
        let ca_file = options.dir.join("ca.pem");
        write(&ca_file, &sim.pki().ca_pem)?;
        write(&tls.join("gateway.crt"), &issued.cert_pem)?;
        write_private(&tls.join("gateway.key"), &issued.key_pem)?;
        write(&options.dir.join("demo.toml"), DEMO_TOML)?;
        let policies = options.dir.join("policies");
        std::fs::create_dir_all(&policies)
            .map_err(|e| format!("cannot create {}: {e}", policies.display()))?;
        for (name, text) in POLICIES {
            write(&policies.join(name), text)?;
        }
        let mut text = DEMO_TOML.to_owned();
        if let Some(url) = &options.shared {
            text.push_str(&shared_tables(&options.dir, url, options.replicas)?);
        } else if options.replicas > 1 {
            return Err("--replicas needs --shared: replicas share their state through a store".into());
        }
        let mut config = Config::from_toml(&text, &options.dir).map_err(|errors| {
            let lines: Vec<String> = errors.0.iter().map(|e| format!("demo.toml: {e}")).collect();
            lines.join("\n")
        })?;
        if let Some(listen) = options.listen {
            config.listen.address = listen;
        }
        if let (Some(admin), Some(config_admin)) = (options.admin, config.admin.as_mut()) {
            config_admin.address = admin;
        }
        if let Some(prefix) = &options.prefix {
            let valid = prefix.starts_with('/') && !prefix.ends_with('/') && !prefix.contains("//");
            if !valid {
                return Err(format!("--prefix `{prefix}`: write it as /name (e.g. /east)"));
            }
        }
        for manager in &mut config.managers {
            if let Some(prefix) = &options.prefix {
                manager.prefix = prefix.clone();
            }
            manager.authority = authority(&sim)?;
        }
        let west = if options.merged {
            Some(merge_a_second(&mut config).await?)
        } else {
            None
        };
        if options.proxy_protocol {
            config.listen.limits.proxy_protocol = vec![Cidr::parse("127.0.0.0/8").expect("a block")];
        }
        let mut replicas = Vec::new();
        for _ in 1..options.replicas.max(1) {
            let mut config = config.clone();
            config.listen.address = SocketAddr::from(([127, 0, 0, 1], 0));
            if let Some(admin) = config.admin.as_mut() {
                admin.address = SocketAddr::from(([127, 0, 0, 1], 0));
            }
            replicas.push(Gateway::start(config).await.map_err(|e| e.to_string())?);
        }
        let gateway = Gateway::start(config).await.map_err(|e| e.to_string())?;
        Ok(Demo {
            sim,
            west,
            gateway,
            replicas,
            ca_file,
            dir: options.dir,
            prefix: options.prefix.unwrap_or_default(),
        })
    }

    /// What the demo prints: where it listens, the users, and commands to copy.
    pub fn instructions(&self) -> String {
        let api = format!(
            "https://{}{}/ovirt-engine/api",
            self.gateway.public_addr(),
            self.prefix
        );
        let ca = self.ca_file.display();
        let metrics = self.gateway.admin_addr().map_or_else(
            || "(no admin listener)".to_owned(),
            |a| format!("http://{a}/metrics"),
        );
        let merged = match &self.west {
            Some(west) => format!(
                "\n  merged     two simulators, `east` and `west` (objects named west-...), in one API;\
                 \n             each under its own prefix too (/east, /west); name one with the header\
                 \n             `Federation-Manager: west` (docs/federation.md)\
                 \n  west       {} (direct, for comparison)",
                west.api_url()
            ),
            None => String::new(),
        };
        let replicas = if self.replicas.is_empty() {
            String::new()
        } else {
            let all: Vec<String> = std::iter::once(&self.gateway)
                .chain(&self.replicas)
                .map(|g| g.public_addr().to_string())
                .collect();
            format!(
                "\n  replicas   {} (sharing one store; put a balancer in front)",
                all.join(" ")
            )
        };
        format!(
            "ovirt-gateway demo: a simulated oVirt Manager behind the gateway\n\
             \n  API        {api}\
             \n  CA file    {ca}\
             \n  metrics    {metrics}\
             \n  simulator  {sim} (direct, for comparison){merged}{replicas}\
             \n\
             \n  users      admin@internal / admin    SuperUser, sees everything\
             \n             alice@internal / alice    UserRole on her VMs only\
             \n             bob@internal / bob        UserRole on his VMs only\
             \n             carol@internal / carol    group ops, PowerUserRole on cluster-1\
             \n\
             \ncurl:\
             \n  curl --cacert {ca} -u 'admin@internal:admin' '{api}/vms?search=status%3Dup&max=3'\
             \n\
             \npolicies (enforced; {dir}/policies, docs/policies.md): alice may start her VMs but not\
             \nremove them. With ID one of the VMs `curl --cacert {ca} -u alice@internal:alice {api}/vms` lists:\
             \n  curl --cacert {ca} -u alice@internal:alice -X POST -H 'Content-Type: application/xml' \\\
             \n      -d '<action/>' '{api}/vms/ID/start'                                  # 200\
             \n  curl --cacert {ca} -u alice@internal:alice -X DELETE '{api}/vms/ID'    # 403 from the gateway\
             \n  ovirt-gateway policy explain --config {dir}/demo.toml --user alice@internal \\\
             \n      --method DELETE --path {prefix}/ovirt-engine/api/vms/ID\
             \n\
             \ncache (docs/caching.md): GET answers are reused per user for 2 s (the root 10 s) and\
             \nevicted by writes; see the Cache-Status header:\
             \n  curl -si --cacert {ca} -u alice@internal:alice '{api}/vms' | grep -i cache-status\
             \n\
             \nPython SDK (pip install ovirt-engine-sdk-python):\
             \n  import ovirtsdk4 as sdk\
             \n  connection = sdk.Connection(url='{api}',\
             \n      username='alice@internal', password='alice', ca_file='{ca}')\
             \n  for vm in connection.system_service().vms_service().list():\
             \n      print(vm.name, vm.status)\
             \n  connection.close()\
             \n\
             \nCtrl-C stops the demo.\n",
            sim = self.sim.api_url(),
            dir = self.dir.display(),
            prefix = self.prefix,
        )
    }

    /// Stops the gateways (draining requests in flight), then the simulators.
    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        for replica in self.replicas {
            replica.shutdown().await;
        }
        self.sim.shutdown().await;
        if let Some(west) = self.west {
            west.shutdown().await;
        }
    }
}

/// `[auth]` and `[shared]` for replicas sharing the store at `url`: a token key and a store key
/// made now and written into `dir`.
fn shared_tables(dir: &Path, url: &str, replicas: usize) -> Result<String, String> {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let token_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(|e| e.to_string())?;
    write_private(&dir.join("token.pem"), &token_key.serialize_pem())?;
    let rng = ring::rand::SystemRandom::new();
    let mut key = [0u8; 48];
    rng.fill(&mut key).map_err(|e| e.to_string())?;
    write_private(
        &dir.join("shared.key"),
        &base64::engine::general_purpose::STANDARD.encode(key),
    )?;
    let url = toml::Value::String(url.to_owned());
    Ok(format!(
        "\n[auth]\ntoken_key = \"token.pem\"\n\n[shared]\nurl = {url}\nkey = \"shared.key\"\n\
         key_prefix = \"ovirt-gateway-demo:\"\nreplicas = {}\n",
        replicas.max(1)
    ))
}

/// The simulator's address, as a Manager's authority.
fn authority(sim: &RunningSim) -> Result<http::uri::Authority, String> {
    sim.addr()
        .to_string()
        .parse()
        .map_err(|e| format!("simulator address: {e}"))
}

/// A merged demo: the demo's simulator becomes `east` under /east, a second one (another seed,
/// objects named `west-...`) `west` under /west, and both are merged at the root.
async fn merge_a_second(config: &mut Config) -> Result<RunningSim, String> {
    let west = sim::start(SimOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        seed: 2,
        name_prefix: "west-".into(),
        ..SimOptions::default()
    })
    .await?;
    let mut second = config.managers[0].clone();
    config.managers[0].name = "east".into();
    config.managers[0].prefix = "/east".into();
    second.name = "west".into();
    second.prefix = "/west".into();
    second.authority = authority(&west)?;
    config.managers.push(second);
    config.federation = Some(FederationConfig {
        host: None,
        prefix: String::new(),
        members: vec!["east".into(), "west".into()],
        home: "east".into(),
        partial: Partial::Strict,
    });
    Ok(west)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
