//! `latch-probe trace`: the daemon's lock events, live, as text lines, NDJSON or merge
//! patches, until a signal or the end of `--duration`; every uprobe is detached on the way
//! out.

use super::stopping::Stopping;
use anyhow::Result;
use clap::{Args, ValueEnum};
use latch_probe::error::exit_code;
use latch_probe::merge::{patch, Applied};
use latch_probe::model::CaptureOptions;
use latch_probe::target::LiveDaemon;
use latch_probe::trace::{EventError, Followed, Follower, Session};
use latch_probe_common::doc::{EventRef, LostDoc, LOST_SCHEMA};
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest a wait for events lasts before the loop looks at the clock and the kernel's
/// lost-record counter again.
const TICK: Duration = Duration::from_millis(500);
/// Bytes of events' output gathered before a write.
const OUT_BUFFER: usize = 256 << 10;
/// Room for an event's line: most are under 500 bytes; a longer one grows the buffer once.
const LINE_BYTES: usize = 1024;
/// Events handled between two looks at the stop signals: a look is a system call.
const BATCH: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum Format {
    /// One line of text an event.
    Text,
    /// One `latch.event/1` JSON object a line (NDJSON).
    Json,
    /// A `latch.live/1` snapshot, then one RFC 7396 merge patch a line.
    MergePatch,
}

#[derive(Args)]
#[command(
    about = "Stream the daemon's lock events live, through eBPF uprobes",
    long_about = "Stream the daemon's lock events live, through eBPF uprobes on its \
                  state-change functions (locker create/destroy, incubate, promote, enqueue, \
                  grant, release, cancel). The daemon is neither stopped nor told.\n\n\
                  Formats (docs/formats.md): text lines; `latch.event/1` NDJSON (--json); or \
                  --format merge-patch: one frozen snapshot in the keyed `latch.live/1` form, \
                  then one JSON Merge Patch (RFC 7396) per event, so that applying them in \
                  order to the snapshot gives the current state. Events the kernel had no \
                  room for are never silent: a `latch.lost/1` record (a `lost` line) says how \
                  many, and in merge-patch form a new snapshot follows.\n\n\
                  Stop: SIGINT (Ctrl-C), SIGTERM or SIGHUP, or --duration; the uprobes are \
                  detached either way. Needs root (CAP_BPF, CAP_PERFMON)."
)]
pub(super) struct TraceArgs {
    /// The daemon's pid.
    #[arg(long)]
    pid: u32,
    /// The same as --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Stop after this many seconds (default: until interrupted).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
}

pub(super) fn run(args: &TraceArgs) -> Result<u8> {
    let stopping = Stopping::new(args.duration)?;
    let format = if args.json { Format::Json } else { args.format };
    let mut out = std::io::stdout().lock();
    let ended = if format == Format::MergePatch {
        patches(args.pid, &stopping, &mut out)?
    } else {
        events(args.pid, format, &stopping, &mut out)?
    };
    out.flush()?;
    eprintln!("latch-probe: trace ended {ended}; uprobes detached");
    Ok(exit_code::OK)
}

/// Text or NDJSON events; how it ended and what it counted.
fn events(pid: u32, format: Format, stopping: &Stopping, out: &mut impl Write) -> Result<String> {
    let mut session = Session::start(LiveDaemon::open(pid)?)?;
    attached(pid, session.probes());
    // Written when the ring buffer is empty or the buffer is full, not once a line: a write
    // a line was a fifth of this process's time at the daemon's rate.
    let mut out = BufWriter::with_capacity(OUT_BUFFER, out);
    let (mut events, mut undecodable, mut lost) = (0u64, 0u64, 0u64);
    // A line is put together in `line` and goes to `out` in one piece: the writer's
    // many short writes, each a call through BufWriter to memcpy, were a fifth of this
    // process's time; into a Vec they are inlined stores.
    let mut line = Vec::with_capacity(LINE_BYTES);
    let mut write =
        |next: Result<EventRef<'_>, EventError>, out: &mut BufWriter<_>| -> Result<()> {
            match next {
                Ok(event) => {
                    events += 1;
                    line.clear();
                    match format {
                        Format::Text => writeln!(line, "{event}")?,
                        // Not through serde: its writer was half of this process's time.
                        _ => {
                            event.write_json(&mut line)?;
                            line.push(b'\n');
                        }
                    }
                    out.write_all(&line)?;
                }
                Err(error) => {
                    undecodable += 1;
                    eprintln!("latch-probe: {error}");
                }
            }
            Ok(())
        };
    let ended = loop {
        // Signals and the clock are looked at once a batch, not once an event.
        if let Some(why) = stopping.why()? {
            break why;
        }
        if session.drain(BATCH, |next| write(next, &mut out))? == 0 {
            lost = say_lost(&session, lost, format, &mut out)?;
            out.flush()?;
            session.wait(stopping.wait(TICK), Some(stopping.fd()))?;
        }
    };
    // What was recorded before the uprobes went is still the trace's.
    session.detach();
    while session.drain(BATCH, |next| write(next, &mut out))? > 0 {}
    let lost = say_lost(&session, lost, format, &mut out)?;
    out.flush()?;
    Ok(format!(
        "{ended}: {events} events, {lost} lost, {undecodable} undecodable"
    ))
}

/// A snapshot in the keyed form, then a merge patch per event.
fn patches(pid: u32, stopping: &Stopping, out: &mut impl Write) -> Result<String> {
    let mut follower = Follower::start(LiveDaemon::open(pid)?, CaptureOptions::default())?;
    attached(pid, follower.probes());
    json_line(out, &patch::keyed(follower.state()))?;
    out.flush()?;
    let (mut changes, mut snapshots) = (0u64, 1u64);
    let ended = loop {
        if let Some(why) = stopping.why()? {
            break why;
        }
        match follower.next(stopping.wait(TICK), Some(stopping.fd()))? {
            None => out.flush()?,
            Some(Followed::Event(_, Applied::Skipped)) => {}
            Some(Followed::Event(_, Applied::Changed(change))) => {
                changes += 1;
                json_line(out, &change)?;
            }
            Some(other) => {
                // The events no longer describe the state: a new snapshot starts over.
                eprintln!("latch-probe: {other:?}; a new snapshot follows");
                snapshots += 1;
                json_line(out, &patch::keyed(follower.state()))?;
            }
        }
    };
    Ok(format!("{ended}: {changes} patches, {snapshots} snapshots"))
}

/// Said once attached, so that a script (or a test) knows from when on nothing is missed.
pub(super) fn attached(pid: u32, probes: usize) {
    eprintln!("latch-probe: tracing pid {pid}: {probes} uprobes attached");
}

fn json_line(out: &mut impl Write, value: &impl Serialize) -> Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Reports the records lost since `said` were reported; the new total.
fn say_lost(session: &Session, said: u64, format: Format, out: &mut impl Write) -> Result<u64> {
    let total = session.lost()?;
    if total > said {
        let doc = LostDoc {
            schema: LOST_SCHEMA.to_owned(),
            ts_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            lost: total - said,
            total,
        };
        match format {
            Format::Text => writeln!(
                out,
                "lost {} events (the ring buffer was full; {total} in all)",
                doc.lost
            )?,
            _ => json_line(out, &doc)?,
        }
    }
    Ok(total)
}
