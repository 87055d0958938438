//! The decoder's core: bounds (depth, value count, pointer cycles), the dispatch from a
//! DWARF type to its decoding, and the language's own types (integers, floats, `bool`,
//! `char`, structs, tuples, enums, arrays, pointers). std's types are decoded in the sibling
//! modules, which this dispatches to by type name.

use super::memo::Memo;
use super::tree::{SeqKind, SharedKind, Value};
use super::{FieldSelection, Limits, ValueError};
use crate::debuginfo::{BaseKind, Composite, TypeDef, TypeIndex, TypeKind, TypeRef, VariantPart};
use crate::memory::MemorySource;

/// One read's state: the limits, how much was decoded, and the pointers followed to get to
/// the value being decoded (to recognise a pointer back to an enclosing value).
pub(super) struct Decoder<'a> {
    pub(super) index: &'a TypeIndex,
    memory: &'a dyn MemorySource,
    pub(super) limits: Limits,
    depth: usize,
    values: u64,
    followed: Vec<(u64, TypeRef)>,
    /// The fields wanted of some struct types (all of every other type).
    selection: FieldSelection<'a>,
    pub(super) memo: Memo,
}

impl<'a> Decoder<'a> {
    pub(super) fn new(index: &'a TypeIndex, memory: &'a dyn MemorySource, limits: Limits) -> Self {
        Decoder {
            index,
            memory,
            limits,
            depth: 0,
            values: 0,
            followed: Vec::new(),
            selection: &[],
            memo: Memo::default(),
        }
    }

    /// Decodes only the selected fields of the struct types `selection` names.
    pub(super) fn select(&mut self, selection: FieldSelection<'a>) {
        self.selection = selection;
    }

    /// The value of type `ty` at `address`, errors included in the tree.
    pub(super) fn value(&mut self, ty: TypeRef, address: u64) -> Value {
        if self.depth >= self.limits.max_depth {
            return Value::Error(ValueError::TooDeep {
                max: self.limits.max_depth,
            });
        }
        if self.values >= self.limits.max_values {
            return Value::Error(ValueError::TooMany {
                max: self.limits.max_values,
            });
        }
        self.values += 1;
        self.depth += 1;
        let value = self.dispatch(ty, address).unwrap_or_else(Value::Error);
        self.depth -= 1;
        value
    }

    /// The value of `ty` at `address`, reached through a pointer: a [`Value::Cycle`] if that
    /// very value is being decoded already further up.
    pub(super) fn follow(&mut self, ty: TypeRef, address: u64) -> Value {
        let key = (address, self.index.resolve(ty));
        if self.followed.contains(&key) {
            return Value::Cycle { address };
        }
        self.followed.push(key);
        let value = self.value(ty, address);
        self.followed.pop();
        value
    }

    /// Reads `len` bytes; callers bound `len` (by a type's size or a checked limit).
    pub(super) fn bytes(&self, address: u64, len: u64) -> Result<Vec<u8>, ValueError> {
        let len = usize::try_from(len).map_err(|_| ValueError::TooLong {
            type_name: "a byte range".to_owned(),
            len,
            max: usize::MAX as u64,
        })?;
        let mut buf = vec![0u8; len];
        self.memory.read(address, &mut buf)?;
        Ok(buf)
    }

    /// An unsigned integer of `size` bytes (1 to 16) in the executable's byte order.
    pub(super) fn uint(&self, address: u64, size: u64) -> Result<u128, ValueError> {
        if !(1..=16).contains(&size) {
            return Err(ValueError::Unsupported {
                type_name: format!("a {size}-byte integer"),
                what: "integers are 1 to 16 bytes".to_owned(),
            });
        }
        let mut buf = [0u8; 16];
        let used = &mut buf[..size as usize];
        self.memory.read(address, used)?;
        if !self.index.little_endian() {
            used.reverse();
        }
        Ok(u128::from_le_bytes(buf))
    }

    /// A pointer-sized word.
    pub(super) fn pointer_at(&self, address: u64) -> Result<u64, ValueError> {
        // An address never has more than 8 bytes; a larger address size is a bad file.
        Ok(self.uint(address, u64::from(self.index.address_size()).min(8))? as u64)
    }

    fn dispatch(&mut self, ty: TypeRef, address: u64) -> Result<Value, ValueError> {
        let ty = self.index.resolve(ty);
        let def = self.def(ty)?;
        match &def.kind {
            TypeKind::Base(kind) => self.base(def, *kind, address),
            TypeKind::Pointer { target } => self.pointer(def, *target, address),
            TypeKind::Struct(c) => self.structure(ty, def, c, address),
            TypeKind::Enumeration { enumerators, .. } => {
                let size = self.size_of(ty)?;
                // A one-variant enum has no bytes: its only value is 0.
                let bits = if size == 0 {
                    0
                } else {
                    self.uint(address, size)?
                };
                let mask = mask(size);
                enumerators
                    .iter()
                    .find(|e| u128::from(e.value) & mask == bits & mask)
                    .map(|e| Value::Enum {
                        type_name: def.name.clone(),
                        variant: e.name.clone(),
                        fields: Vec::new(),
                    })
                    .ok_or_else(|| garbage(def, address, format!("{bits:#x} is no variant")))
            }
            TypeKind::Array { element, count } => {
                let element = element.ok_or_else(|| shape(def, "an array without element type"))?;
                let count = count.ok_or_else(|| shape(def, "an array without length"))?;
                let items = self.items(element, address, count, Some)?;
                Ok(Value::Seq {
                    kind: SeqKind::Array,
                    len: count,
                    items,
                })
            }
            TypeKind::Union(_) | TypeKind::Other(_) => self.opaque(ty, def, address),
            TypeKind::Alias { .. } => Err(shape(def, "a typedef chain that ends nowhere")),
            TypeKind::Subroutine => Err(ValueError::Unsupported {
                type_name: def.name.clone(),
                what: "a function has no value to read".to_owned(),
            }),
        }
    }

    fn base(&self, def: &TypeDef, kind: BaseKind, address: u64) -> Result<Value, ValueError> {
        let size = def
            .byte_size
            .ok_or_else(|| shape(def, "a base type without size"))?;
        if size == 0 {
            return Ok(Value::Unit);
        }
        let bits = self.uint(address, size)?;
        Ok(match kind {
            BaseKind::Bool => match bits {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                other => return Err(garbage(def, address, format!("{other:#x} is no bool"))),
            },
            BaseKind::Unsigned => Value::Uint(bits),
            BaseKind::Signed => Value::Int(sign_extend(bits, size)),
            BaseKind::Char => {
                let c = u32::try_from(bits).ok().and_then(char::from_u32);
                Value::Char(
                    c.ok_or_else(|| garbage(def, address, format!("{bits:#x} is no char")))?,
                )
            }
            BaseKind::Float => match size {
                4 => Value::Float(f64::from(f32::from_bits(bits as u32))),
                8 => Value::Float(f64::from_bits(bits as u64)),
                _ => {
                    return Err(ValueError::Unsupported {
                        type_name: def.name.clone(),
                        what: format!("{size}-byte floats are not decoded"),
                    })
                }
            },
            BaseKind::Other(encoding) => {
                return Err(ValueError::Unsupported {
                    type_name: def.name.clone(),
                    what: format!("DWARF base type encoding {encoding:#x}"),
                })
            }
        })
    }

    /// References and `Box`es are followed; raw pointers only shown (with their target's
    /// type, for a reader asked to follow them).
    fn pointer(
        &mut self,
        def: &TypeDef,
        target: Option<TypeRef>,
        address: u64,
    ) -> Result<Value, ValueError> {
        let pointee = self.pointer_at(address)?;
        let followed = def.name.starts_with('&') || def.name.starts_with("alloc::boxed::Box<");
        let target = target.filter(|t| {
            !matches!(
                self.index.get(self.index.resolve(*t)).map(|d| &d.kind),
                Some(TypeKind::Subroutine) | None
            )
        });
        match target {
            Some(target) if followed => {
                if pointee == 0 {
                    return Err(garbage(def, address, "a null reference".to_owned()));
                }
                Ok(Value::Ref {
                    address: pointee,
                    target: Box::new(self.follow(target, pointee)),
                })
            }
            target => Ok(Value::RawPointer {
                type_name: def.name.clone(),
                address: pointee,
                target,
            }),
        }
    }

    /// A struct: an enum with data, a std type this reader knows, a tuple or a plain struct.
    fn structure(
        &mut self,
        ty: TypeRef,
        def: &TypeDef,
        c: &'a Composite,
        address: u64,
    ) -> Result<Value, ValueError> {
        if let Some(part) = &c.variant_part {
            return self.enumeration(def, part, address);
        }
        let generic = def.name.split('<').next().unwrap_or_default();
        match generic {
            "alloc::string::String" => return self.string(ty, address),
            "alloc::vec::Vec" => return self.vec(ty, address),
            "alloc::collections::vec_deque::VecDeque" => return self.vec_deque(ty, address),
            "std::collections::hash::map::HashMap" => {
                return self.hash_map(ty, address, &[&["base", "table"]])
            }
            "hashbrown::map::HashMap" => return self.hash_map(ty, address, &[&["table"]]),
            "std::collections::hash::set::HashSet" => {
                return self.hash_set(
                    ty,
                    address,
                    &[&["base", "map", "table"], &["map", "base", "table"]],
                )
            }
            "hashbrown::set::HashSet" => return self.hash_set(ty, address, &[&["map", "table"]]),
            "alloc::collections::btree::map::BTreeMap" => return self.btree_map(ty, address),
            "alloc::collections::btree::set::BTreeSet" => return self.btree_set(ty, address),
            "alloc::rc::Rc" => return self.shared(ty, address, SharedKind::Rc),
            "alloc::sync::Arc" => return self.shared(ty, address, SharedKind::Arc),
            "core::cell::RefCell" => return self.ref_cell(ty, address),
            "core::sync::atomic::AtomicBool" => {
                let bits = self.scalar(ty, address)?;
                return match bits {
                    0 | 1 => Ok(Value::Bool(bits == 1)),
                    _ => Err(garbage(def, address, format!("{bits:#x} is no bool"))),
                };
            }
            _ => {}
        }
        if generic.starts_with("std::sync::") {
            if generic.ends_with("::Mutex") {
                return self.mutex(ty, address);
            }
            if generic.ends_with("::RwLock") {
                return self.rw_lock(ty, address);
            }
        }
        if is_transparent(generic) {
            if let Some((inner, offset)) = self.only_sized_field(c)? {
                return Ok(self.value(inner, address.wrapping_add(offset)));
            }
        }
        if c.field("data_ptr").is_some() && c.field("length").is_some() && c.fields.len() == 2 {
            return self.fat_pointer(ty, def, address);
        }
        let wanted = self
            .selection
            .iter()
            .find(|(name, _)| *name == generic)
            .map(|(_, fields)| *fields);
        let fields = self.fields(c, address, wanted);
        if def.name.starts_with('(') && fields.iter().all(|(name, _)| is_tuple_field(name)) {
            return Ok(Value::Tuple(fields.into_iter().map(|(_, v)| v).collect()));
        }
        Ok(Value::Struct {
            type_name: def.name.clone(),
            fields,
        })
    }

    /// A struct's fields by name (unnamed ones as `__N`), artificial ones left out, and if
    /// `wanted` is given only the fields it names.
    pub(super) fn fields(
        &mut self,
        c: &Composite,
        address: u64,
        wanted: Option<&[&str]>,
    ) -> Vec<(String, Value)> {
        c.fields
            .iter()
            .filter(|f| !f.artificial)
            .enumerate()
            .filter(|(_, f)| {
                wanted.is_none_or(|names| f.name.as_deref().is_some_and(|n| names.contains(&n)))
            })
            .map(|(i, f)| {
                let name = f.name.clone().unwrap_or_else(|| format!("__{i}"));
                let value = match (f.ty, f.offset.and_then(|o| address.checked_add(o))) {
                    (Some(ty), Some(at)) => self.value(ty, at),
                    _ => Value::Error(ValueError::Shape {
                        type_name: name.clone(),
                        what: "a field without type or offset".to_owned(),
                    }),
                };
                (name, value)
            })
            .collect()
    }

    /// The active variant of an enum with data, and its fields.
    fn enumeration(
        &mut self,
        def: &TypeDef,
        part: &'a VariantPart,
        address: u64,
    ) -> Result<Value, ValueError> {
        let variant = self.active_variant(def, part, address)?;
        let name = variant.field.name.clone().unwrap_or_default();
        let (vty, voffset) = match (variant.field.ty, variant.field.offset) {
            (Some(ty), offset) => (ty, offset.unwrap_or(0)),
            _ => return Err(shape(def, "a variant without type")),
        };
        let (_, fields) = self.composite(vty)?;
        let fields = self.fields(fields, address.wrapping_add(voffset), None);
        Ok(Value::Enum {
            type_name: def.name.clone(),
            variant: name,
            fields,
        })
    }

    /// Decodes up to `max_elements` of `count` elements of type `element`: element `i` at
    /// `base + slot(i) * size`, for the slots `slot` gives (None: garbage index). Stops at the
    /// first element whose memory cannot be read (those after it would fail alike).
    pub(super) fn items(
        &mut self,
        element: TypeRef,
        base: u64,
        count: u64,
        slot: impl Fn(u64) -> Option<u64>,
    ) -> Result<Vec<Value>, ValueError> {
        let size = self.size_of(element)?;
        let shown = count.min(self.limits.max_elements);
        let mut items = Vec::new();
        for i in 0..shown {
            let at = slot(i)
                .and_then(|s| s.checked_mul(size))
                .and_then(|off| base.checked_add(off));
            let Some(at) = at else {
                items.push(Value::Error(ValueError::Garbage {
                    type_name: "a collection".to_owned(),
                    address: base,
                    what: format!("element {i} lies beyond the address space"),
                }));
                break;
            };
            let item = self.value(element, at);
            let unreadable = matches!(item, Value::Error(ValueError::Memory(_)));
            items.push(item);
            if unreadable || self.values >= self.limits.max_values {
                break;
            }
        }
        Ok(items)
    }

    /// A union or a type without meaning here: its bytes.
    fn opaque(&self, ty: TypeRef, def: &TypeDef, address: u64) -> Result<Value, ValueError> {
        let size = self.size_of(ty)?;
        if size > self.limits.max_string_len {
            return Err(ValueError::TooLong {
                type_name: def.name.clone(),
                len: size,
                max: self.limits.max_string_len,
            });
        }
        Ok(Value::Opaque {
            type_name: def.name.clone(),
            bytes: self.bytes(address, size)?,
        })
    }
}

/// std wrappers shown as what they wrap.
fn is_transparent(generic: &str) -> bool {
    matches!(
        generic,
        "core::cell::Cell"
            | "core::cell::UnsafeCell"
            | "core::cell::SyncUnsafeCell"
            | "core::mem::manually_drop::ManuallyDrop"
            | "core::mem::maybe_dangling::MaybeDangling"
            | "core::num::nonzero::NonZero"
    ) || generic.starts_with("core::sync::atomic::Atomic")
        || generic.starts_with("core::num::niche_types::")
}

fn is_tuple_field(name: &str) -> bool {
    name.strip_prefix("__")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The low `size` bytes of a u128.
pub(super) fn mask(size: u64) -> u128 {
    if size >= 16 {
        u128::MAX
    } else {
        (1u128 << (size * 8)) - 1
    }
}

fn sign_extend(bits: u128, size: u64) -> i128 {
    let shift = 128 - 8 * size.min(16) as u32;
    ((bits << shift) as i128) >> shift
}

pub(super) fn shape(def: &TypeDef, what: &str) -> ValueError {
    ValueError::Shape {
        type_name: def.name.clone(),
        what: what.to_owned(),
    }
}

pub(super) fn garbage(def: &TypeDef, address: u64, what: String) -> ValueError {
    ValueError::Garbage {
        type_name: def.name.clone(),
        address,
        what,
    }
}
