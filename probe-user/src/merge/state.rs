//! One live state: a snapshot of the table, kept current by the events that follow it, and
//! for each event the merge patch (over the keyed form, [`super::patch`]) that makes the
//! same change.
//!
//! The snapshot and the events meet at the table's generation: an event carries the odd
//! generation of the change it belongs to, and a snapshot of generation G holds exactly the
//! changes below G. So the uprobes are attached first, the snapshot taken next, and events
//! below the snapshot's generation skipped.
//!
//! It trusts nothing: an event that does not fit the state (a release of a conn that holds
//! nothing) is an error naming both, and the state is left as it was.

use super::patch::{json, keyed_locker};
use latch_probe_common::doc::{EntryDoc, EventDoc, IncubatedDoc, LockerDoc, StateDoc};
use latch_probe_common::{EntryState, EventKind};
use serde_json::{json, Map, Value};
use thiserror::Error;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("event {kind:?} of conn {conn:?} on locker {locker:?} does not fit the state: {what}; the live state is no longer exact (take a new snapshot)")]
pub struct Misfit {
    pub kind: EventKind,
    pub locker: Option<u64>,
    pub conn: Option<u64>,
    pub what: String,
}

/// What applying an event did.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    /// The snapshot already holds it.
    Skipped,
    /// The state changed; this merge patch makes the same change to the keyed form.
    Changed(Value),
}

/// A state kept current by events.
#[derive(Clone, Debug)]
pub struct LiveState {
    doc: StateDoc,
    /// The generation of the snapshot the state started from.
    base_generation: u64,
}

impl LiveState {
    pub fn new(snapshot: StateDoc) -> LiveState {
        LiveState {
            base_generation: snapshot.generation,
            doc: snapshot,
        }
    }

    /// The current state, in canonical order.
    pub fn doc(&self) -> &StateDoc {
        &self.doc
    }

    /// Applies `event`; a traced event without a generation is applied (it cannot be placed
    /// against the snapshot, so it is taken as newer).
    pub fn apply(&mut self, event: &EventDoc) -> Result<Applied, Misfit> {
        if event.generation.is_some_and(|g| g < self.base_generation) {
            return Ok(Applied::Skipped);
        }
        let misfit = |what: String| Misfit {
            kind: event.kind,
            locker: event.locker,
            conn: event.conn,
            what,
        };
        // Every check comes before the first change, so a misfit leaves the state as it was;
        // every list stays in canonical order (lockers by id, holders and the incubator by
        // conn) by inserting in place, so no event costs a sort of the whole table.
        let doc = &mut self.doc;
        let mut patch = Map::new();
        let locker_at = |doc: &StateDoc, id: u64| doc.lockers.binary_search_by_key(&id, |l| l.id);
        let incubated_at =
            |doc: &StateDoc, conn: u64| doc.incubator.binary_search_by_key(&conn, |i| i.conn);
        match (event.kind, event.locker) {
            (EventKind::LockerCreate, Some(id)) => {
                let Err(at) = locker_at(doc, id) else {
                    return Err(misfit("the locker exists already".to_owned()));
                };
                let locker = LockerDoc {
                    id,
                    resource_name: event.resource_name.clone(),
                    resource_type: event.resource_type,
                    created_ns: event.since_ns.unwrap_or(event.ts_ns),
                    holders: Vec::new(),
                    waitings: Vec::new(),
                };
                patch.insert(
                    "lockers".into(),
                    json!({ id.to_string(): keyed_locker(&locker) }),
                );
                doc.lockers.insert(at, locker);
            }
            (EventKind::LockerDestroy, Some(id)) => {
                let at = locker_at(doc, id).map_err(|_| misfit("no such locker".to_owned()))?;
                doc.lockers.remove(at);
                patch.insert("lockers".into(), json!({ id.to_string(): null }));
            }
            (kind, None) => {
                let conn = event
                    .conn
                    .ok_or_else(|| misfit("an incubator event without a conn".to_owned()))?;
                match (kind, incubated_at(doc, conn)) {
                    (EventKind::Incubate, Err(at)) => {
                        let incubated = incubated(event, conn);
                        patch.insert(
                            "incubator".into(),
                            json!({ conn.to_string(): json(&incubated) }),
                        );
                        doc.incubator.insert(at, incubated);
                    }
                    (EventKind::Cancel, Ok(at)) => {
                        doc.incubator.remove(at);
                        patch.insert("incubator".into(), json!({ conn.to_string(): null }));
                    }
                    _ => return Err(misfit("it does not fit the incubator".to_owned())),
                }
            }
            (kind, Some(id)) => {
                let conn = event
                    .conn
                    .ok_or_else(|| misfit("an entry event without a conn".to_owned()))?;
                let locker_index =
                    locker_at(doc, id).map_err(|_| misfit("no such locker".to_owned()))?;
                let promoted = if kind == EventKind::Promote {
                    Some(
                        incubated_at(doc, conn)
                            .map_err(|_| misfit("the conn is not in the incubator".to_owned()))?,
                    )
                } else {
                    None
                };
                let locker = &doc.lockers[locker_index];
                let waiting_at = locker.waitings.iter().position(|w| w.conn == conn);
                let holding_at = locker.holders.binary_search_by_key(&conn, |h| h.conn);
                // Where the entry leaves from.
                enum Leaves {
                    Nowhere,
                    Waitings(usize),
                    Holders(usize),
                }
                let leaves = match (event.from, event.to, waiting_at, holding_at) {
                    (EntryState::Waiting, EntryState::None | EntryState::Holding, Some(at), _) => {
                        Leaves::Waitings(at)
                    }
                    (EntryState::Holding, EntryState::None, _, Ok(at)) => Leaves::Holders(at),
                    (EntryState::None | EntryState::Incubating, _, None, Err(_)) => Leaves::Nowhere,
                    (from, to, waiting, holding) => {
                        return Err(misfit(format!(
                            "from {from:?} to {to:?}, but the conn is {}",
                            match (waiting, holding) {
                                (Some(_), _) => "waiting",
                                (_, Ok(_)) => "holding",
                                _ => "neither waiting nor holding",
                            }
                        )))
                    }
                };
                if let Some(at) = promoted {
                    doc.incubator.remove(at);
                    patch.insert("incubator".into(), json!({ conn.to_string(): null }));
                }
                let locker = &mut doc.lockers[locker_index];
                let mut changes = Map::new();
                match leaves {
                    Leaves::Waitings(at) => {
                        locker.waitings.remove(at);
                    }
                    Leaves::Holders(at) => {
                        locker.holders.remove(at);
                        changes.insert("holders".into(), json!({ conn.to_string(): null }));
                    }
                    Leaves::Nowhere => {}
                }
                match event.to {
                    EntryState::Waiting => locker.waitings.push(entry(event, conn)),
                    EntryState::Holding => {
                        let holder = entry(event, conn);
                        changes
                            .insert("holders".into(), json!({ conn.to_string(): json(&holder) }));
                        let at = locker.holders.partition_point(|h| h.conn < conn);
                        locker.holders.insert(at, holder);
                    }
                    _ => {}
                }
                if event.from == EntryState::Waiting || event.to == EntryState::Waiting {
                    changes.insert("waitings".into(), json(&locker.waitings));
                }
                patch.insert("lockers".into(), json!({ id.to_string(): changes }));
            }
        }
        // The change is complete once its handling ends: the next even generation.
        if let Some(g) = event.generation {
            doc.generation = doc.generation.max(g + 1);
            patch.insert("generation".into(), Value::from(doc.generation));
        }
        Ok(Applied::Changed(Value::Object(patch)))
    }
}

fn entry(event: &EventDoc, conn: u64) -> EntryDoc {
    EntryDoc {
        conn,
        resource_name: event.resource_name.clone(),
        peer_name: event.peer_name.clone().unwrap_or_default(),
        peer_pid: event.peer_pid,
        peer_uid: event.peer_uid,
        fd: event.fd.unwrap_or(-1),
        lock_mode: event.lock_mode,
        quantity: event.quantity,
        element: event.element.clone(),
        since_ns: event.since_ns.unwrap_or(event.ts_ns),
    }
}

fn incubated(event: &EventDoc, conn: u64) -> IncubatedDoc {
    IncubatedDoc {
        conn,
        resource_name: event.resource_name.clone(),
        resource_type: event.resource_type,
        peer_name: event.peer_name.clone().unwrap_or_default(),
        peer_pid: event.peer_pid,
        peer_uid: event.peer_uid,
        fd: event.fd.unwrap_or(-1),
        lock_mode: event.lock_mode,
        quantity: event.quantity,
        since_ns: event.since_ns.unwrap_or(event.ts_ns),
    }
}
