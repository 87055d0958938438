//! The lock state of a latch daemon, decoded from outside: a running process (frozen for a
//! bulk copy, or read without stopping it) or a core file, into a [`Capture`]: the
//! `latch.state/1` document, facts about the process and its threads, and what the look
//! cost.
//!
//! What it knows of the daemon is the names in `docs/contract.md` (`LOCK_TABLE`,
//! `LockTable.lockers`...); every offset, size and discriminant comes from the DWARF of the
//! exact executable. Data flows one way: memory ([`dwarfpeek::memory`]) and debug info
//! ([`dwarfpeek::debuginfo`]) to values ([`dwarfpeek::value`]) to the document here; it renders
//! nothing (the renderers and the command line do).

mod core;
mod decode;
mod discard;
mod image;
mod live;
mod state;

pub use image::{DaemonImage, LOCK_TABLE, VERSION};
// The trace decodes the daemon's structs from its events with the snapshot's rules.

pub(crate) use decode::duration_ns;

use crate::capture::Capture;
use crate::error::ProbeError;
use std::path::Path;
use std::time::{Duration, Instant};

/// How to take a live capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Stop every thread for the copy (a consistent view); without it the copy is retried
    /// while the table changes.
    pub freeze: bool,
    /// How many times a copy that shows a change in progress is taken again before it is
    /// returned as torn.
    pub max_retries: u32,
    /// The most bytes of the daemon's memory to copy.
    pub snapshot_budget: u64,
    /// Keep the daemon frozen this much longer after the copy (for tests of what happens
    /// when the probe dies mid-freeze).
    pub hold_frozen: Option<Duration>,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            freeze: true,
            max_retries: 50,
            snapshot_budget: 4 << 30,
            hold_frozen: None,
        }
    }
}

/// Captures the daemon dumped in `core_path`, which ran the executable `exe_path`;
/// `stats.total_ns` counts the indexing too.
pub fn capture_core(core_path: &Path, exe_path: &Path) -> Result<Capture, ProbeError> {
    let started = Instant::now();
    let mut capture = DaemonImage::open(exe_path)?.capture_core(core_path)?;
    capture.stats.total_ns = decode::duration_ns(started.elapsed());
    Ok(capture)
}
