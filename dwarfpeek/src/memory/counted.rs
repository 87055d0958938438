//! A memory source that counts what is read through it: the read calls and bytes a capture
//! reports for sources that do not count themselves (a core file). It adds no caching.

use super::{MemoryError, MemorySource};
use std::cell::Cell;

/// `inner`, with a count of the reads made through it.
pub struct Counted<'a> {
    inner: &'a dyn MemorySource,
    calls: Cell<u64>,
    bytes: Cell<u64>,
}

impl<'a> Counted<'a> {
    pub fn new(inner: &'a dyn MemorySource) -> Self {
        Counted {
            inner,
            calls: Cell::new(0),
            bytes: Cell::new(0),
        }
    }

    /// Read calls so far, failed ones included.
    pub fn calls(&self) -> u64 {
        self.calls.get()
    }

    /// Bytes delivered so far (failed reads deliver none).
    pub fn bytes(&self) -> u64 {
        self.bytes.get()
    }
}

impl MemorySource for Counted<'_> {
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.calls.set(self.calls.get() + 1);
        self.inner.read(address, buf)?;
        self.bytes.set(self.bytes.get() + buf.len() as u64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Snapshot;

    #[test]
    fn counts_calls_and_delivered_bytes() {
        let snap = Snapshot::from_ranges(vec![(0x1000, vec![5; 16])]);
        let counted = Counted::new(&snap);
        let mut buf = [0u8; 4];
        counted.read(0x1000, &mut buf).expect("inside");
        assert!(counted.read(0x2000, &mut buf).is_err());
        assert_eq!((counted.calls(), counted.bytes()), (2, 4));
    }
}
