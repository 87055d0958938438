//! std's pointers with more than an address: `Rc` and `Arc` (their counts and the shared
//! value) and fat pointers to `str` and slices (`&str`, `&[T]`, `Box<str>`, `Box<[T]>`).
//!
//! Plain references and `Box`es of sized types are DWARF pointer types, decoded in
//! [`super::decode`]. Fat raw pointers (`*const [T]`) are shown, not followed.

use super::decode::{garbage, Decoder};
use super::tree::{SeqKind, SharedKind, Value};
use super::ValueError;
use crate::debuginfo::{TypeDef, TypeRef};

impl<'a> Decoder<'a> {
    /// `Rc<T>` / `Arc<T>`: `ptr` points at `RcInner { strong, weak, value }` (`ArcInner`'s
    /// value is `data`); the weak count includes one held by all the strong ones together.
    pub(super) fn shared(
        &mut self,
        ty: TypeRef,
        address: u64,
        kind: SharedKind,
    ) -> Result<Value, ValueError> {
        let def = self.def(self.index.resolve(ty))?;
        let (ptr_ty, ptr_at) = self.field(ty, address, "ptr")?;
        let inner_ty = self.pointer_target(ptr_ty)?;
        let inner = self.scalar(ptr_ty, ptr_at)?;
        if inner == 0 {
            return Err(garbage(
                def,
                address,
                "a null pointer to its counts".to_owned(),
            ));
        }
        let count = |name| -> Result<u64, ValueError> {
            let (fty, at) = self.field(inner_ty, inner, name)?;
            self.scalar(fty, at)
        };
        let (strong, weak) = (count("strong")?, count("weak")?);
        let (inner_def, inner_c) = self.composite(inner_ty)?;
        let value_field = inner_c
            .fields
            .iter()
            .find(|f| !matches!(f.name.as_deref(), Some("strong" | "weak")))
            .and_then(|f| Some((f.ty?, f.offset?)))
            .ok_or_else(|| super::decode::shape(inner_def, "no value beside the counts"))?;
        let value = self.follow(value_field.0, inner.wrapping_add(value_field.1));
        Ok(Value::Shared {
            kind,
            address: inner,
            strong,
            weak: weak.saturating_sub(1),
            value: Box::new(value),
        })
    }

    /// A `{data_ptr, length}` pair: a string or a slice when it is a reference or `Box`.
    pub(super) fn fat_pointer(
        &mut self,
        ty: TypeRef,
        def: &TypeDef,
        address: u64,
    ) -> Result<Value, ValueError> {
        let (data_ty, data_at) = self.field(ty, address, "data_ptr")?;
        let (len_ty, len_at) = self.field(ty, address, "length")?;
        let data = self.scalar(data_ty, data_at)?;
        let len = self.scalar(len_ty, len_at)?;
        let owned_or_borrowed =
            def.name.starts_with('&') || def.name.starts_with("alloc::boxed::Box<");
        if !owned_or_borrowed {
            return Ok(Value::Struct {
                type_name: def.name.clone(),
                fields: vec![
                    (
                        "data_ptr".to_owned(),
                        Value::RawPointer {
                            type_name: self.def(self.index.resolve(data_ty))?.name.clone(),
                            address: data,
                            target: self.pointer_target(data_ty).ok(),
                        },
                    ),
                    ("length".to_owned(), Value::Uint(u128::from(len))),
                ],
            });
        }
        if is_str(&def.name) {
            return self.utf8(def, address, data, len);
        }
        let element = self.pointer_target(data_ty)?;
        let size = self.size_of(element)?;
        let fits = len
            .checked_mul(size)
            .filter(|bytes| *bytes <= i64::MAX as u64)
            .and_then(|bytes| data.checked_add(bytes));
        if fits.is_none() || (len > 0 && size > 0 && data == 0) {
            return Err(garbage(
                def,
                address,
                format!("{len} elements at {data:#x}"),
            ));
        }
        let items = self.items(element, data, len, Some)?;
        Ok(Value::Seq {
            kind: SeqKind::Slice,
            len,
            items,
        })
    }
}

/// `&str`, `&mut str`, `Box<str>`.
fn is_str(name: &str) -> bool {
    matches!(name, "&str" | "&mut str") || name.starts_with("alloc::boxed::Box<str,")
}
