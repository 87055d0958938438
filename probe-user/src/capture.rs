//! One look at a latch daemon from outside: its lock state (`latch.state/1`), facts about
//! the process, its threads, and what taking the look cost. The model produces it; the
//! renderers (JSON, tree, FUSE) only read it.
//!
//! Plain data: nothing here reads memory or knows how the state was decoded.

use dwarfpeek::process::ThreadFacts;
use latch_probe_common::doc::StateDoc;
use std::path::PathBuf;

/// Everything one snapshot learned.
#[derive(Clone, Debug)]
pub struct Capture {
    /// The daemon's lock table as the state document (`source` live or core).
    pub state: StateDoc,
    pub daemon: DaemonFacts,
    /// Every thread, by tid (a core file keeps no names: `name` is then empty).
    pub threads: Vec<ThreadFacts>,
    pub stats: CaptureStats,
    /// What could not be decoded (an entry, a locker, a cut collection), one line each; the
    /// state holds everything else. Empty when the state is whole.
    pub problems: Vec<String>,
}

impl Capture {
    /// Whether the state is not a whole, consistent view: taken mid-change (torn) or with
    /// parts left out.
    pub fn is_partial(&self) -> bool {
        self.state.torn || !self.problems.is_empty()
    }
}

/// What identifies the daemon process.
#[derive(Clone, Debug)]
pub struct DaemonFacts {
    pub pid: u32,
    /// The executable (for a live process, what /proc/PID/exe pointed to).
    pub exe: PathBuf,
    /// The GNU build id of the executable, hex, if it has one.
    pub build_id: Option<String>,
    /// The process's owner: the tree's files are owned by it, as FLoM's VFS.
    pub uid: u32,
    pub gid: u32,
    /// When the snapshot was taken (wall-clock Unix ns).
    pub snapshot_ns: u64,
}

/// What the snapshot cost the target.
#[derive(Clone, Debug, Default)]
pub struct CaptureStats {
    /// From the first thread stopped to the last one resumed (zero without freezing).
    pub frozen_ns: u64,
    /// Bytes copied out of the target.
    pub bytes_read: u64,
    /// Read calls (process_vm_readv, or reads of the core file).
    pub read_calls: u64,
    /// How many times the read was retried because the generation was odd or changed.
    pub retries: u32,
    /// The whole capture, from start to decoded state.
    pub total_ns: u64,
}
