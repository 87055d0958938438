//! Which daemon a command looks at: a running process, or a core file and the executable
//! it ran. One set of arguments for every command that reads a daemon.
//!
//! Argument parsing only; opening and reading the target is the model's job.

use clap::{ArgGroup, Args};
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).args(["pid", "core"])))]
pub(super) struct TargetArgs {
    /// The daemon's pid.
    #[arg(long)]
    pid: Option<u32>,
    /// A core file of the daemon (from gcore or the kernel); needs --exe.
    #[arg(long, value_name = "FILE", requires = "exe")]
    core: Option<PathBuf>,
    /// The executable the dumped daemon ran (with its debug info).
    #[arg(long, value_name = "BIN", requires = "core")]
    exe: Option<PathBuf>,
}

/// A parsed target.
pub(super) enum Target<'a> {
    Live(u32),
    Core { core: &'a PathBuf, exe: &'a PathBuf },
}

impl TargetArgs {
    pub(super) fn target(&self) -> Target<'_> {
        match (&self.core, &self.exe, self.pid) {
            (Some(core), Some(exe), _) => Target::Core { core, exe },
            // clap requires --pid or --core, and --exe with --core.
            (_, _, pid) => Target::Live(pid.unwrap_or_default()),
        }
    }
}
