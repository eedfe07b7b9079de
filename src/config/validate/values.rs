//! The value parsers every section uses, each reporting a problem with its key path and falling
//! back to the default, so that validation goes on and reports every problem at once.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::config::file::FileSecret;
use crate::config::{ConfigError, Secret};

/// Collects problems while the whole file is checked.
pub(super) struct Problems(pub(super) Vec<ConfigError>);

impl Problems {
    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, message));
    }

    /// A duration such as `250ms`, `30s`, `5m` or `1h`; must be above zero.
    pub(super) fn duration(&mut self, path: &str, value: Option<&str>, default: Duration) -> Duration {
        let Some(text) = value else { return default };
        match parse_duration(text) {
            Ok(d) if d.is_zero() => {
                self.push(path, "must be greater than zero");
                default
            }
            Ok(d) => d,
            Err(message) => {
                self.push(path, message);
                default
            }
        }
    }

    /// A count in `1..=max`.
    pub(super) fn count(&mut self, path: &str, value: Option<u64>, default: u64, max: u64) -> u64 {
        match value {
            None => default,
            Some(0) => {
                self.push(path, "must be greater than zero");
                default
            }
            Some(v) if v > max => {
                self.push(path, format!("must be at most {max}"));
                default
            }
            Some(v) => v,
        }
    }

    pub(super) fn address(&mut self, path: &str, text: &str) -> Option<SocketAddr> {
        text.parse()
            .map_err(|_| {
                self.push(
                    path,
                    format!("`{text}` is not an IP address with a port, e.g. 0.0.0.0:8443"),
                )
            })
            .ok()
    }
}

pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30s"))?;
    let millis = match unit {
        "ms" => Some(number),
        "s" => number.checked_mul(1000),
        "m" => number.checked_mul(60_000),
        "h" => number.checked_mul(3_600_000),
        "" => {
            return Err(format!(
                "`{text}` has no unit; write e.g. {text}s (units: ms, s, m, h)"
            ));
        }
        _ => return Err(format!("`{text}` has an unknown unit; use ms, s, m or h")),
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long"))
}

pub(super) fn secret(problems: &mut Problems, path: &str, secret: FileSecret, base: &Path) -> Option<Secret> {
    match secret {
        FileSecret::Path(file)
        | FileSecret::Source(crate::config::file::FileSecretSource {
            file: Some(file),
            env: None,
        }) => Some(Secret::File(base.join(file))),
        FileSecret::Source(crate::config::file::FileSecretSource {
            file: None,
            env: Some(name),
        }) => {
            if name.is_empty() {
                problems.push(format!("{path}.env"), "must name an environment variable");
                return None;
            }
            Some(Secret::Env(name))
        }
        FileSecret::Source(_) => {
            problems.push(path, "give exactly one of `file` or `env`");
            None
        }
    }
}
