//! The state changes of the lock table, one real function each: the probe's uprobes attach
//! here, so every function is `#[inline(never)]`, takes the locker and the request by
//! reference (a `&mut Locker`, a `Box<Request>`: both a pointer in a register), and is
//! entered with every field the probe reports already set. The caller keeps the table's
//! generation odd around each call ([`crate::engine`]).
//!
//! These functions only move requests between lists and record events; the decisions are
//! made before, by [`crate::rules`]. Renaming one breaks `docs/contract.md`'s test.

#![forbid(unsafe_code)]

use crate::journal::Journal;
use crate::table::{Locker, Request};
use latch_probe_common::{EntryState, EventKind};
use std::collections::BTreeMap;
use std::hint::black_box;

/// A new locker joins the table. `cause` is the request that made it.
#[inline(never)]
pub fn locker_create(
    locker: Box<Locker>,
    lockers: &mut BTreeMap<u64, Box<Locker>>,
    cause: &Request,
    journal: &mut Journal,
) {
    // Let the pointer escape so the optimizer cannot turn the argument into scalars.
    black_box(&*locker as *const Locker);
    journal.record(
        EventKind::LockerCreate,
        &locker,
        Some(cause),
        EntryState::None,
        EntryState::None,
    );
    lockers.insert(locker.id, locker);
}

/// An idle locker leaves the table (the caller took it out of the map).
#[inline(never)]
pub fn locker_destroy(locker: Box<Locker>, journal: &mut Journal) {
    black_box(&*locker as *const Locker);
    journal.record(
        EventKind::LockerDestroy,
        &locker,
        None,
        EntryState::None,
        EntryState::None,
    );
}

/// A request for a resource that does not exist yet is parked in the incubator.
#[inline(never)]
pub fn incubate(req: Box<Request>, incubator: &mut Vec<Box<Request>>, journal: &mut Journal) {
    black_box(&*req as *const Request);
    journal.record_incubator(
        EventKind::Incubate,
        &req,
        EntryState::None,
        EntryState::Incubating,
    );
    incubator.push(req);
}

/// An incubated request (taken out of the incubator) joins the locker just created for it,
/// as a waiter; a grant may follow at once.
#[inline(never)]
pub fn promote(locker: &mut Locker, req: Box<Request>, journal: &mut Journal) {
    black_box(&*req as *const Request);
    journal.record(
        EventKind::Promote,
        locker,
        Some(&req),
        EntryState::Incubating,
        EntryState::Waiting,
    );
    locker.waitings.push_back(req);
}

/// A request that cannot be granted now joins the locker's queue.
#[inline(never)]
pub fn enqueue(locker: &mut Locker, req: Box<Request>, journal: &mut Journal) {
    black_box(&*req as *const Request);
    journal.record(
        EventKind::Enqueue,
        locker,
        Some(&req),
        EntryState::None,
        EntryState::Waiting,
    );
    locker.waitings.push_back(req);
    locker.idle_since_ns = None;
}

/// A request becomes a holder, new (`from` none) or out of the queue (`from` waiting; the
/// caller took it out). Its element is already set.
#[inline(never)]
pub fn grant(locker: &mut Locker, req: Box<Request>, from: EntryState, journal: &mut Journal) {
    black_box(&*req as *const Request);
    journal.record(
        EventKind::Grant,
        locker,
        Some(&req),
        from,
        EntryState::Holding,
    );
    locker.holders.push(req);
    locker.idle_since_ns = None;
}

/// A holder lets go (unlock, or its connection closed; the caller took it out of the
/// holders and gave back what it held).
#[inline(never)]
pub fn release(locker: &mut Locker, req: Box<Request>, journal: &mut Journal) {
    black_box(&*req as *const Request);
    journal.record(
        EventKind::Release,
        locker,
        Some(&req),
        EntryState::Holding,
        EntryState::None,
    );
}

/// A waiter or an incubated request leaves without being granted (its client went away);
/// `locker` is `None` for the incubator.
#[inline(never)]
pub fn cancel(locker: Option<&mut Locker>, req: Box<Request>, journal: &mut Journal) {
    black_box(&*req as *const Request);
    match locker {
        Some(l) => journal.record(
            EventKind::Cancel,
            l,
            Some(&req),
            EntryState::Waiting,
            EntryState::None,
        ),
        None => journal.record_incubator(
            EventKind::Cancel,
            &req,
            EntryState::Incubating,
            EntryState::None,
        ),
    }
}
