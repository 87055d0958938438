//! Starting a daemon when none answers (as flom's client does), and the started daemon's
//! side of that: detach, take the start-up lock, report readiness.
//!
//! Concurrent starters race on `flock(<socket>.lock)` (or the multicast group's lock):
//! exactly one binds; the others find the lock taken and simply retry connecting (or
//! discovering) until the winner answers.
//!
//! Starts and detaches; what the started daemon does is [`latch::server`]'s, how a daemon
//! is discovered [`super::discover`]'s.

use super::client::{TlsJob, Trace};
use super::discover::{self, Discovery, Failure, Multicast};
use super::stream::{connect, ClientStream};
use latch::net::{Endpoint, Keepalive};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a client keeps retrying while a daemon it (or a rival) started comes up.
const START_PATIENCE: Duration = Duration::from_secs(5);

/// What a daemon started by a client is given.
pub(crate) struct Start {
    /// Its lifespan, ms (`-d`): 0 starts none, negative runs forever.
    pub lifespan_ms: i64,
    /// For the TCP connections it accepts.
    pub keepalive: Keepalive,
    /// Where it writes its log (`-t`), if anywhere.
    pub trace: Option<Trace>,
    /// The group it answers discovery on (`-A`), if any.
    pub multicast: Option<Multicast>,
    /// Where it serves FLoM's VFS (`-m`), if anywhere.
    pub vfs: Option<PathBuf>,
    /// TLS, which it speaks too.
    pub tls: Option<TlsJob>,
}

/// How a client reaches the daemon: at a known endpoint, or by discovery (`-A` without
/// `-a`).
#[derive(Clone, Debug)]
pub(crate) enum Route {
    Direct(Endpoint),
    Discover(Discovery),
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Direct(endpoint) => write!(f, "{endpoint}"),
            Route::Discover(d) => write!(
                f,
                "the daemon answering on {}/{}",
                d.multicast.address, d.multicast.port
            ),
        }
    }
}

/// Connects along `route`, starting a daemon (as `start` says) when nobody is there and
/// the lifespan is not 0; `Err` is FLoM's failure (its return code and text).
pub(crate) fn connect_route(route: &Route, start: &Start) -> Result<ClientStream, Failure> {
    match route {
        Route::Direct(endpoint) => connect_or_start(endpoint, start).map_err(|e| {
            tracing::info!("cannot connect to {endpoint}: {e}");
            Failure::Connect
        }),
        Route::Discover(d) => discover_or_start(d, start),
    }
}

/// Connects along `route` without starting anything (`-x`, `-X`).
pub(crate) fn connect_only(route: &Route) -> Result<ClientStream, Failure> {
    let endpoint = match route {
        Route::Direct(endpoint) => endpoint.clone(),
        Route::Discover(d) => discover::find(d)?,
    };
    connect(&endpoint).map_err(|_| Failure::Connect)
}

/// FLoM's `flom_client_connect` for discovery: nobody answering starts a daemon for the
/// group, unless the lifespan is 0 (that is a connect error), and asks again (while the
/// winner of a start-up race comes up); nobody answering then is FLoM's "peer is not
/// ready".
fn discover_or_start(d: &Discovery, start: &Start) -> Result<ClientStream, Failure> {
    let found = match discover::find(d) {
        Err(Failure::NoAnswer) if start.lifespan_ms == 0 => return Err(Failure::Connect),
        Err(Failure::NoAnswer) => {
            // No endpoint of its own: `start.multicast` is the group it answers on.
            start_daemon(&[], start).map_err(|e| {
                tracing::info!("cannot start a daemon: {e}");
                Failure::Connect
            })?;
            let deadline = Instant::now() + START_PATIENCE;
            loop {
                match discover::find(d) {
                    Err(Failure::NoAnswer) if Instant::now() < deadline => continue,
                    found => break found?,
                }
            }
        }
        found => found?,
    };
    connect(&found).map_err(|e| {
        tracing::info!("cannot connect to {found}: {e}");
        Failure::Connect
    })
}

/// Connects to `endpoint`; if nobody listens and the lifespan is not 0, starts a daemon
/// as `start` says and connects to it.
pub(crate) fn connect_or_start(endpoint: &Endpoint, start: &Start) -> io::Result<ClientStream> {
    match connect(endpoint) {
        Ok(s) => Ok(s),
        Err(e) if start.lifespan_ms != 0 && nobody_listens(&e) => {
            start_daemon(&endpoint_args(endpoint), start)?;
            let deadline = Instant::now() + START_PATIENCE;
            loop {
                match connect(endpoint) {
                    Ok(s) => return Ok(s),
                    Err(e) if Instant::now() < deadline && nobody_listens(&e) => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(e) => Err(e),
    }
}

fn nobody_listens(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// A started daemon's `-s`, or `-a` and `-p`.
fn endpoint_args(endpoint: &Endpoint) -> Vec<String> {
    match endpoint {
        Endpoint::Unix(p) => vec!["-s".into(), p.to_string_lossy().into_owned()],
        Endpoint::Tcp(a, p) => vec!["-a".into(), a.clone(), "-p".into(), p.to_string()],
    }
}

/// A started daemon's `-A`, `-P` and `-n`.
fn discovery_args(m: &Multicast) -> Vec<String> {
    let mut args = vec![
        "-A".into(),
        m.address.clone(),
        "-P".into(),
        m.port.to_string(),
    ];
    if let Some(interface) = &m.interface {
        args.extend(["-n".into(), interface.clone()]);
    }
    args
}

/// Runs `latch daemon --spawned` where `place` says (none: on an ephemeral port, found by
/// discovery) and waits until it reports (ready, or lost the race).
fn start_daemon(place: &[String], start: &Start) -> io::Result<()> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    let Keepalive {
        time,
        intvl,
        probes,
    } = start.keepalive;
    cmd.arg("daemon")
        .arg("--spawned")
        .arg("-d")
        .arg(start.lifespan_ms.to_string())
        .arg(format!("--tcp-keepalive-time={time}"))
        .arg(format!("--tcp-keepalive-intvl={intvl}"))
        .arg(format!("--tcp-keepalive-probes={probes}"));
    if let Some(trace) = &start.trace {
        cmd.arg("--trace-file").arg(&trace.path);
        if trace.append {
            cmd.arg("--append-trace-file");
        }
    }
    if let Some(dir) = &start.vfs {
        cmd.arg("--mount-point-vfs").arg(dir);
    }
    if let Some(tls) = &start.tls {
        cmd.arg("--tls-certificate")
            .arg(absolute(&tls.files.certificate))
            .arg("--tls-private-key")
            .arg(absolute(&tls.files.private_key))
            .arg("--tls-ca-certificate")
            .arg(absolute(&tls.files.ca_certificate));
        if tls.check_peer_id {
            cmd.arg("--tls-check-peer-id");
        }
    }
    cmd.args(place);
    // With a group configured it answers discovery, at a known endpoint too (FLoM's).
    if let Some(m) = &start.multicast {
        cmd.args(discovery_args(m));
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        // One line when ready (or nothing if it lost the start-up race or failed).
        let _ = BufReader::new(out).read_line(&mut line);
    }
    // The child forks the real daemon and exits at once; reap it.
    let _ = child.wait();
    Ok(())
}

/// A path as the daemon must be given it: it changes directory to / when it detaches.
fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The start-up lock's path for a daemon at an endpoint or, when it has none of its own
/// (an ephemeral port found by discovery), for its multicast group in this network
/// namespace (a group is one per network, and /tmp is shared between namespaces).
pub(crate) fn lock_path(endpoint: &Endpoint, group: Option<&latch::discovery::Group>) -> PathBuf {
    match (endpoint, group) {
        (Endpoint::Tcp(_, 0), Some(g)) => {
            use std::os::unix::fs::MetadataExt;
            let net = std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino());
            PathBuf::from(format!(
                "/tmp/latch-mcast-{net}-{}-{}.lock",
                g.address, g.port
            ))
        }
        (Endpoint::Unix(p), _) => {
            let mut s = p.clone().into_os_string();
            s.push(".lock");
            PathBuf::from(s)
        }
        (Endpoint::Tcp(a, p), _) => PathBuf::from(format!("/tmp/latch-tcp-{a}-{p}.lock")),
    }
}

/// The spawned daemon's first steps: a new session, a second fork (so no client ever has
/// to reap the daemon), and the start-up lock. Returns the held lock in the daemon process
/// (keep it for the daemon's life), or `None` if another daemon is starting (exit then).
/// Must run before any thread is started.
pub(crate) fn detach_and_lock(lock: &std::path::Path) -> io::Result<Option<Flock<File>>> {
    nix::unistd::setsid().map_err(io::Error::from)?;
    // SAFETY: the process has one thread here: `cli::daemon::run` calls this before it
    // starts logging, the admin thread or anything else.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Parent { .. } => std::process::exit(0),
        nix::unistd::ForkResult::Child => {}
    }
    let _ = std::env::set_current_dir("/");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o666)
        .open(lock)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e.into()),
    }
}

/// Tells the starting client the daemon listens, then lets go of the pipe.
pub(crate) fn report_ready() {
    let mut out = io::stdout();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    if let Ok(devnull) = File::open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto our own stdout; both descriptors are valid.
        unsafe { libc::dup2(devnull.as_raw_fd(), libc::STDOUT_FILENO) };
    }
}
