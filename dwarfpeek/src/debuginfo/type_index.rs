//! Every type and static variable the DWARF of an executable describes: types by
//! [`TypeRef`] and by Rust path, statics by Rust path. Each compilation unit is read into
//! owned data the first time a query needs it (or all at once by [`TypeIndex::build`]), so
//! a question about one static costs the units it lives in, not the whole `.debug_info`.
//!
//! It reads the file's DWARF only (no memory; symbols only to place a static) and knows no
//! std or program names. A damaged file gives an error or an index with dangling references,
//! never a panic: nesting deeper than a bound is not descended, and alias chains are
//! followed a bounded number of links.

use super::sections::DwarfSource;
use super::type_defs::{
    BaseKind, Composite, Enumerator, Field, TemplateParam, TypeDef, TypeKind, TypeRef, Variant,
    VariantPart,
};
use super::{DebugInfoError, Dwarf, Executable, Slice};
use gimli::{
    constants, AttributeValue, DebugInfoOffset, DebuggingInformationEntry, EntriesTreeNode, UnitRef,
};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Namespaces and types nest this deep at most before the walk stops descending.
const MAX_NESTING: usize = 64;
/// Typedef and qualifier links followed before a chain counts as a cycle.
const MAX_ALIAS_LINKS: usize = 16;

/// A static variable ready to read: where it is and what type it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypedStatic {
    pub path: String,
    /// The link-time address (its symbol's value): add the load bias for a process.
    pub address: u64,
    pub ty: TypeRef,
}

/// The types and statics of one executable.
#[derive(Debug)]
pub struct TypeIndex {
    /// The DWARF the units are read from on demand.
    source: DwarfSource,
    /// Every compilation unit, by offset.
    units: Vec<UnitSlot>,
    /// The unit of the last type looked up: a value's types are mostly in one unit, so it
    /// is tried before the search.
    last_unit: AtomicUsize,
    address_size: u8,
    little_endian: bool,
}

/// One compilation unit: where it is in `.debug_info`, and its types once read.
#[derive(Debug)]
struct UnitSlot {
    start: DebugInfoOffset,
    /// The offset just past the unit.
    end: u64,
    types: OnceLock<Result<UnitTypes, gimli::Error>>,
}

/// What one unit describes.
#[derive(Debug, Default)]
struct UnitTypes {
    // Looked up millions of times per read: FxHash, not SipHash (whose resistance to
    // chosen keys buys nothing for offsets of the file's own entries).
    types: FxHashMap<TypeRef, TypeDef>,
    by_name: HashMap<String, Vec<TypeRef>>,
    /// Each static variable's type, by Rust path.
    statics: HashMap<String, TypeRef>,
}

impl TypeIndex {
    /// Reads every unit's types and statics. This walks the whole `.debug_info` once (a
    /// quarter of a second for a program with std's debug info); a malformed unit is an
    /// error here. [`TypeIndex::on_demand`] reads only what the queries need.
    pub fn build(exe: &Executable) -> Result<TypeIndex, DebugInfoError> {
        let index = TypeIndex::on_demand(exe)?;
        for slot in &index.units {
            if let Err(error) = index.read_slot(slot) {
                return Err(DebugInfoError::Dwarf {
                    path: index.source.path().to_owned(),
                    error: *error,
                });
            }
        }
        Ok(index)
    }

    /// An index that reads a unit the first time a query needs it: [`TypeIndex::get`]
    /// reads the unit a type is in, [`TypeIndex::find_static`] the unit `.debug_aranges`
    /// places the static in; [`TypeIndex::by_name`] and [`TypeIndex::static_type`] look in
    /// the units read so far and then, if they must, in all. Only the unit headers are read
    /// here; a malformed unit reads as one without types (its references dangle).
    pub fn on_demand(exe: &Executable) -> Result<TypeIndex, DebugInfoError> {
        let little_endian = object::Object::is_little_endian(&exe.object()?);
        let source = exe.dwarf_source()?;
        let mut units = Vec::new();
        let mut address_size = 0;
        let mut headers = source.dwarf().units();
        loop {
            match headers.next() {
                Ok(Some(header)) => {
                    let Some(start) = header.debug_info_offset() else {
                        continue;
                    };
                    if !matches!(header.type_(), gimli::UnitType::Compilation) {
                        continue;
                    }
                    if address_size == 0 {
                        address_size = header.address_size();
                    }
                    let length = header.length_including_self() as u64;
                    units.push(UnitSlot {
                        start,
                        end: (start.0 as u64).saturating_add(length),
                        types: OnceLock::new(),
                    });
                }
                Ok(None) => break,
                Err(error) => {
                    return Err(DebugInfoError::Dwarf {
                        path: source.path().to_owned(),
                        error,
                    })
                }
            }
        }
        Ok(TypeIndex {
            source,
            units,
            last_unit: AtomicUsize::new(0),
            address_size,
            little_endian,
        })
    }

    /// How many types the units read so far hold (all of them after [`TypeIndex::build`]).
    pub fn len(&self) -> usize {
        self.read_units().map(|u| u.types.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The size of a pointer in the executable, in bytes.
    pub fn address_size(&self) -> u8 {
        self.address_size
    }

    pub fn little_endian(&self) -> bool {
        self.little_endian
    }

    pub fn get(&self, ty: TypeRef) -> Option<&TypeDef> {
        let slot = self.slot_of(ty.0)?;
        self.read_slot(slot).ok()?.types.get(&ty)
    }

    /// The type behind typedefs and qualifiers, and for a declaration its definition
    /// elsewhere (by name); `ty` itself when there is nothing to follow or the chain is
    /// broken or too long.
    pub fn resolve(&self, ty: TypeRef) -> TypeRef {
        let mut current = ty;
        for _ in 0..MAX_ALIAS_LINKS {
            match self.get(current).map(|def| (&def.kind, def)) {
                Some((TypeKind::Alias { target: Some(next) }, _)) => current = *next,
                Some((TypeKind::Struct(c) | TypeKind::Union(c), def)) if c.declaration => {
                    return self.by_name(&def.name).unwrap_or(current)
                }
                _ => return current,
            }
        }
        current
    }

    /// A definition (not a declaration) of the type with this Rust path; the same type is
    /// described in every unit that uses it, and any of those descriptions will do (one in
    /// a unit read already is preferred).
    pub fn by_name(&self, name: &str) -> Option<TypeRef> {
        let definition = |unit: &UnitTypes| {
            unit.by_name.get(name)?.iter().copied().find(|ty| {
                !matches!(
                    unit.types.get(ty).map(|d| &d.kind),
                    Some(TypeKind::Struct(c) | TypeKind::Union(c)) if c.declaration
                )
            })
        };
        self.read_units()
            .find_map(definition)
            .or_else(|| self.all_units().find_map(definition))
    }

    /// The type of the static variable with this Rust path (e.g.
    /// `app::table::TABLE`).
    pub fn static_type(&self, path: &str) -> Option<TypeRef> {
        let find = |unit: &UnitTypes| unit.statics.get(path).copied();
        self.read_units()
            .find_map(find)
            .or_else(|| self.all_units().find_map(find))
    }

    /// The static `path` (e.g. `app::table::TABLE`) of `exe`, the executable this
    /// index was built from: its address from the symbol table (the demangled name without
    /// its hash), its type from its `DW_TAG_variable`, looked for first in the unit
    /// `.debug_aranges` gives the address to.
    pub fn find_static(&self, exe: &Executable, path: &str) -> Result<TypedStatic, DebugInfoError> {
        let (_, address) = exe.data_symbol(path)?;
        let ty = self
            .unit_at_address(address)
            .and_then(|slot| self.read_slot(slot).ok()?.statics.get(path).copied())
            .or_else(|| self.static_type(path))
            .ok_or_else(|| DebugInfoError::StaticNotInDwarf {
                path: exe.path().to_owned(),
                static_path: path.to_owned(),
            })?;
        Ok(TypedStatic {
            path: path.to_owned(),
            address,
            ty,
        })
    }

    /// The unit whose range of `.debug_info` holds `offset`.
    fn slot_of(&self, offset: u64) -> Option<&UnitSlot> {
        let holds = |slot: &UnitSlot| slot.start.0 as u64 <= offset && offset < slot.end;
        let last = self.last_unit.load(Ordering::Relaxed);
        if let Some(slot) = self.units.get(last).filter(|slot| holds(slot)) {
            return Some(slot);
        }
        let after = self
            .units
            .partition_point(|slot| slot.start.0 as u64 <= offset);
        let at = after.checked_sub(1)?;
        let slot = self.units.get(at).filter(|slot| holds(slot))?;
        self.last_unit.store(at, Ordering::Relaxed);
        Some(slot)
    }

    /// The unit `.debug_aranges` says describes `address`; None if the section is missing,
    /// damaged or silent about it.
    fn unit_at_address(&self, address: u64) -> Option<&UnitSlot> {
        let dwarf = self.source.dwarf();
        let mut headers = dwarf.debug_aranges.headers();
        while let Some(header) = headers.next().ok()? {
            let mut entries = header.entries();
            while let Some(entry) = entries.next().ok()? {
                let range = entry.range();
                if range.begin <= address && address < range.end {
                    return self.slot_of(header.debug_info_offset().0 as u64);
                }
            }
        }
        None
    }

    /// The units read so far (those that could be).
    fn read_units(&self) -> impl Iterator<Item = &UnitTypes> {
        self.units
            .iter()
            .filter_map(|slot| slot.types.get()?.as_ref().ok())
    }

    /// Every unit that can be read, reading those not read yet.
    fn all_units(&self) -> impl Iterator<Item = &UnitTypes> {
        self.units
            .iter()
            .filter_map(|slot| self.read_slot(slot).ok())
    }

    /// The unit's types, read on first use.
    fn read_slot<'s>(&'s self, slot: &'s UnitSlot) -> Result<&'s UnitTypes, &'s gimli::Error> {
        slot.types
            .get_or_init(|| UnitTypes::read(&self.source.dwarf(), slot.start))
            .as_ref()
    }
}

impl UnitTypes {
    /// Reads the unit at `start`.
    fn read(dwarf: &Dwarf<'_>, start: DebugInfoOffset) -> Result<UnitTypes, gimli::Error> {
        let header = dwarf.debug_info.header_from_offset(start)?;
        let unit = dwarf.unit(header)?;
        let unit = unit.unit_ref(dwarf);
        let mut tree = unit.entries_tree(None)?;
        let mut out = UnitTypes::default();
        out.read_scope(unit, tree.root()?, &mut Vec::new())?;
        Ok(out)
    }

    /// Records the types and statics among `node`'s children, descending namespaces.
    fn read_scope<'d>(
        &mut self,
        unit: UnitRef<'_, Slice<'d>>,
        node: EntriesTreeNode<'_, '_, Slice<'d>>,
        scope: &mut Vec<String>,
    ) -> Result<(), gimli::Error> {
        let mut children = node.children();
        while let Some(child) = children.next()? {
            self.read_entry(unit, child, scope)?;
        }
        Ok(())
    }

    /// Records `node` if it is a namespace (its contents), a static or a type.
    fn read_entry<'d>(
        &mut self,
        unit: UnitRef<'_, Slice<'d>>,
        node: EntriesTreeNode<'_, '_, Slice<'d>>,
        scope: &mut Vec<String>,
    ) -> Result<(), gimli::Error> {
        let entry = node.entry();
        let tag = entry.tag();
        match tag {
            constants::DW_TAG_namespace if scope.len() < MAX_NESTING => {
                scope.push(name(unit, entry)?.unwrap_or_default());
                self.read_scope(unit, node, scope)?;
                scope.pop();
            }
            constants::DW_TAG_variable => {
                let declaration = flag(entry, constants::DW_AT_declaration);
                if let (Some(name), Some(ty), false) =
                    (name(unit, entry)?, type_ref(unit, entry), declaration)
                {
                    self.statics.entry(qualified(scope, &name)).or_insert(ty);
                }
            }
            _ if is_type(tag) => self.read_type(unit, node, scope)?,
            _ => {}
        }
        Ok(())
    }

    fn read_type<'d>(
        &mut self,
        unit: UnitRef<'_, Slice<'d>>,
        node: EntriesTreeNode<'_, '_, Slice<'d>>,
        scope: &mut Vec<String>,
    ) -> Result<(), gimli::Error> {
        let entry = node.entry();
        let tag = entry.tag();
        let Some(offset) = entry.offset().to_debug_info_offset(&unit.header) else {
            return Ok(());
        };
        let own_name = name(unit, entry)?;
        // Pointers and base types carry their whole name already.
        let path = match &own_name {
            Some(n) if is_scoped(tag) => qualified(scope, n),
            Some(n) => n.clone(),
            None => String::new(),
        };
        let byte_size = entry
            .attr(constants::DW_AT_byte_size)
            .and_then(|a| a.udata_value());
        let target = type_ref(unit, entry);
        let kind = match tag {
            constants::DW_TAG_structure_type | constants::DW_TAG_class_type => {
                TypeKind::Struct(self.composite(unit, node, scope, own_name.as_deref())?)
            }
            constants::DW_TAG_union_type => {
                TypeKind::Union(self.composite(unit, node, scope, own_name.as_deref())?)
            }
            constants::DW_TAG_base_type => TypeKind::Base(base_kind(entry)),
            constants::DW_TAG_pointer_type
            | constants::DW_TAG_reference_type
            | constants::DW_TAG_rvalue_reference_type => TypeKind::Pointer { target },
            constants::DW_TAG_array_type => TypeKind::Array {
                element: target,
                count: array_count(node)?,
            },
            constants::DW_TAG_enumeration_type => TypeKind::Enumeration {
                underlying: target,
                enumerators: enumerators(unit, node)?,
            },
            constants::DW_TAG_typedef
            | constants::DW_TAG_const_type
            | constants::DW_TAG_volatile_type => TypeKind::Alias { target },
            constants::DW_TAG_subroutine_type => TypeKind::Subroutine,
            other => TypeKind::Other(other.0),
        };
        let ty = TypeRef(offset.0 as u64);
        if !path.is_empty() {
            self.by_name.entry(path.clone()).or_default().push(ty);
        }
        self.types.insert(
            ty,
            TypeDef {
                name: path,
                byte_size,
                kind,
            },
        );
        Ok(())
    }

    /// A struct's or union's fields, template parameters and variant part; types declared
    /// inside it (an enum's variant structs) are recorded under its name.
    fn composite<'d>(
        &mut self,
        unit: UnitRef<'_, Slice<'d>>,
        node: EntriesTreeNode<'_, '_, Slice<'d>>,
        scope: &mut Vec<String>,
        own_name: Option<&str>,
    ) -> Result<Composite, gimli::Error> {
        let mut out = Composite {
            declaration: flag(node.entry(), constants::DW_AT_declaration),
            ..Composite::default()
        };
        let mut children = node.children();
        while let Some(child) = children.next()? {
            let entry = child.entry();
            match entry.tag() {
                constants::DW_TAG_member => out.fields.push(field(unit, entry)?),
                constants::DW_TAG_template_type_parameter => {
                    out.template_params.push(TemplateParam {
                        name: name(unit, entry)?,
                        ty: type_ref(unit, entry),
                    })
                }
                constants::DW_TAG_variant_part if out.variant_part.is_none() => {
                    out.variant_part = Some(variant_part(unit, child)?);
                }
                tag if is_type(tag) && scope.len() < MAX_NESTING => {
                    scope.push(own_name.unwrap_or_default().to_owned());
                    self.read_type(unit, child, scope)?;
                    scope.pop();
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

fn is_type(tag: constants::DwTag) -> bool {
    matches!(
        tag,
        constants::DW_TAG_structure_type
            | constants::DW_TAG_union_type
            | constants::DW_TAG_class_type
            | constants::DW_TAG_enumeration_type
            | constants::DW_TAG_base_type
            | constants::DW_TAG_pointer_type
            | constants::DW_TAG_reference_type
            | constants::DW_TAG_rvalue_reference_type
            | constants::DW_TAG_array_type
            | constants::DW_TAG_typedef
            | constants::DW_TAG_const_type
            | constants::DW_TAG_volatile_type
            | constants::DW_TAG_subroutine_type
            | constants::DW_TAG_unspecified_type
    )
}

/// Whether a type of this tag is named under its enclosing namespaces.
fn is_scoped(tag: constants::DwTag) -> bool {
    matches!(
        tag,
        constants::DW_TAG_structure_type
            | constants::DW_TAG_union_type
            | constants::DW_TAG_class_type
            | constants::DW_TAG_enumeration_type
            | constants::DW_TAG_typedef
    )
}

fn qualified(scope: &[String], name: &str) -> String {
    let mut path = scope.join("::");
    if !path.is_empty() {
        path.push_str("::");
    }
    path.push_str(name);
    path
}

fn base_kind<'d>(entry: &DebuggingInformationEntry<Slice<'d>>) -> BaseKind {
    match entry.attr_value(constants::DW_AT_encoding) {
        Some(AttributeValue::Encoding(encoding)) => match encoding {
            constants::DW_ATE_boolean => BaseKind::Bool,
            constants::DW_ATE_signed | constants::DW_ATE_signed_char => BaseKind::Signed,
            constants::DW_ATE_unsigned | constants::DW_ATE_unsigned_char => BaseKind::Unsigned,
            constants::DW_ATE_float => BaseKind::Float,
            constants::DW_ATE_UTF => BaseKind::Char,
            other => BaseKind::Other(other.0),
        },
        _ => BaseKind::Other(0),
    }
}

/// The element count of an array's first `DW_TAG_subrange_type`.
fn array_count<'d>(node: EntriesTreeNode<'_, '_, Slice<'d>>) -> Result<Option<u64>, gimli::Error> {
    let mut children = node.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        if entry.tag() != constants::DW_TAG_subrange_type {
            continue;
        }
        if let Some(count) = entry
            .attr(constants::DW_AT_count)
            .and_then(|a| a.udata_value())
        {
            return Ok(Some(count));
        }
        let lower = entry
            .attr(constants::DW_AT_lower_bound)
            .and_then(|a| a.udata_value())
            .unwrap_or(0);
        return Ok(entry
            .attr(constants::DW_AT_upper_bound)
            .and_then(|a| a.udata_value())
            .and_then(|upper| upper.checked_sub(lower)?.checked_add(1)));
    }
    Ok(None)
}

fn enumerators<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    node: EntriesTreeNode<'_, '_, Slice<'d>>,
) -> Result<Vec<Enumerator>, gimli::Error> {
    let mut children = node.children();
    let mut out = Vec::new();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        if entry.tag() != constants::DW_TAG_enumerator {
            continue;
        }
        let value = entry
            .attr_value(constants::DW_AT_const_value)
            .and_then(constant_bits);
        if let (Some(name), Some(value)) = (name(unit, entry)?, value) {
            out.push(Enumerator { name, value });
        }
    }
    Ok(out)
}

fn variant_part<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    node: EntriesTreeNode<'_, '_, Slice<'d>>,
) -> Result<VariantPart, gimli::Error> {
    let entry = node.entry();
    let discr_at = match entry.attr_value(constants::DW_AT_discr) {
        Some(AttributeValue::UnitRef(offset)) => Some(offset),
        _ => None,
    };
    let mut part = VariantPart {
        discriminant: None,
        variants: Vec::new(),
    };
    let mut children = node.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        match entry.tag() {
            constants::DW_TAG_member if Some(entry.offset()) == discr_at => {
                part.discriminant = Some(field(unit, entry)?);
            }
            constants::DW_TAG_variant => {
                let discr_value = entry
                    .attr_value(constants::DW_AT_discr_value)
                    .and_then(constant_bits);
                let mut members = child.children();
                while let Some(member) = members.next()? {
                    if member.entry().tag() == constants::DW_TAG_member {
                        part.variants.push(Variant {
                            discr_value,
                            field: field(unit, member.entry())?,
                        });
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(part)
}

fn field<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    entry: &DebuggingInformationEntry<Slice<'d>>,
) -> Result<Field, gimli::Error> {
    Ok(Field {
        name: name(unit, entry)?,
        ty: type_ref(unit, entry),
        offset: entry
            .attr(constants::DW_AT_data_member_location)
            .and_then(|a| a.udata_value()),
        artificial: flag(entry, constants::DW_AT_artificial),
    })
}

fn name<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    entry: &DebuggingInformationEntry<Slice<'d>>,
) -> Result<Option<String>, gimli::Error> {
    match entry.attr_value(constants::DW_AT_name) {
        Some(value) => Ok(Some(
            unit.attr_string(value)?.to_string_lossy().into_owned(),
        )),
        None => Ok(None),
    }
}

fn flag<'d>(entry: &DebuggingInformationEntry<Slice<'d>>, at: constants::DwAt) -> bool {
    matches!(entry.attr_value(at), Some(AttributeValue::Flag(true)))
}

/// `DW_AT_type` as a `.debug_info` offset (type units' signatures are not followed).
fn type_ref<'d>(
    unit: UnitRef<'_, Slice<'d>>,
    entry: &DebuggingInformationEntry<Slice<'d>>,
) -> Option<TypeRef> {
    match entry.attr_value(constants::DW_AT_type)? {
        AttributeValue::UnitRef(offset) => offset
            .to_debug_info_offset(&unit.header)
            .map(|o| TypeRef(o.0 as u64)),
        AttributeValue::DebugInfoRef(offset) => Some(TypeRef(offset.0 as u64)),
        _ => None,
    }
}

/// A constant's bits: data forms zero-extended, `sdata` sign-extended.
fn constant_bits<'d>(value: AttributeValue<Slice<'d>>) -> Option<u64> {
    match value {
        AttributeValue::Sdata(v) => Some(v as u64),
        other => other.udata_value(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Executable, FunctionSymbol};
    use super::*;

    #[allow(dead_code)]
    pub(super) enum Sample {
        Unit,
        Pair(u32, u16),
    }

    pub(super) static SAMPLE: Option<Sample> = Some(Sample::Pair(1, 2));

    fn index() -> TypeIndex {
        let exe = Executable::open(&std::env::current_exe().expect("current exe")).expect("open");
        let started = std::time::Instant::now();
        let index = TypeIndex::build(&exe).expect("index");
        eprintln!("indexed {} types in {:?}", index.len(), started.elapsed());
        index
    }

    #[test]
    fn an_index_on_demand_reads_the_units_queries_need() {
        let _ = std::hint::black_box(&SAMPLE);
        let exe = Executable::open(&std::env::current_exe().expect("current exe")).expect("open");
        let index = TypeIndex::on_demand(&exe).expect("index");
        assert!(index.is_empty(), "no unit is read up front");
        let here = "dwarfpeek::debuginfo::type_index::tests";
        let stat = index
            .find_static(&exe, &format!("{here}::SAMPLE"))
            .expect("static");
        assert!(!index.is_empty(), "the static's unit was read");
        let def = index.get(index.resolve(stat.ty)).expect("its type");
        assert!(
            def.name.starts_with("core::option::Option<"),
            "{}",
            def.name
        );
        // A name no unit read so far has is looked for in the others.
        let symbol = index
            .by_name("dwarfpeek::debuginfo::symbols::FunctionSymbol")
            .expect("FunctionSymbol");
        assert!(index.get(symbol).is_some());
    }

    #[test]
    fn indexes_structs_enums_and_statics() {
        let _ = std::hint::black_box(&SAMPLE);
        let index = index();
        assert_eq!(index.address_size(), 8);
        let ty = index
            .by_name("dwarfpeek::debuginfo::symbols::FunctionSymbol")
            .expect("FunctionSymbol");
        let TypeKind::Struct(c) = &index.get(ty).expect("defined").kind else {
            panic!("not a struct");
        };
        let address = c.field("address").expect("field");
        assert_eq!(
            address.offset,
            Some(std::mem::offset_of!(FunctionSymbol, address) as u64)
        );

        let here = "dwarfpeek::debuginfo::type_index::tests";
        let ty = index
            .static_type(&format!("{here}::SAMPLE"))
            .expect("static");
        let def = index.get(index.resolve(ty)).expect("its type");
        assert!(
            def.name.starts_with("core::option::Option<"),
            "{}",
            def.name
        );
        let TypeKind::Struct(option) = &def.kind else {
            panic!("Option is a struct with a variant part");
        };
        let part = option.variant_part.as_ref().expect("variant part");
        let names: Vec<_> = part
            .variants
            .iter()
            .map(|v| v.field.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(names, ["None", "Some"]);
        assert!(part.discriminant.is_some());
        // The variant structs are named under the enum.
        let sample = index
            .by_name(&format!("{here}::Sample::Pair"))
            .expect("variant");
        let TypeKind::Struct(pair) = &index.get(sample).expect("defined").kind else {
            panic!("a variant is a struct");
        };
        assert_eq!(pair.fields.len(), 2);
    }
}
