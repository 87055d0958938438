//! A regression test of the daemon: a holder and its waiter leave in one batch of events;
//! the holder's release grants the waiter, whose answer cannot be written (its client is
//! gone). Closing that connection must not take the lock table's mutex again while the
//! release still holds it: the daemon once deadlocked on itself there (found by the
//! probe's truth test).
//!
//! Raw FLoM connections from this process, so both closes land in one epoll batch.

use base64::Engine as _;
use latch_tests::{answer_rc, output_within, Daemon, Profile};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const ROUNDS: usize = 20;

/// A lock of `name` on a new connection; the first answer's rc.
fn lock(socket: &Path, name: &str) -> (UnixStream, i32) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let name = base64::engine::general_purpose::STANDARD.encode(name);
    let msg = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?><msg level=\"3\" verb=\"1\" step=\"8\">\
         <session peerid=\"waiter-gone\"/><resource name=\"{name}\" mode=\"5\" wait=\"1\" \
         create=\"1\" lifespan=\"0\"/></msg>"
    );
    stream.write_all(msg.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 256];
    while !answer.ends_with(b"</msg>") {
        let n = stream
            .read(&mut buf)
            .expect("an answer (a wedged daemon gives none)");
        assert!(n > 0, "the daemon closed the connection");
        answer.extend_from_slice(&buf[..n]);
    }
    let rc = answer_rc(&answer);
    (stream, rc)
}

#[test]
fn a_holder_and_its_waiter_leaving_together_do_not_wedge_the_daemon() {
    let daemon = Daemon::start(Profile::Debug);
    for round in 0..ROUNDS {
        let name = format!("r{round}");
        let (holder, granted) = lock(daemon.socket(), &name);
        let (waiter, queued) = lock(daemon.socket(), &name);
        assert_eq!((granted, queued), (0, 1), "round {round}");
        drop(waiter);
        drop(holder);
        let out = output_within(
            daemon.client().args(["ping", "--timeout-ms", "3000"]),
            IO_TIMEOUT,
        );
        assert!(
            out.status.success(),
            "round {round}: the daemon stopped answering ({}); stderr:\n{}",
            out.status,
            daemon.stderr()
        );
    }
}
