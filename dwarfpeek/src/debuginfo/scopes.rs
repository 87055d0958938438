//! Which local variables are alive at a code address, by the DWARF scopes that hold it
//! (functions, inlined calls, lexical blocks): what tells a thread that holds a lock guard
//! (a `MutexGuard<LockTable>` in scope in one of its frames) from one that waits for it.
//!
//! Static analysis of the executable only: no variable's value is read. In optimized code
//! scopes are approximate and a guard may have no variable at all, so "not found" means
//! "not known", never "not held".

use super::{DebugInfoError, Executable, Slice};
use gimli::{EntriesTreeNode, UnitRef};

impl Executable {
    /// For each of `addresses` (link-time), whether a local variable or parameter whose
    /// type is named `type_name` (`MutexGuard<app::table::Table>`, as DWARF names it)
    /// is in scope there.
    pub fn variable_in_scope(
        &self,
        addresses: &[u64],
        type_name: &str,
    ) -> Result<Vec<bool>, DebugInfoError> {
        self.with_dwarf(|dwarf| {
            let mut found = vec![false; addresses.len()];
            let mut headers = dwarf.units();
            while let Some(header) = headers.next()? {
                let unit = dwarf.unit(header)?;
                let unit = unit.unit_ref(dwarf);
                let mut covered = Vec::new();
                let mut ranges = unit.unit_ranges()?;
                while let Some(range) = ranges.next()? {
                    covered.push(range);
                }
                for (i, &address) in addresses.iter().enumerate() {
                    if found[i]
                        || !covered
                            .iter()
                            .any(|r| r.begin <= address && address < r.end)
                    {
                        continue;
                    }
                    let mut tree = unit.entries_tree(None)?;
                    found[i] = search(unit, tree.root()?, address, type_name, 0)?;
                }
            }
            Ok(found)
        })
    }
}

/// Deeper scopes than this are not real code.
const MAX_NESTING: usize = 256;

/// Whether a variable of `type_name` is in scope at `address` under `node`: a scope that does
/// not hold the address is skipped whole.
fn search<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    node: EntriesTreeNode<'_, '_, Slice<'d>>,
    address: u64,
    type_name: &str,
    depth: usize,
) -> Result<bool, gimli::Error> {
    if depth > MAX_NESTING {
        return Ok(false);
    }
    let mut children = node.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        let hit = match entry.tag() {
            gimli::DW_TAG_variable | gimli::DW_TAG_formal_parameter if depth > 0 => {
                type_named(unit, entry, type_name)?
            }
            gimli::DW_TAG_subprogram
            | gimli::DW_TAG_lexical_block
            | gimli::DW_TAG_inlined_subroutine => {
                covers(unit, entry, address)? && search(unit, child, address, type_name, depth + 1)?
            }
            // Functions sit inside namespaces and types.
            gimli::DW_TAG_namespace
            | gimli::DW_TAG_structure_type
            | gimli::DW_TAG_enumeration_type
                if depth == 0 =>
            {
                search(unit, child, address, type_name, 0)?
            }
            _ => false,
        };
        if hit {
            return Ok(true);
        }
    }
    Ok(false)
}

fn covers<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    entry: &gimli::DebuggingInformationEntry<Slice<'d>>,
    address: u64,
) -> Result<bool, gimli::Error> {
    let mut ranges = unit.die_ranges(entry)?;
    while let Some(range) = ranges.next()? {
        if range.begin <= address && address < range.end {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the entry's `DW_AT_type` (through an abstract origin for inlined variables) is a
/// type named `type_name`.
fn type_named<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    entry: &gimli::DebuggingInformationEntry<Slice<'d>>,
    type_name: &str,
) -> Result<bool, gimli::Error> {
    let mut attrs = (entry.attr_value(gimli::DW_AT_type), None);
    if attrs.0.is_none() {
        if let Some(gimli::AttributeValue::UnitRef(origin)) =
            entry.attr_value(gimli::DW_AT_abstract_origin)
        {
            let origin = unit.entry(origin)?;
            attrs.1 = origin.attr_value(gimli::DW_AT_type);
        }
    }
    let Some(gimli::AttributeValue::UnitRef(ty)) = attrs.0.or(attrs.1) else {
        return Ok(false);
    };
    let ty = unit.entry(ty)?;
    let Some(name) = ty.attr_value(gimli::DW_AT_name) else {
        return Ok(false);
    };
    Ok(unit.attr_string(name)?.slice() == type_name.as_bytes())
}
