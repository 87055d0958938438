//! The alerts of `latch-probe watch`: a waiter past `--max-wait`, a holder past
//! `--max-hold`, a holder whose client process is gone. Each is said once per entry and
//! state (a waiter that is granted and then holds too long gets a second, different alert).
//!
//! It looks at documents and asks the caller whether a pid lives; it reads no process.

use latch_probe_common::doc::{AlertDoc, AlertKind, RequestDoc, StateDoc, ALERT_SCHEMA};
use std::collections::HashSet;
use std::time::Duration;

/// The bounds to watch; `None` watches nothing of that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bounds {
    pub max_wait: Option<Duration>,
    pub max_hold: Option<Duration>,
}

/// The alerts said so far, so that none is said twice.
#[derive(Debug, Default)]
pub struct Alerts {
    bounds: Bounds,
    said: HashSet<(AlertKind, u64, u64)>,
}

/// One entry, wherever it is in the document.
struct Seen<'a> {
    kind_if_late: AlertKind,
    locker: Option<u64>,
    request: &'a RequestDoc,
}

impl Alerts {
    pub fn new(bounds: Bounds) -> Alerts {
        Alerts {
            bounds,
            said: HashSet::new(),
        }
    }

    /// The alerts `doc` deserves at `now_ns` that were not said before; `alive` tells
    /// whether a peer pid still runs.
    pub fn check(
        &mut self,
        doc: &StateDoc,
        now_ns: u64,
        alive: impl Fn(u32) -> bool,
    ) -> Vec<AlertDoc> {
        let mut entries = Vec::new();
        for locker in &doc.lockers {
            for (list, kind) in [
                (&locker.holders, AlertKind::MaxHold),
                (&locker.waitings, AlertKind::MaxWait),
            ] {
                entries.extend(list.iter().map(|e| Seen {
                    kind_if_late: kind,
                    locker: Some(locker.id),
                    request: &e.request,
                }));
            }
        }
        entries.extend(doc.incubator.iter().map(|i| Seen {
            kind_if_late: AlertKind::MaxWait,
            locker: None,
            request: &i.request,
        }));

        let mut alerts = Vec::new();
        let mut present = HashSet::with_capacity(entries.len());
        for e in &entries {
            let r = e.request;
            let held_or_waited = now_ns.saturating_sub(r.since_ns);
            let bound = match e.kind_if_late {
                AlertKind::MaxHold => self.bounds.max_hold,
                _ => self.bounds.max_wait,
            };
            let late = bound.is_some_and(|b| u128::from(held_or_waited) > b.as_nanos());
            let vanished =
                e.kind_if_late == AlertKind::MaxHold && r.peer_pid.is_some_and(|pid| !alive(pid));
            for (kind, due) in [
                (e.kind_if_late, late),
                (AlertKind::ClientVanished, vanished),
            ] {
                let key = (kind, r.conn, r.since_ns);
                present.insert(key);
                if due && self.said.insert(key) {
                    alerts.push(AlertDoc {
                        schema: ALERT_SCHEMA.to_owned(),
                        ts_ns: now_ns,
                        alert: kind,
                        locker: e.locker,
                        resource_name: r.resource_name.clone(),
                        conn: r.conn,
                        peer_name: r.peer_name.clone(),
                        peer_pid: r.peer_pid,
                        since_ns: r.since_ns,
                        for_ns: held_or_waited,
                        cycle: Vec::new(),
                        action: None,
                    });
                }
            }
        }
        // Entries that are gone can never be said again: forget them, so memory stays
        // bounded by the table's size.
        self.said.retain(|key| present.contains(key));
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latch_probe_common::doc::{EntryDoc, LockerDoc, Source, STATE_SCHEMA};
    use latch_probe_common::ResourceType;

    fn doc(holder_since: u64, waiter_since: u64) -> StateDoc {
        let entry = |conn, since_ns| EntryDoc {
            request: RequestDoc {
                conn,
                resource_name: "r".into(),
                peer_name: "localhost/".into(),
                peer_pid: Some(conn as u32),
                peer_uid: Some(0),
                fd: 7,
                lock_mode: None,
                quantity: None,
                since_ns,
            },
            element: None,
        };
        StateDoc {
            schema: STATE_SCHEMA.into(),
            source: Source::Live,
            pid: 1,
            version: "1".into(),
            generation: 2,
            torn: false,
            lockers: vec![LockerDoc {
                id: 3,
                resource_name: "r".into(),
                resource_type: ResourceType::Simple,
                created_ns: 0,
                holders: vec![entry(2, holder_since)],
                waitings: vec![entry(4, waiter_since)],
            }],
            incubator: vec![],
        }
    }

    #[test]
    fn each_alert_is_said_once() {
        let ms = |n: u64| n * 1_000_000;
        let mut alerts = Alerts::new(Bounds {
            max_wait: Some(Duration::from_millis(100)),
            max_hold: Some(Duration::from_millis(200)),
        });
        let state = doc(0, ms(50));
        assert!(alerts.check(&state, ms(140), |_| true).is_empty());
        let first = alerts.check(&state, ms(160), |_| true);
        assert_eq!(
            first.iter().map(|a| (a.alert, a.conn)).collect::<Vec<_>>(),
            [(AlertKind::MaxWait, 4)]
        );
        let second = alerts.check(&state, ms(300), |pid| pid != 2);
        assert_eq!(
            second.iter().map(|a| (a.alert, a.conn)).collect::<Vec<_>>(),
            [(AlertKind::MaxHold, 2), (AlertKind::ClientVanished, 2)]
        );
        assert!(alerts.check(&state, ms(900), |_| false).is_empty());
        // A new state of the same conn (granted at 300 ms) may be said again.
        let regranted = doc(ms(300), ms(50));
        let third = alerts.check(&regranted, ms(600), |_| true);
        assert_eq!(
            third.iter().map(|a| (a.alert, a.conn)).collect::<Vec<_>>(),
            [(AlertKind::MaxHold, 2)]
        );
    }
}
