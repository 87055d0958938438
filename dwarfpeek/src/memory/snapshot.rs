//! A copy of chosen address ranges of a process, taken in bulk (ideally while it is frozen)
//! and read afterwards at leisure: the process runs again while the copy is decoded.
//!
//! Capturing is the only place that sizes buffers, and it does so from the mappings the
//! kernel reports, under a byte budget the caller sets.

use super::maps::Mapping;
use super::{LiveProcess, MemoryError, MemorySource};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error(
        "copying the chosen regions would take {wanted} bytes, more than the budget of {budget}; \
         raise the budget or choose fewer regions"
    )]
    OverBudget { wanted: u64, budget: u64 },
    #[error("region {start:#x}..{end:#x} is empty or runs backwards")]
    BadRegion { start: u64, end: u64 },
}

/// An address range to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
}

impl Region {
    /// The mappings a value decode may need: everything readable that is not code and not
    /// one of the kernel's pseudo-mappings (`[vvar]`, `[vsyscall]`, `[vdso]`). Read-only
    /// file data stays in (string literals and other statics live there).
    pub fn data_regions(mappings: &[Mapping]) -> Vec<Region> {
        mappings
            .iter()
            .filter(|m| m.readable && !m.executable && !m.is_empty())
            .filter(|m| {
                !matches!(
                    m.name.as_str(),
                    "[vvar]" | "[vvar_vclock]" | "[vsyscall]" | "[vdso]"
                )
            })
            .map(|m| Region {
                start: m.start,
                end: m.end,
            })
            .collect()
    }
}

/// Buffers for a copy of chosen regions, allocated and touched in advance: the copy itself
/// (while the process is frozen) then pays for no allocation and no page fault.
#[derive(Debug)]
pub struct PreparedSnapshot {
    regions: Vec<Region>,
    buffers: Vec<Vec<u8>>,
}

impl PreparedSnapshot {
    /// Buffers for `regions`, which must be well formed and hold at most `budget` bytes.
    pub fn new(regions: &[Region], budget: u64) -> Result<PreparedSnapshot, SnapshotError> {
        let mut wanted: u64 = 0;
        for r in regions {
            if r.end <= r.start {
                return Err(SnapshotError::BadRegion {
                    start: r.start,
                    end: r.end,
                });
            }
            wanted = wanted.saturating_add(r.end - r.start);
        }
        if wanted > budget {
            return Err(SnapshotError::OverBudget { wanted, budget });
        }
        // Within the budget, so each length fits in memory the caller agreed to spend.
        // Written, not just reserved: `vec![0; len]` maps zero pages lazily, and the faults
        // would then be taken during the copy, with the process frozen.
        #[allow(clippy::slow_vector_initialization)]
        let buffers = regions
            .iter()
            .map(|r| {
                let len = (r.end - r.start) as usize;
                let mut buf = Vec::with_capacity(len);
                buf.resize(len, 0u8);
                buf
            })
            .collect();
        Ok(PreparedSnapshot {
            regions: regions.to_vec(),
            buffers,
        })
    }

    /// The regions the buffers are for.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Copies the regions of `process` into the buffers.
    pub fn fill(mut self, process: &LiveProcess) -> Snapshot {
        let mut requests: Vec<(u64, &mut [u8])> = self
            .regions
            .iter()
            .zip(self.buffers.iter_mut())
            .map(|(r, buf)| (r.start, buf.as_mut_slice()))
            .collect();
        let (done, read_calls) = process.read_batch(&mut requests);
        let ranges = self
            .regions
            .iter()
            .zip(self.buffers)
            .zip(done)
            .filter(|(_, got)| *got > 0)
            .map(|((r, mut buf), got)| {
                buf.truncate(got);
                (r.start, buf)
            })
            .collect();
        Snapshot {
            read_calls,
            ..Snapshot::from_ranges(ranges)
        }
    }
}

/// Copied memory: disjoint ranges, in address order.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    ranges: Vec<(u64, Vec<u8>)>,
    /// The system calls the copy took (0 for a snapshot made of given bytes).
    read_calls: u64,
}

impl Snapshot {
    /// Copies `regions` of `process` with as few `process_vm_readv` calls as possible. A
    /// region the kernel cannot read in full (a file mapping past the file's end, a range
    /// unmapped since the list was made) keeps the part that was read.
    pub fn capture(
        process: &LiveProcess,
        regions: &[Region],
        budget: u64,
    ) -> Result<Snapshot, SnapshotError> {
        Ok(PreparedSnapshot::new(regions, budget)?.fill(process))
    }

    /// A snapshot of the given bytes, each range as `(start, bytes)`. Ranges should not
    /// overlap; where they do, the one that starts last at or below an address answers.
    pub fn from_ranges(mut ranges: Vec<(u64, Vec<u8>)>) -> Snapshot {
        ranges.retain(|(_, bytes)| !bytes.is_empty());
        ranges.sort_by_key(|(start, _)| *start);
        Snapshot {
            ranges,
            read_calls: 0,
        }
    }

    /// The copied ranges as `(start, length)`.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges
            .iter()
            .map(|(start, bytes)| (*start, bytes.len() as u64))
    }

    /// How many system calls the copy took.
    pub fn read_calls(&self) -> u64 {
        self.read_calls
    }

    /// How many bytes were copied in all.
    pub fn total_bytes(&self) -> u64 {
        self.ranges.iter().map(|(_, b)| b.len() as u64).sum()
    }

    /// The range that holds `address`, if any.
    fn range_at(&self, address: u64) -> Option<&(u64, Vec<u8>)> {
        let i = self.ranges.partition_point(|(start, _)| *start <= address);
        let range = self.ranges.get(i.checked_sub(1)?)?;
        (address - range.0 < range.1.len() as u64).then_some(range)
    }
}

impl MemorySource for Snapshot {
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let len = buf.len() as u64;
        let unmapped = || MemoryError::Unmapped {
            address,
            len,
            source_name: "the snapshot".to_owned(),
        };
        // A read may run across adjacent ranges (neighbouring mappings).
        let mut filled = 0;
        while filled < buf.len() {
            let at = address.checked_add(filled as u64).ok_or_else(unmapped)?;
            let (start, bytes) = self.range_at(at).ok_or_else(unmapped)?;
            let from = (at - start) as usize;
            let n = (bytes.len() - from).min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&bytes[from..from + n]);
            filled += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_within_and_across_adjacent_ranges_only() {
        let snap = Snapshot::from_ranges(vec![
            (0x2000, vec![3; 0x10]),
            (0x1000, vec![1; 0x1000]),
            (0x3000, vec![4; 8]),
        ]);
        let mut buf = [0u8; 4];
        snap.read(0x1ffe, &mut buf).expect("across two ranges");
        assert_eq!(buf, [1, 1, 3, 3]);
        assert!(snap.read(0x200e, &mut buf).is_err(), "runs into a gap");
        assert!(snap.read(0xfff, &mut buf).is_err(), "starts before");
        assert!(snap.read(u64::MAX - 1, &mut buf).is_err(), "wraps");
        snap.read(0x3004, &mut buf).expect("last bytes");
        assert!(snap.read(0x3005, &mut buf).is_err(), "past the end");
        assert_eq!(snap.total_bytes(), 0x1018);
    }

    #[test]
    fn captures_this_process_within_the_budget() {
        let data = vec![7u8; 10_000];
        let start = data.as_ptr() as u64;
        let me = LiveProcess::new(nix::unistd::getpid());
        let regions = [
            Region {
                start,
                end: start + 10_000,
            },
            Region { start: 8, end: 16 },
        ];
        let err = Snapshot::capture(&me, &regions, 100).unwrap_err();
        assert!(matches!(err, SnapshotError::OverBudget { .. }), "{err}");
        let snap = Snapshot::capture(&me, &regions, 1 << 20).expect("capture");
        assert_eq!(
            snap.total_bytes(),
            10_000,
            "the unmapped region is left out"
        );
        let mut buf = [0u8; 3];
        snap.read(start + 9_997, &mut buf).expect("copied");
        assert_eq!(buf, [7; 3]);
    }
}
