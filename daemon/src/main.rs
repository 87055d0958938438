//! `latch`: the flom-compatible client, the daemon, the admin client and the load
//! generator, behind one command line ([`latch::cli`]).

use clap::Parser;
use latch::admin_client::{self, Op};
use latch::cli::{Cli, Sub};
use latch::server::{Config, Server};
use latch::{autostart, bench, client, table};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                client::EXIT_ERROR
            } else {
                0
            };
            let _ = e.print();
            return exit(code);
        }
    };
    if cli.version {
        println!("latch {}", table::VERSION);
        return exit(0);
    }
    let endpoint = || match cli.endpoint.endpoint() {
        Ok(e) => Ok(e),
        Err(_) => {
            eprintln!("latch: -s (Unix socket) and -a (TCP address) cannot be used together");
            Err(exit(client::EXIT_ERROR))
        }
    };
    match &cli.sub {
        None => exit(client::run(&cli.endpoint, &cli.lock, &cli.command)),
        Some(Sub::Daemon(args)) => match endpoint() {
            Ok(ep) => daemon(ep, args),
            Err(code) => code,
        },
        Some(Sub::Bench(args)) => match endpoint() {
            Ok(ep) => match bench::run(&ep, args) {
                Ok(()) => exit(0),
                Err(e) => {
                    eprintln!("latch bench: {e:#}");
                    exit(1)
                }
            },
            Err(code) => code,
        },
        Some(sub) => {
            let (op, args) = match sub {
                Sub::Ping(a) => (Op::Ping, a),
                Sub::Status(a) => (Op::Status, a),
                Sub::State(a) => (Op::State, a),
                Sub::Events(a) => (Op::Events, a),
                Sub::Daemon(_) | Sub::Bench(_) => unreachable!("handled above"),
            };
            match endpoint() {
                Ok(ep) => exit(admin_client::run(&ep, op, args)),
                Err(code) => code,
            }
        }
    }
}

fn daemon(endpoint: latch::net::Endpoint, args: &latch::cli::DaemonArgs) -> ExitCode {
    let mut hang_on_lock = None;
    for feature in &args.debug_feature {
        match feature.split_once('=') {
            Some(("hang-on-lock", name)) => hang_on_lock = Some(name.to_owned()),
            _ => {
                eprintln!(
                    "latch daemon: unknown --debug-feature {feature:?} (known: hang-on-lock=NAME)"
                );
                return exit(client::EXIT_ERROR);
            }
        }
    }
    // A client-started daemon detaches first, while it has no threads, and gives way if
    // another starter holds the start-up lock.
    let _startup_lock = if args.spawned {
        match autostart::detach_and_lock(&endpoint) {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => return exit(0),
            Err(e) => {
                eprintln!("latch daemon: cannot take the start-up lock: {e}");
                return exit(client::EXIT_ERROR);
            }
        }
    } else {
        None
    };
    init_logging(args.spawned);
    bench::raise_fd_limit();
    let config = Config {
        endpoint: endpoint.clone(),
        lifespan_ms: args.lifespan_ms,
        hang_on_lock,
        peerid: client::machine_id(),
    };
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("latch daemon: cannot listen on {endpoint}: {e}");
            return exit(client::EXIT_ERROR);
        }
    };
    if args.spawned {
        autostart::report_ready();
    }
    log::info!(
        "latch {} listening on {endpoint}, pid {}",
        table::VERSION,
        std::process::id()
    );
    match server.run() {
        Ok(why) => {
            log::info!("exiting: {why:?}");
            exit(0)
        }
        Err(e) => {
            eprintln!("latch daemon: {e}");
            exit(client::EXIT_ERROR)
        }
    }
}

/// Logs to stderr; `LATCH_LOG` sets the level (error, warn, info, debug). A client-started
/// daemon has no stderr to speak of, so it stays quiet unless asked.
fn init_logging(spawned: bool) {
    let default = if spawned { "off" } else { "warn" };
    let level = std::env::var("LATCH_LOG").unwrap_or_else(|_| default.to_owned());
    env_logger::Builder::new()
        .parse_filters(&level)
        .format_timestamp_millis()
        .init();
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}
