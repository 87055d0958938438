//! What can stop a capture, each with what failed and what to do about it, and the exit code
//! the command line gives it. The codes are stable (scripts rely on them, `docs/`):
//! 0 ok, 1 usage or another failure, 2 target not found or not permitted, 3 not a latch
//! daemon or missing debug info, 4 torn or partial result.
//!
//! Plain classification: nothing here reads a process or a file.

use crate::executable::DEBUG_ROOT_ENV;
use dwarfpeek::debuginfo::{DebugInfoError, LoadBiasError};
use dwarfpeek::inspect::InspectError;
use dwarfpeek::memory::{CoreError, FreezeError, MapsError, MemoryError, SnapshotError};
use dwarfpeek::process::ProcError;
use dwarfpeek::stacks::StacksError;
use nix::errno::Errno;
use std::path::PathBuf;
use thiserror::Error;

/// The exit codes of the probe's commands.
pub mod exit_code {
    pub const OK: u8 = 0;
    /// Bad arguments, or a failure that fits none of the codes below.
    pub const USAGE: u8 = 1;
    pub const TARGET_NOT_FOUND_OR_NOT_PERMITTED: u8 = 2;
    pub const NOT_A_LATCH_DAEMON: u8 = 3;
    pub const TORN_OR_PARTIAL: u8 = 4;
}

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("no process {pid}: it is not running (or has exited); check the pid")]
    NoSuchProcess { pid: u32 },
    #[error(
        "not permitted to inspect process {pid} ({what}); run the probe as root, or as the \
         daemon's user with ptrace allowed (sysctl kernel.yama.ptrace_scope)"
    )]
    NotPermitted { pid: u32, what: String },
    #[error("cannot read {}: {error}; check the path and that you may read it", path.display())]
    FileNotReadable {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The executable lacks the daemon's lock table or the debug info to find it.
    #[error(
        "{} is not a latch daemon the probe can read: {reason}; point the probe at a `latch` \
         built with debug info (cargo's `debug = true`, not stripped)",
        exe.display()
    )]
    NotALatchDaemon { exe: PathBuf, reason: String },
    /// The daemon's types do not have the names `docs/contract.md` promises.
    #[error(
        "{} breaks the probe/daemon contract: {reason}; the daemon and the probe come from \
         different versions (see docs/contract.md)",
        exe.display()
    )]
    Contract { exe: PathBuf, reason: String },
    #[error(
        "cannot stop process {pid} for a consistent copy: {error}; try again, or read it \
         without stopping it (--no-freeze)"
    )]
    Freeze { pid: u32, error: FreezeError },
    #[error("cannot read the memory map of process {pid}: {error}")]
    Maps { pid: u32, error: MapsError },
    #[error("cannot copy the memory of process {pid}: {error}")]
    Snapshot { pid: u32, error: SnapshotError },
    #[error(
        "cannot place {} in the target's address space: {error}",
        exe.display()
    )]
    LoadBias { exe: PathBuf, error: LoadBiasError },
    #[error("cannot open the core file: {0}")]
    Core(CoreError),
    /// Nothing of the lock table could be decoded (memory is garbage, or missing from a
    /// core): there is no document to show.
    #[error(
        "the lock table could not be decoded: {reason}; the memory is damaged or incomplete \
         (a core without its heap?)"
    )]
    Unreadable { reason: String },
    /// An executable that is not a latch daemon's could not be indexed (`print`, `type`).
    #[error("{}", with_debug_root_hint(.0))]
    DebugInfo(DebugInfoError),
    /// `print` or `type` on a target that opened.
    #[error(transparent)]
    Inspect(InspectError),
}

/// A missing debug file's message, with the probe's own way to point at one.
fn with_debug_root_hint(error: &DebugInfoError) -> String {
    match error {
        DebugInfoError::NoDebugFile { .. } => {
            format!("{error}; or point {DEBUG_ROOT_ENV} at the directory holding its `.build-id/`")
        }
        other => other.to_string(),
    }
}

impl From<ProcError> for ProbeError {
    fn from(error: ProcError) -> ProbeError {
        match error {
            ProcError::NoSuchProcess { pid } => ProbeError::NoSuchProcess { pid },
            ProcError::NotPermitted { pid, path, error } => ProbeError::NotPermitted {
                pid,
                what: format!("reading {path}: {error}"),
            },
            ProcError::Read { path, error } => ProbeError::FileNotReadable {
                path: PathBuf::from(path),
                error,
            },
        }
    }
}

impl From<StacksError> for ProbeError {
    fn from(error: StacksError) -> ProbeError {
        match error {
            StacksError::Proc(error) => error.into(),
            StacksError::Maps { pid, error } => ProbeError::Maps { pid, error },
            StacksError::Freeze { pid, error } => ProbeError::Freeze { pid, error },
        }
    }
}

impl From<InspectError> for ProbeError {
    /// Opening a core or placing its executable keeps its own code; the rest are failures
    /// of `print` and `type` themselves.
    fn from(error: InspectError) -> ProbeError {
        match error {
            InspectError::Core(error) => ProbeError::Core(error),
            InspectError::LoadBias { exe, error } => ProbeError::LoadBias { exe, error },
            InspectError::DebugInfo(error) => ProbeError::DebugInfo(error),
            other => ProbeError::Inspect(other),
        }
    }
}

impl ProbeError {
    /// The exit code the command line gives this error.
    pub fn exit_code(&self) -> u8 {
        use exit_code::*;
        match self {
            ProbeError::NoSuchProcess { .. } | ProbeError::NotPermitted { .. } => {
                TARGET_NOT_FOUND_OR_NOT_PERMITTED
            }
            ProbeError::FileNotReadable { .. } => TARGET_NOT_FOUND_OR_NOT_PERMITTED,
            ProbeError::Core(CoreError::Read { .. }) => TARGET_NOT_FOUND_OR_NOT_PERMITTED,
            ProbeError::Freeze { error, .. } => match error {
                FreezeError::Gone { .. } | FreezeError::Proc { .. } => {
                    TARGET_NOT_FOUND_OR_NOT_PERMITTED
                }
                FreezeError::Seize {
                    errno: Errno::EPERM | Errno::ESRCH,
                    ..
                } => TARGET_NOT_FOUND_OR_NOT_PERMITTED,
                _ => USAGE,
            },
            ProbeError::Maps { .. } => TARGET_NOT_FOUND_OR_NOT_PERMITTED,
            ProbeError::NotALatchDaemon { .. } | ProbeError::Contract { .. } => NOT_A_LATCH_DAEMON,
            ProbeError::LoadBias { .. } => NOT_A_LATCH_DAEMON,
            ProbeError::Unreadable { .. } => TORN_OR_PARTIAL,
            ProbeError::Snapshot { .. } | ProbeError::Core(_) => USAGE,
            ProbeError::DebugInfo(_) | ProbeError::Inspect(_) => USAGE,
        }
    }

    /// The error for an executable that could not be opened or indexed.
    pub(crate) fn from_debug_info(exe: PathBuf, error: DebugInfoError) -> ProbeError {
        match error {
            DebugInfoError::Read { path, error } => ProbeError::FileNotReadable { path, error },
            other => ProbeError::NotALatchDaemon {
                exe,
                reason: with_debug_root_hint(&other),
            },
        }
    }

    /// The error for a read of a live process that failed outright.
    pub(crate) fn from_memory(pid: u32, error: &MemoryError) -> ProbeError {
        match error {
            MemoryError::Process {
                errno: Errno::ESRCH,
                ..
            } => ProbeError::NoSuchProcess { pid },
            MemoryError::Process {
                errno: Errno::EPERM,
                ..
            } => ProbeError::NotPermitted {
                pid,
                what: error.to_string(),
            },
            other => ProbeError::Unreadable {
                reason: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_documented_code() {
        let exe = PathBuf::from("/bin/sleep");
        let cases = [
            (ProbeError::NoSuchProcess { pid: 1 }, 2),
            (
                ProbeError::NotPermitted {
                    pid: 1,
                    what: "ptrace".into(),
                },
                2,
            ),
            (
                ProbeError::from_debug_info(
                    exe.clone(),
                    DebugInfoError::NoDebugInfo { path: exe.clone() },
                ),
                3,
            ),
            (
                ProbeError::Contract {
                    exe,
                    reason: "x".into(),
                },
                3,
            ),
            (ProbeError::Unreadable { reason: "x".into() }, 4),
            (
                ProbeError::from_memory(
                    7,
                    &MemoryError::Process {
                        pid: 7,
                        address: 0,
                        len: 1,
                        errno: Errno::ESRCH,
                    },
                ),
                2,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.exit_code(), code, "{error}");
        }
    }
}
