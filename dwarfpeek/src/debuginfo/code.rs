//! Code addresses to source: the function (inlined ones too), file and line at an address of
//! the executable, from its DWARF through addr2line, or failing that the nearest function
//! symbol. What `stacks` names its frames with.
//!
//! Link-time addresses in, names out; a damaged unit costs the frames in it their names, not
//! the whole answer.

use super::{DebugInfoError, Executable};
use object::{Object, ObjectSymbol, SymbolKind};
use std::path::Path;

/// One source-level frame at an address: an inlined call, or the function itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeFrame {
    /// The demangled path without its hash (`app::server::Server::run`), if known.
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// An inlined call inside the next frame's function.
    pub inlined: bool,
}

impl Executable {
    /// The source frames at each of `addresses` (link-time), innermost first: inlined calls,
    /// then the function. An address without DWARF gets its symbol's name alone.
    pub fn code_frames(&self, addresses: &[u64]) -> Result<Vec<Vec<CodeFrame>>, DebugInfoError> {
        let source = self.dwarf_source()?;
        let context = addr2line::Context::from_dwarf(source.dwarf()).map_err(|error| {
            DebugInfoError::Dwarf {
                path: source.path().to_owned(),
                error,
            }
        })?;
        let object = self.symbol_object()?;
        let symbols = function_symbols(&object);
        Ok(addresses
            .iter()
            .map(|&address| {
                let mut frames = Vec::new();
                if let Ok(mut iter) = context.find_frames(address).skip_all_loads() {
                    while let Ok(Some(frame)) = iter.next() {
                        frames.push(CodeFrame {
                            function: frame
                                .function
                                .as_ref()
                                .and_then(|f| f.demangle().ok())
                                .map(|name| without_hash(&name)),
                            file: frame
                                .location
                                .as_ref()
                                .and_then(|l| l.file)
                                .map(str::to_owned),
                            line: frame.location.as_ref().and_then(|l| l.line),
                            inlined: false,
                        });
                    }
                }
                let last = frames.len().saturating_sub(1);
                for frame in frames.iter_mut().take(last) {
                    frame.inlined = true;
                }
                if frames.iter().all(|f| f.function.is_none()) {
                    frames = vec![CodeFrame {
                        function: symbols.name(address),
                        file: None,
                        line: None,
                        inlined: false,
                    }];
                }
                frames
            })
            .collect())
    }
}

impl Executable {
    /// The static (data symbol) that holds `address` (link-time): its demangled path without
    /// the hash, and its start.
    pub fn data_symbol_at(&self, address: u64) -> Option<(String, u64)> {
        let object = self.symbol_object().ok()?;
        let symbol = object.symbols().find(|s| {
            s.kind() == SymbolKind::Data
                && s.address() <= address
                && address - s.address() < s.size().max(1)
        })?;
        let name = rustc_demangle::demangle(symbol.name().ok()?).to_string();
        Some((without_hash(&name), symbol.address()))
    }
}

impl Executable {
    /// Every static's Rust path (the demangled data symbols, without their hash), sorted:
    /// what `print` resolves a path or a suffix against, and what a shell completes.
    pub fn static_paths(&self) -> Result<Vec<String>, DebugInfoError> {
        let object = self.symbol_object()?;
        let mut paths: Vec<String> = object
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Data && s.is_definition())
            .filter_map(|s| {
                let name = s.name().ok()?;
                let demangled = rustc_demangle::try_demangle(name).ok()?;
                Some(format!("{demangled:#}"))
            })
            .collect();
        paths.sort();
        paths.dedup();
        Ok(paths)
    }
}

/// The function symbols of an object, by address: names for code without debug info (a
/// system library) or outside every unit.
pub struct FunctionSymbols(Vec<(u64, u64, String)>);

impl FunctionSymbols {
    /// Those of the ELF file at `path` (dynamic symbols too: a stripped library keeps them).
    pub fn of_file(path: &Path) -> Option<FunctionSymbols> {
        let data = std::fs::read(path).ok()?;
        let object = object::File::parse(data.as_slice()).ok()?;
        Some(function_symbols(&object))
    }

    /// The function `address` (link-time) is in, demangled without its hash.
    pub fn name(&self, address: u64) -> Option<String> {
        let i = self.0.partition_point(|(start, ..)| *start <= address);
        let (start, size, name) = self.0.get(i.checked_sub(1)?)?;
        // A symbol without a size covers up to the next one.
        let inside = *size == 0 || address - start < *size;
        inside.then(|| without_hash(&rustc_demangle::demangle(name).to_string()))
    }
}

fn function_symbols(object: &object::File<'_>) -> FunctionSymbols {
    let mut symbols: Vec<(u64, u64, String)> = object
        .symbols()
        .chain(object.dynamic_symbols())
        .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_owned())))
        .collect();
    symbols.sort();
    symbols.dedup_by_key(|(address, ..)| *address);
    FunctionSymbols(symbols)
}

/// `app::x::f::h0123456789abcdef` → `app::x::f` (rustc's legacy mangling keeps a hash).
fn without_hash(name: &str) -> String {
    match name.rsplit_once("::h") {
        Some((path, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            path.to_owned()
        }
        _ => name.to_owned(),
    }
}
