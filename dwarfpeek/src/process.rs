//! What `/proc` says about a live process: whether it exists, its executable, its owner, its
//! pid in its own pid namespace, its command line, its threads (name and state letter). Read before the process is stopped, so the states are its own and not the
//! freeze's.
//!
//! Text files only; no memory is read here. Every field is parsed defensively: a process may
//! exit between two reads.

use std::io::ErrorKind;
use std::path::PathBuf;
use thiserror::Error;

/// One thread of a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadFacts {
    pub tid: u32,
    /// `comm` of the thread; empty from a core file.
    pub name: String,
    /// The state letter of /proc/PID/task/TID/stat before any freeze (R, S, D, T, t…), or
    /// from a core's prstatus.
    pub state: String,
}

/// What reading `/proc` about a process can meet.
#[derive(Debug, Error)]
pub enum ProcError {
    #[error("no process {pid}: it is not running (or has exited); check the pid")]
    NoSuchProcess { pid: u32 },
    #[error("not permitted to read {path} of process {pid}: {error}; run as root or as its user")]
    NotPermitted {
        pid: u32,
        path: String,
        error: std::io::Error,
    },
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
}

/// The kernel's mark on a mapped file deleted (or replaced) since it was mapped.
const DELETED: &str = " (deleted)";

/// The path of the executable the process runs, as the kernel names it in its mappings
/// (without the ` (deleted)` mark of a file replaced since).
pub fn exe_path(pid: u32) -> Result<PathBuf, ProcError> {
    let link = format!("/proc/{pid}/exe");
    let target = std::fs::read_link(&link).map_err(|error| proc_error(pid, &link, error))?;
    Ok(
        match target.to_str().and_then(|t| t.strip_suffix(DELETED)) {
            Some(stripped) => PathBuf::from(stripped),
            None => target,
        },
    )
}

/// The process's real user and group ids (the `Uid:` and `Gid:` lines of its status).
pub fn owner(pid: u32) -> Result<(u32, u32), ProcError> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|error| proc_error(pid, &path, error))?;
    let id = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|real| real.parse::<u32>().ok())
    };
    match (id("Uid:"), id("Gid:")) {
        (Some(uid), Some(gid)) => Ok((uid, gid)),
        // A status without them: the process is a zombie or gone.
        _ => Err(ProcError::NoSuchProcess { pid }),
    }
}

/// A process as its own pid namespace numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnPid {
    /// The namespace: the device and inode of `/proc/PID/ns/pid`.
    pub ns_dev: u64,
    pub ns_ino: u64,
    /// The process's id in it: the last of its status's `NSpid`, or the pid itself where the
    /// kernel writes no such line.
    pub pid: u32,
}

/// The process `pid` (as this process's namespace numbers it) as its own namespace does.
pub fn own_pid(pid: u32) -> Result<OwnPid, ProcError> {
    use std::os::unix::fs::MetadataExt;
    let ns_path = format!("/proc/{pid}/ns/pid");
    let ns = std::fs::metadata(&ns_path).map_err(|error| proc_error(pid, &ns_path, error))?;
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|error| proc_error(pid, &path, error))?;
    let inner = text
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))
        .and_then(|ids| ids.split_whitespace().last())
        .and_then(|id| id.parse().ok())
        .unwrap_or(pid);
    Ok(OwnPid {
        ns_dev: ns.dev(),
        ns_ino: ns.ino(),
        pid: inner,
    })
}

/// Every thread of the process with its name and state letter, by tid. Threads that exit
/// while they are listed are left out.
pub fn threads(pid: u32) -> Result<Vec<ThreadFacts>, ProcError> {
    let dir = format!("/proc/{pid}/task");
    let entries = std::fs::read_dir(&dir).map_err(|error| proc_error(pid, &dir, error))?;
    let mut threads: Vec<ThreadFacts> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|tid| {
            let stat = std::fs::read_to_string(format!("{dir}/{tid}/stat")).ok()?;
            let (name, state) = parse_stat(&stat)?;
            Some(ThreadFacts {
                tid,
                name,
                state: state.to_string(),
            })
        })
        .collect();
    threads.sort_by_key(|t| t.tid);
    Ok(threads)
}

/// Whether process `pid` exists (a zombie does, until it is reaped).
pub fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The process's command line, as `ps` shows it (`gone` once it has exited).
pub fn command_line(pid: u32) -> String {
    arguments(pid).map_or_else(|| "gone".to_owned(), |args| args.join(" "))
}

/// The process's arguments, lossily decoded (none for a kernel thread or a zombie);
/// `None` once it has exited.
pub fn arguments(pid: u32) -> Option<Vec<String>> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        bytes
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// The parent of a live process; `None` once it has exited or while it is a zombie (its
/// descriptors are closed: it holds nothing any more).
pub fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, state) = parse_stat(&stat)?;
    if matches!(state, 'Z' | 'X') {
        return None;
    }
    // The fields after the state: `ppid pgrp ...`.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    after.split_whitespace().nth(1)?.parse().ok()
}

/// `pid (comm) S ...`: the command may hold spaces and parentheses, so it runs to the last
/// `)`, and the state is the first letter after it.
fn parse_stat(stat: &str) -> Option<(String, char)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let state = stat.get(close + 1..)?.trim_start().chars().next()?;
    Some((name, state))
}

fn proc_error(pid: u32, path: &str, error: std::io::Error) -> ProcError {
    let path = path.to_owned();
    match error.kind() {
        ErrorKind::NotFound => ProcError::NoSuchProcess { pid },
        ErrorKind::PermissionDenied => ProcError::NotPermitted { pid, path, error },
        _ => ProcError::Read { path, error },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_names_may_hold_spaces_and_parentheses() {
        assert_eq!(
            parse_stat("12 (a (b) c) S 1 2 3"),
            Some(("a (b) c".to_owned(), 'S'))
        );
        assert_eq!(parse_stat("12 (x"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let mine = threads(me).expect("own threads");
        assert!(mine.iter().any(|t| t.tid == me), "{mine:?}");
        assert_eq!(
            exe_path(me).expect("own exe"),
            std::env::current_exe().unwrap()
        );
        let (uid, _) = owner(me).expect("own status");
        assert_eq!(uid, nix::unistd::getuid().as_raw());
        let own = own_pid(me).expect("own pid namespace");
        let ns = std::fs::metadata("/proc/self/ns/pid").unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((own.ns_dev, own.ns_ino, own.pid), (ns.dev(), ns.ino(), me));
        assert!(matches!(
            own_pid(u32::MAX),
            Err(ProcError::NoSuchProcess { .. })
        ));
        assert!(matches!(
            threads(u32::MAX),
            Err(ProcError::NoSuchProcess { .. })
        ));
    }
}
