//! Deadlocks between parties, across resources and modes.
//!
//! A cycle of "waits for a holder of" edges is not enough with counted resources: a set
//! waiter needs *one* of its holders gone, not all. So deadlock is decided by graph
//! reduction (Holt's): a party that waits for nothing runs on and, in the end, releases all
//! it holds; a party whose every wait fits beside what the unreduced parties still hold is
//! granted and does the same. The parties left once nothing more can be reduced are stuck
//! for good. Among them, the wait-for graph's strongly connected components with a cycle
//! are the deadlocks, reported as jstack does: party by party, what it waits for and who
//! holds it; the other stuck parties wait behind a deadlock.
//!
//! Assumes what the daemon cannot know: that a party not waiting will release, and that a
//! party with several waiting connections needs them all.

use super::conflict::{mode, Capacity};
use super::parties::Parties;
use latch_probe_common::doc::{EntryDoc, LockerDoc, StateDoc};
use latch_probe_common::LockMode;
use std::collections::HashSet;

/// An entry of the state: (locker index, entry index) in the holders or the waitings.
pub type At = (usize, usize);

/// One party of a cycle: it waits for `waits`, which `held` (of the next party) stands in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub party: usize,
    /// In `waitings`.
    pub waits: At,
    /// In `holders`; its party is the next step's (the first's, after the last).
    pub held: At,
}

/// What the reduction found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deadlocks {
    /// One cycle per deadlocked component, each starting at its lowest party.
    pub cycles: Vec<Vec<Step>>,
    /// Stuck parties in no cycle: they wait, directly or not, behind a deadlock (or for
    /// what can never be granted).
    pub behind: Vec<usize>,
}

pub fn find(state: &StateDoc, parties: &Parties) -> Deadlocks {
    let n = parties.list.len();
    let mut holds: Vec<Vec<At>> = vec![Vec::new(); n];
    let mut waits: Vec<Vec<At>> = vec![Vec::new(); n];
    for (li, locker) in state.lockers.iter().enumerate() {
        for (hi, h) in locker.holders.iter().enumerate() {
            if let Some(p) = parties.of(h.request.conn) {
                holds[p].push((li, hi));
            }
        }
        for (wi, w) in locker.waitings.iter().enumerate() {
            if let Some(p) = parties.of(w.request.conn) {
                waits[p].push((li, wi));
            }
        }
    }
    let mut remaining: Vec<Remaining> = state.lockers.iter().map(Remaining::of).collect();
    let mut satisfied: Vec<Vec<bool>> = state
        .lockers
        .iter()
        .map(|l| vec![false; l.waitings.len()])
        .collect();
    let mut pending: Vec<usize> = waits.iter().map(Vec::len).collect();
    for (p, list) in waits.iter().enumerate() {
        for &(li, wi) in list {
            if remaining[li].fits(&state.lockers[li], &state.lockers[li].waitings[wi]) {
                satisfied[li][wi] = true;
                pending[p] -= 1;
            }
        }
    }
    let mut reduced = vec![false; n];
    let mut ready: Vec<usize> = (0..n).filter(|&p| pending[p] == 0).collect();
    while !ready.is_empty() {
        let mut dirty: Vec<usize> = Vec::new();
        for p in ready.drain(..) {
            reduced[p] = true;
            for &(li, hi) in &holds[p] {
                remaining[li].release(&state.lockers[li], hi);
                dirty.push(li);
            }
        }
        dirty.sort_unstable();
        dirty.dedup();
        for li in dirty {
            let locker = &state.lockers[li];
            for (wi, w) in locker.waitings.iter().enumerate() {
                let Some(p) = parties.of(w.request.conn) else {
                    continue;
                };
                if satisfied[li][wi] || reduced[p] || !remaining[li].fits(locker, w) {
                    continue;
                }
                satisfied[li][wi] = true;
                pending[p] -= 1;
                if pending[p] == 0 {
                    ready.push(p);
                }
            }
        }
    }

    // The wait-for graph of the stuck parties, each edge with the entries that make it.
    let mut edges: Vec<Vec<(usize, At, At)>> = vec![Vec::new(); n];
    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    for p in (0..n).filter(|&p| !reduced[p]) {
        for &(li, wi) in waits[p].iter().filter(|&&(li, wi)| !satisfied[li][wi]) {
            let locker = &state.lockers[li];
            let capacity = Capacity::of(locker);
            let wanted = &locker.waitings[wi];
            for (hi, h) in locker.holders.iter().enumerate() {
                let Some(q) = parties.of(h.request.conn) else {
                    continue;
                };
                if !reduced[q] && capacity.stands_in_way(h, wanted) && seen.insert((p, q)) {
                    edges[p].push((q, (li, wi), (li, hi)));
                }
            }
        }
    }
    let mut deadlocks = Deadlocks::default();
    let mut in_cycle = vec![false; n];
    for component in components(&edges, &reduced) {
        let Some(cycle) = cycle_in(&component, &edges) else {
            continue;
        };
        for &p in &component {
            in_cycle[p] = true;
        }
        deadlocks.cycles.push(cycle);
    }
    deadlocks.cycles.sort_by_key(|c| c.first().map(|s| s.party));
    deadlocks.behind = (0..n).filter(|&p| !reduced[p] && !in_cycle[p]).collect();
    deadlocks
}

/// What the unreduced parties still hold in one locker, in the form its fit test needs.
struct Remaining {
    capacity: Capacity,
    alive: Vec<bool>,
    modes: [usize; LockMode::ALL.len()],
    units: u64,
    count: u64,
}

impl Remaining {
    fn of(locker: &LockerDoc) -> Remaining {
        let mut r = Remaining {
            capacity: Capacity::of(locker),
            alive: vec![true; locker.holders.len()],
            modes: [0; LockMode::ALL.len()],
            units: 0,
            count: 0,
        };
        for h in &locker.holders {
            r.modes[usize::from(mode(h).wire())] += 1;
            r.units = r.units.saturating_add(h.request.quantity.unwrap_or(1));
            r.count += 1;
        }
        r
    }

    fn release(&mut self, locker: &LockerDoc, hi: usize) {
        let (Some(alive), Some(h)) = (self.alive.get_mut(hi), locker.holders.get(hi)) else {
            return;
        };
        if !std::mem::replace(alive, false) {
            return;
        }
        self.modes[usize::from(mode(h).wire())] -= 1;
        self.units = self.units.saturating_sub(h.request.quantity.unwrap_or(1));
        self.count -= 1;
    }

    fn fits(&self, locker: &LockerDoc, wanted: &EntryDoc) -> bool {
        match self.capacity {
            Capacity::Modes => LockMode::ALL
                .iter()
                .zip(self.modes)
                .all(|(&held, count)| count == 0 || mode(wanted).compatible_with(held)),
            Capacity::Paths => self.capacity.fits(
                locker
                    .holders
                    .iter()
                    .zip(&self.alive)
                    .filter(|(_, &a)| a)
                    .map(|(h, _)| h),
                wanted,
            ),
            Capacity::Units(total) => {
                self.units
                    .saturating_add(wanted.request.quantity.unwrap_or(1))
                    <= total
            }
            Capacity::Slots(max) => self.count < max,
        }
    }
}

/// The strongly connected components of the unreduced parties (Tarjan's, without
/// recursion: a stuck state can be deep).
fn components(edges: &[Vec<(usize, At, At)>], reduced: &[bool]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut next = 0;
    for root in (0..n).filter(|&p| !reduced[p]) {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            if *child == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&(w, _, _)) = edges[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                out.push(component);
            }
        }
    }
    out
}

/// A shortest cycle through the component's lowest party, if the component has one (more
/// than one party, or a party waiting for itself).
fn cycle_in(component: &[usize], edges: &[Vec<(usize, At, At)>]) -> Option<Vec<Step>> {
    let &start = component.first()?;
    let inside = |p: usize| component.binary_search(&p).is_ok();
    // Breadth first from `start`, remembering by which edge each party was reached.
    let mut via: Vec<Option<(usize, At, At)>> = vec![None; edges.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    let mut closing = None;
    'search: while let Some(v) = queue.pop_front() {
        for &(w, waits, held) in &edges[v] {
            if w == start {
                closing = Some((v, waits, held));
                break 'search;
            }
            if inside(w) && via[w].is_none() {
                via[w] = Some((v, waits, held));
                queue.push_back(w);
            }
        }
    }
    let (mut at, waits, held) = closing?;
    let mut steps = vec![Step {
        party: at,
        waits,
        held,
    }];
    while at != start {
        let (from, waits, held) = via[at]?;
        steps.push(Step {
            party: from,
            waits,
            held,
        });
        at = from;
    }
    steps.reverse();
    Some(steps)
}

#[cfg(test)]
mod tests {
    use super::super::conflict::tests::{entry, with_pid};
    use super::super::processes::{ProcessInfo, ProcessTable};
    use super::*;
    use latch_probe_common::doc::{Source, STATE_SCHEMA};
    use latch_probe_common::ResourceType;

    /// A state from lockers given as (name, type, holders, waiters), each entry
    /// (conn, peer pid, mode, quantity).
    type E = (u64, u32, Option<LockMode>, Option<u64>);
    fn state(lockers: &[(&str, ResourceType, &[E], &[E])]) -> StateDoc {
        let entries = |name: &str, list: &[E]| {
            list.iter()
                .map(|&(conn, pid, m, q)| with_pid(entry(conn, name, m, q), pid))
                .collect()
        };
        StateDoc {
            schema: STATE_SCHEMA.into(),
            source: Source::Live,
            pid: 1,
            version: "0".into(),
            generation: 2,
            torn: false,
            lockers: lockers
                .iter()
                .enumerate()
                .map(|(i, &(name, ty, h, w))| LockerDoc {
                    id: i as u64 + 100,
                    resource_name: name.into(),
                    resource_type: ty,
                    created_ns: 0,
                    holders: entries(name, h),
                    waitings: entries(name, w),
                })
                .collect(),
            incubator: vec![],
        }
    }

    fn find_with(state: &StateDoc, tree: &[(u32, u32)]) -> (Parties, Deadlocks) {
        let mut processes = ProcessTable::unknown();
        for &(pid, ppid) in tree {
            processes.processes.insert(
                pid,
                ProcessInfo {
                    ppid,
                    cmdline: vec![],
                },
            );
        }
        let parties = Parties::resolve(state, &processes);
        let found = find(state, &parties);
        (parties, found)
    }

    fn cycle_pids(parties: &Parties, cycle: &[Step]) -> Vec<u32> {
        cycle
            .iter()
            .filter_map(|s| parties.list[s.party].pid)
            .collect()
    }

    const S: ResourceType = ResourceType::Simple;

    #[test]
    fn two_processes_each_holding_what_the_other_wants() {
        let s = state(&[
            ("A", S, &[(1, 10, None, None)], &[(4, 20, None, None)]),
            ("B", S, &[(3, 20, None, None)], &[(2, 10, None, None)]),
        ]);
        let (parties, d) = find_with(&s, &[]);
        assert_eq!(d.cycles.len(), 1);
        assert_eq!(cycle_pids(&parties, &d.cycles[0]), [10, 20]);
        let first = &d.cycles[0][0];
        assert_eq!(
            s.lockers[first.waits.0].waitings[first.waits.1]
                .request
                .conn,
            2
        );
        assert_eq!(
            s.lockers[first.held.0].holders[first.held.1].request.conn,
            3
        );
        assert!(d.behind.is_empty());
    }

    #[test]
    fn nesting_joins_a_client_and_the_client_it_runs() {
        // pid 11 (`latch -r B`) is a child of pid 10 (`latch -r A -- latch -r B`): one
        // party holding A and waiting for B; pid 20 holds B and waits for A.
        let s = state(&[
            ("A", S, &[(1, 10, None, None)], &[(4, 20, None, None)]),
            ("B", S, &[(3, 20, None, None)], &[(2, 11, None, None)]),
        ]);
        let (_, unrelated) = find_with(&s, &[]);
        assert!(unrelated.cycles.is_empty(), "{unrelated:?}");
        let (parties, d) = find_with(&s, &[(11, 10), (10, 5)]);
        assert_eq!(cycle_pids(&parties, &d.cycles[0]), [10, 20]);
    }

    #[test]
    fn a_three_cycle_and_a_party_behind_it() {
        let s = state(&[
            (
                "A",
                S,
                &[(1, 10, None, None)],
                &[(6, 30, None, None), (7, 40, None, None)],
            ),
            ("B", S, &[(3, 20, None, None)], &[(2, 10, None, None)]),
            ("C", S, &[(5, 30, None, None)], &[(4, 20, None, None)]),
        ]);
        let (parties, d) = find_with(&s, &[]);
        assert_eq!(d.cycles.len(), 1);
        assert_eq!(cycle_pids(&parties, &d.cycles[0]), [10, 20, 30]);
        let behind: Vec<_> = d.behind.iter().map(|&p| parties.list[p].pid).collect();
        assert_eq!(behind, [Some(40)]);
    }

    #[test]
    fn compatible_modes_make_no_cycle() {
        use LockMode::*;
        // Both hold PR on A; each waits for the other's B/C in a mode the holder allows.
        let s = state(&[
            (
                "A",
                S,
                &[(1, 10, Some(PR), None), (2, 20, Some(PR), None)],
                &[],
            ),
            (
                "B",
                S,
                &[(3, 10, Some(PR), None)],
                &[(5, 20, Some(EX), None)],
            ),
            ("C", S, &[(4, 20, Some(CR), None)], &[]),
        ]);
        let (_, d) = find_with(&s, &[]);
        assert!(d.cycles.is_empty() && d.behind.is_empty(), "{d:?}");
        // PW on A is refused beside the other's PR: with B that closes a cycle.
        let s = state(&[
            (
                "A",
                S,
                &[(1, 10, Some(PR), None)],
                &[(6, 20, Some(PW), None)],
            ),
            (
                "B",
                S,
                &[(3, 20, Some(PR), None)],
                &[(5, 10, Some(EX), None)],
            ),
        ]);
        assert_eq!(find_with(&s, &[]).1.cycles.len(), 1);
    }

    #[test]
    fn a_set_waiter_needs_only_one_holder_gone() {
        // 30 holds one of two elements and is not waiting: it will release, 10 gets it,
        // then 20: no deadlock although 10 and 20 wait for each other's holdings.
        let set = ResourceType::Set;
        let s = state(&[
            (
                "x.y",
                set,
                &[(1, 20, None, None), (2, 30, None, None)],
                &[(3, 10, None, None)],
            ),
            ("B", S, &[(4, 10, None, None)], &[(5, 20, None, None)]),
        ]);
        let (_, d) = find_with(&s, &[]);
        assert!(d.cycles.is_empty(), "{d:?}");
        // Without 30 (both elements held by 20, which waits): a deadlock.
        let s = state(&[
            (
                "x.y",
                set,
                &[(1, 20, None, None), (2, 20, None, None)],
                &[(3, 10, None, None)],
            ),
            ("B", S, &[(4, 10, None, None)], &[(5, 20, None, None)]),
        ]);
        assert_eq!(find_with(&s, &[]).1.cycles.len(), 1);
    }

    #[test]
    fn numeric_quantities_decide() {
        let num = ResourceType::Numeric;
        // pool[3]: 10 holds 2, 20 holds 1 and waits for B (held by 10); 10 wants 1 more.
        let s = state(&[
            (
                "pool[3]",
                num,
                &[(1, 10, None, Some(2)), (2, 20, None, Some(1))],
                &[(3, 10, None, Some(1))],
            ),
            ("B", S, &[(4, 10, None, None)], &[(5, 20, None, None)]),
        ]);
        assert_eq!(find_with(&s, &[]).1.cycles.len(), 1);
        // pool[4]: one unit is free, 10's request fits once 20's... it fits now: no wait
        // would be left in a real daemon, and no deadlock is found.
        let s = state(&[
            (
                "pool[4]",
                num,
                &[(1, 10, None, Some(2)), (2, 20, None, Some(1))],
                &[(3, 10, None, Some(1))],
            ),
            ("B", S, &[(4, 10, None, None)], &[(5, 20, None, None)]),
        ]);
        assert!(find_with(&s, &[]).1.cycles.is_empty());
    }

    #[test]
    fn a_party_waiting_for_itself() {
        // `latch -r A -- latch -r A -- cmd`: the inner client waits for its parent's lock.
        let s = state(&[("A", S, &[(1, 10, None, None)], &[(2, 11, None, None)])]);
        let (parties, d) = find_with(&s, &[(11, 10)]);
        assert_eq!(d.cycles.len(), 1);
        assert_eq!(cycle_pids(&parties, &d.cycles[0]), [10]);
    }

    /// A state built by clients that each take their resources in one global order, as
    /// the daemon would grant them: such clients cannot deadlock, so every party must
    /// reduce (no cycle, nobody stuck behind one).
    fn ordered_state(plans: &[Vec<(usize, LockMode, u64)>], order: &[usize]) -> StateDoc {
        let names = ["A", "B", "pool[3]", "x.y", "C"];
        let types = [S, S, ResourceType::Numeric, ResourceType::Set, S];
        let mut lockers: Vec<LockerDoc> = names
            .iter()
            .zip(types)
            .enumerate()
            .map(|(i, (&name, ty))| LockerDoc {
                id: i as u64,
                resource_name: name.into(),
                resource_type: ty,
                created_ns: 0,
                holders: vec![],
                waitings: vec![],
            })
            .collect();
        let mut conn = 100;
        for &p in order {
            let mut plan = plans[p].clone();
            plan.sort_by_key(|&(r, _, _)| r);
            plan.dedup_by_key(|&mut (r, _, _)| r);
            for (r, m, q) in plan {
                conn += 1;
                let locker = &mut lockers[r];
                let ty = locker.resource_type;
                let e = entry(
                    conn,
                    names[r],
                    ty.has_mode().then_some(m),
                    ty.has_quantity().then_some(q),
                );
                let e = with_pid(e, p as u32 + 10);
                let capacity = Capacity::of(locker);
                if capacity.fits(locker.holders.iter(), &e) {
                    locker.holders.push(e);
                } else {
                    locker.waitings.push(e);
                    break;
                }
            }
        }
        let mut s = state(&[]);
        s.lockers = lockers;
        s
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        #[test]
        fn clients_taking_resources_in_order_never_deadlock(
            plans in proptest::collection::vec(
                proptest::collection::vec((0usize..5, 0u8..6, 1u64..3), 1..5),
                2..7,
            ),
            seed in proptest::prelude::any::<u64>(),
        ) {
            let plans: Vec<Vec<(usize, LockMode, u64)>> = plans
                .into_iter()
                .map(|plan| plan.into_iter().filter_map(|(r, m, q)| Some((r, LockMode::from_wire(m)?, q))).collect())
                .collect();
            let mut order: Vec<usize> = (0..plans.len()).collect();
            // A cheap shuffle from the seed: who came first.
            order.sort_by_key(|&p| (p as u64 + 1).wrapping_mul(seed | 1).rotate_left(17));
            let s = ordered_state(&plans, &order);
            let (_, d) = find_with(&s, &[]);
            proptest::prop_assert!(d.cycles.is_empty() && d.behind.is_empty(), "{:?}\n{:?}", d, s);
        }
    }
}
