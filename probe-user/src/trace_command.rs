//! `latch-probe trace`: the daemon's lock events, live, as text lines or NDJSON, until a
//! signal or the end of `--duration`; every uprobe is detached on the way out.

use anyhow::{Context, Result};
use clap::Args;
use latch_probe::model::exit_code;
use latch_probe::stop::StopSignals;
use latch_probe::trace::Session;
use latch_probe_common::doc::{LostDoc, LOST_SCHEMA};
use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the kernel's lost-record counter is read.
const LOST_CHECK: Duration = Duration::from_millis(500);

#[derive(Args)]
#[command(
    about = "Stream the daemon's lock events live, through eBPF uprobes",
    long_about = "Stream the daemon's lock events live, through eBPF uprobes on its \
                  state-change functions (locker create/destroy, incubate, promote, enqueue, \
                  grant, release, cancel). The daemon is neither stopped nor told.\n\n\
                  Text lines by default, `latch.event/1` NDJSON with --json (docs/formats.md). \
                  Events the kernel had no room for are never silent: a `latch.lost/1` record \
                  (a `lost` line) says how many.\n\n\
                  Stop: SIGINT (Ctrl-C), SIGTERM or SIGHUP, or --duration; the uprobes are \
                  detached either way. Needs root (CAP_BPF, CAP_PERFMON)."
)]
pub struct TraceArgs {
    /// The daemon's pid.
    #[arg(long)]
    pid: u32,
    /// One `latch.event/1` JSON object a line (NDJSON) instead of text.
    #[arg(long)]
    json: bool,
    /// Stop after this many seconds (default: until interrupted).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
}

pub fn run(args: &TraceArgs) -> Result<u8> {
    let duration = args
        .duration
        .map(Duration::try_from_secs_f64)
        .transpose()
        .context("--duration must be a non-negative number of seconds")?;
    let stop = StopSignals::take_over().context("taking over SIGINT and SIGTERM")?;
    let mut session = Session::start(args.pid)?;
    // Said once attached, so that a script (or a test) knows from when on nothing is missed.
    eprintln!(
        "latch-probe: tracing pid {}: {} uprobes attached",
        args.pid,
        session.probes()
    );
    let deadline = duration.map(|d| Instant::now() + d);
    let mut out = std::io::stdout().lock();
    let (mut events, mut undecodable, mut lost_said) = (0u64, 0u64, 0u64);
    let mut next_lost_check = Instant::now() + LOST_CHECK;
    let ended = loop {
        if let Some(signal) = stop.received()? {
            break format!("on {}", signal.as_str());
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break "at the end of --duration".to_owned();
        }
        if now >= next_lost_check {
            lost_said = say_lost(&session, lost_said, args.json, &mut out)?;
            next_lost_check = now + LOST_CHECK;
        }
        let wait = deadline
            .map_or(LOST_CHECK, |d| d.saturating_duration_since(now))
            .min(LOST_CHECK);
        match session.next_event(wait, Some(stop.as_fd()))? {
            None => out.flush()?,
            Some(Ok(event)) => {
                events += 1;
                if args.json {
                    serde_json::to_writer(&mut out, &event)?;
                    out.write_all(b"\n")?;
                } else {
                    writeln!(out, "{}", event.line())?;
                }
            }
            Some(Err(error)) => {
                undecodable += 1;
                eprintln!("latch-probe: {error}");
            }
        }
    };
    let lost = say_lost(&session, lost_said, args.json, &mut out)?;
    out.flush()?;
    drop(session);
    eprintln!(
        "latch-probe: trace ended {ended}: {events} events, {lost} lost, {undecodable} undecodable; \
         uprobes detached"
    );
    Ok(exit_code::OK)
}

/// Reports the records lost since `said` were reported; the new total.
fn say_lost(session: &Session, said: u64, json: bool, out: &mut impl Write) -> Result<u64> {
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
        if json {
            serde_json::to_writer(&mut *out, &doc)?;
            out.write_all(b"\n")?;
        } else {
            writeln!(
                out,
                "lost {} events (the ring buffer was full; {total} in all)",
                doc.lost
            )?;
        }
    }
    Ok(total)
}
