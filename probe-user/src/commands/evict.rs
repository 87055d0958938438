//! `latch-probe evict`: sever one client's connection from outside, so that the daemon's own
//! logic releases what it holds (or drops its wait) and grants the next waiter. Refused,
//! with the reason, when the thread that holds the lock table is wedged (the daemon could
//! not act on the close), unless `--force`.

use anyhow::{bail, Context, Result};
use clap::Args;
use dwarfpeek::process::command_line;
use latch_probe::error::exit_code;
use latch_probe::evict;
use latch_probe::model::CaptureOptions;
use latch_probe::stacks::WEDGE_LOOK;
use latch_probe::target::LiveDaemon;
use std::time::Duration;

/// How long the daemon gets to act on the closed connection before the command says so.
const SETTLE: Duration = Duration::from_secs(5);

#[derive(Args)]
#[command(
    about = "Sever one client's connection from outside, so the daemon releases its lock",
    long_about = "Sever one client's connection from outside: the daemon's descriptor of \
                  conn N (from its decoded state) is copied with pidfd_getfd(2), checked to \
                  still be that client's connection (its peer pid, or TCP address), and shut \
                  down. The daemon sees the client gone and, by its own logic, releases what \
                  it held (or drops its wait) and grants the next waiter.\n\n\
                  Refused when the thread holding the lock table is wedged (it would never \
                  act on the close: see `latch-probe stacks`), unless --force. The daemon is \
                  frozen only for the state and stack copies, and never left stopped.\n\n\
                  Find conns with `latch-probe dump --pid P` (or `latch state`)."
)]
pub(super) struct EvictArgs {
    /// The daemon's pid.
    #[arg(long)]
    pid: u32,
    /// The connection to sever (a holder, a waiter or an incubated client).
    #[arg(long, value_name = "N")]
    conn: u64,
    /// Sever it even when the lock table's owner is wedged.
    #[arg(long)]
    force: bool,
}

pub(super) fn run(args: &EvictArgs) -> Result<u8> {
    let pid = args.pid;
    let daemon = LiveDaemon::open(pid)?;
    let capture = daemon.capture(CaptureOptions::default())?;
    let Some(connection) = evict::connection(&capture.state, args.conn) else {
        bail!(
            "daemon {pid} has no conn {} (no holder, waiter or incubated client); \
             `latch-probe dump --pid {pid}` lists them",
            args.conn
        );
    };

    if let Some(owner) = daemon.wedged_owner()? {
        let why = format!(
            "the lock table is held by thread {owner}, which has not let go for {WEDGE_LOOK:?}: \
             the daemon is wedged and would not act on a closed connection \
             (`latch-probe stacks --pid {pid}` shows where it hangs)"
        );
        if !args.force {
            eprintln!(
                "latch-probe: not evicting conn {}: {why}; --force severs it anyway",
                args.conn
            );
            return Ok(exit_code::USAGE);
        }
        eprintln!("latch-probe: {why}; severing anyway (--force)");
    }

    let expected = &connection.expected;
    evict::sever(pid, connection.fd, expected)?;
    let client = expected
        .peer_pid
        .map(|p| format!("pid {p} ({})", command_line(p)))
        .unwrap_or_else(|| format!("peer {}", expected.peer_name));
    eprintln!(
        "latch-probe: severed conn {} on {} (daemon fd {}, client {client})",
        args.conn, connection.resource, connection.fd
    );

    // Confirmed from outside, without stopping the daemon again.
    if evict::let_go(&daemon, args.conn, SETTLE).context("reading the state again")? {
        eprintln!("latch-probe: the daemon has let conn {} go", args.conn);
        Ok(exit_code::OK)
    } else {
        eprintln!(
            "latch-probe: conn {} is still in the daemon's table after {SETTLE:?}",
            args.conn
        );
        Ok(exit_code::TORN_OR_PARTIAL)
    }
}
