//! Processes by pid: whether one runs, ending one (SIGTERM, then SIGKILL), reaping, the
//! child subreaper, children and threads through /proc.
//!
//! It may signal only the pid it is given (never by name: other daemons on the machine are
//! not ours) and may not wait without a bound.

use crate::timeouts::{POLL, STOP};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

/// SIGTERM, then SIGKILL after [`STOP`], then reap: by this child's pid only.
pub fn end_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = Pid::from_raw(child.id() as i32);
    // Errors mean the process is already gone; reaping below settles it either way.
    let _ = kill(pid, Signal::SIGTERM);
    if wait_child_within(child, STOP).is_some() {
        return;
    }
    let _ = kill(pid, Signal::SIGKILL);
    let _ = child.wait();
}

/// Waits for `child` to exit, at most `timeout`; `None` if it still runs.
pub fn wait_child_within(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// Sends `signal` to `pid`; the test fails if it cannot.
pub fn signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(pid as i32), signal)
        .unwrap_or_else(|e| panic!("{signal} to pid {pid}: {e}"));
}

/// Makes this process the reaper of its orphaned descendants (detached daemons, the command
/// of a killed client), so that they can be reaped by pid instead of lingering as zombies.
pub fn become_subreaper() {
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
}

/// The state letter and the parent of `pid`, from /proc/PID/stat.
fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = after_comm(&stat)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// What follows `pid (comm) ` in a stat line: comm may hold spaces and parentheses, so it
/// ends at the last ')'.
fn after_comm(stat: &str) -> Option<&str> {
    stat.get(stat.rfind(')')? + 1..).map(str::trim_start)
}

/// Whether `pid` is a process that has not exited (a zombie counts as exited).
pub fn running(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// Ends `pid` (SIGTERM, then SIGKILL) and reaps it if it is our child.
pub fn end_pid(pid: i32) {
    let deadline = Instant::now() + STOP;
    if running(pid) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    while running(pid) && Instant::now() < deadline {
        thread::sleep(POLL);
    }
    if running(pid) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        while running(pid) && Instant::now() < deadline + STOP {
            thread::sleep(POLL);
        }
    }
    reap(pid);
}

/// Reaps `pid` if it is an exited child of ours (an orphan reparented to us).
pub fn reap(pid: i32) {
    let me = std::process::id() as i32;
    if proc_stat(pid).is_some_and(|(state, ppid)| ppid == me && state == 'Z') {
        let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
    }
}

/// The children of `pid` (all its threads'), by pid.
pub fn children_of(pid: u32) -> Vec<i32> {
    task_ids(pid)
        .into_iter()
        .filter_map(|tid| std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The thread ids of `pid`, sorted; none if it is gone.
pub fn task_ids(pid: u32) -> Vec<i32> {
    let mut tids: Vec<i32> = std::fs::read_dir(task_dir(pid))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    tids
}

/// The state letter of every thread of `pid` that is still there.
pub fn thread_states(pid: u32) -> Vec<char> {
    task_ids(pid)
        .into_iter()
        .filter_map(|tid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
            after_comm(&stat)?.chars().next()
        })
        .collect()
}

/// `/proc/PID/task`.
pub fn task_dir(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/task"))
}

/// The value of `field` in /proc/PID/status ("" if there is none); the test fails if the
/// process is gone.
pub fn proc_status(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("pid {pid} has no /proc status (it is gone?): {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{after_comm, running, thread_states};

    #[test]
    fn a_stat_line_is_read_after_the_last_parenthesis_of_comm() {
        assert_eq!(after_comm("12 (a) b)) S 1 2"), Some("S 1 2"));
        assert_eq!(after_comm("no comm here"), None);
    }

    #[test]
    fn this_process_runs_and_its_threads_are_seen() {
        let me = std::process::id();
        assert!(running(me as i32));
        assert!(!thread_states(me).is_empty());
    }
}
