//! The one way the probe opens a running process: pid → `/proc/PID/exe` (the very file it
//! runs, even if replaced on disk since) → its executable, with what can go wrong on the way
//! said in the pid's words once, here ("no process", "not permitted", a refusal naming the
//! executable's real path rather than the `/proc` link). A latch daemon for the commands
//! that read one ([`LiveDaemon`]); any Rust program for `print` and `type`
//! ([`inspect_live`]), and their core-file counterpart ([`inspect_core`]).
//!
//! It opens and, for `print`, copies; decoding is the model's and the inspector's.

use crate::capture::Capture;
use crate::error::ProbeError;
use crate::executable;
use crate::model::{duration_ns, CaptureOptions, DaemonImage};
use crate::stacks;
use dwarfpeek::debuginfo::{DebugInfoError, TypeIndex};
use dwarfpeek::inspect::Inspected;
use dwarfpeek::memory::{maps, CoreFile, Freeze, LiveProcess, Region, Snapshot};
use dwarfpeek::process;
use dwarfpeek::stacks::ThreadStack;
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Bytes of a process's data `print` and `type` copy at most.
const SNAPSHOT_BUDGET: u64 = 4 << 30;

/// A running latch daemon, its executable indexed.
#[derive(Debug)]
pub struct LiveDaemon {
    pid: u32,
    /// Its executable as the kernel names the mapping (for the load bias, and the reports).
    mapped: PathBuf,
    image: DaemonImage,
}

impl LiveDaemon {
    /// Opens the daemon `pid`, refusing a process that is not a latch daemon.
    pub fn open(pid: u32) -> Result<LiveDaemon, ProbeError> {
        let mapped = process::exe_path(pid)?;
        let image = DaemonImage::open(&proc_exe(pid)).map_err(|error| match error {
            ProbeError::FileNotReadable { error, .. } => unreadable_exe(pid, error),
            ProbeError::NotALatchDaemon { reason, .. } => ProbeError::NotALatchDaemon {
                exe: mapped.clone(),
                reason,
            },
            other => other,
        })?;
        Ok(LiveDaemon { pid, mapped, image })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The process's own link to its executable: the file to read and to probe.
    pub fn proc_exe(&self) -> PathBuf {
        proc_exe(self.pid)
    }

    pub fn image(&self) -> &DaemonImage {
        &self.image
    }

    /// What to add to a link-time address of the executable in the process.
    pub fn bias(&self) -> Result<u64, ProbeError> {
        self.image.process_bias(self.pid, &self.mapped)
    }

    /// Its lock state now (see [`CaptureOptions`]).
    pub fn capture(&self, options: CaptureOptions) -> Result<Capture, ProbeError> {
        self.image.capture_live(self.pid, &self.mapped, options)
    }

    /// Every thread's stack, and which holds the lock table.
    pub fn stacks(&self) -> Result<Vec<ThreadStack>, ProbeError> {
        stacks::live(&self.image, self.pid, &self.mapped)
    }

    /// The thread (`tid (name)`) that holds the lock table in two looks
    /// [`stacks::WEDGE_LOOK`] apart, if one does.
    pub fn wedged_owner(&self) -> Result<Option<String>, ProbeError> {
        let holder = || -> Result<Option<(u32, String)>, ProbeError> {
            Ok(stacks::table_holder(&self.stacks()?).map(|t| (t.tid, t.name.clone())))
        };
        let Some(first) = holder()? else {
            return Ok(None);
        };
        std::thread::sleep(stacks::WEDGE_LOOK);
        Ok(holder()?
            .filter(|second| *second == first)
            .map(|(tid, name)| format!("{tid} ({name})")))
    }
}

/// Opens the daemon `pid` and captures it once (`dump`, the shell's `state`): its
/// `stats.total_ns` counts the opening (indexing the executable) too, which a one-shot
/// look pays for.
pub fn capture_once(pid: u32, options: CaptureOptions) -> Result<Capture, ProbeError> {
    let started = Instant::now();
    let mut capture = LiveDaemon::open(pid)?.capture(options)?;
    capture.stats.total_ns = duration_ns(started.elapsed());
    Ok(capture)
}

/// The running process `pid`, any Rust program with debug info: its data mappings copied
/// while it is frozen, then let go.
pub fn inspect_live(pid: u32) -> Result<Inspected, ProbeError> {
    let mapped = process::exe_path(pid)?;
    let exe = executable::open(&proc_exe(pid)).map_err(|error| match error {
        DebugInfoError::Read { error, .. } => unreadable_exe(pid, error),
        other => ProbeError::DebugInfo(other),
    })?;
    // Indexed before the process is stopped: a program without DWARF is refused untouched.
    let index = TypeIndex::on_demand(&exe).map_err(ProbeError::DebugInfo)?;
    let mappings = maps::read_maps(pid as i32).map_err(|error| ProbeError::Maps { pid, error })?;
    let files: Vec<_> = mappings.iter().filter_map(|m| m.file()).collect();
    let bias = exe
        .load_bias(&files, &mapped)
        .map_err(|error| ProbeError::LoadBias {
            exe: mapped.clone(),
            error,
        })?;
    let live = LiveProcess::new(Pid::from_raw(pid as i32));
    let freeze = Freeze::new(Pid::from_raw(pid as i32))
        .map_err(|error| ProbeError::Freeze { pid, error })?;
    // An error from here to the resume drops the freeze, which lets every thread go.
    let snapshot = Snapshot::capture(&live, &Region::data_regions(&mappings), SNAPSHOT_BUDGET)
        .map_err(|error| ProbeError::Snapshot { pid, error })?;
    freeze
        .resume()
        .map_err(|error| ProbeError::Freeze { pid, error })?;
    Ok(Inspected::new(exe, index, Box::new(snapshot), bias))
}

/// A core file of a process that ran `exe_path`, any Rust program with debug info.
pub fn inspect_core(core_path: &Path, exe_path: &Path) -> Result<Inspected, ProbeError> {
    let exe = executable::open(exe_path).map_err(ProbeError::DebugInfo)?;
    Ok(Inspected::core(core_path, exe)?)
}

/// Every thread's stack in the daemon the core file `core_path` holds, which ran `exe_path`.
pub fn core_stacks(core_path: &Path, exe_path: &Path) -> Result<Vec<ThreadStack>, ProbeError> {
    let image = DaemonImage::open(exe_path)?;
    Ok(stacks::core(&image, &open_core(core_path)?))
}

/// The core file `core_path`, opened.
pub fn open_core(core_path: &Path) -> Result<CoreFile, ProbeError> {
    CoreFile::open(core_path).map_err(ProbeError::Core)
}

fn proc_exe(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/exe"))
}

/// `/proc/PID/exe` that cannot be read: missing means the process is.
fn unreadable_exe(pid: u32, error: std::io::Error) -> ProbeError {
    if error.kind() == std::io::ErrorKind::NotFound {
        ProbeError::NoSuchProcess { pid }
    } else {
        ProbeError::NotPermitted {
            pid,
            what: format!("reading its executable: {error}"),
        }
    }
}
