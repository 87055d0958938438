//! Records the eBPF programs write into their ring buffer, read by the probe's user side,
//! and the shape of the configuration user space gives them.
//!
//! Plain `#[repr(C)]` data only: no pointers, no enums with data, nothing that needs `std`.
//! The eBPF side copies bytes and never interprets them: which bytes mean what is decided in
//! user space from the daemon's DWARF.

/// Integer argument registers recorded per hit (x86-64: rdi, rsi, rdx, rcx, r8, r9).
pub const ARGUMENT_REGISTERS: usize = 6;
/// Bytes of a `Locker` or a `Request` that can be copied per hit: the fields an event reads
/// must lie in the first `BLOCK_BYTES` of the struct, or the plan is refused.
pub const BLOCK_BYTES: usize = 256;
/// Bytes of one string copied per hit; a longer string is cut (see [`RawText::claimed`]).
pub const TEXT_BYTES: usize = 256;
/// The argument slot value that means "this function has no such argument".
pub const NO_ARGUMENT: u32 = u32::MAX;

/// The strings an event carries, by slot in [`RawEvent::texts`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextSlot {
    /// The locker's `resource_name` (locker events only: a request event carries its own).
    LockerName = 0,
    /// The request's `resource_name`.
    Name = 1,
    /// The request's granted element (`Option<String>`; garbage when `None`).
    Element = 2,
    /// The request's peer name.
    Peer = 3,
}
pub const TEXT_SLOTS: usize = 4;

impl TextSlot {
    pub const ALL: [TextSlot; TEXT_SLOTS] = [
        TextSlot::LockerName,
        TextSlot::Name,
        TextSlot::Element,
        TextSlot::Peer,
    ];

    /// Whether the string is found in the locker (else in the request).
    pub const fn in_locker(self) -> bool {
        matches!(self, TextSlot::LockerName)
    }
}

/// The part of a struct: its bytes `offset..offset + len`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub offset: u32,
    pub len: u32,
}

impl Span {
    /// Where it ends (saturating: an absurd span is refused by its end, never wrapped).
    pub const fn end(self) -> u32 {
        self.offset.saturating_add(self.len)
    }

    /// The smallest span that holds this one and `offset..offset + len` (an empty span
    /// holds nothing, so `cover` of it is the other).
    pub fn cover(self, offset: u32, len: u32) -> Span {
        if self.len == 0 {
            return Span { offset, len };
        }
        let start = self.offset.min(offset);
        let end = self.end().max(offset.saturating_add(len));
        Span {
            offset: start,
            len: end - start,
        }
    }
}

/// The part of a struct copied from the daemon's memory: the bytes the event reads, each at
/// its offset in the struct (`bytes[start..start + len]`; the others are not the daemon's).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawBlock {
    /// Where the struct was, in the daemon (0: the function has no such argument).
    pub address: u64,
    /// Bytes copied (0 when the copy failed or there was nothing to copy).
    pub len: u32,
    /// The offset in the struct of the first byte copied.
    pub start: u32,
    pub bytes: [u8; BLOCK_BYTES],
}

// The eBPF side reads a word at an 8-aligned offset of `bytes` with one aligned load.
const _: () = assert!(core::mem::offset_of!(RawBlock, bytes) % 8 == 0);

/// A string's bytes, copied through the pointer and length found in a copied struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawText {
    /// The string's data pointer in the daemon.
    pub address: u64,
    /// The length the string claims; more than `len` means it was cut.
    pub claimed: u64,
    /// Bytes copied.
    pub len: u32,
    pub _pad: u32,
    pub bytes: [u8; TEXT_BYTES],
}

/// One uprobe hit on a daemon state-change function.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEvent {
    /// `bpf_ktime_get_ns()` at the hit (CLOCK_MONOTONIC).
    pub ktime_ns: u64,
    /// The lock table's generation at the hit (odd: the change belongs to the handling of
    /// that message); 0 when it could not be read.
    pub generation: u64,
    /// The daemon thread that made the change.
    pub tid: u32,
    /// An [`crate::EventKind`], widened: which function was entered.
    pub kind: u32,
    /// The argument registers at entry, in calling-convention order.
    pub args: [u64; ARGUMENT_REGISTERS],
    pub locker: RawBlock,
    pub request: RawBlock,
    pub texts: [RawText; TEXT_SLOTS],
}

impl RawBlock {
    pub const EMPTY: RawBlock = RawBlock {
        address: 0,
        len: 0,
        start: 0,
        bytes: [0; BLOCK_BYTES],
    };
}

impl RawText {
    pub const EMPTY: RawText = RawText {
        address: 0,
        claimed: 0,
        len: 0,
        _pad: 0,
        bytes: [0; TEXT_BYTES],
    };
}

impl RawEvent {
    /// A record of nothing: what a buffer for records starts as.
    pub const EMPTY: RawEvent = RawEvent {
        ktime_ns: 0,
        generation: 0,
        tid: 0,
        kind: 0,
        args: [0; ARGUMENT_REGISTERS],
        locker: RawBlock::EMPTY,
        request: RawBlock::EMPTY,
        texts: [RawText::EMPTY; TEXT_SLOTS],
    };
}

/// Where the pointer and the length of a `String` sit inside the struct that holds it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextPlace {
    pub pointer_offset: u32,
    pub len_offset: u32,
}

/// Everything the eBPF programs need to know about one daemon binary, computed from its
/// DWARF by user space and set as a global at load time.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceConfig {
    /// Per [`crate::EventKind`]: the argument slot of the locker pointer, or [`NO_ARGUMENT`].
    pub locker_arg: [u32; 8],
    /// Per [`crate::EventKind`]: the argument slot of the request pointer, or [`NO_ARGUMENT`].
    pub request_arg: [u32; 8],
    /// Per [`crate::EventKind`]: the part of the `Locker` and of the `Request` its event
    /// reads (ending by [`BLOCK_BYTES`]), the only bytes of them copied.
    pub locker_span: [Span; 8],
    pub request_span: [Span; 8],
    /// Per [`TextSlot`]: where its `String` keeps pointer and length, in the locker or the
    /// request ([`TextSlot::in_locker`]).
    pub texts: [TextPlace; TEXT_SLOTS],
    /// How `Request.element` says `None`: the 8 bytes at this offset of the request hold
    /// `element_none_value` (its discriminant, or the niche in the `String`). The element is
    /// then not copied. `element_none_size` 0: no such check.
    pub element_none_offset: u32,
    pub element_none_size: u32,
    pub element_none_value: u64,
    /// The runtime address of the lock table's generation counter (a `u64`).
    pub generation_address: u64,
    /// Whose hits are recorded: the traced process's id as its own pid namespace numbers it,
    /// and that namespace (the device and inode of `/proc/PID/ns/pid`). The uprobes are set
    /// for every process that maps the binary, so the programs pick the daemon's hits out
    /// themselves: a uprobe bound to one process puts its perf events in and out at each of
    /// its context switches, which cost the daemon more than the program (docs/benchmarks.md).
    pub pidns_dev: u64,
    pub pidns_ino: u64,
    pub tgid: u32,
    pub _pad: u32,
}

impl TraceConfig {
    /// The configuration of no binary: the eBPF globals' initial value, replaced at load.
    pub const EMPTY: TraceConfig = TraceConfig {
        locker_arg: [NO_ARGUMENT; 8],
        request_arg: [NO_ARGUMENT; 8],
        locker_span: [Span { offset: 0, len: 0 }; 8],
        request_span: [Span { offset: 0, len: 0 }; 8],
        texts: [TextPlace {
            pointer_offset: 0,
            len_offset: 0,
        }; TEXT_SLOTS],
        element_none_offset: 0,
        element_none_size: 0,
        element_none_value: 0,
        generation_address: 0,
        pidns_dev: 0,
        pidns_ino: 0,
        tgid: 0,
        _pad: 0,
    };
}
