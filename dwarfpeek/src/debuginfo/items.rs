//! A named item's parts, by Rust path: every member of a struct, every variant of an enum
//! (the `DW_TAG_enumerator`s of a C-like enum, or the variants of the `DW_TAG_variant_part`
//! of an enum with data), and a static variable (its symbol and its `DW_TAG_variable`).
//!
//! Names only: what a caller relies on before it reads anything (the names its contract with
//! the program lists). Offsets and sizes are [`super::types`]'s business.

use super::types::find_in_namespaces;
use super::{DebugInfoError, Dwarf, Executable, Slice};
use gimli::{constants, AttributeValue, Operation, UnitOffset, UnitRef};
use object::SymbolKind;

/// A static variable, as the symbol table and the DWARF place it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticVariable {
    /// The Rust path, e.g. `app::table::TABLE`.
    pub path: String,
    /// The mangled symbol name.
    pub symbol: String,
    /// The symbol's virtual address.
    pub address: u64,
    /// The address in the `DW_TAG_variable`'s location (`DW_OP_addr`), when it has one.
    pub dwarf_address: Option<u64>,
}

impl Executable {
    /// The names of the members of the struct `type_path`, in DWARF order (unnamed,
    /// artificial members left out).
    pub fn struct_members(&self, type_path: &str) -> Result<Vec<String>, DebugInfoError> {
        let path: Vec<&str> = type_path.split("::").collect();
        let tags = [constants::DW_TAG_structure_type];
        let found = self.with_dwarf(|dwarf| {
            first_match(dwarf, &path, &tags, |unit, offset| {
                child_names(unit, offset, constants::DW_TAG_member).map(Some)
            })
        })?;
        found.ok_or_else(|| DebugInfoError::TypeNotFound {
            path: self.path.clone(),
            type_path: type_path.to_owned(),
        })
    }

    /// The names of the variants of the enum `type_path`, in DWARF order: a C-like enum's
    /// enumerators, or the variants of an enum with data.
    pub fn enum_variants(&self, type_path: &str) -> Result<Vec<String>, DebugInfoError> {
        let path: Vec<&str> = type_path.split("::").collect();
        let tags = [
            constants::DW_TAG_enumeration_type,
            constants::DW_TAG_structure_type,
        ];
        let found = self.with_dwarf(|dwarf| first_match(dwarf, &path, &tags, variants))?;
        found.ok_or_else(|| DebugInfoError::EnumNotFound {
            path: self.path.clone(),
            type_path: type_path.to_owned(),
        })
    }

    /// The static `path`: its data symbol and its `DW_TAG_variable` under the namespaces of
    /// the path. Both must be there.
    pub fn static_variable(&self, path: &str) -> Result<StaticVariable, DebugInfoError> {
        let (symbol, address) = self.data_symbol(path)?;
        let parts: Vec<&str> = path.split("::").collect();
        let tags = [constants::DW_TAG_variable];
        let found = self.with_dwarf(|dwarf| {
            first_match(dwarf, &parts, &tags, |unit, offset| {
                variable_address(unit, offset).map(Some)
            })
        })?;
        let Some(dwarf_address) = found else {
            return Err(DebugInfoError::StaticNotInDwarf {
                path: self.path.clone(),
                static_path: path.to_owned(),
            });
        };
        Ok(StaticVariable {
            path: path.to_owned(),
            symbol,
            address,
            dwarf_address,
        })
    }

    /// The one data symbol whose demangled name, without the hash, is `path`: its mangled
    /// name and address. Symbols only, so it is quick.
    pub fn data_symbol(&self, path: &str) -> Result<(String, u64), DebugInfoError> {
        let mut found = self.symbols_named(path, SymbolKind::Data)?;
        match found.len() {
            0 => Err(DebugInfoError::StaticNotFound {
                path: self.path.clone(),
                static_path: path.to_owned(),
            }),
            1 => Ok(found.remove(0)),
            count => Err(DebugInfoError::AmbiguousStatic {
                path: self.path.clone(),
                static_path: path.to_owned(),
                count,
            }),
        }
    }
}

/// Runs `f` on the first definition of `path` (with one of `tags`) in each unit until it
/// answers `Some`: a type is described in every unit that uses it.
fn first_match<'d, T>(
    dwarf: &Dwarf<'d>,
    path: &[&str],
    tags: &[constants::DwTag],
    f: impl Fn(UnitRef<'_, Slice<'d>>, UnitOffset) -> Result<Option<T>, gimli::Error>,
) -> Result<Option<T>, gimli::Error> {
    let mut headers = dwarf.units();
    while let Some(header) = headers.next()? {
        let unit = dwarf.unit(header)?;
        let unit = unit.unit_ref(dwarf);
        let mut tree = unit.entries_tree(None)?;
        let Some(offset) = find_in_namespaces(unit, tree.root()?, path, tags)? else {
            continue;
        };
        if let Some(found) = f(unit, offset)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The names of the children of the entry at `offset` tagged `tag`.
fn child_names<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    offset: UnitOffset,
    tag: constants::DwTag,
) -> Result<Vec<String>, gimli::Error> {
    let mut tree = unit.entries_tree(Some(offset))?;
    let mut names = Vec::new();
    let mut children = tree.root()?.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        if entry.tag() != tag {
            continue;
        }
        if let Some(value) = entry.attr_value(constants::DW_AT_name) {
            names.push(unit.attr_string(value)?.to_string_lossy().into_owned());
        }
    }
    Ok(names)
}

/// An enum's variant names; `None` when the entry is a struct without a variant part.
fn variants<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    offset: UnitOffset,
) -> Result<Option<Vec<String>>, gimli::Error> {
    if unit.entry(offset)?.tag() == constants::DW_TAG_enumeration_type {
        return child_names(unit, offset, constants::DW_TAG_enumerator).map(Some);
    }
    // An enum with data: structure { variant_part { variant { member "Name" } ... } }.
    let mut tree = unit.entries_tree(Some(offset))?;
    let mut children = tree.root()?.children();
    while let Some(part) = children.next()? {
        if part.entry().tag() != constants::DW_TAG_variant_part {
            continue;
        }
        let mut names = Vec::new();
        let mut variants = part.children();
        while let Some(variant) = variants.next()? {
            if variant.entry().tag() != constants::DW_TAG_variant {
                continue;
            }
            let mut members = variant.children();
            while let Some(member) = members.next()? {
                let entry = member.entry();
                if entry.tag() != constants::DW_TAG_member {
                    continue;
                }
                if let Some(value) = entry.attr_value(constants::DW_AT_name) {
                    names.push(unit.attr_string(value)?.to_string_lossy().into_owned());
                }
            }
        }
        return Ok(Some(names));
    }
    Ok(None)
}

/// The address a `DW_TAG_variable`'s location names (`DW_OP_addr` or `DW_OP_addrx`).
fn variable_address<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    offset: UnitOffset,
) -> Result<Option<u64>, gimli::Error> {
    let entry = unit.entry(offset)?;
    let Some(AttributeValue::Exprloc(expression)) = entry.attr_value(constants::DW_AT_location)
    else {
        return Ok(None);
    };
    let mut ops = expression.operations(unit.encoding());
    Ok(match ops.next()? {
        Some(Operation::Address { address }) => Some(address),
        Some(Operation::AddressIndex { index }) => Some(unit.address(index)?),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{DebugInfoError, Executable};

    /// Something with data in its variants, to find in this very test executable.
    #[allow(dead_code)]
    pub(super) enum Shape {
        Dot,
        Circle { radius: u32 },
        Label(String),
    }

    #[allow(dead_code)]
    #[derive(Clone, Copy)]
    pub(super) enum Color {
        Red,
        Green,
    }

    pub(super) static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(7);

    fn this_exe() -> Executable {
        Executable::open(&std::env::current_exe().expect("current exe")).expect("open test exe")
    }

    #[test]
    fn lists_members_variants_and_statics() {
        // Use them, so that their descriptions are emitted.
        let shapes = std::hint::black_box(vec![
            Shape::Dot,
            Shape::Circle { radius: 1 },
            Shape::Label("x".into()),
        ]);
        let colors = std::hint::black_box([Color::Red, Color::Green]);
        assert_eq!(shapes.len() + colors.len(), 5);
        let counter = std::hint::black_box(&COUNTER);
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);

        let exe = this_exe();
        let here = "dwarfpeek::debuginfo::items::tests";
        let members = exe
            .struct_members("dwarfpeek::debuginfo::symbols::FunctionSymbol")
            .expect("members");
        assert_eq!(members, ["path", "symbol", "address", "file_offset"]);
        let shape = exe.enum_variants(&format!("{here}::Shape")).expect("Shape");
        assert_eq!(shape, ["Dot", "Circle", "Label"]);
        let color = exe.enum_variants(&format!("{here}::Color")).expect("Color");
        assert_eq!(color, ["Red", "Green"]);
        let stat = exe
            .static_variable(&format!("{here}::COUNTER"))
            .expect("COUNTER");
        assert_eq!(stat.dwarf_address, Some(stat.address));
    }

    #[test]
    fn missing_items_are_errors() {
        let exe = this_exe();
        let err = exe.enum_variants("dwarfpeek::NoSuchEnum").unwrap_err();
        assert!(matches!(err, DebugInfoError::EnumNotFound { .. }), "{err}");
        // A struct is not an enum.
        let err = exe
            .enum_variants("dwarfpeek::debuginfo::symbols::FunctionSymbol")
            .unwrap_err();
        assert!(matches!(err, DebugInfoError::EnumNotFound { .. }), "{err}");
        let err = exe.struct_members("dwarfpeek::NoSuchType").unwrap_err();
        assert!(matches!(err, DebugInfoError::TypeNotFound { .. }), "{err}");
        let err = exe
            .static_variable("dwarfpeek::NO_SUCH_STATIC")
            .unwrap_err();
        assert!(
            matches!(err, DebugInfoError::StaticNotFound { .. }),
            "{err}"
        );
    }
}
