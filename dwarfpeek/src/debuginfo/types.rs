//! Finding a struct by its Rust path (`DW_TAG_structure_type` under nested
//! `DW_TAG_namespace`s) and the offset and size of one of its members.
//!
//! Only constant member offsets are read, which is all rustc emits; anything else is
//! reported, not guessed.

use super::{DebugInfoError, Dwarf, Executable, Slice};
use gimli::{constants, AttributeValue, EntriesTreeNode, UnitOffset, UnitRef};

/// One member of a struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Bytes from the start of the struct.
    pub offset: u64,
    /// The member type's `DW_AT_byte_size`, when the DWARF gives one.
    pub byte_size: Option<u64>,
}

impl Executable {
    /// The member `member` of the struct whose Rust path is `type_path`
    /// (e.g. `app::table::Entry`).
    pub fn struct_member(&self, type_path: &str, member: &str) -> Result<Member, DebugInfoError> {
        let path: Vec<&str> = type_path.split("::").collect();
        let found = self.with_dwarf(|dwarf| find_member(dwarf, &path, member))?;
        let err_path = || self.path.clone();
        match found {
            Lookup::NoType => Err(DebugInfoError::TypeNotFound {
                path: err_path(),
                type_path: type_path.to_owned(),
            }),
            Lookup::NoMember => Err(DebugInfoError::MemberNotFound {
                path: err_path(),
                type_path: type_path.to_owned(),
                member: member.to_owned(),
            }),
            Lookup::NoOffset => Err(DebugInfoError::UnsupportedMemberLocation {
                path: err_path(),
                type_path: type_path.to_owned(),
                member: member.to_owned(),
            }),
            Lookup::Found(m) => Ok(m),
        }
    }
}

enum Lookup {
    NoType,
    NoMember,
    NoOffset,
    Found(Member),
}

fn find_member(dwarf: &Dwarf<'_>, path: &[&str], member: &str) -> Result<Lookup, gimli::Error> {
    // A struct is described in every unit that uses it; a unit where it lacks the member
    // (a declaration only) does not end the search.
    let mut best = Lookup::NoType;
    let mut headers = dwarf.units();
    while let Some(header) = headers.next()? {
        let unit = dwarf.unit(header)?;
        let unit = unit.unit_ref(dwarf);
        let mut tree = unit.entries_tree(None)?;
        let structure = [constants::DW_TAG_structure_type];
        let Some(offset) = find_in_namespaces(unit, tree.root()?, path, &structure)? else {
            continue;
        };
        match member_of(unit, offset, member)? {
            found @ Lookup::Found(_) => return Ok(found),
            other => best = other,
        }
    }
    Ok(best)
}

/// The definition (not a declaration) of `path` (namespaces, then the item's name) among
/// `node`'s children, whose tag is one of `tags`.
pub(super) fn find_in_namespaces<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    node: EntriesTreeNode<'_, '_, Slice<'d>>,
    path: &[&str],
    tags: &[constants::DwTag],
) -> Result<Option<UnitOffset>, gimli::Error> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(None);
    };
    let mut children = node.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        let tag = entry.tag();
        if !has_name(unit, entry, first)? {
            continue;
        }
        if rest.is_empty() {
            let declaration = matches!(
                entry.attr_value(constants::DW_AT_declaration),
                Some(AttributeValue::Flag(true))
            );
            if tags.contains(&tag) && !declaration {
                return Ok(Some(entry.offset()));
            }
        } else if tag == constants::DW_TAG_namespace {
            // Recursion is bounded by the path's length, not by the file.
            if let Some(found) = find_in_namespaces(unit, child, rest, tags)? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

fn member_of<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    structure: UnitOffset,
    member: &str,
) -> Result<Lookup, gimli::Error> {
    let mut tree = unit.entries_tree(Some(structure))?;
    let mut children = tree.root()?.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        if entry.tag() != constants::DW_TAG_member || !has_name(unit, entry, member)? {
            continue;
        }
        let Some(offset) = entry
            .attr(constants::DW_AT_data_member_location)
            .and_then(|attr| attr.udata_value())
        else {
            return Ok(Lookup::NoOffset);
        };
        let byte_size = match entry.attr_value(constants::DW_AT_type) {
            Some(ty) => with_type(unit, ty, byte_size)?.flatten(),
            None => None,
        };
        return Ok(Lookup::Found(Member { offset, byte_size }));
    }
    Ok(Lookup::NoMember)
}

/// Whether `entry`'s `DW_AT_name` is `name`.
pub(super) fn has_name<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    entry: &gimli::DebuggingInformationEntry<Slice<'d>>,
    name: &str,
) -> Result<bool, gimli::Error> {
    match entry.attr_value(constants::DW_AT_name) {
        Some(value) => Ok(unit.attr_string(value)?.slice() == name.as_bytes()),
        None => Ok(false),
    }
}

/// Runs `f` on the type entry a `DW_AT_type` value refers to, in this unit or, for a
/// `DW_FORM_ref_addr` (rustc uses them across units in optimized builds), in the unit that
/// holds it. `None` for a reference this probe does not follow.
pub(super) fn with_type<'d, T>(
    unit: UnitRef<'_, Slice<'d>>,
    value: AttributeValue<Slice<'d>>,
    f: impl FnOnce(UnitRef<'_, Slice<'d>>, UnitOffset) -> Result<T, gimli::Error>,
) -> Result<Option<T>, gimli::Error> {
    match value {
        AttributeValue::UnitRef(offset) => f(unit, offset).map(Some),
        AttributeValue::DebugInfoRef(target) => {
            let mut headers = unit.dwarf.units();
            while let Some(header) = headers.next()? {
                if let Some(offset) = target.to_unit_offset(&header) {
                    let other = unit.dwarf.unit(header)?;
                    return f(other.unit_ref(unit.dwarf), offset).map(Some);
                }
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// The `DW_AT_byte_size` of the type at `offset`.
pub(super) fn byte_size<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    offset: UnitOffset,
) -> Result<Option<u64>, gimli::Error> {
    Ok(unit
        .entry(offset)?
        .attr(constants::DW_AT_byte_size)
        .and_then(|attr| attr.udata_value()))
}

#[cfg(test)]
mod tests {
    use super::super::{DebugInfoError, Executable, FunctionSymbol};

    fn this_exe() -> Executable {
        Executable::open(&std::env::current_exe().expect("current exe")).expect("open test exe")
    }

    #[test]
    fn member_offsets_match_the_compiler() {
        let exe = this_exe();
        let ty = "dwarfpeek::debuginfo::symbols::FunctionSymbol";
        for (member, offset) in [
            ("address", std::mem::offset_of!(FunctionSymbol, address)),
            (
                "file_offset",
                std::mem::offset_of!(FunctionSymbol, file_offset),
            ),
        ] {
            let found = exe.struct_member(ty, member).expect("member");
            assert_eq!(found.offset, offset as u64, "{member}");
            assert_eq!(found.byte_size, Some(8), "{member}");
        }
    }

    #[test]
    fn missing_names_are_errors() {
        let exe = this_exe();
        let err = exe.struct_member("dwarfpeek::NoSuchType", "x").unwrap_err();
        assert!(matches!(err, DebugInfoError::TypeNotFound { .. }), "{err}");
        let ty = "dwarfpeek::debuginfo::symbols::FunctionSymbol";
        let err = exe.struct_member(ty, "no_such_member").unwrap_err();
        assert!(
            matches!(err, DebugInfoError::MemberNotFound { .. }),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let data = std::fs::read(std::env::current_exe().expect("current exe")).expect("read");
        let dir = std::env::temp_dir();
        for (i, len) in [0, 64, 4096, data.len() / 3, data.len() / 2]
            .into_iter()
            .enumerate()
        {
            let path = dir.join(format!("dwarfpeek-garbage-{}-{i}", std::process::id()));
            std::fs::write(&path, &data[..len]).expect("write");
            if let Ok(exe) = Executable::open(&path) {
                // Any answer or error will do; a panic fails the test.
                let _ = exe.struct_member("dwarfpeek::debuginfo::Member", "offset");
                if let Ok(f) = exe.function("dwarfpeek::debuginfo::Executable::open") {
                    let _ = exe.subprogram(&f);
                }
            }
            std::fs::remove_file(&path).expect("remove");
        }
    }
}
