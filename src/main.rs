//! The `ovirt-gateway` binary: the command line only; everything else is the library.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    ovirt_gateway::run()
}
