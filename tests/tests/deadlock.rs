//! `latch-probe analyze` and `diff` on real client processes: two and three parties waiting
//! for each other across resources, by separate connections of one process and by nesting
//! (`latch -r A -- latch -r B -- cmd`), a numeric and a set resource in a cycle, each found
//! live, from a core file and from saved files, every party named by pid and command line,
//! and the same verdict from the daemon's own state; and no cycle, ever, in a randomized
//! workload of clients that take their locks in one order.
//!
//! Needs root (ptrace) and gdb's `gcore`. Every process started is ended by its pid (a
//! nested client by its process group, which the test made).

use latch_probe::analysis::{Input, ProcessTable, Report, Verdict};
use latch_probe_common::doc::StateDoc;
use latch_tests::bins::{latch_bin, Profile};
use latch_tests::clients::{Conns, Nested};
use latch_tests::coredump::gcore;
use latch_tests::daemon::Daemon;
use latch_tests::probe::latch_probe;
use latch_tests::rng::Rng;
use latch_tests::timeouts::CHANGE;
use latch_tests::wait::wait_for;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

const DEADLOCK: i32 = 12;

/// The deadlocks of a `latch.report/1` document: each as the set of its parties' pids.
/// That `report` finds one deadlock, whose parties are `pids`.
fn assert_sole_cycle(report: &Value, pids: &BTreeSet<u64>, seen: &str) {
    assert_eq!(
        cycles(report).as_slice(),
        std::slice::from_ref(pids),
        "{seen}: {report}"
    );
}

fn cycles(report: &Value) -> Vec<BTreeSet<u64>> {
    report["deadlocks"]
        .as_array()
        .expect("deadlocks")
        .iter()
        .map(|d| {
            d["steps"]
                .as_array()
                .expect("steps")
                .iter()
                .map(|s| s["pid"].as_u64().expect("a party's pid"))
                .collect()
        })
        .collect()
}

/// Every step of the report's one deadlock: (pid, command, resource held, resource waited
/// for), with the pid's command line checked to contain `command_has`.
#[track_caller]
fn steps(report: &Value, command_has: &str) -> Vec<(u64, String, String)> {
    let deadlocks = report["deadlocks"].as_array().expect("deadlocks");
    assert_eq!(deadlocks.len(), 1, "one deadlock: {report}");
    deadlocks[0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            let command = s["command"].as_str().unwrap_or_default();
            assert!(
                command.contains(command_has),
                "party {} is named by its command line: {command:?}",
                s["party"]
            );
            (
                s["pid"].as_u64().expect("pid"),
                s["held"]["resource_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                s["waits"]["resource_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// `analyze --json ARGS`, which must exit `code`; its report.
#[track_caller]
fn analyze(args: &[&str], code: i32) -> Value {
    let mut all = vec!["analyze", "--json"];
    all.extend_from_slice(args);
    let out = latch_probe(&all).expect_exit(code);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no report ({e})"))
}

/// The deadlock among `pids` is found live, from the daemon's own state, from the saved
/// files `--save` wrote, and from a core file, with the same parties each time.
fn found_everywhere(daemon: &Daemon, pids: &BTreeSet<u64>) -> Value {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let saved = dir.path().join("saved");
    let pid = daemon.pid().to_string();
    let dot = dir.path().join("wait-for.dot");
    let live = analyze(
        &["--pid", &pid, "--save", path(&saved), "--dot", path(&dot)],
        DEADLOCK,
    );
    assert_sole_cycle(&live, pids, "live");
    let dot = std::fs::read_to_string(&dot).expect("the dot file");
    for p in pids {
        assert!(
            dot.contains(&format!("\"pid {p}\" [label=")) && dot.contains("color=red"),
            "party {p} drawn, the cycle in red:\n{dot}"
        );
    }

    let processes = saved.join("processes.json");
    let files = analyze(
        &[
            "--state",
            path(&saved.join("state.json")),
            "--processes",
            path(&processes),
            "--stacks",
            path(&saved.join("stacks.json")),
        ],
        DEADLOCK,
    );
    assert_sole_cycle(&files, pids, "from files");

    // The daemon's own view of the same state gives the same verdict.
    let own = dir.path().join("daemon-state.json");
    std::fs::write(
        &own,
        daemon.client().args(["state", "--json"]).expect_success(),
    )
    .expect("writing the daemon's state");
    let ours = analyze(
        &["--state", path(&own), "--processes", path(&processes)],
        DEADLOCK,
    );
    assert_sole_cycle(&ours, pids, "the daemon's own state");

    let core = gcore(daemon.pid(), dir.path());
    let latch = latch_bin(Profile::Debug);
    let dead = analyze(
        &[
            "--core",
            path(&core),
            "--exe",
            path(&latch),
            "--processes",
            path(&processes),
        ],
        DEADLOCK,
    );
    assert_sole_cycle(&dead, pids, "from a core");
    live
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

#[test]
fn two_processes_each_holding_what_the_other_wants_by_separate_connections() {
    let daemon = Daemon::start(Profile::Debug);
    let (mut p1, mut p2) = (
        Conns::start(env!("CARGO_BIN_EXE_lock_conns"), &daemon),
        Conns::start(env!("CARGO_BIN_EXE_lock_conns"), &daemon),
    );
    p1.ask("A", "granted");
    p2.ask("B", "granted");
    p1.ask("B", "queued");
    p2.ask("A", "queued");
    let pids: BTreeSet<u64> = [p1.pid(), p2.pid()].map(u64::from).into();
    let report = found_everywhere(&daemon, &pids);
    let mut got = steps(&report, "lock_conns");
    got.sort();
    let mut want = vec![
        (u64::from(p1.pid()), "B".to_owned(), "B".to_owned()),
        (u64::from(p2.pid()), "A".to_owned(), "A".to_owned()),
    ];
    want.sort();
    assert_eq!(got, want, "each waits for what the other holds");
    assert_eq!(report["verdict"], "deadlock");
    assert!(report["reasons"][0]
        .as_str()
        .is_some_and(|r| r.starts_with("deadlock:")));

    // The markdown names both parties as jstack does.
    let md = latch_probe(&["analyze", "--pid", &daemon.pid().to_string()]).expect_exit(DEADLOCK);
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.contains("## Deadlock 1: 2 parties"), "{md}");
    for p in &pids {
        assert!(md.contains(&format!("**pid {p}**")), "{md}");
    }
}

#[test]
fn three_nested_clients_in_a_ring_of_resources() {
    let daemon = Daemon::start(Profile::Debug);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let go = dir.path().join("go");
    let ring = [("A", "B"), ("B", "C"), ("C", "A")];
    let clients: Vec<Nested> = ring
        .iter()
        .map(|(first, second)| Nested::start(&daemon, first, second, &go))
        .collect();
    daemon.wait_state("each client holding its first lock", |s| {
        s.lockers.iter().map(|l| l.holders.len()).sum::<usize>() == 3
    });
    std::fs::write(&go, "").expect("the go file");
    daemon.wait_state("each inner client waiting", |s| {
        s.lockers.iter().map(|l| l.waitings.len()).sum::<usize>() == 3
    });
    let pids: BTreeSet<u64> = clients.iter().map(|c| u64::from(c.pid())).collect();
    let report = found_everywhere(&daemon, &pids);
    let got = steps(&report, " -r ");
    assert_eq!(got.len(), 3, "three parties: {report}");
    for (pid, held, waits) in got {
        let at = clients
            .iter()
            .position(|c| u64::from(c.pid()) == pid)
            .expect("a party is an outer client");
        let (_, second) = ring[at];
        assert_eq!(waits, second, "pid {pid} waits for its second resource");
        assert_eq!(held, second, "which the next party holds");
    }
}

#[test]
fn a_numeric_and_a_set_resource_in_a_cycle() {
    let daemon = Daemon::start(Profile::Debug);
    let (mut p1, mut p2) = (
        Conns::start(env!("CARGO_BIN_EXE_lock_conns"), &daemon),
        Conns::start(env!("CARGO_BIN_EXE_lock_conns"), &daemon),
    );
    p2.ask("x.y", "granted");
    p2.ask("x.y", "granted");
    p1.ask("pool[2] - 2", "granted");
    p2.ask("pool[2] - 1", "queued");
    p1.ask("x.y", "queued");
    let pids: BTreeSet<u64> = [p1.pid(), p2.pid()].map(u64::from).into();
    found_everywhere(&daemon, &pids);

    // One element given back: p1 gets it, and the cycle is gone.
    drop(p2);
    daemon.wait_state("p2 gone", |s| {
        s.lockers.iter().all(|l| l.waitings.is_empty())
    });
    let healthy = analyze(&["--pid", &daemon.pid().to_string()], 0);
    assert!(cycles(&healthy).is_empty(), "{healthy}");
}

/// Clients that take their locks in one order (A < B < pool[3] < x.y.z < C), nested and
/// with random modes and quantities, cannot deadlock: no state of theirs may show a cycle.
#[test]
fn clients_taking_locks_in_one_order_never_show_a_cycle() {
    const STATES: usize = 200;
    let daemon = Daemon::start(Profile::Debug);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    eprintln!("seed {seed}");
    let stop = Arc::new(AtomicBool::new(false));
    let latch = daemon.bin().to_owned();
    let socket = daemon.socket().to_owned();
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let (stop, latch, socket) = (stop.clone(), latch.clone(), socket.clone());
            thread::spawn(move || {
                let mut rng = Rng::new(seed ^ (w << 32));
                let order = ["A", "B", "pool[3]", "x.y.z", "C"];
                while !stop.load(Ordering::Relaxed) {
                    let mut cmd = Command::new(&latch);
                    cmd.stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null());
                    let mut first = true;
                    for (i, name) in order.iter().enumerate() {
                        if rng.below(2) == 0 && !(i == order.len() - 1 && first) {
                            continue;
                        }
                        if !first {
                            cmd.arg("--").arg(&latch);
                        }
                        first = false;
                        cmd.args(["-s"]).arg(&socket).args(["-r", name]);
                        match *name {
                            "A" | "B" | "C" => {
                                cmd.args(["-l", *rng.pick(&["EX", "PR", "CR", "PW", "CW"])]);
                            }
                            "pool[3]" => {
                                cmd.args(["-q", *rng.pick(&["1", "2"])]);
                            }
                            _ => {}
                        }
                    }
                    cmd.args(["--", "sleep", *rng.pick(&["0.01", "0.03", "0.05"])]);
                    let mut child = cmd.spawn().expect("a client");
                    let _ = wait_for("a workload client", CHANGE, || {
                        child.try_wait().ok().flatten()
                    });
                }
            })
        })
        .collect();
    let mut waited = 0;
    for n in 0..STATES {
        let state = daemon.state();
        waited += state
            .lockers
            .iter()
            .map(|l| l.waitings.len())
            .sum::<usize>();
        let verdict = verdict_of(&state);
        assert_eq!(
            verdict,
            Verdict::Healthy,
            "state {n} (seed {seed}): {state:?}"
        );
        if n % 50 == 0 {
            // The probe's own look at the same workload, through the binary.
            analyze(&["--pid", &daemon.pid().to_string()], 0);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("a workload thread");
    }
    assert!(waited > 0, "the workload made clients wait (seed {seed})");
}

/// The analysis of the daemon's own `state`, with the client processes read now.
fn verdict_of(state: &StateDoc) -> Verdict {
    let pids = state
        .lockers
        .iter()
        .flat_map(|l| l.holders.iter().chain(&l.waitings))
        .filter_map(|e| e.request.peer_pid);
    let processes = ProcessTable::read_live(pids);
    Report::new(&Input {
        state,
        processes: &processes,
        now_ns: 0,
        max_hold_ns: None,
        wedged: None,
    })
    .verdict
}
