//! An expression's steps taken through a decoded value: fields, elements, map entries,
//! variants, lengths, with references, boxes, `Rc`/`Arc` and locks looked through as Rust's
//! auto-deref does.
//!
//! Values in, a value out; a step that does not fit says which step and what it found.

use super::expr::Step;
use crate::value::{SeqKind, Value};
use thiserror::Error;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("`{step}` (step {number}) cannot be taken: {what}")]
pub struct StepError {
    pub step: String,
    pub number: usize,
    pub what: String,
}

/// The value at the end of `steps` from `value`.
pub fn walk(value: Value, steps: &[Step]) -> Result<Value, StepError> {
    steps
        .iter()
        .enumerate()
        .try_fold(value, |value, (i, step)| {
            take(value, step).map_err(|what| StepError {
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

/// Through references, boxes, shared pointers and locks, to the value they hold.
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

fn take(value: Value, step: &Step) -> Result<Value, String> {
    let value = through(value);
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
        Value::Seq { items, len, .. } => {
            if i >= len {
                return Err(format!("index {i} is out of bounds: the length is {len}"));
            }
            items.into_iter().nth(i as usize).ok_or_else(|| {
                format!("element {i} was not decoded (raise --limit: it is {len} long)")
            })
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

fn range(value: Value, a: u64, b: u64) -> Result<Value, String> {
    match value {
        Value::Seq { items, len, .. } => {
            if b > len {
                return Err(format!(
                    "range {a}..{b} is out of bounds: the length is {len}"
                ));
            }
            if b as usize > items.len() {
                return Err(format!(
                    "elements up to {b} were not all decoded (raise --limit: it is {len} long)"
                ));
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
