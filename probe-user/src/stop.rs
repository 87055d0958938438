//! The signals that end a long-running command (SIGINT, SIGTERM, SIGHUP), taken over so that
//! they are read from a descriptor instead of ending the process at once: every command then
//! detaches its uprobes, unmounts and resumes what it must on its way out.
//!
//! It only blocks and reads signals; what a command does about one is the command's business.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsFd, BorrowedFd};

/// SIGINT, SIGTERM and SIGHUP, blocked for this thread (and threads it starts afterwards) and
/// delivered to a descriptor instead.
pub struct StopSignals(SignalFd);

impl StopSignals {
    /// Blocks the signals; call it before starting threads, so that they inherit the mask
    /// and the signals reach only this descriptor.
    pub fn take_over() -> nix::Result<StopSignals> {
        let mut mask = SigSet::empty();
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            mask.add(signal);
        }
        mask.thread_block()?;
        SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).map(StopSignals)
    }

    /// A signal that arrived since the last call, without waiting.
    pub fn received(&self) -> nix::Result<Option<Signal>> {
        Ok(self
            .0
            .read_signal()?
            .map(|info| Signal::try_from(info.ssi_signo as i32).unwrap_or(Signal::SIGTERM)))
    }
}

impl AsFd for StopSignals {
    /// Readable when a signal is pending: poll it beside the command's own descriptors.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
