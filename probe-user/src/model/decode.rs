//! From a memory source to the state document: the `VERSION` and `LOCK_TABLE` statics read
//! as values through the daemon's DWARF, then handed to [`super::state`]. Shared by the live
//! and the core captures, which differ only in where the bytes come from.
//!
//! It reads memory only through the source it is given and never stops or signals a
//! process.

use super::discard::discard;
use super::image::DaemonImage;
use super::state::{self, Decoded, Fault, Header};
use crate::error::ProbeError;
use dwarfpeek::memory::{MemorySource, Region, Snapshot};
use dwarfpeek::value::{FieldSelection, Limits, ValueReader};
use latch_probe_common::doc::Source;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `LOCK_TABLE` static is a mutex and a handful of inline fields: a DWARF claiming more
/// than this is damaged, and no buffer is sized from it.
const MAX_TABLE_STATIC: u64 = 1 << 20;

/// What [`generation_in`] decodes of the table.
const GENERATION_ONLY: FieldSelection<'static> = &[("latch::table::LockTable", &["generation"])];

/// Decodes the daemon's state from `memory`, where the executable was loaded at `bias`.
pub(super) fn decode_table(
    image: &DaemonImage,
    memory: &dyn MemorySource,
    bias: u64,
    source: Source,
    pid: u32,
) -> Result<Decoded, ProbeError> {
    let reader =
        ValueReader::new(image.index(), memory, Limits::default()).only_fields(state::READ_FIELDS);
    let mut problems = Vec::new();
    let version = match runtime(image.version().address, bias).and_then(|at| {
        reader
            .read(image.version().ty, at)
            .map_err(|e| e.to_string())
    }) {
        Ok(value) => match value.as_str() {
            Some(version) => version.to_owned(),
            None => {
                problems.push(format!("VERSION is not a string: {value:?}"));
                String::new()
            }
        },
        Err(reason) => {
            problems.push(format!("VERSION could not be read: {reason}"));
            String::new()
        }
    };
    let at =
        runtime(image.table().address, bias).map_err(|reason| ProbeError::Unreadable { reason })?;
    let table = reader
        .read(image.table().ty, at)
        .map_err(|error| ProbeError::Unreadable {
            reason: format!("LOCK_TABLE at {at:#x}: {error}"),
        })?;
    let header = Header {
        source,
        pid,
        version: &version,
    };
    let mut decoded = state::decode_state(&table, header).map_err(|fault| match fault {
        Fault::Contract(reason) => ProbeError::Contract {
            exe: image.path().to_owned(),
            reason,
        },
        Fault::Garbage(reason) => ProbeError::Unreadable { reason },
    })?;
    discard(table);
    problems.append(&mut decoded.problems);
    decoded.problems = problems;
    Ok(decoded)
}

/// The table's generation in `memory`: the static's own bytes copied out and decoded alone
/// (what it points to is left out and decodes as errors; the generation, an inline field,
/// does not). One small read, so it can be asked of a running process cheaply.
pub(super) fn generation_in(
    image: &DaemonImage,
    memory: &dyn MemorySource,
    table: Region,
    pid: u32,
) -> Result<u64, ProbeError> {
    let size = table.end.saturating_sub(table.start);
    if size == 0 || size > MAX_TABLE_STATIC {
        return Err(ProbeError::Contract {
            exe: image.path().to_owned(),
            reason: format!("the DWARF gives the lock table static {size} bytes"),
        });
    }
    let mut bytes = vec![0u8; size as usize];
    memory
        .read(table.start, &mut bytes)
        .map_err(|error| ProbeError::from_memory(pid, &error))?;
    let alone = Snapshot::from_ranges(vec![(table.start, bytes)]);
    let value = ValueReader::new(image.index(), &alone, Limits::default())
        .only_fields(GENERATION_ONLY)
        .read(image.table().ty, table.start)
        .map_err(|error| ProbeError::Unreadable {
            reason: format!("LOCK_TABLE: {error}"),
        })?;
    state::generation(&value).ok_or_else(|| ProbeError::Unreadable {
        reason: "the lock table's generation could not be decoded".to_owned(),
    })
}

/// A link-time address moved by the load bias.
fn runtime(address: u64, bias: u64) -> Result<u64, String> {
    address
        .checked_add(bias)
        .ok_or_else(|| format!("{address:#x} + load bias {bias:#x} overflows"))
}

/// Wall-clock Unix nanoseconds now.
pub(super) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration_ns)
}

pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
