//! `latch-probe`: the command line over the probe library. Parsing and the commands are
//! [`commands`]'s; here the result becomes an exit code.

#![forbid(unsafe_code)]

mod commands;

use clap::Parser;
use latch_probe::error::{exit_code, ProbeError};
use latch_probe::evidence::EvidenceError;
use latch_probe::trace::TraceError;
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
            // The documented code of the first of the probe's own errors in the chain.
            let code = err.chain().find_map(|e| {
                e.downcast_ref::<ProbeError>()
                    .map(ProbeError::exit_code)
                    .or_else(|| e.downcast_ref::<TraceError>().map(TraceError::exit_code))
                    .or_else(|| {
                        e.downcast_ref::<EvidenceError>()
                            .map(EvidenceError::exit_code)
                    })
            });
            ExitCode::from(code.unwrap_or(exit_code::USAGE))
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
