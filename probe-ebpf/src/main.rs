//! The latch probe's eBPF side: uprobes on the daemon's state-change functions that copy the
//! few fields an event needs into the `EVENTS` ring buffer.
//!
//! It may not know the daemon's layout: which argument holds the locker and where the id sits
//! inside it are globals that user space computes from the exact binary's DWARF and sets at
//! load time (`EbpfLoader::override_global`). It never writes to the daemon and never blocks:
//! when the ring buffer is full the event is lost, not waited for.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user},
    macros::{map, uprobe},
    maps::RingBuf,
    programs::ProbeContext,
};
use core::ptr::read_volatile;
use latch_probe_common::{raw::RawEvent, EventKind};

/// Which argument register (0 = first) holds the `&mut Locker` of the traced function.
#[no_mangle]
static LOCKER_ARG: u32 = 0;

/// The byte offset of `Locker::id` (a `u64`) inside `Locker`.
#[no_mangle]
static LOCKER_ID_OFFSET: u64 = 0;

/// 256 KiB: room for thousands of 24-byte records while user space is slow to drain.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

/// Entry of `latch::change::grant(locker: &mut Locker, ..)`.
#[uprobe]
pub fn latch_grant(ctx: ProbeContext) -> u32 {
    // A failed read or a full ring buffer loses this one event; there is nobody to tell.
    let _ = emit_grant(&ctx);
    0
}

fn emit_grant(ctx: &ProbeContext) -> Result<(), i64> {
    // Volatile, or the compiler folds the loader's values into the zero initialisers.
    let arg = unsafe { read_volatile(&LOCKER_ARG) };
    let id_offset = unsafe { read_volatile(&LOCKER_ID_OFFSET) };
    let locker = pointer_arg(ctx, arg).ok_or(-1i64)?;
    let id_ptr = locker.wrapping_add(id_offset as usize) as *const u64;
    let locker_id = unsafe { bpf_probe_read_user(id_ptr) }.map_err(i64::from)?;
    let event = RawEvent {
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        // The low half of pid_tgid is the thread id.
        tid: bpf_get_current_pid_tgid() as u32,
        kind: EventKind::Grant as u32,
        locker: locker_id,
    };
    EVENTS.output::<RawEvent>(&event, 0).map_err(i64::from)
}

/// The `n`th integer argument register as a pointer.
///
/// The verifier only accepts context loads at a constant offset, so the registers are read
/// one by one (volatile, so LLVM cannot sink them into one load at a computed offset, which it
/// does with `ctx.arg(n)` in a `match`) and the choice is made among the values.
fn pointer_arg(ctx: &ProbeContext, n: u32) -> Option<*const u8> {
    let [a0, a1, a2, a3, a4, a5] = argument_registers(ctx);
    let value = match n {
        0 => a0,
        1 => a1,
        2 => a2,
        3 => a3,
        4 => a4,
        5 => a5,
        _ => return None,
    };
    Some(value as *const u8)
}

/// The first six integer argument registers, in calling-convention order.
#[cfg(bpf_target_arch = "x86_64")]
fn argument_registers(ctx: &ProbeContext) -> [u64; 6] {
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
