//! [`ValueFixture`]: the value fixture (`tests/src/bin/value_fixture.rs`, known values of
//! every type the probe decodes) started and ready to be read.
//!
//! It may not leave the fixture running: it is killed and reaped by pid when dropped.

use crate::timeouts::FIXTURE_READY;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;

/// A started value fixture, killed and reaped by pid when dropped.
pub struct ValueFixture {
    child: Child,
    pub exe: PathBuf,
}

impl ValueFixture {
    pub fn start(exe: &Path) -> ValueFixture {
        ValueFixture::start_with(exe, &[])
    }

    pub fn start_with(exe: &Path, args: &[&str]) -> ValueFixture {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let fixture = ValueFixture {
            child,
            exe: exe.to_owned(),
        };
        // Read the line in a thread: a fixture that never says it is ready fails the test
        // after a bounded wait instead of hanging it.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(FIXTURE_READY) {
            Ok(line) if line.trim() == "ready" => fixture,
            other => panic!("{} did not print `ready`: {other:?}", exe.display()),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ValueFixture {
    fn drop(&mut self) {
        // The fixture has no state to save: SIGKILL by its own pid, then reap it.
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
