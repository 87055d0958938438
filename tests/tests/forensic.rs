//! `scripts/forensic.sh`: on a wedged daemon (`--debug-feature hang-on-lock`) it reports
//! "daemon wedged" (exit 11) and still holds the full state; with a client holding forever
//! and others waiting, it names that client by pid and command line as the cause (exit 10);
//! from a core file of the wedged daemon, the same verdict. The daemon is left running and
//! untraced.
//!
//! Needs root (ptrace, uprobes, gcore). Every process started is stopped by its pid.

use latch_tests::bins::{latch_bin, probe_bin, workspace_root, Profile};
use latch_tests::command::TestCommand;
use latch_tests::coredump::gcore;
use latch_tests::daemon::Daemon;
use latch_tests::probe::assert_left_running_and_untraced;
use latch_tests::timeouts::{CHANGE, FORENSIC};
use latch_tests::wait::wait_for;
use std::path::Path;
use std::process::Output;

/// `scripts/forensic.sh ARGS OUT`, which exits with its verdict.
fn forensic(args: &[&str], out: &Path, verdict: i32) -> Output {
    TestCommand::new(workspace_root().join("scripts/forensic.sh"))
        .env("LATCH_PROBE", probe_bin())
        .env("LATCH", latch_bin(Profile::Debug))
        .args(args)
        .arg(out)
        .timeout(FORENSIC)
        .expect_exit(verdict)
}

fn report(out: &Path) -> String {
    std::fs::read_to_string(out.join("report.md")).expect("forensic.sh writes report.md")
}

#[test]
fn a_client_holding_forever_is_named_as_the_cause() {
    let mut daemon = Daemon::start(Profile::Debug);
    let holder = daemon
        .client()
        .args(["-r", "printer", "--", "sleep", "600"])
        .background();
    wait_for("printer held", CHANGE, || {
        (daemon.state().lockers.len() == 1).then_some(())
    });
    let _waiters = [
        daemon.holder(&["-r", "printer"]),
        daemon.holder(&["-r", "printer", "-l", "PR"]),
    ];
    wait_for("two waiters", CHANGE, || {
        (daemon.state().lockers.first()?.waitings.len() == 2).then_some(())
    });
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("out");
    let pid = daemon.pid().to_string();
    forensic(&["--window", "1", "--max-hold", "0.5", &pid], &out, 10);
    let text = report(&out);
    assert!(
        text.contains("**Verdict: client holding too long.**"),
        "{text}"
    );
    let cause = format!("pid {}, uid 0, `", holder.pid());
    let line = text
        .lines()
        .find(|l| l.contains("the cause"))
        .unwrap_or_else(|| panic!("no cause named: {text}"));
    assert!(
        line.contains(&cause) && line.contains("-r printer -- sleep 600"),
        "the holder by pid and command line: {line}"
    );
    for file in [
        "stacks.json",
        "state1.json",
        "state2.json",
        "trace.ndjson",
        "wait-for.dot",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    assert!(std::fs::read_to_string(out.join("wait-for.dot"))
        .expect("dot")
        .contains("->"));
    assert_left_running_and_untraced(&mut daemon);
}

#[test]
fn a_wedged_daemon_is_reported_live_and_from_its_core() {
    let mut daemon = Daemon::start_wedgeable();
    let (_holder, conn) = daemon.sole_holder(&["-r", "kept"]);
    // Wedged: the admin API (which needs the table's mutex) no longer answers.
    let _wedger = daemon.wedge();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("live");
    forensic(&["--window", "1", &daemon.pid().to_string()], &out, 11);
    let text = report(&out);
    assert!(text.contains("**Verdict: daemon wedged.**"), "{text}");
    assert!(text.contains("holds the lock table"), "{text}");
    // The full state is there all the same.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("state2.json")).expect("state2.json"))
            .expect("JSON");
    assert_eq!(state["lockers"][0]["holders"][0]["conn"], conn, "{state:#}");
    assert!(text.contains(&format!("\"conn\": {conn}")), "{text}");
    assert_left_running_and_untraced(&mut daemon);

    let core = gcore(daemon.pid(), dir.path());
    let core = core.to_str().expect("UTF-8").to_owned();
    let exe = daemon.bin().to_str().expect("UTF-8").to_owned();
    let dead = dir.path().join("core-report");
    forensic(&["--core", &core, "--exe", &exe], &dead, 11);
    let text = report(&dead);
    assert!(text.contains(&format!("\"conn\": {conn}")), "{text}");
    assert_left_running_and_untraced(&mut daemon);
}
