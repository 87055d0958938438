//! The latch probe's eBPF side: one uprobe per daemon state-change function (the contract's
//! `latch::change::*`), each copying what its event needs into the `EVENTS` ring buffer: the
//! argument registers, the part of the `Locker` and `Request` its arguments point to that the
//! event reads, the strings those hold (names, element, peer name) and the table's generation.
//! The uprobes fire in every process that runs the executable; a hit outside the traced one
//! (`CONFIG.tgid`) records nothing.
//!
//! It may not know the daemon's layout: which argument holds what, which bytes of the structs
//! each event reads and where a string's pointer and length sit are in `CONFIG`, which user
//! space computes from the exact binary's DWARF and sets at load time. It copies bytes and
//! interprets none of them beyond a string's pointer and length. It never writes to the daemon
//! and never blocks: when the ring buffer is full the event is counted in `LOST`, never waited
//! for.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{bpf_pidns_info, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_pid_tgid, bpf_ktime_get_ns,
        generated::{bpf_get_ns_current_pid_tgid, bpf_probe_read_user},
    },
    macros::{map, uprobe},
    maps::{PerCpuArray, RingBuf},
    programs::ProbeContext,
};
use core::ptr::{addr_of, addr_of_mut, read_volatile};
use latch_probe_common::raw::{
    RawBlock, RawEvent, RawText, Span, TextPlace, TextSlot, TraceConfig, ARGUMENT_REGISTERS,
    BLOCK_BYTES, TEXT_BYTES,
};
use latch_probe_common::EventKind;

/// Set by the loader (`EbpfLoader::override_global`); read through `read_volatile`, or the
/// compiler folds the initial value into the code.
#[no_mangle]
static CONFIG: TraceConfig = TraceConfig::EMPTY;

/// Sized by user space at load time (`EVENTS_BYTES` in probe-user: tens of thousands of
/// records, so that a busy machine may keep the reader off the CPU for a second without a
/// loss); this is only the object's default.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

/// Records that found the ring buffer full, per CPU (summed by user space).
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

macro_rules! probes {
    ($($name:ident => $kind:ident,)*) => {$(
        #[uprobe]
        pub fn $name(ctx: ProbeContext) -> u32 {
            emit(&ctx, EventKind::$kind);
            0
        }
    )*};
}

probes! {
    latch_locker_create => LockerCreate,
    latch_locker_destroy => LockerDestroy,
    latch_incubate => Incubate,
    latch_promote => Promote,
    latch_enqueue => Enqueue,
    latch_grant => Grant,
    latch_release => Release,
    latch_cancel => Cancel,
}

#[inline(always)]
fn emit(ctx: &ProbeContext, kind: EventKind) {
    if !in_the_daemon() {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<RawEvent>(0) else {
        count_lost();
        return;
    };
    let event = entry.as_mut_ptr();
    let k = kind as usize;
    let args = argument_registers(ctx);
    // SAFETY: `event` points to a reserved record of the right size; every field written
    // below lies inside it. `CONFIG` is a plain static.
    unsafe {
        addr_of_mut!((*event).ktime_ns).write(bpf_ktime_get_ns());
        // The low half of pid_tgid is the thread id.
        addr_of_mut!((*event).tid).write(bpf_get_current_pid_tgid() as u32);
        addr_of_mut!((*event).kind).write(kind as u32);
        addr_of_mut!((*event).args).write(args);
        let generation_address = read_volatile(&raw const CONFIG.generation_address);
        addr_of_mut!((*event).generation).write(read_u64(generation_address).unwrap_or(0));

        let locker = pointer_arg(&args, config_item(&raw const CONFIG.locker_arg, k));
        let request = pointer_arg(&args, config_item(&raw const CONFIG.request_arg, k));
        copy_block(
            addr_of_mut!((*event).locker),
            locker,
            config_item(&raw const CONFIG.locker_span, k),
        );
        copy_block(
            addr_of_mut!((*event).request),
            request,
            config_item(&raw const CONFIG.request_span, k),
        );

        let texts = addr_of_mut!((*event).texts) as *mut RawText;
        let locker_block = addr_of_mut!((*event).locker);
        let request_block = addr_of_mut!((*event).request);
        // One call per slot, not a loop: the verifier needs each text's offset constant.
        // Each string copy is a third of a hit's cost: none that the event does not use.
        fill_text(texts, TextSlot::LockerName, request == 0, locker_block);
        fill_text(texts, TextSlot::Name, true, request_block);
        let has_element = !element_is_none(request_block);
        fill_text(texts, TextSlot::Element, has_element, request_block);
        fill_text(texts, TextSlot::Peer, true, request_block);
    }
    // The reader is never woken (a wake-up costs the daemon more than the record): it
    // drains the buffer every few milliseconds, and the buffer holds a second or more.
    entry.submit(BPF_RB_NO_WAKEUP as u64);
}

/// Whether the hit is the traced daemon's: the uprobes are set for every process that maps
/// the binary (`CONFIG.tgid`).
#[inline(always)]
fn in_the_daemon() -> bool {
    let mut ns = bpf_pidns_info { pid: 0, tgid: 0 };
    // SAFETY: `ns` is a writable bpf_pidns_info of the size given; `CONFIG` is a plain
    // static. The helper fails (and `ns` stays 0) when the current task is in another pid
    // namespace than the daemon's.
    unsafe {
        let found = bpf_get_ns_current_pid_tgid(
            read_volatile(&raw const CONFIG.pidns_dev),
            read_volatile(&raw const CONFIG.pidns_ino),
            &mut ns,
            core::mem::size_of::<bpf_pidns_info>() as u32,
        ) == 0;
        found && ns.tgid == read_volatile(&raw const CONFIG.tgid)
    }
}

/// Item `i` of an array in `CONFIG`, read volatile. Pointer arithmetic after an explicit
/// check rather than indexing: a bounds check's panic path, even a dead one, ends the program
/// in a call the verifier refuses.
///
/// # Safety
/// `array` must point into `CONFIG`.
#[inline(always)]
unsafe fn config_item<T: Copy + Default, const N: usize>(array: *const [T; N], i: usize) -> T {
    // SAFETY: what the caller guarantees (# Safety above) is all this body relies on.
    unsafe {
        if i >= N {
            return T::default();
        }
        read_volatile(array.cast::<T>().add(i))
    }
}

fn count_lost() {
    if let Some(counter) = LOST.get_ptr_mut(0) {
        // SAFETY: a per-CPU slot: nothing else on this CPU runs while this program does.
        unsafe { *counter += 1 };
    }
}

/// Copies the bytes of `span` (cut to end by [`BLOCK_BYTES`]) of the struct at `address` in
/// the daemon, each to its offset in the block; a failed copy or a missing argument leaves
/// `len` 0. No more of the daemon's memory than the event reads (a copy costs by the call
/// more than by the byte: docs/benchmarks.md).
///
/// # Safety
/// `block` must point to writable memory for a [`RawBlock`].
#[inline(always)]
unsafe fn copy_block(block: *mut RawBlock, address: u64, span: Span) {
    // SAFETY: what the caller guarantees (# Safety above) is all this body relies on.
    unsafe {
        let start = if span.offset as usize > BLOCK_BYTES {
            BLOCK_BYTES as u32
        } else {
            span.offset
        };
        let room = BLOCK_BYTES as u32 - start;
        let len = if span.len > room { room } else { span.len };
        let bytes = addr_of_mut!((*block).bytes) as *mut u8;
        let copied = address != 0
            && len != 0
            && read_user(
                bytes.add(start as usize),
                len,
                address.wrapping_add(u64::from(start)),
            );
        addr_of_mut!((*block).address).write(address);
        addr_of_mut!((*block).start).write(start);
        addr_of_mut!((*block).len).write(if copied { len } else { 0 });
    }
}

/// Copies the string of `slot` from the struct `block` if `wanted`, else records none.
///
/// # Safety
/// `texts` must point to the record's texts, `block` to a [`RawBlock`].
#[inline(always)]
unsafe fn fill_text(texts: *mut RawText, slot: TextSlot, wanted: bool, block: *const RawBlock) {
    // SAFETY: what the caller guarantees (# Safety above) is all this body relies on.
    unsafe {
        let text = texts.add(slot as usize);
        if wanted {
            copy_text(
                text,
                block,
                config_item(&raw const CONFIG.texts, slot as usize),
            );
        } else {
            // Volatile: plain stores are merged into a call of a byte-at-a-time memset.
            addr_of_mut!((*text).address).write_volatile(0);
            addr_of_mut!((*text).claimed).write_volatile(0);
            addr_of_mut!((*text).len).write(0);
        }
    }
}

/// Whether the copied request's element is `None`, as `CONFIG.element_none_*` describes it.
///
/// # Safety
/// `block` must point to a [`RawBlock`].
#[inline(always)]
unsafe fn element_is_none(block: *const RawBlock) -> bool {
    // SAFETY: what the caller guarantees (# Safety above) is all this body relies on.
    unsafe {
        let size = read_volatile(&raw const CONFIG.element_none_size);
        let offset = read_volatile(&raw const CONFIG.element_none_offset);
        size == 8
            && block_word(block, offset)
                == Some(read_volatile(&raw const CONFIG.element_none_value))
    }
}

/// The 8 bytes at `offset` of a copied struct, if they were copied.
///
/// # Safety
/// `block` must point to a [`RawBlock`].
#[inline(always)]
unsafe fn block_word(block: *const RawBlock, offset: u32) -> Option<u64> {
    // SAFETY: what the caller guarantees (# Safety above) is all this body relies on.
    unsafe {
        let at = offset as usize;
        let start = (*block).start as usize;
        // Bounded for the verifier, and within what was copied.
        if at > BLOCK_BYTES - 8 || at < start || at + 8 > start + (*block).len as usize {
            return None;
        }
        // User space sets only 8-aligned offsets here, and the bytes start 8-aligned in the
        // record: one aligned load (an unaligned read is eight byte loads in BPF).
        if at % 8 != 0 {
            return None;
        }
        Some(
            addr_of!((*block).bytes)
                .cast::<u8>()
                .add(at)
                .cast::<u64>()
                .read(),
        )
    }
}

/// Copies the string whose pointer and length sit at `place` in the copied struct `block`,
/// up to [`TEXT_BYTES`] of it. The pointer and length come from the copy, not from the
/// daemon again: the same values, one read fewer each.
///
/// # Safety
/// `text` and `block` must point to writable memory for a [`RawText`] and a [`RawBlock`].
#[inline(always)]
unsafe fn copy_text(text: *mut RawText, block: *const RawBlock, place: TextPlace) {
    // SAFETY: what the caller guarantees (# Safety above) is all this body relies on.
    unsafe {
        let pointer = block_word(block, place.pointer_offset).unwrap_or(0);
        let claimed = block_word(block, place.len_offset).unwrap_or(0);
        let len = if claimed > TEXT_BYTES as u64 {
            TEXT_BYTES as u32
        } else {
            claimed as u32
        };
        let copied =
            pointer != 0 && read_user(addr_of_mut!((*text).bytes) as *mut u8, len, pointer);
        addr_of_mut!((*text).address).write(pointer);
        addr_of_mut!((*text).claimed).write(claimed);
        addr_of_mut!((*text).len).write(if copied { len } else { 0 });
    }
}

/// Copies `len` bytes of the daemon's memory at `address` to `dst`; whether it worked.
///
/// # Safety
/// `dst` must be writable for `len` bytes.
#[inline(always)]
unsafe fn read_user(dst: *mut u8, len: u32, address: u64) -> bool {
    // SAFETY: what the caller guarantees (# Safety above) is all this body relies on.
    unsafe { bpf_probe_read_user(dst.cast(), len, address as *const _) == 0 }
}

#[inline(always)]
fn read_u64(address: u64) -> Option<u64> {
    if address == 0 {
        return None;
    }
    let mut value = 0u64;
    // SAFETY: `value` is a writable u64.
    let ok = unsafe { read_user((&raw mut value).cast(), 8, address) };
    ok.then_some(value)
}

/// The argument register `slot` as an address, 0 when the function has no such argument.
#[inline(always)]
fn pointer_arg(args: &[u64; ARGUMENT_REGISTERS], slot: u32) -> u64 {
    // A match among the values, not an index: the verifier rejects loads at a computed
    // offset on some paths, and NO_ARGUMENT (or any bad slot) simply gives 0.
    match slot {
        0 => args[0],
        1 => args[1],
        2 => args[2],
        3 => args[3],
        4 => args[4],
        5 => args[5],
        _ => 0,
    }
}

/// The first six integer argument registers, in calling-convention order.
///
/// The verifier only accepts context loads at a constant offset, so each register is read on
/// its own (volatile, so LLVM cannot merge them into one load at a computed offset).
#[cfg(bpf_target_arch = "x86_64")]
#[inline(always)]
fn argument_registers(ctx: &ProbeContext) -> [u64; ARGUMENT_REGISTERS] {
    let regs = ctx.regs;
    // SAFETY: `regs` is the probe's context, valid for the program's whole run.
    unsafe {
        [
            read_volatile(&raw const (*regs).rdi),
            read_volatile(&raw const (*regs).rsi),
            read_volatile(&raw const (*regs).rdx),
            read_volatile(&raw const (*regs).rcx),
            read_volatile(&raw const (*regs).r8),
            read_volatile(&raw const (*regs).r9),
        ]
    }
}

#[cfg(not(bpf_target_arch = "x86_64"))]
compile_error!(
    "latch-probe-ebpf maps argument registers for x86_64 only; add this target's pt_regs names"
);

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable in a verified program; the verifier rejects code that could get here.
    loop {}
}
