//! The analysis of one state as a document, `latch.report/1`: the verdict and its exit code,
//! the reasons, the parties, every waiter's blockers, the deadlocks and the lints, each lint
//! with the command that acts on it.
//!
//! Assembles what the other modules found; computes nothing of its own but durations.

use super::blocking::{self, Block};
use super::deadlock::{self, At, Deadlocks};
use super::parties::{Parties, Party};
use super::processes::ProcessTable;
use latch_probe_common::doc::{CycleStep, EntryDoc, EntryRef, Source, StateDoc};
use rustc_hash::FxHashSet;
use serde::Serialize;

pub const REPORT_SCHEMA: &str = "latch.report/1";

/// How many of the longest waits a report names.
const LONGEST_WAITS: usize = 3;

/// The verdict, worst first; its exit code is stable (scripts test it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Healthy,
    HoldingTooLong,
    Wedged,
    Deadlock,
}

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Healthy => 0,
            Verdict::HoldingTooLong => 10,
            Verdict::Wedged => 11,
            Verdict::Deadlock => 12,
        }
    }
}

/// What the caller knows beyond the state.
pub struct Input<'a> {
    pub state: &'a StateDoc,
    pub processes: &'a ProcessTable,
    /// When the state was taken (wall-clock Unix ns): what durations are measured to.
    pub now_ns: u64,
    /// A holder with waiters held longer than this is holding too long.
    pub max_hold_ns: Option<u64>,
    /// The daemon's lock table is not let go (from its thread stacks), in a sentence.
    pub wedged: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub verdict: Verdict,
    pub exit_code: u8,
    pub source: Source,
    pub pid: u32,
    pub generation: u64,
    pub torn: bool,
    pub now_ns: u64,
    /// One sentence per finding, worst first.
    pub reasons: Vec<String>,
    pub counts: Counts,
    pub parties: Vec<Party>,
    pub deadlocks: Vec<DeadlockDoc>,
    /// Stuck parties in no cycle: waiting behind a deadlock.
    pub behind_deadlock: Vec<String>,
    pub blocks: Vec<BlockDoc>,
    pub lints: Vec<Lint>,
    /// The party-level wait-for graph.
    pub graph: Vec<Edge>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Counts {
    pub lockers: usize,
    pub holders: usize,
    pub waiting: usize,
    pub incubating: usize,
    pub parties: usize,
}

/// One deadlock, party by party around its cycle.
#[derive(Clone, Debug, Serialize)]
pub struct DeadlockDoc {
    pub parties: Vec<String>,
    pub steps: Vec<CycleStep>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BlockDoc {
    pub party: Option<String>,
    #[serde(flatten)]
    pub block: Block,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LintKind {
    /// The daemon's lock table is not let go.
    Wedged,
    /// A holder whose every process has exited while its connection stays open.
    HolderGone,
    /// A holder with waiters, past `--max-hold`.
    HoldingTooLong,
    /// One of the longest waits.
    LongWait,
}

#[derive(Clone, Debug, Serialize)]
pub struct Lint {
    pub lint: LintKind,
    pub message: String,
    pub conn: Option<u64>,
    pub party: Option<String>,
    pub for_ns: Option<u64>,
    /// The command that acts on it.
    pub action: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    Hard,
    Soft,
}

/// `from` waits for `to`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    /// The edge is a step of a deadlock's cycle.
    pub cycle: bool,
}

impl Report {
    pub fn new(input: &Input<'_>) -> Report {
        let state = input.state;
        let parties = Parties::resolve(state, input.processes);
        let found = deadlock::find(state, &parties);
        let blocks = blocking::blocks(state);
        let party_of = |conn: u64| parties.of(conn).map(|p| parties.list[p].name.clone());

        let deadlocks: Vec<DeadlockDoc> = found
            .cycles
            .iter()
            .map(|cycle| deadlock_doc(state, &parties, cycle))
            .collect();
        let cycle_edges: FxHashSet<(usize, usize)> = found
            .cycles
            .iter()
            .flatten()
            .filter_map(|step| {
                let holder = state.lockers.get(step.held.0)?.holders.get(step.held.1)?;
                Some((step.party, parties.of(holder.request.conn)?))
            })
            .collect();
        let graph = graph(&blocks, &parties, &cycle_edges);
        let lints = lints(input, &parties, &blocks);

        let mut verdict = Verdict::Healthy;
        let mut reasons = Vec::new();
        for d in &deadlocks {
            verdict = verdict.max(Verdict::Deadlock);
            reasons.push(format!(
                "deadlock: {} wait for each other",
                d.parties.join(" → ")
            ));
        }
        for lint in &lints {
            let v = match lint.lint {
                LintKind::Wedged => Verdict::Wedged,
                LintKind::HoldingTooLong => Verdict::HoldingTooLong,
                LintKind::HolderGone | LintKind::LongWait => continue,
            };
            verdict = verdict.max(v);
            reasons.push(lint.message.clone());
        }
        reasons.sort_by_key(|r| std::cmp::Reverse(reason_rank(r)));
        if reasons.is_empty() {
            reasons.push("healthy: no deadlock, nothing held too long, the table is let go".into());
        }
        Report {
            schema: REPORT_SCHEMA,
            verdict,
            exit_code: verdict.exit_code(),
            source: state.source,
            pid: state.pid,
            generation: state.generation,
            torn: state.torn,
            now_ns: input.now_ns,
            reasons,
            counts: Counts {
                lockers: state.lockers.len(),
                holders: state.lockers.iter().map(|l| l.holders.len()).sum(),
                waiting: state.lockers.iter().map(|l| l.waitings.len()).sum(),
                incubating: state.incubator.len(),
                parties: parties.list.len(),
            },
            behind_deadlock: behind(&found, &parties),
            deadlocks,
            blocks: blocks
                .into_iter()
                .map(|block| BlockDoc {
                    party: party_of(block.conn),
                    block,
                })
                .collect(),
            lints,
            graph,
            parties: parties.list,
        }
    }
}

/// Deadlocks before the rest, as the verdict orders them.
fn reason_rank(reason: &str) -> u8 {
    match reason.split(':').next() {
        Some("deadlock") => 3,
        Some("wedged") => 2,
        _ => 1,
    }
}

fn behind(found: &Deadlocks, parties: &Parties) -> Vec<String> {
    found
        .behind
        .iter()
        .map(|&p| parties.list[p].name.clone())
        .collect()
}

fn entry_ref(locker: u64, e: &EntryDoc) -> EntryRef {
    let r = &e.request;
    EntryRef {
        locker,
        conn: r.conn,
        resource_name: r.resource_name.clone(),
        lock_mode: r.lock_mode,
        quantity: r.quantity,
        since_ns: r.since_ns,
    }
}

/// The cycle `cycle` of `state`, party by party.
pub fn deadlock_doc(state: &StateDoc, parties: &Parties, cycle: &[deadlock::Step]) -> DeadlockDoc {
    let waiting = |(li, wi): At| {
        let l = &state.lockers[li];
        entry_ref(l.id, &l.waitings[wi])
    };
    let holding = |(li, hi): At| {
        let l = &state.lockers[li];
        entry_ref(l.id, &l.holders[hi])
    };
    let steps: Vec<CycleStep> = cycle
        .iter()
        .map(|step| {
            let party = &parties.list[step.party];
            let held = holding(step.held);
            let held_by = parties
                .of(held.conn)
                .map(|p| parties.list[p].name.clone())
                .unwrap_or_default();
            CycleStep {
                party: party.name.clone(),
                pid: party.pid,
                command: party.command.clone(),
                holds: state
                    .lockers
                    .iter()
                    .flat_map(|l| l.holders.iter().map(move |h| (l.id, h)))
                    .filter(|(_, h)| party.conns.binary_search(&h.request.conn).is_ok())
                    .map(|(id, h)| entry_ref(id, h))
                    .collect(),
                waits: waiting(step.waits),
                held_by,
                held,
            }
        })
        .collect();
    DeadlockDoc {
        parties: steps.iter().map(|s| s.party.clone()).collect(),
        steps,
    }
}

/// The party-level wait-for graph: each waiter's party to each of its blockers' parties,
/// once per pair and kind, in the order of the parties' names. Sorted and deduplicated on
/// the parties' ranks by name, and named at the end: a large table has many edges, and
/// comparing or cloning their names is what would cost.
fn graph(
    blocks: &[Block],
    parties: &Parties,
    cycle_edges: &FxHashSet<(usize, usize)>,
) -> Vec<Edge> {
    let mut by_name: Vec<usize> = (0..parties.list.len()).collect();
    by_name.sort_unstable_by(|&a, &b| parties.list[a].name.cmp(&parties.list[b].name));
    let mut rank = vec![0; by_name.len()];
    for (r, &p) in by_name.iter().enumerate() {
        rank[p] = r;
    }
    let mut pairs: Vec<(usize, usize, EdgeKind)> = Vec::new();
    for block in blocks {
        let Some(from) = parties.of(block.conn) else {
            continue;
        };
        for (kind, blockers) in [(EdgeKind::Hard, &block.hard), (EdgeKind::Soft, &block.soft)] {
            pairs.extend(
                blockers
                    .conns
                    .iter()
                    .filter_map(|&c| parties.of(c))
                    .map(|to| (rank[from], rank[to], kind)),
            );
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
        .into_iter()
        .map(|(from, to, kind)| {
            let (from, to) = (by_name[from], by_name[to]);
            Edge {
                from: parties.list[from].name.clone(),
                to: parties.list[to].name.clone(),
                kind,
                cycle: kind == EdgeKind::Hard && cycle_edges.contains(&(from, to)),
            }
        })
        .collect()
}

fn lints(input: &Input<'_>, parties: &Parties, blocks: &[Block]) -> Vec<Lint> {
    let state = input.state;
    let pid = state.pid;
    let evict = |conn: u64| format!("latch-probe evict --pid {pid} --conn {conn}");
    let age = |since: u64| input.now_ns.saturating_sub(since);
    let party_of = |conn: u64| parties.of(conn).map(|p| &parties.list[p]);
    let mut lints = Vec::new();
    if let Some(why) = &input.wedged {
        lints.push(Lint {
            lint: LintKind::Wedged,
            message: format!("wedged: {why}"),
            conn: None,
            party: None,
            for_ns: None,
            action: format!(
                "latch-probe stacks --pid {pid}; the daemon must be restarted (evict is refused)"
            ),
        });
    }
    for locker in &state.lockers {
        for h in locker.holders.iter().map(|h| &h.request) {
            let party = party_of(h.conn);
            let name = party.map(|p| p.name.clone());
            if party.is_some_and(|p| p.gone) {
                lints.push(Lint {
                    lint: LintKind::HolderGone,
                    message: format!(
                        "conn {} holds {} but its process {} has exited",
                        h.conn,
                        h.resource_name,
                        h.peer_pid.map_or("?".into(), |p| p.to_string())
                    ),
                    conn: Some(h.conn),
                    party: name.clone(),
                    for_ns: Some(age(h.since_ns)),
                    action: evict(h.conn),
                });
            }
            let held = age(h.since_ns);
            if !locker.waitings.is_empty() && input.max_hold_ns.is_some_and(|max| held > max) {
                lints.push(Lint {
                    lint: LintKind::HoldingTooLong,
                    message: format!(
                        "holding too long: conn {} ({}) has held {} for {} with {} waiting",
                        h.conn,
                        name.as_deref().unwrap_or("?"),
                        h.resource_name,
                        seconds(held),
                        locker.waitings.len()
                    ),
                    conn: Some(h.conn),
                    party: name,
                    for_ns: Some(held),
                    action: evict(h.conn),
                });
            }
        }
    }
    let mut longest: Vec<&Block> = blocks.iter().collect();
    longest.sort_by_key(|b| (b.since_ns, b.conn));
    for b in longest.into_iter().take(LONGEST_WAITS) {
        lints.push(Lint {
            lint: LintKind::LongWait,
            message: format!(
                "conn {} has waited {} for {} ({} holder(s) in its way, {} ahead)",
                b.conn,
                seconds(age(b.since_ns)),
                b.resource_name,
                b.hard.total,
                b.soft.total
            ),
            conn: Some(b.conn),
            party: party_of(b.conn).map(|p| p.name.clone()),
            for_ns: Some(age(b.since_ns)),
            action: match b.hard.conns.first() {
                Some(&holder) => evict(holder),
                None => format!("latch-probe trace --pid {pid}"),
            },
        });
    }
    lints
}

/// `12.3 s`
pub fn seconds(ns: u64) -> String {
    format!("{:.1} s", ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::super::conflict::tests::{entry, with_pid};
    use super::super::processes::ProcessInfo;
    use super::super::render;
    use super::*;
    use latch_probe_common::doc::{LockerDoc, STATE_SCHEMA};
    use latch_probe_common::ResourceType;

    /// A holds conn 1 (pid 10); B holds conn 3 (pid 20); the given waiters.
    fn state(waiters: &[(usize, u64, u32)]) -> StateDoc {
        let mut lockers: Vec<LockerDoc> = [("A", 1, 10), ("B", 3, 20)]
            .iter()
            .enumerate()
            .map(|(i, &(name, conn, pid))| LockerDoc {
                id: 100 + i as u64,
                resource_name: name.into(),
                resource_type: ResourceType::Simple,
                created_ns: 0,
                holders: vec![with_pid(entry(conn, name, None, None), pid)],
                waitings: vec![],
            })
            .collect();
        for &(locker, conn, pid) in waiters {
            let name = lockers[locker].resource_name.clone();
            lockers[locker]
                .waitings
                .push(with_pid(entry(conn, &name, None, None), pid));
        }
        StateDoc {
            schema: STATE_SCHEMA.into(),
            source: Source::Live,
            pid: 7,
            version: "0".into(),
            generation: 2,
            torn: false,
            lockers,
            incubator: vec![],
        }
    }

    fn report(state: &StateDoc, max_hold_ns: Option<u64>, wedged: Option<&str>) -> Report {
        let mut processes = ProcessTable::unknown();
        for (pid, cmd) in [(10, "latch -r A -- x"), (20, "latch -r B -- y")] {
            processes.processes.insert(
                pid,
                ProcessInfo {
                    ppid: 5,
                    cmdline: cmd.split(' ').map(str::to_owned).collect(),
                },
            );
        }
        Report::new(&Input {
            state,
            processes: &processes,
            now_ns: 10_000_000_000,
            max_hold_ns,
            wedged: wedged.map(str::to_owned),
        })
    }

    #[test]
    fn verdicts_and_their_exit_codes() {
        let waiting = state(&[(0, 4, 30)]);
        let healthy = report(&waiting, None, None);
        assert_eq!((healthy.verdict, healthy.exit_code), (Verdict::Healthy, 0));
        let long = report(&waiting, Some(1_000_000_000), None);
        assert_eq!(
            (long.verdict, long.exit_code),
            (Verdict::HoldingTooLong, 10)
        );
        assert!(long.lints.iter().any(|l| l.lint == LintKind::HoldingTooLong
            && l.conn == Some(1)
            && l.action == "latch-probe evict --pid 7 --conn 1"));
        let md = render::markdown(&long);
        assert!(
            md.contains("  pid 10: `latch -r A -- x`  \n  `latch-probe evict --pid 7 --conn 1`"),
            "a finding names its party by command line: {md}"
        );
        let wedged = report(
            &waiting,
            Some(1_000_000_000),
            Some("thread 9 holds the table"),
        );
        assert_eq!((wedged.verdict, wedged.exit_code), (Verdict::Wedged, 11));
        assert!(
            wedged.reasons[0].starts_with("wedged:"),
            "{:?}",
            wedged.reasons
        );
        let cycle = state(&[(0, 4, 20), (1, 2, 10)]);
        let dead = report(
            &cycle,
            Some(1_000_000_000),
            Some("thread 9 holds the table"),
        );
        assert_eq!((dead.verdict, dead.exit_code), (Verdict::Deadlock, 12));
        assert!(
            dead.reasons[0].starts_with("deadlock: pid 10 → pid 20"),
            "{:?}",
            dead.reasons
        );
    }

    #[test]
    fn a_deadlock_is_told_party_by_party() {
        let r = report(&state(&[(0, 4, 20), (1, 2, 10)]), None, None);
        assert_eq!(r.deadlocks.len(), 1);
        let steps = &r.deadlocks[0].steps;
        assert_eq!(steps[0].party, "pid 10");
        assert_eq!(steps[0].command.as_deref(), Some("latch -r A -- x"));
        assert_eq!(
            steps[0].holds.iter().map(|e| e.conn).collect::<Vec<_>>(),
            [1]
        );
        assert_eq!((steps[0].waits.conn, steps[0].held.conn), (2, 3));
        assert_eq!(steps[0].held_by, "pid 20");
        assert_eq!((steps[1].waits.conn, steps[1].held.conn), (4, 1));
        let md = render::markdown(&r);
        assert!(md.contains("## Deadlock 1: 2 parties"), "{md}");
        assert!(
            md.contains("- **pid 10** `latch -r A -- x`") && md.contains("held by **pid 20**: B"),
            "{md}"
        );
        let dot = render::dot(&r);
        assert!(
            dot.contains("\"pid 10\" -> \"pid 20\" [color=red, penwidth=2];"),
            "{dot}"
        );
        assert!(
            dot.contains("\"pid 20\" -> \"pid 10\" [color=red, penwidth=2];"),
            "{dot}"
        );
    }
}
