//! `latch-probe watch` raises exactly one alert for a holder kept past `--max-hold` and one
//! for a waiter past `--max-wait`, each naming the right locker and conn, and none for a
//! holder within its bound; and one `deadlock` alert per cycle of real clients, at the
//! event that closes it and not before (a 2-cycle of two processes' connections, broken and
//! formed again, and a 3-ring of nested clients, whose parties need their process tree).
//!
//! Needs root (uprobes, ptrace). Every process started is stopped by its pid.

use latch_probe_common::doc::{AlertDoc, AlertKind, StateDoc};
use latch_tests::bins::Profile;
use latch_tests::clients::{Conns, Nested};
use latch_tests::daemon::Daemon;
use latch_tests::lines::Lines;
use latch_tests::probe::ProbeStream;
use latch_tests::timeouts::CHANGE;
use latch_tests::wait::wait_for;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

#[test]
fn one_alert_per_late_holder_and_waiter() {
    let daemon = Daemon::start(Profile::Debug);
    let watch = ProbeStream::start(
        "watch",
        daemon.pid(),
        &["--max-hold", "2s", "--max-wait", "1s"],
    );
    let alerts = &watch.stdout;

    let _holder = daemon.holder(&["-r", "foo"]);
    let _waiter = daemon.holder(&["-r", "foo"]);
    // Held briefly, well within --max-hold: no alert.
    let mut brief = daemon.holder(&["-r", "bar"]);
    let state = wait_for("foo held and waited for, bar held", CHANGE, || {
        let s = daemon.state();
        let ready = s.lockers.len() == 2
            && s.lockers
                .iter()
                .any(|l| l.holders.len() == 1 && l.waitings.len() == 1);
        ready.then_some(s)
    });
    brief.close_stdin();
    assert!(brief.wait_within(CHANGE).success());
    let foo = state
        .lockers
        .iter()
        .find(|l| l.resource_name == "foo")
        .expect("foo's locker");
    let holder_conn = foo.holders[0].request.conn;
    let waiter_conn = foo.waitings[0].request.conn;

    let said: Vec<AlertDoc> = alerts
        .take(0, 2, "two alerts", CHANGE)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not an alert ({e}): {l}")))
        .collect();
    let mut got: Vec<(AlertKind, Option<u64>, u64)> =
        said.iter().map(|a| (a.alert, a.locker, a.conn)).collect();
    got.sort_by_key(|(kind, ..)| format!("{kind:?}"));
    assert_eq!(
        got,
        [
            (AlertKind::MaxHold, Some(foo.id), holder_conn),
            (AlertKind::MaxWait, Some(foo.id), waiter_conn),
        ],
        "{said:#?}"
    );
    for alert in &said {
        let bound = match alert.alert {
            AlertKind::MaxHold => 2_000_000_000,
            _ => 1_000_000_000,
        };
        assert!(alert.for_ns > bound, "said before its bound: {alert:#?}");
        assert_eq!(alert.schema, "latch.alert/1");
    }
    // Nothing more, however long they stay: each is said once.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(alerts.all().len(), 2, "{:#?}", alerts.all());
    let (_, log) = watch.stop();
    assert!(
        log.last()
            .is_some_and(|l| l.contains("2 alerts, 1 snapshots")),
        "{log:#?}"
    );
}

/// The alerts said so far.
fn alerts(lines: &Lines) -> Vec<AlertDoc> {
    lines.all().iter().map(|l| alert(l)).collect()
}

fn alert(line: &str) -> AlertDoc {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not an alert ({e}): {line}"))
}

/// The deadlock alerts among [`alerts`]. Once the test has killed clients, the others depend
/// on the scheduler: a holder whose process the watch sees gone before the daemon has closed
/// its connection is a `client_vanished` alert, a moment later it is no holder at all.
fn deadlocks(lines: &Lines) -> Vec<AlertDoc> {
    let mut said = alerts(lines);
    said.retain(|a| a.alert == AlertKind::Deadlock);
    said
}

/// Waits until watch's state file shows `ok`: every event before it has been looked at (an
/// alert is written before the state file), so the alerts are then all said.
fn watched(file: &Path, what: &str, ok: impl Fn(&StateDoc) -> bool) -> StateDoc {
    let state = wait_for(what, CHANGE, || {
        let doc: StateDoc = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
        ok(&doc).then_some(doc)
    });
    // The alert lines still travel through the pipe to the collecting thread.
    std::thread::sleep(Duration::from_millis(200));
    state
}

fn waiting(state: &StateDoc) -> usize {
    state.lockers.iter().map(|l| l.waitings.len()).sum()
}

/// The conn of `pid`'s wait for `resource` in `state`.
#[track_caller]
fn wait_of(state: &StateDoc, pid: u32, resource: &str) -> u64 {
    state
        .lockers
        .iter()
        .flat_map(|l| &l.waitings)
        .find(|w| w.request.peer_pid == Some(pid) && w.request.resource_name == resource)
        .unwrap_or_else(|| panic!("pid {pid} waits for {resource}: {state:?}"))
        .request
        .conn
}

/// `alert` is a deadlock closed by `conn` among exactly `pids`, each party named by its
/// command line (containing `command_has`) and holding what the one before it waits for.
#[track_caller]
fn assert_deadlock(alert: &AlertDoc, daemon: u32, conn: u64, pids: &[u32], command_has: &str) {
    assert_eq!(alert.alert, AlertKind::Deadlock, "{alert:#?}");
    assert_eq!(
        alert.conn, conn,
        "the wait that closed the cycle: {alert:#?}"
    );
    assert_eq!(
        alert.action.as_deref(),
        Some(format!("latch-probe evict --pid {daemon} --conn {conn}").as_str())
    );
    assert!(
        alert.for_ns < CHANGE.as_nanos() as u64,
        "said as it formed: {alert:#?}"
    );
    let parties: BTreeSet<u32> = alert.cycle.iter().filter_map(|s| s.pid).collect();
    assert_eq!(parties, pids.iter().copied().collect(), "{alert:#?}");
    assert_eq!(alert.cycle.len(), pids.len(), "{alert:#?}");
    for (i, step) in alert.cycle.iter().enumerate() {
        assert!(
            step.command
                .as_deref()
                .is_some_and(|c| c.contains(command_has)),
            "party {} named by its command line: {step:#?}",
            step.party
        );
        let next = &alert.cycle[(i + 1) % alert.cycle.len()];
        assert_eq!(step.held_by, next.party, "{alert:#?}");
        assert!(
            next.holds.contains(&step.held),
            "the next party holds what {} waits for: {alert:#?}",
            step.party
        );
        assert_eq!(step.waits.resource_name, step.held.resource_name);
    }
}

#[test]
fn a_deadlock_is_said_once_as_the_events_close_it() {
    let daemon = Daemon::start(Profile::Debug);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("state.json");
    let watch = ProbeStream::start(
        "watch",
        daemon.pid(),
        &["--state-file", file.to_str().expect("a UTF-8 path")],
    );
    let lock_conns = env!("CARGO_BIN_EXE_lock_conns");

    // Two processes, each holding a lock on one connection and asking on another.
    let (mut p1, mut p2) = (
        Conns::start(lock_conns, &daemon),
        Conns::start(lock_conns, &daemon),
    );
    p1.ask("A", "granted");
    p2.ask("B", "granted");
    p1.ask("B", "queued");
    watched(&file, "p1 waiting for B", |s| waiting(s) == 1);
    assert!(
        alerts(&watch.stdout).is_empty(),
        "no cycle yet: {:#?}",
        alerts(&watch.stdout)
    );
    p2.ask("A", "queued");
    let state = watched(&file, "p2 waiting for A", |s| waiting(s) == 2);
    let said = alerts(&watch.stdout);
    assert_eq!(said.len(), 1, "one alert for the cycle: {said:#?}");
    let (pids, pid) = ([p1.pid(), p2.pid()], daemon.pid());
    assert_deadlock(
        &said[0],
        pid,
        wait_of(&state, p2.pid(), "A"),
        &pids,
        "lock_conns",
    );

    // Broken (p2 gives up its wait), then formed again: a second alert, and only one.
    p2.close("A");
    watched(&file, "p2's wait for A gone", |s| waiting(s) == 1);
    assert_eq!(
        alerts(&watch.stdout).len(),
        1,
        "{:#?}",
        alerts(&watch.stdout)
    );
    p2.ask("A", "queued");
    let state = watched(&file, "p2 waiting for A again", |s| waiting(s) == 2);
    let said = alerts(&watch.stdout);
    assert_eq!(said.len(), 2, "the re-formed cycle said again: {said:#?}");
    assert_deadlock(
        &said[1],
        pid,
        wait_of(&state, p2.pid(), "A"),
        &pids,
        "lock_conns",
    );
    drop((p1, p2));
    watched(&file, "the 2-cycle's clients gone", |s| {
        s.lockers.is_empty()
    });

    // Three nested clients in a ring: each `latch -r X -- latch -r Y` is one party.
    let go = dir.path().join("go");
    let ring = [("C", "D"), ("D", "E"), ("E", "C")];
    let clients: Vec<Nested> = ring
        .iter()
        .map(|(first, second)| Nested::start(&daemon, first, second, &go))
        .collect();
    watched(&file, "each client holding its first lock", |s| {
        s.lockers.iter().map(|l| l.holders.len()).sum::<usize>() == 3
    });
    std::fs::write(&go, "").expect("the go file");
    let state = watched(&file, "each inner client waiting", |s| waiting(s) == 3);
    let said = deadlocks(&watch.stdout);
    assert_eq!(said.len(), 3, "one alert for the ring: {said:#?}");
    let last = state
        .lockers
        .iter()
        .flat_map(|l| &l.waitings)
        .max_by_key(|w| (w.request.since_ns, w.request.conn))
        .expect("a waiter");
    let outer: Vec<u32> = clients.iter().map(Nested::pid).collect();
    assert_deadlock(&said[2], pid, last.request.conn, &outer, " -r ");

    // Nothing more while the ring stands.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        deadlocks(&watch.stdout).len(),
        3,
        "{:#?}",
        alerts(&watch.stdout)
    );
    drop(clients);
    let (stdout, log) = watch.stop();
    let said: Vec<AlertDoc> = stdout.iter().map(|l| alert(l)).collect();
    let kinds: Vec<AlertKind> = said.iter().map(|a| a.alert).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == AlertKind::Deadlock).count(),
        3,
        "{said:#?}"
    );
    assert!(
        kinds
            .iter()
            .all(|k| matches!(k, AlertKind::Deadlock | AlertKind::ClientVanished)),
        "{said:#?}"
    );
    let counted = format!("{} alerts, 1 snapshots", said.len());
    assert!(
        log.last().is_some_and(|l| l.contains(&counted)),
        "{counted}: {log:#?}"
    );
}
