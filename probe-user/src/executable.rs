//! Opening an executable the way every probe command does: a stripped one has its DWARF
//! read from a debug file under `LATCH_PROBE_DEBUG_ROOT` when that is set (tests, a sysroot),
//! else under the system's `/usr/lib/debug`.
//!
//! It reads the environment and opens the file; what the file must hold is for the callers.

use dwarfpeek::debuginfo::{DebugInfoError, Executable, DEFAULT_DEBUG_ROOT};
use std::path::{Path, PathBuf};

/// The environment variable that moves the debug file root.
pub const DEBUG_ROOT_ENV: &str = "LATCH_PROBE_DEBUG_ROOT";

/// Reads `path` (see [`Executable::open_with_debug_root`]) with the probe's debug root.
pub fn open(path: &Path) -> Result<Executable, DebugInfoError> {
    Executable::open_with_debug_root(path, &debug_root())
}

/// `LATCH_PROBE_DEBUG_ROOT` when set and not empty, else the default.
fn debug_root() -> PathBuf {
    std::env::var_os(DEBUG_ROOT_ENV)
        .filter(|root| !root.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_DEBUG_ROOT), PathBuf::from)
}
