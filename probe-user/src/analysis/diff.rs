//! What changed between two states of one daemon (`latch.diff/1`): per connection, where it
//! stood in each (holding, waiting, incubating or absent, and on what), and the connections
//! that did not move at all, the ones a stuck service leaves behind.
//!
//! Pure: two documents in, one out.

use latch_probe_common::doc::{RequestDoc, StateDoc};
use serde::Serialize;
use std::collections::BTreeMap;

pub const DIFF_SCHEMA: &str = "latch.diff/1";

/// Where a connection stood in one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Holding,
    Waiting,
    Incubating,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Place {
    pub standing: Standing,
    pub resource_name: String,
    /// The entry's `since_ns`: the same in both states means it did not move.
    pub since_ns: u64,
}

/// How a connection's place changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Waiting or incubating before, holding after.
    Granted,
    /// Holding before, absent after.
    Released,
    /// Waiting or incubating before, absent after.
    Left,
    /// Absent before.
    Arrived,
    /// Any other move (e.g. incubating → waiting).
    Moved,
    /// Holding in both, since the same time.
    StillHolding,
    /// Waiting or incubating in both, since the same time: stuck across the window.
    StillWaiting,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnChange {
    pub conn: u64,
    pub change: Change,
    pub before: Option<Place>,
    pub after: Option<Place>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub schema: &'static str,
    pub pid: (u32, u32),
    pub generation: (u64, u64),
    /// The two states are not of one daemon process (different pids): the changes are
    /// listed, but mean little.
    pub other_process: bool,
    pub changes: Vec<ConnChange>,
}

impl Diff {
    pub fn new(before: &StateDoc, after: &StateDoc) -> Diff {
        let a = places(before);
        let b = places(after);
        let mut conns: Vec<u64> = a.keys().chain(b.keys()).copied().collect();
        conns.sort_unstable();
        conns.dedup();
        let changes = conns
            .into_iter()
            .map(|conn| {
                let (before, after) = (a.get(&conn).cloned(), b.get(&conn).cloned());
                ConnChange {
                    conn,
                    change: change(before.as_ref(), after.as_ref()),
                    before,
                    after,
                }
            })
            .collect();
        Diff {
            schema: DIFF_SCHEMA,
            pid: (before.pid, after.pid),
            generation: (before.generation, after.generation),
            other_process: before.pid != after.pid,
            changes,
        }
    }

    /// One line a connection, moved ones first, then the ones stuck across both.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        if self.other_process {
            let _ = writeln!(
                out,
                "note: the states are of two processes ({} and {})",
                self.pid.0, self.pid.1
            );
        }
        let mut lines: Vec<&ConnChange> = self.changes.iter().collect();
        lines.sort_by_key(|c| (c.change, c.conn));
        for c in lines {
            let place = |p: &Option<Place>| match p {
                Some(p) => format!("{} {}", standing(p.standing), p.resource_name),
                None => "absent".to_owned(),
            };
            let _ = writeln!(
                out,
                "conn {}: {} ({} -> {})",
                c.conn,
                serde_json::to_value(c.change)
                    .ok()
                    .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                    .unwrap_or_default(),
                place(&c.before),
                place(&c.after)
            );
        }
        if self.changes.is_empty() {
            out.push_str("no connection in either state\n");
        }
        out
    }
}

fn standing(s: Standing) -> &'static str {
    match s {
        Standing::Holding => "holding",
        Standing::Waiting => "waiting",
        Standing::Incubating => "incubating",
    }
}

fn places(state: &StateDoc) -> BTreeMap<u64, Place> {
    let mut out = BTreeMap::new();
    let mut put = |standing, r: &RequestDoc| {
        let place = Place {
            standing,
            resource_name: r.resource_name.clone(),
            since_ns: r.since_ns,
        };
        out.insert(r.conn, place);
    };
    for l in &state.lockers {
        for (standing, list) in [
            (Standing::Holding, &l.holders),
            (Standing::Waiting, &l.waitings),
        ] {
            for e in list {
                put(standing, &e.request);
            }
        }
    }
    for i in &state.incubator {
        put(Standing::Incubating, &i.request);
    }
    out
}

fn change(before: Option<&Place>, after: Option<&Place>) -> Change {
    use Standing::*;
    match (before, after) {
        (None, _) => Change::Arrived,
        (Some(b), None) if b.standing == Holding => Change::Released,
        (Some(_), None) => Change::Left,
        (Some(b), Some(a)) if b == a && b.standing == Holding => Change::StillHolding,
        (Some(b), Some(a)) if b == a => Change::StillWaiting,
        (Some(b), Some(a)) if b.standing != Holding && a.standing == Holding => Change::Granted,
        (Some(_), Some(_)) => Change::Moved,
    }
}

#[cfg(test)]
mod tests {
    use super::super::conflict::tests::entry;
    use super::*;
    use latch_probe_common::doc::{LockerDoc, Source, STATE_SCHEMA};
    use latch_probe_common::ResourceType;

    fn state(holders: &[u64], waitings: &[u64]) -> StateDoc {
        StateDoc {
            schema: STATE_SCHEMA.into(),
            source: Source::Live,
            pid: 1,
            version: "0".into(),
            generation: 2,
            torn: false,
            lockers: vec![LockerDoc {
                id: 1,
                resource_name: "A".into(),
                resource_type: ResourceType::Simple,
                created_ns: 0,
                holders: holders.iter().map(|&c| entry(c, "A", None, None)).collect(),
                waitings: waitings
                    .iter()
                    .map(|&c| entry(c, "A", None, None))
                    .collect(),
            }],
            incubator: vec![],
        }
    }

    #[test]
    fn every_kind_of_change() {
        let mut before = state(&[1, 2], &[3, 4, 5]);
        let mut after = state(&[2, 3], &[4, 6]);
        // conn 3's grant gives it a new since; 2 and 4 stay as they were.
        after.lockers[0].holders[1].request.since_ns = 99;
        before.lockers[0].waitings[2].request.since_ns = 7;
        let d = Diff::new(&before, &after);
        let got: Vec<(u64, Change)> = d.changes.iter().map(|c| (c.conn, c.change)).collect();
        assert_eq!(
            got,
            [
                (1, Change::Released),
                (2, Change::StillHolding),
                (3, Change::Granted),
                (4, Change::StillWaiting),
                (5, Change::Left),
                (6, Change::Arrived),
            ]
        );
        assert!(!d.other_process);
        assert!(d
            .text()
            .contains("conn 4: still waiting (waiting A -> waiting A)"));
    }
}
