//! `latch-probe dump`: one capture of a daemon, live (`--pid`) or from a core file (`--core
//! --exe`), printed as the `latch.state/1` document (`--json`), as text, or written as a
//! tree of files (`--tree DIR`); `--stats` tells on stderr what the capture cost.
//!
//! Arguments in, one capture, output out: the capture and the tree are the library's.
//! The exit code says whether the state is whole (0) or torn or partial (4, after printing
//! it); errors have their own codes (`ProbeError::exit_code`).

use super::target_args::{Target, TargetArgs};
use anyhow::{Context, Result};
use clap::Args;
use latch_probe::capture::Capture;
use latch_probe::error::exit_code;
use latch_probe::model::{self, CaptureOptions};
use latch_probe::render::tree::write_tree;
use latch_probe::target;
use latch_probe_common::doc::{Source, StateDoc};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub(super) struct DumpArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Print the latch.state/1 document (the same as `latch state --json`).
    #[arg(long)]
    json: bool,
    /// Write the state as files in FLoM's VFS layout under DIR (made if missing, else
    /// empty); nothing is printed unless --json is given too.
    #[arg(long, value_name = "DIR")]
    tree: Option<PathBuf>,
    /// Read the daemon while it runs, retrying while its table changes, instead of
    /// stopping it for the copy.
    #[arg(long, conflicts_with = "core")]
    no_freeze: bool,
    /// Print on stderr how long the daemon was frozen, what was read and how long it took.
    #[arg(long)]
    stats: bool,
    /// Keep the daemon frozen this long after the copy (tests: a probe killed mid-freeze).
    #[arg(long, hide = true, value_name = "MS", conflicts_with_all = ["core", "no_freeze"])]
    hold_frozen_ms: Option<u64>,
}

/// Runs the command; the exit code of a capture that was taken.
pub(super) fn run(args: &DumpArgs) -> Result<u8> {
    let capture = match args.target.target() {
        Target::Core { core, exe } => model::capture_core(core, exe)?,
        Target::Live(pid) => target::capture_once(
            pid,
            CaptureOptions {
                freeze: !args.no_freeze,
                hold_frozen: args.hold_frozen_ms.map(Duration::from_millis),
                ..CaptureOptions::default()
            },
        )?,
    };
    if let Some(dir) = &args.tree {
        write_tree(&capture, dir)
            .with_context(|| format!("writing the tree under {}", dir.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&capture.state)?)?;
    } else if args.tree.is_none() {
        write!(out, "{}", text(&capture))?;
    }
    out.flush()?;
    if args.stats {
        eprint!("{}", stats(&capture));
    }
    for problem in &capture.problems {
        eprintln!("latch-probe: partial state: {problem}");
    }
    if capture.state.torn {
        eprintln!(
            "latch-probe: torn state: the table was being changed (generation {} is odd)",
            capture.state.generation
        );
    }
    Ok(if capture.is_partial() {
        exit_code::TORN_OR_PARTIAL
    } else {
        exit_code::OK
    })
}

/// The capture for a reader: the daemon, then each locker with its holders and waitings,
/// then the incubator (the layout of `latch state`).
fn text(capture: &Capture) -> String {
    let d = &capture.daemon;
    let s: &StateDoc = &capture.state;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "daemon pid {} version {} generation {}{} (read from {})",
        s.pid,
        s.version,
        s.generation,
        if s.torn { " TORN" } else { "" },
        match s.source {
            Source::Daemon => "its admin API",
            Source::Live => "the live process",
            Source::Core => "a core file",
        }
    );
    let _ = writeln!(
        out,
        "exe {} build-id {} uid {} gid {}",
        d.exe.display(),
        d.build_id.as_deref().unwrap_or("-"),
        d.uid,
        d.gid
    );
    for t in &capture.threads {
        let _ = writeln!(out, "thread {} {} {}", t.tid, t.state, t.name);
    }
    out.push_str(&s.entries_text());
    out
}

/// `--stats`: what the capture cost, one figure a line.
fn stats(capture: &Capture) -> String {
    let s = &capture.stats;
    let ms = |ns: u64| ns as f64 / 1e6;
    format!(
        "frozen:     {:.3} ms (first thread stopped to last resumed)\n\
         read:       {} bytes in {} read calls\n\
         retries:    {}\n\
         total:      {:.3} ms\n",
        ms(s.frozen_ns),
        s.bytes_read,
        s.read_calls,
        s.retries,
        ms(s.total_ns)
    )
}
