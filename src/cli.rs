//! The command line: `serve` and `check`. Parses arguments, sets up logging and hands over to the
//! library; no gateway logic lives here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogConfig, LogFormat};
use crate::{Gateway, check_material};

#[derive(Debug, Parser)]
#[command(
    name = "ovirt-gateway",
    version,
    about = "An API gateway for oVirt and Red Hat Virtualization Managers",
    long_about = "An API gateway for oVirt and Red Hat Virtualization Managers.\n\n\
        Clients (the Python SDK, Ansible's ovirt.ovirt collection, curl) change only their URL: the gateway \
        terminates TLS, routes each request to its Manager by host or path prefix, and streams it through \
        with oVirt fault bodies for every error it makes itself."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway with a configuration file until SIGTERM or SIGINT (SIGHUP reloads the
    /// listener's TLS certificate and key).
    Serve {
        /// The TOML configuration file (see config/gateway.toml for every key).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file and load the TLS material it names; print every problem
    /// with its key path and exit 1 if there is any, or print one OK line.
    Check {
        /// The TOML configuration file to validate.
        #[arg(long, short)]
        config: PathBuf,
    },
}

pub fn run() -> ExitCode {
    match Cli::parse().command {
        Command::Serve { config } => serve(&config),
        Command::Check { config } => check(&config),
    }
}

/// The configuration, or `None` after printing every problem in it.
fn load(path: &Path) -> Option<Config> {
    Config::load(path)
        .map_err(|errors| {
            for error in &errors.0 {
                eprintln!("{}: {error}", path.display());
            }
        })
        .ok()
}

fn check(path: &Path) -> ExitCode {
    let Some(config) = load(path) else {
        return ExitCode::FAILURE;
    };
    let problems = check_material(&config);
    for problem in &problems {
        eprintln!("{}: {problem}", path.display());
    }
    if !problems.is_empty() {
        return ExitCode::FAILURE;
    }
    println!(
        "OK: {}: listener {} ({}), {} manager(s)",
        path.display(),
        config.listen.address,
        if config.listen.tls.is_some() {
            "TLS"
        } else {
            "plain HTTP"
        },
        config.managers.len()
    );
    ExitCode::SUCCESS
}

fn serve(path: &Path) -> ExitCode {
    let Some(config) = load(path) else {
        return ExitCode::FAILURE;
    };
    init_logging(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        // Handlers first: a SIGHUP that arrives once the gateway is listening must find them.
        let signals = Signals::install();
        let running = match Gateway::start(config).await {
            Ok(running) => running,
            Err(error) => {
                tracing::error!(%error, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        signals.wait(&running).await;
        tracing::info!("shutting down");
        running.shutdown().await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

struct Signals {
    hangup: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            hangup: signal(SignalKind::hangup()).expect("SIGHUP handler"),
            terminate: signal(SignalKind::terminate()).expect("SIGTERM handler"),
            interrupt: signal(SignalKind::interrupt()).expect("SIGINT handler"),
        }
    }

    /// Returns on SIGTERM or SIGINT; reloads the certificate on every SIGHUP in between.
    async fn wait(mut self, running: &crate::Running) {
        loop {
            tokio::select! {
                _ = self.hangup.recv() => match running.reload_tls() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(error) => tracing::error!(%error, "SIGHUP: TLS reload failed; keeping the previous certificate"),
                },
                _ = self.terminate.recv() => return,
                _ = self.interrupt.recv() => return,
            }
        }
    }
}

/// Logs go to stderr, as text or JSON lines. `RUST_LOG`, when set, overrides `log.level`.
pub fn init_logging(log: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
