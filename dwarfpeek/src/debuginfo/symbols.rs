//! Finding a function by its demangled Rust path in the ELF symbol table, and where its
//! first instruction lies in the file (what a uprobe is attached to).
//!
//! It reads `.symtab` only (the debug file's, if the executable lost its own): a fully
//! stripped executable without a debug file has no Rust paths left to find.

use super::{DebugInfoError, Executable};
use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

/// A function's entry point, as the symbol table and the program headers give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionSymbol {
    /// The demangled path without the hash, e.g. `app::change::apply`.
    pub path: String,
    /// The mangled symbol name.
    pub symbol: String,
    /// The virtual address of the first instruction (the DWARF `DW_AT_low_pc`).
    pub address: u64,
    /// The byte offset of the first instruction in the file (what the kernel's uprobe wants).
    pub file_offset: u64,
}

impl Executable {
    /// The one function whose demangled name, without the hash, is `path`.
    ///
    /// Several symbols at one address (aliases) count as one function; several addresses are
    /// an error rather than a guess, since a probe on the wrong copy would see nothing.
    pub fn function(&self, path: &str) -> Result<FunctionSymbol, DebugInfoError> {
        let mut found = self.symbols_named(path, SymbolKind::Text)?;
        let file = self.object()?;
        let (symbol, address) = match found.len() {
            0 => {
                return Err(DebugInfoError::FunctionNotFound {
                    path: self.path.clone(),
                    function: path.to_owned(),
                })
            }
            1 => found.remove(0),
            count => {
                let symbols = found
                    .iter()
                    .map(|(name, address)| format!("{name} at {address:#x}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(DebugInfoError::AmbiguousFunction {
                    path: self.path.clone(),
                    function: path.to_owned(),
                    count,
                    symbols,
                });
            }
        };
        let file_offset =
            file_offset_of(&file, address).ok_or_else(|| DebugInfoError::AddressNotInFile {
                path: self.path.clone(),
                symbol: symbol.clone(),
                address,
            })?;
        Ok(FunctionSymbol {
            path: path.to_owned(),
            symbol,
            address,
            file_offset,
        })
    }

    /// Every defined symbol of `kind` whose demangled name, without the hash, is `path`:
    /// (mangled name, address), one per address (aliases count once).
    pub(super) fn symbols_named(
        &self,
        path: &str,
        kind: SymbolKind,
    ) -> Result<Vec<(String, u64)>, DebugInfoError> {
        let file = self.symbol_object()?;
        let mut found: Vec<(String, u64)> = Vec::new();
        for symbol in file.symbols() {
            if symbol.kind() != kind || !symbol.is_definition() {
                continue;
            }
            let Ok(name) = symbol.name() else { continue };
            let Ok(demangled) = rustc_demangle::try_demangle(name) else {
                continue;
            };
            // `{:#}` drops the `17h…E` hash (and rustc-demangle drops `.llvm.…` suffixes).
            if format!("{demangled:#}") == path
                && !found.iter().any(|(_, a)| *a == symbol.address())
            {
                found.push((name.to_owned(), symbol.address()));
            }
        }
        Ok(found)
    }
}

/// Translates a virtual address to a file offset through the loadable segment that maps it
/// from the file, as the kernel does when it places the uprobe.
fn file_offset_of(file: &object::File<'_>, address: u64) -> Option<u64> {
    file.segments().find_map(|segment| {
        let delta = address.checked_sub(segment.address())?;
        let (offset, size) = segment.file_range();
        (delta < size).then(|| offset.checked_add(delta)).flatten()
    })
}
