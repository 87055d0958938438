//! `latch-probe evict`: sever one client's connection from outside, so that the daemon's own
//! logic releases what it holds (or drops its wait) and grants the next waiter. Refused,
//! with the reason, when the thread that holds the lock table is wedged (the daemon could
//! not act on the close), unless `--force`.

use anyhow::{bail, Context, Result};
use clap::Args;
use latch_probe::evict::{self, Expected};
use latch_probe::model::{exit_code, CaptureOptions, DaemonImage, LOCK_TABLE};
use latch_probe::stacks;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the table must stay held by one thread to count as wedged.
const WEDGE_LOOK: Duration = Duration::from_millis(300);
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
pub struct EvictArgs {
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

pub fn run(args: &EvictArgs) -> Result<u8> {
    let pid = args.pid;
    let image = DaemonImage::open(Path::new(&format!("/proc/{pid}/exe")))?;
    let capture = image.capture_live(pid, CaptureOptions::default())?;
    let state = &capture.state;
    let entry = state
        .lockers
        .iter()
        .flat_map(|l| l.holders.iter().chain(&l.waitings))
        .find(|e| e.conn == args.conn)
        .map(|e| {
            (
                e.fd,
                e.peer_pid,
                e.peer_name.clone(),
                e.resource_name.clone(),
            )
        })
        .or_else(|| {
            state
                .incubator
                .iter()
                .find(|i| i.conn == args.conn)
                .map(|i| {
                    (
                        i.fd,
                        i.peer_pid,
                        i.peer_name.clone(),
                        i.resource_name.clone(),
                    )
                })
        });
    let Some((fd, peer_pid, peer_name, resource)) = entry else {
        bail!(
            "daemon {pid} has no conn {} (no holder, waiter or incubated client); \
             `latch-probe dump --pid {pid}` lists them",
            args.conn
        );
    };

    if let Some(owner) = wedged_owner(&image, pid)? {
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

    let expected = Expected {
        conn: args.conn,
        peer_pid,
        peer_name,
    };
    evict::sever(pid, fd, &expected)?;
    let client = peer_pid
        .map(|p| format!("pid {p} ({})", command_line(p)))
        .unwrap_or_else(|| format!("peer {}", expected.peer_name));
    eprintln!(
        "latch-probe: severed conn {} on {resource} (daemon fd {fd}, client {client})",
        args.conn
    );

    // Confirm from outside, without stopping the daemon again.
    let deadline = Instant::now() + SETTLE;
    let read = CaptureOptions {
        freeze: false,
        ..CaptureOptions::default()
    };
    loop {
        let now = image
            .capture_live(pid, read)
            .context("reading the state again")?;
        let present = now
            .state
            .lockers
            .iter()
            .flat_map(|l| l.holders.iter().chain(&l.waitings))
            .any(|e| e.conn == args.conn)
            || now.state.incubator.iter().any(|i| i.conn == args.conn);
        if !present {
            eprintln!("latch-probe: the daemon has let conn {} go", args.conn);
            return Ok(exit_code::OK);
        }
        if Instant::now() >= deadline {
            eprintln!(
                "latch-probe: conn {} is still in the daemon's table after {SETTLE:?}",
                args.conn
            );
            return Ok(exit_code::TORN_OR_PARTIAL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The thread (tid and name) that holds the lock table in two looks [`WEDGE_LOOK`] apart,
/// if one does.
fn wedged_owner(image: &DaemonImage, pid: u32) -> Result<Option<String>> {
    let holder = |image: &DaemonImage| -> Result<Option<(u32, String)>> {
        Ok(stacks::live(image, pid)?
            .into_iter()
            .find(|t| t.holds.iter().any(|l| l == LOCK_TABLE))
            .map(|t| (t.tid, t.name)))
    };
    let Some(first) = holder(image)? else {
        return Ok(None);
    };
    std::thread::sleep(WEDGE_LOOK);
    Ok(holder(image)?
        .filter(|second| *second == first)
        .map(|(tid, name)| format!("{tid} ({name})")))
}

/// A process's command line, as `ps` shows it.
fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(String::from_utf8_lossy)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "gone".to_owned())
}
