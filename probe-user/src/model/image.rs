//! A latch daemon's executable, ready to be read from: its DWARF type index and where its
//! contract statics (`docs/contract.md`) are. The index reads a compilation unit of the
//! DWARF the first time a query needs it (the statics' units are read here, before any
//! process is stopped), and an image may serve many captures of processes running that
//! executable.
//!
//! Files only: it never touches a process. Refusing an executable that is not a latch
//! daemon happens here.

use crate::error::ProbeError;
use crate::executable;
use dwarfpeek::debuginfo::{Executable, TypeIndex, TypedStatic};
use dwarfpeek::memory::{maps, FileMapping};
use std::path::{Path, PathBuf};

/// The lock table: a `Mutex<LockTable>` (contract).
pub const LOCK_TABLE: &str = "latch::table::LOCK_TABLE";
/// The daemon's version: a `&str` (contract).
pub const VERSION: &str = "latch::table::VERSION";

/// A latch daemon's executable with its type index.
pub struct DaemonImage {
    exe: Executable,
    index: TypeIndex,
    table: TypedStatic,
    version: TypedStatic,
    build_id: Option<String>,
}

impl DaemonImage {
    /// Reads and indexes `path`; an executable without the lock table static, or without
    /// the debug info to type it, is refused as not a latch daemon.
    pub fn open(path: &Path) -> Result<DaemonImage, ProbeError> {
        let refused = |error| ProbeError::from_debug_info(path.to_owned(), error);
        let exe = executable::open(path).map_err(refused)?;
        // The symbol first: it is cheap, and says "not a latch daemon" about any other
        // program before its DWARF is read.
        exe.data_symbol(LOCK_TABLE).map_err(refused)?;
        let index = TypeIndex::on_demand(&exe).map_err(refused)?;
        let table = index.find_static(&exe, LOCK_TABLE).map_err(refused)?;
        let version = index.find_static(&exe, VERSION).map_err(refused)?;
        let build_id = exe.build_id().map_err(refused)?;
        Ok(DaemonImage {
            exe,
            index,
            table,
            version,
            build_id,
        })
    }

    /// The file the image was read from.
    pub fn path(&self) -> &Path {
        self.exe.path()
    }

    /// The GNU build id, hex.
    pub fn build_id(&self) -> Option<&str> {
        self.build_id.as_deref()
    }

    /// The executable's symbols and DWARF.
    pub fn executable(&self) -> &Executable {
        &self.exe
    }

    pub fn index(&self) -> &TypeIndex {
        &self.index
    }

    /// `LOCK_TABLE` at its link-time address.
    pub fn table(&self) -> &TypedStatic {
        &self.table
    }

    /// `VERSION` at its link-time address.
    pub fn version(&self) -> &TypedStatic {
        &self.version
    }

    /// The size in bytes of the `LOCK_TABLE` static itself (the mutex and the table's
    /// inline fields, not what they point to).
    pub fn table_size(&self) -> Result<u64, ProbeError> {
        let ty = self.index.resolve(self.table.ty);
        self.index
            .get(ty)
            .and_then(|def| def.byte_size)
            .filter(|size| *size > 0)
            .ok_or_else(|| ProbeError::Contract {
                exe: self.exe.path().to_owned(),
                reason: format!("the DWARF gives `{LOCK_TABLE}` no size"),
            })
    }

    /// What to add to a link-time address for the process whose file mappings are
    /// `mappings`, where this executable was mapped from `mapped_path`.
    pub fn load_bias(
        &self,
        mappings: &[FileMapping],
        mapped_path: &Path,
    ) -> Result<u64, ProbeError> {
        self.exe
            .load_bias(mappings, mapped_path)
            .map_err(|error| ProbeError::LoadBias {
                exe: PathBuf::from(mapped_path),
                error,
            })
    }
}

impl DaemonImage {
    /// What to add to a link-time address in the running process `pid`, which maps this
    /// executable from `mapped_path` (its `/proc/PID/exe`).
    pub fn process_bias(&self, pid: u32, mapped_path: &Path) -> Result<u64, ProbeError> {
        let files: Vec<_> = maps::read_maps(pid as i32)
            .map_err(|error| ProbeError::Maps { pid, error })?
            .iter()
            .filter_map(|m| m.file())
            .collect();
        self.load_bias(&files, mapped_path)
    }
}

impl std::fmt::Debug for DaemonImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonImage")
            .field("path", &self.exe.path())
            .field("types", &self.index.len())
            .field("build_id", &self.build_id)
            .finish()
    }
}
