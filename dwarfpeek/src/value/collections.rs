//! std's collections from their DWARF shape: `String`, `Vec`, `VecDeque`, `HashMap` and
//! `HashSet` (hashbrown's control bytes), `BTreeMap` and `BTreeSet` (a walk of the nodes).
//!
//! Field paths follow the toolchain's `gdb_providers.py` for rustc 1.95, with the older
//! paths as fallbacks. Lengths and capacities are checked against each other and against
//! the address space before anything is read; a table or tree that contradicts itself is
//! garbage.

use super::decode::{garbage, shape, Decoder};
use super::memo::BufferLayout;
use super::tree::{MapKind, SeqKind, Value};
use super::ValueError;
use crate::debuginfo::{TypeDef, TypeRef};
use std::collections::HashSet;

/// `RawVec`'s pointer and capacity, newest layout first.
pub(super) const BUF_PTR: &[&[&str]] = &[&["buf", "inner", "ptr"], &["buf", "ptr"]];
const BUF_CAP: &[&[&str]] = &[&["buf", "inner", "cap"], &["buf", "cap"]];
/// hashbrown's control byte of a full bucket has its top bit clear (EMPTY 0xFF, DELETED 0x80).
const CTRL_EMPTY_OR_DELETED: u8 = 0x80;
/// A B-tree this tall would hold more elements than memory can.
const MAX_BTREE_HEIGHT: u64 = 30;

/// A heap buffer as `RawVec` describes it.
struct Buffer {
    ptr: u64,
    len: u64,
    cap: u64,
}

impl<'a> Decoder<'a> {
    pub(super) fn vec(&mut self, ty: TypeRef, address: u64) -> Result<Value, ValueError> {
        let element = self.template_param(ty, "T")?;
        let buf = self.buffer(ty, address)?;
        self.check_buffer(ty, address, &buf, element)?;
        let items = self.items(element, buf.ptr, buf.len, Some)?;
        Ok(Value::Seq {
            kind: SeqKind::Vec,
            len: buf.len,
            items,
        })
    }

    pub(super) fn string(&mut self, ty: TypeRef, address: u64) -> Result<Value, ValueError> {
        let (vec_ty, vec_at) = self.field(ty, address, "vec")?;
        let buf = self.buffer(vec_ty, vec_at)?;
        if buf.len > buf.cap {
            return Err(garbage(
                self.def(self.index.resolve(ty))?,
                address,
                format!("length {} over capacity {}", buf.len, buf.cap),
            ));
        }
        self.utf8(self.def(self.index.resolve(ty))?, address, buf.ptr, buf.len)
    }

    /// `len` bytes of UTF-8 at `data`, for the string `def` at `address`.
    pub(super) fn utf8(
        &self,
        def: &TypeDef,
        address: u64,
        data: u64,
        len: u64,
    ) -> Result<Value, ValueError> {
        if len > self.limits.max_string_len {
            return Err(ValueError::TooLong {
                type_name: def.name.clone(),
                len,
                max: self.limits.max_string_len,
            });
        }
        if len > 0 && data == 0 {
            return Err(garbage(def, address, "a null string buffer".to_owned()));
        }
        let bytes = self.bytes(data, len)?;
        String::from_utf8(bytes)
            .map(Value::Str)
            .map_err(|e| garbage(def, address, format!("not UTF-8 ({e})")))
    }

    pub(super) fn vec_deque(&mut self, ty: TypeRef, address: u64) -> Result<Value, ValueError> {
        let element = self.template_param(ty, "T")?;
        let buf = self.buffer(ty, address)?;
        let (head_ty, head_at) = self.field(ty, address, "head")?;
        let head = self.scalar(head_ty, head_at)?;
        self.check_buffer(ty, address, &buf, element)?;
        if buf.cap > 0 && head >= buf.cap {
            return Err(garbage(
                self.def(self.index.resolve(ty))?,
                address,
                format!("head {head} outside capacity {}", buf.cap),
            ));
        }
        let cap = buf.cap;
        let items = self.items(element, buf.ptr, buf.len, |i| {
            Some(if cap == 0 {
                0
            } else {
                head.checked_add(i)? % cap
            })
        })?;
        Ok(Value::Seq {
            kind: SeqKind::VecDeque,
            len: buf.len,
            items,
        })
    }

    /// A `HashMap` whose `RawTable` is at the end of the first of `paths`.
    pub(super) fn hash_map(
        &mut self,
        ty: TypeRef,
        address: u64,
        paths: &[&[&str]],
    ) -> Result<Value, ValueError> {
        let (pair, items, slots) = self.hash_slots(ty, address, paths)?;
        let entries = self.pairs(pair, &slots, true)?;
        Ok(Value::Map {
            kind: MapKind::HashMap,
            len: items,
            entries,
        })
    }

    /// A `HashSet`: a map from its elements to `()`.
    pub(super) fn hash_set(
        &mut self,
        ty: TypeRef,
        address: u64,
        paths: &[&[&str]],
    ) -> Result<Value, ValueError> {
        let (pair, items, slots) = self.hash_slots(ty, address, paths)?;
        let entries = self.pairs(pair, &slots, false)?;
        Ok(Value::Seq {
            kind: SeqKind::HashSet,
            len: items,
            items: entries.into_iter().map(|(k, _)| k).collect(),
        })
    }

    /// The element type `(K, V)` of a hashbrown table, how many items it claims, and the
    /// addresses of its full buckets (at most `max_elements` of them), in bucket order.
    fn hash_slots(
        &self,
        ty: TypeRef,
        address: u64,
        paths: &[&[&str]],
    ) -> Result<(TypeRef, u64, Vec<u64>), ValueError> {
        let def = self.def(self.index.resolve(ty))?;
        let (table_ty, table_at) = self.field_path(ty, address, paths)?;
        let pair = self.template_param(table_ty, "T")?;
        let (inner_ty, inner_at) = self.field(table_ty, table_at, "table")?;
        let read = |name| -> Result<u64, ValueError> {
            let (fty, at) = self.field(inner_ty, inner_at, name)?;
            self.scalar(fty, at)
        };
        let (bucket_mask, ctrl, items) = (read("bucket_mask")?, read("ctrl")?, read("items")?);
        let buckets = bucket_mask
            .checked_add(1)
            .filter(|b| b.is_power_of_two())
            .ok_or_else(|| garbage(def, address, format!("bucket mask {bucket_mask:#x}")))?;
        if items > buckets {
            return Err(garbage(
                def,
                address,
                format!("{items} items in {buckets} buckets"),
            ));
        }
        // A real table holds a fraction of its buckets; one this much larger than the
        // elements the reader may show is garbage or beyond what it should read.
        let max_buckets = self.limits.max_elements.saturating_mul(16).max(1 << 16);
        if buckets > max_buckets {
            return Err(ValueError::TooLong {
                type_name: def.name.clone(),
                len: buckets,
                max: max_buckets,
            });
        }
        let pair_size = self.size_of(pair)?;
        let control = self.bytes(ctrl, buckets)?;
        let mut slots = Vec::new();
        for (index, byte) in control.iter().enumerate() {
            if byte & CTRL_EMPTY_OR_DELETED != 0 {
                continue;
            }
            if slots.len() as u64 >= self.limits.max_elements {
                break;
            }
            // Buckets grow downwards from the control bytes: bucket i ends where bucket
            // i - 1 starts.
            let slot = (index as u64 + 1)
                .checked_mul(pair_size)
                .and_then(|below| ctrl.checked_sub(below))
                .ok_or_else(|| garbage(def, address, format!("control bytes at {ctrl:#x}")))?;
            slots.push(slot);
        }
        Ok((pair, items, slots))
    }

    /// The `(K, V)` tuples at `slots` (keys only, with `()`, unless `with_values`), stopping
    /// at the first that cannot be read.
    fn pairs(
        &mut self,
        pair: TypeRef,
        slots: &[u64],
        with_values: bool,
    ) -> Result<Vec<(Value, Value)>, ValueError> {
        let mut entries = Vec::new();
        for &slot in slots {
            let (key_ty, key_at) = self.field(pair, slot, "__0")?;
            let key = self.value(key_ty, key_at);
            let value = if with_values {
                let (value_ty, value_at) = self.field(pair, slot, "__1")?;
                self.value(value_ty, value_at)
            } else {
                Value::Unit
            };
            let unreadable = [&key, &value]
                .iter()
                .any(|v| matches!(v, Value::Error(ValueError::Memory(_))));
            entries.push((key, value));
            if unreadable {
                break;
            }
        }
        Ok(entries)
    }

    pub(super) fn btree_map(&mut self, ty: TypeRef, address: u64) -> Result<Value, ValueError> {
        let (len, entries) = self.btree_entries(ty, address, true)?;
        Ok(Value::Map {
            kind: MapKind::BTreeMap,
            len,
            entries,
        })
    }

    /// A `BTreeSet`: its `map`'s keys.
    pub(super) fn btree_set(&mut self, ty: TypeRef, address: u64) -> Result<Value, ValueError> {
        let (map_ty, map_at) = self.field(ty, address, "map")?;
        let (len, entries) = self.btree_entries(map_ty, map_at, false)?;
        Ok(Value::Seq {
            kind: SeqKind::BTreeSet,
            len,
            items: entries.into_iter().map(|(k, _)| k).collect(),
        })
    }

    /// The length a `BTreeMap` claims and its entries in order. A node that cannot be read
    /// ends the walk with an error entry after those found so far.
    fn btree_entries(
        &mut self,
        ty: TypeRef,
        address: u64,
        with_values: bool,
    ) -> Result<(u64, Vec<(Value, Value)>), ValueError> {
        let def = self.def(self.index.resolve(ty))?;
        let (len_ty, len_at) = self.field(ty, address, "length")?;
        let length = self.scalar(len_ty, len_at)?;
        let (root_ty, root_at) = self.field(ty, address, "root")?;
        // `root: Option<NodeRef>`; an empty map has `None`.
        let (root_def, root) = self.composite(root_ty)?;
        let (node_ref_ty, node_ref_at) = match &root.variant_part {
            Some(part) => {
                let variant = self.active_variant(root_def, part, root_at)?;
                if variant.discr_value.is_some() && variant.field.name.as_deref() == Some("None") {
                    return Ok((length, Vec::new()));
                }
                let some = variant
                    .field
                    .ty
                    .ok_or_else(|| shape(root_def, "Some without type"))?;
                self.field(
                    some,
                    root_at.wrapping_add(variant.field.offset.unwrap_or(0)),
                    "__0",
                )?
            }
            None => (root_ty, root_at),
        };
        let (height_ty, height_at) = self.field(node_ref_ty, node_ref_at, "height")?;
        let height = self.scalar(height_ty, height_at)?;
        let (node_ty, node_at) = self.field(node_ref_ty, node_ref_at, "node")?;
        let node = self.scalar(node_ty, node_at)?;
        if height > MAX_BTREE_HEIGHT {
            return Err(garbage(def, address, format!("a tree of height {height}")));
        }
        let layout = self.node_layout(ty, node_ty, height > 0)?;
        let mut walk = Walk {
            layout,
            with_values,
            visited: HashSet::new(),
            entries: Vec::new(),
        };
        if let Err(error) = self.walk_node(&mut walk, node, height) {
            walk.entries
                .push((Value::Error(error.clone()), Value::Error(error)));
        }
        Ok((length, walk.entries))
    }

    /// Where keys, values, lengths and edges are in a `LeafNode<K, V>` and its
    /// `InternalNode<K, V>` (found by name: the same generic arguments).
    fn node_layout(
        &self,
        map_ty: TypeRef,
        node_ty: TypeRef,
        internal: bool,
    ) -> Result<NodeLayout, ValueError> {
        let key = self.template_param(map_ty, "K")?;
        let value = self.template_param(map_ty, "V")?;
        let leaf = self.index.resolve(self.pointer_target(node_ty)?);
        let leaf_def = self.def(leaf)?;
        let slots = |field: &str, inner: TypeRef| -> Result<Slots, ValueError> {
            let (array, offset) = self.field(leaf, 0, field)?;
            let (element, count) = self.array(array)?;
            Ok(Slots {
                offset,
                stride: self.size_of(element)?,
                inner: self.embedded_offset(element, inner)?,
                count,
            })
        };
        let keys = slots("keys", key)?;
        let values = slots("vals", value)?;
        let (len_ty, len_offset) = self.field(leaf, 0, "len")?;
        let edges = if internal {
            let name = leaf_def.name.replacen("::LeafNode<", "::InternalNode<", 1);
            let node = self
                .index
                .by_name(&name)
                .ok_or_else(|| shape(leaf_def, &format!("no `{name}` in the DWARF")))?;
            let (_, data_offset) = self.field(node, 0, "data")?;
            let (array, offset) = self.field(node, 0, "edges")?;
            let (element, _) = self.array(array)?;
            Some(Edges {
                data_offset,
                offset,
                stride: self.size_of(element)?,
                element,
            })
        } else {
            None
        };
        Ok(NodeLayout {
            key,
            value,
            keys,
            values,
            len_ty,
            len_offset,
            edges,
        })
    }

    /// Appends the entries of the subtree at `node` (of `height`) in order.
    fn walk_node(&mut self, walk: &mut Walk, node: u64, height: u64) -> Result<(), ValueError> {
        let node_error = |what: String| ValueError::Garbage {
            type_name: "a BTreeMap node".to_owned(),
            address: node,
            what,
        };
        if node == 0 || !walk.visited.insert(node) {
            return Err(node_error("null, or reached twice (a cycle)".to_owned()));
        }
        let layout = &walk.layout;
        let data = match (&layout.edges, height) {
            (_, 0) => node,
            (Some(edges), _) => node.wrapping_add(edges.data_offset),
            (None, _) => {
                return Err(node_error(
                    "an internal node in a leaf-only tree".to_owned(),
                ))
            }
        };
        let len = self.scalar(layout.len_ty, data.wrapping_add(layout.len_offset))?;
        if len > layout.keys.count {
            return Err(node_error(format!(
                "{len} keys in room for {}",
                layout.keys.count
            )));
        }
        let edges = layout
            .edges
            .as_ref()
            .filter(|_| height > 0)
            .map(|e| (e.offset, e.stride, e.element));
        let (key, value, keys, values) = (layout.key, layout.value, layout.keys, layout.values);
        let max = self.limits.max_elements;
        let full = |walk: &Walk| walk.entries.len() as u64 >= max;
        for i in 0..=len {
            if let Some((offset, stride, element)) = edges {
                if full(walk) {
                    return Ok(());
                }
                let child = self.scalar(
                    element,
                    node.wrapping_add(offset.wrapping_add(i.wrapping_mul(stride))),
                )?;
                self.walk_node(walk, child, height - 1)?;
            }
            if full(walk) {
                return Ok(());
            }
            if i < len {
                let k = self.value(key, data.wrapping_add(keys.at(i)));
                let v = if walk.with_values {
                    self.value(value, data.wrapping_add(values.at(i)))
                } else {
                    Value::Unit
                };
                walk.entries.push((k, v));
            }
        }
        Ok(())
    }

    /// A `RawVec`-backed buffer: pointer, length (field `len`), capacity.
    fn buffer(&self, ty: TypeRef, address: u64) -> Result<Buffer, ValueError> {
        let layout = self.memo.buffer(ty, || {
            Ok::<_, ValueError>(BufferLayout {
                ptr: self.field_path(ty, 0, BUF_PTR)?,
                len: self.field(ty, 0, "len")?,
                cap: self.field_path(ty, 0, BUF_CAP)?,
            })
        })?;
        let read = |(field_ty, offset): (TypeRef, u64)| match address.checked_add(offset) {
            Some(at) => self.scalar(field_ty, at),
            None => Err(garbage(
                self.def(self.index.resolve(ty))?,
                address,
                "a buffer beyond the address space".to_owned(),
            )),
        };
        Ok(Buffer {
            ptr: read(layout.ptr)?,
            len: read(layout.len)?,
            cap: read(layout.cap)?,
        })
    }

    /// A buffer of `element`s is plausible: length within capacity, capacity within what an
    /// allocation can be, a pointer where there is memory.
    fn check_buffer(
        &self,
        ty: TypeRef,
        address: u64,
        buf: &Buffer,
        element: TypeRef,
    ) -> Result<(), ValueError> {
        let def = self.def(self.index.resolve(ty))?;
        let size = self.size_of(element)?;
        if size == 0 {
            // Zero-sized elements take no memory; the capacity is usize::MAX.
            return Ok(());
        }
        if buf.len > buf.cap {
            return Err(garbage(
                def,
                address,
                format!("length {} over capacity {}", buf.len, buf.cap),
            ));
        }
        let bytes = buf.cap.checked_mul(size).filter(|b| *b <= i64::MAX as u64);
        if bytes.and_then(|b| buf.ptr.checked_add(b)).is_none() {
            return Err(garbage(
                def,
                address,
                format!("capacity {} of {size}-byte elements", buf.cap),
            ));
        }
        if buf.cap > 0 && buf.ptr == 0 {
            return Err(garbage(def, address, "a null buffer".to_owned()));
        }
        Ok(())
    }

    /// An array type's element type and length.
    fn array(&self, ty: TypeRef) -> Result<(TypeRef, u64), ValueError> {
        let def = self.def(self.index.resolve(ty))?;
        match def.kind {
            crate::debuginfo::TypeKind::Array {
                element: Some(element),
                count: Some(count),
            } => Ok((element, count)),
            _ => Err(shape(def, "expected an array")),
        }
    }
}

/// One B-tree walk's state.
struct Walk {
    layout: NodeLayout,
    with_values: bool,
    visited: HashSet<u64>,
    entries: Vec<(Value, Value)>,
}

struct NodeLayout {
    key: TypeRef,
    value: TypeRef,
    keys: Slots,
    values: Slots,
    len_ty: TypeRef,
    /// Offsets are from the node's `LeafNode` part.
    len_offset: u64,
    edges: Option<Edges>,
}

/// An array of `MaybeUninit<T>` in a node.
#[derive(Clone, Copy)]
struct Slots {
    offset: u64,
    stride: u64,
    /// Where the `T` is inside its `MaybeUninit<T>`.
    inner: u64,
    count: u64,
}

impl Slots {
    fn at(&self, i: u64) -> u64 {
        // Offsets from a damaged file may be anything: an address that wraps reads nothing.
        self.offset
            .wrapping_add(i.wrapping_mul(self.stride))
            .wrapping_add(self.inner)
    }
}

/// The child pointers of an `InternalNode`; offsets from the node's start.
struct Edges {
    data_offset: u64,
    offset: u64,
    stride: u64,
    element: TypeRef,
}
