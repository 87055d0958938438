//! Where the binary's log goes, through `tracing`: stderr, or a trace file as flom's `-t`
//! (the daemon's) and `-T` (the command's), truncated or appended to
//! (`--append-trace-file`). The library's `log` records come in as `tracing` events.
//!
//! Sets up the subscriber once per process; what is logged is each caller's.

#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::prelude::*;

/// A trace file that cannot be opened, or a `LATCH_LOG` that is not a filter.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TraceError {
    #[error("cannot open trace file {}: {source}; give a writable path", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("LATCH_LOG={filter:?} is not a log filter ({source}); give a level (error, warn, info, debug, off) or target=level pairs")]
    Filter {
        filter: String,
        source: tracing_subscriber::filter::ParseError,
    },
}

/// Logs to `file` (appended to or truncated) or, without one, to stderr; `LATCH_LOG`
/// (a level, or `target=level` pairs) overrides `default_level`.
pub(crate) fn init(
    file: Option<&Path>,
    append: bool,
    default_level: &str,
) -> Result<(), TraceError> {
    let filter = std::env::var("LATCH_LOG").unwrap_or_else(|_| default_level.to_owned());
    let targets: Targets = filter
        .parse()
        .map_err(|source| TraceError::Filter { filter, source })?;
    let writer = match file {
        Some(path) => {
            let out = OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(path)
                .map_err(|source| TraceError::Open {
                    path: path.to_owned(),
                    source,
                })?;
            BoxMakeWriter::new(Mutex::new(out))
        }
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    tracing_subscriber::registry()
        .with(layer.with_filter(targets))
        .init();
    Ok(())
}
