//! Where the probe's bytes come from: one [`MemorySource`] trait over a live process
//! (`process_vm_readv`), a copy taken while the process was frozen ([`Snapshot`]), and an ELF
//! core file ([`CoreFile`]); plus stopping every thread of a process for a consistent copy
//! ([`Freeze`]), the process's memory map ([`maps`]), and a count of what a source was
//! asked for ([`Counted`]).
//!
//! It moves bytes only: it knows nothing of types or DWARF. Lengths come from callers,
//! who bound them; nothing here sizes a buffer from bytes it read, and a read that cannot be
//! satisfied in full is an error, never a partly filled buffer.

mod core_file;
mod counted;
mod freeze;
mod live;
pub mod maps;
mod snapshot;

pub use core_file::{CoreError, CoreFile, CoreProcess, CoreThread, X86_64_REGISTERS};
pub use counted::Counted;
pub use freeze::{Freeze, FreezeError};
pub use live::LiveProcess;
pub use maps::{FileMapping, Mapping, MapsError};
pub use snapshot::{PreparedSnapshot, Region, Snapshot, SnapshotError};

use std::path::PathBuf;
use thiserror::Error;

/// Reads the memory of one address space.
pub trait MemorySource {
    /// Fills `buf` with the bytes at `address`, all of them or an error.
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), MemoryError>;
}

/// Why a read failed. Cloneable and comparable, so the value reader can keep one inside a
/// decoded tree where the bytes were missing.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum MemoryError {
    #[error(
        "{len} bytes at {address:#x} are not in {source_name}; the pointer that led here is \
         wrong or the memory was not copied (widen the snapshot's regions)"
    )]
    Unmapped {
        address: u64,
        len: u64,
        source_name: String,
    },
    #[error(
        "reading {len} bytes at {address:#x} of process {pid} failed: {errno}; the address may \
         be unmapped, or the process gone (ESRCH) or not ours to read (EPERM: run as root)"
    )]
    Process {
        pid: i32,
        address: u64,
        len: u64,
        errno: nix::errno::Errno,
    },
    #[error(
        "{len} bytes at {address:#x} come from {}, which cannot be read: {reason}; \
         make the file available at that path",
        path.display()
    )]
    MappedFile {
        address: u64,
        len: u64,
        path: PathBuf,
        reason: String,
    },
    #[error("reading {len} bytes at {address:#x} of the core file failed: {reason}")]
    CoreFile {
        address: u64,
        len: u64,
        reason: String,
    },
}
