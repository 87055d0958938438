//! The DWARF sections of an executable (or of its debug file), owned, so that an index can
//! keep reading them after the query that made it: the file's bytes are shared rather than
//! copied, and only compressed sections are copied, decompressed, once.
//!
//! It only finds and holds the sections; it interprets nothing in them.

use super::{DebugInfoError, Dwarf};
use gimli::{DwarfSections, EndianSlice, RunTimeEndian};
use object::{CompressionFormat, Object, ObjectSection};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where one section's bytes are.
enum Bytes {
    /// A range of the file, checked against its length when found.
    InFile(Range<usize>),
    Decompressed(Vec<u8>),
}

/// The DWARF sections of one file, ready to be read with gimli any number of times.
pub(super) struct DwarfSource {
    path: PathBuf,
    file: Arc<Vec<u8>>,
    sections: DwarfSections<Bytes>,
    endian: RunTimeEndian,
}

impl DwarfSource {
    /// The DWARF sections of `file` (read from `path`, named in errors).
    pub(super) fn load(file: Arc<Vec<u8>>, path: &Path) -> Result<DwarfSource, DebugInfoError> {
        let parse_error = |error| DebugInfoError::Parse {
            path: path.to_owned(),
            error,
        };
        let (endian, sections) = {
            let object = object::File::parse(file.as_slice()).map_err(parse_error)?;
            let endian = if object.is_little_endian() {
                RunTimeEndian::Little
            } else {
                RunTimeEndian::Big
            };
            let has_debug_info = object
                .section_by_name(".debug_info")
                .is_some_and(|section| section.size() > 0);
            if !has_debug_info {
                return Err(DebugInfoError::NoDebugInfo {
                    path: path.to_owned(),
                });
            }
            let sections = DwarfSections::load(|id| -> Result<Bytes, object::Error> {
                let Some(section) = object.section_by_name(id.name()) else {
                    return Ok(Bytes::InFile(0..0));
                };
                let range = section.compressed_file_range()?;
                if range.format != CompressionFormat::None {
                    return Ok(Bytes::Decompressed(
                        section.uncompressed_data()?.into_owned(),
                    ));
                }
                // `data` checks the range against the file (and is empty for NOBITS).
                let len = section.data()?.len();
                let start = usize::try_from(range.offset).unwrap_or(usize::MAX);
                Ok(match start.checked_add(len) {
                    Some(end) if len > 0 && end <= file.len() => Bytes::InFile(start..end),
                    _ => Bytes::InFile(0..0),
                })
            })
            .map_err(parse_error)?;
            (endian, sections)
        };
        Ok(DwarfSource {
            path: path.to_owned(),
            file,
            sections,
            endian,
        })
    }

    /// The file the sections were read from.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn dwarf(&self) -> Dwarf<'_> {
        self.sections.borrow(|bytes| {
            let slice = match bytes {
                Bytes::InFile(range) => self.file.get(range.clone()).unwrap_or_default(),
                Bytes::Decompressed(data) => data.as_slice(),
            };
            EndianSlice::new(slice, self.endian)
        })
    }
}

impl std::fmt::Debug for DwarfSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DwarfSource")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
