//! Bad input on the FLoM socket hurts only the connection that sent it: over raw Unix
//! sockets, each case (malformed XML, a foreign protocol level, unknown verbs and steps,
//! undecodable names, an unlock out of turn, an invalid resource name, an over-long
//! message, a client vanishing mid-message, thousands of idle connections) gets an error
//! answer or a closed connection, while a holder that locked before keeps its lock under
//! the same connection id, a fresh client is served and the daemon keeps running.
//! A valid lock with a name far beyond FLoM's 512-byte buffer is granted and reported
//! intact.

use latch_probe_common::doc::StateDoc;
use latch_tests::bins::Profile;
use latch_tests::daemon::Daemon;
use latch_tests::flom::{base64, lock_request, XML_DECL};
use latch_tests::timeouts::{CHANGE, REPLY};
use latch_tests::wait::wait_for;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// `wire::MAX_MESSAGE` of the daemon.
const MAX_MESSAGE: usize = 64 * 1024;

/// A lock request as the flom client sends it, with `name` already encoded.
fn lock_raw(encoded_name: &str) -> String {
    lock_request(encoded_name, "test")
}

fn lock(name: &str) -> String {
    lock_raw(&base64(name.as_bytes()))
}

/// What the daemon sent on a connection, split into messages, and whether it closed.
#[derive(Debug)]
struct Reply {
    messages: Vec<String>,
    closed: bool,
}

impl Reply {
    /// The `rc` of each answer.
    fn rcs(&self) -> Vec<i32> {
        self.messages
            .iter()
            .filter_map(|m| attribute(m, "rc")?.parse().ok())
            .collect()
    }
}

fn attribute<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let start = message.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = message[start..].find('"')?;
    Some(&message[start..start + len])
}

/// A raw client connection.
struct Raw {
    stream: UnixStream,
}

impl Raw {
    fn connect(daemon: &Daemon) -> Raw {
        let stream = UnixStream::connect(daemon.socket())
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", daemon.socket().display()));
        stream
            .set_write_timeout(Some(REPLY))
            .expect("set a write timeout");
        Raw { stream }
    }

    fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream
            .write_all(bytes.as_ref())
            .unwrap_or_else(|e| panic!("sending to the daemon failed: {e}"));
    }

    /// Reads until `count` messages arrived, the daemon closed, or `timeout` passed.
    fn read(&mut self, count: usize, timeout: Duration) -> Reply {
        let deadline = Instant::now() + timeout;
        let mut bytes = Vec::new();
        let mut closed = false;
        let mut buf = [0u8; 4096];
        loop {
            let messages = split_messages(&bytes);
            if messages.len() >= count && count > 0 {
                break;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("set a read timeout");
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                // A reset is a close too (the daemon closed with our bytes unread).
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        Reply {
            messages: split_messages(&bytes),
            closed,
        }
    }

    /// Reads until the daemon closes the connection (the test fails if it does not).
    fn read_to_close(&mut self) -> Reply {
        let reply = self.read(0, REPLY);
        assert!(
            reply.closed,
            "the daemon did not close the connection within {REPLY:?}: {reply:?}"
        );
        reply
    }

    /// Whether the daemon keeps the connection open (nothing to read, no EOF).
    fn is_open(&mut self) -> bool {
        let reply = self.read(1, Duration::from_millis(50));
        !reply.closed && reply.messages.is_empty()
    }
}

fn split_messages(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.split_inclusive("</msg>")
        .filter(|m| m.ends_with("</msg>"))
        .map(str::to_owned)
        .collect()
}

/// A connection that holds the simple resource `keep`, locked before the bad input.
struct Keeper {
    raw: Raw,
    conn: u64,
}

impl Keeper {
    fn lock(daemon: &Daemon) -> Keeper {
        let mut raw = Raw::connect(daemon);
        raw.send(lock("keep"));
        let reply = raw.read(1, REPLY);
        assert_eq!(reply.rcs(), [0], "the keeper was not granted: {reply:?}");
        let conn = holders_of(&daemon.state(), "keep")
            .first()
            .copied()
            .expect("the keeper in the state");
        Keeper { raw, conn }
    }
}

fn holders_of(state: &StateDoc, resource: &str) -> Vec<u64> {
    state
        .lockers
        .iter()
        .filter(|l| l.resource_name == resource)
        .flat_map(|l| l.holders.iter().map(|h| h.request.conn))
        .collect()
}

/// The daemon runs, the keeper still holds `keep` under its connection id (and its
/// connection is open), nothing is left waiting, and a fresh client is served.
fn assert_unharmed(daemon: &mut Daemon, keeper: &mut Keeper, case: &str) {
    assert!(
        daemon.is_running(),
        "{case}: the daemon died; stderr:\n{}",
        daemon.stderr()
    );
    let state = daemon.state();
    assert_eq!(
        holders_of(&state, "keep"),
        [keeper.conn],
        "{case}: the keeper lost its lock: {state:#?}"
    );
    assert!(
        state.lockers.iter().all(|l| l.waitings.is_empty()) && state.incubator.is_empty(),
        "{case}: a bad connection left something behind: {state:#?}"
    );
    assert!(!state.torn, "{case}: the table is mid-change: {state:#?}");
    assert!(
        keeper.raw.is_open(),
        "{case}: the keeper's connection closed"
    );
    // A fresh client is served.
    daemon
        .client()
        .args(["-r", "other", "--", "true"])
        .expect_success();
    assert!(daemon.is_running(), "{case}: the daemon died");
}

/// Sends `bytes` on a fresh connection and expects the daemon to close it without an answer.
fn refused_silently(daemon: &mut Daemon, keeper: &mut Keeper, case: &str, bytes: &[u8]) {
    let mut raw = Raw::connect(daemon);
    raw.send(bytes);
    let reply = raw.read_to_close();
    assert!(
        reply.messages.is_empty(),
        "{case}: expected no answer, got {reply:?}"
    );
    assert_unharmed(daemon, keeper, case);
}

fn setup() -> (Daemon, Keeper) {
    let daemon = Daemon::start(Profile::Debug);
    let keeper = Keeper::lock(&daemon);
    (daemon, keeper)
}

#[test]
fn malformed_xml_closes_the_connection() {
    let (mut daemon, mut keeper) = setup();
    let good = lock("foo");
    let cases: [(&str, Vec<u8>); 6] = [
        (
            "unquoted attribute",
            good.replace(r#"mode="5""#, "mode=5").into_bytes(),
        ),
        (
            "unclosed element",
            format!(r#"{XML_DECL}<msg level="3" verb="1" step="8"><resource name="Zm9v"</msg>"#)
                .into_bytes(),
        ),
        ("no envelope", b"hello world</msg>".to_vec()),
        (
            "binary garbage",
            [&[0u8, 0xff, 0xfe, b'<', 0, 7][..], b"</msg>"].concat(),
        ),
        (
            "level is not a number",
            good.replace(r#"level="3""#, r#"level="three""#)
                .into_bytes(),
        ),
        (
            "no resource element",
            format!(r#"{XML_DECL}<msg level="3" verb="1" step="8"><session peerid="x"/></msg>"#)
                .into_bytes(),
        ),
    ];
    for (case, bytes) in cases {
        refused_silently(&mut daemon, &mut keeper, case, &bytes);
    }
}

#[test]
fn foreign_level_closes_the_connection() {
    let (mut daemon, mut keeper) = setup();
    let bytes = lock("foo").replace(r#"level="3""#, r#"level="2""#);
    refused_silently(&mut daemon, &mut keeper, "level 2", bytes.as_bytes());
}

#[test]
fn unknown_verb_closes_the_connection() {
    let (mut daemon, mut keeper) = setup();
    let bytes = lock("foo").replace(r#"verb="1""#, r#"verb="9""#);
    refused_silently(&mut daemon, &mut keeper, "verb 9", bytes.as_bytes());
}

#[test]
fn lock_with_an_answer_step_closes_the_connection() {
    let (mut daemon, mut keeper) = setup();
    let bytes = lock("foo").replace(r#"step="8""#, r#"step="16""#);
    refused_silently(&mut daemon, &mut keeper, "step 16", bytes.as_bytes());
}

#[test]
fn undecodable_name_closes_the_connection() {
    let (mut daemon, mut keeper) = setup();
    refused_silently(
        &mut daemon,
        &mut keeper,
        "not base64",
        lock_raw("@@@").as_bytes(),
    );
    // Valid base64 of bytes that are not UTF-8.
    refused_silently(
        &mut daemon,
        &mut keeper,
        "base64 of non-UTF-8",
        lock_raw(&base64(&[0xff, 0xfe, 0xfd])).as_bytes(),
    );
}

#[test]
fn unlock_as_first_message_closes_the_connection() {
    let (mut daemon, mut keeper) = setup();
    let unlock = format!(
        r#"{XML_DECL}<msg level="3" verb="2" step="8"><resource name="{}" rollback="0" /></msg>"#,
        base64(b"keep")
    );
    refused_silently(&mut daemon, &mut keeper, "unlock first", unlock.as_bytes());
}

#[test]
fn invalid_resource_name_gets_rc_minus_14_and_a_half_close() {
    let (mut daemon, mut keeper) = setup();
    for name in ["1bad", "a_b", "_RESOURCEx[", "/a//b"] {
        let mut raw = Raw::connect(&daemon);
        raw.send(lock(name));
        let reply = raw.read_to_close();
        assert_eq!(reply.rcs(), [-14], "name {name:?}: {reply:?}");
        assert_eq!(
            attribute(&reply.messages[0], "step"),
            Some("16"),
            "{reply:?}"
        );
        drop(raw);
        assert_unharmed(&mut daemon, &mut keeper, &format!("invalid name {name:?}"));
    }
}

#[test]
fn over_long_message_gets_rc_minus_100_and_is_closed() {
    let (mut daemon, mut keeper) = setup();
    // No terminator at all.
    let start = format!(r#"{XML_DECL}<msg level="3" verb="1" step="8"><session peerid=""#);
    let mut bytes = start.into_bytes();
    bytes.resize(MAX_MESSAGE + 100, b'A');
    let mut raw = Raw::connect(&daemon);
    // The daemon may close while the last bytes are on their way: a failed send is fine.
    let _ = raw.stream.write_all(&bytes);
    let reply = raw.read_to_close();
    assert_eq!(reply.rcs(), [-100], "{reply:?}");
    assert_unharmed(&mut daemon, &mut keeper, "over-long, no terminator");

    // A whole message, but longer than the limit.
    let name = "L".repeat(MAX_MESSAGE);
    let mut raw = Raw::connect(&daemon);
    let _ = raw.stream.write_all(lock(&name).as_bytes());
    let reply = raw.read_to_close();
    assert_eq!(reply.rcs(), [-100], "{reply:?}");
    assert_unharmed(&mut daemon, &mut keeper, "over-long, terminated");

    // A flood: the daemon stops reading long before it ends (it does not buffer it all).
    // It begins as a message does (bytes that cannot are refused at once: framer.rs).
    let mut raw = Raw::connect(&daemon);
    let _ = raw.stream.write_all(b"<msg ");
    let chunk = vec![b'A'; 1 << 20];
    let mut sent = 0usize;
    while sent < 64 << 20 {
        match raw.stream.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    assert!(
        sent < 16 << 20,
        "the daemon read {} MiB of a message without a terminator",
        sent >> 20
    );
    let reply = raw.read_to_close();
    assert_eq!(reply.rcs(), [-100], "{reply:?}");
    assert_unharmed(&mut daemon, &mut keeper, "flood");
}

#[test]
fn long_names_are_granted_and_reported_intact() {
    let (mut daemon, mut keeper) = setup();
    for len in [2_000, 16 * 1024] {
        let name = format!("L{}", "x".repeat(len - 1));
        let mut raw = Raw::connect(&daemon);
        raw.send(lock(&name));
        let reply = raw.read(1, REPLY);
        assert_eq!(reply.rcs(), [0], "a {len}-byte name: {reply:?}");
        let state = daemon.state();
        let locker = state
            .lockers
            .iter()
            .find(|l| l.resource_name == name)
            .unwrap_or_else(|| panic!("no locker for the {len}-byte name: {state:#?}"));
        assert_eq!(locker.holders.len(), 1, "{locker:#?}");
        assert_eq!(locker.holders[0].request.resource_name, name);
        let conn = locker.holders[0].request.conn;
        // The unlock names it too, and it is found.
        raw.send(format!(
            r#"{XML_DECL}<msg level="3" verb="2" step="8"><resource name="{}" rollback="0" /></msg>"#,
            base64(name.as_bytes())
        ));
        wait_for("the long-named lock released", CHANGE, || {
            let state = daemon.state();
            (!holders_of(&state, &name).contains(&conn)).then_some(())
        });
        assert!(raw.is_open(), "a clean unlock closed the connection");
        assert_unharmed(&mut daemon, &mut keeper, &format!("{len}-byte name"));
    }
}

#[test]
fn client_vanishing_mid_message_is_forgotten() {
    let (mut daemon, mut keeper) = setup();
    let message = lock("keep");
    let half = &message.as_bytes()[..message.len() / 2];
    // Closed outright.
    let mut raw = Raw::connect(&daemon);
    raw.send(half);
    drop(raw);
    assert_unharmed(&mut daemon, &mut keeper, "vanished mid-message");
    // Half-closed: the daemon closes its side too, with no answer.
    let mut raw = Raw::connect(&daemon);
    raw.send(half);
    raw.stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let reply = raw.read_to_close();
    assert!(reply.messages.is_empty(), "{reply:?}");
    assert_unharmed(&mut daemon, &mut keeper, "half-closed mid-message");
    // A waiter for `keep` that vanishes leaves the queue.
    let mut raw = Raw::connect(&daemon);
    raw.send(lock("keep"));
    assert_eq!(raw.read(1, REPLY).rcs(), [1], "not queued");
    drop(raw);
    wait_for("the vanished waiter cancelled", CHANGE, || {
        daemon
            .state()
            .lockers
            .iter()
            .all(|l| l.waitings.is_empty())
            .then_some(())
    });
    assert_unharmed(&mut daemon, &mut keeper, "vanished waiter");
}

/// `latch status --json`'s `connections`.
fn connections(daemon: &Daemon) -> u64 {
    let status: serde_json::Value = daemon.client().args(["status", "--json"]).expect_json();
    status["connections"]
        .as_u64()
        .unwrap_or_else(|| panic!("no connections count in {status}"))
}

#[test]
fn thousands_of_idle_connections_harm_no_one() {
    const IDLE: usize = 3_000;
    // The test process needs a descriptor per connection.
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < (IDLE as u64) + 200 {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("raise RLIMIT_NOFILE");
    }
    let (mut daemon, mut keeper) = setup();
    let idle: Vec<UnixStream> = (0..IDLE)
        .map(|i| {
            UnixStream::connect(daemon.socket())
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect();
    let expected = IDLE as u64 + 1;
    wait_for("the daemon counting every idle connection", CHANGE, || {
        (connections(&daemon) == expected).then_some(())
    });
    // They took no ids: the next client follows the keeper and its locker.
    let mut raw = Raw::connect(&daemon);
    raw.send(lock("next"));
    assert_eq!(raw.read(1, REPLY).rcs(), [0]);
    let state = daemon.state();
    assert_eq!(holders_of(&state, "next"), [keeper.conn + 2], "{state:#?}");
    drop(raw);
    assert_unharmed(&mut daemon, &mut keeper, "3000 idle connections");
    drop(idle);
    wait_for("the idle connections closed", CHANGE, || {
        (connections(&daemon) == 1).then_some(())
    });
    assert_unharmed(&mut daemon, &mut keeper, "after the idle connections left");
}
