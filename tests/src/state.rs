//! Looking things up in a `latch.state/1` document the way the tests ask of it: a locker
//! by name, holders and waiters counted, the wall clock its times are in.
//!
//! It may only read a document: comparing documents is each test's own business.

use latch_probe_common::doc::{LockerDoc, StateDoc};
use std::time::{SystemTime, UNIX_EPOCH};

/// The locker of `resource` in `state`; the test fails if there is none.
#[track_caller]
pub fn locker<'a>(state: &'a StateDoc, resource: &str) -> &'a LockerDoc {
    state
        .lockers
        .iter()
        .find(|l| l.resource_name == resource)
        .unwrap_or_else(|| panic!("no locker {resource} in {state:#?}"))
}

/// How many requests hold a lock, over all lockers.
pub fn holding(state: &StateDoc) -> usize {
    state.lockers.iter().map(|l| l.holders.len()).sum()
}

/// How many requests wait in a queue, over all lockers.
pub fn waiting(state: &StateDoc) -> usize {
    state.lockers.iter().map(|l| l.waitings.len()).sum()
}

/// The wall clock in nanoseconds since the epoch, as the daemon's `*_ns` times are.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos() as u64
}
