//! A large, realistic `latch.state/1` for `scripts/bench-analyze.sh`: client parties (a
//! process with several connections, as a libflom program with several handles, or a chain
//! of nested `latch` clients) ask, interleaved as concurrent clients do, for simple resources
//! in every mode, numeric pools and sets, the popular ones more often; each request is
//! granted when it fits beside the holders, else it waits and its party asks no further. So
//! queues form behind hot resources and some parties close cycles, as in a real table.
//!
//! Usage: `big_state CONNS SEED DIR` writes `DIR/state.json` and `DIR/processes.json`
//! (`latch.processes/1`, the parties' process tree) and prints how many holders, waiters
//! and parties it made.

#![forbid(unsafe_code)]

use latch_probe::analysis::conflict::Capacity;
use latch_probe::analysis::processes::{ProcessInfo, PROCESSES_SCHEMA};
use latch_probe::analysis::ProcessTable;
use latch_probe_common::doc::{EntryDoc, LockerDoc, RequestDoc, Source, StateDoc, STATE_SCHEMA};
use latch_probe_common::{LockMode, ResourceType};
use latch_tests::rng::Rng;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Parties asking at the same time.
const CONCURRENT: usize = 200;
const BASE_NS: u64 = 1_700_000_000_000_000_000;
/// The shell every party was started from.
const SHELL: u32 = 900;

struct Party {
    /// The pid each of its requests comes from, in order.
    pids: Vec<u32>,
    plan: Vec<usize>,
    next: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [conns, seed, dir] = args.as_slice() else {
        eprintln!("usage: big_state CONNS SEED DIR");
        std::process::exit(2);
    };
    let (Ok(conns), Ok(seed)) = (conns.parse::<u64>(), seed.parse::<u64>()) else {
        eprintln!("big_state: CONNS and SEED are numbers");
        std::process::exit(2);
    };
    let dir = PathBuf::from(dir);
    let mut rng = Rng::new(seed);

    let resources = (conns / 5).max(10) as usize;
    let mut lockers: Vec<LockerDoc> = (0..resources)
        .map(|i| {
            let (name, resource_type) = match i % 10 {
                0 => (format!("pool{i}[4]"), ResourceType::Numeric),
                1 => (format!("red{i}.green{i}.blue{i}"), ResourceType::Set),
                _ => (format!("res{i}"), ResourceType::Simple),
            };
            LockerDoc {
                id: i as u64 + 1,
                resource_name: name,
                resource_type,
                created_ns: BASE_NS,
                holders: vec![],
                waitings: vec![],
            }
        })
        .collect();
    let mut processes = ProcessTable {
        schema: PROCESSES_SCHEMA.to_owned(),
        complete: true,
        processes: BTreeMap::new(),
    };
    processes.processes.insert(
        SHELL,
        ProcessInfo {
            ppid: 1,
            cmdline: vec!["bash".into()],
        },
    );

    let (mut made, mut next_pid, mut parties) = (0u64, 1000u32, 0u64);
    let mut active: Vec<Party> = Vec::new();
    while made < conns {
        while active.len() < CONCURRENT {
            let asks = 1 + rng.below(4);
            // Popular resources more often: the square of a uniform pick.
            let plan: Vec<usize> = (0..asks)
                .map(|_| {
                    let u = rng.below(resources);
                    u * u / resources
                })
                .collect();
            let pids = party_pids(&mut rng, &plan, &lockers, &mut next_pid, &mut processes);
            active.push(Party {
                pids,
                plan,
                next: 0,
            });
            parties += 1;
        }
        let at = rng.below(active.len());
        let party = &mut active[at];
        let locker = &mut lockers[party.plan[party.next]];
        made += 1;
        let entry = entry(&mut rng, made, locker, party.pids[party.next]);
        party.next += 1;
        let done = party.next == party.plan.len();
        if Capacity::of(locker).fits(locker.holders.iter(), &entry) {
            locker.holders.push(EntryDoc {
                element: (locker.resource_type == ResourceType::Set)
                    .then(|| format!("element{}", locker.holders.len())),
                ..entry
            });
            if done {
                active.swap_remove(at);
            }
        } else {
            locker.waitings.push(entry);
            active.swap_remove(at);
        }
    }
    lockers.retain(|l| !l.holders.is_empty() || !l.waitings.is_empty());
    let (holders, waiting): (usize, usize) = lockers.iter().fold((0, 0), |(h, w), l| {
        (h + l.holders.len(), w + l.waitings.len())
    });
    let state = StateDoc {
        schema: STATE_SCHEMA.to_owned(),
        source: Source::Daemon,
        pid: 42,
        version: "bench".to_owned(),
        generation: 2 * made,
        torn: false,
        lockers,
        incubator: vec![],
    };
    let write = |name: &str, json: Vec<u8>| {
        let path = dir.join(name);
        std::fs::write(&path, json)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    };
    write("state.json", serde_json::to_vec(&state).expect("JSON"));
    write(
        "processes.json",
        serde_json::to_vec(&processes).expect("JSON"),
    );
    println!(
        "{made} connections: {holders} holding, {waiting} waiting, {} lockers, {parties} parties, {} processes",
        state.lockers.len(),
        processes.processes.len()
    );
}

/// The pids a party's requests come from: one process for all (a program with several
/// connections), or a chain of nested `latch -r X -- latch -r Y -- ...` clients, each the
/// child of the one before.
fn party_pids(
    rng: &mut Rng,
    plan: &[usize],
    lockers: &[LockerDoc],
    next_pid: &mut u32,
    processes: &mut ProcessTable,
) -> Vec<u32> {
    let mut take = || {
        *next_pid += 1;
        *next_pid
    };
    if rng.below(2) == 0 {
        let pid = take();
        processes.processes.insert(
            pid,
            ProcessInfo {
                ppid: SHELL,
                cmdline: vec!["app".into(), "--worker".into(), pid.to_string()],
            },
        );
        return vec![pid; plan.len()];
    }
    let mut parent = SHELL;
    (0..plan.len())
        .map(|i| {
            let pid = take();
            let mut cmdline = Vec::new();
            for &rest in &plan[i..] {
                cmdline.extend(["latch", "-r", lockers[rest].resource_name.as_str(), "--"]);
            }
            cmdline.extend(["sleep", "600"]);
            processes.processes.insert(
                pid,
                ProcessInfo {
                    ppid: parent,
                    cmdline: cmdline.into_iter().map(str::to_owned).collect(),
                },
            );
            parent = pid;
            pid
        })
        .collect()
}

/// Request `conn` of `pid` for `locker`.
fn entry(rng: &mut Rng, conn: u64, locker: &LockerDoc, pid: u32) -> EntryDoc {
    let modes = [
        LockMode::EX,
        LockMode::EX,
        LockMode::PR,
        LockMode::PR,
        LockMode::CR,
        LockMode::PW,
    ];
    EntryDoc {
        request: RequestDoc {
            conn,
            resource_name: locker.resource_name.clone(),
            peer_name: "localhost/".to_owned(),
            peer_pid: Some(pid),
            peer_uid: Some(0),
            fd: (conn % 60_000) as i32 + 10,
            lock_mode: locker.resource_type.has_mode().then(|| *rng.pick(&modes)),
            quantity: locker
                .resource_type
                .has_quantity()
                .then(|| 1 + rng.below(2) as u64),
            since_ns: BASE_NS + conn * 1_000_000,
        },
        element: None,
    }
}
