//! The daemon's own admin API (newline-delimited JSON on the FLoM socket): `ping` and
//! `status` count what a scenario put there, `state` describes it entry by entry (ids,
//! order, peers, the per-type null rules of `latch.state/1`), admin connections leave no
//! trace (no ids taken, no generation bumped), `events` streams exactly the records of a
//! scripted workload, and a reader that never reads is dropped with a final
//! `latch.dropped/1` record while the daemon goes on serving at full speed.

use latch_probe_common::doc::{DroppedDoc, EntryDoc, EventDoc, StateDoc, DROPPED_SCHEMA};
use latch_probe_common::{EntryState, EventKind, LockMode, ResourceType};
use latch_tests::background::Background;
use latch_tests::bins::Profile;
use latch_tests::daemon::Daemon;
use latch_tests::events::EventReader;
use latch_tests::state::{locker, now_ns};
use latch_tests::timeouts::{BENCH, CHANGE, REPLY};
use latch_tests::wait::wait_for;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

/// `hub::READER_QUEUE` of the daemon: how far an events reader may fall behind.
const READER_QUEUE: usize = 65_536;

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// `latch <op> --json`, parsed as JSON.
fn admin_json(daemon: &Daemon, op: &str) -> serde_json::Value {
    daemon.client().args([op, "--json"]).expect_json()
}

/// One request on a raw admin connection; the reply line.
fn raw_request(daemon: &Daemon, line: &[u8]) -> String {
    let mut stream = UnixStream::connect(daemon.socket()).expect("connect");
    stream.set_read_timeout(Some(REPLY)).expect("timeout");
    stream.write_all(line).expect("send the request");
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .expect("read the reply");
    reply
}

/// Events number `from..from + count` of `reader`, once there are that many.
fn take_events(reader: &EventReader, from: usize, count: usize, what: &str) -> Vec<EventDoc> {
    reader
        .lines
        .take(from, count, what, CHANGE)
        .iter()
        .map(|l| parse_event(l))
        .collect()
}

fn parse_event(line: &str) -> EventDoc {
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("not a latch.event/1 record ({e}): {line}"))
}

fn count_in(state: &StateDoc, resource: &str, holders: usize, waiters: usize) -> bool {
    state.lockers.iter().any(|l| {
        l.resource_name == resource && l.holders.len() == holders && l.waitings.len() == waiters
    })
}

/// An entry's common fields: conn, client process, uid, times.
fn assert_entry(e: &EntryDoc, conn: u64, client: &Background, t0: u64, t1: u64) {
    assert_eq!(e.request.conn, conn, "{e:#?}");
    assert_eq!(e.request.peer_name, "localhost/", "{e:#?}");
    assert_eq!(
        e.request.peer_pid,
        Some(client.pid()),
        "peer_pid is not the client's pid: {e:#?}"
    );
    assert_eq!(e.request.peer_uid, Some(euid()), "{e:#?}");
    assert!(
        (t0..=t1).contains(&e.request.since_ns),
        "since_ns {} not within [{t0}, {t1}]",
        e.request.since_ns
    );
}

#[test]
fn status_and_state_describe_holder_waiters_and_incubator() {
    let daemon = Daemon::start(Profile::Debug);
    let t0 = now_ns();
    let holder = daemon.holder(&["-r", "res"]);
    daemon.wait_state("res held", |s| count_in(s, "res", 1, 0));
    let first = daemon.holder(&["-r", "res"]);
    daemon.wait_state("one waiter", |s| count_in(s, "res", 1, 1));
    let second = daemon.holder(&["-r", "res"]);
    daemon.wait_state("two waiters", |s| count_in(s, "res", 1, 2));
    let incubated = daemon.holder(&["-r", "later", "-e", "no"]);
    daemon.wait_state("one incubated", |s| s.incubator.len() == 1);
    let t1 = now_ns();

    let ping = admin_json(&daemon, "ping");
    assert_eq!(ping["pong"], true, "{ping}");
    assert_eq!(ping["pid"], daemon.pid(), "{ping}");
    let version = daemon.client().arg("--version").expect_success();
    let version = version.trim();
    assert_eq!(
        version,
        format!("latch {}", ping["version"].as_str().expect("version"))
    );

    let status = admin_json(&daemon, "status");
    for (key, value) in [
        ("lockers", 1),
        ("connections", 4),
        ("holders", 1),
        ("waiters", 2),
        ("incubated", 1),
    ] {
        assert_eq!(status[key], value, "status {key}: {status}");
    }
    assert_eq!(status["pid"], daemon.pid(), "{status}");

    let state = daemon.state();
    assert_eq!(state.schema, "latch.state/1");
    assert_eq!(state.source, latch_probe_common::doc::Source::Daemon);
    assert_eq!(state.pid, daemon.pid());
    assert_eq!(status["generation"], state.generation, "{status}");
    assert_eq!(state.generation % 2, 0, "{state:#?}");
    assert!(!state.torn);
    assert_eq!(state.lockers.len(), 1, "{state:#?}");
    let l = &state.lockers[0];
    // Ids from one counter: holder 2, its locker 3, the waiters 4 and 5, the incubated 6.
    assert_eq!((l.id, l.resource_name.as_str()), (3, "res"));
    assert_eq!(l.resource_type, ResourceType::Simple);
    assert!((t0..=t1).contains(&l.created_ns), "{l:#?}");
    assert_eq!(l.holders.len(), 1);
    assert_entry(&l.holders[0], 2, &holder, l.created_ns, t1);
    // Waiters in queue order.
    assert_eq!(l.waitings.len(), 2);
    assert_entry(&l.waitings[0], 4, &first, t0, t1);
    assert_entry(&l.waitings[1], 5, &second, t0, t1);
    assert!(l.waitings[0].request.since_ns <= l.waitings[1].request.since_ns);
    for e in l.holders.iter().chain(&l.waitings) {
        assert_eq!(e.request.resource_name, "res");
        assert_eq!(e.request.lock_mode, Some(LockMode::EX), "{e:#?}");
        assert_eq!(
            (e.request.quantity, e.element.as_deref()),
            (None, None),
            "{e:#?}"
        );
    }
    assert_eq!(state.incubator.len(), 1);
    let i = &state.incubator[0];
    assert_eq!(
        (i.request.conn, i.request.resource_name.as_str()),
        (6, "later")
    );
    assert_eq!(i.resource_type, ResourceType::Simple);
    assert_eq!(i.request.peer_name, "localhost/");
    assert_eq!(i.request.peer_pid, Some(incubated.pid()));
    assert_eq!(i.request.peer_uid, Some(euid()));
    assert_eq!(
        (i.request.lock_mode, i.request.quantity),
        (Some(LockMode::EX), None)
    );
    assert!((t0..=t1).contains(&i.request.since_ns));
}

#[test]
fn entry_fields_follow_the_resource_type() {
    let daemon = Daemon::start(Profile::Debug);
    let t0 = now_ns();

    // Numeric: quantities, and holders listed by conn although granted in another order.
    let two = daemon.holder(&["-r", "num[3]", "-q", "2"]);
    daemon.wait_state("num held", |s| count_in(s, "num[3]", 1, 0));
    let two_more = daemon.holder(&["-r", "num[3]", "-q", "2"]);
    daemon.wait_state("num waiter", |s| count_in(s, "num[3]", 1, 1));
    let one = daemon.holder(&["-r", "num[3]", "-q", "1"]);
    let state = daemon.wait_state("num overtaken", |s| count_in(s, "num[3]", 2, 1));
    let l = locker(&state, "num[3]");
    assert_eq!(l.resource_type, ResourceType::Numeric);
    let conns = |v: &[EntryDoc]| {
        v.iter()
            .map(|e| (e.request.conn, e.request.quantity))
            .collect::<Vec<_>>()
    };
    // two: conn 2 (locker 3); two_more: 4; one: 5.
    assert_eq!(conns(&l.holders), [(2, Some(2)), (5, Some(1))], "{l:#?}");
    assert_eq!(conns(&l.waitings), [(4, Some(2))], "{l:#?}");
    let mut two = two;
    two.close_stdin();
    assert!(two.wait_within(CHANGE).success());
    let state = daemon.wait_state("num handed over", |s| count_in(s, "num[3]", 2, 0));
    let l = locker(&state, "num[3]");
    // Granted 5 then 4; listed by conn.
    assert_eq!(conns(&l.holders), [(4, Some(2)), (5, Some(1))], "{l:#?}");
    assert_entry(&l.holders[0], 4, &two_more, t0, now_ns());
    assert_entry(&l.holders[1], 5, &one, t0, now_ns());

    // Set: each holder has its element; a waiter has none yet.
    let red = daemon.holder(&["-r", "red.green"]);
    // One at a time, so the first is the one that gets "red".
    daemon.wait_state("red held", |s| count_in(s, "red.green", 1, 0));
    let _green = daemon.holder(&["-r", "red.green"]);
    daemon.wait_state("set full", |s| count_in(s, "red.green", 2, 0));
    let _set_waiter = daemon.holder(&["-r", "red.green"]);
    // Sequence: the values in decimal.
    let _s1 = daemon.holder(&["-r", "_s_seq[2]"]);
    daemon.wait_state("seq 1", |s| count_in(s, "_s_seq[2]", 1, 0));
    let _s2 = daemon.holder(&["-r", "_s_seq[2]"]);
    // Hierarchical: one locker per first component, each entry with its own path and mode.
    let _ha = daemon.holder(&["-r", "/h/a", "-l", "PR"]);
    daemon.wait_state("/h held", |s| count_in(s, "/h/a", 1, 0));
    let _hb = daemon.holder(&["-r", "/h/b", "-l", "EX"]);
    // Simple with a mode; timestamp.
    let _cr = daemon.holder(&["-r", "plain", "-l", "CR"]);
    let _ts = daemon.holder(&["-r", "_t_%H%M%S[1]"]);
    let state = daemon.wait_state("every type in place", |s| {
        count_in(s, "red.green", 2, 1)
            && count_in(s, "_s_seq[2]", 2, 0)
            && count_in(s, "/h/a", 2, 0)
            && count_in(s, "plain", 1, 0)
            && count_in(s, "_t_%H%M%S[1]", 1, 0)
    });
    let t1 = now_ns();
    let every: Vec<&EntryDoc> = state
        .lockers
        .iter()
        .flat_map(|l| l.holders.iter().chain(&l.waitings))
        .collect();
    for e in &every {
        assert!((t0..=t1).contains(&e.request.since_ns), "{e:#?}");
        assert_eq!(e.request.peer_uid, Some(euid()), "{e:#?}");
        assert!(e.request.peer_pid.is_some(), "{e:#?}");
    }
    // Holders sorted by conn everywhere.
    for l in &state.lockers {
        assert!(
            l.holders
                .windows(2)
                .all(|w| w[0].request.conn < w[1].request.conn),
            "{l:#?}"
        );
    }

    let set = locker(&state, "red.green");
    assert_eq!(set.resource_type, ResourceType::Set);
    let mut elements: Vec<&str> = set
        .holders
        .iter()
        .map(|h| h.element.as_deref().expect("a set holder's element"))
        .collect();
    assert_eq!(set.holders[0].request.peer_pid, Some(red.pid()));
    assert_eq!(set.holders[0].element.as_deref(), Some("red"), "{set:#?}");
    elements.sort_unstable();
    assert_eq!(elements, ["green", "red"], "{set:#?}");
    assert_eq!(set.waitings[0].element, None, "{set:#?}");
    for e in set.holders.iter().chain(&set.waitings) {
        assert_eq!(
            (e.request.lock_mode, e.request.quantity),
            (None, None),
            "{e:#?}"
        );
    }

    let seq = locker(&state, "_s_seq[2]");
    assert_eq!(seq.resource_type, ResourceType::Sequence);
    let values: Vec<_> = seq.holders.iter().map(|h| h.element.as_deref()).collect();
    assert_eq!(values, [Some("1"), Some("2")], "{seq:#?}");
    assert!(seq
        .holders
        .iter()
        .all(|h| h.request.lock_mode.is_none() && h.request.quantity.is_none()));

    let h = locker(&state, "/h/a");
    assert_eq!(h.resource_type, ResourceType::Hierarchical);
    let entries: Vec<_> = h
        .holders
        .iter()
        .map(|e| {
            (
                e.request.resource_name.as_str(),
                e.request.lock_mode,
                e.request.quantity,
                e.element.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("/h/a", Some(LockMode::PR), None, None),
            ("/h/b", Some(LockMode::EX), None, None)
        ],
        "{h:#?}"
    );

    let plain = locker(&state, "plain");
    assert_eq!(plain.holders[0].request.lock_mode, Some(LockMode::CR));
    assert_eq!(
        (
            plain.holders[0].request.quantity,
            plain.holders[0].element.as_deref()
        ),
        (None, None)
    );

    let ts = locker(&state, "_t_%H%M%S[1]");
    assert_eq!(ts.resource_type, ResourceType::Timestamp);
    let stamp = ts.holders[0]
        .element
        .as_deref()
        .expect("a timestamp element");
    assert!(
        stamp.len() == 6 && stamp.bytes().all(|b| b.is_ascii_digit()),
        "{stamp:?}"
    );
    assert_eq!(
        (
            ts.holders[0].request.lock_mode,
            ts.holders[0].request.quantity
        ),
        (None, None)
    );
}

#[test]
fn admin_connections_take_no_ids_and_change_nothing() {
    let daemon = Daemon::start(Profile::Debug);
    let _first = daemon.holder(&["-r", "x"]);
    let before = daemon.wait_state("x held", |s| count_in(s, "x", 1, 0));
    assert_eq!(
        (
            before.lockers[0].id,
            before.lockers[0].holders[0].request.conn
        ),
        (3, 2)
    );

    // Every kind of admin connection, good and bad.
    for op in ["ping", "status", "state", "state", "status"] {
        admin_json(&daemon, op);
    }
    for bad in [
        &b"{\"op\":\"nope\"}\n"[..],
        b"{not json\n",
        b"{\"op\":42}\n",
    ] {
        let reply = raw_request(&daemon, bad);
        assert!(reply.contains("\"error\""), "{reply}");
    }
    {
        // Connects, starts an events stream, hangs up.
        let events = EventReader::start(&daemon);
        thread::sleep(Duration::from_millis(50));
        drop(events);
        // A lone `{` and a close.
        let mut s = UnixStream::connect(daemon.socket()).expect("connect");
        s.write_all(b"{").expect("send");
    }
    let after = daemon.state();
    assert_eq!(
        after.generation, before.generation,
        "an admin query changed the table"
    );
    assert_eq!(after.lockers, before.lockers);
    assert_eq!(admin_json(&daemon, "status")["connections"], 1);

    // The next FLoM client takes the next id.
    let _second = daemon.holder(&["-r", "y"]);
    let state = daemon.wait_state("y held", |s| count_in(s, "y", 1, 0));
    let y = locker(&state, "y");
    assert_eq!((y.holders[0].request.conn, y.id), (4, 5), "{state:#?}");
    assert_eq!(
        state.generation,
        before.generation + 2,
        "one change, one generation step"
    );
    assert_eq!(admin_json(&daemon, "status")["connections"], 2);
}

/// What an event must be; the rest (schema, times, per-type fields) is checked for all.
type Expected = (
    EventKind,
    Option<u64>,
    Option<u64>,
    &'static str,
    EntryState,
    EntryState,
);

fn check_events(got: &[EventDoc], expected: &[Expected], t0: u64) {
    let summary: Vec<Expected> = got
        .iter()
        .zip(expected)
        .map(|(e, x)| (e.kind, e.locker, e.conn, x.3, e.from, e.to))
        .collect();
    assert_eq!(summary, expected, "events: {got:#?}");
    for (e, x) in got.iter().zip(expected) {
        assert_eq!(e.schema, "latch.event/1");
        assert_eq!(e.resource_name, x.3, "{e:#?}");
        assert_eq!(e.resource_type, ResourceType::Simple, "{e:#?}");
        assert!(e.ts_ns >= t0 && e.ts_ns <= now_ns(), "{e:#?}");
        let locker_event = matches!(e.kind, EventKind::LockerCreate | EventKind::LockerDestroy);
        let mode = if locker_event {
            None
        } else {
            Some(LockMode::EX)
        };
        assert_eq!(e.lock_mode, mode, "{e:#?}");
        assert_eq!((e.quantity, e.element.as_deref()), (None, None), "{e:#?}");
    }
    assert!(got.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns), "{got:#?}");
}

#[test]
fn events_stream_exactly_the_workload() {
    use EntryState::{Holding, Incubating, None as Nothing, Waiting};
    use EventKind::*;
    let daemon = Daemon::start(Profile::Debug);
    let events = EventReader::start(&daemon);
    let t0 = now_ns();
    let mut seen = 0;
    let mut step = |what: &str, expected: &[Expected]| {
        let got = take_events(&events, seen, expected.len(), what);
        check_events(&got, expected, t0);
        seen += expected.len();
    };

    let mut a = daemon.holder(&["-r", "r"]);
    step(
        "a holds r",
        &[
            (LockerCreate, Some(3), None, "r", Nothing, Nothing),
            (Grant, Some(3), Some(2), "r", Nothing, Holding),
        ],
    );
    let mut b = daemon.holder(&["-r", "r"]);
    step(
        "b waits",
        &[(Enqueue, Some(3), Some(4), "r", Nothing, Waiting)],
    );
    a.close_stdin();
    step(
        "a unlocks, b gets r",
        &[
            (Release, Some(3), Some(2), "r", Holding, Nothing),
            (Grant, Some(3), Some(4), "r", Waiting, Holding),
        ],
    );
    b.close_stdin();
    step(
        "b unlocks",
        &[(Release, Some(3), Some(4), "r", Holding, Nothing)],
    );
    // The idle locker goes after its grace time.
    step(
        "r destroyed",
        &[(LockerDestroy, Some(3), None, "r", Nothing, Nothing)],
    );
    assert!(a.wait_within(CHANGE).success() && b.wait_within(CHANGE).success());

    let mut c = daemon.holder(&["-r", "inc", "-e", "no"]);
    step(
        "c incubated",
        &[(Incubate, None, Some(5), "inc", Nothing, Incubating)],
    );
    let mut d = daemon.holder(&["-r", "inc"]);
    step(
        "d creates inc, c promoted",
        &[
            (LockerCreate, Some(7), None, "inc", Nothing, Nothing),
            (Grant, Some(7), Some(6), "inc", Nothing, Holding),
            (Promote, Some(7), Some(5), "inc", Incubating, Waiting),
        ],
    );
    let e = daemon.holder(&["-r", "inc"]);
    step(
        "e waits",
        &[(Enqueue, Some(7), Some(8), "inc", Nothing, Waiting)],
    );
    drop(e);
    step(
        "e killed",
        &[(Cancel, Some(7), Some(8), "inc", Waiting, Nothing)],
    );
    let f = daemon.holder(&["-r", "gone", "-e", "no"]);
    step(
        "f incubated",
        &[(Incubate, None, Some(9), "gone", Nothing, Incubating)],
    );
    drop(f);
    step(
        "f killed",
        &[(Cancel, None, Some(9), "gone", Incubating, Nothing)],
    );
    d.close_stdin();
    step(
        "d unlocks, c gets inc",
        &[
            (Release, Some(7), Some(6), "inc", Holding, Nothing),
            (Grant, Some(7), Some(5), "inc", Waiting, Holding),
        ],
    );
    c.close_stdin();
    step(
        "c unlocks",
        &[(Release, Some(7), Some(5), "inc", Holding, Nothing)],
    );
    assert!(c.wait_within(CHANGE).success() && d.wait_within(CHANGE).success());
    // Nothing else (inc's locker_destroy comes only after its grace time).
    thread::sleep(Duration::from_millis(300));
    let extra: Vec<String> = events.lines.all().split_off(seen);
    assert!(extra.is_empty(), "unexpected events: {extra:#?}");
}

#[test]
fn a_reader_that_never_reads_is_dropped_and_the_daemon_goes_on() {
    // Release build: the load must outrun the reader's queue in a few seconds.
    let mut daemon = Daemon::start(Profile::Release);
    // Subscribes and never reads.
    let mut slow = UnixStream::connect(daemon.socket()).expect("connect");
    slow.write_all(b"{\"op\":\"events\"}\n").expect("send");
    let fast = EventReader::start(&daemon);

    const OPS: usize = 80_000;
    let mut bench = daemon.client();
    bench.args(["bench", "--clients", "4", "--ops", &OPS.to_string()]);
    bench.timeout(BENCH);
    // The thread's own panic shows the whole run if the bench fails.
    let bench = thread::spawn(move || bench.expect_success());
    // Meanwhile other clients are served, and the admin API answers.
    let mut rounds = 0;
    while !bench.is_finished() {
        // A client is served during the load.
        daemon
            .client()
            .args(["-r", "other", "--", "true"])
            .expect_success();
        admin_json(&daemon, "status");
        rounds += 1;
        thread::sleep(Duration::from_millis(100));
    }
    bench.join().expect("latch bench succeeds");
    assert!(rounds > 0);
    // Dropped without having read a byte.
    wait_for("the daemon dropping the slow reader", CHANGE, || {
        daemon
            .stderr()
            .contains("dropped an events reader")
            .then_some(())
    });

    // What the slow reader gets: events, then the final record, then the end.
    slow.set_read_timeout(Some(CHANGE)).expect("timeout");
    let mut text = String::new();
    let deadline = Instant::now() + CHANGE;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        assert!(
            Instant::now() < deadline,
            "the slow reader's stream did not end"
        );
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.push_str(std::str::from_utf8(&buf[..n]).expect("UTF-8")),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the slow reader's stream: {e}"),
        }
    }
    let mut lines: Vec<&str> = text.lines().collect();
    let last = lines.pop().expect("at least the final record");
    let dropped: DroppedDoc = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the last line is not latch.dropped/1 ({e}): {last}"));
    assert_eq!(dropped.schema, DROPPED_SCHEMA);
    assert!(dropped.missed > 0);
    let received = lines.len();
    assert!(
        received > 0,
        "the slow reader got no event before being dropped"
    );
    assert!(
        received as u64 + dropped.missed > READER_QUEUE as u64,
        "dropped after only {received} + {} events",
        dropped.missed
    );

    // The fast reader kept up and got everything: every grant and release of the bench.
    let all = wait_for("the fast reader to see every bench event", CHANGE, || {
        let lines = fast.lines.all();
        let bench_events = lines
            .iter()
            .filter(|l| l.contains("\"resource_name\":\"bench"))
            .filter(|l| l.contains("\"kind\":\"grant\"") || l.contains("\"kind\":\"release\""))
            .count();
        (bench_events == 2 * OPS).then_some(lines)
    });
    assert!(
        !all.iter().any(|l| l.contains(DROPPED_SCHEMA)),
        "the fast reader was dropped too"
    );
    // The slow reader's events are the same, in the same order, as the first ones the fast
    // reader got, and the two counts add up.
    assert!(received as u64 + dropped.missed <= all.len() as u64);
    assert!(
        lines.iter().zip(&all).all(|(a, b)| a == b),
        "the slow reader's events differ from the fast reader's"
    );

    // A client is served after the load.
    daemon
        .client()
        .args(["-r", "other", "--", "true"])
        .expect_success();
    assert!(daemon.is_running());
}
