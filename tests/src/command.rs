//! [`TestCommand`]: a command run to completion with a bound, and the checks on how it
//! ended (`expect_success`, `expect_exit`) whose failures show everything about the run.
//!
//! It may not wait without a bound (a command that overruns is ended by its pid) or leave
//! a process behind.

use crate::background::Background;
use crate::procs::end_child;
use crate::timeouts::{CLIENT, POLL};
use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Methods of [`TestCommand`] that call the [`Command`] method of the same name and
/// return the `TestCommand`, so that a chain of them stays one.
macro_rules! pass_to_command {
    ($(fn $name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            pub fn $name(&mut self, $($arg: $ty),*) -> &mut TestCommand {
                self.cmd.$name($($arg),*);
                self
            }
        )*
    };
}

/// A [`Command`] with a bound on how long it may run (by default [`CLIENT`]) and its stdin
/// at /dev/null unless set; run to completion, or started beside the test as a
/// [`Background`].
#[derive(Debug)]
pub struct TestCommand {
    cmd: Command,
    timeout: Duration,
}

impl TestCommand {
    pub fn new(program: impl AsRef<OsStr>) -> TestCommand {
        let mut cmd = Command::new(program);
        cmd.stdin(Stdio::null());
        TestCommand {
            cmd,
            timeout: CLIENT,
        }
    }

    // What is set on the command as on a `Command`, chained on the `TestCommand`.
    pass_to_command! {
        fn arg(arg: impl AsRef<OsStr>);
        fn args(args: impl IntoIterator<Item = impl AsRef<OsStr>>);
        fn env(key: impl AsRef<OsStr>, value: impl AsRef<OsStr>);
        fn env_remove(key: impl AsRef<OsStr>);
        fn current_dir(dir: impl AsRef<Path>);
        fn stdin(stdin: impl Into<Stdio>);
        fn stdout(stdout: impl Into<Stdio>);
        fn stderr(stderr: impl Into<Stdio>);
    }

    /// How long the command may run before the test fails.
    pub fn timeout(&mut self, timeout: Duration) -> &mut TestCommand {
        self.timeout = timeout;
        self
    }

    /// Starts the command beside the test, its stdout discarded; it is ended by its pid
    /// when the returned value is dropped.
    pub fn background(&mut self) -> Background {
        Background::spawn(&mut self.cmd)
    }

    /// Like [`TestCommand::background`], but its stdout is what [`TestCommand::stdout`]
    /// set (a file the test reads, say).
    pub fn background_keeping_stdout(&mut self) -> Background {
        Background::spawn_keeping_output(&mut self.cmd)
    }

    /// Runs the command to completion with its output captured, failing the test if it
    /// takes longer than its timeout (the process is then ended by pid).
    pub fn output(&mut self) -> Output {
        let timeout = self.timeout;
        let mut child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.cmd));
        // Read both pipes while waiting, so that a large output cannot block the child.
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                Ok(None) => {
                    end_child(&mut child);
                    panic!("{:?} did not finish within {timeout:?}", self.cmd);
                }
                Err(e) => panic!("cannot wait for {:?}: {e}", self.cmd),
            }
        };
        Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }

    /// Runs the command; the test fails unless it exits 0. Its stdout.
    #[track_caller]
    pub fn expect_success(&mut self) -> String {
        let out = self.output();
        if !out.status.success() {
            panic!("{}", self.report("expected success", &out));
        }
        String::from_utf8(out.stdout.clone())
            .unwrap_or_else(|_| panic!("{}", self.report("expected UTF-8 on stdout", &out)))
    }

    /// Runs the command; the test fails unless it exits 0 with a JSON document of type `T`
    /// on stdout.
    #[track_caller]
    pub fn expect_json<T: serde::de::DeserializeOwned>(&mut self) -> T {
        let stdout = self.expect_success();
        serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "{:?} printed no {} document ({e}):\n{stdout}",
                self.cmd,
                std::any::type_name::<T>()
            )
        })
    }

    /// Runs the command; the test fails unless it exits with `code`. The whole output, for
    /// checks on what it said.
    #[track_caller]
    pub fn expect_exit(&mut self, code: i32) -> Output {
        let out = self.output();
        if out.status.code() != Some(code) {
            panic!(
                "{}",
                self.report(&format!("expected exit code {code}"), &out)
            );
        }
        out
    }

    /// What a failed check prints: the command line, how it ended, and all it wrote.
    fn report(&self, expected: &str, out: &Output) -> String {
        format!(
            "{expected}: {:?}\nstatus: {}\n\nstdout:\n{}\n\nstderr:\n{}",
            self.cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error leaves what was read so far, which is what the test reports.
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

#[cfg(test)]
mod tests {
    use super::TestCommand;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::time::{Duration, Instant};

    fn sh(script: &str) -> TestCommand {
        let mut cmd = TestCommand::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    /// The panic message of `f`, which must panic.
    fn panic_message(f: impl FnOnce()) -> String {
        let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("it should panic");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    #[test]
    fn expect_success_gives_stdout_and_expect_exit_the_whole_output() {
        assert_eq!(sh("echo out; echo err >&2").expect_success(), "out\n");
        let out = sh("echo err >&2; exit 3").expect_exit(3);
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn a_failed_check_shows_the_command_line_status_stdout_and_stderr() {
        let message = panic_message(|| {
            sh("echo the-out; echo the-err >&2; exit 4").expect_success();
        });
        for part in ["\"sh\"", "exit status: 4", "the-out", "the-err"] {
            assert!(message.contains(part), "{part:?} in {message}");
        }
        let message = panic_message(|| {
            sh("exit 0").expect_exit(2);
        });
        assert!(message.contains("expected exit code 2"), "{message}");
    }

    #[test]
    fn a_command_that_overruns_its_timeout_fails_the_test_at_the_bound() {
        let started = Instant::now();
        let message = panic_message(|| {
            sh("sleep 30").timeout(Duration::from_millis(200)).output();
        });
        assert!(message.contains("did not finish within"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
