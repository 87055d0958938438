//! The probe's eBPF trace tells the truth: a scripted workload of known operations (all six
//! resource types, modes, quantities, elements, a waiter that gives up, an incubated client
//! promoted, idle lockers destroyed) yields exactly those events from `latch-probe trace
//! --json`, in order, with the right values, and each equals the daemon's own record of it
//! (`latch events`), field for field but the time. On the debug build, the release build
//! and a `-Zrandomize-layout` build: the probe reads every layout from the exact binary.
//!
//! Also: `trace` ends cleanly on SIGTERM, and then none of its eBPF programs or links is left
//! in the kernel (bpftool says so); its uprobes go when its daemon exits; and it shows
//! nothing of another daemon that runs the same executable.
//!
//! Needs root (uprobes, BPF). A missing prerequisite fails the test with the reason.

use latch_probe_common::doc::EventDoc;
use latch_probe_common::{EntryState, EventKind, LockMode};
use latch_tests::background::Background;
use latch_tests::bins::{latch_bin, Profile};
use latch_tests::command::TestCommand;
use latch_tests::daemon::{Daemon, DaemonOptions};
use latch_tests::events::EventReader;
use latch_tests::probe::ProbeStream;
use latch_tests::randomized::randomized_latch_bin;
use latch_tests::state::now_ns;
use latch_tests::timeouts::CHANGE;
use std::path::PathBuf;

#[test]
fn trace_equals_daemon_events_debug() {
    truth(latch_bin(Profile::Debug));
}

#[test]
fn trace_equals_daemon_events_release() {
    truth(latch_bin(Profile::Release));
}

#[test]
fn trace_equals_daemon_events_randomized_layout() {
    truth(randomized_latch_bin());
}

/// The uprobes are set for every process that runs the binary; the trace keeps its daemon's
/// hits alone. A second daemon of the same executable locks first, then the traced one: the
/// trace shows the traced one's two events and nothing of the other's.
#[test]
fn another_daemon_of_the_same_executable_is_not_traced() {
    require_root();
    let traced = DaemonOptions::exe(latch_bin(Profile::Debug)).start();
    let other = DaemonOptions::exe(latch_bin(Profile::Debug)).start();
    let others_own = EventReader::start(&other);
    let trace = ProbeStream::start("trace", traced.pid(), &["--json"]);

    let mut theirs = other.holder(&["-r", "theirs"]);
    // The other daemon has made both its changes, so their hits came before the next ones.
    others_own
        .lines
        .take(0, 2, "the other daemon's create and grant", CHANGE);
    let mut mine = traced.holder(&["-r", "mine"]);
    let events = parse(
        &trace
            .stdout
            .take(0, 2, "the traced daemon's create and grant", CHANGE),
    );
    let seen: Vec<(EventKind, &str)> = events
        .iter()
        .map(|e| (e.kind, e.resource_name.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (EventKind::LockerCreate, "mine"),
            (EventKind::Grant, "mine")
        ]
    );
    for client in [&mut theirs, &mut mine] {
        client.close_stdin();
        assert!(client.wait_within(CHANGE).success());
    }
    let (stdout, stderr) = trace.stop();
    let names: Vec<String> = parse(&stdout)
        .into_iter()
        .map(|e| e.resource_name)
        .collect();
    assert!(
        names.iter().all(|n| n == "mine"),
        "the other daemon's events in the trace: {names:?}; {stderr:#?}"
    );
}

/// The programs keep their daemon's hits by pid, and a pid is reused: once the daemon has
/// exited, the trace's uprobes go (bpftool shows none of its links), while the trace itself
/// runs on until it is stopped.
#[test]
fn the_uprobes_go_when_the_daemon_exits() {
    require_root();
    let daemon = DaemonOptions::exe(latch_bin(Profile::Debug)).start();
    let trace = ProbeStream::start("trace", daemon.pid(), &["--json"]);
    let ours = programs_of(trace.pid());
    let links = || {
        let all = bpftool(&["link", "show"]);
        all.as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["prog_id"].as_u64().is_some_and(|id| ours.contains(&id)))
            .count()
    };
    assert_eq!(links(), 8, "the trace's links while its daemon runs");
    drop(daemon);
    let deadline = std::time::Instant::now() + CHANGE;
    while links() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(links(), 0, "the trace's links after its daemon exited");
    let (_, stderr) = trace.stop();
    let summary = stderr.last().cloned().unwrap_or_default();
    assert!(
        summary.contains("0 lost, 0 undecodable"),
        "the trace's summary: {stderr:#?}"
    );
}

/// Fails the test, saying why, where it cannot attach uprobes.
fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test attaches eBPF uprobes and must run as root"
    );
}

/// What one event must be. `element`: `None` for none, `Some("*")` for any, else exactly.
struct Want {
    kind: EventKind,
    resource: &'static str,
    from: EntryState,
    to: EntryState,
    mode: Option<LockMode>,
    quantity: Option<u64>,
    element: Option<&'static str>,
}

fn want(kind: EventKind, resource: &'static str, from: EntryState, to: EntryState) -> Want {
    Want {
        kind,
        resource,
        from,
        to,
        mode: None,
        quantity: None,
        element: None,
    }
}

impl Want {
    fn mode(self, mode: LockMode) -> Want {
        Want {
            mode: Some(mode),
            ..self
        }
    }
    fn quantity(self, quantity: u64) -> Want {
        Want {
            quantity: Some(quantity),
            ..self
        }
    }
    fn element(self, element: &'static str) -> Want {
        Want {
            element: Some(element),
            ..self
        }
    }
}

fn parse(lines: &[String]) -> Vec<EventDoc> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a latch.event/1 record ({e}): {l}"))
        })
        .collect()
}

/// Reads the workload's events from both streams step by step and checks them.
struct Check<'a> {
    daemon: &'a Daemon,
    own: &'a EventReader,
    trace: &'a ProbeStream,
    seen: usize,
    t0: u64,
    build: String,
}

impl Check<'_> {
    fn step(&mut self, what: &str, wants: &[Want]) {
        let what = format!("{what} ({})", self.build);
        let n = wants.len();
        let traced = parse(&self.trace.stdout.take(self.seen, n, &what, CHANGE));
        let own = parse(&self.own.lines.take(self.seen, n, &what, CHANGE));
        for ((probe, daemon), want) in traced.iter().zip(&own).zip(wants) {
            let summary = (
                probe.kind,
                probe.resource_name.as_str(),
                probe.from,
                probe.to,
                probe.lock_mode,
                probe.quantity,
            );
            assert_eq!(
                summary,
                (
                    want.kind,
                    want.resource,
                    want.from,
                    want.to,
                    want.mode,
                    want.quantity
                ),
                "{what}: {probe:#?}"
            );
            match (want.element, &probe.element) {
                (None, None) => {}
                (Some("*"), Some(_)) => {}
                (Some(exact), Some(got)) if exact == got => {}
                (want, got) => panic!("{what}: element {got:?}, wanted {want:?}: {probe:#?}"),
            }
            // The probe's own fields: the daemon thread, the change's generation, a time.
            let tid = probe.tid.expect("a traced event names its thread");
            assert!(
                PathBuf::from(format!("/proc/{}/task/{tid}", self.daemon.pid())).exists(),
                "{what}: tid {tid} is not a thread of the daemon"
            );
            let generation = probe.generation.expect("a traced event has a generation");
            assert_eq!(generation % 2, 1, "{what}: a change's generation is odd");
            assert!(
                probe.ts_ns >= self.t0 && probe.ts_ns <= now_ns(),
                "{what}: time {} outside the test's run: {probe:#?}",
                probe.ts_ns
            );
            assert!(!probe.cut, "{what}: nothing here is long enough to cut");
            // Everything else is exactly what the daemon says it did.
            let mut same = probe.clone();
            same.ts_ns = daemon.ts_ns;
            same.tid = None;
            same.generation = None;
            assert_eq!(&same, daemon, "{what}: the probe and the daemon disagree");
        }
        self.seen += n;
    }
}

fn truth(bin: PathBuf) {
    use EntryState::{Holding, Incubating, None as Nothing, Waiting};
    use EventKind::*;
    require_root();
    let build = bin.display().to_string();
    let daemon = DaemonOptions::exe(bin).start();
    let own = EventReader::start(&daemon);
    let t0 = now_ns();
    let trace = ProbeStream::start("trace", daemon.pid(), &["--json"]);
    let ours = programs_of(trace.pid());
    assert_eq!(
        ours.len(),
        8,
        "bpftool should show the trace's 8 uprobe programs: {ours:?}"
    );
    let mut check = Check {
        daemon: &daemon,
        own: &own,
        trace: &trace,
        seen: 0,
        t0,
        build,
    };
    let ex = LockMode::EX;

    let mut a = daemon.holder(&["-r", "foo"]);
    check.step(
        "a holds foo",
        &[
            want(LockerCreate, "foo", Nothing, Nothing),
            want(Grant, "foo", Nothing, Holding).mode(ex),
        ],
    );
    let mut b = daemon.holder(&["-r", "foo", "-l", "PR"]);
    check.step(
        "b waits for foo",
        &[want(Enqueue, "foo", Nothing, Waiting).mode(LockMode::PR)],
    );
    a.close_stdin();
    check.step(
        "a unlocks, b gets foo",
        &[
            want(Release, "foo", Holding, Nothing).mode(ex),
            want(Grant, "foo", Waiting, Holding).mode(LockMode::PR),
        ],
    );
    let mut c = daemon.holder(&["-r", "num[3]", "-q", "2"]);
    check.step(
        "c holds 2 of num[3]",
        &[
            want(LockerCreate, "num[3]", Nothing, Nothing),
            want(Grant, "num[3]", Nothing, Holding).quantity(2),
        ],
    );
    let d = daemon.holder(&["-r", "num[3]", "-q", "2"]);
    check.step(
        "d waits for 2 more",
        &[want(Enqueue, "num[3]", Nothing, Waiting).quantity(2)],
    );
    drop(d);
    check.step(
        "d gives up",
        &[want(Cancel, "num[3]", Waiting, Nothing).quantity(2)],
    );
    let mut e = daemon.holder(&["-r", "red.green"]);
    check.step(
        "e gets a set element",
        &[
            want(LockerCreate, "red.green", Nothing, Nothing),
            want(Grant, "red.green", Nothing, Holding).element("red"),
        ],
    );
    let mut f = daemon.holder(&["-r", "/h/a/b", "-l", "CR"]);
    check.step(
        "f holds a path",
        &[
            want(LockerCreate, "/h/a/b", Nothing, Nothing),
            want(Grant, "/h/a/b", Nothing, Holding).mode(LockMode::CR),
        ],
    );
    let mut g = daemon.holder(&["-r", "_s_seq[2]"]);
    check.step(
        "g takes a sequence number",
        &[
            want(LockerCreate, "_s_seq[2]", Nothing, Nothing),
            want(Grant, "_s_seq[2]", Nothing, Holding).element("*"),
        ],
    );
    let mut t = daemon.holder(&["-r", "_t_%H:%M:%S[1]"]);
    check.step(
        "t takes a timestamp",
        &[
            want(LockerCreate, "_t_%H:%M:%S[1]", Nothing, Nothing),
            want(Grant, "_t_%H:%M:%S[1]", Nothing, Holding).element("*"),
        ],
    );
    let mut i = daemon.holder(&["-r", "zzz", "-e", "no"]);
    check.step(
        "i waits in the incubator",
        &[want(Incubate, "zzz", Nothing, Incubating).mode(ex)],
    );
    let mut j = daemon.holder(&["-r", "zzz"]);
    check.step(
        "j creates zzz, i is promoted",
        &[
            want(LockerCreate, "zzz", Nothing, Nothing),
            want(Grant, "zzz", Nothing, Holding).mode(ex),
            want(Promote, "zzz", Incubating, Waiting).mode(ex),
        ],
    );
    let releases: [(&mut Background, &str, Want); 6] = [
        (
            &mut b,
            "b unlocks",
            want(Release, "foo", Holding, Nothing).mode(LockMode::PR),
        ),
        (
            &mut c,
            "c unlocks",
            want(Release, "num[3]", Holding, Nothing).quantity(2),
        ),
        (
            &mut e,
            "e unlocks",
            want(Release, "red.green", Holding, Nothing).element("red"),
        ),
        (
            &mut f,
            "f unlocks",
            want(Release, "/h/a/b", Holding, Nothing).mode(LockMode::CR),
        ),
        (
            &mut g,
            "g unlocks",
            want(Release, "_s_seq[2]", Holding, Nothing).element("*"),
        ),
        (
            &mut t,
            "t unlocks",
            want(Release, "_t_%H:%M:%S[1]", Holding, Nothing).element("*"),
        ),
    ];
    for (client, what, release) in releases {
        client.close_stdin();
        check.step(what, &[release]);
    }
    j.close_stdin();
    check.step(
        "j unlocks, i gets zzz",
        &[
            want(Release, "zzz", Holding, Nothing).mode(ex),
            want(Grant, "zzz", Waiting, Holding).mode(ex),
        ],
    );
    i.close_stdin();
    check.step(
        "i unlocks",
        &[want(Release, "zzz", Holding, Nothing).mode(ex)],
    );
    // Idle lockers go after their grace time, in the order they became idle.
    let destroyed: Vec<Want> = [
        "foo",
        "num[3]",
        "red.green",
        "/h/a/b",
        "_s_seq[2]",
        "_t_%H:%M:%S[1]",
        "zzz",
    ]
    .into_iter()
    .map(|r| want(LockerDestroy, r, Nothing, Nothing))
    .collect();
    check.step("idle lockers destroyed", &destroyed);
    for client in [a, b, c, e, f, g, t, i, j].iter_mut() {
        assert!(client.wait_within(CHANGE).success());
    }
    let seen = check.seen;

    // SIGTERM: the trace exits 0, has printed nothing beyond the workload, lost nothing, and
    // takes its programs (and their links) out of the kernel.
    let trace_pid = trace.pid();
    let (stdout, stderr) = trace.stop();
    assert_eq!(
        stdout.len(),
        seen,
        "events beyond the workload: {stdout:#?}"
    );
    let summary = stderr.last().cloned().unwrap_or_default();
    assert!(
        summary.contains(&format!("{seen} events, 0 lost, 0 undecodable")),
        "the trace's summary: {stderr:#?}"
    );
    let left: Vec<u64> = loaded_program_ids()
        .into_iter()
        .filter(|id| ours.contains(id))
        .collect();
    assert!(
        left.is_empty(),
        "programs {left:?} of trace pid {trace_pid} are still loaded after it exited"
    );
    let links = bpftool(&["link", "show"]);
    let dangling: Vec<&serde_json::Value> = links
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["prog_id"].as_u64().is_some_and(|id| ours.contains(&id)))
        .collect();
    assert!(dangling.is_empty(), "links left behind: {dangling:#?}");
}

/// `bpftool -j ARGS`, parsed.
fn bpftool(args: &[&str]) -> serde_json::Value {
    // A missing bpftool fails here: scripts/setup.sh installs it.
    TestCommand::new("bpftool")
        .arg("-j")
        .args(args)
        .expect_json()
}

/// The ids of the eBPF programs that process `pid` holds open, from its descriptors'
/// fdinfo (`prog_id:`); bpftool's own pid column needs a bpftool built with skeletons.
fn programs_of(pid: u32) -> Vec<u64> {
    let dir = format!("/proc/{pid}/fdinfo");
    let mut ids: Vec<u64> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
        .filter(|info| !info.contains("link_id:"))
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("prog_id:"))
                .and_then(|id| id.trim().parse().ok())
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn loaded_program_ids() -> Vec<u64> {
    bpftool(&["prog", "show"])
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["id"].as_u64())
        .collect()
}
