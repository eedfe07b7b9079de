//! A VM's graphics console and its descriptor (`.vv` file), as the engine serves them: the
//! console at `/vms/ID/graphicsconsoles/CID` (its id is the protocol's name in hex, as the
//! engine makes it), and the descriptor, with the caller's SSO token in its `[ovirt]` section,
//! from a GET that asks for `application/x-virt-viewer` (header or `?accept=`) and from the
//! `remoteviewerconnectionfile` action (ovirt-engine `BackendVmGraphicsConsoleResource`,
//! `ConsoleDescriptorGenerator`; docs/engine.md, section 5).
//!
//! Departures: one SPICE console per VM; no `ticket` action, no `?current`.

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, Response, StatusCode};

use super::{Answer, Call, Failure, not_allowed};
use crate::body::GatewayBody;
use crate::sim::model::{Entity, Kind};
use crate::sim::repr::{Value, Writer};

/// "spice" in hex: the engine's id of a SPICE console.
pub(super) const SPICE: &str = "7370696365";
const DESCRIPTOR_TYPE: &str = "application/x-virt-viewer";

impl Call<'_> {
    /// `/vms/ID/graphicsconsoles[/CID[/remoteviewerconnectionfile]]`.
    pub(super) fn console(&self, vm: &Entity, rest: &[&str]) -> Answer {
        match (self.method, rest) {
            (&Method::GET, []) => Ok(self.consoles(vm, true)),
            (&Method::GET | &Method::HEAD, [SPICE]) if self.wants_descriptor() => {
                let text = self.descriptor(vm);
                let mut response = Response::new(if *self.method == Method::HEAD {
                    GatewayBody::empty()
                } else {
                    GatewayBody::full(Bytes::from(text.clone()))
                });
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(DESCRIPTOR_TYPE));
                headers.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
                Ok(response)
            }
            (&Method::GET, [SPICE]) => Ok(self.consoles(vm, false)),
            (&Method::POST, [SPICE, "remoteviewerconnectionfile"]) => {
                let text = self.descriptor(vm);
                let mut w = Writer::new(self.repr);
                w.document_start();
                w.start("action", &[]);
                w.value("remote_viewer_connection_file", Value::Text(&text));
                w.value("status", Value::Text("complete"));
                w.end();
                w.document_end();
                Ok(self.bytes(StatusCode::OK, Bytes::from(w.out)))
            }
            (_, [console, ..]) if *console != SPICE => Err(Failure::NotFound),
            _ => Err(not_allowed()),
        }
    }

    /// RESTEasy picks the descriptor's producer when the Accept header or `?accept=` names it.
    fn wants_descriptor(&self) -> bool {
        let names = |v: &str| v.to_ascii_lowercase().contains(DESCRIPTOR_TYPE);
        self.headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(names)
            || self.param("accept").is_some_and(names)
    }

    /// The console listing (`list`) or the console itself.
    fn consoles(&self, vm: &Entity, list: bool) -> Response<GatewayBody> {
        let vm_id = Kind::Vm.format_id(vm.id);
        let vm_href = format!("{}/vms/{vm_id}", self.view.base);
        let href = format!("{vm_href}/graphicsconsoles/{SPICE}");
        let mut w = Writer::new(self.repr);
        w.document_start();
        if list {
            w.start("graphics_consoles", &[]);
            w.start_array("graphics_console");
        }
        w.start("graphics_console", &[("href", &href), ("id", SPICE)]);
        w.start("actions", &[]);
        w.start_array("link");
        let action = format!("{href}/remoteviewerconnectionfile");
        w.stub(
            "link",
            &[("href", &action), ("rel", "remoteviewerconnectionfile")],
        );
        w.end_array();
        w.end();
        w.value("protocol", Value::Text("spice"));
        w.stub("vm", &[("href", &vm_href), ("id", &vm_id)]);
        w.end();
        if list {
            w.end_array();
            w.end();
        }
        w.document_end();
        self.bytes(StatusCode::OK, Bytes::from(w.out))
    }

    /// The `.vv` text, with the caller's token (ConsoleDescriptorGenerator's sections).
    fn descriptor(&self, vm: &Entity) -> String {
        let token = self.session_token();
        format!(
            "[virt-viewer]\ntype=spice\nhost=192.0.2.10\nport=5900\ntls-port=5901\ntitle={name}:%d\n\
             delete-this-file=1\n\n[ovirt]\nhost={host}\nvm-guid={vm}\nsso-token={token}\nadmin=1\n",
            name = vm.name,
            host = self.origin.split("://").nth(1).unwrap_or("localhost"),
            vm = Kind::Vm.format_id(vm.id),
        )
    }
}
