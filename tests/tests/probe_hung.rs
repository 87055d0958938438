//! The probe reads a daemon that cannot answer: the state taken from the daemon just before
//! it stops answering equals what `latch-probe dump` reads after (a) SIGSTOP (the daemon is
//! left stopped), (b) `--debug-feature hang-on-lock=NAME` and a lock on NAME (its admin API
//! times out), (c) `gcore` then SIGKILL (read from the core file). And the probe does no
//! harm: killed while the daemon is frozen, it leaves the daemon running and serving; given
//! a process that is not a latch daemon, it refuses it with exit code 3.
//!
//! Needs root (ptrace) and gdb's `gcore`. Every process started is stopped by its pid.

use latch_probe_common::doc::{Source, StateDoc};
use latch_tests::background::Background;
use latch_tests::bins::Profile;
use latch_tests::command::TestCommand;
use latch_tests::coredump::gcore;
use latch_tests::daemon::{Daemon, EXIT_NOT_ANSWERING, WEDGE_NAME};
use latch_tests::probe::{
    expect_dump, latch_probe, EXIT_NOT_A_LATCH_DAEMON, EXIT_NOT_FOUND, EXIT_USAGE,
};
use latch_tests::procs::{signal, thread_states};
use latch_tests::state::{holding, waiting};
use latch_tests::timeouts::{CHANGE, PROBE};
use latch_tests::wait::wait_for;
use nix::sys::signal::Signal;
use std::path::Path;
use std::process::{Command, Stdio};

const WEDGED_TIMEOUT_MS: &str = "1000";

/// Holders, a waiter and an incubated client of several resource types; the daemon's
/// state once they are all in place.
fn populate(daemon: &Daemon) -> (StateDoc, Vec<Background>) {
    let clients = vec![
        daemon.holder(&["-r", "a", "-l", "PW"]),
        daemon.holder(&["-r", "num[3]", "-q", "2"]),
        daemon.holder(&["-r", "red.green"]),
        daemon.holder(&["-r", "/top/leaf", "-l", "CR"]),
        daemon.holder(&["-r", "later", "-e", "no"]),
    ];
    wait_for("the holders in place", CHANGE, || {
        let doc = daemon.state();
        (holding(&doc) == 4 && doc.incubator.len() == 1).then_some(())
    });
    // Then a waiter, so that the queue order is known.
    let mut clients = clients;
    clients.push(daemon.holder(&["-r", "a", "-l", "EX"]));
    clients.push(daemon.holder(&["-r", "num[3]", "-q", "3"]));
    let doc = wait_for("the waiters in place", CHANGE, || {
        let doc = daemon.state();
        (waiting(&doc) == 2).then_some(doc)
    });
    assert!(!doc.torn && doc.generation % 2 == 0, "{doc:?}");
    (doc, clients)
}

/// `latch-probe dump ARGS`.
fn dump(args: &[&str]) -> TestCommand {
    latch_probe(&[&["dump"], args].concat())
}

/// `latch-probe dump ARGS --json`, which must succeed; its document with `source` set to
/// the daemon's, for comparison, after checking it is `source`.
fn probe_json(args: &[&str], source: Source) -> StateDoc {
    expect_dump(&mut dump(&[args, &["--json"]].concat()), source)
}

/// `latch state --json` on a daemon that cannot answer: it gives up, with exit code 3.
fn assert_admin_times_out(daemon: &Daemon) {
    daemon
        .client()
        .args(["state", "--json", "--timeout-ms", WEDGED_TIMEOUT_MS])
        .expect_exit(EXIT_NOT_ANSWERING);
}

#[test]
fn a_stopped_daemon_is_read_and_left_stopped() {
    let daemon = Daemon::start(Profile::Debug);
    let pid = daemon.pid();
    let (before, _clients) = populate(&daemon);

    signal(pid, Signal::SIGSTOP);
    wait_for("every thread stopped", CHANGE, || {
        let states = thread_states(pid);
        (!states.is_empty() && states.iter().all(|s| *s == 'T')).then_some(())
    });
    assert_admin_times_out(&daemon);

    let probed = probe_json(&["--pid", &pid.to_string()], Source::Live);
    assert_eq!(
        probed, before,
        "the probe read another state than the daemon's"
    );
    // Left as it was found: stopped.
    let states = thread_states(pid);
    assert!(
        states.iter().all(|s| *s == 'T'),
        "the probe woke a stopped daemon: {states:?}"
    );

    signal(pid, Signal::SIGCONT);
    assert_eq!(daemon.state(), before, "the daemon after SIGCONT");
}

#[test]
fn a_daemon_wedged_on_its_table_is_read() {
    let daemon = Daemon::start_wedgeable();
    let pid = daemon.pid();
    let (before, _clients) = populate(&daemon);

    // The request that wedges the table's owner with the table's mutex held.
    let _stuck = daemon
        .client()
        .args(["-r", WEDGE_NAME, "--", "true"])
        .background();
    wait_for("the daemon to log the hook", CHANGE, || {
        daemon.stderr().contains("hang-on-lock").then_some(())
    });
    assert_admin_times_out(&daemon);

    let pid_arg = pid.to_string();
    let probed = probe_json(&["--pid", &pid_arg], Source::Live);
    assert_eq!(probed, before, "frozen read of the wedged daemon");
    // The wedged table does not change, so a read without freezing settles at once.
    let probed = probe_json(&["--pid", &pid_arg, "--no-freeze"], Source::Live);
    assert_eq!(probed, before, "read of the wedged daemon without freezing");

    // The text form names the lockers and entries too.
    let text = dump(&["--pid", &pid_arg]).expect_success();
    for locker in &before.lockers {
        assert!(
            text.contains(&format!("locker {} {}", locker.id, locker.resource_name)),
            "{text}"
        );
    }
    assert!(text.contains("incubating conn"), "{text}");

    // The wedged daemon ignores SIGTERM: kill it by pid.
    signal(pid, Signal::SIGKILL);
}

#[test]
fn a_killed_daemon_is_read_from_its_core_file() {
    let mut daemon = Daemon::start(Profile::Debug);
    let pid = daemon.pid();
    let (before, _clients) = populate(&daemon);
    let dir = tempfile::Builder::new()
        .prefix("probe-core-")
        .tempdir()
        .expect("temporary directory");
    // The very executable the daemon runs, whatever a rebuild does to target/ meanwhile.
    let exe = dir.path().join("latch");
    std::fs::copy(format!("/proc/{pid}/exe"), &exe).expect("copy the daemon's executable");

    let core = gcore(pid, dir.path());
    signal(pid, Signal::SIGKILL);
    assert!(daemon.wait_exit_within(CHANGE).is_some());

    let probed = probe_json(&core_args(&core, &exe), Source::Core);
    assert_eq!(probed, before, "the state in the core file");
}

fn core_args<'a>(core: &'a Path, exe: &'a Path) -> [&'a str; 4] {
    [
        "--core",
        core.to_str().expect("a UTF-8 path"),
        "--exe",
        exe.to_str().expect("a UTF-8 path"),
    ]
}

#[test]
fn a_probe_killed_mid_freeze_leaves_the_daemon_serving() {
    let daemon = Daemon::start(Profile::Debug);
    let pid = daemon.pid();
    let (before, _clients) = populate(&daemon);

    let mut frozen_by = dump(&["--pid", &pid.to_string(), "--hold-frozen-ms", "60000"])
        .stderr(Stdio::null())
        .background();
    // Traced and stopped: state `t` for every thread.
    wait_for("the daemon frozen by the probe", PROBE, || {
        let states = thread_states(pid);
        (!states.is_empty() && states.iter().all(|s| *s == 't')).then_some(())
    });
    signal(frozen_by.pid(), Signal::SIGKILL);
    frozen_by.wait_within(CHANGE);

    wait_for("the daemon running again", CHANGE, || {
        thread_states(pid)
            .iter()
            .all(|s| *s != 't' && *s != 'T')
            .then_some(())
    });
    assert_eq!(
        daemon.state(),
        before,
        "the daemon's state after the probe died"
    );
    // And it still grants locks.
    daemon
        .client()
        .args(["-r", "fresh", "--", "true"])
        .expect_success();
}

#[test]
fn processes_that_are_not_latch_daemons_are_refused() {
    let sleeper = TestCommand::new("sleep").arg("30").background();
    let out = dump(&["--pid", &sleeper.pid().to_string()]).expect_exit(EXIT_NOT_A_LATCH_DAEMON);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a latch daemon"), "{stderr}");
    assert!(out.stdout.is_empty(), "it printed a state anyway");

    // A pid that is gone: not found.
    let mut gone = Command::new("true").spawn().expect("run true");
    let gone_pid = gone.id();
    gone.wait().expect("reap true");
    dump(&["--pid", &gone_pid.to_string()]).expect_exit(EXIT_NOT_FOUND);

    // No target at all: a usage error.
    dump(&[]).expect_exit(EXIT_USAGE);
}
