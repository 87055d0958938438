//! `latch-probe`: the command line over the probe library. Parsing and the commands are
//! [`commands`]'s; here the result becomes an exit code.

#![forbid(unsafe_code)]

mod commands;

use clap::Parser;
use latch_probe::error::{exit_code, ProbeError};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match commands::Cli::try_parse() {
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
    let result = cli.run();
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
