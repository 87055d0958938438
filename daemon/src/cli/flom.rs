//! `latch` without a subcommand, as `flom` runs: the information options that print and
//! exit (`-v`, `--signal-list`, `--unique-id`), the configuration, the command's trace
//! file, `-V`'s print-out, then the client.
//!
//! Orders the steps as flom's `main` does; each step is another module's.

#![forbid(unsafe_code)]

use super::args::Cli;
use super::session::machine_id;
use super::{client, exit, options, signals, trace};

/// Runs the flom-compatible client; returns the process exit status.
pub(crate) fn run(cli: &Cli) -> i32 {
    let flom = &cli.flom;
    if flom.package_info {
        print!("{}", package_info());
    }
    if flom.signal_list {
        print!("{}", signals::list_text());
    }
    if flom.package_info || flom.signal_list {
        return 0;
    }
    if flom.unique_id {
        println!("{}", machine_id());
        return 0;
    }
    let settings = match options::settings(&cli.endpoint, &cli.lock, flom) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(file) = &settings.command_trace_file {
        if let Err(e) = trace::init(
            Some(std::path::Path::new(file)),
            settings.append_trace_file,
            "info",
        ) {
            eprintln!("latch: {e}");
            return exit::ERROR;
        }
    }
    if settings.verbose {
        for line in settings.print_lines() {
            println!("{line}");
        }
    }
    let debug_feature = flom.debug_feature.as_deref();
    options::lower(&settings, &cli.lock, debug_feature, &cli.command)
        .map_or_else(|code| code, client::run)
}

/// `-v`: the package info, shaped as flom's.
fn package_info() -> String {
    format!(
        "latch: a FLoM-compatible lock daemon and client\n\
         License: {}\n\
         Package name: {}; package version: {}\n\
         TLS supported protocol(s): TLS 1.2 and TLS 1.3\n\
         Command line, configuration files and protocol: FLoM 1.7.2's\n",
        env!("CARGO_PKG_LICENSE"),
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
    )
}
