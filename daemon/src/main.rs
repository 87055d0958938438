//! `latch`: the flom-compatible client, the daemon, the admin client and the load
//! generator, behind one command line ([`cli::args`]). Parses and dispatches; each
//! subcommand is a module of [`cli`].

mod cli;

use clap::Parser;
use cli::admin_client::{self, Op};
use cli::args::{Cli, Sub};
use cli::{bench, daemon, exit, flom};
use latch::table::VERSION;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::ERROR } else { 0 };
            let _ = e.print();
            return exit_status(code);
        }
    };
    if cli.version {
        println!("latch {VERSION}");
        return exit_status(0);
    }
    let Some(sub) = &cli.sub else {
        return exit_status(flom::run(&cli));
    };
    let endpoint = match sub {
        Sub::Daemon(args) => daemon::endpoint(&cli.endpoint, args),
        _ => cli.endpoint.endpoint(),
    };
    let endpoint = match endpoint {
        Ok(endpoint) => endpoint,
        Err(e) => {
            eprintln!("latch: {e}");
            return exit_status(exit::ERROR);
        }
    };
    let code = match sub {
        Sub::Daemon(args) => daemon::run(endpoint, args),
        Sub::Bench(args) => match bench::run(&endpoint, args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("latch bench: {e:#}");
                1
            }
        },
        Sub::Ping(args) => admin_client::run(&endpoint, Op::Ping, args),
        Sub::Status(args) => admin_client::run(&endpoint, Op::Status, args),
        Sub::State(args) => admin_client::run(&endpoint, Op::State, args),
        Sub::Events(args) => admin_client::run(&endpoint, Op::Events, args),
    };
    exit_status(code)
}

fn exit_status(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}
