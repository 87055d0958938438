//! Where an executable's link-time addresses landed in a process: the load bias of a
//! position-independent executable (zero for a fixed-address one), from the file mappings of
//! the process (`/proc/PID/maps`, or a core file's `NT_FILE` note).
//!
//! It reads the executable's program headers and the mapping list it is given; it never
//! touches a process itself.

use super::{DebugInfoError, Executable};
use crate::memory::FileMapping;
use object::{Object, ObjectKind, ObjectSegment};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LoadBiasError {
    #[error(transparent)]
    DebugInfo(#[from] DebugInfoError),
    #[error(
        "{} is not among the process's file mappings ({mapped}); pass the executable the \
         process runs",
        path.display()
    )]
    NotMapped { path: PathBuf, mapped: String },
    #[error(
        "no mapping of {} lines up with a loadable segment of the executable; it is not the \
         file the process runs (rebuilt since it started?)",
        path.display()
    )]
    NoSegment { path: PathBuf },
}

impl Executable {
    /// What to add to a link-time address (a symbol's value) to get the address in the
    /// process whose file mappings are `mappings`, where this executable is mapped from
    /// `mapped_path`. A mapping is matched by its path, or failing that by its file name
    /// alone (a core file read on another machine names paths of that machine).
    pub fn load_bias(
        &self,
        mappings: &[FileMapping],
        mapped_path: &Path,
    ) -> Result<u64, LoadBiasError> {
        let file = self.object()?;
        if file.kind() != ObjectKind::Dynamic {
            // Linked at fixed addresses: they are the runtime addresses.
            return Ok(0);
        }
        let same_path = |m: &&FileMapping| strip_deleted(&m.path) == mapped_path;
        let same_name = |m: &&FileMapping| {
            mapped_path.file_name().is_some()
                && strip_deleted(&m.path).file_name() == mapped_path.file_name()
        };
        let ours: Vec<&FileMapping> = match mappings.iter().filter(same_path).collect::<Vec<_>>() {
            found if !found.is_empty() => found,
            _ => mappings.iter().filter(same_name).collect(),
        };
        if ours.is_empty() {
            let mut mapped: Vec<String> = mappings
                .iter()
                .map(|m| m.path.display().to_string())
                .collect();
            mapped.dedup();
            return Err(LoadBiasError::NotMapped {
                path: mapped_path.to_owned(),
                mapped: mapped.join(", "),
            });
        }
        // A mapping starts at the page that holds a segment's first file byte: the segment
        // whose file offset lies in the mapping's first page fixes the bias.
        for mapping in ours {
            for segment in file.segments() {
                let (offset, _) = segment.file_range();
                let Some(into_page) = offset.checked_sub(mapping.offset) else {
                    continue;
                };
                if into_page >= segment.align().max(1) || into_page >= mapping.end - mapping.start {
                    continue;
                }
                if let Some(bias) = mapping
                    .start
                    .checked_add(into_page)
                    .and_then(|start| start.checked_sub(segment.address()))
                {
                    return Ok(bias);
                }
            }
        }
        Err(LoadBiasError::NoSegment {
            path: mapped_path.to_owned(),
        })
    }
}

/// The kernel marks a mapped file deleted since with a ` (deleted)` suffix.
fn strip_deleted(path: &Path) -> &Path {
    path.to_str()
        .and_then(|p| p.strip_suffix(" (deleted)"))
        .map_or(path, Path::new)
}

#[cfg(test)]
mod tests {
    use super::super::Executable;
    use super::*;
    use crate::memory::maps::read_maps;

    #[test]
    fn the_bias_of_this_test_maps_its_own_function() {
        let me = std::env::current_exe().expect("current exe");
        let exe = Executable::open(&me).expect("open");
        let maps = read_maps(nix::unistd::getpid().as_raw()).expect("maps");
        let files: Vec<FileMapping> = maps.iter().filter_map(|m| m.file()).collect();
        let bias = exe.load_bias(&files, &me).expect("bias");
        let path = "dwarfpeek::debuginfo::load_bias::strip_deleted";
        let symbol = exe.function(path).expect("symbol");
        assert_eq!(
            symbol.address + bias,
            strip_deleted as fn(&Path) -> &Path as usize as u64
        );

        let err = exe
            .load_bias(&files, Path::new("/no/such/exe"))
            .unwrap_err();
        assert!(matches!(err, LoadBiasError::NotMapped { .. }), "{err}");
    }
}
