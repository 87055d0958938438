//! [`Background`]: a process running beside the test, ended by its pid when dropped.
//!
//! It may not wait without a bound or outlive the value that owns it.

use crate::procs::{end_child, wait_child_within};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// A process running beside the test, stopped and reaped when dropped.
pub struct Background {
    child: Child,
    what: String,
}

impl Background {
    /// Starts `cmd` with its stdout discarded.
    pub fn spawn(cmd: &mut Command) -> Background {
        Background::spawn_keeping_output(cmd.stdout(Stdio::null()))
    }

    /// Like [`Background::spawn`], but the command's own stdout (a terminal, say) is kept.
    pub fn spawn_keeping_output(cmd: &mut Command) -> Background {
        let what = format!("{cmd:?}");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Background { child, what }
    }

    /// The process id (to signal it, or to find its children, by pid).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit, at most `timeout`.
    #[track_caller]
    pub fn wait_within(&mut self, timeout: Duration) -> ExitStatus {
        wait_child_within(&mut self.child, timeout)
            .unwrap_or_else(|| panic!("{} did not exit within {timeout:?}", self.what))
    }

    /// Closes the process's stdin, if it is a pipe from the test.
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        end_child(&mut self.child);
    }
}
