//! Reading a running process's memory with `process_vm_readv`: no ptrace attachment and no
//! stop, so what it reads may be changing under it (freeze the process for a consistent view).

use super::{MemoryError, MemorySource};
use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid;
use std::io::IoSliceMut;

/// A process's address space, read directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveProcess {
    pid: Pid,
}

impl LiveProcess {
    pub fn new(pid: Pid) -> LiveProcess {
        LiveProcess { pid }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Reads into each buffer from its address, in as few system calls as the kernel allows
    /// (one per 1024 ranges), and says for each range how many of its leading bytes were
    /// read, and how many system calls that took: the kernel stops a batch at the first page
    /// it cannot read, so the ranges after a failed one are tried again in a batch of their
    /// own.
    pub fn read_batch(&self, ranges: &mut [(u64, &mut [u8])]) -> (Vec<usize>, u64) {
        // The kernel's UIO_MAXIOV.
        const MAX_IOV: usize = 1024;
        let mut done = vec![0usize; ranges.len()];
        let mut calls = 0;
        let mut next = 0;
        while next < ranges.len() {
            // A batch of the ranges from `next` on whose addresses are pointers here; one
            // that is not (only possible on a 32-bit probe) cannot be read at all.
            let remote: Vec<RemoteIoVec> = ranges[next..]
                .iter()
                .take(MAX_IOV)
                .map_while(|(address, buf)| {
                    let base = usize::try_from(*address).ok()?;
                    Some(RemoteIoVec {
                        base,
                        len: buf.len(),
                    })
                })
                .collect();
            if remote.is_empty() {
                next += 1;
                continue;
            }
            let batch = &mut ranges[next..next + remote.len()];
            let mut local: Vec<IoSliceMut<'_>> = batch
                .iter_mut()
                .map(|(_, buf)| IoSliceMut::new(buf))
                .collect();
            calls += 1;
            let mut got = process_vm_readv(self.pid, &mut local, &remote).unwrap_or(0);
            // Hand the bytes read out to the ranges in order; the first range not read in
            // full is where the kernel stopped.
            let mut stopped_at = batch.len();
            for (i, (_, buf)) in batch.iter().enumerate() {
                let part = got.min(buf.len());
                done[next + i] = part;
                got -= part;
                if part < buf.len() {
                    stopped_at = i;
                    break;
                }
            }
            // Skip the range that failed; the rest get a batch of their own.
            next += (stopped_at + 1).min(batch.len());
        }
        (done, calls)
    }
}

impl MemorySource for LiveProcess {
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let len = buf.len();
        let error = |errno| MemoryError::Process {
            pid: self.pid.as_raw(),
            address,
            len: len as u64,
            errno,
        };
        if len == 0 {
            return Ok(());
        }
        let base = usize::try_from(address).map_err(|_| error(nix::errno::Errno::EFAULT))?;
        let remote = [RemoteIoVec { base, len }];
        let got =
            process_vm_readv(self.pid, &mut [IoSliceMut::new(buf)], &remote).map_err(error)?;
        if got == len {
            Ok(())
        } else {
            // A read across the end of a mapping: the tail is not there.
            Err(error(nix::errno::Errno::EFAULT))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_reports_unmapped_addresses() {
        let data: Vec<u8> = (0..=255).collect();
        let me = LiveProcess::new(nix::unistd::getpid());
        let mut buf = [0u8; 256];
        me.read(data.as_ptr() as u64, &mut buf).expect("own memory");
        assert_eq!(&buf[..], &data[..]);
        let err = me.read(8, &mut buf).unwrap_err();
        assert!(matches!(err, MemoryError::Process { .. }), "{err}");
    }

    #[test]
    fn a_batch_keeps_going_after_a_bad_range() {
        let a = [1u8; 100];
        let b = [2u8; 50];
        let (mut x, mut y, mut z) = ([0u8; 100], [0u8; 16], [0u8; 50]);
        let me = LiveProcess::new(nix::unistd::getpid());
        let mut ranges = [
            (a.as_ptr() as u64, &mut x[..]),
            (16, &mut y[..]),
            (b.as_ptr() as u64, &mut z[..]),
        ];
        assert_eq!(me.read_batch(&mut ranges), (vec![100, 0, 50], 2));
        assert_eq!((x, z), (a, b));
    }
}
