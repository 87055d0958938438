//! Where the binary's log goes: stderr, or a trace file as flom's `-t` (the daemon's) and
//! `-T` (the command's), truncated or appended to (`--append-trace-file`).
//!
//! Sets up the logger once per process; what is logged is each caller's.

#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// A trace file that cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open trace file {}: {source}; give a writable path", path.display())]
pub struct TraceError {
    path: PathBuf,
    source: std::io::Error,
}

/// Logs to `file` (appended to or truncated) or, without one, to stderr; `LATCH_LOG`
/// overrides `default_level`.
pub fn init(file: Option<&Path>, append: bool, default_level: &str) -> Result<(), TraceError> {
    let level = std::env::var("LATCH_LOG").unwrap_or_else(|_| default_level.to_owned());
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(&level).format_timestamp_millis();
    if let Some(path) = file {
        let out = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .map_err(|source| TraceError {
                path: path.to_owned(),
                source,
            })?;
        builder.target(env_logger::Target::Pipe(Box::new(out)));
    }
    builder.init();
    Ok(())
}
