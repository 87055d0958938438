//! What the daemon does with a lock, an unlock, a vanished client or a timer: the sequence
//! of [`crate::rules`] decisions and [`crate::change`] calls, on a locked [`LockTable`].
//!
//! Knows nothing of sockets: it returns the answers to send and the timers to set, and the
//! server ([`crate::server`]) carries them out.

use crate::change;
use crate::journal::Journal;
use crate::resource::Spec;
use crate::rules::{self, Verdict};
use crate::table::{locker_key, LockTable, Locker, Request, Rules};
use crate::wire::Rc;
use latch_probe_common::EntryState;
use std::collections::VecDeque;

/// How long an idle locker outlives its lifespan. FLoM keeps an idle resource (its sequence
/// counter, its last timestamp) about 1.5–2 s with lifespan 0 (tests/data/flom-transcripts.md,
/// i3).
pub const IDLE_GRACE_MS: u64 = 1_750;

/// A lock answer: a return code and, when granted, the element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub rc: Rc,
    pub element: Option<String>,
}

impl Answer {
    pub fn rc(rc: Rc) -> Answer {
        Answer { rc, element: None }
    }
}

/// What handling one message asks of the server besides the direct answer.
#[derive(Debug, Default)]
pub struct Effects {
    /// Later answers (step 24) to connections, in order.
    pub replies: Vec<(u64, Answer)>,
    /// (wall-clock ns, locker id): call [`on_timer`] for the locker then.
    pub timers: Vec<(u64, u64)>,
}

/// The unlock named a resource this connection does not hold.
#[derive(Debug, PartialEq, Eq)]
pub struct NotHeld;

/// A lock request for `spec` (already validated). Returns the first answer.
pub fn lock(
    table: &mut LockTable,
    spec: Spec,
    create: bool,
    mut req: Box<Request>,
    journal: &mut Journal,
    fx: &mut Effects,
) -> Answer {
    let now = journal.now_ns;
    let key = locker_key(&req.resource_name, req.resource_type).to_owned();
    let (id, created) = match table.locker_by_key(&key) {
        Some(id) => (id, false),
        None if create => (create_locker(table, spec, &key, &req, journal), true),
        None if req.wait => {
            req.since_ns = now;
            change::incubate(req, &mut table.incubator, journal);
            return Answer::rc(Rc::Incubated);
        }
        None => return Answer::rc(Rc::CannotWait),
    };
    let Some(locker) = table.lockers.get_mut(&id) else {
        return Answer::rc(Rc::Busy);
    };
    let conn = req.conn;
    let answer = match rules::verdict(locker, &req, now) {
        Verdict::Grant => {
            req.element = rules::take_element(locker, now);
            req.since_ns = now;
            let element = req.element.clone();
            change::grant(locker, req, EntryState::None, journal);
            table.placements.insert(conn, id);
            Answer {
                rc: Rc::Granted,
                element,
            }
        }
        Verdict::Impossible => Answer::rc(Rc::Impossible),
        Verdict::Wait if req.wait => {
            req.since_ns = now;
            change::enqueue(locker, req, journal);
            table.placements.insert(conn, id);
            fx.timers
                .extend(rules::retry_at_ns(locker, now).map(|at| (at, id)));
            Answer::rc(Rc::Queued)
        }
        Verdict::Wait => Answer::rc(Rc::Busy),
    };
    if created {
        promote_incubated(table, id, &key, journal, fx);
    }
    schedule_expiry(table, id, now, fx);
    answer
}

/// An unlock from `conn` for `name`; `rollback` when the client's command failed.
pub fn unlock(
    table: &mut LockTable,
    conn: u64,
    name: &str,
    rollback: bool,
    journal: &mut Journal,
    fx: &mut Effects,
) -> Result<(), NotHeld> {
    let id = table.placements.get(&conn).copied().ok_or(NotHeld)?;
    let locker = table.lockers.get(&id).ok_or(NotHeld)?;
    let holds = locker
        .holders
        .iter()
        .any(|h| h.conn == conn && h.resource_name == name);
    if !holds {
        return Err(NotHeld);
    }
    release_or_cancel(table, conn, rollback, journal, fx);
    Ok(())
}

/// The connection `conn` closed: what it held is released (a transactional value counts as
/// rolled back), what it waited for is cancelled.
pub fn disconnect(table: &mut LockTable, conn: u64, journal: &mut Journal, fx: &mut Effects) {
    if table.placements.contains_key(&conn) {
        release_or_cancel(table, conn, true, journal, fx);
    } else if let Some(at) = table.incubator.iter().position(|r| r.conn == conn) {
        let req = table.incubator.remove(at);
        change::cancel(None, req, journal);
    }
}

/// A timer set through [`Effects::timers`] is due: retry the clock-bound waiters and
/// destroy the locker if it has been idle long enough.
pub fn on_timer(table: &mut LockTable, id: u64, journal: &mut Journal, fx: &mut Effects) {
    let now = journal.now_ns;
    let Some(locker) = table.lockers.get_mut(&id) else {
        return;
    };
    schedule(locker, &mut table.placements, journal, fx);
    let Some(idle_since) = locker.idle_since_ns else {
        return;
    };
    if now >= idle_since + (locker.lifespan_ms + IDLE_GRACE_MS) * 1_000_000 {
        if let Some(locker) = table.lockers.remove(&id) {
            let key = locker_key(&locker.resource_name, locker.rules.resource_type()).to_owned();
            table.by_key.remove(&key);
            change::locker_destroy(locker, journal);
        }
    } else {
        schedule_expiry(table, id, now, fx);
    }
}

fn create_locker(
    table: &mut LockTable,
    spec: Spec,
    key: &str,
    cause: &Request,
    journal: &mut Journal,
) -> u64 {
    let id = table.take_id();
    let rules = match spec {
        Spec::Simple => Rules::Simple,
        Spec::Numeric { total } => Rules::Numeric { total },
        Spec::Set { elements } => Rules::Set {
            taken: vec![false; elements.len()],
            elements,
            next: 0,
        },
        Spec::Hierarchical { .. } => Rules::Hierarchical,
        Spec::Sequence { transactional, max } => Rules::Sequence {
            transactional,
            max,
            next: 1,
            returned: VecDeque::new(),
        },
        Spec::Timestamp {
            format,
            max,
            grain_ns,
        } => Rules::Timestamp {
            format,
            max,
            grain_ns,
            last_grain: None,
        },
    };
    let locker = Box::new(Locker {
        id,
        resource_name: cause.resource_name.clone(),
        rules,
        created_ns: journal.now_ns,
        lifespan_ms: cause.lifespan_ms,
        holders: Vec::new(),
        waitings: VecDeque::new(),
        idle_since_ns: None,
    });
    change::locker_create(locker, &mut table.lockers, cause, journal);
    table.by_key.insert(key.to_owned(), id);
    table.ever_created = true;
    id
}

/// Moves the incubated requests for a just-created locker into it; each then gets a step-24
/// answer: granted at once, or queued (rc 1, a grant follows later).
fn promote_incubated(
    table: &mut LockTable,
    id: u64,
    key: &str,
    journal: &mut Journal,
    fx: &mut Effects,
) {
    let now = journal.now_ns;
    let Some(locker) = table.lockers.get_mut(&id) else {
        return;
    };
    let mut promoted = Vec::new();
    let mut i = 0;
    while i < table.incubator.len() {
        if locker_key(
            &table.incubator[i].resource_name,
            table.incubator[i].resource_type,
        ) != key
        {
            i += 1;
            continue;
        }
        let mut req = table.incubator.remove(i);
        if rules::verdict(locker, &req, now) == Verdict::Impossible {
            fx.replies.push((req.conn, Answer::rc(Rc::Impossible)));
            change::cancel(None, req, journal);
            continue;
        }
        req.since_ns = now;
        promoted.push(req.conn);
        table.placements.insert(req.conn, id);
        change::promote(locker, req, journal);
    }
    if promoted.is_empty() {
        return;
    }
    let first_reply = fx.replies.len();
    schedule(locker, &mut table.placements, journal, fx);
    let granted: Vec<u64> = fx.replies[first_reply..].iter().map(|(c, _)| *c).collect();
    // Queued ones learn it before their later grant, as FLoM does
    // (tests/data/flom-transcripts.md, k2).
    let queued = promoted.into_iter().filter(|c| !granted.contains(c));
    let queued: Vec<(u64, Answer)> = queued.map(|c| (c, Answer::rc(Rc::Queued))).collect();
    fx.replies.splice(first_reply..first_reply, queued);
}

fn release_or_cancel(
    table: &mut LockTable,
    conn: u64,
    rollback: bool,
    journal: &mut Journal,
    fx: &mut Effects,
) {
    let now = journal.now_ns;
    let Some(id) = table.placements.remove(&conn) else {
        return;
    };
    let Some(locker) = table.lockers.get_mut(&id) else {
        return;
    };
    if let Some(at) = locker.holders.iter().position(|h| h.conn == conn) {
        let req = locker.holders.remove(at);
        rules::give_back(locker, &req, rollback);
        change::release(locker, req, journal);
        schedule(locker, &mut table.placements, journal, fx);
    } else if let Some(at) = locker.waitings.iter().position(|w| w.conn == conn) {
        if let Some(req) = locker.waitings.remove(at) {
            change::cancel(Some(locker), req, journal);
        }
    }
    schedule_expiry(table, id, now, fx);
}

/// Grants, in queue order, every waiter that can be granted now.
fn schedule(
    locker: &mut Locker,
    placements: &mut std::collections::BTreeMap<u64, u64>,
    journal: &mut Journal,
    fx: &mut Effects,
) {
    let now = journal.now_ns;
    let mut i = 0;
    while i < locker.waitings.len() {
        match rules::verdict(locker, &locker.waitings[i], now) {
            Verdict::Grant => {
                let Some(mut req) = locker.waitings.remove(i) else {
                    break;
                };
                req.element = rules::take_element(locker, now);
                req.since_ns = now;
                fx.replies.push((
                    req.conn,
                    Answer {
                        rc: Rc::Granted,
                        element: req.element.clone(),
                    },
                ));
                change::grant(locker, req, EntryState::Waiting, journal);
            }
            Verdict::Impossible => {
                let Some(req) = locker.waitings.remove(i) else {
                    break;
                };
                placements.remove(&req.conn);
                fx.replies.push((req.conn, Answer::rc(Rc::Impossible)));
                change::cancel(Some(locker), req, journal);
            }
            Verdict::Wait => i += 1,
        }
    }
    if !locker.waitings.is_empty() {
        fx.timers
            .extend(rules::retry_at_ns(locker, now).map(|at| (at, locker.id)));
    }
}

/// Marks a locker idle when its last client left, and asks for the timer that destroys it.
fn schedule_expiry(table: &mut LockTable, id: u64, now: u64, fx: &mut Effects) {
    let Some(locker) = table.lockers.get_mut(&id) else {
        return;
    };
    if !locker.holders.is_empty() || !locker.waitings.is_empty() {
        locker.idle_since_ns = None;
        return;
    }
    let since = *locker.idle_since_ns.get_or_insert(now);
    fx.timers
        .push((since + (locker.lifespan_ms + IDLE_GRACE_MS) * 1_000_000, id));
}
