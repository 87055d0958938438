//! The command line: flom's options for the client, and latch's own subcommands.
//!
//! Only the definitions and their parsing live here: what option values mean as flom reads
//! them is [`super::options`]'s, what the options do [`super::client`]'s, [`super::daemon`]'s
//! and friends'. Nothing in the library sees these types: [`super::options`] and
//! [`super::daemon`] lower them to plain values ([`latch::wire::LockMsg`],
//! [`latch::server::Config`]).

#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use latch::net::Endpoint;
use std::ffi::OsString;
use std::path::PathBuf;

/// The default TCP port, as FLoM's.
pub const DEFAULT_PORT: u16 = 28015;
/// flom's default daemon lifespan for an auto-started daemon, in ms.
pub const DEFAULT_LIFESPAN_MS: i64 = 5000;

#[derive(Parser, Debug)]
#[command(
    name = "latch",
    about = "A FLoM-compatible lock daemon and client, built to be probed from outside",
    long_about = "A FLoM-compatible lock daemon and client.\n\n\
        Run a command while holding a lock, as flom does:\n  \
        latch -r RESOURCE [-l MODE] [-q N] [-o MS] -- command args...\n\n\
        The first client starts a daemon if none answers on the socket (unless -d 0); \
        `latch daemon` runs one in the foreground. The daemon's state is visible with \
        `latch state` and, from outside, with latch-probe.",
    disable_version_flag = true,
    allow_negative_numbers = true,
    after_help = "Exit status: the command's own; 96 the requester can't wait; 97 the command \
        could not be run; 98 busy or timeout expired; 99 any other error."
)]
pub struct Cli {
    #[command(flatten)]
    pub endpoint: EndpointArgs,

    #[command(flatten)]
    pub lock: LockArgs,

    /// Print the version and exit.
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
pub struct EndpointArgs {
    /// Unix socket of the daemon [default: /tmp/flom-<login>, as flom's].
    #[arg(short = 's', long = "socket-name", global = true)]
    pub socket: Option<PathBuf>,
    /// TCP address of the daemon (instead of a Unix socket).
    #[arg(short = 'a', long = "unicast-address", global = true)]
    pub address: Option<String>,
    /// TCP port of the daemon.
    #[arg(short = 'p', long = "unicast-port", global = true)]
    pub port: Option<u16>,
}

#[derive(Args, Debug, Clone)]
pub struct LockArgs {
    /// The resource to lock: name (simple), name[N] (numeric), a.b.c (set), /a/b
    /// (hierarchical), _s_name[N] / _S_name[N] (sequence), _t_FORMAT[N] (timestamp).
    #[arg(short = 'r', long = "resource-name")]
    pub resource: Option<String>,
    /// Lock mode for simple and hierarchical resources: NL CR CW PR PW EX (or long names).
    #[arg(short = 'l', long = "lock-mode")]
    pub mode: Option<String>,
    /// Units of a numeric resource to take.
    #[arg(short = 'q', long = "resource-quantity")]
    pub quantity: Option<i64>,
    /// How long to wait for the lock, ms: -1 forever, 0 do not wait.
    #[arg(short = 'o', long = "resource-timeout", default_value_t = -1)]
    pub timeout_ms: i64,
    /// Create the resource if it does not exist (yes/no); with no, wait until someone does.
    #[arg(short = 'e', long = "resource-create")]
    pub create: Option<String>,
    /// How long the resource outlives its last client, ms.
    #[arg(short = 'i', long = "resource-idle-lifespan", default_value_t = 0)]
    pub resource_lifespan_ms: i64,
    /// Lifespan of an auto-started daemon, ms: 0 never start one, negative run forever.
    #[arg(short = 'd', long = "daemon-lifespan", default_value_t = DEFAULT_LIFESPAN_MS)]
    pub daemon_lifespan_ms: i64,
    /// Ask the daemon to shut down when idle (quiesce).
    #[arg(short = 'x', long = "quiesce-exit")]
    pub quiesce: bool,
    /// Ask the daemon to exit at once (immediate).
    #[arg(short = 'X', long = "immediate-exit")]
    pub immediate: bool,
}

#[derive(Subcommand, Debug)]
pub enum Sub {
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
pub struct DaemonArgs {
    /// Exit after this long idle, ms; negative: never.
    #[arg(short = 'd', long = "daemon-lifespan", default_value_t = -1)]
    pub lifespan_ms: i64,
    /// Test hooks, as FLoM's --debug-feature: `hang-on-lock=NAME` makes the thread that
    /// owns the lock table block forever, holding it, when a lock for NAME arrives.
    #[arg(long = "debug-feature", value_name = "FEATURE")]
    pub debug_feature: Vec<String>,
    /// Internal: started by a client; detach and report readiness on stdout.
    #[arg(long, hide = true)]
    pub spawned: bool,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
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
pub struct AdminArgs {
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
    pub fn endpoint(&self) -> Result<Endpoint, EndpointConflict> {
        match (&self.socket, &self.address) {
            (Some(_), Some(_)) => Err(EndpointConflict),
            (None, Some(addr)) => Ok(Endpoint::Tcp(
                addr.clone(),
                self.port.unwrap_or(DEFAULT_PORT),
            )),
            (Some(path), None) => Ok(Endpoint::Unix(path.clone())),
            (None, None) => Ok(Endpoint::Unix(default_socket())),
        }
    }
}

/// `-s` together with `-a`.
#[derive(Debug, thiserror::Error)]
#[error("-s (Unix socket) and -a (TCP address) cannot be used together")]
pub struct EndpointConflict;

/// flom's default socket: `/tmp/flom-<login>`.
pub fn default_socket() -> PathBuf {
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
