//! Starting a daemon when none answers (as flom's client does), and the started daemon's
//! side of that: detach, take the start-up lock, report readiness.
//!
//! Concurrent starters race on `flock(<socket>.lock)`: exactly one binds; the others find
//! the lock taken and simply retry connecting until the winner answers.
//!
//! Starts and detaches; what the started daemon does is [`latch::server`]'s.

use super::client::Trace;
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
pub struct Start {
    /// Its lifespan, ms (`-d`): 0 starts none, negative runs forever.
    pub lifespan_ms: i64,
    /// For the TCP connections it accepts.
    pub keepalive: Keepalive,
    /// Where it writes its log (`-t`), if anywhere.
    pub trace: Option<Trace>,
    /// Where it serves FLoM's VFS (`-m`), if anywhere.
    pub vfs: Option<PathBuf>,
}

/// Connects to `endpoint`; if nobody listens and the lifespan is not 0, starts a daemon
/// as `start` says and connects to it.
pub fn connect_or_start(endpoint: &Endpoint, start: &Start) -> io::Result<ClientStream> {
    match connect(endpoint) {
        Ok(s) => Ok(s),
        Err(e) if start.lifespan_ms != 0 && nobody_listens(&e) => {
            start_daemon(endpoint, start)?;
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

/// Runs `latch daemon --spawned` and waits until it reports (ready, or lost the race).
fn start_daemon(endpoint: &Endpoint, start: &Start) -> io::Result<()> {
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
    match endpoint {
        Endpoint::Unix(p) => cmd.arg("-s").arg(p),
        Endpoint::Tcp(a, p) => cmd.arg("-a").arg(a).arg("-p").arg(p.to_string()),
    };
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

/// The start-up lock's path for an endpoint.
pub fn lock_path(endpoint: &Endpoint) -> PathBuf {
    match endpoint {
        Endpoint::Unix(p) => {
            let mut s = p.clone().into_os_string();
            s.push(".lock");
            PathBuf::from(s)
        }
        Endpoint::Tcp(a, p) => PathBuf::from(format!("/tmp/latch-tcp-{a}-{p}.lock")),
    }
}

/// The spawned daemon's first steps: a new session, a second fork (so no client ever has
/// to reap the daemon), and the start-up lock. Returns the held lock in the daemon process
/// (keep it for the daemon's life), or `None` if another daemon is starting (exit then).
/// Must run before any thread is started.
pub fn detach_and_lock(endpoint: &Endpoint) -> io::Result<Option<Flock<File>>> {
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
        .open(lock_path(endpoint))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e.into()),
    }
}

/// Tells the starting client the daemon listens, then lets go of the pipe.
pub fn report_ready() {
    let mut out = io::stdout();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    if let Ok(devnull) = File::open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto our own stdout; both descriptors are valid.
        unsafe { libc::dup2(devnull.as_raw_fd(), libc::STDOUT_FILENO) };
    }
}
