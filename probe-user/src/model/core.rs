//! A capture of a dead (or dumped) daemon from its ELF core file and its executable: the
//! state decoded from the core's memory, the threads from its `NT_PRSTATUS` notes, the
//! process's identity from `NT_PRPSINFO` (or, without one, from the core file's owner).
//!
//! A core is a finished picture: nothing is frozen or retried, and a table dumped in the
//! middle of a change is reported as torn.

use super::decode::{decode_table, duration_ns};
use super::image::DaemonImage;
use crate::capture::{Capture, CaptureStats, DaemonFacts};
use crate::error::ProbeError;
use dwarfpeek::memory::{CoreError, CoreFile, Counted};
use dwarfpeek::process::ThreadFacts;
use latch_probe_common::doc::Source;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

impl DaemonImage {
    /// Captures the daemon dumped in `core_path`, which must have run this image's
    /// executable.
    pub fn capture_core(&self, core_path: &Path) -> Result<Capture, ProbeError> {
        let started = Instant::now();
        let core = CoreFile::open(core_path).map_err(ProbeError::Core)?;
        let metadata = std::fs::metadata(core_path).map_err(|error| {
            ProbeError::Core(CoreError::Read {
                path: core_path.to_owned(),
                error,
            })
        })?;
        let process = core.process();
        let pid = process
            .map(|p| p.pid)
            .or_else(|| core.threads().first().map(|t| t.tid))
            .and_then(|pid| u32::try_from(pid).ok())
            .unwrap_or(0);
        let (uid, gid) = process.map_or((metadata.uid(), metadata.gid()), |p| (p.uid, p.gid));
        // The process's state letter for every thread: a core keeps none per thread.
        let state = process.map(|p| p.state.to_string()).unwrap_or_default();
        let threads = core
            .threads()
            .iter()
            .filter_map(|t| u32::try_from(t.tid).ok())
            .map(|tid| ThreadFacts {
                tid,
                name: String::new(),
                state: state.clone(),
            })
            .collect();

        // The mappings name the executable as it was on the dumping machine; matched by
        // path, or failing that by file name.
        let exe = absolute(self.path());
        let bias = self.load_bias(core.file_mappings(), &exe)?;
        let memory = Counted::new(&core);
        let decoded = decode_table(self, &memory, bias, Source::Core, pid)?;
        Ok(Capture {
            state: decoded.doc,
            daemon: DaemonFacts {
                pid,
                exe,
                build_id: self.build_id().map(str::to_owned),
                uid,
                gid,
                // When the core was written: the moment it shows.
                snapshot_ns: metadata
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, duration_ns),
            },
            threads,
            stats: CaptureStats {
                frozen_ns: 0,
                bytes_read: memory.bytes(),
                read_calls: memory.calls(),
                retries: 0,
                total_ns: duration_ns(started.elapsed()),
            },
            problems: decoded.problems,
        })
    }
}

/// `path` made absolute (and its symbolic links resolved) when it can be.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}
