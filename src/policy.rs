//! Per-resource authorization: Cedar policies narrow what the Manager allows (docs/policies.md).
//!
//! The policy directory holds `*.cedar` files and an optional `entities.json` (groups and who is
//! in them), validated against the built-in schema (policies/ovirt.cedarschema, `model.rs`). Every
//! request is mapped to (principal, action, resource, context) by `mapping.rs` and decided here:
//! default deny, and every decision names the policies that determined it. Policy ids are the
//! `@id("...")` annotation when a policy has one, `file.cedar:LINE` otherwise.

pub mod attributes;
pub mod explain;
mod index;
pub mod mapping;
pub mod model;
mod uses;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicyId, PolicySet, Request, RestrictedExpression, ValidationMode, Validator,
};
use http::Method;

pub use attributes::{Asker, Found};
pub use mapping::Mapped;

use attributes::{Lookups, Reads};
use index::{Index, Placed};
use uses::{CONTEXT, ContextKeys};

use crate::config::{PolicyConfig, PolicyMode};
use crate::metrics::Metrics;

/// The file of groups and memberships in a policy directory.
/// The files groups and memberships may come from: Cedar's entity format, or a TOML table of
/// groups and users (one of them).
pub const ENTITIES_FILES: [&str; 2] = ["entities.json", "entities.toml"];

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

/// The policies in force, swapped whole when the directory changes, and the mode.
pub struct Enforcer {
    config: PolicyConfig,
    current: RwLock<Arc<Policies>>,
    /// The directory's files, their modification times and sizes when last loaded or tried.
    seen: RwLock<Vec<Stamp>>,
    lookups: Lookups,
    metrics: Arc<Metrics>,
}

impl Enforcer {
    pub fn load(config: &PolicyConfig, metrics: Arc<Metrics>) -> Result<Enforcer, Vec<Problem>> {
        let seen = snapshot(&config.dir);
        let policies = Policies::load(&config.dir)?;
        for warning in &policies.warnings {
            tracing::warn!(%warning, "policy warning");
        }
        Ok(Enforcer {
            config: config.clone(),
            current: RwLock::new(Arc::new(policies)),
            seen: RwLock::new(seen),
            lookups: Lookups::new(config.attribute_ttl),
            metrics,
        })
    }

    pub fn mode(&self) -> PolicyMode {
        self.config.mode
    }

    pub fn current(&self) -> Arc<Policies> {
        self.current.read().expect("not poisoned").clone()
    }

    /// Loads the directory again: a valid set replaces the current one at once, an invalid one
    /// is reported and the current one stays. Returns the number of policies now in force.
    pub fn reload(&self) -> Result<usize, Vec<Problem>> {
        *self.seen.write().expect("not poisoned") = snapshot(&self.config.dir);
        match Policies::load(&self.config.dir) {
            Ok(policies) => {
                let count = policies.len();
                for warning in &policies.warnings {
                    tracing::warn!(%warning, "policy warning");
                }
                *self.current.write().expect("not poisoned") = Arc::new(policies);
                self.metrics.policy_reloads_total.with_label_values(&["ok"]).inc();
                tracing::info!(policies = count, dir = %self.config.dir.display(), "policies reloaded");
                Ok(count)
            }
            Err(problems) => {
                self.metrics
                    .policy_reloads_total
                    .with_label_values(&["error"])
                    .inc();
                for problem in &problems {
                    tracing::error!(%problem, "policy reload refused; the previous policies stay in force");
                }
                Err(problems)
            }
        }
    }

    /// Reloads when a policy file or entities.json was added, removed or modified since the last
    /// load; returns whether it tried.
    pub fn reload_if_changed(&self) -> bool {
        if snapshot(&self.config.dir) == *self.seen.read().expect("not poisoned") {
            return false;
        }
        // Errors are logged and counted by reload.
        let _ = self.reload();
        true
    }

    /// Polls the directory every `policy.watch_interval` and reloads on a change.
    pub async fn watch(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.config.watch_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            // Validating a large set takes a while (a thousand policies: seconds); off the
            // runtime's workers.
            let this = self.clone();
            if tokio::task::spawn_blocking(move || this.reload_if_changed())
                .await
                .is_err()
            {
                tracing::error!("the policy reload task failed");
            }
        }
    }

    /// Decides a request with the policies in force (looking up the resource's attributes they
    /// read, when `asker` can), logs the decision at debug level with the policies that
    /// determined it, and counts it.
    pub async fn decide(&self, mapped: &Mapped, facts: &Facts<'_>, asker: Option<Asker<'_>>) -> Decision {
        let policies = self.current();
        let decision = match policies.decide_before_lookup(mapped, facts) {
            Outcome::Decided(decision) => decision,
            Outcome::NeedsAttributes(reads) => {
                let found = match asker {
                    Some(asker) => self.lookups.find(reads, mapped, &asker).await,
                    None => Found::default(),
                };
                policies.decide(mapped, facts, found)
            }
        };
        let mode = self.config.mode.label();
        let label = if decision.allowed { "allow" } else { "deny" };
        self.metrics
            .policy_decisions_total
            .with_label_values(&[label, mode])
            .inc();
        tracing::debug!(
            user = facts.user,
            action = %mapped.action,
            resource = mapped.kind.as_str(),
            decision = label,
            mode,
            policies = ?decision.policies,
            errors = ?decision.errors,
            "policy decision"
        );
        if !decision.allowed && self.config.mode == PolicyMode::Shadow {
            tracing::info!(
                user = facts.user,
                action = %mapped.action,
                resource = mapped.kind.as_str(),
                policies = ?decision.policies,
                "shadow mode: the policies would deny this request"
            );
        }
        decision
    }
}

/// A policy file as the watcher compares it: path, modification time and size (the size catches
/// a rewrite within a coarse timestamp's resolution).
type Stamp = (PathBuf, Option<SystemTime>, u64);

/// The policy files of a directory, sorted.
fn snapshot(dir: &Path) -> Vec<Stamp> {
    let mut files: Vec<Stamp> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "cedar")
                || p.file_name()
                    .is_some_and(|n| ENTITIES_FILES.iter().any(|f| n == *f))
        })
        .map(|p| {
            let metadata = std::fs::metadata(&p).ok();
            let modified = metadata.as_ref().and_then(|m| m.modified().ok());
            let size = metadata.map_or(0, |m| m.len());
            (p, modified, size)
        })
        .collect();
    files.sort();
    files
}

impl Policies {
    /// Reads and validates every `*.cedar` file and `entities.json` in `dir`; every problem is
    /// reported, with its file and line.
    pub fn load(dir: &Path) -> Result<Policies, Vec<Problem>> {
        let problem = |file: &Path, line, message: String| Problem {
            file: file.to_owned(),
            line,
            message,
        };
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
                .collect(),
            Err(e) => {
                return Err(vec![problem(
                    dir,
                    None,
                    format!("cannot read the directory: {e}"),
                )]);
            }
        };
        files.sort();
        let mut problems = Vec::new();
        let mut set = PolicySet::new();
        // Each file's text, by the file's index (validation errors point into it), and policy
        // id → (file index, line).
        let mut texts: Vec<String> = Vec::new();
        let mut places: HashMap<String, (usize, usize)> = HashMap::new();
        for (index, file) in files.iter().enumerate() {
            match std::fs::read_to_string(file) {
                Ok(text) => texts.push(text),
                Err(e) => {
                    texts.push(String::new());
                    problems.push(problem(file, None, format!("cannot read: {e}")));
                    continue;
                }
            }
            let text = &texts[index];
            let parsed = match PolicySet::from_str(text) {
                Ok(parsed) => parsed,
                Err(errors) => {
                    for error in errors.iter() {
                        problems.push(problem(file, error_line(error, text), message(error)));
                    }
                    continue;
                }
            };
            if parsed.templates().next().is_some() {
                problems.push(problem(
                    file,
                    None,
                    "templates (?principal, ?resource) are not supported".into(),
                ));
            }
            // In file order (ids are policy0, policy1, ...), to find each one's line.
            let mut policies: Vec<_> = parsed.policies().collect();
            policies.sort_by_key(|p| {
                let id = p.id().to_string();
                id.strip_prefix("policy")
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0)
            });
            let mut from = 0;
            let name = file
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            for policy in policies {
                let source = policy.to_string();
                let offset = text[from..].find(&source).map(|i| from + i);
                if let Some(offset) = offset {
                    from = offset + source.len();
                }
                let line = offset.map_or(1, |o| line_of(text, o));
                let id = policy
                    .annotation("id")
                    .map_or_else(|| format!("{name}:{line}"), str::to_owned);
                if let Some(&(other, other_line)) = places.get(&id) {
                    problems.push(problem(
                        file,
                        Some(line),
                        format!(
                            "policy id `{id}` is already used at {}:{other_line}",
                            files[other].display()
                        ),
                    ));
                    continue;
                }
                places.insert(id.clone(), (index, line));
                if let Err(e) = set.add(policy.new_id(PolicyId::new(&id))) {
                    problems.push(problem(file, Some(line), e.to_string()));
                }
            }
        }
        let mut warnings = Vec::new();
        let validation = Validator::new(model::schema().clone()).validate(&set, ValidationMode::Strict);
        let place = |id: &PolicyId, labels: Option<usize>| match places.get(&id.to_string()) {
            Some(&(file, line)) => (
                files[file].clone(),
                Some(labels.map_or(line, |o| line_of(&texts[file], o))),
            ),
            None => (dir.to_owned(), None),
        };
        for error in validation.validation_errors() {
            let (file, line) = place(error.policy_id(), first_offset(error));
            problems.push(problem(&file, line, message(error)));
        }
        for warning in validation.validation_warnings() {
            let (file, line) = place(warning.policy_id(), first_offset(warning));
            warnings.push(problem(&file, line, message(warning)));
        }
        let entity_files: Vec<PathBuf> = ENTITIES_FILES
            .iter()
            .map(|name| dir.join(name))
            .filter(|path| path.exists())
            .collect();
        let users = match entity_files.as_slice() {
            [] => HashMap::new(),
            [file] => load_entities(file).unwrap_or_else(|(line, message)| {
                problems.push(problem(file, line, message));
                HashMap::new()
            }),
            [_, second, ..] => {
                problems.push(problem(
                    second,
                    None,
                    format!(
                        "groups come from one file: keep {} or this one",
                        ENTITIES_FILES[0]
                    ),
                ));
                HashMap::new()
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let index = Index::new(&set);
        let locations = places
            .iter()
            .map(|(id, &(file, line))| (id.clone(), format!("{}:{line}", files[file].display())))
            .collect();
        Ok(Policies {
            index,
            set,
            locations,
            users,
            warnings,
            extension_values: ExtensionValues::default(),
        })
    }

    /// How many policies are loaded.
    pub fn len(&self) -> usize {
        self.set.policies().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides a mapped request, with what is known of the resource's attributes; default deny.
    pub fn decide(&self, mapped: &Mapped, facts: &Facts<'_>, found: Found) -> Decision {
        match self.judge(mapped, facts, Some(found)) {
            Outcome::Decided(decision) => decision,
            Outcome::NeedsAttributes(_) => unreachable!("the attributes were given"),
        }
    }

    /// Decides a mapped request without asking the Manager anything when the resource's
    /// attributes cannot change the outcome: when no policy that can apply reads one, when a
    /// forbid that reads none applies (a forbid wins), or when a permit that reads none applies
    /// and no forbid reads one. Otherwise says which attributes to look up.
    pub fn decide_before_lookup(&self, mapped: &Mapped, facts: &Facts<'_>) -> Outcome {
        self.judge(mapped, facts, None)
    }

    fn judge(&self, mapped: &Mapped, facts: &Facts<'_>, found: Option<Found>) -> Outcome {
        let manager = uid("Api::Manager", facts.manager);
        let resource = uid(&format!("Api::{}", mapped.kind), &mapped.id);
        let unknown;
        let chain = match self.users.get(facts.user) {
            Some(known) => known.as_slice(),
            None => {
                unknown = [user_entity(facts.user, Vec::new())];
                &unknown[..]
            }
        };
        let principal = chain[0].uid();
        let groups: Vec<EntityUid> = chain[1..].iter().map(Entity::uid).collect();
        let collection = mapped.collection.as_ref().map(|c| uid("Api::Collection", c));
        // The resource is in its Manager, its type's collection and every entity it was reached
        // below (`Api::DataCenter::"DC"` for `/datacenters/DC/storagedomains/SD`).
        let enclosing: Vec<EntityUid> = mapped
            .parents
            .iter()
            .map(|(kind, id)| uid(&format!("Api::{kind}"), id))
            .collect();
        let parents: Vec<EntityUid> = [Some(manager.clone()), collection.clone()]
            .into_iter()
            .flatten()
            .chain(enclosing.iter().cloned())
            .collect();
        let candidates = self.index.candidates(
            &mapped.action,
            &Placed {
                uid: &principal,
                ancestors: &groups,
            },
            &Placed {
                uid: &resource,
                ancestors: &parents,
            },
        );
        let actions = model::action_entities(&mapped.action);
        if candidates.set.is_empty() || actions.is_empty() {
            // Nothing can apply: default deny, without building the request.
            return Outcome::Decided(Decision {
                allowed: false,
                policies: Vec::new(),
                errors: Vec::new(),
            });
        }
        let request = Asked {
            mapped,
            facts,
            principal: &principal,
            chain,
            resource: &resource,
            parents: &parents,
            actions,
            manager: &manager,
            collection: collection.as_ref(),
        };
        let reads = candidates.uses.attributes.for_kind(mapped.kind.as_str());
        match (found, &candidates.without_attributes) {
            (Some(found), _) => {
                Outcome::Decided(self.evaluate(&request, &candidates.set, candidates.uses, found))
            }
            (None, Some((plain, plain_uses))) if reads.any() => {
                let decision = self.evaluate(&request, plain, *plain_uses, Found::default());
                let forbidden = !decision.allowed && !decision.policies.is_empty();
                let permitted = decision.allowed && !candidates.forbid_reads_attributes;
                if forbidden || permitted {
                    Outcome::Decided(decision)
                } else {
                    Outcome::NeedsAttributes(reads)
                }
            }
            (None, _) => {
                Outcome::Decided(self.evaluate(&request, &candidates.set, candidates.uses, Found::default()))
            }
        }
    }

    /// Cedar's decision on `set` (policies without their scopes) for a request.
    fn evaluate(&self, asked: &Asked<'_>, set: &PolicySet, uses: uses::Uses, found: Found) -> Decision {
        let deny = |error: String| Decision {
            allowed: false,
            policies: Vec::new(),
            errors: vec![error],
        };
        let Asked {
            mapped,
            facts,
            principal,
            chain,
            resource,
            parents,
            actions,
            manager,
            collection,
        } = *asked;
        // Cedar evaluates the candidates' conditions only (their scopes matched), with the
        // entities those conditions name (uses.rs). The user, the action and the resource carry
        // all their ancestors, which answers every `principal in`, `action in` and
        // `resource in`; the ancestors themselves are built only for a condition that tests
        // another membership.
        let mut entities = Vec::new();
        if uses.principal || uses.hierarchy {
            entities.push(chain[0].clone());
        }
        if uses.action || uses.hierarchy {
            entities.push(actions[0].clone());
        }
        if uses.resource || uses.hierarchy {
            let attrs = found.into_attrs().into_iter().collect();
            match Entity::new(resource.clone(), attrs, parents.iter().cloned().collect()) {
                Ok(entity) => entities.push(entity),
                Err(e) => return deny(e.to_string()),
            }
        }
        if uses.hierarchy {
            entities.extend(chain[1..].iter().cloned());
            entities.extend(actions[1..].iter().cloned());
            entities.push(Entity::new_no_attrs(manager.clone(), Default::default()));
            if let Some(collection) = collection {
                entities.push(Entity::new_no_attrs(collection.clone(), [manager.clone()].into()));
            }
            // Each enclosing entity is in its Manager, its collection and those above it.
            for (i, (kind, _)) in mapped.parents.iter().enumerate() {
                let mut above: std::collections::HashSet<EntityUid> = [manager.clone()].into();
                if let Some(name) = crate::api::collection_of(kind) {
                    let collection = uid("Api::Collection", name);
                    entities.push(Entity::new_no_attrs(collection.clone(), [manager.clone()].into()));
                    above.insert(collection);
                }
                above.extend(
                    parents[parents.len() - mapped.parents.len()..][..i]
                        .iter()
                        .cloned(),
                );
                entities.push(Entity::new_no_attrs(
                    parents[parents.len() - mapped.parents.len() + i].clone(),
                    above,
                ));
            }
        }
        // An entity named twice (a collection above two levels) is given once.
        let mut seen = std::collections::HashSet::new();
        entities.retain(|entity| seen.insert(entity.uid()));
        let entities = match Entities::from_entities(entities, None) {
            Ok(entities) => entities,
            Err(e) => return deny(e.to_string()),
        };
        let context = match context(mapped, facts, uses.context, &self.extension_values) {
            Ok(context) => context,
            Err(e) => return deny(e),
        };
        let action = actions[0].uid();
        // Built as the schema says (`context` and the tests check it), so not validated again
        // per request.
        let request = match Request::new(principal.clone(), action, resource.clone(), context, None) {
            Ok(request) => request,
            Err(e) => return deny(e.to_string()),
        };
        let response = authorizer().is_authorized(&request, set, &entities);
        Decision {
            allowed: response.decision() == CedarDecision::Allow,
            policies: response.diagnostics().reason().map(ToString::to_string).collect(),
            errors: response.diagnostics().errors().map(ToString::to_string).collect(),
        }
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

/// A decision that could be made, or the attributes it needs looked up first.
pub enum Outcome {
    Decided(Decision),
    NeedsAttributes(Reads),
}

/// A request in Cedar's terms, built once for one or two evaluations.
#[derive(Clone, Copy)]
struct Asked<'a> {
    mapped: &'a Mapped,
    facts: &'a Facts<'a>,
    principal: &'a EntityUid,
    chain: &'a [Entity],
    resource: &'a EntityUid,
    parents: &'a [EntityUid],
    actions: &'a [Entity],
    manager: &'a EntityUid,
    collection: Option<&'a EntityUid>,
}

/// Context values of Cedar's extension types, kept: Cedar parses the function's name (`ip`,
/// `datetime`) each time it builds one, a few microseconds. The current second, and recent
/// client addresses (forgotten all at once past `ADDRESSES`).
#[derive(Default)]
struct ExtensionValues {
    second: Mutex<Option<(u64, RestrictedExpression)>>,
    addresses: Mutex<HashMap<IpAddr, RestrictedExpression>>,
}

impl ExtensionValues {
    const ADDRESSES: usize = 4096;

    fn time(&self, seconds: u64) -> RestrictedExpression {
        let mut second = self.second.lock().unwrap_or_else(|p| p.into_inner());
        match &*second {
            Some((at, value)) if *at == seconds => value.clone(),
            _ => {
                let millis = i64::try_from(seconds).unwrap_or(i64::MAX / 1000) * 1000;
                let value = RestrictedExpression::new_datetime(crate::time::iso8601(millis));
                *second = Some((seconds, value.clone()));
                value
            }
        }
    }

    fn ip(&self, address: IpAddr) -> RestrictedExpression {
        let mut addresses = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(value) = addresses.get(&address) {
            return value.clone();
        }
        if addresses.len() >= Self::ADDRESSES {
            addresses.clear();
        }
        let value = RestrictedExpression::new_ip(address.to_string());
        addresses.insert(address, value.clone());
        value
    }
}

fn authorizer() -> &'static Authorizer {
    static AUTHORIZER: std::sync::OnceLock<Authorizer> = std::sync::OnceLock::new();
    AUTHORIZER.get_or_init(Authorizer::new)
}

/// An entity's uid; the schema's type names are parsed once.
fn uid(kind: &str, id: &str) -> EntityUid {
    static TYPES: std::sync::OnceLock<HashMap<String, EntityTypeName>> = std::sync::OnceLock::new();
    let types = TYPES.get_or_init(|| {
        model::schema()
            .entity_types()
            .map(|name| (name.to_string(), name.clone()))
            .collect()
    });
    let kind = match types.get(kind) {
        Some(name) => name.clone(),
        None => EntityTypeName::from_str(kind).expect("type names are the schema's"),
    };
    EntityUid::from_type_name_and_id(kind, EntityId::new(id))
}

/// A user entity with the attributes derived from its name (`alice@internal`: name `alice`,
/// profile `internal`).
fn user_entity(user: &str, parents: Vec<EntityUid>) -> Entity {
    let (name, profile) = user.rsplit_once('@').unwrap_or((user, ""));
    Entity::new(
        uid("Gateway::User", user),
        [
            (
                "name".to_owned(),
                RestrictedExpression::new_string(name.to_owned()),
            ),
            (
                "profile".to_owned(),
                RestrictedExpression::new_string(profile.to_owned()),
            ),
        ]
        .into(),
        parents.into_iter().collect(),
    )
    .expect("string attributes are valid")
}

/// Groups and memberships, from entities.json in Cedar's entity format or entities.toml; users'
/// `name` and `profile` attributes are derived from their id when left out. Returns each user
/// with every group above it, or the line (when known) and what is wrong.
fn load_entities(file: &Path) -> Result<HashMap<String, Vec<Entity>>, (Option<usize>, String)> {
    let text = std::fs::read_to_string(file).map_err(|e| (None, format!("cannot read: {e}")))?;
    let mut value = if file.extension().is_some_and(|x| x == "toml") {
        entities_from_toml(&text)?
    } else {
        serde_json::from_str(&text).map_err(|e| (Some(e.line()), e.to_string()))?
    };
    let Some(list) = value.as_array_mut() else {
        return Err((
            None,
            "expected a JSON array of entities (Cedar's entity format)".into(),
        ));
    };
    for entity in list.iter_mut() {
        let is_user = entity.pointer("/uid/type").and_then(|t| t.as_str()) == Some("Gateway::User");
        let id = entity
            .pointer("/uid/id")
            .and_then(|t| t.as_str())
            .map(str::to_owned);
        if let (true, Some(id), Some(object)) = (is_user, id, entity.as_object_mut()) {
            let (name, profile) = id.rsplit_once('@').unwrap_or((&id, ""));
            object.insert(
                "attrs".into(),
                serde_json::json!({ "name": name, "profile": profile }),
            );
        }
        if let Some(object) = entity.as_object_mut() {
            object.entry("parents").or_insert_with(|| serde_json::json!([]));
            object.entry("attrs").or_insert_with(|| serde_json::json!({}));
        }
    }
    let entities =
        Entities::from_json_value(value, Some(model::schema())).map_err(|e| (None, message(&e)))?;
    let mut users = HashMap::new();
    for entity in entities.iter() {
        let uid = entity.uid();
        if uid.type_name().to_string() != "Gateway::User" {
            continue;
        }
        let mut chain = vec![entity.clone()];
        for group in entities.ancestors(&uid).into_iter().flatten() {
            if let Some(group) = entities.get(group) {
                chain.push(group.clone());
            }
        }
        users.insert(uid.id().unescaped().to_owned(), chain);
    }
    Ok(users)
}

/// entities.toml: each group with the groups it is in, each user with its groups.
///
/// ```toml
/// [groups]
/// staff = []
/// ops = ["staff"]
///
/// [users]
/// "carol@internal" = ["ops"]
/// ```
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EntitiesToml {
    #[serde(default)]
    groups: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    users: std::collections::BTreeMap<String, Vec<String>>,
}

/// entities.toml in Cedar's entity format; a group used but not declared under `[groups]` is an
/// error (it is most likely misspelt).
fn entities_from_toml(text: &str) -> Result<serde_json::Value, (Option<usize>, String)> {
    let parsed: EntitiesToml = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|span| line_of(text, span.start));
        (line, e.message().to_owned())
    })?;
    let group = |id: &str| serde_json::json!({ "type": "Gateway::Group", "id": id });
    let mut entities = Vec::new();
    for (table, kind, members) in [
        ("groups", "Gateway::Group", &parsed.groups),
        ("users", "Gateway::User", &parsed.users),
    ] {
        for (id, parents) in members {
            if let Some(unknown) = parents.iter().find(|g| !parsed.groups.contains_key(*g)) {
                return Err((
                    None,
                    format!("{table}.\"{id}\": group `{unknown}` is not declared under [groups]"),
                ));
            }
            entities.push(serde_json::json!({
                "uid": { "type": kind, "id": id },
                "parents": parents.iter().map(|g| group(g)).collect::<Vec<_>>(),
            }));
        }
    }
    Ok(serde_json::Value::Array(entities))
}

/// The request's context record (RequestContext in the schema), with the attributes `keys`
/// names: those the policies that can apply read.
fn context(
    mapped: &Mapped,
    facts: &Facts<'_>,
    keys: ContextKeys,
    extension_values: &ExtensionValues,
) -> Result<Context, String> {
    let params = &facts.params;
    let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
    let value = |key: &str| match key {
        "method" => string(facts.method.as_str()),
        "manager" => string(facts.manager),
        "subcollections" => RestrictedExpression::new_set(mapped.subcollections.iter().map(|s| string(s))),
        "verb" => string(&mapped.verb),
        "search" => string(&params.search),
        "follow" => RestrictedExpression::new_set(params.follow.iter().map(|s| string(s))),
        "filter" => RestrictedExpression::new_bool(params.filter),
        "all_content" => RestrictedExpression::new_bool(params.all_content),
        "client_ip" => extension_values.ip(facts.client_ip),
        "time" => extension_values.time(facts.time),
        _ => unreachable!("CONTEXT names the schema's context attributes"),
    };
    Context::from_pairs(
        CONTEXT
            .iter()
            .filter(|key| keys.contains(key))
            .map(|key| ((*key).to_owned(), value(key))),
    )
    .map_err(|e| e.to_string())
}

/// The line (from 1) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Where a diagnostic points, as a byte offset into its source.
fn first_offset(diagnostic: &dyn miette::Diagnostic) -> Option<usize> {
    diagnostic.labels()?.next().map(|label| label.offset())
}

fn error_line(error: &dyn miette::Diagnostic, text: &str) -> Option<usize> {
    first_offset(error).map(|offset| line_of(text, offset))
}

/// A diagnostic's message and, when it has one, its help.
fn message(diagnostic: &dyn miette::Diagnostic) -> String {
    match diagnostic.help() {
        Some(help) => format!("{diagnostic}; {help}"),
        None => diagnostic.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::path::ApiPath;

    fn shipped() -> Policies {
        let mut policies = Policies::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap();
        // An auditor, who is not among the simulator's users.
        let auditors = Entity::new_no_attrs(uid("Gateway::Group", "auditors"), Default::default());
        let dave = user_entity("dave@internal", vec![auditors.uid()]);
        policies
            .users
            .insert("dave@internal".into(), vec![dave, auditors]);
        policies
    }

    fn facts<'a>(user: &'a str, method: &'a Method, path: &ApiPath) -> Facts<'a> {
        let headers = http::HeaderMap::new();
        Facts {
            user,
            manager: "east",
            method,
            params: ContextParams::of(&crate::api::params::EngineParams::new(path, &headers)),
            client_ip: IpAddr::from([10, 1, 2, 3]),
            time: 1_800_000_000,
        }
    }

    /// The decision and its policies for a request on `/ovirt-engine/api{path}`.
    fn decide(
        policies: &Policies,
        user: &str,
        method: &str,
        path: &str,
        found: Found,
    ) -> (bool, Vec<String>) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let full = format!("/ovirt-engine/api{path}");
        let (path, query) = full
            .split_once('?')
            .map_or((full.as_str(), None), |(p, q)| (p, Some(q)));
        let path = ApiPath::parse("", path, query).unwrap();
        let mapped = mapping::map(&method, &path);
        let decision = policies.decide(&mapped, &facts(user, &method, &path), found);
        assert!(decision.errors.is_empty(), "{:?}", decision.errors);
        (decision.allowed, decision.policies)
    }

    fn in_cluster(name: &str) -> Found {
        Found {
            cluster: Some(name.into()),
            ..Found::default()
        }
    }

    /// Every action group against the shipped examples: who may do what, and which policy says so.
    #[test]
    fn shipped_decisions() {
        let policies = shipped();
        let none = Found::default;
        // (user, method, path, the resource's attributes, allowed, determining policies)
        type Case = (
            &'static str,
            &'static str,
            &'static str,
            Found,
            bool,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            // admins: everything but unknown paths; nobody removes storage domains.
            ("admin@internal", "GET", "/vms", none(), true, &["admins"]),
            ("admin@internal", "POST", "/vms", none(), true, &["admins"]),
            (
                "admin@internal",
                "POST",
                "/hosts/1/fence",
                none(),
                true,
                &["admins"],
            ),
            (
                "admin@internal",
                "POST",
                "/vms/1/start",
                none(),
                true,
                &["admins"],
            ),
            (
                "admin@internal",
                "DELETE",
                "/storagedomains/1",
                none(),
                false,
                &["nobody-removes-storage-domains"],
            ),
            ("admin@internal", "DELETE", "/disks/1", none(), true, &["admins"]),
            // Sub-resources are the entity acted on: detaching a storage domain is removing one
            // from its data center; removing a disk of a storage domain is no storage domain's.
            (
                "admin@internal",
                "DELETE",
                "/datacenters/1/storagedomains/2",
                none(),
                false,
                &["nobody-removes-storage-domains"],
            ),
            (
                "admin@internal",
                "DELETE",
                "/storagedomains/2/disks/3",
                none(),
                true,
                &["admins"],
            ),
            ("admin@internal", "GET", "/frobs", none(), false, &[]),
            ("admin@internal", "PATCH", "/vms/1", none(), false, &[]),
            // auditors: read only.
            ("dave@internal", "GET", "", none(), true, &["auditors-read"]),
            (
                "dave@internal",
                "GET",
                "/vms/1/nics/2",
                none(),
                true,
                &["auditors-read"],
            ),
            (
                "dave@internal",
                "GET",
                "/events?search=severity%3Derror",
                none(),
                true,
                &["auditors-read"],
            ),
            ("dave@internal", "POST", "/vms/1/start", none(), false, &[]),
            ("dave@internal", "PUT", "/vms/1", none(), false, &[]),
            (
                "dave@internal",
                "POST",
                "/reloadconfigurations",
                none(),
                false,
                &[],
            ),
            // ops: read; operate the VMs of cluster-1 only; no writes.
            ("carol@internal", "GET", "/hosts", none(), true, &["ops-read"]),
            (
                "carol@internal",
                "POST",
                "/vms/1/start",
                in_cluster("cluster-1"),
                true,
                &["ops-operate-cluster-1"],
            ),
            (
                "carol@internal",
                "POST",
                "/vms/1/migrate",
                in_cluster("cluster-1"),
                true,
                &["ops-operate-cluster-1"],
            ),
            (
                "carol@internal",
                "POST",
                "/vms/1/start",
                in_cluster("cluster-0"),
                false,
                &[],
            ),
            ("carol@internal", "POST", "/vms/1/start", none(), false, &[]),
            (
                "carol@internal",
                "POST",
                "/hosts/1/deactivate",
                none(),
                false,
                &[],
            ),
            (
                "carol@internal",
                "DELETE",
                "/vms/1",
                in_cluster("cluster-1"),
                false,
                &[],
            ),
            (
                "carol@internal",
                "POST",
                "/vms/1/clone",
                in_cluster("cluster-1"),
                false,
                &[],
            ),
            // users: the root and VMs; operate VMs; nothing else.
            ("alice@internal", "GET", "", none(), true, &["users-read-vms"]),
            ("alice@internal", "GET", "/vms", none(), true, &["users-read-vms"]),
            (
                "alice@internal",
                "GET",
                "/vms/1/disk_attachments",
                none(),
                true,
                &["users-read-vms"],
            ),
            (
                "alice@internal",
                "POST",
                "/vms/1/shutdown",
                none(),
                true,
                &["users-operate-vms"],
            ),
            (
                "bob@internal",
                "POST",
                "/vms/1/nics/2/deactivate",
                none(),
                true,
                &["users-operate-vms"],
            ),
            ("alice@internal", "GET", "/hosts", none(), false, &[]),
            ("alice@internal", "POST", "/vms", none(), false, &[]),
            ("alice@internal", "DELETE", "/vms/1", none(), false, &[]),
            (
                "alice@internal",
                "POST",
                "/hosts/1/deactivate",
                none(),
                false,
                &[],
            ),
            // Nobody else: default deny.
            ("zed@internal", "GET", "", none(), false, &[]),
        ];
        for (user, method, path, found, allowed, determined) in cases {
            let (decision, ids) = decide(&policies, user, method, path, found);
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            assert_eq!(
                (decision, ids.as_slice()),
                (allowed, determined),
                "{user} {method} {path}"
            );
        }
    }

    /// Requests are built without validation per decision: every kind conforms to the schema.
    #[test]
    fn requests_conform_to_the_schema() {
        for (method, path) in [
            (Method::GET, "/ovirt-engine/api"),
            (
                Method::GET,
                "/ovirt-engine/api/vms?search=a&follow=nics&filter=true",
            ),
            (Method::POST, "/ovirt-engine/api/vms/1/nics/2/deactivate"),
            (Method::PATCH, "/ovirt-engine/webadmin"),
        ] {
            let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
            let path = ApiPath::parse("", path, query).unwrap();
            let mapped = mapping::map(&method, &path);
            let facts = facts("alice@internal", &method, &path);
            let request = Request::new(
                uid("Gateway::User", facts.user),
                uid("Action", &mapped.action),
                uid(&format!("Api::{}", mapped.kind), &mapped.id),
                context(&mapped, &facts, ContextKeys::ALL, &ExtensionValues::default()).unwrap(),
                Some(model::schema()),
            );
            assert!(request.is_ok(), "{method} {path:?}: {request:?}");
        }
    }

    /// Context attributes reach policies: method, manager, sub-collections, verb, search,
    /// filter (header or parameter), client address and time.
    #[test]
    fn context_reaches_policies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("context.cedar"),
            r#"permit (principal, action, resource)
               when {
                 context.method == "GET" && context.manager == "east" &&
                 context.subcollections.contains("nics") && context.verb == "" &&
                 context.search == "name=a b" && context.filter && !context.all_content &&
                 context.client_ip.isInRange(ip("10.0.0.0/8")) &&
                 context.time > datetime("2026-01-01")
               };"#,
        )
        .unwrap();
        let policies = Policies::load(dir.path()).unwrap();
        let query = "search=name%3Da+b&filter=true";
        let allowed = |path: &str| decide(&policies, "u@p", "GET", path, Found::default()).0;
        assert!(allowed(&format!("/vms/1/nics?{query}")));
        assert!(!allowed(&format!("/vms/1/disks?{query}")));
        assert!(!allowed("/vms/1/nics?search=name%3Da+b"));
        // filter as the engine reads it: any true spelling, the query over the matrix.
        assert!(allowed("/vms/1/nics;filter=yes?search=name%3Da+b"));
        assert!(allowed("/vms/1/nics?search=name%3Da+b&filter"));
        assert!(!allowed("/vms/1/nics;filter=true?search=name%3Da+b&filter=0"));
    }

    /// Kept extension values follow the clock and the client; the addresses kept are bounded.
    #[test]
    fn extension_values_are_current() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("t.cedar"),
            r#"permit (principal, action, resource)
               when { context.time >= datetime("2027-01-15T08:00:00Z") && context.client_ip == ip("10.1.2.3") };"#,
        )
        .unwrap();
        let policies = Policies::load(dir.path()).unwrap();
        let method = Method::GET;
        let path = ApiPath::parse("", "/ovirt-engine/api/vms", None).unwrap();
        let mapped = mapping::map(&method, &path);
        let allowed = |time: u64, client: [u8; 4]| {
            let facts = Facts {
                time,
                client_ip: IpAddr::from(client),
                ..facts("u@p", &method, &path)
            };
            policies.decide(&mapped, &facts, Found::default()).allowed
        };
        assert!(!allowed(1_799_999_999, [10, 1, 2, 3]));
        assert!(allowed(1_800_000_000, [10, 1, 2, 3]));
        assert!(!allowed(1_800_000_000, [10, 1, 2, 4]));
        assert!(!allowed(1_799_999_999, [10, 1, 2, 3]));
        let values = ExtensionValues::default();
        for i in 0..=ExtensionValues::ADDRESSES as u32 {
            values.ip(IpAddr::from(i.to_be_bytes()));
        }
        assert!(values.addresses.lock().unwrap().len() <= ExtensionValues::ADDRESSES);
    }

    /// Memberships decide the same whether the request carries only its own entities (with
    /// their ancestors) or, for a condition about other entities, the whole hierarchy.
    /// entities.json and entities.toml say the same.
    #[test]
    fn memberships_in_scopes_and_conditions() {
        let json = r#"[
              { "uid": { "type": "Gateway::Group", "id": "staff" } },
              { "uid": { "type": "Gateway::Group", "id": "ops" }, "parents": [{ "type": "Gateway::Group", "id": "staff" }] },
              { "uid": { "type": "Gateway::User", "id": "carol@internal" }, "parents": [{ "type": "Gateway::Group", "id": "ops" }] }
            ]"#;
        let toml = "[groups]\nstaff = []\nops = [\"staff\"]\n\n[users]\n\"carol@internal\" = [\"ops\"]\n";
        for (file, text) in ENTITIES_FILES.into_iter().zip([json, toml]) {
            memberships(file, text);
        }
    }

    fn memberships(file: &str, entities: &str) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file), entities).unwrap();
        std::fs::write(
            dir.path().join("m.cedar"),
            r#"permit (principal in Gateway::Group::"staff", action == Action::"get", resource is Api::Vm in Api::Manager::"east");
               permit (principal, action, resource is Api::Host) when { principal in Gateway::Group::"staff" && action in Action::"read" };
               permit (principal, action == Action::"list", resource) when { Gateway::Group::"ops" in Gateway::Group::"staff" };
               permit (principal, action == Action::"start", resource) when { Api::Collection::"vms" in Api::Manager::"east" };
               forbid (principal, action == Action::"stop", resource) when { !(Api::Collection::"vms" in Api::Manager::"east") };"#,
        )
        .unwrap();
        let policies = Policies::load(dir.path()).unwrap();
        let decide =
            |user: &str, method: &str, path: &str| decide(&policies, user, method, path, Found::default());
        assert_eq!(
            decide("carol@internal", "GET", "/vms/1"),
            (true, vec!["m.cedar:1".to_owned()])
        );
        assert_eq!(
            decide("carol@internal", "GET", "/hosts/1"),
            (true, vec!["m.cedar:2".to_owned()])
        );
        assert_eq!(
            decide("carol@internal", "GET", "/vms"),
            (true, vec!["m.cedar:3".to_owned()])
        );
        assert_eq!(
            decide("carol@internal", "POST", "/vms/1/start"),
            (true, vec!["m.cedar:4".to_owned()])
        );
        assert!(!decide("carol@internal", "POST", "/vms/1/stop").0);
        assert!(!decide("dave@internal", "GET", "/vms/1").0);
        assert!(!decide("dave@internal", "GET", "/hosts/1").0);
    }

    fn problems(files: &[(&str, &str)]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Policies::load(dir.path())
            .err()
            .unwrap()
            .iter()
            .map(|p| {
                let file = p.file.file_name().unwrap().to_string_lossy().into_owned();
                format!("{file}:{}: {}", p.line.unwrap_or(0), p.message)
            })
            .collect()
    }

    /// Syntax and schema errors name the file and the line.
    #[test]
    fn errors_name_file_and_line() {
        let syntax = problems(&[(
            "a.cedar",
            "// one\npermit (principal, action, resource);\npermit (principal action, resource);\n",
        )]);
        assert_eq!(syntax.len(), 1, "{syntax:?}");
        assert!(syntax[0].starts_with("a.cedar:3: "), "{syntax:?}");
        let schema = problems(&[(
            "b.cedar",
            "permit (principal, action, resource);\n\npermit (principal, action, resource is Api::Vm)\n  when { resource.colour == \"red\" };\n",
        )]);
        assert_eq!(schema.len(), 1, "{schema:?}");
        assert!(schema[0].starts_with("b.cedar:4: "), "{schema:?}");
        assert!(schema[0].contains("colour"), "{schema:?}");
        let unknown_type = problems(&[(
            "c.cedar",
            "permit (principal in Group::\"x\", action, resource);\n",
        )]);
        assert!(unknown_type[0].starts_with("c.cedar:1: "), "{unknown_type:?}");
    }

    /// Policy ids are unique across files; entities.json is checked against the schema.
    #[test]
    fn duplicate_ids_and_bad_entities() {
        let duplicate = problems(&[
            ("a.cedar", "@id(\"x\")\npermit (principal, action, resource);\n"),
            ("b.cedar", "\n@id(\"x\")\npermit (principal, action, resource);\n"),
        ]);
        assert_eq!(duplicate.len(), 1, "{duplicate:?}");
        assert!(
            duplicate[0].starts_with("b.cedar:2: policy id `x` is already used at "),
            "{duplicate:?}"
        );
        let entities = problems(&[
            ("a.cedar", "permit (principal, action, resource);\n"),
            (
                "entities.json",
                r#"[{"uid": {"type": "Gateway::User", "id": "a@b"}, "parents": [{"type": "Gateway::Team", "id": "t"}]}]"#,
            ),
        ]);
        assert_eq!(entities.len(), 1, "{entities:?}");
        assert!(entities[0].starts_with("entities.json:0: "), "{entities:?}");
        let json = problems(&[("entities.json", "[\n{]")]);
        assert!(json[0].starts_with("entities.json:2: "), "{json:?}");
        let toml = problems(&[(
            "entities.toml",
            "[groups]\nops = []\n\n[users]\n\"a@b\" = [\"ops\"\n",
        )]);
        assert!(toml[0].starts_with("entities.toml:5: "), "{toml:?}");
        assert_eq!(
            problems(&[(
                "entities.toml",
                "[groups]\nops = []\n[users]\n\"a@b\" = [\"opz\"]\n"
            )]),
            ["entities.toml:0: users.\"a@b\": group `opz` is not declared under [groups]"]
        );
        let unknown = problems(&[("entities.toml", "[teams]\nops = []\n")]);
        assert!(
            unknown[0].starts_with("entities.toml:1: unknown field `teams`"),
            "{unknown:?}"
        );
        assert_eq!(
            problems(&[("entities.json", "[]"), ("entities.toml", "")]),
            ["entities.toml:0: groups come from one file: keep entities.json or this one"]
        );
    }

    /// The watcher reloads when a file is added, changed or removed, and only then.
    #[test]
    fn changes_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.cedar"),
            "permit (principal, action, resource);\n",
        )
        .unwrap();
        let config = PolicyConfig {
            dir: dir.path().to_owned(),
            mode: PolicyMode::Enforce,
            watch_interval: std::time::Duration::from_secs(1),
            attribute_ttl: std::time::Duration::from_secs(1),
        };
        let enforcer = Enforcer::load(&config, Arc::new(Metrics::new())).unwrap();
        assert!(!enforcer.reload_if_changed());
        std::fs::write(
            dir.path().join("b.cedar"),
            "forbid (principal, action, resource);\n",
        )
        .unwrap();
        assert!(enforcer.reload_if_changed());
        assert_eq!(enforcer.current().len(), 2);
        assert!(!enforcer.reload_if_changed());
        std::fs::write(dir.path().join("notes.txt"), "not a policy").unwrap();
        assert!(!enforcer.reload_if_changed());
        std::fs::write(
            dir.path().join("b.cedar"),
            "forbid (principal, action, resource) oops",
        )
        .unwrap();
        assert!(enforcer.reload_if_changed());
        assert_eq!(
            enforcer.current().len(),
            2,
            "an invalid change keeps the previous policies"
        );
        std::fs::remove_file(dir.path().join("b.cedar")).unwrap();
        assert!(enforcer.reload_if_changed());
        assert_eq!(enforcer.current().len(), 1);
    }

    /// The shipped policies and entities validate against the schema.
    #[test]
    fn shipped_policies_validate() {
        let policies = shipped();
        assert_eq!(policies.len(), 7);
        assert!(policies.warnings.is_empty(), "{:?}", policies.warnings);
        assert!(
            policies
                .text("admins")
                .unwrap()
                .contains("Gateway::Group::\"admins\"")
        );
    }
}
