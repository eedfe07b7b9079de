//! Gateway configurations built key by key: `GatewayConfig::new().manager("engine", &url)
//! .listen("max_body_bytes = 10").start().await`.

use std::path::Path;

use ovirt_gateway::{Config, Gateway, Running};

use super::capture_logs;

/// A gateway configuration: plain HTTP on an ephemeral port, an admin listener on another, and
/// Bearer pass-through on (the proxy tests send a token the gateway did not issue and check that
/// it reaches the test upstream); each setter adds or replaces one key of one table.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Tables in the order first written.
    tables: Vec<Table>,
    passthrough: bool,
    admin: bool,
    managers: Vec<String>,
    sections: Vec<String>,
}

/// One table: its name, its `key = value` lines, and whether it is written when it has no key
/// (a table whose presence turns something on, as `[cache]`).
#[derive(Debug, Clone)]
struct Table {
    name: String,
    lines: Vec<String>,
    always: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl GatewayConfig {
    pub fn new() -> GatewayConfig {
        GatewayConfig {
            tables: Vec::new(),
            passthrough: true,
            admin: true,
            managers: Vec::new(),
            sections: Vec::new(),
        }
        .listen("address = \"127.0.0.1:0\"")
        .listen("plain_http = true")
    }

    /// One `[[manager]]` table.
    pub fn manager(self, name: &str, url: &str) -> GatewayConfig {
        self.manager_with(name, url, "")
    }

    /// One `[[manager]]` table with more keys (`prefix = "/east"`).
    pub fn manager_with(mut self, name: &str, url: &str, extra: &str) -> GatewayConfig {
        self.managers.push(format!(
            "[[manager]]\nname = \"{name}\"\nurl = \"{url}\"\n{extra}\n"
        ));
        self
    }

    /// A key of `[listen]`.
    pub fn listen(self, line: &str) -> GatewayConfig {
        self.set("listen", line)
    }

    /// A key of `[admin]`.
    pub fn admin(self, line: &str) -> GatewayConfig {
        self.set("admin", line)
    }

    /// No admin listener (a configuration for the binary, as the shipped ones).
    pub fn no_admin(mut self) -> GatewayConfig {
        self.admin = false;
        self
    }

    /// A key of `[auth]`.
    pub fn auth(self, line: &str) -> GatewayConfig {
        self.set("auth", line)
    }

    /// A key of `[rate_limit]`.
    pub fn rate_limit(self, line: &str) -> GatewayConfig {
        self.set("rate_limit", line)
    }

    /// Bearer pass-through (on by default); off, users log in with Basic or the gateway's SSO.
    pub fn passthrough(mut self, on: bool) -> GatewayConfig {
        self.passthrough = on;
        self
    }

    /// TLS on the public listener with these PEM files, instead of plain HTTP.
    pub fn tls(mut self, cert: &Path, key: &Path) -> GatewayConfig {
        self.unset("listen", "plain_http");
        self.listen(&format!("tls_cert = \"{}\"", cert.display()))
            .listen(&format!("tls_key = \"{}\"", key.display()))
    }

    /// `[policy]` on the policies in `dir`.
    pub fn policies(self, dir: &Path) -> GatewayConfig {
        self.set("policy", &format!("dir = \"{}\"", dir.display()))
    }

    /// A table written even without keys (`table("cache")` turns the cache on).
    pub fn table(mut self, name: &str) -> GatewayConfig {
        let index = self.index(name);
        self.tables[index].always = true;
        self
    }

    /// Sets `key = value` (one line) in table `name`, replacing the key if it is set already.
    pub fn set(mut self, name: &str, line: &str) -> GatewayConfig {
        let key = key_of(line).to_owned();
        let index = self.index(name);
        let lines = &mut self.tables[index].lines;
        match lines.iter_mut().find(|l| key_of(l) == key) {
            Some(existing) => *existing = line.to_owned(),
            None => lines.push(line.to_owned()),
        }
        self
    }

    /// Whole tables as written (`[rate_limit.per_ip]\nrate = 1\nburst = 3`).
    pub fn section(mut self, text: &str) -> GatewayConfig {
        self.sections.push(text.to_owned());
        self
    }

    fn unset(&mut self, name: &str, key: &str) {
        let index = self.index(name);
        self.tables[index].lines.retain(|l| key_of(l) != key);
    }

    fn index(&mut self, name: &str) -> usize {
        match self.tables.iter().position(|table| table.name == name) {
            Some(index) => index,
            None => {
                self.tables.push(Table {
                    name: name.to_owned(),
                    lines: Vec::new(),
                    always: false,
                });
                self.tables.len() - 1
            }
        }
    }

    /// The TOML text.
    pub fn text(&self) -> String {
        let mut config = self.clone();
        if config.admin {
            config = config.admin("address = \"127.0.0.1:0\"");
        }
        if config.passthrough {
            config = config.auth("bearer_passthrough = true");
        }
        let mut text = String::new();
        for table in &config.tables {
            if table.lines.is_empty() && !table.always {
                continue;
            }
            text.push_str(&format!("[{}]\n", table.name));
            for line in &table.lines {
                text.push_str(line);
                text.push('\n');
            }
            text.push('\n');
        }
        for section in config.sections.iter().chain(&config.managers) {
            text.push_str(section);
            text.push_str("\n\n");
        }
        text
    }

    /// The configuration, paths relative to the working directory.
    pub fn config(&self) -> Config {
        let text = self.text();
        Config::from_toml(&text, Path::new(".")).unwrap_or_else(|e| panic!("config:\n{e}\n{text}"))
    }

    /// Starts a gateway with this configuration (logs captured).
    pub async fn start(&self) -> Running {
        capture_logs();
        Gateway::start(self.config()).await.unwrap()
    }
}

fn key_of(line: &str) -> &str {
    line.split('=').next().unwrap_or("").trim()
}
