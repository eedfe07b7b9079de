//! End-to-end tests: the real gateway in-process, test upstreams and clients over loopback sockets
//! on ephemeral ports.

mod admin;
mod auth;
mod availability;
mod balancer;
mod cache;
mod cli;
mod faults;
mod federation;
mod hostile;
mod lifecycle;
mod logs;
mod policy;
mod protection;
mod proxy;
mod ratelimit;
mod replicas;
mod rewrite;
mod routing;
mod sim;
mod support;
mod tls;
