//! The daemon's lock table, from its decoded value tree to the `latch.state/1` document:
//! lockers (by id), their holders (by conn) and waitings (queue order), the incubator.
//!
//! It walks only the names `docs/contract.md` lists (`LockTable.generation`, `Locker.rules`'
//! variant names, `Request.peer`...) and reads no memory: the tree was decoded before. A name
//! the tree lacks is a broken contract (the whole decode fails); a value the tree could not
//! decode (garbage, a cut collection) costs only the entry it belongs to, which is left out
//! and named in the problems, so the rest of the state is still shown.

use dwarfpeek::value::Value;
use latch_probe_common::doc::{
    EntryDoc, IncubatedDoc, LockerDoc, RequestDoc, Source, StateDoc, STATE_SCHEMA,
};
use latch_probe_common::{LockMode, ResourceType};

/// What the document says about where it came from.
#[derive(Clone, Copy, Debug)]
pub(super) struct Header<'a> {
    pub source: Source,
    pub pid: u32,
    pub version: &'a str,
}

/// A decoded table: the document and what could not be decoded into it.
#[derive(Clone, Debug)]
pub(super) struct Decoded {
    pub doc: StateDoc,
    /// One line per entry, locker or collection that was left out or cut; empty when the
    /// document is whole.
    pub problems: Vec<String>,
}

/// Why a part of the tree could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    /// The type lacks a name the contract promises: every value of it will.
    Contract(String),
    /// This value is damaged or missing; others of its type may be fine.
    Garbage(String),
}

/// The fields [`decode_state`] reads, by the contract's type names: a read of the table
/// decodes only these (the table's indexes `by_key` and `placements`, and fields such as
/// `Request.wait`, are left out). A name here that the decoding below does not read costs
/// time only; a name it reads must be here, or it is missing from every value.
pub(super) const READ_FIELDS: &[(&str, &[&str])] = &[
    (
        "latch::table::LockTable",
        &["generation", "lockers", "incubator"],
    ),
    (
        "latch::table::Locker",
        &[
            "id",
            "resource_name",
            "rules",
            "created_ns",
            "holders",
            "waitings",
        ],
    ),
    (
        "latch::table::Request",
        &[
            "conn",
            "resource_name",
            "resource_type",
            "lock_mode",
            "quantity",
            "element",
            "since_ns",
            "peer",
        ],
    ),
    ("latch::table::Peer", &["fd", "name", "pid", "uid"]),
];

/// Decodes `lock_table` (the value of the `LOCK_TABLE` static: a `Mutex<LockTable>`).
pub(super) fn decode_state(lock_table: &Value, header: Header<'_>) -> Result<Decoded, Fault> {
    let table = lock_table.innermost();
    let at = "LockTable";
    let generation = uint(field(table, "generation", at)?, "LockTable.generation")?;
    let mut problems = Vec::new();

    let lockers_value = field(table, "lockers", at)?;
    let Value::Map { len, entries, .. } = lockers_value else {
        return Err(garbage("LockTable.lockers", lockers_value, "a map"));
    };
    note_cut("LockTable.lockers", *len, entries.len(), &mut problems);
    let mut lockers = Vec::with_capacity(entries.len());
    for (key, boxed) in entries {
        match locker(boxed.innermost(), &mut problems) {
            Ok(doc) => lockers.push(doc),
            Err(Fault::Garbage(what)) => {
                problems.push(format!("locker {} left out: {what}", describe_key(key)))
            }
            Err(contract) => return Err(contract),
        }
    }

    let incubator_value = field(table, "incubator", at)?;
    let incubator = entries_of(
        incubator_value,
        "LockTable.incubator",
        incubated,
        &mut problems,
    )?;

    let mut doc = StateDoc {
        schema: STATE_SCHEMA.to_owned(),
        source: header.source,
        pid: header.pid,
        version: header.version.to_owned(),
        generation,
        torn: generation % 2 == 1,
        lockers,
        incubator,
    };
    doc.canonicalize();
    Ok(Decoded { doc, problems })
}

/// The `generation` of a decoded `LOCK_TABLE`, if it could be decoded.
pub(super) fn generation(lock_table: &Value) -> Option<u64> {
    lock_table.innermost().field("generation")?.as_u64()
}

/// A locker without its holders and waitings: what an event about the locker carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct LockerHeader {
    pub id: u64,
    pub resource_name: String,
    pub resource_type: ResourceType,
    pub created_ns: u64,
}

/// The header of a decoded `Locker`; its lists are not looked at.
pub(super) fn locker_header(value: &Value) -> Result<LockerHeader, Fault> {
    let (id, resource_type) = locker_identity(value)?;
    Ok(LockerHeader {
        id,
        resource_name: string(
            field(value, "resource_name", "Locker")?,
            "Locker.resource_name",
        )?,
        resource_type,
        created_ns: uint(field(value, "created_ns", "Locker")?, "Locker.created_ns")?,
    })
}

/// A decoded `Locker`'s id and resource type: what an event about one of its entries needs.
pub(super) fn locker_identity(value: &Value) -> Result<(u64, ResourceType), Fault> {
    let at = "Locker";
    let rules = field(value, "rules", at)?;
    Ok((
        uint(field(value, "id", at)?, "Locker.id")?,
        resource_type(variant(rules, "Locker.rules")?, "Locker.rules")?,
    ))
}

fn locker(value: &Value, problems: &mut Vec<String>) -> Result<LockerDoc, Fault> {
    let at = "Locker";
    let LockerHeader {
        id,
        resource_name,
        resource_type,
        created_ns,
    } = locker_header(value)?;
    let here = format!("locker {id}");
    let holders = entries_of(
        field(value, "holders", at)?,
        &format!("{here} holders"),
        entry,
        problems,
    )?;
    let waitings = entries_of(
        field(value, "waitings", at)?,
        &format!("{here} waitings"),
        entry,
        problems,
    )?;
    Ok(LockerDoc {
        id,
        resource_name,
        resource_type,
        created_ns,
        holders,
        waitings,
    })
}

/// The fields a holder, a waiter and an incubated request share.
fn request_doc(request: &Value) -> Result<RequestDoc, Fault> {
    let at = "Request";
    let peer = field(request, "peer", at)?;
    Ok(RequestDoc {
        conn: uint(field(request, "conn", at)?, "Request.conn")?,
        resource_name: string(
            field(request, "resource_name", at)?,
            "Request.resource_name",
        )?,
        peer_name: string(field(peer, "name", "Peer")?, "Peer.name")?,
        peer_pid: optional(field(peer, "pid", "Peer")?, "Peer.pid", u32_of)?,
        peer_uid: optional(field(peer, "uid", "Peer")?, "Peer.uid", u32_of)?,
        fd: i32::try_from(signed(field(peer, "fd", "Peer")?, "Peer.fd")?)
            .map_err(|_| Fault::Garbage("Peer.fd does not fit in 32 bits".to_owned()))?,
        lock_mode: optional(
            field(request, "lock_mode", at)?,
            "Request.lock_mode",
            |v, at| lock_mode(variant(v, at)?, at),
        )?,
        quantity: optional(field(request, "quantity", at)?, "Request.quantity", uint)?,
        since_ns: uint(field(request, "since_ns", at)?, "Request.since_ns")?,
    })
}

/// A decoded `Request` as a holder or a waiter.
pub(super) fn entry(request: &Value) -> Result<EntryDoc, Fault> {
    Ok(EntryDoc {
        request: request_doc(request)?,
        element: optional(
            field(request, "element", "Request")?,
            "Request.element",
            string,
        )?,
    })
}

/// A decoded `Request` as an incubated client.
pub(super) fn incubated(request: &Value) -> Result<IncubatedDoc, Fault> {
    let doc = request_doc(request)?;
    let kind = field(request, "resource_type", "Request")?;
    Ok(IncubatedDoc {
        request: doc,
        resource_type: resource_type(
            variant(kind, "Request.resource_type")?,
            "Request.resource_type",
        )?,
    })
}

/// The items of a `Vec<Box<Request>>` or `VecDeque<Box<Request>>`, in order, each decoded
/// by `decode`; a damaged item or a cut collection is a problem, not a failure.
fn entries_of<T>(
    collection: &Value,
    at: &str,
    decode: impl Fn(&Value) -> Result<T, Fault>,
    problems: &mut Vec<String>,
) -> Result<Vec<T>, Fault> {
    let Value::Seq { len, items, .. } = collection else {
        return Err(garbage(at, collection, "a sequence"));
    };
    note_cut(at, *len, items.len(), problems);
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match decode(item.innermost()) {
            Ok(doc) => out.push(doc),
            Err(Fault::Garbage(what)) => problems.push(format!("{at}[{i}] left out: {what}")),
            Err(contract) => return Err(contract),
        }
    }
    Ok(out)
}

/// Records a collection that holds fewer items than it claims.
fn note_cut(at: &str, claimed: u64, decoded: usize, problems: &mut Vec<String>) {
    if claimed != decoded as u64 {
        problems.push(format!(
            "{at} claims {claimed} items, {decoded} could be decoded"
        ));
    }
}

/// A field of a struct value. A missing field is a broken contract only when the value is
/// a struct that lacks it; an undecodable value in its place is garbage.
fn field<'v>(value: &'v Value, name: &str, at: &str) -> Result<&'v Value, Fault> {
    match (value, value.field(name)) {
        (_, Some(Value::Error(error))) => Err(Fault::Garbage(format!("{at}.{name}: {error}"))),
        (_, Some(found)) => Ok(found),
        (Value::Struct { type_name, .. }, None) => Err(Fault::Contract(format!(
            "`{type_name}` ({at}) has no field `{name}`"
        ))),
        (other, None) => Err(garbage(at, other, "a struct")),
    }
}

fn garbage(at: &str, found: &Value, wanted: &str) -> Fault {
    match found {
        Value::Error(error) => Fault::Garbage(format!("{at}: {error}")),
        other => Fault::Garbage(format!("{at} is not {wanted}: {}", describe(other))),
    }
}

fn uint(value: &Value, at: &str) -> Result<u64, Fault> {
    value
        .as_u64()
        .ok_or_else(|| garbage(at, value, "an unsigned integer"))
}

fn signed(value: &Value, at: &str) -> Result<i64, Fault> {
    value
        .as_i64()
        .ok_or_else(|| garbage(at, value, "a signed integer"))
}

fn u32_of(value: &Value, at: &str) -> Result<u32, Fault> {
    u32::try_from(uint(value, at)?)
        .map_err(|_| Fault::Garbage(format!("{at} does not fit in 32 bits")))
}

fn string(value: &Value, at: &str) -> Result<String, Fault> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| garbage(at, value, "a string"))
}

fn variant<'v>(value: &'v Value, at: &str) -> Result<&'v str, Fault> {
    value.variant().ok_or_else(|| garbage(at, value, "an enum"))
}

/// An `Option<T>`'s content, decoded by `inner`.
fn optional<T>(
    value: &Value,
    at: &str,
    inner: impl Fn(&Value, &str) -> Result<T, Fault>,
) -> Result<Option<T>, Fault> {
    match value.option() {
        Some(None) => Ok(None),
        Some(Some(content)) => inner(content, at).map(Some),
        None => Err(garbage(at, value, "an Option")),
    }
}

/// A `LockMode` by its variant name (`NL` ... `EX`, the contract's names).
fn lock_mode(name: &str, at: &str) -> Result<LockMode, Fault> {
    LockMode::ALL
        .into_iter()
        .find(|mode| mode.short_name() == name)
        .ok_or_else(|| Fault::Contract(format!("{at} has an unknown lock mode `{name}`")))
}

/// A resource type by the variant name of `Rules` or `ResourceType` (the contract gives
/// both the same six names).
fn resource_type(name: &str, at: &str) -> Result<ResourceType, Fault> {
    Ok(match name {
        "Simple" => ResourceType::Simple,
        "Numeric" => ResourceType::Numeric,
        "Set" => ResourceType::Set,
        "Hierarchical" => ResourceType::Hierarchical,
        "Sequence" => ResourceType::Sequence,
        "Timestamp" => ResourceType::Timestamp,
        other => {
            return Err(Fault::Contract(format!(
                "{at} has an unknown resource type `{other}`"
            )))
        }
    })
}

fn describe_key(key: &Value) -> String {
    key.as_u64()
        .map_or_else(|| describe(key), |id| id.to_string())
}

/// A short description of a value for a message (never the whole tree).
fn describe(value: &Value) -> String {
    let text = format!("{value:?}");
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwarfpeek::value::{MapKind, MutexState, SeqKind};

    fn strukt(name: &str, fields: Vec<(&str, Value)>) -> Value {
        Value::Struct {
            type_name: name.to_owned(),
            fields: fields.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
        }
    }

    fn unit_variant(ty: &str, name: &str) -> Value {
        Value::Enum {
            type_name: ty.to_owned(),
            variant: name.to_owned(),
            fields: vec![],
        }
    }

    fn some(v: Value) -> Value {
        Value::Enum {
            type_name: "core::option::Option<T>".to_owned(),
            variant: "Some".to_owned(),
            fields: vec![("__0".to_owned(), v)],
        }
    }

    fn none() -> Value {
        Value::Enum {
            type_name: "core::option::Option<T>".to_owned(),
            variant: "None".to_owned(),
            fields: vec![],
        }
    }

    fn boxed(v: Value) -> Value {
        Value::Ref {
            address: 0x1000,
            target: Box::new(v),
        }
    }

    fn seq(kind: SeqKind, items: Vec<Value>) -> Value {
        Value::Seq {
            kind,
            len: items.len() as u64,
            items,
        }
    }

    fn request(conn: u64, mode: Option<&str>, element: Option<&str>) -> Value {
        strukt(
            "latch::table::Request",
            vec![
                ("conn", Value::Uint(conn.into())),
                ("resource_name", Value::Str("r".into())),
                (
                    "resource_type",
                    unit_variant("latch_probe_common::ResourceType", "Simple"),
                ),
                (
                    "lock_mode",
                    mode.map_or_else(none, |m| {
                        some(unit_variant("latch_probe_common::LockMode", m))
                    }),
                ),
                ("quantity", none()),
                (
                    "element",
                    element.map_or_else(none, |e| some(Value::Str(e.into()))),
                ),
                ("since_ns", Value::Uint(5)),
                ("wait", Value::Bool(true)),
                (
                    "peer",
                    strukt(
                        "latch::table::Peer",
                        vec![
                            ("fd", Value::Int(7)),
                            ("name", Value::Str("localhost/".into())),
                            ("pid", some(Value::Uint(4242))),
                            ("uid", none()),
                        ],
                    ),
                ),
            ],
        )
    }

    fn table(holders: Vec<Value>, waitings: Vec<Value>, incubator: Vec<Value>) -> Value {
        let locker = strukt(
            "latch::table::Locker",
            vec![
                ("id", Value::Uint(3)),
                ("resource_name", Value::Str("r".into())),
                (
                    "rules",
                    Value::Enum {
                        type_name: "latch::table::Rules".into(),
                        variant: "Numeric".into(),
                        fields: vec![("total".into(), Value::Uint(3))],
                    },
                ),
                ("created_ns", Value::Uint(1)),
                ("holders", seq(SeqKind::Vec, holders)),
                ("waitings", seq(SeqKind::VecDeque, waitings)),
            ],
        );
        Value::Mutex {
            state: MutexState::Unlocked,
            poisoned: false,
            value: Box::new(strukt(
                "latch::table::LockTable",
                vec![
                    ("generation", Value::Uint(8)),
                    (
                        "lockers",
                        Value::Map {
                            kind: MapKind::BTreeMap,
                            len: 1,
                            entries: vec![(Value::Uint(3), boxed(locker))],
                        },
                    ),
                    ("incubator", seq(SeqKind::Vec, incubator)),
                ],
            )),
        }
    }

    const HEADER: Header<'static> = Header {
        source: Source::Live,
        pid: 9,
        version: "0.1.0",
    };

    #[test]
    fn decodes_lockers_entries_and_the_incubator() {
        let value = table(
            vec![
                boxed(request(6, Some("PR"), Some("e"))),
                boxed(request(4, Some("NL"), None)),
            ],
            vec![boxed(request(9, None, None)), boxed(request(5, None, None))],
            vec![boxed(request(11, Some("EX"), None))],
        );
        let Decoded { doc, problems } = decode_state(&value, HEADER).expect("decodes");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!((doc.generation, doc.torn, doc.pid), (8, false, 9));
        let locker = &doc.lockers[0];
        assert_eq!(locker.resource_type, ResourceType::Numeric);
        let conns = |list: &[EntryDoc]| list.iter().map(|e| e.request.conn).collect::<Vec<_>>();
        assert_eq!(conns(&locker.holders), [4, 6], "holders by conn");
        assert_eq!(conns(&locker.waitings), [9, 5], "waitings in queue order");
        assert_eq!(locker.holders[1].request.lock_mode, Some(LockMode::PR));
        assert_eq!(locker.holders[1].element.as_deref(), Some("e"));
        assert_eq!(
            (
                locker.holders[0].request.peer_pid,
                locker.holders[0].request.peer_uid
            ),
            (Some(4242), None)
        );
        assert_eq!(doc.incubator[0].request.lock_mode, Some(LockMode::EX));
        assert_eq!(doc.incubator[0].resource_type, ResourceType::Simple);
    }

    /// `value` with only the fields `READ_FIELDS` selects, as a read with it decodes.
    fn selected(value: &Value) -> Value {
        let wanted = |type_name: &str, field: &str| {
            READ_FIELDS
                .iter()
                .find(|(ty, _)| *ty == type_name)
                .is_none_or(|(_, fields)| fields.contains(&field))
        };
        match value {
            Value::Struct { type_name, fields } => Value::Struct {
                type_name: type_name.clone(),
                fields: fields
                    .iter()
                    .filter(|(name, _)| wanted(type_name, name))
                    .map(|(name, v)| (name.clone(), selected(v)))
                    .collect(),
            },
            Value::Enum {
                type_name,
                variant,
                fields,
            } => Value::Enum {
                type_name: type_name.clone(),
                variant: variant.clone(),
                fields: fields
                    .iter()
                    .map(|(n, v)| (n.clone(), selected(v)))
                    .collect(),
            },
            Value::Ref { address, target } => Value::Ref {
                address: *address,
                target: Box::new(selected(target)),
            },
            Value::Mutex {
                state,
                poisoned,
                value,
            } => Value::Mutex {
                state: *state,
                poisoned: *poisoned,
                value: Box::new(selected(value)),
            },
            Value::Seq { kind, len, items } => Value::Seq {
                kind: *kind,
                len: *len,
                items: items.iter().map(selected).collect(),
            },
            Value::Map { kind, len, entries } => Value::Map {
                kind: *kind,
                len: *len,
                entries: entries
                    .iter()
                    .map(|(k, v)| (selected(k), selected(v)))
                    .collect(),
            },
            other => other.clone(),
        }
    }

    #[test]
    fn the_selected_fields_are_all_the_decode_reads() {
        let value = table(
            vec![boxed(request(6, Some("PR"), Some("e")))],
            vec![boxed(request(9, None, None))],
            vec![boxed(request(11, Some("EX"), None))],
        );
        let whole = decode_state(&value, HEADER).expect("decodes");
        let pruned = decode_state(&selected(&value), HEADER).expect("decodes");
        assert_eq!(pruned.doc, whole.doc);
        assert!(pruned.problems.is_empty(), "{:?}", pruned.problems);
    }

    #[test]
    fn a_damaged_entry_is_left_out_and_named() {
        let damaged = boxed(Value::Error(dwarfpeek::value::ValueError::TooDeep {
            max: 1,
        }));
        let value = table(vec![damaged, boxed(request(4, None, None))], vec![], vec![]);
        let Decoded { doc, problems } = decode_state(&value, HEADER).expect("decodes");
        assert_eq!(doc.lockers[0].holders.len(), 1);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("locker 3 holders[0]"), "{problems:?}");
    }

    #[test]
    fn a_missing_contract_name_fails_the_decode() {
        let mut broken = request(4, None, None);
        if let Value::Struct { fields, .. } = &mut broken {
            fields.retain(|(n, _)| n != "since_ns");
        }
        let value = table(vec![boxed(broken)], vec![], vec![]);
        let err = decode_state(&value, HEADER).unwrap_err();
        assert!(
            matches!(&err, Fault::Contract(what) if what.contains("since_ns")),
            "{err:?}"
        );
        let err = decode_state(&Value::Uint(3), HEADER).unwrap_err();
        assert!(matches!(err, Fault::Garbage(_)), "{err:?}");
    }
}
