//! [`EventReader`]: a subscriber to the daemon's own `events` stream on an admin connection
//! of its own.
//!
//! It may not outlive its subscription: dropping it closes the connection.

use crate::daemon::Daemon;
use crate::lines::Lines;
use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;

/// An `events` subscriber on its own admin connection; ends the subscription when dropped.
pub struct EventReader {
    pub lines: Lines,
    stream: UnixStream,
}

impl EventReader {
    /// Subscribes, and returns once the subscription is in place (an admin request sent
    /// after it is answered: one admin thread serves requests in arrival order).
    pub fn start(daemon: &Daemon) -> EventReader {
        let mut stream = UnixStream::connect(daemon.socket()).expect("connect");
        stream
            .write_all(b"{\"op\":\"events\"}\n")
            .expect("send the events request");
        let lines = Lines::collect(stream.try_clone().expect("clone the stream"));
        daemon.client().args(["ping", "--json"]).expect_success();
        EventReader { lines, stream }
    }
}

impl Drop for EventReader {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
