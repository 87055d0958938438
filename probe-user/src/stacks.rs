//! A latch daemon's threads ([`dwarfpeek::stacks`]) with the one lock the probe cares about:
//! a thread with the lock table's guard (`MutexGuard<latch::table::LockTable>`, as DWARF
//! names its type: docs/contract.md) in scope holds [`LOCK_TABLE`].
//!
//! Interpretation only: the unwinding and naming are dwarfpeek's, the opening of a process
//! or a core is [`crate::target`]'s, which calls this.

use crate::error::ProbeError;
use crate::model::{DaemonImage, LOCK_TABLE};
use dwarfpeek::memory::CoreFile;
use dwarfpeek::stacks::{self, Guarded, Program, ThreadStack};
use std::path::Path;
use std::time::Duration;

/// How long the table must stay held by one thread to count as wedged.
pub const WEDGE_LOOK: Duration = Duration::from_millis(300);

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

/// The threads of the daemon `core` holds, which ran `image`'s executable.
pub(crate) fn core(image: &DaemonImage, core: &CoreFile) -> Vec<ThreadStack> {
    stacks::core(program(image, image.path()), core, GUARDED)
}

/// The thread that holds the lock table, if one does.
pub fn table_holder(threads: &[ThreadStack]) -> Option<&ThreadStack> {
    threads
        .iter()
        .find(|t| t.holds.iter().any(|l| l == LOCK_TABLE))
}

/// The thread (`tid (name)`) that holds the lock table in every one of `looks` (saved
/// stacks, in the order they were taken), if one does; none without looks.
pub fn held_throughout(looks: &[Vec<ThreadStack>]) -> Option<String> {
    let (first, rest) = looks.split_first()?;
    let owner = table_holder(first)?;
    rest.iter()
        .all(|look| table_holder(look).is_some_and(|t| t.tid == owner.tid))
        .then(|| format!("{} ({})", owner.tid, owner.name))
}

fn program<'a>(image: &'a DaemonImage, mapped: &'a Path) -> Program<'a> {
    Program {
        exe: image.executable(),
        index: image.index(),
        mapped_path: mapped,
    }
}
