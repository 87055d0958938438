//! `scripts/forensic.sh` gives each of analyze's verdicts by its exit code and in report.md,
//! live and from a core file of the same daemon: healthy (exit 0), a client holding too long
//! with others waiting, named by pid and command line (10), a wedged daemon
//! (`--debug-feature hang-on-lock`), whose full state is saved all the same (11), and two
//! processes in a deadlock, drawn in red in wait-for.dot (12). The daemon is left running
//! and untraced.
//!
//! Needs root (ptrace, uprobes, gcore). Every process started is stopped by its pid.

use latch_tests::bins::{latch_bin, probe_bin, workspace_root, Profile};
use latch_tests::clients::Conns;
use latch_tests::command::TestCommand;
use latch_tests::coredump::gcore;
use latch_tests::daemon::Daemon;
use latch_tests::probe::assert_left_running_and_untraced;
use latch_tests::timeouts::FORENSIC;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A forensic run's directory and what it wrote.
struct Run {
    out: PathBuf,
    report: String,
    dot: String,
}

impl Run {
    fn file(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }
}

/// `scripts/forensic.sh ARGS OUT`, which must exit `code` with report.md's first line the
/// verdict `verdict` and wait-for.dot written.
#[track_caller]
fn forensic(args: &[&str], out: &Path, code: i32, verdict: &str) -> Run {
    TestCommand::new(workspace_root().join("scripts/forensic.sh"))
        .env("LATCH_PROBE", probe_bin())
        .env("LATCH", latch_bin(Profile::Debug))
        .args(args)
        .arg(out)
        .timeout(FORENSIC)
        .expect_exit(code);
    let read = |name: &str| {
        std::fs::read_to_string(out.join(name))
            .unwrap_or_else(|e| panic!("forensic.sh writes {name}: {e}"))
    };
    let run = Run {
        out: out.to_owned(),
        report: read("report.md"),
        dot: read("wait-for.dot"),
    };
    assert_eq!(
        run.report.lines().next(),
        Some(format!("# Verdict: {verdict} (exit {code})").as_str()),
        "{}",
        run.report
    );
    assert!(run.dot.starts_with("digraph"), "{}", run.dot);
    run
}

/// Live with a one-second window, then from a core of the same daemon (`core_args` added);
/// the directory they are in, and each run.
fn live_and_core(
    daemon: &mut Daemon,
    args: &[&str],
    code: i32,
    verdict: &str,
    core_args: impl FnOnce(&Run) -> Vec<String>,
) -> (TempDir, Run, Run) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path().to_owned();
    let pid = daemon.pid().to_string();
    let mut live_args = vec!["--window", "1"];
    live_args.extend_from_slice(args);
    live_args.push(&pid);
    let live = forensic(&live_args, &dir.join("live"), code, verdict);
    for file in [
        "first/state.json",
        "first/processes.json",
        "second/state.json",
        "second/stacks.json",
        "trace.ndjson",
        "stacks.txt",
        "identity.txt",
        "diff.txt",
    ] {
        assert!(live.file(file).is_file(), "{file} missing");
    }
    assert_left_running_and_untraced(daemon);

    let core = gcore(daemon.pid(), &dir);
    let exe = daemon.bin().to_str().expect("UTF-8").to_owned();
    let mut dead_args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    dead_args.extend(core_args(&live));
    dead_args.extend([
        "--core".into(),
        core.to_str().expect("UTF-8").into(),
        "--exe".into(),
        exe,
    ]);
    let dead_args: Vec<&str> = dead_args.iter().map(String::as_str).collect();
    let dead = forensic(&dead_args, &dir.join("core"), code, verdict);
    assert!(dead.file("first/state.json").is_file());
    assert_left_running_and_untraced(daemon);
    (tmp, live, dead)
}

#[test]
fn a_healthy_daemon() {
    let mut daemon = Daemon::start(Profile::Debug);
    let (_holder, _) = daemon.sole_holder(&["-r", "kept"]);
    let (_dir, live, dead) = live_and_core(&mut daemon, &[], 0, "healthy", |_| vec![]);
    for run in [&live, &dead] {
        assert!(
            run.report.contains("- healthy: no deadlock"),
            "{}",
            run.report
        );
        assert!(!run.dot.contains("->"), "nobody waits: {}", run.dot);
    }
}

#[test]
fn a_client_holding_too_long_is_named_as_the_cause() {
    let mut daemon = Daemon::start(Profile::Debug);
    let holder = daemon
        .client()
        .args(["-r", "printer", "--", "sleep", "600"])
        .background();
    let state = daemon.wait_state("printer held", |s| s.lockers.len() == 1);
    let conn = state.lockers[0].holders[0].request.conn;
    let _waiters = [
        daemon.holder(&["-r", "printer"]),
        daemon.holder(&["-r", "printer", "-l", "PR"]),
    ];
    daemon.wait_state("two waiters", |s| {
        s.lockers.first().is_some_and(|l| l.waitings.len() == 2)
    });
    // From the core, the live run's process table names the parties.
    let (_dir, live, dead) = live_and_core(
        &mut daemon,
        &["--max-hold", "500ms"],
        10,
        "holding_too_long",
        |live| {
            vec![
                "--processes".into(),
                live.file("first/processes.json")
                    .to_str()
                    .expect("UTF-8")
                    .into(),
            ]
        },
    );
    let party = format!("pid {}", holder.pid());
    for run in [&live, &dead] {
        let reason = format!("- holding too long: conn {conn} ({party}) has held printer for");
        assert!(run.report.contains(&reason), "{}", run.report);
        assert!(
            run.report.contains(&format!(
                "latch-probe evict --pid {} --conn {conn}",
                daemon.pid()
            )),
            "{}",
            run.report
        );
        assert!(
            run.report
                .contains(&format!("  {party}: `{}", daemon.bin().display()))
                && run.report.contains("-r printer -- sleep 600`"),
            "the holder by its command line: {}",
            run.report
        );
        assert_eq!(
            run.dot
                .lines()
                .filter(|l| l.ends_with(&format!("-> \"{party}\";")))
                .count(),
            2,
            "both waiters wait for the holder: {}",
            run.dot
        );
    }
}

#[test]
fn a_wedged_daemon_is_reported_with_its_full_state() {
    let mut daemon = Daemon::start_wedgeable();
    let (_holder, conn) = daemon.sole_holder(&["-r", "kept"]);
    // Wedged: the admin API (which needs the table's mutex) no longer answers.
    let _wedger = daemon.wedge();
    let (_dir, live, dead) = live_and_core(&mut daemon, &[], 11, "wedged", |_| vec![]);
    assert!(
        std::fs::read_to_string(live.file("admin.txt"))
            .expect("admin.txt")
            .starts_with("did not answer"),
        "the admin API timed out"
    );
    for (run, state) in [(&live, "second/state.json"), (&dead, "first/state.json")] {
        assert!(run.report.contains("- wedged: thread "), "{}", run.report);
        assert!(
            run.report.contains("holds the lock table")
                || run.report.contains("held the lock table")
        );
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.file(state)).expect("the state"))
                .expect("JSON");
        assert_eq!(state["lockers"][0]["holders"][0]["conn"], conn, "{state:#}");
    }
}

#[test]
fn a_deadlock_is_drawn_in_red() {
    let mut daemon = Daemon::start(Profile::Debug);
    let lock_conns = env!("CARGO_BIN_EXE_lock_conns");
    let (mut p1, mut p2) = (
        Conns::start(lock_conns, &daemon),
        Conns::start(lock_conns, &daemon),
    );
    p1.ask("A", "granted");
    p2.ask("B", "granted");
    p1.ask("B", "queued");
    p2.ask("A", "queued");
    let (_dir, live, dead) = live_and_core(&mut daemon, &[], 12, "deadlock", |_| vec![]);
    let (a, b) = (format!("pid {}", p1.pid()), format!("pid {}", p2.pid()));
    for run in [&live, &dead] {
        assert!(
            run.report.contains("## Deadlock 1: 2 parties"),
            "{}",
            run.report
        );
        for (from, to) in [(&a, &b), (&b, &a)] {
            let edge = format!("  \"{from}\" -> \"{to}\" [color=red, penwidth=2];");
            assert!(run.dot.contains(&edge), "{edge} in\n{}", run.dot);
        }
    }
    assert!(
        live.report.contains("lock_conns"),
        "parties named by command line"
    );
}
