//! Link rewriting: hrefs in XML and JSON bodies point at the gateway's public base when it differs
//! from the Manager's (OVIRT-API.md section 5), by structure, never by byte substitution.
//!
//! Work in progress on this branch (issue 5): the streaming XML and JSON rewriters; not yet wired
//! into the request path.

pub mod json;
pub mod prefix;
pub mod xml;
