//! The DWARF subprogram that starts at a function's entry address, and its formal
//! parameters: their names, the kind of value each one is, and where each one is when the
//! function is entered.
//!
//! The subprogram is found by address rather than by name, so the parameters described are
//! those of the very code a uprobe hits (one function may have several DWARF entries; only
//! one starts where the symbol does). Where a parameter lives is read, not assumed: in an
//! optimized build the compiler may move, fold or drop arguments, and only the location
//! lists know.

use super::types::{byte_size, with_type};
use super::{DebugInfoError, Dwarf, Executable, FunctionSymbol, Slice};
use gimli::{constants, AttributeValue, EntriesTreeNode, Operation, UnitOffset, UnitRef};

/// Namespaces nest this deep at most before the walk gives up on a (bad) file.
const MAX_NAMESPACE_DEPTH: usize = 64;
/// How many typedef/qualifier/origin links are followed before giving up on a cycle.
const MAX_LINKS: usize = 16;

/// A function as DWARF describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subprogram {
    /// The enclosing namespaces, outermost first, and the function's own name.
    pub path: Vec<String>,
    /// `DW_CC_nocall`: the optimizer changed the calling convention (dropped or folded
    /// arguments), so argument positions cannot be derived from the signature.
    pub nocall: bool,
    /// The formal parameters in declaration order.
    pub parameters: Vec<Parameter>,
}

impl Subprogram {
    /// The Rust path, e.g. `app::change::apply`.
    pub fn rust_path(&self) -> String {
        self.path.join("::")
    }

    /// The index (0 = first) and description of the parameter called `name`.
    pub fn parameter(&self, name: &str) -> Option<(usize, &Parameter)> {
        self.parameters
            .iter()
            .enumerate()
            .find(|(_, p)| p.name.as_deref() == Some(name))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parameter {
    pub name: Option<String>,
    pub class: ParameterClass,
    /// The type's size in bytes (pointers: the pointer's), when the DWARF gives it.
    pub byte_size: Option<u64>,
    /// Where the value is when the function's first instruction runs.
    pub entry: EntryLocation,
}

/// What kind of value a parameter's type is, as far as passing it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParameterClass {
    /// A reference, raw pointer or `Box` (rustc describes `Box<T>` as a pointer type).
    Pointer,
    /// An integer, `bool`, `char` or C-like enum.
    Integer,
    Float,
    /// A struct, union or enum with data.
    Aggregate,
    /// No type, or one this probe does not classify.
    Unknown,
}

/// Where a parameter is at function entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryLocation {
    /// In this DWARF register (for x86-64: 5 = rdi, 4 = rsi, 1 = rdx, ...).
    Register(u16),
    /// In a stack slot of the frame, written by the prologue: an unoptimized build, where
    /// arguments arrive as the calling convention says and are spilled at once.
    Stack,
    /// Folded into a constant by the optimizer: no register carries it.
    Constant,
    /// Optimized out, or a location that does not cover the entry address.
    Absent,
    /// A location this probe does not interpret (pieces, computed values).
    Other,
}

impl Executable {
    /// The subprogram whose code starts at `function`'s address.
    pub fn subprogram(&self, function: &FunctionSymbol) -> Result<Subprogram, DebugInfoError> {
        let found = self.with_dwarf(|dwarf| find_subprogram(dwarf, function.address))?;
        found.ok_or_else(|| DebugInfoError::SubprogramNotFound {
            path: self.path.clone(),
            function: function.path.clone(),
            address: function.address,
        })
    }
}

fn find_subprogram(dwarf: &Dwarf<'_>, address: u64) -> Result<Option<Subprogram>, gimli::Error> {
    let mut headers = dwarf.units();
    while let Some(header) = headers.next()? {
        let unit = dwarf.unit(header)?;
        let unit = unit.unit_ref(dwarf);
        if !unit_covers(unit, address)? {
            continue;
        }
        let mut tree = unit.entries_tree(None)?;
        let mut namespaces = Vec::new();
        if let Some(found) = walk(unit, tree.root()?, address, &mut namespaces)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Whether the unit's address ranges include `address` (a unit without ranges is searched).
fn unit_covers<'d>(unit: UnitRef<'_, Slice<'d>>, address: u64) -> Result<bool, gimli::Error> {
    let mut ranges = unit.unit_ranges()?;
    let mut any = false;
    while let Some(range) = ranges.next()? {
        any = true;
        if range.begin <= address && address < range.end {
            return Ok(true);
        }
    }
    Ok(!any)
}

/// Looks for the subprogram at `address` among `node`'s children, descending namespaces.
fn walk<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    node: EntriesTreeNode<'_, '_, Slice<'d>>,
    address: u64,
    namespaces: &mut Vec<String>,
) -> Result<Option<Subprogram>, gimli::Error> {
    let mut children = node.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        match entry.tag() {
            constants::DW_TAG_namespace if namespaces.len() < MAX_NAMESPACE_DEPTH => {
                namespaces.push(name_of(unit, entry)?.unwrap_or_default());
                let found = walk(unit, child, address, namespaces)?;
                namespaces.pop();
                if found.is_some() {
                    return Ok(found);
                }
            }
            constants::DW_TAG_subprogram => {
                let low_pc = match entry.attr_value(constants::DW_AT_low_pc) {
                    Some(value) => unit.attr_address(value)?,
                    None => None,
                };
                if low_pc == Some(address) {
                    let mut path = namespaces.clone();
                    path.push(name_of(unit, entry)?.unwrap_or_default());
                    let nocall = matches!(
                        entry.attr_value(constants::DW_AT_calling_convention),
                        Some(AttributeValue::CallingConvention(constants::DW_CC_nocall))
                    );
                    let parameters = parameters(unit, child, address)?;
                    return Ok(Some(Subprogram {
                        path,
                        nocall,
                        parameters,
                    }));
                }
            }
            _ => {}
        }
    }
    Ok(None)
}

fn parameters<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    node: EntriesTreeNode<'_, '_, Slice<'d>>,
    entry_pc: u64,
) -> Result<Vec<Parameter>, gimli::Error> {
    let mut out = Vec::new();
    let mut children = node.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        if entry.tag() != constants::DW_TAG_formal_parameter {
            continue;
        }
        let (class, byte_size) = match linked_attr(unit, entry, constants::DW_AT_type)? {
            Some(ty) => with_type(unit, ty, |unit, ty| classify(unit, ty, 0))?
                .unwrap_or((ParameterClass::Unknown, None)),
            None => (ParameterClass::Unknown, None),
        };
        out.push(Parameter {
            name: name_of(unit, entry)?,
            class,
            byte_size,
            entry: entry_location(unit, entry, entry_pc)?,
        });
    }
    Ok(out)
}

fn entry_location<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    entry: &gimli::DebuggingInformationEntry<Slice<'d>>,
    entry_pc: u64,
) -> Result<EntryLocation, gimli::Error> {
    let Some(value) = entry.attr_value(constants::DW_AT_location) else {
        return Ok(if entry.attr(constants::DW_AT_const_value).is_some() {
            EntryLocation::Constant
        } else {
            EntryLocation::Absent
        });
    };
    // A location list (optimized code): the entry that covers the first instruction.
    if let Some(mut list) = unit.attr_locations(value)? {
        while let Some(item) = list.next()? {
            if item.range.begin <= entry_pc && entry_pc < item.range.end {
                return expression_location(unit, item.data);
            }
        }
        return Ok(EntryLocation::Absent);
    }
    match value.exprloc_value() {
        Some(expression) => expression_location(unit, expression),
        None => Ok(EntryLocation::Other),
    }
}

fn expression_location<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    expression: gimli::Expression<Slice<'d>>,
) -> Result<EntryLocation, gimli::Error> {
    let mut ops = expression.operations(unit.encoding());
    let first = ops.next()?;
    let rest = ops.next()?;
    Ok(match (first, rest) {
        (Some(Operation::Register { register }), None) => EntryLocation::Register(register.0),
        (Some(Operation::FrameOffset { .. }), _) => EntryLocation::Stack,
        _ => EntryLocation::Other,
    })
}

/// The class and size of the type at `offset`, through typedefs and qualifiers (`depth`
/// counts those links, so a reference cycle in a bad file ends).
fn classify<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    offset: UnitOffset,
    depth: usize,
) -> Result<(ParameterClass, Option<u64>), gimli::Error> {
    const UNKNOWN: (ParameterClass, Option<u64>) = (ParameterClass::Unknown, None);
    let entry = unit.entry(offset)?;
    let class = match entry.tag() {
        constants::DW_TAG_pointer_type
        | constants::DW_TAG_reference_type
        | constants::DW_TAG_rvalue_reference_type => ParameterClass::Pointer,
        constants::DW_TAG_base_type => match entry.attr_value(constants::DW_AT_encoding) {
            Some(AttributeValue::Encoding(constants::DW_ATE_float)) => ParameterClass::Float,
            Some(_) => ParameterClass::Integer,
            None => ParameterClass::Unknown,
        },
        constants::DW_TAG_enumeration_type => ParameterClass::Integer,
        constants::DW_TAG_structure_type
        | constants::DW_TAG_union_type
        | constants::DW_TAG_class_type => ParameterClass::Aggregate,
        constants::DW_TAG_typedef
        | constants::DW_TAG_const_type
        | constants::DW_TAG_volatile_type => {
            return match entry.attr_value(constants::DW_AT_type) {
                Some(next) if depth < MAX_LINKS => {
                    Ok(
                        with_type(unit, next, |unit, next| classify(unit, next, depth + 1))?
                            .unwrap_or(UNKNOWN),
                    )
                }
                _ => Ok(UNKNOWN),
            };
        }
        _ => ParameterClass::Unknown,
    };
    let size = match (class, byte_size(unit, offset)?) {
        // rustc gives pointer types no DW_AT_byte_size: they are the unit's address size.
        (ParameterClass::Pointer, None) => Some(u64::from(unit.encoding().address_size)),
        (_, size) => size,
    };
    Ok((class, size))
}

/// `entry`'s name, its own or that of the declaration it completes or the abstract
/// instance it is a copy of.
fn name_of<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    entry: &gimli::DebuggingInformationEntry<Slice<'d>>,
) -> Result<Option<String>, gimli::Error> {
    match linked_attr(unit, entry, constants::DW_AT_name)? {
        Some(value) => Ok(Some(
            unit.attr_string(value)?.to_string_lossy().into_owned(),
        )),
        None => Ok(None),
    }
}

/// The attribute `name` of `entry`, or of the entry its `DW_AT_abstract_origin` or
/// `DW_AT_specification` points to (within the unit), following a bounded chain.
fn linked_attr<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    entry: &gimli::DebuggingInformationEntry<Slice<'d>>,
    name: constants::DwAt,
) -> Result<Option<AttributeValue<Slice<'d>>>, gimli::Error> {
    if let Some(value) = entry.attr_value(name) {
        return Ok(Some(value));
    }
    let mut next = origin(entry);
    for _ in 0..MAX_LINKS {
        let Some(offset) = next else { break };
        let linked = unit.entry(offset)?;
        if let Some(value) = linked.attr_value(name) {
            return Ok(Some(value));
        }
        next = origin(&linked);
    }
    Ok(None)
}

fn origin<'d>(entry: &gimli::DebuggingInformationEntry<Slice<'d>>) -> Option<UnitOffset> {
    [
        constants::DW_AT_abstract_origin,
        constants::DW_AT_specification,
    ]
    .into_iter()
    .find_map(|at| match entry.attr_value(at) {
        Some(AttributeValue::UnitRef(offset)) => Some(offset),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Executable;
    use super::*;

    /// Something to look up in this very test executable (built with debug info).
    #[inline(never)]
    fn probe_target(first: &mut u64, second: u32, third: &str) -> u64 {
        *first += u64::from(second) + third.len() as u64;
        *first
    }

    #[test]
    fn finds_this_test_function_and_its_parameters() {
        let mut x = 1;
        assert_eq!(std::hint::black_box(probe_target)(&mut x, 2, "abc"), 6);
        let exe = Executable::open(&std::env::current_exe().expect("current exe"))
            .expect("open test executable");
        let path = "dwarfpeek::debuginfo::subprogram::tests::probe_target";
        let function = exe.function(path).expect("function symbol");
        let sub = exe.subprogram(&function).expect("subprogram");
        assert_eq!(sub.rust_path(), path);
        let names: Vec<_> = sub.parameters.iter().map(|p| p.name.as_deref()).collect();
        assert_eq!(names, [Some("first"), Some("second"), Some("third")]);
        let (index, first) = sub.parameter("first").expect("parameter first");
        assert_eq!(index, 0);
        assert_eq!(first.class, ParameterClass::Pointer);
        assert_eq!(first.byte_size, Some(8));
        let (_, third) = sub.parameter("third").expect("parameter third");
        assert_eq!(third.class, ParameterClass::Aggregate);
        assert_eq!(third.byte_size, Some(16));
        // Unoptimized: the slot follows from the signature (pointer, u32, then `third`).
        assert_eq!(crate::abi::argument_register(&sub, 2).expect("register"), 2);
    }
}
