//! What the daemon does with a lock, an unlock, a vanished client or a timer: the sequence
//! of [`crate::rules`] decisions and [`crate::change`] calls, on a locked [`LockTable`].
//!
//! Knows nothing of sockets: it returns the answers to send and the timers to set, and the
//! server ([`crate::server`]) carries them out.

#![forbid(unsafe_code)]

use crate::change;
use crate::journal::Journal;
use crate::rules::{self, Verdict};
use crate::table::{locker_key, LockTable, Locker, Request, Rules};
use crate::wire::Rc;
use latch_probe_common::resource::Spec;
use latch_probe_common::EntryState;
use std::collections::VecDeque;

/// How long an idle locker outlives its lifespan. FLoM keeps an idle resource (its sequence
/// counter, its last timestamp) about 1.5–2 s with lifespan 0 (tests/data/flom-transcripts.md,
/// section 0, "resource lifetime").
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
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unlock of a resource this connection does not hold")]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Peer;
    use latch_probe_common::resource;
    use latch_probe_common::{EventKind, LockMode};

    const T0: u64 = 1_700_000_000_000_000_000;

    /// A lock table driven as the server drives it, with the clock under the test's control.
    struct World {
        table: LockTable,
        now_ns: u64,
    }

    /// What one call into the engine produced.
    struct Outcome<R> {
        result: R,
        fx: Effects,
        /// The changes made, as (kind, conn, from, to).
        changes: Vec<(EventKind, Option<u64>, EntryState, EntryState)>,
    }

    /// A lock's options, as a client's message would carry them.
    #[derive(Clone, Copy)]
    struct Ask {
        mode: Option<LockMode>,
        quantity: Option<u64>,
        wait: bool,
        create: bool,
    }

    const EX: Ask = Ask {
        mode: Some(LockMode::EX),
        quantity: None,
        wait: true,
        create: true,
    };

    impl Ask {
        fn mode(self, mode: LockMode) -> Ask {
            Ask {
                mode: Some(mode),
                ..self
            }
        }
        fn quantity(self, q: u64) -> Ask {
            Ask {
                quantity: Some(q),
                ..self
            }
        }
        fn no_wait(self) -> Ask {
            Ask {
                wait: false,
                ..self
            }
        }
        fn no_create(self) -> Ask {
            Ask {
                create: false,
                ..self
            }
        }
    }

    impl World {
        fn new() -> World {
            World {
                table: LockTable::new(),
                now_ns: T0,
            }
        }

        fn run<R>(
            &mut self,
            f: impl FnOnce(&mut LockTable, &mut Journal, &mut Effects) -> R,
        ) -> Outcome<R> {
            let mut journal = Journal::new(true, self.now_ns);
            let mut fx = Effects::default();
            let result = f(&mut self.table, &mut journal, &mut fx);
            let changes = journal
                .events
                .iter()
                .map(|e| (e.kind, e.conn, e.from, e.to))
                .collect();
            Outcome {
                result,
                fx,
                changes,
            }
        }

        /// A new connection's lock of `name`; returns its conn id and the outcome.
        fn lock(&mut self, name: &str, ask: Ask) -> (u64, Outcome<Answer>) {
            let spec = resource::classify(name).expect("a valid name");
            let resource_type = spec.resource_type();
            let conn = self.table.take_id();
            let req = Box::new(Request {
                conn,
                resource_name: name.to_owned(),
                resource_type,
                lock_mode: resource_type
                    .has_mode()
                    .then(|| ask.mode.unwrap_or(LockMode::EX)),
                quantity: resource_type
                    .has_quantity()
                    .then(|| ask.quantity.unwrap_or(1)),
                element: None,
                since_ns: 0,
                wait: ask.wait,
                lifespan_ms: 0,
                peer: Peer {
                    fd: -1,
                    name: "localhost/".into(),
                    pid: None,
                    uid: None,
                },
            });
            let outcome = self.run(|t, j, fx| lock(t, spec, ask.create, req, j, fx));
            (conn, outcome)
        }

        fn unlock(
            &mut self,
            conn: u64,
            name: &str,
            rollback: bool,
        ) -> Outcome<Result<(), NotHeld>> {
            self.run(|t, j, fx| unlock(t, conn, name, rollback, j, fx))
        }

        fn disconnect(&mut self, conn: u64) -> Outcome<()> {
            self.run(|t, j, fx| disconnect(t, conn, j, fx))
        }

        fn timer(&mut self, id: u64) -> Outcome<()> {
            self.run(|t, j, fx| on_timer(t, id, j, fx))
        }

        fn locker(&self, key: &str) -> &Locker {
            let id = self.table.locker_by_key(key).expect("a locker for the key");
            &self.table.lockers[&id]
        }

        fn holders(&self, key: &str) -> Vec<u64> {
            self.locker(key).holders.iter().map(|r| r.conn).collect()
        }

        fn waiters(&self, key: &str) -> Vec<u64> {
            self.locker(key).waitings.iter().map(|r| r.conn).collect()
        }
    }

    fn granted(element: Option<&str>) -> Answer {
        Answer {
            rc: Rc::Granted,
            element: element.map(str::to_owned),
        }
    }

    #[test]
    fn a_free_resource_is_granted_and_a_held_one_queued_or_refused() {
        let mut w = World::new();
        let (a, first) = w.lock("foo", EX);
        assert_eq!(first.result, granted(None));
        let (b, second) = w.lock("foo", EX);
        assert_eq!(second.result, Answer::rc(Rc::Queued));
        assert!(
            second.fx.replies.is_empty(),
            "a queued waiter is answered once"
        );
        let (c, third) = w.lock("foo", EX.no_wait());
        assert_eq!(third.result, Answer::rc(Rc::Busy));
        assert_eq!(w.holders("foo"), [a]);
        assert_eq!(w.waiters("foo"), [b]);
        let id = w.table.locker_by_key("foo").unwrap();
        assert_eq!(w.table.placements.get(&a), Some(&id));
        assert_eq!(w.table.placements.get(&b), Some(&id));
        assert_eq!(
            w.table.placements.get(&c),
            None,
            "a refused request is not placed"
        );
        assert_eq!(w.table.lockers.len(), 1);
    }

    #[test]
    fn a_compatible_newcomer_overtakes_the_queue() {
        let mut w = World::new();
        let (reader, _) = w.lock("foo", EX.mode(LockMode::PR));
        let (writer, queued) = w.lock("foo", EX);
        assert_eq!(queued.result.rc, Rc::Queued);
        let (second_reader, overtook) = w.lock("foo", EX.mode(LockMode::PR));
        assert_eq!(overtook.result, granted(None));
        assert_eq!(w.holders("foo"), [reader, second_reader]);
        assert_eq!(w.waiters("foo"), [writer]);
    }

    #[test]
    fn a_release_grants_the_waiters_that_fit_in_queue_order() {
        let mut w = World::new();
        let (holder, _) = w.lock("foo", EX);
        let (first, _) = w.lock("foo", EX);
        let (second, _) = w.lock("foo", EX);
        let released = w.unlock(holder, "foo", false);
        assert_eq!(released.result, Ok(()));
        assert_eq!(released.fx.replies, [(first, granted(None))]);
        assert_eq!(w.holders("foo"), [first]);
        assert_eq!(w.waiters("foo"), [second]);
        assert_eq!(w.table.placements.get(&holder), None);
        // Readers queued behind a writer all go at once when it leaves.
        let mut w = World::new();
        let (writer, _) = w.lock("foo", EX);
        let (r1, _) = w.lock("foo", EX.mode(LockMode::PR));
        let (r2, _) = w.lock("foo", EX.mode(LockMode::PR));
        let released = w.unlock(writer, "foo", false);
        assert_eq!(
            released.fx.replies,
            [(r1, granted(None)), (r2, granted(None))]
        );
        assert!(w.waiters("foo").is_empty());
    }

    #[test]
    fn an_unlock_of_what_the_connection_does_not_hold_changes_nothing() {
        let mut w = World::new();
        let (holder, _) = w.lock("foo", EX);
        let (waiter, _) = w.lock("foo", EX);
        assert_eq!(w.unlock(waiter, "foo", false).result, Err(NotHeld));
        assert_eq!(w.unlock(holder, "bar", false).result, Err(NotHeld));
        assert_eq!(w.unlock(999, "foo", false).result, Err(NotHeld));
        assert_eq!(w.holders("foo"), [holder]);
        assert_eq!(w.waiters("foo"), [waiter]);
    }

    #[test]
    fn a_vanished_waiter_is_cancelled_and_a_vanished_holder_released() {
        let mut w = World::new();
        let (holder, _) = w.lock("foo", EX);
        let (first, _) = w.lock("foo", EX);
        let (second, _) = w.lock("foo", EX);
        let gone = w.disconnect(first);
        assert!(gone.fx.replies.is_empty(), "a cancel grants nobody");
        assert_eq!(w.waiters("foo"), [second]);
        assert_eq!(w.table.placements.get(&first), None);
        let gone = w.disconnect(holder);
        assert_eq!(gone.fx.replies, [(second, granted(None))]);
        assert_eq!(w.holders("foo"), [second]);
    }

    #[test]
    fn numeric_quantities_add_up_to_the_total_and_never_past_it() {
        let mut w = World::new();
        let q = |n| EX.quantity(n);
        let (two, a) = w.lock("num[3]", q(2));
        assert_eq!(a.result, granted(None));
        let (other_two, b) = w.lock("num[3]", q(2));
        assert_eq!(b.result.rc, Rc::Queued);
        let (four, c) = w.lock("num[3]", q(4));
        assert_eq!(c.result.rc, Rc::Impossible, "more than the resource has");
        assert_eq!(w.table.placements.get(&four), None);
        let (one, d) = w.lock("num[3]", q(1));
        assert_eq!(d.result, granted(None), "1 of the 3 is still free");
        assert_eq!(w.holders("num[3]"), [two, one]);
        let released = w.unlock(two, "num[3]", false);
        assert_eq!(released.fx.replies, [(other_two, granted(None))]);
        assert_eq!(w.holders("num[3]"), [one, other_two]);
        // A waiter that fits is granted past one that does not fit yet.
        let (three, _) = w.lock("num[3]", q(3));
        let (another_two, _) = w.lock("num[3]", q(2));
        let released = w.unlock(other_two, "num[3]", false);
        assert_eq!(released.fx.replies, [(another_two, granted(None))]);
        assert_eq!(w.waiters("num[3]"), [three]);
    }

    #[test]
    fn set_elements_are_handed_out_once_each_and_come_back_on_release() {
        let mut w = World::new();
        let (_, red) = w.lock("red.green.blue", EX);
        let (green_holder, green) = w.lock("red.green.blue", EX);
        let (_, blue) = w.lock("red.green.blue", EX);
        assert_eq!(red.result, granted(Some("red")));
        assert_eq!(green.result, granted(Some("green")));
        assert_eq!(blue.result, granted(Some("blue")));
        let (_, busy) = w.lock("red.green.blue", EX.no_wait());
        assert_eq!(busy.result.rc, Rc::Busy);
        let (waiter, queued) = w.lock("red.green.blue", EX);
        assert_eq!(queued.result.rc, Rc::Queued);
        let released = w.unlock(green_holder, "red.green.blue", false);
        assert_eq!(released.fx.replies, [(waiter, granted(Some("green")))]);
        let element = |c| {
            w.locker("red.green.blue")
                .holders
                .iter()
                .find(|r| r.conn == c)
                .and_then(|r| r.element.clone())
        };
        assert_eq!(element(waiter).as_deref(), Some("green"));
    }

    #[test]
    fn a_rolled_back_transactional_value_is_handed_out_again() {
        let mut w = World::new();
        let (first, a) = w.lock("_S_seq[3]", EX);
        assert_eq!(a.result, granted(Some("1")));
        w.unlock(first, "_S_seq[3]", true).result.unwrap();
        let (second, b) = w.lock("_S_seq[3]", EX);
        assert_eq!(b.result, granted(Some("1")), "the rolled-back 1 comes back");
        w.unlock(second, "_S_seq[3]", false).result.unwrap();
        let (third, c) = w.lock("_S_seq[3]", EX);
        assert_eq!(c.result, granted(Some("2")), "a committed value is used up");
        // A vanished client's value counts as rolled back.
        w.disconnect(third);
        let (_, d) = w.lock("_S_seq[3]", EX);
        assert_eq!(d.result, granted(Some("2")));
        // Not so for a non-transactional sequence.
        let (plain, e) = w.lock("_s_seq[3]", EX);
        assert_eq!(e.result, granted(Some("1")));
        w.unlock(plain, "_s_seq[3]", true).result.unwrap();
        let (_, f) = w.lock("_s_seq[3]", EX);
        assert_eq!(f.result, granted(Some("2")));
    }

    #[test]
    fn hierarchical_paths_share_one_locker_per_first_component() {
        let mut w = World::new();
        let (ab, _) = w.lock("/a/b", EX);
        let (ac, sibling) = w.lock("/a/c", EX);
        assert_eq!(sibling.result, granted(None), "siblings do not overlap");
        let (a, parent) = w.lock("/a", EX);
        assert_eq!(parent.result.rc, Rc::Queued, "an ancestor overlaps");
        let (_, other) = w.lock("/b", EX);
        assert_eq!(other.result, granted(None));
        assert_eq!(w.table.lockers.len(), 2);
        assert_eq!(w.holders("/a"), [ab, ac]);
        assert_eq!(w.waiters("/a"), [a]);
        w.unlock(ab, "/a/b", false).result.unwrap();
        assert_eq!(w.waiters("/a"), [a], "/a/c still overlaps /a");
        let released = w.unlock(ac, "/a/c", false);
        assert_eq!(released.fx.replies, [(a, granted(None))]);
    }

    #[test]
    fn a_request_for_a_missing_resource_is_incubated_or_refused() {
        let mut w = World::new();
        let (_, cannot) = w.lock("foo", EX.no_create().no_wait());
        assert_eq!(cannot.result.rc, Rc::CannotWait);
        let (waiting, incubated) = w.lock("foo", EX.no_create());
        assert_eq!(incubated.result.rc, Rc::Incubated);
        assert!(w.table.lockers.is_empty());
        assert_eq!(w.table.incubator.len(), 1);
        assert_eq!(w.table.incubator[0].conn, waiting);
        // Gone before anybody created it: it simply leaves the incubator.
        w.disconnect(waiting);
        assert!(w.table.incubator.is_empty());
    }

    #[test]
    fn creating_a_resource_promotes_what_was_incubated_for_it() {
        // Conflicting: the incubated request is queued, and told so.
        let mut w = World::new();
        let (inc, _) = w.lock("foo", EX.no_create());
        let (elsewhere, _) = w.lock("bar", EX.no_create());
        let (creator, created) = w.lock("foo", EX);
        assert_eq!(created.result, granted(None));
        assert_eq!(created.fx.replies, [(inc, Answer::rc(Rc::Queued))]);
        assert_eq!(w.holders("foo"), [creator]);
        assert_eq!(w.waiters("foo"), [inc]);
        assert_eq!(w.table.incubator.len(), 1, "bar's request stays incubated");
        assert_eq!(w.table.incubator[0].conn, elsewhere);
        // Compatible: it is granted at once, with no queued answer first.
        let mut w = World::new();
        let (inc, _) = w.lock("foo", EX.mode(LockMode::PR).no_create());
        let (creator, created) = w.lock("foo", EX.mode(LockMode::PR));
        assert_eq!(created.fx.replies, [(inc, granted(None))]);
        assert_eq!(w.holders("foo"), [creator, inc]);
        assert!(w.table.incubator.is_empty());
    }

    #[test]
    fn an_incubated_request_the_new_resource_can_never_satisfy_is_refused() {
        let mut w = World::new();
        let (too_big, _) = w.lock("num[3]", EX.quantity(5).no_create());
        let (creator, created) = w.lock("num[3]", EX.quantity(1));
        assert_eq!(created.fx.replies, [(too_big, Answer::rc(Rc::Impossible))]);
        // Refused straight from the incubator, never promoted into the locker.
        assert_eq!(
            created.changes,
            [
                (
                    EventKind::LockerCreate,
                    None,
                    EntryState::None,
                    EntryState::None
                ),
                (
                    EventKind::Grant,
                    Some(creator),
                    EntryState::None,
                    EntryState::Holding
                ),
                (
                    EventKind::Cancel,
                    Some(too_big),
                    EntryState::Incubating,
                    EntryState::None
                ),
            ]
        );
        assert!(w.table.incubator.is_empty());
        assert!(w.waiters("num[3]").is_empty());
        assert_eq!(w.table.placements.get(&too_big), None);
    }

    #[test]
    fn an_idle_locker_lives_its_lifespan_and_the_grace_then_goes() {
        let mut w = World::new();
        let (holder, locked) = w.lock("foo", EX);
        assert!(locked.fx.timers.is_empty(), "a held locker is not idle");
        let id = w.table.locker_by_key("foo").unwrap();
        let released = w.unlock(holder, "foo", false);
        let due = T0 + IDLE_GRACE_MS * 1_000_000;
        assert_eq!(released.fx.timers, [(due, id)]);
        assert_eq!(w.locker("foo").idle_since_ns, Some(T0));
        w.now_ns = due - 1;
        let early = w.timer(id);
        assert!(w.table.lockers.contains_key(&id), "not yet");
        assert_eq!(early.fx.timers, [(due, id)], "asks again for the same time");
        w.now_ns = due;
        w.timer(id);
        assert!(w.table.lockers.is_empty());
        assert_eq!(w.table.locker_by_key("foo"), None);
    }

    #[test]
    fn a_client_coming_back_keeps_an_idle_locker() {
        let mut w = World::new();
        let (holder, _) = w.lock("foo", EX);
        let id = w.table.locker_by_key("foo").unwrap();
        w.unlock(holder, "foo", false).result.unwrap();
        w.lock("foo", EX);
        assert_eq!(w.locker("foo").idle_since_ns, None);
        w.now_ns = T0 + (IDLE_GRACE_MS + 1) * 1_000_000;
        w.timer(id);
        assert!(w.table.lockers.contains_key(&id));
    }

    #[test]
    fn a_timestamp_waiter_is_retried_at_the_next_grain() {
        let mut w = World::new();
        // Mid-second, so the next grain is half a second away.
        w.now_ns = T0 + 500_000_000;
        let (_, first) = w.lock("_t_%S[2]", EX);
        assert_eq!(first.result.rc, Rc::Granted);
        let (second, queued) = w.lock("_t_%S[2]", EX);
        assert_eq!(queued.result.rc, Rc::Queued, "one element per grain");
        let id = w.table.locker_by_key("_t_%S[2]").unwrap();
        let next_grain = T0 + 1_000_000_000;
        assert_eq!(queued.fx.timers, [(next_grain, id)]);
        w.now_ns = next_grain;
        let retried = w.timer(id);
        assert_eq!(retried.fx.replies.len(), 1);
        assert_eq!(retried.fx.replies[0].0, second);
        assert_eq!(retried.fx.replies[0].1.rc, Rc::Granted);
        assert!(retried.fx.replies[0].1.element.is_some());
    }
}
