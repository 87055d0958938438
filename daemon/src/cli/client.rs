//! The flom-compatible client: lock a resource, run a command while holding it, unlock
//! (with rollback when the command failed), exit with the command's status. Exit codes and
//! messages are flom's (as recorded in tests/data/flom-transcripts.md); where flom is at
//! fault (a command killed by a signal reported as success), latch differs and
//! `docs/flom-differences.md` says so.
//!
//! Runs a [`Job`] already lowered from the command line ([`super::options`]); reads no
//! option itself.

#![forbid(unsafe_code)]

use super::autostart::{connect_only, connect_route, Route, Start};
use super::debug_feature::{self, Feature};
use super::discover::Multicast;
use super::exit;
use super::session::machine_id;
use super::signals;
use super::stream::{is_timeout, secure, ClientStream};
use latch::net::Keepalive;
use latch::timefmt;
use latch::tls::{PeerCert, Tls, TlsFiles};
use latch::wire::framer::Framer;
use latch::wire::write::{format_lock, format_shutdown, format_unlock};
use latch::wire::{self, LockMsg, Rc};
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// What the client was asked to do, in plain values (see [`super::options`]).
pub(crate) enum Job {
    /// Lock, run the command while holding the lock, unlock.
    Lock(Box<LockJob>),
    /// `-x` (quiesce) or `-X` (immediate): ask the daemon to shut down.
    Shutdown {
        route: Route,
        immediate: bool,
        tls: Option<TlsJob>,
    },
    /// `--debug-feature`: one of FLoM's checks of the network set-up.
    Debug {
        feature: Feature,
        route: Route,
        tls: Option<TlsJob>,
    },
}

/// TLS as asked (`--tls-*` or `[TLS]`, all three files given).
#[derive(Debug, Clone)]
pub(crate) struct TlsJob {
    pub files: TlsFiles,
    /// Check the daemon's peer id against its certificate's CN (and have a started daemon
    /// check the clients').
    pub check_peer_id: bool,
}

pub(crate) struct LockJob {
    pub route: Route,
    /// The discovery group (`-A`), which a daemon this client starts answers on.
    pub multicast: Option<Multicast>,
    /// The request, as sent.
    pub msg: LockMsg,
    /// How long to wait for the grant, ms (`-o`): negative forever, 0 not at all.
    pub timeout_ms: i64,
    /// The lifespan of a daemon started for this lock, ms (`-d`): 0 starts none.
    pub daemon_lifespan_ms: i64,
    /// Not empty; the granted element, if any, is appended.
    pub command: Vec<OsString>,
    /// Signal numbers this process ignores while the command runs (`--ignore-signal`).
    pub ignored_signals: Vec<i32>,
    /// For the TCP connection, and for a daemon this client starts.
    pub keepalive: Keepalive,
    /// Where a daemon this client starts writes its log (`-t`).
    pub daemon_trace: Option<Trace>,
    /// Where a daemon this client starts serves FLoM's VFS (`-m`, absolute).
    pub vfs: Option<std::path::PathBuf>,
    /// TLS on the connection, and for a daemon this client starts.
    pub tls: Option<TlsJob>,
}

/// A trace file (`-t`, `-T`) and whether to append to it (`--append-trace-file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trace {
    pub path: std::path::PathBuf,
    pub append: bool,
}

/// Runs the client as flom does; returns the process exit status.
pub(crate) fn run(job: Job) -> i32 {
    match job {
        Job::Lock(job) => lock_and_run(&job),
        Job::Shutdown {
            route,
            immediate,
            tls,
        } => shutdown(&route, immediate, tls.as_ref()),
        Job::Debug {
            feature,
            route,
            tls,
        } => debug_feature::run(feature, &route, tls.as_ref()),
    }
}

/// Locks, runs the command holding the lock, unlocks (rolling back if it failed).
fn lock_and_run(job: &LockJob) -> i32 {
    let LockJob {
        route,
        multicast,
        msg,
        timeout_ms,
        daemon_lifespan_ms,
        command,
        ignored_signals,
        keepalive,
        daemon_trace,
        vfs,
        tls,
    } = job;
    let start = Start {
        lifespan_ms: *daemon_lifespan_ms,
        keepalive: *keepalive,
        trace: daemon_trace.clone(),
        multicast: multicast.clone(),
        vfs: vfs.clone(),
        tls: tls.clone(),
    };
    let stream = match connect_route(route, &start) {
        Ok(s) => s,
        Err(failure) => {
            eprintln!(
                "flom_client_connect: ret_cod={} ({})",
                failure.rc(),
                failure.text()
            );
            return exit::ERROR;
        }
    };
    let (mut stream, daemon_cert) = match secure_if_asked(stream, tls.as_ref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // FLoM checks the daemon's peer id only when asked.
    let daemon_cert = daemon_cert.filter(|_| tls.as_ref().is_some_and(|t| t.check_peer_id));
    if let Err(e) = stream.set_keepalive(keepalive) {
        eprintln!("latch: cannot set TCP keepalive ({keepalive:?}) on the connection to {route}: {e}; give valid --tcp-keepalive-* values");
        return exit::ERROR;
    }
    tracing::info!("connected to {route}; locking {:?}", msg.name);
    let element = match lock(&mut stream, msg, *timeout_ms, daemon_cert.as_ref()) {
        Ok(element) => element,
        Err(code) => {
            disconnect(&mut stream);
            return code;
        }
    };
    tracing::info!("granted {:?}, element {element:?}", msg.name);
    let (status, rollback) = run_command(command, element.as_deref(), ignored_signals);
    tracing::info!("command exited with {status}; unlocking (rollback {rollback})");
    if stream
        .send_message(&format_unlock(&msg.name, rollback))
        .is_err()
    {
        eprintln!(
            "flom_client_unlock: ret_cod=-130 (ERROR: 'send' function returned an error condition)"
        );
        return exit::ERROR;
    }
    disconnect(&mut stream);
    status
}

/// FLoM's switch to TLS after connecting, when asked; `Err` is the exit status (FLoM's
/// message printed). Returns the daemon's certificate with a TLS stream.
fn secure_if_asked(
    stream: ClientStream,
    tls: Option<&TlsJob>,
) -> Result<(ClientStream, Option<PeerCert>), i32> {
    let Some(job) = tls else {
        return Ok((stream, None));
    };
    match Tls::client(&job.files).and_then(|tls| secure(stream, &tls)) {
        Ok((stream, cert)) => Ok((stream, Some(cert))),
        Err(e) => {
            eprintln!("flom_client_connect: ret_cod={} ({e})", e.rc());
            Err(exit::ERROR)
        }
    }
}

/// Sends the lock and waits for the grant; `Err` is the exit status (message printed).
/// With `daemon_cert`, the first answer's peer id must be its CN (FLoM's peer-id check).
fn lock(
    stream: &mut ClientStream,
    msg: &LockMsg,
    timeout_ms: i64,
    mut daemon_cert: Option<&PeerCert>,
) -> Result<Option<String>, i32> {
    let recv_error = || {
        eprintln!(
            "flom_client_lock: ret_cod=-126 (ERROR: 'recv' function returned an error condition)"
        );
        exit::ERROR
    };
    if stream
        .send_message(&format_lock(&machine_id(), msg))
        .is_err()
    {
        eprintln!(
            "flom_client_lock: ret_cod=-130 (ERROR: 'send' function returned an error condition)"
        );
        return Err(exit::ERROR);
    }
    let per_message = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64));
    let mut framer = Framer::default();
    loop {
        let answer = match read_message(stream, &mut framer, per_message) {
            Ok(Some(bytes)) => {
                if let Some(cert) = daemon_cert.take() {
                    if let Err(e) = cert.check_id(wire::session_peerid(&bytes)) {
                        eprintln!("flom_client_lock: ret_cod={} ({e})", e.rc());
                        return Err(exit::ERROR);
                    }
                }
                wire::parse_answer(&bytes).map_err(|_| recv_error())?
            }
            Ok(None) => return Err(recv_error()),
            Err(e) if is_timeout(&e) => {
                eprintln!(
                    "The lock was not obtained because timeout ({timeout_ms} milliseconds) expired"
                );
                return Err(exit::BUSY);
            }
            Err(_) => return Err(recv_error()),
        };
        match Rc::try_from(answer.rc) {
            Ok(Rc::Granted) => return Ok(answer.element),
            Ok(Rc::Queued | Rc::Incubated) => continue,
            Ok(Rc::Busy) => {
                eprintln!("Resource already locked, the lock cannot be obtained");
                return Err(exit::BUSY);
            }
            Ok(Rc::CannotWait) => {
                eprintln!(
                    "The resource could be available in the future, but the requester can't wait"
                );
                return Err(exit::CANT_WAIT);
            }
            Ok(Rc::Impossible) => {
                eprintln!("Resource will never satisfy the request, the lock cannot be obtained");
                return Err(exit::ERROR);
            }
            Ok(Rc::InvalidName | Rc::TooLong) | Err(_) => {
                eprintln!("flom_client_lock: ret_cod={}", answer.rc);
                return Err(exit::ERROR);
            }
        }
    }
}

/// Reads one whole message; `Ok(None)` on EOF. The timeout applies to this message, as
/// flom's per-receive timeout does.
fn read_message(
    stream: &mut ClientStream,
    framer: &mut Framer,
    timeout: Option<Duration>,
) -> io::Result<Option<Vec<u8>>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(msg) = framer
            .next_message()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        {
            return Ok(Some(msg));
        }
        let left = match deadline {
            Some(d) => Some(
                d.checked_duration_since(Instant::now())
                    .filter(|l| !l.is_zero())
                    .ok_or(io::ErrorKind::TimedOut)?,
            ),
            None => None,
        };
        stream.set_read_timeout(left)?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => framer.push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Runs the command with the element appended; returns (exit status, rollback).
/// The signals in `ignored` are ignored by this process, not the command, while it runs.
fn run_command(command: &[OsString], element: Option<&str>, ignored: &[i32]) -> (i32, bool) {
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]);
    if let Some(e) = element {
        cmd.arg(e);
    }
    let status = cmd.spawn().and_then(|mut child| {
        let _ignored = signals::ignore(ignored);
        child.wait()
    });
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => (code, code != 0),
            // flom reports a signalled command as success (exit 0, no rollback); a command
            // that was killed did not succeed.
            (None, Some(sig)) => (128 + sig, true),
            (None, None) => (exit::ERROR, true),
        },
        Err(_) => {
            let now = timefmt::format_timestamp("%H:%M:%S#fff", timefmt::now_ns());
            let shown = command[0].to_string_lossy();
            eprintln!(
                "\n** (latch:{}): WARNING **: {now}: Unable to execute command '{shown}'\n",
                std::process::id()
            );
            (exit::CANT_EXEC, true)
        }
    }
}

/// flom's goodbye: half-close, wait for the daemon's close, close.
fn disconnect(stream: &mut ClientStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut sink = [0u8; 1024];
    while let Ok(n) = stream.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}

/// `-x` / `-X`: ask the daemon to shut down.
fn shutdown(route: &Route, immediate: bool, tls: Option<&TlsJob>) -> i32 {
    let what = if immediate { "immediate" } else { "quiesce" };
    println!("Starting FLoM daemon {what} shutdown...");
    let _ = io::stdout().flush();
    let Ok(stream) = connect_only(route) else {
        return exit::ERROR;
    };
    let Ok((mut stream, _)) = secure_if_asked(stream, tls) else {
        return exit::ERROR;
    };
    if stream
        .send_message(&format_shutdown(&machine_id(), immediate))
        .is_err()
    {
        return exit::ERROR;
    }
    // flom waits up to a second for a reply that never comes, then says goodbye.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(if immediate {
        1000
    } else {
        200
    })));
    let mut sink = [0u8; 64];
    let _ = stream.read(&mut sink);
    disconnect(&mut stream);
    0
}
