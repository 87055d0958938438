//! Records the eBPF programs write into their ring buffer, read by the probe's user side.
//!
//! Plain `#[repr(C)]` data only: no pointers, no enums with data, nothing that needs `std`.

/// One uprobe hit on a daemon state-change function.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawEvent {
    /// `bpf_ktime_get_ns()` at the hit (monotonic, since boot).
    pub ktime_ns: u64,
    /// The daemon thread that made the change.
    pub tid: u32,
    /// An [`crate::EventKind`] as `u8`, widened.
    pub kind: u32,
    /// The locker's id.
    pub locker: u64,
}
