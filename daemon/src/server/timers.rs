//! The server's clocks: the engine's timers (timestamp grains, idle lockers), at most one
//! pending per locker, and the daemon's own lifespan (how long it stays up with nothing to
//! do).
//!
//! Bookkeeping only: what a due timer does is [`crate::engine::on_timer`]'s, and whether
//! the daemon is idle the server decides.

use super::IdMap;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The daemon lifespan after a quiesce request (`-x`), as FLoM does.
const QUIESCE_LIFESPAN_MS: i64 = 100;

/// Pending timers, earliest first.
#[derive(Default)]
pub(super) struct Timers {
    /// (wall-clock ns, locker id)
    due: BTreeSet<(u64, u64)>,
    /// The earliest pending timer of each locker: one is enough, [`crate::engine::on_timer`]
    /// asks for the next itself (without this, every release of a busy resource would add
    /// a timer).
    of: IdMap<u64, u64>,
}

impl Timers {
    /// Asks for locker `id`'s timer at `at_ns`; an earlier one already pending stands.
    // Inlined as it was inside the server's change: most unlocks ask for one.
    #[inline]
    pub(super) fn ask(&mut self, at_ns: u64, id: u64) {
        match self.of.get(&id) {
            Some(&pending) if pending <= at_ns => {}
            _ => {
                if let Some(old) = self.of.insert(id, at_ns) {
                    self.due.remove(&(old, id));
                }
                self.due.insert((at_ns, id));
            }
        }
    }

    /// Takes the earliest timer due at `now_ns`, if any: the locker's id.
    pub(super) fn pop_due(&mut self, now_ns: u64) -> Option<u64> {
        let &(at, id) = self.due.first()?;
        if at > now_ns {
            return None;
        }
        self.due.pop_first();
        self.of.remove(&id);
        Some(id)
    }

    /// When the earliest timer is due (wall-clock ns).
    pub(super) fn next_ns(&self) -> Option<u64> {
        self.due.first().map(|&(at, _)| at)
    }
}

/// How long the daemon lives without clients or lockers.
pub(super) struct Lifespan {
    /// Exit after this long idle, ms; negative: never.
    lifespan_ms: i64,
    /// When the daemon became idle (no clients, no lockers).
    idle_since: Option<Instant>,
}

impl Lifespan {
    /// A daemon that starts idle, now.
    pub(super) fn new(lifespan_ms: i64) -> Lifespan {
        Lifespan {
            lifespan_ms,
            idle_since: Some(Instant::now()),
        }
    }

    /// A quiesce request (`-x`): exit soon after the last client leaves.
    pub(super) fn quiesce(&mut self) {
        log::info!("quiesce requested: lifespan now {QUIESCE_LIFESPAN_MS} ms");
        self.lifespan_ms = QUIESCE_LIFESPAN_MS;
    }

    /// Starts the idle clock when `idle` (unless it runs already), stops it otherwise.
    pub(super) fn set_idle(&mut self, idle: bool) {
        if idle {
            self.idle_since.get_or_insert_with(Instant::now);
        } else {
            self.idle_since = None;
        }
    }

    /// How long until the daemon should exit, if it is idle and mortal. FLoM exits about
    /// its lifespan after the last resource went, or a third of it when no resource was
    /// ever created (both recorded: tests/data/flom-transcripts.md, section 0); `ever_created` is
    /// asked only when it matters.
    // Inlined as it was inside the loop, which asks on every turn (plain `#[inline]` left
    // it out of line once the server's two callers were inlined into the loop).
    #[inline(always)]
    pub(super) fn time_left(&self, ever_created: impl FnOnce() -> bool) -> Option<Duration> {
        let since = self.idle_since?;
        if self.lifespan_ms < 0 {
            return None;
        }
        let ms = if ever_created() {
            self.lifespan_ms
        } else {
            self.lifespan_ms / 3
        };
        Some(Duration::from_millis(ms as u64).saturating_sub(since.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_come_due_in_order_and_one_per_locker() {
        let mut t = Timers::default();
        t.ask(30, 7);
        t.ask(20, 8);
        t.ask(40, 7);
        assert_eq!(t.next_ns(), Some(20));
        t.ask(10, 7);
        assert_eq!(t.pop_due(5), None, "nothing due yet");
        assert_eq!(t.pop_due(25), Some(7), "moved earlier, to 10");
        assert_eq!(t.pop_due(25), Some(8));
        assert_eq!(t.pop_due(u64::MAX), None, "7's later timers were dropped");
        assert_eq!(t.next_ns(), None);
    }

    #[test]
    fn the_lifespan_counts_from_idleness_and_a_third_without_resources() {
        let mut l = Lifespan::new(3_000);
        let left = |l: &Lifespan, ever| l.time_left(|| ever).map(|d| d.as_millis());
        assert!(left(&l, true).is_some_and(|ms| ms > 2_900 && ms <= 3_000));
        assert!(left(&l, false).is_some_and(|ms| ms > 900 && ms <= 1_000));
        l.set_idle(false);
        assert_eq!(left(&l, true), None, "busy: no clock");
        l.set_idle(true);
        l.quiesce();
        assert!(left(&l, true).is_some_and(|ms| ms <= 100));
        let forever = Lifespan::new(-1);
        assert_eq!(forever.time_left(|| panic!("not asked")), None);
    }
}
