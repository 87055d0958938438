//! Clients that make deadlocks on purpose: [`Conns`], one process asking for locks on
//! connections of its own (the `lock_conns` test binary), and [`Nested`], a `latch` client
//! that, once told, runs a second one for another lock while it holds the first.
//!
//! Each is ended by its pid (a nested client by the process group it was put in) when
//! dropped.

use crate::daemon::Daemon;
use crate::procs::end_child;
use crate::timeouts::CLIENT;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;

/// A `lock_conns` process: one process asking for locks on connections of its own.
pub struct Conns {
    child: Child,
    stdin: Option<ChildStdin>,
    said: mpsc::Receiver<String>,
}

impl Conns {
    /// Starts `exe` (the test's `env!("CARGO_BIN_EXE_lock_conns")`: only an integration
    /// test knows where cargo put it) against `daemon`.
    pub fn start(exe: impl AsRef<Path>, daemon: &Daemon) -> Conns {
        let mut child = Command::new(exe.as_ref())
            .arg(daemon.socket())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start lock_conns: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, said) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Conns {
            stdin: child.stdin.take(),
            child,
            said,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks for `request` (`NAME [MODE [QUANTITY]]`) on a new connection; the test fails
    /// unless the daemon's first answer is `expected` (`granted` or `queued`).
    #[track_caller]
    pub fn ask(&mut self, request: &str, expected: &str) {
        let name = request.split_whitespace().next().unwrap_or_default();
        self.say(request, &format!("{expected} {name}"));
    }

    /// Closes the latest connection that asked for `name` (the daemon then drops its wait,
    /// or releases its lock).
    #[track_caller]
    pub fn close(&mut self, name: &str) {
        self.say(&format!("-{name}"), &format!("closed {name}"));
    }

    #[track_caller]
    fn say(&mut self, line: &str, expected: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("lock_conns reads its stdin");
        let answer = self
            .said
            .recv_timeout(CLIENT)
            .unwrap_or_else(|_| panic!("no answer to {line} within {CLIENT:?}"));
        assert_eq!(answer, expected, "the answer to {line}");
    }
}

impl Drop for Conns {
    fn drop(&mut self) {
        drop(self.stdin.take());
        end_child(&mut self.child);
    }
}

/// `latch -r FIRST -- sh -c '<wait for GO>; exec latch -r SECOND -- sleep 600'` in a process
/// group of its own, which is killed when dropped: a client that, once told, asks for a
/// second lock while holding the first.
pub struct Nested {
    child: Child,
}

impl Nested {
    pub fn start(daemon: &Daemon, first: &str, second: &str, go: &Path) -> Nested {
        let latch = daemon.bin().display().to_string();
        let socket = daemon.socket().display().to_string();
        let script = format!(
            "while [ ! -e '{}' ]; do sleep 0.02; done; exec '{latch}' -s '{socket}' -r {second} -- sleep 600",
            go.display()
        );
        let child = Command::new(daemon.bin())
            .args(["-s", &socket, "-r", first, "--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start a nested client: {e}"));
        Nested { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        // The group is the one this client was put in at its start: its pid.
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
