//! A capture of a running daemon. Frozen (the default): every thread stopped, the data
//! mappings copied in bulk, every thread let go, and only then the copy decoded, so the
//! daemon is stopped for the copy alone. Without freezing: the mappings copied while the
//! daemon runs, between two reads of the table's generation, retried (a bounded number of
//! times) until the generation was even and unchanged across the copy.
//!
//! It may not leave the daemon stopped (the freeze lets go on every path, and a daemon that
//! was stopped before is left stopped), and it never writes to the daemon.

use super::decode::{decode_table, duration_ns, generation_in, now_ns};
use super::discard::discard;
use super::image::DaemonImage;
use super::CaptureOptions;
use crate::capture::{Capture, CaptureStats, DaemonFacts};
use crate::error::ProbeError;
use dwarfpeek::memory::{maps, Counted, Freeze, LiveProcess, PreparedSnapshot, Region, Snapshot};
use dwarfpeek::process;
use latch_probe_common::doc::Source;
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

/// The first pause before copying again a table that was changing; it doubles up to
/// [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_micros(200);
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(20);

impl DaemonImage {
    /// Captures the daemon `pid`, which must run this image's executable, mapped from
    /// `exe` ([`crate::target::LiveDaemon::capture`] is how the commands call it).
    pub(crate) fn capture_live(
        &self,
        pid: u32,
        exe: &Path,
        options: CaptureOptions,
    ) -> Result<Capture, ProbeError> {
        let started = Instant::now();
        let (uid, gid) = process::owner(pid)?;
        // Before the freeze: the threads' own states, not the freeze's.
        let threads = process::threads(pid)?;
        let live = LiveProcess::new(Pid::from_raw(pid as i32));
        // The executable's mappings do not move while it runs: placed once, outside the
        // freeze.
        let (bias, table) = self.placement(pid, exe)?;
        let (copy, mut stats) = if options.freeze {
            self.frozen_copy(pid, &live, table, &options)?
        } else {
            self.settled_copy(pid, &live, table, &options)?
        };
        let mut decoded = decode_table(self, &copy.snapshot, bias, Source::Live, pid)?;
        // Only a copy taken without freezing can span a change that the generation in the
        // copy does not show.
        decoded.doc.torn |= copy.changed_under_copy;
        let taken_ns = copy.taken_ns;
        discard(copy.snapshot);
        stats.total_ns = duration_ns(started.elapsed());
        Ok(Capture {
            state: decoded.doc,
            daemon: DaemonFacts {
                pid,
                exe: exe.to_owned(),
                build_id: self.build_id().map(str::to_owned),
                uid,
                gid,
                snapshot_ns: taken_ns,
            },
            threads,
            stats,
            problems: decoded.problems,
        })
    }

    /// Stops every thread, copies the data mappings, lets every thread go; again (up to
    /// `options.max_retries` times) while the copy shows a change in progress, unless the
    /// process was stopped before the probe came (it cannot finish the change).
    fn frozen_copy(
        &self,
        pid: u32,
        live: &LiveProcess,
        table: Region,
        options: &CaptureOptions,
    ) -> Result<(Copy, CaptureStats), ProbeError> {
        let mut stats = CaptureStats::default();
        let mut pause = FIRST_RETRY_PAUSE;
        loop {
            let prepared = prepare(pid, options.snapshot_budget)?;
            let started = Instant::now();
            let freeze = Freeze::new(Pid::from_raw(pid as i32))
                .map_err(|error| ProbeError::Freeze { pid, error })?;
            // An error from here on drops the freeze, which lets every thread go.
            let copy = copy_data(pid, live, prepared, options.snapshot_budget)?;
            if let Some(hold) = options.hold_frozen {
                std::thread::sleep(hold);
            }
            let was_stopped = freeze.was_stopped();
            freeze
                .resume()
                .map_err(|error| ProbeError::Freeze { pid, error })?;
            stats.frozen_ns += duration_ns(started.elapsed());
            count(&mut stats, &copy.snapshot);
            let generation = generation_in(self, &copy.snapshot, table, pid)?;
            if generation % 2 == 0 || was_stopped || stats.retries >= options.max_retries {
                return Ok((copy, stats));
            }
            stats.retries += 1;
            std::thread::sleep(pause);
            pause = (pause * 2).min(MAX_RETRY_PAUSE);
        }
    }

    /// Copies the data mappings without stopping the daemon: again (up to
    /// `options.max_retries` times) while the generation is odd or moves across the copy;
    /// the last copy is returned all the same, marked as changed.
    fn settled_copy(
        &self,
        pid: u32,
        live: &LiveProcess,
        table: Region,
        options: &CaptureOptions,
    ) -> Result<(Copy, CaptureStats), ProbeError> {
        let mut stats = CaptureStats::default();
        let counted = Counted::new(live);
        let generation_now = || generation_in(self, &counted, table, pid);
        let mut pause = FIRST_RETRY_PAUSE;
        let (copy, settled) = loop {
            let prepared = prepare(pid, options.snapshot_budget)?;
            let before = generation_now()?;
            let copy = copy_data(pid, live, prepared, options.snapshot_budget)?;
            count(&mut stats, &copy.snapshot);
            let after = generation_now()?;
            let settled = before % 2 == 0 && before == after;
            if settled || stats.retries >= options.max_retries {
                break (copy, settled);
            }
            stats.retries += 1;
            std::thread::sleep(pause);
            pause = (pause * 2).min(MAX_RETRY_PAUSE);
        };
        stats.bytes_read += counted.bytes();
        stats.read_calls += counted.calls();
        Ok((
            Copy {
                changed_under_copy: !settled,
                ..copy
            },
            stats,
        ))
    }

    /// The load bias of the executable in process `pid`, and where the `LOCK_TABLE` static
    /// lies there.
    fn placement(&self, pid: u32, exe: &Path) -> Result<(u64, Region), ProbeError> {
        let bias = self.process_bias(pid, exe)?;
        let overflow = || ProbeError::Unreadable {
            reason: "the lock table's address overflows".to_owned(),
        };
        let start = self
            .table()
            .address
            .checked_add(bias)
            .ok_or_else(overflow)?;
        let end = start.checked_add(self.table_size()?).ok_or_else(overflow)?;
        Ok((bias, Region { start, end }))
    }
}

/// The copied memory and when it was taken.
struct Copy {
    snapshot: Snapshot,
    taken_ns: u64,
    /// The generation moved (or was odd) across a copy taken without freezing.
    changed_under_copy: bool,
}

/// Buffers for the data mappings of the process as they are now, made before the freeze.
fn prepare(pid: u32, budget: u64) -> Result<PreparedSnapshot, ProbeError> {
    let mappings = maps::read_maps(pid as i32).map_err(|error| ProbeError::Maps { pid, error })?;
    PreparedSnapshot::new(&Region::data_regions(&mappings), budget)
        .map_err(|error| ProbeError::Snapshot { pid, error })
}

/// A copy of every data mapping of the process, into `prepared` if the mappings are still
/// those it was made for (new buffers otherwise).
fn copy_data(
    pid: u32,
    live: &LiveProcess,
    prepared: PreparedSnapshot,
    budget: u64,
) -> Result<Copy, ProbeError> {
    let mappings = maps::read_maps(pid as i32).map_err(|error| ProbeError::Maps { pid, error })?;
    let regions = Region::data_regions(&mappings);
    let prepared = if prepared.regions() == regions.as_slice() {
        prepared
    } else {
        drop(prepared);
        PreparedSnapshot::new(&regions, budget)
            .map_err(|error| ProbeError::Snapshot { pid, error })?
    };
    let taken_ns = now_ns();
    let snapshot = prepared.fill(live);
    if snapshot.total_bytes() == 0 {
        return Err(if process::exists(pid) {
            ProbeError::NotPermitted {
                pid,
                what: "process_vm_readv read nothing of its memory".to_owned(),
            }
        } else {
            ProbeError::NoSuchProcess { pid }
        });
    }
    Ok(Copy {
        snapshot,
        taken_ns,
        changed_under_copy: false,
    })
}

fn count(stats: &mut CaptureStats, snapshot: &Snapshot) {
    stats.bytes_read += snapshot.total_bytes();
    stats.read_calls += snapshot.read_calls();
}
