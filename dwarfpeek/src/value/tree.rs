//! The decoded value tree and the accessors a caller's model of a program's state walks it with.
//! Plain data: building it is [`super::decode`]'s job, showing it a renderer's.

use super::ValueError;
use crate::debuginfo::TypeRef;

/// A decoded Rust value.
///
/// Transparent std wrappers (`Cell`, `UnsafeCell`, `ManuallyDrop`, atomics, `NonZero`) are
/// shown as the value they wrap. Enums (`Option` included) are [`Value::Enum`]s whose
/// tuple-variant fields are named `__0`, `__1`, ... as in the DWARF.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `()` or another type without bytes and fields.
    Unit,
    Bool(bool),
    Int(i128),
    Uint(u128),
    Float(f64),
    Char(char),
    /// `String`, `&str`, `Box<str>`.
    Str(String),
    Struct {
        type_name: String,
        fields: Vec<(String, Value)>,
    },
    /// A tuple `(A, B, ...)`.
    Tuple(Vec<Value>),
    Enum {
        type_name: String,
        variant: String,
        fields: Vec<(String, Value)>,
    },
    /// A reference or `Box`, followed.
    Ref {
        address: u64,
        target: Box<Value>,
    },
    /// A raw pointer (`*const T`, `NonNull<T>`'s inside): not followed while decoding,
    /// since nothing says it points at a live `T`; `target` (the pointee's type, when DWARF
    /// gives a sized one) lets a reader that is asked to follow it do so.
    RawPointer {
        type_name: String,
        address: u64,
        target: Option<TypeRef>,
    },
    /// A sequence: `len` is what the collection claims; fewer `items` means the rest were
    /// cut by [`super::Limits::max_elements`] (or could not be read: then the last item
    /// is the error).
    Seq {
        kind: SeqKind,
        len: u64,
        items: Vec<Value>,
    },
    /// A map, in the collection's own order (hash order for a `HashMap`); `len` as in
    /// [`Value::Seq`].
    Map {
        kind: MapKind,
        len: u64,
        entries: Vec<(Value, Value)>,
    },
    /// `Rc<T>` or `Arc<T>`: the counts as the user sees them (`Rc::strong_count`,
    /// `Rc::weak_count`).
    Shared {
        kind: SharedKind,
        address: u64,
        strong: u64,
        weak: u64,
        value: Box<Value>,
    },
    Mutex {
        state: MutexState,
        poisoned: bool,
        value: Box<Value>,
    },
    RwLock {
        state: RwLockState,
        poisoned: bool,
        value: Box<Value>,
    },
    /// `borrow` is the flag: > 0 shared borrows, < 0 mutably borrowed.
    RefCell {
        borrow: i64,
        value: Box<Value>,
    },
    /// A union or a type the reader does not interpret: its bytes.
    Opaque {
        type_name: String,
        bytes: Vec<u8>,
    },
    /// A pointer back to a value that encloses this one: not followed again.
    Cycle {
        address: u64,
    },
    /// What could not be decoded here.
    Error(ValueError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqKind {
    Array,
    Slice,
    Vec,
    VecDeque,
    HashSet,
    BTreeSet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    HashMap,
    BTreeMap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedKind {
    Rc,
    Arc,
}

/// A futex mutex's word. std stores no owner: find it from the threads' stacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MutexState {
    Unlocked,
    Locked,
    /// Locked, with threads waiting.
    Contended,
    /// A word std never writes: garbage.
    Invalid(u32),
}

/// A futex reader-writer lock's state word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RwLockState {
    pub raw: u32,
    pub write_locked: bool,
    /// Shared holders (0 when write-locked).
    pub readers: u32,
    pub readers_waiting: bool,
    pub writers_waiting: bool,
}

impl Value {
    /// A field of a struct or of an enum's variant.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct { fields, .. } | Value::Enum { fields, .. } => {
                fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// The name of an enum's variant.
    pub fn variant(&self) -> Option<&str> {
        match self {
            Value::Enum { variant, .. } => Some(variant),
            _ => None,
        }
    }

    /// For an `Option`: `Some(None)` for `None`, `Some(Some(v))` for `Some(v)`; `None` for
    /// anything else.
    pub fn option(&self) -> Option<Option<&Value>> {
        match self {
            Value::Enum {
                type_name, variant, ..
            } if type_name.starts_with("core::option::Option<") => match variant.as_str() {
                "None" => Some(None),
                "Some" => Some(self.field("__0")),
                _ => None,
            },
            _ => None,
        }
    }

    /// What a reference, `Box`, `Rc`, `Arc`, lock or `RefCell` holds.
    pub fn inner(&self) -> Option<&Value> {
        match self {
            Value::Ref { target: value, .. }
            | Value::Shared { value, .. }
            | Value::Mutex { value, .. }
            | Value::RwLock { value, .. }
            | Value::RefCell { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Follows [`Value::inner`] as far as it goes.
    pub fn innermost(&self) -> &Value {
        let mut value = self;
        while let Some(inner) = value.inner() {
            value = inner;
        }
        value
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Uint(v) => u64::try_from(*v).ok(),
            Value::Int(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Uint(v) => i64::try_from(*v).ok(),
            Value::Int(v) => i64::try_from(*v).ok(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items of a sequence.
    pub fn items(&self) -> Option<&[Value]> {
        match self {
            Value::Seq { items, .. } | Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The entries of a map.
    pub fn entries(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map { entries, .. } => Some(entries),
            _ => None,
        }
    }

    /// The first error anywhere in the tree (depth first): what makes a decoded state
    /// partial.
    pub fn first_error(&self) -> Option<&ValueError> {
        match self {
            Value::Error(error) => Some(error),
            Value::Struct { fields, .. } | Value::Enum { fields, .. } => {
                fields.iter().find_map(|(_, v)| v.first_error())
            }
            Value::Tuple(items) | Value::Seq { items, .. } => {
                items.iter().find_map(Value::first_error)
            }
            Value::Map { entries, .. } => entries
                .iter()
                .find_map(|(k, v)| k.first_error().or_else(|| v.first_error())),
            other => other.inner().and_then(Value::first_error),
        }
    }
}
