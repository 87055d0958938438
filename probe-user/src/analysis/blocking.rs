//! Who blocks each waiter, as PostgreSQL's `pg_blocking_pids` tells it: hard blockers are
//! the holders whose release it needs, soft blockers the waiters ahead of it in the queue
//! that want what it wants (a release grants in queue order).
//!
//! Connection-level and per locker; parties and cycles are [`super::deadlock`]'s. A waiter
//! lists at most [`LISTED`] blockers of each kind, with the total beside them, so that the
//! work is linear in the entries for every type but the hierarchical one.

use super::conflict::{mode, Capacity};
use latch_probe_common::doc::{EntryDoc, LockerDoc, StateDoc};
use latch_probe_common::LockMode;
use serde::Serialize;

/// Blockers named per waiter and kind; the rest are counted.
pub const LISTED: usize = 16;

/// Some of the connections in a waiter's way, and how many there are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Blockers {
    pub conns: Vec<u64>,
    pub total: usize,
}

/// One waiter and what blocks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Block {
    pub conn: u64,
    pub locker: u64,
    pub resource_name: String,
    /// Its place in the locker's queue, from 0.
    pub position: usize,
    pub since_ns: u64,
    pub hard: Blockers,
    pub soft: Blockers,
}

/// Every waiter of the state, locker by locker in queue order.
pub fn blocks(state: &StateDoc) -> Vec<Block> {
    let mut out = Vec::with_capacity(state.lockers.iter().map(|l| l.waitings.len()).sum());
    for locker in &state.lockers {
        locker_blocks(locker, &mut out);
    }
    out
}

fn locker_blocks(locker: &LockerDoc, out: &mut Vec<Block>) {
    let capacity = Capacity::of(locker);
    let held = Groups::of(capacity, locker.holders.iter().map(|h| (h.request.conn, h)));
    let mut ahead = Groups::of(capacity, std::iter::empty());
    for (position, waiter) in locker.waitings.iter().enumerate() {
        let (hard, soft) = match capacity {
            Capacity::Paths => (
                scan(capacity, &locker.holders, waiter),
                scan(capacity, &locker.waitings[..position], waiter),
            ),
            _ => (
                held.in_way(capacity, waiter),
                ahead.in_way(capacity, waiter),
            ),
        };
        out.push(Block {
            conn: waiter.request.conn,
            locker: locker.id,
            resource_name: waiter.request.resource_name.clone(),
            position,
            since_ns: waiter.request.since_ns,
            hard,
            soft,
        });
        if capacity != Capacity::Paths {
            ahead.add(capacity, waiter.request.conn, waiter);
        }
    }
}

/// Entries by the group that decides conflicts: the mode for simple resources, one group
/// for the counted types (where everybody competes). Each group keeps its first
/// [`LISTED`] connections, in the order they were added, and its size.
struct Groups {
    listed: [Vec<(usize, u64)>; LockMode::ALL.len()],
    sizes: [usize; LockMode::ALL.len()],
    added: usize,
}

impl Groups {
    fn of<'a>(capacity: Capacity, entries: impl Iterator<Item = (u64, &'a EntryDoc)>) -> Groups {
        let mut groups = Groups {
            listed: Default::default(),
            sizes: [0; LockMode::ALL.len()],
            added: 0,
        };
        for (conn, entry) in entries {
            groups.add(capacity, conn, entry);
        }
        groups
    }

    fn add(&mut self, capacity: Capacity, conn: u64, entry: &EntryDoc) {
        let g = match capacity {
            Capacity::Modes => usize::from(mode(entry).wire()),
            _ => 0,
        };
        if self.listed[g].len() < LISTED {
            self.listed[g].push((self.added, conn));
        }
        self.sizes[g] += 1;
        self.added += 1;
    }

    fn in_way(&self, capacity: Capacity, wanted: &EntryDoc) -> Blockers {
        let in_way = |g: usize| match capacity {
            Capacity::Modes => !mode(wanted).compatible_with(LockMode::ALL[g]),
            _ => g == 0,
        };
        let mut listed: Vec<(usize, u64)> = (0..LockMode::ALL.len())
            .filter(|&g| in_way(g))
            .flat_map(|g| self.listed[g].iter().copied())
            .collect();
        listed.sort_unstable();
        listed.truncate(LISTED);
        Blockers {
            conns: listed.into_iter().map(|(_, conn)| conn).collect(),
            total: (0..LockMode::ALL.len())
                .filter(|&g| in_way(g))
                .map(|g| self.sizes[g])
                .sum(),
        }
    }
}

/// The entries of `among` in `wanted`'s way, one by one (hierarchical paths do not group).
fn scan(capacity: Capacity, among: &[EntryDoc], wanted: &EntryDoc) -> Blockers {
    let mut blockers = Blockers::default();
    for e in among.iter().filter(|e| capacity.stands_in_way(e, wanted)) {
        if blockers.conns.len() < LISTED {
            blockers.conns.push(e.request.conn);
        }
        blockers.total += 1;
    }
    blockers
}

#[cfg(test)]
mod tests {
    use super::super::conflict::tests::entry;
    use super::*;
    use latch_probe_common::doc::{Source, STATE_SCHEMA};
    use latch_probe_common::ResourceType;

    fn state(lockers: Vec<LockerDoc>) -> StateDoc {
        StateDoc {
            schema: STATE_SCHEMA.into(),
            source: Source::Daemon,
            pid: 1,
            version: "0".into(),
            generation: 2,
            torn: false,
            lockers,
            incubator: vec![],
        }
    }

    fn locker(
        name: &str,
        ty: ResourceType,
        holders: Vec<EntryDoc>,
        waitings: Vec<EntryDoc>,
    ) -> LockerDoc {
        LockerDoc {
            id: 9,
            resource_name: name.into(),
            resource_type: ty,
            created_ns: 0,
            holders,
            waitings,
        }
    }

    #[test]
    fn modes_block_hard_by_holders_and_soft_by_the_queue() {
        use LockMode::*;
        let s = state(vec![locker(
            "a",
            ResourceType::Simple,
            vec![entry(1, "a", Some(PR), None), entry(2, "a", Some(CR), None)],
            vec![
                entry(3, "a", Some(EX), None),
                entry(4, "a", Some(PW), None),
                entry(5, "a", Some(CR), None),
            ],
        )]);
        let b = blocks(&s);
        assert_eq!(b.len(), 3);
        assert_eq!(
            b[0].hard,
            Blockers {
                conns: vec![1, 2],
                total: 2
            }
        );
        assert_eq!(b[0].soft, Blockers::default());
        // PW is compatible with CR held, not with PR; behind EX, which it cannot share with.
        assert_eq!(
            b[1].hard,
            Blockers {
                conns: vec![1],
                total: 1
            }
        );
        assert_eq!(
            b[1].soft,
            Blockers {
                conns: vec![3],
                total: 1
            }
        );
        // CR fits beside both holders; only EX ahead is in its way (a newcomer CR would have
        // been granted: this one waits for another reason, e.g. a torn state).
        assert_eq!(b[2].hard, Blockers::default());
        assert_eq!(
            b[2].soft,
            Blockers {
                conns: vec![3],
                total: 1
            }
        );
        assert_eq!(b[2].position, 2);
    }

    #[test]
    fn counted_types_are_blocked_by_everyone_and_listing_is_capped() {
        let n = LISTED + 5;
        let holders = (0..n as u64).map(|c| entry(c, "s.t", None, None)).collect();
        let waitings = (100..103).map(|c| entry(c, "s.t", None, None)).collect();
        let b = blocks(&state(vec![locker(
            "s.t",
            ResourceType::Set,
            holders,
            waitings,
        )]));
        assert_eq!(b[2].hard.total, n);
        assert_eq!(b[2].hard.conns, (0..LISTED as u64).collect::<Vec<_>>());
        assert_eq!(
            b[2].soft,
            Blockers {
                conns: vec![100, 101],
                total: 2
            }
        );
    }

    #[test]
    fn paths_block_where_they_overlap() {
        let s = state(vec![locker(
            "/a",
            ResourceType::Hierarchical,
            vec![entry(1, "/a/b", None, None), entry(2, "/a/c", None, None)],
            vec![entry(3, "/a/b/x", None, None), entry(4, "/a", None, None)],
        )]);
        let b = blocks(&s);
        assert_eq!(
            b[0].hard,
            Blockers {
                conns: vec![1],
                total: 1
            }
        );
        assert_eq!(
            b[1].hard,
            Blockers {
                conns: vec![1, 2],
                total: 2
            }
        );
        assert_eq!(
            b[1].soft,
            Blockers {
                conns: vec![3],
                total: 1
            }
        );
    }
}
