//! Finding one's way in a type's DWARF shape: fields by name and by path, sizes, template
//! parameters, the scalar inside a chain of one-field wrappers (as the toolchain providers'
//! `unwrap_unique_or_non_null` and `unwrap_scalar_wrappers` do), where a type sits inside
//! another, and which variant of an enum is active.
//!
//! Lookups fail with [`ValueError::Shape`] (the DWARF is not shaped as expected) and reads
//! with the memory's error; chains are followed a bounded number of steps.

use super::decode::{garbage, mask, shape, Decoder};
use super::ValueError;
use crate::debuginfo::{Composite, TypeDef, TypeKind, TypeRef, Variant, VariantPart};

/// Wrapper levels unwrapped (or nested types searched) before giving up.
const MAX_UNWRAP: usize = 16;

impl<'a> Decoder<'a> {
    /// The definition of `ty` (already resolved through aliases).
    pub(super) fn def(&self, ty: TypeRef) -> Result<&'a TypeDef, ValueError> {
        self.index.get(ty).ok_or(ValueError::UnknownType(ty))
    }

    /// The struct or union `ty` is (through aliases).
    pub(super) fn composite(
        &self,
        ty: TypeRef,
    ) -> Result<(&'a TypeDef, &'a Composite), ValueError> {
        let def = self.def(self.index.resolve(ty))?;
        match &def.kind {
            TypeKind::Struct(c) | TypeKind::Union(c) => Ok((def, c)),
            _ => Err(shape(def, "expected a struct")),
        }
    }

    /// The type and address of field `name` of the `ty` at `address`.
    pub(super) fn field(
        &self,
        ty: TypeRef,
        address: u64,
        name: &str,
    ) -> Result<(TypeRef, u64), ValueError> {
        let (def, c) = self.composite(ty)?;
        let field = c
            .field(name)
            .ok_or_else(|| shape(def, &format!("no field `{name}`")))?;
        let (Some(fty), Some(offset)) = (field.ty, field.offset) else {
            return Err(shape(def, &format!("field `{name}` has no type or offset")));
        };
        let at = address
            .checked_add(offset)
            .ok_or_else(|| garbage(def, address, "a field beyond the address space".to_owned()))?;
        Ok((fty, at))
    }

    /// The type and address at the end of the first of `paths` (field names, outermost
    /// first) that `ty` has: std's field paths differ between releases.
    pub(super) fn field_path(
        &self,
        ty: TypeRef,
        address: u64,
        paths: &[&[&str]],
    ) -> Result<(TypeRef, u64), ValueError> {
        let mut first_error = None;
        for path in paths {
            let walked = path
                .iter()
                .try_fold((ty, address), |(ty, at), name| self.field(ty, at, name));
            match walked {
                Ok(found) => return Ok(found),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        // No paths at all: the type is not what the caller took it for.
        Err(first_error.unwrap_or(ValueError::UnknownType(ty)))
    }

    /// The size in bytes of a value of `ty`.
    pub(super) fn size_of(&self, ty: TypeRef) -> Result<u64, ValueError> {
        let ty = self.index.resolve(ty);
        let def = self.def(ty)?;
        if let Some(size) = def.byte_size {
            return Ok(size);
        }
        match &def.kind {
            TypeKind::Pointer { .. } => Ok(u64::from(self.index.address_size())),
            // rustc gives arrays no size of their own.
            TypeKind::Array {
                element: Some(element),
                count: Some(count),
            } => self
                .size_of(*element)?
                .checked_mul(*count)
                .ok_or_else(|| shape(def, "an array larger than the address space")),
            _ => Err(shape(def, "a type without size")),
        }
    }

    /// The template parameter `name` of `ty` (`T` of `Vec<T>`).
    pub(super) fn template_param(&self, ty: TypeRef, name: &str) -> Result<TypeRef, ValueError> {
        let (def, c) = self.composite(ty)?;
        c.template_param(name)
            .ok_or_else(|| shape(def, &format!("no template parameter `{name}`")))
    }

    /// The one field of `c` with a non-zero size (a wrapper's payload beside `PhantomData`s
    /// and `()`s), and its offset; `None` unless there is exactly one.
    pub(super) fn only_sized_field(
        &self,
        c: &Composite,
    ) -> Result<Option<(TypeRef, u64)>, ValueError> {
        let mut found = None;
        for field in &c.fields {
            let (Some(ty), Some(offset)) = (field.ty, field.offset) else {
                return Ok(None);
            };
            if self.size_of(ty)? == 0 {
                continue;
            }
            if found.is_some() {
                return Ok(None);
            }
            found = Some((ty, offset));
        }
        Ok(found)
    }

    /// Follows one-sized-field wrappers from `ty` down to an integer, pointer or C-like enum,
    /// and gives that type and its offset in `ty`.
    pub(super) fn unwrap_scalar(&self, ty: TypeRef) -> Result<(TypeRef, u64), ValueError> {
        let mut current = self.index.resolve(ty);
        let mut offset = 0u64;
        for _ in 0..MAX_UNWRAP {
            let def = self.def(current)?;
            match &def.kind {
                TypeKind::Base(_) | TypeKind::Pointer { .. } | TypeKind::Enumeration { .. } => {
                    return Ok((current, offset))
                }
                TypeKind::Struct(c) | TypeKind::Union(c) => {
                    let (inner, at) = self
                        .only_sized_field(c)?
                        .ok_or_else(|| shape(def, "expected a wrapper of one scalar"))?;
                    current = self.index.resolve(inner);
                    offset = offset.saturating_add(at);
                }
                _ => return Err(shape(def, "expected a scalar")),
            }
        }
        Err(shape(self.def(ty)?, "too many wrappers around a scalar"))
    }

    /// The scalar (integer or address) inside the `ty` at `address`, zero-extended.
    pub(super) fn scalar(&self, ty: TypeRef, address: u64) -> Result<u64, ValueError> {
        let (offset, size) = self.memo.scalar(ty, || {
            let (inner, offset) = self.unwrap_scalar(ty)?;
            Ok::<_, ValueError>((offset, self.size_of(inner)?.min(8)))
        })?;
        let at = address
            .checked_add(offset)
            .ok_or_else(|| ValueError::Garbage {
                type_name: self.def(ty).map(|d| d.name.clone()).unwrap_or_default(),
                address,
                what: "a field beyond the address space".to_owned(),
            })?;
        Ok(self.uint(at, size)? as u64)
    }

    /// Like [`Decoder::scalar`], sign-extended from the scalar's size.
    pub(super) fn signed_scalar(&self, ty: TypeRef, address: u64) -> Result<i64, ValueError> {
        let (inner, _) = self.unwrap_scalar(ty)?;
        let size = self.size_of(inner)?.clamp(1, 8);
        let bits = self.scalar(ty, address)?;
        let shift = 64 - 8 * size as u32;
        Ok(((bits << shift) as i64) >> shift)
    }

    /// What the pointer inside `ty` (a `NonNull`, `Unique` or plain pointer) points to.
    pub(super) fn pointer_target(&self, ty: TypeRef) -> Result<TypeRef, ValueError> {
        let (pointer, _) = self.unwrap_scalar(ty)?;
        let def = self.def(pointer)?;
        match &def.kind {
            TypeKind::Pointer {
                target: Some(target),
            } => Ok(*target),
            _ => Err(shape(def, "expected a pointer")),
        }
    }

    /// Where a value of type `target` sits inside a value of type `outer` (a `MaybeUninit<T>`
    /// holds its `T` behind `ManuallyDrop` and more), searched through fields, nearest first.
    pub(super) fn embedded_offset(
        &self,
        outer: TypeRef,
        target: TypeRef,
    ) -> Result<u64, ValueError> {
        let target = self.index.resolve(target);
        let target_name = &self.def(target)?.name;
        let mut level = vec![(self.index.resolve(outer), 0u64)];
        for _ in 0..MAX_UNWRAP {
            let mut next = Vec::new();
            for (ty, offset) in level {
                let def = self.def(ty)?;
                if ty == target || (!target_name.is_empty() && def.name == *target_name) {
                    return Ok(offset);
                }
                if let TypeKind::Struct(c) | TypeKind::Union(c) = &def.kind {
                    for field in &c.fields {
                        if let (Some(fty), Some(at)) = (field.ty, field.offset) {
                            next.push((self.index.resolve(fty), offset.saturating_add(at)));
                        }
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        Err(shape(
            self.def(self.index.resolve(outer))?,
            &format!("does not hold a `{target_name}`"),
        ))
    }

    /// The variant the discriminant of the enum at `address` selects: the one whose
    /// `DW_AT_discr_value` it equals, else the default (dataful) variant.
    pub(super) fn active_variant(
        &self,
        def: &TypeDef,
        part: &'a VariantPart,
        address: u64,
    ) -> Result<&'a Variant, ValueError> {
        let Some(discriminant) = &part.discriminant else {
            return match part.variants.as_slice() {
                [only] => Ok(only),
                _ => Err(shape(def, "several variants and no discriminant")),
            };
        };
        let (Some(dty), Some(offset)) = (discriminant.ty, discriminant.offset) else {
            return Err(shape(def, "a discriminant without type or offset"));
        };
        let size = self.size_of(dty)?;
        let at = address
            .checked_add(offset)
            .ok_or_else(|| garbage(def, address, "beyond the address space".to_owned()))?;
        let bits = self.uint(at, size)? & mask(size);
        let matches = |v: &&Variant| {
            v.discr_value
                .is_some_and(|value| u128::from(value) & mask(size) == bits)
        };
        part.variants
            .iter()
            .find(matches)
            .or_else(|| part.variants.iter().find(|v| v.discr_value.is_none()))
            .ok_or_else(|| {
                garbage(
                    def,
                    address,
                    format!("discriminant {bits:#x} names no variant"),
                )
            })
    }
}
