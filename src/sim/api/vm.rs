//! Writes on VMs: add, update, remove and the actions, with the engine's status codes and bodies
//! (docs/engine.md, section 4.3), each checked against the user's permits and the VM's status, and
//! recorded as an event and, for commands, a finished job.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use http::{Response, StatusCode};

use super::{
    Answer, Call, Failure, HISTORY, bad_request, conflict, empty, fault, forbidden, not_allowed, now_ms,
};
use crate::body::GatewayBody;
use crate::sim::generate::vm_props;
use crate::sim::input::{Node, parse_json, parse_xml};
use crate::sim::model::{BLANK_ID, Entity, Id, Inventory, Kind, Prop};
use crate::sim::repr::{Value, Writer};
use crate::sim::users::Permit;

impl Call<'_> {
    /// The request body as a tree, XML or JSON by Content-Type; a 400 when it does not parse.
    /// `usage` is the apidoc anchor the engine's fault names (`services/vms/methods/add`).
    fn input(&self, root: &str, usage: &str) -> Result<Node, Failure> {
        let json = self
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        let parsed = if json {
            parse_json(self.body, root)
        } else {
            parse_xml(self.body)
        };
        let node = parsed.map_err(|_| {
            fault(
                StatusCode::BAD_REQUEST,
                "Request syntactically incorrect.",
                format!(
                    "For correct usage, see: {}/ovirt-engine/apidoc#{usage}",
                    self.origin
                ),
            )
        })?;
        if node.name != root {
            return Err(fault(
                StatusCode::BAD_REQUEST,
                "Request syntactically incorrect.",
                format!("Expected a <{root}> element, found <{}>", node.name),
            ));
        }
        Ok(node)
    }

    /// A reference in a body (`<cluster id=".."/>` or `<cluster><name>..</name></cluster>`).
    fn reference(&self, inventory: &Inventory, node: &Node, kind: Kind) -> Result<Arc<Entity>, Failure> {
        let found = match (node.id(), node.text_of("name")) {
            (Some(id), _) => kind.parse_id(id).and_then(|id| inventory.get(kind, id)),
            (None, Some(name)) => inventory.by_name(kind, name),
            (None, None) => None,
        };
        found.ok_or_else(|| {
            let what = node
                .id()
                .map(|id| format!("id={id}"))
                .or_else(|| node.text_of("name").map(|n| format!("name={n}")))
                .unwrap_or_default();
            fault(
                StatusCode::NOT_FOUND,
                "Operation Failed",
                format!("Entity not found: {}: {what}", kind.info().singular),
            )
        })
    }

    /// `POST /vms`: 201 with the new VM and an absolute Location.
    pub(super) fn add_vm(&self) -> Answer {
        let node = self.input("vm", "services/vms/methods/add")?;
        let (Some(name), Some(cluster_node)) = (node.text_of("name"), node.child("cluster")) else {
            return Err(fault(
                StatusCode::BAD_REQUEST,
                "Incomplete parameters",
                "Vm [name, cluster] required for add",
            ));
        };
        let memory = match node.text_of("memory") {
            Some(text) => Some(
                text.parse::<i64>()
                    .map_err(|_| bad_request(format!("Invalid value for memory: '{text}'")))?,
            ),
            None => None,
        };
        let topology = cpu_topology(&node)?;
        let mut inventory = self.sim.inventory_mut();
        let cluster = self.reference(&inventory, cluster_node, Kind::Cluster)?;
        let template = match node.child("template") {
            Some(t) => self.reference(&inventory, t, Kind::Template)?,
            None => inventory.get(Kind::Template, BLANK_ID).ok_or(Failure::NotFound)?,
        };
        if !self
            .user
            .may(&inventory, Permit::CreateVm, Some(cluster.id), None)
        {
            return Err(forbidden());
        }
        if inventory.by_name(Kind::Vm, name).is_some() {
            return Err(conflict(
                "Cannot add VM. The VM name is already in use, please choose a unique name and try again.",
            ));
        }
        let id = self.sim.rng().uuid();
        let mut vm = Entity::new(Kind::Vm, id, name);
        vm.description = node.text_of("description").unwrap_or_default().to_owned();
        vm.comment = node.text_of("comment").unwrap_or_default().to_owned();
        vm.status = Some("down");
        vm.refs = vec![
            ("cluster", Kind::Cluster, cluster.id),
            ("template", Kind::Template, template.id),
        ];
        let template_memory = match template.prop("memory") {
            Some(Prop::Int(m)) => *m,
            _ => 1 << 30,
        };
        vm.props = vm_props(memory.unwrap_or(template_memory), now_ms(), None);
        set_topology(&mut vm, &topology);
        let data_center = cluster.reference("data_center");
        vm.related = placement(&inventory, data_center);
        inventory.insert(vm);
        let vm = inventory.get(Kind::Vm, id).ok_or(Failure::NotFound)?;
        drop(inventory);
        self.record(&format!("VM {name} was created by {}.", self.user.login), None);
        let mut response = self.object(&vm, StatusCode::CREATED);
        let location = format!("{}{}", self.origin, self.view.href(&vm));
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(LOCATION, value);
        }
        Ok(response)
    }

    /// `PUT /vms/ID`: name, description, comment, memory and CPU topology; 200 with the VM.
    pub(super) fn update_vm(&self, vm: &Entity) -> Answer {
        let node = self.input("vm", "services/vm/methods/update")?;
        let mut inventory = self.sim.inventory_mut();
        if !self.user.may(
            &inventory,
            Permit::EditVmProperties,
            vm.reference("cluster"),
            Some(vm.id),
        ) {
            return Err(forbidden());
        }
        if let Some(name) = node.text_of("name")
            && name != vm.name
            && inventory.by_name(Kind::Vm, name).is_some()
        {
            return Err(conflict(
                "Cannot edit VM. The VM name is already in use, please choose a unique name and try again.",
            ));
        }
        let memory = match node.text_of("memory") {
            Some(text) => Some(
                text.parse::<i64>()
                    .map_err(|_| bad_request(format!("Invalid value for memory: '{text}'")))?,
            ),
            None => None,
        };
        let topology = cpu_topology(&node)?;
        let updated = inventory
            .update(Kind::Vm, vm.id, |vm| {
                set_topology(vm, &topology);
                if let Some(name) = node.text_of("name") {
                    vm.name = name.to_owned();
                }
                if let Some(description) = node.text_of("description") {
                    vm.description = description.to_owned();
                }
                if let Some(comment) = node.text_of("comment") {
                    vm.comment = comment.to_owned();
                }
                if let Some(memory) = memory {
                    vm.set_prop("memory", Prop::Int(memory));
                }
            })
            .ok_or(Failure::NotFound)?;
        drop(inventory);
        Ok(self.object(&updated, StatusCode::OK))
    }

    /// `POST /tags`: a tag under `parent` (by id or name; the root tag when absent); 201.
    /// Tags are an admin's to make, as on the engine (ActionGroup.MANIPULATE_TAGS).
    pub(super) fn add_tag(&self) -> Answer {
        let node = self.input("tag", "services/tags/methods/add")?;
        let Some(name) = node.text_of("name") else {
            return Err(fault(
                StatusCode::BAD_REQUEST,
                "Incomplete parameters",
                "Tag [name] required for add",
            ));
        };
        if !self.user.admin {
            return Err(forbidden());
        }
        let mut inventory = self.sim.inventory_mut();
        let parent = match node.child("parent") {
            Some(parent) if parent.id().is_some() || parent.text_of("name").is_some() => {
                self.reference(&inventory, parent, Kind::Tag)?.id
            }
            _ => BLANK_ID,
        };
        if inventory.by_name(Kind::Tag, name).is_some() {
            return Err(conflict("Cannot add Tag. Tag name is in use."));
        }
        let id = self.sim.rng().uuid();
        let mut tag = Entity::new(Kind::Tag, id, name);
        tag.description = node.text_of("description").unwrap_or_default().to_owned();
        tag.refs.push(("parent", Kind::Tag, parent));
        inventory.insert(tag);
        let tag = inventory.get(Kind::Tag, id).ok_or(Failure::NotFound)?;
        drop(inventory);
        self.record(
            &format!("New Tag {name} was created by {}.", self.user.login),
            None,
        );
        Ok(self.object(&tag, StatusCode::CREATED))
    }

    /// `POST /vms/ID/tags`: attaches a tag (by id or name) to the VM; 201 with the tag.
    pub(super) fn attach_tag(&self, vm: &Entity) -> Answer {
        let node = self.input("tag", "services/assigned_tags/methods/add")?;
        if !self.user.admin {
            return Err(forbidden());
        }
        let mut inventory = self.sim.inventory_mut();
        let tag = self.reference(&inventory, &node, Kind::Tag)?;
        inventory.update(Kind::Vm, vm.id, |vm| {
            if !vm.related.contains(&(Kind::Tag, tag.id)) {
                vm.related.push((Kind::Tag, tag.id));
            }
        });
        drop(inventory);
        Ok(self.object(&tag, StatusCode::CREATED))
    }

    /// `DELETE /vms/ID/tags/TAG`: detaches the tag; 200, or 404 when it is not attached.
    pub(super) fn detach_tag(&self, vm: &Entity, tag: Id) -> Answer {
        if !self.user.admin {
            return Err(forbidden());
        }
        if !vm.related.contains(&(Kind::Tag, tag)) {
            return Err(Failure::NotFound);
        }
        self.sim.inventory_mut().update(Kind::Vm, vm.id, |vm| {
            vm.related.retain(|r| *r != (Kind::Tag, tag))
        });
        Ok(empty(StatusCode::OK))
    }

    /// `DELETE /vms/ID`: only a VM that is down; 200 with an `<action>` body.
    pub(super) fn remove_vm(&self, vm: &Entity) -> Answer {
        let mut inventory = self.sim.inventory_mut();
        if !self
            .user
            .may(&inventory, Permit::DeleteVm, vm.reference("cluster"), Some(vm.id))
        {
            return Err(forbidden());
        }
        if vm.status != Some("down") {
            return Err(conflict("Cannot remove VM. VM is running."));
        }
        inventory.remove(Kind::Vm, vm.id);
        let permissions: Vec<Id> = inventory
            .all(Kind::Permission)
            .filter(|p| p.reference("vm") == Some(vm.id))
            .map(|p| p.id)
            .collect();
        for id in permissions {
            inventory.remove(Kind::Permission, id);
        }
        drop(inventory);
        let job = self.record(
            &format!("VM {} was removed by {}.", vm.name, self.user.login),
            Some(&format!("Removing VM {} from system", vm.name)),
        );
        Ok(self.action_done(job))
    }

    /// `POST /vms/ID/VERB`: checks the permit and the VM's status, changes it, records a job and an
    /// event, and answers `<action><job/><status>complete</status></action>`.
    pub(super) fn act(&self, vm: &Entity, verb: &str) -> Answer {
        let body = if self.body.iter().all(u8::is_ascii_whitespace) {
            Node::default()
        } else {
            self.input("action", &format!("services/vm/methods/{verb}"))?
        };
        let permit = if verb == "migrate" {
            Permit::MigrateVm
        } else {
            Permit::VmBasicOperations
        };
        let mut inventory = self.sim.inventory_mut();
        if !self
            .user
            .may(&inventory, permit, vm.reference("cluster"), Some(vm.id))
        {
            return Err(forbidden());
        }
        let status = vm.status.unwrap_or("down");
        let refuse = |detail: &str| {
            Err(Failure::Action {
                status: StatusCode::CONFLICT,
                detail: detail.to_owned(),
            })
        };
        let hosts: Vec<Id> = inventory
            .all(Kind::Host)
            .filter(|h| h.reference("cluster") == vm.reference("cluster") && h.status == Some("up"))
            .map(|h| h.id)
            .collect();
        let current_host = vm.reference("host");
        let (new_status, new_host, message): (&'static str, Option<Id>, &str) = match (verb, status) {
            ("start", "down" | "suspended") => match hosts.first() {
                Some(host) => ("powering_up", current_host.or(Some(*host)), "started"),
                None => {
                    return refuse(
                        "Cannot run VM. There is no host that satisfies current scheduling constraints.",
                    );
                }
            },
            ("start", _) => return refuse("Cannot run VM. VM is running."),
            ("stop" | "shutdown", "down") => return refuse("Cannot stop VM. VM is not running."),
            ("stop", _) => ("down", None, "powered off"),
            ("shutdown", _) => ("powering_down", current_host, "shut down"),
            ("suspend", "up") => ("suspended", current_host, "suspended"),
            ("suspend", _) => return refuse("Cannot suspend VM. VM is not up."),
            ("reboot", "up") => ("up", current_host, "rebooted"),
            ("reboot", _) => return refuse("Cannot reboot VM. VM is not running."),
            ("migrate", "up") => {
                let wanted = body.child("host");
                let target = match wanted {
                    Some(node) => Some(self.reference(&inventory, node, Kind::Host)?.id),
                    None => hosts.iter().copied().find(|h| Some(*h) != current_host),
                };
                match target {
                    Some(host) if Some(host) != current_host => ("up", Some(host), "migrated"),
                    _ => {
                        return refuse(
                            "Cannot migrate VM. There is no host that satisfies current scheduling constraints.",
                        );
                    }
                }
            }
            ("migrate", _) => return refuse("Cannot migrate VM. VM is not running."),
            _ => return Err(not_allowed()),
        };
        inventory.update(Kind::Vm, vm.id, |vm| {
            vm.status = Some(new_status);
            vm.set_ref("host", Kind::Host, new_host);
            match new_status {
                "powering_up" => vm.set_prop("start_time", Prop::Date(now_ms())),
                "down" => vm.props.retain(|(name, _)| *name != "start_time"),
                _ => {}
            }
        });
        drop(inventory);
        let job = self.record(
            &format!("VM {} was {message} by {}.", vm.name, self.user.login),
            Some(&format!("{} VM {}", capitalised(verb), vm.name)),
        );
        Ok(self.action_done(job))
    }

    /// A VM on its way up or down gets there once it has been read in that state: the engine
    /// reports `powering_up` after `start` and `powering_down` after `shutdown` until the host
    /// says the guest is up or off (VmAnalyzer, on the host's reports), and clients such as ovirt_vm poll
    /// until they see the end state. Called after a GET of the VM has answered.
    pub(super) fn settle(&self, vm: &Entity) {
        let settled = match vm.status {
            Some("powering_up") => "up",
            Some("powering_down") => "down",
            _ => return,
        };
        self.sim.inventory_mut().update(Kind::Vm, vm.id, |vm| {
            vm.status = Some(settled);
            if settled == "down" {
                vm.set_ref("host", Kind::Host, None);
                vm.props.retain(|(name, _)| *name != "start_time");
            }
        });
    }

    fn action_done(&self, job: Option<Id>) -> Response<GatewayBody> {
        let mut w = Writer::new(self.repr);
        w.document_start();
        w.start("action", &[]);
        if let Some(job) = job {
            let id = Kind::Job.format_id(job);
            w.stub(
                "job",
                &[("href", &format!("{}/jobs/{id}", self.view.base)), ("id", &id)],
            );
        }
        w.value("status", Value::Text("complete"));
        w.end();
        w.document_end();
        self.bytes(StatusCode::OK, Bytes::from(w.out))
    }

    /// Adds an audit event and, for a command, a finished job; keeps the newest [`HISTORY`] of each.
    fn record(&self, event_text: &str, job_text: Option<&str>) -> Option<Id> {
        let now = now_ms();
        let mut inventory = self.sim.inventory_mut();
        let next_event = inventory.all(Kind::Event).next_back().map_or(1, |e| e.id + 1);
        let mut event = Entity::new(Kind::Event, next_event, "");
        event.description = event_text.to_owned();
        event.props = vec![
            ("code", Prop::Int(if job_text.is_some() { 153 } else { 34 })),
            ("custom_id", Prop::Int(-1)),
            ("flood_rate", Prop::Int(30)),
            ("index", Prop::Int(next_event as i64)),
            ("origin", Prop::Static("oVirt")),
            ("severity", Prop::Static("normal")),
            ("time", Prop::Date(now)),
        ];
        event.refs.push(("user", Kind::User, self.user.id));
        inventory.insert(event);
        prune(&mut inventory, Kind::Event);
        let text = job_text?;
        // Job ids carry a sequence number in their top bits, so the oldest sort first.
        let sequence = inventory
            .all(Kind::Job)
            .next_back()
            .map_or(1, |j| (j.id >> 96) + 1);
        let id = (self.sim.rng().uuid() & !(u128::from(u32::MAX) << 96)) | (sequence << 96);
        let mut job = Entity::new(Kind::Job, id, "");
        job.description = text.to_owned();
        job.status = Some("finished");
        job.props = vec![
            ("auto_cleared", Prop::Bool(true)),
            ("end_time", Prop::Date(now)),
            ("external", Prop::Bool(false)),
            ("last_updated", Prop::Date(now)),
            ("start_time", Prop::Date(now)),
        ];
        job.refs.push(("owner", Kind::User, self.user.id));
        inventory.insert(job);
        prune(&mut inventory, Kind::Job);
        Some(id)
    }
}

fn prune(inventory: &mut Inventory, kind: Kind) {
    while inventory.count(kind) > HISTORY {
        let Some(oldest) = inventory.all(kind).next().map(|e| e.id) else {
            break;
        };
        inventory.remove(kind, oldest);
    }
}

/// The storage domain and vnic profile of a data center, for a new VM's disk and nic.
fn placement(inventory: &Inventory, data_center: Option<Id>) -> Vec<(Kind, Id)> {
    let mut related = Vec::new();
    if let Some(sd) = inventory
        .all(Kind::StorageDomain)
        .find(|sd| sd.reference("data_center") == data_center)
    {
        related.push((Kind::StorageDomain, sd.id));
    }
    let network = inventory
        .all(Kind::Network)
        .find(|n| n.reference("data_center") == data_center)
        .map(|n| n.id);
    if let Some(profile) = inventory
        .all(Kind::VnicProfile)
        .find(|p| network.is_some() && p.reference("network") == network)
    {
        related.push((Kind::VnicProfile, profile.id));
    }
    related
}

fn capitalised(verb: &str) -> String {
    let mut chars = verb.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The members of `<cpu><topology>` a body sets (`cores`, `sockets`, `threads`).
fn cpu_topology(node: &Node) -> Result<Vec<(&'static str, i64)>, Failure> {
    let Some(topology) = node.child("cpu").and_then(|cpu| cpu.child("topology")) else {
        return Ok(Vec::new());
    };
    let mut given = Vec::new();
    for member in ["cores", "sockets", "threads"] {
        if let Some(text) = topology.text_of(member) {
            let count = text
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad_request(format!("Invalid value for {member}: '{text}'")))?;
            given.push((member, count));
        }
    }
    Ok(given)
}

/// Sets the given topology members on a VM, keeping the others.
fn set_topology(vm: &mut Entity, given: &[(&'static str, i64)]) {
    if given.is_empty() {
        return;
    }
    let mut members: Vec<(&'static str, Prop)> = match vm.prop("cpu") {
        Some(Prop::Group(cpu)) => match cpu.iter().find(|(name, _)| *name == "topology") {
            Some((_, Prop::Group(topology))) => topology.clone(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    for &(member, count) in given {
        match members.iter_mut().find(|(name, _)| *name == member) {
            Some((_, value)) => *value = Prop::Int(count),
            None => members.push((member, Prop::Int(count))),
        }
    }
    vm.set_prop("cpu", Prop::Group(vec![("topology", Prop::Group(members))]));
}
