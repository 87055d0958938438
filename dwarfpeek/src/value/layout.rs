//! Where a part of a value sits inside it, from the DWARF alone: the offset and type at the
//! end of a path of field and variant names, and where a `String` keeps its pointer and
//! length. What the eBPF programs need to copy the right bytes without reading a layout
//! anywhere but the exact binary's debug info.
//!
//! It reads no memory; a path the type does not have is a [`ValueError::Shape`] that names
//! the step that failed.

use super::collections::BUF_PTR;
use super::decode::{shape, Decoder};
use super::{Limits, ValueError};
use crate::debuginfo::{TypeIndex, TypeKind, TypeRef};
use crate::memory::{MemoryError, MemorySource};

/// A part of a value: its type and its offset from the start of the enclosing value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub ty: TypeRef,
    pub offset: u64,
}

/// The place at the end of `path` inside a value of type `ty`. Each step names a field
/// (`peer`, or `0` for a tuple field `__0`) or, in an enum with data, a variant (`Some`),
/// whose own fields the next step names.
pub fn place(index: &TypeIndex, ty: TypeRef, path: &[&str]) -> Result<Place, ValueError> {
    let decoder = Decoder::new(index, &NoMemory, Limits::default());
    path.iter().try_fold(
        Place {
            ty: index.resolve(ty),
            offset: 0,
        },
        |at, step| {
            let (def, c) = decoder.composite(at.ty)?;
            let variant = c
                .variant_part
                .as_ref()
                .and_then(|part| {
                    part.variants
                        .iter()
                        .find(|v| v.field.name.as_deref() == Some(step))
                })
                .map(|v| &v.field);
            let tuple_name = format!("__{step}");
            let field = variant
                .or_else(|| c.field(step))
                .or_else(|| c.field(&tuple_name))
                .ok_or_else(|| shape(def, &format!("no field or variant `{step}`")))?;
            let (Some(fty), Some(offset)) = (field.ty, field.offset) else {
                return Err(shape(def, &format!("`{step}` has no type or offset")));
            };
            Ok(Place {
                ty: index.resolve(fty),
                offset: at.offset.saturating_add(offset),
            })
        },
    )
}

/// Where a `String` keeps its data pointer and its length: offsets from its start.
pub fn string_parts(index: &TypeIndex, ty: TypeRef) -> Result<(u64, u64), ValueError> {
    let decoder = Decoder::new(index, &NoMemory, Limits::default());
    let (vec_ty, vec_at) = decoder.field(ty, 0, "vec")?;
    let (buf_ty, buf_at) = decoder.field_path(vec_ty, vec_at, BUF_PTR)?;
    let (pointer, inner) = decoder.unwrap_scalar(buf_ty)?;
    let def = decoder.def(pointer)?;
    if !matches!(def.kind, TypeKind::Pointer { .. }) {
        return Err(shape(def, "expected the buffer's pointer"));
    }
    let (_, len_at) = decoder.field(vec_ty, vec_at, "len")?;
    Ok((buf_at.saturating_add(inner), len_at))
}

/// The field names that lead to byte `offset` inside a value of type `ty`, outermost first
/// (`["inner", "futex"]` for the futex word of a `Mutex`): down to the innermost struct
/// field that holds the byte, or to an atomic (whose own insides name nothing). Empty when
/// `ty` has no field there.
pub fn path_at(index: &TypeIndex, ty: TypeRef, offset: u64) -> Vec<String> {
    let decoder = Decoder::new(index, &NoMemory, Limits::default());
    let mut path = Vec::new();
    let (mut ty, mut offset) = (index.resolve(ty), offset);
    // Bounded: each step goes one field deeper, and no real type nests this deep.
    for _ in 0..64 {
        let Ok((def, c)) = decoder.composite(ty) else {
            break;
        };
        if def.name.starts_with("core::sync::atomic::") {
            break;
        }
        let holder = c.fields.iter().find_map(|f| {
            let (fty, at) = (f.ty?, f.offset?);
            let size = decoder.size_of(fty).ok()?;
            (at <= offset && offset - at < size.max(1)).then_some((f, fty, at))
        });
        let Some((field, fty, at)) = holder else {
            break;
        };
        path.push(field.name.clone().unwrap_or_else(|| "?".to_owned()));
        ty = index.resolve(fty);
        offset -= at;
    }
    path
}

/// The size in bytes of a value of `ty`.
pub fn size_of(index: &TypeIndex, ty: TypeRef) -> Result<u64, ValueError> {
    Decoder::new(index, &NoMemory, Limits::default()).size_of(ty)
}

/// Layout questions read nothing; a read here would be a bug, reported as unmapped.
struct NoMemory;

impl MemorySource for NoMemory {
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        Err(MemoryError::Unmapped {
            address,
            len: buf.len() as u64,
            source_name: "a layout query (which reads no memory)".to_owned(),
        })
    }
}
