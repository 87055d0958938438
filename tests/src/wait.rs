//! Polling for a condition with a bound: the one way the tests wait for something to
//! happen.
//!
//! It may not wait without a bound or sleep for a fixed time in place of a condition.

use crate::timeouts::POLL;
use std::thread;
use std::time::{Duration, Instant};

/// Polls `probe` until it answers `Some`, at most `timeout`; the test fails naming `what`.
#[track_caller]
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        if Instant::now() >= deadline {
            panic!("{what}: not within {timeout:?}");
        }
        thread::sleep(POLL);
    }
}
