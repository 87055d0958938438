//! Typed reading of Rust values from a [`MemorySource`], driven only by the DWARF of the
//! executable ([`TypeIndex`]): a type and an address in, a [`Value`] tree out, with std's
//! collections, smart pointers and locks decoded from their DWARF shape the way the
//! toolchain's own debugger providers do (the installed rustc's
//! `lib/rustlib/etc/*_providers.py`).
//!
//! No offset, size or discriminant is written here: they come from the DWARF of the exact
//! binary. What it does know are std's type *names* and field names (`Vec`'s `len`, a
//! `Mutex`'s `inner`), with fallbacks where releases differ, and the meaning of a few std
//! values (a futex word's 0/1/2, a hashbrown control byte's top bit).
//!
//! Memory is garbage until proven otherwise: every length is checked against [`Limits`],
//! every pointer chain against cycles and depth. A bad part of a value becomes a
//! [`Value::Error`] where it was found, and the rest of the tree is still decoded; nothing
//! panics, loops without end or allocates from an unchecked length.

mod collections;
mod decode;
pub mod layout;
mod memo;
mod pointers;
mod shape;
mod sync;
mod tree;

pub use tree::{MapKind, MutexState, RwLockState, SeqKind, SharedKind, Value};

use crate::debuginfo::{TypeIndex, TypeRef};
use crate::memory::{MemoryError, MemorySource};
use thiserror::Error;

/// Bounds on what one read may decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Elements decoded per collection; the rest are left out (the value keeps the length
    /// the collection claims, so a cut is visible).
    pub max_elements: u64,
    /// Bytes in one string (or one opaque value); a longer one is an error.
    pub max_string_len: u64,
    /// How deeply values may nest (fields, elements and pointers all count).
    pub max_depth: usize,
    /// Values decoded in one read, in all; past it, the rest are errors.
    pub max_values: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_elements: 1_000_000,
            max_string_len: 16 << 20,
            max_depth: 64,
            max_values: 4_000_000,
        }
    }
}

/// Why (part of) a value could not be decoded.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum ValueError {
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(
        "type {0} is not in the executable's DWARF index; the debug info is damaged or \
         belongs to another build"
    )]
    UnknownType(TypeRef),
    #[error(
        "`{type_name}` does not have the shape the reader expects ({what}); the toolchain's \
         std layout changed: compare with its lib/rustlib/etc/gdb_providers.py"
    )]
    Shape { type_name: String, what: String },
    #[error("`{type_name}` at {address:#x} holds garbage: {what}")]
    Garbage {
        type_name: String,
        address: u64,
        what: String,
    },
    #[error("`{type_name}` cannot be decoded: {what}")]
    Unsupported { type_name: String, what: String },
    #[error("values nest deeper than {max} levels here; raise Limits::max_depth if this is real")]
    TooDeep { max: usize },
    #[error("`{type_name}` claims {len} bytes, over the limit of {max}; raise Limits::max_string_len if this is real")]
    TooLong {
        type_name: String,
        len: u64,
        max: u64,
    },
    #[error("this read decoded its limit of {max} values; raise Limits::max_values")]
    TooMany { max: u64 },
}

/// Which fields of which struct types a read decodes, when not all of them: pairs of a
/// type's Rust path (`app::table::Table`, without generic arguments for a generic
/// type) and the names of the fields wanted. Fields left out are not read and are absent
/// from the struct's value; types not named are decoded whole.
pub type FieldSelection<'s> = &'s [(&'s str, &'s [&'s str])];

/// Decodes values of one executable's types from one memory source.
pub struct ValueReader<'a> {
    index: &'a TypeIndex,
    memory: &'a dyn MemorySource,
    limits: Limits,
    selection: FieldSelection<'a>,
}

impl<'a> ValueReader<'a> {
    pub fn new(index: &'a TypeIndex, memory: &'a dyn MemorySource, limits: Limits) -> Self {
        ValueReader {
            index,
            memory,
            limits,
            selection: &[],
        }
    }

    /// Decodes only the selected fields of the struct types `selection` names: a caller
    /// that reads a few fields of a large value does not pay for the rest (a table's
    /// indexes, say).
    pub fn only_fields(self, selection: FieldSelection<'a>) -> Self {
        ValueReader { selection, ..self }
    }

    /// The value of type `ty` at `address` (a runtime address: add the load bias to a
    /// link-time one). Errors deep in the value are [`Value::Error`]s in the tree; the value
    /// as a whole is an error only when nothing of it could be decoded.
    pub fn read(&self, ty: TypeRef, address: u64) -> Result<Value, ValueError> {
        let mut decoder = decode::Decoder::new(self.index, self.memory, self.limits);
        decoder.select(self.selection);
        match decoder.value(ty, address) {
            Value::Error(error) => Err(error),
            value => Ok(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debuginfo::Executable;
    use crate::memory::{maps, FileMapping, LiveProcess};
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::Mutex;

    pub(super) struct Table {
        pub generation: u64,
        pub names: BTreeMap<u64, String>,
        pub queue: VecDeque<Option<Box<u32>>>,
    }

    pub(super) static TABLE: Mutex<Table> = Mutex::new(Table {
        generation: 0,
        names: BTreeMap::new(),
        queue: VecDeque::new(),
    });

    /// This test process reads its own static, as a probe reads another process's (no freeze:
    /// a process cannot trace itself, and nothing else touches the static meanwhile).
    #[test]
    fn reads_a_static_of_this_process() {
        {
            let mut table = TABLE.lock().expect("not poisoned");
            table.generation = 4;
            table.names.extend((0..30).map(|k| (k, format!("n{k}"))));
            table.queue.extend([Some(Box::new(5)), None]);
        }
        let path = std::env::current_exe().expect("current exe");
        let exe = Executable::open(&path).expect("open");
        let index = TypeIndex::build(&exe).expect("index");
        let stat = index
            .find_static(&exe, "dwarfpeek::value::tests::TABLE")
            .expect("TABLE");
        let me = nix::unistd::getpid();
        let files: Vec<FileMapping> = maps::read_maps(me.as_raw())
            .expect("maps")
            .iter()
            .filter_map(|m| m.file())
            .collect();
        let bias = exe.load_bias(&files, &path).expect("bias");
        let memory = LiveProcess::new(me);
        let value = ValueReader::new(&index, &memory, Limits::default())
            .read(stat.ty, stat.address + bias)
            .expect("TABLE decodes");

        let Value::Mutex { state, value, .. } = &value else {
            panic!("a Mutex: {value:?}");
        };
        assert_eq!(*state, MutexState::Unlocked);
        assert_eq!(value.field("generation"), Some(&Value::Uint(4)));
        let names = value
            .field("names")
            .and_then(Value::entries)
            .expect("a map");
        assert_eq!(names.len(), 30);
        assert_eq!(names[29], (Value::Uint(29), Value::Str("n29".to_owned())));
        let queue = value
            .field("queue")
            .and_then(Value::items)
            .expect("a deque");
        let first = queue[0].option().flatten().and_then(Value::inner);
        assert_eq!(first, Some(&Value::Uint(5)));
        assert_eq!(queue[1].option(), Some(None));
        assert!(value.first_error().is_none());

        // Tighter limits cut the map, and say so by its claimed length.
        let limits = Limits {
            max_elements: 3,
            ..Limits::default()
        };
        let cut = ValueReader::new(&index, &memory, limits)
            .read(stat.ty, stat.address + bias)
            .expect("TABLE decodes");
        match cut.innermost().field("names") {
            Some(Value::Map { len, entries, .. }) => assert_eq!((*len, entries.len()), (30, 3)),
            other => panic!("a map: {other:?}"),
        }

        // A selection leaves the other fields out.
        let only = ValueReader::new(&index, &memory, Limits::default())
            .only_fields(&[("dwarfpeek::value::tests::Table", &["generation", "queue"])])
            .read(stat.ty, stat.address + bias)
            .expect("TABLE decodes");
        let table = only.innermost();
        assert_eq!(table.field("generation"), Some(&Value::Uint(4)));
        assert!(table.field("names").is_none());
        assert_eq!(
            table.field("queue").and_then(Value::items).map(<[_]>::len),
            Some(2)
        );
    }
}
