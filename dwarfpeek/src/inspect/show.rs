//! A decoded value shown to a person (Rust's pretty `{:#?}` style) or to a program (JSON),
//! within a depth and a number of elements per collection, with addresses on request.
//!
//! Values in, text out: it reads nothing and decides nothing about the value.

use crate::value::{SeqKind, Value};
use serde_json::{json, Map, Value as Json};
use std::fmt::Write as _;

/// How much of a value to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shown {
    /// Levels of nesting shown; deeper values are `…`.
    pub depth: usize,
    /// Elements shown per collection; the rest are counted.
    pub limit: usize,
    /// Show the addresses of references, boxes and shared pointers.
    pub addresses: bool,
}

/// The value as Rust's `{:#?}` would print it, near enough.
pub fn text(value: &Value, shown: Shown) -> String {
    let mut out = String::new();
    write_text(&mut out, value, shown, 0);
    out
}

fn pad(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("    ");
    }
}

/// A list of items inside `open`/`close`, one a line, cut at the limit.
fn list<'v>(
    out: &mut String,
    open: &str,
    close: &str,
    items: impl ExactSizeIterator<Item = (Option<String>, &'v Value)>,
    total: u64,
    shown: Shown,
    level: usize,
) {
    if total == 0 {
        let _ = write!(out, "{open}{close}");
        return;
    }
    if level >= shown.depth {
        let _ = write!(out, "{open}…{close}");
        return;
    }
    out.push_str(open);
    out.push('\n');
    let mut count = 0u64;
    for (label, item) in items.take(shown.limit) {
        pad(out, level + 1);
        if let Some(label) = label {
            out.push_str(&label);
            out.push_str(": ");
        }
        write_text(out, item, shown, level + 1);
        out.push_str(",\n");
        count += 1;
    }
    if count < total {
        pad(out, level + 1);
        let _ = writeln!(out, "… ({} more)", total - count);
    }
    pad(out, level);
    out.push_str(close);
}

fn write_text(out: &mut String, value: &Value, shown: Shown, level: usize) {
    let at = |address: u64| {
        if shown.addresses {
            format!("@{address:#x} ")
        } else {
            String::new()
        }
    };
    match value {
        Value::Unit => out.push_str("()"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Uint(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        Value::Char(c) => {
            let _ = write!(out, "{c:?}");
        }
        Value::Str(s) => {
            let _ = write!(out, "{s:?}");
        }
        Value::Struct { type_name, fields } => {
            named_fields(out, &short(type_name), fields, shown, level)
        }
        Value::Tuple(items) => {
            let labelled = items.iter().map(|v| (None, v));
            list(out, "(", ")", labelled, items.len() as u64, shown, level);
        }
        Value::Enum {
            variant, fields, ..
        } => {
            if fields.is_empty() {
                out.push_str(variant);
            } else {
                named_fields(out, variant, fields, shown, level);
            }
        }
        Value::Ref { address, target } => {
            out.push_str(&at(*address));
            write_text(out, target, shown, level);
        }
        Value::RawPointer {
            type_name, address, ..
        } => {
            let _ = write!(out, "{address:#x} as {type_name}");
        }
        Value::Seq { kind, len, items } => {
            let (open, close) = match kind {
                SeqKind::HashSet | SeqKind::BTreeSet => ("{", "}"),
                _ => ("[", "]"),
            };
            let labelled = items.iter().map(|v| (None, v));
            list(out, open, close, labelled, *len, shown, level);
        }
        Value::Map { len, entries, .. } => {
            let labelled = entries.iter().map(|(k, v)| (Some(text(k, shown)), v));
            list(out, "{", "}", labelled, *len, shown, level);
        }
        Value::Shared {
            kind,
            address,
            strong,
            weak,
            value,
        } => {
            let _ = write!(
                out,
                "{}{kind:?}(strong {strong}, weak {weak}) ",
                at(*address)
            );
            write_text(out, value, shown, level);
        }
        Value::Mutex {
            state,
            poisoned,
            value,
        } => {
            let _ = write!(
                out,
                "Mutex({state:?}{}) ",
                if *poisoned { ", poisoned" } else { "" }
            );
            write_text(out, value, shown, level);
        }
        Value::RwLock {
            state,
            poisoned,
            value,
        } => {
            let _ = write!(
                out,
                "RwLock({}{}) ",
                match (state.write_locked, state.readers) {
                    (true, _) => "write-locked".to_owned(),
                    (false, 0) => "unlocked".to_owned(),
                    (false, 1) => "1 reader".to_owned(),
                    (false, n) => format!("{n} readers"),
                },
                if *poisoned { ", poisoned" } else { "" }
            );
            write_text(out, value, shown, level);
        }
        Value::RefCell { borrow, value } => {
            let _ = write!(out, "RefCell(borrow {borrow}) ");
            write_text(out, value, shown, level);
        }
        Value::Opaque { type_name, bytes } => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let _ = write!(out, "<{type_name}: {hex}>");
        }
        Value::Cycle { address } => {
            let _ = write!(out, "<cycle back to {address:#x}>");
        }
        Value::Error(error) => {
            let _ = write!(out, "<error: {error}>");
        }
    }
}

/// A struct or a variant with its fields: `Name(a, b)` when they are positional (`__0`,
/// `__1`: a tuple struct or variant), `Name { a: …, b: … }` otherwise.
fn named_fields(
    out: &mut String,
    name: &str,
    fields: &[(String, Value)],
    shown: Shown,
    level: usize,
) {
    let count = fields.len() as u64;
    if !fields.is_empty() && fields.iter().all(|(n, _)| n.starts_with("__")) {
        let items = fields.iter().map(|(_, v)| (None, v));
        list(out, &format!("{name}("), ")", items, count, shown, level);
    } else {
        let items = fields.iter().map(|(n, v)| (Some(n.clone()), v));
        list(out, &format!("{name} {{"), "}", items, count, shown, level);
    }
}

/// `alloc::vec::Vec<u32, alloc::alloc::Global>` → `Vec<u32, Global>`: the last path segment
/// of each name, as Rust's Debug shows a type.
fn short(type_name: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    for c in type_name.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            out.push_str(word.rsplit("::").next().unwrap_or_default());
            word.clear();
            out.push(c);
        }
    }
    out.push_str(word.rsplit("::").next().unwrap_or_default());
    out
}

/// The value as JSON: structs as objects, sequences as arrays, maps as arrays of
/// `[key, value]`, enums as `{"variant": …, "fields": {…}}`, integers beyond 64 bits as
/// strings; `address` members with `--addr`.
pub fn json(value: &Value, shown: Shown) -> Json {
    to_json(value, shown, 0)
}

fn to_json(value: &Value, shown: Shown, level: usize) -> Json {
    if level > shown.depth {
        return json!("…");
    }
    let deeper = |v: &Value| to_json(v, shown, level + 1);
    let object = |fields: &[(String, Value)]| -> Json {
        Json::Object(
            fields
                .iter()
                .map(|(n, v)| (n.clone(), deeper(v)))
                .collect::<Map<_, _>>(),
        )
    };
    let with_address = |mut v: Json, address: u64| {
        if shown.addresses {
            if let Json::Object(m) = &mut v {
                m.insert("address".into(), json!(format!("{address:#x}")));
            } else {
                v = json!({"address": format!("{address:#x}"), "value": v});
            }
        }
        v
    };
    match value {
        Value::Unit => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => i64::try_from(*i).map_or_else(|_| json!(i.to_string()), |v| json!(v)),
        Value::Uint(u) => u64::try_from(*u).map_or_else(|_| json!(u.to_string()), |v| json!(v)),
        Value::Float(f) => json!(f),
        Value::Char(c) => json!(c.to_string()),
        Value::Str(s) => json!(s),
        Value::Struct { fields, .. } => object(fields),
        Value::Tuple(items) => Json::Array(items.iter().map(deeper).collect()),
        Value::Enum {
            variant, fields, ..
        } => json!({"variant": variant, "fields": object(fields)}),
        Value::Ref { address, target } => with_address(deeper(target), *address),
        Value::RawPointer { address, .. } => json!(format!("{address:#x}")),
        Value::Seq { len, items, .. } => {
            let mut shown_items: Vec<Json> = items.iter().take(shown.limit).map(deeper).collect();
            if (shown_items.len() as u64) < *len {
                shown_items.push(json!({"more": len - shown_items.len() as u64}));
            }
            Json::Array(shown_items)
        }
        Value::Map { len, entries, .. } => {
            let mut pairs: Vec<Json> = entries
                .iter()
                .take(shown.limit)
                .map(|(k, v)| json!([deeper(k), deeper(v)]))
                .collect();
            if (pairs.len() as u64) < *len {
                pairs.push(json!({"more": len - pairs.len() as u64}));
            }
            Json::Array(pairs)
        }
        Value::Shared {
            address,
            strong,
            weak,
            value,
            ..
        } => with_address(
            json!({"strong": strong, "weak": weak, "value": deeper(value)}),
            *address,
        ),
        Value::Mutex {
            state,
            poisoned,
            value,
        } => json!({"state": format!("{state:?}"), "poisoned": poisoned, "value": deeper(value)}),
        Value::RwLock {
            state,
            poisoned,
            value,
        } => {
            json!({"write_locked": state.write_locked, "readers": state.readers, "poisoned": poisoned, "value": deeper(value)})
        }
        Value::RefCell { borrow, value } => json!({"borrow": borrow, "value": deeper(value)}),
        Value::Opaque { type_name, bytes } => json!({"type": type_name, "bytes": bytes}),
        Value::Cycle { address } => json!({"cycle": format!("{address:#x}")}),
        Value::Error(error) => json!({"error": error.to_string()}),
    }
}
