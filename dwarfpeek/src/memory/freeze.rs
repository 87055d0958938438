//! Stopping every thread of a process for a consistent view of its memory, and letting it go
//! again: `PTRACE_SEIZE` + `PTRACE_INTERRUPT` on each thread (threads born meanwhile
//! included), and `PTRACE_DETACH` of each on every way out, panics included.
//!
//! It may not leave a process stopped that was running, nor running that was stopped, nor
//! swallow a signal that arrived during the freeze. A freeze should last only as long as a
//! bulk copy ([`super::Snapshot::capture`]); decoding happens after [`Freeze::resume`].

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How long a thread may take to stop before the freeze gives up.
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// How many times the thread list may change under the freeze before it gives up (a
/// process that spawns threads without end cannot be frozen this way).
const MAX_ROUNDS: usize = 100;
/// How long a release waits for a thread that had not stopped yet, so it can be detached.
const RELEASE_WAIT: Duration = Duration::from_millis(200);

#[derive(Debug, Error)]
pub enum FreezeError {
    #[error("cannot read {}: {error}; is process {pid} still running?", path.display())]
    Proc {
        pid: i32,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "cannot attach to thread {tid} of process {pid}: {errno}; EPERM means it is already \
         traced (a debugger: see TracerPid in /proc/{pid}/status) or we are not root"
    )]
    Seize { pid: i32, tid: i32, errno: Errno },
    #[error(
        "thread {tid} of process {pid} did not stop within {timeout:?}; a thread in \
         uninterruptible sleep (state D) stops only when it leaves the kernel"
    )]
    Timeout {
        pid: i32,
        tid: i32,
        timeout: Duration,
    },
    #[error("waiting for thread {tid} of process {pid} to stop failed: {errno}")]
    Wait { pid: i32, tid: i32, errno: Errno },
    #[error(
        "process {pid} kept creating threads through {MAX_ROUNDS} rounds of the freeze; \
         it cannot be frozen consistently"
    )]
    Unstable { pid: i32 },
    #[error("process {pid} has no threads left to freeze; it has exited")]
    Gone { pid: i32 },
    #[error(
        "resuming thread {tid} of process {pid} failed: {errno}; it stays attached until \
         this probe exits"
    )]
    Detach { pid: i32, tid: i32, errno: Errno },
}

/// A thread this freeze attached to.
struct Seized {
    tid: Pid,
    /// Confirmed in a ptrace stop (only a stopped tracee can be detached).
    stopped: bool,
    /// A signal the thread was about to receive when it stopped, given back at detach.
    pending: Option<Signal>,
}

/// Every thread of a process, stopped until this is dropped or [`Freeze::resume`]d.
///
/// Not `Send`: the kernel binds a tracee to the thread that attached it, so waiting for and
/// detaching the threads must happen on the thread that froze them.
pub struct Freeze {
    pid: Pid,
    threads: Vec<Seized>,
    was_stopped: bool,
    frozen_at: Instant,
    _tracer_thread: PhantomData<*const ()>,
}

impl Freeze {
    /// Stops every thread of `pid`, waiting up to two seconds for each.
    pub fn new(pid: Pid) -> Result<Freeze, FreezeError> {
        Freeze::with_timeout(pid, DEFAULT_STOP_TIMEOUT)
    }

    /// Stops every thread of `pid`, waiting up to `timeout` for each one to stop.
    pub fn with_timeout(pid: Pid, timeout: Duration) -> Result<Freeze, FreezeError> {
        let was_stopped = process_state(pid)? == 'T';
        // Built first, so that every error below releases what was seized so far.
        let mut freeze = Freeze {
            pid,
            threads: Vec::new(),
            was_stopped,
            frozen_at: Instant::now(),
            _tracer_thread: PhantomData,
        };
        for _ in 0..MAX_ROUNDS {
            let born: Vec<Pid> = list_threads(pid)?
                .into_iter()
                .filter(|tid| !freeze.threads.iter().any(|s| s.tid == *tid))
                .collect();
            if born.is_empty() {
                if freeze.threads.iter().any(|s| s.stopped) {
                    return Ok(freeze);
                }
                return Err(FreezeError::Gone { pid: pid.as_raw() });
            }
            for tid in born {
                match ptrace::seize(tid, ptrace::Options::empty()) {
                    Ok(()) => {}
                    // Exited between the listing and now.
                    Err(Errno::ESRCH) => continue,
                    // The kernel refuses a thread that is exiting: it needs no freezing.
                    Err(Errno::EPERM) if is_exiting(pid, tid) => continue,
                    Err(errno) => {
                        return Err(FreezeError::Seize {
                            pid: pid.as_raw(),
                            tid: tid.as_raw(),
                            errno,
                        })
                    }
                }
                freeze.threads.push(Seized {
                    tid,
                    stopped: false,
                    pending: None,
                });
                // ESRCH: the thread exited; waiting below sees it go.
                let _ = ptrace::interrupt(tid);
            }
            let deadline = Instant::now() + timeout;
            for seized in freeze.threads.iter_mut().filter(|s| !s.stopped) {
                match wait_for_stop(seized.tid, deadline) {
                    Ok(Some(pending)) => {
                        seized.stopped = true;
                        seized.pending = pending;
                    }
                    // Gone: nothing to detach.
                    Ok(None) => seized.stopped = false,
                    Err(WaitError::Timeout) => {
                        return Err(FreezeError::Timeout {
                            pid: pid.as_raw(),
                            tid: seized.tid.as_raw(),
                            timeout,
                        })
                    }
                    Err(WaitError::Os(errno)) => {
                        return Err(FreezeError::Wait {
                            pid: pid.as_raw(),
                            tid: seized.tid.as_raw(),
                            errno,
                        })
                    }
                }
            }
            freeze.threads.retain(|s| s.stopped);
            freeze.frozen_at = Instant::now();
        }
        Err(FreezeError::Unstable { pid: pid.as_raw() })
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The threads that are stopped, in the order they were attached.
    pub fn threads(&self) -> Vec<Pid> {
        self.threads.iter().map(|s| s.tid).collect()
    }

    /// Whether the process was stopped (job control, state `T`) before the freeze; it is
    /// left stopped after it.
    pub fn was_stopped(&self) -> bool {
        self.was_stopped
    }

    /// How long the process has been fully frozen.
    pub fn frozen_for(&self) -> Duration {
        self.frozen_at.elapsed()
    }

    /// Lets every thread go, and says how long the freeze lasted; the first thread that
    /// could not be let go is an error (the others are let go all the same).
    pub fn resume(mut self) -> Result<Duration, FreezeError> {
        let frozen = self.frozen_for();
        self.release().map(|()| frozen)
    }

    fn release(&mut self) -> Result<(), FreezeError> {
        let mut first_error = None;
        let deadline = Instant::now() + RELEASE_WAIT;
        for seized in self.threads.drain(..) {
            let mut pending = seized.pending;
            if !seized.stopped {
                // Attached but not seen stopping (an error cut the freeze short): it must
                // stop before the kernel lets it be detached.
                match wait_for_stop(seized.tid, deadline) {
                    Ok(Some(signal)) => pending = signal,
                    Ok(None) => continue,
                    Err(_) => {}
                }
            }
            match ptrace::detach(seized.tid, pending) {
                // ESRCH: the thread died (SIGKILL) while stopped, or never stopped and stays
                // attached until this probe exits; either way there is nothing more to do.
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(errno) => {
                    first_error.get_or_insert(FreezeError::Detach {
                        pid: self.pid.as_raw(),
                        tid: seized.tid.as_raw(),
                        errno,
                    });
                }
            }
        }
        if self.was_stopped {
            // The kernel puts a group-stopped process back into its stop on detach (its
            // threads pass through `R` without running user code); the signal makes sure
            // of it, and the wait lets the caller see it settled. Failure means the process
            // is gone.
            let _ = kill(self.pid, Signal::SIGSTOP);
            let settle = Instant::now() + RELEASE_WAIT;
            while Instant::now() < settle && !all_stopped(self.pid) {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Freeze {
    fn drop(&mut self) {
        // Errors were reported by `resume` when it was called; a drop on an error path or
        // in a panic lets go of everything it can.
        let _ = self.release();
    }
}

enum WaitError {
    Timeout,
    Os(Errno),
}

/// Waits until `tid` is in a ptrace stop: `Some(signal)` with the signal it was about to
/// receive if the stop was a signal-delivery stop, `None` if the thread is gone.
fn wait_for_stop(tid: Pid, deadline: Instant) -> Result<Option<Option<Signal>>, WaitError> {
    let flags = WaitPidFlag::__WALL | WaitPidFlag::WNOHANG;
    let mut pause = Duration::from_micros(20);
    loop {
        match waitpid(tid, Some(flags)) {
            // The stop PTRACE_INTERRUPT (or a group stop) causes.
            Ok(WaitStatus::PtraceEvent(_, _, event))
                if event == ptrace::Event::PTRACE_EVENT_STOP as i32 =>
            {
                return Ok(Some(None))
            }
            // A signal-delivery stop: the signal is held for the tracer, which must pass it
            // on or it is lost.
            Ok(WaitStatus::Stopped(_, signal)) => return Ok(Some(Some(signal))),
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(Errno::ECHILD) => {
                return Ok(None)
            }
            Ok(WaitStatus::StillAlive) => {
                if Instant::now() >= deadline {
                    return Err(WaitError::Timeout);
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            // Other events are not asked for (no options are set); look again.
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(WaitError::Os(errno)),
        }
    }
}

/// The one-letter state in `/proc/PID/stat` (`R`, `S`, `D`, `T`, `t`, `Z`, ...).
fn process_state(pid: Pid) -> Result<char, FreezeError> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let proc_error = |error| FreezeError::Proc {
        pid: pid.as_raw(),
        path: path.clone(),
        error,
    };
    let text = std::fs::read_to_string(&path).map_err(proc_error)?;
    state_letter(&text).ok_or_else(|| proc_error(std::io::Error::other("no state field")))
}

/// The state in the text of a `stat` file: `pid (comm) S ...`, where the command may hold
/// spaces and parentheses, so it is the first letter after the last `)`.
fn state_letter(stat: &str) -> Option<char> {
    let after = stat.rfind(')')?;
    stat[after + 1..].trim_start().chars().next()
}

/// Whether every thread of `pid` is in a job-control stop (state `T`).
fn all_stopped(pid: Pid) -> bool {
    list_threads(pid).is_ok_and(|tids| {
        tids.iter().all(|tid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"));
            stat.ok().and_then(|text| state_letter(&text)) == Some('T')
        })
    })
}

/// Whether thread `tid` has exited or is exiting (state `Z` or `X`, or gone).
fn is_exiting(pid: Pid, tid: Pid) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"));
    let state = stat.ok().and_then(|text| state_letter(&text));
    matches!(state, None | Some('Z' | 'X'))
}

fn list_threads(pid: Pid) -> Result<Vec<Pid>, FreezeError> {
    let path = PathBuf::from(format!("/proc/{pid}/task"));
    let entries = std::fs::read_dir(&path).map_err(|error| FreezeError::Proc {
        pid: pid.as_raw(),
        path: path.clone(),
        error,
    })?;
    Ok(entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .map(Pid::from_raw)
        .collect())
}
