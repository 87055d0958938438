//! Core files of running processes, written by gdb's `gcore`.
//!
//! It may not stop or change the process it dumps (gcore attaches and detaches).

use crate::command::TestCommand;
use crate::timeouts::TOOL;
use std::path::{Path, PathBuf};

/// `gcore -o DIR/core PID`: the core file of `pid`, written into `dir`. The test fails,
/// saying how to get gdb, if gcore fails or writes no file.
#[track_caller]
pub fn gcore(pid: u32, dir: &Path) -> PathBuf {
    let prefix = dir.join("core");
    let out = TestCommand::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(pid.to_string())
        .timeout(TOOL)
        .output();
    let core = PathBuf::from(format!("{}.{pid}", prefix.display()));
    assert!(
        out.status.success() && core.is_file(),
        "gcore {pid} failed (scripts/setup.sh installs gdb) ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    core
}
