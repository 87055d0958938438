//! What a compiled Rust executable says about itself: where a function starts (ELF symbols)
//! and how its types and parameters are laid out (DWARF 4 or 5).
//!
//! It reads files only: it never touches a running process, and it knows no program's names
//! (callers pass the Rust paths they need). The file is garbage until proven otherwise: every
//! offset, size and reference read from it is checked, and bad input gives an error, never a
//! panic. Split DWARF (`.dwo`, `.dwp`) and type units are not read. A stripped executable's
//! DWARF is read from its separate debug file (found by build id or `.gnu_debuglink`).

mod code;
mod debug_file;
mod items;
mod load_bias;
mod scopes;
mod sections;
mod subprogram;
mod symbols;
mod type_defs;
mod type_index;
mod types;

pub use code::{CodeFrame, FunctionSymbols};
pub use debug_file::DEFAULT_DEBUG_ROOT;
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

use debug_file::DebugData;
use gimli::{EndianSlice, RunTimeEndian};
use object::Object;
use sections::DwarfSource;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    #[error(
        "{} has no DWARF (.debug_info) and no separate debug file was found (looked for {searched}); \
         install its debug file in one of those places or run an unstripped build",
        path.display()
    )]
    NoDebugFile { path: PathBuf, searched: String },
    #[error(
        "{} is not the debug file of {}: its CRC32 is {found:#010x}, the executable's \
         .gnu_debuglink wants {expected:#010x}; install the debug file of this very build",
        debug_file.display(),
        path.display()
    )]
    DebugFileMismatch {
        path: PathBuf,
        debug_file: PathBuf,
        expected: u32,
        found: u32,
    },
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
    /// Shared with the type indexes made from it, which read its DWARF on demand.
    data: Arc<Vec<u8>>,
    /// Where its DWARF is: program headers, load bias and build id always come from `data`.
    debug: DebugData,
}

impl Executable {
    /// Reads the whole file: the queries walk it several times and the file may change or
    /// vanish on disk while a probe runs (a program being rebuilt), so one copy is taken.
    ///
    /// A stripped executable's debug file is looked for under `/usr/lib/debug` (see
    /// [`Executable::open_with_debug_root`]).
    pub fn open(path: &Path) -> Result<Self, DebugInfoError> {
        Executable::open_with_debug_root(path, Path::new(DEFAULT_DEBUG_ROOT))
    }

    /// Like [`Executable::open`]; an executable without `.debug_info` has its DWARF read from
    /// its debug file: `<root>/.build-id/ab/cdef….debug`, else the `.gnu_debuglink` file
    /// (CRC checked) in the executable's directory, its `.debug/` or `<root>/<directory>/`.
    /// Not finding one is an error only when DWARF is asked for.
    pub fn open_with_debug_root(path: &Path, root: &Path) -> Result<Self, DebugInfoError> {
        let data = std::fs::read(path).map_err(|error| DebugInfoError::Read {
            path: path.to_owned(),
            error,
        })?;
        // Fail at open, not at the first query, when the file is not an object at all.
        let file = object::File::parse(&*data).map_err(|error| DebugInfoError::Parse {
            path: path.to_owned(),
            error,
        })?;
        let debug = debug_file::locate(path, &file, root)?;
        Ok(Executable {
            path: path.to_owned(),
            data: Arc::new(data),
            debug,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The separate debug file the DWARF is read from, if it is not in the executable.
    pub fn debug_file(&self) -> Option<&Path> {
        match &self.debug {
            DebugData::Separate { path, .. } => Some(path),
            _ => None,
        }
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
        object::File::parse(self.data.as_slice()).map_err(|error| DebugInfoError::Parse {
            path: self.path.clone(),
            error,
        })
    }

    /// The object whose symbol table to search: the executable's, unless it has none and a
    /// debug file (which keeps `.symtab`) does.
    fn symbol_object(&self) -> Result<object::File<'_>, DebugInfoError> {
        let file = self.object()?;
        match &self.debug {
            DebugData::Separate { path, data } if file.symbols().next().is_none() => {
                object::File::parse(data.as_slice()).map_err(|error| DebugInfoError::Parse {
                    path: path.clone(),
                    error,
                })
            }
            _ => Ok(file),
        }
    }

    /// The bytes of the file holding the DWARF (the executable or its debug file), and its
    /// path.
    fn dwarf_file(&self) -> Result<(&Arc<Vec<u8>>, &Path), DebugInfoError> {
        match &self.debug {
            DebugData::Own => Ok((&self.data, &self.path)),
            DebugData::Separate { path, data } => Ok((data, path)),
            DebugData::Missing { searched } => Err(DebugInfoError::NoDebugFile {
                path: self.path.clone(),
                searched: if searched.is_empty() {
                    "nothing: the executable has neither a GNU build id nor a .gnu_debuglink"
                        .to_owned()
                } else {
                    searched
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            }),
            DebugData::CrcMismatch {
                debug_file,
                expected,
                found,
            } => Err(DebugInfoError::DebugFileMismatch {
                path: self.path.clone(),
                debug_file: debug_file.clone(),
                expected: *expected,
                found: *found,
            }),
        }
    }

    /// The DWARF sections, held by whoever keeps the result (decompressed if need be).
    fn dwarf_source(&self) -> Result<DwarfSource, DebugInfoError> {
        let (data, path) = self.dwarf_file()?;
        DwarfSource::load(Arc::clone(data), path)
    }

    /// Runs `query` over the executable's DWARF (or its debug file's).
    fn with_dwarf<T>(
        &self,
        query: impl FnOnce(&Dwarf<'_>) -> Result<T, gimli::Error>,
    ) -> Result<T, DebugInfoError> {
        let source = self.dwarf_source()?;
        query(&source.dwarf()).map_err(|error| DebugInfoError::Dwarf {
            path: source.path().to_owned(),
            error,
        })
    }
}
