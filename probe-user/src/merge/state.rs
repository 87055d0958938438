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
        let incubated_at = |doc: &StateDoc, conn: u64| {
            doc.incubator
                .binary_search_by_key(&conn, |i| i.request.conn)
        };
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
                let request = event
                    .request()
                    .ok_or_else(|| misfit("an incubator event without a conn".to_owned()))?;
                let conn = request.conn;
                match (kind, incubated_at(doc, conn)) {
                    (EventKind::Incubate, Err(at)) => {
                        let incubated = IncubatedDoc {
                            request,
                            resource_type: event.resource_type,
                        };
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
                let request = event
                    .request()
                    .ok_or_else(|| misfit("an entry event without a conn".to_owned()))?;
                let conn = request.conn;
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
                let waiting_at = locker.waitings.iter().position(|w| w.request.conn == conn);
                let holding_at = locker
                    .holders
                    .binary_search_by_key(&conn, |h| h.request.conn);
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
                // Built only where the entry arrives (a release or a cancel arrives nowhere).
                let entry = || EntryDoc {
                    request,
                    element: event.element.clone(),
                };
                match event.to {
                    EntryState::Waiting => locker.waitings.push(entry()),
                    EntryState::Holding => {
                        let holder = entry();
                        changes
                            .insert("holders".into(), json!({ conn.to_string(): json(&holder) }));
                        let at = locker.holders.partition_point(|h| h.request.conn < conn);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::patch::{apply, keyed, unkeyed};
    use latch_probe_common::doc::{Source, STATE_SCHEMA};
    use latch_probe_common::{LockMode, ResourceType};

    fn empty(generation: u64) -> StateDoc {
        StateDoc {
            schema: STATE_SCHEMA.to_owned(),
            source: Source::Live,
            pid: 1,
            version: "0.1.0".to_owned(),
            generation,
            torn: false,
            lockers: Vec::new(),
            incubator: Vec::new(),
        }
    }

    /// An event of generation `generation` (odd: the change it belongs to).
    fn event(
        kind: EventKind,
        generation: u64,
        locker: Option<u64>,
        conn: Option<u64>,
        (from, to): (EntryState, EntryState),
    ) -> EventDoc {
        EventDoc {
            locker,
            conn,
            generation: Some(generation),
            resource_name: "r".to_owned(),
            resource_type: ResourceType::Simple,
            lock_mode: Some(LockMode::EX),
            peer_name: Some("localhost/".to_owned()),
            peer_pid: conn.map(|c| 1000 + c as u32),
            fd: conn.map(|c| c as i32 + 10),
            since_ns: Some(5_000 + generation),
            ..EventDoc::new(1_000 + generation, kind, from, to)
        }
    }

    use EntryState::{Holding, Incubating, None as Nothing, Waiting};

    /// Applies `event`, and checks that its patch makes the same change to the keyed form
    /// (a merge patch drops null fields, so the patched form is compared unkeyed).
    fn applied(live: &mut LiveState, event: &EventDoc) -> Value {
        let mut before = keyed(live.doc());
        let Ok(Applied::Changed(patch)) = live.apply(event) else {
            panic!("{event:?} did not change the state");
        };
        apply(&mut before, &patch);
        let patched = unkeyed(&before).expect("the patched keyed form");
        assert_eq!(&patched, live.doc(), "the patch of {event:?}");
        patch
    }

    /// The conns of locker `id`'s holders and waitings.
    fn entries(live: &LiveState, id: u64) -> (Vec<u64>, Vec<u64>) {
        let locker = live
            .doc()
            .lockers
            .iter()
            .find(|l| l.id == id)
            .expect("the locker");
        (
            locker.holders.iter().map(|h| h.request.conn).collect(),
            locker.waitings.iter().map(|w| w.request.conn).collect(),
        )
    }

    #[test]
    fn a_locker_lives_from_create_to_destroy_in_id_order() {
        let mut live = LiveState::new(empty(2));
        for (generation, id) in [(3, 9), (5, 4)] {
            let create = event(
                EventKind::LockerCreate,
                generation,
                Some(id),
                None,
                (Nothing, Nothing),
            );
            let patch = applied(&mut live, &create);
            assert_eq!(patch["lockers"][id.to_string()]["id"], id);
        }
        let ids: Vec<u64> = live.doc().lockers.iter().map(|l| l.id).collect();
        assert_eq!(ids, [4, 9]);
        assert_eq!(live.doc().lockers[0].created_ns, 5_005);
        // The change is complete when its handling ends: the next even generation.
        assert_eq!(live.doc().generation, 6);

        let destroy = event(
            EventKind::LockerDestroy,
            7,
            Some(9),
            None,
            (Nothing, Nothing),
        );
        let patch = applied(&mut live, &destroy);
        assert_eq!(patch["lockers"]["9"], Value::Null);
        assert_eq!(live.doc().lockers.len(), 1);
    }

    #[test]
    fn an_entry_goes_through_the_incubator_the_queue_and_the_holders() {
        let mut live = LiveState::new(empty(0));
        applied(
            &mut live,
            &event(
                EventKind::LockerCreate,
                1,
                Some(1),
                None,
                (Nothing, Nothing),
            ),
        );
        // Conn 8 holds; conn 5 incubates, is promoted to wait, then is granted.
        applied(
            &mut live,
            &event(EventKind::Enqueue, 3, Some(1), Some(8), (Nothing, Waiting)),
        );
        applied(
            &mut live,
            &event(EventKind::Grant, 5, Some(1), Some(8), (Waiting, Holding)),
        );
        let patch = applied(
            &mut live,
            &event(EventKind::Incubate, 7, None, Some(5), (Nothing, Incubating)),
        );
        assert_eq!(patch["incubator"]["5"]["conn"], 5);
        assert_eq!(live.doc().incubator.len(), 1);

        let patch = applied(
            &mut live,
            &event(
                EventKind::Promote,
                9,
                Some(1),
                Some(5),
                (Incubating, Waiting),
            ),
        );
        assert_eq!(patch["incubator"]["5"], Value::Null);
        assert!(live.doc().incubator.is_empty());
        assert_eq!(entries(&live, 1), (vec![8], vec![5]));

        let patch = applied(
            &mut live,
            &event(EventKind::Grant, 11, Some(1), Some(5), (Waiting, Holding)),
        );
        assert_eq!(patch["lockers"]["1"]["holders"]["5"]["fd"], 15);
        assert_eq!(patch["lockers"]["1"]["waitings"], json!([]));
        // Holders in conn order, whatever the order of the grants.
        assert_eq!(entries(&live, 1), (vec![5, 8], vec![]));
        let holder = &live.doc().lockers[0].holders[0];
        assert_eq!(
            (holder.request.peer_pid, holder.request.since_ns),
            (Some(1005), 5_011)
        );

        let patch = applied(
            &mut live,
            &event(EventKind::Release, 13, Some(1), Some(8), (Holding, Nothing)),
        );
        assert_eq!(patch["lockers"]["1"]["holders"]["8"], Value::Null);
        assert_eq!(entries(&live, 1), (vec![5], vec![]));
        assert_eq!(live.doc().generation, 14);
    }

    #[test]
    fn waiters_keep_their_queue_order_and_a_cancel_leaves_it() {
        let mut live = LiveState::new(empty(0));
        applied(
            &mut live,
            &event(
                EventKind::LockerCreate,
                1,
                Some(1),
                None,
                (Nothing, Nothing),
            ),
        );
        for (generation, conn) in [(3, 9), (5, 2), (7, 6)] {
            applied(
                &mut live,
                &event(
                    EventKind::Enqueue,
                    generation,
                    Some(1),
                    Some(conn),
                    (Nothing, Waiting),
                ),
            );
        }
        assert_eq!(entries(&live, 1), (vec![], vec![9, 2, 6]));
        let patch = applied(
            &mut live,
            &event(EventKind::Cancel, 9, Some(1), Some(2), (Waiting, Nothing)),
        );
        assert_eq!(
            patch["lockers"]["1"]["waitings"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(entries(&live, 1), (vec![], vec![9, 6]));

        // A client that leaves the incubator: no locker.
        applied(
            &mut live,
            &event(
                EventKind::Incubate,
                11,
                None,
                Some(4),
                (Nothing, Incubating),
            ),
        );
        applied(
            &mut live,
            &event(EventKind::Cancel, 13, None, Some(4), (Incubating, Nothing)),
        );
        assert!(live.doc().incubator.is_empty());
    }

    #[test]
    fn events_the_snapshot_holds_are_skipped() {
        let mut live = LiveState::new(empty(10));
        let old = event(
            EventKind::LockerCreate,
            9,
            Some(1),
            None,
            (Nothing, Nothing),
        );
        assert_eq!(live.apply(&old), Ok(Applied::Skipped));
        assert!(live.doc().lockers.is_empty());
        assert_eq!(live.doc().generation, 10);
        // Without a generation an event cannot be placed, so it is taken as newer.
        let unplaced = EventDoc {
            generation: None,
            ..event(
                EventKind::LockerCreate,
                0,
                Some(1),
                None,
                (Nothing, Nothing),
            )
        };
        assert!(matches!(live.apply(&unplaced), Ok(Applied::Changed(_))));
        assert_eq!(live.doc().lockers.len(), 1);
        assert_eq!(live.doc().generation, 10);
    }

    #[test]
    fn an_event_that_does_not_fit_is_a_misfit_and_changes_nothing() {
        let mut live = LiveState::new(empty(0));
        applied(
            &mut live,
            &event(
                EventKind::LockerCreate,
                1,
                Some(1),
                None,
                (Nothing, Nothing),
            ),
        );
        applied(
            &mut live,
            &event(EventKind::Enqueue, 3, Some(1), Some(8), (Nothing, Waiting)),
        );
        let misfits = [
            event(
                EventKind::LockerCreate,
                5,
                Some(1),
                None,
                (Nothing, Nothing),
            ),
            event(
                EventKind::LockerDestroy,
                5,
                Some(2),
                None,
                (Nothing, Nothing),
            ),
            // A release of a conn that holds nothing (it waits).
            event(EventKind::Release, 5, Some(1), Some(8), (Holding, Nothing)),
            event(EventKind::Grant, 5, Some(1), Some(7), (Waiting, Holding)),
            event(EventKind::Enqueue, 5, Some(3), Some(7), (Nothing, Waiting)),
            event(
                EventKind::Promote,
                5,
                Some(1),
                Some(7),
                (Incubating, Waiting),
            ),
            event(EventKind::Cancel, 5, None, Some(7), (Incubating, Nothing)),
            event(EventKind::Enqueue, 5, Some(1), None, (Nothing, Waiting)),
        ];
        let before = live.doc().clone();
        for misfit in &misfits {
            let error = live.apply(misfit).expect_err("a misfit");
            assert_eq!(
                (error.kind, error.locker, error.conn),
                (misfit.kind, misfit.locker, misfit.conn)
            );
            assert_eq!(live.doc(), &before, "{misfit:?} changed the state");
        }
        let error = live.apply(&misfits[2]).unwrap_err();
        assert!(error.to_string().contains("the conn is waiting"), "{error}");
    }
}
