//! Per-resource authorization: Cedar policies narrow what the Manager allows (docs/policies.md).
//!
//! The policy directory holds `*.cedar` files and an optional `entities.json` or `entities.toml`
//! (groups and who is in them), validated against the built-in schema (policies/ovirt.cedarschema,
//! `model.rs`). Every request is mapped to (principal, action, resource, context) by `mapping.rs`
//! and decided by `decide.rs`: default deny, and every decision names the policies that determined
//! it. Policy ids are the `@id("...")` annotation when a policy has one, `file.cedar:LINE`
//! otherwise.
//!
//! - `load.rs`: reading and validating a directory, every problem with its file and line;
//! - `entities.rs`: groups and memberships in either format;
//! - `enforcer.rs`: the set in force, reloaded when the directory changes, and the decision's
//!   metrics and logs;
//! - `decide.rs`: a decision, and whether the resource's attributes must be looked up first;
//! - `index.rs` and `uses.rs`: which policies can apply, and what their conditions read;
//! - `extension_values.rs`: the context's `datetime` and `ip` values, built once.

pub(crate) mod attributes;
mod decide;
mod enforcer;
mod entities;
pub(crate) mod explain;
mod extension_values;
mod index;
mod load;
pub(crate) mod mapping;
pub(crate) mod model;
mod uses;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use cedar_policy::{Entity, PolicyId, PolicySet};
use http::Method;

pub(crate) use attributes::Asker;
pub use attributes::Found;
pub(crate) use decide::Outcome;
pub(crate) use enforcer::Enforcer;
pub(crate) use mapping::Mapped;

use extension_values::ExtensionValues;
use index::Index;

/// A problem in a policy directory, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// A loaded and validated policy directory.
pub struct Policies {
    set: PolicySet,
    /// The same policies by scope: what a decision evaluates.
    index: Index,
    /// Each user named in entities.json, with every group above it.
    users: HashMap<String, Vec<Entity>>,
    /// Where each policy is: `file.cedar:LINE`, by id.
    locations: HashMap<String, String>,
    /// Validator warnings (a policy that can never apply, confusable characters): logged, not fatal.
    pub warnings: Vec<Problem>,
    extension_values: ExtensionValues,
}

/// What the gateway knows about a request besides its mapping.
pub struct Facts<'a> {
    /// `alice@internal`.
    pub user: &'a str,
    /// The Manager's name in the configuration.
    pub manager: &'a str,
    pub method: &'a Method,
    /// The parameters the context carries, read as the engine reads them (src/api/params.rs).
    pub params: ContextParams,
    pub client_ip: IpAddr,
    /// Seconds since the Unix epoch.
    pub time: u64,
}

/// `filter`, `all_content`, `search` and `follow` of a request, as the engine reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextParams {
    /// The request asks for a filtered view (`filter` true in any spelling).
    pub filter: bool,
    pub all_content: bool,
    pub search: String,
    /// The link paths of `follow`, each with its names joined by dots.
    pub follow: Vec<String>,
}

impl ContextParams {
    pub fn of(params: &crate::api::params::EngineParams<'_>) -> ContextParams {
        ContextParams {
            filter: params.filter() == Some(true),
            all_content: params.all_content(),
            search: params.get("search").unwrap_or_default().into_owned(),
            follow: params.follow().iter().map(|path| path.join(".")).collect(),
        }
    }
}

/// An authorization decision and what made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The ids of the policies that determined it: the permits that allowed, or the forbids that
    /// denied; empty when nothing permitted (default deny).
    pub policies: Vec<String>,
    /// Policies that failed to evaluate (they are skipped, as Cedar does).
    pub errors: Vec<String>,
}

impl Policies {
    /// How many policies are loaded.
    pub fn len(&self) -> usize {
        self.set.policies().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A policy's text, for `policy explain`.
    pub fn text(&self, id: &str) -> Option<String> {
        self.set.policy(&PolicyId::new(id)).map(ToString::to_string)
    }

    /// Where a policy is (`dir/file.cedar:LINE`).
    pub fn location(&self, id: &str) -> Option<&str> {
        self.locations.get(id).map(String::as_str)
    }

    /// The groups a user is in, directly or not, as entities.json says.
    pub fn groups(&self, user: &str) -> Vec<String> {
        self.users
            .get(user)
            .map(|chain| {
                chain
                    .iter()
                    .skip(1)
                    .map(|g| g.uid().id().unescaped().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
