//! A latch daemon's threads ([`dwarfpeek::stacks`]) with the one lock the probe cares about:
//! a thread with the lock table's guard (`MutexGuard<latch::table::LockTable>`, as DWARF
//! names its type: docs/contract.md) in scope holds [`LOCK_TABLE`].
//!
//! Interpretation only: the unwinding and naming are dwarfpeek's, the opening is
//! [`crate::target`]'s.

use crate::error::ProbeError;
use crate::model::{DaemonImage, LOCK_TABLE};
use crate::target;
use dwarfpeek::stacks::{self, Guarded, Program, ThreadStack};
use std::path::Path;

/// The guard of the lock table's mutex, as DWARF names its type.
const TABLE_GUARD: &str = "MutexGuard<latch::table::LockTable>";

const GUARDED: &[Guarded<'static>] = &[Guarded {
    guard_type: TABLE_GUARD,
    name: LOCK_TABLE,
}];

/// The threads of the running daemon `pid`, which maps `image`'s executable from `mapped`.
pub(crate) fn live(
    image: &DaemonImage,
    pid: u32,
    mapped: &Path,
) -> Result<Vec<ThreadStack>, ProbeError> {
    Ok(stacks::live(program(image, mapped), pid, GUARDED)?)
}

/// The threads of the daemon a core file holds.
pub fn core(image: &DaemonImage, core_path: &Path) -> Result<Vec<ThreadStack>, ProbeError> {
    let core = target::open_core(core_path)?;
    Ok(stacks::core(program(image, image.path()), &core, GUARDED))
}

/// The thread that holds the lock table, if one does.
pub fn table_holder(threads: &[ThreadStack]) -> Option<&ThreadStack> {
    threads
        .iter()
        .find(|t| t.holds.iter().any(|l| l == LOCK_TABLE))
}

fn program<'a>(image: &'a DaemonImage, mapped: &'a Path) -> Program<'a> {
    Program {
        exe: image.executable(),
        index: image.index(),
        mapped_path: mapped,
    }
}
