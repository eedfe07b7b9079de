//! The command line: `serve`, `check`, `policy explain`, and with the `sim` feature `demo` and
//! `sim`. Parses arguments, sets up logging and hands over to the library; no gateway logic lives
//! here.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogConfig, LogFormat};
use crate::policy::Policies;
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
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway with a configuration file until SIGTERM or SIGINT (SIGHUP reloads the
    /// listener's TLS certificate and key, the policies and the rate limits).
    Serve {
        /// The TOML configuration file (see config/gateway.toml for every key).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file and load the TLS material and policies it names; print
    /// every problem with its key path (policies: file and line) and exit 1 if there is any, or
    /// print one OK line.
    Check {
        /// The TOML configuration file to validate.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Cedar policies (docs/policies.md).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Run the built-in Manager simulator and a gateway in front of it (config/demo.toml), and
    /// print how to use them. Ctrl-C stops both.
    #[cfg(feature = "sim")]
    Demo {
        /// The gateway's HTTPS address [default: listen.address of config/demo.toml, 127.0.0.1:8443]
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The admin listener (/metrics) [default: admin.address of config/demo.toml, 127.0.0.1:8444]
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        /// Where the CA file, the listener's certificate and key, and demo.toml are written.
        #[arg(long, default_value = "ovirt-gateway-demo")]
        dir: PathBuf,
        /// Publish the simulator under this public path prefix (e.g. /east): links in bodies and
        /// headers are rewritten to it.
        #[arg(long)]
        prefix: Option<String>,
        /// Run a second simulator (`west`) and publish both in one merged API at the root, each
        /// also under its own prefix (/east, /west); docs/federation.md.
        #[arg(long, conflicts_with = "prefix")]
        merged: bool,
        /// Run this many gateways sharing their state through the store of --shared
        /// (docs/replicas.md), the others at free loopback ports; put a balancer in front.
        #[arg(long, default_value_t = 1, requires = "shared")]
        replicas: usize,
        /// The Redis (or Valkey) URL the gateways share their state through.
        #[arg(long)]
        shared: Option<String>,
        /// Read a PROXY protocol header on every connection from loopback (a balancer in TCP
        /// mode in front).
        #[arg(long)]
        proxy_protocol: bool,
    },
    /// Run the Manager simulator: an oVirt Engine stand-in with a generated inventory, SSO, and
    /// test endpoints (/sim/stats, /sim/revoke-all, /sim/faults). See docs/simulator.md.
    #[cfg(feature = "sim")]
    Sim(SimArgs),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print how the gateway would decide one request and the policies that decide it; exit 0
    /// when allowed, 1 when denied, 2 when the question cannot be answered.
    Explain(ExplainArgs),
}

#[derive(Debug, clap::Args)]
struct ExplainArgs {
    /// The TOML configuration file ([policy] and the Managers' routes).
    #[arg(long, short)]
    config: PathBuf,
    /// The user, as user@profile.
    #[arg(long)]
    user: String,
    /// The HTTP method.
    #[arg(long, default_value = "GET")]
    method: http::Method,
    /// The public path, with its query if any (e.g. /ovirt-engine/api/vms/ID/start).
    #[arg(long)]
    path: String,
    /// The Host header, for Managers routed by host.
    #[arg(long)]
    host: Option<String>,
    /// The client's address.
    #[arg(long, default_value = "127.0.0.1")]
    client_ip: std::net::IpAddr,
    /// For a path of the merged view ([federation]): the member the request reaches.
    #[arg(long)]
    member: Option<String>,
    /// A resource attribute as a lookup at the Manager would find it: name=, cluster=,
    /// data_center=, tags=a,b (repeatable).
    #[arg(long = "attribute", value_parser = parse_attribute)]
    attributes: Vec<(String, String)>,
}

fn parse_attribute(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key @ ("name" | "cluster" | "data_center" | "tags"), value)) => {
            Ok((key.to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "`{text}`: expected name=VALUE, cluster=VALUE, data_center=VALUE or tags=A,B"
        )),
    }
}

#[cfg(feature = "sim")]
#[derive(Debug, clap::Args)]
struct SimArgs {
    /// Address to listen on (port 0 picks a free port; the first line printed names it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Serve HTTPS with a certificate from the simulator's CA (served at
    /// /ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA).
    #[arg(long)]
    self_signed: bool,
    /// Number of VMs.
    #[arg(long, default_value_t = 50)]
    vms: usize,
    /// Number of hosts.
    #[arg(long, default_value_t = 8)]
    hosts: usize,
    /// Number of clusters (two per data center).
    #[arg(long, default_value_t = 4)]
    clusters: usize,
    /// Seed of the generated inventory: the same seed gives the same objects and ids.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Extra latency before every API answer, in milliseconds: A, or a range A-B.
    #[arg(long, value_parser = parse_latency)]
    latency_ms: Option<(std::time::Duration, std::time::Duration)>,
    /// Seconds a token or session lives without use (the engine's SSO_TOKEN_TIMEOUT).
    #[arg(long, default_value_t = 360_000)]
    token_ttl: u64,
    /// Compress API responses with gzip when the client accepts it (as the engine's Apache does).
    #[arg(long)]
    gzip: bool,
    /// A TOML file of users, groups and permissions replacing the built-in ones (see docs/simulator.md).
    #[arg(long)]
    users: Option<PathBuf>,
    /// Put before every generated name (`east-` makes `east-vm-00001`, `east-cluster-1`), so that
    /// several simulators behind one gateway name their objects apart.
    #[arg(long, default_value = "")]
    name_prefix: String,
}

#[cfg(feature = "sim")]
fn parse_latency(text: &str) -> Result<(std::time::Duration, std::time::Duration), String> {
    let ms = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map(std::time::Duration::from_millis)
            .map_err(|_| format!("`{s}` is not a number of milliseconds"))
    };
    let (low, high) = match text.split_once('-') {
        Some((low, high)) => (ms(low)?, ms(high)?),
        None => (ms(text)?, ms(text)?),
    };
    if low > high {
        return Err(format!("`{text}`: the range must be LOW-HIGH"));
    }
    Ok((low, high))
}

pub fn run() -> ExitCode {
    match Cli::parse().command {
        Command::Serve { config } => serve(&config),
        Command::Check { config } => check(&config),
        Command::Policy {
            command: PolicyCommand::Explain(args),
        } => explain(args),
        #[cfg(feature = "sim")]
        Command::Demo {
            listen,
            admin,
            dir,
            prefix,
            merged,
            replicas,
            shared,
            proxy_protocol,
        } => demo(crate::demo::DemoOptions {
            listen,
            admin,
            dir,
            prefix,
            merged,
            replicas,
            shared,
            proxy_protocol,
        }),
        #[cfg(feature = "sim")]
        Command::Sim(args) => sim(args),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[cfg(feature = "sim")]
fn sim(args: SimArgs) -> ExitCode {
    init_logging(&LogConfig {
        format: LogFormat::Text,
        level: "info".into(),
    });
    let custom_users = args.users.is_some();
    let options = crate::sim::SimOptions {
        listen: args.listen,
        self_signed: args.self_signed,
        sizes: crate::sim::Sizes {
            clusters: args.clusters,
            hosts: args.hosts,
            vms: args.vms,
        },
        seed: args.seed,
        latency: args.latency_ms,
        token_ttl: std::time::Duration::from_secs(args.token_ttl),
        gzip: args.gzip,
        users: args.users,
        name_prefix: args.name_prefix,
    };
    runtime().block_on(async {
        let signals = Signals::install();
        let running = match crate::sim::start(options).await {
            Ok(running) => running,
            Err(error) => {
                eprintln!("ovirt-gateway sim: {error}");
                return ExitCode::FAILURE;
            }
        };
        // The first line is a contract: scripts read the URL from it (tests/clients/environment.py).
        println!("ovirt-gateway sim listening on {}", running.api_url());
        let origin = running.api_url().trim_end_matches("/ovirt-engine/api").to_owned();
        println!(
            "CA certificate: {origin}/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA"
        );
        if !custom_users {
            println!("users: admin@internal/admin, alice@internal/alice, bob@internal/bob, carol@internal/carol");
        }
        signals.until_stopped().await;
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}

#[cfg(feature = "sim")]
fn demo(options: crate::demo::DemoOptions) -> ExitCode {
    init_logging(&LogConfig {
        format: LogFormat::Text,
        level: "info".into(),
    });
    runtime().block_on(async {
        let signals = Signals::install();
        let demo = match crate::demo::Demo::start(options).await {
            Ok(demo) => demo,
            Err(error) => {
                eprintln!("ovirt-gateway demo: {error}");
                return ExitCode::FAILURE;
            }
        };
        println!("{}", demo.instructions());
        signals.until_stopped().await;
        tracing::info!("stopping the demo");
        demo.shutdown().await;
        ExitCode::SUCCESS
    })
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

fn explain(args: ExplainArgs) -> ExitCode {
    let Some(config) = load(&args.config) else {
        return ExitCode::from(2);
    };
    let mut found = crate::policy::Found::default();
    for (key, value) in args.attributes {
        match key.as_str() {
            "name" => found.name = Some(value),
            "cluster" => found.cluster = Some(value),
            "data_center" => found.data_center = Some(value),
            _ => found.tags = Some(value.split(',').map(str::to_owned).collect()),
        }
    }
    let question = crate::policy::explain::Question {
        user: args.user,
        method: args.method,
        path: args.path,
        host: args.host,
        client_ip: args.client_ip,
        member: args.member,
        found,
    };
    match crate::policy::explain::explain(&config, &question) {
        Ok(explanation) => {
            print!("{explanation}");
            if explanation.decision.allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(2)
        }
    }
}

fn check(path: &Path) -> ExitCode {
    let Some(config) = load(path) else {
        return ExitCode::FAILURE;
    };
    let problems = check_material(&config);
    for problem in &problems {
        eprintln!("{}: {problem}", path.display());
    }
    // Policy problems name their own file and line.
    let policies = config.policy.as_ref().map(|policy| Policies::load(&policy.dir));
    match &policies {
        Some(Ok(policies)) => {
            for warning in &policies.warnings {
                eprintln!("warning: {warning}");
            }
        }
        Some(Err(errors)) => {
            for error in errors {
                eprintln!("{error}");
            }
        }
        None => {}
    }
    if !problems.is_empty() || matches!(policies, Some(Err(_))) {
        return ExitCode::FAILURE;
    }
    let policies = match (&policies, &config.policy) {
        (Some(Ok(policies)), Some(policy)) => {
            format!(", {} policies ({})", policies.len(), policy.mode.label())
        }
        _ => String::new(),
    };
    println!(
        "OK: {}: listener {} ({}), {} manager(s){policies}",
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
    runtime().block_on(async {
        // Handlers first: a SIGHUP that arrives once the gateway is listening must find them.
        let signals = Signals::install();
        let running = match Gateway::start(config).await {
            Ok(running) => running,
            Err(error) => {
                tracing::error!(%error, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        signals.wait(&running, path).await;
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

    /// Returns on SIGTERM or SIGINT; SIGHUP is ignored.
    #[cfg(feature = "sim")]
    async fn until_stopped(mut self) {
        loop {
            tokio::select! {
                _ = self.hangup.recv() => {}
                _ = self.terminate.recv() => return,
                _ = self.interrupt.recv() => return,
            }
        }
    }

    /// Returns on SIGTERM or SIGINT; reloads the certificate, the policies and the rate limits
    /// (from the configuration file at `path`) on every SIGHUP in between.
    async fn wait(mut self, running: &crate::Running, path: &Path) {
        loop {
            tokio::select! {
                _ = self.hangup.recv() => {
                    match running.reload_tls() {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                        Err(error) => tracing::error!(%error, "SIGHUP: TLS reload failed; keeping the previous certificate"),
                    }
                    // Errors are logged (file:line) by the reload itself; validation may take a
                    // while, so this worker's other tasks move elsewhere meanwhile.
                    let _ = tokio::task::block_in_place(|| running.reload_policies());
                    // The configuration file again: an invalid one is reported key by key and
                    // changes nothing.
                    match Config::load(path).map_err(|e| e.to_string()).and_then(|c| running.reload_rate_limits(&c)) {
                        Ok(later) if later.is_empty() => tracing::info!("SIGHUP: rate limits reloaded"),
                        Ok(later) => tracing::warn!(keys = ?later, "SIGHUP: rate limits reloaded; these keys take effect at the next start"),
                        Err(error) => tracing::error!(%error, "SIGHUP: rate limits not reloaded"),
                    }
                }
                _ = self.terminate.recv() => return,
                _ = self.interrupt.recv() => return,
            }
        }
    }
}

/// Logs go to stderr, as text or JSON lines. `RUST_LOG`, when set, overrides `log.level`. Text is
/// coloured only on a terminal, so files and log collectors get plain lines.
pub(crate) fn init_logging(log: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_timer(LogTime)
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Text => builder.fmt_fields(escaped_fields()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Each line's time, as tracing-subscriber's `SystemTime` writes it (RFC 3339, UTC, to the
/// microsecond: `2026-12-03T15:26:59.930120Z`), with the date and the time to the second
/// formatted once a second per thread rather than on every line (docs/performance.md,
/// "Against nginx").
struct LogTime;

impl tracing_subscriber::fmt::time::FormatTime for LogTime {
    fn format_time(&self, writer: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        use std::cell::RefCell;
        thread_local! {
            static SECOND: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        SECOND.with_borrow_mut(|(second, text)| {
            if *second != now.as_secs() || text.is_empty() {
                *second = now.as_secs();
                *text = to_the_second(now.as_secs());
            }
            writer.write_str(text)?;
            write!(writer, ".{:06}Z", now.subsec_micros())
        })
    }
}

/// `1970-01-01T00:00:00` for 0 seconds since the epoch, in the proleptic Gregorian calendar
/// (the days-to-civil conversion of Howard Hinnant's "chrono-Compatible Low-Level Date
/// Algorithms").
fn to_the_second(seconds: u64) -> String {
    let (days, second) = (seconds / 86_400, seconds % 86_400);
    // Days since 0000-03-01, so that a leap day ends its year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second / 3600,
        second / 60 % 60,
        second % 60
    )
}

/// The fields of a text log line, `name=value` and space-delimited, with every control
/// character of every value escaped: a value that came from a client (a user name, a path, an
/// error quoting the request) can neither start a line of its own nor send a terminal escape.
/// Strings are written bare when that cannot be misread, quoted otherwise (`"` and `\` escaped
/// within); numbers and booleans as they are, other values as they display (docs/architecture.md,
/// "The access log"). Written straight into the line, field by field, without the
/// `Debug` formatting of each (docs/performance.md, "Against nginx"). JSON lines escape alike.
pub fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static {
    LogFields
}

struct LogFields;

impl<'w> tracing_subscriber::fmt::FormatFields<'w> for LogFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: tracing_subscriber::fmt::format::Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut visitor = FieldWriter {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct FieldWriter<'w> {
    writer: tracing_subscriber::fmt::format::Writer<'w>,
    first: bool,
    result: std::fmt::Result,
}

impl FieldWriter<'_> {
    /// Writes the field's name (none for the message) and then its value.
    fn write(
        &mut self,
        field: &tracing::field::Field,
        value: impl FnOnce(&mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result,
    ) {
        if self.result.is_err() {
            return;
        }
        let writer = &mut self.writer;
        let mut name = || {
            if !std::mem::take(&mut self.first) {
                writer.write_char(' ')?;
            }
            if field.name() != "message" {
                writer.write_str(field.name())?;
                writer.write_char('=')?;
            }
            Ok(())
        };
        self.result = name().and_then(|()| value(writer));
    }
}

impl tracing::field::Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        use std::fmt::Write;
        // Bare when that cannot be misread (logfmt's rule): printable ASCII without spaces,
        // quotes, backslashes or `=`.
        let bare = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'='));
        self.write(field, |writer| {
            if bare {
                return writer.write_str(value);
            }
            writer.write_char('"')?;
            Escaping {
                to: &mut *writer,
                quoted: true,
            }
            .write_str(value)?;
            writer.write_char('"')
        });
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.write(field, |writer| {
            writer.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.write(field, |writer| write!(writer, "{value}"));
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.write(field, |writer| write!(writer, "{value}"));
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        self.write(field, |writer| {
            write!(
                Escaping {
                    to: writer,
                    quoted: false
                },
                "{value:?}"
            )
        });
    }
}

/// Writes through to `to`, control characters escaped, and in a quoted string `"` and `\` too.
struct Escaping<W> {
    to: W,
    quoted: bool,
}

impl<W: std::fmt::Write> std::fmt::Write for Escaping<W> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let quoted = self.quoted;
        let mut rest = text;
        // Control characters are C0 and DEL (one byte each) and C1 (U+0080 to U+009F, a 0xC2
        // lead byte): bytes are scanned, chars decoded only at a candidate.
        while let Some(at) = rest.bytes().enumerate().position(|(i, b)| {
            b < 0x20
                || b == 0x7f
                || (quoted && (b == b'"' || b == b'\\'))
                || (b == 0xc2 && rest[i..].starts_with(char::is_control))
        }) {
            self.to.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().expect("found above");
            match c {
                '\n' => self.to.write_str("\\n")?,
                '\r' => self.to.write_str("\\r")?,
                '\t' => self.to.write_str("\\t")?,
                '"' | '\\' => {
                    self.to.write_char('\\')?;
                    self.to.write_char(c)?;
                }
                c => write!(self.to, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.to.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::Escaping;

    /// Dates across leap days, century rules and year ends, checked against `date -u -d @N`.
    #[test]
    fn times_to_the_second() {
        for (seconds, text) in [
            (0, "1970-01-01T00:00:00"),
            (951_782_399, "2000-02-28T23:59:59"),
            (951_782_400, "2000-02-29T00:00:00"),
            (4_107_542_400, "2100-03-01T00:00:00"),
            (1_800_000_000, "2027-01-15T08:00:00"),
            (1_798_761_599, "2026-12-31T23:59:59"),
        ] {
            assert_eq!(super::to_the_second(seconds), text, "{seconds}");
        }
    }

    /// A line's fields: strings bare when that cannot be misread and quoted otherwise, numbers
    /// and booleans as they are, displayed values as they display, the message without a name.
    #[test]
    fn fields_as_written() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(super::escaped_fields())
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                target: "access",
                plain = "/ovirt-engine/api/vms",
                spaced = "two words",
                empty = "",
                equals = "a=b",
                quote = "say \"hi\" \\ bye",
                accented = "é",
                count = 5u64,
                signed = -3i64,
                yes = true,
                shown = %"raw text",
                "the message"
            )
        });
        let line = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            line,
            " INFO access: the message plain=/ovirt-engine/api/vms spaced=\"two words\" empty=\"\" \
             equals=\"a=b\" quote=\"say \\\"hi\\\" \\\\ bye\" accented=\"é\" count=5 signed=-3 yes=true \
             shown=raw text\n"
        );
    }

    /// C0 controls, DEL and C1 controls are escaped, and in a quoted string `"` and `\` too;
    /// other text, multi-byte included (U+00A0 shares the C1 controls' lead byte), passes as it
    /// is.
    #[test]
    fn control_characters_are_escaped() {
        let text = "a\nb\r\tc\u{1b}[31m\u{7f}\u{85}\u{9b}\u{a0}é\u{2028}\"\\z";
        for (quoted, ends) in [(false, "\"\\z"), (true, "\\\"\\\\z")] {
            let mut out = String::new();
            write!(Escaping { to: &mut out, quoted }, "{text}").unwrap();
            assert_eq!(
                out,
                format!("a\\nb\\r\\tc\\u{{1b}}[31m\\u{{7f}}\\u{{85}}\\u{{9b}}\u{a0}é\u{2028}{ends}")
            );
        }
    }
}
