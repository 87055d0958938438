//! The probe reads a daemon that cannot answer: the state taken from the daemon just before
//! it stops answering equals what `latch-probe dump` reads after (a) SIGSTOP (the daemon is
//! left stopped), (b) `--debug-feature hang-on-lock=NAME` and a lock on NAME (its admin API
//! times out), (c) `gcore` then SIGKILL (read from the core file). And the probe does no
//! harm: killed while the daemon is frozen, it leaves the daemon running and serving; given
//! a process that is not a latch daemon, it refuses it with exit code 3.
//!
//! Needs root (ptrace) and gdb's `gcore`. Every process started is stopped by its pid.

use latch_probe_common::doc::{Source, StateDoc};
use latch_tests::{output_within, probe_bin, wait_for, Background, Daemon, Profile};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// A debug probe indexes a debug daemon's DWARF in about two seconds.
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);
const WEDGED_TIMEOUT_MS: &str = "1000";
const EXIT_NOT_ANSWERING: i32 = 3;
const EXIT_NOT_A_LATCH_DAEMON: i32 = 3;
const EXIT_NOT_FOUND: i32 = 2;
const EXIT_USAGE: i32 = 1;

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
    wait_for("the holders in place", CLIENT_TIMEOUT, || {
        let doc = daemon.state();
        (holding(&doc) == 4 && doc.incubator.len() == 1).then_some(())
    });
    // Then a waiter, so that the queue order is known.
    let mut clients = clients;
    clients.push(daemon.holder(&["-r", "a", "-l", "EX"]));
    clients.push(daemon.holder(&["-r", "num[3]", "-q", "3"]));
    let doc = wait_for("the waiters in place", CLIENT_TIMEOUT, || {
        let doc = daemon.state();
        (waiting(&doc) == 2).then_some(doc)
    });
    assert!(!doc.torn && doc.generation % 2 == 0, "{doc:?}");
    (doc, clients)
}

fn holding(doc: &StateDoc) -> usize {
    doc.lockers.iter().map(|l| l.holders.len()).sum()
}

fn waiting(doc: &StateDoc) -> usize {
    doc.lockers.iter().map(|l| l.waitings.len()).sum()
}

/// `latch-probe dump ARGS`.
fn probe(args: &[&str]) -> Output {
    output_within(
        Command::new(probe_bin()).arg("dump").args(args),
        PROBE_TIMEOUT,
    )
}

/// `latch-probe dump ARGS --json`, which must succeed; its document with `source` set to
/// the daemon's, for comparison, after checking it is `source`.
fn probe_json(args: &[&str], source: Source) -> StateDoc {
    let out = probe(&[args, &["--json"]].concat());
    assert!(
        out.status.success(),
        "latch-probe dump {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut doc: StateDoc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "latch-probe dump printed no state ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(doc.source, source);
    doc.source = Source::Daemon;
    doc
}

/// `latch state --json` on a daemon that cannot answer: it gives up, with exit code 3.
fn assert_admin_times_out(daemon: &Daemon) {
    let out = output_within(
        daemon
            .client()
            .args(["state", "--json", "--timeout-ms", WEDGED_TIMEOUT_MS]),
        CLIENT_TIMEOUT,
    );
    assert_eq!(
        out.status.code(),
        Some(EXIT_NOT_ANSWERING),
        "latch state on a daemon that cannot answer: {}, {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The state letter of every thread of `pid` (`/proc/PID/task/TID/stat`).
fn thread_states(pid: u32) -> Vec<char> {
    let dir = PathBuf::from(format!("/proc/{pid}/task"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.ok()?.path().join("stat")).ok()?;
            stat[stat.rfind(')')? + 1..].trim_start().chars().next()
        })
        .collect()
}

fn signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(pid as i32), signal)
        .unwrap_or_else(|e| panic!("{signal} to pid {pid}: {e}"));
}

#[test]
fn a_stopped_daemon_is_read_and_left_stopped() {
    let daemon = Daemon::start(Profile::Debug);
    let pid = daemon.pid();
    let (before, _clients) = populate(&daemon);

    signal(pid, Signal::SIGSTOP);
    wait_for("every thread stopped", CLIENT_TIMEOUT, || {
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
    let daemon = Daemon::start_with(Profile::Debug, &["--debug-feature", "hang-on-lock=stuck"]);
    let pid = daemon.pid();
    let (before, _clients) = populate(&daemon);

    // The request that wedges the table's owner with the table's mutex held.
    let _stuck = Background::spawn(daemon.client().args(["-r", "stuck", "--", "true"]));
    wait_for("the daemon to log the hook", CLIENT_TIMEOUT, || {
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
    let out = probe(&["--pid", &pid_arg]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
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

    let prefix = dir.path().join("core");
    let out = output_within(
        Command::new("gcore")
            .arg("-o")
            .arg(&prefix)
            .arg(pid.to_string())
            .stdin(Stdio::null()),
        Duration::from_secs(60),
    );
    let core = PathBuf::from(format!("{}.{pid}", prefix.display()));
    assert!(
        out.status.success() && core.is_file(),
        "gcore {pid} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    signal(pid, Signal::SIGKILL);
    assert!(daemon.wait_exit_within(CLIENT_TIMEOUT).is_some());

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

    let mut frozen_by = Background::spawn(
        Command::new(probe_bin())
            .args([
                "dump",
                "--pid",
                &pid.to_string(),
                "--hold-frozen-ms",
                "60000",
            ])
            .stderr(Stdio::null()),
    );
    // Traced and stopped: state `t` for every thread.
    wait_for("the daemon frozen by the probe", PROBE_TIMEOUT, || {
        let states = thread_states(pid);
        (!states.is_empty() && states.iter().all(|s| *s == 't')).then_some(())
    });
    signal(frozen_by.pid(), Signal::SIGKILL);
    frozen_by.wait_within(CLIENT_TIMEOUT);

    wait_for("the daemon running again", CLIENT_TIMEOUT, || {
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
    let out = output_within(
        daemon.client().args(["-r", "fresh", "--", "true"]),
        CLIENT_TIMEOUT,
    );
    assert!(out.status.success(), "a lock after the probe died: {out:?}");
}

#[test]
fn processes_that_are_not_latch_daemons_are_refused() {
    let sleeper = Background::spawn(Command::new("sleep").arg("30"));
    let out = probe(&["--pid", &sleeper.pid().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(EXIT_NOT_A_LATCH_DAEMON),
        "dump of `sleep`: {}, {stderr}",
        out.status
    );
    assert!(stderr.contains("is not a latch daemon"), "{stderr}");
    assert!(out.stdout.is_empty(), "it printed a state anyway");

    // A pid that is gone: not found.
    let mut gone = Command::new("true").spawn().expect("run true");
    let gone_pid = gone.id();
    gone.wait().expect("reap true");
    let out = probe(&["--pid", &gone_pid.to_string()]);
    assert_eq!(
        out.status.code(),
        Some(EXIT_NOT_FOUND),
        "dump of a pid that is gone: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // No target at all: a usage error.
    let out = probe(&[]);
    assert_eq!(out.status.code(), Some(EXIT_USAGE), "{out:?}");
}
