//! End-to-end tests: the real gateway in-process, test upstreams and clients over loopback sockets
//! on ephemeral ports.

mod admin;
#[cfg(feature = "sim")]
mod auth;
mod cache;
mod cli;
mod faults;
#[cfg(feature = "sim")]
mod hostile;
mod lifecycle;
mod logs;
#[cfg(feature = "sim")]
mod policy;
mod protection;
mod proxy;
mod ratelimit;
#[cfg(feature = "sim")]
mod rewrite;
mod routing;
#[cfg(feature = "sim")]
mod sim;
mod support;
mod tls;
