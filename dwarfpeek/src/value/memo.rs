//! One read's memory of where things sit inside a type: the scalar inside a chain of
//! wrappers, and a `RawVec` buffer's pointer, length and capacity. A table decodes the same
//! few types (a `String`, a `Vec<Box<Request>>`) tens of thousands of times, and finding
//! these by name through the DWARF each time was most of the cost of a string or a vector.
//!
//! Only what the shape gives, keyed by type, never a value read from memory; a lookup that
//! failed is not remembered (it is found failing again).

use crate::debuginfo::TypeRef;
use rustc_hash::FxHashMap;
use std::cell::RefCell;

/// Where a `RawVec`-backed collection keeps its buffer: each field's type and its offset
/// from the start of the collection.
#[derive(Clone, Copy, Debug)]
pub(super) struct BufferLayout {
    pub(super) ptr: (TypeRef, u64),
    pub(super) len: (TypeRef, u64),
    pub(super) cap: (TypeRef, u64),
}

#[derive(Debug, Default)]
pub(super) struct Memo {
    /// A scalar's offset inside its wrappers, and its size in bytes (at most 8).
    scalars: RefCell<FxHashMap<TypeRef, (u64, u64)>>,
    buffers: RefCell<FxHashMap<TypeRef, BufferLayout>>,
}

impl Memo {
    /// The remembered scalar of `ty`, or the one `find` gives, remembered if found.
    pub(super) fn scalar<E>(
        &self,
        ty: TypeRef,
        find: impl FnOnce() -> Result<(u64, u64), E>,
    ) -> Result<(u64, u64), E> {
        remembered(&self.scalars, ty, find)
    }

    /// The remembered buffer layout of `ty`, or the one `find` gives, remembered if found.
    pub(super) fn buffer<E>(
        &self,
        ty: TypeRef,
        find: impl FnOnce() -> Result<BufferLayout, E>,
    ) -> Result<BufferLayout, E> {
        remembered(&self.buffers, ty, find)
    }
}

fn remembered<V: Copy, E>(
    map: &RefCell<FxHashMap<TypeRef, V>>,
    ty: TypeRef,
    find: impl FnOnce() -> Result<V, E>,
) -> Result<V, E> {
    if let Some(found) = map.borrow().get(&ty) {
        return Ok(*found);
    }
    // Not borrowed while `find` runs: it may look other types up.
    let found = find()?;
    map.borrow_mut().insert(ty, found);
    Ok(found)
}
