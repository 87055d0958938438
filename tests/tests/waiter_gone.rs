//! A regression test of the daemon: a holder and its waiter leave in one batch of events;
//! the holder's release grants the waiter, whose answer cannot be written (its client is
//! gone). Closing that connection must not take the lock table's mutex again while the
//! release still holds it: the daemon once deadlocked on itself there (found by the
//! probe's truth test).
//!
//! Raw FLoM connections from this process, so both closes land in one epoll batch.

use latch_tests::bins::Profile;
use latch_tests::daemon::Daemon;
use latch_tests::flom::{answer_rc, base64, lock_request};
use latch_tests::timeouts::REPLY;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

const ROUNDS: usize = 20;

/// A lock of `name` on a new connection; the first answer's rc.
fn lock(socket: &Path, name: &str) -> (UnixStream, i32) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(REPLY)).unwrap();
    let name = base64(name.as_bytes());
    let msg = lock_request(&name, "waiter-gone");
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
        let out = daemon
            .client()
            .args(["ping", "--timeout-ms", "3000"])
            .output();
        assert!(
            out.status.success(),
            "round {round}: the daemon stopped answering ({}); stderr:\n{}",
            out.status,
            daemon.stderr()
        );
    }
}
