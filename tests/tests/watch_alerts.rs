//! `latch-probe watch` raises exactly one alert for a holder kept past `--max-hold` and one
//! for a waiter past `--max-wait`, each naming the right locker and conn, and none for a
//! holder within its bound.
//!
//! Needs root (uprobes, ptrace). Every process started is stopped by its pid.

use latch_probe_common::doc::{AlertDoc, AlertKind};
use latch_tests::bins::Profile;
use latch_tests::daemon::Daemon;
use latch_tests::probe::ProbeStream;
use latch_tests::timeouts::CHANGE;
use latch_tests::wait::wait_for;
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
