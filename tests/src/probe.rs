//! Running `latch-probe`: one command builder for a run to completion, [`ProbeStream`] for
//! the commands that attach uprobes and run beside the test, and whether a probe is still
//! attached to a process.
//!
//! It may stop only the probe processes it started, by pid.

use crate::bins::probe_bin;
use crate::command::TestCommand;
use crate::daemon::Daemon;
use crate::lines::Lines;
use crate::procs::{end_child, wait_child_within};
use crate::timeouts::{PROBE, PROBE_ATTACH, STOP};
use crate::wait::wait_for;
use latch_probe_common::doc::{Source, StateDoc};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::process::{Child, Command, Stdio};

/// `latch-probe`'s exit code for a usage error (docs/probe.md, "Exit codes").
pub const EXIT_USAGE: i32 = 1;
/// `latch-probe`'s exit code for a target that is not there or not permitted.
pub const EXIT_NOT_FOUND: i32 = 2;
/// `latch-probe`'s exit code for a target that is not a latch daemon, or has no debug info.
pub const EXIT_NOT_A_LATCH_DAEMON: i32 = 3;

/// `latch-probe ARGS`, bounded by [`PROBE`].
pub fn latch_probe(args: &[&str]) -> TestCommand {
    let mut cmd = TestCommand::new(probe_bin());
    cmd.args(args).timeout(PROBE);
    cmd
}

/// Runs `cmd`, a `latch-probe dump ... --json` that must succeed; its document, checked to
/// come from `source` and then given the daemon's `source`, for comparison with
/// `latch state --json`.
#[track_caller]
pub fn expect_dump(cmd: &mut TestCommand, source: Source) -> StateDoc {
    as_daemon_doc(cmd.expect_json(), source)
}

/// A state document the probe wrote, checked to come from `source` and then given the
/// daemon's `source`, so that it compares equal with `latch state --json` when the states
/// agree.
#[track_caller]
pub fn as_daemon_doc(mut doc: StateDoc, source: Source) -> StateDoc {
    assert_eq!(doc.source, source, "where the probe read the state from");
    doc.source = Source::Daemon;
    doc
}

/// Whether process `pid` is traced by nobody and no `latch-probe` still runs against it
/// (the probe's uprobes, mounts and ptrace attachments live only as long as its process).
pub fn probe_free(pid: u32) -> bool {
    let untraced = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| s.lines().any(|l| l == "TracerPid:\t0"));
    let target = format!("--pid {pid} ");
    let probes_left = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .any(|c| c.contains("latch-probe") && c.contains(&target));
    untraced && !probes_left
}

/// The daemon still runs, traced by nobody, with no `latch-probe` left running against it:
/// what every probe command must leave behind.
#[track_caller]
pub fn assert_left_running_and_untraced(daemon: &mut Daemon) {
    assert!(
        daemon.is_running(),
        "the daemon died; stderr:\n{}",
        daemon.stderr()
    );
    assert!(
        probe_free(daemon.pid()),
        "the probe left daemon {} traced, or still runs against it",
        daemon.pid()
    );
}

/// A `latch-probe` command that attaches uprobes (`trace`, `watch`) running beside the
/// test, its output collected; stopped by pid when dropped.
pub struct ProbeStream {
    child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl ProbeStream {
    /// Starts `latch-probe SUBCOMMAND --pid P ARGS` and returns once its uprobes are attached
    /// (it says so on stderr).
    pub fn start(subcommand: &str, pid: u32, args: &[&str]) -> ProbeStream {
        let mut child = Command::new(probe_bin())
            .args([subcommand, "--pid", &pid.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start latch-probe {subcommand}: {e}"));
        let stdout = Lines::collect(child.stdout.take().expect("piped stdout"));
        let stderr = Lines::collect(child.stderr.take().expect("piped stderr"));
        let mut stream = ProbeStream {
            child,
            stdout,
            stderr,
        };
        wait_for("latch-probe attaches its uprobes", PROBE_ATTACH, || {
            if let Ok(Some(status)) = stream.child.try_wait() {
                panic!(
                    "latch-probe {subcommand} exited ({status}) before attaching:\n{}",
                    stream.stderr.all().join("\n")
                );
            }
            stream
                .stderr
                .all()
                .iter()
                .any(|l| l.contains("uprobes attached"))
                .then_some(())
        });
        stream
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, as a user's Ctrl-C or service manager would; the command must exit 0 by
    /// itself. Its whole stdout and stderr.
    pub fn stop(mut self) -> (Vec<String>, Vec<String>) {
        let pid = Pid::from_raw(self.child.id() as i32);
        kill(pid, Signal::SIGTERM).expect("SIGTERM to latch-probe trace");
        let status = wait_child_within(&mut self.child, STOP)
            .unwrap_or_else(|| panic!("latch-probe trace did not exit within {STOP:?} of SIGTERM"));
        let (stdout, stderr) = (
            std::mem::replace(&mut self.stdout, Lines::collect(std::io::empty())),
            std::mem::replace(&mut self.stderr, Lines::collect(std::io::empty())),
        );
        let (stdout, stderr) = (stdout.finish(), stderr.finish());
        assert!(
            status.success(),
            "latch-probe exited {status} on SIGTERM:\n{}",
            stderr.join("\n")
        );
        (stdout, stderr)
    }
}

impl Drop for ProbeStream {
    fn drop(&mut self) {
        end_child(&mut self.child);
    }
}
