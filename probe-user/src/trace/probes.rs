//! The uprobes themselves: the embedded eBPF object loaded with a [`TracePlan`]'s
//! configuration, one program attached to each state-change function of the daemon's
//! executable (for every process that maps it; the programs keep one process's hits), and
//! the ring buffer and lost-record counter they write.
//!
//! The attachments live as long as the [`Tracer`]: dropping it detaches every uprobe, on
//! every path (a failed attach half-way included), so no probe is left in the daemon.

use super::plan::TracePlan;
use super::TraceError;
use crate::error::ProbeError;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::uprobe::{UProbeAttachLocation, UProbeLinkId, UProbeScope};
use aya::programs::UProbe;
use aya::{Ebpf, EbpfLoader};
use latch_probe_common::raw::{RawBlock, RawEvent, RawText, Span, TraceConfig, TEXT_SLOTS};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

/// The eBPF object built by build.rs (aya-build names it after the eBPF crate's bin target).
static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/latch-probe-ebpf"));
const CONFIG_GLOBAL: &str = "CONFIG";
const EVENTS_MAP: &str = "EVENTS";
const LOST_MAP: &str = "LOST";
/// The ring buffer's size, set at load time (over the eBPF object's 8 MiB): about 38,000
/// records, a second or more of the daemon's full traced rate, so that this process can be
/// kept off the CPU that long by a busy machine without losing any (docs/benchmarks.md).
const EVENTS_BYTES: u32 = 64 << 20;
/// How often the reader looks for records. It sleeps between looks: the eBPF side never
/// wakes it (a wake-up per record would cost the daemon more than the record), so this is
/// how late a record may be shown; the ring buffer holds far more than this much.
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// The configuration as the loader wants it: a local type may implement aya's `Pod`.
#[derive(Clone, Copy)]
#[repr(transparent)]
struct ConfigGlobal(TraceConfig);

// SAFETY: TraceConfig is `#[repr(C)]` integers and arrays of them with no padding (every
// 8-byte field sits at a multiple of 8), valid for any bits.
unsafe impl aya::Pod for ConfigGlobal {}

/// The daemon's state-change functions, probed for one process; dropping it detaches.
pub struct Tracer {
    // Field order is drop order: the maps' mappings go before the programs they serve.
    events: RingBuf<MapData>,
    lost: PerCpuArray<MapData, u64>,
    ebpf: Ebpf,
    links: Vec<(&'static str, UProbeLinkId)>,
    /// The record being handed out, copied out of the ring buffer (boxed: it is large).
    record: Box<RawEvent>,
    hot: HotLines,
    /// The daemon's pidfd, readable once it has exited. The programs keep its hits by pid,
    /// and a pid is reused: the uprobes go once the daemon has.
    daemon: OwnedFd,
}

impl Tracer {
    /// Attaches to `pid`, whose executable is `target` (e.g. `/proc/PID/exe`: the very file
    /// the process runs, even if replaced on disk since), mapped at `load_bias`.
    pub fn attach(
        plan: &TracePlan,
        target: &Path,
        pid: u32,
        load_bias: u64,
    ) -> Result<Tracer, TraceError> {
        if pid == 0 {
            return Err(TraceError::ZeroPid);
        }
        let daemon = pidfd(pid)?;
        let mut config = plan.config;
        config.generation_address = config.generation_address.wrapping_add(load_bias);
        // A hit numbers its process as the process's own pid namespace does.
        let own = dwarfpeek::process::own_pid(pid).map_err(ProbeError::from)?;
        (config.pidns_dev, config.pidns_ino, config.tgid) = (own.ns_dev, own.ns_ino, own.pid);
        let mut ebpf = EbpfLoader::new()
            .override_global(CONFIG_GLOBAL, &ConfigGlobal(config), true)
            .map_max_entries(EVENTS_MAP, EVENTS_BYTES)
            .load(EBPF_OBJECT)
            .map_err(|e| TraceError::Load(Box::new(e)))?;
        let events = RingBuf::try_from(take_map(&mut ebpf, EVENTS_MAP)?).map_err(|error| {
            TraceError::Map {
                name: EVENTS_MAP,
                error: Box::new(error),
            }
        })?;
        let lost = PerCpuArray::try_from(take_map(&mut ebpf, LOST_MAP)?).map_err(|error| {
            TraceError::Map {
                name: LOST_MAP,
                error: Box::new(error),
            }
        })?;
        let mut tracer = Tracer {
            events,
            lost,
            ebpf,
            links: Vec::with_capacity(plan.probes.len()),
            record: Box::new(RawEvent::EMPTY),
            hot: HotLines::of(&plan.config),
            daemon,
        };
        // Attached one by one into the tracer, so a failure drops (and detaches) the ones
        // attached before it.
        for probe in &plan.probes {
            let program = uprobe(&mut tracer.ebpf, probe.program)?;
            program.load().map_err(|error| TraceError::Program {
                program: probe.program,
                error: Box::new(error),
            })?;
            let link = program
                .attach(
                    UProbeAttachLocation::AbsoluteOffset(probe.function.file_offset),
                    target,
                    // Not OneProcess: a uprobe bound to the daemon's task moves its perf
                    // events in and out at each of the daemon's context switches, which
                    // cost more than the hits (docs/benchmarks.md). The programs filter.
                    UProbeScope::AllProcesses,
                )
                .map_err(|error| TraceError::Attach {
                    function: probe.function.path.clone(),
                    path: target.to_owned(),
                    pid,
                    file_offset: probe.function.file_offset,
                    error: Box::new(error),
                })?;
            tracer.links.push((probe.program, link));
        }
        Ok(tracer)
    }

    /// Hands the records already in the ring buffer to `each`, oldest first, at most `max`
    /// of them; how many. Each is gone from the buffer once `each` returns (or fails).
    pub fn drain<E: From<TraceError>>(
        &mut self,
        max: usize,
        mut each: impl FnMut(&RawEvent) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut n = 0;
        while n < max {
            let Some(item) = self.events.next() else {
                break;
            };
            n += 1;
            self.hot.prefetch_after(&item);
            each(record(&item, &mut self.record)?)?;
        }
        // Looked at when the buffer is empty: whatever the daemon wrote before it exited is
        // in it by then (its hits run before its exit), and a later drain still reads it.
        if n < max && !self.links.is_empty() && self.daemon_exited()? {
            self.detach();
        }
        Ok(n)
    }

    /// Whether the daemon has exited (its pidfd is readable).
    fn daemon_exited(&self) -> Result<bool, TraceError> {
        let mut fds = [PollFd::new(self.daemon.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => Ok(fds[0].revents().is_some_and(|r| !r.is_empty())),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(TraceError::Poll(e)),
        }
    }

    /// Sleeps until records have had time to gather ([`LOOK_EVERY`], at most `timeout`), or
    /// `wake` (a signal descriptor, say) is readable; whether `wake` is. The ring buffer is
    /// not waited on: it is readable as soon as one record is there, and a reader that woke
    /// for each would pay its system calls for a handful of records at a time.
    pub fn wait(
        &self,
        timeout: Duration,
        wake: Option<BorrowedFd<'_>>,
    ) -> Result<bool, TraceError> {
        let wait = timeout.min(LOOK_EVERY);
        let Some(wake) = wake else {
            std::thread::sleep(wait);
            return Ok(false);
        };
        // Whole milliseconds, rounded up so a short wait does not become a busy loop.
        let ms = u16::try_from(wait.as_millis().saturating_add(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(wake, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(TraceError::Poll(e)),
        }
        Ok(fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLIN)))
    }

    /// Detaches every uprobe now; records already written can still be read.
    pub fn detach(&mut self) {
        for (name, link) in self.links.drain(..) {
            if let Ok(program) = uprobe(&mut self.ebpf, name) {
                // Nothing to do about a failed detach here; unloading the program ends it.
                let _ = program.detach(link);
            }
        }
    }

    /// How many records found the ring buffer full since attaching, on all CPUs.
    pub fn lost(&self) -> Result<u64, TraceError> {
        let per_cpu = self.lost.get(&0, 0).map_err(|error| TraceError::Map {
            name: LOST_MAP,
            error: Box::new(error),
        })?;
        Ok(per_cpu.iter().sum())
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        // Dropping the programs would detach too; doing it first makes the order explicit:
        // no record is written once the tracer is gone.
        self.detach();
    }
}

/// A pidfd of the process `pid` (Linux 5.3): unlike the pid, it cannot come to mean
/// another process.
fn pidfd(pid: u32) -> Result<OwnedFd, TraceError> {
    let raw_pid = libc::pid_t::try_from(pid).map_err(|_| TraceError::Pidfd {
        pid,
        error: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw_pid, 0) };
    if fd < 0 {
        return Err(TraceError::Pidfd {
            pid,
            error: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: `fd` is a descriptor just opened, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, TraceError> {
    ebpf.take_map(name)
        .ok_or(TraceError::Missing { what: "map", name })
}

fn uprobe<'e>(ebpf: &'e mut Ebpf, name: &'static str) -> Result<&'e mut UProbe, TraceError> {
    ebpf.program_mut(name)
        .ok_or(TraceError::Missing {
            what: "program",
            name,
        })?
        .try_into()
        .map_err(|error| TraceError::Program {
            program: name,
            error: Box::new(error),
        })
}

/// A ring buffer record as the eBPF program wrote it: read in place where it is aligned (the
/// ring buffer aligns records to 8 bytes), else copied into `copy`.
fn record<'b>(bytes: &'b [u8], copy: &'b mut RawEvent) -> Result<&'b RawEvent, TraceError> {
    let expected = std::mem::size_of::<RawEvent>();
    if bytes.len() < expected {
        return Err(TraceError::ShortRecord {
            len: bytes.len(),
            expected,
        });
    }
    let at = bytes.as_ptr().cast::<RawEvent>();
    if at.is_aligned() {
        // SAFETY: the length and the alignment are checked, RawEvent is plain integers
        // (valid for any bytes), and the record is not written while the item is held.
        return Ok(unsafe { &*at });
    }
    // SAFETY: as above, but for the alignment, which an unaligned read does not need.
    *copy = unsafe { std::ptr::read_unaligned(at) };
    Ok(copy)
}

/// The bytes of a record the decoder may read (the header, each block's header and the
/// span its events read, each text's header and first line), as offsets whose cache lines
/// to ask for ahead: a record was written by another CPU, and waiting for each of its lines
/// in turn was a third of this process's time per event.
struct HotLines(Vec<usize>);

impl HotLines {
    fn of(config: &TraceConfig) -> HotLines {
        use std::mem::{offset_of, size_of};
        let block = |at: usize, spans: &[Span]| {
            let used = spans.iter().filter(|s| s.len > 0);
            let start = used.clone().map(|s| s.offset as usize).min().unwrap_or(0);
            let end = used.map(|s| s.end() as usize).max().unwrap_or(0);
            let bytes = at + offset_of!(RawBlock, bytes);
            [at..bytes, bytes + start..bytes + end.max(start)]
        };
        let header = 0..offset_of!(RawEvent, locker);
        let mut ranges = Vec::from([header]);
        ranges.extend(block(offset_of!(RawEvent, locker), &config.locker_span));
        ranges.extend(block(offset_of!(RawEvent, request), &config.request_span));
        for slot in 0..TEXT_SLOTS {
            let at = offset_of!(RawEvent, texts) + slot * size_of::<RawText>();
            ranges.push(at..at + offset_of!(RawText, bytes) + LINE);
        }
        // A range's every line, whatever the record's alignment: its start, every LINE
        // bytes on, and its last byte.
        let mut offsets: Vec<usize> = ranges
            .into_iter()
            .filter(|r| !r.is_empty())
            .flat_map(|r| r.clone().step_by(LINE).chain([r.end - 1]))
            .collect();
        offsets.sort_unstable();
        offsets.dedup();
        HotLines(offsets)
    }

    /// Asks for the hot lines of the record after `current`, an item of the ring buffer:
    /// items are 8-byte aligned, each after an 8-byte header. A prefetch of memory that is
    /// not there (the end of the ring buffer, a record not yet written) is a no-op.
    fn prefetch_after(&self, current: &[u8]) {
        let next = current
            .as_ptr()
            .wrapping_add(current.len().next_multiple_of(8) + 8);
        for &offset in &self.0 {
            prefetch(next.wrapping_add(offset));
        }
    }
}

/// A cache line's size on the machines this runs on.
const LINE: usize = 64;

#[cfg(target_arch = "x86_64")]
fn prefetch(at: *const u8) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: sse is in x86-64's baseline; a prefetch reads nothing and never faults.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(at.cast()) };
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch(_at: *const u8) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn the_hot_lines_cover_what_the_decoder_reads_at_any_alignment() {
        let mut config = TraceConfig::EMPTY;
        config.locker_span[0] = Span {
            offset: 16,
            len: 160,
        };
        config.locker_span[3] = Span {
            offset: 96,
            len: 72,
        };
        config.request_span[3] = Span {
            offset: 0,
            len: 139,
        };
        let hot = HotLines::of(&config);
        let bytes = |block| block + offset_of!(RawBlock, bytes);
        let (locker, request) = (offset_of!(RawEvent, locker), offset_of!(RawEvent, request));
        let text = |slot| offset_of!(RawEvent, texts) + slot * size_of::<RawText>();
        let read = [
            0,
            offset_of!(RawEvent, args) + 47,
            locker + offset_of!(RawBlock, start),
            bytes(locker) + 16,
            bytes(locker) + 175,
            request,
            bytes(request) + 138,
            text(0),
            text(3) + offset_of!(RawText, bytes) + 63,
        ];
        for base in (0..LINE).step_by(8) {
            let lines: Vec<usize> = hot.0.iter().map(|at| (base + at) / LINE).collect();
            for at in read {
                assert!(
                    lines.contains(&((base + at) / LINE)),
                    "byte {at} of a record at {base} mod {LINE}"
                );
            }
        }
        // Not the whole record: the lines no event reads are left alone.
        let mut lines: Vec<usize> = hot.0.iter().map(|at| at / LINE).collect();
        lines.dedup();
        assert!(lines.len() < size_of::<RawEvent>() / LINE, "{lines:?}");
        let tail = (text(0) + offset_of!(RawText, bytes) + 2 * LINE) / LINE;
        assert!(
            !lines.contains(&tail),
            "a text's tail, line {tail}: {lines:?}"
        );
    }
}
