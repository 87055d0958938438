//! The resource types' rules: whether a request can be granted now, what element it gets,
//! and what a release gives back, one function per question. FLoM's semantics, as recorded
//! in tests/data/flom-transcripts.md.
//!
//! Decides only: it changes a locker's per-type state when told a grant or a release is
//! happening, and never moves requests between lists (that is [`crate::change`]'s job).

#![forbid(unsafe_code)]

use crate::table::{Locker, Request, Rules};
use latch_probe_common::LockMode;

/// What may happen to a request right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Grant,
    /// Not now; maybe later.
    Wait,
    /// Never (rc 6): a numeric request larger than the resource.
    Impossible,
}

/// Whether `req` can be granted in `locker` at wall-clock time `now_ns`. FLoM looks only at
/// the holders, never at the queue: a compatible newcomer overtakes waiters.
pub fn verdict(locker: &Locker, req: &Request, now_ns: u64) -> Verdict {
    let ok = match &locker.rules {
        Rules::Simple => {
            let mode = req.lock_mode.unwrap_or(LockMode::EX);
            locker
                .holders
                .iter()
                .all(|h| mode.compatible_with(h.lock_mode.unwrap_or(LockMode::EX)))
        }
        Rules::Hierarchical => {
            let mode = req.lock_mode.unwrap_or(LockMode::EX);
            locker.holders.iter().all(|h| {
                !paths_overlap(&h.resource_name, &req.resource_name)
                    || mode.compatible_with(h.lock_mode.unwrap_or(LockMode::EX))
            })
        }
        Rules::Numeric { total } => {
            let asked = req.quantity.unwrap_or(1);
            if asked > *total {
                return Verdict::Impossible;
            }
            let used: u64 = locker.holders.iter().map(|h| h.quantity.unwrap_or(1)).sum();
            used + asked <= *total
        }
        Rules::Set { taken, .. } => taken.iter().any(|t| !t),
        Rules::Sequence { max, .. } => (locker.holders.len() as u64) < *max,
        Rules::Timestamp {
            max,
            grain_ns,
            last_grain,
            ..
        } => (locker.holders.len() as u64) < *max && *last_grain != Some(now_ns / grain_ns),
    };
    if ok {
        Verdict::Grant
    } else {
        Verdict::Wait
    }
}

/// Takes what a grant takes from the resource (a set element, a sequence value, the
/// timestamp's grain) and returns the element the client is given, if the type has one.
/// Call only after [`verdict`] said [`Verdict::Grant`].
pub fn take_element(locker: &mut Locker, now_ns: u64) -> Option<String> {
    match &mut locker.rules {
        Rules::Simple | Rules::Hierarchical | Rules::Numeric { .. } => None,
        Rules::Set {
            elements,
            taken,
            next,
        } => {
            let n = elements.len();
            let start = *next % n.max(1);
            let pick = (0..n).map(|i| (start + i) % n).find(|&i| !taken[i])?;
            taken[pick] = true;
            *next = (*next + 1) % n.max(1);
            Some(elements[pick].clone())
        }
        Rules::Sequence { next, returned, .. } => {
            let value = returned.pop_front().unwrap_or_else(|| {
                let v = *next;
                *next += 1;
                v
            });
            Some(value.to_string())
        }
        Rules::Timestamp {
            format,
            grain_ns,
            last_grain,
            ..
        } => {
            *last_grain = Some(now_ns / *grain_ns);
            Some(crate::timefmt::format_timestamp(format, now_ns))
        }
    }
}

/// Gives back what a holder's grant took; `rollback` returns a transactional sequence's
/// value for reuse.
pub fn give_back(locker: &mut Locker, holder: &Request, rollback: bool) {
    match &mut locker.rules {
        Rules::Set {
            elements, taken, ..
        } => {
            if let Some(i) = holder
                .element
                .as_ref()
                .and_then(|e| elements.iter().position(|x| x == e))
            {
                taken[i] = false;
            }
        }
        Rules::Sequence {
            transactional: true,
            returned,
            ..
        } if rollback => {
            if let Some(v) = holder.element.as_ref().and_then(|e| e.parse().ok()) {
                returned.push_back(v);
            }
        }
        _ => {}
    }
}

/// When a waiter refused only by the clock may be retried: the start of the next grain.
pub fn retry_at_ns(locker: &Locker, now_ns: u64) -> Option<u64> {
    match &locker.rules {
        Rules::Timestamp {
            grain_ns,
            last_grain: Some(g),
            ..
        } if *g == now_ns / grain_ns => Some((g + 1) * grain_ns),
        _ => None,
    }
}

/// Whether one of two hierarchical paths is the other or an ancestor of it.
fn paths_overlap(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long == short || (long.starts_with(short) && long.as_bytes()[short.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Peer;
    use latch_probe_common::ResourceType;
    use std::collections::VecDeque;

    fn req(conn: u64, name: &str, mode: Option<LockMode>, quantity: Option<u64>) -> Box<Request> {
        Box::new(Request {
            conn,
            resource_name: name.into(),
            resource_type: ResourceType::Simple,
            lock_mode: mode,
            quantity,
            element: None,
            since_ns: 0,
            wait: true,
            lifespan_ms: 0,
            peer: Peer {
                fd: -1,
                name: "localhost/".into(),
                pid: None,
                uid: None,
            },
        })
    }

    fn locker(rules: Rules) -> Locker {
        Locker {
            id: 3,
            resource_name: "x".into(),
            rules,
            created_ns: 0,
            lifespan_ms: 0,
            holders: Vec::new(),
            waitings: VecDeque::new(),
            idle_since_ns: None,
        }
    }

    #[test]
    fn mode_matrix_matches_flom() {
        // Rows: held; columns: asked (NL CR CW PR PW EX), as recorded in
        // tests/data/flom-transcripts.md, e2.
        let table = ["111111", "111110", "111000", "110100", "110000", "100000"];
        for (held, row) in LockMode::ALL.iter().zip(table) {
            for (asked, cell) in LockMode::ALL.iter().zip(row.chars()) {
                let mut l = locker(Rules::Simple);
                l.holders.push(req(2, "x", Some(*held), None));
                let got = verdict(&l, &req(4, "x", Some(*asked), None), 0) == Verdict::Grant;
                assert_eq!(got, cell == '1', "held {held:?} asked {asked:?}");
            }
        }
    }

    #[test]
    fn numeric_units_and_impossible() {
        let mut l = locker(Rules::Numeric { total: 3 });
        l.holders.push(req(2, "num[3]", None, Some(2)));
        assert_eq!(
            verdict(&l, &req(4, "num[3]", None, Some(2)), 0),
            Verdict::Wait
        );
        assert_eq!(
            verdict(&l, &req(5, "num[3]", None, Some(1)), 0),
            Verdict::Grant
        );
        assert_eq!(
            verdict(&l, &req(6, "num[3]", None, Some(4)), 0),
            Verdict::Impossible
        );
        let empty = locker(Rules::Numeric { total: 0 });
        assert_eq!(
            verdict(&empty, &req(7, "num[0]", None, Some(1)), 0),
            Verdict::Impossible
        );
    }

    #[test]
    fn set_round_robin_as_recorded() {
        // tests/data/flom-transcripts.md, g2: red held by c1 throughout; then four sequential
        // grants+releases.
        let elements: Vec<String> = ["red", "green", "blue"].map(String::from).to_vec();
        let mut l = locker(Rules::Set {
            taken: vec![false; 3],
            elements,
            next: 0,
        });
        let mut got = vec![take_element(&mut l, 0).unwrap()];
        let red = req(2, "s", None, None);
        for _ in 0..4 {
            let e = take_element(&mut l, 0).unwrap();
            let mut r = req(4, "s", None, None);
            r.element = Some(e.clone());
            give_back(&mut l, &r, false);
            got.push(e);
        }
        assert_eq!(got, ["red", "green", "blue", "green", "green"]);
        drop(red);
    }

    #[test]
    fn hierarchy_conflicts_with_ancestors_and_descendants() {
        let mut l = locker(Rules::Hierarchical);
        l.holders.push(req(2, "/a/b", Some(LockMode::EX), None));
        for (name, want) in [
            ("/a", Verdict::Wait),
            ("/a/b/c", Verdict::Wait),
            ("/a/c", Verdict::Grant),
            ("/a/bc", Verdict::Grant),
        ] {
            assert_eq!(
                verdict(&l, &req(4, name, Some(LockMode::EX), None), 0),
                want,
                "{name}"
            );
        }
        assert_eq!(
            verdict(&l, &req(4, "/a", Some(LockMode::NL), None), 0),
            Verdict::Grant
        );
    }

    #[test]
    fn transactional_sequence_reuses_rolled_back_values() {
        for (transactional, want) in [(true, ["1", "2", "2", "3"]), (false, ["1", "2", "3", "4"])] {
            let mut l = locker(Rules::Sequence {
                transactional,
                max: 3,
                next: 1,
                returned: VecDeque::new(),
            });
            let mut got = Vec::new();
            for rollback in [false, true, false, false] {
                let mut r = req(2, "_S_x[3]", None, None);
                r.element = take_element(&mut l, 0);
                got.push(r.element.clone().unwrap());
                give_back(&mut l, &r, rollback);
            }
            assert_eq!(got, want);
        }
    }

    #[test]
    fn timestamp_waits_for_the_next_grain() {
        let mut l = locker(Rules::Timestamp {
            format: "%S".into(),
            max: 2,
            grain_ns: 1_000_000_000,
            last_grain: None,
        });
        let t = 5_300_000_000;
        assert_eq!(verdict(&l, &req(2, "t", None, None), t), Verdict::Grant);
        take_element(&mut l, t);
        assert_eq!(verdict(&l, &req(4, "t", None, None), t + 1), Verdict::Wait);
        assert_eq!(retry_at_ns(&l, t + 1), Some(6_000_000_000));
        assert_eq!(
            verdict(&l, &req(4, "t", None, None), 6_000_000_000),
            Verdict::Grant
        );
    }
}
