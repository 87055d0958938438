//! `latch-probe diff`: what changed between two saved states of one daemon, connection by
//! connection (granted, released, left, arrived, and stuck across both), as text or
//! `latch.diff/1` JSON.
//!
//! Two files in, the library's difference out.

use anyhow::{Context, Result};
use clap::Args;
use latch_probe::analysis::diff::Diff;
use latch_probe::error::exit_code;
use latch_probe_common::doc::StateDoc;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args)]
#[command(
    about = "What changed between two states (granted, released, still stuck)",
    long_about = "What changed between two latch.state/1 documents of one daemon (dump \
                  --json or latch state --json), one line a connection: granted, released, \
                  left (a waiter gone), arrived, moved, and still holding or still waiting \
                  (the same entry, since the same time, in both: what a stuck service leaves \
                  behind)."
)]
pub(super) struct DiffArgs {
    /// The earlier state.
    before: PathBuf,
    /// The later state.
    after: PathBuf,
    /// Print the latch.diff/1 document instead of text.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: &DiffArgs) -> Result<u8> {
    let diff = Diff::new(&load(&args.before)?, &load(&args.after)?);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &diff)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", diff.text())?;
    }
    out.flush()?;
    Ok(exit_code::OK)
}

fn load(path: &Path) -> Result<StateDoc> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a latch.state/1 document", path.display()))
}
