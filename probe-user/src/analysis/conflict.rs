//! How the entries of one locker compete: FLoM's grant rules restated over the state
//! document, so that an analysis can ask "does this holder stand in that waiter's way?" and
//! "would that waiter fit beside these holders?".
//!
//! Pure functions of the document; the daemon's own rules are the authority, and these
//! follow them: a request is granted when it fits beside the holders (the queue is not
//! looked at), and a release grants, in queue order, every waiter that then fits.

use latch_probe_common::doc::{EntryDoc, LockerDoc};
use latch_probe_common::resource::{self, Spec};
use latch_probe_common::{LockMode, ResourceType};

/// What one locker's holders compete for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capacity {
    /// Simple resources: lock modes.
    Modes,
    /// Hierarchical resources: lock modes, between overlapping paths only.
    Paths,
    /// Numeric resources: this many units.
    Units(u64),
    /// Sets, sequences and timestamps: this many holders at once.
    Slots(u64),
}

impl Capacity {
    /// The capacity of `locker`, from its type and name. A name that does not say (a
    /// damaged document) is taken to be full with what is held now: a waiter then needs a
    /// release, which is what its waiting shows.
    pub fn of(locker: &LockerDoc) -> Capacity {
        let spec = resource::classify(&locker.resource_name);
        let held = locker.holders.len() as u64;
        match (locker.resource_type, spec) {
            (ResourceType::Simple, _) => Capacity::Modes,
            (ResourceType::Hierarchical, _) => Capacity::Paths,
            (ResourceType::Numeric, Some(Spec::Numeric { total })) => Capacity::Units(total),
            (ResourceType::Numeric, _) => Capacity::Units(
                locker
                    .holders
                    .iter()
                    .map(units)
                    .fold(0, u64::saturating_add),
            ),
            (ResourceType::Set, Some(Spec::Set { elements })) => {
                Capacity::Slots(elements.len() as u64)
            }
            (ResourceType::Sequence, Some(Spec::Sequence { max, .. }))
            | (ResourceType::Timestamp, Some(Spec::Timestamp { max, .. })) => Capacity::Slots(max),
            (ResourceType::Set | ResourceType::Sequence | ResourceType::Timestamp, _) => {
                Capacity::Slots(held)
            }
        }
    }

    /// Whether `held` (a holder, or a waiter ahead in the queue) stands in the way of
    /// `wanted`: whether `wanted` needs it gone, alone or with others.
    pub fn stands_in_way(self, held: &EntryDoc, wanted: &EntryDoc) -> bool {
        match self {
            Capacity::Modes => !mode(wanted).compatible_with(mode(held)),
            Capacity::Paths => {
                paths_overlap(&held.request.resource_name, &wanted.request.resource_name)
                    && !mode(wanted).compatible_with(mode(held))
            }
            Capacity::Units(_) | Capacity::Slots(_) => true,
        }
    }

    /// Whether `wanted` would be granted beside `held` alone.
    pub fn fits<'a>(self, mut held: impl Iterator<Item = &'a EntryDoc>, wanted: &EntryDoc) -> bool {
        match self {
            Capacity::Modes | Capacity::Paths => held.all(|h| !self.stands_in_way(h, wanted)),
            Capacity::Units(total) => held
                .map(units)
                .fold(units(wanted), u64::saturating_add)
                .le(&total),
            Capacity::Slots(max) => (held.count() as u64) < max,
        }
    }
}

/// The mode an entry holds or asks for; FLoM's default is exclusive.
pub fn mode(entry: &EntryDoc) -> LockMode {
    entry.request.lock_mode.unwrap_or(LockMode::EX)
}

/// The units a numeric entry holds or asks for; FLoM's default is one.
fn units(entry: &EntryDoc) -> u64 {
    entry.request.quantity.unwrap_or(1)
}

/// Whether one of two hierarchical paths is the other or an ancestor of it.
fn paths_overlap(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long == short || (long.starts_with(short) && long.as_bytes().get(short.len()) == Some(&b'/'))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use latch_probe_common::doc::RequestDoc;

    pub(crate) fn entry(conn: u64, name: &str, mode: Option<LockMode>, q: Option<u64>) -> EntryDoc {
        EntryDoc {
            request: RequestDoc {
                conn,
                resource_name: name.into(),
                peer_name: "localhost/".into(),
                peer_pid: Some(conn as u32 + 1000),
                peer_uid: Some(0),
                fd: conn as i32,
                lock_mode: mode,
                quantity: q,
                since_ns: conn,
            },
            element: None,
        }
    }

    /// `entry` of a client with peer pid `pid`.
    pub(crate) fn with_pid(mut entry: EntryDoc, pid: u32) -> EntryDoc {
        entry.request.peer_pid = Some(pid);
        entry
    }

    fn locker(name: &str, ty: ResourceType, holders: Vec<EntryDoc>) -> LockerDoc {
        LockerDoc {
            id: 1,
            resource_name: name.into(),
            resource_type: ty,
            created_ns: 0,
            holders,
            waitings: vec![],
        }
    }

    #[test]
    fn modes_follow_the_compatibility_matrix() {
        let pr = entry(1, "a", Some(LockMode::PR), None);
        let cr = entry(2, "a", Some(LockMode::CR), None);
        let ex = entry(3, "a", None, None);
        let c = Capacity::Modes;
        assert!(!c.stands_in_way(&pr, &cr));
        assert!(c.stands_in_way(&pr, &ex));
        assert!(c.stands_in_way(&ex, &cr), "no mode means exclusive");
        assert!(c.fits(
            [&pr, &cr].into_iter(),
            &entry(4, "a", Some(LockMode::PR), None)
        ));
        assert!(!c.fits([&pr].into_iter(), &entry(4, "a", Some(LockMode::PW), None)));
    }

    #[test]
    fn paths_conflict_only_where_they_overlap() {
        let c = Capacity::Paths;
        let held = entry(1, "/a/b", None, None);
        assert!(c.stands_in_way(&held, &entry(2, "/a", None, None)));
        assert!(c.stands_in_way(&held, &entry(2, "/a/b/c", None, None)));
        assert!(!c.stands_in_way(&held, &entry(2, "/a/bc", None, None)));
        assert!(!c.stands_in_way(&held, &entry(2, "/a/c", None, None)));
    }

    #[test]
    fn units_and_slots_count() {
        let l = locker(
            "pool[5]",
            ResourceType::Numeric,
            vec![
                entry(1, "pool[5]", None, Some(2)),
                entry(2, "pool[5]", None, Some(2)),
            ],
        );
        let c = Capacity::of(&l);
        assert_eq!(c, Capacity::Units(5));
        assert!(c.fits(l.holders.iter(), &entry(3, "pool[5]", None, Some(1))));
        assert!(!c.fits(l.holders.iter(), &entry(3, "pool[5]", None, Some(2))));
        assert!(c.fits(l.holders[..1].iter(), &entry(3, "pool[5]", None, Some(3))));

        let s = locker(
            "red.green",
            ResourceType::Set,
            vec![entry(1, "red.green", None, None)],
        );
        let c = Capacity::of(&s);
        assert_eq!(c, Capacity::Slots(2));
        assert!(c.fits(s.holders.iter(), &entry(2, "red.green", None, None)));
        let full: Vec<_> = (1..=2).map(|i| entry(i, "red.green", None, None)).collect();
        assert!(!c.fits(full.iter(), &entry(3, "red.green", None, None)));
    }

    #[test]
    fn a_name_that_does_not_say_is_taken_as_full() {
        let l = locker(
            "garbage",
            ResourceType::Numeric,
            vec![entry(1, "x", None, Some(3))],
        );
        assert_eq!(Capacity::of(&l), Capacity::Units(3));
        let s = locker(
            "garbage",
            ResourceType::Set,
            vec![entry(1, "x", None, None)],
        );
        assert_eq!(Capacity::of(&s), Capacity::Slots(1));
    }
}
