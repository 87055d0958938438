//! The keyed form of a state (`latch.live/1`) and JSON Merge Patch (RFC 7396) over it.
//!
//! In `latch.state/1` lockers, holders and the incubator are arrays, and a merge patch can
//! only replace an array whole: one grant would rewrite every locker. The keyed form holds
//! the same document with those three as objects keyed by id or conn (decimal strings), so
//! a patch names just what changed; `waitings` stays an array because its order is the
//! queue's. [`keyed`] and [`unkeyed`] convert, [`apply`] is RFC 7396's algorithm.
//!
//! Pure functions over documents: nothing here reads a process.

use latch_probe_common::doc::{LockerDoc, StateDoc};
use serde::de::Error as _;
use serde_json::{Map, Value};

/// The schema of the keyed form.
pub const LIVE_SCHEMA: &str = "latch.live/1";

/// `doc` in the keyed form.
pub fn keyed(doc: &StateDoc) -> Value {
    let mut value = json(doc);
    if let Value::Object(top) = &mut value {
        top.insert("schema".to_owned(), Value::from(LIVE_SCHEMA));
        top.insert(
            "lockers".to_owned(),
            Value::Object(
                doc.lockers
                    .iter()
                    .map(|l| (l.id.to_string(), keyed_locker(l)))
                    .collect(),
            ),
        );
        top.insert(
            "incubator".to_owned(),
            Value::Object(
                doc.incubator
                    .iter()
                    .map(|i| (i.request.conn.to_string(), json(i)))
                    .collect(),
            ),
        );
    }
    value
}

/// One locker in the keyed form: its holders keyed by conn.
pub fn keyed_locker(locker: &LockerDoc) -> Value {
    let mut value = json(locker);
    if let Value::Object(fields) = &mut value {
        fields.insert(
            "holders".to_owned(),
            Value::Object(
                locker
                    .holders
                    .iter()
                    .map(|h| (h.request.conn.to_string(), json(h)))
                    .collect(),
            ),
        );
    }
    value
}

/// The `latch.state/1` document a keyed form holds, in canonical order.
pub fn unkeyed(value: &Value) -> Result<StateDoc, serde_json::Error> {
    let mut top = value
        .as_object()
        .cloned()
        .ok_or_else(|| serde_json::Error::custom("a latch.live/1 document is an object"))?;
    let lockers: Vec<Value> = values(top.remove("lockers"))?
        .into_iter()
        .map(|locker| {
            let mut fields = match locker {
                Value::Object(fields) => fields,
                _ => return Err(serde_json::Error::custom("a locker is an object")),
            };
            let holders = values(fields.remove("holders"))?;
            fields.insert("holders".to_owned(), Value::Array(holders));
            Ok(Value::Object(fields))
        })
        .collect::<Result<_, _>>()?;
    let incubator = values(top.remove("incubator"))?;
    top.insert("lockers".to_owned(), Value::Array(lockers));
    top.insert("incubator".to_owned(), Value::Array(incubator));
    top.insert(
        "schema".to_owned(),
        Value::from(latch_probe_common::doc::STATE_SCHEMA),
    );
    let mut doc: StateDoc = serde_json::from_value(Value::Object(top))?;
    doc.canonicalize();
    Ok(doc)
}

/// RFC 7396: `patch` merged into `target`. A `null` member deletes, an object merges, any
/// other value replaces.
pub fn apply(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(fields) = target {
        for (name, change) in changes {
            if change.is_null() {
                fields.remove(name);
            } else {
                apply(fields.entry(name.clone()).or_insert(Value::Null), change);
            }
        }
    }
}

/// The members of a keyed object, as an array.
fn values(object: Option<Value>) -> Result<Vec<Value>, serde_json::Error> {
    match object {
        Some(Value::Object(members)) => Ok(members.into_iter().map(|(_, v)| v).collect()),
        Some(Value::Null) | None => Ok(Vec::new()),
        Some(_) => Err(serde_json::Error::custom(
            "lockers, holders and the incubator are objects in latch.live/1",
        )),
    }
}

/// A document as JSON; the documents are plain data, so this cannot fail.
pub fn json<T: serde::Serialize>(doc: &T) -> Value {
    serde_json::to_value(doc).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use latch_probe_common::doc::{EntryDoc, RequestDoc};
    use serde_json::json;

    #[test]
    fn rfc_7396_examples() {
        // From the RFC's appendix A.
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (mut target, patch, result) in cases {
            apply(&mut target, &patch);
            assert_eq!(target, result, "patch {patch}");
        }
    }

    #[test]
    fn keyed_form_round_trips() {
        let entry = |conn| EntryDoc {
            request: RequestDoc {
                conn,
                resource_name: "r".into(),
                peer_name: "localhost/".into(),
                peer_pid: Some(1),
                peer_uid: Some(0),
                fd: 7,
                lock_mode: None,
                quantity: Some(1),
                since_ns: 5,
            },
            element: None,
        };
        let doc = StateDoc {
            schema: latch_probe_common::doc::STATE_SCHEMA.into(),
            source: latch_probe_common::doc::Source::Live,
            pid: 9,
            version: "1".into(),
            generation: 4,
            torn: false,
            lockers: vec![LockerDoc {
                id: 3,
                resource_name: "r".into(),
                resource_type: latch_probe_common::ResourceType::Numeric,
                created_ns: 1,
                holders: vec![entry(2), entry(10)],
                waitings: vec![entry(12), entry(11)],
            }],
            incubator: vec![],
        };
        let value = keyed(&doc);
        assert_eq!(value["schema"], LIVE_SCHEMA);
        assert_eq!(value["lockers"]["3"]["holders"]["10"]["conn"], 10);
        assert_eq!(unkeyed(&value).expect("unkeyed"), doc);
    }
}
