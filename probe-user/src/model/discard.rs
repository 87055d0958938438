//! Freeing what a capture no longer needs off the capture's path. A decoded table is
//! hundreds of thousands of small allocations and a snapshot tens of megabytes; freeing
//! them (and the allocator's consolidation of its free lists that the large free sets off)
//! costs a quarter of the CPU of a whole dump of a large table. A helper thread frees them
//! a moment later: a one-shot `dump` has exited by then (the system takes the memory back
//! whole, with no allocator work), and a mount frees them long before its next refresh.
//!
//! Only dropping: what is handed over is never looked at again.

use std::time::Duration;

/// How long the helper waits before freeing: longer than a dump takes to print its
/// document and exit, far shorter than a mount's refresh interval.
const FREE_AFTER: Duration = Duration::from_millis(300);

/// Drops `garbage` on a helper thread after [`FREE_AFTER`] (here, now, if no thread can be
/// started).
pub(super) fn discard<T: Send + 'static>(garbage: T) {
    // A failed spawn drops the closure, and with it the garbage, here.
    let _ = std::thread::Builder::new()
        .name("latch-probe-free".to_owned())
        .spawn(move || {
            std::thread::sleep(FREE_AFTER);
            drop(garbage);
        });
}
