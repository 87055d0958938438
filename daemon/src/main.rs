//! `latch`: the flom-compatible client, the daemon, the admin client and the load
//! generator, behind one command line ([`cli::args`]). Parses and dispatches; each
//! subcommand is a module of [`cli`].

mod cli;

use clap::Parser;
use cli::admin_client::{self, Op};
use cli::args::{Cli, Sub};
use cli::client::{self, EXIT_ERROR};
use cli::{bench, daemon};
use latch::table::VERSION;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = e.print();
            return exit(code);
        }
    };
    if cli.version {
        println!("latch {VERSION}");
        return exit(0);
    }
    let Some(sub) = &cli.sub else {
        return exit(client::run(&cli.endpoint, &cli.lock, &cli.command));
    };
    let Ok(endpoint) = cli.endpoint.endpoint() else {
        eprintln!("latch: -s (Unix socket) and -a (TCP address) cannot be used together");
        return exit(EXIT_ERROR);
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
    exit(code)
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}
