//! An expression's steps taken through a decoded value: fields, elements, map entries,
//! variants, lengths, with references, boxes, `Rc`/`Arc`, locks and raw pointers looked
//! through as Rust's auto-deref does.
//!
//! Values in, a value out; a step that does not fit says which step and what it found. The
//! only memory it reads is what a raw pointer points at, through the caller's [`Follow`].

use super::expr::Step;
use crate::debuginfo::TypeRef;
use crate::value::{SeqKind, Value};
use thiserror::Error;

/// Reads the value of a type at an address (an undecodable one is a [`Value::Error`]).
pub type Follow<'f> = dyn FnMut(TypeRef, u64) -> Value + 'f;

/// Pointers followed in a row at most, so that memory or DWARF pointing back at itself
/// ends in an error.
const MAX_HOPS: usize = 16;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("`{step}` (step {number}) cannot be taken: {what}")]
pub struct StepError {
    pub step: String,
    pub number: usize,
    pub what: String,
}

/// The value at the end of `steps` from `value`; `follow` reads what a raw pointer on the
/// way points at.
pub fn walk(value: Value, steps: &[Step], follow: &mut Follow<'_>) -> Result<Value, StepError> {
    steps
        .iter()
        .enumerate()
        .try_fold(value, |value, (i, step)| {
            take(value, step, follow).map_err(|what| StepError {
                step: describe(step),
                number: i + 1,
                what,
            })
        })
}

fn describe(step: &Step) -> String {
    match step {
        Step::Field(name) => format!(".{name}"),
        Step::Position(n) => format!(".{n}"),
        Step::Index(i) => format!("[{i}]"),
        Step::Range(a, b) => format!("[{a}..{b}]"),
        Step::Key(k) => format!("[{k:?}]"),
        Step::Len => ".len()".to_owned(),
        Step::As(v) => format!("as {v}"),
    }
}

/// Through references, boxes, shared pointers and locks (decoded with the value), to the
/// value they hold.
fn through(value: Value) -> Value {
    match value {
        Value::Ref { target, .. } => through(*target),
        Value::Shared { value, .. }
        | Value::Mutex { value, .. }
        | Value::RwLock { value, .. }
        | Value::RefCell { value, .. } => through(*value),
        other => other,
    }
}

fn kind_of(value: &Value) -> String {
    match value {
        Value::Struct { type_name, .. } => format!("a `{type_name}`"),
        Value::Enum {
            type_name, variant, ..
        } => format!("`{type_name}::{variant}`"),
        Value::Seq { kind, len, .. } => format!("a {kind:?} of {len}"),
        Value::Map { kind, len, .. } => format!("a {kind:?} of {len}"),
        Value::Tuple(items) => format!("a tuple of {}", items.len()),
        Value::Str(_) => "a string".to_owned(),
        Value::Error(e) => format!("an undecodable value ({e})"),
        other => format!("{other:?}").chars().take(60).collect(),
    }
}

/// `NonNull<T>` and `Unique<T>`: a raw pointer in a struct of one field, `pointer`.
pub(crate) fn is_pointer_wrapper(type_name: &str) -> bool {
    type_name.starts_with("core::ptr::non_null::NonNull<")
        || type_name.starts_with("core::ptr::unique::Unique<")
}

/// Where a step lands: through a pointer to another value, or on this one.
enum Deref {
    Through(Value),
    Here(Value),
}

/// One pointer's worth of auto-deref before `step`: what a reference, box, shared
/// pointer or lock holds; what a raw pointer (or a `NonNull`, unless the step names its
/// own field) points at, read through `follow`.
fn deref(value: Value, step: &Step, follow: &mut Follow<'_>) -> Result<Deref, String> {
    Ok(match through(value) {
        Value::RawPointer {
            type_name,
            address,
            target,
        } => match target {
            Some(_) if address == 0 => return Err(format!("`{type_name}` is null")),
            Some(ty) => Deref::Through(follow(ty, address)),
            None => {
                return Err(format!(
                    "`{type_name}` at {address:#x} points at nothing DWARF describes"
                ))
            }
        },
        Value::Struct {
            type_name,
            mut fields,
        } if is_pointer_wrapper(&type_name)
            && !matches!(step, Step::Field(name) if fields.iter().any(|(n, _)| n == name)) =>
        {
            match fields.iter().position(|(n, _)| n == "pointer") {
                Some(at) => Deref::Through(fields.swap_remove(at).1),
                None => Deref::Here(Value::Struct { type_name, fields }),
            }
        }
        other => Deref::Here(other),
    })
}

fn take(mut value: Value, step: &Step, follow: &mut Follow<'_>) -> Result<Value, String> {
    for _ in 0..MAX_HOPS {
        match deref(value, step, follow)? {
            Deref::Through(next) => value = next,
            Deref::Here(here) => return apply(here, step),
        }
    }
    Err(format!("more than {MAX_HOPS} pointers in a row"))
}

fn apply(value: Value, step: &Step) -> Result<Value, String> {
    match step {
        Step::Field(name) => field(value, name),
        Step::Position(n) => field(value, &format!("__{n}")),
        Step::Index(i) => index(value, *i),
        Step::Range(a, b) => range(value, *a, *b),
        Step::Key(key) => entry(
            value,
            |k| k.as_str() == Some(key.as_str()),
            &format!("{key:?}"),
        ),
        Step::Len => match value {
            Value::Seq { len, .. } | Value::Map { len, .. } => Ok(Value::Uint(u128::from(len))),
            Value::Str(s) => Ok(Value::Uint(s.len() as u128)),
            other => Err(format!("{} has no length", kind_of(&other))),
        },
        Step::As(variant) => match value {
            Value::Enum { variant: ref v, .. } if v == variant => Ok(value_of_variant(value)),
            Value::Enum {
                type_name,
                variant: v,
                ..
            } => Err(format!("`{type_name}` is `{v}`, not `{variant}`")),
            other => Err(format!("{} is not an enum", kind_of(&other))),
        },
    }
}

/// An enum's fields as a struct of its variant (what `.Some` or `as Some` gives).
fn value_of_variant(value: Value) -> Value {
    match value {
        Value::Enum {
            variant, fields, ..
        } => Value::Struct {
            type_name: variant,
            fields,
        },
        other => other,
    }
}

fn field(value: Value, name: &str) -> Result<Value, String> {
    match value {
        Value::Struct { fields, type_name } => fields
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("`{type_name}` has no field `{name}`")),
        Value::Tuple(items) => name
            .strip_prefix("__")
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| items.into_iter().nth(n))
            .ok_or_else(|| format!("the tuple has no field `{name}`")),
        Value::Enum { ref variant, .. } if variant == name => Ok(value_of_variant(value)),
        Value::Enum {
            type_name,
            variant,
            fields,
        } => {
            // A field of the variant the enum is in, or another variant's name.
            match fields.into_iter().find(|(n, _)| n == name) {
                Some((_, v)) => Ok(v),
                None => Err(format!(
                    "`{type_name}` is `{variant}`, which has no field or name `{name}`"
                )),
            }
        }
        other => Err(format!("{} has no fields", kind_of(&other))),
    }
}

fn index(value: Value, i: u64) -> Result<Value, String> {
    match value {
        Value::Seq { mut items, len, .. } => {
            if i >= len {
                return Err(format!("index {i} is out of bounds: the length is {len}"));
            }
            if i as usize >= items.len() {
                return Err(not_decoded(i, len, &items));
            }
            Ok(items.swap_remove(i as usize))
        }
        Value::Tuple(items) => items
            .into_iter()
            .nth(i as usize)
            .ok_or_else(|| format!("the tuple has no element {i}")),
        value @ Value::Map { .. } => entry(
            value,
            |k| k.as_u64() == Some(i) || k.as_i64() == Some(i as i64),
            &i.to_string(),
        ),
        other => Err(format!("{} cannot be indexed", kind_of(&other))),
    }
}

/// Why element `i` of a sequence `len` long is not among the decoded `items`: the
/// element limit, or an element that could not be read (decoding stops at the first, the
/// last of `items`).
fn not_decoded(i: u64, len: u64, items: &[Value]) -> String {
    match items.last() {
        Some(Value::Error(error)) => format!(
            "element {i} was not decoded: element {} could not be read ({error})",
            items.len() - 1
        ),
        _ => format!("element {i} was not decoded (raise --limit: it is {len} long)"),
    }
}

fn range(value: Value, a: u64, b: u64) -> Result<Value, String> {
    match value {
        Value::Seq { items, len, .. } => {
            if b > len {
                return Err(format!(
                    "range {a}..{b} is out of bounds: the length is {len}"
                ));
            }
            if b as usize > items.len() {
                return Err(not_decoded(b - 1, len, &items));
            }
            Ok(Value::Seq {
                kind: SeqKind::Slice,
                len: b - a,
                items: items
                    .into_iter()
                    .skip(a as usize)
                    .take((b - a) as usize)
                    .collect(),
            })
        }
        other => Err(format!("{} cannot be sliced", kind_of(&other))),
    }
}

fn entry(value: Value, matches: impl Fn(&Value) -> bool, key: &str) -> Result<Value, String> {
    match value {
        Value::Map { entries, len, .. } => {
            let decoded = entries.len() as u64;
            entries
                .into_iter()
                .find(|(k, _)| matches(&through(k.clone())))
                .map(|(_, v)| v)
                .ok_or_else(|| {
                    if decoded < len {
                        format!("no key {key} among the {decoded} entries decoded of {len} (raise --limit)")
                    } else {
                        format!("no key {key} among its {len} entries")
                    }
                })
        }
        other => Err(format!("{} has no keys", kind_of(&other))),
    }
}
