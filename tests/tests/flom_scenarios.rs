//! The scenarios of FLoM's own test suite, driven with the `latch` command line exactly as a
//! flom user would: exit codes and FLoM's messages for them, ordering, element values, the
//! incubator, shutdowns, auto-start with its flock race, TCP, and a holder killed with
//! SIGKILL (section p of tests/data/flom-transcripts.md).
//!
//! Holders that must stay put while something else is checked run a gate command: it writes
//! its element and a "started" mark, then waits for a "stop" file whose content is its exit
//! status. No test depends on a sleep being long enough except where time is the point
//! (timeouts, overlap of two sleeps), and there the margins are generous.
//!
//! Every process is ended by its pid: clients by the harness, auto-started daemons (found
//! through /proc by their executable, `--spawned` and this test's socket) by
//! [`SpawnedDaemons`]. The test process makes itself a child subreaper, so that detached
//! daemons and orphans are reparented to it and can be reaped by pid.

use latch_tests::background::Background;
use latch_tests::bins::{latch_bin, Profile};
use latch_tests::command::TestCommand;
use latch_tests::daemon::{Daemon, DaemonOptions, Endpoint};
use latch_tests::procs::{become_subreaper, children_of, end_pid, reap, running, signal};
use latch_tests::spawned::SpawnedDaemons;
use latch_tests::timeouts::{CHANGE, CLIENT, POLL};
use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a holder whose gate stays shut may run before the test fails.
const HOLDER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long we watch a waiter to be sure it is not granted.
const STILL_WAITING: Duration = Duration::from_millis(400);

const BUSY: &str = "Resource already locked, the lock cannot be obtained\n";
const IMPOSSIBLE: &str = "Resource will never satisfy the request, the lock cannot be obtained\n";
const CANT_WAIT: &str =
    "The resource could be available in the future, but the requester can't wait\n";
const UNLOCK_SEND_FAILED: &str =
    "flom_client_unlock: ret_cod=-130 (ERROR: 'send' function returned an error condition)\n";
const LOCK_RECV_FAILED: &str =
    "flom_client_lock: ret_cod=-126 (ERROR: 'recv' function returned an error condition)\n";

fn timeout_message(ms: u64) -> String {
    format!("The lock was not obtained because timeout ({ms} milliseconds) expired\n")
}

// ---------------------------------------------------------------------------------------
// Helpers

/// Asserts a client's exit status and its whole stdout and stderr.
#[track_caller]
fn check(out: &Output, code: i32, stdout: &str, stderr: &str, what: &str) {
    let got_out = String::from_utf8_lossy(&out.stdout);
    let got_err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(code) && got_out == stdout && got_err == stderr,
        "{what}: expected exit {code}, stdout {stdout:?}, stderr {stderr:?}\n\
         got {}, stdout {got_out:?}, stderr {got_err:?}",
        out.status
    );
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `<client> -r NAME <extra...> -- <command...>`
fn lock_cmd(mut client: TestCommand, name: &str, extra: &[&str], command: &[&str]) -> TestCommand {
    client
        .args(["-r", name])
        .args(extra)
        .arg("--")
        .args(command);
    client
}

/// A client holding a lock until told to go: its command (a shell) writes the element it
/// was given and a "started" mark, then waits for the "stop" file, whose content is its exit
/// status. The client runs in a thread with its output captured.
struct Holder {
    prefix: PathBuf,
    what: String,
    thread: Option<JoinHandle<Output>>,
}

const GATE: &str = r#"echo "$1" > "$0.element"; touch "$0.started"; while [ ! -e "$0.stop" ]; do sleep 0.02; done; exit "$(cat "$0.stop")""#;

impl Holder {
    /// Starts `client -r name extra -- sh -c GATE` without waiting for the lock.
    fn spawn(client: TestCommand, name: &str, extra: &[&str], dir: &Path, tag: &str) -> Holder {
        let prefix = dir.join(tag);
        let prefix_text = prefix
            .to_str()
            .expect("temporary paths are UTF-8")
            .to_owned();
        // A reused tag would find the last holder's marks and stop file.
        let marks = std::fs::read_dir(dir)
            .expect("holder directory")
            .flatten()
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{tag}."))
            });
        assert!(!marks, "holder tag {tag} used twice in {}", dir.display());
        let mut cmd = lock_cmd(client, name, extra, &["sh", "-c", GATE, &prefix_text]);
        let what = format!("holder {tag} ({name} {extra:?})");
        cmd.timeout(HOLDER_TIMEOUT);
        let thread = thread::spawn(move || cmd.output());
        Holder {
            prefix,
            what,
            thread: Some(thread),
        }
    }

    /// Starts it and waits until it holds the lock (its command runs).
    fn start(client: TestCommand, name: &str, extra: &[&str], dir: &Path, tag: &str) -> Holder {
        let h = Holder::spawn(client, name, extra, dir, tag);
        h.wait_started(CHANGE);
        h
    }

    fn file(&self, ext: &str) -> PathBuf {
        let mut s = self.prefix.clone().into_os_string();
        s.push(ext);
        PathBuf::from(s)
    }

    fn started(&self) -> bool {
        self.file(".started").exists()
    }

    #[track_caller]
    fn wait_started(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.started() {
            if self.thread.as_ref().is_some_and(|t| t.is_finished()) || Instant::now() > deadline {
                panic!("{} did not get its lock within {timeout:?}", self.what);
            }
            thread::sleep(POLL);
        }
    }

    /// Asserts that it is still waiting for its lock after a while.
    #[track_caller]
    fn assert_waiting(&self) {
        thread::sleep(STILL_WAITING);
        assert!(
            !self.started(),
            "{} was granted while it should wait",
            self.what
        );
        assert!(
            !self.thread.as_ref().is_some_and(|t| t.is_finished()),
            "{} exited while it should wait",
            self.what
        );
    }

    /// The element its command was given ("" for resources without elements).
    fn element(&self) -> String {
        std::fs::read_to_string(self.file(".element"))
            .unwrap_or_else(|e| panic!("{}: no element file: {e}", self.what))
            .trim_end()
            .to_owned()
    }

    fn stop(&self, code: i32) {
        let stop = self.file(".stop");
        if stop.exists() {
            return;
        }
        let tmp = self.file(".stop.tmp");
        std::fs::write(&tmp, code.to_string()).expect("writing the stop file");
        std::fs::rename(&tmp, &stop).expect("renaming the stop file");
    }

    /// Lets its command exit with `code`; returns the client's output.
    fn release(mut self, code: i32) -> Output {
        self.stop(code);
        let thread = self.thread.take().expect("not released twice");
        thread
            .join()
            .unwrap_or_else(|_| panic!("{}: the client did not finish", self.what))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // On a failed test: the gate opens, so the client unlocks and exits by itself (its
        // own timeout stops it by pid otherwise).
        self.stop(0);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("latch-flom-")
        .tempdir()
        .expect("temporary directory")
}

/// A client for a socket path with no daemon behind it (yet).
fn client_for(socket: &Path) -> TestCommand {
    let mut cmd = TestCommand::new(latch_bin(Profile::Debug));
    cmd.arg("-s").arg(socket);
    cmd
}

// ---------------------------------------------------------------------------------------
// 1. Two sleeps on one resource run one after the other; on two resources, concurrently.

/// Runs two clients at once, each `sh -c` logging "start <ns>" and "end <ns>" around a
/// sleep; returns the log's events in order as (kind, client, ns).
fn two_sleepers(daemon: &Daemon, names: [&str; 2], sleep: &str) -> Vec<(String, String, u64)> {
    let dir = tempdir();
    let log = dir.path().join("log");
    let log_text = log.to_str().expect("UTF-8 path").to_owned();
    let script = format!(
        r#"echo "start $1 $(date +%s%N)" >> "$0"; sleep {sleep}; echo "end $1 $(date +%s%N)" >> "$0""#
    );
    let mut clients: Vec<Background> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let tag = format!("c{i}");
            lock_cmd(
                daemon.client(),
                name,
                &[],
                &["sh", "-c", &script, &log_text, &tag],
            )
            .background()
        })
        .collect();
    for c in &mut clients {
        let status = c.wait_within(CLIENT);
        assert!(status.success(), "sleeper on {names:?}: {status}");
    }
    std::fs::read_to_string(&log)
        .expect("the sleepers' log")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // The element, if any, is appended after the tag: none for these names.
            (f[0].to_owned(), f[1].to_owned(), f[2].parse().expect("ns"))
        })
        .collect()
}

#[test]
fn same_resource_serializes_different_resources_run_concurrently() {
    let daemon = Daemon::start(Profile::Debug);
    let same = two_sleepers(&daemon, ["foo", "foo"], "0.5");
    let kinds: Vec<&str> = same.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        kinds,
        ["start", "end", "start", "end"],
        "same resource: {same:?}"
    );
    assert_eq!(
        same[0].1, same[1].1,
        "one client's start and end first: {same:?}"
    );
    assert!(same[1].2 <= same[2].2, "no overlap: {same:?}");

    // Different names: the second starts while the first sleeps (1 s: a generous margin
    // for two client start-ups).
    let diff = two_sleepers(&daemon, ["foo", "bar"], "1");
    let kinds: Vec<&str> = diff.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        kinds,
        ["start", "start", "end", "end"],
        "different resources: {diff:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 2. Busy with -o 0, timeout with -o N.

#[test]
fn a_busy_resource_is_refused_at_once_with_o_0_and_after_the_timeout_with_o_n() {
    let daemon = Daemon::start(Profile::Debug);
    let dir = tempdir();
    let holder = Holder::start(daemon.client(), "foo", &[], dir.path(), "h");

    let t = Instant::now();
    let out = lock_cmd(daemon.client(), "foo", &["-o", "0"], &["true"]).output();
    check(&out, 98, "", BUSY, "-o 0 while held");
    assert!(t.elapsed() < Duration::from_secs(3), "-o 0 must not wait");

    let t = Instant::now();
    let out = lock_cmd(daemon.client(), "foo", &["-o", "1000"], &["true"]).output();
    let waited = t.elapsed();
    check(&out, 98, "", &timeout_message(1000), "-o 1000 while held");
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(6),
        "-o 1000 waited {waited:?}"
    );
    // The timed-out waiter left the queue: the holder's release grants nobody, and the
    // next client gets the lock at once.
    check(&holder.release(0), 0, "", "", "holder");
    let out = lock_cmd(daemon.client(), "foo", &["-o", "0"], &["true"]).output();
    check(&out, 0, "", "", "after the holder");
}

// ---------------------------------------------------------------------------------------
// 3. Lock modes.

#[test]
fn lock_modes_are_granted_or_refused_by_the_compatibility_matrix() {
    let daemon = Daemon::start(Profile::Debug);
    let dir = tempdir();
    // (held, asked, granted?) — a few cells of the matrix, with flom's spellings of -l.
    for (i, (held, asked, granted)) in [
        ("CR", "EX", false),
        ("CR", "Exclusive", false),
        ("CW", "CW", true),
        ("PR", "PR", true),
        ("PR", "cw", false),
        ("ProtectedWrite", "ConcurrentRead", true),
        ("EX", "NL", true),
        ("EX", "nl", true),
        ("NullLock", "EXCL", true),
    ]
    .into_iter()
    .enumerate()
    {
        let what = format!("{held} held, {asked} asked with -o 0");
        let tag = format!("h{i}");
        let holder = Holder::start(daemon.client(), "foo", &["-l", held], dir.path(), &tag);
        let out = lock_cmd(daemon.client(), "foo", &["-l", asked, "-o", "0"], &["true"]).output();
        if granted {
            check(&out, 0, "", "", &what);
        } else {
            check(&out, 98, "", BUSY, &what);
        }
        check(&holder.release(0), 0, "", "", &what);
    }
}

// ---------------------------------------------------------------------------------------
// 4. Numeric resources.

#[test]
fn a_numeric_resource_grants_quantities_up_to_its_total() {
    let daemon = Daemon::start(Profile::Debug);
    let dir = tempdir();
    let h1 = Holder::start(daemon.client(), "foo[2]", &[], dir.path(), "h1");
    let h2 = Holder::start(daemon.client(), "foo[2]", &[], dir.path(), "h2");
    let h3 = Holder::spawn(daemon.client(), "foo[2]", &[], dir.path(), "h3");
    h3.assert_waiting();
    check(&h1.release(0), 0, "", "", "first unit's holder");
    h3.wait_started(CHANGE);
    check(&h2.release(0), 0, "", "", "second unit's holder");

    // One unit held: two cannot be had without waiting.
    let out = lock_cmd(
        daemon.client(),
        "foo[2]",
        &["-q", "2", "-o", "0"],
        &["true"],
    )
    .output();
    check(&out, 98, "", BUSY, "-q 2 -o 0 with one unit held");
    let out = lock_cmd(
        daemon.client(),
        "foo[2]",
        &["-q", "1", "-o", "0"],
        &["true"],
    )
    .output();
    check(&out, 0, "", "", "-q 1 -o 0 with one unit free");
    check(&h3.release(0), 0, "", "", "third holder");
    let out = lock_cmd(
        daemon.client(),
        "foo[2]",
        &["-q", "2", "-o", "0"],
        &["true"],
    )
    .output();
    check(&out, 0, "", "", "-q 2 -o 0 with both units free");

    // More than there is: impossible, at once (FLoM: rc 6, exit 99).
    let out = lock_cmd(daemon.client(), "foo[2]", &["-q", "3"], &["true"]).output();
    check(&out, 99, "", IMPOSSIBLE, "-q 3 on foo[2]");
    // foo[3] is another resource than foo[2].
    let out = lock_cmd(daemon.client(), "foo[3]", &["-q", "3"], &["true"]).output();
    check(&out, 0, "", "", "-q 3 on foo[3]");
}

// ---------------------------------------------------------------------------------------
// 5. Set resources.

#[test]
fn a_set_resource_grants_each_element_to_one_holder_at_a_time() {
    let daemon = Daemon::start(Profile::Debug);
    let dir = tempdir();
    let name = "red.green.blue";
    let holders: Vec<Holder> = ["h1", "h2", "h3"]
        .iter()
        .map(|tag| Holder::start(daemon.client(), name, &[], dir.path(), tag))
        .collect();
    let elements: Vec<String> = holders.iter().map(Holder::element).collect();
    assert_eq!(elements, ["red", "green", "blue"]);
    let out = lock_cmd(
        daemon.client(),
        name,
        &["-o", "0"],
        &["sh", "-c", r#"echo "element=$0""#],
    )
    .output();
    check(&out, 98, "", BUSY, "a fourth with -o 0");

    // Section g of tests/data/flom-transcripts.md: a fifth waits, and gets the element the next leaver gives back.
    let fifth = Holder::spawn(daemon.client(), name, &[], dir.path(), "h5");
    fifth.assert_waiting();
    let mut holders = holders.into_iter();
    let (h1, h2, h3) = (holders.next(), holders.next(), holders.next());
    check(&h2.expect("h2").release(0), 0, "", "", "green's holder");
    fifth.wait_started(CHANGE);
    assert_eq!(fifth.element(), "green");
    for h in [h1, h3].into_iter().flatten() {
        check(&h.release(0), 0, "", "", "holder");
    }
    check(&fifth.release(0), 0, "", "", "fifth");

    // Section g2 of tests/data/flom-transcripts.md: red held; sequential grants red, green, blue, green, green.
    let dir2 = tempdir();
    let red = Holder::start(daemon.client(), "a.b.c", &[], dir2.path(), "red");
    assert_eq!(red.element(), "a");
    let mut got = Vec::new();
    for _ in 0..4 {
        let out = lock_cmd(daemon.client(), "a.b.c", &[], &["echo"]).output();
        check(&out, 0, &stdout_of(&out), "", "sequential set client");
        got.push(stdout_of(&out).trim_end().to_owned());
    }
    assert_eq!(
        got,
        ["b", "c", "b", "b"],
        "round-robin index moves on every grant"
    );
    check(&red.release(0), 0, "", "", "holder of a");
}

// ---------------------------------------------------------------------------------------
// 6. Hierarchical resources.

#[test]
fn a_hierarchical_resource_conflicts_with_its_ancestors_and_descendants() {
    let daemon = Daemon::start(Profile::Debug);
    let dir = tempdir();
    let try_now = |name: &str| lock_cmd(daemon.client(), name, &["-o", "0"], &["true"]).output();

    let apple = Holder::start(daemon.client(), "/apple", &[], dir.path(), "apple");
    check(&try_now("/pear"), 0, "", "", "/pear beside /apple");
    check(
        &try_now("/apple/pear"),
        98,
        "",
        BUSY,
        "/apple/pear under /apple",
    );
    check(&try_now("/apple"), 98, "", BUSY, "/apple itself");
    // A blocking /apple/pear waits for /apple, then runs.
    let pear = Holder::spawn(daemon.client(), "/apple/pear", &[], dir.path(), "pear");
    pear.assert_waiting();
    check(&apple.release(0), 0, "", "", "/apple");
    pear.wait_started(CHANGE);
    check(&pear.release(0), 0, "", "", "/apple/pear");

    let banana = Holder::start(
        daemon.client(),
        "/apple/pear/banana",
        &[],
        dir.path(),
        "banana",
    );
    check(
        &try_now("/apple/watermelon"),
        0,
        "",
        "",
        "/apple/watermelon beside",
    );
    check(&try_now("/apple"), 98, "", BUSY, "/apple above the banana");
    check(
        &try_now("/apple/pear"),
        98,
        "",
        BUSY,
        "/apple/pear above the banana",
    );
    check(
        &try_now("/apple/pear/banana/split"),
        98,
        "",
        BUSY,
        "below the banana",
    );
    check(
        &try_now("/apple/pearl"),
        0,
        "",
        "",
        "/apple/pearl is no ancestor",
    );
    check(&banana.release(0), 0, "", "", "/apple/pear/banana");
}

// ---------------------------------------------------------------------------------------
// 7. Sequences.

/// One sequential call per entry ("true", "false", "echo", or a shell script run with the
/// element as $0); returns the stdout of each and checks the exit statuses.
fn sequence_calls(daemon: &Daemon, name: &str, calls: &[(&str, i32)]) -> Vec<String> {
    calls
        .iter()
        .map(|(call, code)| {
            let command: Vec<&str> = match *call {
                "true" | "false" | "echo" => vec![*call],
                script => vec!["sh", "-c", script],
            };
            let out = lock_cmd(daemon.client(), name, &["-i", "1000"], &command).expect_exit(*code);
            assert!(out.stderr.is_empty(), "{name}: {call}: {out:?}");
            stdout_of(&out).trim_end().to_owned()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn sequences_give_the_values_flom_s_test_suite_expects() {
    // The suite's thirteen calls: reused rolled-back values for _S_, never for _s_.
    let daemon = Daemon::start(Profile::Debug);
    let calls: Vec<(&str, i32)> = [
        "true", "true", "true", "echo", "true", "true", "echo", "false", "echo", "false", "echo",
        "true", "echo",
    ]
    .iter()
    .map(|c| (*c, i32::from(*c == "false")))
    .collect();
    assert_eq!(calls.len(), 13);
    assert_eq!(
        sequence_calls(&daemon, "_S_suite[1]", &calls).join(" "),
        "4 7 8 9 11"
    );
    assert_eq!(
        sequence_calls(&daemon, "_s_suite[1]", &calls).join(" "),
        "4 7 9 11 13"
    );
}

/// Sections i1 (`_s_`) and i2 (`_S_`) of tests/data/flom-transcripts.md through the CLI: c1 holds while c2..c5 come and
/// go (c3 failing), c6 comes after c1 left.
#[test]
fn sequences_give_the_recorded_values_through_the_command_line() {
    let daemon = Daemon::start(Profile::Debug);
    for (name, want) in [
        ("_s_seq[3]", ["1", "2", "3", "4", "5", "6"]),
        ("_S_seq[3]", ["1", "2", "3", "3", "4", "5"]),
    ] {
        let dir = tempdir();
        let c1 = Holder::start(daemon.client(), name, &[], dir.path(), "c1");
        let mut got = vec![c1.element()];
        got.extend(sequence_calls(
            &daemon,
            name,
            &[
                ("echo", 0),
                (r#"echo "$0"; exit 1"#, 1),
                ("echo", 0),
                ("echo", 0),
            ],
        ));
        check(&c1.release(0), 0, "", "", "c1");
        got.extend(sequence_calls(&daemon, name, &[("echo", 0)]));
        assert_eq!(got, want, "{name}");
    }
}

/// A mix of our own: two values rolled back while held together come back first in, first
/// out; a command killed by a signal rolls back too (latch's documented difference: FLoM
/// reports it as success).
#[test]
fn sequences_reuse_rolled_back_values_in_order() {
    let daemon = Daemon::start(Profile::Debug);
    for (name, echoes, held) in [
        ("_S_mix[3]", ["1", "2", "4", "3", "5", "6"], ["3", "4"]),
        ("_s_mix[3]", ["1", "4", "7", "8", "9", "11"], ["5", "6"]),
    ] {
        let dir = tempdir();
        let mut got = sequence_calls(
            &daemon,
            name,
            &[("echo", 0), ("false", 1), ("false", 1), ("echo", 0)],
        );
        let a = Holder::start(daemon.client(), name, &["-i", "1000"], dir.path(), "a");
        let b = Holder::start(daemon.client(), name, &["-i", "1000"], dir.path(), "b");
        assert_eq!([a.element(), b.element()], held, "{name}: held values");
        // B, then A, fail: their values are returned in that order.
        assert_eq!(b.release(1).status.code(), Some(1));
        assert_eq!(a.release(1).status.code(), Some(1));
        got.extend(sequence_calls(
            &daemon,
            name,
            &[
                ("echo", 0),
                ("echo", 0),
                ("echo", 0),
                ("kill -9 $$", 137),
                ("echo", 0),
            ],
        ));
        assert_eq!(got, echoes, "{name}: 13 calls");
    }
}

// ---------------------------------------------------------------------------------------
// 8. create=no and the incubator.

#[test]
fn create_no_waits_in_the_incubator_until_another_client_creates_the_resource() {
    let daemon = Daemon::start(Profile::Debug);
    let out = lock_cmd(
        daemon.client(),
        "/bar",
        &["-e", "n", "-o", "100"],
        &["true"],
    )
    .output();
    check(
        &out,
        98,
        "",
        &timeout_message(100),
        "-e n -o 100 on nothing",
    );
    let out = lock_cmd(daemon.client(), "/bar", &["-e", "no", "-o", "0"], &["true"]).output();
    check(&out, 96, "", CANT_WAIT, "-e no -o 0 on nothing");

    let out = lock_cmd(
        daemon.client(),
        "/foo",
        &["-e", "y", "-i", "2000"],
        &["true"],
    )
    .output();
    check(&out, 0, "", "", "-e y -i 2000");
    let out = lock_cmd(daemon.client(), "/foo", &["-e", "n"], &["true"]).output();
    check(&out, 0, "", "", "-e n on the resource kept by -i 2000");

    // Section k2 of tests/data/flom-transcripts.md: an incubated waiter runs once someone creates the resource.
    let dir = tempdir();
    let waiter = Holder::spawn(daemon.client(), "later", &["-e", "no"], dir.path(), "w");
    waiter.assert_waiting();
    daemon.wait_state("the waiter is incubated", |s| {
        s.incubator
            .iter()
            .any(|e| e.request.resource_name == "later")
    });
    let out = lock_cmd(daemon.client(), "later", &[], &["true"]).output();
    check(&out, 0, "", "", "creator");
    waiter.wait_started(CHANGE);
    check(&waiter.release(0), 0, "", "", "incubated waiter");
}

// ---------------------------------------------------------------------------------------
// 9. -X and -x.

#[test]
fn immediate_shutdown_kills_the_daemon_at_once() {
    let mut daemon = Daemon::start(Profile::Debug);
    let dir = tempdir();
    let holder = Holder::start(daemon.client(), "foo", &[], dir.path(), "h");
    let mut waiter_cmd = lock_cmd(daemon.client(), "foo", &[], &["true"]);
    let waiter = thread::spawn(move || waiter_cmd.output());
    daemon.wait_state("the waiter is queued", |s| {
        s.lockers.iter().any(|l| !l.waitings.is_empty())
    });

    let t = Instant::now();
    let out = daemon.client().arg("-X").output();
    check(
        &out,
        0,
        "Starting FLoM daemon immediate shutdown...\n",
        "",
        "-X",
    );
    let exit = daemon.wait_exit_within(Duration::from_secs(3));
    assert!(exit.is_some(), "the daemon must exit at once after -X");
    assert!(t.elapsed() < Duration::from_secs(3));
    // latch removes its socket (FLoM leaves it stale; docs/flom-differences.md).
    assert!(!daemon.socket().exists(), "socket left behind");

    let waiter = waiter.join().expect("waiter thread");
    check(
        &waiter,
        99,
        "",
        LOCK_RECV_FAILED,
        "waiter of a daemon stopped by -X",
    );
    check(
        &holder.release(0),
        99,
        "",
        UNLOCK_SEND_FAILED,
        "holder of a daemon stopped by -X",
    );
}

#[test]
fn quiesce_shutdown_lets_the_holder_finish() {
    let mut daemon = Daemon::start(Profile::Debug);
    let dir = tempdir();
    let holder = Holder::start(daemon.client(), "foo", &[], dir.path(), "h");
    let out = daemon.client().arg("-x").output();
    check(
        &out,
        0,
        "Starting FLoM daemon quiesce shutdown...\n",
        "",
        "-x",
    );
    assert!(
        daemon
            .wait_exit_within(Duration::from_millis(300))
            .is_none(),
        "-x must not stop the daemon while a lock is held"
    );
    check(&holder.release(0), 0, "", "", "holder after -x");
    // As in section m1 of tests/data/flom-transcripts.md: it still serves a new client, then exits by itself when idle.
    let out = lock_cmd(daemon.client(), "bar", &["-d", "0"], &["true"]).output();
    check(&out, 0, "", "", "a client after -x");
    let exit = daemon.wait_exit_within(Duration::from_secs(8));
    assert!(
        exit.is_some_and(|s| s.success()),
        "after -x the daemon must exit once idle: {exit:?}; stderr:\n{}",
        daemon.stderr()
    );
}

// ---------------------------------------------------------------------------------------
// 10. Errors: FLoM's exit codes and messages.

#[test]
fn each_error_exits_with_flom_s_code_and_message() {
    let daemon = Daemon::start(Profile::Debug);
    let dir = tempdir();
    let nosock = dir.path().join("no-daemon");
    let c = || daemon.client();
    let l =
        |name: &str, extra: &[&str], command: &[&str]| lock_cmd(c(), name, extra, command).output();

    check(&l("foo", &[], &["true"]), 0, "", "", "true");
    check(&l("foo", &[], &["false"]), 1, "", "", "false");
    check(&l("foo", &[], &["sh", "-c", "exit 7"]), 7, "", "", "exit 7");
    check(
        &l("foo", &[], &["sh", "-c", "exit 200"]),
        200,
        "",
        "",
        "exit 200",
    );
    // FLoM: exit 0 and rollback 0; latch: 128+9 (docs/flom-differences.md).
    check(
        &l("foo", &[], &["sh", "-c", "kill -9 $$"]),
        137,
        "",
        "",
        "killed command",
    );
    check(
        &l("num[3]", &["-q", "4"], &["true"]),
        99,
        "",
        IMPOSSIBLE,
        "num[3] -q 4",
    );
    check(&l("num[0]", &[], &["true"]), 99, "", IMPOSSIBLE, "num[0]");
    check(
        &l("nothere", &["-e", "no", "-o", "0"], &["true"]),
        96,
        "",
        CANT_WAIT,
        "-e no -o 0",
    );
    for bad in [
        "1bad",
        "a_b",
        "foo bar",
        "",
        "num[x]",
        "red..blue",
        "/a//b",
        "/",
        "_t_[1]",
    ] {
        check(
            &l(bad, &[], &["true"]),
            99,
            &format!("ERROR: '{bad}' is not a valid name for a resource\n"),
            "flom_config_set_resource_name: ret_cod=-14\n",
            &format!("invalid name {bad:?}"),
        );
    }
    check(
        &l("_RESOURCE", &[], &["true"]),
        99,
        "ERROR: '_RESOURCE' is a reserved resource name and can not be set by user\n",
        "flom_config_set_resource_name: ret_cod=-14\n",
        "reserved name",
    );
    // No -r: the default resource, granted.
    check(&c().args(["--", "true"]).output(), 0, "", "", "no -r");
    // A timestamp format with nothing that changes at least hourly.
    check(
        &l("_t_%Y-%m-%d[1]", &[], &["true"]),
        99,
        "ERROR: '_t_%Y-%m-%d[1]' is not a valid name for a resource\n",
        "flom_config_set_resource_name: ret_cod=-14\n",
        "timestamp without a fast specifier",
    );
    check(
        &c().args(["-r", "foo"]).output(),
        97,
        "",
        "No command to execute!\n",
        "no command",
    );
    for cmd in ["nonexistentcmd123", "/nonexistent/cmd"] {
        let out = l("foo", &[], &[cmd]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(97), "{cmd}: {out:?}");
        assert!(out.stdout.is_empty(), "{cmd}: {out:?}");
        // "\n** (flom:PID): WARNING **: HH:MM:SS.mmm: Unable to ..." with latch for flom.
        assert!(
            err.starts_with("\n** (latch:")
                && err.contains("): WARNING **: ")
                && err.ends_with(&format!(": Unable to execute command '{cmd}'\n\n")),
            "{cmd}: stderr {err:?}"
        );
    }
    // The failed command's lock was released (with rollback): the resource is free.
    check(
        &l("foo", &["-o", "0"], &["true"]),
        0,
        "",
        "",
        "after exec failure",
    );
    check(
        &l("foo", &["-l", "xx"], &["true"]),
        99,
        "",
        "lock-mode: 'xx' is an invalid value\n",
        "-l xx",
    );
    check(
        &l("foo", &["-l", ""], &["true"]),
        99,
        "",
        "lock-mode: '' is an invalid value\n",
        "-l ''",
    );
    check(
        &l("foo", &["-e", "1", "-o", "50"], &["true"]),
        99,
        "resource-create: '1' is an invalid value\n",
        "",
        "-e 1",
    );
    check(
        &l("foo", &["-e", "maybe"], &["true"]),
        0,
        "",
        "",
        "-e maybe means yes",
    );
    check(
        &l("num[2]", &["-q", "-3"], &["true"]),
        0,
        "",
        "Resource quantity ignored because negative values (-3) are meaningless\n",
        "-q -3",
    );
    check(
        &l("foo", &["-o", "-5"], &["true"]),
        0,
        "",
        "",
        "-o -5 waits forever",
    );
    // -s with -a.
    check(
        &c().args(["-a", "127.0.0.1", "-r", "foo", "--", "true"]).output(),
        99,
        "ERROR: flom can not be configured for local (UNIX socket) and network (TCP-UDP/IP) communication at the same time.\n",
        "Configuration is not valid, cannot go on!\n",
        "-s with -a",
    );
    // -s with -A.
    check(
        &c().args(["-A", "224.0.0.1", "-r", "foo", "--", "true"]).output(),
        99,
        "ERROR: flom can not be configured for local (UNIX socket) and network (TCP-UDP/IP) communication at the same time.\n",
        "Configuration is not valid, cannot go on!\n",
        "-s with -A",
    );
    // No daemon, and none may be started.
    check(
        &client_for(&nosock).args(["-d", "0", "-r", "foo", "--", "true"]).output(),
        99,
        "",
        "flom_client_connect: ret_cod=-105 (ERROR: 'connect' function returned an error condition)\n",
        "-d 0 without a daemon",
    );
    check(
        &client_for(&nosock).arg("-x").output(),
        99,
        "Starting FLoM daemon quiesce shutdown...\n",
        "",
        "-x without a daemon",
    );
    check(
        &client_for(&nosock).arg("-X").output(),
        99,
        "Starting FLoM daemon immediate shutdown...\n",
        "",
        "-X without a daemon",
    );
    assert!(
        !nosock.exists(),
        "no daemon was started for the -d 0 / -x / -X clients"
    );
}

// ---------------------------------------------------------------------------------------
// Auto-start, its idle exit, the flock race, a stale socket (section m3 of
// tests/data/flom-transcripts.md).

#[test]
fn an_auto_started_daemon_serves_then_exits_once_idle_for_its_lifespan() {
    let dir = tempdir();
    let socket = dir.path().join("sock");
    let mut spawned = SpawnedDaemons::new(&socket);
    let out = client_for(&socket)
        .args(["-d", "2000", "-r", "foo", "--", "true"])
        .output();
    check(&out, 0, "", "", "first client, no daemon running");
    let pid = spawned.the_one();
    assert!(
        socket.exists(),
        "the auto-started daemon listens on {}",
        socket.display()
    );
    let lock = PathBuf::from(format!("{}.lock", socket.display()));
    assert!(lock.exists(), "the start-up lock file {}", lock.display());
    // A second client uses it instead of starting another.
    let out = client_for(&socket)
        .args(["-d", "2000", "-r", "foo", "--", "true"])
        .output();
    check(&out, 0, "", "", "second client");
    assert_eq!(spawned.the_one(), pid);

    // Idle: the resource goes (~1.75 s), then the daemon after its lifespan (2 s);
    // FLoM's was seen to exit after about L + 2 s.
    let left = Instant::now();
    let deadline = left + Duration::from_secs(8);
    while socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the auto-started daemon (pid {pid}) did not exit after being idle"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        left.elapsed() >= Duration::from_secs(2),
        "the daemon exited {:?} after its last client, before its lifespan (2 s)",
        left.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while running(pid) {
        assert!(
            Instant::now() < deadline,
            "pid {pid} removed its socket but runs on"
        );
        thread::sleep(POLL);
    }
    reap(pid);
    assert!(lock.exists(), "the .lock file stays, as FLoM's");
}

/// Sections k1 and k4 of tests/data/flom-transcripts.md: a daemon that never created a
/// resource exits after about a third of its lifespan (FLoM's was seen to exit after 1.0 s
/// with a lifespan of 3000 ms, after 0.1 s with 300 ms).
#[test]
fn an_auto_started_daemon_without_resources_exits_after_a_third_of_its_lifespan() {
    let dir = tempdir();
    let socket = dir.path().join("sock");
    let mut spawned = SpawnedDaemons::new(&socket);
    let out = client_for(&socket)
        .args([
            "-d", "3000", "-r", "foo", "-e", "no", "-o", "0", "--", "true",
        ])
        .output();
    check(&out, 96, "", CANT_WAIT, "-e no -o 0 on a fresh daemon");
    let left = Instant::now();
    // Remembered, to be ended by pid if the test fails.
    let pids = spawned.running();
    while socket.exists() {
        assert!(
            left.elapsed() < Duration::from_secs(4),
            "the auto-started daemon {pids:?} did not exit after a third of its lifespan"
        );
        thread::sleep(POLL);
    }
    assert!(
        left.elapsed() >= Duration::from_millis(500),
        "exited after {:?}: sooner than a third of 3 s",
        left.elapsed()
    );
}

#[test]
fn autostart_flock_race_starts_exactly_one_daemon() {
    let dir = tempdir();
    let socket = dir.path().join("sock");
    let mut spawned = SpawnedDaemons::new(&socket);
    let clients: Vec<JoinHandle<Output>> = (0..10)
        .map(|i| {
            let mut cmd = client_for(&socket);
            cmd.args(["-d", "3000", "-r", &format!("race{i}"), "--", "true"]);
            thread::spawn(move || cmd.output())
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let out = c.join().expect("client thread");
        check(&out, 0, "", "", &format!("racing client {i}"));
    }
    let pid = spawned.the_one();
    // And it stays the only one (no late loser binding the socket again).
    thread::sleep(Duration::from_millis(200));
    assert_eq!(spawned.running(), [pid]);
    let out = client_for(&socket)
        .args(["-d", "3000", "-r", "after", "--", "true"])
        .output();
    check(&out, 0, "", "", "a client after the race");
    assert_eq!(spawned.running(), [pid]);
}

#[test]
fn autostart_replaces_a_stale_socket() {
    let dir = tempdir();
    let socket = dir.path().join("sock");
    // A socket file nobody listens on, as FLoM's -X leaves behind (m2, m3).
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    assert!(socket.exists());
    let refused = std::os::unix::net::UnixStream::connect(&socket).expect_err("stale");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let mut spawned = SpawnedDaemons::new(&socket);
    let out = client_for(&socket)
        .args(["-d", "1000", "-r", "foo", "--", "true"])
        .output();
    check(&out, 0, "", "", "client on a stale socket");
    spawned.the_one();
}

// ---------------------------------------------------------------------------------------
// TCP, and a holder killed with SIGKILL.

#[test]
fn clients_are_served_over_tcp_on_loopback() {
    let daemon = DaemonOptions::new(Profile::Debug)
        .endpoint(Endpoint::TcpLoopback)
        .start();
    let dir = tempdir();
    let out = lock_cmd(daemon.client(), "foo", &["-d", "0"], &["true"]).output();
    check(&out, 0, "", "", "TCP client");
    let holder = Holder::start(daemon.client(), "foo", &["-d", "0"], dir.path(), "h");
    let out = lock_cmd(daemon.client(), "foo", &["-d", "0", "-o", "0"], &["true"]).output();
    check(&out, 98, "", BUSY, "TCP busy");
    check(&holder.release(0), 0, "", "", "TCP holder");
    let out = lock_cmd(
        daemon.client(),
        "red.green",
        &["-d", "0"],
        &["sh", "-c", r#"echo "element=$0""#],
    )
    .output();
    check(&out, 0, "element=red\n", "", "TCP set element");
}

#[test]
fn a_killed_holder_releases_to_the_waiter() {
    become_subreaper();
    let daemon = Daemon::start(Profile::Debug);
    let dir = tempdir();
    let started = dir.path().join("started");
    let started_text = started.to_str().expect("UTF-8").to_owned();
    let mut holder = lock_cmd(
        daemon.client(),
        "foo",
        &[],
        &["sh", "-c", r#"touch "$0"; exec sleep 30"#, &started_text],
    )
    .background();
    let deadline = Instant::now() + CHANGE;
    while !started.exists() {
        assert!(Instant::now() < deadline, "the holder never got its lock");
        thread::sleep(POLL);
    }
    let sleeper = children_of(holder.pid());
    assert_eq!(sleeper.len(), 1, "the holder's command: {sleeper:?}");

    let granted = dir.path().join("granted");
    let mut waiter = lock_cmd(
        daemon.client(),
        "foo",
        &[],
        &["touch", granted.to_str().expect("UTF-8")],
    )
    .background();
    daemon.wait_state("the waiter is queued", |s| {
        s.lockers
            .iter()
            .any(|l| l.resource_name == "foo" && l.waitings.len() == 1)
    });

    signal(holder.pid(), Signal::SIGKILL);
    let status = holder.wait_within(CLIENT);
    assert_eq!(status.signal(), Some(9), "holder: {status}");
    let t = Instant::now();
    let status = waiter.wait_within(Duration::from_secs(5));
    assert!(status.success(), "waiter: {status}");
    assert!(granted.exists(), "the waiter's command ran");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "granted at the holder's death, not after its sleep"
    );
    let s = daemon.state();
    assert!(
        s.lockers
            .iter()
            .all(|l| l.holders.is_empty() && l.waitings.is_empty()),
        "nothing held or waiting at the end: {s:?}"
    );
    // The killed client's command outlived it; end it by pid.
    for pid in sleeper {
        end_pid(pid);
    }
}

/// flom's negative values: `-d -1` (a daemon that never exits), `-o -1` (wait forever) and
/// `-i -1`, in the client, in the daemon it starts, and in `latch daemon` itself.
#[test]
fn negative_numbers_as_flom_takes_them() {
    // `latch daemon -d -1` parses and serves.
    let daemon = DaemonOptions::new(Profile::Debug)
        .args(&["-d", "-1"])
        .start();
    let out = daemon
        .client()
        .args(["-o", "-1", "-i", "-1", "-r", "neg", "--", "true"])
        .output();
    check(&out, 0, "", "", "-o -1 -i -1 against a running daemon");

    // The most common flom idiom: a client that starts a daemon that never exits.
    let dir = tempdir();
    let socket = dir.path().join("sock");
    let mut spawned = SpawnedDaemons::new(&socket);
    let out = client_for(&socket)
        .args(["-d", "-1", "-r", "x", "--", "true"])
        .output();
    check(&out, 0, "", "", "-d -1 with no daemon running");
    let pid = spawned.the_one();
    // Idle for longer than a lifespan of 300 ms would allow (a third of it without
    // resources, as FLoM's was seen to exit), it still answers.
    thread::sleep(Duration::from_millis(1500));
    assert!(
        running(pid),
        "the -d -1 daemon (pid {pid}) exited while idle"
    );
    let out = client_for(&socket)
        .args(["-d", "-1", "-r", "x", "--", "true"])
        .output();
    check(&out, 0, "", "", "a second client of the -d -1 daemon");
    assert_eq!(
        spawned.the_one(),
        pid,
        "the second client used the same daemon"
    );
}

// ---------------------------------------------------------------------------------------
// FLoM's own test groups (tests/*.at in FLoM's repository) not covered above; each test
// names the .at file and its AT_SETUP. docs/flom-tests.md maps every group to our tests.

/// The VMS DLM compatibility of FLoM's lock modes: `COMPATIBLE[held][asked]`, in wire order
/// NL CR CW PR PW EX.
const COMPATIBLE: [[bool; 6]; 6] = [
    [true, true, true, true, true, true],
    [true, true, true, true, true, false],
    [true, true, true, false, false, false],
    [true, true, false, true, false, false],
    [true, true, false, false, false, false],
    [true, false, false, false, false, false],
];
const MODES: [&str; 6] = ["NL", "CR", "CW", "PR", "PW", "EX"];

/// usecase.at.in, "Use case 5 (3/9/CW-PR)" to "Use case 5 (9/9)": every cell of the mode
/// matrix, a holder in one mode and a client asking another with `-o 0`: granted at once, or
/// refused busy (98) with FLoM's message.
#[test]
fn every_cell_of_the_lock_mode_matrix_as_use_case_5() {
    let daemon = Daemon::start(Profile::Debug);
    let dir = tempdir();
    for (h, held) in MODES.iter().enumerate() {
        let holder = Holder::start(daemon.client(), "uc5", &["-l", held], dir.path(), held);
        for (a, asked) in MODES.iter().enumerate() {
            let what = format!("{held} held, {asked} asked with -o 0");
            let out =
                lock_cmd(daemon.client(), "uc5", &["-l", asked, "-o", "0"], &["true"]).output();
            if COMPATIBLE[h][a] {
                check(&out, 0, "", "", &what);
            } else {
                check(&out, 98, "", BUSY, &what);
            }
        }
        check(&holder.release(0), 0, "", "", held);
    }
}

/// usecase.at.in, "Use case 5 (1/9)": PR held, PW waiting; a second PR is granted at once,
/// ahead of the waiting PW, which gets the lock only when both readers are gone.
#[test]
fn a_compatible_newcomer_is_granted_ahead_of_an_incompatible_waiter_as_use_case_5() {
    let daemon = Daemon::start(Profile::Debug);
    let dir = tempdir();
    let first = Holder::start(daemon.client(), "uc5a", &["-l", "PR"], dir.path(), "pr1");
    let writer = Holder::spawn(daemon.client(), "uc5a", &["-l", "PW"], dir.path(), "pw");
    daemon.wait_state("the PW waits", |s| {
        s.lockers
            .iter()
            .any(|l| l.resource_name == "uc5a" && l.waitings.len() == 1)
    });
    let second = Holder::start(daemon.client(), "uc5a", &["-l", "PR"], dir.path(), "pr2");
    writer.assert_waiting();
    check(&second.release(0), 0, "", "", "the second reader");
    writer.assert_waiting();
    check(&first.release(0), 0, "", "", "the first reader");
    writer.wait_started(CHANGE);
    check(&writer.release(0), 0, "", "", "the writer");
}

/// usecase-lt.at.in, "Use case 17 (1/2)" and "(2/2)": a resource created with an idle
/// lifespan (`-e y -i 2000`) outlives its client, so that one that may not create it
/// (`-e n`) gets it, also by a path under it (hierarchical); one never created is waited
/// for until the timeout (98).
#[test]
fn a_long_term_resource_is_found_by_clients_that_may_not_create_it_as_use_case_17() {
    let daemon = Daemon::start(Profile::Debug);
    let run =
        |name: &str, extra: &[&str]| lock_cmd(daemon.client(), name, extra, &["true"]).output();
    check(
        &run("/foo", &["-e", "y", "-i", "2000"]),
        0,
        "",
        "",
        "-e y -r /foo -i 2000",
    );
    check(
        &run("/bar", &["-e", "n", "-o", "100"]),
        98,
        "",
        &timeout_message(100),
        "-e n -r /bar -o 100, never created",
    );
    check(
        &run("/foo", &["-e", "n", "-o", "500"]),
        0,
        "",
        "",
        "-e n -r /foo -o 500",
    );
    check(
        &run("/bar", &["-e", "y", "-i", "2000"]),
        0,
        "",
        "",
        "-e y -r /bar -i 2000",
    );
    check(
        &run("/bar/foo", &["-e", "n", "-o", "500"]),
        0,
        "",
        "",
        "-e n -r /bar/foo",
    );
    check(
        &run("/bar/foo/goofy", &["-e", "n", "-o", "500"]),
        0,
        "",
        "",
        "-e n -r /bar/foo/goofy",
    );
}

/// usecase-tms.at.in, "Valid formats" and "Invalid formats (slow formats)": a timestamp
/// resource's format must change at least hourly; one that does not is refused (99) until a
/// fraction of a second (`#f`) is added.
#[test]
fn timestamp_formats_are_accepted_or_refused_as_flom_s_test_suite() {
    let daemon = Daemon::start(Profile::Debug);
    for format in [
        "a%S", "a%M", "a%H", "a%S#f", "a%M#ff", "a%H#fff", "a%c", "a%r", "a%s", "a%T", "a%X",
        "a%R", "a%I",
    ] {
        let name = format!("_t_{format}[1]");
        let out = lock_cmd(daemon.client(), &name, &[], &["true"]).output();
        check(&out, 0, "", "", &name);
    }
    const SLOW: &str = "%a%A%b%B%d%D%e%E%F%G%g%h%j%m%p%P%u%U%V%w%W%x%y%Y%z%Z";
    let name = format!("_t_invalid{SLOW}[1]");
    let out = lock_cmd(daemon.client(), &name, &[], &["true"]).output();
    assert_eq!(out.status.code(), Some(99), "{name}: {out:?}");
    let name = format!("_t_invalid#f{SLOW}[1]");
    let out = lock_cmd(daemon.client(), &name, &[], &["true"]).output();
    check(&out, 0, "", "", &name);
}

/// usecase-num.at.in, "Use case 11 (2/2)": flom inside flom. A writer holds the default
/// resource in PW; two readers take it in CR (compatible with PW) and, inside it, each a slot
/// of `bar[2]`; a third reader's inner `-o 0` finds `bar[2]` full: busy (98), and the outer
/// client exits with its command's status.
#[test]
fn nested_clients_hold_two_resources_as_use_case_11() {
    let daemon = Daemon::start(Profile::Debug);
    let dir = tempdir();
    let latch = latch_bin(Profile::Debug);
    // `latch -s S <outer...> -- latch -s S`, completed by the holder's `-r NAME -- command`.
    let nested = |outer: &[&str]| {
        let mut cmd = daemon.client();
        cmd.args(outer)
            .arg("--")
            .arg(&latch)
            .arg("-s")
            .arg(daemon.socket());
        cmd
    };
    let writer = Holder::start(nested(&["-l", "PW"]), "w", &[], dir.path(), "writer");
    let first = Holder::start(nested(&["-l", "CR"]), "bar[2]", &[], dir.path(), "r1");
    let second = Holder::start(nested(&["-l", "CR"]), "bar[2]", &[], dir.path(), "r2");
    let state = daemon.state();
    let holders = |name: &str| {
        state
            .lockers
            .iter()
            .find(|l| l.resource_name == name)
            .map_or(0, |l| l.holders.len())
    };
    assert_eq!(
        (holders("_RESOURCE"), holders("bar[2]"), holders("w")),
        (3, 2, 1),
        "{state:?}"
    );
    let out = lock_cmd(nested(&["-l", "CR"]), "bar[2]", &["-o", "0"], &["true"]).output();
    check(&out, 98, "", BUSY, "the third reader's inner lock");
    for (holder, what) in [(first, "r1"), (second, "r2"), (writer, "writer")] {
        check(&holder.release(0), 0, "", "", what);
    }
}

/// usecase.at.in, "Use case 6 (1/2)" and "(2/2)": `-s` names the daemon; two sockets are two
/// daemons, whose resources of the same name do not conflict.
#[test]
fn two_sockets_are_two_daemons_as_use_case_6() {
    let foo = Daemon::start(Profile::Debug);
    let bar = Daemon::start(Profile::Debug);
    let dir = tempdir();
    let holder = Holder::start(bar.client(), "R", &[], dir.path(), "bar");
    let out = lock_cmd(foo.client(), "R", &["-o", "0"], &["true"]).output();
    check(&out, 0, "", "", "R on the other daemon");
    let on_foo = Holder::start(foo.client(), "R", &[], dir.path(), "foo");
    let out = lock_cmd(foo.client(), "R", &["-o", "0"], &["true"]).output();
    check(&out, 98, "", BUSY, "R on the same daemon");
    check(&on_foo.release(0), 0, "", "", "foo's holder");
    check(&holder.release(0), 0, "", "", "bar's holder");
}

/// usecase-hier.at, "Use case 14 (4/6)" and "(5/6)": along one path, compatible modes are
/// granted together: CR /apple with PW /apple/pear/banana and CR /apple/pear; CR
/// /apple/pear/banana with CR /apple/pear and PR /apple. An exclusive /apple waits for all.
#[test]
fn compatible_modes_along_one_hierarchical_path_as_use_case_14() {
    let daemon = Daemon::start(Profile::Debug);
    let dir = tempdir();
    for (case, held) in [
        (
            "4/6",
            [
                ("/apple", "CR"),
                ("/apple/pear/banana", "PW"),
                ("/apple/pear", "CR"),
            ],
        ),
        (
            "5/6",
            [
                ("/apple/pear/banana", "CR"),
                ("/apple/pear", "CR"),
                ("/apple", "PR"),
            ],
        ),
    ] {
        let mut holders = Vec::new();
        for (i, (name, mode)) in held.iter().enumerate() {
            // Each one at once (-o 0): compatible with every lock above and below it.
            let tag = format!("uc14-{}-{i}", case.replace('/', "-"));
            holders.push(Holder::start(
                daemon.client(),
                name,
                &["-l", mode, "-o", "0"],
                dir.path(),
                &tag,
            ));
        }
        let out = lock_cmd(daemon.client(), "/apple", &["-o", "0"], &["true"]).output();
        check(
            &out,
            98,
            "",
            BUSY,
            &format!("use case 14 ({case}): EX /apple"),
        );
        for holder in holders {
            check(&holder.release(0), 0, "", "", case);
        }
    }
}

/// usecase-tms.at.in, "Use case 19 (5/10)" to "(10/10)": five clients at once on a timestamp
/// resource of four slots, each holding a while, over the Unix socket and over TCP: every one
/// is given a timestamp of its own, for a grain of a tenth, a hundredth and a thousandth of a
/// second.
#[test]
fn concurrent_timestamps_are_unique_as_use_case_19() {
    let unix = Daemon::start(Profile::Debug);
    let tcp = DaemonOptions::new(Profile::Debug)
        .endpoint(Endpoint::TcpLoopback)
        .start();
    for (daemon, transport) in [(&unix, "Unix socket"), (&tcp, "TCP")] {
        for grain in ["#f", "#ff", "#fff"] {
            let name = format!("_t_tmstmp%S{grain}[4]");
            let clients: Vec<JoinHandle<Output>> = (0..5)
                .map(|_| {
                    // The granted timestamp is the script's $0.
                    let mut cmd = lock_cmd(
                        daemon.client(),
                        &name,
                        &["-i", "1000"],
                        &["sh", "-c", r#"echo "$0"; sleep 0.3"#],
                    );
                    thread::spawn(move || cmd.output())
                })
                .collect();
            let stamps: BTreeSet<String> = clients
                .into_iter()
                .map(|c| {
                    let out = c.join().expect("client thread");
                    check(&out, 0, &stdout_of(&out), "", &name);
                    stdout_of(&out).trim_end().to_owned()
                })
                .collect();
            assert_eq!(stamps.len(), 5, "{transport}, {name}: {stamps:?}");
            assert!(
                stamps.iter().all(|s| s.starts_with("tmstmp")),
                "{transport}, {name}: {stamps:?}"
            );
        }
    }
}
