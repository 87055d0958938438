//! `latch-probe watch`: the daemon's state kept live from one snapshot and the eBPF events
//! after it, with an alert (NDJSON on stdout) for each waiter past `--max-wait`, holder past
//! `--max-hold`, holder whose client process is gone, and deadlock as the events close it;
//! the state itself, on request, in a file kept current.

use super::stopping::Stopping;
use super::trace::attached;
use anyhow::{Context, Result};
use clap::Args;
use dwarfpeek::process;
use latch_probe::analysis::parties::peer_pids;
use latch_probe::analysis::ProcessTable;
use latch_probe::error::exit_code;
use latch_probe::merge::alerts::{Alerts, Bounds};
use latch_probe::merge::cycles::CycleAlerts;
use latch_probe::model::CaptureOptions;
use latch_probe::target::LiveDaemon;
use latch_probe::trace::{Followed, Follower};
use latch_probe_common::doc::AlertDoc;
use latch_probe_common::EventKind;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the bounds are checked and the state file rewritten (when it changed).
const TICK: Duration = Duration::from_millis(100);

#[derive(Args)]
#[command(
    about = "Keep the daemon's state live from eBPF events and alert on long waits and holds",
    long_about = "Keep the daemon's state live from outside: one snapshot (frozen, like \
                  dump), then the eBPF events merged into it, with no further stop of the \
                  daemon unless events were lost (then a new snapshot is taken, and said on \
                  stderr).\n\n\
                  Alerts are `latch.alert/1` NDJSON on stdout (docs/formats.md), each said \
                  once per entry and state: `max_wait` for a waiter or incubated client \
                  waiting longer than --max-wait, `max_hold` for a holder holding longer than \
                  --max-hold, `client_vanished` for a holder whose client process is gone \
                  while the daemon still counts it, and `deadlock` the moment the events \
                  close a cycle of parties waiting for each other (found as `analyze` finds \
                  it; said once per cycle, again only if it is broken and formed anew), \
                  with the cycle party by party and the `evict` that breaks it. Durations: \
                  500ms, 2s, 1m...\n\n\
                  --state-file keeps FILE a current `latch.state/1` document (replaced \
                  atomically, at most every 100 ms).\n\n\
                  Stop: SIGINT, SIGTERM or SIGHUP, or --duration; the uprobes are detached \
                  either way. Needs root."
)]
pub(super) struct WatchArgs {
    /// The daemon's pid.
    #[arg(long)]
    pid: u32,
    /// Alert on a waiter (or incubated client) waiting longer than this.
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    max_wait: Option<Duration>,
    /// Alert on a holder holding longer than this.
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    max_hold: Option<Duration>,
    /// Keep this file a current latch.state/1 document.
    #[arg(long, value_name = "FILE")]
    state_file: Option<PathBuf>,
    /// Read the first snapshot without stopping the daemon (retrying while it changes).
    #[arg(long)]
    no_freeze: bool,
    /// Stop after this many seconds (default: until interrupted).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
}

pub(super) fn run(args: &WatchArgs) -> Result<u8> {
    let stopping = Stopping::new(args.duration)?;
    let options = CaptureOptions {
        freeze: !args.no_freeze,
        ..CaptureOptions::default()
    };
    let mut follower = Follower::start(LiveDaemon::open(args.pid)?, options)?;
    attached(args.pid, follower.probes());
    let mut alerts = Alerts::new(Bounds {
        max_wait: args.max_wait,
        max_hold: args.max_hold,
    });
    let mut cycles = CycleAlerts::default();
    // The peers' processes, read once each and kept while they are peers.
    let mut processes = ProcessTable::read_live([]);
    let mut out = std::io::stdout().lock();
    let mut said = 0u64;
    let mut say = |alerts: Vec<AlertDoc>| -> Result<()> {
        for alert in alerts {
            serde_json::to_writer(&mut out, &alert)?;
            out.write_all(b"\n")?;
            said += 1;
        }
        out.flush()?;
        Ok(())
    };
    // A deadlock standing when the watch starts is said at once.
    say(check_cycles(&mut cycles, &mut processes, &follower))?;
    let mut dirty = true;
    let mut next_tick = Instant::now();
    let mut snapshots = 1u64;
    let ended = loop {
        if let Some(why) = stopping.why()? {
            break why;
        }
        if Instant::now() >= next_tick {
            say(alerts.check(follower.state(), now_ns(), process::exists))?;
            if dirty {
                write_state(args.state_file.as_deref(), &follower)?;
                dirty = false;
            }
            next_tick = Instant::now() + TICK;
        }
        let wait = stopping.wait(next_tick.saturating_duration_since(Instant::now()));
        match follower.next(wait, Some(stopping.fd()))? {
            None => {}
            Some(Followed::Event(event, _)) => {
                dirty = true;
                // A cycle closes only when a wait or a holder appears; one standing may
                // break on any change.
                let closing = matches!(
                    event.kind,
                    EventKind::Enqueue | EventKind::Promote | EventKind::Grant
                );
                if closing || cycles.any_standing() {
                    say(check_cycles(&mut cycles, &mut processes, &follower))?;
                }
            }
            Some(other) => {
                eprintln!("latch-probe: {other:?}; took a new snapshot");
                snapshots += 1;
                dirty = true;
                say(check_cycles(&mut cycles, &mut processes, &follower))?;
            }
        }
    };
    write_state(args.state_file.as_deref(), &follower)?;
    drop(follower);
    eprintln!(
        "latch-probe: watch ended {ended}: {said} alerts, {snapshots} snapshots; uprobes detached"
    );
    Ok(exit_code::OK)
}

/// The deadlock alerts of the state now, the peers' processes read (those not known yet)
/// from `/proc` first.
fn check_cycles(
    cycles: &mut CycleAlerts,
    processes: &mut ProcessTable,
    follower: &Follower,
) -> Vec<AlertDoc> {
    let state = follower.state();
    // No waiter, no cycle: an uncontended daemon's grants cost no analysis.
    if !cycles.any_standing() && state.lockers.iter().all(|l| l.waitings.is_empty()) {
        return Vec::new();
    }
    let pids = peer_pids(state);
    processes.extend_live(pids.iter().copied());
    processes.retain_ancestry_of(pids);
    cycles.check(state, processes, now_ns())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Replaces `file` with the current state: written beside it, then renamed over it, so a
/// reader never sees half a document.
fn write_state(file: Option<&Path>, follower: &Follower) -> Result<()> {
    let Some(file) = file else { return Ok(()) };
    let mut name = file.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = file.with_file_name(name);
    let json = serde_json::to_vec(follower.state())?;
    std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("replacing {}", file.display()))?;
    Ok(())
}
