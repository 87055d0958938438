//! Freeing what a capture no longer needs off the capture's path. A decoded table is
//! hundreds of thousands of small allocations and a snapshot tens of megabytes; freeing
//! them (and the allocator's consolidation of its free lists that the large free sets off)
//! cost a quarter of a whole dump of a large table, time the caller need not wait for: a
//! one-shot `dump` exits without waiting for the helper thread, and the next refresh of a
//! mount is seconds away.
//!
//! Only dropping: what is handed over is never looked at again.

/// Drops `garbage` on a helper thread (on this one if no thread can be started).
pub(super) fn discard<T: Send + 'static>(garbage: T) {
    // A failed spawn drops the closure, and with it the garbage, here.
    let _ = std::thread::Builder::new()
        .name("latch-probe-free".to_owned())
        .spawn(move || drop(garbage));
}
