//! `latch-probe`: the command line over the probe library. Subcommands parse arguments,
//! call the library and print; they hold no probing logic of their own.

mod dump;
mod mount;
mod target;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use latch_probe::debuginfo::Executable;
use latch_probe::model::{exit_code, ProbeError};
use latch_probe::trace::{event_kind, GrantPlan, GrantTrace};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "latch-probe",
    version,
    about = "Reads a latch daemon's state from outside"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream the daemon's lock grants live through an eBPF uprobe, one JSON object a line.
    Trace {
        /// The daemon's pid.
        #[arg(long)]
        pid: u32,
        /// Stop after this many seconds (default: until interrupted).
        #[arg(long, value_name = "SECS")]
        duration: Option<f64>,
    },
    /// Print the daemon's lock state, read from outside (a live process or a core file).
    Dump(dump::DumpArgs),
    /// Mount the daemon's lock state as a read-only FUSE tree in FLoM's VFS layout.
    Mount(mount::MountArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // Help and version are answers; anything else is a usage error, whose code is
            // 1 here (clap's 2 means "target not found" in the probe's documented codes).
            return ExitCode::from(if err.use_stderr() {
                exit_code::USAGE
            } else {
                exit_code::OK
            });
        }
    };
    let result = match cli.command {
        Command::Trace { pid, duration } => trace(pid, duration).map(|()| exit_code::OK),
        Command::Dump(args) => dump::run(&args),
        Command::Mount(args) => mount::run(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`dump --json | head`) is not an error of ours.
        Err(err) if is_broken_pipe(&err) => ExitCode::from(exit_code::OK),
        Err(err) => {
            // The whole cause chain on one line; a backtrace helps no user of a probe.
            eprintln!("latch-probe: {err:#}");
            let probe_error = err.chain().find_map(|e| e.downcast_ref::<ProbeError>());
            ExitCode::from(probe_error.map_or(exit_code::USAGE, ProbeError::exit_code))
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

fn trace(pid: u32, duration: Option<f64>) -> Result<()> {
    let duration = duration
        .map(Duration::try_from_secs_f64)
        .transpose()
        .context("--duration must be a non-negative number of seconds")?;
    // The process's own executable, even if the file on disk was replaced since it started.
    let exe_path = PathBuf::from(format!("/proc/{pid}/exe"));
    let exe = Executable::open(&exe_path).with_context(|| format!("reading process {pid}"))?;
    let plan = GrantPlan::from_executable(&exe)?;
    let mut trace = GrantTrace::attach(&plan, &exe_path, pid)?;
    let deadline = duration.map(|d| Instant::now() + d);
    loop {
        let wait = match deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(1),
        };
        if wait.is_zero() {
            return Ok(());
        }
        if let Some(event) = trace.next_event(wait)? {
            let kind = event_kind(&event)
                .and_then(|k| serde_json::to_value(k).ok())
                .unwrap_or(serde_json::Value::Null);
            let line = serde_json::json!({"kind": kind, "locker": event.locker, "tid": event.tid});
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}")?;
            out.flush()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_target_is_a_pid_or_a_core_with_its_executable() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|_| ());
        assert!(parse(&["latch-probe", "dump", "--pid", "1"]).is_ok());
        assert!(parse(&["latch-probe", "dump", "--core", "c", "--exe", "e"]).is_ok());
        assert!(parse(&["latch-probe", "dump"]).is_err());
        assert!(parse(&["latch-probe", "dump", "--core", "c"]).is_err());
        assert!(parse(&[
            "latch-probe",
            "mount",
            "--pid",
            "1",
            "--core",
            "c",
            "--exe",
            "e",
            "d"
        ])
        .is_err());
    }
}
