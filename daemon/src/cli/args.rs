//! The command line: flom's options for the client, and latch's own subcommands.
//!
//! Only the definitions and their parsing live here: what option values mean as flom reads
//! them is [`super::options`]'s, what the options do [`super::client`]'s, [`super::daemon`]'s
//! and friends'. Nothing in the library sees these types: [`super::options`] and
//! [`super::daemon`] lower them to plain values ([`latch::wire::LockMsg`],
//! [`latch::server::Config`]).

#![forbid(unsafe_code)]

use super::config::{
    DEFAULT_PORT, DEFAULT_TCP_KEEPALIVE_INTVL, DEFAULT_TCP_KEEPALIVE_PROBES,
    DEFAULT_TCP_KEEPALIVE_TIME,
};
use clap::{Args, Parser, Subcommand};
use latch::net::Endpoint;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "latch",
    about = "A FLoM-compatible lock daemon and client, built to be probed from outside",
    long_about = "A FLoM-compatible lock daemon and client.\n\n\
        Run a command while holding a lock, as flom does:\n  \
        latch -r RESOURCE [-l MODE] [-q N] [-o MS] -- command args...\n\n\
        The first client starts a daemon if none answers on the socket (unless -d 0); \
        `latch daemon` runs one in the foreground. The daemon's state is visible with \
        `latch state` and, from outside, with latch-probe. Options may also come from \
        /etc/flom.conf, ~/.flom and -c FILE, as flom's.",
    disable_version_flag = true,
    allow_negative_numbers = true,
    after_help = "Exit status: the command's own; 96 the requester can't wait; 97 the command \
        could not be run; 98 busy or timeout expired; 99 any other error."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub endpoint: EndpointArgs,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub flom: FlomArgs,

    /// Print latch's version (one line) and exit; -v prints the package info as flom's.
    #[arg(long)]
    pub version: bool,

    /// The command to run while the lock is held (after `--`); the granted element, if the
    /// resource has one, is appended as its last argument.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,

    #[command(subcommand)]
    pub sub: Option<Sub>,
}

#[derive(Args, Debug, Clone, Default)]
pub(crate) struct EndpointArgs {
    /// Unix socket of the daemon [default: /tmp/flom-<login>, as flom's].
    #[arg(short = 's', long = "socket-name", global = true)]
    pub socket: Option<PathBuf>,
    /// TCP address of the daemon (instead of a Unix socket).
    #[arg(short = 'a', long = "unicast-address", global = true)]
    pub address: Option<String>,
    /// TCP port of the daemon [default: 28015].
    #[arg(short = 'p', long = "unicast-port", global = true)]
    pub port: Option<i32>,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct LockArgs {
    /// The resource to lock: name (simple), name[N] (numeric), a.b.c (set), /a/b
    /// (hierarchical), _s_name[N] / _S_name[N] (sequence), _t_FORMAT[N] (timestamp).
    #[arg(short = 'r', long = "resource-name")]
    pub resource: Option<String>,
    /// Lock mode for simple and hierarchical resources: NL CR CW PR PW EX (or long names).
    #[arg(short = 'l', long = "lock-mode")]
    pub mode: Option<String>,
    /// Units of a numeric resource to take.
    #[arg(short = 'q', long = "resource-quantity")]
    pub quantity: Option<i32>,
    /// How long to wait for the lock, ms: -1 forever (the default), 0 do not wait.
    #[arg(short = 'o', long = "resource-timeout")]
    pub timeout_ms: Option<i32>,
    /// Create the resource if it does not exist (yes/no); with no, wait until someone does.
    #[arg(short = 'e', long = "resource-create")]
    pub create: Option<String>,
    /// How long the resource outlives its last client, ms [default: 0].
    #[arg(short = 'i', long = "resource-idle-lifespan")]
    pub resource_lifespan_ms: Option<i32>,
    /// Lifespan of an auto-started daemon, ms: 0 never start one, negative run forever
    /// [default: 5000].
    #[arg(short = 'd', long = "daemon-lifespan")]
    pub daemon_lifespan_ms: Option<i32>,
    /// Ask the daemon to shut down when idle (quiesce).
    #[arg(short = 'x', long = "quiesce-exit")]
    pub quiesce: bool,
    /// Ask the daemon to exit at once (immediate).
    #[arg(short = 'X', long = "immediate-exit")]
    pub immediate: bool,
}

/// The rest of flom 1.7.2's options: configuration, information, tracing, signals, TCP
/// keepalive, multicast discovery, and the ones latch reads but does not implement yet
/// (TLS, the VFS, the client's debug features).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct FlomArgs {
    /// Print the package info (as flom's) and exit.
    #[arg(short = 'v')]
    pub package_info: bool,
    /// Print the effective configuration before running.
    #[arg(short = 'V', long = "verbose")]
    pub verbose: bool,
    /// A configuration file read after /etc/flom.conf and ~/.flom.
    #[arg(short = 'c', long = "config-file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Print the unique id (the machine id the client puts in its messages) and exit.
    #[arg(long = "unique-id")]
    pub unique_id: bool,
    /// Print the signals --ignore-signal accepts and exit.
    #[arg(long = "signal-list")]
    pub signal_list: bool,
    /// Ignore this signal (name or number) while the command runs; repeatable.
    #[arg(long = "ignore-signal", value_name = "SIGNAL")]
    pub ignore_signal: Vec<String>,
    /// The daemon's trace file (absolute path), for a daemon this client starts.
    #[arg(short = 't', long = "daemon-trace-file", value_name = "FILE")]
    pub daemon_trace_file: Option<String>,
    /// This command's trace file (absolute path).
    #[arg(short = 'T', long = "command-trace-file", value_name = "FILE")]
    pub command_trace_file: Option<String>,
    /// Append to the trace files instead of truncating them (yes/no).
    #[arg(long = "append-trace-file", value_name = "YES/NO")]
    pub append_trace_file: Option<String>,
    /// TCP keepalive: idle seconds before the first probe (TCP_KEEPIDLE).
    #[arg(long = "tcp-keepalive-time", value_name = "SECONDS")]
    pub tcp_keepalive_time: Option<i32>,
    /// TCP keepalive: seconds between probes (TCP_KEEPINTVL).
    #[arg(long = "tcp-keepalive-intvl", value_name = "SECONDS")]
    pub tcp_keepalive_intvl: Option<i32>,
    /// TCP keepalive: probes before the connection is dropped (TCP_KEEPCNT).
    #[arg(long = "tcp-keepalive-probes", value_name = "COUNT")]
    pub tcp_keepalive_probes: Option<i32>,
    /// Find the daemon by multicast discovery on this group (without -a).
    #[arg(short = 'A', long = "multicast-address")]
    pub multicast_address: Option<String>,
    /// Multicast discovery: the group's UDP port [default: 28015].
    #[arg(short = 'P', long = "multicast-port")]
    pub multicast_port: Option<i32>,
    /// Mount point of the virtual file system of a daemon this client starts (FLoM's
    /// layout, served by latch-probe beside the daemon).
    #[arg(short = 'm', long = "mount-point-vfs", value_name = "DIR")]
    pub mount_point_vfs: Option<String>,
    /// Network interface for IPv6 discovery (and its link-local addresses).
    #[arg(short = 'n', long = "network-interface")]
    pub network_interface: Option<String>,
    /// Multicast discovery: requests to send [default: 2].
    #[arg(short = 'D', long = "discovery-attempts")]
    pub discovery_attempts: Option<i32>,
    /// Multicast discovery: ms to wait for an answer to each [default: 500].
    #[arg(short = 'I', long = "discovery-timeout")]
    pub discovery_timeout: Option<i32>,
    /// Multicast discovery: hop limit of the requests [default: 1].
    #[arg(long = "discovery-ttl")]
    pub discovery_ttl: Option<i32>,
    /// TLS: this peer's X.509 certificate file.
    #[arg(long = "tls-certificate", value_name = "FILE")]
    pub tls_certificate: Option<String>,
    /// TLS: this peer's private key file.
    #[arg(long = "tls-private-key", value_name = "FILE")]
    pub tls_private_key: Option<String>,
    /// TLS: the certification authority's certificate file.
    #[arg(long = "tls-ca-certificate", value_name = "FILE")]
    pub tls_ca_certificate: Option<String>,
    /// TLS: check the peer's unique id, yes/no.
    #[arg(long = "tls-check-peer-id", value_name = "YES/NO")]
    pub tls_check_peer_id: Option<String>,
    /// One of flom's checks of the network set-up, run instead of a command:
    /// ipv6.multicast.server (-A: answer one datagram), ipv6.multicast.client (-A: send
    /// HELLO, show the answer), tls.server (-a, -p, --tls-*: accept one TLS connection and
    /// swap unique ids), tls.client (connect to one). Exit 0 when it worked, else 1.
    /// (`latch daemon --debug-feature` has latch's own test hooks.)
    #[arg(long = "debug-feature", value_name = "FEATURE")]
    pub debug_feature: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Sub {
    /// Run a daemon in the foreground (until stopped, unless -d is given).
    // Not inherited from the top-level command: `latch daemon -d -1` must parse as flom's.
    #[command(allow_negative_numbers = true)]
    Daemon(DaemonArgs),
    /// Check that the daemon answers (admin API).
    Ping(AdminArgs),
    /// Summary: pid, version, uptime, memory, counts (admin API).
    Status(AdminArgs),
    /// Every locker, holder, waiter and incubated client: the latch.state/1 document.
    State(AdminArgs),
    /// Stream every lock event (latch.event/1) until interrupted.
    Events(AdminArgs),
    /// Load generator speaking FLoM's protocol: lock+unlock rate, or a daemon filled with
    /// held locks and waiters for the probe's benchmarks.
    Bench(BenchArgs),
}

#[derive(Args, Debug, Clone)]
pub(crate) struct DaemonArgs {
    /// Exit after this long idle, ms; negative: never.
    #[arg(short = 'd', long = "daemon-lifespan", default_value_t = -1)]
    pub lifespan_ms: i64,
    /// Test hooks, as FLoM's --debug-feature: `hang-on-lock=NAME` makes the thread that
    /// owns the lock table block forever, holding it, when a lock for NAME arrives.
    #[arg(long = "debug-feature", value_name = "FEATURE")]
    pub debug_feature: Vec<String>,
    /// Answer multicast discovery on this group (flom's -A); without -a or -s the daemon
    /// listens on TCP on every address, on a port the kernel chooses, as flom's.
    #[arg(short = 'A', long = "multicast-address")]
    pub multicast_address: Option<String>,
    /// The discovery group's UDP port.
    #[arg(short = 'P', long = "multicast-port", default_value_t = DEFAULT_PORT)]
    pub multicast_port: i32,
    /// The interface to join an IPv6 discovery group on.
    #[arg(short = 'n', long = "network-interface")]
    pub network_interface: Option<String>,
    /// Internal: started by a client; detach and report readiness on stdout.
    #[arg(long, hide = true)]
    pub spawned: bool,
    /// Serve FLoM's virtual file system on DIR: `latch-probe mount --live` (found next to
    /// latch, or on PATH) runs beside the daemon and unmounts when the daemon exits.
    #[arg(short = 'm', long = "mount-point-vfs", value_name = "DIR")]
    pub mount_point_vfs: Option<PathBuf>,
    /// Write the log to this file instead of stderr (a client's -t).
    #[arg(long = "trace-file", value_name = "FILE")]
    pub trace_file: Option<PathBuf>,
    /// Append to --trace-file instead of truncating it.
    #[arg(long = "append-trace-file", requires = "trace_file")]
    pub append_trace_file: bool,
    /// TCP keepalive of accepted connections: idle seconds before the first probe.
    #[arg(long = "tcp-keepalive-time", default_value_t = DEFAULT_TCP_KEEPALIVE_TIME)]
    pub tcp_keepalive_time: i32,
    /// TCP keepalive of accepted connections: seconds between probes.
    #[arg(long = "tcp-keepalive-intvl", default_value_t = DEFAULT_TCP_KEEPALIVE_INTVL)]
    pub tcp_keepalive_intvl: i32,
    /// TCP keepalive of accepted connections: probes before the connection is dropped.
    #[arg(long = "tcp-keepalive-probes", default_value_t = DEFAULT_TCP_KEEPALIVE_PROBES)]
    pub tcp_keepalive_probes: i32,
    /// TLS: the daemon's X.509 certificate (PEM); with the key and the CA, every
    /// connection speaks TLS, as flom's.
    #[arg(long = "tls-certificate", value_name = "FILE", requires_all = ["tls_private_key", "tls_ca_certificate"])]
    pub tls_certificate: Option<PathBuf>,
    /// TLS: the daemon's private key (PEM).
    #[arg(
        long = "tls-private-key",
        value_name = "FILE",
        requires = "tls_certificate"
    )]
    pub tls_private_key: Option<PathBuf>,
    /// TLS: the certification authority's certificate (PEM) clients' certificates must chain to.
    #[arg(
        long = "tls-ca-certificate",
        value_name = "FILE",
        requires = "tls_certificate"
    )]
    pub tls_ca_certificate: Option<PathBuf>,
    /// TLS: refuse a client whose peer id is not its certificate's CN.
    #[arg(long = "tls-check-peer-id", requires = "tls_certificate")]
    pub tls_check_peer_id: bool,
}

impl DaemonArgs {
    /// The three TLS files, when given.
    pub(crate) fn tls_files(&self) -> Option<latch::tls::TlsFiles> {
        Some(latch::tls::TlsFiles {
            certificate: self.tls_certificate.clone()?,
            private_key: self.tls_private_key.clone()?,
            ca_certificate: self.tls_ca_certificate.clone()?,
        })
    }
}

#[derive(Args, Debug, Clone)]
pub(crate) struct BenchArgs {
    /// Concurrent clients, each a thread doing one lock after another.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Lock+unlock operations in all (split evenly between the clients).
    #[arg(long, default_value_t = 10_000)]
    pub ops: usize,
    /// All clients lock one shared exclusive resource instead of one each.
    #[arg(long)]
    pub same_resource: bool,
    /// Print only the result, as JSON: {"clients":N,"ops":M,"secs":S,"ops_per_sec":R}.
    #[arg(long)]
    pub json: bool,
    /// Fill the daemon instead: LOCKERS resources, each with one holder and WAITERS waiters,
    /// held until this process is killed. Prints "ready ..." once all are in place.
    #[arg(long)]
    pub hold: bool,
    #[arg(long, default_value_t = 1_000, requires = "hold")]
    pub lockers: usize,
    #[arg(long, default_value_t = 2, requires = "hold")]
    pub waiters: usize,
    /// Internal: a worker of --hold, for lockers START..START+COUNT.
    #[arg(long, hide = true, value_name = "START:COUNT")]
    pub hold_slice: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct AdminArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Give up waiting for the daemon's answer after this long, ms (not for events).
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
}

impl EndpointArgs {
    /// Where to talk: TCP if an address was given, else the Unix socket (flom's default
    /// path). Refuses both at once, as flom does.
    pub(crate) fn endpoint(&self) -> Result<Endpoint, EndpointError> {
        resolve_endpoint(
            self.socket.clone(),
            self.address.clone(),
            self.port.unwrap_or(DEFAULT_PORT),
        )
    }
}

/// The endpoint a socket path, a TCP address and a port mean, as flom reads them.
pub(crate) fn resolve_endpoint(
    socket: Option<PathBuf>,
    address: Option<String>,
    port: i32,
) -> Result<Endpoint, EndpointError> {
    match (socket, address) {
        (Some(_), Some(_)) => Err(EndpointError::Conflict),
        (None, Some(addr)) => {
            let port = u16::try_from(port).map_err(|_| EndpointError::Port(port))?;
            Ok(Endpoint::Tcp(addr, port))
        }
        (Some(path), None) => Ok(Endpoint::Unix(path)),
        (None, None) => Ok(Endpoint::Unix(default_socket())),
    }
}

/// A TCP address with the interface `-n` names as its scope, when it is an IPv6 address
/// without one (FLoM's `sin6_scope_id`, which a link-local address needs).
pub(crate) fn scoped(address: String, interface: Option<&str>) -> String {
    match interface {
        Some(i) if address.parse::<std::net::Ipv6Addr>().is_ok() => format!("{address}%{i}"),
        _ => address,
    }
}

/// An endpoint that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EndpointError {
    #[error("-s (Unix socket) and -a (TCP address) cannot be used together")]
    Conflict,
    #[error("unicast port {0} is not a TCP port (0 to 65535); give another -p")]
    Port(i32),
}

/// flom's default socket: `/tmp/flom-<login>`.
pub(crate) fn default_socket() -> PathBuf {
    let login = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "nobody".to_owned());
    PathBuf::from(format!("/tmp/flom-{login}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
