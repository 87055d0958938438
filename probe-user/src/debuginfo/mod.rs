//! What a compiled Rust executable says about itself: where a function starts (ELF symbols)
//! and how its types and parameters are laid out (DWARF 4 or 5).
//!
//! It reads files only: it never touches a running process, and it knows no latch names
//! (callers pass the Rust paths they need). The file is garbage until proven otherwise: every
//! offset, size and reference read from it is checked, and bad input gives an error, never a
//! panic. Split DWARF (`.dwo`, `.dwp`) and type units are not read.

mod items;
mod load_bias;
mod subprogram;
mod symbols;
mod type_defs;
mod type_index;
mod types;

pub use items::StaticVariable;
pub use load_bias::LoadBiasError;
pub use subprogram::{EntryLocation, Parameter, ParameterClass, Subprogram};
pub use symbols::FunctionSymbol;
pub use type_defs::{
    BaseKind, Composite, Enumerator, Field, TemplateParam, TypeDef, TypeKind, TypeRef, Variant,
    VariantPart,
};
pub use type_index::{TypeIndex, TypedStatic};
pub use types::Member;

use gimli::{DwarfSections, EndianSlice, RunTimeEndian};
use object::{Object, ObjectSection};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The reader every DWARF query uses: a slice of the executable's (decompressed) sections.
type Slice<'a> = EndianSlice<'a, RunTimeEndian>;
type Dwarf<'a> = gimli::Dwarf<Slice<'a>>;

#[derive(Debug, Error)]
pub enum DebugInfoError {
    // Wrapped causes are part of each message, not `source`s, so a chain prints them once.
    #[error("cannot read {}: {error}; check the path and that you may read it", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is not an ELF executable this probe can parse: {error}", path.display())]
    Parse { path: PathBuf, error: object::Error },
    #[error(
        "no function symbol `{function}` in {}; the executable may be stripped (keep .symtab) \
         or not the program you think it is",
        path.display()
    )]
    FunctionNotFound { path: PathBuf, function: String },
    #[error(
        "`{function}` names {count} different functions in {} ({symbols}); \
         the probe needs exactly one",
        path.display()
    )]
    AmbiguousFunction {
        path: PathBuf,
        function: String,
        count: usize,
        symbols: String,
    },
    #[error(
        "symbol `{symbol}` at {address:#x} lies in no loadable segment with file contents \
         in {}; the executable is damaged",
        path.display()
    )]
    AddressNotInFile {
        path: PathBuf,
        symbol: String,
        address: u64,
    },
    #[error(
        "{} has no DWARF (.debug_info is empty); build it with debug info (profile `debug = true`) \
         and do not strip it",
        path.display()
    )]
    NoDebugInfo { path: PathBuf },
    #[error("malformed DWARF in {}: {error}", path.display())]
    Dwarf { path: PathBuf, error: gimli::Error },
    #[error(
        "no struct `{type_path}` in the DWARF of {}; the type was renamed or moved, or the \
         executable is not the program you think it is",
        path.display()
    )]
    TypeNotFound { path: PathBuf, type_path: String },
    #[error(
        "no enum `{type_path}` in the DWARF of {} (neither C-like nor with a variant part); \
         the type was renamed or moved, or the executable is not the program you think it is",
        path.display()
    )]
    EnumNotFound { path: PathBuf, type_path: String },
    #[error(
        "no data symbol `{static_path}` in {}; the static was renamed or removed, or the \
         executable is stripped (keep .symtab)",
        path.display()
    )]
    StaticNotFound { path: PathBuf, static_path: String },
    #[error(
        "`{static_path}` names {count} different data symbols in {}; the probe needs exactly one",
        path.display()
    )]
    AmbiguousStatic {
        path: PathBuf,
        static_path: String,
        count: usize,
    },
    #[error(
        "static `{static_path}` has a symbol but no DW_TAG_variable in the DWARF of {}",
        path.display()
    )]
    StaticNotInDwarf { path: PathBuf, static_path: String },
    #[error("struct `{type_path}` has no member `{member}` in {}", path.display())]
    MemberNotFound {
        path: PathBuf,
        type_path: String,
        member: String,
    },
    #[error(
        "member `{type_path}::{member}` in {} has no constant offset (DW_AT_data_member_location \
         is missing or an expression this probe does not evaluate)",
        path.display()
    )]
    UnsupportedMemberLocation {
        path: PathBuf,
        type_path: String,
        member: String,
    },
    #[error(
        "no DWARF subprogram starts at {address:#x} (symbol `{function}`) in {}; the DWARF \
         does not describe this function (built without debug info for it?)",
        path.display()
    )]
    SubprogramNotFound {
        path: PathBuf,
        function: String,
        address: u64,
    },
}

/// An executable read into memory, ready for symbol and DWARF queries.
pub struct Executable {
    path: PathBuf,
    data: Vec<u8>,
}

impl Executable {
    /// Reads the whole file: the queries walk it several times and the file may change or
    /// vanish on disk while a probe runs (a daemon being rebuilt), so one copy is taken.
    pub fn open(path: &Path) -> Result<Self, DebugInfoError> {
        let data = std::fs::read(path).map_err(|error| DebugInfoError::Read {
            path: path.to_owned(),
            error,
        })?;
        let exe = Executable {
            path: path.to_owned(),
            data,
        };
        // Fail at open, not at the first query, when the file is not an object at all.
        exe.object()?;
        Ok(exe)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The machine the executable was built for.
    pub fn architecture(&self) -> Result<object::Architecture, DebugInfoError> {
        Ok(self.object()?.architecture())
    }

    /// The GNU build id (`.note.gnu.build-id`) in lowercase hex, if the executable has one.
    pub fn build_id(&self) -> Result<Option<String>, DebugInfoError> {
        let id = self
            .object()?
            .build_id()
            .map_err(|error| DebugInfoError::Parse {
                path: self.path.clone(),
                error,
            })?;
        Ok(id.map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    fn object(&self) -> Result<object::File<'_>, DebugInfoError> {
        object::File::parse(&*self.data).map_err(|error| DebugInfoError::Parse {
            path: self.path.clone(),
            error,
        })
    }

    /// Runs `query` over the executable's DWARF, decompressing sections as needed.
    fn with_dwarf<T>(
        &self,
        query: impl FnOnce(&Dwarf<'_>) -> Result<T, gimli::Error>,
    ) -> Result<T, DebugInfoError> {
        let file = self.object()?;
        let endian = if file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let has_debug_info = file
            .section_by_name(".debug_info")
            .is_some_and(|section| section.size() > 0);
        if !has_debug_info {
            return Err(DebugInfoError::NoDebugInfo {
                path: self.path.clone(),
            });
        }
        let sections = DwarfSections::load(|id| -> Result<Cow<'_, [u8]>, object::Error> {
            match file.section_by_name(id.name()) {
                Some(section) => section.uncompressed_data(),
                None => Ok(Cow::Borrowed(&[][..])),
            }
        })
        .map_err(|error| DebugInfoError::Parse {
            path: self.path.clone(),
            error,
        })?;
        let dwarf = sections.borrow(|section| EndianSlice::new(section, endian));
        query(&dwarf).map_err(|error| DebugInfoError::Dwarf {
            path: self.path.clone(),
            error,
        })
    }
}
