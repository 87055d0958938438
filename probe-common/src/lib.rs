//! What the latch daemon and the latch probe agree on, kept in one place.
//!
//! Without features this crate is `no_std` and holds only plain `#[repr(C)]`/C-like types
//! that the eBPF programs can use. With `std` it adds the JSON documents both sides print:
//! `latch.state/1` ([`doc::StateDoc`]) and `latch.event/1` ([`doc::EventDoc`]), and FLoM's
//! resource names ([`resource`]): the daemon decides by them, the probe's analysis reads a
//! resource's capacity from them, and both must read them alike.
//!
//! It may not know how either side stores its state: the daemon's tables and the probe's
//! decoder are theirs. Fields may be added to the documents; none may change meaning.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

#[cfg(feature = "std")]
pub mod doc;
pub mod raw;
#[cfg(feature = "std")]
pub mod resource;

/// VMS DLM lock modes, in FLoM's wire numbering (`mode="0"` … `mode="5"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
pub enum LockMode {
    NL = 0,
    CR = 1,
    CW = 2,
    PR = 3,
    PW = 4,
    EX = 5,
}

impl LockMode {
    pub const ALL: [LockMode; 6] = [
        LockMode::NL,
        LockMode::CR,
        LockMode::CW,
        LockMode::PR,
        LockMode::PW,
        LockMode::EX,
    ];

    /// The wire number, `mode="N"`.
    pub fn wire(self) -> u8 {
        self as u8
    }

    pub fn from_wire(n: u8) -> Option<LockMode> {
        LockMode::ALL.get(usize::from(n)).copied()
    }

    /// The short name, as in the state document: `NL` … `EX`.
    pub fn short_name(self) -> &'static str {
        match self {
            LockMode::NL => "NL",
            LockMode::CR => "CR",
            LockMode::CW => "CW",
            LockMode::PR => "PR",
            LockMode::PW => "PW",
            LockMode::EX => "EX",
        }
    }

    /// The long name, as FLoM's VFS shows it in `lock_mode`.
    pub fn long_name(self) -> &'static str {
        match self {
            LockMode::NL => "NullLock",
            LockMode::CR => "ConcurrentRead",
            LockMode::CW => "ConcurrentWrite",
            LockMode::PR => "ProtectedRead",
            LockMode::PW => "ProtectedWrite",
            LockMode::EX => "Exclusive",
        }
    }

    /// The DLM compatibility matrix: may `self` be granted while `held` is held?
    pub fn compatible_with(self, held: LockMode) -> bool {
        use LockMode::*;
        match held {
            NL => true,
            CR => self != EX,
            CW => matches!(self, NL | CR | CW),
            PR => matches!(self, NL | CR | PR),
            PW => matches!(self, NL | CR),
            EX => self == NL,
        }
    }
}

/// FLoM's six resource types; the first rule that matches a name decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "std",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
#[repr(u8)]
pub enum ResourceType {
    Simple = 0,
    Numeric = 1,
    Set = 2,
    Hierarchical = 3,
    Sequence = 4,
    Timestamp = 5,
}

impl ResourceType {
    /// The name FLoM uses in `resource_type` files and the state document uses in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Simple => "simple",
            ResourceType::Numeric => "numeric",
            ResourceType::Set => "set",
            ResourceType::Hierarchical => "hierarchical",
            ResourceType::Sequence => "sequence",
            ResourceType::Timestamp => "timestamp",
        }
    }

    /// Whether a lock mode means anything for this type (simple and hierarchical only).
    pub fn has_mode(self) -> bool {
        matches!(self, ResourceType::Simple | ResourceType::Hierarchical)
    }

    /// Whether a quantity means anything for this type (numeric only).
    pub fn has_quantity(self) -> bool {
        self == ResourceType::Numeric
    }
}

/// Where a client's request stands: the before/after of every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "std",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
#[repr(u8)]
pub enum EntryState {
    None = 0,
    Incubating = 1,
    Waiting = 2,
    Holding = 3,
}

impl EntryState {
    /// Its name in `latch.event/1`.
    pub fn name(self) -> &'static str {
        match self {
            EntryState::None => "none",
            EntryState::Incubating => "incubating",
            EntryState::Waiting => "waiting",
            EntryState::Holding => "holding",
        }
    }
}

/// The kinds of state change, one per daemon function that makes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "std",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[repr(u8)]
pub enum EventKind {
    LockerCreate = 0,
    LockerDestroy = 1,
    Incubate = 2,
    Promote = 3,
    Enqueue = 4,
    Grant = 5,
    Release = 6,
    Cancel = 7,
}

impl EventKind {
    pub const ALL: [EventKind; 8] = [
        EventKind::LockerCreate,
        EventKind::LockerDestroy,
        EventKind::Incubate,
        EventKind::Promote,
        EventKind::Enqueue,
        EventKind::Grant,
        EventKind::Release,
        EventKind::Cancel,
    ];

    /// Its name in `latch.event/1`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::LockerCreate => "locker_create",
            EventKind::LockerDestroy => "locker_destroy",
            EventKind::Incubate => "incubate",
            EventKind::Promote => "promote",
            EventKind::Enqueue => "enqueue",
            EventKind::Grant => "grant",
            EventKind::Release => "release",
            EventKind::Cancel => "cancel",
        }
    }

    /// The kind an eBPF record's `kind` field names.
    pub fn from_raw(raw: u32) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| *kind as u32 == raw)
    }

    /// What happened, as a past participle: `created`, `enqueued`, `granted`...
    pub fn verb(self) -> &'static str {
        match self {
            EventKind::LockerCreate => "created",
            EventKind::LockerDestroy => "destroyed",
            EventKind::Incubate => "incubated",
            EventKind::Promote => "promoted",
            EventKind::Enqueue => "enqueued",
            EventKind::Grant => "granted",
            EventKind::Release => "released",
            EventKind::Cancel => "cancelled",
        }
    }
}
