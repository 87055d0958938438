//! Finding the DWARF of a stripped executable in a separate debug file, as gdb does: first
//! by GNU build id (`<root>/.build-id/ab/cdef….debug`), then by `.gnu_debuglink` (a file
//! name and the CRC32 of that file) in the executable's directory, its `.debug/`
//! subdirectory and `<root>/<the executable's directory>/`. The root is the caller's, else
//! `/usr/lib/debug`.
//!
//! Only the DWARF (and, if the executable has none, the symbol table) is read from the debug
//! file: its program headers and contents are not those of the running program.

use super::DebugInfoError;
use object::{Object, ObjectSection};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where distributions install debug files.
pub const DEFAULT_DEBUG_ROOT: &str = "/usr/lib/debug";

/// Where an executable's DWARF is.
pub(super) enum DebugData {
    /// In the executable itself.
    Own,
    /// In a separate debug file, read into memory (shared with the indexes made from it).
    Separate { path: PathBuf, data: Arc<Vec<u8>> },
    /// Nowhere that was looked (every place is listed).
    Missing { searched: Vec<PathBuf> },
    /// The `.gnu_debuglink` file was found but belongs to another build.
    CrcMismatch {
        debug_file: PathBuf,
        expected: u32,
        found: u32,
    },
}

/// Where the DWARF of the executable `file`, read from `path`, is.
pub(super) fn locate(
    path: &Path,
    file: &object::File<'_>,
    root: &Path,
) -> Result<DebugData, DebugInfoError> {
    let has_debug_info = file
        .section_by_name(".debug_info")
        .is_some_and(|section| section.size() > 0);
    if has_debug_info {
        return Ok(DebugData::Own);
    }
    let parse = |error| DebugInfoError::Parse {
        path: path.to_owned(),
        error,
    };
    let mut searched = Vec::new();
    if let Some(id) = file.build_id().map_err(parse)? {
        if id.len() >= 2 {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            let candidate = root
                .join(".build-id")
                .join(&hex[..2])
                .join(format!("{}.debug", &hex[2..]));
            if candidate.is_file() {
                let data = read_debug_file(&candidate)?;
                return Ok(DebugData::Separate {
                    path: candidate,
                    data: Arc::new(data),
                });
            }
            searched.push(candidate);
        }
    }
    let mut mismatch = None;
    if let Some((name, expected)) = file.gnu_debuglink().map_err(parse)? {
        // A bare file name; anything else is not a debuglink this probe follows.
        if !name.is_empty() && !name.contains(&b'/') {
            let name = OsStr::from_bytes(name);
            let real = real_path(path);
            let dir = real.parent().unwrap_or(Path::new("/"));
            let under_root = root.join(dir.strip_prefix("/").unwrap_or(dir));
            for candidate in [
                dir.join(name),
                dir.join(".debug").join(name),
                under_root.join(name),
            ] {
                if candidate == real || searched.contains(&candidate) {
                    continue;
                }
                if candidate.is_file() {
                    let data = read_debug_file(&candidate)?;
                    // `.gnu_debuglink`'s CRC is zlib's CRC32 (IEEE 802.3).
                    let found = crc32fast::hash(&data);
                    if found == expected {
                        return Ok(DebugData::Separate {
                            path: candidate,
                            data: Arc::new(data),
                        });
                    }
                    mismatch.get_or_insert(DebugData::CrcMismatch {
                        debug_file: candidate.clone(),
                        expected,
                        found,
                    });
                }
                searched.push(candidate);
            }
        }
    }
    Ok(mismatch.unwrap_or(DebugData::Missing { searched }))
}

/// The file `path` names: `/proc/PID/exe` is a link to the executable, whose directory is
/// where a debuglink file lies. A deleted executable keeps its old name.
fn real_path(path: &Path) -> PathBuf {
    let real = std::fs::read_link(path)
        .ok()
        .filter(|_| path.starts_with("/proc"))
        .or_else(|| std::fs::canonicalize(path).ok())
        .unwrap_or_else(|| path.to_owned());
    match real.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
        Some(alive) => PathBuf::from(alive),
        None => real,
    }
}

/// Reads a debug file and checks that it is an object at all.
fn read_debug_file(path: &Path) -> Result<Vec<u8>, DebugInfoError> {
    let data = std::fs::read(path).map_err(|error| DebugInfoError::Read {
        path: path.to_owned(),
        error,
    })?;
    object::File::parse(&*data).map_err(|error| DebugInfoError::Parse {
        path: path.to_owned(),
        error,
    })?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_executable_with_dwarf_needs_no_debug_file() {
        let me = std::env::current_exe().expect("current exe");
        let data = std::fs::read(&me).expect("read");
        let file = object::File::parse(&*data).expect("parse");
        let found = locate(&me, &file, Path::new("/nonexistent")).expect("locate");
        assert!(matches!(found, DebugData::Own));
    }
}
