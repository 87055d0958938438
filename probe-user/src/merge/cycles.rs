//! The `deadlock` alert of `latch-probe watch`: each deadlock of the state (found as
//! `analyze` finds it, [`crate::analysis::deadlock`]) said once, when it first shows, with
//! its cycle party by party and the command that breaks it. A cycle is known by its parties
//! and resources; once it no longer shows (broken), forming it again is a new alert.
//!
//! Takes the state and the process table the caller keeps; reads no process.

use crate::analysis::deadlock::{self, Step};
use crate::analysis::parties::Parties;
use crate::analysis::report::deadlock_doc;
use crate::analysis::ProcessTable;
use latch_probe_common::doc::{AlertDoc, AlertKind, StateDoc, ALERT_SCHEMA};
use std::collections::{BTreeSet, HashSet};

/// A cycle's identity: its parties' names and the resources its steps wait for and hold,
/// each sorted.
type CycleKey = (Vec<String>, Vec<String>);

/// The cycles standing at the last check, said once each.
#[derive(Debug, Default)]
pub struct CycleAlerts {
    standing: HashSet<CycleKey>,
}

impl CycleAlerts {
    /// Whether a cycle stood at the last check: then a release or cancel may break it, and
    /// is worth a check.
    pub fn any_standing(&self) -> bool {
        !self.standing.is_empty()
    }

    /// An alert for each deadlock of `doc` that did not stand at the last check.
    pub fn check(
        &mut self,
        doc: &StateDoc,
        processes: &ProcessTable,
        now_ns: u64,
    ) -> Vec<AlertDoc> {
        let parties = Parties::resolve(doc, processes);
        let found = deadlock::find(doc, &parties);
        let mut alerts = Vec::new();
        let mut standing = HashSet::with_capacity(found.cycles.len());
        for cycle in &found.cycles {
            let told = deadlock_doc(doc, &parties, cycle);
            let mut names = told.parties.clone();
            names.sort();
            let resources: BTreeSet<String> = told
                .steps
                .iter()
                .flat_map(|s| [s.waits.resource_name.clone(), s.held.resource_name.clone()])
                .collect();
            let key = (names, resources.into_iter().collect());
            if !self.standing.contains(&key) {
                if let Some(alert) = alert(doc, cycle, told.steps, now_ns) {
                    alerts.push(alert);
                }
            }
            standing.insert(key);
        }
        self.standing = standing;
        alerts
    }
}

/// The alert of one cycle, its entry the wait that closed it (the latest to start).
fn alert(
    doc: &StateDoc,
    cycle: &[Step],
    steps: Vec<latch_probe_common::doc::CycleStep>,
    now_ns: u64,
) -> Option<AlertDoc> {
    let (locker, closing) = cycle
        .iter()
        .filter_map(|s| {
            let locker = doc.lockers.get(s.waits.0)?;
            Some((locker, locker.waitings.get(s.waits.1)?))
        })
        .max_by_key(|(_, e)| (e.request.since_ns, e.request.conn))?;
    Some(AlertDoc {
        schema: ALERT_SCHEMA.to_owned(),
        ts_ns: now_ns,
        alert: AlertKind::Deadlock,
        locker: Some(locker.id),
        resource_name: closing.request.resource_name.clone(),
        conn: closing.request.conn,
        peer_name: closing.request.peer_name.clone(),
        peer_pid: closing.request.peer_pid,
        since_ns: closing.request.since_ns,
        for_ns: now_ns.saturating_sub(closing.request.since_ns),
        cycle: steps,
        action: Some(format!(
            "latch-probe evict --pid {} --conn {}",
            doc.pid, closing.request.conn
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use latch_probe_common::doc::{EntryDoc, LockerDoc, RequestDoc, Source, STATE_SCHEMA};
    use latch_probe_common::ResourceType;

    /// Lockers A and B, each with (conn, pid, since) holders and waiters.
    type E = (u64, u32, u64);
    fn state(a: (&[E], &[E]), b: (&[E], &[E])) -> StateDoc {
        let entries = |name: &str, list: &[E]| -> Vec<EntryDoc> {
            list.iter()
                .map(|&(conn, pid, since_ns)| EntryDoc {
                    request: RequestDoc {
                        conn,
                        resource_name: name.into(),
                        peer_name: "localhost/".into(),
                        peer_pid: Some(pid),
                        peer_uid: Some(0),
                        fd: 7,
                        lock_mode: None,
                        quantity: None,
                        since_ns,
                    },
                    element: None,
                })
                .collect()
        };
        let locker = |id, name: &str, (h, w): (&[E], &[E])| LockerDoc {
            id,
            resource_name: name.into(),
            resource_type: ResourceType::Simple,
            created_ns: 0,
            holders: entries(name, h),
            waitings: entries(name, w),
        };
        StateDoc {
            schema: STATE_SCHEMA.into(),
            source: Source::Live,
            pid: 7,
            version: "0".into(),
            generation: 2,
            torn: false,
            lockers: vec![locker(1, "A", a), locker(2, "B", b)],
            incubator: vec![],
        }
    }

    #[test]
    fn a_cycle_is_said_once_and_again_once_re_formed() {
        let processes = ProcessTable::unknown();
        let mut alerts = CycleAlerts::default();
        // 10 holds A and waits for B; 20 holds B.
        let open = state((&[(1, 10, 1)], &[]), (&[(2, 20, 2)], &[(3, 10, 3)]));
        assert!(alerts.check(&open, &processes, 5).is_empty());
        assert!(!alerts.any_standing());
        // 20 waits for A: closed.
        let closed = state(
            (&[(1, 10, 1)], &[(4, 20, 4)]),
            (&[(2, 20, 2)], &[(3, 10, 3)]),
        );
        let said = alerts.check(&closed, &processes, 9);
        assert_eq!(said.len(), 1, "{said:#?}");
        let a = &said[0];
        assert_eq!(
            (a.alert, a.locker, a.conn, a.for_ns),
            (AlertKind::Deadlock, Some(1), 4, 5)
        );
        assert_eq!(
            a.action.as_deref(),
            Some("latch-probe evict --pid 7 --conn 4")
        );
        let parties: Vec<(&str, Option<u32>, &str)> = a
            .cycle
            .iter()
            .map(|s| (s.party.as_str(), s.pid, s.waits.resource_name.as_str()))
            .collect();
        assert_eq!(
            parties,
            [("pid 10", Some(10), "B"), ("pid 20", Some(20), "A")]
        );
        assert_eq!(
            a.cycle[0].holds.iter().map(|e| e.conn).collect::<Vec<_>>(),
            [1]
        );
        // Still standing: nothing more, however often it is looked at.
        assert!(alerts.check(&closed, &processes, 10).is_empty());
        assert!(alerts.any_standing());
        // Broken (20's wait cancelled), then closed again by a new wait.
        assert!(alerts.check(&open, &processes, 11).is_empty());
        let again = state(
            (&[(1, 10, 1)], &[(5, 20, 12)]),
            (&[(2, 20, 2)], &[(3, 10, 3)]),
        );
        let said = alerts.check(&again, &processes, 13);
        assert_eq!(said.iter().map(|a| a.conn).collect::<Vec<_>>(), [5]);
    }
}
